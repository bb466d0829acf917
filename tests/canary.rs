//! Secrets kept, and weakened settings said (issue 9), across every command of `stet`.
//!
//! **Canaries.** Every command runs at the highest verbosity (`-vvv`: every crate, stet's and
//! its dependencies', at trace level) with stdout and stderr captured, against a sandbox whose
//! own log (also at trace) is captured too. The secrets are known to the test: the client
//! secret (from the configuration file, or `STET_CLIENT_SECRET`), the passphrase of the QSealC
//! key (through `qseal_key_passphrase_env`), the access and refresh tokens (read from the token
//! file), the authorization codes (from the redirects the test delivers), the private keys'
//! PEM lines, and the signature values `stet sig sign` makes. None may appear in any output,
//! whole or in part (any 16 consecutive characters), on success or on failure.
//!
//! The exceptions, each a command whose documented output *is* the secret-bearing artifact:
//! `stet sig sign` prints the signed request on stdout, Signature header included (the
//! signature value must still not reach stderr or any other command); `stet sandbox serve`
//! prints its configuration line on stdout, which holds the sandbox's own test client secret
//! so that a client can be configured (that line is read by the harness and left out of the
//! transcript; the sandbox's log is in it).
//!
//! **Weakened settings.** A profile that accepts an expired QWAC or plain HTTP says so on
//! stderr at every run of every command that loads it, `-q` included: a security warning is
//! not noise. `stet doctor` reports them as a check of its own. `stet sig` says so too when a
//! flag weakens it: `verify --no-date-check` or `--min-key-bits` under 2048, and
//! `sign --backend rustcrypto` (not constant-time).

#![allow(missing_docs)]

mod support;

use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use support::*;

/// The QSealC key's passphrase: recognisable, and never to be seen.
const PASSPHRASE: &str = "CANARY-passphrase-Qx7v2Lm9Tz4K";
const PASSPHRASE_VAR: &str = "STET_CANARY_PASSPHRASE";
/// How long a fragment of a secret may be shown: 16 characters of a token are already too many.
const WINDOW: usize = 16;

// ---------------------------------------------------------------------------------------------
// The transcript and the secrets
// ---------------------------------------------------------------------------------------------

/// Everything the commands printed, by command.
#[derive(Default)]
struct Transcript {
    entries: Vec<(String, String)>,
}

impl Transcript {
    fn add(&mut self, out: &Out) {
        out.no_panic();
        self.entries.push((
            format!("stet {} (exit {})", out.what, out.code),
            format!("{}\n{}", out.stdout, out.stderr),
        ));
    }

    fn add_text(&mut self, what: &str, text: String) {
        self.entries.push((what.to_owned(), text));
    }

    fn len(&self) -> usize {
        self.entries.iter().map(|(_, t)| t.len()).sum()
    }

    /// The command whose output holds `needle`, if any.
    fn find(&self, needle: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(_, text)| text.contains(needle))
            .map(|(what, _)| what.as_str())
    }

    /// Asserts that no secret, and no `WINDOW`-character piece of one, appears anywhere.
    fn assert_keeps(&self, secrets: &[Secret]) {
        // Every window of the transcript, once: then each piece of each secret is one lookup.
        let mut windows: HashSet<&[u8]> = HashSet::new();
        for (_, text) in &self.entries {
            windows.extend(text.as_bytes().windows(WINDOW));
        }
        for secret in secrets {
            assert!(
                secret.value.len() >= WINDOW,
                "a canary shorter than {WINDOW} characters tests nothing: {}",
                secret.kind
            );
            for piece in secret.value.as_bytes().windows(WINDOW) {
                if windows.contains(piece) {
                    let piece = String::from_utf8_lossy(piece);
                    panic!(
                        "a piece of {} ({}…) appears in the output of `{}`",
                        secret.kind,
                        &piece[..4],
                        self.find(&piece).unwrap_or("?")
                    );
                }
            }
        }
    }

    /// No Signature header value, and no base64 run as long as an RSA-2048 signature (344
    /// characters), in any output: signatures made by the transport are never shown.
    fn assert_no_signature(&self) {
        for (what, text) in &self.entries {
            let lower = text.to_ascii_lowercase();
            assert!(
                !lower.contains("signature=\""),
                "a Signature header value in the output of `{what}`"
            );
            let longest = text
                .split(|c: char| !(c.is_ascii_alphanumeric() || "+/=".contains(c)))
                .map(str::len)
                .max()
                .unwrap_or(0);
            assert!(
                longest < 300,
                "a {longest}-character base64 run (a signature?) in the output of `{what}`"
            );
        }
    }
}

/// A secret the outputs must not show.
struct Secret {
    kind: String,
    value: String,
}

fn secret(kind: &str, value: impl Into<String>) -> Secret {
    Secret {
        kind: kind.to_owned(),
        value: value.into(),
    }
}

/// The base64 body lines of a PEM private key (plain or encrypted).
fn key_lines(path: &Path) -> Vec<Secret> {
    let pem = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read the key {}: {e}", path.display()));
    assert!(
        pem.contains("PRIVATE KEY"),
        "{} is a private key",
        path.display()
    );
    let lines: Vec<Secret> = pem
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with("-----") && l.len() >= WINDOW && !l.contains(':'))
        .map(|l| secret(&format!("the private key {}", path.display()), l))
        .collect();
    assert!(!lines.is_empty(), "a key in {}", path.display());
    lines
}

/// The access and refresh tokens in the token file of `profile`.
fn tokens(env: &Env, profile: &str) -> Vec<Secret> {
    env.stored_secrets(profile)
        .into_iter()
        .map(|t| secret(&format!("a token of profile `{profile}`"), t))
        .collect()
}

fn code_of(location: &str) -> Secret {
    secret(
        "an authorization code",
        query_param(location, "code").expect("a code in the redirect"),
    )
}

/// Runs `stet -vvv ARGS` to the end and records its output.
fn trace(env: &Env, t: &mut Transcript, args: &[&str]) -> Out {
    let mut all = vec!["-vvv"];
    all.extend_from_slice(args);
    let out = env.run(&all);
    t.add(&out);
    out
}

/// Like [`trace`], the PSU present.
fn trace_present(env: &Env, t: &mut Transcript, args: &[&str]) -> Out {
    let mut all = args.to_vec();
    all.extend(["--psu-ip", PSU_IP]);
    trace(env, t, &all)
}

