//! The test PKI: a root CA, the bank's server certificate, and the TPP's QWAC and QSealC with the
//! eIDAS PSD2 QCStatements (ETSI EN 319 412-5 and TS 119 495).
//!
//! Everything here is for tests: the keys are written unencrypted, next to the certificates.

use std::fs;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, CustomExtension, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose, SanType,
};
use time::{Duration, OffsetDateTime};

/// The organizationIdentifier of the example TPP (ETSI EN 319 412-1: `PSD` + country + `-` +
/// the national competent authority + `-` + its registration number).
pub const TPP_ORGANIZATION_ID: &str = "PSDFR-ACPR-12345";

/// The file names of a PKI folder, as [`generate`] writes them and [`Pki::load`] reads them.
pub const FILES: [&str; 7] = [
    "ca.pem",
    "bank.pem",
    "bank.key",
    "tpp-qwac.pem",
    "tpp-qwac.key",
    "tpp-qseal.pem",
    "tpp-qseal.key",
];

/// Why a PKI could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// rcgen refused to build a key or certificate.
    #[error("cannot generate the {what}: {source}")]
    Generate {
        /// What was being made.
        what: &'static str,
        /// rcgen's reason.
        #[source]
        source: rcgen::Error,
    },
    /// A file could not be written or read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The reason.
        #[source]
        source: std::io::Error,
    },
}

/// The paths of a PKI folder's files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pki {
    /// The folder.
    pub dir: PathBuf,
}

impl Pki {
    /// A PKI read from `dir`, which must hold every file of [`FILES`].
    pub fn load(dir: &Path) -> Result<Pki, PkiError> {
        for name in FILES {
            let path = dir.join(name);
            fs::metadata(&path).map_err(|source| PkiError::Io { path, source })?;
        }
        Ok(Pki {
            dir: dir.to_path_buf(),
        })
    }

    /// The path of one file of the folder.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Reads one file of the folder.
    pub fn read(&self, name: &str) -> Result<Vec<u8>, PkiError> {
        let path = self.path(name);
        fs::read(&path).map_err(|source| PkiError::Io { path, source })
    }
}

/// PSP roles of ETSI TS 119 495, with their OIDs (`0.4.0.19495.1.n`).
const PSP_ROLES: [(&str, u64); 4] = [("PSP_AS", 1), ("PSP_PI", 2), ("PSP_AI", 3), ("PSP_IC", 4)];

/// The key type of the TPP's QWAC.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum QwacKey {
    /// ECDSA P-256: fast handshakes (the default).
    #[default]
    EcdsaP256,
    /// RSA-2048, as most QTSPs issue QWACs: the client signs the handshake with RSA-PSS in
    /// TLS 1.3 and PKCS#1 v1.5 in TLS 1.2.
    Rsa2048,
}

/// Makes a complete test PKI in `dir` (created if needed), overwriting the files of [`FILES`].
///
/// The CA, the bank's server certificate and the QWAC use ECDSA P-256 (fast handshakes); the
/// QSealC uses RSA-2048, since STET signatures are `rsa-sha256`. Certificates are valid from a
/// day ago for ten years. The server certificate names `localhost` and `127.0.0.1`.
pub fn generate(dir: &Path) -> Result<Pki, PkiError> {
    generate_with(dir, QwacKey::default())
}

