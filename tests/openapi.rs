//! Every typed command, driven through the `stet` binary, checked against a spec nobody on the
//! project wrote: the official STET 1.5.0.43 and 1.4.0.47 files and Crédit Agricole's own
//! (DSP2 v1.21), each served by Stoplight Prism.
//!
//! stet talks to the sandbox bank through nginx (TLS, client certificates required, HTTP/2);
//! nginx mirrors every request, bytes unchanged, to a witness that hands it to Prism, and Prism
//! says whether the request is valid under the spec: path, query, headers, security, body. Any
//! request Prism finds invalid fails the test, with Prism's reasons. What stet sends is what is
//! checked, payment bodies of every kind included (SEPA, instant, standing order, several
//! payees), as captured on the wire.

mod interop;
mod support;

use std::collections::BTreeSet;

use interop::{Front, Nginx, Pki, Prism, Witness, free_port, origin, reference, through};
use serde_json::Value;
use support::{Env, Out, PAYEE, Running, day};

/// A second payee for payments with several payees (a valid French IBAN).
const PAYEE_2: &str = "FR7630004000031234567890143";

/// The sandbox bank behind nginx, the witness asking Prism about `spec`, and a profile for
/// the bank dialect `bank` whose API and token calls go through nginx.
struct Validated {
    env: Env,
    config: String,
    /// Where the sandbox serves STET (the witness strips it before asking Prism).
    prefix: String,
    /// Calls are made with the PSU absent (no `PSU-*` header); a test may switch.
    unattended: std::cell::Cell<bool>,
    witness: Witness,
    nginx: Nginx,
    _prism: Prism,
    _pki: Pki,
}

impl Validated {
    fn start(
        spec: &str,
        dialect: &str,
        bank: &str,
        key_id: Option<&str>,
        sandbox: &[&str],
    ) -> Validated {
        let pki = Pki::new();
        let certs = pki.arg();
        let mut args = vec![
            "--certs",
            &certs,
            "--link-style",
            "path",
            "--dialect",
            dialect,
        ];
        if let Some(k) = key_id {
            args.extend(["--key-id", k]);
        }
        args.extend(sandbox);
        let env = Env::with(&args, bank);
        let prism = Prism::start(&reference(spec));
        let prefix = url::Url::parse(env.sandbox.get("api_base"))
            .expect("api_base")
            .path()
            .trim_end_matches('/')
            .to_owned();
        let witness = Witness::start(None, Some((&prism, &prefix)));
        let port = free_port();
        let nginx = Nginx::start(
            &pki,
            &[Front {
                port,
                http2: true,
                upstream: origin(env.sandbox.get("api_base")),
                witness: Some(witness.port),
            }],
        );
        let q = |s: String| format!("{s:?}");
        let mut overrides = vec![
            ("api_base", q(through(env.sandbox.get("api_base"), port))),
            ("token_url", q(through(env.sandbox.get("token_url"), port))),
            ("bank", q(bank.to_owned())),
        ];
        if let Some(k) = key_id {
            overrides.push(("key_id", q(k.to_owned())));
        }
        let overrides: Vec<(&str, &str)> =
            overrides.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let config = env
            .config_with("validated", &overrides)
            .display()
            .to_string();
        Validated {
            env,
            config,
            prefix,
            unattended: std::cell::Cell::new(false),
            witness,
            nginx,
            _prism: prism,
            _pki: pki,
        }
    }

    /// `stet ARGS --config …`, with `--psu-ip …` unless unattended.
    fn run(&self, args: &[&str]) -> Out {
        let mut all = args.to_vec();
        all.extend(["--config", &self.config]);
        if self.unattended.get() {
            self.env.run(&all)
        } else {
            self.env.present(&all)
        }
    }

    fn spawn(&self, args: &[&str]) -> Running {
        let mut all = args.to_vec();
        all.extend(["--config", &self.config, "--psu-ip", support::PSU_IP]);
        self.env.spawn(&all)
    }

