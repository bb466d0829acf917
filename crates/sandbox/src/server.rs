//! The HTTPS server: a tokio-rustls accept loop, hyper connections, and the reply type.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use crate::SandboxError;
use crate::pki::Pki;
use crate::state::State;

/// The largest request body read; larger ones get 413.
pub(crate) const MAX_BODY: usize = 1024 * 1024;

/// A request as the handlers see it.
#[derive(Debug)]
pub(crate) struct Req {
    pub(crate) method: String,
    /// Path and query exactly as received.
    pub(crate) target: String,
    pub(crate) path: String,
    pub(crate) query: String,
    /// Headers in wire order (per name), names as hyper gives them (lowercase).
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Bytes,
    /// The client certificate, when the client sent one (the CA checked it in the handshake).
    pub(crate) peer: Option<Arc<CertificateDer<'static>>>,
    /// Set when the request is an unattended AIS call the limit let through: the (account or
    /// PSU, endpoint) it counts for once it is answered 2xx (see `State::unattended_answered`).
    pub(crate) unattended: std::sync::OnceLock<(String, &'static str)>,
}

impl Req {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn query_pairs(&self) -> Vec<(String, String)> {
        form_urlencoded::parse(self.query.as_bytes())
            .into_owned()
            .collect()
    }

    pub(crate) fn query_param(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// A response, before it goes on the wire.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    /// Cut the body after half of it and close the connection (the `drop` fault).
    pub(crate) cut: bool,
    /// Instead of `body`, this many bytes made as they are sent, without `Content-Length`
    /// (the `huge-body` fault): the sandbox never holds them.
    pub(crate) generated: Option<u64>,
}

impl Reply {
    pub(crate) fn new(status: u16) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            cut: false,
            generated: None,
        }
    }

    pub(crate) fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    pub(crate) fn json(status: u16, body: Vec<u8>) -> Self {
        Reply {
            body,
            ..Reply::new(status)
        }
        .with_header("Content-Type", "application/hal+json; charset=utf-8")
    }

    pub(crate) fn plain_json(status: u16, value: &serde_json::Value) -> Self {
        Reply {
            body: value.to_string().into_bytes(),
            ..Reply::new(status)
        }
        .with_header("Content-Type", "application/json")
        .with_header("Cache-Control", "no-store")
    }

    pub(crate) fn html(status: u16, html: String) -> Self {
        Reply {
            body: html.into_bytes(),
            ..Reply::new(status)
        }
        .with_header("Content-Type", "text/html; charset=utf-8")
    }
}

/// A body that is either whole, or cut midway with an error (hyper then closes the connection),
/// or made chunk by chunk as the client reads it.
struct ReplyBody {
    data: Option<Bytes>,
    fail_after: bool,
    len: u64,
    /// Bytes still to make, for a generated body.
    remaining: u64,
}

/// The chunk a generated body repeats: JSON that never ends (an array of one account, again
/// and again), so a client that reads it all finds no end to parse.
fn generated_chunk() -> Bytes {
    static CHUNK: std::sync::OnceLock<Bytes> = std::sync::OnceLock::new();
    CHUNK
        .get_or_init(|| {
            let item = br#"{"resourceId":"HUGE","name":"a body that never ends"},"#;
            let mut chunk = Vec::with_capacity(64 * 1024);
            while chunk.len() + item.len() <= 64 * 1024 {
                chunk.extend_from_slice(item);
            }
            Bytes::from(chunk)
        })
        .clone()
}

impl Body for ReplyBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Some(data) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(data))));
        }
        if self.remaining > 0 {
            let mut chunk = generated_chunk();
            chunk.truncate(usize::try_from(self.remaining).unwrap_or(usize::MAX));
            self.remaining -= chunk.len() as u64;
            return Poll::Ready(Some(Ok(Frame::data(chunk))));
        }
        if self.fail_after {
            self.fail_after = false;
            return Poll::Ready(Some(Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "sandbox fault: connection dropped mid-response",
            ))));
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && !self.fail_after && self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        if self.remaining > 0 {
            // Unknown: no Content-Length, so the client cannot refuse it from the headers.
            return SizeHint::default();
        }
        SizeHint::with_exact(self.len)
    }
}

