//! The Powens backend end to end: the `stet` binary against `stet sandbox serve --powens`,
//! over real sockets. Every command, every scenario of the test connector's clone, the
//! webauth round trip played as a browser would (the redirect followed by hand, in both the
//! loopback and the paste modes), and bad input with its exit code.

#![allow(missing_docs)]

mod support;

use std::process::Command;

use serde_json::Value;
use support::powens::*;
use support::*;

/// Runs `stet ARGS` with exactly `stdin` as its input.
fn run_with_input(env: &Env, args: &[&str], stdin: &str) -> Out {
    use std::io::Write as _;
    let mut running = env.spawn(args);
    let mut input = running.stdin.take().expect("stdin");
    // A command that refuses its arguments exits without reading stdin: its exit code and
    // stderr say why, and the broken pipe is no failure of the test.
    if let Err(e) = input.write_all(stdin.as_bytes()) {
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe,
            "write to stdin: {e}"
        );
    }
    drop(input);
    running.finish()
}

/// The test connector, as `stet connectors --output json` lists it.
fn test_connector(env: &Env) -> Value {
    env.run(&["connectors", "--output", "json"])
        .json_array()
        .into_iter()
        .find(|c| c["uuid"] == "338178e6-3d01-564f-9a7b-52ca442459bf")
        .expect("the test connector")
}

