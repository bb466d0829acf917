//! End-to-end tests of `stet sync`, `stet history` and `stet store` against the sandbox bank
//! over real sockets, into SQLite files and a real PostgreSQL server.
//!
//! What they prove:
//! - a first sync stores exactly what the bank lists; a second one after no change adds
//!   nothing and costs one transactions page and one balances call per account;
//! - after the bank's clock moves (`POST /sandbox/advance`), exactly the new transactions are
//!   added and each pending one that was booked stays one row; after a re-consent
//!   (`POST /sandbox/reconsent`, new resource ids), nothing is added;
//! - a sync killed with SIGKILL at several points, then run again, gives the same store as an
//!   uninterrupted one; two syncs at the same time give the same store as one;
//! - 200,000 transactions through the sandbox's faults: none lost, none twice;
//! - bad stores say what to do and exit with the documented code.

#![allow(missing_docs)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use support::*;

const EXTENDED: &[&str] = &["--scope", "aisp", "--scope", "extended_transaction_history"];

/// A sandbox of `accounts` × `transactions` in pages of `page`, logged in with the whole
/// history.
fn bank(accounts: usize, transactions: usize, page: usize, faults: &str) -> Env {
    let (a, t, p) = (
        accounts.to_string(),
        transactions.to_string(),
        page.to_string(),
    );
    let mut extra = vec!["--accounts", &a, "--transactions", &t, "--page-size", &p];
    if !faults.is_empty() {
        extra.extend(["--faults", faults]);
    }
    let env = Env::with(&extra, "sandbox");
    env.login(EXTENDED);
    env
}

fn sqlite(env: &Env, name: &str) -> String {
    format!("sqlite:{}", env.home.path().join(name).display())
}

fn api_requests(env: &Env) -> u64 {
    sandbox_call(env, "GET", "/sandbox/stats", "")["apiRequests"]
        .as_u64()
        .expect("apiRequests")
}

/// `stet sync --store STORE`, the PSU present.
fn sync(env: &Env, store: &str) -> Out {
    let out = env.present(&["sync", "--store", store]);
    out.no_panic();
    out
}

/// The keys of a `stet history` row, sorted: the `stet_transactions` view's columns.
const HISTORY_KEYS: [&str; 18] = [
    "account_name",
    "amount",
    "booking_date",
    "counterparty",
    "credit_debit",
    "currency",
    "entry_reference",
    "first_seen",
    "iban",
    "label",
    "last_seen",
    "profile",
    "psu",
    "raw_json",
    "stable_id",
    "status",
    "transaction_date",
    "value_date",
];

/// What the store holds: stable id → (status, entry reference, amount, label), from
/// `stet history --output ndjson` (no network).
fn stored(env: &Env, store: &str) -> BTreeMap<String, (String, String, String, String)> {
    let out = env.run(&["history", "--store", store, "--output", "ndjson"]);
    out.ok();
    let mut rows = BTreeMap::new();
    for row in out.ndjson() {
        let s = |k: &str| row[k].as_str().unwrap_or_default().to_owned();
        let id = s("stable_id");
        assert!(id.starts_with("s1-") && id.len() == 35, "{row}");
        assert_eq!(
            row["raw_json"]["entryReference"], row["entry_reference"],
            "raw JSON kept"
        );
        // Outside a fleet, the PSU is the profile.
        assert_eq!(row["psu"], row["profile"], "{row}");
        // The view's columns, as docs/output.md and docs/store.md give them.
        let mut keys: Vec<&str> = row
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        assert_eq!(keys, HISTORY_KEYS, "{row}");
        let previous = rows.insert(
            id,
            (s("status"), s("entry_reference"), s("amount"), s("label")),
        );
        assert!(previous.is_none(), "a stable id twice: {row}");
    }
    rows
}

/// Entry reference → status, as the bank lists its transactions now.
fn listed(env: &Env) -> BTreeMap<String, String> {
    let out = env.present(&["transactions", "--all", "--output", "ndjson"]);
    out.ok();
    out.ndjson()
        .iter()
        .map(|t| {
            (
                t["entryReference"]
                    .as_str()
                    .expect("entryReference")
                    .to_owned(),
                t["status"].as_str().expect("status").to_owned(),
            )
        })
        .collect()
}

/// The store as entry reference → status: comparable with [`listed`].
fn by_reference(
    rows: &BTreeMap<String, (String, String, String, String)>,
) -> BTreeMap<String, String> {
    rows.values()
        .map(|(status, reference, _, _)| (reference.clone(), status.clone()))
        .collect()
}

