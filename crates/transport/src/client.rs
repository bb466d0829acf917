//! The signed request pipeline: one [`Transport`] per profile, built once, reused for every
//! request (one TLS session pool, keys read once).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use stet_httpsig::{Backend, PrivateKey, Signer, SigningProfile, sign_request};
use url::Url;

use crate::config::{Profile, QwacSource};
use crate::error::{TransportError, bank_message};
use crate::identity::{LoadOptions, QwacIdentity, load_ca_bundle};
use crate::oauth::{OAuthClient, OAuthSettings};
use crate::psu::PsuContext;
use crate::retry::{RetryPolicy, is_idempotent, parse_retry_after};
use crate::secret::Secret;
use crate::token::{Token, TokenSet, TokenStore, unix};

mod raw;
pub use raw::RawRequest;

/// Which token a request carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// No `Authorization` header.
    None,
    /// A client-credentials token for these scopes (PISP, CBPII).
    ClientCredentials(Vec<String>),
    /// The PSU's consent token stored under this key (obtained through the authorization-code
    /// flow, e.g. by `stet auth login`); refreshed when it is about to expire.
    Consent(String),
    /// This `Authorization` value as it is (`Bearer <registration access token>`, `Basic …`):
    /// for calls outside OAuth, such as registration management. Never logged.
    Header(Secret),
}

/// One STET call to make.
#[derive(Debug, Clone)]
pub struct StetRequest {
    /// The method.
    pub method: Method,
    /// Where: a path relative to the API base (`accounts`), an absolute path
    /// (`/stet/psd2/v1.5/accounts`), or an absolute URL on the bank's host (a `_links` href).
    pub target: String,
    /// The JSON body, exactly as it will be sent and digested.
    pub body: Option<Vec<u8>>,
    /// The token to send.
    pub auth: Auth,
    /// The PSU's context (`PSU-*` headers).
    pub psu: Option<PsuContext>,
    /// Further headers a bank wants on this call (name, value), sent after the others and
    /// signed when the bank's list names them (e.g. Crédit Agricole's
    /// `PSU-Account-Consent-Responsability` on a funds confirmation).
    pub headers: Vec<(String, String)>,
}

impl StetRequest {
    /// A GET of `target`.
    pub fn get(target: impl Into<String>, auth: Auth) -> Self {
        StetRequest {
            method: Method::GET,
            target: target.into(),
            body: None,
            auth,
            psu: None,
            headers: Vec::new(),
        }
    }

    /// A request with a JSON body.
    pub fn with_body(method: Method, target: impl Into<String>, body: Vec<u8>, auth: Auth) -> Self {
        StetRequest {
            method,
            target: target.into(),
            body: Some(body),
            auth,
            psu: None,
            headers: Vec::new(),
        }
    }

    /// Adds the PSU's context (builder style).
    #[must_use]
    pub fn psu(mut self, psu: Option<PsuContext>) -> Self {
        self.psu = psu;
        self
    }

    /// Adds a header the bank wants on this call (builder style).
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// The bank's answer.
#[derive(Debug, Clone)]
pub struct StetResponse {
    /// The HTTP status.
    pub status: u16,
    /// The response headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
    /// The URL requested (after resolving the target).
    pub url: Url,
    /// The `X-Request-ID` of the last attempt.
    pub request_id: String,
    /// How many attempts it took.
    pub attempts: u32,
}

impl StetResponse {
    /// The response when its status is 2xx; otherwise the matching error (rate limited with
    /// the bank's `Retry-After`, or HTTP with the bank's message).
    pub fn error_for_status(self, method: &Method) -> Result<Self, TransportError> {
        match self.status {
            200..=299 => Ok(self),
            429 => Err(TransportError::RateLimited {
                retry_after: retry_after(&self.headers),
            }),
            status => Err(TransportError::Http {
                method: method.to_string(),
                url: self.url.to_string(),
                status,
                bank_message: bank_message(&self.body),
                body: self.body,
            }),
        }
    }
}

pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
}

/// What [`Transport::probe`] saw.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    /// The HTTP status.
    pub status: u16,
    /// The server's `Date`, when it sent one.
    pub date: Option<SystemTime>,
    /// How long the exchange took.
    pub round_trip: Duration,
}

/// Builds a [`Transport`] from a configuration [`Profile`].
pub struct TransportBuilder<'a> {
    profile: &'a Profile,
    store: Option<Arc<dyn TokenStore>>,
    signing: Option<SigningProfile>,
    signing_without_body: Option<SigningProfile>,
    content_type_without_body: bool,
    retry: RetryPolicy,
    access_token: Option<Secret>,
    accept: String,
    backend: Backend,
    max_body: usize,
    sign: bool,
}

