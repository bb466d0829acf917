//! Every response body of the sandbox validates against the official STET 1.5.0.43 schema.

mod common;

use common::Tpp;
use serde_json::{Value, json};
use stet_sandbox::{Sandbox, SandboxConfig};

fn spec() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/reference/stet/stet-psd2-api-v1.5.0.43.openapi.json"
    );
    serde_json::from_slice(&std::fs::read(path).expect("the official 1.5 spec in ../shared"))
        .unwrap()
}

fn check(spec: &Value, schema: &str, status: u16, expected: u16, body: &[u8], what: &str) {
    assert_eq!(
        status,
        expected,
        "{what}: {}",
        String::from_utf8_lossy(body)
    );
    let doc = json!({
        "$ref": format!("#/components/schemas/{schema}"),
        "components": {"schemas": spec["components"]["schemas"]},
    });
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(&doc)
        .unwrap();
    let value: Value = serde_json::from_slice(body).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&value)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} ({schema}):\n{value:#}\n{errors:#?}"
    );
}

#[tokio::test]
async fn every_response_validates_against_the_official_1_5_schema() {
    let spec = spec();
    let bank = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let tpp = Tpp::new(bank.info());
    let aisp = tpp
        .code_flow("aisp extended_transaction_history", None)
        .await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let ok = |schema: &'static str, status: u16| (schema, status);
    for (path, (schema, status)) in [
        ("/accounts", ok("HalAccounts", 200)),
        ("/accounts/ACC0001/balances", ok("HalBalances", 200)),
        ("/accounts/ACC0001/transactions", ok("HalTransactions", 200)),
        (
            "/accounts/ACC0001/transactions?page=2",
            ok("HalTransactions", 200),
        ),
        ("/accounts/ACC0001/overdrafts", ok("HalOverdrafts", 200)),
        ("/accounts/ACC0001/owners", ok("HalOwners", 200)),
        ("/end-user-identity", ok("HalEndUserIdentity", 200)),
        ("/trusted-beneficiaries", ok("HalBeneficiaries", 200)),
        ("/accounts/NOPE/balances", ok("ErrorModel", 404)),
        ("/accounts?page=99", ok("Error400Model", 400)),
    ] {
        let a = tpp.call("GET", path, &aisp, None).await;
        check(&spec, schema, a.status, status, &a.body, path);
    }
    let a = tpp.call("GET", "/accounts", "bad", None).await;
    check(&spec, "ErrorModel", a.status, 401, &a.body, "bad token");
    let req = tpp.signed(
        "GET",
        &format!("{}/accounts", bank.info().api_base),
        Some(&aisp),
        &[],
        b"",
    );
    let mut tampered = req.clone();
    tampered.set_header("X-Request-ID", "other");
    let a = tpp.send(&tampered).await;
    check(
        &spec,
        "ErrorModel",
        a.status,
        401,
        &a.body,
        "signature mismatch",
    );

    let accounts = tpp.call("GET", "/accounts", &aisp, None).await.json();
    let iban = accounts["accounts"][0]["accountId"]["iban"]
        .as_str()
        .unwrap()
        .to_owned();
    let cbpii = tpp.client_credentials("cbpii").await;
    let body = json!({"paymentCoverageRequestId": "MyCoverage", "payee": "Shop",
                      "instructedAmount": {"currency": "EUR", "amount": 12.5},
                      "accountId": {"iban": iban}});
    let a = tpp
        .call("POST", "/funds-confirmations", &cbpii, Some(&body))
        .await;
    check(
        &spec,
        "HalPaymentCoverageReport",
        a.status,
        200,
        &a.body,
        "funds",
    );

    let cc = tpp.client_credentials("pisp").await;
    let payment = json!({
        "paymentInformationId": "MyPmtInfId",
        "creationDateTime": "2025-06-15T10:00:00.000+01:00",
        "numberOfTransactions": 1,
        "initiatingParty": {"name": "Example TPP", "postalAddress": {"country": "FR", "addressLine": ["1 rue de la Paix", "75002 PARIS"]}},
        "paymentTypeInformation": {"serviceLevel": "SEPA", "localInstrument": "INST", "categoryPurpose": "DVPM"},
        "chargeBearer": "SLEV",
        "creditTransferTransaction": [{
            "paymentId": {"instructionId": "MyInstrId", "endToEndId": "MyEndToEndId"},
            "requestedExecutionDate": "2025-06-16T00:00:00.000+01:00",
            "beneficiary": {"creditor": {"name": "Marie Martin"}, "creditorAccount": {"iban": "FR7630006000011234567890189"}},
            "instructedAmount": {"currency": "EUR", "amount": 124.35},
            "remittanceInformation": {"unstructured": ["Facture 42"]}
        }],
        "supplementaryData": {
            "acceptedAuthenticationApproach": ["REDIRECT"],
            "successfulReportUrl": "http://127.0.0.1:4567/ok",
            "unsuccessfulReportUrl": "http://127.0.0.1:4567/ko"
        }
    });
    let a = tpp
        .call("POST", "/payment-requests", &cc, Some(&payment))
        .await;
    check(
        &spec,
        "HalAuthenticationRequest",
        a.status,
        201,
        &a.body,
        "create payment",
    );
    let approval = a.json()["_links"]["consentApproval"]["href"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = a.headers["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let a = tpp
        .call("GET", &format!("/payment-requests/{id}"), &cc, None)
        .await;
    check(
        &spec,
        "HalPaymentRequest",
        a.status,
        200,
        &a.body,
        "payment RCVD",
    );
    let psu = tpp.code_flow("pisp", Some(&approval)).await["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let a = tpp
        .call(
            "POST",
            &format!("/payment-requests/{id}/confirmation"),
            &psu,
            Some(&json!({})),
        )
        .await;
    check(
        &spec,
        "HalPaymentRequest",
        a.status,
        200,
        &a.body,
        "confirmation",
    );
    let a = tpp
        .call(
            "GET",
            &format!("/payment-requests/{id}/transactions"),
            &cc,
            None,
        )
        .await;
    check(
        &spec,
        "HalCreditTransfertTransactions",
        a.status,
        200,
        &a.body,
        "payment transactions",
    );
    let a = tpp
        .call("POST", "/payment-requests", &cc, Some(&payment))
        .await;
    let id2 = a.headers["location"]
        .to_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let mut cancel = payment.clone();
    cancel["paymentInformationStatus"] = json!("CANC");
    cancel["statusReasonInformation"] = json!("DS02");
    let a = tpp
        .call(
            "PUT",
            &format!("/payment-requests/{id2}"),
            &cc,
            Some(&cancel),
        )
        .await;
    check(
        &spec,
        "HalAuthenticationRequest",
        a.status,
        200,
        &a.body,
        "cancellation",
    );
    bank.shutdown().await;
}
