//! The TPP's QWAC: the certificate chain and key that authenticate stet on the TLS connection.
//!
//! Loaded from PEM files (chain and key, in one file or two) or from PKCS#12, and checked at
//! load rather than at the first handshake, where a bank's TLS alert says nothing useful: the
//! key must match the leaf certificate, each certificate must be valid now, and the chain must
//! run leaf first, each certificate followed by its issuer.

use std::path::Path;
use std::time::{Duration, SystemTime};

use der::{Decode as _, Encode as _};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// Why a QWAC identity (or a CA bundle) could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// A file could not be read.
    #[error("cannot read {what} {path}: {source}")]
    Read {
        /// What the file is.
        what: &'static str,
        /// The path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No certificate in the file.
    #[error("{path}: no certificate found (expected PEM `-----BEGIN CERTIFICATE-----`)")]
    NoCertificate {
        /// The path.
        path: String,
    },
    /// No usable private key.
    #[error("{path}: no private key found ({detail})")]
    NoKey {
        /// The path.
        path: String,
        /// What was wrong.
        detail: String,
    },
    /// A certificate that does not parse.
    #[error("{path}: certificate {index} cannot be read: {detail}")]
    BadCertificate {
        /// The path.
        path: String,
        /// 1-based position in the chain.
        index: usize,
        /// The parser's error.
        detail: String,
    },
    /// The key is not the leaf certificate's key.
    #[error(
        "the QWAC key {key} does not match the certificate {cert} (subject {subject}): \
         check that both files belong to the same certificate"
    )]
    KeyMismatch {
        /// The key file.
        key: String,
        /// The certificate file.
        cert: String,
        /// The leaf's subject.
        subject: String,
    },
    /// A certificate outside its validity period.
    #[error(
        "certificate {subject} in {path} {state} (valid {period}); against a sandbox only, \
         `allow_expired_certificate = true` accepts it"
    )]
    NotValidNow {
        /// The path.
        path: String,
        /// The certificate's subject.
        subject: String,
        /// `has expired` or `is not yet valid`.
        state: &'static str,
        /// The validity period, `from … to …`.
        period: String,
    },
    /// The chain is not leaf first, each followed by its issuer.
    #[error(
        "the certificate chain in {path} is out of order: certificate {index} ({subject}) is not \
         issued by the next one ({next}); put the QWAC first, then each issuer in turn"
    )]
    ChainOrder {
        /// The path.
        path: String,
        /// 1-based position of the certificate whose issuer does not follow.
        index: usize,
        /// Its subject.
        subject: String,
        /// The subject of the certificate that follows it.
        next: String,
    },
    /// The leaf certificate may not be used to authenticate a TLS client: its key usage or
    /// extended key usage leaves that out (often a QSealC or a server certificate given as the
    /// QWAC). Caught here, since the bank's TLS alert would not say why.
    #[error(
        "the certificate {subject} in {path} cannot be a QWAC: {detail}; give the QWAC (the \
         certificate for TLS client authentication) as qwac_cert, not the QSealC or a server \
         certificate"
    )]
    WrongUsage {
        /// The path.
        path: String,
        /// The leaf's subject.
        subject: String,
        /// Which usage is missing.
        detail: String,
    },
    /// PKCS#12 that could not be opened.
    #[error("{path}: cannot open the PKCS#12 file: {detail} (wrong password?)")]
    Pkcs12 {
        /// The path.
        path: String,
        /// The parser's error.
        detail: String,
    },
    /// The TLS library refused the identity.
    #[error("the TLS library refused the QWAC identity: {0}")]
    Tls(String),
}

/// A loaded, checked QWAC: chain (leaf first) and key, ready for the TLS client.
#[derive(Clone)]
pub struct QwacIdentity {
    chain: Vec<CertificateDer<'static>>,
    key_pkcs8_or_sec1: Vec<u8>,
    key_pem_label: &'static str,
    /// The leaf's subject, for messages.
    pub subject: String,
    /// When the leaf expires.
    pub not_after: SystemTime,
}

