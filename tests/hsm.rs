//! The `stet` binary with its keys in an HSM (SoftHSM2): the sandbox journey with both the
//! QWAC and the QSealC key in the token (the TLS handshake signed there), `stet doctor`'s HSM
//! checks, `stet sig sign` with a `pkcs11:` key, and bad HSM settings as clear errors.
//!
//! Every `stet` run is a process of its own, so each sees the tokens made before it.

#![allow(missing_docs)]

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use support::*;

/// A sandbox whose TPP keys are imported into a token of their own, and a profile that names
/// them by URI (PIN from a file), the key files left out.
struct HsmEnv {
    env: Env,
    token: stet_testkit::SoftHsmToken,
    pin_file: PathBuf,
}

fn hsm_env() -> HsmEnv {
    hsm_env_with(&[])
}

/// [`hsm_env`] with a sandbox started with `extra` arguments.
fn hsm_env_with(extra: &[&str]) -> HsmEnv {
    let mut env = Env::with(extra, "sandbox");
    let token = stet_testkit::softhsm_token_in("journey", &env.home.path().join("softhsm"));
    // `stet` runs with a cleared environment: SoftHSM needs to be told where the token is.
    env.vars
        .push(("SOFTHSM2_CONF".to_owned(), token.conf.display().to_string()));
    token.import(Path::new(env.sandbox.get("qseal_key")), "qseal", "01");
    token.import(Path::new(env.sandbox.get("qwac_key")), "qwac", "02");
    let pin_file = env.home.path().join("hsm.pin");
    // As `echo PIN > file` writes it: the trailing newline is not part of the PIN.
    write_private(&pin_file, &format!("{}\n", stet_testkit::PIN));
    let hsm = HsmEnv {
        env,
        token,
        pin_file,
    };
    hsm.write_profile("qseal", "qwac", &hsm.pin_file);
    hsm
}

impl HsmEnv {
    fn uri(&self, object: &str, pin_file: &Path) -> String {
        format!(
            "pkcs11:token={};object={object}?pin-source=file:{}",
            self.token.label,
            pin_file.display()
        )
    }

    fn write_profile(&self, qseal: &str, qwac: &str, pin_file: &Path) {
        let body = self.env.profile_body(&[
            ("qseal_key", &format!("{:?}", self.uri(qseal, pin_file))),
            ("qwac_key", &format!("{:?}", self.uri(qwac, pin_file))),
            (
                "pkcs11_module",
                &format!("{:?}", self.token.module.display().to_string()),
            ),
        ]);
        write_private(
            &self.env.config,
            &format!("default_profile = \"sandbox\"\n\n[profiles.sandbox]\n{body}"),
        );
    }
}

#[test]
fn the_whole_journey_with_both_keys_in_the_hsm() {
    let hsm = hsm_env();
    let env = &hsm.env;

    // The doctor's HSM lines: module, token and key, one signature verified by the certificate.
    let doctor = env.run(&["doctor"]);
    let text = doctor.ok();
    for line in [
        "ok   QWAC PKCS#11 module:",
        "ok   QWAC key in the HSM: token `journey-",
        "ok   QWAC key and chain: the HSM signed a test message",
        "ok   QSealC key in the HSM: token `journey-",
        "ok   QSealC key matches certificate: the HSM signed a test message",
        "ok   TLS handshake with the QWAC:",
        "ok   permissions of the QSealC key's PIN file:",
    ] {
        assert!(text.contains(line), "missing `{line}`:\n{doctor}");
    }
    assert!(
        text.contains("ECDSA P-256") && text.contains("RSA 2048 bits"),
        "{doctor}"
    );
    assert!(!text.contains(stet_testkit::PIN), "{doctor}");

    // Consent, accounts, balances, transactions: every request over a TLS
    // connection whose handshake the HSM signed, every request signed by the HSM.
    env.login(&[]);
    let accounts = env.accounts();
    assert_eq!(accounts.len(), 3);
    let id = accounts[0]["resourceId"].as_str().unwrap().to_owned();
    let balances = env
        .present(&["balances", &id, "--output", "json"])
        .json_array();
    assert!(!balances.is_empty());
    let transactions = env
        .present(&["transactions", &id, "--output", "ndjson"])
        .ndjson();
    assert!(!transactions.is_empty(), "the last 90 days' transactions");

    // A payment: created, approved by the PSU, confirmed, final status.
    let mut running = env.spawn(&[
        "pay",
        "--to",
        PAYEE,
        "--to-name",
        "Payee SARL",
        "--amount",
        "12.34",
        "--label",
        "HSM-signed",
        "--psu-ip",
        PSU_IP,
    ]);
    env.approve_payment(&mut running);
    let out = running.finish();
    assert!(out.ok().trim().ends_with(" ACSC"), "{out}");

    // Funds confirmation (client credentials: another token, the same keys).
    let iban = accounts[0]["accountId"]["iban"].as_str().unwrap();
    let out = env.present(&["funds-check", "--account", iban, "--amount", "10.00"]);
    assert!(out.ok().contains("available"), "{out}");
}