/// Encrypts the PEM key at `from` into `to` (PKCS#8, PBES2 with AES-256-CBC) under
/// [`PASSPHRASE`], with the openssl command the interoperability tests also use.
fn encrypt_key(from: &Path, to: &Path) {
    let status = Command::new("openssl")
        .args(["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-in"])
        .arg(from)
        .arg("-out")
        .arg(to)
        .args(["-passout", &format!("env:{PASSPHRASE_VAR}")])
        .env(PASSPHRASE_VAR, PASSPHRASE)
        .status()
        .expect("run openssl (the tests need the openssl command)");
    assert!(status.success(), "openssl pkcs8 -topk8 failed");
    let pem = std::fs::read_to_string(to).expect("read the encrypted key");
    assert!(pem.contains("BEGIN ENCRYPTED PRIVATE KEY"), "{pem}");
}

/// A sandbox logging at trace into a file of `dir`, and a configuration whose profile
/// `sandbox` authenticates with the client secret (`client_secret_basic`) and signs with the
/// QSealC key encrypted under [`PASSPHRASE`]; profile `post` sends the secret in the body.
fn canary_env(dir: &Path) -> Env {
    let log = std::fs::File::create(dir.join("sandbox.log")).expect("create the sandbox log");
    let mut env = Env::with_sandbox_stderr(&["-vvv"], "sandbox", Stdio::from(log));
    let encrypted = env.home.path().join("qseal.encrypted.key");
    encrypt_key(Path::new(env.sandbox.get("qseal_key")), &encrypted);
    let client_secret = format!("{:?}", env.sandbox.get("client_secret"));
    let key = format!("{:?}", encrypted.display().to_string());
    let var = format!("{PASSPHRASE_VAR:?}");
    let profile = |auth: &str| {
        env.profile_body(&[
            ("bank", "\"sandbox\""),
            ("qseal_key", &key),
            ("qseal_key_passphrase_env", &var),
            ("client_secret", &client_secret),
            ("client_auth", auth),
        ])
    };
    let text = format!(
        "default_profile = \"sandbox\"\n\n[profiles.sandbox]\n{}\n[profiles.post]\n{}",
        profile("\"client_secret_basic\""),
        profile("\"client_secret_post\"")
    );
    write_private(&env.config, &text);
    env.vars
        .push((PASSPHRASE_VAR.to_owned(), PASSPHRASE.to_owned()));
    env
}

/// The secrets every canary test knows before running anything: the passphrase, the client
/// secret in its plain and Basic-encoded forms, and the private keys' lines.
fn known_secrets(env: &Env) -> Vec<Secret> {
    let client_secret = env.sandbox.get("client_secret");
    let basic = base64(&format!("{}:{client_secret}", env.sandbox.get("client_id")));
    let mut secrets = vec![
        secret("the QSealC key's passphrase", PASSPHRASE),
        secret("the client secret", client_secret),
        secret("the Basic client credentials", basic),
    ];
    for key in [
        Path::new(env.sandbox.get("qwac_key")).to_path_buf(),
        Path::new(env.sandbox.get("qseal_key")).to_path_buf(),
        env.home.path().join("qseal.encrypted.key"),
    ] {
        secrets.extend(key_lines(&key));
    }
    secrets
}

/// Base64 (standard, padded) with the openssl command, as HTTP Basic authentication encodes.
fn base64(text: &str) -> String {
    use std::io::Write as _;
    let mut child = Command::new("openssl")
        .args(["base64", "-A"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("run openssl base64");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(text.as_bytes()).expect("write to openssl");
    drop(stdin);
    let output = child.wait_with_output().expect("openssl base64");
    assert!(output.status.success(), "openssl base64 failed");
    String::from_utf8(output.stdout)
        .expect("base64 is ASCII")
        .trim()
        .to_owned()
}

fn sandbox_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("sandbox.log")).expect("read the sandbox log")
}

// ---------------------------------------------------------------------------------------------
// Every command, succeeding
// ---------------------------------------------------------------------------------------------

