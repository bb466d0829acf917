//! # stet-sandbox
//!
//! An embedded mock bank (ASPSP) that speaks STET strictly: HTTPS with a required client
//! certificate, a real OAuth2 authorization server, `Signature` and `Digest` checked on every
//! request as the strictest bank would, deterministic synthetic accounts and transactions, and
//! faults injected on demand. Tests and the `stet demo` run against it.
//!
//! This crate is being built; today it only names the crates it sits on.

pub use stet_httpsig as httpsig;
pub use stet_models as models;
