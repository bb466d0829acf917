//! The evidence bundle: a zip a TPP keeps or hands to a bank or a supervisor, whose content
//! cannot be changed unnoticed.
//!
//! | entry | what |
//! |---|---|
//! | `report.json` | the run's report |
//! | `bank-profile.json` | the bank's dialect profile and the connection settings (no secret) |
//! | `catalogue.toml` | the catalogue the run used, whose `version` is in the manifest |
//! | `qsealc.pem` | the TPP's QSealC certificate, which signed the manifest |
//! | `manifest.json` | the SHA-256 of each entry above, the tool and catalogue versions |
//! | `manifest.sig` | the RSA-SHA256 (PKCS#1 v1.5) signature of `manifest.json`'s bytes, raw |
//!
//! The signature is made through the same [`Signer`](stet_httpsig::Signer) as the HTTP
//! signatures, with the QSealC key. Anyone can check it: [`verify`] here, or `openssl dgst
//! -sha256 -verify <public key of qsealc.pem> -signature manifest.sig manifest.json` with the
//! entries unzipped.

use std::collections::BTreeMap;
use std::io::{Cursor, Read as _, Write as _};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use stet_httpsig::{PublicKey, Signer};

use crate::catalogue::hex;

/// The format tag of `manifest.json`.
pub const FORMAT: &str = "stet-conformance-bundle/1";

/// The entries a manifest lists, in order.
const PAYLOAD: [&str; 4] = [
    "report.json",
    "bank-profile.json",
    "catalogue.toml",
    "qsealc.pem",
];

/// The largest entry read back (a report with much evidence stays far below).
const MAX_ENTRY: u64 = 64 * 1024 * 1024;

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// The tool and its version (`stet 0.1.0`).
    pub tool: String,
    /// The catalogue's version.
    pub catalogue_version: String,
    /// When the bundle was made (RFC 3339).
    pub created_at: String,
    /// The SHA-256 (hex) of each entry.
    pub files: BTreeMap<String, String>,
}

/// What goes into a bundle.
#[derive(Debug, Clone)]
pub struct Contents<'a> {
    /// `report.json`'s text.
    pub report_json: &'a str,
    /// `bank-profile.json`'s text.
    pub bank_profile_json: &'a str,
    /// The catalogue's text.
    pub catalogue_toml: &'a str,
    /// The catalogue's version.
    pub catalogue_version: &'a str,
    /// The QSealC certificate (PEM).
    pub qsealc_pem: &'a [u8],
    /// `stet` and its version.
    pub tool: &'a str,
}

/// Why a bundle could not be made or does not verify.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The zip could not be written or read.
    #[error("the bundle is not a readable zip: {0}")]
    Zip(String),
    /// The manifest could not be signed.
    #[error("signing the manifest with the QSealC: {0}")]
    Sign(String),
    /// An entry is missing, extra or changed.
    #[error("{0}")]
    Tampered(String),
    /// The signature does not verify, or not with the certificate or CA given.
    #[error("{0}")]
    Signature(String),
    /// The certificate or CA given to check the signer against is not usable.
    #[error("{0}")]
    Trust(String),
}

fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Makes a bundle, its manifest signed by `signer` (the QSealC key of `contents.qsealc_pem`).
pub fn write(contents: &Contents<'_>, signer: &dyn Signer) -> Result<Vec<u8>, BundleError> {
    let entries: [(&str, &[u8]); 4] = [
        ("report.json", contents.report_json.as_bytes()),
        ("bank-profile.json", contents.bank_profile_json.as_bytes()),
        ("catalogue.toml", contents.catalogue_toml.as_bytes()),
        ("qsealc.pem", contents.qsealc_pem),
    ];
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        tool: contents.tool.to_owned(),
        catalogue_version: contents.catalogue_version.to_owned(),
        created_at: time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        files: entries
            .iter()
            .map(|(n, b)| ((*n).to_owned(), sha256(b)))
            .collect(),
    };
    let manifest_json =
        serde_json::to_vec_pretty(&manifest).map_err(|e| BundleError::Zip(e.to_string()))?;
    let signature = signer
        .sign(&manifest_json)
        .map_err(|e| BundleError::Sign(e.to_string()))?;
    let zip_err = |e: zip::result::ZipError| BundleError::Zip(e.to_string());
    let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
    let options =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in entries.iter().copied().chain([
        ("manifest.json", manifest_json.as_slice()),
        ("manifest.sig", signature.as_slice()),
    ]) {
        zip.start_file(name, options).map_err(zip_err)?;
        zip.write_all(bytes)
            .map_err(|e| BundleError::Zip(e.to_string()))?;
    }
    Ok(zip.finish().map_err(zip_err)?.into_inner())
}

