//! What goes into the store and what comes out of it.

use rust_decimal::Decimal;
use time::{Date, OffsetDateTime};

/// A transaction's status as the store keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    /// Booked (`BOOK`).
    Booked,
    /// Pending (`PDNG`).
    Pending,
    /// A pending transaction the bank stopped listing and no booked one claimed within the
    /// claim window (`EXPD`). Kept, never deleted.
    Expired,
    /// A stored transaction the source says the bank deleted (`DELD`; Powens' `deleted`).
    /// Kept with the source's JSON saying so, never removed; no export takes it.
    Deleted,
}

impl Status {
    /// The code in the store and the view: `BOOK`, `PDNG`, `EXPD` or `DELD`.
    pub fn code(self) -> &'static str {
        match self {
            Status::Booked => "BOOK",
            Status::Pending => "PDNG",
            Status::Expired => "EXPD",
            Status::Deleted => "DELD",
        }
    }

    /// The status of a code; `None` for an unknown one.
    pub fn from_code(code: &str) -> Option<Status> {
        match code {
            "BOOK" => Some(Status::Booked),
            "PDNG" => Some(Status::Pending),
            "EXPD" => Some(Status::Expired),
            "DELD" => Some(Status::Deleted),
            _ => None,
        }
    }
}

/// Credit or debit, as STET's `creditDebitIndicator` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CreditDebit {
    /// `CRDT`: money in.
    Credit,
    /// `DBIT`: money out.
    Debit,
}

impl CreditDebit {
    /// `CRDT` or `DBIT`.
    pub fn code(self) -> &'static str {
        match self {
            CreditDebit::Credit => "CRDT",
            CreditDebit::Debit => "DBIT",
        }
    }
}

/// An account as a source lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedAccount {
    /// The IBAN, when the bank gives one: the account's key in the store.
    pub iban: Option<String>,
    /// The bank's resource id for the account today (a link that may change).
    pub resource_id: String,
    /// The account's name.
    pub name: Option<String>,
    /// Its currency.
    pub currency: Option<String>,
}

impl ObservedAccount {
    /// The account's key: `iban:IBAN`, or `bank:BANK:RESOURCE_ID` without an IBAN.
    pub fn key(&self, bank: &str) -> String {
        match &self.iban {
            Some(iban) => format!("iban:{}", iban.replace(' ', "").to_ascii_uppercase()),
            None => format!("bank:{bank}:{}", self.resource_id),
        }
    }
}

/// A transaction as a source lists it, read from the bank's JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedTransaction {
    /// Booked or pending (a source never says expired).
    pub status: Status,
    /// When it was (or is expected to be) booked.
    pub booking_date: Option<Date>,
    /// Value date.
    pub value_date: Option<Date>,
    /// When the PSU made it.
    pub transaction_date: Option<Date>,
    /// The amount as the bank gives it, without sign (STET amounts are unsigned).
    pub amount: Decimal,
    /// ISO 4217.
    pub currency: String,
    /// Credit or debit.
    pub credit_debit: CreditDebit,
    /// The remittance information, as one line.
    pub label: Option<String>,
    /// The other party's name.
    pub counterparty: Option<String>,
    /// The bank's entry reference.
    pub entry_reference: Option<String>,
    /// The bank's JSON for this transaction, exactly as received.
    pub raw_json: String,
}

impl ObservedTransaction {
    /// The amount signed: negative for a debit.
    pub fn signed_amount(&self) -> Decimal {
        let a = self.amount.abs();
        match self.credit_debit {
            CreditDebit::Credit => a,
            CreditDebit::Debit => -a,
        }
    }

    /// The date the transaction is filed under: booking date, else transaction date, else
    /// value date.
    pub fn date(&self) -> Option<Date> {
        self.booking_date
            .or(self.transaction_date)
            .or(self.value_date)
    }

    /// The date a pending transaction is dated at: transaction date, else booking date, else
    /// value date.
    pub fn pending_date(&self) -> Option<Date> {
        self.transaction_date
            .or(self.booking_date)
            .or(self.value_date)
    }
}

/// One balance of an account, as the bank gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedBalance {
    /// `CLBD`, `XPCD`, `OTHR`, …
    pub balance_type: String,
    /// The amount, signed as the bank gives it.
    pub amount: Decimal,
    /// ISO 4217.
    pub currency: String,
    /// The date it refers to.
    pub reference_date: Option<Date>,
    /// The bank's name for it.
    pub name: Option<String>,
    /// The bank's JSON, exactly as received.
    pub raw_json: String,
}

/// How transactions of one bank are identified and reconciled: from the bank's profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdPolicy {
    /// The id recipe's namespace.
    pub namespace: crate::Namespace,
    /// The bank keeps entry references stable: ids are built from them.
    pub entry_reference_stable: bool,
    /// A booked transaction may claim a pending one dated up to this many days before it;
    /// a pending transaction not listed again after this many days is expired.
    pub claim_window_days: u32,
}

impl Default for IdPolicy {
    fn default() -> Self {
        IdPolicy {
            namespace: crate::Namespace::Stet1,
            entry_reference_stable: false,
            claim_window_days: 10,
        }
    }
}

