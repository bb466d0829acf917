//! `stet request`: being built.

use crate::exit::Failure;

#[derive(Debug, clap::Args)]
pub struct RequestArgs {}

pub fn run(_args: RequestArgs) -> Result<u8, Failure> {
    Err(Failure::new(2, "`stet request` is not available yet"))
}
