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

/// Every case that wants its refusal in STET's error model, and what its failure says when the
/// refusal comes in another shape.
const REFUSALS: &[(&str, &str)] = &[
    ("STET-OAU-001", "not in STET's error model"),
    ("STET-OAU-002", "not in STET's error model"),
    ("STET-OAU-003", "not in STET's error model"),
    ("STET-OAU-004", "not in STET's error model"),
    ("STET-SIG-001", "not in STET's error model"),
    ("STET-SIG-002", "not in STET's error model"),
    ("STET-SIG-003", "not in STET's error model"),
    ("STET-SIG-004", "not in STET's error model"),
    ("STET-SIG-005", "not in STET's error model"),
    ("STET-SIG-006", "not in STET's error model"),
    ("STET-SIG-007", "not in STET's error model"),
    ("STET-PAG-007", "not in STET's error model"),
];

/// Catalogue faults that, besides their own case, break what another case checks: each
/// transactions page is checked against the schema by STET-PAG-001 too, so a field dropped from
/// every page, or a `_links.self` (required by the schema) dropped from later pages, fails it
/// as well.
const ALSO: &[(&str, &[(&str, &str)])] = &[
    (
        "drop-field:resource=transactions",
        &[(
            "STET-PAG-001",
            "\"creditDebitIndicator\" is a required property",
        )],
    ),
    (
        "no-self-link",
        &[("STET-PAG-001", "/_links: \"self\" is a required property")],
    ),
];

/// Faults that break a rule more than one case relies on, or a second way of breaking a case's
/// rule (a bound, a format), each with every case it must fail and what their failures must
/// say. No case outside its set may change outcome.
const SHARED: &[(&str, &[(&str, &str)])] = &[
    // Refusals in another shape than STET's error model: each case that wants the error model
    // with its refusal fails, and only those.
    ("refusal-outside-model", REFUSALS),
    // The other bound of the date range (the catalogue's fault for it ignores dateTo); a
    // window in the future then lists the past too.
    (
        "ignore-date-from",
        &[
            ("STET-PAG-006", "outside it"),
            ("STET-PAG-005", "(a window in the future) listed"),
        ],
    ),
    // No code, but no refusal either: not a PASS.
    (
        "pkce-crash",
        &[(
            "STET-OAU-006",
            "answered HTTP 500 without a code, but not with a refusal",
        )],
    ),
    // The payment request as read and as confirmed is checked against the official schema.
    (
        "drop-field:resource=payment-request",
        &[
            ("STET-PIS-002", "is not a valid HalPaymentRequest"),
            (
                "STET-PIS-003",
                "the confirmation's answer is not a valid HalPaymentRequest",
            ),
            ("STET-PIS-004", "is not a valid HalPaymentRequest"),
        ],
    ),
    // Pages after the first are checked too.
    (
        "drop-field:resource=later-transactions",
        &[(
            "STET-PAG-001",
            "page 2 of the transactions is not a valid HalTransactions",
        )],
    ),
];

/// Faults run against the 1.4 sandbox too: the schema ones (each dialect has its official
/// schema) and the error model.
const ON_1_4: &[(&str, &[(&str, &str)])] = &[
    (
        "drop-field:resource=accounts",
        &[("STET-RES-001", "cashAccountType")],
    ),
    (
        "drop-field:resource=transactions",
        &[
            ("STET-RES-003", "creditDebitIndicator"),
            (
                "STET-PAG-001",
                "\"creditDebitIndicator\" is a required property",
            ),
        ],
    ),
    (
        "drop-field:resource=funds-confirmation",
        &[(
            "STET-CBP-001",
            "not a valid HalPaymentCoverageReport (1.4.0.47)",
        )],
    ),
    (
        "drop-field:resource=payment-request",
        &[
            (
                "STET-PIS-002",
                "is not a valid HalPaymentRequest (1.4.0.47)",
            ),
            (
                "STET-PIS-003",
                "is not a valid HalPaymentRequest (1.4.0.47)",
            ),
            (
                "STET-PIS-004",
                "is not a valid HalPaymentRequest (1.4.0.47)",
            ),
        ],
    ),
    ("refusal-outside-model", REFUSALS),
];

