//! `stet doctor`: checks a profile from end to end, one line per check, and says how to fix
//! each failure.
//!
//! The checks run in order and carry on after a failure (a check that needs something an
//! earlier one could not provide says so and is skipped). Certificates are read by
//! `stet_transport::inspect`, the QWAC loaded as the transport loads it, keys compared through
//! `stet_httpsig`, and the network reached through `Transport::probe`: an unsigned,
//! unauthenticated GET, so no token or signature is ever sent or printed.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use stet_client::bank::BankProfiles;
use stet_httpsig::{PrivateKey, PublicKey};
use stet_transport::inspect::{CertificateInfo, PspRole, QcType};
use stet_transport::{LoadOptions, Profile, QwacIdentity, QwacSource, Transport, config};

use crate::Globals;
use crate::exit::{self, Failure, OrExit as _};
use crate::output::{Format, OutputArgs, Report as Printed};

#[path = "doctor_hsm.rs"]
mod hsm;
#[path = "doctor_registration.rs"]
mod registration;

/// A certificate with fewer days left than this is flagged for renewal.
const RENEW_WITHIN_DAYS: i64 = 30;
/// Clock skew beyond which banks refuse the `Date` header (and tokens look expired).
const MAX_SKEW: Duration = Duration::from_secs(30);

/// `stet doctor [--profile P] [--output json]`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stet doctor                          checks the default profile
  stet doctor --profile bnp-paribas    checks that profile
  stet doctor --output json | jq '.[] | select(.ok | not)'

Checks, in order: the configuration loads; the QWAC (dates and days left, key, chain order,
QcType web, PSD2 roles, NCA, organizationIdentifier); the QSealC key and, with qseal_cert, its
certificate (dates, key match, QcType seal, roles); the roles the profile's scopes need; the
permissions of the key files (or PIN files) and the configuration file; the TLS handshake with
the QWAC and the clock against the bank's Date; the token endpoint. A key given as a pkcs11:
URI gets its own lines: the module loads, the token and key are found, the key signs once in
the HSM and the certificate verifies it. What `stet register` kept is checked against the
profile (client_id, the kid as key_id, an approval still pending).

Exit codes: 0 every check passed (warnings allowed), 78 a certificate, key, permission or
configuration check failed, 69 only network checks failed (the bank is unreachable).")]
pub struct DoctorArgs {
    #[command(flatten)]
    out: OutputArgs,
}

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pass,
    /// Passed, but something needs doing soon.
    Warn,
    /// Not run: not configured, or needs what an earlier check could not give.
    Skip,
    Fail,
}

impl Status {
    fn word(self) -> &'static str {
        match self {
            Status::Pass => "ok",
            Status::Warn => "warn",
            Status::Skip => "skip",
            Status::Fail => "FAIL",
        }
    }

    fn mark(self) -> &'static str {
        match self {
            Status::Pass => "\x1b[32m✓\x1b[0m",
            Status::Warn => "\x1b[33m!\x1b[0m",
            Status::Skip => "\x1b[2m-\x1b[0m",
            Status::Fail => "\x1b[31m✗\x1b[0m",
        }
    }
}

/// Which exit code a failure leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A certificate, key, permission or configuration problem: 78.
    Local,
    /// The bank could not be reached: 69.
    Network,
}

/// One check's outcome.
#[derive(Debug, Clone)]
struct Check {
    name: String,
    status: Status,
    kind: Kind,
    detail: String,
    fix: Option<String>,
}

/// Collects the checks and prints each as it comes (text) or all at the end (json, ndjson,
/// csv).
struct Report {
    output: Format,
    fancy: bool,
    checks: Vec<Check>,
}

impl Report {
    fn new(output: Format) -> Self {
        let fancy = output == Format::Table
            && std::io::stdout().is_terminal()
            && std::env::var_os("NO_COLOR").is_none();
        Report {
            output,
            fancy,
            checks: Vec::new(),
        }
    }

    fn add(&mut self, check: Check) -> Result<(), Failure> {
        if self.output == Format::Table {
            let mark = if self.fancy {
                check.status.mark()
            } else {
                check.status.word()
            };
            let mut line = format!("{mark:<4} {}: {}", check.name, check.detail);
            if let Some(fix) = check.fix.as_ref().filter(|_| check.status != Status::Pass) {
                line.push_str(": ");
                line.push_str(fix);
            }
            let mut out = std::io::stdout().lock();
            writeln!(out, "{line}")
                .and_then(|()| out.flush())
                .or_exit(exit::IO, "cannot write the report")?;
        }
        self.checks.push(check);
        Ok(())
    }

