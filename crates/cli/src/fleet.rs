//! The fleet's commands: `stet psu add|list|show|remove|sync`, `stet schedule`, `stet worker`
//! and `stet fleet status`. The logic is `stet-fleet`'s and the store's; this is the command
//! line (docs/fleet.md).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};
use serde_json::json;
use stet_client::bank::BankProfile;
use stet_fleet::{
    FleetConfig, Hooks, Metrics, ProfileSource, StoreKey, Vault, Worker, WorkerOptions,
};
use stet_store::{Connection, Location, NewConnection, OpenOptions, Store};
use stet_transport::{Profile, Secret, Token, TokenStore, Transport, config};

use crate::Globals;
use crate::exit::{self, Failure};
use crate::output::{Format, OutputArgs, Report};
use crate::store::{StoreArgs, failure, location, runtime};

/// `stet psu …`.
#[derive(Debug, Subcommand)]
pub enum PsuCommand {
    /// Add a PSU's connection: run the consent flow (or take tokens from --token-env), seal
    /// the tokens in the store, schedule its syncs
    Add(AddArgs),
    /// List the connections
    List(ListArgs),
    /// Show one connection (never its tokens)
    Show(ShowArgs),
    /// Remove a connection: its tokens and job are deleted, its synced data kept
    Remove(ShowArgs),
    /// Sync a connection now with the PSU present (an on-demand job for the workers)
    Sync(PsuSyncArgs),
}

/// `stet psu add`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  stet psu add --profile my-bank --name alice            # the consent flow, as stet auth login
  STET_PSU_TOKEN=\"$(cat token.json)\" stet psu add --profile my-bank --name bob --token-env STET_PSU_TOKEN

The tokens are sealed with the store key (STET_STORE_KEY, or store_key_file in [fleet]) and
never stored in clear; the connection's first sync is due at once.")]
pub struct AddArgs {
    /// The connection's name, unique in the profile (the `psu` column of stet_transactions)
    #[arg(long, value_name = "NAME", required_unless_present = "batch")]
    name: Option<String>,
    /// Sent to the bank as login_hint (which PSU is expected)
    #[arg(long, value_name = "HINT")]
    login_hint: Option<String>,
    /// Take the tokens from this environment variable: the token endpoint's JSON answer, or a
    /// bare access token
    #[arg(long, value_name = "VAR")]
    token_env: Option<String>,
    /// Add many: a file of JSON lines {"name": …, "token": <the token endpoint's answer>}
    #[arg(long, value_name = "FILE", hide = true, conflicts_with_all = ["name", "token_env", "login_hint"])]
    batch: Option<PathBuf>,
    /// Print the redirected URL prompt instead of listening on the loopback redirect URI
    #[arg(long)]
    no_browser: bool,
    /// How long to wait for the PSU's consent, in seconds
    #[arg(
        long = "consent-timeout",
        value_name = "SECONDS",
        default_value_t = 300
    )]
    consent_timeout: u64,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    out: OutputArgs,
}

/// `stet psu list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Every profile's connections (default: the chosen profile's when one is chosen)
    #[arg(long)]
    all_profiles: bool,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    out: OutputArgs,
}

/// `stet psu show|remove ID`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The connection: its id, or its name
    #[arg(value_name = "ID")]
    connection: String,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    out: OutputArgs,
}

/// `stet psu sync ID --psu-ip IP`.
#[derive(Debug, Args)]
pub struct PsuSyncArgs {
    /// The connection: its id, or its name
    #[arg(value_name = "ID")]
    connection: String,
    /// Run the sync here and wait for it, instead of leaving it to the workers
    #[arg(long)]
    wait: bool,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    out: OutputArgs,
}

/// `stet schedule`.
#[derive(Debug, Args)]
#[command(
    after_help = "Each active connection is synced 4 times a day without the PSU, at its \
own offset + k × 6 h (spread, the same on every machine). `stet schedule` creates the jobs that \
are missing; --now makes every active connection due at once (first runs, tests)."
)]
pub struct ScheduleArgs {
    /// Make every active connection due now
    #[arg(long)]
    now: bool,
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    out: OutputArgs,
}

