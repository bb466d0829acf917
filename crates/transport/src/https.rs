//! A plain HTTPS client: no client certificate, no signature, a bearer token at most.
//!
//! Some APIs stet talks to are not STET banks: an aggregator such as Powens is reached with a
//! user token alone. [`HttpsClient`] gives them the same guarantees as the signed pipeline
//! ([`crate::Transport`]) without its eIDAS machinery: one TLS stack (rustls on aws-lc-rs,
//! the platform's roots plus an optional CA bundle, verification never off), connect and
//! request timeouts, redirects never followed, answers capped in size, targets confined to
//! the configured origin, and the same [`RetryPolicy`]: GET, PUT and DELETE are retried on 429
//! (honouring `Retry-After`), 502, 503, 504 and connection failures; a POST is never sent
//! again once it may have reached the server, and a lost answer becomes
//! [`TransportError::OutcomeUnknown`].
//!
//! The bearer token goes in an `Authorization` header marked sensitive; logs (at debug) give
//! method, path, status and duration, never a query string, a header value or a body.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use url::Url;

use crate::client::{
    StetResponse, classify, error_chain, lost, read_capped, resolve_on, retry_after,
    wait_before_retry,
};
use crate::error::TransportError;
use crate::identity::load_ca_bundle;
use crate::retry::{RetryPolicy, is_idempotent};
use crate::secret::Secret;

/// How an [`HttpsClient`] connects.
#[derive(Debug, Clone)]
pub struct HttpsOptions {
    /// Extra CA roots (PEM), besides the platform's: a sandbox with its own CA.
    pub ca_bundle: Option<PathBuf>,
    /// TCP and TLS connect timeout.
    pub connect_timeout: Duration,
    /// Timeout of one attempt, headers and body.
    pub timeout: Duration,
    /// Accept `http://` (local development only).
    pub allow_insecure_http: bool,
    /// The largest answer accepted, in bytes.
    pub max_body: usize,
    /// When to try again.
    pub retry: RetryPolicy,
}

impl Default for HttpsOptions {
    fn default() -> Self {
        HttpsOptions {
            ca_bundle: None,
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            allow_insecure_http: false,
            max_body: 32 * 1024 * 1024,
            retry: RetryPolicy::default(),
        }
    }
}

/// One request for an [`HttpsClient`].
#[derive(Debug, Clone)]
pub struct HttpsRequest {
    /// The method.
    pub method: Method,
    /// A path relative to the base URL, an absolute path, or an absolute URL on the base's
    /// origin (a pagination link).
    pub target: String,
    /// The body, sent as it is.
    pub body: Option<Vec<u8>>,
    /// The body's media type (default `application/json` when there is a body).
    pub content_type: Option<&'static str>,
    /// The bearer token, when the call needs one.
    pub bearer: Option<Secret>,
}

impl HttpsRequest {
    /// A request without body.
    pub fn new(method: Method, target: impl Into<String>) -> Self {
        HttpsRequest {
            method,
            target: target.into(),
            body: None,
            content_type: None,
            bearer: None,
        }
    }

    /// A request with a JSON body.
    pub fn json(method: Method, target: impl Into<String>, body: Vec<u8>) -> Self {
        HttpsRequest {
            body: Some(body),
            ..HttpsRequest::new(method, target)
        }
    }

    /// The same request, with this bearer token (builder style).
    #[must_use]
    pub fn bearer(mut self, token: Option<Secret>) -> Self {
        self.bearer = token;
        self
    }
}

/// An HTTPS client bound to one base URL. Cheap to clone; share one per API.
#[derive(Debug, Clone)]
pub struct HttpsClient {
    http: reqwest::Client,
    base: Url,
    options: HttpsOptions,
}

