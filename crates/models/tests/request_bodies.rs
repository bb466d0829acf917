//! Every request body the client sends, built with the models and written in the 1.5 dialect,
//! validates against the official STET 1.5.0.43 JSON schema; written in the 1.4 dialect, the
//! payment request and funds confirmation validate against the official 1.4.0.47 schema. Broken
//! bodies are rejected, so the validator is known to bite.

mod common;

use serde_json::{Value, json};
use stet_models::*;

/// A validator for one schema of a spec, `$ref`s resolved inside the spec's own document.
fn validator(spec: &Value, pointer_base: &str, schema: &str) -> jsonschema::Validator {
    let (container, key) = match pointer_base {
        "#/components/schemas/" => (
            "components",
            json!({"schemas": spec["components"]["schemas"]}),
        ),
        "#/definitions/" => ("definitions", spec["definitions"].clone()),
        other => panic!("unknown base {other}"),
    };
    let doc = json!({"$ref": format!("{pointer_base}{schema}"), container: key});
    jsonschema::options()
        .should_validate_formats(true)
        .build(&doc)
        .unwrap_or_else(|e| panic!("building a validator for {schema}: {e}"))
}

fn assert_valid(spec: &Value, base: &str, schema: &str, body: &Value) {
    let v = validator(spec, base, schema);
    let errors: Vec<String> = v
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{schema} body does not validate:\n{body:#}\n{errors:#?}"
    );
}

fn assert_invalid(spec: &Value, base: &str, schema: &str, body: &Value) {
    assert!(
        !validator(spec, base, schema).is_valid(body),
        "{schema}: this broken body validates:\n{body:#}"
    );
}

fn v15(body: &impl serde::Serialize) -> Value {
    // Through bytes, as on the wire.
    serde_json::from_slice(&to_json_vec(body, Dialect::V1_5).unwrap()).unwrap()
}

fn v14(body: &impl serde::Serialize) -> Value {
    serde_json::from_slice(&to_json_vec(body, Dialect::V1_4).unwrap()).unwrap()
}

fn amount(text: &str) -> AmountType {
    AmountType {
        amount: text.parse().unwrap(),
        currency: "EUR".into(),
    }
}

fn iban(iban: &str) -> AccountIdentification {
    AccountIdentification {
        iban: Some(iban.into()),
        ..Default::default()
    }
}

