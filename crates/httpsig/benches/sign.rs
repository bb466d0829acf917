//! Signing a typical STET POST: a 1 KiB JSON body (Digest included) and six signed headers,
//! RSA-2048, on each backend; beside the bare RSA signature, to show what the HTTP work costs.
//!
//! Run with `cargo bench -p stet-httpsig --bench sign`. Figures are in BENCHMARKS.md.

use std::hint::black_box;
use std::time::SystemTime;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use stet_httpsig::{Backend, PrivateKey, Request, SigningProfile, sign_request};

/// A payment request body padded to 1 KiB, as a STET POST carries.
fn body() -> Vec<u8> {
    let mut body = br#"{"paymentInformationId":"MyPmtInfId","creationDateTime":"2026-11-21T10:00:00.000+01:00","numberOfTransactions":1,"initiatingParty":{"name":"Example TPP"},"paymentTypeInformation":{"serviceLevel":"SEPA"},"debtor":{"name":"Jane Doe"},"creditorAccount":{"iban":"FR7630006000011234567890189"},"creditTransferTransaction":[{"paymentId":{"instructionId":"MyInstrId","endToEndId":"MyEndToEndId"},"instructedAmount":{"currency":"EUR","amount":"124.35"},"remittanceInformation":[""#.to_vec();
    while body.len() < 1024 - 6 {
        body.push(b'x');
    }
    body.extend_from_slice(br#""]}]}"#);
    body.push(b'\n');
    body
}

fn request() -> Request {
    Request::new("POST", "/stet/psd2/v1.5/payment-requests")
        .with_header("Host", "api.bank.example")
        .with_header("Date", "Sat, 21 Nov 2026 10:00:00 GMT")
        .with_header("X-Request-ID", "3b4c5d6e-7f80-4a1b-9c2d-3e4f5a6b7c8d")
        .with_header("Content-Type", "application/json")
        .with_header("PSU-IP-Address", "192.0.2.10")
        .with_body(body())
}

fn bench(c: &mut Criterion) {
    let key = PrivateKey::from_pem(include_bytes!("../tests/data/rsa2048.pkcs8.pem"), None)
        .expect("test key");
    let profile = SigningProfile::stet("https://tpp.example/qseal.pem").with_headers(&[
        "(request-target)",
        "host",
        "date",
        "x-request-id",
        "content-type",
        "digest",
    ]);
    let unsigned = request();
    assert_eq!(unsigned.body().len(), 1024);

    let mut group = c.benchmark_group("rsa2048");
    for backend in Backend::all() {
        let signer = key.signer(*backend).expect("backend takes the key");
        group.bench_function(format!("{backend}/stet-post"), |b| {
            b.iter_batched_ref(
                || unsigned.clone(),
                |req| {
                    sign_request(req, &profile, signer.as_ref(), SystemTime::now()).expect("signs")
                },
                BatchSize::SmallInput,
            )
        });
        let message = [0x5au8; 300];
        group.bench_function(format!("{backend}/raw-rsa"), |b| {
            b.iter(|| signer.sign(black_box(&message)).expect("signs"))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
