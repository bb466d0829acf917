//! `--output` on every command that prints a result: each JSON shape is the one documented in
//! docs/output.md, NDJSON and CSV say the same, and the text stays what people (and scripts
//! written against it) read.

mod support;

use serde_json::Value;
use support::{Env, PAYEE, keys};

fn sorted<'a>(list: &[&'a str]) -> Vec<&'a str> {
    let mut v = list.to_vec();
    v.sort_unstable();
    v
}

const TOKEN_KEYS: &[&str] = &[
    "authenticated_at",
    "consent_renew_by",
    "expires_at",
    "key",
    "refreshable",
    "scopes",
    "valid",
];
const STATUS_KEYS: &[&str] = &["accepted", "id", "payment_request", "reason", "status"];

#[test]
fn every_command_prints_its_documented_shape() {
    let env = Env::new();
    let docs = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/output.md"),
    )
    .expect("docs/output.md");
    let documented = |command: &str| {
        assert!(
            docs.contains(&format!("### `stet {command}`")),
            "docs/output.md documents `stet {command}`"
        );
    };

    // auth login, status, logout.
    documented("auth login");
    let (login, _) = env.login(&["-o", "json"]);
    let login: Value = serde_json::from_str(&login.stdout).expect("login JSON");
    assert_eq!(keys(&login), ["profile", "tokens"]);
    assert_eq!(keys(&login["tokens"][0]), TOKEN_KEYS);
    assert_eq!(login["tokens"][0]["key"], "aisp");
    documented("auth status");
    let status = env.run(&["auth", "status", "-o", "json"]).json();
    assert_eq!(keys(&status["tokens"][0]), TOKEN_KEYS);
    let csv = env.run(&["auth", "status", "-o", "csv"]);
    let (header, rows) = csv.csv();
    assert_eq!(header[0], "key");
    assert_eq!(rows[0][0], "aisp");
    // The text is unchanged: one line per token.
    assert!(
        env.run(&["auth", "status"])
            .ok()
            .starts_with("aisp: scopes")
    );

    // The data commands: the bank's resources as received.
    documented("accounts");
    let accounts = env.accounts();
    let iban = accounts[0]["accountId"]["iban"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(accounts[0]["_links"].is_object(), "as the bank sent it");
    documented("consent put");
    let consent = env
        .present(&["consent", "put", "--balances", &iban, "-o", "json"])
        .json();
    assert_eq!(keys(&consent), ["access", "recorded"]);
    assert_eq!(consent["access"]["balances"][0]["iban"], iban.as_str());

    // Payments: create, status, confirm (steps), cancel, the whole journey.
    documented("pay create");
    let created = env
        .present(&[
            "pay",
            "create",
            "--to",
            PAYEE,
            "--to-name",
            "Ana Smith",
            "--amount",
            "4.20",
            "--label",
            "shape",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(
        keys(&created),
        sorted(&[
            "answer",
            "consent_approval",
            "id",
            "location",
            "number_of_transactions",
            "payment_information_id",
        ])
    );
    let id = created["id"].as_str().unwrap().to_owned();
    let link = created["consent_approval"].as_str().unwrap().to_owned();
    assert!(created["answer"]["_links"]["consentApproval"].is_object());
    documented("pay status");
    let st = env.present(&["pay", "status", &id, "-o", "json"]).json();
    assert_eq!(keys(&st), STATUS_KEYS);
    assert_eq!(st["status"], "RCVD");
    assert_eq!(st["accepted"], false);
    assert!(st["payment_request"]["creditTransferTransaction"].is_array());
    let line = env.present(&["pay", "status", &id, "-o", "ndjson"]);
    assert_eq!(line.ok().lines().count(), 1);
    assert_eq!(line.ndjson()[0]["id"], id.as_str());
    let (header, rows) = env.present(&["pay", "status", &id, "-o", "csv"]).csv();
    assert_eq!(header, ["id", "status", "reason", "accepted"]);
    assert_eq!(rows, [[id.as_str(), "RCVD", "", "false"]]);
    documented("pay confirm");
    let mut running = env.spawn(&[
        "pay",
        "confirm",
        &id,
        "--approval-url",
        &link,
        "--psu-ip",
        support::PSU_IP,
        "-o",
        "json",
    ]);
    env.approve_payment(&mut running);
    let confirmed = running.finish().json();
    assert_eq!(keys(&confirmed), STATUS_KEYS);
    assert_eq!(
        (&confirmed["status"], &confirmed["accepted"]),
        (&Value::from("ACSC"), &Value::from(true))
    );
    documented("pay cancel");
    let other = env
        .present(&[
            "pay",
            "create",
            "--to",
            PAYEE,
            "--to-name",
            "A",
            "--amount",
            "1.00",
            "--label",
            "x",
            "-o",
            "json",
        ])
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cancelled = env.present(&["pay", "cancel", &other, "-o", "json"]).json();
    assert_eq!(keys(&cancelled), ["cancellation", "id", "reason"]);
    documented("pay");
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
        support::PSU_IP,
        "-o",
        "json",
    ]);
    env.approve_payment(&mut running);
    let rejected = running.finish();
    // A payment that ends rejected: exit 1, and the result says so too.
    assert_eq!(rejected.code, 1, "{rejected}");
    let rejected: Value = serde_json::from_str(&rejected.stdout).expect("JSON");
    assert_eq!(rejected["status"], "RJCT");
    assert_eq!(rejected["accepted"], false);

    documented("funds-check");
    let funds = env
        .present(&[
            "funds-check",
            "--account",
            &iban,
            "--amount",
            "10.00",
            "-o",
            "json",
        ])
        .json();
    assert_eq!(
        keys(&funds),
        sorted(&[
            "account",
            "amount",
            "available",
            "currency",
            "payee",
            "payment_coverage_request_id",
        ])
    );
    assert_eq!(funds["amount"], "10.00");

    // Commands without a bank.
    documented("banks");
    let banks = env.run(&["banks", "-o", "json"]).json_array();
    assert!(
        banks
            .iter()
            .all(|b| keys(b) == ["base", "changes", "profile"])
    );
    let one = env.run(&["banks", "credit-agricole", "-o", "json"]).json();
    assert_eq!(keys(&one), ["base", "changes", "fields", "profile"]);
    assert_eq!(one["profile"]["payment"]["cancellation"], false);
    let (header, rows) = env.run(&["banks", "-o", "csv"]).csv();
    assert_eq!(header[0], "name");
    assert_eq!(rows.len(), banks.len());
    // `text`, the other name of the table, still works.
    assert!(
        env.run(&["banks", "--output", "text"])
            .ok()
            .contains("NAME")
    );
    documented("doctor");
    let doctor = env.run(&["doctor", "-o", "json"]);
    let checks: Vec<Value> = serde_json::from_str(&doctor.stdout).expect("doctor JSON");
    assert!(!checks.is_empty());
    for c in &checks {
        assert_eq!(keys(c), ["check", "detail", "fix", "ok", "status"]);
    }
    let ndjson = env.run(&["doctor", "-o", "ndjson"]);
    assert_eq!(ndjson.stdout.lines().count(), checks.len());
    documented("init");
    let config = env.home.path().join("init.toml");
    let init = env
        .run(&[
            "init",
            "--bank",
            "lcl",
            "--config",
            config.to_str().unwrap(),
            "-o",
            "json",
        ])
        .json();
    assert_eq!(keys(&init), ["bank", "config", "profile", "written"]);
    assert_eq!(init["written"], "created");
    documented("sig digest");
    let body = env.home.path().join("body.json");
    std::fs::write(&body, "{}").unwrap();
    let digest = env
        .run(&["sig", "digest", body.to_str().unwrap(), "-o", "json"])
        .json();
    assert_eq!(
        digest["digest"],
        "SHA-256=RBNvo1WzZ4oRRq0W9+hknpT7T8If536DEMBg9hyq/4o="
    );
    documented("sig verify");
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let signed = env.run(&[
        "sig",
        "sign",
        "--key",
        root.join("certs.example/tpp-qseal.key").to_str().unwrap(),
        "--key-id",
        "qseal-1",
        "--date-now",
        "--headers",
        "(request-target) date digest",
        root.join("examples/payment-request.http").to_str().unwrap(),
    ]);
    let request = env.home.path().join("signed.http");
    std::fs::write(&request, signed.ok()).unwrap();
    let cert = root.join("certs.example/tpp-qseal.pem");
    let verified = env
        .run(&[
            "sig",
            "verify",
            "--key",
            cert.to_str().unwrap(),
            request.to_str().unwrap(),
            "-o",
            "json",
        ])
        .json();
    assert_eq!(keys(&verified), ["headers", "key_id", "reason", "valid"]);
    assert_eq!(
        (&verified["valid"], &verified["key_id"]),
        (&Value::from(true), &Value::from("qseal-1"))
    );
    let tampered = env.home.path().join("tampered.http");
    std::fs::write(
        &tampered,
        std::fs::read_to_string(&request)
            .unwrap()
            .replace("POST /", "PUT /"),
    )
    .unwrap();
    let refused = env.run(&[
        "sig",
        "verify",
        "--key",
        cert.to_str().unwrap(),
        tampered.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_eq!(refused.code, 1, "{refused}");
    let refused: Value = serde_json::from_str(&refused.stdout).expect("JSON");
    assert_eq!(refused["valid"], false);
    assert!(refused["reason"].as_str().unwrap().contains("signature"));
    // sync: the result of each account, for scripts (the text says it on stderr).
    documented("sync");
    let store = format!("sqlite:{}", env.home.path().join("output.db").display());
    let synced = env
        .present(&["sync", "--store", &store, "-o", "json"])
        .json();
    assert_eq!(
        keys(&synced),
        sorted(&[
            "accounts", "calls", "complete", "profile", "run", "store", "unsynced", "warnings"
        ])
    );
    assert_eq!(synced["complete"], true);
    assert_eq!(synced["accounts"].as_array().unwrap().len(), accounts.len());
    let first = &synced["accounts"][0];
    assert_eq!(
        keys(first),
        sorted(&[
            "account",
            "booked_from_pending",
            "budget_left",
            "calls",
            "deleted",
            "expired",
            "from",
            "listed",
            "new",
            "outcome",
            "unchanged",
            "updated",
        ])
    );
    assert_eq!(first["outcome"], "synced");
    assert!(first["new"].as_u64().unwrap() > 0, "{synced}");
    assert_eq!(
        first["new"], first["listed"],
        "a first sync stores what is listed"
    );
    // Again: nothing new, and CSV says the same per account.
    let (header, rows) = env.present(&["sync", "--store", &store, "-o", "csv"]).csv();
    assert_eq!(header[..3], ["profile", "account", "outcome"]);
    assert_eq!(rows.len(), accounts.len());
    let new = header.iter().position(|h| h == "new").unwrap();
    assert!(
        rows.iter().all(|r| r[2] == "synced" && r[new] == "0"),
        "{rows:?}"
    );
    // The text prints nothing on stdout.
    assert_eq!(env.present(&["sync", "--store", &store]).ok(), "");

    documented("auth logout");
    let logout = env.run(&["auth", "logout", "-o", "json"]).json();
    assert_eq!(keys(&logout), ["forgotten", "profile"]);
    assert_eq!(logout["forgotten"], true);
}

/// The store's, the sandbox's and the benches' results: the shapes docs/output.md gives.
#[test]
fn store_sandbox_and_bench_results_print_their_documented_shapes() {
    let env = Env::new();
    let store = format!("sqlite:{}", env.home.path().join("migrated.db").display());
    let migrate = |env: &Env| {
        env.run(&["store", "migrate", "--store", &store, "-o", "json"])
            .json()
    };
    let first = migrate(&env);
    assert_eq!(
        keys(&first),
        ["applied", "backend", "location", "schema_version"]
    );
    assert_eq!(first["backend"], "sqlite");
    let applied = first["applied"].as_u64().expect("a count");
    assert!(applied > 0, "a new store gets every migration: {first}");
    assert_eq!(first["schema_version"].as_u64(), Some(applied), "{first}");
    // Once current, nothing more is applied.
    let again = migrate(&env);
    assert_eq!(again["applied"], 0, "{again}");
    assert_eq!(again["schema_version"], first["schema_version"]);

    let out = env.home.path().join("pki");
    let certs = env
        .run(&[
            "sandbox",
            "certs",
            "--out",
            out.to_str().unwrap(),
            "-o",
            "json",
        ])
        .json();
    assert_eq!(keys(&certs), ["files", "out"]);
    let files = certs["files"].as_array().expect("an array of files");
    assert!(files.len() >= 6, "{certs}");
    for file in files {
        let path = std::path::Path::new(file.as_str().unwrap());
        assert!(path.is_file() && path.starts_with(&out), "{file}");
    }

    // `-o json` and the older `--json` print the same shape; asking for both is refused.
    for flag in [&["-o", "json"][..], &["--json"]] {
        let mut args = vec!["bench", "sign", "--seconds", "0.05"];
        args.extend(flag);
        let sign = env.run(&args).json();
        assert_eq!(keys(&sign), ["key_bits", "results"]);
        assert_eq!(sign["key_bits"], 2048);
        let results = sign["results"].as_array().unwrap();
        assert!(!results.is_empty(), "{sign}");
        for r in results {
            assert_eq!(
                keys(r),
                ["backend", "raw_rsa2048_per_s", "stet_request_per_s"]
            );
            assert!(r["stet_request_per_s"].as_f64().unwrap() > 0.0, "{sign}");
        }
    }
    env.run(&["bench", "sign", "--json", "-o", "json"])
        .fails(2, "cannot be used with");
}
