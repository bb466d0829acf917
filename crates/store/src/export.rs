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
    /// `BOOK`, `PDNG`, `EXPD` or `DELD`.
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

impl RowFilter {
    /// The `i`-th status code the queries bind (of three): the statuses asked for, the
    /// first repeated to fill the three; `None` for all.
    fn status(&self, i: usize) -> Option<&'static str> {
        self.statuses
            .get(i)
            .or(self.statuses.first())
            .map(|s| s.code())
    }
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
/// Where [`ROWS`] (and SQLite's packed read of the same columns) takes an account's rows
/// from, with the export ledger of the name `$2`: the filter is `$3`–`$7`. A row exported
/// under the name comes whatever its status now (a booked one the bank deleted, a pending
/// one expired), so that the change is reported, not lost.
macro_rules! rows_named_where {
    () => {
        " FROM transactions t JOIN accounts a ON a.id = t.account_id \
         LEFT JOIN export_ledger e ON e.name = $2 AND e.account_id = t.account_id AND e.stable_id = t.stable_id \
         WHERE t.account_id = $1 \
         AND ($3 IS NULL OR COALESCE(t.booking_date, t.transaction_date, t.value_date) >= $3) \
         AND ($4 IS NULL OR COALESCE(t.booking_date, t.transaction_date, t.value_date) < $4) \
         AND ($5 IS NULL OR t.status = $5 OR t.status = $6 OR t.status = $7 OR e.stable_id IS NOT NULL)"
    };
}
/// [`rows_named_where`] without the ledger: the filter is `$2`–`$6`.
macro_rules! rows_unnamed_where {
    () => {
        " FROM transactions t JOIN accounts a ON a.id = t.account_id \
         WHERE t.account_id = $1 \
         AND ($2 IS NULL OR COALESCE(t.booking_date, t.transaction_date, t.value_date) >= $2) \
         AND ($3 IS NULL OR COALESCE(t.booking_date, t.transaction_date, t.value_date) < $3) \
         AND ($4 IS NULL OR t.status = $4 OR t.status = $5 OR t.status = $6)"
    };
}
/// The order rows are exported in, which the index `transactions_export_order` walks.
macro_rules! rows_order {
    () => {
        " ORDER BY COALESCE(t.booking_date, t.transaction_date, t.value_date), t.first_seen, t.stable_id"
    };
}
const ROWS: &str = concat!(
    "SELECT a.profile, a.iban, a.name, t.stable_id, t.status, t.booking_date, t.value_date, \
     t.transaction_date, t.amount, t.currency, t.credit_debit, t.label, t.counterparty, t.entry_reference, \
     t.first_seen, t.last_seen, t.raw_json, \
     e.fingerprint, e.format, e.status, e.booking_date, e.amount, e.currency, e.label, e.exported_at",
    rows_named_where!(),
    rows_order!()
);
/// [`ROWS`] without the export ledger, for an export under no name: every column a row
/// reads costs a copy, and the ledger's eight would all be empty.
const ROWS_UNNAMED: &str = concat!(
    "SELECT a.profile, a.iban, a.name, t.stable_id, t.status, t.booking_date, t.value_date, \
     t.transaction_date, t.amount, t.currency, t.credit_debit, t.label, t.counterparty, t.entry_reference, \
     t.first_seen, t.last_seen, t.raw_json",
    rows_unnamed_where!(),
    rows_order!()
);
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

            // SQLite reads packed rows (`packed`, below); its tests compare the two.
            #[cfg_attr(not(test), allow(dead_code))]
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

            #[cfg_attr(not(test), allow(dead_code))]
            pub(crate) fn rows<'a>(
                pool: &'a Pool,
                location: &'a str,
                account_id: &str,
                filter: &RowFilter,
            ) -> BoxStream<'a, Result<ExportRow, StoreError>> {
                let query = match &filter.since_last {
                    Some(name) => sqlx::query(ROWS)
                        .bind(account_id.to_owned())
                        .bind(name.clone()),
                    None => sqlx::query(ROWS_UNNAMED).bind(account_id.to_owned()),
                };
                query
                    .bind(filter.from)
                    .bind(filter.to)
                    .bind(filter.status(0))
                    .bind(filter.status(1))
                    .bind(filter.status(2))
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

