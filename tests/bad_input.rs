//! Bad input refused: every row of SECURITY.md's "Bad input" table, through the `stet` binary.
//!
//! Each test gives `stet` one bad input and checks what the user sees: the exit code, the key
//! words of the one `error:` line (or, for `stet doctor`, of its `FAIL` line), an empty stdout
//! and no panic.
//!
//! Certificates, keys and configuration are refused when the profile is loaded, before any
//! connection: those tests need no bank, only the sandbox's test PKI written to a temporary
//! folder and a profile pointing at a port where nothing listens (should a bad input pass the
//! load, the command fails later with another code, and the test says so). Bad answers from a
//! bank come from a `stet sandbox serve` child with the matching `--faults`.

#![allow(missing_docs)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, CustomExtension, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use stet_transport::inspect::{self, Psd2Statement, PspRole, QcType};
use support::*;
use time::OffsetDateTime;

/// The exit codes README.md documents.
const DOCUMENTED: [i32; 10] = [1, 2, 65, 66, 69, 74, 75, 77, 78, 0];

// ---------------------------------------------------------------------------------------------
// A profile without a bank
// ---------------------------------------------------------------------------------------------

/// A temporary HOME with the sandbox's test PKI (CA, QWAC, QSealC) and a configuration file
/// whose URLs point at a port where nothing listens.
/// A second valid IBAN, for payments to several payees.
const PAYEE_2: &str = "FR7630004000031234567890143";

struct Offline {
    dir: tempfile::TempDir,
}

