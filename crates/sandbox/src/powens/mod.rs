//! A Powens mock beside the STET bank: `https://127.0.0.1:PORT/powens/2.0`, no client
//! certificate needed (Powens has none), enabled with [`crate::SandboxConfig::powens`].
//!
//! It answers the calls stet's Powens client makes, shaped as Powens documents them:
//!
//! | call | what it does |
//! |---|---|
//! | `POST /auth/init` | with the client's `client_id` and `client_secret`: a permanent user and its token; without: a temporary one; a wrong secret: 401 `unauthorized` |
//! | `POST /auth/renew` | a new token for `id_user` (`revoke_previous` revokes the others) |
//! | `DELETE /auth/token` | revokes the token it is called with |
//! | `GET /publickey` | the domain's RSA-2048 key as a JWK with its `kid`; rotated after every N credential posts it decrypted with [`PowensOptions::rotate_key_every`]; an EC or 1024-bit key with [`PowensOptions::key_fault`] |
//! | `GET /connectors[/UUID]` | the test connector's clone (same uuid, fields `login`, `password` "Code (1234)", `openapiwebsite`, `directaccesswebsite`; sources `openapi` then `directaccess`) and a webauth-only connector |
//! | `POST /users/me/connections` | a connection, driven by the scenario chosen in the source's list field (below) |
//! | `POST /users/me/connections/ID` | a one-time code, `{"resume": true}`, `{}` (starts the SCA), or `source` (adds a source) |
//! | `GET`, `DELETE /users/me/connections[/ID]` | the user's connections (`expand=connector`), one deleted with its accounts |
//! | `PUT /users/me/connections/ID` | a sync asked for: Powens reads the bank now (the changes `/sandbox/powens/advance` deferred); `409 upToDate` when nothing is new; a connection that needs the PSU answers with its state |
//! | `GET /webauth-url` | a page of the mock (`/webauth-page`) that sends the browser back to the loopback `redirect_uri` with `id_connection` and `state` |
//! | `GET /users/me/accounts` | the accounts; disabled ones only with `all` (every new account is disabled) |
//! | `POST` or `PUT /users/me/accounts/ID` | `{"disabled": false}` enables one |
//! | `GET /users/me[/accounts/ID]/transactions` | `limit` required (≤ 1000), `min_date`, `max_date`, `all` (the ones deleted at the bank too, flagged `deleted`; without it they are left out), `last_update` (only those changed after that naive Paris time, whatever their date); pages linked by `_links.next` (an opaque cursor); `409 noAccount` when no account is enabled |
//! | `POST /sandbox/powens/advance`, `POST /sandbox/powens/state`, `GET /sandbox/powens/transactions` | outside the API: the mock's clock (new and booked transactions), a connection's state, and what it holds, for testing syncs (manual in `advance.rs`) |
//! | `GET /sandbox/powens/credentials` | outside the API: every request that carried credentials, in order: `{"posts": [{"path", "fields": [{"name", "encrypted"}], "key": "current" \| "stale" \| "none", "scenario", "status", "code"}]}` (no value, only whether each was a JWE; `scenario` is the list field's value when it is one of the scenarios), for tests that count what reached the bank |
//!
//! **Credentials must be JWEs.** Every value of a connection's fields (and every one-time
//! code) must be a compact JWE (RSA-OAEP-256, A256GCM) for the current key's `kid`: a value in
//! clear, or one that does not decrypt, is refused with 400 `invalidValue` and a description
//! saying which. A JWE whose `kid` is not the current key's is checked first, before anything
//! else of the request is looked at, and answered 400 `invalidValue` with the description
//! [`stale_key_description`] gives, which names that `kid` in backquotes: what stet's client
//! reads as "fetch the key again and post once more" (any other refusal means the bank saw the
//! values, so posting them again would try them twice). With a rotation mode, the key rotates
//! after a request whose credentials it decrypted, whatever it then answered (a wrong password
//! too: a client that took any refusal for a key change would post that password again, and
//! the credential log shows it), never after refusing credentials unread. The decrypted values
//! are never logged.
//!
//! **Scenarios** (the value of `openapiwebsite` or `directaccesswebsite`; the password must
//! be `1234`, four digits, else `wrongpass`, or the one [`PowensOptions::password`] sets): `par` and `pro` (works; private or professional
//! accounts), `wrongpass`, `actionNeeded`, `passwordExpired`, `websiteUnavailable` (400 with
//! that code), `bug` (500 `bug`), `rateLimiting` (a connection in that state),
//! `additionalInformationNeeded` (202, field `{source}sms` "Dites abcd": post `abcd`, or the
//! code [`PowensOptions::code`] sets),
//! `shortDecoupled` (202 `decoupled`; approved a second later, when `resume` answers),
//! `SCARequired` (`POST {}` then leads to `decoupled`), `webauthRequired` (`openapi` only: the
//! browser round trip). Another value: 400 `config`.
//!
//! **Data.** A working connection finds six accounts, all disabled: a checking account (64
//! transactions over four months, the newest `coming`, one deleted at the bank, types
//! including one Powens does not document), a savings account, a deferred card and a
//! mortgage under the checking account, a USD account and an account of an undocumented
//! type. Money is JSON numbers with their digits; date-times are naive Paris time; unknown
//! ids and paths answer an HTML 404 page, as Powens does.

mod advance;
mod data;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use stet_powens::jwe::{DecryptingKey, JweError};
use time::{Date, OffsetDateTime};

use crate::server::{Reply, Req};
use crate::state::random_hex;

/// Where the mock lives on the sandbox's origin.
pub(crate) const PREFIX: &str = "/powens/2.0";

/// The keys of a connection's creation that are not credentials.
const CREATE_PLAIN: &[&str] = &["connector_uuid", "id_connector", "source"];
/// The keys of a connection's update that are not credentials.
const UPDATE_PLAIN: &[&str] = &["source", "resume", "active", "expire"];

/// How the Powens mock behaves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PowensOptions {
    /// Make a new domain key after every this many requests whose credentials were decrypted,
    /// whatever the answer (0: never). Clients must then fetch `GET /publickey` again.
    /// Credentials refused unread (a stale `kid`, a value in clear) never rotate it.
    pub rotate_key_every: u32,
    /// Serve a key clients must refuse at `GET /publickey`.
    pub key_fault: Option<KeyFault>,
    /// The PSU's password at the test connector, instead of Powens' `1234` (the field then
    /// has no pattern): a value distinctive enough for a test to search logs for.
    pub password: Option<String>,
    /// The one-time code the `additionalInformationNeeded` scenario asks for, instead of
    /// Powens' `abcd` (the field's label then does not give it away).
    pub code: Option<String>,
}

