//! `stet init`: writes a commented profile into the configuration file, for the user to fill in.
//!
//! The text comes from the bank's dialect profile (`stet_client::bank`): its base path, its
//! scope names and the keyId form it wants. Nothing secret is written: the client secret and
//! passphrases are named as environment variables.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use stet_client::bank::{BankProfile, BankProfiles, KeyIdForm};
use stet_transport::config;

use crate::Globals;
use crate::exit::{self, Failure, OrExit as _};
use crate::output::{OutputArgs, Report};

/// `stet init [--bank NAME] [--profile P] [--force]`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  stet init --bank bnp-paribas                 adds [profiles.bnp-paribas] to the configuration file
  stet init --bank sandbox --profile dev       a profile named `dev` for the sandbox dialect
  stet init --config ./stet.toml --bank lcl --force
                                               replaces the `lcl` profile of ./stet.toml

The file is created readable by its owner only (0600), with its folder; an existing file gets
the profile appended. Then fill in the values marked FILL IN and run `stet doctor`.

Exit codes: 0 written, 78 unknown bank, profile already there (use --force) or unreadable
configuration file, 74 the file could not be written.")]
pub struct InitArgs {
    /// The bank dialect profile (`stet banks` lists them) [default: none, the generic STET 1.5]
    #[arg(long, value_name = "NAME")]
    bank: Option<String>,
    /// Replace the profile if the file already has one of that name
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    out: OutputArgs,
}

/// Writes the profile and says on stderr where, and what to fill in.
pub fn run(args: InitArgs, globals: &Globals) -> Result<u8, Failure> {
    let banks = BankProfiles::builtin();
    let bank = match &args.bank {
        Some(name) => Some(banks.get(name).or_exit(exit::CONFIG, "--bank")?),
        None => None,
    };
    let name = globals
        .profile
        .clone()
        .or_else(|| bank.as_ref().map(|b| b.name.clone()))
        .unwrap_or_else(|| "default".to_owned());
    if name.trim().is_empty()
        || name
            .chars()
            .any(|c| c.is_control() || matches!(c, '"' | '\\' | '#'))
    {
        return Err(Failure::new(
            2,
            format!("profile name `{name}`: use letters, digits, `-`, `_` and `.`"),
        ));
    }
    let generic = banks
        .get("generic-1.5")
        .or_exit(exit::CONFIG, "the built-in generic profile")?;
    let section = profile_text(&name, bank.as_ref().unwrap_or(&generic), bank.is_some());

    let (path, _) = crate::profile::config_path(globals);
    let path = path.ok_or_else(|| {
        Failure::new(
            exit::CONFIG,
            "cannot find the configuration folder (is HOME set?): name a file with --config",
        )
    })?;
    let written = write_profile(&path, &name, &section, args.force)?;
    let what = match written {
        Written::Created => "created",
        Written::Appended => "appended",
        Written::Replaced => "replaced",
    };
    let bank_name = bank.as_ref().map(|b| b.name.clone());
    if !globals.quiet {
        let verb = match written {
            Written::Created => "created",
            Written::Appended => "added to",
            Written::Replaced => "replaced in",
        };
        eprintln!("profile `{name}` {verb} {}", path.display());
        eprintln!(
            "fill in the values marked FILL IN: api_base, token_url and authorize_url (the bank's \
             hosts), client_id, qwac_cert/qwac_key, qseal_key/qseal_cert and key_id; keep the \
             client secret, if any, in STET_CLIENT_SECRET"
        );
        eprintln!("then check everything with: stet doctor --profile {name}");
    }
    Report::new(
        serde_json::json!({
            "profile": name,
            "bank": bank_name,
            "config": path.display().to_string(),
            "written": what,
        }),
        "",
    )
    .rows(
        &["profile", "bank", "config", "written"],
        vec![vec![
            name.clone(),
            bank_name.clone().unwrap_or_default(),
            path.display().to_string(),
            what.to_owned(),
        ]],
    )
    .print(args.out.report())?;
    Ok(0)
}

/// What happened to the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Written {
    Created,
    Appended,
    Replaced,
}