/// [`generate`], with a QWAC of key type `qwac`.
pub fn generate_with(dir: &Path, qwac_key_type: QwacKey) -> Result<Pki, PkiError> {
    fs::create_dir_all(dir).map_err(|source| PkiError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let generate = |what| move |source| PkiError::Generate { what, source };
    let not_before = OffsetDateTime::now_utc() - Duration::days(1);
    let not_after = not_before + Duration::days(3653);

    // Root CA.
    let mut ca = CertificateParams::default();
    ca.distinguished_name = rcgen::DistinguishedName::new();
    ca.distinguished_name.push(DnType::CountryName, "FR");
    ca.distinguished_name
        .push(DnType::OrganizationName, "stet sandbox test CA");
    ca.distinguished_name
        .push(DnType::CommonName, "stet sandbox root CA (test only)");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = not_before;
    ca.not_after = not_after;
    let ca_key =
        KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(generate("CA key"))?;
    let ca = CertifiedIssuer::self_signed(ca, ca_key).map_err(generate("CA certificate"))?;

    // The bank's server certificate.
    let mut bank = CertificateParams::default();
    bank.distinguished_name = rcgen::DistinguishedName::new();
    bank.distinguished_name.push(DnType::CountryName, "FR");
    bank.distinguished_name
        .push(DnType::OrganizationName, "Banque Sandbox");
    bank.distinguished_name
        .push(DnType::CommonName, "localhost");
    bank.subject_alt_names = vec![
        SanType::DnsName("localhost".try_into().map_err(generate("server name"))?),
        SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])),
        SanType::IpAddress(std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST)),
    ];
    bank.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    bank.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    bank.use_authority_key_identifier_extension = true;
    bank.not_before = not_before;
    bank.not_after = not_after;
    let bank_key =
        KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(generate("bank key"))?;
    let bank = bank
        .signed_by(&bank_key, &ca)
        .map_err(generate("bank certificate"))?;

    // The TPP's QWAC (mutual TLS) and QSealC (HTTP signatures).
    let tpp = |qc_type: u64, cn: &str| {
        let mut p = CertificateParams::default();
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name.push(DnType::CountryName, "FR");
        p.distinguished_name
            .push(DnType::OrganizationName, "Example TPP");
        p.distinguished_name
            .push(DnType::CustomDnType(vec![2, 5, 4, 97]), TPP_ORGANIZATION_ID);
        p.distinguished_name.push(DnType::CommonName, cn);
        p.use_authority_key_identifier_extension = true;
        p.not_before = not_before;
        p.not_after = not_after;
        p.custom_extensions = vec![CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 5, 5, 7, 1, 3],
            qc_statements(
                qc_type,
                "Autorité de contrôle prudentiel et de résolution",
                "FR-ACPR",
            ),
        )];
        p
    };
    let mut qwac = tpp(3, "Example TPP QWAC (test only)");
    qwac.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    qwac.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ClientAuth,
        ExtendedKeyUsagePurpose::ServerAuth,
    ];
    let qwac_algorithm = match qwac_key_type {
        QwacKey::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        QwacKey::Rsa2048 => &rcgen::PKCS_RSA_SHA256,
    };
    let qwac_key = KeyPair::generate_for(qwac_algorithm).map_err(generate("QWAC key"))?;
    let qwac = qwac
        .signed_by(&qwac_key, &ca)
        .map_err(generate("QWAC certificate"))?;

    let mut qseal = tpp(2, "Example TPP QSealC (test only)");
    qseal.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::ContentCommitment,
    ];
    let qseal_key =
        KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).map_err(generate("QSealC key"))?;
    let qseal = qseal
        .signed_by(&qseal_key, &ca)
        .map_err(generate("QSealC certificate"))?;

    let files: [(&str, String); 7] = [
        ("ca.pem", ca.pem()),
        ("bank.pem", bank.pem()),
        ("bank.key", bank_key.serialize_pem()),
        ("tpp-qwac.pem", qwac.pem()),
        ("tpp-qwac.key", qwac_key.serialize_pem()),
        ("tpp-qseal.pem", qseal.pem()),
        ("tpp-qseal.key", qseal_key.serialize_pem()),
    ];
    for (name, pem) in files {
        let path = dir.join(name);
        write_file(&path, pem.as_bytes(), name.ends_with(".key"))
            .map_err(|source| PkiError::Io { path, source })?;
    }
    Ok(Pki {
        dir: dir.to_path_buf(),
    })
}

/// Writes `bytes` to `path`; a private key is created readable by its owner only (0600), as
/// stet asks of every key it loads.
fn write_file(path: &Path, bytes: &[u8], private: bool) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    if private {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path)?;
    #[cfg(unix)]
    if private {
        // The mode applies only when the file is created; tighten an existing one too.
        fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    }
    file.write_all(bytes)
}

