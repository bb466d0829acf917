//! # stet-sandbox
//!
//! An embedded mock bank (ASPSP) that speaks STET strictly: HTTPS with client certificates, a
//! real OAuth2 authorization server, `Signature` and `Digest` checked on every request as the
//! strictest bank would, deterministic synthetic accounts and transactions, and faults injected
//! on demand. A request it accepts is one a bank can accept; a rejection says exactly why, so it
//! doubles as a signature debugger. Tests and the `stet` demo run against it; `stet sandbox
//! serve` runs it from the command line.
//!
//! ```no_run
//! # async fn demo() -> Result<(), stet_sandbox::SandboxError> {
//! use stet_sandbox::{Sandbox, SandboxConfig};
//!
//! let bank = Sandbox::start(SandboxConfig::default()).await?;
//! let info = bank.info(); // everything a client needs: URLs, CA, client id, keyId, TPP files
//! println!("{}", serde_json::to_string(info).unwrap());
//! // ... talk to info.api_base with the QWAC in info.qwac_cert / info.qwac_key ...
//! assert_eq!(bank.payment_requests_created(), 0);
//! bank.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! ## The contract: [`SandboxInfo`]
//!
//! On start the sandbox describes itself in one JSON object ([`SandboxInfo`], printed as one
//! line by `stet sandbox serve`) that is enough to configure a client:
//!
//! | field | example | meaning |
//! |---|---|---|
//! | `api_base` | `https://127.0.0.1:PORT/stet/psd2/v1.5` | the STET base URL (`v1.4` with the 1.4 dialect) |
//! | `authorize_url` | `https://127.0.0.1:PORT/authorize` | OAuth2 authorization endpoint (PKCE S256) |
//! | `token_url` | `https://127.0.0.1:PORT/token` | OAuth2 token endpoint (mTLS) |
//! | `ca` | `/tmp/…/ca.pem` | the CA that signed the server certificate (and the TPP's) |
//! | `client_id` | `PSDFR-ACPR-12345` | the TPP's organizationIdentifier, as STET asks |
//! | `client_secret` | hex | for `client_secret_basic`/`client_secret_post`; mTLS alone also works |
//! | `key_id` | `https://127.0.0.1:PORT/tpp/qseal.pem` | the Signature keyId to use for the QSealC |
//! | `redirect_uri` | `http://127.0.0.1/callback` | a loopback redirect; any loopback port and path is accepted |
//! | `psu` | `psu-sandbox` | the test PSU (`psu-1`), whom `/authorize` approves without a `login_hint` |
//! | `qwac_cert`, `qwac_key` | paths | the TPP's QWAC (mutual TLS) |
//! | `qseal_cert`, `qseal_key` | paths | the TPP's QSealC (HTTP signatures) |
//! | `dialect` | `1.5` | the STET dialect spoken |
//!
//! ## What is checked, in order
//!
//! 1. **TLS**: the server presents `bank.pem` (SANs `localhost`, `127.0.0.1`, `::1`). A client
//!    certificate, when sent, must chain to `ca.pem` or the handshake fails. A connection without
//!    one is let through only so that a browser can reach `/authorize`: every other endpoint then
//!    answers 401 *no client certificate*.
//! 2. **Faults** (below) are applied to API requests first, as a failing front end would.
//! 3. **Signature**, with [`stet_httpsig::verify_request`] and `VerifyPolicy::stet()`: one
//!    `Signature` header, `rsa-sha256`, covering `(request-target)`, `date`, `x-request-id`,
//!    `digest` when there is a body and every `PSU-*` header present (unless
//!    [`SandboxConfig::unsigned_psu_headers`], `--unsigned-psu-headers`, plays a bank whose
//!    rules leave them out, as the Crédit Agricole profile sends them); `Digest` matching the body
//!    bytes; `Date` within 300 s; the keyId resolving to the TPP's QSealC (the `key_id` above,
//!    the configured [`SandboxConfig::key_id`], or the QSealC's file name); the signature valid
//!    over the signing string rebuilt from the request target *as received* (undecoded) and the
//!    headers in wire order. Malformed input (unparsable Signature, missing Digest or header,
//!    wrong Digest, bad Date) is 400; a signature that does not verify, an unknown keyId, a
//!    header left unsigned or a stale Date is 401. The `message` (at most 140 characters, as the
//!    schema says) names the problem; the extra `details` field carries the whole reason,
//!    including the signing string the server rebuilt on a mismatch.
//! 4. **Token**: `Authorization: Bearer`, known, unexpired, not revoked (401 otherwise), and
//!    granted the operation's scope (403 otherwise).
//! 5. **The operation**: parameters, bodies (parsed with `stet-models`), business rules.
//!
//! ## OAuth2
//!
//! - `GET /authorize`: `response_type=code`, `client_id`, `redirect_uri` (loopback:
//!   `http://127.0.0.1`, `http://localhost` or `http://[::1]`, any port, RFC 8252),
//!   `code_challenge` + `code_challenge_method=S256` (required), `state`, `scope` (`aisp`,
//!   `pisp`, `cbpii`, `extended_transaction_history`, space separated), and for a payment
//!   `paymentRequestResourceId`. The test PSU approves at once (302 to the redirect URI with
//!   `code` and `state`); with [`SandboxConfig::interactive`] a consent page asks first.
//!   `login_hint` picks the PSU who logs in among [`SandboxConfig::psus`]: `psu-1` (also
//!   `psu-sandbox`, and the one without a hint) to `psu-N`; any other hint is refused with the
//!   redirect `error=invalid_request`, whose description names the hint and the range. The
//!   code, and the access and refresh tokens it gives, are bound to that PSU: the AISP
//!   operations see its accounts alone, another PSU's account id answers 404 as an unknown one
//!   does.
//! - `POST /token` (mTLS required): `authorization_code` (PKCE checked, code single-use, valid
//!   60 s, bound to its client and redirect URI), `client_credentials` (scopes `pisp`, `cbpii`),
//!   `refresh_token`, with rotation as many banks do: each refresh token is good once, and the
//!   grant answers a new access token *and* a new refresh token; the old one presented again
//!   answers `400 invalid_grant` ("already used") and is counted (`refreshReused`).
//!   The client is its certificate (`tls_client_auth`: the certificate's
//!   organizationIdentifier must be the `client_id`) or `client_secret_basic`/`_post`. Errors
//!   are RFC 6749 JSON (`invalid_request`, `invalid_client`, `invalid_grant`,
//!   `unauthorized_client`, `unsupported_grant_type`, `invalid_scope`).
//!
//! Scopes per operation: the AISP operations need `aisp` from an authorization-code grant;
//! transactions need `extended_transaction_history` as well when `dateFrom` is more than 90
//! days back (403 otherwise; without `dateFrom`, a token without it sees the last 90 days);
//! `funds-confirmations` needs `cbpii`; payment requests need `pisp`.
//!
//! **PSU presence.** A request without `PSU-IP-Address` is unattended: 4 calls a day per account
//! and endpoint (PSD2 RTS art. 36(5)), then 429 (or 403, with
//! [`SandboxConfig::unattended_limit_status`], `--unattended-limit-status 403`). Endpoints of no account (`accounts`,
//! `end-user-identity`, …) count per PSU.
//!
//! **TLS.** [`SandboxConfig::tls_versions`] (`stet sandbox serve --tls-version 1.2|1.3`)
//! restricts the server to one TLS version, and [`SandboxConfig::qwac_key`] (`--qwac-key
//! rsa-2048`) makes the ephemeral PKI's QWAC an RSA-2048 one (ECDSA P-256 by default), so that
//! a client's handshake signature can be tested in each version: RSA-PSS in TLS 1.3, PKCS#1
//! v1.5 in TLS 1.2. `clientHandshakeSignatures` in the counters says which it was.
//!
//! ## Registration
//!
//! Dynamic client registration (STET "OAuth2 technical setup" 1.0.5) in the spec's form at
//! `/v1/register` (and `/v1/register/{clientId}`: the spec's `basePath` is `/v1`), and in the
//! BNP Paribas (`/psd2/register`), Crédit Agricole
//! (`/psd2_actor_registration/v1/tpp_consumers`), CIC (`/cic/oauth2/registrations`), LCL
//! (`/lcl/register`), La Banque Postale (`/lbp/register`, with the sandbox's `client_id`
//! and `client_secret` as the developer portal's credentials) and BPCE
//! (`/stet/setting/v1/register`, after a token from `/stet/psd2/oauth/token`) variants, each
//! checking what that bank checks and answering as it does; refusals are the
//! spec's error models (`invalid_redirect_uri`, `invalid_client_metadata`). A registered client
//! id is accepted at `/authorize` and `/token` with the QWAC it registered with, and its kids as
//! Signature keyIds.
//!
//! ## The payment flow
//!
//! 1. `POST /payment-requests` with a client-credentials `pisp` token → 201, `Location`, and
//!    `_links.consentApproval.href` = `authorize_url?paymentRequestResourceId=ID`. Status `RCVD`.
//! 2. The client appends `&response_type=code&client_id=…&redirect_uri=…&state=…&
//!    code_challenge=…&code_challenge_method=S256&scope=pisp` and sends the PSU there; the PSU
//!    approves; the client exchanges the code (PKCE) for a token.
//! 3. `POST /payment-requests/ID/confirmation` (with `--dialect 1.4`, `/o-confirmation` too, as
//!    1.4.x banks name it; body `{}` or a `ConfirmationResource`) with that
//!    token (or, once the PSU approved, a client-credentials `pisp` token) → status `ACTC`.
//! 4. `GET /payment-requests/ID`: the first read after confirmation shows `ACTC`, later ones
//!    `ACSC`.
//!
//! **The RJCT rule**: a payment request whose total instructed amount is above **5000.00** is
//! rejected at confirmation: status `RJCT`, `statusReasonInformation` `AG01` (transaction
//! forbidden on this account: the sandbox's single-payment limit). Cancellation (`PUT` with `paymentInformationStatus` or a transfer's
//! `transactionStatus` set to `CANC` and a reason among `DS02`, `DUPL`, `FRAD`, `TECH`) is
//! allowed until the payment is settled. [`RunningSandbox::payment_requests_created`] counts
//! the 201s, so a test can prove a payment was never created twice.
//!
//! **Time and re-consent.** So that incremental syncs can be tested, two sandbox-only
//! endpoints beside the counters (no client certificate needed, not counted, not faulted):
//!
//! - `POST /sandbox/advance` with `{"days": N, "transactions_per_account": K}` moves the
//!   bank's data clock N days forward (the `Date` header of requests is still checked against
//!   real time), adds K transactions per account dated in those days (those of the last two
//!   days pending) and books every pending transaction at least two days old as banks do: a
//!   booking date other than the expected one, the card date appended to the label, a new
//!   entry reference, never another amount. Balances follow. It answers
//!   `{"added": A, "booked": B, "today": "YYYY-MM-DD"}`.
//! - `POST /sandbox/reconsent` gives every account a new `resourceId` (same IBAN), as a bank
//!   does when the PSU consents again; the old ids answer 404. It answers
//!   `{"accounts": [{"iban", "previousResourceId", "resourceId"}, …]}`.
//!
//! Both change every PSU's data (PSUs generated later replay them); the figures and ids they
//! answer are `psu-1`'s.
//!
//! - `POST /sandbox/revoke` with `{"psu": "psu-3"}` revokes every access and refresh token of
//!   that PSU, as a PSU does from the bank's app: API calls with them answer 401
//!   (`invalid_token`), a refresh answers `400 invalid_grant`; a new consent (`/authorize`)
//!   works again. It answers `{"revoked": N}`, the tokens revoked; an unknown PSU is 404.
//!
//! In-process: [`RunningSandbox::advance`], [`RunningSandbox::reconsent`] and
//! [`RunningSandbox::revoke`].
//!
//! **Counters.** `GET /sandbox/stats` (no client certificate needed, outside the API base, so
//! neither counted nor faulted) answers [`SandboxStats`] as JSON; in-process,
//! [`RunningSandbox::stats`]. A test driving `stet sandbox serve` as a separate process reads
//! them there:
//!
//! | key | counts |
//! |---|---|
//! | `paymentRequestsCreated` | the 201s of `POST /payment-requests`, including those whose answer a `drop` fault then cut |
//! | `apiRequests` | API requests received (under the API base), faulted ones included |
//! | `unattendedPeak` | the most unattended AIS calls (no `PSU-IP-Address`) answered 2xx for one account and endpoint (`balances`, `transactions`, …; `accounts` per PSU) within any rolling 24 hours; each page is a call |
//! | `unattendedRefused` | unattended calls refused (429) because the 4-a-day limit was reached |
//! | `peakConcurrency` | the most API requests served at the same moment (from arrival to answer, or to the client going away) |
//! | `peakConcurrencyByClient` | `{client_id: peak}`, the same per TPP (the client certificate's organizationIdentifier) |
//! | `clientHandshakeSignatures` | `{"TLSv1.3 RSA_PSS_SHA256": n, …}`: client certificates' CertificateVerify signatures verified, by TLS version and scheme |
//! | `refreshGrants` | refresh grants that succeeded |
//! | `refreshReused` | refresh tokens presented again after use |
//! | `tokensIssued` | authorization-code grants that succeeded |
//! | `psus` | the number of PSUs |
//!
//! ## Data
//!
//! `accounts` accounts × `transactions` transactions, newest first, spread over the 13 months
//! before the reference date, debit and credit, the last two days pending; balances `CLBD`
//! (booked) and `XPCD` (booked plus pending) consistent with the transactions. Entry references
//! are `ACCnnnn-nnnnnn`, increasing with time.
//!
//! **Many PSUs** ([`SandboxConfig::psus`], `stet sandbox serve --psus N`): `psu-1` has the data
//! above; `psu-2` … `psu-N` each have `accounts` accounts of their own (resource ids
//! `PSUk-ACCnnnn`, distinct valid French IBANs) with their own transactions, from the same
//! generator seeded per PSU, made on the PSU's first use so that a bank of hundreds of PSUs
//! starts at once. The same seed and reference date give the same
//! bytes. Lists are HAL pages of `page_size` with `first`, `prev`, `next`, `last` written as
//! absolute URLs, absolute paths or relative paths ([`LinkStyle`]); an empty list is 204.
//! Transactions filter on `dateFrom` (inclusive), `dateTo` (exclusive), `dateType`
//! (`bookingDate` or `transactionDate`), `entryReferenceFrom` / `entryReferenceto` (1.5) and
//! `afterEntryReference` (1.4).
//!
//! ## Faults: `--faults SPEC`
//!
//! A comma-separated list; each fault is `kind:key=value:…`. API requests (everything under
//! the API base) are counted from 1 in arrival order, so a spec plus a request sequence gives
//! the same faults every time.
//!
//! | fault | effect |
//! |---|---|
//! | `429:every=K[:retry-after=S]` | every K-th request: 429 with `Retry-After: S` (default 1) |
//! | `503:every=K[:burst=B]` | requests K·n … K·n+B-1: 503 (default B = 1) |
//! | `drop:every=K` | every K-th response: headers and half the body, then the connection closes |
//! | `slow:every=K:ms=N` | every K-th response waits N ms |
//! | `expire-token:after=N` | each access token expires after N uses (401 `invalid_token`) |
//! | `revoke:after=N` | a PSU consent (its code-grant token and refresh token) is revoked after N calls |
//! | `truncate:every=K` | every K-th response: half the JSON, with a `Content-Length` that matches |
//! | `content-type:every=K` | every K-th response: a maintenance page, 200 `text/html` |
//! | `huge-body:every=K:mib=M` | every K-th response: M MiB of never-ending JSON, made as it is sent, without `Content-Length` |
//! | `foreign-next:every=K` | every K-th response: `_links.next` (when there is one) points at `elsewhere.example` |
//! | `error-model-empty:every=K` | every K-th request: 400 with the body `{}` |
//! | `token-redirect` | the token endpoint answers 302 to `https://elsewhere.example/token` |
//!
//! Example: `429:every=7:retry-after=1,503:every=50:burst=3,drop:every=40,slow:every=30:ms=2500`.
//!
//! **Conformance faults** ([`check_faults`]): each breaks one rule of the standard and leaves
//! every other answer as it is, so that the `stet conformance` case that checks the rule fails
//! and no other case changes (the case names its fault in the catalogue). They take no
//! parameter, but `drop-field`.
//!
//! | fault | the bank… |
//! |---|---|
//! | `no-client-cert` | serves API requests that came without a client certificate |
//! | `untrusted-client-cert` | accepts any client certificate in the TLS handshake |
//! | `token-without-cert` | issues tokens to clients that sent no certificate |
//! | `accept-no-token`, `accept-unknown-token`, `accept-expired-token` | serves requests without a token, with one it never issued, with an expired one |
//! | `ignore-scopes` | serves an operation the token's scope (or grant) does not cover |
//! | `drop-state` | redirects from `/authorize` without the client's `state` |
//! | `pkce-optional`, `pkce-unchecked` | gives a code without `code_challenge`; does not check `code_verifier` |
//! | `pkce-crash` | fails with a 500 (no code, no refusal) at `/authorize` without `code_challenge` |
//! | `reusable-code` | exchanges an authorization code more than once |
//! | `accept-unsigned` | serves requests without `Signature` |
//! | `unverified-get-signature` | parses a GET's signature but never verifies it |
//! | `ignore-digest` | never compares `Digest` with the body |
//! | `digest-instead-of-signature` | skips the signature when `Digest` matches the body |
//! | `accept-stale-date`, `accept-unknown-keyid`, `accept-incomplete-headers` | lets a Date of any age, an unknown keyId, a required header left unsigned through |
//! | `drop-field:resource=R` | leaves a required field out of R: `accounts` (cashAccountType), `balances` (balanceType), `transactions` (creditDebitIndicator), `identity` (fullName), `beneficiaries` (creditor), `funds-confirmation` (result), `payment-request` (creationDateTime, as read and as confirmed), `later-transactions` (creditDebitIndicator, pages after the first) |
//! | `text-content-type` | labels answers `text/plain` |
//! | `no-request-id` | does not echo `X-Request-ID` |
//! | `error-outside-model` | answers a 404 with a plain-text page |
//! | `refusal-outside-model` | answers its refusals (400, 401, 403: signatures, tokens, scopes) with a JSON object without the ErrorModel's `status` and `message` |
//! | `next-past-end`, `loop-next`, `no-self-link` | links the last page of transactions to a page that does not exist, or back to the first; drops `self` from pages after the first |
//! | `empty-200` | answers an empty list 200 instead of 204 |
//! | `ignore-date-to`, `ignore-date-from`, `history-unlimited` | ignores `dateTo`; ignores `dateFrom` (within the 90 days a token sees); lists history beyond 90 days without the extended scope |
//! | `no-consent-approval` | answers the first payment request created without `_links.consentApproval` |
//! | `status-regress` | reads a confirmed payment request as `RCVD` again |
//! | `confirm-without-approval`, `cancel-ignored` | confirms what the PSU did not approve; answers a cancellation 200 and changes nothing |
//! | `unlimited-unattended` | never limits unattended calls |
//!
//! ## The Powens mock
//!
//! With [`SandboxConfig::powens`] (`stet sandbox serve --powens`), the same server also speaks
//! the Powens aggregator API at `/powens/2.0`, without client certificates, and
//! [`SandboxInfo::powens`] gives its base URL, client id and secret. It clones Powens' test
//! connector and its scenarios, keeps connections in their state machine, lists accounts
//! disabled until enabled, pages transactions, answers unknown ids with HTML pages, writes
//! naive Paris times, and refuses any credential that is not a JWE it can decrypt. Its
//! manual (calls, scenarios, data) is the module documentation of `src/powens/mod.rs`.
//!
//! For testing syncs, beside `/sandbox/advance` (see `src/powens/advance.rs`):
//! `POST /sandbox/powens/advance` with `{"days": N, "transactions_per_account": K, "booking":
//! "same-id" | "new-id"}` moves the mock's clock, books every `coming` transaction (the same
//! transaction, or the coming one deleted and a booked one under a new id) and adds K per
//! account of each usable connection; `POST /sandbox/powens/state` with `{"connection": ID,
//! "state": "SCARequired"}` puts a connection in a state as Powens' background sync would
//! (`null`: usable again); `GET /sandbox/powens/transactions` lists every account's
//! transactions exactly as the API does, deleted ones included. `GET
//! /sandbox/powens/credentials` lists every request that carried credentials: each field's
//! name and whether it was a JWE (never a value), whether it was made for the current key, the
//! scenario chosen and the answer, so a test can count what reached the bank.
//!
//! ## Dialects
//!
//! 1.5 by default; with [`stet_models::Dialect::V1_4`] amounts are strings, booking and value
//! dates are dates, remittance information an array, the API base ends in `v1.4`, and 1.5-only
//! operations (`owners`, `overdrafts`, payment transactions) answer 404.

