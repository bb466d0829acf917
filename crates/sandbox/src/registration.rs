//! Dynamic client registration (STET "OAuth2 technical setup" 1.0.5), in the spec's form and
//! in six banks' variants, each at its own endpoint:
//!
//! | endpoint | variant | what it insists on |
//! |---|---|---|
//! | `/v1/register` | the spec (its `basePath` is `/v1`) | signed; `jwks {keys}` with `x5c` arrays; lowercase grants; 201; `GET/PUT/DELETE /register/{id}` with `Bearer <registration_access_token>` |
//! | `/psd2/register` | BNP Paribas | signed; `context: "psd2"`; a client secret; an update is "recorded" and approved by hand (200 with a message, nothing changed until `POST /sandbox/registrations/approve`) |
//! | `/psd2_actor_registration/v1/tpp_consumers` | Crédit Agricole | bare `jwks` array, `x5c` a string, grants in capitals, no scope; 200; token `NOTAPPLICABLE`, sent back in `PUT` bodies; no `DELETE` |
//! | `/cic/oauth2/registrations` | CIC / Crédit Mutuel | not signed; `kid: null`, the bank assigns it; a `PUT` with a second key gets `<kid>_next` |
//! | `/lcl/register` | LCL | signed; `scope` joined by commas; `kid` the QSealC's serial in decimal, `key_ops: ["verify"]`, `x5t#S256`; 201 with `client_id` and `client_id_issued_at` only; managed with the QWAC and a signature, no token; a `PUT` may be signed by the key it registers; no `DELETE` |
//! | `/lbp/register` | La Banque Postale | HTTP Basic with the developer portal's credentials (the sandbox's `client_id` and `client_secret`), not signed; no `jwks`; 201 with a client secret and `client_id_issued_at` in milliseconds; managed with the same credentials; no `DELETE` |
//! | `/stet/setting/v1/register` | BPCE | a client-credentials token first (`POST /stet/psd2/oauth/token`, `client_id=PSD2_TPPRegister`, `scope=manageRegistration`), then signed calls with it; a `contact` object, not `contacts`; `keys_ops: ["verify"]`; `kid` the serial in decimal; `scope` joined by commas; 200, absent fields as `null`, grants echoed in capitals, `client_id_issued_at` as an ISO date-time; no `DELETE` |
//!
//! Everywhere: the QWAC on the TLS link is the client; `redirect_uris` must be HTTPS (or
//! loopback HTTP); `token_endpoint_auth_method`, when sent, `tls_client_auth`;
//! `provider_legal_id` and the QSealC's organizationIdentifier must be the QWAC's; `scope` no
//! wider than the QSealC's PSD2 roles. A refusal is the spec's `ErrorModel_400`
//! (`invalid_redirect_uri`, `invalid_client_metadata`) or `ErrorModel` (401, 403, 405).
//!
//! A signed call's keyId names the sandbox's QSealC, a kid registered before, or a key the
//! request itself registers (by its kid; and, for a certificate URL the sandbox does not know,
//! the request's own certificate: the sandbox cannot fetch the URL, so it takes what the
//! request registers as what is published there).
//!
//! Two sandbox-only endpoints play the bank's back office (no client certificate needed):
//! `GET /sandbox/registrations/requests` lists every registration request received
//! (`[{"method", "path", "body"}]`, the body as JSON, or `null`), so that a test can check
//! what a TPP really sent; `POST /sandbox/registrations/approve` with `{"client_id": ID}` (or
//! `{}` for all) applies the updates recorded for approval by hand, as the bank's staff would,
//! and answers `{"approved": N}`.
//!
//! A registered client is then a client of the bank: its `client_id` works at `/authorize`
//! and `/token` (with the QWAC it registered with), and its kids are accepted as Signature
//! keyIds.

use std::collections::HashMap;
use std::time::{Instant, SystemTime};

use base64::Engine as _;
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use stet_httpsig::{PublicKey, VerifyPolicy};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::server::{Reply, Req};
use crate::state::{State, organization_identifier, random_hex};

/// The registration variants the sandbox plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Variant {
    Spec,
    Bnp,
    CreditAgricole,
    Cic,
    Lcl,
    Lbp,
    Bpce,
}

