//! Test fixtures over real sockets: a PKI made with rcgen, and a scripted HTTPS server that
//! demands client certificates.
#![allow(dead_code)] // each test binary uses part of it

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// A CA, the bank's server certificate, and the TPP's QWAC (ECDSA) and QSealC (RSA) keys, as
/// files in a temporary folder.
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca_pem: String,
    server_cert: CertificateDer<'static>,
    server_key: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn.push(DnType::OrganizationName, "stet tests");
    dn
}

impl Pki {
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name = dn("stet test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);

        let server_key = KeyPair::generate().unwrap();
        let mut server =
            CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
        server.distinguished_name = dn("bank.example");
        let server_cert = server.signed_by(&server_key, &issuer).unwrap();

        let pki = Pki {
            ca_pem: ca_cert.pem(),
            server_cert: server_cert.der().clone(),
            server_key: server_key.serialize_der(),
            issuer,
            dir,
        };
        std::fs::write(pki.path("ca.pem"), &pki.ca_pem).unwrap();
        pki.write_qwac("qwac", 1, false);
        let qseal = include_str!("../../../httpsig/tests/data/rsa2048.pkcs8.pem");
        std::fs::write(pki.path("qseal.key"), qseal).unwrap();
        std::fs::copy(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../httpsig/tests/data/rsa2048.pub.pem"
            ),
            pki.path("qseal.pub.pem"),
        )
        .unwrap();
        pki
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `<name>.pem` (leaf, then the CA) and `<name>.key`. `days` is the validity from
    /// now (negative: already expired).
    pub fn write_qwac(&self, name: &str, days: i64, ca_first: bool) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name = dn("Example TPP QWAC");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let now = time::OffsetDateTime::now_utc();
        if days < 0 {
            params.not_before = now + time::Duration::days(days * 2);
            params.not_after = now + time::Duration::days(days);
        } else {
            params.not_before = now - time::Duration::days(1);
            params.not_after = now + time::Duration::days(days.max(1));
        }
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let chain = if ca_first {
            format!("{}{}", self.ca_pem, cert.pem())
        } else {
            format!("{}{}", cert.pem(), self.ca_pem)
        };
        std::fs::write(self.path(&format!("{name}.pem")), chain).unwrap();
        std::fs::write(self.path(&format!("{name}.key")), key.serialize_pem()).unwrap();
    }

    /// A configuration file for a server at `base` (https://127.0.0.1:port), with extra TOML.
    pub fn config(&self, port: u16, extra: &str) -> PathBuf {
        let text = format!(
            r#"
[profiles.test]
api_base = "https://127.0.0.1:{port}/stet/psd2/v1.5"
token_url = "https://127.0.0.1:{port}/oauth/token"
authorize_url = "https://127.0.0.1:{port}/oauth/authorize"
client_id = "PSDFR-ACPR-12345"
redirect_uri = "http://127.0.0.1:8765/callback"
qwac_cert = "qwac.pem"
qwac_key = "qwac.key"
qseal_key = "qseal.key"
key_id = "qseal-1"
ca_bundle = "ca.pem"
timeout_secs = 3
connect_timeout_secs = 3
{extra}
"#
        );
        let path = self.path("config.toml");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
        path
    }

    pub fn profile(&self, port: u16, extra: &str) -> stet_transport::Profile {
        let path = self.config(port, extra);
        let file = stet_transport::config::load_file(&path).unwrap();
        stet_transport::config::resolve(&file, Some("test"), Some(&path), &|_| None).unwrap()
    }

    fn server_config(&self, require_client_cert: bool) -> rustls::ServerConfig {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(self.ca_pem.as_bytes()).unwrap())
                .unwrap();
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        builder
            .with_single_cert(
                vec![self.server_cert.clone()],
                PrivateKeyDer::try_from(self.server_key.clone()).unwrap(),
            )
            .unwrap()
    }
}

/// A request as the server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub client_cert: bool,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }

    pub fn form_value(&self, key: &str) -> Option<String> {
        self.form()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// As a stet_httpsig request, to verify its signature.
    pub fn to_signed(&self) -> stet_httpsig::Request {
        let mut r = stet_httpsig::Request::new(self.method.clone(), self.target.clone());
        for (n, v) in &self.headers {
            r.append_header(n.clone(), v.clone());
        }
        r.set_body(self.body.clone());
        r
    }
}

