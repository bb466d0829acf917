//! The two uses of an HSM key: STET's `rsa-sha256` signatures ([`Pkcs11Signer`], a
//! `stet_httpsig::Signer`) and the TLS client's CertificateVerify ([`Pkcs11TlsKey`], a
//! `rustls::sign::SigningKey`), plus the check that a key is a certificate's.

use std::sync::Arc;

use der::Decode as _;
use rustls::SignatureAlgorithm;
use rustls::SignatureScheme;
use rustls::client::ResolvesClientCert;
use rustls::sign::CertifiedKey;
use rustls_pki_types::CertificateDer;
use stet_httpsig::{Signer, SignerError};

use crate::Pkcs11Error;
use crate::key::{KeyKind, Pkcs11Key, SignatureMechanism};

/// STET's `rsa-sha256` (RSASSA-PKCS1-v1_5, SHA-256 hashed by the token) with an RSA key in an
/// HSM. PKCS#1 v1.5 is deterministic: the bytes are those of any other backend for the key.
#[derive(Debug, Clone)]
pub struct Pkcs11Signer {
    key: Pkcs11Key,
    bits: usize,
}

impl Pkcs11Signer {
    /// A signer over `key`, which must be RSA.
    pub fn new(key: Pkcs11Key) -> Result<Self, Pkcs11Error> {
        match key.kind() {
            KeyKind::Rsa { bits } => Ok(Pkcs11Signer { key, bits }),
            other => Err(Pkcs11Error::UnsupportedKey {
                token: key.token().to_owned(),
                key: key.uri().to_owned(),
                detail: format!("a {other} key: STET signatures (rsa-sha256) need an RSA key"),
            }),
        }
    }

    /// The key.
    pub fn key(&self) -> &Pkcs11Key {
        &self.key
    }
}

impl Signer for Pkcs11Signer {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignerError> {
        self.key
            .sign(SignatureMechanism::RsaPkcs1Sha256, message)
            .map_err(|e| SignerError {
                backend: "pkcs11",
                reason: e.to_string(),
            })
    }

    fn key_bits(&self) -> usize {
        self.bits
    }

    fn backend(&self) -> &'static str {
        "pkcs11"
    }

    fn blocking(&self) -> bool {
        true
    }
}

/// The QWAC's key in an HSM, signing the TLS handshake there.
///
/// RSA keys sign with RSA-PSS (SHA-256, else SHA-384) in TLS 1.3, which forbids PKCS#1 v1.5
/// there, and with PKCS#1 v1.5 in TLS 1.2, which every server takes; ECDSA P-256 and P-384 keys
/// sign with their curve's hash. rustls calls it synchronously, once per full handshake.
#[derive(Debug, Clone)]
pub struct Pkcs11TlsKey {
    key: Pkcs11Key,
}

impl Pkcs11TlsKey {
    /// A TLS signing key over `key`.
    pub fn new(key: Pkcs11Key) -> Self {
        Pkcs11TlsKey { key }
    }

    /// The scheme this key uses among those the server `offered`, in order of preference.
    pub fn scheme_for(&self, offered: &[SignatureScheme]) -> Option<SignatureScheme> {
        use SignatureScheme as S;
        // rustls offers a TLS 1.3 client only the schemes TLS 1.3 allows, so a PKCS#1 scheme
        // on the list means TLS 1.2: the one RSA scheme every TLS 1.2 server verifies.
        let preference: &[SignatureScheme] = match self.key.kind() {
            KeyKind::Rsa { .. } => &[
                S::RSA_PKCS1_SHA256,
                S::RSA_PKCS1_SHA384,
                S::RSA_PSS_SHA256,
                S::RSA_PSS_SHA384,
            ],
            KeyKind::EcP256 => &[S::ECDSA_NISTP256_SHA256],
            KeyKind::EcP384 => &[S::ECDSA_NISTP384_SHA384],
        };
        preference.iter().copied().find(|s| offered.contains(s))
    }
}

fn mechanism_of(scheme: SignatureScheme) -> Option<SignatureMechanism> {
    use SignatureScheme as S;
    Some(match scheme {
        S::RSA_PKCS1_SHA256 => SignatureMechanism::RsaPkcs1Sha256,
        S::RSA_PKCS1_SHA384 => SignatureMechanism::RsaPkcs1Sha384,
        S::RSA_PSS_SHA256 => SignatureMechanism::RsaPssSha256,
        S::RSA_PSS_SHA384 => SignatureMechanism::RsaPssSha384,
        S::ECDSA_NISTP256_SHA256 => SignatureMechanism::EcdsaSha256,
        S::ECDSA_NISTP384_SHA384 => SignatureMechanism::EcdsaSha384,
        _ => return None,
    })
}

