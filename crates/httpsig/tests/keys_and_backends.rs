//! Key loading in every supported form, the two backends against each other, and interop with
//! OpenSSL in both directions.

use std::process::Command;

use stet_httpsig::{Backend, KeyError, PrivateKey, PublicKey};

const PASS: &[u8] = b"correct-horse";

fn data(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_form_of_the_key_is_the_same_key() {
    let reference = PrivateKey::from_bytes(&data("rsa2048.pkcs8.pem"), None).unwrap();
    assert_eq!(reference.bits(), 2048);
    for (file, pass) in [
        ("rsa2048.pkcs1.pem", None),
        ("rsa2048.pkcs1.der", None),
        ("rsa2048.pkcs8.der", None),
        ("rsa2048.encrypted.pem", Some(PASS)),
        ("rsa2048.encrypted.der", Some(PASS)),
    ] {
        let key =
            PrivateKey::from_bytes(&data(file), pass).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(key.pkcs8_der(), reference.pkcs8_der(), "{file}");
    }
}

#[test]
fn public_key_from_spki_certificate_and_private_key_agree() {
    let from_private = PrivateKey::from_bytes(&data("rsa2048.pkcs1.pem"), None)
        .unwrap()
        .public_key()
        .unwrap();
    for file in ["rsa2048.pub.pem", "rsa2048.cert.pem", "rsa2048.cert.der"] {
        let key = PublicKey::from_bytes(&data(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(key, from_private, "{file}");
        assert_eq!(key.bits(), 2048);
    }
}

#[test]
fn encrypted_keys_need_the_right_passphrase() {
    for file in ["rsa2048.encrypted.pem", "rsa2048.encrypted.der"] {
        assert_eq!(
            PrivateKey::from_bytes(&data(file), None).unwrap_err(),
            KeyError::PassphraseRequired
        );
        assert_eq!(
            PrivateKey::from_bytes(&data(file), Some(b"wrong")).unwrap_err(),
            KeyError::WrongPassphrase
        );
    }
}

#[test]
fn bad_keys_are_refused_with_a_reason() {
    let ec = PrivateKey::from_bytes(&data("ec-p256.pem"), None).unwrap_err();
    assert_eq!(ec, KeyError::WrongType("an EC key".into()));

    let pem = data("rsa2048.pkcs8.pem");
    let truncated = &pem[..pem.len() / 2];
    assert!(matches!(
        PrivateKey::from_bytes(truncated, None).unwrap_err(),
        KeyError::BadPem(_)
    ));
    let der = data("rsa2048.pkcs8.der");
    assert!(matches!(
        PrivateKey::from_bytes(&der[..der.len() - 10], None).unwrap_err(),
        KeyError::NotAKey(_)
    ));
    assert!(matches!(
        PrivateKey::from_bytes(b"hello", None).unwrap_err(),
        KeyError::NotAKey(_)
    ));
    // A certificate given where a private key is wanted, and the other way round.
    let err = PrivateKey::from_bytes(&data("rsa2048.cert.pem"), None).unwrap_err();
    assert!(err.to_string().contains("no private key found"), "{err}");
    let err = PublicKey::from_bytes(&data("rsa2048.pkcs8.pem")).unwrap_err();
    assert!(
        err.to_string()
            .contains("give the public key or the certificate"),
        "{err}"
    );
    // OpenSSL's legacy encrypted PEM.
    let legacy = b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
    assert_eq!(
        PrivateKey::from_bytes(legacy, None).unwrap_err(),
        KeyError::LegacyEncryptedPem
    );
}

#[test]
fn both_backends_give_identical_signatures() {
    for file in ["rsa2048.pkcs8.pem", "rsa3072.pem"] {
        let key = PrivateKey::from_bytes(&data(file), None).unwrap();
        let public = key.public_key().unwrap();
        let signatures: Vec<Vec<u8>> = Backend::all()
            .iter()
            .map(|b| {
                let signer = key.signer(*b).unwrap();
                assert_eq!(signer.key_bits(), key.bits());
                signer.sign(b"(request-target): get /v1/accounts").unwrap()
            })
            .collect();
        assert!(signatures.windows(2).all(|w| w[0] == w[1]), "{file}");
        assert!(public.verify_rsa_sha256(b"(request-target): get /v1/accounts", &signatures[0]));
        assert!(!public.verify_rsa_sha256(b"(request-target): get /v1/account", &signatures[0]));
    }
    assert!(
        Backend::all().len() >= 2,
        "both backends are built by default"
    );
}

#[test]
fn backend_names_parse() {
    for b in Backend::all() {
        assert_eq!(b.name().parse::<Backend>().unwrap(), *b);
    }
    assert!(
        "openssl"
            .parse::<Backend>()
            .unwrap_err()
            .contains("expected one of")
    );
}

#[test]
fn debug_output_shows_no_key_material() {
    let key = PrivateKey::from_bytes(&data("rsa2048.pkcs8.pem"), None).unwrap();
    let shown = format!("{key:?} {:?}", key.signer(Backend::default()).unwrap());
    assert!(shown.contains("2048"));
    assert!(shown.len() < 120, "{shown}");
}

/// OpenSSL verifies what stet signs, and stet verifies what OpenSSL signs.
#[test]
fn interoperates_with_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let message =
        b"(request-target): post /v1/payment-requests\ndate: Sun, 05 Jan 2014 21:31:40 GMT";
    let msg_path = dir.path().join("msg");
    std::fs::write(&msg_path, message).unwrap();
    let key_path = format!(
        "{}/tests/data/rsa2048.pkcs1.pem",
        env!("CARGO_MANIFEST_DIR")
    );
    let pub_path = format!("{}/tests/data/rsa2048.pub.pem", env!("CARGO_MANIFEST_DIR"));

    let key = PrivateKey::from_bytes(&data("rsa2048.pkcs1.pem"), None).unwrap();
    for backend in Backend::all() {
        let sig = key.signer(*backend).unwrap().sign(message).unwrap();
        let sig_path = dir.path().join(format!("sig-{backend}"));
        std::fs::write(&sig_path, &sig).unwrap();
        let out = Command::new("openssl")
            .args(["dgst", "-sha256", "-verify", &pub_path, "-signature"])
            .arg(&sig_path)
            .arg(&msg_path)
            .output()
            .expect("openssl is installed (.ci/run installs it)");
        assert!(
            out.status.success(),
            "openssl rejected the {backend} signature: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }

    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign", &key_path])
        .arg(&msg_path)
        .output()
        .expect("openssl is installed");
    assert!(out.status.success());
    let public = PublicKey::from_bytes(&data("rsa2048.pub.pem")).unwrap();
    assert!(public.verify_rsa_sha256(message, &out.stdout));
    assert_eq!(
        out.stdout,
        key.signer(Backend::default())
            .unwrap()
            .sign(message)
            .unwrap()
    );
}
