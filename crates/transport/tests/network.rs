//! stet-transport over real sockets: mTLS, OAuth2 grants, signing, retries and the rules that
//! keep money and credentials safe.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use stet_httpsig::{PublicKey, VerifyPolicy, verify_request};
use stet_transport::{
    Auth, ClientAuth, FileTokenStore, MemoryTokenStore, Method, RedirectError, RetryPolicy, Secret,
    StetRequest, Token, TokenStore as _, Transport, TransportError, unix,
};
use support::{Pki, Received, Reply, Server, json, pkce_challenge, token_json};

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(50),
        max_total_wait: Duration::from_secs(5),
    }
}

fn accounts_ok() -> Reply {
    json(
        200,
        serde_json::json!({"accounts": [], "_links": {"self": {"href": "/stet/psd2/v1.5/accounts"}}}),
    )
}

/// A bank: a token endpoint (client credentials, refresh) and an API that answers 200.
fn bank(req: &Received) -> Reply {
    if req.target.starts_with("/oauth/token") {
        return match req.form_value("grant_type").as_deref() {
            Some("client_credentials") => token_json("cc-token", 3600, None),
            Some("refresh_token") => token_json("refreshed-token", 3600, Some("refresh-2")),
            _ => json(400, serde_json::json!({"error": "unsupported_grant_type"})),
        };
    }
    accounts_ok()
}

fn consent_token(access: &str, expires_in: i64, refresh: Option<&str>) -> Token {
    let now = unix(SystemTime::now()) as i64;
    Token {
        access_token: Secret::new(access),
        token_type: "Bearer".into(),
        expires_at: Some((now + expires_in) as u64),
        refresh_token: refresh.map(Secret::new),
        scopes: vec!["aisp".into()],
        obtained_at: now as u64,
        authenticated_at: Some(now as u64),
    }
}

#[tokio::test]
async fn mtls_handshake_needs_the_qwac() {
    let pki = Pki::new();
    let server = Server::start(&pki, true, bank).await;
    let transport = Transport::builder(&pki.profile(server.port, ""))
        .build()
        .unwrap();
    let response = transport
        .send(&StetRequest::get(
            "accounts",
            Auth::ClientCredentials(vec!["aisp".into()]),
        ))
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert!(server.received().iter().all(|r| r.client_cert));

    // The same CA trusted, but no client certificate: the server refuses the handshake.
    let bare = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap()])
        .build()
        .unwrap();
    let before = server.received().len();
    let err = bare
        .get(format!(
            "https://127.0.0.1:{}/stet/psd2/v1.5/accounts",
            server.port
        ))
        .send()
        .await
        .unwrap_err();
    assert!(
        format!("{err:?}").to_lowercase().contains("certificate"),
        "{err:?}"
    );
    assert_eq!(
        server.received().len(),
        before,
        "nothing got through without a QWAC"
    );
}

#[tokio::test]
async fn an_untrusted_bank_certificate_is_named_with_a_hint() {
    let pki = Pki::new();
    let server = Server::start(&pki, true, bank).await;
    let mut profile = pki.profile(server.port, "");
    profile.ca_bundle = None;
    let transport = Transport::builder(&profile).build().unwrap();
    let err = transport
        .send(&StetRequest::get("accounts", Auth::None))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::UntrustedServer { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("ca_bundle"), "{err}");
}

#[tokio::test]
async fn requests_are_signed_as_sent() {
    let pki = Pki::new();
    let server = Server::start(&pki, true, bank).await;
    let transport = Transport::builder(&pki.profile(server.port, ""))
        .build()
        .unwrap();
    let psu = stet_transport::PsuContext::present("192.0.2.10");
    let body = br#"{"paymentInformationId":"p1"}"#.to_vec();
    transport
        .send(
            &StetRequest::with_body(
                Method::POST,
                "payment-requests?x=a%20b",
                body.clone(),
                Auth::ClientCredentials(vec!["pisp".into()]),
            )
            .psu(Some(psu)),
        )
        .await
        .unwrap();
    let req = server
        .received()
        .into_iter()
        .find(|r| r.target.contains("payment-requests"))
        .unwrap();
    assert_eq!(req.target, "/stet/psd2/v1.5/payment-requests?x=a%20b");
    assert_eq!(
        req.header("host"),
        Some(format!("127.0.0.1:{}", server.port).as_str())
    );
    assert_eq!(req.header("authorization"), Some("Bearer cc-token"));
    assert_eq!(req.header("content-type"), Some("application/json"));
    assert_eq!(req.header("psu-ip-address"), Some("192.0.2.10"));
    assert!(uuid_like(req.header("x-request-id").unwrap()));
    assert!(httpdate::parse_http_date(req.header("date").unwrap()).is_ok());
    assert_eq!(req.body, body);
    let verified = verified(&pki, &req);
    assert_eq!(verified.key_id, "qseal-1");
    assert_eq!(
        verified.headers,
        [
            "(request-target)",
            "date",
            "x-request-id",
            "digest",
            "psu-ip-address"
        ]
    );
}

