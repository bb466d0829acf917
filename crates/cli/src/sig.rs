//! `stet sig`: sign and verify raw HTTP requests, and compute Digests, to debug a signature a
//! bank rejects.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};
use stet_httpsig::{
    Backend, PrivateKey, PublicKey, Request, SigningProfile, VerifyPolicy, digest_header_value,
    raw, sign_request, verify_request,
};

use crate::exit::{self, Failure, OrExit as _};
use crate::output::{OutputArgs, Report};

/// The largest request or body `stet sig` reads: STET requests are a few KiB.
const MAX_INPUT: u64 = 16 * 1024 * 1024;

#[derive(Debug, Subcommand)]
pub enum SigCommand {
    /// Sign a raw HTTP request and print it as it would be sent
    ///
    /// Reads a raw HTTP/1.1 request (request line, headers, empty line, body; CRLF or LF line
    /// ends), adds `Content-Length` and `Digest` when it has a body without them, adds
    /// `Signature`, and prints the request with CRLF line ends.
    #[command(
        after_help = "Example:\n  stet sig sign --key certs.example/tpp-qseal.key --key-id qseal-1 \\\n      --headers \"(request-target) host date x-request-id digest\" --date-now --explain request.http"
    )]
    Sign(SignArgs),
    /// Verify the Signature of a raw HTTP request: prints `ok`, or the precise reason and exits 1
    #[command(
        after_help = "Example:\n  stet sig verify --key certs.example/tpp-qseal.pem --require \"(request-target) date digest\" signed.http"
    )]
    Verify(VerifyArgs),
    /// Print the Digest header value (SHA-256) of a body
    #[command(after_help = "Example:\n  printf '{\"hello\": \"world\"}' | stet sig digest")]
    Digest(DigestArgs),
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// The private key (QSealC key): PEM or DER; PKCS#1, PKCS#8 or encrypted PKCS#8; or a key
    /// in an HSM as an RFC 7512 URI, `pkcs11:token=…;object=…?pin-source=file:…`
    #[arg(long, value_name = "KEY")]
    key: PathBuf,
    /// The PKCS#11 module for a `pkcs11:` key whose URI has no module-path
    #[arg(long, env = "STET_PKCS11_MODULE", value_name = "MODULE.so")]
    pkcs11_module: Option<PathBuf>,
    /// The keyId to write in the Signature header, as the bank expects it
    #[arg(long, value_name = "ID")]
    key_id: String,
    /// The headers to sign, in order, space-separated [default: the draft's default, "date"]
    #[arg(long, value_name = "LIST")]
    headers: Option<String>,
    /// The environment variable that holds the key's passphrase
    #[arg(long, value_name = "VAR")]
    passphrase_env: Option<String>,
    /// Add a Digest even when the body is empty
    #[arg(long)]
    digest: bool,
    /// Set the Date header to the current time before signing
    #[arg(long)]
    date_now: bool,
    /// Print the signing string to stderr
    #[arg(long)]
    explain: bool,
    /// The signing backend for a key file: aws-lc (default, RSA >= 2048) or rustcrypto (RSA >= 1024)
    #[arg(long, value_name = "NAME", default_value_t = Backend::default())]
    backend: Backend,
    /// The raw request to sign; `-` or nothing reads stdin
    #[arg(value_name = "FILE")]
    input: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The public key (SPKI PEM) or certificate (QSealC, PEM or DER) to verify with
    #[arg(long, value_name = "PUBLIC.pem|CERT.pem")]
    key: PathBuf,
    /// Headers the signature must cover, space-separated
    #[arg(long, value_name = "LIST")]
    require: Option<String>,
    /// The largest difference allowed between the Date header and this clock
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 300,
        conflicts_with = "no_date_check"
    )]
    max_skew: u64,
    /// Do not check the Date header (for recorded requests)
    #[arg(long)]
    no_date_check: bool,
    /// The smallest RSA key accepted, in bits
    #[arg(long, value_name = "BITS", default_value_t = 2048)]
    min_key_bits: usize,
    /// The raw request to verify; `-` or nothing reads stdin
    #[arg(value_name = "FILE")]
    input: Option<PathBuf>,
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct DigestArgs {
    /// The body; `-` or nothing reads stdin
    #[arg(value_name = "FILE")]
    input: Option<PathBuf>,
    #[command(flatten)]
    out: OutputArgs,
}

