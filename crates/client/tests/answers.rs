//! Answers to a payment request's creation in shapes the client does not expect: whatever
//! the rest of the answer looks like, the payment request's id (the `Location`) and its
//! approval link are never lost. (A plain-HTTP bank on loopback that answers as a test says.)

mod support;

use serde_json::json;
use stet_client::bank::BankProfiles;
use stet_client::{CreditTransfer, PaymentRequestBuilder, StetClient, transport_builder};
use stet_sandbox::{Sandbox, SandboxConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use url::Url;

/// Answers every request `201 Created` with `Location: …/payment-requests/PR-<n>` and `body`.
async fn answering(body: &'static str) -> Url {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                // Headers, then the body by Content-Length.
                loop {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    let text = String::from_utf8_lossy(&buf).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if buf.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let reply = format!(
                    "HTTP/1.1 201 Created\r\nLocation: /v1/payment-requests/PR-{port}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = socket.write_all(reply.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    Url::parse(&format!("http://127.0.0.1:{port}/v1/")).unwrap()
}

async fn client(base: Url, pki: &stet_sandbox::SandboxInfo) -> StetClient {
    let mut profile = support::transport_profile(pki);
    profile.api_base = base;
    profile.allow_insecure_http = true;
    let bank = BankProfiles::builtin().get("generic-1.4").unwrap();
    let transport = transport_builder(&profile, &bank)
        .retry(stet_client::transport::RetryPolicy::none())
        .access_token(Some(stet_client::transport::Secret::new("t")))
        .build()
        .unwrap();
    StetClient::new(transport, bank)
}

#[tokio::test]
async fn an_unexpected_shape_never_costs_the_payment_requests_id() {
    // The sandbox only lends its TPP files (QWAC, QSealC key).
    let sandbox = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let bank = BankProfiles::builtin().get("generic-1.4").unwrap();
    let request = PaymentRequestBuilder::sepa_credit_transfer("TPP")
        .transfer(CreditTransfer::eur(
            "Marie Martin",
            "FR7630006000011234567890189",
            "12.10".parse().unwrap(),
            "Facture 42",
        ))
        .build(&bank)
        .unwrap();

    // STET 1.4.0.47's own example of the answer: appliedAuthenticationApproach as an object.
    let example = r#"{"appliedAuthenticationApproach": {"appliedAuthenticationApproach": "REDIRECT"},
        "_links": {"consentApproval": {"href": "https://psd2.aspsp/consent-approval"}}}"#;
    let base = answering(example).await;
    let created = client(base.clone(), sandbox.info())
        .await
        .create_payment_request(&request)
        .await
        .unwrap();
    assert_eq!(created.id, format!("PR-{}", base.port().unwrap()));
    assert_eq!(
        created.consent_approval.as_ref().map(Url::as_str),
        Some("https://psd2.aspsp/consent-approval")
    );
    let applied = created.response.applied_authentication_approach.unwrap();
    assert_eq!(applied.get(), None);
    assert_eq!(
        applied.unexpected().unwrap().get(),
        r#"{"appliedAuthenticationApproach": "REDIRECT"}"#
    );
    assert_eq!(
        created.json["appliedAuthenticationApproach"],
        json!({"appliedAuthenticationApproach": "REDIRECT"})
    );

    // A `_links` the models cannot read at all: the answer is kept as received, the link is
    // read from it where it can be, the id comes from the Location.
    let odd = r#"{"_links": {"consentApproval": {"href": "https://bank.example/approve", "templated": "no"}}, "nonce": 12}"#;
    let base = answering(odd).await;
    let created = client(base.clone(), sandbox.info())
        .await
        .create_payment_request(&request)
        .await
        .unwrap();
    assert_eq!(created.id, format!("PR-{}", base.port().unwrap()));
    assert_eq!(
        created.consent_approval.as_ref().map(Url::as_str),
        Some("https://bank.example/approve")
    );
    assert_eq!(created.json["nonce"], 12);

    // Not JSON at all: the id still comes from the Location.
    let base = answering("<html>created</html>").await;
    let created = client(base.clone(), sandbox.info())
        .await
        .create_payment_request(&request)
        .await
        .unwrap();
    assert_eq!(created.id, format!("PR-{}", base.port().unwrap()));
    assert!(created.consent_approval.is_none());
    assert!(created.json.is_null());
}