    fn pass(&mut self, name: impl Into<String>, detail: impl Into<String>) -> Result<(), Failure> {
        self.add(Check {
            name: name.into(),
            status: Status::Pass,
            kind: Kind::Local,
            detail: detail.into(),
            fix: None,
        })
    }

    fn other(
        &mut self,
        status: Status,
        kind: Kind,
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Result<(), Failure> {
        self.add(Check {
            name: name.into(),
            status,
            kind,
            detail: detail.into(),
            fix: Some(fix.into()).filter(|f| !f.is_empty()),
        })
    }

    fn fail(
        &mut self,
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Result<(), Failure> {
        self.other(Status::Fail, Kind::Local, name, detail, fix)
    }

    fn skip(
        &mut self,
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Result<(), Failure> {
        self.other(Status::Skip, Kind::Local, name, detail, fix)
    }

    /// Prints the checks (json, ndjson, csv: text went line by line) and gives the exit code.
    fn finish(self) -> Result<u8, Failure> {
        if self.output != Format::Table {
            let array: Vec<serde_json::Value> = self
                .checks
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "check": c.name,
                        "ok": c.status != Status::Fail,
                        "status": c.status.word().to_ascii_lowercase(),
                        "detail": c.detail,
                        "fix": c.fix,
                    })
                })
                .collect();
            let rows = self
                .checks
                .iter()
                .map(|c| {
                    vec![
                        c.name.clone(),
                        (c.status != Status::Fail).to_string(),
                        c.status.word().to_ascii_lowercase(),
                        c.detail.clone(),
                        c.fix.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            Printed::new(serde_json::Value::Array(array), "")
                .rows(&["check", "ok", "status", "detail", "fix"], rows)
                .print(self.output)?;
        }
        let failed = |kind| {
            self.checks
                .iter()
                .any(|c| c.status == Status::Fail && c.kind == kind)
        };
        Ok(if failed(Kind::Local) {
            exit::CONFIG
        } else if failed(Kind::Network) {
            exit::UNAVAILABLE
        } else {
            0
        })
    }
}

/// Runs every check on the profile; see [`DoctorArgs`] for the list and the exit codes.
pub fn run(args: DoctorArgs, globals: &Globals) -> Result<u8, Failure> {
    let mut report = Report::new(args.out.report());
    let Some(profile) = check_configuration(&mut report, globals)? else {
        return report.finish();
    };
    let now = SystemTime::now();
    let qwac = match profile.qwac_key_uri() {
        Some(uri) => hsm::check_qwac(&mut report, &profile, uri, now)?,
        None => check_qwac(&mut report, &profile, now)?,
    };
    let qseal = match profile.qseal_key_uri() {
        Some(uri) => hsm::check_qseal(&mut report, &profile, uri, now)?,
        None => {
            let qseal_key = check_qseal_key(&mut report, &profile)?;
            check_qseal_cert(&mut report, &profile, qseal_key.as_ref(), now)?
        }
    };
    check_scopes(&mut report, &profile, qwac.as_ref(), qseal.as_ref())?;
    registration::check(&mut report, &profile)?;
    check_permissions(&mut report, &profile)?;
    check_network(&mut report, &profile)?;
    report.finish()
}

/// The configuration file and the profile, as every command loads them.
fn check_configuration(report: &mut Report, globals: &Globals) -> Result<Option<Profile>, Failure> {
    const NAME: &str = "configuration";
    let (path, explicit) = crate::profile::config_path(globals);
    let file = match &path {
        Some(p) if explicit || p.exists() => match config::load_file(p) {
            Ok(f) => Some(f),
            Err(e) => {
                report.fail(
                    NAME,
                    e.to_string(),
                    "fix the file, or create one with `stet init`",
                )?;
                return Ok(None);
            }
        },
        _ => None,
    };
    let env = |k: &str| std::env::var(k).ok();
    let source = path.as_deref().filter(|p| p.exists());
    let profile = match config::resolve(
        &file.unwrap_or_default(),
        globals.profile.as_deref(),
        source,
        &env,
    ) {
        Ok(p) => p,
        Err(e) => {
            let fix = match &path {
                Some(p) if !p.exists() => format!(
                    "no file at {}: write a profile with `stet init --bank NAME`",
                    p.display()
                ),
                _ => "see `stet init` for a commented profile".to_owned(),
            };
            report.fail(NAME, e.to_string(), fix)?;
            return Ok(None);
        }
    };
    let from = profile
        .source
        .as_ref()
        .map_or_else(|| "the environment".to_owned(), |p| p.display().to_string());
    let bank = match &profile.bank {
        None => "no bank dialect (generic STET)".to_owned(),
        Some(name) => match BankProfiles::builtin().get(name) {
            Ok(b) => format!("bank {} ({})", b.name, b.display_name),
            Err(e) => {
                report.fail(
                    NAME,
                    format!("profile `{}` from {from}: {e}", profile.name),
                    "set `bank` to one of the names `stet banks` lists",
                )?;
                return Ok(Some(profile));
            }
        },
    };
    report.pass(
        NAME,
        format!("profile `{}` from {from}, {bank}", profile.name),
    )?;
    let warnings = profile.security_warnings();
    if !warnings.is_empty() {
        report.other(
            Status::Warn,
            Kind::Local,
            "weakened settings",
            warnings.join("; "),
            "remove them from any profile that talks to a real bank",
        )?;
    }
    Ok(Some(profile))
}

/// The QWAC: loads as the transport loads it (key match, chain order), its dates, and its
/// QCStatements.
fn check_qwac(
    report: &mut Report,
    profile: &Profile,
    now: SystemTime,
) -> Result<Option<CertificateInfo>, Failure> {
    // Dates are judged below, from the certificates, so that an expired QWAC still shows
    // everything else about it.
    let options = LoadOptions {
        allow_invalid_dates: true,
    };
    let (loaded, chain, file) = match &profile.qwac {
        QwacSource::Pem { cert, key } => (
            QwacIdentity::from_pem_files(cert, key, options),
            std::fs::read(cert)
                .map_err(|e| format!("cannot read {}: {e}", cert.display()))
                .and_then(|b| {
                    stet_transport::inspect::read_chain(&b)
                        .map_err(|e| format!("{}: {e}", cert.display()))
                }),
            cert.clone(),
        ),
        QwacSource::Pkcs12 { path, password_env } => {
            let password = match password_env {
                Some(var) => std::env::var(var).unwrap_or_default(),
                None => String::new(),
            };
            (
                QwacIdentity::from_pkcs12_file(path, &password, options),
                std::fs::read(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))
                    .and_then(|b| {
                        stet_transport::inspect::read_pkcs12(&b, &password)
                            .map_err(|e| format!("{}: {e}", path.display()))
                    }),
                path.clone(),
            )
        }
    };

    // Dates.
    let leaf = match chain {
        Ok(chain) if !chain.is_empty() => {
            let leaf = chain[0].clone();
            check_dates(report, "QWAC certificate", &chain, now, &file, "qwac_cert")?;
            Some(leaf)
        }
        Ok(_) => {
            report.fail(
                "QWAC certificate",
                format!("{}: no certificate", file.display()),
                "point qwac_cert at the QWAC chain (PEM, leaf first)",
            )?;
            None
        }
        Err(e) => {
            report.fail(
                "QWAC certificate",
                e,
                "point qwac_cert (or qwac_p12) at the QWAC your QTSP issued",
            )?;
            None
        }
    };

    // Key and chain, as the TLS client will use them.
    match loaded {
        Ok(_) => report.pass(
            "QWAC key and chain",
            "the key matches the certificate; the chain runs leaf first, each followed by its \
             issuer",
        )?,
        Err(e) => {
            let fix = match &e {
                stet_transport::IdentityError::KeyMismatch { .. } => {
                    "set qwac_key to the private key of this QWAC"
                }
                stet_transport::IdentityError::ChainOrder { .. } => {
                    "reorder the PEM file: the QWAC first, then each issuer in turn"
                }
                stet_transport::IdentityError::Pkcs12 { .. } => {
                    "check the bundle and the variable named by qwac_p12_password_env"
                }
                _ => "point qwac_cert and qwac_key (or qwac_p12) at readable PEM files",
            };
            report.fail("QWAC key and chain", e.to_string(), fix)?;
        }
    }

    // QCStatements.
    match &leaf {
        None => report.skip(
            "QWAC QCStatements",
            "the QWAC could not be read",
            "see the QWAC certificate line",
        )?,
        Some(info) => check_statements(report, "QWAC QCStatements", info, QcType::Web)?,
    }
    Ok(leaf)
}

/// Validity of each certificate of `chain` (leaf first), days left for the leaf.
fn check_dates(
    report: &mut Report,
    name: &str,
    chain: &[CertificateInfo],
    now: SystemTime,
    file: &Path,
    key: &str,
) -> Result<(), Failure> {
    let leaf = &chain[0];
    let renew = format!(
        "renew it with your QTSP and point {key} at the new one ({})",
        file.display()
    );
    for (i, cert) in chain.iter().enumerate() {
        let what = if i == 0 {
            "certificate".to_owned()
        } else {
            format!("issuer certificate {}", i + 1)
        };
        if now < cert.not_before {
            return report.fail(
                name,
                format!(
                    "{what} {} is not valid before {}",
                    cert.subject,
                    date(cert.not_before)
                ),
                "check the clock, or wait until then",
            );
        }
        if now > cert.not_after {
            let days = -cert.days_left(now);
            return report.fail(
                name,
                format!(
                    "{what} {} expired on {} ({days} days ago)",
                    cert.subject,
                    date(cert.not_after)
                ),
                renew,
            );
        }
    }
    let days = leaf.days_left(now);
    let detail = format!(
        "{}, valid until {} ({days} days left)",
        leaf.subject,
        date(leaf.not_after)
    );
    if days < RENEW_WITHIN_DAYS {
        report.other(Status::Warn, Kind::Local, name, detail, renew)
    } else {
        report.pass(name, detail)
    }
}

/// QcType, PSD2 statement (roles, NCA) and organizationIdentifier of a TPP certificate.
fn check_statements(
    report: &mut Report,
    name: &str,
    info: &CertificateInfo,
    wanted: QcType,
) -> Result<(), Failure> {
    let (what, key) = match wanted {
        QcType::Web => ("QWAC", "qwac_cert"),
        _ => ("QSealC", "qseal_cert"),
    };
    let mut problems = Vec::new();
    if !info.qc_types.contains(&wanted) {
        let found = if info.qc_types.is_empty() {
            "no QcType statement".to_owned()
        } else {
            format!(
                "QcType {}",
                info.qc_types
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        problems.push(format!("{found}, not {wanted}"));
    }
    match &info.psd2 {
        None => problems.push("no PSD2 QCStatement (roles and NCA)".to_owned()),
        Some(p) if p.roles.is_empty() => problems.push("no PSD2 role".to_owned()),
        Some(_) => {}
    }
    match (&info.organization_identifier, &info.psd2) {
        (None, _) => problems.push("no organizationIdentifier in the subject".to_owned()),
        (Some(org), Some(p)) if !org.starts_with(&format!("PSD{}-", p.nca_id)) => {
            problems.push(format!(
                "organizationIdentifier {org} does not match the NCA id {} (expected PSD{}-…)",
                p.nca_id, p.nca_id
            ))
        }
        _ => {}
    }
    let summary = format!(
        "QcType {}, roles {}, NCA {}, organizationIdentifier {}",
        if info.qc_types.is_empty() {
            "none".to_owned()
        } else {
            info.qc_types
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("+")
        },
        info.roles_text(),
        info.psd2.as_ref().map_or_else(
            || "none".to_owned(),
            |p| format!("{} ({})", p.nca_name, p.nca_id)
        ),
        info.organization_identifier.as_deref().unwrap_or("none"),
    );
    if problems.is_empty() {
        report.pass(name, summary)
    } else {
        report.fail(
            name,
            format!("{}; {summary}", problems.join("; ")),
            format!(
                "{key} must be an eIDAS {what} for PSD2 (QcType {wanted}, PSD2 roles, \
                 organizationIdentifier): check you did not swap the QWAC and the QSealC, or ask \
                 your QTSP"
            ),
        )
    }
}

/// The QSealC private key loads (with its passphrase) and is RSA of at least 2048 bits.
fn check_qseal_key(report: &mut Report, profile: &Profile) -> Result<Option<PrivateKey>, Failure> {
    const NAME: &str = "QSealC key";
    let path = &profile.qseal_key;
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            report.fail(
                NAME,
                format!("cannot read {}: {e}", path.display()),
                "point qseal_key at the QSealC's private key (PEM)",
            )?;
            return Ok(None);
        }
    };
    let passphrase = match &profile.qseal_key_passphrase_env {
        Some(var) => match std::env::var(var) {
            Ok(v) => Some(zeroize_string(v)),
            Err(_) => {
                report.fail(
                    NAME,
                    format!("qseal_key_passphrase_env names {var}, which is not set"),
                    format!("export {var} with the key's passphrase"),
                )?;
                return Ok(None);
            }
        },
        None => None,
    };
    let key = PrivateKey::from_bytes(&bytes, passphrase.as_ref().map(|p| p.as_bytes()));
    drop(zeroize::Zeroizing::new(bytes));
    match key {
        Ok(key) if key.bits() < 2048 => {
            report.fail(
                NAME,
                format!("{}: RSA {} bits", path.display(), key.bits()),
                "banks want RSA of 2048 bits or more: get a new QSealC",
            )?;
            Ok(Some(key))
        }
        Ok(key) => {
            report.pass(NAME, format!("{}: RSA {} bits", path.display(), key.bits()))?;
            Ok(Some(key))
        }
        Err(e) => {
            report.fail(
                NAME,
                format!("{}: {e}", path.display()),
                "point qseal_key at the QSealC's RSA private key (PEM: PKCS#8 or PKCS#1)",
            )?;
            Ok(None)
        }
    }
}

fn zeroize_string(s: String) -> zeroize::Zeroizing<String> {
    zeroize::Zeroizing::new(s)
}

/// The QSealC certificate, when configured: dates, key match, QCStatements.
fn check_qseal_cert(
    report: &mut Report,
    profile: &Profile,
    key: Option<&PrivateKey>,
    now: SystemTime,
) -> Result<Option<CertificateInfo>, Failure> {
    const NAME: &str = "QSealC certificate";
    let Some(path) = &profile.qseal_cert else {
        report.skip(
            NAME,
            "not configured, so its dates, key and roles are not checked",
            format!(
                "add `qseal_cert = \"PATH\"` (the QSealC certificate, PEM) to profile `{}`",
                profile.name
            ),
        )?;
        return Ok(None);
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            report.fail(
                NAME,
                format!("cannot read {}: {e}", path.display()),
                "point qseal_cert at the QSealC certificate (PEM), or remove the line",
            )?;
            return Ok(None);
        }
    };
    let chain = match stet_transport::inspect::read_chain(&bytes) {
        Ok(c) if !c.is_empty() => c,
        Ok(_) => {
            report.fail(
                NAME,
                format!("{}: no certificate", path.display()),
                "point qseal_cert at the QSealC certificate (PEM)",
            )?;
            return Ok(None);
        }
        Err(e) => {
            report.fail(
                NAME,
                format!("{}: {e}", path.display()),
                "point qseal_cert at the QSealC certificate (PEM)",
            )?;
            return Ok(None);
        }
    };
    check_dates(report, NAME, &chain, now, path, "qseal_cert")?;
    let leaf = chain[0].clone();

