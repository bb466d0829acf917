//! The client against the sandbox's Powens mock, over real TLS sockets: what the library
//! promises beyond what the `stet` commands show (tests/powens.rs covers those).

#![allow(missing_docs)]

use std::sync::Arc;

use stet_powens::connect::{ConnectOptions, Psu, connect};
use stet_powens::model::{ConnectionState, ConnectorField};
use stet_powens::{PowensClient, PowensConfig, PowensError, TransactionQuery, mapping};
use stet_sandbox::{PowensOptions, RunningSandbox, Sandbox, SandboxConfig};
use stet_transport::{FileTokenStore, HttpsOptions, Secret, TokenStore};
use url::Url;

async fn sandbox(options: PowensOptions) -> RunningSandbox {
    Sandbox::start(SandboxConfig {
        powens: Some(options),
        ..SandboxConfig::default()
    })
    .await
    .expect("sandbox")
}

fn client(bank: &RunningSandbox, store: Arc<dyn TokenStore>, secret: Option<&str>) -> PowensClient {
    let info = bank.info();
    let mock = info.powens.as_ref().expect("the Powens mock");
    PowensClient::new(
        PowensConfig {
            profile: "powens".into(),
            domain: None,
            api_base: Url::parse(&mock.api_base).unwrap(),
            client_id: mock.client_id.clone(),
            client_secret: Secret::new(secret.unwrap_or(&mock.client_secret)),
            redirect_uri: None,
            https: HttpsOptions {
                ca_bundle: Some(info.ca.clone()),
                ..HttpsOptions::default()
            },
        },
        store,
    )
    .expect("client")
}

/// A PSU who answers from a list, in order: `(field name, value)`.
struct Scripted(Vec<(String, String)>);

impl Psu for Scripted {
    async fn fields(
        &mut self,
        fields: &[ConnectorField],
        _why: Option<&str>,
    ) -> Result<Vec<(String, Secret)>, PowensError> {
        let mut out = Vec::new();
        for field in fields {
            let at = self
                .0
                .iter()
                .position(|(name, _)| *name == field.name)
                .unwrap_or_else(|| panic!("no scripted value for {}", field.name));
            let (name, value) = self.0.remove(at);
            out.push((name, Secret::new(value)));
        }
        Ok(out)
    }
    fn notice(&mut self, _text: &str) {}
    async fn redirect_uri(&mut self) -> Result<Url, PowensError> {
        unreachable!("no webauth here")
    }
    async fn browse(&mut self, _url: &Url) -> Result<String, PowensError> {
        unreachable!("no webauth here")
    }
}

