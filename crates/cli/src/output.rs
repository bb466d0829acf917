//! What every command prints on stdout, in the format asked for with `--output` (`-o`): text
//! for people, JSON, NDJSON or CSV for programs. One mechanism for every command: flatten
//! [`OutputArgs`] into the command's arguments and print through it.
//!
//! Two kinds of output:
//!
//! - **Lists of the bank's resources** (accounts, transactions, …) go through [`Printer`]. The
//!   default is a table when stdout is a terminal and NDJSON (one JSON object a line) when it
//!   is piped ([`OutputArgs::list`]): NDJSON streams, so `stet transactions --all | …` holds
//!   one page in memory whatever the history. JSON and NDJSON print each resource exactly as
//!   the bank sent it (the text of its object: amounts keep their digits, unknown fields and
//!   the key order are kept; an object the bank spread over several lines is put on one); the
//!   table and CSV show chosen columns. Rows can be prepared away from the writer, on any
//!   thread ([`Rows`]), and written in one go ([`Printer::rows`]): a sync formats each page
//!   where it was fetched and read.
//! - **A command's result** (a payment's status, a funds check, the doctor's checks, the bank
//!   profiles, …) is a [`Report`]: the text people read (the default, wherever stdout goes, so
//!   scripts that read the text keep working), a JSON value with a documented shape
//!   (`docs/output.md`), and rows for CSV. `json` prints the value, pretty; `ndjson` prints it
//!   on one line (an array: one line per item); `csv` prints the rows with a header.
//!
//! A result is printed once the command has done its work, and only then: a command that
//! fails prints nothing on stdout.

use std::io::{IsTerminal as _, Write};

use clap::ValueEnum;
use serde_json::value::RawValue;

use crate::exit::{self, Failure, OrExit as _};

/// `--output`/`-o`, shared by every command that prints something.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct OutputArgs {
    /// table (text for people, also `text`), json, ndjson or csv
    #[arg(long, short = 'o', value_enum, value_name = "FORMAT")]
    pub output: Option<Format>,
}

impl OutputArgs {
    /// The format for a list of the bank's resources: as asked, else a table on a terminal
    /// and NDJSON when piped.
    pub fn list(&self) -> Format {
        Format::resolve(self.output)
    }

    /// The format for a command's result: as asked, else the text for people.
    pub fn report(&self) -> Format {
        self.output.unwrap_or(Format::Table)
    }
}

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns or lines of text, for a terminal
    #[value(alias = "text")]
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

/// Rows ready to be written, prepared in a given [`Format`] wherever convenient (a sync builds
/// one per page on the thread that read the page). Each row is the resource's JSON (for
/// json/ndjson) or its column values (for table/csv).
#[derive(Debug)]
pub struct Rows {
    format: Format,
    /// json, ndjson, csv: the rows' text. For json the items are separated by `,\n  ` and the
    /// printer adds what goes before the first one.
    text: Vec<u8>,
    /// table: the cells, laid out when the printer finishes.
    cells: Vec<Vec<String>>,
    count: usize,
}

impl Rows {
    /// No rows yet, for `format`.
    pub fn new(format: Format) -> Rows {
        Rows {
            format,
            text: Vec::new(),
            cells: Vec::new(),
            count: 0,
        }
    }

    /// Whether rows show column values (table, CSV) rather than the resource's JSON: callers
    /// read a resource as a model only then.
    pub fn wants_cells(&self) -> bool {
        matches!(self.format, Format::Table | Format::Csv)
    }

