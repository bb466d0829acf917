//! The Powens mock's fixed data: its connectors, and the accounts and transactions a
//! connection finds. Written for the sandbox, shaped after Powens' documented resources.

use serde_json::{Value, json};
use time::{Date, Duration, OffsetDateTime};

use crate::data::Rng;

/// The test connector's uuid, the same on every Powens sandbox domain.
pub(crate) const TEST_CONNECTOR: &str = stet_powens::TEST_CONNECTOR_UUID;
/// A connector the PSU reaches only through the bank's site (webauth).
pub(crate) const REDIRECT_CONNECTOR: &str = "0d8b1c9e-5a3f-4c71-9e62-7b5d4f1a2c38";

/// The scenarios the test connector's `openapiwebsite` list offers (`directaccesswebsite`
/// offers them all but `webauthRequired`). `rateLimiting` and `bug` are the mock's own, to
/// reach those states.
pub(crate) const SCENARIOS: &[&str] = &[
    "par",
    "pro",
    "wrongpass",
    "additionalInformationNeeded",
    "shortDecoupled",
    "SCARequired",
    "webauthRequired",
    "passwordExpired",
    "actionNeeded",
    "websiteUnavailable",
    "rateLimiting",
    "bug",
];

/// A number written from its decimal text: JSON numbers with the digits as given.
pub(crate) fn num(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// A naive Paris date-time, as Powens writes them.
pub(crate) fn paris(t: OffsetDateTime) -> String {
    stet_powens::paris::local_text(t)
}

pub(crate) fn day(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn scenario_values(with_webauth: bool) -> Value {
    SCENARIOS
        .iter()
        .filter(|s| with_webauth || **s != "webauthRequired")
        .map(|s| json!({"label": s, "value": s}))
        .collect()
}

/// The connectors, with fields and sources when `expand` asks for them.
/// `powens_password`: the password is Powens' own `1234` (else one a test chose: no pattern).
pub(crate) fn connectors(fields: bool, sources: bool, powens_password: bool) -> Vec<Value> {
    let mut test = json!({
        "id": 40,
        "uuid": TEST_CONNECTOR,
        "name": "Connecteur de test",
        "hidden": false,
        "charged": false,
        "code": null,
        "beta": false,
        "color": "0b5ea3",
        "slug": "EXA",
        "months_to_fetch": null,
        "auth_mechanism": "credentials",
        "available_auth_mechanisms": ["webauth", "credentials"],
        "restricted": false,
        "capabilities": ["bank", "bankwealth", "document", "profile", "transfer"],
        "account_usages": ["PRIV", "ORGA"],
    });
    let mut redirect = json!({
        "id": 41,
        "uuid": REDIRECT_CONNECTOR,
        "name": "Banque Redirection",
        "hidden": false,
        "beta": true,
        "slug": "RDR",
        "auth_mechanism": "webauth",
        "available_auth_mechanisms": ["webauth"],
        "capabilities": ["bank"],
        "account_usages": ["PRIV"],
    });
    if fields {
        let (label, regex) = match powens_password {
            true => ("Code (1234)", Value::from("^[0-9]{4}$")),
            false => ("Mot de passe", Value::Null),
        };
        let password = json!({"name": "password", "label": label, "type": "password",
            "required": true, "regex": regex, "auth_mechanisms": ["credentials"],
            "connector_sources": [1, 2]});
        test["fields"] = json!([
            {"name": "login", "label": "Identifiant", "type": "text", "required": true,
             "regex": null, "auth_mechanisms": ["credentials"], "connector_sources": [1, 2]},
            password,
            {"name": "openapiwebsite", "label": "Scénario (openapi)", "type": "list",
             "required": true, "values": scenario_values(true),
             "auth_mechanisms": ["credentials"], "connector_sources": [1]},
            {"name": "directaccesswebsite", "label": "Scénario (directaccess)", "type": "list",
             "required": true, "values": scenario_values(false),
             "auth_mechanisms": ["credentials"], "connector_sources": [2]},
        ]);
        redirect["fields"] = json!([]);
    }
    if sources {
        // Listed against their priority: a client must sort them (Powens promises no order).
        test["sources"] = json!([
            {"id": 2, "name": "directaccess", "auth_mechanism": "credentials",
             "available_auth_mechanisms": ["credentials"], "disabled": null, "priority": 2},
            {"id": 1, "name": "openapi", "auth_mechanism": "credentials",
             "available_auth_mechanisms": ["credentials", "webauth"], "disabled": null, "priority": 1},
        ]);
        redirect["sources"] = json!([
            {"id": 3, "name": "openapi", "auth_mechanism": "webauth",
             "available_auth_mechanisms": ["webauth"], "disabled": null, "priority": 1},
        ]);
    }
    vec![test, redirect]
}

/// What a connection finds: the template of one account.
pub(crate) struct AccountTemplate {
    pub(crate) name: &'static str,
    pub(crate) kind: &'static str,
    pub(crate) currency: &'static str,
    pub(crate) balance: &'static str,
    pub(crate) coming: &'static str,
    /// Index of the parent among the templates.
    pub(crate) parent: Option<usize>,
    pub(crate) iban: bool,
    pub(crate) transactions: usize,
}

/// The accounts of a connection, in order: a checking account with a deferred card and a
/// mortgage under it, a savings account, a USD account, and one of a type Powens does not
/// document (`crypto`), which clients must keep.
pub(crate) const ACCOUNTS: &[AccountTemplate] = &[
    AccountTemplate {
        name: "Compte chèque",
        kind: "checking",
        currency: "EUR",
        balance: "2345.67",
        coming: "-48.20",
        parent: None,
        iban: true,
        transactions: 64,
    },
    AccountTemplate {
        name: "Livret A",
        kind: "savings",
        currency: "EUR",
        balance: "10250.00",
        coming: "0",
        parent: None,
        iban: true,
        transactions: 6,
    },
    AccountTemplate {
        name: "Carte à débit différé",
        kind: "card",
        currency: "EUR",
        balance: "-312.45",
        coming: "-58.10",
        parent: Some(0),
        iban: false,
        transactions: 10,
    },
    AccountTemplate {
        name: "Compte USD",
        kind: "checking",
        currency: "USD",
        balance: "1200.10",
        coming: "0",
        parent: None,
        iban: true,
        transactions: 5,
    },
    AccountTemplate {
        name: "Prêt immobilier",
        kind: "loan",
        currency: "EUR",
        balance: "-150000.00",
        coming: "0",
        parent: Some(0),
        iban: false,
        transactions: 0,
    },
    AccountTemplate {
        name: "Portefeuille crypto",
        kind: "crypto",
        currency: "EUR",
        balance: "0.123456789",
        coming: "0",
        parent: None,
        iban: false,
        transactions: 0,
    },
];

/// A test IBAN of the connector's bank (`EX`, as the real test connector writes them).
pub(crate) fn iban(account_id: i64) -> String {
    format!(
        "EX67{:023}",
        2004101005050001300000u128 + account_id as u128
    )
}

/// Labels, types and counterparties of the generated transactions, cycled.
const KINDS: &[(&str, &str)] = &[
    ("card", "CB CARREFOUR MARKET"),
    ("transfer", "VIR SEPA LOYER"),
    ("withdrawal", "RETRAIT DAB PARIS 11"),
    ("check", "CHEQUE 1234567"),
    ("summary_card", "RELEVE CARTE DIFFERE"),
    ("order", "PRLV SEPA EDF"),
    // A type Powens does not document: clients must keep it.
    ("instant_transfer", "VIR INST REMBOURSEMENT"),
    ("card", "CB SNCF INTERNET"),
];

/// The transactions of an account: newest first, spread over the four months before
/// `today`; the newest is `coming`; every 16th a salary credit; one deleted at the bank.
pub(crate) fn transactions(
    account_id: i64,
    template: &AccountTemplate,
    first_id: i64,
    today: Date,
    now: OffsetDateTime,
) -> Vec<(Date, Value)> {
    let mut rng = Rng::new(account_id as u64);
    let count = template.transactions;
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let id = first_id + i as i64;
        // Evenly over ~120 days, newest first.
        let days_back = (i * 120 / count.max(1)) as i64;
        let date = today - Duration::days(days_back);
        let credit = i % 16 == 15;
        let (kind, label) = if credit {
            ("transfer", "VIR SEPA SALAIRE ACME")
        } else {
            KINDS[i % KINDS.len()]
        };
        let cents = if credit {
            250_000
        } else {
            500 + rng.below(15_000) as i64
        };
        let value = format!(
            "{}{}.{:02}",
            if credit { "" } else { "-" },
            cents / 100,
            cents % 100
        );
        let coming = i == 0;
        let rdate = date - Duration::days(if kind == "card" { 2 } else { 0 });
        let counterparty = match kind {
            "transfer" | "instant_transfer" if credit => json!({
                "label": "ACME SAS", "account_scheme_name": "iban",
                "account_identification": "FR7630006000011234567890189", "type": "debtor"}),
            "transfer" | "instant_transfer" => json!({
                "label": "SCI DES LILAS", "account_scheme_name": "iban",
                "account_identification": "FR7630004000031234567890143", "type": "creditor"}),
            "order" => json!({"label": "EDF", "account_scheme_name": null,
                "account_identification": null, "type": "creditor"}),
            _ => Value::Null,
        };
        let deleted = i == 3 && count > 8;
        // Powens last wrote it when it scraped it (`date_scraped`), and at the latest a day
        // before the mock started: the history a first sync reads is not "changed since" it.
        let scraped = stet_powens::paris::from_local(time::PrimitiveDateTime::new(
            date,
            time::macros::time!(06:30),
        ));
        let written = paris(scraped.min(now - Duration::days(1)));
        out.push((
            date,
            json!({
                "id": id,
                "id_account": account_id,
                "webid": format!("W{id:08}"),
                "application_date": day(date),
                "date": day(date),
                "datetime": null,
                "rdate": day(rdate),
                "rdatetime": null,
                "vdate": if kind == "card" { Value::Null } else { Value::from(day(date)) },
                "bdate": null,
                "value": num(&value),
                "gross_value": num(&value),
                "original_value": null,
                "original_currency": null,
                "commission": null,
                "type": kind,
                "original_wording": format!("{label} {:02}/{:02}", rdate.day(), u8::from(rdate.month())),
                "simplified_wording": label,
                "stemmed_wording": label,
                "wording": label,
                "categories": [],
                "date_scraped": format!("{} 06:30:00", day(date)),
                "coming": coming,
                "active": true,
                "comment": null,
                "last_update": written,
                "deleted": if deleted { Value::from(written.clone()) } else { Value::Null },
                "card": if kind == "card" { Value::from("XXXX XXXX XXXX 1234") } else { Value::Null },
                "counterparty": counterparty,
                "documents_count": 0,
            }),
        ));
    }
    out
}