    const MATCH: &str = "QSealC key matches certificate";
    let public = PublicKey::from_spki_der(&leaf.public_key_der);
    match (key, public) {
        (None, _) => report.skip(MATCH, "the QSealC key could not be loaded", "")?,
        (Some(_), Err(e)) => report.fail(
            MATCH,
            format!("the certificate's public key: {e}"),
            "STET signatures are rsa-sha256: the QSealC must hold an RSA key",
        )?,
        (Some(k), Ok(cert_key)) => match k.public_key() {
            Ok(p) if p == cert_key => report.pass(
                MATCH,
                format!(
                    "{} is the key of {}",
                    profile.qseal_key.display(),
                    leaf.subject
                ),
            )?,
            Ok(_) => report.fail(
                MATCH,
                format!(
                    "{} is not the key of {} ({})",
                    profile.qseal_key.display(),
                    leaf.subject,
                    path.display()
                ),
                "set qseal_key and qseal_cert to the key and certificate of the same QSealC \
                 (the bank verifies signatures with the certificate behind key_id)",
            )?,
            Err(e) => report.fail(
                MATCH,
                format!("cannot derive the public key: {e}"),
                "check qseal_key",
            )?,
        },
    }
    check_statements(report, "QSealC QCStatements", &leaf, QcType::Seal)?;
    Ok(Some(leaf))
}

