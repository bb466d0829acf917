//! `stet sync` for Powens profiles, end to end: the `stet` binary against
//! `stet sandbox serve --powens` over real sockets, into SQLite files and a real PostgreSQL
//! server.
//!
//! What they prove:
//! - a first sync stores exactly what the mock lists for the enabled accounts (Powens' ids as
//!   the stable ids, Powens' JSON as received), walking the cursor links page by page; a
//!   second one adds nothing and asks only from the last sync minus the overlap;
//! - after the mock's clock moves (`POST /sandbox/powens/advance`), exactly the new
//!   transactions are added, and a coming one booked under the same id, or under a new id
//!   (the coming one deleted), stays one row; a booked one the bank deletes is kept, marked
//!   `DELD`, and so is one far older than the window (Powens' `last_update` listing);
//! - `--refresh` has Powens read the bank first (what it had not read appears), and a
//!   connection Powens finds up to date (409) is read as it is;
//! - a connection that needs the PSU (or waits on its bank) fails its own line with what to
//!   run and the documented exit code; the other connection is synced; `--all-profiles`
//!   mixes a STET bank and Powens and goes on past the blocked one;
//! - a sync killed with SIGKILL at several points, then run again, gives the same store as an
//!   uninterrupted one.

#![allow(missing_docs)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde_json::Value;
use support::powens::*;
use support::*;

/// The accounts the PSU enables: the checking account (IBAN), the deferred card (no IBAN:
/// keyed by its namespaced Powens id) and the USD account. The savings account stays
/// disabled.
const ENABLED: [i64; 3] = [1001, 1003, 1004];

/// The mock, a working connection to the test connector, three accounts enabled.
fn connected() -> Env {
    let env = powens_env(&[]);
    connect(&env, "par").ok();
    let ids: Vec<String> = ENABLED.iter().map(i64::to_string).collect();
    let mut args = vec!["accounts", "enable"];
    args.extend(ids.iter().map(String::as_str));
    env.run(&args).ok();
    env
}

fn sqlite(env: &Env, name: &str) -> String {
    format!("sqlite:{}", env.home.path().join(name).display())
}

/// `stet sync --store STORE --limit LIMIT`.
fn sync(env: &Env, store: &str, limit: u32) -> Out {
    let out = env.run(&["sync", "--store", store, "--limit", &limit.to_string()]);
    out.no_panic();
    out
}

/// Powens id → (stable id, status, Powens' JSON): what the store holds, from
/// `stet history --output ndjson` (no network).
fn stored(env: &Env, store: &str) -> BTreeMap<i64, (String, String, Value)> {
    let out = env.run(&["history", "--store", store, "--output", "ndjson"]);
    out.ok();
    let mut rows = BTreeMap::new();
    for row in out.ndjson() {
        let id = row["stable_id"].as_str().expect("stable_id").to_owned();
        assert!(
            id.starts_with("p1-") && id.len() <= 35 && id.split('-').count() == 3,
            "{row}"
        );
        let raw = row["raw_json"].clone();
        let powens_id = raw["id"].as_i64().expect("Powens' own JSON, with its id");
        let status = row["status"].as_str().expect("status").to_owned();
        let previous = rows.insert(powens_id, (id, status, raw));
        assert!(previous.is_none(), "a Powens transaction twice: {row}");
    }
    rows
}

/// Powens id → (status, JSON): what the mock lists for the enabled accounts of `connections`,
/// deleted ones left out.
fn listed(env: &Env, connections: &[i64]) -> BTreeMap<i64, (String, Value)> {
    let all = sandbox_call(env, "GET", "/sandbox/powens/transactions", "");
    let mut out = BTreeMap::new();
    for account in all["accounts"].as_array().expect("accounts") {
        let connection = account["id_connection"].as_i64().unwrap();
        if account["disabled"] == true || !connections.contains(&connection) {
            continue;
        }
        for t in account["transactions"].as_array().unwrap() {
            if !t["deleted"].is_null() {
                continue;
            }
            let status = if t["coming"] == true { "PDNG" } else { "BOOK" };
            out.insert(t["id"].as_i64().unwrap(), (status.to_owned(), t.clone()));
        }
    }
    out
}

