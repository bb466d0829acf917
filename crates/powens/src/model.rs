//! Powens' resources as it sends them, read leniently.
//!
//! Everything is optional that Powens may leave out or set to `null`; unknown fields are
//! ignored by the types and kept by [`Raw`] (each list item is held with the exact JSON text
//! it came in); values of Powens' open lists (connection states, field types, account and
//! transaction types) are kept as strings or as an `Other` variant, never an error. Money is a
//! JSON number read exactly ([`Amount`], no float); dates are `YYYY-MM-DD`; date-times are
//! naive Paris time ([`ParisDateTime`]).

use serde::{Deserialize, Deserializer};
use stet_models::{Amount, Raw, StetDate};

use crate::paris::ParisDateTime;

/// A Powens id: a number, unique per domain for its kind of resource.
pub type PowensId = i64;

/// `null` read as the type's default (an empty list), as Powens sends for "none".
fn null_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// A date field: `null`, `""` and values that are no date read as absent (Powens editors fill
/// some with free text), a date-time keeps its date.
fn lenient_date<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<StetDate>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(match value {
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        _ => None,
    })
}

/// A date-time field: `null`, `""` and unreadable values are absent.
fn lenient_datetime<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<ParisDateTime>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(match value {
        Some(serde_json::Value::String(s)) => s.parse().ok(),
        _ => None,
    })
}

/// A flag Powens writes as `true`/`false`, as a date-time (set since), or `null`: set when it
/// is neither `null` nor `false`.
fn set_since<'de, D: Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(!matches!(
        value,
        None | Some(serde_json::Value::Null) | Some(serde_json::Value::Bool(false))
    ))
}

/// A string, or a number written as one (some ids and codes come either way).
fn stringish<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(match value {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    })
}

/// An open list of strings Powens documents and grows: each known value has a variant, any
/// other is kept in `Other`.
macro_rules! open_list {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $value:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A value this version does not know, kept as received.
            Other(String),
        }

        impl $name {
            /// The value as Powens writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $value,)*
                    $name::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $($value => $name::$variant,)*
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                Ok($name::from(text.as_str()))
            }
        }
    };
}

open_list! {
    /// The kind of a connector field.
    FieldType {
        /// Free text.
        Text = "text",
        /// A secret: asked without echo.
        Password = "password",
        /// A date.
        Date = "date",
        /// One of `values`.
        List = "list",
    }
}

/// One value a `list` field accepts.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FieldValue {
    /// What to show.
    #[serde(default)]
    pub label: Option<String>,
    /// What to send.
    pub value: String,
}

/// A value a connector (or a connection in need of more) asks for.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ConnectorField {
    /// The name to send it under.
    pub name: String,
    /// What to show the PSU.
    #[serde(default)]
    pub label: Option<String>,
    /// Text, password, date or list.
    #[serde(rename = "type", default = "text_field")]
    pub kind: FieldType,
    /// Whether it must be given.
    #[serde(default)]
    pub required: Option<bool>,
    /// A regular expression the value must match.
    #[serde(default)]
    pub regex: Option<String>,
    /// The values of a list.
    #[serde(default, deserialize_with = "null_default")]
    pub values: Vec<FieldValue>,
    /// The auth mechanisms it applies to (`credentials`, `webauth`); empty means all.
    #[serde(default, deserialize_with = "null_default")]
    pub auth_mechanisms: Vec<String>,
    /// The sources it applies to, as ids, names or objects; empty means all.
    #[serde(default, deserialize_with = "null_default")]
    pub connector_sources: Vec<serde_json::Value>,
}

fn text_field() -> FieldType {
    FieldType::Text
}

/// Why a value does not fit a field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// Not one of the list's values.
    #[error("`{value}` is not one of the values of {field}: {known}")]
    NotInList {
        /// The field.
        field: String,
        /// What was given (never a password: lists are not secret).
        value: String,
        /// The values it accepts.
        known: String,
    },
    /// The value does not match the field's regex.
    #[error("the value given for {field} does not match its pattern {regex}")]
    Pattern {
        /// The field.
        field: String,
        /// The pattern.
        regex: String,
    },
    /// A required value is empty.
    #[error("{field} needs a value")]
    Empty {
        /// The field.
        field: String,
    },
}

