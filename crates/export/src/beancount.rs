//! beancount: `open` directives with the IBAN as metadata, one transaction per row with the
//! stable id as `stet-id` metadata, `balance` directives from the bank's balances.
//!
//! A `balance` directive is checked at the start of its day, so the balance at the end of a
//! day is asserted on the next one. It carries an explicit tolerance of 0.001: beancount's
//! default tolerance at two decimals lets a one-cent error pass.

use std::io::{self, Write};

use stet_store::TransactionRow;
use time::{Date, Duration};

use crate::text::one_line;
use crate::{AccountPlan, Balance, ExportPlan, Writer, counter_account, row_date};

#[derive(Debug, Default)]
pub(crate) struct Beancount {
    counter: crate::CounterAccounts,
}

fn quoted(text: &str) -> String {
    let text = one_line(text);
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// The day an account is opened on in the books.
pub(crate) fn open_date(a: &AccountPlan) -> Option<Date> {
    a.opening.as_ref().map(|o| o.date).or(a.start)
}

fn balance(out: &mut dyn Write, account: &str, b: &Balance) -> io::Result<()> {
    writeln!(
        out,
        "{} balance {account}  {} ~ 0.001 {}\n",
        b.date + Duration::days(1),
        b.amount,
        b.currency
    )
}

impl Writer for Beancount {
    fn begin(&mut self, out: &mut dyn Write, plan: &ExportPlan) -> io::Result<()> {
        self.counter = plan.options.counter.clone();
        writeln!(
            out,
            ";; stet export: the store's transactions, each with its stable id as `stet-id`.\n"
        )?;
        if plan.options.declare
            && let Some(first) = plan.accounts.iter().filter_map(open_date).min()
        {
            let c = &plan.options.counter;
            for name in [&c.opening, &c.expenses, &c.income] {
                writeln!(out, "{first} open {name}")?;
            }
            writeln!(out)?;
        }
        Ok(())
    }

    fn begin_account(&mut self, out: &mut dyn Write, a: &AccountPlan) -> io::Result<()> {
        if !a.account.exported_before
            && let Some(day) = open_date(a)
        {
            writeln!(
                out,
                "{day} open {} {}",
                a.ledger_name,
                a.currencies.join(",")
            )?;
            if let Some(iban) = &a.account.iban {
                writeln!(out, "  iban: {}", quoted(iban))?;
            }
            if let Some(name) = &a.account.name {
                writeln!(out, "  name: {}", quoted(name))?;
            }
            writeln!(out)?;
        }
        if let Some(o) = &a.opening {
            writeln!(
                out,
                "{} * \"Opening balance\"\n  {}  {} {}\n  {}\n",
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
        let flag = if row.status == "BOOK" { '*' } else { '!' };
        let label = row.label.as_deref().unwrap_or_default();
        match row.counterparty.as_deref().filter(|c| !c.trim().is_empty()) {
            Some(payee) => writeln!(out, "{date} {flag} {} {}", quoted(payee), quoted(label))?,
            None => writeln!(out, "{date} {flag} {}", quoted(label))?,
        }
        writeln!(out, "  stet-id: \"{}\"", row.stable_id)?;
        if let Some(v) = row.value_date {
            writeln!(out, "  value-date: {v}")?;
        }
        writeln!(
            out,
            "  {}  {} {}\n  {}  {} {}\n",
            a.ledger_name,
            row.amount,
            row.currency,
            counter_account(&self.counter, row),
            -row.amount,
            row.currency
        )
    }

    fn end_account(&mut self, out: &mut dyn Write, a: &AccountPlan) -> io::Result<()> {
        for b in &a.assertions {
            balance(out, &a.ledger_name, b)?;
        }
        Ok(())
    }

    fn finish(&mut self, _out: &mut dyn Write, _plan: &ExportPlan) -> io::Result<()> {
        Ok(())
    }
}
