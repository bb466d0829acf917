//! [`StetClient`]: the typed calls, the request plumbing they share, and pagination.

use std::collections::{HashSet, VecDeque};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
use serde_json::value::RawValue;
use stet_models::{
    Access, AccountResource, Beneficiary, CreditTransferTransactionResource, HalAccounts,
    HalBalances, HalBeneficiaries, HalCreditTransfertTransactions, HalEndUserIdentity,
    HalOverdrafts, HalOwners, HalTransactions, Raw, Response, Transaction, TransactionsLinks,
};
use stet_transport::{
    Auth, Method, Profile, PsuContext, StetRequest, StetResponse, Transport, TransportBuilder,
    TransportError, bank_message,
};
use url::Url;

use crate::bank::BankProfile;
use crate::budget::{MemoryBudgetStore, UnattendedBudget};
use crate::link::resolve_next_link;
use crate::{BudgetStore, ClientError};

/// A [`TransportBuilder`] set up for `bank`: its signing profiles (for requests with and
/// without a body) with the configuration's `key_id` (and the configuration's
/// `signed_headers`, when it overrides the bank's lists), whether GETs carry a Content-Type,
/// and its `Accept` header. Add a token store and build.
pub fn transport_builder<'a>(profile: &'a Profile, bank: &BankProfile) -> TransportBuilder<'a> {
    let mut signing = bank.signing_profile(profile.key_id.clone());
    let mut without_body = bank.signing_profile_without_body(profile.key_id.clone());
    let mut content_type_without_body = bank.signature.content_type_without_body;
    if let Some(headers) = &profile.signed_headers {
        // The configuration's list replaces the bank's for every request; one that names
        // content-type wants it signed on GETs too, so it is sent there.
        signing = signing.with_headers(headers);
        without_body = without_body.with_headers(headers);
        content_type_without_body |= headers
            .iter()
            .any(|h| h.eq_ignore_ascii_case("content-type"));
    }
    Transport::builder(profile)
        .signing_profile(signing)
        .signing_profile_without_body(without_body)
        .content_type_without_body(content_type_without_body)
        .accept(bank.accept.clone())
}

/// How a [`StetClient`] behaves beyond what the bank profile says.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The PSU's context, sent as `PSU-*` headers. With an IP address the PSU is present and
    /// calls do not count against the unattended budget; without one they do.
    pub psu: Option<PsuContext>,
    /// How many accounts are fetched at once by [`StetClient::for_each_account`] (default 4;
    /// at least 1). Requests share the transport's connection pool.
    pub concurrency: usize,
    /// Where the unattended budget is counted (default: in memory, for this process). Give a
    /// [`FileBudgetStore`](crate::FileBudgetStore) to count across runs.
    pub budget_store: Option<Arc<dyn BudgetStore>>,
    /// The key of the PSU's consent token in the token store (default `aisp`).
    pub consent_key: String,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            psu: None,
            concurrency: 4,
            budget_store: None,
            consent_key: "aisp".to_owned(),
        }
    }
}

/// The typed STET API over one bank: see the crate manual. Cheap to clone (an `Arc` inside).
#[derive(Clone)]
pub struct StetClient {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    bank: BankProfile,
    psu: Option<PsuContext>,
    concurrency: usize,
    budget: UnattendedBudget,
    consent_key: String,
}

impl std::fmt::Debug for StetClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StetClient")
            .field("bank", &self.inner.bank.name)
            .field("api_base", &self.inner.transport.api_base().as_str())
            .field("psu_present", &self.psu_present())
            .field("concurrency", &self.inner.concurrency)
            .finish_non_exhaustive()
    }
}

/// One page of a list, as the bank sent it, with items of type `I`: see [`Page`] (items read
/// as models) and [`JsonPage`] (items as JSON text only).
#[derive(Debug, Clone)]
pub struct ListPage<I> {
    /// The items of the page.
    pub items: Vec<I>,
    /// The URL the page was read from.
    pub url: Url,
    /// The page's number in this walk, from 1.
    pub number: u64,
    /// The next page, when there is one.
    pub next: Option<Url>,
}

/// A page of items read as models, each with its JSON as received.
pub type Page<T> = ListPage<Raw<T>>;

/// A page of items kept as the JSON text the bank sent, not read as models: what an export
/// that passes items through needs, without the cost of reading each one. Read an item as a
/// model where needed with [`Raw::from_json`](stet_models::Raw::from_json).
pub type JsonPage = ListPage<Box<RawValue>>;

