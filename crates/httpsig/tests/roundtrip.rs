//! Sign-then-verify over generated requests, and every tampering rejected for its own reason.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use stet_httpsig::{
    Backend, PrivateKey, PublicKey, Request, SignatureParams, Signer, SigningProfile,
    SigningStringError, VerifyError, VerifyPolicy, raw, sign_request, verify_request,
};

fn keys() -> &'static (Box<dyn Signer>, PublicKey) {
    static KEYS: OnceLock<(Box<dyn Signer>, PublicKey)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let pem = include_bytes!("data/rsa2048.pkcs8.pem");
        let key = PrivateKey::from_pem(pem, None).unwrap();
        (
            key.signer(Backend::default()).unwrap(),
            key.public_key().unwrap(),
        )
    })
}

const DATE: &str = "Tue, 07 Jun 2022 20:51:35 GMT";
fn now() -> SystemTime {
    httpdate::parse_http_date(DATE).unwrap() + Duration::from_secs(3)
}

fn policy() -> VerifyPolicy {
    VerifyPolicy {
        max_skew: Some(Duration::from_secs(30)),
        ..VerifyPolicy::stet()
    }
}

/// Path segments and query parts with reserved and percent-encoded characters.
fn segment() -> impl Strategy<Value = String> {
    proptest::string::string_regex("([A-Za-z0-9._~-]|%[0-9A-F]{2}|[!$&'()*+,;=:@]){1,12}").unwrap()
}

fn target() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(segment(), 1..4),
        prop::option::of(prop::collection::vec((segment(), segment()), 1..4)),
    )
        .prop_map(|(segments, query)| {
            let mut t = format!("/{}", segments.join("/"));
            if let Some(q) = query {
                let pairs: Vec<String> = q.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
                t.push('?');
                t.push_str(&pairs.join("&"));
            }
            t
        })
}

/// A header value: visible ASCII with inner spaces, no surrounding whitespace.
fn value() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[!-~]([ !-~]{0,30}[!-~])?").unwrap()
}

#[derive(Debug, Clone)]
struct Case {
    method: String,
    target: String,
    /// Extra headers: name, and one or two values (two values means the header is repeated).
    extra: Vec<(String, Vec<String>)>,
    psu: Vec<(String, String)>,
    body: Vec<u8>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH"]),
        target(),
        prop::collection::btree_map("x-[a-z]{1,8}", prop::collection::vec(value(), 1..3), 0..4),
        prop::collection::btree_map(
            prop::sample::select(vec![
                "PSU-IP-Address",
                "PSU-User-Agent",
                "PSU-Accept-Language",
            ]),
            value(),
            0..3,
        ),
        prop::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(|(method, target, extra, psu, body)| Case {
            method: method.to_owned(),
            target,
            extra: extra.into_iter().collect(),
            psu: psu.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
            body,
        })
}

fn build(case: &Case) -> (Request, SigningProfile) {
    let mut req = Request::new(case.method.clone(), case.target.clone())
        .with_header("Host", "api.bank.example:8443")
        .with_header("Date", DATE)
        .with_header("X-Request-ID", "0f7b7a2e-4b8c-4d3e-9a61-0c1d2e3f4a5b");
    let mut headers: Vec<String> = ["(request-target)", "host", "date", "x-request-id", "digest"]
        .map(str::to_owned)
        .to_vec();
    for (name, values) in &case.extra {
        for v in values {
            req.append_header(name.clone(), v.clone());
        }
        headers.push(name.clone());
    }
    for (name, v) in &case.psu {
        req.append_header(name.clone(), v.clone());
    }
    req.set_body(case.body.clone());
    let profile = SigningProfile {
        sign_psu_headers: true,
        ..SigningProfile::stet("key-1").with_headers(&headers)
    };
    (req, profile)
}

fn signed(case: &Case) -> Request {
    let (mut req, profile) = build(case);
    sign_request(&mut req, &profile, keys().0.as_ref(), now()).unwrap();
    req
}

fn verify(req: &Request) -> Result<stet_httpsig::Verified, VerifyError> {
    verify_request(req, &policy(), &keys().1, now())
}

fn rewrite_params(req: &mut Request, change: impl FnOnce(&mut SignatureParams)) {
    let mut params = SignatureParams::parse(&req.header("signature").unwrap()).unwrap();
    change(&mut params);
    req.set_header("Signature", params.to_header_value());
}