impl Offline {
    fn new() -> Offline {
        let dir = tempfile::Builder::new()
            .prefix("stet-bad-")
            .tempdir()
            .expect("temp dir");
        stet_sandbox::pki::generate(&dir.path().join("pki")).expect("test PKI");
        Offline { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// A file of the test PKI.
    fn pki(&self, name: &str) -> String {
        self.path("pki").join(name).display().to_string()
    }

    /// Writes a private (0600) file and gives its path.
    fn write(&self, name: &str, contents: &[u8]) -> String {
        let path = self.path(name);
        std::fs::write(&path, contents).expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        }
        path.display().to_string()
    }

    /// The keys of a working profile `tpp`, with `(key, value)` overrides (TOML values as
    /// written; an empty value removes the key).
    fn profile(&self, overrides: &[(&str, &str)]) -> String {
        let q = |s: String| format!("{s:?}");
        // Port 9 (discard): nothing listens there on a test machine.
        let mut keys: Vec<(&str, String)> = vec![
            ("bank", q("sandbox".into())),
            ("api_base", q("https://127.0.0.1:9/stet/psd2/v1.5".into())),
            ("token_url", q("https://127.0.0.1:9/token".into())),
            ("authorize_url", q("https://127.0.0.1:9/authorize".into())),
            ("client_id", q("tpp".into())),
            ("redirect_uri", q("http://127.0.0.1:8765/callback".into())),
            ("qwac_cert", q(self.pki("tpp-qwac.pem"))),
            ("qwac_key", q(self.pki("tpp-qwac.key"))),
            ("qseal_key", q(self.pki("tpp-qseal.key"))),
            ("qseal_cert", q(self.pki("tpp-qseal.pem"))),
            ("key_id", q("https://tpp.example/qseal.pem".into())),
            ("ca_bundle", q(self.pki("ca.pem"))),
            ("scopes", "[\"aisp\", \"pisp\"]".into()),
        ];
        for (k, v) in overrides {
            match keys.iter_mut().find(|(key, _)| key == k) {
                Some(entry) => entry.1 = (*v).to_owned(),
                None => keys.push((k, (*v).to_owned())),
            }
        }
        keys.iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect()
    }

    /// Writes `config.toml` with profile `tpp` and the overrides; gives its path.
    fn config(&self, overrides: &[(&str, &str)]) -> String {
        let text = format!("[profiles.tpp]\n{}", self.profile(overrides));
        self.write("config.toml", text.as_bytes())
    }

    /// `stet ARGS` with `--config config.toml`, in this HOME, nothing inherited.
    fn run_with(&self, extra_env: &[(&str, &str)], args: &[&str]) -> Out {
        let home = self.dir.path();
        let mut cmd = Command::new(STET);
        cmd.arg("--config")
            .arg(self.path("config.toml"))
            .args(args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CONFIG_HOME", home.join("xdg-config"))
            .env("STET_NO_BROWSER", "1")
            .env("NO_COLOR", "1");
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        finished(args, cmd)
    }

    fn run(&self, args: &[&str]) -> Out {
        self.run_with(&[], args)
    }

    /// `stet accounts`, the first command a user runs after logging in: the profile, the QWAC
    /// and the QSealC key are loaded before anything else.
    fn accounts(&self) -> Out {
        self.run(&["accounts", "--psu-ip", PSU_IP])
    }

    /// `stet doctor`: gives its run, which must have failed (78) on `check` with `needle`.
    fn doctor_fails(&self, check: &str, needle: &str) -> Out {
        let out = self.run(&["doctor"]);
        assert_eq!(out.code, 78, "{out}");
        out.no_panic();
        let line = out
            .stdout
            .lines()
            .find(|l| {
                l.get(5..)
                    .is_some_and(|r| r.starts_with(&format!("{check}:")))
            })
            .unwrap_or_else(|| panic!("no `{check}` line: {out}"));
        assert!(line.starts_with("FAIL "), "{out}");
        assert!(
            line.contains(needle),
            "`{check}` should say `{needle}`: {out}"
        );
        out
    }
}

/// What a test certificate is.
struct Spec {
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    key_usages: Vec<KeyUsagePurpose>,
    extended: Vec<ExtendedKeyUsagePurpose>,
    qc_type: QcType,
    roles: Vec<PspRole>,
    rsa: bool,
}

impl Spec {
    /// A QWAC valid for a year, with both PSD2 AIS and PIS roles.
    fn qwac() -> Spec {
        let now = OffsetDateTime::now_utc();
        Spec {
            not_before: now - time::Duration::days(1),
            not_after: now + time::Duration::days(365),
            key_usages: vec![KeyUsagePurpose::DigitalSignature],
            extended: vec![ExtendedKeyUsagePurpose::ClientAuth],
            qc_type: QcType::Web,
            roles: vec![PspRole::AccountInformation, PspRole::PaymentInitiation],
            rsa: false,
        }
    }

    fn params(&self, cn: &str) -> CertificateParams {
        let mut p = CertificateParams::new(vec!["tpp.example".to_owned()]).expect("params");
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name
            .push(DnType::OrganizationName, "Example TPP");
        p.distinguished_name
            .push(DnType::CustomDnType(vec![2, 5, 4, 97]), "PSDFR-ACPR-12345");
        p.distinguished_name.push(DnType::CommonName, cn);
        p.not_before = self.not_before;
        p.not_after = self.not_after;
        p.key_usages = self.key_usages.clone();
        p.extended_key_usages = self.extended.clone();
        let statements = inspect::encode_qc_statements(
            std::slice::from_ref(&self.qc_type),
            Some(&Psd2Statement {
                roles: self.roles.clone(),
                nca_name: "Autorité de contrôle prudentiel et de résolution".to_owned(),
                nca_id: "FR-ACPR".to_owned(),
            }),
        )
        .expect("QCStatements");
        p.custom_extensions = vec![CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 5, 5, 7, 1, 3],
            statements,
        )];
        p
    }

    fn key(&self) -> KeyPair {
        KeyPair::generate_for(if self.rsa {
            &rcgen::PKCS_RSA_SHA256
        } else {
            &rcgen::PKCS_ECDSA_P256_SHA256
        })
        .expect("key")
    }

