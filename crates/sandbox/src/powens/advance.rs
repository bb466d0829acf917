//! The Powens mock's time and states, for testing syncs: sandbox-only endpoints beside the
//! STET bank's `/sandbox/advance` (no authentication, outside the API base).
//!
//! | call | what it does |
//! |---|---|
//! | `POST /sandbox/powens/advance` | `{"days": N, "transactions_per_account": K, "booking": "same-id" \| "new-id", "delete": [ID, …]}`: deletes the transactions `delete` names at the bank (Powens then flags them `deleted`), moves the mock's clock N days (default 1), books every `coming` transaction a day after its date (`same-id`, the default: the same transaction with `coming: false`; `new-id`: the coming one is marked `deleted` and a booked copy gets a new id), and adds K transactions per account dated in those days (those of the new today `coming`). Accounts of connections in a state other than usable are left alone, as Powens cannot read their bank. Balances follow. Answers `{"added", "booked", "deleted", "today"}`. With `defer`, the change happens at the bank but Powens shows it only when it reads the bank again: at the next `PUT /users/me/connections/ID` (a sync asked for; `409` when nothing is new), or the next change not deferred; answers `{"staged": N}` |
//! | `POST /sandbox/powens/state` | `{"connection": ID, "state": "SCARequired"}` puts a connection in a state, as Powens' background sync does when the bank wants the PSU again (`null`: usable again). Answers the connection |
//! | `GET /sandbox/powens/transactions` | every account with its transactions exactly as the API lists them (deleted ones included, flagged by Powens' `deleted`): what a test compares a store with |

use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use super::{Inner, Mock, data, error};
use crate::server::{Reply, Req};

/// The states `POST /sandbox/powens/state` accepts, with the message Powens would give.
const STATES: &[(&str, &str)] = &[
    (
        "SCARequired",
        "A strong customer authentication is required",
    ),
    (
        "webauthRequired",
        "The connection must be validated on the bank's website",
    ),
    (
        "decoupled",
        "You need to confirm the connection on your bank website",
    ),
    ("wrongpass", "Incorrect password"),
    (
        "passwordExpired",
        "The password has expired: change it on the bank's website",
    ),
    (
        "actionNeeded",
        "Please confirm the new terms and conditions",
    ),
    (
        "rateLimiting",
        "The bank limits the number of calls: try again later",
    ),
    ("websiteUnavailable", "The bank's website is unavailable"),
    ("bug", "An internal error occurred"),
];

/// What `booking` asks of a coming transaction when its bank books it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Booking {
    /// The same transaction, `coming` false.
    SameId,
    /// The coming one deleted, a booked one with a new id.
    NewId,
}

/// One change at the bank, as `POST /sandbox/powens/advance` describes it.
#[derive(Debug, Clone)]
pub(super) struct Change {
    days: i64,
    per_account: usize,
    booking: Booking,
    delete: Vec<i64>,
}

impl Change {
    fn parse(body: &Value) -> Result<Change, Reply> {
        let number = |name: &str, default: u64, max: u64| match body.get(name) {
            None => Ok(default),
            Some(v) => v.as_u64().filter(|n| *n <= max).ok_or_else(|| {
                error(
                    400,
                    "invalidValue",
                    format!("`{name}` must be a whole number from 0 to {max}"),
                )
            }),
        };
        let days = number("days", 1, 3650)? as i64;
        let per_account = number("transactions_per_account", 0, 10_000)? as usize;
        let booking = match body.get("booking").and_then(Value::as_str) {
            None | Some("same-id") => Booking::SameId,
            Some("new-id") => Booking::NewId,
            Some(other) => {
                return Err(error(
                    400,
                    "invalidValue",
                    format!("`booking` is `same-id` or `new-id`, not `{other}`"),
                ));
            }
        };
        let delete = match body.get("delete") {
            None => Vec::new(),
            Some(Value::Array(ids)) if ids.iter().all(|v| v.as_i64().is_some()) => {
                ids.iter().filter_map(Value::as_i64).collect()
            }
            Some(_) => {
                return Err(error(
                    400,
                    "invalidValue",
                    "`delete` is a list of transaction ids",
                ));
            }
        };
        Ok(Change {
            days,
            per_account,
            booking,
            delete,
        })
    }
}

fn decimal(v: &Value) -> rust_decimal::Decimal {
    v.to_string().parse().unwrap_or_default()
}

impl Mock {
    /// The sandbox-only endpoints of the module manual.
    pub(crate) fn sandbox(&self, req: &Req) -> Reply {
        let body: Value = if req.body.iter().all(u8::is_ascii_whitespace) {
            json!({})
        } else {
            match serde_json::from_slice(&req.body) {
                Ok(v @ Value::Object(_)) => v,
                _ => return error(400, "invalidValue", "the body is not a JSON object"),
            }
        };
        match req.path.as_str() {
            "/sandbox/powens/advance" => self.advance_request(&body),
            "/sandbox/powens/state" => self.state_request(&body),
            "/sandbox/powens/credentials" => self.credential_posts(),
            _ => self.listing(),
        }
    }

