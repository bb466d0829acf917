//! # stet-client
//!
//! The typed STET API a TPP programs against: one call per STET operation (AISP accounts,
//! balances and transactions; PISP payment requests; CBPII funds confirmations), `_links.next`
//! pagination followed for the caller, and bank dialects absorbed by *profiles*: data (TOML)
//! that says which API version, signed headers, keyId form and history caps a bank uses.
//!
//! This crate is being built; today it only names the crates it sits on.

pub use stet_models as models;
pub use stet_transport as transport;
