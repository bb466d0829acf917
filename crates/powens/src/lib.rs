//! # stet-powens
//!
//! The Powens aggregator API (formerly Budget Insight, `https://{domain}.biapi.pro/2.0`): a
//! second way to a PSU's bank data, for those who have no PSD2 licence or eIDAS certificates
//! of their own. A licensed aggregator calls the banks; stet calls the aggregator, with the
//! client id and secret Powens gives its clients, and maps what comes back to the same STET
//! models as a bank's own API.
//!
//! ## What is here
//!
//! - [`PowensClient`]: the calls, over [`stet_transport::HttpsClient`] (rustls, timeouts,
//!   size cap, the API's origin only; no mTLS, no signatures).
//!   - **The user token.** `POST /auth/init` with the client's credentials makes a permanent
//!     user and its token ([`PowensClient::init_user`]), kept in the profile's token file like
//!     the STET tokens (0600, replaced atomically, locked against runs at the same time, so
//!     two first runs make one user); `POST /auth/renew` rotates it
//!     ([`PowensClient::renew_user`]); `DELETE /auth/token` revokes it.
//!   - **Connectors, connections, accounts, transactions**: `GET /connectors`, connections
//!     created, updated, listed and deleted, `GET /users/me/accounts?all` (disabled accounts
//!     too), enabling an account (the PSU's consent: stet never does it on its own),
//!     transactions in pages of `limit` following `_links.next` ([`TransactionPages`]).
//! - [`jwe`]: credentials encrypted end to end. Every value posted for a connection (the
//!   fields, one-time codes included) goes as a compact JWE (`RSA-OAEP-256` + `A256GCM`, the
//!   key's `kid` in the header, a fresh key and nonce each) under the domain key of
//!   `GET /publickey`, which is cached and fetched again when Powens refuses a JWE made with
//!   a key it has since replaced (a 400 `invalidValue` naming that key's `kid`; the post is
//!   then made once more). Any other refusal is returned at once, never posted again: the
//!   bank may have tried the values, and a wrong password tried twice can lock a PSU out. [`jwe::DecryptingKey`] is the server's side, for the
//!   sandbox's mock.
//! - [`connect`]: the connection state machine, driven to a usable state (a one-time code,
//!   an approval in the bank's app, a strong authentication, a browser redirect), asking the
//!   PSU through the [`connect::Psu`] trait.
//! - [`model`]: Powens' resources, read leniently: unknown fields kept (each list item with
//!   its JSON as received), unknown values of open lists kept, money exact (JSON numbers read
//!   without a float), naive date-times read as Europe/Paris ([`paris`]).
//! - [`mapping`]: Powens resources as STET [`AccountResource`](stet_models::AccountResource),
//!   [`BalanceResource`](stet_models::BalanceResource) and
//!   [`Transaction`](stet_models::Transaction), with the mapping table, and stable ids in a
//!   namespace of their own (`p1-…`).
//! - [`webhook`]: `BI-Signature` checks (HMAC-SHA256, constant-time, a freshness window).
//!
//! ## Errors
//!
//! [`PowensError`] has one variant per thing a user does differently: the client's
//! credentials refused, no user yet, the user token refused, a connection stuck in a state
//! only the PSU or time can change ([`PowensError::ConnectionState`]), no account enabled
//! (`409 noAccount`), a web page where JSON was due (Powens answers unknown ids with an HTML
//! 404 page: [`PowensError::NotJson`] says so rather than failing to parse it), and Powens'
//! own error codes ([`PowensError::Api`]).
//!
//! ## Example
//!
//! ```no_run
//! # async fn run() -> Result<(), stet_powens::PowensError> {
//! use std::sync::Arc;
//! use stet_powens::{PowensClient, PowensConfig, TransactionQuery, mapping};
//! use stet_transport::{HttpsOptions, MemoryTokenStore, Secret};
//!
//! let (domain, api_base) = stet_powens::config::api_base_for("acme-sandbox").unwrap();
//! let config = PowensConfig {
//!     profile: "powens".into(),
//!     domain: Some(domain),
//!     api_base,
//!     client_id: "12345678".into(),
//!     client_secret: Secret::new(std::env::var("POWENS_SECRET").unwrap_or_default()),
//!     redirect_uri: None,
//!     https: HttpsOptions::default(),
//! };
//! let client = PowensClient::new(config, Arc::new(MemoryTokenStore::default()))?;
//! client.init_user().await?;
//! for account in client.accounts().await? {
//!     let stet = mapping::account(&account, client.namespace());
//!     println!("{} {}", stet.resource_id.unwrap_or_default(), stet.name);
//!     if account.disabled {
//!         continue; // enabling is the PSU's decision
//!     }
//!     let mut pages = client.transaction_pages(Some(account.id), &TransactionQuery::default());
//!     while let Some(page) = pages.next().await {
//!         for t in page?.transactions {
//!             // Powens' JSON as received: t.json(); as STET:
//!             let _ = mapping::transaction(&t, account.currency_code(), client.namespace());
//!         }
//!     }
//! }
//! # Ok(()) }
//! ```

// The errors carry what a person needs to act; they are built only on failure.
#![allow(clippy::result_large_err)]

mod client;
pub mod config;
pub mod connect;
mod error;
pub mod jwe;
pub mod mapping;
pub mod model;
pub mod paris;
pub mod webhook;

pub use client::{
    ConnectionAnswer, PowensClient, TransactionPages, TransactionQuery, UserToken, WebauthTarget,
};
pub use config::PowensConfig;
pub use error::PowensError;
pub use model::PowensId;

/// The test connector of every Powens sandbox domain (and of the sandbox's mock): its uuid is
/// the same everywhere, its id is not.
pub const TEST_CONNECTOR_UUID: &str = "338178e6-3d01-564f-9a7b-52ca442459bf";
