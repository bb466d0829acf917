//! The `stet` binary with its keys in an HSM (SoftHSM2): the sandbox journey with both the
//! QWAC and the QSealC key in the token (the TLS handshake signed there), `stet doctor`'s HSM
//! checks, `stet sig sign` with a `pkcs11:` key, and bad HSM settings as clear errors.
//!
//! Every `stet` run is a process of its own, so each sees the tokens made before it.

#![allow(missing_docs)]

mod support;

use std::path::{Path, PathBuf};

use support::*;

/// A sandbox whose TPP keys are imported into a token of their own, and a profile that names
/// them by URI (PIN from a file), the key files left out.
struct HsmEnv {
    env: Env,
    token: stet_testkit::SoftHsmToken,
    pin_file: PathBuf,
}

fn hsm_env() -> HsmEnv {
    let mut env = Env::new();
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
        "(request-target) date digest",
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