/// `stet worker`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  stet worker --store postgres://stet@db/stet --concurrency 8 --metrics-addr 127.0.0.1:9187
  stet worker --store postgres://stet@db/stet --exit-when-idle     # drain the queue, then exit

Any number of workers, on any number of machines, share the queue: each claims due jobs, holds
a lease it renews, and completes a job only while the lease is its own. SIGTERM or ctrl-c: no
new claims, running jobs finish. Exit codes: 0 done; 78 configuration (a SQLite store, no store
key); 65 a store key that does not open the tokens; 74 the store failed.")]
pub struct WorkerArgs {
    /// Jobs run at once
    #[arg(long, value_name = "N", default_value_t = 4)]
    concurrency: usize,
    /// Serve Prometheus metrics on this address (GET /metrics)
    #[arg(long, value_name = "ADDR")]
    metrics_addr: Option<String>,
    /// Exit when no job is due and none is leased by another worker
    #[arg(long)]
    exit_when_idle: bool,
    /// The lease on a claimed job, in seconds (renewed every third)
    #[arg(long, value_name = "SECONDS", default_value_t = 60)]
    lease: u64,
    /// This worker's name in leases and job runs [default: HOST-PID]
    #[arg(long, value_name = "ID")]
    worker_id: Option<String>,
    /// How often an idle worker looks for due jobs, in milliseconds
    #[arg(long, value_name = "MS", default_value_t = 2000, hide = true)]
    poll_ms: u64,
    #[command(flatten)]
    store: StoreArgs,
    /// How the summary printed at exit looks: with the default, a line on stderr (unless
    /// --quiet); json, ndjson or csv print it on stdout
    #[command(flatten)]
    out: OutputArgs,
}

/// `stet fleet …`.
#[derive(Debug, Subcommand)]
pub enum FleetCommand {
    /// The queue at a glance: connections by state, jobs due, late and leased, the last
    /// hour's runs, budget use
    Status(StatusArgs),
}

/// `stet fleet status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    #[command(flatten)]
    store: StoreArgs,
    #[command(flatten)]
    out: OutputArgs,
}

/// The configuration file and its `[fleet]` table.
fn fleet_config(
    globals: &Globals,
) -> Result<(Option<config::ConfigFile>, Option<PathBuf>, FleetConfig), Failure> {
    let (path, explicit) = crate::profile::config_path(globals);
    let Some(path) = path.filter(|p| explicit || p.exists()) else {
        return Ok((None, None, FleetConfig::default()));
    };
    let file = config::load_file(&path).map_err(|e| Failure::new(exit::CONFIG, e))?;
    let fleet = match file.fleet.clone() {
        Some(table) => FleetConfig::from_table(table).map_err(|e| Failure::new(exit::CONFIG, e))?,
        None => FleetConfig::default(),
    };
    Ok((Some(file), Some(path), fleet))
}

/// The store key: `STET_STORE_KEY`, else `[fleet] store_key_file`.
fn store_key(fleet: &FleetConfig) -> Result<StoreKey, Failure> {
    let env = std::env::var(stet_fleet::STORE_KEY_ENV).ok();
    StoreKey::load(env.as_deref(), fleet.store_key_file.as_deref())
        .map_err(|e| Failure::new(exit::CONFIG, e))
}

fn fleet_failure(e: stet_fleet::FleetError) -> Failure {
    use stet_fleet::FleetError as E;
    let code = match &e {
        E::Store(s) => return failure_store(s, e.to_string()),
        E::NoStoreKey | E::BadStoreKey { .. } | E::Config(_) | E::Metrics { .. } => exit::CONFIG,
        E::KeyMismatch { .. } => exit::DATA,
        E::ConsentRefused { .. } | E::NoTokens { .. } => exit::AUTH,
        E::Refresh { .. } => exit::TEMPORARY,
        _ => 1,
    };
    Failure::new(code, e)
}

