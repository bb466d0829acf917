//! Exit codes and the one-line error every failing command ends with.
//!
//! The codes follow BSD `sysexits.h`, as cargo-like tools do, and are listed in README.md:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the check asked for failed (`stet sig verify`: the signature is not valid) |
//! | 2 | usage: unknown command or flag, bad argument value |
//! | 65 | the input could not be read (a malformed HTTP request), or the bank sent data that could not be read or refused the request as malformed |
//! | 66 | an input file does not exist or cannot be read |
//! | 69 | the bank is unavailable: unreachable, timing out, or answering 5xx |
//! | 74 | output could not be written, or the token store failed |
//! | 75 | temporary: rate limited (retry later), or a payment's outcome is unknown (check it) |
//! | 77 | consent or authentication needed: log in again (`stet auth login`) |
//! | 78 | configuration: a key, certificate or profile cannot be used |

use std::fmt::Display;
use std::process::ExitCode;

/// Exit code: the check failed.
pub const CHECK_FAILED: u8 = 1;
/// Exit code: the input data is malformed.
pub const DATA: u8 = 65;
/// Exit code: an input file cannot be read.
pub const NO_INPUT: u8 = 66;
/// Exit code: output cannot be written.
pub const IO: u8 = 74;
/// Exit code: the bank is unavailable.
pub const UNAVAILABLE: u8 = 69;
/// Exit code: try again later.
pub const TEMPORARY: u8 = 75;
/// Exit code: consent or authentication needed.
pub const AUTH: u8 = 77;
/// Exit code: a configuration, key or certificate problem.
pub const CONFIG: u8 = 78;

/// The exit code for an HTTP status from the bank.
pub fn for_status(status: u16) -> u8 {
    match status {
        200..=299 => 0,
        401 | 403 => AUTH,
        429 => TEMPORARY,
        500..=599 => UNAVAILABLE,
        _ => DATA,
    }
}

/// The exit code for a failed exchange with the bank.
pub fn for_transport(e: &stet_transport::TransportError) -> u8 {
    use stet_transport::TransportError as E;
    match e {
        E::Config(_) | E::Identity(_) | E::SigningKey { .. } | E::KeyFile { .. } => CONFIG,
        E::Hsm { .. } => CONFIG,
        E::Sign(_) => CONFIG,
        E::UntrustedServer { .. } | E::Tls { .. } | E::TokenRedirect { .. } => CONFIG,
        E::Connect { .. } | E::Timeout { .. } | E::TokenEndpoint { .. } => UNAVAILABLE,
        E::OutcomeUnknown { .. } | E::RateLimited { .. } => TEMPORARY,
        E::OAuth { .. } | E::ConsentRequired { .. } => AUTH,
        E::ForeignHost { .. } | E::TooLarge { .. } => DATA,
        E::Http { status, .. } => for_status(*status),
        E::Store(_) => IO,
        _ => 1,
    }
}

impl From<stet_transport::TransportError> for Failure {
    fn from(e: stet_transport::TransportError) -> Self {
        Failure::new(for_transport(&e), e)
    }
}

/// A failed command: what to print, and the exit code.
#[derive(Debug)]
pub struct Failure {
    code: u8,
    message: String,
}

impl Failure {
    /// A failure with `code` and a message that says what was wrong and what to do.
    pub fn new(code: u8, message: impl Display) -> Self {
        Failure {
            code,
            message: message.to_string(),
        }
    }

    /// The same failure with `more` said after its message (on the same line).
    pub fn and(mut self, more: impl Display) -> Self {
        self.message = format!("{}; {more}", self.message);
        self
    }

    /// The same failure with another exit code (for commands whose codes differ, such as
    /// `stet conformance`).
    pub fn recode(mut self, code: u8) -> Self {
        self.code = code;
        self
    }

    /// What is printed after `error: `.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Prints `error: …` on stderr and gives the exit code.
    pub fn report(self) -> ExitCode {
        eprintln!("error: {}", self.message);
        ExitCode::from(self.code)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}

impl Failure {
    /// The exit code.
    pub fn code(&self) -> u8 {
        self.code
    }
}

/// Attaches an exit code and context to an error.
pub trait OrExit<T> {
    /// On error, a [`Failure`] with `code` and the message `context: error`.
    fn or_exit(self, code: u8, context: impl Display) -> Result<T, Failure>;
}

impl<T, E: Display> OrExit<T> for Result<T, E> {
    fn or_exit(self, code: u8, context: impl Display) -> Result<T, Failure> {
        self.map_err(|e| Failure::new(code, format!("{context}: {e}")))
    }
}

impl From<stet_client::ClientError> for Failure {
    fn from(e: stet_client::ClientError) -> Self {
        use stet_client::ClientError as E;
        let code = match &e {
            E::Transport(t) => for_transport(t),
            E::UnreadableBankData { .. } | E::PaginationLoop { .. } | E::Link { .. } => DATA,
            E::ExtendedHistoryConsent { .. } => AUTH,
            E::BudgetSpent { .. } => TEMPORARY,
            _ => 1,
        };
        Failure::new(code, e)
    }
}
