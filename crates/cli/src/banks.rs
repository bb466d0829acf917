//! `stet banks`: being built.

use crate::exit::Failure;

#[derive(Debug, clap::Args)]
pub struct BanksArgs {}

pub fn run(_args: BanksArgs) -> Result<u8, Failure> {
    Err(Failure::new(2, "`stet banks` is not available yet"))
}
