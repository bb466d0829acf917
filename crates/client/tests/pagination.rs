//! Pagination against a misbehaving bank over a real socket: links that loop, links to
//! another host, garbage, an endless list read lazily. (The sandbox writes only correct links;
//! this bank, plain HTTP on loopback, writes whatever a test asks.)

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use futures_util::{StreamExt, TryStreamExt};
use serde_json::json;
use stet_client::{ClientError, LinkError, StetClient, TransactionQuery, transport_builder};
use stet_sandbox::{Sandbox, SandboxConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

/// Answers `GET path?query` with a status and a body; counts requests.
struct FakeBank {
    base: Url,
    served: Arc<AtomicUsize>,
}

fn page(items: serde_json::Value, next: Option<&str>) -> (u16, String) {
    let mut links = json!({"self": {"href": "x"}});
    if let Some(n) = next {
        links["next"] = json!({"href": n});
    }
    (
        200,
        json!({"transactions": items, "accounts": items, "_links": links}).to_string(),
    )
}

fn tx(n: u64) -> serde_json::Value {
    json!({"entryReference": format!("E{n:06}"), "status": "BOOK", "creditDebitIndicator": "DBIT",
           "transactionAmount": {"amount": "1.00", "currency": "EUR"}, "bookingDate": "2025-01-02"})
}

/// A transaction booked on `day` (YYYY-MM-DD), named after it.
fn booked_on(day: &str) -> serde_json::Value {
    json!({"entryReference": format!("D{day}"), "status": "BOOK", "creditDebitIndicator": "CRDT",
           "transactionAmount": {"amount": "2.00", "currency": "EUR"}, "bookingDate": day})
}

fn answer(target: &str) -> (u16, String) {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let param = |name: &str| {
        query
            .split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
    };
    let page_no: u64 = param("page").and_then(|v| v.parse().ok()).unwrap_or(1);
    match path {
        // A bank that reads dateTo as inclusive: each window lists a transaction of its
        // first day and one of its last, which is the next (newer) window's first day.
        "/v1/accounts/INCLUSIVE/transactions" => {
            let day = |name: &str| param(name).and_then(|v| v.get(..10)).unwrap_or("?");
            page(
                json!([booked_on(day("dateTo")), booked_on(day("dateFrom"))]),
                None,
            )
        }
        // page 1 -> page 2 -> page 1 again (written another way).
        "/v1/accounts/LOOP/transactions" => match page_no {
            1 => page(
                json!([tx(1)]),
                Some("/v1/accounts/LOOP/transactions?page=2"),
            ),
            _ => page(json!([tx(2)]), Some("accounts/LOOP/transactions")),
        },
        // A page that points to itself.
        "/v1/accounts/SELF/transactions" => {
            page(json!([tx(1)]), Some("v1/accounts/SELF/transactions"))
        }
        "/v1/accounts/FOREIGN/transactions" => page(
            json!([tx(1)]),
            Some("https://evil.example/v1/accounts/FOREIGN/transactions?page=2"),
        ),
        "/v1/accounts/EMPTY/transactions" => (204, String::new()),
        "/v1/accounts/GARBAGE/transactions" => (200, "{\"transactions\": [{\"oops\"".into()),
        // Endless: every page links to the next.
        "/v1/accounts/ENDLESS/transactions" => page(
            json!([tx(page_no * 2), tx(page_no * 2 + 1)]),
            Some(&format!(
                "./accounts/ENDLESS/transactions?page={}",
                page_no + 1
            )),
        ),
        _ => (
            404,
            json!({"status": 404, "message": "no such thing"}).to_string(),
        ),
    }
}

impl FakeBank {
    async fn start() -> FakeBank {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let served = Arc::new(AtomicUsize::new(0));
        let counter = served.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                        match socket.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    counter.fetch_add(1, Ordering::SeqCst);
                    let head = String::from_utf8_lossy(&buf).into_owned();
                    let target = head.split(' ').nth(1).unwrap_or("/").to_owned();
                    let (status, body) = answer(&target);
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = socket.write_all(reply.as_bytes()).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        FakeBank {
            base: Url::parse(&format!("http://127.0.0.1:{port}/v1/")).unwrap(),
            served,
        }
    }
}

async fn client(bank: &FakeBank, pki: &stet_sandbox::SandboxInfo) -> StetClient {
    let mut profile = support::transport_profile(pki);
    profile.api_base = bank.base.clone();
    profile.allow_insecure_http = true;
    let mut bank_profile = stet_client::bank::BankProfiles::builtin()
        .get("generic-1.4")
        .unwrap();
    bank_profile.signature.headers = vec!["(request-target)".into(), "date".into()];
    let transport = transport_builder(&profile, &bank_profile)
        .retry(stet_client::transport::RetryPolicy::none())
        .access_token(Some(stet_client::transport::Secret::new("t")))
        .build()
        .unwrap();
    StetClient::with_options(transport, bank_profile, support::present())
}

async fn list(client: &StetClient, account: &str) -> Result<Vec<String>, ClientError> {
    client
        .transactions(account, &TransactionQuery::default())
        .map_ok(|t| t.entry_reference.clone().unwrap_or_default())
        .try_collect()
        .await
}

#[tokio::test]
async fn loops_foreign_links_garbage_and_laziness() {
    // The sandbox only lends its TPP files (QWAC, QSealC key).
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let bank = FakeBank::start().await;
    let client = client(&bank, sandbox.info()).await;

    // A loop through two pages ends with an error after both were read once.
    let err = list(&client, "LOOP").await.unwrap_err();
    assert!(
        matches!(err, ClientError::PaginationLoop { pages: 2, .. }),
        "{err}"
    );
    assert_eq!(bank.served.load(Ordering::SeqCst), 2);
    assert_eq!(err.exit_code(), 65);
    // The items before the loop did come through, in order.
    let before: Vec<_> = client
        .transactions("LOOP", &TransactionQuery::default())
        .take_while(|r| std::future::ready(r.is_ok()))
        .map(|r| r.unwrap().entry_reference.clone().unwrap())
        .collect()
        .await;
    assert_eq!(before, ["E000001", "E000002"]);

    let err = list(&client, "SELF").await.unwrap_err();
    assert!(
        matches!(err, ClientError::PaginationLoop { pages: 1, .. }),
        "{err}"
    );

    // Another host: refused, never contacted, the items already read kept.
    let served = bank.served.load(Ordering::SeqCst);
    let err = list(&client, "FOREIGN").await.unwrap_err();
    match &err {
        ClientError::Link {
            source: LinkError::ForeignHost { found, .. },
            ..
        } => assert!(found.contains("evil.example")),
        other => panic!("{other}"),
    }
    assert_eq!(bank.served.load(Ordering::SeqCst), served + 1);

    // 204 is an empty list.
    assert!(list(&client, "EMPTY").await.unwrap().is_empty());

    // Garbage is unreadable bank data, saying what was asked.
    let err = list(&client, "GARBAGE").await.unwrap_err();
    match &err {
        ClientError::UnreadableBankData { what, .. } => assert!(what.contains("GARBAGE")),
        other => panic!("{other}"),
    }
    assert_eq!(err.exit_code(), 65);

    // An endless list is read lazily: three items, two pages, no more.
    let served = bank.served.load(Ordering::SeqCst);
    let three: Vec<_> = client
        .transactions("ENDLESS", &TransactionQuery::default())
        .take(3)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(three.len(), 3);
    assert_eq!(bank.served.load(Ordering::SeqCst), served + 2);
    // ... and as long as one likes, one page in memory at a time.
    let many = client
        .transaction_pages("ENDLESS", &TransactionQuery::default())
        .take(300)
        .try_fold(0usize, |n, p| async move { Ok(n + p.items.len()) })
        .await
        .unwrap();
    assert_eq!(many, 600);
}

#[tokio::test]
async fn windows_that_a_bank_reads_as_inclusive_meet_without_repeats() {
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let bank = FakeBank::start().await;
    let mut client = client(&bank, sandbox.info()).await;
    let mut capped = client.bank().clone();
    capped.max_history_days_per_request = Some(30);
    client = StetClient::with_options(client.transport().clone(), capped, support::present());
    let today = time::OffsetDateTime::now_utc().date();
    let query = TransactionQuery {
        date_from: Some(today - time::Duration::days(100)),
        date_to: Some(today),
        ..TransactionQuery::default()
    };

    // Four windows, newest first; each boundary day is listed by both windows that meet
    // there, and comes out once.
    let typed: Vec<String> = client
        .transactions("INCLUSIVE", &query)
        .map_ok(|t| t.entry_reference.clone().unwrap())
        .try_collect()
        .await
        .unwrap();
    let mut unique = typed.clone();
    unique.dedup();
    assert_eq!(unique, typed, "no repeats");
    assert_eq!(typed.len(), 5, "{typed:?}");
    assert_eq!(typed[0], format!("D{today}"));
    assert_eq!(typed[4], format!("D{}", today - time::Duration::days(100)));

    // Items kept as text go through the same merge and give the same list, as sent.
    let pages: Vec<_> = client
        .transaction_json_pages("INCLUSIVE", &query)
        .try_collect()
        .await
        .unwrap();
    assert_eq!(pages.len(), 4);
    let texts: Vec<&str> = pages
        .iter()
        .flat_map(|p| p.items.iter().map(|t| t.get()))
        .collect();
    let refs: Vec<String> = texts
        .iter()
        .map(|t| {
            serde_json::from_str::<serde_json::Value>(t).unwrap()["entryReference"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(refs, typed);
    assert!(
        texts[0].starts_with(r#"{"bookingDate":"#),
        "as sent: {}",
        texts[0]
    );
}
