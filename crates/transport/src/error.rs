//! What can go wrong between stet and a bank, one variant per thing a user does differently.

use std::time::Duration;

use crate::config::ConfigError;
use crate::identity::IdentityError;

/// A failed exchange with the bank (or its authorization server).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// The configuration cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The QWAC or a CA bundle cannot be used.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The QSealC key cannot be used for signing.
    #[error("QSealC key {path}: {source}")]
    SigningKey {
        /// The key file.
        path: String,
        /// Why.
        source: stet_httpsig::KeyError,
    },
    /// A key in an HSM cannot be opened or used.
    #[error("{what}: {source}")]
    Hsm {
        /// Which key.
        what: &'static str,
        /// Why.
        source: stet_pkcs11::Pkcs11Error,
    },
    /// The QSealC key file cannot be read.
    #[error("cannot read the QSealC key {path}: {source}: check `qseal_key` in the profile")]
    KeyFile {
        /// The key file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The request could not be signed.
    #[error("cannot sign the request: {0}")]
    Sign(#[from] stet_httpsig::SignError),
    /// The bank's certificate is not trusted.
    #[error(
        "the server certificate of {host} is not trusted ({detail}); if this is a sandbox with \
         its own CA, set `ca_bundle` to that CA's PEM file"
    )]
    UntrustedServer {
        /// The host.
        host: String,
        /// The TLS library's reason.
        detail: String,
    },
    /// The TLS handshake failed otherwise (often: the bank refused the QWAC).
    #[error(
        "TLS handshake with {host} failed: {detail} (check that the QWAC is the one registered \
         with this bank and that its chain is complete)"
    )]
    Tls {
        /// The host.
        host: String,
        /// The reason.
        detail: String,
    },
    /// The connection could not be made or broke before a response.
    #[error("cannot reach {host}: {detail}")]
    Connect {
        /// The host.
        host: String,
        /// The reason.
        detail: String,
    },
    /// No response within the timeout.
    #[error("{method} {url} timed out after {after:?}")]
    Timeout {
        /// The method.
        method: String,
        /// The URL.
        url: String,
        /// The timeout that expired.
        after: Duration,
    },
    /// A request that may have changed state (a POST) got no response: it may or may not
    /// have been carried out, and stet does not resend it by itself.
    #[error(
        "{method} {url} got no response ({detail}): the bank may or may not have carried it out. \
         It was not sent again. Check before retrying{check}"
    )]
    OutcomeUnknown {
        /// The method.
        method: String,
        /// The URL.
        url: String,
        /// What happened.
        detail: String,
        /// How to check, when known.
        check: String,
    },
    /// The authorization server answered with an OAuth2 error (RFC 6749 §5.2).
    #[error("the authorization server refused: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    OAuth {
        /// The `error` code.
        error: String,
        /// The `error_description`, when given.
        description: Option<String>,
    },
    /// The token endpoint answered something else than a token or an OAuth error.
    #[error("the token endpoint {url} answered {status}: {detail}")]
    TokenEndpoint {
        /// The token URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// What was wrong.
        detail: String,
    },
    /// The token endpoint redirected; token calls never follow redirects.
    #[error(
        "the token endpoint redirected to {location}; stet never follows redirects on token calls \
         (they would carry credentials elsewhere): check `token_url`"
    )]
    TokenRedirect {
        /// Where it pointed.
        location: String,
    },
    /// No stored consent token for what was asked; the PSU must log in.
    #[error(
        "no valid {what} token for profile `{profile}`: run `stet auth login --profile {profile}`{detail}"
    )]
    ConsentRequired {
        /// The profile.
        profile: String,
        /// Which token.
        what: String,
        /// More detail.
        detail: String,
    },
    /// A URL outside the configured bank.
    #[error(
        "refusing to send credentials to {url}: it is not on the configured bank host {expected}"
    )]
    ForeignHost {
        /// The URL refused.
        url: String,
        /// The configured origin.
        expected: String,
    },
    /// The bank said to slow down and the retry budget is spent.
    #[error("rate limited by the bank{}", retry_after.map(|d| format!(": retry after {} s", d.as_secs())).unwrap_or_default())]
    RateLimited {
        /// The bank's `Retry-After`, when given.
        retry_after: Option<Duration>,
    },
    /// The response body is larger than stet accepts.
    #[error(
        "the response from {url} is larger than {}, stet's limit for one answer: refused \
         without reading the rest. No STET answer is that large: the bank or a proxy in between \
         is misbehaving; try again later, and tell the bank if it lasts",
        size(*limit)
    )]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: usize,
    },
    /// An error status from the bank.
    #[error(
        "{method} {url}: HTTP {status}{}",
        bank_message.as_deref().map(|m| format!(": {m}")).unwrap_or_else(|| {
            " (the bank gave no reason: run the command again with -vv to see the exchange, \
             and show it to the bank if it lasts)"
                .to_owned()
        })
    )]
    Http {
        /// The method.
        method: String,
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
        /// The message of the STET `ErrorModel` (or OAuth error) in the body, when there is one.
        bank_message: Option<String>,
        /// The body.
        body: Vec<u8>,
    },
    /// The token store failed.
    #[error("token store: {0}")]
    Store(String),
}

impl TransportError {
    /// Whether waiting and trying again may help (rate limits, unavailability, timeouts).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            TransportError::RateLimited { .. }
                | TransportError::Timeout { .. }
                | TransportError::Connect { .. }
        ) || matches!(self, TransportError::Http { status, .. } if matches!(status, 502..=504))
    }
}

/// A byte count as people read it: whole MiB when it is, bytes otherwise.
fn size(bytes: usize) -> String {
    const MIB: usize = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// The message of a bank error body: the STET `ErrorModel` (`message`, with `status` and
/// `path`) or an OAuth error (`error`, `error_description`). `None` when the body is neither.
pub fn bank_message(body: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = |k: &str| value.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    match (text("message"), text("error"), text("error_description")) {
        (Some(m), _, _) if !m.is_empty() => Some(m),
        (_, Some(e), Some(d)) => Some(format!("{e}: {d}")),
        (_, Some(e), None) => Some(e),
        _ => None,
    }
}
