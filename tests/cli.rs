//! End-to-end tests of the `stet` binary against the sandbox bank, over real sockets.
//!
//! Each test starts its own `stet sandbox serve --port 0` child and works in its own temporary
//! HOME (configuration, token store, budget), so the tests run in parallel without sharing
//! state. The test plays the PSU's browser: it follows the authorization URL the CLI prints
//! (the sandbox approves at once) and delivers the redirect to the CLI's loopback listener, or
//! pastes it on the CLI's stdin.

#![allow(missing_docs)]

mod support;

use serde_json::Value;
use support::*;

// ---------------------------------------------------------------------------------------------
// Consent
// ---------------------------------------------------------------------------------------------

#[test]
fn login_by_loopback_then_status_and_logout() {
    let env = Env::new();
    let (out, location) = env.login(&[]);
    assert!(
        out.stderr.contains("Logged in (profile `sandbox`)"),
        "{out}"
    );
    assert!(location.starts_with("http://127.0.0.1:"), "{location}");
    let token_file = env.token_file("sandbox");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&token_file)
            .expect("token file")
            .permissions();
        assert_eq!(mode.mode() & 0o777, 0o600, "the token file is private");
    }

    let status = env.run(&["auth", "status"]);
    assert!(status.ok().contains("aisp: scopes aisp"), "{status}");
    let json = env.run(&["auth", "status", "--output", "json"]).json();
    assert_eq!(json["profile"], "sandbox");
    let tokens = json["tokens"].as_array().expect("tokens");
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0]["key"], "aisp");
    assert_eq!(tokens[0]["valid"], true);
    assert_eq!(tokens[0]["refreshable"], true);

    let logout = env.run(&["auth", "logout"]);
    logout.ok();
    assert!(logout.stderr.contains("Forgot the tokens"), "{logout}");
    assert!(!token_file.exists(), "logout removes the token file");

    // Logged out: `auth status` says so and exits 77; data commands need a login.
    let status = env.run(&["auth", "status"]);
    assert_eq!(status.code, 77, "{status}");
    assert!(status.stdout.contains("no tokens stored"), "{status}");
    assert!(status.stderr.contains("stet auth login"), "{status}");
    env.present(&["accounts"]).fails(77, "stet auth login");
    // Nothing on stdout in any format: no half-open JSON array, no lone CSV header.
    for format in ["json", "csv", "table", "ndjson"] {
        env.present(&["accounts", "--output", format])
            .fails(77, "stet auth login");
        env.present(&["transactions", "--all", "--output", format])
            .fails(77, "stet auth login");
    }
}

#[test]
fn login_by_paste() {
    let env = Env::new();
    let mut running = env.spawn(&["auth", "login", "--no-browser"]);
    let url = running.authorize_url();
    let location = env.consent_at_bank(&url);
    running.paste(&location);
    let out = running.finish();
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stderr.contains("Logged in"), "{out}");
    assert_eq!(env.accounts().len(), 3);
}

#[test]
fn login_by_paste_refuses_a_forged_state_and_nothing() {
    let env = Env::new();
    // A redirect whose state is not the one the CLI sent: a forged or crossed response.
    let mut running = env.spawn(&["auth", "login", "--no-browser"]);
    let url = running.authorize_url();
    let location = env.consent_at_bank(&url);
    let state = query_param(&location, "state").expect("state in the redirect");
    let forged = location.replace(&format!("state={state}"), "state=forged-by-someone-else");
    assert_ne!(forged, location);
    running.paste(&forged);
    let out = running.finish();
    out.fails(77, "state");
    assert!(!env.token_file("sandbox").exists(), "nothing stored");

    // Nothing pasted (stdin closed).
    let running = env.spawn(&["auth", "login", "--no-browser"]);
    let out = running.finish();
    out.fails(77, "no URL was pasted");

    // A code from the bank delivered to the loopback listener with a forged state.
    let mut running = env.spawn(&["auth", "login"]);
    let url = running.authorize_url();
    let location = env.consent_at_bank(&url);
    let state = query_param(&location, "state").expect("state");
    assert_eq!(
        deliver(&location.replace(&format!("state={state}"), "state=forged")),
        200
    );
    running.finish().fails(77, "state");
}

