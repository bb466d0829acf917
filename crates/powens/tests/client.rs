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

/// A mock whose domain key changes after every credential post it reads, and a user of it
/// (tokens in memory).
async fn rotating_user() -> (RunningSandbox, PowensClient) {
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
    (bank, client)
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
    let stored_token = || {
        let set = store.load("powens").unwrap();
        let tokens: Vec<String> = set
            .tokens
            .values()
            .map(|t| t.access_token.expose().to_owned())
            .collect();
        assert_eq!(tokens.len(), 1, "one user token stored");
        tokens[0].clone()
    };
    let before = stored_token();
    // `b` holds the token it was given, and uses it.
    b.accounts().await.expect("the first token works");
    let renewed = a.renew_user(None, true).await.unwrap();
    assert_eq!(renewed.id_user, ua.0.id_user);
    let after = stored_token();
    assert_ne!(before, after, "the renewal stored a new token");
    assert!(!after.is_empty());
    // `b` still holds the first token, which Powens revoked; `a` holds the new one.
    let refused = b.accounts().await.unwrap_err();
    assert!(
        matches!(refused, PowensError::TokenRefused { .. }),
        "{refused}"
    );
    a.accounts().await.expect("the renewed token works");
    // A client reading the store afresh gets the new token too.
    client(&bank, store.clone(), None)
        .accounts()
        .await
        .expect("the stored token is the renewed one");
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
    let (bank, client) = rotating_user().await;
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

/// Calls to the mock by hand, as a client other than stet's would make them.
struct ByHand {
    http: reqwest::Client,
    base: String,
    origin: String,
    token: String,
}

impl ByHand {
    async fn new(bank: &RunningSandbox) -> ByHand {
        let info = bank.info();
        let mock = info.powens.as_ref().expect("the Powens mock");
        let ca = std::fs::read(&info.ca).expect("CA");
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).expect("CA PEM")])
            .build()
            .expect("client");
        let base = mock.api_base.clone();
        let origin = base
            .strip_suffix("/powens/2.0")
            .expect("the mock's prefix")
            .to_owned();
        let mut by_hand = ByHand {
            http,
            base,
            origin,
            token: String::new(),
        };
        let (status, init) = by_hand
            .call(
                reqwest::Method::POST,
                "auth/init",
                Some(serde_json::json!({
                    "client_id": mock.client_id, "client_secret": mock.client_secret,
                })),
            )
            .await;
        assert_eq!(status, 200, "{init}");
        by_hand.token = init["auth_token"].as_str().expect("a token").to_owned();
        by_hand
    }

    /// The status and the JSON body (`null` when there is none or it is not JSON).
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> (u16, serde_json::Value) {
        let mut request = self.http.request(method, format!("{}/{path}", self.base));
        if !self.token.is_empty() {
            request = request.bearer_auth(&self.token);
        }
        if let Some(body) = body {
            request = request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.to_string());
        }
        let response = request.send().await.expect("a call to the mock");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("a body");
        (status, serde_json::from_slice(&bytes).unwrap_or_default())
    }

    async fn key(&self) -> stet_powens::jwe::DomainKey {
        let (status, jwk) = self.call(reqwest::Method::GET, "publickey", None).await;
        assert_eq!(status, 200);
        stet_powens::jwe::DomainKey::from_jwk(jwk.to_string().as_bytes()).expect("the key")
    }

    /// A connection's creation, each of `secret` encrypted with `key` (or in clear without).
    async fn create(
        &self,
        key: Option<&stet_powens::jwe::DomainKey>,
        plain: &[(&str, &str)],
        secret: &[(&str, &str)],
    ) -> (u16, serde_json::Value) {
        let mut body = serde_json::Map::new();
        for (name, value) in plain {
            body.insert((*name).into(), (*value).into());
        }
        for (name, value) in secret {
            let value = match key {
                Some(key) => key.encrypt(value.as_bytes()).expect("encrypt"),
                None => (*value).to_owned(),
            };
            body.insert((*name).into(), value.into());
        }
        self.call(
            reqwest::Method::POST,
            "users/me/connections",
            Some(body.into()),
        )
        .await
    }

    /// `GET /sandbox/powens/credentials`.
    async fn posts(&self) -> Vec<serde_json::Value> {
        let response = self
            .http
            .get(format!("{}/sandbox/powens/credentials", self.origin))
            .send()
            .await
            .expect("the credential log");
        assert_eq!(response.status().as_u16(), 200);
        let log: serde_json::Value =
            serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
        log["posts"].as_array().expect("posts").clone()
    }
}

