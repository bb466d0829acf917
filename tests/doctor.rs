//! `stet doctor`, `stet init` and `stet completions`, end to end: the built `stet` binary
//! against a sandbox bank started in this process, over real sockets.
//!
//! Every run gets its own folder for the configuration, the keys and XDG_CONFIG_HOME /
//! XDG_DATA_HOME, so no file of the user's is read or touched.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use stet_sandbox::{RunningSandbox, Sandbox, SandboxConfig, SandboxInfo};
use stet_transport::inspect::{self, Psd2Statement, PspRole, QcType};

const ACPR: &str = "Autorité de contrôle prudentiel et de résolution";

/// A sandbox on its own runtime, which keeps serving while the test runs the binary.
struct Bank {
    runtime: tokio::runtime::Runtime,
    sandbox: Option<RunningSandbox>,
    info: SandboxInfo,
}

impl Bank {
    fn start() -> Bank {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let sandbox = runtime
            .block_on(Sandbox::start(SandboxConfig::default()))
            .unwrap();
        let info = sandbox.info().clone();
        Bank {
            runtime,
            sandbox: Some(sandbox),
            info,
        }
    }

    /// Stops the bank: its port is closed afterwards.
    fn stop(&mut self) {
        if let Some(s) = self.sandbox.take() {
            self.runtime.block_on(s.shutdown());
        }
    }
}

/// A folder with a configuration (profile `sb`) for a sandbox, and copies of its files.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(info: &SandboxInfo, extra: &str) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        std::fs::create_dir(&certs).unwrap();
        for (from, to) in [
            (&info.qwac_cert, "qwac.pem"),
            (&info.qwac_key, "qwac.key"),
            (&info.qseal_cert, "qseal.pem"),
            (&info.qseal_key, "qseal.key"),
            (&info.ca, "ca.pem"),
        ] {
            std::fs::copy(from, certs.join(to)).unwrap();
        }
        let setup = Setup { dir };
        setup.chmod("certs/qwac.key", 0o600);
        setup.chmod("certs/qseal.key", 0o600);
        let config = format!(
            r#"[profiles.sb]
bank = "sandbox"
api_base = "{api_base}"
token_url = "{token_url}"
authorize_url = "{authorize_url}"
client_id = "{client_id}"
redirect_uri = "{redirect_uri}"
qwac_cert = "certs/qwac.pem"
qwac_key = "certs/qwac.key"
qseal_key = "certs/qseal.key"
qseal_cert = "certs/qseal.pem"
key_id = "{key_id}"
ca_bundle = "certs/ca.pem"
scopes = ["aisp", "pisp"]
{extra}
"#,
            api_base = info.api_base,
            token_url = info.token_url,
            authorize_url = info.authorize_url,
            client_id = info.client_id,
            redirect_uri = info.redirect_uri,
            key_id = info.key_id,
        );
        std::fs::write(setup.config(), config).unwrap();
        setup.chmod("config.toml", 0o600);
        setup
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn config(&self) -> PathBuf {
        self.path("config.toml")
    }

    fn chmod(&self, name: &str, mode: u32) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(self.path(name), std::fs::Permissions::from_mode(mode))
                .unwrap();
        }
        #[cfg(not(unix))]
        let _ = (name, mode);
    }

    fn write_key(&self, name: &str, pem: &str) {
        std::fs::write(self.path(name), pem).unwrap();
        self.chmod(name, 0o600);
    }

    fn doctor(&self, extra: &[&str]) -> Run {
        let config = self.config();
        let mut args = vec!["--config", config.to_str().unwrap(), "--profile", "sb"];
        args.push("doctor");
        args.extend(extra);
        stet(self.dir.path(), &args)
    }
}

