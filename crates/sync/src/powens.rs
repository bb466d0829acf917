//! [`PowensSource`]: a PSU's banks through the Powens aggregator API (`stet-powens`).
//!
//! What a sync reads, and why that way:
//!
//! - **Connections and accounts**: `GET /users/me/connections` then
//!   `GET /users/me/accounts?all` (two calls). An account is synced when it is enabled (the
//!   PSU's consent: stet never enables one), not deleted at the bank, and its connection is
//!   usable. The accounts of a connection that needs the PSU (`SCARequired`,
//!   `webauthRequired`, `wrongpass`, `passwordExpired`, `actionNeeded`, …) or that waits for
//!   the bank (`rateLimiting`, `websiteUnavailable`, `bug`) are left as stored, and the
//!   connection is reported once with what to run ([`Source::unsynced`]).
//! - **Keys**: accounts are keyed by IBAN, else by their stable Powens id (`p1-…-a{id}`,
//!   under the bank name `powens`). Transactions keep the ids `stet-powens` gives them
//!   (`p1-…-t{id}`, [`Namespace::Powens1`]): the store never recomputes them.
//! - **Balances** come with the account listing (`balance`, `coming_balance`): no call of
//!   their own. The snapshot's JSON is the account's JSON as Powens sent it.
//! - **Transactions**: `GET /users/me/accounts/{id}/transactions?limit=N&min_date=D`, then
//!   every `_links.next` as given, with `all` so that the ones the bank deleted come too.
//!   `min_date` is the engine's window (the newest booked date minus the overlap, or the
//!   oldest coming one). Each row keeps Powens' own JSON as received. A stored transaction
//!   Powens says was `deleted` is marked `DELD` (kept, never exported); a coming transaction
//!   Powens replaces by a booked one under a new id is claimed by it (and the deletion of the
//!   coming one then left alone), and one it books under the same id is updated in place:
//!   either way one row.
//!
//! Powens reads the banks itself, in the background; a sync reads what it holds, unless it
//! is asked to refresh ([`PowensSource::with_refresh`]): Powens then reads each usable
//! connection's bank first. Unattended call budgets are Powens' business, so none is counted
//! here.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream, StreamExt as _};
use stet_powens::model::{BankAccount, Connection, ConnectionState, Remedy};
use stet_powens::{PowensClient, PowensError, PowensId, TransactionQuery, mapping};
use stet_store::{
    IdPolicy, Namespace, ObservedAccount, ObservedBalance, ObservedTransaction, Status,
};

use crate::stet::observed_transaction;
use crate::{Source, SourceError, SyncPolicy, Unsynced, UnsyncedKind};

/// The bank name of Powens accounts without an IBAN (`bank:powens:p1-…-a{id}`).
const BANK: &str = "powens";

/// The PSU's Powens user: its connections' enabled accounts, read through `client`.
#[derive(Debug, Clone)]
pub struct PowensSource {
    client: Arc<PowensClient>,
    page_size: u32,
    calls: Arc<AtomicU64>,
    /// Resource id → the account as Powens listed it in [`Source::accounts`].
    accounts: Arc<Mutex<HashMap<String, BankAccountEntry>>>,
    unsynced: Arc<Mutex<Vec<Unsynced>>>,
    /// Ask Powens to read each usable connection's bank before reading Powens.
    refresh: bool,
}

#[derive(Debug, Clone)]
struct BankAccountEntry {
    account: BankAccount,
    json: String,
}

impl PowensSource {
    /// A source over `client` (whose user token is in its token store), asking `page_size`
    /// transactions a page (1 to 1000; Powens requires a limit).
    pub fn new(client: Arc<PowensClient>, page_size: u32) -> Self {
        PowensSource {
            client,
            page_size: page_size.clamp(1, 1000),
            calls: Arc::new(AtomicU64::new(0)),
            accounts: Arc::default(),
            unsynced: Arc::default(),
            refresh: false,
        }
    }

    /// With `refresh`, a sync first asks Powens to read the bank of every usable connection
    /// now (`PUT /users/me/connections/{id}?psu_requested=false`, one call each), rather than
    /// taking what Powens read on its own schedule. A connection Powens finds up to date
    /// (409) is read as it is; one that then needs the PSU is reported like any other.
    pub fn with_refresh(mut self, refresh: bool) -> Self {
        self.refresh = refresh;
        self
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }
}

fn failed(e: PowensError) -> SourceError {
    SourceError::Failed(Box::new(e))
}

fn connector_name(c: &Connection) -> Option<String> {
    c.connector
        .as_ref()
        .map(|k| k.name.clone())
        .or_else(|| c.connector_uuid.clone())
}