/// SQLite's rows to export, read a chunk of rows at a time, each chunk as one text value.
///
/// sqlx's SQLite driver steps the statement on a thread of its own, copies every column of
/// every row into a value allocated there and freed on the reader's thread, and wakes the
/// reader for each row: for a million rows of 17 columns, that traffic, not the database, was
/// most of an export's time (BENCHMARKS.md, Exports). Here SQLite packs each row's columns
/// into one value (`LEN:TEXT`, LEN in bytes, or `~` for NULL) and a chunk's packed rows into
/// one, so a chunk of [`CHUNK`] rows crosses between threads once. Chunks follow each other
/// by the export order's keys (a keyset, not an `OFFSET`, which would walk every row before
/// it again). PostgreSQL reads column by column.
mod packed {
    use super::*;
    use sqlx::Row as _;
    use time::format_description::well_known::Rfc3339;

    /// One column, packed (see the module).
    macro_rules! field {
        ($col:literal) => {
            concat!(
                "COALESCE(octet_length(",
                $col,
                ") || ':' || ",
                $col,
                ", '~')"
            )
        };
    }

    /// [`ROWS_UNNAMED`]'s columns, packed.
    macro_rules! row_fields {
        () => {
            concat!(
                field!("a.profile"),
                ", ",
                field!("a.iban"),
                ", ",
                field!("a.name"),
                ", ",
                field!("t.stable_id"),
                ", ",
                field!("t.status"),
                ", ",
                field!("t.booking_date"),
                ", ",
                field!("t.value_date"),
                ", ",
                field!("t.transaction_date"),
                ", ",
                field!("t.amount"),
                ", ",
                field!("t.currency"),
                ", ",
                field!("t.credit_debit"),
                ", ",
                field!("t.label"),
                ", ",
                field!("t.counterparty"),
                ", ",
                field!("t.entry_reference"),
                ", ",
                field!("t.first_seen"),
                ", ",
                field!("t.last_seen"),
                ", ",
                field!("t.raw_json")
            )
        };
    }

    /// Rows per chunk: one SQL row carries this many packed rows, concatenated (each packed
    /// row says where it ends). [`chunk_limit`] is the same number, for the SQL text.
    pub(super) const CHUNK: usize = 512;
    macro_rules! chunk_limit {
        () => {
            " LIMIT 512"
        };
    }

    /// A chunk: the `fields` of the rows `from_where` gives (each row packed as `p`), those
    /// `after` the last row read, in export order, concatenated as the subquery gives them,
    /// which is its order. SQLite does not promise that order to an aggregate (an `ORDER BY`
    /// inside `group_concat` does, but sorts every chunk again, and that cost a fifth of the
    /// reading), so the reader checks it: [`Order`].
    macro_rules! chunk {
        ($fields:expr, $from_where:expr, $after:expr) => {
            concat!(
                "SELECT group_concat(p, '') FROM (SELECT concat(",
                $fields,
                ") AS p",
                $from_where,
                $after,
                rows_order!(),
                chunk_limit!(),
                ")"
            )
        };
    }
    /// Rows after the last one read, whose date was `$d` (not NULL), first seen `$f`, stable
    /// id `$s`. The date alone bounds the index walk; the rest picks within that day.
    macro_rules! after_date {
        ($d:literal, $f:literal, $s:literal) => {
            concat!(
                " AND COALESCE(t.booking_date, t.transaction_date, t.value_date) >= ",
                $d,
                " AND (COALESCE(t.booking_date, t.transaction_date, t.value_date) > ",
                $d,
                " OR (t.first_seen, t.stable_id) > (",
                $f,
                ", ",
                $s,
                "))"
            )
        };
    }
    /// Rows after the last one read when it had no date (such rows come first): `$d` is
    /// bound to NULL.
    macro_rules! after_no_date {
        ($d:literal, $f:literal, $s:literal) => {
            concat!(
                " AND ",
                $d,
                " IS NULL AND (COALESCE(t.booking_date, t.transaction_date, t.value_date) IS NOT NULL \
                 OR (t.first_seen, t.stable_id) > (",
                $f,
                ", ",
                $s,
                "))"
            )
        };
    }
    macro_rules! named_fields {
        () => {
            concat!(
                row_fields!(),
                ", ",
                field!("e.fingerprint"),
                ", ",
                field!("e.format"),
                ", ",
                field!("e.status"),
                ", ",
                field!("e.booking_date"),
                ", ",
                field!("e.amount"),
                ", ",
                field!("e.currency"),
                ", ",
                field!("e.label"),
                ", ",
                field!("e.exported_at")
            )
        };
    }

