//! `stet auth`: the PSU's consent. `login` runs the OAuth2 authorization-code flow with PKCE
//! S256 and a checked `state`; `status` shows what is stored; `logout` forgets it.
//!
//! Two ways back from the bank, as RFC 8252 describes for native apps:
//! - the profile's `redirect_uri` is on this machine (`http://127.0.0.1…`, a sandbox or a bank
//!   that allows loopback redirects): stet listens there (on its port, or on a free one when
//!   the URI has none), opens the browser, and catches the redirect itself;
//! - otherwise, or with `--no-browser` on a remote shell: the PSU opens the printed URL
//!   anywhere, and pastes back the URL the bank redirected to.

use std::io::{BufRead as _, IsTerminal as _};
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};
use stet_transport::{
    FileTokenStore, OAuthClient, Profile, Secret, Token, TokenStore as _, Transport, unix,
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use url::Url;

use crate::Globals;
use crate::exit::{self, Failure, OrExit as _};
use crate::output::{OutputArgs, Report};

/// PSD2 (RTS art. 10, as amended in 2022): the PSU authenticates again at least every 180 days.
pub const CONSENT_DAYS: u64 = 180;
/// Warn this long before the consent runs out.
const WARN_DAYS: u64 = 14;
/// The token key of the PSU's account-access consent.
pub const CONSENT_KEY: &str = "aisp";

#[derive(Debug, Subcommand)]
pub enum AuthCommand {
    /// Log in: the PSU consents at the bank, stet keeps the tokens
    #[command(after_help = "Examples:
  stet auth login
  stet auth login --scope aisp --scope extended_transaction_history
  stet auth login --no-browser      # on a remote shell: paste the URL the bank redirected to")]
    Login(LoginArgs),
    /// Show the stored tokens: validity, scopes, the consent's age and when it must be renewed
    #[command(after_help = "Example:\n  stet auth status --profile my-bank")]
    Status(StatusArgs),
    /// Forget the stored tokens of the profile
    #[command(after_help = "Example:\n  stet auth logout --profile my-bank")]
    Logout(LogoutArgs),
}

#[derive(Debug, Args)]
pub struct LogoutArgs {
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct LoginArgs {
    /// A scope to ask for (repeat for several) [default: the profile's scopes, else aisp]
    #[arg(long = "scope", value_name = "SCOPE")]
    scopes: Vec<String>,
    /// Do not listen for the redirect: print the URL and ask for the URL the bank redirected to
    #[arg(long)]
    no_browser: bool,
    /// How long to wait for the PSU, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    timeout: u64,
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    out: OutputArgs,
}

impl StatusArgs {
    /// The format the result is printed in.
    pub(crate) fn format(&self) -> crate::output::Format {
        self.out.report()
    }
}

impl LoginArgs {
    /// The format the result is printed in.
    pub(crate) fn format(&self) -> crate::output::Format {
        self.out.report()
    }
}

impl LogoutArgs {
    /// The format the result is printed in.
    pub(crate) fn format(&self) -> crate::output::Format {
        self.out.report()
    }
}

pub fn run(command: AuthCommand, globals: &Globals) -> Result<u8, Failure> {
    if let Some(profile) = crate::powens::profile(globals)? {
        return crate::powens::auth(command, &profile, globals);
    }
    match command {
        AuthCommand::Login(args) => login(args, globals),
        AuthCommand::Status(args) => status(args, globals),
        AuthCommand::Logout(args) => logout(args, globals),
    }
}

pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .or_exit(1, "cannot start the async runtime")
}

fn login(args: LoginArgs, globals: &Globals) -> Result<u8, Failure> {
    let profile = crate::profile::load(globals)?;
    let scopes = if args.scopes.is_empty() {
        profile.scopes.clone()
    } else {
        args.scopes.clone()
    };
    let approval = Approval {
        no_browser: args.no_browser,
        timeout: Duration::from_secs(args.timeout),
        login_hint: None,
    };
    runtime()?.block_on(async {
        let transport = crate::profile::transport(&profile, &crate::profile::bank(&profile)?)?;
        let token = obtain_consent(&profile, &transport, &scopes, None, &approval).await?;
        let summary = describe(&token);
        let report = token_report(&profile.name, [(CONSENT_KEY, &token)], "");
        transport.store_token(CONSENT_KEY, token).await?;
        if !globals.quiet {
            eprintln!("Logged in (profile `{}`): {summary}", profile.name);
        }
        report.print(args.out.report())?;
        Ok(0)
    })
}

/// How the PSU's approval comes back.
#[derive(Debug, Clone)]
pub struct Approval {
    /// Ask for the redirected URL instead of listening for it.
    pub no_browser: bool,
    /// How long to wait for the PSU.
    pub timeout: Duration,
    /// Sent as `login_hint` (which PSU is expected, for banks and sandboxes that use it).
    pub login_hint: Option<String>,
}

/// Runs the authorization-code flow for `scopes` (at `at`, a payment's `consentApproval` link,
/// or the profile's authorization endpoint) and gives the token; does not store it.
pub async fn obtain_consent(
    profile: &Profile,
    transport: &Transport,
    scopes: &[String],
    at: Option<&Url>,
    approval: &Approval,
) -> Result<Token, Failure> {
    let redirect = profile.redirect_uri.clone().ok_or_else(|| {
        Failure::new(
            exit::CONFIG,
            format!(
                "profile `{}` has no `redirect_uri`: add the one registered with the bank",
                profile.name
            ),
        )
    })?;
    let oauth = transport.oauth().ok_or_else(|| {
        Failure::new(
            exit::CONFIG,
            format!(
                "profile `{}` needs `token_url` and `client_id` to log in",
                profile.name
            ),
        )
    })?;
    let extra: Vec<(String, String)> = approval
        .login_hint
        .iter()
        .map(|h| ("login_hint".to_owned(), h.clone()))
        .collect();
    let (oauth, code, verifier) =
        if stet_transport::config::is_loopback(&redirect) && !approval.no_browser {
            by_loopback(oauth, &redirect, scopes, at, &extra, approval.timeout).await?
        } else {
            by_paste(oauth, scopes, at, &extra)?
        };
    Ok(oauth.exchange_code(&code, &verifier, scopes).await?)
}

/// Listens on the loopback redirect URI, opens the browser, and waits for the bank's redirect.
async fn by_loopback(
    oauth: &OAuthClient,
    redirect: &Url,
    scopes: &[String],
    at: Option<&Url>,
    extra: &[(String, String)],
    timeout: Duration,
) -> Result<(OAuthClient, Secret, Secret), Failure> {
    let (listener, actual) = loopback_listener(redirect).await?;
    let oauth = oauth.with_redirect_uri(actual.clone());
    let auth = oauth.authorize(scopes, at, extra)?;
    eprintln!(
        "Open this URL to consent (stet waits for the bank's redirect on {actual}):\n\n  {}\n",
        auth.url
    );
    open_browser(&auth.url);
    let redirect = await_redirect(
        &listener,
        &actual,
        timeout,
        "consent",
        "run `stet auth login` again",
        |full| {
            oauth
                .read_redirect(full, &auth.state)
                .map_err(|e| e.to_string())
        },
    )
    .await?;
    Ok((oauth, redirect.code, auth.pkce_verifier))
}

/// Listens where the loopback redirect URI `redirect` points (its port, or a free one when it
/// has none; `localhost` as 127.0.0.1), and gives the URI with the port actually used.
pub(crate) async fn loopback_listener(
    redirect: &Url,
) -> Result<(tokio::net::TcpListener, Url), Failure> {
    let host = loopback_host(redirect);
    let listener = tokio::net::TcpListener::bind((host.as_str(), redirect.port().unwrap_or(0)))
        .await
        .or_exit(
            exit::CONFIG,
            format!("cannot listen on {redirect} for the browser's redirect"),
        )?;
    let port = listener
        .local_addr()
        .or_exit(1, "cannot read the listener's port")?
        .port();
    let mut actual = redirect.clone();
    let _ = actual.set_port(Some(port));
    Ok((listener, actual))
}

fn loopback_host(redirect: &Url) -> String {
    let host = redirect
        .host_str()
        .unwrap_or("127.0.0.1")
        .trim_matches(['[', ']'])
        .to_owned();
    if host.eq_ignore_ascii_case("localhost") {
        "127.0.0.1".to_owned()
    } else {
        host
    }
}

/// Opens the PSU's browser on `url`, unless `STET_NO_BROWSER` is set (the URL is printed
/// anyway).
pub(crate) fn open_browser(url: &Url) {
    if std::env::var_os("STET_NO_BROWSER").is_none() && webbrowser::open(url.as_str()).is_err() {
        tracing::info!("no browser could be opened: open the URL above yourself");
    }
}

/// Waits on `listener` for the browser's request to `redirect`'s path (other paths get a
/// 404), shows the browser a page saying whether `read` accepted the URL, and gives what
/// `read` made of it. `what` names the step on that page (`consent`); `again` says how to
/// start over when nothing comes within `timeout`.
pub(crate) async fn await_redirect<T>(
    listener: &tokio::net::TcpListener,
    redirect: &Url,
    timeout: Duration,
    what: &str,
    again: &str,
    read: impl Fn(&str) -> Result<T, String>,
) -> Result<T, Failure> {
    let host = loopback_host(redirect);
    let port = redirect.port().unwrap_or(0);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let accepted = tokio::time::timeout_at(deadline, listener.accept())
            .await
            .map_err(|_| {
                Failure::new(
                    exit::AUTH,
                    format!(
                        "no redirect from the browser within {} s: {again}",
                        timeout.as_secs()
                    ),
                )
            })?;
        let Ok((mut stream, _)) = accepted else {
            continue;
        };
        let Some(target) = read_request_target(&mut stream).await else {
            continue;
        };
        if !target.starts_with(redirect.path()) {
            let _ = stream
                .write_all(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            continue;
        }
        let full = format!("{}://{}:{}{}", redirect.scheme(), host, port, target);
        let outcome = read(&full);
        let page = match &outcome {
            Ok(_) => format!(
                "<h1>stet: {what} received</h1><p>You can close this window and go back to the terminal.</p>"
            ),
            Err(e) => format!("<h1>stet: {what} failed</h1><p>{}</p>", html_escape(e)),
        };
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
            page.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
        return outcome.map_err(|e| Failure::new(exit::AUTH, e));
    }
}

/// Prints the URL and reads back the URL the bank redirected to.
fn by_paste(
    oauth: &OAuthClient,
    scopes: &[String],
    at: Option<&Url>,
    extra: &[(String, String)],
) -> Result<(OAuthClient, Secret, Secret), Failure> {
    let auth = oauth.authorize(scopes, at, extra)?;
    eprintln!(
        "Open this URL in a browser and consent:\n\n  {}\n\nThen paste here the whole URL the browser was sent to (it starts with {}):",
        auth.url,
        oauth
            .settings()
            .redirect_uri
            .as_ref()
            .map(Url::as_str)
            .unwrap_or("the redirect URI")
    );
    let line = read_pasted_url("run `stet auth login` again")?;
    let redirect = oauth
        .read_redirect(&line, &auth.state)
        .map_err(|e| Failure::new(exit::AUTH, e))?;
    Ok((oauth.clone(), redirect.code, auth.pkce_verifier))
}

/// Reads the URL the PSU pastes (one line on stdin); `again` says how to start over when
/// nothing was pasted.
pub(crate) fn read_pasted_url(again: &str) -> Result<String, Failure> {
    let mut line = String::new();
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("> ");
    }
    stdin
        .lock()
        .read_line(&mut line)
        .or_exit(exit::NO_INPUT, "cannot read the pasted URL")?;
    if line.trim().is_empty() {
        return Err(Failure::new(
            exit::AUTH,
            format!("no URL was pasted: {again}"),
        ));
    }
    Ok(line.trim().to_owned())
}