/// Which date `dateFrom` and `dateTo` apply to (`dateType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateType {
    /// `bookingDate`.
    BookingDate,
    /// `transactionDate`.
    TransactionDate,
}

impl DateType {
    /// The value on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            DateType::BookingDate => "bookingDate",
            DateType::TransactionDate => "transactionDate",
        }
    }
}

/// What transactions to list. Every field is optional; the default asks for what the bank
/// gives without parameters (the last 90 days, usually).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransactionQuery {
    /// `dateFrom`, inclusive. More than 90 days back needs the extended-history scope.
    pub date_from: Option<time::Date>,
    /// `dateTo`, exclusive.
    pub date_to: Option<time::Date>,
    /// `dateType`.
    pub date_type: Option<DateType>,
    /// Only entries after this entry reference (`entryReferenceFrom` in 1.5,
    /// `afterEntryReference` in 1.4): resume an export.
    pub after_entry_reference: Option<String>,
    /// Only entries up to this one, inclusive (`entryReferenceto`, STET 1.5 and later).
    pub entry_reference_to: Option<String>,
}

/// What a call is, for the plumbing: where, with which token, what to count and how to
/// explain failures.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) method: Method,
    pub(crate) target: String,
    pub(crate) body: Option<Vec<u8>>,
    pub(crate) auth: Auth,
    /// `(account, endpoint)` of an AISP call, counted when the PSU is not present.
    pub(crate) unattended: Option<(String, &'static str)>,
    /// The `dateFrom` of a transactions call, when older than the unattended window.
    pub(crate) old_history_from: Option<time::Date>,
    /// Headers the bank's profile adds to this kind of call.
    pub(crate) headers: Vec<(String, String)>,
}

impl Call {
    pub(crate) fn new(method: Method, target: String, auth: Auth) -> Self {
        Call {
            method,
            target,
            body: None,
            auth,
            unattended: None,
            old_history_from: None,
            headers: Vec::new(),
        }
    }

    fn what(&self) -> String {
        format!("{} {}", self.method, self.target)
    }
}

/// A list response: its items and its `next` href.
pub(crate) trait Listing: Response + Send + 'static {
    type Item: Send + 'static;
    fn into_page(self) -> (Vec<Self::Item>, Option<String>);
}

impl Listing for HalAccounts {
    type Item = Raw<AccountResource>;
    fn into_page(self) -> (Vec<Raw<AccountResource>>, Option<String>) {
        let next = self.links.and_then(|l| l.next).map(|l| l.href);
        (self.accounts, next)
    }
}

impl Listing for HalTransactions {
    type Item = Raw<Transaction>;
    fn into_page(self) -> (Vec<Raw<Transaction>>, Option<String>) {
        let next = self.links.and_then(|l| l.next).map(|l| l.href);
        (self.transactions, next)
    }
}

/// `HalTransactions` with its items kept as text: the page is checked as JSON, each item as an
/// object, and its links read, but no transaction is read as a model.
#[derive(Debug, serde::Deserialize)]
struct HalTransactionsJson {
    #[serde(default, deserialize_with = "json_objects")]
    transactions: Vec<Box<RawValue>>,
    #[serde(rename = "_links", default)]
    links: Option<TransactionsLinks>,
}

/// A list of JSON values that must all be objects (as transactions are).
fn json_objects<'de, D>(deserializer: D) -> Result<Vec<Box<RawValue>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    use serde::Deserialize as _;
    let items = Vec::<Box<RawValue>>::deserialize(deserializer)?;
    // The text of a value starts at its first character (whitespace before it is not kept).
    match items.iter().position(|i| !i.get().starts_with('{')) {
        Some(n) => Err(serde::de::Error::custom(format!(
            "transaction {} is `{}`, not an object",
            n + 1,
            items[n].get().chars().take(40).collect::<String>()
        ))),
        None => Ok(items),
    }
}

impl Response for HalTransactionsJson {
    const SCHEMA: &'static str = "HalTransactions";
}

impl Listing for HalTransactionsJson {
    type Item = Box<RawValue>;
    fn into_page(self) -> (Vec<Box<RawValue>>, Option<String>) {
        let next = self.links.and_then(|l| l.next).map(|l| l.href);
        (self.transactions, next)
    }
}