#[test]
fn sig_sign_with_a_key_in_the_hsm_verifies_with_the_certificate() {
    let hsm = hsm_env();
    let env = &hsm.env;
    let request = "POST /v1/payment-requests HTTP/1.1\nHost: bank.example\nX-Request-ID: 1\nContent-Type: application/json\n\n{\"a\":1}";
    let request_file = env.home.path().join("request.http");
    std::fs::write(&request_file, request).unwrap();
    let uri = hsm.uri("qseal", &hsm.pin_file);
    let module = hsm.token.module.display().to_string();
    let signed = env.run(&[
        "sig",
        "sign",
        "--key",
        &uri,
        "--pkcs11-module",
        &module,
        "--key-id",
        "k",
        "--date-now",
        "--headers",
        "(request-target) date x-request-id digest",
        request_file.to_str().unwrap(),
    ]);
    verify_signed(env, &signed, "(request-target) date digest");
}

/// `signed` (the output of `stet sig sign`, keyId `k`) verifies with the QSealC's certificate,
/// `required` headers signed.
fn verify_signed(env: &support::Env, signed: &support::Out, required: &str) {
    let text = signed.ok().to_owned();
    assert!(text.contains("Signature: keyId=\"k\""), "{signed}");
    let signed_file = env.home.path().join("signed.http");
    std::fs::write(&signed_file, &text).unwrap();
    let verified = env.run(&[
        "sig",
        "verify",
        "--key",
        env.sandbox.get("qseal_cert"),
        "--require",
        required,
        signed_file.to_str().unwrap(),
    ]);
    assert_eq!(verified.ok().trim(), "ok");
}

#[test]
fn bad_hsm_settings_are_clear_errors() {
    let hsm = hsm_env();
    let env = &hsm.env;

    // A wrong PIN: doctor fails the key lines (exit 78), a command says which token refused.
    let wrong = env.home.path().join("wrong.pin");
    write_private(&wrong, "000000\n");
    hsm.write_profile("qseal", "qwac", &wrong);
    let doctor = env.run(&["doctor"]);
    assert_eq!(doctor.code, 78, "{doctor}");
    assert!(
        doctor.stdout.contains("FAIL QSealC key in the HSM"),
        "{doctor}"
    );
    assert!(doctor.stdout.contains("refused the PIN"), "{doctor}");
    env.present(&["accounts"]).fails(78, "refused the PIN");

    // A key that is not there: the error names it and lists the keys there are.
    hsm.write_profile("qseal-old", "qwac", &hsm.pin_file);
    let out = env.present(&["accounts"]);
    out.fails(78, "no private key with object `qseal-old`");
    assert!(out.stderr.contains("object=`qseal`"), "{out}");

    // A token that is not there.
    let body = env.profile_body(&[
        (
            "qseal_key",
            "\"pkcs11:token=no-such-token;object=qseal?pin-value=1\"",
        ),
        (
            "pkcs11_module",
            &format!("{:?}", hsm.token.module.display().to_string()),
        ),
    ]);
    write_private(&env.config, &format!("[profiles.sandbox]\n{body}"));
    env.present(&["accounts"])
        .fails(78, "no token matches token `no-such-token`");

    // A module that does not load.
    let body = env.profile_body(&[
        (
            "qseal_key",
            &format!("{:?}", hsm.uri("qseal", &hsm.pin_file)),
        ),
        ("pkcs11_module", "\"/nonexistent/libvendor-hsm.so\""),
    ]);
    write_private(&env.config, &format!("[profiles.sandbox]\n{body}"));
    env.present(&["accounts"]).fails(
        78,
        "cannot load the PKCS#11 module /nonexistent/libvendor-hsm.so",
    );
    let doctor = env.run(&["doctor"]);
    assert_eq!(doctor.code, 78, "{doctor}");
    assert!(
        doctor.stdout.contains("FAIL QSealC PKCS#11 module"),
        "{doctor}"
    );
}

/// The journey with an RSA-2048 QWAC whose key is in the token, the sandbox accepting TLS
/// `version` alone: what the sandbox verified of the client's handshake signatures.
fn rsa_qwac_journey(version: &str) -> Value {
    let hsm = hsm_env_with(&["--qwac-key", "rsa-2048", "--tls-version", version]);
    let env = &hsm.env;
    let doctor = env.run(&["doctor"]);
    let text = doctor.ok();
    assert!(
        text.contains("ok   QWAC key in the HSM: token `journey-")
            && text.contains("RSA 2048 bits"),
        "{doctor}"
    );
    assert!(
        text.contains("ok   TLS handshake with the QWAC:"),
        "{doctor}"
    );
    // Consent, accounts, balances: every connection's handshake signed in the HSM by the
    // real CLI path (the profile's pkcs11: qwac_key, the transport's TLS configuration).
    env.login(&[]);
    let accounts = env.accounts();
    assert_eq!(accounts.len(), 3);
    let id = accounts[0]["resourceId"].as_str().unwrap().to_owned();
    let balances = env
        .present(&["balances", &id, "--output", "json"])
        .json_array();
    assert!(!balances.is_empty());
    env.sandbox_stats()["clientHandshakeSignatures"].clone()
}

