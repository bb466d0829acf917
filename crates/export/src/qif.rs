//! QIF, `!Type:Bank`: the oldest format still imported, and lossy. It has no currency and no
//! id field; the stable id goes in `N` (the cheque number, which quiffen and GnuCash keep) and
//! at the end of `M`. Dates are four-digit years, day first by default: a two-digit or
//! ambiguous date is read differently by different importers.

use std::io::{self, Write};

use stet_store::TransactionRow;

use crate::text::one_line;
use crate::{AccountPlan, ExportPlan, QifDates, Writer, row_date};

pub(crate) struct Qif {
    dates: QifDates,
}

impl Qif {
    pub(crate) fn new(dates: QifDates) -> Self {
        Qif { dates }
    }
}

impl Writer for Qif {
    fn begin(&mut self, _out: &mut dyn Write, _plan: &ExportPlan) -> io::Result<()> {
        Ok(())
    }

    fn begin_account(&mut self, out: &mut dyn Write, a: &AccountPlan) -> io::Result<()> {
        writeln!(
            out,
            "!Account\nN{}\nTBank\n^\n!Type:Bank",
            one_line(&a.ledger_name)
        )
    }

    fn transaction(
        &mut self,
        out: &mut dyn Write,
        _a: &AccountPlan,
        row: &TransactionRow,
    ) -> io::Result<()> {
        let Some(d) = row_date(row) else {
            return Ok(());
        };
        let (day, month) = (d.day(), u8::from(d.month()));
        match self.dates {
            QifDates::DayFirst => writeln!(out, "D{day:02}/{month:02}/{:04}", d.year())?,
            QifDates::MonthFirst => writeln!(out, "D{month:02}/{day:02}/{:04}", d.year())?,
        }
        writeln!(out, "T{}", row.amount)?;
        if row.status == "BOOK" {
            writeln!(out, "C*")?;
        }
        writeln!(out, "N{}", row.stable_id)?;
        let label = one_line(row.label.as_deref().unwrap_or_default());
        let payee = row
            .counterparty
            .as_deref()
            .map(one_line)
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| label.clone());
        if !payee.is_empty() {
            writeln!(out, "P{payee}")?;
        }
        writeln!(out, "M{label} {}", row.stable_id)?;
        writeln!(out, "^")
    }

    fn end_account(&mut self, _out: &mut dyn Write, _a: &AccountPlan) -> io::Result<()> {
        Ok(())
    }

    fn finish(&mut self, _out: &mut dyn Write, _plan: &ExportPlan) -> io::Result<()> {
        Ok(())
    }
}