/// A connection that cannot be synced now: who must act, and what to run.
fn unsynced_connection(c: &Connection, accounts: &[&BankAccount]) -> Unsynced {
    let state = c.state();
    let id = c.id;
    let connector = connector_name(c);
    let reconnect = match &c.connector_uuid {
        Some(uuid) => format!("`stet connect --connector {uuid}`"),
        None => "`stet connect --connector …`".to_owned(),
    };
    let (kind, what_to_do) = match (&state, state.remedy()) {
        (ConnectionState::Wrongpass, _) => (
            UnsyncedKind::NeedsPsu,
            format!(
                "the bank refused the credentials: `stet connections delete {id}`, then \
                 {reconnect} with the right ones"
            ),
        ),
        (_, Remedy::Psu) => (
            UnsyncedKind::NeedsPsu,
            format!("the PSU must act: run `stet connect --connection {id}`, then `stet sync`"),
        ),
        (_, Remedy::AtTheBank) => (
            UnsyncedKind::NeedsPsu,
            format!(
                "the PSU must act on the bank's site (a new password, new terms); if the \
                 connection stays so, `stet connections delete {id}`, then {reconnect}"
            ),
        ),
        (ConnectionState::RateLimiting, _) => (
            UnsyncedKind::RetryLater,
            "the bank limits calls: Powens retries by itself; run `stet sync` later".to_owned(),
        ),
        (_, Remedy::Wait) => (
            UnsyncedKind::Unavailable,
            "the bank or Powens is failing: Powens retries by itself; run `stet sync` later"
                .to_owned(),
        ),
        (_, Remedy::Unsupported | Remedy::None) => (
            UnsyncedKind::Unavailable,
            "see the Powens console: stet cannot resolve this state".to_owned(),
        ),
    };
    let names: Vec<String> = accounts
        .iter()
        .map(|a| format!("{} ({})", a.id, a.display_name()))
        .collect();
    Unsynced {
        what: format!(
            "connection {id}{}",
            connector.map(|n| format!(" ({n})")).unwrap_or_default()
        ),
        reason: format!(
            "is `{}`{}: {what_to_do}; its enabled account(s) {} keep what was stored",
            state.label(),
            c.error_message
                .as_deref()
                .filter(|m| !m.is_empty())
                .map(|m| format!(" ({m})"))
                .unwrap_or_default(),
            if names.is_empty() {
                "(none yet)".to_owned()
            } else {
                names.join(", ")
            }
        ),
        kind,
    }
}

fn observed_account(a: &BankAccount, source: &PowensSource) -> ObservedAccount {
    ObservedAccount {
        iban: a
            .iban
            .as_deref()
            .map(|s| s.replace(' ', "").to_ascii_uppercase())
            .filter(|s| !s.is_empty()),
        resource_id: source.client.namespace().account_id(a.id),
        name: Some(a.display_name()).filter(|s| !s.is_empty()),
        currency: Some(a.currency_code().to_owned()),
    }
}

impl Source for PowensSource {
    fn name(&self) -> &str {
        "powens"
    }

    fn bank(&self) -> &str {
        BANK
    }

    fn policy(&self) -> SyncPolicy {
        SyncPolicy {
            ids: IdPolicy {
                namespace: Namespace::Powens1,
                entry_reference_stable: true,
                claim_window_days: 10,
            },
            overlap_days: 7,
            // Powens keeps the history it has read; no PSD2 90-day wall on reading it back.
            history_days: 36_500,
        }
    }