fn is_mismatch(r: Result<stet_httpsig::Verified, VerifyError>) -> bool {
    matches!(r, Err(VerifyError::Mismatch { .. }))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn round_trips(case in case()) {
        let req = signed(&case);
        let ok = verify(&req).unwrap();
        for (name, _) in &case.psu {
            prop_assert!(ok.headers.contains(&name.to_ascii_lowercase()));
        }
        prop_assert_eq!(ok.headers.contains(&"digest".to_owned()), !case.body.is_empty());
        // What the sender would print, parsed back as a raw request, still verifies.
        let reparsed = raw::parse_request(&raw::write_request(&req));
        if case.body.is_empty() || req.has_header("content-length") {
            prop_assert_eq!(verify(&reparsed.unwrap()).unwrap(), ok);
        }
    }

    #[test]
    fn any_signed_header_value_change_is_caught(case in case(), pick in any::<prop::sample::Index>()) {
        let req = signed(&case);
        let names: Vec<String> = verify(&req).unwrap().headers.into_iter()
            .filter(|h| !h.starts_with('(') && h != "digest").collect();
        let name = pick.get(&names).clone();
        let mut tampered = req.clone();
        let old = tampered.header(&name).unwrap();
        // A Date that no longer parses is refused before the signature is looked at; a
        // different valid date must be caught by the signature itself.
        let new = if name == "date" { "Tue, 07 Jun 2022 20:51:36 GMT".to_owned() } else { format!("{old}x") };
        tampered.set_header(name.clone(), new);
        prop_assert!(is_mismatch(verify(&tampered)), "{name}");
    }

    #[test]
    fn method_path_and_query_changes_are_caught(case in case()) {
        let req = signed(&case);
        let method = if case.method == "GET" { "HEAD" } else { "GET" };
        let mut t = Request::new(method, req.target());
        for (n, v) in req.headers() { t.append_header(n.clone(), v.clone()); }
        t.set_body(req.body().to_vec());
        prop_assert!(is_mismatch(verify(&t)));

        let (path, query) = match req.target().split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (req.target().to_owned(), None),
        };
        let variants = [
            format!("{path}x{}", query.as_ref().map(|q| format!("?{q}")).unwrap_or_default()),
            match &query { Some(q) => format!("{path}?{q}&y=1"), None => format!("{path}?y=1") },
            path.clone() + query.as_ref().map(|_| "").unwrap_or("/"),
        ];
        for target in variants {
            let mut t = Request::new(req.method(), target.clone());
            for (n, v) in req.headers() { t.append_header(n.clone(), v.clone()); }
            t.set_body(req.body().to_vec());
            prop_assert!(is_mismatch(verify(&t)), "{target}");
        }
    }

    #[test]
    fn body_changes_are_caught(case in case(), extra in any::<u8>()) {
        let mut req = signed(&case);
        let mut body = req.body().to_vec();
        body.push(extra);
        req.set_body(body);
        let err = verify(&req).unwrap_err();
        prop_assert!(matches!(err, VerifyError::Digest(_) | VerifyError::MissingDigest), "{err}");
    }

    #[test]
    fn dates_outside_the_skew_are_caught(case in case(), later in 31u64..100_000) {
        let req = signed(&case);
        let err = verify_request(&req, &policy(), &keys().1, now() + Duration::from_secs(later)).unwrap_err();
        prop_assert!(matches!(err, VerifyError::DateSkew { .. }), "{err}");
        let err = verify_request(&req, &policy(), &keys().1, now() - Duration::from_secs(later + 3)).unwrap_err();
        prop_assert!(matches!(err, VerifyError::DateSkew { .. }), "{err}");
    }

    #[test]
    fn a_removed_header_is_caught(case in case(), pick in any::<prop::sample::Index>()) {
        let req = signed(&case);
        let names: Vec<String> = verify(&req).unwrap().headers.into_iter()
            .filter(|h| !h.starts_with('(') && h != "date" && h != "digest").collect();
        let name = pick.get(&names).clone();
        let mut tampered = req.clone();
        tampered.remove_header(&name);
        let err = verify(&tampered).unwrap_err();
        prop_assert_eq!(err, VerifyError::SigningString(SigningStringError::MissingHeader(name)));
    }

    #[test]
    fn a_reordered_list_is_caught(case in case(), a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>()) {
        let mut req = signed(&case);
        rewrite_params(&mut req, |p| {
            let (i, j) = (a.index(p.headers.len()), b.index(p.headers.len()));
            let j = if i == j { (j + 1) % p.headers.len() } else { j };
            p.headers.swap(i, j);
        });
        prop_assert!(is_mismatch(verify(&req)));
    }

    #[test]
    fn a_changed_algorithm_is_caught(case in case(), alg in prop::sample::select(vec!["rsa-sha512", "hmac-sha256", "hs2019", "ecdsa-sha256"])) {
        let mut req = signed(&case);
        rewrite_params(&mut req, |p| p.algorithm = Some(alg.to_owned()));
        prop_assert_eq!(verify(&req).unwrap_err(), VerifyError::UnsupportedAlgorithm(alg.to_owned()));
    }

    #[test]
    fn a_header_dropped_from_the_list_is_caught_by_policy(case in case()) {
        let mut req = signed(&case);
        rewrite_params(&mut req, |p| p.headers.retain(|h| h != "x-request-id"));
        prop_assert_eq!(verify(&req).unwrap_err(), VerifyError::NotSigned("x-request-id".into()));
    }
}

