//! The worker: claims due jobs, runs each connection's sync under a renewed lease, and
//! completes the job only while the lease is still its own.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use stet_client::bank::BankProfile;
use stet_client::{ClientError, ClientOptions, StetClient};
use stet_store::{ClaimedJob, JobCompletion, LATE_AFTER, Store, next_slot, state};
use stet_sync::{SourceError, StetSource, SyncError, SyncOptions};
use stet_transport::{MemoryTokenStore, PsuContext, TokenStore, Transport, TransportError};
use time::OffsetDateTime;

use crate::{
    BankCaps, BankCapsConfig, CappedSource, FleetError, Hooks, Metrics, StoreBudget, TokenSource,
    Vault,
};

/// How the worker gets a configuration profile's transport (its QWAC, signing key, OAuth
/// client) with the tokens of one connection. The CLI reads the configuration file.
pub trait ProfileSource: Send + Sync {
    /// The transport of configuration profile `profile`, its tokens kept in `tokens`, and
    /// its bank dialect; `Err` says what is wrong with the profile.
    fn transport(
        &self,
        profile: &str,
        tokens: Arc<dyn TokenStore>,
    ) -> Result<(Transport, BankProfile), String>;
}

/// How a worker runs.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Its name in leases and job runs (default: host and process id).
    pub id: String,
    /// Jobs run at once.
    pub concurrency: usize,
    /// How long a claim holds before another worker may take the job; renewed every third.
    pub lease: Duration,
    /// Exit when no job is due and none is leased by another worker.
    pub exit_when_idle: bool,
    /// How often an idle worker looks for due jobs.
    pub poll: Duration,
    /// Caps per configuration profile.
    pub caps: BTreeMap<String, BankCapsConfig>,
    /// Consent hooks.
    pub hooks: Hooks,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            id: default_worker_id(),
            concurrency: 4,
            lease: Duration::from_secs(60),
            exit_when_idle: false,
            poll: Duration::from_secs(2),
            caps: BTreeMap::new(),
            hooks: Hooks::default(),
        }
    }
}

/// `HOST-PID`.
pub fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".to_owned());
    format!("{host}-{}", std::process::id())
}

/// What a worker did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerSummary {
    /// Jobs claimed.
    pub claimed: u64,
    /// Jobs run to the end.
    pub done: u64,
    /// Jobs that ended otherwise (retried later, stopped, lease lost).
    pub other: u64,
}

/// A worker process's loop.
pub struct Worker {
    store: Store,
    vault: Vault,
    profiles: Arc<dyn ProfileSource>,
    options: WorkerOptions,
    metrics: Metrics,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("id", &self.options.id)
            .finish_non_exhaustive()
    }
}

/// How often the consent lifecycle is checked and hooks delivered by a busy worker.
const HOUSEKEEPING: Duration = Duration::from_secs(10);
/// Consent events this long before the validity date.
pub const EXPIRES_SOON: Duration = Duration::from_secs(14 * 24 * 3600);

impl Worker {
    /// A worker over `store` (PostgreSQL), opening tokens with `vault`.
    pub fn new(
        store: Store,
        vault: Vault,
        profiles: Arc<dyn ProfileSource>,
        options: WorkerOptions,
        metrics: Metrics,
    ) -> Self {
        Worker {
            store,
            vault,
            profiles,
            options,
            metrics,
        }
    }

