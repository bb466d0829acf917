//! The sandbox over real sockets: mTLS, OAuth2, signatures, the STET operations, faults.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use common::{Tpp, http_client};
use serde_json::{Value, json};
use stet_sandbox::{Dialect, LinkStyle, RunningSandbox, Sandbox, SandboxConfig};

/// One PKI for every test (RSA key generation is the slow part of a start).
fn pki() -> PathBuf {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        stet_sandbox::pki::generate(dir.path()).unwrap();
        dir
    })
    .path()
    .to_path_buf()
}

async fn start(config: SandboxConfig) -> (RunningSandbox, Tpp) {
    let bank = Sandbox::start(SandboxConfig {
        certs: Some(pki()),
        today: Some(time::macros::date!(2025 - 06 - 15)),
        ..config
    })
    .await
    .unwrap();
    let tpp = Tpp::new(bank.info());
    (bank, tpp)
}

fn payment_body(amount: &str) -> Value {
    json!({
        "paymentInformationId": "MyPmtInfId",
        "creationDateTime": "2025-06-15T10:00:00+01:00",
        "numberOfTransactions": 1,
        "initiatingParty": {"name": "Example TPP"},
        "paymentTypeInformation": {"serviceLevel": "SEPA", "localInstrument": "INST", "categoryPurpose": "DVPM"},
        "debtorAccount": {"iban": "FR7630004000031234567890143"},
        "beneficiary": {"creditor": {"name": "Marie Martin"}, "creditorAccount": {"iban": "FR7630006000011234567890189"}},
        "chargeBearer": "SLEV",
        "creditTransferTransaction": [{
            "paymentId": {"instructionId": "MyInstrId", "endToEndId": "MyEndToEndId"},
            "instructedAmount": {"currency": "EUR", "amount": amount},
            "remittanceInformation": {"unstructured": ["Facture 42"]}
        }],
        "supplementaryData": {
            "acceptedAuthenticationApproach": ["REDIRECT"],
            "successfulReportUrl": "http://127.0.0.1:4567/ok",
            "unsuccessfulReportUrl": "http://127.0.0.1:4567/ko"
        }
    })
}

#[tokio::test]
async fn json_line_describes_a_usable_bank() {
    let (bank, _tpp) = start(SandboxConfig::default()).await;
    let info = serde_json::to_value(bank.info()).unwrap();
    for key in [
        "api_base",
        "authorize_url",
        "token_url",
        "ca",
        "client_id",
        "client_secret",
        "key_id",
        "redirect_uri",
        "psu",
        "qwac_cert",
        "qwac_key",
        "qseal_cert",
        "qseal_key",
        "dialect",
    ] {
        assert!(info[key].is_string(), "{key} missing in {info}");
    }
    assert_eq!(info["client_id"], "PSDFR-ACPR-12345");
    assert!(
        info["api_base"]
            .as_str()
            .unwrap()
            .ends_with("/stet/psd2/v1.5")
    );
    assert!(
        info["api_base"]
            .as_str()
            .unwrap()
            .starts_with("https://127.0.0.1:")
    );
    bank.shutdown().await;
}

