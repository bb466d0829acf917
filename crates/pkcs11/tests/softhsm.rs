//! The PKCS#11 backend against SoftHSM2: the draft's signatures byte for byte, a 2048-bit key
//! equal to aws-lc's output, the session pool under load and after the token drops it, every
//! failure a clear error, and a TLS handshake signed in the token (TLS 1.3 and 1.2).
//!
//! Each test has a token of its own (`stet_testkit::softhsm_token`), so tests running at once
//! never collide. SoftHSM reads its token folder when a process first loads it, so every token
//! of this binary is made, and its keys imported, before any test opens the module.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use stet_httpsig::{Backend, PrivateKey, Signer as _, SigningProfile, raw, sign_request};
use stet_pkcs11::{KeyKind, KeyMatch, Pkcs11Error, Pkcs11Key, Pkcs11Signer, check_certificate};

fn httpsig_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../httpsig/tests")
        .join(name)
}

/// The tokens of this binary, one per test, made before the module is first loaded.
struct Tokens {
    cavage: stet_testkit::SoftHsmToken,
    rsa2048: stet_testkit::SoftHsmToken,
    mismatch: stet_testkit::SoftHsmToken,
    pool: stet_testkit::SoftHsmToken,
    errors: stet_testkit::SoftHsmToken,
    reset: stet_testkit::SoftHsmToken,
    qwac_rsa: (stet_testkit::SoftHsmToken, Pki),
    qwac_ec: (stet_testkit::SoftHsmToken, Pki),
}

fn tokens() -> &'static Tokens {
    static TOKENS: std::sync::OnceLock<Tokens> = std::sync::OnceLock::new();
    TOKENS.get_or_init(|| {
        let with_key = |prefix: &str, pem: &Path, object: &str, id: &str| {
            let token = stet_testkit::softhsm_token(prefix);
            token.import(pem, object, id);
            token
        };
        let cavage = httpsig_file("cavage/test-private.pkcs8.pem");
        let rsa2048 = httpsig_file("data/rsa2048.pkcs8.pem");
        let qwac = |prefix: &str, alg: &'static rcgen::SignatureAlgorithm| {
            let pki = pki(alg);
            let dir = tempfile::tempdir().unwrap();
            let pem = dir.path().join("qwac.key");
            std::fs::write(&pem, &pki.client_key_pem).unwrap();
            (with_key(prefix, &pem, "qwac", "02"), pki)
        };
        Tokens {
            cavage: with_key("cavage", &cavage, "cavage", "0a01"),
            rsa2048: with_key("rsa2048", &rsa2048, "qseal", "01"),
            mismatch: with_key("mismatch", &cavage, "other", "02"),
            pool: with_key("pool", &rsa2048, "qseal", "01"),
            errors: with_key("errors", &rsa2048, "qseal", "01"),
            reset: with_key("reset", &rsa2048, "qseal", "01"),
            qwac_rsa: qwac("qwac-rsa", &rcgen::PKCS_RSA_SHA256),
            qwac_ec: qwac("qwac-ec", &rcgen::PKCS_ECDSA_P256_SHA256),
        }
    })
}

fn open(uri: &str) -> Result<Pkcs11Key, Pkcs11Error> {
    Pkcs11Key::open_uri(uri, None, 2)
}

const C1_SIG: &str = "SjWJWbWN7i0wzBvtPl8rbASWz5xQW6mcJmn+ibttBqtifLN7Sazz6m79cNfwwb8DMJ5cou1s7uEGKKCs+FLEEaDV5lp7q25WqS+lavg7T8hc0GppauB6hbgEKTwblDHYGEtbGmtdHgVCk9SuS13F0hZ8FD0k/5OxEPXe5WozsbM=";
const C2_SIG: &str = "qdx+H7PHHDZgy4y/Ahn9Tny9V3GP6YgBPyUXMmoxWtLbHpUnXS2mg2+SbrQDMCJypxBLSPQR2aAjn7ndmw2iicw3HMbe8VfEdKFYRqzic+efkb3nndiv/x1xSHDJWeSWkx3ButlYSuBskLu6kd9Fswtemr3lgdDEmn04swr2Os0=";
const C3_SIG: &str = "vSdrb+dS3EceC9bcwHSo4MlyKS59iFIrhgYkz8+oVLEEzmYZZvRs8rgOp+63LEM3v+MFHB32NfpB2bEKBIvB1q52LaEUHFv120V01IL+TAD48XaERZFukWgHoBTLMhYS2Gb51gWxpeIq8knRmPnYePbF5MOkR0Zkly4zKH7s1dE=";

