//! `stet sandbox`: run the embedded sandbox bank, or make its test PKI.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use stet_sandbox::{Dialect, Faults, LinkStyle, Sandbox, SandboxConfig};

use crate::exit::{self, Failure, OrExit as _};

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Run the sandbox bank: STET over mTLS, OAuth2, strict signature checks
    ///
    /// Prints one JSON line on stdout (api_base, authorize_url, token_url, ca, client_id,
    /// client_secret, key_id, redirect_uri, psu and the TPP's certificate and key files), then
    /// serves until interrupted (Ctrl-C).
    #[command(
        after_help = "Example:\n  stet sandbox serve --port 8443 --certs certs.example --accounts 3 --transactions 200 \\\n      --faults 429:every=7:retry-after=1,drop:every=40"
    )]
    // Boxed: its many options would make every other variant as large.
    Serve(Box<ServeArgs>),
    /// Write a fresh test PKI (CA, bank server certificate, TPP QWAC and QSealC) to a folder
    #[command(after_help = "Example:\n  stet sandbox certs --out certs.example")]
    Certs(CertsArgs),
}

/// `--qwac-key`: the ephemeral PKI's QWAC key type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QwacKeyArg {
    /// ECDSA P-256
    #[value(name = "ecdsa-p256")]
    EcdsaP256,
    /// RSA-2048
    #[value(name = "rsa-2048")]
    Rsa2048,
}

/// `--tls-version`: the one TLS version the sandbox accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsVersionArg {
    /// TLS 1.2 only
    #[value(name = "1.2")]
    Tls12,
    /// TLS 1.3 only
    #[value(name = "1.3")]
    Tls13,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The port to listen on (0: any free port)
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// A PKI folder (ca.pem, bank.pem/.key, tpp-qwac.pem/.key, tpp-qseal.pem/.key) [default: an ephemeral one]
    #[arg(long, value_name = "DIR")]
    certs: Option<PathBuf>,
    /// Number of accounts of each PSU
    #[arg(long, default_value_t = 3)]
    accounts: usize,
    /// Number of PSUs, psu-1 to psu-N, each with its own accounts and transactions; the
    /// client picks one with login_hint=psu-K at /authorize (none: psu-1). Their tokens are
    /// revoked with POST /sandbox/revoke {"psu": "psu-K"}; GET /sandbox/stats counts refresh
    /// grants, unattended calls and concurrency
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=99_999))]
    psus: u32,
    /// Transactions per account
    #[arg(long, default_value_t = 60)]
    transactions: usize,
    /// The key type of the ephemeral PKI's QWAC: ecdsa-p256, or rsa-2048 (the client then
    /// signs the handshake with RSA-PSS in TLS 1.3, PKCS#1 v1.5 in TLS 1.2)
    #[arg(long, value_name = "TYPE", value_enum, default_value_t = QwacKeyArg::EcdsaP256)]
    qwac_key: QwacKeyArg,
    /// Accept this TLS version only, 1.2 or 1.3 [default: both]; GET /sandbox/stats counts
    /// client handshake signatures by version and scheme
    #[arg(long, value_name = "VERSION", value_enum)]
    tls_version: Option<TlsVersionArg>,
    /// Items per page of a list
    #[arg(long, default_value_t = 20)]
    page_size: usize,
    /// Seed of the synthetic data
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The date the synthetic data ends at, YYYY-MM-DD [default: today]
    #[arg(long, value_name = "DATE")]
    today: Option<String>,
    /// STET dialect: 1.4 or 1.5
    #[arg(long, default_value = "1.5", value_parser = ["1.4", "1.5"])]
    dialect: String,
    /// How _links are written: url, path or relative
    #[arg(long, default_value = "url", value_parser = ["url", "path", "relative"])]
    link_style: String,
    /// Faults to inject, e.g. 429:every=7:retry-after=1,503:every=50:burst=3,drop:every=40
    #[arg(long, value_name = "SPEC", default_value = "")]
    faults: String,
    /// Show a consent page at /authorize instead of approving at once
    #[arg(long)]
    interactive: bool,
    /// Access token lifetime, in seconds (refresh tokens do not expire; each is good once)
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    token_lifetime: u64,
    /// A keyId accepted for the TPP's QSealC besides the key_id URL printed
    #[arg(long, value_name = "ID")]
    key_id: Option<String>,
    /// Accept PSU-* headers the signature does not cover, as a bank whose rules do not ask
    /// for them to be signed (by default every PSU-* header sent must be signed)
    #[arg(long)]
    unsigned_psu_headers: bool,
    /// The status of a call without PSU-IP-Address once the day's 4 are spent: 429, or 403
    /// as some banks answer
    #[arg(long, value_name = "STATUS", default_value_t = 429, value_parser = limit_status)]
    unattended_limit_status: u16,
    /// Serve the Powens mock too, at /powens/2.0 (its URL, client id and secret are in the
    /// JSON line, under "powens")
    #[arg(long)]
    powens: bool,
    /// Powens mock: a new domain key after every N accepted credential posts (0: never)
    #[arg(long, value_name = "N", default_value_t = 0, requires = "powens")]
    powens_rotate_key_every: u32,
    /// Powens mock: serve a key clients must refuse at /publickey: ec (not RSA) or small (1024 bits)
    #[arg(long, value_name = "FAULT", requires = "powens", value_parser = ["ec", "small"])]
    powens_key_fault: Option<String>,
    /// Powens mock: the PSU's password at the test connector, instead of 1234 (for tests that
    /// need a value distinctive enough to search logs for)
    #[arg(long, value_name = "PASSWORD", requires = "powens")]
    powens_password: Option<String>,
    /// Powens mock: the one-time code of the additionalInformationNeeded scenario, instead of
    /// abcd
    #[arg(long, value_name = "CODE", requires = "powens")]
    powens_code: Option<String>,
}

