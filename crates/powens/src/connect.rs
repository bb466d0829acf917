//! Connecting a PSU's bank: creating a connection and driving it to a usable state.
//!
//! Powens answers a new connection with its `state`: `null` when it works, otherwise what it
//! waits for. [`connect`] and [`resume`] follow the recipes, asking the PSU through a [`Psu`]
//! (the CLI prompts on a terminal; a server would ask its web front end):
//!
//! | state (or HTTP 202) | what is done |
//! |---|---|
//! | `additionalInformationNeeded` | the connection's `fields` are asked (a one-time code) and posted, each as a JWE |
//! | `decoupled`, `validating` | the PSU is told to approve in the bank's app; `POST {"resume": true}` waits for it, again until it is done or the time is up |
//! | `SCARequired` | `POST {}` starts the strong authentication; what follows is driven the same way |
//! | `webauthRequired` | the PSU's browser goes to `GET /webauth-url`'s page and comes back to the redirect URI with `id_connection` and `state` (checked) |
//! | `wrongpass`, `passwordExpired`, `actionNeeded` | stop: [`PowensError::ConnectionState`] (the PSU must act at the bank or give other credentials) |
//! | `rateLimiting`, `websiteUnavailable`, `bug` | stop: try again later |
//!
//! A connector with several sources gets them in `priority` order: the connection is made
//! with the first, and each further one is added (`POST {"source": …}` with its fields) once
//! the connection works. A connector whose mechanism is `webauth` starts in the browser.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use stet_models::Raw;
use stet_transport::Secret;
use url::Url;

use crate::PowensError;
use crate::client::{ConnectionAnswer, PowensClient, WebauthTarget};
use crate::model::{
    Connection, ConnectionState, Connector, ConnectorField, ConnectorSource, PowensId,
};

/// The PSU's side of a connection.
pub trait Psu {
    /// Values for `fields`, by field name, each checked with [`ConnectorField::check`]. `why`
    /// is Powens' message, when it gave one (`openapisms: Dites abcd`).
    fn fields(
        &mut self,
        fields: &[ConnectorField],
        why: Option<&str>,
    ) -> impl Future<Output = Result<Vec<(String, Secret)>, PowensError>>;

    /// Something the PSU should know or do now (approve in the bank's app).
    fn notice(&mut self, text: &str);

    /// The redirect URI to give Powens for a webauth connection (a loopback listener may be
    /// started here, to catch the browser coming back).
    fn redirect_uri(&mut self) -> impl Future<Output = Result<Url, PowensError>>;

    /// Sends the PSU to `url`, and gives the URL the browser came back to.
    fn browse(&mut self, url: &Url) -> impl Future<Output = Result<String, PowensError>>;
}

/// How long to wait for the PSU.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Only this source (by name); every source in priority order otherwise.
    pub source: Option<String>,
    /// How long to wait for an approval in the bank's app.
    pub approval_timeout: Duration,
    /// The pause between two `resume`s that came back still waiting.
    pub poll: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            source: None,
            approval_timeout: Duration::from_secs(300),
            poll: Duration::from_secs(2),
        }
    }
}

/// Steps after which a connection that keeps asking is given up.
const MAX_STEPS: usize = 25;

