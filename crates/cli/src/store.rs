//! The store's commands: `stet history` (offline: no network, no token) and `stet store
//! info|migrate`, and where the store is (`--store`, `STET_STORE`, the profile's `store`, or
//! `stet.db` in the platform's data folder).

use clap::{Args, Subcommand, ValueEnum};
use futures_util::TryStreamExt as _;
use serde_json::value::RawValue;
use stet_store::{HistoryFilter, Location, OpenOptions, Status, Store, StoreError};
use stet_transport::config;

use crate::Globals;
use crate::exit::{self, Failure, OrExit as _};
use crate::output::{Format, Printer, Report};

/// `--store`, shared by the commands that use the store.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// The store: sqlite:PATH or postgres://USER@HOST/DATABASE [default: the profile's
    /// `store`, else stet.db in the platform's data folder, e.g. ~/.local/share/stet/stet.db]
    #[arg(long = "store", env = "STET_STORE", value_name = "URL")]
    pub url: Option<String>,
    /// How long to wait for another process using the store, in seconds
    #[arg(long = "store-timeout", value_name = "SECONDS", default_value_t = 30)]
    pub timeout: u64,
}

/// The exit code for a store error: see the README's table.
pub fn failure(e: StoreError) -> Failure {
    let code = match &e {
        StoreError::BadUrl { .. } | StoreError::NewerSchema { .. } => exit::CONFIG,
        StoreError::Locked { .. } => exit::TEMPORARY,
        StoreError::Corrupt { .. } => exit::DATA,
        _ => exit::IO,
    };
    Failure::new(code, e)
}

/// The `store` key of the chosen profile, read from the configuration file without resolving
/// the rest of the profile (reading the store needs no bank, key or token).
fn profile_store(globals: &Globals) -> Result<Option<String>, Failure> {
    let (path, explicit) = crate::profile::config_path(globals);
    let Some(path) = path.filter(|p| explicit || p.exists()) else {
        return Ok(None);
    };
    let file = config::load_file(&path).map_err(|e| Failure::new(exit::CONFIG, e))?;
    let name = globals
        .profile
        .clone()
        .or(file.default_profile.clone())
        .or_else(|| {
            (file.profiles.len() == 1)
                .then(|| file.profiles.keys().next().cloned())
                .flatten()
        });
    Ok(name
        .and_then(|n| file.profiles.get(&n))
        .and_then(|p| p.store.clone()))
}

/// Where the store is for this command.
pub fn location(
    args: &StoreArgs,
    globals: &Globals,
    profile_store: Option<&str>,
) -> Result<Location, Failure> {
    let url = match (&args.url, profile_store) {
        (Some(url), _) => Some(url.clone()),
        (None, Some(url)) => Some(url.to_owned()),
        (None, None) => self::profile_store(globals)?,
    };
    match url {
        Some(url) => Location::parse(&url).map_err(failure),
        None => Location::default_sqlite().ok_or_else(|| {
            Failure::new(
                exit::CONFIG,
                "cannot find a data folder for the store (is HOME set?): give one with --store",
            )
        }),
    }
}

/// Opens the store, migrating it.
pub async fn open(args: &StoreArgs, location: &Location, migrate: bool) -> Result<Store, Failure> {
    let options = OpenOptions {
        busy_timeout: std::time::Duration::from_secs(args.timeout.max(1)),
        migrate,
        ..OpenOptions::default()
    };
    Store::open(location, &options).await.map_err(failure)
}

pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .or_exit(1, "cannot start the async runtime")
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  stet history                                  # every stored transaction
  stet history FR7630004010006746778722047 --from 2026-01-01 --status booked
  stet history --output csv > history.csv

Reads the store only: no network, no token. `stet sync` fills it.")]
pub struct HistoryArgs {
    /// Only this account: its IBAN or resource id
    #[arg(value_name = "ACCOUNT")]
    account: Option<String>,
    /// From this date, inclusive (YYYY-MM-DD; the booking date, else the transaction date)
    #[arg(long, value_name = "DATE", value_parser = crate::data::parse_date)]
    from: Option<time::Date>,
    /// Until this date, exclusive
    #[arg(long, value_name = "DATE", value_parser = crate::data::parse_date)]
    to: Option<time::Date>,
    /// Which transactions (repeat for several)
    #[arg(long, value_enum, default_value = "all")]
    status: Vec<HistoryStatus>,
    /// Every profile's transactions, not only the chosen profile's
    #[arg(long)]
    all_profiles: bool,
    /// Only this PSU's transactions: a fleet connection's name (`stet psu list`), or a
    /// person's profile name
    #[arg(long, value_name = "NAME")]
    psu: Option<String>,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    out: crate::output::OutputArgs,
}

