//! Bank dialect profiles: what one bank does differently from the STET standard, as data.
//!
//! STET is a family of dialects. Banks run 1.4.x, 1.5 or 1.6; each signs its own header list
//! with its own keyId form, caps the history one request may ask for, pages or does not, and
//! wants date-times with or without milliseconds. A [`BankProfile`] holds those choices, and
//! the rest of the client reads them instead of branching on a bank's name.
//!
//! # Profiles are TOML files
//!
//! The built-in profiles are the TOML files in `crates/client/banks/`, compiled in. Two
//! *generic* profiles, `generic-1.4` and `generic-1.5`, state the standard and set every field.
//! A bank's file names its base with `extends` and writes only what differs; resolution
//! merges the chain field by field (the `[signature]` and `[scopes]` tables key by key). Each
//! value in a built-in file carries a `# source: …` comment saying where the fact comes from,
//! and [`BankProfiles::explain`] gives those sources back.
//!
//! ```toml
//! name = "my-bank"
//! display_name = "My Bank"
//! aliases = ["mine"]
//! extends = "generic-1.4"
//! verified_against_live_sandbox = false
//!
//! # source: the bank's developer portal
//! base_path = "/stet/psd2/v1.4.2"
//! # source: the bank rejects `.123Z`
//! datetime_format = "rfc3339-seconds"
//!
//! [signature]
//! # source: the bank's signature guide
//! headers = ["(request-target)", "date", "digest", "x-request-id"]
//! key_id = "registration-id"
//!
//! [payment]
//! # source: the bank's OpenAPI file, `required` of its credit transfer
//! requested_execution_date = "each-transfer"
//! ```
//!
//! Besides the dialect, a profile says what goes on the wire for the bank:
//!
//! - `[signature]`: the signed header list (`headers`), a list of its own for requests
//!   without a body when the bank signs GETs differently (`headers_without_body`), or a
//!   Content-Type sent on them too so a list naming `content-type` can sign it
//!   (`content_type_without_body`), the keyId form, Digest on GETs, `PSU-*` headers;
//! - `[payment]` ([`PaymentRules`]): where the payee and the execution date go
//!   (`each-transfer`, as STET 1.5.0.43 requires, or `payment-level`), how a standing order is
//!   written (`characteristics` or 1.4's `flat`), whether the report URLs are required, whether
//!   cancellation exists, whether the confirmation has a body;
//! - `[funds_confirmation]` ([`FundsConfirmationRules`]): whether `payee` is required and
//!   the headers the bank wants on it.
//!
//! A profile that would sign a header its requests cannot carry (`content-type` or
//! `content-length` on a GET) is refused when it is resolved, saying which way out to take.
//!
//! Users add or change profiles with [`BankProfiles::add_toml`] or [`BankProfiles::add_dir`]:
//! a file with a new name adds a profile, a file with a built-in's name replaces it, and a file
//! that *extends its own name* (`name = "bpce"`, `extends = "bpce"`) patches the built-in
//! field by field. Unknown keys are errors that name the key, so a typo never goes unnoticed.
//!
//! # Using a profile
//!
//! ```
//! use stet_client::bank::BankProfiles;
//!
//! let banks = BankProfiles::builtin();
//! let bnp = banks.get("hellobank")?; // names and aliases, any case
//! assert_eq!(bnp.name, "bnp-paribas");
//! let signing = bnp.signing_profile("https://tpp.example/qseal.pem");
//! assert_eq!(signing.headers[0], "(request-target)");
//! assert!(!bnp.paginates);
//! # Ok::<(), stet_client::bank::BankError>(())
//! ```
//!
//! None of the bank profiles has been checked against the bank's live sandbox
//! ([`BankProfile::verified_against_live_sandbox`] is `false` for each): they are built from
//! open-source TPP code, bank portals and the banks' own spec files, as cited in each file, and
//! each profile's `notes` say which. Where a bank publishes its spec (Crédit Agricole), the
//! tests drive every command with its profile against that spec, served by an OpenAPI mock.

