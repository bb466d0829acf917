//! A private key in a token: found once, used through a bounded pool of sessions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use zeroize::Zeroizing;

use crate::Pkcs11Error;
use crate::uri::Pkcs11Uri;

/// Sessions a key keeps open at most, unless told otherwise: enough for a client's signing
/// and handshakes at once, few enough for HSMs that cap sessions per application.
pub const DEFAULT_SESSIONS: usize = 4;

/// What kind of key it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA, with its modulus size in bits.
    Rsa {
        /// The modulus size.
        bits: usize,
    },
    /// ECDSA on NIST P-256.
    EcP256,
    /// ECDSA on NIST P-384.
    EcP384,
}

impl std::fmt::Display for KeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyKind::Rsa { bits } => write!(f, "RSA {bits} bits"),
            KeyKind::EcP256 => f.write_str("ECDSA P-256"),
            KeyKind::EcP384 => f.write_str("ECDSA P-384"),
        }
    }
}

/// The signature a token is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureMechanism {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (`CKM_SHA256_RSA_PKCS`): STET's `rsa-sha256`, TLS 1.2.
    RsaPkcs1Sha256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RsaPkcs1Sha384,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt: TLS 1.3's `rsa_pss_rsae_sha256`.
    RsaPssSha256,
    /// RSASSA-PSS with SHA-384, MGF1-SHA-384 and a 48-byte salt.
    RsaPssSha384,
    /// ECDSA over the SHA-256 hash (hashed here, signed raw by the token), DER-encoded.
    EcdsaSha256,
    /// ECDSA over the SHA-384 hash, DER-encoded.
    EcdsaSha384,
}

/// The process's PKCS#11 contexts, one per module: `C_Initialize` may run once per process,
/// and a second context for the same module would be refused by the module.
fn contexts() -> &'static Mutex<HashMap<PathBuf, Pkcs11>> {
    static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    CONTEXTS.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The context of `module`, loading and initialising it the first time.
pub fn module_context(module: &Path) -> Result<Pkcs11, Pkcs11Error> {
    let mut all = contexts().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(ctx) = all.get(module) {
        return Ok(ctx.clone());
    }
    let load_error = |detail: String| Pkcs11Error::ModuleLoad {
        path: module.display().to_string(),
        detail,
    };
    if !module.exists() {
        return Err(load_error("no such file".to_owned()));
    }
    let ctx = Pkcs11::new(module).map_err(|e| load_error(e.to_string()))?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(load_error(ck_detail(&e))),
    }
    all.insert(module.to_path_buf(), ctx.clone());
    Ok(ctx)
}

/// Finds the module to load for `uri`: its `module-path`, its `module-name` in p11-kit's
/// registry, or `default` (the profile's `pkcs11_module`, or `STET_PKCS11_MODULE`).
pub fn module_for(uri: &Pkcs11Uri, default: Option<&Path>) -> Result<PathBuf, Pkcs11Error> {
    if let Some(path) = &uri.module_path {
        return Ok(path.clone());
    }
    if let Some(name) = &uri.module_name {
        return p11_kit_module(name);
    }
    default
        .map(Path::to_path_buf)
        .ok_or_else(|| Pkcs11Error::NoModule {
            uri: uri.to_string(),
        })
}

/// A module registered with p11-kit: `NAME.module` in its registry, whose `module:` line
/// gives the library (relative names live in the multiarch `pkcs11` folder).
fn p11_kit_module(name: &str) -> Result<PathBuf, Pkcs11Error> {
    const REGISTRIES: [&str; 2] = ["/etc/pkcs11/modules", "/usr/share/p11-kit/modules"];
    for dir in REGISTRIES {
        let Ok(text) = std::fs::read_to_string(Path::new(dir).join(format!("{name}.module")))
        else {
            continue;
        };
        let module = text.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == "module").then(|| value.trim().to_owned())
        });
        if let Some(module) = module {
            let path = PathBuf::from(&module);
            if path.is_absolute() {
                return Ok(path);
            }
            for base in [
                "/usr/lib/x86_64-linux-gnu/pkcs11",
                "/usr/lib/aarch64-linux-gnu/pkcs11",
                "/usr/lib/pkcs11",
                "/usr/lib64/pkcs11",
            ] {
                let candidate = Path::new(base).join(&module);
                if candidate.exists() {
                    return Ok(candidate);
                }
            }
            return Ok(path);
        }
    }
    Err(Pkcs11Error::UnknownModuleName {
        name: name.to_owned(),
        looked: REGISTRIES.join(", "),
    })
}