    /// The statements for the first chunk, the chunk after a row with a date, and the chunk
    /// after a row without one: see [`pick`].
    type Chunks = [&'static str; 3];

    /// An account's rows under an export name (the filter `$1`–`$7`, the last row `$8`–`$10`).
    const NAMED_CHUNKS: Chunks = [
        chunk!(named_fields!(), rows_named_where!(), ""),
        chunk!(
            named_fields!(),
            rows_named_where!(),
            after_date!("$8", "$9", "$10")
        ),
        chunk!(
            named_fields!(),
            rows_named_where!(),
            after_no_date!("$8", "$9", "$10")
        ),
    ];
    /// The same without an export name (the filter `$1`–`$6`, the last row `$7`–`$9`).
    const UNNAMED_CHUNKS: Chunks = [
        chunk!(row_fields!(), rows_unnamed_where!(), ""),
        chunk!(
            row_fields!(),
            rows_unnamed_where!(),
            after_date!("$7", "$8", "$9")
        ),
        chunk!(
            row_fields!(),
            rows_unnamed_where!(),
            after_no_date!("$7", "$8", "$9")
        ),
    ];
    /// An account's amounts, with the keys of the export order (the amounts are summed, in
    /// no order, but the export order's index walks the table as it was written, where the
    /// primary key's order would read a page for every row). The last row is `$2`–`$4`.
    macro_rules! amount_fields {
        () => {
            concat!(
                field!("t.status"),
                ", ",
                field!("COALESCE(t.booking_date, t.transaction_date, t.value_date)"),
                ", ",
                field!("t.amount"),
                ", ",
                field!("t.currency"),
                ", ",
                field!("t.first_seen"),
                ", ",
                field!("t.stable_id")
            )
        };
    }
    macro_rules! amounts_where {
        () => {
            " FROM transactions t WHERE t.account_id = $1"
        };
    }
    const AMOUNT_CHUNKS: Chunks = [
        chunk!(amount_fields!(), amounts_where!(), ""),
        chunk!(
            amount_fields!(),
            amounts_where!(),
            after_date!("$2", "$3", "$4")
        ),
        chunk!(
            amount_fields!(),
            amounts_where!(),
            after_no_date!("$2", "$3", "$4")
        ),
    ];

    /// The statement of `chunks` for the chunk after `after`.
    fn pick(chunks: &Chunks, after: Option<&After>) -> &'static str {
        match after {
            None => chunks[0],
            Some(a) if a.date.is_some() => chunks[1],
            Some(_) => chunks[2],
        }
    }

