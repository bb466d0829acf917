//! # stet-fleet
//!
//! A TPP's fleet: many PSUs' connections, synced four unattended times a day each by any
//! number of worker processes on any number of machines, over one PostgreSQL store that is
//! at once the data store, the token vault and the job queue. `stet worker`, `stet schedule`,
//! `stet psu …` and `stet fleet status` are its command line; `docs/fleet.md` its manual.
//!
//! - [`vault`]: each connection's tokens sealed with AES-256-GCM under a key the database
//!   never sees ([`StoreKey`]: `STET_STORE_KEY` or a key file), refreshed by one worker at a
//!   time under the token row's lock ([`Vault::access_token`]): a refresh token is never
//!   spent twice, whatever the number of workers.
//! - [`worker`]: claims due jobs (`FOR UPDATE SKIP LOCKED`), holds a lease it renews, runs
//!   the sync engine (`stet-sync`) for the connection, and completes the job only while the
//!   lease is still its own. A worker killed at any point loses nothing: its lease expires
//!   and another takes the job; the store's writes are idempotent.
//! - [`budget`]: the unattended budget (4 calls a day per account and endpoint) kept in the
//!   store, written before each call, shared by every worker.
//! - [`caps`]: per-bank concurrency (advisory-lock slots) and calls per second (a token
//!   bucket row), holding across all workers.
//! - [`hooks`]: consent events (`expires_soon`, `expired`, `revoked`, `needs_psu`) told to a
//!   command or an HTTP endpoint, each once.
//! - [`metrics`]: Prometheus metrics of a worker.
//!
//! The store's side (tables, claims, leases) is `stet_store`'s `fleet` part; this crate is the
//! logic. Nothing depends on it but the CLI.

#![allow(clippy::result_large_err)]

pub mod budget;
pub mod caps;
pub mod hooks;
pub mod metrics;
pub mod vault;
pub mod worker;

use std::collections::BTreeMap;
use std::path::PathBuf;

pub use budget::StoreBudget;
pub use caps::{BankCaps, CappedSource};
pub use hooks::Hooks;
pub use metrics::Metrics;
pub use vault::{STORE_KEY_ENV, StoreKey, TokenSource, Vault};
pub use worker::{ProfileSource, Worker, WorkerOptions, WorkerSummary};

/// Why a fleet operation failed. Messages say what to do and never hold a secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] stet_store::StoreError),
    /// No store key was given.
    #[error(
        "no store key: the fleet's tokens are sealed with a key kept outside the database. Set \
         {} to the base64 of 32 random bytes (e.g. `head -c 32 /dev/urandom | base64`), or name a \
         file holding it with `store_key_file` in the configuration's [fleet] table",
        vault::STORE_KEY_ENV
    )]
    NoStoreKey,
    /// The store key cannot be read.
    #[error(
        "the store key from {origin} is unusable: {reason}; it must be the base64 of exactly 32 bytes"
    )]
    BadStoreKey {
        /// Where it came from (the variable or the file).
        origin: String,
        /// What is wrong.
        reason: String,
    },
    /// The key does not open a connection's tokens.
    #[error(
        "the store key does not open the tokens of connection {connection}: was {} (or the \
         store_key_file) changed? Use the key the tokens were sealed with; nothing was changed",
        vault::STORE_KEY_ENV
    )]
    KeyMismatch {
        /// The connection.
        connection: i64,
    },
    /// A connection has no stored tokens.
    #[error("connection {connection} has no stored tokens: add them again with `stet psu add`")]
    NoTokens {
        /// The connection.
        connection: i64,
    },
    /// The bank refused the consent (refresh answered an OAuth error, or no refresh token).
    #[error("connection {connection} needs the PSU: {reason}")]
    ConsentRefused {
        /// The connection.
        connection: i64,
        /// What the bank said.
        reason: String,
    },
    /// A refresh failed for another reason (network, the bank): try again later.
    #[error("connection {connection}: refreshing its token failed: {error}")]
    Refresh {
        /// The connection.
        connection: i64,
        /// Why.
        error: stet_transport::TransportError,
    },
    /// Cryptography failed (no randomness).
    #[error("the token vault: {0}")]
    Crypto(String),
    /// The configuration is wrong.
    #[error("{0}")]
    Config(String),
    /// The metrics address cannot be served.
    #[error("cannot serve metrics on {addr}: {error}")]
    Metrics {
        /// The address.
        addr: String,
        /// Why.
        error: std::io::Error,
    },
}

/// The configuration's `[fleet]` table.
///
/// ```toml
/// [fleet]
/// store_key_file = "/etc/stet/store.key"   # else STET_STORE_KEY
/// hook_command = "/usr/local/bin/consent-hook"
/// hook_url = "https://tpp.example/hooks/stet"
///
/// [fleet.banks.my-bank]                     # per configuration profile (one bank's client)
/// max_concurrency = 4
/// max_calls_per_second = 10
/// ```
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FleetConfig {
    /// A file holding the store key's base64 (used when `STET_STORE_KEY` is not set).
    pub store_key_file: Option<PathBuf>,
    /// A command told each consent event: the event as JSON on stdin, and `STET_EVENT`,
    /// `STET_CONNECTION`, `STET_CONNECTION_NAME`, `STET_PROFILE` in its environment.
    pub hook_command: Option<String>,
    /// A URL each consent event is POSTed to as JSON.
    pub hook_url: Option<String>,
    /// Caps per configuration profile (a bank's client).
    #[serde(default)]
    pub banks: BTreeMap<String, BankCapsConfig>,
}

/// One profile's caps, across all workers.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BankCapsConfig {
    /// Syncs (so requests: a fleet sync makes one at a time) at once.
    pub max_concurrency: Option<u32>,
    /// Calls a second.
    pub max_calls_per_second: Option<f64>,
}

impl FleetConfig {
    /// Reads the `[fleet]` table (a TOML table already parsed).
    pub fn from_table(table: toml_table::Table) -> Result<FleetConfig, FleetError> {
        table
            .try_into()
            .map_err(|e| FleetError::Config(format!("the configuration's [fleet] table: {e}")))
    }
}

/// The TOML table type the configuration is read into.
pub mod toml_table {
    pub use toml::Table;
}
