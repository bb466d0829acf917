//! `stet init`: being built.

use crate::Globals;
use crate::exit::Failure;

#[derive(Debug, clap::Args)]
pub struct InitArgs {}

pub fn run(_args: InitArgs, _globals: &Globals) -> Result<u8, Failure> {
    Err(Failure::new(2, "`stet init` is not available yet"))
}