mod api;
pub mod check_faults;
mod data;
pub mod faults;
mod oauth;
pub mod pki;
mod powens;
mod registration;
mod server;
mod state;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

pub use data::Advanced;
pub use faults::{Fault, Faults, FaultsError};
pub use pki::{PkiError, QwacKey, TPP_ORGANIZATION_ID};
pub use powens::{KeyFault, PowensInfo, PowensOptions};
pub use stet_httpsig as httpsig;
pub use stet_models as models;
pub use stet_models::Dialect;

/// How `_links` hrefs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkStyle {
    /// `https://127.0.0.1:PORT/stet/psd2/v1.5/accounts?page=2`
    #[default]
    Url,
    /// `/stet/psd2/v1.5/accounts?page=2`
    Path,
    /// `accounts?page=2`: relative to the API base.
    Relative,
}

impl std::str::FromStr for LinkStyle {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "url" => Ok(LinkStyle::Url),
            "path" => Ok(LinkStyle::Path),
            "relative" => Ok(LinkStyle::Relative),
            other => Err(format!(
                "unknown link style `{other}`: expected url, path or relative"
            )),
        }
    }
}

/// How to run a sandbox. [`Default`] is usable as is: an ephemeral PKI, a random port, three
/// accounts.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The address to listen on (default 127.0.0.1).
    pub bind: IpAddr,
    /// The port; 0 picks a free one.
    pub port: u16,
    /// A PKI folder (the files of [`pki::FILES`]); `None` makes an ephemeral one in a temporary
    /// folder that lives as long as the sandbox.
    pub certs: Option<PathBuf>,
    /// Number of accounts of the test PSU.
    pub accounts: usize,
    /// Transactions per account.
    pub transactions: usize,
    /// Items per page of a list.
    pub page_size: usize,
    /// The seed of the synthetic data.
    pub seed: u64,
    /// The date the data ends at; `None` is today (UTC). Fix it to get identical bytes across days.
    pub today: Option<time::Date>,
    /// The STET dialect.
    pub dialect: Dialect,
    /// How links are written.
    pub link_style: LinkStyle,
    /// Faults to inject.
    pub faults: Faults,
    /// Show a consent page at `/authorize` instead of approving at once.
    pub interactive: bool,
    /// Lifetime of access tokens.
    pub token_lifetime: Duration,
    /// A keyId accepted for the QSealC besides the URL in [`SandboxInfo::key_id`].
    pub key_id: Option<String>,
    /// Accept `PSU-*` headers left out of the signature, as a bank whose own rules do not
    /// ask for them to be signed (the strict default refuses such a request).
    pub unsigned_psu_headers: bool,
    /// The status a call without `PSU-IP-Address` gets once the day's 4 are spent: 429 (with
    /// `Retry-After`), or 403 as some banks answer (Crédit Agricole).
    pub unattended_limit_status: u16,
    /// Serve the Powens mock too, at `/powens/2.0` (see "The Powens mock" above).
    pub powens: Option<PowensOptions>,
    /// The number of PSUs, `psu-1` to `psu-N` (default 1; at most 99999), chosen at
    /// `/authorize` with `login_hint`.
    pub psus: usize,
    /// The QWAC's key type in the ephemeral PKI (ignored with [`certs`](Self::certs)).
    pub qwac_key: QwacKey,
    /// The TLS versions the server accepts: both by default, or one alone, to test a client's
    /// handshake signature in each (RSA-PSS in TLS 1.3, PKCS#1 v1.5 in TLS 1.2).
    pub tls_versions: TlsVersions,
}

