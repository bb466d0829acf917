//! The fleet's persistence (PostgreSQL only): connections, sealed tokens, the job queue,
//! the shared unattended budget, per-bank caps and consent hook events. The logic that uses
//! them (the vault, the workers) lives in `stet-fleet`; this module only reads and writes,
//! each operation one statement or one short transaction.
//!
//! On a SQLite store every method answers [`StoreError::FleetNeedsPostgres`]: the queue
//! relies on `FOR UPDATE SKIP LOCKED`, row locks and advisory locks, which SQLite lacks.

use std::time::Duration;

use sqlx::Row as _;
use time::OffsetDateTime;

use crate::{Pool, Store, StoreError, classify};

type Pg = sqlx::Postgres;

/// The states of a connection.
pub mod state {
    /// Synced on schedule.
    pub const ACTIVE: &str = "active";
    /// The PSU must act (a new consent) before the next sync.
    pub const NEEDS_PSU: &str = "needs_psu";
    /// The bank refused its refresh token: the PSU (or the bank) withdrew the consent.
    pub const REVOKED: &str = "revoked";
    /// Its consent's validity date has passed.
    pub const EXPIRED: &str = "expired";
    /// Removed with `stet psu remove`: tokens deleted, synced data kept.
    pub const REMOVED: &str = "removed";
}

/// A connection: one PSU's consent at one bank, through one configuration profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// Its id.
    pub id: i64,
    /// The configuration profile it syncs through.
    pub profile: String,
    /// Its name, unique per profile (the `psu` column of `stet_transactions`).
    pub name: String,
    /// The bank (the bank dialect profile's name).
    pub bank: String,
    /// The consent's scopes, space-separated.
    pub scopes: String,
    /// `active`, `needs_psu`, `revoked`, `expired` or `removed` (see [`state`]).
    pub state: String,
    /// When the consent stops being valid, when known.
    pub consent_valid_until: Option<OffsetDateTime>,
    /// When it was added.
    pub created_at: OffsetDateTime,
    /// Since when it needs the PSU.
    pub needs_psu_since: Option<OffsetDateTime>,
    /// The last error its syncs met.
    pub last_error: Option<String>,
    /// Seconds into each 6-hour period at which its unattended syncs are due.
    pub schedule_offset: i32,
    /// Its job's next due time, when it has a job.
    pub due_at: Option<OffsetDateTime>,
    /// Whether sealed tokens are stored for it.
    pub has_tokens: bool,
}

/// What `stet psu add` records.
#[derive(Debug, Clone)]
pub struct NewConnection {
    /// The configuration profile.
    pub profile: String,
    /// The name, unique per profile.
    pub name: String,
    /// The bank.
    pub bank: String,
    /// The consent's scopes, space-separated.
    pub scopes: String,
    /// When the consent stops being valid, when known.
    pub consent_valid_until: Option<OffsetDateTime>,
}

/// A job a worker has claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedJob {
    /// The job's id.
    pub id: i64,
    /// Its connection.
    pub connection_id: i64,
    /// `scheduled` or `on_demand`.
    pub kind: String,
    /// The PSU's IP address, for an on-demand sync with the PSU present.
    pub psu_ip: Option<String>,
    /// When it was due.
    pub due_at: OffsetDateTime,
    /// Runs so far that did not finish it.
    pub attempts: i32,
}

/// How a job run ended, and when the job is due next.
#[derive(Debug, Clone)]
pub struct JobCompletion {
    /// `done`, `failed`, `later`, `stale_token`, `needs_psu`.
    pub outcome: String,
    /// The next due time; `None` removes the job (its connection stops being scheduled).
    pub next_due: Option<OffsetDateTime>,
    /// Whether the run counts as an attempt that did not finish the job (attempts grow), or
    /// finished it (attempts reset).
    pub retry: bool,
    /// Calls to the bank.
    pub calls: u64,
    /// Transactions the bank listed.
    pub transactions: u64,
    /// The error, without secrets.
    pub error: Option<String>,
    /// When the run started.
    pub started_at: OffsetDateTime,
    /// The kind of job that ran.
    pub kind: String,
}

/// A connection's sealed tokens, read under a row lock held until [`TokenLock::commit`] or
/// drop: a worker that refreshes holds it across the call to the bank, so the others wait
/// and then read the rotated tokens instead of spending the same refresh token.
pub struct TokenLock {
    tx: sqlx::Transaction<'static, Pg>,
    location: String,
    connection_id: i64,
    /// nonce ‖ ciphertext ‖ tag.
    pub sealed: Vec<u8>,
    /// The fingerprint of the key that sealed them.
    pub key_id: String,
    /// The bank refused the access token: refresh before use.
    pub stale: bool,
}

impl std::fmt::Debug for TokenLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenLock")
            .field("connection_id", &self.connection_id)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl TokenLock {
    /// Replaces the sealed tokens (still under the lock) and clears `stale`.
    pub async fn write(&mut self, sealed: &[u8], key_id: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE connection_tokens SET sealed = $2, key_id = $3, stale = false, updated_at = now() \
             WHERE connection_id = $1",
        )
        .bind(self.connection_id)
        .bind(sealed)
        .bind(key_id)
        .execute(&mut *self.tx)
        .await
        .map_err(|e| classify(&self.location, "writing the connection's tokens", e))?;
        self.sealed = sealed.to_vec();
        self.key_id = key_id.to_owned();
        self.stale = false;
        Ok(())
    }

    /// Commits what was written and releases the lock.
    pub async fn commit(self) -> Result<(), StoreError> {
        let location = self.location;
        self.tx
            .commit()
            .await
            .map_err(|e| classify(&location, "committing the connection's tokens", e))
    }
}

/// One of a bank's concurrency slots, held (a transaction-level advisory lock) until dropped.
pub struct BankSlot {
    _tx: sqlx::Transaction<'static, Pg>,
    /// The slot's number.
    pub slot: u32,
}