#[test]
fn no_secret_in_any_command_at_trace() {
    let dir = tempfile::tempdir().expect("temp dir");
    let env = canary_env(dir.path());
    let mut t = Transcript::default();
    let mut secrets = known_secrets(&env);

    // The configuration and the checks.
    let init_config = env.home.path().join("init.toml");
    let init_config = init_config.to_str().unwrap();
    trace(
        &env,
        &mut t,
        &["init", "--bank", "sandbox", "--config", init_config],
    )
    .ok();
    let doctor = trace(&env, &mut t, &["doctor"]);
    assert!(
        doctor.stdout.contains("QSealC key"),
        "doctor loads the encrypted key: {doctor}"
    );
    trace(&env, &mut t, &["doctor", "--output", "json"]);

    // Consent: by the loopback listener, then by pasting the redirect.
    let (out, location) = env.login(&["-vvv", "-o", "json"]);
    t.add(&out);
    secrets.push(code_of(&location));
    let mut running = env.spawn(&["-vvv", "auth", "login", "--no-browser"]);
    let url = running.authorize_url();
    let location = env.consent_at_bank(&url);
    running.paste(&location);
    let out = running.finish();
    assert_eq!(out.code, 0, "{out}");
    t.add(&out);
    secrets.push(code_of(&location));
    secrets.extend(tokens(&env, "sandbox"));
    trace(&env, &mut t, &["auth", "status"]).ok();
    trace(&env, &mut t, &["auth", "status", "--output", "json"]).ok();
    trace(&env, &mut t, &["auth", "status", "--output", "csv"]).ok();

    // Account information.
    let accounts = trace_present(&env, &mut t, &["accounts", "--output", "json"]).json_array();
    let iban = accounts[0]["accountId"]["iban"]
        .as_str()
        .unwrap()
        .to_owned();
    trace_present(&env, &mut t, &["accounts"]).ok();
    trace_present(&env, &mut t, &["balances", "ACC0001"]).ok();
    trace_present(&env, &mut t, &["balances", "--output", "csv"]).ok();
    trace_present(
        &env,
        &mut t,
        &["transactions", "ACC0001", "--output", "ndjson"],
    )
    .ok();
    trace_present(&env, &mut t, &["transactions", "--all", "--output", "csv"]).ok();
    // The store: a sync traces its SQL and the bank's answers; none holds a secret.
    let store = format!("sqlite:{}", env.home.path().join("canary.db").display());
    trace_present(&env, &mut t, &["sync", "--store", &store]).ok();
    trace(
        &env,
        &mut t,
        &["history", "--store", &store, "--output", "json"],
    )
    .ok();
    trace(&env, &mut t, &["store", "info", "--store", &store]).ok();
    // stet export reads the same store: every format, and the export ledger of --since-last.
    for format in [
        "beancount",
        "ledger",
        "ofx",
        "qif",
        "camt053",
        "csv",
        "ndjson",
    ] {
        trace(
            &env,
            &mut t,
            &[
                "export",
                "--store",
                &store,
                "--format",
                format,
                "--since-last",
                format,
            ],
        )
        .ok();
    }
    trace_present(&env, &mut t, &["identity"]).ok();
    trace_present(&env, &mut t, &["beneficiaries", "--output", "json"]).ok();
    trace_present(
        &env,
        &mut t,
        &["consent", "put", "--balances", &iban, "--psu-identity"],
    )
    .ok();
    trace_present(&env, &mut t, &["request", "-i", "GET", "accounts"]).ok();
    // Unattended (no PSU-IP-Address): counted against the budget, same secrets.
    trace(&env, &mut t, &["balances", "ACC0002"]).ok();

    // An expired access token: the next command refreshes it with the refresh token.
    let token_file = env.token_file("sandbox");
    let mut stored: Value =
        serde_json::from_str(&std::fs::read_to_string(&token_file).unwrap()).unwrap();
    for token in stored["tokens"].as_object_mut().unwrap().values_mut() {
        token["expires_at"] = Value::from(1);
    }
    write_private(&token_file, &stored.to_string());
    trace_present(&env, &mut t, &["accounts", "--output", "csv"]).ok();
    secrets.extend(tokens(&env, "sandbox"));

    // Payments (client credentials and the PSU's approval) and funds confirmation.
    let mut running = env.spawn(&[
        "-vvv",
        "pay",
        "--to",
        PAYEE,
        "--to-name",
        "Ana Smith",
        "--amount",
        "3.21",
        "--label",
        "canary",
        "--psu-ip",
        PSU_IP,
    ]);
    secrets.push(code_of(&env.approve_payment(&mut running)));
    let out = running.finish();
    out.ok();
    t.add(&out);
    let created = trace_present(
        &env,
        &mut t,
        &[
            "pay",
            "create",
            "--to",
            PAYEE,
            "--to-name",
            "Ana Smith",
            "--amount",
            "7.00",
            "--label",
            "steps",
        ],
    );
    let line = created.ok().trim().to_owned();
    let (id, link) = line.split_once(' ').expect("`ID LINK`");
    let mut running = env.spawn(&[
        "-vvv",
        "pay",
        "confirm",
        id,
        "--approval-url",
        link,
        "--psu-ip",
        PSU_IP,
    ]);
    secrets.push(code_of(&env.approve_payment(&mut running)));
    let out = running.finish();
    out.ok();
    t.add(&out);
    trace_present(&env, &mut t, &["pay", "status", id]).ok();
    let created = trace_present(
        &env,
        &mut t,
        &[
            "pay",
            "create",
            "--to",
            PAYEE,
            "--to-name",
            "Ana Smith",
            "--amount",
            "8.00",
            "--label",
            "cancel",
        ],
    );
    let other = created.ok().split(' ').next().unwrap().to_owned();
    trace_present(&env, &mut t, &["pay", "cancel", &other, "-o", "json"]).ok();
    // Several payees, the payee's name taken from the PSU's trusted beneficiaries, a standing
    // order, a confirmation with the TPP's own token, every result as JSON.
    let beneficiary = trace_present(&env, &mut t, &["beneficiaries", "-o", "json"]).json_array()[0]
        ["creditorAccount"]["iban"]
        .as_str()
        .unwrap()
        .to_owned();
    let several = trace_present(
        &env,
        &mut t,
        &[
            "pay",
            "create",
            "--to",
            PAYEE,
            "--to",
            &beneficiary,
            "--to-name",
            "Ana Smith",
            "--to-name",
            "Marie Martin",
            "--amount",
            "1.00",
            "--amount",
            "2.00",
            "--label",
            "several",
            "-o",
            "json",
        ],
    )
    .json();
    let (id, link) = (
        several["id"].as_str().unwrap().to_owned(),
        several["consent_approval"].as_str().unwrap().to_owned(),
    );
    secrets.push(code_of(&env.approve_at_bank(&link)));
    trace_present(
        &env,
        &mut t,
        &["pay", "confirm", &id, "--approved", "-o", "json"],
    )
    .ok();
    trace_present(&env, &mut t, &["pay", "status", &id, "-o", "csv"]).ok();
    trace_present(
        &env,
        &mut t,
        &[
            "pay",
            "create",
            "--to",
            &beneficiary,
            "--amount",
            "9.00",
            "--label",
            "rent",
            "--every",
            "monthly",
            "--date",
            &support::day(5),
            "-o",
            "json",
        ],
    )
    .ok();
    trace_present(
        &env,
        &mut t,
        &["funds-check", "--account", &iban, "--amount", "10.00"],
    )
    .ok();
    trace_present(
        &env,
        &mut t,
        &[
            "funds-check",
            "--account",
            &iban,
            "--amount",
            "10.00",
            "--payee",
            "Shop",
            "-o",
            "json",
        ],
    )
    .ok();
    // The secret in the request body (client_secret_post) rather than in a header.
    trace_present(
        &env,
        &mut t,
        &[
            "--profile",
            "post",
            "funds-check",
            "--account",
            &iban,
            "--amount",
            "12.00",
        ],
    )
    .ok();
    secrets.extend(tokens(&env, "sandbox"));
    secrets.extend(tokens(&env, "post"));

    // stet conformance with the stored consent: its stdout, its reports and its evidence bundle
    // (whose entries are stored, not compressed, so a secret would show as text).
    let reports = env.home.path().join("conformance");
    let bundle = env.home.path().join("evidence.zip");
    let out = trace_present(
        &env,
        &mut t,
        &[
            "conformance",
            "run",
            "--consent",
            "token",
            "--report-dir",
            reports.to_str().unwrap(),
            "--bundle",
            bundle.to_str().unwrap(),
            "--output",
            "json",
        ],
    );
    assert_eq!(out.code, 0, "{out}");
    for name in ["report.json", "junit.xml", "report.html"] {
        let text = std::fs::read_to_string(reports.join(name)).unwrap();
        t.add_text(&format!("stet conformance run: {name}"), text);
    }
    let mut zip = String::from_utf8_lossy(&std::fs::read(&bundle).unwrap()).into_owned();
    // The bundle carries the QSealC certificate, public by nature: its base64 holds the
    // client id (the organizationIdentifier), which the Basic credentials start with.
    let begin = zip.find("-----BEGIN CERTIFICATE-----").expect("qsealc.pem");
    let end = zip.find("-----END CERTIFICATE-----").expect("qsealc.pem");
    zip.replace_range(begin..end, "");
    t.add_text("stet conformance run: evidence.zip", zip);
    trace(
        &env,
        &mut t,
        &["conformance", "verify-bundle", bundle.to_str().unwrap()],
    )
    .ok();
    secrets.extend(tokens(&env, "sandbox"));

    trace(&env, &mut t, &["auth", "logout", "-o", "json"]).ok();
    let log = sandbox_log(dir.path());
    assert!(
        log.lines().count() > 100,
        "the sandbox logs at trace: {log}"
    );
    t.add_text("stet sandbox serve -vvv (its log)", log);

    assert!(
        t.len() > 100_000 && t.find("stet_transport").is_some() && t.find("rustls").is_some(),
        "-vvv traces stet and its dependencies ({} bytes)",
        t.len()
    );
    t.assert_keeps(&secrets);
    t.assert_no_signature();
}