    /// `stet pay create ARGS -o json`: the payment request's id and approval link.
    fn create(&self, args: &[&str]) -> (String, String) {
        let mut all = vec!["pay", "create", "-o", "json"];
        all.extend(args);
        let created = self.run(&all).json();
        (
            created["id"].as_str().expect("an id").to_owned(),
            created["consent_approval"]
                .as_str()
                .expect("an approval link")
                .to_owned(),
        )
    }

    /// Every kind of payment, as the CLI sends it, each approved at the bank and confirmed
    /// with the TPP's token; then one more created, and given to `stet pay cancel`.
    fn pay_every_kind_then_cancel(&self) -> Out {
        for kind in kinds() {
            let args: Vec<&str> = kind.iter().map(String::as_str).collect();
            let done = self.pay_in_steps(&args);
            assert_eq!(done["status"], "ACSC", "{done}");
        }
        let (id, _) = self.create(&[
            "--to",
            PAYEE,
            "--to-name",
            "A",
            "--amount",
            "1.00",
            "--label",
            "x",
        ]);
        self.run(&["pay", "cancel", &id])
    }

    /// `stet pay` with the PSU present: created, approved at the bank (the authorization code
    /// coming back to stet), confirmed, final.
    fn pay_journey(&self) {
        let mut running = self.spawn(&[
            "pay",
            "--to",
            PAYEE,
            "--to-name",
            "Ana Smith",
            "--amount",
            "3.00",
            "--label",
            "journey",
            "-o",
            "json",
        ]);
        self.env.approve_payment(&mut running);
        let out = running.finish();
        assert_eq!(out.json()["status"], "ACSC", "{out}");
    }

    /// Creates a payment, has the PSU approve it at the bank, and confirms it with the TPP's
    /// token (`stet pay confirm ID --approved`): the status is final.
    fn pay_in_steps(&self, args: &[&str]) -> Value {
        let (id, link) = self.create(args);
        self.run(&["pay", "status", &id, "-o", "json"]).ok();
        self.env.approve_at_bank(&link);
        self.run(&["pay", "confirm", &id, "--approved", "-o", "json"])
            .json()
    }

    /// Every API request stet made, with Prism's verdict; panics on any request Prism found
    /// invalid (except those `expected_invalid` names by their body's text, and the answers
    /// `unanswerable` names by `METHOD /path`), and gives the operations covered (`METHOD
    /// /path` as Prism saw it, ids replaced by `{id}`).
    fn verdicts(&self, expected_invalid: &[&str], unanswerable: &[&str]) -> BTreeSet<String> {
        // nginx logs a request once its mirrored copy is done, and Prism takes the copies one
        // at a time: both may trail the answers stet got. Wait until the log and the witness
        // agree and have not moved for a while.
        let under = |target: &str| target.starts_with(&self.prefix);
        let started = std::time::Instant::now();
        let mut last = (usize::MAX, usize::MAX);
        let mut still = 0;
        let (api, seen) = loop {
            let api: Vec<_> = self
                .nginx
                .access()
                .into_iter()
                .filter(|a| under(&a.target))
                .collect();
            let seen: Vec<Value> = self
                .witness
                .lines()
                .into_iter()
                .filter(|s| under(s["target"].as_str().unwrap_or("")))
                .collect();
            let now = (api.len(), seen.len());
            still = if now == last && now.0 == now.1 {
                still + 1
            } else {
                0
            };
            if still >= 6 || started.elapsed().as_secs() > 60 {
                break (api, seen);
            }
            last = now;
            std::thread::sleep(std::time::Duration::from_millis(250));
        };
        assert_eq!(
            seen.len(),
            api.len(),
            "Prism saw every API request nginx forwarded: {seen:#?}\n{api:#?}"
        );
        let mut operations = BTreeSet::new();
        let mut invalid = Vec::new();
        for s in &seen {
            assert!(
                s["error"].is_null(),
                "the witness failed on a request: {s:#}"
            );
            let prism = &s["prism"];
            let path = prism["path"].as_str().unwrap_or("");
            let path = path.split('?').next().unwrap_or("");
            let segments: Vec<&str> = path.split('/').collect();
            let template: Vec<&str> = segments
                .iter()
                .enumerate()
                .map(|(i, seg)| match i.checked_sub(1).map(|p| segments[p]) {
                    Some("accounts" | "payment-requests") => "{id}",
                    _ => seg,
                })
                .collect();
            let operation = format!("{} {}", s["method"].as_str().unwrap(), template.join("/"));
            let violations = !prism["violations"].as_array().is_none_or(Vec::is_empty);
            let status = prism["status"].as_u64().unwrap_or(0);
            // A 406 without a violation: the spec names no media type for this answer, so no
            // Accept can be met; the request itself is valid.
            let no_media_type =
                status == 406 && !violations && unanswerable.contains(&operation.as_str());
            let bad = violations || (status >= 400 && !no_media_type) || status == 0;
            let body = s["body"].as_str().unwrap_or("");
            if expected_invalid.iter().any(|e| body.contains(e)) {
                assert!(bad, "Prism should refuse this request: {s:#}");
                continue;
            }
            if bad {
                invalid.push(s.clone());
            }
            operations.insert(operation);
        }
        assert!(
            invalid.is_empty(),
            "Prism finds these requests invalid under the spec:\n{invalid:#?}"
        );
        operations
    }
}

