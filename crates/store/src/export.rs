//! What exports read from the store, and the export ledger that `--since-last` keeps.
//!
//! An export works account by account: [`Store::export_accounts`] lists the accounts with
//! their balance snapshots, [`Store::account_amounts`] streams the few columns an exporter
//! needs to compute opening balances, and [`Store::export_rows`] streams the rows to write,
//! each with the version last exported under a name, if any. [`Store::begin_export_record`]
//! opens the database transaction that records what was written; it commits only when the
//! caller says the output is in place, so an export that fails records nothing.

use futures_util::stream::{BoxStream, StreamExt as _};
use rust_decimal::Decimal;
use time::{Date, OffsetDateTime};

use crate::model::{Status, TransactionRow};
use crate::{Pool, Store, StoreError};

/// A stored account, as an export sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportAccount {
    /// The store's internal id of the account (stable: derived from profile and key).
    pub id: String,
    /// The configuration profile.
    pub profile: String,
    /// `iban:…` or `bank:BANK:RESOURCE_ID`.
    pub account_key: String,
    /// The IBAN, when the bank gave one.
    pub iban: Option<String>,
    /// The bank (its profile name).
    pub bank: String,
    /// The account's name at the bank.
    pub name: Option<String>,
    /// The account's currency, when the bank said.
    pub currency: Option<String>,
    /// Every balance snapshot, oldest first.
    pub balances: Vec<BalanceSnapshot>,
    /// Something of this account was recorded under the export name asked about.
    pub exported_before: bool,
}

/// A balance as one sync fetched it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceSnapshot {
    /// STET's `balanceType`: `CLBD`, `XPCD`, `ITAV`, `OTHR`, …
    pub balance_type: String,
    /// Signed amount.
    pub amount: Decimal,
    /// ISO 4217.
    pub currency: String,
    /// The bank's reference date, when given.
    pub reference_date: Option<Date>,
    /// When the sync fetched it.
    pub fetched_at: OffsetDateTime,
}

/// The columns an exporter sums: one per stored transaction of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmountRow {
    /// `BOOK`, `PDNG` or `EXPD`.
    pub status: String,
    /// Booking date, else transaction date, else value date.
    pub date: Option<Date>,
    /// Signed amount.
    pub amount: Decimal,
    /// ISO 4217.
    pub currency: String,
}

/// Which rows of an account [`Store::export_rows`] gives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowFilter {
    /// From this date, inclusive (booking date, else transaction date, else value date).
    pub from: Option<Date>,
    /// Until this date, exclusive.
    pub to: Option<Date>,
    /// Only these statuses; all when empty (at most three).
    pub statuses: Vec<Status>,
    /// Join the export ledger of this name: each row comes with the version exported under
    /// it, if any.
    pub since_last: Option<String>,
}

/// A row to export, and what was exported of it before under the name asked about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportRow {
    /// The row as the `stet_transactions` view shows it.
    pub row: TransactionRow,
    /// The version recorded under the export name, if any.
    pub exported: Option<ExportedVersion>,
}

/// A version of a transaction recorded in the export ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportedVersion {
    /// [`fingerprint`] of the row when it was exported.
    pub fingerprint: String,
    /// The format it was written in.
    pub format: String,
    /// Its status then.
    pub status: String,
    /// Its date then (booking date, else transaction date, else value date).
    pub date: Option<Date>,
    /// Its amount then.
    pub amount: Decimal,
    /// Its currency then.
    pub currency: String,
    /// Its label then.
    pub label: Option<String>,
    /// When it was exported.
    pub exported_at: OffsetDateTime,
}

/// What an export writes of a transaction, hashed: status, dates, amount, currency, label and
/// counterparty. Two versions with the same fingerprint export the same; a bank correction
/// changes it.
pub fn fingerprint(row: &TransactionRow) -> String {
    let d = |d: Option<Date>| d.map(|d| d.to_string()).unwrap_or_default();
    crate::plan::sha256_hex(&format!(
        "{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}\u{0}{}",
        row.status,
        d(row.booking_date),
        d(row.value_date),
        d(row.transaction_date),
        row.amount.normalize(),
        row.currency,
        row.label.as_deref().unwrap_or_default(),
        row.counterparty.as_deref().unwrap_or_default(),
        row.credit_debit,
    ))
}

