//! The sync itself: windows, budget, fetching accounts concurrently, writing each whole.

use std::fmt;
use std::sync::Arc;

use futures_util::stream::StreamExt as _;
use stet_store::{
    AccountBatch, ApplyReport, ObservedAccount, RunId, RunOutcome, Store, StoreError,
};
use time::{Date, Duration, OffsetDateTime};

use crate::{Source, SourceError, Unsynced, UnsyncedKind};

/// What to sync.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// The configuration profile the data belongs to.
    pub profile: String,
    /// Only this account: its IBAN or resource id.
    pub account: Option<String>,
    /// Fetch from this date (a first sync, `full`, or to fill a gap).
    pub from: Option<Date>,
    /// Fetch everything the consent allows, as a first sync does, whatever is stored.
    pub full: bool,
    /// Accounts fetched at once (default 4).
    pub concurrency: usize,
    /// The fleet connection (a PSU's consent) this sync is for, recorded on each account it
    /// writes; `None` for a person's own profile.
    pub connection: Option<i64>,
}

impl SyncOptions {
    /// Every account of `profile`, incrementally.
    pub fn new(profile: impl Into<String>) -> Self {
        SyncOptions {
            profile: profile.into(),
            account: None,
            from: None,
            full: false,
            concurrency: 4,
            connection: None,
        }
    }
}

/// What happened to one account.
#[derive(Debug, Clone)]
pub enum AccountOutcome {
    /// Fetched and written.
    Synced {
        /// What the store did.
        report: ApplyReport,
        /// The window's first day (`None`: the bank's default window).
        from: Option<Date>,
        /// Calls this account cost.
        calls: u64,
        /// Unattended calls left for it afterwards; `None` with the PSU present.
        budget_left: Option<u32>,
    },
    /// Not fetched: the unattended budget is spent.
    Skipped {
        /// Why.
        reason: String,
        /// When to try again.
        retry_at: Option<OffsetDateTime>,
    },
}

/// One account's line of a sync.
#[derive(Debug, Clone)]
pub struct AccountLine {
    /// The IBAN, or the bank's resource id.
    pub account: String,
    /// What happened.
    pub outcome: AccountOutcome,
}

impl fmt::Display for AccountLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.outcome {
            AccountOutcome::Synced {
                report,
                calls,
                budget_left,
                ..
            } => {
                write!(
                    f,
                    "{}: {} new, {} updated, {} booked from pending, {} expired",
                    self.account,
                    report.new,
                    report.updated,
                    report.booked_from_pending,
                    report.expired,
                )?;
                if report.deleted > 0 {
                    write!(f, ", {} deleted at the bank", report.deleted)?;
                }
                write!(f, "; {calls} call(s)")?;
                match budget_left {
                    Some(n) => write!(f, ", {n} unattended call(s) left today"),
                    // The PSU is present (a STET bank), or the source keeps no such count
                    // (an aggregator such as Powens refreshes on its own schedule).
                    None => write!(f, ", no unattended budget counted"),
                }
            }
            AccountOutcome::Skipped { reason, retry_at } => {
                write!(f, "{}: skipped: {reason}", self.account)?;
                if let Some(at) = retry_at {
                    let at = at
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default();
                    write!(f, "; retry after {at}, or with the PSU present (--psu-ip)")?;
                }
                Ok(())
            }
        }
    }
}

/// The whole sync.
#[derive(Debug, Clone)]
pub struct SyncReport {
    /// The run's id in the store.
    pub run: RunId,
    /// Each account, in the order written.
    pub accounts: Vec<AccountLine>,
    /// Calls made to the bank.
    pub calls: u64,
    /// What the user should know (history that could not be fetched, …).
    pub warnings: Vec<String>,
    /// Parts of the source left out (a connection that needs the PSU, an account not
    /// enabled), each keeping what was stored.
    pub unsynced: Vec<Unsynced>,
}

impl SyncReport {
    /// Accounts skipped (budget).
    pub fn skipped(&self) -> usize {
        self.accounts
            .iter()
            .filter(|a| matches!(a.outcome, AccountOutcome::Skipped { .. }))
            .count()
    }

    /// The parts left out that someone must act on (accounts not enabled are the PSU's
    /// choice, not a failure).
    pub fn blocked(&self) -> impl Iterator<Item = &Unsynced> {
        self.unsynced
            .iter()
            .filter(|u| u.kind != UnsyncedKind::NotEnabled)
    }
}