#[test]
fn the_drafts_signatures_byte_for_byte_through_the_hsm() {
    let token = &tokens().cavage;
    let request =
        raw::parse_request(&std::fs::read(httpsig_file("cavage/request.http")).unwrap()).unwrap();
    let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_388_957_500);

    let pin = stet_testkit::PIN;
    // By label, and by id alone.
    for uri in [
        token.uri("cavage"),
        format!(
            "pkcs11:token={};id=%0a%01;type=private?module-path={}&pin-value={pin}",
            token.label,
            token.module.display()
        ),
    ] {
        let key = open(&uri).unwrap();
        assert_eq!(key.kind(), KeyKind::Rsa { bits: 1024 });
        let signer = Pkcs11Signer::new(key).unwrap();
        for (headers, expected) in [
            (None, C1_SIG),
            (Some(&["(request-target)", "host", "date"][..]), C2_SIG),
            (
                Some(
                    &[
                        "(request-target)",
                        "host",
                        "date",
                        "content-type",
                        "digest",
                        "content-length",
                    ][..],
                ),
                C3_SIG,
            ),
        ] {
            let mut profile = SigningProfile::new("Test");
            if let Some(h) = headers {
                profile = profile.with_headers(h);
            }
            let mut req = request.clone();
            req.remove_header("Signature");
            let signed = sign_request(&mut req, &profile, &signer, at).unwrap();
            let header = req.header("Signature").unwrap();
            assert!(
                header.ends_with(&format!("signature=\"{expected}\"")),
                "{:?}: {header}",
                signed.headers
            );
        }
    }
}

#[test]
fn a_2048_bit_key_signs_as_aws_lc_does() {
    let token = &tokens().rsa2048;
    let pem_path = httpsig_file("data/rsa2048.pkcs8.pem");
    let hsm = Pkcs11Signer::new(open(&token.uri("qseal")).unwrap()).unwrap();
    assert_eq!(hsm.key_bits(), 2048);
    assert!(hsm.blocking());
    let soft = PrivateKey::from_pem(&std::fs::read(&pem_path).unwrap(), None)
        .unwrap()
        .signer(Backend::AwsLc)
        .unwrap();
    for message in [
        &b""[..],
        b"(request-target): get /v1/accounts\ndate: Sun, 05 Jan 2014 21:31:40 GMT",
        &[0x5a; 5000][..],
    ] {
        assert_eq!(hsm.sign(message).unwrap(), soft.sign(message).unwrap());
    }

    // The key is the certificate's: a test signature verifies with it.
    let cert = std::fs::read(httpsig_file("data/rsa2048.cert.der")).unwrap();
    assert_eq!(check_certificate(hsm.key(), &cert), Ok(KeyMatch::Matches));
}

#[test]
fn a_key_of_another_certificate_is_told_apart() {
    let token = &tokens().mismatch;
    let key = open(&token.uri("other")).unwrap();
    let cert = std::fs::read(httpsig_file("data/rsa2048.cert.der")).unwrap();
    assert_eq!(check_certificate(&key, &cert), Ok(KeyMatch::Differs));
}