impl<'a> TransportBuilder<'a> {
    /// Sends requests without `Signature` (and so without `Digest`): only for the few bank
    /// endpoints that refuse signed requests, such as some banks' registration endpoints.
    #[must_use]
    pub fn unsigned(mut self) -> Self {
        self.sign = false;
        self
    }

    /// Where tokens are kept between runs (default: in memory only).
    #[must_use]
    pub fn token_store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// How requests are signed (default: STET's list, or the profile's `signed_headers`).
    #[must_use]
    pub fn signing_profile(mut self, signing: SigningProfile) -> Self {
        self.signing = Some(signing);
        self
    }

    /// How requests without a body (GET, DELETE) are signed, when the bank wants another
    /// header list for them than for requests with one (default: the same profile as
    /// [`signing_profile`](Self::signing_profile)).
    #[must_use]
    pub fn signing_profile_without_body(mut self, signing: SigningProfile) -> Self {
        self.signing_without_body = Some(signing);
        self
    }

    /// Sends `Content-Type: application/json` on requests without a body too, for banks that
    /// sign `content-type` on every request, GETs included (default: only with a body).
    #[must_use]
    pub fn content_type_without_body(mut self, send: bool) -> Self {
        self.content_type_without_body = send;
        self
    }

    /// The retry policy (default: [`RetryPolicy::default`]).
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Use this access token for every request instead of OAuth (`STET_ACCESS_TOKEN`, for
    /// compliance testing). An empty or blank token is no token: OAuth is used.
    #[must_use]
    pub fn access_token(mut self, token: Option<Secret>) -> Self {
        self.access_token = token.filter(|t| !t.expose().trim().is_empty());
        self
    }

    /// The `Accept` header (default `application/hal+json; charset=utf-8`).
    #[must_use]
    pub fn accept(mut self, accept: impl Into<String>) -> Self {
        self.accept = accept.into();
        self
    }

    /// The largest response body accepted (default 32 MiB).
    #[must_use]
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Loads and checks the QWAC, the CA bundle and the QSealC key, and builds the client.
    pub fn build(self) -> Result<Transport, TransportError> {
        let p = self.profile;
        let options = LoadOptions {
            allow_invalid_dates: p.allow_expired_certificate,
        };
        // The QWAC: a key file (or PKCS#12) as reqwest's identity, or a key in an HSM with a
        // TLS configuration of our own.
        enum Qwac {
            File(QwacIdentity),
            Hsm(crate::hsm::HsmQwac),
        }
        let qwac = match &p.qwac {
            QwacSource::Pem { cert, .. } if p.qwac_key_uri().is_some() => {
                Qwac::Hsm(crate::hsm::HsmQwac::load(
                    cert,
                    p.qwac_key_uri().unwrap_or_default(),
                    p.pkcs11_module.as_deref(),
                    options,
                )?)
            }
            QwacSource::Pem { cert, key } => {
                crate::token::warn_if_readable_by_others(key);
                Qwac::File(QwacIdentity::from_pem_files(cert, key, options)?)
            }
            QwacSource::Pkcs12 { path, password_env } => {
                crate::token::warn_if_readable_by_others(path);
                let password =
                    env_secret(&p.name, password_env.as_deref(), "qwac_p12_password_env")?;
                Qwac::File(QwacIdentity::from_pkcs12_file(
                    path,
                    password.as_ref().map_or("", |s| s.expose()),
                    options,
                )?)
            }
        };
        let signer: Arc<dyn Signer> = match p.qseal_key_uri() {
            Some(uri) => Arc::new(crate::hsm::qseal_signer(uri, p.pkcs11_module.as_deref())?),
            None => {
                let passphrase = env_secret(
                    &p.name,
                    p.qseal_key_passphrase_env.as_deref(),
                    "qseal_key_passphrase_env",
                )?;
                let key_err = |source| TransportError::SigningKey {
                    path: p.qseal_key.display().to_string(),
                    source,
                };
                let key_bytes =
                    std::fs::read(&p.qseal_key).map_err(|source| TransportError::KeyFile {
                        path: p.qseal_key.display().to_string(),
                        source,
                    })?;
                crate::token::warn_if_readable_by_others(&p.qseal_key);
                let key = PrivateKey::from_bytes(
                    &key_bytes,
                    passphrase.as_ref().map(|s| s.expose().as_bytes()),
                )
                .map_err(key_err)?;
                Arc::from(key.signer(self.backend).map_err(key_err)?)
            }
        };

        let mut builder = reqwest::Client::builder()
            .connect_timeout(p.connect_timeout)
            .timeout(p.timeout)
            // Nothing a bank sends is followed: a redirect would carry the signature, and on
            // the token endpoint the credentials, somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(90))
            .https_only(!p.allow_insecure_http);
        let qwac_not_after = match &qwac {
            Qwac::File(identity) => {
                builder = builder.identity(identity.to_reqwest()?);
                if let Some(ca) = &p.ca_bundle {
                    builder = builder.tls_certs_merge(load_ca_bundle(ca)?);
                }
                identity.not_after
            }
            Qwac::Hsm(hsm) => {
                builder =
                    builder.tls_backend_preconfigured(hsm.tls_config(p.ca_bundle.as_deref())?);
                hsm.not_after
            }
        };
        let http = builder.build().map_err(|e| TransportError::Tls {
            host: p.api_base.host_str().unwrap_or_default().to_owned(),
            detail: error_chain(&e),
        })?;

        let signing = match self.signing {
            Some(s) => s,
            None => {
                let s = SigningProfile::stet(p.key_id.clone());
                match &p.signed_headers {
                    Some(list) => s.with_headers(list),
                    None => s,
                }
            }
        };
        signing
            .validate()
            .map_err(|e| TransportError::Sign(e.into()))?;
        let signing_without_body = match self.signing_without_body {
            Some(s) => {
                s.validate().map_err(|e| TransportError::Sign(e.into()))?;
                s
            }
            None => signing.clone(),
        };

        let oauth = match (&p.token_url, &p.client_id) {
            (Some(token_url), Some(client_id)) => Some(OAuthClient::new(
                OAuthSettings {
                    profile: p.name.clone(),
                    client_id: client_id.clone(),
                    client_secret: p.client_secret.clone(),
                    client_auth: p.client_auth,
                    token_url: token_url.clone(),
                    authorize_url: p.authorize_url.clone(),
                    redirect_uri: p.redirect_uri.clone(),
                },
                http.clone(),
            )),
            _ => None,
        };
        Ok(Transport {
            inner: Arc::new(Inner {
                http,
                api_base: p.api_base.clone(),
                signing,
                signing_without_body,
                content_type_without_body: self.content_type_without_body,
                signer,
                oauth,
                tokens: Tokens {
                    profile: p.name.clone(),
                    store: self
                        .store
                        .unwrap_or_else(|| Arc::new(crate::token::MemoryTokenStore::default())),
                    fixed: self.access_token,
                    cache: tokio::sync::Mutex::new(None),
                    margin: Duration::from_secs(60),
                },
                retry: self.retry,
                timeout: p.timeout,
                accept: self.accept,
                max_body: self.max_body,
                sign: self.sign,
                qwac_not_after,
            }),
        })
    }
}

fn env_secret(
    profile: &str,
    var: Option<&str>,
    key: &'static str,
) -> Result<Option<Secret>, TransportError> {
    let Some(var) = var else { return Ok(None) };
    std::env::var(var)
        .map(|v| Some(Secret::new(v)))
        .map_err(|_| {
            TransportError::Config(crate::config::ConfigError::Invalid {
                profile: profile.to_owned(),
                key,
                detail: format!("the environment variable {var} is not set"),
            })
        })
}

/// Talks to one bank: signs, authenticates, sends, retries what is safe to retry.
///
/// Cheap to clone (an `Arc` inside); share one per profile.
#[derive(Clone)]
pub struct Transport {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    api_base: Url,
    signing: SigningProfile,
    signing_without_body: SigningProfile,
    content_type_without_body: bool,
    signer: Arc<dyn Signer>,
    oauth: Option<OAuthClient>,
    tokens: Tokens,
    retry: RetryPolicy,
    timeout: Duration,
    accept: String,
    max_body: usize,
    sign: bool,
    qwac_not_after: SystemTime,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("api_base", &self.inner.api_base.as_str())
            .field("profile", &self.inner.tokens.profile)
            .finish_non_exhaustive()
    }
}

