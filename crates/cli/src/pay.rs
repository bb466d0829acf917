//! `stet pay` and `stet funds-check`: payment initiation (PISP) and funds confirmation (CBPII).
//!
//! `stet pay --to … --amount …` runs the whole journey: create the payment request, have the
//! PSU approve it at the bank (same redirect modes as `stet auth login`), confirm it, and wait
//! for a final status. The steps are also separate commands, for scripts and sandbox testing.
//! A payment request is created once: stet never resends a POST by itself.

use std::str::FromStr as _;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use futures_util::StreamExt as _;
use stet_client::models::{
    Amount, ExecutionRule, FrequencyCode, HalPaymentRequest, PaymentInformationStatusCode,
    StatusReasonInformation,
};
use stet_client::{
    ClientError, CreditTransfer, PaymentRequestBuilder, StandingOrder, StetClient, payment_status,
};
use stet_transport::{Auth, Profile};
use url::Url;

use crate::Globals;
use crate::auth::{Approval, obtain_consent, runtime};
use crate::exit::Failure;
use crate::iban::parse_iban;
use crate::output::{OutputArgs, Report};

#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:
  stet pay --to FR7630006000011234567890189 --to-name \"Ana Smith\" --amount 12.34 --label \"Invoice 118\"
  stet pay create --to FR76... --to-name \"Ana Smith\" --amount 12.34 --label rent   # prints the id and the approval link
  stet pay create --to FR76...A --to-name A --amount 10.00 --to FR76...B --to-name B --amount 20.00 --label \"June\"
  stet pay create --to FR76... --to-name \"SCI Les Tilleuls\" --amount 800.00 --label rent --every monthly --date 2026-07-05 --until 2027-06-05
  stet pay confirm PR000001
  stet pay confirm PR000001 --approved     # the PSU approved at the bank already
  stet pay status PR000001 --output json
  stet pay cancel PR000001

Without --to-name, the payee's name is taken from the PSU's trusted beneficiary with that IBAN
(`stet beneficiaries`); SEPA transfers always carry it."
)]
pub struct PayArgs {
    #[command(subcommand)]
    step: Option<PayStep>,
    #[command(flatten)]
    payment: PaymentArgs,
    #[command(flatten)]
    approval: ApprovalArgs,
}

#[derive(Debug, Subcommand)]
pub enum PayStep {
    /// Create the payment request; print its id and the link where the PSU approves it
    Create(PaymentArgs),
    /// Have the PSU approve a payment request, then confirm it
    Confirm {
        /// The payment request's id
        id: String,
        /// The approval link printed by `stet pay create`
        #[arg(long, value_name = "URL", conflicts_with = "approved")]
        approval_url: Option<Url>,
        /// The PSU has already approved it at the bank (which sent them back to the report
        /// URL): confirm with the TPP's own token, without asking again
        #[arg(long)]
        approved: bool,
        #[command(flatten)]
        approval: ApprovalArgs,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Print a payment request's status
    Status {
        /// The payment request's id
        id: String,
        #[command(flatten)]
        out: OutputArgs,
    },
    /// Cancel a payment request
    Cancel {
        /// The payment request's id
        id: String,
        #[command(flatten)]
        out: OutputArgs,
    },
}

#[derive(Debug, Clone, Args)]
pub struct PaymentArgs {
    /// The payee's IBAN; for several payees, repeat --to, --to-name and --amount in the same order
    #[arg(long, value_name = "IBAN", value_parser = parse_iban)]
    to: Vec<String>,
    /// The payee's name, which SEPA transfers carry [default: the name of the PSU's trusted
    /// beneficiary with that IBAN]
    #[arg(long, value_name = "NAME")]
    to_name: Vec<String>,
    /// The amount, e.g. 12.34 (at most two decimals); one per --to
    #[arg(long, value_name = "AMOUNT", value_parser = parse_amount)]
    amount: Vec<Amount>,
    /// The currency
    #[arg(long, value_name = "CODE", default_value = "EUR", value_parser = parse_currency)]
    currency: String,
    /// The label the payee sees (remittance information, at most 140 characters): once for
    /// every payee, or once per --to
    #[arg(long, value_name = "TEXT")]
    label: Vec<String>,
    /// An instant transfer (SCT Inst)
    #[arg(long, conflicts_with = "every")]
    instant: bool,
    /// Execute on this date (YYYY-MM-DD) instead of as soon as possible; with --every, the
    /// first execution
    #[arg(long, value_name = "DATE", value_parser = parse_future_date)]
    date: Option<time::Date>,
    /// A standing order: repeat the transfer at this frequency, from --date
    #[arg(
        long,
        value_enum,
        value_name = "FREQUENCY",
        requires = "date",
        ignore_case = true
    )]
    every: Option<Frequency>,
    /// The last execution of a standing order (YYYY-MM-DD) [default: until cancelled]
    #[arg(long, value_name = "DATE", value_parser = parse_future_date, requires = "every")]
    until: Option<time::Date>,
    /// When an execution falls on a day banks are closed: move it to the following or the
    /// preceding business day
    #[arg(long, value_enum, value_name = "RULE", default_value_t = Rule::Following, requires = "every")]
    execution_rule: Rule,
    /// The PSU's account to pay from (the bank asks the PSU otherwise)
    #[arg(long, value_name = "IBAN", value_parser = parse_iban)]
    from: Option<String>,
    #[command(flatten)]
    out: OutputArgs,
}

