//! The Powens backend: profiles with `provider = "powens"`. `stet connectors`, `connect` and
//! `connections` are its own; `stet accounts`, `balances`, `transactions` and `auth` send a
//! Powens profile here; `stet powens webhook verify` checks a webhook's signature.

mod demo;
mod psu;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::{Args, Subcommand};
use serde_json::value::RawValue;
use stet_client::models::{Dialect, to_json_string};
use stet_powens::connect::{ConnectOptions, connect, resume};
use stet_powens::model::{BankAccount, ConnectionState, Remedy};
use stet_powens::{PowensClient, PowensConfig, PowensError, PowensId, TransactionQuery, mapping};
use stet_transport::{AggregatorProfile, FileTokenStore, Provider, config};

use crate::Globals;
use crate::data::{AccountsArgs, BalancesArgs, StatusFilter, TransactionsArgs};
use crate::exit::{self, Failure, OrExit as _};
use crate::output::{Format, OutputArgs, Printer, Report};

pub use demo::demo;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  stet connectors
  stet connectors --search test --output json")]
pub struct ConnectorsArgs {
    /// Only connectors whose name, uuid or slug contains TEXT (any case)
    #[arg(long, value_name = "TEXT")]
    search: Option<String>,
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  stet connect --connector \"Connecteur de test\"      # asks each field
  stet connect --connector 338178e6-3d01-564f-9a7b-52ca442459bf --field login=jdoe \\
      --field openapiwebsite=par --source openapi        # the password is still asked, hidden
  stet connect --connection 7                           # the PSU acts again on connection 7

Every value is sent encrypted end to end (JWE under the domain's key). The accounts found are
disabled until the PSU enables them: `stet accounts`, then `stet accounts enable ID`.")]
pub struct ConnectArgs {
    /// The connector: its uuid, or its name (or a unique part of it)
    #[arg(
        long,
        value_name = "UUID|NAME",
        required_unless_present = "connection",
        conflicts_with = "connection"
    )]
    connector: Option<String>,
    /// Drive an existing connection that needs the PSU again (a code, an approval, the bank's site)
    #[arg(long, value_name = "ID")]
    connection: Option<PowensId>,
    /// A field's value, NAME=VALUE (repeat); the others are asked. A password given here
    /// shows in the process list: prefer to be asked
    #[arg(long = "field", value_name = "NAME=VALUE")]
    fields: Vec<String>,
    /// Only this source of the connector (e.g. openapi) [default: every source, in priority order]
    #[arg(long, value_name = "NAME")]
    source: Option<String>,
    /// For a connection through the bank's site: print the URL and ask for the URL the
    /// browser came back to, instead of listening for it
    #[arg(long)]
    no_browser: bool,
    /// How long to wait for the PSU (the browser, an approval in the bank's app), in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    timeout: u64,
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:
  stet connections
  stet connections delete 7"
)]
pub struct ConnectionsArgs {
    #[command(subcommand)]
    action: Option<ConnectionsAction>,
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(Debug, Subcommand)]
pub enum ConnectionsAction {
    /// Delete a connection, with its accounts and transactions at Powens
    Delete {
        /// The connection's id
        #[arg(value_name = "ID")]
        id: PowensId,
        #[command(flatten)]
        out: OutputArgs,
    },
}

