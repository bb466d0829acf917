//! The fleet against the real PostgreSQL and the sandbox with many PSUs: `stet psu add`,
//! `stet schedule`, several `stet worker` processes (one killed mid-run), concurrent token
//! refresh, a revoked consent and its hook, bad input, and the metrics read by Python's
//! Prometheus parser.

mod support;

use std::collections::{BTreeSet, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use stet_transport::{Secret, Token};
use support::{Env, keys, write_private};

/// A base64 store key (32 bytes) for the tests.
const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const OTHER_KEY: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

struct Fleet {
    env: Env,
    store: String,
    hook_file: std::path::PathBuf,
}

/// A sandbox with `psus` PSUs (`extra` arguments too), a fresh PostgreSQL database, the key,
/// and a `[fleet]` table: a hook that appends each event to a file, and `cap` syncs at once.
fn fleet(psus: usize, extra: &[&str], cap: u32) -> Fleet {
    let psus_arg = psus.to_string();
    let mut args = vec![
        "--psus",
        psus_arg.as_str(),
        "--accounts",
        "2",
        "--transactions",
        "12",
        "--page-size",
        "50",
    ];
    args.extend_from_slice(extra);
    let mut env = Env::with(&args, "sandbox");
    let store = stet_testkit::fresh_postgres_database("fleet");
    let hook_file = env.home.path().join("hooks.ndjson");
    let text = std::fs::read_to_string(&env.config).unwrap();
    let text = format!(
        "{text}\n[fleet]\nhook_command = \"cat >> '{}'; echo >> '{}'\"\n\n[fleet.banks.sandbox]\nmax_concurrency = {cap}\n",
        hook_file.display(),
        hook_file.display()
    );
    write_private(&env.config, &text);
    env.vars.push(("STET_STORE".into(), store.clone()));
    env.vars.push(("STET_STORE_KEY".into(), KEY.into()));
    Fleet {
        env,
        store,
        hook_file,
    }
}

fn psql(url: &str, sql: &str) -> String {
    let out = Command::new("psql")
        .args([url, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

fn count(url: &str, sql: &str) -> i64 {
    psql(url, sql)
        .parse()
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// Consents of psu-1 … psu-N obtained from the sandbox itself (authorize with login_hint over
/// mTLS, the redirect's code, the token endpoint), as a `stet psu add --batch` file.
fn consents(f: &Fleet, names: impl Iterator<Item = usize>) -> std::path::PathBuf {
    let file = stet_transport::config::load_file(&f.env.config).unwrap();
    let profile =
        stet_transport::config::resolve(&file, Some("sandbox"), Some(&f.env.config), &|_| None)
            .unwrap();
    let transport = stet_transport::Transport::builder(&profile)
        .build()
        .unwrap();
    let oauth = transport.oauth().unwrap().clone();
    let s = &f.env.sandbox;
    let pem = |k: &str| std::fs::read(s.get(k)).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&pem("ca")).unwrap()])
        .identity(
            reqwest::Identity::from_pem(&[pem("qwac_cert"), pem("qwac_key")].concat()).unwrap(),
        )
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let scopes = vec!["aisp".to_owned()];
    let names: Vec<usize> = names.collect();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let lines: Vec<String> = rt.block_on(async {
        let mut out = Vec::new();
        for chunk in names.chunks(16) {
            let tasks = chunk.iter().map(|k| {
                let (oauth, http, scopes) = (oauth.clone(), http.clone(), scopes.clone());
                async move {
                    let hint = format!("psu-{k}");
                    let auth = oauth.authorize(&scopes, None, &[("login_hint".into(), hint.clone())]).unwrap();
                    let r = http.get(auth.url.as_str()).send().await.unwrap();
                    assert_eq!(r.status().as_u16(), 302, "authorize {hint}");
                    let location = r.headers()["location"].to_str().unwrap().to_owned();
                    let url = url::Url::parse(&location).unwrap();
                    let code = url.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
                    let t: Token = oauth.exchange_code(&Secret::new(code), &auth.pkce_verifier, &scopes).await.unwrap();
                    serde_json::json!({
                        "name": hint,
                        "token": {
                            "access_token": t.access_token.expose(),
                            "refresh_token": t.refresh_token.as_ref().map(|r| r.expose().to_owned()),
                            "expires_in": t.expires_at.map(|at| at.saturating_sub(t.obtained_at)),
                            "scope": t.scopes.join(" "),
                            "token_type": "Bearer",
                        }
                    })
                    .to_string()
                }
            });
            out.extend(futures_util::future::join_all(tasks).await);
        }
        out
    });
    let path = f.env.home.path().join("consents.ndjson");
    write_private(&path, &(lines.join("\n") + "\n"));
    path
}

fn add_all(f: &Fleet, n: usize) -> std::path::PathBuf {
    let batch = consents(f, 1..=n);
    let out = f.env.run(&[
        "psu",
        "add",
        "--profile",
        "sandbox",
        "--batch",
        batch.to_str().unwrap(),
        "-o",
        "json",
        "-q",
    ]);
    assert_eq!(out.json_array().len(), n, "{out}");
    batch
}

fn worker(f: &Fleet, id: &str, extra: &[&str]) -> Child {
    let mut cmd = f.env.command(&[
        "worker",
        "--exit-when-idle",
        "--worker-id",
        id,
        "--poll-ms",
        "200",
    ]);
    cmd.args(extra).stdout(Stdio::null()).stderr(Stdio::piped());
    cmd.spawn().expect("spawn stet worker")
}

fn wait_ok(child: Child, what: &str) -> String {
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "{what} exited {:?}: {stderr}",
        out.status
    );
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    stderr
}

/// The events the hook command appended to its file, one JSON object a line.
fn hook_events(f: &Fleet) -> Vec<Value> {
    std::fs::read_to_string(&f.hook_file)
        .unwrap_or_default()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn stats(f: &Fleet) -> Value {
    let s = &f.env.sandbox;
    let origin = s
        .get("authorize_url")
        .trim_end_matches("/authorize")
        .to_owned();
    let ca = std::fs::read(s.get("ca")).unwrap();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
            .build()
            .unwrap();
        let body = http
            .get(format!("{origin}/sandbox/stats"))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        serde_json::from_slice::<Value>(&body).unwrap()
    })
}

