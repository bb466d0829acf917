//! The fourteen STET operations.

use std::sync::atomic::Ordering;

use rust_decimal::Decimal;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use stet_models::{Dialect, StetDateTime};
use time::{Duration, OffsetDateTime, UtcOffset};

use crate::check_faults::CheckFault;
use crate::data::{Account, BankData, Tx};
use crate::server::{Reply, Req};
use crate::state::{Grant, Payment, State};

/// Transactions older than this need `extended_transaction_history`.
const HISTORY_DAYS: i64 = 90;
/// A payment request above this total is rejected at confirmation (the RJCT rule).
const PAYMENT_LIMIT: Decimal = Decimal::from_parts(500_000, 0, 0, false, 2);

type Answer = Result<Reply, Reply>;

fn paris() -> UtcOffset {
    UtcOffset::from_hms(1, 0, 0).unwrap_or(UtcOffset::UTC)
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A date as `dialect` writes it: 1.5 date-time at midnight Paris, 1.4 a date.
fn day_in(dialect: Dialect, d: time::Date) -> String {
    match dialect {
        Dialect::V1_4 => d.to_string(),
        _ => rfc3339(d.midnight().assume_offset(paris())),
    }
}

/// An instant as `dialect` writes it: 1.5 date-time, 1.4 its date.
fn instant_in(dialect: Dialect, t: OffsetDateTime) -> String {
    match dialect {
        Dialect::V1_4 => t.date().to_string(),
        _ => rfc3339(t),
    }
}

/// A transaction as JSON, before the models read it.
fn tx_value(dialect: Dialect, t: &Tx) -> Value {
    let remittance = match dialect {
        Dialect::V1_4 => json!([t.label]),
        _ => json!({"unstructured": [t.label]}),
    };
    let mut v = json!({
        "resourceId": t.entry_reference,
        "entryReference": t.entry_reference,
        "transactionAmount": {"amount": t.amount.to_string(), "currency": t.currency},
        "creditDebitIndicator": if t.credit { "CRDT" } else { "DBIT" },
        "status": if t.booked { "BOOK" } else { "PDNG" },
        "transactionDate": instant_in(dialect, t.transaction_date),
        "remittanceInformation": remittance,
    });
    if t.booked {
        v["bookingDate"] = json!(day_in(dialect, t.booking_date));
        v["valueDate"] = json!(day_in(dialect, t.booking_date));
    } else {
        v["expectedBookingDate"] = json!(day_in(dialect, t.booking_date));
    }
    v
}

/// A transaction as a page lists it: read as the model (so what is sent is what the models
/// write), then written in `dialect`.
fn tx_text(dialect: Dialect, t: &Tx) -> Result<String, String> {
    let model: stet_models::Transaction =
        serde_json::from_value(tx_value(dialect, t)).map_err(|e| e.to_string())?;
    stet_models::to_json_string(&model, dialect).map_err(|e| e.to_string())
}

/// Writes every transaction once, as pages will list it. Pages are then spliced from these
/// texts: building each page through a `Value` and the models took as much CPU as the client
/// fetching it, on the same cores, in benchmarks. A transaction that cannot be written keeps
/// no text; its pages answer 500, saying why.
pub(crate) fn cache_transactions(data: &mut BankData, dialect: Dialect) {
    // A million transactions take seconds on one core: the accounts are shared out among
    // the cores.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = data.accounts.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        for accounts in data.accounts.chunks_mut(per_thread) {
            scope.spawn(move || {
                // Only what has no text yet: after `advance`, the transactions it changed.
                for t in accounts
                    .iter_mut()
                    .flat_map(|a| a.transactions.iter_mut())
                    .filter(|t| t.json.is_none())
                {
                    t.json = tx_text(dialect, t).ok().map(String::into_boxed_str);
                }
            });
        }
    });
}