    /// The fields of one packed row, in order.
    pub(super) struct Fields<'a> {
        rest: &'a str,
    }

    impl<'a> Fields<'a> {
        pub(super) fn new(packed: &'a str) -> Self {
            Fields { rest: packed }
        }

        /// The next field; `None` for NULL.
        pub(super) fn next(&mut self) -> Result<Option<&'a str>, String> {
            if let Some(rest) = self.rest.strip_prefix('~') {
                self.rest = rest;
                return Ok(None);
            }
            let (len, rest) = self.rest.split_once(':').ok_or("a packed row ends early")?;
            let len: usize = len
                .parse()
                .map_err(|_| format!("a packed field's length `{len}` is not a number"))?;
            let value = rest
                .get(..len)
                .ok_or("a packed field is shorter than its length")?;
            self.rest = &rest[len..];
            Ok(Some(value))
        }

        fn text(&mut self, what: &str) -> Result<String, String> {
            self.opt()?.ok_or_else(|| format!("{what} is NULL"))
        }

        fn opt(&mut self) -> Result<Option<String>, String> {
            Ok(self.next()?.map(str::to_owned))
        }

        fn date(&mut self) -> Result<Option<Date>, String> {
            date(self.next()?)
        }

        fn amount(&mut self) -> Result<Decimal, String> {
            from_text(self.text("an amount")?)
        }

        fn timestamp(&mut self, what: &str) -> Result<OffsetDateTime, String> {
            timestamp(self.next()?.ok_or_else(|| format!("{what} is NULL"))?, what)
        }
    }

    /// Where the next chunk starts: after the row whose sort keys these are, as stored.
    #[derive(Debug)]
    pub(super) struct After {
        date: Option<String>,
        first_seen: String,
        stable_id: String,
    }

    impl After {
        fn new((date, first_seen, stable_id): Key<'_>) -> Self {
            After {
                date: date.map(str::to_owned),
                first_seen: first_seen.to_owned(),
                stable_id: stable_id.to_owned(),
            }
        }

        /// Binds the three keys, in order.
        fn bind(&self, q: ChunkQuery) -> ChunkQuery {
            q.bind(self.date.clone())
                .bind(self.first_seen.clone())
                .bind(self.stable_id.clone())
        }
    }

    /// The sort keys of a row as stored: date (NULL first), first seen, stable id.
    type Key<'a> = (Option<&'a str>, &'a str, &'a str);

    /// Checks that a chunk's rows come in export order, as SQLite compares them (bytewise, as
    /// `str` does, NULL first, as `None` is), and keeps the last row's keys, where the next
    /// chunk starts. Out of order, a chunk would end at a row that is not its last and the
    /// next would repeat or skip rows: that is an error, never a wrong export.
    #[derive(Default)]
    struct Order<'a> {
        last: Option<Key<'a>>,
    }

    impl<'a> Order<'a> {
        fn next(&mut self, key: Key<'a>) -> Result<(), String> {
            if self.last.is_some_and(|last| last >= key) {
                return Err(format!(
                    "the database gave rows out of export order (at stable id {})",
                    key.2
                ));
            }
            self.last = Some(key);
            Ok(())
        }
    }

    /// One packed row from `f`, and its sort keys as stored.
    fn unpack_row<'a>(f: &mut Fields<'a>, named: bool) -> Result<(ExportRow, Key<'a>), String> {
        let profile = f.text("the profile")?;
        let iban = f.opt()?;
        let account_name = f.opt()?;
        let stable_id = f.next()?.ok_or("the stable id is NULL")?;
        let status = f.text("the status")?;
        let (booking, value, transaction) = (f.next()?, f.next()?, f.next()?);
        let amount = f.amount()?;
        let currency = f.text("the currency")?;
        let credit_debit = f.text("the credit/debit indicator")?;
        let label = f.opt()?;
        let counterparty = f.opt()?;
        let entry_reference = f.opt()?;
        let first_seen = f.next()?.ok_or("first_seen is NULL")?;
        let row = TransactionRow {
            profile,
            iban,
            account_name,
            stable_id: stable_id.to_owned(),
            status,
            booking_date: date(booking)?,
            value_date: date(value)?,
            transaction_date: date(transaction)?,
            amount,
            currency,
            credit_debit,
            label,
            counterparty,
            entry_reference,
            first_seen: timestamp(first_seen, "first_seen")?,
            last_seen: f.timestamp("last_seen")?,
            raw_json: f.text("the bank's JSON")?,
            psu: None,
        };
        let exported = if named {
            match f.opt()? {
                None => {
                    for _ in 0..7 {
                        f.next()?;
                    }
                    None
                }
                Some(fingerprint) => Some(ExportedVersion {
                    fingerprint,
                    format: f.text("the exported format")?,
                    status: f.text("the exported status")?,
                    date: f.date()?,
                    amount: f.amount()?,
                    currency: f.text("the exported currency")?,
                    label: f.opt()?,
                    exported_at: f.timestamp("exported_at")?,
                }),
            }
        } else {
            None
        };
        // The order's date: booked, else made, else valued on.
        let key = (booking.or(transaction).or(value), first_seen, stable_id);
        Ok((ExportRow { row, exported }, key))
    }

    /// The rows of a chunk, and where the next one starts (`None` for no rows).
    pub(super) fn unpack_rows(
        packed: &str,
        named: bool,
    ) -> Result<Option<(Vec<ExportRow>, After)>, String> {
        let mut f = Fields::new(packed);
        let mut rows = Vec::with_capacity(CHUNK);
        let mut order = Order::default();
        while !f.rest.is_empty() {
            let (row, key) = unpack_row(&mut f, named)?;
            rows.push(row);
            order.next(key)?;
        }
        Ok(order.last.map(|last| (rows, After::new(last))))
    }

    fn unpack_amounts(packed: &str) -> Result<Option<(Vec<AmountRow>, After)>, String> {
        let mut f = Fields::new(packed);
        let mut rows = Vec::with_capacity(CHUNK);
        let mut order = Order::default();
        while !f.rest.is_empty() {
            let status = f.text("the status")?;
            let day = f.next()?;
            rows.push(AmountRow {
                status,
                date: date(day)?,
                amount: f.amount()?,
                currency: f.text("the currency")?,
            });
            let first_seen = f.next()?.ok_or("first_seen is NULL")?;
            let stable_id = f.next()?.ok_or("the stable id is NULL")?;
            order.next((day, first_seen, stable_id))?;
        }
        Ok(order.last.map(|last| (rows, After::new(last))))
    }

    fn date(d: Option<&str>) -> Result<Option<Date>, String> {
        d.map(|d| {
            Date::parse(d, time::macros::format_description!("[year]-[month]-[day]"))
                .map_err(|e| format!("date `{d}`: {e}"))
        })
        .transpose()
    }

    /// A timestamp as sqlx writes it in SQLite (RFC 3339).
    fn timestamp(t: &str, what: &str) -> Result<OffsetDateTime, String> {
        OffsetDateTime::parse(t, &Rfc3339).map_err(|e| format!("{what} `{t}`: {e}"))
    }

    fn decode(e: String) -> sqlx::Error {
        sqlx::Error::Decode(e.into())
    }

    type ChunkQuery = sqlx::query::Query<'static, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

    /// A stream of what `query` reads chunk by chunk, in one read transaction (one snapshot,
    /// as a single statement would see).
    ///
    /// sqlx's SQLite driver hands each row from its worker thread to the reader's through a
    /// channel, waking the reader for each: a million rows one by one spent a fifth of an
    /// export in those wake-ups alone (BENCHMARKS.md, Exports). A chunk of [`CHUNK`] rows is
    /// one hand-over. A task of its own reads and unpacks the chunks a little ahead of the
    /// reader, so the database and the exporter keep working at once.
    ///
    /// `chunks` are the statements (see [`pick`]); `query` binds the filter to one of them
    /// (the last row's keys follow); `unpack` gives a chunk's items and where the next
    /// starts, from the chunk's packed rows.
    fn chunked<'a, T, Q, U>(
        pool: &sqlx::SqlitePool,
        location: &str,
        what: &'static str,
        chunks: &'static Chunks,
        query: Q,
        unpack: U,
    ) -> BoxStream<'a, Result<T, StoreError>>
    where
        T: Send + 'static,
        Q: Fn(&'static str) -> ChunkQuery + Send + 'static,
        U: Fn(&str) -> Result<Option<(Vec<T>, After)>, String> + Send + 'static,
    {
        let (sender, receiver) = tokio::sync::mpsc::channel(2);
        let (pool, location) = (pool.clone(), location.to_owned());
        let producer = async move {
            let fail = |e: sqlx::Error| crate::classify(&location, what, e);
            let mut tx = match pool.begin().await {
                Ok(tx) => tx,
                Err(e) => {
                    let _ = sender.send(Err(fail(e))).await;
                    return;
                }
            };
            let mut after: Option<After> = None;
            loop {
                let q = query(pick(chunks, after.as_ref()));
                let q = match &after {
                    Some(a) => a.bind(q),
                    None => q,
                };
                // No rows left: the aggregate is NULL.
                let chunk = q
                    .fetch_one(&mut *tx)
                    .await
                    .and_then(|row| match row.try_get::<Option<&str>, _>(0)? {
                        None => Ok(None),
                        Some(packed) => unpack(packed).map_err(decode),
                    })
                    .map_err(fail);
                let (items, next) = match chunk {
                    Ok(Some(chunk)) => chunk,
                    Ok(None) => return,
                    Err(e) => {
                        let _ = sender.send(Err(e)).await;
                        return;
                    }
                };
                // A short chunk is the last.
                let last = items.len() < CHUNK;
                // The reader gone (the export failed or stopped), there is no one to read for.
                if sender.send(Ok(items)).await.is_err() || last {
                    return;
                }
                after = Some(next);
            }
        };
        // The task starts with the first read, inside the caller's runtime.
        futures_util::stream::unfold(
            (Some(producer), receiver),
            |(producer, mut receiver)| async move {
                if let Some(producer) = producer {
                    tokio::spawn(producer);
                }
                let chunk = receiver.recv().await?;
                Some((chunk, (None, receiver)))
            },
        )
        .flat_map(|chunk| match chunk {
            Ok(items) => futures_util::stream::iter(items.into_iter().map(Ok)).left_stream(),
            Err(e) => futures_util::stream::once(async { Err(e) }).right_stream(),
        })
        .boxed()
    }

    pub(crate) fn rows<'a>(
        pool: &sqlx::SqlitePool,
        location: &str,
        account_id: &str,
        filter: &RowFilter,
    ) -> BoxStream<'a, Result<ExportRow, StoreError>> {
        let account_id = account_id.to_owned();
        let filter = filter.clone();
        let named = filter.since_last.is_some();
        let query = move |sql| {
            let mut q = sqlx::query(sql).bind(account_id.clone());
            if let Some(name) = &filter.since_last {
                q = q.bind(name.clone());
            }
            q.bind(filter.from)
                .bind(filter.to)
                .bind(filter.status(0))
                .bind(filter.status(1))
                .bind(filter.status(2))
        };
        chunked(
            pool,
            location,
            "reading transactions to export",
            if named {
                &NAMED_CHUNKS
            } else {
                &UNNAMED_CHUNKS
            },
            query,
            move |packed| unpack_rows(packed, named),
        )
    }

    pub(crate) fn amounts<'a>(
        pool: &sqlx::SqlitePool,
        location: &str,
        account_id: &str,
    ) -> BoxStream<'a, Result<AmountRow, StoreError>> {
        let account_id = account_id.to_owned();
        chunked(
            pool,
            location,
            "reading amounts",
            &AMOUNT_CHUNKS,
            move |sql| sqlx::query(sql).bind(account_id.clone()),
            unpack_amounts,
        )
    }
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
            Pool::Sqlite(p) => packed::amounts(p, &self.location, account_id),
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
            Pool::Sqlite(p) => packed::rows(p, &self.location, account_id, filter),
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