impl ConnectorField {
    /// What to call it when talking to the PSU: the label and the name.
    pub fn title(&self) -> String {
        match &self.label {
            Some(label) if !label.is_empty() && *label != self.name => {
                format!("{label} ({})", self.name)
            }
            _ => self.name.clone(),
        }
    }

    /// Whether the value must be given (Powens' default is yes).
    pub fn is_required(&self) -> bool {
        self.required.unwrap_or(true)
    }

    /// Whether the field is asked when connecting through `source` with `mechanism`.
    pub fn applies_to(&self, source: Option<&ConnectorSource>, mechanism: &str) -> bool {
        let mechanism_ok =
            self.auth_mechanisms.is_empty() || self.auth_mechanisms.iter().any(|m| m == mechanism);
        let source_ok = match source {
            None => true,
            Some(_) if self.connector_sources.is_empty() => true,
            Some(s) => self.connector_sources.iter().any(|v| s.is(v)),
        };
        mechanism_ok && source_ok
    }

    /// Checks a value before it is sent: a list's value among its values (its label is
    /// accepted and turned into the value), the field's `regex` matched. A regex that does not
    /// compile here is left to Powens, which checks again.
    pub fn check(&self, value: &str) -> Result<String, FieldError> {
        if value.is_empty() && self.is_required() {
            return Err(FieldError::Empty {
                field: self.title(),
            });
        }
        if self.kind == FieldType::List && !self.values.is_empty() {
            let found = self.values.iter().find(|v| {
                v.value == value
                    || v.label
                        .as_deref()
                        .is_some_and(|l| l.eq_ignore_ascii_case(value))
            });
            return match found {
                Some(v) => Ok(v.value.clone()),
                None => Err(FieldError::NotInList {
                    field: self.title(),
                    value: value.to_owned(),
                    known: self
                        .values
                        .iter()
                        .map(|v| v.value.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                }),
            };
        }
        if let Some(pattern) = self.regex.as_deref().filter(|r| !r.is_empty()) {
            match regex::Regex::new(pattern) {
                Ok(re) if !re.is_match(value) => {
                    return Err(FieldError::Pattern {
                        field: self.title(),
                        regex: pattern.to_owned(),
                    });
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(field = %self.name, error = %e,
                    "the field's regex does not compile here; Powens checks it"),
            }
        }
        Ok(value.to_owned())
    }
}

/// A way a connector reaches the bank (`openapi`: PSD2, `directaccess`: the website).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ConnectorSource {
    /// Its id.
    #[serde(default)]
    pub id: Option<PowensId>,
    /// Its name, sent as `source`.
    pub name: String,
    /// How the PSU authenticates through it.
    #[serde(default)]
    pub auth_mechanism: Option<String>,
    /// Set (a date, or `true`) when the source cannot be used.
    #[serde(default, deserialize_with = "set_since")]
    pub disabled: bool,
    /// Sources are added in increasing `priority`.
    #[serde(default)]
    pub priority: Option<i64>,
}

impl ConnectorSource {
    /// Whether a field's `connector_sources` entry names this source.
    fn is(&self, entry: &serde_json::Value) -> bool {
        match entry {
            serde_json::Value::Number(n) => n.as_i64().is_some_and(|n| Some(n) == self.id),
            serde_json::Value::String(s) => *s == self.name,
            serde_json::Value::Object(o) => {
                o.get("name").and_then(|v| v.as_str()) == Some(self.name.as_str())
                    || o.get("id")
                        .and_then(|v| v.as_i64())
                        .is_some_and(|n| Some(n) == self.id)
            }
            _ => false,
        }
    }
}

/// A bank (or other institution) Powens can connect to.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Connector {
    /// The id, which differs between domains (prefer the uuid).
    #[serde(default)]
    pub id: Option<PowensId>,
    /// The stable id.
    pub uuid: String,
    /// Its name.
    pub name: String,
    /// `credentials` (stet posts the fields) or `webauth` (the PSU goes to the bank).
    #[serde(default)]
    pub auth_mechanism: Option<String>,
    /// Every mechanism it offers.
    #[serde(default, deserialize_with = "null_default")]
    pub available_auth_mechanisms: Vec<String>,
    /// What it can do (`bank`, `transfer`, …).
    #[serde(default, deserialize_with = "null_default")]
    pub capabilities: Vec<String>,
    /// The fields to fill (with `expand=fields`).
    #[serde(default, deserialize_with = "null_default")]
    pub fields: Vec<ConnectorField>,
    /// Its sources (with `expand=sources`).
    #[serde(default, deserialize_with = "null_default")]
    pub sources: Vec<ConnectorSource>,
    /// Hidden from users.
    #[serde(default)]
    pub hidden: Option<bool>,
    /// In beta.
    #[serde(default)]
    pub beta: Option<bool>,
}