fn revoke(f: &Fleet, psu: &str) {
    let s = &f.env.sandbox;
    let origin = s
        .get("authorize_url")
        .trim_end_matches("/authorize")
        .to_owned();
    let ca = std::fs::read(s.get("ca")).unwrap();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
            .build()
            .unwrap();
        let r = http
            .post(format!("{origin}/sandbox/revoke"))
            .header("content-type", "application/json")
            .body(serde_json::json!({ "psu": psu }).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
    });
}

/// 3 workers, 300 connections, one worker SIGKILLed while it holds leases: every job ran
/// to the end exactly once, every PSU's transactions are stored once, the bank saw at most
/// 4 unattended calls per account and endpoint, and the per-bank cap held.
#[test]
fn three_workers_sync_three_hundred_psus_once_even_when_one_is_killed() {
    let n = 300;
    let cap = 3;
    let f = fleet(n, &[], cap);
    let batch = add_all(&f, n);
    let listed = f.env.run(&["psu", "list", "-o", "json"]).json_array();
    assert_eq!(listed.len(), n);
    assert!(
        listed
            .iter()
            .all(|c| c["state"] == "active" && c.get("accessToken").is_none())
    );
    // No token in clear in the database.
    let sealed = psql(
        &f.store,
        "SELECT encode(sealed, 'escape') FROM connection_tokens LIMIT 5",
    );
    assert!(!sealed.contains("access_token"), "tokens must be sealed");
    f.env.run(&["schedule", "--now"]).ok();

    // The one to kill gets a short lease (3 s), so its jobs are taken over soon after its
    // death; the others' leases are longer, renewed every third.
    let victim = worker(&f, "victim", &["--concurrency", "4", "--lease", "3"]);
    let start = Instant::now();
    while count(
        &f.store,
        "SELECT COUNT(*) FROM jobs WHERE lease_owner = 'victim' AND lease_until > now()",
    ) == 0
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the victim never leased a job"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let others: Vec<Child> = (1..=2)
        .map(|i| {
            worker(
                &f,
                &format!("w{i}"),
                &["--concurrency", "4", "--lease", "10"],
            )
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let mut victim = victim;
    victim.kill().unwrap();
    let _ = victim.wait();
    for (i, w) in others.into_iter().enumerate() {
        wait_ok(w, &format!("worker w{}", i + 1));
    }

    // Every connection's job ran to the end exactly once; the killed worker's leased jobs
    // were taken over after their lease.
    let done = count(
        &f.store,
        "SELECT COUNT(*) FROM job_runs WHERE outcome = 'done'",
    );
    let distinct = count(
        &f.store,
        "SELECT COUNT(DISTINCT connection_id) FROM job_runs WHERE outcome = 'done'",
    );
    assert_eq!(
        (done, distinct),
        (n as i64, n as i64),
        "each job done exactly once"
    );
    // No run ended otherwise (a job run twice at once would end `lost_lease` or `failed`
    // for one of them), and no two runs of a connection overlapped in time.
    assert_eq!(
        psql(
            &f.store,
            "SELECT coalesce(string_agg(DISTINCT outcome, ','), '') FROM job_runs WHERE outcome <> 'done'"
        )
        .trim(),
        "",
        "every recorded run ended done"
    );
    assert_eq!(
        count(
            &f.store,
            "SELECT COUNT(*) FROM job_runs a JOIN job_runs b ON a.connection_id = b.connection_id \
             AND a.id < b.id AND a.started_at < b.finished_at AND b.started_at < a.finished_at"
        ),
        0,
        "no two runs of one connection at once"
    );
    assert_eq!(
        count(&f.store, "SELECT COUNT(*) FROM jobs WHERE due_at <= now()"),
        0
    );
    // Each PSU's 2 accounts, every transaction the bank listed (within its default window)
    // stored once: the rows are what the completed runs were listed, no stable id twice, each
    // account named by its connection in the view.
    assert_eq!(
        count(
            &f.store,
            "SELECT COUNT(DISTINCT iban) FROM accounts WHERE connection_id IS NOT NULL"
        ),
        (n * 2) as i64
    );
    assert_eq!(
        count(
            &f.store,
            "SELECT COUNT(DISTINCT connection_id) FROM accounts"
        ),
        n as i64
    );
    let rows = count(&f.store, "SELECT COUNT(*) FROM stet_transactions");
    assert!(rows >= n as i64, "{rows}");
    // The same consents synced into another database by one worker that nobody kills: the
    // same transactions, none missing, none twice.
    let control = stet_testkit::fresh_postgres_database("fleet_control");
    let mut add = f.env.command(&[
        "psu",
        "add",
        "--profile",
        "sandbox",
        "--batch",
        batch.to_str().unwrap(),
        "-q",
    ]);
    add.env("STET_STORE", &control);
    support::finished(&["psu add (control)"], add).ok();
    let mut schedule = f.env.command(&["schedule", "--now", "-q"]);
    schedule.env("STET_STORE", &control);
    support::finished(&["schedule (control)"], schedule).ok();
    let mut calm = f.env.command(&[
        "worker",
        "--exit-when-idle",
        "--concurrency",
        "3",
        "--poll-ms",
        "200",
    ]);
    calm.env("STET_STORE", &control)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    wait_ok(calm.spawn().unwrap(), "control worker");
    let all = "SELECT md5(string_agg(psu || ' ' || iban || ' ' || stable_id || ' ' || amount, ',' ORDER BY psu, iban, stable_id)) FROM stet_transactions";
    assert_eq!(
        count(&control, "SELECT COUNT(*) FROM stet_transactions"),
        rows
    );
    assert_eq!(
        psql(&f.store, all),
        psql(&control, all),
        "the same transactions as an undisturbed sync"
    );
    assert_eq!(
        count(
            &f.store,
            "SELECT COUNT(DISTINCT (iban, stable_id)) FROM stet_transactions"
        ),
        rows
    );
    assert_eq!(
        count(
            &f.store,
            "SELECT COUNT(DISTINCT psu) FROM stet_transactions"
        ),
        n as i64
    );
    let s = stats(&f);
    assert!(s["unattendedPeak"].as_u64().unwrap() <= 4, "{s}");
    assert_eq!(
        s["unattendedRefused"],
        0,
        "{s} {}",
        psql(
            &f.store,
            "SELECT string_agg(outcome || ' ' || coalesce(error, ''), '; ') FROM job_runs WHERE outcome <> 'done'"
        )
    );
    let peaks = s["peakConcurrencyByClient"].as_object().unwrap();
    assert!(!peaks.is_empty(), "{s}");
    for (client, peak) in peaks {
        assert!(
            peak.as_u64().unwrap() <= u64::from(cap),
            "client {client}: {peak} at once, cap {cap}: {s}"
        );
    }
    // The fleet's summary agrees.
    let status = f.env.run(&["fleet", "status", "-o", "json"]).json();
    assert_eq!(status["connections"]["active"], n);
    assert_eq!(status["jobs"]["due"], 0);
}

/// Tokens that expire within 4 s, 3 workers: each needed refresh is made once (the row lock),
/// no refresh token is presented twice; and the vault itself, asked by 3 tasks with their
/// own pools at once, refreshes once.
#[test]
fn expired_tokens_are_refreshed_once_whatever_the_workers() {
    let n = 12;
    let f = fleet(n, &["--token-lifetime", "4"], 4);
    add_all(&f, n);
    std::thread::sleep(Duration::from_millis(4100));
    f.env.run(&["schedule", "--now"]).ok();
    let workers: Vec<Child> = (1..=3)
        .map(|i| worker(&f, &format!("r{i}"), &["--concurrency", "4"]))
        .collect();
    for w in workers {
        wait_ok(w, "worker");
    }
    let s = stats(&f);
    assert_eq!(s["refreshReused"], 0, "{s}");
    assert_eq!(s["refreshGrants"], n, "one refresh per connection: {s}");
    assert_eq!(
        count(
            &f.store,
            "SELECT COUNT(*) FROM job_runs WHERE outcome = 'done'"
        ),
        n as i64
    );

    // The vault directly: three tasks, each with its own pool, ask for psu-1's token at once.
    std::thread::sleep(Duration::from_millis(4100));
    let before = stats(&f)["refreshGrants"].as_u64().unwrap();
    let file = stet_transport::config::load_file(&f.env.config).unwrap();
    let profile =
        stet_transport::config::resolve(&file, Some("sandbox"), Some(&f.env.config), &|_| None)
            .unwrap();
    let transport = stet_transport::Transport::builder(&profile)
        .build()
        .unwrap();
    let oauth = transport.oauth().unwrap().clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let tokens: Vec<String> = rt.block_on(async {
        let id: i64 = psql(&f.store, "SELECT id FROM connections WHERE name = 'psu-1'")
            .parse()
            .unwrap();
        let mut tasks = Vec::new();
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(3));
        for _ in 0..3 {
            let (url, oauth, start) = (f.store.clone(), oauth.clone(), start.clone());
            tasks.push(tokio::spawn(async move {
                let store = stet_store::Store::open(
                    &stet_store::Location::parse(&url).unwrap(),
                    &stet_store::OpenOptions::default(),
                )
                .await
                .unwrap();
                let key =
                    std::sync::Arc::new(stet_fleet::StoreKey::from_base64(KEY, "test").unwrap());
                let vault = stet_fleet::Vault::new(store, key, Duration::from_secs(60));
                // Pools opened: now all at once.
                start.wait().await;
                let (t, _) = vault.access_token(id, Some(&oauth)).await.unwrap();
                t.access_token.expose().to_owned()
            }));
        }
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    assert_eq!(
        tokens.iter().collect::<HashSet<_>>().len(),
        1,
        "all three got the one refreshed token"
    );
    let s = stats(&f);
    assert_eq!(s["refreshGrants"].as_u64().unwrap(), before + 1, "{s}");
    assert_eq!(s["refreshReused"], 0, "{s}");
}

/// A PSU revokes the consent at the bank: the connection stops (revoked), its job is gone,
/// the hook is told once even after further runs, and the other connections sync.
#[test]
fn a_revoked_consent_stops_its_connection_and_fires_the_hook_once() {
    let n = 4;
    let f = fleet(n, &[], 4);
    add_all(&f, n);
    revoke(&f, "psu-2");
    // `schedule` and `worker` print the shapes docs/output.md gives them.
    let planned = f.env.run(&["schedule", "--now", "-o", "json"]).json();
    assert_eq!(keys(&planned), ["created", "expired", "madeDue"]);
    assert_eq!(planned["expired"], 0, "{planned}");
    let summary = f.env.run(&[
        "worker",
        "--exit-when-idle",
        "--worker-id",
        "a",
        "--poll-ms",
        "200",
        "-o",
        "json",
    ]);
    let summary = summary.json();
    assert_eq!(keys(&summary), ["claimed", "done", "other", "workerId"]);
    assert_eq!(summary["workerId"], "a");
    // Every other connection synced once; the revoked consent's job never ended `done` (it
    // may be claimed again after a refused refresh).
    assert_eq!(summary["done"], n - 1, "{summary}");
    let (claimed, other) = (&summary["claimed"], &summary["other"]);
    assert!(other.as_u64() >= Some(1), "{summary}");
    assert_eq!(
        claimed.as_u64(),
        Some(n as u64 - 1 + other.as_u64().unwrap()),
        "{summary}"
    );
    let show = f.env.run(&["psu", "show", "psu-2", "-o", "json"]).json();
    assert_eq!(show["state"], "revoked", "{show}");
    // The shape docs/output.md documents, and never a token.
    assert_eq!(
        keys(&show),
        [
            "bank",
            "consentValidUntil",
            "createdAt",
            "hasTokens",
            "id",
            "lastError",
            "name",
            "needsPsuSince",
            "nextDue",
            "profile",
            "scheduleOffsetSeconds",
            "scopes",
            "state"
        ]
    );
    let docs = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/output.md"),
    )
    .unwrap();
    assert!(docs.contains("### `stet psu list`") && docs.contains("### `stet fleet status`"));
    let csv = f.env.run(&["psu", "list", "-o", "csv"]);
    let (header, rows) = csv.csv();
    assert_eq!(
        header,
        [
            "id",
            "profile",
            "name",
            "state",
            "next_due",
            "consent_valid_until",
            "last_error"
        ]
    );
    assert_eq!(rows.len(), n);
    assert!(show["nextDue"].is_null(), "{show}");
    assert_eq!(
        count(
            &f.store,
            "SELECT COUNT(*) FROM jobs j JOIN connections c ON c.id = j.connection_id WHERE c.name = 'psu-2'"
        ),
        0
    );
    assert_eq!(
        count(
            &f.store,
            "SELECT COUNT(DISTINCT connection_id) FROM job_runs WHERE outcome = 'done'"
        ),
        (n - 1) as i64
    );
    // `stet history --psu`: one connection's transactions, named as the view names them.
    let rows = f
        .env
        .run(&["history", "--psu", "psu-1", "-o", "ndjson"])
        .ndjson();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r["psu"] == "psu-1"), "{rows:?}");
    assert_eq!(
        rows.len() as i64,
        count(
            &f.store,
            "SELECT COUNT(*) FROM stet_transactions WHERE psu = 'psu-1'"
        )
    );
    // Further runs: nothing for psu-2, and no second event.
    f.env.run(&["schedule", "--now"]).ok();
    let again: Vec<Child> = (0..2).map(|i| worker(&f, &format!("b{i}"), &[])).collect();
    for w in again {
        wait_ok(w, "worker");
    }
    let events = hook_events(&f);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event"], "revoked");
    assert_eq!(events[0]["name"], "psu-2");
    assert!(
        !events[0].to_string().contains("token\":"),
        "no token in the event"
    );
    // The PSU is here: an on-demand sync run at once, back to its slots afterwards; none for
    // the revoked connection.
    let synced = f
        .env
        .present(&["psu", "sync", "psu-1", "--wait", "-o", "json"])
        .json();
    assert_eq!(
        keys(&synced),
        ["id", "lastError", "name", "outcome", "profile"]
    );
    assert_eq!(synced["outcome"], "done", "{synced}");
    assert_eq!(synced["name"], "psu-1", "{synced}");
    assert_eq!(
        count(
            &f.store,
            "SELECT COUNT(*) FROM job_runs r JOIN connections c ON c.id = r.connection_id WHERE c.name = 'psu-1' AND r.job_kind = 'on_demand' AND r.outcome = 'done'"
        ),
        1
    );
    assert_eq!(
        count(
            &f.store,
            "SELECT COUNT(*) FROM jobs j JOIN connections c ON c.id = j.connection_id WHERE c.name = 'psu-1' AND j.kind = 'scheduled' AND j.due_at > now()"
        ),
        1
    );
    f.env
        .present(&["psu", "sync", "psu-2"])
        .fails(77, "not active");
    let status = f.env.run(&["fleet", "status", "-o", "json"]).json();
    assert_eq!(
        keys(&status),
        [
            "connections",
            "hookEventsPending",
            "jobs",
            "runsLastHour",
            "unattendedCalls24h"
        ]
    );
    assert_eq!(status["hookEventsPending"], 0, "{status}");
    assert_eq!(status["connections"]["revoked"], 1, "{status}");
    assert_eq!(status["connections"]["active"], n - 1, "{status}");
    // Removing prints the connection as removed, in the shape of `psu show`.
    let removed = f.env.run(&["psu", "remove", "psu-2", "-o", "json"]).json();
    assert_eq!(keys(&removed), keys(&show), "{removed}");
    assert_eq!(removed["state"], "removed", "{removed}");
    assert_eq!(removed["hasTokens"], false, "{removed}");
}