impl std::fmt::Debug for BankSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BankSlot")
            .field("slot", &self.slot)
            .finish()
    }
}

/// A consent event waiting to be delivered to the hooks, claimed by one worker until
/// [`HookDelivery::delivered`] or [`HookDelivery::failed`].
pub struct HookDelivery {
    tx: sqlx::Transaction<'static, Pg>,
    location: String,
    /// The event.
    pub event: HookEvent,
}

impl std::fmt::Debug for HookDelivery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookDelivery")
            .field("event", &self.event)
            .finish_non_exhaustive()
    }
}

/// A consent event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookEvent {
    /// Its id.
    pub id: i64,
    /// The connection.
    pub connection_id: i64,
    /// Its profile.
    pub profile: String,
    /// Its name.
    pub name: String,
    /// `expires_soon`, `expired`, `revoked` or `needs_psu`.
    pub event: String,
    /// The consent validity the event is about, when known.
    pub valid_until: Option<OffsetDateTime>,
    /// What happened, without secrets.
    pub detail: Option<String>,
    /// Deliveries tried before.
    pub attempts: i32,
    /// Whether the hook command has already run for it (a delivery that failed afterwards,
    /// at the URL): a retry tells the URL alone.
    pub command_done: bool,
}

impl HookDelivery {
    /// Marks the event delivered: it never fires again.
    pub async fn delivered(mut self) -> Result<(), StoreError> {
        let location = self.location.clone();
        let err = |e| classify(&location, "recording a delivered hook event", e);
        sqlx::query(
            "UPDATE hook_events SET delivered_at = now(), attempts = attempts + 1 WHERE id = $1",
        )
        .bind(self.event.id)
        .execute(&mut *self.tx)
        .await
        .map_err(err)?;
        self.tx.commit().await.map_err(err)
    }

    /// Records a failed delivery: it is tried again later.
    ///
    /// `command_done`: the hook command did run (it is not run again).
    pub async fn failed(mut self, error: &str, command_done: bool) -> Result<(), StoreError> {
        let location = self.location.clone();
        let err = |e| classify(&location, "recording a failed hook delivery", e);
        sqlx::query(
            "UPDATE hook_events SET attempts = attempts + 1, last_error = $2, \
             command_done_at = CASE WHEN $3 THEN COALESCE(command_done_at, now()) ELSE command_done_at END \
             WHERE id = $1",
        )
        .bind(self.event.id)
        .bind(error)
        .bind(command_done)
        .execute(&mut *self.tx)
        .await
        .map_err(err)?;
        self.tx.commit().await.map_err(err)
    }
}

/// What `stet fleet status` shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetStatus {
    /// Connections per state.
    pub connections: Vec<(String, u64)>,
    /// Jobs due now and not leased.
    pub due: u64,
    /// Due jobs more than 15 minutes late.
    pub late: u64,
    /// Jobs leased by a worker now.
    pub leased: u64,
    /// Jobs in all.
    pub jobs: u64,
    /// The last hour's runs per outcome.
    pub runs_last_hour: Vec<(String, u64)>,
    /// Unattended calls recorded in the last 24 hours, all connections.
    pub budget_calls_24h: u64,
    /// Hook events not delivered yet.
    pub hooks_pending: u64,
}

/// How long past its due time a job counts as late.
pub const LATE_AFTER: Duration = Duration::from_secs(15 * 60);

const CONNECTION_COLUMNS: &str = "c.id, c.profile, c.name, c.bank, c.scopes, c.state, c.consent_valid_until, \
     c.created_at, c.needs_psu_since, c.last_error, c.schedule_offset, j.due_at, \
     (EXISTS (SELECT 1 FROM connection_tokens t WHERE t.connection_id = c.id))";

fn connection_row(row: &sqlx::postgres::PgRow) -> Result<Connection, sqlx::Error> {
    Ok(Connection {
        id: row.try_get(0)?,
        profile: row.try_get(1)?,
        name: row.try_get(2)?,
        bank: row.try_get(3)?,
        scopes: row.try_get(4)?,
        state: row.try_get(5)?,
        consent_valid_until: row.try_get(6)?,
        created_at: row.try_get(7)?,
        needs_psu_since: row.try_get(8)?,
        last_error: row.try_get(9)?,
        schedule_offset: row.try_get(10)?,
        due_at: row.try_get(11)?,
        has_tokens: row.try_get(12)?,
    })
}

