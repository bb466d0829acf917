//! Loading the keys: the QSealC private key that signs, the public key or certificate that
//! verifies.
//!
//! Private keys are read from PEM or DER, as PKCS#1 (`RSA PRIVATE KEY`), PKCS#8
//! (`PRIVATE KEY`) or encrypted PKCS#8 (`ENCRYPTED PRIVATE KEY`, with a passphrase). PEM goes
//! through `rustls-pki-types`, except the encrypted form, which it does not know and which the
//! `pkcs8` crate decodes. Public keys come from an SPKI (`PUBLIC KEY`) or from an X.509
//! certificate, since banks verify with the QSealC certificate itself.

use der::{Decode as _, Encode as _};
use rustls_pki_types::pem::SectionKind;
use zeroize::Zeroizing;

/// Why a key could not be loaded. Each message says what was found and what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The bytes are neither PEM nor a DER key.
    #[error("not a key: expected PEM (`-----BEGIN PRIVATE KEY-----` …) or DER ({0})")]
    NotAKey(String),
    /// PEM that could not be decoded.
    #[error("malformed PEM: {0}")]
    BadPem(String),
    /// The PEM holds no section of the kind needed.
    #[error("no {wanted} found in the PEM (found: {found})")]
    NothingFound {
        /// What was looked for.
        wanted: &'static str,
        /// The section labels present.
        found: String,
    },
    /// The key is encrypted and no passphrase was given.
    #[error(
        "the key is encrypted: give its passphrase in an environment variable, named with \
         --passphrase-env VAR (`stet sig`) or qseal_key_passphrase_env = \"VAR\" (a profile)"
    )]
    PassphraseRequired,
    /// Decryption failed.
    #[error("cannot decrypt the key: wrong passphrase, or the file is damaged")]
    WrongPassphrase,
    /// Encryption scheme the `pkcs8` crate does not support.
    #[error(
        "unsupported key encryption ({0}); re-encrypt with \
         `openssl pkcs8 -topk8 -v2 aes-256-cbc -in KEY -out KEY.p8`"
    )]
    UnsupportedEncryption(String),
    /// OpenSSL's legacy `Proc-Type: 4,ENCRYPTED` PEM.
    #[error(
        "legacy OpenSSL-encrypted PEM (Proc-Type: 4,ENCRYPTED) is not supported; convert it with \
         `openssl pkcs8 -topk8 -v2 aes-256-cbc -in KEY -out KEY.p8`"
    )]
    LegacyEncryptedPem,
    /// A key of another type than RSA.
    #[error("this is {0}, but STET signatures (rsa-sha256) need an RSA key")]
    WrongType(String),
    /// The key is too short for what it is used for.
    #[error("the key is {bits} bits; {what} needs at least {min}{hint}")]
    TooShort {
        /// The key size.
        bits: usize,
        /// The minimum.
        min: usize,
        /// What refused it.
        what: &'static str,
        /// How to get on.
        hint: &'static str,
    },
    /// The crypto backend refused the key.
    #[error("the {backend} backend refused the key: {reason}")]
    Rejected {
        /// The backend.
        backend: &'static str,
        /// Its reason.
        reason: String,
    },
}

const RSA_OID: der::asn1::ObjectIdentifier = pkcs1::ALGORITHM_OID;

/// An RSA private key, held as plaintext PKCS#8 DER and wiped from memory on drop.
///
/// `Debug` shows only the size.
#[derive(Clone)]
pub struct PrivateKey {
    pkcs8: Zeroizing<Vec<u8>>,
    bits: usize,
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PrivateKey(RSA {} bits, <redacted>)", self.bits)
    }
}

impl PrivateKey {
    /// Reads a private key from PEM or DER (sniffed), decrypting it with `passphrase` when it
    /// is encrypted PKCS#8.
    pub fn from_bytes(bytes: &[u8], passphrase: Option<&[u8]>) -> Result<Self, KeyError> {
        if looks_like_pem(bytes) {
            Self::from_pem(bytes, passphrase)
        } else {
            Self::from_der(bytes, passphrase)
        }
    }