// ---------------------------------------------------------------------------------------------
// Account information
// ---------------------------------------------------------------------------------------------

#[test]
fn accounts_in_every_format() {
    let env = Env::new();
    env.login(&[]);

    let accounts = env.accounts();
    assert_eq!(accounts.len(), 3);
    let ids: Vec<&str> = accounts
        .iter()
        .map(|a| a["resourceId"].as_str().expect("resourceId"))
        .collect();
    assert_eq!(ids, ["ACC0001", "ACC0002", "ACC0003"]);
    for a in &accounts {
        let iban = a["accountId"]["iban"].as_str().expect("iban");
        assert!(iban.starts_with("FR76") || iban.starts_with("FR"), "{iban}");
        assert!(
            a["_links"].is_object(),
            "JSON keeps the bank's resource whole: {a}"
        );
    }

    let ndjson = env.present(&["accounts", "--output", "ndjson"]).ndjson();
    assert_eq!(ndjson, accounts, "NDJSON holds the same objects as JSON");

    // Piped, the default is NDJSON.
    let default = env.present(&["accounts"]).ndjson();
    assert_eq!(default, accounts);

    let (header, rows) = env.present(&["accounts", "--output", "csv"]).csv();
    assert_eq!(header, ["id", "iban", "name", "currency", "usage", "type"]);
    assert_eq!(rows.len(), 3);
    for (row, a) in rows.iter().zip(&accounts) {
        assert_eq!(row[0], a["resourceId"].as_str().unwrap());
        assert_eq!(row[1], a["accountId"]["iban"].as_str().unwrap());
        assert_eq!(row[2], a["name"].as_str().unwrap());
        assert_eq!(row[3], "EUR");
    }

    let table = env.present(&["accounts", "--output", "table"]);
    let lines: Vec<&str> = table.ok().lines().collect();
    assert_eq!(lines.len(), 4, "a header and three rows: {table}");
    assert!(lines[0].starts_with("ID "), "{table}");
    assert!(
        lines[0].contains("IBAN") && lines[0].contains("NAME"),
        "{table}"
    );
    for (line, id) in lines[1..].iter().zip(&ids) {
        assert!(line.starts_with(id), "{table}");
    }
}

#[test]
fn balances_by_id_by_iban_and_for_every_account() {
    let env = Env::new();
    env.login(&[]);
    let accounts = env.accounts();
    let iban = accounts[1]["accountId"]["iban"]
        .as_str()
        .unwrap()
        .to_owned();

    let by_id = env
        .present(&["balances", "ACC0002", "--output", "json"])
        .json_array();
    assert!(!by_id.is_empty());
    let types: Vec<&str> = by_id
        .iter()
        .map(|b| {
            assert_eq!(b["account"], "ACC0002");
            b["balance"]["balanceType"].as_str().expect("balanceType")
        })
        .collect();
    assert!(
        types.contains(&"CLBD") && types.contains(&"XPCD"),
        "{types:?}"
    );

    // By IBAN, with spaces as people write it: the same balances.
    let spaced: String = iban
        .chars()
        .collect::<Vec<_>>()
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join(" ");
    let by_iban = env
        .present(&["balances", &spaced, "--output", "json"])
        .json_array();
    assert_eq!(by_iban, by_id);

    let all = env.present(&["balances", "--output", "ndjson"]).ndjson();
    assert_eq!(all.len(), by_id.len() * 3, "every account's balances");

    let (header, rows) = env
        .present(&["balances", "ACC0002", "--output", "csv"])
        .csv();
    assert_eq!(
        header,
        [
            "account",
            "type",
            "amount",
            "currency",
            "reference_date",
            "name"
        ]
    );
    assert_eq!(rows.len(), by_id.len());
    for (row, b) in rows.iter().zip(&by_id) {
        assert_eq!(row[1], b["balance"]["balanceType"].as_str().unwrap());
        assert_eq!(
            row[2],
            b["balance"]["balanceAmount"]["amount"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| b["balance"]["balanceAmount"]["amount"].to_string())
        );
    }

    let table = env.present(&["balances", "ACC0002", "--output", "table"]);
    assert_eq!(table.ok().lines().count(), 1 + by_id.len(), "{table}");
    assert!(table.stdout.contains("CLBD"), "{table}");

    // An IBAN that is none of the PSU's accounts.
    env.present(&["balances", PAYEE])
        .fails(1, "no account with IBAN");
}

