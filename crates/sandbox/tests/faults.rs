//! Each fault of `--faults`, over real sockets.

mod common;

use std::time::{Duration, Instant};

use common::Tpp;
use stet_sandbox::{RunningSandbox, Sandbox, SandboxConfig};

async fn start(faults: &str) -> (RunningSandbox, Tpp) {
    let bank = Sandbox::start(SandboxConfig {
        faults: faults.parse().unwrap(),
        ..SandboxConfig::default()
    })
    .await
    .unwrap();
    let tpp = Tpp::new(bank.info());
    (bank, tpp)
}

#[tokio::test]
async fn counted_faults_429_503_slow_and_drop() {
    let (bank, tpp) =
        start("429:every=3:retry-after=2,503:every=5:burst=2,slow:every=4:ms=300,drop:every=8")
            .await;
    let token = tpp.aisp_token().await;
    let url = format!("{}/accounts", bank.info().api_base);
    let mut seen = Vec::new();
    for n in 1..=8 {
        let req = tpp.signed(
            "GET",
            &url,
            Some(&token),
            &[("PSU-IP-Address", "192.0.2.1")],
            b"",
        );
        let started = Instant::now();
        match tpp.try_send(&req).await {
            Ok(a) => {
                if a.status == 429 {
                    assert_eq!(a.headers["retry-after"], "2", "request {n}");
                }
                if n == 4 {
                    assert!(
                        started.elapsed() >= Duration::from_millis(300),
                        "request 4 was not slow"
                    );
                }
                seen.push(a.status.to_string());
            }
            Err(e) => seen.push(format!("dropped: {e}").chars().take(7).collect()),
        }
    }
    assert_eq!(
        seen,
        ["200", "200", "429", "200", "503", "429", "200", "dropped"]
    );
    bank.shutdown().await;
}

#[tokio::test]
async fn tokens_expire_mid_flow() {
    let (bank, tpp) = start("expire-token:after=2").await;
    let token = tpp.aisp_token().await;
    for expected in [200, 200, 401] {
        let a = tpp.call("GET", "/accounts", &token, None).await;
        assert_eq!(a.status, expected);
        if expected == 401 {
            assert!(a.reason().contains("expired"), "{}", a.reason());
        }
    }
    bank.shutdown().await;
}

#[tokio::test]
async fn consent_revoked_after_n_calls() {
    let (bank, tpp) = start("revoke:after=2").await;
    let t = tpp.code_flow("aisp", None).await;
    let token = t["access_token"].as_str().unwrap();
    for expected in [200, 200, 403] {
        let a = tpp.call("GET", "/accounts", token, None).await;
        assert_eq!(a.status, expected);
    }
    assert!(
        tpp.call("GET", "/accounts", token, None)
            .await
            .reason()
            .contains("revoked")
    );
    let a = tpp
        .token_form(&[
            ("grant_type", "refresh_token"),
            ("client_id", &bank.info().client_id),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
        ])
        .await;
    assert_eq!(a.json()["error"], "invalid_grant");
    // A new consent works again.
    let fresh = tpp.aisp_token().await;
    assert_eq!(tpp.call("GET", "/accounts", &fresh, None).await.status, 200);
    bank.shutdown().await;
}
