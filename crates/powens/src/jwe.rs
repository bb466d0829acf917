//! JSON Web Encryption (RFC 7516) as Powens asks for credentials: compact serialization,
//! key management `RSA-OAEP-256` (RFC 7518 §4.3: OAEP with SHA-256 and MGF1-SHA-256), content
//! encryption `A256GCM`, the key's `kid` in the protected header, one JWE per value.
//!
//! Each [`DomainKey::encrypt`] draws a fresh 256-bit content-encryption key and a fresh 96-bit
//! nonce from the system's random generator, wraps the key for the domain's RSA key, and seals
//! the UTF-8 bytes of the value with AES-256-GCM, the protected header's base64url text as
//! additional data (RFC 7516 §5.1 step 14). The five parts are `header.key.iv.ciphertext.tag`.
//!
//! [`DecryptingKey`] is the other side, for the sandbox's Powens mock and for tests: it
//! refuses anything but the algorithms above, a `kid` that is not its own, compression, and
//! any bit changed in any part (the header is authenticated as additional data, the key by
//! OAEP, the rest by the GCM tag).
//!
//! Both run on aws-lc-rs, the signer's crypto; interoperability is checked against Python's
//! jwcrypto in both directions (`tests/jwe_interop.rs`).

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rsa::{
    KeySize, OAEP_SHA256_MGF1SHA256, OaepPrivateDecryptingKey, OaepPublicEncryptingKey,
    PrivateDecryptingKey, PublicEncryptingKey, PublicKeyComponents,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use zeroize::Zeroizing;

/// The `alg` stet writes and accepts.
pub const ALG: &str = "RSA-OAEP-256";
/// The `enc` stet writes and accepts.
pub const ENC: &str = "A256GCM";
/// The smallest RSA key accepted, in bits (aws-lc-rs refuses smaller ones too).
pub const MIN_RSA_BITS: usize = 2048;

/// Why a key or a JWE cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JweError {
    /// The JWK is not JSON, or not an object.
    #[error("the key is not a JWK (a JSON object): {0}")]
    NotAJwk(String),
    /// The JWK is not an RSA key.
    #[error("the key is a `{kty}` key, but Powens encryption (RSA-OAEP-256) needs an RSA key")]
    NotRsa {
        /// The JWK's `kty`.
        kty: String,
    },
    /// A member of the JWK is missing or not valid base64url.
    #[error("the JWK's `{member}` is {problem}")]
    BadMember {
        /// The member.
        member: &'static str,
        /// What is wrong.
        problem: &'static str,
    },
    /// The RSA key is too small.
    #[error(
        "the RSA key is {bits} bits: at least {MIN_RSA_BITS} are needed to protect credentials"
    )]
    TooSmall {
        /// Its size.
        bits: usize,
    },
    /// aws-lc-rs refused the key.
    #[error("the RSA key cannot be used: {0}")]
    Rejected(String),
    /// The token is not five base64url parts.
    #[error("not a compact JWE: {0}")]
    Malformed(&'static str),
    /// The protected header names another algorithm.
    #[error("unsupported JWE `{member}` `{value}`: only {ALG} with {ENC} is accepted")]
    Unsupported {
        /// `alg`, `enc`, `zip` or `crit`.
        member: &'static str,
        /// What it said.
        value: String,
    },
    /// The protected header names another key.
    #[error("the JWE was made for key `{kid}`, not for the current key `{expected}`")]
    UnknownKey {
        /// The header's `kid` (empty when there is none).
        kid: String,
        /// This key's id.
        expected: String,
    },
    /// Decryption failed: a part was changed, or the key is not the one it was made for.
    #[error("the JWE does not decrypt: a part was altered or it was made for another key")]
    Decrypt,
    /// The random generator failed.
    #[error("the system's random generator failed")]
    Random,
}

/// A domain's public encryption key, read from the JWK of `GET /publickey`.
#[derive(Clone)]
pub struct DomainKey {
    kid: String,
    bits: usize,
    key: std::sync::Arc<OaepPublicEncryptingKey>,
}

impl std::fmt::Debug for DomainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DomainKey")
            .field("kid", &self.kid)
            .field("bits", &self.bits)
            .finish()
    }
}

