//! The bank under test, as the checks see it: the transport (signing, mTLS), HTTP clients of
//! our own for what the transport would never send (no client certificate, a forged one,
//! `/authorize` as a browser), the tokens, the prerequisites (computed once, shared), and a
//! log of every exchange with secrets masked.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use futures_util::future::BoxFuture;
use reqwest::header::HeaderMap;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use stet_client::bank::BankProfile;
use stet_transport::{
    Auth, ClientAuth, Method, Profile, PsuContext, QwacIdentity, QwacSource, RawRequest, Secret,
    StetRequest, Token, Transport, load_ca_bundle, unix,
};
use tokio::sync::OnceCell;
use url::Url;

use crate::outcome::{
    Exchange, RecordedRequest, RecordedResponse, Verdict, mask_body, mask_headers, mask_url,
};

/// How the PSU's consent is obtained, as the UK suite does it.
#[derive(Clone)]
pub enum Consent {
    /// A token minted beforehand (`stet auth login`, or `STET_ACCESS_TOKEN`); `Err` says why
    /// there is none, and the cases that need one are SKIP with that reason.
    Token(Result<Token, String>),
    /// A PSU at a browser approves (the consent and each payment request).
    Psu(Arc<dyn PsuAgent>),
    /// Nobody: `/authorize` approves by itself (sandboxes), and the run follows its redirect.
    Headless,
}

impl Consent {
    /// `token`, `psu` or `headless`.
    pub fn mode(&self) -> &'static str {
        match self {
            Consent::Token(_) => "token",
            Consent::Psu(_) => "psu",
            Consent::Headless => "headless",
        }
    }
}

impl std::fmt::Debug for Consent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.mode())
    }
}

/// A PSU who approves at the bank: the CLI opens a browser (or prints the URL) and catches or
/// asks for the redirect, then exchanges the code.
pub trait PsuAgent: Send + Sync {
    /// The token of an approval for `scopes` at `at` (a payment request's `consentApproval`)
    /// or at the profile's authorization endpoint. `Err` says why there is none.
    fn approve<'a>(
        &'a self,
        scopes: &'a [String],
        at: Option<&'a Url>,
    ) -> BoxFuture<'a, Result<Token, String>>;
}

/// Everything a run needs about the bank and how to reach it.
#[derive(Debug, Clone)]
pub struct Target {
    /// The transport built for the profile (it signs with the QSealC and holds the QWAC).
    pub transport: Transport,
    /// The bank's dialect profile.
    pub bank: BankProfile,
    /// The configuration profile (endpoints, client id, certificates).
    pub profile: Profile,
    /// The `PSU-IP-Address` of attended calls: every call but the budget case's is attended.
    pub psu_ip: String,
    /// How the PSU's consent is obtained.
    pub consent: Consent,
    /// The longest the run waits for a token to expire (for the expired-token case).
    pub max_wait: Duration,
    /// An expired access token given by the user (`STET_CONFORMANCE_EXPIRED_TOKEN`).
    pub expired_token: Option<Secret>,
}

/// What the TLS handshake with the API host negotiated.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TlsRecord {
    /// `TLSv1_3`, `TLSv1_2`, …; empty when the handshake failed.
    pub version: String,
    /// The cipher suite, e.g. `TLS13_AES_256_GCM_SHA384`.
    pub cipher: String,
    /// The ALPN protocol agreed (`h2`, `http/1.1`), when one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alpn: Option<String>,
    /// Why there is no record, when the handshake failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// An answer from the bank.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Answer {
    pub(crate) fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// `HTTP 403 (message)`: the status and the bank's message, for reasons.
    pub(crate) fn brief(&self) -> String {
        let message = self
            .json()
            .and_then(|v| {
                ["message", "error_description", "error"]
                    .iter()
                    .find_map(|k| v.get(*k).and_then(Value::as_str).map(str::to_owned))
            })
            .unwrap_or_else(|| {
                let text = String::from_utf8_lossy(&self.body[..self.body.len().min(100)]);
                text.trim().to_owned()
            });
        if message.is_empty() {
            format!("HTTP {}", self.status)
        } else {
            format!("HTTP {} ({message})", self.status)
        }
    }

    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// The exchanges one case (or the prerequisites) made.