impl Variant {
    const ALL: [(Variant, &'static str); 7] = [
        // The spec's `basePath` (`/v1`) and its `/register`.
        (Variant::Spec, "/v1/register"),
        (Variant::Bnp, "/psd2/register"),
        (
            Variant::CreditAgricole,
            "/psd2_actor_registration/v1/tpp_consumers",
        ),
        (Variant::Cic, "/cic/oauth2/registrations"),
        (Variant::Lcl, "/lcl/register"),
        (Variant::Lbp, "/lbp/register"),
        (Variant::Bpce, "/stet/setting/v1/register"),
    ];

    fn base(self) -> &'static str {
        Variant::ALL
            .iter()
            .find(|(v, _)| *v == self)
            .map(|(_, b)| *b)
            .unwrap_or("/v1/register")
    }

    fn signed(self) -> bool {
        !matches!(self, Variant::Cic | Variant::Lbp)
    }

    /// Whether the kid must be the QSealC's serial number in decimal.
    fn serial_kid(self) -> bool {
        matches!(self, Variant::Lcl | Variant::Bpce)
    }

    /// Whether `scope` is joined by commas rather than spaces.
    fn comma_scope(self) -> bool {
        matches!(self, Variant::Lcl | Variant::Bpce)
    }

    /// Whether `DELETE` exists.
    fn deletes(self) -> bool {
        matches!(self, Variant::Spec | Variant::Bnp | Variant::Cic)
    }

    /// Whether reads and updates carry the `registration_access_token`: elsewhere the bank
    /// knows the caller by its QWAC and its portal credentials or registration token.
    fn managed_with_token(self) -> bool {
        matches!(
            self,
            Variant::Spec | Variant::Bnp | Variant::CreditAgricole | Variant::Cic
        )
    }
}

/// BPCE's token endpoint for registration calls (client credentials, `PSD2_TPPRegister`).
pub(crate) const BPCE_TOKEN_PATH: &str = "/stet/psd2/oauth/token";
const BPCE_TOKEN_CLIENT: &str = "PSD2_TPPRegister";
const BPCE_TOKEN_SCOPE: &str = "manageRegistration";