#[tokio::test]
async fn an_empty_access_token_is_no_token() {
    // STET_ACCESS_TOKEN set but empty (or blank) means unset: OAuth is used, and no empty
    // Bearer token ever goes out.
    let pki = Pki::new();
    let server = Server::start(&pki, true, bank).await;
    for empty in ["", "  "] {
        let transport = Transport::builder(&pki.profile(server.port, ""))
            .access_token(Some(Secret::new(empty)))
            .build()
            .unwrap();
        transport
            .send(&StetRequest::get(
                "accounts",
                Auth::ClientCredentials(vec!["aisp".into()]),
            ))
            .await
            .unwrap();
    }
    let api: Vec<_> = server
        .received()
        .into_iter()
        .filter(|r| r.target.contains("accounts"))
        .collect();
    assert_eq!(api.len(), 2);
    assert!(
        api.iter()
            .all(|r| r.header("authorization") == Some("Bearer cc-token")),
        "the token from the token endpoint"
    );
    assert_eq!(server.count("/oauth/token"), 2);
}

/// One `Host` on the wire, written by the HTTP client, equal to the one signed.
#[tokio::test]
async fn the_host_goes_out_once() {
    let pki = Pki::new();
    let server = Server::start(&pki, true, bank).await;
    let mut profile = pki.profile(server.port, "");
    profile.signed_headers = Some(vec![
        "(request-target)".into(),
        "host".into(),
        "date".into(),
        "x-request-id".into(),
    ]);
    let transport = Transport::builder(&profile).build().unwrap();
    transport
        .send(&StetRequest::get(
            "accounts",
            Auth::ClientCredentials(vec!["aisp".into()]),
        ))
        .await
        .unwrap();
    let req = server
        .received()
        .into_iter()
        .find(|r| r.target.contains("accounts"))
        .unwrap();
    let hosts: Vec<_> = req
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("host"))
        .collect();
    assert_eq!(hosts.len(), 1, "{:?}", req.headers);
    assert_eq!(hosts[0].1, format!("127.0.0.1:{}", server.port));
    assert_eq!(
        verified(&pki, &req).headers,
        ["(request-target)", "host", "date", "x-request-id"]
    );
}

/// The signature of `req`, as the server received it, checked with the QSealC's public key.
fn verified(pki: &Pki, req: &Received) -> stet_httpsig::Verified {
    let public = PublicKey::from_bytes(&std::fs::read(pki.path("qseal.pub.pem")).unwrap()).unwrap();
    verify_request(
        &req.to_signed(),
        &VerifyPolicy::stet(),
        &public,
        SystemTime::now(),
    )
    .unwrap()
}

fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().filter(|c| *c == '-').count() == 4
}