mod registry;
mod sources;

use std::fmt;

use serde::{Deserialize, Serialize};
use stet_httpsig::SigningProfile;

pub use registry::{BankError, BankProfiles, FieldInfo, ProfileDiff};

/// The STET release family a bank speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Dialect {
    /// STET 1.4.x: amounts as strings, dates as dates, `afterEntryReference`, `piisp`.
    #[serde(rename = "1.4")]
    V1_4,
    /// STET 1.5.x: amounts as numbers, date-times, `entryReferenceFrom`, `cbpii`.
    #[serde(rename = "1.5")]
    V1_5,
    /// STET 1.6.x: 1.5 plus transaction details, the `ACCO` status and new consent handling.
    #[serde(rename = "1.6")]
    V1_6,
}

impl Dialect {
    /// The version as written in a profile: `1.4`, `1.5` or `1.6`.
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::V1_4 => "1.4",
            Dialect::V1_5 => "1.5",
            Dialect::V1_6 => "1.6",
        }
    }

    /// The query parameter that resumes a transaction list after a known entry:
    /// `afterEntryReference` in 1.4, `entryReferenceFrom` from 1.5 on.
    pub fn transactions_cursor_param(self) -> &'static str {
        match self {
            Dialect::V1_4 => "afterEntryReference",
            Dialect::V1_5 | Dialect::V1_6 => "entryReferenceFrom",
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a bank expects in the `keyId` of the Signature header. The client is given the keyId
/// itself; this says which form it must take, so a wrong one is easy to spot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyIdForm {
    /// A public HTTPS URL serving the QSealC certificate (what STET asks for).
    CertificateUrl,
    /// An identifier the bank issued at registration (BPCE: the client_id; Crédit Mutuel/CIC:
    /// the `kid` of the registered JWKS).
    RegistrationId,
    /// `SN=<serial in hex>,CA=<issuer DN>` of the QSealC.
    IssuerSerial,
    /// The QSealC serial number alone, lowercase hex.
    SerialHex,
    /// The QSealC certificate itself, DER in base64.
    CertificateBase64,
}

impl KeyIdForm {
    /// The form as written in a profile, e.g. `certificate-url`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyIdForm::CertificateUrl => "certificate-url",
            KeyIdForm::RegistrationId => "registration-id",
            KeyIdForm::IssuerSerial => "issuer-serial",
            KeyIdForm::SerialHex => "serial-hex",
            KeyIdForm::CertificateBase64 => "certificate-base64",
        }
    }
}

/// How date-times in request bodies and query strings are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DateTimeFormat {
    /// RFC 3339 with milliseconds: `2024-03-01T12:30:05.123Z`.
    Rfc3339Millis,
    /// RFC 3339 to the second: `2024-03-01T12:30:05Z` (BNP Paribas rejects milliseconds).
    Rfc3339Seconds,
}

impl DateTimeFormat {
    /// The format as written in a profile, e.g. `rfc3339-seconds`.
    pub fn as_str(self) -> &'static str {
        match self {
            DateTimeFormat::Rfc3339Millis => "rfc3339-millis",
            DateTimeFormat::Rfc3339Seconds => "rfc3339-seconds",
        }
    }

    /// Writes `at` in this format, with `Z` for UTC and `±hh:mm` for any other offset.
    pub fn format(self, at: time::OffsetDateTime) -> String {
        use std::fmt::Write as _;
        let mut out = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            at.year(),
            u8::from(at.month()),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        );
        if self == DateTimeFormat::Rfc3339Millis {
            let _ = write!(out, ".{:03}", at.millisecond());
        }
        let offset = at.offset();
        if offset.is_utc() {
            out.push('Z');
        } else {
            let (h, m, _) = offset.as_hms();
            let sign = if offset.is_negative() { '-' } else { '+' };
            let _ = write!(out, "{sign}{:02}:{:02}", h.unsigned_abs(), m.unsigned_abs());
        }
        out
    }
}