#[derive(Deserialize)]
struct JwkFields {
    kty: Option<String>,
    kid: Option<serde_json::Value>,
    n: Option<String>,
    e: Option<String>,
}

impl DomainKey {
    /// Reads a JWK (`{"kty":"RSA","kid":…,"n":…,"e":…}`; other members are ignored).
    /// Refused: another key type, a missing or empty `kid`, `n` or `e`, a key under
    /// [`MIN_RSA_BITS`].
    pub fn from_jwk(json: &[u8]) -> Result<DomainKey, JweError> {
        let value: serde_json::Value =
            serde_json::from_slice(json).map_err(|e| JweError::NotAJwk(e.to_string()))?;
        // Some servers wrap the key: {"key": {...}} or a JWK set {"keys": [{...}]}.
        let value = match (value.get("keys"), value.get("key")) {
            (Some(serde_json::Value::Array(keys)), _) if !keys.is_empty() => keys[0].clone(),
            (_, Some(inner)) if inner.is_object() => inner.clone(),
            _ => value,
        };
        if !value.is_object() {
            return Err(JweError::NotAJwk(
                "a JSON value that is not an object".into(),
            ));
        }
        let fields: JwkFields =
            serde_json::from_value(value).map_err(|e| JweError::NotAJwk(e.to_string()))?;
        match fields.kty.as_deref() {
            Some("RSA") => {}
            Some(other) => {
                return Err(JweError::NotRsa {
                    kty: other.to_owned(),
                });
            }
            None => {
                return Err(JweError::BadMember {
                    member: "kty",
                    problem: "missing",
                });
            }
        }
        let kid = match fields.kid {
            Some(serde_json::Value::String(s)) if !s.is_empty() => s,
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => {
                return Err(JweError::BadMember {
                    member: "kid",
                    problem: "missing: Powens needs the key id in each JWE header",
                });
            }
        };
        let n = unsigned(fields.n.as_deref(), "n")?;
        let e = unsigned(fields.e.as_deref(), "e")?;
        let bits = n.len() * 8 - n[0].leading_zeros() as usize;
        if bits < MIN_RSA_BITS {
            return Err(JweError::TooSmall { bits });
        }
        let public: PublicEncryptingKey = PublicKeyComponents { n, e }
            .try_into()
            .map_err(|_| JweError::Rejected("aws-lc-rs refused its modulus or exponent".into()))?;
        let key = OaepPublicEncryptingKey::new(public)
            .map_err(|_| JweError::Rejected("not usable for RSA-OAEP".into()))?;
        Ok(DomainKey {
            kid,
            bits,
            key: std::sync::Arc::new(key),
        })
    }

    /// The key's id, written as `kid` in every header.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The RSA modulus size.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// `plaintext` as a compact JWE for this key, with a fresh content key and nonce.
    pub fn encrypt(&self, plaintext: &[u8]) -> Result<String, JweError> {
        let header = serde_json::json!({"alg": ALG, "enc": ENC, "kid": self.kid});
        let header = URL_SAFE_NO_PAD.encode(header.to_string());
        let mut cek = Zeroizing::new([0u8; 32]);
        let mut iv = [0u8; 12];
        aws_lc_rs::rand::fill(cek.as_mut()).map_err(|_| JweError::Random)?;
        aws_lc_rs::rand::fill(&mut iv).map_err(|_| JweError::Random)?;
        let mut wrapped = vec![0u8; self.key.ciphertext_size()];
        let wrapped = self
            .key
            .encrypt(&OAEP_SHA256_MGF1SHA256, cek.as_ref(), &mut wrapped, None)
            .map_err(|_| JweError::Rejected("RSA-OAEP encryption failed".into()))?
            .to_vec();
        let aead = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, cek.as_ref())
                .map_err(|_| JweError::Rejected("AES-256-GCM key".into()))?,
        );
        let mut data = plaintext.to_vec();
        let tag = aead
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(iv),
                Aad::from(header.as_bytes()),
                &mut data,
            )
            .map_err(|_| JweError::Rejected("AES-256-GCM sealing failed".into()))?;
        Ok(format!(
            "{header}.{}.{}.{}.{}",
            URL_SAFE_NO_PAD.encode(wrapped),
            URL_SAFE_NO_PAD.encode(iv),
            URL_SAFE_NO_PAD.encode(&data),
            URL_SAFE_NO_PAD.encode(tag.as_ref())
        ))
    }
}