#[tokio::test]
async fn client_credentials_with_each_client_authentication() {
    let pki = Pki::new();
    let server = Server::start(&pki, true, |req: &Received| {
        if req.target.starts_with("/oauth/token") {
            return token_json("cc-token", 3600, None);
        }
        accounts_ok()
    })
    .await;
    let cases = [
        ("", ClientAuth::TlsClientAuth),
        (
            "client_secret = \"s3cret\"\nclient_auth = \"client_secret_basic\"",
            ClientAuth::ClientSecretBasic,
        ),
        (
            "client_secret = \"s3cret\"\nclient_auth = \"client_secret_post\"",
            ClientAuth::ClientSecretPost,
        ),
    ];
    for (extra, auth) in cases {
        let profile = pki.profile(server.port, extra);
        assert_eq!(profile.client_auth, auth);
        let transport = Transport::builder(&profile).build().unwrap();
        let before = server.count("/oauth/token");
        for _ in 0..2 {
            transport
                .send(&StetRequest::get(
                    "accounts",
                    Auth::ClientCredentials(vec!["cbpii".into()]),
                ))
                .await
                .unwrap();
        }
        assert_eq!(
            server.count("/oauth/token"),
            before + 1,
            "{auth:?}: the token is reused"
        );
        let token_call = server
            .received()
            .into_iter()
            .rfind(|r| r.target.starts_with("/oauth/token"))
            .unwrap();
        assert_eq!(
            token_call.form_value("grant_type").as_deref(),
            Some("client_credentials")
        );
        assert_eq!(token_call.form_value("scope").as_deref(), Some("cbpii"));
        let basic = token_call.header("authorization").map(str::to_owned);
        match auth {
            ClientAuth::TlsClientAuth => {
                assert_eq!(
                    token_call.form_value("client_id").as_deref(),
                    Some("PSDFR-ACPR-12345")
                );
                assert_eq!(token_call.form_value("client_secret"), None);
                assert_eq!(basic, None);
            }
            ClientAuth::ClientSecretBasic => {
                assert!(basic.unwrap().starts_with("Basic "));
                assert_eq!(token_call.form_value("client_secret"), None);
            }
            ClientAuth::ClientSecretPost => {
                assert_eq!(
                    token_call.form_value("client_secret").as_deref(),
                    Some("s3cret")
                );
                assert_eq!(basic, None);
            }
        }
    }
}

#[tokio::test]
async fn authorization_code_with_pkce_and_a_checked_state() {
    let pki = Pki::new();
    let challenge = Arc::new(std::sync::Mutex::new(String::new()));
    let c = challenge.clone();
    let server = Server::start(&pki, true, move |req: &Received| {
        if req.target.starts_with("/oauth/token") {
            let verifier = req.form_value("code_verifier").unwrap_or_default();
            let ok = req.form_value("code").as_deref() == Some("the-code")
                && pkce_challenge(&verifier) == *c.lock().unwrap()
                && req.form_value("redirect_uri").as_deref() == Some("http://127.0.0.1:8765/callback");
            return if ok {
                token_json("consent-token", 3600, Some("refresh-1"))
            } else {
                json(400, serde_json::json!({"error": "invalid_grant", "error_description": "PKCE check failed"}))
            };
        }
        accounts_ok()
    })
    .await;
    let transport = Transport::builder(&pki.profile(server.port, ""))
        .build()
        .unwrap();
    let oauth = transport.oauth().unwrap();
    let auth = oauth
        .authorize(
            &["aisp".into(), "extended_transaction_history".into()],
            None,
            &[],
        )
        .unwrap();
    let query: std::collections::HashMap<_, _> = auth.url.query_pairs().into_owned().collect();
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["scope"], "aisp extended_transaction_history");
    assert_eq!(query["state"], auth.state.expose());
    assert_eq!(
        pkce_challenge(auth.pkce_verifier.expose()),
        query["code_challenge"]
    );
    *challenge.lock().unwrap() = query["code_challenge"].clone();

    // The redirect is checked before the code is used.
    let forged = "http://127.0.0.1:8765/callback?code=the-code&state=forged";
    assert_eq!(
        oauth.read_redirect(forged, &auth.state).unwrap_err(),
        RedirectError::StateMismatch
    );
    let denied = format!(
        "http://127.0.0.1:8765/callback?error=access_denied&error_description=PSU+said+no&state={}",
        auth.state.expose()
    );
    assert!(matches!(
        oauth.read_redirect(&denied, &auth.state),
        Err(RedirectError::Denied { .. })
    ));
    let good = format!(
        "http://127.0.0.1:8765/callback?code=the-code&state={}",
        auth.state.expose()
    );
    let redirect = oauth.read_redirect(&good, &auth.state).unwrap();

    let wrong = oauth
        .exchange_code(
            &redirect.code,
            &Secret::new("another-verifier-another-verifier-another-verifier"),
            &["aisp".into()],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&wrong, TransportError::OAuth { error, description } if error == "invalid_grant" && description.as_deref() == Some("PKCE check failed")),
        "{wrong}"
    );

    let token = oauth
        .exchange_code(&redirect.code, &auth.pkce_verifier, &["aisp".into()])
        .await
        .unwrap();
    assert_eq!(token.access_token.expose(), "consent-token");
    assert_eq!(token.token_type, "Bearer", "`bearer` is normalized");
    assert!(token.authenticated_at.is_some());
    transport.store_token("aisp", token).await.unwrap();
    transport
        .send(&StetRequest::get("accounts", Auth::Consent("aisp".into())))
        .await
        .unwrap();
    let last = server.received().pop().unwrap();
    assert_eq!(last.header("authorization"), Some("Bearer consent-token"));
}

