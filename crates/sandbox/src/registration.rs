//! Dynamic client registration (STET "OAuth2 technical setup" 1.0.5), in the spec's form and
//! in three banks' variants, each at its own endpoint:
//!
//! | endpoint | variant | what it insists on |
//! |---|---|---|
//! | `/register` | the spec | signed; `jwks {keys}` with `x5c` arrays; lowercase grants; 201; `GET/PUT/DELETE /register/{id}` with `Bearer <registration_access_token>` |
//! | `/psd2/register` | BNP Paribas | signed; `context: "psd2"`; a client secret; an update is "recorded" and approved by hand (200 with a message, nothing changed) |
//! | `/psd2_actor_registration/v1/tpp_consumers` | Crédit Agricole | bare `jwks` array, `x5c` a string, grants in capitals, no scope; 200; token `NOTAPPLICABLE`, sent back in `PUT` bodies; no `DELETE` |
//! | `/cic/oauth2/registrations` | CIC / Crédit Mutuel | not signed; `kid: null`, the bank assigns it; a `PUT` with a second key gets `<kid>_next` |
//!
//! Everywhere: the QWAC on the TLS link is the client; `redirect_uris` must be HTTPS (or
//! loopback HTTP); `token_endpoint_auth_method`, when sent, `tls_client_auth`;
//! `provider_legal_id` and the QSealC's organizationIdentifier must be the QWAC's; `scope` no
//! wider than the QSealC's PSD2 roles. A refusal is the spec's `ErrorModel_400`
//! (`invalid_redirect_uri`, `invalid_client_metadata`) or `ErrorModel` (401, 403, 405).
//!
//! A registered client is then a client of the bank: its `client_id` works at `/authorize`
//! and `/token` (with the QWAC it registered with), and its kids are accepted as Signature
//! keyIds.

use std::collections::HashMap;
use std::time::SystemTime;

use base64::Engine as _;
use serde_json::{Map, Value, json};
use stet_httpsig::{PublicKey, VerifyPolicy};

use crate::server::{Reply, Req};
use crate::state::{State, organization_identifier, random_hex};

/// The registration variants the sandbox plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Variant {
    Spec,
    Bnp,
    CreditAgricole,
    Cic,
}

impl Variant {
    const ALL: [(Variant, &'static str); 4] = [
        (Variant::Spec, "/register"),
        (Variant::Bnp, "/psd2/register"),
        (
            Variant::CreditAgricole,
            "/psd2_actor_registration/v1/tpp_consumers",
        ),
        (Variant::Cic, "/cic/oauth2/registrations"),
    ];

    fn base(self) -> &'static str {
        Variant::ALL
            .iter()
            .find(|(v, _)| *v == self)
            .map(|(_, b)| *b)
            .unwrap_or("/register")
    }

    fn signed(self) -> bool {
        self != Variant::Cic
    }
}

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
        if variant.signed()
            && let Err(reply) = self.check_registration_signature(req)
        {
            return reply;
        }
        let org = req
            .peer
            .as_deref()
            .and_then(|c| organization_identifier(c))
            .unwrap_or_default();
        match (req.method.as_str(), id) {
            ("POST", None) => self.register(req, variant, &org),
            ("GET", Some(id)) => match self.authorised(req, variant, &id, &org, None) {
                Ok(r) => Reply::plain_json(200, &r.record),
                Err(reply) => reply,
            },
            ("PUT", Some(id)) => self.update_registration(req, variant, &id, &org),
            ("DELETE", Some(_)) if variant == Variant::CreditAgricole => self.error(
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

    /// Registration calls are signed with the QSealC URL, the QSealC's file name, or a kid
    /// registered before.
    fn check_registration_signature(&self, req: &Req) -> Result<(), Reply> {
        let mut request = stet_httpsig::Request::new(req.method.clone(), req.target.clone());
        for (name, value) in &req.headers {
            request.append_header(name.clone(), value.clone());
        }
        request.set_body(req.body.to_vec());
        let keys = self.key_resolver();
        // The spec's list; BNP's registration signs no Date.
        let policy = VerifyPolicy {
            required_headers: vec!["(request-target)".into(), "x-request-id".into()],
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
        if variant != Variant::Cic && list("contacts").is_empty() {
            return Err(bad("contacts is required".into()));
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
        if keys.is_empty() {
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
            qseal_der = der;
            out.push((kid, public));
        }
        if let Some(scope) = text("scope") {
            for s in scope.split([' ', ',']).filter(|s| !s.is_empty()) {
                if let Some(n) = role_of(s)
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
        let mut record = body.as_object().cloned().unwrap_or_default();
        let registered = self.assign_kids(variant, &mut record, keys, None);
        record.insert("client_id".into(), json!(client_id));
        record.insert(
            "client_id_issued_at".into(),
            json!(
                SystemTime::now()
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0)
                    .to_string()
            ),
        );
        record.insert("registration_access_token".into(), json!(access_token));
        record.insert(
            "registration_client_uri".into(),
            json!(format!("{}{}/{client_id}", self.origin, variant.base())),
        );
        if variant == Variant::Bnp {
            record.insert("client_secret".into(), json!(random_hex()));
            record.insert("client_secret_expires_at".into(), json!("0"));
        }
        let record = Value::Object(record);
        self.lock().registrations.insert(
            client_id,
            Registered {
                variant,
                org: org.to_owned(),
                access_token,
                record: record.clone(),
                keys: registered,
            },
        );
        let status = if variant == Variant::CreditAgricole {
            200
        } else {
            201
        };
        Reply::plain_json(status, &record)
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
            return Reply::plain_json(
                200,
                &json!({"message": "Your update request has been recorded. We will contact you to confirm."}),
            );
        }
        let mut record = body.as_object().cloned().unwrap_or_default();
        record.remove("registration_access_token");
        let registered = self.assign_kids(variant, &mut record, keys, Some(&previous));
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
        let record = Value::Object(record);
        if let Some(r) = self.lock().registrations.get_mut(id) {
            r.record = record.clone();
            r.keys = registered;
        }
        Reply::plain_json(200, &record)
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