const ACCOUNTS: &str = "SELECT a.id, a.profile, a.account_key, a.iban, a.bank, a.name, a.currency, \
     (SELECT COUNT(*) FROM export_ledger e WHERE e.name = $3 AND e.account_id = a.id) \
     FROM accounts a \
     WHERE ($1 IS NULL OR a.profile = $1) AND ($2 IS NULL OR a.iban = $2 OR a.resource_id = $2) \
     ORDER BY a.profile, a.account_key";
const BALANCES: &str = "SELECT balance_type, amount, currency, reference_date, fetched_at \
     FROM balances WHERE account_id = $1 ORDER BY fetched_at, balance_type";
const AMOUNTS: &str = "SELECT status, COALESCE(booking_date, transaction_date, value_date), amount, currency \
     FROM transactions WHERE account_id = $1";
const ROWS: &str = "SELECT a.profile, a.iban, a.name, t.stable_id, t.status, t.booking_date, t.value_date, \
     t.transaction_date, t.amount, t.currency, t.credit_debit, t.label, t.counterparty, t.entry_reference, \
     t.first_seen, t.last_seen, t.raw_json, \
     e.fingerprint, e.format, e.status, e.booking_date, e.amount, e.currency, e.label, e.exported_at \
     FROM transactions t JOIN accounts a ON a.id = t.account_id \
     LEFT JOIN export_ledger e ON e.name = $2 AND e.account_id = t.account_id AND e.stable_id = t.stable_id \
     WHERE t.account_id = $1 \
     AND ($3 IS NULL OR COALESCE(t.booking_date, t.transaction_date, t.value_date) >= $3) \
     AND ($4 IS NULL OR COALESCE(t.booking_date, t.transaction_date, t.value_date) < $4) \
     AND ($5 IS NULL OR t.status = $5 OR t.status = $6 OR t.status = $7) \
     ORDER BY COALESCE(t.booking_date, t.transaction_date, t.value_date), t.first_seen, t.stable_id";
/// [`ROWS`] without the export ledger, for an export under no name: every column a row
/// reads costs a copy, and the ledger's eight would all be empty.
const ROWS_UNNAMED: &str = "SELECT a.profile, a.iban, a.name, t.stable_id, t.status, t.booking_date, t.value_date, \
     t.transaction_date, t.amount, t.currency, t.credit_debit, t.label, t.counterparty, t.entry_reference, \
     t.first_seen, t.last_seen, t.raw_json \
     FROM transactions t JOIN accounts a ON a.id = t.account_id \
     WHERE t.account_id = $1 \
     AND ($2 IS NULL OR COALESCE(t.booking_date, t.transaction_date, t.value_date) >= $2) \
     AND ($3 IS NULL OR COALESCE(t.booking_date, t.transaction_date, t.value_date) < $3) \
     AND ($4 IS NULL OR t.status = $4 OR t.status = $5 OR t.status = $6) \
     ORDER BY COALESCE(t.booking_date, t.transaction_date, t.value_date), t.first_seen, t.stable_id";
const RECORD: &str = "INSERT INTO export_ledger (name, account_id, stable_id, format, fingerprint, status, \
     booking_date, amount, currency, label, exported_at) ";
const RECORD_CONFLICT: &str = " ON CONFLICT (name, account_id, stable_id) DO UPDATE SET \
     format = excluded.format, fingerprint = excluded.fingerprint, status = excluded.status, \
     booking_date = excluded.booking_date, amount = excluded.amount, currency = excluded.currency, \
     label = excluded.label, exported_at = excluded.exported_at";

/// Rows recorded per INSERT.
const RECORD_CHUNK: usize = 200;

/// One row waiting to be recorded.
pub(crate) struct Pending {
    account_id: String,
    stable_id: String,
    fingerprint: String,
    status: String,
    date: Option<Date>,
    amount: Decimal,
    currency: String,
    label: Option<String>,
}

