//! STET dynamic client registration (the "OAuth2 technical setup", 1.0.5): registering the
//! TPP as an OAuth client of a bank with its certificates, reading, updating and deleting that
//! registration, and replacing its QSealC.
//!
//! The spec: `POST /register` with a `RegistrationRequestResource` (redirect URIs,
//! `tls_client_auth`, grant types, `client_name`, `contacts`, `provider_legal_id`, the QSealC
//! in `jwks` as `x5c`, `scope`), answered `201` with a `RegistrationRecord` (`client_id`,
//! `registration_access_token`, `registration_client_uri`, maybe `client_secret`); then
//! `GET|PUT|DELETE /register/{clientId}`. Every call is signed like any STET call, over the
//! QWAC's mutual TLS. Errors: `400` with `invalid_redirect_uri`, `invalid_client_metadata`, …;
//! other statuses with the STET `ErrorModel`.
//!
//! Banks differ, and the differences are data ([`RegistrationRules`], the `[registration]`
//! table of each bank profile, each value with its source): the endpoint, how the call is
//! authenticated (signed, HTTP Basic with portal credentials, a client-credentials token
//! first, nothing), the `jwks` shape (object or bare array; `x5c` array or string), the grant
//! types' case, the scope separator, extra fields (`context`), a `contact` object in place of
//! `contacts`, the kid (the TPP's, the certificate's serial in decimal, the bank's), 200 or 201,
//! approval by hand, whether `DELETE` exists, and how the QSealC is replaced.
//!
//! - [`QsealCertificate`] and [`request_body`]: the body, built (purely) from the QSealC
//!   (`client_name` from its `O`, `provider_legal_id` from its `organizationIdentifier`,
//!   `scope` from its PSD2 roles, never wider), the profile and the rules.
//! - [`Registrar`]: the calls, through a `Transport` for the registration endpoint.
//! - [`RegistrationState`] and [`RegistrationStore`]: what the bank answered, kept 0600 next
//!   to the tokens (the `registration_access_token` and any `client_secret` are secrets).

mod body;
mod rules;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use stet_transport::{Auth, Method, Profile, Secret, StetRequest, Transport, TransportError};
use url::Url;

pub use body::{
    BodyInput, QsealCertificate, RegisteredKey, decimal, kid_for, request_body, scopes_for_roles,
};
pub use rules::{
    Approval, ContactShape, JwksShape, KidStrategy, RegistrationAuth, RegistrationRules, Rotation,
    X5cShape,
};

use crate::bank::BankProfile;

/// Why a registration could not be made, read or changed. Each message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RegistrationError {
    /// The QSealC cannot be read.
    #[error("the QSealC certificate {path}: {detail}")]
    Certificate {
        /// The file.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The QSealC has no PSD2 role: no bank registers it.
    #[error(
        "the QSealC ({subject}) carries no PSD2 role (no PSD2 QCStatement): banks register only \
         certificates with the roles your NCA authorised; ask your QTSP for an eIDAS QSealC for PSD2"
    )]
    NoRoles {
        /// The certificate's subject.
        subject: String,
    },
    /// A scope asked for needs a role the certificate does not carry.
    #[error(
        "scope `{scope}` needs the PSD2 role {role}, which the QSealC does not carry (it has \
         {roles}): remove it from `scope` in the profile's registration table"
    )]
    ScopeTooWide {
        /// The scope.
        scope: String,
        /// The role it needs.
        role: String,
        /// The roles there are.
        roles: String,
    },
    /// Something the registration needs is missing or wrong.
    #[error("{0}")]
    Invalid(String),
    /// The bank refused with an RFC 7591 error (`invalid_redirect_uri`, …).
    #[error("the bank refused the registration: {error}{}; {hint}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        /// The error code.
        error: String,
        /// Its description.
        description: Option<String>,
        /// What to do.
        hint: String,
    },
    /// No registration is known for the profile.
    #[error(
        "profile `{profile}` has no registration at this bank yet: run `stet register create \
         --profile {profile}` first"
    )]
    NotRegistered {
        /// The profile.
        profile: String,
    },
    /// The bank's variant has no such operation.
    #[error("{bank} has no {operation} for registrations ({why})")]
    Unsupported {
        /// The bank profile.
        bank: String,
        /// What was asked.
        operation: &'static str,
        /// What the bank does instead.
        why: String,
    },
    /// The bank answered something that is not a registration.
    #[error("{method} {url} answered {status}, not a registration: {detail}")]
    Unreadable {
        /// The method.
        method: String,
        /// The URL.
        url: String,
        /// The status.
        status: u16,
        /// What was wrong.
        detail: String,
    },
    /// The exchange with the bank failed.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The registration store failed.
    #[error("registration store {path}: {detail}")]
    Store {
        /// The file.
        path: String,
        /// What failed.
        detail: String,
    },
}