    /// Reads a private key from PEM.
    pub fn from_pem(pem: &[u8], passphrase: Option<&[u8]>) -> Result<Self, KeyError> {
        if let Some(block) = pem_block(pem, "ENCRYPTED PRIVATE KEY") {
            let (_, der) =
                der::pem::decode_vec(block).map_err(|e| KeyError::BadPem(e.to_string()))?;
            return Self::from_encrypted_der(&der, passphrase);
        }
        if contains(pem, b"Proc-Type: 4,ENCRYPTED") {
            return Err(KeyError::LegacyEncryptedPem);
        }
        let mut found = Vec::new();
        for (kind, der) in pem_sections(pem)? {
            match kind {
                SectionKind::PrivateKey => return Self::from_pkcs8_der(Zeroizing::new(der)),
                SectionKind::RsaPrivateKey => return Self::from_pkcs1_der(&Zeroizing::new(der)),
                SectionKind::EcPrivateKey => return Err(KeyError::WrongType("an EC key".into())),
                other => found.push(format!("{other:?}")),
            }
        }
        Err(KeyError::NothingFound {
            wanted: "private key",
            found: found_labels(pem, found),
        })
    }

    /// Reads a private key from DER: PKCS#8, PKCS#1 or encrypted PKCS#8.
    pub fn from_der(der: &[u8], passphrase: Option<&[u8]>) -> Result<Self, KeyError> {
        if pkcs8::PrivateKeyInfo::try_from(der).is_ok() {
            return Self::from_pkcs8_der(Zeroizing::new(der.to_vec()));
        }
        if pkcs1::RsaPrivateKey::try_from(der).is_ok() {
            return Self::from_pkcs1_der(der);
        }
        if pkcs8::EncryptedPrivateKeyInfo::try_from(der).is_ok() {
            return Self::from_encrypted_der(der, passphrase);
        }
        Err(KeyError::NotAKey(
            "the DER is not a PKCS#8, PKCS#1 or encrypted PKCS#8 private key".into(),
        ))
    }

