//! Reading a TPP certificate the way a bank's eIDAS checks do: who it names, when it is valid,
//! and what its QCStatements say.
//!
//! A bank accepts a QWAC or a QSealC from a TPP when the certificate is a qualified one of the
//! right type and carries the PSD2 statement with the roles the call needs. Those facts sit in
//! the QCStatements extension (`1.3.6.1.5.5.7.1.3`, RFC 3739):
//!
//! ```text
//! QCStatements ::= SEQUENCE OF QCStatement
//! QCStatement  ::= SEQUENCE { statementId OBJECT IDENTIFIER, statementInfo ANY OPTIONAL }
//! QcType       ::= SEQUENCE OF OBJECT IDENTIFIER        -- 0.4.0.1862.1.6 (ETSI EN 319 412-5)
//! PSD2QcType   ::= SEQUENCE {                          -- 0.4.0.19495.2 (ETSI TS 119 495)
//!     rolesOfPSP SEQUENCE OF SEQUENCE { roleOfPspOid OBJECT IDENTIFIER, roleOfPspName UTF8String },
//!     nCAName UTF8String,
//!     nCAId   UTF8String }
//! ```
//!
//! and the TPP's registration number is the subject's `organizationIdentifier` (`2.5.4.97`,
//! e.g. `PSDFR-ACPR-12345`). [`CertificateInfo`] decodes all of it with the `der` and
//! `x509-cert` crates; `stet doctor` prints it. Nothing here checks a signature or a chain:
//! [`QwacIdentity`](crate::QwacIdentity) checks what the TLS connection needs.
//!
//! ```
//! # fn demo(pem: &[u8]) -> Result<(), stet_transport::inspect::InspectError> {
//! use stet_transport::inspect::{CertificateInfo, PspRole, QcType};
//!
//! let cert = CertificateInfo::from_pem(pem)?;
//! let seal = cert.qc_types.contains(&QcType::Seal);
//! let can_pay = cert.has_role(PspRole::PaymentInitiation);
//! println!("{} ({}), seal: {seal}, PISP: {can_pay}", cert.subject, cert.days_left(std::time::SystemTime::now()));
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::SystemTime;

use der::asn1::{Any, ObjectIdentifier, PrintableStringRef, Utf8StringRef};
use der::{Decode as _, Encode as _, Sequence, Tag, Tagged as _};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;

/// `id-pe-qcStatements` (RFC 3739).
pub const QC_STATEMENTS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.1.3");
/// `organizationIdentifier` (X.520).
pub const ORGANIZATION_IDENTIFIER: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.97");
/// `esi4-qcStatement-1`: the certificate is an EU qualified certificate.
pub const QC_COMPLIANCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.1862.1.1");
/// `esi4-qcStatement-6`: the type of qualified certificate.
pub const QC_TYPE: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.1862.1.6");
/// `etsi-psd2-qcStatement`: the PSD2 roles and the national competent authority.
pub const PSD2_STATEMENT: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.19495.2");

const QC_TYPE_SIGN: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.1862.1.6.1");
const QC_TYPE_SEAL: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.1862.1.6.2");
const QC_TYPE_WEB: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.1862.1.6.3");
const ROLE_AS: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.19495.1.1");
const ROLE_PI: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.19495.1.2");
const ROLE_AI: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.19495.1.3");
const ROLE_IC: ObjectIdentifier = ObjectIdentifier::new_unwrap("0.4.0.19495.1.4");

/// Why a certificate could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// No certificate in the bytes.
    #[error("no certificate found (expected PEM `-----BEGIN CERTIFICATE-----` or DER)")]
    NoCertificate,
    /// PEM that could not be decoded.
    #[error("malformed PEM: {0}")]
    Pem(String),
    /// DER that is not an X.509 certificate.
    #[error("not an X.509 certificate: {0}")]
    Certificate(String),
    /// A QCStatements extension that does not follow ETSI EN 319 412-5 / TS 119 495.
    #[error("the QCStatements extension cannot be read: {0}")]
    QcStatements(String),
    /// A PKCS#12 bundle that could not be opened.
    #[error("cannot open the PKCS#12 bundle: {0} (wrong password?)")]
    Pkcs12(String),
    /// Encoding failed (only [`encode_qc_statements`]).
    #[error("cannot encode the QCStatements: {0}")]
    Encode(String),
}