#[tokio::test]
async fn refresh_before_expiry_and_once_after_invalid_token() {
    let pki = Pki::new();
    let rejected = Arc::new(AtomicUsize::new(0));
    let r = rejected.clone();
    let server = Server::start(&pki, true, move |req: &Received| {
        if req.target.starts_with("/oauth/token") {
            return bank(req);
        }
        // The first request with the refreshed token is refused once as expired.
        if req.header("authorization") == Some("Bearer refreshed-token")
            && r.fetch_add(1, Ordering::SeqCst) == 0
        {
            return Reply::Respond(
                401,
                vec![("WWW-Authenticate", "Bearer error=\"invalid_token\"".into())],
                b"{}".to_vec(),
            );
        }
        if req.header("authorization") == Some("Bearer always-refused") {
            return Reply::Respond(
                401,
                vec![("WWW-Authenticate", "Bearer error=\"invalid_token\"".into())],
                b"{}".to_vec(),
            );
        }
        accounts_ok()
    })
    .await;
    let store = Arc::new(MemoryTokenStore::default());
    let mut set = stet_transport::TokenSet::default();
    set.tokens.insert(
        "aisp".into(),
        consent_token("old-token", 10, Some("refresh-1")),
    );
    store.save("test", &set).unwrap();
    let transport = Transport::builder(&pki.profile(server.port, ""))
        .token_store(store.clone())
        .build()
        .unwrap();

    let response = transport
        .send(&StetRequest::get("accounts", Auth::Consent("aisp".into())))
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    let refreshes: Vec<_> = server
        .received()
        .into_iter()
        .filter(|r| r.form_value("grant_type").as_deref() == Some("refresh_token"))
        .collect();
    assert_eq!(refreshes.len(), 2, "once before expiry, once after the 401");
    assert_eq!(
        refreshes[0].form_value("refresh_token").as_deref(),
        Some("refresh-1")
    );
    assert_eq!(
        refreshes[1].form_value("refresh_token").as_deref(),
        Some("refresh-2")
    );
    let saved = store.load("test").unwrap().tokens["aisp"].clone();
    assert_eq!(saved.access_token.expose(), "refreshed-token");
    assert_eq!(
        saved.authenticated_at,
        consent_token("x", 0, None)
            .authenticated_at
            .map(|_| saved.authenticated_at.unwrap())
    );

    // A token refused again after the refresh is not retried forever.
    let fixed = Transport::builder(&pki.profile(server.port, ""))
        .access_token(Some(Secret::new("always-refused")))
        .build()
        .unwrap();
    let before = server.received().len();
    let response = fixed
        .send(&StetRequest::get("accounts", Auth::Consent("aisp".into())))
        .await
        .unwrap();
    assert_eq!(response.status, 401);
    assert_eq!(
        server.received().len(),
        before + 1,
        "a fixed token is never refreshed"
    );
}

