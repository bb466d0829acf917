//! A test TPP: mTLS with the sandbox's QWAC, requests signed with its QSealC.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::SystemTime;

use base64::Engine;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::Value;
use sha2::{Digest, Sha256};
use stet_httpsig::{Backend, PrivateKey, Request, Signer, SigningProfile, sign_request};
use stet_sandbox::SandboxInfo;

pub struct Tpp {
    pub http: reqwest::Client,
    pub info: SandboxInfo,
    pub signer: Box<dyn Signer>,
    pub profile: SigningProfile,
}

pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }
    /// `message` and `details` of an ErrorModel, joined.
    pub fn reason(&self) -> String {
        let v = self.json();
        format!(
            "{} | {}",
            v["message"].as_str().unwrap_or_default(),
            v["details"].as_str().unwrap_or_default()
        )
    }
}

pub fn rustls_config(info: &SandboxInfo, with_cert: bool) -> rustls::ClientConfig {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(&info.ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    if with_cert {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&info.qwac_cert)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let key = PrivateKeyDer::from_pem_file(&info.qwac_key).unwrap();
        builder.with_client_auth_cert(chain, key).unwrap()
    } else {
        builder.with_no_client_auth()
    }
}

pub fn http_client(info: &SandboxInfo, with_cert: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .use_preconfigured_tls(rustls_config(info, with_cert))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

impl Tpp {
    pub fn new(info: &SandboxInfo) -> Tpp {
        let key = PrivateKey::from_pem(&std::fs::read(&info.qseal_key).unwrap(), None).unwrap();
        Tpp {
            http: http_client(info, true),
            info: info.clone(),
            signer: key.signer(Backend::default()).unwrap(),
            profile: SigningProfile::stet(info.key_id.clone()),
        }
    }

    /// A request signed for `url`, not yet sent: (target, headers) to tamper with.
    pub fn signed(
        &self,
        method: &str,
        url: &str,
        token: Option<&str>,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> Request {
        let parsed = reqwest::Url::parse(url).unwrap();
        let target = match parsed.query() {
            Some(q) => format!("{}?{q}", parsed.path()),
            None => parsed.path().to_owned(),
        };
        let mut req = Request::new(method, target)
            .with_header("Date", httpdate::fmt_http_date(SystemTime::now()))
            .with_header("X-Request-ID", uuid_like());
        if let Some(t) = token {
            req.append_header("Authorization", format!("Bearer {t}"));
        }
        for (n, v) in extra {
            req.append_header(*n, *v);
        }
        if !body.is_empty() {
            req.append_header("Content-Type", "application/json");
            req.set_body(body.to_vec());
        }
        sign_request(
            &mut req,
            &self.profile,
            self.signer.as_ref(),
            SystemTime::now(),
        )
        .unwrap();
        req
    }

    /// Sends `req` to the sandbox's origin + its target.
    pub async fn send(&self, req: &Request) -> Answer {
        self.try_send(req).await.unwrap()
    }

    /// Like [`Tpp::send`], with transport errors (a dropped connection) as `Err`.
    pub async fn try_send(&self, req: &Request) -> Result<Answer, reqwest::Error> {
        let base = reqwest::Url::parse(&self.info.api_base).unwrap();
        let url = format!("{}://{}{}", base.scheme(), base.authority(), req.target());
        let mut builder = self.http.request(
            reqwest::Method::from_bytes(req.method().as_bytes()).unwrap(),
            url,
        );
        for (n, v) in req.headers() {
            builder = builder.header(n, v);
        }
        let response = builder.body(req.body().to_vec()).send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await?.to_vec();
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    /// Signs and sends; `path` is under the API base (or a full URL).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> Answer {
        self.call_with(
            method,
            path,
            token,
            &[("PSU-IP-Address", "192.0.2.10")],
            body,
        )
        .await
    }

    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        token: &str,
        extra: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Answer {
        let url = if path.starts_with("https://") {
            path.to_owned()
        } else {
            format!("{}{path}", self.info.api_base)
        };
        let body = body
            .map(|b| serde_json::to_vec(b).unwrap())
            .unwrap_or_default();
        let req = self.signed(method, &url, Some(token), extra, &body);
        self.send(&req).await
    }

    pub async fn token_form(&self, form: &[(&str, &str)]) -> Answer {
        let response = self
            .http
            .post(&self.info.token_url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(encode(form))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.unwrap().to_vec();
        Answer {
            status,
            headers,
            body,
        }
    }

    pub async fn client_credentials(&self, scope: &str) -> String {
        let a = self
            .token_form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &self.info.client_id),
                ("scope", scope),
            ])
            .await;
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        a.json()["access_token"].as_str().unwrap().to_owned()
    }

    /// Runs /authorize (auto-approved) and returns the Location it redirects to.
    pub async fn authorize(
        &self,
        scope: &str,
        extra_url: Option<&str>,
        challenge: &str,
        state: &str,
    ) -> String {
        let base = extra_url.unwrap_or(&self.info.authorize_url).to_owned();
        let sep = if base.contains('?') { '&' } else { '?' };
        let url = format!(
            "{base}{sep}{}",
            encode(&[
                ("response_type", "code"),
                ("client_id", &self.info.client_id),
                ("redirect_uri", "http://127.0.0.1:4567/callback"),
                ("state", state),
                ("code_challenge", challenge),
                ("code_challenge_method", "S256"),
                ("scope", scope),
            ])
        );
        let r = self.http.get(url).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 302, "{:?}", r.text().await);
        r.headers()["location"].to_str().unwrap().to_owned()
    }

    /// The whole code flow with PKCE: a token for `scope`.
    pub async fn code_flow(&self, scope: &str, approval_url: Option<&str>) -> Value {
        let verifier = "a-verifier-that-is-long-enough-for-pkce-0123456789";
        let location = self
            .authorize(scope, approval_url, &challenge(verifier), "st4te")
            .await;
        let url = reqwest::Url::parse(&location).unwrap();
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(q["state"], "st4te");
        let a = self
            .token_form(&[
                ("grant_type", "authorization_code"),
                ("client_id", &self.info.client_id),
                ("code", &q["code"]),
                ("redirect_uri", "http://127.0.0.1:4567/callback"),
                ("code_verifier", verifier),
            ])
            .await;
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        a.json()
    }

    pub async fn aisp_token(&self) -> String {
        self.code_flow("aisp", None).await["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

pub fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

pub fn encode(pairs: &[(&str, &str)]) -> String {
    let mut s = form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k, v);
    }
    s.finish()
}

pub fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(1);
    format!("req-{:08}", N.fetch_add(1, Ordering::SeqCst))
}