/// Seconds into each 6-hour period at which a connection's syncs are due: spread over the
/// period, the same for a connection on every machine (a multiplicative hash of its id).
pub fn schedule_offset(connection_id: i64) -> i32 {
    let h = (connection_id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((h >> 32) % SLOT_SECONDS as u64) as i32
}

/// The length of a scheduling period: 4 unattended syncs a day.
pub const SLOT_SECONDS: i64 = 6 * 3600;

/// The first of a connection's slots (`offset + k × 6 h`) strictly after `after`.
pub fn next_slot(offset: i32, after: OffsetDateTime) -> OffsetDateTime {
    let t = after.unix_timestamp();
    let offset = i64::from(offset);
    let k = (t - offset).div_euclid(SLOT_SECONDS) + 1;
    OffsetDateTime::from_unix_timestamp(k * SLOT_SECONDS + offset).unwrap_or(after)
}

/// A 64-bit key for a bank's advisory locks (PostgreSQL's two-int form: bank, slot).
fn bank_key(bank: &str) -> i32 {
    let digest = crate::plan::sha256_hex(&format!("stet-bank-slot\u{0}{bank}"));
    i32::from_str_radix(&digest[..7], 16).unwrap_or(0)
}

impl Store {
    fn fleet_pool(&self) -> Result<&sqlx::PgPool, StoreError> {
        match &self.pool {
            Pool::Postgres(p) => Ok(p),
            Pool::Sqlite(_) => Err(StoreError::FleetNeedsPostgres {
                location: self.location.clone(),
            }),
        }
    }

    fn fleet_error(&self, what: &str) -> impl Fn(sqlx::Error) -> StoreError + '_ {
        let what = what.to_owned();
        move |e| self.fix(classify(&self.location, &what, e))
    }

    /// Whether this store can hold a fleet (it is PostgreSQL).
    pub fn supports_fleet(&self) -> bool {
        matches!(self.pool, Pool::Postgres(_))
    }

    /// Adds a connection with its sealed tokens and a scheduled job due now, in one
    /// transaction. A connection of the same profile and name that was removed is taken
    /// over (it keeps its id and synced data); an existing live one is an error.
    pub async fn add_connection(
        &self,
        new: &NewConnection,
        sealed: impl Fn(i64) -> Result<(Vec<u8>, String), StoreError>,
    ) -> Result<Connection, StoreError> {
        let pool = self.fleet_pool()?;
        let err = self.fleet_error("adding the connection");
        let mut tx = pool.begin().await.map_err(&err)?;
        let existing = sqlx::query(
            "SELECT id, state FROM connections WHERE profile = $1 AND name = $2 FOR UPDATE",
        )
        .bind(&new.profile)
        .bind(&new.name)
        .fetch_optional(&mut *tx)
        .await
        .map_err(&err)?;
        let id: i64 = match existing {
            Some(row) => {
                let id: i64 = row.try_get(0).map_err(&err)?;
                let state: String = row.try_get(1).map_err(&err)?;
                if state == state::ACTIVE {
                    return Err(StoreError::ConnectionExists {
                        profile: new.profile.clone(),
                        name: new.name.clone(),
                        id,
                    });
                }
                sqlx::query(
                    "UPDATE connections SET bank = $2, scopes = $3, state = 'active', consent_valid_until = $4, \
                     needs_psu_since = NULL, last_error = NULL WHERE id = $1",
                )
                .bind(id)
                .bind(&new.bank)
                .bind(&new.scopes)
                .bind(new.consent_valid_until)
                .execute(&mut *tx)
                .await
                .map_err(&err)?;
                // A new consent: a new budget.
                sqlx::query("DELETE FROM budget_ledgers WHERE connection_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .map_err(&err)?;
                id
            }
            None => {
                let id: i64 = sqlx::query_scalar("SELECT nextval('connections_id_seq')")
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(&err)?;
                sqlx::query(
                    "INSERT INTO connections (id, profile, name, bank, scopes, consent_valid_until, schedule_offset) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(id)
                .bind(&new.profile)
                .bind(&new.name)
                .bind(&new.bank)
                .bind(&new.scopes)
                .bind(new.consent_valid_until)
                .bind(schedule_offset(id))
                .execute(&mut *tx)
                .await
                .map_err(&err)?;
                id
            }
        };
        let (sealed, key_id) = sealed(id)?;
        sqlx::query(
            "INSERT INTO connection_tokens (connection_id, sealed, key_id) VALUES ($1, $2, $3) \
             ON CONFLICT (connection_id) DO UPDATE SET sealed = excluded.sealed, key_id = excluded.key_id, \
             stale = false, updated_at = now()",
        )
        .bind(id)
        .bind(&sealed)
        .bind(&key_id)
        .execute(&mut *tx)
        .await
        .map_err(&err)?;
        sqlx::query(
            "INSERT INTO jobs (connection_id, due_at) VALUES ($1, now()) \
             ON CONFLICT (connection_id) DO UPDATE SET due_at = now(), kind = 'scheduled', psu_ip = NULL, attempts = 0",
        )
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(&err)?;
        tx.commit().await.map_err(&err)?;
        self.connection(id)
            .await?
            .ok_or_else(|| StoreError::NoSuchConnection {
                connection: id.to_string(),
            })
    }

    /// The connections, of one profile or all, by id.
    pub async fn connections(&self, profile: Option<&str>) -> Result<Vec<Connection>, StoreError> {
        let pool = self.fleet_pool()?;
        let sql = format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections c LEFT JOIN jobs j ON j.connection_id = c.id \
             WHERE ($1::text IS NULL OR c.profile = $1) ORDER BY c.id"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(profile)
            .fetch_all(pool)
            .await
            .map_err(self.fleet_error("listing connections"))?;
        rows.iter()
            .map(|r| connection_row(r).map_err(self.fleet_error("listing connections")))
            .collect()
    }

    /// One connection by id.
    pub async fn connection(&self, id: i64) -> Result<Option<Connection>, StoreError> {
        let pool = self.fleet_pool()?;
        let sql = format!(
            "SELECT {CONNECTION_COLUMNS} FROM connections c LEFT JOIN jobs j ON j.connection_id = c.id WHERE c.id = $1"
        );
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(pool)
            .await
            .map_err(self.fleet_error("reading the connection"))?;
        row.map(|r| connection_row(&r).map_err(self.fleet_error("reading the connection")))
            .transpose()
    }

    /// A connection named by its id, or by its name (within `profile`, or unique across
    /// profiles).
    pub async fn find_connection(
        &self,
        what: &str,
        profile: Option<&str>,
    ) -> Result<Connection, StoreError> {
        let not_found = || StoreError::NoSuchConnection {
            connection: what.to_owned(),
        };
        if let Ok(id) = what.parse::<i64>()
            && let Some(c) = self.connection(id).await?
        {
            return Ok(c);
        }
        let mut found: Vec<Connection> = self
            .connections(profile)
            .await?
            .into_iter()
            .filter(|c| c.name == what)
            .collect();
        match found.len() {
            0 => Err(not_found()),
            1 => Ok(found.remove(0)),
            _ => Err(StoreError::AmbiguousConnection {
                name: what.to_owned(),
                profiles: found.iter().map(|c| c.profile.clone()).collect(),
            }),
        }
    }

    /// Marks a connection removed: its tokens, job and budget are deleted, the data its
    /// syncs stored is kept. Whether it was live.
    pub async fn remove_connection(&self, id: i64) -> Result<bool, StoreError> {
        let pool = self.fleet_pool()?;
        let err = self.fleet_error("removing the connection");
        let mut tx = pool.begin().await.map_err(&err)?;
        for sql in [
            "DELETE FROM connection_tokens WHERE connection_id = $1",
            "DELETE FROM jobs WHERE connection_id = $1",
            "DELETE FROM budget_ledgers WHERE connection_id = $1",
        ] {
            sqlx::query(sql)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(&err)?;
        }
        let changed = sqlx::query(
            "UPDATE connections SET state = 'removed' WHERE id = $1 AND state <> 'removed'",
        )
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(&err)?
        .rows_affected();
        tx.commit().await.map_err(&err)?;
        Ok(changed > 0)
    }

    /// Stops a connection (`needs_psu`, `revoked`, `expired`): its job is deleted, so it is
    /// no longer scheduled, and `event` is recorded once for the hooks. Whether the state
    /// changed.
    pub async fn stop_connection(
        &self,
        id: i64,
        new_state: &str,
        event: &str,
        detail: &str,
    ) -> Result<bool, StoreError> {
        let pool = self.fleet_pool()?;
        let err = self.fleet_error("stopping the connection");
        let mut tx = pool.begin().await.map_err(&err)?;
        let changed = sqlx::query(
            "UPDATE connections SET state = $2, needs_psu_since = COALESCE(needs_psu_since, now()), last_error = $3 \
             WHERE id = $1 AND state = 'active'",
        )
        .bind(id)
        .bind(new_state)
        .bind(detail)
        .execute(&mut *tx)
        .await
        .map_err(&err)?
        .rows_affected();
        sqlx::query("DELETE FROM jobs WHERE connection_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
        sqlx::query(
            "INSERT INTO hook_events (connection_id, event, valid_until, detail) \
             SELECT id, $2, COALESCE(consent_valid_until, '-infinity'), $3 FROM connections WHERE id = $1 \
             ON CONFLICT (connection_id, event, valid_until) DO NOTHING",
        )
        .bind(id)
        .bind(event)
        .bind(detail)
        .execute(&mut *tx)
        .await
        .map_err(&err)?;
        tx.commit().await.map_err(&err)?;
        Ok(changed > 0)
    }

    /// Consent lifecycle: active connections whose consent ends within `warn_before` get an
    /// `expires_soon` event (once per validity date); those whose consent has ended are
    /// stopped as `expired`. Returns how many were stopped.
    pub async fn check_consents(&self, warn_before: Duration) -> Result<u64, StoreError> {
        let pool = self.fleet_pool()?;
        let err = self.fleet_error("checking consent validity");
        sqlx::query(
            "INSERT INTO hook_events (connection_id, event, valid_until, detail) \
             SELECT id, 'expires_soon', consent_valid_until, 'the consent ends on ' || to_char(consent_valid_until AT TIME ZONE 'UTC', 'YYYY-MM-DD') \
             FROM connections WHERE state = 'active' AND consent_valid_until IS NOT NULL \
             AND consent_valid_until > now() AND consent_valid_until <= now() + make_interval(secs => $1) \
             ON CONFLICT (connection_id, event, valid_until) DO NOTHING",
        )
        .bind(warn_before.as_secs_f64())
        .execute(pool)
        .await
        .map_err(&err)?;
        let ended: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM connections WHERE state = 'active' AND consent_valid_until IS NOT NULL AND consent_valid_until <= now()",
        )
        .fetch_all(pool)
        .await
        .map_err(&err)?;
        let mut stopped = 0;
        for id in ended {
            if self
                .stop_connection(
                    id,
                    state::EXPIRED,
                    "expired",
                    "the consent's validity date has passed: the PSU must give a new consent",
                )
                .await?
            {
                stopped += 1;
            }
        }
        Ok(stopped)
    }

    /// Locks a connection's token row (`SELECT … FOR UPDATE`) and reads it; `None` when no
    /// tokens are stored for it.
    pub async fn lock_tokens(&self, connection_id: i64) -> Result<Option<TokenLock>, StoreError> {
        let pool = self.fleet_pool()?;
        let err = self.fleet_error("locking the connection's tokens");
        let mut tx = pool.begin().await.map_err(&err)?;
        let row = sqlx::query(
            "SELECT sealed, key_id, stale FROM connection_tokens WHERE connection_id = $1 FOR UPDATE",
        )
        .bind(connection_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(&err)?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(TokenLock {
            sealed: row.try_get(0).map_err(&err)?,
            key_id: row.try_get(1).map_err(&err)?,
            stale: row.try_get(2).map_err(&err)?,
            tx,
            location: self.location.clone(),
            connection_id,
        }))
    }

    /// The sealed tokens of every connection that has some: (connection, sealed, key id).
    pub async fn sealed_tokens(&self) -> Result<Vec<(i64, Vec<u8>, String)>, StoreError> {
        let pool = self.fleet_pool()?;
        let rows = sqlx::query(
            "SELECT connection_id, sealed, key_id FROM connection_tokens ORDER BY connection_id",
        )
        .fetch_all(pool)
        .await
        .map_err(self.fleet_error("reading sealed tokens"))?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get(0)
                        .map_err(self.fleet_error("reading sealed tokens"))?,
                    r.try_get(1)
                        .map_err(self.fleet_error("reading sealed tokens"))?,
                    r.try_get(2)
                        .map_err(self.fleet_error("reading sealed tokens"))?,
                ))
            })
            .collect()
    }

    /// Marks the stored access token stale (the bank refused it): the next use refreshes.
    pub async fn mark_tokens_stale(&self, connection_id: i64) -> Result<(), StoreError> {
        let pool = self.fleet_pool()?;
        sqlx::query("UPDATE connection_tokens SET stale = true WHERE connection_id = $1")
            .bind(connection_id)
            .execute(pool)
            .await
            .map_err(self.fleet_error("marking the access token stale"))?;
        Ok(())
    }

    /// Creates the missing jobs of active connections (due at their next slot, or now with
    /// `now`); with `now`, every active connection's job becomes due now. Returns the jobs
    /// created and the jobs made due.
    pub async fn schedule(&self, now: bool) -> Result<(u64, u64), StoreError> {
        let pool = self.fleet_pool()?;
        let err = self.fleet_error("scheduling");
        let connections: Vec<(i64, i32)> = sqlx::query_as(
            "SELECT c.id, c.schedule_offset FROM connections c WHERE c.state = 'active' \
             AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.connection_id = c.id)",
        )
        .fetch_all(pool)
        .await
        .map_err(&err)?;
        let at = OffsetDateTime::now_utc();
        let mut created = 0;
        for (id, offset) in connections {
            let due = if now { at } else { next_slot(offset, at) };
            created += sqlx::query(
                "INSERT INTO jobs (connection_id, due_at) VALUES ($1, $2) ON CONFLICT (connection_id) DO NOTHING",
            )
            .bind(id)
            .bind(due)
            .execute(pool)
            .await
            .map_err(&err)?
            .rows_affected();
        }
        let made_due = if now {
            sqlx::query(
                "UPDATE jobs SET due_at = now() WHERE due_at > now() AND connection_id IN \
                 (SELECT id FROM connections WHERE state = 'active')",
            )
            .execute(pool)
            .await
            .map_err(&err)?
            .rows_affected()
        } else {
            0
        };
        Ok((created, made_due))
    }

    /// Makes a connection's job an on-demand sync with the PSU present (`psu_ip`), due now.
    pub async fn enqueue_on_demand(
        &self,
        connection_id: i64,
        psu_ip: &str,
    ) -> Result<(), StoreError> {
        let pool = self.fleet_pool()?;
        let changed = sqlx::query(
            "INSERT INTO jobs (connection_id, kind, psu_ip, due_at) \
             SELECT id, 'on_demand', $2, now() FROM connections WHERE id = $1 AND state = 'active' \
             ON CONFLICT (connection_id) DO UPDATE SET kind = 'on_demand', psu_ip = $2, due_at = now()",
        )
        .bind(connection_id)
        .bind(psu_ip)
        .execute(pool)
        .await
        .map_err(self.fleet_error("enqueuing the on-demand sync"))?
        .rows_affected();
        if changed == 0 {
            return Err(StoreError::ConnectionNotActive {
                connection: connection_id.to_string(),
            });
        }
        Ok(())
    }

    /// Claims up to `n` due jobs of active connections for `owner`, leased for `lease`:
    /// `FOR UPDATE SKIP LOCKED`, so workers claiming at once never take the same job.
    pub async fn claim_jobs(
        &self,
        owner: &str,
        lease: Duration,
        n: u32,
    ) -> Result<Vec<ClaimedJob>, StoreError> {
        let pool = self.fleet_pool()?;
        let rows = sqlx::query(
            "UPDATE jobs SET lease_owner = $1, lease_until = now() + make_interval(secs => $2) \
             WHERE id IN (SELECT j.id FROM jobs j JOIN connections c ON c.id = j.connection_id \
               WHERE j.due_at <= now() AND (j.lease_until IS NULL OR j.lease_until < now()) AND c.state = 'active' \
               ORDER BY j.due_at, j.id FOR UPDATE OF j SKIP LOCKED LIMIT $3) \
             RETURNING id, connection_id, kind, psu_ip, due_at, attempts",
        )
        .bind(owner)
        .bind(lease.as_secs_f64())
        .bind(i64::from(n))
        .fetch_all(pool)
        .await
        .map_err(self.fleet_error("claiming jobs"))?;
        rows.iter()
            .map(|r| {
                let err = self.fleet_error("claiming jobs");
                Ok(ClaimedJob {
                    id: r.try_get(0).map_err(&err)?,
                    connection_id: r.try_get(1).map_err(&err)?,
                    kind: r.try_get(2).map_err(&err)?,
                    psu_ip: r.try_get(3).map_err(&err)?,
                    due_at: r.try_get(4).map_err(&err)?,
                    attempts: r.try_get(5).map_err(&err)?,
                })
            })
            .collect()
    }

    /// Claims one connection's job for `owner` if it is due and not leased (an on-demand
    /// sync run by the command that asked for it).
    pub async fn claim_connection_job(
        &self,
        connection_id: i64,
        owner: &str,
        lease: Duration,
    ) -> Result<Option<ClaimedJob>, StoreError> {
        let pool = self.fleet_pool()?;
        let err = self.fleet_error("claiming the connection's job");
        let row = sqlx::query(
            "UPDATE jobs SET lease_owner = $1, lease_until = now() + make_interval(secs => $2) \
             WHERE connection_id = $3 AND due_at <= now() AND (lease_until IS NULL OR lease_until < now()) \
             RETURNING id, connection_id, kind, psu_ip, due_at, attempts",
        )
        .bind(owner)
        .bind(lease.as_secs_f64())
        .bind(connection_id)
        .fetch_optional(pool)
        .await
        .map_err(&err)?;
        row.map(|r| {
            Ok(ClaimedJob {
                id: r.try_get(0).map_err(&err)?,
                connection_id: r.try_get(1).map_err(&err)?,
                kind: r.try_get(2).map_err(&err)?,
                psu_ip: r.try_get(3).map_err(&err)?,
                due_at: r.try_get(4).map_err(&err)?,
                attempts: r.try_get(5).map_err(&err)?,
            })
        })
        .transpose()
    }

    /// Extends `owner`'s lease on a job; `false` when the lease is no longer its own (it
    /// expired and another worker took the job, or the job was deleted).
    pub async fn renew_lease(
        &self,
        job: i64,
        owner: &str,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let pool = self.fleet_pool()?;
        let n = sqlx::query(
            "UPDATE jobs SET lease_until = now() + make_interval(secs => $3) WHERE id = $1 AND lease_owner = $2",
        )
        .bind(job)
        .bind(owner)
        .bind(lease.as_secs_f64())
        .execute(pool)
        .await
        .map_err(self.fleet_error("renewing a lease"))?
        .rows_affected();
        Ok(n > 0)
    }

    /// Gives a claimed job back unrun (a worker stopping): due again at once.
    pub async fn release_job(&self, job: i64, owner: &str) -> Result<bool, StoreError> {
        let pool = self.fleet_pool()?;
        let n = sqlx::query(
            "UPDATE jobs SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2",
        )
        .bind(job)
        .bind(owner)
        .execute(pool)
        .await
        .map_err(self.fleet_error("releasing a job"))?
        .rows_affected();
        Ok(n > 0)
    }

    /// Completes a claimed job, fenced by the lease: only while `owner` still holds it. The
    /// run is recorded and the job is due again at `completion.next_due` (or deleted), in
    /// one transaction. `false`: the lease was lost, nothing was changed.
    pub async fn complete_job(
        &self,
        job: &ClaimedJob,
        owner: &str,
        completion: &JobCompletion,
    ) -> Result<bool, StoreError> {
        let pool = self.fleet_pool()?;
        let err = self.fleet_error("completing a job");
        let mut tx = pool.begin().await.map_err(&err)?;
        let holder: Option<Option<String>> =
            sqlx::query_scalar("SELECT lease_owner FROM jobs WHERE id = $1 FOR UPDATE")
                .bind(job.id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(&err)?;
        // A job already deleted because its connection was stopped during the run (by this
        // run itself) is completed as a stop.
        let stopped = holder.is_none() && completion.next_due.is_none();
        let ours = holder.flatten().as_deref() == Some(owner) || stopped;
        let outcome = if ours {
            completion.outcome.as_str()
        } else {
            "lost_lease"
        };
        if ours {
            match completion.next_due {
                Some(due) => {
                    // An on-demand sync asked for while this run held the job (`psu sync`
                    // moved its due time) is still to run: it keeps its kind, PSU address
                    // and due time, and the next claim runs it. Otherwise the job goes to
                    // `due` (SET expressions read the row as it was).
                    sqlx::query(
                        "UPDATE jobs SET lease_owner = NULL, lease_until = NULL, \
                         attempts = CASE WHEN $3 THEN attempts + 1 ELSE 0 END, last_error = $4, \
                         due_at = CASE WHEN kind = 'on_demand' AND due_at <> $5 THEN due_at ELSE $2 END, \
                         kind = CASE WHEN kind = 'on_demand' AND due_at <> $5 THEN kind \
                           WHEN $3 THEN kind ELSE 'scheduled' END, \
                         psu_ip = CASE WHEN kind = 'on_demand' AND due_at <> $5 THEN psu_ip \
                           WHEN $3 THEN psu_ip ELSE NULL END WHERE id = $1",
                    )
                    .bind(job.id)
                    .bind(due)
                    .bind(completion.retry)
                    .bind(completion.error.as_deref())
                    .bind(job.due_at)
                    .execute(&mut *tx)
                    .await
                    .map_err(&err)?;
                }
                None => {
                    sqlx::query("DELETE FROM jobs WHERE id = $1")
                        .bind(job.id)
                        .execute(&mut *tx)
                        .await
                        .map_err(&err)?;
                }
            }
            if completion.outcome == "done" {
                sqlx::query("UPDATE connections SET last_error = NULL WHERE id = $1")
                    .bind(job.connection_id)
                    .execute(&mut *tx)
                    .await
                    .map_err(&err)?;
            } else if let Some(e) = &completion.error {
                sqlx::query("UPDATE connections SET last_error = $2 WHERE id = $1")
                    .bind(job.connection_id)
                    .bind(e)
                    .execute(&mut *tx)
                    .await
                    .map_err(&err)?;
            }
        }
        sqlx::query(
            "INSERT INTO job_runs (connection_id, job_kind, worker, started_at, finished_at, outcome, calls, transactions, error) \
             VALUES ($1, $2, $3, $4, now(), $5, $6, $7, $8)",
        )
        .bind(job.connection_id)
        .bind(&completion.kind)
        .bind(owner)
        .bind(completion.started_at)
        .bind(outcome)
        .bind(completion.calls as i64)
        .bind(completion.transactions as i64)
        .bind(completion.error.as_deref())
        .execute(&mut *tx)
        .await
        .map_err(&err)?;
        tx.commit().await.map_err(&err)?;
        Ok(ours)
    }

    /// (jobs due now and not leased, jobs leased by another worker than `owner` now).
    pub async fn queue_state(&self, owner: &str) -> Result<(u64, u64), StoreError> {
        let pool = self.fleet_pool()?;
        let row = sqlx::query(
            "SELECT \
             (SELECT COUNT(*) FROM jobs j JOIN connections c ON c.id = j.connection_id WHERE c.state = 'active' \
              AND j.due_at <= now() AND (j.lease_until IS NULL OR j.lease_until < now())), \
             (SELECT COUNT(*) FROM jobs WHERE lease_until >= now() AND lease_owner <> $1)",
        )
        .bind(owner)
        .fetch_one(pool)
        .await
        .map_err(self.fleet_error("reading the queue"))?;
        let due: i64 = row
            .try_get(0)
            .map_err(self.fleet_error("reading the queue"))?;
        let leased: i64 = row
            .try_get(1)
            .map_err(self.fleet_error("reading the queue"))?;
        Ok((due as u64, leased as u64))
    }

    /// A connection's unattended-budget ledger (the client's JSON), if any.
    pub async fn budget_ledger(&self, connection_id: i64) -> Result<Option<String>, StoreError> {
        let pool = self.fleet_pool()?;
        sqlx::query_scalar("SELECT ledger FROM budget_ledgers WHERE connection_id = $1")
            .bind(connection_id)
            .fetch_optional(pool)
            .await
            .map_err(self.fleet_error("reading the budget ledger"))
    }

    /// Replaces a connection's unattended-budget ledger only if it still is `expected` (as
    /// read; `None`: none stored): two processes counting the same consent at once cannot
    /// both spend the last call. Whether it was replaced.
    pub async fn replace_budget_ledger(
        &self,
        connection_id: i64,
        expected: Option<&str>,
        ledger: &str,
    ) -> Result<bool, StoreError> {
        let pool = self.fleet_pool()?;
        let err = self.fleet_error("writing the budget ledger");
        let n = match expected {
            Some(old) => sqlx::query(
                "UPDATE budget_ledgers SET ledger = $3, updated_at = now() WHERE connection_id = $1 AND ledger = $2",
            )
            .bind(connection_id)
            .bind(old)
            .bind(ledger)
            .execute(pool)
            .await
            .map_err(&err)?,
            None => sqlx::query(
                "INSERT INTO budget_ledgers (connection_id, ledger, updated_at) VALUES ($1, $2, now()) \
                 ON CONFLICT (connection_id) DO NOTHING",
            )
            .bind(connection_id)
            .bind(ledger)
            .execute(pool)
            .await
            .map_err(&err)?,
        }
        .rows_affected();
        Ok(n > 0)
    }

    /// Replaces a connection's unattended-budget ledger.
    pub async fn save_budget_ledger(
        &self,
        connection_id: i64,
        ledger: &str,
    ) -> Result<(), StoreError> {
        let pool = self.fleet_pool()?;
        sqlx::query(
            "INSERT INTO budget_ledgers (connection_id, ledger, updated_at) VALUES ($1, $2, now()) \
             ON CONFLICT (connection_id) DO UPDATE SET ledger = excluded.ledger, updated_at = now()",
        )
        .bind(connection_id)
        .bind(ledger)
        .execute(pool)
        .await
        .map_err(self.fleet_error("writing the budget ledger"))?;
        Ok(())
    }

    /// Takes one of `bank`'s `slots` concurrency slots if one is free (a transaction-level
    /// advisory lock on its own connection, released when the [`BankSlot`] is dropped, or
    /// when its worker dies and PostgreSQL closes the connection).
    pub async fn try_bank_slot(
        &self,
        bank: &str,
        slots: u32,
    ) -> Result<Option<BankSlot>, StoreError> {
        let pool = self.fleet_pool()?;
        let err = self.fleet_error("taking a bank slot");
        let key = bank_key(bank);
        let mut tx = pool.begin().await.map_err(&err)?;
        // Starting at a random slot spreads the tries of many workers.
        let start = fastrand_u32(slots.max(1));
        for i in 0..slots.max(1) {
            let slot = (start + i) % slots.max(1);
            let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_xact_lock($1, $2)")
                .bind(key)
                .bind(slot as i32)
                .fetch_one(&mut *tx)
                .await
                .map_err(&err)?;
            if got {
                return Ok(Some(BankSlot { _tx: tx, slot }));
            }
        }
        Ok(None)
    }

    /// Takes one call from `bank`'s token bucket (`rate` calls a second, bursts of `burst`),
    /// shared by all workers; `None` when one was taken, else how long to wait for one.
    pub async fn take_bank_call(
        &self,
        bank: &str,
        rate: f64,
        burst: f64,
    ) -> Result<Option<Duration>, StoreError> {
        let pool = self.fleet_pool()?;
        let err = self.fleet_error("counting a bank call");
        sqlx::query(
            "INSERT INTO bank_rates (bank, tokens, updated_at) VALUES ($1, $2, clock_timestamp()) ON CONFLICT (bank) DO NOTHING",
        )
        .bind(bank)
        .bind(burst)
        .execute(pool)
        .await
        .map_err(&err)?;
        // The tokens available now (refilled since the last take), then one taken if there
        // is one; the row lock makes workers take turns.
        let available: f64 = sqlx::query_scalar(
            "WITH cur AS (SELECT bank, LEAST($3, tokens + EXTRACT(EPOCH FROM clock_timestamp() - updated_at)::float8 * $2) AS available \
               FROM bank_rates WHERE bank = $1 FOR UPDATE) \
             UPDATE bank_rates b SET tokens = CASE WHEN cur.available >= 1 THEN cur.available - 1 ELSE cur.available END, \
               updated_at = clock_timestamp() \
             FROM cur WHERE b.bank = cur.bank RETURNING cur.available",
        )
        .bind(bank)
        .bind(rate)
        .bind(burst)
        .fetch_one(pool)
        .await
        .map_err(&err)?;
        if available >= 1.0 {
            Ok(None)
        } else {
            let missing = 1.0 - available.max(0.0);
            Ok(Some(Duration::from_secs_f64(
                (missing / rate.max(0.001)).max(0.005),
            )))
        }
    }

    /// Claims the oldest undelivered hook event that no other worker is delivering.
    pub async fn next_hook_event(&self) -> Result<Option<HookDelivery>, StoreError> {
        let pool = self.fleet_pool()?;
        let err = self.fleet_error("reading hook events");
        let mut tx = pool.begin().await.map_err(&err)?;
        let row = sqlx::query(
            "SELECT e.id, e.connection_id, c.profile, c.name, e.event, \
             CASE WHEN e.valid_until = '-infinity' THEN NULL ELSE e.valid_until END, e.detail, e.attempts, \
             e.command_done_at IS NOT NULL \
             FROM hook_events e JOIN connections c ON c.id = e.connection_id \
             WHERE e.delivered_at IS NULL \
             AND (e.attempts = 0 OR e.created_at + make_interval(secs => LEAST(3600, 5 * power(2, e.attempts))) < now()) \
             ORDER BY e.id FOR UPDATE OF e SKIP LOCKED LIMIT 1",
        )
        .fetch_optional(&mut *tx)
        .await
        .map_err(&err)?;
        let Some(r) = row else { return Ok(None) };
        Ok(Some(HookDelivery {
            event: HookEvent {
                id: r.try_get(0).map_err(&err)?,
                connection_id: r.try_get(1).map_err(&err)?,
                profile: r.try_get(2).map_err(&err)?,
                name: r.try_get(3).map_err(&err)?,
                event: r.try_get(4).map_err(&err)?,
                valid_until: r.try_get(5).map_err(&err)?,
                detail: r.try_get(6).map_err(&err)?,
                attempts: r.try_get(7).map_err(&err)?,
                command_done: r.try_get(8).map_err(&err)?,
            },
            tx,
            location: self.location.clone(),
        }))
    }

    /// The queue at a glance, for `stet fleet status`.
    pub async fn fleet_status(&self) -> Result<FleetStatus, StoreError> {
        let pool = self.fleet_pool()?;
        let err = self.fleet_error("reading the fleet's status");
        let pairs =
            |rows: Vec<(String, i64)>| rows.into_iter().map(|(k, v)| (k, v as u64)).collect();
        let connections: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, COUNT(*) FROM connections GROUP BY state ORDER BY state")
                .fetch_all(pool)
                .await
                .map_err(&err)?;
        let runs: Vec<(String, i64)> = sqlx::query_as(
            "SELECT outcome, COUNT(*) FROM job_runs WHERE finished_at > now() - interval '1 hour' GROUP BY outcome ORDER BY outcome",
        )
        .fetch_all(pool)
        .await
        .map_err(&err)?;
        let row = sqlx::query(
            "SELECT \
             (SELECT COUNT(*) FROM jobs j JOIN connections c ON c.id = j.connection_id WHERE c.state = 'active' \
               AND j.due_at <= now() AND (j.lease_until IS NULL OR j.lease_until < now())), \
             (SELECT COUNT(*) FROM jobs j JOIN connections c ON c.id = j.connection_id WHERE c.state = 'active' \
               AND j.due_at <= now() - make_interval(secs => $1) AND (j.lease_until IS NULL OR j.lease_until < now())), \
             (SELECT COUNT(*) FROM jobs WHERE lease_until >= now()), \
             (SELECT COUNT(*) FROM jobs), \
             (SELECT COUNT(*) FROM hook_events WHERE delivered_at IS NULL), \
             (SELECT ledger FROM budget_ledgers LIMIT 0)",
        )
        .bind(LATE_AFTER.as_secs_f64())
        .fetch_one(pool)
        .await
        .map_err(&err)?;
        let get = |i: usize| -> Result<u64, StoreError> {
            Ok(row.try_get::<i64, _>(i).map_err(&err)? as u64)
        };
        // The ledgers are the client's JSON: count the calls of the last 24 hours in them.
        let ledgers: Vec<String> = sqlx::query_scalar("SELECT ledger FROM budget_ledgers")
            .fetch_all(pool)
            .await
            .map_err(&err)?;
        let horizon = OffsetDateTime::now_utc().unix_timestamp() - 24 * 3600;
        let budget_calls_24h = ledgers.iter().map(|l| count_calls_after(l, horizon)).sum();
        Ok(FleetStatus {
            connections: pairs(connections),
            due: get(0)?,
            late: get(1)?,
            leased: get(2)?,
            jobs: get(3)?,
            hooks_pending: get(4)?,
            runs_last_hour: pairs(runs),
            budget_calls_24h,
        })
    }
}