impl Connector {
    /// The sources to add, in Powens' order: not disabled, by increasing priority.
    pub fn sources_in_order(&self) -> Vec<&ConnectorSource> {
        let mut sources: Vec<&ConnectorSource> =
            self.sources.iter().filter(|s| !s.disabled).collect();
        sources.sort_by_key(|s| s.priority.unwrap_or(i64::MAX));
        sources
    }

    /// Whether the PSU connects at the bank's site rather than through posted credentials.
    pub fn is_webauth(&self) -> bool {
        self.auth_mechanism.as_deref() == Some("webauth")
    }
}

open_list! {
    /// A connection's `state`: `null` (here [`ConnectionState::Valid`]) when it can be used,
    /// otherwise what it waits for or why it failed.
    ConnectionState {
        /// Usable (`null`).
        Valid = "",
        /// A strong authentication is needed: `POST {}` triggers it.
        ScaRequired = "SCARequired",
        /// The PSU must go to the bank's site.
        WebauthRequired = "webauthRequired",
        /// More values are needed (a one-time code): see the connection's `fields`.
        AdditionalInformationNeeded = "additionalInformationNeeded",
        /// The PSU must approve in the bank's app; `POST {"resume": true}` waits for it.
        Decoupled = "decoupled",
        /// The approval is being checked.
        Validating = "validating",
        /// The PSU must act on the bank's site (new terms, a message).
        ActionNeeded = "actionNeeded",
        /// The password expired at the bank.
        PasswordExpired = "passwordExpired",
        /// The bank refused the credentials.
        Wrongpass = "wrongpass",
        /// The bank limits calls: Powens retries later.
        RateLimiting = "rateLimiting",
        /// The bank's site is unavailable: Powens retries later.
        WebsiteUnavailable = "websiteUnavailable",
        /// An error at Powens: it retries later.
        Bug = "bug",
        /// The connector does not support this account.
        NotSupported = "notSupported",
    }
}

/// What the PSU or the TPP must do about a connection's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remedy {
    /// Nothing: it works.
    None,
    /// The PSU must act through stet (`stet connect --connection ID`): give a code, approve
    /// in the app, authenticate strongly, or go to the bank's site.
    Psu,
    /// The PSU must act at the bank (new password, new terms), then reconnect.
    AtTheBank,
    /// Wait: Powens retries by itself.
    Wait,
    /// Nothing stet can do: the connector does not support it.
    Unsupported,
}

impl ConnectionState {
    /// What to do about it.
    pub fn remedy(&self) -> Remedy {
        use ConnectionState as S;
        match self {
            S::Valid => Remedy::None,
            S::ScaRequired
            | S::WebauthRequired
            | S::AdditionalInformationNeeded
            | S::Decoupled
            | S::Validating => Remedy::Psu,
            S::ActionNeeded | S::PasswordExpired | S::Wrongpass => Remedy::AtTheBank,
            S::RateLimiting | S::WebsiteUnavailable | S::Bug => Remedy::Wait,
            S::NotSupported | S::Other(_) => Remedy::Unsupported,
        }
    }

    /// `null`, or the state's name, for a table.
    pub fn label(&self) -> &str {
        match self {
            ConnectionState::Valid => "ok",
            other => other.as_str(),
        }
    }
}

fn state<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<ConnectionState>, D::Error> {
    let value = Option::<String>::deserialize(deserializer)?;
    Ok(Some(match value {
        None => ConnectionState::Valid,
        Some(s) => ConnectionState::from(s.as_str()),
    }))
}