/// A `GET /publickey` answer clients must refuse.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyFault {
    /// An elliptic-curve JWK: not RSA.
    Ec,
    /// An RSA JWK of 1024 bits: too small.
    Small,
}

impl std::str::FromStr for KeyFault {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "ec" => Ok(KeyFault::Ec),
            "small" => Ok(KeyFault::Small),
            other => Err(format!("unknown key fault `{other}`: expected ec or small")),
        }
    }
}

/// What a client needs to talk to the Powens mock (in [`crate::SandboxInfo::powens`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PowensInfo {
    /// The API base, e.g. `https://127.0.0.1:PORT/powens/2.0`.
    pub api_base: String,
    /// The client id.
    pub client_id: String,
    /// The client secret.
    pub client_secret: String,
    /// The test connector's uuid.
    pub test_connector: String,
}

#[derive(Debug, Clone)]
enum Target {
    Connector(&'static str),
    Connection(i64),
}

#[derive(Debug, Clone)]
struct Session {
    user: i64,
    target: Target,
    redirect: String,
    state: String,
}

#[derive(Debug, Clone)]
struct Conn {
    id: i64,
    user: i64,
    connector: &'static str,
    state: Option<&'static str>,
    message: Option<String>,
    fields: Value,
    /// The one-time code expected, under which field name.
    otp: Option<String>,
    /// When a decoupled approval is given.
    ready_at: Option<Instant>,
    sources: Vec<String>,
    usage: &'static str,
    created: OffsetDateTime,
    last_update: Option<OffsetDateTime>,
    has_accounts: bool,
}

#[derive(Debug, Clone)]
struct Account {
    user: i64,
    connection: i64,
    json: Value,
    disabled: bool,
    /// Newest first.
    transactions: Vec<(Date, Value)>,
}

struct Inner {
    key: Arc<DecryptingKey>,
    key_serial: u32,
    accepted: u32,
    /// Every request that carried credentials (`GET /sandbox/powens/credentials`).
    posts: Vec<Value>,
    /// Token → user.
    tokens: HashMap<String, i64>,
    next_user: i64,
    next_connection: i64,
    next_account: i64,
    next_transaction: i64,
    connections: BTreeMap<i64, Conn>,
    accounts: BTreeMap<i64, Account>,
    sessions: HashMap<String, Session>,
    /// Days the mock's clock moved (`POST /sandbox/powens/advance`).
    days_advanced: i64,
    /// Changes at the bank Powens has not read yet (`"defer": true`).
    staged: Vec<advance::Change>,
}

/// The Powens mock.
pub(crate) struct Mock {
    pub(crate) info: PowensInfo,
    origin: String,
    options: PowensOptions,
    today: Date,
    inner: Mutex<Inner>,
}

fn error(status: u16, code: &str, description: impl Into<String>) -> Reply {
    Reply::plain_json(
        status,
        &json!({"code": code, "description": description.into()}),
    )
}

/// What Powens answers for an unknown id or path: a web page, not JSON.
fn html_404() -> Reply {
    Reply::html(
        404,
        "<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body>\n\
         <h1>Not Found</h1>\n<p>The requested URL was not found on the server.</p>\n</body></html>\n"
            .to_owned(),
    )
}

fn ok(value: Value) -> Reply {
    Reply::plain_json(200, &value)
}

/// A request body: a JSON object, or a flat form.
fn body(req: &Req) -> Result<Map<String, Value>, Reply> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let form = req
        .header("content-type")
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if form {
        return Ok(form_urlencoded::parse(&req.body)
            .into_owned()
            .map(|(k, v)| (k, Value::from(v)))
            .collect());
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(error(400, "invalidValue", "the body is not a JSON object")),
    }
}

fn text<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    map.get(key).and_then(Value::as_str)
}

fn query(req: &Req) -> BTreeMap<String, String> {
    req.query_pairs().into_iter().collect()
}

fn parse_day(s: &str) -> Option<Date> {
    Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()
}

