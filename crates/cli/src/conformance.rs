//! `stet conformance`: test a bank's STET API against the standard (`run`), show the catalogue
//! (`list`), check an evidence bundle (`verify-bundle`). The work is in `stet-conformance`.
//!
//! Exit codes of `stet conformance run`: 0 every case passed (waived failures included), 1 a
//! check failed or a waiver is stale, 2 bad configuration, catalogue or waivers, 3 a report
//! could not be written. `verify-bundle`: 0 valid, 1 it does not verify (not a bundle, changed,
//! signed by another key than `--cert`, not chaining to `--ca`), 2 a file named cannot be read
//! (the bundle, `--cert` or `--ca`) or holds no certificate.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use futures_util::future::BoxFuture;
use stet_conformance::{Catalogue, Consent, Cost, Options, PsuAgent, Report, Target, Waivers};
use stet_transport::{Profile, Secret, Token, Transport};
use url::Url;

use crate::Globals;
use crate::exit::{Failure, OrExit as _};

/// Exit code: a check failed (or a waiver is stale).
const FAILED: u8 = 1;
/// Exit code: bad configuration, catalogue or waivers.
const BAD_SETUP: u8 = 2;
/// Exit code: a report could not be written.
const NOT_WRITTEN: u8 = 3;

#[derive(Debug, Subcommand)]
pub enum ConformanceCommand {
    /// Run the catalogue against the profile's bank and report
    #[command(after_help = "Examples:
  stet conformance run --consent headless --report-dir out/ --allow money --allow budget
  stet conformance run --only signature --only STET-OAU-003 --output junit > junit.xml
  stet conformance run --waivers waivers.toml --bundle evidence.zip

Exit codes: 0 all passed (waived failures included), 1 a check failed or a waiver is stale,
2 bad configuration, catalogue or waivers, 3 a report could not be written.")]
    Run(RunArgs),
    /// List the catalogue's cases
    #[command(after_help = "Example:\n  stet conformance list --output json")]
    List(ListArgs),
    /// Check an evidence bundle: its manifest's SHA-256s, the QSealC signature, and (with
    /// --cert or --ca) who signed
    #[command(after_help = "Examples:
  stet conformance verify-bundle evidence.zip --cert tpp-qseal.pem
  stet conformance verify-bundle evidence.zip --ca qtsp-ca.pem --output json

Without --cert or --ca the check proves the bundle intact and signed by the key of the
certificate it carries, not who made it: anyone can make a certificate with a TPP's name.

Exit codes: 0 valid, 1 it does not verify (not a zip or not a bundle, changed after signing,
signed by another key than --cert, not chaining to --ca), 2 a file named cannot be read (the
bundle, --cert or --ca) or holds no certificate.")]
    VerifyBundle(VerifyArgs),
}

/// What `run` prints on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// A table for a terminal
    #[value(alias = "text")]
    Table,
    /// The JSON report (the source of truth)
    Json,
    /// JUnit XML, for CI
    Junit,
    /// One self-contained HTML page
    Html,
}

/// How the PSU's consent is had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ConsentMode {
    /// A token minted beforehand: `stet auth login`, or STET_ACCESS_TOKEN
    Token,
    /// A PSU at a browser approves the consent and each payment request
    Psu,
    /// Nobody: the sandbox's /authorize approves by itself
    Headless,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Only these cases: ids (STET-SIG-004), areas (signature) or area codes (SIG); repeat or
    /// separate with commas
    #[arg(long, value_name = "ID|AREA", value_delimiter = ',')]
    only: Vec<String>,
    /// How the PSU's consent is had
    #[arg(long, value_enum, default_value = "token")]
    consent: ConsentMode,
    /// Known deviations: a TOML file of [[waiver]] case, reason, expires
    #[arg(long, value_name = "FILE")]
    waivers: Option<PathBuf>,
    /// Write report.json, junit.xml and report.html there
    #[arg(long, value_name = "DIR")]
    report_dir: Option<PathBuf>,
    /// What to print on stdout
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    output: Output,
    /// A catalogue of one's own instead of the embedded one
    #[arg(long, value_name = "FILE")]
    catalogue: Option<PathBuf>,
    /// Run the cases that cost this too: money (creates payment requests), budget (spends an
    /// account's unattended calls for the day); repeat for both
    #[arg(long, value_enum, value_name = "COST", value_delimiter = ',')]
    allow: Vec<AllowCost>,
    /// Write the evidence bundle (a zip signed with the QSealC) there
    #[arg(long, value_name = "FILE")]
    bundle: Option<PathBuf>,
    /// The longest to wait for a token of the run to expire (for STET-OAU-003), in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    max_wait: u64,
    /// How many cases run at once
    #[arg(long, value_name = "N", default_value_t = 4)]
    concurrency: usize,
    /// With --consent psu: print the URL and ask for the URL the bank redirected to
    #[arg(long)]
    no_browser: bool,
    /// With --consent psu: how long to wait for the PSU, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    timeout: u64,
}

