//! Hand-made STET 1.4-style payloads (amounts as strings, dates without time, remittance as an
//! array or a bare string, unknown enum values and bank fields) parse, keep their raw JSON, and
//! come back unchanged through a write and a re-read in either dialect, money exact.

use serde::Serialize;
use serde::de::DeserializeOwned;
use stet_models::*;

fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// parse -> write (dialect) -> parse gives the same value, and writing again the same bytes.
fn assert_stable<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: &T) {
    for dialect in [Dialect::V1_4, Dialect::V1_5] {
        let bytes = to_json_vec(value, dialect).unwrap();
        let again: T = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            &again,
            value,
            "{dialect:?}: {}",
            String::from_utf8_lossy(&bytes)
        );
        assert_eq!(to_json_vec(&again, dialect).unwrap(), bytes, "{dialect:?}");
    }
}

#[test]
fn transactions_1_4() {
    let page: HalTransactions = parse_response(&data("transactions-1.4.json")).unwrap();
    let [a, b, c] = &page.transactions[..] else {
        panic!("three transactions expected");
    };
    assert_eq!(a.transaction_amount.amount.to_string(), "12.10");
    assert_eq!(a.credit_debit_indicator, CreditDebitIndicator::Dbit);
    assert_eq!(a.booking_date.unwrap().to_string(), "2018-02-12");
    assert_eq!(
        a.remittance_information.as_ref().unwrap().text(),
        "SEPA CREDIT TRANSFER from PSD2Company Facture 42"
    );
    assert_eq!(b.transaction_amount.amount.to_string(), "-0.30");
    assert_eq!(b.value_date, None, "an empty string is an absent date");
    assert_eq!(
        b.remittance_information.as_ref().unwrap().unstructured,
        ["CB CARREFOUR 12/02"]
    );
    // Bank fields the models do not know stay in the raw JSON.
    assert_eq!(b.to_value()["cardNumber"], "4970XXXXXXXX1234");
    assert_eq!(
        c.transaction_amount.amount.to_string(),
        "1234567890123.12345"
    );
    assert_eq!(
        page.links.as_ref().unwrap().next.as_ref().unwrap().href,
        "https://bank.example/v1/accounts/Alias1/transactions?afterEntryReference=AF5T3"
    );
    assert_stable(&page);

    // Money stays exact through the dialects: the sum of the three is computed in decimal.
    let total: rust_decimal::Decimal = page
        .transactions
        .iter()
        .map(|t| t.transaction_amount.amount.decimal())
        .sum();
    assert_eq!(total.to_string(), "1234567890134.92345");
    let v14 = to_json_string(&page, Dialect::V1_4).unwrap();
    assert!(v14.contains(r#""amount":"1234567890123.12345""#), "{v14}");
    let v15 = to_json_string(&page, Dialect::V1_5).unwrap();
    assert!(v15.contains(r#""amount":1234567890123.12345"#), "{v15}");
    assert!(v15.contains(r#""amount":12.10"#), "{v15}");
}

#[test]
fn accounts_1_4() {
    let accounts: HalAccounts = parse_response(&data("accounts-1.4.json")).unwrap();
    let current = &accounts.accounts[0];
    assert_eq!(current.psu_status.as_deref(), Some("Co-account Holder"));
    let balances = &current.balances;
    assert_eq!(
        balances[0].reference_date.unwrap().to_string(),
        "2018-02-12"
    );
    assert_eq!(balances[1].balance_type, BalanceStatus::Itav);
    assert_eq!(balances[1].balance_amount.amount.to_string(), "1249.90");
    assert_eq!(current.to_value()["accountId"]["area"]["areaId"], "81");
    let card = &accounts.accounts[1];
    assert_eq!(card.cash_account_type, CashAccountType::Card);
    assert_eq!(
        card.account_id
            .as_ref()
            .unwrap()
            .other
            .as_ref()
            .unwrap()
            .scheme_name,
        "CPAN"
    );
    assert_eq!(accounts.connected_psu.as_deref(), Some("M. Jean Dupont"));
    assert_stable(&accounts);
}

#[test]
fn payment_request_1_4() {
    let pr: HalPaymentRequest = parse_response(&data("payment-request-1.4.json")).unwrap();
    let p = &pr.payment_request;
    assert_eq!(
        p.supplementary_data
            .applied_authentication_approach
            .as_ref()
            .and_then(Lenient::get),
        Some(&AuthenticationApproach::Embedded)
    );
    assert_eq!(
        p.payment_information_status,
        Some(PaymentInformationStatusCode::Acsc)
    );
    assert_eq!(
        p.requested_execution_date.unwrap().to_string(),
        "2018-04-01T10:00:00+02:00"
    );
    assert!(p.beneficiary.is_some());
    let t = &p.credit_transfer_transaction[0];
    assert_eq!(
        t.instructed_amount.as_ref().unwrap().amount.to_string(),
        "124.35"
    );
    assert_eq!(t.requested_execution_date, None);
    assert_stable(&pr);
}

#[test]
fn unknown_codes_are_kept() {
    let json = br#"{"transactions": [{"transactionAmount": {"amount": 1, "currency": "EUR"},
        "creditDebitIndicator": "DBIT", "status": "ACCO", "bankTransactionCode":
        {"domain": "FR", "family": "01", "subFamily": "05"}}]}"#;
    let page: HalTransactions = parse_response(json).unwrap();
    assert_eq!(
        page.transactions[0].status,
        TransactionStatus::Other("ACCO".into())
    );
    assert!(
        to_json_string(&page, Dialect::V1_5)
            .unwrap()
            .contains(r#""status":"ACCO""#)
    );
}

#[test]
fn errors_say_which_resource() {
    let err = parse_response::<HalBalances>(b"{\"balances\": 3}").unwrap_err();
    assert_eq!(err.schema, "HalBalances");
    assert!(err.to_string().contains("HalBalances"), "{err}");
    // Empty bodies (204) are not JSON: the caller must not parse them.
    assert!(parse_response::<HalAccounts>(b"").is_err());
}
