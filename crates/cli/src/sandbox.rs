//! `stet sandbox`: being built.

use crate::exit::Failure;

#[derive(Debug, clap::Subcommand)]
pub enum SandboxCommand {}

pub fn run(_args: SandboxCommand) -> Result<u8, Failure> {
    Err(Failure::new(2, "`stet sandbox` is not available yet"))
}
