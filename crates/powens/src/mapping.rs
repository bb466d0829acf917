//! Powens resources as STET resources, and the stable ids that name them.
//!
//! The same models serve both backends, so everything downstream (outputs, the store, the
//! exports) sees a STET [`AccountResource`], [`BalanceResource`] or [`Transaction`]
//! whichever API the data came from. What does not fit stays in Powens' own JSON, which the
//! client keeps as received ([`stet_models::Raw`]).
//!
//! | Powens | STET | how |
//! |---|---|---|
//! | account `id` | `resourceId` | [`Namespace::account_id`]: `p1-{ns}-a{id}` |
//! | `iban` | `accountId.iban` | as is |
//! | `number` (no IBAN) | `accountId.other` | scheme `BBAN`, the (masked) number |
//! | `currency.id` | `accountId.currency`, `currency` | EUR when absent |
//! | `name`, else `original_name` | `name` | at most 70 characters |
//! | `type` | `cashAccountType`, `product` | `card`, `deferred_card` → `CARD`; the rest `CACC`; the Powens type as `product` |
//! | `usage` | `usage` | `PRIV` → `PRIV`; `ORGA`, `ASSO` → `ORGA` |
//! | `bic` | `bicFi` | when it is a BIC |
//! | `id_parent` | `linkedAccount` | the parent's stable id (a card's checking account) |
//! | `balance` | balance `CLBD` | `lastChangeDateTime` from `last_update` (Paris time) |
//! | `coming_balance`, else `balance` + `coming` | balance `XPCD` | booked and pending |
//! | transaction `id` | `resourceId`, `entryReference` | [`Namespace::transaction_id`]: `p1-{ns}-t{id}` |
//! | `value` (signed) | `transactionAmount.amount` and `creditDebitIndicator` | the absolute value; negative → `DBIT`, else `CRDT`; digits exact |
//! | account's currency | `transactionAmount.currency` | Powens gives none per transaction |
//! | `coming` | `status` | `true` → `PDNG`, else `BOOK` |
//! | `date` | `bookingDate` (booked) or `expectedBookingDate` (pending) | a date |
//! | `vdate` | `valueDate` | a date |
//! | `rdate` | `transactionDate` | a date |
//! | `original_wording`, else `wording` | `remittanceInformation.unstructured` | one line, at most 140 characters |
//! | `wording` when it differs | `additionalTransactionInformation` | the user's label |
//! | `counterparty` `type: creditor` | `relatedParties.creditor` (+ `creditorAccount`) | `label` as name; `account_identification` as IBAN when the scheme is `iban`, else as another identifier |
//! | `counterparty` `type: debtor` | `relatedParties.debtor` (+ `debtorAccount`) | the same |
//! | `deleted` set | (left out; [`deleted_transaction`] maps it) | deleted at the bank: the store marks its row `DELD` |
//!
//! ## Stable ids
//!
//! Powens ids are numbers, unique within a domain. stet's ids for them live in a namespace of
//! their own so they can never collide with a STET bank's: `p1-` (Powens, scheme 1), eight hex
//! digits of SHA-256 over the domain's name (sandbox and production differ), then `a` and the
//! account id or `t` and the transaction id: `p1-3f0c9a12-t987654321`. At most 33 characters
//! of `[A-Za-z0-9-]`, so they fit an OFX `FITID` and a camt.053 `AcctSvcrRef` (35 at most),
//! and read the same in every format.

use stet_models::{
    AccountIdentification, AccountResource, AccountUsage, AmountType, BalanceResource,
    BalanceStatus, CashAccountType, CreditDebitIndicator, GenericIdentification,
    PartyIdentification, RelatedParties, RemittanceInformation, StetDateTime, Transaction,
    TransactionStatus,
};

use crate::model::{BankAccount, PowensId, Transaction as PowensTransaction};

/// The namespace of a domain's stable ids (`p1-` and eight hex digits).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Namespace(String);

/// What a stable id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    /// A bank account.
    Account,
    /// A transaction.
    Transaction,
}

impl Namespace {
    /// The namespace of the domain (or API base) `source`.
    pub fn new(source: &str) -> Namespace {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, source.as_bytes());
        let hex: String = digest.as_ref()[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Namespace(format!("p1-{hex}"))
    }