/// Where a payment request is confirmed after the PSU has approved it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConfirmationPath {
    /// `POST /payment-requests/{id}/confirmation` (STET 1.5 and later).
    #[serde(rename = "/confirmation")]
    Confirmation,
    /// `POST /payment-requests/{id}/o-confirmation` (OAuth redirect flows before 1.5).
    #[serde(rename = "/o-confirmation")]
    OConfirmation,
    /// None: the bank executes the payment once the PSU approves it; the client only polls.
    #[serde(rename = "none")]
    None,
}

impl ConfirmationPath {
    /// The value as written in a profile: `/confirmation`, `/o-confirmation` or `none`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConfirmationPath::Confirmation => "/confirmation",
            ConfirmationPath::OConfirmation => "/o-confirmation",
            ConfirmationPath::None => "none",
        }
    }

    /// The path segment to append to `/payment-requests/{id}`, or `None` when the bank has no
    /// confirmation step.
    pub fn segment(self) -> Option<&'static str> {
        match self {
            ConfirmationPath::Confirmation => Some("/confirmation"),
            ConfirmationPath::OConfirmation => Some("/o-confirmation"),
            ConfirmationPath::None => None,
        }
    }
}

/// How a bank grants transactions older than
/// [`history_without_extended_scope_days`](BankProfile::history_without_extended_scope_days).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ExtendedHistory {
    /// With the `extended_transaction_history` scope, as the standard says.
    WithScope,
    /// Only with the first access token after the PSU's authorization (Boursorama, SG): fetch
    /// the deep history right after the code exchange.
    FirstTokenOnly,
    /// Not at all (Fortuneo).
    Unsupported,
}

impl ExtendedHistory {
    /// The value as written in a profile, e.g. `first-token-only`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExtendedHistory::WithScope => "with-scope",
            ExtendedHistory::FirstTokenOnly => "first-token-only",
            ExtendedHistory::Unsupported => "unsupported",
        }
    }
}

/// The signing side of a dialect: the `[signature]` table of a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureRules {
    /// Headers to sign, in order, lowercase. `(request-target)` is the pseudo-header; `digest`
    /// is dropped from requests that carry no Digest. Every other header listed must be sent
    /// on every request, GETs included (a listed header that is missing is an error).
    pub headers: Vec<String>,
    /// Headers to sign on requests without a body (GET, DELETE), when the bank's list for
    /// them differs from [`headers`](Self::headers); `None` signs `headers` on every request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headers_without_body: Option<Vec<String>>,
    /// The form the bank wants the `keyId` in.
    pub key_id: KeyIdForm,
    /// Send and sign a Digest of the empty body on requests without a body (GET, DELETE).
    pub digest_on_get: bool,
    /// Also sign every `PSU-*` header the request carries, after the listed ones.
    pub sign_psu_headers: bool,
    /// Send `Content-Type: application/json` on requests without a body too, for a bank whose
    /// list for them names `content-type` (a GET carries none otherwise, and a listed header
    /// that is missing cannot be signed).
    #[serde(default)]
    pub content_type_without_body: bool,
}

/// Where a part of a payment request goes: on each transfer, or once on the payment request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placement {
    /// On every `creditTransferTransaction` (STET 1.5.0.43 requires `beneficiary` and
    /// `requestedExecutionDate` there).
    EachTransfer,
    /// Once on the payment request when every transfer shares it (one payee, one date), on
    /// each transfer otherwise (STET 1.4 allows either).
    PaymentLevel,
}

impl Placement {
    /// The value as written in a profile: `each-transfer` or `payment-level`.
    pub fn as_str(self) -> &'static str {
        match self {
            Placement::EachTransfer => "each-transfer",
            Placement::PaymentLevel => "payment-level",
        }
    }
}