/// Why a sync stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// The store failed; what was written before stays.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The source failed.
    #[error("{error}{}", written_note(.written, .total))]
    Source {
        /// The source's error (a STET source's is a `stet_client::ClientError`).
        error: SourceError,
        /// Accounts written whole before it.
        written: usize,
        /// Accounts to sync.
        total: usize,
    },
    /// No account matches `--account`.
    #[error("no account `{0}` among the PSU's accounts (`stet accounts` lists them)")]
    NoSuchAccount(String),
}

fn written_note(written: &usize, total: &usize) -> String {
    if *total == 0 {
        String::new()
    } else {
        format!(
            " ({written} of {total} account(s) were synced and stored whole; the others are as \
             before: run `stet sync` again once the cause is fixed)"
        )
    }
}

/// One account fetched: ready to write.
struct Fetched {
    account: ObservedAccount,
    batch: Option<AccountBatch>,
    budget_left: Option<u32>,
    skipped: Option<(String, Option<OffsetDateTime>)>,
}

fn label(a: &ObservedAccount) -> String {
    a.iban.clone().unwrap_or_else(|| a.resource_id.clone())
}

/// Runs one sync of `options.profile` from `source` into `store`, calling `on_account` as
/// each account is written or skipped. See the crate manual.
pub async fn sync(
    store: &Store,
    source: Arc<dyn Source>,
    options: &SyncOptions,
    mut on_account: impl FnMut(&AccountLine) + Send,
) -> Result<SyncReport, SyncError> {
    let run = store.begin_run(&options.profile, source.name()).await?;
    let result = run_sync(store, source.clone(), options, &run, &mut on_account).await;
    let calls = source.calls();
    let outcome = match &result {
        Ok(report) => {
            let blocked: Vec<String> = report.blocked().map(|u| u.to_string()).collect();
            RunOutcome {
                outcome: if report.skipped() > 0 || !blocked.is_empty() {
                    "partial"
                } else {
                    "ok"
                },
                calls,
                error: (!blocked.is_empty()).then(|| blocked.join("; ")),
            }
        }
        Err(e) => RunOutcome {
            outcome: "failed",
            calls,
            error: Some(e.to_string()),
        },
    };
    // The run's record is a log: failing to write it does not undo a sync that worked.
    if let Err(e) = store.finish_run(&run, &outcome).await {
        tracing::warn!("cannot record the end of the sync run: {e}");
    }
    result.map(|mut r| {
        r.calls = calls;
        r
    })
}

async fn run_sync(
    store: &Store,
    source: Arc<dyn Source>,
    options: &SyncOptions,
    run: &RunId,
    on_account: &mut (impl FnMut(&AccountLine) + Send),
) -> Result<SyncReport, SyncError> {
    let policy = source.policy();
    let mut accounts = source.accounts().await.map_err(|error| SyncError::Source {
        error,
        written: 0,
        total: 0,
    })?;
    let unsynced = source.unsynced();
    if let Some(wanted) = &options.account {
        let wanted_iban = wanted.replace(' ', "").to_ascii_uppercase();
        accounts.retain(|a| &a.resource_id == wanted || a.iban.as_deref() == Some(&wanted_iban));
        if accounts.is_empty() {
            return Err(SyncError::NoSuchAccount(wanted.clone()));
        }
    }
    let total = accounts.len();
    let mut warnings = Vec::new();

    // The windows, from what is stored.
    let today = OffsetDateTime::now_utc().date();
    let oldest_allowed = today - Duration::days(i64::from(policy.history_days.max(1)) - 1);
    let mut plans = Vec::with_capacity(total);
    for account in accounts {
        let key = account.key(source.bank());
        let state = store.account_state(&options.profile, &key).await?;
        let from = if options.full || !state.synced_before || options.from.is_some() {
            options.from
        } else {
            let overlap = Duration::days(i64::from(policy.overlap_days));
            let after_booked = state.newest_booked.map(|d| d - overlap);
            let from = match (after_booked, state.oldest_pending) {
                (Some(a), Some(p)) => Some(a.min(p)),
                (a, p) => a.or(p),
            };
            match from {
                Some(f) if f < oldest_allowed => {
                    warnings.push(format!(
                        "{}: transactions from {f} to {oldest_allowed} are older than the bank \
                         gives without the extended-history consent and were not asked for: \
                         `stet auth login --scope aisp --scope extended_transaction_history`, \
                         then `stet sync --account {} --from {f}`",
                        label(&account),
                        label(&account)
                    ));
                    Some(oldest_allowed)
                }
                other => other,
            }
        };
        // A windowed sync of an account synced before also asks what changed since then
        // (see `Source::changed_since`), an hour earlier: the source's clock may differ from
        // this machine's, and a Paris time in the hour that happens twice in October reads as
        // the first one.
        let since = from
            .and(state.last_synced)
            .map(|last| last - Duration::hours(1));
        plans.push((account, from, since));
    }

    // Accounts are fetched on the runtime's workers, at most `concurrency` at a time; the
    // store writes each as it arrives, one at a time.
    let (sender, mut receiver) =
        tokio::sync::mpsc::channel::<Result<Fetched, SourceError>>(options.concurrency.max(1));
    let semaphore = Arc::new(tokio::sync::Semaphore::new(options.concurrency.max(1)));
    let mut tasks = tokio::task::JoinSet::new();
    for (account, from, since) in plans {
        let (source, sender, semaphore) = (source.clone(), sender.clone(), semaphore.clone());
        let profile = options.profile.clone();
        let connection = options.connection;
        tasks.spawn(async move {
            let Ok(_permit) = semaphore.acquire_owned().await else {
                return;
            };
            let fetched = fetch(&*source, profile, connection, account, from, since).await;
            let _ = sender.send(fetched).await;
        });
    }
    drop(sender);

    let mut lines = Vec::with_capacity(total);
    let mut written = 0;
    while let Some(fetched) = receiver.recv().await {
        let fetched = match fetched {
            Ok(f) => f,
            Err(error) => {
                tasks.abort_all();
                return Err(SyncError::Source {
                    error,
                    written,
                    total,
                });
            }
        };
        let line = match (fetched.batch, fetched.skipped) {
            (Some(batch), _) => {
                let report = store
                    .apply(run, &batch)
                    .await
                    .inspect_err(|_| tasks.abort_all())?;
                written += 1;
                AccountLine {
                    account: label(&fetched.account),
                    outcome: AccountOutcome::Synced {
                        report,
                        from: batch.date_from,
                        calls: batch.calls,
                        budget_left: fetched.budget_left,
                    },
                }
            }
            (None, skipped) => {
                let (reason, retry_at) = skipped.unwrap_or_default();
                AccountLine {
                    account: label(&fetched.account),
                    outcome: AccountOutcome::Skipped { reason, retry_at },
                }
            }
        };
        on_account(&line);
        lines.push(line);
    }
    Ok(SyncReport {
        run: run.clone(),
        accounts: lines,
        calls: 0,
        warnings,
        unsynced,
    })
}