/// A transaction of a page, as the windowed merge of [`StetClient::transaction_pages`] sees
/// it: read as a model, or as text to be read where the merge needs it.
pub(crate) trait WindowItem: Send + Sized + 'static {
    /// `f` applied to the item read as a transaction, or why it cannot be read.
    fn with_transaction<R>(&self, f: impl FnOnce(&Transaction) -> R) -> Result<R, String>;
    /// The item's JSON text.
    fn text(&self) -> &str;
}

impl WindowItem for Raw<Transaction> {
    fn with_transaction<R>(&self, f: impl FnOnce(&Transaction) -> R) -> Result<R, String> {
        Ok(f(self))
    }
    fn text(&self) -> &str {
        self.json().get()
    }
}

impl WindowItem for Box<RawValue> {
    fn with_transaction<R>(&self, f: impl FnOnce(&Transaction) -> R) -> Result<R, String> {
        let t: Transaction = serde_json::from_str(self.get())
            .map_err(|e| format!("cannot read a transaction: {e}"))?;
        Ok(f(&t))
    }
    fn text(&self) -> &str {
        self.get()
    }
}

impl Listing for HalBeneficiaries {
    type Item = Raw<Beneficiary>;
    fn into_page(self) -> (Vec<Raw<Beneficiary>>, Option<String>) {
        let next = self.links.and_then(|l| l.next).map(|l| l.href);
        (self.beneficiaries, next)
    }
}

impl Listing for HalCreditTransfertTransactions {
    type Item = Raw<CreditTransferTransactionResource>;
    fn into_page(self) -> (Vec<Raw<CreditTransferTransactionResource>>, Option<String>) {
        let next = self.links.and_then(|l| l.next).map(|l| l.href);
        (self.credit_transfer_transaction, next)
    }
}

/// Percent-encodes one path segment (everything but RFC 3986's unreserved characters).
pub(crate) fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `path?k=v&…` with the values form-encoded; just `path` without parameters.
pub(crate) fn with_query(path: String, params: &[(&str, String)]) -> String {
    if params.is_empty() {
        return path;
    }
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        q.append_pair(k, v);
    }
    format!("{path}?{}", q.finish())
}

fn url_hash(url: &Url) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    url.as_str().hash(&mut h);
    h.finish()
}

impl StetClient {
    /// A client for `bank` over `transport`, with default options (PSU not present, budget in
    /// memory, concurrency 4).
    pub fn new(transport: Transport, bank: BankProfile) -> Self {
        StetClient::with_options(transport, bank, ClientOptions::default())
    }

    /// A client with `options`.
    pub fn with_options(transport: Transport, bank: BankProfile, options: ClientOptions) -> Self {
        let store = options
            .budget_store
            .unwrap_or_else(|| Arc::new(MemoryBudgetStore::default()));
        StetClient {
            inner: Arc::new(Inner {
                transport,
                bank,
                psu: options.psu,
                concurrency: options.concurrency.max(1),
                budget: UnattendedBudget::new(store),
                consent_key: options.consent_key,
            }),
        }
    }

    /// The same client with another PSU context (the budget and connections are shared).
    #[must_use]
    pub fn with_psu(&self, psu: Option<PsuContext>) -> StetClient {
        StetClient {
            inner: Arc::new(Inner {
                transport: self.inner.transport.clone(),
                bank: self.inner.bank.clone(),
                psu,
                concurrency: self.inner.concurrency,
                budget: self.inner.budget.clone(),
                consent_key: self.inner.consent_key.clone(),
            }),
        }
    }

    /// The transport.
    pub fn transport(&self) -> &Transport {
        &self.inner.transport
    }

    /// The bank profile.
    pub fn bank(&self) -> &BankProfile {
        &self.inner.bank
    }

    /// The PSU context sent.
    pub fn psu(&self) -> Option<&PsuContext> {
        self.inner.psu.as_ref()
    }

    /// Whether calls are made with the PSU present (a `PSU-IP-Address` is sent).
    pub fn psu_present(&self) -> bool {
        self.inner.psu.as_ref().is_some_and(PsuContext::is_present)
    }

    /// The unattended-access budget.
    pub fn budget(&self) -> &UnattendedBudget {
        &self.inner.budget
    }

    /// How many accounts are fetched at once.
    pub fn concurrency(&self) -> usize {
        self.inner.concurrency
    }

    /// The consent the unattended budget is counted under: the consent token's key and the
    /// time the PSU authorized it (kept by refreshes, changed by a new login).
    pub async fn consent_id(&self) -> Result<String, ClientError> {
        let key = &self.inner.consent_key;
        let tokens = self.inner.transport.tokens().await?;
        let when = tokens
            .tokens
            .get(key)
            .map(|t| t.authenticated_at.unwrap_or(t.obtained_at));
        Ok(match when {
            Some(t) => format!("{key}@{t}"),
            None => format!("{key}@unknown"),
        })
    }

