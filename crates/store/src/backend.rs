//! The two databases. One body of code, expanded once per database by `backend!` with its
//! concrete pool, so each query is checked against that driver's types; the SQL is shared
//! text where the dialects agree (both take `$1` parameters, `ON CONFLICT`, `RETURNING`),
//! and each backend names what differs: how a write transaction begins, and how amounts are
//! bound (decimal text in SQLite, NUMERIC in PostgreSQL).

use std::collections::HashMap;

use futures_util::stream::{BoxStream, StreamExt as _};
use rust_decimal::Decimal;
use time::{Date, OffsetDateTime};

use crate::model::{
    AccountBatch, AccountState, AccountSummary, ApplyReport, HistoryFilter, RunOutcome, Status,
    TransactionRow,
};
use crate::plan::{self, PendingRow, StoredRow};

/// Rows per multi-row INSERT, and ids per `IN (…)` list: under SQLite's 32,766 parameters.
const CHUNK: usize = 500;
const INSERT_CHUNK: usize = 200;

/// Balances, account syncs and the rest of an account's write, shared text.
const UPSERT_ACCOUNT: &str = "INSERT INTO accounts (id, profile, account_key, iban, bank, resource_id, name, currency, first_seen, last_seen) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) \
     ON CONFLICT (profile, account_key) DO UPDATE SET resource_id = excluded.resource_id, \
     name = excluded.name, currency = excluded.currency, last_seen = excluded.last_seen";
const SET_CONNECTION: &str = "UPDATE accounts SET connection_id = $2 WHERE id = $1";
const UPSERT_LINK: &str = "INSERT INTO account_links (account_id, resource_id, first_seen, last_seen) VALUES ($1, $2, $3, $3) \
     ON CONFLICT (account_id, resource_id) DO UPDATE SET last_seen = excluded.last_seen";
const SELECT_PENDING: &str = "SELECT stable_id, amount, currency, pending_date, label, counterparty \
     FROM transactions WHERE account_id = $1 AND status = 'PDNG'";
const UPDATE_TX: &str = "UPDATE transactions SET status = $3, booking_date = $4, value_date = $5, \
     transaction_date = $6, amount = $7, currency = $8, credit_debit = $9, label = $10, counterparty = $11, \
     entry_reference = $12, last_seen = $13, last_run = $14, raw_json = $15, raw_sha256 = $16 \
     WHERE account_id = $1 AND stable_id = $2";
const HOLDS_TRANSACTIONS: &str = "SELECT EXISTS (SELECT 1 FROM transactions WHERE account_id = $1)";
const EXPIRE_TX: &str = "UPDATE transactions SET status = 'EXPD' WHERE account_id = $1 AND stable_id = $2 AND status = 'PDNG'";
const INSERT_BALANCE: &str = "INSERT INTO balances (account_id, run_id, fetched_at, balance_type, amount, currency, reference_date, name, raw_json) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const INSERT_ACCOUNT_SYNC: &str = "INSERT INTO account_syncs (run_id, account_id, finished_at, date_from, listed, new_rows, updated, booked_from_pending, expired, calls) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
     ON CONFLICT (run_id, account_id) DO UPDATE SET finished_at = excluded.finished_at, listed = excluded.listed, \
     new_rows = excluded.new_rows, updated = excluded.updated, booked_from_pending = excluded.booked_from_pending, \
     expired = excluded.expired, calls = excluded.calls";
const ACCOUNT_STATE: &str = "SELECT \
     (SELECT COUNT(*) FROM account_syncs s WHERE s.account_id = a.id) AS syncs, \
     (SELECT MAX(booking_date) FROM transactions t WHERE t.account_id = a.id AND t.status = 'BOOK') AS newest, \
     (SELECT MIN(pending_date) FROM transactions t WHERE t.account_id = a.id AND t.status = 'PDNG') AS oldest, \
     (SELECT MAX(r.started_at) FROM account_syncs s JOIN sync_runs r ON r.id = s.run_id WHERE s.account_id = a.id) AS last_run \
     FROM accounts a WHERE a.profile = $1 AND a.account_key = $2";
