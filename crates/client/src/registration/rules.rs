//! A bank's registration variant, as data: the `[registration]` table of its profile.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How the registration call is authenticated (the QWAC is always presented on the TLS link).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegistrationAuth {
    /// Signed as every STET call (`Digest`, `Signature` with the profile's keyId): the spec.
    Signed,
    /// HTTP Basic with the developer portal's credentials (`portal_user`,
    /// `portal_password_env` in the profile's `registration` table), not signed.
    Basic,
    /// A client-credentials token first (`token_path`, `token_client_id`, `token_scope`),
    /// then a signed call carrying it.
    ClientCredentials,
    /// Neither signed nor authenticated beyond the QWAC.
    None,
}

/// How `jwks` is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JwksShape {
    /// `{"keys": [ … ]}`: the spec's JsonWebKeySet.
    Object,
    /// `[ … ]`: a bare array of keys.
    Array,
    /// No `jwks` at all.
    None,
}

/// How a key's `x5c` is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum X5cShape {
    /// `["MIIF…"]`: an array, leaf first (RFC 7517).
    Array,
    /// `"MIIF…"`: the leaf alone, as a string.
    String,
}

/// Where the `kid` of the registered key comes from; it is then the Signature keyId when the
/// bank's `signature.key_id` is `registration-id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KidStrategy {
    /// A kid the TPP chooses (a UUID, unless the profile's key_id already is one).
    TppChosen,
    /// The QSealC's serial number in decimal (what a JOSE library derives from the certificate).
    SerialDecimal,
    /// The bank assigns it and sends it back; the request carries `"kid": null`.
    BankAssigned,
}

/// How contacts are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContactShape {
    /// `contacts: ["ops@tpp.example"]`: the spec.
    Contacts,
    /// `contact: {contact_name, email, phone_number}`: one contact object.
    ContactObject,
}

/// Whether the bank approves by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Approval {
    /// The answer is the registration, usable at once.
    Immediate,
    /// Creation and updates are recorded and approved later ("we will contact you").
    Manual,
    /// Creation is immediate, updates are recorded and approved later.
    ManualUpdates,
}

/// How `stet register rotate` replaces the QSealC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rotation {
    /// `PUT` the registration with the new certificate in place of the old one.
    ReplaceKey,
    /// `PUT` with both keys, the old one first; the new key gets its own kid (the bank's, or
    /// the TPP's), and the old one is dropped at the next update.
    AddKey,
    /// `GET` the registration signed with the old key, then `PUT` it with the new one.
    GetThenPut,
}

/// What differs between banks when registering (STET "OAuth2 technical setup" 1.0.5). Every
/// field is set by the generic profiles; a bank's `[registration]` table says what differs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationRules {
    /// The registration endpoint: a path from the root of the API's host (`/v1/register`), a
    /// path below the API's base (`register`), or a URL.
    pub path: String,
    /// How `POST` is authenticated.
    pub auth: RegistrationAuth,
    /// The headers a signed registration call signs, in order; empty: the bank's
    /// `signature.headers`. (`content-type` is left out of calls without a body.)
    pub signed_headers: Vec<String>,
    /// The token endpoint path of a `client-credentials` registration.
    pub token_path: String,
    /// The client id of that token request (a bank-wide one, such as `PSD2_TPPRegister`).
    pub token_client_id: String,
    /// The scope of that token request.
    pub token_scope: String,
    /// `GET`, `PUT` and `DELETE` carry `Authorization: Bearer <registration_access_token>`.
    pub manage_with_token: bool,
    /// `PUT` bodies carry `client_id` and the `registration_access_token` the bank gave.
    pub token_in_body: bool,
    /// The shape of `jwks`.
    pub jwks: JwksShape,
    /// The shape of each key's `x5c`.
    pub x5c: X5cShape,
    /// Each key's `kty` as the bank wants it (`RSA`; one bank writes `RS256`).
    pub key_type: String,
    /// Members added to each key: `use` (`sig`), `key_ops` or `keys_ops` (`["verify"]`),
    /// `alg` (`RS256`), `x5t#S256`, `n` and `e`.
    pub key_members: Vec<String>,
    /// Where the kid comes from.
    pub kid: KidStrategy,
    /// The grant types asked for.
    pub grant_types: Vec<String>,
    /// Grant types written in capitals (`AUTHORIZATION_CODE`).
    pub uppercase_grants: bool,
    /// What joins the scopes: `" "` (the spec) or `","`.
    pub scope_separator: String,
    /// Spec fields the bank refuses or ignores, left out (`scope`, `response_types`,
    /// `token_endpoint_auth_method`, `provider_legal_id`).
    pub omit: Vec<String>,
    /// How contacts are written.
    pub contact: ContactShape,
    /// Fields added as they are (`context = "psd2"`).
    pub extra: BTreeMap<String, String>,
    /// The status of a successful creation (201 in the spec, 200 at some banks). Another 2xx
    /// is read all the same, and said at `-v`.
    pub created_status: u16,
    /// Whether the bank approves by hand.
    pub approval: Approval,
    /// Whether `DELETE` exists.
    pub delete: bool,
    /// How the QSealC is replaced.
    pub rotation: Rotation,
}

impl RegistrationRules {
    /// Whether the spec field `name` is sent.
    pub fn sends(&self, name: &str) -> bool {
        !self.omit.iter().any(|o| o == name)
    }
}