#[derive(Debug, Default)]
pub(crate) struct Log {
    exchanges: Mutex<Vec<Exchange>>,
    calls: AtomicU64,
}

impl Log {
    fn push(&self, exchange: Exchange) {
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.exchanges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(exchange);
    }

    pub(crate) fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    pub(crate) fn take(&self) -> Vec<Exchange> {
        std::mem::take(&mut *self.exchanges.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

fn recorded_request(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> RecordedRequest {
    let content_type = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.as_str());
    RecordedRequest {
        method: method.to_owned(),
        url: mask_url(url),
        headers: mask_headers(headers.iter().map(|(n, v)| (n.as_str(), v.as_str()))),
        body: (!body.is_empty()).then(|| mask_body(body, content_type)),
    }
}

fn recorded_response(answer: &Answer) -> RecordedResponse {
    let headers: Vec<(&str, &str)> = answer
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.to_str().unwrap_or("<not text>")))
        .collect();
    RecordedResponse {
        status: answer.status,
        headers: mask_headers(headers),
        body: mask_body(&answer.body, answer.header("content-type")),
    }
}

/// The `error` of an OAuth error answer (RFC 6749 §5.2: a JSON object with an `error`
/// string), if the answer is one.
pub(crate) fn oauth_error(answer: &Answer) -> Option<String> {
    answer
        .json()
        .and_then(|j| j.get("error").and_then(Value::as_str).map(str::to_owned))
        .filter(|e| !e.is_empty())
}

/// Why a request got no answer at all, as far as its error tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NoAnswer {
    /// The TLS handshake failed or the server sent an alert: the server refused the
    /// connection, for its certificate or ours.
    Tls,
    /// The connection was closed without a word: with TLS 1.3 a server that refuses the
    /// client's certificate may just close it after the client thinks the handshake is done.
    Closed,
    /// Nothing answered at all: no such host, connection refused, a timeout. Not a refusal.
    Unreachable,
}

impl NoAnswer {
    /// Classifies the whole error chain of a failed request (as [`chain`] writes it).
    pub(crate) fn of(error: &str) -> NoAnswer {
        let e = error.to_ascii_lowercase();
        if ["alert", "handshake", "certificate"]
            .iter()
            .any(|w| e.contains(w))
        {
            NoAnswer::Tls
        } else if [
            "channel closed",
            "connection closed",
            "connection reset",
            "broken pipe",
            "unexpected eof",
            "peer closed",
        ]
        .iter()
        .any(|w| e.contains(w))
        {
            NoAnswer::Closed
        } else {
            NoAnswer::Unreachable
        }
    }
}

/// The whole chain of an error, for a reason a person can act on.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// A PKCE verifier (64 characters of [0-9a-f]) and its S256 challenge.
fn pkce() -> (String, String) {
    use base64::Engine as _;
    let verifier = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// A request as it goes through one of the session's own clients.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outgoing<'a> {
    pub(crate) method: &'a str,
    pub(crate) url: &'a Url,
    pub(crate) headers: &'a [(String, String)],
    pub(crate) body: &'a [u8],
}

/// The headers and body of a form request.
type Form = (Vec<(String, String)>, Vec<u8>);

/// An `/authorize` request of our own.
#[derive(Debug, Clone)]
pub(crate) struct Authorize {
    pub(crate) url: Url,
    pub(crate) state: String,
    pub(crate) verifier: String,
    pub(crate) redirect_uri: String,
}

/// Where `/authorize` sent the browser.
#[derive(Debug, Clone)]
pub(crate) struct Redirected {
    pub(crate) status: u16,
    pub(crate) location: Option<Url>,
    /// The OAuth `error` of an answer that did not redirect (a JSON object with `error`).
    pub(crate) error: Option<String>,
}

impl Redirected {
    pub(crate) fn param(&self, name: &str) -> Option<String> {
        self.location.as_ref().and_then(|l| {
            l.query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        })
    }
}

/// What the token endpoint answered.
#[derive(Debug, Clone)]
pub(crate) enum Granted {
    /// A token.
    Token(Token),
    /// A refusal: the status and the OAuth `error`.
    Refused(Answer),
}