/// The PSD2 roles the profile's scopes need, in the QSealC (or the QWAC when the QSealC
/// certificate is not configured).
fn check_scopes(
    report: &mut Report,
    profile: &Profile,
    qwac: Option<&CertificateInfo>,
    qseal: Option<&CertificateInfo>,
) -> Result<(), Failure> {
    const NAME: &str = "roles for the scopes";
    let bank = profile
        .bank
        .as_deref()
        .and_then(|b| BankProfiles::builtin().get(b).ok());
    let needed: Vec<(String, PspRole)> = profile
        .scopes
        .iter()
        .filter_map(|scope| {
            let by_bank = bank.as_ref().and_then(|b| {
                let s = &b.scopes;
                if *scope == s.aisp {
                    Some(PspRole::AccountInformation)
                } else if *scope == s.pisp {
                    Some(PspRole::PaymentInitiation)
                } else if *scope == s.cbpii {
                    Some(PspRole::CardIssuing)
                } else {
                    None
                }
            });
            by_bank
                .or_else(|| PspRole::for_scope(scope))
                .map(|r| (scope.clone(), r))
        })
        .collect();
    let scopes = profile.scopes.join(", ");
    let (cert, which) = match (qseal, qwac) {
        (Some(c), _) => (c, "QSealC"),
        (None, Some(c)) => (c, "QWAC (no qseal_cert configured)"),
        (None, None) => {
            return report.skip(NAME, "no certificate could be read", "see the lines above");
        }
    };
    if needed.is_empty() {
        return report.pass(NAME, format!("scopes {scopes} need no PSD2 role"));
    }
    let missing: Vec<String> = needed
        .iter()
        .filter(|(_, role)| !cert.has_role(role.clone()))
        .map(|(scope, role)| format!("{role} (for {scope})"))
        .collect();
    if missing.is_empty() {
        let roles: Vec<String> = needed
            .iter()
            .map(|(scope, role)| format!("{scope} → {role}"))
            .collect();
        report.pass(NAME, format!("{which} has {}", roles.join(", ")))
    } else {
        report.fail(
            NAME,
            format!(
                "the {which} lacks {} (it has {})",
                missing.join(", "),
                cert.roles_text()
            ),
            format!(
                "remove those scopes from `scopes` in profile `{}`, or get a certificate with \
                 those roles (your NCA must have authorised them)",
                profile.name
            ),
        )
    }
}

