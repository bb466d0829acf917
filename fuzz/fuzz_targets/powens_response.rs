//! Feeds arbitrary bytes to every parser of what Powens (or anyone posing as it) sends: its
//! resources, a domain key (JWK), a JWE (its header, and decryption by the mock's key), a
//! naive Paris date-time, and a webhook's signature and date. Each must return a value or an
//! error; a panic, an abort or a hang is a bug.
//!
//! Run with `cargo +nightly fuzz run powens_response`.

#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use stet_powens::model::{BankAccount, Connection, Connector, TransactionPage};

fn key() -> &'static stet_powens::jwe::DecryptingKey {
    static KEY: OnceLock<stet_powens::jwe::DecryptingKey> = OnceLock::new();
    KEY.get_or_init(|| stet_powens::jwe::DecryptingKey::generate("fuzz").expect("a key"))
}

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<TransactionPage>(data);
    let _ = serde_json::from_slice::<Connection>(data);
    let _ = serde_json::from_slice::<BankAccount>(data);
    let _ = serde_json::from_slice::<Connector>(data);
    let _ = stet_powens::jwe::DomainKey::from_jwk(data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = stet_powens::jwe::header(text);
        let _ = key().decrypt(text);
        let _ = text.parse::<stet_powens::paris::ParisDateTime>();
        let (date, signature) = text.split_once('\n').unwrap_or((text, text));
        let _ = stet_powens::webhook::verify(
            b"secret",
            &["/hook"],
            date,
            data,
            signature,
            time::OffsetDateTime::UNIX_EPOCH,
            std::time::Duration::from_secs(u64::MAX / 4),
        );
    }
});