/// A cost `--allow` takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AllowCost {
    /// Cases that create payment requests
    Money,
    /// The case that spends an account's unattended calls
    Budget,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// A catalogue of one's own instead of the embedded one
    #[arg(long, value_name = "FILE")]
    catalogue: Option<PathBuf>,
    /// table or json
    #[arg(long, short = 'o', value_enum, default_value = "table")]
    output: ListOutput,
}

/// What `list` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListOutput {
    /// A table
    #[value(alias = "text")]
    Table,
    /// The cases as JSON
    Json,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The bundle (a zip made by `stet conformance run --bundle`)
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The QSealC certificate (PEM) the bundle must be signed with
    #[arg(long, value_name = "PEM")]
    cert: Option<PathBuf>,
    /// CA certificates (PEM) the bundle's QSealC must chain to (and be valid now)
    #[arg(long, value_name = "FILE")]
    ca: Option<PathBuf>,
    /// text or json
    #[arg(long, short = 'o', value_enum, default_value = "text")]
    output: VerifyOutput,
}

/// What `verify-bundle` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerifyOutput {
    /// One line
    #[value(alias = "table")]
    Text,
    /// One JSON object (docs/output.md)
    Json,
}

pub fn run(command: ConformanceCommand, globals: &Globals) -> Result<u8, Failure> {
    match command {
        ConformanceCommand::Run(args) => run_catalogue(args, globals),
        ConformanceCommand::List(args) => list(args),
        ConformanceCommand::VerifyBundle(args) => verify_bundle(args, globals),
    }
}

fn catalogue(path: Option<&Path>) -> Result<Catalogue, Failure> {
    match path {
        None => Ok(Catalogue::embedded()),
        Some(path) => {
            let text = std::fs::read_to_string(path).or_exit(
                BAD_SETUP,
                format!("cannot read the catalogue {}", path.display()),
            )?;
            Catalogue::from_toml(&text, &path.display().to_string())
                .map_err(|e| Failure::new(BAD_SETUP, e))
        }
    }
}

fn list(args: ListArgs) -> Result<u8, Failure> {
    let catalogue = catalogue(args.catalogue.as_deref())?;
    let text = match args.output {
        ListOutput::Json => {
            serde_json::to_string_pretty(&catalogue).or_exit(1, "cannot write the catalogue")?
                + "\n"
        }
        ListOutput::Table => {
            let mut out = format!(
                "catalogue {} ({}), {} cases\n\n{:<13} {:<10} {:<9} {:<12} {:<13} TITLE\n",
                catalogue.version,
                catalogue.source,
                catalogue.cases.len(),
                "CASE",
                "AREA",
                "SEVERITY",
                "COST",
                "DIALECTS"
            );
            for c in &catalogue.cases {
                let cost = c
                    .cost
                    .iter()
                    .map(|c| c.name())
                    .collect::<Vec<_>>()
                    .join(",");
                out.push_str(&format!(
                    "{:<13} {:<10} {:<9} {:<12} {:<13} {}\n",
                    c.id,
                    c.area.name(),
                    format!("{:?}", c.severity).to_lowercase(),
                    if cost.is_empty() { "-" } else { &cost },
                    c.dialects.join(","),
                    c.title
                ));
            }
            out
        }
    };
    print_stdout(&text)?;
    Ok(0)
}

fn print_stdout(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .or_exit(NOT_WRITTEN, "cannot write to stdout")
}

/// The PSU at a browser, through `stet auth login`'s flow (loopback listener or paste).
struct BrowserPsu {
    profile: Profile,
    transport: Transport,
    approval: crate::auth::Approval,
}