/// The TLS versions the sandbox accepts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TlsVersions {
    /// TLS 1.2 and 1.3.
    #[default]
    Both,
    /// TLS 1.2 only.
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// The sandbox's counters, as `GET /sandbox/stats` answers them (see "Counters" in the crate
/// manual).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxStats {
    /// Payment requests created (answered 201).
    pub payment_requests_created: u64,
    /// API requests received, faulted ones included.
    pub api_requests: u64,
    /// The most unattended AIS calls answered 2xx for one account (or PSU) and endpoint
    /// within any 24 hours.
    pub unattended_peak: u64,
    /// Unattended calls refused (429) by the 4-a-day limit.
    pub unattended_refused: u64,
    /// The most API requests served at the same moment.
    pub peak_concurrency: u64,
    /// The same, per client id.
    pub peak_concurrency_by_client: std::collections::BTreeMap<String, u64>,
    /// Refresh grants that succeeded.
    pub refresh_grants: u64,
    /// Refresh tokens presented again after use.
    pub refresh_reused: u64,
    /// Authorization-code grants that succeeded.
    pub tokens_issued: u64,
    /// The number of PSUs.
    pub psus: u64,
    /// Client certificates' handshake signatures verified, by TLS version and scheme
    /// (`"TLSv1.3 RSA_PSS_SHA256"`): what a client signed its CertificateVerify with.
    #[serde(default)]
    pub client_handshake_signatures: std::collections::BTreeMap<String, u64>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            certs: None,
            accounts: 3,
            transactions: 60,
            page_size: 20,
            seed: 1,
            today: None,
            dialect: Dialect::V1_5,
            link_style: LinkStyle::Url,
            faults: Faults::default(),
            interactive: false,
            token_lifetime: Duration::from_secs(3600),
            key_id: None,
            unsigned_psu_headers: false,
            unattended_limit_status: 429,
            powens: None,
            psus: 1,
            qwac_key: QwacKey::default(),
            tls_versions: TlsVersions::default(),
        }
    }
}

