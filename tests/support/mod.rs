//! The harness of the end-to-end tests: a `stet sandbox serve` child, a temporary HOME with a
//! configuration for it, and helpers to run `stet` and read what it printed.
//!
//! Each test binary includes it with `mod support;` and uses what it needs.

#![allow(dead_code)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

pub mod powens;

pub const STET: &str = env!("CARGO_BIN_EXE_stet");
/// A PSU IP address: the PSU is present, calls are not counted against the unattended budget.
pub const PSU_IP: &str = "192.0.2.10";
/// A valid IBAN that is not one of the sandbox's accounts (the README's payee).
pub const PAYEE: &str = "FR7630006000011234567890189";
pub const LINE_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------------------------

/// A `stet sandbox serve` child, stopped (Ctrl-C, then kill) on drop.
pub struct Sandbox {
    pub child: Child,
    pub info: Value,
    // Kept open: the sandbox never writes again, but a closed pipe must not surprise it.
    _stdout: BufReader<std::process::ChildStdout>,
}

impl Sandbox {
    /// Starts a sandbox: 3 accounts of 60 transactions in pages of 20, unless `extra` says
    /// otherwise.
    pub fn start(home: &Path, extra: &[&str]) -> Sandbox {
        Sandbox::start_with_stderr(home, extra, Stdio::null())
    }

    /// [`Sandbox::start`], the sandbox's stderr (its log) going to `stderr`.
    pub fn start_with_stderr(home: &Path, extra: &[&str], stderr: Stdio) -> Sandbox {
        let mut defaults: Vec<&str> = Vec::new();
        for (flag, value) in [
            ("--accounts", "3"),
            ("--transactions", "60"),
            ("--page-size", "20"),
        ] {
            if !extra.contains(&flag) {
                defaults.extend([flag, value]);
            }
        }
        let mut child = Command::new(STET)
            .args(["sandbox", "serve", "--port", "0"])
            .args(defaults)
            .args(extra)
            .env("HOME", home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("spawn stet sandbox serve");
        let mut stdout = BufReader::new(child.stdout.take().expect("sandbox stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read the sandbox line");
        let info: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("the sandbox's first line is not JSON ({e}): {line:?}"));
        Sandbox {
            child,
            info,
            _stdout: stdout,
        }
    }

    pub fn get(&self, key: &str) -> &str {
        self.info[key]
            .as_str()
            .unwrap_or_else(|| panic!("sandbox info has no `{key}`: {}", self.info))
    }
}

impl Sandbox {
    /// Stops the bank (as Ctrl-C would), for tests of what works without it.
    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        // Ctrl-C lets the sandbox remove its ephemeral PKI; kill it if it does not stop.
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A sandbox, a temporary HOME and a configuration file for it (profile `sandbox`).
pub struct Env {
    // Dropped first: the sandbox stops before its folder goes.
    pub sandbox: Sandbox,
    pub home: tempfile::TempDir,
    pub config: PathBuf,
    /// Extra environment variables every `stet` run gets (a passphrase, a client secret).
    pub vars: Vec<(String, String)>,
}

/// What a finished command did.
#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub what: String,
}

impl Out {
    /// Asserts exit 0 and gives stdout.
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, 0, "{self}");
        self.no_panic();
        &self.stdout
    }

    pub fn no_panic(&self) {
        assert!(!self.stderr.contains("panicked"), "{self}");
        assert!(!self.stdout.contains("panicked"), "{self}");
    }

    /// Asserts a failure with `code`: nothing on stdout, one `error:` line on stderr that
    /// contains `needle` (case-insensitive), and no panic.
    pub fn fails(&self, code: i32, needle: &str) {
        assert_eq!(self.code, code, "{self}");
        self.no_panic();
        assert_eq!(self.stdout, "", "stdout must be empty on failure: {self}");
        self.error_line(needle);
    }

    /// The one `error:` line of stderr, which must contain `needle`.
    pub fn error_line(&self, needle: &str) -> &str {
        let errors: Vec<&str> = self
            .stderr
            .lines()
            .filter(|l| l.starts_with("error:"))
            .collect();
        assert_eq!(errors.len(), 1, "exactly one `error:` line: {self}");
        assert!(
            errors[0].to_lowercase().contains(&needle.to_lowercase()),
            "the error line should mention `{needle}`: {self}"
        );
        errors[0]
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(self.ok())
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self}"))
    }

    pub fn json_array(&self) -> Vec<Value> {
        match self.json() {
            Value::Array(items) => items,
            other => panic!("expected a JSON array, got {other}"),
        }
    }

    pub fn ndjson(&self) -> Vec<Value> {
        self.ok()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("NDJSON line is not JSON ({e}): {l:?}"));
                assert!(v.is_object(), "one object per line: {l}");
                v
            })
            .collect()
    }

    /// The CSV output: header and rows, each row as wide as the header.
    pub fn csv(&self) -> (Vec<String>, Vec<Vec<String>>) {
        let mut records = parse_csv(self.ok());
        assert!(!records.is_empty(), "CSV needs a header: {self}");
        let header = records.remove(0);
        for row in &records {
            assert_eq!(row.len(), header.len(), "row {row:?} vs header {header:?}");
        }
        (header, records)
    }
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`stet {}` exited {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what, self.code, self.stdout, self.stderr
        )
    }
}

