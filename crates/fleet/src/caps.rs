//! Per-bank caps across all workers: syncs at once (advisory-lock slots) and calls a second
//! (a token bucket row), and [`CappedSource`], the sync source that honours the latter.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use futures_util::stream::{BoxStream, StreamExt as _};
use stet_store::{BankSlot, ObservedAccount, ObservedBalance, ObservedTransaction, Store};
use stet_sync::{Source, SourceError, SyncPolicy, Unsynced};

use crate::{BankCapsConfig, FleetError, Metrics};

/// The caps of one bank's client (a configuration profile), shared by all workers through
/// the store.
#[derive(Debug, Clone)]
pub struct BankCaps {
    store: Store,
    bank: String,
    config: BankCapsConfig,
}

impl BankCaps {
    /// The caps of `bank` (a profile name) as configured.
    pub fn new(store: Store, bank: impl Into<String>, config: BankCapsConfig) -> Self {
        BankCaps {
            store,
            bank: bank.into(),
            config,
        }
    }

    /// Waits for one of the bank's concurrency slots (none when uncapped). Held until dropped.
    pub async fn slot(&self) -> Result<Option<BankSlot>, FleetError> {
        let Some(n) = self.config.max_concurrency.filter(|n| *n > 0) else {
            return Ok(None);
        };
        let mut wait = Duration::from_millis(20);
        loop {
            if let Some(slot) = self.store.try_bank_slot(&self.bank, n).await? {
                return Ok(Some(slot));
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_millis(500));
        }
    }

    /// Waits until the bank's calls-a-second allow one more call.
    pub async fn call(&self) -> Result<(), FleetError> {
        let Some(rate) = self.config.max_calls_per_second.filter(|r| *r > 0.0) else {
            return Ok(());
        };
        // Bursts of one second's worth: a cap of 10/s allows 10 at once, then 10 a second.
        let burst = rate.max(1.0);
        while let Some(wait) = self.store.take_bank_call(&self.bank, rate, burst).await? {
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }
}

/// A source whose every call first takes its turn under the bank's calls-a-second cap, and
/// is counted in the metrics.
pub struct CappedSource {
    inner: Arc<dyn Source>,
    caps: BankCaps,
    metrics: Metrics,
}

impl CappedSource {
    /// `inner`, capped by `caps`.
    pub fn new(inner: Arc<dyn Source>, caps: BankCaps, metrics: Metrics) -> Self {
        CappedSource {
            inner,
            caps,
            metrics,
        }
    }

    async fn turn(&self) -> Result<(), SourceError> {
        self.caps
            .call()
            .await
            .map_err(|e| SourceError::Failed(Box::new(e)))
    }

    fn count<T>(&self, result: &Result<T, SourceError>) {
        let status = match result {
            Ok(_) => "ok",
            Err(SourceError::BudgetSpent { .. }) => "budget",
            Err(_) => "error",
        };
        self.metrics.call(&self.caps.bank, status);
    }
}

impl Source for CappedSource {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn bank(&self) -> &str {
        self.inner.bank()
    }
    fn policy(&self) -> SyncPolicy {
        self.inner.policy()
    }
    fn accounts(&self) -> BoxFuture<'_, Result<Vec<ObservedAccount>, SourceError>> {
        async move {
            self.turn().await?;
            let r = self.inner.accounts().await;
            self.count(&r);
            r
        }
        .boxed()
    }
    fn balances<'a>(
        &'a self,
        account: &'a ObservedAccount,
    ) -> BoxFuture<'a, Result<Vec<ObservedBalance>, SourceError>> {
        async move {
            self.turn().await?;
            let r = self.inner.balances(account).await;
            self.count(&r);
            r
        }
        .boxed()
    }
    fn transactions<'a>(
        &'a self,
        account: &'a ObservedAccount,
        from: Option<time::Date>,
    ) -> BoxStream<'a, Result<Vec<ObservedTransaction>, SourceError>> {
        // Each page is one call: its turn is taken before the page is asked for.
        let pages = self.inner.transactions(account, from);
        futures_util::stream::unfold((pages, false), move |(mut pages, done)| async move {
            if done {
                return None;
            }
            if let Err(e) = self.turn().await {
                return Some((Err(e), (pages, true)));
            }
            let page = pages.next().await?;
            self.count(&page);
            Some((page, (pages, false)))
        })
        .boxed()
    }
    fn calls(&self) -> u64 {
        self.inner.calls()
    }
    fn unsynced(&self) -> Vec<Unsynced> {
        self.inner.unsynced()
    }
    fn budget_left<'a>(
        &'a self,
        account: &'a ObservedAccount,
    ) -> BoxFuture<'a, Result<Option<u32>, SourceError>> {
        self.inner.budget_left(account)
    }
}
