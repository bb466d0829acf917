//! Loading the QWAC: every problem caught at load, with a message that says what to fix.

mod support;

use std::process::Command;

use stet_transport::{IdentityError, LoadOptions, QwacIdentity, Transport, TransportError};
use support::Pki;

fn load(pki: &Pki, name: &str, options: LoadOptions) -> Result<QwacIdentity, IdentityError> {
    QwacIdentity::from_pem_files(
        &pki.path(&format!("{name}.pem")),
        &pki.path(&format!("{name}.key")),
        options,
    )
}

#[test]
fn a_good_qwac_loads() {
    let pki = Pki::new();
    let id = load(&pki, "qwac", LoadOptions::default()).unwrap();
    assert!(id.subject.contains("Example TPP QWAC"), "{}", id.subject);
    assert!(id.remaining().as_secs() > 0);
    assert!(!format!("{id:?}").contains("PRIVATE"));
}

#[test]
fn an_expired_qwac_is_refused_unless_allowed() {
    let pki = Pki::new();
    pki.write_qwac("expired", -3, false);
    let err = load(&pki, "expired", LoadOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("has expired") && err.contains("allow_expired_certificate"),
        "{err}"
    );
    load(
        &pki,
        "expired",
        LoadOptions {
            allow_invalid_dates: true,
        },
    )
    .unwrap();
}

#[test]
fn a_key_of_another_certificate_is_refused() {
    let pki = Pki::new();
    pki.write_qwac("other", 1, false);
    std::fs::copy(pki.path("other.key"), pki.path("qwac.key")).unwrap();
    let err = load(&pki, "qwac", LoadOptions::default()).unwrap_err();
    assert!(matches!(err, IdentityError::KeyMismatch { .. }), "{err}");
    assert!(
        err.to_string().contains("does not match the certificate"),
        "{err}"
    );
}

#[test]
fn a_chain_out_of_order_is_refused() {
    let pki = Pki::new();
    pki.write_qwac("reversed", 1, true);
    let err = load(&pki, "reversed", LoadOptions::default()).unwrap_err();
    assert!(
        matches!(err, IdentityError::ChainOrder { index: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("put the QWAC first"), "{err}");
}

#[test]
fn missing_and_malformed_files_are_named() {
    let pki = Pki::new();
    let err = QwacIdentity::from_pem_files(
        &pki.path("nope.pem"),
        &pki.path("qwac.key"),
        LoadOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("nope.pem"), "{err}");
    std::fs::write(pki.path("empty.pem"), "not a certificate").unwrap();
    let err = QwacIdentity::from_pem_files(
        &pki.path("empty.pem"),
        &pki.path("qwac.key"),
        LoadOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, IdentityError::NoCertificate { .. }), "{err}");
    let err = QwacIdentity::from_pem_files(
        &pki.path("qwac.pem"),
        &pki.path("qwac.pem"),
        LoadOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("no private key found"), "{err}");
}

/// A PKCS#12 bundle made by OpenSSL loads as the same identity; a wrong password is named.
#[test]
fn pkcs12_from_openssl() {
    let pki = Pki::new();
    let p12 = pki.path("qwac.p12");
    let status = Command::new("openssl")
        .args(["pkcs12", "-export", "-passout", "pass:p12-pass", "-inkey"])
        .arg(pki.path("qwac.key"))
        .arg("-in")
        .arg(pki.path("qwac.pem"))
        .arg("-out")
        .arg(&p12)
        .status()
        .expect("openssl is installed (.ci/run installs it)");
    assert!(status.success());
    let id = QwacIdentity::from_pkcs12_file(&p12, "p12-pass", LoadOptions::default()).unwrap();
    assert!(id.subject.contains("Example TPP QWAC"));
    let err = QwacIdentity::from_pkcs12_file(&p12, "wrong", LoadOptions::default()).unwrap_err();
    assert!(err.to_string().contains("wrong password"), "{err}");
}

#[test]
fn a_bad_qseal_key_is_named_at_build() {
    let pki = Pki::new();
    std::fs::write(pki.path("qseal.key"), "-----BEGIN PRIVATE KEY-----\nAAAA\n").unwrap();
    let err = Transport::builder(&pki.profile(1, "")).build().unwrap_err();
    assert!(matches!(err, TransportError::SigningKey { .. }), "{err}");
    assert!(err.to_string().contains("qseal.key"), "{err}");
}

#[test]
fn an_unset_passphrase_variable_names_the_profile_and_the_variable() {
    let pki = Pki::new();
    let mut profile = pki.profile(1, "");
    profile.qseal_key_passphrase_env = Some("STET_TEST_SURELY_UNSET_PASSPHRASE".into());
    let err = Transport::builder(&profile)
        .build()
        .unwrap_err()
        .to_string();
    assert!(err.contains("profile `test`"), "{err}");
    assert!(
        err.contains("STET_TEST_SURELY_UNSET_PASSPHRASE is not set"),
        "{err}"
    );
}