macro_rules! export_backend {
    ($module:ident, $db:ty, $amount:ty, $to_amount:path, $from_amount:path, $begin:path) => {
        pub(crate) mod $module {
            use super::*;
            use sqlx::{QueryBuilder, Row as _};

            type Pool = sqlx::Pool<$db>;
            pub(crate) type Tx = sqlx::Transaction<'static, $db>;

            fn err(location: &str, what: &str, e: sqlx::Error) -> StoreError {
                crate::classify(location, what, e)
            }

            pub(crate) async fn accounts(
                pool: &Pool,
                location: &str,
                profile: Option<&str>,
                account: Option<&str>,
                since_last: Option<&str>,
            ) -> Result<Vec<ExportAccount>, StoreError> {
                let what = "listing the accounts to export";
                let rows = sqlx::query(ACCOUNTS)
                    .bind(profile)
                    .bind(account)
                    .bind(since_last)
                    .fetch_all(pool)
                    .await
                    .map_err(|e| err(location, what, e))?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    let get = |e: sqlx::Error| err(location, what, e);
                    let id: String = row.try_get(0).map_err(get)?;
                    let balances = sqlx::query(BALANCES)
                        .bind(&id)
                        .fetch_all(pool)
                        .await
                        .map_err(|e| err(location, "reading balance snapshots", e))?
                        .iter()
                        .map(|b| {
                            let amount: $amount = b.try_get(1)?;
                            Ok(BalanceSnapshot {
                                balance_type: b.try_get(0)?,
                                amount: $from_amount(amount)
                                    .map_err(|e| sqlx::Error::Decode(e.into()))?,
                                currency: b.try_get(2)?,
                                reference_date: b.try_get(3)?,
                                fetched_at: b.try_get(4)?,
                            })
                        })
                        .collect::<Result<Vec<_>, sqlx::Error>>()
                        .map_err(|e| err(location, "reading balance snapshots", e))?;
                    out.push(ExportAccount {
                        id,
                        profile: row.try_get(1).map_err(get)?,
                        account_key: row.try_get(2).map_err(get)?,
                        iban: row.try_get(3).map_err(get)?,
                        bank: row.try_get(4).map_err(get)?,
                        name: row.try_get(5).map_err(get)?,
                        currency: row.try_get(6).map_err(get)?,
                        balances,
                        exported_before: row.try_get::<i64, _>(7).map_err(get)? > 0,
                    });
                }
                Ok(out)
            }

            pub(crate) fn amounts<'a>(
                pool: &'a Pool,
                location: &'a str,
                account_id: &str,
            ) -> BoxStream<'a, Result<AmountRow, StoreError>> {
                sqlx::query(AMOUNTS)
                    .bind(account_id.to_owned())
                    .fetch(pool)
                    .map(move |row| {
                        row.and_then(|row| {
                            let amount: $amount = row.try_get(2)?;
                            Ok(AmountRow {
                                status: row.try_get(0)?,
                                date: row.try_get(1)?,
                                amount: $from_amount(amount)
                                    .map_err(|e| sqlx::Error::Decode(e.into()))?,
                                currency: row.try_get(3)?,
                            })
                        })
                        .map_err(|e| err(location, "reading amounts", e))
                    })
                    .boxed()
            }

            fn export_row(row: &<$db as sqlx::Database>::Row) -> Result<ExportRow, sqlx::Error> {
                let amount: $amount = row.try_get(8)?;
                let decimal =
                    |a: $amount| $from_amount(a).map_err(|e| sqlx::Error::Decode(e.into()));
                let named = row.columns().len() > 17;
                let exported = match if named {
                    row.try_get::<Option<String>, _>(17)?
                } else {
                    None
                } {
                    None => None,
                    Some(fingerprint) => {
                        let amount: $amount = row.try_get(21)?;
                        Some(ExportedVersion {
                            fingerprint,
                            format: row.try_get(18)?,
                            status: row.try_get(19)?,
                            date: row.try_get(20)?,
                            amount: decimal(amount)?,
                            currency: row.try_get(22)?,
                            label: row.try_get(23)?,
                            exported_at: row.try_get(24)?,
                        })
                    }
                };
                Ok(ExportRow {
                    row: TransactionRow {
                        profile: row.try_get(0)?,
                        iban: row.try_get(1)?,
                        account_name: row.try_get(2)?,
                        stable_id: row.try_get(3)?,
                        status: row.try_get(4)?,
                        booking_date: row.try_get(5)?,
                        value_date: row.try_get(6)?,
                        transaction_date: row.try_get(7)?,
                        amount: decimal(amount)?,
                        currency: row.try_get(9)?,
                        credit_debit: row.try_get(10)?,
                        label: row.try_get(11)?,
                        counterparty: row.try_get(12)?,
                        entry_reference: row.try_get(13)?,
                        first_seen: row.try_get(14)?,
                        last_seen: row.try_get(15)?,
                        raw_json: row.try_get(16)?,
                        psu: None,
                    },
                    exported,
                })
            }

            pub(crate) fn rows<'a>(
                pool: &'a Pool,
                location: &'a str,
                account_id: &str,
                filter: &RowFilter,
            ) -> BoxStream<'a, Result<ExportRow, StoreError>> {
                let status = |i: usize| {
                    filter
                        .statuses
                        .get(i)
                        .or(filter.statuses.first())
                        .map(|s| s.code())
                };
                let query = match &filter.since_last {
                    Some(name) => sqlx::query(ROWS)
                        .bind(account_id.to_owned())
                        .bind(name.clone()),
                    None => sqlx::query(ROWS_UNNAMED).bind(account_id.to_owned()),
                };
                query
                    .bind(filter.from)
                    .bind(filter.to)
                    .bind(status(0))
                    .bind(status(1))
                    .bind(status(2))
                    .fetch(pool)
                    .map(move |row| {
                        row.and_then(|row| export_row(&row))
                            .map_err(|e| err(location, "reading transactions to export", e))
                    })
                    .boxed()
            }

            pub(crate) async fn begin(pool: &Pool) -> Result<Tx, sqlx::Error> {
                $begin(pool).await
            }

            pub(crate) async fn record(
                tx: &mut Tx,
                name: &str,
                format: &str,
                rows: &[Pending],
                now: OffsetDateTime,
            ) -> Result<(), sqlx::Error> {
                for chunk in rows.chunks(RECORD_CHUNK) {
                    let mut q = QueryBuilder::<$db>::new(RECORD);
                    q.push_values(chunk, |mut b, p| {
                        b.push_bind(name)
                            .push_bind(&p.account_id)
                            .push_bind(&p.stable_id)
                            .push_bind(format)
                            .push_bind(&p.fingerprint)
                            .push_bind(&p.status)
                            .push_bind(p.date)
                            .push_bind($to_amount(p.amount))
                            .push_bind(&p.currency)
                            .push_bind(p.label.as_deref())
                            .push_bind(now);
                    });
                    q.push(RECORD_CONFLICT);
                    q.build().execute(&mut **tx).await?;
                }
                Ok(())
            }
        }
    };
}

