//! stet through Debian's nginx, the reverse proxy most often in front of bank APIs, over
//! HTTP/2 and over HTTP/1.1, with client certificates required: OAuth token calls, signed GETs
//! and POSTs, pagination and retries. A witness on the far side of nginx checks every
//! signature with Python's `cryptography`, from the request as nginx forwarded it, `host`
//! included.

mod interop;
mod support;

use interop::{Front, Nginx, Pki, Witness, free_port, origin, through};
use serde_json::Value;
use support::{Env, PAYEE, Sandbox};

/// Signs the host too: what the bank's side of nginx receives must be what stet signed.
const SIGNED: &str = r#"["(request-target)", "host", "date", "x-request-id", "digest"]"#;

/// A profile named `name` whose API and token calls go through nginx on `port`, to `bank`.
fn profile_through(env: &Env, bank: &Sandbox, name: &str, port: u16) -> String {
    let q = |s: String| format!("{s:?}");
    let path = env.config_with(
        name,
        &[
            ("api_base", &q(through(bank.get("api_base"), port))),
            ("token_url", &q(through(bank.get("token_url"), port))),
            ("authorize_url", &q(bank.get("authorize_url").to_owned())),
            ("key_id", &q(bank.get("key_id").to_owned())),
            ("client_id", &q(bank.get("client_id").to_owned())),
            ("signed_headers", SIGNED),
        ],
    );
    path.display().to_string()
}