/// How many times one request may meet a token the bank refused (401, `invalid_token`) before
/// the refusal is final: the first renews it, the others follow renewals made meanwhile by
/// requests running at the same time (a token shared by a sync's accounts can be renewed, then
/// expire again, while one request waits on its retries).
const MAX_TOKEN_REJECTIONS: u32 = 3;

impl Transport {
    /// Starts building a transport for `profile`.
    pub fn builder(profile: &Profile) -> TransportBuilder<'_> {
        TransportBuilder {
            profile,
            store: None,
            signing: None,
            signing_without_body: None,
            content_type_without_body: false,
            retry: RetryPolicy::default(),
            access_token: None,
            accept: "application/hal+json; charset=utf-8".to_owned(),
            backend: Backend::default(),
            max_body: 32 * 1024 * 1024,
            sign: true,
        }
    }

    /// The API base URL (ending with `/`).
    pub fn api_base(&self) -> &Url {
        &self.inner.api_base
    }

    /// The name of the profile this transport was built for (where its tokens are kept).
    pub fn profile(&self) -> &str {
        &self.inner.tokens.profile
    }

    /// The OAuth2 client, when the profile has a token endpoint and a client id.
    pub fn oauth(&self) -> Option<&OAuthClient> {
        self.inner.oauth.as_ref()
    }

    /// When the QWAC expires.
    pub fn qwac_not_after(&self) -> SystemTime {
        self.inner.qwac_not_after
    }

    /// The stored tokens of this profile.
    pub async fn tokens(&self) -> Result<TokenSet, TransportError> {
        let mut cache = self.inner.tokens.cache.lock().await;
        Ok(self.inner.tokens.loaded(&mut cache)?.clone())
    }

    /// Stores a token (a consent obtained through the authorization-code flow) under `key`.
    pub async fn store_token(&self, key: &str, token: Token) -> Result<(), TransportError> {
        let t = &self.inner.tokens;
        let mut cache = t.cache.lock().await;
        let (_lock, set) = t.reload_locked(&mut cache).await?;
        set.tokens.insert(key.to_owned(), token);
        t.store
            .save(&t.profile, set)
            .map_err(|e| TransportError::Store(e.to_string()))
    }

    /// Forgets every token of this profile; whether there were any.
    pub async fn forget_tokens(&self) -> Result<bool, TransportError> {
        let t = &self.inner.tokens;
        let mut cache = t.cache.lock().await;
        let _lock = t.lock_store().await?;
        *cache = Some(TokenSet::default());
        t.store
            .delete(&t.profile)
            .map_err(|e| TransportError::Store(e.to_string()))
    }

    /// Sends an unsigned, unauthenticated GET to `url`, which must be on the bank's API, token
    /// or authorization host: for `stet doctor`, to check the TLS handshake with the QWAC,
    /// reachability, and the clock against the bank's `Date`. Any HTTP status counts as
    /// reachable.
    pub async fn probe(&self, url: &Url) -> Result<Probe, TransportError> {
        let inner = &self.inner;
        let allowed = std::iter::once(&inner.api_base)
            .chain(inner.oauth.iter().map(|o| &o.settings().token_url))
            .chain(
                inner
                    .oauth
                    .iter()
                    .filter_map(|o| o.settings().authorize_url.as_ref()),
            )
            .any(|u| origin(u) == origin(url));
        if !allowed {
            return Err(TransportError::ForeignHost {
                url: url.to_string(),
                expected: origin(&inner.api_base),
            });
        }
        let started = Instant::now();
        let response = inner
            .http
            .get(url.clone())
            .send()
            .await
            .map_err(|e| classify(&e, "GET", url.as_str(), false))?;
        let date = response
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok());
        Ok(Probe {
            status: response.status().as_u16(),
            date,
            round_trip: started.elapsed(),
        })
    }

    /// Resolves a request target against the API base, refusing other hosts.
    pub fn resolve(&self, target: &str) -> Result<Url, TransportError> {
        resolve_on(&self.inner.api_base, target)
    }

    /// Sends `request`: resolves the target, attaches the token, signs, sends, and retries
    /// what may be retried. Any HTTP status is returned as a response (see
    /// [`StetResponse::error_for_status`]); an error means no usable response.
    pub async fn send(&self, request: &StetRequest) -> Result<StetResponse, TransportError> {
        let url = self.resolve(&request.target)?;
        let inner = &self.inner;
        let idempotent = is_idempotent(&request.method);
        let started = Instant::now();
        let mut waited = Duration::ZERO;
        let mut attempt = 0u32;
        let mut rejections = 0u32;
        let mut renewed = false;
        loop {
            attempt += 1;
            let token = inner
                .tokens
                .token(inner.oauth.as_ref(), &request.auth, false)
                .await?;
            let (http_request, request_id) =
                self.prepare_signed(request, &url, token.clone()).await?;
            let t0 = Instant::now();
            let outcome = inner.http.execute(http_request).await;
            let response = match outcome {
                Ok(r) => r,
                Err(e) => {
                    let sent = !e.is_connect();
                    let mut err = classify(&e, request.method.as_str(), url.as_str(), sent);
                    if let TransportError::Timeout { after, .. } = &mut err {
                        *after = inner.timeout;
                    }
                    tracing::debug!(
                        method = %request.method, path = url.path(), request_id = %request_id,
                        attempt, error = %err, "request failed"
                    );
                    if !idempotent && sent {
                        return Err(outcome_unknown(&request.method, &url, &lost(&err)));
                    }
                    if err.is_transient() && self.may_retry(attempt, &mut waited, None).await {
                        continue;
                    }
                    return Err(err);
                }
            };
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = match self.read_body(response, &url).await {
                Ok(b) => b,
                Err(err) => {
                    if matches!(err, TransportError::TooLarge { .. }) {
                        return Err(err);
                    }
                    if !idempotent {
                        return Err(outcome_unknown(&request.method, &url, &lost(&err)));
                    }
                    if self.may_retry(attempt, &mut waited, None).await {
                        continue;
                    }
                    return Err(err);
                }
            };
            tracing::debug!(
                method = %request.method,
                path = url.path(),
                status,
                request_id = %request_id,
                duration_ms = t0.elapsed().as_millis() as u64,
                attempt,
                "stet request"
            );
            if status == 401
                && rejections < MAX_TOKEN_REJECTIONS
                && inner.tokens.fixed.is_none()
                && token_rejected(&headers, &body)
                && let Some(rejected) = &token
            {
                rejections += 1;
                // Requests running at the same time share the token: when one of them has
                // already renewed it, this one takes the new token instead of renewing again
                // (which would retire the token the others just got). This request renews
                // it once at most: a token refused right after its renewal stays refused.
                let current = inner
                    .tokens
                    .token(inner.oauth.as_ref(), &request.auth, false)
                    .await?;
                let renewed_meanwhile =
                    current.is_some_and(|t| t.access_token != rejected.access_token);
                if renewed_meanwhile || !renewed {
                    if !renewed_meanwhile {
                        renewed = true;
                        inner
                            .tokens
                            .token(inner.oauth.as_ref(), &request.auth, true)
                            .await?;
                    }
                    attempt -= 1;
                    continue;
                }
            }
            // A gateway's 502 or 504 comes from between us and the bank: the bank may have
            // carried the POST out before the gateway gave up, so the outcome is unknown, not
            // a refusal. (429 and 503 are the bank turning the request away.)
            if !idempotent && matches!(status, 502 | 504) {
                let detail = format!(
                    "a gateway answered {status} {}",
                    reqwest::StatusCode::from_u16(status)
                        .ok()
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or("")
                );
                return Err(outcome_unknown(&request.method, &url, detail.trim_end()));
            }
            let retryable = matches!(status, 429 | 502 | 503 | 504);
            if retryable
                && idempotent
                && self
                    .may_retry(attempt, &mut waited, retry_after(&headers))
                    .await
            {
                continue;
            }
            tracing::trace!(total_ms = started.elapsed().as_millis() as u64, "done");
            return Ok(StetResponse {
                status,
                headers,
                body,
                url,
                request_id,
                attempts: attempt,
            });
        }
    }

    /// Waits before the next attempt when the policy allows one.
    async fn may_retry(&self, attempt: u32, waited: &mut Duration, hint: Option<Duration>) -> bool {
        wait_before_retry(&self.inner.retry, attempt, waited, hint).await
    }

    /// [`prepare`](Self::prepare), on a blocking thread when the signer waits on a device (an
    /// HSM), so the runtime's threads keep serving other requests meanwhile.
    async fn prepare_signed(
        &self,
        request: &StetRequest,
        url: &Url,
        token: Option<Token>,
    ) -> Result<(reqwest::Request, String), TransportError> {
        if !self.inner.sign || !self.inner.signer.blocking() {
            return self.prepare(request, url, token.as_ref());
        }
        let (this, request, url) = (self.clone(), request.clone(), url.clone());
        tokio::task::spawn_blocking(move || this.prepare(&request, &url, token.as_ref()))
            .await
            .map_err(|e| TransportError::Hsm {
                what: "the QSealC key (qseal_key)",
                source: stet_pkcs11::Pkcs11Error::Token {
                    operation: "signing",
                    token: String::new(),
                    detail: format!("the signing thread stopped: {e}"),
                },
            })?
    }

    /// Builds the wire request: every header in place, then signed.
    fn prepare(
        &self,
        request: &StetRequest,
        url: &Url,
        token: Option<&Token>,
    ) -> Result<(reqwest::Request, String), TransportError> {
        let inner = &self.inner;
        let (mut message, request_id) = self.message(request, url, token);
        // A request without a body may be signed over fewer headers (a bank profile says so);
        // registration endpoints take unsigned requests (see `TransportBuilder::unsigned`).
        let signing = if request.body.is_some() {
            &inner.signing
        } else {
            &inner.signing_without_body
        };
        if inner.sign {
            sign_request(
                &mut message,
                signing,
                inner.signer.as_ref(),
                SystemTime::now(),
            )?;
        }
        Ok((self.wire(&request.method, url, &message)?, request_id))
    }

    /// The request as a message, every header in place but the signature, and its
    /// `X-Request-ID`.
    fn message(
        &self,
        request: &StetRequest,
        url: &Url,
        token: Option<&Token>,
    ) -> (stet_httpsig::Request, String) {
        let inner = &self.inner;
        let target = &url[url::Position::BeforePath..url::Position::AfterQuery];
        let request_id = uuid::Uuid::new_v4().to_string();
        // Host is signed as the server receives it, but it is not put on the wire here: the
        // HTTP client writes the authority itself, from the same URL and in the same form
        // (the port only when not the scheme's default), as `Host` over HTTP/1.1 and as
        // `:authority` over HTTP/2. A `host` header of our own beside `:authority` gives an
        // HTTP/2 server the host twice, which nginx refuses (400, "client sent duplicate host
        // header").
        let mut message = stet_httpsig::Request::new(request.method.as_str(), target)
            .with_header("Host", host_header(url))
            .with_header("Date", httpdate::fmt_http_date(SystemTime::now()))
            .with_header("X-Request-ID", request_id.clone())
            .with_header("Accept", inner.accept.clone());
        if let Some(body) = &request.body {
            message.append_header("Content-Type", "application/json");
            message.set_body(body.clone());
        } else if inner.content_type_without_body {
            message.append_header("Content-Type", "application/json");
        }
        if let Some(token) = token {
            message.append_header("Authorization", token.authorization());
        }
        if let Auth::Header(value) = &request.auth {
            message.append_header("Authorization", value.expose());
        }
        if let Some(psu) = &request.psu {
            for (name, value) in psu.headers() {
                message.append_header(name, value);
            }
        }
        for (name, value) in &request.headers {
            message.append_header(name.as_str(), value.as_str());
        }
        (message, request_id)
    }

    /// The reqwest request that sends `message` to `url` as it is.
    fn wire(
        &self,
        method: &Method,
        url: &Url,
        message: &stet_httpsig::Request,
    ) -> Result<reqwest::Request, TransportError> {
        let inner = &self.inner;
        let mut wire = reqwest::Request::new(method.clone(), url.clone());
        *wire.timeout_mut() = Some(inner.timeout);
        let headers = wire.headers_mut();
        for (name, value) in message.headers() {
            if name.eq_ignore_ascii_case("host") {
                continue;
            }
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad_header(name))?;
            let mut value = HeaderValue::from_str(value).map_err(|_| bad_header(name.as_str()))?;
            if name == reqwest::header::AUTHORIZATION || name.as_str() == "signature" {
                value.set_sensitive(true);
            }
            headers.append(name, value);
        }
        if !message.body().is_empty() || message.has_header("content-type") {
            *wire.body_mut() = Some(message.body().to_vec().into());
        }
        Ok(wire)
    }

    async fn read_body(
        &self,
        response: reqwest::Response,
        url: &Url,
    ) -> Result<Vec<u8>, TransportError> {
        read_capped(response, url, self.inner.max_body).await
    }
}