#[test]
fn transactions_ranges_pages_status_and_formats() {
    let env = Env::new();
    // With the extended history scope: the whole 13 months can be read.
    env.login(&["--scope", "aisp", "--scope", "extended_transaction_history"]);
    let (from, to) = (day(-400), day(3));

    // 60 transactions per account, over three pages of 20.
    let all = env
        .present(&[
            "transactions",
            "ACC0001",
            "--from",
            &from,
            "--to",
            &to,
            "--output",
            "json",
        ])
        .json_array();
    assert_eq!(all.len(), 60);
    let refs: Vec<&str> = all
        .iter()
        .map(|t| t["entryReference"].as_str().expect("entryReference"))
        .collect();
    let mut unique = refs.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), 60, "no page read twice");
    assert!(refs.iter().all(|r| r.starts_with("ACC0001-")));

    // By IBAN: the same list.
    let iban = env.accounts()[0]["accountId"]["iban"]
        .as_str()
        .unwrap()
        .to_owned();
    let by_iban = env
        .present(&[
            "transactions",
            &iban,
            "--from",
            &from,
            "--to",
            &to,
            "--output",
            "ndjson",
        ])
        .ndjson();
    assert_eq!(by_iban, all);

    // A narrower range: fewer, and each inside it.
    let recent_from = day(-60);
    let recent = env
        .present(&[
            "transactions",
            "ACC0001",
            "--from",
            &recent_from,
            "--to",
            &to,
            "--output",
            "json",
        ])
        .json_array();
    assert!(recent.len() < 60, "{}", recent.len());
    for t in &recent {
        let date = t["bookingDate"]
            .as_str()
            .or(t["transactionDate"].as_str())
            .expect("a date");
        assert!(
            date[..10] >= *recent_from.as_str(),
            "{date} < {recent_from}"
        );
    }

    // Booked and pending split the list.
    let booked = env
        .present(&[
            "transactions",
            "ACC0001",
            "--from",
            &from,
            "--to",
            &to,
            "--status",
            "booked",
            "--output",
            "ndjson",
        ])
        .ndjson();
    let pending = env
        .present(&[
            "transactions",
            "ACC0001",
            "--from",
            &from,
            "--to",
            &to,
            "--status",
            "pending",
            "--output",
            "ndjson",
        ])
        .ndjson();
    assert!(booked.iter().all(|t| t["status"] == "BOOK"));
    assert!(pending.iter().all(|t| t["status"] == "PDNG"));
    assert_eq!(booked.len() + pending.len(), 60);

    // Every account, as CSV parsed back.
    let (header, rows) = env
        .present(&[
            "transactions",
            "--all",
            "--from",
            &from,
            "--to",
            &to,
            "--output",
            "csv",
        ])
        .csv();
    assert_eq!(
        header,
        [
            "account",
            "date",
            "value_date",
            "amount",
            "currency",
            "status",
            "label",
            "reference"
        ]
    );
    assert_eq!(rows.len(), 180, "3 accounts × 60");
    for id in ["ACC0001", "ACC0002", "ACC0003"] {
        assert_eq!(rows.iter().filter(|r| r[0] == id).count(), 60, "{id}");
    }
    for row in &rows {
        assert!(
            row[7].starts_with(&row[0]),
            "reference of its account: {row:?}"
        );
        assert_eq!(row[4], "EUR");
        assert!(row[5] == "BOOK" || row[5] == "PDNG", "{row:?}");
        assert!(
            row[3].trim_start_matches('-').parse::<f64>().is_ok(),
            "amount {row:?}"
        );
    }
    // The CSV's amounts carry the sign of the debit/credit indicator.
    let csv_acc1: Vec<&Vec<String>> = rows.iter().filter(|r| r[0] == "ACC0001").collect();
    for t in &all {
        let reference = t["entryReference"].as_str().unwrap();
        let row = csv_acc1
            .iter()
            .find(|r| r[7] == reference)
            .expect("same transaction in CSV");
        assert_eq!(
            row[3].starts_with('-'),
            t["creditDebitIndicator"] == "DBIT",
            "{row:?} vs {t}"
        );
    }

    let json_all = env
        .present(&[
            "transactions",
            "--all",
            "--from",
            &from,
            "--to",
            &to,
            "--output",
            "json",
        ])
        .json_array();
    assert_eq!(json_all.len(), 180);

    let table = env.present(&[
        "transactions",
        "ACC0003",
        "--from",
        &from,
        "--to",
        &to,
        "--output",
        "table",
    ]);
    assert_eq!(table.ok().lines().count(), 61, "{table}");
    assert!(table.stdout.starts_with("ACCOUNT"), "{table}");
}