impl HttpsClient {
    /// A client for `base` (a trailing `/` is added when missing, so relative targets join
    /// under it). Fails when the CA bundle cannot be used or `base` is `http://` without
    /// [`HttpsOptions::allow_insecure_http`].
    pub fn new(mut base: Url, options: HttpsOptions) -> Result<HttpsClient, TransportError> {
        if base.scheme() != "https" && !(base.scheme() == "http" && options.allow_insecure_http) {
            return Err(TransportError::ForeignHost {
                url: base.to_string(),
                expected: "an https:// URL".to_owned(),
            });
        }
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let mut builder = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .timeout(options.timeout)
            // Nothing is followed: a redirect would carry the token somewhere else.
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(90))
            .https_only(!options.allow_insecure_http);
        if let Some(ca) = &options.ca_bundle {
            builder = builder.tls_certs_merge(load_ca_bundle(ca)?);
        }
        let http = builder.build().map_err(|e| TransportError::Tls {
            host: base.host_str().unwrap_or_default().to_owned(),
            detail: error_chain(&e),
        })?;
        Ok(HttpsClient {
            http,
            base,
            options,
        })
    }

    /// The base URL (ending with `/`).
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// Resolves a target against the base URL, refusing other origins.
    pub fn resolve(&self, target: &str) -> Result<Url, TransportError> {
        resolve_on(&self.base, target)
    }

    /// Sends `request` and retries what may be retried. Any HTTP status comes back as a
    /// response; an error means no usable response.
    pub async fn send(&self, request: &HttpsRequest) -> Result<StetResponse, TransportError> {
        let url = self.resolve(&request.target)?;
        let idempotent = is_idempotent(&request.method) || request.method == Method::DELETE;
        let mut waited = Duration::ZERO;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let wire = self.prepare(request, &url)?;
            let started = Instant::now();
            let response = match self.http.execute(wire).await {
                Ok(r) => r,
                Err(e) => {
                    let sent = !e.is_connect();
                    let mut err = classify(&e, request.method.as_str(), url.as_str(), sent);
                    if let TransportError::Timeout { after, .. } = &mut err {
                        *after = self.options.timeout;
                    }
                    tracing::debug!(method = %request.method, path = url.path(), attempt,
                        error = %err, "https request failed");
                    if !idempotent && sent {
                        return Err(unknown_outcome(request, &url, &lost(&err)));
                    }
                    if err.is_transient()
                        && wait_before_retry(&self.options.retry, attempt, &mut waited, None).await
                    {
                        continue;
                    }
                    return Err(err);
                }
            };
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let body = match read_capped(response, &url, self.options.max_body).await {
                Ok(b) => b,
                Err(err @ TransportError::TooLarge { .. }) => return Err(err),
                Err(err) if !idempotent => {
                    return Err(unknown_outcome(request, &url, &lost(&err)));
                }
                Err(err) => {
                    if wait_before_retry(&self.options.retry, attempt, &mut waited, None).await {
                        continue;
                    }
                    return Err(err);
                }
            };
            tracing::debug!(
                method = %request.method,
                path = url.path(),
                status,
                duration_ms = started.elapsed().as_millis() as u64,
                attempt,
                "https request"
            );
            if !idempotent && matches!(status, 502 | 504) {
                return Err(unknown_outcome(
                    request,
                    &url,
                    &format!("a gateway answered {status}"),
                ));
            }
            if matches!(status, 429 | 502 | 503 | 504)
                && idempotent
                && wait_before_retry(
                    &self.options.retry,
                    attempt,
                    &mut waited,
                    retry_after(&headers),
                )
                .await
            {
                continue;
            }
            return Ok(StetResponse {
                status,
                headers,
                body,
                url,
                request_id: String::new(),
                attempts: attempt,
            });
        }
    }

    fn prepare(
        &self,
        request: &HttpsRequest,
        url: &Url,
    ) -> Result<reqwest::Request, TransportError> {
        let mut wire = reqwest::Request::new(request.method.clone(), url.clone());
        *wire.timeout_mut() = Some(self.options.timeout);
        let headers = wire.headers_mut();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(body) = &request.body {
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static(request.content_type.unwrap_or("application/json")),
            );
            *wire.body_mut() = Some(body.clone().into());
        }
        if let Some(token) = &request.bearer {
            let mut value =
                HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
                    TransportError::Store(
                    "the stored token holds characters that cannot go in a header: log in again"
                        .to_owned(),
                )
                })?;
            value.set_sensitive(true);
            wire.headers_mut().insert(AUTHORIZATION, value);
        }
        Ok(wire)
    }
}

fn unknown_outcome(request: &HttpsRequest, url: &Url, detail: &str) -> TransportError {
    TransportError::OutcomeUnknown {
        method: request.method.to_string(),
        url: url.to_string(),
        detail: detail.to_owned(),
        check: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_needs_the_development_flag() {
        let url = Url::parse("http://127.0.0.1:9/api").unwrap();
        assert!(HttpsClient::new(url.clone(), HttpsOptions::default()).is_err());
        let client = HttpsClient::new(
            url,
            HttpsOptions {
                allow_insecure_http: true,
                ..HttpsOptions::default()
            },
        )
        .unwrap();
        assert_eq!(client.base().as_str(), "http://127.0.0.1:9/api/");
        assert_eq!(
            client.resolve("users/me").unwrap().as_str(),
            "http://127.0.0.1:9/api/users/me"
        );
        assert!(matches!(
            client.resolve("https://elsewhere.example/api/users/me"),
            Err(TransportError::ForeignHost { .. })
        ));
    }
}