/// A JWK member holding a big-endian unsigned integer, without its leading zero bytes.
fn unsigned(text: Option<&str>, member: &'static str) -> Result<Vec<u8>, JweError> {
    let text = text.ok_or(JweError::BadMember {
        member,
        problem: "missing",
    })?;
    let bytes = URL_SAFE_NO_PAD
        .decode(text.trim_end_matches('='))
        .map_err(|_| JweError::BadMember {
            member,
            problem: "not base64url",
        })?;
    let first = bytes
        .iter()
        .position(|&b| b != 0)
        .ok_or(JweError::BadMember {
            member,
            problem: "zero",
        })?;
    Ok(bytes[first..].to_vec())
}

/// What a compact JWE's protected header says.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct JweHeader {
    /// Key management algorithm.
    pub alg: String,
    /// Content encryption algorithm.
    pub enc: String,
    /// The key's id.
    #[serde(default)]
    pub kid: Option<String>,
    /// Compression, which stet never accepts.
    #[serde(default)]
    pub zip: Option<String>,
    /// Critical extensions, which stet never accepts.
    #[serde(default)]
    pub crit: Option<serde_json::Value>,
}

/// The parts of a compact JWE, decoded.
struct Parts<'a> {
    header_b64: &'a str,
    header: JweHeader,
    wrapped: Vec<u8>,
    iv: Vec<u8>,
    ciphertext: Vec<u8>,
    tag: Vec<u8>,
}

fn part(text: &str) -> Result<Vec<u8>, JweError> {
    // base64url without padding is the only form RFC 7515 allows.
    URL_SAFE_NO_PAD
        .decode(text)
        .map_err(|_| JweError::Malformed("a part is not base64url without padding"))
}

fn split(compact: &str) -> Result<Parts<'_>, JweError> {
    let pieces: Vec<&str> = compact.trim().split('.').collect();
    let [header_b64, wrapped, iv, ciphertext, tag] = pieces[..] else {
        return Err(JweError::Malformed(
            "it does not have five dot-separated parts",
        ));
    };
    let header: JweHeader = serde_json::from_slice(&part(header_b64)?)
        .map_err(|_| JweError::Malformed("the protected header is not a JWE header"))?;
    Ok(Parts {
        header_b64,
        header,
        wrapped: part(wrapped)?,
        iv: part(iv)?,
        ciphertext: part(ciphertext)?,
        tag: part(tag)?,
    })
}

/// The protected header of a compact JWE, without decrypting anything.
pub fn header(compact: &str) -> Result<JweHeader, JweError> {
    split(compact).map(|p| p.header)
}

/// Whether a value has the shape of a compact JWE (five base64url parts whose first is a
/// JSON header with `alg` and `enc`). Says nothing about whether it decrypts.
pub fn looks_like_jwe(value: &str) -> bool {
    split(value).is_ok()
}

/// An RSA private key that decrypts JWEs: the Powens side, for the sandbox's mock and tests.
pub struct DecryptingKey {
    kid: String,
    key: OaepPrivateDecryptingKey,
    /// The public key, as a JWK.
    jwk: serde_json::Value,
}

impl std::fmt::Debug for DecryptingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptingKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl DecryptingKey {
    /// A new RSA-2048 key named `kid`.
    pub fn generate(kid: impl Into<String>) -> Result<DecryptingKey, JweError> {
        let key = PrivateDecryptingKey::generate(KeySize::Rsa2048)
            .map_err(|_| JweError::Rejected("RSA key generation failed".into()))?;
        DecryptingKey::new(key, kid.into())
    }

    /// A key from PKCS#8 DER.
    pub fn from_pkcs8(der: &[u8], kid: impl Into<String>) -> Result<DecryptingKey, JweError> {
        let key =
            PrivateDecryptingKey::from_pkcs8(der).map_err(|e| JweError::Rejected(e.to_string()))?;
        DecryptingKey::new(key, kid.into())
    }