impl PsuAgent for BrowserPsu {
    fn approve<'a>(
        &'a self,
        scopes: &'a [String],
        at: Option<&'a Url>,
    ) -> BoxFuture<'a, Result<Token, String>> {
        Box::pin(async move {
            crate::auth::obtain_consent(&self.profile, &self.transport, scopes, at, &self.approval)
                .await
                .map_err(|f| f.message().to_owned())
        })
    }
}

/// The consent token of `--consent token`: STET_ACCESS_TOKEN (set but empty is unset), else the
/// one `stet auth login` stored.
async fn stored_consent(transport: &Transport, profile: &str) -> Result<Token, String> {
    if let Some(access_token) = crate::profile::env_access_token() {
        return Ok(Token {
            access_token,
            token_type: "Bearer".to_owned(),
            expires_at: None,
            refresh_token: None,
            scopes: Vec::new(),
            obtained_at: stet_transport::unix(std::time::SystemTime::now()),
            authenticated_at: None,
        });
    }
    let tokens = transport.tokens().await.map_err(|e| e.to_string())?;
    tokens
        .tokens
        .get(crate::auth::CONSENT_KEY)
        .cloned()
        .ok_or_else(|| {
            format!(
                "no consent token for profile `{profile}`: run `stet auth login --profile \
                 {profile}` first, set STET_ACCESS_TOKEN, or use --consent psu or headless"
            )
        })
}

/// The profile and bank settings that go into the bundle: everything but secrets.
fn bank_profile_json(profile: &Profile, bank: &stet_client::bank::BankProfile) -> String {
    let value = serde_json::json!({
        "profile": {
            "name": profile.name,
            "api_base": profile.api_base.as_str(),
            "token_url": profile.token_url.as_ref().map(Url::as_str),
            "authorize_url": profile.authorize_url.as_ref().map(Url::as_str),
            "redirect_uri": profile.redirect_uri.as_ref().map(Url::as_str),
            "client_id": profile.client_id,
            "key_id": profile.key_id,
            "signed_headers": profile.signed_headers,
        },
        "bank": bank,
    });
    serde_json::to_string_pretty(&value).unwrap_or_default() + "\n"
}