/// A PKCS#11 error as a short line: the function and the return value's name.
pub(crate) fn ck_detail(e: &CkError) -> String {
    match e {
        CkError::Pkcs11(rv, function) => format!("{function} returned {rv:?}"),
        other => other.to_string(),
    }
}

/// Whether the token dropped the session or its login (closed, removed, logged out, device
/// error; the key's handle dies with the login): a new session, logged in, finds it again.
fn session_lost(e: &CkError) -> bool {
    matches!(
        e,
        CkError::Pkcs11(
            RvError::SessionHandleInvalid
                | RvError::SessionClosed
                | RvError::DeviceRemoved
                | RvError::TokenNotPresent
                | RvError::DeviceError
                | RvError::UserNotLoggedIn
                | RvError::ObjectHandleInvalid
                | RvError::KeyHandleInvalid,
            _
        )
    )
}

/// A private key in a token, ready to sign. Cheap to clone; thread-safe.
///
/// Signing takes a session from a bounded pool (opening one when none is idle and fewer than
/// the bound are open, waiting otherwise), logs it in once per token, and puts it back. A
/// session the token has dropped is reopened and the signature tried once more.
#[derive(Clone)]
pub struct Pkcs11Key {
    inner: Arc<Inner>,
}

struct Inner {
    ctx: Pkcs11,
    module: PathBuf,
    slot: Slot,
    token: String,
    login_required: bool,
    pin: Option<AuthPin>,
    template: Vec<Attribute>,
    wanted: String,
    uri: String,
    kind: KeyKind,
    pool: Pool,
}

struct Pool {
    idle: Mutex<PoolState>,
    freed: Condvar,
    max: usize,
}

#[derive(Default)]
struct PoolState {
    sessions: Vec<(Session, ObjectHandle)>,
    open: usize,
    /// Callers waiting for a session, every one being in use.
    waiting: usize,
}

/// One of a key's pooled sessions, taken until dropped (see [`Pkcs11Key::hold_session`]).
pub struct HeldSession {
    key: Pkcs11Key,
    session: Option<(Session, ObjectHandle)>,
}

impl std::fmt::Debug for HeldSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HeldSession({:?})", self.key)
    }
}

impl Drop for HeldSession {
    fn drop(&mut self) {
        if let Some((session, handle)) = self.session.take() {
            self.key.inner.give_back(session, handle);
        }
    }
}

impl std::fmt::Debug for Pkcs11Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Pkcs11Key({}, {})", self.inner.uri, self.inner.kind)
    }
}

impl Pkcs11Key {
    /// Opens the key `uri` names: loads the module (the URI's, else `default_module`), finds
    /// the token and the private key, logs in with the URI's PIN, and reads the key's type.
    /// At most `sessions` sessions are kept open (at least one).
    pub fn open(
        uri: &Pkcs11Uri,
        default_module: Option<&Path>,
        sessions: usize,
    ) -> Result<Self, Pkcs11Error> {
        let module = module_for(uri, default_module)?;
        let ctx = module_context(&module)?;
        let module_name = module.display().to_string();
        let (slot, token, login_required) = find_token(&ctx, uri, &module_name)?;
        let pin = match &uri.pin {
            Some(source) => {
                let pin: Zeroizing<String> = source.read()?;
                Some(AuthPin::new(pin.as_str().into()))
            }
            None => None,
        };
        if login_required && pin.is_none() {
            return Err(Pkcs11Error::PinRequired { token });
        }
        let mut template = vec![Attribute::Class(ObjectClass::PRIVATE_KEY)];
        if let Some(label) = &uri.object {
            template.push(Attribute::Label(label.as_bytes().to_vec()));
        }
        if let Some(id) = &uri.id {
            template.push(Attribute::Id(id.clone()));
        }
        let mut inner = Inner {
            ctx,
            module,
            slot,
            token,
            login_required,
            pin,
            template,
            wanted: uri.object_description(),
            uri: uri.to_string(),
            kind: KeyKind::Rsa { bits: 0 },
            pool: Pool {
                idle: Mutex::new(PoolState::default()),
                freed: Condvar::new(),
                max: sessions.max(1),
            },
        };
        // The first session: proves the login and the key, and gives the key's type.
        let (session, handle) = inner.open_session()?;
        inner.kind = inner.key_kind(&session, handle)?;
        {
            let mut state = inner.pool.idle.lock().unwrap_or_else(|e| e.into_inner());
            state.open = 1;
            state.sessions.push((session, handle));
        }
        Ok(Pkcs11Key {
            inner: Arc::new(inner),
        })
    }

