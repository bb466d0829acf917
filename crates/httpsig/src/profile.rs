//! What a bank wants signed, and how: the signing side of a bank dialect, as data.

use std::time::Duration;

/// How requests are signed for one bank: the header list, the keyId, the algorithm label and
/// the few rules on which banks differ.
///
/// `headers` is ordered: the signing string follows it line by line. Names are compared without
/// regard to case and written lowercased. Two entries have special meaning:
///
/// - `digest` is signed whenever the request carries a `Digest` (always when it has a body;
///   on an empty body only with [`digest_on_empty_body`](Self::digest_on_empty_body)). On a
///   bodiless request without Digest it is left out of the list: a bank's list names Digest for
///   every call, but a GET has no body to digest. This is the only entry ever left out.
/// - `(created)` and `(expires)` (draft 11 and later) add the `created` and `expires`
///   parameters; `(expires)` needs [`expires_in`](Self::expires_in). Off by default: STET banks
///   follow the draft up to version 10.
///
/// Every other listed header that the request lacks is an error naming it, never signed as
/// empty and never dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningProfile {
    /// The `keyId` written in the header: a URL to the QSealC certificate, a key id from the
    /// bank's registration, or `SN=…,CA=…`, depending on the bank.
    pub key_id: String,
    /// The `algorithm` label written in the header (`rsa-sha256`).
    pub algorithm: String,
    /// The headers to sign, in order.
    pub headers: Vec<String>,
    /// Also sign every `PSU-*` header the request carries (after the listed ones, in request
    /// order), as STET asks.
    pub sign_psu_headers: bool,
    /// Add and sign a Digest of the empty body on requests without one (some banks want it on
    /// GET).
    pub digest_on_empty_body: bool,
    /// With `(expires)` in the list: how long after `created` the signature expires.
    pub expires_in: Option<Duration>,
}

impl SigningProfile {
    /// The profile of the Cavage draft's default: only `date` signed.
    pub fn new(key_id: impl Into<String>) -> Self {
        SigningProfile {
            key_id: key_id.into(),
            algorithm: "rsa-sha256".to_owned(),
            headers: vec!["date".to_owned()],
            sign_psu_headers: false,
            digest_on_empty_body: false,
            expires_in: None,
        }
    }

    /// What the STET specification asks a TPP to sign: `(request-target)`, `Date`,
    /// `X-Request-ID`, `Digest` when there is a body, and every `PSU-*` header present.
    pub fn stet(key_id: impl Into<String>) -> Self {
        SigningProfile {
            headers: ["(request-target)", "date", "x-request-id", "digest"]
                .map(str::to_owned)
                .to_vec(),
            sign_psu_headers: true,
            ..SigningProfile::new(key_id)
        }
    }

    /// Replaces the header list (builder style).
    #[must_use]
    pub fn with_headers<S: AsRef<str>>(mut self, headers: &[S]) -> Self {
        self.headers = headers
            .iter()
            .map(|h| h.as_ref().to_ascii_lowercase())
            .collect();
        self
    }

    /// Checks the profile is usable: a keyId without control characters, a non-empty list of
    /// valid names without repeats, an algorithm label, `expires_in` when `(expires)` is listed.
    pub fn validate(&self) -> Result<(), ProfileError> {
        if self.key_id.is_empty() || self.key_id.chars().any(char::is_control) {
            return Err(ProfileError::KeyId);
        }
        if !crate::message::is_token(&self.algorithm) {
            return Err(ProfileError::Algorithm(self.algorithm.clone()));
        }
        if self.headers.is_empty() {
            return Err(ProfileError::EmptyHeaders);
        }
        for (i, h) in self.headers.iter().enumerate() {
            let h = h.to_ascii_lowercase();
            let pseudo = matches!(h.as_str(), "(request-target)" | "(created)" | "(expires)");
            if !pseudo && !crate::message::is_token(&h) {
                return Err(ProfileError::HeaderName(h));
            }
            if self.headers[..i].iter().any(|p| p.eq_ignore_ascii_case(&h)) {
                return Err(ProfileError::Repeated(h));
            }
        }
        if self.headers.iter().any(|h| h == "(expires)") && self.expires_in.is_none() {
            return Err(ProfileError::ExpiresWithoutLifetime);
        }
        Ok(())
    }
}

/// Why a [`SigningProfile`] cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// The keyId is empty or holds control characters.
    #[error("the keyId is empty or holds control characters")]
    KeyId,
    /// The algorithm label is not a token.
    #[error("`{0}` is not a valid algorithm label (expected e.g. rsa-sha256)")]
    Algorithm(String),
    /// No header to sign.
    #[error("the signed header list is empty")]
    EmptyHeaders,
    /// A name that is neither a header name nor a known pseudo-header.
    #[error(
        "`{0}` in the signed header list is not a header name, `(request-target)`, `(created)` or `(expires)`"
    )]
    HeaderName(String),
    /// A name listed twice.
    #[error("`{0}` is listed twice in the signed header list")]
    Repeated(String),
    /// `(expires)` without a lifetime.
    #[error("`(expires)` is in the signed header list but the profile sets no expiry lifetime")]
    ExpiresWithoutLifetime,
}