/// How a standing order's schedule is written on its transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StandingOrderForm {
    /// A `standingOrderCharacteristics` object (`startDate`, `endDate`, `executionRule`,
    /// `frequency`), as STET 1.5 writes it.
    Characteristics,
    /// `frequency`, `executionRule` and `endDate` directly on the transfer, the first
    /// execution being its `requestedExecutionDate`, as STET 1.4 writes it.
    Flat,
}

impl StandingOrderForm {
    /// The value as written in a profile: `characteristics` or `flat`.
    pub fn as_str(self) -> &'static str {
        match self {
            StandingOrderForm::Characteristics => "characteristics",
            StandingOrderForm::Flat => "flat",
        }
    }
}

/// How payment requests are written for the bank, and what it offers on them: the
/// `[payment]` table of a profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentRules {
    /// Where the payee (`beneficiary`) goes.
    pub beneficiary: Placement,
    /// Where `requestedExecutionDate` goes (a standing order always has it on its transfer).
    pub requested_execution_date: Placement,
    /// How a standing order's schedule is written.
    pub standing_order: StandingOrderForm,
    /// The bank refuses a payment request without `supplementaryData.successfulReportUrl`
    /// (where it sends the PSU back after approving).
    pub report_urls_required: bool,
    /// The bank offers cancellation (`PUT /payment-requests/{id}`).
    pub cancellation: bool,
    /// The confirmation carries a JSON body, `{}` at least (STET 1.5: "a Json (void) body
    /// structure must be provided"); `false`: no body, for a bank whose spec declares none.
    pub confirmation_body: bool,
}

impl Default for PaymentRules {
    /// STET 1.5.0.43 as the official schema writes it.
    fn default() -> Self {
        PaymentRules {
            beneficiary: Placement::EachTransfer,
            requested_execution_date: Placement::EachTransfer,
            standing_order: StandingOrderForm::Characteristics,
            report_urls_required: false,
            cancellation: true,
            confirmation_body: true,
        }
    }
}

/// What a funds confirmation (`POST /funds-confirmations`) needs at the bank: the
/// `[funds_confirmation]` table of a profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FundsConfirmationRules {
    /// The bank refuses a request without `payee` (the merchant the check is for).
    pub payee_required: bool,
    /// Headers sent with every funds confirmation, by name.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
}

/// OAuth2 scope names, which changed between releases (`piisp` became `cbpii` in 1.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scopes {
    /// Account information (AISP).
    pub aisp: String,
    /// Payment initiation (PISP).
    pub pisp: String,
    /// Funds confirmation (CBPII; `piisp` in 1.4).
    pub cbpii: String,
    /// The extra scope for transactions older than the unattended window.
    pub extended_history: String,
}

/// How a sync treats the bank's transactions: the `[sync]` table of a profile. Every key is
/// optional; the defaults assume nothing of the bank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SyncRules {
    /// The bank keeps a transaction's `entryReference` across syncs and consents: stable ids
    /// are built from it instead of a content fingerprint (default `false`).
    pub entry_reference_stable: bool,
    /// A later sync asks again for this many days before the newest booked transaction, to
    /// catch late bookings (default 7).
    pub overlap_days: u32,
    /// A booked transaction may claim a pending one dated up to this many days before it; a
    /// pending one not listed again after as many days is marked expired (default 10).
    pub pending_claim_days: u32,
}

impl Default for SyncRules {
    fn default() -> Self {
        SyncRules {
            entry_reference_stable: false,
            overlap_days: 7,
            pending_claim_days: 10,
        }
    }
}