    /// Parses `uri` and opens it (see [`open`](Self::open)).
    pub fn open_uri(
        uri: &str,
        default_module: Option<&Path>,
        sessions: usize,
    ) -> Result<Self, Pkcs11Error> {
        let parsed: Pkcs11Uri = uri.parse().map_err(|source| Pkcs11Error::Uri {
            uri: redact(uri),
            source,
        })?;
        Self::open(&parsed, default_module, sessions)
    }

    /// The key's type and size.
    pub fn kind(&self) -> KeyKind {
        self.inner.kind
    }

    /// The URI, without its PIN.
    pub fn uri(&self) -> &str {
        &self.inner.uri
    }

    /// The token's label.
    pub fn token(&self) -> &str {
        &self.inner.token
    }

    /// The module loaded.
    pub fn module(&self) -> &Path {
        &self.inner.module
    }

    /// Signs `message` with `mechanism`. The token hashes (except for ECDSA, hashed here).
    pub fn sign(
        &self,
        mechanism: SignatureMechanism,
        message: &[u8],
    ) -> Result<Vec<u8>, Pkcs11Error> {
        let inner = &self.inner;
        let (ck, data, ecdsa) = inner.mechanism(mechanism, message)?;
        let mut retried = false;
        loop {
            let (session, handle) = inner.take()?;
            match session.sign(&ck, handle, &data) {
                Ok(signature) => {
                    inner.give_back(session, handle);
                    return Ok(if ecdsa {
                        ecdsa_der(&signature)
                    } else {
                        signature
                    });
                }
                Err(e) if session_lost(&e) && !retried => {
                    // The token dropped it (and so, most likely, the idle ones too: a reset
                    // or a logout ends them all): close them and try once on a new session.
                    retried = true;
                    inner.discard(session);
                    inner.discard_idle();
                }
                Err(e) => {
                    inner.discard(session);
                    return Err(inner.token_error("signing", &e));
                }
            }
        }
    }

    /// Takes one of the pool's sessions (logged in, the key found) until the guard is
    /// dropped: reserves part of the token's capacity, so that signing elsewhere waits when
    /// the pool is at its bound. Waits, as signing does, when every session is in use.
    pub fn hold_session(&self) -> Result<HeldSession, Pkcs11Error> {
        let pair = self.inner.take()?;
        Ok(HeldSession {
            key: self.clone(),
            session: Some(pair),
        })
    }

    /// How many callers are waiting now for a session, every one being in use: above zero
    /// often, the pool is too small for the load.
    pub fn sessions_awaited(&self) -> usize {
        self.inner
            .pool
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .waiting
    }

    /// How many sessions are open now (idle or in use).
    pub fn open_sessions(&self) -> usize {
        self.inner
            .pool
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .open
    }
}

/// The URI text with every `pin-value` hidden, for messages about a URI that did not parse.
///
/// The parser reads attribute names in any case (`PIN-VALUE=`, `Pin-Value=`), so a URI that
/// fails to parse may carry its PIN under any spelling, in the query or (wrongly) in the path,
/// even percent-encoded (`pin%2Dvalue`): each `name=value` whose name means `pin-value` loses
/// its value. A `pin-source` is a path and stays; the file's contents are never read here.
pub(crate) fn redact(uri: &str) -> String {
    let mut out = String::with_capacity(uri.len());
    let mut rest = uri;
    loop {
        let end = rest.find([';', '?', '&']).unwrap_or(rest.len());
        let (attr, tail) = rest.split_at(end);
        match attr.split_once('=') {
            Some((name, _)) if names_pin_value(name) => {
                out.push_str(name);
                out.push_str("=<redacted>");
            }
            _ => out.push_str(attr),
        }
        let mut chars = tail.chars();
        match chars.next() {
            Some(separator) => {
                out.push(separator);
                rest = chars.as_str();
            }
            None => return out,
        }
    }
}