#[cfg(test)]
mod tests {
    use futures_util::TryStreamExt as _;
    use time::macros::date;

    use super::*;
    use crate::{
        AccountBatch, CreditDebit, IdPolicy, Location, ObservedAccount, ObservedBalance,
        ObservedTransaction, OpenOptions,
    };

    fn observed(n: usize, label: Option<&str>, counterparty: Option<&str>) -> ObservedTransaction {
        ObservedTransaction {
            status: if n.is_multiple_of(3) {
                Status::Pending
            } else {
                Status::Booked
            },
            booking_date: (n % 4 != 1).then_some(date!(2026 - 03 - 01)),
            value_date: n.is_multiple_of(2).then_some(date!(2026 - 03 - 02)),
            transaction_date: Some(date!(2026 - 02 - 28)),
            amount: Decimal::new(1234 + n as i64, 2),
            currency: "EUR".into(),
            credit_debit: if n.is_multiple_of(2) {
                CreditDebit::Credit
            } else {
                CreditDebit::Debit
            },
            label: label.map(str::to_owned),
            counterparty: counterparty.map(str::to_owned),
            entry_reference: (!n.is_multiple_of(5)).then(|| format!("E{n}")),
            raw_json: format!(r#"{{"n":{n},"t":"~12:34:~"}}"#),
        }
    }

    /// The packed reader gives exactly what reading column by column gives, whatever the
    /// text holds (the packing's own marks, digits and colons, several bytes a character,
    /// empty strings, NULLs), with and without an export ledger.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn packed_rows_read_as_columns_do() {
        let dir = tempfile::tempdir().unwrap();
        let location = Location::Sqlite(dir.path().join("stet.db"));
        let store = Store::open(&location, &OpenOptions::default())
            .await
            .unwrap();
        let labels = [
            Some("CB CAFÉ ~ 12:30"),
            Some(""),
            None,
            Some("3:abc"),
            Some("PIEROGARNIA ŁÓDŹ 🥟"),
            Some("~"),
        ];
        let transactions = labels
            .iter()
            .enumerate()
            .map(|(n, l)| {
                observed(
                    n,
                    *l,
                    if n.is_multiple_of(2) {
                        Some("Zoë:~")
                    } else {
                        None
                    },
                )
            })
            .collect();
        let run = store.begin_run("p", "test").await.unwrap();
        store
            .apply(
                &run,
                &AccountBatch {
                    profile: "p".into(),
                    bank: "b".into(),
                    account: ObservedAccount {
                        iban: Some("FR7630004000031234567890143".into()),
                        resource_id: "R1".into(),
                        name: None,
                        currency: Some("EUR".into()),
                    },
                    balances: vec![ObservedBalance {
                        balance_type: "CLBD".into(),
                        amount: Decimal::new(100, 0),
                        currency: "EUR".into(),
                        reference_date: None,
                        name: None,
                        raw_json: "{}".into(),
                    }],
                    transactions,
                    date_from: None,
                    policy: IdPolicy::default(),
                    calls: 0,
                    connection_id: None,
                },
            )
            .await
            .unwrap();
        let accounts = store.export_accounts(None, None, None).await.unwrap();
        let id = accounts[0].id.clone();
        let Pool::Sqlite(pool) = &store.pool else {
            unreachable!("a SQLite store")
        };
        let compare = |filter: RowFilter| {
            let store = &store;
            let id = id.clone();
            async move {
                let packed: Vec<ExportRow> =
                    store.export_rows(&id, &filter).try_collect().await.unwrap();
                let columns: Vec<ExportRow> = sqlite::rows(pool, "test", &id, &filter)
                    .try_collect()
                    .await
                    .unwrap();
                assert_eq!(packed, columns);
                packed
            }
        };
        let all = compare(RowFilter::default()).await;
        assert_eq!(all.len(), labels.len());
        // Recorded under a name: the ledger's columns come packed too.
        let mut record = store
            .begin_export_record("books", "beancount")
            .await
            .unwrap();
        for r in all.iter().take(4) {
            record.add(&id, &r.row).await.unwrap();
        }
        record.commit().await.unwrap();
        let named = compare(RowFilter {
            since_last: Some("books".into()),
            statuses: vec![Status::Booked, Status::Pending],
            ..RowFilter::default()
        })
        .await;
        assert_eq!(named.iter().filter(|r| r.exported.is_some()).count(), 4);
        // Amounts come in no particular order.
        let sorted = |mut rows: Vec<AmountRow>| {
            rows.sort_by_key(|a| (a.date, a.amount));
            rows
        };
        let amounts = sorted(store.account_amounts(&id).try_collect().await.unwrap());
        let by_column = sorted(
            sqlite::amounts(pool, "test", &id)
                .try_collect()
                .await
                .unwrap(),
        );
        assert_eq!(amounts, by_column);
        assert_eq!(amounts.len(), labels.len());

        // Several chunks: more rows than two chunks hold, many on one day (a chunk ends
        // inside the day) and more than a chunk with no date at all (they come first).
        let many = 2 * packed::CHUNK + packed::CHUNK / 2 + 7;
        let transactions = (0..many)
            .map(|n| {
                let mut t = observed(n, Some("CB MARCHÉ"), None);
                t.amount = Decimal::new(n as i64 + 1, 2);
                t.status = Status::Booked;
                if n % 2 == 0 {
                    (t.booking_date, t.value_date, t.transaction_date) = (None, None, None);
                } else {
                    t.booking_date =
                        Some(date!(2026 - 01 - 01) + time::Duration::days(n as i64 % 3));
                }
                t
            })
            .collect();
        let run = store.begin_run("p", "test").await.unwrap();
        store
            .apply(
                &run,
                &AccountBatch {
                    profile: "p".into(),
                    bank: "b".into(),
                    account: ObservedAccount {
                        iban: Some("FR7630006000011234567890189".into()),
                        resource_id: "R2".into(),
                        name: None,
                        currency: Some("EUR".into()),
                    },
                    balances: Vec::new(),
                    transactions,
                    date_from: None,
                    policy: IdPolicy::default(),
                    calls: 0,
                    connection_id: None,
                },
            )
            .await
            .unwrap();
        let accounts = store.export_accounts(None, None, None).await.unwrap();
        let id = accounts
            .iter()
            .find(|a| a.iban.as_deref() == Some("FR7630006000011234567890189"))
            .unwrap()
            .id
            .clone();
        let compare = |filter: RowFilter| {
            let store = &store;
            let id = id.clone();
            async move {
                let packed: Vec<ExportRow> =
                    store.export_rows(&id, &filter).try_collect().await.unwrap();
                let columns: Vec<ExportRow> = sqlite::rows(pool, "test", &id, &filter)
                    .try_collect()
                    .await
                    .unwrap();
                assert_eq!(packed.len(), columns.len());
                assert!(
                    packed == columns,
                    "chunked rows differ from rows read one by one"
                );
                packed
            }
        };
        assert_eq!(compare(RowFilter::default()).await.len(), many);
        let mut record = store.begin_export_record("books", "ofx").await.unwrap();
        for r in compare(RowFilter::default()).await.iter().step_by(3) {
            record.add(&id, &r.row).await.unwrap();
        }
        record.commit().await.unwrap();
        let named = compare(RowFilter {
            since_last: Some("books".into()),
            ..RowFilter::default()
        })
        .await;
        assert_eq!(
            named.iter().filter(|r| r.exported.is_some()).count(),
            many.div_ceil(3)
        );
        let from = compare(RowFilter {
            from: Some(date!(2026 - 01 - 02)),
            ..RowFilter::default()
        })
        .await;
        assert!(!from.is_empty() && from.len() < many / 2, "{}", from.len());
        let amounts = sorted(store.account_amounts(&id).try_collect().await.unwrap());
        let by_column = sorted(
            sqlite::amounts(pool, "test", &id)
                .try_collect()
                .await
                .unwrap(),
        );
        assert_eq!(amounts.len(), many);
        assert!(amounts == by_column, "chunked amounts differ");
    }

