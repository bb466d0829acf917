//! # stet-httpsig
//!
//! HTTP message signatures as STET requires them: the Cavage draft (up to draft 10 semantics by
//! default), `rsa-sha256`, a `Signature:` header beside the OAuth2 `Authorization`, and a
//! `Digest` over the exact body bytes. Signing and verification, byte-exact against the draft's
//! Appendix C vectors.
//!
//! The crate is pure: it knows an HTTP request as data ([`Request`]: method, request target,
//! ordered headers, body) and nothing about sockets, HTTP clients, banks or OAuth.
//!
//! ## Signing
//!
//! A [`SigningProfile`] says what a bank wants signed: the ordered header list, the `keyId`,
//! the algorithm label, whether every `PSU-*` header is added, whether GETs carry a Digest.
//! A [`Signer`] produces the signature bytes; [`PrivateKey::signer`] gives one on either
//! built-in [`Backend`].
//!
//! ```
//! use std::time::SystemTime;
//! use stet_httpsig::{Backend, PrivateKey, Request, SigningProfile, sign_request};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let pem = include_bytes!("../tests/data/rsa2048.pkcs8.pem");
//! let key = PrivateKey::from_pem(pem, None)?;
//! let signer = key.signer(Backend::default())?;
//! let profile = SigningProfile::stet("https://tpp.example/qseal.pem");
//!
//! let mut request = Request::new("POST", "/v1/payment-requests")
//!     .with_header("Host", "api.bank.example")
//!     .with_header("Date", "Sun, 05 Jan 2014 21:31:40 GMT")
//!     .with_header("X-Request-ID", "1b3ab8e8-0fd5-43d2-946e-d75958b172e7")
//!     .with_header("Content-Type", "application/json")
//!     .with_body(br#"{"paymentInformationId":"MyPmtInfId"}"#.to_vec());
//! let signed = sign_request(&mut request, &profile, signer.as_ref(), SystemTime::now())?;
//!
//! assert_eq!(signed.headers, ["(request-target)", "date", "x-request-id", "digest"]);
//! assert!(request.header("Digest").unwrap().starts_with("SHA-256="));
//! assert!(request.header("Signature").unwrap().starts_with(
//!     r#"keyId="https://tpp.example/qseal.pem",algorithm="rsa-sha256",headers="(request-target) date x-request-id digest",signature=""#
//! ));
//! # Ok(()) }
//! ```
//!
//! A header the list names but the request lacks is an error naming it: never signed as an
//! empty string, never silently dropped. The one exception is `digest` on a request without a
//! body, described at [`SigningProfile`].
//!
//! ## Verifying
//!
//! [`verify_request`] parses the `Signature` header, checks the [`VerifyPolicy`] (headers that
//! must be covered, Digest, Date skew), rebuilds the signing string from the received request,
//! resolves the key through a [`KeyResolver`] and checks the signature. Each rejection is its
//! own [`VerifyError`] variant whose message says what to fix; a mismatch carries the signing
//! string the verifier rebuilt, to compare with the sender's.
//!
//! ## Backends
//!
//! | backend | keys | why |
//! |---|---|---|
//! | [`Backend::AwsLc`] (default) | RSA 2048–8192 | constant-time and fast (see BENCHMARKS.md) |
//! | [`Backend::RustCrypto`] | RSA ≥ 1024 | pure Rust; signs the draft's 1024-bit test key |
//!
//! PKCS#1 v1.5 is deterministic, so both give identical signatures for the same key and
//! message; the tests check it. Verification uses aws-lc-rs when it is built in.
//!
//! ## Raw requests
//!
//! [`raw::parse_request`] and [`raw::write_request`] read and write requests as HTTP/1.1 text,
//! the format of `stet sig`.

mod digest;
mod keys;
mod message;
mod params;
mod profile;
pub mod raw;
mod sign;
mod signer;
mod signing_string;
mod verify;

pub use digest::{DigestError, check_digest, digest_header_value, sha256_entry};
pub use keys::{KeyError, PrivateKey, PublicKey, describe_pem_error};
pub use message::Request;
pub use params::{SignatureHeaderError, SignatureParams};
pub use profile::{ProfileError, SigningProfile};
pub use sign::{SignError, Signed, sign_request};
#[cfg(feature = "aws-lc")]
pub use signer::AwsLcSigner;
pub use signer::{Backend, RustCryptoSigner, Signer, SignerError};
pub use signing_string::{SigningStringError, signing_string};
pub use verify::{KeyResolver, Verified, VerifyError, VerifyPolicy, verify_request};