/// What the bank answered, kept between runs. The `registration_access_token` and the
/// `client_secret` are secrets: [`RegistrationStore`] writes them 0600 and `Debug` hides them.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationState {
    /// The bank profile it was made with.
    pub bank: String,
    /// The client id the bank issued (empty while a manual approval is pending without one).
    pub client_id: String,
    /// The client secret, when the bank issued one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// The token for `GET|PUT|DELETE` of the registration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_access_token: Option<String>,
    /// Where the registration is managed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_client_uri: Option<String>,
    /// The kid of the registered QSealC (the TPP's, or the bank's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// `active`, or `pending` while the bank approves by hand.
    pub status: String,
    /// The bank's message, when it said something (manual approval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The record as the bank sent it, secrets removed.
    #[serde(default)]
    pub record: Value,
    /// A QSealC rotation sent but not yet in force at the bank (approved by hand, or to be
    /// registered on a developer portal): the profile keeps signing with the old key until
    /// the bank has the new one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_rotation: Option<PendingRotation>,
}

/// A QSealC rotation waiting for the bank: what the profile switches to once the bank has
/// the new certificate.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingRotation {
    /// The new QSealC certificate (PEM file).
    pub qseal_cert: String,
    /// The new QSealC key: a key file, or a `pkcs11:` URI (kept 0600 with the state, as the
    /// profile keeps it).
    pub qseal_key: String,
    /// The Signature keyId to switch to, when one was given (`--key-id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The kid sent for the new key, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The new certificate, base64 DER as in `x5c`: how it is recognised in the bank's record.
    pub certificate: String,
}

impl std::fmt::Debug for PendingRotation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key may be a URI with a pin-value: left out.
        f.debug_struct("PendingRotation")
            .field("qseal_cert", &self.qseal_cert)
            .field("key_id", &self.key_id)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

/// Whether a registration `record` carries the certificate `certificate` (base64 DER) in its
/// `jwks` (an object or a bare array; `x5c` an array or a string): `None` when the record
/// shows no keys at all (a bank that registers no key through the API), so that it cannot say.
pub fn record_carries(record: &Value, certificate: &str) -> Option<bool> {
    let keys = match record.get("jwks") {
        Some(Value::Object(o)) => o.get("keys").and_then(Value::as_array)?,
        Some(Value::Array(a)) => a,
        _ => return None,
    };
    Some(keys.iter().any(|key| match key.get("x5c") {
        Some(Value::Array(chain)) => chain.first().and_then(Value::as_str) == Some(certificate),
        Some(Value::String(leaf)) => leaf == certificate,
        _ => false,
    }))
}

/// The kid the `record` gives the key whose certificate is `certificate` (base64 DER).
pub fn kid_of_certificate(record: &Value, certificate: &str) -> Option<String> {
    let keys = match record.get("jwks") {
        Some(Value::Object(o)) => o.get("keys").and_then(Value::as_array)?,
        Some(Value::Array(a)) => a,
        _ => return None,
    };
    keys.iter()
        .find(|key| match key.get("x5c") {
            Some(Value::Array(chain)) => chain.first().and_then(Value::as_str) == Some(certificate),
            Some(Value::String(leaf)) => leaf == certificate,
            _ => false,
        })
        .and_then(|key| key.get("kid"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

impl std::fmt::Debug for RegistrationState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrationState")
            .field("bank", &self.bank)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "registration_access_token",
                &self
                    .registration_access_token
                    .as_ref()
                    .map(|_| "<redacted>"),
            )
            .field("registration_client_uri", &self.registration_client_uri)
            .field("kid", &self.kid)
            .field("status", &self.status)
            .field("pending_rotation", &self.pending_rotation)
            .finish()
    }
}

/// The secret fields of a record, never kept in [`RegistrationState::record`] nor printed.
const SECRET_FIELDS: [&str; 2] = ["client_secret", "registration_access_token"];

impl RegistrationState {
    /// The record as the bank sent it, with the secrets replaced by `"<redacted>"`: what may
    /// be printed.
    pub fn public_record(&self) -> Value {
        redact(self.record.clone())
    }
}