/// Resolves a request target against `base`, refusing any other origin: credentials go to the
/// configured host only.
pub(crate) fn resolve_on(base: &Url, target: &str) -> Result<Url, TransportError> {
    let url = if target.starts_with("https://") || target.starts_with("http://") {
        Url::parse(target).map_err(|_| TransportError::ForeignHost {
            url: target.to_owned(),
            expected: origin(base),
        })?
    } else {
        base.join(target).map_err(|_| TransportError::ForeignHost {
            url: target.to_owned(),
            expected: origin(base),
        })?
    };
    if origin(&url) != origin(base) {
        return Err(TransportError::ForeignHost {
            url: url.to_string(),
            expected: origin(base),
        });
    }
    Ok(url)
}

/// Waits before the next attempt when `policy` allows one (`attempt` just failed; `hint` is
/// the server's `Retry-After`).
pub(crate) async fn wait_before_retry(
    policy: &RetryPolicy,
    attempt: u32,
    waited: &mut Duration,
    hint: Option<Duration>,
) -> bool {
    if attempt >= policy.max_attempts {
        return false;
    }
    let wait = hint.unwrap_or_else(|| policy.backoff(attempt));
    if *waited + wait > policy.max_total_wait {
        return false;
    }
    *waited += wait;
    tracing::debug!(wait_ms = wait.as_millis() as u64, attempt, "retrying");
    tokio::time::sleep(wait).await;
    true
}

