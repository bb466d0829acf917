//! Verifying a signed request, with one precise reason per rejection.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::digest::{DigestError, check_digest};
use crate::keys::PublicKey;
use crate::message::Request;
use crate::params::{SignatureHeaderError, SignatureParams};
use crate::signing_string::{SigningStringError, signing_string};

/// Finds the public key for a `keyId`.
///
/// Banks resolve a keyId to the TPP's QSealC certificate: by URL, by a registration id, or by
/// issuer and serial number. A [`PublicKey`] resolves every keyId to itself, and a map resolves
/// exact keyIds.
pub trait KeyResolver {
    /// The key for `key_id`, or `None` when it is unknown.
    fn resolve(&self, key_id: &str) -> Option<PublicKey>;
}

impl KeyResolver for PublicKey {
    fn resolve(&self, _key_id: &str) -> Option<PublicKey> {
        Some(self.clone())
    }
}

impl KeyResolver for HashMap<String, PublicKey> {
    fn resolve(&self, key_id: &str) -> Option<PublicKey> {
        self.get(key_id).cloned()
    }
}

/// What a verifier demands beyond a valid signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyPolicy {
    /// Headers the signature must cover (lowercased names, pseudo-headers allowed).
    pub required_headers: Vec<String>,
    /// A request with a body must carry `Digest` and sign it.
    pub require_digest_with_body: bool,
    /// Every `PSU-*` header present must be signed.
    pub require_psu_headers: bool,
    /// The largest difference allowed between `Date` and now; `None` skips the Date check.
    pub max_skew: Option<Duration>,
    /// The smallest RSA key accepted.
    pub min_key_bits: usize,
}

impl Default for VerifyPolicy {
    /// Only the signature itself: no header required, Date within 5 minutes, Digest checked
    /// whenever present, keys of 2048 bits or more.
    fn default() -> Self {
        VerifyPolicy {
            required_headers: Vec::new(),
            require_digest_with_body: false,
            require_psu_headers: false,
            max_skew: Some(Duration::from_secs(300)),
            min_key_bits: 2048,
        }
    }
}

impl VerifyPolicy {
    /// What the strictest STET bank demands: `(request-target)`, `date` and `x-request-id`
    /// signed, `digest` on any body, every `PSU-*` header signed, Date within 5 minutes.
    pub fn stet() -> Self {
        VerifyPolicy {
            required_headers: ["(request-target)", "date", "x-request-id"]
                .map(str::to_owned)
                .to_vec(),
            require_digest_with_body: true,
            require_psu_headers: true,
            ..VerifyPolicy::default()
        }
    }
}

/// A verified signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The keyId the request named.
    pub key_id: String,
    /// The headers covered, in order.
    pub headers: Vec<String>,
    /// The signing string rebuilt from the request.
    pub signing_string: String,
}

/// Why a request's signature was rejected. Each reason says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// No `Signature` header.
    #[error("the request has no Signature header")]
    NoSignature,
    /// The signature came in `Authorization`, where STET puts the OAuth2 token.
    #[error(
        "the signature is in the Authorization header; STET expects it in a `Signature` header \
         (Authorization carries the Bearer token)"
    )]
    SignatureInAuthorization,
    /// Several `Signature` headers.
    #[error("the request has {0} Signature headers; send exactly one")]
    SeveralSignatures(usize),
    /// The header could not be parsed.
    #[error(transparent)]
    Header(#[from] SignatureHeaderError),
    /// Not `rsa-sha256`.
    #[error("algorithm `{0}` is not supported: STET signatures use rsa-sha256")]
    UnsupportedAlgorithm(String),
    /// A header the policy requires is not in the signed list.
    #[error("header `{0}` must be signed but is not in the signature's headers list")]
    NotSigned(String),
    /// The request has a body but no Digest.
    #[error("the request has a body but no Digest header: add `Digest: SHA-256=…` and sign it")]
    MissingDigest,
    /// Digest present but wrong.
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// `Date` required but absent.
    #[error("the request has no Date header, which the date check needs")]
    MissingDate,
    /// `Date` is not an HTTP date.
    #[error("Date `{0}` is not an HTTP date (expected e.g. `Sun, 05 Jan 2014 21:31:40 GMT`)")]
    BadDate(String),
    /// `Date` too far from now.
    #[error(
        "Date `{date}` is {skew_secs} s away from this clock, more than the {max_secs} s allowed: \
         check the sender's clock (or resend: the request may be a replay)"
    )]
    DateSkew {
        /// The Date header.
        date: String,
        /// The difference, in seconds.
        skew_secs: u64,
        /// The allowed maximum, in seconds.
        max_secs: u64,
    },
    /// `expires` in the past.
    #[error("the signature expired at {0} (Unix time)")]
    Expired(i64),
    /// `created` in the future.
    #[error("the signature's created time {0} is in the future")]
    CreatedInFuture(i64),
    /// The signing string could not be rebuilt (a listed header is absent).
    #[error(transparent)]
    SigningString(#[from] SigningStringError),
    /// The keyId is unknown.
    #[error("unknown keyId `{0}`: no key is registered under it")]
    UnknownKey(String),
    /// The key is below the policy's minimum.
    #[error("the key for keyId `{key_id}` is {bits} bits; at least {min} are required")]
    KeyTooShort {
        /// The keyId.
        key_id: String,
        /// The key size.
        bits: usize,
        /// The policy minimum.
        min: usize,
    },
    /// The signature does not match.
    #[error(
        "the signature does not match the request for keyId `{key_id}`: the signing string \
         rebuilt from the request was:\n{signing_string}"
    )]
    Mismatch {
        /// The keyId.
        key_id: String,
        /// The signing string rebuilt here, to compare with the sender's.
        signing_string: String,
    },
}