pub fn run(command: SigCommand) -> Result<u8, Failure> {
    match command {
        SigCommand::Sign(args) => sign(args),
        SigCommand::Verify(args) => verify(args),
        SigCommand::Digest(args) => {
            let (body, _) = read_input(args.input.as_deref())?;
            let digest = digest_header_value(&body);
            Report::new(
                serde_json::json!({"digest": digest, "length": body.len()}),
                format!("{digest}\n"),
            )
            .rows(
                &["digest", "length"],
                vec![vec![digest.clone(), body.len().to_string()]],
            )
            .print(args.out.report())?;
            Ok(0)
        }
    }
}

fn sign(args: SignArgs) -> Result<u8, Failure> {
    let signer: Box<dyn stet_httpsig::Signer> =
        match args.key.to_str().filter(|k| stet_pkcs11::is_pkcs11_uri(k)) {
            Some(uri) => Box::new(hsm_signer(uri, args.pkcs11_module.as_deref())?),
            None => file_signer(&args)?,
        };
    sign_with(args, signer.as_ref())
}

/// The `rsa-sha256` signer of a key in an HSM.
pub(crate) fn hsm_signer(
    uri: &str,
    module: Option<&Path>,
) -> Result<stet_pkcs11::Pkcs11Signer, Failure> {
    let key = stet_pkcs11::Pkcs11Key::open_uri(uri, module, 1)
        .map_err(|e| Failure::new(exit::CONFIG, format!("--key: {e}")))?;
    stet_pkcs11::Pkcs11Signer::new(key)
        .map_err(|e| Failure::new(exit::CONFIG, format!("--key: {e}")))
}

fn file_signer(args: &SignArgs) -> Result<Box<dyn stet_httpsig::Signer>, Failure> {
    let passphrase = match &args.passphrase_env {
        Some(var) => Some(std::env::var(var).map_err(|_| {
            Failure::new(
                exit::CONFIG,
                format!("--passphrase-env {var}: the environment variable {var} is not set"),
            )
        })?),
        None => None,
    };
    let key_bytes = read_file(&args.key, "key")?;
    let key = PrivateKey::from_bytes(&key_bytes, passphrase.as_deref().map(str::as_bytes))
        .or_exit(exit::CONFIG, format!("key {}", args.key.display()))?;
    let signer = key
        .signer(args.backend)
        .or_exit(exit::CONFIG, format!("key {}", args.key.display()))?;
    // Said on every run, as a weakened profile setting is.
    if args.backend == Backend::RustCrypto {
        eprintln!(
            "warning: the rustcrypto signer is not constant-time (RUSTSEC-2023-0071): for test keys only"
        );
    }
    Ok(signer)
}

fn sign_with(args: SignArgs, signer: &dyn stet_httpsig::Signer) -> Result<u8, Failure> {
    let (input, name) = read_input(args.input.as_deref())?;
    let mut request = parse(&input, &name)?;
    if args.date_now {
        request.set_header("Date", httpdate::fmt_http_date(SystemTime::now()));
    }
    if !request.body().is_empty() && !request.has_header("content-length") {
        request.append_header("Content-Length", request.body().len().to_string());
    }

    let mut profile = SigningProfile::new(args.key_id);
    if let Some(list) = &args.headers {
        profile = profile.with_headers(&split_list(list));
    }
    profile.digest_on_empty_body = args.digest;
    profile
        .validate()
        .map_err(|e| Failure::new(2, format!("--headers/--key-id: {e}")))?;

    let signed = sign_request(&mut request, &profile, signer, SystemTime::now())
        .or_exit(exit::DATA, format!("cannot sign {name}"))?;
    if args.explain {
        eprintln!(
            "signing string for headers=\"{}\":\n{}",
            signed.headers.join(" "),
            signed.signing_string
        );
    }
    print_stdout(&raw::write_request(&request))?;
    Ok(0)
}

