//! stet's JWE against an implementation nobody on the project wrote: Python's jwcrypto
//! (pinned in xtask/requirements.txt, 1.6.1).
//!
//! - stet encrypts for a jwcrypto key; jwcrypto decrypts, choosing the key by `kid` from a
//!   set of two, and sees the header stet wrote.
//! - jwcrypto encrypts for stet's key (the sandbox mock's side); stet decrypts.
//! - jwcrypto encrypts for the running Powens mock's `GET /publickey`, and the mock accepts
//!   the connection those JWEs carry: the mock decrypts what another implementation made.
//! - One altered byte in any of the five parts is refused, by jwcrypto and by stet.
//! - Naive Paris times are read as Python's `zoneinfo` reads them, across the changes.

#![allow(missing_docs)]

use std::io::Write as _;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use stet_powens::jwe::{DecryptingKey, DomainKey};

const PEER: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/peer/jwe_peer.py");

/// Runs the Python peer with one JSON request.
fn peer(request: &Value) -> Value {
    run_python(&[PEER], &request.to_string())
}

fn run_python(args: &[&str], stdin: &str) -> Value {
    let mut child = Command::new(stet_testkit::python())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the Python peer");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write to Python");
    let out = child.wait_with_output().expect("wait for Python");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the peer answers JSON")
}

/// The same token with one byte changed in part `index` (a character in the middle of it,
/// so the decoded bytes differ, not only padding bits).
fn altered(token: &str, index: usize) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let part = &mut parts[index];
    let at = part.len() / 2;
    let old = part.as_bytes()[at];
    let new = if old == b'A' { 'B' } else { 'A' };
    part.replace_range(at..=at, &new.to_string());
    parts.join(".")
}

/// Values of every shape a field takes: digits, text, non-ASCII and quotes, and one longer
/// than an AES block many times over. (Not the empty string: jwcrypto refuses to decrypt an
/// empty payload, and stet never sends an empty credential.)
const VALUES: [&str; 4] = [
    "1234",
    "Identifiant",
    "é ✓ Zürich \"quoted\"",
    "a one-time code, then a much longer value: 0123456789abcdefghijklmnopqrstuvwxyz 0123456789abcdefghijklmnopqrstuvwxyz",
];

#[test]
fn stet_encrypts_and_jwcrypto_decrypts_by_kid() {
    let keys = peer(&json!({"op": "keys"}));
    let public =
        DomainKey::from_jwk(keys["public"].to_string().as_bytes()).expect("jwcrypto's JWK");
    assert_eq!(public.kid(), "py-2");
    let tokens: Vec<String> = VALUES
        .iter()
        .map(|v| public.encrypt(v.as_bytes()).expect("encrypt"))
        .collect();
    let mut all = tokens.clone();
    // Each part of the first token altered in turn.
    for index in 0..5 {
        all.push(altered(&tokens[0], index));
    }
    let answers = peer(&json!({"op": "decrypt", "private": keys["private"], "tokens": all}));
    let answers = answers.as_array().expect("a list");
    for (value, answer) in VALUES.iter().zip(answers) {
        assert_eq!(answer["ok"], true, "{answer}");
        assert_eq!(answer["payload"], *value);
        assert_eq!(answer["header"]["alg"], "RSA-OAEP-256");
        assert_eq!(answer["header"]["enc"], "A256GCM");
        assert_eq!(answer["header"]["kid"], "py-2");
    }
    for (index, answer) in answers[VALUES.len()..].iter().enumerate() {
        assert_eq!(
            answer["ok"], false,
            "jwcrypto accepted a token altered in part {index}: {answer}"
        );
    }
}

#[test]
fn jwcrypto_encrypts_and_stet_decrypts() {
    let key = DecryptingKey::generate("stet-1").expect("a key");
    let values: Vec<&str> = VALUES.to_vec();
    let tokens = peer(&json!({"op": "encrypt", "public": key.public_jwk(), "values": values}));
    let tokens: Vec<String> = serde_json::from_value(tokens).expect("tokens");
    for (value, token) in VALUES.iter().zip(&tokens) {
        let header = stet_powens::jwe::header(token).expect("a header");
        assert_eq!(header.kid.as_deref(), Some("stet-1"));
        assert_eq!(&key.decrypt(token).expect("decrypts")[..], value.as_bytes());
        for index in 0..5 {
            let bad = altered(token, index);
            assert!(
                key.decrypt(&bad).is_err(),
                "stet accepted a jwcrypto token altered in part {index}"
            );
        }
    }
}

