//! # stet-store
//!
//! Where stet keeps what it synced: every account and transaction, balance snapshots and the
//! record of each sync, in a SQLite file (the default) or a PostgreSQL database. Persistence
//! only: no network, no STET. The sync engine (`stet-sync`) fills it; `stet history` and
//! exports read it.
//!
//! ## Opening a store
//!
//! ```no_run
//! # async fn run() -> Result<(), stet_store::StoreError> {
//! use stet_store::{Location, OpenOptions, Store};
//! let store = Store::open(&Location::parse("sqlite:/tmp/stet.db")?, &OpenOptions::default()).await?;
//! let info = store.info().await?;
//! println!("{} holds {} booked transactions", info.location, info.booked);
//! # Ok(()) }
//! ```
//!
//! [`Location`] reads `sqlite:PATH` and `postgres://USER@HOST/DATABASE` (any libpq-style
//! URL sqlx understands, `?host=/socket/dir` included). [`Store::open`] creates the SQLite
//! file (and its folder, 0700) if needed and brings the schema up to date: migrations are
//! embedded, one folder per database (`migrations/sqlite`, `migrations/postgres`), applied in
//! order and recorded in `_sqlx_migrations`. A store whose schema is newer than this build
//! knows is refused ([`StoreError::NewerSchema`]) rather than misread. Migrations are
//! append-only: a later version adds files and never edits one.
//!
//! SQLite runs in WAL mode with a busy timeout ([`OpenOptions::busy_timeout`]): readers
//! never wait, writers take turns. PostgreSQL is for many PSUs and many workers.
//!
//! ## What is kept
//!
//! - **Accounts**, keyed by profile and IBAN (by bank and resource id only when the bank
//!   gives no IBAN). The bank's resource ids are *links* (`account_links`), never keys: a
//!   re-consent that renames every account adds no account and no transaction.
//! - **Transactions**, one row per transaction, keyed by a [stable id](stable_id) that is
//!   made once, stored, and never recomputed. A row keeps the status (`BOOK`, `PDNG`, `EXPD`,
//!   `DELD`),
//!   booking, value and transaction dates, the signed amount as an exact decimal, currency,
//!   credit/debit, label, counterparty, the bank's entry reference, first and last seen, and
//!   the bank's JSON exactly as received with its SHA-256.
//! - **Claims**: a booked transaction claims at most one pending row (same amount and
//!   currency, booked on or after the pending date within [`IdPolicy::claim_window_days`],
//!   then the closest counterparty and label, then the closest date). The pending row becomes
//!   the booked one (it keeps its stable id and shows the booked version) and the claim is
//!   recorded, so the booked transaction's own id leads to it on every later sync. A pending
//!   row the bank stops listing and nobody claims within the window is marked `EXPD`, never
//!   deleted. A stored transaction the source says the bank deleted ([`Status::Deleted`]) is
//!   marked `DELD`, never removed, unless a booked transaction claimed its row.
//! - **Balances**, a snapshot per sync; **sync runs** (start, end, profile, calls, outcome,
//!   error) and, per account and run, what changed.
//!
//! ## Writing: one account, one transaction
//!
//! [`Store::apply`] writes everything a sync learned about one account ([`AccountBatch`]) in
//! one database transaction: a sync killed at any point leaves each account either as before
//! or wholly updated, and the next sync completes it. Syncs at the same time take turns per
//! account (SQLite's write lock, PostgreSQL's row lock on the account), and each decides from
//! what is committed, so two syncs of the same data give the same rows as one.
//!
//! ## Reading: the `stet_transactions` view
//!
//! Users query the store with their own tools through a view with the same columns in both
//! databases (documented in `docs/store.md`):
//!
//! | column | meaning |
//! |---|---|
//! | `profile`, `iban`, `account_name` | the account |
//! | `stable_id` | `s1-…`, 35 characters of `[a-z0-9-]`; or a source's own, as given (Powens: `p1-…`, [`Namespace::Powens1`]) |
//! | `status` | `BOOK`, `PDNG`, `EXPD` or `DELD` |
//! | `booking_date`, `value_date`, `transaction_date` | dates (ISO text in SQLite, `date` in PostgreSQL) |
//! | `amount`, `currency`, `credit_debit` | signed exact amount (text in SQLite, `numeric` in PostgreSQL), ISO 4217, `CRDT`/`DBIT` |
//! | `label`, `counterparty`, `entry_reference` | as the bank wrote them |
//! | `first_seen`, `last_seen` | instants (RFC 3339 text in SQLite, `timestamptz` in PostgreSQL) |
//! | `raw_json` | the bank's JSON of the version shown (text in SQLite, `json` in PostgreSQL) |
//!
//! [`Store::transactions`] streams the same rows, filtered, one at a time.
//!
//! ## Exports and the export ledger
//!
//! Exports read account by account: [`Store::export_accounts`] (with every balance
//! snapshot), [`Store::account_amounts`] (what opening balances are summed from) and
//! [`Store::export_rows`] (the rows to write, by date, streamed). `stet export --since-last
//! NAME` keeps an export ledger: [`Store::begin_export_record`] records each row written
//! under a name with its [`fingerprint`], in one database transaction committed only once
//! the output is in place; each later row comes with the version recorded, so an exporter
//! writes only what is new and reports what the bank changed since.