fn run_catalogue(args: RunArgs, globals: &Globals) -> Result<u8, Failure> {
    let setup = |f: Failure| f.recode(BAD_SETUP);
    let catalogue = catalogue(args.catalogue.as_deref())?;
    let waivers = match &args.waivers {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(path).or_exit(
                BAD_SETUP,
                format!("cannot read the waivers file {}", path.display()),
            )?;
            Some(
                Waivers::from_toml(&text, &path.display().to_string(), &catalogue)
                    .map_err(|e| Failure::new(BAD_SETUP, e))?,
            )
        }
    };
    catalogue
        .select(&args.only)
        .map_err(|e| Failure::new(BAD_SETUP, e))?;
    let profile = crate::profile::load(globals).map_err(setup)?;
    let bank = crate::profile::bank(&profile).map_err(setup)?;
    // The bundle's signer is loaded before anything is sent: a key that cannot sign is a
    // configuration error, not a report lost at the end.
    let signer = match &args.bundle {
        None => None,
        Some(_) => Some(bundle_signer(&profile)?),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .or_exit(1, "cannot start the async runtime")?;
    let report = runtime.block_on(async {
        let transport = crate::profile::transport(&profile, &bank).map_err(setup)?;
        let consent = match args.consent {
            ConsentMode::Headless => Consent::Headless,
            ConsentMode::Token => Consent::Token(stored_consent(&transport, &profile.name).await),
            ConsentMode::Psu => Consent::Psu(Arc::new(BrowserPsu {
                profile: profile.clone(),
                transport: transport.clone(),
                approval: crate::auth::Approval {
                    no_browser: args.no_browser,
                    timeout: Duration::from_secs(args.timeout),
                    login_hint: None,
                },
            })),
        };
        let target = Target {
            transport,
            bank: bank.clone(),
            profile: profile.clone(),
            psu_ip: globals
                .psu_ip
                .clone()
                .or_else(|| profile.psu_ip.clone())
                .unwrap_or_else(|| "192.0.2.1".to_owned()),
            consent,
            max_wait: Duration::from_secs(args.max_wait),
            expired_token: std::env::var("STET_CONFORMANCE_EXPIRED_TOKEN")
                .ok()
                .map(Secret::new),
        };
        let options = Options {
            only: args.only.clone(),
            allow: args
                .allow
                .iter()
                .map(|a| match a {
                    AllowCost::Money => Cost::Money,
                    AllowCost::Budget => Cost::Budget,
                })
                .collect(),
            concurrency: args.concurrency,
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        stet_conformance::run(target, &catalogue, &options)
            .await
            .map_err(|e| Failure::new(BAD_SETUP, e))
    })?;
    let mut report = report;
    if let Some(waivers) = &waivers {
        waivers.apply(&mut report, time::OffsetDateTime::now_utc().date());
    }
    if let Some(dir) = &args.report_dir {
        write_reports(dir, &report)?;
    }
    if let (Some(path), Some(signer)) = (&args.bundle, &signer) {
        let qsealc = profile
            .qseal_cert
            .as_ref()
            .map(std::fs::read)
            .transpose()
            .or_exit(NOT_WRITTEN, "cannot read the QSealC certificate")?
            .unwrap_or_default();
        let bytes = stet_conformance::bundle::write(
            &stet_conformance::bundle::Contents {
                report_json: &report.to_json(),
                bank_profile_json: &bank_profile_json(&profile, &bank),
                catalogue_toml: &catalogue.text,
                catalogue_version: &catalogue.version,
                qsealc_pem: &qsealc,
                tool: &format!("stet {}", env!("CARGO_PKG_VERSION")),
            },
            signer.as_ref(),
        )
        .map_err(|e| Failure::new(NOT_WRITTEN, format!("the evidence bundle: {e}")))?;
        std::fs::write(path, bytes).or_exit(
            NOT_WRITTEN,
            format!("cannot write the evidence bundle {}", path.display()),
        )?;
    }
    let text = match args.output {
        Output::Table => stet_conformance::report::table(&report),
        Output::Json => report.to_json(),
        Output::Junit => stet_conformance::report::junit(&report),
        Output::Html => stet_conformance::report::html(&report),
    };
    print_stdout(&text)?;
    if !globals.quiet {
        if !report.suggested_waivers.is_empty() {
            eprintln!(
                "To accept a failure as a known deviation, put its stanza in a waivers file \
                 (--waivers FILE), with the reason it is accepted:\n\n{}",
                report.suggested_waivers
            );
        }
        eprintln!(
            "{}: {} cases, {} requests, {:.1} s",
            if report.summary.passed {
                "passed"
            } else {
                "failed"
            },
            report.cases.len(),
            report.summary.calls,
            report.duration_ms as f64 / 1000.0
        );
    }
    Ok(if report.summary.passed { 0 } else { FAILED })
}

fn bundle_signer(profile: &Profile) -> Result<Box<dyn stet_httpsig::Signer>, Failure> {
    if profile.qseal_cert.is_none() {
        return Err(Failure::new(
            BAD_SETUP,
            format!(
                "--bundle: profile `{}` has no qseal_cert: the bundle carries the QSealC \
                 certificate that verifies its signature; add qseal_cert to the profile",
                profile.name
            ),
        ));
    }
    let passphrase = match &profile.qseal_key_passphrase_env {
        Some(var) => Some(std::env::var(var).or_exit(
            BAD_SETUP,
            format!(
                "--bundle: the environment variable {var} (the QSealC key's passphrase) is not set"
            ),
        )?),
        None => None,
    };
    let bytes = std::fs::read(&profile.qseal_key).or_exit(
        BAD_SETUP,
        format!(
            "--bundle: cannot read the QSealC key {}",
            profile.qseal_key.display()
        ),
    )?;
    let key =
        stet_httpsig::PrivateKey::from_bytes(&bytes, passphrase.as_deref().map(str::as_bytes))
            .or_exit(
                BAD_SETUP,
                format!("--bundle: QSealC key {}", profile.qseal_key.display()),
            )?;
    key.signer(stet_httpsig::Backend::default()).or_exit(
        BAD_SETUP,
        format!("--bundle: QSealC key {}", profile.qseal_key.display()),
    )
}

fn write_reports(dir: &Path, report: &Report) -> Result<(), Failure> {
    std::fs::create_dir_all(dir).or_exit(
        NOT_WRITTEN,
        format!("cannot create the report folder {}", dir.display()),
    )?;
    for (name, text) in [
        ("report.json", report.to_json()),
        ("junit.xml", stet_conformance::report::junit(report)),
        ("report.html", stet_conformance::report::html(report)),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text).or_exit(
            NOT_WRITTEN,
            format!("cannot write the report {}", path.display()),
        )?;
    }
    Ok(())
}

