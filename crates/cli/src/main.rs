//! `stet`: STET PSD2 open banking from the command line.
//!
//! The binary is glue: argument parsing, reading files, printing. What it does lives in the
//! library crates (`stet-httpsig` today; the client, transport and sandbox as they come).

mod auth;
mod banks;
mod bench;
mod bench_export;
mod bench_fleet;
mod completions;
mod conformance;
mod data;
mod demo;
mod doctor;
mod exit;
mod export;
mod fleet;
mod iban;
mod init;
mod output;
mod pay;
mod powens;
mod profile;
mod register;
mod request;
mod sandbox;
mod sig;
mod store;
mod sync;

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgAction, Args, Parser, Subcommand};

/// STET PSD2 open banking from the command line
#[derive(Debug, Parser)]
#[command(name = "stet", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    globals: Globals,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, Args)]
pub struct Globals {
    /// The configuration file [default: the platform's config folder, e.g. ~/.config/stet/config.toml]
    #[arg(long, global = true, env = "STET_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The profile to use from the configuration file
    #[arg(long, global = true, env = "STET_PROFILE", value_name = "NAME")]
    pub profile: Option<String>,
    /// Say more on stderr: -v info, -vv debug (each request), -vvv trace
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// The PSU's IP address, sent as PSU-IP-Address: the PSU is present, so calls do not count
    /// against the 4 unattended calls a day [default: the profile's psu_ip]
    #[arg(long, global = true, env = "STET_PSU_IP", value_name = "IP")]
    pub psu_ip: Option<String>,
    /// Say nothing on stderr but errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

/// Logs go to stderr, filtered by -v/-q (or `STET_LOG`, in `RUST_LOG` syntax); colour only on
/// a terminal and never with `NO_COLOR`. Secrets never reach a log: the crates redact them.
fn init_logging(globals: &Globals) {
    let level = match (globals.quiet, globals.verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "warn,stet_transport=debug,stet_client=debug,stet_sandbox=debug,stet=debug",
        (false, _) => "trace",
    };
    let filter = std::env::var("STET_LOG").unwrap_or_else(|_| level.to_owned());
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(color)
        .with_target(globals.verbose >= 3)
        .try_init();
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sign and verify HTTP requests as STET banks do (Cavage signatures, Digest)
    #[command(subcommand)]
    Sig(sig::SigCommand),
    /// Send one signed, authenticated STET request and print the answer (a signed curl)
    Request(request::RequestArgs),
    /// Run the embedded sandbox bank
    #[command(subcommand)]
    Sandbox(sandbox::SandboxCommand),
    /// List the bank dialect profiles and what each changes from its generic base
    Banks(banks::BanksArgs),
    /// Write a commented profile into the configuration file
    Init(init::InitArgs),
    /// Check certificates, keys, clock and connectivity, one line per check
    Doctor(doctor::DoctorArgs),
    /// Log in, see and forget the PSU's consent (OAuth2 authorization code with PKCE)
    #[command(subcommand)]
    Auth(auth::AuthCommand),
    /// List the PSU's accounts
    Accounts(data::AccountsArgs),
    /// Show an account's balances
    Balances(data::BalancesArgs),
    /// List an account's transactions (or every account's)
    Transactions(data::TransactionsArgs),
    /// Show the PSU's identity
    Identity(data::IdentityArgs),
    /// List the PSU's trusted beneficiaries
    Beneficiaries(data::BeneficiariesArgs),
    /// Tell the bank which accounts the consent covers
    #[command(subcommand)]
    Consent(data::ConsentCommand),
    /// Pay: create a payment request, have the PSU approve it, confirm it, wait for its status
    Pay(pay::PayArgs),
    /// Ask the bank whether an account can cover an amount (CBPII)
    FundsCheck(pay::FundsCheckArgs),
    /// Run the whole journey against an embedded sandbox bank: no configuration needed
    Demo(demo::DemoArgs),
    /// Print shell completions
    Completions(completions::CompletionsArgs),
    /// Keep every account, balance and transaction in the store, fetched incrementally
    Sync(sync::SyncArgs),
    /// List the stored transactions, offline (no network, no token)
    History(store::HistoryArgs),
    /// The store into accounting tools: beancount, ledger, hledger, OFX, QIF, camt.053, CSV, JSON
    Export(export::ExportArgs),
    /// The store: where it is, what it holds, its schema
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// Measure signing speed and a full sync against a sandbox bank (figures for BENCHMARKS.md)
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Powens: list the connectors (banks) of the domain, with their fields
    Connectors(powens::ConnectorsArgs),
    /// Powens: connect the PSU's bank (credentials encrypted end to end), or act on a connection
    Connect(powens::ConnectArgs),
    /// Powens: list the connections, their state and what to do; delete one
    Connections(powens::ConnectionsArgs),
    /// Powens: webhooks
    #[command(subcommand)]
    Powens(powens::PowensCommand),
    /// Test a bank's STET API against the standard: run the catalogue, report, verify evidence
    #[command(subcommand)]
    Conformance(conformance::ConformanceCommand),
    /// Register at the bank as an OAuth client (STET dynamic registration), show, update,
    /// delete, rotate the QSealC
    #[command(subcommand)]
    Register(register::RegisterCommand),
    /// A fleet of PSUs (PostgreSQL): add, list, show, remove their connections, sync one now
    #[command(subcommand)]
    Psu(fleet::PsuCommand),
    /// Plan the fleet's syncs: 4 unattended a day per connection, spread; --now: due at once
    Schedule(fleet::ScheduleArgs),
    /// Run the fleet's due syncs: claim jobs from the PostgreSQL store, sync, repeat
    Worker(fleet::WorkerArgs),
    /// The fleet's queue at a glance
    #[command(subcommand)]
    Fleet(fleet::FleetCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.globals);
    let result = match cli.command {
        Command::Sig(command) => sig::run(command),
        Command::Request(args) => request::run(args, &cli.globals),
        Command::Sandbox(command) => sandbox::run(command),
        Command::Banks(args) => banks::run(args),
        Command::Init(args) => init::run(args, &cli.globals),
        Command::Doctor(args) => doctor::run(args, &cli.globals),
        Command::Auth(command) => auth::run(command, &cli.globals),
        Command::Accounts(args) => data::accounts(args, &cli.globals),
        Command::Balances(args) => data::balances(args, &cli.globals),
        Command::Transactions(args) => data::transactions(args, &cli.globals),
        Command::Identity(args) => data::identity(args, &cli.globals),
        Command::Beneficiaries(args) => data::beneficiaries(args, &cli.globals),
        Command::Consent(command) => data::consent(command, &cli.globals),
        Command::Pay(args) => pay::pay(args, &cli.globals),
        Command::FundsCheck(args) => pay::funds_check(args, &cli.globals),
        Command::Demo(args) => demo::run(args, &cli.globals),
        Command::Completions(args) => completions::run(args),
        Command::Bench(command) => bench::run(command, &cli.globals),
        Command::Connectors(args) => powens::connectors(args, &cli.globals),
        Command::Connect(args) => powens::connect_command(args, &cli.globals),
        Command::Connections(args) => powens::connections(args, &cli.globals),
        Command::Powens(command) => powens::run(command),
        Command::Conformance(command) => conformance::run(command, &cli.globals),
        Command::Sync(args) => sync::run(args, &cli.globals),
        Command::History(args) => store::history(args, &cli.globals),
        Command::Store(command) => store::run(command, &cli.globals),
        Command::Register(command) => register::run(command, &cli.globals),
        Command::Export(args) => export::run(args, &cli.globals),
        Command::Psu(command) => fleet::psu(command, &cli.globals),
        Command::Schedule(args) => fleet::schedule(args, &cli.globals),
        Command::Worker(args) => fleet::worker(args, &cli.globals),
        Command::Fleet(command) => fleet::fleet(command, &cli.globals),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => failure.report(),
    }
}

#[cfg(test)]
mod every_command {
    //! Every command that prints a result takes `--output` and has its shape in
    //! docs/output.md; the few whose output is already data are listed there as such. Walking
    //! clap's own tree means a command added later cannot slip past.
    use clap::CommandFactory as _;