/// Reads a response body, refusing one larger than `limit` bytes without reading the rest.
pub(crate) async fn read_capped(
    mut response: reqwest::Response,
    url: &Url,
    limit: usize,
) -> Result<Vec<u8>, TransportError> {
    let too_large = || TransportError::TooLarge {
        url: url.to_string(),
        limit,
    };
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    return Err(too_large());
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(classify(&e, "GET", url.as_str(), true)),
        }
    }
}

fn bad_header(name: &str) -> TransportError {
    TransportError::Sign(stet_httpsig::SignError::SigningString(
        stet_httpsig::SigningStringError::MissingHeader(format!("{name} (value not sendable)")),
    ))
}

/// What broke when a sent request's answer was lost. The request was sent: "cannot reach"
/// would be wrong.
pub(crate) fn lost(err: &TransportError) -> String {
    match err {
        TransportError::Connect { detail, .. } => detail.clone(),
        other => other.to_string(),
    }
}

fn outcome_unknown(method: &Method, url: &Url, detail: &str) -> TransportError {
    let detail = detail.to_owned();
    let mut segments = url.path_segments().into_iter().flatten();
    let payment = segments
        .by_ref()
        .find(|s| *s == "payment-requests")
        .map(|_| segments.next().filter(|id| !id.is_empty()));
    let check = match payment {
        // A creation: the bank's id never reached us, and STET has no way to look a payment
        // request up by anything else, so only the bank can tell.
        Some(None) => ": no payment request id came back, so look for the payment at the bank \
                       (the PSU's online banking, or its support) before creating it again"
            .to_owned(),
        Some(Some(id)) => {
            format!(": read the payment request's status with `stet pay status {id}`")
        }
        None => String::new(),
    };
    TransportError::OutcomeUnknown {
        method: method.to_string(),
        url: url.to_string(),
        detail,
        check,
    }
}