/// `--status` of `stet history`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ValueEnum)]
pub enum HistoryStatus {
    /// Booked (BOOK)
    Booked,
    /// Pending (PDNG)
    Pending,
    /// Pending ones the bank stopped listing (EXPD)
    Expired,
    /// Ones the bank deleted, as the source said (DELD)
    Deleted,
    /// All of them
    All,
}

/// The profile name `history` filters on: `--profile`/`STET_PROFILE`, else the file's
/// default profile (or its only one); none without a configuration.
pub(crate) fn profile_name(globals: &Globals) -> Option<String> {
    if let Some(p) = &globals.profile {
        return Some(p.clone());
    }
    let (path, _) = crate::profile::config_path(globals);
    let file = config::load_file(&path?).ok()?;
    file.default_profile.clone().or_else(|| {
        (file.profiles.len() == 1)
            .then(|| file.profiles.keys().next().cloned())
            .flatten()
    })
}

pub fn history(args: HistoryArgs, globals: &Globals) -> Result<u8, Failure> {
    if let (Some(from), Some(to)) = (args.from, args.to)
        && from >= to
    {
        return Err(Failure::new(
            2,
            format!("--from {from} is not before --to {to}: --to is exclusive"),
        ));
    }
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
    // Every status named is no filter at all (the query takes at most three).
    let named: std::collections::HashSet<_> = args.status.iter().collect();
    let statuses = if args.status.contains(&HistoryStatus::All) || named.len() >= 4 {
        Vec::new()
    } else {
        args.status
            .iter()
            .map(|s| match s {
                HistoryStatus::Booked => Status::Booked,
                HistoryStatus::Pending => Status::Pending,
                HistoryStatus::Deleted => Status::Deleted,
                _ => Status::Expired,
            })
            .collect()
    };
    let filter = HistoryFilter {
        profile: if args.all_profiles {
            None
        } else {
            profile_name(globals)
        },
        account: args.account.clone().map(|a| {
            if crate::iban::iban_shape(&a).is_some() {
                a.replace(' ', "").to_ascii_uppercase()
            } else {
                a
            }
        }),
        from: args.from,
        to: args.to,
        statuses,
        psu: args.psu.clone(),
    };
    runtime()?.block_on(async {
        // A store a sync created but was stopped before migrating is brought up to date.
        let store = open(&args.store, &location, true).await?;
        let mut printer = Printer::new(
            Format::resolve(args.out.output),
            &[
                "iban",
                "date",
                "amount",
                "currency",
                "status",
                "label",
                "stable_id",
            ],
        )?;
        let mut rows = store.transactions(&filter);
        while let Some(row) = rows.try_next().await.map_err(failure)? {
            let date = row.booking_date.or(row.transaction_date).or(row.value_date);
            let fields = serde_json::json!({
                "profile": row.profile,
                "psu": row.psu,
                "iban": row.iban,
                "account_name": row.account_name,
                "stable_id": row.stable_id,
                "status": row.status,
                "booking_date": row.booking_date.map(|d| d.to_string()),
                "value_date": row.value_date.map(|d| d.to_string()),
                "transaction_date": row.transaction_date.map(|d| d.to_string()),
                "amount": row.amount.to_string(),
                "currency": row.currency,
                "credit_debit": row.credit_debit,
                "label": row.label,
                "counterparty": row.counterparty,
                "entry_reference": row.entry_reference,
                "first_seen": rfc3339(row.first_seen),
                "last_seen": rfc3339(row.last_seen),
            })
            .to_string();
            // The bank's JSON goes in as received, not re-serialized.
            let text = format!(
                "{},\"raw_json\":{}}}",
                &fields[..fields.len() - 1],
                row.raw_json
            );
            let json = RawValue::from_string(text).or_exit(
                exit::DATA,
                format!("the stored JSON of {} cannot be read", row.stable_id),
            )?;
            printer.row(
                &json,
                vec![
                    row.iban.clone().unwrap_or_default(),
                    date.map(|d| d.to_string()).unwrap_or_default(),
                    row.amount.to_string(),
                    row.currency.clone(),
                    row.status.clone(),
                    row.label.clone().unwrap_or_default(),
                    row.stable_id.clone(),
                ],
            )?;
        }
        printer.finish()?;
        store.close().await;
        Ok(0)
    })
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Where the store is, its schema version, what it holds and each account's last sync
    #[command(
        after_help = "Examples:\n  stet store info\n  stet store info --store postgres://stet@db/stet --output json"
    )]
    Info(InfoArgs),
    /// Create the store or bring its schema up to date (stet sync does it too)
    #[command(after_help = "Example:\n  stet store migrate --store postgres://stet@db/stet")]
    Migrate(MigrateArgs),
}