/// RFC 4180: quoted fields may hold commas, quotes (doubled) and line breaks; records end in
/// CRLF.
pub fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut started = false;
    while let Some(c) = chars.next() {
        started = true;
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                other => field.push(other),
            }
            continue;
        }
        match c {
            '"' if field.is_empty() => quoted = true,
            ',' => record.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                started = false;
            }
            other => field.push(other),
        }
    }
    assert!(!quoted, "unterminated quoted field in CSV");
    if started {
        record.push(field);
        records.push(record);
    }
    records
}

impl Env {
    pub fn new() -> Env {
        Env::with(&[], "sandbox")
    }

    /// A sandbox started with `extra` arguments, and a profile for the bank dialect `bank`.
    pub fn with(extra: &[&str], bank: &str) -> Env {
        Env::with_sandbox_stderr(extra, bank, Stdio::null())
    }

    /// [`Env::with`], the sandbox's stderr (its log) going to `stderr`.
    pub fn with_sandbox_stderr(extra: &[&str], bank: &str, stderr: Stdio) -> Env {
        let home = tempfile::Builder::new()
            .prefix("stet-e2e-")
            .tempdir()
            .expect("temp dir");
        let sandbox = Sandbox::start_with_stderr(home.path(), extra, stderr);
        let config = home.path().join("stet.toml");
        let env = Env {
            sandbox,
            home,
            config,
            vars: Vec::new(),
        };
        let bank = format!("{bank:?}");
        let text = format!(
            "default_profile = \"sandbox\"\n\n[profiles.sandbox]\n{}",
            env.profile_body(&[("bank", &bank)])
        );
        write_private(&env.config, &text);
        env
    }

    /// The keys of the sandbox profile, with `(key, value)` overrides (TOML values as written).
    pub fn profile_body(&self, overrides: &[(&str, &str)]) -> String {
        let s = &self.sandbox;
        let q = |k: &str| format!("{:?}", s.get(k));
        let mut keys: Vec<(&str, String)> = vec![
            ("bank", "\"sandbox\"".to_owned()),
            ("api_base", q("api_base")),
            ("token_url", q("token_url")),
            ("authorize_url", q("authorize_url")),
            ("client_id", q("client_id")),
            ("redirect_uri", q("redirect_uri")),
            ("qwac_cert", q("qwac_cert")),
            ("qwac_key", q("qwac_key")),
            ("qseal_key", q("qseal_key")),
            ("qseal_cert", q("qseal_cert")),
            ("key_id", q("key_id")),
            ("ca_bundle", q("ca")),
        ];
        for (k, v) in overrides {
            match keys.iter_mut().find(|(key, _)| key == k) {
                Some(entry) => entry.1 = (*v).to_owned(),
                None => keys.push((k, (*v).to_owned())),
            }
        }
        keys.iter().map(|(k, v)| format!("{k} = {v}\n")).collect()
    }

    /// A configuration file holding only `[profiles.NAME]` with the overrides.
    pub fn config_with(&self, name: &str, overrides: &[(&str, &str)]) -> PathBuf {
        let path = self.home.path().join(format!("{name}.toml"));
        let text = format!("[profiles.{name}]\n{}", self.profile_body(overrides));
        write_private(&path, &text);
        path
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = at_home(self.home.path(), args);
        cmd.env("STET_CONFIG", &self.config)
            .env("STET_NO_BROWSER", "1")
            .envs(self.vars.iter().map(|(k, v)| (k, v)));
        cmd
    }

    /// Runs `stet ARGS` to the end, with no stdin.
    pub fn run(&self, args: &[&str]) -> Out {
        finished(args, self.command(args))
    }