    fn new(key: PrivateDecryptingKey, kid: String) -> Result<DecryptingKey, JweError> {
        if key.key_size_bits() < MIN_RSA_BITS {
            return Err(JweError::TooSmall {
                bits: key.key_size_bits(),
            });
        }
        let spki = key
            .public_key()
            .as_der()
            .map_err(|_| JweError::Rejected("cannot write the public key".into()))?;
        let jwk = public_jwk(spki.as_ref(), &kid)?;
        let key = OaepPrivateDecryptingKey::new(key)
            .map_err(|_| JweError::Rejected("not usable for RSA-OAEP".into()))?;
        Ok(DecryptingKey { kid, key, jwk })
    }

    /// The key's id.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK: `kty`, `kid`, `use`, `alg`, `n`, `e`.
    pub fn public_jwk(&self) -> &serde_json::Value {
        &self.jwk
    }

    /// The plaintext of a compact JWE made for this key. Refused: another `alg` or `enc`,
    /// `zip`, `crit`, another `kid`, and any altered part.
    pub fn decrypt(&self, compact: &str) -> Result<Zeroizing<Vec<u8>>, JweError> {
        let p = split(compact)?;
        if p.header.alg != ALG {
            return Err(JweError::Unsupported {
                member: "alg",
                value: p.header.alg,
            });
        }
        if p.header.enc != ENC {
            return Err(JweError::Unsupported {
                member: "enc",
                value: p.header.enc,
            });
        }
        if let Some(zip) = p.header.zip {
            return Err(JweError::Unsupported {
                member: "zip",
                value: zip,
            });
        }
        if let Some(crit) = p.header.crit {
            return Err(JweError::Unsupported {
                member: "crit",
                value: crit.to_string(),
            });
        }
        if p.header.kid.as_deref() != Some(self.kid.as_str()) {
            return Err(JweError::UnknownKey {
                kid: p.header.kid.unwrap_or_default(),
                expected: self.kid.clone(),
            });
        }
        if p.iv.len() != 12 || p.tag.len() != 16 {
            return Err(JweError::Malformed(
                "the IV must be 96 bits and the tag 128",
            ));
        }
        let mut cek = Zeroizing::new(vec![0u8; self.key.min_output_size()]);
        let cek_len = self
            .key
            .decrypt(&OAEP_SHA256_MGF1SHA256, &p.wrapped, &mut cek, None)
            .map_err(|_| JweError::Decrypt)?
            .len();
        if cek_len != 32 {
            return Err(JweError::Decrypt);
        }
        let aead = LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &cek[..32]).map_err(|_| JweError::Decrypt)?,
        );
        let mut iv = [0u8; 12];
        iv.copy_from_slice(&p.iv);
        let mut data = Zeroizing::new(p.ciphertext);
        data.extend_from_slice(&p.tag);
        let plain_len = aead
            .open_in_place(
                Nonce::assume_unique_for_key(iv),
                Aad::from(p.header_b64.as_bytes()),
                &mut data,
            )
            .map_err(|_| JweError::Decrypt)?
            .len();
        data.truncate(plain_len);
        Ok(data)
    }
}

