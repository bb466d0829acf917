//! Registration bodies and the sandbox's answers against the official STET registration 1.0.5
//! Swagger file (`../shared/reference/stet/`), with a validator nobody here wrote (jsonschema).
//!
//! Every built-in bank's creation and update body is checked: the spec-shaped ones validate;
//! the variants that break the spec (Crédit Agricole's bare `jwks` array, CIC without
//! `provider_legal_id` and with `"kid": null`, BPCE's `contact` object) fail exactly where their profile says they
//! differ, and nowhere else.

mod support;

use serde_json::{Value, json};
use stet_client::bank::BankProfiles;
use stet_client::registration::{
    BodyInput, QsealCertificate, RegisteredKey, Registrar, RegistrationError, kid_for, request_body,
};
use stet_client::transport::RegistrationMetadata;
use stet_sandbox::{Sandbox, SandboxConfig};

/// The official file, with its two broken `$ref`s patched: the POST body names
/// `#/definitions/RegistrationRequest` (defined as `RegistrationRequestResource`) and the PUT
/// body `#/parameters/RegistrationRecordparameter` (defined as `RegistrationRecordParameter`).
fn spec() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/reference/stet/stet-oauth2-registration-v1.0.5.swagger.json"
    );
    let text = std::fs::read_to_string(path).expect("the official registration spec in ../shared");
    assert!(
        text.contains("\"#/definitions/RegistrationRequest\""),
        "the defect is still there"
    );
    let patched = text
        .replace(
            "\"#/definitions/RegistrationRequest\"",
            "\"#/definitions/RegistrationRequestResource\"",
        )
        .replace(
            "\"#/parameters/RegistrationRecordparameter\"",
            "\"#/parameters/RegistrationRecordParameter\"",
        );
    serde_json::from_str(&patched).unwrap()
}

/// The errors of `value` against the schema at `reference` (a `$ref` into the file).
fn errors(spec: &Value, reference: &str, value: &Value) -> Vec<String> {
    let doc = json!({
        "$ref": reference,
        "definitions": spec["definitions"],
        "parameters": spec["parameters"],
    });
    let validator = jsonschema::options().build(&doc).unwrap();
    validator
        .iter_errors(value)
        .map(|e| format!("{e} at `{}`", e.instance_path()))
        .collect()
}