#![allow(clippy::result_large_err)]

mod backend;
mod error;
mod export;
mod fleet;
mod id;
mod location;
mod model;
mod plan;

use std::time::Duration;

use futures_util::stream::BoxStream;
use time::OffsetDateTime;

pub use error::StoreError;
pub use export::{
    AmountRow, BalanceSnapshot, ExportAccount, ExportRecord, ExportRow, ExportedVersion, RowFilter,
    fingerprint,
};
pub use fleet::{
    BankSlot, ClaimedJob, Connection, FleetStatus, HookDelivery, HookEvent, JobCompletion,
    LATE_AFTER, NewConnection, SLOT_SECONDS, TokenLock, next_slot, schedule_offset, state,
};
pub use id::{IdRecipe, Namespace, normalise, stable_id};
pub use location::{Location, redact};
pub use model::{
    AccountBatch, AccountState, AccountSummary, ApplyReport, CreditDebit, HistoryFilter, IdPolicy,
    ObservedAccount, ObservedBalance, ObservedTransaction, RunOutcome, Status, StoreInfo,
    TransactionRow,
};

/// Rows a SQLite connection reads ahead of the task that consumes them.
const ROW_CHANNEL: usize = 2048;

/// How to open a store.
#[derive(Debug, Clone)]
pub struct OpenOptions {
    /// How long a write waits for another process's (SQLite) or a connection (PostgreSQL)
    /// before [`StoreError::Locked`] (default 30 s).
    pub busy_timeout: Duration,
    /// Bring the schema up to date on open (default `true`).
    pub migrate: bool,
    /// Connections in the pool (default 4).
    pub max_connections: u32,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            busy_timeout: Duration::from_secs(30),
            migrate: true,
            max_connections: 4,
        }
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Clone)]
enum Pool {
    Sqlite(backend::sqlite::Pool),
    Postgres(backend::postgres::Pool),
}