    pub(crate) fn dialect(&self) -> stet_models::Dialect {
        match self.inner.bank.dialect {
            crate::bank::Dialect::V1_4 => stet_models::Dialect::V1_4,
            _ => stet_models::Dialect::V1_5,
        }
    }

    pub(crate) fn consent(&self) -> Auth {
        Auth::Consent(self.inner.consent_key.clone())
    }

    /// Sends one call: budget first, then the transport; 204 is `None`; error statuses
    /// become the error that says what to do.
    pub(crate) async fn execute(&self, call: &Call) -> Result<Option<StetResponse>, ClientError> {
        let unattended = match &call.unattended {
            Some(u) if !self.psu_present() => Some(u),
            _ => None,
        };
        if let Some((account, endpoint)) = unattended {
            let consent = self.consent_id().await?;
            self.inner
                .budget
                .spend(&consent, account, endpoint, SystemTime::now())?;
        }
        let request = StetRequest {
            method: call.method.clone(),
            target: call.target.clone(),
            body: call.body.clone(),
            auth: call.auth.clone(),
            psu: self.inner.psu.clone(),
            headers: call.headers.clone(),
        };
        let response = self.inner.transport.send(&request).await?;
        match response.status {
            204 => Ok(None),
            200..=299 => Ok(Some(response)),
            403 if call.old_history_from.is_some() => Err(ClientError::ExtendedHistoryConsent {
                date_from: call.old_history_from.unwrap_or(time::Date::MIN),
                days: self.inner.bank.history_without_extended_scope_days,
                scope: self.inner.bank.scopes.extended_history.clone(),
                bank_message: bank_message(&response.body),
            }),
            // A bank that answers its unattended budget with 403 (instead of 429): back-
            // pressure, the account is tried again when the day's calls are given back.
            403 if self.inner.bank.unattended_limit_status == 403
                && let Some((account, endpoint)) = unattended =>
            {
                Err(ClientError::BudgetSpent {
                    account: account.clone(),
                    endpoint: (*endpoint).to_owned(),
                    limit: self.inner.budget.limit(),
                    resets_at: time::OffsetDateTime::now_utc() + time::Duration::days(1),
                    by_bank: true,
                })
            }
            // The PSU's consent itself was refused (revoked, expired at the bank, or not
            // covering this): only a new consent helps, and the transport already tried a
            // refresh on an `invalid_token` 401.
            status @ (401 | 403)
                if call.auth == self.consent() && consent_refused(status, &response) =>
            {
                Err(ClientError::Transport(TransportError::ConsentRequired {
                    profile: self.inner.transport.profile().to_owned(),
                    what: self.inner.consent_key.clone(),
                    detail: format!(
                        " (the bank refused it: HTTP {status}{})",
                        bank_message(&response.body)
                            .map(|m| format!(": {m}"))
                            .unwrap_or_default()
                    ),
                }))
            }
            _ => {
                let err = match response.error_for_status(&call.method) {
                    Ok(_) => return Err(ClientError::InvalidRequest("unreachable status".into())),
                    Err(e) => e,
                };
                // A long Retry-After on an unattended call is the daily budget, not a
                // momentary rate limit (which the transport already waited out).
                if let (Some((account, endpoint)), TransportError::RateLimited { retry_after }) =
                    (unattended, &err)
                    && retry_after.is_none_or(|d| d >= Duration::from_secs(3600))
                {
                    let wait = retry_after.unwrap_or(Duration::from_secs(24 * 3600));
                    return Err(ClientError::BudgetSpent {
                        account: account.clone(),
                        endpoint: (*endpoint).to_owned(),
                        limit: self.inner.budget.limit(),
                        resets_at: time::OffsetDateTime::now_utc() + wait,
                        by_bank: true,
                    });
                }
                Err(err.into())
            }
        }
    }

    /// Sends a call and reads the answer as `T`.
    pub(crate) async fn fetch<T: Response>(&self, call: &Call) -> Result<T, ClientError> {
        let response =
            self.execute(call)
                .await?
                .ok_or_else(|| ClientError::UnreadableBankData {
                    what: call.what(),
                    message: "204 No Content where a resource was expected".to_owned(),
                })?;
        parse(&call.what(), &response.body)
    }