#[tokio::test]
async fn without_a_client_certificate_only_authorize_answers() {
    let (bank, tpp) = start(SandboxConfig::default()).await;
    let anonymous = http_client(bank.info(), false);
    let r = anonymous
        .get(format!("{}/accounts", bank.info().api_base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let body: Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("no client certificate")
    );
    let r = anonymous
        .post(&bank.info().token_url)
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // The QSealC is served at the keyId URL.
    let pem = tpp
        .http
        .get(&bank.info().key_id)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(pem.contains("BEGIN CERTIFICATE"));
    bank.shutdown().await;
}

#[tokio::test]
async fn oauth_errors_follow_rfc_6749() {
    let (bank, tpp) = start(SandboxConfig::default()).await;
    let id = bank.info().client_id.clone();
    let a = tpp
        .token_form(&[("grant_type", "password"), ("client_id", &id)])
        .await;
    assert_eq!(
        (a.status, a.json()["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
    let a = tpp
        .token_form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("scope", "aisp"),
        ])
        .await;
    assert_eq!(a.json()["error"], "invalid_scope");
    let a = tpp
        .token_form(&[
            ("grant_type", "client_credentials"),
            ("client_id", "PSDFR-ACPR-99999"),
        ])
        .await;
    assert_eq!(
        (a.status, a.json()["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let a = tpp
        .token_form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", "wrong"),
        ])
        .await;
    assert_eq!(a.json()["error"], "invalid_client");
    let a = tpp
        .token_form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &bank.info().client_secret),
            ("scope", "cbpii"),
        ])
        .await;
    assert_eq!(a.status, 200);

    // Code flow: wrong verifier, then the code is gone (single use).
    let verifier = "a-verifier-that-is-long-enough-for-pkce-0123456789";
    let loc = tpp
        .authorize("aisp", None, &common::challenge(verifier), "s")
        .await;
    let code = reqwest::Url::parse(&loc)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    let exchange = |v: &'static str, redirect: &'static str| {
        let (tpp, code, id) = (&tpp, code.clone(), id.clone());
        async move {
            tpp.token_form(&[
                ("grant_type", "authorization_code"),
                ("client_id", &id),
                ("code", &code),
                ("redirect_uri", redirect),
                ("code_verifier", v),
            ])
            .await
        }
    };
    let a = exchange("wrong-verifier", "http://127.0.0.1:4567/callback").await;
    assert_eq!(a.json()["error"], "invalid_grant");
    assert!(
        a.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("PKCE")
    );
    let a = exchange(verifier, "http://127.0.0.1:4567/callback").await;
    assert!(
        a.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("already used")
    );

    // A redirect URI that is not loopback is refused without redirecting.
    let r = tpp
        .http
        .get(format!(
            "{}?response_type=code&client_id={id}&redirect_uri=https://evil.example/cb&code_challenge=x&code_challenge_method=S256&scope=aisp",
            bank.info().authorize_url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);

    // Refresh works once.
    let t = tpp.code_flow("aisp", None).await;
    let rt = t["refresh_token"].as_str().unwrap();
    let a = tpp
        .token_form(&[
            ("grant_type", "refresh_token"),
            ("client_id", &id),
            ("refresh_token", rt),
        ])
        .await;
    assert_eq!(a.status, 200);
    let a = tpp
        .token_form(&[
            ("grant_type", "refresh_token"),
            ("client_id", &id),
            ("refresh_token", rt),
        ])
        .await;
    assert_eq!(a.json()["error"], "invalid_grant");
    bank.shutdown().await;
}

#[tokio::test]
async fn a_correct_signature_passes_and_each_tampering_fails_with_its_own_reason() {
    let (bank, tpp) = start(SandboxConfig::default()).await;
    let token = tpp.aisp_token().await;
    let base = bank.info().api_base.clone();
    let url = format!("{base}/accounts/ACC0001/transactions?dateType=bookingDate");
    let psu = [("PSU-IP-Address", "192.0.2.10")];
    let good = tpp.signed("GET", &url, Some(&token), &psu, b"");
    assert_eq!(tpp.send(&good).await.status, 200);

    let pay = tpp.client_credentials("pisp").await;
    let body = serde_json::to_vec(&payment_body("10.00")).unwrap();
    let post = tpp.signed(
        "POST",
        &format!("{base}/payment-requests"),
        Some(&pay),
        &[],
        &body,
    );

    let mut cases: Vec<(&str, stet_httpsig::Request, u16, &str)> = Vec::new();
    let mut r = good.clone();
    r.set_header("X-Request-ID", "another-id");
    cases.push(("header value", r, 401, "x-request-id: another-id"));
    let mut r = good.clone();
    r.set_header("PSU-IP-Address", "198.51.100.7");
    cases.push(("PSU header value", r, 401, "psu-ip-address: 198.51.100.7"));
    let r = stet_httpsig::Request::new("DELETE", good.target()).with_header("x", "y");
    let mut m = r;
    for (n, v) in good.headers() {
        m.append_header(n.clone(), v.clone());
    }
    cases.push(("method", m, 401, "(request-target): delete /stet"));
    let mut p = stet_httpsig::Request::new("GET", good.target().replace("ACC0001", "ACC0002"));
    for (n, v) in good.headers() {
        p.append_header(n.clone(), v.clone());
    }
    cases.push(("path", p, 401, "/accounts/ACC0002/transactions"));
    let mut q = stet_httpsig::Request::new(
        "GET",
        good.target().replace("bookingDate", "transactionDate"),
    );
    for (n, v) in good.headers() {
        q.append_header(n.clone(), v.clone());
    }
    cases.push(("query", q, 401, "dateType=transactionDate"));
    let mut b = post.clone();
    b.set_body(serde_json::to_vec(&payment_body("9999.00")).unwrap());
    cases.push(("body", b, 400, "Digest"));
    let mut d = good.clone();
    d.set_header(
        "Date",
        httpdate::fmt_http_date(std::time::SystemTime::now() + std::time::Duration::from_secs(61)),
    );
    cases.push(("date", d, 401, "date: "));
    let mut old = good.clone();
    old.set_header("Date", "Sun, 05 Jan 2014 21:31:40 GMT");
    cases.push(("stale date", old, 401, "s away from this clock"));
    // A header dropped from the signed list.
    let mut short = Tpp::new(bank.info());
    short.profile = short
        .profile
        .with_headers(&["(request-target)", "date", "digest"]);
    let dropped = short.signed("GET", &url, Some(&token), &psu, b"");
    cases.push((
        "x-request-id unsigned",
        dropped,
        401,
        "header `x-request-id` must be signed",
    ));
    let mut short = Tpp::new(bank.info());
    short.profile.sign_psu_headers = false;
    let unsigned_psu = short.signed("GET", &url, Some(&token), &psu, b"");
    cases.push((
        "PSU header unsigned",
        unsigned_psu,
        401,
        "header `psu-ip-address` must be signed",
    ));
    let mut no_sig = good.clone();
    no_sig.remove_header("Signature");
    cases.push(("no signature", no_sig, 401, "no Signature header"));
    let mut unknown = Tpp::new(bank.info());
    unknown.profile = stet_httpsig::SigningProfile::stet("https://tpp.example/other.pem");
    let unknown = unknown.signed("GET", &url, Some(&token), &psu, b"");
    cases.push(("unknown keyId", unknown, 401, "unknown keyId"));

    let mut reasons = Vec::new();
    for (name, req, status, needle) in cases {
        let a = tpp.send(&req).await;
        let reason = a.reason();
        assert_eq!(a.status, status, "{name}: {reason}");
        assert!(
            reason.contains(needle),
            "{name}: `{needle}` not in {reason}"
        );
        let model = a.json();
        assert!(
            model["message"].as_str().unwrap().chars().count() <= 140,
            "{name}"
        );
        assert_eq!(model["status"], status, "{name}");
        reasons.push(reason);
    }
    let distinct: std::collections::HashSet<_> = reasons.iter().collect();
    assert_eq!(
        distinct.len(),
        reasons.len(),
        "reasons repeat: {reasons:#?}"
    );
    // Nothing was created by the tampered POST.
    assert_eq!(bank.payment_requests_created(), 0);
    bank.shutdown().await;
}

/// `unsigned_psu_headers`: a bank whose rules do not ask for `PSU-*` headers to be signed takes
/// them unsigned; everything else about the signature is still checked.
#[tokio::test]
async fn unsigned_psu_headers_are_taken_only_when_the_bank_allows_them() {
    let (bank, tpp) = start(SandboxConfig {
        unsigned_psu_headers: true,
        ..SandboxConfig::default()
    })
    .await;
    let token = tpp.aisp_token().await;
    let url = format!("{}/accounts", bank.info().api_base);
    let psu = [("PSU-IP-Address", "192.0.2.10")];
    let mut unsigned = Tpp::new(bank.info());
    unsigned.profile.sign_psu_headers = false;
    let request = unsigned.signed("GET", &url, Some(&token), &psu, b"");
    assert_eq!(tpp.send(&request).await.status, 200);
    // The signed headers still must match.
    let mut changed = request.clone();
    changed.set_header("X-Request-ID", "another-id");
    assert_eq!(tpp.send(&changed).await.status, 401);
    bank.shutdown().await;
}

/// Follows `next` from the first page and collects the entry references.
async fn walk(tpp: &Tpp, first: &str, token: &str, key: &str, id: &str) -> Vec<String> {
    let mut seen = Vec::new();
    let mut next = Some(first.to_owned());
    let mut pages = 0;
    while let Some(href) = next {
        pages += 1;
        assert!(pages < 100, "pagination does not end");
        let url = if href.starts_with("https://") {
            href
        } else if href.starts_with('/') {
            let base = reqwest::Url::parse(&tpp.info.api_base).unwrap();
            format!("https://{}{href}", base.authority())
        } else {
            format!("{}/{href}", tpp.info.api_base)
        };
        let a = tpp.call("GET", &url, token, None).await;
        assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
        let v = a.json();
        for item in v[key].as_array().unwrap() {
            seen.push(item[id].as_str().unwrap().to_owned());
        }
        assert!(v["_links"]["first"].is_object() && v["_links"]["last"].is_object());
        next = v["_links"]["next"]["href"].as_str().map(str::to_owned);
    }
    seen
}

#[tokio::test]
async fn pagination_walks_every_item_once_in_every_link_style() {
    for style in [LinkStyle::Url, LinkStyle::Path, LinkStyle::Relative] {
        let (bank, tpp) = start(SandboxConfig {
            accounts: 5,
            transactions: 47,
            page_size: 10,
            link_style: style,
            ..SandboxConfig::default()
        })
        .await;
        let token = tpp
            .code_flow("aisp extended_transaction_history", None)
            .await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let accounts = walk(
            &tpp,
            &format!("{}/accounts", bank.info().api_base),
            &token,
            "accounts",
            "resourceId",
        )
        .await;
        assert_eq!(
            accounts,
            ["ACC0001", "ACC0002", "ACC0003", "ACC0004", "ACC0005"],
            "{style:?}"
        );
        let first = format!("{}/accounts/ACC0003/transactions", bank.info().api_base);
        let refs = walk(&tpp, &first, &token, "transactions", "entryReference").await;
        assert_eq!(refs.len(), 47, "{style:?}");
        let unique: std::collections::HashSet<_> = refs.iter().collect();
        assert_eq!(unique.len(), 47, "{style:?}");
        // Entry-reference cursor: strictly after a reference.
        let cursor = format!("{first}?entryReferenceFrom=ACC0003-000040");
        let after = walk(&tpp, &cursor, &token, "transactions", "entryReference").await;
        assert_eq!(after.len(), 7);
        bank.shutdown().await;
    }
}

#[tokio::test]
async fn history_psu_presence_and_filters() {
    let (bank, tpp) = start(SandboxConfig {
        transactions: 200,
        ..SandboxConfig::default()
    })
    .await;
    let token = tpp.aisp_token().await;
    let txs = "/accounts/ACC0001/transactions";
    // Older than 90 days needs extended_transaction_history.
    let a = tpp
        .call("GET", &format!("{txs}?dateFrom=2024-06-01"), &token, None)
        .await;
    assert_eq!(a.status, 403, "{}", a.reason());
    assert!(a.reason().contains("extended_transaction_history"));
    let ext = tpp
        .code_flow("aisp extended_transaction_history", None)
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let a = tpp
        .call(
            "GET",
            &format!("{txs}?dateFrom=2024-06-01&dateTo=2024-07-01"),
            &ext,
            None,
        )
        .await;
    assert_eq!(a.status, 200);
    for t in a.json()["transactions"].as_array().unwrap() {
        let d = t["bookingDate"].as_str().unwrap();
        assert!(d.starts_with("2024-06"), "{d}");
    }
    // A range with nothing in it is 204.
    let a = tpp
        .call(
            "GET",
            &format!("{txs}?dateFrom=2025-06-14&dateTo=2025-06-14"),
            &token,
            None,
        )
        .await;
    assert_eq!(a.status, 204);
    // Without PSU-IP-Address: 4 calls a day per account and endpoint.
    for i in 1..=5 {
        let a = tpp
            .call_with("GET", "/accounts/ACC0002/balances", &token, &[], None)
            .await;
        assert_eq!(a.status, if i <= 4 { 200 } else { 429 }, "call {i}");
    }
    // Another account still has its 4.
    let a = tpp
        .call_with("GET", "/accounts/ACC0003/balances", &token, &[], None)
        .await;
    assert_eq!(a.status, 200);
    // Balances are consistent: XPCD - CLBD = pending sum.
    let b = tpp
        .call("GET", "/accounts/ACC0001/balances", &token, None)
        .await
        .json();
    assert_eq!(b["balances"][0]["balanceType"], "CLBD");
    // Scope enforcement.
    let pisp = tpp.client_credentials("pisp").await;
    let a = tpp.call("GET", "/accounts", &pisp, None).await;
    assert_eq!(a.status, 403);
    let a = tpp.call("GET", "/accounts", "not-a-token", None).await;
    assert_eq!(a.status, 401);
    assert!(a.headers.contains_key("www-authenticate"));
    bank.shutdown().await;
}

async fn read(tpp: &Tpp, cc: &str, id: &str) -> String {
    tpp.call("GET", &format!("/payment-requests/{id}"), cc, None)
        .await
        .json()["paymentRequest"]["paymentInformationStatus"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn payment_flow_rjct_rule_cancellation_and_counter() {
    let (bank, tpp) = start(SandboxConfig::default()).await;
    let cc = tpp.client_credentials("pisp").await;
    let a = tpp
        .call(
            "POST",
            "/payment-requests",
            &cc,
            Some(&payment_body("123.45")),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.reason());
    let location = a.headers["location"].to_str().unwrap().to_owned();
    let approval = a.json()["_links"]["consentApproval"]["href"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(approval.starts_with(&bank.info().authorize_url));
    let id = location.rsplit('/').next().unwrap().to_owned();
    assert_eq!(bank.payment_requests_created(), 1);

    // Confirming before the PSU approved is refused.
    let a = tpp
        .call(
            "POST",
            &format!("/payment-requests/{id}/confirmation"),
            &cc,
            Some(&json!({})),
        )
        .await;
    assert_eq!(a.status, 403, "{}", a.reason());

    let t = tpp.code_flow("pisp", Some(&approval)).await;
    let psu_token = t["access_token"].as_str().unwrap();
    let a = tpp
        .call(
            "POST",
            &format!("/payment-requests/{id}/confirmation"),
            psu_token,
            Some(&json!({})),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.reason());
    assert_eq!(
        a.json()["paymentRequest"]["paymentInformationStatus"],
        "ACTC"
    );
    assert_eq!(read(&tpp, &cc, &id).await, "ACTC");
    assert_eq!(read(&tpp, &cc, &id).await, "ACSC");
    let a = tpp
        .call(
            "GET",
            &format!("/payment-requests/{id}/transactions"),
            &cc,
            None,
        )
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.json()["creditTransferTransaction"][0]["transactionStatus"],
        "ACSC"
    );

    // The RJCT rule: above 5000.00.
    let a = tpp
        .call(
            "POST",
            "/payment-requests",
            &cc,
            Some(&payment_body("5000.01")),
        )
        .await;
    let approval = a.json()["_links"]["consentApproval"]["href"]
        .as_str()
        .unwrap()
        .to_owned();
    let id2 = a.headers["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    tpp.code_flow("pisp", Some(&approval)).await;
    // Once approved, a client-credentials token may confirm.
    let a = tpp
        .call(
            "POST",
            &format!("/payment-requests/{id2}/confirmation"),
            &cc,
            Some(&json!({})),
        )
        .await;
    assert_eq!(
        a.json()["paymentRequest"]["paymentInformationStatus"],
        "RJCT"
    );
    assert_eq!(
        a.json()["paymentRequest"]["statusReasonInformation"],
        "AG01"
    );

    // Cancellation.
    let a = tpp
        .call(
            "POST",
            "/payment-requests",
            &cc,
            Some(&payment_body("20.00")),
        )
        .await;
    let id3 = a.headers["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let mut cancel = payment_body("20.00");
    cancel["paymentInformationStatus"] = json!("CANC");
    cancel["statusReasonInformation"] = json!("DS02");
    let a = tpp
        .call(
            "PUT",
            &format!("/payment-requests/{id3}"),
            &cc,
            Some(&cancel),
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.reason());
    let status = tpp
        .call("GET", &format!("/payment-requests/{id3}"), &cc, None)
        .await
        .json();
    assert_eq!(status["paymentRequest"]["paymentInformationStatus"], "CANC");
    let a = tpp
        .call(
            "PUT",
            &format!("/payment-requests/{id}"),
            &cc,
            Some(&cancel),
        )
        .await;
    assert_eq!(a.status, 409);
    assert_eq!(bank.payment_requests_created(), 3);
    bank.shutdown().await;
}

#[tokio::test]
async fn huge_and_broken_bodies_are_refused_cleanly() {
    let (bank, tpp) = start(SandboxConfig::default()).await;
    let cc = tpp.client_credentials("pisp").await;
    let big = vec![b'x'; 2 * 1024 * 1024];
    let req = tpp.signed(
        "POST",
        &format!("{}/payment-requests", bank.info().api_base),
        Some(&cc),
        &[],
        &big,
    );
    let a = tpp.send(&req).await;
    assert_eq!(a.status, 413);
    assert_eq!(a.json()["status"], 413);
    let req = tpp.signed(
        "POST",
        &format!("{}/payment-requests", bank.info().api_base),
        Some(&cc),
        &[],
        b"{\"amount\": 1e999999",
    );
    let a = tpp.send(&req).await;
    assert_eq!(a.status, 400);
    assert!(a.reason().contains("not a valid PaymentRequestResource"));
    bank.shutdown().await;
}

#[tokio::test]
async fn funds_consents_identity_beneficiaries_owners_overdrafts() {
    let (bank, tpp) = start(SandboxConfig::default()).await;
    let token = tpp.aisp_token().await;
    let accounts = tpp.call("GET", "/accounts", &token, None).await.json();
    let iban = accounts["accounts"][0]["accountId"]["iban"]
        .as_str()
        .unwrap()
        .to_owned();
    let cbpii = tpp.client_credentials("cbpii").await;
    let check = |amount: &'static str| {
        let (tpp, cbpii, iban) = (&tpp, cbpii.clone(), iban.clone());
        async move {
            let body = json!({"paymentCoverageRequestId": "MyCoverage", "payee": "Shop",
                              "instructedAmount": {"currency": "EUR", "amount": amount},
                              "accountId": {"iban": iban}});
            tpp.call("POST", "/funds-confirmations", &cbpii, Some(&body))
                .await
        }
    };
    let a = check("1.00").await;
    assert_eq!(a.status, 200, "{}", a.reason());
    assert_eq!(a.json()["result"], true);
    assert_eq!(check("99999999.00").await.json()["result"], false);
    let consent = json!({"balances": [{"iban": iban}], "transactions": [{"iban": iban}],
                         "trustedBeneficiaries": true, "psuIdentity": true});
    assert_eq!(
        tpp.call("PUT", "/consents", &token, Some(&consent))
            .await
            .status,
        201
    );
    let bad = json!({"balances": [{"iban": "FR7612345000010000000000000"}], "trustedBeneficiaries": false, "psuIdentity": false});
    assert_eq!(
        tpp.call("PUT", "/consents", &token, Some(&bad))
            .await
            .status,
        400
    );
    for path in [
        "/end-user-identity",
        "/trusted-beneficiaries",
        "/accounts/ACC0001/owners",
        "/accounts/ACC0001/overdrafts",
    ] {
        let a = tpp.call("GET", path, &token, None).await;
        assert_eq!(a.status, 200, "{path}: {}", a.reason());
    }
    assert_eq!(
        tpp.call("GET", "/accounts/NOPE/balances", &token, None)
            .await
            .status,
        404
    );
    bank.shutdown().await;
}

#[tokio::test]
async fn the_same_seed_gives_the_same_bytes() {
    let mut bodies = Vec::new();
    for _ in 0..2 {
        let (bank, tpp) = start(SandboxConfig {
            seed: 99,
            link_style: LinkStyle::Path,
            ..SandboxConfig::default()
        })
        .await;
        let token = tpp
            .code_flow("aisp extended_transaction_history", None)
            .await["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let a = tpp
            .call("GET", "/accounts/ACC0002/transactions?page=2", &token, None)
            .await;
        assert_eq!(a.status, 200, "{}", a.reason());
        bodies.push(a.body);
        bank.shutdown().await;
    }
    assert_eq!(bodies[0], bodies[1]);
}

#[tokio::test]
async fn dialect_1_4() {
    let (bank, tpp) = start(SandboxConfig {
        dialect: Dialect::V1_4,
        ..SandboxConfig::default()
    })
    .await;
    assert!(bank.info().api_base.ends_with("/v1.4"));
    let token = tpp.aisp_token().await;
    let a = tpp
        .call("GET", "/accounts/ACC0001/transactions", &token, None)
        .await;
    let t = &a.json()["transactions"][0];
    assert!(t["transactionAmount"]["amount"].is_string(), "{t}");
    assert!(t["remittanceInformation"].is_array(), "{t}");
    let booked = a.json()["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["status"] == "BOOK")
        .cloned()
        .unwrap();
    assert_eq!(booked["bookingDate"].as_str().unwrap().len(), 10);
    assert_eq!(
        tpp.call("GET", "/accounts/ACC0001/owners", &token, None)
            .await
            .status,
        404
    );
    bank.shutdown().await;
}

/// STET 1.4.x banks confirm at `/o-confirmation`: in the 1.4 dialect the sandbox links to it
/// and accepts it; in 1.5 it is not a route.
#[tokio::test]
async fn dialect_1_4_confirms_at_o_confirmation() {
    for (dialect, step, expected) in [
        (Dialect::V1_4, "o-confirmation", 200),
        (Dialect::V1_5, "o-confirmation", 404),
    ] {
        let (bank, tpp) = start(SandboxConfig {
            dialect,
            ..SandboxConfig::default()
        })
        .await;
        let cc = tpp.client_credentials("pisp").await;
        let mut body = payment_body("10.00");
        if dialect == Dialect::V1_4 {
            // 1.4 sends amounts as strings.
            body["creditTransferTransaction"][0]["instructedAmount"]["amount"] = json!("10.00");
        }
        let created = tpp
            .call("POST", "/payment-requests", &cc, Some(&body))
            .await;
        assert_eq!(created.status, 201, "{}", created.reason());
        let approval = created.json()["_links"]["consentApproval"]["href"]
            .as_str()
            .unwrap()
            .to_owned();
        let id = created.headers["location"]
            .to_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned();
        let read = tpp
            .call("GET", &format!("/payment-requests/{id}"), &cc, None)
            .await;
        let link = read.json()["_links"]["confirmation"]["href"]
            .as_str()
            .unwrap()
            .to_owned();
        let expected_link = if dialect == Dialect::V1_4 {
            "/o-confirmation"
        } else {
            "/confirmation"
        };
        assert!(link.ends_with(expected_link), "{link}");
        let token = tpp.code_flow("pisp", Some(&approval)).await;
        let confirmed = tpp
            .call(
                "POST",
                &format!("/payment-requests/{id}/{step}"),
                token["access_token"].as_str().unwrap(),
                Some(&json!({})),
            )
            .await;
        assert_eq!(
            confirmed.status,
            expected,
            "{dialect:?}: {}",
            confirmed.reason()
        );
        bank.shutdown().await;
    }
}
