//! `stet pay` and `stet funds-check`: payment initiation (PISP) and funds confirmation (CBPII).
//!
//! `stet pay --to … --amount …` runs the whole journey: create the payment request, have the
//! PSU approve it at the bank (same redirect modes as `stet auth login`), confirm it, and wait
//! for a final status. The steps are also separate commands, for scripts and sandbox testing.
//! A payment request is created once: stet never resends a POST by itself.

use std::str::FromStr as _;
use std::time::Duration;

use clap::{Args, Subcommand};
use stet_client::models::{Amount, PaymentInformationStatusCode, StatusReasonInformation};
use stet_client::{CreditTransfer, PaymentRequestBuilder, StetClient, payment_status};
use stet_transport::{Auth, Profile};
use url::Url;

use crate::Globals;
use crate::auth::{Approval, obtain_consent, runtime};
use crate::exit::Failure;
use crate::iban::parse_iban;

#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Examples:
  stet pay --to FR7630006000011234567890189 --to-name \"Ana Smith\" --amount 12.34 --label \"Invoice 118\"
  stet pay create --to FR76... --amount 12.34 --label rent      # prints the id and the approval link
  stet pay confirm PR000001
  stet pay status PR000001
  stet pay cancel PR000001"
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
        #[arg(long, value_name = "URL")]
        approval_url: Option<Url>,
        #[command(flatten)]
        approval: ApprovalArgs,
    },
    /// Print a payment request's status
    Status {
        /// The payment request's id
        id: String,
    },
    /// Cancel a payment request
    Cancel {
        /// The payment request's id
        id: String,
    },
}