/// A big-endian unsigned number in decimal, by repeated division (the client builds it the
/// other way round, by multiplication: the two meet only if both are right).
fn decimal(bytes: &[u8]) -> String {
    let mut number: Vec<u8> = bytes.iter().copied().skip_while(|b| *b == 0).collect();
    let mut digits = Vec::new();
    while !number.is_empty() {
        let mut remainder = 0u32;
        for byte in number.iter_mut() {
            let value = (remainder << 8) | u32::from(*byte);
            *byte = (value / 10) as u8;
            remainder = value % 10;
        }
        digits.push(b'0' + remainder as u8);
        number = number.into_iter().skip_while(|b| *b == 0).collect();
    }
    if digits.is_empty() {
        return "0".to_owned();
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

/// The certificate's serial number in decimal.
fn serial_decimal(der: &[u8]) -> Option<String> {
    use der::Decode;
    let cert = x509_cert::Certificate::from_der(der).ok()?;
    Some(decimal(cert.tbs_certificate.serial_number.as_bytes()))
}

/// The keys a registration body carries: (kid, certificate DER), `x5c` as an array or a string.
fn body_keys(body: &Value) -> Vec<(Option<String>, Vec<u8>)> {
    let keys = match body.get("jwks") {
        Some(Value::Object(o)) => o.get("keys").and_then(Value::as_array),
        Some(Value::Array(a)) => Some(a),
        _ => None,
    };
    keys.into_iter()
        .flatten()
        .filter_map(|key| {
            let x5c = match key.get("x5c") {
                Some(Value::Array(a)) => a.first().and_then(Value::as_str),
                Some(Value::String(s)) => Some(s.as_str()),
                _ => None,
            }?;
            let der = base64::engine::general_purpose::STANDARD
                .decode(x5c.as_bytes())
                .ok()?;
            let kid = key.get("kid").and_then(Value::as_str).map(str::to_owned);
            Some((kid, der))
        })
        .collect()
}

/// The keys a registration body carries, checked: the kid as sent, and the key.
type BodyKeys = Vec<(Option<String>, PublicKey)>;

/// A registered client.
#[derive(Debug, Clone)]
pub(crate) struct Registered {
    pub(crate) variant: Variant,
    /// The organizationIdentifier of the QWAC it registered with.
    pub(crate) org: String,
    pub(crate) access_token: String,
    pub(crate) record: Value,
    /// Its QSealC keys by kid.
    pub(crate) keys: Vec<(String, PublicKey)>,
    /// An update recorded for approval by hand (BNP Paribas): the body and its keys, applied
    /// by `POST /sandbox/registrations/approve`.
    pub(crate) pending: Option<(Value, BodyKeys)>,
}

/// The registration endpoint and client id of a path, if it is a registration path.
pub(crate) fn route(path: &str) -> Option<(Variant, Option<String>)> {
    for (variant, base) in Variant::ALL {
        if path == base {
            return Some((variant, None));
        }
        if let Some(id) = path.strip_prefix(base).and_then(|r| r.strip_prefix('/'))
            && !id.is_empty()
            && !id.contains('/')
        {
            return Some((variant, Some(id.to_owned())));
        }
    }
    None
}

fn invalid(error: &str, description: &str) -> Reply {
    let mut d: String = description.chars().take(140).collect();
    if d.len() < description.len() {
        d.pop();
        d.push('…');
    }
    Reply::plain_json(400, &json!({"error": error, "error_description": d}))
}

/// Whether the QSealC (DER) carries the PSD2 role `0.4.0.19495.1.n`.
fn has_role(der: &[u8], n: u8) -> bool {
    let oid = [0x06, 0x07, 0x04, 0x00, 0x81, 0x98, 0x27, 0x01, n];
    der.windows(oid.len()).any(|w| w == oid)
}

fn role_of(scope: &str) -> Option<u8> {
    match scope {
        "aisp" => Some(3),
        "pisp" => Some(2),
        "cbpii" | "piisp" => Some(4),
        _ => None,
    }
}

impl State {
    /// Every registration request (the client certificate is already known to be there).
    pub(crate) fn registration(&self, req: &Req, variant: Variant, id: Option<String>) -> Reply {
        let path = req.path.clone();
        let body = (!req.body.is_empty())
            .then(|| serde_json::from_slice::<Value>(&req.body).ok())
            .flatten();
        self.lock().registration_requests.push(json!({
            "method": req.method,
            "path": path,
            "body": body,
        }));
        if variant.signed()
            && let Err(reply) = self.check_registration_signature(req, variant)
        {
            return reply;
        }
        let org = req
            .peer
            .as_deref()
            .and_then(|c| organization_identifier(c))
            .unwrap_or_default();
        if let Err(reply) = self.check_caller(req, variant, &org) {
            return reply;
        }
        match (req.method.as_str(), id) {
            ("POST", None) => self.register(req, variant, &org),
            ("GET", Some(id)) => match self.authorised(req, variant, &id, &org, None) {
                Ok(r) => Reply::plain_json(200, &r.record),
                Err(reply) => reply,
            },
            ("PUT", Some(id)) => self.update_registration(req, variant, &id, &org),
            ("DELETE", Some(_)) if !variant.deletes() => self.error(
                405,
                &path,
                "registrations cannot be deleted here: ask the bank's support",
                None,
            ),
            ("DELETE", Some(id)) => match self.authorised(req, variant, &id, &org, None) {
                Ok(_) => {
                    self.lock().registrations.remove(&id);
                    Reply::new(204)
                }
                Err(reply) => reply,
            },
            (method, _) => self.error(
                405,
                &path,
                &format!("{method} is not a registration operation here"),
                None,
            ),
        }
    }

    /// Who may call besides the QWAC: La Banque Postale wants the developer portal's
    /// credentials (the sandbox's client id and secret) in HTTP Basic; BPCE a
    /// `manageRegistration` token of the same QWAC.
    fn check_caller(&self, req: &Req, variant: Variant, org: &str) -> Result<(), Reply> {
        let authorization = req.header("authorization").unwrap_or_default();
        match variant {
            Variant::Lbp => {
                let expected = base64::engine::general_purpose::STANDARD.encode(format!(
                    "{}:{}",
                    self.info.client_id, self.info.client_secret
                ));
                if authorization.strip_prefix("Basic ").map(str::trim) != Some(expected.as_str()) {
                    return Err(self
                        .error(
                            401,
                            &req.path,
                            "registration needs the developer portal's credentials in HTTP Basic \
                             (missing or wrong)",
                            None,
                        )
                        .with_header("WWW-Authenticate", "Basic realm=\"developer portal\""));
                }
            }
            Variant::Bpce => {
                let token = authorization.strip_prefix("Bearer ").unwrap_or_default();
                let valid = self
                    .lock()
                    .registration_tokens
                    .get(token)
                    .is_some_and(|(owner, expires)| owner == org && Instant::now() < *expires);
                if !valid {
                    return Err(self
                        .error(
                            401,
                            &req.path,
                            &format!(
                                "registration needs a `{BPCE_TOKEN_SCOPE}` token: client credentials \
                                 with client_id {BPCE_TOKEN_CLIENT} at {BPCE_TOKEN_PATH}, with this QWAC"
                            ),
                            None,
                        )
                        .with_header("WWW-Authenticate", "Bearer error=\"invalid_token\""));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// `POST /stet/psd2/oauth/token`: BPCE's client-credentials token for registration calls,
    /// bound to the QWAC's organisation.
    pub(crate) fn registration_token(&self, req: &Req, org: &str) -> Reply {
        if req.method != "POST" {
            return self.error(405, &req.path, "use POST for the token endpoint", None);
        }
        let form: Vec<(String, String)> = form_urlencoded::parse(&req.body).into_owned().collect();
        let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        let refuse = |status: u16, error: &str, description: String| {
            Reply::plain_json(
                status,
                &json!({"error": error, "error_description": description}),
            )
        };
        if get("grant_type") != Some("client_credentials") {
            return refuse(
                400,
                "unsupported_grant_type",
                "only client_credentials here".into(),
            );
        }
        if get("client_id") != Some(BPCE_TOKEN_CLIENT) {
            return refuse(
                401,
                "invalid_client",
                format!("the registration client is {BPCE_TOKEN_CLIENT}"),
            );
        }
        let scopes: Vec<&str> = get("scope").unwrap_or_default().split(' ').collect();
        if scopes != [BPCE_TOKEN_SCOPE] {
            return refuse(
                400,
                "invalid_scope",
                format!("the scope of a registration token is {BPCE_TOKEN_SCOPE}"),
            );
        }
        let token = random_hex();
        let lifetime = self.config.token_lifetime;
        self.lock()
            .registration_tokens
            .insert(token.clone(), (org.to_owned(), Instant::now() + lifetime));
        Reply::plain_json(
            200,
            &json!({
                "access_token": token,
                "token_type": "Bearer",
                "expires_in": lifetime.as_secs(),
                "scope": BPCE_TOKEN_SCOPE,
            }),
        )
    }

    /// Registration calls are signed with the QSealC URL, the QSealC's file name, a kid
    /// registered before, or a key the request registers (see the module's notes).
    fn check_registration_signature(&self, req: &Req, variant: Variant) -> Result<(), Reply> {
        let mut request = stet_httpsig::Request::new(req.method.clone(), req.target.clone());
        for (name, value) in &req.headers {
            request.append_header(name.clone(), value.clone());
        }
        request.set_body(req.body.to_vec());
        let mut keys = self.key_resolver();
        let body: Value = serde_json::from_slice(&req.body).unwrap_or(Value::Null);
        let carried: Vec<(Option<String>, PublicKey)> = body_keys(&body)
            .into_iter()
            .filter_map(|(kid, der)| Some((kid, PublicKey::from_certificate_der(&der).ok()?)))
            .collect();
        for (kid, key) in &carried {
            if let Some(kid) = kid {
                keys.entry(kid.clone()).or_insert_with(|| key.clone());
            }
        }
        let key_id = req
            .header("signature")
            .and_then(|v| stet_httpsig::SignatureParams::parse(v).ok())
            .map(|p| p.key_id);
        if let (Some(key_id), [(_, key)]) = (key_id, carried.as_slice())
            && key_id.starts_with("https://")
        {
            keys.entry(key_id).or_insert_with(|| key.clone());
        }
        // The spec's list; BNP's registration signs no Date; LCL's signs no X-Request-ID.
        let required = match variant {
            Variant::Lcl => ["(request-target)", "date"],
            _ => ["(request-target)", "x-request-id"],
        };
        let policy = VerifyPolicy {
            required_headers: required.map(str::to_owned).to_vec(),
            ..VerifyPolicy::stet()
        };
        stet_httpsig::verify_request(&request, &policy, &keys, SystemTime::now())
            .map(drop)
            .map_err(|e| self.error(401, &req.path, &e.to_string(), None))
    }

    /// The registration `id`, if the caller may manage it: same QWAC organisation, and the
    /// registration access token (in the `Authorization` header, or the body for Crédit
    /// Agricole).
    fn authorised(
        &self,
        req: &Req,
        variant: Variant,
        id: &str,
        org: &str,
        body: Option<&Value>,
    ) -> Result<Registered, Reply> {
        let found = self.lock().registrations.get(id).cloned();
        let unauthorised = |m: &str| {
            self.error(401, &req.path, m, None)
                .with_header("WWW-Authenticate", "Bearer error=\"invalid_token\"")
        };
        let Some(r) = found.filter(|r| r.variant == variant) else {
            return Err(unauthorised(&format!(
                "no registration `{id}` at this endpoint"
            )));
        };
        if r.org != org {
            return Err(self.error(
                403,
                &req.path,
                "this registration belongs to another TPP's QWAC",
                None,
            ));
        }
        if !variant.managed_with_token() {
            // Known by the QWAC (above) and the portal credentials or registration token
            // checked on the way in.
            return Ok(r);
        }
        let presented = match variant {
            Variant::CreditAgricole => body
                .and_then(|b| b.get("registration_access_token"))
                .and_then(Value::as_str)
                .map(str::to_owned)
                .or_else(|| (req.method == "GET").then(|| r.access_token.clone())),
            _ => req
                .header("authorization")
                .and_then(|a| a.strip_prefix("Bearer "))
                .map(str::to_owned),
        };
        if presented.as_deref() != Some(r.access_token.as_str()) {
            return Err(unauthorised(
                "send the registration_access_token the bank gave (Authorization: Bearer …)",
            ));
        }
        Ok(r)
    }

    /// Checks a request body and gives its keys (kid as sent, key), or the spec's 400.
    #[allow(clippy::type_complexity)]
    fn check_metadata(
        &self,
        body: &Value,
        variant: Variant,
        org: &str,
    ) -> Result<Vec<(Option<String>, PublicKey)>, Reply> {
        let bad = |m: String| invalid("invalid_client_metadata", &m);
        let Some(obj) = body.as_object() else {
            return Err(bad("the body is not a JSON object".into()));
        };
        let text = |k: &str| obj.get(k).and_then(Value::as_str);
        let list = |k: &str| -> Vec<String> {
            obj.get(k)
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        let redirects = list("redirect_uris");
        if redirects.is_empty() {
            return Err(bad("redirect_uris is required".into()));
        }
        if let Some(bad_uri) = redirects
            .iter()
            .find(|u| !u.starts_with("https://") && !crate::oauth::is_loopback_redirect(u))
        {
            return Err(invalid(
                "invalid_redirect_uri",
                &format!("the redirection URI {bad_uri} is not allowed: HTTPS only"),
            ));
        }
        if let Some(m) = text("token_endpoint_auth_method")
            && m != "tls_client_auth"
        {
            return Err(bad(format!(
                "token_endpoint_auth_method `{m}`: only tls_client_auth"
            )));
        }
        if variant != Variant::Cic
            && variant != Variant::CreditAgricole
            && text("provider_legal_id") != Some(org)
        {
            return Err(bad(format!(
                "provider_legal_id must be the QWAC's organizationIdentifier `{org}`"
            )));
        }
        if text("client_name").is_none_or(str::is_empty) {
            return Err(bad("client_name is required".into()));
        }
        match variant {
            Variant::Cic => {}
            Variant::Bpce => {
                if obj.contains_key("contacts") {
                    return Err(bad(
                        "contacts is not read here: send one `contact` object".into()
                    ));
                }
                if obj
                    .get("contact")
                    .and_then(|c| c.get("email"))
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    return Err(bad(
                        "contact {contact_name, email, phone_number} is required".into(),
                    ));
                }
            }
            _ if list("contacts").is_empty() => {
                return Err(bad("contacts is required".into()));
            }
            _ => {}
        }
        let grants = list("grant_types");
        let upper = variant == Variant::CreditAgricole;
        if grants.is_empty()
            || grants
                .iter()
                .any(|g| (g.to_ascii_uppercase() == *g) != upper)
        {
            return Err(bad(format!(
                "grant_types must be {} names: got {grants:?}",
                if upper {
                    "UPPERCASE"
                } else {
                    "lowercase RFC 7591"
                }
            )));
        }
        if variant == Variant::Bnp && text("context") != Some("psd2") {
            return Err(bad("context must be \"psd2\"".into()));
        }
        if variant == Variant::CreditAgricole && obj.contains_key("scope") {
            return Err(bad("scope is not accepted here".into()));
        }
        // The keys.
        let keys = match (variant, obj.get("jwks")) {
            (Variant::Lbp, None) => Vec::new(),
            (Variant::Lbp, Some(_)) => {
                return Err(bad(
                    "jwks is not read here: the QSealC is registered on the developer portal"
                        .into(),
                ));
            }
            (Variant::CreditAgricole, Some(Value::Array(keys))) => keys.clone(),
            (Variant::CreditAgricole, _) => {
                return Err(bad("jwks must be an array of keys".into()));
            }
            (_, Some(Value::Object(set))) => set
                .get("keys")
                .and_then(Value::as_array)
                .cloned()
                .ok_or_else(|| bad("jwks.keys is required".into()))?,
            _ => return Err(bad("jwks {\"keys\": […]} is required".into())),
        };
        if keys.is_empty() && variant != Variant::Lbp {
            return Err(bad("jwks holds no key".into()));
        }
        let mut out = Vec::new();
        let mut qseal_der = Vec::new();
        for key in &keys {
            let x5c = match (variant, key.get("x5c")) {
                (Variant::CreditAgricole, Some(Value::String(s))) => s.clone(),
                (Variant::CreditAgricole, _) => return Err(bad("x5c must be a string".into())),
                (_, Some(Value::Array(a))) => a
                    .first()
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .ok_or_else(|| bad("x5c is empty".into()))?,
                _ => return Err(bad("x5c must be an array of certificates".into())),
            };
            let der = base64::engine::general_purpose::STANDARD
                .decode(x5c.as_bytes())
                .map_err(|_| bad("x5c is not base64 DER".into()))?;
            if organization_identifier(&der).as_deref() != Some(org) {
                return Err(bad(format!(
                    "the QSealC in x5c is not the QWAC's organisation `{org}`"
                )));
            }
            let public = PublicKey::from_certificate_der(&der)
                .map_err(|e| bad(format!("the QSealC in x5c: {e}")))?;
            let kid = key.get("kid").and_then(Value::as_str).map(str::to_owned);
            match (variant, &kid) {
                (Variant::Cic, Some(_)) if out.is_empty() && keys.len() == 1 => {
                    return Err(bad("kid must be null: the bank assigns it".into()));
                }
                (v, None) if v != Variant::Cic => {
                    return Err(bad("each key needs a kid".into()));
                }
                _ => {}
            }
            if variant.serial_kid() {
                let serial = serial_decimal(&der).unwrap_or_default();
                if kid.as_deref() != Some(serial.as_str()) {
                    return Err(bad(format!(
                        "kid must be the QSealC's serial number in decimal ({serial})"
                    )));
                }
            }
            let verify_only = |member: &str| {
                key.get(member)
                    .and_then(Value::as_array)
                    .is_some_and(|ops| ops.len() == 1 && ops[0] == "verify")
            };
            match variant {
                Variant::Lcl => {
                    if !verify_only("key_ops") {
                        return Err(bad("key_ops must be [\"verify\"]".into()));
                    }
                    let thumbprint = base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .encode(Sha256::digest(&der));
                    if key.get("x5t#S256").and_then(Value::as_str) != Some(thumbprint.as_str()) {
                        return Err(bad(
                            "x5t#S256 must be the certificate's SHA-256 thumbprint (base64url)"
                                .into(),
                        ));
                    }
                }
                Variant::Bpce if !verify_only("keys_ops") => {
                    return Err(bad("keys_ops must be [\"verify\"]".into()));
                }
                _ => {}
            }
            qseal_der = der;
            out.push((kid, public));
        }
        if let Some(scope) = text("scope") {
            let (separator, other) = if variant.comma_scope() {
                (',', ' ')
            } else {
                (' ', ',')
            };
            if scope.contains(other) {
                return Err(bad(format!(
                    "scope `{scope}`: the scopes are joined by `{separator}` here"
                )));
            }
            for s in scope.split(separator).filter(|s| !s.is_empty()) {
                if let Some(n) = role_of(s)
                    && !qseal_der.is_empty()
                    && !has_role(&qseal_der, n)
                {
                    return Err(bad(format!(
                        "scope {s} is wider than the QSealC's PSD2 roles"
                    )));
                }
            }
        }
        Ok(out)
    }

    fn register(&self, req: &Req, variant: Variant, org: &str) -> Reply {
        let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
            return invalid("invalid_client_metadata", "the body is not JSON");
        };
        let keys = match self.check_metadata(&body, variant, org) {
            Ok(k) => k,
            Err(reply) => return reply,
        };
        let client_id = format!("tpp-{}", &random_hex()[..16]);
        let access_token = match variant {
            Variant::CreditAgricole => "NOTAPPLICABLE".to_owned(),
            _ => random_hex(),
        };
        let now = OffsetDateTime::now_utc();
        let mut record = body.as_object().cloned().unwrap_or_default();
        let registered = self.assign_kids(variant, &mut record, keys, None);
        record.insert("client_id".into(), json!(client_id));
        record.insert(
            "client_id_issued_at".into(),
            match variant {
                // Milliseconds, as a string.
                Variant::Lbp => json!((now.unix_timestamp_nanos() / 1_000_000).to_string()),
                Variant::Bpce => json!(now.format(&Rfc3339).unwrap_or_default()),
                _ => json!(now.unix_timestamp().to_string()),
            },
        );
        if variant.managed_with_token() {
            record.insert("registration_access_token".into(), json!(access_token));
            record.insert(
                "registration_client_uri".into(),
                json!(format!("{}{}/{client_id}", self.origin, variant.base())),
            );
        }
        if matches!(variant, Variant::Bnp | Variant::Lbp) {
            record.insert("client_secret".into(), json!(random_hex()));
            record.insert("client_secret_expires_at".into(), json!("0"));
        }
        if variant == Variant::Bpce {
            // BPCE answers every field, absent ones as null, and its grants in capitals.
            for field in [
                "client_secret",
                "registration_access_token",
                "registration_client_uri",
                "client_uri",
                "logo_uri",
                "tos_uri",
                "policy_uri",
                "software_id",
            ] {
                record.entry(field).or_insert(Value::Null);
            }
            if let Some(Value::Array(grants)) = record.get_mut("grant_types") {
                for grant in grants.iter_mut() {
                    if let Some(g) = grant.as_str() {
                        *grant = json!(g.to_ascii_uppercase());
                    }
                }
            }
        }
        let record = Value::Object(record);
        let answer = if variant == Variant::Lcl {
            json!({
                "client_id": record["client_id"],
                "client_id_issued_at": record["client_id_issued_at"],
            })
        } else {
            record.clone()
        };
        self.lock().registrations.insert(
            client_id,
            Registered {
                variant,
                org: org.to_owned(),
                access_token,
                record,
                keys: registered,
                pending: None,
            },
        );
        let status = match variant {
            Variant::CreditAgricole | Variant::Bpce => 200,
            _ => 201,
        };
        Reply::plain_json(status, &answer)
    }

    /// Gives each key its kid: as sent, or the bank's (CIC: a hex kid, `<kid>_next` for a
    /// second key). Writes them into the record's jwks.
    fn assign_kids(
        &self,
        variant: Variant,
        record: &mut Map<String, Value>,
        keys: Vec<(Option<String>, PublicKey)>,
        previous: Option<&Registered>,
    ) -> Vec<(String, PublicKey)> {
        let mut out = Vec::new();
        for (i, (kid, key)) in keys.into_iter().enumerate() {
            let kid = match (variant, kid) {
                (Variant::Cic, Some(k)) => k,
                (Variant::Cic, None) => match previous.and_then(|p| p.keys.first()) {
                    Some((old, _)) if i > 0 => format!("{old}_next"),
                    _ => random_hex()[..24].to_owned(),
                },
                (_, k) => k.unwrap_or_default(),
            };
            out.push((kid, key));
        }
        let set = |keys: &mut Vec<Value>| {
            for (value, (kid, _)) in keys.iter_mut().zip(&out) {
                if let Value::Object(o) = value {
                    o.insert("kid".into(), json!(kid));
                }
            }
        };
        match record.get_mut("jwks") {
            Some(Value::Object(o)) => {
                if let Some(Value::Array(keys)) = o.get_mut("keys") {
                    set(keys);
                }
            }
            Some(Value::Array(keys)) => set(keys),
            _ => {}
        }
        out
    }

    fn update_registration(&self, req: &Req, variant: Variant, id: &str, org: &str) -> Reply {
        let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
            return invalid("invalid_client_metadata", "the body is not JSON");
        };
        let previous = match self.authorised(req, variant, id, org, Some(&body)) {
            Ok(r) => r,
            Err(reply) => return reply,
        };
        if body
            .get("client_id")
            .and_then(Value::as_str)
            .is_some_and(|c| c != id)
        {
            return invalid(
                "invalid_client_metadata",
                "client_id differs from the URL's",
            );
        }
        let keys = match self.check_metadata(&body, variant, org) {
            Ok(k) => k,
            Err(reply) => return reply,
        };
        if variant == Variant::Bnp {
            // Recorded; a person approves it later. Nothing changes now.
            if let Some(r) = self.lock().registrations.get_mut(id) {
                r.pending = Some((body, keys));
            }
            return Reply::plain_json(
                200,
                &json!({"message": "Your update request has been recorded. We will contact you to confirm."}),
            );
        }
        let record = self.apply_update(variant, &previous, &body, keys);
        if let Some(r) = self.lock().registrations.get_mut(id) {
            r.record = record.0.clone();
            r.keys = record.1;
        }
        Reply::plain_json(200, &record.0)
    }

    /// The record and keys `previous` has once `body` (an update, checked) replaces it.
    fn apply_update(
        &self,
        variant: Variant,
        previous: &Registered,
        body: &Value,
        keys: Vec<(Option<String>, PublicKey)>,
    ) -> (Value, Vec<(String, PublicKey)>) {
        let mut record = body.as_object().cloned().unwrap_or_default();
        record.remove("registration_access_token");
        let registered = self.assign_kids(variant, &mut record, keys, Some(previous));
        for field in [
            "client_id",
            "client_id_issued_at",
            "registration_access_token",
            "registration_client_uri",
        ] {
            if let Some(v) = previous.record.get(field) {
                record.insert(field.into(), v.clone());
            }
        }
        (Value::Object(record), registered)
    }

    /// `GET /sandbox/registrations/requests`: every registration request received.
    pub(crate) fn registration_requests(&self) -> Reply {
        let requests = self.lock().registration_requests.clone();
        Reply::plain_json(200, &Value::Array(requests))
    }

    /// `POST /sandbox/registrations/approve`: applies the updates recorded for approval by
    /// hand, of `client_id` or of every registration.
    pub(crate) fn approve_registrations(&self, req: &Req) -> Reply {
        let body: Value = if req.body.is_empty() {
            json!({})
        } else {
            match serde_json::from_slice(&req.body) {
                Ok(v) => v,
                Err(e) => {
                    return self.error(
                        400,
                        &req.path,
                        &format!("the body is not JSON ({e}): send {{\"client_id\": ID}} or {{}}"),
                        None,
                    );
                }
            }
        };
        let only = body.get("client_id").and_then(Value::as_str);
        let pending: Vec<(String, Registered)> = self
            .lock()
            .registrations
            .iter()
            .filter(|(id, r)| r.pending.is_some() && only.is_none_or(|o| o == id.as_str()))
            .map(|(id, r)| (id.clone(), r.clone()))
            .collect();
        let mut approved = 0;
        for (id, mut r) in pending {
            let Some((update, keys)) = r.pending.take() else {
                continue;
            };
            let (record, keys) = self.apply_update(r.variant, &r, &update, keys);
            if let Some(kept) = self.lock().registrations.get_mut(&id) {
                kept.record = record;
                kept.keys = keys;
                kept.pending = None;
                approved += 1;
            }
        }
        Reply::plain_json(200, &json!({ "approved": approved }))
    }

    /// The organisation a client id belongs to: the sandbox's own client (its QWAC's
    /// organizationIdentifier), or a registered client.
    pub(crate) fn client_org(&self, client_id: &str) -> Option<String> {
        if client_id == self.info.client_id {
            return Some(self.info.client_id.clone());
        }
        self.lock()
            .registrations
            .get(client_id)
            .map(|r| r.org.clone())
    }

    /// The keys a Signature keyId may name: the QSealC's fixed ids and every registered kid.
    pub(crate) fn key_resolver(&self) -> HashMap<String, PublicKey> {
        let mut keys = self.keys.clone();
        for r in self.lock().registrations.values() {
            for (kid, key) in &r.keys {
                if !kid.is_empty() {
                    keys.insert(kid.clone(), key.clone());
                }
            }
        }
        keys
    }
}

#[cfg(test)]
mod tests {
    use super::decimal;

    #[test]
    fn serials_in_decimal() {
        // The serial of the QSealC in the LCL registration stubs (hsm-registration notes §2.1).
        let serial = [
            0x2b, 0x9a, 0xdb, 0xd7, 0xf8, 0x6b, 0xed, 0x51, 0xe2, 0x3f, 0x46, 0x7c, 0x25, 0xe1,
            0xf8, 0x87,
        ];
        assert_eq!(decimal(&serial), "57960876493606644482050706203694200967");
        // A DER INTEGER's leading zero byte changes nothing.
        assert_eq!(decimal(&[0x00, 0x80]), "128");
        assert_eq!(decimal(&[]), "0");
        assert_eq!(decimal(&[0, 0]), "0");
    }
}