fn incremental_syncs_follow_the_bank(store_for: impl Fn(&Env) -> String) {
    const ACCOUNTS: usize = 3;
    let env = bank(ACCOUNTS, 300, 50, "");
    let store = store_for(&env);

    // First sync: exactly what the bank lists.
    let first = sync(&env, &store);
    first.ok();
    let after_first = stored(&env, &store);
    assert_eq!(by_reference(&after_first), listed(&env));
    assert_eq!(after_first.len(), ACCOUNTS * 300);
    assert!(first.stderr.contains("300 new"), "{first}");

    // Second sync, nothing changed: nothing added, one page and one balances call each.
    let before = api_requests(&env);
    let second = sync(&env, &store);
    second.ok();
    assert_eq!(
        api_requests(&env) - before,
        1 + 2 * ACCOUNTS as u64,
        "the accounts list, then one transactions page and one balances call per account: {second}"
    );
    assert!(second.stderr.contains("0 new, 0 updated"), "{second}");
    assert_eq!(stored(&env, &store), after_first);

    // The bank's clock moves: new transactions, pending ones booked under new references.
    let advanced = sandbox_call(
        &env,
        "POST",
        "/sandbox/advance",
        r#"{"days": 3, "transactions_per_account": 5}"#,
    );
    let (added, booked) = (
        advanced["added"].as_u64().unwrap(),
        advanced["booked"].as_u64().unwrap(),
    );
    assert_eq!(added, 5 * ACCOUNTS as u64);
    assert!(
        booked > 0,
        "the sandbox's data has pending transactions to book: {advanced}"
    );
    let third = sync(&env, &store);
    third.ok();
    let after_advance = stored(&env, &store);
    assert_eq!(
        after_advance.len(),
        after_first.len() + added as usize,
        "exactly the new ones"
    );
    assert_eq!(
        by_reference(&after_advance),
        listed(&env),
        "each booked pending one is one row"
    );
    assert!(
        after_first.keys().all(|id| after_advance.contains_key(id)),
        "every stable id survives, the booked pending ones' too"
    );
    let reported: u64 = third
        .stderr
        .lines()
        .filter_map(|l| {
            l.split(", ")
                .find_map(|p| p.strip_suffix(" booked from pending"))
        })
        .map(|n| n.parse::<u64>().unwrap())
        .sum();
    assert_eq!(reported, booked, "{third}");

    // The PSU consents again: new resource ids, nothing new.
    let renamed = sandbox_call(&env, "POST", "/sandbox/reconsent", "");
    assert_eq!(renamed["accounts"].as_array().unwrap().len(), ACCOUNTS);
    let fourth = sync(&env, &store);
    fourth.ok();
    assert_eq!(
        stored(&env, &store),
        after_advance,
        "a re-consent adds no row"
    );
    let info = env.run(&["store", "info", "--store", &store, "--output", "json"]);
    let accounts = info.json_array();
    assert_eq!(accounts.len(), ACCOUNTS, "{info}");
    for a in &accounts {
        assert_eq!(
            keys(a),
            [
                "backend",
                "iban",
                "last_sync",
                "location",
                "name",
                "profile",
                "resource_id",
                "schema_version",
                "transactions"
            ],
            "{a}"
        );
    }
    assert!(
        accounts
            .iter()
            .all(|a| a["resource_id"].as_str().unwrap().ends_with("-R1"))
    );
}

#[test]
fn incremental_syncs_follow_the_bank_in_sqlite() {
    incremental_syncs_follow_the_bank(|env| sqlite(env, "stet.db"));
}

#[test]
fn incremental_syncs_follow_the_bank_in_postgres() {
    incremental_syncs_follow_the_bank(|_| stet_testkit::fresh_postgres_database("sync"));
}