    /// Adds a row: `json` is written as is (put on one line if it spans several), `cells` are
    /// computed only for the table and CSV.
    pub fn push(&mut self, json: &RawValue, cells: impl FnOnce() -> Vec<String>) {
        match self.format {
            Format::Json => {
                if self.count > 0 {
                    self.text.extend_from_slice(b",\n  ");
                }
                one_line(json.get(), &mut self.text);
            }
            Format::Ndjson => {
                one_line(json.get(), &mut self.text);
                self.text.push(b'\n');
            }
            Format::Csv => {
                for (i, cell) in cells().iter().enumerate() {
                    if i > 0 {
                        self.text.push(b',');
                    }
                    self.text.extend_from_slice(csv_field(cell).as_bytes());
                }
                self.text.extend_from_slice(b"\r\n");
            }
            Format::Table => self.cells.push(cells()),
        }
        self.count += 1;
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

/// Appends JSON text to `out` on one line. Text without a line break is copied as is (the
/// common case); otherwise the whitespace between tokens is dropped.
/// Whitespace inside strings is kept: a JSON string cannot hold a raw line break, so every
/// line break is between tokens. `json` is valid JSON (it was read as such).
fn one_line(json: &str, out: &mut Vec<u8>) {
    let bytes = json.as_bytes();
    // Every byte an export writes goes through this test: blocks of 64 bytes folded without
    // an early exit let the compiler compare many bytes per instruction (`any` byte by byte
    // took as long as parsing the page).
    let breaks = bytes.chunks(64).any(|block| {
        block.iter().fold(0u8, |seen, &b| {
            seen | u8::from(b == b'\n') | u8::from(b == b'\r')
        }) != 0
    });
    if !breaks {
        out.extend_from_slice(bytes);
        return;
    }
    out.reserve(bytes.len());
    let (mut in_string, mut escaped) = (false, false);
    for &b in bytes {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            in_string = b == b'"';
            out.push(b);
        }
    }
}

/// Writes rows as they come, from one thread (it holds stdout's lock).
pub struct Printer {
    format: Format,
    columns: Vec<&'static str>,
    out: std::io::BufWriter<std::io::StdoutLock<'static>>,
    table: Vec<Vec<String>>,
    written: usize,
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
            written: 0,
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
    pub fn row(&mut self, json: &RawValue, cells: Vec<String>) -> Result<(), Failure> {
        let mut rows = Rows::new(self.format);
        rows.push(json, || cells);
        self.rows(rows)
    }

    /// Adds rows prepared with [`Rows`] in this printer's format.
    pub fn rows(&mut self, rows: Rows) -> Result<(), Failure> {
        if rows.format != self.format {
            return Err(Failure::new(
                1,
                format!(
                    "internal error: {:?} rows given to a {:?} printer",
                    rows.format, self.format
                ),
            ));
        }
        if rows.is_empty() {
            return Ok(());
        }
        self.start()?;
        match self.format {
            Format::Json => {
                let sep: &[u8] = if self.written == 0 { b"\n  " } else { b",\n  " };
                self.write(sep)?;
                self.write(&rows.text)?;
            }
            Format::Ndjson | Format::Csv => self.write(&rows.text)?,
            Format::Table => self.table.extend(rows.cells),
        }
        self.written += rows.count;
        Ok(())
    }

