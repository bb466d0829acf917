//! The library behind `cargo xtask`: project chores that are code, so tests can run them too.
//!
//! - [`codegen`]: regenerates `crates/models/src/generated.rs` from `openapi/`.
//! - [`schemas`]: extracts the official STET schemas that `stet conformance` carries.
//! - [`testenv`]: installs and starts what the tests need (PostgreSQL, nginx, SoftHSM2,
//!   Chromium, the accounting validators, Python's jwcrypto), then runs them.

pub mod codegen;
pub mod schemas;
pub mod testenv;