/// A connection: the PSU's link to one bank through one connector.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Connection {
    /// Its id.
    pub id: PowensId,
    /// The user it belongs to.
    #[serde(default)]
    pub id_user: Option<PowensId>,
    /// The connector's id.
    #[serde(default)]
    pub id_connector: Option<PowensId>,
    /// The connector's uuid.
    #[serde(default)]
    pub connector_uuid: Option<String>,
    #[serde(default, deserialize_with = "state")]
    state: Option<ConnectionState>,
    /// The deprecated name of `state`.
    #[serde(default, deserialize_with = "state")]
    error: Option<ConnectionState>,
    /// Powens' message about the state.
    #[serde(default)]
    pub error_message: Option<String>,
    /// The values needed, with `additionalInformationNeeded` (and `wrongpass`).
    #[serde(default, deserialize_with = "null_default")]
    pub fields: Vec<ConnectorField>,
    /// The last successful synchronization.
    #[serde(default, deserialize_with = "lenient_datetime")]
    pub last_update: Option<ParisDateTime>,
    /// When it was made.
    #[serde(default, deserialize_with = "lenient_datetime")]
    pub created: Option<ParisDateTime>,
    /// When the PSD2 consent behind it expires.
    #[serde(default, deserialize_with = "lenient_datetime")]
    pub expire: Option<ParisDateTime>,
    /// Whether Powens synchronizes it.
    #[serde(default)]
    pub active: Option<bool>,
    /// The connector (with `expand=connector`).
    #[serde(default)]
    pub connector: Option<Connector>,
}

impl Connection {
    /// Its state (`state`, or the deprecated `error` when `state` is absent).
    pub fn state(&self) -> ConnectionState {
        match (&self.state, &self.error) {
            (Some(s), _) => s.clone(),
            (None, Some(e)) => e.clone(),
            (None, None) => ConnectionState::Valid,
        }
    }
}

/// A currency as Powens describes it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Currency {
    /// ISO 4217 code.
    pub id: String,
    /// Decimals.
    #[serde(default)]
    pub precision: Option<u32>,
}

/// An account type, as a string (`checking`) or as an object with a `name` or `code`.
fn account_type<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(match value {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Object(o)) => o
            .get("name")
            .or_else(|| o.get("code"))
            .and_then(|v| v.as_str())
            .map(str::to_owned),
        _ => None,
    })
}

/// A currency as an object, or its code alone.
fn currency<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Currency>, D::Error> {
    let value = Option::<serde_json::Value>::deserialize(deserializer)?;
    Ok(match value {
        Some(serde_json::Value::String(id)) => Some(Currency {
            id,
            precision: None,
        }),
        Some(v @ serde_json::Value::Object(_)) => serde_json::from_value(v).ok(),
        _ => None,
    })
}

/// A bank account (or card, savings, loan…) found through a connection.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BankAccount {
    /// Its id.
    pub id: PowensId,
    /// The connection it came through.
    #[serde(default)]
    pub id_connection: Option<PowensId>,
    /// The account a card or loan belongs to.
    #[serde(default)]
    pub id_parent: Option<PowensId>,
    /// The account number, often masked.
    #[serde(default)]
    pub number: Option<String>,
    /// The name the bank gives it.
    #[serde(default)]
    pub original_name: Option<String>,
    /// Its name (the user may change it).
    #[serde(default)]
    pub name: Option<String>,
    /// The balance.
    #[serde(default)]
    pub balance: Option<Amount>,
    /// The sum of operations not yet booked.
    #[serde(default)]
    pub coming: Option<Amount>,
    /// The balance once those are booked.
    #[serde(default)]
    pub coming_balance: Option<Amount>,
    /// When Powens last read it.
    #[serde(default, deserialize_with = "lenient_datetime")]
    pub last_update: Option<ParisDateTime>,
    /// Set when it was deleted at the bank.
    #[serde(default, deserialize_with = "set_since")]
    pub deleted: bool,
    /// Set while the PSU has not enabled it: new accounts are disabled, and enabling one is
    /// the PSU's consent.
    #[serde(default, deserialize_with = "set_since")]
    pub disabled: bool,
    /// IBAN.
    #[serde(default)]
    pub iban: Option<String>,
    /// BIC.
    #[serde(default)]
    pub bic: Option<String>,
    /// Currency.
    #[serde(default, deserialize_with = "currency")]
    pub currency: Option<Currency>,
    /// `checking`, `savings`, `card`, `loan`, … (open list).
    #[serde(rename = "type", default, deserialize_with = "account_type")]
    pub kind: Option<String>,
    /// `PRIV`, `ORGA` or `ASSO`.
    #[serde(default, deserialize_with = "stringish")]
    pub usage: Option<String>,
}