#[test]
fn other_dialects_and_link_styles_page_the_same() {
    let (from, to) = (day(-400), day(3));
    for (extra, bank) in [
        (
            &["--dialect", "1.4", "--link-style", "relative"][..],
            "generic-1.4",
        ),
        (&["--link-style", "path"][..], "sandbox"),
    ] {
        let env = Env::with(extra, bank);
        env.login(&["--scope", "aisp", "--scope", "extended_transaction_history"]);
        assert_eq!(env.accounts().len(), 3, "{extra:?}");
        let rows = env
            .present(&[
                "transactions",
                "--all",
                "--from",
                &from,
                "--to",
                &to,
                "--output",
                "ndjson",
            ])
            .ndjson();
        assert_eq!(rows.len(), 180, "{extra:?}");
        let (_, csv) = env
            .present(&[
                "transactions",
                "ACC0002",
                "--from",
                &from,
                "--to",
                &to,
                "--output",
                "csv",
            ])
            .csv();
        assert_eq!(csv.len(), 60, "{extra:?}");
        let balances = env
            .present(&["balances", "ACC0001", "--output", "json"])
            .json_array();
        assert!(!balances.is_empty(), "{extra:?}");
    }
}

#[test]
fn transactions_beyond_90_days_need_the_extended_scope() {
    let env = Env::new();
    env.login(&[]);
    // Without dateFrom, the last 90 days; with a dateFrom older than that, a new consent.
    let recent = env
        .present(&["transactions", "ACC0001", "--output", "json"])
        .json_array();
    assert!(recent.len() < 60, "{}", recent.len());
    env.present(&["transactions", "ACC0001", "--from", &day(-200)])
        .fails(77, "extended_transaction_history");
}

