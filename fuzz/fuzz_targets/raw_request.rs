//! The raw HTTP/1.1 request parser of `stet sig`, then verification of whatever parsed: errors,
//! never panics; a parsed request written back parses to the same request.
#![no_main]

use std::sync::OnceLock;
use std::time::SystemTime;

use libfuzzer_sys::fuzz_target;
use stet_httpsig::{PublicKey, VerifyPolicy, raw, verify_request};

fn key() -> &'static PublicKey {
    static KEY: OnceLock<PublicKey> = OnceLock::new();
    KEY.get_or_init(|| {
        PublicKey::from_pem(include_bytes!("../../crates/httpsig/tests/data/rsa2048.pub.pem"))
            .expect("test key")
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = raw::parse_request(data) {
        let written = raw::write_request(&request);
        if !request.has_header("content-length") || request.body().is_empty() {
            if let Ok(again) = raw::parse_request(&written) {
                assert_eq!(again.headers(), request.headers());
            }
        }
        let _ = verify_request(&request, &VerifyPolicy::stet(), key(), SystemTime::now());
    }
});