/// The operations every dialect has, `extra` added.
fn ops(extra: &[&str]) -> BTreeSet<String> {
    [
        "GET /accounts",
        "GET /accounts/{id}/balances",
        "GET /accounts/{id}/transactions",
        "GET /trusted-beneficiaries",
        "PUT /consents",
        "POST /funds-confirmations",
        "POST /payment-requests",
        "GET /payment-requests/{id}",
        "POST /payment-requests/{id}/confirmation",
    ]
    .iter()
    .chain(extra)
    .map(|s| (*s).to_owned())
    .collect()
}

/// Arguments for each payment kind: SEPA, instant, a standing order, several payees.
fn kinds() -> [Vec<String>; 4] {
    let one = |label: &str| {
        vec![
            "--to".to_owned(),
            PAYEE.to_owned(),
            "--to-name".to_owned(),
            "Ana Smith".to_owned(),
            "--amount".to_owned(),
            "12.34".to_owned(),
            "--label".to_owned(),
            label.to_owned(),
        ]
    };
    let mut instant = one("instant");
    instant.push("--instant".to_owned());
    let mut standing = one("rent");
    standing.extend(
        [
            "--every",
            "monthly",
            "--date",
            &day(3),
            "--until",
            &day(200),
        ]
        .map(str::to_owned),
    );
    let mut several = one("june");
    several.extend(
        [
            "--to",
            PAYEE_2,
            "--to-name",
            "Marc Martin",
            "--amount",
            "5.00",
        ]
        .map(str::to_owned),
    );
    [one("invoice 118"), instant, standing, several]
}

/// The commands every dialect has: accounts, balances, transactions (pages and a date
/// range), beneficiaries, the consent, funds confirmation.
fn read_everything(v: &Validated, funds_args: &[&str], funds: impl Fn(&Out)) -> String {
    let accounts = v.run(&["accounts", "-o", "json"]).json_array();
    let iban = accounts[0]["accountId"]["iban"]
        .as_str()
        .unwrap()
        .to_owned();
    v.run(&["balances", "ACC0001", "-o", "json"]).ok();
    let all = v
        .run(&["transactions", "ACC0001", "-o", "json"])
        .json_array();
    assert!(all.len() > 5, "several pages");
    v.run(&[
        "transactions",
        "ACC0001",
        "--from",
        &day(-30),
        "--to",
        &day(1),
        "-o",
        "json",
    ])
    .ok();
    v.run(&["beneficiaries", "-o", "json"]).ok();
    v.run(&[
        "consent",
        "put",
        "--balances",
        &iban,
        "--transactions",
        &iban,
        "--psu-identity",
        "-o",
        "json",
    ])
    .ok();
    let mut args = vec!["funds-check", "--account", &iban, "--amount", "10.00"];
    args.extend(funds_args);
    funds(&v.run(&args));
    iban
}