/// The request target of the first request on `stream` (`/callback?code=…`), at most 16 KiB.
async fn read_request_target(stream: &mut tokio::net::TcpStream) -> Option<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk))
            .await
            .ok()?
            .ok()?;
        if n == 0 || buf.len() > 16 * 1024 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = buf.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim_end();
    let mut parts = line.split(' ');
    (parts.next()? == "GET").then_some(())?;
    parts.next().map(str::to_owned)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// One line about a token: scopes, validity, refresh, consent renewal.
pub fn describe(token: &Token) -> String {
    let now = unix(SystemTime::now());
    let mut parts = vec![format!("scopes {}", token.scopes.join(" "))];
    parts.push(match token.expires_at {
        Some(at) if at > now => format!("access token valid {}", duration_words(at - now)),
        Some(_) => "access token expired".to_owned(),
        None => "access token without expiry".to_owned(),
    });
    parts.push(if token.refresh_token.is_some() {
        "refreshable".to_owned()
    } else {
        "not refreshable".to_owned()
    });
    if let Some(at) = token.authenticated_at {
        let due = at + CONSENT_DAYS * 86_400;
        parts.push(if due > now {
            format!(
                "consent given {} ago, renew within {}",
                duration_words(now.saturating_sub(at)),
                duration_words(due - now)
            )
        } else {
            "consent older than 180 days: log in again".to_owned()
        });
    }
    parts.join(", ")
}

