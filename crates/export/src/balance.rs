//! Opening balances, assertions and closing balances, from balance snapshots and amounts.
//!
//! A snapshot the bank gave at a sync is the truth at the end of its reference day. The
//! earliest one fixes the balance before any stored transaction (`snapshot − the booked
//! amounts up to its day`); from there, the balance at the end of any day is that plus the
//! booked amounts up to the day. Later snapshots are not computed: they are what the bank
//! said, so an assertion built from one fails in the accounting tool when a transaction is
//! missing or wrong.

use std::collections::{BTreeMap, BTreeSet};

use rust_decimal::Decimal;
use stet_store::{AmountRow, ExportAccount};
use time::{Date, Duration};

use crate::{AccountPlan, Balance};

/// The balance types that state booked money at the end of a day, best first: closing
/// booked, then interim booked.
const BOOKED_TYPES: [&str; 2] = ["CLBD", "ITBD"];

/// Builds an [`AccountPlan`] from an account and every amount stored for it.
#[derive(Debug, Clone)]
pub struct BalanceBuilder {
    account: ExportAccount,
    from: Option<Date>,
    to: Option<Date>,
    include_pending: bool,
    opening: bool,
    currency: String,
    daily: BTreeMap<Date, Decimal>,
    currencies: BTreeSet<String>,
    first: Option<Date>,
    last: Option<Date>,
    first_pending: Option<Date>,
}

impl BalanceBuilder {
    /// A builder for `account`, exporting the days from `from` (inclusive) to `to`
    /// (exclusive); `include_pending` when pending rows are written too; `opening` when the
    /// books need an opening balance (not when appending to books that have one).
    pub fn new(
        account: ExportAccount,
        from: Option<Date>,
        to: Option<Date>,
        include_pending: bool,
        opening: bool,
    ) -> Self {
        let currency = account
            .currency
            .clone()
            .or_else(|| {
                account
                    .balances
                    .iter()
                    .find(|b| BOOKED_TYPES.contains(&b.balance_type.as_str()))
                    .map(|b| b.currency.clone())
            })
            .unwrap_or_default();
        BalanceBuilder {
            account,
            from,
            to,
            include_pending,
            opening,
            currency,
            daily: BTreeMap::new(),
            currencies: BTreeSet::new(),
            first: None,
            last: None,
            first_pending: None,
        }
    }

    fn selected(&self, row: &AmountRow) -> bool {
        let status_ok = row.status == "BOOK" || (self.include_pending && row.status == "PDNG");
        let date_ok = match row.date {
            Some(d) => self.from.is_none_or(|f| d >= f) && self.to.is_none_or(|t| d < t),
            None => self.from.is_none() && self.to.is_none(),
        };
        status_ok && date_ok
    }

    /// Counts one stored transaction of the account (any status, any date).
    pub fn add(&mut self, row: &AmountRow) {
        if self.currency.is_empty() {
            self.currency = row.currency.clone();
        }
        if self.selected(row) {
            self.currencies.insert(row.currency.clone());
            if let Some(d) = row.date {
                self.first = Some(self.first.map_or(d, |f| f.min(d)));
                self.last = Some(self.last.map_or(d, |l| l.max(d)));
                if row.status == "PDNG" {
                    self.first_pending = Some(self.first_pending.map_or(d, |f| f.min(d)));
                }
            }
        }
        if row.status == "BOOK"
            && row.currency == self.currency
            && let Some(d) = row.date
        {
            *self.daily.entry(d).or_default() += row.amount;
        }
    }

    /// Booked amounts of the days up to `day`, inclusive.
    fn booked_through(&self, day: Date) -> Decimal {
        self.daily.range(..=day).map(|(_, a)| *a).sum()
    }

    /// The plan, with `ledger_name` as the account's name in the books.
    pub fn finish(self, ledger_name: String) -> AccountPlan {
        // The bank's booked balances, one per day (the latest fetched), oldest first.
        let kind = BOOKED_TYPES.iter().find(|k| {
            self.account
                .balances
                .iter()
                .any(|b| b.balance_type == **k && b.currency == self.currency)
        });
        let mut snapshots: BTreeMap<Date, Decimal> = BTreeMap::new();
        if let Some(kind) = kind {
            for b in &self.account.balances {
                if b.balance_type == *kind && b.currency == self.currency {
                    let day = b.reference_date.unwrap_or(b.fetched_at.date());
                    // Oldest fetched first: a later fetch of the same day wins.
                    snapshots.insert(day, b.amount);
                }
            }
        }
        let start = self.from.or(self.first);
        let end = match self.to {
            Some(t) => Some(t - Duration::days(1)),
            None => [self.last, snapshots.keys().next_back().copied()]
                .into_iter()
                .flatten()
                .max(),
        };
        // The balance before any stored transaction, from the earliest snapshot.
        let base = snapshots
            .iter()
            .next()
            .map(|(day, amount)| *amount - self.booked_through(*day));
        let balance = |day: Date| Balance {
            date: day,
            amount: base.unwrap_or_default() + self.booked_through(day),
            currency: self.currency.clone(),
        };
        let opening = match (self.opening, base, start) {
            (true, Some(_), Some(s)) => Some(balance(s - Duration::days(1))),
            _ => None,
        };
        let closing = match (base, end) {
            (Some(_), Some(e)) => Some(balance(e)),
            _ => None,
        };
        let assertions = snapshots
            .iter()
            .filter(|(day, _)| start.is_some_and(|s| **day >= s))
            .filter(|(day, _)| end.is_some_and(|e| **day <= e))
            // A pending row counts in the books from its date: a bank balance of booked money
            // after it would not match.
            .filter(|(day, _)| self.first_pending.is_none_or(|p| **day < p))
            .map(|(day, amount)| Balance {
                date: *day,
                amount: *amount,
                currency: self.currency.clone(),
            })
            .collect();
        let mut currencies = vec![self.currency.clone()];
        currencies.extend(self.currencies.into_iter().filter(|c| *c != self.currency));
        currencies.retain(|c| !c.is_empty());
        AccountPlan {
            account: self.account,
            ledger_name,
            currency: self.currency,
            currencies,
            opening,
            assertions,
            closing,
            start,
            end,
        }
    }
}