#[test]
fn every_command_is_valid_under_the_official_stet_1_5_spec() {
    let v = Validated::start(
        "stet-psd2-api-v1.5.0.43.openapi.json",
        "1.5",
        "generic-1.5",
        None,
        &[],
    );
    v.env.login(&["--config", &v.config]);
    read_everything(&v, &["--payee", "Marchand SARL"], |out| {
        out.ok();
    });
    v.run(&["identity", "-o", "json"]).ok();

    // Every kind of payment; a cancellation.
    v.pay_every_kind_then_cancel().ok();
    // No --to-name: the name of the PSU's trusted beneficiary with that IBAN goes out.
    let beneficiary = &v.run(&["beneficiaries", "-o", "json"]).json_array()[0];
    let (b_iban, b_name) = (
        beneficiary["creditorAccount"]["iban"].as_str().unwrap(),
        beneficiary["creditor"]["name"].as_str().unwrap(),
    );
    v.create(&["--to", b_iban, "--amount", "2.00", "--label", "by name"]);
    // A payee that is no trusted beneficiary and has no name: refused before anything is sent.
    v.run(&[
        "pay", "create", "--to", PAYEE, "--amount", "2.00", "--label", "x",
    ])
    .fails(2, "no trusted beneficiary of the PSU has that IBAN");

    // The whole journey: the PSU's approval comes back as an authorization code.
    v.pay_journey();

    // Prism bites: a payment request without its required parts is refused under the spec.
    let broken = v.run(&[
        "request",
        "POST",
        "payment-requests",
        "--data",
        r#"{"paymentInformationId": "deliberately-incomplete"}"#,
    ]);
    assert_ne!(broken.code, 0, "{broken}");

    let covered = v.verdicts(&["deliberately-incomplete"], &[]);
    // (Read once the witness has seen everything.)
    let named = v
        .witness
        .lines()
        .into_iter()
        .filter(|s| s["method"] == "POST" && s["body"].as_str().unwrap().contains(b_iban))
        .map(|s| serde_json::from_str::<Value>(s["body"].as_str().unwrap()).unwrap())
        .next()
        .expect("the payment to the trusted beneficiary, as sent");
    assert_eq!(
        named["creditTransferTransaction"][0]["beneficiary"]["creditor"]["name"],
        b_name
    );
    let wanted = ops(&["GET /end-user-identity", "PUT /payment-requests/{id}"]);
    assert!(covered.is_superset(&wanted), "covered: {covered:#?}");
}