fn verify_bundle(args: VerifyArgs, globals: &Globals) -> Result<u8, Failure> {
    use stet_conformance::bundle::{Authentication, BundleError, Trust};
    let bytes = std::fs::read(&args.file).or_exit(
        BAD_SETUP,
        format!("cannot read the bundle {}", args.file.display()),
    )?;
    let read = |path: &Option<PathBuf>, what: &str| -> Result<Option<Vec<u8>>, Failure> {
        path.as_ref()
            .map(|p| {
                std::fs::read(p).or_exit(BAD_SETUP, format!("cannot read {what} {}", p.display()))
            })
            .transpose()
    };
    let pinned = read(&args.cert, "the certificate")?;
    let ca = read(&args.ca, "the CA file")?;
    let trust = Trust {
        certificate: pinned.as_deref(),
        ca: ca.as_deref(),
    };
    let result = stet_conformance::bundle::verify(&bytes, trust);
    let verified = match result {
        Ok(v) => v,
        Err(BundleError::Trust(e)) => {
            return Err(Failure::new(BAD_SETUP, e));
        }
        Err(e) => {
            if args.output == VerifyOutput::Json {
                let value = serde_json::json!({
                    "file": args.file.display().to_string(),
                    "valid": false,
                    "error": e.to_string(),
                });
                print_stdout(&format!("{value:#}\n"))?;
            }
            if !globals.quiet {
                eprintln!("error: {}: {e}", args.file.display());
            }
            return Ok(FAILED);
        }
    };
    let report = serde_json::from_str::<Report>(&verified.report_json);
    let (authenticated_by, ca_subject) = match &verified.authenticated {
        Some(Authentication::Certificate) => (Some("certificate"), None),
        Some(Authentication::Ca(subject)) => (Some("ca"), Some(subject.clone())),
        None => (None, None),
    };
    let text = match args.output {
        VerifyOutput::Json => {
            let value = serde_json::json!({
                "file": args.file.display().to_string(),
                "valid": true,
                "signer": verified.signer,
                "authenticated": verified.authenticated.is_some(),
                "authenticated_by": authenticated_by,
                "ca": ca_subject,
                "catalogue_version": verified.manifest.catalogue_version,
                "created_at": verified.manifest.created_at,
                "report": report.as_ref().ok().map(|r| serde_json::json!({
                    "cases": r.cases.len(),
                    "passed": r.summary.passed,
                    "bank": r.bank.profile,
                    "started_at": r.started_at,
                })),
                "error": report.as_ref().err().map(|e| format!("report.json does not read as a report: {e}")),
            });
            format!("{value:#}\n")
        }
        VerifyOutput::Text => {
            let summary = report
                .map(|r| {
                    format!(
                        "{} cases, {} (bank {}, {})",
                        r.cases.len(),
                        if r.summary.passed { "passed" } else { "failed" },
                        r.bank.profile,
                        r.started_at
                    )
                })
                .unwrap_or_else(|e| format!("report.json does not read as a report: {e}"));
            let signed = match &verified.authenticated {
                Some(Authentication::Certificate) => format!(
                    "signed by {} (authenticated: the certificate given)",
                    verified.signer
                ),
                Some(Authentication::Ca(ca)) => format!(
                    "signed by {} (authenticated: its QSealC chains to the CA {ca})",
                    verified.signer
                ),
                None => format!(
                    "intact, signed by {} (not authenticated: pass --cert FILE or --ca FILE to \
                     check who signed)",
                    verified.signer
                ),
            };
            format!(
                "ok: {} is {signed}; catalogue {}; made {}; report: {summary}\n",
                args.file.display(),
                verified.manifest.catalogue_version,
                verified.manifest.created_at
            )
        }
    };
    print_stdout(&text)?;
    Ok(0)
}