/// Connects the PSU to `connector` and drives the connection until it can be used.
pub async fn connect<P: Psu>(
    client: &PowensClient,
    connector: &Connector,
    psu: &mut P,
    options: &ConnectOptions,
) -> Result<Raw<Connection>, PowensError> {
    let mut sources = connector.sources_in_order();
    if let Some(name) = &options.source {
        let chosen = connector
            .sources
            .iter()
            .find(|s| s.name == *name)
            .ok_or_else(|| {
                PowensError::Psu(
                    format!(
                        "{} has no source `{name}` (it has: {})",
                        connector.name,
                        connector
                            .sources
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                    .into(),
                )
            })?;
        sources = vec![chosen];
    }
    let mut given: BTreeMap<String, Secret> = BTreeMap::new();
    let first = sources.first().copied();
    let mut connection = if connector.is_webauth() || first.is_some_and(is_webauth) {
        webauth(
            client,
            WebauthTarget::Connector(&connector.uuid),
            first.map(|s| s.name.as_str()),
            psu,
        )
        .await?
    } else {
        let values = ask(psu, connector, first, &mut given).await?;
        let answer = client
            .create_connection(&connector.uuid, first.map(|s| s.name.as_str()), &values)
            .await
            .map_err(|e| as_state(e, None, connector))?;
        answer.connection.clone()
    };
    connection = drive(
        client,
        first_answer(connection),
        psu,
        options,
        Some(connector),
    )
    .await?;
    for source in sources.iter().skip(1) {
        tracing::info!(source = %source.name, "adding the next source");
        let id = connection.id;
        let answer = if is_webauth(source) {
            first_answer(
                webauth(
                    client,
                    WebauthTarget::Connection(id),
                    Some(&source.name),
                    psu,
                )
                .await?,
            )
        } else {
            let values = ask(psu, connector, Some(source), &mut given).await?;
            let mut plain = Map::new();
            plain.insert("source".into(), Value::from(source.name.as_str()));
            client
                .update_connection(id, plain, &values)
                .await
                .map_err(|e| as_state(e, Some(id), connector))?
        };
        connection = drive(client, answer, psu, options, Some(connector)).await?;
    }
    Ok(connection)
}

/// Drives an existing connection (one that needs the PSU again) until it can be used.
pub async fn resume<P: Psu>(
    client: &PowensClient,
    id: PowensId,
    psu: &mut P,
    options: &ConnectOptions,
) -> Result<Raw<Connection>, PowensError> {
    let connection = client.connection(id).await?;
    drive(client, first_answer(connection), psu, options, None).await
}

fn first_answer(connection: Raw<Connection>) -> ConnectionAnswer {
    ConnectionAnswer {
        status: 200,
        connection,
    }
}

fn is_webauth(source: &ConnectorSource) -> bool {
    source.auth_mechanism.as_deref() == Some("webauth")
}

/// Asks the values of the fields `source` needs that were not given yet, and gives every
/// value the source needs.
async fn ask<P: Psu>(
    psu: &mut P,
    connector: &Connector,
    source: Option<&ConnectorSource>,
    given: &mut BTreeMap<String, Secret>,
) -> Result<Vec<(String, Secret)>, PowensError> {
    let needed: Vec<&ConnectorField> = connector
        .fields
        .iter()
        .filter(|f| f.applies_to(source, "credentials"))
        .collect();
    let missing: Vec<ConnectorField> = needed
        .iter()
        .filter(|f| !given.contains_key(&f.name))
        .map(|f| (*f).clone())
        .collect();
    if !missing.is_empty() {
        for (name, value) in psu.fields(&missing, None).await? {
            given.insert(name, value);
        }
    }
    Ok(needed
        .iter()
        .filter_map(|f| given.get(&f.name).map(|v| (f.name.clone(), v.clone())))
        .collect())
}

/// A Powens error code that names a connection state becomes that state's error.
fn as_state(e: PowensError, id: Option<PowensId>, connector: &Connector) -> PowensError {
    match e.as_state() {
        Some(state) if !matches!(e, PowensError::ConnectionState { .. }) => {
            let message = match &e {
                PowensError::Api { message, .. } => message.clone(),
                _ => None,
            };
            PowensError::ConnectionState {
                id,
                connector: Some(connector.name.clone()),
                state,
                message,
            }
        }
        _ => e,
    }
}

/// Follows the connection's state until it is usable or cannot be made so.
async fn drive<P: Psu>(
    client: &PowensClient,
    mut answer: ConnectionAnswer,
    psu: &mut P,
    options: &ConnectOptions,
    connector: Option<&Connector>,
) -> Result<Raw<Connection>, PowensError> {
    let mut told = false;
    let mut deadline: Option<Instant> = None;
    for _ in 0..MAX_STEPS {
        let connection = answer.connection.clone();
        let id = connection.id;
        let name = connector
            .map(|c| c.name.clone())
            .or_else(|| connection.connector.as_ref().map(|c| c.name.clone()));
        let stop = |state: ConnectionState| PowensError::ConnectionState {
            id: Some(id),
            connector: name.clone(),
            state,
            message: connection.error_message.clone(),
        };
        let fail = |e: PowensError| match e.as_state() {
            Some(state) if !matches!(e, PowensError::ConnectionState { .. }) => {
                PowensError::ConnectionState {
                    id: Some(id),
                    connector: name.clone(),
                    state,
                    message: match &e {
                        PowensError::Api { message, .. } => message.clone(),
                        _ => None,
                    },
                }
            }
            _ => e,
        };
        let state = connection.state();
        let more_fields = answer.status == 202 && !connection.fields.is_empty();
        answer =
            match state {
                ConnectionState::Valid if !more_fields && answer.status != 202 => {
                    return Ok(connection);
                }
                ConnectionState::Valid if !more_fields => {
                    // 202 with nothing asked: look again in a moment.
                    tokio::time::sleep(options.poll).await;
                    first_answer(client.connection(id).await?)
                }
                ConnectionState::AdditionalInformationNeeded | ConnectionState::Valid => {
                    if connection.fields.is_empty() {
                        return Err(PowensError::Unreadable {
                            what: format!("connection {id}"),
                            detail: "Powens asks for more information but names no field".into(),
                        });
                    }
                    let values = psu
                        .fields(&connection.fields, connection.error_message.as_deref())
                        .await?;
                    client
                        .update_connection(id, Map::new(), &values)
                        .await
                        .map_err(fail)?
                }
                ConnectionState::Decoupled | ConnectionState::Validating => {
                    if !told {
                        psu.notice(connection.error_message.as_deref().unwrap_or(
                            "approve the connection in the bank's app; stet waits for it",
                        ));
                        told = true;
                    }
                    let until =
                        *deadline.get_or_insert_with(|| Instant::now() + options.approval_timeout);
                    if Instant::now() >= until {
                        return Err(PowensError::Psu(
                            format!(
                                "connection {id} was not approved in the bank's app within {} s: \
                             approve it, then run `stet connect --connection {id}`",
                                options.approval_timeout.as_secs()
                            )
                            .into(),
                        ));
                    }
                    let mut plain = Map::new();
                    plain.insert("resume".into(), Value::Bool(true));
                    let next = client
                        .update_connection(id, plain, &[])
                        .await
                        .map_err(fail)?;
                    if matches!(
                        next.connection.state(),
                        ConnectionState::Decoupled | ConnectionState::Validating
                    ) {
                        tokio::time::sleep(options.poll).await;
                    }
                    next
                }
                ConnectionState::ScaRequired => client
                    .update_connection(id, Map::new(), &[])
                    .await
                    .map_err(fail)?,
                ConnectionState::WebauthRequired => {
                    first_answer(webauth(client, WebauthTarget::Connection(id), None, psu).await?)
                }
                other => return Err(stop(other)),
            };
    }
    Err(PowensError::Psu(
        format!(
            "connection {} is still `{}` after {MAX_STEPS} steps: see it with `stet connections`",
            answer.connection.id,
            answer.connection.state().label()
        )
        .into(),
    ))
}

/// 128 random bits as hex: the `state` that ties a browser's return to this run.
fn random_state() -> Result<String, PowensError> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| PowensError::Psu("the system's random generator failed".into()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The PSU's browser goes to the bank through Powens and comes back; gives the connection.
async fn webauth<P: Psu>(
    client: &PowensClient,
    target: WebauthTarget<'_>,
    source: Option<&str>,
    psu: &mut P,
) -> Result<Raw<Connection>, PowensError> {
    let redirect = psu.redirect_uri().await?;
    let state = random_state()?;
    let url = client
        .webauth_url(target, source, &redirect, &state)
        .await?;
    let back = psu.browse(&url).await?;
    let id = read_callback(&back, &state, &redirect)?;
    if let WebauthTarget::Connection(expected) = target
        && id.is_some_and(|id| id != expected)
    {
        return Err(PowensError::Psu(
            format!("the browser came back for connection {id:?}, not {expected}").into(),
        ));
    }
    let id = match (target, id) {
        (_, Some(id)) => id,
        (WebauthTarget::Connection(id), None) => id,
        (WebauthTarget::Connector(_), None) => {
            return Err(PowensError::Psu(
                "the browser came back without `id_connection`: the connection was not made".into(),
            ));
        }
    };
    client.connection(id).await
}

/// Reads the URL the browser came back to: `state` must be ours; an `error` is the PSU's or
/// the bank's refusal.
pub fn read_callback(
    url: &str,
    state: &str,
    redirect: &Url,
) -> Result<Option<PowensId>, PowensError> {
    let back = Url::parse(url.trim()).map_err(|e| {
        PowensError::Psu(
            format!(
                "`{}` is not the URL the browser came back to: {e}",
                url.trim()
            )
            .into(),
        )
    })?;
    if back.path() != redirect.path() {
        return Err(PowensError::Psu(
            format!(
                "the browser came back to {}, not to the redirect URI {redirect}",
                back.path()
            )
            .into(),
        ));
    }
    let pairs: BTreeMap<String, String> = back.query_pairs().into_owned().collect();
    if pairs.get("state").map(String::as_str) != Some(state) {
        return Err(PowensError::Psu(
            "the browser came back with another `state`: it is not the answer to this \
             connection (start again)"
                .into(),
        ));
    }
    if let Some(error) = pairs.get("error") {
        return Err(PowensError::Psu(
            format!(
                "the bank or Powens refused the connection: {error}{}",
                pairs
                    .get("error_description")
                    .map(|d| format!(" ({d})"))
                    .unwrap_or_default()
            )
            .into(),
        ));
    }
    match pairs.get("id_connection") {
        None => Ok(None),
        Some(id) => id.parse().map(Some).map_err(|_| {
            PowensError::Psu(format!("`id_connection` {id} is not a connection id").into())
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callbacks_are_checked() {
        let redirect = Url::parse("http://127.0.0.1:8765/callback").unwrap();
        let ok = "http://127.0.0.1:8765/callback?id_connection=12&state=abc";
        assert_eq!(read_callback(ok, "abc", &redirect).unwrap(), Some(12));
        for (url, needle) in [
            (
                "http://127.0.0.1:8765/callback?id_connection=12&state=zzz",
                "another `state`",
            ),
            (
                "http://127.0.0.1:8765/other?state=abc",
                "not to the redirect URI",
            ),
            (
                "http://127.0.0.1:8765/callback?state=abc&error=access_denied&error_description=no",
                "access_denied (no)",
            ),
            ("not a url", "not the URL"),
            (
                "http://127.0.0.1:8765/callback?id_connection=x&state=abc",
                "not a connection id",
            ),
        ] {
            let err = read_callback(url, "abc", &redirect)
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{url}: {err}");
        }
    }
}