/// Everything a client needs to talk to a running sandbox: see the crate manual.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SandboxInfo {
    /// The STET API base URL.
    pub api_base: String,
    /// The OAuth2 authorization endpoint.
    pub authorize_url: String,
    /// The OAuth2 token endpoint.
    pub token_url: String,
    /// The CA certificate file (PEM).
    pub ca: PathBuf,
    /// The TPP's client id: its organizationIdentifier.
    pub client_id: String,
    /// The client secret, for `client_secret_basic` or `client_secret_post`.
    pub client_secret: String,
    /// The keyId to sign with.
    pub key_id: String,
    /// A loopback redirect URI; any loopback port and path is accepted.
    pub redirect_uri: String,
    /// The test PSU.
    pub psu: String,
    /// The TPP's QWAC certificate (PEM).
    pub qwac_cert: PathBuf,
    /// The QWAC's private key (PKCS#8 PEM).
    pub qwac_key: PathBuf,
    /// The TPP's QSealC certificate (PEM).
    pub qseal_cert: PathBuf,
    /// The QSealC's private key (PKCS#8 PEM, RSA-2048).
    pub qseal_key: PathBuf,
    /// `1.4` or `1.5`.
    pub dialect: String,
    /// The Powens mock, when it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub powens: Option<PowensInfo>,
}

