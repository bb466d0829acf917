//! `stet export`: the store into the formats accounting tools import. Offline: the store only,
//! no network, no token. The formatters are `stet-export`; this reads the store account by
//! account, keeps the export ledger of `--since-last`, and writes to stdout or, replaced
//! atomically, to `--file`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use futures_util::{StreamExt as _, TryStreamExt as _};
use serde::Deserialize;
use stet_export::{
    AccountPlan, BalanceBuilder, CounterAccounts, ExportPlan, Format, OfxVersion, Options,
    QifDates, check_account_name,
};
use stet_store::{ExportRow, Location, RowFilter, Status, TransactionRow, fingerprint};
use stet_transport::config;

use crate::Globals;
use crate::exit::{self, Failure};
use crate::store::{StoreArgs, failure, location, open, runtime};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  stet export --format beancount --since-last books >> books.beancount
  stet export --format ledger --file bank.journal          # for ledger and hledger
  stet export --format ofx --account FR7630004010006746778722047 --from 2026-01-01 --file jan.ofx
  stet export --format camt053 --camt-version 08 --file statement.xml
  stet export --format csv --all-profiles --include-pending

Reads the store only (`stet sync` fills it): no network, no token. Booked transactions only,
unless --include-pending (beancount and ledger mark them `!`, camt `PDNG`). Every format
carries each transaction's stable id, which never changes, so importers never take one twice.
With --since-last NAME, only what was not exported under NAME yet; a transaction the bank
changed after it was exported is reported on stderr, never written again.

Account names in the books come from the configuration file:
  [export]
  expenses = \"Expenses:Unknown\"      # counter account of money out
  income = \"Income:Unknown\"          # counter account of money in
  opening = \"Equity:Opening-Balances\"
  [export.accounts]
  FR7630004010006746778722047 = \"Assets:Bank:Boursorama:Courant\"
otherwise Assets:Bank:<bank>:<last 4 of the IBAN>.")]
pub struct ExportArgs {
    /// The format
    #[arg(long, value_enum)]
    format: FormatArg,
    /// Every profile's accounts, not only the chosen profile's
    #[arg(long)]
    all_profiles: bool,
    /// Only this account: its IBAN or resource id
    #[arg(long, value_name = "ACCOUNT")]
    account: Option<String>,
    /// From this date, inclusive (YYYY-MM-DD; the booking date, else the transaction date)
    #[arg(long, value_name = "DATE", value_parser = crate::data::parse_date)]
    from: Option<time::Date>,
    /// Until this date, exclusive
    #[arg(long, value_name = "DATE", value_parser = crate::data::parse_date)]
    to: Option<time::Date>,
    /// Pending transactions too, marked as such (not for OFX and QIF, which cannot mark them)
    #[arg(long)]
    include_pending: bool,
    /// Only what was not exported under NAME yet, and remember what this export writes
    #[arg(long, value_name = "NAME")]
    since_last: Option<String>,
    /// Write to FILE, replaced atomically (a failed export leaves it as it was) [default: stdout]
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// OFX flavour: 102 (SGML, Windows-1252) or 220 (XML, UTF-8)
    #[arg(long, value_enum, default_value = "102")]
    ofx_version: OfxArg,
    /// camt.053 message version: 02 (camt.053.001.02) to 14
    #[arg(long, value_name = "NN", default_value = "02", value_parser = parse_camt_version)]
    camt_version: u8,
    /// QIF dates: day-first (DD/MM/YYYY) or month-first (MM/DD/YYYY)
    #[arg(long, value_enum, default_value = "day-first")]
    qif_date_format: QifArg,
    #[command(flatten)]
    store: StoreArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FormatArg {
    /// beancount (bean-check)
    Beancount,
    /// ledger journal (ledger --pedantic; the same journal as hledger)
    Ledger,
    /// hledger journal (hledger check -s; the same journal as ledger)
    Hledger,
    /// OFX bank statement
    Ofx,
    /// QIF (lossy: no currency)
    Qif,
    /// ISO 20022 camt.053
    Camt053,
    /// CSV, the store's columns
    Csv,
    /// a JSON array, the store's columns
    Json,
    /// one JSON object per line
    Ndjson,
}

impl FormatArg {
    fn format(self) -> Format {
        match self {
            FormatArg::Beancount => Format::Beancount,
            FormatArg::Ledger => Format::Ledger,
            FormatArg::Hledger => Format::Hledger,
            FormatArg::Ofx => Format::Ofx,
            FormatArg::Qif => Format::Qif,
            FormatArg::Camt053 => Format::Camt053,
            FormatArg::Csv => Format::Csv,
            FormatArg::Json => Format::Json,
            FormatArg::Ndjson => Format::Ndjson,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OfxArg {
    /// OFX 1.02, SGML, Windows-1252
    #[value(name = "102")]
    V102,
    /// OFX 2.2, XML, UTF-8
    #[value(name = "220")]
    V220,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum QifArg {
    /// DD/MM/YYYY
    DayFirst,
    /// MM/DD/YYYY
    MonthFirst,
}

fn parse_camt_version(s: &str) -> Result<u8, String> {
    let v: u8 = s
        .trim_start_matches("camt.053.001.")
        .parse()
        .map_err(|_| format!("`{s}` is not a camt.053 version: use 02 to 14"))?;
    if stet_export::CAMT_VERSIONS.contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "camt.053.001.{v:02} is not one stet writes: use 02 to 14"
        ))
    }
}

/// The `[export]` section of the configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportConfig {
    expenses: Option<String>,
    income: Option<String>,
    opening: Option<String>,
    #[serde(default)]
    accounts: BTreeMap<String, String>,
}

fn export_config(globals: &Globals) -> Result<ExportConfig, Failure> {
    let (path, explicit) = crate::profile::config_path(globals);
    let Some(path) = path.filter(|p| explicit || p.exists()) else {
        return Ok(ExportConfig::default());
    };
    let file = config::load_file(&path).map_err(|e| Failure::new(exit::CONFIG, e))?;
    let Some(table) = file.export else {
        return Ok(ExportConfig::default());
    };
    let bad = |e: &dyn std::fmt::Display| {
        Failure::new(
            exit::CONFIG,
            format!(
                "{}: [export]: {e}; it takes expenses, income, opening and [export.accounts] (IBAN = \"Assets:…\")",
                path.display()
            ),
        )
    };
    let config: ExportConfig = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| bad(&e.to_string().trim_end().replace('\n', " ")))?;
    for name in [&config.expenses, &config.income, &config.opening]
        .into_iter()
        .flatten()
        .chain(config.accounts.values())
    {
        check_account_name(name).map_err(|e| bad(&e))?;
    }
    Ok(config)
}