    /// Commands whose output is already data (docs/output.md, "Commands whose output is
    /// already data"), or a narrative for people: no `--output`.
    const DATA: &[&str] = &[
        "sig sign",
        "request",
        "sandbox serve",
        "export",
        "completions",
        "demo",
    ];

    /// Every command that runs: the leaves, and the commands whose subcommand is optional.
    fn runnable(cmd: &clap::Command, path: &str, out: &mut Vec<(String, bool)>) {
        let has_output = cmd.get_arguments().any(|a| a.get_id() == "output");
        let subcommands: Vec<_> = cmd.get_subcommands().collect();
        if !path.is_empty() && (subcommands.is_empty() || !cmd.is_subcommand_required_set()) {
            out.push((path.to_owned(), has_output));
        }
        for sub in subcommands {
            let name = sub.get_name();
            if name == "help" {
                continue;
            }
            let path = format!("{path} {name}");
            runnable(sub, path.trim_start(), out);
        }
    }

    /// The commands docs/output.md names in a heading (`stet a b|c` names `a b` and `a c`),
    /// and those it lists as already data.
    fn documented(docs: &str) -> (Vec<String>, Vec<String>) {
        let spans = |line: &str| -> Vec<String> {
            let mut names = Vec::new();
            for span in line.split('`').skip(1).step_by(2) {
                let Some(command) = span.strip_prefix("stet ") else {
                    continue;
                };
                let words: Vec<&str> = command
                    .split_whitespace()
                    .take_while(|w| !w.starts_with('-') && *w == w.to_lowercase())
                    .collect();
                let Some((last, first)) = words.split_last() else {
                    continue;
                };
                for alternative in last.split('|') {
                    let mut name = first.join(" ");
                    if !name.is_empty() {
                        name.push(' ');
                    }
                    name.push_str(alternative);
                    names.push(name);
                }
            }
            names
        };
        let (mut headings, mut data) = (Vec::new(), Vec::new());
        let mut in_data = false;
        for line in docs.lines() {
            if line.starts_with("## ") {
                in_data = line.contains("already data");
            }
            if line.starts_with("### ") {
                headings.extend(spans(line));
            } else if in_data && line.starts_with("- ") {
                data.extend(spans(line));
            }
        }
        (headings, data)
    }