fn answers(pairs: &[(&str, &str)]) -> Scripted {
    Scripted(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_first_runs_make_one_user_and_a_wrong_secret_is_refused() {
    let bank = sandbox(PowensOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn TokenStore> = Arc::new(FileTokenStore::new(dir.path()));
    let (a, b) = (
        client(&bank, store.clone(), None),
        client(&bank, store.clone(), None),
    );
    let (ua, ub) = tokio::join!(a.init_user(), b.init_user());
    let (ua, ub) = (ua.unwrap(), ub.unwrap());
    assert_eq!(ua.0.id_user, ub.0.id_user, "one user for both runs");
    assert!(ua.1 != ub.1, "exactly one of the two made it");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.path().join("powens.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Renewing keeps the user, changes the token; the revoked one is refused.
    let renewed = a.renew_user(None, true).await.unwrap();
    assert_eq!(renewed.id_user, ua.0.id_user);
    let stale = client(
        &bank,
        Arc::new(stet_transport::MemoryTokenStore::default()),
        None,
    );
    assert!(matches!(
        stale.accounts().await,
        Err(PowensError::NoUser { .. })
    ));

    let wrong = client(
        &bank,
        Arc::new(stet_transport::MemoryTokenStore::default()),
        Some("nope"),
    );
    let err = wrong.init_user().await.unwrap_err();
    assert!(matches!(err, PowensError::ClientRefused { .. }), "{err}");
    bank.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_is_fetched_again_and_pages_map_to_stet() {
    // The key changes after every accepted credential post: the OTP that follows the creation
    // is first encrypted for a key the mock no longer has.
    let bank = sandbox(PowensOptions {
        rotate_key_every: 1,
        ..PowensOptions::default()
    })
    .await;
    let client = client(
        &bank,
        Arc::new(stet_transport::MemoryTokenStore::default()),
        None,
    );
    client.init_user().await.unwrap();
    let before = client.domain_key(false).await.unwrap();
    let connectors = client.connectors().await.unwrap();
    let test = connectors
        .iter()
        .find(|c| c.uuid == stet_powens::TEST_CONNECTOR_UUID)
        .expect("the test connector");
    let mut psu = answers(&[
        ("login", "me"),
        ("password", "1234"),
        ("openapiwebsite", "additionalInformationNeeded"),
        ("openapisms", "abcd"),
    ]);
    let options = ConnectOptions {
        source: Some("openapi".into()),
        ..ConnectOptions::default()
    };
    let connection = connect(&client, test, &mut psu, &options).await.unwrap();
    assert_eq!(connection.state(), ConnectionState::Valid);
    let after = client.domain_key(false).await.unwrap();
    assert_ne!(before.kid(), after.kid(), "the client holds the new key");

    // Accounts are disabled: no transactions until one is enabled.
    let accounts = client.accounts().await.unwrap();
    assert_eq!(accounts.len(), 6);
    assert!(accounts.iter().all(|a| a.disabled));
    let mut pages = client.transaction_pages(None, &TransactionQuery::default());
    assert!(matches!(
        pages.next().await,
        Some(Err(PowensError::NoAccount { .. }))
    ));
    let checking = accounts
        .iter()
        .find(|a| a.kind.as_deref() == Some("checking"))
        .unwrap();
    assert!(!client.enable_account(checking.id).await.unwrap().disabled);

    // Pages of 10 (the mock has 64, one deleted at the bank): every one read once, mapped
    // with stable ids.
    let query = TransactionQuery {
        limit: 10,
        ..TransactionQuery::default()
    };
    let mut pages = client.transaction_pages(Some(checking.id), &query);
    let (mut seen, mut count) = (std::collections::HashSet::new(), 0);
    while let Some(page) = pages.next().await {
        let page = page.unwrap();
        assert!(page.transactions.len() <= 10);
        for t in &page.transactions {
            count += 1;
            assert!(seen.insert(t.id), "transaction {} twice", t.id);
            // Powens' JSON as received is kept: an undocumented type included.
            assert!(t.json().get().contains("\"date_scraped\""));
            if let Some(s) = mapping::transaction(t, checking.currency_code(), client.namespace()) {
                let id = s.resource_id.unwrap();
                assert!(id.starts_with("p1-") && id.len() <= 35, "{id}");
                let raw: serde_json::Value = serde_json::from_str(t.json().get()).unwrap();
                let value = raw["value"].to_string();
                assert_eq!(
                    value.trim_start_matches('-'),
                    s.transaction_amount.amount.to_string()
                );
            }
        }
    }
    // The one the bank deleted is left out unless asked for (`all`), then flagged.
    assert_eq!(count, 63);
    let query = TransactionQuery {
        deleted: true,
        ..TransactionQuery::default()
    };
    let mut pages = client.transaction_pages(Some(checking.id), &query);
    let (mut all, mut deleted) = (0, 0);
    let mut written = Vec::new();
    while let Some(page) = pages.next().await {
        for t in &page.unwrap().transactions {
            all += 1;
            written.push(t.last_update.unwrap().instant());
            if t.deleted {
                deleted += 1;
                assert!(mapping::transaction(t, "EUR", client.namespace()).is_none());
                assert!(mapping::deleted_transaction(t, "EUR", client.namespace()).is_some());
            }
        }
    }
    assert_eq!((all, deleted), (64, 1));

    // `last_update`: only what Powens changed after a time (sent as Paris local time), in
    // pages that keep the filter. The mock's history was written at least a day before it
    // started; nothing is newer than now.
    let changed_after = |t: time::OffsetDateTime| TransactionQuery {
        limit: 10,
        deleted: true,
        updated_after: Some(t),
        ..TransactionQuery::default()
    };
    let count = |query: TransactionQuery| {
        let client = &client;
        async move {
            let mut pages = client.transaction_pages(Some(checking.id), &query);
            let mut n = 0;
            while let Some(page) = pages.next().await {
                n += page.unwrap().transactions.len();
            }
            n
        }
    };
    let now = time::OffsetDateTime::now_utc();
    assert_eq!(
        count(changed_after(now - time::Duration::days(400))).await,
        64
    );
    assert_eq!(
        count(changed_after(now - time::Duration::hours(12))).await,
        0
    );
    // A time in the middle: exactly the newer ones, over more than one page.
    let middle = now - time::Duration::days(30);
    let newer = written.iter().filter(|t| **t > middle).count();
    assert!(newer > 10 && newer < 64, "{newer}");
    assert_eq!(count(changed_after(middle)).await, newer);
    bank.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ids_answer_web_pages_that_are_said_to_be_web_pages() {
    let bank = sandbox(PowensOptions::default()).await;
    let client = client(
        &bank,
        Arc::new(stet_transport::MemoryTokenStore::default()),
        None,
    );
    client.init_user().await.unwrap();
    let err = client.connection(987_654).await.unwrap_err();
    match &err {
        PowensError::NotJson {
            status, what, hint, ..
        } => {
            assert_eq!(*status, 404);
            assert_eq!(*what, "an HTML page");
            assert!(hint.contains("does not know this id"), "{hint}");
        }
        other => panic!("{other:?}"),
    }
    let err = client.enable_account(1).await.unwrap_err();
    assert!(
        matches!(err, PowensError::NotJson { status: 404, .. }),
        "{err}"
    );
    bank.shutdown().await;
}