/// What one run of `stet` gave.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The stdout line of a check (`ok   NAME: …`), failing the test when absent.
    fn line(&self, check: &str) -> &str {
        self.stdout
            .lines()
            .find(|l| {
                l.get(5..)
                    .is_some_and(|rest| rest.starts_with(&format!("{check}:")))
            })
            .unwrap_or_else(|| panic!("no `{check}` line in:\n{self}"))
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs the binary with `home` as HOME and XDG folders, and no STET_* variable of ours.
fn stet(home: &Path, args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_stet"));
    command
        .args(args)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("xdg-config"))
        .env("XDG_DATA_HOME", home.join("xdg-data"))
        .env("NO_COLOR", "1");
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("STET_") {
            command.env_remove(key);
        }
    }
    let Output {
        status,
        stdout,
        stderr,
    } = command.output().unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

/// A certificate and its key, PEM, with the given QCStatements and dates, self-signed.
fn certificate(
    rsa: bool,
    qc_type: QcType,
    roles: Vec<PspRole>,
    not_before: time::OffsetDateTime,
    not_after: time::OffsetDateTime,
) -> (String, String) {
    let mut params = rcgen::CertificateParams::new(vec!["tpp.example".to_owned()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Example TPP");
    params.distinguished_name.push(
        rcgen::DnType::CustomDnType(vec![2, 5, 4, 97]),
        "PSDFR-ACPR-12345",
    );
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "test certificate");
    params.not_before = not_before;
    params.not_after = not_after;
    let statements = inspect::encode_qc_statements(
        &[qc_type],
        Some(&Psd2Statement {
            roles,
            nca_name: ACPR.to_owned(),
            nca_id: "FR-ACPR".to_owned(),
        }),
    )
    .unwrap();
    params.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
        &[1, 3, 6, 1, 5, 5, 7, 1, 3],
        statements,
    )];
    let alg = if rsa {
        &rcgen::PKCS_RSA_SHA256
    } else {
        &rcgen::PKCS_ECDSA_P256_SHA256
    };
    let key = rcgen::KeyPair::generate_for(alg).unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn days(n: i64) -> time::Duration {
    time::Duration::days(n)
}

#[test]
fn a_good_profile_passes_every_check() {
    let bank = Bank::start();
    let setup = Setup::new(&bank.info, "");
    let run = setup.doctor(&[]);
    assert_eq!(run.code, 0, "{run}");
    let checks = [
        "configuration",
        "QWAC certificate",
        "QWAC key and chain",
        "QWAC QCStatements",
        "QSealC key",
        "QSealC certificate",
        "QSealC key matches certificate",
        "QSealC QCStatements",
        "roles for the scopes",
        "registration",
        "permissions of the QWAC key",
        "permissions of the QSealC key",
        "permissions of the configuration file",
        "TLS handshake with the QWAC",
        "clock",
        "token endpoint",
    ];
    for check in checks {
        // A profile whose client id was given by hand has no registration to check.
        let expected = if check == "registration" {
            "skip "
        } else {
            "ok   "
        };
        assert!(run.line(check).starts_with(expected), "{check}:\n{run}");
    }
    // In that order, one line each, nothing else on stdout.
    let names: Vec<&str> = run
        .stdout
        .lines()
        .map(|l| l[5..].split(':').next().unwrap())
        .collect();
    assert_eq!(names, checks, "{run}");
    assert!(run.line("QWAC QCStatements").contains("PSP_AI"), "{run}");
    assert!(run.line("QWAC QCStatements").contains("FR-ACPR"), "{run}");
    assert!(
        run.line("QWAC QCStatements").contains("PSDFR-ACPR-12345"),
        "{run}"
    );
    assert!(run.line("QWAC certificate").contains("days left"), "{run}");
    assert!(
        run.line("QSealC QCStatements").contains("QcType seal"),
        "{run}"
    );
    assert!(
        run.line("roles for the scopes").contains("pisp → PSP_PI"),
        "{run}"
    );
    // Nothing secret: no key material anywhere.
    assert!(!run.stdout.contains("PRIVATE KEY") && !run.stderr.contains("PRIVATE KEY"));

    // JSON: the same checks, all ok.
    let json = setup.doctor(&["--output", "json"]);
    assert_eq!(json.code, 0, "{json}");
    let value: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    let array = value.as_array().unwrap();
    assert_eq!(array.len(), checks.len());
    for (item, check) in array.iter().zip(checks) {
        assert_eq!(item["check"], check);
        assert_eq!(item["ok"], true, "{item}");
        assert!(item["detail"].is_string() && item.get("fix").is_some());
    }
}