/// A bank that keeps refusing the access token, even one refreshed for the run (its consent
/// ended without the refresh being refused): after three runs in a row the connection needs
/// the PSU, is no longer scheduled, and the hook is told once.
#[test]
fn a_bank_refusing_fresh_tokens_makes_the_connection_need_the_psu() {
    // Every access token is good for one call: a sync (accounts, then their balances and
    // transactions) never gets through.
    let f = fleet(1, &["--faults", "expire-token:after=1"], 4);
    add_all(&f, 1);
    f.env.run(&["schedule", "--now"]).ok();
    wait_ok(worker(&f, "a", &[]), "worker");
    let show = f.env.run(&["psu", "show", "psu-1", "-o", "json"]).json();
    assert_eq!(show["state"], "needs_psu", "{show}");
    assert!(show["needsPsuSince"].is_string(), "{show}");
    assert!(show["nextDue"].is_null(), "{show}");
    let outcomes = psql(
        &f.store,
        "SELECT string_agg(outcome, ',' ORDER BY id) FROM job_runs",
    );
    assert_eq!(outcomes.trim(), "stale_token,stale_token,needs_psu");
    // Later runs: no job for it, no second event.
    f.env.run(&["schedule", "--now"]).ok();
    wait_ok(worker(&f, "b", &[]), "worker");
    assert_eq!(count(&f.store, "SELECT COUNT(*) FROM jobs"), 0);
    assert_eq!(count(&f.store, "SELECT COUNT(*) FROM job_runs"), 3);
    let events = hook_events(&f);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["event"], "needs_psu");
    assert_eq!(events[0]["name"], "psu-1");
    f.env
        .present(&["psu", "sync", "psu-1"])
        .fails(77, "not active");
}