/// Why a sandbox could not start.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The PKI could not be made or read.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The TLS configuration was refused.
    #[error("TLS setup: {0}")]
    Tls(String),
    /// The QSealC could not be read.
    #[error("the QSealC certificate: {0}")]
    QSealC(String),
    /// The QWAC could not be read.
    #[error("the QWAC certificate: {0}")]
    Qwac(String),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A temporary folder could not be made.
    #[error("cannot make a temporary folder for the PKI: {0}")]
    TempDir(#[source] std::io::Error),
    /// A configuration value is out of range.
    #[error("configuration: {0}")]
    Config(String),
}

/// The sandbox bank.
#[derive(Debug)]
pub struct Sandbox;

impl Sandbox {
    /// Starts a sandbox on the current tokio runtime and returns once it accepts connections.
    pub async fn start(config: SandboxConfig) -> Result<RunningSandbox, SandboxError> {
        if config.page_size == 0 {
            return Err(SandboxError::Config("page_size must be at least 1".into()));
        }
        if config.accounts > 10_000 || config.transactions > 100_000 {
            return Err(SandboxError::Config(
                "at most 10000 accounts and 100000 transactions per account".into(),
            ));
        }
        if config.psus == 0 || config.psus > 99_999 {
            return Err(SandboxError::Config(format!(
                "psus must be 1 to 99999 (it is {})",
                config.psus
            )));
        }
        // The IBANs of PSUs 2 and up are told apart by their branch code, one per account.
        if config.psus > 1 && config.accounts > 1000 {
            return Err(SandboxError::Config(
                "with more than one PSU, at most 1000 accounts per PSU".into(),
            ));
        }
        let (pki, temp) = match &config.certs {
            Some(dir) => (pki::Pki::load(dir)?, None),
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("stet-sandbox-pki-")
                    .tempdir()
                    .map_err(SandboxError::TempDir)?;
                (
                    pki::generate_with(temp.path(), config.qwac_key)?,
                    Some(temp),
                )
            }
        };
        let addr = SocketAddr::new(config.bind, config.port);
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| SandboxError::Bind { addr, source })?;
        let local = listener
            .local_addr()
            .map_err(|source| SandboxError::Bind { addr, source })?;
        let payments = Arc::new(AtomicU64::new(0));
        let state = Arc::new(state::State::new(config, &pki, local, payments.clone())?);
        let tls = server::tls_config(
            &pki,
            &state.config.faults,
            state.config.tls_versions,
            state.handshakes.clone(),
        )?;
        let info = state.info.clone();
        let bank = state.clone();
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(server::accept_loop(
            listener,
            tokio_rustls::TlsAcceptor::from(Arc::new(tls)),
            state,
            stopped,
        ));
        Ok(RunningSandbox {
            info,
            addr: local,
            stop,
            task: Some(task),
            payments,
            state: bank,
            _temp: temp,
        })
    }
}