fn failure_store(e: &stet_store::StoreError, message: String) -> Failure {
    use stet_store::StoreError as S;
    let code = match e {
        S::BadUrl { .. } | S::NewerSchema { .. } | S::FleetNeedsPostgres { .. } => exit::CONFIG,
        S::Locked { .. } => exit::TEMPORARY,
        S::Corrupt { .. } => exit::DATA,
        S::NoSuchConnection { .. } | S::AmbiguousConnection { .. } | S::ConnectionExists { .. } => {
            1
        }
        S::ConnectionNotActive { .. } => exit::AUTH,
        _ => exit::IO,
    };
    Failure::new(code, message)
}

fn store_failure(e: stet_store::StoreError) -> Failure {
    let message = e.to_string();
    match e {
        stet_store::StoreError::NoSuchConnection { .. }
        | stet_store::StoreError::AmbiguousConnection { .. }
        | stet_store::StoreError::ConnectionExists { .. }
        | stet_store::StoreError::ConnectionNotActive { .. }
        | stet_store::StoreError::FleetNeedsPostgres { .. } => failure_store(&e, message),
        other => failure(other),
    }
}

/// Refuses a SQLite store before anything is opened or written.
fn needs_postgres(location: &Location) -> Result<(), Failure> {
    match location {
        Location::Postgres(_) => Ok(()),
        Location::Sqlite(_) => Err(Failure::new(
            exit::CONFIG,
            format!(
                "the store {} is SQLite: the fleet (connections, jobs, workers) needs PostgreSQL; give \
                 one with --store postgres://USER@HOST/DATABASE (or STET_STORE, or the profile's `store`). \
                 Nothing was changed",
                location.display()
            ),
        )),
    }
}

async fn open_fleet_store(
    args: &StoreArgs,
    location: &Location,
    connections: u32,
) -> Result<Store, Failure> {
    needs_postgres(location)?;
    let options = OpenOptions {
        busy_timeout: Duration::from_secs(args.timeout.max(1)),
        migrate: true,
        max_connections: connections,
    };
    Store::open(location, &options).await.map_err(failure)
}