/// An open store: a pool of connections to one SQLite file or PostgreSQL database. Cheap to
/// clone.
#[derive(Clone)]
pub struct Store {
    pool: Pool,
    location: String,
    busy_timeout: Duration,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

/// A sync run's id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunId(String);

impl RunId {
    /// The id as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The newest schema version this build knows.
pub fn known_schema_version() -> i64 {
    SQLITE_MIGRATIONS
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0)
        .max(
            POSTGRES_MIGRATIONS
                .iter()
                .map(|m| m.version)
                .max()
                .unwrap_or(0),
        )
}

/// A database error as the [`StoreError`] that says what to do.
pub(crate) fn classify(location: &str, what: &str, e: sqlx::Error) -> StoreError {
    let location = location.to_owned();
    if let sqlx::Error::Database(db) = &e {
        let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
        // SQLite's primary result code is the low byte of the extended one.
        let primary = code.parse::<i32>().map(|c| c & 0xff).ok();
        match primary {
            Some(5 | 6) => {
                return StoreError::Locked {
                    location,
                    seconds: 0,
                };
            }
            Some(8) => return StoreError::ReadOnly { location },
            Some(14) => {
                return StoreError::Unreachable {
                    location,
                    message: format!(
                        "{}: check that the folder exists and is writable",
                        db.message()
                    ),
                };
            }
            _ => {}
        }
        // PostgreSQL: a lock not obtained within lock_timeout.
        if code == "55P03" {
            return StoreError::Locked {
                location,
                seconds: 0,
            };
        }
        // PostgreSQL: read-only transaction, or insufficient privilege.
        if code == "25006" || code == "42501" {
            return StoreError::ReadOnly { location };
        }
        // PostgreSQL: the server is there, but not the database, or not for this login.
        let refused = match code.as_str() {
            "3D000" => Some(
                "create it (`createdb NAME`, or CREATE DATABASE as a user allowed to), or fix                  the database name in the URL",
            ),
            "28000" | "28P01" => Some(
                "the server refused the login: check the user (and password, or PGPASSWORD)                  in the URL and the server's pg_hba.conf",
            ),
            _ => None,
        };
        if let Some(todo) = refused {
            return StoreError::Unreachable {
                location,
                message: format!("{}: {todo}", db.message()),
            };
        }
    }
    match e {
        sqlx::Error::Io(io) => StoreError::Unreachable {
            location,
            message: format!("{io}: check that the database server runs and the URL is right"),
        },
        sqlx::Error::PoolTimedOut => StoreError::Locked {
            location,
            seconds: 0,
        },
        sqlx::Error::Tls(t) => StoreError::Unreachable {
            location,
            message: format!("TLS: {t}"),
        },
        other => StoreError::Query {
            location,
            what: what.to_owned(),
            message: other.to_string(),
        },
    }
}

impl Store {
    /// Opens the store at `location`, creating a SQLite file (and its folder) when needed,
    /// and migrating unless `options.migrate` is off.
    pub async fn open(location: &Location, options: &OpenOptions) -> Result<Store, StoreError> {
        let shown = location.display();
        let pool = match location {
            Location::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
                    && !dir.exists()
                {
                    let mut builder = std::fs::DirBuilder::new();
                    builder.recursive(true);
                    #[cfg(unix)]
                    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
                    builder.create(dir).map_err(|e| StoreError::Unreachable {
                        location: shown.clone(),
                        message: format!("cannot create the folder {}: {e}", dir.display()),
                    })?;
                }
                let connect = sqlx::sqlite::SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(options.busy_timeout)
                    // Rows cross from SQLite's worker thread to the reading task through a
                    // bounded channel; at sqlx's 50 the two threads woke each other every few
                    // rows, and an export spent most of its time switching between them.
                    .row_buffer_size(ROW_CHANNEL);
                let pool = sqlx::pool::PoolOptions::<sqlx::Sqlite>::new()
                    .max_connections(options.max_connections.max(1))
                    .acquire_timeout(options.busy_timeout);
                // Switching a new file to WAL needs a lock no timeout waits for: a second
                // process opening the same new file at the same moment retries.
                let mut attempt = 0;
                let pool = loop {
                    match pool.clone().connect_with(connect.clone()).await {
                        Ok(p) => break p,
                        Err(e) => {
                            let e = classify(&shown, "opening", e);
                            attempt += 1;
                            if !matches!(e, StoreError::Locked { .. }) || attempt >= 20 {
                                return Err(e);
                            }
                            tokio::time::sleep(Duration::from_millis(50 * attempt)).await;
                        }
                    }
                };
                #[cfg(unix)]
                restrict_permissions(path);
                Pool::Sqlite(pool)
            }
            Location::Postgres(url) => {
                let connect: sqlx::postgres::PgConnectOptions =
                    url.parse().map_err(|e: sqlx::Error| StoreError::BadUrl {
                        url: shown.clone(),
                        reason: e.to_string(),
                    })?;
                // A write waits for another sync of the same account at most this long.
                let connect = connect.options([(
                    "lock_timeout",
                    format!("{}ms", options.busy_timeout.as_millis()),
                )]);
                // One connection first: a server that is not there fails now with its reason,
                // where the pool would retry until its timeout.
                {
                    use sqlx::Connection as _;
                    let probe = tokio::time::timeout(
                        options.busy_timeout,
                        sqlx::postgres::PgConnection::connect_with(&connect),
                    )
                    .await
                    .map_err(|_| StoreError::Unreachable {
                        location: shown.clone(),
                        message: format!(
                            "no answer within {} s: check that the database server runs and the URL is right",
                            options.busy_timeout.as_secs()
                        ),
                    })?
                    .map_err(|e| classify(&shown, "connecting", e))?;
                    let _ = probe.close().await;
                }
                let pool = sqlx::pool::PoolOptions::<sqlx::Postgres>::new()
                    .max_connections(options.max_connections.max(1))
                    .acquire_timeout(options.busy_timeout)
                    .connect_with(connect)
                    .await
                    .map_err(|e| classify(&shown, "connecting", e))?;
                Pool::Postgres(pool)
            }
        };
        let store = Store {
            pool,
            location: shown,
            busy_timeout: options.busy_timeout,
        };
        store.check_not_newer().await?;
        if options.migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// Where the store is, for people (a password hidden).
    pub fn location(&self) -> &str {
        &self.location
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self.pool {
            Pool::Sqlite(_) => "sqlite",
            Pool::Postgres(_) => "postgres",
        }
    }

