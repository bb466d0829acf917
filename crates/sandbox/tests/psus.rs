//! Many PSUs, refresh-token rotation, revocation and the counters of `/sandbox/stats`, over
//! real HTTPS with the TPP's client certificate.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::Tpp;
use serde_json::Value;
use stet_sandbox::{RunningSandbox, Sandbox, SandboxConfig};

const PRESENT: [(&str, &str); 1] = [("PSU-IP-Address", "192.0.2.10")];

async fn start(config: SandboxConfig) -> (RunningSandbox, Tpp) {
    let bank = Sandbox::start(SandboxConfig {
        today: Some(time::macros::date!(2025 - 06 - 15)),
        ..config
    })
    .await
    .unwrap();
    let tpp = Tpp::new(bank.info());
    (bank, tpp)
}

/// The authorization URL that logs `psu` in.
fn as_psu(bank: &RunningSandbox, psu: &str) -> String {
    format!("{}?login_hint={psu}", bank.info().authorize_url)
}

/// The code flow for `scope`, logged in as `psu`: the token response.
async fn consent(bank: &RunningSandbox, tpp: &Tpp, psu: &str) -> Value {
    tpp.code_flow("aisp", Some(&as_psu(bank, psu))).await
}

fn access(t: &Value) -> String {
    t["access_token"].as_str().unwrap().to_owned()
}

async fn refresh(tpp: &Tpp, rt: &str) -> common::Answer {
    tpp.token_form(&[
        ("grant_type", "refresh_token"),
        ("client_id", &tpp.info.client_id),
        ("refresh_token", rt),
    ])
    .await
}