    fn id(&self, letter: char, id: PowensId) -> String {
        // Powens ids are positive; a negative one keeps the id's charset all the same.
        let number = if id < 0 {
            format!("m{}", id.unsigned_abs())
        } else {
            id.to_string()
        };
        format!("{}-{letter}{number}", self.0)
    }

    /// The stable id of an account.
    pub fn account_id(&self, id: PowensId) -> String {
        self.id('a', id)
    }

    /// The stable id of a transaction.
    pub fn transaction_id(&self, id: PowensId) -> String {
        self.id('t', id)
    }

    /// The Powens id in a stable id of this namespace.
    pub fn parse(&self, stable: &str) -> Option<(IdKind, PowensId)> {
        let rest = stable.strip_prefix(self.0.as_str())?.strip_prefix('-')?;
        let (kind, number) = match rest.split_at_checked(1)? {
            ("a", n) => (IdKind::Account, n),
            ("t", n) => (IdKind::Transaction, n),
            _ => return None,
        };
        let id = match number.strip_prefix('m') {
            Some(n) => -n.parse::<PowensId>().ok()?,
            None => number.parse().ok()?,
        };
        Some((kind, id))
    }
}

fn clip(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}

fn is_bic(bic: &str) -> bool {
    let b = bic.as_bytes();
    (b.len() == 8 || b.len() == 11)
        && b[..6].iter().all(u8::is_ascii_uppercase)
        && b[6..]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// An account as a STET account resource (balances included).
pub fn account(a: &BankAccount, ns: &Namespace) -> AccountResource {
    let currency = a.currency_code().to_owned();
    let iban = a.iban.clone().filter(|i| !i.trim().is_empty());
    let other = match (&iban, &a.number) {
        (None, Some(number)) if !number.is_empty() => Some(GenericIdentification {
            identification: clip(number, 70),
            scheme_name: "BBAN".to_owned(),
            issuer: None,
        }),
        _ => None,
    };
    let kind = a.kind.as_deref().unwrap_or_default();
    AccountResource {
        workspace: None,
        resource_id: Some(ns.account_id(a.id)),
        bic_fi: a.bic.clone().filter(|b| is_bic(b)),
        account_id: Some(AccountIdentification {
            workspace: None,
            iban,
            other,
            currency: Some(currency.clone()),
        }),
        name: clip(&a.display_name(), 70),
        details: None,
        linked_account: a.id_parent.map(|p| ns.account_id(p)),
        usage: a.usage.as_deref().map(|u| match u {
            "PRIV" => AccountUsage::Priv,
            _ => AccountUsage::Orga,
        }),
        cash_account_type: if matches!(kind, "card" | "deferred_card") {
            CashAccountType::Card
        } else {
            CashAccountType::Cacc
        },
        product: (!kind.is_empty()).then(|| clip(kind, 35)),
        currency: Some(currency),
        balances: balances(a),
        psu_status: None,
        links: None,
    }
}

/// An account's balances: `CLBD` from `balance`, `XPCD` from `coming_balance` (or `balance`
/// plus `coming`).
pub fn balances(a: &BankAccount) -> Vec<BalanceResource> {
    let currency = a.currency_code().to_owned();
    let changed = a.last_update.map(|t| StetDateTime::Offset(t.instant()));
    let mut out = Vec::new();
    if let Some(balance) = a.balance {
        out.push(BalanceResource {
            name: Some("Solde comptable".to_owned()),
            balance_amount: AmountType {
                amount: balance,
                currency: currency.clone(),
            },
            balance_type: BalanceStatus::Clbd,
            last_change_date_time: changed,
            reference_date: None,
            last_committed_transaction: None,
        });
        let expected = a.coming_balance.or_else(|| {
            a.coming
                .and_then(|c| balance.decimal().checked_add(c.decimal()))
                .map(stet_models::Amount::new)
        });
        if let Some(expected) = expected {
            out.push(BalanceResource {
                name: Some("Solde à venir".to_owned()),
                balance_amount: AmountType {
                    amount: expected,
                    currency,
                },
                balance_type: BalanceStatus::Xpcd,
                last_change_date_time: changed,
                reference_date: None,
                last_committed_transaction: None,
            });
        }
    }
    out
}

/// A transaction as a STET transaction, in the account's `currency`; `None` for one deleted
/// at the bank or without an amount.
pub fn transaction(t: &PowensTransaction, currency: &str, ns: &Namespace) -> Option<Transaction> {
    if t.deleted {
        return None;
    }
    map_transaction(t, currency, ns)
}

/// A transaction the bank deleted, mapped as [`transaction`] maps the others (its id, amount
/// and dates as they were), for a store to mark; `None` for one not deleted or without an
/// amount. STET has no status for it: the caller says it is deleted.
pub fn deleted_transaction(
    t: &PowensTransaction,
    currency: &str,
    ns: &Namespace,
) -> Option<Transaction> {
    if !t.deleted {
        return None;
    }
    map_transaction(t, currency, ns)
}

fn map_transaction(t: &PowensTransaction, currency: &str, ns: &Namespace) -> Option<Transaction> {
    let value = t.value?;
    let debit = value.decimal().is_sign_negative() && !value.decimal().is_zero();
    let amount = stet_models::Amount::new(value.decimal().abs());
    let pending = t.coming.unwrap_or(false);
    let date = |d: Option<stet_models::StetDate>| d.map(|d| StetDateTime::Date(d.0));
    let label = t
        .original_wording
        .as_deref()
        .or(t.wording.as_deref())
        .filter(|l| !l.trim().is_empty());
    let user_label = t
        .wording
        .as_deref()
        .filter(|w| Some(*w) != label && !w.trim().is_empty());
    let id = ns.transaction_id(t.id);
    Some(Transaction {
        resource_id: Some(id.clone()),
        entry_reference: Some(id),
        transaction_amount: AmountType {
            amount,
            currency: currency.to_owned(),
        },
        credit_debit_indicator: if debit {
            CreditDebitIndicator::Dbit
        } else {
            CreditDebitIndicator::Crdt
        },
        transaction_amount_details: None,
        status: if pending {
            TransactionStatus::Pdng
        } else {
            TransactionStatus::Book
        },
        end_to_end_id: None,
        expected_booking_date: if pending { date(t.date) } else { None },
        booking_date: if pending { None } else { date(t.date) },
        value_date: date(t.vdate),
        transaction_date: date(t.rdate),
        bank_transaction_code: None,
        charges: None,
        related_parties: t.counterparty.as_ref().and_then(related_parties),
        remittance_information: label.map(|l| RemittanceInformation::line(clip(l, 140))),
        additional_transaction_information: user_label.map(|w| clip(w, 500)),
        standing_order_characteristics: None,
        merchant_category_code: None,
    })
}

fn related_parties(c: &crate::model::Counterparty) -> Option<RelatedParties> {
    let name = c.label.clone().filter(|l| !l.trim().is_empty());
    let account = c
        .account_identification
        .clone()
        .filter(|a| !a.trim().is_empty())
        .map(|identification| {
            let scheme = c.account_scheme_name.as_deref().unwrap_or_default();
            if scheme.eq_ignore_ascii_case("iban") {
                AccountIdentification {
                    iban: Some(identification.replace(' ', "")),
                    ..AccountIdentification::default()
                }
            } else {
                AccountIdentification {
                    other: Some(GenericIdentification {
                        identification: clip(&identification, 70),
                        scheme_name: if scheme.is_empty() {
                            "OTHR".to_owned()
                        } else {
                            clip(&scheme.to_uppercase(), 70)
                        },
                        issuer: None,
                    }),
                    ..AccountIdentification::default()
                }
            }
        });
    if name.is_none() && account.is_none() {
        return None;
    }
    let party = name.map(|n| PartyIdentification {
        name: clip(&n, 140),
        date_and_place_of_birth: None,
        postal_address: None,
        contact_details: None,
        organisation_id: None,
        private_id: None,
        lei: None,
    });
    let mut parties = RelatedParties::default();
    if c.kind.as_deref() == Some("debtor") {
        parties.debtor = party;
        parties.debtor_account = account;
    } else {
        parties.creditor = party;
        parties.creditor_account = account;
    }
    Some(parties)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_ids_are_short_namespaced_and_read_back() {
        let ns = Namespace::new("acme-sandbox");
        let id = ns.transaction_id(i64::MAX);
        assert!(id.len() <= 35, "{id}");
        assert!(
            id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'),
            "{id}"
        );
        assert!(id.starts_with("p1-"));
        assert_eq!(ns.parse(&id), Some((IdKind::Transaction, i64::MAX)));
        assert_eq!(
            ns.parse(&ns.account_id(21386)),
            Some((IdKind::Account, 21386))
        );
        assert_eq!(ns.parse(&ns.account_id(-5)), Some((IdKind::Account, -5)));
        assert_eq!(ns.parse("ACC0001"), None);
        // Another domain, another namespace: the same Powens id never names two things.
        let prod = Namespace::new("acme");
        assert_ne!(prod.transaction_id(1), ns.transaction_id(1));
        assert_eq!(prod.parse(&ns.transaction_id(1)), None);
    }

    #[test]
    fn a_transaction_maps_sign_status_dates_label_and_counterparty() {
        let ns = Namespace::new("d");
        let t: PowensTransaction = serde_json::from_str(
            r#"{"id": 42, "value": -88.830, "coming": true, "date": "2026-03-02",
                "rdate": "2026-02-28", "vdate": null, "original_wording": "CB CARREFOUR 28/02",
                "wording": "Courses", "counterparty": {"label": "CARREFOUR", "type": "creditor",
                "account_scheme_name": "iban", "account_identification": "FR76 3000 6000 0112 3456 7890 189"}}"#,
        )
        .unwrap();
        let s = transaction(&t, "EUR", &ns).unwrap();
        assert_eq!(s.transaction_amount.amount.to_string(), "88.830");
        assert_eq!(s.credit_debit_indicator, CreditDebitIndicator::Dbit);
        assert_eq!(s.status, TransactionStatus::Pdng);
        assert_eq!(s.booking_date, None);
        assert_eq!(s.expected_booking_date.unwrap().to_string(), "2026-03-02");
        assert_eq!(s.transaction_date.unwrap().to_string(), "2026-02-28");
        assert_eq!(
            s.remittance_information.unwrap().text(),
            "CB CARREFOUR 28/02"
        );
        assert_eq!(
            s.additional_transaction_information.as_deref(),
            Some("Courses")
        );
        let parties = s.related_parties.unwrap();
        assert_eq!(parties.creditor.unwrap().name, "CARREFOUR");
        assert_eq!(
            parties.creditor_account.unwrap().iban.as_deref(),
            Some("FR7630006000011234567890189")
        );
        assert_eq!(s.entry_reference, Some(ns.transaction_id(42)));

        let credit: PowensTransaction =
            serde_json::from_str(r#"{"id": 43, "value": 1500, "date": "2026-03-01"}"#).unwrap();
        let s = transaction(&credit, "EUR", &ns).unwrap();
        assert_eq!(s.credit_debit_indicator, CreditDebitIndicator::Crdt);
        assert_eq!(s.status, TransactionStatus::Book);
        assert_eq!(s.booking_date.unwrap().to_string(), "2026-03-01");

        let deleted: PowensTransaction =
            serde_json::from_str(r#"{"id": 44, "value": 1, "deleted": "2026-03-03 10:00:00"}"#)
                .unwrap();
        assert!(transaction(&deleted, "EUR", &ns).is_none());
    }

    #[test]
    fn an_account_maps_type_balances_and_parent() {
        let ns = Namespace::new("d");
        let card: BankAccount = serde_json::from_str(
            r#"{"id": 3, "id_parent": 1, "type": "deferred_card", "number": "XXXX1234",
                "balance": -120.5, "coming": -30.25, "currency": {"id": "EUR"},
                "last_update": "2026-07-01 08:00:00", "usage": "ASSO", "bic": "CDTBFRBIXXX"}"#,
        )
        .unwrap();
        let a = account(&card, &ns);
        assert_eq!(a.cash_account_type, CashAccountType::Card);
        assert_eq!(a.product.as_deref(), Some("deferred_card"));
        assert_eq!(a.linked_account, Some(ns.account_id(1)));
        assert_eq!(a.usage, Some(AccountUsage::Orga));
        assert_eq!(
            a.account_id
                .as_ref()
                .unwrap()
                .other
                .as_ref()
                .unwrap()
                .identification,
            "XXXX1234"
        );
        assert_eq!(a.bic_fi.as_deref(), Some("CDTBFRBIXXX"));
        assert_eq!(a.balances.len(), 2);
        assert_eq!(a.balances[1].balance_amount.amount.to_string(), "-150.75");
        assert_eq!(
            a.balances[0].last_change_date_time.unwrap().to_string(),
            "2026-07-01T08:00:00+02:00"
        );
    }
}
