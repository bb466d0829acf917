//! The `Digest` header (RFC 3230) as STET uses it: `SHA-256=<base64>` over the exact body bytes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest as _, Sha256};

/// Why a `Digest` header value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DigestError {
    /// The header value is empty.
    #[error("the Digest header is empty: expected `SHA-256=<base64 of the body's SHA-256>`")]
    Empty,
    /// An entry is not `algorithm=value`.
    #[error("Digest entry `{entry}` is not of the form `SHA-256=<base64>`")]
    Malformed {
        /// The entry as read.
        entry: String,
    },
    /// No SHA-256 entry, but one spelled `SHA256` (a common copy-paste error).
    #[error("Digest uses `{found}=`; the RFC 3230 name is `SHA-256=` (with a hyphen)")]
    Misspelled {
        /// The algorithm name found.
        found: String,
    },
    /// No SHA-256 entry at all.
    #[error("Digest has no SHA-256 entry (found: {found}); stet checks `SHA-256=` digests only")]
    NoSha256 {
        /// The algorithm names found.
        found: String,
    },
    /// The SHA-256 value is not base64 of 32 bytes.
    #[error("the SHA-256 value `{value}` in Digest is not the base64 of 32 bytes")]
    BadValue {
        /// The value as read.
        value: String,
    },
    /// The digest does not match the body.
    #[error(
        "Digest does not match the body: the header says `SHA-256={found}`, \
         the body's SHA-256 is `{expected}` (was the body changed after the digest was computed?)"
    )]
    Mismatch {
        /// The base64 digest of the body.
        expected: String,
        /// The base64 digest in the header.
        found: String,
    },
}

/// The `Digest` header value for `body`: `SHA-256=` and the standard, padded base64 of its
/// SHA-256.
///
/// ```
/// assert_eq!(
///     stet_httpsig::digest_header_value(b""),
///     "SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
/// );
/// ```
pub fn digest_header_value(body: &[u8]) -> String {
    format!("SHA-256={}", STANDARD.encode(Sha256::digest(body)))
}

/// Checks a `Digest` header value against `body`.
///
/// The value may list several `algorithm=value` entries separated by commas (RFC 3230); the
/// `SHA-256` one (name compared without regard to case) must be present and match. Others are
/// ignored.
pub fn check_digest(header_value: &str, body: &[u8]) -> Result<(), DigestError> {
    let claimed = sha256_entry(header_value)?;
    let expected = Sha256::digest(body);
    if claimed.as_slice() == expected.as_slice() {
        Ok(())
    } else {
        Err(DigestError::Mismatch {
            expected: STANDARD.encode(expected),
            found: STANDARD.encode(claimed),
        })
    }
}

/// The 32 bytes of the SHA-256 entry of a `Digest` header value.
pub fn sha256_entry(header_value: &str) -> Result<[u8; 32], DigestError> {
    if header_value.trim().is_empty() {
        return Err(DigestError::Empty);
    }
    let mut names = Vec::new();
    for entry in header_value.split(',') {
        let entry = entry.trim();
        let Some((name, value)) = entry.split_once('=') else {
            return Err(DigestError::Malformed {
                entry: entry.to_owned(),
            });
        };
        let name = name.trim();
        if name.is_empty() {
            return Err(DigestError::Malformed {
                entry: entry.to_owned(),
            });
        }
        if name.eq_ignore_ascii_case("sha-256") {
            let value = value.trim();
            let bad = || DigestError::BadValue {
                value: value.to_owned(),
            };
            let bytes = STANDARD.decode(value).map_err(|_| bad())?;
            return bytes.try_into().map_err(|_| bad());
        }
        names.push(name.to_owned());
    }
    match names.iter().find(|n| n.eq_ignore_ascii_case("sha256")) {
        Some(found) => Err(DigestError::Misspelled {
            found: found.clone(),
        }),
        None => Err(DigestError::NoSha256 {
            found: names.join(", "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cavage_body_digest() {
        assert_eq!(
            digest_header_value(b"{\"hello\": \"world\"}"),
            "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="
        );
    }

    #[test]
    fn checks_among_several_entries_any_case() {
        let body = b"{\"hello\": \"world\"}";
        check_digest(
            "MD5=abc, sha-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=",
            body,
        )
        .unwrap();
    }

    #[test]
    fn refuses_each_bad_digest_for_its_own_reason() {
        let body = b"x";
        assert_eq!(check_digest(" ", body), Err(DigestError::Empty));
        assert!(matches!(
            check_digest("SHA-256", body),
            Err(DigestError::Malformed { .. })
        ));
        assert!(matches!(
            check_digest("=abc", body),
            Err(DigestError::Malformed { .. })
        ));
        assert!(matches!(
            check_digest("SHA256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=", body),
            Err(DigestError::Misspelled { .. })
        ));
        assert!(matches!(
            check_digest("MD5=abc", body),
            Err(DigestError::NoSha256 { .. })
        ));
        assert!(matches!(
            check_digest("SHA-256=not base64!", body),
            Err(DigestError::BadValue { .. })
        ));
        assert!(matches!(
            check_digest("SHA-256=AAAA", body),
            Err(DigestError::BadValue { .. })
        ));
        let err =
            check_digest("SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=", body).unwrap_err();
        assert!(matches!(err, DigestError::Mismatch { .. }));
        assert!(err.to_string().contains(&digest_header_value(body)[8..]));
    }
}