#[test]
fn the_pool_bounds_sessions_and_reopens_dropped_ones() {
    let token = &tokens().pool;
    let pem_path = httpsig_file("data/rsa2048.pkcs8.pem");
    let key = open(&token.uri("qseal")).unwrap();
    let signer = Arc::new(Pkcs11Signer::new(key.clone()).unwrap());
    let soft = PrivateKey::from_pem(&std::fs::read(&pem_path).unwrap(), None)
        .unwrap()
        .signer(Backend::AwsLc)
        .unwrap();
    let soft: Arc<dyn stet_httpsig::Signer> = Arc::from(soft);

    // 6 threads × 20 signatures over a pool of 2 sessions: all right, never more than 2 open.
    let threads: Vec<_> = (0..6)
        .map(|t| {
            let (signer, soft, key) = (signer.clone(), soft.clone(), key.clone());
            std::thread::spawn(move || {
                for i in 0..20 {
                    let message = format!("thread {t} message {i}");
                    assert_eq!(
                        signer.sign(message.as_bytes()).unwrap(),
                        soft.sign(message.as_bytes()).unwrap()
                    );
                    assert!(key.open_sessions() <= 2);
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(key.open_sessions() >= 1);

    // Another part of the process logs the token out (login state is shared by every
    // session of an application): the pooled sessions can no longer sign, and the next
    // signature opens a new one and logs in again.
    let ctx = cryptoki::context::Pkcs11::new(&token.module).unwrap();
    let _ = ctx.initialize(cryptoki::context::CInitializeArgs::new(
        cryptoki::context::CInitializeFlags::OS_LOCKING_OK,
    ));
    let slot = ctx
        .get_slots_with_initialized_token()
        .unwrap()
        .into_iter()
        .find(|s| ctx.get_token_info(*s).unwrap().label().trim() == token.label)
        .unwrap();
    let other = ctx.open_ro_session(slot).unwrap();
    other.logout().unwrap();
    drop(other);
    assert_eq!(
        signer.sign(b"after the reset").unwrap(),
        soft.sign(b"after the reset").unwrap()
    );
}

#[test]
fn each_failure_says_what_to_do() {
    let token = &tokens().errors;
    let module = token.module.display().to_string();
    let label = &token.label;
    let pin = stet_testkit::PIN;
    let err = |uri: String| open(&uri).unwrap_err().to_string();

    let e = err(format!(
        "pkcs11:token={label};object=qseal?module-path={module}&pin-value=0000"
    ));
    assert!(
        e.contains("refused the PIN") && e.contains(label.as_str()),
        "{e}"
    );
    assert!(!e.contains("0000"), "the PIN must not show: {e}");

    let e = err(format!(
        "pkcs11:token=no-such-token;object=qseal?module-path={module}&pin-value={pin}"
    ));
    assert!(
        e.contains("no token matches token `no-such-token`") && e.contains(label.as_str()),
        "the error lists the tokens there are: {e}"
    );

    let e = err(format!(
        "pkcs11:token={label};object=qsael?module-path={module}&pin-value={pin}"
    ));
    assert!(
        e.contains("no private key with object `qsael`") && e.contains("object=`qseal` id=%01"),
        "the error lists the keys there are: {e}"
    );

    let e = err(format!(
        "pkcs11:token={label};object=qseal?module-path=/nonexistent/libhsm.so&pin-value={pin}"
    ));
    assert!(
        e.contains("cannot load the PKCS#11 module /nonexistent/libhsm.so"),
        "{e}"
    );
    // A file that is not a shared library.
    let e = err(format!(
        "pkcs11:token={label};object=qseal?module-path={}&pin-value={pin}",
        httpsig_file("data/rsa2048.pkcs8.pem").display()
    ));
    assert!(e.contains("cannot load the PKCS#11 module"), "{e}");

    let e = err(format!(
        "pkcs11:token={label};object=qseal?module-path={module}"
    ));
    assert!(
        e.contains("needs its user PIN") && e.contains("pin-source"),
        "{e}"
    );

    let e = err(format!("pkcs11:token={label};object=qseal"));
    assert!(
        e.contains("no PKCS#11 module") && e.contains("STET_PKCS11_MODULE"),
        "{e}"
    );

    let e = err(format!(
        "pkcs11:token={label};object=qseal?module-path={module}&pin-source=file:/nonexistent/pin"
    ));
    assert!(
        e.contains("cannot read the PIN file /nonexistent/pin"),
        "{e}"
    );

    // A PIN file written with `echo` (a trailing newline) works.
    let dir = tempfile::tempdir().unwrap();
    let pin = dir.path().join("pin");
    std::fs::write(&pin, format!("{}\n", stet_testkit::PIN)).unwrap();
    let key = open(&format!(
        "pkcs11:token={label};object=qseal?module-path={module}&pin-source=file:{}",
        pin.display()
    ))
    .unwrap();
    assert_eq!(key.kind(), KeyKind::Rsa { bits: 2048 });
    // The URI as shown keeps the PIN file's path and never a PIN value.
    assert!(key.uri().contains("pin-source=file:"), "{}", key.uri());
}

// ---------------------------------------------------------------------------------------------
// The TLS handshake signed in the HSM
// ---------------------------------------------------------------------------------------------

/// A server-side client verifier that records the scheme the client signed with.
#[derive(Debug)]
struct Recording {
    inner: Arc<dyn rustls::server::danger::ClientCertVerifier>,
    seen: Mutex<Vec<rustls::SignatureScheme>>,
}

impl rustls::server::danger::ClientCertVerifier for Recording {
    fn root_hint_subjects(&self) -> &[rustls::DistinguishedName] {
        self.inner.root_hint_subjects()
    }
    fn verify_client_cert(
        &self,
        end_entity: &rustls_pki_types::CertificateDer<'_>,
        intermediates: &[rustls_pki_types::CertificateDer<'_>],
        now: rustls_pki_types::UnixTime,
    ) -> Result<rustls::server::danger::ClientCertVerified, rustls::Error> {
        self.inner
            .verify_client_cert(end_entity, intermediates, now)
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.seen.lock().unwrap().push(dss.scheme);
        self.inner.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls_pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.seen.lock().unwrap().push(dss.scheme);
        self.inner.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

struct Pki {
    ca: rustls_pki_types::CertificateDer<'static>,
    server_chain: Vec<rustls_pki_types::CertificateDer<'static>>,
    server_key: rustls_pki_types::PrivateKeyDer<'static>,
    client_chain: Vec<rustls_pki_types::CertificateDer<'static>>,
    client_key_pem: String,
}

fn pki(client_alg: &'static rcgen::SignatureAlgorithm) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "hsm test CA");
    let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&server_key, &ca)
        .unwrap();
    let client_key = KeyPair::generate_for(client_alg).unwrap();
    let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
    client
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Example TPP QWAC (test)");
    client.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
    let client = client.signed_by(&client_key, &ca).unwrap();
    Pki {
        ca: ca.der().clone(),
        server_chain: vec![server.der().clone()],
        server_key: rustls_pki_types::PrivateKeyDer::Pkcs8(server_key.serialize_der().into()),
        client_chain: vec![client.der().clone()],
        client_key_pem: client_key.serialize_pem(),
    }
}

/// The server and client configurations of a handshake with `version`, the client key in
/// the HSM, and the server's record of the schemes it verified.
fn configs(
    pki: &Pki,
    key: &Pkcs11Key,
    version: &'static rustls::SupportedProtocolVersion,
) -> (rustls::ServerConfig, rustls::ClientConfig, Arc<Recording>) {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.clone()).unwrap();
    let roots = Arc::new(roots);
    let recording = Arc::new(Recording {
        inner: rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots.clone(),
            provider.clone(),
        )
        .build()
        .unwrap(),
        seen: Mutex::new(Vec::new()),
    });
    let server = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[version])
        .unwrap()
        .with_client_cert_verifier(recording.clone())
        .with_single_cert(pki.server_chain.clone(), pki.server_key.clone_key())
        .unwrap();
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::new(stet_pkcs11::HsmClientCert::new(
            pki.client_chain.clone(),
            key.clone(),
        )));
    (server, client, recording)
}

/// A handshake and a one-byte echo between `server` and `client`, each in a task of its own.
async fn exchange(server: rustls::ServerConfig, client: rustls::ClientConfig) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
    let served = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = acceptor
            .accept(tcp)
            .await
            .expect("the server accepts the client");
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await.unwrap();
        tls.write_all(&byte).await.unwrap();
        tls.flush().await.unwrap();
    });
    let connected = tokio::spawn(async move {
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let mut tls = connector.connect(name, tcp).await.expect("handshake");
        tls.write_all(b"x").await.unwrap();
        let mut echo = [0u8; 1];
        tls.read_exact(&mut echo).await.unwrap();
        assert_eq!(&echo, b"x");
    });
    connected.await.unwrap();
    served.await.unwrap();
}