/// A reference to one of the PSU's accounts.
#[derive(Debug, Clone)]
pub(crate) struct AccountRef {
    pub(crate) id: String,
    pub(crate) iban: Option<String>,
}

/// The run's shared state.
pub(crate) struct Session {
    pub(crate) target: Target,
    /// The QWAC on the connection, the profile's CA bundle, no redirects: the token endpoint.
    mtls: reqwest::Client,
    /// No client certificate, no redirects: a browser at `/authorize`, and the probes that
    /// leave the certificate out.
    pub(crate) plain: reqwest::Client,
    /// A certificate with the QWAC's subject, issued by nobody the bank trusts.
    pub(crate) forged: Result<reqwest::Client, String>,
    consent: tokio::sync::Mutex<Option<Result<Token, String>>>,
    first_consent: Mutex<Option<Token>>,
    client_tokens: tokio::sync::Mutex<HashMap<String, Result<Token, String>>>,
    accounts: OnceCell<Result<Vec<AccountRef>, String>>,
    pub(crate) setup: Log,
}

/// How long before its expiry a token is renewed.
const MARGIN: Duration = Duration::from_secs(2);

impl Session {
    pub(crate) fn new(target: Target) -> Result<Session, String> {
        let p = &target.profile;
        let builder = || {
            let mut b = reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .connect_timeout(p.connect_timeout)
                .timeout(p.timeout)
                .https_only(!p.allow_insecure_http);
            if let Some(ca) = &p.ca_bundle {
                b = b.tls_certs_merge(load_ca_bundle(ca).map_err(|e| e.to_string())?);
            }
            Ok::<_, String>(b)
        };
        let identity = qwac(p)?;
        let mtls = builder()?
            .identity(identity.to_reqwest().map_err(|e| e.to_string())?)
            .build()
            .map_err(|e| chain(&e))?;
        let plain = builder()?.build().map_err(|e| chain(&e))?;
        let forged = forged_identity(&identity)
            .and_then(|id| builder()?.identity(id).build().map_err(|e| chain(&e)));
        Ok(Session {
            target,
            mtls,
            plain,
            forged,
            consent: tokio::sync::Mutex::new(None),
            first_consent: Mutex::new(None),
            client_tokens: tokio::sync::Mutex::new(HashMap::new()),
            accounts: OnceCell::new(),
            setup: Log::default(),
        })
    }

    pub(crate) fn transport(&self) -> &Transport {
        &self.target.transport
    }

    pub(crate) fn bank(&self) -> &BankProfile {
        &self.target.bank
    }

    pub(crate) fn models_dialect(&self) -> stet_models::Dialect {
        match self.target.bank.dialect {
            stet_client::bank::Dialect::V1_4 => stet_models::Dialect::V1_4,
            _ => stet_models::Dialect::V1_5,
        }
    }

    /// The PSU's context for attended calls.
    pub(crate) fn present(&self) -> PsuContext {
        PsuContext::present(self.target.psu_ip.clone())
    }

    // --- sending ------------------------------------------------------------------------

    /// A request built by the pipeline, not signed: attended (`PSU-IP-Address`) or not.
    pub(crate) fn build(
        &self,
        method: Method,
        target: &str,
        body: Option<Vec<u8>>,
        token: Option<&Token>,
        attended: bool,
    ) -> Result<RawRequest, Verdict> {
        let request = StetRequest {
            method,
            target: target.to_owned(),
            body,
            headers: Vec::new(),
            auth: Auth::None,
            psu: attended.then(|| self.present()),
        };
        self.transport()
            .raw_request(&request, token)
            .map_err(|e| Verdict::fail(format!("cannot build the request for {target}: {e}")))
    }

    /// Signs a request as the bank's profile says, now.
    pub(crate) fn sign(&self, raw: &mut RawRequest) -> Result<(), Verdict> {
        let signing = self.transport().signing_profile().clone();
        self.transport()
            .sign_raw(raw, &signing, SystemTime::now())
            .map(|_| ())
            .map_err(|e| Verdict::fail(format!("cannot sign the request: {e}")))
    }