/// The store compared with the listing: the same transactions, statuses and JSON.
fn same(stored: &BTreeMap<i64, (String, String, Value)>, listed: &BTreeMap<i64, (String, Value)>) {
    let held: BTreeMap<i64, (String, Value)> = stored
        .iter()
        .map(|(id, (_, status, raw))| (*id, (status.clone(), raw.clone())))
        .collect();
    assert_eq!(
        held.len(),
        listed.len(),
        "as many rows as listed transactions"
    );
    assert_eq!(&held, listed);
}

/// The stored rows the bank has not deleted.
fn live(stored: &BTreeMap<i64, (String, String, Value)>) -> BTreeMap<i64, (String, String, Value)> {
    stored
        .iter()
        .filter(|(_, v)| v.1 != "DELD")
        .map(|(id, v)| (*id, v.clone()))
        .collect()
}

/// The calls a sync reports on its last line.
fn calls(out: &Out) -> u64 {
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("synced "))
        .unwrap_or_else(|| panic!("no summary line: {out}"));
    line.rsplit(": ")
        .next()
        .and_then(|s| s.strip_suffix(" call(s)"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no calls in `{line}`"))
}

/// The sum of `N KIND` over the account lines (`3 new`, `1 booked from pending`).
fn reported(out: &Out, kind: &str) -> u64 {
    out.stderr
        .lines()
        .filter_map(|l| {
            l.split(", ")
                .flat_map(|p| p.split("; "))
                .flat_map(|p| p.split(": "))
                .find_map(|p| p.strip_suffix(&format!(" {kind}")))
        })
        .filter_map(|n| n.parse::<u64>().ok())
        .sum()
}

fn incremental_syncs_follow_powens(store_for: impl Fn(&Env) -> String) {
    let env = connected();
    let store = store_for(&env);

    // First sync: exactly what the mock lists, walked in pages of 10.
    let first = sync(&env, &store, 10);
    first.ok();
    let after_first = stored(&env, &store);
    same(&after_first, &listed(&env, &[1]));
    // Connections and accounts (2), the checking account's 64 transactions (one deleted at the
    // bank) in 7 pages, the card's 10 in at least 1, the USD account's 5 in 1.
    assert!(calls(&first) >= 11, "{first}");
    assert!(
        first
            .stderr
            .contains("account 1002 (Livret A): not synced: the account is disabled")
            && first.stderr.contains("stet accounts enable 1002"),
        "an account not enabled is named, never enabled: {first}"
    );
    // The ids are Powens' own, in one namespace: `p1-XXXXXXXX-t{id}`.
    let prefix = after_first
        .values()
        .next()
        .unwrap()
        .0
        .rsplit_once('-')
        .unwrap()
        .0
        .to_owned();
    assert!(
        after_first
            .iter()
            .all(|(id, (stable, _, _))| *stable == format!("{prefix}-t{id}")),
        "{after_first:?}"
    );
    let pending_before: BTreeSet<i64> = after_first
        .iter()
        .filter(|(_, v)| v.1 == "PDNG")
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(
        pending_before.len(),
        ENABLED.len(),
        "each account's newest is coming"
    );

    // Nothing changed: nothing added, and only the window since the last sync asked for.
    let second = sync(&env, &store, 10);
    second.ok();
    assert_eq!(
        reported(&second, "new") + reported(&second, "updated"),
        0,
        "{second}"
    );
    assert_eq!(stored(&env, &store), after_first);
    assert!(
        calls(&second) < calls(&first),
        "min_date from the last sync: {} calls, then {}",
        calls(&first),
        calls(&second)
    );

    // New transactions; the coming ones booked under their own ids.
    let advanced = sandbox_call(
        &env,
        "POST",
        "/sandbox/powens/advance",
        r#"{"days": 2, "transactions_per_account": 3}"#,
    );
    assert!(
        advanced["booked"].as_u64().unwrap() >= ENABLED.len() as u64,
        "{advanced}"
    );
    let third = sync(&env, &store, 10);
    third.ok();
    let after_advance = stored(&env, &store);
    same(&after_advance, &listed(&env, &[1]));
    assert_eq!(after_advance.len(), after_first.len() + 3 * ENABLED.len());
    assert_eq!(reported(&third, "new"), 3 * ENABLED.len() as u64, "{third}");
    assert_eq!(
        reported(&third, "booked from pending"),
        ENABLED.len() as u64,
        "{third}"
    );
    for id in &pending_before {
        assert_eq!(after_advance[id].1, "BOOK", "booked in place, one row");
        assert_eq!(after_advance[id].0, after_first[id].0, "the same stable id");
    }

    // Coming ones booked under new ids (the coming one deleted at Powens): still one row
    // each, keeping the coming one's stable id and showing the booked version.
    let pending_now: BTreeMap<i64, String> = after_advance
        .iter()
        .filter(|(_, v)| v.1 == "PDNG")
        .map(|(id, v)| (*id, v.0.clone()))
        .collect();
    assert!(!pending_now.is_empty());
    sandbox_call(
        &env,
        "POST",
        "/sandbox/powens/advance",
        r#"{"days": 1, "booking": "new-id"}"#,
    );
    let fourth = sync(&env, &store, 10);
    fourth.ok();
    assert_eq!(reported(&fourth, "new"), 0, "{fourth}");
    assert_eq!(
        reported(&fourth, "booked from pending"),
        pending_now.len() as u64,
        "{fourth}"
    );
    let after_rebook = stored(&env, &store);
    assert_eq!(after_rebook.len(), after_advance.len(), "no row twice");
    let ids_before: BTreeSet<&String> = after_advance.values().map(|v| &v.0).collect();
    let ids_after: BTreeSet<&String> = after_rebook.values().map(|v| &v.0).collect();
    assert_eq!(ids_before, ids_after, "every stable id kept");
    // The claimed rows show the booked transactions (their new Powens ids), as listed.
    same(&after_rebook, &listed(&env, &[1]));
    for (old, stable) in &pending_now {
        assert!(!after_rebook.contains_key(old));
        let (_, (_, status, _)) = after_rebook.iter().find(|(_, v)| &v.0 == stable).unwrap();
        assert_eq!(status, "BOOK");
    }

    // A booked transaction the bank deletes: its row is kept, marked DELD with Powens' JSON
    // saying so, and no longer among the booked ones; a sync after that changes nothing.
    let newest_booked = after_rebook
        .iter()
        .filter(|(_, (_, status, raw))| status == "BOOK" && raw["id_account"] == 1001)
        .max_by_key(|(id, (_, _, raw))| (raw["date"].as_str().unwrap().to_owned(), **id))
        .map(|(id, (stable, _, _))| (*id, stable.clone()))
        .unwrap();
    let export = |env: &Env| {
        env.run(&[
            "export",
            "--store",
            &store,
            "--format",
            "csv",
            "--since-last",
            "books",
        ])
    };
    let exported = export(&env);
    assert!(exported.stdout.contains(&newest_booked.1), "{exported}");
    let deleted = sandbox_call(
        &env,
        "POST",
        "/sandbox/powens/advance",
        &format!(r#"{{"days": 0, "delete": [{}]}}"#, newest_booked.0),
    );
    assert_eq!(deleted["deleted"], 1, "{deleted}");
    let fifth = sync(&env, &store, 10);
    fifth.ok();
    assert_eq!(reported(&fifth, "deleted at the bank"), 1, "{fifth}");
    assert_eq!(reported(&fifth, "new"), 0, "{fifth}");
    let after_delete = stored(&env, &store);
    assert_eq!(after_delete.len(), after_rebook.len(), "kept, not removed");
    let (stable, status, raw) = &after_delete[&newest_booked.0];
    assert_eq!(
        (stable, status.as_str()),
        (&newest_booked.1, "DELD"),
        "{raw}"
    );
    assert!(
        raw["deleted"].is_string(),
        "Powens' JSON as received: {raw}"
    );
    same(&live(&after_delete), &listed(&env, &[1]));
    let booked = env.run(&[
        "history", "--store", &store, "--status", "booked", "--output", "ndjson",
    ]);
    assert!(
        booked
            .ndjson()
            .iter()
            .all(|r| r["stable_id"] != newest_booked.1.as_str()),
        "{booked}"
    );
    // Exported before the bank deleted it: said on stderr, never written again.
    let again = export(&env);
    again.ok();
    assert!(!again.stdout.contains(&newest_booked.1), "{again}");
    assert!(
        again.stderr.contains(&format!(
            "{} of EX6702004101005050001301001 was deleted at the bank after it was exported under `books`",
            newest_booked.1
        )),
        "{again}"
    );
    let sixth = sync(&env, &store, 10);
    sixth.ok();
    assert_eq!(reported(&sixth, "deleted at the bank"), 0, "{sixth}");
    assert_eq!(stored(&env, &store), after_delete);
    let info = env.run(&["store", "info", "--store", &store, "--output", "table"]);
    assert!(info.stderr.contains(", 1 deleted at the bank,"), "{info}");

    // A transaction far older than the window deleted at the bank: the window does not list
    // it, Powens' `last_update` listing does, and its row is marked all the same.
    let oldest_booked = after_delete
        .iter()
        .filter(|(_, (_, status, raw))| status == "BOOK" && raw["id_account"] == 1001)
        .min_by_key(|(id, (_, _, raw))| (raw["date"].as_str().unwrap().to_owned(), **id))
        .map(|(id, (_, _, raw))| (*id, raw["date"].as_str().unwrap().to_owned()))
        .unwrap();
    let newest_date = after_delete[&newest_booked.0].2["date"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        oldest_booked.1 < newest_date,
        "{oldest_booked:?} {newest_date}"
    );
    sandbox_call(
        &env,
        "POST",
        "/sandbox/powens/advance",
        &format!(r#"{{"days": 0, "delete": [{}]}}"#, oldest_booked.0),
    );
    let seventh = sync(&env, &store, 10);
    seventh.ok();
    assert_eq!(reported(&seventh, "deleted at the bank"), 1, "{seventh}");
    assert_eq!(reported(&seventh, "new"), 0, "{seventh}");
    let after_old_delete = stored(&env, &store);
    assert_eq!(after_old_delete[&oldest_booked.0].1, "DELD");
    assert_eq!(after_old_delete.len(), after_delete.len());
    same(&live(&after_old_delete), &listed(&env, &[1]));

    // The store knows the accounts: by IBAN, and the card by its namespaced Powens id.
    let info = env.run(&["store", "info", "--store", &store, "--output", "json"]);
    let accounts = info.json_array();
    assert_eq!(accounts.len(), ENABLED.len(), "{info}");
    let card = accounts
        .iter()
        .find(|a| a["resource_id"] == format!("{prefix}-a1003"))
        .unwrap_or_else(|| panic!("the card by its Powens id: {info}"));
    assert!(card["iban"].is_null(), "{card}");
    assert!(accounts.iter().all(|a| a["profile"] == "powens"));
}

#[test]
fn incremental_syncs_follow_powens_in_sqlite() {
    incremental_syncs_follow_powens(|env| sqlite(env, "stet.db"));
}

#[test]
fn incremental_syncs_follow_powens_in_postgres() {
    incremental_syncs_follow_powens(|_| stet_testkit::fresh_postgres_database("powens_sync"));
}

#[test]
fn a_refresh_asks_powens_to_read_the_bank_first() {
    let env = connected();
    let store = sqlite(&env, "refresh.db");
    sync(&env, &store, 1000).ok();
    let before = stored(&env, &store);

    // The bank has new transactions Powens has not read yet.
    let staged = sandbox_call(
        &env,
        "POST",
        "/sandbox/powens/advance",
        r#"{"days": 1, "transactions_per_account": 2, "defer": true}"#,
    );
    assert_eq!(staged["staged"], 1, "{staged}");
    // A plain sync reads what Powens holds: nothing new.
    let plain = sync(&env, &store, 1000);
    plain.ok();
    assert_eq!(reported(&plain, "new"), 0, "{plain}");
    assert_eq!(stored(&env, &store), before);

    // --refresh: Powens reads the bank first (one PUT per usable connection), then the sync
    // reads the new transactions, exactly as the mock now lists them.
    let refreshed = env.run(&["sync", "--store", &store, "--refresh"]);
    refreshed.ok();
    assert_eq!(
        reported(&refreshed, "new"),
        2 * ENABLED.len() as u64,
        "{refreshed}"
    );
    assert_eq!(calls(&refreshed), calls(&plain) + 1, "one PUT: {refreshed}");
    same(&stored(&env, &store), &listed(&env, &[1]));

    // Nothing new at the bank: Powens answers 409, the sync goes on with what it holds.
    let again = env.run(&["sync", "--store", &store, "--refresh"]);
    again.ok();
    assert_eq!(reported(&again, "new"), 0, "{again}");

    // A STET profile reads its bank itself: --refresh is a usage error there.
    let stet = Env::new();
    let out = stet.run(&["sync", "--store", &sqlite(&stet, "s.db"), "--refresh"]);
    out.fails(2, "--refresh is for Powens profiles");
}

#[test]
fn a_connection_needing_the_psu_fails_its_own_line_only() {
    let mut env = connected();
    // A second connection, one account of it enabled.
    let second = connect(&env, "par").json_array().remove(0);
    assert_eq!(second["id"], 2, "{second}");
    env.run(&["accounts", "enable", "1007"]).ok();
    let store = sqlite(&env, "stet.db");
    sync(&env, &store, 1000).ok();
    same(&stored(&env, &store), &listed(&env, &[1, 2]));

    // Powens' background sync finds the bank wants an SCA on connection 2; new data arrive
    // on connection 1 only.
    let state = |s: &str| {
        sandbox_call(
            &env,
            "POST",
            "/sandbox/powens/state",
            &format!(r#"{{"connection": 2, "state": {s}}}"#),
        )
    };
    state("\"SCARequired\"");
    let before = stored(&env, &store);
    sandbox_call(
        &env,
        "POST",
        "/sandbox/powens/advance",
        r#"{"days": 1, "transactions_per_account": 2}"#,
    );
    let out = sync(&env, &store, 1000);
    out.fails(77, "connection 2 (Connecteur de test) not synced");
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("connection 2 (Connecteur de test): not synced"))
        .unwrap_or_else(|| panic!("a line of its own: {out}"));
    assert!(
        line.contains("`SCARequired`") && line.contains("`stet connect --connection 2`"),
        "{line}"
    );
    assert!(line.contains("1007"), "names the accounts it holds: {line}");
    assert_eq!(reported(&out, "new"), 2 * ENABLED.len() as u64, "{out}");
    let after = stored(&env, &store);
    // Connection 1 is up to date; connection 2's account keeps what was stored.
    let mut expected = listed(&env, &[1]);
    for (id, (_, status, raw)) in &before {
        if raw["id_account"] == 1007 {
            expected.insert(*id, (status.clone(), raw.clone()));
        }
    }
    same(&after, &expected);

    // The PSU does what the line says; the next sync is whole again.
    env.run(&["connect", "--connection", "2", "--timeout", "30"])
        .ok();
    sync(&env, &store, 1000).ok();
    same(&stored(&env, &store), &listed(&env, &[1, 2]));

    // Each state that needs someone has its exit code.
    for (s, code, needle) in [
        ("\"passwordExpired\"", 77, "on the bank's site"),
        ("\"wrongpass\"", 77, "stet connections delete 2"),
        ("\"rateLimiting\"", 75, "Powens retries by itself"),
        ("\"websiteUnavailable\"", 69, "Powens retries by itself"),
    ] {
        state(s);
        let out = sync(&env, &store, 1000);
        out.fails(code, "connection 2 (Connecteur de test) not synced");
        assert!(out.stderr.contains(needle), "{s}: {out}");
    }

    // --all-profiles mixes a STET bank and Powens, and goes on past the blocked connection.
    let mixed = env.home.path().join("mixed.toml");
    let powens = std::fs::read_to_string(env.home.path().join("powens.toml")).unwrap();
    let powens = powens.split_once('\n').unwrap().1;
    // The Powens secret in its profile: STET_CLIENT_SECRET would be the STET bank's too.
    let secret = env.sandbox.info["powens"]["client_secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let powens = format!("{powens}client_secret = {secret:?}\n");
    write_private(
        &mixed,
        &format!(
            "default_profile = \"sandbox\"\n{powens}\n[profiles.sandbox]\n{}",
            env.profile_body(&[])
        ),
    );
    env.vars
        .retain(|(k, _)| k != "STET_CONFIG" && k != "STET_CLIENT_SECRET");
    env.vars
        .push(("STET_CONFIG".into(), mixed.display().to_string()));
    env.login(&[]);
    let out = env.run(&[
        "sync",
        "--all-profiles",
        "--store",
        &store,
        "--psu-ip",
        PSU_IP,
    ]);
    out.fails(69, "powens");
    assert!(
        out.stderr.contains("\nprofile powens: connection 2"),
        "{out}"
    );
    let rows = env.run(&[
        "history",
        "--all-profiles",
        "--store",
        &store,
        "--output",
        "ndjson",
    ]);
    let rows = rows.ndjson();
    assert!(
        rows.iter()
            .any(|r| r["stable_id"].as_str().unwrap().starts_with("s1-"))
    );
    assert!(
        rows.iter()
            .any(|r| r["stable_id"].as_str().unwrap().starts_with("p1-"))
    );
    assert!(rows.iter().all(|r| {
        let stet = r["profile"] == "sandbox";
        stet == r["stable_id"].as_str().unwrap().starts_with("s1-")
    }));
}

#[test]
fn a_sync_killed_anywhere_then_rerun_gives_the_same_store() {
    let env = connected();
    // Pages of one transaction: many calls, so the kills land inside the work.
    let reference = sqlite(&env, "reference.db");
    let t0 = Instant::now();
    sync(&env, &reference, 1).ok();
    let whole = t0.elapsed();
    let expected = stored(&env, &reference);
    same(&expected, &listed(&env, &[1]));
    let per_account = |rows: &BTreeMap<i64, (String, String, Value)>| {
        let mut n: BTreeMap<i64, usize> = BTreeMap::new();
        for (_, _, raw) in rows.values() {
            *n.entry(raw["id_account"].as_i64().unwrap()).or_default() += 1;
        }
        n
    };
    let whole_accounts = per_account(&expected);
    for (n, fraction) in [0.1, 0.35, 0.6, 0.85].iter().enumerate() {
        let store = sqlite(&env, &format!("killed-{n}.db"));
        let mut running = env.spawn(&["sync", "--store", &store, "--limit", "1"]);
        std::thread::sleep(whole.mul_f64(*fraction));
        running.child.kill().expect("SIGKILL");
        let _ = running.child.wait();
        // Whole accounts only, then the next sync completes it.
        if std::path::Path::new(store.trim_start_matches("sqlite:")).exists() {
            let partial = stored(&env, &store);
            for (account, count) in per_account(&partial) {
                assert_eq!(
                    count, whole_accounts[&account],
                    "account {account} whole, after {fraction}"
                );
            }
        }
        sync(&env, &store, 1).ok();
        assert_eq!(
            stored(&env, &store),
            expected,
            "killed at {fraction} of a sync, then rerun"
        );
    }
}

/// Powens' data through the store into the accounting tools: the synced store exported to
/// beancount passes `bean-check` (the tool's own validator, silent), with every booked
/// transaction once under its Powens stable id; a second export `--since-last` after an
/// unchanged sync adds nothing.
#[test]
fn a_powens_sync_exports_to_beancount_that_bean_check_accepts() {
    let env = connected();
    let store = sqlite(&env, "books.db");
    sync(&env, &store, 50).ok();
    let booked: BTreeSet<String> = stored(&env, &store)
        .into_values()
        .filter(|(_, status, _)| status == "BOOK")
        .map(|(id, _, _)| id)
        .collect();
    assert!(!booked.is_empty(), "the mock books transactions");

    let file = env.home.path().join("books.beancount");
    let export = |since: &[&str]| {
        let mut args = vec![
            "export",
            "--store",
            &store,
            "--all-profiles",
            "--format",
            "beancount",
            "--file",
            file.to_str().unwrap(),
        ];
        args.extend_from_slice(since);
        env.run(&args).ok();
        std::fs::read_to_string(&file).expect("the export")
    };
    let text = export(&["--since-last", "books"]);
    let ids: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("stet-id: \""))
        .map(|l| l.trim_end_matches('"'))
        .collect();
    assert_eq!(ids.len(), booked.len(), "every booked transaction once");
    assert!(
        ids.iter()
            .all(|id| id.starts_with("p1-") && booked.contains(*id))
    );

    let check = std::process::Command::new(stet_testkit::venv_tool("bean-check"))
        .arg(&file)
        .output()
        .expect("bean-check runs");
    assert!(
        check.status.success() && check.stdout.is_empty() && check.stderr.is_empty(),
        "bean-check: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );

    // Nothing new at Powens, nothing new in the books.
    sync(&env, &store, 50).ok();
    let again = export(&["--since-last", "books"]);
    assert!(!again.contains("stet-id: \""), "{again}");
}
