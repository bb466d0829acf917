//! `stet sync`: the PSU's accounts, balances and transactions into the store, a little at a
//! time. The engine is `stet-sync`; this is its command line.

use std::io::IsTerminal as _;
use std::sync::Arc;

use clap::Args;
use stet_sync::{
    AccountOutcome, PowensSource, Source, SourceError, StetSource, SyncError, SyncOptions,
    SyncReport, UnsyncedKind,
};
use stet_transport::config;

use crate::Globals;
use crate::exit::{self, Failure};
use crate::output::{Format, Report};
use crate::store::{StoreArgs, failure, location, open, runtime};

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  stet sync                                     # the profile's accounts, incrementally
  stet sync --all-profiles                      # every profile of the configuration file
  stet sync --account FR7630004010006746778722047 --from 2025-01-01 --full
  stet sync --store postgres://stet@db/stet

The first sync of an account fetches everything the consent allows (the bank's default window,
or from --from with the extended_transaction_history scope). Later ones ask only from the
newest booked date minus the bank's overlap (7 days unless its profile says otherwise), plus
what is still pending. One line per account on stderr; `stet history` reads the result.

A Powens profile syncs the enabled accounts of its usable connections, from min_date = the
newest booked date minus 7 days, or the oldest coming transaction. A connection that needs the
PSU is reported on its own line with what to run (exit 77; 75 or 69 when only waiting on the
bank), the others are synced; accounts not enabled are listed, never enabled by stet. Powens
reads the banks on its own schedule; --refresh asks it to read them now.")]
pub struct SyncArgs {
    /// Sync every profile of the configuration file, one after the other
    #[arg(long, conflicts_with = "account")]
    all_profiles: bool,
    /// Only this account: its IBAN or resource id
    #[arg(long, value_name = "ACCOUNT")]
    account: Option<String>,
    /// Fetch from this date (YYYY-MM-DD), whatever is stored
    #[arg(long, value_name = "DATE", value_parser = crate::data::parse_date)]
    from: Option<time::Date>,
    /// Fetch everything the consent allows, as a first sync does
    #[arg(long)]
    full: bool,
    /// Accounts fetched at once
    #[arg(long, value_name = "N", default_value_t = 4)]
    concurrency: usize,
    /// Powens: ask Powens to read each connection's bank now, before reading Powens (one call
    /// per connection; without it, a sync reads what Powens read on its own schedule)
    #[arg(long)]
    refresh: bool,
    /// Powens: transactions per page asked (1 to 1000) [default: 1000]
    #[arg(long, value_name = "N")]
    limit: Option<u32>,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    output: crate::output::OutputArgs,
}

/// The exit code and message for a failed sync.
fn sync_failure(e: SyncError) -> Failure {
    match e {
        SyncError::Store(e) => failure(e),
        SyncError::NoSuchAccount(_) => Failure::new(1, e),
        SyncError::Source { ref error, .. } => {
            let code = match error {
                SourceError::BudgetSpent { .. } => exit::TEMPORARY,
                SourceError::Failed(inner) => {
                    if let Some(client) = inner.downcast_ref::<stet_client::ClientError>() {
                        exit_code(client)
                    } else if let Some(powens) = inner.downcast_ref::<stet_powens::PowensError>() {
                        crate::powens::exit_code(powens)
                    } else {
                        1
                    }
                }
            };
            Failure::new(code, e)
        }
    }
}

fn exit_code(e: &stet_client::ClientError) -> u8 {
    use stet_client::ClientError as E;
    match e {
        E::Transport(t) => exit::for_transport(t),
        E::UnreadableBankData { .. } | E::PaginationLoop { .. } | E::Link { .. } => exit::DATA,
        E::ExtendedHistoryConsent { .. } => exit::AUTH,
        E::BudgetSpent { .. } => exit::TEMPORARY,
        _ => 1,
    }
}