// ---------------------------------------------------------------------------------------------
// Failing commands
// ---------------------------------------------------------------------------------------------

#[test]
fn failures_do_not_echo_secrets() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut env = canary_env(dir.path());
    let mut t = Transcript::default();
    let mut secrets = known_secrets(&env);
    let (out, location) = env.login(&["-vvv"]);
    t.add(&out);
    secrets.push(code_of(&location));
    secrets.extend(tokens(&env, "sandbox"));
    let iban = env.accounts()[0]["accountId"]["iban"]
        .as_str()
        .unwrap()
        .to_owned();

    // A pasted redirect with a code the bank never issued: the token endpoint refuses it.
    let forged_code = "CANARY-code-nobody-issued-5Hq8Zr";
    let mut running = env.spawn(&["-vvv", "auth", "login", "--no-browser"]);
    let url = running.authorize_url();
    let state = query_param(&url, "state").expect("state in the authorization URL");
    running.paste(&format!(
        "http://127.0.0.1/callback?code={forged_code}&state={state}"
    ));
    let out = running.finish();
    assert_ne!(out.code, 0, "{out}");
    t.add(&out);
    secrets.push(secret("a forged authorization code", forged_code));

    // A bearer token the bank does not know (STET_ACCESS_TOKEN): 401.
    let bad_token = "CANARY-access-token-unknown-7Yw3Pd";
    env.vars
        .push(("STET_ACCESS_TOKEN".to_owned(), bad_token.to_owned()));
    let out = trace_present(&env, &mut t, &["accounts"]);
    assert_ne!(out.code, 0, "{out}");
    let out = trace_present(&env, &mut t, &["request", "GET", "accounts"]);
    assert_ne!(out.code, 0, "{out}");
    env.vars.pop();
    secrets.push(secret("an unknown access token", bad_token));

    // A stored token the bank has forgotten (revoked): 401, and a refresh the bank refuses.
    let token_file = env.token_file("sandbox");
    let text = std::fs::read_to_string(&token_file).unwrap();
    let revoked = "CANARY-revoked-access-token-2Nf6Vb";
    let revoked_refresh = "CANARY-revoked-refresh-token-9Kc1Xs";
    let mut stored: Value = serde_json::from_str(&text).unwrap();
    for token in stored["tokens"].as_object_mut().unwrap().values_mut() {
        token["access_token"] = Value::from(revoked);
        token["refresh_token"] = Value::from(revoked_refresh);
    }
    write_private(&token_file, &stored.to_string());
    let out = trace_present(&env, &mut t, &["accounts"]);
    out.fails(77, "stet auth login");
    for token in stored["tokens"].as_object_mut().unwrap().values_mut() {
        token["expires_at"] = Value::from(1);
    }
    write_private(&token_file, &stored.to_string());
    let out = trace_present(&env, &mut t, &["transactions", "ACC0001"]);
    assert_ne!(out.code, 0, "{out}");
    secrets.push(secret("a revoked access token", revoked));
    secrets.push(secret("a revoked refresh token", revoked_refresh));

    // The wrong client secret (from the environment, over the file's): invalid_client.
    let wrong_secret = "CANARY-client-secret-wrong-4Tg8Jm";
    env.vars
        .push(("STET_CLIENT_SECRET".to_owned(), wrong_secret.to_owned()));
    for profile in ["sandbox", "post"] {
        let out = trace_present(
            &env,
            &mut t,
            &[
                "--profile",
                profile,
                "funds-check",
                "--account",
                &iban,
                "--amount",
                "1.00",
            ],
        );
        assert_ne!(out.code, 0, "{out}");
    }
    env.vars.pop();
    secrets.push(secret("a wrong client secret", wrong_secret));

    // The wrong passphrase, and none: the key does not load, the message names the variable.
    let wrong_passphrase = "CANARY-passphrase-wrong-8Ud2Wq";
    env.vars
        .push((PASSPHRASE_VAR.to_owned(), wrong_passphrase.to_owned()));
    let out = trace_present(&env, &mut t, &["accounts"]);
    out.fails(78, "passphrase");
    let out = trace(&env, &mut t, &["doctor"]);
    assert_ne!(out.code, 0, "{out}");
    env.vars.retain(|(k, _)| k != PASSPHRASE_VAR);
    let out = trace_present(&env, &mut t, &["accounts"]);
    out.fails(78, PASSPHRASE_VAR);
    secrets.push(secret("a wrong passphrase", wrong_passphrase));

    t.add_text("stet sandbox serve -vvv (its log)", sandbox_log(dir.path()));
    t.assert_keeps(&secrets);
    t.assert_no_signature();
}

// ---------------------------------------------------------------------------------------------
// Commands without a profile
// ---------------------------------------------------------------------------------------------

/// A signed request without its Signature header: the rest is checked like any output.
fn without_signature_header(request: &str) -> String {
    let kept: Vec<&str> = request
        .split("\r\n")
        .filter(|line| !line.to_ascii_lowercase().starts_with("signature:"))
        .collect();
    assert!(
        kept.len() < request.split("\r\n").count(),
        "a Signature header in {request}"
    );
    kept.join("\r\n")
}

