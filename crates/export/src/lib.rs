//! # stet-export
//!
//! The store's transactions in the formats accounting tools import: beancount, ledger and
//! hledger (one journal both accept), OFX (1.02 SGML in Windows-1252, or 2.2 XML), QIF,
//! ISO 20022 camt.053 (`.001.02` by default, any later version on request), and CSV, JSON
//! and NDJSON with the store's columns.
//!
//! The formatters are pure: they take [`AccountPlan`]s and store rows
//! ([`stet_store::TransactionRow`]) and write to an [`std::io::Write`]. No database, no
//! network. The caller (the `stet export` command) reads the store account by account and
//! calls a [`Writer`] in this order:
//!
//! ```text
//! begin(plan)
//!   begin_account(account)  transaction(account, row)*  end_account(account)   (per account)
//! finish(plan)
//! ```
//!
//! Each call writes at once: memory stays flat whatever the number of rows.
//!
//! ## Ids that never move
//!
//! Every format carries the store's stable id (`s1-…`, 35 characters of `[a-z0-9-]`) where it
//! has a place for one, because that is what importers deduplicate on: beancount metadata
//! `stet-id`, a `stet-id` tag in ledger/hledger (and `ofxid`, ledger-autosync's key), OFX
//! `FITID`, camt `NtryRef` and `AcctSvcrRef`, QIF `N`, a column in CSV and JSON.
//!
//! ## Balances the tools check
//!
//! [`BalanceBuilder`] turns an account's balance snapshots (one per sync) and its stored
//! amounts into an opening balance for the export's first day, the assertions the bank's
//! snapshots give, and a closing balance: beancount `balance` directives (with a tolerance
//! that catches one cent), ledger/hledger posting assertions, OFX `LEDGERBAL`, camt opening
//! and closing `Bal`. The accounting tool itself then checks that nothing is missing.
//!
//! ## Example
//!
//! ```
//! use stet_export::{AccountPlan, ExportPlan, Format, Options, writer};
//! let plan = ExportPlan::new(Vec::new(), Options::default());
//! let mut out = Vec::new();
//! let mut w = writer(Format::Beancount, &plan.options);
//! w.begin(&mut out, &plan).unwrap();
//! w.finish(&mut out, &plan).unwrap();
//! assert!(String::from_utf8(out).unwrap().contains("stet export"));
//! ```

mod balance;
mod beancount;
mod camt;
mod ledger;
mod ofx;
mod qif;
mod tabular;
mod text;

use std::io::{self, Write};

use rust_decimal::Decimal;
use stet_store::{ExportAccount, TransactionRow};
use time::{Date, OffsetDateTime};

pub use balance::BalanceBuilder;
pub use text::{cp1252, rib_split};

/// An export format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// beancount (checked with `bean-check`).
    Beancount,
    /// A ledger journal (`ledger --pedantic`).
    Ledger,
    /// The same journal, for hledger (`hledger check -s`).
    Hledger,
    /// OFX bank statement.
    Ofx,
    /// QIF `!Type:Bank` (lossy: no currency, few importers keep an id).
    Qif,
    /// ISO 20022 camt.053 BankToCustomerStatement.
    Camt053,
    /// CSV (RFC 4180), the store's columns.
    Csv,
    /// One JSON array of rows.
    Json,
    /// One JSON object per line.
    Ndjson,
}

impl Format {
    /// The name on the command line and in the export ledger.
    pub fn name(self) -> &'static str {
        match self {
            Format::Beancount => "beancount",
            Format::Ledger => "ledger",
            Format::Hledger => "hledger",
            Format::Ofx => "ofx",
            Format::Qif => "qif",
            Format::Camt053 => "camt053",
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Ndjson => "ndjson",
        }
    }

    /// Whether the format can mark a transaction as pending (beancount and ledger `!`, camt
    /// `PDNG`, the status column of CSV and JSON). OFX and QIF cannot: an importer would
    /// book a pending transaction it can never take back.
    pub fn marks_pending(self) -> bool {
        !matches!(self, Format::Ofx | Format::Qif)
    }

    /// Whether the format states balances.
    pub fn has_balances(self) -> bool {
        matches!(
            self,
            Format::Beancount | Format::Ledger | Format::Hledger | Format::Ofx | Format::Camt053
        )
    }
}