impl BankAccount {
    /// The name to show: the user's, else the bank's, else the number.
    pub fn display_name(&self) -> String {
        self.name
            .clone()
            .or_else(|| self.original_name.clone())
            .or_else(|| self.number.clone())
            .unwrap_or_else(|| format!("account {}", self.id))
    }

    /// The currency code (EUR when Powens gives none).
    pub fn currency_code(&self) -> &str {
        self.currency.as_ref().map_or("EUR", |c| c.id.as_str())
    }
}

/// The other party of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Counterparty {
    /// Its name.
    #[serde(default)]
    pub label: Option<String>,
    /// The scheme of its account identifier (`iban`, …).
    #[serde(default)]
    pub account_scheme_name: Option<String>,
    /// Its account identifier.
    #[serde(default)]
    pub account_identification: Option<String>,
    /// `creditor` (it was paid) or `debtor` (it paid).
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
}

/// A transaction on a bank account.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Transaction {
    /// Its id.
    pub id: PowensId,
    /// The account.
    #[serde(default)]
    pub id_account: Option<PowensId>,
    /// The bank's own id, when it has one.
    #[serde(default, deserialize_with = "stringish")]
    pub webid: Option<String>,
    /// When it was (or will be) booked.
    #[serde(default, deserialize_with = "lenient_date")]
    pub date: Option<StetDate>,
    /// When the PSU made it (the card payment, the order).
    #[serde(default, deserialize_with = "lenient_date")]
    pub rdate: Option<StetDate>,
    /// The value date.
    #[serde(default, deserialize_with = "lenient_date")]
    pub vdate: Option<StetDate>,
    /// The amount, signed: negative is money out.
    #[serde(default)]
    pub value: Option<Amount>,
    /// The amount in the original currency, when it differs.
    #[serde(default)]
    pub original_value: Option<Amount>,
    /// The original currency.
    #[serde(default, deserialize_with = "currency")]
    pub original_currency: Option<Currency>,
    /// `transfer`, `card`, `check`, … (open list).
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    /// The bank's label.
    #[serde(default)]
    pub original_wording: Option<String>,
    /// A cleaned label.
    #[serde(default)]
    pub simplified_wording: Option<String>,
    /// The label (the user may change it).
    #[serde(default)]
    pub wording: Option<String>,
    /// Not booked yet.
    #[serde(default)]
    pub coming: Option<bool>,
    /// Set when it was deleted at the bank: delete it too.
    #[serde(default, deserialize_with = "set_since")]
    pub deleted: bool,
    /// The other party.
    #[serde(default)]
    pub counterparty: Option<Counterparty>,
    /// The card, masked.
    #[serde(default)]
    pub card: Option<String>,
    /// When Powens last changed it.
    #[serde(default, deserialize_with = "lenient_datetime")]
    pub last_update: Option<ParisDateTime>,
    /// When Powens read it.
    #[serde(default, deserialize_with = "lenient_datetime")]
    pub date_scraped: Option<ParisDateTime>,
}

/// `{"href": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Href {
    /// The link.
    pub href: String,
}

/// `_links` of a page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct Links {
    /// The next page, when there is one.
    #[serde(default)]
    pub next: Option<Href>,
}

/// A page of transactions.
#[derive(Debug, Clone, Deserialize)]
pub struct TransactionPage {
    /// The transactions, each with its JSON as received.
    #[serde(default, deserialize_with = "null_default")]
    pub transactions: Vec<Raw<Transaction>>,
    /// How many there are in all, when said.
    #[serde(default)]
    pub total: Option<i64>,
    /// Pagination.
    #[serde(rename = "_links", default, deserialize_with = "null_default")]
    pub links: Links,
}

/// The list of accounts.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct AccountList {
    #[serde(default, deserialize_with = "null_default")]
    pub(crate) accounts: Vec<Raw<BankAccount>>,
}

/// The list of connectors (also under the old key `banks`).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ConnectorList {
    #[serde(default, deserialize_with = "null_default", alias = "banks")]
    pub(crate) connectors: Vec<Raw<Connector>>,
}

/// The list of connections.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ConnectionList {
    #[serde(default, deserialize_with = "null_default")]
    pub(crate) connections: Vec<Raw<Connection>>,
}