#[derive(Debug, Clone, Args)]
pub struct PaymentArgs {
    /// The payee's IBAN
    #[arg(long, value_name = "IBAN", value_parser = parse_iban)]
    to: Option<String>,
    /// The payee's name
    #[arg(long, value_name = "NAME", default_value = "Payee")]
    to_name: String,
    /// The amount, e.g. 12.34 (at most two decimals)
    #[arg(long, value_name = "AMOUNT", value_parser = parse_amount)]
    amount: Option<Amount>,
    /// The currency
    #[arg(long, value_name = "CODE", default_value = "EUR", value_parser = parse_currency)]
    currency: String,
    /// The label the payee sees (remittance information, at most 140 characters)
    #[arg(long, value_name = "TEXT")]
    label: Option<String>,
    /// An instant transfer (SCT Inst)
    #[arg(long)]
    instant: bool,
    /// Execute on this date (YYYY-MM-DD) instead of as soon as possible
    #[arg(long, value_name = "DATE", value_parser = parse_future_date)]
    date: Option<time::Date>,
    /// The PSU's account to pay from (the bank asks the PSU otherwise)
    #[arg(long, value_name = "IBAN", value_parser = parse_iban)]
    from: Option<String>,
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

fn build_request(
    client: &StetClient,
    args: &PaymentArgs,
) -> Result<stet_client::models::PaymentRequestResource, Failure> {
    let missing = |flag: &str| Failure::new(2, format!("{flag} is required to create a payment"));
    let to = args.to.clone().ok_or_else(|| missing("--to IBAN"))?;
    let amount = args.amount.ok_or_else(|| missing("--amount"))?;
    let label = args.label.clone().ok_or_else(|| missing("--label TEXT"))?;
    if label.chars().count() > 140 {
        return Err(Failure::new(2, "--label: at most 140 characters"));
    }
    let mut transfer = CreditTransfer::eur(args.to_name.clone(), to, amount, label);
    transfer.currency = args.currency.clone();
    let party = "stet";
    let mut builder = if args.instant {
        PaymentRequestBuilder::instant_transfer(party)
    } else {
        PaymentRequestBuilder::sepa_credit_transfer(party)
    }
    .transfer(transfer);
    if let Some(from) = &args.from {
        builder = builder.debtor_iban(from.clone());
    }
    if let Some(date) = args.date {
        builder = builder.requested_execution(date.midnight().assume_utc());
    }
    Ok(builder.build(client.bank())?)
}

pub fn pay(args: PayArgs, globals: &Globals) -> Result<u8, Failure> {
    match args.step {
        None => full_journey(&args.payment, args.approval, globals),
        Some(PayStep::Create(payment)) => create(&payment, globals),
        Some(PayStep::Confirm {
            id,
            approval_url,
            approval,
        }) => confirm(&id, approval_url, approval, globals),
        Some(PayStep::Status { id }) => status(&id, globals),
        Some(PayStep::Cancel { id }) => cancel(&id, globals),
    }
}

fn full_journey(
    payment: &PaymentArgs,
    approval: ApprovalArgs,
    globals: &Globals,
) -> Result<u8, Failure> {
    let profile = crate::profile::load(globals)?;
    let client = crate::profile::client_for(&profile, globals, None)?;
    let request = build_request(&client, payment)?;
    runtime()?.block_on(async {
        let created = client
            .create_payment_request(&request)
            .await
            .map_err(|e| creation_failed(e, &request, payment))?;
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
        wait(&client, &created.id, approval, globals).await
    })
}

fn create(payment: &PaymentArgs, globals: &Globals) -> Result<u8, Failure> {
    let client = crate::profile::client(globals, None)?;
    let request = build_request(&client, payment)?;
    runtime()?.block_on(async {
        let created = client
            .create_payment_request(&request)
            .await
            .map_err(|e| creation_failed(e, &request, payment))?;
        let link = created
            .consent_approval
            .as_ref()
            .map(Url::as_str)
            .unwrap_or("");
        println!("{} {link}", created.id);
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
    payment: &PaymentArgs,
) -> Failure {
    use stet_client::ClientError;
    use stet_transport::TransportError;
    match e {
        ClientError::Transport(TransportError::OutcomeUnknown { .. }) => Failure::new(
            crate::exit::TEMPORARY,
            format!(
                "payment request {} of {} {} to {}: {e}",
                request.payment_information_id,
                payment.amount.map(|a| a.to_string()).unwrap_or_default(),
                payment.currency,
                payment.to.as_deref().unwrap_or_default(),
            ),
        ),
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
    approval: ApprovalArgs,
    globals: &Globals,
) -> Result<u8, Failure> {
    let profile = crate::profile::load(globals)?;
    let client = crate::profile::client_for(&profile, globals, None)?;
    runtime()?.block_on(async {
        // STET gives the approval link only in the creation answer: `stet pay create` prints it.
        approve_and_confirm(
            &profile,
            &client,
            id,
            approval_url.as_ref(),
            approval,
            globals,
        )
        .await?;
        wait(&client, id, approval, globals).await
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
        Failure::new(2, format!("no approval link for {id}: pass the one `stet pay create` printed, with --approval-url"))
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
        },
    )
    .await?;
    let key = format!("pisp {id}");
    client.transport().store_token(&key, token).await?;
    say(globals, "The PSU approved it; confirming.");
    client
        .confirm_payment_request(id, Auth::Consent(key))
        .await
        .map_err(|e| confirmation_refused(e, id, link))?;
    Ok(())
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
/// confirming it again is safe, so say how.
fn confirmation_refused(e: stet_client::ClientError, id: &str, link: &Url) -> Failure {
    match turned_away(&e) {
        Some(t) => Failure::new(
            crate::exit::for_transport(t),
            format!(
                "payment request {id} was created but not confirmed: {e}. Confirm it later with \
                 `stet pay confirm {id} --approval-url {link}`"
            ),
        ),
        None => e.into(),
    }
}

async fn wait(
    client: &StetClient,
    id: &str,
    approval: ApprovalArgs,
    globals: &Globals,
) -> Result<u8, Failure> {
    let hal = client
        .wait_for_final_status(
            id,
            Duration::from_secs(approval.timeout),
            Duration::from_millis(500),
        )
        .await?;
    let (status, reason) = payment_status(&hal);
    let status_text = status
        .map(|s| s.to_string())
        .unwrap_or_else(|| "unknown".to_owned());
    println!(
        "{id} {status_text}{}",
        reason.map(|r| format!(" {r}")).unwrap_or_default()
    );
    let done = matches!(
        status,
        Some(
            PaymentInformationStatusCode::Acsc
                | PaymentInformationStatusCode::Accp
                | PaymentInformationStatusCode::Acwc
        )
    );
    if done {
        say(globals, "The payment is accepted.");
        Ok(0)
    } else {
        eprintln!("error: payment request {id} ended with status {status_text}");
        Ok(1)
    }
}

fn status(id: &str, globals: &Globals) -> Result<u8, Failure> {
    let client = crate::profile::client(globals, None)?;
    runtime()?.block_on(async {
        let hal = client.payment_request(id).await?;
        let (status, reason) = payment_status(&hal);
        println!(
            "{id} {}{}",
            status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "unknown".to_owned()),
            reason.map(|r| format!(" {r}")).unwrap_or_default()
        );
        Ok(0)
    })
}

fn cancel(id: &str, globals: &Globals) -> Result<u8, Failure> {
    let client = crate::profile::client(globals, None)?;
    runtime()?.block_on(async {
        client
            .cancel_payment_request(id, StatusReasonInformation::Ds02)
            .await?;
        say(globals, &format!("Asked the bank to cancel {id}."));
        Ok(0)
    })
}

pub fn funds_check(args: FundsCheckArgs, globals: &Globals) -> Result<u8, Failure> {
    let client = crate::profile::client(globals, None)?;
    runtime()?.block_on(async {
        let request = stet_client::funds_confirmation_request(
            args.account.clone(),
            args.amount,
            args.currency.clone(),
        );
        let report = client.funds_confirmation(&request).await?;
        let available = report.result;
        println!(
            "{} {} {}: {}",
            args.account,
            args.amount,
            args.currency,
            if available {
                "available"
            } else {
                "not available"
            }
        );
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
