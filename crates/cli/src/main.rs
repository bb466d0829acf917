//! `stet`: STET PSD2 open banking from the command line.
//!
//! The binary is glue: argument parsing, reading files, printing. What it does lives in the
//! library crates (`stet-httpsig` today; the client, transport and sandbox as they come).

mod banks;
mod exit;
mod request;
mod sandbox;
mod sig;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// STET PSD2 open banking from the command line
#[derive(Debug, Parser)]
#[command(name = "stet", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Sig(command) => sig::run(command),
        Command::Request(args) => request::run(args),
        Command::Sandbox(command) => sandbox::run(command),
        Command::Banks(args) => banks::run(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => failure.report(),
    }
}