    /// Sends `raw` through the transport (the QWAC on the connection) and logs the exchange.
    pub(crate) async fn send(
        &self,
        log: &Log,
        purpose: &str,
        raw: &RawRequest,
    ) -> Result<Answer, String> {
        let started = Instant::now();
        let request = recorded_request(
            raw.message.method(),
            raw.url.as_str(),
            raw.message.headers(),
            raw.message.body(),
        );
        let result = self.transport().send_raw(raw).await;
        let duration_ms = started.elapsed().as_millis() as u64;
        match result {
            Ok(r) => {
                let answer = Answer {
                    status: r.status,
                    headers: r.headers,
                    body: r.body,
                };
                log.push(Exchange {
                    purpose: purpose.to_owned(),
                    request,
                    response: Some(recorded_response(&answer)),
                    error: None,
                    duration_ms,
                });
                Ok(answer)
            }
            Err(e) => {
                let error = chain(&e);
                log.push(Exchange {
                    purpose: purpose.to_owned(),
                    request,
                    response: None,
                    error: Some(error.clone()),
                    duration_ms,
                });
                Err(error)
            }
        }
    }

    /// Sends a request through another client (none or a forged client certificate), exactly
    /// as built, and logs the exchange. `Err` is why no answer came (a refused handshake).
    pub(crate) async fn send_through(
        &self,
        log: &Log,
        purpose: &str,
        client: &reqwest::Client,
        outgoing: Outgoing<'_>,
    ) -> Result<Answer, String> {
        let Outgoing {
            method,
            url,
            headers,
            body,
        } = outgoing;
        let started = Instant::now();
        let recorded = recorded_request(method, url.as_str(), headers, body);
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let mut request = client.request(method, url.clone());
        for (n, v) in headers {
            // reqwest writes Host and Content-Length itself, from the URL and the body.
            if n.eq_ignore_ascii_case("host") || n.eq_ignore_ascii_case("content-length") {
                continue;
            }
            request = request.header(n.as_str(), v.as_str());
        }
        if !body.is_empty() {
            request = request.body(body.to_vec());
        }
        let result = async {
            let response = request.send().await.map_err(|e| chain(&e))?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = response.bytes().await.map_err(|e| chain(&e))?;
            Ok::<_, String>(Answer {
                status,
                headers,
                body: body.to_vec(),
            })
        }
        .await;
        let duration_ms = started.elapsed().as_millis() as u64;
        log.push(Exchange {
            purpose: purpose.to_owned(),
            request: recorded,
            response: result.as_ref().ok().map(recorded_response),
            error: result.as_ref().err().cloned(),
            duration_ms,
        });
        result
    }

    // --- OAuth ----------------------------------------------------------------------------

    pub(crate) fn client_id(&self) -> Result<String, String> {
        self.target.profile.client_id.clone().ok_or_else(|| {
            format!(
                "profile `{}` has no client_id: add the one the bank registered",
                self.target.profile.name
            )
        })
    }

    pub(crate) fn token_url(&self) -> Result<Url, String> {
        self.target.profile.token_url.clone().ok_or_else(|| {
            format!(
                "profile `{}` has no token_url: add the bank's token endpoint",
                self.target.profile.name
            )
        })
    }