#[test]
fn a_key_others_can_read_fails_with_chmod() {
    let bank = Bank::start();
    let setup = Setup::new(&bank.info, "");
    setup.chmod("certs/qseal.key", 0o644);
    let run = setup.doctor(&[]);
    assert_eq!(run.code, 78, "{run}");
    let line = run.line("permissions of the QSealC key");
    let key = setup.path("certs/qseal.key");
    assert!(line.starts_with("FAIL "), "{run}");
    assert!(line.contains("mode 644"), "{run}");
    assert!(
        line.ends_with(&format!("chmod 600 {}", key.display())),
        "{run}"
    );
    // The other checks still ran and passed.
    assert!(run.line("token endpoint").starts_with("ok   "), "{run}");
    assert!(
        run.line("permissions of the QWAC key").starts_with("ok   "),
        "{run}"
    );
}

#[test]
fn a_qseal_key_that_is_not_the_certificates_fails() {
    let bank = Bank::start();
    let setup = Setup::new(&bank.info, "");
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    setup.write_key("certs/qseal.key", &other.serialize_pem());
    let run = setup.doctor(&[]);
    assert_eq!(run.code, 78, "{run}");
    assert!(run.line("QSealC key").starts_with("ok   "), "{run}");
    let line = run.line("QSealC key matches certificate");
    assert!(line.starts_with("FAIL "), "{run}");
    assert!(line.contains("is not the key of"), "{run}");
    assert!(line.contains("set qseal_key and qseal_cert"), "{run}");
    assert!(!run.stdout.contains("PRIVATE KEY"));
}

#[test]
fn an_expired_qwac_is_flagged_even_when_allowed_to_load() {
    let bank = Bank::start();
    let setup = Setup::new(&bank.info, "allow_expired_certificate = true");
    let now = time::OffsetDateTime::now_utc();
    let (cert, key) = certificate(
        false,
        QcType::Web,
        vec![PspRole::AccountInformation, PspRole::PaymentInitiation],
        now - days(400),
        now - days(35),
    );
    std::fs::write(setup.path("certs/qwac.pem"), cert).unwrap();
    setup.write_key("certs/qwac.key", &key);
    let run = setup.doctor(&[]);
    assert_eq!(run.code, 78, "{run}");
    let line = run.line("QWAC certificate");
    assert!(line.starts_with("FAIL "), "{run}");
    assert!(
        line.contains("expired on") && line.contains("days ago"),
        "{run}"
    );
    assert!(line.contains("renew it with your QTSP"), "{run}");
    assert!(run.line("weakened settings").starts_with("warn "), "{run}");
    // Its key and statements are still checked.
    assert!(run.line("QWAC key and chain").starts_with("ok   "), "{run}");
    assert!(run.line("QWAC QCStatements").starts_with("ok   "), "{run}");
}