/// Whether a 401 says the token (rather than the signature or the certificate) was refused.
fn token_rejected(headers: &HeaderMap, body: &[u8]) -> bool {
    let in_header = headers
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .any(|v| v.to_str().is_ok_and(|s| s.contains("invalid_token")));
    let text = String::from_utf8_lossy(&body[..body.len().min(4096)]).to_ascii_lowercase();
    in_header
        || text.contains("invalid_token")
        || (text.contains("token") && text.contains("expired"))
}

/// `scheme://host:port` with the scheme's default port made explicit: the unit credentials
/// are bound to. Two URLs may share credentials only when their origins are equal.
pub fn origin(url: &Url) -> String {
    format!(
        "{}://{}:{}",
        url.scheme(),
        url.host_str().unwrap_or_default(),
        url.port_or_known_default().unwrap_or_default()
    )
}

/// The `Host` header as it goes on the wire: the port only when it is not the scheme's default.
fn host_header(url: &Url) -> String {
    let host = match url.host() {
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        Some(h) => h.to_string(),
        None => String::new(),
    };
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    }
}

/// Turns a reqwest error into what happened, looking through its causes for TLS errors.
pub(crate) fn classify(e: &reqwest::Error, method: &str, url: &str, _sent: bool) -> TransportError {
    let host = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    if e.is_timeout() {
        return TransportError::Timeout {
            method: method.to_owned(),
            url: url.to_owned(),
            after: Duration::ZERO,
        };
    }
    if let Some(tls) = find_rustls_error(e) {
        return match tls {
            rustls::Error::InvalidCertificate(reason) => TransportError::UntrustedServer {
                host,
                detail: format!("{reason:?}"),
            },
            other => TransportError::Tls {
                host,
                detail: other.to_string(),
            },
        };
    }
    TransportError::Connect {
        host,
        detail: error_chain(e),
    }
}

