//! The `Signer` trait and its two backends.
//!
//! A [`Signer`] turns a signing string into RSASSA-PKCS1-v1_5 SHA-256 signature bytes. The
//! trait is the seam for other key stores (an HSM through PKCS#11 fits it); two software
//! backends are built in:
//!
//! | backend | crate | keys | notes |
//! |---|---|---|---|
//! | [`Backend::AwsLc`] (default) | aws-lc-rs | 2048 to 8192 bits | constant-time, about 6× faster |
//! | [`Backend::RustCrypto`] | rsa | from 1024 bits | pure Rust; signs the Cavage draft's 1024-bit test key; carries RUSTSEC-2023-0071 (timing), acceptable for a client signing its own requests |
//!
//! PKCS#1 v1.5 signatures are deterministic: both backends give the same bytes for the same
//! key and message.

use crate::keys::{KeyError, PrivateKey};

/// A signing failure inside a backend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the {backend} signer failed: {reason}")]
pub struct SignerError {
    /// The backend.
    pub backend: &'static str,
    /// What went wrong.
    pub reason: String,
}

/// Signs messages with `rsa-sha256` (RSASSA-PKCS1-v1_5 over SHA-256).
///
/// `Debug` must never show key material.
pub trait Signer: Send + Sync + std::fmt::Debug {
    /// The signature of `message`.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError>;
    /// The key size in bits.
    fn key_bits(&self) -> usize;
    /// A short name of the backend, for messages.
    fn backend(&self) -> &'static str;
    /// Whether a signature waits on a device (an HSM over PKCS#11) rather than the CPU alone:
    /// async callers then sign on a thread where blocking is allowed. `false` by default.
    fn blocking(&self) -> bool {
        false
    }
}

/// The software signing backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Backend {
    /// aws-lc-rs (the default).
    #[cfg_attr(feature = "aws-lc", default)]
    #[cfg(feature = "aws-lc")]
    AwsLc,
    /// RustCrypto `rsa`, pure Rust.
    #[cfg_attr(not(feature = "aws-lc"), default)]
    RustCrypto,
}

impl Backend {
    /// The backend's name as `stet --backend` takes it.
    pub fn name(self) -> &'static str {
        match self {
            #[cfg(feature = "aws-lc")]
            Backend::AwsLc => "aws-lc",
            Backend::RustCrypto => "rustcrypto",
        }
    }

    /// Every backend built into this binary.
    pub fn all() -> &'static [Backend] {
        &[
            #[cfg(feature = "aws-lc")]
            Backend::AwsLc,
            Backend::RustCrypto,
        ]
    }
}

impl std::str::FromStr for Backend {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Backend::all()
            .iter()
            .copied()
            .find(|b| b.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<_> = Backend::all().iter().map(|b| b.name()).collect();
                format!(
                    "unknown backend `{s}`: expected one of {}",
                    names.join(", ")
                )
            })
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl PrivateKey {
    /// A signer for this key on `backend`. Fails when the backend refuses the key (aws-lc-rs
    /// needs 2048 bits or more; RustCrypto 1024 or more).
    pub fn signer(&self, backend: Backend) -> Result<Box<dyn Signer>, KeyError> {
        match backend {
            #[cfg(feature = "aws-lc")]
            Backend::AwsLc => Ok(Box::new(AwsLcSigner::new(self)?)),
            Backend::RustCrypto => Ok(Box::new(RustCryptoSigner::new(self)?)),
        }
    }
}

/// The aws-lc-rs backend: RSA keys of 2048 to 8192 bits.
#[cfg(feature = "aws-lc")]
pub struct AwsLcSigner {
    key: aws_lc_rs::signature::RsaKeyPair,
    bits: usize,
}

#[cfg(feature = "aws-lc")]
impl AwsLcSigner {
    /// Loads `key` into AWS-LC.
    pub fn new(key: &PrivateKey) -> Result<Self, KeyError> {
        if key.bits() < 2048 {
            return Err(KeyError::TooShort {
                bits: key.bits(),
                min: 2048,
                what: "the aws-lc backend",
                hint: " (use the rustcrypto backend for test keys: --backend rustcrypto)",
            });
        }
        let pair = aws_lc_rs::signature::RsaKeyPair::from_pkcs8(key.pkcs8_der()).map_err(|e| {
            KeyError::Rejected {
                backend: "aws-lc",
                reason: e.to_string(),
            }
        })?;
        Ok(AwsLcSigner {
            key: pair,
            bits: key.bits(),
        })
    }
}

#[cfg(feature = "aws-lc")]
impl Signer for AwsLcSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        let mut signature = vec![0u8; self.key.public_modulus_len()];
        self.key
            .sign(
                &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                message,
                &mut signature,
            )
            .map_err(|e| SignerError {
                backend: "aws-lc",
                reason: e.to_string(),
            })?;
        Ok(signature)
    }
    fn key_bits(&self) -> usize {
        self.bits
    }
    fn backend(&self) -> &'static str {
        "aws-lc"
    }
}

#[cfg(feature = "aws-lc")]
impl std::fmt::Debug for AwsLcSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AwsLcSigner(RSA {} bits)", self.bits)
    }
}

/// The RustCrypto `rsa` backend: pure Rust, RSA keys from 1024 bits.
pub struct RustCryptoSigner {
    key: rsa::pkcs1v15::SigningKey<sha2::Sha256>,
    bits: usize,
}

impl RustCryptoSigner {
    /// Loads `key` into RustCrypto `rsa`.
    pub fn new(key: &PrivateKey) -> Result<Self, KeyError> {
        use rsa::pkcs8::DecodePrivateKey as _;
        if key.bits() < 1024 {
            return Err(KeyError::TooShort {
                bits: key.bits(),
                min: 1024,
                what: "the rustcrypto backend",
                hint: "",
            });
        }
        let private = rsa::RsaPrivateKey::from_pkcs8_der(key.pkcs8_der()).map_err(|e| {
            KeyError::Rejected {
                backend: "rustcrypto",
                reason: e.to_string(),
            }
        })?;
        Ok(RustCryptoSigner {
            key: rsa::pkcs1v15::SigningKey::new(private),
            bits: key.bits(),
        })
    }
}

impl Signer for RustCryptoSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        use rsa::signature::{SignatureEncoding as _, Signer as _};
        self.key
            .try_sign(message)
            .map(|s| s.to_vec())
            .map_err(|e| SignerError {
                backend: "rustcrypto",
                reason: e.to_string(),
            })
    }
    fn key_bits(&self) -> usize {
        self.bits
    }
    fn backend(&self) -> &'static str {
        "rustcrypto"
    }
}

impl std::fmt::Debug for RustCryptoSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RustCryptoSigner(RSA {} bits)", self.bits)
    }
}