/// What a bundle that verifies holds.
#[derive(Debug, Clone)]
pub struct Verified {
    /// Its manifest.
    pub manifest: Manifest,
    /// The signer's certificate subject, as the bundled certificate states it.
    pub signer: String,
    /// What proves that `signer` is who signed; `None`: nothing but the bundled certificate,
    /// which anyone can make with any name (the bundle is intact, its signer unproven).
    pub authenticated: Option<Authentication>,
    /// `report.json`'s text.
    pub report_json: String,
}

/// What the bundle's signer was checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    /// The bundled QSealC is the certificate given (`--cert`).
    Certificate,
    /// The bundled QSealC chains to this CA (`--ca`; its subject), and is valid now.
    Ca(String),
}

/// Who must have signed a bundle, besides the key of its own certificate.
#[derive(Debug, Clone, Copy, Default)]
pub struct Trust<'a> {
    /// The QSealC (PEM) it must be signed with.
    pub certificate: Option<&'a [u8]>,
    /// CA certificates (PEM) the bundled QSealC must chain to.
    pub ca: Option<&'a [u8]>,
}

/// Checks a bundle: exactly the expected entries, each matching its SHA-256 in the manifest,
/// and the manifest signed by the key of the bundled QSealC. That proves the bundle intact,
/// not who made it: `trust` adds the proof (the bundled QSealC is the certificate given, or
/// chains to the CA given).
pub fn verify(bytes: &[u8], trust: Trust<'_>) -> Result<Verified, BundleError> {
    let mut zip =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| BundleError::Zip(e.to_string()))?;
    let mut names: Vec<String> = zip
        .file_names()
        .map(|n| n.map(|n| n.into_owned()))
        .collect::<Result<_, _>>()
        .map_err(|e| BundleError::Zip(e.to_string()))?;
    names.sort();
    let mut expected: Vec<String> = PAYLOAD
        .iter()
        .chain(&["manifest.json", "manifest.sig"])
        .map(|s| (*s).to_owned())
        .collect();
    expected.sort();
    if names != expected {
        return Err(BundleError::Tampered(format!(
            "the bundle holds {} where a stet evidence bundle holds {}",
            names.join(", "),
            expected.join(", ")
        )));
    }
    let mut read = |name: &str| -> Result<Vec<u8>, BundleError> {
        let file = zip
            .by_name(name)
            .map_err(|e| BundleError::Zip(format!("{name}: {e}")))?;
        let mut out = Vec::new();
        file.take(MAX_ENTRY)
            .read_to_end(&mut out)
            .map_err(|e| BundleError::Zip(format!("{name}: {e}")))?;
        Ok(out)
    };
    let manifest_bytes = read("manifest.json")?;
    let signature = read("manifest.sig")?;
    let certificate = read("qsealc.pem")?;
    let mut authenticated = None;
    if let Some(pinned) = trust.certificate {
        if pem_der(pinned).is_none() {
            return Err(BundleError::Trust(
                "the certificate given holds no PEM certificate".to_owned(),
            ));
        }
        if pem_der(pinned) != pem_der(&certificate) {
            return Err(BundleError::Signature(
                "the bundle was signed with another QSealC than the certificate given".to_owned(),
            ));
        }
        authenticated = Some(Authentication::Certificate);
    }
    if let Some(ca) = trust.ca {
        let ca_subject = chains_to(&certificate, ca, rustls_pki_types::UnixTime::now())?;
        authenticated = Some(Authentication::Ca(ca_subject));
    }
    let key = PublicKey::from_pem(&certificate)
        .map_err(|e| BundleError::Signature(format!("qsealc.pem: {e}")))?;
    if !key.verify_rsa_sha256(&manifest_bytes, &signature) {
        return Err(BundleError::Signature(
            "manifest.sig is not a signature of manifest.json by the bundled QSealC: the manifest \
             was changed, or signed with another key"
                .to_owned(),
        ));
    }
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| BundleError::Tampered(format!("manifest.json: {e}")))?;
    if manifest.format != FORMAT {
        return Err(BundleError::Tampered(format!(
            "manifest.json is of format `{}`, not {FORMAT}",
            manifest.format
        )));
    }
    for name in PAYLOAD {
        let listed = manifest
            .files
            .get(name)
            .ok_or_else(|| BundleError::Tampered(format!("manifest.json does not list {name}")))?;
        let actual = sha256(&read(name)?);
        if *listed != actual {
            return Err(BundleError::Tampered(format!(
                "{name} was changed after signing: its SHA-256 is {actual}, the signed manifest says {listed}"
            )));
        }
    }
    let report_json = String::from_utf8(read("report.json")?)
        .map_err(|_| BundleError::Tampered("report.json is not UTF-8".to_owned()))?;
    Ok(Verified {
        manifest,
        signer: subject(&certificate),
        authenticated,
        report_json,
    })
}

