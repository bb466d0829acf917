//! `stet demo`: being built.

use crate::Globals;
use crate::exit::Failure;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {}

pub fn run(_args: DemoArgs, _globals: &Globals) -> Result<u8, Failure> {
    Err(Failure::new(2, "`stet demo` is not available yet"))
}
