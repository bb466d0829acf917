//! # stet-client
//!
//! The typed STET API a TPP programs against: one call per STET operation (AISP accounts,
//! balances and transactions; PISP payment requests; CBPII funds confirmations), `_links.next`
//! pagination followed for the caller, and bank dialects absorbed by *profiles*: data (TOML)
//! that says which API version, signed headers, keyId form and history caps a bank uses.
//!
//! Bank dialects live in [`bank`]: a [`bank::BankProfile`] per bank, resolved from TOML files
//! (built-in ones for the generic 1.4 and 1.5 dialects, the embedded sandbox and the main
//! French banks, plus the user's overrides), each with the `stet_httpsig::SigningProfile` the
//! bank expects, its history cap, date-time format, pagination and confirmation path.
//!
//! This crate is being built; the typed API will read its dialect from a [`bank::BankProfile`].

pub mod bank;

pub use stet_models as models;
pub use stet_transport as transport;