/// Adds `section` (the profile `name`) to the file at `path`, checking that the result parses.
fn write_profile(path: &Path, name: &str, section: &str, force: bool) -> Result<Written, Failure> {
    let shown = path.display();
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(Failure::new(
                exit::CONFIG,
                format!("cannot read {shown}: {e}"),
            ));
        }
    };
    let Some(text) = existing else {
        let text = format!(
            "# stet configuration: one profile per bank. Keep this file readable by you only.\n\
             # Keys and their meaning: each profile below says; `stet doctor` checks one.\n\
             default_profile = \"{name}\"\n\n{section}"
        );
        check_parses(&text, path, name)?;
        create_private(path, &text)?;
        return Ok(Written::Created);
    };
    let file = config::parse(&text, path).map_err(|e| {
        Failure::new(
            exit::CONFIG,
            format!("{e}: fix the file before adding a profile to it"),
        )
    })?;
    if !file.profiles.contains_key(name) {
        let mut addition = String::new();
        if !text.is_empty() && !text.ends_with('\n') {
            addition.push('\n');
        }
        addition.push('\n');
        addition.push_str(section);
        check_parses(&format!("{text}{addition}"), path, name)?;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .or_exit(exit::IO, format!("cannot open {shown}"))?;
        f.write_all(addition.as_bytes())
            .and_then(|()| f.sync_all())
            .or_exit(exit::IO, format!("cannot write {shown}"))?;
        return Ok(Written::Appended);
    }
    if !force {
        return Err(Failure::new(
            exit::CONFIG,
            format!(
                "{shown} already has a profile `{name}`: choose another name with --profile, or \
                 replace it with --force"
            ),
        ));
    }
    let kept = remove_section(&text, name);
    if config::parse(&kept, path).is_ok_and(|f| f.profiles.contains_key(name)) {
        return Err(Failure::new(
            exit::CONFIG,
            format!(
                "{shown} defines profile `{name}` in a form `stet init` cannot replace (not a \
                 `[profiles.{name}]` table): remove it by hand, then run `stet init` again"
            ),
        ));
    }
    let mut new = kept.trim_end().to_owned();
    if !new.is_empty() {
        new.push_str("\n\n");
    }
    new.push_str(section);
    check_parses(&new, path, name)?;
    replace_private(path, &new)?;
    Ok(Written::Replaced)
}

/// The text with the table `[profiles.NAME]` (and any sub-table of it) taken out, up to the
/// next table. A comment block right before a table goes with that table: the one before the
/// removed table goes, the one before the next table stays.
fn remove_section(text: &str, name: &str) -> String {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut out: Vec<&str> = Vec::with_capacity(lines.len());
    let mut i = 0;
    while i < lines.len() {
        if !header_names(lines[i], name) {
            out.push(lines[i]);
            i += 1;
            continue;
        }
        // Drop the comments that introduce the removed table.
        let comments = out
            .iter()
            .rev()
            .take_while(|l| l.trim_start().starts_with('#'))
            .count();
        let start = out.len() - comments;
        if start == 0 || out[start - 1].trim().is_empty() {
            out.truncate(start);
        }
        let mut end = i + 1;
        while end < lines.len() && !is_header(lines[end]) {
            end += 1;
        }
        // Keep the comments that introduce the next table.
        let mut keep_from = end;
        while keep_from > i + 1 && lines[keep_from - 1].trim_start().starts_with('#') {
            keep_from -= 1;
        }
        if keep_from == i + 1 || !lines[keep_from - 1].trim().is_empty() {
            keep_from = end;
        }
        out.extend(&lines[keep_from..end]);
        i = end;
    }
    out.concat()
}

fn is_header(line: &str) -> bool {
    line.trim_start().starts_with('[')
}

/// Whether `line` opens `[profiles.NAME]`, `[profiles."NAME"]` or a sub-table of it.
fn header_names(line: &str, name: &str) -> bool {
    let Some(inner) = line
        .trim()
        .split('#')
        .next()
        .map(str::trim)
        .and_then(|l| l.strip_prefix('['))
        .and_then(|l| l.strip_suffix(']'))
    else {
        return false;
    };
    let parts = key_parts(inner);
    parts.len() >= 2 && parts[0] == "profiles" && parts[1] == name
}

/// The parts of a dotted TOML key (`profiles."generic-1.4"`), unquoted. Names with a quote or
/// a backslash are refused before this is used, so escapes need no decoding.
fn key_parts(key: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut quote = None;
    for c in key.chars() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, '.') => parts.push(std::mem::take(&mut current).trim().to_owned()),
            (None, c) if c.is_whitespace() => {}
            (_, c) => current.push(c),
        }
    }
    parts.push(current.trim().to_owned());
    parts
}

/// `name` as a TOML key: bare when it can be, quoted otherwise.
fn toml_key(name: &str) -> String {
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        name.to_owned()
    } else {
        format!("\"{name}\"")
    }
}