const BEGIN_RUN: &str =
    "INSERT INTO sync_runs (id, profile, source, started_at) VALUES ($1, $2, $3, $4)";
const FINISH_RUN: &str =
    "UPDATE sync_runs SET finished_at = $2, calls = $3, outcome = $4, error = $5 WHERE id = $1";
/// The history query; `$psu` is the expression of the view's `psu` column and `$join` what
/// it needs (SQLite has no fleet: its psu is the profile).
macro_rules! history_sql {
    ($psu:literal, $join:literal) => {
        concat!(
            "SELECT a.profile, a.iban, a.name, t.stable_id, t.status, t.booking_date, t.value_date, \
             t.transaction_date, t.amount, t.currency, t.credit_debit, t.label, t.counterparty, t.entry_reference, \
             t.first_seen, t.last_seen, t.raw_json, ",
            $psu,
            " FROM transactions t JOIN accounts a ON a.id = t.account_id ",
            $join,
            " WHERE ($1 IS NULL OR a.profile = $1) \
             AND ($2 IS NULL OR a.iban = $2 OR a.resource_id = $2) \
             AND ($3 IS NULL OR COALESCE(t.booking_date, t.transaction_date, t.value_date) >= $3) \
             AND ($4 IS NULL OR COALESCE(t.booking_date, t.transaction_date, t.value_date) < $4) \
             AND ($5 IS NULL OR t.status = $5 OR t.status = $6 OR t.status = $7) \
             AND ($8 IS NULL OR ",
            $psu,
            " = $8) \
             ORDER BY a.profile, a.iban, COALESCE(t.booking_date, t.transaction_date, t.value_date), t.first_seen, t.stable_id"
        )
    };
}
const COUNTS: &str = "SELECT \
     (SELECT COUNT(DISTINCT profile) FROM accounts), (SELECT COUNT(*) FROM accounts), \
     (SELECT COUNT(*) FROM transactions WHERE status = 'BOOK'), (SELECT COUNT(*) FROM transactions WHERE status = 'PDNG'), \
     (SELECT COUNT(*) FROM transactions WHERE status = 'EXPD'), (SELECT COUNT(*) FROM balances), (SELECT COUNT(*) FROM sync_runs), \
     (SELECT COUNT(*) FROM transactions WHERE status = 'DELD')";
const ACCOUNT_LIST: &str = "SELECT a.profile, a.iban, a.resource_id, a.name, \
     (SELECT COUNT(*) FROM transactions t WHERE t.account_id = a.id), \
     (SELECT MAX(s.finished_at) FROM account_syncs s WHERE s.account_id = a.id) \
     FROM accounts a ORDER BY a.profile, a.iban, a.resource_id";
const SCHEMA_VERSION: &str = "SELECT MAX(version) FROM _sqlx_migrations WHERE success";

/// The id of an account: derived from its profile and key, so concurrent syncs agree on it.
pub(crate) fn account_id(profile: &str, key: &str) -> String {
    let mut text = plan::sha256_hex(&format!("{profile}\u{0}{key}"));
    text.truncate(32);
    text
}

