//! `stet sig` end to end: the built binary on the draft's Appendix C request and on the bundled
//! example, and every kind of bad input giving a one-line error and its exit code.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const C3_HEADER: &str = "Signature: keyId=\"Test\",algorithm=\"rsa-sha256\",headers=\"(request-target) host date content-type digest content-length\",signature=\"vSdrb+dS3EceC9bcwHSo4MlyKS59iFIrhgYkz8+oVLEEzmYZZvRs8rgOp+63LEM3v+MFHB32NfpB2bEKBIvB1q52LaEUHFv120V01IL+TAD48XaERZFukWgHoBTLMhYS2Gb51gWxpeIq8knRmPnYePbF5MOkR0Zkly4zKH7s1dE=\"";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn file(rel: &str) -> String {
    root().join(rel).display().to_string()
}

fn cavage(name: &str) -> String {
    file(&format!("crates/httpsig/tests/cavage/{name}"))
}

fn data(name: &str) -> String {
    file(&format!("crates/httpsig/tests/data/{name}"))
}

fn stet(args: &[&str], stdin: &[u8]) -> Output {
    stet_env(args, stdin, &[])
}

fn stet_env(args: &[&str], stdin: &[u8], env: &[(&str, &str)]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_stet"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("stet runs");
    // stet may exit before reading stdin (a bad key is found first): a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Asserts a failure: the exit code, one `error:` line naming `expected`, no panic.
fn assert_fails(out: &Output, code: i32, expected: &str) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert!(
        err.contains(expected),
        "`{err}` should mention `{expected}`"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(out.stdout.is_empty(), "nothing on stdout on failure");
}

#[test]
fn signs_the_cavage_c3_request_byte_for_byte() {
    let out = stet(
        &[
            "sig",
            "sign",
            "--key",
            &cavage("test-private.pem"),
            "--key-id",
            "Test",
            "--backend",
            "rustcrypto",
            "--headers",
            "(request-target) host date content-type digest content-length",
            "--explain",
            &cavage("request.http"),
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let signed = text(&out.stdout);
    assert!(signed.contains(&format!("{C3_HEADER}\r\n")), "{signed}");
    assert!(
        signed.ends_with("\r\n\r\n{\"hello\": \"world\"}"),
        "{signed}"
    );
    assert!(text(&out.stderr).contains(include_str!(
        "../crates/httpsig/tests/cavage/C3-all-headers.signing-string.txt"
    )));

    // The signed output verifies, read from stdin.
    let verified = stet(
        &[
            "sig",
            "verify",
            "--key",
            &cavage("test-public.pem"),
            "--no-date-check",
            "--min-key-bits",
            "1024",
            "--require",
            "(request-target) digest",
        ],
        &out.stdout,
    );
    assert_eq!(text(&verified.stdout), "ok\n", "{}", text(&verified.stderr));
    assert_eq!(verified.status.code(), Some(0));
}

#[test]
fn the_default_list_is_date_and_digest_is_added_to_bodies() {
    let request = b"POST /v1/consents HTTP/1.1\nHost: bank.example\nDate: Sun, 05 Jan 2014 21:31:40 GMT\n\n{}";
    let out = stet(
        &[
            "sig",
            "sign",
            "--key",
            &data("rsa2048.pkcs8.pem"),
            "--key-id",
            "k",
        ],
        request,
    );
    let signed = text(&out.stdout);
    assert!(signed.contains("Content-Length: 2\r\n"), "{signed}");
    assert!(
        signed.contains("Digest: SHA-256=RBNvo1WzZ4oRRq0W9+hknpT7T8If536DEMBg9hyq/4o=\r\n"),
        "{signed}"
    );
    assert!(
        signed.contains(",headers=\"date\",signature=\""),
        "{signed}"
    );
}

#[test]
fn the_example_request_round_trips_and_tampering_is_named() {
    let signed = stet(
        &[
            "sig",
            "sign",
            "--key",
            &file("certs.example/tpp-qseal.key"),
            "--key-id",
            "qseal",
            "--headers",
            "(request-target) host date x-request-id psu-ip-address digest",
            "--date-now",
            &file("examples/payment-request.http"),
        ],
        b"",
    );
    assert_eq!(signed.status.code(), Some(0), "{}", text(&signed.stderr));
    let verify = |input: &[u8]| {
        stet(
            &[
                "sig",
                "verify",
                "--key",
                &file("certs.example/tpp-qseal.pem"),
                "--require",
                "(request-target) date x-request-id digest",
            ],
            input,
        )
    };
    let ok = verify(&signed.stdout);
    assert_eq!(text(&ok.stdout), "ok\n", "{}", text(&ok.stderr));

    let signed_text = text(&signed.stdout);
    let cases = [
        (
            signed_text.replace("124.35", "924.35"),
            "Digest does not match the body",
        ),
        (
            signed_text.replace("192.0.2.10", "192.0.2.11"),
            "signing string rebuilt",
        ),
        (
            signed_text.replace("POST /stet", "PUT /stet"),
            "signing string rebuilt",
        ),
        (
            signed_text.replace("algorithm=\"rsa-sha256\"", "algorithm=\"hmac-sha256\""),
            "`hmac-sha256` is not supported",
        ),
        (
            signed_text.replace(" x-request-id", ""),
            "`x-request-id` must be signed",
        ),
    ];
    for (tampered, reason) in cases {
        let out = verify(tampered.as_bytes());
        assert_eq!(out.status.code(), Some(1));
        assert!(out.stdout.is_empty());
        let err = text(&out.stderr);
        assert!(
            err.starts_with("invalid signature: ") && err.contains(reason),
            "{err}"
        );
    }
}

#[test]
fn an_old_date_is_refused_unless_the_check_is_off() {
    let request = std::fs::read(cavage("request.http")).unwrap();
    let signed = stet(
        &[
            "sig",
            "sign",
            "--key",
            &data("rsa2048.pkcs8.pem"),
            "--key-id",
            "k",
            "-",
        ],
        &request,
    );
    let pubkey = data("rsa2048.cert.pem");
    let out = stet(&["sig", "verify", "--key", &pubkey, "-"], &signed.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("more than the 300 s allowed"),
        "{}",
        text(&out.stderr)
    );
    let out = stet(
        &["sig", "verify", "--key", &pubkey, "--no-date-check"],
        &signed.stdout,
    );
    assert_eq!(text(&out.stdout), "ok\n");
}

#[test]
fn digest_prints_the_header_value() {
    let out = stet(&["sig", "digest"], b"{\"hello\": \"world\"}");
    assert_eq!(
        text(&out.stdout),
        "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=\n"
    );
    let out = stet(&["sig", "digest", &cavage("request.http")], b"");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn encrypted_keys_take_the_passphrase_from_the_environment_and_never_show_it() {
    let request = b"GET /v1/accounts HTTP/1.1\nDate: Sun, 05 Jan 2014 21:31:40 GMT\n\n";
    let key = data("rsa2048.encrypted.pem");
    let ok = stet_env(
        &[
            "sig",
            "sign",
            "--key",
            &key,
            "--key-id",
            "k",
            "--passphrase-env",
            "STET_TEST_PASS",
        ],
        request,
        &[("STET_TEST_PASS", "correct-horse")],
    );
    assert_eq!(ok.status.code(), Some(0), "{}", text(&ok.stderr));
    assert!(!text(&ok.stdout).contains("correct-horse"));

    let wrong = stet_env(
        &[
            "sig",
            "sign",
            "--key",
            &key,
            "--key-id",
            "k",
            "--passphrase-env",
            "STET_TEST_PASS",
        ],
        request,
        &[("STET_TEST_PASS", "canary-passphrase")],
    );
    assert_fails(&wrong, 78, "wrong passphrase");
    assert!(!text(&wrong.stderr).contains("canary-passphrase"));

    let none = stet(&["sig", "sign", "--key", &key, "--key-id", "k"], request);
    assert_fails(&none, 78, "--passphrase-env");
    let unset = stet(
        &[
            "sig",
            "sign",
            "--key",
            &key,
            "--key-id",
            "k",
            "--passphrase-env",
            "STET_TEST_UNSET_VAR",
        ],
        request,
    );
    assert_fails(&unset, 78, "STET_TEST_UNSET_VAR is not set");
}

#[test]
fn bad_input_gives_one_line_and_an_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let truncated = dir.path().join("truncated.pem");
    let pem = std::fs::read(data("rsa2048.pkcs8.pem")).unwrap();
    std::fs::write(&truncated, &pem[..pem.len() / 2]).unwrap();
    let truncated = truncated.display().to_string();
    let request = std::fs::read(cavage("request.http")).unwrap();
    let sign = |key: &str, extra: &[&str], input: &[u8]| {
        let mut args = vec!["sig", "sign", "--key", key, "--key-id", "k"];
        args.extend_from_slice(extra);
        stet(&args, input)
    };

    assert_fails(&sign(&truncated, &[], &request), 78, "malformed PEM");
    assert_fails(
        &sign(&data("ec-p256.pem"), &[], &request),
        78,
        "need an RSA key",
    );
    assert_fails(
        &sign(&data("rsa2048.cert.pem"), &[], &request),
        78,
        "no private key found",
    );
    assert_fails(
        &sign(&cavage("test-private.pem"), &[], &request),
        78,
        "--backend rustcrypto",
    );
    assert_fails(
        &sign("/nonexistent/key.pem", &[], &request),
        78,
        "/nonexistent/key.pem",
    );
    assert_fails(
        &sign(
            &data("rsa2048.pkcs8.pem"),
            &["/nonexistent/request.http"],
            b"",
        ),
        66,
        "/nonexistent/request.http",
    );
    assert_fails(
        &sign(&data("rsa2048.pkcs8.pem"), &[], b"GET /\n\n"),
        65,
        "request line",
    );
    assert_fails(
        &sign(&data("rsa2048.pkcs8.pem"), &[], b"not http at all"),
        65,
        "must be `METHOD TARGET HTTP/1.1`",
    );
    assert_fails(
        &sign(&data("rsa2048.pkcs8.pem"), &[], b"GET / HTTP/1.1\nDate: x"),
        65,
        "headers never end",
    );
    assert_fails(
        &sign(
            &data("rsa2048.pkcs8.pem"),
            &[],
            b"GET / HTTP/1.1\nHost: x\n\n",
        ),
        65,
        "`date` is in the signed header list",
    );
    assert_fails(
        &sign(
            &data("rsa2048.pkcs8.pem"),
            &["--headers", "date (bogus)"],
            &request,
        ),
        2,
        "`(bogus)`",
    );
    let unknown_backend = sign(
        &data("rsa2048.pkcs8.pem"),
        &["--backend", "openssl"],
        &request,
    );
    assert_eq!(unknown_backend.status.code(), Some(2));
    assert!(text(&unknown_backend.stderr).contains("expected one of"));

    let verify = |key: &str, input: &[u8]| stet(&["sig", "verify", "--key", key], input);
    assert_fails(
        &verify(&data("rsa2048.pkcs8.pem"), &request),
        78,
        "give the public key or the certificate",
    );
    assert_fails(&verify(&truncated, &request), 78, "malformed PEM");
    let unsigned = verify(&data("rsa2048.pub.pem"), &request);
    assert_eq!(unsigned.status.code(), Some(1));
    assert!(text(&unsigned.stderr).contains("no Signature header"));
    let garbage = [&request[..], b"x"].concat();
    let mut with_bad_sig = String::from_utf8(request.clone()).unwrap();
    with_bad_sig = with_bad_sig.replacen(
        "\r\n\r\n",
        "\r\nSignature: keyId=\"k\",signature=\"@@\"\r\n\r\n",
        1,
    );
    let out = verify(&data("rsa2048.pub.pem"), with_bad_sig.as_bytes());
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("not valid base64"),
        "{}",
        text(&out.stderr)
    );
    assert_fails(
        &verify(&data("rsa2048.pub.pem"), &garbage),
        65,
        "Content-Length says 18",
    );
}