/// Powens' error body: `{"code", "description", "message"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ErrorBody {
    /// The code to act on (`wrongpass`, `noAccount`, …).
    #[serde(default)]
    pub code: Option<String>,
    /// The description.
    #[serde(default)]
    pub description: Option<String>,
    /// A message for people.
    #[serde(default)]
    pub message: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_come_by_priority_without_the_disabled_ones() {
        let c: Connector = serde_json::from_str(
            r#"{"id": 1, "uuid": "u", "name": "Bank", "sources": [
                {"name": "third", "priority": 3},
                {"name": "off", "priority": 1, "disabled": "2026-01-01 00:00:00"},
                {"name": "unranked"},
                {"name": "second", "priority": 2, "disabled": null},
                {"name": "also-off", "priority": 0, "disabled": true},
                {"name": "first", "priority": -1}
            ]}"#,
        )
        .unwrap();
        let names: Vec<&str> = c
            .sources_in_order()
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        // A source without a priority comes after every ranked one.
        assert_eq!(names, ["first", "second", "third", "unranked"]);
        let none: Connector =
            serde_json::from_str(r#"{"id": 2, "uuid": "v", "name": "B"}"#).unwrap();
        assert!(none.sources_in_order().is_empty());
    }

    #[test]
    fn lenient_connection_and_unknown_states() {
        let c: Connection = serde_json::from_str(
            r#"{"id": 7, "state": null, "error": "wrongpass", "fields": null,
                "last_update": "2026-03-01 10:00:00", "brand_new": {"x": 1}}"#,
        )
        .unwrap();
        assert_eq!(c.state(), ConnectionState::Valid);
        assert_eq!(
            c.last_update.unwrap().to_string(),
            "2026-03-01T10:00:00+01:00"
        );
        let c: Connection =
            serde_json::from_str(r#"{"id": 8, "error": "decoupled", "created": ""}"#).unwrap();
        assert_eq!(c.state(), ConnectionState::Decoupled);
        assert_eq!(c.created, None);
        let c: Connection = serde_json::from_str(r#"{"id": 9, "state": "quantumLocked"}"#).unwrap();
        assert_eq!(c.state(), ConnectionState::Other("quantumLocked".into()));
        assert_eq!(c.state().remedy(), Remedy::Unsupported);
    }

    #[test]
    fn accounts_read_every_shape_of_type_currency_and_flags() {
        let a: BankAccount = serde_json::from_str(
            r#"{"id": 1, "balance": 1234.10, "coming": -0.3, "disabled": "2026-01-01 00:00:00",
                "type": {"name": "checking", "id": 2}, "currency": "USD", "usage": "PRIV",
                "deleted": null}"#,
        )
        .unwrap();
        assert_eq!(a.balance.unwrap().to_string(), "1234.10");
        assert_eq!(a.coming.unwrap().to_string(), "-0.3");
        assert!(a.disabled && !a.deleted);
        assert_eq!(a.kind.as_deref(), Some("checking"));
        assert_eq!(a.currency_code(), "USD");
        let a: BankAccount =
            serde_json::from_str(r#"{"id": 2, "disabled": null, "type": "crypto"}"#).unwrap();
        assert!(!a.disabled);
        assert_eq!(a.currency_code(), "EUR");
    }

    #[test]
    fn fields_check_lists_and_patterns() {
        let list: ConnectorField = serde_json::from_str(
            r#"{"name": "website", "type": "list", "values": [{"label": "Particuliers", "value": "par"}]}"#,
        )
        .unwrap();
        assert_eq!(list.check("par").unwrap(), "par");
        assert_eq!(list.check("particuliers").unwrap(), "par");
        assert!(matches!(
            list.check("nope"),
            Err(FieldError::NotInList { .. })
        ));
        let code: ConnectorField = serde_json::from_str(
            r#"{"name": "password", "type": "password", "regex": "^[0-9]{4}$"}"#,
        )
        .unwrap();
        assert!(code.check("1234").is_ok());
        let err = code.check("12a4").unwrap_err().to_string();
        assert!(err.contains("^[0-9]{4}$") && !err.contains("12a4"), "{err}");
        let odd: ConnectorField =
            serde_json::from_str(r#"{"name": "x", "type": "biometric"}"#).unwrap();
        assert_eq!(odd.kind, FieldType::Other("biometric".into()));
    }
}
