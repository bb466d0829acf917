//! Digest header values: any string is checked against a body without panicking, and the
//! Digest stet writes for a body always checks.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stet_httpsig::{check_digest, digest_header_value};

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |&b| b as usize).min(data.len());
    let (header, body) = data.split_at(split);
    if let Ok(header) = std::str::from_utf8(header) {
        let _ = check_digest(header, body);
    }
    check_digest(&digest_header_value(body), body).expect("own digest checks");
});
