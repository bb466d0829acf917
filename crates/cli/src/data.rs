//! `stet data`: being built.

use crate::Globals;
use crate::exit::Failure;

#[derive(Debug, clap::Args)]
pub struct AccountsArgs {}

pub fn accounts(_args: AccountsArgs, _globals: &Globals) -> Result<u8, Failure> {
    Err(Failure::new(2, "`stet data` is not available yet"))
}

#[derive(Debug, clap::Args)]
pub struct BalancesArgs {}

pub fn balances(_args: BalancesArgs, _globals: &Globals) -> Result<u8, Failure> {
    Err(Failure::new(2, "`stet data` is not available yet"))
}

#[derive(Debug, clap::Args)]
pub struct TransactionsArgs {}

pub fn transactions(_args: TransactionsArgs, _globals: &Globals) -> Result<u8, Failure> {
    Err(Failure::new(2, "`stet data` is not available yet"))
}

#[derive(Debug, clap::Args)]
pub struct IdentityArgs {}

pub fn identity(_args: IdentityArgs, _globals: &Globals) -> Result<u8, Failure> {
    Err(Failure::new(2, "`stet data` is not available yet"))
}

#[derive(Debug, clap::Args)]
pub struct BeneficiariesArgs {}

pub fn beneficiaries(_args: BeneficiariesArgs, _globals: &Globals) -> Result<u8, Failure> {
    Err(Failure::new(2, "`stet data` is not available yet"))
}

#[derive(Debug, clap::Subcommand)]
pub enum ConsentCommand {}

pub fn consent(_args: ConsentCommand, _globals: &Globals) -> Result<u8, Failure> {
    Err(Failure::new(2, "`stet data` is not available yet"))
}