#[test]
fn a_qseal_without_psp_pi_fails_the_pisp_scope() {
    let bank = Bank::start();
    let setup = Setup::new(&bank.info, "");
    let now = time::OffsetDateTime::now_utc();
    let (cert, key) = certificate(
        true,
        QcType::Seal,
        vec![PspRole::AccountInformation],
        now - days(1),
        now + days(365),
    );
    std::fs::write(setup.path("certs/qseal.pem"), cert).unwrap();
    setup.write_key("certs/qseal.key", &key);
    let run = setup.doctor(&[]);
    assert_eq!(run.code, 78, "{run}");
    assert!(
        run.line("QSealC key matches certificate")
            .starts_with("ok   "),
        "{run}"
    );
    assert!(
        run.line("QSealC QCStatements").starts_with("ok   "),
        "{run}"
    );
    let line = run.line("roles for the scopes");
    assert!(line.starts_with("FAIL "), "{run}");
    assert!(line.contains("lacks PSP_PI (for pisp)"), "{run}");
    assert!(line.contains("remove those scopes"), "{run}");
}

#[test]
fn a_qseal_close_to_expiry_is_a_warning_not_a_failure() {
    let bank = Bank::start();
    let setup = Setup::new(&bank.info, "");
    let now = time::OffsetDateTime::now_utc();
    let (cert, key) = certificate(
        true,
        QcType::Seal,
        vec![PspRole::AccountInformation, PspRole::PaymentInitiation],
        now - days(300),
        now + days(10) + time::Duration::hours(1),
    );
    std::fs::write(setup.path("certs/qseal.pem"), cert).unwrap();
    setup.write_key("certs/qseal.key", &key);
    let run = setup.doctor(&[]);
    assert_eq!(run.code, 0, "{run}");
    let line = run.line("QSealC certificate");
    assert!(
        line.starts_with("warn ") && line.contains("(10 days left)"),
        "{run}"
    );
    assert!(line.contains("renew it with your QTSP"), "{run}");
}

#[test]
fn a_qwac_used_as_qseal_is_the_wrong_type() {
    let bank = Bank::start();
    let setup = Setup::new(&bank.info, "");
    std::fs::copy(setup.path("certs/qwac.pem"), setup.path("certs/qseal.pem")).unwrap();
    let run = setup.doctor(&[]);
    assert_eq!(run.code, 78, "{run}");
    let line = run.line("QSealC QCStatements");
    assert!(
        line.starts_with("FAIL ") && line.contains("QcType web, not seal"),
        "{run}"
    );
    assert!(line.contains("swap"), "{run}");
}

#[test]
fn a_bank_that_is_down_fails_the_network_checks_with_69() {
    let mut bank = Bank::start();
    let setup = Setup::new(&bank.info, "");
    bank.stop();
    let run = setup.doctor(&[]);
    assert_eq!(run.code, 69, "{run}");
    assert!(run.line("QWAC certificate").starts_with("ok   "), "{run}");
    let tls = run.line("TLS handshake with the QWAC");
    assert!(
        tls.starts_with("FAIL ") && tls.contains("check api_base"),
        "{run}"
    );
    assert!(run.line("clock").starts_with("skip "), "{run}");
    assert!(run.line("token endpoint").starts_with("FAIL "), "{run}");
}

#[test]
fn no_configuration_is_a_configuration_failure() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let run = stet(
        dir.path(),
        &["--config", missing.to_str().unwrap(), "doctor"],
    );
    assert_eq!(run.code, 78, "{run}");
    assert!(run.line("configuration").starts_with("FAIL "), "{run}");
    assert!(run.stdout.contains("stet init"), "{run}");
}

fn mode(path: &Path) -> u32 {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        0o600
    }
}