/// OFX flavour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OfxVersion {
    /// OFX 1.02: SGML, Windows-1252 (what libofx, ofxparse and most importers read best).
    #[default]
    V102,
    /// OFX 2.2: XML, UTF-8.
    V220,
}

/// QIF date layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QifDates {
    /// `DD/MM/YYYY` (Europe).
    #[default]
    DayFirst,
    /// `MM/DD/YYYY` (United States).
    MonthFirst,
}

/// The ledger accounts on the other side of each transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CounterAccounts {
    /// For money out (default `Expenses:Unknown`).
    pub expenses: String,
    /// For money in (default `Income:Unknown`).
    pub income: String,
    /// For opening balances (default `Equity:Opening-Balances`).
    pub opening: String,
}

impl Default for CounterAccounts {
    fn default() -> Self {
        CounterAccounts {
            expenses: "Expenses:Unknown".into(),
            income: "Income:Unknown".into(),
            opening: "Equity:Opening-Balances".into(),
        }
    }
}

/// How to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// When the export is made (OFX `DTSERVER`, camt `CreDtTm`).
    pub created: OffsetDateTime,
    /// Counter accounts (beancount, ledger, hledger).
    pub counter: CounterAccounts,
    /// OFX flavour.
    pub ofx_version: OfxVersion,
    /// camt.053 message version: 2 for `camt.053.001.02` … 14.
    pub camt_version: u8,
    /// QIF date layout.
    pub qif_dates: QifDates,
    /// Write the directives that declare accounts, commodities and tags (beancount `open`,
    /// ledger `account`/`commodity`/`tag`). Off when appending to a file that has them.
    pub declare: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            created: OffsetDateTime::UNIX_EPOCH,
            counter: CounterAccounts::default(),
            ofx_version: OfxVersion::default(),
            camt_version: 2,
            qif_dates: QifDates::default(),
            declare: true,
        }
    }
}

/// The camt.053 versions that can be written.
pub const CAMT_VERSIONS: std::ops::RangeInclusive<u8> = 2..=14;

/// A balance at the end of a day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Balance {
    /// The day it is the balance at the end of.
    pub date: Date,
    /// Signed amount.
    pub amount: Decimal,
    /// ISO 4217.
    pub currency: String,
}

/// One account of an export: what the writers need before its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountPlan {
    /// The stored account.
    pub account: ExportAccount,
    /// Its name in the books (`[export.accounts]`, else `Assets:Bank:<Bank>:<last 4>`).
    pub ledger_name: String,
    /// Its currency.
    pub currency: String,
    /// Every currency its rows use, its own first.
    pub currencies: Vec<String>,
    /// The balance before the export's first day (the end of the day before `start`): an
    /// opening entry. `None` when it cannot be known, or when the books already have it.
    pub opening: Option<Balance>,
    /// Balances the bank gave, within the export's days: assertions.
    pub assertions: Vec<Balance>,
    /// The balance at the end of the export's last day, when known.
    pub closing: Option<Balance>,
    /// The first and last day the export covers for this account.
    pub start: Option<Date>,
    /// See `start`.
    pub end: Option<Date>,
}

impl AccountPlan {
    /// The IBAN, or the account's key when the bank gave none.
    pub fn id_text(&self) -> &str {
        self.account
            .iban
            .as_deref()
            .unwrap_or(&self.account.account_key)
    }

    /// The default name in the books: `Assets:Bank:<Bank>:<last 4 of the IBAN>`.
    pub fn default_ledger_name(account: &ExportAccount) -> String {
        let bank = text::account_component(&account.bank);
        let tail: String = account
            .iban
            .as_deref()
            .unwrap_or(&account.account_key)
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect();
        let last4 = &tail[tail.len().saturating_sub(4)..];
        format!(
            "Assets:Bank:{bank}:{}",
            text::account_component(if last4.is_empty() { "Account" } else { last4 })
        )
    }
}

/// Everything an export covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportPlan {
    /// The accounts, in the order they are written.
    pub accounts: Vec<AccountPlan>,
    /// How to write.
    pub options: Options,
}

impl ExportPlan {
    /// A plan of `accounts` written with `options`.
    pub fn new(accounts: Vec<AccountPlan>, options: Options) -> Self {
        ExportPlan { accounts, options }
    }