#[test]
fn identity_beneficiaries_and_consent() {
    let env = Env::new();
    env.login(&[]);

    let identity = env.present(&["identity", "--output", "json"]).json_array();
    assert_eq!(identity.len(), 1);
    assert_eq!(identity[0]["fullName"], "Camille Durand");
    let (header, rows) = env.present(&["identity", "--output", "csv"]).csv();
    assert_eq!(header, ["full_name", "first_name", "last_name"]);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0][0], "Camille Durand");
    assert_eq!(
        env.present(&["identity", "--output", "ndjson"]).ndjson(),
        identity
    );
    let table = env.present(&["identity", "--output", "table"]);
    assert!(table.ok().contains("Camille Durand"), "{table}");

    let beneficiaries = env
        .present(&["beneficiaries", "--output", "json"])
        .json_array();
    assert_eq!(beneficiaries.len(), 4);
    let names: Vec<&str> = beneficiaries
        .iter()
        .map(|b| b["creditor"]["name"].as_str().expect("creditor name"))
        .collect();
    assert_eq!(
        names,
        ["Marie Martin", "SCI Les Tilleuls", "Jean Dupont", "EDF"]
    );
    let (header, rows) = env.present(&["beneficiaries", "--output", "csv"]).csv();
    assert_eq!(header, ["id", "name", "iban", "trusted"]);
    assert_eq!(rows.len(), 4);
    for (row, b) in rows.iter().zip(&beneficiaries) {
        assert_eq!(row[1], b["creditor"]["name"].as_str().unwrap());
        assert_eq!(row[2], b["creditorAccount"]["iban"].as_str().unwrap());
    }
    assert_eq!(
        env.present(&["beneficiaries", "--output", "ndjson"])
            .ndjson(),
        beneficiaries
    );
    let table = env.present(&["beneficiaries", "--output", "table"]);
    assert_eq!(table.ok().lines().count(), 5, "{table}");

    let accounts = env.accounts();
    let iban = accounts[0]["accountId"]["iban"].as_str().unwrap();
    let out = env.present(&[
        "consent",
        "put",
        "--balances",
        iban,
        "--transactions",
        iban,
        "--psu-identity",
        "--trusted-beneficiaries",
    ]);
    assert_eq!(out.ok(), "");
    assert!(
        out.stderr.contains("The bank recorded the consent"),
        "{out}"
    );
    env.present(&["consent", "put", "--balances", "not-an-iban"])
        .fails(2, "not an IBAN");
}

#[test]
fn the_unattended_budget_is_four_calls_a_day() {
    let env = Env::new();
    env.login(&[]);
    for n in 1..=4 {
        let out = env.run(&["balances", "ACC0001", "--output", "json"]);
        assert_eq!(out.code, 0, "unattended call {n}: {out}");
    }
    let fifth = env.run(&["balances", "ACC0001", "--output", "json"]);
    let line = fifth.error_line("resets at");
    fifth.fails(75, "budget");
    assert!(line.contains("balances"), "{line}");
    // Another account has its own budget; the PSU present is not counted.
    env.run(&["balances", "ACC0002", "--output", "json"]).ok();
    env.present(&["balances", "ACC0001", "--output", "json"])
        .ok();
}

// ---------------------------------------------------------------------------------------------
// Payments and funds
// ---------------------------------------------------------------------------------------------

#[test]
fn pay_the_whole_journey() {
    let env = Env::new();
    let mut running = env.spawn(&[
        "pay",
        "--to",
        PAYEE,
        "--to-name",
        "Ana Smith",
        "--amount",
        "12.34",
        "--label",
        "Invoice 118",
        "--psu-ip",
        PSU_IP,
    ]);
    env.approve_payment(&mut running);
    let out = running.finish();
    let stdout = out.ok().trim().to_owned();
    let words: Vec<&str> = stdout.split(' ').collect();
    assert_eq!(words.len(), 2, "`ID ACSC`: {out}");
    assert_eq!(words[1], "ACSC", "{out}");
    assert!(out.stderr.contains("The payment is accepted"), "{out}");

    let status = env.present(&["pay", "status", words[0]]);
    assert_eq!(status.ok().trim(), format!("{} ACSC", words[0]));
}

