//! # stet-transport
//!
//! Everything between a typed STET call and the bank's socket, below the STET semantics:
//!
//! - the TPP's **QWAC** for mutual TLS ([`QwacIdentity`]), from PEM or PKCS#12, checked at load
//!   (key matches certificate, validity dates, chain order), with extra CA roots for sandboxes;
//! - the **OAuth2** flows a TPP runs ([`OAuthClient`]): client credentials, authorization code
//!   with PKCE S256 and a checked `state`, refresh; `tls_client_auth` or a client secret;
//! - **tokens** kept per profile in a [`TokenStore`] ([`FileTokenStore`]: 0600, atomic writes);
//! - the **signed request pipeline** ([`Transport::send`]): `Date`, `X-Request-ID`, `Digest`,
//!   `Host` as on the wire, `Authorization`, the `PSU-*` headers, then the `Signature` of
//!   [`stet_httpsig`], on every attempt anew; and, for conformance testing, the same request
//!   built and left to the caller to break and send once as it is ([`RawRequest`]);
//! - **retries** for requests that can be repeated (GET, PUT) on 429 (honouring `Retry-After`),
//!   502/503/504 and connection failures, with exponential backoff and jitter, bounded in
//!   attempts and time. A POST may move money: it is never resent once it may have reached the
//!   bank, and a lost answer (or a gateway's 502/504, which may come after the bank acted)
//!   becomes [`TransportError::OutcomeUnknown`], which says how to check;
//! - the **configuration** file with named profiles ([`config`]);
//! - **keys in an HSM**: `qseal_key` and `qwac_key` may be RFC 7512 `pkcs11:` URIs
//!   ([`stet_pkcs11`]); the QSealC then signs in the HSM (on a blocking thread, off the async
//!   runtime's), and the TLS handshake is signed there too, with a rustls configuration built
//!   here (the platform's roots plus `ca_bundle`, as reqwest's own);
//! - **certificate inspection** ([`inspect`]): validity, `organizationIdentifier`, QcType and
//!   the PSD2 roles and NCA of the eIDAS QCStatements, for `stet doctor`;
//! - a **plain HTTPS client** ([`HttpsClient`]) for APIs reached with a bearer token alone (the
//!   Powens aggregator): the same TLS, timeouts, size cap, origin rule and retries, without
//!   the QWAC or signatures.
//!
//! Credentials go only to the configured bank: a URL on another host (say, a `_links` href) is
//! refused before anything is sent. Logs (`tracing`, at debug) give method, path, status,
//! `X-Request-ID` and duration; tokens, codes, secrets, keys and signatures never appear, at
//! any level.
//!
//! ```no_run
//! # async fn run() -> Result<(), stet_transport::TransportError> {
//! use std::path::Path;
//! use stet_transport::{Auth, StetRequest, Transport, config};
//!
//! let path = Path::new("config.toml");
//! let file = config::load_file(path)?;
//! let profile = config::resolve(&file, Some("sandbox"), Some(path), &|k| std::env::var(k).ok())?;
//! let transport = Transport::builder(&profile).build()?;
//! let response = transport
//!     .send(&StetRequest::get("accounts", Auth::Consent("aisp".into())))
//!     .await?
//!     .error_for_status(&reqwest::Method::GET)?;
//! println!("{}", String::from_utf8_lossy(&response.body));
//! # Ok(()) }
//! ```

// The errors carry what a person needs to act (file paths, certificate subjects, the bank's
// message); they are built only when something failed, never on the success path, so their
// size costs nothing that matters.
#![allow(clippy::result_large_err)]

mod client;
pub mod config;
mod error;
mod hsm;
mod https;
mod identity;
pub mod inspect;
mod oauth;
mod psu;
mod retry;
mod secret;
mod token;

pub use client::{
    Auth, Probe, RawRequest, StetRequest, StetResponse, Transport, TransportBuilder, origin,
};
pub use config::{
    AggregatorProfile, ConfigError, Profile, Provider, QwacSource, RegistrationMetadata,
};
pub use error::{TransportError, bank_message};
pub use https::{HttpsClient, HttpsOptions, HttpsRequest};
pub use identity::{IdentityError, LoadOptions, QwacIdentity, load_ca_bundle};
pub use oauth::{Authorization, ClientAuth, OAuthClient, OAuthSettings, Redirect, RedirectError};
pub use psu::PsuContext;
pub use reqwest::Method;
pub use retry::{RetryPolicy, is_idempotent, parse_retry_after};
pub use secret::Secret;
pub use stet_httpsig as httpsig;
pub use stet_pkcs11 as pkcs11;
pub use token::{
    FileLock, FileTokenStore, MemoryTokenStore, StoreError, Token, TokenSet, TokenStore, unix,
};