    /// The first day any account covers.
    pub fn start(&self) -> Option<Date> {
        self.accounts.iter().filter_map(|a| a.start).min()
    }

    /// Every currency used, sorted.
    pub fn currencies(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .accounts
            .iter()
            .flat_map(|a| a.currencies.iter().cloned())
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

/// Why a name given in the configuration cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExportError {
    /// A ledger account name that beancount, ledger or hledger would refuse.
    #[error(
        "`{name}` is not an account name the accounting tools accept: use components joined \
         by `:`, each starting with a capital letter or a digit, without spaces, e.g. \
         Assets:Bank:Boursorama:Courant"
    )]
    BadAccountName {
        /// The name.
        name: String,
    },
}

/// Checks a ledger account name: beancount's rules (the strictest of the three tools).
pub fn check_account_name(name: &str) -> Result<(), ExportError> {
    let bad = || ExportError::BadAccountName {
        name: name.to_owned(),
    };
    let parts: Vec<&str> = name.split(':').collect();
    if parts.len() < 2 {
        return Err(bad());
    }
    let roots = ["Assets", "Liabilities", "Equity", "Income", "Expenses"];
    if !roots.contains(&parts[0]) {
        return Err(bad());
    }
    for p in parts {
        let mut chars = p.chars();
        match chars.next() {
            Some(c) if c.is_uppercase() || c.is_ascii_digit() => {}
            _ => return Err(bad()),
        }
        if !chars.all(|c| c.is_alphanumeric() || c == '-') {
            return Err(bad());
        }
    }
    Ok(())
}

/// Writes one format. See the crate manual for the order of calls.
pub trait Writer {
    /// Writes what comes before the first account (headers, declarations).
    fn begin(&mut self, out: &mut dyn Write, plan: &ExportPlan) -> io::Result<()>;
    /// Writes what comes before an account's rows (its statement header, opening balance).
    fn begin_account(&mut self, out: &mut dyn Write, account: &AccountPlan) -> io::Result<()>;
    /// Writes one row of the account.
    fn transaction(
        &mut self,
        out: &mut dyn Write,
        account: &AccountPlan,
        row: &TransactionRow,
    ) -> io::Result<()>;
    /// Writes what comes after an account's rows (balances left, statement end).
    fn end_account(&mut self, out: &mut dyn Write, account: &AccountPlan) -> io::Result<()>;
    /// Writes what comes after the last account.
    fn finish(&mut self, out: &mut dyn Write, plan: &ExportPlan) -> io::Result<()>;
}

/// The writer of `format`.
pub fn writer(format: Format, options: &Options) -> Box<dyn Writer> {
    match format {
        Format::Beancount => Box::new(beancount::Beancount::default()),
        Format::Ledger | Format::Hledger => Box::new(ledger::Ledger::default()),
        Format::Ofx => Box::new(ofx::Ofx::new(options.ofx_version)),
        Format::Qif => Box::new(qif::Qif::new(options.qif_dates)),
        Format::Camt053 => Box::new(camt::Camt::new(options.camt_version)),
        Format::Csv => Box::new(tabular::Tabular::csv()),
        Format::Json => Box::new(tabular::Tabular::json()),
        Format::Ndjson => Box::new(tabular::Tabular::ndjson()),
    }
}

/// The date a row is booked at in the books: booking date, else transaction date, else
/// value date.
pub fn row_date(row: &TransactionRow) -> Option<Date> {
    row.booking_date.or(row.transaction_date).or(row.value_date)
}

/// The counter account of a row: expenses for money out, income for money in.
pub fn counter_account<'a>(counter: &'a CounterAccounts, row: &TransactionRow) -> &'a str {
    if row.amount.is_sign_negative() {
        &counter.expenses
    } else {
        &counter.income
    }
}

/// Balances whose day has passed by the time a row dated `date` is written: the writers
/// that interleave assertions with rows call it before each row.
pub(crate) fn due<'a>(
    assertions: &'a [Balance],
    next: &mut usize,
    before: Option<Date>,
) -> &'a [Balance] {
    let start = *next;
    while *next < assertions.len() && before.is_none_or(|d| assertions[*next].date < d) {
        *next += 1;
    }
    &assertions[start..*next]
}
