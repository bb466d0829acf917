//! [`PowensClient`]: the calls, the user token, the domain key.

use std::sync::Arc;
use std::time::SystemTime;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use stet_models::Raw;
use stet_transport::{
    HttpsClient, HttpsRequest, Method, Secret, StetResponse, Token, TokenSet, TokenStore, unix,
};
use tokio::sync::Mutex;
use url::Url;

use crate::PowensError;
use crate::config::PowensConfig;
use crate::jwe::DomainKey;
use crate::mapping::Namespace;
use crate::model::{
    AccountList, BankAccount, Connection, ConnectionList, Connector, ConnectorList, ErrorBody,
    PowensId, TransactionPage,
};

/// The token-store key prefix of a Powens user token: `powens user 123`.
const USER_KEY: &str = "powens user ";

/// The permanent token of a Powens user, and who the user is.
#[derive(Clone)]
pub struct UserToken {
    /// The user's id.
    pub id_user: PowensId,
    token: Secret,
}

impl std::fmt::Debug for UserToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserToken")
            .field("id_user", &self.id_user)
            .finish_non_exhaustive()
    }
}

/// The answer to creating or updating a connection: the HTTP status (`202`: more is needed)
/// and the connection.
#[derive(Debug, Clone)]
pub struct ConnectionAnswer {
    /// 200, 201 or 202.
    pub status: u16,
    /// The connection, with its JSON as received.
    pub connection: Raw<Connection>,
}

/// Which transactions to list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransactionQuery {
    /// Transactions per page (Powens requires it; at most 1000).
    pub limit: u32,
    /// From this date, inclusive.
    pub min_date: Option<time::Date>,
    /// Until this date, inclusive.
    pub max_date: Option<time::Date>,
    /// Also the transactions the bank deleted (Powens' value-less `all` flag), each with its
    /// `deleted` date set: what a store needs to mark them.
    pub deleted: bool,
    /// Only the transactions Powens changed after this instant (its `last_update` filter,
    /// sent as Paris local time), whatever their date: edits and deletions of transactions
    /// older than a sync's window.
    pub updated_after: Option<time::OffsetDateTime>,
}

impl Default for TransactionQuery {
    fn default() -> Self {
        TransactionQuery {
            limit: 1000,
            min_date: None,
            max_date: None,
            deleted: false,
            updated_after: None,
        }
    }
}

/// The most pages one listing follows: a link that never ends is a server bug, not data.
const MAX_PAGES: usize = 100_000;

/// A client of one Powens domain for one profile. Cheap to share behind an `Arc`.
pub struct PowensClient {
    config: PowensConfig,
    http: HttpsClient,
    store: Arc<dyn TokenStore>,
    namespace: Namespace,
    key: Mutex<Option<DomainKey>>,
    user: Mutex<Option<UserToken>>,
}

impl std::fmt::Debug for PowensClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PowensClient")
            .field("api_base", &self.config.api_base.as_str())
            .field("profile", &self.config.profile)
            .finish_non_exhaustive()
    }
}