    fn advance_request(&self, body: &Value) -> Reply {
        let change = match Change::parse(body) {
            Ok(c) => c,
            Err(reply) => return reply,
        };
        let mut inner = self.lock();
        if body.get("defer") == Some(&Value::Bool(true)) {
            // The bank moves on, but Powens shows it only once it reads the bank again: at the
            // next `PUT /users/me/connections/{id}` (a sync asked for), or the next change not
            // deferred.
            inner.staged.push(change);
            return super::ok(json!({"staged": inner.staged.len()}));
        }
        let staged = std::mem::take(&mut inner.staged);
        let mut answer = json!({});
        for change in staged.iter().chain([&change]) {
            match self.apply_change(&mut inner, change) {
                Ok(a) => answer = a,
                Err(reply) => return reply,
            }
        }
        super::ok(answer)
    }

    /// Applies the changes staged by `defer`, as Powens does when a sync is asked for; `false`
    /// when there were none (the connection is up to date).
    pub(super) fn read_bank(&self, inner: &mut Inner) -> Result<bool, Reply> {
        let staged = std::mem::take(&mut inner.staged);
        for change in &staged {
            self.apply_change(inner, change)?;
        }
        Ok(!staged.is_empty())
    }

    /// Deletes what `change` deletes, then moves the clock; the answer of the module manual.
    fn apply_change(&self, inner: &mut Inner, change: &Change) -> Result<Value, Reply> {
        // The bank deletes these first (before the clock moves): Powens then lists each with
        // its `deleted` date, and the account's balance without it.
        let stamp = data::paris(OffsetDateTime::now_utc());
        for id in &change.delete {
            let found = inner.accounts.values_mut().find_map(|account| {
                let tx = account
                    .transactions
                    .iter_mut()
                    .map(|(_, tx)| tx)
                    .find(|tx| tx["id"].as_i64() == Some(*id) && tx["deleted"].is_null())?;
                tx["deleted"] = Value::from(stamp.clone());
                tx["last_update"] = Value::from(stamp.clone());
                let field = if tx["coming"] == Value::Bool(true) {
                    "coming"
                } else {
                    "balance"
                };
                let value = decimal(&tx["value"]);
                for name in [field, "coming_balance"] {
                    let left = decimal(&account.json[name]) - value;
                    account.json[name] = data::num(&left.to_string());
                }
                Some(())
            });
            if found.is_none() {
                return Err(error(
                    400,
                    "invalidValue",
                    format!("no transaction {id} to delete (or it is deleted already)"),
                ));
            }
        }
        let (added, booked) = self.advance(inner, change.days, change.per_account, change.booking);
        let today = self.today + Duration::days(inner.days_advanced);
        Ok(json!({
            "added": added,
            "booked": booked,
            "deleted": change.delete.len(),
            "today": data::day(today),
        }))
    }