/// The type of a qualified certificate (ETSI EN 319 412-5, `0.4.0.1862.1.6.n`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum QcType {
    /// `.1`: electronic signature (a natural person).
    Sign,
    /// `.2`: electronic seal (a legal person): the QSealC.
    Seal,
    /// `.3`: website authentication: the QWAC.
    Web,
    /// Any other type, by OID.
    Other(String),
}

impl QcType {
    fn from_oid(oid: &ObjectIdentifier) -> Self {
        match *oid {
            QC_TYPE_SIGN => QcType::Sign,
            QC_TYPE_SEAL => QcType::Seal,
            QC_TYPE_WEB => QcType::Web,
            other => QcType::Other(other.to_string()),
        }
    }

    fn oid(&self) -> Result<ObjectIdentifier, InspectError> {
        Ok(match self {
            QcType::Sign => QC_TYPE_SIGN,
            QcType::Seal => QC_TYPE_SEAL,
            QcType::Web => QC_TYPE_WEB,
            QcType::Other(s) => parse_oid(s)?,
        })
    }
}

impl fmt::Display for QcType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QcType::Sign => f.write_str("sign"),
            QcType::Seal => f.write_str("seal"),
            QcType::Web => f.write_str("web"),
            QcType::Other(oid) => f.write_str(oid),
        }
    }
}

/// A PSD2 role of payment service provider (ETSI TS 119 495, `0.4.0.19495.1.n`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PspRole {
    /// `PSP_AS`: account servicing (a bank).
    AccountServicing,
    /// `PSP_PI`: payment initiation (PISP).
    PaymentInitiation,
    /// `PSP_AI`: account information (AISP).
    AccountInformation,
    /// `PSP_IC`: issuing of card-based payment instruments (CBPII).
    CardIssuing,
    /// A role this crate does not know, as written in the certificate.
    Other {
        /// Its OID.
        oid: String,
        /// Its name.
        name: String,
    },
}

impl PspRole {
    /// The role's name as TS 119 495 writes it (`PSP_AI`).
    pub fn name(&self) -> &str {
        match self {
            PspRole::AccountServicing => "PSP_AS",
            PspRole::PaymentInitiation => "PSP_PI",
            PspRole::AccountInformation => "PSP_AI",
            PspRole::CardIssuing => "PSP_IC",
            PspRole::Other { name, .. } => name,
        }
    }

    /// The role a STET OAuth2 scope needs: `aisp` → `PSP_AI`, `pisp` → `PSP_PI`, `cbpii` (and
    /// 1.4's `piisp`) → `PSP_IC`. Other scopes (`extended_transaction_history`, …) need none.
    pub fn for_scope(scope: &str) -> Option<PspRole> {
        match scope.trim().to_ascii_lowercase().as_str() {
            "aisp" => Some(PspRole::AccountInformation),
            "pisp" => Some(PspRole::PaymentInitiation),
            "cbpii" | "piisp" => Some(PspRole::CardIssuing),
            _ => None,
        }
    }

    fn from_asn1(oid: &ObjectIdentifier, name: &str) -> Self {
        match *oid {
            ROLE_AS => PspRole::AccountServicing,
            ROLE_PI => PspRole::PaymentInitiation,
            ROLE_AI => PspRole::AccountInformation,
            ROLE_IC => PspRole::CardIssuing,
            other => PspRole::Other {
                oid: other.to_string(),
                name: name.to_owned(),
            },
        }
    }

    fn oid(&self) -> Result<ObjectIdentifier, InspectError> {
        Ok(match self {
            PspRole::AccountServicing => ROLE_AS,
            PspRole::PaymentInitiation => ROLE_PI,
            PspRole::AccountInformation => ROLE_AI,
            PspRole::CardIssuing => ROLE_IC,
            PspRole::Other { oid, .. } => parse_oid(oid)?,
        })
    }
}

