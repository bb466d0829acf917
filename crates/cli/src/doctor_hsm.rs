//! `stet doctor`'s checks for keys in an HSM (`qseal_key` or `qwac_key` given as `pkcs11:`
//! URIs): the module loads, the token and the key are found (logging in with the URI's PIN),
//! the key signs once in the HSM and the certificate verifies that signature. The certificate's
//! own checks (dates, QCStatements) are the same as for key files.

use std::path::Path;
use std::time::SystemTime;

use stet_pkcs11::{KeyKind, KeyMatch, Pkcs11Key, Pkcs11Uri};
use stet_transport::Profile;
use stet_transport::inspect::{CertificateInfo, QcType};

use super::{Report, Status, check_dates, check_statements};
use crate::exit::Failure;

/// Opens the key `uri` names, one line for the module and one for the key.
fn open_key(
    report: &mut Report,
    profile: &Profile,
    what: &str,
    setting: &str,
    uri: &str,
) -> Result<Option<Pkcs11Key>, Failure> {
    let module_line = format!("{what} PKCS#11 module");
    let key_line = format!("{what} key in the HSM");
    let parsed: Pkcs11Uri = match uri.parse() {
        Ok(u) => u,
        Err(e) => {
            report.fail(
                key_line,
                format!("{setting}: {e}"),
                "write it as pkcs11:token=LABEL;object=KEY?pin-source=file:/path/to/pin (RFC 7512)",
            )?;
            return Ok(None);
        }
    };
    let module = match stet_pkcs11::module_for(&parsed, profile.pkcs11_module.as_deref()) {
        Ok(m) => m,
        Err(e) => {
            report.fail(module_line, e.to_string(), "")?;
            return Ok(None);
        }
    };
    match Pkcs11Key::open(&parsed, Some(&module), 1) {
        Ok(key) => {
            report.pass(module_line, format!("{} loaded", module.display()))?;
            let fit = match key.kind() {
                KeyKind::Rsa { bits } if bits < 2048 => Some(format!(
                    "RSA {bits} bits: banks want RSA of 2048 bits or more"
                )),
                KeyKind::EcP256 | KeyKind::EcP384 if setting == "qseal_key" => Some(format!(
                    "{}: STET signatures (rsa-sha256) need an RSA key",
                    key.kind()
                )),
                _ => None,
            };
            let found = format!(
                "token `{}`, {}: {}",
                key.token(),
                parsed.object_description(),
                key.kind()
            );
            match fit {
                None => report.pass(key_line, found)?,
                Some(problem) => report.fail(
                    key_line,
                    format!("{found}; {problem}"),
                    format!("point {setting} at the {what}'s key"),
                )?,
            }
            Ok(Some(key))
        }
        Err(e) => {
            let load_failed = matches!(
                e,
                stet_pkcs11::Pkcs11Error::ModuleLoad { .. }
                    | stet_pkcs11::Pkcs11Error::NoModule { .. }
            );
            if load_failed {
                report.fail(module_line, e.to_string(), "")?;
                report.skip(key_line, "the module could not be loaded", "")?;
            } else {
                report.pass(module_line, format!("{} loaded", module.display()))?;
                report.fail(key_line, e.to_string(), "")?;
            }
            Ok(None)
        }
    }
}