/// One bank's dialect, resolved: every field set, inheritance applied.
///
/// Get one from [`BankProfiles::get`]. The same names are the keys of a profile's TOML file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BankProfile {
    /// The profile's name, lowercase (`bnp-paribas`).
    pub name: String,
    /// The bank or group, for people (`BNP Paribas, Hello bank`).
    pub display_name: String,
    /// Other names the profile is found by (`hellobank`). Not inherited.
    #[serde(default)]
    pub aliases: Vec<String>,
    /// The profile this one was written against, if any. Not inherited.
    #[serde(default)]
    pub extends: Option<String>,
    /// The generic profile at the root of the `extends` chain; `None` for a root.
    #[serde(default)]
    pub generic_base: Option<String>,
    /// Whether the profile has been checked against the bank's live sandbox. `false` for every
    /// built-in profile.
    pub verified_against_live_sandbox: bool,
    /// The STET release family.
    pub dialect: Dialect,
    /// The path prefix of the API, before `/accounts` etc. (`/stet/psd2/v1.4.2`). Empty or
    /// starting with `/`, without a trailing `/`.
    pub base_path: String,
    /// The `Accept` header value.
    pub accept: String,
    /// The scheme written before the access token in `Authorization`, as is, whatever case
    /// the token response's `token_type` uses.
    pub authorization_scheme: String,
    /// The bank refuses AISP calls without `PSU-IP-Address` when the PSU is present.
    pub psu_ip_required: bool,
    /// The status the bank answers a call made without the PSU once the day's unattended
    /// calls are spent: 429, or 403 at banks that answer so. An unattended call refused with
    /// it is the bank's budget ([`ClientError::BudgetSpent`](crate::ClientError::BudgetSpent),
    /// back-pressure), not a refused consent.
    pub unattended_limit_status: u16,
    /// The longest date range one transactions request may ask for; longer ranges are split
    /// into windows ([`history_windows`](Self::history_windows)) and the results merged.
    /// `None`: no cap.
    #[serde(default)]
    pub max_history_days_per_request: Option<u32>,
    /// How many days back transactions come without the extended-history scope.
    pub history_without_extended_scope_days: u32,
    /// How older transactions can be had.
    pub extended_history: ExtendedHistory,
    /// How date-times are written in requests.
    pub datetime_format: DateTimeFormat,
    /// Lists come in pages linked by `_links.next`. When `false`, one response holds all.
    pub paginates: bool,
    /// Where a payment request is confirmed.
    pub confirmation_path: ConfirmationPath,
    /// The bank implements `PUT /consents` (STET's "A2 mixed" model). When `false`, the
    /// consent is given at the bank during the redirect ("A1 full-AISP").
    pub put_consents: bool,
    /// Prose: what else is known about the bank and does not fit a field.
    pub notes: String,
    /// How requests are signed.
    pub signature: SignatureRules,
    /// OAuth2 scope names.
    pub scopes: Scopes,
    /// How `stet sync` treats the bank's transactions.
    #[serde(default)]
    pub sync: SyncRules,
    /// How payment requests are written, and whether they can be cancelled.
    #[serde(default)]
    pub payment: PaymentRules,
    /// What a funds confirmation needs.
    #[serde(default)]
    pub funds_confirmation: FundsConfirmationRules,
    /// How the bank takes dynamic client registration (`stet register`).
    pub registration: crate::registration::RegistrationRules,
}

impl BankProfile {
    /// The signing profile for this bank with the given `keyId` (which must take the form
    /// [`signature.key_id`](SignatureRules::key_id) names), ready for `stet_httpsig`.
    pub fn signing_profile(&self, key_id: impl Into<String>) -> SigningProfile {
        let mut profile = SigningProfile::new(key_id).with_headers(&self.signature.headers);
        profile.sign_psu_headers = self.signature.sign_psu_headers;
        profile.digest_on_empty_body = self.signature.digest_on_get;
        profile
    }

    /// The signing profile for requests without a body (GET, DELETE):
    /// [`signature.headers_without_body`](SignatureRules::headers_without_body) when the bank
    /// gives one, else the same as [`signing_profile`](Self::signing_profile).
    pub fn signing_profile_without_body(&self, key_id: impl Into<String>) -> SigningProfile {
        let profile = self.signing_profile(key_id);
        match &self.signature.headers_without_body {
            Some(headers) => profile.with_headers(headers),
            None => profile,
        }
    }

