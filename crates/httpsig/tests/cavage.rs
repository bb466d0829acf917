//! draft-cavage-http-signatures Appendix C, reproduced byte for byte.
//!
//! The key, request and expected values are the draft's (identical in drafts 09 and 10). The
//! key is 1024-bit, so signing goes through the RustCrypto backend; verification goes through
//! the default verifier (aws-lc-rs) with the key-size floor lowered to 1024.

use std::time::{Duration, SystemTime};

use stet_httpsig::{
    Backend, PrivateKey, PublicKey, Request, SignatureParams, SigningProfile, VerifyError,
    VerifyPolicy, digest_header_value, raw, sign_request, signing_string, verify_request,
};

const C1_SIG: &str = "SjWJWbWN7i0wzBvtPl8rbASWz5xQW6mcJmn+ibttBqtifLN7Sazz6m79cNfwwb8DMJ5cou1s7uEGKKCs+FLEEaDV5lp7q25WqS+lavg7T8hc0GppauB6hbgEKTwblDHYGEtbGmtdHgVCk9SuS13F0hZ8FD0k/5OxEPXe5WozsbM=";
const C2_SIG: &str = "qdx+H7PHHDZgy4y/Ahn9Tny9V3GP6YgBPyUXMmoxWtLbHpUnXS2mg2+SbrQDMCJypxBLSPQR2aAjn7ndmw2iicw3HMbe8VfEdKFYRqzic+efkb3nndiv/x1xSHDJWeSWkx3ButlYSuBskLu6kd9Fswtemr3lgdDEmn04swr2Os0=";
const C3_SIG: &str = "vSdrb+dS3EceC9bcwHSo4MlyKS59iFIrhgYkz8+oVLEEzmYZZvRs8rgOp+63LEM3v+MFHB32NfpB2bEKBIvB1q52LaEUHFv120V01IL+TAD48XaERZFukWgHoBTLMhYS2Gb51gWxpeIq8knRmPnYePbF5MOkR0Zkly4zKH7s1dE=";

const C1_STRING: &str = "date: Sun, 05 Jan 2014 21:31:40 GMT";
const C2_STRING: &str = "(request-target): post /foo?param=value&pet=dog\nhost: example.com\ndate: Sun, 05 Jan 2014 21:31:40 GMT";
const C3_STRING: &str = "(request-target): post /foo?param=value&pet=dog\nhost: example.com\ndate: Sun, 05 Jan 2014 21:31:40 GMT\ncontent-type: application/json\ndigest: SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=\ncontent-length: 18";

const C2_HEADERS: &[&str] = &["(request-target)", "host", "date"];
const C3_HEADERS: &[&str] = &[
    "(request-target)",
    "host",
    "date",
    "content-type",
    "digest",
    "content-length",
];

/// The moment of the draft's Date header.
fn draft_time() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_388_957_500)
}

fn request() -> Request {
    raw::parse_request(include_bytes!("cavage/request.http")).expect("the draft's request parses")
}

fn private_key() -> PrivateKey {
    PrivateKey::from_pem(include_bytes!("cavage/test-private.pem"), None).expect("PKCS#1 key")
}

fn public_key() -> PublicKey {
    PublicKey::from_pem(include_bytes!("cavage/test-public.pem")).expect("SPKI key")
}

fn policy() -> VerifyPolicy {
    VerifyPolicy {
        min_key_bits: 1024,
        max_skew: Some(Duration::from_secs(60)),
        ..VerifyPolicy::default()
    }
}

