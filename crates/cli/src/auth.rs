//! `stet auth`: being built.

use crate::Globals;
use crate::exit::Failure;

#[derive(Debug, clap::Subcommand)]
pub enum AuthCommand {}

pub fn run(_args: AuthCommand, _globals: &Globals) -> Result<u8, Failure> {
    Err(Failure::new(2, "`stet auth` is not available yet"))
}