macro_rules! backend {
    ($module:ident, $db:ty, $amount:ty, $to_amount:path, $from_amount:path, $begin:ident, $history:expr) => {
        pub(crate) mod $module {
            use super::*;
            use sqlx::{QueryBuilder, Row as _};

            pub(crate) type Pool = sqlx::Pool<$db>;
            type Tx = sqlx::Transaction<'static, $db>;

            fn query_error(location: &str, what: &str, e: sqlx::Error) -> crate::StoreError {
                crate::classify(location, what, e)
            }

            pub(crate) async fn schema_version(pool: &Pool, location: &str) -> Result<Option<i64>, crate::StoreError> {
                match sqlx::query_scalar::<_, Option<i64>>(SCHEMA_VERSION).fetch_one(pool).await {
                    Ok(v) => Ok(v),
                    // No migration table yet: a new store.
                    Err(sqlx::Error::Database(e)) if e.message().contains("_sqlx_migrations") => Ok(None),
                    Err(e) => Err(query_error(location, "reading the schema version", e)),
                }
            }

            pub(crate) async fn begin_run(pool: &Pool, location: &str, id: &str, profile: &str, source: &str, now: OffsetDateTime) -> Result<(), crate::StoreError> {
                sqlx::query(BEGIN_RUN).bind(id).bind(profile).bind(source).bind(now)
                    .execute(pool).await.map_err(|e| query_error(location, "recording the sync run", e))?;
                Ok(())
            }

            pub(crate) async fn finish_run(pool: &Pool, location: &str, id: &str, outcome: &RunOutcome, now: OffsetDateTime) -> Result<(), crate::StoreError> {
                sqlx::query(FINISH_RUN).bind(id).bind(now).bind(outcome.calls as i64).bind(outcome.outcome).bind(outcome.error.as_deref())
                    .execute(pool).await.map_err(|e| query_error(location, "recording the end of the sync run", e))?;
                Ok(())
            }

            pub(crate) async fn account_state(pool: &Pool, location: &str, profile: &str, key: &str) -> Result<AccountState, crate::StoreError> {
                let row = sqlx::query(ACCOUNT_STATE).bind(profile).bind(key).fetch_optional(pool).await
                    .map_err(|e| query_error(location, "reading the account's last sync", e))?;
                let Some(row) = row else { return Ok(AccountState::default()) };
                let get = |e: sqlx::Error| query_error(location, "reading the account's last sync", e);
                Ok(AccountState {
                    synced_before: row.try_get::<i64, _>(0).map_err(get)? > 0,
                    newest_booked: row.try_get::<Option<Date>, _>(1).map_err(get)?,
                    oldest_pending: row.try_get::<Option<Date>, _>(2).map_err(get)?,
                    last_synced: row.try_get::<Option<OffsetDateTime>, _>(3).map_err(get)?,
                })
            }

            /// The rows `select` (ending in `WHERE account_id = `) gives for `account` whose
            /// `column` is among `ids`, asked `CHUNK` ids at a time.
            async fn rows_among(tx: &mut Tx, select: &str, column: &str, account: &str, ids: &[&str]) -> Result<Vec<<$db as sqlx::Database>::Row>, sqlx::Error> {
                let mut out = Vec::new();
                for chunk in ids.chunks(CHUNK) {
                    let mut q = QueryBuilder::<$db>::new(select);
                    q.push_bind(account).push(" AND ").push(column).push(" IN (");
                    let mut list = q.separated(", ");
                    for id in chunk {
                        list.push_bind(*id);
                    }
                    q.push(")");
                    out.extend(q.build().fetch_all(&mut **tx).await?);
                }
                Ok(out)
            }

            /// Stored rows among `ids`.
            async fn stored_rows(tx: &mut Tx, account: &str, ids: &[&str]) -> Result<HashMap<String, StoredRow>, sqlx::Error> {
                let select = "SELECT stable_id, status, raw_sha256 FROM transactions WHERE account_id = ";
                let mut out = HashMap::new();
                for row in rows_among(tx, select, "stable_id", account, ids).await? {
                    let stable_id: String = row.try_get(0)?;
                    let status: String = row.try_get(1)?;
                    let status = Status::from_code(&status).ok_or_else(|| sqlx::Error::Decode(format!("unknown status `{status}` of {stable_id}").into()))?;
                    out.insert(stable_id, StoredRow { status, raw_sha256: row.try_get(2)? });
                }
                Ok(out)
            }

            /// Recorded claims among `ids`: observed id → stable id.
            async fn claims(tx: &mut Tx, account: &str, ids: &[&str]) -> Result<HashMap<String, String>, sqlx::Error> {
                let select = "SELECT observed_id, stable_id FROM transaction_claims WHERE account_id = ";
                rows_among(tx, select, "observed_id", account, ids).await?
                    .iter().map(|row| Ok((row.try_get(0)?, row.try_get(1)?))).collect()
            }

            /// The rows among `ids` that a recorded claim points at.
            async fn claimed_rows(tx: &mut Tx, account: &str, ids: &[&str]) -> Result<std::collections::HashSet<String>, sqlx::Error> {
                let select = "SELECT stable_id FROM transaction_claims WHERE account_id = ";
                rows_among(tx, select, "stable_id", account, ids).await?
                    .iter().map(|row| row.try_get(0)).collect()
            }

            async fn pending_rows(tx: &mut Tx, account: &str) -> Result<Vec<PendingRow>, sqlx::Error> {
                let rows = sqlx::query(SELECT_PENDING).bind(account).fetch_all(&mut **tx).await?;
                rows.iter().map(|row| {
                    let amount: $amount = row.try_get(1)?;
                    Ok(PendingRow {
                        stable_id: row.try_get(0)?,
                        amount: $from_amount(amount).map_err(|e| sqlx::Error::Decode(e.into()))?,
                        currency: row.try_get(2)?,
                        pending_date: row.try_get(3)?,
                        label: crate::id::normalise(&row.try_get::<Option<String>, _>(4)?.unwrap_or_default()),
                        counterparty: crate::id::normalise(&row.try_get::<Option<String>, _>(5)?.unwrap_or_default()),
                    })
                }).collect()
            }

            pub(crate) async fn apply(pool: &Pool, run: &str, batch: &AccountBatch, now: OffsetDateTime) -> Result<ApplyReport, sqlx::Error> {
                let key = batch.account.key(&batch.bank);
                let account = account_id(&batch.profile, &key);
                let candidates = plan::candidates(batch, &key);

                let mut tx: Tx = $begin(pool).await?;
                // The account row first: in PostgreSQL its row lock makes syncs of one account
                // take turns until commit; SQLite's write lock is already held.
                sqlx::query(UPSERT_ACCOUNT)
                    .bind(&account).bind(&batch.profile).bind(&key).bind(batch.account.iban.as_deref())
                    .bind(&batch.bank).bind(&batch.account.resource_id).bind(batch.account.name.as_deref())
                    .bind(batch.account.currency.as_deref()).bind(now)
                    .execute(&mut *tx).await?;
                if let Some(connection) = batch.connection_id {
                    sqlx::query(SET_CONNECTION).bind(&account).bind(connection)
                        .execute(&mut *tx).await?;
                }
                sqlx::query(UPSERT_LINK).bind(&account).bind(&batch.account.resource_id).bind(now)
                    .execute(&mut *tx).await?;

                // An account holding no transaction yet (a first sync) has no stored row, claim
                // or pending row to look up: one query instead of a lookup per chunk of ids.
                let holds_rows: bool = sqlx::query_scalar(HOLDS_TRANSACTIONS).bind(&account)
                    .fetch_one(&mut *tx).await?;
                let (claimed, stored, claim_targets, pending) = if holds_rows {
                    let ids: Vec<&str> = candidates.iter().map(|c| c.id.as_str()).collect();
                    let claimed = claims(&mut tx, &account, &ids).await?;
                    let mut wanted = ids.clone();
                    wanted.extend(claimed.values().map(String::as_str));
                    let stored = stored_rows(&mut tx, &account, &wanted).await?;
                    let deleted: Vec<&str> = candidates.iter()
                        .filter(|c| c.tx.status == Status::Deleted && stored.contains_key(&c.id))
                        .map(|c| c.id.as_str()).collect();
                    let claim_targets = claimed_rows(&mut tx, &account, &deleted).await?;
                    (claimed, stored, claim_targets, pending_rows(&mut tx, &account).await?)
                } else {
                    Default::default()
                };
                let today = batch.transactions.iter().filter_map(|t| t.date()).max()
                    .map_or(now.date(), |d| d.max(now.date()));
                let plan = plan::plan(batch, &candidates, &stored, &claimed, &claim_targets, &pending, today);

                let insert = |chunk: &[&plan::Candidate<'_>]| {
                    let mut q = QueryBuilder::<$db>::new(
                        "INSERT INTO transactions (account_id, stable_id, status, booking_date, value_date, \
                         transaction_date, amount, currency, credit_debit, label, counterparty, entry_reference, \
                         pending_date, first_seen, last_seen, first_run, last_run, raw_json, raw_sha256) ");
                    q.push_values(chunk, |mut b, c| {
                        let t = c.tx;
                        let pending_date = (t.status == Status::Pending).then(|| t.pending_date()).flatten();
                        b.push_bind(&account).push_bind(&c.id).push_bind(t.status.code())
                            .push_bind(t.booking_date).push_bind(t.value_date).push_bind(t.transaction_date)
                            .push_bind($to_amount(t.signed_amount())).push_bind(&t.currency).push_bind(t.credit_debit.code())
                            .push_bind(t.label.as_deref()).push_bind(t.counterparty.as_deref()).push_bind(t.entry_reference.as_deref())
                            .push_bind(pending_date).push_bind(now).push_bind(now).push_bind(run).push_bind(run)
                            .push_bind(&t.raw_json).push_bind(&c.sha256);
                    });
                    q
                };
                // Each chunk's values are bound while the database writes the previous one: the
                // statement is handed to the database's thread when `execute` is first polled,
                // and `join!` polls it before building the next.
                let mut chunks = plan.inserts.chunks(INSERT_CHUNK);
                let mut next = chunks.next().map(|c| insert(c));
                while let Some(mut q) = next.take() {
                    let (written, built) = futures_util::join!(
                        q.build().execute(&mut *tx),
                        async { chunks.next().map(|c| insert(c)) }
                    );
                    written?;
                    next = built;
                }
                for (target, c) in &plan.updates {
                    let t = c.tx;
                    sqlx::query(UPDATE_TX).bind(&account).bind(target).bind(t.status.code())
                        .bind(t.booking_date).bind(t.value_date).bind(t.transaction_date)
                        .bind($to_amount(t.signed_amount())).bind(&t.currency).bind(t.credit_debit.code())
                        .bind(t.label.as_deref()).bind(t.counterparty.as_deref()).bind(t.entry_reference.as_deref())
                        .bind(now).bind(run).bind(&t.raw_json).bind(&c.sha256)
                        .execute(&mut *tx).await?;
                }
                for chunk in plan.touches.chunks(CHUNK) {
                    let mut q = QueryBuilder::<$db>::new("UPDATE transactions SET last_seen = ");
                    q.push_bind(now).push(", last_run = ").push_bind(run)
                        .push(" WHERE account_id = ").push_bind(&account).push(" AND stable_id IN (");
                    let mut list = q.separated(", ");
                    for id in chunk {
                        list.push_bind(id.as_str());
                    }
                    q.push(")");
                    q.build().execute(&mut *tx).await?;
                }
                if !plan.claims.is_empty() {
                    for chunk in plan.claims.chunks(INSERT_CHUNK) {
                        let mut q = QueryBuilder::<$db>::new("INSERT INTO transaction_claims (account_id, observed_id, stable_id, run_id, claimed_at) ");
                        q.push_values(chunk, |mut b, (observed, stable)| {
                            b.push_bind(&account).push_bind(observed).push_bind(stable).push_bind(run).push_bind(now);
                        });
                        q.push(" ON CONFLICT (account_id, observed_id) DO NOTHING");
                        q.build().execute(&mut *tx).await?;
                    }
                }
                for id in &plan.expire {
                    sqlx::query(EXPIRE_TX).bind(&account).bind(id).execute(&mut *tx).await?;
                }
                for b in &batch.balances {
                    sqlx::query(INSERT_BALANCE).bind(&account).bind(run).bind(now).bind(&b.balance_type)
                        .bind($to_amount(b.amount)).bind(&b.currency).bind(b.reference_date).bind(b.name.as_deref()).bind(&b.raw_json)
                        .execute(&mut *tx).await?;
                }
                let r = plan.report;
                sqlx::query(INSERT_ACCOUNT_SYNC).bind(run).bind(&account).bind(now).bind(batch.date_from)
                    .bind(r.listed as i64).bind(r.new as i64).bind(r.updated as i64).bind(r.booked_from_pending as i64)
                    .bind(r.expired as i64).bind(batch.calls as i64)
                    .execute(&mut *tx).await?;
                tx.commit().await?;
                Ok(r)
            }

            fn history_row(row: &<$db as sqlx::Database>::Row) -> Result<TransactionRow, sqlx::Error> {
                let amount: $amount = row.try_get(8)?;
                Ok(TransactionRow {
                    profile: row.try_get(0)?,
                    iban: row.try_get(1)?,
                    account_name: row.try_get(2)?,
                    stable_id: row.try_get(3)?,
                    status: row.try_get(4)?,
                    booking_date: row.try_get(5)?,
                    value_date: row.try_get(6)?,
                    transaction_date: row.try_get(7)?,
                    amount: $from_amount(amount).map_err(|e| sqlx::Error::Decode(e.into()))?,
                    currency: row.try_get(9)?,
                    credit_debit: row.try_get(10)?,
                    label: row.try_get(11)?,
                    counterparty: row.try_get(12)?,
                    entry_reference: row.try_get(13)?,
                    first_seen: row.try_get(14)?,
                    last_seen: row.try_get(15)?,
                    raw_json: row.try_get(16)?,
                    psu: Some(row.try_get(17)?),
                })
            }

            pub(crate) fn transactions<'a>(pool: &'a Pool, location: &'a str, filter: &HistoryFilter) -> BoxStream<'a, Result<TransactionRow, crate::StoreError>> {
                let status = |i: usize| filter.statuses.get(i).or(filter.statuses.first()).map(|s| s.code());
                sqlx::query($history)
                    .bind(filter.profile.clone()).bind(filter.account.clone())
                    .bind(filter.from).bind(filter.to)
                    .bind(status(0)).bind(status(1)).bind(status(2))
                    .bind(filter.psu.clone())
                    .fetch(pool)
                    .map(move |row| {
                        row.and_then(|row| history_row(&row))
                            .map_err(|e| query_error(location, "reading transactions", e))
                    })
                    .boxed()
            }

            pub(crate) async fn counts(pool: &Pool, location: &str) -> Result<[u64; 8], crate::StoreError> {
                let row = sqlx::query(COUNTS).fetch_one(pool).await.map_err(|e| query_error(location, "counting rows", e))?;
                let mut out = [0u64; 8];
                for (i, n) in out.iter_mut().enumerate() {
                    *n = row.try_get::<i64, _>(i).map_err(|e| query_error(location, "counting rows", e))? as u64;
                }
                Ok(out)
            }

            pub(crate) async fn account_list(pool: &Pool, location: &str) -> Result<Vec<AccountSummary>, crate::StoreError> {
                let rows = sqlx::query(ACCOUNT_LIST).fetch_all(pool).await.map_err(|e| query_error(location, "listing accounts", e))?;
                rows.iter().map(|row| {
                    let get = |e: sqlx::Error| query_error(location, "listing accounts", e);
                    Ok(AccountSummary {
                        profile: row.try_get(0).map_err(get)?,
                        iban: row.try_get(1).map_err(get)?,
                        resource_id: row.try_get(2).map_err(get)?,
                        name: row.try_get(3).map_err(get)?,
                        transactions: row.try_get::<i64, _>(4).map_err(get)? as u64,
                        last_sync: row.try_get(5).map_err(get)?,
                    })
                }).collect()
            }
        }
    };
}

