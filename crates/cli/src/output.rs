//! Printing data: a table for people, JSON, NDJSON or CSV for programs.
//!
//! The default is a table when stdout is a terminal and NDJSON (one JSON object a line) when it
//! is piped: NDJSON streams, so `stet transactions --all | …` holds one page in memory whatever
//! the history. JSON and NDJSON print each resource exactly as the bank sent it (amounts keep
//! their digits, unknown fields are kept); the table and CSV show chosen columns.

use std::io::{IsTerminal as _, Write};

use clap::ValueEnum;

use crate::exit::{self, Failure, OrExit as _};

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns, for a terminal
    Table,
    /// One JSON array
    Json,
    /// One JSON object per line
    Ndjson,
    /// Comma-separated values with a header line (RFC 4180)
    Csv,
}

impl Format {
    /// The format asked for, or the default for where stdout goes.
    pub fn resolve(asked: Option<Format>) -> Format {
        asked.unwrap_or(if std::io::stdout().is_terminal() {
            Format::Table
        } else {
            Format::Ndjson
        })
    }
}

/// Writes rows as they come. Each row is the resource's JSON (for json/ndjson) and its column
/// values (for table/csv).
pub struct Printer {
    format: Format,
    columns: Vec<&'static str>,
    out: std::io::BufWriter<std::io::StdoutLock<'static>>,
    table: Vec<Vec<String>>,
    rows: usize,
    started: bool,
}

impl Printer {
    /// A printer for `columns` in `format`. Nothing is written until the first row or
    /// [`Printer::finish`]: a command that fails before then leaves stdout empty, not a
    /// half-open JSON array or a lone CSV header.
    pub fn new(format: Format, columns: &[&'static str]) -> Result<Printer, Failure> {
        Ok(Printer {
            format,
            columns: columns.to_vec(),
            out: std::io::BufWriter::new(std::io::stdout().lock()),
            table: Vec::new(),
            rows: 0,
            started: false,
        })
    }

    /// Writes what comes before the rows (the JSON array's `[`, the CSV header), once.
    fn start(&mut self) -> Result<(), Failure> {
        if std::mem::replace(&mut self.started, true) {
            return Ok(());
        }
        match self.format {
            Format::Json => self.write(b"["),
            Format::Csv => {
                let header: Vec<String> = self.columns.iter().map(|c| csv_field(c)).collect();
                self.write(format!("{}\r\n", header.join(",")).as_bytes())
            }
            Format::Table | Format::Ndjson => Ok(()),
        }
    }

    /// Adds one row.
    pub fn row(&mut self, json: &serde_json::Value, cells: Vec<String>) -> Result<(), Failure> {
        self.start()?;
        match self.format {
            Format::Json => {
                let sep: &[u8] = if self.rows == 0 { b"\n  " } else { b",\n  " };
                self.write(sep)?;
                let text = serde_json::to_string(json).or_exit(1, "cannot write JSON")?;
                self.write(text.as_bytes())?;
            }
            Format::Ndjson => {
                let mut text = serde_json::to_string(json).or_exit(1, "cannot write JSON")?;
                text.push('\n');
                self.write(text.as_bytes())?;
            }
            Format::Csv => {
                let line: Vec<String> = cells.iter().map(|c| csv_field(c)).collect();
                self.write(format!("{}\r\n", line.join(",")).as_bytes())?;
            }
            Format::Table => self.table.push(cells),
        }
        self.rows += 1;
        Ok(())
    }

    /// Ends the output (closes the JSON array, lays out the table) and flushes.
    pub fn finish(mut self) -> Result<(), Failure> {
        self.start()?;
        match self.format {
            Format::Json => {
                let end: &[u8] = if self.rows == 0 { b"]\n" } else { b"\n]\n" };
                self.write(end)?;
            }
            Format::Table => {
                let table = std::mem::take(&mut self.table);
                let mut widths: Vec<usize> =
                    self.columns.iter().map(|c| c.chars().count()).collect();
                for row in &table {
                    for (w, cell) in widths.iter_mut().zip(row) {
                        *w = (*w).max(cell.chars().count());
                    }
                }
                let header: Vec<String> = self.columns.iter().map(|c| c.to_uppercase()).collect();
                let mut text = layout(&header, &widths);
                for row in &table {
                    text.push_str(&layout(row, &widths));
                }
                if table.is_empty() {
                    text = "(none)\n".to_owned();
                }
                self.write(text.as_bytes())?;
            }
            Format::Ndjson | Format::Csv => {}
        }
        self.out.flush().or_exit(exit::IO, "cannot write to stdout")
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), Failure> {
        self.out
            .write_all(bytes)
            .or_exit(exit::IO, "cannot write to stdout")
    }
}

fn layout(cells: &[String], widths: &[usize]) -> String {
    let mut line = String::new();
    for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
        if i > 0 {
            line.push_str("  ");
        }
        line.push_str(cell);
        if i + 1 < cells.len() {
            line.extend(std::iter::repeat_n(
                ' ',
                width.saturating_sub(cell.chars().count()),
            ));
        }
    }
    line.push('\n');
    line
}

/// A CSV field: quoted when it holds a comma, quote or line break (RFC 4180). A field that a
/// spreadsheet would run as a formula (`=`, `+`, `@` or a non-numeric `-` first) gets a leading
/// apostrophe, so it shows as text: bank labels are data, never formulas (CSV injection).
fn csv_field(value: &str) -> String {
    let guarded = if value.starts_with(['=', '+', '@'])
        || (value.starts_with('-') && value.parse::<f64>().is_err())
    {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if guarded.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", guarded.replace('"', "\"\""))
    } else {
        guarded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_guards() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("-12.50"), "-12.50");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("-cmd"), "'-cmd");
    }

    #[test]
    fn table_columns_align() {
        let text = layout(&["a".into(), "bb".into(), "c".into()], &[3, 2, 1]);
        assert_eq!(text, "a    bb  c\n");
    }
}