#[test]
fn through_nginx_over_http2_and_http1_the_far_side_verifies_every_signature() {
    let pki = Pki::new();
    let certs = pki.arg();
    // Pages of 5: the last 90 days of transactions take several.
    let env = Env::with(
        &[
            "--certs",
            &certs,
            "--link-style",
            "path",
            "--page-size",
            "5",
        ],
        "sandbox",
    );
    // A second bank that answers every third API request 503: GETs are retried.
    let flaky = Sandbox::start(
        env.home.path(),
        &[
            "--certs",
            &certs,
            "--link-style",
            "path",
            "--accounts",
            "1",
            "--page-size",
            "5",
            "--faults",
            "503:every=3",
        ],
    );
    let witness = Witness::start(Some(&pki.path("tpp-qseal.pem")), None);
    let ports = [free_port(), free_port(), free_port(), free_port()];
    let fronts: Vec<Front> = [
        (ports[0], true, &env.sandbox),
        (ports[1], false, &env.sandbox),
        (ports[2], true, &flaky),
        (ports[3], false, &flaky),
    ]
    .into_iter()
    .map(|(port, http2, bank)| Front {
        port,
        http2,
        upstream: origin(bank.get("api_base")),
        witness: Some(witness.port),
    })
    .collect();
    let nginx = Nginx::start(&pki, &fronts);

    let mut walked = Vec::new();
    for (name, port) in [("h2", ports[0]), ("h1", ports[1])] {
        let config = profile_through(&env, &env.sandbox, name, port);
        let config = config.as_str();
        // The PSU's consent: the code is exchanged at the token endpoint, through nginx.
        env.login(&["--config", config]);
        let accounts = env
            .present(&["accounts", "--config", config, "--output", "json"])
            .json_array();
        assert_eq!(accounts.len(), 3);
        // `_links.next` followed from page to page.
        let transactions = env
            .present(&[
                "transactions",
                "ACC0001",
                "--config",
                config,
                "--output",
                "json",
            ])
            .json_array();
        assert!(transactions.len() > 10, "{transactions:?}");
        walked.push(transactions);
        // Signed POSTs with a client-credentials token.
        let created = env.present(&[
            "pay",
            "create",
            "--config",
            config,
            "--to",
            PAYEE,
            "--to-name",
            "Ana Smith",
            "--amount",
            "12.34",
            "--label",
            "through nginx",
            "--output",
            "json",
        ]);
        assert!(created.json()["id"].is_string(), "{created}");
        let iban = accounts[0]["accountId"]["iban"].as_str().unwrap();
        env.present(&[
            "funds-check",
            "--config",
            config,
            "--account",
            iban,
            "--amount",
            "10.00",
        ])
        .ok();
    }
    for (name, port) in [("flaky-h2", ports[2]), ("flaky-h1", ports[3])] {
        let config = profile_through(&env, &flaky, name, port);
        env.login(&["--config", &config]);
        let out = env.present(&[
            "transactions",
            "ACC0001",
            "--config",
            &config,
            "--output",
            "json",
        ]);
        walked.push(out.json_array());
    }
    assert!(walked.iter().all(|w| w.len() == walked[0].len()));

    // nginx: every request over the protocol of its port, none refused; no duplicate host.
    let access = nginx.access();
    let errors = nginx.error_log();
    assert!(!errors.contains("duplicate host"), "{errors}");
    for (port, protocol) in [
        (ports[0], "HTTP/2.0"),
        (ports[1], "HTTP/1.1"),
        (ports[2], "HTTP/2.0"),
        (ports[3], "HTTP/1.1"),
    ] {
        let lines: Vec<_> = access.iter().filter(|a| a.port == port).collect();
        assert!(!lines.is_empty(), "nothing went through port {port}");
        let flaky = port == ports[2] || port == ports[3];
        for a in &lines {
            assert_eq!(a.protocol, protocol, "{a:?}");
            assert!(
                a.status < 400 || (flaky && a.status == 503),
                "nginx or the bank refused {a:?}\n{errors}"
            );
        }
        // Token calls went through nginx too.
        assert!(
            lines
                .iter()
                .any(|a| a.method == "POST" && a.target == "/token"),
            "{port}: {lines:?}"
        );
    }
    // The flaky bank's 503s were retried, through nginx, until the pages came.
    for port in [ports[2], ports[3]] {
        let refused = access
            .iter()
            .filter(|a| a.port == port && a.status == 503)
            .count();
        assert!(refused >= 1, "{port}: {access:?}");
    }

    // The far side: every copy nginx forwarded, as it forwarded it.
    let seen = witness.wait_for(access.len());
    assert_eq!(seen.len(), access.len(), "one copy per request: {seen:#?}");
    let signed: Vec<&Value> = seen.iter().filter(|s| !s["signature"].is_null()).collect();
    for s in &signed {
        let check = &s["signature"];
        assert_eq!(check["ok"], true, "Python's cryptography refuses {s:#}");
        assert!(
            check["headers"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h == "host"),
            "{s:#}"
        );
        let host = s["host"].as_str().unwrap();
        let port: u16 = host.rsplit(':').next().unwrap().parse().unwrap();
        assert!(
            ports.contains(&port),
            "host {host} is the authority as sent"
        );
    }
    // Every API request was signed; the unsigned ones are the token calls.
    for s in &seen {
        if s["signature"].is_null() {
            assert_eq!(s["target"], "/token", "unsigned: {s:#}");
        }
    }
    let count = |protocol: &str, method: &str, part: &str| {
        signed
            .iter()
            .filter(|s| {
                s["protocol"] == protocol
                    && s["method"] == method
                    && s["target"].as_str().unwrap().contains(part)
            })
            .count()
    };
    for protocol in ["HTTP/2.0", "HTTP/1.1"] {
        // Two walks of at least 3 pages each.
        assert!(count(protocol, "GET", "/transactions") >= 6, "{protocol}");
        assert!(
            count(protocol, "POST", "/payment-requests") >= 1,
            "{protocol}"
        );
        assert!(
            count(protocol, "POST", "/funds-confirmations") >= 1,
            "{protocol}"
        );
        assert!(count(protocol, "GET", "/accounts") >= 1, "{protocol}");
    }
    // A retried request is signed again, with its own X-Request-ID.
    let ids: std::collections::HashSet<&str> = signed
        .iter()
        .map(|s| s["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), signed.len());
}