#[test]
fn the_request_file_is_the_drafts() {
    let req = request();
    assert_eq!(req.method(), "POST");
    assert_eq!(req.target(), "/foo?param=value&pet=dog");
    assert_eq!(req.body(), br#"{"hello": "world"}"#);
    assert_eq!(private_key().bits(), 1024);
}

#[test]
fn digest_of_the_body() {
    assert_eq!(
        digest_header_value(request().body()),
        "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="
    );
    assert_eq!(
        request().header("digest").as_deref(),
        Some("SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=")
    );
}

#[test]
fn signing_strings() {
    let req = request();
    assert_eq!(
        signing_string(&req, &["date"], None, None).unwrap(),
        C1_STRING
    );
    assert_eq!(
        signing_string(&req, C2_HEADERS, None, None).unwrap(),
        C2_STRING
    );
    assert_eq!(
        signing_string(&req, C3_HEADERS, None, None).unwrap(),
        C3_STRING
    );
    // And as files, exactly as the reference gives them.
    assert_eq!(
        C1_STRING,
        include_str!("cavage/C1-default.signing-string.txt")
    );
    assert_eq!(
        C2_STRING,
        include_str!("cavage/C2-basic.signing-string.txt")
    );
    assert_eq!(
        C3_STRING,
        include_str!("cavage/C3-all-headers.signing-string.txt")
    );
}

#[test]
fn signatures_byte_for_byte() {
    let signer = private_key().signer(Backend::RustCrypto).unwrap();
    for (headers, expected) in [
        (&["date"][..], C1_SIG),
        (C2_HEADERS, C2_SIG),
        (C3_HEADERS, C3_SIG),
    ] {
        let mut req = request();
        let profile = SigningProfile::new("Test").with_headers(headers);
        let signed = sign_request(&mut req, &profile, signer.as_ref(), draft_time()).unwrap();
        let expected_header = format!(
            "keyId=\"Test\",algorithm=\"rsa-sha256\",headers=\"{}\",signature=\"{expected}\"",
            headers.join(" ")
        );
        assert_eq!(signed.signature_header, expected_header);
        assert_eq!(req.header("signature").unwrap(), expected_header);
        // The Digest already on the request matched its body, so it was kept as it was.
        assert_eq!(req.header_values("digest").count(), 1);
    }
}

#[test]
fn the_drafts_headers_verify_and_tampering_does_not() {
    // The C.2 and C.3 Signature headers exactly as printed in the draft.
    for (headers, sig) in [(C2_HEADERS, C2_SIG), (C3_HEADERS, C3_SIG)] {
        let value = format!(
            "keyId=\"Test\",algorithm=\"rsa-sha256\",headers=\"{}\",signature=\"{sig}\"",
            headers.join(" ")
        );
        let req = request().with_header("Signature", value.clone());
        let ok = verify_request(&req, &policy(), &public_key(), draft_time()).unwrap();
        assert_eq!(ok.key_id, "Test");

        let mut tampered = request().with_header("Signature", value);
        tampered.set_header("Host", "example.org");
        assert!(matches!(
            verify_request(&tampered, &policy(), &public_key(), draft_time()),
            Err(VerifyError::Mismatch { .. })
        ));
    }
    // C.1 omits `headers`, which then means `date`.
    let req = request().with_header(
        "Signature",
        format!("keyId=\"Test\",algorithm=\"rsa-sha256\",signature=\"{C1_SIG}\""),
    );
    let ok = verify_request(&req, &policy(), &public_key(), draft_time()).unwrap();
    assert_eq!(ok.signing_string, C1_STRING);
}

#[test]
fn the_authorization_form_is_recognised_but_not_accepted() {
    let req = request().with_header(
        "Authorization",
        format!("Signature keyId=\"Test\",algorithm=\"rsa-sha256\",signature=\"{C1_SIG}\""),
    );
    assert_eq!(
        verify_request(&req, &policy(), &public_key(), draft_time()),
        Err(VerifyError::SignatureInAuthorization)
    );
}

#[test]
fn pkcs8_form_of_the_key_is_the_same_key() {
    let a = private_key();
    let b = PrivateKey::from_pem(include_bytes!("cavage/test-private.pkcs8.pem"), None).unwrap();
    assert_eq!(a.pkcs8_der(), b.pkcs8_der());
    assert_eq!(a.public_key().unwrap(), public_key());
}

#[cfg(feature = "aws-lc")]
#[test]
fn aws_lc_refuses_the_1024_bit_key_with_a_way_out() {
    let err = private_key()
        .signer(Backend::AwsLc)
        .unwrap_err()
        .to_string();
    assert!(err.contains("1024 bits"), "{err}");
    assert!(err.contains("--backend rustcrypto"), "{err}");
}

#[test]
fn the_c3_header_parses_to_its_parts() {
    let value = format!(
        "keyId=\"Test\",algorithm=\"rsa-sha256\",headers=\"{}\",signature=\"{C3_SIG}\"",
        C3_HEADERS.join(" ")
    );
    let p = SignatureParams::parse(&value).unwrap();
    assert_eq!(p.headers, C3_HEADERS);
    assert_eq!(p.to_header_value(), value);
}