/// Keys and the configuration file must not be readable by others.
fn check_permissions(report: &mut Report, profile: &Profile) -> Result<(), Failure> {
    let mut files: Vec<(&str, PathBuf)> = Vec::new();
    match &profile.qwac {
        // A key in an HSM has no file: its PIN file is checked instead (below).
        QwacSource::Pem { .. } if profile.qwac_key_uri().is_some() => {}
        QwacSource::Pem { key, .. } => files.push(("QWAC key", key.clone())),
        QwacSource::Pkcs12 { path, .. } => files.push(("QWAC PKCS#12 bundle", path.clone())),
    }
    if profile.qseal_key_uri().is_none() {
        files.push(("QSealC key", profile.qseal_key.clone()));
    }
    files.extend(hsm::pin_files(profile));
    if let Some(source) = &profile.source {
        files.push(("configuration file", source.clone()));
    }
    for (what, path) in files {
        let name = format!("permissions of the {what}");
        match mode(&path) {
            Err(e) => report.skip(
                name,
                format!("cannot read {}: {e}", path.display()),
                "see the lines above",
            )?,
            Ok(None) => report.skip(name, "not checked on this platform", "")?,
            Ok(Some(mode)) if mode & 0o077 != 0 => report.fail(
                name,
                format!(
                    "{} is mode {:03o}: other users can {}",
                    path.display(),
                    mode & 0o777,
                    if mode & 0o044 != 0 {
                        "read it"
                    } else {
                        "use it"
                    }
                ),
                format!("chmod 600 {}", shell_quote(&path)),
            )?,
            Ok(Some(mode)) => report.pass(
                name,
                format!("{} is mode {:03o}", path.display(), mode & 0o777),
            )?,
        }
    }
    Ok(())
}