/// A `HalTransactions` body from transactions already written and the page's links: the
/// bytes the models write for the same page (`_links` after the items, no whitespace).
fn transactions_body<'a>(
    items: impl Iterator<Item = &'a str>,
    links: &stet_models::TransactionsLinks,
    dialect: Dialect,
) -> Result<Vec<u8>, serde_json::Error> {
    let links = stet_models::to_json_vec(links, dialect)?;
    let mut body = Vec::with_capacity(64 * 1024);
    body.extend_from_slice(br#"{"transactions":["#);
    for (i, item) in items.enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(item.as_bytes());
    }
    body.extend_from_slice(br#"],"_links":"#);
    body.extend_from_slice(&links);
    body.push(b'}');
    Ok(body)
}

impl State {
    fn dialect(&self) -> Dialect {
        self.config.dialect
    }

    fn is_v14(&self) -> bool {
        self.dialect() == Dialect::V1_4
    }

    /// A JSON value read as a model (so that what we send is what the models write).
    fn model<T: DeserializeOwned>(&self, req: &Req, value: Value) -> Result<T, Reply> {
        serde_json::from_value(value).map_err(|e| {
            self.error(
                500,
                &req.path,
                &format!("the sandbox built an invalid resource: {e}"),
                None,
            )
        })
    }

    fn body<T: Serialize>(&self, req: &Req, status: u16, value: &T) -> Answer {
        self.written(req, status, stet_models::to_json_vec(value, self.dialect()))
    }

    /// A JSON answer from its serialized body, or a 500 that says why it could not be written.
    fn written(
        &self,
        req: &Req,
        status: u16,
        body: Result<Vec<u8>, impl std::fmt::Display>,
    ) -> Answer {
        body.map(|bytes| Reply::json(status, bytes)).map_err(|e| {
            self.error(
                500,
                &req.path,
                &format!("cannot write the response: {e}"),
                None,
            )
        })
    }

    fn read_body<T: DeserializeOwned>(&self, req: &Req, schema: &str) -> Result<T, Reply> {
        if req.body.is_empty() {
            return Err(self.error(
                400,
                &req.path,
                &format!("a {schema} body is required"),
                None,
            ));
        }
        serde_json::from_slice(&req.body).map_err(|e| {
            self.error(
                400,
                &req.path,
                &format!("the body is not a valid {schema}: {e}"),
                None,
            )
        })
    }

    /// A date as this dialect writes it: 1.5 date-time at midnight Paris, 1.4 a date.
    fn day(&self, d: time::Date) -> String {
        day_in(self.dialect(), d)
    }

    /// `first`, `prev`, `next`, `last` (and `self`) for page `page` of `pages`, keeping the
    /// request's other query parameters.
    fn page_links(&self, req: &Req, rel: &str, page: usize, pages: usize) -> Value {
        let others: Vec<(String, String)> = req
            .query_pairs()
            .into_iter()
            .filter(|(k, _)| k != "page")
            .collect();
        let href = |n: usize| {
            let mut q = form_urlencoded::Serializer::new(String::new());
            for (k, v) in &others {
                q.append_pair(k, v);
            }
            if n > 1 {
                q.append_pair("page", &n.to_string());
            }
            let q = q.finish();
            let target = if q.is_empty() {
                rel.to_owned()
            } else {
                format!("{rel}?{q}")
            };
            json!({"href": self.link(&target)})
        };
        let mut links = json!({"self": href(page), "first": href(1), "last": href(pages)});
        if page > 1 {
            links["prev"] = href(page - 1);
        }
        if page < pages {
            links["next"] = href(page + 1);
        }
        links
    }

    /// The slice of `total` items for the request's `page`, and the page number and count.
    fn paginate(
        &self,
        req: &Req,
        total: usize,
    ) -> Result<(std::ops::Range<usize>, usize, usize), Reply> {
        let size = self.config.page_size;
        let pages = total.div_ceil(size).max(1);
        let page = match req.query_param("page") {
            None => 1,
            Some(p) => match p.parse::<usize>() {
                Ok(n) if n >= 1 && n <= pages => n,
                _ => {
                    return Err(self.error(
                        400,
                        &req.path,
                        &format!("page `{p}` is out of range: pages 1 to {pages}"),
                        None,
                    ));
                }
            },
        };
        let start = (page - 1) * size;
        Ok((start..(start + size).min(total), page, pages))
    }

    /// The data now and the index of account `id` in it.
    /// Another PSU's account is as unknown as an account that does not exist.
    fn account_or_404(
        &self,
        req: &Req,
        id: &str,
        psu: usize,
    ) -> Result<(std::sync::Arc<BankData>, usize), Reply> {
        let data = self.data_of(psu);
        data.accounts
            .iter()
            .position(|a| a.id == id)
            .map(|i| (data.clone(), i))
            .ok_or_else(|| self.error(404, &req.path, &format!("no account `{id}`"), None))
    }

    /// Routes an API request (path relative to the API base) after the signature check.
    pub(crate) async fn api(&self, req: &Req, rest: &str) -> Reply {
        let segments: Vec<&str> = rest.trim_matches('/').split('/').collect();
        let v15_only = |op: &str| {
            self.error(
                404,
                &req.path,
                &format!("{op} does not exist in STET 1.4 (this sandbox speaks 1.4)"),
                None,
            )
        };
        let result = match (req.method.as_str(), segments.as_slice()) {
            ("GET", ["accounts"]) => self.accounts(req),
            ("GET", ["accounts", id, "balances"]) => self.balances(req, id),
            ("GET", ["accounts", id, "transactions"]) => self.transactions(req, id),
            ("GET", ["accounts", _, "overdrafts"]) if self.is_v14() => Err(v15_only("overdrafts")),
            ("GET", ["accounts", id, "overdrafts"]) => self.overdrafts(req, id),
            ("GET", ["accounts", _, "owners"]) if self.is_v14() => Err(v15_only("owners")),
            ("GET", ["accounts", id, "owners"]) => self.owners(req, id),
            ("PUT", ["consents"]) => self.consents(req),
            ("GET", ["end-user-identity"]) => self.identity(req),
            ("GET", ["trusted-beneficiaries"]) => self.beneficiaries(req),
            ("POST", ["funds-confirmations"]) => self.funds(req),
            ("POST", ["payment-requests"]) => self.create_payment(req),
            ("GET", ["payment-requests", id]) => self.get_payment(req, id),
            ("PUT", ["payment-requests", id]) => self.cancel_payment(req, id),
            ("POST", ["payment-requests", id, "confirmation"]) => self.confirm_payment(req, id),
            // STET 1.4.x banks name the confirmation `o-confirmation`.
            ("POST", ["payment-requests", id, "o-confirmation"]) if self.is_v14() => {
                self.confirm_payment(req, id)
            }
            ("GET", ["payment-requests", _, "transactions"]) if self.is_v14() => {
                Err(v15_only("payment transactions"))
            }
            ("GET", ["payment-requests", id, "transactions"]) => self.payment_transactions(req, id),
            _ => Err(self.error(
                404,
                &req.path,
                &format!("no STET operation {} {}", req.method, rest),
                None,
            )),
        };
        result.unwrap_or_else(|e| e)
    }

    fn aisp(
        &self,
        req: &Req,
        account: &str,
        endpoint: &'static str,
    ) -> Result<crate::state::Token, Reply> {
        let token = self.bearer(req, "aisp")?;
        if token.grant != Grant::Code {
            return Err(self.error(
                403,
                &req.path,
                "AISP access needs a token from the PSU's authorization code grant",
                None,
            ));
        }
        // Endpoints of no account count per PSU.
        let psu_login;
        let account = if account == "-" {
            psu_login = self.psu_login(token.psu);
            psu_login.as_str()
        } else {
            account
        };
        self.psu_presence(req, account, endpoint)?;
        Ok(token)
    }

    fn account_json(&self, a: &Account) -> Value {
        let rel = format!("/accounts/{}", a.id);
        let mut links = json!({
            "balances": {"href": self.link(&format!("{rel}/balances"))},
            "transactions": {"href": self.link(&format!("{rel}/transactions"))},
        });
        if !self.is_v14() {
            links["overdrafts"] = json!({"href": self.link(&format!("{rel}/overdrafts"))});
            links["owners"] = json!({"href": self.link(&format!("{rel}/owners"))});
        }
        json!({
            "resourceId": a.id,
            "bicFi": "SANDFRPPXXX",
            "accountId": {"iban": a.iban, "currency": a.currency},
            "name": a.name,
            "details": a.product,
            "usage": "PRIV",
            "cashAccountType": "CACC",
            "product": a.product,
            "currency": a.currency,
            "psuStatus": "Account Holder",
            "_links": links,
        })
    }

    fn accounts(&self, req: &Req) -> Answer {
        let token = self.aisp(req, "-", "accounts")?;
        let data = self.data_of(token.psu);
        let accounts = &data.accounts;
        if accounts.is_empty() {
            return Ok(Reply::new(204));
        }
        let (range, page, pages) = self.paginate(req, accounts.len())?;
        let items: Vec<Value> = accounts[range]
            .iter()
            .map(|a| self.account_json(a))
            .collect();
        let mut links = self.page_links(req, "/accounts", page, pages);
        links["endUserIdentity"] = json!({"href": self.link("/end-user-identity")});
        links["beneficiaries"] = json!({"href": self.link("/trusted-beneficiaries")});
        let mut hal = json!({"accounts": items, "_links": links});
        // `connectedPsu` is a 1.4.x field (and 1.6's); 1.5.0.43 has no such property.
        if self.is_v14() {
            hal["connectedPsu"] = json!(self.psu_login(token.psu));
        }
        let hal: stet_models::HalAccounts = self.model(req, hal)?;
        self.body(req, 200, &hal)
    }

    fn balances(&self, req: &Req, id: &str) -> Answer {
        let token = self.aisp(req, id, "balances")?;
        let (data, i) = self.account_or_404(req, id, token.psu)?;
        let a = &data.accounts[i];
        let rel = format!("/accounts/{id}");
        let reference = self.day(data.today);
        let hal: stet_models::HalBalances = self.model(
            req,
            json!({
                "balances": [
                    {"name": "Solde comptable", "balanceType": "CLBD",
                     "balanceAmount": {"amount": a.booked.to_string(), "currency": a.currency},
                     "referenceDate": reference},
                    {"name": "Solde prévisionnel", "balanceType": "XPCD",
                     "balanceAmount": {"amount": a.expected.to_string(), "currency": a.currency},
                     "referenceDate": reference},
                ],
                "_links": {
                    "self": {"href": self.link(&format!("{rel}/balances"))},
                    "parent-list": {"href": self.link("/accounts")},
                    "transactions": {"href": self.link(&format!("{rel}/transactions"))},
                },
            }),
        )?;
        self.body(req, 200, &hal)
    }

    fn transactions(&self, req: &Req, id: &str) -> Answer {
        let token = self.aisp(req, id, "transactions")?;
        let (data, i) = self.account_or_404(req, id, token.psu)?;
        let a = &data.accounts[i];
        let parse = |name: &str| -> Result<Option<StetDateTime>, Reply> {
            match req.query_param(name) {
                None => Ok(None),
                Some(v) => v.parse::<StetDateTime>().map(Some).map_err(|e| {
                    self.error(
                        400,
                        &req.path,
                        &format!("{name} `{v}` is not a date or date-time: {e}"),
                        None,
                    )
                }),
            }
        };
        let from = parse("dateFrom")?;
        let to = parse("dateTo")?.filter(|_| !self.config.faults.breaks(CheckFault::IgnoreDateTo));
        let by_booking = match req.query_param("dateType").as_deref() {
            None | Some("bookingDate") => true,
            Some("transactionDate") => false,
            Some(other) => {
                return Err(self.error(
                    400,
                    &req.path,
                    &format!("dateType `{other}` is not bookingDate or transactionDate"),
                    None,
                ));
            }
        };
        let limit = data.today - Duration::days(HISTORY_DAYS);
        let extended = token.has("extended_transaction_history");
        if let Some(f) = from
            && f.date() < limit
            && !extended
            && !self.config.faults.breaks(CheckFault::HistoryUnlimited)
        {
            return Err(self.error(
                403,
                &req.path,
                &format!(
                    "dateFrom {} is more than {HISTORY_DAYS} days back: that needs the extended_transaction_history scope",
                    f.date()
                ),
                None,
            ));
        }
        let after = req
            .query_param("entryReferenceFrom")
            .or_else(|| req.query_param("afterEntryReference"));
        let until = req.query_param("entryReferenceto");
        // A bound is a date (compared with the transaction's local date) or an instant
        // (compared in time); each is worked out once, not once per transaction.
        let bound = |b: Option<StetDateTime>| {
            b.map(|b| match b {
                StetDateTime::Date(d) => Err(d),
                other => Ok(other.to_offset_date_time(paris()).unix_timestamp_nanos()),
            })
        };
        let ignored_from = from.filter(|_| !self.config.faults.breaks(CheckFault::IgnoreDateFrom));
        let (from_bound, to_bound) = (bound(ignored_from), bound(to));
        let selected: Vec<&Tx> = a
            .transactions
            .iter()
            .filter(|t| {
                // The booking date counts from midnight Paris, when there is one.
                let (when_ns, when_date) = if by_booking && t.booked {
                    (t.booking_ns, t.booking_date)
                } else {
                    (t.transaction_ns, t.transaction_date.date())
                };
                let ok_from = from_bound.is_none_or(|b| match b {
                    Err(d) => when_date >= d,
                    Ok(ns) => when_ns >= ns,
                });
                let ok_to = to_bound.is_none_or(|b| match b {
                    Err(d) => when_date < d,
                    Ok(ns) => when_ns < ns,
                });
                let recent =
                    extended || ignored_from.is_some() || t.transaction_date.date() >= limit;
                let ok_after = after
                    .as_deref()
                    .is_none_or(|r| t.entry_reference.as_str() > r);
                let ok_until = until
                    .as_deref()
                    .is_none_or(|r| t.entry_reference.as_str() <= r);
                ok_from && ok_to && recent && ok_after && ok_until
            })
            .collect();
        if selected.is_empty() {
            return Ok(Reply::new(204));
        }
        let (range, page, pages) = self.paginate(req, selected.len())?;
        let rel = format!("/accounts/{id}");
        let mut links = self.page_links(req, &format!("{rel}/transactions"), page, pages);
        links["parent-list"] = json!({"href": self.link("/accounts")});
        links["balances"] = json!({"href": self.link(&format!("{rel}/balances"))});
        let links: stet_models::TransactionsLinks = self.model(req, links)?;
        let items = selected[range]
            .iter()
            .map(|t| match &t.json {
                Some(text) => Ok(std::borrow::Cow::Borrowed(&**text)),
                None => tx_text(self.dialect(), t).map(std::borrow::Cow::Owned),
            })
            .collect::<Result<Vec<_>, String>>()
            .map_err(|e| {
                self.error(
                    500,
                    &req.path,
                    &format!("the sandbox built an invalid resource: {e}"),
                    None,
                )
            })?;
        let body = transactions_body(items.iter().map(|t| &**t), &links, self.dialect());
        self.written(req, 200, body)
    }

    fn overdrafts(&self, req: &Req, id: &str) -> Answer {
        let token = self.aisp(req, id, "overdrafts")?;
        let (data, i) = self.account_or_404(req, id, token.psu)?;
        let a = &data.accounts[i];
        let hal: stet_models::HalOverdrafts = self.model(
            req,
            json!({
                "overdrafts": {"allowedAmount": {"amount": a.overdraft.to_string(), "currency": a.currency}},
                "_links": {
                    "self": {"href": self.link(&format!("/accounts/{id}/overdrafts"))},
                    "parent-list": {"href": self.link("/accounts")},
                },
            }),
        )?;
        self.body(req, 200, &hal)
    }

    fn owners(&self, req: &Req, id: &str) -> Answer {
        let token = self.aisp(req, id, "owners")?;
        self.account_or_404(req, id, token.psu)?;
        let hal: stet_models::HalOwners = self.model(
            req,
            json!({
                "identities": [{"fullName": "Camille Durand", "namePrefix": "MADM",
                                "firstName": "Camille", "lastName": "Durand"}],
                "_links": {
                    "self": {"href": self.link(&format!("/accounts/{id}/owners"))},
                    "parent-list": {"href": self.link("/accounts")},
                },
            }),
        )?;
        self.body(req, 200, &hal)
    }

    fn consents(&self, req: &Req) -> Answer {
        let token = self.aisp(req, "-", "consents")?;
        let access: stet_models::Access = self.read_body(req, "Access")?;
        for id in access
            .balances
            .iter()
            .chain(&access.transactions)
            .chain(&access.owners)
            .chain(&access.overdrafts)
        {
            if let Some(iban) = &id.iban
                && !self
                    .data_of(token.psu)
                    .accounts
                    .iter()
                    .any(|a| &a.iban == iban)
            {
                return Err(self.error(
                    400,
                    &req.path,
                    &format!("the consent names IBAN {iban}, which is not an account of this PSU"),
                    None,
                ));
            }
        }
        self.lock().access = Some(access);
        Ok(Reply::new(201))
    }

    fn identity(&self, req: &Req) -> Answer {
        let token = self.aisp(req, "-", "end-user-identity")?;
        let mut hal = json!({
            "identity": {"fullName": "Camille Durand", "namePrefix": "MADM",
                         "firstName": "Camille", "lastName": "Durand"},
            "_links": {
                "self": {"href": self.link("/end-user-identity")},
                "accounts": {"href": self.link("/accounts")},
                "trustedBeneficiaries": {"href": self.link("/trusted-beneficiaries")},
            },
        });
        // As for the accounts: `connectedPsu` is not in 1.5.0.43.
        if self.is_v14() {
            hal["connectedPsu"] = json!(self.psu_login(token.psu));
        }
        let hal: stet_models::HalEndUserIdentity = self.model(req, hal)?;
        self.body(req, 200, &hal)
    }

    fn beneficiaries(&self, req: &Req) -> Answer {
        let token = self.aisp(req, "-", "trusted-beneficiaries")?;
        let data = self.data_of(token.psu);
        let all = &data.beneficiaries;
        if all.is_empty() {
            return Ok(Reply::new(204));
        }
        let (range, page, pages) = self.paginate(req, all.len())?;
        let items: Vec<Value> = all[range]
            .iter()
            .map(|b| {
                json!({
                    "id": b.id,
                    "isTrusted": true,
                    "creditorAgent": {"bicFi": "BNPAFRPPXXX"},
                    "creditor": {"name": b.name},
                    "creditorAccount": {"iban": b.iban},
                })
            })
            .collect();
        let links = self.page_links(req, "/trusted-beneficiaries", page, pages);
        let hal: stet_models::HalBeneficiaries =
            self.model(req, json!({"beneficiaries": items, "_links": links}))?;
        self.body(req, 200, &hal)
    }

    fn funds(&self, req: &Req) -> Answer {
        let scope = if self.is_v14() { "piisp" } else { "cbpii" };
        let token = match self.bearer(req, scope) {
            Ok(t) => t,
            // 1.4 banks that moved on accept the 1.5 name too.
            Err(e) if self.is_v14() => self.bearer(req, "cbpii").map_err(|_| e)?,
            Err(e) => return Err(e),
        };
        let request: stet_models::PaymentCoverageRequestResource =
            self.read_body(req, "PaymentCoverageRequestResource")?;
        let Some(iban) = request.account_id.iban.as_deref() else {
            return Err(self.error(400, &req.path, "accountId.iban is required", None));
        };
        let data = self.data_of(token.psu);
        let Some(account) = data.accounts.iter().find(|a| a.iban == iban) else {
            return Err(self.error(
                404,
                &req.path,
                &format!("no account with IBAN {iban}"),
                None,
            ));
        };
        let Some(amount) = &request.instructed_amount else {
            return Err(self.error(400, &req.path, "instructedAmount is required", None));
        };
        let wanted: Decimal = amount.amount.into();
        let result = amount.currency == "EUR" && wanted <= account.expected + account.overdraft;
        let report = stet_models::HalPaymentCoverageReport {
            request,
            result,
            links: Some(stet_models::PaymentCoverageReportLinks {
                self_: Some(stet_models::GenericLink {
                    href: self.link("/funds-confirmations"),
                    templated: None,
                }),
            }),
        };
        self.body(req, 200, &report)
    }

    fn create_payment(&self, req: &Req) -> Answer {
        let token = self.bearer(req, "pisp")?;
        if token.grant != Grant::ClientCredentials
            && !self.config.faults.breaks(CheckFault::IgnoreScopes)
        {
            return Err(self.error(
                403,
                &req.path,
                "create payment requests with a client-credentials token (scope pisp)",
                None,
            ));
        }
        let mut resource: stet_models::PaymentRequestResource =
            self.read_body(req, "PaymentRequestResource")?;
        if resource.credit_transfer_transaction.is_empty() {
            return Err(self.error(400, &req.path, "creditTransferTransaction is empty", None));
        }
        let mut total = Decimal::ZERO;
        for (i, t) in resource.credit_transfer_transaction.iter().enumerate() {
            let Some(amount) = &t.instructed_amount else {
                return Err(self.error(
                    400,
                    &req.path,
                    &format!("creditTransferTransaction[{i}].instructedAmount is required"),
                    None,
                ));
            };
            let value: Decimal = amount.amount.into();
            if value <= Decimal::ZERO || amount.currency != "EUR" {
                return Err(self.error(
                    400,
                    &req.path,
                    &format!(
                        "creditTransferTransaction[{i}]: the amount must be positive and in EUR"
                    ),
                    None,
                ));
            }
            total += value;
        }
        if resource.number_of_transactions != resource.credit_transfer_transaction.len() as i64 {
            return Err(self.error(
                400,
                &req.path,
                &format!(
                    "numberOfTransactions is {} but there are {} transfers",
                    resource.number_of_transactions,
                    resource.credit_transfer_transaction.len()
                ),
                None,
            ));
        }
        let (id, first) = {
            let mut inner = self.lock();
            inner.next_payment += 1;
            let first = inner.next_payment == 1;
            let id = format!("PR{:06}", inner.next_payment);
            resource.resource_id = Some(id.clone());
            resource.payment_information_status = Some("RCVD".into());
            inner.payments.insert(
                id.clone(),
                Payment {
                    resource,
                    total,
                    status: "RCVD",
                    reason: None,
                    approved: false,
                    reads_since_confirmation: 0,
                    created: OffsetDateTime::now_utc(),
                },
            );
            (id, first)
        };
        self.payments_created.fetch_add(1, Ordering::SeqCst);
        let approval = format!("{}?paymentRequestResourceId={id}", self.info.authorize_url);
        let hal = stet_models::HalAuthenticationRequest {
            applied_authentication_approach: Some("REDIRECT".into()),
            nonce: None,
            links: (!(first && self.config.faults.breaks(CheckFault::NoConsentApproval)))
                .then_some(stet_models::PaymentRequestResourceCreationLinks {
                    consent_approval: Some(stet_models::GenericLink {
                        href: approval,
                        templated: None,
                    }),
                }),
        };
        Ok(self.body(req, 201, &hal)?.with_header(
            "Location",
            format!("{}{}/payment-requests/{id}", self.origin, self.prefix),
        ))
    }

    fn payment_json(
        &self,
        req: &Req,
        p: &Payment,
    ) -> Result<stet_models::HalPaymentRequest, Reply> {
        let id = p.resource.resource_id.clone().unwrap_or_default();
        let mut resource = p.resource.clone();
        // 1.4.0.47's codes: no CANC (a cancelled payment request is RJCT with DS02), and a
        // transfer is PDNG until it settles.
        let (status, transfer) = match (self.is_v14(), p.status, p.status_for_transfer()) {
            (true, "CANC", _) => ("RJCT", "RJCT"),
            (true, s, "ACTC") => (s, "PDNG"),
            (_, s, t) => (s, t),
        };
        resource.payment_information_status = Some(status.into());
        resource.status_reason_information = p.reason.map(Into::into);
        for t in &mut resource.credit_transfer_transaction {
            t.transaction_status = Some(transfer.into());
        }
        let rel = format!("/payment-requests/{id}");
        // 1.4.0.47 has no `request` link (it names one `self`, which the models do not
        // carry): the 1.4 answer goes without it.
        let mut links = json!({});
        if !self.is_v14() {
            links["request"] = json!({"href": self.link(&rel)});
        }
        if p.status == "RCVD" {
            let step = if self.is_v14() {
                "o-confirmation"
            } else {
                "confirmation"
            };
            links["confirmation"] = json!({"href": self.link(&format!("{rel}/{step}"))});
        }
        if !self.is_v14() {
            links["transactions"] = json!({"href": self.link(&format!("{rel}/transactions"))});
        }
        let links = self.model(req, links)?;
        Ok(stet_models::HalPaymentRequest {
            payment_request: stet_models::Raw::new(resource),
            links: Some(links),
        })
    }

    fn get_payment(&self, req: &Req, id: &str) -> Answer {
        self.bearer(req, "pisp")?;
        let hal = {
            let mut inner = self.lock();
            let Some(p) = inner.payments.get_mut(id) else {
                return Err(self.error(
                    404,
                    &req.path,
                    &format!("no payment request `{id}`"),
                    None,
                ));
            };
            let hal = if matches!(p.status, "ACTC" | "ACSC")
                && self.config.faults.breaks(CheckFault::StatusRegress)
            {
                let shown = Payment {
                    status: "RCVD",
                    ..p.clone()
                };
                self.payment_json(req, &shown)?
            } else {
                self.payment_json(req, p)?
            };
            // ACTC is seen once, then the payment settles.
            if p.status == "ACTC" {
                p.reads_since_confirmation += 1;
                if p.reads_since_confirmation >= 1 {
                    p.status = "ACSC";
                }
            }
            hal
        };
        self.body(req, 200, &hal)
    }

    fn confirm_payment(&self, req: &Req, id: &str) -> Answer {
        let token = self.bearer(req, "pisp")?;
        if !req.body.is_empty() {
            let _: stet_models::ConfirmationResource =
                self.read_body(req, "ConfirmationResource")?;
        } else if !self.is_v14() {
            return Err(self.error(
                400,
                &req.path,
                "send a JSON body, `{}` at least (STET asks for one even when empty)",
                None,
            ));
        }
        let hal = {
            let mut inner = self.lock();
            let Some(p) = inner.payments.get_mut(id) else {
                return Err(self.error(
                    404,
                    &req.path,
                    &format!("no payment request `{id}`"),
                    None,
                ));
            };
            let bound = token.grant == Grant::Code && token.payment.as_deref() == Some(id);
            let cc_after_approval = token.grant == Grant::ClientCredentials && p.approved;
            if !bound
                && !cc_after_approval
                && !self
                    .config
                    .faults
                    .breaks(CheckFault::ConfirmWithoutApproval)
            {
                let why = if token.grant == Grant::Code {
                    format!(
                        "this token was not issued for the PSU's approval of payment request `{id}`"
                    )
                } else {
                    format!(
                        "the PSU has not approved payment request `{id}` yet: send them to its consentApproval link"
                    )
                };
                return Err(self.error(403, &req.path, &why, None));
            }
            if p.status != "RCVD" {
                return Err(self.error(
                    409,
                    &req.path,
                    &format!(
                        "payment request `{id}` is {}: it can be confirmed once, while RCVD",
                        p.status
                    ),
                    None,
                ));
            }
            if p.total > PAYMENT_LIMIT {
                p.status = "RJCT";
                p.reason = Some("AG01");
            } else {
                p.status = "ACTC";
            }
            self.payment_json(req, p)?
        };
        self.body(req, 200, &hal)
    }

    fn cancel_payment(&self, req: &Req, id: &str) -> Answer {
        self.bearer(req, "pisp")?;
        let body: stet_models::PaymentRequestResource =
            self.read_body(req, "PaymentRequestResource")?;
        // 1.4.0.47 has no CANC: a cancellation is RJCT with the reason DS02 there. CANC is
        // taken in both dialects, as the 1.4.x banks that grew it do.
        let cancel_status = |s: &str| s == "CANC" || (self.is_v14() && s == "RJCT");
        let wants_cancel = body
            .payment_information_status
            .as_ref()
            .is_some_and(|s| cancel_status(s.as_str()))
            || body.credit_transfer_transaction.iter().any(|t| {
                t.transaction_status
                    .as_ref()
                    .is_some_and(|s| cancel_status(s.as_str()))
            });
        if !wants_cancel {
            return Err(self.error(
                400,
                &req.path,
                "only cancellation is supported: set paymentInformationStatus to CANC",
                None,
            ));
        }
        let reason = body
            .status_reason_information
            .as_ref()
            .map(|r| r.as_str().to_owned())
            .or_else(|| {
                body.credit_transfer_transaction.iter().find_map(|t| {
                    t.status_reason_information
                        .as_ref()
                        .map(|r| r.as_str().to_owned())
                })
            });
        let reason: &'static str = match reason.as_deref() {
            Some("DS02") => "DS02",
            Some("DUPL") => "DUPL",
            Some("FRAD") => "FRAD",
            Some("TECH") => "TECH",
            other => {
                return Err(self.error(
                    400,
                    &req.path,
                    &format!(
                        "statusReasonInformation must be DS02, DUPL, FRAD or TECH (got {})",
                        other.unwrap_or("none")
                    ),
                    None,
                ));
            }
        };
        let mut inner = self.lock();
        let Some(p) = inner.payments.get_mut(id) else {
            return Err(self.error(404, &req.path, &format!("no payment request `{id}`"), None));
        };
        if !matches!(p.status, "RCVD" | "ACTC") {
            return Err(self.error(
                409,
                &req.path,
                &format!("payment request `{id}` is {}: too late to cancel", p.status),
                None,
            ));
        }
        if !self.config.faults.breaks(CheckFault::CancelIgnored) {
            p.status = "CANC";
            p.reason = Some(reason);
        }
        drop(inner);
        let hal = stet_models::HalAuthenticationRequest {
            applied_authentication_approach: Some("NONE".into()),
            nonce: None,
            links: None,
        };
        self.body(req, 200, &hal)
    }

    fn payment_transactions(&self, req: &Req, id: &str) -> Answer {
        self.bearer(req, "pisp")?;
        let (transfers, status, created) = {
            let inner = self.lock();
            let Some(p) = inner.payments.get(id) else {
                return Err(self.error(
                    404,
                    &req.path,
                    &format!("no payment request `{id}`"),
                    None,
                ));
            };
            (
                p.resource.credit_transfer_transaction.clone(),
                p.status_for_transfer(),
                p.created,
            )
        };
        let items: Vec<Value> = transfers
            .into_iter()
            .enumerate()
            .filter_map(|(i, mut t)| {
                t.transaction_status = Some(status.into());
                t.resource_id
                    .get_or_insert_with(|| format!("{id}-{}", i + 1));
                t.acceptance_date_time = Some(created.into());
                stet_models::to_json_value(&t, self.dialect()).ok()
            })
            .collect();
        if items.is_empty() {
            return Ok(Reply::new(204));
        }
        let (range, page, pages) = self.paginate(req, items.len())?;
        let mut links = self.page_links(
            req,
            &format!("/payment-requests/{id}/transactions"),
            page,
            pages,
        );
        links["parent"] = json!({"href": self.link(&format!("/payment-requests/{id}"))});
        let hal: stet_models::HalCreditTransfertTransactions = self.model(
            req,
            json!({"creditTransferTransaction": items[range].to_vec(), "_links": links}),
        )?;
        self.body(req, 200, &hal)
    }
}