impl fmt::Display for PspRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The PSD2 QCStatement: what the TPP is licensed for, and by whom.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Psd2Statement {
    /// The roles, in certificate order.
    pub roles: Vec<PspRole>,
    /// The national competent authority's name
    /// (`Autorité de contrôle prudentiel et de résolution`).
    pub nca_name: String,
    /// Its identifier (`FR-ACPR`).
    pub nca_id: String,
}

/// What a certificate says, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateInfo {
    /// The subject, RFC 4514, with `organizationIdentifier` by name.
    pub subject: String,
    /// The issuer, RFC 4514, with `organizationIdentifier` by name.
    pub issuer: String,
    /// The serial number, lowercase hex.
    pub serial_hex: String,
    /// The subject's `organizationIdentifier` (`PSDFR-ACPR-12345`), when present.
    pub organization_identifier: Option<String>,
    /// Valid from.
    pub not_before: SystemTime,
    /// Valid until.
    pub not_after: SystemTime,
    /// The QcCompliance statement is present (an EU qualified certificate).
    pub qc_compliance: bool,
    /// The QcType statement's types; empty without one.
    pub qc_types: Vec<QcType>,
    /// The PSD2 statement, when present.
    pub psd2: Option<Psd2Statement>,
    /// The subject's public key, as `SubjectPublicKeyInfo` DER (to compare with a key).
    pub public_key_der: Vec<u8>,
}

impl CertificateInfo {
    /// Decodes one certificate from DER.
    pub fn from_der(der: &[u8]) -> Result<Self, InspectError> {
        let cert = x509_cert::Certificate::from_der(der)
            .map_err(|e| InspectError::Certificate(e.to_string()))?;
        Self::from_certificate(&cert)
    }

    /// Decodes the first certificate of a PEM document.
    pub fn from_pem(pem: &[u8]) -> Result<Self, InspectError> {
        let first = read_chain_pem(pem)?
            .into_iter()
            .next()
            .ok_or(InspectError::NoCertificate)?;
        Self::from_der(&first)
    }

    /// Decodes the first certificate of PEM or DER bytes (sniffed).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, InspectError> {
        read_chain(bytes)?
            .into_iter()
            .next()
            .ok_or(InspectError::NoCertificate)
    }

    /// Decodes a parsed certificate.
    pub fn from_certificate(cert: &x509_cert::Certificate) -> Result<Self, InspectError> {
        let tbs = &cert.tbs_certificate;
        let mut info = CertificateInfo {
            subject: name_text(&tbs.subject),
            issuer: name_text(&tbs.issuer),
            serial_hex: tbs
                .serial_number
                .as_bytes()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            organization_identifier: organization_identifier(&tbs.subject),
            not_before: tbs.validity.not_before.to_system_time(),
            not_after: tbs.validity.not_after.to_system_time(),
            qc_compliance: false,
            qc_types: Vec::new(),
            psd2: None,
            public_key_der: tbs
                .subject_public_key_info
                .to_der()
                .map_err(|e| InspectError::Certificate(e.to_string()))?,
        };
        let statements = tbs
            .extensions
            .iter()
            .flatten()
            .filter(|e| e.extn_id == QC_STATEMENTS);
        for extension in statements {
            let list = Vec::<QcStatementAsn1>::from_der(extension.extn_value.as_bytes())
                .map_err(|e| InspectError::QcStatements(e.to_string()))?;
            for statement in list {
                info.add_statement(statement)?;
            }
        }
        Ok(info)
    }

    fn add_statement(&mut self, statement: QcStatementAsn1) -> Result<(), InspectError> {
        let bad = |what: &str, e: der::Error| InspectError::QcStatements(format!("{what}: {e}"));
        match statement.statement_id {
            QC_COMPLIANCE => self.qc_compliance = true,
            QC_TYPE => {
                let info = statement.statement_info.ok_or_else(|| {
                    InspectError::QcStatements("QcType without its list of types".into())
                })?;
                let oids: Vec<ObjectIdentifier> = info.decode_as().map_err(|e| bad("QcType", e))?;
                for qc_type in oids.iter().map(QcType::from_oid) {
                    // A type listed twice (two statements) is still one type.
                    if !self.qc_types.contains(&qc_type) {
                        self.qc_types.push(qc_type);
                    }
                }
            }
            PSD2_STATEMENT => {
                let info = statement.statement_info.ok_or_else(|| {
                    InspectError::QcStatements("PSD2 statement without its content".into())
                })?;
                let psd2: Psd2Asn1 = info.decode_as().map_err(|e| bad("PSD2 statement", e))?;
                self.psd2 = Some(Psd2Statement {
                    roles: psd2
                        .roles_of_psp
                        .iter()
                        .map(|r| PspRole::from_asn1(&r.role_of_psp_oid, &r.role_of_psp_name))
                        .collect(),
                    nca_name: psd2.nca_name,
                    nca_id: psd2.nca_id,
                });
            }
            // Other statements (retention period, PDS, SSCD, …) say nothing stet checks.
            _ => {}
        }
        Ok(())
    }

    /// Whether the certificate is valid at `now`.
    pub fn is_valid_at(&self, now: SystemTime) -> bool {
        self.not_before <= now && now <= self.not_after
    }

    /// Whole days from `now` to the end of validity; negative once expired.
    pub fn days_left(&self, now: SystemTime) -> i64 {
        let secs = match self.not_after.duration_since(now) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
        };
        secs.div_euclid(86_400)
    }

    /// Whether the PSD2 statement grants `role`.
    pub fn has_role(&self, role: PspRole) -> bool {
        self.psd2.as_ref().is_some_and(|p| p.roles.contains(&role))
    }

    /// The PSD2 roles, comma-separated (`PSP_AI, PSP_PI`), or `none`.
    pub fn roles_text(&self) -> String {
        match &self.psd2 {
            Some(p) if !p.roles.is_empty() => p
                .roles
                .iter()
                .map(PspRole::name)
                .collect::<Vec<_>>()
                .join(", "),
            _ => "none".to_owned(),
        }
    }
}