/// Runs `stet -vvv ARGS` in `home` with `stdin`, no configuration.
fn bare(home: &Path, args: &[&str], stdin: &[u8]) -> Out {
    use std::io::Write as _;
    let mut all = vec!["-vvv"];
    all.extend_from_slice(args);
    let mut child = Command::new(STET)
        .args(&all)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("NO_COLOR", "1")
        .env(PASSPHRASE_VAR, PASSPHRASE)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn stet");
    let mut input = child.stdin.take().expect("stdin");
    // A command that fails before reading its input (a key that does not decrypt) closes the
    // pipe first: its exit is what the test looks at.
    let _ = input.write_all(stdin);
    drop(input);
    let output = child.wait_with_output().expect("wait for stet");
    Out {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        what: all.join(" "),
    }
}

#[test]
fn sig_sandbox_demo_bench_and_the_rest_keep_secrets() {
    let home = tempfile::tempdir().expect("temp dir");
    let home = home.path();
    let mut t = Transcript::default();
    let mut secrets = vec![secret("the QSealC key's passphrase", PASSPHRASE)];

    // A fresh test PKI: its keys are written, never printed.
    let certs = home.join("certs");
    let out = bare(
        home,
        &["sandbox", "certs", "--out", certs.to_str().unwrap()],
        b"",
    );
    out.ok();
    t.add(&out);
    let mut keys = Vec::new();
    for entry in std::fs::read_dir(&certs).expect("the PKI folder") {
        let path = entry.expect("a PKI file").path();
        if std::fs::read_to_string(&path).is_ok_and(|p| p.contains("PRIVATE KEY")) {
            secrets.extend(key_lines(&path));
            keys.push(path);
        }
    }
    assert!(keys.len() >= 3, "CA, QWAC and QSealC keys: {keys:?}");
    let qseal_key = keys
        .iter()
        .find(|p| p.to_string_lossy().contains("qseal"))
        .expect("a QSealC key")
        .clone();
    let qseal_cert = qseal_key.with_extension("pem");
    assert!(qseal_cert.exists(), "{}", qseal_cert.display());
    let encrypted = home.join("qseal.encrypted.key");
    encrypt_key(&qseal_key, &encrypted);
    secrets.extend(key_lines(&encrypted));
    let encrypted = encrypted.to_str().unwrap();

    // stet sig sign prints the signed request (Signature included) on stdout by design; the
    // signature must reach no other output, and the key and its passphrase none at all.
    let request = b"POST /stet/psd2/v1.5/payment-requests HTTP/1.1\nHost: bank.example\n\
        Date: Sun, 05 Jan 2014 21:31:40 GMT\nX-Request-ID: 1\nContent-Type: application/json\n\n\
        {\"canary\": true}";
    let sign_args = [
        "sig",
        "sign",
        "--key",
        encrypted,
        "--key-id",
        "qseal-1",
        "--passphrase-env",
        PASSPHRASE_VAR,
        "--headers",
        "(request-target) date x-request-id digest",
        "--explain",
    ];
    let signed = bare(home, &sign_args, request);
    let signed_request = signed.ok().to_owned();
    let signature = signed_request
        .split("signature=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a signature value in the signed request")
        .to_owned();
    assert!(signature.len() > 300, "{signature}");
    assert!(
        signed.stderr.contains("signing string"),
        "--explain: {signed}"
    );
    t.add_text(
        &format!("{} (stderr only)", signed.what),
        signed.stderr.clone(),
    );
    // Only the signature value is the exception: the rest of stdout is checked.
    t.add_text(
        &format!("{} (stdout without the Signature header)", signed.what),
        without_signature_header(&signed.stdout),
    );
    assert!(!signed.stderr.contains("warning:"), "{signed}");
    let mut backends = bare(
        home,
        &[&sign_args[..], &["--backend", "rustcrypto"]].concat(),
        request,
    );
    assert_eq!(backends.ok(), signed_request, "both backends sign alike");
    // The signer that is not constant-time says so.
    assert!(
        backends
            .stderr
            .contains("warning: the rustcrypto signer is not constant-time"),
        "{backends}"
    );
    backends.stdout = without_signature_header(&backends.stdout);
    t.add(&backends);
    let verify = [
        "sig",
        "verify",
        "--key",
        qseal_cert.to_str().unwrap(),
        "--no-date-check",
    ];
    let out = bare(home, &verify, signed_request.as_bytes());
    assert_eq!(out.ok(), "ok\n");
    // A check left out is said, even when the signature verifies.
    assert!(
        out.stderr
            .contains("warning: the Date header is not checked (--no-date-check)"),
        "{out}"
    );
    t.add(&out);
    let lenient = [&verify[..], &["--min-key-bits", "1024"]].concat();
    let out = bare(home, &lenient, signed_request.as_bytes());
    assert_eq!(out.ok(), "ok\n");
    assert!(
        out.stderr
            .contains("warning: RSA keys from 1024 bits are accepted (--min-key-bits)"),
        "{out}"
    );
    t.add(&out);
    // A signature that does not verify: the reason, not the value.
    let replacement = if signature.as_bytes()[10] == b'A' {
        "B"
    } else {
        "A"
    };
    let flipped = format!("{}{replacement}{}", &signature[..10], &signature[11..]);
    let tampered = signed_request.replace(&signature, &flipped);
    let out = bare(home, &verify, tampered.as_bytes());
    assert_eq!(out.code, 1, "{out}");
    t.add(&out);
    secrets.push(secret("a signature that does not verify", flipped));
    // The wrong passphrase.
    let wrong = bare(
        home,
        &[
            "sig",
            "sign",
            "--key",
            encrypted,
            "--key-id",
            "k",
            "--passphrase-env",
            "PATH",
        ],
        request,
    );
    wrong.fails(78, "passphrase");
    t.add(&wrong);
    let out = bare(home, &["sig", "digest"], b"{\"canary\": true}");
    out.ok();
    t.add(&out);

    // Offline commands.
    for args in [
        &["banks"][..],
        &["banks", "sandbox"],
        &["completions", "bash"],
        &["init", "--bank", "sandbox"],
        &["--version"],
        &["--help"],
    ] {
        let out = bare(home, args, b"");
        out.ok();
        t.add(&out);
    }

    // The demo and the benchmarks run their own sandbox bank: their tokens, codes and client
    // secret are the sandbox's 64-hex-digit strings, none of which may be printed.
    let demo = bare(home, &["demo"], b"");
    assert!(demo.ok().contains("ACSC"), "{demo}");
    t.add(&demo);
    let out = bare(home, &["bench", "sign", "--seconds", "0.05"], b"");
    out.ok();
    t.add(&out);
    let out = bare(
        home,
        &[
            "bench",
            "sync",
            "--accounts",
            "2",
            "--transactions",
            "30",
            "--page-size",
            "10",
            "--json",
        ],
        b"",
    );
    out.ok();
    t.add(&out);
    for (what, text) in &t.entries {
        let longest_hex = text
            .split(|c: char| !c.is_ascii_hexdigit())
            .map(str::len)
            .max()
            .unwrap_or(0);
        assert!(
            longest_hex < 64,
            "a {longest_hex}-digit hex run (a sandbox token, code or secret?) in `{what}`"
        );
    }

    t.assert_keeps(&secrets);
    t.assert_keeps(&[secret("the signature stet sig sign made", signature)]);
    t.assert_no_signature();
}