/// The JWK of an RSA public key given as SubjectPublicKeyInfo DER.
fn public_jwk(spki_der: &[u8], kid: &str) -> Result<serde_json::Value, JweError> {
    use pkcs1::der::Decode as _;
    let info = spki::SubjectPublicKeyInfoRef::from_der(spki_der)
        .map_err(|e| JweError::Rejected(format!("public key: {e}")))?;
    let rsa = pkcs1::RsaPublicKey::from_der(info.subject_public_key.raw_bytes())
        .map_err(|e| JweError::Rejected(format!("RSA public key: {e}")))?;
    Ok(serde_json::json!({
        "kty": "RSA",
        "kid": kid,
        "use": "enc",
        "alg": ALG,
        "n": URL_SAFE_NO_PAD.encode(rsa.modulus.as_bytes()),
        "e": URL_SAFE_NO_PAD.encode(rsa.public_exponent.as_bytes()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (DecryptingKey, DomainKey) {
        let private = DecryptingKey::generate("k-1").unwrap();
        let public = DomainKey::from_jwk(private.public_jwk().to_string().as_bytes()).unwrap();
        (private, public)
    }

    #[test]
    fn round_trip_with_kid_and_fresh_keys() {
        let (private, public) = pair();
        assert_eq!(public.kid(), "k-1");
        assert_eq!(public.bits(), 2048);
        let a = public.encrypt("Code (1234)".as_bytes()).unwrap();
        let b = public.encrypt("Code (1234)".as_bytes()).unwrap();
        let (pa, pb): (Vec<&str>, Vec<&str>) = (a.split('.').collect(), b.split('.').collect());
        assert_eq!(pa.len(), 5);
        // Same header; fresh key, IV and so ciphertext for each value.
        assert_eq!(pa[0], pb[0]);
        for i in 1..5 {
            assert_ne!(pa[i], pb[i], "part {i} must differ between two encryptions");
        }
        let h = header(&a).unwrap();
        assert_eq!((h.alg.as_str(), h.enc.as_str()), (ALG, ENC));
        assert_eq!(h.kid.as_deref(), Some("k-1"));
        assert_eq!(&private.decrypt(&a).unwrap()[..], "Code (1234)".as_bytes());
        assert_eq!(
            &private.decrypt(&public.encrypt(b"").unwrap()).unwrap()[..],
            b""
        );
    }

    #[test]
    fn another_key_is_refused() {
        let (_, public) = pair();
        let other = DecryptingKey::generate("k-2").unwrap();
        let jwe = public.encrypt(b"secret").unwrap();
        assert!(matches!(
            other.decrypt(&jwe),
            Err(JweError::UnknownKey { ref kid, .. }) if kid == "k-1"
        ));
    }

    #[test]
    fn bad_jwks_say_why() {
        let ec = br#"{"kty":"EC","kid":"e","crv":"P-256","x":"AA","y":"AA"}"#;
        assert!(matches!(
            DomainKey::from_jwk(ec),
            Err(JweError::NotRsa { .. })
        ));
        let (private, _) = pair();
        let mut no_kid = private.public_jwk().clone();
        no_kid.as_object_mut().unwrap().remove("kid");
        let err = DomainKey::from_jwk(no_kid.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("kid"), "{err}");
        // 1024 bits: a valid key, refused for its size.
        let small = serde_json::json!({"kty": "RSA", "kid": "s",
            "n": URL_SAFE_NO_PAD.encode([0xC5u8; 128]), "e": "AQAB"});
        assert_eq!(
            DomainKey::from_jwk(small.to_string().as_bytes()).unwrap_err(),
            JweError::TooSmall { bits: 1024 }
        );
        assert!(matches!(
            DomainKey::from_jwk(b"<html>"),
            Err(JweError::NotAJwk(_))
        ));
        let set = serde_json::json!({"keys": [private.public_jwk()]});
        assert_eq!(
            DomainKey::from_jwk(set.to_string().as_bytes())
                .unwrap()
                .kid(),
            "k-1"
        );
    }

    #[test]
    fn headers_other_than_ours_are_refused() {
        let (private, public) = pair();
        let jwe = public.encrypt(b"x").unwrap();
        let rest = jwe.split_once('.').unwrap().1;
        for (header, member) in [
            (r#"{"alg":"RSA-OAEP","enc":"A256GCM","kid":"k-1"}"#, "alg"),
            (
                r#"{"alg":"RSA-OAEP-256","enc":"A128GCM","kid":"k-1"}"#,
                "enc",
            ),
            (
                r#"{"alg":"RSA-OAEP-256","enc":"A256GCM","kid":"k-1","zip":"DEF"}"#,
                "zip",
            ),
        ] {
            let forged = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(header));
            match private.decrypt(&forged) {
                Err(JweError::Unsupported { member: m, .. }) => assert_eq!(m, member),
                other => panic!("{member}: {other:?}"),
            }
        }
        assert!(matches!(
            private.decrypt("a.b.c"),
            Err(JweError::Malformed(_))
        ));
        assert!(!looks_like_jwe("1234"));
        assert!(looks_like_jwe(&jwe));
    }
}