/// The journey with the RSA QWAC in the HSM over TLS `version` signed every client handshake
/// with `scheme` alone, at least once per connection stet opened.
fn assert_handshakes_signed_with(version: &str, scheme: &str) {
    let seen = rsa_qwac_journey(version);
    let seen = seen.as_object().unwrap();
    assert_eq!(seen.keys().collect::<Vec<_>>(), [scheme], "{seen:?}");
    assert!(seen[scheme].as_u64().unwrap() >= 3, "{seen:?}");
}

#[test]
fn an_rsa_qwac_in_the_hsm_signs_tls13_with_pss() {
    // Only TLS 1.3 was negotiated, and every client signature was RSA-PSS.
    assert_handshakes_signed_with("1.3", "TLSv1.3 RSA_PSS_SHA256");
}

#[test]
fn an_rsa_qwac_in_the_hsm_signs_tls12_with_pkcs1() {
    assert_handshakes_signed_with("1.2", "TLSv1.2 RSA_PKCS1_SHA256");
}

#[test]
fn the_module_from_stet_pkcs11_module() {
    // No module-path in the URI, no pkcs11_module in any profile: STET_PKCS11_MODULE names it.
    let hsm = hsm_env();
    let env = &hsm.env;
    let request = "GET /v1/accounts HTTP/1.1\nHost: bank.example\nX-Request-ID: 2\n\n";
    let request_file = env.home.path().join("request.http");
    std::fs::write(&request_file, request).unwrap();
    let uri = hsm.uri("qseal", &hsm.pin_file);
    assert!(!uri.contains("module-path"));
    let args = [
        "sig",
        "sign",
        "--key",
        uri.as_str(),
        "--key-id",
        "k",
        "--date-now",
        "--headers",
        "(request-target) date x-request-id",
        request_file.to_str().unwrap(),
    ];
    // Without it, nothing says which module to load.
    env.run(&args).fails(78, "no PKCS#11 module to load");
    let mut cmd = env.command(&args);
    cmd.env("STET_PKCS11_MODULE", &hsm.token.module);
    verify_signed(env, &finished(&args, cmd), "(request-target) date");
}

#[test]
fn bench_sign_through_the_hsm() {
    let hsm = hsm_env();
    let env = &hsm.env;
    let uri = hsm.uri("qseal", &hsm.pin_file);
    let args = [
        "bench",
        "sign",
        "--backend",
        "pkcs11",
        "--key",
        uri.as_str(),
        "--seconds",
        "0.2",
        "--json",
    ];
    let mut cmd = env.command(&args);
    cmd.env("STET_PKCS11_MODULE", &hsm.token.module);
    let out = finished(&args, cmd);
    let report = out.json();
    assert_eq!(report["backend"], "pkcs11", "{out}");
    assert_eq!(report["key_bits"], 2048, "{out}");
    assert_eq!(
        report["module"].as_str(),
        Some(hsm.token.module.to_str().unwrap()),
        "{out}"
    );
    for rate in ["stet_request_per_s", "raw_per_s", "raw_parallel_per_s"] {
        assert!(
            report[rate].as_f64().is_some_and(|r| r > 0.0),
            "{rate}: {out}"
        );
    }
    assert!(!out.stdout.contains(stet_testkit::PIN), "{out}");
}

#[test]
fn the_doctor_tells_an_hsm_key_of_another_certificate() {
    // An RSA key of the token that is not the QSealC's: the doctor signs with it, the
    // certificate does not verify, and it says which setting to change.
    let hsm = hsm_env();
    let env = &hsm.env;
    let other = env.home.path().join("other.key");
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    write_private(&other, &key.serialize_pem());
    hsm.token.import(&other, "qseal-other", "03");
    hsm.write_profile("qseal-other", "qwac", &hsm.pin_file);
    let doctor = env.run(&["doctor"]);
    assert_eq!(doctor.code, 78, "{doctor}");
    let line = doctor
        .stdout
        .lines()
        .find(|l| l.starts_with("FAIL QSealC key matches certificate"))
        .unwrap_or_else(|| panic!("{doctor}"));
    assert!(
        line.contains("is not the key of") && line.contains("object=qseal-other"),
        "{line}"
    );
    assert!(doctor.stdout.contains("point qseal_key at"), "{doctor}");
}