/// `--every`: a standing order's frequency (STET's codes are accepted too).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Frequency {
    /// Every day (DAIL)
    #[value(alias = "DAIL")]
    Daily,
    /// Every week (WEEK)
    #[value(alias = "WEEK")]
    Weekly,
    /// Every two weeks (TOWK)
    #[value(alias = "TOWK")]
    EveryTwoWeeks,
    /// Every month (MNTH)
    #[value(alias = "MNTH")]
    Monthly,
    /// Every two months (TOMN)
    #[value(alias = "TOMN")]
    EveryTwoMonths,
    /// Every three months (QUTR)
    #[value(alias = "QUTR")]
    Quarterly,
    /// Every six months (SEMI)
    #[value(alias = "SEMI")]
    HalfYearly,
    /// Every year (YEAR)
    #[value(alias = "YEAR")]
    Yearly,
}

impl Frequency {
    fn code(self) -> FrequencyCode {
        match self {
            Frequency::Daily => FrequencyCode::Dail,
            Frequency::Weekly => FrequencyCode::Week,
            Frequency::EveryTwoWeeks => FrequencyCode::Towk,
            Frequency::Monthly => FrequencyCode::Mnth,
            Frequency::EveryTwoMonths => FrequencyCode::Tomn,
            Frequency::Quarterly => FrequencyCode::Qutr,
            Frequency::HalfYearly => FrequencyCode::Semi,
            Frequency::Yearly => FrequencyCode::Year,
        }
    }
}

/// `--execution-rule`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Rule {
    /// The following business day (FWNG)
    Following,
    /// The preceding business day (PREC)
    Preceding,
}

#[derive(Debug, Clone, Copy, Args)]
pub struct ApprovalArgs {
    /// Do not listen for the bank's redirect: print the link and ask for the redirected URL
    #[arg(long)]
    no_browser: bool,
    /// How long to wait for the PSU and then for a final status, in seconds
    #[arg(long, value_name = "SECONDS", default_value_t = 600)]
    timeout: u64,
}

#[derive(Debug, Args)]
#[command(
    after_help = "Example:\n  stet funds-check --account FR7630004010006746778722047 --amount 250.00"
)]
pub struct FundsCheckArgs {
    /// The PSU's account
    #[arg(long, value_name = "IBAN", value_parser = parse_iban)]
    account: String,
    /// The amount
    #[arg(long, value_name = "AMOUNT", value_parser = parse_amount)]
    amount: Amount,
    /// The currency
    #[arg(long, value_name = "CODE", default_value = "EUR", value_parser = parse_currency)]
    currency: String,
    /// The merchant the check is for (some banks require it)
    #[arg(long, value_name = "NAME")]
    payee: Option<String>,
    #[command(flatten)]
    out: OutputArgs,
}

