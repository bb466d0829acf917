//! Every check can fail: each case against the sandbox with its fault fails, for the reason
//! expected, and no other case changes outcome.

mod support;

use std::collections::BTreeMap;
use std::time::Instant;

use futures_util::StreamExt as _;
use stet_conformance::{Catalogue, Outcome, Severity, run};
use support::{everything, lines, start};

/// What each case's failure must say (a fragment of its reason).
const EXPECTED: &[(&str, &str)] = &[
    (
        "STET-TLS-001",
        "accepted a request without a client certificate",
    ),
    (
        "STET-TLS-002",
        "accepted a request with a self-signed certificate",
    ),
    ("STET-OAU-001", "accepted a request without an access token"),
    ("STET-OAU-002", "accepted an access token it never issued"),
    ("STET-OAU-003", "accepted an expired access token"),
    (
        "STET-OAU-004",
        "accepted a payment request carrying an AISP token",
    ),
    ("STET-OAU-005", "carries no state"),
    (
        "STET-OAU-006",
        "gave a code to a request without a PKCE code_challenge",
    ),
    (
        "STET-OAU-007",
        "issued a token for a code_verifier that does not match",
    ),
    (
        "STET-OAU-008",
        "issued a token to a client that presented no certificate",
    ),
    (
        "STET-OAU-009",
        "exchanged the same authorization code twice",
    ),
    (
        "STET-SIG-001",
        "accepted a request without a Signature header",
    ),
    ("STET-SIG-002", "accepted a tampered signature"),
    (
        "STET-SIG-003",
        "accepted a Digest that does not match the body",
    ),
    ("STET-SIG-004", "accepted a body changed after signing"),
    ("STET-SIG-005", "accepted a Date an hour old"),
    ("STET-SIG-006", "accepted a keyId it does not know"),
    (
        "STET-SIG-007",
        "accepted a signature that leaves `x-request-id` unsigned",
    ),
    ("STET-RES-001", "cashAccountType"),
    ("STET-RES-002", "balanceType"),
    ("STET-RES-003", "creditDebitIndicator"),
    ("STET-RES-004", "fullName"),
    ("STET-RES-005", "creditor"),
    ("STET-RES-006", "text/plain"),
    ("STET-RES-007", "has no X-Request-ID"),
    ("STET-RES-008", "not an ErrorModel"),
    ("STET-PAG-001", "led to a page that failed"),
    ("STET-PAG-002", "leads back to page 1"),
    ("STET-PAG-003", "have no _links.self"),
    ("STET-PAG-004", "leaves the bank's origin"),
    ("STET-PAG-005", "answered 200 with an empty list"),
    ("STET-PAG-006", "outside it"),
    ("STET-PAG-007", "accepted transactions from 120 days back"),
    ("STET-PIS-001", "no _links.consentApproval"),
    ("STET-PIS-002", "went back to RCVD"),
    (
        "STET-PIS-003",
        "accepted the confirmation of a payment request the PSU had not approved",
    ),
    ("STET-PIS-004", "still reads RCVD"),
    ("STET-CBP-001", "not a valid HalPaymentCoverageReport"),
    (
        "STET-BUD-001",
        "the fifth unattended call within 24 hours was served",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_case_fails_against_its_fault_and_no_other_case_changes() {
    let started = Instant::now();
    let catalogue = Catalogue::embedded();
    let (baseline_bank, target) = start(stet_sandbox::Dialect::V1_5, "").await;
    let baseline = run(target, &catalogue, &everything()).await.unwrap();
    drop(baseline_bank);
    let baseline_outcomes: BTreeMap<String, Outcome> = baseline
        .cases
        .iter()
        .map(|c| (c.id.clone(), c.outcome))
        .collect();
    assert!(baseline.summary.passed, "{}", lines(&baseline));

    // Every case names a fault, and every case has an expected reason here.
    for case in &catalogue.cases {
        assert!(
            case.fault.is_some(),
            "{} has no fault: a check no fault can fail is a defect",
            case.id
        );
        assert!(
            EXPECTED.iter().any(|(id, _)| *id == case.id),
            "{} has no expected reason",
            case.id
        );
    }
    let runs = futures_util::stream::iter(catalogue.cases.iter().map(|case| {
        let catalogue = &catalogue;
        async move {
            let fault = case.fault.clone().unwrap();
            let (bank, target) = start(stet_sandbox::Dialect::V1_5, &fault).await;
            let report = run(target, catalogue, &everything()).await.unwrap();
            drop(bank);
            (case, fault, report)
        }
    }))
    .buffer_unordered(6)
    .collect::<Vec<_>>()
    .await;

    let mut problems = Vec::new();
    for (case, fault, report) in &runs {
        let result = report.cases.iter().find(|c| c.id == case.id).unwrap();
        let wanted = if case.severity == Severity::Advisory {
            Outcome::Warn
        } else {
            Outcome::Fail
        };
        let reason = EXPECTED.iter().find(|(id, _)| *id == case.id).unwrap().1;
        if result.outcome != wanted || !result.reason.contains(reason) {
            problems.push(format!(
                "{} under `{fault}`: {} {} (wanted {wanted} saying `{reason}`)",
                case.id, result.outcome, result.reason
            ));
        }
        if result.evidence.is_empty() {
            problems.push(format!("{} under `{fault}` kept no evidence", case.id));
        }
        for other in report.cases.iter().filter(|c| c.id != case.id) {
            if baseline_outcomes[&other.id] != other.outcome {
                problems.push(format!(
                    "{} under `{fault}` changed {}: {} {}",
                    case.id, other.id, other.outcome, other.reason
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    eprintln!(
        "{} faults, each against the whole catalogue, in {:.1} s",
        runs.len(),
        started.elapsed().as_secs_f64()
    );
}