fn into_hyper(reply: Reply) -> hyper::Response<ReplyBody> {
    let len = reply.body.len() as u64;
    let body = if let Some(remaining) = reply.generated {
        ReplyBody {
            data: None,
            fail_after: false,
            len: 0,
            remaining,
        }
    } else if reply.cut {
        let half = reply.body.len() / 2;
        ReplyBody {
            data: Some(Bytes::from(reply.body[..half].to_vec())),
            fail_after: true,
            len,
            remaining: 0,
        }
    } else {
        ReplyBody {
            data: (!reply.body.is_empty()).then(|| Bytes::from(reply.body)),
            fail_after: false,
            len,
            remaining: 0,
        }
    };
    let mut response = hyper::Response::new(body);
    *response.status_mut() = hyper::StatusCode::from_u16(reply.status)
        .unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    for (name, value) in reply.headers {
        if let (Ok(name), Ok(value)) = (
            hyper::header::HeaderName::from_bytes(name.as_bytes()),
            hyper::header::HeaderValue::from_str(&value),
        ) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

/// The rustls server configuration: the bank's certificate, and client certificates checked
/// against the CA. A client without a certificate may connect (a browser reaching
/// `/authorize`), but every other endpoint refuses it.
pub(crate) fn tls_config(
    pki: &Pki,
    faults: &crate::Faults,
    versions: crate::TlsVersions,
    handshakes: HandshakeLog,
) -> Result<rustls::ServerConfig, SandboxError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = |e: String| SandboxError::Tls(e);
    let ca = pki.read("ca.pem")?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&ca) {
        let cert = cert.map_err(|e| tls(format!("ca.pem: {e}")))?;
        roots.add(cert).map_err(|e| tls(format!("ca.pem: {e}")))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .map_err(|e| tls(format!("client verifier: {e}")))?;
    let verifier = crate::check_faults::client_verifier(verifier, faults);
    let verifier = Arc::new(RecordingVerifier {
        inner: verifier,
        log: handshakes,
    });
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&pki.read("bank.pem")?)
            .collect::<Result<_, _>>()
            .map_err(|e| tls(format!("bank.pem: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(&pki.read("bank.key")?)
        .map_err(|e| tls(format!("bank.key: {e}")))?;
    let versions: &[&'static rustls::SupportedProtocolVersion] = match versions {
        crate::TlsVersions::Both => rustls::DEFAULT_VERSIONS,
        crate::TlsVersions::Tls12 => &[&rustls::version::TLS12],
        crate::TlsVersions::Tls13 => &[&rustls::version::TLS13],
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| tls(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| tls(format!("bank certificate: {e}")))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// Client handshake signatures verified, by `"TLSv1.x SCHEME"`.
pub(crate) type HandshakeLog = Arc<std::sync::Mutex<std::collections::BTreeMap<String, u64>>>;

/// The client-certificate verifier, counting each CertificateVerify it accepts by TLS version
/// and scheme: the one place the server sees how a client signed its handshake.
#[derive(Debug)]
struct RecordingVerifier {
    inner: Arc<dyn rustls::server::danger::ClientCertVerifier>,
    log: HandshakeLog,
}

impl RecordingVerifier {
    fn record(&self, version: &str, scheme: rustls::SignatureScheme) {
        let mut log = self.log.lock().unwrap_or_else(|e| e.into_inner());
        *log.entry(format!("{version} {scheme:?}")).or_default() += 1;
    }
}

impl rustls::server::danger::ClientCertVerifier for RecordingVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        self.inner
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let valid = self.inner.verify_tls12_signature(message, cert, dss)?;
        self.record("TLSv1.2", dss.scheme);
        Ok(valid)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        let valid = self.inner.verify_tls13_signature(message, cert, dss)?;
        self.record("TLSv1.3", dss.scheme);
        Ok(valid)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Accepts connections until `stop` turns true; then drops every open connection.
pub(crate) async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    state: Arc<State>,
    mut stop: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            accepted = listener.accept() => {
                let Ok((tcp, _addr)) = accepted else { continue };
                // Answers go out as soon as they are written, as from a bank's front end:
                // with Nagle's algorithm a page smaller than a loopback segment waited for
                // the client to acknowledge the previous one (a few ms a page in benchmarks).
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let state = state.clone();
                connections.spawn(async move {
                    let handshake = tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp));
                    let Ok(Ok(tls)) = handshake.await else { return };
                    let peer = tls
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|c| Arc::new(c.clone().into_owned()));
                    let service = hyper::service::service_fn(move |req| {
                        let state = state.clone();
                        let peer = peer.clone();
                        async move { Ok::<_, Infallible>(into_hyper(serve(state, peer, req).await)) }
                    });
                    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
                    let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                });
                // Reap finished connections so the set does not grow.
                while connections.try_join_next().is_some() {}
            }
        }
    }
    connections.shutdown().await;
}

async fn serve(
    state: Arc<State>,
    peer: Option<Arc<CertificateDer<'static>>>,
    req: hyper::Request<Incoming>,
) -> Reply {
    let (parts, body) = req.into_parts();
    let target = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str().to_owned())
        .unwrap_or_else(|| "/".to_owned());
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    // Under HTTP/2 the authority is a pseudo-header; present it as Host, as a signature sees it.
    if parts.version == hyper::Version::HTTP_2
        && !parts.headers.contains_key(hyper::header::HOST)
        && let Some(authority) = parts.uri.authority()
    {
        headers.push(("host".to_owned(), authority.as_str().to_owned()));
    }
    for (name, value) in &parts.headers {
        match value.to_str() {
            Ok(v) => headers.push((name.as_str().to_owned(), v.to_owned())),
            Err(_) => {
                return state.error(
                    400,
                    &path,
                    &format!("header `{name}` is not visible ASCII"),
                    None,
                );
            }
        }
    }
    let too_big = parts
        .headers
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .is_some_and(|n| n > MAX_BODY as u64);
    if too_big {
        return state.error(
            413,
            &path,
            &format!("the request body is larger than {MAX_BODY} bytes"),
            None,
        );
    }
    let body = match http_body_util::Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            let status = if e.is::<http_body_util::LengthLimitError>() {
                413
            } else {
                400
            };
            return state.error(
                status,
                &path,
                &format!("the request body could not be read (limit {MAX_BODY} bytes): {e}"),
                None,
            );
        }
    };
    let request = Req {
        method: parts.method.as_str().to_owned(),
        target,
        path,
        query,
        headers,
        body,
        peer,
        unattended: std::sync::OnceLock::new(),
    };
    state.handle(request).await
}
