//! The PSU at the terminal, for `stet connect`: field values from `--field` or asked (hidden
//! for passwords, lists as numbered choices, each checked before it is sent), approvals in
//! the bank's app announced, and the browser round trip of a webauth connection with the
//! loopback and paste modes of `stet auth login`.

use std::collections::BTreeMap;
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::time::Duration;

use stet_powens::PowensError;
use stet_powens::connect::Psu;
use stet_powens::model::{ConnectorField, FieldType};
use stet_transport::Secret;
use url::Url;

use crate::exit::{self, Failure};

/// A failure of the PSU's side, carried through the connection flow with its exit code.
pub(crate) fn psu_error(failure: Failure) -> PowensError {
    PowensError::Psu(Box::new(failure))
}

/// The PSU at this terminal.
pub(crate) struct TerminalPsu {
    /// `--field NAME=VALUE`, by name.
    given: BTreeMap<String, Secret>,
    /// Whether stdin is a terminal (then values are prompted; otherwise read as lines).
    interactive: bool,
    /// The profile's redirect URI, for webauth connectors.
    redirect: Option<Url>,
    profile: String,
    no_browser: bool,
    timeout: Duration,
    quiet: bool,
    listener: Option<(tokio::net::TcpListener, Url)>,
}

impl TerminalPsu {
    pub(crate) fn new(
        fields: &[String],
        redirect: Option<Url>,
        profile: &str,
        no_browser: bool,
        timeout: Duration,
        quiet: bool,
    ) -> Result<TerminalPsu, Failure> {
        let mut given = BTreeMap::new();
        for field in fields {
            let (name, value) = field.split_once('=').ok_or_else(|| {
                Failure::new(
                    2,
                    format!(
                        "--field `{}`: expected NAME=VALUE, e.g. --field login=jdoe",
                        field.split('=').next().unwrap_or_default()
                    ),
                )
            })?;
            given.insert(name.trim().to_owned(), Secret::new(value));
        }
        Ok(TerminalPsu {
            given,
            interactive: std::io::stdin().is_terminal(),
            redirect,
            profile: profile.to_owned(),
            no_browser,
            timeout,
            quiet,
            listener: None,
        })
    }

    /// One value for `field`: from `--field`, else asked.
    fn value(&mut self, field: &ConnectorField) -> Result<Option<Secret>, Failure> {
        if let Some(value) = self.given.get(&field.name) {
            return match field.check(value.expose()) {
                Ok(checked) => Ok(Some(Secret::new(checked))),
                // The message names the field and its pattern, never the value of a secret.
                Err(e) => Err(Failure::new(2, format!("--field {}: {e}", field.name))),
            };
        }
        for attempt in 0..3 {
            let Some(answer) = self.ask(field)? else {
                return Ok(None);
            };
            if answer.expose().is_empty() && !field.is_required() {
                return Ok(None);
            }
            match field.check(answer.expose()) {
                Ok(checked) => return Ok(Some(Secret::new(checked))),
                Err(e) if self.interactive && attempt < 2 => eprintln!("{e}: try again"),
                Err(e) => return Err(Failure::new(2, e)),
            }
        }
        Err(Failure::new(
            2,
            format!("no valid value for {}", field.title()),
        ))
    }

    /// Asks for `field` on the terminal (or reads a line of stdin when it is not one).
    /// `None` at the end of the input.
    fn ask(&mut self, field: &ConnectorField) -> Result<Option<Secret>, Failure> {
        let label = field.title();
        if field.kind == FieldType::List && !field.values.is_empty() {
            eprintln!("{label}:");
            for (i, v) in field.values.iter().enumerate() {
                let shown = v.label.as_deref().filter(|l| *l != v.value);
                match shown {
                    Some(l) => eprintln!("  {}. {} ({l})", i + 1, v.value),
                    None => eprintln!("  {}. {}", i + 1, v.value),
                }
            }
        }
        let prompt = match &field.kind {
            FieldType::List => "choose (number or value): ".to_owned(),
            _ => format!("{label}: "),
        };
        let missing = || {
            Failure::new(
                2,
                format!(
                    "{label} is needed and stdin ended: pass it as --field {}=VALUE",
                    field.name
                ),
            )
        };
        let line = if field.kind == FieldType::Password && self.interactive {
            rpassword::prompt_password(&prompt)
                .map_err(|e| Failure::new(exit::NO_INPUT, format!("cannot read {label}: {e}")))?
        } else {
            eprint!("{prompt}");
            let _ = std::io::stderr().flush();
            let mut line = String::new();
            let n = std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| Failure::new(exit::NO_INPUT, format!("cannot read {label}: {e}")))?;
            if !self.interactive {
                eprintln!();
            }
            if n == 0 {
                return if field.is_required() {
                    Err(missing())
                } else {
                    Ok(None)
                };
            }
            line.trim_end_matches(['\n', '\r']).to_owned()
        };
        // A list's choice by its number.
        if field.kind == FieldType::List
            && let Ok(n) = line.trim().parse::<usize>()
            && (1..=field.values.len()).contains(&n)
        {
            return Ok(Some(Secret::new(field.values[n - 1].value.clone())));
        }
        Ok(Some(Secret::new(line)))
    }
}

impl Psu for TerminalPsu {
    async fn fields(
        &mut self,
        fields: &[ConnectorField],
        why: Option<&str>,
    ) -> Result<Vec<(String, Secret)>, PowensError> {
        if let Some(why) = why
            && !self.quiet
        {
            eprintln!("Powens asks: {why}");
        }
        let mut out = Vec::new();
        for field in fields {
            // An optional value left empty is not sent: an empty JWE carries nothing.
            if let Some(value) = self.value(field).map_err(psu_error)? {
                out.push((field.name.clone(), value));
            }
        }
        Ok(out)
    }

    fn notice(&mut self, text: &str) {
        if !self.quiet {
            eprintln!("{text}");
        }
    }

    async fn redirect_uri(&mut self) -> Result<Url, PowensError> {
        let redirect = self.redirect.clone().ok_or_else(|| {
            psu_error(Failure::new(
                exit::CONFIG,
                format!(
                    "this connection goes through the bank's site, and profile `{}` has no \
                     `redirect_uri`: add the one registered in the Powens console (a loopback \
                     one such as http://127.0.0.1:8765/callback lets stet catch the browser)",
                    self.profile
                ),
            ))
        })?;
        if stet_transport::config::is_loopback(&redirect) && !self.no_browser {
            let (listener, actual) = crate::auth::loopback_listener(&redirect)
                .await
                .map_err(psu_error)?;
            self.listener = Some((listener, actual.clone()));
            return Ok(actual);
        }
        Ok(redirect)
    }

    async fn browse(&mut self, url: &Url) -> Result<String, PowensError> {
        match self.listener.take() {
            Some((listener, actual)) => {
                eprintln!(
                    "Open this URL to connect at the bank (stet waits for the browser on {actual}):\n\n  {url}\n"
                );
                crate::auth::open_browser(url);
                crate::auth::await_redirect(
                    &listener,
                    &actual,
                    self.timeout,
                    "connection",
                    "run `stet connect` again",
                    |full| Ok(full.to_owned()),
                )
                .await
                .map_err(psu_error)
            }
            None => {
                eprintln!(
                    "Open this URL in a browser and connect at the bank:\n\n  {url}\n\nThen paste here the whole URL the browser was sent to (it starts with {}):",
                    self.redirect
                        .as_ref()
                        .map(Url::as_str)
                        .unwrap_or("the redirect URI")
                );
                crate::auth::read_pasted_url("run `stet connect` again").map_err(psu_error)
            }
        }
    }
}