impl std::fmt::Debug for QwacIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QwacIdentity")
            .field("subject", &self.subject)
            .field("chain_len", &self.chain.len())
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Options for loading an identity.
#[derive(Debug, Clone, Copy, Default)]
pub struct LoadOptions {
    /// Accept an expired or not-yet-valid certificate (only ever for a sandbox; stet says so on
    /// every run).
    pub allow_invalid_dates: bool,
}

impl QwacIdentity {
    /// Loads a chain (PEM, leaf first) and a key (PEM: PKCS#8, PKCS#1 or SEC1). The two may be
    /// the same file.
    pub fn from_pem_files(
        cert: &Path,
        key: &Path,
        options: LoadOptions,
    ) -> Result<Self, IdentityError> {
        let cert_bytes = read(cert, "QWAC certificate")?;
        let key_bytes = read(key, "QWAC key")?;
        let cert_name = cert.display().to_string();
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_bytes)
            .collect::<Result<_, _>>()
            .map_err(|e| IdentityError::BadCertificate {
                path: cert_name.clone(),
                index: 1,
                detail: stet_httpsig::describe_pem_error(&e),
            })?;
        let key_der =
            PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| IdentityError::NoKey {
                path: key.display().to_string(),
                detail: match e {
                    rustls_pki_types::pem::Error::NoItemsFound => {
                        "expected PEM `PRIVATE KEY`, `RSA PRIVATE KEY` or `EC PRIVATE KEY`; an \
                     encrypted key must be decrypted first"
                            .to_owned()
                    }
                    other => stet_httpsig::describe_pem_error(&other),
                },
            })?;
        Self::from_parts(
            chain,
            key_der,
            &cert_name,
            &key.display().to_string(),
            options,
        )
    }

    /// Loads a PKCS#12 (`.p12`, `.pfx`) bundle holding the key and its chain.
    pub fn from_pkcs12_file(
        path: &Path,
        password: &str,
        options: LoadOptions,
    ) -> Result<Self, IdentityError> {
        let bytes = read(path, "PKCS#12 bundle")?;
        let name = path.display().to_string();
        let store = p12_keystore::KeyStore::from_pkcs12(
            &bytes,
            password,
            p12_keystore::Pkcs12ImportPolicy::Strict,
        )
        .map_err(|e| IdentityError::Pkcs12 {
            path: name.clone(),
            detail: e.to_string(),
        })?;
        let (_, chain) = store
            .private_key_chain()
            .ok_or_else(|| IdentityError::NoKey {
                path: name.clone(),
                detail: "the bundle holds no key with its certificate".to_owned(),
            })?;
        let certs = chain
            .certs()
            .iter()
            .map(|c| CertificateDer::from(c.as_der().to_vec()))
            .collect();
        let key = PrivateKeyDer::Pkcs8(chain.key().as_der().to_vec().into());
        Self::from_parts(certs, key, &name, &name, options)
    }

    fn from_parts(
        chain: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
        cert_name: &str,
        key_name: &str,
        options: LoadOptions,
    ) -> Result<Self, IdentityError> {
        if chain.is_empty() {
            return Err(IdentityError::NoCertificate {
                path: cert_name.to_owned(),
            });
        }
        let parsed = parse_chain(&chain, cert_name)?;
        let subject = parsed[0].tbs_certificate.subject.to_string();
        check_validity(&parsed, cert_name, options, SystemTime::now())?;
        check_order(&parsed, cert_name)?;
        check_usage(&parsed[0], cert_name)?;

        let provider = rustls::crypto::aws_lc_rs::default_provider();
        let certified =
            rustls::sign::CertifiedKey::from_der(chain.clone(), key.clone_key(), &provider)
                .map_err(|e| match e {
                    rustls::Error::InconsistentKeys(_) => IdentityError::KeyMismatch {
                        key: key_name.to_owned(),
                        cert: cert_name.to_owned(),
                        subject: subject.clone(),
                    },
                    other => IdentityError::Tls(other.to_string()),
                })?;
        drop(certified);

        let (label, der) = match &key {
            PrivateKeyDer::Pkcs8(k) => ("PRIVATE KEY", k.secret_pkcs8_der().to_vec()),
            PrivateKeyDer::Pkcs1(k) => ("RSA PRIVATE KEY", k.secret_pkcs1_der().to_vec()),
            PrivateKeyDer::Sec1(k) => ("EC PRIVATE KEY", k.secret_sec1_der().to_vec()),
            _ => {
                return Err(IdentityError::NoKey {
                    path: key_name.to_owned(),
                    detail: "unsupported key format".to_owned(),
                });
            }
        };
        Ok(QwacIdentity {
            not_after: parsed[0]
                .tbs_certificate
                .validity
                .not_after
                .to_system_time(),
            chain,
            key_pkcs8_or_sec1: der,
            key_pem_label: label,
            subject,
        })
    }

    /// The identity for reqwest: the key and chain as one PEM document.
    pub fn to_reqwest(&self) -> Result<reqwest::Identity, IdentityError> {
        let mut pem = zeroize::Zeroizing::new(String::new());
        pem.push_str(&pem_block(self.key_pem_label, &self.key_pkcs8_or_sec1));
        for cert in &self.chain {
            pem.push_str(&pem_block("CERTIFICATE", cert));
        }
        reqwest::Identity::from_pem(pem.as_bytes()).map_err(|e| IdentityError::Tls(e.to_string()))
    }

    /// The chain (leaf first) and the key, for a TLS client of one's own: a handshake that
    /// records the version and cipher a bank negotiates, say.
    pub fn rustls_parts(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let der = self.key_pkcs8_or_sec1.clone();
        let key = match self.key_pem_label {
            "RSA PRIVATE KEY" => PrivateKeyDer::Pkcs1(der.into()),
            "EC PRIVATE KEY" => PrivateKeyDer::Sec1(der.into()),
            _ => PrivateKeyDer::Pkcs8(der.into()),
        };
        (self.chain.clone(), key)
    }

    /// How long until the leaf expires (zero when it has).
    pub fn remaining(&self) -> Duration {
        self.not_after
            .duration_since(SystemTime::now())
            .unwrap_or_default()
    }
}

