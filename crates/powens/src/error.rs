//! What can go wrong with Powens, one variant per thing a user does differently.

use stet_transport::TransportError;

use crate::jwe::JweError;
use crate::model::ConnectionState;

/// A failed call to Powens, or a connection that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PowensError {
    /// The profile cannot be used (domain, client id or secret).
    #[error("profile `{profile}`: {detail}")]
    Config {
        /// The profile.
        profile: String,
        /// What is wrong and what to do.
        detail: String,
    },
    /// The exchange failed below HTTP (TLS, connection, timeout, size), or the token store.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// Powens refused the client's id or secret.
    #[error(
        "Powens refused the client credentials of profile `{profile}` ({detail}): check \
         `client_id` and `client_secret` (or STET_CLIENT_SECRET) against the Powens console"
    )]
    ClientRefused {
        /// The profile.
        profile: String,
        /// Powens' reason.
        detail: String,
    },
    /// No user token is stored for the profile.
    #[error(
        "no Powens user for profile `{profile}` yet: run `stet connect --profile {profile}` (or \
         `stet auth login --profile {profile}`) first"
    )]
    NoUser {
        /// The profile.
        profile: String,
    },
    /// Powens refused the stored user token.
    #[error(
        "Powens refused the user token of profile `{profile}` ({detail}): run `stet auth login \
         --profile {profile}` to renew it"
    )]
    TokenRefused {
        /// The profile.
        profile: String,
        /// Powens' reason.
        detail: String,
    },
    /// Powens answered with an error (its `code` says what).
    #[error("{method} {url}: HTTP {status}{}{}", code.as_deref().map(|c| format!(" `{c}`")).unwrap_or_default(), message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Api {
        /// The method.
        method: String,
        /// The URL.
        url: String,
        /// The status.
        status: u16,
        /// Powens' `code`.
        code: Option<String>,
        /// Powens' `description` or `message`.
        message: Option<String>,
    },
    /// Powens answered a web page (or other non-JSON) where JSON was due: a 404 of an
    /// unknown id, or something in front of the API.
    #[error("{method} {url}: HTTP {status} with {what} instead of JSON: {hint}")]
    NotJson {
        /// The method.
        method: String,
        /// The URL.
        url: String,
        /// The status.
        status: u16,
        /// What it was (`an HTML page`, …).
        what: &'static str,
        /// What it probably means.
        hint: String,
    },
    /// JSON that does not fit what Powens documents.
    #[error("Powens' answer to {what} cannot be read: {detail}")]
    Unreadable {
        /// The call.
        what: String,
        /// The parser's message.
        detail: String,
    },
    /// The domain's public key cannot be used to encrypt credentials.
    #[error("the encryption key of GET /publickey cannot be used: {0}")]
    DomainKey(#[source] JweError),
    /// A value could not be encrypted.
    #[error("cannot encrypt a credential: {0}")]
    Encrypt(#[source] JweError),
    /// A connection ended in a state stet cannot resolve.
    #[error("connection {}{}is `{state}`{}: {}", id.map(|i| format!("{i} ")).unwrap_or_default(), connector.as_deref().map(|c| format!("to {c} ")).unwrap_or_default(), message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default(), advice(state))]
    ConnectionState {
        /// The connection, when one was made.
        id: Option<crate::model::PowensId>,
        /// The connector's name.
        connector: Option<String>,
        /// The state.
        state: ConnectionState,
        /// Powens' message.
        message: Option<String>,
    },
    /// No account is enabled, so there are no transactions to list.
    #[error(
        "no account is enabled{}: enabling one is the PSU's consent; list them with `stet \
         accounts` and enable the ones to read with `stet accounts enable ID`",
        detail.as_deref().map(|d| format!(" ({d})")).unwrap_or_default()
    )]
    NoAccount {
        /// Powens' description.
        detail: Option<String>,
    },
    /// The PSU's side of a connection failed (no answer, a value refused, a browser error).
    #[error("{0}")]
    Psu(Box<dyn std::error::Error + Send + Sync>),
}

/// What to do about a state a connection stopped in.
fn advice(state: &ConnectionState) -> &'static str {
    use ConnectionState as S;
    match state {
        S::Wrongpass => "the bank refused the credentials: connect again with the right ones",
        S::PasswordExpired => {
            "the password expired at the bank: change it on the bank's site, then connect again"
        }
        S::ActionNeeded => {
            "the bank wants the PSU to act on its site (new terms, a message): do so, then \
             connect again"
        }
        S::RateLimiting => "the bank limits calls: Powens retries later; try again later",
        S::WebsiteUnavailable => "the bank's site is unavailable: try again later",
        S::Bug => "Powens failed: it retries by itself; try again later",
        S::NotSupported => "the connector does not support this account",
        S::ScaRequired
        | S::WebauthRequired
        | S::AdditionalInformationNeeded
        | S::Decoupled
        | S::Validating => "the PSU must act: run `stet connect --connection ID`",
        S::Valid => "usable",
        S::Other(_) => "a state stet does not know: see the Powens console",
    }
}

impl PowensError {
    /// The connection state a Powens error code stands for, when it is one (`400 wrongpass`
    /// on creating a connection, for instance).
    pub fn as_state(&self) -> Option<ConnectionState> {
        match self {
            PowensError::ConnectionState { state, .. } => Some(state.clone()),
            PowensError::Api {
                code: Some(code), ..
            } => {
                let state = ConnectionState::from(code.as_str());
                // Codes differ from states in case at times (`wrongPass` in the docs).
                let state = match state {
                    ConnectionState::Other(ref s) if s.eq_ignore_ascii_case("wrongpass") => {
                        ConnectionState::Wrongpass
                    }
                    other => other,
                };
                (!matches!(state, ConnectionState::Other(_) | ConnectionState::Valid))
                    .then_some(state)
            }
            _ => None,
        }
    }
}
