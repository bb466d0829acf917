//! Feeds arbitrary bytes to every STET response parser of stet-models (accounts, balances,
//! transactions, payment requests, errors, ...). Each must return a value or an error; a panic,
//! an abort or a hang is a bug.
//!
//! Run with `cargo +nightly fuzz run models_response`.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Every list response keeps its items as `Raw<_>`, so this also fuzzes the raw-JSON path.
    stet_models::parse_with_every_response_parser(data);
});