const TEST_PLAIN: &[(&str, &str)] = &[
    ("connector_uuid", stet_powens::TEST_CONNECTOR_UUID),
    ("source", "openapi"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mock_refuses_a_stale_key_before_anything_else_and_clear_values_unread() {
    let bank = sandbox(PowensOptions {
        rotate_key_every: 1,
        ..PowensOptions::default()
    })
    .await;
    let psu = ByHand::new(&bank).await;
    let working = [
        ("login", "jdoe"),
        ("password", "1234"),
        ("openapiwebsite", "par"),
    ];
    let k1 = psu.key().await;
    let (status, body) = psu.create(Some(&k1), TEST_PLAIN, &working).await;
    assert_eq!(status, 200, "{body}");
    let k2 = psu.key().await;
    assert_ne!(k1.kid(), k2.kid(), "decrypted credentials rotate the key");

    // A JWE for the old key, in a request wrong in every other way too (unknown connector and
    // source, a wrong password): the key is what the answer is about, naming the old kid.
    let (status, body) = psu
        .create(
            Some(&k1),
            &[
                ("connector_uuid", "no-such-connector"),
                ("source", "nowhere"),
            ],
            &[
                ("login", "jdoe"),
                ("password", "0000"),
                ("openapiwebsite", "wrongpass"),
            ],
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["code"], "invalidValue", "{body}");
    let description = body["description"].as_str().unwrap();
    assert!(
        description.contains(&format!("`{}`", k1.kid())) && description.contains("GET /publickey"),
        "{description}"
    );
    assert_eq!(
        psu.key().await.kid(),
        k2.kid(),
        "refused unread: no rotation"
    );

    // A wrong password under the current key: read, refused by the bank, and the key rotates
    // as after any credentials it read.
    let (status, body) = psu
        .create(
            Some(&k2),
            TEST_PLAIN,
            &[
                ("login", "jdoe"),
                ("password", "0000"),
                ("openapiwebsite", "par"),
            ],
        )
        .await;
    assert_eq!(
        (status, &body["code"]),
        (400, &"wrongpass".into()),
        "{body}"
    );
    let k3 = psu.key().await;
    assert_ne!(k3.kid(), k2.kid());

    // A value in clear beside JWEs: refused, saying which, and nothing else is read.
    let mut body = serde_json::Map::new();
    for (name, value) in TEST_PLAIN {
        body.insert((*name).into(), (*value).into());
    }
    body.insert("login".into(), "jdoe".into());
    for (name, value) in &working[1..] {
        body.insert((*name).into(), k3.encrypt(value.as_bytes()).unwrap().into());
    }
    let (status, answer) = psu
        .call(
            reqwest::Method::POST,
            "users/me/connections",
            Some(body.into()),
        )
        .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["code"], "invalidValue");
    assert!(
        answer["description"]
            .as_str()
            .unwrap()
            .contains("`login` is sent in clear"),
        "{answer}"
    );
    // Everything in clear: the same.
    let (status, answer) = psu.create(None, TEST_PLAIN, &working).await;
    assert_eq!((status, &answer["code"]), (400, &"invalidValue".into()));
    assert!(
        answer["description"]
            .as_str()
            .unwrap()
            .contains("is sent in clear"),
        "{answer}"
    );
    assert_eq!(
        psu.key().await.kid(),
        k3.kid(),
        "refused unread: no rotation"
    );

    // The log says what reached the mock, per request and per field.
    let posts = psu.posts().await;
    let summary: Vec<(&str, u64, Option<&str>)> = posts
        .iter()
        .map(|p| {
            (
                p["key"].as_str().unwrap(),
                p["status"].as_u64().unwrap(),
                p["code"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("current", 200, None),
            ("stale", 400, Some("invalidValue")),
            ("current", 400, Some("wrongpass")),
            ("none", 400, Some("invalidValue")),
            ("none", 400, Some("invalidValue")),
        ],
        "{posts:#?}"
    );
    assert_eq!(posts[0]["scenario"], "par");
    assert!(posts[1]["scenario"].is_null(), "not read: {}", posts[1]);
    let encrypted = |post: &serde_json::Value, name: &str| {
        post["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .map(|f| f["encrypted"].as_bool().unwrap())
    };
    assert_eq!(encrypted(&posts[3], "login"), Some(false));
    assert_eq!(encrypted(&posts[3], "password"), Some(true));
    assert_eq!(encrypted(&posts[4], "password"), Some(false));
    assert_eq!(
        encrypted(&posts[0], "connector_uuid"),
        None,
        "not a credential"
    );
    // Transactions: `limit` is required, and nothing is listed before an account is enabled.
    for path in [
        "users/me/transactions",
        "users/me/transactions?min_date=2026-01-01",
    ] {
        let (status, answer) = psu.call(reqwest::Method::GET, path, None).await;
        assert_eq!((status, &answer["code"]), (400, &"missingParameter".into()));
        assert!(
            answer["description"].as_str().unwrap().contains("limit"),
            "{answer}"
        );
    }
    let (status, answer) = psu
        .call(reqwest::Method::GET, "users/me/transactions?limit=0", None)
        .await;
    assert_eq!((status, &answer["code"]), (400, &"invalidValue".into()));
    let (status, answer) = psu
        .call(reqwest::Method::GET, "users/me/transactions?limit=10", None)
        .await;
    assert_eq!((status, &answer["code"]), (409, &"noAccount".into()));

    // No value is in the log, encrypted or not.
    let log = serde_json::Value::from(posts).to_string();
    assert!(!log.contains("jdoe") && !log.contains("1234"), "{log}");
    bank.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stet_posts_a_refused_credential_once_and_a_stale_key_twice() {
    // The key rotates after every credential post the mock reads, refused ones included:
    // a client taking any refusal for a key change would post the wrong password again.
    let (bank, client) = rotating_user().await;
    let connectors = client.connectors().await.unwrap();
    let test = connectors
        .iter()
        .find(|c| c.uuid == stet_powens::TEST_CONNECTOR_UUID)
        .expect("the test connector");
    let options = ConnectOptions {
        source: Some("openapi".into()),
        ..ConnectOptions::default()
    };
    for (scenario, state) in [
        ("wrongpass", ConnectionState::Wrongpass),
        ("actionNeeded", ConnectionState::ActionNeeded),
        ("passwordExpired", ConnectionState::PasswordExpired),
    ] {
        let mut psu = answers(&[
            ("login", "me"),
            ("password", "1234"),
            ("openapiwebsite", scenario),
        ]);
        let err = connect(&client, test, &mut psu, &options)
            .await
            .unwrap_err();
        assert_eq!(err.as_state(), Some(state), "{err}");
    }
    let by_hand = ByHand::new(&bank).await;
    let posts = by_hand.posts().await;
    // Each read once; the ones after the first met the key the first rotated, and were
    // refused unread before they were posted again with the new key.
    let seen: Vec<(&str, &str)> = posts
        .iter()
        .map(|p| {
            (
                p["key"].as_str().unwrap(),
                p["scenario"].as_str().unwrap_or("(unread)"),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("current", "wrongpass"),
            ("stale", "(unread)"),
            ("current", "actionNeeded"),
            ("stale", "(unread)"),
            ("current", "passwordExpired"),
        ],
        "each read once: {posts:#?}"
    );

    // A key that really changed: the one-time code is posted again, once, and accepted.
    let mut psu = answers(&[
        ("login", "me"),
        ("password", "1234"),
        ("openapiwebsite", "additionalInformationNeeded"),
        ("openapisms", "abcd"),
    ]);
    let connection = connect(&client, test, &mut psu, &options).await.unwrap();
    assert_eq!(connection.state(), ConnectionState::Valid);
    let posts = by_hand.posts().await;
    let rest: Vec<(&str, u64)> = posts[5..]
        .iter()
        .map(|p| (p["key"].as_str().unwrap(), p["status"].as_u64().unwrap()))
        .collect();
    // The creation (after a stale key once more), then the code: refused unread under the
    // key the creation rotated, posted again once, accepted.
    assert_eq!(
        rest,
        [
            ("stale", 400),
            ("current", 202),
            ("stale", 400),
            ("current", 200)
        ],
        "{posts:#?}"
    );
    bank.shutdown().await;
}