    /// Moves the clock `days` forward; books the coming transactions and adds `per_account`
    /// to each account of a usable connection. Gives (added, booked).
    fn advance(
        &self,
        inner: &mut Inner,
        days: i64,
        per_account: usize,
        booking: Booking,
    ) -> (usize, usize) {
        inner.days_advanced += days;
        let today = self.today + Duration::days(inner.days_advanced);
        let now = OffsetDateTime::now_utc();
        let stamp = data::paris(now);
        let (mut added, mut booked) = (0, 0);
        let usable: Vec<i64> = inner
            .connections
            .values()
            .filter(|c| c.state.is_none())
            .map(|c| c.id)
            .collect();
        let ids: Vec<i64> = inner
            .accounts
            .iter()
            .filter(|(_, a)| usable.contains(&a.connection))
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let mut next = inner.next_transaction;
            let Some(account) = inner.accounts.get_mut(&id) else {
                continue;
            };
            let mut balance = decimal(&account.json["balance"]);
            // Coming transactions are booked a day after their date (today at the latest).
            let mut copies = Vec::new();
            for (date, tx) in account.transactions.iter_mut() {
                if tx["coming"] != Value::Bool(true) || !tx["deleted"].is_null() {
                    continue;
                }
                let on = (*date + Duration::days(1)).min(today);
                booked += 1;
                balance += decimal(&tx["value"]);
                match booking {
                    Booking::SameId => {
                        *date = on;
                        tx["coming"] = Value::Bool(false);
                        tx["date"] = Value::from(data::day(on));
                        tx["application_date"] = Value::from(data::day(on));
                        tx["last_update"] = Value::from(stamp.clone());
                    }
                    Booking::NewId => {
                        tx["deleted"] = Value::from(stamp.clone());
                        tx["last_update"] = Value::from(stamp.clone());
                        let mut copy = tx.clone();
                        copy["id"] = Value::from(next);
                        copy["webid"] = Value::from(format!("W{next:08}"));
                        copy["coming"] = Value::Bool(false);
                        copy["deleted"] = Value::Null;
                        copy["date"] = Value::from(data::day(on));
                        copy["application_date"] = Value::from(data::day(on));
                        copy["date_scraped"] = Value::from(stamp.clone());
                        next += 1;
                        copies.push((on, copy));
                    }
                }
            }
            // New ones, spread over the days that passed; today's are coming.
            let mut coming = rust_decimal::Decimal::ZERO;
            for k in 0..per_account {
                let back = (k as i64) % days.max(1);
                let date = today - Duration::days(back);
                let cents = 250 + (next * 7919 + k as i64 * 104_729).rem_euclid(9_000);
                let value = format!("-{}.{:02}", cents / 100, cents % 100);
                let is_coming = back == 0;
                let amount: rust_decimal::Decimal = value.parse().unwrap_or_default();
                if is_coming {
                    coming += amount;
                } else {
                    balance += amount;
                }
                let label = format!(
                    "CB BOULANGERIE {:02}/{:02}",
                    date.day(),
                    u8::from(date.month())
                );
                copies.push((
                    date,
                    json!({
                        "id": next,
                        "id_account": id,
                        "webid": format!("W{next:08}"),
                        "application_date": data::day(date),
                        "date": data::day(date),
                        "datetime": null,
                        "rdate": data::day(date),
                        "rdatetime": null,
                        "vdate": null,
                        "bdate": null,
                        "value": data::num(&value),
                        "gross_value": data::num(&value),
                        "original_value": null,
                        "original_currency": null,
                        "commission": null,
                        "type": "card",
                        "original_wording": label,
                        "simplified_wording": "CB BOULANGERIE",
                        "stemmed_wording": "CB BOULANGERIE",
                        "wording": "CB BOULANGERIE",
                        "categories": [],
                        "date_scraped": stamp,
                        "coming": is_coming,
                        "active": true,
                        "comment": null,
                        "last_update": stamp,
                        "deleted": null,
                        "card": "XXXX XXXX XXXX 1234",
                        "counterparty": null,
                        "documents_count": 0,
                    }),
                ));
                next += 1;
                added += 1;
            }
            for t in copies {
                account.transactions.insert(0, t);
            }
            account.json["balance"] = data::num(&balance.to_string());
            account.json["coming"] = data::num(&coming.to_string());
            account.json["coming_balance"] = data::num(&(balance + coming).to_string());
            account.json["last_update"] = Value::from(stamp.clone());
            inner.next_transaction = next;
        }
        (added, booked)
    }

    fn state_request(&self, body: &Value) -> Reply {
        let Some(id) = body.get("connection").and_then(Value::as_i64) else {
            return error(
                400,
                "missingParameter",
                "`connection` (a connection id) is required",
            );
        };
        let state = match body.get("state") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => match STATES.iter().find(|(name, _)| name == s) {
                Some(found) => Some(*found),
                None => {
                    let known: Vec<&str> = STATES.iter().map(|(n, _)| *n).collect();
                    return error(
                        400,
                        "invalidValue",
                        format!("`state` is null or one of {}", known.join(", ")),
                    );
                }
            },
            Some(_) => return error(400, "invalidValue", "`state` is a string or null"),
        };
        let mut inner = self.lock();
        let Some(c) = inner.connections.get_mut(&id) else {
            return super::html_404();
        };
        c.state = state.map(|(name, _)| name);
        c.message = state.map(|(_, message)| message.to_owned());
        c.fields = Value::Null;
        c.otp = None;
        // A decoupled approval (after `POST {}` on an SCARequired one) comes a second later.
        c.ready_at = None;
        if state.is_none() {
            c.last_update = Some(OffsetDateTime::now_utc());
        }
        super::ok(self.connection_json(c, false))
    }

    fn listing(&self) -> Reply {
        let inner = self.lock();
        let accounts: Vec<Value> = inner
            .accounts
            .iter()
            .map(|(id, a)| {
                let mut transactions: Vec<&(time::Date, Value)> = a.transactions.iter().collect();
                transactions.sort_by(|x, y| {
                    y.0.cmp(&x.0)
                        .then_with(|| y.1["id"].as_i64().cmp(&x.1["id"].as_i64()))
                });
                json!({
                    "id": id,
                    "id_connection": a.connection,
                    "disabled": a.disabled,
                    "account": Self::account_json(a),
                    "transactions": transactions.iter().map(|(_, t)| t.clone()).collect::<Vec<_>>(),
                })
            })
            .collect();
        super::ok(json!({"accounts": accounts}))
    }
}
