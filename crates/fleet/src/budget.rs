//! [`StoreBudget`]: the unattended budget of one connection, kept in the store.

use stet_client::{BudgetLedger, BudgetStore, ClientError};
use stet_store::Store;

/// A connection's unattended-call ledger in the store's `budget_ledgers`, for the client's
/// [`stet_client::UnattendedBudget`]: every worker that syncs the connection counts against
/// the same 4 calls a day per account and endpoint, and each call is written before it is
/// sent, so a worker killed mid-sync has lost none of the calls it made.
///
/// Only one worker syncs a connection at a time (its job's lease), and the client holds its
/// own lock around each load-and-save. Should two processes still count the same consent at
/// once (a lease lost under load), a save only replaces the ledger it loaded: the loser's call
/// is refused before it is sent, never a fifth call made.
///
/// The client's budget trait is synchronous, while the store is async: each method blocks
/// its thread on the store with [`tokio::task::block_in_place`], which tells the
/// multi-thread runtime to move this worker thread's other tasks elsewhere meanwhile. So it
/// must run on a multi-thread runtime (the worker's); on a current-thread runtime it would
/// panic, which [`StoreBudget::new`] rules out by asking for the handle of one.
#[derive(Debug, Clone)]
pub struct StoreBudget {
    store: Store,
    connection: i64,
    handle: tokio::runtime::Handle,
    /// The ledger as last loaded (`None`: none stored), which a save must still find.
    loaded: std::sync::Arc<std::sync::Mutex<Option<String>>>,
}

impl StoreBudget {
    /// The budget of `connection`; `handle` must be a multi-thread runtime's.
    pub fn new(store: Store, connection: i64, handle: tokio::runtime::Handle) -> Option<Self> {
        (handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread).then_some(
            StoreBudget {
                store,
                connection,
                handle,
                loaded: Default::default(),
            },
        )
    }

    fn error(&self, detail: impl std::fmt::Display) -> ClientError {
        ClientError::BudgetStore {
            path: format!("{} (connection {})", self.store.location(), self.connection),
            detail: detail.to_string(),
        }
    }

    fn block<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        tokio::task::block_in_place(|| self.handle.block_on(f))
    }
}

impl BudgetStore for StoreBudget {
    fn load(&self) -> Result<BudgetLedger, ClientError> {
        let text = self
            .block(self.store.budget_ledger(self.connection))
            .map_err(|e| self.error(e))?;
        *self.loaded.lock().unwrap_or_else(|e| e.into_inner()) = text.clone();
        match text {
            None => Ok(BudgetLedger::default()),
            Some(t) => serde_json::from_str(&t).map_err(|e| self.error(e)),
        }
    }

    fn save(&self, ledger: &BudgetLedger) -> Result<(), ClientError> {
        let text = serde_json::to_string(ledger).map_err(|e| self.error(e))?;
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        let replaced = self
            .block(
                self.store
                    .replace_budget_ledger(self.connection, loaded.as_deref(), &text),
            )
            .map_err(|e| self.error(e))?;
        if !replaced {
            return Err(self.error(
                "another worker counted calls of this consent at the same time: this call was \
                 not made (the job runs again)",
            ));
        }
        *loaded = Some(text);
        Ok(())
    }
}
