//! What can go wrong with a key in an HSM, one variant per thing a user does differently.

/// Why a PKCS#11 key cannot be opened or used. Each message names the module, token or key,
/// and what to do; none carries the PIN.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Pkcs11Error {
    /// The URI cannot be read.
    #[error("PKCS#11 URI {uri}: {source}")]
    Uri {
        /// The URI as given, without its PIN.
        uri: String,
        /// What is wrong.
        source: crate::uri::UriError,
    },
    /// No module named anywhere.
    #[error(
        "{uri}: no PKCS#11 module to load: add `module-path=/path/to/module.so` to the URI's query, \
         set `pkcs11_module` in the profile, or set STET_PKCS11_MODULE"
    )]
    NoModule {
        /// The URI, without its PIN.
        uri: String,
    },
    /// `module-name` names no module registered with p11-kit.
    #[error(
        "module-name={name}: no p11-kit module of that name (looked in {looked}); give \
         module-path instead"
    )]
    UnknownModuleName {
        /// The name.
        name: String,
        /// The folders searched.
        looked: String,
    },
    /// The module could not be loaded or initialised.
    #[error(
        "cannot load the PKCS#11 module {path}: {detail}; check the path (`module-path`, \
         `pkcs11_module` or STET_PKCS11_MODULE) and that the HSM's client library is installed"
    )]
    ModuleLoad {
        /// The module.
        path: String,
        /// The loader's or module's reason.
        detail: String,
    },
    /// No token matches the URI.
    #[error(
        "no token matches {wanted} in {module} (tokens present: {available}); check `token=` \
         in the URI, and that the HSM is connected and the token initialised"
    )]
    NoToken {
        /// What the URI asks for.
        wanted: String,
        /// The module.
        module: String,
        /// The tokens there are.
        available: String,
    },
    /// Several tokens match.
    #[error("{count} tokens match {wanted} in {module}: add `token=LABEL` or `serial=` to the URI")]
    SeveralTokens {
        /// What the URI asks for.
        wanted: String,
        /// The module.
        module: String,
        /// How many match.
        count: usize,
    },
    /// The token needs a login and no PIN was given.
    #[error(
        "token `{token}` needs its user PIN: add `?pin-source=file:/path/to/pin` (or \
         `pin-value=…`) to the URI"
    )]
    PinRequired {
        /// The token label.
        token: String,
    },
    /// The PIN file cannot be read.
    #[error("cannot read the PIN file {path}: {source}: check `pin-source` in the URI")]
    PinFile {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The token refused the PIN.
    #[error(
        "token `{token}` refused the PIN (PIN incorrect): check the PIN file or pin-value; \
         repeated failures lock the token"
    )]
    WrongPin {
        /// The token label.
        token: String,
    },
    /// The PIN is locked or expired.
    #[error("token `{token}`: the user PIN is {state}: ask the HSM's security officer to reset it")]
    PinLocked {
        /// The token label.
        token: String,
        /// `locked` or `expired`.
        state: &'static str,
    },
    /// No private key matches.
    #[error(
        "token `{token}` has no private key with {wanted} (private keys there: {available}); \
         check `object=` (the key's label) or `id=` in the URI"
    )]
    NoObject {
        /// The token label.
        token: String,
        /// What the URI asks for.
        wanted: String,
        /// The private keys there are.
        available: String,
    },
    /// Several private keys match.
    #[error(
        "token `{token}` has {count} private keys with {wanted}: add `id=` (or `object=`) to the \
         URI to choose one"
    )]
    SeveralObjects {
        /// The token label.
        token: String,
        /// What the URI asks for.
        wanted: String,
        /// How many match.
        count: usize,
    },
    /// A key of a type stet cannot use there.
    #[error("token `{token}`, {key}: {detail}")]
    UnsupportedKey {
        /// The token label.
        token: String,
        /// The key.
        key: String,
        /// What is wrong.
        detail: String,
    },
    /// Any other failure of the module.
    #[error("PKCS#11 {operation} on token `{token}` failed: {detail}")]
    Token {
        /// What was being done.
        operation: &'static str,
        /// The token label.
        token: String,
        /// The module's reason.
        detail: String,
    },
}