fn redact(mut record: Value) -> Value {
    if let Value::Object(map) = &mut record {
        for name in SECRET_FIELDS {
            if let Some(v) = map.get_mut(name)
                && !v.is_null()
            {
                *v = Value::String("<redacted>".to_owned());
            }
        }
    }
    record
}

/// Registration states on disk: `DIR/PROFILE.json`, created 0600 and replaced atomically.
#[derive(Debug, Clone)]
pub struct RegistrationStore {
    dir: PathBuf,
}

impl RegistrationStore {
    /// A store in `dir` (created when first written), e.g. the token store's folder plus
    /// `registrations`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        RegistrationStore { dir: dir.into() }
    }

    fn path(&self, profile: &str) -> PathBuf {
        self.dir.join(format!("{profile}.json"))
    }

    /// The state of `profile`, if it registered.
    pub fn load(&self, profile: &str) -> Result<Option<RegistrationState>, RegistrationError> {
        let path = self.path(profile);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(store_error(&path, e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| RegistrationError::Store {
                path: path.display().to_string(),
                detail: format!(
                    "not a registration state ({e}); delete the file and register again"
                ),
            })
    }

    /// Saves the state of `profile` (0600, atomically).
    pub fn save(&self, profile: &str, state: &RegistrationState) -> Result<(), RegistrationError> {
        let path = self.path(profile);
        std::fs::create_dir_all(&self.dir).map_err(|e| store_error(&self.dir, e))?;
        let text = serde_json::to_vec_pretty(state).map_err(|e| RegistrationError::Store {
            path: path.display().to_string(),
            detail: e.to_string(),
        })?;
        let mut temp =
            tempfile::NamedTempFile::new_in(&self.dir).map_err(|e| store_error(&self.dir, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o600))
                .map_err(|e| store_error(temp.path(), e))?;
        }
        std::io::Write::write_all(&mut temp, &text).map_err(|e| store_error(&path, e))?;
        temp.as_file()
            .sync_all()
            .map_err(|e| store_error(&path, e))?;
        temp.persist(&path)
            .map_err(|e| store_error(&path, e.error))?;
        Ok(())
    }

    /// Forgets the state of `profile`; whether there was one.
    pub fn delete(&self, profile: &str) -> Result<bool, RegistrationError> {
        let path = self.path(profile);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(store_error(&path, e)),
        }
    }
}