/// What the server does with a request.
pub enum Reply {
    Respond(u16, Vec<(&'static str, String)>, Vec<u8>),
    /// Closes the connection without answering.
    Drop,
    /// Sends headers and half the body, then closes.
    Truncate(u16, Vec<u8>),
    /// Waits, then does the inner reply.
    Delay(Duration, Box<Reply>),
}

pub fn json(status: u16, body: serde_json::Value) -> Reply {
    Reply::Respond(
        status,
        vec![("Content-Type", "application/json".into())],
        serde_json::to_vec(&body).unwrap(),
    )
}

type Handler = dyn Fn(&Received) -> Reply + Send + Sync;

pub struct Server {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub async fn start(
        pki: &Pki,
        require_client_cert: bool,
        handler: impl Fn(&Received) -> Reply + Send + Sync + 'static,
    ) -> Server {
        Self::start_on("127.0.0.1", pki, require_client_cert, handler).await
    }

    pub async fn start_on(
        ip: &str,
        pki: &Pki,
        require_client_cert: bool,
        handler: impl Fn(&Received) -> Reply + Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let acceptor =
            tokio_rustls::TlsAcceptor::from(Arc::new(pki.server_config(require_client_cert)));
        let received = Arc::new(Mutex::new(Vec::new()));
        let handler: Arc<Handler> = Arc::new(handler);
        let log = received.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                let handler = handler.clone();
                let log = log.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let client_cert = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .is_some_and(|c| !c.is_empty());
                    let mut buf = Vec::new();
                    loop {
                        let Some(req) = read_request(&mut tls, &mut buf, client_cert).await else {
                            return;
                        };
                        log.lock().unwrap().push(req.clone());
                        let mut reply = handler(&req);
                        while let Reply::Delay(d, inner) = reply {
                            tokio::time::sleep(d).await;
                            reply = *inner;
                        }
                        match reply {
                            Reply::Respond(status, headers, body) => {
                                let mut head = format!(
                                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n",
                                    body.len()
                                );
                                for (n, v) in headers {
                                    head.push_str(&format!("{n}: {v}\r\n"));
                                }
                                head.push_str("\r\n");
                                if tls.write_all(head.as_bytes()).await.is_err()
                                    || tls.write_all(&body).await.is_err()
                                {
                                    return;
                                }
                                let _ = tls.flush().await;
                            }
                            Reply::Truncate(status, body) => {
                                let head = format!(
                                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n",
                                    body.len()
                                );
                                let _ = tls.write_all(head.as_bytes()).await;
                                let _ = tls.write_all(&body[..body.len() / 2]).await;
                                let _ = tls.flush().await;
                                return;
                            }
                            Reply::Drop => return,
                            Reply::Delay(..) => unreachable!(),
                        }
                    }
                });
            }
        });
        Server {
            port,
            received,
            task,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn count(&self, path_part: &str) -> usize {
        self.received()
            .iter()
            .filter(|r| r.target.contains(path_part))
            .count()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_request<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    client_cert: bool,
) -> Option<Received> {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buf[..head_end].to_vec()).ok()?;
    let mut lines = head.split("\r\n");
    let mut parts = lines.next()?.split(' ');
    let method = parts.next()?.to_owned();
    let target = parts.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_owned(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let start = head_end + 4;
    while buf.len() < start + len {
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = buf[start..start + len].to_vec();
    buf.drain(..start + len);
    Some(Received {
        method,
        target,
        headers,
        body,
        client_cert,
    })
}

/// base64url(SHA-256(verifier)), the PKCE S256 challenge.
pub fn pkce_challenge(verifier: &str) -> String {
    use base64::Engine as _;
    use sha2::Digest as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

pub fn token_json(access: &str, expires_in: u64, refresh: Option<&str>) -> Reply {
    let mut body = serde_json::json!({"access_token": access, "token_type": "bearer", "expires_in": expires_in});
    if let Some(r) = refresh {
        body["refresh_token"] = r.into();
    }
    json(200, body)
}