    /// The headers signed on requests without a body, in order (before `digest` is dropped
    /// when no Digest is sent).
    pub fn headers_without_body(&self) -> &[String] {
        self.signature
            .headers_without_body
            .as_deref()
            .unwrap_or(&self.signature.headers)
    }

    /// Splits the date range `[from, to)` (STET's `dateFrom` inclusive, `dateTo` exclusive)
    /// into consecutive windows no longer than
    /// [`max_history_days_per_request`](Self::max_history_days_per_request), oldest first.
    /// An empty range gives no window.
    pub fn history_windows(
        &self,
        from: time::Date,
        to: time::Date,
    ) -> Vec<(time::Date, time::Date)> {
        if from >= to {
            return Vec::new();
        }
        let Some(max) = self.max_history_days_per_request.filter(|&d| d > 0) else {
            return vec![(from, to)];
        };
        let step = time::Duration::days(i64::from(max));
        let mut windows = Vec::new();
        let mut start = from;
        while start < to {
            let end = start.checked_add(step).map_or(to, |e| e.min(to));
            windows.push((start, end));
            start = end;
        }
        windows
    }

    /// Writes a date-time the way this bank wants it.
    pub fn format_datetime(&self, at: time::OffsetDateTime) -> String {
        self.datetime_format.format(at)
    }

