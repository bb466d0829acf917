//! Webhook signatures: `BI-Signature`, as Powens sends them when a webhook uses HMAC.
//!
//! `BI-Signature` is `base64(HMAC-SHA256(secret, "POST." + path + "." + BI-Signature-Date +
//! "." + body))`, the body as the exact bytes received, the date as the `BI-Signature-Date`
//! header (UTC, ISO 8601: `2022-06-27T11:08:52.577831Z`). Integrations have seen both the
//! endpoint's path and its full URL used as `path`, so [`verify`] takes every candidate and
//! says which one matched.
//!
//! The comparison is constant-time (aws-lc-rs `hmac::verify`), and a date outside the
//! freshness window is refused before anything else: a replayed webhook is not accepted
//! because its signature was once good.

use std::time::Duration;

use aws_lc_rs::hmac;
use base64::Engine as _;
use time::OffsetDateTime;

/// Why a webhook's signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// The date is not an ISO 8601 date-time.
    #[error(
        "BI-Signature-Date `{0}` is not an ISO 8601 date-time (e.g. 2022-06-27T11:08:52.577831Z)"
    )]
    BadDate(String),
    /// The date is too old, or too far ahead.
    #[error(
        "BI-Signature-Date is {} s {} now, outside the {} s window: a replayed or delayed \
         webhook (or a clock off)",
        off.as_secs(),
        if *ahead { "ahead of" } else { "before" },
        window.as_secs()
    )]
    Stale {
        /// How far off.
        off: Duration,
        /// Whether it is in the future.
        ahead: bool,
        /// The window.
        window: Duration,
    },
    /// The signature is not base64.
    #[error("BI-Signature is not base64")]
    NotBase64,
    /// The signature does not match.
    #[error(
        "BI-Signature does not match the body, date and path ({tried}) under this secret: the \
         body was altered, the secret is another one, or the path is not the one Powens posted to"
    )]
    Mismatch {
        /// The paths tried.
        tried: String,
    },
}

/// The string Powens signs.
fn message(path: &str, date: &str, body: &[u8]) -> Vec<u8> {
    let mut m = format!("POST.{path}.{date}.").into_bytes();
    m.extend_from_slice(body);
    m
}

/// The `BI-Signature` of a webhook (for tests, and for the sandbox).
pub fn sign(secret: &[u8], path: &str, date: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let tag = hmac::sign(&key, &message(path, date, body));
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

/// Reads `BI-Signature-Date`: RFC 3339, or without offset (then UTC).
fn read_date(date: &str) -> Result<OffsetDateTime, WebhookError> {
    let bad = || WebhookError::BadDate(date.chars().take(64).collect());
    let text = date.trim();
    if let Ok(t) = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339) {
        return Ok(t);
    }
    let with_z = format!("{text}Z");
    OffsetDateTime::parse(&with_z, &time::format_description::well_known::Rfc3339)
        .map_err(|_| bad())
}

/// Checks a webhook: the date within `window` of `now`, then the signature under `secret`
/// for one of `paths`. Gives the path that matched.
pub fn verify<'p>(
    secret: &[u8],
    paths: &[&'p str],
    date: &str,
    body: &[u8],
    signature: &str,
    now: OffsetDateTime,
    window: Duration,
) -> Result<&'p str, WebhookError> {
    let at = read_date(date)?;
    let off = at - now;
    let ahead = off.is_positive();
    let off = Duration::from_secs(off.whole_seconds().unsigned_abs());
    if off > window {
        return Err(WebhookError::Stale { off, ahead, window });
    }
    let engine = base64::engine::general_purpose::STANDARD;
    let tag = engine
        .decode(signature.trim())
        .map_err(|_| WebhookError::NotBase64)?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    for path in paths {
        // Constant-time: the time taken says nothing about how much of the tag matched.
        if hmac::verify(&key, &message(path, date, body), &tag).is_ok() {
            return Ok(path);
        }
    }
    Err(WebhookError::Mismatch {
        tried: paths.join(", "),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_and_verifies_with_a_window() {
        let now = OffsetDateTime::parse(
            "2022-06-27T11:09:00Z",
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap();
        let date = "2022-06-27T11:08:52.577831Z";
        let body = br#"{"connection":{"id":7}}"#;
        let sig = sign(b"s3cret", "/v1/webhook-listener", date, body);
        let window = Duration::from_secs(300);
        let paths = [
            "https://tpp.example/v1/webhook-listener",
            "/v1/webhook-listener",
        ];
        assert_eq!(
            verify(b"s3cret", &paths, date, body, &sig, now, window),
            Ok("/v1/webhook-listener")
        );
        assert!(matches!(
            verify(b"other", &paths, date, body, &sig, now, window),
            Err(WebhookError::Mismatch { .. })
        ));
        assert!(matches!(
            verify(
                b"s3cret",
                &paths,
                date,
                br#"{"connection":{"id":8}}"#,
                &sig,
                now,
                window
            ),
            Err(WebhookError::Mismatch { .. })
        ));
        let late = now + time::Duration::hours(1);
        assert!(matches!(
            verify(b"s3cret", &paths, date, body, &sig, late, window),
            Err(WebhookError::Stale { ahead: false, .. })
        ));
        assert!(matches!(
            verify(b"s3cret", &paths, "yesterday", body, &sig, now, window),
            Err(WebhookError::BadDate(_))
        ));
        assert_eq!(
            verify(b"s3cret", &paths, date, body, "%%%", now, window),
            Err(WebhookError::NotBase64)
        );
    }
}