/// Calls after `horizon` (Unix seconds) in a budget ledger's JSON (`"calls":[t, …]` lists),
/// read without the client's types: the store does not depend on the client.
fn count_calls_after(ledger: &str, horizon: i64) -> u64 {
    let mut n = 0;
    let mut rest = ledger;
    while let Some(i) = rest.find("\"calls\"") {
        rest = &rest[i + 7..];
        let Some(open) = rest.find('[') else { break };
        let Some(close) = rest[open..].find(']') else {
            break;
        };
        n += rest[open + 1..open + close]
            .split(',')
            .filter_map(|t| t.trim().parse::<i64>().ok())
            .filter(|&t| t > horizon)
            .count() as u64;
        rest = &rest[open + close..];
    }
    n
}

fn fastrand_u32(n: u32) -> u32 {
    // The low bits of a v4 UUID are random; no need for another generator here.
    (uuid::Uuid::new_v4().as_u128() as u32) % n.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_six_hours_apart_at_the_offset() {
        let offset = schedule_offset(42);
        assert!((0..SLOT_SECONDS as i32).contains(&offset));
        let t0 = OffsetDateTime::from_unix_timestamp(1_750_000_000).unwrap();
        let a = next_slot(offset, t0);
        assert!(a > t0 && a - t0 <= time::Duration::hours(6));
        assert_eq!(
            (a.unix_timestamp() - i64::from(offset)).rem_euclid(SLOT_SECONDS),
            0
        );
        let b = next_slot(offset, a);
        assert_eq!(b - a, time::Duration::hours(6));
        // Offsets spread: 1,000 connections do not fall in a few minutes of the period.
        let mut buckets = [0u32; 24];
        for id in 1..=1000 {
            buckets[(schedule_offset(id) as usize * 24) / SLOT_SECONDS as usize] += 1;
        }
        assert!(buckets.iter().all(|&n| n > 10 && n < 90), "{buckets:?}");
    }

    #[test]
    fn ledger_calls_are_counted_within_the_window() {
        let json = r#"{"entries":[{"consent":"aisp@1","account":"A","endpoint":"transactions","calls":[100,200]},
            {"consent":"aisp@1","account":"A","endpoint":"balances","calls":[150]}]}"#;
        assert_eq!(count_calls_after(json, 120), 2);
        assert_eq!(count_calls_after(json, 0), 3);
        assert_eq!(count_calls_after("{}", 0), 0);
    }
}