/// One handshake with `version`, the client key in the HSM, on a current-thread runtime (the
/// signature is made directly there); gives the scheme the server saw.
fn handshake(
    pki: &Pki,
    key: &Pkcs11Key,
    version: &'static rustls::SupportedProtocolVersion,
) -> rustls::SignatureScheme {
    let (server, client, recording) = configs(pki, key, version);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(exchange(server, client));
    let seen = recording.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "one CertificateVerify: {seen:?}");
    seen[0]
}

#[test]
fn the_handshake_is_signed_in_the_hsm_pss_in_tls13_pkcs1_in_tls12() {
    let (token, pki) = &tokens().qwac_rsa;
    let key = open(&token.uri("qwac")).unwrap();
    assert_eq!(
        check_certificate(&key, &pki.client_chain[0]),
        Ok(KeyMatch::Matches)
    );
    assert_eq!(
        handshake(pki, &key, &rustls::version::TLS13),
        rustls::SignatureScheme::RSA_PSS_SHA256
    );
    assert_eq!(
        handshake(pki, &key, &rustls::version::TLS12),
        rustls::SignatureScheme::RSA_PKCS1_SHA256
    );
}

#[test]
fn an_ecdsa_qwac_signs_the_handshake_in_the_hsm() {
    let (token, pki) = &tokens().qwac_ec;
    let key = open(&token.uri("qwac")).unwrap();
    assert_eq!(key.kind(), KeyKind::EcP256);
    assert_eq!(
        check_certificate(&key, &pki.client_chain[0]),
        Ok(KeyMatch::Matches)
    );
    assert_eq!(
        handshake(pki, &key, &rustls::version::TLS13),
        rustls::SignatureScheme::ECDSA_NISTP256_SHA256
    );
    // An EC key cannot make STET's rsa-sha256 signatures, and says so.
    let e = Pkcs11Signer::new(key).unwrap_err().to_string();
    assert!(e.contains("need an RSA key"), "{e}");
}