#[derive(Debug, Args)]
pub struct InfoArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    out: crate::output::OutputArgs,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    out: crate::output::OutputArgs,
}

pub fn run(command: StoreCommand, globals: &Globals) -> Result<u8, Failure> {
    match command {
        StoreCommand::Info(args) => info(args, globals),
        StoreCommand::Migrate(args) => {
            let location = location(&args.store, globals, None)?;
            runtime()?.block_on(async {
                let store = open(&args.store, &location, false).await?;
                let applied = store.migrate().await.map_err(failure)?;
                let version = store.schema_version().await.map_err(failure)?;
                let report = Report::new(
                    serde_json::json!({
                        "location": store.location(),
                        "backend": store.backend(),
                        "applied": applied,
                        "schema_version": version,
                    }),
                    format!(
                        "{}: {applied} migration(s) applied, schema version {version}\n",
                        store.location()
                    ),
                )
                .rows(
                    &["location", "backend", "applied", "schema_version"],
                    vec![vec![
                        store.location().to_owned(),
                        store.backend().to_owned(),
                        applied.to_string(),
                        version.to_string(),
                    ]],
                );
                store.close().await;
                report.print(args.out.report())?;
                Ok(0)
            })
        }
    }
}

fn info(args: InfoArgs, globals: &Globals) -> Result<u8, Failure> {
    let location = location(&args.store, globals, None)?;
    if let Location::Sqlite(path) = &location
        && !path.exists()
    {
        return Err(Failure::new(
            exit::NO_INPUT,
            format!(
                "no store at {}: run `stet sync` or `stet store migrate` to create it",
                location.display()
            ),
        ));
    }
    runtime()?.block_on(async {
        let store = open(&args.store, &location, true).await?;
        let info = store.info().await.map_err(failure)?;
        let format = Format::resolve(args.out.output);
        if !globals.quiet && matches!(format, Format::Table) {
            eprintln!(
                "store {} ({}), schema version {} (this stet knows {})\n{} profile(s), {} account(s), {} booked, {} pending, {} expired, {} deleted at the bank, {} balance snapshot(s), {} sync run(s)",
                info.location, info.backend, info.schema_version, info.known_schema_version, info.profiles,
                info.accounts, info.booked, info.pending, info.expired, info.deleted, info.balance_snapshots, info.sync_runs
            );
        }
        let mut printer = Printer::new(format, &["profile", "account", "name", "transactions", "last_sync"])?;
        for a in &info.account_list {
            let last = a.last_sync.map(rfc3339);
            let json = serde_json::json!({
                "location": info.location,
                "backend": info.backend,
                "schema_version": info.schema_version,
                "profile": a.profile,
                "iban": a.iban,
                "resource_id": a.resource_id,
                "name": a.name,
                "transactions": a.transactions,
                "last_sync": last,
            });
            let json = RawValue::from_string(json.to_string()).or_exit(1, "cannot write JSON")?;
            printer.row(
                &json,
                vec![
                    a.profile.clone(),
                    a.iban.clone().or(a.resource_id.clone()).unwrap_or_default(),
                    a.name.clone().unwrap_or_default(),
                    a.transactions.to_string(),
                    last.unwrap_or_else(|| "never".into()),
                ],
            )?;
        }
        printer.finish()?;
        store.close().await;
        Ok(0)
    })
}