/// A sandbox that is running. Dropping it stops it too; [`RunningSandbox::shutdown`] also waits.
#[derive(Debug)]
pub struct RunningSandbox {
    info: SandboxInfo,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
    payments: Arc<AtomicU64>,
    state: Arc<state::State>,
    _temp: Option<tempfile::TempDir>,
}

impl RunningSandbox {
    /// What a client needs to know: the JSON line of `stet sandbox serve`.
    pub fn info(&self) -> &SandboxInfo {
        &self.info
    }

    /// The address the sandbox listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many payment requests were created (answered 201) so far.
    pub fn payment_requests_created(&self) -> u64 {
        self.payments.load(Ordering::SeqCst)
    }

    /// Moves the bank's data clock `days` forward, adds `per_account` transactions to each
    /// account and books pending ones, as `POST /sandbox/advance` does (see the crate manual).
    pub fn advance(&self, days: u32, per_account: usize) -> Advanced {
        self.state.advance(days, per_account)
    }

    /// Gives every account a new resource id, as `POST /sandbox/reconsent` does: `(iban, old
    /// id, new id)` per account.
    pub fn reconsent(&self) -> Vec<(String, String, String)> {
        self.state.reconsent()
    }

    /// The counters of `GET /sandbox/stats`.
    pub fn stats(&self) -> SandboxStats {
        self.state.stats()
    }

    /// Revokes every access and refresh token of PSU `psu` (`psu-1` … `psu-N`), as `POST
    /// /sandbox/revoke` does; gives how many were revoked, `None` for an unknown PSU.
    pub fn revoke(&self, psu: &str) -> Option<u64> {
        self.state.psu_of(psu).map(|n| self.state.revoke(n))
    }

    /// Stops accepting, closes every connection and waits for that. The ephemeral PKI is
    /// deleted.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
