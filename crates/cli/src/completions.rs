//! `stet completions`: being built.

use crate::exit::Failure;

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {}

pub fn run(_args: CompletionsArgs) -> Result<u8, Failure> {
    Err(Failure::new(2, "`stet completions` is not available yet"))
}