/// One sandbox with one fault, and the cases it must fail.
struct Trial {
    dialect: stet_sandbox::Dialect,
    fault: String,
    fails: Vec<(String, String)>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_case_fails_against_its_fault_and_no_other_case_changes() {
    let started = Instant::now();
    let catalogue = Catalogue::embedded();
    let mut baselines = BTreeMap::new();
    for dialect in [stet_sandbox::Dialect::V1_5, stet_sandbox::Dialect::V1_4] {
        let (bank, target) = start(dialect, "").await;
        let baseline = run(target, &catalogue, &everything()).await.unwrap();
        drop(bank);
        assert!(baseline.summary.passed, "{}", lines(&baseline));
        let outcomes: BTreeMap<String, Outcome> = baseline
            .cases
            .iter()
            .map(|c| (c.id.clone(), c.outcome))
            .collect();
        baselines.insert(format!("{dialect:?}"), outcomes);
    }

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
    let owned = |set: &[(&str, &str)]| -> Vec<(String, String)> {
        set.iter()
            .map(|(id, why)| ((*id).to_owned(), (*why).to_owned()))
            .collect()
    };
    let mut trials: Vec<Trial> = catalogue
        .cases
        .iter()
        .map(|case| {
            let fault = case.fault.clone().unwrap();
            let mut fails = vec![(
                case.id.clone(),
                EXPECTED
                    .iter()
                    .find(|(id, _)| *id == case.id)
                    .unwrap()
                    .1
                    .to_owned(),
            )];
            if let Some((_, also)) = ALSO.iter().find(|(f, _)| *f == fault) {
                fails.extend(owned(also));
            }
            Trial {
                dialect: stet_sandbox::Dialect::V1_5,
                fault,
                fails,
            }
        })
        .collect();
    for (dialect, list) in [
        (stet_sandbox::Dialect::V1_5, SHARED),
        (stet_sandbox::Dialect::V1_4, ON_1_4),
    ] {
        trials.extend(list.iter().map(|(fault, set)| Trial {
            dialect,
            fault: (*fault).to_owned(),
            fails: owned(set),
        }));
    }
    let runs = futures_util::stream::iter(trials.iter().map(|trial| {
        let catalogue = &catalogue;
        async move {
            let (bank, target) = start(trial.dialect, &trial.fault).await;
            let report = run(target, catalogue, &everything()).await.unwrap();
            drop(bank);
            (trial, report)
        }
    }))
    .buffer_unordered(6)
    .collect::<Vec<_>>()
    .await;

    let mut problems = Vec::new();
    for (trial, report) in &runs {
        let fault = format!("{} ({:?})", trial.fault, trial.dialect);
        let baseline = &baselines[&format!("{:?}", trial.dialect)];
        for (id, reason) in &trial.fails {
            let case = catalogue.cases.iter().find(|c| &c.id == id).unwrap();
            let result = report.cases.iter().find(|c| &c.id == id).unwrap();
            let wanted = if case.severity == Severity::Advisory {
                Outcome::Warn
            } else {
                Outcome::Fail
            };
            if result.outcome != wanted || !result.reason.contains(reason.as_str()) {
                problems.push(format!(
                    "{id} under `{fault}`: {} {} (wanted {wanted} saying `{reason}`)",
                    result.outcome, result.reason
                ));
            }
            if result.evidence.is_empty() {
                problems.push(format!("{id} under `{fault}` kept no evidence"));
            }
        }
        for other in report
            .cases
            .iter()
            .filter(|c| !trial.fails.iter().any(|(id, _)| *id == c.id))
        {
            if baseline[&other.id] != other.outcome {
                problems.push(format!(
                    "`{fault}` changed {}: {} {}",
                    other.id, other.outcome, other.reason
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
