//! The account-information commands: accounts, balances, transactions, identity,
//! beneficiaries, and `consent put`. Each prints through [`crate::output`].

use std::io::IsTerminal as _;

use clap::{Args, Subcommand, ValueEnum};
use futures_util::StreamExt as _;
use serde_json::value::RawValue;
use stet_client::models::{AccountResource, Raw, Transaction};
use stet_client::{ClientError, JsonPage, StetClient, TransactionQuery};

use crate::Globals;
use crate::exit::{self, Failure, OrExit as _};
use crate::iban::{iban_shape, parse_iban};
use crate::output::{Format, OutputArgs, Printer, Report, Rows};

#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:\n  stet accounts\n  stet accounts --output json\n  stet accounts enable 1001      # Powens: the PSU enables an account"
)]
pub struct AccountsArgs {
    #[command(subcommand)]
    pub(crate) action: Option<crate::powens::AccountsAction>,
    #[command(flatten)]
    pub(crate) out: OutputArgs,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  stet balances                         # every account\n  stet balances FR7630004010006746778722047"
)]
pub struct BalancesArgs {
    /// The account: its resource id or IBAN [default: every account]
    #[arg(value_name = "ACCOUNT")]
    pub(crate) account: Option<String>,
    #[command(flatten)]
    pub(crate) out: OutputArgs,
}

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  stet transactions ACC0001 --from 2026-01-01
  stet transactions --all --status booked --output csv > transactions.csv
  stet transactions --all --output ndjson | jq .transactionAmount

Without --from, the bank's default period (usually the last 90 days). Older history needs the
extended_transaction_history scope: stet auth login --scope aisp --scope extended_transaction_history")]
pub struct TransactionsArgs {
    /// The account: its resource id or IBAN
    #[arg(
        value_name = "ACCOUNT",
        required_unless_present = "all",
        conflicts_with = "all"
    )]
    pub(crate) account: Option<String>,
    /// Every account of the PSU
    #[arg(long)]
    all: bool,
    /// From this date, inclusive (YYYY-MM-DD)
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub(crate) from: Option<time::Date>,
    /// Until this date, exclusive (YYYY-MM-DD)
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub(crate) to: Option<time::Date>,
    /// Which transactions to print
    #[arg(long, value_enum, default_value_t = StatusFilter::All)]
    pub(crate) status: StatusFilter,
    /// Powens: transactions per page asked (1 to 1000) [default: 1000]
    #[arg(long, value_name = "N")]
    pub(crate) limit: Option<u32>,
    /// How many accounts to fetch at once with --all. Each account's transactions come in the
    /// bank's order; the pages of accounts fetched at once interleave
    #[arg(long, value_name = "N", default_value_t = 4)]
    concurrency: usize,
    #[command(flatten)]
    pub(crate) out: OutputArgs,
}

/// `--status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatusFilter {
    /// Booked only (status BOOK)
    Booked,
    /// Pending only (status PDNG)
    Pending,
    /// Everything the bank lists
    All,
}

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  stet identity --output json")]
pub struct IdentityArgs {
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(Debug, Args)]
#[command(after_help = "Example:\n  stet beneficiaries")]
pub struct BeneficiariesArgs {
    #[command(flatten)]
    out: OutputArgs,
}

#[derive(Debug, Subcommand)]
pub enum ConsentCommand {
    /// Tell the bank which accounts the PSU gives access to (PUT /consents)
    #[command(after_help = "Example:
  stet consent put --balances FR76... --transactions FR76... --psu-identity --trusted-beneficiaries")]
    Put(ConsentPutArgs),
}

#[derive(Debug, Args)]
pub struct ConsentPutArgs {
    #[command(flatten)]
    out: OutputArgs,
    /// IBANs whose balances may be read (repeat for several)
    #[arg(long = "balances", value_name = "IBAN")]
    balances: Vec<String>,
    /// IBANs whose transactions may be read
    #[arg(long = "transactions", value_name = "IBAN")]
    transactions: Vec<String>,
    /// IBANs whose owners may be read
    #[arg(long = "owners", value_name = "IBAN")]
    owners: Vec<String>,
    /// IBANs whose overdrafts may be read
    #[arg(long = "overdrafts", value_name = "IBAN")]
    overdrafts: Vec<String>,
    /// The PSU's identity may be read
    #[arg(long)]
    psu_identity: bool,
    /// The trusted beneficiaries may be read
    #[arg(long)]
    trusted_beneficiaries: bool,
}