/// Decodes every certificate of PEM or DER bytes (sniffed), in order.
pub fn read_chain(bytes: &[u8]) -> Result<Vec<CertificateInfo>, InspectError> {
    let ders = if looks_like_pem(bytes) {
        read_chain_pem(bytes)?
    } else {
        vec![bytes.to_vec()]
    };
    ders.iter().map(|d| CertificateInfo::from_der(d)).collect()
}

/// Decodes the certificates of a PKCS#12 (`.p12`, `.pfx`) bundle: the chain of its key, leaf
/// first.
pub fn read_pkcs12(bytes: &[u8], password: &str) -> Result<Vec<CertificateInfo>, InspectError> {
    let store = p12_keystore::KeyStore::from_pkcs12(
        bytes,
        password,
        p12_keystore::Pkcs12ImportPolicy::Strict,
    )
    .map_err(|e| InspectError::Pkcs12(e.to_string()))?;
    let (_, chain) = store
        .private_key_chain()
        .ok_or(InspectError::NoCertificate)?;
    chain
        .certs()
        .iter()
        .map(|c| CertificateInfo::from_der(c.as_der()))
        .collect()
}

fn read_chain_pem(pem: &[u8]) -> Result<Vec<Vec<u8>>, InspectError> {
    let ders: Vec<Vec<u8>> = CertificateDer::pem_slice_iter(pem)
        .map(|c| c.map(|c| c.to_vec()))
        .collect::<Result<_, _>>()
        .map_err(|e| InspectError::Pem(e.to_string()))?;
    if ders.is_empty() {
        return Err(InspectError::NoCertificate);
    }
    Ok(ders)
}