impl Mock {
    pub(crate) fn new(options: PowensOptions, origin: &str, today: Date) -> Result<Mock, String> {
        let key = DecryptingKey::generate("sandbox-1").map_err(|e| e.to_string())?;
        Ok(Mock {
            info: PowensInfo {
                api_base: format!("{origin}{PREFIX}"),
                client_id: "stet-sandbox".to_owned(),
                client_secret: random_hex(),
                test_connector: data::TEST_CONNECTOR.to_owned(),
            },
            origin: origin.to_owned(),
            options,
            today,
            inner: Mutex::new(Inner {
                key: Arc::new(key),
                key_serial: 1,
                accepted: 0,
                posts: Vec::new(),
                tokens: HashMap::new(),
                next_user: 1,
                next_connection: 1,
                next_account: 1001,
                next_transaction: 500_001,
                connections: BTreeMap::new(),
                accounts: BTreeMap::new(),
                sessions: HashMap::new(),
                days_advanced: 0,
                staged: Vec::new(),
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every request under [`PREFIX`].
    pub(crate) async fn handle(&self, req: &Req) -> Reply {
        let rest = req.path.strip_prefix(PREFIX).unwrap_or_default();
        let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
        match (req.method.as_str(), segments.as_slice()) {
            ("POST", ["auth", "init"]) => self.auth_init(req),
            ("POST", ["auth", "renew"]) => self.auth_renew(req),
            ("DELETE", ["auth", "token"]) => self.with_user(req, |inner, _| {
                let token = bearer(req).unwrap_or_default();
                inner.tokens.remove(token);
                Reply::new(204)
            }),
            ("GET", ["publickey"]) => self.publickey(),
            ("GET", ["connectors"]) => self.connectors(req, None),
            ("GET", ["connectors", uuid]) => self.connectors(req, Some(uuid)),
            ("GET", ["users", "me"]) => self.with_user(req, |_, user| {
                ok(json!({"id": user, "platform": "stet-sandbox"}))
            }),
            ("GET", ["users", "me", "connections"]) => self.list_connections(req),
            ("POST", ["users", "me", "connections"]) => self.create_connection(req),
            ("GET", ["users", "me", "connections", id]) => self.get_connection(req, id),
            ("POST", ["users", "me", "connections", id]) => self.update_connection(req, id).await,
            ("PUT", ["users", "me", "connections", id]) => self.sync_connection(req, id),
            ("DELETE", ["users", "me", "connections", id]) => self.delete_connection(req, id),
            ("GET", ["webauth-url"]) => self.webauth_url(req),
            ("GET", ["webauth-page"]) => self.webauth_page(req),
            ("GET", ["users", "me", "accounts"]) => self.list_accounts(req),
            ("POST" | "PUT", ["users", "me", "accounts", id]) => self.update_account(req, id),
            ("GET", ["users", "me", "transactions"]) => self.transactions(req, None),
            ("GET", ["users", "me", "accounts", id, "transactions"]) => {
                self.transactions(req, Some(id))
            }
            _ => html_404(),
        }
    }

    // ---------------------------------------------------------------------------------------
    // Authentication
    // ---------------------------------------------------------------------------------------

    fn client_ok(&self, map: &Map<String, Value>) -> Option<bool> {
        let id = text(map, "client_id")?;
        let secret = text(map, "client_secret")?;
        Some(id == self.info.client_id && secret == self.info.client_secret)
    }

    fn issue(&self, inner: &mut Inner, user: i64) -> String {
        let token = random_hex();
        inner.tokens.insert(token.clone(), user);
        token
    }

    fn auth_init(&self, req: &Req) -> Reply {
        let map = match body(req) {
            Ok(m) => m,
            Err(r) => return r,
        };
        let permanent = match self.client_ok(&map) {
            Some(true) => true,
            Some(false) => {
                return error(401, "unauthorized", "wrong client_id or client_secret");
            }
            None => false,
        };
        let mut inner = self.lock();
        let user = inner.next_user;
        inner.next_user += 1;
        let token = self.issue(&mut inner, user);
        let mut answer = json!({
            "auth_token": token,
            "type": if permanent { "permanent" } else { "temporary" },
            "id_user": user,
        });
        if !permanent {
            answer["expires_in"] = json!(1800);
        }
        ok(answer)
    }

    fn auth_renew(&self, req: &Req) -> Reply {
        let map = match body(req) {
            Ok(m) => m,
            Err(r) => return r,
        };
        if self.client_ok(&map) != Some(true) {
            return error(401, "unauthorized", "wrong client_id or client_secret");
        }
        if text(&map, "grant_type") != Some("client_credentials") {
            return error(400, "invalidValue", "grant_type must be client_credentials");
        }
        let Some(user) = map.get("id_user").and_then(|v| {
            v.as_i64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        }) else {
            return error(400, "missingParameter", "id_user is required");
        };
        let mut inner = self.lock();
        if user <= 0 || user >= inner.next_user {
            return error(404, "invalidValue", format!("no user {user}"));
        }
        let revoke = map.get("revoke_previous").and_then(Value::as_bool) == Some(true);
        if revoke {
            inner.tokens.retain(|_, u| *u != user);
        }
        let token = self.issue(&mut inner, user);
        ok(json!({"access_token": token, "token_type": "Bearer"}))
    }

    fn with_user(&self, req: &Req, f: impl FnOnce(&mut Inner, i64) -> Reply) -> Reply {
        let mut inner = self.lock();
        let user = bearer(req).and_then(|t| inner.tokens.get(t).copied());
        match user {
            Some(user) => f(&mut inner, user),
            None => error(
                401,
                "unauthorized",
                "a valid user token is required (Authorization: Bearer)",
            ),
        }
    }

    fn publickey(&self) -> Reply {
        use base64::Engine as _;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        match self.options.key_fault {
            None => ok(self.lock().key.public_jwk().clone()),
            Some(KeyFault::Ec) => ok(json!({"kty": "EC", "kid": "ec-1", "crv": "P-256",
                "x": b64(&[7u8; 32]), "y": b64(&[9u8; 32])})),
            Some(KeyFault::Small) => ok(json!({"kty": "RSA", "kid": "rsa-1024",
                "n": b64(&[0xC5u8; 128]), "e": "AQAB"})),
        }
    }

    // ---------------------------------------------------------------------------------------
    // Connectors
    // ---------------------------------------------------------------------------------------

    fn connectors(&self, req: &Req, uuid: Option<&str>) -> Reply {
        let expand = query(req).get("expand").cloned().unwrap_or_default();
        let list = data::connectors(
            expand.contains("fields"),
            expand.contains("sources"),
            self.options.password.is_none(),
        );
        match uuid {
            None => ok(json!({"connectors": list, "total": list.len()})),
            Some(uuid) => match list
                .into_iter()
                .find(|c| c["uuid"] == uuid || uuid.parse::<i64>().is_ok_and(|n| c["id"] == n))
            {
                Some(c) => ok(c),
                None => html_404(),
            },
        }
    }

    fn connector(uuid: &str) -> Option<Value> {
        data::connectors(true, true, true)
            .into_iter()
            .find(|c| c["uuid"] == uuid || uuid.parse::<i64>().is_ok_and(|n| c["id"] == n))
    }

    // ---------------------------------------------------------------------------------------
    // Credentials: JWE only
    // ---------------------------------------------------------------------------------------

    /// Decrypts every value of `map` but the `plain` keys. A value in clear, for another key,
    /// or that does not decrypt: 400 saying which.
    fn open(
        &self,
        inner: &Inner,
        map: &Map<String, Value>,
        plain: &[&str],
    ) -> Result<BTreeMap<String, zeroize::Zeroizing<String>>, Reply> {
        let mut out = BTreeMap::new();
        for (name, value) in map {
            if plain.contains(&name.as_str()) {
                continue;
            }
            let Some(jwe) = value
                .as_str()
                .filter(|v| stet_powens::jwe::looks_like_jwe(v))
            else {
                return Err(error(
                    400,
                    "invalidValue",
                    format!(
                        "`{name}` is sent in clear: credentials must be JWEs (RSA-OAEP-256, \
                         A256GCM) for the key of GET /publickey"
                    ),
                ));
            };
            let plaintext = inner.key.decrypt(jwe).map_err(|e| {
                // A JWE naming another key was refused before (`stale_key`): here the header
                // names none, which is no key problem a new key would solve.
                let description = match &e {
                    JweError::UnknownKey { .. } => format!(
                        "`{name}` has no `kid` in its protected header: credentials must name \
                         the key of GET /publickey"
                    ),
                    other => format!("`{name}` cannot be decrypted: {other}"),
                };
                error(400, "invalidValue", description)
            })?;
            let text = String::from_utf8(plaintext.to_vec())
                .map_err(|_| error(400, "invalidValue", format!("`{name}` is not UTF-8 text")))?;
            out.insert(name.clone(), zeroize::Zeroizing::new(text));
        }
        Ok(out)
    }

    /// A JWE made for a key that is not the domain key (any more): refused before anything
    /// else of the request is looked at, so that nothing of it reached the bank and a client
    /// may post it again with the new key.
    fn stale_key(inner: &Inner, map: &Map<String, Value>, plain: &[&str]) -> Option<Reply> {
        let current = inner.key.kid();
        map.iter()
            .filter(|(name, _)| !plain.contains(&name.as_str()))
            .find_map(|(name, value)| {
                let kid = value
                    .as_str()
                    .and_then(|v| stet_powens::jwe::header(v).ok())?
                    .kid?;
                (kid != current).then(|| {
                    error(
                        400,
                        "invalidValue",
                        stale_key_description(name, &kid, current),
                    )
                })
            })
    }

    /// Keeps what a request carrying credentials was answered (never a value), and counts
    /// it towards the next key rotation when its credentials were decrypted.
    fn record(&self, inner: &mut Inner, post: Post, reply: &Reply) {
        if post.fields.is_empty() {
            return;
        }
        let code = serde_json::from_slice::<Value>(&reply.body)
            .ok()
            .and_then(|v| v.get("code").and_then(Value::as_str).map(str::to_owned));
        inner.posts.push(json!({
            "path": post.path,
            "fields": post.fields,
            "key": post.key,
            "scenario": post.scenario,
            "status": reply.status,
            "code": code,
        }));
        if post.key == "current" {
            self.accepted(inner);
        }
    }

    /// `GET /sandbox/powens/credentials`: the requests that carried credentials.
    pub(crate) fn credential_posts(&self) -> Reply {
        ok(json!({"posts": self.lock().posts}))
    }

    /// Counts a request whose credentials were decrypted, and rotates the key when due.
    fn accepted(&self, inner: &mut Inner) {
        inner.accepted += 1;
        let every = self.options.rotate_key_every;
        if every > 0 && inner.accepted.is_multiple_of(every) {
            let serial = inner.key_serial + 1;
            // Key generation only fails without a random generator: the old key then stays.
            if let Ok(key) = DecryptingKey::generate(format!("sandbox-{serial}")) {
                inner.key = Arc::new(key);
                inner.key_serial = serial;
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Connections
    // ---------------------------------------------------------------------------------------

    fn connection_json(&self, c: &Conn, expand: bool) -> Value {
        let state = c.state.map_or(Value::Null, Value::from);
        let connector = Self::connector(c.connector).unwrap_or(Value::Null);
        let mut v = json!({
            "id": c.id,
            "id_user": c.user,
            "id_connector": connector["id"],
            "id_bank": connector["id"],
            "connector_uuid": c.connector,
            "state": state,
            "error": state,
            "error_message": c.message,
            "fields": if c.fields.is_null() { json!([]) } else { c.fields.clone() },
            "last_update": c.last_update.map(data::paris),
            "created": data::paris(c.created),
            "active": true,
            "last_push": null,
            "expire": null,
            "next_try": null,
            "sources": c.sources.iter().map(|s| json!({"name": s, "state": null})).collect::<Vec<_>>(),
        });
        if expand {
            v["connector"] = connector;
        }
        v
    }

    fn list_connections(&self, req: &Req) -> Reply {
        let expand = query(req)
            .get("expand")
            .is_some_and(|e| e.contains("connector"));
        self.with_user(req, |inner, user| {
            let list: Vec<Value> = inner
                .connections
                .values()
                .filter(|c| c.user == user)
                .map(|c| self.connection_json(c, expand))
                .collect();
            ok(json!({"connections": list, "total": list.len()}))
        })
    }

    fn get_connection(&self, req: &Req, id: &str) -> Reply {
        let expand = query(req)
            .get("expand")
            .is_some_and(|e| e.contains("connector"));
        self.with_user(req, |inner, user| match owned(inner, user, id) {
            Some(c) => ok(self.connection_json(c, expand)),
            None => html_404(),
        })
    }

    /// `PUT /users/me/connections/{id}`: Powens reads the bank now. A connection that needs
    /// the PSU or waits on its bank stays as it is (answered with its state); a usable one
    /// takes in what the bank has that Powens had not read (the deferred changes), or is
    /// answered `409` when there is nothing new.
    fn sync_connection(&self, req: &Req, id: &str) -> Reply {
        let expand = query(req)
            .get("expand")
            .is_some_and(|e| e.contains("connector"));
        self.with_user(req, |inner, user| {
            let Some((id, usable)) = owned(inner, user, id).map(|c| (c.id, c.state.is_none()))
            else {
                return html_404();
            };
            if usable {
                match self.read_bank(inner) {
                    Ok(true) => {}
                    Ok(false) => {
                        return error(409, "upToDate", "the connection is up to date");
                    }
                    Err(reply) => return reply,
                }
                if let Some(c) = inner.connections.get_mut(&id) {
                    c.last_update = Some(OffsetDateTime::now_utc());
                }
            }
            match inner.connections.get(&id) {
                Some(c) => ok(self.connection_json(c, expand)),
                None => html_404(),
            }
        })
    }

    fn delete_connection(&self, req: &Req, id: &str) -> Reply {
        self.with_user(req, |inner, user| {
            let Some(id) = owned(inner, user, id).map(|c| c.id) else {
                return html_404();
            };
            inner.connections.remove(&id);
            inner.accounts.retain(|_, a| a.connection != id);
            Reply::new(204)
        })
    }

    /// The scenario a source's list field chose, checked with the password.
    fn scenario<'m>(
        &self,
        values: &'m BTreeMap<String, zeroize::Zeroizing<String>>,
        source: &str,
    ) -> Result<&'m str, Reply> {
        for field in ["login", "password"] {
            if values.get(field).is_none_or(|v| v.is_empty()) {
                return Err(error(
                    400,
                    "missingParameter",
                    format!("{field} is required"),
                ));
            }
        }
        let password = values
            .get("password")
            .map(|v| v.as_str())
            .unwrap_or_default();
        let right = self.options.password.as_deref().unwrap_or("1234");
        let four_digits = password.len() == 4 && password.bytes().all(|b| b.is_ascii_digit());
        if self.options.password.is_none() && !four_digits {
            return Err(error(
                400,
                "invalidValue",
                "password does not match ^[0-9]{4}$",
            ));
        }
        let field = format!("{source}website");
        let Some(scenario) = values.get(&field) else {
            return Err(error(
                400,
                "missingParameter",
                format!("{field} is required"),
            ));
        };
        if password != right {
            return Err(error(400, "wrongpass", "Incorrect password"));
        }
        let known = data::SCENARIOS
            .iter()
            .any(|s| *s == scenario.as_str() && (source == "openapi" || *s != "webauthRequired"));
        if !known {
            return Err(error(
                400,
                "config",
                format!(
                    "Value \"{}\" is not in list: {}",
                    scenario.as_str(),
                    data::SCENARIOS.join(", ")
                ),
            ));
        }
        Ok(scenario.as_str())
    }

    /// Applies a scenario to a connection: its new state, and the HTTP status to answer.
    fn apply(
        &self,
        inner: &mut Inner,
        id: i64,
        source: &str,
        scenario: &str,
    ) -> Result<u16, Reply> {
        let failure = match scenario {
            "wrongpass" => Some(error(400, "wrongpass", "Incorrect password")),
            "actionNeeded" => Some(error(
                400,
                "actionNeeded",
                "Please confirm the new terms and conditions",
            )),
            "passwordExpired" => Some(error(
                400,
                "passwordExpired",
                "The password has expired: change it on the bank's website",
            )),
            "websiteUnavailable" => Some(error(
                400,
                "websiteUnavailable",
                "The bank's website is unavailable",
            )),
            "bug" => Some(error(500, "bug", "An internal error occurred")),
            _ => None,
        };
        if let Some(reply) = failure {
            return Err(reply);
        }
        let now = OffsetDateTime::now_utc();
        let Some(c) = inner.connections.get_mut(&id) else {
            return Err(html_404());
        };
        if !c.sources.iter().any(|s| s == source) {
            c.sources.push(source.to_owned());
        }
        c.fields = Value::Null;
        c.otp = None;
        c.message = None;
        let status = match scenario {
            "par" | "pro" => {
                c.usage = if scenario == "pro" { "ORGA" } else { "PRIV" };
                c.state = None;
                200
            }
            "rateLimiting" => {
                c.state = Some("rateLimiting");
                c.message = Some("The bank limits the number of calls: try again later".into());
                200
            }
            "additionalInformationNeeded" => {
                let name = format!("{source}sms");
                // Powens' label gives its code away; a code of the test's own stays unsaid.
                let label = match self.options.code {
                    None => "Dites abcd",
                    Some(_) => "Le code reçu",
                };
                c.state = Some("additionalInformationNeeded");
                c.message = Some(format!("{name}: {label}"));
                c.fields =
                    json!([{"name": name, "label": label, "type": "text", "required": true}]);
                c.otp = Some(name);
                202
            }
            "shortDecoupled" => {
                c.state = Some("decoupled");
                c.message = Some("You need to confirm the connection on your bank website".into());
                c.ready_at = Some(Instant::now() + Duration::from_secs(1));
                202
            }
            "SCARequired" => {
                c.state = Some("SCARequired");
                c.message = Some("A strong customer authentication is required".into());
                200
            }
            "webauthRequired" => {
                c.state = Some("webauthRequired");
                c.message = Some("The connection must be validated on the bank's website".into());
                200
            }
            _ => 400,
        };
        if c.state.is_none() {
            c.last_update = Some(now);
            let id = c.id;
            self.find_accounts(inner, id);
        }
        Ok(status)
    }

    /// The accounts a working connection finds (once), all disabled.
    fn find_accounts(&self, inner: &mut Inner, connection: i64) {
        let Some(c) = inner.connections.get_mut(&connection) else {
            return;
        };
        if c.has_accounts {
            return;
        }
        c.has_accounts = true;
        let (user, usage) = (c.user, c.usage);
        let now = OffsetDateTime::now_utc();
        let first = inner.next_account;
        inner.next_account += data::ACCOUNTS.len() as i64;
        for (i, t) in data::ACCOUNTS.iter().enumerate() {
            let id = first + i as i64;
            let balance: rust_decimal::Decimal = t.balance.parse().unwrap_or_default();
            let coming: rust_decimal::Decimal = t.coming.parse().unwrap_or_default();
            let json = json!({
                "id": id,
                "id_connection": connection,
                "id_user": user,
                "id_source": 1,
                "id_parent": t.parent.map(|p| first + p as i64),
                "number": if t.iban { format!("{:011}", 20_041_010_050 + id) } else { format!("XXXX XXXX XXXX {:04}", id % 10_000) },
                "webid": format!("A{id}"),
                "original_name": t.name,
                "name": t.name,
                "balance": data::num(t.balance),
                "coming": data::num(t.coming),
                "coming_balance": data::num(&(balance + coming).to_string()),
                "display": true,
                "last_update": data::paris(now),
                "deleted": null,
                "disabled": data::paris(now),
                "iban": if t.iban { Value::from(data::iban(id)) } else { Value::Null },
                "bic": "CDTBFRBIXXX",
                "currency": {"id": t.currency, "precision": 2, "crypto": false,
                             "symbol": if t.currency == "USD" { "$" } else { "€" }},
                "type": t.kind,
                "bookmarked": 0,
                "error": null,
                "usage": usage,
                "ownership": "owner",
                "company_name": if usage == "ORGA" { Value::from("ACME SAS") } else { Value::Null },
                "opening_date": "2015-03-02",
                "information": {},
            });
            let first_tx = inner.next_transaction;
            inner.next_transaction += t.transactions as i64;
            let today = self.today + time::Duration::days(inner.days_advanced);
            let transactions = data::transactions(id, t, first_tx, today, now);
            inner.accounts.insert(
                id,
                Account {
                    user,
                    connection,
                    json,
                    disabled: true,
                    transactions,
                },
            );
        }
    }

    fn create_connection(&self, req: &Req) -> Reply {
        let map = match body(req) {
            Ok(m) => m,
            Err(r) => return r,
        };
        let expand = query(req)
            .get("expand")
            .is_some_and(|e| e.contains("connector"));
        self.with_user(req, |inner, user| {
            let mut post = Post::new(req, &map, CREATE_PLAIN);
            let reply = match Self::stale_key(inner, &map, CREATE_PLAIN) {
                Some(reply) => {
                    post.key = "stale";
                    reply
                }
                None => self.create(inner, user, &map, expand, &mut post),
            };
            self.record(inner, post, &reply);
            reply
        })
    }

    fn create(
        &self,
        inner: &mut Inner,
        user: i64,
        map: &Map<String, Value>,
        expand: bool,
        post: &mut Post,
    ) -> Reply {
        {
            let uuid = text(map, "connector_uuid").map(str::to_owned).or_else(|| {
                map.get("id_connector")
                    .map(|v| v.to_string().trim_matches('"').to_owned())
            });
            let Some(connector) = uuid.as_deref().and_then(Self::connector) else {
                return error(
                    400,
                    "invalidValue",
                    "connector_uuid (or id_connector) is unknown or missing",
                );
            };
            let uuid: &'static str = if connector["uuid"] == data::TEST_CONNECTOR {
                data::TEST_CONNECTOR
            } else {
                data::REDIRECT_CONNECTOR
            };
            if uuid == data::REDIRECT_CONNECTOR {
                return error(
                    400,
                    "invalidValue",
                    "this connector only works through webauth: GET /webauth-url",
                );
            }
            let source = text(map, "source").unwrap_or("openapi").to_owned();
            if source != "openapi" && source != "directaccess" {
                return error(400, "invalidValue", format!("unknown source `{source}`"));
            }
            let values = match self.open(inner, map, CREATE_PLAIN) {
                Ok(v) => v,
                Err(r) => return r,
            };
            post.scenario(&values, &source);
            let scenario = match self.scenario(&values, &source) {
                Ok(s) => s.to_owned(),
                Err(r) => return r,
            };
            let id = inner.next_connection;
            inner.next_connection += 1;
            inner.connections.insert(
                id,
                Conn {
                    id,
                    user,
                    connector: uuid,
                    state: None,
                    message: None,
                    fields: Value::Null,
                    otp: None,
                    ready_at: None,
                    sources: Vec::new(),
                    usage: "PRIV",
                    created: OffsetDateTime::now_utc(),
                    last_update: None,
                    has_accounts: false,
                },
            );
            match self.apply(inner, id, &source, &scenario) {
                Ok(status) => {
                    let c = &inner.connections[&id];
                    Reply::plain_json(status, &self.connection_json(c, expand))
                }
                Err(reply) => {
                    // A refused creation leaves no connection behind.
                    inner.connections.remove(&id);
                    reply
                }
            }
        }
    }

    async fn update_connection(&self, req: &Req, id: &str) -> Reply {
        let map = match body(req) {
            Ok(m) => m,
            Err(r) => return r,
        };
        let q = query(req);
        let expand = q.get("expand").is_some_and(|e| e.contains("connector"));
        let background = q.get("background").is_some_and(|b| b == "true");
        // A decoupled approval blocks until the PSU has approved, as Powens does, without
        // holding the lock.
        let wait = {
            let inner = self.lock();
            let user = bearer(req).and_then(|t| inner.tokens.get(t).copied());
            match (user, map.get("resume")) {
                (Some(user), Some(Value::Bool(true))) if !background => owned(&inner, user, id)
                    .and_then(|c| c.ready_at)
                    .map(|at| at.saturating_duration_since(Instant::now())),
                _ => None,
            }
        };
        if let Some(wait) = wait {
            tokio::time::sleep(wait.min(Duration::from_secs(10))).await;
        }
        self.with_user(req, |inner, user| {
            let mut post = Post::new(req, &map, UPDATE_PLAIN);
            let reply = match Self::stale_key(inner, &map, UPDATE_PLAIN) {
                Some(reply) => {
                    post.key = "stale";
                    reply
                }
                None => self.update(inner, user, id, &map, expand, background, &mut post),
            };
            self.record(inner, post, &reply);
            reply
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn update(
        &self,
        inner: &mut Inner,
        user: i64,
        id: &str,
        map: &Map<String, Value>,
        expand: bool,
        background: bool,
        post: &mut Post,
    ) -> Reply {
        {
            let Some(id) = owned(inner, user, id).map(|c| c.id) else {
                return html_404();
            };
            let answer = |inner: &Inner, status: u16| {
                Reply::plain_json(
                    status,
                    &self.connection_json(&inner.connections[&id], expand),
                )
            };
            // Adding a source.
            if let Some(source) = text(map, "source").map(str::to_owned) {
                if source != "openapi" && source != "directaccess" {
                    return error(400, "invalidValue", format!("unknown source `{source}`"));
                }
                let values = match self.open(inner, map, &["source"]) {
                    Ok(v) => v,
                    Err(r) => return r,
                };
                post.scenario(&values, &source);
                let scenario = match self.scenario(&values, &source) {
                    Ok(s) => s.to_owned(),
                    Err(r) => return r,
                };
                return match self.apply(inner, id, &source, &scenario) {
                    Ok(status) => answer(inner, status),
                    Err(reply) => reply,
                };
            }
            // A one-time code.
            let otp = inner.connections[&id].otp.clone();
            if let Some(name) = otp.filter(|n| map.contains_key(n)) {
                let values = match self.open(inner, map, &[]) {
                    Ok(v) => v,
                    Err(r) => return r,
                };
                post.key = "current";
                let right = self.options.code.as_deref().unwrap_or("abcd");
                if values.get(&name).map(|v| v.as_str()) != Some(right) {
                    return error(400, "wrongpass", "Incorrect code");
                }
                let source = name.trim_end_matches("sms").to_owned();
                return match self.apply(inner, id, &source, "par") {
                    Ok(status) => answer(inner, status),
                    Err(reply) => reply,
                };
            }
            let Some(c) = inner.connections.get_mut(&id) else {
                return html_404();
            };
            if let Some(name) = map
                .keys()
                .find(|k| !matches!(k.as_str(), "resume" | "active" | "expire"))
            {
                return error(
                    400,
                    "invalidValue",
                    format!("unexpected field `{name}` for this connection"),
                );
            }
            match (c.state, map.get("resume")) {
                (Some("decoupled" | "validating"), Some(Value::Bool(true))) => {
                    let ready = c.ready_at.is_none_or(|at| Instant::now() >= at);
                    if !ready || background {
                        c.state = Some("validating");
                        return answer(inner, 202);
                    }
                    c.state = None;
                    c.message = None;
                    c.ready_at = None;
                    c.last_update = Some(OffsetDateTime::now_utc());
                    self.find_accounts(inner, id);
                    answer(inner, 200)
                }
                (Some("SCARequired"), None) if map.is_empty() => {
                    c.state = Some("decoupled");
                    c.message = Some("Confirm the connection in your bank's app".into());
                    c.ready_at = Some(Instant::now() + Duration::from_secs(1));
                    answer(inner, 202)
                }
                (None, _) => answer(inner, 200),
                (Some(state), _) => error(
                    409,
                    "invalidValue",
                    format!("the connection is `{state}`: this update does not apply"),
                ),
            }
        }
    }

    // ---------------------------------------------------------------------------------------
    // Webauth
    // ---------------------------------------------------------------------------------------

    fn webauth_url(&self, req: &Req) -> Reply {
        let q = query(req);
        self.with_user(req, |inner, user| {
            if q.get("client_id") != Some(&self.info.client_id) {
                return error(400, "invalidValue", "client_id is missing or not this client's");
            }
            let Some(redirect) = q.get("redirect_uri") else {
                return error(400, "missingParameter", "redirect_uri is required");
            };
            let loopback = url::Url::parse(redirect).ok().filter(|u| {
                u.query().is_none()
                    && u.scheme() == "http"
                    && matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
            });
            if loopback.is_none() {
                return error(
                    400,
                    "invalidValue",
                    "redirect_uri must be a registered URI without a query (here: a loopback http URL)",
                );
            }
            let Some(state) = q.get("state") else {
                return error(400, "missingParameter", "state is required");
            };
            let target = if let Some(id) = q.get("id_connection") {
                match owned(inner, user, id) {
                    Some(c) if c.state == Some("webauthRequired") => Target::Connection(c.id),
                    Some(_) => return error(409, "invalidValue", "the connection is already up to date"),
                    None => return html_404(),
                }
            } else {
                let uuid = q.get("connector_uuid").or_else(|| q.get("id_connector"));
                match uuid.and_then(|u| Self::connector(u)) {
                    Some(c) if c["uuid"] == data::REDIRECT_CONNECTOR => Target::Connector(data::REDIRECT_CONNECTOR),
                    Some(_) => Target::Connector(data::TEST_CONNECTOR),
                    None => return error(400, "invalidValue", "connector_uuid, id_connector or id_connection is required"),
                }
            };
            let session = random_hex();
            inner.sessions.insert(
                session.clone(),
                Session {
                    user,
                    target,
                    redirect: redirect.clone(),
                    state: state.clone(),
                },
            );
            ok(json!({"url": format!("{}{PREFIX}/webauth-page?session={session}", self.origin)}))
        })
    }

    /// The bank's page, approved at once: sends the browser back with the connection.
    fn webauth_page(&self, req: &Req) -> Reply {
        let q = query(req);
        let mut inner = self.lock();
        let Some(session) = q.get("session").and_then(|s| inner.sessions.remove(s)) else {
            return html_404();
        };
        let id = match session.target {
            Target::Connection(id) => id,
            Target::Connector(uuid) => {
                let id = inner.next_connection;
                inner.next_connection += 1;
                inner.connections.insert(
                    id,
                    Conn {
                        id,
                        user: session.user,
                        connector: uuid,
                        state: Some("webauthRequired"),
                        message: None,
                        fields: Value::Null,
                        otp: None,
                        ready_at: None,
                        sources: Vec::new(),
                        usage: "PRIV",
                        created: OffsetDateTime::now_utc(),
                        last_update: None,
                        has_accounts: false,
                    },
                );
                id
            }
        };
        if let Err(reply) = self.apply(&mut inner, id, "openapi", "par") {
            return reply;
        }
        let mut back = url::Url::parse(&session.redirect)
            .unwrap_or_else(|_| url::Url::parse("http://127.0.0.1/").expect("a constant URL"));
        back.query_pairs_mut()
            .append_pair("id_connection", &id.to_string())
            .append_pair("state", &session.state);
        Reply::new(302)
            .with_header("Location", back.to_string())
            .with_header("Cache-Control", "no-store")
    }

    // ---------------------------------------------------------------------------------------
    // Accounts and transactions
    // ---------------------------------------------------------------------------------------

    fn account_json(a: &Account) -> Value {
        let mut v = a.json.clone();
        if !a.disabled {
            v["disabled"] = Value::Null;
        }
        v
    }

    fn list_accounts(&self, req: &Req) -> Reply {
        let all = query(req).contains_key("all");
        self.with_user(req, |inner, user| {
            let list: Vec<Value> = inner
                .accounts
                .values()
                .filter(|a| a.user == user && (all || !a.disabled))
                .map(Self::account_json)
                .collect();
            ok(json!({"accounts": list, "total": list.len()}))
        })
    }

    fn update_account(&self, req: &Req, id: &str) -> Reply {
        let map = match body(req) {
            Ok(m) => m,
            Err(r) => return r,
        };
        self.with_user(req, |inner, user| {
            let Some(account) = id
                .parse::<i64>()
                .ok()
                .and_then(|id| inner.accounts.get_mut(&id))
                .filter(|a| a.user == user)
            else {
                return html_404();
            };
            match map.get("disabled") {
                Some(Value::Bool(disabled)) => account.disabled = *disabled,
                _ => {
                    return error(
                        400,
                        "invalidValue",
                        "send {\"disabled\": false} to enable the account",
                    );
                }
            }
            ok(Self::account_json(account))
        })
    }

    fn transactions(&self, req: &Req, account: Option<&str>) -> Reply {
        let q = query(req);
        let limit = match q.get("limit").map(|l| l.parse::<usize>()) {
            None => return error(400, "missingParameter", "limit is required (at most 1000)"),
            Some(Ok(l)) if (1..=1000).contains(&l) => l,
            Some(_) => return error(400, "invalidValue", "limit must be a number from 1 to 1000"),
        };
        let mut bounds = [None, None];
        for (i, key) in ["min_date", "max_date"].iter().enumerate() {
            if let Some(v) = q.get(*key) {
                match parse_day(v) {
                    Some(d) => bounds[i] = Some(d),
                    None => {
                        return error(
                            400,
                            "invalidValue",
                            format!("{key} is not a date (YYYY-MM-DD)"),
                        );
                    }
                }
            }
        }
        // Powens' `last_update`: only what it changed after that (naive Paris) time.
        let changed_after = match q.get("last_update") {
            None => None,
            Some(v) => match v.parse::<stet_powens::paris::ParisDateTime>() {
                Ok(t) => Some(t),
                Err(_) => {
                    return error(
                        400,
                        "invalidValue",
                        "last_update is not a date-time (YYYY-MM-DD HH:MM:SS)",
                    );
                }
            },
        };
        let offset = match q.get("cursor") {
            None => 0,
            Some(c) => match c
                .strip_prefix("o")
                .and_then(|n| usize::from_str_radix(n, 16).ok())
            {
                Some(o) => o,
                None => return error(400, "invalidValue", "cursor is not one this API gave"),
            },
        };
        self.with_user(req, |inner, user| {
            let mut rows: Vec<&(Date, Value)> = Vec::new();
            match account {
                Some(id) => {
                    let Some(a) = id
                        .parse::<i64>()
                        .ok()
                        .and_then(|id| inner.accounts.get(&id))
                        .filter(|a| a.user == user)
                    else {
                        return html_404();
                    };
                    if a.disabled {
                        return error(
                            409,
                            "noAccount",
                            format!("account {id} is disabled: enable it first"),
                        );
                    }
                    rows.extend(&a.transactions);
                }
                None => {
                    let enabled: Vec<&Account> = inner
                        .accounts
                        .values()
                        .filter(|a| a.user == user && !a.disabled)
                        .collect();
                    if enabled.is_empty() {
                        return error(409, "noAccount", "no account is enabled");
                    }
                    for a in enabled {
                        rows.extend(&a.transactions);
                    }
                }
            }
            // Deleted ones only with the value-less `all` flag, as Powens lists them.
            let all = q.contains_key("all");
            rows.retain(|(d, tx)| {
                bounds[0].is_none_or(|m| *d >= m)
                    && bounds[1].is_none_or(|m| *d <= m)
                    && (all || tx["deleted"].is_null())
                    && changed_after.is_none_or(|after| {
                        tx["last_update"]
                            .as_str()
                            .and_then(|t| t.parse::<stet_powens::paris::ParisDateTime>().ok())
                            .is_none_or(|t| t > after)
                    })
            });
            rows.sort_by(|a, b| {
                b.0.cmp(&a.0)
                    .then_with(|| b.1["id"].as_i64().cmp(&a.1["id"].as_i64()))
            });
            let total = rows.len();
            let page: Vec<Value> = rows
                .iter()
                .skip(offset)
                .take(limit)
                .map(|(_, v)| v.clone())
                .collect();
            let link = |cursor: Option<usize>| {
                let mut url =
                    url::Url::parse(&format!("{}{}", self.origin, req.path)).expect("our own URL");
                {
                    let mut pairs = url.query_pairs_mut();
                    pairs.append_pair("limit", &limit.to_string());
                    for (key, bound) in ["min_date", "max_date"].iter().zip(bounds) {
                        if let Some(d) = bound {
                            pairs.append_pair(key, &data::day(d));
                        }
                    }
                    if let Some(filter) = q.get("filter") {
                        pairs.append_pair("filter", filter);
                    }
                    if let Some(after) = q.get("last_update") {
                        pairs.append_pair("last_update", after);
                    }
                    if all {
                        pairs.append_key_only("all");
                    }
                    if let Some(c) = cursor {
                        pairs.append_pair("cursor", &format!("o{c:x}"));
                    }
                }
                json!({"href": url.to_string()})
            };
            let next = (offset + limit < total).then(|| link(Some(offset + limit)));
            let dates: Vec<Date> = rows.iter().map(|(d, _)| *d).collect();
            ok(json!({
                "transactions": page,
                "first_date": dates.last().map(|d| data::day(*d)),
                "last_date": dates.first().map(|d| data::day(*d)),
                "result_min_date": bounds[0].map(data::day),
                "result_max_date": bounds[1].map(data::day),
                "total": total,
                "_links": {
                    "self": link((offset > 0).then_some(offset)),
                    "next": next,
                },
            }))
        })
    }
}

fn bearer(req: &Req) -> Option<&str> {
    let auth = req.header("authorization")?;
    auth.strip_prefix("Bearer ")
        .or_else(|| auth.strip_prefix("bearer "))
        .map(str::trim)
}

/// The user's connection `id`, when it is one of theirs.
fn owned<'a>(inner: &'a Inner, user: i64, id: &str) -> Option<&'a Conn> {
    let id: i64 = id.parse().ok()?;
    inner.connections.get(&id).filter(|c| c.user == user)
}

/// The description of the refusal of a JWE made for key `kid` when the domain key is
/// `current`. It names the refused `kid` in backquotes: stet's client posts again with a new
/// key only when the refusal names the key it used (see `PowensClient` in stet-powens).
pub(crate) fn stale_key_description(name: &str, kid: &str, current: &str) -> String {
    format!(
        "`{name}` is encrypted for key `{kid}`, which is not the domain key (now `{current}`): \
         fetch GET /publickey again and encrypt with its key"
    )
}

/// What the mock keeps of one request carrying credentials.
struct Post {
    path: String,
    /// Each credential field's name and whether it was a JWE.
    fields: Vec<Value>,
    /// `current` (decrypted with the domain key), `stale` (made for another key: refused
    /// first) or `none` (in clear, or not decryptable).
    key: &'static str,
    /// The scenario the list field chose, once decrypted.
    scenario: Option<String>,
}

impl Post {
    fn new(req: &Req, map: &Map<String, Value>, plain: &[&str]) -> Post {
        Post {
            path: req
                .path
                .strip_prefix(PREFIX)
                .unwrap_or(&req.path)
                .to_owned(),
            fields: map
                .iter()
                .filter(|(name, _)| !plain.contains(&name.as_str()))
                .map(|(name, value)| {
                    let encrypted = value.as_str().is_some_and(stet_powens::jwe::looks_like_jwe);
                    json!({"name": name, "encrypted": encrypted})
                })
                .collect(),
            key: "none",
            scenario: None,
        }
    }

    /// Notes the scenario of a decrypted request: the value of the source's list field, when
    /// it is one (a scenario name is no secret).
    fn scenario(&mut self, values: &BTreeMap<String, zeroize::Zeroizing<String>>, source: &str) {
        self.key = "current";
        self.scenario = values
            .get(&format!("{source}website"))
            .filter(|v| data::SCENARIOS.contains(&v.as_str()))
            .map(|v| v.as_str().to_owned());
    }
}