fn fleet_location(
    args: &StoreArgs,
    globals: &Globals,
    profile_store: Option<&str>,
) -> Result<Location, Failure> {
    let location = location(args, globals, profile_store)?;
    needs_postgres(&location)?;
    Ok(location)
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn connection_json(c: &Connection) -> serde_json::Value {
    json!({
        "id": c.id,
        "profile": c.profile,
        "name": c.name,
        "bank": c.bank,
        "scopes": c.scopes.split_whitespace().collect::<Vec<_>>(),
        "state": c.state,
        "consentValidUntil": c.consent_valid_until.map(rfc3339),
        "createdAt": rfc3339(c.created_at),
        "needsPsuSince": c.needs_psu_since.map(rfc3339),
        "lastError": c.last_error,
        "scheduleOffsetSeconds": c.schedule_offset,
        "nextDue": c.due_at.map(rfc3339),
        "hasTokens": c.has_tokens,
    })
}

const COLUMNS: [&str; 7] = [
    "id",
    "profile",
    "name",
    "state",
    "next_due",
    "consent_valid_until",
    "last_error",
];

fn connection_cells(c: &Connection) -> Vec<String> {
    vec![
        c.id.to_string(),
        c.profile.clone(),
        c.name.clone(),
        c.state.clone(),
        c.due_at.map(rfc3339).unwrap_or_default(),
        c.consent_valid_until.map(rfc3339).unwrap_or_default(),
        c.last_error.clone().unwrap_or_default(),
    ]
}

fn table(rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = COLUMNS.iter().map(|c| c.len()).collect();
    for r in rows {
        for (i, cell) in r.iter().enumerate().take(widths.len()) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(text.join("  ").trim_end());
        out.push('\n');
    };
    line(COLUMNS.to_vec(), &mut out);
    for r in rows {
        line(r.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

/// A token from the token endpoint's JSON answer, or a bare access token.
fn token_from_text(text: &str, what: &str) -> Result<Token, Failure> {
    let now = stet_transport::unix(SystemTime::now());
    let text = text.trim();
    if text.is_empty() {
        return Err(Failure::new(
            exit::NO_INPUT,
            format!(
                "{what} is empty: it must hold the token endpoint's JSON answer, or an access token"
            ),
        ));
    }
    if !text.starts_with('{') {
        return Ok(Token {
            access_token: Secret::new(text),
            token_type: "Bearer".to_owned(),
            expires_at: None,
            refresh_token: None,
            scopes: Vec::new(),
            obtained_at: now,
            authenticated_at: Some(now),
        });
    }
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| {
        Failure::new(
            exit::DATA,
            format!("{what} is not the token endpoint's JSON answer: {e}"),
        )
    })?;
    token_from_json(&v, now).ok_or_else(|| {
        Failure::new(
            exit::DATA,
            format!("{what} has no access_token: it must hold the token endpoint's JSON answer"),
        )
    })
}

fn token_from_json(v: &serde_json::Value, now: u64) -> Option<Token> {
    let access = v.get("access_token")?.as_str()?.to_owned();
    Some(Token {
        access_token: Secret::new(access),
        token_type: "Bearer".to_owned(),
        expires_at: v
            .get("expires_in")
            .and_then(|e| e.as_u64())
            .map(|e| now + e),
        refresh_token: v
            .get("refresh_token")
            .and_then(|r| r.as_str())
            .map(Secret::new),
        scopes: v
            .get("scope")
            .and_then(|s| s.as_str())
            .map(|s| s.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default(),
        obtained_at: now,
        // The consent's start: the budget counts per consent, and PSD2 asks for a new
        // authentication 180 days after it.
        authenticated_at: Some(now),
    })
}

/// PSD2: a consent for unattended access lasts 180 days from the PSU's authentication.
fn consent_valid_until(token: &Token) -> Option<time::OffsetDateTime> {
    let at = token.authenticated_at.unwrap_or(token.obtained_at);
    time::OffsetDateTime::from_unix_timestamp(at as i64 + 180 * 24 * 3600).ok()
}

pub fn psu(command: PsuCommand, globals: &Globals) -> Result<u8, Failure> {
    match command {
        PsuCommand::Add(args) => add(args, globals),
        PsuCommand::List(args) => list(args, globals),
        PsuCommand::Show(args) => show(args, globals, false),
        PsuCommand::Remove(args) => show(args, globals, true),
        PsuCommand::Sync(args) => psu_sync(args, globals),
    }
}

fn add(args: AddArgs, globals: &Globals) -> Result<u8, Failure> {
    let profile = crate::profile::load(globals)?;
    let (_, _, fleet) = fleet_config(globals)?;
    let location = fleet_location(&args.store, globals, profile.store.as_deref())?;
    // The key before anything else: without it nothing is asked of the PSU or written.
    let key = Arc::new(store_key(&fleet)?);
    let bank = crate::profile::bank(&profile)?;
    let mut entries: Vec<(String, Token)> = Vec::new();
    if let Some(file) = &args.batch {
        let text = std::fs::read_to_string(file)
            .map_err(|e| Failure::new(exit::NO_INPUT, format!("{}: {e}", file.display())))?;
        let now = stet_transport::unix(SystemTime::now());
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let bad = || {
                Failure::new(
                    exit::DATA,
                    format!(
                        "{} line {}: not {{\"name\": …, \"token\": {{…}}}}",
                        file.display(),
                        i + 1
                    ),
                )
            };
            let v: serde_json::Value = serde_json::from_str(line).map_err(|_| bad())?;
            let name = v
                .get("name")
                .and_then(|n| n.as_str())
                .ok_or_else(bad)?
                .to_owned();
            let token = v
                .get("token")
                .and_then(|t| token_from_json(t, now))
                .ok_or_else(bad)?;
            entries.push((name, token));
        }
    }
    let rt = runtime()?;
    rt.block_on(async {
        if args.batch.is_none() {
            let name = args.name.clone().unwrap_or_default();
            let token = match &args.token_env {
                Some(var) => {
                    let text = std::env::var(var).map_err(|_| {
                        Failure::new(
                            exit::NO_INPUT,
                            format!("--token-env {var}: the variable is not set"),
                        )
                    })?;
                    token_from_text(&text, &format!("the variable {var}"))?
                }
                None => {
                    let transport = crate::profile::transport(&profile, &bank)?;
                    let approval = crate::auth::Approval {
                        no_browser: args.no_browser,
                        timeout: Duration::from_secs(args.consent_timeout),
                        login_hint: args.login_hint.clone(),
                    };
                    let mut t = crate::auth::obtain_consent(
                        &profile,
                        &transport,
                        &profile.scopes,
                        None,
                        &approval,
                    )
                    .await?;
                    t.authenticated_at.get_or_insert(t.obtained_at);
                    t
                }
            };
            entries.push((name, token));
        }
        let store = open_fleet_store(&args.store, &location, 2).await?;
        // One key for the whole store: tokens sealed with another would stop every worker.
        Vault::new(store.clone(), key.clone(), Duration::from_secs(60))
            .check_key()
            .await
            .map_err(fleet_failure)?;
        let mut added = Vec::new();
        for (name, token) in &entries {
            if name.trim().is_empty() {
                return Err(Failure::new(2, "--name must not be empty"));
            }
            let new = NewConnection {
                profile: profile.name.clone(),
                name: name.clone(),
                bank: bank.name.clone(),
                scopes: token.scopes.join(" "),
                consent_valid_until: consent_valid_until(token),
            };
            let c = store
                .add_connection(&new, |id| {
                    key.seal_token(id, token)
                        .map_err(|e| stet_store::StoreError::Corrupt {
                            location: location.display(),
                            message: e.to_string(),
                        })
                })
                .await
                .map_err(store_failure)?;
            added.push(c);
        }
        store.close().await;
        if !globals.quiet {
            for c in &added {
                eprintln!(
                    "added connection {} ({}) of profile {}: first sync due now",
                    c.id, c.name, c.profile
                );
            }
        }
        let rows: Vec<Vec<String>> = added.iter().map(connection_cells).collect();
        let json = if added.len() == 1 && args.batch.is_none() {
            connection_json(&added[0])
        } else {
            serde_json::Value::Array(added.iter().map(connection_json).collect())
        };
        Report::new(
            json,
            if globals.quiet {
                String::new()
            } else {
                table(&rows)
            },
        )
        .rows(&COLUMNS, rows)
        .print(args.out.report())?;
        Ok(0)
    })
}

fn list(args: ListArgs, globals: &Globals) -> Result<u8, Failure> {
    let location = fleet_location(&args.store, globals, None)?;
    let profile = if args.all_profiles {
        None
    } else {
        globals.profile.clone()
    };
    runtime()?.block_on(async {
        let store = open_fleet_store(&args.store, &location, 2).await?;
        let all = store
            .connections(profile.as_deref())
            .await
            .map_err(store_failure)?;
        store.close().await;
        let rows: Vec<Vec<String>> = all.iter().map(connection_cells).collect();
        Report::new(
            serde_json::Value::Array(all.iter().map(connection_json).collect()),
            table(&rows),
        )
        .rows(&COLUMNS, rows)
        .print(args.out.list())?;
        Ok(0)
    })
}

fn show(args: ShowArgs, globals: &Globals, remove: bool) -> Result<u8, Failure> {
    let location = fleet_location(&args.store, globals, None)?;
    runtime()?.block_on(async {
        let store = open_fleet_store(&args.store, &location, 2).await?;
        let c = store
            .find_connection(&args.connection, globals.profile.as_deref())
            .await
            .map_err(store_failure)?;
        if remove {
            let was_live = store.remove_connection(c.id).await.map_err(store_failure)?;
            if !globals.quiet {
                eprintln!(
                    "{} connection {} ({}): its tokens and job are deleted, its synced data kept",
                    if was_live {
                        "removed"
                    } else {
                        "already removed:"
                    },
                    c.id,
                    c.name
                );
            }
        }
        let c = store
            .connection(c.id)
            .await
            .map_err(store_failure)?
            .unwrap_or(c);
        store.close().await;
        let cells = connection_cells(&c);
        let text: String = COLUMNS
            .iter()
            .zip(&cells)
            .map(|(k, v)| format!("{k:<20} {v}\n"))
            .collect();
        Report::new(
            connection_json(&c),
            if remove { String::new() } else { text },
        )
        .rows(&COLUMNS, vec![cells])
        .print(args.out.report())?;
        Ok(0)
    })
}

fn psu_sync(args: PsuSyncArgs, globals: &Globals) -> Result<u8, Failure> {
    let ip = globals.psu_ip.clone().ok_or_else(|| {
        Failure::new(
            2,
            "stet psu sync is the PSU-present sync: give the PSU's IP address with --psu-ip \
             (the 4 unattended syncs a day are the workers' scheduled jobs)",
        )
    })?;
    let location = fleet_location(&args.store, globals, None)?;
    // Running the sync here needs the store key: a missing or wrong one is said before
    // anything is queued.
    let here = if args.wait {
        let (_, _, fleet) = fleet_config(globals)?;
        let key = Arc::new(store_key(&fleet)?);
        Some((fleet, key))
    } else {
        None
    };
    runtime()?.block_on(async {
        let store = open_fleet_store(&args.store, &location, 2).await?;
        let c = store
            .find_connection(&args.connection, globals.profile.as_deref())
            .await
            .map_err(store_failure)?;
        let here = match here {
            Some((fleet, key)) => {
                let vault = Vault::new(store.clone(), key, Duration::from_secs(60));
                vault.check_key().await.map_err(fleet_failure)?;
                Some((fleet, vault))
            }
            None => None,
        };
        store.enqueue_on_demand(c.id, &ip).await.map_err(store_failure)?;
        // The result, in every outcome: `outcome` is `queued` (left to the workers), `done`,
        // `running` (a worker had the job: queued for after) or how the sync ended.
        let report = |outcome: &str, last_error: Option<&str>, text: String| {
            Report::new(
                json!({
                    "id": c.id,
                    "name": c.name,
                    "profile": c.profile,
                    "outcome": outcome,
                    "lastError": last_error,
                }),
                text,
            )
            .rows(
                &["id", "name", "profile", "outcome", "last_error"],
                vec![vec![
                    c.id.to_string(),
                    c.name.clone(),
                    c.profile.clone(),
                    outcome.to_owned(),
                    last_error.unwrap_or_default().to_owned(),
                ]],
            )
        };
        // Without --wait, the workers run it.
        let Some((fleet, vault)) = here else {
            store.close().await;
            report(
                "queued",
                None,
                format!(
                    "connection {} ({}): on-demand sync with the PSU present queued; a worker runs it now\n",
                    c.id, c.name
                ),
            )
            .print(args.out.report())?;
            return Ok(0);
        };
        let options = WorkerOptions {
            concurrency: 1,
            caps: fleet.banks.clone(),
            hooks: Hooks {
                command: fleet.hook_command.clone(),
                url: fleet.hook_url.clone(),
            },
            ..WorkerOptions::default()
        };
        let profiles = Arc::new(ConfigProfiles {
            globals: globals.clone(),
            loaded: Mutex::new(HashMap::new()),
        });
        let worker = Worker::new(store.clone(), vault, profiles, options, Metrics::new());
        let outcome = worker.run_connection(c.id).await.map_err(fleet_failure)?;
        let last_error = store.connection(c.id).await.map_err(store_failure)?.and_then(|c| c.last_error);
        store.close().await;
        // A sync that did not end `done` is still a result a script reads (printed as JSON
        // when asked); the text says it once, as the error line.
        match outcome {
            Some("done") => {
                report(
                    "done",
                    None,
                    format!("connection {} ({}): synced with the PSU present\n", c.id, c.name),
                )
                .print(args.out.report())?;
                Ok(0)
            }
            None => {
                report("running", None, String::new()).print(args.out.report())?;
                Err(Failure::new(
                    exit::TEMPORARY,
                    format!("connection {} ({}): a worker is running its sync now; it was queued for after", c.id, c.name),
                ))
            }
            Some(outcome) => {
                report(outcome, last_error.as_deref(), String::new()).print(args.out.report())?;
                Err(Failure::new(
                    if outcome == "needs_psu" { exit::AUTH } else { exit::TEMPORARY },
                    format!(
                        "connection {} ({}): the sync ended `{outcome}`: {}",
                        c.id,
                        c.name,
                        last_error.unwrap_or_else(|| "see `stet psu show`".to_owned())
                    ),
                ))
            }
        }
    })
}

pub fn schedule(args: ScheduleArgs, globals: &Globals) -> Result<u8, Failure> {
    let location = fleet_location(&args.store, globals, None)?;
    runtime()?.block_on(async {
        let store = open_fleet_store(&args.store, &location, 2).await?;
        let stopped = store
            .check_consents(stet_fleet::worker::EXPIRES_SOON)
            .await
            .map_err(store_failure)?;
        let (created, made_due) = store.schedule(args.now).await.map_err(store_failure)?;
        store.close().await;
        let text = format!(
            "{created} job(s) created, {made_due} made due now; {stopped} connection(s) stopped (consent expired)\n"
        );
        Report::new(
            json!({"created": created, "madeDue": made_due, "expired": stopped}),
            if globals.quiet { String::new() } else { text },
        )
        .rows(&["created", "made_due", "expired"], vec![vec![created.to_string(), made_due.to_string(), stopped.to_string()]])
        .print(args.out.report())?;
        Ok(0)
    })
}

pub fn fleet(command: FleetCommand, globals: &Globals) -> Result<u8, Failure> {
    let FleetCommand::Status(args) = command;
    let location = fleet_location(&args.store, globals, None)?;
    runtime()?.block_on(async {
        let store = open_fleet_store(&args.store, &location, 2).await?;
        let s = store.fleet_status().await.map_err(store_failure)?;
        store.close().await;
        let map = |pairs: &[(String, u64)]| -> serde_json::Value {
            pairs.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>().into()
        };
        let words = |pairs: &[(String, u64)]| -> String {
            if pairs.is_empty() {
                "none".to_owned()
            } else {
                pairs.iter().map(|(k, v)| format!("{v} {k}")).collect::<Vec<_>>().join(", ")
            }
        };
        let text = format!(
            "connections: {}\njobs: {} in all, {} due, {} late (over 15 min), {} leased\nlast hour's runs: {}\nunattended calls in the last 24 h: {}\nhook events waiting: {}\n",
            words(&s.connections),
            s.jobs,
            s.due,
            s.late,
            s.leased,
            words(&s.runs_last_hour),
            s.budget_calls_24h,
            s.hooks_pending
        );
        Report::new(
            json!({
                "connections": map(&s.connections),
                "jobs": {"total": s.jobs, "due": s.due, "late": s.late, "leased": s.leased},
                "runsLastHour": map(&s.runs_last_hour),
                "unattendedCalls24h": s.budget_calls_24h,
                "hookEventsPending": s.hooks_pending,
            }),
            text,
        )
        .rows(
            &["jobs", "due", "late", "leased", "unattended_calls_24h", "hook_events_pending"],
            vec![vec![s.jobs.to_string(), s.due.to_string(), s.late.to_string(), s.leased.to_string(), s.budget_calls_24h.to_string(), s.hooks_pending.to_string()]],
        )
        .print(args.out.report())?;
        Ok(0)
    })
}

/// Profiles read from the configuration file, each loaded once.
struct ConfigProfiles {
    globals: Globals,
    loaded: Mutex<HashMap<String, (Profile, BankProfile)>>,
}

impl ProfileSource for ConfigProfiles {
    fn transport(
        &self,
        profile: &str,
        tokens: Arc<dyn TokenStore>,
    ) -> Result<(Transport, BankProfile), String> {
        let (p, bank) = {
            let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
            match loaded.get(profile) {
                Some(v) => v.clone(),
                None => {
                    let mut globals = self.globals.clone();
                    globals.profile = Some(profile.to_owned());
                    let p = crate::profile::load(&globals).map_err(|f| f.message().to_owned())?;
                    let bank = crate::profile::bank(&p).map_err(|f| f.message().to_owned())?;
                    loaded.insert(profile.to_owned(), (p.clone(), bank.clone()));
                    (p, bank)
                }
            }
        };
        let transport = stet_client::transport_builder(&p, &bank)
            .token_store(tokens)
            .build()
            .map_err(|e| format!("profile `{profile}`: {e}"))?;
        Ok((transport, bank))
    }
}

pub fn worker(args: WorkerArgs, globals: &Globals) -> Result<u8, Failure> {
    let location = fleet_location(&args.store, globals, None)?;
    let (_, _, fleet) = fleet_config(globals)?;
    let key = Arc::new(store_key(&fleet)?);
    let concurrency = args.concurrency.max(1);
    let worker_id = args
        .worker_id
        .clone()
        .unwrap_or_else(stet_fleet::worker::default_worker_id);
    let options = WorkerOptions {
        id: worker_id.clone(),
        concurrency,
        lease: Duration::from_secs(args.lease.max(1)),
        exit_when_idle: args.exit_when_idle,
        poll: Duration::from_millis(args.poll_ms.max(10)),
        caps: fleet.banks.clone(),
        hooks: Hooks {
            command: fleet.hook_command.clone(),
            url: fleet.hook_url.clone(),
        },
    };
    let profiles = Arc::new(ConfigProfiles {
        globals: globals.clone(),
        loaded: Mutex::new(HashMap::new()),
    });
    runtime()?.block_on(async {
        // Per running job: a bank slot, the token row lock, the writes; and the queue.
        let store = open_fleet_store(&args.store, &location, (concurrency * 3 + 4) as u32).await?;
        let vault = Vault::new(store.clone(), key, Duration::from_secs(60));
        // A key that does not open the stored tokens stops the worker before it claims
        // anything: nothing is changed.
        vault.check_key().await.map_err(fleet_failure)?;
        let metrics = Metrics::new();
        let server = match &args.metrics_addr {
            Some(addr) => {
                let (local, task) = metrics.serve(addr).await.map_err(fleet_failure)?;
                if !globals.quiet {
                    eprintln!("metrics on http://{local}/metrics");
                }
                Some(task)
            }
            None => None,
        };
        let worker = Worker::new(store.clone(), vault, profiles, options, metrics);
        let summary = worker.run(shutdown_signal()).await.map_err(fleet_failure)?;
        if let Some(task) = server {
            task.abort();
        }
        store.close().await;
        let text = format!(
            "worker done: {} job(s) claimed, {} synced, {} to be run again or stopped",
            summary.claimed, summary.done, summary.other
        );
        match args.out.output {
            // A worker's own summary is a log line for people by default: it runs under a
            // service manager, and stdout stays free.
            None | Some(Format::Table) => {
                if !globals.quiet {
                    eprintln!("{text}");
                }
            }
            Some(format) => Report::new(
                json!({
                    "workerId": worker_id,
                    "claimed": summary.claimed,
                    "done": summary.done,
                    "other": summary.other,
                }),
                String::new(),
            )
            .rows(
                &["worker_id", "claimed", "done", "other"],
                vec![vec![
                    worker_id.clone(),
                    summary.claimed.to_string(),
                    summary.done.to_string(),
                    summary.other.to_string(),
                ]],
            )
            .print(format)?,
        }
        Ok(0)
    })
}

/// SIGTERM or ctrl-c.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