fn looks_like_pem(bytes: &[u8]) -> bool {
    bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

/// The DER of a QCStatements extension value: QcCompliance, a QcType statement with `types`
/// (when not empty) and the PSD2 statement (when given). For test PKIs and tools that make
/// certificates; the inverse of what [`CertificateInfo`] reads.
pub fn encode_qc_statements(
    types: &[QcType],
    psd2: Option<&Psd2Statement>,
) -> Result<Vec<u8>, InspectError> {
    let enc = |e: der::Error| InspectError::Encode(e.to_string());
    let mut list = vec![QcStatementAsn1 {
        statement_id: QC_COMPLIANCE,
        statement_info: None,
    }];
    if !types.is_empty() {
        let oids = types
            .iter()
            .map(QcType::oid)
            .collect::<Result<Vec<_>, _>>()?;
        list.push(QcStatementAsn1 {
            statement_id: QC_TYPE,
            statement_info: Some(Any::encode_from(&oids).map_err(enc)?),
        });
    }
    if let Some(p) = psd2 {
        let value = Psd2Asn1 {
            roles_of_psp: p
                .roles
                .iter()
                .map(|r| {
                    Ok(RoleOfPspAsn1 {
                        role_of_psp_oid: r.oid()?,
                        role_of_psp_name: r.name().to_owned(),
                    })
                })
                .collect::<Result<_, InspectError>>()?,
            nca_name: p.nca_name.clone(),
            nca_id: p.nca_id.clone(),
        };
        list.push(QcStatementAsn1 {
            statement_id: PSD2_STATEMENT,
            statement_info: Some(Any::encode_from(&value).map_err(enc)?),
        });
    }
    list.to_der().map_err(enc)
}

fn parse_oid(s: &str) -> Result<ObjectIdentifier, InspectError> {
    ObjectIdentifier::new(s).map_err(|e| InspectError::Encode(format!("OID `{s}`: {e}")))
}

/// RFC 4514 text of a name, as x509-cert writes it, except that `organizationIdentifier`
/// (which x509-cert's OID table lacks) shows by name and value instead of as hex DER.
fn name_text(name: &x509_cert::name::Name) -> String {
    name.0
        .iter()
        .rev()
        .map(|rdn| {
            rdn.0
                .iter()
                .map(|atv| match directory_string(atv) {
                    Some(v) if atv.oid == ORGANIZATION_IDENTIFIER => {
                        format!("organizationIdentifier={v}")
                    }
                    _ => atv.to_string(),
                })
                .collect::<Vec<_>>()
                .join("+")
        })
        .collect::<Vec<_>>()
        .join(",")
}

fn directory_string(atv: &x509_cert::attr::AttributeTypeAndValue) -> Option<String> {
    match atv.value.tag() {
        Tag::Utf8String => Utf8StringRef::try_from(&atv.value)
            .ok()
            .map(|s| s.as_str().to_owned()),
        Tag::PrintableString => PrintableStringRef::try_from(&atv.value)
            .ok()
            .map(|s| s.as_str().to_owned()),
        _ => None,
    }
}

fn organization_identifier(name: &x509_cert::name::Name) -> Option<String> {
    name.0
        .iter()
        .flat_map(|rdn| rdn.0.iter())
        .filter(|atv| atv.oid == ORGANIZATION_IDENTIFIER)
        .find_map(directory_string)
}

/// `QCStatement ::= SEQUENCE { statementId OBJECT IDENTIFIER, statementInfo ANY OPTIONAL }`
#[derive(Sequence)]
struct QcStatementAsn1 {
    statement_id: ObjectIdentifier,
    statement_info: Option<Any>,
}

/// `PSD2QcType ::= SEQUENCE { rolesOfPSP RolesOfPSP, nCAName NCAName, nCAId NCAId }`
#[derive(Sequence)]
struct Psd2Asn1 {
    roles_of_psp: Vec<RoleOfPspAsn1>,
    nca_name: String,
    nca_id: String,
}

/// `RoleOfPSP ::= SEQUENCE { roleOfPspOid RoleOfPspOid, roleOfPspName RoleOfPspName }`
#[derive(Sequence)]
struct RoleOfPspAsn1 {
    role_of_psp_oid: ObjectIdentifier,
    role_of_psp_name: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn sandbox_pki() -> (tempfile::TempDir, stet_sandbox::pki::Pki) {
        let dir = tempfile::tempdir().unwrap();
        let pki = stet_sandbox::pki::generate(dir.path()).unwrap();
        (dir, pki)
    }

    const ACPR: &str = "Autorité de contrôle prudentiel et de résolution";

    #[test]
    fn reads_the_sandbox_qwac_and_qsealc() {
        let (_dir, pki) = sandbox_pki();
        let now = SystemTime::now();

        let qwac = CertificateInfo::from_pem(&pki.read("tpp-qwac.pem").unwrap()).unwrap();
        assert_eq!(
            qwac.subject,
            "CN=Example TPP QWAC (test only),organizationIdentifier=PSDFR-ACPR-12345,O=Example TPP,C=FR"
        );
        assert!(
            qwac.issuer.contains("stet sandbox root CA"),
            "{}",
            qwac.issuer
        );
        assert_eq!(
            qwac.organization_identifier.as_deref(),
            Some(stet_sandbox::pki::TPP_ORGANIZATION_ID)
        );
        assert!(qwac.qc_compliance);
        assert_eq!(qwac.qc_types, [QcType::Web]);
        let psd2 = qwac.psd2.as_ref().unwrap();
        assert_eq!(
            psd2.roles,
            [
                PspRole::AccountServicing,
                PspRole::PaymentInitiation,
                PspRole::AccountInformation,
                PspRole::CardIssuing
            ]
        );
        assert_eq!(psd2.nca_name, ACPR);
        assert_eq!(psd2.nca_id, "FR-ACPR");
        assert!(qwac.is_valid_at(now));
        let days = qwac.days_left(now);
        assert!((3640..=3653).contains(&days), "{days}");
        assert_eq!(qwac.roles_text(), "PSP_AS, PSP_PI, PSP_AI, PSP_IC");

        let qseal = CertificateInfo::from_bytes(&pki.read("tpp-qseal.pem").unwrap()).unwrap();
        assert_eq!(qseal.qc_types, [QcType::Seal]);
        assert!(qseal.has_role(PspRole::PaymentInitiation));
        assert_ne!(qseal.public_key_der, qwac.public_key_der);
    }

    #[test]
    fn a_certificate_without_qc_statements() {
        let (_dir, pki) = sandbox_pki();
        for name in ["ca.pem", "bank.pem"] {
            let info = CertificateInfo::from_pem(&pki.read(name).unwrap()).unwrap();
            assert!(!info.qc_compliance, "{name}");
            assert!(info.qc_types.is_empty(), "{name}");
            assert_eq!(info.psd2, None, "{name}");
            assert_eq!(info.organization_identifier, None, "{name}");
            assert!(!info.has_role(PspRole::AccountInformation));
            assert_eq!(info.roles_text(), "none");
        }
    }

    #[test]
    fn der_and_chains() {
        let (_dir, pki) = sandbox_pki();
        let pem = pki.read("tpp-qwac.pem").unwrap();
        let der = CertificateDer::from_pem_slice(&pem).unwrap();
        let from_der = CertificateInfo::from_bytes(&der).unwrap();
        assert_eq!(from_der, CertificateInfo::from_pem(&pem).unwrap());

        let mut chain = pem.clone();
        chain.extend(pki.read("ca.pem").unwrap());
        let chain = read_chain(&chain).unwrap();
        assert_eq!(chain.len(), 2);
        assert_eq!(chain[0].issuer, chain[1].subject);
    }

    #[test]
    fn reads_the_chain_of_a_pkcs12_bundle() {
        use rustls_pki_types::PrivateKeyDer;
        let (_dir, pki) = sandbox_pki();
        let der = |name: &str| {
            CertificateDer::from_pem_slice(&pki.read(name).unwrap())
                .unwrap()
                .to_vec()
        };
        let key = match PrivateKeyDer::from_pem_slice(&pki.read("tpp-qwac.key").unwrap()).unwrap() {
            PrivateKeyDer::Pkcs8(k) => k.secret_pkcs8_der().to_vec(),
            other => panic!("{other:?}"),
        };
        let chain = p12_keystore::PrivateKeyChain::new(
            "qwac",
            p12_keystore::PrivateKey::from_der(&key).unwrap(),
            [
                p12_keystore::Certificate::from_der(&der("tpp-qwac.pem")).unwrap(),
                p12_keystore::Certificate::from_der(&der("ca.pem")).unwrap(),
            ],
        );
        let mut store = p12_keystore::KeyStore::new();
        store.add_entry("qwac", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
        let bytes = store.writer("secret").write().unwrap();

        let certs = read_pkcs12(&bytes, "secret").unwrap();
        assert_eq!(certs.len(), 2);
        assert_eq!(certs[0].qc_types, [QcType::Web]);
        assert_eq!(certs[0].issuer, certs[1].subject);
        assert!(matches!(
            read_pkcs12(&bytes, "wrong"),
            Err(InspectError::Pkcs12(_))
        ));
        assert!(read_pkcs12(b"not a bundle", "").is_err());
    }

    #[test]
    fn encodes_what_it_reads() {
        let psd2 = Psd2Statement {
            roles: vec![
                PspRole::AccountInformation,
                PspRole::Other {
                    oid: "1.2.3.4".into(),
                    name: "PSP_XX".into(),
                },
            ],
            nca_name: ACPR.into(),
            nca_id: "FR-ACPR".into(),
        };
        let der = encode_qc_statements(&[QcType::Seal, QcType::Sign], Some(&psd2)).unwrap();
        let list = Vec::<QcStatementAsn1>::from_der(&der).unwrap();
        assert_eq!(list.len(), 3);

        // Into a certificate and back.
        let mut params = rcgen::CertificateParams::new(vec!["tpp.example".into()]).unwrap();
        params.distinguished_name.push(
            rcgen::DnType::CustomDnType(vec![2, 5, 4, 97]),
            "PSDFR-ACPR-1",
        );
        params.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 5, 5, 7, 1, 3],
            der,
        )];
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let info = CertificateInfo::from_der(cert.der()).unwrap();
        assert_eq!(info.qc_types, [QcType::Seal, QcType::Sign]);
        assert_eq!(info.psd2.as_ref(), Some(&psd2));
        assert_eq!(
            info.organization_identifier.as_deref(),
            Some("PSDFR-ACPR-1")
        );
        assert!(!info.has_role(PspRole::PaymentInitiation));
    }

    #[test]
    fn days_left_counts_down_through_zero() {
        let info = CertificateInfo {
            subject: String::new(),
            issuer: String::new(),
            serial_hex: String::new(),
            organization_identifier: None,
            not_before: SystemTime::UNIX_EPOCH,
            not_after: SystemTime::UNIX_EPOCH + Duration::from_secs(10 * 86_400),
            qc_compliance: false,
            qc_types: vec![],
            psd2: None,
            public_key_der: vec![],
        };
        let at = |days: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(days * 86_400 + 1);
        assert_eq!(info.days_left(at(0)), 9);
        assert_eq!(info.days_left(at(11)), -2);
        assert!(info.is_valid_at(at(3)));
        assert!(!info.is_valid_at(at(11)));
    }

    #[test]
    fn scopes_map_to_roles() {
        assert_eq!(
            PspRole::for_scope("aisp"),
            Some(PspRole::AccountInformation)
        );
        assert_eq!(PspRole::for_scope("PISP"), Some(PspRole::PaymentInitiation));
        assert_eq!(PspRole::for_scope("piisp"), Some(PspRole::CardIssuing));
        assert_eq!(PspRole::for_scope("cbpii"), Some(PspRole::CardIssuing));
        assert_eq!(PspRole::for_scope("extended_transaction_history"), None);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert_eq!(
            CertificateInfo::from_bytes(b"").unwrap_err(),
            InspectError::Certificate(
                x509_cert::Certificate::from_der(b"")
                    .unwrap_err()
                    .to_string()
            )
        );
        assert_eq!(
            CertificateInfo::from_pem(b"no pem here").unwrap_err(),
            InspectError::NoCertificate
        );
        assert!(matches!(
            CertificateInfo::from_bytes(
                b"-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n"
            ),
            Err(InspectError::Pem(_) | InspectError::Certificate(_) | InspectError::NoCertificate)
        ));
        // A QCStatements extension whose PSD2 statement is not the right shape.
        let bad = [
            0x30, 0x0c, 0x30, 0x0a, 0x06, 0x06, 0x04, 0x00, 0x81, 0x98, 0x27, 0x02, 0x05, 0x00,
        ];
        let mut params = rcgen::CertificateParams::new(vec!["x.example".into()]).unwrap();
        params.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 5, 5, 7, 1, 3],
            bad.to_vec(),
        )];
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let cert = params.self_signed(&key).unwrap();
        let err = CertificateInfo::from_der(cert.der()).unwrap_err();
        assert!(
            matches!(&err, InspectError::QcStatements(m) if m.contains("PSD2")),
            "{err}"
        );
    }
}