pub fn run(args: SyncArgs, globals: &Globals) -> Result<u8, Failure> {
    let profiles: Vec<String> = if args.all_profiles {
        let (path, _) = crate::profile::config_path(globals);
        let path = path.ok_or_else(|| {
            Failure::new(
                exit::CONFIG,
                "no configuration file: --all-profiles syncs the profiles of one",
            )
        })?;
        let file = config::load_file(&path).map_err(|e| Failure::new(exit::CONFIG, e))?;
        if file.profiles.is_empty() {
            return Err(Failure::new(
                exit::CONFIG,
                format!("{} has no profile", path.display()),
            ));
        }
        file.profiles.keys().cloned().collect()
    } else {
        vec![String::new()]
    };
    let mut code = 0;
    let mut failed = Vec::new();
    let mut results = Vec::new();
    let mut single_failure = None;
    for name in profiles {
        let mut globals = globals.clone();
        if !name.is_empty() {
            globals.profile = Some(name.clone());
        }
        let (result, failure) = match sync_profile(&args, &globals) {
            Ok(synced) => (Some(synced.json), synced.failure),
            Err(f) => (None, Some(f)),
        };
        results.extend(result);
        match failure {
            None => {}
            // With --all-profiles, one profile's failure does not keep the others from syncing.
            Some(f) if args.all_profiles => {
                eprintln!("profile {name}: {}", f.message());
                code = code.max(f.code());
                failed.push(name);
            }
            Some(f) => single_failure = Some(f),
        }
    }
    // The result goes to stdout whenever the store was written, also for a sync that left
    // accounts out (its exit code says so): a script needs to know which ones.
    if args.output.output.is_some_and(|f| f != Format::Table) && !results.is_empty() {
        let rows = results.iter().flat_map(csv_rows).collect();
        let json = if args.all_profiles {
            serde_json::Value::Array(results)
        } else {
            results.remove(0)
        };
        Report::new(json, String::new())
            .rows(CSV_COLUMNS, rows)
            .print(args.output.report())?;
    }
    if let Some(f) = single_failure {
        return Err(f);
    }
    if !failed.is_empty() {
        return Err(Failure::new(
            code,
            format!(
                "{} profile(s) not wholly synced: {}; the others were (see the lines above)",
                failed.len(),
                failed.join(", ")
            ),
        ));
    }
    Ok(code)
}

/// A profile's sync that ran to its end: its result, and the failure to report when it left
/// accounts or connections out.
struct Synced {
    json: serde_json::Value,
    failure: Option<Failure>,
}

/// The CSV of a sync: one row per account.
const CSV_COLUMNS: &[&str] = &[
    "profile",
    "account",
    "outcome",
    "calls",
    "new",
    "updated",
    "booked_from_pending",
    "expired",
    "retry_at",
];