fn duration_words(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

fn store() -> Result<FileTokenStore, Failure> {
    FileTokenStore::default_dir()
        .map(FileTokenStore::new)
        .ok_or_else(|| {
            Failure::new(
                exit::CONFIG,
                "cannot find a data folder for the token store (is HOME set?)",
            )
        })
}

fn status(args: StatusArgs, globals: &Globals) -> Result<u8, Failure> {
    let profile = crate::profile::load(globals)?;
    let set = store()?
        .load(&profile.name)
        .map_err(|e| Failure::new(exit::IO, e))?;
    let now = unix(SystemTime::now());
    let text = if set.tokens.is_empty() {
        format!("profile `{}`: no tokens stored\n", profile.name)
    } else {
        set.tokens
            .iter()
            .map(|(key, token)| format!("{key}: {}\n", describe(token)))
            .collect()
    };
    token_report(
        &profile.name,
        set.tokens.iter().map(|(k, t)| (k.as_str(), t)),
        text,
    )
    .print(args.out.report())?;
    let consent = set.tokens.get(CONSENT_KEY);
    match consent.and_then(|t| t.authenticated_at) {
        None => {
            eprintln!(
                "not logged in for account access: run `stet auth login --profile {}`",
                profile.name
            );
            Ok(exit::AUTH)
        }
        Some(at) if at + CONSENT_DAYS * 86_400 <= now => {
            eprintln!(
                "the consent is older than 180 days: run `stet auth login --profile {}`",
                profile.name
            );
            Ok(exit::AUTH)
        }
        Some(at) => {
            let left = at + CONSENT_DAYS * 86_400 - now;
            if left < WARN_DAYS * 86_400 {
                eprintln!(
                    "warning: the consent must be renewed within {}: run `stet auth login --profile {}`",
                    duration_words(left),
                    profile.name
                );
            }
            Ok(0)
        }
    }
}

fn logout(args: LogoutArgs, globals: &Globals) -> Result<u8, Failure> {
    let profile = crate::profile::load(globals)?;
    let had = store()?
        .delete(&profile.name)
        .map_err(|e| Failure::new(exit::IO, e))?;
    if !globals.quiet {
        if had {
            eprintln!("Forgot the tokens of profile `{}`.", profile.name);
        } else {
            eprintln!("No tokens were stored for profile `{}`.", profile.name);
        }
    }
    Report::new(
        serde_json::json!({"profile": profile.name, "forgotten": had}),
        "",
    )
    .rows(
        &["profile", "forgotten"],
        vec![vec![profile.name.clone(), had.to_string()]],
    )
    .print(args.out.report())?;
    Ok(0)
}

/// `{"profile", "tokens": [...]}`: what is known of each token, never the token itself.
fn token_report<'t>(
    profile: &str,
    tokens: impl IntoIterator<Item = (&'t str, &'t Token)>,
    text: impl Into<String>,
) -> Report {
    let now = unix(SystemTime::now());
    let mut items = Vec::new();
    let mut rows = Vec::new();
    for (key, t) in tokens {
        let valid = t.expires_at.is_none_or(|at| at > now);
        let renew_by = t.authenticated_at.map(|a| a + CONSENT_DAYS * 86_400);
        items.push(serde_json::json!({
            "key": key,
            "scopes": t.scopes,
            "expires_at": t.expires_at,
            "valid": valid,
            "refreshable": t.refresh_token.is_some(),
            "authenticated_at": t.authenticated_at,
            "consent_renew_by": renew_by,
        }));
        let number = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
        rows.push(vec![
            key.to_owned(),
            t.scopes.join(" "),
            number(t.expires_at),
            valid.to_string(),
            t.refresh_token.is_some().to_string(),
            number(t.authenticated_at),
            number(renew_by),
        ]);
    }
    Report::new(
        serde_json::json!({"profile": profile, "tokens": items}),
        text,
    )
    .rows(
        &[
            "key",
            "scopes",
            "expires_at",
            "valid",
            "refreshable",
            "authenticated_at",
            "consent_renew_by",
        ],
        rows,
    )
}