    fn from_encrypted_der(der: &[u8], passphrase: Option<&[u8]>) -> Result<Self, KeyError> {
        let info = pkcs8::EncryptedPrivateKeyInfo::try_from(der)
            .map_err(|e| KeyError::NotAKey(e.to_string()))?;
        let passphrase = passphrase.ok_or(KeyError::PassphraseRequired)?;
        let doc = info.decrypt(passphrase).map_err(|e| match e {
            pkcs8::Error::EncryptedPrivateKey(pkcs8::pkcs5::Error::UnsupportedAlgorithm {
                oid,
            }) => KeyError::UnsupportedEncryption(oid.to_string()),
            pkcs8::Error::EncryptedPrivateKey(
                pkcs8::pkcs5::Error::AlgorithmParametersInvalid { oid },
            ) => KeyError::UnsupportedEncryption(oid.to_string()),
            _ => KeyError::WrongPassphrase,
        })?;
        // A wrong passphrase sometimes decrypts to garbage with valid padding.
        if pkcs8::PrivateKeyInfo::try_from(doc.as_bytes()).is_err() {
            return Err(KeyError::WrongPassphrase);
        }
        Self::from_pkcs8_der(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    fn from_pkcs8_der(der: Zeroizing<Vec<u8>>) -> Result<Self, KeyError> {
        let info = pkcs8::PrivateKeyInfo::try_from(der.as_slice())
            .map_err(|e| KeyError::NotAKey(format!("PKCS#8: {e}")))?;
        if info.algorithm.oid != RSA_OID {
            return Err(KeyError::WrongType(key_type_name(&info.algorithm.oid)));
        }
        let bits = pkcs1::RsaPrivateKey::try_from(info.private_key)
            .map(|k| uint_bits(k.modulus.as_bytes()))
            .map_err(|e| KeyError::NotAKey(format!("PKCS#8 RSA key: {e}")))?;
        Ok(PrivateKey { pkcs8: der, bits })
    }

    fn from_pkcs1_der(der: &[u8]) -> Result<Self, KeyError> {
        pkcs1::RsaPrivateKey::try_from(der)
            .map_err(|e| KeyError::NotAKey(format!("PKCS#1: {e}")))?;
        let info = pkcs8::PrivateKeyInfo::new(pkcs1::ALGORITHM_ID, der);
        let pkcs8 = info
            .to_der()
            .map_err(|e| KeyError::NotAKey(format!("PKCS#1: {e}")))?;
        Self::from_pkcs8_der(Zeroizing::new(pkcs8))
    }

    /// The modulus size in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// The key as plaintext PKCS#8 DER (for a backend to load).
    pub fn pkcs8_der(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The matching public key.
    pub fn public_key(&self) -> Result<PublicKey, KeyError> {
        let info = pkcs8::PrivateKeyInfo::try_from(self.pkcs8.as_slice())
            .map_err(|e| KeyError::NotAKey(e.to_string()))?;
        let key = pkcs1::RsaPrivateKey::try_from(info.private_key)
            .map_err(|e| KeyError::NotAKey(e.to_string()))?;
        let public = pkcs1::RsaPublicKey {
            modulus: key.modulus,
            public_exponent: key.public_exponent,
        };
        let der = public
            .to_der()
            .map_err(|e| KeyError::NotAKey(e.to_string()))?;
        PublicKey::from_pkcs1_der(&der)
    }
}

/// An RSA public key that verifies signatures, from an SPKI or an X.509 certificate.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    /// `RSAPublicKey` (PKCS#1) DER.
    pkcs1: Vec<u8>,
    bits: usize,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PublicKey(RSA {} bits)", self.bits)
    }
}

impl PublicKey {
    /// Reads a public key from PEM or DER (sniffed): an SPKI or a certificate.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        if looks_like_pem(bytes) {
            Self::from_pem(bytes)
        } else {
            Self::from_der(bytes)
        }
    }

    /// Reads the first `CERTIFICATE` or `PUBLIC KEY` section of a PEM file.
    pub fn from_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let mut found = Vec::new();
        for (kind, der) in pem_sections(pem)? {
            match kind {
                SectionKind::Certificate => return Self::from_certificate_der(&der),
                SectionKind::PublicKey => return Self::from_spki_der(&der),
                SectionKind::PrivateKey
                | SectionKind::RsaPrivateKey
                | SectionKind::EcPrivateKey => {
                    found.push(
                        "a PRIVATE KEY (give the public key or the certificate instead)".into(),
                    );
                }
                other => found.push(format!("{other:?}")),
            }
        }
        Err(KeyError::NothingFound {
            wanted: "certificate or public key",
            found: found_labels(pem, found),
        })
    }

    /// Reads a DER certificate or SPKI.
    pub fn from_der(der: &[u8]) -> Result<Self, KeyError> {
        if x509_cert::Certificate::from_der(der).is_ok() {
            Self::from_certificate_der(der)
        } else {
            Self::from_spki_der(der)
        }
    }

    /// The public key of an X.509 certificate (DER).
    pub fn from_certificate_der(der: &[u8]) -> Result<Self, KeyError> {
        let cert = x509_cert::Certificate::from_der(der)
            .map_err(|e| KeyError::NotAKey(format!("certificate: {e}")))?;
        let spki = cert
            .tbs_certificate
            .subject_public_key_info
            .to_der()
            .map_err(|e| KeyError::NotAKey(format!("certificate: {e}")))?;
        Self::from_spki_der(&spki)
    }

    /// A `SubjectPublicKeyInfo` (DER).
    pub fn from_spki_der(der: &[u8]) -> Result<Self, KeyError> {
        let spki = spki::SubjectPublicKeyInfoRef::try_from(der)
            .map_err(|e| KeyError::NotAKey(format!("public key: {e}")))?;
        if spki.algorithm.oid != RSA_OID {
            return Err(KeyError::WrongType(key_type_name(&spki.algorithm.oid)));
        }
        let bytes = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| KeyError::NotAKey("public key: unaligned bit string".into()))?;
        Self::from_pkcs1_der(bytes)
    }

    /// An `RSAPublicKey` (PKCS#1, DER).
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self, KeyError> {
        let key = pkcs1::RsaPublicKey::try_from(der)
            .map_err(|e| KeyError::NotAKey(format!("RSA public key: {e}")))?;
        Ok(PublicKey {
            bits: uint_bits(key.modulus.as_bytes()),
            pkcs1: der.to_vec(),
        })
    }

    /// The modulus size in bits.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// Whether `signature` is a valid RSASSA-PKCS1-v1_5 SHA-256 signature of `message`.
    /// Key-size policy is the caller's (see [`VerifyPolicy`](crate::VerifyPolicy)); keys from
    /// 1024 bits verify here.
    pub fn verify_rsa_sha256(&self, message: &[u8], signature: &[u8]) -> bool {
        #[cfg(feature = "aws-lc")]
        {
            use aws_lc_rs::signature::{
                RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY, RSA_PKCS1_2048_8192_SHA256,
                UnparsedPublicKey,
            };
            let alg = if self.bits >= 2048 {
                &RSA_PKCS1_2048_8192_SHA256
            } else {
                &RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY
            };
            UnparsedPublicKey::new(alg, &self.pkcs1)
                .verify(message, signature)
                .is_ok()
        }
        #[cfg(not(feature = "aws-lc"))]
        {
            use rsa::pkcs1::DecodeRsaPublicKey as _;
            use rsa::signature::Verifier as _;
            let Ok(key) = rsa::RsaPublicKey::from_pkcs1_der(&self.pkcs1) else {
                return false;
            };
            let Ok(sig) = rsa::pkcs1v15::Signature::try_from(signature) else {
                return false;
            };
            rsa::pkcs1v15::VerifyingKey::<sha2::Sha256>::new(key)
                .verify(message, &sig)
                .is_ok()
        }
    }
}