fn store_error(path: &Path, e: std::io::Error) -> RegistrationError {
    RegistrationError::Store {
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

/// The registration endpoint of `profile` at `bank`: the profile's `registration_url`, else
/// the bank's `[registration] path`, which is one of
///
/// - a URL (`https://register.bank.example/v1/register`), taken as it is;
/// - a path from the root of the API's host (`/v1/register`: the spec's `basePath` `/v1` and
///   its `/register`; `/psd2/register` at BNP Paribas): the API's own base path
///   (`/stet/psd2/v1.5`) is not the registration API's, so it is replaced, not extended;
/// - a relative path (`register`), below the API's base path.
///
/// The path is set explicitly rather than through `Url::join`, which would read `//host/x`
/// as another host and drop the base's last segment for a relative path.
pub fn endpoint(profile: &Profile, bank: &BankProfile) -> Result<Url, RegistrationError> {
    if let Some(url) = &profile.registration_url {
        return Ok(url.clone());
    }
    registration_endpoint(&profile.api_base, &bank.registration.path).map_err(|detail| {
        RegistrationError::Invalid(format!(
            "bank {}: registration.path `{}` on {}: {detail}; set `registration_url` in the \
             profile",
            bank.name, bank.registration.path, profile.api_base
        ))
    })
}

/// `path` (a URL, a path from the host's root, or a path below the base) against `api_base`.
fn registration_endpoint(api_base: &Url, path: &str) -> Result<Url, String> {
    if path.starts_with("https://") || path.starts_with("http://") {
        return Url::parse(path).map_err(|e| e.to_string());
    }
    if path.starts_with("//") || path.contains(['?', '#']) || path.is_empty() {
        return Err(
            "a registration path is `/from/the/host/root`, `below/the/base` or a URL".into(),
        );
    }
    let mut url = api_base.clone();
    url.set_query(None);
    url.set_fragment(None);
    if path.starts_with('/') {
        url.set_path(path);
    } else {
        let base = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base}/{path}"));
    }
    Ok(url)
}

/// Registers, reads, updates and deletes the profile's registration at its bank.
#[derive(Debug, Clone)]
pub struct Registrar {
    transport: Transport,
    /// For calls without a body, when the signed list names `content-type`.
    bodiless: Transport,
    bank: BankProfile,
    endpoint: Url,
    basic: Option<Secret>,
    token_scope: Option<String>,
}

impl Registrar {
    /// A registrar for `profile` at `bank`: a transport for the registration endpoint, signed
    /// or not and authenticated as the bank's rules say.
    pub fn new(profile: &Profile, bank: &BankProfile) -> Result<Self, RegistrationError> {
        let rules = &bank.registration;
        let endpoint = endpoint(profile, bank)?;
        let mut p = profile.clone();
        p.api_base = endpoint.clone();
        let mut token_scope = None;
        let mut basic = None;
        match rules.auth {
            RegistrationAuth::ClientCredentials => {
                p.client_id = Some(rules.token_client_id.clone());
                p.client_secret = None;
                p.client_auth = stet_transport::ClientAuth::TlsClientAuth;
                p.token_url = Some(endpoint.join(&rules.token_path).map_err(|e| {
                    RegistrationError::Invalid(format!(
                        "bank {}: registration.token_path `{}`: {e}",
                        bank.name, rules.token_path
                    ))
                })?);
                token_scope = Some(rules.token_scope.clone());
            }
            RegistrationAuth::Basic => {
                let meta = &profile.registration;
                let (Some(user), Some(var)) = (&meta.portal_user, &meta.portal_password_env) else {
                    return Err(RegistrationError::Invalid(format!(
                        "{} registers with the developer portal's credentials: set `portal_user` \
                         and `portal_password_env` (the variable holding the password) in profile \
                         `{}`'s registration table",
                        bank.display_name, profile.name
                    )));
                };
                let password = std::env::var(var).map_err(|_| {
                    RegistrationError::Invalid(format!(
                        "portal_password_env names {var}, which is not set"
                    ))
                })?;
                use base64::Engine as _;
                basic = Some(Secret::new(format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
                )));
            }
            RegistrationAuth::Signed | RegistrationAuth::None => {}
        }
        let build = |headers: Option<Vec<String>>| {
            let mut builder = crate::transport_builder(&p, bank).accept("application/json");
            if let Some(headers) = headers {
                // The registration's list for every request: the bank's list for API calls
                // without a body (Crédit Agricole's signs `authorization`, which a
                // registration read does not carry) must not stand in for it.
                let without_body: Vec<String> = headers
                    .iter()
                    .filter(|h| *h != "content-type")
                    .cloned()
                    .collect();
                builder = builder
                    .signing_profile(
                        bank.signing_profile(p.key_id.clone())
                            .with_headers(&headers),
                    )
                    .signing_profile_without_body(
                        bank.signing_profile(p.key_id.clone())
                            .with_headers(&without_body),
                    );
            }
            if matches!(rules.auth, RegistrationAuth::Basic | RegistrationAuth::None) {
                builder = builder.unsigned();
            }
            builder.build()
        };
        let headers = (!rules.signed_headers.is_empty()).then(|| rules.signed_headers.clone());
        let transport = build(headers.clone())?;
        let bodiless = match &headers {
            Some(list) if list.iter().any(|h| h == "content-type") => build(Some(
                list.iter()
                    .filter(|h| *h != "content-type")
                    .cloned()
                    .collect(),
            ))?,
            _ => transport.clone(),
        };
        Ok(Registrar {
            transport,
            bodiless,
            bank: bank.clone(),
            endpoint,
            basic,
            token_scope,
        })
    }

    /// The registration endpoint.
    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    fn rules(&self) -> &RegistrationRules {
        &self.bank.registration
    }

    /// The `Authorization` of a creation.
    fn create_auth(&self) -> Auth {
        if let Some(basic) = &self.basic {
            return Auth::Header(basic.clone());
        }
        match &self.token_scope {
            Some(scope) => Auth::ClientCredentials(vec![scope.clone()]),
            None => Auth::None,
        }
    }

    /// The `Authorization` of a read, update or delete.
    fn manage_auth(&self, state: &RegistrationState) -> Auth {
        match (
            &state.registration_access_token,
            self.rules().manage_with_token,
        ) {
            (Some(rat), true) => Auth::Header(Secret::new(format!("Bearer {rat}"))),
            _ => self.create_auth(),
        }
    }

    /// Where the registration `state` is managed: its `registration_client_uri` when it is an
    /// absolute URL on the endpoint's host, else the endpoint plus `/{client_id}`.
    fn client_url(&self, state: &RegistrationState) -> Result<Url, RegistrationError> {
        if let Some(uri) = &state.registration_client_uri
            && let Ok(url) = Url::parse(uri)
            && stet_transport::origin(&url) == stet_transport::origin(&self.endpoint)
        {
            return Ok(url);
        }
        if state.client_id.is_empty() {
            return Err(RegistrationError::Invalid(
                "the bank has not issued a client id yet (approval pending): wait for its message"
                    .to_owned(),
            ));
        }
        let mut url = self.endpoint.clone();
        url.path_segments_mut()
            .map_err(|_| {
                RegistrationError::Invalid(format!("{} cannot take a path", self.endpoint))
            })?
            .pop_if_empty()
            .push(&state.client_id);
        Ok(url)
    }

    /// `POST`s `body`; the bank's answer as a state.
    pub async fn create(&self, body: &Value) -> Result<RegistrationState, RegistrationError> {
        let request = StetRequest::with_body(
            Method::POST,
            self.endpoint.as_str(),
            json_bytes(body),
            self.create_auth(),
        );
        let response = self.transport.send(&request).await?;
        let expected = self.rules().created_status;
        if (200..300).contains(&response.status) && response.status != expected {
            // Either success is read the same; the difference is worth a line at -v: a bank
            // whose answer no longer matches its profile may have changed more than that.
            tracing::info!(
                "{} answered the registration {} where its bank profile says {expected} \
                 (`created_status`): read all the same; check the bank profile if the bank \
                 changed its API",
                self.bank.display_name,
                response.status
            );
        }
        self.state_from(Method::POST, response, None, body)
    }

    /// `GET`s the registration.
    pub async fn read(
        &self,
        state: &RegistrationState,
    ) -> Result<RegistrationState, RegistrationError> {
        let url = self.client_url(state)?;
        let request = StetRequest::get(url.as_str(), self.manage_auth(state));
        let response = self.bodiless.send(&request).await?;
        self.state_from(Method::GET, response, Some(state), &Value::Null)
    }

    /// `PUT`s `body` (a full registration, as the spec wants).
    pub async fn update(
        &self,
        state: &RegistrationState,
        body: &Value,
    ) -> Result<RegistrationState, RegistrationError> {
        let url = self.client_url(state)?;
        let request = StetRequest::with_body(
            Method::PUT,
            url.as_str(),
            json_bytes(body),
            self.manage_auth(state),
        );
        let response = self.transport.send(&request).await?;
        self.state_from(Method::PUT, response, Some(state), body)
    }

    /// Whether `bank` lets a TPP delete its registration: an error saying what to do when
    /// it does not (checked before any credential is asked for).
    pub fn check_delete(bank: &BankProfile) -> Result<(), RegistrationError> {
        if bank.registration.delete {
            return Ok(());
        }
        Err(RegistrationError::Unsupported {
            bank: bank.display_name.clone(),
            operation: "DELETE",
            why: "ask the bank's support to end it".to_owned(),
        })
    }

    /// `DELETE`s the registration.
    pub async fn delete(&self, state: &RegistrationState) -> Result<(), RegistrationError> {
        Self::check_delete(&self.bank)?;
        let url = self.client_url(state)?;
        let mut request = StetRequest::get(url.as_str(), self.manage_auth(state));
        request.method = Method::DELETE;
        let response = self.bodiless.send(&request).await?;
        match response.status {
            200 | 202 | 204 => Ok(()),
            _ => Err(self.refusal(&Method::DELETE, response)),
        }
    }

    fn refusal(
        &self,
        method: &Method,
        response: stet_transport::StetResponse,
    ) -> RegistrationError {
        let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        if let Some(error) = body.get("error").and_then(Value::as_str)
            && response.status == 400
        {
            let hint = match error {
                "invalid_redirect_uri" => {
                    "register only HTTPS redirect URIs the bank accepts \
                                           (`redirect_uris` in the profile's registration table, \
                                           or `redirect_uri`)"
                }
                "invalid_client_metadata" => {
                    "check the fields the bank names, and the bank \
                                              profile's [registration] variant"
                }
                "invalid_software_statement" | "unapproved_software_statement" => {
                    "the bank does not accept this software statement"
                }
                _ => "see the bank's registration documentation",
            };
            return RegistrationError::Refused {
                error: error.to_owned(),
                description: body
                    .get("error_description")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                hint: hint.to_owned(),
            };
        }
        TransportError::Http {
            method: method.to_string(),
            url: response.url.to_string(),
            status: response.status,
            bank_message: stet_transport::bank_message(&response.body),
            body: response.body,
        }
        .into()
    }

    /// Reads a registration record (or an approval message) into a state.
    fn state_from(
        &self,
        method: Method,
        response: stet_transport::StetResponse,
        previous: Option<&RegistrationState>,
        sent: &Value,
    ) -> Result<RegistrationState, RegistrationError> {
        if !(200..300).contains(&response.status) {
            return Err(self.refusal(&method, response));
        }
        let unreadable = |detail: String| RegistrationError::Unreadable {
            method: method.to_string(),
            url: response.url.to_string(),
            status: response.status,
            detail,
        };
        let record: Value = serde_json::from_slice(&response.body)
            .map_err(|e| unreadable(format!("not JSON ({e})")))?;
        let text = |name: &str| record.get(name).and_then(Value::as_str).map(str::to_owned);
        let mut state = previous.cloned().unwrap_or_default();
        state.bank = self.bank.name.clone();
        // "Your request has been recorded. We will contact you": no record, approval pending.
        if text("client_id").is_none() {
            let message = text("message")
                .ok_or_else(|| unreadable("no client_id and no message".to_owned()))?;
            state.status = "pending".to_owned();
            state.message = Some(message);
            return Ok(state);
        }
        state.client_id = text("client_id").unwrap_or_default();
        for (field, slot) in [
            ("client_secret", &mut state.client_secret),
            (
                "registration_access_token",
                &mut state.registration_access_token,
            ),
            (
                "registration_client_uri",
                &mut state.registration_client_uri,
            ),
        ] {
            if let Some(v) = text(field) {
                *slot = Some(v);
            }
        }
        // The kid: the bank's (bank-assigned), else the one sent.
        let keys = |v: &Value| -> Vec<Value> {
            match v.get("jwks") {
                Some(Value::Object(o)) => o
                    .get("keys")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
                Some(Value::Array(a)) => a.clone(),
                _ => Vec::new(),
            }
        };
        let kid_of = |keys: Vec<Value>| {
            keys.last()
                .and_then(|k| k.get("kid"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        if let Some(kid) = kid_of(keys(&record)).or_else(|| kid_of(keys(sent))) {
            state.kid = Some(kid);
        }
        state.status = if method != Method::POST
            && method != Method::GET
            && self.rules().approval == Approval::ManualUpdates
            || self.rules().approval == Approval::Manual && method == Method::POST
        {
            "pending".to_owned()
        } else {
            "active".to_owned()
        };
        state.message = text("message");
        state.record = redact(record);
        Ok(state)
    }
}

fn json_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// The registration store next to the token store (`…/stet/registrations`).
pub fn default_store(tokens_dir: &Path) -> RegistrationStore {
    RegistrationStore::new(
        tokens_dir
            .parent()
            .map(|p| p.join("registrations"))
            .unwrap_or_else(|| tokens_dir.join("registrations")),
    )
}

#[cfg(test)]
mod tests {
    use super::registration_endpoint;
    use url::Url;

    #[test]
    fn the_registration_endpoint_from_the_api_base() {
        let base = Url::parse("https://api.bank.example:8443/stet/psd2/v1.5").unwrap();
        let at = |path: &str| registration_endpoint(&base, path).map(String::from);
        // The spec's basePath /v1 and /register, on the API's host and port.
        assert_eq!(
            at("/v1/register").unwrap(),
            "https://api.bank.example:8443/v1/register"
        );
        assert_eq!(
            at("/psd2/register").unwrap(),
            "https://api.bank.example:8443/psd2/register"
        );
        // Below the API base, with or without its trailing slash.
        assert_eq!(
            at("register").unwrap(),
            "https://api.bank.example:8443/stet/psd2/v1.5/register"
        );
        let slash = Url::parse("https://api.bank.example/v1/?x=1").unwrap();
        assert_eq!(
            registration_endpoint(&slash, "register").unwrap().as_str(),
            "https://api.bank.example/v1/register"
        );
        assert_eq!(
            at("https://register.bank.example/v1/register").unwrap(),
            "https://register.bank.example/v1/register"
        );
        // Never another host by accident.
        assert!(at("//evil.example/register").is_err());
        assert!(at("").is_err());
    }
}