#[test]
fn init_writes_a_private_profile_that_parses_and_refuses_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    // Without --config: the platform's folder, here under XDG_CONFIG_HOME.
    let run = stet(home, &["init", "--bank", "bnp-paribas"]);
    assert_eq!(run.code, 0, "{run}");
    let path = home.join("xdg-config/stet/config.toml");
    assert!(run.stderr.contains(&path.display().to_string()), "{run}");
    assert!(
        run.stderr.contains("stet doctor --profile bnp-paribas"),
        "{run}"
    );
    assert!(run.stdout.is_empty(), "{run}");
    assert_eq!(mode(&path), 0o600);
    let file = stet_transport::config::load_file(&path).unwrap();
    assert_eq!(file.default_profile.as_deref(), Some("bnp-paribas"));
    let profile = &file.profiles["bnp-paribas"];
    assert_eq!(profile.bank.as_deref(), Some("bnp-paribas"));
    assert_eq!(
        profile.redirect_uri.as_deref(),
        Some("http://127.0.0.1:8765/callback")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    for key in [
        "api_base",
        "token_url",
        "authorize_url",
        "client_id",
        "redirect_uri",
        "qwac_cert",
        "qwac_key",
        "qseal_key",
        "qseal_cert",
        "key_id",
        "ca_bundle",
        "scopes",
        "psu_ip",
    ] {
        assert!(text.contains(&format!("{key} = ")), "no {key} in\n{text}");
    }

    // A second time: refused, naming the file and the profile.
    let again = stet(home, &["init", "--bank", "bnp-paribas"]);
    assert_eq!(again.code, 78, "{again}");
    assert!(
        again.stderr.contains(&path.display().to_string()),
        "{again}"
    );
    assert!(again.stderr.contains("`bnp-paribas`") && again.stderr.contains("--force"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);

    // Another profile is appended; the first one stays.
    let lcl = stet(home, &["init", "--bank", "lcl", "--profile", "mine"]);
    assert_eq!(lcl.code, 0, "{lcl}");
    let file = stet_transport::config::load_file(&path).unwrap();
    assert_eq!(file.profiles.len(), 2);
    assert_eq!(file.profiles["mine"].bank.as_deref(), Some("lcl"));

    // --force replaces it, and only it.
    let forced = stet(
        home,
        &["init", "--bank", "sandbox", "--profile", "mine", "--force"],
    );
    assert_eq!(forced.code, 0, "{forced}");
    let file = stet_transport::config::load_file(&path).unwrap();
    assert_eq!(file.profiles.len(), 2);
    assert_eq!(file.profiles["mine"].bank.as_deref(), Some("sandbox"));
    assert_eq!(
        file.profiles["bnp-paribas"].bank.as_deref(),
        Some("bnp-paribas")
    );
    assert_eq!(mode(&path), 0o600);

    // The placeholders are not a working profile: doctor says so, without panicking.
    let doctor = stet(home, &["--profile", "mine", "doctor"]);
    assert_eq!(doctor.code, 78, "{doctor}");
    assert!(
        doctor.line("configuration").starts_with("ok   "),
        "{doctor}"
    );
    assert!(
        doctor.line("QWAC certificate").starts_with("FAIL "),
        "{doctor}"
    );
}

#[test]
fn init_with_an_unknown_bank_lists_the_known_ones() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c/config.toml");
    let run = stet(
        dir.path(),
        &[
            "--config",
            config.to_str().unwrap(),
            "init",
            "--bank",
            "nope",
        ],
    );
    assert_eq!(run.code, 78, "{run}");
    assert!(run.stderr.contains("unknown bank `nope`"), "{run}");
    assert!(run.stderr.contains("bnp-paribas") && run.stderr.contains("sandbox"));
    assert!(!config.exists());

    // Without --bank: profile `default`, generic, written where --config says.
    let run = stet(dir.path(), &["--config", config.to_str().unwrap(), "init"]);
    assert_eq!(run.code, 0, "{run}");
    let file = stet_transport::config::load_file(&config).unwrap();
    assert_eq!(file.profiles["default"].bank, None);
}

#[test]
fn completions_name_the_subcommands() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let run = stet(dir.path(), &["completions", shell]);
        assert_eq!(run.code, 0, "{shell}: {run}");
        for word in ["stet", "doctor", "init", "sandbox", "completions"] {
            assert!(run.stdout.contains(word), "{shell} lacks {word}");
        }
    }
    let run = stet(dir.path(), &["completions", "tcsh"]);
    assert_eq!(run.code, 2, "{run}");
}