    #[test]
    fn every_command_that_prints_a_result_takes_output_and_is_documented() {
        let docs = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/output.md"),
        )
        .expect("docs/output.md");
        let (headings, data) = documented(&docs);
        let mut commands = Vec::new();
        runnable(&super::Cli::command(), "", &mut commands);
        assert!(
            commands.len() > 40,
            "the walk found the commands: {commands:?}"
        );
        let mut wrong = Vec::new();
        for (command, has_output) in &commands {
            if DATA.contains(&command.as_str()) {
                if !data.contains(command) {
                    wrong.push(format!(
                        "`stet {command}`: not listed under \"already data\" in docs/output.md"
                    ));
                }
            } else if !has_output {
                wrong.push(format!("`stet {command}`: no --output"));
            } else if !headings.contains(command) {
                wrong.push(format!(
                    "`stet {command}`: no `### \\`stet {command}\\`` heading in docs/output.md"
                ));
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }

    #[test]
    fn headings_name_commands_as_written() {
        let (headings, data) = documented(
            "## Results\n### `stet psu list`, `stet psu show`\n### `stet register create|show`\n\
             ### `stet accounts` on a Powens profile\n## Commands whose output is already data\n\
             - `stet sig sign` prints\n- `stet bench sign --json` and `stet request`\n",
        );
        assert_eq!(
            headings,
            [
                "psu list",
                "psu show",
                "register create",
                "register show",
                "accounts"
            ]
        );
        assert_eq!(data, ["sig sign", "bench sign", "request"]);
    }
}