    /// Self-signed: (certificate PEM, key PEM).
    fn self_signed(&self) -> (String, String) {
        let key = self.key();
        let cert = self
            .params("test certificate")
            .self_signed(&key)
            .expect("cert");
        (cert.pem(), key.serialize_pem())
    }
}

/// A profile whose QWAC is `cert` with `key`, both written to the folder.
fn with_qwac(env: &Offline, cert: &str, key: &str) {
    let cert = env.write("qwac.pem", cert.as_bytes());
    let key = env.write("qwac.key", key.as_bytes());
    env.config(&[
        ("qwac_cert", &format!("{cert:?}")),
        ("qwac_key", &format!("{key:?}")),
    ]);
}

/// A profile whose QSealC key is the file `name` holding `key`.
fn with_qseal_key(env: &Offline, key: &[u8], extra: &[(&str, &str)]) {
    let path = env.write("qseal.key", key);
    let mut overrides = vec![("qseal_key", format!("{path:?}"))];
    overrides.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let overrides: Vec<(&str, &str)> = overrides.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.config(&overrides);
}

/// The test keys of the signature crate: an RSA key encrypted with `correct-horse`, an EC key.
fn httpsig_data(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../httpsig/tests/data")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------------------------

#[test]
fn cert_expired_qwac() {
    let env = Offline::new();
    let now = OffsetDateTime::now_utc();
    let (cert, key) = Spec {
        not_before: now - time::Duration::days(400),
        not_after: now - time::Duration::days(3),
        ..Spec::qwac()
    }
    .self_signed();
    with_qwac(&env, &cert, &key);
    let out = env.accounts();
    out.fails(78, "has expired");
    out.error_line("qwac.pem");
}

#[test]
fn cert_qwac_not_yet_valid() {
    let env = Offline::new();
    let now = OffsetDateTime::now_utc();
    let (cert, key) = Spec {
        not_before: now + time::Duration::days(2),
        not_after: now + time::Duration::days(400),
        ..Spec::qwac()
    }
    .self_signed();
    with_qwac(&env, &cert, &key);
    env.accounts().fails(78, "is not yet valid");
}

#[test]
fn cert_qwac_key_of_another_certificate() {
    let env = Offline::new();
    // The QSealC's key given as the QWAC's.
    let qseal_key = format!("{:?}", env.pki("tpp-qseal.key"));
    env.config(&[("qwac_key", &qseal_key)]);
    let out = env.accounts();
    out.fails(78, "does not match the certificate");
    out.error_line("same certificate");
}

#[test]
fn cert_server_certificate_as_qwac() {
    let env = Offline::new();
    // A TLS server certificate: its extended key usage is serverAuth only.
    let (cert, key) = Spec {
        extended: vec![ExtendedKeyUsagePurpose::ServerAuth],
        ..Spec::qwac()
    }
    .self_signed();
    with_qwac(&env, &cert, &key);
    let out = env.accounts();
    out.fails(78, "cannot be a QWAC");
    out.error_line("(serverAuth) lacks clientAuth");
}

#[test]
fn cert_seal_only_key_usage_as_qwac() {
    let env = Offline::new();
    // A QSealC as such certificates are often issued: key usage nonRepudiation only.
    let (cert, key) = Spec {
        key_usages: vec![KeyUsagePurpose::ContentCommitment],
        extended: Vec::new(),
        qc_type: QcType::Seal,
        rsa: true,
        ..Spec::qwac()
    }
    .self_signed();
    with_qwac(&env, &cert, &key);
    let out = env.accounts();
    out.fails(78, "cannot be a QWAC");
    out.error_line("lacks digitalSignature");
}

#[test]
fn cert_qseal_qctype_as_qwac() {
    let env = Offline::new();
    // The sandbox's QSealC (QcType seal) in place of the QWAC: `stet doctor` names the swap.
    let (cert, key) = (env.pki("tpp-qseal.pem"), env.pki("tpp-qseal.key"));
    env.config(&[
        ("qwac_cert", &format!("{cert:?}")),
        ("qwac_key", &format!("{key:?}")),
    ]);
    env.doctor_fails("QWAC QCStatements", "QcType seal, not web");
}

#[test]
fn cert_missing_psd2_role() {
    let env = Offline::new();
    // A QSealC with the AIS role only, for a profile that also asks for pisp.
    let (cert, key) = Spec {
        qc_type: QcType::Seal,
        roles: vec![PspRole::AccountInformation],
        key_usages: vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::ContentCommitment,
        ],
        extended: Vec::new(),
        rsa: true,
        ..Spec::qwac()
    }
    .self_signed();
    let cert = env.write("qseal.pem", cert.as_bytes());
    let key = env.write("qseal.key", key.as_bytes());
    env.config(&[
        ("qseal_cert", &format!("{cert:?}")),
        ("qseal_key", &format!("{key:?}")),
    ]);
    let out = env.doctor_fails("roles for the scopes", "lacks PSP_PI (for pisp)");
    assert!(out.stdout.contains("remove those scopes"), "{out}");
}