    fn fix(&self, e: StoreError) -> StoreError {
        match e {
            StoreError::Locked { location, .. } => StoreError::Locked {
                location,
                seconds: self.busy_timeout.as_secs(),
            },
            other => other,
        }
    }

    /// The newest migration applied (0 for a store not migrated yet).
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        let v = match &self.pool {
            Pool::Sqlite(p) => backend::sqlite::schema_version(p, &self.location).await,
            Pool::Postgres(p) => backend::postgres::schema_version(p, &self.location).await,
        };
        v.map(|v| v.unwrap_or(0)).map_err(|e| self.fix(e))
    }

    async fn check_not_newer(&self) -> Result<(), StoreError> {
        let found = self.schema_version().await?;
        let known = known_schema_version();
        if found > known {
            return Err(StoreError::NewerSchema {
                location: self.location.clone(),
                found,
                known,
            });
        }
        Ok(())
    }

    /// Applies the migrations not applied yet; returns how many were.
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        self.check_not_newer().await?;
        let before = self.schema_version().await?;
        let (migrator, result) = match &self.pool {
            Pool::Sqlite(p) => {
                // Two processes migrating one new file can collide (SQLite has no migration
                // lock): the loser tries again and finds the work done.
                let mut result = SQLITE_MIGRATIONS.run(p).await;
                for _ in 0..5 {
                    if result.is_ok() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    result = SQLITE_MIGRATIONS.run(p).await;
                }
                (&SQLITE_MIGRATIONS, result)
            }
            // PostgreSQL: sqlx takes an advisory lock around the migrations.
            Pool::Postgres(p) => (&POSTGRES_MIGRATIONS, POSTGRES_MIGRATIONS.run(p).await),
        };
        result.map_err(|e| match e {
            sqlx::migrate::MigrateError::Execute(e) => {
                self.fix(classify(&self.location, "migrating", e))
            }
            sqlx::migrate::MigrateError::ExecuteMigration(e, _) => {
                self.fix(classify(&self.location, "migrating", e))
            }
            other => StoreError::Migrate {
                location: self.location.clone(),
                message: other.to_string(),
            },
        })?;
        let after = self.schema_version().await?;
        Ok(migrator
            .iter()
            .filter(|m| m.version > before && m.version <= after)
            .count())
    }

    /// Records the start of a sync run.
    pub async fn begin_run(&self, profile: &str, source: &str) -> Result<RunId, StoreError> {
        let id = uuid::Uuid::new_v4().to_string();
        let now = OffsetDateTime::now_utc();
        match &self.pool {
            Pool::Sqlite(p) => {
                backend::sqlite::begin_run(p, &self.location, &id, profile, source, now).await
            }
            Pool::Postgres(p) => {
                backend::postgres::begin_run(p, &self.location, &id, profile, source, now).await
            }
        }
        .map_err(|e| self.fix(e))?;
        Ok(RunId(id))
    }

    /// Records how a sync run ended.
    pub async fn finish_run(&self, run: &RunId, outcome: &RunOutcome) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        match &self.pool {
            Pool::Sqlite(p) => {
                backend::sqlite::finish_run(p, &self.location, &run.0, outcome, now).await
            }
            Pool::Postgres(p) => {
                backend::postgres::finish_run(p, &self.location, &run.0, outcome, now).await
            }
        }
        .map_err(|e| self.fix(e))
    }

    /// Where the next sync of an account should start: see [`AccountState`].
    pub async fn account_state(
        &self,
        profile: &str,
        account_key: &str,
    ) -> Result<AccountState, StoreError> {
        match &self.pool {
            Pool::Sqlite(p) => {
                backend::sqlite::account_state(p, &self.location, profile, account_key).await
            }
            Pool::Postgres(p) => {
                backend::postgres::account_state(p, &self.location, profile, account_key).await
            }
        }
        .map_err(|e| self.fix(e))
    }

    /// Writes what a sync learned about one account, in one database transaction: see the
    /// crate manual. On error nothing of the batch is written.
    pub async fn apply(
        &self,
        run: &RunId,
        batch: &AccountBatch,
    ) -> Result<ApplyReport, StoreError> {
        let now = OffsetDateTime::now_utc();
        let result = match &self.pool {
            Pool::Sqlite(p) => backend::sqlite::apply(p, &run.0, batch, now).await,
            Pool::Postgres(p) => {
                // Two syncs writing an account the store does not hold yet both insert its
                // row; the second's insert meets the first's on another unique index than
                // the one `ON CONFLICT` names and fails (23505) once the first commits. Its
                // transaction is rolled back whole, and run again it finds the row and
                // takes its turn behind the first, as for any stored account.
                let mut attempt = 1;
                loop {
                    match backend::postgres::apply(p, &run.0, batch, now).await {
                        Err(sqlx::Error::Database(db))
                            if attempt < 3 && db.code().as_deref() == Some("23505") =>
                        {
                            attempt += 1;
                        }
                        other => break other,
                    }
                }
            }
        };
        result.map_err(|e| {
            let what = format!(
                "writing account {} (nothing of it was written)",
                batch
                    .account
                    .iban
                    .as_deref()
                    .unwrap_or(&batch.account.resource_id)
            );
            self.fix(classify(&self.location, &what, e))
        })
    }

    /// The stored transactions that `filter` selects, as `stet_transactions` rows, one at a
    /// time (ordered by profile, IBAN, date).
    pub fn transactions<'a>(
        &'a self,
        filter: &HistoryFilter,
    ) -> BoxStream<'a, Result<TransactionRow, StoreError>> {
        match &self.pool {
            Pool::Sqlite(p) => backend::sqlite::transactions(p, &self.location, filter),
            Pool::Postgres(p) => backend::postgres::transactions(p, &self.location, filter),
        }
    }

    /// Location, schema version, counts and each account's last sync.
    pub async fn info(&self) -> Result<StoreInfo, StoreError> {
        let (counts, accounts) = match &self.pool {
            Pool::Sqlite(p) => (
                backend::sqlite::counts(p, &self.location).await,
                backend::sqlite::account_list(p, &self.location).await,
            ),
            Pool::Postgres(p) => (
                backend::postgres::counts(p, &self.location).await,
                backend::postgres::account_list(p, &self.location).await,
            ),
        };
        let [
            profiles,
            accounts_n,
            booked,
            pending,
            expired,
            balance_snapshots,
            sync_runs,
            deleted,
        ] = counts.map_err(|e| self.fix(e))?;
        Ok(StoreInfo {
            location: self.location.clone(),
            backend: self.backend(),
            schema_version: self.schema_version().await?,
            known_schema_version: known_schema_version(),
            profiles,
            accounts: accounts_n,
            booked,
            pending,
            expired,
            deleted,
            balance_snapshots,
            sync_runs,
            account_list: accounts.map_err(|e| self.fix(e))?,
        })
    }

    /// Closes every connection (waiting for them to be returned).
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(p) => p.close().await,
            Pool::Postgres(p) => p.close().await,
        }
    }
}

/// The store holds people's bank data: the file and its WAL companions are for the owner only.
#[cfg(unix)]
fn restrict_permissions(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt as _;
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let p = std::path::PathBuf::from(p);
        if let Ok(meta) = std::fs::metadata(&p)
            && meta.permissions().mode() & 0o077 != 0
            && meta.permissions().readonly() == (meta.permissions().mode() & 0o200 == 0)
        {
            let mode = meta.permissions().mode() & 0o700;
            let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode));
        }
    }
}