#[test]
fn pay_in_steps_and_cancel() {
    let env = Env::new();
    let args = |label: &'static str| {
        vec![
            "pay",
            "create",
            "--to",
            PAYEE,
            "--to-name",
            "Ana Smith",
            "--amount",
            "99.90",
            "--label",
            label,
            "--psu-ip",
            PSU_IP,
        ]
    };
    let created = env.run(&args("rent"));
    let line = created.ok().trim().to_owned();
    let (id, link) = line.split_once(' ').expect("`ID LINK`");
    assert!(link.starts_with("https://"), "{created}");
    assert!(link.contains("paymentRequestResourceId="), "{created}");
    assert!(created.stderr.contains("stet pay confirm"), "{created}");

    // Before approval: received.
    let status = env.present(&["pay", "status", id]);
    assert_eq!(status.ok().trim(), format!("{id} RCVD"));

    let mut running = env.spawn(&[
        "pay",
        "confirm",
        id,
        "--approval-url",
        link,
        "--psu-ip",
        PSU_IP,
    ]);
    env.approve_payment(&mut running);
    let out = running.finish();
    assert_eq!(out.ok().trim(), format!("{id} ACSC"), "{out}");
    let status = env.present(&["pay", "status", id]);
    assert_eq!(status.ok().trim(), format!("{id} ACSC"));

    // Another one, cancelled before approval.
    let created = env.run(&args("to cancel"));
    let line = created.ok().trim().to_owned();
    let (other, _) = line.split_once(' ').expect("`ID LINK`");
    assert_ne!(other, id);
    let cancel = env.present(&["pay", "cancel", other]);
    assert_eq!(cancel.ok(), "");
    assert!(cancel.stderr.contains("cancel"), "{cancel}");
    let status = env.present(&["pay", "status", other]);
    assert!(
        status.ok().trim().starts_with(&format!("{other} CANC")),
        "{status}"
    );

    // Confirm without the link: a usage error.
    env.present(&["pay", "confirm", other])
        .fails(2, "--approval-url");
}

#[test]
fn pay_over_the_limit_is_rejected() {
    let env = Env::new();
    let mut running = env.spawn(&[
        "pay",
        "--to",
        PAYEE,
        "--to-name",
        "Ana Smith",
        "--amount",
        "5000.01",
        "--label",
        "too much",
        "--psu-ip",
        PSU_IP,
    ]);
    env.approve_payment(&mut running);
    let out = running.finish();
    assert_eq!(out.code, 1, "{out}");
    out.no_panic();
    assert!(
        out.stdout.contains("RJCT") || out.stderr.contains("RJCT"),
        "says RJCT: {out}"
    );
    out.error_line("RJCT");
}

