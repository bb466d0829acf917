//! `stet demo`: the whole journey against a sandbox bank started in this process, with a PKI
//! made for the occasion. Nothing to configure; nothing touches the user's files (tokens live
//! in a temporary folder, removed at the end).

use std::io::Write as _;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use clap::Args;
use futures_util::StreamExt as _;
use stet_client::models::Amount;
use stet_client::{
    ClientOptions, CreditTransfer, PaymentRequestBuilder, StetClient, TransactionQuery,
};
use stet_sandbox::{Sandbox, SandboxConfig, SandboxInfo};
use stet_transport::{Auth, FileTokenStore, OAuthClient, PsuContext, QwacIdentity, Token, config};
use url::Url;

use crate::Globals;
use crate::exit::{self, Failure, OrExit as _};

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  stet demo\n\nNo configuration is needed: the bank, its certificates and the TPP's certificates are\nmade for the demo and removed when it ends."
)]
pub struct DemoArgs {
    /// Accounts in the sandbox bank
    #[arg(long, default_value_t = 3)]
    accounts: usize,
    /// Transactions per account
    #[arg(long, default_value_t = 60)]
    transactions: usize,
    /// Transactions per page
    #[arg(long, default_value_t = 20)]
    page_size: usize,
    /// Which API: a STET bank, or the Powens aggregator (its mock)
    #[arg(long, value_enum, default_value = "stet")]
    provider: DemoProvider,
}

/// `stet demo --provider`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DemoProvider {
    /// A STET bank, with the TPP's certificates
    Stet,
    /// The Powens aggregator API
    Powens,
}

