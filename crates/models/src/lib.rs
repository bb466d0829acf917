//! # stet-models
//!
//! The STET PSD2 resources as Rust data: accounts, balances, transactions, payment requests,
//! consents and funds confirmations, generated from the spec in `openapi/` and made tolerant of
//! the dialects banks actually speak (1.4.x amounts as strings, dates without time, remittance
//! information as an array, unknown enum values kept).
//!
//! This crate is being built; today it holds no types yet.
