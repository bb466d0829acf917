//! [`StetSource`]: a STET bank through `stet-client`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use futures_util::FutureExt as _;
use futures_util::future::BoxFuture;
use futures_util::stream::{BoxStream, StreamExt as _};
use stet_client::models::{AccountResource, Raw, Transaction};
use stet_client::{ClientError, StetClient, TransactionQuery};
use stet_store::{
    CreditDebit, IdPolicy, Namespace, ObservedAccount, ObservedBalance, ObservedTransaction, Status,
};

use crate::{Source, SourceError, SyncPolicy};

/// A STET bank: the client's calls, counted, read into the store's types. Stable ids are in
/// the `s1` namespace; the bank profile's `[sync]` table says whether entry references are
/// stable, the overlap and the claim window.
#[derive(Debug, Clone)]
pub struct StetSource {
    client: StetClient,
    calls: Arc<AtomicU64>,
}

impl StetSource {
    /// A source over `client` (its PSU context decides whether calls are unattended).
    pub fn new(client: StetClient) -> Self {
        StetSource {
            client,
            calls: Arc::new(AtomicU64::new(0)),
        }
    }

    fn count(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }
}

fn failed(e: ClientError) -> SourceError {
    match e {
        ClientError::BudgetSpent { resets_at, .. } => SourceError::BudgetSpent {
            message: e.to_string(),
            resets_at: Some(resets_at),
        },
        other => SourceError::Failed(Box::new(other)),
    }
}

fn unreadable(what: &str, message: String) -> SourceError {
    SourceError::Failed(Box::new(ClientError::UnreadableBankData {
        what: what.to_owned(),
        message,
    }))
}

/// A STET transaction as the store keeps it. `text` is the bank's JSON for it.
pub(crate) fn observed_transaction(t: &Transaction, text: &str) -> ObservedTransaction {
    let debit = t.credit_debit_indicator.as_str() == "DBIT";
    let status = match t.status.as_str() {
        "BOOK" => Status::Booked,
        // PDNG, and what some banks send for not-yet-booked entries (OTHR, INFO): kept as
        // pending, so that a booked version claims it or it expires.
        _ => Status::Pending,
    };
    let party = t.related_parties.as_ref().and_then(|p| {
        if debit {
            p.creditor.as_ref().or(p.ultimate_creditor.as_ref())
        } else {
            p.debtor.as_ref().or(p.ultimate_debtor.as_ref())
        }
    });
    let label = t
        .remittance_information
        .as_ref()
        .map(|r| r.text())
        .filter(|s| !s.is_empty());
    ObservedTransaction {
        status,
        booking_date: t
            .booking_date
            .as_ref()
            .or(t.expected_booking_date.as_ref())
            .map(|d| d.date()),
        value_date: t.value_date.as_ref().map(|d| d.date()),
        transaction_date: t.transaction_date.as_ref().map(|d| d.date()),
        amount: t.transaction_amount.amount.decimal().abs(),
        currency: t.transaction_amount.currency.to_string(),
        credit_debit: if debit {
            CreditDebit::Debit
        } else {
            CreditDebit::Credit
        },
        label,
        counterparty: party.map(|p| p.name.clone()).filter(|s| !s.is_empty()),
        entry_reference: t.entry_reference.clone().filter(|s| !s.is_empty()),
        raw_json: text.to_owned(),
    }
}

fn observed_account(a: &Raw<AccountResource>) -> Option<ObservedAccount> {
    let id = a.account_id.as_ref();
    Some(ObservedAccount {
        iban: id
            .and_then(|i| i.iban.clone())
            .map(|s| s.replace(' ', "").to_ascii_uppercase())
            .filter(|s| !s.is_empty()),
        resource_id: a.resource_id.clone()?,
        name: Some(a.name.clone()).filter(|s| !s.is_empty()),
        currency: id.and_then(|i| i.currency.clone()),
    })
}