impl rustls::sign::SigningKey for Pkcs11TlsKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn rustls::sign::Signer>> {
        let scheme = self.scheme_for(offered)?;
        Some(Box::new(TlsSigner {
            key: self.key.clone(),
            scheme,
            mechanism: mechanism_of(scheme)?,
        }))
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        match self.key.kind() {
            KeyKind::Rsa { .. } => SignatureAlgorithm::RSA,
            KeyKind::EcP256 | KeyKind::EcP384 => SignatureAlgorithm::ECDSA,
        }
    }
}

#[derive(Debug)]
struct TlsSigner {
    key: Pkcs11Key,
    scheme: SignatureScheme,
    mechanism: SignatureMechanism,
}

impl rustls::sign::Signer for TlsSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        let sign = || {
            self.key.sign(self.mechanism, message).map_err(|e| {
                rustls::Error::General(format!("the HSM could not sign the handshake: {e}"))
            })
        };
        // rustls calls this synchronously, inside the poll of the connection, on whatever
        // thread drives the handshake: with reqwest, a tokio worker. The token takes a
        // millisecond or more (a network HSM, much more), and when every session of the pool
        // is in use the call waits on the pool until one is given back. On a worker thread
        // that wait would stall every task queued behind it (other requests, timers, the very
        // task that would give a session back): `block_in_place` hands them to another
        // worker first. It exists on the multi-thread runtime only (it panics on a
        // current-thread one, where nothing can be handed over), and outside a runtime
        // there is nothing to protect: there, the signature is made directly.
        match tokio::runtime::Handle::try_current() {
            Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
                tokio::task::block_in_place(sign)
            }
            _ => sign(),
        }
    }

    fn scheme(&self) -> SignatureScheme {
        self.scheme
    }
}

/// Gives rustls the QWAC chain with its HSM key for every server that asks for a client
/// certificate.
#[derive(Debug)]
pub struct HsmClientCert {
    certified: Arc<CertifiedKey>,
}

impl HsmClientCert {
    /// The chain (leaf first) and the leaf's key in the HSM.
    pub fn new(chain: Vec<CertificateDer<'static>>, key: Pkcs11Key) -> Self {
        HsmClientCert {
            certified: Arc::new(CertifiedKey::new(chain, Arc::new(Pkcs11TlsKey::new(key)))),
        }
    }
}

impl ResolvesClientCert for HsmClientCert {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.certified.clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// What [`check_certificate`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMatch {
    /// The token signed, and the certificate's public key verified the signature.
    Matches,
    /// The token signed, but the certificate's key does not verify it: another key.
    Differs,
}

/// Signs a test message in the HSM and verifies it with the certificate's public key: proves
/// the key is the certificate's and that the token signs, in one go. `Err` when the token
/// could not sign or the certificate cannot be read.
pub fn check_certificate(key: &Pkcs11Key, cert_der: &[u8]) -> Result<KeyMatch, String> {
    let cert = x509_cert::Certificate::from_der(cert_der)
        .map_err(|e| format!("the certificate cannot be read: {e}"))?;
    let spki = &cert.tbs_certificate.subject_public_key_info;
    verify_with(key, spki.subject_public_key.raw_bytes())
}

/// [`check_certificate`] with the certificate's public key as a DER SubjectPublicKeyInfo.
pub fn check_public_key(key: &Pkcs11Key, spki_der: &[u8]) -> Result<KeyMatch, String> {
    let spki = x509_cert::spki::SubjectPublicKeyInfoOwned::from_der(spki_der)
        .map_err(|e| format!("the public key cannot be read: {e}"))?;
    verify_with(key, spki.subject_public_key.raw_bytes())
}

fn verify_with(key: &Pkcs11Key, public: &[u8]) -> Result<KeyMatch, String> {
    use aws_lc_rs::signature::{self as sig, UnparsedPublicKey};
    let message = b"stet: does this HSM key belong to this certificate?";
    let (mechanism, algorithm): (SignatureMechanism, &dyn sig::VerificationAlgorithm) =
        match key.kind() {
            KeyKind::Rsa { bits } if bits < 2048 => (
                SignatureMechanism::RsaPkcs1Sha256,
                &sig::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY,
            ),
            KeyKind::Rsa { .. } => (
                SignatureMechanism::RsaPkcs1Sha256,
                &sig::RSA_PKCS1_2048_8192_SHA256,
            ),
            KeyKind::EcP256 => (
                SignatureMechanism::EcdsaSha256,
                &sig::ECDSA_P256_SHA256_ASN1,
            ),
            KeyKind::EcP384 => (
                SignatureMechanism::EcdsaSha384,
                &sig::ECDSA_P384_SHA384_ASN1,
            ),
        };
    let signature = key.sign(mechanism, message).map_err(|e| e.to_string())?;
    Ok(
        match UnparsedPublicKey::new(algorithm, public).verify(message, &signature) {
            Ok(()) => KeyMatch::Matches,
            Err(_) => KeyMatch::Differs,
        },
    )
}