fn verify(args: VerifyArgs) -> Result<u8, Failure> {
    let key_bytes = read_file(&args.key, "key")?;
    let key = PublicKey::from_bytes(&key_bytes)
        .or_exit(exit::CONFIG, format!("key {}", args.key.display()))?;
    let (input, name) = read_input(args.input.as_deref())?;
    let request = parse(&input, &name)?;
    // Said on every run: an `ok` under a weakened policy must not pass for a full check.
    if args.no_date_check {
        eprintln!(
            "warning: the Date header is not checked (--no-date-check): a replay verifies too"
        );
    }
    if args.min_key_bits < VerifyPolicy::default().min_key_bits {
        eprintln!(
            "warning: RSA keys from {} bits are accepted (--min-key-bits): STET asks for {}",
            args.min_key_bits,
            VerifyPolicy::default().min_key_bits
        );
    }
    let policy = VerifyPolicy {
        required_headers: args.require.as_deref().map(split_list).unwrap_or_default(),
        max_skew: (!args.no_date_check).then(|| Duration::from_secs(args.max_skew)),
        min_key_bits: args.min_key_bits,
        ..VerifyPolicy::default()
    };
    let outcome = verify_request(&request, &policy, &key, SystemTime::now());
    let (json, text, row) = match &outcome {
        Ok(verified) => (
            serde_json::json!({
                "valid": true,
                "key_id": verified.key_id,
                "headers": verified.headers,
                "reason": null,
            }),
            "ok\n".to_owned(),
            vec![
                "true".to_owned(),
                verified.key_id.clone(),
                verified.headers.join(" "),
                String::new(),
            ],
        ),
        Err(reason) => {
            eprintln!("invalid signature: {reason}");
            (
                serde_json::json!({
                    "valid": false,
                    "key_id": null,
                    "headers": null,
                    "reason": reason.to_string(),
                }),
                String::new(),
                vec![
                    "false".to_owned(),
                    String::new(),
                    String::new(),
                    reason.to_string(),
                ],
            )
        }
    };
    Report::new(json, text)
        .rows(&["valid", "key_id", "headers", "reason"], vec![row])
        .print(args.out.report())?;
    Ok(if outcome.is_ok() {
        0
    } else {
        exit::CHECK_FAILED
    })
}

fn split_list(list: &str) -> Vec<String> {
    list.split_whitespace()
        .map(str::to_ascii_lowercase)
        .collect()
}

fn parse(input: &[u8], name: &str) -> Result<Request, Failure> {
    raw::parse_request(input).or_exit(exit::DATA, format!("{name} is not a valid HTTP request"))
}

/// Reads FILE, or stdin for `-` or no file; gives the bytes and a name for messages.
fn read_input(path: Option<&Path>) -> Result<(Vec<u8>, String), Failure> {
    match path {
        Some(p) if p != Path::new("-") => Ok((read_file(p, "input")?, p.display().to_string())),
        _ => {
            let mut buf = Vec::new();
            std::io::stdin()
                .take(MAX_INPUT + 1)
                .read_to_end(&mut buf)
                .or_exit(exit::NO_INPUT, "cannot read stdin")?;
            if buf.len() as u64 > MAX_INPUT {
                return Err(too_large("stdin"));
            }
            Ok((buf, "stdin".to_owned()))
        }
    }
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, Failure> {
    let code = if what == "key" {
        exit::CONFIG
    } else {
        exit::NO_INPUT
    };
    let file = std::fs::File::open(path)
        .or_exit(code, format!("cannot open {what} file {}", path.display()))?;
    let mut buf = Vec::new();
    file.take(MAX_INPUT + 1)
        .read_to_end(&mut buf)
        .or_exit(code, format!("cannot read {what} file {}", path.display()))?;
    if buf.len() as u64 > MAX_INPUT {
        return Err(too_large(&path.display().to_string()));
    }
    Ok(buf)
}

fn too_large(name: &str) -> Failure {
    Failure::new(
        exit::DATA,
        format!(
            "{name} is larger than {} MiB: not a STET request",
            MAX_INPUT / 1024 / 1024
        ),
    )
}

fn print_stdout(bytes: &[u8]) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .or_exit(exit::IO, "cannot write to stdout")
}