fn party(name: &str) -> PartyIdentification {
    PartyIdentification {
        name: name.into(),
        postal_address: Some(PostalAddress {
            country: "FR".into(),
            address_line: vec!["18 rue de la DSP2".into(), "75008 PARIS".into()],
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn beneficiary() -> Beneficiary {
    Beneficiary {
        creditor: party("Marchand SARL"),
        creditor_account: Some(iban("FR7612345987650123456789014")),
        creditor_agent: Some(FinancialInstitutionIdentification {
            bic_fi: "BNKAFRPPXXX".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn when(text: &str) -> StetDateTime {
    text.parse().unwrap()
}

/// A SEPA credit transfer of 12.10 EUR, as the client builds it.
fn sepa_credit_transfer() -> PaymentRequestResource {
    PaymentRequestResource {
        resource_id: None,
        payment_information_id: "MyPmtInfId-2024-0001".into(),
        beneficiary: None,
        batch_booking: None,
        creation_date_time: when("2024-03-01T10:26:43.123+01:00"),
        number_of_transactions: 1,
        initiating_party: PartyIdentification {
            name: "Stet Client PISP".into(),
            ..Default::default()
        },
        accept_debtor_account_change: None,
        accept_charge_handling_change: None,
        accept_instant_payment_downgrade: None,
        payment_type_information: PaymentTypeInformation {
            service_level: Some(ServiceLevelCode::Sepa),
            category_purpose: Some(CategoryPurposeCode::Dvpm),
            ..Default::default()
        },
        debtor: Some(party("Jean Dupont")),
        debtor_account: Some(iban("FR7630006000011234567890189")),
        debtor_agent: None,
        charge_bearer: Some(ChargeBearerCode::Slev),
        payment_information_status: None,
        status_reason_information: None,
        funds_availability: None,
        booking: None,
        credit_transfer_transaction: vec![CreditTransferTransactionResource {
            payment_id: PaymentIdentification {
                instruction_id: "MyInstrId-1".into(),
                end_to_end_id: Some("MyEndToEndId-1".into()),
                uetr: None,
            },
            requested_execution_date: Some(when("2024-03-02T00:00:00+01:00")),
            instructed_amount: Some(amount("12.10")),
            beneficiary: Some(beneficiary()),
            remittance_information: Some(RemittanceInformation::line("Facture 42")),
            ..Default::default()
        }],
        supplementary_data: SupplementaryData {
            accepted_authentication_approach: vec![AuthenticationApproach::Redirect],
            successful_report_url: Some("https://tpp.example/ok".into()),
            unsuccessful_report_url: Some("https://tpp.example/ko".into()),
            ..Default::default()
        },
        requested_execution_date: None,
        purpose: None,
        ultimate_creditor: None,
    }
}

fn instant_transfer() -> PaymentRequestResource {
    let mut p = sepa_credit_transfer();
    p.payment_type_information.local_instrument = Some("INST".into());
    p.accept_instant_payment_downgrade = Some(true);
    p
}

fn standing_order() -> PaymentRequestResource {
    let mut p = sepa_credit_transfer();
    p.payment_type_information.category_purpose = Some(CategoryPurposeCode::Cash);
    let t = &mut p.credit_transfer_transaction[0];
    t.standing_order_characteristics = Some(StandingOrderCharacteristics {
        start_date: when("2024-04-05T00:00:00+02:00"),
        end_date: Some(when("2025-04-05T00:00:00+02:00")),
        execution_rule: ExecutionRule::Fwng,
        frequency: FrequencyCode::Mnth,
    });
    t.requested_execution_date = Some(when("2024-04-05T00:00:00+02:00"));
    p
}

/// A cancellation: the request as read back from the bank, with status CANC and a reason.
fn cancellation() -> PaymentRequestResource {
    let mut p = sepa_credit_transfer();
    p.resource_id = Some("MyPmtInfRscId".into());
    p.payment_information_status = Some(PaymentInformationStatusCode::Canc);
    p.status_reason_information = Some(StatusReasonInformation::Ds02);
    p
}

fn consent() -> Access {
    Access {
        owners: vec![],
        balances: vec![iban("FR7630006000011234567890189")],
        transactions: vec![iban("FR7630006000011234567890189")],
        overdrafts: vec![],
        trusted_beneficiaries: false,
        trusted_workspace_beneficiaries: vec![],
        psu_identity: true,
    }
}

fn funds_confirmation() -> PaymentCoverageRequestResource {
    PaymentCoverageRequestResource {
        payment_coverage_request_id: "MyCoverage123456".into(),
        payee: Some("Marchand SARL".into()),
        instructed_amount: Some(amount("0.10")),
        account_id: iban("FR7630006000011234567890189"),
    }
}

const S15: &str = "#/components/schemas/";
const S14: &str = "#/definitions/";

#[test]
fn payment_requests_validate_against_the_official_1_5_schema() {
    let spec = common::official_1_5();
    for (what, body) in [
        ("SEPA credit transfer", sepa_credit_transfer()),
        ("instant transfer", instant_transfer()),
        ("standing order", standing_order()),
        ("cancellation", cancellation()),
    ] {
        let json = v15(&body);
        eprintln!("{what}: {json}");
        assert_valid(&spec, S15, "PaymentRequestResource", &json);
    }
    // The amount goes out as a JSON number with its exact digits.
    let bytes = to_json_vec(&sepa_credit_transfer(), Dialect::V1_5).unwrap();
    assert!(
        String::from_utf8(bytes)
            .unwrap()
            .contains(r#""amount":12.10,"#)
    );
}

#[test]
fn consent_funds_check_and_confirmation_validate_against_the_official_1_5_schema() {
    let spec = common::official_1_5();
    assert_valid(&spec, S15, "Access", &v15(&consent()));
    assert_valid(
        &spec,
        S15,
        "PaymentCoverageRequestResource",
        &v15(&funds_confirmation()),
    );
    let empty = ConfirmationResource::default();
    assert_eq!(to_json_string(&empty, Dialect::V1_5).unwrap(), "{}");
    assert_valid(&spec, S15, "ConfirmationResource", &v15(&empty));
    let embedded = ConfirmationResource {
        nonce: Some("Nonce56fdd".into()),
        psu_authentication_factor: Some("123456".into()),
    };
    assert_valid(&spec, S15, "ConfirmationResource", &v15(&embedded));
}

#[test]
fn broken_bodies_are_rejected() {
    let spec = common::official_1_5();
    // 1.4 dialect (amount as a string, remittance as an array) is not 1.5.
    assert_invalid(
        &spec,
        S15,
        "PaymentRequestResource",
        &v14(&sepa_credit_transfer()),
    );
    // A required field missing.
    let mut body = v15(&sepa_credit_transfer());
    body.as_object_mut().unwrap().remove("supplementaryData");
    assert_invalid(&spec, S15, "PaymentRequestResource", &body);
    // A value outside an enum.
    let mut body = v15(&consent());
    body["psuIdentity"] = json!("yes");
    assert_invalid(&spec, S15, "Access", &body);
    // An unknown code kept by an open enum is written back, and the schema catches it.
    let mut p = cancellation();
    p.status_reason_information = Some("DUPL".into());
    assert_invalid(&spec, S15, "PaymentRequestResource", &v15(&p));
    // A bad date-time format.
    let mut body = v15(&sepa_credit_transfer());
    body["creationDateTime"] = json!("01/03/2024");
    assert_invalid(&spec, S15, "PaymentRequestResource", &body);
}

fn official_1_4() -> Value {
    let path = common::reference_dir().join("stet-psd2-api-v1.4.0.47.swagger.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::from_str(&text).unwrap()
}

/// The 1.4 shape of a payment request: execution date and beneficiary on the request.
fn sepa_credit_transfer_1_4() -> PaymentRequestResource {
    let mut p = sepa_credit_transfer();
    p.requested_execution_date = Some(when("2024-03-02T00:00:00+01:00"));
    p.beneficiary = Some(beneficiary());
    p.payment_type_information.category_purpose = Some(CategoryPurposeCode::Dvpm);
    let t = &mut p.credit_transfer_transaction[0];
    t.requested_execution_date = None;
    t.beneficiary = None;
    p
}

#[test]
fn the_1_4_dialect_validates_against_the_official_1_4_schema() {
    let spec = official_1_4();
    let body = v14(&sepa_credit_transfer_1_4());
    assert_eq!(
        body["creditTransferTransaction"][0]["instructedAmount"]["amount"],
        json!("12.10")
    );
    assert_eq!(
        body["creditTransferTransaction"][0]["remittanceInformation"],
        json!(["Facture 42"])
    );
    assert_valid(&spec, S14, "PaymentRequestResource", &body);
    let mut funds = funds_confirmation();
    funds.instructed_amount = Some(amount("0.10"));
    assert_valid(&spec, S14, "PaymentCoverageRequestResource", &v14(&funds));
    let mut consent = v14(&consent());
    // 1.4 has no `owners`/`overdrafts` lists; extra members are allowed there.
    consent.as_object_mut().unwrap().remove("owners");
    assert_valid(&spec, S14, "Access", &consent);
    // And the 1.5 dialect is not 1.4.
    assert_invalid(
        &spec,
        S14,
        "PaymentRequestResource",
        &v15(&sepa_credit_transfer_1_4()),
    );
}