/// An export name: it is stored and shown, so plain.
fn check_name(name: &str) -> Result<(), Failure> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(Failure::new(
            2,
            format!(
                "--since-last `{name}`: use 1 to 64 letters, digits, `.`, `_` or `-`, e.g. books"
            ),
        ))
    }
}

fn short(row: &TransactionRow) -> String {
    format!(
        "{} {} {} \"{}\" ({})",
        stet_export::row_date(row)
            .map(|d| d.to_string())
            .unwrap_or_else(|| "undated".into()),
        row.amount,
        row.currency,
        row.label.as_deref().unwrap_or_default(),
        row.status
    )
}

/// Where the export goes: stdout, or a temporary file beside `--file` that replaces it at the
/// end.
enum Sink {
    Stdout(std::io::BufWriter<std::io::Stdout>),
    File {
        file: std::io::BufWriter<tempfile::NamedTempFile>,
        target: PathBuf,
    },
}

impl Sink {
    fn open(file: Option<&PathBuf>) -> Result<Sink, Failure> {
        let Some(target) = file else {
            return Ok(Sink::Stdout(std::io::BufWriter::with_capacity(
                1 << 16,
                std::io::stdout(),
            )));
        };
        let dir = match target.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        // Made 0600: it holds the PSU's bank data.
        let temp = tempfile::Builder::new()
            .prefix(".stet-export-")
            .tempfile_in(&dir)
            .map_err(|e| {
                Failure::new(
                    exit::IO,
                    format!(
                        "cannot write in {} for --file {}: {e}; check that the folder exists and is writable",
                        dir.display(),
                        target.display()
                    ),
                )
            })?;
        Ok(Sink::File {
            file: std::io::BufWriter::with_capacity(1 << 16, temp),
            target: target.clone(),
        })
    }

    fn out(&mut self) -> &mut dyn std::io::Write {
        match self {
            Sink::Stdout(w) => w,
            Sink::File { file, .. } => file,
        }
    }

    fn name(&self) -> String {
        match self {
            Sink::Stdout(_) => "stdout".into(),
            Sink::File { target, .. } => target.display().to_string(),
        }
    }