    /// The form and headers of a token request, with the profile's client authentication.
    fn token_request(
        &self,
        mut form: Vec<(&str, String)>,
        with_secret: bool,
    ) -> Result<Form, String> {
        use base64::Engine as _;
        let client_id = self.client_id()?;
        let mut headers = vec![(
            "Content-Type".to_owned(),
            "application/x-www-form-urlencoded".to_owned(),
        )];
        let secret = self
            .target
            .profile
            .client_secret
            .as_ref()
            .filter(|_| with_secret);
        match (self.target.profile.client_auth, secret) {
            (ClientAuth::ClientSecretBasic, Some(secret)) => {
                let enc = |s: &str| {
                    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>()
                };
                let pair = format!("{}:{}", enc(&client_id), enc(secret.expose()));
                headers.push((
                    "Authorization".to_owned(),
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(pair)
                    ),
                ));
            }
            (ClientAuth::ClientSecretPost, Some(secret)) => {
                form.push(("client_id", client_id));
                form.push(("client_secret", secret.expose().to_owned()));
            }
            _ => form.push(("client_id", client_id)),
        }
        let mut body = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &form {
            body.append_pair(k, v);
        }
        Ok((headers, body.finish().into_bytes()))
    }

    /// Posts a token request (over mutual TLS, or `without_certificate`) and reads the answer.
    pub(crate) async fn token_call(
        &self,
        log: &Log,
        purpose: &str,
        form: Vec<(&str, String)>,
        without_certificate: bool,
        scopes: &[String],
    ) -> Result<Granted, String> {
        let url = self.token_url()?;
        let (headers, body) = self.token_request(form, !without_certificate)?;
        let client = if without_certificate {
            &self.plain
        } else {
            &self.mtls
        };
        let answer = self
            .send_through(
                log,
                purpose,
                client,
                Outgoing {
                    method: "POST",
                    url: &url,
                    headers: &headers,
                    body: &body,
                },
            )
            .await?;
        let json = answer.json().unwrap_or(Value::Null);
        match json.get("access_token").and_then(Value::as_str) {
            Some(access) if answer.is_success() => {
                let now = unix(SystemTime::now());
                let granted: Vec<String> = json
                    .get("scope")
                    .and_then(Value::as_str)
                    .map(|s| {
                        s.split(' ')
                            .filter(|s| !s.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_else(|| scopes.to_vec());
                Ok(Granted::Token(Token {
                    access_token: Secret::new(access),
                    token_type: "Bearer".to_owned(),
                    expires_at: json
                        .get("expires_in")
                        .and_then(Value::as_u64)
                        .map(|s| now + s),
                    refresh_token: json
                        .get("refresh_token")
                        .and_then(Value::as_str)
                        .map(Secret::new),
                    scopes: granted,
                    obtained_at: now,
                    authenticated_at: Some(now),
                }))
            }
            _ => Ok(Granted::Refused(answer)),
        }
    }

    fn refused(what: &str, answer: &Answer) -> String {
        format!("the token endpoint refused {what}: {}", answer.brief())
    }

    /// An `/authorize` request for `scopes`, at `at` (a payment's `consentApproval`) or the
    /// profile's endpoint; `pkce: false` leaves the challenge out.
    pub(crate) fn authorize_request(
        &self,
        scopes: &[String],
        at: Option<&Url>,
        pkce_on: bool,
    ) -> Result<Authorize, String> {
        let profile = &self.target.profile;
        let mut url = match at {
            Some(u) => u.clone(),
            None => profile.authorize_url.clone().ok_or_else(|| {
                format!(
                    "profile `{}` has no authorize_url: add the bank's authorization endpoint",
                    profile.name
                )
            })?,
        };
        let redirect_uri = profile
            .redirect_uri
            .as_ref()
            .ok_or_else(|| {
                format!(
                    "profile `{}` has no redirect_uri: add the one registered with the bank",
                    profile.name
                )
            })?
            .to_string();
        let state = uuid::Uuid::new_v4().simple().to_string();
        let (verifier, challenge) = pkce();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &self.client_id()?)
                .append_pair("redirect_uri", &redirect_uri)
                .append_pair("scope", &scopes.join(" "))
                .append_pair("state", &state);
            if pkce_on {
                q.append_pair("code_challenge", &challenge)
                    .append_pair("code_challenge_method", "S256");
            }
        }
        Ok(Authorize {
            url,
            state,
            verifier,
            redirect_uri,
        })
    }

    /// Opens `/authorize` as a browser would and reads where it redirects.
    pub(crate) async fn follow(
        &self,
        log: &Log,
        purpose: &str,
        authorize: &Authorize,
    ) -> Result<Redirected, String> {
        let answer = self
            .send_through(
                log,
                purpose,
                &self.plain,
                Outgoing {
                    method: "GET",
                    url: &authorize.url,
                    headers: &[],
                    body: &[],
                },
            )
            .await?;
        let location = answer
            .header("location")
            .and_then(|l| authorize.url.join(l).ok());
        Ok(Redirected {
            status: answer.status,
            location,
            error: oauth_error(&answer),
        })
    }

    /// Exchanges a code from `authorize` with `verifier`.
    pub(crate) async fn exchange(
        &self,
        log: &Log,
        purpose: &str,
        authorize: &Authorize,
        code: &str,
        verifier: &str,
        scopes: &[String],
    ) -> Result<Granted, String> {
        self.token_call(
            log,
            purpose,
            vec![
                ("grant_type", "authorization_code".to_owned()),
                ("code", code.to_owned()),
                ("redirect_uri", authorize.redirect_uri.clone()),
                ("code_verifier", verifier.to_owned()),
            ],
            false,
            scopes,
        )
        .await
    }

    /// The whole headless flow: `/authorize` approves by itself, the code is exchanged.
    pub(crate) async fn headless_token(
        &self,
        log: &Log,
        scopes: &[String],
        at: Option<&Url>,
    ) -> Result<Token, String> {
        let authorize = self.authorize_request(scopes, at, true)?;
        let redirected = self.follow(log, "authorize (headless)", &authorize).await?;
        if let Some(error) = redirected.param("error") {
            return Err(format!(
                "/authorize answered error `{error}` ({})",
                redirected.param("error_description").unwrap_or_default()
            ));
        }
        let Some(code) = redirected.param("code") else {
            return Err(format!(
                "/authorize answered HTTP {} without redirecting to the redirect_uri with a \
                 code: headless consent needs a sandbox that approves by itself (use --consent \
                 psu, or token after `stet auth login`)",
                redirected.status
            ));
        };
        match self
            .exchange(
                log,
                "token (authorization code)",
                &authorize,
                &code,
                &authorize.verifier,
                scopes,
            )
            .await?
        {
            Granted::Token(t) => Ok(t),
            Granted::Refused(a) => Err(Self::refused("the authorization code", &a)),
        }
    }

    /// An approval by the PSU (or by the sandbox itself), for `scopes` at `at`.
    pub(crate) async fn approval(
        &self,
        log: &Log,
        scopes: &[String],
        at: Option<&Url>,
    ) -> Result<Token, String> {
        match &self.target.consent {
            Consent::Headless => self.headless_token(log, scopes, at).await,
            Consent::Psu(agent) => agent.approve(scopes, at).await,
            Consent::Token(_) => Err(
                "nobody approves at the bank with --consent token: use --consent psu (a PSU at \
                 a browser) or headless (a sandbox that approves by itself)"
                    .to_owned(),
            ),
        }
    }

    async fn refresh(&self, log: &Log, token: &Token) -> Result<Token, String> {
        let Some(refresh) = &token.refresh_token else {
            return Err("the token has expired and the bank issued no refresh token".into());
        };
        match self
            .token_call(
                log,
                "token (refresh)",
                vec![
                    ("grant_type", "refresh_token".to_owned()),
                    ("refresh_token", refresh.expose().to_owned()),
                ],
                false,
                &token.scopes,
            )
            .await?
        {
            Granted::Token(mut t) => {
                if t.refresh_token.is_none() {
                    t.refresh_token = token.refresh_token.clone();
                }
                Ok(t)
            }
            Granted::Refused(a) => Err(Self::refused("the refresh token", &a)),
        }
    }

    // --- prerequisites --------------------------------------------------------------------

    /// The PSU's consent token (AISP), renewed when about to expire (or when `renew`).
    pub(crate) async fn consent(&self, renew: bool) -> Result<Token, Verdict> {
        let mut slot = self.consent.lock().await;
        let log = &self.setup;
        let current = match slot.take() {
            Some(Ok(t)) => Ok(t),
            Some(Err(e)) => Err(e),
            None => {
                let scopes = vec![self.bank().scopes.aisp.clone()];
                let obtained = match &self.target.consent {
                    Consent::Token(t) => t.clone(),
                    _ => self.approval(log, &scopes, None).await,
                };
                if let Ok(t) = &obtained {
                    *self.first_consent.lock().unwrap_or_else(|e| e.into_inner()) = Some(t.clone());
                }
                obtained
            }
        };
        let next = match current {
            Ok(t) if renew || !t.is_fresh(SystemTime::now(), MARGIN) => {
                if t.refresh_token.is_some() {
                    self.refresh(log, &t).await
                } else if renew {
                    Ok(t)
                } else {
                    // Nothing to renew it with: it is used as is, and may be refused.
                    Ok(t)
                }
            }
            other => other,
        };
        *slot = Some(next.clone());
        next.map_err(|e| Verdict::skip("consent", e))
    }

    /// The first consent token of the run, as it was issued (for the expired-token case).
    pub(crate) fn first_consent(&self) -> Option<Token> {
        self.first_consent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A client-credentials token for `scope`, minted again when about to expire (or `renew`).
    pub(crate) async fn client_token(&self, scope: &str, renew: bool) -> Result<Token, Verdict> {
        let mut tokens = self.client_tokens.lock().await;
        if let Some(Ok(t)) = tokens.get(scope)
            && !renew
            && t.is_fresh(SystemTime::now(), MARGIN)
        {
            return Ok(t.clone());
        }
        if let Some(Err(e)) = tokens.get(scope) {
            return Err(Verdict::skip(format!("{scope}-token"), e.clone()));
        }
        let scopes = vec![scope.to_owned()];
        let minted = match self
            .token_call(
                &self.setup,
                &format!("token (client credentials, {scope})"),
                vec![
                    ("grant_type", "client_credentials".to_owned()),
                    ("scope", scope.to_owned()),
                ],
                false,
                &scopes,
            )
            .await
        {
            Ok(Granted::Token(t)) => Ok(t),
            Ok(Granted::Refused(a)) => Err(Self::refused(
                &format!("client credentials for `{scope}`"),
                &a,
            )),
            Err(e) => Err(e),
        };
        tokens.insert(scope.to_owned(), minted.clone());
        minted.map_err(|e| Verdict::skip(format!("{scope}-token"), e))
    }

    /// The PSU's accounts (the first page of `GET /accounts`).
    pub(crate) async fn accounts(&self) -> Result<Vec<AccountRef>, Verdict> {
        let result = self
            .accounts
            .get_or_init(|| async {
                let token = self.consent(false).await.map_err(|v| v.reason)?;
                let mut raw = self
                    .build(Method::GET, "accounts", None, Some(&token), true)
                    .map_err(|v| v.reason)?;
                self.sign(&mut raw).map_err(|v| v.reason)?;
                let answer = self.send(&self.setup, "the PSU's accounts", &raw).await?;
                if !answer.is_success() {
                    return Err(format!("GET accounts answered {}", answer.brief()));
                }
                let json = answer.json().unwrap_or(Value::Null);
                let accounts: Vec<AccountRef> = json
                    .get("accounts")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|a| {
                        Some(AccountRef {
                            id: a.get("resourceId")?.as_str()?.to_owned(),
                            iban: a
                                .pointer("/accountId/iban")
                                .and_then(Value::as_str)
                                .map(str::to_owned),
                        })
                    })
                    .collect();
                if accounts.is_empty() {
                    return Err(format!(
                        "GET accounts answered {} with no account that has a resourceId",
                        answer.status
                    ));
                }
                Ok(accounts)
            })
            .await;
        result.clone().map_err(|e| Verdict::skip("account", e))
    }

    /// The first account of the PSU.
    pub(crate) async fn account(&self) -> Result<AccountRef, Verdict> {
        Ok(self.accounts().await?.remove(0))
    }

    /// Whether `/authorize` can be driven without a PSU.
    pub(crate) fn headless(&self) -> Result<(), Verdict> {
        match self.target.consent {
            Consent::Headless => Ok(()),
            _ => Err(Verdict::skip(
                "headless",
                format!(
                    "this case drives /authorize itself, which needs --consent headless (the \
                     run has --consent {})",
                    self.target.consent.mode()
                ),
            )),
        }
    }

    /// Whether someone (the PSU, or the sandbox) approves payment requests.
    pub(crate) fn approval_possible(&self) -> Result<(), Verdict> {
        match self.target.consent {
            Consent::Token(_) => Err(Verdict::skip(
                "approval",
                "nobody approves payment requests with --consent token: use --consent psu or headless",
            )),
            _ => Ok(()),
        }
    }
}

