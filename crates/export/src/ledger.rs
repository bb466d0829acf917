//! One journal that both ledger (`--pedantic`) and hledger (`check -s`) accept: `account`,
//! `commodity` and `tag` directives first, then one transaction per row with the stable id
//! as a `stet-id` tag and ledger-autosync's `ofxid` on the bank posting (one tag per line:
//! hledger ends a tag's value at a comma, ledger does not), the value date as the auxiliary
//! date, and the bank's balances as posting assertions.
//!
//! Assertions are checked in date order by hledger and in file order by ledger: each one is
//! written, dated the day after the balance it states, before the first row of a later day.

use std::io::{self, Write};

use stet_store::TransactionRow;
use time::Duration;

use crate::text::one_line;
use crate::{AccountPlan, Balance, ExportPlan, Writer, counter_account, due, row_date};

#[derive(Debug, Default)]
pub(crate) struct Ledger {
    counter: crate::CounterAccounts,
    next_assertion: usize,
}

/// A description on one line that neither tool reads as a comment or a code.
fn description(text: &str) -> String {
    let mut text = one_line(text).replace(';', ",");
    if text.starts_with('(') {
        text.replace_range(..1, "[");
    }
    if text.is_empty() {
        text = "no label".into();
    }
    text
}

/// ledger-autosync's id of an OFX transaction: `FID.ACCTID.FITID`, as stet's OFX writes them.
pub(crate) fn ofxid(a: &AccountPlan, stable_id: &str) -> String {
    let (fid, acctid) = crate::ofx::fid_and_acctid(a);
    format!("{fid}.{acctid}.{stable_id}")
}

fn assertion(out: &mut dyn Write, a: &AccountPlan, b: &Balance) -> io::Result<()> {
    writeln!(
        out,
        "{} * Balance at the bank, end of {}\n    {}  0 {} = {} {}\n",
        b.date + Duration::days(1),
        b.date,
        a.ledger_name,
        b.currency,
        b.amount,
        b.currency
    )
}

impl Writer for Ledger {
    fn begin(&mut self, out: &mut dyn Write, plan: &ExportPlan) -> io::Result<()> {
        self.counter = plan.options.counter.clone();
        writeln!(
            out,
            "; stet export: the store's transactions, each with its stable id as `stet-id`.\n"
        )?;
        if plan.options.declare {
            let c = &plan.options.counter;
            for name in [&c.opening, &c.expenses, &c.income] {
                writeln!(out, "account {name}")?;
            }
            for tag in ["stet-id", "ofxid"] {
                writeln!(out, "tag {tag}")?;
            }
        }
        // Declaring twice is allowed by both tools: an appended export declares what it uses.
        for a in &plan.accounts {
            writeln!(out, "account {}", a.ledger_name)?;
        }
        for c in plan.currencies() {
            writeln!(out, "commodity {c}")?;
        }
        writeln!(out)
    }

    fn begin_account(&mut self, out: &mut dyn Write, a: &AccountPlan) -> io::Result<()> {
        self.next_assertion = 0;
        if let Some(o) = &a.opening {
            writeln!(
                out,
                "{} * Opening balance\n    {}  {} {}\n    {}\n",
                o.date, a.ledger_name, o.amount, o.currency, self.counter.opening
            )?;
        }
        Ok(())
    }

    fn transaction(
        &mut self,
        out: &mut dyn Write,
        a: &AccountPlan,
        row: &TransactionRow,
    ) -> io::Result<()> {
        let Some(date) = row_date(row) else {
            return Ok(());
        };
        for b in due(&a.assertions, &mut self.next_assertion, Some(date)) {
            assertion(out, a, b)?;
        }
        let flag = if row.status == "BOOK" { '*' } else { '!' };
        let label = row.label.as_deref().unwrap_or_default();
        let text = match row.counterparty.as_deref().filter(|c| !c.trim().is_empty()) {
            Some(payee) => format!("{} | {}", one_line(payee).replace('|', "/"), label),
            None => label.to_owned(),
        };
        match row.value_date.filter(|v| *v != date) {
            Some(v) => write!(out, "{date}={v}")?,
            None => write!(out, "{date}")?,
        }
        writeln!(
            out,
            " {flag} {}\n    ; stet-id: {}\n    {}  {} {}\n    ; ofxid: {}\n    {}  {} {}\n",
            description(&text),
            row.stable_id,
            a.ledger_name,
            row.amount,
            row.currency,
            ofxid(a, &row.stable_id),
            counter_account(&self.counter, row),
            -row.amount,
            row.currency
        )
    }

    fn end_account(&mut self, out: &mut dyn Write, a: &AccountPlan) -> io::Result<()> {
        for b in due(&a.assertions, &mut self.next_assertion, None) {
            assertion(out, a, b)?;
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut dyn Write, _plan: &ExportPlan) -> io::Result<()> {
        Ok(())
    }
}
