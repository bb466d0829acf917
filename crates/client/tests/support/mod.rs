//! A sandbox bank, a transport configured for it, a PSU who logs in, and a client.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use stet_client::bank::{BankProfile, BankProfiles, Dialect};
use stet_client::transport::{
    Auth, ClientAuth, Profile, QwacSource, RetryPolicy, Transport, load_ca_bundle,
};
use stet_client::{ClientOptions, StetClient, transport_builder};
use stet_sandbox::{Faults, LinkStyle, RunningSandbox, Sandbox, SandboxConfig, SandboxInfo};
use url::Url;

pub struct Bank {
    pub sandbox: RunningSandbox,
    pub transport: Transport,
    pub profile: BankProfile,
}

pub fn config(dialect: stet_sandbox::Dialect, links: LinkStyle, faults: &str) -> SandboxConfig {
    SandboxConfig {
        accounts: 3,
        transactions: 120,
        page_size: 10,
        dialect,
        link_style: links,
        faults: faults.parse::<Faults>().unwrap(),
        ..SandboxConfig::default()
    }
}

/// The sandbox profile, in the sandbox's dialect.
pub fn bank_profile(dialect: stet_sandbox::Dialect) -> BankProfile {
    let mut bank = BankProfiles::builtin().get("sandbox").unwrap();
    if dialect == stet_sandbox::Dialect::V1_4 {
        bank.dialect = Dialect::V1_4;
        bank.base_path = "/stet/psd2/v1.4".into();
    }
    bank
}

pub fn transport_profile(info: &SandboxInfo) -> Profile {
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

pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 6,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        max_total_wait: Duration::from_secs(5),
    }
}

impl Bank {
    pub async fn start(config: SandboxConfig) -> Bank {
        let dialect = config.dialect;
        let sandbox = Sandbox::start(config).await.unwrap();
        let profile = bank_profile(dialect);
        let transport = transport_builder(&transport_profile(sandbox.info()), &profile)
            .retry(fast_retries())
            .build()
            .unwrap();
        Bank {
            sandbox,
            transport,
            profile,
        }
    }

    pub fn info(&self) -> &SandboxInfo {
        self.sandbox.info()
    }

    pub fn client(&self, options: ClientOptions) -> StetClient {
        StetClient::with_options(self.transport.clone(), self.profile.clone(), options)
    }

    pub fn client_with(&self, profile: BankProfile, options: ClientOptions) -> StetClient {
        StetClient::with_options(self.transport.clone(), profile, options)
    }

    /// The PSU approves in their browser: the authorization-code flow, PKCE S256, at `at`
    /// (a payment's consentApproval) or the authorize endpoint; the token is stored as `key`.
    pub async fn login(&self, key: &str, scopes: &[&str], at: Option<&Url>) {
        let scopes: Vec<String> = scopes.iter().map(|s| (*s).to_owned()).collect();
        let oauth = self.transport.oauth().unwrap();
        let auth = oauth.authorize(&scopes, at, &[]).unwrap();
        let browser = reqwest::Client::builder()
            .tls_certs_merge(load_ca_bundle(&self.info().ca).unwrap())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let answer = browser.get(auth.url.clone()).send().await.unwrap();
        assert_eq!(
            answer.status().as_u16(),
            302,
            "{}",
            answer.text().await.unwrap()
        );
        let location = answer.headers()["location"].to_str().unwrap().to_owned();
        let redirect = oauth.read_redirect(&location, &auth.state).unwrap();
        let token = oauth
            .exchange_code(&redirect.code, &auth.pkce_verifier, &scopes)
            .await
            .unwrap();
        self.transport.store_token(key, token).await.unwrap();
    }

    /// The PSU logs in for account access.
    pub async fn login_aisp(&self, extended: bool) {
        if extended {
            self.login("aisp", &["aisp", "extended_transaction_history"], None)
                .await;
        } else {
            self.login("aisp", &["aisp"], None).await;
        }
    }
}

pub fn present() -> ClientOptions {
    ClientOptions {
        psu: Some(stet_client::transport::PsuContext::present("192.0.2.10")),
        ..ClientOptions::default()
    }
}

pub fn consent(key: &str) -> Auth {
    Auth::Consent(key.to_owned())
}

pub fn today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}

pub fn days_ago(n: i64) -> time::Date {
    today() - time::Duration::days(n)
}

pub fn arc<T>(t: T) -> Arc<T> {
    Arc::new(t)
}