/// `(resourceId, iban)` of the accounts `token` sees.
async fn accounts(tpp: &Tpp, token: &str) -> Vec<(String, String)> {
    let a = tpp.call("GET", "/accounts", token, None).await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    a.json()["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["resourceId"].as_str().unwrap().to_owned(),
                a["accountId"]["iban"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn stats_over_http(bank: &RunningSandbox) -> Value {
    let origin = bank.info().authorize_url.trim_end_matches("/authorize");
    let r = common::http_client(bank.info(), false)
        .get(format!("{origin}/sandbox/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    serde_json::from_slice(&r.bytes().await.unwrap()).unwrap()
}

async fn revoke_over_http(bank: &RunningSandbox, body: &str) -> (u16, Value) {
    let origin = bank.info().authorize_url.trim_end_matches("/authorize");
    let r = common::http_client(bank.info(), false)
        .post(format!("{origin}/sandbox/revoke"))
        .header("Content-Type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (
        status,
        serde_json::from_slice(&r.bytes().await.unwrap()).unwrap(),
    )
}

#[tokio::test]
async fn login_hint_picks_the_psu_whose_accounts_the_tokens_see() {
    let (bank, tpp) = start(SandboxConfig {
        psus: 3,
        ..SandboxConfig::default()
    })
    .await;
    let first = accounts(&tpp, &tpp.aisp_token().await).await;
    let hinted_first = accounts(&tpp, &access(&consent(&bank, &tpp, "psu-1").await)).await;
    assert_eq!(first, hinted_first, "no hint is psu-1");
    assert_eq!(first[0].0, "ACC0001");

    let second_token = access(&consent(&bank, &tpp, "psu-2").await);
    let second = accounts(&tpp, &second_token).await;
    assert_eq!(second.len(), 3);
    let first_ibans: HashSet<&String> = first.iter().map(|(_, iban)| iban).collect();
    for (id, iban) in &second {
        assert!(id.starts_with("PSU2-"), "{id}");
        assert!(!first_ibans.contains(iban), "{iban} is psu-1's too");
        assert!(iban.starts_with("FR") && iban.len() == 27, "{iban}");
    }
    let third = accounts(&tpp, &access(&consent(&bank, &tpp, "psu-3").await)).await;
    assert!(third.iter().all(|a| !second.contains(a)));

    // psu-2's own account is served; psu-1's account with psu-2's token is as unknown as an
    // account that does not exist.
    let own = tpp
        .call(
            "GET",
            &format!("/accounts/{}/transactions", second[0].0),
            &second_token,
            None,
        )
        .await;
    assert_eq!(own.status, 200);
    assert!(!own.json()["transactions"].as_array().unwrap().is_empty());
    let foreign = tpp
        .call("GET", "/accounts/ACC0001/balances", &second_token, None)
        .await;
    assert_eq!(foreign.status, 404, "{}", foreign.reason());
    let unknown = tpp
        .call("GET", "/accounts/NOPE/balances", &second_token, None)
        .await;
    assert_eq!(unknown.status, foreign.status);

    // A hint that names no PSU: the OAuth error redirect, naming the hint and the range.
    let location = tpp
        .authorize(
            "aisp",
            Some(&as_psu(&bank, "psu-4")),
            &common::challenge("a-verifier-that-is-long-enough-for-pkce-0123456789"),
            "st4te",
        )
        .await;
    let url = reqwest::Url::parse(&location).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["error"], "invalid_request");
    assert!(!q.contains_key("code"));
    let description = &q["error_description"];
    assert!(
        description.contains("psu-4") && description.contains("psu-1 to psu-3"),
        "{description}"
    );
    assert_eq!(bank.stats().psus, 3);
    assert_eq!(stats_over_http(&bank).await["psus"], 3);
    bank.shutdown().await;
}

#[tokio::test]
async fn a_refresh_token_is_good_once_and_its_reuse_is_counted() {
    let (bank, tpp) = start(SandboxConfig::default()).await;
    let t = tpp.code_flow("aisp", None).await;
    let rt1 = t["refresh_token"].as_str().unwrap().to_owned();

    let a = refresh(&tpp, &rt1).await;
    assert_eq!(a.status, 200, "{}", String::from_utf8_lossy(&a.body));
    let rotated = a.json();
    let rt2 = rotated["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(rt2, rt1, "the refresh grant answers a new refresh token");
    assert_ne!(access(&rotated), access(&t));
    assert_eq!(accounts(&tpp, &access(&rotated)).await.len(), 3);

    let again = refresh(&tpp, &rt1).await;
    assert_eq!(again.status, 400);
    let error = again.json();
    assert_eq!(error["error"], "invalid_grant");
    assert!(
        error["error_description"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{error}"
    );
    // A token never issued is refused too, but is no reuse.
    let never = refresh(&tpp, "0123456789abcdef").await;
    assert_eq!(never.json()["error"], "invalid_grant");

    let stats = bank.stats();
    assert_eq!(stats.refresh_grants, 1);
    assert_eq!(stats.refresh_reused, 1);
    assert_eq!(stats.tokens_issued, 1);
    let json = stats_over_http(&bank).await;
    assert_eq!(json["refreshGrants"], 1);
    assert_eq!(json["refreshReused"], 1);
    assert_eq!(json["tokensIssued"], 1);

    // The rotated one still works, once.
    assert_eq!(refresh(&tpp, &rt2).await.status, 200);
    assert_eq!(bank.stats().refresh_grants, 2);
    bank.shutdown().await;
}

#[tokio::test]
async fn revoking_a_psu_kills_its_tokens_and_no_one_elses() {
    let (bank, tpp) = start(SandboxConfig {
        psus: 2,
        ..SandboxConfig::default()
    })
    .await;
    let one = tpp.code_flow("aisp", None).await;
    let two = consent(&bank, &tpp, "psu-2").await;
    assert_eq!(accounts(&tpp, &access(&two)).await.len(), 3);

    let (status, body) = revoke_over_http(&bank, r#"{"psu": "psu-2"}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["revoked"], 2, "one access token and one refresh token");

    let refused = tpp.call("GET", "/accounts", &access(&two), None).await;
    assert_eq!(refused.status, 401, "{}", refused.reason());
    let challenge = refused.headers["www-authenticate"].to_str().unwrap();
    assert!(challenge.contains("invalid_token"), "{challenge}");
    assert!(refused.reason().contains("revoked"), "{}", refused.reason());
    let r = refresh(&tpp, two["refresh_token"].as_str().unwrap()).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"], "invalid_grant");
    assert_eq!(
        bank.stats().refresh_reused,
        0,
        "a revoked token is no reuse"
    );

    // psu-1 is untouched, and psu-2 can consent again.
    assert_eq!(accounts(&tpp, &access(&one)).await[0].0, "ACC0001");
    assert_eq!(
        refresh(&tpp, one["refresh_token"].as_str().unwrap())
            .await
            .status,
        200
    );
    let again = consent(&bank, &tpp, "psu-2").await;
    assert!(
        accounts(&tpp, &access(&again)).await[0]
            .0
            .starts_with("PSU2-")
    );

    let (status, body) = revoke_over_http(&bank, r#"{"psu": "psu-9"}"#).await;
    assert_eq!(status, 404);
    assert!(
        body["message"].as_str().unwrap().contains("psu-9"),
        "{body}"
    );
    let (status, _) = revoke_over_http(&bank, "{}").await;
    assert_eq!(status, 400);
    // In-process, the same.
    assert_eq!(bank.revoke("psu-2"), Some(2));
    assert_eq!(bank.revoke("psu-3"), None);
    bank.shutdown().await;
}

#[tokio::test]
async fn unattended_calls_are_counted_when_answered_and_refused_past_four() {
    let (bank, tpp) = start(SandboxConfig::default()).await;
    let token = tpp.aisp_token().await;
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let a = tpp
            .call_with("GET", "/accounts/ACC0001/balances", &token, &[], None)
            .await;
        statuses.push(a.status);
    }
    assert_eq!(statuses, [200, 200, 200, 200, 429]);
    let stats = bank.stats();
    assert_eq!(stats.unattended_peak, 4);
    assert_eq!(stats.unattended_refused, 1);

    // With the PSU present nothing is counted.
    for _ in 0..6 {
        let a = tpp
            .call_with("GET", "/accounts/ACC0002/balances", &token, &PRESENT, None)
            .await;
        assert_eq!(a.status, 200);
    }
    // Unattended on another account and endpoint: its own count, below the peak.
    let a = tpp
        .call_with("GET", "/accounts/ACC0002/transactions", &token, &[], None)
        .await;
    assert_eq!(a.status, 200);
    let json = stats_over_http(&bank).await;
    assert_eq!(json["unattendedPeak"], 4);
    assert_eq!(json["unattendedRefused"], 1);
    bank.shutdown().await;
}

#[tokio::test]
async fn concurrent_api_requests_are_counted_per_client() {
    const N: usize = 6;
    // Every API answer waits: requests sent at once are all in flight at some moment.
    let (bank, tpp) = start(SandboxConfig {
        faults: "slow:every=1:ms=400".parse().unwrap(),
        ..SandboxConfig::default()
    })
    .await;
    let token = tpp.aisp_token().await;
    assert_eq!(
        bank.stats().peak_concurrency,
        0,
        "the token endpoint is not counted"
    );
    let url = format!("{}/accounts", bank.info().api_base);
    let signed = |n: usize| -> Vec<stet_httpsig::Request> {
        (0..n)
            .map(|_| tpp.signed("GET", &url, Some(&token), &PRESENT, b""))
            .collect()
    };

    // Clients that go away mid-request leave nothing in flight behind: requests one at a
    // time afterwards do not raise the peak above what the abandoned ones made.
    let abandoned = all_at_once(&tpp, &signed(3), Some(Duration::from_millis(50))).await;
    assert!(abandoned.iter().all(Option::is_none), "{abandoned:?}");
    tokio::time::sleep(Duration::from_millis(800)).await;
    let after_abandoned = bank.stats().peak_concurrency;
    assert!((1..=3).contains(&after_abandoned), "{after_abandoned}");
    for req in signed(4) {
        assert_eq!(tpp.send(&req).await.status, 200);
    }
    assert_eq!(bank.stats().peak_concurrency, after_abandoned);

    let answers = all_at_once(&tpp, &signed(N), None).await;
    assert!(answers.iter().all(|s| *s == Some(200)), "{answers:?}");
    let stats = bank.stats();
    assert!(
        (2..=N as u64).contains(&stats.peak_concurrency),
        "{}",
        stats.peak_concurrency
    );
    assert_eq!(
        stats.peak_concurrency_by_client.get(&bank.info().client_id),
        Some(&stats.peak_concurrency),
        "{:?}",
        stats.peak_concurrency_by_client
    );
    let json = stats_over_http(&bank).await;
    assert_eq!(json["peakConcurrency"], stats.peak_concurrency);
    assert_eq!(
        json["peakConcurrencyByClient"][&bank.info().client_id],
        stats.peak_concurrency
    );
    bank.shutdown().await;
}

/// Sends every request at once, each on its own connection; their statuses (`None`: given up
/// after `patience`).
async fn all_at_once(
    tpp: &Tpp,
    requests: &[stet_httpsig::Request],
    patience: Option<Duration>,
) -> Vec<Option<u16>> {
    let mut set = tokio::task::JoinSet::new();
    for req in requests {
        let http = common::http_client(&tpp.info, true);
        let base = reqwest::Url::parse(&tpp.info.api_base).unwrap();
        let url = format!("{}://{}{}", base.scheme(), base.authority(), req.target());
        let headers: Vec<(String, String)> = req
            .headers()
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        set.spawn(async move {
            let mut builder = http.get(url);
            for (n, v) in headers {
                builder = builder.header(n, v);
            }
            let send = async { builder.send().await.unwrap().status().as_u16() };
            match patience {
                Some(p) => tokio::time::timeout(p, send).await.ok(),
                None => Some(send.await),
            }
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = set.join_next().await {
        statuses.push(status.unwrap());
    }
    statuses
}