fn looks_like_pem(bytes: &[u8]) -> bool {
    contains(bytes, b"-----BEGIN ")
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The bytes of the first PEM block with `label`, from its BEGIN line to the end of its END line.
fn pem_block<'a>(pem: &'a [u8], label: &str) -> Option<&'a [u8]> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = pem
        .windows(begin.len())
        .position(|w| w == begin.as_bytes())?;
    let rel = pem[start..]
        .windows(end.len())
        .position(|w| w == end.as_bytes())?;
    Some(&pem[start..start + rel + end.len()])
}

/// A PEM decoding error in words a person can act on: the decoder's own messages print the
/// missing marker as a list of byte values.
pub fn describe_pem_error(e: &rustls_pki_types::pem::Error) -> String {
    use rustls_pki_types::pem::Error as E;
    match e {
        E::MissingSectionEnd { end_marker } => format!(
            "no `-----END {}-----` line: the file is cut short or damaged",
            String::from_utf8_lossy(end_marker)
        ),
        E::IllegalSectionStart { line } => format!(
            "a malformed `-----BEGIN` line ({}): the file is damaged",
            String::from_utf8_lossy(line)
                .chars()
                .take(64)
                .collect::<String>()
        ),
        E::Base64Decode(detail) => {
            format!("a section is not valid base64 ({detail}): the file is damaged")
        }
        other => other.to_string(),
    }
}

fn pem_sections(pem: &[u8]) -> Result<Vec<(SectionKind, Vec<u8>)>, KeyError> {
    let mut reader = pem;
    let mut out = Vec::new();
    loop {
        match rustls_pki_types::pem::from_buf(&mut reader) {
            Ok(Some(section)) => out.push(section),
            Ok(None) => return Ok(out),
            Err(e) => return Err(KeyError::BadPem(describe_pem_error(&e))),
        }
    }
}

/// What the PEM holds, for an error message: the labels decoded plus any the decoder skipped.
fn found_labels(pem: &[u8], mut decoded: Vec<String>) -> String {
    for line in pem.split(|&b| b == b'\n') {
        if let Some(rest) = line.strip_prefix(b"-----BEGIN ") {
            let label = String::from_utf8_lossy(rest);
            let label = label.trim_end().trim_end_matches('-');
            if !matches!(
                label,
                "CERTIFICATE" | "PUBLIC KEY" | "PRIVATE KEY" | "RSA PRIVATE KEY" | "EC PRIVATE KEY"
            ) {
                decoded.push(label.to_owned());
            }
        }
    }
    if decoded.is_empty() {
        "nothing".to_owned()
    } else {
        decoded.join(", ")
    }
}

fn key_type_name(oid: &der::asn1::ObjectIdentifier) -> String {
    match oid.to_string().as_str() {
        "1.2.840.10045.2.1" => "an EC key".to_owned(),
        "1.3.101.112" => "an Ed25519 key".to_owned(),
        "1.3.101.113" => "an Ed448 key".to_owned(),
        "1.2.840.113549.1.1.10" => "an RSA-PSS-only key".to_owned(),
        "1.2.840.10040.4.1" => "a DSA key".to_owned(),
        other => format!("a key of type {other}"),
    }
}

/// The bit length of a big-endian unsigned integer.
fn uint_bits(bytes: &[u8]) -> usize {
    let bytes = match bytes.iter().position(|&b| b != 0) {
        Some(i) => &bytes[i..],
        None => return 0,
    };
    (bytes.len() - 1) * 8 + (8 - bytes[0].leading_zeros() as usize)
}
