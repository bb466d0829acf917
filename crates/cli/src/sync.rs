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
bank), the others are synced; accounts not enabled are listed, never enabled by stet.")]
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
    /// Powens: transactions per page asked (1 to 1000) [default: 1000]
    #[arg(long, value_name = "N")]
    limit: Option<u32>,
    #[command(flatten)]
    store: StoreArgs,
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
    for name in profiles {
        let mut globals = globals.clone();
        if !name.is_empty() {
            globals.profile = Some(name.clone());
        }
        match sync_profile(&args, &globals) {
            Ok(c) => code = code.max(c),
            // With --all-profiles, one profile's failure does not keep the others from syncing.
            Err(f) if args.all_profiles => {
                eprintln!("profile {name}: {}", f.message());
                code = code.max(f.code());
                failed.push(name);
            }
            Err(f) => return Err(f),
        }
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
            Arc::new(PowensSource::new(client, limit)),
            profile.name,
        ));
    }
    if args.limit.is_some() {
        return Err(Failure::new(
            2,
            "--limit is for Powens profiles: a STET bank chooses its own page size",
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

fn sync_profile(args: &SyncArgs, globals: &Globals) -> Result<u8, Failure> {
    let (location, source, profile_name) = prepare(args, globals)?;
    let options = SyncOptions {
        profile: profile_name.clone(),
        account: args.account.clone(),
        from: args.from,
        full: args.full,
        concurrency: args.concurrency.max(1),
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
        if let Some(failure) = report_unsynced(&report, quiet) {
            return Err(failure);
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
            return Err(Failure::new(
                exit::TEMPORARY,
                format!(
                    "{} account(s) skipped, their unattended budget spent: {}; the others were synced. \
                     Run `stet sync` again then, or now with the PSU present (--psu-ip)",
                    skipped.len(),
                    skipped.join(", ")
                ),
            ));
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
        Ok(0)
    })
}
