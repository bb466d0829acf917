//! The interop harness: what stands between stet and the sandbox bank when stet is tried as a
//! TPP would be, against servers nobody on the project wrote.
//!
//! - [`Nginx`]: Debian's nginx in front of the bank, terminating TLS with client certificates
//!   required, over HTTP/2 or HTTP/1.1, proxying to the sandbox (with the TPP's QWAC on its
//!   own TLS connection) and sending a copy of every request it forwards to a witness
//!   (nginx's `mirror`).
//! - [`Witness`]: `witness.py`, which checks each copy's signature with Python's
//!   `cryptography`, and hands it unchanged to Prism.
//! - [`Prism`]: Stoplight Prism serving an OpenAPI file (the official STET ones, a bank's), which
//!   says whether each request is valid under it.
//!
//! Each test binary that uses it also includes `mod support;` (the sandbox and the `stet`
//! runner).

#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::STET;

/// How long a helper process may take to start listening.
const START: Duration = Duration::from_secs(60);

/// `shared/reference/stet/` beside the repository (as in CI): the official specs.
pub fn reference(file: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/reference/stet")
        .join(file);
    assert!(
        path.exists(),
        "{} is missing: the official STET specs live in shared/reference/stet beside the repository",
        path.display()
    );
    path
}

/// A port free right now on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Waits until `port` accepts connections, or panics with `log()`'s text.
fn wait_for_port(port: u16, child: &mut Child, what: &str, log: impl Fn() -> String) {
    let started = Instant::now();
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited ({status}) before listening:\n{}", log());
        }
        assert!(
            started.elapsed() < START,
            "{what} is not listening on {port} after {START:?}:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A temporary folder named `prefix…`.
fn temp(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .expect("temp dir")
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// A test PKI written by `stet sandbox certs`: the CA, the bank's server certificate (for nginx
/// too) and the TPP's QWAC and QSealC.
pub struct Pki {
    pub dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = temp("stet-pki-");
        let out = Command::new(STET)
            .args(["sandbox", "certs", "--out"])
            .arg(dir.path())
            .output()
            .expect("run stet sandbox certs");
        assert!(out.status.success(), "stet sandbox certs: {out:?}");
        Pki { dir }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    pub fn arg(&self) -> String {
        self.dir.path().display().to_string()
    }
}

/// One nginx `server`: a loopback port in front of a sandbox.
pub struct Front {
    pub port: u16,
    pub http2: bool,
    /// The sandbox's origin, `https://127.0.0.1:PORT`.
    pub upstream: String,
    /// The witness's port, when requests are mirrored to it.
    pub witness: Option<u16>,
}

/// A line of nginx's access log.
#[derive(Debug, Clone)]
pub struct Access {
    pub port: u16,
    pub protocol: String,
    pub method: String,
    pub target: String,
    pub status: u16,
}

/// nginx in the foreground (`daemon off`, `master_process off`), its configuration, logs and
/// temporary files in a folder of its own.
pub struct Nginx {
    child: Child,
    pub dir: tempfile::TempDir,
}

impl Nginx {
    pub fn start(pki: &Pki, fronts: &[Front]) -> Nginx {
        let nginx = stet_testkit::nginx();
        let dir = temp("stet-nginx-");
        let d = dir.path().display().to_string();
        std::fs::create_dir_all(dir.path().join("tmp")).expect("nginx tmp");
        let mut servers = String::new();
        for f in fronts {
            let listen = if f.http2 { "ssl http2" } else { "ssl" };
            let mirror = match f.witness {
                Some(port) => format!(
                    "            mirror /_witness;\n        }}\n        location = /_witness {{\n            internal;\n            proxy_pass http://127.0.0.1:{port}$request_uri;\n            proxy_set_header Host $http_host;\n            proxy_set_header X-Witness-Protocol $server_protocol;\n"
                ),
                None => String::new(),
            };
            servers.push_str(&format!(
                r#"
    server {{
        listen 127.0.0.1:{port} {listen};
        ssl_certificate {bank_pem};
        ssl_certificate_key {bank_key};
        ssl_client_certificate {ca};
        ssl_verify_client on;
        access_log {d}/access.log stet;
        location / {{
            proxy_pass {upstream};
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_set_header Connection "";
            proxy_ssl_certificate {qwac};
            proxy_ssl_certificate_key {qwac_key};
            proxy_ssl_trusted_certificate {ca};
            proxy_ssl_verify on;
            proxy_ssl_name localhost;
{mirror}        }}
    }}
"#,
                port = f.port,
                bank_pem = pki.path("bank.pem").display(),
                bank_key = pki.path("bank.key").display(),
                ca = pki.path("ca.pem").display(),
                upstream = f.upstream,
                qwac = pki.path("tpp-qwac.pem").display(),
                qwac_key = pki.path("tpp-qwac.key").display(),
            ));
        }
        let conf = format!(
            r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 256; }}
http {{
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    log_format stet '$server_port $server_protocol $request_method $request_uri $status';
{servers}}}
"#
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).expect("write nginx.conf");
        let mut child = Command::new(nginx)
            .arg("-p")
            .arg(dir.path())
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .arg("-c")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx");
        let error_log = dir.path().join("error.log");
        for f in fronts {
            wait_for_port(f.port, &mut child, "nginx", || {
                std::fs::read_to_string(&error_log).unwrap_or_default()
            });
        }
        Nginx { child, dir }
    }

    pub fn access(&self) -> Vec<Access> {
        std::fs::read_to_string(self.dir.path().join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(|line| {
                let f: Vec<&str> = line.split(' ').collect();
                assert_eq!(f.len(), 5, "access log line: {line}");
                Access {
                    port: f[0].parse().expect("port"),
                    protocol: f[1].to_owned(),
                    method: f[2].to_owned(),
                    target: f[3].to_owned(),
                    status: f[4].parse().expect("status"),
                }
            })
            .collect()
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// `witness.py` behind nginx; every request it saw is a line of [`Witness::lines`].
pub struct Witness {
    child: Child,
    pub port: u16,
    out: PathBuf,
    _dir: tempfile::TempDir,
}

impl Witness {
    /// `cert`: check signatures with this QSealC; `prism`: hand requests under `prefix` to it.
    pub fn start(cert: Option<&Path>, prism: Option<(&Prism, &str)>) -> Witness {
        let dir = temp("stet-witness-");
        let out = dir.path().join("seen.jsonl");
        let port_file = dir.path().join("port");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop/witness.py");
        let mut command = Command::new(stet_testkit::python());
        command
            .arg(script)
            .arg("--out")
            .arg(&out)
            .arg("--port-file")
            .arg(&port_file);
        if let Some(cert) = cert {
            command.arg("--cert").arg(cert);
        }
        if let Some((prism, prefix)) = prism {
            command
                .arg("--prism")
                .arg(format!("http://127.0.0.1:{}", prism.port))
                .arg("--prefix")
                .arg(prefix);
        }
        let log = dir.path().join("witness.log");
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("witness log"))
            .spawn()
            .expect("start the witness (Python)");
        let started = Instant::now();
        let port = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                break text.trim().parse::<u16>().expect("witness port");
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "the witness exited ({status}):\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            assert!(started.elapsed() < START, "the witness did not start");
            std::thread::sleep(Duration::from_millis(20));
        };
        Witness {
            child,
            port,
            out,
            _dir: dir,
        }
    }

    /// What the witness has seen so far, one JSON object per request.
    pub fn lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.out)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("a witness line is JSON"))
            .collect()
    }

    /// Waits (a few seconds at most: mirrored copies may trail the answers) until the witness
    /// has seen `n` requests, and gives them.
    pub fn wait_for(&self, n: usize) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let lines = self.lines();
            if lines.len() >= n || started.elapsed() > Duration::from_secs(20) {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// `prism mock SPEC`: validates each request against SPEC (answers do not matter here).
pub struct Prism {
    child: Child,
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Prism {
    pub fn start(spec: &Path) -> Prism {
        let dir = temp("stet-prism-");
        let log = dir.path().join("prism.log");
        let port = free_port();
        let mut child = Command::new(stet_testkit::prism())
            .args(["mock", "--host", "127.0.0.1", "--port"])
            .arg(port.to_string())
            .arg(spec)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).expect("prism log"))
            .stderr(Stdio::null())
            .spawn()
            .expect("start prism");
        let text = || std::fs::read_to_string(&log).unwrap_or_default();
        wait_for_port(port, &mut child, "prism", text);
        Prism {
            child,
            port,
            log,
            _dir: dir,
        }
    }

    /// Prism's own log, for failure messages.
    pub fn log(&self) -> String {
        let file = std::fs::File::open(&self.log).expect("prism log");
        BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .filter(|l| l.contains("error") || l.contains("warn"))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Prism {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// `origin` (`https://127.0.0.1:PORT`) of a URL.
pub fn origin(url: &str) -> String {
    let u = url::Url::parse(url).expect("a URL");
    format!(
        "{}://{}:{}",
        u.scheme(),
        u.host_str().expect("host"),
        u.port_or_known_default().expect("port")
    )
}

/// `url` with its origin replaced by `https://127.0.0.1:PORT`.
pub fn through(url: &str, port: u16) -> String {
    let u = url::Url::parse(url).expect("a URL");
    let mut rest = u.path().to_owned();
    if let Some(q) = u.query() {
        rest.push('?');
        rest.push_str(q);
    }
    format!("https://127.0.0.1:{port}{rest}")
}
