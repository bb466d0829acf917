//! Keys in an HSM: the QSealC signer and the QWAC's TLS configuration when the profile names
//! them with `pkcs11:` URIs.
//!
//! The QWAC's chain still comes from `qwac_cert` and gets the same checks as with a key file
//! (dates, order, usage); the key is proven to be the leaf's by a test signature verified with
//! the certificate. reqwest is then handed a rustls configuration of our own: the platform's
//! roots plus `ca_bundle` (as reqwest's own), and a client certificate resolver whose key signs
//! the handshake in the HSM.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use stet_pkcs11::{HsmClientCert, KeyMatch, Pkcs11Key, Pkcs11Signer};

use crate::error::TransportError;
use crate::identity::{IdentityError, LoadOptions};

/// Opens the QSealC key `uri` in its HSM as a signer.
pub(crate) fn qseal_signer(
    uri: &str,
    module: Option<&Path>,
) -> Result<Pkcs11Signer, TransportError> {
    let hsm = |source| TransportError::Hsm {
        what: "the QSealC key (qseal_key)",
        source,
    };
    let key = Pkcs11Key::open_uri(uri, module, stet_pkcs11::DEFAULT_SESSIONS).map_err(hsm)?;
    Pkcs11Signer::new(key).map_err(hsm)
}

/// A QWAC whose key is in an HSM, checked as a file QWAC is.
pub(crate) struct HsmQwac {
    chain: Vec<CertificateDer<'static>>,
    key: Pkcs11Key,
    pub(crate) not_after: SystemTime,
}

impl HsmQwac {
    /// Reads and checks the chain in `cert`, opens the key `uri`, and proves the key is the
    /// leaf's.
    pub(crate) fn load(
        cert: &Path,
        uri: &str,
        module: Option<&Path>,
        options: LoadOptions,
    ) -> Result<Self, TransportError> {
        let name = cert.display().to_string();
        let bytes = std::fs::read(cert).map_err(|source| IdentityError::Read {
            what: "QWAC certificate",
            path: name.clone(),
            source,
        })?;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&bytes)
            .collect::<Result<_, _>>()
            .map_err(|e| IdentityError::BadCertificate {
                path: name.clone(),
                index: 1,
                detail: stet_httpsig::describe_pem_error(&e),
            })?;
        if chain.is_empty() {
            return Err(IdentityError::NoCertificate { path: name }.into());
        }
        let (subject, not_after) = crate::identity::check_chain(&chain, &name, options)?;
        let key =
            Pkcs11Key::open_uri(uri, module, stet_pkcs11::DEFAULT_SESSIONS).map_err(|source| {
                TransportError::Hsm {
                    what: "the QWAC key (qwac_key)",
                    source,
                }
            })?;
        match stet_pkcs11::check_certificate(&key, &chain[0]) {
            Ok(KeyMatch::Matches) => {}
            Ok(KeyMatch::Differs) => {
                return Err(IdentityError::KeyMismatch {
                    key: key.uri().to_owned(),
                    cert: name,
                    subject,
                }
                .into());
            }
            Err(detail) => {
                return Err(IdentityError::Tls(format!(
                    "the HSM key {} could not sign a test message: {detail}",
                    key.uri()
                ))
                .into());
            }
        }
        Ok(HsmQwac {
            chain,
            key,
            not_after,
        })
    }

    /// The TLS client configuration: server certificates checked as reqwest checks them (the
    /// platform's roots, plus `ca_bundle`), the client certificate signed in the HSM.
    pub(crate) fn tls_config(
        &self,
        ca_bundle: Option<&Path>,
    ) -> Result<rustls::ClientConfig, TransportError> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut extra = Vec::new();
        if let Some(path) = ca_bundle {
            let name = path.display().to_string();
            let bytes = std::fs::read(path).map_err(|source| IdentityError::Read {
                what: "CA bundle",
                path: name.clone(),
                source,
            })?;
            for cert in CertificateDer::pem_slice_iter(&bytes) {
                extra.push(cert.map_err(|e| IdentityError::BadCertificate {
                    path: name.clone(),
                    index: extra.len() + 1,
                    detail: stet_httpsig::describe_pem_error(&e),
                })?);
            }
            if extra.is_empty() {
                return Err(IdentityError::NoCertificate { path: name }.into());
            }
        }
        let tls = |e: rustls::Error| IdentityError::Tls(e.to_string());
        let verifier = if extra.is_empty() {
            rustls_platform_verifier::Verifier::new(provider.clone())
        } else {
            rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider.clone())
        }
        .map_err(tls)?;
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(tls)?
            // "dangerous" only in name: this installs the platform verifier, as reqwest does.
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_client_cert_resolver(Arc::new(HsmClientCert::new(
                self.chain.clone(),
                self.key.clone(),
            )));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}