pub fn run(args: DemoArgs, globals: &Globals) -> Result<u8, Failure> {
    if args.provider == DemoProvider::Powens {
        return crate::powens::demo(globals);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .or_exit(1, "cannot start the async runtime")?;
    runtime.block_on(journey(args, globals))
}

fn step(n: u32, title: &str, text: &str) {
    println!("\n{n}. {title}\n   {text}");
}

fn show(line: impl AsRef<str>) {
    println!("   > {}", line.as_ref());
    let _ = std::io::stdout().flush();
}

async fn journey(args: DemoArgs, globals: &Globals) -> Result<u8, Failure> {
    let sandbox = Sandbox::start(SandboxConfig {
        accounts: args.accounts.max(1),
        transactions: args.transactions,
        page_size: args.page_size.max(1),
        ..SandboxConfig::default()
    })
    .await
    .map_err(|e| {
        Failure::new(
            exit::UNAVAILABLE,
            format!("cannot start the sandbox bank: {e}"),
        )
    })?;
    let info = sandbox.info().clone();
    let work = tempfile::tempdir().or_exit(exit::IO, "cannot create a temporary folder")?;

    println!("stet demo: a TPP's whole journey against a STET bank running on this machine.");
    println!(
        "The bank listens on {} and checks mTLS, OAuth2 and every signature strictly.",
        info.api_base
    );

    // The configuration a user would write, pointed at the sandbox.
    let profile = profile_for(&info, work.path())?;
    let bank = crate::profile::bank(&profile)?;

    step(
        1,
        "Doctor",
        "Load the QWAC (mutual TLS) and the QSealC key (signatures), then shake hands with the bank.",
    );
    let qwac = QwacIdentity::from_pem_files(&info.qwac_cert, &info.qwac_key, Default::default())
        .map_err(|e| Failure::new(exit::CONFIG, e))?;
    let common_name = qwac
        .subject
        .split(',')
        .find_map(|part| part.trim().strip_prefix("CN="))
        .unwrap_or(&qwac.subject)
        .to_owned();
    show(format!(
        "QWAC \"{common_name}\" valid for {} more days",
        qwac.remaining().as_secs() / 86_400
    ));
    let transport = stet_client::transport_builder(&profile, &bank)
        .token_store(Arc::new(FileTokenStore::new(work.path().join("tokens"))))
        .build()?;
    let probe = transport.probe(transport.api_base()).await?;
    let skew = probe
        .date
        .map(|d| match SystemTime::now().duration_since(d) {
            Ok(x) => x.as_secs(),
            Err(e) => e.duration().as_secs(),
        });
    show(format!(
        "TLS handshake with the QWAC: ok ({} ms); clock skew with the bank: {} s",
        probe.round_trip.as_millis(),
        skew.map_or("unknown".to_owned(), |s| s.to_string())
    ));

    step(
        2,
        "Consent",
        "The PSU authorizes account access, history beyond 90 days included (OAuth2 authorization code with PKCE); the sandbox approves the test PSU at once.",
    );
    let oauth = transport
        .oauth()
        .ok_or_else(|| Failure::new(exit::CONFIG, "the sandbox profile has no token endpoint"))?;
    let scopes = ["aisp".to_owned(), bank.scopes.extended_history.clone()];
    let token = approve(oauth, &info, &scopes, None).await?;
    show(crate::auth::describe(&token));
    transport
        .store_token(crate::auth::CONSENT_KEY, token)
        .await?;

    // The PSU is at the keyboard: calls are not counted against the 4 unattended calls a day.
    let client = StetClient::with_options(
        transport.clone(),
        bank.clone(),
        ClientOptions {
            psu: Some(PsuContext::present("127.0.0.1")),
            ..ClientOptions::default()
        },
    );

    step(3, "Accounts", "List the PSU's accounts.");
    let mut accounts = Vec::new();
    let mut stream = client.accounts();
    while let Some(account) = stream.next().await {
        let account = account?;
        show(format!(
            "{}  {}  {}",
            account.resource_id.clone().unwrap_or_default(),
            account
                .account_id
                .as_ref()
                .and_then(|a| a.iban.clone())
                .unwrap_or_default(),
            account.name
        ));
        accounts.push(account);
    }
    let first = accounts
        .first()
        .ok_or_else(|| Failure::new(exit::DATA, "the sandbox listed no account"))?;
    let first_id = first.resource_id.clone().unwrap_or_default();
    let first_iban = first
        .account_id
        .as_ref()
        .and_then(|a| a.iban.clone())
        .unwrap_or_default();

    step(4, "Balances", &format!("Read the balances of {first_id}."));
    for balance in &client.balances(&first_id).await?.balances {
        show(format!(
            "{}  {} {}",
            balance.balance_type, balance.balance_amount.amount, balance.balance_amount.currency
        ));
    }

    step(
        5,
        "Transactions",
        &format!(
            "Walk every page of {first_id}'s transactions of the last 13 months, following the bank's next links."
        ),
    );
    let query = TransactionQuery {
        date_from: Some(time::OffsetDateTime::now_utc().date() - time::Duration::days(400)),
        ..TransactionQuery::default()
    };
    let mut pages = client.transaction_pages(&first_id, &query);
    let (mut page_count, mut total) = (0, 0);
    while let Some(page) = pages.next().await {
        let page = page?;
        page_count += 1;
        total += page.items.len();
        if page_count == 1 {
            for t in page.items.iter().take(3) {
                let sign = if t.credit_debit_indicator.as_str() == "DBIT" {
                    "-"
                } else {
                    ""
                };
                show(format!(
                    "{}  {sign}{} {}  {}",
                    t.booking_date
                        .as_ref()
                        .map(|d| d.to_string())
                        .unwrap_or_default(),
                    t.transaction_amount.amount,
                    t.transaction_amount.currency,
                    t.remittance_information
                        .as_ref()
                        .map(|r| r.text())
                        .unwrap_or_default()
                ));
            }
        }
    }
    show(format!("{total} transactions in {page_count} page(s)"));

    step(
        6,
        "Payment",
        "Create a SEPA credit transfer, have the PSU approve it, confirm it, and wait for its final status.",
    );
    let amount: Amount = "42.50"
        .parse()
        .map_err(|_| Failure::new(1, "bad demo amount"))?;
    let request = PaymentRequestBuilder::sepa_credit_transfer("stet demo")
        .debtor_iban(first_iban.clone())
        .transfer(CreditTransfer::eur(
            "Ana Smith",
            "FR7630006000011234567890189",
            amount,
            "stet demo invoice 42",
        ))
        .build(client.bank())?;
    let created = client.create_payment_request(&request).await?;
    show(format!("created payment request {}", created.id));
    let link = created
        .consent_approval
        .clone()
        .ok_or_else(|| Failure::new(exit::DATA, "the sandbox gave no approval link"))?;
    let approval = approve(
        oauth,
        &info,
        std::slice::from_ref(&bank.scopes.pisp),
        Some(&link),
    )
    .await?;
    let key = format!("pisp {}", created.id);
    transport.store_token(&key, approval).await?;
    show("approved by the PSU");
    client
        .confirm_payment_request(&created.id, Auth::Consent(key))
        .await?;
    show("confirmed");
    let hal = client
        .wait_for_final_status(
            &created.id,
            Duration::from_secs(30),
            Duration::from_millis(200),
        )
        .await?;
    let (status, _) = stet_client::payment_status(&hal);
    show(format!(
        "final status: {}",
        status.map(|s| s.to_string()).unwrap_or_default()
    ));

    step(
        7,
        "Funds check",
        &format!("Ask whether {first_iban} can cover 150.00 EUR (CBPII)."),
    );
    let amount: Amount = "150.00"
        .parse()
        .map_err(|_| Failure::new(1, "bad demo amount"))?;
    let report = client
        .funds_confirmation(&stet_client::funds_confirmation_request(
            first_iban, amount, "EUR",
        ))
        .await?;
    show(if report.result {
        "funds available"
    } else {
        "funds not available"
    });

    println!(
        "\nDone: every request was signed with the QSealC key over mutual TLS, and the bank verified each one."
    );
    if !globals.quiet {
        eprintln!(
            "Next: `stet sandbox serve` runs the same bank for your own tries; `stet init --bank NAME` starts a real profile."
        );
    }
    sandbox.shutdown().await;
    Ok(0)
}

/// The configuration profile a user would write for the sandbox.
pub(crate) fn profile_for(
    info: &SandboxInfo,
    dir: &std::path::Path,
) -> Result<stet_transport::Profile, Failure> {
    let text = format!(
        "[profiles.demo]\nbank = \"sandbox\"\napi_base = {:?}\ntoken_url = {:?}\nauthorize_url = {:?}\nclient_id = {:?}\nredirect_uri = {:?}\nqwac_cert = {:?}\nqwac_key = {:?}\nqseal_key = {:?}\nqseal_cert = {:?}\nkey_id = {:?}\nca_bundle = {:?}\n",
        info.api_base,
        info.token_url,
        info.authorize_url,
        info.client_id,
        info.redirect_uri,
        info.qwac_cert,
        info.qwac_key,
        info.qseal_key,
        info.qseal_cert,
        info.key_id,
        info.ca,
    );
    let path = dir.join("config.toml");
    crate::init::create_private(&path, &text)?;
    let file = config::parse(&text, &path).map_err(|e| Failure::new(exit::CONFIG, e))?;
    config::resolve(&file, Some("demo"), Some(&path), &|_| None)
        .map_err(|e| Failure::new(exit::CONFIG, e))
}

/// Plays the PSU's browser: opens the authorization URL (the sandbox approves the test PSU
/// at once and redirects), takes the code from the redirect, and exchanges it.
pub(crate) async fn approve(
    oauth: &OAuthClient,
    info: &SandboxInfo,
    scopes: &[String],
    at: Option<&Url>,
) -> Result<Token, Failure> {
    approve_as(oauth, info, scopes, at, None).await
}

/// [`approve`] as the sandbox PSU `login_hint` names (`psu-1` … `psu-N` of `--psus N`).
pub(crate) async fn approve_as(
    oauth: &OAuthClient,
    info: &SandboxInfo,
    scopes: &[String],
    at: Option<&Url>,
    login_hint: Option<&str>,
) -> Result<Token, Failure> {
    let extra: Vec<(String, String)> = login_hint
        .map(|hint| ("login_hint".to_owned(), hint.to_owned()))
        .into_iter()
        .collect();
    let auth = oauth.authorize(scopes, at, &extra)?;
    let ca = std::fs::read(&info.ca)
        .or_exit(exit::CONFIG, format!("cannot read {}", info.ca.display()))?;
    let browser = reqwest::Client::builder()
        .tls_certs_only([
            reqwest::Certificate::from_pem(&ca).or_exit(exit::CONFIG, "the sandbox CA")?
        ])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .or_exit(1, "cannot build the browser stand-in")?;
    let response = browser
        .get(auth.url.clone())
        .send()
        .await
        .or_exit(exit::UNAVAILABLE, "cannot open the authorization page")?;
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            Failure::new(
                exit::AUTH,
                format!(
                    "the authorization page answered {} without a redirect",
                    response.status()
                ),
            )
        })?
        .to_owned();
    let redirect = oauth
        .read_redirect(&location, &auth.state)
        .map_err(|e| Failure::new(exit::AUTH, e))?;
    Ok(oauth
        .exchange_code(&redirect.code, &auth.pkce_verifier, scopes)
        .await?)
}
