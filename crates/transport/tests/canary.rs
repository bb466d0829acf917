//! A full flow logged at trace level, every crate included: no token, code, secret, key or
//! signature may appear in the log.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use stet_transport::{Auth, Method, Secret, StetRequest, Transport};
use support::{Pki, Received, Reply, Server, json, pkce_challenge};

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn no_secret_reaches_the_log_at_trace_level() {
    let capture = Capture::default();
    let writer = capture.clone();
    // Global (this binary has one test) and with the `log` bridge, so that what rustls and
    // other `log` users write is captured too.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .try_init()
        .unwrap();

    let pki = Pki::new();
    let challenge = Arc::new(Mutex::new(String::new()));
    let c = challenge.clone();
    let signatures = Arc::new(Mutex::new(Vec::<String>::new()));
    let s = signatures.clone();
    let server = Server::start(&pki, true, move |req: &Received| {
        if let Some(sig) = req.header("signature") {
            s.lock().unwrap().push(sig.split("signature=\"").nth(1).unwrap_or_default().trim_end_matches('"').to_owned());
        }
        if req.target.starts_with("/oauth/token") {
            let body = match req.form_value("grant_type").as_deref() {
                Some("authorization_code") if pkce_challenge(&req.form_value("code_verifier").unwrap_or_default()) == *c.lock().unwrap() => {
                    serde_json::json!({"access_token": "canary-consent-token", "token_type": "bearer", "expires_in": 1, "refresh_token": "canary-refresh-token"})
                }
                Some("refresh_token") => serde_json::json!({"access_token": "canary-refreshed-token", "token_type": "Bearer", "expires_in": 3600}),
                Some("client_credentials") => serde_json::json!({"access_token": "canary-cc-token", "token_type": "Bearer", "expires_in": 3600}),
                _ => return json(400, serde_json::json!({"error": "invalid_grant"})),
            };
            return json(200, body);
        }
        if req.target.contains("payment-requests") {
            return Reply::Respond(503, vec![], b"{}".to_vec());
        }
        json(200, serde_json::json!({"accounts": []}))
    })
    .await;

    let profile = pki.profile(
        server.port,
        "client_secret = \"canary-client-secret\"\nclient_auth = \"client_secret_post\"",
    );
    let transport = Transport::builder(&profile).build().unwrap();
    let oauth = transport.oauth().unwrap();
    let auth = oauth.authorize(&["aisp".into()], None, &[]).unwrap();
    let q: std::collections::HashMap<_, _> = auth.url.query_pairs().into_owned().collect();
    *challenge.lock().unwrap() = q["code_challenge"].clone();
    let redirect = oauth
        .read_redirect(
            &format!(
                "http://127.0.0.1:8765/callback?code=canary-auth-code&state={}",
                auth.state.expose()
            ),
            &auth.state,
        )
        .unwrap();
    let token = oauth
        .exchange_code(&redirect.code, &auth.pkce_verifier, &["aisp".into()])
        .await
        .unwrap();
    transport.store_token("aisp", token).await.unwrap();
    // Expired (expires_in 1, margin 60 s): refreshed on use.
    transport
        .send(&StetRequest::get("accounts", Auth::Consent("aisp".into())))
        .await
        .unwrap();
    transport
        .send(&StetRequest::with_body(
            Method::POST,
            "payment-requests",
            b"{}".to_vec(),
            Auth::ClientCredentials(vec!["pisp".into()]),
        ))
        .await
        .unwrap();
    let fixed = Transport::builder(&profile)
        .access_token(Some(Secret::new("canary-fixed-token")))
        .build()
        .unwrap();
    fixed
        .send(&StetRequest::get("accounts", Auth::Consent("aisp".into())))
        .await
        .unwrap();

    let log = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("stet request"), "the capture works: {log}");
    assert!(log.contains("TRACE"), "trace level was on");
    assert!(
        log.contains("rustls"),
        "records of `log` users (rustls) are captured too"
    );
    let key = std::fs::read_to_string(pki.path("qseal.key")).unwrap();
    let key_line = key.lines().nth(3).unwrap().to_owned();
    let qwac_key = std::fs::read_to_string(pki.path("qwac.key")).unwrap();
    let qwac_line = qwac_key.lines().nth(1).unwrap().to_owned();
    let mut canaries = vec![
        "canary-consent-token".to_owned(),
        "canary-refresh-token".to_owned(),
        "canary-refreshed-token".to_owned(),
        "canary-cc-token".to_owned(),
        "canary-client-secret".to_owned(),
        "canary-auth-code".to_owned(),
        "canary-fixed-token".to_owned(),
        auth.pkce_verifier.expose().to_owned(),
        key_line,
        qwac_line,
    ];
    let sigs = signatures.lock().unwrap().clone();
    assert!(sigs.len() >= 3);
    canaries.extend(sigs.into_iter().map(|s| s[..40].to_owned()));
    for canary in canaries {
        assert!(!log.contains(&canary), "`{canary}` leaked into the log");
    }
}
