//! # stet-sync
//!
//! The sync engine: it pulls accounts, balances and transactions from a [`Source`] into a
//! [`stet_store::Store`], a little at a time. `stet sync` runs it; the fleet's workers will.
//!
//! ```no_run
//! # async fn run(client: stet_client::StetClient, store: stet_store::Store) -> Result<(), stet_sync::SyncError> {
//! use std::sync::Arc;
//! use stet_sync::{StetSource, SyncOptions, sync};
//! let source = Arc::new(StetSource::new(client));
//! let report = sync(&store, source, &SyncOptions::new("my-bank"), |line| eprintln!("{line}")).await?;
//! println!("{} calls", report.calls);
//! # Ok(()) }
//! ```
//!
//! ## What one sync does
//!
//! 1. Records a sync run in the store.
//! 2. Lists the accounts (one call).
//! 3. For each account (at most [`SyncOptions::concurrency`] at a time), works out the
//!    window: the first sync of an account asks for everything the consent allows (the
//!    bank's default window, or from `--from`); a later one asks from the newest booked date
//!    minus the bank's overlap ([`SyncPolicy::overlap_days`], 7 by default), or from the oldest
//!    transaction still pending if that is earlier. So an unchanged account costs one page of
//!    transactions (more only when the overlap holds more than a page) and one of balances.
//! 4. Fetches the balances and every page of the window, then hands the whole account to the
//!    store, which writes it in one database transaction ([`stet_store::Store::apply`]).
//!    A sync killed at any point leaves each account as before or wholly updated; the next
//!    sync completes it.
//! 5. Records the run's end: calls made, outcome, error.
//!
//! Without the PSU present, each account needs unattended calls (4 a day per endpoint, PSD2
//! RTS art. 36(5)). An account whose budget is spent is skipped with the time it resets
//! ([`AccountOutcome::Skipped`]); the others go on. Any other failure of the source ends the
//! sync ([`SyncError::Source`]); the accounts written before it stay written.
//!
//! ## Sources
//!
//! [`Source`] is what the engine pulls through: accounts, balances, and transactions for a
//! window, page by page, and how many calls that cost. [`StetSource`] implements it over
//! `stet-client`; [`PowensSource`] over the Powens aggregator (`stet-powens`), with the
//! stable-id namespace of its own (`p1-…`). A source that cannot reach part of what it holds
//! (a Powens connection that needs the PSU, an account not enabled) says so through
//! [`Source::unsynced`]: the sync goes on with the rest and reports each part
//! ([`SyncReport::unsynced`]), which keeps what was stored.

#![allow(clippy::result_large_err)]

mod engine;
mod powens;
mod stet;

pub use engine::{AccountLine, AccountOutcome, SyncError, SyncOptions, SyncReport, sync};
pub use powens::PowensSource;
pub use stet::StetSource;

use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use stet_store::{IdPolicy, ObservedAccount, ObservedBalance, ObservedTransaction};

/// How a source's bank wants to be synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncPolicy {
    /// Ids and claims.
    pub ids: IdPolicy,
    /// Days asked again before the newest booked transaction.
    pub overlap_days: u32,
    /// How far back the bank lists transactions without an extended-history consent; a
    /// later sync never asks further back on its own (it says what it could not fetch).
    pub history_days: u32,
}

/// Why a source could not give what was asked.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The unattended budget for this account is spent until `resets_at`.
    #[error("{message}")]
    BudgetSpent {
        /// What the source said.
        message: String,
        /// When calls are allowed again.
        resets_at: Option<time::OffsetDateTime>,
    },
    /// Anything else: the source's own error, to be downcast for details (a STET source's
    /// is a `stet_client::ClientError`).
    #[error(transparent)]
    Failed(Box<dyn std::error::Error + Send + Sync>),
}

/// Who must act before part of a source can be synced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnsyncedKind {
    /// The PSU must act (a strong authentication, a new password, new terms).
    NeedsPsu,
    /// The bank limits calls: later.
    RetryLater,
    /// The bank or the aggregator is failing.
    Unavailable,
    /// The PSU has not enabled the account (their consent): not an error.
    NotEnabled,
}

/// A part of a source a sync left out, and why: a Powens connection that needs the PSU, an
/// account the PSU has not enabled. What was stored for it stays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsynced {
    /// What it is, for people: `connection 7 (Connecteur de test)`, `account 1003 (Livret A)`.
    pub what: String,
    /// Why, and what to run.
    pub reason: String,
    /// Who must act.
    pub kind: UnsyncedKind,
}

impl std::fmt::Display for Unsynced {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: not synced: {} {}",
            self.what,
            self.what_word(),
            self.reason
        )
    }
}

impl Unsynced {
    fn what_word(&self) -> &'static str {
        if self.what.starts_with("account") {
            "the account"
        } else {
            "the connection"
        }
    }
}

/// Where a sync pulls from: a bank through its API, or an aggregator.
///
/// Implementations count the calls they make ([`Source::calls`]) and say how many unattended
/// calls an account has left ([`Source::budget_left`]). Methods return boxed futures and
/// streams so a `dyn Source` can be chosen at run time.
pub trait Source: Send + Sync {
    /// A short name recorded with each sync run (`stet`).
    fn name(&self) -> &str;
    /// The bank's name (its profile), part of the key of accounts without an IBAN.
    fn bank(&self) -> &str;
    /// How to identify, reconcile and window this bank's transactions.
    fn policy(&self) -> SyncPolicy;
    /// The PSU's accounts.
    fn accounts(&self) -> BoxFuture<'_, Result<Vec<ObservedAccount>, SourceError>>;
    /// An account's balances now.
    fn balances<'a>(
        &'a self,
        account: &'a ObservedAccount,
    ) -> BoxFuture<'a, Result<Vec<ObservedBalance>, SourceError>>;
    /// An account's transactions from `from` (inclusive; `None`: the bank's default window),
    /// a page at a time in the bank's order.
    fn transactions<'a>(
        &'a self,
        account: &'a ObservedAccount,
        from: Option<time::Date>,
    ) -> BoxStream<'a, Result<Vec<ObservedTransaction>, SourceError>>;
    /// An account's transactions the source changed after `since`, whatever their date, a
    /// page at a time; `None` when the source cannot list them (a STET bank cannot), which
    /// is the default.
    ///
    /// The window a later sync asks for starts near the newest booked transaction, so a
    /// transaction older than that which the bank edits or deletes is not in it: this
    /// listing is how the store still hears of it. Each transaction must carry its entry
    /// reference (the sync drops those the window already listed by it), so only a source
    /// whose entry references are stable implements it.
    fn changed_since<'a>(
        &'a self,
        account: &'a ObservedAccount,
        since: time::OffsetDateTime,
    ) -> Option<BoxStream<'a, Result<Vec<ObservedTransaction>, SourceError>>> {
        let _ = (account, since);
        None
    }
    /// Calls made so far.
    fn calls(&self) -> u64;
    /// What the last [`Source::accounts`] left out, and why (none by default).
    fn unsynced(&self) -> Vec<Unsynced> {
        Vec::new()
    }
    /// The unattended calls this account has left for its transactions and balances (the
    /// smaller); `None` when the PSU is present and nothing is counted. An `Err` says the
    /// budget is spent and when it resets.
    fn budget_left<'a>(
        &'a self,
        account: &'a ObservedAccount,
    ) -> BoxFuture<'a, Result<Option<u32>, SourceError>>;
}