    /// Walks a list from `call.target`, page by page, following `_links.next`.
    pub(crate) fn pages<L: Listing>(
        &self,
        call: Call,
    ) -> BoxStream<'static, Result<ListPage<L::Item>, ClientError>> {
        struct Walk {
            client: StetClient,
            call: Call,
            next: Option<String>,
            seen: HashSet<u64>,
            pages: u64,
        }
        let walk = Walk {
            client: self.clone(),
            next: Some(call.target.clone()),
            call,
            seen: HashSet::new(),
            pages: 0,
        };
        stream::try_unfold(walk, |mut w| async move {
            let Some(target) = w.next.take() else {
                return Ok(None);
            };
            let url = w.client.inner.transport.resolve(&target)?;
            // Hashes only: memory stays one page plus 8 bytes per page read.
            if !w.seen.insert(url_hash(&url)) {
                return Err(ClientError::PaginationLoop {
                    url: url.to_string(),
                    pages: w.pages,
                });
            }
            let mut call = w.call.clone();
            call.target = url.to_string();
            let Some(response) = w.client.execute(&call).await? else {
                return Ok(None); // 204: an empty list
            };
            w.pages += 1;
            let listing: L = parse(&call.what(), &response.body)?;
            let (items, href) = listing.into_page();
            let next = match href {
                Some(href) => Some(
                    resolve_next_link(w.client.inner.transport.api_base(), &response.url, &href)
                        .map_err(|source| ClientError::Link { href, source })?,
                ),
                None => None,
            };
            w.next = next.as_ref().map(Url::to_string);
            let page = ListPage {
                items,
                url: response.url,
                number: w.pages,
                next,
            };
            Ok(Some((page, w)))
        })
        .boxed()
    }

    fn aisp_call(&self, target: String, account: &str, endpoint: &'static str) -> Call {
        let mut call = Call::new(Method::GET, target, self.consent());
        call.unattended = Some((account.to_owned(), endpoint));
        call
    }

    // ---------------------------------------------------------------------------------------
    // AISP

    /// The PSU's accounts, page by page (`GET /accounts`).
    pub fn account_pages(&self) -> BoxStream<'static, Result<Page<AccountResource>, ClientError>> {
        self.pages::<HalAccounts>(self.aisp_call("accounts".to_owned(), "-", "accounts"))
    }

    /// The PSU's accounts, one at a time, following every page.
    pub fn accounts(&self) -> BoxStream<'static, Result<Raw<AccountResource>, ClientError>> {
        items(self.account_pages())
    }

    /// An account's balances (`GET /accounts/{id}/balances`).
    pub async fn balances(&self, account: &str) -> Result<HalBalances, ClientError> {
        let target = format!("accounts/{}/balances", segment(account));
        self.fetch(&self.aisp_call(target, account, "balances"))
            .await
    }

    /// An account's overdraft facility (`GET /accounts/{id}/overdrafts`, STET 1.5 and later).
    pub async fn overdrafts(&self, account: &str) -> Result<HalOverdrafts, ClientError> {
        self.require_v15("overdrafts")?;
        let target = format!("accounts/{}/overdrafts", segment(account));
        self.fetch(&self.aisp_call(target, account, "overdrafts"))
            .await
    }

    /// An account's owners (`GET /accounts/{id}/owners`, STET 1.5 and later).
    pub async fn owners(&self, account: &str) -> Result<HalOwners, ClientError> {
        self.require_v15("owners")?;
        let target = format!("accounts/{}/owners", segment(account));
        self.fetch(&self.aisp_call(target, account, "owners")).await
    }

    /// The connected PSU's identity (`GET /end-user-identity`).
    pub async fn end_user_identity(&self) -> Result<HalEndUserIdentity, ClientError> {
        self.fetch(&self.aisp_call("end-user-identity".to_owned(), "-", "end-user-identity"))
            .await
    }

    /// The PSU's trusted beneficiaries, page by page (`GET /trusted-beneficiaries`).
    pub fn trusted_beneficiary_pages(
        &self,
    ) -> BoxStream<'static, Result<Page<Beneficiary>, ClientError>> {
        self.pages::<HalBeneficiaries>(self.aisp_call(
            "trusted-beneficiaries".to_owned(),
            "-",
            "trusted-beneficiaries",
        ))
    }

    /// The PSU's trusted beneficiaries, one at a time.
    pub fn trusted_beneficiaries(
        &self,
    ) -> BoxStream<'static, Result<Raw<Beneficiary>, ClientError>> {
        items(self.trusted_beneficiary_pages())
    }

    /// Tells the bank which accounts the PSU gives access to, and for what (`PUT /consents`,
    /// the "mixed" consent model). Banks whose profile says `put_consents = false` take the
    /// consent during the redirect instead: this is then refused locally.
    pub async fn put_consents(&self, access: &Access) -> Result<(), ClientError> {
        if !self.inner.bank.put_consents {
            return Err(ClientError::Unsupported {
                operation: "PUT /consents",
                bank: self.inner.bank.name.clone(),
                why: "the bank takes the PSU's choice of accounts during the login redirect"
                    .to_owned(),
            });
        }
        let mut call = self.aisp_call("consents".to_owned(), "-", "consents");
        call.method = Method::PUT;
        call.body = Some(self.body(access)?);
        self.execute(&call).await.map(drop)
    }

    /// An account's transactions, page by page. Date ranges longer than the bank's
    /// `max_history_days_per_request` are split into windows, fetched newest first and merged
    /// without duplicates; see the crate manual.
    pub fn transaction_pages(
        &self,
        account: &str,
        query: &TransactionQuery,
    ) -> BoxStream<'static, Result<Page<Transaction>, ClientError>> {
        self.transaction_walk::<HalTransactions>(account, query)
    }

    /// An account's transactions, page by page, each kept as the JSON text the bank sent and
    /// not read as a model: the same walk as [`transaction_pages`] (windows included), at a
    /// fraction of the cost, for exports that pass transactions through. The page itself is
    /// read (it must be JSON, its `_links` are followed); an item is read as a transaction
    /// only where the windowed merge needs its date or reference.
    ///
    /// [`transaction_pages`]: StetClient::transaction_pages
    pub fn transaction_json_pages(
        &self,
        account: &str,
        query: &TransactionQuery,
    ) -> BoxStream<'static, Result<JsonPage, ClientError>> {
        self.transaction_walk::<HalTransactionsJson>(account, query)
    }

    fn transaction_walk<L>(
        &self,
        account: &str,
        query: &TransactionQuery,
    ) -> BoxStream<'static, Result<ListPage<L::Item>, ClientError>>
    where
        L: Listing,
        L::Item: WindowItem,
    {
        struct Merge<I> {
            client: StetClient,
            account: String,
            query: TransactionQuery,
            windows: VecDeque<(Option<time::Date>, Option<time::Date>)>,
            split: bool,
            current: Option<BoxStream<'static, Result<ListPage<I>, ClientError>>>,
            lower: Option<time::Date>,
            previous_keys: HashSet<String>,
            boundary_keys: HashSet<String>,
        }
        let windows = self.windows(query);
        let merge = Merge {
            client: self.clone(),
            account: account.to_owned(),
            query: query.clone(),
            split: windows.len() > 1,
            windows: windows.into(),
            current: None,
            lower: None,
            previous_keys: HashSet::new(),
            boundary_keys: HashSet::new(),
        };
        stream::try_unfold(merge, |mut m| async move {
            loop {
                let current = match &mut m.current {
                    Some(c) => c,
                    None => {
                        let Some((from, to)) = m.windows.pop_front() else {
                            return Ok(None);
                        };
                        m.previous_keys = std::mem::take(&mut m.boundary_keys);
                        m.lower = from;
                        let call = m.client.transactions_call(&m.account, &m.query, from, to);
                        m.current.insert(m.client.pages::<L>(call))
                    }
                };
                match current.next().await {
                    None => m.current = None,
                    Some(Err(e)) => return Err(e),
                    Some(Ok(mut page)) => {
                        if m.split {
                            // Windows do not overlap when the bank reads dateTo as exclusive;
                            // one that reads it as inclusive repeats the boundary day, which
                            // is all that is remembered (not the whole window).
                            let (date_type, lower) = (m.query.date_type, m.lower);
                            let mut kept = Vec::with_capacity(page.items.len());
                            for t in std::mem::take(&mut page.items) {
                                let (key, near) = t
                                    .with_transaction(|tx| {
                                        (tx_key(tx), near_boundary(tx, date_type, lower))
                                    })
                                    .map_err(|message| ClientError::UnreadableBankData {
                                        what: format!("GET {}", page.url),
                                        message,
                                    })?;
                                let key = key.unwrap_or_else(|| t.text().to_owned());
                                if m.previous_keys.contains(&key) {
                                    continue;
                                }
                                if near {
                                    m.boundary_keys.insert(key);
                                }
                                kept.push(t);
                            }
                            page.items = kept;
                        }
                        return Ok(Some((page, m)));
                    }
                }
            }
        })
        .boxed()
    }

    /// An account's transactions, one at a time (see [`transaction_pages`]).
    ///
    /// [`transaction_pages`]: StetClient::transaction_pages
    pub fn transactions(
        &self,
        account: &str,
        query: &TransactionQuery,
    ) -> BoxStream<'static, Result<Raw<Transaction>, ClientError>> {
        items(self.transaction_pages(account, query))
    }

    /// The windows to ask for, newest first, as (`dateFrom`, `dateTo`).
    fn windows(&self, query: &TransactionQuery) -> Vec<(Option<time::Date>, Option<time::Date>)> {
        let Some(from) = query.date_from else {
            return vec![(None, query.date_to)];
        };
        let to = query.date_to.unwrap_or_else(|| {
            let today = time::OffsetDateTime::now_utc().date();
            today.next_day().unwrap_or(today)
        });
        let windows = self.inner.bank.history_windows(from, to);
        if windows.len() <= 1 {
            return vec![(Some(from), query.date_to)];
        }
        windows
            .into_iter()
            .rev()
            .map(|(a, b)| (Some(a), Some(b)))
            .collect()
    }

    fn transactions_call(
        &self,
        account: &str,
        query: &TransactionQuery,
        from: Option<time::Date>,
        to: Option<time::Date>,
    ) -> Call {
        let bank = &self.inner.bank;
        let day = |d: time::Date| bank.format_datetime(d.midnight().assume_utc());
        let mut params: Vec<(&str, String)> = Vec::new();
        if let Some(f) = from {
            params.push(("dateFrom", day(f)));
        }
        if let Some(t) = to {
            params.push(("dateTo", day(t)));
        }
        if let Some(dt) = query.date_type {
            params.push(("dateType", dt.as_str().to_owned()));
        }
        if let Some(r) = &query.after_entry_reference {
            params.push((bank.dialect.transactions_cursor_param(), r.clone()));
        }
        if let Some(r) = &query.entry_reference_to
            && bank.dialect != crate::bank::Dialect::V1_4
        {
            params.push(("entryReferenceto", r.clone()));
        }
        let path = format!("accounts/{}/transactions", segment(account));
        let mut call = self.aisp_call(with_query(path, &params), account, "transactions");
        let today = time::OffsetDateTime::now_utc().date();
        let limit =
            today - time::Duration::days(i64::from(bank.history_without_extended_scope_days));
        call.old_history_from = from.filter(|f| *f < limit);
        call
    }

    /// Runs `f` for each account, at most [`concurrency`](ClientOptions::concurrency) at a
    /// time over the shared connection pool, and yields `(account, result)` in the order
    /// given. One account's failure does not stop the others.
    pub fn for_each_account<T, F, Fut>(
        &self,
        accounts: Vec<String>,
        f: F,
    ) -> BoxStream<'static, (String, Result<T, ClientError>)>
    where
        T: Send + 'static,
        F: Fn(StetClient, String) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, ClientError>> + Send + 'static,
    {
        let client = self.clone();
        let n = self.concurrency();
        stream::iter(accounts)
            .map(move |account| {
                let fut = f(client.clone(), account.clone());
                async move { (account, fut.await) }
            })
            .buffered(n)
            .boxed()
    }

    /// The balances of each account, fetched concurrently, in the order given.
    pub async fn balances_of(
        &self,
        accounts: Vec<String>,
    ) -> Vec<(String, Result<HalBalances, ClientError>)> {
        self.for_each_account(accounts, |client, account| async move {
            client.balances(&account).await
        })
        .collect()
        .await
    }

    /// The transactions of each account, fetched concurrently, in the order given. Each
    /// account's list is collected in memory: for exports, prefer [`transactions`] per account.
    ///
    /// [`transactions`]: StetClient::transactions
    pub async fn transactions_of(
        &self,
        accounts: Vec<String>,
        query: &TransactionQuery,
    ) -> Vec<(String, Result<Vec<Raw<Transaction>>, ClientError>)> {
        let query = query.clone();
        self.for_each_account(accounts, move |client, account| {
            let query = query.clone();
            async move { client.transactions(&account, &query).try_collect().await }
        })
        .collect()
        .await
    }

    pub(crate) fn require_v15(&self, operation: &'static str) -> Result<(), ClientError> {
        if self.inner.bank.dialect == crate::bank::Dialect::V1_4 {
            return Err(ClientError::Unsupported {
                operation,
                bank: self.inner.bank.name.clone(),
                why: "STET 1.4 has no such operation".to_owned(),
            });
        }
        Ok(())
    }

    /// A request body in the bank's dialect.
    pub(crate) fn body<T: serde::Serialize>(&self, value: &T) -> Result<Vec<u8>, ClientError> {
        stet_models::to_json_vec(value, self.dialect())
            .map_err(|e| ClientError::InvalidRequest(format!("cannot write the body: {e}")))
    }
}