fn check_parses(text: &str, path: &Path, name: &str) -> Result<(), Failure> {
    match config::parse(text, path) {
        Ok(f) if f.profiles.contains_key(name) => Ok(()),
        Ok(_) => Err(Failure::new(
            1,
            format!("internal error: the profile `{name}` written would not be found"),
        )),
        Err(e) => Err(Failure::new(
            1,
            format!("internal error: the profile written would not parse: {e}"),
        )),
    }
}

/// Creates `path` (and its folder) readable and writable by its owner only; fails if it
/// exists.
pub(crate) fn create_private(path: &Path, text: &str) -> Result<(), Failure> {
    let shown = path.display();
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).or_exit(
            exit::IO,
            format!("cannot create the folder {}", dir.display()),
        )?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options
        .open(path)
        .or_exit(exit::IO, format!("cannot create {shown}"))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .or_exit(exit::IO, format!("cannot write {shown}"))
}

/// Replaces `path` atomically with a 0600 file holding `text`.
fn replace_private(path: &Path, text: &str) -> Result<(), Failure> {
    let shown = path.display();
    let dir: PathBuf = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    // tempfile creates the file 0600 on Unix.
    let mut tmp = tempfile::Builder::new()
        .prefix(".config-")
        .tempfile_in(&dir)
        .or_exit(exit::IO, format!("cannot write in {}", dir.display()))?;
    tmp.write_all(text.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .or_exit(exit::IO, format!("cannot write {shown}"))?;
    tmp.persist(path)
        .map_err(|e| e.error)
        .or_exit(exit::IO, format!("cannot replace {shown}"))?;
    Ok(())
}

/// What the keyId must be for this bank, and a placeholder of that form.
fn key_id_help(form: KeyIdForm) -> (&'static str, &'static str) {
    match form {
        KeyIdForm::CertificateUrl => (
            "a public https URL where the bank downloads your QSealC certificate (PEM)",
            "https://tpp.example/certs/qseal.pem",
        ),
        KeyIdForm::RegistrationId => (
            "the identifier the bank gave you at registration (for some banks your client_id, \
             for others the `kid` of your registered JWKS)",
            "FILL-IN-registration-id",
        ),
        KeyIdForm::IssuerSerial => (
            "`SN=<QSealC serial in hex>,CA=<issuer DN>` (`stet doctor` prints both)",
            "SN=0123abcd,CA=CN=FILL IN,O=Issuer,C=FR",
        ),
        KeyIdForm::SerialHex => (
            "the QSealC serial number, lowercase hex (`stet doctor` prints it)",
            "0123abcd",
        ),
        KeyIdForm::CertificateBase64 => (
            "your QSealC certificate itself, DER in base64 (one line)",
            "MIIFILLIN",
        ),
    }
}

/// The `[profiles.NAME]` section for `bank` (`named`: the user chose it; else the generic
/// profile stands in and `bank` is left commented out).
fn profile_text(name: &str, bank: &BankProfile, named: bool) -> String {
    let host = "https://api.bank.example";
    let base = format!("{host}{}", bank.base_path);
    let (key_id_what, key_id_example) = key_id_help(bank.signature.key_id);
    let bank_line = if named {
        format!(
            "# The bank dialect profile ({}): signed headers, keyId form, scope names.\n\
             # `stet banks {}` shows it in full.\nbank = \"{}\"",
            bank.display_name, bank.name, bank.name
        )
    } else {
        "# The bank dialect profile (`stet banks` lists them): signed headers, keyId form, scope\n\
         # names. Without one, generic STET 1.5 is assumed.\n# bank = \"generic-1.5\""
            .to_owned()
    };
    let psu_ip_note = if bank.psu_ip_required {
        "This bank requires it when the PSU is present."
    } else {
        "Set it only when the PSU is really there."
    };
    let s = &bank.scopes;
    format!(
        r#"[profiles.{key}]
# Written by `stet init`. Replace every FILL IN, then run `stet doctor --profile {name}`.
# Relative paths are read from this file's folder. Any key can come from the environment as
# STET_ and the key in capitals (STET_API_BASE, STET_CLIENT_SECRET, ...): keep secrets there.
{bank_line}
# The STET API base URL: the bank's API host (FILL IN) followed by the dialect's base path.
api_base = "{base}"
# The OAuth2 token endpoint (FILL IN, from the bank's developer portal).
token_url = "{host}/oauth/token"
# The OAuth2 authorization endpoint, where the PSU logs in and consents (FILL IN).
authorize_url = "{host}/oauth/authorize"
# Your client id at the bank, often your organizationIdentifier (FILL IN).
client_id = "PSDFR-ACPR-00000"
# How you authenticate at the token endpoint: tls_client_auth (with the QWAC; the default),
# client_secret_basic or client_secret_post (then the secret goes in STET_CLIENT_SECRET).
# client_auth = "tls_client_auth"
# The redirect URI registered with the bank. A loopback one suits sandboxes; production banks
# want a registered https URI, whose redirected URL you paste back when logging in.
redirect_uri = "http://127.0.0.1:8765/callback"
# Your QWAC, for mutual TLS: the certificate chain (PEM, leaf first) and its private key.
qwac_cert = "certs/qwac.pem"
qwac_key = "certs/qwac.key"
# Or a PKCS#12 bundle instead of the two lines above, its password in the variable named.
# qwac_p12 = "certs/qwac.p12"
# qwac_p12_password_env = "STET_QWAC_P12_PASSWORD"
# Your QSealC private key (RSA, PEM), which signs every request. Keep it `chmod 600`.
qseal_key = "certs/qseal.key"
# The QSealC certificate (PEM): optional; lets `stet doctor` check the key, roles and dates.
qseal_cert = "certs/qseal.pem"
# The variable holding the QSealC key's passphrase, when the key is encrypted.
# qseal_key_passphrase_env = "STET_QSEAL_PASSPHRASE"
# The keyId of the Signature header. This bank wants {key_id_form}: {key_id_what}.
key_id = "{key_id_example}"
# Extra CA roots (PEM) for the bank's server certificate: sandboxes with a private CA.
# ca_bundle = "certs/ca.pem"
# Overrides the dialect's list of signed headers, in order.
# signed_headers = ["(request-target)", "date", "digest", "x-request-id"]
# The scopes asked for by default. This bank names them: AISP "{aisp}", PISP "{pisp}",
# CBPII "{cbpii}", history beyond {days} days "{ext}". Your QSealC's PSD2 roles must cover them.
scopes = ["{aisp}"]
# The PSU's IP address, sent as PSU-IP-Address: the PSU is present. {psu_ip_note}
# psu_ip = "203.0.113.7"
# Timeouts in seconds: TCP and TLS connect, and one whole attempt.
# connect_timeout_secs = 10
# timeout_secs = 30
# Sandboxes only, said on every run: accept an expired QWAC, or plain http URLs.
# allow_expired_certificate = false
# allow_insecure_http = false
"#,
        key = toml_key(name),
        key_id_form = bank.signature.key_id.as_str(),
        aisp = s.aisp,
        pisp = s.pisp,
        cbpii = s.cbpii,
        ext = s.extended_history,
        days = bank.history_without_extended_scope_days,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_bank_gives_a_profile_that_resolves() {
        let banks = BankProfiles::builtin();
        for name in banks.names() {
            let bank = banks.get(&name).unwrap();
            let text = profile_text(&name, &bank, true);
            let path = Path::new("/tmp/stet/config.toml");
            let file = config::parse(&text, path).unwrap();
            let p = config::resolve(&file, Some(&name), Some(path), &|_| None).unwrap();
            assert_eq!(p.bank.as_deref(), Some(name.as_str()));
            assert!(p.api_base.path().starts_with(&bank.base_path), "{name}");
            assert_eq!(p.qseal_key, Path::new("/tmp/stet/certs/qseal.key"));
        }
    }

    #[test]
    fn force_replaces_only_that_table() {
        assert_eq!(
            key_parts("profiles . \"generic-1.4\""),
            ["profiles", "generic-1.4"]
        );
        assert_eq!(toml_key("generic-1.4"), "\"generic-1.4\"");
        let text = "default_profile = \"a\"\n\n[profiles.a]\nkey_id = \"1\"\n\n# about b\n[profiles.b]\nkey_id = \"2\"\n\n[profiles.\"c\"]\nkey_id = \"3\"\n";
        let out = remove_section(text, "b");
        assert_eq!(
            out,
            "default_profile = \"a\"\n\n[profiles.a]\nkey_id = \"1\"\n\n[profiles.\"c\"]\nkey_id = \"3\"\n"
        );
        let out = remove_section(text, "a");
        assert!(out.contains("# about b\n[profiles.b]"), "{out}");
        assert!(!out.contains("[profiles.a]"));
        let out = remove_section(text, "c");
        assert!(!out.contains("key_id = \"3\""), "{out}");
        assert_eq!(remove_section(text, "zz"), text);
    }
}