impl Payment {
    /// The status of each transfer, from the payment's.
    fn status_for_transfer(&self) -> &'static str {
        match self.status {
            "RCVD" => "PDNG",
            s => s,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pages spliced from the cached texts are byte for byte the pages the models write when
    /// the whole page goes through them (as the sandbox built every page before the cache).
    #[test]
    fn spliced_pages_are_what_the_models_write() {
        let today = time::macros::date!(2026 - 03 - 10);
        for dialect in [Dialect::V1_4, Dialect::V1_5] {
            let mut data = BankData::generate(3, 2, 250, today);
            cache_transactions(&mut data, dialect);
            for account in &data.accounts {
                for (n, page) in account.transactions.chunks(100).enumerate() {
                    let href = |p: usize| json!({"href": format!("/v1/accounts/{}/transactions?page={p}", account.id)});
                    let links_value = json!({
                        "self": href(n + 1), "first": href(1), "last": href(3), "next": href(n + 2),
                        "parent-list": {"href": "/v1/accounts"},
                    });
                    let whole = json!({
                        "transactions": page.iter().map(|t| tx_value(dialect, t)).collect::<Vec<_>>(),
                        "_links": links_value,
                    });
                    let hal: stet_models::HalTransactions = serde_json::from_value(whole).unwrap();
                    let expected = stet_models::to_json_vec(&hal, dialect).unwrap();

                    let links: stet_models::TransactionsLinks =
                        serde_json::from_value(links_value).unwrap();
                    let texts = page.iter().map(|t| t.json.as_deref().expect("cached"));
                    let spliced = transactions_body(texts, &links, dialect).unwrap();
                    assert_eq!(
                        String::from_utf8(spliced).unwrap(),
                        String::from_utf8(expected).unwrap(),
                        "{dialect:?}, {} page {}",
                        account.id,
                        n + 1
                    );
                }
            }
        }
    }
}