    /// The sandbox bank's counters (`GET /sandbox/stats`).
    pub fn sandbox_stats(&self) -> Value {
        let ca = std::fs::read(self.sandbox.get("ca")).expect("read the sandbox CA");
        let url = url::Url::parse(self.sandbox.get("api_base"))
            .and_then(|base| base.join("/sandbox/stats"))
            .expect("stats URL");
        block_on(async move {
            let client = reqwest::Client::builder()
                .tls_certs_only([reqwest::Certificate::from_pem(&ca).expect("CA PEM")])
                .build()
                .expect("client");
            let response = client.get(url).send().await.expect("GET /sandbox/stats");
            assert_eq!(response.status().as_u16(), 200);
            let body = response.bytes().await.expect("stats body");
            serde_json::from_slice(&body).expect("stats JSON")
        })
    }

    /// Runs `stet ARGS --psu-ip …`: the PSU is present.
    pub fn present(&self, args: &[&str]) -> Out {
        let mut all = args.to_vec();
        all.extend(["--psu-ip", PSU_IP]);
        self.run(&all)
    }

    /// Starts `stet ARGS` in the background, its stdin piped, stdout and stderr collected.
    pub fn spawn(&self, args: &[&str]) -> Running {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn stet");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let out_thread = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = std::io::Read::read_to_string(&mut BufReader::new(stdout), &mut s);
            s
        });
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            stdin,
            lines,
            seen: Vec::new(),
            out_thread: Some(out_thread),
            what: args.join(" "),
        }
    }

    /// Plays the PSU at the bank: GETs the authorization URL (the sandbox approves at once)
    /// and gives the redirect `Location`.
    pub fn consent_at_bank(&self, authorize: &str) -> String {
        let ca = std::fs::read(self.sandbox.get("ca")).expect("read the sandbox CA");
        let (status, location) = block_on(async move {
            let browser = reqwest::Client::builder()
                .tls_certs_only([reqwest::Certificate::from_pem(&ca).expect("CA PEM")])
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("browser client");
            let response = browser.get(authorize).send().await.expect("GET /authorize");
            let location = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            (response.status().as_u16(), location)
        });
        assert_eq!(status, 302, "the sandbox approves and redirects");
        let location = location.expect("a Location header");
        assert!(location.contains("code="), "{location}");
        location
    }

    /// Logs in with the loopback listener: the test plays the browser. Gives the stderr and the
    /// redirect URL (which holds the code).
    pub fn login(&self, extra: &[&str]) -> (Out, String) {
        let mut args = vec!["auth", "login"];
        args.extend(extra);
        let mut running = self.spawn(&args);
        let url = running.authorize_url();
        let location = self.consent_at_bank(&url);
        let status = deliver(&location);
        assert_eq!(
            status, 200,
            "the CLI's loopback listener answers the browser"
        );
        let out = running.finish();
        assert_eq!(out.code, 0, "{out}");
        (out, location)
    }

    /// Approves a payment in a running `stet pay`/`stet pay confirm`: GET the approval URL it
    /// prints, deliver the redirect to its listener.
    pub fn approve_payment(&self, running: &mut Running) -> String {
        let url = running.authorize_url();
        assert!(url.contains("paymentRequestResourceId="), "{url}");
        let location = self.consent_at_bank(&url);
        assert_eq!(deliver(&location), 200);
        location
    }

    /// Plays the PSU approving a payment at the bank from its approval link, with no stet
    /// listening for the redirect (the bank sends the PSU back to the TPP's report URL); then
    /// `stet pay confirm ID --approved` confirms it. Gives the redirect.
    pub fn approve_at_bank(&self, link: &str) -> String {
        let mut url = url::Url::parse(link).expect("an approval link");
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", self.sandbox.get("client_id"))
            .append_pair("redirect_uri", self.sandbox.get("redirect_uri"))
            .append_pair("scope", "pisp")
            .append_pair("state", "approved-at-the-bank")
            .append_pair(
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            )
            .append_pair("code_challenge_method", "S256");
        self.consent_at_bank(url.as_str())
    }

    pub fn token_file(&self, profile: &str) -> PathBuf {
        self.home
            .path()
            .join("data")
            .join("stet")
            .join("tokens")
            .join(format!("{profile}.json"))
    }

    /// Every secret string in the token file: access and refresh tokens.
    pub fn stored_secrets(&self, profile: &str) -> Vec<String> {
        let text = std::fs::read_to_string(self.token_file(profile)).expect("read token file");
        let json: Value = serde_json::from_str(&text).expect("token file is JSON");
        let mut secrets = Vec::new();
        for token in json["tokens"].as_object().expect("tokens").values() {
            for key in ["access_token", "refresh_token"] {
                if let Some(s) = token[key].as_str() {
                    secrets.push(s.to_owned());
                }
            }
        }
        assert!(!secrets.is_empty(), "the token file holds tokens: {text}");
        secrets
    }

    /// The accounts, as the bank sent them (`--output json`).
    pub fn accounts(&self) -> Vec<Value> {
        self.present(&["accounts", "--output", "json"]).json_array()
    }
}

