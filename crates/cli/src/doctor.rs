//! `stet doctor`: being built.

use crate::Globals;
use crate::exit::Failure;

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {}

pub fn run(_args: DoctorArgs, _globals: &Globals) -> Result<u8, Failure> {
    Err(Failure::new(2, "`stet doctor` is not available yet"))
}
