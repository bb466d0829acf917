//! The consent lifecycle against the real PostgreSQL: a consent ending within 14 days is
//! announced once, an ended one stops its connection, and each event reaches the hook once.

use std::time::Duration;

use stet_fleet::Hooks;
use stet_fleet::worker::EXPIRES_SOON;
use stet_store::{Location, NewConnection, OpenOptions, Store};
use time::OffsetDateTime;

async fn connection(store: &Store, name: &str, valid_until: OffsetDateTime) -> i64 {
    store
        .add_connection(
            &NewConnection {
                profile: "bank".into(),
                name: name.into(),
                bank: "sandbox".into(),
                scopes: "aisp".into(),
                consent_valid_until: Some(valid_until),
            },
            |_| Ok((vec![0; 40], "test".into())),
        )
        .await
        .unwrap()
        .id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consents_ending_are_announced_once_and_ended_ones_stop() {
    let url = stet_testkit::fresh_postgres_database("fleet_lifecycle");
    let store = Store::open(&Location::parse(&url).unwrap(), &OpenOptions::default())
        .await
        .unwrap();
    let now = OffsetDateTime::now_utc();
    let soon = connection(&store, "soon", now + time::Duration::days(3)).await;
    let later = connection(&store, "later", now + time::Duration::days(90)).await;
    let ended = connection(&store, "ended", now - time::Duration::seconds(1)).await;

    for _ in 0..2 {
        assert!(store.check_consents(EXPIRES_SOON).await.unwrap() <= 1);
    }
    let by_id = |id: i64| {
        let store = store.clone();
        async move { store.connection(id).await.unwrap().unwrap() }
    };
    assert_eq!(by_id(soon).await.state, "active");
    assert_eq!(by_id(later).await.state, "active");
    let gone = by_id(ended).await;
    assert_eq!(gone.state, "expired");
    assert!(
        gone.due_at.is_none(),
        "an ended consent is no longer scheduled"
    );
    // Not claimable either.
    let claimed = store
        .claim_jobs("w", Duration::from_secs(30), 10)
        .await
        .unwrap();
    assert!(claimed.iter().all(|j| j.connection_id != ended));

    // The hook gets each event once, however often it is asked to deliver.
    let dir = std::env::temp_dir().join(format!("stet-fleet-hooks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("events.ndjson");
    let hooks = Hooks {
        command: Some(format!(
            "cat >> '{}' && echo >> '{}' && test \"$STET_CONNECTION_NAME\" != ''",
            file.display(),
            file.display()
        )),
        url: None,
    };
    assert_eq!(hooks.deliver(&store).await.unwrap(), 2);
    assert_eq!(hooks.deliver(&store).await.unwrap(), 0);
    let text = std::fs::read_to_string(&file).unwrap();
    let mut events: Vec<(String, String)> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["name"].as_str().unwrap().to_owned(),
                v["event"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    events.sort();
    assert_eq!(
        events,
        [
            ("ended".to_owned(), "expired".to_owned()),
            ("soon".to_owned(), "expires_soon".to_owned())
        ]
    );
    let _ = std::fs::remove_dir_all(&dir);

    // A hook that fails keeps the event for later.
    let again = connection(&store, "ended-2", now - time::Duration::seconds(1)).await;
    store.check_consents(EXPIRES_SOON).await.unwrap();
    let failing = Hooks {
        command: Some("exit 3".into()),
        url: None,
    };
    assert_eq!(failing.deliver(&store).await.unwrap(), 0);
    assert_eq!(store.fleet_status().await.unwrap().hooks_pending, 1);
    assert_eq!(by_id(again).await.state, "expired");
}

/// A one-thread HTTP endpoint on loopback that answers `status` to each POST and keeps the
/// bodies it received.
fn endpoint(status: u16) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead as _, BufReader, Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hooks/stet", listener.local_addr().unwrap());
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = bodies.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            let mut first = String::new();
            reader.read_line(&mut first).unwrap();
            assert!(first.starts_with("POST /hooks/stet "), "{first}");
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                if let Some((name, value)) = line.split_once(':')
                    && name.eq_ignore_ascii_case("content-length")
                {
                    length = value.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            seen.lock().unwrap().push(String::from_utf8(body).unwrap());
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    (url, bodies)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_get_each_event_once_and_a_refusal_keeps_it() {
    let url = stet_testkit::fresh_postgres_database("fleet_hook_url");
    let store = Store::open(&Location::parse(&url).unwrap(), &OpenOptions::default())
        .await
        .unwrap();
    let now = OffsetDateTime::now_utc();
    connection(&store, "ended", now - time::Duration::seconds(1)).await;
    store.check_consents(EXPIRES_SOON).await.unwrap();

    // A command (it appends the event to a file), then an endpoint that refuses (503):
    // nothing delivered, the event kept, the command run.
    let dir = tempfile::tempdir().unwrap();
    let told = dir.path().join("told.ndjson");
    let command = format!("cat >> '{0}'; echo >> '{0}'", told.display());
    let lines = || {
        std::fs::read_to_string(&told)
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count()
    };
    let (refusing, refused) = endpoint(503);
    let hooks = Hooks {
        command: Some(command.clone()),
        url: Some(refusing),
    };
    assert_eq!(hooks.deliver(&store).await.unwrap(), 0);
    assert_eq!(refused.lock().unwrap().len(), 1, "it was tried");
    assert_eq!(lines(), 1, "the command ran");
    assert_eq!(store.fleet_status().await.unwrap().hooks_pending, 1);

    // Delivery is tried again only after a delay; then an endpoint that accepts gets the
    // event, once, whatever the number of later deliveries, and the command, which had
    // taken it already, is not run again.
    let (accepting, accepted) = endpoint(200);
    let hooks = Hooks {
        command: Some(command),
        url: Some(accepting),
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(90);
    while accepted.lock().unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the refused event was never tried again"
        );
        hooks.deliver(&store).await.unwrap();
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    for _ in 0..3 {
        assert_eq!(hooks.deliver(&store).await.unwrap(), 0);
    }
    let bodies = accepted.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert_eq!(lines(), 1, "the command ran once");
    let event: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(event["event"], "expired");
    assert_eq!(event["name"], "ended");
    assert_eq!(store.fleet_status().await.unwrap().hooks_pending, 0);
}