// ---------------------------------------------------------------------------------------------
// Weakened settings, said on every run
// ---------------------------------------------------------------------------------------------

const EXPIRED: &str = "accepts an expired QWAC (allow_expired_certificate): for sandboxes only";
const HTTP: &str = "allows plain HTTP (allow_insecure_http): for local development only";

/// Every command that loads a profile, with arguments that get it past parsing (most then fail
/// for want of a consent, which comes after the profile is loaded).
const PROFILE_COMMANDS: &[&[&str]] = &[
    &["auth", "login", "--no-browser"],
    &["auth", "status"],
    &["auth", "logout"],
    &["accounts"],
    &["balances", "ACC0001"],
    &["transactions", "ACC0001"],
    &["identity"],
    &["beneficiaries"],
    &["consent", "put", "--psu-identity"],
    &["pay", "--to", PAYEE, "--amount", "1.00", "--no-browser"],
    &["pay", "create", "--to", PAYEE, "--amount", "1.00"],
    &[
        "pay",
        "confirm",
        "PR000001",
        "--approval-url",
        "https://127.0.0.1/x",
        "--no-browser",
    ],
    &["pay", "status", "PR000001"],
    &["pay", "cancel", "PR000001"],
    &["funds-check", "--account", PAYEE, "--amount", "1.00"],
    &["request", "GET", "accounts"],
];