#[test]
fn a_listed_header_missing_at_signing_is_an_error_naming_it() {
    let mut req = Request::new("GET", "/v1/accounts").with_header("Date", DATE);
    let profile = SigningProfile::stet("k");
    let err = sign_request(&mut req, &profile, keys().0.as_ref(), now()).unwrap_err();
    assert!(err.to_string().contains("`x-request-id`"), "{err}");
    assert!(!req.has_header("signature"), "nothing is set on failure");
}

#[test]
fn a_digest_that_disagrees_with_the_body_is_refused_at_signing() {
    let mut req = Request::new("POST", "/v1/payment-requests")
        .with_header("Date", DATE)
        .with_header("X-Request-ID", "1")
        .with_header(
            "Digest",
            "SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=",
        )
        .with_body(b"{}".to_vec());
    let err = sign_request(
        &mut req,
        &SigningProfile::stet("k"),
        keys().0.as_ref(),
        now(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("does not match"), "{err}");
}

#[test]
fn digest_on_empty_body_when_asked() {
    let base = Request::new("GET", "/v1/accounts")
        .with_header("Date", DATE)
        .with_header("X-Request-ID", "1");
    let mut plain = base.clone();
    let s = sign_request(
        &mut plain,
        &SigningProfile::stet("k"),
        keys().0.as_ref(),
        now(),
    )
    .unwrap();
    assert_eq!(s.headers, ["(request-target)", "date", "x-request-id"]);
    assert!(!plain.has_header("digest"));

    let mut with = base;
    let profile = SigningProfile {
        digest_on_empty_body: true,
        ..SigningProfile::stet("k")
    };
    let s = sign_request(&mut with, &profile, keys().0.as_ref(), now()).unwrap();
    assert_eq!(
        s.headers,
        ["(request-target)", "date", "x-request-id", "digest"]
    );
    assert_eq!(
        with.header("digest").as_deref(),
        Some("SHA-256=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
    );
    verify(&with).unwrap();
}

#[test]
fn created_and_expires_when_the_profile_lists_them() {
    let mut req = Request::new("GET", "/v1/accounts").with_header("Date", DATE);
    let profile = SigningProfile {
        expires_in: Some(Duration::from_secs(60)),
        ..SigningProfile::new("k").with_headers(&[
            "(request-target)",
            "(created)",
            "(expires)",
            "date",
        ])
    };
    let signed = sign_request(&mut req, &profile, keys().0.as_ref(), now()).unwrap();
    let created = now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(
        signed
            .signature_header
            .contains(&format!("created={created},expires={}", created + 60))
    );
    assert!(signed.signing_string.contains(&format!(
        "(created): {created}\n(expires): {}",
        created + 60
    )));
    let policy = VerifyPolicy {
        max_skew: Some(Duration::from_secs(30)),
        ..VerifyPolicy::default()
    };
    verify_request(&req, &policy, &keys().1, now()).unwrap();
    let err = verify_request(
        &req,
        &VerifyPolicy {
            max_skew: None,
            ..policy
        },
        &keys().1,
        now() + Duration::from_secs(61),
    )
    .unwrap_err();
    assert!(matches!(err, VerifyError::Expired(_)), "{err}");
}

#[test]
fn unknown_keys_short_keys_and_missing_signatures() {
    let mut map = std::collections::HashMap::new();
    map.insert("other".to_owned(), keys().1.clone());
    let case = Case {
        method: "GET".into(),
        target: "/a".into(),
        extra: vec![],
        psu: vec![],
        body: vec![],
    };
    let req = signed(&case);
    assert_eq!(
        verify_request(&req, &policy(), &map, now()).unwrap_err(),
        VerifyError::UnknownKey("key-1".into())
    );
    let strict = VerifyPolicy {
        min_key_bits: 3072,
        ..policy()
    };
    assert!(matches!(
        verify_request(&req, &strict, &keys().1, now()).unwrap_err(),
        VerifyError::KeyTooShort {
            bits: 2048,
            min: 3072,
            ..
        }
    ));
    let mut unsigned = req.clone();
    unsigned.remove_header("signature");
    assert_eq!(verify(&unsigned).unwrap_err(), VerifyError::NoSignature);
    let mut twice = req.clone();
    twice.append_header("Signature", req.header("signature").unwrap());
    assert_eq!(
        verify(&twice).unwrap_err(),
        VerifyError::SeveralSignatures(2)
    );
    let mut undated = req;
    undated.remove_header("date");
    assert_eq!(verify(&undated).unwrap_err(), VerifyError::MissingDate);
}