    /// Runs until `shutdown` resolves (then claims nothing more and lets running jobs
    /// finish), or, with `exit_when_idle`, until nothing is left to do.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()>,
    ) -> Result<WorkerSummary, FleetError> {
        let me = Arc::new(self);
        let concurrency = me.options.concurrency.max(1);
        let semaphore = Arc::new(tokio::sync::Semaphore::new(concurrency));
        let mut tasks: tokio::task::JoinSet<&'static str> = tokio::task::JoinSet::new();
        let mut summary = WorkerSummary::default();
        let mut last_housekeeping: Option<Instant> = None;
        tokio::pin!(shutdown);
        tracing::info!(worker = %me.options.id, concurrency, "worker started");
        let account = |summary: &mut WorkerSummary, outcome: &str| {
            if outcome == "done" {
                summary.done += 1;
            } else {
                summary.other += 1;
            }
        };
        loop {
            while let Some(finished) = tasks.try_join_next() {
                account(&mut summary, finished.unwrap_or("failed"));
            }
            if last_housekeeping.is_none_or(|t| t.elapsed() >= HOUSEKEEPING) {
                me.housekeeping().await?;
                last_housekeeping = Some(Instant::now());
            }
            let free = semaphore.available_permits();
            if free > 0 {
                let jobs = me
                    .store
                    .claim_jobs(&me.options.id, me.options.lease, free as u32)
                    .await?;
                let claimed = jobs.len();
                for job in jobs {
                    summary.claimed += 1;
                    let Ok(permit) = semaphore.clone().acquire_owned().await else {
                        break;
                    };
                    let worker = me.clone();
                    tasks.spawn(async move {
                        let outcome = worker.run_job(job).await;
                        drop(permit);
                        outcome
                    });
                }
                if claimed == free {
                    // There may be more: claim again as soon as a job ends.
                    if let Some(finished) = tokio::select! {
                        f = tasks.join_next() => f,
                        _ = &mut shutdown => break,
                    } {
                        account(&mut summary, finished.unwrap_or("failed"));
                    }
                    continue;
                }
            }
            if me.options.exit_when_idle && tasks.is_empty() {
                me.housekeeping().await?;
                last_housekeeping = Some(Instant::now());
                let (due, leased_by_others) = me.store.queue_state(&me.options.id).await?;
                if due == 0 && leased_by_others == 0 {
                    break;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(me.options.poll) => {}
                Some(finished) = tasks.join_next(), if !tasks.is_empty() => {
                    account(&mut summary, finished.unwrap_or("failed"));
                }
                _ = &mut shutdown => break,
            }
        }
        // Stopping: claim nothing more; the running jobs finish (their leases renewed).
        if !tasks.is_empty() {
            tracing::info!(worker = %me.options.id, running = tasks.len(), "stopping: letting running jobs finish");
        }
        while let Some(finished) = tasks.join_next().await {
            account(&mut summary, finished.unwrap_or("failed"));
        }
        me.options.hooks.deliver(&me.store).await?;
        tracing::info!(worker = %me.options.id, claimed = summary.claimed, done = summary.done, "worker stopped");
        Ok(summary)
    }

    /// Runs one connection's due job here and now (`stet psu sync --wait`); its outcome, or
    /// `None` when the job is not due or another worker holds it.
    pub async fn run_connection(
        &self,
        connection_id: i64,
    ) -> Result<Option<&'static str>, FleetError> {
        let Some(job) = self
            .store
            .claim_connection_job(connection_id, &self.options.id, self.options.lease)
            .await?
        else {
            return Ok(None);
        };
        let outcome = self.run_job(job).await;
        self.options.hooks.deliver(&self.store).await?;
        Ok(Some(outcome))
    }

    async fn housekeeping(&self) -> Result<(), FleetError> {
        self.store.check_consents(EXPIRES_SOON).await?;
        self.options.hooks.deliver(&self.store).await?;
        Ok(())
    }

    /// One job, under a lease renewed every third of its length; returns its outcome.
    async fn run_job(&self, job: ClaimedJob) -> &'static str {
        let started = Instant::now();
        let started_at = OffsetDateTime::now_utc();
        let late = started_at - job.due_at > LATE_AFTER;
        self.metrics.claimed(late);
        let (lost_tx, lost_rx) = tokio::sync::oneshot::channel::<()>();
        let renew = {
            let store = self.store.clone();
            let (id, owner, lease) = (job.id, self.options.id.clone(), self.options.lease);
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(lease / 3).await;
                    match store.renew_lease(id, &owner, lease).await {
                        Ok(true) => {}
                        Ok(false) => {
                            let _ = lost_tx.send(());
                            return;
                        }
                        // A store that does not answer: try again; the lease may lapse.
                        Err(e) => tracing::warn!(job = id, "cannot renew the lease: {e}"),
                    }
                }
            })
        };
        let result = tokio::select! {
            r = self.sync_connection(&job) => Some(r),
            _ = lost_rx => None,
        };
        renew.abort();
        let mut completion = match result {
            Some(c) => c,
            None => {
                tracing::warn!(
                    connection = job.connection_id,
                    "lease lost mid-sync: the job is left to the worker that took it"
                );
                Outcome::retry(
                    "lost_lease",
                    OffsetDateTime::now_utc(),
                    Some("the lease was lost mid-sync".to_owned()),
                )
            }
        };
        completion.started_at = started_at;
        completion.kind = job.kind.clone();
        let unattended = if job.psu_ip.is_none() {
            completion.calls
        } else {
            0
        };
        let outcome: &'static str = match completion.outcome.as_str() {
            "done" => "done",
            "later" => "later",
            "stale_token" => "stale_token",
            "needs_psu" => "needs_psu",
            "lost_lease" => "lost_lease",
            _ => "failed",
        };
        match self
            .store
            .complete_job(&job, &self.options.id, &completion)
            .await
        {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                connection = job.connection_id,
                "the job's lease was lost: not completed (another worker has it)"
            ),
            Err(e) => tracing::warn!(
                connection = job.connection_id,
                "cannot complete the job (its lease will lapse and it runs again): {e}"
            ),
        }
        self.metrics.finished(
            outcome,
            started.elapsed().as_secs_f64(),
            completion.transactions,
            unattended,
        );
        outcome
    }

    /// The sync of one connection, and when its job is due next.
    async fn sync_connection(&self, job: &ClaimedJob) -> JobCompletion {
        let now = OffsetDateTime::now_utc();
        let id = job.connection_id;
        let connection = match self.store.connection(id).await {
            Ok(Some(c)) if c.state == state::ACTIVE => c,
            Ok(_) => {
                return Outcome::stop("failed", Some("the connection is not active".to_owned()));
            }
            Err(e) => return Outcome::backoff(job, e.to_string()),
        };
        let caps = BankCaps::new(
            self.store.clone(),
            connection.profile.clone(),
            self.options
                .caps
                .get(&connection.profile)
                .copied()
                .unwrap_or_default(),
        );
        // The slot first, then the token: a refresh is a call to the bank too.
        let _slot = match caps.slot().await {
            Ok(s) => s,
            Err(e) => return Outcome::backoff(job, e.to_string()),
        };
        let tokens: Arc<dyn TokenStore> = Arc::new(MemoryTokenStore::default());
        let (transport, bank) = match self.profiles.transport(&connection.profile, tokens) {
            Ok(t) => t,
            Err(e) => return Outcome::backoff(job, e),
        };
        let (token, refreshed) = match self.vault.access_token(id, transport.oauth()).await {
            Ok((token, source)) => {
                let refreshed = source == TokenSource::Refreshed;
                if refreshed {
                    self.metrics.refreshed();
                }
                (token, refreshed)
            }
            Err(FleetError::ConsentRefused { reason, .. }) => {
                tracing::warn!(
                    connection = id,
                    "consent refused: the connection needs the PSU ({reason})"
                );
                if let Err(e) = self
                    .store
                    .stop_connection(id, state::REVOKED, "revoked", &reason)
                    .await
                {
                    return Outcome::backoff(job, e.to_string());
                }
                return Outcome::stop("needs_psu", Some(reason));
            }
            Err(e) => return Outcome::backoff(job, e.to_string()),
        };
        // The transport gets the access token alone: it can never spend the refresh token
        // (only the vault, under the row lock, does), and it trusts the vault on freshness.
        let mut access = token.clone();
        access.refresh_token = None;
        access.expires_at = None;
        if let Err(e) = transport.store_token("aisp", access).await {
            return Outcome::backoff(job, e.to_string());
        }
        let budget =
            match StoreBudget::new(self.store.clone(), id, tokio::runtime::Handle::current()) {
                Some(b) => b,
                None => {
                    return Outcome::backoff(
                        job,
                        "the worker needs a multi-thread runtime".to_owned(),
                    );
                }
            };
        let options = ClientOptions {
            psu: job.psu_ip.clone().map(PsuContext::present),
            // One request at a time per sync: a bank's concurrency cap counts syncs.
            concurrency: 1,
            budget_store: Some(Arc::new(budget)),
            consent_key: "aisp".to_owned(),
        };
        let client = StetClient::with_options(transport, bank, options);
        let source = Arc::new(CappedSource::new(
            Arc::new(StetSource::new(client)),
            caps,
            self.metrics.clone(),
        ));
        let mut sync_options = SyncOptions::new(connection.profile.clone());
        sync_options.concurrency = 1;
        sync_options.connection = Some(id);
        let result = stet_sync::sync(&self.store, source, &sync_options, |_| {}).await;
        // The next of its slots at least half a period away: a run off its slots (`stet
        // schedule --now`, on demand, late) is not followed by one minutes later.
        let next = next_slot(
            connection.schedule_offset,
            now + time::Duration::seconds(stet_store::SLOT_SECONDS / 2),
        );
        match result {
            Ok(report) => {
                let transactions = report
                    .accounts
                    .iter()
                    .map(|a| match &a.outcome {
                        stet_sync::AccountOutcome::Synced { report, .. } => report.listed,
                        stet_sync::AccountOutcome::Skipped { .. } => 0,
                    })
                    .sum();
                let retry_at = report
                    .accounts
                    .iter()
                    .filter_map(|a| match &a.outcome {
                        stet_sync::AccountOutcome::Skipped { retry_at, .. } => {
                            Some(retry_at.unwrap_or(now + time::Duration::hours(1)))
                        }
                        _ => None,
                    })
                    .min();
                let mut c = match retry_at {
                    // Back-pressure: the budget of some account is spent; try those when it
                    // resets (the others were synced and stored).
                    Some(at) => Outcome::retry(
                        "later",
                        at.max(now),
                        Some("an account's unattended budget is spent".to_owned()),
                    ),
                    None => Outcome::done(next),
                };
                c.calls = report.calls;
                c.transactions = transactions;
                c
            }
            Err(SyncError::Source { error, .. }) => {
                self.source_failure(job, error, refreshed, now).await
            }
            Err(e) => Outcome::backoff(job, e.to_string()),
        }
    }

    async fn source_failure(
        &self,
        job: &ClaimedJob,
        error: SourceError,
        refreshed: bool,
        now: OffsetDateTime,
    ) -> JobCompletion {
        let message = error.to_string();
        let client = match &error {
            SourceError::Failed(inner) => inner.downcast_ref::<ClientError>(),
            SourceError::BudgetSpent { resets_at, .. } => {
                return Outcome::retry(
                    "later",
                    resets_at.unwrap_or(now + time::Duration::hours(1)),
                    Some(message),
                );
            }
        };
        let transport = match client {
            Some(ClientError::Transport(t)) => Some(t),
            Some(ClientError::BudgetSpent { resets_at, .. }) => {
                return Outcome::retry("later", *resets_at, Some(message));
            }
            _ => None,
        };
        match transport {
            // A token refreshed for this very run refused, on the third unfinished run in a
            // row: the bank hands out tokens its consent no longer covers (a consent ended
            // at the bank without a refusal of the refresh). Only the PSU can give a new one.
            Some(TransportError::ConsentRequired { .. })
                if refreshed && job.attempts + 1 >= FRESH_TOKEN_REFUSALS =>
            {
                let reason = format!(
                    "the bank refused an access token refreshed for this run, {FRESH_TOKEN_REFUSALS} \
                     unfinished runs in a row: the PSU must give a new consent"
                );
                tracing::warn!(connection = job.connection_id, "{reason}");
                if let Err(e) = self
                    .store
                    .stop_connection(job.connection_id, state::NEEDS_PSU, "needs_psu", &reason)
                    .await
                {
                    return Outcome::backoff(job, e.to_string());
                }
                Outcome::stop("needs_psu", Some(reason))
            }
            // The bank refused the access token (the transport holds no refresh token):
            // the next run refreshes it under the lock, at once the first times.
            Some(TransportError::ConsentRequired { .. }) => {
                if let Err(e) = self.store.mark_tokens_stale(job.connection_id).await {
                    return Outcome::backoff(job, e.to_string());
                }
                let due = if job.attempts < 3 {
                    now
                } else {
                    backoff_due(job, now)
                };
                Outcome::retry(
                    "stale_token",
                    due,
                    Some("the bank refused the access token".to_owned()),
                )
            }
            Some(TransportError::RateLimited { retry_after }) => Outcome::retry(
                "later",
                now + retry_after.map_or(time::Duration::minutes(15), |d| {
                    time::Duration::seconds(d.as_secs().max(1) as i64)
                }),
                Some(message),
            ),
            Some(TransportError::Http { status: 429, .. }) => {
                Outcome::retry("later", now + time::Duration::minutes(15), Some(message))
            }
            // A bank's 403 to an unattended call is its budget refusal.
            Some(TransportError::Http { status: 403, .. }) if job.psu_ip.is_none() => {
                Outcome::retry("later", now + time::Duration::hours(1), Some(message))
            }
            _ => Outcome::backoff(job, message),
        }
    }
}

