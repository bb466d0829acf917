//! # stet-pkcs11
//!
//! QSealC and QWAC private keys in a hardware security module, reached through PKCS#11: a
//! licensed TPP's auditors and QTSP want them there, never in a file. The keys are named by
//! RFC 7512 URIs wherever stet accepts a key file:
//!
//! ```text
//! qseal_key = "pkcs11:token=tpp-keys;object=qseal?pin-source=file:/run/secrets/hsm-pin"
//! qwac_key  = "pkcs11:token=tpp-keys;id=%02?pin-source=file:/run/secrets/hsm-pin"
//! pkcs11_module = "/usr/lib/softhsm/libsofthsm2.so"   # or module-path= in each URI
//! ```
//!
//! - [`Pkcs11Uri`] reads the URI (token by label, serial, manufacturer, model or slot; key by
//!   `object` label or `id`; the PIN from `pin-source=file:…`, one trailing newline dropped,
//!   or `pin-value=…`; the module from `module-path`, `module-name` or the caller's default).
//!   Its `Display` never shows the PIN.
//! - [`Pkcs11Key`] opens the key: one module context per process (a module may be
//!   initialised once), the token found by its attributes (slot numbers change when tokens
//!   are added), a login per token ("user already logged in" counts as success), and a
//!   bounded pool of sessions; a session the token drops is reopened and the signature
//!   tried again once.
//! - [`Pkcs11Signer`] is the `stet_httpsig::Signer` for STET's `rsa-sha256`
//!   (`CKM_SHA256_RSA_PKCS`): byte-identical to the software backends, since PKCS#1 v1.5 is
//!   deterministic. It says it [blocks](stet_httpsig::Signer::blocking), so async callers
//!   sign on a blocking thread.
//! - [`Pkcs11TlsKey`] and [`HsmClientCert`] sign the mutual-TLS handshake in the HSM: RSA-PSS
//!   in TLS 1.3, PKCS#1 v1.5 in TLS 1.2, ECDSA for EC keys. Give the resolver to
//!   `rustls::ClientConfig` with `with_client_cert_resolver`.
//! - [`check_certificate`] signs once and verifies with a certificate: the key belongs to it.
//!
//! ```no_run
//! use stet_httpsig::Signer as _;
//! use stet_pkcs11::{Pkcs11Key, Pkcs11Signer};
//!
//! # fn main() -> Result<(), stet_pkcs11::Pkcs11Error> {
//! let key = Pkcs11Key::open_uri(
//!     "pkcs11:token=tpp-keys;object=qseal?pin-source=file:/run/secrets/hsm-pin",
//!     Some(std::path::Path::new("/usr/lib/softhsm/libsofthsm2.so")),
//!     stet_pkcs11::DEFAULT_SESSIONS,
//! )?;
//! let signer = Pkcs11Signer::new(key)?;
//! let signature = signer.sign(b"(request-target): get /accounts").unwrap();
//! # Ok(()) }
//! ```
//!
//! Every error ([`Pkcs11Error`]) names the module, token or key and says what to do: a module
//! that does not load, a token that is not there (with the tokens that are), a wrong PIN, a
//! key that is not there (with the keys that are).

mod error;
mod key;
mod tls;
pub mod uri;

pub use error::Pkcs11Error;
pub use key::{DEFAULT_SESSIONS, HeldSession, KeyKind, Pkcs11Key, SignatureMechanism, module_for};
pub use tls::{
    HsmClientCert, KeyMatch, Pkcs11Signer, Pkcs11TlsKey, check_certificate, check_public_key,
};
pub use uri::{PinSource, Pkcs11Uri, is_pkcs11_uri};