/// Two runs of stet at once (a cron job and a person) over one token file, against a bank
/// that rotates refresh tokens and refuses a retired one: one refresh, both runs served, and
/// neither run's save undoes the other's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_at_the_same_time_refresh_once_and_lose_no_token() {
    let pki = Pki::new();
    let valid = Arc::new(std::sync::Mutex::new(1u32));
    let v = valid.clone();
    let server = Server::start(&pki, true, move |req: &Received| {
        if req.target.starts_with("/oauth/token") {
            let mut current = v.lock().unwrap();
            let offered = req.form_value("refresh_token").unwrap_or_default();
            if offered != format!("refresh-{current}") {
                return json(400, serde_json::json!({"error": "invalid_grant"}));
            }
            *current += 1;
            let access = format!("access-{current}");
            let refresh = format!("refresh-{current}");
            // Slow enough that the other run asks while this one waits for its answer.
            return Reply::Delay(
                Duration::from_millis(300),
                Box::new(token_json(&access, 3600, Some(&refresh))),
            );
        }
        accounts_ok()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let file_store = || Arc::new(FileTokenStore::new(dir.path().join("tokens")));
    let mut set = stet_transport::TokenSet::default();
    set.tokens.insert(
        "aisp".into(),
        consent_token("expired", -10, Some("refresh-1")),
    );
    file_store().save("test", &set).unwrap();
    let run = || {
        Transport::builder(&pki.profile(server.port, ""))
            .token_store(file_store())
            .build()
            .unwrap()
    };
    let (cron, person) = (run(), run());
    // Both runs have read the file (the expired token) before either refreshes.
    assert!(cron.tokens().await.unwrap().tokens.contains_key("aisp"));
    assert!(person.tokens().await.unwrap().tokens.contains_key("aisp"));

    let get = StetRequest::get("accounts", Auth::Consent("aisp".into()));
    let (a, b) = tokio::join!(cron.send(&get), person.send(&get));
    assert_eq!(a.unwrap().status, 200);
    assert_eq!(b.unwrap().status, 200);
    let refreshes = server.count("/oauth/token");
    assert_eq!(refreshes, 1, "the second run used the first one's refresh");
    let saved = file_store().load("test").unwrap().tokens["aisp"].clone();
    assert_eq!(saved.access_token.expose(), "access-2");

    // A run whose copy predates the refresh stores a payment approval: the refreshed consent
    // stays as the other run saved it.
    let stale = run();
    stale.tokens().await.unwrap();
    let mut renewed = file_store().load("test").unwrap();
    renewed.tokens.insert(
        "aisp".into(),
        consent_token("access-3", 3600, Some("refresh-3")),
    );
    file_store().save("test", &renewed).unwrap();
    stale
        .store_token("pisp p1", consent_token("approval", 600, None))
        .await
        .unwrap();
    let kept = file_store().load("test").unwrap();
    assert_eq!(kept.tokens["aisp"].access_token.expose(), "access-3");
    assert!(kept.tokens.contains_key("pisp p1"));
}

#[tokio::test]
async fn no_consent_token_says_to_log_in() {
    let pki = Pki::new();
    let server = Server::start(&pki, true, bank).await;
    let transport = Transport::builder(&pki.profile(server.port, ""))
        .build()
        .unwrap();
    let err = transport
        .send(&StetRequest::get("accounts", Auth::Consent("aisp".into())))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("stet auth login --profile test"),
        "{err}"
    );
    assert!(server.received().is_empty());
}

#[tokio::test]
async fn oauth_errors_and_redirects_on_the_token_endpoint() {
    let pki = Pki::new();
    let server = Server::start(&pki, true, |req: &Received| match req.target.as_str() {
        t if t.starts_with("/oauth/token") && req.form_value("scope").as_deref() == Some("pisp") => {
            json(401, serde_json::json!({"error": "invalid_client", "error_description": "unknown client PSDFR-ACPR-12345"}))
        }
        t if t.starts_with("/oauth/token") => Reply::Respond(302, vec![("Location", "https://127.0.0.1:1/steal?secret=x".into())], Vec::new()),
        _ => accounts_ok(),
    })
    .await;
    let transport = Transport::builder(&pki.profile(server.port, ""))
        .build()
        .unwrap();
    let err = transport
        .send(&StetRequest::get(
            "accounts",
            Auth::ClientCredentials(vec!["pisp".into()]),
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, TransportError::OAuth { error, .. } if error == "invalid_client"),
        "{err}"
    );
    assert!(
        err.to_string().contains("unknown client PSDFR-ACPR-12345"),
        "{err}"
    );

    let err = transport
        .send(&StetRequest::get(
            "accounts",
            Auth::ClientCredentials(vec!["cbpii".into()]),
        ))
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::TokenRedirect { .. }), "{err}");
    assert!(
        !err.to_string().contains("secret=x"),
        "the redirect's query is not echoed: {err}"
    );
    assert_eq!(server.count("/steal"), 0);
    assert_eq!(server.count("/accounts"), 0, "no API call without a token");
}

