//! # stet-client
//!
//! The typed STET API a TPP programs against: one call per STET operation (AISP accounts,
//! balances and transactions; PISP payment requests; CBPII funds confirmations), `_links.next`
//! pagination followed for the caller, and bank dialects absorbed by *profiles*: data (TOML)
//! that says which API version, signed headers, keyId form and history caps a bank uses.
//!
//! ## The pieces
//!
//! - [`bank`]: a [`bank::BankProfile`] per bank, resolved from TOML files (built-in ones for
//!   the generic 1.4 and 1.5 dialects, the embedded sandbox and the main French banks, plus
//!   the user's overrides).
//! - [`StetClient`]: the calls, built from a `stet_transport::Transport` (which signs, holds
//!   the tokens and retries what is safe to retry) and a bank profile. Cheap to clone.
//! - [`resolve_next_link`]: how a bank's `_links.next` href becomes a URL (pure, fuzzable).
//! - [`UnattendedBudget`] and its [`BudgetStore`]s: the four unattended calls a day.
//! - [`PaymentRequestBuilder`]: SEPA, instant and standing-order payment requests.
//! - [`ClientError`]: one enum whose messages say what to do, with [`ClientError::exit_code`].
//! - [`registration`]: STET dynamic client registration (1.0.5), each bank's variant as data
//!   in its profile's `[registration]` table.
//!
//! ## Building a client
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use futures_util::TryStreamExt;
//! use stet_client::{ClientOptions, FileBudgetStore, StetClient, TransactionQuery, bank::BankProfiles};
//! use stet_client::transport::{FileTokenStore, config};
//!
//! let path = std::path::Path::new("config.toml");
//! let file = config::load_file(path)?;
//! let profile = config::resolve(&file, None, Some(path), &|k| std::env::var(k).ok())?;
//! let bank = BankProfiles::builtin().get(profile.bank.as_deref().unwrap_or("generic-1.5"))?;
//! let tokens = FileTokenStore::default_dir().unwrap();
//! // The bank's signing profile with the configured keyId, and its Accept header.
//! let transport = stet_client::transport_builder(&profile, &bank)
//!     .token_store(Arc::new(FileTokenStore::new(&tokens)))
//!     .build()?;
//! let client = StetClient::with_options(transport, bank, ClientOptions {
//!     psu: None, // unattended: counted against the daily budget
//!     budget_store: Some(Arc::new(FileBudgetStore::for_profile(&tokens, &profile.name))),
//!     ..ClientOptions::default()
//! });
//! let mut accounts = client.accounts();
//! while let Some(account) = accounts.try_next().await? {
//!     let id = account.resource_id.clone().unwrap_or_default();
//!     let balances = client.balances(&id).await?;
//!     let mut txs = client.transactions(&id, &TransactionQuery::default());
//!     while let Some(tx) = txs.try_next().await? {
//!         println!("{} {}", tx.transaction_amount.amount, tx.json()); // exact digits, bank fields kept
//!     }
//! #   let _ = balances;
//! }
//! # Ok(()) }
//! ```
//!
//! ## Requests
//!
//! Targets are relative to the profile's `api_base` (which carries the version prefix), so
//! calls write `accounts/{id}/transactions?…`; path segments are percent-encoded (every byte
//! but RFC 3986's unreserved ones) and query values form-encoded. Bodies are written in the
//! bank's dialect (`stet_models::to_json_vec`): 1.4 banks get amounts as strings and
//! remittance lines as arrays. Amounts are `stet_models::Amount`, exact decimals, never `f64`.
//! AISP calls carry the PSU's consent token (key `aisp` unless
//! [`ClientOptions::consent_key`] says otherwise); PISP and CBPII calls a client-credentials
//! token for the profile's `pisp` or `cbpii` scope (`piisp` for 1.4 banks).
//!
//! ## Lists are streams
//!
//! Every list comes as a `futures` stream of items ([`StetClient::accounts`],
//! [`StetClient::transactions`], [`StetClient::trusted_beneficiaries`],
//! [`StetClient::payment_transactions`]) and of [`Page`]s (`*_pages`). A stream is lazy and
//! holds one page at a time: the next page is requested only when the previous one has been
//! consumed, so memory is one page whatever the total (plus 8 bytes per page read, the
//! hashes that detect loops). `_links.next` is followed whenever present (also for banks whose
//! profile says `paginates = false`: a link they send anyway is not dropped), resolved by
//! [`resolve_next_link`] in every form banks write it; a link to another origin ends the
//! stream with [`ClientError::Link`] before anything is sent there, and a link to a page
//! already read with [`ClientError::PaginationLoop`]. `204 No Content` is an empty list. A
//! stream ends at its first error; the items before it have been yielded.
//!
//! Reading items as models costs more than fetching and signing them. An export that passes
//! transactions through uses [`StetClient::transaction_json_pages`]: [`JsonPage`]s whose items
//! are the JSON text the bank sent, read as models only where needed
//! (`stet_models::Raw::from_json`).
//!
//! ## Transactions: dates, windows, extended history
//!
//! [`TransactionQuery`] carries `dateFrom` (inclusive), `dateTo` (exclusive), `dateType` and
//! the entry-reference cursor, written as the bank's dialect names it (`entryReferenceFrom`,
//! or `afterEntryReference` in 1.4). Dates are sent as midnight UTC in the bank's date-time
//! format ([`bank::BankProfile::format_datetime`]).
//!
//! When the bank caps the range one request may ask for
//! (`max_history_days_per_request`), the range is split by
//! [`bank::BankProfile::history_windows`] and the windows are fetched **newest first**, so
//! that a bank listing newest first gives one ordered stream. Windows meet at a day: a bank
//! that read `dateTo` as inclusive would list that day twice, so the entries of the boundary
//! day are remembered (by entry reference) and skipped in the older window; nothing else is
//! remembered.
//!
//! Without `dateFrom` the bank decides (usually the last 90 days). With a `dateFrom` older than
//! `history_without_extended_scope_days`, the bank wants the `extended_transaction_history`
//! scope; its 403 becomes [`ClientError::ExtendedHistoryConsent`], which tells the user to
//! consent again with that scope (`stet auth login --scope aisp --scope
//! extended_transaction_history`).
//!
//! ## The unattended budget
//!
//! A call without `PSU-IP-Address` is unattended, and PSD2 (RTS art. 36(5)) allows four a
//! day per account and endpoint. Each AISP call (each *page* of a list) made without the PSU
//! present is counted per consent, account and endpoint over a rolling 24 hours; the fifth is
//! refused before it is sent, with [`ClientError::BudgetSpent`] saying when the oldest call
//! leaves the window. The count is kept in a [`BudgetStore`]: [`MemoryBudgetStore`] by
//! default, [`FileBudgetStore`] next to the token store to count across runs, runs at the
//! same time included (it locks the ledger for each count). A call is counted when it is
//! sent, failed or not, since the bank may have counted it. If the bank
//! refuses anyway (a 429 with a `Retry-After` of an hour or more on an unattended call), the
//! same error comes back with `by_bank`. With the PSU present nothing is counted.
//!
//! ## Many accounts
//!
//! [`StetClient::for_each_account`] runs a call per account, at most
//! [`ClientOptions::concurrency`] at a time (default 4) over the transport's shared
//! connection pool, and yields the results in the order the accounts were given;
//! [`StetClient::balances_of`] and [`StetClient::transactions_of`] are the common cases.
//!
//! ## Payments
//!
//! 1. Build the request with [`PaymentRequestBuilder`] (SEPA credit transfer, instant transfer
//!    with `localInstrument` INST, standing order) and create it with
//!    [`StetClient::create_payment_request`]: a POST, **never resent** (a lost answer is
//!    `TransportError::OutcomeUnknown`, which says how to check). The result has the
//!    resource id (from `Location`, or the body) and the `consentApproval` URL.
//! 2. The PSU approves at that URL (an OAuth authorization-code flow run by the caller; the
//!    resulting token is stored under a key of the caller's choice).
//! 3. [`StetClient::confirm_payment_request`] posts to the profile's confirmation path
//!    (`/confirmation` or `/o-confirmation`; nothing when the profile says `none`) with that
//!    token (`Auth::Consent(key)`).
//! 4. [`StetClient::wait_for_final_status`] reads the request until its status is final
//!    (ACSC, ACCP, ACWC, RJCT, CANC, PART), bounded by a timeout. RJCT is
//!    [`ClientError::PaymentRejected`] with the bank's reason (`AG01`, ...).
//!
//! [`StetClient::cancel_payment_request`] sends the request back as read with status CANC (RJCT
//! in 1.4, which has no CANC) and a reason. [`StetClient::funds_confirmation`] is the CBPII check.
//!
//! ## Dialect differences handled here
//!
//! | | 1.4 | 1.5 and later |
//! |---|---|---|
//! | transactions cursor | `afterEntryReference` | `entryReferenceFrom` (+ `entryReferenceto`) |
//! | requested execution date | on the payment request | on each transfer |
//! | overdrafts, owners, payment transactions | [`ClientError::Unsupported`] | available |
//! | bodies | amounts as strings, remittance as an array | numbers, objects |
//! | cancellation | status RJCT, reason DS02 or FRAD | status CANC, reason DS02, DUPL, FRAD or TECH |

// The errors carry what a person needs to act; they are built only when something failed.
#![allow(clippy::result_large_err)]

pub mod bank;
mod budget;
mod client;
mod error;
mod link;
mod payment;
pub mod registration;

pub use budget::{
    BudgetEntry, BudgetLedger, BudgetStore, FileBudgetStore, MemoryBudgetStore, UnattendedBudget,
};
pub use client::{
    ClientOptions, DateType, JsonPage, ListPage, Page, StetClient, TransactionQuery,
    transport_builder,
};
pub use error::ClientError;
pub use link::{LinkError, resolve_next_link};
pub use payment::{
    CreatedPaymentRequest, CreditTransfer, PaymentRequestBuilder, StandingOrder,
    funds_confirmation_request, is_final_status, payment_status,
};

pub use stet_models as models;
pub use stet_transport as transport;