fn decimal_text(d: Decimal) -> String {
    d.to_string()
}

fn decimal_from_text(s: String) -> Result<Decimal, String> {
    s.parse::<Decimal>()
        .map_err(|e| format!("amount `{s}` is not a decimal: {e}"))
}

fn decimal_id(d: Decimal) -> Decimal {
    d
}

fn decimal_ok(d: Decimal) -> Result<Decimal, String> {
    Ok(d)
}

async fn begin_sqlite(
    pool: &sqlx::SqlitePool,
) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
    // IMMEDIATE takes the write lock at once (waiting up to the busy timeout): a deferred
    // transaction that reads first and writes later can fail at once when another process
    // wrote in between, whatever the timeout.
    pool.begin_with("BEGIN IMMEDIATE").await
}

async fn begin_postgres(
    pool: &sqlx::PgPool,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    pool.begin().await
}

backend!(
    sqlite,
    sqlx::Sqlite,
    String,
    decimal_text,
    decimal_from_text,
    begin_sqlite,
    history_sql!("a.profile", "")
);
backend!(
    postgres,
    sqlx::Postgres,
    Decimal,
    decimal_id,
    decimal_ok,
    begin_postgres,
    history_sql!(
        "COALESCE(c.name, a.profile)",
        "LEFT JOIN connections c ON c.id = a.connection_id"
    )
);