#[derive(Debug, Args)]
pub struct CertsArgs {
    /// The folder to write to (created if needed; the seven files are overwritten)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[command(flatten)]
    output: crate::output::OutputArgs,
}

/// `--unattended-limit-status`: 429 or 403.
fn limit_status(text: &str) -> Result<u16, String> {
    match text {
        "429" => Ok(429),
        "403" => Ok(403),
        other => Err(format!("`{other}` is not 429 or 403")),
    }
}

pub fn run(command: SandboxCommand) -> Result<u8, Failure> {
    match command {
        SandboxCommand::Serve(args) => serve(*args),
        SandboxCommand::Certs(args) => {
            stet_sandbox::pki::generate(&args.out).or_exit(exit::IO, "cannot write the PKI")?;
            let files: Vec<String> = stet_sandbox::pki::FILES
                .iter()
                .map(|f| args.out.join(f).display().to_string())
                .collect();
            crate::output::Report::new(
                serde_json::json!({"out": args.out.display().to_string(), "files": files}),
                format!(
                    "wrote {} to {}\n",
                    stet_sandbox::pki::FILES.join(", "),
                    args.out.display()
                ),
            )
            .rows(&["file"], files.iter().map(|f| vec![f.clone()]).collect())
            .print(args.output.report())?;
            Ok(0)
        }
    }
}

fn serve(args: ServeArgs) -> Result<u8, Failure> {
    let faults: Faults = args.faults.parse().or_exit(2, "--faults")?;
    let today = match &args.today {
        None => None,
        Some(s) => {
            let format = time::macros::format_description!("[year]-[month]-[day]");
            Some(time::Date::parse(s, &format).or_exit(2, format!("--today `{s}`"))?)
        }
    };
    let config = SandboxConfig {
        port: args.port,
        certs: args.certs,
        accounts: args.accounts,
        transactions: args.transactions,
        page_size: args.page_size,
        seed: args.seed,
        today,
        dialect: if args.dialect == "1.4" {
            Dialect::V1_4
        } else {
            Dialect::V1_5
        },
        link_style: args
            .link_style
            .parse::<LinkStyle>()
            .or_exit(2, "--link-style")?,
        faults,
        interactive: args.interactive,
        token_lifetime: Duration::from_secs(args.token_lifetime.max(1)),
        key_id: args.key_id,
        unsigned_psu_headers: args.unsigned_psu_headers,
        unattended_limit_status: args.unattended_limit_status,
        psus: args.psus as usize,
        qwac_key: match args.qwac_key {
            QwacKeyArg::Rsa2048 => stet_sandbox::QwacKey::Rsa2048,
            QwacKeyArg::EcdsaP256 => stet_sandbox::QwacKey::EcdsaP256,
        },
        tls_versions: match args.tls_version {
            Some(TlsVersionArg::Tls12) => stet_sandbox::TlsVersions::Tls12,
            Some(TlsVersionArg::Tls13) => stet_sandbox::TlsVersions::Tls13,
            None => stet_sandbox::TlsVersions::Both,
        },
        powens: match args.powens {
            false => None,
            true => Some(stet_sandbox::PowensOptions {
                rotate_key_every: args.powens_rotate_key_every,
                key_fault: match &args.powens_key_fault {
                    Some(f) => Some(f.parse().or_exit(2, "--powens-key-fault")?),
                    None => None,
                },
                password: args.powens_password,
                code: args.powens_code,
            }),
        },
        ..SandboxConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .or_exit(exit::IO, "cannot start the async runtime")?;
    runtime.block_on(async {
        let bank = Sandbox::start(config)
            .await
            .or_exit(exit::CONFIG, "cannot start the sandbox")?;
        let line = serde_json::to_string(bank.info()).or_exit(exit::IO, "cannot write JSON")?;
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{line}")
            .and_then(|()| stdout.flush())
            .or_exit(exit::IO, "cannot write to stdout")?;
        drop(stdout);
        eprintln!(
            "sandbox bank listening on {} (Ctrl-C to stop)",
            bank.info().api_base
        );
        let _ = tokio::signal::ctrl_c().await;
        bank.shutdown().await;
        Ok(0)
    })
}