/// Bad input: a SQLite store, no key, a wrong key: each a clear error, nothing changed.
#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let f = fleet(2, &[], 2);
    let sqlite = format!("sqlite:{}", f.env.home.path().join("one.db").display());
    let out = f
        .env
        .run(&["worker", "--store", &sqlite, "--exit-when-idle"]);
    out.fails(78, "needs PostgreSQL");
    assert!(
        !f.env.home.path().join("one.db").exists(),
        "nothing created"
    );

    add_all(&f, 2);
    let snapshot = || {
        psql(
            &f.store,
            "SELECT string_agg(connection_id || ':' || encode(sealed, 'hex') || ':' || stale, ',' ORDER BY connection_id) FROM connection_tokens",
        ) + &psql(
            &f.store,
            "SELECT string_agg(j.id || c.state || j.due_at || coalesce(j.lease_owner, '-'), ',' ORDER BY j.id) FROM jobs j JOIN connections c ON c.id = j.connection_id",
        ) + &psql(&f.store, "SELECT COUNT(*) FROM job_runs")
    };
    let before = snapshot();

    let mut no_key = f.env.command(&["worker", "--exit-when-idle"]);
    no_key.env_remove("STET_STORE_KEY");
    let out = support::finished(&["worker without a key"], no_key);
    out.fails(78, "STET_STORE_KEY");
    assert!(out.stderr.contains("store_key_file"), "{out}");

    let mut wrong = f.env.command(&["worker", "--exit-when-idle"]);
    wrong.env("STET_STORE_KEY", OTHER_KEY);
    let out = support::finished(&["worker with another key"], wrong);
    out.fails(65, "does not open the tokens of connection");
    assert_eq!(snapshot(), before, "nothing changed");

    // Adding with another key would seal tokens no worker could open with the first.
    let mut other = f
        .env
        .command(&["psu", "add", "--name", "x", "--token-env", "T"]);
    other
        .env("T", "an-access-token")
        .env("STET_STORE_KEY", OTHER_KEY);
    support::finished(&["psu add with another key"], other).fails(65, "does not open the tokens");
    assert_eq!(snapshot(), before, "nothing changed");

    let mut bad = f
        .env
        .command(&["psu", "add", "--name", "x", "--token-env", "T"]);
    bad.env("T", "an-access-token")
        .env("STET_STORE_KEY", "c2hvcnQ=");
    support::finished(&["psu add with a short key"], bad).fails(78, "32 bytes");
    assert_eq!(snapshot(), before, "nothing changed");

    // The PSU's sync run here with another key: refused before anything is queued.
    let mut here = f
        .env
        .command(&["psu", "sync", "psu-1", "--wait", "--psu-ip", "192.0.2.7"]);
    here.env("STET_STORE_KEY", OTHER_KEY);
    support::finished(&["psu sync --wait with another key"], here)
        .fails(65, "does not open the tokens");
    assert_eq!(snapshot(), before, "nothing queued");
}