/// Everything one sync learned about one account: written in one database transaction by
/// [`Store::apply`](crate::Store::apply), so a store never holds half of it.
#[derive(Debug, Clone)]
pub struct AccountBatch {
    /// The configuration profile the account was synced through.
    pub profile: String,
    /// The bank (its profile name), part of the key of accounts without an IBAN.
    pub bank: String,
    /// The account.
    pub account: ObservedAccount,
    /// Its balances now.
    pub balances: Vec<ObservedBalance>,
    /// Every transaction the bank listed for the window, in the bank's order.
    pub transactions: Vec<ObservedTransaction>,
    /// The window's first day (`dateFrom`); `None` when the bank chose (its default window).
    pub date_from: Option<Date>,
    /// How ids are made and pending transactions reconciled.
    pub policy: IdPolicy,
    /// The calls to the bank this account cost.
    pub calls: u64,
    /// The fleet connection (a PSU's consent) whose sync this is, recorded on the account;
    /// `None` for a person's own profile.
    pub connection_id: Option<i64>,
}

/// What [`Store::apply`](crate::Store::apply) did with an [`AccountBatch`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Transactions the bank listed.
    pub listed: u64,
    /// Rows added.
    pub new: u64,
    /// Rows whose content changed (a new label, a booked version, …).
    pub updated: u64,
    /// Pending rows that a booked transaction became (by claim or by the same id).
    pub booked_from_pending: u64,
    /// Pending rows marked expired.
    pub expired: u64,
    /// Stored rows marked deleted at the bank (`DELD`).
    pub deleted: u64,
    /// Listed transactions already stored unchanged.
    pub unchanged: u64,
}

/// Where a later sync of an account should start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AccountState {
    /// The account has been synced before.
    pub synced_before: bool,
    /// Its newest booked transaction's booking date.
    pub newest_booked: Option<Date>,
    /// The oldest date of its transactions still pending.
    pub oldest_pending: Option<Date>,
    /// When the newest sync run that wrote it started (by this machine's clock): a source
    /// that can list what changed since a time asks from there (see `stet-sync`).
    pub last_synced: Option<OffsetDateTime>,
}

/// A row of the `stet_transactions` view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionRow {
    /// The configuration profile.
    pub profile: String,
    /// The account's IBAN.
    pub iban: Option<String>,
    /// The account's name.
    pub account_name: Option<String>,
    /// The stable id.
    pub stable_id: String,
    /// `BOOK`, `PDNG` or `EXPD`.
    pub status: String,
    /// Booking date.
    pub booking_date: Option<Date>,
    /// Value date.
    pub value_date: Option<Date>,
    /// Transaction date.
    pub transaction_date: Option<Date>,
    /// Signed amount: negative for a debit.
    pub amount: Decimal,
    /// ISO 4217.
    pub currency: String,
    /// `CRDT` or `DBIT`.
    pub credit_debit: String,
    /// Remittance information.
    pub label: Option<String>,
    /// The other party.
    pub counterparty: Option<String>,
    /// The bank's entry reference (of the version shown).
    pub entry_reference: Option<String>,
    /// When stet first stored it.
    pub first_seen: OffsetDateTime,
    /// When a sync last saw it listed.
    pub last_seen: OffsetDateTime,
    /// The bank's JSON of the version shown, exactly as received.
    pub raw_json: String,
    /// The PSU, as the view's `psu` column: the fleet connection's name, else the profile's.
    /// Filled by [`Store::transactions`](crate::Store::transactions); `None` from readers
    /// that do not need it (exports).
    pub psu: Option<String>,
}

/// What [`Store::transactions`](crate::Store::transactions) returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryFilter {
    /// Only this profile.
    pub profile: Option<String>,
    /// Only this account: its IBAN or its current resource id.
    pub account: Option<String>,
    /// From this date, inclusive (booking date, else transaction date).
    pub from: Option<Date>,
    /// Until this date, exclusive.
    pub to: Option<Date>,
    /// Only these statuses (`BOOK`, `PDNG`, `EXPD`); all when empty.
    pub statuses: Vec<Status>,
    /// Only this PSU: a fleet connection's name, or a person's profile name (the view's
    /// `psu` column).
    pub psu: Option<String>,
}

/// An account as [`Store::info`](crate::Store::info) shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSummary {
    /// The profile.
    pub profile: String,
    /// The IBAN, or the bank's resource id.
    pub iban: Option<String>,
    /// The latest resource id.
    pub resource_id: Option<String>,
    /// The account's name.
    pub name: Option<String>,
    /// Rows stored.
    pub transactions: u64,
    /// When a sync last completed for it.
    pub last_sync: Option<OffsetDateTime>,
}

/// What [`Store::info`](crate::Store::info) tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreInfo {
    /// Where the store is (a password, if any, hidden).
    pub location: String,
    /// The database: `sqlite` or `postgres`.
    pub backend: &'static str,
    /// The newest migration applied.
    pub schema_version: i64,
    /// The newest migration this version of stet knows.
    pub known_schema_version: i64,
    /// Profiles with data.
    pub profiles: u64,
    /// Accounts.
    pub accounts: u64,
    /// Transactions by status: booked, pending, expired, deleted.
    pub booked: u64,
    /// Pending rows.
    pub pending: u64,
    /// Expired rows.
    pub expired: u64,
    /// Rows deleted at the bank (`DELD`).
    pub deleted: u64,
    /// Balance snapshots.
    pub balance_snapshots: u64,
    /// Sync runs recorded.
    pub sync_runs: u64,
    /// Each account and its last sync.
    pub account_list: Vec<AccountSummary>,
}

/// How a sync run ended, for [`Store::finish_run`](crate::Store::finish_run).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunOutcome {
    /// `ok`, `partial` (some accounts skipped or failed) or `failed`.
    pub outcome: &'static str,
    /// Calls made to the bank.
    pub calls: u64,
    /// What went wrong, when anything did.
    pub error: Option<String>,
}