async fn begin_sqlite(
    pool: &sqlx::SqlitePool,
) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
    // IMMEDIATE: the write lock now, waiting up to the busy timeout, rather than a failure
    // later when another process wrote in between.
    pool.begin_with("BEGIN IMMEDIATE").await
}

async fn begin_postgres(
    pool: &sqlx::PgPool,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
    pool.begin().await
}

fn text(d: Decimal) -> String {
    d.to_string()
}

fn from_text(s: String) -> Result<Decimal, String> {
    s.parse::<Decimal>()
        .map_err(|e| format!("amount `{s}` is not a decimal: {e}"))
}

fn same(d: Decimal) -> Decimal {
    d
}

fn ok(d: Decimal) -> Result<Decimal, String> {
    Ok(d)
}

export_backend!(sqlite, sqlx::Sqlite, String, text, from_text, begin_sqlite);
export_backend!(postgres, sqlx::Postgres, Decimal, same, ok, begin_postgres);

enum RecordTx {
    Sqlite(sqlite::Tx),
    Postgres(postgres::Tx),
}

/// The record of one export under a `--since-last` name: rows are added as they are written
/// and land in the store only at [`ExportRecord::commit`]. Dropped without a commit, it
/// records nothing.
pub struct ExportRecord {
    tx: RecordTx,
    name: String,
    format: String,
    buffer: Vec<Pending>,
    location: String,
    now: OffsetDateTime,
    recorded: u64,
}

impl std::fmt::Debug for ExportRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportRecord")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("recorded", &self.recorded)
            .finish_non_exhaustive()
    }
}