/// The metrics, scraped while the worker runs and read by Python's Prometheus parser, show
/// the jobs done.
#[test]
fn metrics_parse_with_prometheus_client_and_count_the_jobs() {
    let n = 6;
    let f = fleet(n, &[], 2);
    // Calls a second too: the bucket is taken before each call, by every worker.
    let text = std::fs::read_to_string(&f.env.config).unwrap();
    write_private(&f.env.config, &format!("{text}max_calls_per_second = 20\n"));
    add_all(&f, n);
    f.env.run(&["schedule", "--now"]).ok();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let addr = format!("127.0.0.1:{port}");
    // Not --exit-when-idle: scraped after the queue drained, then stopped with SIGTERM.
    let mut cmd = f
        .env
        .command(&["worker", "--metrics-addr", &addr, "--poll-ms", "200"]);
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let child = cmd.spawn().unwrap();
    let start = Instant::now();
    let text = loop {
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "the jobs never ran"
        );
        std::thread::sleep(Duration::from_millis(200));
        let Ok(body) = scrape(&addr) else { continue };
        if body.contains(&format!("stet_fleet_jobs_done_total {n}")) {
            break body;
        }
    };
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    wait_ok(child, "worker");
    let script = r##"
import sys
from prometheus_client.parser import text_string_to_metric_families
done = None
ok_calls = None
names = set()
values = {}
for family in text_string_to_metric_families(sys.stdin.read().replace("# EOF\n", "")):
    names.add(family.name)
    for s in family.samples:
        if not s.labels or set(s.labels) <= {"le"}:
            values.setdefault(s.name, []).append(s.value)
        if s.name == "stet_fleet_jobs_done_total":
            done = s.value
        if s.name == "stet_fleet_bank_calls_total" and s.labels == {"bank": "sandbox", "status": "ok"}:
            ok_calls = s.value