/// A positive amount with at most two decimals.
pub fn parse_amount(s: &str) -> Result<Amount, String> {
    // Digits and one decimal point only: the models' parser also reads exponents (`1e3`) for
    // banks' data, but an amount to pay is typed by a person and must mean what it shows.
    let unsigned = s.trim().trim_start_matches(['-', '+']);
    let (units, cents) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if units.is_empty() || !(units.bytes().chain(cents.bytes())).all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "`{s}` is not an amount: write it in digits with a decimal point (e.g. 12.34)"
        ));
    }
    let amount =
        Amount::from_str(s.trim()).map_err(|_| format!("`{s}` is not an amount (e.g. 12.34)"))?;
    let text = amount.to_string();
    if text.starts_with('-') || amount.to_string().trim_start_matches(['0', '.']).is_empty() {
        return Err(format!("`{s}`: the amount must be more than zero"));
    }
    if text.split_once('.').is_some_and(|(_, d)| d.len() > 2) {
        return Err(format!(
            "`{s}` has more than two decimals: payments are in cents"
        ));
    }
    Ok(amount)
}

fn parse_currency(s: &str) -> Result<String, String> {
    if s.len() == 3 && s.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(s.to_owned())
    } else {
        Err(format!("`{s}` is not an ISO 4217 currency code (e.g. EUR)"))
    }
}

fn parse_future_date(s: &str) -> Result<time::Date, String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(s, &format)
        .map_err(|_| format!("`{s}` is not a date: expected YYYY-MM-DD"))?;
    if date < time::OffsetDateTime::now_utc().date() {
        return Err(format!("{s} is in the past"));
    }
    Ok(date)
}

/// One payee of the command line, names not yet looked up.
#[derive(Debug, Clone)]
struct Payee {
    iban: String,
    name: Option<String>,
    amount: Amount,
    label: String,
}

/// The payees of `--to`, `--to-name`, `--amount` and `--label`, checked before anything is
/// sent: one amount per payee, names for all or none, one label for all or one per payee.
fn payees(args: &PaymentArgs) -> Result<Vec<Payee>, Failure> {
    let usage = |m: String| Failure::new(2, m);
    let n = args.to.len();
    if n == 0 {
        return Err(usage(
            "--to IBAN is required to create a payment".to_owned(),
        ));
    }
    if args.amount.is_empty() {
        return Err(usage("--amount is required to create a payment".to_owned()));
    }
    if args.label.is_empty() {
        return Err(usage(
            "--label TEXT is required to create a payment".to_owned(),
        ));
    }
    if args.amount.len() != n {
        return Err(usage(format!(
            "--amount: give one per --to, in the same order ({n} payees, {} amounts)",
            args.amount.len()
        )));
    }
    if !args.to_name.is_empty() && args.to_name.len() != n {
        return Err(usage(format!(
            "--to-name: give one per --to, in the same order, or none to take the names from the \
             PSU's trusted beneficiaries ({n} payees, {} names)",
            args.to_name.len()
        )));
    }
    if args.label.len() != 1 && args.label.len() != n {
        return Err(usage(format!(
            "--label: give one for every payee, or one per --to ({n} payees, {} labels)",
            args.label.len()
        )));
    }
    if args.every.is_some() && n != 1 {
        return Err(usage(
            "--every: a standing order pays one payee; give one --to".to_owned(),
        ));
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let label = args.label[if args.label.len() == 1 { 0 } else { i }].clone();
        if label.chars().count() > 140 {
            return Err(usage("--label: at most 140 characters".to_owned()));
        }
        let name = args.to_name.get(i).cloned();
        if name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            return Err(usage(
                "--to-name: the payee's name cannot be empty".to_owned(),
            ));
        }
        out.push(Payee {
            iban: args.to[i].clone(),
            name,
            amount: args.amount[i],
            label,
        });
    }
    Ok(out)
}

