//! A sandbox bank (with faults or without), and a conformance target configured for it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use stet_client::bank::{BankProfile, BankProfiles, Dialect};
use stet_client::transport::{ClientAuth, Profile, QwacSource};
use stet_conformance::{Consent, Cost, Options, Report, Target};
use stet_sandbox::{Faults, RunningSandbox, Sandbox, SandboxConfig, SandboxInfo};
use url::Url;

/// One test PKI for every sandbox of the test binary: making RSA keys is the slow part of a
/// sandbox's start. It lives in Cargo's folder for integration tests' files, one per test
/// binary, made again on each run: a static is never dropped, so a temporary folder here
/// would be left behind by every run.
pub fn pki() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(concat!("conformance-pki-", env!("CARGO_CRATE_NAME")));
        std::fs::create_dir_all(&dir).unwrap();
        stet_sandbox::pki::generate(&dir).unwrap();
        dir
    })
    .clone()
}

/// The sandbox the catalogue runs against: two accounts of 120 transactions over 13 months,
/// ten to a page (so the 90 days a token sees span pages), tokens that live four seconds (so
/// that the expired-token case needs no long wait).
pub fn config(dialect: stet_sandbox::Dialect, faults: &str) -> SandboxConfig {
    SandboxConfig {
        certs: Some(pki()),
        accounts: 2,
        transactions: 120,
        page_size: 10,
        dialect,
        faults: faults.parse::<Faults>().unwrap(),
        token_lifetime: Duration::from_secs(4),
        ..SandboxConfig::default()
    }
}

pub fn bank_profile(dialect: stet_sandbox::Dialect) -> BankProfile {
    let mut bank = BankProfiles::builtin().get("sandbox").unwrap();
    if dialect == stet_sandbox::Dialect::V1_4 {
        bank.dialect = Dialect::V1_4;
        bank.base_path = "/stet/psd2/v1.4".into();
        bank.scopes.cbpii = "piisp".into();
    }
    bank
}

pub fn profile(info: &SandboxInfo) -> Profile {
    let url = |s: &str| Url::parse(s).unwrap();
    Profile {
        name: "sandbox".into(),
        bank: Some("sandbox".into()),
        api_base: url(&format!("{}/", info.api_base.trim_end_matches('/'))),
        token_url: Some(url(&info.token_url)),
        authorize_url: Some(url(&info.authorize_url)),
        client_id: Some(info.client_id.clone()),
        client_secret: None,
        client_auth: ClientAuth::TlsClientAuth,
        redirect_uri: Some(url(&info.redirect_uri)),
        qwac: QwacSource::Pem {
            cert: info.qwac_cert.clone(),
            key: info.qwac_key.clone(),
        },
        qseal_key: info.qseal_key.clone(),
        qseal_cert: Some(info.qseal_cert.clone()),
        qseal_key_passphrase_env: None,
        key_id: info.key_id.clone(),
        ca_bundle: Some(info.ca.clone()),
        signed_headers: None,
        scopes: Vec::new(),
        psu_ip: None,
        connect_timeout: Duration::from_secs(5),
        timeout: Duration::from_secs(10),
        allow_expired_certificate: false,
        allow_insecure_http: false,
        source: None,
        store: None,
        pkcs11_module: None,
        registration_url: None,
        registration: Default::default(),
    }
}

/// A sandbox with `faults`, and the target for it (headless consent).
pub async fn start(dialect: stet_sandbox::Dialect, faults: &str) -> (RunningSandbox, Target) {
    let sandbox = Sandbox::start(config(dialect, faults)).await.unwrap();
    let profile = profile(sandbox.info());
    let bank = bank_profile(dialect);
    let transport = stet_client::transport_builder(&profile, &bank)
        .build()
        .unwrap();
    let target = Target {
        transport,
        bank,
        profile,
        psu_ip: "192.0.2.10".into(),
        consent: Consent::Headless,
        max_wait: Duration::from_secs(10),
        expired_token: None,
    };
    (sandbox, target)
}

/// Every case, costly ones included.
pub fn everything() -> Options {
    Options {
        allow: vec![Cost::Money, Cost::Budget],
        ..Options::default()
    }
}

/// `id outcome reason` lines of a report, for messages.
pub fn lines(report: &Report) -> String {
    report
        .cases
        .iter()
        .map(|c| format!("{} {} {}", c.id, c.outcome, c.reason))
        .collect::<Vec<_>>()
        .join("\n")
}
