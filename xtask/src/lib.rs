//! The library behind `cargo xtask`: project chores that are code, so tests can run them too.
//!
//! - [`codegen`]: regenerates `crates/models/src/generated.rs` from `openapi/`.
//! - [`testenv`]: installs and starts what the tests need (PostgreSQL, nginx, SoftHSM2,
//!   Chromium, the accounting validators, Python's jwcrypto), then runs them.

pub mod codegen;
pub mod testenv;