pub(crate) fn parse_date(s: &str) -> Result<time::Date, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &format)
        .map_err(|_| format!("`{s}` is not a date: expected YYYY-MM-DD, e.g. 2026-01-31"))
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .or_exit(1, "cannot start the async runtime")
}

/// An account argument as the bank's resource id: an IBAN is looked up among the accounts.
async fn resolve_account(client: &StetClient, account: &str) -> Result<String, Failure> {
    if iban_shape(account).is_none() {
        return Ok(account.to_owned());
    }
    let wanted = parse_iban(account).map_err(|e| Failure::new(2, e))?;
    let mut accounts = client.accounts();
    while let Some(item) = accounts.next().await {
        let item = item?;
        let iban = item
            .account_id
            .as_ref()
            .and_then(|a| a.iban.as_deref())
            .unwrap_or_default();
        if iban.eq_ignore_ascii_case(&wanted) {
            return item.resource_id.clone().ok_or_else(|| {
                Failure::new(
                    exit::DATA,
                    format!("the bank lists the account {wanted} without a resourceId"),
                )
            });
        }
    }
    Err(Failure::new(
        1,
        format!(
            "no account with IBAN {wanted} among the PSU's accounts (`stet accounts` lists them)"
        ),
    ))
}

fn account_cells(a: &AccountResource) -> Vec<String> {
    let id = a.account_id.as_ref();
    vec![
        a.resource_id.clone().unwrap_or_default(),
        id.and_then(|i| i.iban.clone()).unwrap_or_default(),
        a.name.clone(),
        id.and_then(|i| i.currency.clone()).unwrap_or_default(),
        a.usage.as_ref().map(|u| u.to_string()).unwrap_or_default(),
        a.cash_account_type.to_string(),
    ]
}

pub fn accounts(args: AccountsArgs, globals: &Globals) -> Result<u8, Failure> {
    if let Some(profile) = crate::powens::profile(globals)? {
        return crate::powens::accounts(args, &profile, globals);
    }
    if args.action.is_some() {
        return Err(Failure::new(
            2,
            "`stet accounts enable` is for Powens profiles: with a STET bank, the PSU's consent \
             names the accounts (`stet auth login`, `stet consent put`)",
        ));
    }
    let client = crate::profile::client(globals, None)?;
    runtime()?.block_on(async {
        let mut printer = Printer::new(
            args.out.list(),
            &["id", "iban", "name", "currency", "usage", "type"],
        )?;
        let mut accounts = client.accounts();
        while let Some(item) = accounts.next().await {
            let item = item?;
            printer.row(item.json(), account_cells(&item))?;
        }
        printer.finish()?;
        Ok(0)
    })
}

