//! The library behind `cargo xtask`: project chores that are code, so tests can run them too.
//!
//! - [`codegen`]: regenerates `crates/models/src/generated.rs` from `openapi/`.

pub mod codegen;