    /// The compared fields of the profile, in file order, with dotted names for the
    /// `[signature]` and `[scopes]` keys. Identity fields (name, aliases, extends) and the
    /// notes are left out: they are not dialect.
    pub fn fields(&self) -> Vec<(&'static str, FieldValue)> {
        use FieldValue::{Flag, List, Number, Text, Unset};
        let text = |s: &str| Text(s.to_owned());
        vec![
            ("dialect", text(self.dialect.as_str())),
            ("base_path", text(&self.base_path)),
            ("accept", text(&self.accept)),
            ("authorization_scheme", text(&self.authorization_scheme)),
            ("psu_ip_required", Flag(self.psu_ip_required)),
            (
                "unattended_limit_status",
                Number(u32::from(self.unattended_limit_status)),
            ),
            (
                "max_history_days_per_request",
                self.max_history_days_per_request.map_or(Unset, Number),
            ),
            (
                "history_without_extended_scope_days",
                Number(self.history_without_extended_scope_days),
            ),
            ("extended_history", text(self.extended_history.as_str())),
            ("datetime_format", text(self.datetime_format.as_str())),
            ("paginates", Flag(self.paginates)),
            ("confirmation_path", text(self.confirmation_path.as_str())),
            ("put_consents", Flag(self.put_consents)),
            ("signature.headers", List(self.signature.headers.clone())),
            (
                "signature.headers_without_body",
                self.signature
                    .headers_without_body
                    .clone()
                    .map_or(Unset, List),
            ),
            ("signature.key_id", text(self.signature.key_id.as_str())),
            (
                "signature.digest_on_get",
                Flag(self.signature.digest_on_get),
            ),
            (
                "signature.sign_psu_headers",
                Flag(self.signature.sign_psu_headers),
            ),
            (
                "signature.content_type_without_body",
                Flag(self.signature.content_type_without_body),
            ),
            ("scopes.aisp", text(&self.scopes.aisp)),
            ("scopes.pisp", text(&self.scopes.pisp)),
            ("scopes.cbpii", text(&self.scopes.cbpii)),
            (
                "scopes.extended_history",
                text(&self.scopes.extended_history),
            ),
            ("registration.path", text(&self.registration.path)),
            (
                "registration.auth",
                text(&enum_text(&self.registration.auth)),
            ),
            (
                "registration.jwks",
                text(&enum_text(&self.registration.jwks)),
            ),
            ("registration.x5c", text(&enum_text(&self.registration.x5c))),
            ("registration.kid", text(&enum_text(&self.registration.kid))),
            (
                "registration.grant_types",
                List(self.registration.grant_types.clone()),
            ),
            (
                "registration.uppercase_grants",
                Flag(self.registration.uppercase_grants),
            ),
            (
                "registration.scope_separator",
                text(&self.registration.scope_separator),
            ),
            ("registration.omit", List(self.registration.omit.clone())),
            (
                "registration.contact",
                text(&enum_text(&self.registration.contact)),
            ),
            (
                "registration.extra",
                List(
                    self.registration
                        .extra
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect(),
                ),
            ),
            (
                "registration.created_status",
                Number(u32::from(self.registration.created_status)),
            ),
            (
                "registration.approval",
                text(&enum_text(&self.registration.approval)),
            ),
            ("registration.delete", Flag(self.registration.delete)),
            (
                "registration.rotation",
                text(&enum_text(&self.registration.rotation)),
            ),
            (
                "sync.entry_reference_stable",
                Flag(self.sync.entry_reference_stable),
            ),
            ("sync.overlap_days", Number(self.sync.overlap_days)),
            (
                "sync.pending_claim_days",
                Number(self.sync.pending_claim_days),
            ),
            (
                "payment.beneficiary",
                text(self.payment.beneficiary.as_str()),
            ),
            (
                "payment.requested_execution_date",
                text(self.payment.requested_execution_date.as_str()),
            ),
            (
                "payment.standing_order",
                text(self.payment.standing_order.as_str()),
            ),
            (
                "payment.report_urls_required",
                Flag(self.payment.report_urls_required),
            ),
            ("payment.cancellation", Flag(self.payment.cancellation)),
            (
                "payment.confirmation_body",
                Flag(self.payment.confirmation_body),
            ),
            (
                "funds_confirmation.payee_required",
                Flag(self.funds_confirmation.payee_required),
            ),
            (
                "funds_confirmation.headers",
                List(
                    self.funds_confirmation
                        .headers
                        .iter()
                        .map(|(name, value)| format!("{name}: {value}"))
                        .collect(),
                ),
            ),
            (
                "verified_against_live_sandbox",
                Flag(self.verified_against_live_sandbox),
            ),
        ]
    }

    /// What this profile changes from `base`, field by field, in [`fields`](Self::fields)
    /// order. Empty when they agree on every field.
    pub fn diff(&self, base: &BankProfile) -> Vec<FieldChange> {
        self.fields()
            .into_iter()
            .zip(base.fields())
            .filter(|((_, mine), (_, theirs))| mine != theirs)
            .map(|((field, mine), (_, theirs))| FieldChange {
                field,
                base: theirs,
                profile: mine,
            })
            .collect()
    }
}

/// A unit enum's name as a profile writes it (`client-credentials`).
fn enum_text<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A field's value, for listing and comparing profiles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum FieldValue {
    /// A string or an enumerated value.
    Text(String),
    /// A boolean.
    Flag(bool),
    /// A count of days.
    Number(u32),
    /// A list, e.g. the signed headers.
    List(Vec<String>),
    /// An optional field left unset (JSON `null`).
    Unset,
}

impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Text(s) => f.write_str(s),
            FieldValue::Flag(b) => write!(f, "{b}"),
            FieldValue::Number(n) => write!(f, "{n}"),
            FieldValue::List(items) => f.write_str(&items.join(" ")),
            FieldValue::Unset => f.write_str("(unset)"),
        }
    }
}

/// One field a profile sets differently from its base.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    /// The field's name, dotted for table keys (`signature.headers`).
    pub field: &'static str,
    /// The base's value.
    pub base: FieldValue,
    /// This profile's value.
    pub profile: FieldValue,
}

#[cfg(test)]
mod tests;