/// Reads a response body as `T`, or says which answer could not be read.
pub(crate) fn parse<T: Response>(what: &str, body: &[u8]) -> Result<T, ClientError> {
    stet_models::parse_response(body).map_err(|e| ClientError::UnreadableBankData {
        what: what.to_owned(),
        // A page of markup where JSON was due is a web page put in front of the API (a
        // gateway's maintenance or login page): say so rather than quote a JSON parser.
        message: if body.trim_ascii_start().starts_with(b"<") {
            "it is a web page (HTML or XML), not JSON: something in front of the bank's API \
             answered instead of it, often for maintenance"
                .to_owned()
        } else {
            e.to_string()
        },
    })
}

/// Whether a 401 or 403 refuses the token rather than the request: every 403, and a 401 that
/// says `invalid_token` (a 401 for a bad signature or certificate is not the PSU's to fix).
fn consent_refused(status: u16, response: &StetResponse) -> bool {
    status == 403
        || response
            .headers
            .get_all("www-authenticate")
            .iter()
            .any(|v| v.to_str().is_ok_and(|s| s.contains("invalid_token")))
}

/// The items of a page stream, one page in memory at a time.
pub(crate) fn items<T: Send + 'static>(
    pages: BoxStream<'static, Result<Page<T>, ClientError>>,
) -> BoxStream<'static, Result<Raw<T>, ClientError>> {
    pages
        .map_ok(|page| stream::iter(page.items.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
}

/// What identifies a transaction across windows: its entry reference, its resource id, or
/// failing both (`None`) its whole JSON text.
fn tx_key(t: &Transaction) -> Option<String> {
    t.entry_reference.clone().or_else(|| t.resource_id.clone())
}

/// Whether `t` falls on the day before or the day of a window's lower boundary (the only days
/// an inclusive `dateTo` can repeat in the next, older window). Undated ones count.
fn near_boundary(t: &Transaction, date_type: Option<DateType>, lower: Option<time::Date>) -> bool {
    let Some(lower) = lower else { return false };
    let date = match date_type {
        Some(DateType::TransactionDate) => t.transaction_date.as_ref(),
        _ => t.booking_date.as_ref().or(t.transaction_date.as_ref()),
    };
    match date {
        None => true,
        Some(d) => {
            let d = d.date();
            d <= lower.next_day().unwrap_or(lower) && d >= lower.previous_day().unwrap_or(lower)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_pages_keep_each_transaction_as_sent_and_only_objects() {
        let body = br#"{"transactions": [ {"status": "BOOK", "x": 1.10},
            {"status":"PDNG"} ], "_links": {"next": {"href": "?page=2"}}}"#;
        let page: HalTransactionsJson = parse("GET t", body).unwrap();
        let (items, next) = page.into_page();
        let texts: Vec<&str> = items.iter().map(|i| i.get()).collect();
        assert_eq!(
            texts,
            [r#"{"status": "BOOK", "x": 1.10}"#, r#"{"status":"PDNG"}"#]
        );
        assert_eq!(next.as_deref(), Some("?page=2"));

        let err = parse::<HalTransactionsJson>("GET t", br#"{"transactions": [{}, 2]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("transaction 2 is `2`, not an object"), "{err}");
        assert!(err.contains("GET t"), "{err}");
    }

    #[test]
    fn segments_and_queries_are_encoded() {
        assert_eq!(segment("AB 12/3?x"), "AB%2012%2F3%3Fx");
        assert_eq!(segment("ACC0001-000001"), "ACC0001-000001");
        assert_eq!(
            with_query(
                "accounts/A/transactions".into(),
                &[("dateFrom", "2025-01-01T00:00:00.000+01:00".into())]
            ),
            "accounts/A/transactions?dateFrom=2025-01-01T00%3A00%3A00.000%2B01%3A00"
        );
    }
}