/// Every extended key usage is accepted: a QSealC may name none, or ones of its own (document
/// signing); what `--ca` checks is who issued it.
struct AnyUsage;

impl webpki::ExtendedKeyUsageValidator for AnyUsage {
    fn validate(&self, _: webpki::KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        Ok(())
    }
}

/// Checks that the first certificate of `certificate` (PEM; the others are intermediates)
/// chains to one of the CA certificates of `ca` (PEM) and is valid at `now`; gives the
/// subject of the CA it chains to.
fn chains_to(
    certificate: &[u8],
    ca: &[u8],
    now: rustls_pki_types::UnixTime,
) -> Result<String, BundleError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;
    let read = |pem: &[u8]| -> Vec<CertificateDer<'static>> {
        CertificateDer::pem_slice_iter(pem)
            .filter_map(Result::ok)
            .map(CertificateDer::into_owned)
            .collect()
    };
    let cas = read(ca);
    if cas.is_empty() {
        return Err(BundleError::Trust(
            "the CA file holds no PEM certificate".to_owned(),
        ));
    }
    let anchors = cas
        .iter()
        .map(|c| {
            webpki::anchor_from_trusted_cert(c)
                .map(|a| a.to_owned())
                .map_err(|e| BundleError::Trust(format!("a certificate of the CA file: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let chain = read(certificate);
    let (leaf, intermediates) = chain
        .split_first()
        .ok_or_else(|| BundleError::Signature("qsealc.pem holds no certificate".to_owned()))?;
    let end = webpki::EndEntityCert::try_from(leaf)
        .map_err(|e| BundleError::Signature(format!("qsealc.pem: {e}")))?;
    let algorithms = rustls::crypto::aws_lc_rs::default_provider()
        .signature_verification_algorithms
        .all;
    let path = end
        .verify_for_usage(
            algorithms,
            &anchors,
            intermediates,
            now,
            AnyUsage,
            None,
            None,
        )
        .map_err(|e| {
            let names: Vec<String> = cas.iter().map(|c| der_subject(c.as_ref())).collect();
            BundleError::Signature(format!(
                "the bundled QSealC ({}) does not chain to the CA given ({}): {e}",
                der_subject(leaf.as_ref()),
                names.join("; ")
            ))
        })?;
    let anchor = path.anchor();
    Ok(cas
        .iter()
        .find(|c| {
            webpki::anchor_from_trusted_cert(c)
                .is_ok_and(|a| a.subject.as_ref() == anchor.subject.as_ref())
        })
        .map(|c| der_subject(c.as_ref()))
        .unwrap_or_default())
}

fn der_subject(der: &[u8]) -> String {
    use der::Decode as _;
    x509_cert::Certificate::from_der(der)
        .map(|c| c.tbs_certificate.subject.to_string())
        .unwrap_or_default()
}

/// The DER of the first certificate in a PEM text (for comparing two PEM files).
fn pem_der(pem: &[u8]) -> Option<Vec<u8>> {
    use rustls_pki_types::pem::PemObject as _;
    rustls_pki_types::CertificateDer::pem_slice_iter(pem)
        .next()?
        .ok()
        .map(|c| c.to_vec())
}

fn subject(pem: &[u8]) -> String {
    pem_der(pem)
        .map(|der| der_subject(&der))
        .unwrap_or_default()
}