/// Whether an attribute name, as written (any case, perhaps percent-encoded, perhaps after the
/// `pkcs11:` scheme), is `pin-value`.
fn names_pin_value(name: &str) -> bool {
    let name = name
        .get(..7)
        .filter(|s| s.eq_ignore_ascii_case("pkcs11:"))
        .map_or(name, |_| &name[7..]);
    let mut decoded = Vec::with_capacity(name.len());
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match escaped {
            Some(b) => {
                decoded.push(b);
                i += 3;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    decoded.trim_ascii().eq_ignore_ascii_case(b"pin-value")
}

fn find_token(
    ctx: &Pkcs11,
    uri: &Pkcs11Uri,
    module: &str,
) -> Result<(Slot, String, bool), Pkcs11Error> {
    let unknown = |operation, e: CkError| Pkcs11Error::Token {
        operation,
        token: uri.token_description(),
        detail: ck_detail(&e),
    };
    if uri.library_manufacturer.is_some() || uri.library_description.is_some() {
        let info = ctx
            .get_library_info()
            .map_err(|e| unknown("C_GetInfo", e))?;
        let differs = |want: &Option<String>, have: &str| {
            want.as_deref().is_some_and(|w| w.trim() != have.trim())
        };
        if differs(&uri.library_manufacturer, info.manufacturer_id())
            || differs(&uri.library_description, info.library_description())
        {
            return Err(Pkcs11Error::NoToken {
                wanted: format!(
                    "library {}",
                    uri.library_description
                        .as_deref()
                        .or(uri.library_manufacturer.as_deref())
                        .unwrap_or_default()
                ),
                module: module.to_owned(),
                available: format!(
                    "the module is `{}` by `{}`",
                    info.library_description().trim(),
                    info.manufacturer_id().trim()
                ),
            });
        }
    }
    let slots = ctx
        .get_slots_with_initialized_token()
        .map_err(|e| unknown("C_GetSlotList", e))?;
    let mut available = Vec::new();
    let mut matching = Vec::new();
    for slot in slots {
        let Ok(info) = ctx.get_token_info(slot) else {
            continue;
        };
        let label = info.label().trim().to_owned();
        available.push(format!("`{label}`"));
        let same = |want: &Option<String>, have: &str| {
            want.as_deref().is_none_or(|w| w.trim() == have.trim())
        };
        if same(&uri.token, info.label())
            && same(&uri.serial, info.serial_number())
            && same(&uri.manufacturer, info.manufacturer_id())
            && same(&uri.model, info.model())
            && uri.slot_id.is_none_or(|id| id == slot.id())
        {
            if info.user_pin_locked() {
                return Err(Pkcs11Error::PinLocked {
                    token: label,
                    state: "locked",
                });
            }
            matching.push((slot, label, info.login_required()));
        }
    }
    match matching.len() {
        1 => Ok(matching.remove(0)),
        0 => Err(Pkcs11Error::NoToken {
            wanted: uri.token_description(),
            module: module.to_owned(),
            available: if available.is_empty() {
                "none".to_owned()
            } else {
                available.join(", ")
            },
        }),
        count => Err(Pkcs11Error::SeveralTokens {
            wanted: uri.token_description(),
            module: module.to_owned(),
            count,
        }),
    }
}

impl Inner {
    fn token_error(&self, operation: &'static str, e: &CkError) -> Pkcs11Error {
        Pkcs11Error::Token {
            operation,
            token: self.token.clone(),
            detail: ck_detail(e),
        }
    }

    /// Opens a session, logs in (a token already logged in by another session of this
    /// process counts as success), and finds the key.
    fn open_session(&self) -> Result<(Session, ObjectHandle), Pkcs11Error> {
        let session = self
            .ctx
            .open_ro_session(self.slot)
            .map_err(|e| self.token_error("opening a session", &e))?;
        if self.login_required
            && let Some(pin) = &self.pin
        {
            match session.login(UserType::User, Some(pin)) {
                Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
                Err(CkError::Pkcs11(
                    RvError::PinIncorrect | RvError::PinInvalid | RvError::PinLenRange,
                    _,
                )) => {
                    return Err(Pkcs11Error::WrongPin {
                        token: self.token.clone(),
                    });
                }
                Err(CkError::Pkcs11(RvError::PinLocked, _)) => {
                    return Err(Pkcs11Error::PinLocked {
                        token: self.token.clone(),
                        state: "locked",
                    });
                }
                Err(CkError::Pkcs11(RvError::PinExpired, _)) => {
                    return Err(Pkcs11Error::PinLocked {
                        token: self.token.clone(),
                        state: "expired",
                    });
                }
                Err(e) => return Err(self.token_error("login", &e)),
            }
        }
        let found = session
            .find_objects(&self.template)
            .map_err(|e| self.token_error("finding the key", &e))?;
        match found.len() {
            1 => Ok((session, found[0])),
            0 => Err(Pkcs11Error::NoObject {
                token: self.token.clone(),
                wanted: self.wanted.clone(),
                available: private_keys(&session),
            }),
            count => Err(Pkcs11Error::SeveralObjects {
                token: self.token.clone(),
                wanted: self.wanted.clone(),
                count,
            }),
        }
    }

    fn key_kind(&self, session: &Session, key: ObjectHandle) -> Result<KeyKind, Pkcs11Error> {
        let unsupported = |detail: String| Pkcs11Error::UnsupportedKey {
            token: self.token.clone(),
            key: self.wanted.clone(),
            detail,
        };
        let attrs = session
            .get_attributes(key, &[AttributeType::KeyType])
            .map_err(|e| self.token_error("reading the key's type", &e))?;
        let key_type = attrs.iter().find_map(|a| match a {
            Attribute::KeyType(t) => Some(*t),
            _ => None,
        });
        match key_type {
            Some(t) if t == KeyType::RSA => {
                let attrs = session
                    .get_attributes(key, &[AttributeType::Modulus])
                    .map_err(|e| self.token_error("reading the key's modulus", &e))?;
                let bits = attrs
                    .iter()
                    .find_map(|a| match a {
                        Attribute::Modulus(m) => Some(modulus_bits(m)),
                        _ => None,
                    })
                    .ok_or_else(|| unsupported("the token does not give the RSA modulus".into()))?;
                Ok(KeyKind::Rsa { bits })
            }
            Some(t) if t == KeyType::EC => {
                let attrs = session
                    .get_attributes(key, &[AttributeType::EcParams])
                    .map_err(|e| self.token_error("reading the key's curve", &e))?;
                let params = attrs.iter().find_map(|a| match a {
                    Attribute::EcParams(p) => Some(p.clone()),
                    _ => None,
                });
                match params.as_deref() {
                    Some(P256_OID) => Ok(KeyKind::EcP256),
                    Some(P384_OID) => Ok(KeyKind::EcP384),
                    _ => Err(unsupported(
                        "an EC key on a curve other than P-256 or P-384".into(),
                    )),
                }
            }
            Some(t) => Err(unsupported(format!(
                "a {t} key: stet signs with RSA (and ECDSA P-256/P-384 for the QWAC)"
            ))),
            None => Err(unsupported("the token does not say the key's type".into())),
        }
    }

    fn mechanism(
        &self,
        mechanism: SignatureMechanism,
        message: &[u8],
    ) -> Result<(Mechanism<'static>, Vec<u8>, bool), Pkcs11Error> {
        use SignatureMechanism as M;
        use sha2::Digest as _;
        let wrong = |what: &str| Pkcs11Error::UnsupportedKey {
            token: self.token.clone(),
            key: self.wanted.clone(),
            detail: format!("a {} cannot make {what} signatures", self.kind),
        };
        let rsa = matches!(self.kind, KeyKind::Rsa { .. });
        let pss = |hash, mgf, salt: u64| {
            Mechanism::RsaPkcsPss(PkcsPssParams {
                hash_alg: hash,
                mgf,
                s_len: salt.into(),
            })
        };
        use cryptoki::mechanism::MechanismType;
        Ok(match mechanism {
            M::RsaPkcs1Sha256 if rsa => (Mechanism::Sha256RsaPkcs, message.to_vec(), false),
            M::RsaPkcs1Sha384 if rsa => (Mechanism::Sha384RsaPkcs, message.to_vec(), false),
            // PSS over a hash computed here: every token that offers PSS offers the bare
            // mechanism, not all offer the hashing ones.
            M::RsaPssSha256 if rsa => (
                pss(MechanismType::SHA256, PkcsMgfType::MGF1_SHA256, 32),
                sha2::Sha256::digest(message).to_vec(),
                false,
            ),
            M::RsaPssSha384 if rsa => (
                pss(MechanismType::SHA384, PkcsMgfType::MGF1_SHA384, 48),
                sha2::Sha384::digest(message).to_vec(),
                false,
            ),
            M::EcdsaSha256 if self.kind == KeyKind::EcP256 => (
                Mechanism::Ecdsa,
                sha2::Sha256::digest(message).to_vec(),
                true,
            ),
            M::EcdsaSha384 if self.kind == KeyKind::EcP384 => (
                Mechanism::Ecdsa,
                sha2::Sha384::digest(message).to_vec(),
                true,
            ),
            other => return Err(wrong(&format!("{other:?}"))),
        })
    }

    /// A session from the pool: an idle one, a new one while under the bound, or the next one
    /// given back.
    fn take(&self) -> Result<(Session, ObjectHandle), Pkcs11Error> {
        let mut state = self.pool.idle.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(pair) = state.sessions.pop() {
                return Ok(pair);
            }
            if state.open < self.pool.max {
                state.open += 1;
                drop(state);
                return self.open_session().inspect_err(|_| {
                    let mut state = self.pool.idle.lock().unwrap_or_else(|e| e.into_inner());
                    state.open -= 1;
                    self.pool.freed.notify_one();
                });
            }
            state.waiting += 1;
            state = self
                .pool
                .freed
                .wait(state)
                .unwrap_or_else(|e| e.into_inner());
            state.waiting -= 1;
        }
    }

    fn give_back(&self, session: Session, handle: ObjectHandle) {
        let mut state = self.pool.idle.lock().unwrap_or_else(|e| e.into_inner());
        state.sessions.push((session, handle));
        self.pool.freed.notify_one();
    }

    fn discard_idle(&self) {
        let mut state = self.pool.idle.lock().unwrap_or_else(|e| e.into_inner());
        let idle = std::mem::take(&mut state.sessions);
        state.open -= idle.len();
        drop(state);
        drop(idle);
        self.pool.freed.notify_all();
    }

    fn discard(&self, session: Session) {
        drop(session);
        let mut state = self.pool.idle.lock().unwrap_or_else(|e| e.into_inner());
        state.open -= 1;
        self.pool.freed.notify_one();
    }
}

/// The labels (and ids) of the private keys a session sees, for "not found" messages.
fn private_keys(session: &Session) -> String {
    let Ok(handles) = session.find_objects(&[Attribute::Class(ObjectClass::PRIVATE_KEY)]) else {
        return "unknown (the token does not list them)".to_owned();
    };
    let names: Vec<String> = handles
        .iter()
        .map(|&h| {
            let attrs = session
                .get_attributes(h, &[AttributeType::Label, AttributeType::Id])
                .unwrap_or_default();
            let mut label = None;
            let mut id = None;
            for a in attrs {
                match a {
                    Attribute::Label(l) => label = Some(String::from_utf8_lossy(&l).into_owned()),
                    Attribute::Id(i) => {
                        id = Some(i.iter().map(|b| format!("%{b:02x}")).collect::<String>())
                    }
                    _ => {}
                }
            }
            match (label, id) {
                (Some(l), Some(i)) => format!("object=`{l}` id={i}"),
                (Some(l), None) => format!("object=`{l}`"),
                (None, Some(i)) => format!("id={i}"),
                (None, None) => "an unnamed key".to_owned(),
            }
        })
        .collect();
    if names.is_empty() {
        "none visible after login".to_owned()
    } else {
        names.join(", ")
    }
}

/// `1.2.840.10045.3.1.7` (prime256v1) and `1.3.132.0.34` (secp384r1) as DER, the forms of
/// `CKA_EC_PARAMS`.
const P256_OID: &[u8] = &[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
const P384_OID: &[u8] = &[0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22];

fn modulus_bits(modulus: &[u8]) -> usize {
    let trimmed: &[u8] = match modulus.iter().position(|&b| b != 0) {
        Some(at) => &modulus[at..],
        None => &[],
    };
    match trimmed.first() {
        Some(&first) => trimmed.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

/// A PKCS#11 ECDSA signature (`r || s`, each the curve's size) as the DER `Ecdsa-Sig-Value`
/// TLS and X.509 use.
fn ecdsa_der(raw: &[u8]) -> Vec<u8> {
    fn integer(bytes: &[u8]) -> Vec<u8> {
        let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
        let mut value = bytes[start..].to_vec();
        if value.is_empty() || value[0] & 0x80 != 0 {
            value.insert(0, 0);
        }
        let mut out = vec![0x02, value.len() as u8];
        out.extend(value);
        out
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let body = [integer(r), integer(s)].concat();
    let mut out = vec![0x30];
    if body.len() < 0x80 {
        out.push(body.len() as u8);
    } else {
        out.extend([0x81, body.len() as u8]);
    }
    out.extend(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modulus_sizes() {
        assert_eq!(modulus_bits(&[0x00, 0x80, 0, 0]), 24);
        assert_eq!(modulus_bits(&[0x01; 256]), 2041);
        assert_eq!(modulus_bits(&[0xff; 128]), 1024);
    }

    #[test]
    fn ecdsa_signatures_become_der() {
        let mut raw = vec![0u8; 64];
        raw[0] = 0x80; // r needs a leading zero
        raw[63] = 0x01; // s is 1
        let der = ecdsa_der(&raw);
        assert_eq!(&der[..4], &[0x30, 0x26, 0x02, 0x21]);
        assert_eq!(&der[der.len() - 3..], &[0x02, 0x01, 0x01]);
    }

    #[test]
    fn pins_in_unparsable_uris_are_hidden() {
        assert_eq!(
            redact("pkcs11:tokn=a?pin-value=1234&module-path=/m"),
            "pkcs11:tokn=a?pin-value=<redacted>&module-path=/m"
        );
        // Any spelling the parser accepts, and the ones it refuses, anywhere in the URI.
        for uri in [
            "pkcs11:tokn=a?PIN-VALUE=1234",
            "pkcs11:tokn=a?Pin-Value=1234&module-path=/m",
            "pkcs11:token=a;PIN-VALUE=1234",
            "pkcs11:PIN-VALUE=1234",
            "pkcs11:tokn=a?pin%2Dvalue=1234",
            "pkcs11:tokn=a?pin-value=1234&PIN-VALUE=1234",
            "pkcs11:tokn=a?pin-value=12=34",
        ] {
            let shown = redact(uri);
            assert!(
                !shown.contains("1234") && !shown.contains("34"),
                "{uri} -> {shown}"
            );
            assert!(shown.contains("=<redacted>"), "{uri} -> {shown}");
        }
        // What is not a PIN stays, so the message still points at the fault.
        assert_eq!(
            redact("pkcs11:tokn=a;object=k?pin-source=file:/run/pin"),
            "pkcs11:tokn=a;object=k?pin-source=file:/run/pin"
        );
    }

    #[test]
    fn an_unparsable_uri_never_shows_its_pin() {
        for uri in [
            "pkcs11:tokn=a?PIN-VALUE=1234",
            "pkcs11:token=a;token=b?Pin-Value=1234",
            "pkcs11:token=a?PIN-VALUE=1234&PIN-VALUE=1234",
        ] {
            let err = Pkcs11Key::open_uri(uri, None, 1).unwrap_err();
            assert!(matches!(err, Pkcs11Error::Uri { .. }), "{uri}: {err}");
            let shown = format!("{err} {err:?}");
            assert!(!shown.contains("1234"), "{uri}: {shown}");
        }
    }

    #[test]
    fn a_pin_file_is_never_shown() {
        let dir = tempfile::tempdir().unwrap();
        // Not UTF-8: the error says so without quoting the bytes.
        let path = dir.path().join("pin");
        std::fs::write(&path, b"12\xff34-secret").unwrap();
        let uri = format!("pkcs11:token=a;object=k?pin-source=file:{}", path.display());
        let parsed: Pkcs11Uri = uri.parse().unwrap();
        let err = parsed.pin.as_ref().unwrap().read().unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(shown.contains("not UTF-8"), "{shown}");
    }
}
