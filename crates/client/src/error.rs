//! [`ClientError`]: what went wrong in a typed call, one variant per thing a user does
//! differently.

use std::time::Duration;

use stet_transport::TransportError;

use crate::link::LinkError;

/// A typed STET call that failed. Each variant's message says what to do next.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The exchange with the bank failed (TLS, OAuth, an HTTP error status, a lost answer to a
    /// POST, ...): see [`TransportError`], whose messages say what to check.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The bank answered something that cannot be read as the STET resource expected.
    #[error(
        "the bank's answer to {what} cannot be read: {message}. Try again later; if it lasts, \
         run the command with -vv and show the exchange to the bank"
    )]
    UnreadableBankData {
        /// What was asked (`GET accounts/A1/transactions`).
        what: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A `_links.next` led back to a page already read: stopped instead of looping.
    #[error(
        "the bank's pagination loops: {url} was already read (after {pages} pages); stopped \
         instead of reading it again"
    )]
    PaginationLoop {
        /// The link seen twice.
        url: String,
        /// Pages read before it.
        pages: u64,
    },
    /// A `_links.next` that stet will not follow (another host, not a URL).
    #[error("refusing to follow the bank's next link `{href}`: {source}")]
    Link {
        /// The href as the bank wrote it.
        href: String,
        /// Why.
        #[source]
        source: LinkError,
    },
    /// Transactions older than the unattended window were asked for and the bank refused: the
    /// consent lacks the extended-history scope.
    #[error(
        "the bank refused transactions from {date_from}, more than {days} days back{}: consent \
         again with the `{scope}` scope (`stet auth login --scope aisp --scope {scope}`)",
        bank_message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default()
    )]
    ExtendedHistoryConsent {
        /// The `dateFrom` asked for.
        date_from: time::Date,
        /// How many days back come without the scope.
        days: u32,
        /// The scope to ask for (`extended_transaction_history`).
        scope: String,
        /// The bank's message, when it gave one.
        bank_message: Option<String>,
    },
    /// The unattended-access budget (4 calls a day per account and endpoint without
    /// `PSU-IP-Address`, PSD2 RTS art. 36(5)) is spent.
    #[error(
        "the unattended-access budget for {endpoint}{} is spent ({limit} calls a day without the \
         PSU present{}); it resets at {}. Wait until then, or call with the PSU present \
         (PSU-IP-Address)",
        account_label(account),
        if *by_bank { ", the bank said so" } else { ", counted by stet" },
        crate::budget::format_time(*resets_at)
    )]
    BudgetSpent {
        /// The account (`-` for endpoints not tied to one).
        account: String,
        /// The endpoint (`transactions`, `balances`, ...).
        endpoint: String,
        /// The number of calls allowed per 24 hours.
        limit: u32,
        /// When the next call is allowed again.
        resets_at: time::OffsetDateTime,
        /// Whether the bank refused (429) rather than stet's own count.
        by_bank: bool,
    },
    /// The bank rejected the payment request.
    #[error(
        "payment request {id} was rejected by the bank: status {status}{}",
        reason.as_deref().map(|r| format!(", reason {r}{}", reason_text(r))).unwrap_or_default()
    )]
    PaymentRejected {
        /// The payment request's resource id.
        id: String,
        /// The status (`RJCT`).
        status: String,
        /// The `statusReasonInformation`, when given (`AG01`).
        reason: Option<String>,
    },
    /// The payment request did not reach a final status in time. It may still do so: read it
    /// again later (`stet pay status ID`); do not create it again.
    #[error(
        "payment request {id} is still {status} after {} s: it may still complete; check it \
         later with `stet pay status {id}` rather than creating it again",
        waited.as_secs()
    )]
    PaymentPending {
        /// The payment request's resource id.
        id: String,
        /// The last status seen.
        status: String,
        /// How long it was polled.
        waited: Duration,
    },
    /// The bank created a payment request but its answer does not say which one.
    #[error(
        "the bank created a payment request but gave neither a Location header nor a resource \
         id: list the payment requests at the bank before retrying, so as not to pay twice"
    )]
    NoPaymentId,
    /// The unattended-access budget file cannot be read or written.
    #[error("unattended-access budget {path}: {detail}")]
    BudgetStore {
        /// The file.
        path: String,
        /// What failed.
        detail: String,
    },
    /// The request cannot be made as given.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The bank's profile says it does not offer this.
    #[error("{operation} is not available with bank profile `{bank}`: {why}")]
    Unsupported {
        /// The operation.
        operation: &'static str,
        /// The bank profile.
        bank: String,
        /// Why, and what to do instead.
        why: String,
    },
}

fn account_label(account: &str) -> String {
    if account == "-" {
        String::new()
    } else {
        format!(" of account {account}")
    }
}

fn reason_text(code: &str) -> &'static str {
    match code {
        "AC01" => " (wrong account number)",
        "AC04" => " (account closed)",
        "AC06" => " (account blocked)",
        "AG01" => " (transaction forbidden on this account)",
        "AM18" => " (too many transactions)",
        "CH03" => " (execution date too far in the future)",
        "CUST" => " (refused by the payer)",
        "DS02" => " (cancelled by an authorised user)",
        "FRAD" => " (fraud suspected)",
        "MS03" => " (reason not specified)",
        "NOAS" => " (no answer from the PSU)",
        "RR01" => " (missing payer account or identification)",
        "RR03" => " (missing payee name or address)",
        "RR04" => " (regulatory reason)",
        "RR12" => " (invalid identification)",
        _ => "",
    }
}

impl ClientError {
    /// The process exit code a command-line tool should use, after `sysexits.h`: 65
    /// (`EX_DATAERR`) for unreadable bank data and pagination faults, 77 (`EX_NOPERM`) when
    /// the PSU must consent again, 75 (`EX_TEMPFAIL`) when waiting helps (budget, rate limit,
    /// a pending payment, transient network errors), 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            ClientError::UnreadableBankData { .. }
            | ClientError::PaginationLoop { .. }
            | ClientError::Link { .. }
            | ClientError::NoPaymentId => 65,
            ClientError::ExtendedHistoryConsent { .. }
            | ClientError::Transport(TransportError::ConsentRequired { .. }) => 77,
            ClientError::BudgetSpent { .. } | ClientError::PaymentPending { .. } => 75,
            ClientError::Transport(e) if e.is_transient() => 75,
            _ => 1,
        }
    }
}