#[tokio::test]
async fn retries_429_and_503_honouring_retry_after_with_fresh_signatures() {
    let pki = Pki::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let server = Server::start(&pki, true, move |req: &Received| {
        if req.target.starts_with("/oauth") {
            return bank(req);
        }
        match c.fetch_add(1, Ordering::SeqCst) {
            0 => Reply::Respond(429, vec![("Retry-After", "1".into())], b"{}".to_vec()),
            1 => Reply::Respond(
                503,
                vec![("Retry-After", httpdate::fmt_http_date(SystemTime::now()))],
                b"{}".to_vec(),
            ),
            2 => Reply::Drop,
            _ => accounts_ok(),
        }
    })
    .await;
    let transport = Transport::builder(&pki.profile(server.port, ""))
        .retry(fast_retry())
        .build()
        .unwrap();
    let started = Instant::now();
    let response = transport
        .send(&StetRequest::get(
            "accounts",
            Auth::ClientCredentials(vec!["aisp".into()]),
        ))
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.attempts, 4);
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After: 1 was honoured"
    );
    let attempts: Vec<_> = server
        .received()
        .into_iter()
        .filter(|r| r.target.contains("accounts"))
        .collect();
    let ids: std::collections::HashSet<_> = attempts
        .iter()
        .map(|r| r.header("x-request-id").unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 4, "a fresh X-Request-ID on every attempt");
    let sigs: std::collections::HashSet<_> = attempts
        .iter()
        .map(|r| r.header("signature").unwrap().to_owned())
        .collect();
    assert_eq!(sigs.len(), 4, "and a fresh signature");

    // When the budget runs out, the rate limit is reported with the bank's Retry-After.
    let limited = Server::start(&pki, true, |req: &Received| {
        if req.target.starts_with("/oauth") {
            return bank(req);
        }
        Reply::Respond(429, vec![("Retry-After", "30".into())], b"{}".to_vec())
    })
    .await;
    let transport = Transport::builder(&pki.profile(limited.port, ""))
        .retry(fast_retry())
        .build()
        .unwrap();
    let response = transport
        .send(&StetRequest::get(
            "accounts",
            Auth::ClientCredentials(vec!["aisp".into()]),
        ))
        .await
        .unwrap();
    let err = response.error_for_status(&Method::GET).unwrap_err();
    assert!(
        matches!(err, TransportError::RateLimited { retry_after: Some(d) } if d == Duration::from_secs(30)),
        "{err}"
    );
    assert_eq!(
        limited.count("accounts"),
        1,
        "a 30 s wait exceeds the 5 s budget: not retried"
    );
}