/// Balances, every page of one account's window, and what changed outside it since `since`.
async fn fetch(
    source: &dyn Source,
    profile: String,
    connection: Option<i64>,
    account: ObservedAccount,
    from: Option<Date>,
    since: Option<OffsetDateTime>,
) -> Result<Fetched, SourceError> {
    let skip = |account: ObservedAccount, e: SourceError| -> Result<Fetched, SourceError> {
        match e {
            SourceError::BudgetSpent { message, resets_at } => Ok(Fetched {
                account,
                batch: None,
                budget_left: Some(0),
                skipped: Some((message, resets_at)),
            }),
            other => Err(other),
        }
    };
    if let Err(e) = source.budget_left(&account).await {
        return skip(account, e);
    }
    let mut transactions = Vec::new();
    let mut pages_read = 0u64;
    let mut pages = source.transactions(&account, from);
    while let Some(page) = pages.next().await {
        match page {
            Ok(mut items) => {
                pages_read += 1;
                transactions.append(&mut items);
            }
            Err(e) => {
                drop(pages);
                return skip(account, e);
            }
        }
    }
    drop(pages);
    let failed = match since.and_then(|since| source.changed_since(&account, since)) {
        None => None,
        Some(mut changed) => {
            // The window's own, by entry reference, are not taken twice.
            let mut listed: std::collections::HashSet<String> = transactions
                .iter()
                .filter_map(|t| t.entry_reference.clone())
                .collect();
            let mut failed = None;
            while let Some(page) = changed.next().await {
                match page {
                    Ok(items) => {
                        pages_read += 1;
                        transactions.extend(items.into_iter().filter(|t| {
                            t.entry_reference
                                .as_ref()
                                .is_some_and(|r| listed.insert(r.clone()))
                        }));
                    }
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            failed
        }
    };
    if let Some(e) = failed {
        return skip(account, e);
    }
    let balances = match source.balances(&account).await {
        Ok(b) => b,
        Err(e) => return skip(account, e),
    };
    // One call a page (an empty list is one call answered 204), and one for the balances.
    let calls = pages_read.max(1) + 1;
    let budget_left = source.budget_left(&account).await.unwrap_or(Some(0));
    let policy = source.policy();
    Ok(Fetched {
        batch: Some(AccountBatch {
            profile,
            bank: source.bank().to_owned(),
            account: account.clone(),
            balances,
            transactions,
            date_from: from,
            policy: policy.ids,
            calls,
            connection_id: connection,
        }),
        account,
        budget_left,
        skipped: None,
    })
}