/// Verifies the `Signature` of `request` against `policy`, resolving its keyId with `keys`.
///
/// The checks run in this order, and the first failure is returned: one Signature header;
/// its parameters; the algorithm (`rsa-sha256`, or absent); the headers the policy requires are
/// covered; Digest matches the body; Date within the skew; `created`/`expires`; the signing
/// string rebuilt (every listed header present); the key found and large enough; the
/// signature.
pub fn verify_request(
    request: &Request,
    policy: &VerifyPolicy,
    keys: &dyn KeyResolver,
    now: SystemTime,
) -> Result<Verified, VerifyError> {
    let values: Vec<&str> = request.header_values("signature").collect();
    let header = match values.as_slice() {
        [] => {
            return Err(match request.header("authorization") {
                Some(a) if crate::message::starts_with_ignore_case(&a, "signature ") => {
                    VerifyError::SignatureInAuthorization
                }
                _ => VerifyError::NoSignature,
            });
        }
        [one] => *one,
        several => return Err(VerifyError::SeveralSignatures(several.len())),
    };
    let params = SignatureParams::parse(header)?;

    if let Some(alg) = &params.algorithm
        && !alg.eq_ignore_ascii_case("rsa-sha256")
    {
        return Err(VerifyError::UnsupportedAlgorithm(alg.clone()));
    }

    let covered = |name: &str| params.headers.iter().any(|h| h == name);
    for required in &policy.required_headers {
        let required = required.to_ascii_lowercase();
        if !covered(&required) {
            return Err(VerifyError::NotSigned(required));
        }
    }
    if policy.require_psu_headers {
        for (name, _) in request.headers() {
            let lower = name.to_ascii_lowercase();
            if lower.starts_with("psu-") && !covered(&lower) {
                return Err(VerifyError::NotSigned(lower));
            }
        }
    }

    match request.header("digest") {
        Some(digest) => check_digest(&digest, request.body())?,
        None if policy.require_digest_with_body && !request.body().is_empty() => {
            return Err(VerifyError::MissingDigest);
        }
        None => {}
    }
    if policy.require_digest_with_body && !request.body().is_empty() && !covered("digest") {
        return Err(VerifyError::NotSigned("digest".to_owned()));
    }

    if let Some(max) = policy.max_skew {
        let date = request.header("date").ok_or(VerifyError::MissingDate)?;
        let sent =
            httpdate::parse_http_date(&date).map_err(|_| VerifyError::BadDate(date.clone()))?;
        let skew = match now.duration_since(sent) {
            Ok(d) => d,
            Err(e) => e.duration(),
        };
        if skew > max {
            return Err(VerifyError::DateSkew {
                date,
                skew_secs: skew.as_secs(),
                max_secs: max.as_secs(),
            });
        }
    }
    let unix = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    if let Some(expires) = params.expires
        && expires < unix
    {
        return Err(VerifyError::Expired(expires));
    }
    if let Some(created) = params.created {
        let allowance = policy.max_skew.map_or(0, |d| d.as_secs() as i64);
        if created > unix.saturating_add(allowance) {
            return Err(VerifyError::CreatedInFuture(created));
        }
    }

    let signing_string = signing_string(request, &params.headers, params.created, params.expires)?;

    let key = keys
        .resolve(&params.key_id)
        .ok_or_else(|| VerifyError::UnknownKey(params.key_id.clone()))?;
    if key.bits() < policy.min_key_bits {
        return Err(VerifyError::KeyTooShort {
            key_id: params.key_id,
            bits: key.bits(),
            min: policy.min_key_bits,
        });
    }
    if !key.verify_rsa_sha256(signing_string.as_bytes(), &params.signature) {
        return Err(VerifyError::Mismatch {
            key_id: params.key_id,
            signing_string,
        });
    }
    Ok(Verified {
        key_id: params.key_id,
        headers: params.headers,
        signing_string,
    })
}