fn qwac(p: &Profile) -> Result<QwacIdentity, String> {
    let options = stet_transport::LoadOptions {
        allow_invalid_dates: p.allow_expired_certificate,
    };
    match &p.qwac {
        QwacSource::Pem { cert, key } => {
            QwacIdentity::from_pem_files(cert, key, options).map_err(|e| e.to_string())
        }
        QwacSource::Pkcs12 { path, password_env } => {
            let password = match password_env {
                Some(var) => std::env::var(var)
                    .map_err(|_| format!("the environment variable {var} is not set"))?,
                None => String::new(),
            };
            QwacIdentity::from_pkcs12_file(path, &password, options).map_err(|e| e.to_string())
        }
    }
}

/// A self-signed certificate with the QWAC's subject (its organizationIdentifier included):
/// what someone who copied the TPP's name but holds no certificate from a trusted issuer has.
fn forged_identity(qwac: &QwacIdentity) -> Result<reqwest::Identity, String> {
    use der::Decode as _;
    let (certs, _) = qwac.rustls_parts();
    let leaf = certs.first().ok_or("the QWAC has no certificate")?;
    let cert = x509_cert::Certificate::from_der(leaf).map_err(|e| e.to_string())?;
    let mut params = rcgen::CertificateParams::default();
    let mut dn = rcgen::DistinguishedName::new();
    for atv in cert
        .tbs_certificate
        .subject
        .0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
    {
        let Ok(value) = std::str::from_utf8(atv.value.value()) else {
            continue;
        };
        let arcs: Vec<u64> = atv.oid.arcs().map(u64::from).collect();
        dn.push(rcgen::DnType::CustomDnType(arcs), value);
    }
    params.distinguished_name = dn;
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let forged = params.self_signed(&key).map_err(|e| e.to_string())?;
    let pem = format!("{}{}", key.serialize_pem(), forged.pem());
    reqwest::Identity::from_pem(pem.as_bytes()).map_err(|e| chain(&e))
}