/// The DER of a QCStatements extension value: QcCompliance, QcType (`qc_type` is the last arc
/// of `0.4.0.1862.1.6.n`: 2 seal, 3 web) and the PSD2 statement with every PSP role.
///
/// ```text
/// QCStatements ::= SEQUENCE OF QCStatement
/// QCStatement  ::= SEQUENCE { statementId OBJECT IDENTIFIER, statementInfo ANY OPTIONAL }
/// QcType       ::= SEQUENCE OF OBJECT IDENTIFIER
/// PSD2QcType   ::= SEQUENCE { rolesOfPSP RolesOfPSP, nCAName UTF8String, nCAId UTF8String }
/// RolesOfPSP   ::= SEQUENCE OF SEQUENCE { roleOfPspOid OBJECT IDENTIFIER, roleOfPspName UTF8String }
/// ```
pub fn qc_statements(qc_type: u64, nca_name: &str, nca_id: &str) -> Vec<u8> {
    let compliance = der::sequence(&[der::oid(&[0, 4, 0, 1862, 1, 1])]);
    let qc_type = der::sequence(&[
        der::oid(&[0, 4, 0, 1862, 1, 6]),
        der::sequence(&[der::oid(&[0, 4, 0, 1862, 1, 6, qc_type])]),
    ]);
    let roles: Vec<Vec<u8>> = PSP_ROLES
        .iter()
        .map(|(name, arc)| der::sequence(&[der::oid(&[0, 4, 0, 19495, 1, *arc]), der::utf8(name)]))
        .collect();
    let psd2 = der::sequence(&[
        der::oid(&[0, 4, 0, 19495, 2]),
        der::sequence(&[
            der::sequence(&roles),
            der::utf8(nca_name),
            der::utf8(nca_id),
        ]),
    ]);
    der::sequence(&[compliance, qc_type, psd2])
}

/// Just enough DER to write the QCStatements.
mod der {
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes: Vec<u8> = len
                .to_be_bytes()
                .into_iter()
                .skip_while(|b| *b == 0)
                .collect();
            out.push(0x80 | bytes.len() as u8);
            out.extend(bytes);
        }
        out.extend_from_slice(content);
        out
    }

    pub(super) fn sequence(items: &[Vec<u8>]) -> Vec<u8> {
        tlv(0x30, &items.concat())
    }

    pub(super) fn utf8(s: &str) -> Vec<u8> {
        tlv(0x0c, s.as_bytes())
    }

    /// An OBJECT IDENTIFIER; the arcs must be a valid OID (first arc 0..=2).
    pub(super) fn oid(arcs: &[u64]) -> Vec<u8> {
        let mut content = Vec::new();
        let mut push = |mut v: u64| {
            let mut groups = vec![(v & 0x7f) as u8];
            v >>= 7;
            while v > 0 {
                groups.push(0x80 | (v & 0x7f) as u8);
                v >>= 7;
            }
            groups.reverse();
            content.extend(groups);
        };
        push(arcs[0] * 40 + arcs.get(1).copied().unwrap_or(0));
        for arc in arcs.iter().skip(2) {
            push(*arc);
        }
        tlv(0x06, &content)
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn encodes_known_oids() {
            // 1.3.6.1.5.5.7.1.3 (id-pe-qcStatements)
            assert_eq!(
                super::oid(&[1, 3, 6, 1, 5, 5, 7, 1, 3]),
                [0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x01, 0x03]
            );
            // 0.4.0.19495.2: 19495 = 0x4c27 -> 0x81 0x98 0x27
            assert_eq!(
                super::oid(&[0, 4, 0, 19495, 2]),
                [0x06, 0x06, 0x04, 0x00, 0x81, 0x98, 0x27, 0x02]
            );
        }

        #[test]
        fn long_lengths() {
            let long = super::utf8(&"x".repeat(300));
            assert_eq!(&long[..4], &[0x0c, 0x82, 0x01, 0x2c]);
        }
    }
}
