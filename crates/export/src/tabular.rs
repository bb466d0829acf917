//! CSV, JSON and NDJSON: the columns of the store's `stet_transactions` view, plus the
//! account's name in the books. Amounts are exact decimal text; the bank's JSON is kept as
//! received (a JSON value in JSON, its text in CSV).
//!
//! | column | |
//! |---|---|
//! | `profile`, `iban`, `account_name`, `ledger_account` | the account |
//! | `stable_id`, `status` | `s1-…`; `BOOK`, `PDNG` (exports take no other) |
//! | `booking_date`, `value_date`, `transaction_date` | `YYYY-MM-DD` or empty |
//! | `amount`, `currency`, `credit_debit` | signed decimal, ISO 4217, `CRDT`/`DBIT` |
//! | `label`, `counterparty`, `entry_reference` | as the bank wrote them |
//! | `first_seen`, `last_seen` | RFC 3339 |
//! | `raw_json` | the bank's JSON of the version shown |

use std::io::{self, Write};

use serde_json::value::RawValue;
use stet_store::TransactionRow;

use crate::{AccountPlan, ExportPlan, Writer};

/// The columns, in order.
pub const COLUMNS: [&str; 18] = [
    "profile",
    "iban",
    "account_name",
    "ledger_account",
    "stable_id",
    "status",
    "booking_date",
    "value_date",
    "transaction_date",
    "amount",
    "currency",
    "credit_debit",
    "label",
    "counterparty",
    "entry_reference",
    "first_seen",
    "last_seen",
    "raw_json",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Csv,
    Json,
    Ndjson,
}

pub(crate) struct Tabular {
    kind: Kind,
    rows: u64,
}

impl Tabular {
    pub(crate) fn csv() -> Self {
        Tabular {
            kind: Kind::Csv,
            rows: 0,
        }
    }
    pub(crate) fn json() -> Self {
        Tabular {
            kind: Kind::Json,
            rows: 0,
        }
    }
    pub(crate) fn ndjson() -> Self {
        Tabular {
            kind: Kind::Ndjson,
            rows: 0,
        }
    }
}

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn values(a: &AccountPlan, row: &TransactionRow) -> [Option<String>; 17] {
    let d = |d: Option<time::Date>| d.map(|d| d.to_string());
    [
        Some(row.profile.clone()),
        row.iban.clone(),
        row.account_name.clone(),
        Some(a.ledger_name.clone()),
        Some(row.stable_id.clone()),
        Some(row.status.clone()),
        d(row.booking_date),
        d(row.value_date),
        d(row.transaction_date),
        Some(row.amount.to_string()),
        Some(row.currency.clone()),
        Some(row.credit_debit.clone()),
        row.label.clone(),
        row.counterparty.clone(),
        row.entry_reference.clone(),
        Some(rfc3339(row.first_seen)),
        Some(rfc3339(row.last_seen)),
    ]
}

impl Writer for Tabular {
    fn begin(&mut self, out: &mut dyn Write, _plan: &ExportPlan) -> io::Result<()> {
        match self.kind {
            Kind::Csv => write!(out, "{}\r\n", COLUMNS.join(",")),
            Kind::Json => write!(out, "["),
            Kind::Ndjson => Ok(()),
        }
    }

    fn begin_account(&mut self, _out: &mut dyn Write, _a: &AccountPlan) -> io::Result<()> {
        Ok(())
    }

    fn transaction(
        &mut self,
        out: &mut dyn Write,
        a: &AccountPlan,
        row: &TransactionRow,
    ) -> io::Result<()> {
        let values = values(a, row);
        if self.kind == Kind::Csv {
            let mut line: Vec<String> = values
                .iter()
                .map(|v| csv_field(v.as_deref().unwrap_or_default()))
                .collect();
            line.push(csv_field(&row.raw_json));
            self.rows += 1;
            return write!(out, "{}\r\n", line.join(","));
        }
        let mut object = serde_json::Map::new();
        for (k, v) in COLUMNS.iter().zip(values.iter()) {
            object.insert(
                (*k).to_owned(),
                v.clone()
                    .map_or(serde_json::Value::Null, serde_json::Value::String),
            );
        }
        let text = serde_json::Value::Object(object).to_string();
        // The bank's JSON as received, not re-serialised; a row whose JSON cannot be read
        // keeps it as a string.
        let raw = match RawValue::from_string(row.raw_json.clone()) {
            Ok(raw) => raw.get().to_owned(),
            Err(_) => serde_json::Value::String(row.raw_json.clone()).to_string(),
        };
        let text = format!("{},\"raw_json\":{raw}}}", &text[..text.len() - 1]);
        let sep = match (self.kind, self.rows) {
            (Kind::Json, 0) => "\n",
            (Kind::Json, _) => ",\n",
            _ => "",
        };
        self.rows += 1;
        match self.kind {
            Kind::Ndjson => writeln!(out, "{text}"),
            _ => write!(out, "{sep}{text}"),
        }
    }

    fn end_account(&mut self, _out: &mut dyn Write, _a: &AccountPlan) -> io::Result<()> {
        Ok(())
    }

    fn finish(&mut self, out: &mut dyn Write, _plan: &ExportPlan) -> io::Result<()> {
        match self.kind {
            Kind::Json => writeln!(out, "\n]"),
            _ => Ok(()),
        }
    }
}