/// A `stet` child in the background.
pub struct Running {
    pub child: Child,
    pub stdin: Option<ChildStdin>,
    pub lines: mpsc::Receiver<String>,
    pub seen: Vec<String>,
    pub out_thread: Option<std::thread::JoinHandle<String>>,
    pub what: String,
}

impl Running {
    /// Reads stderr until the authorization URL the CLI prints.
    pub fn authorize_url(&mut self) -> String {
        loop {
            let line = match self.lines.recv_timeout(LINE_TIMEOUT) {
                Ok(line) => line,
                Err(e) => {
                    let _ = self.child.kill();
                    panic!(
                        "no authorization URL from `stet {}` ({e}); stderr so far:\n{}",
                        self.what,
                        self.seen.join("\n")
                    );
                }
            };
            self.seen.push(line.clone());
            let trimmed = line.trim();
            if trimmed.starts_with("https://") && trimmed.contains("/authorize") {
                return trimmed.to_owned();
            }
        }
    }

    /// Writes `text` and a newline to the child's stdin, then closes it.
    pub fn paste(&mut self, text: &str) {
        let mut stdin = self.stdin.take().expect("stdin");
        writeln!(stdin, "{text}").expect("write to stdin");
    }

    /// Closes stdin and waits for the end.
    pub fn finish(mut self) -> Out {
        drop(self.stdin.take());
        let status = self.child.wait().expect("wait");
        let stdout = self
            .out_thread
            .take()
            .map(|t| t.join().unwrap_or_default())
            .unwrap_or_default();
        // The reader thread ends at EOF, once the child has exited.
        let mut stderr = self.seen.clone();
        while let Ok(line) = self.lines.recv_timeout(LINE_TIMEOUT) {
            stderr.push(line);
        }
        Out {
            code: status.code().unwrap_or(-1),
            stdout,
            stderr: stderr.join("\n") + "\n",
            what: self.what.clone(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `cmd` (which is `stet ARGS`) to the end, with no stdin.
pub fn finished(args: &[&str], mut cmd: Command) -> Out {
    let output = cmd.stdin(Stdio::null()).output().expect("run stet");
    Out {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        what: args.join(" "),
    }
}

/// Delivers the bank's redirect to the CLI's loopback listener, as the browser would.
pub fn deliver(location: &str) -> u16 {
    let location = location.to_owned();
    block_on(async move {
        let response = reqwest::Client::new()
            .get(&location)
            .send()
            .await
            .expect("GET the loopback redirect");
        response.status().as_u16()
    })
}

/// `stet ARGS` with nothing of the caller's environment but `PATH`, `home` as its HOME and
/// XDG folders, no colour: no configuration but what the test writes there.
pub fn at_home(home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(STET);
    cmd.args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_DATA_HOME", home.join("data"))
        .env("XDG_CONFIG_HOME", home.join("config"))
        .env("NO_COLOR", "1");
    cmd
}

/// The keys of a JSON object, sorted: what a documented shape (docs/output.md) is compared
/// with.
pub fn keys(v: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

pub fn write_private(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write config");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
}

/// A date `days` from today (UTC), as YYYY-MM-DD.
pub fn day(days: i64) -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    civil_from_days(secs.div_euclid(86_400) + days)
}

/// Howard Hinnant's days-to-civil algorithm.
pub fn civil_from_days(z: i64) -> String {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The value of `name` in a URL's query.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Calls one of the sandbox's own endpoints (`/sandbox/…`, GET or POST) and gives its JSON.
pub fn sandbox_call(env: &Env, method: &str, path: &str, body: &str) -> Value {
    let ca = std::fs::read(env.sandbox.get("ca")).expect("read the sandbox CA");
    let url = url::Url::parse(env.sandbox.get("api_base"))
        .and_then(|base| base.join(path))
        .expect("URL");
    let (method, body) = (method.to_owned(), body.to_owned());
    block_on(async move {
        let client = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).expect("CA PEM")])
            .build()
            .expect("client");
        let request = match method.as_str() {
            "POST" => client.post(url).body(body),
            _ => client.get(url),
        };
        let response = request.send().await.expect("sandbox call");
        assert_eq!(response.status().as_u16(), 200);
        serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON")
    })
}
