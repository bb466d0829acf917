//! Consent hooks: each event recorded in the store (`hook_events`, one per connection, event
//! and validity date) is told once to the configured command and/or URL. A delivery that
//! fails is tried again later, with a growing delay; the store marks an event delivered only
//! once every configured hook took it, and records a command that ran before the URL failed,
//! so the retry does not run it twice.

use std::process::Stdio;
use std::time::Duration;

use stet_store::{HookEvent, Store};
use tokio::io::AsyncWriteExt as _;

use crate::FleetError;

/// Where consent events go.
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    /// Run through `sh -c` with the event as JSON on stdin.
    pub command: Option<String>,
    /// POSTed the event as JSON.
    pub url: Option<String>,
}

/// The JSON a hook receives.
pub fn event_json(e: &HookEvent) -> serde_json::Value {
    let rfc3339 = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    serde_json::json!({
        "event": e.event,
        "connection": e.connection_id,
        "name": e.name,
        "profile": e.profile,
        "consentValidUntil": e.valid_until.map(rfc3339),
        "detail": e.detail,
    })
}

impl Hooks {
    /// Whether any hook is configured.
    pub fn configured(&self) -> bool {
        self.command.is_some() || self.url.is_some()
    }

    /// Delivers the events waiting (each claimed so that one worker delivers it); returns
    /// how many were delivered. Without a hook configured, events wait in the store.
    pub async fn deliver(&self, store: &Store) -> Result<usize, FleetError> {
        if !self.configured() {
            return Ok(0);
        }
        let mut delivered = 0;
        // Events whose delivery failed now are skipped by the query until their delay has
        // passed, so this loop ends.
        for _ in 0..100 {
            let Some(delivery) = store.next_hook_event().await? else {
                break;
            };
            match self.tell(&delivery.event).await {
                Ok(()) => {
                    tracing::info!(
                        connection = delivery.event.connection_id,
                        event = %delivery.event.event,
                        "consent hook delivered"
                    );
                    delivery.delivered().await?;
                    delivered += 1;
                }
                Err(Undelivered {
                    reason,
                    command_done,
                }) => {
                    tracing::warn!(
                        connection = delivery.event.connection_id,
                        event = %delivery.event.event,
                        "consent hook not delivered (tried again later): {reason}"
                    );
                    delivery.failed(&reason, command_done).await?;
                    break;
                }
            }
        }
        Ok(delivered)
    }

    /// Tells the command, then the URL; a command that ran for this event before (the URL
    /// failed then) is not run again.
    async fn tell(&self, e: &HookEvent) -> Result<(), Undelivered> {
        let mut command_done = e.command_done;
        let body = event_json(e).to_string();
        if let Some(command) = self.command.as_deref().filter(|_| !e.command_done) {
            self.run_command(command, e, &body)
                .await
                .map_err(|reason| Undelivered {
                    reason,
                    command_done,
                })?;
            command_done = true;
        }
        if let Some(url) = &self.url {
            Self::post(url, body).await.map_err(|reason| Undelivered {
                reason,
                command_done,
            })?;
        }
        Ok(())
    }

    async fn run_command(&self, command: &str, e: &HookEvent, body: &str) -> Result<(), String> {
        let mut child = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .env("STET_EVENT", &e.event)
            .env("STET_CONNECTION", e.connection_id.to_string())
            .env("STET_CONNECTION_NAME", &e.name)
            .env("STET_PROFILE", &e.profile)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|err| format!("cannot run hook_command: {err}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A command that does not read its input is not a failed delivery.
            let _ = stdin.write_all(body.as_bytes()).await;
        }
        let status = tokio::time::timeout(Duration::from_secs(60), child.wait())
            .await
            .map_err(|_| "hook_command ran longer than 60 s".to_owned())?
            .map_err(|err| format!("hook_command: {err}"))?;
        if !status.success() {
            return Err(format!("hook_command exited with {status}"));
        }
        Ok(())
    }

    async fn post(url: &str, body: String) -> Result<(), String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|err| format!("hook_url: {err}"))?;
        let answer = client
            .post(url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|err| format!("POST to hook_url: {}", err.without_url()))?;
        if !answer.status().is_success() {
            return Err(format!("hook_url answered {}", answer.status()));
        }
        Ok(())
    }
}

/// A delivery that failed, and whether the command had run (then only the URL is retried).
struct Undelivered {
    reason: String,
    command_done: bool,
}