#[test]
fn a_sync_killed_anywhere_then_rerun_gives_the_same_store() {
    let env = bank(4, 2_000, 50, "");
    let reference = sqlite(&env, "reference.db");
    sync(&env, &reference).ok();
    let expected = stored(&env, &reference);
    assert_eq!(expected.len(), 8_000);

    // Kill points spread over a sync's phases: opening and migrating, the first pages, between
    // and during accounts' writes, near the end.
    let t0 = Instant::now();
    let timed = sqlite(&env, "timed.db");
    sync(&env, &timed).ok();
    let whole = t0.elapsed();
    for (n, fraction) in [0.02, 0.2, 0.45, 0.7, 0.9].iter().enumerate() {
        let store = sqlite(&env, &format!("killed-{n}.db"));
        let mut running = env.spawn(&["sync", "--store", &store, "--psu-ip", PSU_IP]);
        std::thread::sleep(whole.mul_f64(*fraction));
        running.child.kill().expect("SIGKILL");
        let _ = running.child.wait();
        // The store opens, holds no partial account, and the next sync completes it. Killed
        // before it made the file (a loaded machine starts the process slowly), there is no
        // store yet: nothing was written, which is whole too.
        let file = store.strip_prefix("sqlite:").expect("a SQLite store");
        let partial = if std::path::Path::new(file).exists() {
            stored(&env, &store)
        } else {
            BTreeMap::new()
        };
        let accounts: BTreeSet<&str> = partial.values().map(|v| &v.1[..7]).collect();
        assert_eq!(
            partial.len(),
            accounts.len() * 2_000,
            "whole accounts only, after {fraction}"
        );
        sync(&env, &store).ok();
        assert_eq!(
            stored(&env, &store),
            expected,
            "killed at {fraction} of a sync, then rerun"
        );
    }
}

#[test]
fn two_syncs_at_the_same_time_give_the_same_store_as_one() {
    let env = bank(4, 1_000, 50, "");
    let reference = sqlite(&env, "reference.db");
    sync(&env, &reference).ok();
    let expected = stored(&env, &reference);
    for store in [
        sqlite(&env, "shared.db"),
        stet_testkit::fresh_postgres_database("sync"),
    ] {
        let a = env.spawn(&["sync", "--store", &store, "--psu-ip", PSU_IP]);
        let b = env.spawn(&["sync", "--store", &store, "--psu-ip", PSU_IP]);
        let (a, b) = (a.finish(), b.finish());
        a.ok();
        b.ok();
        assert_eq!(stored(&env, &store), expected, "{store}");
    }
}

#[test]
fn two_hundred_thousand_through_faults_none_lost_none_twice() {
    const ACCOUNTS: usize = 4;
    const PER_ACCOUNT: usize = 50_000;
    // The faults of tests/faults.rs: rate limits, 503 bursts, cut connections, slow answers,
    // tokens expiring mid-walk.
    let env = bank(
        ACCOUNTS,
        PER_ACCOUNT,
        500,
        "429:every=31:retry-after=1,503:every=43:burst=2,drop:every=23,slow:every=37:ms=2500,expire-token:after=40",
    );
    let text = std::fs::read_to_string(&env.config).unwrap().replace(
        "[profiles.sandbox]\n",
        "[profiles.sandbox]\ntimeout_secs = 1\n",
    );
    write_private(&env.config, &text);
    let store = sqlite(&env, "big.db");
    let t0 = Instant::now();
    sync(&env, &store).ok();
    let took = t0.elapsed();
    let rows = stored(&env, &store);
    let references: BTreeSet<&str> = rows.values().map(|v| v.1.as_str()).collect();
    let expected: BTreeSet<String> = (1..=ACCOUNTS)
        .flat_map(|a| (1..=PER_ACCOUNT).map(move |n| format!("ACC{a:04}-{n:06}")))
        .collect();
    assert_eq!(rows.len(), ACCOUNTS * PER_ACCOUNT, "none twice");
    assert_eq!(references.len(), expected.len());
    assert!(
        expected.iter().all(|r| references.contains(r.as_str())),
        "none lost"
    );
    eprintln!(
        "{} transactions synced through faults into SQLite in {took:.1?}",
        rows.len()
    );
    assert!(took < Duration::from_secs(3600));
}

#[test]
fn bad_stores_say_what_to_do() {
    let env = Env::new();
    // A scheme stet does not know: configuration, exit 78, the password never shown.
    let out = env.run(&["history", "--store", "mysql://u:hunter2@db/x"]);
    out.fails(78, "sqlite:PATH or postgres://");
    assert!(!out.stderr.contains("hunter2"), "{out}");
    // No store yet: history says to sync first.
    env.run(&["history", "--store", &sqlite(&env, "none.db")])
        .fails(66, "run `stet sync` first");
    // A server that is not there: exit 74, saying to check it runs.
    let out = env.run(&[
        "store",
        "migrate",
        "--store",
        "postgres://stet:hunter2@127.0.0.1:1/stet",
    ]);
    out.fails(74, "check that the database server runs");
    assert!(!out.stderr.contains("hunter2"), "{out}");
    // A server that is there, without the database named: exit 74, saying how to create it.
    let mut missing = url::Url::parse(&stet_testkit::postgres_url()).unwrap();
    missing.set_path("/stet_no_such_database");
    env.run(&["store", "migrate", "--store", missing.as_str()])
        .fails(74, "createdb");
    // A store made by a newer stet: refused, 78.
    let store = sqlite(&env, "future.db");
    env.run(&["store", "migrate", "--store", &store]).ok();
    let path = env.home.path().join("future.db");
    let status = std::process::Command::new(stet_testkit::system_tool("sqlite3", "sqlite3"))
        .arg(&path)
        .arg("INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (99, 'future', 1, X'00', 0)")
        .status()
        .unwrap();
    assert!(status.success());
    env.run(&["store", "info", "--store", &store])
        .fails(78, "upgrade stet");
    // A file that is not a database: nothing read as data, exit 74.
    std::fs::write(env.home.path().join("junk.db"), vec![b'x'; 4096]).unwrap();
    env.run(&["store", "info", "--store", &sqlite(&env, "junk.db")])
        .fails(74, "junk.db");
}