    /// Flushes and, for a file, puts it in place.
    fn finish(self) -> Result<(), Failure> {
        match self {
            Sink::Stdout(mut w) => w
                .flush()
                .map_err(|e| Failure::new(exit::IO, format!("cannot write to stdout: {e}"))),
            Sink::File { file, target } => {
                let temp = file.into_inner().map_err(|e| {
                    Failure::new(
                        exit::IO,
                        format!("cannot write {}: {}", target.display(), e.error()),
                    )
                })?;
                temp.as_file().sync_all().map_err(|e| {
                    Failure::new(exit::IO, format!("cannot write {}: {e}", target.display()))
                })?;
                temp.persist(&target).map_err(|e| {
                    Failure::new(
                        exit::IO,
                        format!("cannot replace {}: {}", target.display(), e.error),
                    )
                })?;
                Ok(())
            }
        }
    }
}

pub fn run(args: ExportArgs, globals: &Globals) -> Result<u8, Failure> {
    let format = args.format.format();
    if let (Some(from), Some(to)) = (args.from, args.to)
        && from >= to
    {
        return Err(Failure::new(
            2,
            format!("--from {from} is not before --to {to}: --to is exclusive"),
        ));
    }
    if args.include_pending && !format.marks_pending() {
        return Err(Failure::new(
            2,
            format!(
                "--include-pending: {} has no way to mark a transaction as pending, and an \
                 importer could never take it back; leave it out, or use beancount, ledger, \
                 hledger, camt053, csv or json",
                format.name()
            ),
        ));
    }
    if let Some(name) = &args.since_last {
        check_name(name)?;
    }
    let config = export_config(globals)?;
    let location = location(&args.store, globals, None)?;
    if let Location::Sqlite(path) = &location
        && !path.exists()
    {
        return Err(Failure::new(
            exit::NO_INPUT,
            format!(
                "no store at {}: run `stet sync` first, or point --store at one",
                location.display()
            ),
        ));
    }
    let profile = if args.all_profiles {
        None
    } else {
        crate::store::profile_name(globals)
    };
    let account = args.account.clone().map(|a| {
        if crate::iban::iban_shape(&a).is_some() {
            a.replace(' ', "").to_ascii_uppercase()
        } else {
            a
        }
    });
    let defaults = CounterAccounts::default();
    let counter = CounterAccounts {
        expenses: config.expenses.clone().unwrap_or(defaults.expenses),
        income: config.income.clone().unwrap_or(defaults.income),
        opening: config.opening.clone().unwrap_or(defaults.opening),
    };
    let mapping: BTreeMap<String, String> = config
        .accounts
        .iter()
        .map(|(k, v)| (k.replace(' ', "").to_ascii_uppercase(), v.clone()))
        .collect();

    runtime()?.block_on(async {
        let store = open(&args.store, &location, true).await?;
        let accounts = store
            .export_accounts(
                profile.as_deref(),
                account.as_deref(),
                args.since_last.as_deref(),
            )
            .await
            .map_err(failure)?;
        if accounts.is_empty() {
            let whose = match (&account, &profile) {
                (Some(a), _) => format!("account {a}"),
                (None, Some(p)) => format!("profile {p}"),
                (None, None) => "any profile".into(),
            };
            return Err(Failure::new(
                exit::NO_INPUT,
                format!(
                    "the store {} holds nothing for {whose}: run `stet sync` first (or use --all-profiles)",
                    store.location()
                ),
            ));
        }
        let appending = accounts.iter().any(|a| a.exported_before);
        // Plans: opening balances and assertions from every stored amount of each account.
        // Reading them is a scan of each account's rows, done before anything is written:
        // two accounts at a time, each on its own connection (SQLite's scan is most of the
        // cost, and it runs on the connection's thread), kept in order.
        let plans: Vec<AccountPlan> = futures_util::stream::iter(accounts)
            .map(|a| {
                let ledger_name = a
                    .iban
                    .as_ref()
                    .and_then(|i| mapping.get(i))
                    .cloned()
                    .unwrap_or_else(|| AccountPlan::default_ledger_name(&a));
                let opening = !a.exported_before;
                let (store, from, to, pending) =
                    (&store, args.from, args.to, args.include_pending);
                async move {
                    let id = a.id.clone();
                    let mut builder = BalanceBuilder::new(a, from, to, pending, opening);
                    let mut amounts = store.account_amounts(&id);
                    while let Some(row) = amounts.try_next().await.map_err(failure)? {
                        builder.add(&row);
                    }
                    Ok::<_, Failure>(builder.finish(ledger_name))
                }
            })
            .buffered(2)
            .try_collect()
            .await?;
        let options = Options {
            created: time::OffsetDateTime::now_utc(),
            counter,
            ofx_version: match args.ofx_version {
                OfxArg::V102 => OfxVersion::V102,
                OfxArg::V220 => OfxVersion::V220,
            },
            camt_version: args.camt_version,
            qif_dates: match args.qif_date_format {
                QifArg::DayFirst => QifDates::DayFirst,
                QifArg::MonthFirst => QifDates::MonthFirst,
            },
            declare: !appending,
        };
        let plan = ExportPlan::new(plans, options);
        let mut statuses = vec![Status::Booked];
        if args.include_pending {
            statuses.push(Status::Pending);
        }
        let filter = RowFilter {
            from: args.from,
            to: args.to,
            statuses,
            since_last: args.since_last.clone(),
        };

        let mut sink = Sink::open(args.file.as_ref())?;
        let target = sink.name();
        let write_error =
            |e: std::io::Error| Failure::new(exit::IO, format!("cannot write to {target}: {e}"));
        let mut record = match &args.since_last {
            Some(name) => Some(
                store
                    .begin_export_record(name, format.name())
                    .await
                    .map_err(failure)?,
            ),
            None => None,
        };
        let mut writer = stet_export::writer(format, &plan.options);
        let (mut written, mut already, mut changed) = (0u64, 0u64, 0u64);
        writer.begin(sink.out(), &plan).map_err(write_error)?;
        for a in &plan.accounts {
            writer.begin_account(sink.out(), a).map_err(write_error)?;
            let mut rows = store.export_rows(&a.account.id, &filter);
            while let Some(ExportRow { row, exported }) = rows.try_next().await.map_err(failure)? {
                if let Some(before) = exported {
                    if before.fingerprint == fingerprint(&row) {
                        already += 1;
                    } else {
                        changed += 1;
                        let then = format!(
                            "{} {} {} \"{}\" ({})",
                            before
                                .date
                                .map(|d| d.to_string())
                                .unwrap_or_else(|| "undated".into()),
                            before.amount,
                            before.currency,
                            before.label.as_deref().unwrap_or_default(),
                            before.status
                        );
                        let what = if row.status == Status::Deleted.code() {
                            "was deleted at the bank"
                        } else {
                            "changed at the bank"
                        };
                        eprintln!(
                            "warning: {} of {} {what} after it was exported under `{}` ({}): \
                             exported as {then}, now {}; not written again: correct it in your books",
                            row.stable_id,
                            a.id_text(),
                            args.since_last.as_deref().unwrap_or_default(),
                            before.format,
                            short(&row)
                        );
                    }
                    continue;
                }
                writer
                    .transaction(sink.out(), a, &row)
                    .map_err(write_error)?;
                if let Some(record) = record.as_mut() {
                    record.add(&a.account.id, &row).await.map_err(failure)?;
                }
                written += 1;
            }
            drop(rows);
            writer.end_account(sink.out(), a).map_err(write_error)?;
            if format.has_balances() && a.closing.is_none() && !globals.quiet {
                eprintln!(
                    "warning: no booked balance of {} is stored: no balance check for it (run `stet sync`)",
                    a.id_text()
                );
            }
        }
        writer.finish(sink.out(), &plan).map_err(write_error)?;
        // The output is in place before the ledger records it: a failure in between writes
        // it again next time rather than never.
        sink.finish()?;
        if let Some(record) = record {
            record.commit().await.map_err(|e| {
                failure(e).and(format!(
                    "{target} was written but not recorded under `{}`: the next --since-last export writes these transactions again",
                    args.since_last.as_deref().unwrap_or_default()
                ))
            })?;
        }
        store.close().await;
        if !globals.quiet {
            let mut line = format!(
                "exported {written} transaction(s) of {} account(s) as {} to {target}",
                plan.accounts.len(),
                format.name()
            );
            if let Some(name) = &args.since_last {
                line.push_str(&format!(
                    "; {already} already exported under `{name}`, {changed} changed since"
                ));
            }
            eprintln!("{line}");
        }
        Ok(0)
    })
}
