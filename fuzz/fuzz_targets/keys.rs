//! Key and certificate loading from arbitrary bytes (PEM or DER): errors, never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stet_httpsig::{PrivateKey, PublicKey};

fuzz_target!(|data: &[u8]| {
    let _ = PrivateKey::from_bytes(data, Some(b"passphrase"));
    let _ = PublicKey::from_bytes(data);
});
