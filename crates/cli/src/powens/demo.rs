//! `stet demo --provider powens`: the Powens journey against the sandbox's Powens mock, started
//! in this process. Nothing to configure; the user token lives in a temporary folder.

use std::io::Write as _;
use std::sync::Arc;

use stet_powens::connect::{ConnectOptions, Psu, connect};
use stet_powens::model::ConnectorField;
use stet_powens::{PowensClient, PowensConfig, PowensError, TransactionQuery, mapping};
use stet_sandbox::{PowensOptions, Sandbox, SandboxConfig};
use stet_transport::{FileTokenStore, HttpsOptions, Secret};
use url::Url;

use crate::Globals;
use crate::exit::{self, Failure, OrExit as _};

fn step(n: u32, title: &str, text: &str) {
    println!("\n{n}. {title}\n   {text}");
}

fn show(line: impl AsRef<str>) {
    println!("   > {}", line.as_ref());
    let _ = std::io::stdout().flush();
}

/// The demo's PSU: the test connector's answers, said as they are given (secrets masked).
struct DemoPsu(Vec<(&'static str, &'static str)>);

impl Psu for DemoPsu {
    async fn fields(
        &mut self,
        fields: &[ConnectorField],
        why: Option<&str>,
    ) -> Result<Vec<(String, Secret)>, PowensError> {
        if let Some(why) = why {
            show(format!("Powens asks: {why}"));
        }
        let mut out = Vec::new();
        for field in fields {
            let value = self
                .0
                .iter()
                .find(|(name, _)| *name == field.name)
                .map(|(_, v)| *v)
                .ok_or_else(|| {
                    PowensError::Psu(format!("the demo has no value for {}", field.name).into())
                })?;
            let shown = if field.kind == stet_powens::model::FieldType::Password {
                "••••"
            } else {
                value
            };
            show(format!("{}: {shown} (sent as a JWE)", field.title()));
            out.push((field.name.clone(), Secret::new(value)));
        }
        Ok(out)
    }
    fn notice(&mut self, text: &str) {
        show(text);
    }
    async fn redirect_uri(&mut self) -> Result<Url, PowensError> {
        Err(PowensError::Psu(
            "the demo's scenario needs no browser".into(),
        ))
    }
    async fn browse(&mut self, _url: &Url) -> Result<String, PowensError> {
        Err(PowensError::Psu(
            "the demo's scenario needs no browser".into(),
        ))
    }
}

pub fn demo(globals: &Globals) -> Result<u8, Failure> {
    let _ = globals;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .or_exit(1, "cannot start the async runtime")?;
    runtime.block_on(journey())
}