assert "stet_fleet_bank_calls" in names, names
assert "stet_fleet_sync_duration_seconds" in names, names
one = lambda name: int(values[name][0])
print(int(done), int(ok_calls), one("stet_fleet_jobs_claimed_total"),
      one("stet_fleet_budget_used_total"), one("stet_fleet_jobs_running"),
      one("stet_fleet_sync_duration_seconds_count"), one("stet_fleet_sync_transactions_count"),
      one("stet_fleet_sync_transactions_sum"))
"##;
    let mut py = Command::new(stet_testkit::python())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    py.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = py.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Each sync: the accounts, and per account (2) a page of transactions and the balances,
    // every call unattended (counted against the budget); each job claimed once, none left
    // running; one duration and one size per sync, the sizes adding up to what was stored.
    let stored = count(&f.store, "SELECT COUNT(*) FROM stet_transactions");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("{n} {} {n} {} 0 {n} {n} {stored}", n * 5, n * 5)
    );
    assert_eq!(
        count(
            &f.store,
            "SELECT COUNT(*) FROM bank_rates WHERE bank = 'sandbox'"
        ),
        1
    );
}

fn scrape(addr: &str) -> std::io::Result<String> {
    use std::io::{Read as _, Write as _};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    Ok(out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default())
}

/// The store key read from the file `[fleet] store_key_file` names (STET_STORE_KEY unset)
/// opens the tokens sealed with it, and a PSU added from a bare access token (no refresh
/// token) is stored sealed, never in clear.
#[test]
fn the_store_key_from_a_file_and_a_psu_from_a_bare_access_token() {
    let mut f = fleet(1, &[], 2);
    add_all(&f, 1);
    let key_file = f.env.home.path().join("store.key");
    write_private(&key_file, &format!("{KEY}\n"));
    let text = std::fs::read_to_string(&f.env.config).unwrap();
    write_private(
        &f.env.config,
        &text.replace(
            "[fleet]\n",
            &format!(
                "[fleet]\nstore_key_file = {:?}\n",
                key_file.display().to_string()
            ),
        ),
    );
    f.env.vars.retain(|(k, _)| k != "STET_STORE_KEY");

    let token = "a-bare-access-token-Zq81";
    let mut add = f.env.command(&[
        "psu",
        "add",
        "--name",
        "bare",
        "--token-env",
        "T",
        "-o",
        "json",
    ]);
    add.env("T", token);
    let added = support::finished(&["psu add with a bare token"], add).json();
    assert_eq!(
        (&added["name"], &added["hasTokens"]),
        (&Value::from("bare"), &Value::from(true)),
        "{added}"
    );
    assert_eq!(
        count(
            &f.store,
            &format!(
                "SELECT COUNT(*) FROM connection_tokens WHERE position('{token}' in encode(sealed, 'escape')) > 0"
            )
        ),
        0,
        "sealed, not in clear"
    );
    // The key from the file opens every sealed token: the PSU's sync runs here.
    let synced = f
        .env
        .present(&["psu", "sync", "psu-1", "--wait", "-o", "json"])
        .json();
    assert_eq!(synced["outcome"], "done", "{synced}");
}