/// The schema of an operation's body parameter, followed from the path as a generator would.
fn body_schema(spec: &Value, path: &str, method: &str) -> String {
    let parameter = spec["paths"][path][method]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|p| {
            let name = p["$ref"].as_str()?.strip_prefix("#/parameters/")?;
            (spec["parameters"][name]["in"] == "body").then(|| name.to_owned())
        })
        .unwrap_or_else(|| panic!("{method} {path} has no body parameter"));
    spec["parameters"][&parameter]["schema"]["$ref"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn every_banks_bodies_against_the_official_schema() {
    let spec = spec();
    let post = body_schema(&spec, "/register", "post");
    assert_eq!(post, "#/definitions/RegistrationRequestResource");
    let put = body_schema(&spec, "/register/{clientId}", "put");
    // The PUT body is a RegistrationRecord, whose `required` names three fields the spec's
    // own text says MUST NOT be sent in an update (registration_access_token,
    // registration_client_uri, and the issued-at/expiry times): the update is checked
    // against the record without those three requirements.
    assert_eq!(put, "#/definitions/RegistrationRecord");
    let mut update_spec = spec.clone();
    update_spec["definitions"]["RegistrationRecord"]["required"] = json!(["client_id"]);

    let dir = tempfile::tempdir().unwrap();
    let pki = stet_sandbox::pki::generate(dir.path()).unwrap();
    let cert =
        QsealCertificate::from_bytes(&pki.read("tpp-qseal.pem").unwrap(), "tpp-qseal.pem").unwrap();
    let metadata = RegistrationMetadata {
        contacts: Some(vec!["ops@tpp.example".into()]),
        client_uri: Some("https://tpp.example".into()),
        ..RegistrationMetadata::default()
    };
    let banks = BankProfiles::builtin();
    let mut checked = 0;
    for bank in banks.all().unwrap() {
        let rules = &bank.registration;
        let kid = kid_for(rules.kid, &cert, Some("https://tpp.example/qseal.pem"));
        let input = |client_id: Option<&str>| BodyInput {
            keys: vec![RegisteredKey {
                cert: &cert,
                kid: kid.clone(),
            }],
            redirect_uris: vec!["https://tpp.example/callback".into()],
            metadata: &metadata,
            client_id: client_id.map(str::to_owned),
            registration_access_token: Some("rat".into()),
        };
        let create = request_body(rules, &bank.scopes, &input(None)).unwrap();
        let update = request_body(rules, &bank.scopes, &input(Some("client-1"))).unwrap();
        let found = (
            errors(&spec, &post, &create),
            errors(&update_spec, &put, &update),
        );
        // Where each variant leaves the spec, as its profile says: Crédit Agricole omits
        // token_endpoint_auth_method, writes grant types in capitals (outside the spec's enum)
        // and jwks as an array; CIC omits provider_legal_id; BPCE has a `contact` object
        // instead of `contacts`, and CIC a `"kid": null` for the bank to fill. A record (the update) requires neither of the omitted fields.
        let grants: &[&str] = &[
            "\"AUTHORIZATION_CODE\" is not one of",
            "\"REFRESH_TOKEN\" is not one of",
            "\"CLIENT_CREDENTIALS\" is not one of",
        ];
        let jwks = "is not of type \"object\" at `/jwks`";
        let kid_null = "null is not of type \"string\" at `/jwks/keys/0/kid`";
        let (on_create, on_update): (Vec<&str>, Vec<&str>) = match bank.name.as_str() {
            "credit-agricole" => (
                [
                    &[
                        "\"token_endpoint_auth_method\" is a required property",
                        jwks,
                    ][..],
                    grants,
                ]
                .concat(),
                [&[jwks][..], grants].concat(),
            ),
            "credit-mutuel-cic" => (
                vec!["\"provider_legal_id\" is a required property", kid_null],
                vec![kid_null],
            ),
            "bpce" => (vec!["\"contacts\" is a required property"], vec![]),
            _ => (vec![], vec![]),
        };
        for (what, errors, expected) in [
            ("creation", &found.0, on_create),
            ("update", &found.1, on_update),
        ] {
            assert_eq!(
                errors.len(),
                expected.len(),
                "{} {what}: {errors:#?}",
                bank.name
            );
            for wanted in &expected {
                assert!(
                    errors.iter().any(|e| e.contains(wanted)),
                    "{} {what}: no error says `{wanted}`: {errors:#?}",
                    bank.name
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 8, "the generic form and every bank variant");
}

#[tokio::test]
async fn the_sandboxs_records_and_refusals_against_the_official_schema() {
    let spec = spec();
    let bank = Sandbox::start(SandboxConfig::default()).await.unwrap();
    let info = bank.info().clone();
    let mut profile = support::transport_profile(&info);
    let origin = info.token_url.trim_end_matches("/token").to_owned();
    profile.registration_url = Some(url::Url::parse(&format!("{origin}/v1/register")).unwrap());
    let bank_profile = BankProfiles::builtin().get("sandbox").unwrap();
    let registrar = Registrar::new(&profile, &bank_profile).unwrap();
    let cert =
        QsealCertificate::from_bytes(&std::fs::read(&info.qseal_cert).unwrap(), "qseal").unwrap();
    let metadata = RegistrationMetadata {
        contacts: Some(vec!["ops@tpp.example".into()]),
        ..RegistrationMetadata::default()
    };
    let body = |redirect: &str| {
        request_body(
            &bank_profile.registration,
            &bank_profile.scopes,
            &BodyInput {
                keys: vec![RegisteredKey {
                    cert: &cert,
                    kid: Some("kid-1".into()),
                }],
                redirect_uris: vec![redirect.to_owned()],
                metadata: &metadata,
                client_id: None,
                registration_access_token: None,
            },
        )
        .unwrap()
    };

    let state = registrar
        .create(&body("https://tpp.example/cb"))
        .await
        .unwrap();
    let record = registrar.read(&state).await.unwrap().record;
    // The record as the bank sent it (secrets put back: they are strings in the schema too).
    let mut full = record.clone();
    full["registration_access_token"] = json!(state.registration_access_token);
    let found = errors(&spec, "#/definitions/RegistrationRecord", &full);
    assert!(found.is_empty(), "{found:#?}\n{full:#}");

    // A refusal: the raw answer is the spec's ErrorModel_400, and the registrar's error
    // names it.
    let refused = body("http://tpp.example/cb");
    let mut raw = profile.clone();
    raw.api_base = url::Url::parse(&format!("{origin}/v1/register")).unwrap();
    let transport = stet_client::transport_builder(&raw, &bank_profile)
        .build()
        .unwrap();
    let response = transport
        .send(&stet_client::transport::StetRequest::with_body(
            stet_client::transport::Method::POST,
            raw.api_base.as_str(),
            serde_json::to_vec(&refused).unwrap(),
            stet_client::transport::Auth::None,
        ))
        .await
        .unwrap();
    assert_eq!(response.status, 400);
    let model: Value = serde_json::from_slice(&response.body).unwrap();
    let found = errors(&spec, "#/definitions/ErrorModel_400", &model);
    assert!(found.is_empty(), "{found:#?}\n{model:#}");
    match registrar.create(&refused).await {
        Err(RegistrationError::Refused { error, .. }) => assert_eq!(error, "invalid_redirect_uri"),
        other => panic!("expected invalid_redirect_uri, got {other:?}"),
    }
    bank.shutdown().await;
}