#[test]
fn weakened_settings_are_said_on_every_run_even_with_quiet() {
    let env = Env::new();
    let both = env.config_with(
        "weak",
        &[
            ("allow_expired_certificate", "true"),
            ("allow_insecure_http", "true"),
        ],
    );
    let expired = env.config_with("expired", &[("allow_expired_certificate", "true")]);
    let http = env.config_with("http", &[("allow_insecure_http", "true")]);
    let cases: [(&Path, &[&str]); 3] = [
        (&both, &[EXPIRED, HTTP]),
        (&expired, &[EXPIRED]),
        (&http, &[HTTP]),
    ];
    for (config, said) in cases {
        for command in PROFILE_COMMANDS {
            let mut args = vec!["-q", "--config", config.to_str().unwrap()];
            args.extend_from_slice(command);
            args.extend(["--psu-ip", PSU_IP]);
            let out = env.run(&args);
            out.no_panic();
            let warnings: Vec<&str> = out
                .stderr
                .lines()
                .filter(|l| l.starts_with("warning: profile `"))
                .collect();
            assert_eq!(warnings.len(), said.len(), "one line per setting: {out}");
            for (line, text) in warnings.iter().zip(said) {
                assert!(line.ends_with(text), "`{line}` should say `{text}`: {out}");
            }
        }
        // stet doctor reports them as a check of its own, on stdout, in both formats.
        let out = env.run(&["-q", "--config", config.to_str().unwrap(), "doctor"]);
        out.no_panic();
        let line = out
            .stdout
            .lines()
            .find(|l| l.contains("weakened settings"))
            .unwrap_or_else(|| panic!("doctor reports the weakened settings: {out}"));
        for text in said {
            assert!(line.contains(text), "`{line}` should say `{text}`");
        }
        let out = env.run(&[
            "--config",
            config.to_str().unwrap(),
            "doctor",
            "--output",
            "json",
        ]);
        for text in said {
            assert!(out.stdout.contains(text), "{out}");
        }
    }

    // Set from the environment rather than the file: said all the same.
    let mut env = env;
    env.vars
        .push(("STET_ALLOW_INSECURE_HTTP".to_owned(), "yes".to_owned()));
    let out = env.run(&["-q", "auth", "status"]);
    assert!(out.stderr.contains(HTTP), "{out}");
    env.vars.clear();

    // Without them: no warning.
    let out = env.run(&["-q", "auth", "status"]);
    assert!(!out.stderr.contains("warning: profile"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// The Powens backend
// ---------------------------------------------------------------------------------------------

/// Every Powens command at trace (`stet sync` into a store included), succeeding and failing:
/// the client secret, the user tokens (each one stored), a credential, a one-time code, a
/// wrong secret and the webhook secret never show, nor any JWE (a 342-character base64 run at
/// least: `assert_no_signature` finds it). The mock's own log is in the transcript too.
#[test]
fn powens_commands_keep_secrets() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = std::fs::File::create(dir.path().join("sandbox.log")).expect("the sandbox log");
    // The PSU's password and one-time code are the test's own, long enough to search for
    // (Powens' `1234` and `abcd` would be found in any log by chance).
    let password = "CANARY-powens-password-4Hs8Zt";
    let code = "CANARY-powens-otp-9Fd2Wm";
    let mut env = Env::with_sandbox_stderr(
        &[
            "-vvv",
            "--powens",
            "--powens-password",
            password,
            "--powens-code",
            code,
        ],
        "sandbox",
        Stdio::from(log),
    );
    let mock = env.sandbox.info["powens"].clone();
    let q = |v: &Value| format!("{:?}", v.as_str().expect("a string"));
    let config = env.home.path().join("powens.toml");
    write_private(
        &config,
        &format!(
            "[profiles.powens]\nprovider = \"powens\"\napi_base = {}\nclient_id = {}\nca_bundle = {}\n\
             allow_insecure_http = true\n",
            q(&mock["api_base"]),
            q(&mock["client_id"]),
            q(&env.sandbox.info["ca"]),
        ),
    );
    let client_secret = mock["client_secret"].as_str().expect("secret").to_owned();
    env.vars
        .push(("STET_CONFIG".into(), config.display().to_string()));
    env.vars
        .push(("STET_CLIENT_SECRET".into(), client_secret.clone()));
    let login = "CANARY-powens-login-7Rz2Qk9Vw";
    let wrong_password = "CANARY-powens-wrong-password-2Kq7Rv";
    let hook_secret = "CANARY-webhook-secret-3Ld8Pq";
    env.vars.push(("HOOK_SECRET".into(), hook_secret.into()));
    let mut t = Transcript::default();
    let mut secrets = vec![
        secret("the Powens client secret", client_secret),
        secret("a Powens credential", login),
        secret("the PSU's password", password),
        secret("a one-time code", code),
        secret("a wrong password", wrong_password),
        secret("the webhook secret", hook_secret),
    ];

    // A weakened setting is said on every run, -q included.
    let out = env.run(&["-q", "connectors"]);
    assert!(out.stderr.contains(HTTP), "{out}");
    t.add(&out);
    trace(&env, &mut t, &["connectors", "--output", "json"]).ok();
    let out = trace(
        &env,
        &mut t,
        &[
            "connect",
            "--connector",
            "Connecteur de test",
            "--source",
            "openapi",
            "--field",
            &format!("login={login}"),
            "--field",
            &format!("password={password}"),
            "--field",
            "openapiwebsite=additionalInformationNeeded",
            "--field",
            &format!("openapisms={code}"),
        ],
    );
    out.ok();
    secrets.extend(tokens(&env, "powens"));
    for args in [
        &["connections"][..],
        &["accounts"],
        &["accounts", "enable", "1001"],
        &["balances"],
        &["transactions", "--all", "--limit", "10"],
        &["auth", "status"],
        &["auth", "login"],
    ] {
        trace(&env, &mut t, args).ok();
    }
    // The Powens data into the store, then a connection that needs the PSU: its line and
    // error name what to run, never a token, a credential or a JWE.
    let store = format!("sqlite:{}", env.home.path().join("powens.db").display());
    trace(&env, &mut t, &["sync", "--store", &store, "--limit", "10"]).ok();
    trace(&env, &mut t, &["history", "--store", &store]).ok();
    trace(&env, &mut t, &["store", "info", "--store", &store]).ok();
    sandbox_call(
        &env,
        "POST",
        "/sandbox/powens/state",
        r#"{"connection": 1, "state": "SCARequired"}"#,
    );
    trace(&env, &mut t, &["sync", "--store", &store]).fails(77, "not synced");
    secrets.extend(tokens(&env, "powens"));
    // Failing: a wrong scenario value, a wrong password, a wrong client secret.
    let out = trace(
        &env,
        &mut t,
        &[
            "connect",
            "--connector",
            "Connecteur de test",
            "--source",
            "openapi",
            "--field",
            &format!("login={login}"),
            "--field",
            &format!("password={wrong_password}"),
            "--field",
            "openapiwebsite=par",
        ],
    );
    out.fails(77, "wrongpass");
    let wrong = "CANARY-client-secret-wrong-6Yt3Bn";
    env.vars.push(("STET_CLIENT_SECRET".into(), wrong.into()));
    trace(&env, &mut t, &["auth", "login"]).fails(78, "refused the client credentials");
    env.vars.pop();
    secrets.push(secret("a wrong client secret", wrong));
    // A webhook checked, then one that does not match.
    let out = trace(
        &env,
        &mut t,
        &[
            "powens",
            "webhook",
            "verify",
            "--secret-env",
            "HOOK_SECRET",
            "--signature",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
            "--date",
            "2020-01-01T00:00:00Z",
        ],
    );
    assert_eq!(out.code, 1, "{out}");
    trace(&env, &mut t, &["auth", "logout"]).ok();

    let log = sandbox_log(dir.path());
    t.add_text("stet sandbox serve -vvv --powens (its log)", log);
    assert!(
        t.find("stet_powens").is_some() || t.find("https request").is_some(),
        "-vvv traces the client"
    );
    t.assert_keeps(&secrets);
    t.assert_no_signature();
}

// ---------------------------------------------------------------------------------------------
// Keys in an HSM, and registration
// ---------------------------------------------------------------------------------------------

/// Both keys in SoftHSM (the PIN in the profile as `pin-value`, the most exposed form), and a
/// registration at the sandbox: the PIN, the registration access token, the client secret,
/// the tokens, the code and the keys' lines appear in no output at trace, the sandbox's
/// included, and no signature does.
#[test]
fn hsm_keys_and_registration_keep_secrets_at_trace() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = std::fs::File::create(dir.path().join("sandbox.log")).expect("create the log");
    let mut env = Env::with_sandbox_stderr(&["-vvv"], "sandbox", Stdio::from(log));
    let token = stet_testkit::softhsm_token_in("canary", &dir.path().join("softhsm"));
    token.import(Path::new(env.sandbox.get("qseal_key")), "qseal", "01");
    token.import(Path::new(env.sandbox.get("qwac_key")), "qwac", "02");
    env.vars
        .push(("SOFTHSM2_CONF".to_owned(), token.conf.display().to_string()));
    let uri = |object: &str| {
        format!(
            "{:?}",
            format!(
                "pkcs11:token={};object={object}?pin-value={}",
                token.label,
                stet_testkit::PIN
            )
        )
    };
    let origin = env
        .sandbox
        .get("token_url")
        .trim_end_matches("/token")
        .to_owned();
    let body = env.profile_body(&[
        ("qseal_key", &uri("qseal")),
        ("qwac_key", &uri("qwac")),
        (
            "pkcs11_module",
            &format!("{:?}", token.module.display().to_string()),
        ),
        ("registration_url", &format!("\"{origin}/v1/register\"")),
    ]);
    write_private(
        &env.config,
        &format!(
            "[profiles.sandbox]\n{body}\n[profiles.sandbox.registration]\ncontacts = [\"ops@tpp.example\"]\n"
        ),
    );

    let mut t = Transcript::default();
    let mut secrets = vec![secret("the HSM PIN", stet_testkit::PIN)];
    for key in ["qwac_key", "qseal_key"] {
        secrets.extend(key_lines(Path::new(env.sandbox.get(key))));
    }
    trace(&env, &mut t, &["doctor"]).ok();
    trace(&env, &mut t, &["register", "create", "--output", "table"]).ok();
    let store = env.home.path().join("data/stet/registrations/sandbox.json");
    let state: Value = serde_json::from_slice(&std::fs::read(&store).unwrap()).unwrap();
    secrets.push(secret(
        "the registration access token",
        state["registration_access_token"].as_str().unwrap(),
    ));
    let (out, location) = env.login(&["-vvv"]);
    t.add(&out);
    secrets.push(code_of(&location));
    trace_present(&env, &mut t, &["accounts", "--output", "table"]).ok();
    secrets.extend(tokens(&env, "sandbox"));
    trace(&env, &mut t, &["register", "show", "--output", "table"]).ok();
    trace(&env, &mut t, &["register", "update", "--output", "table"]).ok();
    trace(&env, &mut t, &["doctor"]).ok();
    trace(&env, &mut t, &["register", "delete", "--output", "table"]).ok();
    // Failing: a wrong PIN in a file, and a registration that is gone.
    let pin = env.home.path().join("pin");
    write_private(&pin, "not-the-PIN-0000\n");
    let mut wrong = env.command(&["-vvv", "accounts", "--psu-ip", PSU_IP]);
    for (var, object) in [("STET_QSEAL_KEY", "qseal"), ("STET_QWAC_KEY", "qwac")] {
        wrong.env(
            var,
            format!(
                "pkcs11:token={};object={object}?pin-source=file:{}",
                token.label,
                pin.display()
            ),
        );
    }
    let out = finished(&["-vvv accounts (wrong PIN)"], wrong);
    assert_eq!(out.code, 78, "{out}");
    t.add(&out);
    trace(&env, &mut t, &["register", "show"]);
    t.add_text("the sandbox's log", sandbox_log(dir.path()));
    assert!(t.len() > 10_000, "trace output was captured");
    t.assert_keeps(&secrets);
    t.assert_no_signature();
}

// ---------------------------------------------------------------------------------------------
// The fleet
// ---------------------------------------------------------------------------------------------

/// The fleet's commands at trace, against PostgreSQL: a connection from a token given in the
/// environment and one from the consent flow, the schedule, a worker, the status, an
/// on-demand sync, a removal. No token, code or store key appears in any output, the
/// sandbox's log included, nor in the database (dumped whole with `pg_dump`).
#[test]
fn fleet_commands_keep_secrets() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = std::fs::File::create(dir.path().join("sandbox.log")).expect("the sandbox log");
    let mut env = Env::with_sandbox_stderr(&["-vvv", "--psus", "2"], "sandbox", Stdio::from(log));
    let store = stet_testkit::fresh_postgres_database("canary_fleet");
    // base64 of the 32 bytes "CANARY-store-key-0123456789abcde".
    let key = "Q0FOQVJZLXN0b3JlLWtleS0wMTIzNDU2Nzg5YWJjZGU=";
    env.vars.push(("STET_STORE".into(), store.clone()));
    env.vars.push(("STET_STORE_KEY".into(), key.into()));
    let mut t = Transcript::default();
    let mut secrets = vec![secret("the store key", key)];

    // Alice's tokens as the token endpoint answered them, given through the environment.
    let (out, location) = env.login(&["-vvv"]);
    t.add(&out);
    secrets.push(code_of(&location));
    secrets.extend(tokens(&env, "sandbox"));
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(env.token_file("sandbox")).unwrap()).unwrap();
    let aisp = &file["tokens"]["aisp"];
    let answer = serde_json::json!({
        "access_token": aisp["access_token"], "refresh_token": aisp["refresh_token"],
        "token_type": "Bearer", "expires_in": 3600, "scope": "aisp",
    });
    env.vars.push(("ALICE_TOKEN".into(), answer.to_string()));
    trace(
        &env,
        &mut t,
        &[
            "psu",
            "add",
            "--profile",
            "sandbox",
            "--name",
            "alice",
            "--token-env",
            "ALICE_TOKEN",
        ],
    )
    .ok();
    // Bob through the consent flow, as psu-2.
    let mut running = env.spawn(&[
        "-vvv",
        "psu",
        "add",
        "--profile",
        "sandbox",
        "--name",
        "bob",
        "--login-hint",
        "psu-2",
    ]);
    let url = running.authorize_url();
    let location = env.consent_at_bank(&url);
    assert_eq!(deliver(&location), 200);
    let out = running.finish();
    assert_eq!(out.code, 0, "{out}");
    t.add(&out);
    secrets.push(code_of(&location));

    for args in [
        &["psu", "list", "-o", "json"][..],
        &["psu", "show", "alice", "-o", "json"],
        &["schedule", "--now"],
        &["worker", "--exit-when-idle", "--concurrency", "2"],
        &["fleet", "status", "-o", "json"],
        &["psu", "sync", "bob", "--psu-ip", "192.0.2.7", "--wait"],
        &["history"],
        &["psu", "remove", "bob"],
    ] {
        trace(&env, &mut t, args).ok();
    }
    // A wrong key: refused, and the refusal shows neither key.
    let wrong = "Q0FOQVJZLXdyb25nLWtleS0wMTIzNDU2Nzg5YWJjZGU=";
    env.vars.push(("STET_STORE_KEY".into(), wrong.into()));
    let out = trace(&env, &mut t, &["worker", "--exit-when-idle"]);
    assert_eq!(out.code, 65, "{out}");
    env.vars.pop();
    secrets.push(secret("a wrong store key", wrong));

    let dump = Command::new(stet_testkit::system_tool("pg_dump", "postgresql-client"))
        .args(["--data-only", &store])
        .output()
        .expect("pg_dump");
    assert!(
        dump.status.success(),
        "{}",
        String::from_utf8_lossy(&dump.stderr)
    );
    let dump = String::from_utf8_lossy(&dump.stdout).into_owned();
    assert!(dump.contains("alice"), "the dump holds the connections");
    t.add_text(
        "stet sandbox serve -vvv --psus 2 (its log)",
        sandbox_log(dir.path()),
    );
    t.assert_no_signature();
    // The sealed tokens are long hex runs in the dump: looked at for the secrets only.
    t.add_text("pg_dump of the fleet's store", dump);
    t.assert_keeps(&secrets);
}