    /// Ends the output (closes the JSON array, lays out the table) and flushes.
    pub fn finish(mut self) -> Result<(), Failure> {
        self.start()?;
        match self.format {
            Format::Json => {
                let end: &[u8] = if self.written == 0 { b"]\n" } else { b"\n]\n" };
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

/// A command's result in every format: the text people read, a JSON value with a documented
/// shape, and the rows CSV prints.
///
/// ```ignore
/// Report::new(json!({"id": id, "status": status}), format!("{id} {status}\n"))
///     .rows(&["id", "status"], vec![vec![id, status]])
///     .print(args.out.report())?;
/// ```
#[derive(Debug, Clone)]
pub struct Report {
    text: String,
    json: serde_json::Value,
    columns: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Report {
    /// A result whose JSON is `json` and whose text is `text` (printed as is; empty prints
    /// nothing, for commands that say everything on stderr).
    pub fn new(json: serde_json::Value, text: impl Into<String>) -> Report {
        Report {
            text: text.into(),
            json,
            columns: Vec::new(),
            rows: Vec::new(),
        }
    }

    /// The CSV columns and rows (one row for a single result).
    #[must_use]
    pub fn rows(mut self, columns: &[&'static str], rows: Vec<Vec<String>>) -> Report {
        self.columns = columns.to_vec();
        self.rows = rows;
        self
    }

    /// The JSON value.
    pub fn json(&self) -> &serde_json::Value {
        &self.json
    }

    /// Prints the result on stdout in `format`.
    pub fn print(&self, format: Format) -> Result<(), Failure> {
        let out = self.render(format)?;
        if out.is_empty() {
            return Ok(());
        }
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(&out)
            .and_then(|()| stdout.flush())
            .or_exit(exit::IO, "cannot write to stdout")
    }

    /// The bytes [`print`](Self::print) writes.
    fn render(&self, format: Format) -> Result<Vec<u8>, Failure> {
        let mut out = Vec::new();
        match format {
            Format::Table => out.extend_from_slice(self.text.as_bytes()),
            Format::Json => {
                let text = serde_json::to_string_pretty(&self.json)
                    .or_exit(1, "cannot write the result as JSON")?;
                out.extend_from_slice(text.as_bytes());
                out.push(b'\n');
            }
            Format::Ndjson => {
                let items = match &self.json {
                    serde_json::Value::Array(items) => items.iter().collect(),
                    one => vec![one],
                };
                for item in items {
                    let line = serde_json::to_string(item)
                        .or_exit(1, "cannot write the result as JSON")?;
                    out.extend_from_slice(line.as_bytes());
                    out.push(b'\n');
                }
            }
            Format::Csv => {
                let line = |cells: &mut dyn Iterator<Item = String>| {
                    let mut text = cells.collect::<Vec<_>>().join(",");
                    text.push_str("\r\n");
                    text
                };
                out.extend_from_slice(
                    line(&mut self.columns.iter().map(|c| csv_field(c))).as_bytes(),
                );
                for row in &self.rows {
                    out.extend_from_slice(line(&mut row.iter().map(|c| csv_field(c))).as_bytes());
                }
            }
        }
        Ok(out)
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

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_owned()).unwrap()
    }

    #[test]
    fn json_is_written_as_received_on_one_line() {
        let mut out = Vec::new();
        one_line(r#"{"b":1,"a":{"amount":12.10}}"#, &mut out);
        assert_eq!(out, br#"{"b":1,"a":{"amount":12.10}}"#);

        // A pretty-printed object: whitespace between tokens goes, inside strings it stays,
        // escaped quotes and backslashes do not end a string.
        let pretty = "{\n  \"label\": \"CB  \\\"LE\\\\ BON\\\" 12/02\",\r\n  \"x\" : [ 1 , 2 ]\n}";
        let mut out = Vec::new();
        one_line(pretty, &mut out);
        let line = String::from_utf8(out).unwrap();
        assert_eq!(line, r#"{"label":"CB  \"LE\\ BON\" 12/02","x":[1,2]}"#);
        let a: serde_json::Value = serde_json::from_str(pretty).unwrap();
        let b: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn rows_in_each_format() {
        let items = [raw("{\n\"n\": 1\n}"), raw(r#"{"n":2}"#)];
        let cells = |n: &str| vec![n.to_owned(), "a,b".to_owned()];
        let mut rows = Rows::new(Format::Ndjson);
        assert!(!rows.wants_cells());
        rows.push(&items[0], || panic!("no cells for NDJSON"));
        rows.push(&items[1], || panic!("no cells for NDJSON"));
        assert_eq!(rows.text, b"{\"n\":1}\n{\"n\":2}\n");
        assert_eq!(rows.count, 2);

        let mut rows = Rows::new(Format::Json);
        rows.push(&items[0], Vec::new);
        rows.push(&items[1], Vec::new);
        assert_eq!(rows.text, b"{\"n\":1},\n  {\"n\":2}");

        let mut rows = Rows::new(Format::Csv);
        assert!(rows.wants_cells());
        rows.push(&items[0], || cells("1"));
        rows.push(&items[1], || cells("=2"));
        assert_eq!(rows.text, b"1,\"a,b\"\r\n'=2,\"a,b\"\r\n");

        let mut rows = Rows::new(Format::Table);
        rows.push(&items[0], || cells("1"));
        assert_eq!(rows.cells, [cells("1")]);
        assert!(rows.text.is_empty());
    }

    #[test]
    fn a_report_in_each_format() {
        let report = Report::new(
            serde_json::json!([{"a": 1, "b": "x,y"}, {"a": 2, "b": "=z"}]),
            "two lines\n",
        )
        .rows(
            &["a", "b"],
            vec![
                vec!["1".into(), "x,y".into()],
                vec!["2".into(), "=z".into()],
            ],
        );
        let text = |f| String::from_utf8(report.render(f).unwrap()).unwrap();
        assert_eq!(text(Format::Table), "two lines\n");
        assert_eq!(
            text(Format::Ndjson),
            "{\"a\":1,\"b\":\"x,y\"}\n{\"a\":2,\"b\":\"=z\"}\n"
        );
        assert_eq!(text(Format::Csv), "a,b\r\n1,\"x,y\"\r\n2,'=z\r\n");
        let pretty: serde_json::Value = serde_json::from_str(&text(Format::Json)).unwrap();
        assert_eq!(&pretty, report.json());
        // One object: one NDJSON line; empty text prints nothing.
        let one = Report::new(serde_json::json!({"ok": true}), "");
        assert_eq!(one.render(Format::Ndjson).unwrap(), b"{\"ok\":true}\n");
        assert!(one.render(Format::Table).unwrap().is_empty());
        // Formats parse from their names, `text` being the table's other name.
        assert_eq!(Format::from_str("text", true).unwrap(), Format::Table);
        assert_eq!(Format::from_str("ndjson", true).unwrap(), Format::Ndjson);
        assert_eq!(
            OutputArgs::default().report(),
            Format::Table,
            "a result defaults to text, piped or not"
        );
    }

    #[test]
    fn table_columns_align() {
        let text = layout(&["a".into(), "bb".into(), "c".into()], &[3, 2, 1]);
        assert_eq!(text, "a    bb  c\n");
    }
}