/// Shakes hands with the API host (the QWAC presented, the server checked as the transport
/// checks it) and records the version and cipher suite negotiated.
pub(crate) async fn tls_record(profile: &Profile) -> TlsRecord {
    match handshake(profile).await {
        Ok(record) => record,
        Err(e) => TlsRecord {
            version: String::new(),
            cipher: String::new(),
            alpn: None,
            error: Some(e),
        },
    }
}

async fn handshake(profile: &Profile) -> Result<TlsRecord, String> {
    use rustls_pki_types::pem::PemObject as _;
    let url = &profile.api_base;
    let host = url.host_str().ok_or("the API base has no host")?.to_owned();
    if url.scheme() != "https" {
        return Err(format!("{url} is not https: nothing to record"));
    }
    let port = url.port_or_known_default().unwrap_or(443);
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut extra = Vec::new();
    if let Some(ca) = &profile.ca_bundle {
        let pem = std::fs::read(ca).map_err(|e| format!("{}: {e}", ca.display()))?;
        for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
            extra.push(cert.map_err(|e| format!("{}: {e}", ca.display()))?);
        }
    }
    let verifier =
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider.clone())
            .map_err(|e| e.to_string())?;
    let (chain, key) = qwac(profile)?.rustls_parts();
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(chain, key)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let name = rustls_pki_types::ServerName::try_from(host.trim_matches(['[', ']']).to_owned())
        .map_err(|e| e.to_string())?;
    let tcp = tokio::time::timeout(
        profile.connect_timeout,
        tokio::net::TcpStream::connect((host.trim_matches(['[', ']']), port)),
    )
    .await
    .map_err(|_| format!("no connection to {host}:{port} within the connect timeout"))?
    .map_err(|e| format!("cannot connect to {host}:{port}: {e}"))?;
    let tls = tokio::time::timeout(profile.connect_timeout, connector.connect(name, tcp))
        .await
        .map_err(|_| "the TLS handshake timed out".to_owned())?
        .map_err(|e| format!("the TLS handshake failed: {e}"))?;
    let (_, connection) = tls.get_ref();
    Ok(TlsRecord {
        version: connection
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default(),
        cipher: connection
            .negotiated_cipher_suite()
            .map(|c| format!("{:?}", c.suite()))
            .unwrap_or_default(),
        alpn: connection
            .alpn_protocol()
            .map(|a| String::from_utf8_lossy(a).into_owned()),
        error: None,
    })
}