fn mode(path: &Path) -> std::io::Result<Option<u32>> {
    let meta = std::fs::metadata(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        Ok(Some(meta.permissions().mode()))
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        Ok(None)
    }
}

fn shell_quote(path: &Path) -> String {
    let s = path.display().to_string();
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// TLS handshake with the QWAC, clock skew against the bank's `Date`, token endpoint.
fn check_network(report: &mut Report, profile: &Profile) -> Result<(), Failure> {
    const TLS: &str = "TLS handshake with the QWAC";
    const CLOCK: &str = "clock";
    const TOKEN: &str = "token endpoint";
    let transport = match Transport::builder(profile).build() {
        Ok(t) => t,
        Err(e) => {
            let detail = format!("cannot set up the client: {e}");
            // The checks above may have found the cause already (a key, a certificate); when
            // none did (a CA bundle that cannot be used, say), this is the failure.
            if report.checks.iter().any(|c| c.status == Status::Fail) {
                report.skip(TLS, detail, "fix the lines above first")?;
            } else {
                report.fail(TLS, detail, "fix the file or setting it names")?;
            }
            report.skip(CLOCK, "needs an answer from the bank", "")?;
            return report.skip(TOKEN, "needs a working client", "");
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .or_exit(1, "cannot start the async runtime")?;
    let api = &profile.api_base;
    let host = api.host_str().unwrap_or_default().to_owned();
    let started = SystemTime::now();
    match runtime.block_on(transport.probe(api)) {
        Ok(probe) => {
            report.pass(
                TLS,
                format!(
                    "{host} accepted it (GET {api} answered {} in {} ms)",
                    probe.status,
                    probe.round_trip.as_millis()
                ),
            )?;
            match probe.date {
                None => report.skip(CLOCK, format!("{host} sent no Date header"), "")?,
                Some(bank) => {
                    // The bank stamped its Date about halfway through the exchange.
                    let ours = started + probe.round_trip / 2;
                    let (skew, ahead) = match ours.duration_since(bank) {
                        Ok(d) => (d, true),
                        Err(e) => (e.duration(), false),
                    };
                    let secs = skew.as_secs();
                    let detail = if secs == 0 {
                        format!(
                            "in step with {host} (its Date: {})",
                            httpdate::fmt_http_date(bank)
                        )
                    } else {
                        format!(
                            "this machine is {secs} s {} {host} (its Date: {})",
                            if ahead { "ahead of" } else { "behind" },
                            httpdate::fmt_http_date(bank)
                        )
                    };
                    if skew > MAX_SKEW {
                        report.other(
                            Status::Fail,
                            Kind::Local,
                            CLOCK,
                            format!("{detail}; more than {} s", MAX_SKEW.as_secs()),
                            "synchronise the clock (e.g. `timedatectl set-ntp true`): banks \
                             refuse signed requests with a skewed Date",
                        )?;
                    } else {
                        report.pass(CLOCK, detail)?;
                    }
                }
            }
        }
        Err(e) => {
            let code = exit::for_transport(&e);
            let kind = if code == exit::CONFIG {
                Kind::Local
            } else {
                Kind::Network
            };
            let fix = if kind == Kind::Network {
                format!("check api_base ({api}), your network, and the bank's status page")
            } else {
                String::new()
            };
            report.other(Status::Fail, kind, TLS, e.to_string(), fix)?;
            report.skip(CLOCK, "needs an answer from the bank", "")?;
        }
    }
    match &profile.token_url {
        None => report.other(
            Status::Warn,
            Kind::Local,
            TOKEN,
            "no token_url: stet cannot get tokens (only STET_ACCESS_TOKEN works)",
            format!("add `token_url` to profile `{}`", profile.name),
        )?,
        Some(url) => match runtime.block_on(transport.probe(url)) {
            Ok(probe) => report.pass(
                TOKEN,
                format!(
                    "{url} is reachable (GET answered {} in {} ms)",
                    probe.status,
                    probe.round_trip.as_millis()
                ),
            )?,
            Err(e) => {
                let kind = if exit::for_transport(&e) == exit::CONFIG {
                    Kind::Local
                } else {
                    Kind::Network
                };
                report.other(
                    Status::Fail,
                    kind,
                    TOKEN,
                    e.to_string(),
                    "check token_url against the bank's documentation, and your network",
                )?;
            }
        },
    }
    Ok(())
}

/// `YYYY-MM-DD` (UTC).
fn date(t: SystemTime) -> String {
    time::OffsetDateTime::from(t).date().to_string()
}