#[test]
fn funds_check() {
    let env = Env::new();
    // Funds confirmation uses client credentials: no PSU login needed.
    let iban = {
        env.login(&[]);
        env.accounts()[0]["accountId"]["iban"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let out = env.present(&["funds-check", "--account", &iban, "--amount", "10.00"]);
    assert_eq!(out.ok().trim(), format!("{iban} 10.00 EUR: available"));
    let out = env.present(&["funds-check", "--account", &iban, "--amount", "99999999.00"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stdout.contains("not available"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// stet request, stet demo
// ---------------------------------------------------------------------------------------------

#[test]
fn request_prints_headers_and_maps_statuses() {
    let env = Env::new();
    env.login(&[]);
    let out = env.present(&["request", "-i", "GET", "accounts"]);
    let text = out.ok();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .expect("headers, a blank line, the body");
    assert!(head.starts_with("HTTP/1.1 200"), "{out}");
    assert!(head.to_lowercase().contains("content-type:"), "{out}");
    let body: Value = serde_json::from_str(body).expect("the body is the bank's JSON");
    assert_eq!(body["accounts"].as_array().map(Vec::len), Some(3));

    let out = env.present(&["request", "GET", "nope"]);
    assert_eq!(out.code, 65, "{out}");
    out.no_panic();
    out.error_line("404");

    // Malformed JSON body: 65, before anything is sent.
    env.present(&["request", "POST", "payment-requests", "--data", "{not json"])
        .fails(65, "not valid JSON");
    // A body file that does not exist: 66.
    let missing = env.home.path().join("missing.json");
    env.present(&[
        "request",
        "POST",
        "payment-requests",
        "--data",
        &format!("@{}", missing.display()),
    ])
    .fails(66, "missing.json");
}

#[test]
fn demo_runs_the_journey() {
    // The demo starts its own bank: no sandbox, no configuration, only an empty HOME.
    let home = tempfile::tempdir().expect("temp dir");
    let out = finished(&["demo"], at_home(home.path(), &["demo"]));
    let text = out.ok();
    assert!(text.contains("ACSC"), "{out}");
    assert!(text.contains("funds available"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// Documented error exits
// ---------------------------------------------------------------------------------------------

#[test]
fn usage_errors_exit_2() {
    let env = Env::new();
    env.run(&["transactions", "ACC0001", "--from", "2026-13-01"])
        .fails(2, "2026-13-01");
    env.run(&["transactions", "ACC0001", "--from", "yesterday"])
        .fails(2, "YYYY-MM-DD");
    // --from after --to, IBANs with a wrong check digit or of the wrong shape, negative and
    // over-precise amounts: rows of SECURITY.md's table, in tests/bad_input.rs.
    env.run(&["pay", "--to", PAYEE, "--amount", "0", "--label", "x"])
        .fails(2, "more than zero");
    env.run(&["pay", "create", "--amount", "1.00", "--label", "x"])
        .fails(2, "--to");
    env.run(&["accounts", "--bogus"]).fails(2, "--bogus");
    env.run(&["frobnicate"]).fails(2, "frobnicate");
    env.run(&["accounts", "--output", "xml"]).fails(2, "xml");
}

#[test]
fn bank_down_exits_69() {
    let env = Env::new();
    // A port that was free a moment ago: nothing listens there.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let base = format!("\"https://127.0.0.1:{port}/stet/psd2/v1.5\"");
    let token = format!("\"https://127.0.0.1:{port}/token\"");
    let config = env.config_with("down", &[("api_base", &base), ("token_url", &token)]);
    let config = config.to_str().unwrap();
    env.present(&[
        "--config",
        config,
        "funds-check",
        "--account",
        PAYEE,
        "--amount",
        "1.00",
    ])
    .fails(69, &port.to_string());
    env.present(&[
        "--config", config, "request", "--scope", "none", "GET", "accounts",
    ])
    .fails(69, &port.to_string());
}

#[test]
fn configuration_errors_exit_78() {
    let env = Env::new();
    env.run(&["accounts", "--profile", "nope"])
        .fails(78, "nope");

    let missing = env.home.path().join("does-not-exist.toml");
    env.run(&["accounts", "--config", missing.to_str().unwrap()])
        .fails(78, "does-not-exist.toml");

    let unknown_key = env.config_with("typo", &[("colour", "\"blue\"")]);
    env.run(&["accounts", "--config", unknown_key.to_str().unwrap()])
        .fails(78, "colour");

    let http = env.config_with("plain", &[("api_base", "\"http://127.0.0.1:9/stet\"")]);
    env.run(&["accounts", "--config", http.to_str().unwrap()])
        .fails(78, "https");

    let bank = env.config_with("nobank", &[("bank", "\"no-such-bank\"")]);
    env.run(&["accounts", "--config", bank.to_str().unwrap()])
        .fails(78, "no-such-bank");

    // The QWAC's key is the QSealC's: it does not match the QWAC certificate.
    let qseal_key = format!("{:?}", env.sandbox.get("qseal_key"));
    let mismatch = env.config_with("mismatch", &[("qwac_key", &qseal_key)]);
    env.present(&["accounts", "--config", mismatch.to_str().unwrap()])
        .fails(78, "key");
}

#[test]
fn an_empty_access_token_is_unset() {
    let env = Env::new();
    let accounts = |env: &Env| {
        let args = ["accounts", "--psu-ip", PSU_IP, "-o", "json"];
        let mut cmd = env.command(&args);
        cmd.env("STET_ACCESS_TOKEN", "");
        finished(&args, cmd)
    };
    // Set but empty is no token: OAuth is used, so without a login the consent is asked for,
    // and no empty Bearer token is sent.
    let out = accounts(&env);
    out.fails(77, "stet auth login");
    assert!(!out.stderr.contains("STET_ACCESS_TOKEN"), "{out}");
    env.login(&[]);
    let out = accounts(&env);
    assert_eq!(out.json_array().len(), 3, "{out}");
    assert!(!out.stderr.contains("STET_ACCESS_TOKEN"), "{out}");
}

/// A bank on plain HTTP (loopback) that answers every request `201 Created`, with a Location,
/// and `body`, as STET 1.4.0.47's own example writes a creation's answer.
fn answering_bank(body: &'static str) -> u16 {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("port").port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 8192];
            loop {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
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
                "HTTP/1.1 201 Created\r\nLocation: /v1/payment-requests/PR-ODD\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    port
}

#[test]
fn a_creation_answer_in_an_odd_shape_keeps_the_id_and_says_so_at_v() {
    let env = Env::new();
    let create = |body: &'static str, verbose: bool| {
        let api = format!("\"http://127.0.0.1:{}/v1/\"", answering_bank(body));
        let config = env.config_with(
            "odd",
            &[
                ("api_base", &api),
                ("allow_insecure_http", "true"),
                ("bank", "\"generic-1.4\""),
            ],
        );
        let mut args = vec!["pay", "create", "--config", config.to_str().unwrap()];
        args.extend([
            "--to",
            PAYEE,
            "--to-name",
            "Ana Smith",
            "--amount",
            "1.00",
            "--label",
            "odd",
            "-o",
            "json",
        ]);
        if verbose {
            args.push("-v");
        }
        let mut cmd = env.command(&args);
        cmd.env("STET_ACCESS_TOKEN", "compliance-test-token");
        finished(&args, cmd)
    };

    // STET 1.4.0.47's own example of the answer: appliedAuthenticationApproach as an object.
    // Kept as received, said at -v only, and the id and the approval link come through.
    let example = r#"{"appliedAuthenticationApproach": {"appliedAuthenticationApproach": "REDIRECT"},
        "_links": {"consentApproval": {"href": "https://psd2.aspsp/consent-approval"}}}"#;
    let quiet = create(example, false);
    let created = quiet.json();
    assert_eq!(created["id"], "PR-ODD");
    assert_eq!(
        created["consent_approval"],
        "https://psd2.aspsp/consent-approval"
    );
    assert_eq!(
        created["answer"]["appliedAuthenticationApproach"]["appliedAuthenticationApproach"],
        "REDIRECT"
    );
    assert!(
        !quiet.stderr.contains("appliedAuthenticationApproach"),
        "{quiet}"
    );
    let verbose = create(example, true);
    assert_eq!(verbose.json()["id"], "PR-ODD");
    assert!(
        verbose.stderr.contains(
            r#"appliedAuthenticationApproach as {"appliedAuthenticationApproach": "REDIRECT"}"#
        ) && verbose.stderr.contains("kept as received"),
        "{verbose}"
    );

    // Fields the models cannot read at all (a number for the nonce, a string for a flag):
    // the link is read from the answer as received, the id from the Location.
    let odd = r#"{"_links": {"consentApproval": {"href": "https://bank.example/approve", "templated": "no"}}, "nonce": 12}"#;
    let created = create(odd, false).json();
    assert_eq!(created["id"], "PR-ODD");
    assert_eq!(created["consent_approval"], "https://bank.example/approve");
    assert_eq!(created["answer"]["nonce"], 12);

    // Not JSON at all: the id still comes from the Location.
    let created = create("<html>created</html>", false).json();
    assert_eq!(created["id"], "PR-ODD");
    assert!(created["consent_approval"].is_null() && created["answer"].is_null());
}