/// A connection added is due at once (its first sync); a plain `stet schedule` (no --now)
/// creates the jobs that are missing at the connection's next slot, within the next 6 hours
/// and at its own offset, and nothing when none is missing.
#[test]
fn a_plain_schedule_spreads_the_next_slots() {
    let n = 3;
    let f = fleet(n, &[], 2);
    add_all(&f, n);
    let planned = f.env.run(&["schedule", "-o", "json"]).json();
    assert_eq!(
        planned["created"], 0,
        "every connection has its job: {planned}"
    );
    let status = f.env.run(&["fleet", "status", "-o", "json"]).json();
    assert_eq!(status["jobs"]["due"], n, "first syncs at once: {status}");
    // A job lost (deleted by hand): the next plain schedule makes it again, at its slot.
    let lost = psql(&f.store, "SELECT min(id) FROM connections");
    psql(
        &f.store,
        &format!("DELETE FROM jobs WHERE connection_id = {}", lost.trim()),
    );
    let planned = f.env.run(&["schedule", "-o", "json"]).json();
    assert_eq!(
        (&planned["created"], &planned["madeDue"]),
        (&Value::from(1), &Value::from(0)),
        "{planned}"
    );
    let status = f.env.run(&["fleet", "status", "-o", "json"]).json();
    assert_eq!(
        (&status["jobs"]["total"], &status["jobs"]["due"]),
        (&Value::from(n), &Value::from(n - 1)),
        "{status}"
    );
    let list = f.env.run(&["psu", "list", "-o", "json"]).json_array();
    let remade = list
        .iter()
        .find(|c| c["id"].as_i64() == lost.trim().parse().ok())
        .expect("the connection whose job was lost");
    let due = time::OffsetDateTime::parse(
        remade["nextDue"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let now = time::OffsetDateTime::now_utc();
    assert!(
        due > now && due <= now + time::Duration::hours(6),
        "the next of 4 slots a day: {remade}"
    );
    let offsets: BTreeSet<i64> = list
        .iter()
        .map(|c| c["scheduleOffsetSeconds"].as_i64().unwrap())
        .collect();
    assert_eq!(
        offsets.len(),
        n,
        "each connection at its own offset: {list:?}"
    );
}