async fn journey() -> Result<u8, Failure> {
    let sandbox = Sandbox::start(SandboxConfig {
        powens: Some(PowensOptions::default()),
        ..SandboxConfig::default()
    })
    .await
    .map_err(|e| Failure::new(exit::UNAVAILABLE, format!("cannot start the sandbox: {e}")))?;
    let info = sandbox.info().clone();
    let mock = info
        .powens
        .clone()
        .ok_or_else(|| Failure::new(1, "the sandbox started without its Powens mock"))?;
    let work = tempfile::tempdir().or_exit(exit::IO, "cannot create a temporary folder")?;
    println!(
        "stet demo --provider powens: the Powens aggregator API, against its mock on this machine."
    );
    println!(
        "The mock listens on {} and refuses any credential that is not encrypted for its key.",
        mock.api_base
    );

    let config = PowensConfig {
        profile: "powens-demo".into(),
        domain: None,
        api_base: Url::parse(&mock.api_base).or_exit(1, "the mock's URL")?,
        client_id: mock.client_id.clone(),
        client_secret: Secret::new(mock.client_secret.clone()),
        redirect_uri: None,
        https: HttpsOptions {
            ca_bundle: Some(info.ca.clone()),
            ..HttpsOptions::default()
        },
    };
    let client = PowensClient::new(
        config,
        Arc::new(FileTokenStore::new(work.path().join("tokens"))),
    )?;

    step(
        1,
        "The user",
        "The client's id and secret make a permanent Powens user (POST /auth/init); its token is kept like a STET token.",
    );
    let (user, _) = client.init_user().await?;
    show(format!("Powens user {}", user.id_user));

    step(
        2,
        "Connectors",
        "The banks the domain can reach, with the fields each asks for.",
    );
    let connectors = client.connectors().await?;
    for c in &connectors {
        show(format!(
            "{} ({}), {} field(s), auth {}",
            c.name,
            c.uuid,
            c.fields.len(),
            c.auth_mechanism.as_deref().unwrap_or("?")
        ));
    }
    let test = connectors
        .iter()
        .find(|c| c.uuid == stet_powens::TEST_CONNECTOR_UUID)
        .ok_or_else(|| Failure::new(1, "the mock has no test connector"))?;

    step(
        3,
        "Connect",
        "Each value goes as a JWE (RSA-OAEP-256 + A256GCM) under the domain key; the scenario asks for a one-time code.",
    );
    let key = client.domain_key(false).await?;
    show(format!("domain key `{}`, RSA-{}", key.kid(), key.bits()));
    let mut psu = DemoPsu(vec![
        ("login", "demo"),
        ("password", "1234"),
        ("openapiwebsite", "additionalInformationNeeded"),
        ("openapisms", "abcd"),
    ]);
    let options = ConnectOptions {
        source: Some("openapi".into()),
        ..ConnectOptions::default()
    };
    let connection = connect(&client, test, &mut psu, &options).await?;
    show(format!(
        "connection {}: {}",
        connection.id,
        connection.state().label()
    ));

    step(
        4,
        "Accounts",
        "New accounts are disabled: enabling one is the PSU's consent, so stet never does it by itself.",
    );
    let accounts = client.accounts().await?;
    for a in &accounts {
        show(format!(
            "{} {} {} {} {}",
            a.id,
            a.display_name(),
            a.balance.map(|b| b.to_string()).unwrap_or_default(),
            a.currency_code(),
            if a.disabled { "(disabled)" } else { "" }
        ));
    }
    let checking = accounts
        .iter()
        .find(|a| a.kind.as_deref() == Some("checking"))
        .ok_or_else(|| Failure::new(1, "the mock has no checking account"))?;
    client.enable_account(checking.id).await?;
    show(format!(
        "the PSU enables {} ({})",
        checking.id,
        checking.display_name()
    ));

    step(
        5,
        "Balances",
        "As STET balances: CLBD booked, XPCD with what is still coming.",
    );
    for b in mapping::balances(checking) {
        show(format!(
            "{} {} {}",
            b.balance_type, b.balance_amount.amount, b.balance_amount.currency
        ));
    }

    step(
        6,
        "Transactions",
        "In pages of 20, following _links.next; mapped to STET with stable ids (p1-…), amounts exact.",
    );
    let query = TransactionQuery {
        limit: 20,
        ..TransactionQuery::default()
    };
    let mut pages = client.transaction_pages(Some(checking.id), &query);
    let (mut count, mut shown, mut page_count) = (0, 0, 0);
    while let Some(page) = pages.next().await {
        page_count += 1;
        for t in page?.transactions {
            let Some(s) = mapping::transaction(&t, checking.currency_code(), client.namespace())
            else {
                continue;
            };
            count += 1;
            if shown < 3 {
                shown += 1;
                show(format!(
                    "{} {} {}{} {} {}",
                    s.resource_id.clone().unwrap_or_default(),
                    s.booking_date
                        .or(s.expected_booking_date)
                        .map(|d| d.to_string())
                        .unwrap_or_default(),
                    if s.credit_debit_indicator.as_str() == "DBIT" {
                        "-"
                    } else {
                        ""
                    },
                    s.transaction_amount.amount,
                    s.status,
                    s.remittance_information
                        .map(|r| r.text())
                        .unwrap_or_default()
                ));
            }
        }
    }
    show(format!("{count} transactions in {page_count} pages"));
    println!(
        "\nDone: a Powens profile gives the same commands (stet accounts, balances, transactions) as a STET bank."
    );
    sandbox.shutdown().await;
    Ok(0)
}
