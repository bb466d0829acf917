//! Signing a request under a [`SigningProfile`].

use std::time::{SystemTime, UNIX_EPOCH};

use crate::digest::{DigestError, check_digest, digest_header_value};
use crate::message::Request;
use crate::params::SignatureParams;
use crate::profile::{ProfileError, SigningProfile};
use crate::signer::{Signer, SignerError};
use crate::signing_string::{SigningStringError, signing_string};

/// Why a request could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The profile is unusable.
    #[error("signing profile: {0}")]
    Profile(#[from] ProfileError),
    /// The request already carries a Digest that does not match its body.
    #[error("the request's Digest header does not match its body: {0}")]
    Digest(#[from] DigestError),
    /// A listed header is missing, or similar.
    #[error(transparent)]
    SigningString(#[from] SigningStringError),
    /// The backend failed.
    #[error(transparent)]
    Signer(#[from] SignerError),
}

/// What signing did, for callers that explain or log it.
///
/// The signing string is not secret (it is made of headers sent in clear); the header value
/// holds the signature and is deliberately left out of `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Signed {
    /// The header names signed, in order, as written in `headers=`.
    pub headers: Vec<String>,
    /// The exact string that was signed.
    pub signing_string: String,
    /// The `Signature` header value that was set on the request.
    pub signature_header: String,
}

impl std::fmt::Debug for Signed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signed")
            .field("headers", &self.headers)
            .field("signing_string", &self.signing_string)
            .field("signature_header", &"<redacted>")
            .finish()
    }
}

/// Signs `request` in place: adds `Digest` when the profile's rules call for one, then sets the
/// `Signature` header.
///
/// - A request with a body, or any request when the profile sets `digest_on_empty_body`, gets
///   `Digest: SHA-256=…` over its exact body bytes. A Digest already present is kept only if it
///   matches the body; otherwise signing fails, because a bank would refuse it.
/// - The header list is the profile's (see [`SigningProfile`] for the `digest` rule), then
///   every `PSU-*` header present when the profile asks for them.
/// - `now` gives `created` (and `expires`) when the profile lists `(created)`/`(expires)`.
pub fn sign_request(
    request: &mut Request,
    profile: &SigningProfile,
    signer: &dyn Signer,
    now: SystemTime,
) -> Result<Signed, SignError> {
    profile.validate()?;

    let wants_digest = !request.body().is_empty() || profile.digest_on_empty_body;
    match request.header("digest") {
        Some(existing) => check_digest(&existing, request.body())?,
        None if wants_digest => {
            request.append_header("Digest", digest_header_value(request.body()))
        }
        None => {}
    }
    let has_digest = request.has_header("digest");

    let mut headers: Vec<String> = profile
        .headers
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .filter(|h| h != "digest" || has_digest)
        .collect();
    if profile.sign_psu_headers {
        for (name, _) in request.headers() {
            let lower = name.to_ascii_lowercase();
            if lower.starts_with("psu-") && !headers.contains(&lower) {
                headers.push(lower);
            }
        }
    }

    let unix = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let created = headers.iter().any(|h| h == "(created)").then_some(unix);
    let expires = match profile.expires_in {
        Some(lifetime) if headers.iter().any(|h| h == "(expires)") => {
            Some(unix + lifetime.as_secs() as i64)
        }
        _ => None,
    };

    let signing_string = signing_string(request, &headers, created, expires)?;
    let signature = signer.sign(signing_string.as_bytes())?;
    let params = SignatureParams {
        key_id: profile.key_id.clone(),
        algorithm: Some(profile.algorithm.clone()),
        created,
        expires,
        headers: headers.clone(),
        signature,
    };
    let signature_header = params.to_header_value();
    request.set_header("Signature", signature_header.clone());
    Ok(Signed {
        headers,
        signing_string,
        signature_header,
    })
}