    fn accounts(&self) -> BoxFuture<'_, Result<Vec<ObservedAccount>, SourceError>> {
        async move {
            self.count();
            let mut connections = self.client.connections().await.map_err(failed)?;
            if self.refresh {
                for connection in connections.iter_mut() {
                    if connection.get().state() != ConnectionState::Valid {
                        continue;
                    }
                    self.count();
                    // The PSU is not asked for: a sync runs unattended.
                    if let Some(read) = self
                        .client
                        .sync_connection(connection.get().id, false)
                        .await
                        .map_err(failed)?
                    {
                        *connection = read;
                    }
                }
            }
            self.count();
            let listed = self.client.accounts().await.map_err(failed)?;
            let blocked: HashMap<PowensId, &Connection> = connections
                .iter()
                .map(|c| c.get())
                .filter(|c| c.state() != ConnectionState::Valid)
                .map(|c| (c.id, c))
                .collect();
            let mut out = Vec::new();
            let mut unsynced = Vec::new();
            let mut held: HashMap<PowensId, Vec<&BankAccount>> = HashMap::new();
            let mut entries = HashMap::new();
            for raw in &listed {
                let a = raw.get();
                if a.deleted {
                    continue;
                }
                if let Some(c) = a.id_connection.filter(|c| blocked.contains_key(c)) {
                    if !a.disabled {
                        held.entry(c).or_default().push(a);
                    }
                    continue;
                }
                if a.disabled {
                    unsynced.push(Unsynced {
                        what: format!("account {} ({})", a.id, a.display_name()),
                        reason: format!(
                            "is disabled: enabling it is the PSU's consent; `stet accounts \
                             enable {}` to sync it",
                            a.id
                        ),
                        kind: UnsyncedKind::NotEnabled,
                    });
                    continue;
                }
                let account = observed_account(a, self);
                entries.insert(
                    account.resource_id.clone(),
                    BankAccountEntry {
                        account: a.clone(),
                        json: raw.json().get().to_owned(),
                    },
                );
                out.push(account);
            }
            let mut blocked: Vec<&Connection> = blocked.into_values().collect();
            blocked.sort_by_key(|c| c.id);
            for c in blocked {
                let accounts = held.remove(&c.id).unwrap_or_default();
                unsynced.push(unsynced_connection(c, &accounts));
            }
            *self.accounts.lock().unwrap_or_else(|e| e.into_inner()) = entries;
            *self.unsynced.lock().unwrap_or_else(|e| e.into_inner()) = unsynced;
            Ok(out)
        }
        .boxed()
    }

    fn unsynced(&self) -> Vec<Unsynced> {
        self.unsynced
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn balances<'a>(
        &'a self,
        account: &'a ObservedAccount,
    ) -> BoxFuture<'a, Result<Vec<ObservedBalance>, SourceError>> {
        async move {
            let entry = self.entry(account)?;
            let a = &entry.account;
            Ok(mapping::balances(a)
                .iter()
                .map(|b| ObservedBalance {
                    balance_type: b.balance_type.to_string(),
                    amount: b.balance_amount.amount.decimal(),
                    currency: b.balance_amount.currency.to_string(),
                    reference_date: a.last_update.map(|t| t.date()),
                    name: b.name.clone(),
                    raw_json: entry.json.clone(),
                })
                .collect())
        }
        .boxed()
    }

    fn transactions<'a>(
        &'a self,
        account: &'a ObservedAccount,
        from: Option<time::Date>,
    ) -> BoxStream<'a, Result<Vec<ObservedTransaction>, SourceError>> {
        self.listing(
            account,
            TransactionQuery {
                limit: self.page_size,
                min_date: from,
                max_date: None,
                // The store marks the rows the bank deleted (BI's production checklist: "when
                // `deleted` is set, delete it in your database"; stet keeps them, marked).
                deleted: true,
                updated_after: None,
            },
        )
    }

    /// Powens' `last_update` filter: every transaction it changed after `since`, deleted
    /// ones included, whatever their date.
    fn changed_since<'a>(
        &'a self,
        account: &'a ObservedAccount,
        since: time::OffsetDateTime,
    ) -> Option<BoxStream<'a, Result<Vec<ObservedTransaction>, SourceError>>> {
        Some(self.listing(
            account,
            TransactionQuery {
                limit: self.page_size,
                min_date: None,
                max_date: None,
                deleted: true,
                updated_after: Some(since),
            },
        ))
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn budget_left<'a>(
        &'a self,
        _account: &'a ObservedAccount,
    ) -> BoxFuture<'a, Result<Option<u32>, SourceError>> {
        async move { Ok(None) }.boxed()
    }
}

impl PowensSource {
    /// An account's transactions as `query` lists them, mapped, a page at a time.
    fn listing<'a>(
        &'a self,
        account: &'a ObservedAccount,
        query: TransactionQuery,
    ) -> BoxStream<'a, Result<Vec<ObservedTransaction>, SourceError>> {
        let entry = match self.entry(account) {
            Ok(e) => e,
            Err(e) => return stream::once(async move { Err(e) }).boxed(),
        };
        let pages = self
            .client
            .transaction_pages(Some(entry.account.id), &query);
        let currency = entry.account.currency_code().to_owned();
        stream::unfold(
            (pages, currency, false),
            move |(mut pages, currency, done)| async move {
                if done {
                    return None;
                }
                let page = pages.next().await?;
                self.count();
                let namespace = self.client.namespace();
                let items = page.map_err(failed).map(|page| {
                    page.transactions
                        .iter()
                        .filter_map(|t| {
                            // Powens' own JSON, as received.
                            if let Some(stet) = mapping::transaction(t, &currency, namespace) {
                                return Some(observed_transaction(&stet, t.json().get()));
                            }
                            let stet = mapping::deleted_transaction(t, &currency, namespace)?;
                            let mut observed = observed_transaction(&stet, t.json().get());
                            observed.status = Status::Deleted;
                            Some(observed)
                        })
                        .collect::<Vec<_>>()
                });
                let stop = items.is_err();
                Some((items, (pages, currency, stop)))
            },
        )
        .boxed()
    }

    fn entry(&self, account: &ObservedAccount) -> Result<BankAccountEntry, SourceError> {
        self.accounts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&account.resource_id)
            .cloned()
            .ok_or_else(|| {
                failed(PowensError::Unreadable {
                    what: "the accounts".into(),
                    detail: format!(
                        "account {} was not in the listing of this sync",
                        account.resource_id
                    ),
                })
            })
    }
}
