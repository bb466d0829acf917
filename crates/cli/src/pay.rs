//! `stet pay`: being built.

use crate::Globals;
use crate::exit::Failure;

#[derive(Debug, clap::Args)]
pub struct PayArgs {}

pub fn pay(_args: PayArgs, _globals: &Globals) -> Result<u8, Failure> {
    Err(Failure::new(2, "`stet pay` is not available yet"))
}

#[derive(Debug, clap::Args)]
pub struct FundsCheckArgs {}

pub fn funds_check(_args: FundsCheckArgs, _globals: &Globals) -> Result<u8, Failure> {
    Err(Failure::new(2, "`stet pay` is not available yet"))
}