pub fn balances(args: BalancesArgs, globals: &Globals) -> Result<u8, Failure> {
    if let Some(profile) = crate::powens::profile(globals)? {
        return crate::powens::balances(args, &profile);
    }
    let client = crate::profile::client(globals, None)?;
    runtime()?.block_on(async {
        let accounts = match &args.account {
            Some(a) => vec![resolve_account(&client, a).await?],
            None => account_ids(&client).await?,
        };
        let mut printer = Printer::new(
            args.out.list(),
            &[
                "account",
                "type",
                "amount",
                "currency",
                "reference_date",
                "name",
            ],
        )?;
        for account in accounts {
            let page = client.balances(&account).await?;
            for balance in &page.balances {
                // The balance as the bank sent it, beside the account it belongs to.
                let account_json =
                    serde_json::to_string(&account).or_exit(1, "cannot write JSON")?;
                let json = RawValue::from_string(format!(
                    r#"{{"account":{account_json},"balance":{}}}"#,
                    balance.json().get()
                ))
                .or_exit(1, "cannot write JSON")?;
                printer.row(
                    &json,
                    vec![
                        account.clone(),
                        balance.balance_type.to_string(),
                        balance.balance_amount.amount.to_string(),
                        balance.balance_amount.currency.clone(),
                        balance
                            .reference_date
                            .as_ref()
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

async fn account_ids(client: &StetClient) -> Result<Vec<String>, Failure> {
    let mut ids = Vec::new();
    let mut accounts = client.accounts();
    while let Some(item) = accounts.next().await {
        if let Some(id) = item?.resource_id.clone() {
            ids.push(id);
        }
    }
    Ok(ids)
}

pub(crate) fn transaction_cells(account: &str, t: &Transaction) -> Vec<String> {
    let sign = if t.credit_debit_indicator.as_str() == "DBIT" {
        "-"
    } else {
        ""
    };
    let date = t
        .booking_date
        .as_ref()
        .or(t.transaction_date.as_ref())
        .or(t.value_date.as_ref());
    vec![
        account.to_owned(),
        date.map(|d| d.to_string()).unwrap_or_default(),
        t.value_date
            .as_ref()
            .map(|d| d.to_string())
            .unwrap_or_default(),
        format!("{sign}{}", t.transaction_amount.amount),
        t.transaction_amount.currency.clone(),
        t.status.to_string(),
        t.remittance_information
            .as_ref()
            .map(|r| r.text())
            .unwrap_or_default(),
        t.entry_reference
            .clone()
            .or_else(|| t.resource_id.clone())
            .unwrap_or_default(),
    ]
}

pub fn transactions(args: TransactionsArgs, globals: &Globals) -> Result<u8, Failure> {
    if let (Some(from), Some(to)) = (args.from, args.to)
        && from >= to
    {
        return Err(Failure::new(
            2,
            format!("--from {from} is not before --to {to}: --to is exclusive"),
        ));
    }
    if let Some(profile) = crate::powens::profile(globals)? {
        return crate::powens::transactions(args, &profile);
    }
    if args.limit.is_some() {
        return Err(Failure::new(
            2,
            "--limit is for Powens profiles: a STET bank chooses its own page size",
        ));
    }
    let query = TransactionQuery {
        date_from: args.from,
        date_to: args.to,
        ..TransactionQuery::default()
    };
    let client = crate::profile::client(globals, Some(args.concurrency))?;
    runtime()?.block_on(async {
        let accounts = match (&args.account, args.all) {
            (Some(a), _) => vec![resolve_account(&client, a).await?],
            (None, _) => account_ids(&client).await?,
        };
        let format = args.out.list();
        let mut printer = Printer::new(
            format,
            &[
                "account",
                "date",
                "value_date",
                "amount",
                "currency",
                "status",
                "label",
                "reference",
            ],
        )?;
        let progress = progress_bar(accounts.len(), globals.quiet);
        let mut pages = PageRows::spawn(&client, accounts.clone(), &query, format, args.status);
        let mut done = vec![false; accounts.len()];
        // A failed fetch says what was written and how to get the rest; a failed write
        // (stdout closed, disk full) is reported as it is.
        let incomplete = |failure: Failure, done: &[bool]| {
            progress.finish_and_clear();
            failure.and(resume_hint(&accounts, done, &args))
        };
        while let Some(message) = pages.next().await {
            match message {
                Page::Rows(Ok(rows)) => {
                    printer.rows(rows)?;
                    progress.inc(1);
                }
                Page::Rows(Err(failure)) => return Err(incomplete(failure, &done)),
                Page::Done(index) => done[index] = true,
            }
        }
        if let Err(failure) = pages.check_complete().await {
            return Err(incomplete(failure, &done));
        }
        progress.finish_and_clear();
        printer.finish()?;
        Ok(0)
    })
}

/// What a sync that stopped half-way wrote, and how to fetch the rest: the accounts whose
/// every page was written are whole; the others may be partial or missing.
fn resume_hint(accounts: &[String], done: &[bool], args: &TransactionsArgs) -> String {
    let missing: Vec<&str> = accounts
        .iter()
        .zip(done)
        .filter(|(_, done)| !**done)
        .map(|(account, _)| account.as_str())
        .collect();
    let whole = accounts.len() - missing.len();
    let mut range = String::new();
    if let Some(from) = args.from {
        range.push_str(&format!(" --from {from}"));
    }
    if let Some(to) = args.to {
        range.push_str(&format!(" --to {to}"));
    }
    const SHOWN: usize = 5;
    let mut names = missing
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if missing.len() > SHOWN {
        names.push_str(&format!(" and {} more", missing.len() - SHOWN));
    }
    let example = missing.first().copied().unwrap_or("ACCOUNT");
    format!(
        "the output is incomplete: {whole} of {} account(s) were written whole; {names} may be \
         partial or missing: once the cause is fixed, run `stet transactions ACCOUNT{range}` for \
         each (e.g. `stet transactions {example}{range}`)",
        accounts.len()
    )
}

/// What an account's task hands the writer.
enum Page {
    /// One page's rows, or why the account's walk stopped.
    Rows(Result<Rows, Failure>),
    /// Every page of the account at this index was sent.
    Done(usize),
}

/// The rows of every account's transactions, page by page, fetched and formatted on the
/// runtime's worker threads and handed to the one writer through a bounded channel.
///
/// One task per account walks its pages (signing each request, reading each page, making its
/// rows), at most `concurrency` accounts at a time; the channel holds at most `concurrency`
/// pages' rows. So memory is a few pages whatever the history, and the CPU work of a sync
/// spreads over the cores. Each account's pages come in order; accounts interleave by page.
struct PageRows {
    rows: tokio::sync::mpsc::Receiver<Page>,
    tasks: tokio::task::JoinSet<()>,
}

impl PageRows {
    fn spawn(
        client: &StetClient,
        accounts: Vec<String>,
        query: &TransactionQuery,
        format: Format,
        status: StatusFilter,
    ) -> PageRows {
        let concurrency = client.concurrency();
        let (sender, rows) = tokio::sync::mpsc::channel(concurrency);
        // Permits are handed out in the order asked for: accounts start in the order given.
        let permits = std::sync::Arc::new(tokio::sync::Semaphore::new(concurrency));
        let mut tasks = tokio::task::JoinSet::new();
        for (index, account) in accounts.into_iter().enumerate() {
            let (client, query) = (client.clone(), query.clone());
            let (sender, permits) = (sender.clone(), permits.clone());
            tasks.spawn(async move {
                let Ok(_permit) = permits.acquire_owned().await else {
                    return;
                };
                let mut pages = client.transaction_json_pages(&account, &query);
                while let Some(page) = pages.next().await {
                    let rows = page
                        .map_err(Failure::from)
                        .and_then(|page| page_rows(&account, page, format, status));
                    let failed = rows.is_err();
                    // A closed channel: the writer has stopped (on another account's error).
                    if sender.send(Page::Rows(rows)).await.is_err() || failed {
                        return;
                    }
                }
                // Sent after the account's last page, so the writer sees it once that page is
                // written.
                let _ = sender.send(Page::Done(index)).await;
            });
        }
        PageRows { rows, tasks }
    }

    /// The next page's rows; `None` once every account's task has ended.
    async fn next(&mut self) -> Option<Page> {
        self.rows.recv().await
    }

    /// After the last page: whether every task ran to its end. A task that panicked sent no
    /// error, and its account would otherwise look complete.
    async fn check_complete(&mut self) -> Result<(), Failure> {
        while let Some(joined) = self.tasks.join_next().await {
            joined.map_err(|e| {
                Failure::new(
                    1,
                    format!(
                        "internal error while fetching transactions ({e}); the output is incomplete"
                    ),
                )
            })?;
        }
        Ok(())
    }
}

/// One page of transactions as rows: each transaction's JSON as the bank sent it, read as a
/// model only when the status filter or the table and CSV columns need it.
fn page_rows(
    account: &str,
    page: JsonPage,
    format: Format,
    status: StatusFilter,
) -> Result<Rows, Failure> {
    let mut rows = Rows::new(format);
    if status == StatusFilter::All && !rows.wants_cells() {
        for item in &page.items {
            rows.push(item, Vec::new);
        }
        return Ok(rows);
    }
    for item in page.items {
        let t =
            Raw::<Transaction>::from_json(item).map_err(|e| ClientError::UnreadableBankData {
                what: format!("GET {}", page.url),
                message: format!("cannot read a transaction: {e}"),
            })?;
        let keep = match status {
            StatusFilter::All => true,
            StatusFilter::Booked => t.status.as_str() == "BOOK",
            StatusFilter::Pending => t.status.as_str() == "PDNG",
        };
        if keep {
            rows.push(t.json(), || transaction_cells(account, &t));
        }
    }
    Ok(rows)
}

/// A page counter on stderr, only when stderr is a terminal.
fn progress_bar(accounts: usize, quiet: bool) -> indicatif::ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos} pages from {msg} ({elapsed})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.set_message(format!("{accounts} account(s)"));
    bar.enable_steady_tick(std::time::Duration::from_millis(120));
    bar
}

pub fn identity(args: IdentityArgs, globals: &Globals) -> Result<u8, Failure> {
    let client = crate::profile::client(globals, None)?;
    runtime()?.block_on(async {
        let identity = client.end_user_identity().await?;
        let mut printer = Printer::new(args.out.list(), &["full_name", "first_name", "last_name"])?;
        if let Some(id) = &identity.identity {
            printer.row(
                id.json(),
                vec![
                    id.full_name.clone(),
                    id.first_name.clone().unwrap_or_default(),
                    id.last_name.clone().unwrap_or_default(),
                ],
            )?;
        }
        printer.finish()?;
        Ok(0)
    })
}

pub fn beneficiaries(args: BeneficiariesArgs, globals: &Globals) -> Result<u8, Failure> {
    let client = crate::profile::client(globals, None)?;
    runtime()?.block_on(async {
        let mut printer = Printer::new(args.out.list(), &["id", "name", "iban", "trusted"])?;
        let mut items = client.trusted_beneficiaries();
        while let Some(item) = items.next().await {
            let b = item?;
            printer.row(
                b.json(),
                vec![
                    b.id.clone().unwrap_or_default(),
                    b.creditor.name.clone(),
                    b.creditor_account
                        .as_ref()
                        .and_then(|a| a.iban.clone())
                        .unwrap_or_default(),
                    b.is_trusted.map(|t| t.to_string()).unwrap_or_default(),
                ],
            )?;
        }
        printer.finish()?;
        Ok(0)
    })
}

pub fn consent(command: ConsentCommand, globals: &Globals) -> Result<u8, Failure> {
    let ConsentCommand::Put(args) = command;
    let list = |ibans: &[String]| -> serde_json::Value {
        ibans
            .iter()
            .map(|i| serde_json::json!({"iban": i}))
            .collect()
    };
    for iban in args
        .balances
        .iter()
        .chain(&args.transactions)
        .chain(&args.owners)
        .chain(&args.overdrafts)
    {
        parse_iban(iban).map_err(|e| Failure::new(2, e))?;
    }
    let body = serde_json::json!({
        "balances": list(&args.balances),
        "transactions": list(&args.transactions),
        "owners": list(&args.owners),
        "overdrafts": list(&args.overdrafts),
        "trustedBeneficiaries": args.trusted_beneficiaries,
        "psuIdentity": args.psu_identity,
    });
    let access = serde_json::from_value(body.clone()).or_exit(2, "cannot build the consent")?;
    let client = crate::profile::client(globals, None)?;
    runtime()?.block_on(async {
        client.put_consents(&access).await?;
        if !globals.quiet {
            eprintln!("The bank recorded the consent.");
        }
        let json = serde_json::json!({"recorded": true, "access": body});
        Report::new(json, "")
            .rows(
                &[
                    "recorded",
                    "balances",
                    "transactions",
                    "owners",
                    "overdrafts",
                ],
                vec![vec![
                    "true".to_owned(),
                    args.balances.join(" "),
                    args.transactions.join(" "),
                    args.owners.join(" "),
                    args.overdrafts.join(" "),
                ]],
            )
            .print(args.out.report())?;
        Ok(0)
    })
}