fn find_rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = current {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        // `io::Error::source` skips the error it wraps, and TLS errors arrive as an io::Error
        // wrapping an io::Error wrapping the rustls error: look inside each.
        if let Some(io) = err.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
        {
            current = Some(inner);
            continue;
        }
        current = err.source();
    }
    None
}

/// An error and its causes on one line.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut current = e.source();
    while let Some(err) = current {
        let text = err.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        current = err.source();
    }
    out
}

struct Tokens {
    profile: String,
    store: Arc<dyn TokenStore>,
    fixed: Option<Secret>,
    cache: tokio::sync::Mutex<Option<TokenSet>>,
    margin: Duration,
}

impl Tokens {
    fn loaded<'c>(
        &self,
        cache: &'c mut Option<TokenSet>,
    ) -> Result<&'c mut TokenSet, TransportError> {
        if cache.is_none() {
            *cache = Some(
                self.store
                    .load(&self.profile)
                    .map_err(|e| TransportError::Store(e.to_string()))?,
            );
        }
        Ok(cache.get_or_insert_with(TokenSet::default))
    }

    /// Waits, off the runtime's threads, for the store's lock against other processes.
    async fn lock_store(&self) -> Result<crate::FileLock, TransportError> {
        let (store, profile) = (self.store.clone(), self.profile.clone());
        tokio::task::spawn_blocking(move || store.lock(&profile))
            .await
            .map_err(|e| TransportError::Store(format!("waiting for the token store: {e}")))?
            .map_err(|e| TransportError::Store(e.to_string()))
    }

    /// Takes the store's lock and reads the tokens afresh into the cache: another run may
    /// have saved since this one read them. Changes saved while the lock is held lose nothing.
    async fn reload_locked<'c>(
        &self,
        cache: &'c mut Option<TokenSet>,
    ) -> Result<(crate::FileLock, &'c mut TokenSet), TransportError> {
        let lock = self.lock_store().await?;
        let set = self
            .store
            .load(&self.profile)
            .map_err(|e| TransportError::Store(e.to_string()))?;
        Ok((lock, cache.insert(set)))
    }

    /// The token for `auth`: cached and fresh, refreshed, or newly obtained. With `force`,
    /// the cached one is not trusted (the bank refused it).
    async fn token(
        &self,
        oauth: Option<&OAuthClient>,
        auth: &Auth,
        force: bool,
    ) -> Result<Option<Token>, TransportError> {
        if matches!(auth, Auth::None | Auth::Header(_)) {
            return Ok(None);
        }
        if let Some(fixed) = &self.fixed {
            return Ok(Some(Token {
                access_token: fixed.clone(),
                token_type: "Bearer".to_owned(),
                expires_at: None,
                refresh_token: None,
                scopes: Vec::new(),
                obtained_at: unix(SystemTime::now()),
                authenticated_at: None,
            }));
        }
        // Held across the fetch, so concurrent requests wait for one token instead of each
        // asking for their own.
        let mut cache = self.cache.lock().await;
        let key = match auth {
            Auth::None | Auth::Header(_) => return Ok(None),
            Auth::ClientCredentials(scopes) => format!("client_credentials {}", scopes.join(" ")),
            Auth::Consent(key) => key.clone(),
        };
        let now = SystemTime::now();
        let used = self.loaded(&mut cache)?.tokens.get(&key).cloned();
        if let Some(t) = &used
            && !force
            && t.is_fresh(now, self.margin)
        {
            return Ok(Some(t.clone()));
        }
        // About to ask the bank: hold other runs of stet off, and see whether one of them has
        // already renewed the token (with a refresh token that this run's copy still names,
        // and that the bank may have retired).
        let (_lock, set) = self.reload_locked(&mut cache).await?;
        let latest = set.tokens.get(&key).cloned();
        if let Some(t) = &latest {
            let renewed_elsewhere = used
                .as_ref()
                .is_none_or(|u| u.access_token != t.access_token);
            if t.is_fresh(now, self.margin) && (!force || renewed_elsewhere) {
                return Ok(Some(t.clone()));
            }
        }
        let missing_oauth = || {
            TransportError::Config(crate::config::ConfigError::Missing {
                key: "token_url",
                profile: self.profile.clone(),
            })
        };
        let fresh = match auth {
            Auth::None | Auth::Header(_) => return Ok(None),
            Auth::ClientCredentials(scopes) => {
                let oauth = oauth.ok_or_else(missing_oauth)?;
                oauth.client_credentials(scopes).await?
            }
            Auth::Consent(_) => match latest {
                Some(t) if t.refresh_token.is_some() => {
                    let oauth = oauth.ok_or_else(missing_oauth)?;
                    match oauth.refresh(&t).await {
                        Ok(fresh) => fresh,
                        Err(TransportError::OAuth { error, description }) => {
                            return Err(TransportError::ConsentRequired {
                                profile: self.profile.clone(),
                                what: key.clone(),
                                detail: format!(
                                    " (the bank refused to refresh it: {error}{})",
                                    description.map(|d| format!(", {d}")).unwrap_or_default()
                                ),
                            });
                        }
                        Err(other) => return Err(other),
                    }
                }
                Some(_) => {
                    return Err(TransportError::ConsentRequired {
                        profile: self.profile.clone(),
                        what: key.clone(),
                        detail: " (the token expired and the bank issued no refresh token)"
                            .to_owned(),
                    });
                }
                None => {
                    return Err(TransportError::ConsentRequired {
                        profile: self.profile.clone(),
                        what: key.clone(),
                        detail: String::new(),
                    });
                }
            },
        };
        set.tokens.insert(key, fresh.clone());
        self.store
            .save(&self.profile, set)
            .map_err(|e| TransportError::Store(e.to_string()))?;
        Ok(Some(fresh))
    }
}