impl ExportRecord {
    /// Notes that `row` of the account `account_id` was written.
    pub async fn add(&mut self, account_id: &str, row: &TransactionRow) -> Result<(), StoreError> {
        self.buffer.push(Pending {
            account_id: account_id.to_owned(),
            stable_id: row.stable_id.clone(),
            fingerprint: fingerprint(row),
            status: row.status.clone(),
            date: row.booking_date.or(row.transaction_date).or(row.value_date),
            amount: row.amount,
            currency: row.currency.clone(),
            label: row.label.clone(),
        });
        self.recorded += 1;
        if self.buffer.len() >= RECORD_CHUNK {
            self.flush().await?;
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), StoreError> {
        let rows = std::mem::take(&mut self.buffer);
        let result = match &mut self.tx {
            RecordTx::Sqlite(tx) => {
                sqlite::record(tx, &self.name, &self.format, &rows, self.now).await
            }
            RecordTx::Postgres(tx) => {
                postgres::record(tx, &self.name, &self.format, &rows, self.now).await
            }
        };
        result.map_err(|e| crate::classify(&self.location, "recording the export", e))
    }

    /// Rows added so far.
    pub fn recorded(&self) -> u64 {
        self.recorded
    }

    /// Records everything added, in one database transaction.
    pub async fn commit(mut self) -> Result<u64, StoreError> {
        self.flush().await?;
        let location = self.location.clone();
        let result = match self.tx {
            RecordTx::Sqlite(tx) => tx.commit().await,
            RecordTx::Postgres(tx) => tx.commit().await,
        };
        result.map_err(|e| crate::classify(&location, "recording the export", e))?;
        Ok(self.recorded)
    }
}

impl Store {
    /// The accounts an export of `profile` (all when `None`) and `account` (an IBAN or a
    /// resource id; all when `None`) covers, ordered by profile and key, with their balance
    /// snapshots; `exported_before` says whether anything of each was recorded under
    /// `since_last`.
    pub async fn export_accounts(
        &self,
        profile: Option<&str>,
        account: Option<&str>,
        since_last: Option<&str>,
    ) -> Result<Vec<ExportAccount>, StoreError> {
        match &self.pool {
            Pool::Sqlite(p) => {
                sqlite::accounts(p, &self.location, profile, account, since_last).await
            }
            Pool::Postgres(p) => {
                postgres::accounts(p, &self.location, profile, account, since_last).await
            }
        }
        .map_err(|e| self.fix(e))
    }

    /// Status, date, amount and currency of every stored transaction of an account, in no
    /// particular order: what an exporter sums for opening balances.
    pub fn account_amounts<'a>(
        &'a self,
        account_id: &str,
    ) -> BoxStream<'a, Result<AmountRow, StoreError>> {
        match &self.pool {
            Pool::Sqlite(p) => sqlite::amounts(p, &self.location, account_id),
            Pool::Postgres(p) => postgres::amounts(p, &self.location, account_id),
        }
    }

    /// The rows of an account that `filter` selects, by date (then first seen, then stable
    /// id), one at a time, each with its version in the export ledger of
    /// `filter.since_last`.
    pub fn export_rows<'a>(
        &'a self,
        account_id: &str,
        filter: &RowFilter,
    ) -> BoxStream<'a, Result<ExportRow, StoreError>> {
        match &self.pool {
            Pool::Sqlite(p) => sqlite::rows(p, &self.location, account_id, filter),
            Pool::Postgres(p) => postgres::rows(p, &self.location, account_id, filter),
        }
    }

    /// Opens the record of an export under `name` in `format`. In SQLite this holds the
    /// write lock until it is committed or dropped (readers never wait).
    pub async fn begin_export_record(
        &self,
        name: &str,
        format: &str,
    ) -> Result<ExportRecord, StoreError> {
        let tx = match &self.pool {
            Pool::Sqlite(p) => sqlite::begin(p).await.map(RecordTx::Sqlite),
            Pool::Postgres(p) => postgres::begin(p).await.map(RecordTx::Postgres),
        }
        .map_err(|e| self.fix(crate::classify(&self.location, "recording the export", e)))?;
        Ok(ExportRecord {
            tx,
            name: name.to_owned(),
            format: format.to_owned(),
            buffer: Vec::new(),
            location: self.location.clone(),
            now: OffsetDateTime::now_utc(),
            recorded: 0,
        })
    }
}