#[test]
fn a_handshake_waiting_for_the_pool_leaves_the_runtime_running() {
    // A pool of one session, held here: the handshake's signature must wait for it, on the
    // runtime's only worker. The session is given back by another task of that runtime, and
    // only once the signature is seen waiting: that task runs only if the waiting signature
    // handed the worker's tasks over (block_in_place). Without it, the worker is stuck in the
    // wait, the task never runs and the handshake never ends: the guard below then reports a
    // stall (a generous bound against a deadlock, not a measure of speed).
    let (token, pki) = &tokens().qwac_rsa;
    let key = Pkcs11Key::open_uri(&token.uri("qwac"), None, 1).unwrap();
    let (server, client, recording) = configs(pki, &key, &rustls::version::TLS13);
    let held = key.hold_session().unwrap();
    assert_eq!(key.open_sessions(), 1);
    let (done, finished) = std::sync::mpsc::channel();
    let waiting_key = key.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let exchange = tokio::spawn(exchange(server, client));
            let release = tokio::spawn(async move {
                while waiting_key.sessions_awaited() == 0 {
                    tokio::task::yield_now().await;
                }
                drop(held);
            });
            release.await.unwrap();
            exchange.await.unwrap();
        });
        let _ = done.send(());
    });
    finished
        .recv_timeout(Duration::from_secs(120))
        .expect("the handshake waiting for a session stalled the runtime");
    assert_eq!(
        recording.seen.lock().unwrap().as_slice(),
        [rustls::SignatureScheme::RSA_PSS_SHA256]
    );
    assert_eq!(key.sessions_awaited(), 0);
    assert_eq!(
        key.open_sessions(),
        1,
        "never more than the pool's one session"
    );
}

#[test]
fn a_session_the_token_dropped_is_reopened() {
    // The module is reset under the key (C_Finalize, then C_Initialize, by another part of
    // the process): every session handle the pool holds is now CKR_SESSION_HANDLE_INVALID,
    // and the login is gone. The next signature must open a new session, log in and sign.
    // A reset would break the other tests of this binary, which share the module: the test
    // runs itself alone in a child process, and checks that child's result.
    const CHILD: &str = "STET_TEST_RESET_CHILD";
    let token = &tokens().reset;
    if std::env::var_os(CHILD).is_none() {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "a_session_the_token_dropped_is_reopened",
                "--test-threads",
                "1",
                "--nocapture",
            ])
            .env(CHILD, "1")
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        assert!(text.contains("1 passed"), "the child ran the test: {text}");
        assert!(text.contains("reopened after the reset"), "{text}");
        return;
    }
    let key = open(&token.uri("qseal")).unwrap();
    let signer = Pkcs11Signer::new(key.clone()).unwrap();
    let soft = PrivateKey::from_pem(
        &std::fs::read(httpsig_file("data/rsa2048.pkcs8.pem")).unwrap(),
        None,
    )
    .unwrap()
    .signer(Backend::AwsLc)
    .unwrap();
    assert_eq!(
        signer.sign(b"before").unwrap(),
        soft.sign(b"before").unwrap()
    );
    let flags = || {
        cryptoki::context::CInitializeArgs::new(cryptoki::context::CInitializeFlags::OS_LOCKING_OK)
    };
    let reset = cryptoki::context::Pkcs11::new(&token.module).unwrap();
    reset.finalize().unwrap();
    let again = cryptoki::context::Pkcs11::new(&token.module).unwrap();
    again.initialize(flags()).unwrap();
    // Kept initialised for the rest of this (child) process: dropping it would finalise.
    std::mem::forget(again);
    assert_eq!(signer.sign(b"after").unwrap(), soft.sign(b"after").unwrap());
    assert_eq!(key.open_sessions(), 1);
    println!("reopened after the reset");
}