impl Drop for QwacIdentity {
    fn drop(&mut self) {
        use zeroize::Zeroize as _;
        self.key_pkcs8_or_sec1.zeroize();
    }
}

/// The checks of a QWAC chain whose key is elsewhere (an HSM): parses, dates, order, usage.
/// Gives the leaf's subject and expiry.
pub(crate) fn check_chain(
    chain: &[CertificateDer<'static>],
    name: &str,
    options: LoadOptions,
) -> Result<(String, SystemTime), IdentityError> {
    let parsed = parse_chain(chain, name)?;
    check_validity(&parsed, name, options, SystemTime::now())?;
    check_order(&parsed, name)?;
    check_usage(&parsed[0], name)?;
    Ok((
        parsed[0].tbs_certificate.subject.to_string(),
        parsed[0]
            .tbs_certificate
            .validity
            .not_after
            .to_system_time(),
    ))
}

/// Reads a PEM bundle of CA certificates to trust in addition to the platform's roots.
pub fn load_ca_bundle(path: &Path) -> Result<Vec<reqwest::Certificate>, IdentityError> {
    let bytes = read(path, "CA bundle")?;
    let certs = reqwest::Certificate::from_pem_bundle(&bytes).map_err(|e| {
        IdentityError::BadCertificate {
            path: path.display().to_string(),
            index: 1,
            detail: e.to_string(),
        }
    })?;
    if certs.is_empty() {
        return Err(IdentityError::NoCertificate {
            path: path.display().to_string(),
        });
    }
    Ok(certs)
}

fn read(path: &Path, what: &'static str) -> Result<Vec<u8>, IdentityError> {
    std::fs::read(path).map_err(|source| IdentityError::Read {
        what,
        path: path.display().to_string(),
        source,
    })
}

fn parse_chain(
    chain: &[CertificateDer<'_>],
    path: &str,
) -> Result<Vec<x509_cert::Certificate>, IdentityError> {
    chain
        .iter()
        .enumerate()
        .map(|(i, der)| {
            x509_cert::Certificate::from_der(der).map_err(|e| IdentityError::BadCertificate {
                path: path.to_owned(),
                index: i + 1,
                detail: e.to_string(),
            })
        })
        .collect()
}

fn check_validity(
    chain: &[x509_cert::Certificate],
    path: &str,
    options: LoadOptions,
    now: SystemTime,
) -> Result<(), IdentityError> {
    if options.allow_invalid_dates {
        return Ok(());
    }
    for cert in chain {
        let validity = &cert.tbs_certificate.validity;
        let state = if now < validity.not_before.to_system_time() {
            "is not yet valid"
        } else if now > validity.not_after.to_system_time() {
            "has expired"
        } else {
            continue;
        };
        return Err(IdentityError::NotValidNow {
            path: path.to_owned(),
            subject: cert.tbs_certificate.subject.to_string(),
            state,
            period: format!("from {} to {}", validity.not_before, validity.not_after),
        });
    }
    Ok(())
}

fn check_order(chain: &[x509_cert::Certificate], path: &str) -> Result<(), IdentityError> {
    for (i, pair) in chain.windows(2).enumerate() {
        let (cert, next) = (&pair[0].tbs_certificate, &pair[1].tbs_certificate);
        let issuer = cert.issuer.to_der().unwrap_or_default();
        let next_subject = next.subject.to_der().unwrap_or_default();
        if issuer != next_subject {
            return Err(IdentityError::ChainOrder {
                path: path.to_owned(),
                index: i + 1,
                subject: cert.subject.to_string(),
                next: next.subject.to_string(),
            });
        }
    }
    Ok(())
}

/// The leaf must allow TLS client authentication: `digitalSignature` when it has a key usage,
/// `clientAuth` (or any) when it has an extended key usage. Absent extensions allow everything.
fn check_usage(leaf: &x509_cert::Certificate, path: &str) -> Result<(), IdentityError> {
    use der::oid::db::rfc5280::{ANY_EXTENDED_KEY_USAGE, ID_KP_CLIENT_AUTH};
    use x509_cert::ext::pkix::{ExtendedKeyUsage, KeyUsage};
    let tbs = &leaf.tbs_certificate;
    let wrong = |detail: String| IdentityError::WrongUsage {
        path: path.to_owned(),
        subject: tbs.subject.to_string(),
        detail,
    };
    let unreadable = |what: &str, e: der::Error| IdentityError::BadCertificate {
        path: path.to_owned(),
        index: 1,
        detail: format!("its {what} extension cannot be read: {e}"),
    };
    if let Some((_, usage)) = tbs
        .get::<KeyUsage>()
        .map_err(|e| unreadable("key usage", e))?
        && !usage.digital_signature()
    {
        return Err(wrong(
            "its key usage lacks digitalSignature, which TLS client authentication needs"
                .to_owned(),
        ));
    }
    if let Some((_, ExtendedKeyUsage(purposes))) = tbs
        .get::<ExtendedKeyUsage>()
        .map_err(|e| unreadable("extended key usage", e))?
        && !purposes
            .iter()
            .any(|p| *p == ID_KP_CLIENT_AUTH || *p == ANY_EXTENDED_KEY_USAGE)
    {
        let listed: Vec<String> = purposes.iter().map(purpose_name).collect();
        return Err(wrong(format!(
            "its extended key usage ({}) lacks clientAuth",
            listed.join(", ")
        )));
    }
    Ok(())
}

/// A key purpose by its usual name (`serverAuth`, from const-oid's database of RFC names), or
/// its OID.
fn purpose_name(oid: &der::oid::ObjectIdentifier) -> String {
    match der::oid::db::DB.by_oid(oid) {
        Some(name) => name.strip_prefix("id-kp-").unwrap_or(name).to_owned(),
        None => oid.to_string(),
    }
}

fn pem_block(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    // The key passes through here: keep the base64 copy out of freed memory too.
    let b64 = zeroize::Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(der));
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}