/// The certificate's leaf and chain from `path`, or a failure line.
fn read_chain(
    report: &mut Report,
    name: &str,
    path: &Path,
    setting: &str,
) -> Result<Option<Vec<CertificateInfo>>, Failure> {
    let chain = std::fs::read(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
        .and_then(|b| {
            stet_transport::inspect::read_chain(&b).map_err(|e| format!("{}: {e}", path.display()))
        });
    match chain {
        Ok(c) if !c.is_empty() => Ok(Some(c)),
        Ok(_) => {
            report.fail(
                name,
                format!("{}: no certificate", path.display()),
                format!("point {setting} at the certificate (PEM)"),
            )?;
            Ok(None)
        }
        Err(e) => {
            report.fail(name, e, format!("point {setting} at the certificate (PEM)"))?;
            Ok(None)
        }
    }
}

/// Signs once in the HSM and verifies with the certificate.
fn check_match(
    report: &mut Report,
    name: &str,
    key: Option<&Pkcs11Key>,
    spki_der: &[u8],
    subject: &str,
    setting: &str,
) -> Result<(), Failure> {
    let Some(key) = key else {
        return report.skip(
            name,
            "the key in the HSM could not be opened",
            "see the lines above",
        );
    };
    match stet_pkcs11::check_public_key(key, spki_der) {
        Ok(KeyMatch::Matches) => report.pass(
            name,
            format!("the HSM signed a test message and {subject}'s public key verifies it"),
        ),
        Ok(KeyMatch::Differs) => report.fail(
            name,
            format!("the HSM key {} is not the key of {subject}", key.uri()),
            format!("point {setting} at this certificate's key (object= or id= in the URI)"),
        ),
        Err(e) => report.fail(
            name,
            format!("the HSM could not sign a test message: {e}"),
            "check the token's state and the key's CKA_SIGN attribute",
        ),
    }
}

/// The QWAC with its key in an HSM: the chain's dates, the key, the match, the QCStatements.
pub(super) fn check_qwac(
    report: &mut Report,
    profile: &Profile,
    uri: &str,
    now: SystemTime,
) -> Result<Option<CertificateInfo>, Failure> {
    let stet_transport::QwacSource::Pem { cert, .. } = &profile.qwac else {
        return Ok(None);
    };
    let chain = read_chain(report, "QWAC certificate", cert, "qwac_cert")?;
    if let Some(chain) = &chain {
        check_dates(report, "QWAC certificate", chain, now, cert, "qwac_cert")?;
    }
    let key = open_key(report, profile, "QWAC", "qwac_key", uri)?;
    match &chain {
        Some(chain) => check_match(
            report,
            "QWAC key and chain",
            key.as_ref(),
            &chain[0].public_key_der,
            &chain[0].subject,
            "qwac_key",
        )?,
        None => report.skip("QWAC key and chain", "the QWAC could not be read", "")?,
    }
    let leaf = chain.map(|mut c| c.remove(0));
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

/// The QSealC key in an HSM, and its certificate when configured.
pub(super) fn check_qseal(
    report: &mut Report,
    profile: &Profile,
    uri: &str,
    now: SystemTime,
) -> Result<Option<CertificateInfo>, Failure> {
    let key = open_key(report, profile, "QSealC", "qseal_key", uri)?;
    const NAME: &str = "QSealC certificate";
    let Some(path) = &profile.qseal_cert else {
        report.other(
            Status::Skip,
            super::Kind::Local,
            NAME,
            "not configured, so the HSM key is not checked against it",
            format!(
                "add `qseal_cert = \"PATH\"` (the QSealC certificate, PEM) to profile `{}`",
                profile.name
            ),
        )?;
        return Ok(None);
    };
    let Some(chain) = read_chain(report, NAME, path, "qseal_cert")? else {
        return Ok(None);
    };
    check_dates(report, NAME, &chain, now, path, "qseal_cert")?;
    let leaf = chain[0].clone();
    check_match(
        report,
        "QSealC key matches certificate",
        key.as_ref(),
        &leaf.public_key_der,
        &leaf.subject,
        "qseal_key",
    )?;
    check_statements(report, "QSealC QCStatements", &leaf, QcType::Seal)?;
    Ok(Some(leaf))
}

/// The PIN files the URIs name, for the permission checks.
pub(super) fn pin_files(profile: &Profile) -> Vec<(&'static str, std::path::PathBuf)> {
    let mut files = Vec::new();
    for (what, uri) in [
        ("QSealC key's PIN file", profile.qseal_key_uri()),
        ("QWAC key's PIN file", profile.qwac_key_uri()),
    ] {
        if let Some(Ok(Pkcs11Uri {
            pin: Some(stet_pkcs11::PinSource::File(path)),
            ..
        })) = uri.map(str::parse::<Pkcs11Uri>)
            && !files.iter().any(|(_, p)| p == &path)
        {
            files.push((what, path));
        }
    }
    files
}