fn csv_rows(profile: &serde_json::Value) -> Vec<Vec<String>> {
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::Null => String::new(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let accounts = profile["accounts"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    accounts
        .iter()
        .map(|a| {
            std::iter::once(text(&profile["profile"]))
                .chain(CSV_COLUMNS[1..].iter().map(|c| text(&a[*c])))
                .collect()
        })
        .collect()
}

/// The documented JSON of a sync (`docs/output.md`).
fn report_json(profile: &str, store: &str, report: &SyncReport) -> serde_json::Value {
    use serde_json::json;
    let date = |d: Option<time::Date>| d.map(|d| d.to_string());
    let accounts: Vec<serde_json::Value> = report
        .accounts
        .iter()
        .map(|a| match &a.outcome {
            AccountOutcome::Synced {
                report,
                from,
                calls,
                budget_left,
            } => json!({
                "account": a.account,
                "outcome": "synced",
                "from": date(*from),
                "calls": calls,
                "budget_left": budget_left,
                "listed": report.listed,
                "new": report.new,
                "updated": report.updated,
                "booked_from_pending": report.booked_from_pending,
                "expired": report.expired,
                "deleted": report.deleted,
                "unchanged": report.unchanged,
            }),
            AccountOutcome::Skipped { reason, retry_at } => json!({
                "account": a.account,
                "outcome": "skipped",
                "reason": reason,
                "retry_at": retry_at.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok()),
            }),
        })
        .collect();
    let unsynced: Vec<serde_json::Value> = report
        .unsynced
        .iter()
        .map(|u| {
            json!({
                "what": u.what,
                "reason": u.reason,
                "kind": match u.kind {
                    UnsyncedKind::NeedsPsu => "needs_psu",
                    UnsyncedKind::RetryLater => "retry_later",
                    UnsyncedKind::Unavailable => "unavailable",
                    UnsyncedKind::NotEnabled => "not_enabled",
                },
            })
        })
        .collect();
    json!({
        "profile": profile,
        "store": store,
        "run": report.run.as_str(),
        "calls": report.calls,
        "complete": report.skipped() == 0 && report.blocked().next().is_none(),
        "accounts": accounts,
        "unsynced": unsynced,
        "warnings": report.warnings,
    })
}

/// The store location, the source and the profile's name for a sync of the chosen profile.
type Prepared = (stet_store::Location, Arc<dyn Source>, String);

fn prepare(args: &SyncArgs, globals: &Globals) -> Result<Prepared, Failure> {
    if let Some(profile) = crate::powens::profile(globals)? {
        let limit = args.limit.unwrap_or(1000);
        if !(1..=1000).contains(&limit) {
            return Err(Failure::new(
                2,
                format!("--limit {limit}: Powens pages hold 1 to 1000 transactions"),
            ));
        }
        let location = location(&args.store, globals, None)?;
        let client = Arc::new(crate::powens::client(&profile)?);
        return Ok((
            location,
            Arc::new(PowensSource::new(client, limit).with_refresh(args.refresh)),
            profile.name,
        ));
    }
    if args.limit.is_some() {
        return Err(Failure::new(
            2,
            "--limit is for Powens profiles: a STET bank chooses its own page size",
        ));
    }
    // With --all-profiles, --refresh is for the Powens ones among them.
    if args.refresh && !args.all_profiles {
        return Err(Failure::new(
            2,
            "--refresh is for Powens profiles: a STET sync always reads the bank itself",
        ));
    }
    let profile = crate::profile::load(globals)?;
    let location = location(&args.store, globals, profile.store.as_deref())?;
    let client = crate::profile::client_for(&profile, globals, Some(args.concurrency))?;
    Ok((location, Arc::new(StetSource::new(client)), profile.name))
}

/// What a sync left out (a Powens connection that needs the PSU, an account not enabled):
/// one line each, and the exit code the blocked ones call for.
fn report_unsynced(report: &SyncReport, quiet: bool) -> Option<Failure> {
    let mut code = 0;
    let mut blocked = Vec::new();
    for u in &report.unsynced {
        match u.kind {
            UnsyncedKind::NotEnabled => {
                if !quiet {
                    eprintln!("{u}");
                }
                continue;
            }
            UnsyncedKind::NeedsPsu => code = code.max(exit::AUTH),
            UnsyncedKind::RetryLater => code = code.max(exit::TEMPORARY),
            UnsyncedKind::Unavailable => code = code.max(exit::UNAVAILABLE),
        }
        eprintln!("{u}");
        blocked.push(u.what.clone());
    }
    (!blocked.is_empty()).then(|| {
        Failure::new(
            code,
            format!(
                "{} not synced ({}); {} account(s) were synced and stored whole. Run what each line above says, then `stet sync` again",
                blocked.join(", "),
                if blocked.len() == 1 {
                    "see its line above"
                } else {
                    "see their lines above"
                },
                report.accounts.len()
            ),
        )
    })
}

fn sync_profile(args: &SyncArgs, globals: &Globals) -> Result<Synced, Failure> {
    let (location, source, profile_name) = prepare(args, globals)?;
    let options = SyncOptions {
        profile: profile_name.clone(),
        account: args.account.clone(),
        from: args.from,
        full: args.full,
        concurrency: args.concurrency.max(1),
        connection: None,
    };
    let quiet = globals.quiet;
    runtime()?.block_on(async {
        let store = open(&args.store, &location, true).await?;
        let bar = if quiet || !std::io::stderr().is_terminal() {
            indicatif::ProgressBar::hidden()
        } else {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {pos} account(s) synced into {msg} ({elapsed})")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.set_message(store.location().to_owned());
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        };
        let result = stet_sync::sync(&store, source, &options, |line| {
            if !quiet {
                bar.suspend(|| eprintln!("{line}"));
            }
            bar.inc(1);
        })
        .await;
        bar.finish_and_clear();
        store.close().await;
        let report = result.map_err(sync_failure)?;
        for warning in &report.warnings {
            eprintln!("warning: {warning}");
        }
        let json = report_json(&profile_name, &location.display(), &report);
        if let Some(failure) = report_unsynced(&report, quiet) {
            return Ok(Synced { json, failure: Some(failure) });
        }
        let skipped: Vec<String> = report
            .accounts
            .iter()
            .filter_map(|a| match &a.outcome {
                AccountOutcome::Skipped { retry_at, .. } => Some(match retry_at {
                    Some(t) => format!("{} (retry after {t})", a.account),
                    None => a.account.clone(),
                }),
                _ => None,
            })
            .collect();
        if !skipped.is_empty() {
            let failure = Failure::new(
                exit::TEMPORARY,
                format!(
                    "{} account(s) skipped, their unattended budget spent: {}; the others were synced. \
                     Run `stet sync` again then, or now with the PSU present (--psu-ip)",
                    skipped.len(),
                    skipped.join(", ")
                ),
            );
            return Ok(Synced { json, failure: Some(failure) });
        }
        if !quiet {
            eprintln!(
                "synced {} account(s) of profile {} into {}: {} call(s)",
                report.accounts.len(),
                profile_name,
                location.display(),
                report.calls
            );
        }
        Ok(Synced { json, failure: None })
    })
}