impl Source for StetSource {
    fn name(&self) -> &str {
        "stet"
    }

    fn bank(&self) -> &str {
        &self.client.bank().name
    }

    fn policy(&self) -> SyncPolicy {
        let bank = self.client.bank();
        SyncPolicy {
            ids: IdPolicy {
                namespace: Namespace::Stet1,
                entry_reference_stable: bank.sync.entry_reference_stable,
                claim_window_days: bank.sync.pending_claim_days,
            },
            overlap_days: bank.sync.overlap_days,
            history_days: bank.history_without_extended_scope_days,
        }
    }

    fn accounts(&self) -> BoxFuture<'_, Result<Vec<ObservedAccount>, SourceError>> {
        async move {
            let mut pages = self.client.account_pages();
            let mut out = Vec::new();
            self.count();
            while let Some(page) = pages.next().await {
                let page = page.map_err(failed)?;
                if page.next.is_some() {
                    self.count();
                }
                for a in &page.items {
                    match observed_account(a) {
                        Some(account) => out.push(account),
                        None => tracing::warn!(
                            "the bank lists an account without a resourceId: skipped ({})",
                            a.name
                        ),
                    }
                }
            }
            Ok(out)
        }
        .boxed()
    }

    fn balances<'a>(
        &'a self,
        account: &'a ObservedAccount,
    ) -> BoxFuture<'a, Result<Vec<ObservedBalance>, SourceError>> {
        async move {
            self.count();
            let page = self
                .client
                .balances(&account.resource_id)
                .await
                .map_err(failed)?;
            Ok(page
                .balances
                .iter()
                .map(|b| ObservedBalance {
                    balance_type: b.balance_type.to_string(),
                    amount: b.balance_amount.amount.decimal(),
                    currency: b.balance_amount.currency.to_string(),
                    reference_date: b.reference_date.as_ref().map(|d| d.date()),
                    name: b.name.clone(),
                    raw_json: b.json().get().to_owned(),
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
        let query = TransactionQuery {
            date_from: from,
            ..TransactionQuery::default()
        };
        let calls = self.calls.clone();
        calls.fetch_add(1, Ordering::Relaxed);
        self.client
            .transaction_json_pages(&account.resource_id, &query)
            .map(move |page| {
                let page = page.map_err(failed)?;
                if page.next.is_some() {
                    calls.fetch_add(1, Ordering::Relaxed);
                }
                page.items
                    .iter()
                    .map(|item| {
                        let t: Transaction = serde_json::from_str(item.get()).map_err(|e| {
                            unreadable(
                                &format!("GET {}", page.url),
                                format!("cannot read a transaction: {e}"),
                            )
                        })?;
                        Ok(observed_transaction(&t, item.get()))
                    })
                    .collect()
            })
            .boxed()
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    fn budget_left<'a>(
        &'a self,
        account: &'a ObservedAccount,
    ) -> BoxFuture<'a, Result<Option<u32>, SourceError>> {
        async move {
            if self.client.psu_present() {
                return Ok(None);
            }
            let consent = self.client.consent_id().await.map_err(failed)?;
            let budget = self.client.budget();
            let now = SystemTime::now();
            let mut left = u32::MAX;
            for endpoint in ["transactions", "balances"] {
                let n = budget
                    .remaining(&consent, &account.resource_id, endpoint, now)
                    .map_err(failed)?;
                if n == 0 {
                    // Spent: asking to spend one more is refused (and not counted), with the
                    // time the oldest call leaves the window.
                    return Err(budget
                        .spend(&consent, &account.resource_id, endpoint, now)
                        .err()
                        .map(failed)
                        .unwrap_or(SourceError::BudgetSpent {
                            message: format!("the unattended budget for {endpoint} is spent"),
                            resets_at: None,
                        }));
                }
                left = left.min(n);
            }
            Ok(Some(left))
        }
        .boxed()
    }
}
