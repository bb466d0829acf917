//! # stet-transport
//!
//! Everything between a typed STET call and the bank's socket, below the STET semantics:
//!
//! - the TPP's **QWAC** identity for mutual TLS, with extra CA roots for sandboxes;
//! - the **OAuth2** flows a TPP runs (client credentials, authorization code with PKCE,
//!   refresh), with tokens cached and persisted;
//! - the **signed request pipeline** that adds `Date`, `X-Request-ID`, `Digest`, `Signature`,
//!   `Authorization` and the `PSU-*` headers exactly as they go on the wire, signing through
//!   [`stet_httpsig`];
//! - retries, with one rule: a request that may move money is never re-sent blindly.
//!
//! This crate is being built; today it only re-exports the signature crate it sits on.

pub use stet_httpsig as httpsig;