#[test]
fn cert_chain_out_of_order() {
    let env = Offline::new();
    let spec = Spec::qwac();
    let mut ca = spec.params("Example QTSP CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.extended_key_usages = Vec::new();
    ca.custom_extensions = Vec::new();
    let ca = CertifiedIssuer::self_signed(ca, spec.key()).expect("CA");
    let leaf_key = spec.key();
    let leaf = spec
        .params("Example TPP QWAC")
        .signed_by(&leaf_key, &ca)
        .expect("leaf");
    // The issuer first, then the QWAC: the wrong way round.
    let chain = format!("{}{}", ca.pem(), leaf.pem());
    with_qwac(&env, &chain, &leaf_key.serialize_pem());
    let out = env.accounts();
    out.fails(78, "out of order");
    out.error_line("put the QWAC first");
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

#[test]
fn key_wrong_passphrase() {
    let env = Offline::new();
    with_qseal_key(
        &env,
        &httpsig_data("rsa2048.encrypted.pem"),
        &[("qseal_key_passphrase_env", "\"QSEAL_PASSPHRASE\"")],
    );
    let out = env.run_with(
        &[("QSEAL_PASSPHRASE", "not-the-passphrase")],
        &["accounts", "--psu-ip", PSU_IP],
    );
    out.fails(78, "wrong passphrase");
    out.error_line("qseal.key");
    assert!(!out.stderr.contains("not-the-passphrase"), "{out}");
}

#[test]
fn key_encrypted_without_passphrase() {
    let env = Offline::new();
    with_qseal_key(&env, &httpsig_data("rsa2048.encrypted.pem"), &[]);
    let out = env.accounts();
    out.fails(78, "the key is encrypted");
    out.error_line("qseal_key_passphrase_env");
}

#[test]
fn key_truncated_qseal() {
    let env = Offline::new();
    let key = std::fs::read(env.pki("tpp-qseal.key")).expect("key");
    with_qseal_key(&env, &key[..key.len() / 2], &[]);
    let out = env.accounts();
    out.fails(78, "qseal.key");
    out.error_line("no `-----END PRIVATE KEY-----` line: the file is cut short");
}

#[test]
fn key_truncated_qwac() {
    let env = Offline::new();
    let key = std::fs::read_to_string(env.pki("tpp-qwac.key")).expect("key");
    let cert = std::fs::read_to_string(env.pki("tpp-qwac.pem")).expect("cert");
    with_qwac(&env, &cert, &key[..key.len() / 2]);
    let out = env.accounts();
    out.fails(78, "qwac.key");
    out.error_line("no private key found (no `-----END PRIVATE KEY-----` line");
}

#[test]
fn key_wrong_type() {
    let env = Offline::new();
    with_qseal_key(&env, &httpsig_data("ec-p256.pem"), &[]);
    env.accounts().fails(78, "need an RSA key");
}

#[test]
fn key_certificate_given_as_key() {
    let env = Offline::new();
    let cert = std::fs::read(env.pki("tpp-qseal.pem")).expect("cert");
    with_qseal_key(&env, &cert, &[]);
    let out = env.accounts();
    out.fails(78, "qseal.key");
    out.error_line("CERTIFICATE");
}

#[test]
fn key_file_missing() {
    let env = Offline::new();
    let missing = env.path("nowhere/qseal.key").display().to_string();
    env.config(&[("qseal_key", &format!("{missing:?}"))]);
    let out = env.accounts();
    out.fails(78, "cannot read the QSealC key");
    out.error_line("nowhere/qseal.key");
    out.error_line("check `qseal_key`");
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

#[test]
fn config_unknown_profile() {
    let env = Offline::new();
    env.config(&[]);
    let out = env.run(&["--profile", "nope", "accounts"]);
    out.fails(78, "no profile `nope`");
    out.error_line("profiles: tpp");
}

#[test]
fn config_missing_field() {
    let env = Offline::new();
    env.config(&[("key_id", "")]);
    let out = env.accounts();
    out.fails(78, "has no `key_id`");
    out.error_line("STET_KEY_ID");
}

#[test]
fn config_http_url() {
    let env = Offline::new();
    env.config(&[("api_base", "\"http://bank.example/stet/psd2/v1.5\"")]);
    let out = env.accounts();
    out.fails(78, "https only");
    out.error_line("allow_insecure_http = true");
}

#[test]
fn config_http_token_url() {
    let env = Offline::new();
    env.config(&[("token_url", "\"http://127.0.0.1:9/token\"")]);
    env.accounts().fails(78, "`token_url`");
}

#[test]
fn config_other_scheme_even_with_the_flag() {
    let env = Offline::new();
    env.config(&[
        ("api_base", "\"ftp://bank.example/stet\""),
        ("allow_insecure_http", "true"),
    ]);
    env.accounts().fails(78, "uses ftp");
}

#[test]
fn config_unknown_bank() {
    let env = Offline::new();
    env.config(&[("bank", "\"no-such-bank\"")]);
    env.accounts().fails(78, "no-such-bank");
}

#[test]
fn config_unknown_key() {
    let env = Offline::new();
    env.config(&[("colour", "\"blue\"")]);
    let out = env.accounts();
    out.fails(78, "colour");
    out.error_line("config.toml");
}

#[test]
fn config_not_toml() {
    let env = Offline::new();
    env.write("config.toml", b"[profiles.tpp\napi_base = \n");
    let out = env.accounts();
    out.fails(78, "config.toml");
    out.error_line("line 1");
}

#[test]
fn config_file_missing() {
    let env = Offline::new();
    let out = env.accounts();
    out.fails(78, "no configuration file");
    out.error_line("stet init");
}

// ---------------------------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------------------------

#[test]
fn arg_impossible_date() {
    let env = Offline::new();
    env.config(&[]);
    let out = env.run(&["transactions", "ACC0001", "--from", "2025-02-30"]);
    out.fails(2, "2025-02-30");
    out.error_line("YYYY-MM-DD");
}

#[test]
fn arg_from_after_to() {
    let env = Offline::new();
    env.config(&[]);
    env.run(&[
        "transactions",
        "ACC0001",
        "--from",
        "2025-03-01",
        "--to",
        "2025-02-01",
    ])
    .fails(2, "--from 2025-03-01 is not before --to 2025-02-01");
}

#[test]
fn arg_iban_check_digits() {
    let env = Offline::new();
    env.config(&[]);
    // The README's payee with a wrong last digit.
    env.run(&[
        "pay",
        "--to",
        "FR7630006000011234567890188",
        "--amount",
        "1.00",
        "--label",
        "x",
    ])
    .fails(2, "check digits");
}

#[test]
fn arg_iban_malformed() {
    let env = Offline::new();
    env.config(&[]);
    env.run(&[
        "funds-check",
        "--account",
        "FR76-not-an-iban",
        "--amount",
        "1.00",
    ])
    .fails(2, "not an IBAN");
}

#[test]
fn arg_negative_amount() {
    let env = Offline::new();
    env.config(&[]);
    env.run(&["pay", "--to", PAYEE, "--amount=-5.00", "--label", "x"])
        .fails(2, "more than zero");
}

#[test]
fn arg_over_precise_amount() {
    let env = Offline::new();
    env.config(&[]);
    env.run(&["pay", "--to", PAYEE, "--amount", "1.005", "--label", "x"])
        .fails(2, "two decimals");
}

#[test]
fn arg_amount_not_a_number() {
    let env = Offline::new();
    env.config(&[]);
    // An exponent: `1e3` would be 1000.00.
    let out = env.run(&["funds-check", "--account", PAYEE, "--amount", "1e3"]);
    out.fails(2, "`1e3` is not an amount");
    out.error_line("digits");
}

#[test]
fn arg_payee_without_a_name() {
    let env = Offline::new();
    env.config(&[]);
    // SEPA transfers carry the payee's name: without --to-name it is looked up among the PSU's
    // trusted beneficiaries, which cannot be read here; nothing is paid nameless.
    let out = env.run(&[
        "pay", "create", "--to", PAYEE, "--amount", "1.00", "--label", "x",
    ]);
    out.fails(
        2,
        "--to-name NAME is required for FR7630006000011234567890189",
    );
    out.error_line("trusted beneficiaries could not be read");
}

#[test]
fn arg_payees_and_amounts_that_do_not_pair() {
    let env = Offline::new();
    env.config(&[]);
    let two = [
        "pay",
        "create",
        "--to",
        PAYEE,
        "--to",
        PAYEE_2,
        "--to-name",
        "A",
        "--to-name",
        "B",
        "--label",
        "x",
    ];
    let mut args = two.to_vec();
    args.extend(["--amount", "1.00"]);
    env.run(&args).fails(
        2,
        "--amount: give one per --to, in the same order (2 payees, 1 amounts)",
    );
    // A standing order pays one payee.
    let mut args = two.to_vec();
    args.extend([
        "--amount",
        "1.00",
        "--amount",
        "2.00",
        "--every",
        "monthly",
        "--date",
        "2099-01-05",
    ]);
    env.run(&args).fails(2, "a standing order pays one payee");
}

#[test]
fn arg_funds_check_without_the_payee_a_bank_requires() {
    let env = Offline::new();
    env.config(&[("bank", "\"credit-agricole\"")]);
    env.run(&["funds-check", "--account", PAYEE, "--amount", "1.00"])
        .fails(2, "--payee NAME is required: Crédit Agricole");
}

// ---------------------------------------------------------------------------------------------
// Bank responses (the sandbox with --faults)
// ---------------------------------------------------------------------------------------------

/// A sandbox with `faults`, and a PSU logged in.
fn faulty_bank(faults: &str, extra: &[&str]) -> Env {
    let mut args = vec!["--faults", faults];
    args.extend(extra);
    let env = Env::with(&args, "sandbox");
    env.login(&[]);
    env
}

#[test]
fn bank_truncated_json() {
    let env = faulty_bank("truncate:every=1", &[]);
    let out = env.present(&["accounts", "--output", "json"]);
    out.fails(65, "cannot be read");
    out.error_line("EOF while parsing");
    out.error_line("try again later");
}

#[test]
fn bank_html_instead_of_json() {
    let env = faulty_bank("content-type:every=1", &[]);
    let out = env.present(&["accounts", "--output", "json"]);
    out.fails(65, "it is a web page (HTML or XML), not JSON");
    out.error_line("maintenance");
}

#[test]
fn bank_huge_body() {
    let env = faulty_bank("huge-body:every=1:mib=300", &[]);
    // stet's data segment is capped at 192 MiB: reading the 300 MiB body whole would abort
    // on a failed allocation. The cap of 32 MiB per answer refuses it long before.
    let inner = env.command(&["accounts", "--output", "json", "--psu-ip", PSU_IP]);
    let mut cmd = Command::new("prlimit");
    cmd.arg(format!("--data={}", 192 * 1024 * 1024))
        .arg("--")
        .arg(inner.get_program())
        .args(inner.get_args())
        .env_clear();
    for (k, v) in inner.get_envs() {
        if let Some(v) = v {
            cmd.env(k, v);
        }
    }
    let started = Instant::now();
    let out = finished(&["accounts (300 MiB answer, 192 MiB data limit)"], cmd);
    out.fails(65, "larger than 32 MiB");
    out.error_line("refused without reading the rest");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "refused in {:?}",
        started.elapsed()
    );
}

#[test]
fn bank_next_link_to_another_host() {
    // Pages of 2 accounts: the first page links to a second one, on another host.
    let env = faulty_bank("foreign-next:every=1", &["--page-size", "2"]);
    let out = env.present(&["accounts", "--output", "json"]);
    assert_eq!(out.code, 65, "{out}");
    out.no_panic();
    let line = out.error_line("refusing to follow the bank's next link");
    assert!(line.contains("elsewhere.example"), "{out}");
    // The first page was printed; the JSON array is left open, so no reader takes it for a
    // whole list.
    assert!(
        serde_json::from_str::<serde_json::Value>(&out.stdout).is_err(),
        "a partial list must not parse as a complete one: {out}"
    );
}

#[test]
fn bank_token_endpoint_redirects() {
    let env = Env::with(&["--faults", "token-redirect"], "sandbox");
    // Funds confirmation asks the token endpoint for a client-credentials token first.
    let out = env.present(&["funds-check", "--account", PAYEE, "--amount", "1.00"]);
    out.fails(
        78,
        "the token endpoint redirected to https://elsewhere.example/token",
    );
    out.error_line("check `token_url`");
}

#[test]
fn bank_error_model_without_fields() {
    let env = faulty_bank("error-model-empty:every=1", &[]);
    let out = env.present(&["accounts", "--output", "json"]);
    out.fails(65, "HTTP 400 (the bank gave no reason");
    out.error_line("-vv");
}

// ---------------------------------------------------------------------------------------------
// No input makes stet panic
// ---------------------------------------------------------------------------------------------

/// Asserts no panic and a documented exit code, naming the case on failure.
fn no_panic(case: &str, out: &Out) {
    assert!(
        !out.stderr.contains("panicked") && !out.stdout.contains("panicked"),
        "{case}: {out}"
    );
    assert!(
        DOCUMENTED.contains(&out.code),
        "{case}: exit {} is not a documented code: {out}",
        out.code
    );
}

#[test]
fn no_panic_on_malformed_arguments() {
    let env = Offline::new();
    env.config(&[]);
    let odd = [
        "",
        " ",
        "-",
        "--",
        "é",
        "\u{202e}",
        "💶",
        "0",
        "-1",
        "99999999999999999999999",
        "1.",
        ".5",
        "1,00",
        "NaN",
        "inf",
        "0000-00-00",
        "9999-12-31",
        "2025-1-1",
        "FR",
        "FR76 3000 6000 0112 3456 7890 189 ",
        "ACC0001/../..",
        "%00",
        "http://evil.example/",
    ];
    let commands: [&[&str]; 12] = [
        &["transactions", "ACC0001", "--from"],
        &["transactions", "ACC0001", "--to"],
        &["transactions"],
        &["balances"],
        &["pay", "--label", "x", "--to", PAYEE, "--amount"],
        &["pay", "--label", "x", "--amount", "1.00", "--to"],
        &["funds-check", "--account", PAYEE, "--amount"],
        &["funds-check", "--amount", "1.00", "--account"],
        &["pay", "status"],
        &["consent", "put", "--balances"],
        &["request", "GET"],
        &["accounts", "--output"],
    ];
    let mut runs = 0;
    for command in commands {
        for value in odd {
            let mut args = command.to_vec();
            args.push(value);
            args.extend(["--psu-ip", PSU_IP]);
            let out = env.run(&args);
            no_panic(&format!("stet {}", args.join(" ")), &out);
            runs += 1;
        }
    }
    assert_eq!(runs, commands.len() * odd.len());
}

#[test]
fn no_panic_on_malformed_configuration_and_files() {
    let env = Offline::new();
    let garbage: Vec<u8> = (0u32..4096)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let qseal = std::fs::read_to_string(env.pki("tpp-qseal.key")).expect("key");
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("binary", garbage.clone()),
        ("PEM header only", b"-----BEGIN PRIVATE KEY-----\n".to_vec()),
        (
            "PEM with bad base64",
            b"-----BEGIN PRIVATE KEY-----\n!!!!\n-----END PRIVATE KEY-----\n".to_vec(),
        ),
        (
            "PEM of garbage DER",
            format!(
                "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
                "MIIB".repeat(40)
            )
            .into_bytes(),
        ),
        ("key with its last line lost", {
            let mut lines: Vec<&str> = qseal.lines().collect();
            lines.pop();
            lines.join("\n").into_bytes()
        }),
    ];
    let mut runs = 0;
    // Each bad file as every file the profile names.
    for key in [
        "qwac_cert",
        "qwac_key",
        "qseal_key",
        "qseal_cert",
        "ca_bundle",
    ] {
        for (name, bytes) in &cases {
            let path = env.write("bad-file", bytes);
            env.config(&[(key, &format!("{path:?}"))]);
            for args in [&["accounts", "--psu-ip", PSU_IP][..], &["doctor"]] {
                let out = env.run(args);
                no_panic(&format!("{key} = {name}, stet {}", args.join(" ")), &out);
                assert_ne!(out.code, 0, "{key} = {name}: {out}");
                runs += 1;
            }
        }
    }
    // Configuration files that are not what stet expects.
    let configs: Vec<(&str, Vec<u8>)> = vec![
        ("binary", garbage),
        ("empty", Vec::new()),
        ("profiles is a string", b"profiles = \"x\"\n".to_vec()),
        ("a profile is a number", b"[profiles]\ntpp = 3\n".to_vec()),
        ("empty profile", b"[profiles.tpp]\n".to_vec()),
        (
            "scopes not a list",
            env.profile(&[("scopes", "\"aisp\"")]).into_bytes(),
        ),
        (
            "timeout negative",
            env.profile(&[("timeout_secs", "-1")]).into_bytes(),
        ),
        (
            "timeout enormous",
            env.profile(&[("timeout_secs", "18446744073709551615")])
                .into_bytes(),
        ),
        (
            "api_base not a URL",
            env.profile(&[("api_base", "\"::\"")]).into_bytes(),
        ),
        (
            "api_base without host",
            env.profile(&[("api_base", "\"https://\"")]).into_bytes(),
        ),
        (
            "client_auth unknown",
            env.profile(&[("client_auth", "\"magic\"")]).into_bytes(),
        ),
        (
            "psu_ip not an IP",
            env.profile(&[("psu_ip", "\"somewhere\"")]).into_bytes(),
        ),
        (
            "a folder as key",
            env.profile(&[("qseal_key", &format!("{:?}", env.pki("")))])
                .into_bytes(),
        ),
    ];
    for (name, text) in &configs {
        let text = if text.starts_with(b"bank") || text.starts_with(b"api_base") {
            [b"[profiles.tpp]\n".as_slice(), text].concat()
        } else {
            text.clone()
        };
        env.write("config.toml", &text);
        for args in [
            &["accounts"][..],
            &["doctor"],
            &["auth", "status"],
            &["funds-check", "--account", PAYEE, "--amount", "1.00"],
        ] {
            let out = env.run(args);
            no_panic(&format!("config {name}, stet {}", args.join(" ")), &out);
            runs += 1;
        }
    }
    assert!(runs > 80, "{runs}");
}