#[tokio::test]
async fn a_payment_post_is_never_resent() {
    let pki = Pki::new();
    let server = Server::start(&pki, true, |req: &Received| {
        if req.target.starts_with("/oauth") {
            return bank(req);
        }
        if req.target.ends_with("/payment-requests") {
            return Reply::Drop;
        }
        if req.target.ends_with("/funds-confirmations") {
            return Reply::Respond(503, vec![("Retry-After", "0".into())], b"{}".to_vec());
        }
        if req.target.ends_with("/p2/confirmation") {
            return Reply::Respond(504, vec![], b"upstream timed out".to_vec());
        }
        Reply::Truncate(
            201,
            b"{\"appliedAuthenticationApproach\":\"REDIRECT\"}".to_vec(),
        )
    })
    .await;
    let transport = Transport::builder(&pki.profile(server.port, ""))
        .retry(fast_retry())
        .build()
        .unwrap();
    let pisp = || Auth::ClientCredentials(vec!["pisp".into()]);

    let err = transport
        .send(&StetRequest::with_body(
            Method::POST,
            "payment-requests",
            b"{}".to_vec(),
            pisp(),
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::OutcomeUnknown { .. }),
        "{err}"
    );
    // No id came back, so `stet pay status ID` cannot help: the bank can.
    assert!(
        err.to_string().contains("look for the payment at the bank"),
        "{err}"
    );
    assert_eq!(
        server.count("/payment-requests"),
        1,
        "sent once, never again"
    );

    let response = transport
        .send(&StetRequest::with_body(
            Method::POST,
            "funds-confirmations",
            b"{}".to_vec(),
            pisp(),
        ))
        .await
        .unwrap();
    assert_eq!(
        response.status, 503,
        "a POST's 503 is reported, not retried"
    );
    assert_eq!(server.count("/funds-confirmations"), 1);

    let err = transport
        .send(&StetRequest::with_body(
            Method::POST,
            "payment-requests/p1/confirmation",
            b"{}".to_vec(),
            pisp(),
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::OutcomeUnknown { .. }),
        "a body cut short is an unknown outcome too: {err}"
    );
    assert!(err.to_string().contains("`stet pay status p1`"), "{err}");
    assert_eq!(server.count("/p1/confirmation"), 1);

    // A gateway's 504 may come after the bank carried the POST out: unknown, not refused.
    let err = transport
        .send(&StetRequest::with_body(
            Method::POST,
            "payment-requests/p2/confirmation",
            b"{}".to_vec(),
            pisp(),
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(err, TransportError::OutcomeUnknown { .. }),
        "a gateway's 504 on a POST is an unknown outcome: {err}"
    );
    let text = err.to_string();
    assert!(text.contains("504 Gateway Timeout"), "{text}");
    assert!(text.contains("`stet pay status p2`"), "{text}");
    assert_eq!(server.count("/p2/confirmation"), 1, "not sent again");
}

#[tokio::test]
async fn links_to_another_host_get_no_credentials() {
    let pki = Pki::new();
    let server = Server::start(&pki, true, bank).await;
    let elsewhere = Server::start_on("127.0.0.2", &pki, false, bank).await;
    let transport = Transport::builder(&pki.profile(server.port, ""))
        .build()
        .unwrap();
    for target in [
        format!(
            "https://127.0.0.2:{}/stet/psd2/v1.5/accounts?page=2",
            elsewhere.port
        ),
        format!(
            "https://127.0.0.1:{}/stet/psd2/v1.5/accounts",
            elsewhere.port
        ),
        format!("http://127.0.0.1:{}/stet/psd2/v1.5/accounts", server.port),
        "//127.0.0.2/stet/psd2/v1.5/accounts".to_owned(),
    ] {
        let err = transport
            .send(&StetRequest::get(
                target.clone(),
                Auth::ClientCredentials(vec!["aisp".into()]),
            ))
            .await
            .unwrap_err();
        assert!(
            matches!(err, TransportError::ForeignHost { .. }),
            "{target}: {err}"
        );
    }
    assert!(elsewhere.received().is_empty());
    assert!(server.received().is_empty(), "not even a token was fetched");
    // Links on the bank's own host, in every form, are followed.
    for target in [
        format!(
            "https://127.0.0.1:{}/stet/psd2/v1.5/accounts?page=2",
            server.port
        ),
        "/stet/psd2/v1.5/accounts?page=3".to_owned(),
        "accounts?page=4".to_owned(),
    ] {
        assert_eq!(
            transport
                .send(&StetRequest::get(target, Auth::None))
                .await
                .unwrap()
                .status,
            200
        );
    }
}

#[tokio::test]
async fn a_slow_bank_times_out_and_big_bodies_are_refused() {
    let pki = Pki::new();
    let server = Server::start(&pki, true, |req: &Received| {
        if req.target.contains("slow") {
            return Reply::Delay(Duration::from_secs(5), Box::new(accounts_ok()));
        }
        Reply::Respond(200, vec![], vec![b'x'; 2 * 1024 * 1024])
    })
    .await;
    let mut profile = pki.profile(server.port, "");
    profile.timeout = Duration::from_secs(1);
    let transport = Transport::builder(&profile)
        .retry(RetryPolicy {
            max_attempts: 2,
            ..fast_retry()
        })
        .max_body(1024 * 1024)
        .build()
        .unwrap();
    let err = transport
        .send(&StetRequest::get("slow", Auth::None))
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::Timeout { .. }), "{err}");
    assert_eq!(
        server.count("slow"),
        2,
        "a GET that timed out is retried within its budget"
    );
    let err = transport
        .send(&StetRequest::get("big", Auth::None))
        .await
        .unwrap_err();
    assert!(matches!(err, TransportError::TooLarge { .. }), "{err}");
}