/// Fills in the payees' names from the PSU's trusted beneficiaries, by IBAN. SEPA transfers
/// carry the payee's name: a payee without one is refused, never sent nameless.
async fn name_payees(client: &StetClient, payees: &mut [Payee]) -> Result<(), Failure> {
    if payees.iter().all(|p| p.name.is_some()) {
        return Ok(());
    }
    let compact = |iban: &str| -> String {
        iban.chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase()
    };
    let mut known: Vec<(String, String)> = Vec::new();
    let mut beneficiaries = client.trusted_beneficiaries();
    let mut failed = None;
    while let Some(item) = beneficiaries.next().await {
        match item {
            Ok(b) => {
                if let Some(iban) = b.creditor_account.as_ref().and_then(|a| a.iban.as_deref()) {
                    known.push((compact(iban), b.creditor.name.clone()));
                }
            }
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    for payee in payees.iter_mut().filter(|p| p.name.is_none()) {
        let wanted = compact(&payee.iban);
        payee.name = known
            .iter()
            .find(|(iban, name)| *iban == wanted && !name.trim().is_empty())
            .map(|(_, name)| name.clone());
        if payee.name.is_none() {
            let why = match &failed {
                Some(e) => format!("the PSU's trusted beneficiaries could not be read ({e})"),
                None => "no trusted beneficiary of the PSU has that IBAN".to_owned(),
            };
            return Err(Failure::new(
                2,
                format!(
                    "--to-name NAME is required for {}: SEPA transfers carry the payee's name, \
                     and {why}",
                    payee.iban
                ),
            ));
        }
    }
    Ok(())
}

fn build_request(
    profile: &Profile,
    client: &StetClient,
    args: &PaymentArgs,
    payees: &[Payee],
) -> Result<stet_client::models::PaymentRequestResource, Failure> {
    let party = "stet";
    let mut builder = match (args.every, args.date) {
        (Some(every), Some(start)) => PaymentRequestBuilder::standing_order(
            party,
            StandingOrder {
                start: start.midnight().assume_utc(),
                end: args.until.map(|d| d.midnight().assume_utc()),
                frequency: every.code(),
                execution_rule: match args.execution_rule {
                    Rule::Following => ExecutionRule::Fwng,
                    Rule::Preceding => ExecutionRule::Prec,
                },
            },
        ),
        _ if args.instant => PaymentRequestBuilder::instant_transfer(party),
        _ => PaymentRequestBuilder::sepa_credit_transfer(party),
    };
    for p in payees {
        let name = p
            .name
            .clone()
            .ok_or_else(|| Failure::new(2, format!("--to-name NAME is required for {}", p.iban)))?;
        let mut transfer = CreditTransfer::eur(name, p.iban.clone(), p.amount, p.label.clone());
        transfer.currency = args.currency.clone();
        builder = builder.transfer(transfer);
    }
    if let Some(from) = &args.from {
        builder = builder.debtor_iban(from.clone());
    }
    if let (Some(date), None) = (args.date, args.every) {
        builder = builder.requested_execution(date.midnight().assume_utc());
    }
    let bank = client.bank();
    if bank.payment.report_urls_required {
        // The bank sends the PSU back there after approving (or refusing) the payment.
        let url = profile.redirect_uri.as_ref().ok_or_else(|| {
            Failure::new(
                crate::exit::CONFIG,
                format!(
                    "profile `{}` has no `redirect_uri`: {} requires \
                     supplementaryData.successfulReportUrl, the address it sends the PSU back \
                     to; set redirect_uri to the one registered with the bank",
                    profile.name, bank.display_name
                ),
            )
        })?;
        builder = builder.report_urls(url.as_str(), url.as_str());
    }
    Ok(builder.build(bank)?)
}

/// Checks the arguments, looks up the payees' names where needed, and builds the request.
async fn prepare(
    profile: &Profile,
    client: &StetClient,
    args: &PaymentArgs,
) -> Result<stet_client::models::PaymentRequestResource, Failure> {
    let mut payees = payees(args)?;
    name_payees(client, &mut payees).await?;
    build_request(profile, client, args, &payees)
}

pub fn pay(args: PayArgs, globals: &Globals) -> Result<u8, Failure> {
    match args.step {
        None => full_journey(&args.payment, args.approval, globals),
        Some(PayStep::Create(payment)) => create(&payment, globals),
        Some(PayStep::Confirm {
            id,
            approval_url,
            approved,
            approval,
            out,
        }) => confirm(&id, approval_url, approved, approval, &out, globals),
        Some(PayStep::Status { id, out }) => status(&id, &out, globals),
        Some(PayStep::Cancel { id, out }) => cancel(&id, &out, globals),
    }
}

fn full_journey(
    payment: &PaymentArgs,
    approval: ApprovalArgs,
    globals: &Globals,
) -> Result<u8, Failure> {
    let profile = crate::profile::load(globals)?;
    let client = crate::profile::client_for(&profile, globals, None)?;
    runtime()?.block_on(async {
        let request = prepare(&profile, &client, payment).await?;
        let created = client
            .create_payment_request(&request)
            .await
            .map_err(|e| creation_failed(e, &request))?;
        say(globals, &format!("Created payment request {}.", created.id));
        approve_and_confirm(
            &profile,
            &client,
            &created.id,
            created.consent_approval.as_ref(),
            approval,
            globals,
        )
        .await?;
        wait(&client, &created.id, approval, &payment.out, globals).await
    })
}

fn create(payment: &PaymentArgs, globals: &Globals) -> Result<u8, Failure> {
    let profile = crate::profile::load(globals)?;
    let client = crate::profile::client_for(&profile, globals, None)?;
    runtime()?.block_on(async {
        let request = prepare(&profile, &client, payment).await?;
        let created = client
            .create_payment_request(&request)
            .await
            .map_err(|e| creation_failed(e, &request))?;
        let link = created
            .consent_approval
            .as_ref()
            .map(Url::as_str)
            .unwrap_or("");
        let json = serde_json::json!({
            "id": created.id,
            "consent_approval": created.consent_approval.as_ref().map(Url::as_str),
            "location": created.location,
            "payment_information_id": request.payment_information_id,
            "number_of_transactions": request.number_of_transactions,
            "answer": created.json,
        });
        Report::new(json, format!("{} {link}\n", created.id))
            .rows(
                &["id", "consent_approval", "payment_information_id"],
                vec![vec![
                    created.id.clone(),
                    link.to_owned(),
                    request.payment_information_id.clone(),
                ]],
            )
            .print(payment.out.report())?;
        say(
            globals,
            &format!(
                "Next: `stet pay confirm {}` has the PSU approve it, then confirms it.",
                created.id
            ),
        );
        Ok(0)
    })
}

/// A failed creation. When the bank's answer was lost the payment request may exist without
/// stet knowing its id: the error names it by what the PSU and the bank can see.
fn creation_failed(
    e: stet_client::ClientError,
    request: &stet_client::models::PaymentRequestResource,
) -> Failure {
    use stet_transport::TransportError;
    match e {
        ClientError::Transport(TransportError::OutcomeUnknown { .. }) => {
            let transfers: Vec<String> = request
                .credit_transfer_transaction
                .iter()
                .map(|t| {
                    let amount = t
                        .instructed_amount
                        .as_ref()
                        .map(|a| format!("{} {}", a.amount, a.currency))
                        .unwrap_or_default();
                    let to = t
                        .beneficiary
                        .as_ref()
                        .or(request.beneficiary.as_ref())
                        .and_then(|b| b.creditor_account.as_ref())
                        .and_then(|a| a.iban.clone())
                        .unwrap_or_default();
                    format!("{amount} to {to}")
                })
                .collect();
            Failure::new(
                crate::exit::TEMPORARY,
                format!(
                    "payment request {} of {}: {e}",
                    request.payment_information_id,
                    transfers.join(", "),
                ),
            )
        }
        other => match turned_away(&other) {
            Some(t) => Failure::new(
                crate::exit::for_transport(t),
                format!(
                    "the payment request was not created: {other}. Run the same command again later"
                ),
            ),
            None => other.into(),
        },
    }
}

fn confirm(
    id: &str,
    approval_url: Option<Url>,
    approved: bool,
    approval: ApprovalArgs,
    out: &OutputArgs,
    globals: &Globals,
) -> Result<u8, Failure> {
    let profile = crate::profile::load(globals)?;
    let client = crate::profile::client_for(&profile, globals, None)?;
    runtime()?.block_on(async {
        if approved {
            // The PSU approved at the bank, which sent them back to the report URL: the TPP
            // confirms with its own token.
            let auth = Auth::ClientCredentials(vec![client.bank().scopes.pisp.clone()]);
            match client.confirm_payment_request(id, auth).await {
                Err(ClientError::PaymentRejected { .. }) => {}
                other => {
                    other.map_err(|e| confirmation_turned_away(e, id, "--approved"))?;
                }
            }
        } else {
            // STET gives the approval link only in the creation answer: `stet pay create`
            // prints it.
            approve_and_confirm(
                &profile,
                &client,
                id,
                approval_url.as_ref(),
                approval,
                globals,
            )
            .await?;
        }
        wait(&client, id, approval, out, globals).await
    })
}

/// The PSU approves at the bank (authorization code for the payment), then stet confirms.
async fn approve_and_confirm(
    profile: &Profile,
    client: &StetClient,
    id: &str,
    link: Option<&Url>,
    approval: ApprovalArgs,
    globals: &Globals,
) -> Result<(), Failure> {
    let link = link.ok_or_else(|| {
        Failure::new(2, format!("no approval link for {id}: pass the one `stet pay create` printed, with --approval-url (or --approved if the PSU approved it at the bank already)"))
    })?;
    let scopes = vec![client.bank().scopes.pisp.clone()];
    let token = obtain_consent(
        profile,
        client.transport(),
        &scopes,
        Some(link),
        &Approval {
            no_browser: approval.no_browser,
            timeout: Duration::from_secs(approval.timeout),
            login_hint: None,
        },
    )
    .await?;
    let key = format!("pisp {id}");
    client.transport().store_token(&key, token).await?;
    say(globals, "The PSU approved it; confirming.");
    match client.confirm_payment_request(id, Auth::Consent(key)).await {
        // Said with the final status, below.
        Err(ClientError::PaymentRejected { .. }) => Ok(()),
        other => other
            .map(drop)
            .map_err(|e| confirmation_turned_away(e, id, &format!("--approval-url {link}"))),
    }
}

/// Whether the bank turned the request away without carrying it out: 429, 503, or no
/// connection at all (the transport reports a POST that may have been sent as an unknown
/// outcome instead). A 500, 502 or 504 may come after the bank acted, so it is not this.
fn turned_away(e: &stet_client::ClientError) -> Option<&stet_transport::TransportError> {
    use stet_transport::TransportError as T;
    match e {
        stet_client::ClientError::Transport(
            t @ (T::RateLimited { .. } | T::Connect { .. } | T::Http { status: 503, .. }),
        ) => Some(t),
        _ => None,
    }
}

/// A confirmation the bank turned away: the payment request exists and is approved, and
/// confirming it again is safe, so say how (`again` is the flag that repeats it).
fn confirmation_turned_away(e: stet_client::ClientError, id: &str, again: &str) -> Failure {
    match turned_away(&e) {
        Some(t) => Failure::new(
            crate::exit::for_transport(t),
            format!(
                "payment request {id} was created but not confirmed: {e}. Confirm it later with \
                 `stet pay confirm {id} {again}`"
            ),
        ),
        None => e.into(),
    }
}

/// The documented result of a payment request's status: the report and whether it is done.
fn status_report(
    id: &str,
    hal: Option<&HalPaymentRequest>,
    rejected: Option<(&str, Option<&str>)>,
) -> (Report, bool) {
    let (status, reason) = match (hal, rejected) {
        (_, Some((status, reason))) => (Some(status.to_owned()), reason.map(str::to_owned)),
        (Some(hal), None) => {
            let (status, reason) = payment_status(hal);
            (status.map(|s| s.to_string()), reason.map(|r| r.to_string()))
        }
        (None, None) => (None, None),
    };
    let done = matches!(
        hal.and_then(|h| payment_status(h).0),
        Some(
            PaymentInformationStatusCode::Acsc
                | PaymentInformationStatusCode::Accp
                | PaymentInformationStatusCode::Acwc
        )
    ) && rejected.is_none();
    let payment_request = hal.map(|h| {
        serde_json::from_str::<serde_json::Value>(h.payment_request.json().get())
            .unwrap_or_default()
    });
    let status_text = status.clone().unwrap_or_else(|| "unknown".to_owned());
    let text = format!(
        "{id} {status_text}{}\n",
        reason.as_ref().map(|r| format!(" {r}")).unwrap_or_default()
    );
    let json = serde_json::json!({
        "id": id,
        "status": status,
        "reason": reason,
        "accepted": done,
        "payment_request": payment_request,
    });
    let report = Report::new(json, text).rows(
        &["id", "status", "reason", "accepted"],
        vec![vec![
            id.to_owned(),
            status.unwrap_or_default(),
            reason.unwrap_or_default(),
            done.to_string(),
        ]],
    );
    (report, done)
}

async fn wait(
    client: &StetClient,
    id: &str,
    approval: ApprovalArgs,
    out: &OutputArgs,
    globals: &Globals,
) -> Result<u8, Failure> {
    let outcome = client
        .wait_for_final_status(
            id,
            Duration::from_secs(approval.timeout),
            Duration::from_millis(500),
        )
        .await;
    let (report, done) = match outcome {
        Ok(hal) => status_report(id, Some(&hal), None),
        Err(ClientError::PaymentRejected { status, reason, .. }) => {
            status_report(id, None, Some((status.as_str(), reason.as_deref())))
        }
        Err(e) => return Err(e.into()),
    };
    report.print(out.report())?;
    if done {
        say(globals, "The payment is accepted.");
        Ok(0)
    } else {
        let status = report.json()["status"]
            .as_str()
            .unwrap_or("unknown")
            .to_owned();
        eprintln!("error: payment request {id} ended with status {status}");
        Ok(1)
    }
}

fn status(id: &str, out: &OutputArgs, globals: &Globals) -> Result<u8, Failure> {
    let client = crate::profile::client(globals, None)?;
    runtime()?.block_on(async {
        let hal = client.payment_request(id).await?;
        status_report(id, Some(&hal), None).0.print(out.report())?;
        Ok(0)
    })
}

fn cancel(id: &str, out: &OutputArgs, globals: &Globals) -> Result<u8, Failure> {
    let client = crate::profile::client(globals, None)?;
    runtime()?.block_on(async {
        client
            .cancel_payment_request(id, StatusReasonInformation::Ds02)
            .await?;
        say(globals, &format!("Asked the bank to cancel {id}."));
        Report::new(
            serde_json::json!({"id": id, "cancellation": "requested", "reason": "DS02"}),
            "",
        )
        .rows(
            &["id", "cancellation", "reason"],
            vec![vec![
                id.to_owned(),
                "requested".to_owned(),
                "DS02".to_owned(),
            ]],
        )
        .print(out.report())?;
        Ok(0)
    })
}

pub fn funds_check(args: FundsCheckArgs, globals: &Globals) -> Result<u8, Failure> {
    let client = crate::profile::client(globals, None)?;
    if client.bank().funds_confirmation.payee_required && args.payee.is_none() {
        return Err(Failure::new(
            2,
            format!(
                "--payee NAME is required: {} checks funds for a named merchant",
                client.bank().display_name
            ),
        ));
    }
    runtime()?.block_on(async {
        let mut request = stet_client::funds_confirmation_request(
            args.account.clone(),
            args.amount,
            args.currency.clone(),
        );
        request.payee = args.payee.clone();
        let report = client.funds_confirmation(&request).await?;
        let available = report.result;
        let text = format!(
            "{} {} {}: {}\n",
            args.account,
            args.amount,
            args.currency,
            if available {
                "available"
            } else {
                "not available"
            }
        );
        let json = serde_json::json!({
            "account": args.account,
            "amount": args.amount.to_string(),
            "currency": args.currency,
            "payee": args.payee,
            "available": available,
            "payment_coverage_request_id": request.payment_coverage_request_id,
        });
        Report::new(json, text)
            .rows(
                &["account", "amount", "currency", "available"],
                vec![vec![
                    args.account.clone(),
                    args.amount.to_string(),
                    args.currency.clone(),
                    available.to_string(),
                ]],
            )
            .print(args.out.report())?;
        Ok(if available { 0 } else { 1 })
    })
}

fn say(globals: &Globals, text: &str) {
    if !globals.quiet {
        eprintln!("{text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_positive_cents() {
        assert_eq!(parse_amount("12.34").unwrap().to_string(), "12.34");
        assert!(parse_amount("-1").unwrap_err().contains("more than zero"));
        assert!(parse_amount("0.00").unwrap_err().contains("more than zero"));
        assert!(parse_amount("1.234").unwrap_err().contains("two decimals"));
        assert!(parse_amount("12,34").unwrap_err().contains("not an amount"));
    }
}