#[test]
fn every_command_is_valid_under_the_official_stet_1_4_spec() {
    let v = Validated::start(
        "stet-psd2-api-v1.4.0.47.swagger.yaml",
        "1.4",
        "generic-1.4",
        None,
        &[],
    );
    v.env.login(&["--config", &v.config]);
    read_everything(&v, &[], |out| {
        out.ok();
    });
    // The 1.4.0.47 file has no /end-user-identity (1.4.2 added it), so `stet identity` is not
    // driven here.
    v.pay_every_kind_then_cancel().ok();

    // 1.4.0.47 gives the cancellation's answer no media type (no `produces`), so Prism can
    // meet no Accept there (406) and answers so before it reads the body: the body is checked
    // below against the spec's own schema instead.
    let covered = v.verdicts(&[], &["PUT /payment-requests/{id}"]);
    let wanted = ops(&["PUT /payment-requests/{id}"]);
    assert!(covered.is_superset(&wanted), "covered: {covered:#?}");
    let cancellations: Vec<Value> = v
        .witness
        .lines()
        .into_iter()
        .filter(|s| {
            s["method"] == "PUT"
                && s["target"]
                    .as_str()
                    .is_some_and(|t| t.contains("/payment-requests/"))
        })
        .map(|s| serde_json::from_str(s["body"].as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(cancellations.len(), 1, "{cancellations:#?}");
    let cancellation = &cancellations[0];
    // 1.4 has no CANC: a cancellation is RJCT with the PSU's reason.
    assert_eq!(cancellation["paymentInformationStatus"], "RJCT");
    assert_eq!(cancellation["statusReasonInformation"], "DS02");
    let errors = schema_errors_1_4("PaymentRequestResource", cancellation);
    assert!(
        errors.is_empty(),
        "the cancellation breaks 1.4.0.47:\n{cancellation:#}\n{errors:#?}"
    );
    // The validator bites: 1.5's CANC is no 1.4 status.
    let mut canc = cancellation.clone();
    canc["paymentInformationStatus"] = "CANC".into();
    assert!(!schema_errors_1_4("PaymentRequestResource", &canc).is_empty());
}

/// What a JSON Schema validator finds wrong with `body` under `definition` of the official
/// 1.4.0.47 file (its `$ref`s resolved inside the file).
fn schema_errors_1_4(definition: &str, body: &Value) -> Vec<String> {
    let path = reference("stet-psd2-api-v1.4.0.47.swagger.yaml");
    let spec: Value = serde_yaml_ng::from_str(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc = serde_json::json!({
        "$ref": format!("#/definitions/{definition}"),
        "definitions": spec["definitions"],
    });
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&doc)
        .unwrap_or_else(|e| panic!("a validator for {definition}: {e}"));
    validator
        .iter_errors(body)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect()
}

#[test]
fn every_command_of_the_credit_agricole_profile_is_valid_under_the_banks_own_spec() {
    // The keyId in the form the bank's spec asks for; the sandbox is told to accept it.
    let key_id = "SN=2b9adbd7f86bed51e23f467c25e1f887,CA=CN=stet sandbox CA,O=stet,C=FR";
    let v = Validated::start(
        "credit-agricole-dsp2-v1.21.openapi.json",
        "1.4",
        "credit-agricole",
        Some(key_id),
        // The profile signs no PSU-* header (second-hand, notes [8]): the sandbox plays a bank
        // that does not ask for them signed, so PSU-present calls get through too.
        &["--unsigned-psu-headers"],
    );
    v.env.login(&["--config", &v.config]);
    // The bank requires a payee on a funds confirmation: none is a usage error, before
    // anything is sent.
    let accounts = v.run(&["accounts", "-o", "json"]).json_array();
    let iban = accounts[0]["accountId"]["iban"].as_str().unwrap();
    v.run(&["funds-check", "--account", iban, "--amount", "1.00"])
        .fails(2, "--payee");
    // Every read twice: with the PSU absent, as a daily sync, then present (PSU-* headers
    // sent, and the funds confirmation's PSU-Account-Consent-Responsability header).
    for unattended in [true, false] {
        v.unattended.set(unattended);
        read_everything(&v, &["--payee", "Marchand SARL"], |out| {
            out.ok();
        });
    }
    v.run(&["identity", "-o", "json"]).ok();
    // The bank's API has no cancellation: refused here, nothing sent.
    v.pay_every_kind_then_cancel().fails(1, "no cancellation");
    // The whole journey, the PSU present.
    v.pay_journey();

    let covered = v.verdicts(&[], &[]);
    assert!(
        !covered.contains("PUT /payment-requests/{id}"),
        "nothing was sent for the cancellation"
    );
    let wanted = ops(&["GET /end-user-identity"]);
    assert!(covered.is_superset(&wanted), "covered: {covered:#?}");
}