    #[test]
    fn a_damaged_packed_row_is_an_error_not_a_panic() {
        for bad in ["3:ab", "x:abc", "2:é", "~~", "1:a1:b"] {
            assert!(packed::unpack_rows(bad, false).is_err(), "{bad}");
        }
        assert!(packed::unpack_rows("", false).unwrap().is_none());
    }

    /// A chunk whose rows do not come in export order is refused: its last row would not be
    /// where the next chunk starts.
    #[test]
    fn a_chunk_out_of_export_order_is_an_error() {
        fn packed_row(stable_id: &str, booked: Option<&str>) -> String {
            let seen = "2026-01-02T03:04:05Z";
            [
                Some("bank"),
                None,
                None,
                Some(stable_id),
                Some("BOOK"),
                booked,
                None,
                None,
                Some("1.00"),
                Some("EUR"),
                Some("DBIT"),
                None,
                None,
                None,
                Some(seen),
                Some(seen),
                Some("{}"),
            ]
            .iter()
            .map(|f| f.map_or("~".to_owned(), |f| format!("{}:{f}", f.len())))
            .collect()
        }
        let (a, b) = (
            packed_row("a", Some("2026-01-01")),
            packed_row("b", Some("2026-01-01")),
        );
        let undated = packed_row("c", None);
        for good in [format!("{a}{b}"), format!("{undated}{a}")] {
            let (rows, _) = packed::unpack_rows(&good, false).unwrap().unwrap();
            assert_eq!(rows.len(), 2);
        }
        for bad in [
            format!("{b}{a}"),
            format!("{a}{a}"),
            format!("{a}{undated}"),
        ] {
            let e = packed::unpack_rows(&bad, false).unwrap_err();
            assert!(e.contains("out of export order"), "{e}");
        }
    }
}