/// Unfinished runs in a row, the last one's freshly refreshed token refused, before a
/// connection needs the PSU.
const FRESH_TOKEN_REFUSALS: i32 = 3;

/// After a failure: 30 s, doubling per attempt, at most 6 hours.
fn backoff_due(job: &ClaimedJob, now: OffsetDateTime) -> OffsetDateTime {
    let secs = 30i64
        .saturating_mul(1i64 << job.attempts.clamp(0, 10))
        .min(6 * 3600);
    now + time::Duration::seconds(secs)
}

struct Outcome;

impl Outcome {
    fn blank(
        outcome: &str,
        next_due: Option<OffsetDateTime>,
        retry: bool,
        error: Option<String>,
    ) -> JobCompletion {
        JobCompletion {
            outcome: outcome.to_owned(),
            next_due,
            retry,
            calls: 0,
            transactions: 0,
            error,
            started_at: OffsetDateTime::now_utc(),
            kind: String::new(),
        }
    }
    fn done(next: OffsetDateTime) -> JobCompletion {
        Outcome::blank("done", Some(next), false, None)
    }
    fn retry(outcome: &str, at: OffsetDateTime, error: Option<String>) -> JobCompletion {
        Outcome::blank(outcome, Some(at), true, error)
    }
    fn stop(outcome: &str, error: Option<String>) -> JobCompletion {
        Outcome::blank(outcome, None, false, error)
    }
    fn backoff(job: &ClaimedJob, error: String) -> JobCompletion {
        tracing::warn!(
            connection = job.connection_id,
            "sync failed (tried again later): {error}"
        );
        Outcome::blank(
            "failed",
            Some(backoff_due(job, OffsetDateTime::now_utc())),
            true,
            Some(error),
        )
    }
}