/// Without the PSU, each account's endpoints get 4 calls a day: syncs run unattended until an
/// account's budget is spent skip that account, say which and when to retry, exit 75 (the JSON
/// names the skipped accounts), keep what earlier syncs stored; once the account list's own
/// budget is spent a sync stops at once, saying when it resets; with the PSU present a sync
/// completes.
#[test]
fn unattended_syncs_skip_accounts_whose_budget_is_spent() {
    // Two pages of transactions per account: the transactions endpoint's 4 calls run out
    // before the account list's.
    let env = bank(2, 10, 5, "");
    let store = sqlite(&env, "budget.db");
    let unattended = || {
        let out = env.run(&["sync", "--store", &store, "-o", "json"]);
        out.no_panic();
        out
    };
    let mut runs = 0;
    let skipped = loop {
        runs += 1;
        assert!(runs <= 4, "the budget never ran out");
        let out = unattended();
        if out.code != 0 {
            break out;
        }
    };
    assert_eq!(skipped.code, 75, "{skipped}");
    assert!(
        skipped
            .stderr
            .contains("skipped, their unattended budget spent")
            && skipped.stderr.contains("retry after")
            && skipped.stderr.contains("--psu-ip"),
        "{skipped}"
    );
    let report: serde_json::Value = serde_json::from_str(&skipped.stdout).expect("the sync's JSON");
    assert_eq!(report["complete"], false, "{report}");
    let accounts = report["accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 2, "{report}");
    assert!(
        accounts
            .iter()
            .all(|a| a["outcome"] == "skipped" && a["retry_at"].is_string()),
        "{report}"
    );
    let before = stored(&env, &store);
    assert!(!before.is_empty());
    // Until the account list's budget is spent too: then nothing is called.
    let stopped = loop {
        runs += 1;
        assert!(runs <= 6, "the account list's budget never ran out");
        let out = unattended();
        if out.code == 75 && out.stdout.is_empty() {
            break out;
        }
    };
    assert!(
        stopped.stderr.contains("budget for accounts is spent")
            && stopped.stderr.contains("resets at"),
        "{stopped}"
    );
    // Nothing stored was lost, and the PSU present completes it.
    assert_eq!(stored(&env, &store), before);
    sync(&env, &store).ok();
    assert_eq!(stored(&env, &store), before, "nothing new at the bank");
}

/// `--account` syncs that account alone, `--full` reads the whole window again and adds
/// nothing, the overlap window is where an incremental sync starts, and `--all-profiles` syncs
/// every profile of the configuration into one store, each profile's accounts its own.
#[test]
fn sync_flags_pick_accounts_windows_and_profiles() {
    let env = bank(3, 30, 10, "");
    let store = sqlite(&env, "flags.db");
    let json = |extra: &[&str]| {
        let mut args = vec!["sync", "--store", &store, "-o", "json"];
        args.extend(extra);
        env.present(&args).json()
    };
    let ibans = || -> BTreeSet<String> {
        env.run(&["history", "--store", &store, "-o", "ndjson"])
            .ndjson()
            .iter()
            .map(|r| r["iban"].as_str().unwrap().to_owned())
            .collect()
    };
    let first = json(&["--account", "ACC0001"]);
    assert_eq!(first["accounts"].as_array().unwrap().len(), 1, "{first}");
    assert_eq!(ibans().len(), 1);
    json(&[]);
    assert_eq!(ibans().len(), 3);
    let before = stored(&env, &store);

    // Incremental: from the newest booked date minus the 7-day overlap; --full: the whole
    // window again (more calls), nothing new.
    let incremental = json(&[]);
    for a in incremental["accounts"].as_array().unwrap() {
        assert!(
            a["from"].is_string(),
            "an incremental sync has a window: {a}"
        );
        assert_eq!(a["new"], 0, "{a}");
    }
    let full = json(&["--full"]);
    for a in full["accounts"].as_array().unwrap() {
        assert!(
            a["from"].is_null(),
            "--full reads the bank's whole window: {a}"
        );
        assert_eq!(a["new"], 0, "{a}");
    }
    assert!(
        full["calls"].as_u64() > incremental["calls"].as_u64(),
        "{full}\n{incremental}"
    );
    assert_eq!(stored(&env, &store), before);

    // A second profile in the same configuration: both synced, one result each.
    let text = std::fs::read_to_string(&env.config).unwrap();
    write_private(
        &env.config,
        &format!("{text}\n[profiles.second]\n{}", env.profile_body(&[])),
    );
    env.login(&["--profile", "second"]);
    let both = json(&["--all-profiles"]);
    let profiles: BTreeSet<&str> = both
        .as_array()
        .expect("one result per profile")
        .iter()
        .map(|r| r["profile"].as_str().unwrap())
        .collect();
    assert_eq!(profiles, BTreeSet::from(["sandbox", "second"]));
    let info = env
        .run(&["store", "info", "--store", &store, "-o", "json"])
        .json_array();
    let per_profile = |p: &str| info.iter().filter(|a| a["profile"] == p).count();
    assert_eq!((per_profile("sandbox"), per_profile("second")), (3, 3));
}

/// Where the store is without `--store`: the platform's data folder, or the profile's `store`
/// key; `stet history` and `stet store info` read it offline (the bank stopped, no token).
#[test]
fn the_store_is_found_by_default_or_by_profile_and_read_offline() {
    let env = bank(2, 10, 10, "");
    env.present(&["sync"]).ok();
    let default = env.home.path().join("data/stet/stet.db");
    assert!(default.is_file(), "the default store, in XDG_DATA_HOME");
    let by_default = env.run(&["history", "-o", "ndjson"]).ndjson();
    assert!(!by_default.is_empty());

    let chosen = env.home.path().join("chosen.db");
    let text = std::fs::read_to_string(&env.config).unwrap();
    write_private(
        &env.config,
        &format!("{text}store = \"sqlite:{}\"\n", chosen.display()),
    );
    env.present(&["sync"]).ok();
    assert!(chosen.is_file(), "the profile's store");
    let by_profile = env.run(&["history", "-o", "ndjson"]).ndjson();
    assert_eq!(by_profile.len(), by_default.len());
    let info = env.run(&["store", "info", "-o", "json"]).json_array();
    assert!(
        info.iter()
            .all(|a| a["location"].as_str().unwrap().contains("chosen.db")),
        "{info:?}"
    );

    // Offline: the bank stopped, the tokens gone; the same history.
    let mut env = env;
    env.sandbox.stop();
    std::fs::remove_dir_all(env.home.path().join("data/stet/tokens")).unwrap();
    let offline = env.run(&["history", "-o", "ndjson"]).ndjson();
    assert!(offline == by_profile, "read from the profile's store alone");
    env.run(&["store", "info"]).ok();
}

/// A store another process holds locked past `--store-timeout`: the sync waits that long,
/// then says so and exits 75, writing nothing; once released, the sync goes through.
#[test]
fn a_store_locked_past_its_timeout_exits_75_and_writes_nothing() {
    use std::io::{BufRead as _, Write as _};
    let env = bank(2, 10, 10, "");
    let store = sqlite(&env, "locked.db");
    env.run(&["store", "migrate", "--store", &store]).ok();
    let path = env.home.path().join("locked.db");
    let mut holder = std::process::Command::new(stet_testkit::system_tool("sqlite3", "sqlite3"))
        .arg(&path)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = holder.stdin.take().unwrap();
    writeln!(stdin, "BEGIN EXCLUSIVE; SELECT 'held';").unwrap();
    stdin.flush().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(holder.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "held", "sqlite3 holds the lock");

    let out = env.present(&["sync", "--store", &store, "--store-timeout", "1"]);
    out.fails(75, "stayed locked by another process");
    assert!(out.stderr.contains("locked.db"), "{out}");
    drop(stdin);
    holder.wait().unwrap();
    assert!(
        env.run(&["history", "--store", &store, "-o", "ndjson"])
            .ndjson()
            .is_empty(),
        "nothing written"
    );
    sync(&env, &store).ok();
    assert!(
        !env.run(&["history", "--store", &store, "-o", "ndjson"])
            .ndjson()
            .is_empty()
    );
}