/// `stet accounts enable`.
#[derive(Debug, Subcommand)]
pub enum AccountsAction {
    /// Enable accounts (Powens): the PSU's consent to read them. stet never enables one by itself
    #[command(after_help = "Example:\n  stet accounts enable 1001 1003")]
    Enable {
        /// The accounts: Powens ids, stet ids (p1-…) or IBANs
        #[arg(value_name = "ACCOUNT", required = true)]
        accounts: Vec<String>,
        #[command(flatten)]
        out: OutputArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum PowensCommand {
    /// Webhooks Powens sends
    #[command(subcommand)]
    Webhook(WebhookCommand),
}

#[derive(Debug, Subcommand)]
pub enum WebhookCommand {
    /// Check a webhook's BI-Signature (HMAC-SHA256) against the body on stdin
    #[command(after_help = "Example:
  STET_WEBHOOK_SECRET=… stet powens webhook verify --secret-env STET_WEBHOOK_SECRET \\
      --signature \"$BI_SIGNATURE\" --date \"$BI_SIGNATURE_DATE\" --url-path /powens/webhook < body.json

Prints `ok` (with --output json: {\"valid\", \"path\", \"reason\"}) and exits 0 when the
signature matches and the date is fresh; otherwise says why and exits 1.")]
    Verify(VerifyArgs),
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The environment variable holding the webhook's secret (never on the command line)
    #[arg(long, value_name = "VAR")]
    secret_env: String,
    /// The BI-Signature header
    #[arg(long, value_name = "SIG")]
    signature: String,
    /// The BI-Signature-Date header
    #[arg(long, value_name = "DATE")]
    date: String,
    /// The path Powens posted to (a full URL is accepted too: both forms are tried)
    #[arg(long, value_name = "PATH", default_value = "/")]
    url_path: String,
    /// How far the date may be from now, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    max_age: u64,
    #[command(flatten)]
    out: OutputArgs,
}

// ---------------------------------------------------------------------------------------------
// Profiles, clients, errors
// ---------------------------------------------------------------------------------------------

/// The chosen profile when it is a Powens one; `None` for a STET bank.
pub fn profile(globals: &Globals) -> Result<Option<AggregatorProfile>, Failure> {
    let (path, explicit) = crate::profile::config_path(globals);
    let file = match &path {
        Some(p) if explicit || p.exists() => {
            Some(config::load_file(p).map_err(|e| Failure::new(exit::CONFIG, e))?)
        }
        _ => None,
    };
    let file = file.unwrap_or_default();
    let path = path.as_deref().filter(|p| p.exists());
    let env = |k: &str| std::env::var(k).ok();
    let provider = config::provider(&file, globals.profile.as_deref(), path, &env)
        .map_err(|e| Failure::new(exit::CONFIG, e))?;
    if provider == Provider::Stet {
        return Ok(None);
    }
    let profile = config::resolve_aggregator(&file, globals.profile.as_deref(), path, &env)
        .map_err(|e| Failure::new(exit::CONFIG, e))?;
    for warning in profile.security_warnings() {
        eprintln!("warning: {warning}");
    }
    Ok(Some(profile))
}

/// The chosen profile, which must be a Powens one.
fn powens_profile(globals: &Globals, command: &str) -> Result<AggregatorProfile, Failure> {
    profile(globals)?.ok_or_else(|| {
        Failure::new(
            exit::CONFIG,
            format!(
                "`stet {command}` works with a Powens profile (provider = \"powens\"); choose one \
                 with --profile, or write one as the README shows"
            ),
        )
    })
}

pub(crate) fn client(profile: &AggregatorProfile) -> Result<PowensClient, Failure> {
    let config = PowensConfig::from_profile(profile)?;
    let store = Arc::new(FileTokenStore::new(crate::profile::data_dir()?));
    Ok(PowensClient::new(config, store)?)
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .or_exit(1, "cannot start the async runtime")
}

/// The exit code of a connection state: the PSU must act (77), try later (75), Powens or the
/// bank is failing (69).
fn state_code(state: &ConnectionState) -> u8 {
    match state {
        ConnectionState::RateLimiting => exit::TEMPORARY,
        s => match s.remedy() {
            Remedy::Psu | Remedy::AtTheBank => exit::AUTH,
            Remedy::Wait | Remedy::Unsupported | Remedy::None => exit::UNAVAILABLE,
        },
    }
}

impl From<PowensError> for Failure {
    fn from(e: PowensError) -> Self {
        Failure::new(exit_code(&e), e)
    }
}

/// The exit code of a Powens error: see the README's table.
pub(crate) fn exit_code(e: &PowensError) -> u8 {
    use PowensError as E;
    if let Some(state) = e.as_state() {
        return state_code(&state);
    }
    match e {
        E::Config { .. } | E::ClientRefused { .. } => exit::CONFIG,
        E::Transport(t) => exit::for_transport(t),
        E::NoUser { .. } | E::TokenRefused { .. } | E::NoAccount { .. } => exit::AUTH,
        E::Api { status, .. } => match status {
            401 | 403 => exit::AUTH,
            429 => exit::TEMPORARY,
            500..=599 => exit::UNAVAILABLE,
            _ => exit::DATA,
        },
        E::NotJson { status, .. } if *status >= 500 => exit::UNAVAILABLE,
        E::NotJson { .. } | E::Unreadable { .. } | E::DomainKey(_) | E::Encrypt(_) => exit::DATA,
        E::Psu(inner) => match inner.downcast_ref::<Failure>() {
            Some(failure) => failure.code(),
            None => exit::AUTH,
        },
        _ => 1,
    }
}

/// A model as one line of JSON, for the printer.
fn json_row<T: serde::Serialize>(value: &T) -> Result<Box<RawValue>, Failure> {
    let text = to_json_string(value, Dialect::V1_5).or_exit(1, "cannot write JSON")?;
    RawValue::from_string(text).or_exit(1, "cannot write JSON")
}

// ---------------------------------------------------------------------------------------------
// Connectors and connections
// ---------------------------------------------------------------------------------------------

pub fn connectors(args: ConnectorsArgs, globals: &Globals) -> Result<u8, Failure> {
    let client = client(&powens_profile(globals, "connectors")?)?;
    runtime()?.block_on(async {
        let list = client.connectors().await?;
        let mut printer = Printer::new(
            Format::resolve(args.out.output),
            &["uuid", "name", "auth", "fields", "sources"],
        )?;
        let search = args.search.as_deref().map(str::to_lowercase);
        for c in &list {
            let hit = search.as_deref().is_none_or(|s| {
                c.name.to_lowercase().contains(s)
                    || c.uuid.to_lowercase().contains(s)
                    || c.json()
                        .get()
                        .to_lowercase()
                        .contains(&format!("\"slug\":\"{s}"))
            });
            if !hit || c.hidden == Some(true) {
                continue;
            }
            let fields = c
                .fields
                .iter()
                .map(|f| {
                    let kind = match f.kind.as_str() {
                        "list" => format!("list of {}", f.values.len()),
                        other => other.to_owned(),
                    };
                    format!(
                        "{} ({kind}{})",
                        f.name,
                        if f.is_required() { "" } else { ", optional" }
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            let sources = c
                .sources_in_order()
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            printer.row(
                c.json(),
                vec![
                    c.uuid.clone(),
                    c.name.clone(),
                    c.auth_mechanism.clone().unwrap_or_default(),
                    fields,
                    sources,
                ],
            )?;
        }
        printer.finish()?;
        Ok(0)
    })
}

/// What to do about a connection, for `stet connections`.
fn remedy_text(id: PowensId, state: &ConnectionState) -> String {
    match state {
        ConnectionState::Valid => "nothing: it works".to_owned(),
        ConnectionState::Wrongpass => format!(
            "the bank refused the credentials: `stet connections delete {id}`, then `stet connect` with the right ones"
        ),
        s => match s.remedy() {
            Remedy::Psu => format!("the PSU must act: `stet connect --connection {id}`"),
            Remedy::AtTheBank => {
                "the PSU must act on the bank's site (password, terms); Powens retries at its next sync".to_owned()
            }
            Remedy::Wait => "wait: Powens retries by itself".to_owned(),
            Remedy::Unsupported | Remedy::None => "see the Powens console".to_owned(),
        },
    }
}

fn connection_cells(c: &stet_powens::model::Connection) -> Vec<String> {
    let state = c.state();
    vec![
        c.id.to_string(),
        c.connector
            .as_ref()
            .map(|k| k.name.clone())
            .or_else(|| c.connector_uuid.clone())
            .unwrap_or_default(),
        state.label().to_owned(),
        c.last_update.map(|t| t.to_string()).unwrap_or_default(),
        remedy_text(c.id, &state),
    ]
}

const CONNECTION_COLUMNS: &[&str] = &["id", "connector", "state", "last_update", "what_to_do"];

pub fn connect_command(args: ConnectArgs, globals: &Globals) -> Result<u8, Failure> {
    let profile = powens_profile(globals, "connect")?;
    let client = client(&profile)?;
    let mut psu = psu::TerminalPsu::new(
        &args.fields,
        profile.redirect_uri.clone(),
        &profile.name,
        args.no_browser,
        Duration::from_secs(args.timeout),
        globals.quiet,
    )?;
    let options = ConnectOptions {
        source: args.source.clone(),
        approval_timeout: Duration::from_secs(args.timeout),
        ..ConnectOptions::default()
    };
    runtime()?.block_on(async {
        let connection = match (args.connection, &args.connector) {
            (Some(id), _) => {
                client.user_token().await?;
                resume(&client, id, &mut psu, &options).await?
            }
            (None, Some(wanted)) => {
                let list = client.connectors().await?;
                let connector = find_connector(&list, wanted)?;
                let (user, made) = client.init_user().await?;
                if made && !globals.quiet {
                    eprintln!(
                        "Made Powens user {} for profile `{}`; its token is kept in the token store.",
                        user.id_user, profile.name
                    );
                }
                connect(&client, connector, &mut psu, &options).await?
            }
            (None, None) => return Err(Failure::new(2, "give --connector or --connection")),
        };
        if !globals.quiet {
            eprintln!(
                "Connected: connection {} works. Its accounts are disabled until the PSU enables \
                 them: `stet accounts` lists them, `stet accounts enable ID` enables one.",
                connection.id
            );
        }
        let mut printer = Printer::new(Format::resolve(args.out.output), CONNECTION_COLUMNS)?;
        printer.row(connection.json(), connection_cells(&connection))?;
        printer.finish()?;
        Ok(0)
    })
}

fn find_connector<'a>(
    list: &'a [stet_client::models::Raw<stet_powens::model::Connector>],
    wanted: &str,
) -> Result<&'a stet_powens::model::Connector, Failure> {
    let lower = wanted.trim().to_lowercase();
    if let Some(c) = list
        .iter()
        .find(|c| c.uuid.eq_ignore_ascii_case(wanted.trim()) || c.name.to_lowercase() == lower)
    {
        return Ok(c);
    }
    let matches: Vec<_> = list
        .iter()
        .filter(|c| c.name.to_lowercase().contains(&lower))
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(Failure::new(
            2,
            format!(
                "no connector `{wanted}` on this domain: `stet connectors --search TEXT` lists them"
            ),
        )),
        many => Err(Failure::new(
            2,
            format!(
                "`{wanted}` names several connectors ({}): give the uuid",
                many.iter()
                    .map(|c| format!("{} {}", c.uuid, c.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

pub fn connections(args: ConnectionsArgs, globals: &Globals) -> Result<u8, Failure> {
    let client = client(&powens_profile(globals, "connections")?)?;
    runtime()?.block_on(async {
        if let Some(ConnectionsAction::Delete { id, out }) = args.action {
            client.delete_connection(id).await?;
            if !globals.quiet {
                eprintln!("Deleted connection {id}, with its accounts and transactions at Powens.");
            }
            // The text says it all on stderr; a script asks for JSON.
            Report::new(serde_json::json!({"connection": id, "deleted": true}), "")
                .rows(
                    &["connection", "deleted"],
                    vec![vec![id.to_string(), "true".into()]],
                )
                .print(out.output.or(args.out.output).unwrap_or(Format::Table))?;
            return Ok(0);
        }
        let list = client.connections().await?;
        let mut printer = Printer::new(Format::resolve(args.out.output), CONNECTION_COLUMNS)?;
        for c in &list {
            printer.row(c.json(), connection_cells(c))?;
        }
        printer.finish()?;
        Ok(0)
    })
}

// ---------------------------------------------------------------------------------------------
// Accounts, balances, transactions
// ---------------------------------------------------------------------------------------------

/// The account `wanted` names: a Powens id, a stable id of this domain, or an IBAN.
fn find_account<'a>(
    client: &PowensClient,
    accounts: &'a [stet_client::models::Raw<BankAccount>],
    wanted: &str,
) -> Result<&'a BankAccount, Failure> {
    let wanted = wanted.trim();
    let id = wanted
        .parse::<PowensId>()
        .ok()
        .or_else(|| client.namespace().parse(wanted).map(|(_, id)| id));
    let compact: String = wanted.chars().filter(|c| !c.is_whitespace()).collect();
    accounts
        .iter()
        .find(|a| {
            Some(a.id) == id
                || a.iban
                    .as_deref()
                    .is_some_and(|i| i.replace(' ', "").eq_ignore_ascii_case(&compact))
        })
        .map(|a| a.get())
        .ok_or_else(|| {
            Failure::new(
                2,
                format!(
                    "no account `{wanted}` among the user's accounts (`stet accounts` lists them)"
                ),
            )
        })
}

fn account_row(client: &PowensClient, a: &BankAccount) -> Result<Box<RawValue>, Failure> {
    let stet = mapping::account(a, client.namespace());
    let mut value: serde_json::Value =
        serde_json::from_str(json_row(&stet)?.get()).or_exit(1, "cannot write JSON")?;
    // The STET resource, and what only Powens knows under a key of its own.
    value["_powens"] = serde_json::json!({
        "id": a.id,
        "id_connection": a.id_connection,
        "type": a.kind,
        "disabled": a.disabled,
    });
    json_row(&value)
}

pub fn accounts(
    args: AccountsArgs,
    profile: &AggregatorProfile,
    globals: &Globals,
) -> Result<u8, Failure> {
    let client = client(profile)?;
    runtime()?.block_on(async {
        let list = client.accounts().await?;
        if let Some(AccountsAction::Enable { accounts, out }) = &args.action {
            let mut enabled = Vec::new();
            let mut rows = Vec::new();
            for wanted in accounts {
                let account = find_account(&client, &list, wanted)?;
                client.enable_account(account.id).await?;
                if !globals.quiet {
                    eprintln!(
                        "Enabled account {} ({}): its transactions can now be read.",
                        account.id,
                        account.display_name()
                    );
                }
                let resource_id = mapping::account(account, client.namespace())
                    .resource_id
                    .unwrap_or_default();
                rows.push(vec![
                    account.id.to_string(),
                    resource_id.clone(),
                    account.display_name(),
                ]);
                enabled.push(serde_json::json!({
                    "id": account.id,
                    "resourceId": resource_id,
                    "name": account.display_name(),
                }));
            }
            // The text says it all on stderr; a script asks for JSON.
            Report::new(serde_json::json!({"enabled": enabled}), "")
                .rows(&["id", "resourceId", "name"], rows)
                .print(out.output.or(args.out.output).unwrap_or(Format::Table))?;
            return Ok(0);
        }
        let mut printer = Printer::new(
            Format::resolve(args.out.output),
            &["id", "iban", "name", "currency", "type", "balance", "enabled"],
        )?;
        for a in &list {
            if a.deleted {
                continue;
            }
            printer.row(
                &account_row(&client, a)?,
                vec![
                    a.id.to_string(),
                    a.iban.clone().unwrap_or_default(),
                    a.display_name(),
                    a.currency_code().to_owned(),
                    a.kind.clone().unwrap_or_default(),
                    a.balance.map(|b| b.to_string()).unwrap_or_default(),
                    if a.disabled {
                        format!("no: stet accounts enable {}", a.id)
                    } else {
                        "yes".to_owned()
                    },
                ],
            )?;
        }
        printer.finish()?;
        if !globals.quiet && list.iter().any(|a| a.disabled) {
            eprintln!(
                "Disabled accounts are not read until the PSU enables them (`stet accounts enable ID`): enabling is their consent."
            );
        }
        Ok(0)
    })
}

/// The accounts a command reads: the one named (which must be enabled), or every enabled one.
fn chosen<'a>(
    client: &PowensClient,
    list: &'a [stet_client::models::Raw<BankAccount>],
    wanted: Option<&str>,
) -> Result<Vec<&'a BankAccount>, Failure> {
    match wanted {
        Some(w) => {
            let account = find_account(client, list, w)?;
            if account.disabled {
                return Err(Failure::new(
                    exit::AUTH,
                    format!(
                        "account {} is disabled: the PSU enables it with `stet accounts enable {}` (that is their consent)",
                        account.id, account.id
                    ),
                ));
            }
            Ok(vec![account])
        }
        None => {
            let enabled: Vec<&BankAccount> = list
                .iter()
                .map(|a| a.get())
                .filter(|a| !a.disabled && !a.deleted)
                .collect();
            if enabled.is_empty() {
                return Err(PowensError::NoAccount { detail: None }.into());
            }
            Ok(enabled)
        }
    }
}

pub fn balances(args: BalancesArgs, profile: &AggregatorProfile) -> Result<u8, Failure> {
    let client = client(profile)?;
    runtime()?.block_on(async {
        let list = client.accounts().await?;
        let accounts = chosen(&client, &list, args.account.as_deref())?;
        let mut printer = Printer::new(
            Format::resolve(args.out.output),
            &[
                "account",
                "type",
                "amount",
                "currency",
                "reference_date",
                "name",
            ],
        )?;
        for a in accounts {
            let id = client.namespace().account_id(a.id);
            for balance in mapping::balances(a) {
                let json = RawValue::from_string(format!(
                    r#"{{"account":{},"balance":{}}}"#,
                    serde_json::to_string(&id).or_exit(1, "cannot write JSON")?,
                    json_row(&balance)?.get()
                ))
                .or_exit(1, "cannot write JSON")?;
                printer.row(
                    &json,
                    vec![
                        a.id.to_string(),
                        balance.balance_type.to_string(),
                        balance.balance_amount.amount.to_string(),
                        balance.balance_amount.currency.clone(),
                        balance
                            .last_change_date_time
                            .map(|d| d.to_string())
                            .unwrap_or_default(),
                        balance.name.clone().unwrap_or_default(),
                    ],
                )?;
            }
        }
        printer.finish()?;
        Ok(0)
    })
}

pub fn transactions(args: TransactionsArgs, profile: &AggregatorProfile) -> Result<u8, Failure> {
    let limit = args.limit.unwrap_or(1000);
    if !(1..=1000).contains(&limit) {
        return Err(Failure::new(
            2,
            format!("--limit {limit}: Powens pages hold 1 to 1000 transactions"),
        ));
    }
    let query = TransactionQuery {
        limit,
        min_date: args.from,
        // stet's --to is exclusive; Powens' max_date is the last day included.
        max_date: args.to.and_then(|d| d.previous_day()),
        deleted: false,
        updated_after: None,
    };
    let client = client(profile)?;
    runtime()?.block_on(async {
        let list = client.accounts().await?;
        let accounts = chosen(&client, &list, args.account.as_deref())?;
        let format = Format::resolve(args.out.output);
        let mut printer = Printer::new(
            format,
            &["account", "date", "value_date", "amount", "currency", "status", "label", "reference"],
        )?;
        for account in accounts {
            let mut pages = client.transaction_pages(Some(account.id), &query);
            while let Some(page) = pages.next().await {
                let page = page.map_err(|e| {
                    Failure::from(e).and(format!(
                        "the output is incomplete: run `stet transactions {}` again once the cause is fixed",
                        account.id
                    ))
                })?;
                for t in &page.transactions {
                    let Some(stet) = mapping::transaction(t, account.currency_code(), client.namespace()) else {
                        continue;
                    };
                    let keep = match args.status {
                        StatusFilter::All => true,
                        StatusFilter::Booked => stet.status.as_str() == "BOOK",
                        StatusFilter::Pending => stet.status.as_str() == "PDNG",
                    };
                    if keep {
                        let cells = crate::data::transaction_cells(&account.id.to_string(), &stet);
                        printer.row(&json_row(&stet)?, cells)?;
                    }
                }
            }
        }
        printer.finish()?;
        Ok(0)
    })
}

// ---------------------------------------------------------------------------------------------
// The user token
// ---------------------------------------------------------------------------------------------

/// `stet auth` for a Powens profile: `login` makes the user (or rotates its token), `status`
/// shows it, `logout` revokes and forgets the token.
pub fn auth(
    command: crate::auth::AuthCommand,
    profile: &AggregatorProfile,
    globals: &Globals,
) -> Result<u8, Failure> {
    use crate::auth::AuthCommand;
    let client = client(profile)?;
    runtime()?.block_on(async {
        match command {
            AuthCommand::Login(args) => {
                let (user, made) = client.init_user().await?;
                let user = if made {
                    user
                } else {
                    client.renew_user(Some(user.id_user), true).await?
                };
                if !globals.quiet {
                    if made {
                        eprintln!("Made Powens user {} for profile `{}`; its token is stored.", user.id_user, profile.name);
                    } else {
                        eprintln!("Renewed the token of Powens user {} (the previous one is revoked).", user.id_user);
                    }
                }
                Report::new(
                    serde_json::json!({"profile": profile.name, "provider": "powens", "id_user": user.id_user, "made": made}),
                    "",
                )
                .rows(
                    &["profile", "provider", "id_user", "made"],
                    vec![vec![profile.name.clone(), "powens".into(), user.id_user.to_string(), made.to_string()]],
                )
                .print(args.format())?;
                Ok(0)
            }
            AuthCommand::Status(args) => match client.stored_user().await? {
                Some(user) => {
                    Report::new(
                        serde_json::json!({"profile": profile.name, "provider": "powens", "id_user": user.id_user}),
                        format!("powens: user {} (permanent token stored)\n", user.id_user),
                    )
                    .rows(
                        &["profile", "provider", "id_user"],
                        vec![vec![profile.name.clone(), "powens".into(), user.id_user.to_string()]],
                    )
                    .print(args.format())?;
                    Ok(0)
                }
                None => {
                    eprintln!("no Powens user for profile `{}`: `stet connect` makes one", profile.name);
                    Ok(exit::AUTH)
                }
            },
            AuthCommand::Logout(args) => {
                let had = client.revoke_user().await?;
                if !globals.quiet {
                    match had {
                        Some(id) => eprintln!(
                            "Revoked and forgot the token of Powens user {id}; the user and its connections stay at Powens."
                        ),
                        None => eprintln!("No Powens user was stored for profile `{}`.", profile.name),
                    }
                }
                Report::new(
                    serde_json::json!({"profile": profile.name, "forgotten": had.is_some()}),
                    "",
                )
                .rows(
                    &["profile", "forgotten"],
                    vec![vec![profile.name.clone(), had.is_some().to_string()]],
                )
                .print(args.format())?;
                Ok(0)
            }
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Webhooks
// ---------------------------------------------------------------------------------------------

pub fn run(command: PowensCommand) -> Result<u8, Failure> {
    let PowensCommand::Webhook(WebhookCommand::Verify(args)) = command;
    let secret = std::env::var(&args.secret_env).map_err(|_| {
        Failure::new(
            exit::CONFIG,
            format!(
                "--secret-env: the environment variable {} is not set",
                args.secret_env
            ),
        )
    })?;
    let mut body = Vec::new();
    std::io::Read::read_to_end(&mut std::io::stdin(), &mut body)
        .or_exit(exit::NO_INPUT, "cannot read the webhook's body on stdin")?;
    // The path Powens signed: the one given, and its path when a full URL was given.
    let mut paths = vec![args.url_path.as_str()];
    let parsed = url::Url::parse(&args.url_path).ok();
    if let Some(url) = &parsed {
        paths.push(url.path());
    }
    let now = time::OffsetDateTime::from(SystemTime::now());
    match stet_powens::webhook::verify(
        secret.as_bytes(),
        &paths,
        &args.date,
        &body,
        &args.signature,
        now,
        Duration::from_secs(args.max_age),
    ) {
        Ok(path) => {
            eprintln!("signed over the path {path}");
            Report::new(
                serde_json::json!({"valid": true, "path": path, "reason": null}),
                "ok\n",
            )
            .rows(
                &["valid", "path", "reason"],
                vec![vec!["true".into(), path.to_owned(), String::new()]],
            )
            .print(args.out.report())?;
            Ok(0)
        }
        Err(e @ stet_powens::webhook::WebhookError::BadDate(_)) => {
            Err(Failure::new(2, format!("--date: {e}")))
        }
        // A script reads why from the JSON; the exit code says it all the same.
        Err(e) if args.out.report() != Format::Table => {
            Report::new(
                serde_json::json!({"valid": false, "path": null, "reason": e.to_string()}),
                "",
            )
            .rows(
                &["valid", "path", "reason"],
                vec![vec!["false".into(), String::new(), e.to_string()]],
            )
            .print(args.out.report())?;
            eprintln!("{e}");
            Ok(exit::CHECK_FAILED)
        }
        Err(e) => Err(Failure::new(exit::CHECK_FAILED, e)),
    }
}