fn date(d: time::Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

impl PowensClient {
    /// A client for `config`, keeping the user token in `store` under the profile's name.
    pub fn new(
        config: PowensConfig,
        store: Arc<dyn TokenStore>,
    ) -> Result<PowensClient, PowensError> {
        let http = HttpsClient::new(config.api_base.clone(), config.https.clone())?;
        let namespace = Namespace::new(&config.namespace_source());
        Ok(PowensClient {
            config,
            http,
            store,
            namespace,
            key: Mutex::new(None),
            user: Mutex::new(None),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &PowensConfig {
        &self.config
    }

    /// The namespace of this domain's stable ids.
    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// The API base (ending with `/`).
    pub fn api_base(&self) -> &Url {
        self.http.base()
    }

    // -----------------------------------------------------------------------------------------
    // HTTP
    // -----------------------------------------------------------------------------------------

    /// Sends a request and turns an error status into the matching [`PowensError`].
    async fn call(&self, request: HttpsRequest) -> Result<StetResponse, PowensError> {
        let method = request.method.clone();
        let authenticated = request.bearer.is_some();
        let response = self.http.send(&request).await?;
        if (200..300).contains(&response.status) {
            return Ok(response);
        }
        Err(self.error(&method, response, authenticated))
    }

    fn error(&self, method: &Method, response: StetResponse, authenticated: bool) -> PowensError {
        let status = response.status;
        let url = response.url.to_string();
        let Ok(body) = serde_json::from_slice::<ErrorBody>(&response.body) else {
            return not_json(method, &response);
        };
        let message = body.description.clone().or(body.message.clone());
        let detail = || {
            body.code
                .clone()
                .into_iter()
                .chain(message.clone())
                .collect::<Vec<_>>()
                .join(": ")
        };
        match (status, body.code.as_deref()) {
            (409, Some("noAccount")) => PowensError::NoAccount { detail: message },
            (401 | 403, _) if authenticated => PowensError::TokenRefused {
                profile: self.config.profile.clone(),
                detail: detail(),
            },
            _ => PowensError::Api {
                method: method.to_string(),
                url,
                status,
                code: body.code,
                message,
            },
        }
    }

    /// Reads a JSON body as `T`.
    fn json<T: DeserializeOwned>(
        &self,
        what: &str,
        response: &StetResponse,
    ) -> Result<T, PowensError> {
        serde_json::from_slice(&response.body).map_err(|e| {
            if looks_like_markup(&response.body) {
                not_json(&Method::GET, response)
            } else {
                PowensError::Unreadable {
                    what: what.to_owned(),
                    detail: e.to_string(),
                }
            }
        })
    }

    async fn get<T: DeserializeOwned>(
        &self,
        target: &str,
        bearer: Option<Secret>,
    ) -> Result<T, PowensError> {
        let response = self
            .call(HttpsRequest::new(Method::GET, target).bearer(bearer))
            .await?;
        self.json(&format!("GET {}", response.url.path()), &response)
    }

    async fn bearer(&self) -> Result<Option<Secret>, PowensError> {
        Ok(Some(self.user_token().await?.token))
    }

    // -----------------------------------------------------------------------------------------
    // The user token
    // -----------------------------------------------------------------------------------------

    fn stored(&self, set: &TokenSet) -> Option<UserToken> {
        set.tokens.iter().find_map(|(key, token)| {
            let id = key.strip_prefix(USER_KEY)?.parse().ok()?;
            Some(UserToken {
                id_user: id,
                token: token.access_token.clone(),
            })
        })
    }

    fn store_err(e: stet_transport::StoreError) -> PowensError {
        PowensError::Transport(stet_transport::TransportError::Store(e.to_string()))
    }

    /// Runs `f` with the store locked against other runs, off the async threads.
    async fn locked(&self) -> Result<stet_transport::FileLock, PowensError> {
        let (store, profile) = (self.store.clone(), self.config.profile.clone());
        tokio::task::spawn_blocking(move || store.lock(&profile))
            .await
            .map_err(|e| {
                PowensError::Transport(stet_transport::TransportError::Store(e.to_string()))
            })?
            .map_err(Self::store_err)
    }

    fn save(&self, user: &UserToken) -> Result<(), PowensError> {
        let mut set = self
            .store
            .load(&self.config.profile)
            .map_err(Self::store_err)?;
        set.tokens.retain(|key, _| !key.starts_with(USER_KEY));
        set.tokens.insert(
            format!("{USER_KEY}{}", user.id_user),
            Token {
                access_token: user.token.clone(),
                token_type: "Bearer".to_owned(),
                expires_at: None,
                refresh_token: None,
                scopes: Vec::new(),
                obtained_at: unix(SystemTime::now()),
                authenticated_at: None,
            },
        );
        self.store
            .save(&self.config.profile, &set)
            .map_err(Self::store_err)
    }

    /// The stored user token, when there is one.
    pub async fn stored_user(&self) -> Result<Option<UserToken>, PowensError> {
        let mut cache = self.user.lock().await;
        if cache.is_none() {
            let set = self
                .store
                .load(&self.config.profile)
                .map_err(Self::store_err)?;
            *cache = self.stored(&set);
        }
        Ok(cache.clone())
    }

    /// The stored user token, or [`PowensError::NoUser`].
    pub async fn user_token(&self) -> Result<UserToken, PowensError> {
        self.stored_user()
            .await?
            .ok_or_else(|| PowensError::NoUser {
                profile: self.config.profile.clone(),
            })
    }

    fn client_credentials(&self) -> Map<String, Value> {
        let mut body = Map::new();
        body.insert(
            "client_id".into(),
            Value::from(self.config.client_id.as_str()),
        );
        body.insert(
            "client_secret".into(),
            Value::from(self.config.client_secret.expose()),
        );
        body
    }

    fn refused(&self, e: PowensError) -> PowensError {
        match e {
            PowensError::Api {
                status: 400 | 401 | 403,
                code,
                message,
                ..
            } => PowensError::ClientRefused {
                profile: self.config.profile.clone(),
                detail: code
                    .into_iter()
                    .chain(message)
                    .collect::<Vec<_>>()
                    .join(": "),
            },
            other => other,
        }
    }

    fn read_user(
        &self,
        response: &StetResponse,
        id_hint: Option<PowensId>,
    ) -> Result<UserToken, PowensError> {
        let value: Value = self.json("the token call", response)?;
        let token = value
            .get("auth_token")
            .or_else(|| value.get("access_token"))
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| PowensError::Unreadable {
                what: "the token call".into(),
                detail: "no `auth_token` in the answer".into(),
            })?;
        let id_user = value
            .get("id_user")
            .and_then(Value::as_i64)
            .or(id_hint)
            .ok_or_else(|| PowensError::Unreadable {
                what: "the token call".into(),
                detail: "no `id_user` in the answer".into(),
            })?;
        Ok(UserToken {
            id_user,
            token: Secret::new(token),
        })
    }

    /// The user of this profile, made with `POST /auth/init` (the client's credentials give a
    /// permanent user) when none is stored yet. Runs at the same time make one user: the
    /// store stays locked until the new token is saved.
    pub async fn init_user(&self) -> Result<(UserToken, bool), PowensError> {
        let _lock = self.locked().await?;
        let set = self
            .store
            .load(&self.config.profile)
            .map_err(Self::store_err)?;
        if let Some(user) = self.stored(&set) {
            *self.user.lock().await = Some(user.clone());
            return Ok((user, false));
        }
        let body = Value::Object(self.client_credentials())
            .to_string()
            .into_bytes();
        let response = self
            .call(HttpsRequest::json(Method::POST, "auth/init", body))
            .await
            .map_err(|e| self.refused(e))?;
        let user = self.read_user(&response, None)?;
        self.save(&user)?;
        tracing::info!(id_user = user.id_user, "made a permanent Powens user");
        *self.user.lock().await = Some(user.clone());
        Ok((user, true))
    }

    /// A new token for the user (`POST /auth/renew`): the stored one's user, or `id_user`;
    /// with `revoke_previous`, Powens revokes the tokens it had issued.
    pub async fn renew_user(
        &self,
        id_user: Option<PowensId>,
        revoke_previous: bool,
    ) -> Result<UserToken, PowensError> {
        let _lock = self.locked().await?;
        let set = self
            .store
            .load(&self.config.profile)
            .map_err(Self::store_err)?;
        let id_user = match (id_user, self.stored(&set)) {
            (Some(id), _) => id,
            (None, Some(user)) => user.id_user,
            (None, None) => {
                return Err(PowensError::NoUser {
                    profile: self.config.profile.clone(),
                });
            }
        };
        let mut body = self.client_credentials();
        body.insert("grant_type".into(), Value::from("client_credentials"));
        body.insert("id_user".into(), Value::from(id_user));
        body.insert("revoke_previous".into(), Value::from(revoke_previous));
        let response = self
            .call(HttpsRequest::json(
                Method::POST,
                "auth/renew",
                Value::Object(body).to_string().into_bytes(),
            ))
            .await
            .map_err(|e| self.refused(e))?;
        let user = self.read_user(&response, Some(id_user))?;
        self.save(&user)?;
        *self.user.lock().await = Some(user.clone());
        Ok(user)
    }

    /// Revokes the user token at Powens (`DELETE /auth/token`) and forgets it. The user and
    /// its connections stay at Powens. Gives the user's id, when one was stored.
    pub async fn revoke_user(&self) -> Result<Option<PowensId>, PowensError> {
        let _lock = self.locked().await?;
        let set = self
            .store
            .load(&self.config.profile)
            .map_err(Self::store_err)?;
        let Some(user) = self.stored(&set) else {
            return Ok(None);
        };
        match self
            .call(HttpsRequest::new(Method::DELETE, "auth/token").bearer(Some(user.token.clone())))
            .await
        {
            // Already refused: forgetting it is all that is left to do.
            Ok(_) | Err(PowensError::TokenRefused { .. }) => {}
            Err(e) => return Err(e),
        }
        self.store
            .delete(&self.config.profile)
            .map_err(Self::store_err)?;
        *self.user.lock().await = None;
        Ok(Some(user.id_user))
    }

    // -----------------------------------------------------------------------------------------
    // The domain key
    // -----------------------------------------------------------------------------------------

    /// The domain's encryption key, from `GET /publickey`: cached, fetched again with
    /// `refresh` (when Powens refused a JWE made with the cached one).
    pub async fn domain_key(&self, refresh: bool) -> Result<DomainKey, PowensError> {
        let mut cache = self.key.lock().await;
        if let (Some(key), false) = (cache.as_ref(), refresh) {
            return Ok(key.clone());
        }
        let response = self
            .call(HttpsRequest::new(Method::GET, "publickey"))
            .await?;
        if looks_like_markup(&response.body) {
            return Err(not_json(&Method::GET, &response));
        }
        let key = DomainKey::from_jwk(&response.body).map_err(PowensError::DomainKey)?;
        tracing::debug!(kid = key.kid(), bits = key.bits(), "Powens domain key");
        *cache = Some(key.clone());
        Ok(key)
    }

    /// Posts `plain` (a JSON object) with every value of `secret` added as a JWE. When Powens
    /// refuses it because a JWE was made for a key it no longer has ([`stale_key`]) and
    /// `GET /publickey` now gives another key, encrypts again with that key and posts once
    /// more. Any other refusal is returned at once: the bank may have seen the values (a wrong
    /// password), and trying them twice could lock the PSU out.
    async fn post_encrypted(
        &self,
        target: &str,
        plain: Map<String, Value>,
        secret: &[(String, Secret)],
    ) -> Result<StetResponse, PowensError> {
        let bearer = self.bearer().await?;
        let mut refresh = false;
        loop {
            let key = self.domain_key(refresh).await?;
            let mut body = plain.clone();
            for (name, value) in secret {
                let jwe = key
                    .encrypt(value.expose().as_bytes())
                    .map_err(PowensError::Encrypt)?;
                body.insert(name.clone(), Value::from(jwe));
            }
            let request = HttpsRequest::json(
                Method::POST,
                target,
                Value::Object(body).to_string().into_bytes(),
            )
            .bearer(bearer.clone());
            let response = self.http.send(&request).await?;
            if !refresh && !secret.is_empty() && stale_key(&response, key.kid()) {
                let fresh = self.domain_key(true).await?;
                if fresh.kid() != key.kid() {
                    tracing::info!(
                        old = key.kid(),
                        new = fresh.kid(),
                        "the domain key changed: encrypting again"
                    );
                    refresh = true;
                    continue;
                }
            }
            if (200..300).contains(&response.status) {
                return Ok(response);
            }
            return Err(self.error(&Method::POST, response, true));
        }
    }

    // -----------------------------------------------------------------------------------------
    // Connectors and connections
    // -----------------------------------------------------------------------------------------

    /// Every connector of the domain, with their fields and sources.
    pub async fn connectors(&self) -> Result<Vec<Raw<Connector>>, PowensError> {
        let list: ConnectorList = self.get("connectors?expand=fields,sources", None).await?;
        Ok(list.connectors)
    }

    fn answer(&self, response: &StetResponse) -> Result<ConnectionAnswer, PowensError> {
        Ok(ConnectionAnswer {
            status: response.status,
            connection: self.json("the connection", response)?,
        })
    }

    /// Creates a connection to `connector_uuid` through `source`, each of `fields` sent as a
    /// JWE. 202 means more is needed (see [`crate::connect`]).
    pub async fn create_connection(
        &self,
        connector_uuid: &str,
        source: Option<&str>,
        fields: &[(String, Secret)],
    ) -> Result<ConnectionAnswer, PowensError> {
        let mut plain = Map::new();
        plain.insert("connector_uuid".into(), Value::from(connector_uuid));
        if let Some(source) = source {
            plain.insert("source".into(), Value::from(source));
        }
        let response = self
            .post_encrypted("users/me/connections?expand=connector", plain, fields)
            .await?;
        self.answer(&response)
    }

    /// Updates a connection: `plain` as is (`{"resume": true}`, `{}`, a `source`) and each of
    /// `fields` as a JWE (one-time codes, a new password).
    pub async fn update_connection(
        &self,
        id: PowensId,
        plain: Map<String, Value>,
        fields: &[(String, Secret)],
    ) -> Result<ConnectionAnswer, PowensError> {
        let response = self
            .post_encrypted(
                &format!("users/me/connections/{id}?expand=connector"),
                plain,
                fields,
            )
            .await?;
        self.answer(&response)
    }

    /// One connection, its connector expanded.
    pub async fn connection(&self, id: PowensId) -> Result<Raw<Connection>, PowensError> {
        let bearer = self.bearer().await?;
        self.get(
            &format!("users/me/connections/{id}?expand=connector"),
            bearer,
        )
        .await
    }

    /// The user's connections, their connectors expanded.
    pub async fn connections(&self) -> Result<Vec<Raw<Connection>>, PowensError> {
        let bearer = self.bearer().await?;
        let list: ConnectionList = self
            .get("users/me/connections?expand=connector", bearer)
            .await?;
        Ok(list.connections)
    }

    /// Asks Powens to read the connection's bank now (`PUT /users/me/connections/{id}`), and
    /// gives the connection as it then stands; `None` when Powens answers that it is up to
    /// date already (409). `psu_present` false (`psu_requested=false`) keeps Powens from
    /// asking the PSU for a strong authentication: a PSU who is not there cannot give one.
    pub async fn sync_connection(
        &self,
        id: PowensId,
        psu_present: bool,
    ) -> Result<Option<Raw<Connection>>, PowensError> {
        let bearer = self.bearer().await?;
        let target =
            format!("users/me/connections/{id}?expand=connector&psu_requested={psu_present}");
        match self
            .call(HttpsRequest::new(Method::PUT, target).bearer(bearer))
            .await
        {
            Ok(response) => self
                .json(&format!("PUT {}", response.url.path()), &response)
                .map(Some),
            Err(PowensError::Api { status: 409, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes a connection, its accounts and transactions (at Powens, for good).
    pub async fn delete_connection(&self, id: PowensId) -> Result<(), PowensError> {
        let bearer = self.bearer().await?;
        self.call(
            HttpsRequest::new(Method::DELETE, format!("users/me/connections/{id}")).bearer(bearer),
        )
        .await?;
        Ok(())
    }

    /// The URL to send the PSU's browser to for a webauth connection: a new one to
    /// `connector` or an existing `connection`. Powens sends the browser back to
    /// `redirect_uri` with `id_connection` and `state`.
    pub async fn webauth_url(
        &self,
        target: WebauthTarget<'_>,
        source: Option<&str>,
        redirect_uri: &Url,
        state: &str,
    ) -> Result<Url, PowensError> {
        let bearer = self.bearer().await?;
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("client_id", &self.config.client_id);
        query.append_pair("redirect_uri", redirect_uri.as_str());
        query.append_pair("state", state);
        match target {
            WebauthTarget::Connector(uuid) => query.append_pair("connector_uuid", uuid),
            WebauthTarget::Connection(id) => query.append_pair("id_connection", &id.to_string()),
        };
        if let Some(source) = source {
            query.append_pair("source", source);
        }
        let value: Value = self
            .get(&format!("webauth-url?{}", query.finish()), bearer)
            .await?;
        let url =
            value
                .get("url")
                .and_then(Value::as_str)
                .ok_or_else(|| PowensError::Unreadable {
                    what: "GET /webauth-url".into(),
                    detail: "no `url` in the answer".into(),
                })?;
        let url = Url::parse(url).map_err(|e| PowensError::Unreadable {
            what: "GET /webauth-url".into(),
            detail: format!("`url` is not a URL: {e}"),
        })?;
        if url.scheme() != "https" && !self.config.https.allow_insecure_http {
            return Err(PowensError::Unreadable {
                what: "GET /webauth-url".into(),
                detail: format!("the page {url} is not https"),
            });
        }
        Ok(url)
    }

    // -----------------------------------------------------------------------------------------
    // Accounts and transactions
    // -----------------------------------------------------------------------------------------

    /// Every account of the user, disabled ones included (`?all`).
    pub async fn accounts(&self) -> Result<Vec<Raw<BankAccount>>, PowensError> {
        let bearer = self.bearer().await?;
        let list: AccountList = self.get("users/me/accounts?all", bearer).await?;
        Ok(list.accounts)
    }

    /// Enables an account: the PSU's consent to read it. Powens documents `POST` for updates;
    /// some domains answer that only to `PUT`, which is tried when `POST` is refused with 405.
    pub async fn enable_account(&self, id: PowensId) -> Result<Raw<BankAccount>, PowensError> {
        let bearer = self.bearer().await?;
        let target = format!("users/me/accounts/{id}?all");
        let body = br#"{"disabled":false}"#.to_vec();
        let response = match self
            .call(HttpsRequest::json(Method::POST, &target, body.clone()).bearer(bearer.clone()))
            .await
        {
            Err(PowensError::Api { status: 405, .. }) => {
                self.call(HttpsRequest::json(Method::PUT, &target, body).bearer(bearer))
                    .await?
            }
            other => other?,
        };
        self.json(&format!("POST /users/me/accounts/{id}"), &response)
    }

    /// The pages of an account's transactions (or the user's, with `None`), following
    /// `_links.next` as given, on Powens' host only.
    pub fn transaction_pages(
        &self,
        account: Option<PowensId>,
        query: &TransactionQuery,
    ) -> TransactionPages<'_> {
        let mut first = match account {
            Some(id) => format!("users/me/accounts/{id}/transactions?limit={}", query.limit),
            None => format!("users/me/transactions?limit={}", query.limit),
        };
        if let Some(d) = query.min_date {
            first.push_str(&format!("&min_date={}", date(d)));
        }
        if let Some(d) = query.max_date {
            first.push_str(&format!("&max_date={}", date(d)));
        }
        // The bounds are on the bank's date, as STET's dateFrom is, not on the editable
        // `application_date` Powens filters on by default.
        if query.min_date.is_some() || query.max_date.is_some() {
            first.push_str("&filter=date");
        }
        if let Some(t) = query.updated_after {
            // Powens reads a naive date-time as Paris time; the space is sent encoded.
            first.push_str(&format!(
                "&last_update={}",
                crate::paris::local_text(t).replace(' ', "%20")
            ));
        }
        if query.deleted {
            first.push_str("&all");
        }
        TransactionPages {
            client: self,
            next: Some(first),
            seen: Vec::new(),
        }
    }
}

/// What a webauth URL is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebauthTarget<'a> {
    /// A new connection to the connector with this uuid.
    Connector(&'a str),
    /// An existing connection.
    Connection(PowensId),
}

/// The pages of a transaction listing, one at a time.
#[derive(Debug)]
pub struct TransactionPages<'a> {
    client: &'a PowensClient,
    next: Option<String>,
    seen: Vec<String>,
}

impl TransactionPages<'_> {
    /// The next page; `None` after the last.
    pub async fn next(&mut self) -> Option<Result<TransactionPage, PowensError>> {
        let target = self.next.take()?;
        if self.seen.len() >= MAX_PAGES || self.seen.contains(&target) {
            return Some(Err(PowensError::Unreadable {
                what: "the transactions".into(),
                detail: format!("the next link {target} was already followed: Powens' pages loop"),
            }));
        }
        let bearer = match self.client.bearer().await {
            Ok(b) => b,
            Err(e) => return Some(Err(e)),
        };
        let page: Result<TransactionPage, PowensError> = self.client.get(&target, bearer).await;
        self.seen.push(target);
        if let Ok(page) = &page {
            self.next = page
                .links
                .next
                .as_ref()
                .map(|h| h.href.clone())
                .filter(|h| !h.is_empty() && !page.transactions.is_empty());
        }
        Some(page)
    }
}

/// Whether Powens refused a post because a JWE in it was made for a key it no longer has:
/// a 400 `invalidValue` whose description (or message) names the `kid` used, as a word of its
/// own. Powens documents no code of its own for this; the sandbox's mock answers a stale
/// `kid` this way, before it looks at anything else of the request. A refusal that does not
/// name the key is never taken for one: posting the same values again is only safe when
/// nothing of them reached the bank.
fn stale_key(response: &StetResponse, kid: &str) -> bool {
    if response.status != 400 || kid.is_empty() {
        return false;
    }
    let Ok(body) = serde_json::from_slice::<ErrorBody>(&response.body) else {
        return false;
    };
    body.code.as_deref() == Some("invalidValue")
        && [&body.description, &body.message]
            .into_iter()
            .flatten()
            .any(|text| names_word(text, kid))
}

/// Whether `word` occurs in `text` with no letter, digit, `-` or `_` right before or after it.
fn names_word(text: &str, word: &str) -> bool {
    let part = |c: char| c.is_alphanumeric() || c == '-' || c == '_';
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        !before.is_some_and(part) && !after.is_some_and(part)
    })
}

/// Whether a body is a web page or other markup rather than JSON.
fn looks_like_markup(body: &[u8]) -> bool {
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(&body[..0], |i| &body[i..]);
    start.starts_with(b"<")
}

fn not_json(method: &Method, response: &StetResponse) -> PowensError {
    let content_type = response
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let what = if content_type.contains("html") || looks_like_markup(&response.body) {
        "an HTML page"
    } else if response.body.is_empty() {
        "an empty body"
    } else {
        "a body that is not JSON"
    };
    let hint = match response.status {
        404 => "Powens does not know this id or uuid (it answers unknown ones with a web page): \
                check it with `stet connections` or `stet accounts`"
            .to_owned(),
        500..=599 => "Powens, or something in front of it, is failing: try again later".to_owned(),
        200..=299 => "something in front of Powens answered instead of it (maintenance?): try \
                      again later"
            .to_owned(),
        _ => "run the command again with -vv and check the domain and api_base".to_owned(),
    };
    PowensError::NotJson {
        method: method.to_string(),
        url: response.url.to_string(),
        status: response.status,
        what,
        hint,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, body: &str) -> StetResponse {
        StetResponse {
            status,
            headers: Default::default(),
            body: body.as_bytes().to_vec(),
            url: Url::parse("https://acme-sandbox.biapi.pro/2.0/users/me/connections").unwrap(),
            request_id: String::new(),
            attempts: 1,
        }
    }

    #[test]
    fn only_a_refusal_naming_the_key_used_is_a_stale_key() {
        let stale = r#"{"code":"invalidValue","description":"`password` is encrypted for key `k-1`, which is not the domain key (now `k-2`)"}"#;
        assert!(stale_key(&answer(400, stale), "k-1"));
        // Another key named, a longer kid that merely starts with it, or none at all.
        assert!(!stale_key(&answer(400, stale), "k-2x"));
        assert!(!stale_key(&answer(400, stale), "k"));
        let longer = r#"{"code":"invalidValue","message":"unknown key k-12"}"#;
        assert!(!stale_key(&answer(400, longer), "k-1"));
        assert!(stale_key(&answer(400, longer), "k-12"));
        // What the bank refused: the values reached it, they must not be posted again.
        for body in [
            r#"{"code":"wrongpass","message":"Incorrect password"}"#,
            r#"{"code":"actionNeeded","message":"k-1"}"#,
            r#"{"code":"invalidValue","description":"`login` is sent in clear"}"#,
            "<html>k-1</html>",
        ] {
            assert!(!stale_key(&answer(400, body), "k-1"), "{body}");
        }
        assert!(!stale_key(&answer(409, stale), "k-1"));
        assert!(!stale_key(&answer(400, stale), ""));
    }
}