#[test]
fn connect_then_read_accounts_balances_and_transactions() {
    let env = powens_env(&[]);

    // Connectors: the test connector's clone, its fields and sources.
    let test = test_connector(&env);
    let fields: Vec<&str> = test["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["login", "password", "openapiwebsite", "directaccesswebsite"]
    );
    let table = env.run(&["connectors", "--search", "TEST", "--output", "table"]);
    assert!(
        table.ok().contains(TEST) && !table.ok().contains("Redirection"),
        "{table}"
    );
    assert_eq!(
        env.run(&["connectors", "--search", "zzz", "--output", "table"])
            .ok(),
        "(none)\n"
    );

    // Before any connection: no user yet.
    env.run(&["accounts"]).fails(77, "no Powens user");

    // Both sources in priority order; the password read from stdin (never on the command line).
    let out = run_with_input(
        &env,
        &[
            "connect",
            "--connector",
            "338178e6-3d01-564f-9a7b-52ca442459bf",
            "--field",
            "login=jdoe",
            "--field",
            "openapiwebsite=par",
            "--field",
            "directaccesswebsite=pro",
            "--output",
            "json",
        ],
        "1234\n",
    );
    let connection = &out.json_array()[0];
    assert_eq!(connection["state"], Value::Null, "{out}");
    let sources: Vec<&str> = connection["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        sources,
        ["openapi", "directaccess"],
        "added in priority order"
    );
    assert!(out.stderr.contains("Made Powens user"), "{out}");
    assert!(out.stderr.contains("stet accounts enable"), "{out}");
    // On the wire, every value was a JWE: the creation and the second source.
    let posts = credential_posts(&env);
    assert_eq!(posts.len(), 2, "{posts:#?}");
    assert_all_encrypted(&posts);
    let names = |post: &Value| -> Vec<String> {
        let mut names: Vec<String> = post["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    };
    assert_eq!(
        names(&posts[0]),
        ["login", "openapiwebsite", "password"],
        "{posts:#?}"
    );
    assert_eq!(
        names(&posts[1]),
        ["directaccesswebsite", "login", "password"],
        "{posts:#?}"
    );

    let listed = env.run(&["connections", "--output", "json"]).json_array();
    assert_eq!(listed.len(), 1);
    let table = env.run(&["connections", "--output", "table"]);
    assert!(table.ok().contains("nothing: it works"), "{table}");

    // Accounts: all disabled, marked, as STET resources with stable ids.
    let accounts = env.run(&["accounts", "--output", "json"]).json_array();
    assert_eq!(accounts.len(), 6);
    for a in &accounts {
        assert_eq!(a["_powens"]["disabled"], true, "{a}");
        let id = a["resourceId"].as_str().unwrap();
        assert!(id.starts_with("p1-") && id.len() <= 35, "{id}");
        assert!(
            a["cashAccountType"].is_string() && a["name"].is_string(),
            "{a}"
        );
    }
    let card = accounts
        .iter()
        .find(|a| a["_powens"]["type"] == "card")
        .unwrap();
    assert_eq!(card["cashAccountType"], "CARD");
    assert_eq!(card["linkedAccount"], accounts[0]["resourceId"]);
    let table = env.run(&["accounts", "--output", "table"]);
    assert!(
        table.ok().contains("no: stet accounts enable 1001"),
        "{table}"
    );

    // Nothing is read before the PSU enables an account.
    env.run(&["transactions", "--all"])
        .fails(77, "no account is enabled");
    env.run(&["transactions", "1001"])
        .fails(77, "stet accounts enable 1001");
    env.run(&["balances", "1001"]).fails(77, "disabled");

    // Enabling: by Powens id, and by IBAN.
    let usd = accounts.iter().find(|a| a["currency"] == "USD").unwrap();
    let usd_iban = usd["accountId"]["iban"].as_str().unwrap().to_owned();
    let out = env.run(&["accounts", "enable", "1001", &usd_iban]);
    assert_eq!(out.ok(), "", "said on stderr only: {out}");
    // A script asks for JSON: the documented keys (docs/output.md), nothing else.
    let out = env.run(&["accounts", "enable", &usd_iban, "--output", "json"]);
    let enabled = out.json();
    assert_eq!(keys(&enabled), ["enabled"], "{out}");
    let item = &enabled["enabled"][0];
    assert_eq!(keys(item), ["id", "name", "resourceId"], "{out}");
    assert_eq!(item["resourceId"], usd["resourceId"], "{out}");
    let accounts = env.run(&["accounts", "--output", "json"]).json_array();
    let enabled: Vec<&Value> = accounts
        .iter()
        .filter(|a| a["_powens"]["disabled"] == false)
        .collect();
    assert_eq!(enabled.len(), 2);

    // Balances, exact: 2345.67 booked, 2345.67 - 48.20 expected.
    let out = env.run(&["balances", "--output", "ndjson"]);
    assert!(
        out.ok().contains(r#""amount":2345.67,"currency":"EUR"}"#),
        "{out}"
    );
    assert!(out.ok().contains(r#""amount":2297.47"#), "{out}");
    assert_eq!(out.ndjson().len(), 4);

    // Transactions: every page (of 7) of both accounts, the one deleted at the bank left out.
    let out = env.run(&[
        "transactions",
        "--all",
        "--limit",
        "7",
        "--output",
        "ndjson",
    ]);
    let rows = out.ndjson();
    assert_eq!(rows.len(), 63 + 5, "{out}");
    let ids: std::collections::HashSet<&str> = rows
        .iter()
        .map(|t| t["resourceId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), rows.len(), "no transaction twice");
    assert_eq!(rows.iter().filter(|t| t["status"] == "PDNG").count(), 2);
    assert!(
        rows.iter()
            .any(|t| t["transactionAmount"]["currency"] == "USD")
    );
    assert!(
        rows.iter()
            .any(|t| t["relatedParties"]["creditor"]["name"] == "SCI DES LILAS")
    );
    for line in out.stdout.lines() {
        // Amounts as Powens wrote them: digits and two decimals, no float.
        let amount = line
            .split(r#""amount":"#)
            .nth(1)
            .unwrap()
            .split(',')
            .next()
            .unwrap();
        assert!(
            amount.split('.').nth(1).is_some_and(|d| d.len() == 2),
            "{line}"
        );
    }

    // A window: --to exclusive, as for a STET bank.
    let all: Vec<String> = rows
        .iter()
        .filter_map(|t| t["bookingDate"].as_str().map(str::to_owned))
        .collect();
    let (from, to) = (day(-30), day(-10));
    let out = env.run(&[
        "transactions",
        "1001",
        "--from",
        &from,
        "--to",
        &to,
        "--output",
        "json",
    ]);
    let window = out.json_array();
    assert!(!window.is_empty());
    for t in &window {
        let d = t["bookingDate"].as_str().unwrap();
        assert!(
            d >= from.as_str() && d < to.as_str(),
            "{d} outside [{from}, {to})"
        );
    }
    assert!(window.len() < all.len());
    let csv = env.run(&[
        "transactions",
        "--all",
        "--status",
        "pending",
        "--output",
        "csv",
    ]);
    assert_eq!(csv.csv().1.len(), 2, "{csv}");

    // The user token: status, rotation, revocation.
    assert!(env.run(&["auth", "status"]).ok().contains("user 1"));
    let out = env.run(&["auth", "login"]);
    assert!(
        out.stderr.contains("Renewed the token of Powens user 1"),
        "{out}"
    );
    env.run(&["accounts", "--output", "json"]).ok();

    // Deleting a connection; an unknown one is Powens' HTML page, said as such.
    let deleted = env
        .run(&["connections", "delete", "1", "--output", "json"])
        .json();
    assert_eq!(keys(&deleted), ["connection", "deleted"]);
    assert_eq!(
        (&deleted["connection"], &deleted["deleted"]),
        (&Value::from(1), &Value::from(true))
    );
    assert_eq!(
        env.run(&["connections", "--output", "table"]).ok(),
        "(none)\n"
    );
    env.run(&["connections", "delete", "1"])
        .fails(65, "an HTML page instead of JSON");

    let out = env.run(&["auth", "logout"]);
    assert!(
        out.stderr
            .contains("Revoked and forgot the token of Powens user 1"),
        "{out}"
    );
    env.run(&["accounts"]).fails(77, "no Powens user");
}

/// Reads the child's stderr until the webauth URL it prints.
fn webauth_url(running: &mut Running) -> String {
    loop {
        let line = running
            .lines
            .recv_timeout(LINE_TIMEOUT)
            .unwrap_or_else(|e| {
                panic!("no webauth URL ({e}); stderr: {}", running.seen.join("\n"))
            });
        running.seen.push(line.clone());
        if line.trim().starts_with("https://") && line.contains("/webauth-page") {
            return line.trim().to_owned();
        }
    }
}

/// The browser at the bank's page: follows the URL and gives the redirect's `Location`.
fn at_the_bank(env: &Env, url: &str) -> String {
    let ca = std::fs::read(env.sandbox.get("ca")).expect("CA");
    let url = url.to_owned();
    block_on(async move {
        let browser = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let response = browser.get(&url).send().await.expect("GET the bank's page");
        assert_eq!(response.status().as_u16(), 302);
        response.headers()["location"].to_str().unwrap().to_owned()
    })
}

#[test]
fn every_scenario_ends_as_documented() {
    // The key changes after every accepted credential post: runs that post twice (a code after
    // the credentials) meet a stale key and must fetch it again.
    let env = powens_env(&["--powens-rotate-key-every", "1"]);

    let failing = [
        ("wrongpass", 77, "is `wrongpass`"),
        ("passwordExpired", 77, "password expired"),
        ("actionNeeded", 77, "act on its site"),
        ("websiteUnavailable", 69, "unavailable"),
        ("bug", 69, "`bug`"),
        ("rateLimiting", 75, "limits calls"),
    ];
    for (scenario, code, needle) in failing {
        connect(&env, scenario).fails(code, needle);
    }
    // Each scenario's credentials reached the mock once: its key rotated after each of them,
    // and a refusal that is not about the key (a wrong password) is never posted again, or
    // the bank would see the same wrong password twice.
    let posts = credential_posts(&env);
    assert_eq!(posts.len(), failing.len(), "{posts:#?}");
    for ((scenario, ..), post) in failing.iter().zip(&posts) {
        assert_eq!(post["scenario"], *scenario, "{post}");
        assert_eq!(post["key"], "current", "{post}");
        assert_eq!(post["path"], "/users/me/connections", "{post}");
    }
    // A connection in rateLimiting exists, and says what to do.
    let table = env.run(&["connections", "--output", "table"]);
    assert!(
        table.ok().contains("rateLimiting") && table.ok().contains("wait"),
        "{table}"
    );

    // The one-time code: asked (read from stdin here), encrypted with a fetched-again key.
    let out = run_with_input(
        &env,
        &[
            "connect",
            "--connector",
            TEST,
            "--source",
            "openapi",
            "--field",
            "login=jdoe",
            "--field",
            "password=1234",
            "--field",
            "openapiwebsite=additionalInformationNeeded",
        ],
        "abcd\n",
    );
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stderr.contains("Powens asks: openapisms: Dites abcd"),
        "{out}"
    );
    // A wrong code: the bank refuses it.
    let out = run_with_input(
        &env,
        &[
            "connect",
            "--connector",
            TEST,
            "--source",
            "openapi",
            "--field",
            "login=jdoe",
            "--field",
            "password=1234",
            "--field",
            "openapiwebsite=additionalInformationNeeded",
        ],
        "zzzz\n",
    );
    out.fails(77, "wrongpass");
    // Both codes met a key rotated after the credentials were posted: each was refused unread
    // once (a stale `kid`), then posted again with the new key and read once, the right one
    // accepted, the wrong one refused without being tried a second time.
    let codes: Vec<Value> = credential_posts(&env)
        .into_iter()
        .skip(failing.len())
        .filter(|p| p["path"] != "/users/me/connections")
        .collect();
    let outcomes: Vec<(&str, &Value, &Value)> = codes
        .iter()
        .map(|p| (p["key"].as_str().unwrap(), &p["status"], &p["code"]))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("stale", &Value::from(400), &Value::from("invalidValue")),
            ("current", &Value::from(200), &Value::Null),
            ("stale", &Value::from(400), &Value::from("invalidValue")),
            ("current", &Value::from(400), &Value::from("wrongpass")),
        ],
        "{codes:#?}"
    );
    for post in &codes {
        assert_eq!(post["fields"][0]["name"], "openapisms", "{post}");
    }

    // Approval in the app, and a strong authentication leading to it.
    let out = connect(&env, "shortDecoupled");
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stderr.contains("confirm the connection"), "{out}");
    let out = connect(&env, "SCARequired");
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stderr
            .contains("Confirm the connection in your bank's app"),
        "{out}"
    );

    // The bank's site, loopback mode: the test is the browser.
    let mut running = env.spawn(&[
        "connect",
        "--connector",
        TEST,
        "--source",
        "openapi",
        "--field",
        "login=jdoe",
        "--field",
        "password=1234",
        "--field",
        "openapiwebsite=webauthRequired",
    ]);
    let url = webauth_url(&mut running);
    let location = at_the_bank(&env, &url);
    assert!(
        location.contains("id_connection=") && location.contains("state="),
        "{location}"
    );
    assert_eq!(deliver(&location), 200);
    let out = running.finish();
    assert_eq!(out.code, 0, "{out}");

    // Paste mode: nothing pasted leaves the connection waiting, and says how to go on.
    let mut running = env.spawn(&[
        "connect",
        "--no-browser",
        "--connector",
        TEST,
        "--source",
        "openapi",
        "--field",
        "login=jdoe",
        "--field",
        "password=1234",
        "--field",
        "openapiwebsite=webauthRequired",
    ]);
    webauth_url(&mut running);
    running.paste("");
    running.finish().fails(77, "no URL was pasted");
    let connections = env.run(&["connections", "--output", "json"]).json_array();
    let waiting = connections
        .iter()
        .find(|c| c["state"] == "webauthRequired")
        .expect("a connection waiting for the bank's site");
    let id = waiting["id"].to_string();
    let table = env.run(&["connections", "--output", "table"]);
    assert!(
        table
            .ok()
            .contains(&format!("stet connect --connection {id}")),
        "{table}"
    );
    // ... and `stet connect --connection ID` finishes it, pasting the URL this time.
    let mut running = env.spawn(&["connect", "--no-browser", "--connection", &id]);
    let url = webauth_url(&mut running);
    running.paste(&at_the_bank(&env, &url));
    assert_eq!(running.finish().code, 0);
    // A pasted URL with another state is refused.
    let mut running = env.spawn(&[
        "connect",
        "--no-browser",
        "--connector",
        TEST,
        "--source",
        "openapi",
        "--field",
        "login=jdoe",
        "--field",
        "password=1234",
        "--field",
        "openapiwebsite=webauthRequired",
    ]);
    let url = webauth_url(&mut running);
    let forged = at_the_bank(&env, &url).replace("state=", "state=x");
    running.paste(&forged);
    running.finish().fails(77, "another `state`");

    // A connector reached only through the bank's site.
    let mut running = env.spawn(&["connect", "--connector", "Redirection"]);
    let url = webauth_url(&mut running);
    assert_eq!(deliver(&at_the_bank(&env, &url)), 200);
    assert_eq!(running.finish().code, 0);
    assert_all_encrypted(&credential_posts(&env));
}

#[test]
fn bad_input_says_what_and_exits_as_documented() {
    let env = powens_env(&[]);
    // Input refused before anything is sent.
    env.run(&["connect", "--connector", "no such bank"])
        .fails(2, "no connector `no such bank`");
    let out = env.run(&[
        "connect",
        "--connector",
        TEST,
        "--source",
        "openapi",
        "--field",
        "login=jdoe",
        "--field",
        "password=12a4",
        "--field",
        "openapiwebsite=par",
    ]);
    out.fails(2, "does not match its pattern ^[0-9]{4}$");
    assert!(
        !out.stderr.contains("12a4"),
        "the value is not shown: {out}"
    );
    connect(&env, "nope").fails(2, "not one of the values of");
    env.run(&["connect", "--connector", TEST, "--field", "login"])
        .fails(2, "expected NAME=VALUE");
    // A field not given and no input to read it from.
    env.run(&[
        "connect",
        "--connector",
        TEST,
        "--source",
        "openapi",
        "--field",
        "login=j",
    ])
    .fails(2, "pass it as --field password=VALUE");

    // The wrong client secret (the later variable wins), on a call that carries it.
    let mut env = env;
    env.vars
        .push(("STET_CLIENT_SECRET".into(), "0123456789abcdef-wrong".into()));
    env.run(&["auth", "login"])
        .fails(78, "refused the client credentials");
    env.vars.pop();

    // Profiles that cannot be used.
    /// A profile name, its keys overridden, the exit code and what the error says.
    type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], i32, &'a str);
    let cases: [Case<'_>; 4] = [
        (
            "domain",
            &[("domain", "\"Acme Sandbox\"")],
            78,
            "not a Powens domain",
        ),
        (
            "provider",
            &[("provider", "\"plaid\"")],
            78,
            "`plaid` is not a provider",
        ),
        ("qwac", &[("qwac_cert", "\"q.pem\"")], 78, "`qwac_cert`"),
        // A server answering web pages where JSON is due.
        (
            "html",
            &[(
                "api_base",
                &format!(
                    "{:?}",
                    format!(
                        "{}/nowhere",
                        env.sandbox.info["powens"]["api_base"].as_str().unwrap()
                    )
                ),
            )],
            65,
            "an HTML page instead of JSON",
        ),
    ];
    for (name, overrides, code, needle) in cases {
        let path = write_profile(&env, name, overrides);
        let out = env.run(&["--config", path.to_str().unwrap(), "connectors"]);
        out.fails(code, needle);
    }
    // A STET command on a Powens profile, and the other way round.
    env.run(&["identity"]).fails(78, "this is a Powens profile");
    let stet = env.config.to_str().unwrap().to_owned();
    env.run(&["--config", &stet, "accounts", "enable", "1"])
        .fails(2, "for Powens profiles");
    env.run(&["--config", &stet, "connections"])
        .fails(78, "works with a Powens profile");

    // Domain keys stet must refuse.
    for (fault, needle) in [("ec", "`EC` key"), ("small", "1024 bits")] {
        let env = powens_env(&["--powens-key-fault", fault]);
        connect(&env, "par").fails(65, needle);
    }
}

#[test]
fn webhook_signatures_are_checked_against_an_independent_hmac() {
    let env = powens_env(&[]);
    let body = r#"{"connection":{"id":7,"state":null},"id_webhook_data":1}"#;
    let path = "/powens/webhook";
    let date = {
        let now = time::OffsetDateTime::now_utc();
        now.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    // Python's hmac computes the signature: not stet's code.
    let script = "import base64, hashlib, hmac, sys\nsecret, path, date = sys.argv[1:4]\nbody = sys.stdin.buffer.read()\n\
        mac = hmac.new(secret.encode(), b'POST.' + path.encode() + b'.' + date.encode() + b'.' + body, hashlib.sha256)\n\
        print(base64.b64encode(mac.digest()).decode())";
    let secret = "whsec-CANARY-0123456789abcdef";
    let output = Command::new(stet_testkit::python())
        .args(["-c", script, secret, path, &date])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(body.as_bytes())?;
            child.wait_with_output()
        })
        .expect("python");
    let signature = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let mut env = env;
    env.vars.push(("HOOK_SECRET".into(), secret.into()));
    // `stet powens webhook verify …` in `env`, `extra` arguments after.
    let verify_in = |env: &Env, sig: &str, date: &str, url: &str, body: &str, extra: &[&str]| {
        let mut args = vec![
            "powens",
            "webhook",
            "verify",
            "--secret-env",
            "HOOK_SECRET",
            "--signature",
            sig,
            "--date",
            date,
            "--url-path",
            url,
        ];
        args.extend(extra);
        run_with_input(env, &args, body)
    };
    let verify_with = |sig: &str, date: &str, url: &str, body: &str, extra: &[&str]| {
        verify_in(&env, sig, date, url, body, extra)
    };
    let verify =
        |sig: &str, date: &str, url: &str, body: &str| verify_with(sig, date, url, body, &[]);
    assert_eq!(verify(&signature, &date, path, body).ok(), "ok\n");
    // The full URL is accepted too: its path is tried.
    assert_eq!(
        verify(
            &signature,
            &date,
            &format!("https://tpp.example{path}"),
            body
        )
        .ok(),
        "ok\n"
    );
    verify(&signature, &date, path, &body.replace('7', "8")).fails(1, "does not match");
    // For scripts: the documented keys (docs/output.md), a failure said in them too.
    let json = |sig: &str| verify_with(sig, &date, path, body, &["--output", "json"]);
    let out = json(&signature);
    let valid = out.json();
    assert_eq!(keys(&valid), ["path", "reason", "valid"], "{out}");
    assert_eq!(
        (&valid["valid"], &valid["path"]),
        (&Value::from(true), &Value::from(path))
    );
    assert!(valid["reason"].is_null());
    let out = json("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
    assert_eq!(out.code, 1, "{out}");
    let refused: Value = serde_json::from_str(&out.stdout).expect("JSON on a refusal");
    assert_eq!(keys(&refused), ["path", "reason", "valid"], "{out}");
    assert_eq!(refused["valid"], false);
    assert!(
        refused["reason"]
            .as_str()
            .unwrap()
            .contains("does not match"),
        "{out}"
    );
    verify(&signature, &date, "/other", body).fails(1, "does not match");
    verify(&signature, "2020-01-01T00:00:00Z", path, body).fails(1, "outside the 300 s window");
    verify(&signature, "yesterday", path, body).fails(2, "not an ISO 8601 date-time");
    let mut unset = env;
    unset.vars.retain(|(k, _)| k != "HOOK_SECRET");
    verify_in(&unset, &signature, &date, path, body, &[]).fails(78, "HOOK_SECRET is not set");
}

#[test]
fn demo_runs_the_powens_journey() {
    // The demo starts its own mock: no sandbox, no configuration, only an empty HOME.
    let home = tempfile::tempdir().expect("temp dir");
    let args = ["demo", "--provider", "powens"];
    let out = finished(&args, at_home(home.path(), &args));
    let text = out.ok();
    let shown: Vec<&str> = text
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("> "))
        .collect();
    let has = |line: &str| shown.contains(&line);

    // The steps, in order.
    let titles: Vec<&str> = text
        .lines()
        .filter(|l| {
            l.as_bytes().first().is_some_and(u8::is_ascii_digit) && l.get(1..3) == Some(". ")
        })
        .collect();
    assert_eq!(
        titles,
        [
            "1. The user",
            "2. Connectors",
            "3. Connect",
            "4. Accounts",
            "5. Balances",
            "6. Transactions"
        ],
        "{out}"
    );
    assert!(has("Powens user 1"), "{out}");
    assert!(
        has(
            "Connecteur de test (338178e6-3d01-564f-9a7b-52ca442459bf), 4 field(s), auth credentials"
        ),
        "{out}"
    );
    // Every value said to go as a JWE, the password masked, then the one-time code asked.
    assert!(has("Identifiant (login): demo (sent as a JWE)"), "{out}");
    assert!(has("Code (1234) (password): •••• (sent as a JWE)"), "{out}");
    assert!(has("Powens asks: openapisms: Dites abcd"), "{out}");
    assert!(
        has("Dites abcd (openapisms): abcd (sent as a JWE)"),
        "{out}"
    );
    assert!(has("connection 1: ok"), "{out}");
    assert!(
        shown
            .iter()
            .any(|l| l.starts_with("domain key `") && l.ends_with("`, RSA-2048")),
        "{out}"
    );

    // Six accounts, all disabled until the PSU enables the checking account.
    let accounts: Vec<&&str> = shown.iter().filter(|l| l.ends_with("(disabled)")).collect();
    assert_eq!(accounts.len(), 6, "{out}");
    assert!(has("1001 Compte chèque 2345.67 EUR (disabled)"), "{out}");
    assert!(has("1004 Compte USD 1200.10 USD (disabled)"), "{out}");
    assert!(has("the PSU enables 1001 (Compte chèque)"), "{out}");

    // Balances exact; transactions over every page, the first three shown with stable ids.
    assert!(has("CLBD 2345.67 EUR") && has("XPCD 2297.47 EUR"), "{out}");
    assert!(has("63 transactions in 4 pages"), "{out}");
    let transactions: Vec<&&str> = shown.iter().filter(|l| l.starts_with("p1-")).collect();
    assert_eq!(transactions.len(), 3, "{out}");
    for t in &transactions {
        assert!(t.contains(" BOOK ") || t.contains(" PDNG "), "{t}");
    }
    assert!(
        transactions[0].contains(" PDNG "),
        "the newest is coming: {out}"
    );
    assert!(text.contains("\nDone: "), "{out}");
}

#[test]
fn a_list_field_is_chosen_by_its_number_read_from_stdin() {
    let env = powens_env(&[]);
    // The number of `pro` among the scenarios, as the connector lists them.
    let test = test_connector(&env);
    let field = test["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "openapiwebsite")
        .expect("the scenario field");
    let values: Vec<&str> = field["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["value"].as_str().unwrap())
        .collect();
    let n = values.iter().position(|v| *v == "pro").expect("pro") + 1;
    assert!(n > 1, "a number that is not the first choice: {values:?}");

    let args = [
        "connect",
        "--connector",
        TEST,
        "--source",
        "openapi",
        "--field",
        "login=jdoe",
        "--field",
        "password=1234",
        "--output",
        "json",
    ];
    let out = run_with_input(&env, &args, &format!("{n}\n"));
    assert_eq!(out.code, 0, "{out}");
    // The choices were shown, numbered, then the prompt.
    assert!(out.stderr.contains(&format!("  {n}. pro\n")), "{out}");
    assert!(out.stderr.contains("  1. "), "{out}");
    assert!(out.stderr.contains("choose (number or value): "), "{out}");
    assert_eq!(out.json_array()[0]["state"], Value::Null, "{out}");
    // What was sent is the chosen value, not the number.
    let posts = credential_posts(&env);
    assert_eq!(posts.len(), 1, "{posts:#?}");
    assert_eq!(posts[0]["scenario"], "pro", "{posts:#?}");
    assert_all_encrypted(&posts);

    // A number past the list is no choice: it is checked as a value, and refused before
    // anything is sent.
    let out = run_with_input(&env, &args, &format!("{}\n", values.len() + 1));
    out.fails(2, "not one of the values of");
    // The value itself, typed instead of its number, works too.
    let out = run_with_input(&env, &args, "par\n");
    assert_eq!(out.code, 0, "{out}");
    let posts = credential_posts(&env);
    assert_eq!(posts.len(), 2, "{posts:#?}");
    assert_eq!(posts[1]["scenario"], "par", "{posts:#?}");
}

/// On a terminal, a password field is asked with the echo off: a pseudo-terminal (Python's
/// `pty`) waits for the prompt and for the terminal's echo to be switched off, types the
/// password, and it never comes back on the screen; the connection is made with it.
#[test]
fn a_password_typed_at_a_terminal_is_not_echoed() {
    const PASSWORD: &str = "pty-typed-Secret-7Qx2";
    let env = powens_env(&["--powens-password", PASSWORD]);
    let script = r#"
import os, pty, select, sys, termios, time
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
seen = b""
def pump(until, seconds):
    global seen
    end = time.time() + seconds
    while time.time() < end:
        if until is not None and until(seen):
            return True
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                data = os.read(fd, 4096)
            except OSError:
                return False
            if not data:
                return False
            seen += data
    return until is not None and until(seen)
def echo_off(_):
    return not termios.tcgetattr(fd)[3] & termios.ECHO
if not pump(lambda s: b"assword" in s, 60) or not pump(echo_off, 20):
    sys.stdout.write(seen.decode(errors="replace"))
    sys.exit(90)
os.write(fd, os.environ["TYPED"].encode() + b"\r")
pump(None, 60)
_, status = os.waitpid(pid, 0)
sys.stdout.write(seen.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let python = stet_testkit::python();
    let template = env.command(&[]);
    let mut cmd = Command::new(&python);
    cmd.env_clear();
    for (k, v) in template.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    cmd.env("TYPED", PASSWORD).args([
        "-c",
        script,
        STET,
        "connect",
        "--connector",
        TEST,
        "--source",
        "openapi",
        "--field",
        "login=jdoe",
        "--field",
        "openapiwebsite=par",
        "--no-browser",
    ]);
    let out = cmd.output().expect("run python");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert_ne!(out.status.code(), Some(90), "no hidden prompt: {screen}");
    assert!(out.status.success(), "{:?}: {screen}", out.status);
    assert!(screen.contains("assword"), "the prompt: {screen}");
    assert!(
        !screen.contains(PASSWORD),
        "the password was echoed: {screen}"
    );
}