#[test]
fn the_mock_accepts_credentials_jwcrypto_encrypted() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let sandbox = stet_sandbox::Sandbox::start(stet_sandbox::SandboxConfig {
            powens: Some(stet_sandbox::PowensOptions::default()),
            ..stet_sandbox::SandboxConfig::default()
        })
        .await
        .expect("sandbox");
        let info = sandbox.info().clone();
        let mock = info.powens.clone().expect("the Powens mock");
        let ca = std::fs::read(&info.ca).expect("CA");
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).expect("CA PEM")])
            .build()
            .expect("client");
        let base = &mock.api_base;
        let json = |body: Value| {
            (
                reqwest::header::CONTENT_TYPE,
                "application/json",
                body.to_string(),
            )
        };
        let read = |bytes: &[u8]| -> Value { serde_json::from_slice(bytes).expect("JSON") };
        let (name, kind, text) =
            json(json!({"client_id": mock.client_id, "client_secret": mock.client_secret}));
        let init = read(
            &http
                .post(format!("{base}/auth/init"))
                .header(name, kind)
                .body(text)
                .send()
                .await
                .expect("auth/init")
                .bytes()
                .await
                .expect("body"),
        );
        let token = init["auth_token"].as_str().expect("a token").to_owned();
        let jwk = read(
            &http
                .get(format!("{base}/publickey"))
                .send()
                .await
                .expect("publickey")
                .bytes()
                .await
                .expect("body"),
        );
        let values = ["jwcrypto-user", "1234", "par"];
        let tokens = peer(&json!({"op": "encrypt", "public": jwk, "values": values}));
        let post = |body: Value| {
            let (name, kind, text) = json(body);
            http.post(format!("{base}/users/me/connections"))
                .bearer_auth(&token)
                .header(name, kind)
                .body(text)
                .send()
        };
        let response = post(json!({
            "connector_uuid": stet_powens::TEST_CONNECTOR_UUID,
            "source": "openapi",
            "login": tokens[0], "password": tokens[1], "openapiwebsite": tokens[2],
        }))
        .await
        .expect("POST connection");
        assert_eq!(response.status(), 200);
        let connection = read(&response.bytes().await.expect("body"));
        assert_eq!(connection["state"], Value::Null, "{connection}");

        // The same, one value altered: refused, saying so in Powens' error shape.
        let response = post(json!({
            "connector_uuid": stet_powens::TEST_CONNECTOR_UUID,
            "login": tokens[0], "password": altered(tokens[1].as_str().unwrap(), 3),
            "openapiwebsite": tokens[2],
        }))
        .await
        .expect("POST connection");
        assert_eq!(response.status(), 400);
        let error = read(&response.bytes().await.expect("body"));
        assert_eq!(error["code"], "invalidValue");
        assert!(
            error["description"]
                .as_str()
                .unwrap()
                .contains("`password` cannot be decrypted"),
            "{error}"
        );
        sandbox.shutdown().await;
    });
}

#[test]
fn paris_times_read_as_python_zoneinfo_reads_them() {
    // Every hour of the days around the changes of 2024-2027, and a few ordinary ones.
    let mut locals = Vec::new();
    for (y, m, d) in [
        (2024, 3, 31),
        (2024, 10, 27),
        (2025, 3, 30),
        (2025, 10, 26),
        (2026, 3, 29),
        (2026, 10, 25),
        (2027, 3, 28),
        (2027, 10, 31),
        (2026, 1, 1),
        (2026, 7, 14),
        (2026, 12, 31),
    ] {
        for h in 0..24 {
            for min in [0, 30, 59] {
                locals.push(format!("{y:04}-{m:02}-{d:02} {h:02}:{min:02}:00"));
            }
        }
    }
    let script = "import json, sys\nfrom datetime import datetime, timezone\nfrom zoneinfo import ZoneInfo\n\
        paris = ZoneInfo('Europe/Paris')\n\
        out = [datetime.strptime(s, '%Y-%m-%d %H:%M:%S').replace(tzinfo=paris).astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ') for s in json.load(sys.stdin)]\n\
        json.dump(out, sys.stdout)";
    let python = run_python(&["-c", script], &Value::from(locals.clone()).to_string());
    let python: Vec<String> = serde_json::from_value(python).expect("a list");
    for (local, expected) in locals.iter().zip(&python) {
        let ours: stet_powens::paris::ParisDateTime = local.parse().expect("a date-time");
        let utc = ours
            .instant()
            .to_offset(time::UtcOffset::UTC)
            .format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
            ))
            .expect("format");
        assert_eq!(&utc, expected, "{local}");
    }
}
