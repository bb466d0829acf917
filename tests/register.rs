//! `stet register` against the sandbox bank, over real sockets: the spec's form (create, show,
//! update, rotate, delete, and the registered client then used for consent and signed calls)
//! and the BNP Paribas, Crédit Agricole, CIC, LCL, La Banque Postale and BPCE variants; bad
//! input refused with clear errors.

#![allow(missing_docs)]

mod support;

use std::path::{Path, PathBuf};

use serde_json::Value;
use stet_transport::inspect::{self, Psd2Statement, PspRole, QcType};
use support::*;

/// A QSealC of the sandbox's TPP (same organizationIdentifier), self-signed, with `roles`;
/// written as `NAME.pem` and `NAME.key`.
fn qseal(dir: &Path, name: &str, roles: Option<Vec<PspRole>>) -> (PathBuf, PathBuf) {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "Example TPP");
    params.distinguished_name.push(
        rcgen::DnType::CustomDnType(vec![2, 5, 4, 97]),
        stet_sandbox::TPP_ORGANIZATION_ID,
    );
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    if let Some(roles) = roles {
        let statements = inspect::encode_qc_statements(
            &[QcType::Seal],
            Some(&Psd2Statement {
                roles,
                nca_name: "Autorité de contrôle prudentiel et de résolution".to_owned(),
                nca_id: "FR-ACPR".to_owned(),
            }),
        )
        .unwrap();
        params.custom_extensions = vec![rcgen::CustomExtension::from_oid_content(
            &[1, 3, 6, 1, 5, 5, 7, 1, 3],
            statements,
        )];
    }
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).unwrap();
    let cert = params.self_signed(&key).unwrap();
    let (pem, key_path) = (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    );
    std::fs::write(&pem, cert.pem()).unwrap();
    write_private(&key_path, &key.serialize_pem());
    (pem, key_path)
}

/// A profile for `bank` registering at the sandbox endpoint `path`, with `registration` table
/// lines.
fn configure(env: &Env, bank: &str, path: &str, registration: &str) {
    let origin = env
        .sandbox
        .get("token_url")
        .trim_end_matches("/token")
        .to_owned();
    let body = env.profile_body(&[
        ("bank", &format!("{bank:?}")),
        ("registration_url", &format!("\"{origin}{path}\"")),
    ]);
    write_private(
        &env.config,
        &format!(
            "default_profile = \"sandbox\"\n\n# kept: a comment of the user's\n[profiles.sandbox]\n{body}\n[profiles.sandbox.registration]\ncontacts = [\"ops@tpp.example\"]\n{registration}"
        ),
    );
}

/// `stet register rotate` to the new QSealC `cert` and `key` (published at `key_id`, when
/// given), as JSON.
fn rotate(env: &Env, cert: &Path, key: &Path, key_id: Option<&str>) -> Out {
    let mut args = vec![
        "register",
        "rotate",
        "--qseal-cert",
        cert.to_str().unwrap(),
        "--qseal-key",
        key.to_str().unwrap(),
        "--output",
        "json",
    ];
    if let Some(key_id) = key_id {
        args.extend(["--key-id", key_id]);
    }
    env.run(&args)
}

/// The registration a command printed (`--output json` is one object, docs/output.md).
fn one(out: &Out) -> Value {
    let value = out.json();
    assert!(value.is_object(), "one object: {out}");
    value
}

/// A sandbox-only endpoint (no client certificate): `GET` when `body` is `None`.
fn sandbox_call(env: &Env, path: &str, body: Option<&str>) -> Value {
    let ca = std::fs::read(env.sandbox.get("ca")).expect("read the sandbox CA");
    let url = url::Url::parse(env.sandbox.get("api_base"))
        .and_then(|base| base.join(path))
        .expect("sandbox URL");
    let body = body.map(str::to_owned);
    block_on(async move {
        let client = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).expect("CA PEM")])
            .build()
            .expect("client");
        let request = match body {
            Some(body) => client.post(url).body(body),
            None => client.get(url),
        };
        let response = request.send().await.expect("the sandbox answers");
        assert_eq!(response.status().as_u16(), 200, "{path}");
        serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON")
    })
}

/// Every registration request the sandbox received: `[{method, path, body}]`.
fn received(env: &Env) -> Vec<Value> {
    sandbox_call(env, "/sandbox/registrations/requests", None)
        .as_array()
        .expect("an array")
        .clone()
}

/// The bank's staff approve the updates recorded for approval by hand.
fn approve(env: &Env) -> u64 {
    sandbox_call(env, "/sandbox/registrations/approve", Some("{}"))["approved"]
        .as_u64()
        .expect("approved: N")
}

/// A certificate as `x5c` carries it: base64 DER, read from the PEM here, not by stet.
fn x5c_of(pem: &Path) -> String {
    let text = std::fs::read_to_string(pem).unwrap();
    text.lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect()
}

fn config_value(env: &Env) -> toml::Table {
    toml::from_str(&std::fs::read_to_string(&env.config).unwrap()).unwrap()
}

fn profile_key<'a>(table: &'a toml::Table, key: &str) -> Option<&'a toml::Value> {
    table["profiles"]["sandbox"].get(key)
}

fn store_file(env: &Env) -> PathBuf {
    env.home.path().join("data/stet/registrations/sandbox.json")
}

fn stored(env: &Env) -> Value {
    serde_json::from_slice(&std::fs::read(store_file(env)).unwrap()).unwrap()
}

#[test]
fn the_spec_form_create_show_use_update_rotate_delete() {
    let env = Env::new();
    configure(
        &env,
        "sandbox",
        "/v1/register",
        "client_uri = \"https://tpp.example\"\n",
    );

    let out = env.run(&["register", "create", "--output", "json"]);
    let created = one(&out);
    let client_id = created["client_id"].as_str().unwrap().to_owned();
    assert!(client_id.starts_with("tpp-"), "{out}");
    assert_eq!(created["status"], "active", "{out}");
    let kid = created["kid"]
        .as_str()
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned();
    // What was sent is what the bank echoed: built from the QSealC and the profile.
    let record = &created["record"];
    assert_eq!(record["client_name"], "Example TPP");
    assert_eq!(
        record["provider_legal_id"],
        stet_sandbox::TPP_ORGANIZATION_ID
    );
    assert_eq!(record["token_endpoint_auth_method"], "tls_client_auth");
    assert_eq!(record["scope"], "aisp pisp cbpii");
    assert_eq!(record["client_uri"], "https://tpp.example");
    assert_eq!(record["jwks"]["keys"][0]["kid"], kid.as_str());
    assert_eq!(
        record["registration_access_token"], "<redacted>",
        "never printed"
    );

    // Kept: the profile (comments too) and the store (0600, with the secret).
    let text = std::fs::read_to_string(&env.config).unwrap();
    assert!(text.contains("# kept: a comment of the user's"), "{text}");
    let table = config_value(&env);
    assert_eq!(
        profile_key(&table, "client_id").unwrap().as_str(),
        Some(client_id.as_str())
    );
    assert_eq!(
        table["profiles"]["sandbox"]["registration"]["status"].as_str(),
        Some("active")
    );
    let state = stored(&env);
    let rat = state["registration_access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(rat.len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(store_file(&env))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    assert!(
        !out.stdout.contains(&rat) && !out.stderr.contains(&rat),
        "{out}"
    );

    // The doctor reads it.
    let doctor = env.run(&["doctor"]);
    assert!(
        doctor.stdout.contains(&format!(
            "ok   registration: client_id {client_id} registered at sandbox (active, kid {kid})"
        )),
        "{doctor}"
    );

    // Once is enough.
    env.run(&["register", "create"])
        .fails(78, "already registered");

    // The registered client is a client of the bank: consent with it, and its kid signs.
    env.login(&[]);
    assert_eq!(env.accounts().len(), 3);
    let mut with_kid = env.command(&["accounts", "--psu-ip", PSU_IP, "--output", "json"]);
    with_kid.env("STET_KEY_ID", &kid);
    let out = finished(&["accounts (kid)"], with_kid);
    out.ok();

    let shown = env.run(&["register", "show", "--output", "json"]).json();
    assert_eq!(shown["client_id"], client_id.as_str());
    let updated = env.run(&["register", "update", "--output", "json"]).json();
    assert_eq!(updated["status"], "active");

    // Rotation: the new QSealC replaces the old one under a new kid.
    let (new_cert, new_key) = qseal(
        env.home.path(),
        "qseal-2027",
        Some(vec![
            PspRole::AccountInformation,
            PspRole::PaymentInitiation,
            PspRole::CardIssuing,
        ]),
    );
    let rotated_out = rotate(&env, &new_cert, &new_key, None);
    let rotated = one(&rotated_out);
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    assert!(rotated_out.stderr.contains("publish"), "{rotated_out}");
    assert_ne!(new_kid, kid);
    let table = config_value(&env);
    assert_eq!(
        profile_key(&table, "qseal_key").unwrap().as_str(),
        new_key.to_str()
    );
    let signed_with = |key_id: &str| {
        let mut cmd = env.command(&["accounts", "--psu-ip", PSU_IP]);
        cmd.env("STET_KEY_ID", key_id);
        finished(&["accounts"], cmd)
    };
    signed_with(&new_kid).ok();
    let mut old = env.command(&["accounts", "--psu-ip", PSU_IP]);
    old.env("STET_KEY_ID", &kid)
        .env("STET_QSEAL_KEY", env.sandbox.get("qseal_key"));
    finished(&["accounts"], old).fails(77, "unknown keyId");

    // Delete: gone at the bank, its client id refused from then on. (The profile's key_id
    // is a URL to the QSealC: the rotation said to publish the new one there; the new kid
    // stands in for it here.)
    let mut delete = env.command(&["register", "delete"]);
    delete.env("STET_KEY_ID", &new_kid);
    finished(&["register delete"], delete).ok();
    assert!(!store_file(&env).exists());
    env.run(&["register", "show"])
        .fails(78, "stet register create");
    let mut refused = env.command(&[
        "funds-check",
        "--account",
        "FR7630004010006746778722047",
        "--amount",
        "1.00",
        "--psu-ip",
        PSU_IP,
    ]);
    refused.env("XDG_DATA_HOME", env.home.path().join("fresh-data"));
    finished(&["funds-check"], refused).fails(77, "unknown client_id");
}

#[test]
fn the_bnp_credit_agricole_and_cic_variants() {
    // BNP Paribas: `context: psd2`, a client secret, updates approved by hand.
    let env = Env::new();
    configure(&env, "bnp-paribas", "/psd2/register", "");
    let created = env.run(&["register", "create", "--output", "json"]).json();
    assert_eq!(created["record"]["context"], "psd2");
    assert_eq!(created["record"]["jwks"]["keys"][0]["kty"], "RS256");
    assert_eq!(created["record"]["client_secret"], "<redacted>");
    assert!(
        stored(&env)["client_secret"]
            .as_str()
            .is_some_and(|s| s.len() == 64)
    );
    let out = env.run(&["register", "update", "--output", "json"]);
    assert_eq!(one(&out)["status"], "pending", "{out}");
    assert!(out.stderr.contains("We will contact you"), "{out}");
    let doctor = env.run(&["doctor"]);
    assert!(
        doctor
            .stdout
            .contains("warn registration: bnp-paribas approves it by hand"),
        "{doctor}"
    );
    env.run(&["register", "delete"]).fails(78, "has no DELETE");

    // Crédit Agricole: bare jwks array, x5c a string, grants in capitals, 200, the token in
    // the PUT body.
    let env = Env::new();
    configure(
        &env,
        "credit-agricole",
        "/psd2_actor_registration/v1/tpp_consumers",
        "",
    );
    let created = env.run(&["register", "create", "--output", "json"]).json();
    let record = &created["record"];
    assert!(
        record["jwks"].is_array() && record["jwks"][0]["x5c"].is_string(),
        "{record}"
    );
    assert_eq!(record["grant_types"][0], "AUTHORIZATION_CODE");
    assert!(record.get("scope").is_none());
    let updated = env.run(&["register", "update", "--output", "json"]).json();
    assert_eq!(updated["status"], "active");
    assert_eq!(updated["client_id"], created["client_id"]);

    // CIC: not signed, the bank assigns the kid (the keyId from then on), rotation adds a key.
    let env = Env::new();
    configure(&env, "credit-mutuel-cic", "/cic/oauth2/registrations", "");
    let created = env.run(&["register", "create", "--output", "json"]).json();
    let kid = created["kid"].as_str().unwrap().to_owned();
    assert_eq!(kid.len(), 24, "a bank-assigned hex kid: {created}");
    let table = config_value(&env);
    assert_eq!(
        profile_key(&table, "key_id").unwrap().as_str(),
        Some(kid.as_str())
    );
    let (new_cert, new_key) = qseal(
        env.home.path(),
        "qseal-next",
        Some(vec![PspRole::AccountInformation]),
    );
    let rotated = one(&rotate(&env, &new_cert, &new_key, None));
    assert_eq!(rotated["kid"], format!("{kid}_next"));
    let table = config_value(&env);
    assert_eq!(
        profile_key(&table, "key_id").unwrap().as_str(),
        Some(format!("{kid}_next").as_str())
    );
}

/// The certificate's serial number in decimal, read by x509-parser (num-bigint), not by stet.
fn serial_decimal(pem: &Path) -> String {
    let text = std::fs::read(pem).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&text).unwrap();
    let cert = pem.parse_x509().unwrap();
    cert.tbs_certificate.serial.to_string()
}

#[test]
fn the_lcl_variant_kid_from_the_serial_and_rotation_by_get_then_put() {
    let env = Env::new();
    configure(&env, "lcl", "/lcl/register", "");
    let qseal_cert = PathBuf::from(env.sandbox.get("qseal_cert"));
    let created = env.run(&["register", "create", "--output", "json"]).json();
    assert_eq!(created["status"], "active", "{created}");
    assert_eq!(created["kid"], serial_decimal(&qseal_cert), "{created}");
    // LCL answers the client id and when it was issued, nothing else.
    let answered: Vec<&String> = created["record"].as_object().unwrap().keys().collect();
    assert_eq!(answered, ["client_id", "client_id_issued_at"], "{created}");
    assert!(stored(&env)["registration_access_token"].is_null());

    // Read back with the QWAC and a signature alone.
    let shown = env.run(&["register", "show", "--output", "json"]).json();
    let record = &shown["record"];
    let scope = record["scope"].as_str().unwrap();
    assert!(scope.contains(',') && !scope.contains(' '), "{record}");
    assert_eq!(record["jwks"]["keys"][0]["key_ops"][0], "verify");
    assert!(
        record["jwks"]["keys"][0]["x5t#S256"].is_string(),
        "{record}"
    );

    // Rotation: GET with the old key, PUT signed by the new one under the URL where the TPP
    // publishes it.
    let (new_cert, new_key) = qseal(
        env.home.path(),
        "qseal-next",
        Some(vec![
            PspRole::AccountInformation,
            PspRole::PaymentInitiation,
        ]),
    );
    let (_, stranger_key) = qseal(env.home.path(), "stranger", None);
    let url = "https://tpp.example/certs/qseal-next.pem";
    // A PUT signed by a key that is not the new certificate's is refused by the bank.
    let wrong = rotate(&env, &new_cert, &stranger_key, Some(url));
    assert_ne!(wrong.code, 0, "{wrong}");
    assert!(
        wrong.stderr.contains("401") && wrong.stderr.contains("signature"),
        "{wrong}"
    );
    assert_eq!(
        profile_key(&config_value(&env), "qseal_cert")
            .unwrap()
            .as_str(),
        Some(qseal_cert.to_str().unwrap()),
        "a refused rotation changes nothing"
    );
    let rotated = one(&rotate(&env, &new_cert, &new_key, Some(url)));
    assert_eq!(rotated["kid"], serial_decimal(&new_cert), "{rotated}");
    let table = config_value(&env);
    assert_eq!(profile_key(&table, "key_id").unwrap().as_str(), Some(url));
    assert_eq!(
        profile_key(&table, "qseal_cert").unwrap().as_str(),
        new_cert.to_str()
    );
    env.run(&["register", "delete"]).fails(78, "has no DELETE");
}

/// A La Banque Postale profile: the portal's user is the sandbox's client id, its password
/// in `LBP_PORTAL_PASSWORD`.
fn configure_la_banque_postale(env: &Env) {
    let portal_user = env.sandbox.get("client_id");
    configure(
        env,
        "la-banque-postale",
        "/lbp/register",
        &format!("portal_user = {portal_user:?}\nportal_password_env = \"LBP_PORTAL_PASSWORD\"\n"),
    );
}

#[test]
fn the_la_banque_postale_variant_with_portal_credentials() {
    let env = Env::new();
    configure_la_banque_postale(&env);
    let with_password = |args: &[&str], password: &str| {
        let mut cmd = env.command(args);
        cmd.env("LBP_PORTAL_PASSWORD", password);
        finished(args, cmd)
    };
    // No password variable: said before anything is sent.
    env.run(&["register", "create"]).fails(
        78,
        "portal_password_env names LBP_PORTAL_PASSWORD, which is not set",
    );
    // A wrong password: the bank's refusal, nothing kept.
    let refused = with_password(&["register", "create"], "not-the-password");
    assert_ne!(refused.code, 0, "{refused}");
    assert!(
        refused.stderr.contains("401") && refused.stderr.contains("developer portal"),
        "{refused}"
    );
    assert!(!store_file(&env).exists(), "nothing kept from a refusal");

    let secret = env.sandbox.get("client_secret");
    let created = with_password(&["register", "create", "--output", "json"], secret).json();
    assert_eq!(created["status"], "active", "{created}");
    let record = &created["record"];
    assert!(record.get("jwks").is_none(), "no jwks at LBP: {record}");
    assert_eq!(record["description"], "PSD2 third-party provider");
    assert_eq!(
        record["grant_types"],
        serde_json::json!(["authorization_code"])
    );
    assert_eq!(record["client_secret"], "<redacted>");
    let issued = record["client_id_issued_at"].as_str().unwrap();
    assert_eq!(issued.len(), 13, "milliseconds: {issued}");
    assert!(
        stored(&env)["client_secret"]
            .as_str()
            .is_some_and(|s| s.len() == 64)
    );
    // Read and updated with the same portal credentials.
    let shown = with_password(&["register", "show", "--output", "json"], secret).json();
    assert_eq!(shown["client_id"], created["client_id"]);
    let updated = with_password(&["register", "update", "--output", "json"], secret).json();
    assert_eq!(updated["status"], "active", "{updated}");
    env.run(&["register", "delete"]).fails(78, "has no DELETE");
}

#[test]
fn the_bpce_variant_token_first_contact_object_and_rotation() {
    let env = Env::new();
    configure(&env, "bpce", "/stet/setting/v1/register", "");
    let qseal_cert = PathBuf::from(env.sandbox.get("qseal_cert"));
    let out = env.run(&["register", "create", "--output", "json"]);
    let created = out.json();
    // Approved by hand at BPCE: kept as pending until read back.
    assert_eq!(created["status"], "pending", "{out}");
    let kid = serial_decimal(&qseal_cert);
    assert_eq!(created["kid"], kid, "{created}");
    let record = &created["record"];
    assert_eq!(record["contact"]["email"], "ops@tpp.example", "{record}");
    assert!(record.get("contacts").is_none(), "{record}");
    assert_eq!(record["jwks"]["keys"][0]["keys_ops"][0], "verify");
    assert!(
        record["grant_types"].as_array().unwrap().iter().all(|g| g
            .as_str()
            .unwrap()
            .chars()
            .all(|c| !c.is_ascii_lowercase())),
        "grants echoed in capitals: {record}"
    );
    assert!(
        record["client_id_issued_at"]
            .as_str()
            .is_some_and(|t| t.contains('T')),
        "an ISO date-time: {record}"
    );
    // The kid is the keyId from now on.
    assert_eq!(
        profile_key(&config_value(&env), "key_id").unwrap().as_str(),
        Some(kid.as_str())
    );
    let shown = env.run(&["register", "show", "--output", "json"]).json();
    assert_eq!(shown["status"], "active", "{shown}");

    // Rotation: a PUT signed with the old key, carrying the new one; then calls signed by
    // the new key under its kid.
    let (new_cert, new_key) = qseal(
        env.home.path(),
        "qseal-next",
        Some(vec![
            PspRole::AccountInformation,
            PspRole::PaymentInitiation,
        ]),
    );
    let rotated = one(&rotate(&env, &new_cert, &new_key, None));
    let new_kid = serial_decimal(&new_cert);
    assert_eq!(rotated["kid"], new_kid, "{rotated}");
    assert_eq!(
        profile_key(&config_value(&env), "key_id").unwrap().as_str(),
        Some(new_kid.as_str())
    );
    let shown = env.run(&["register", "show", "--output", "json"]).json();
    assert_eq!(shown["kid"], new_kid, "{shown}");
    env.run(&["register", "delete"]).fails(78, "has no DELETE");
}

#[test]
fn bad_input_is_refused_with_clear_errors() {
    let env = Env::new();

    // A certificate without PSD2 roles: refused before anything is sent.
    let (no_roles, _) = qseal(env.home.path(), "no-roles", None);
    configure(&env, "sandbox", "/v1/register", "");
    let mut cmd = env.command(&["register", "create"]);
    cmd.env("STET_QSEAL_CERT", &no_roles);
    finished(&["register create"], cmd).fails(78, "carries no PSD2 role");

    // A scope wider than the roles.
    let (ai_only, _) = qseal(
        env.home.path(),
        "ai-only",
        Some(vec![PspRole::AccountInformation]),
    );
    configure(
        &env,
        "sandbox",
        "/v1/register",
        "scope = [\"aisp\", \"pisp\"]\n",
    );
    let mut cmd = env.command(&["register", "create"]);
    cmd.env("STET_QSEAL_CERT", &ai_only);
    finished(&["register create"], cmd).fails(78, "scope `pisp` needs the PSD2 role PSP_PI");

    // The bank refuses a redirect URI: its error, and what to do.
    configure(
        &env,
        "sandbox",
        "/v1/register",
        "redirect_uris = [\"http://tpp.example/callback\"]\n",
    );
    let out = env.run(&["register", "create"]);
    out.fails(65, "invalid_redirect_uri");
    assert!(out.stderr.contains("HTTPS"), "{out}");
    assert!(!store_file(&env).exists(), "nothing kept from a refusal");

    // No contacts.
    let body = env.profile_body(&[]);
    write_private(&env.config, &format!("[profiles.sandbox]\n{body}"));
    env.run(&["register", "create"]).fails(78, "no contacts");

    // Not registered yet.
    env.run(&["register", "update"])
        .fails(78, "stet register create");
}

/// The profile's QSealC settings, as the configuration file says them.
fn qseal_settings(env: &Env) -> (String, String, String) {
    let table = config_value(env);
    let get = |k: &str| {
        profile_key(&table, k)
            .and_then(toml::Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    (get("qseal_cert"), get("qseal_key"), get("key_id"))
}

#[test]
fn rotation_at_bnp_waits_for_the_banks_approval() {
    let env = Env::new();
    configure(&env, "bnp-paribas", "/psd2/register", "");
    let created = env.run(&["register", "create", "--output", "json"]).json();
    let old_kid = created["kid"].as_str().unwrap().to_owned();
    let before = qseal_settings(&env);
    let (new_cert, new_key) = qseal(
        env.home.path(),
        "qseal-2027",
        Some(vec![
            PspRole::AccountInformation,
            PspRole::PaymentInitiation,
        ]),
    );
    let url = "https://tpp.example/certs/qseal-2027.pem";

    // BNP Paribas records the update and approves it by hand: nothing changed at the bank,
    // so nothing changes in the profile; the old key keeps signing.
    let out = rotate(&env, &new_cert, &new_key, Some(url));
    let pending = one(&out);
    assert_eq!(pending["status"], "pending", "{out}");
    assert_eq!(
        pending["kid"],
        old_kid.as_str(),
        "the bank still has the old key: {out}"
    );
    assert!(out.stderr.contains("We will contact you"), "{out}");
    assert!(
        out.stderr.contains("keeps signing with its current QSealC")
            && out.stderr.contains("stet register rotate --finish"),
        "says what to do: {out}"
    );
    assert_eq!(
        qseal_settings(&env),
        before,
        "profile unchanged while pending"
    );
    let table = config_value(&env);
    assert_eq!(
        table["profiles"]["sandbox"]["registration"]["status"].as_str(),
        Some("pending")
    );
    assert_eq!(
        stored(&env)["pending_rotation"]["qseal_cert"].as_str(),
        new_cert.to_str()
    );

    // Not approved yet: finishing says so (temporary failure), reading says so, and
    // neither switches.
    let early = env.run(&["register", "rotate", "--finish", "--output", "json"]);
    assert_eq!(early.code, 75, "{early}");
    assert!(
        early.stderr.contains("still carries the old QSealC"),
        "{early}"
    );
    let shown = env.run(&["register", "show", "--output", "json"]);
    assert_eq!(one(&shown)["status"], "pending", "{shown}");
    assert_eq!(qseal_settings(&env), before);

    // The bank's staff approve; the next read finishes the rotation.
    assert_eq!(approve(&env), 1);
    let out = env.run(&["register", "rotate", "--finish", "--output", "json"]);
    let done = one(&out);
    assert_eq!(done["status"], "active", "{out}");
    assert_ne!(done["kid"], old_kid.as_str(), "{out}");
    assert!(out.stderr.contains("has the new QSealC"), "{out}");
    assert_eq!(
        qseal_settings(&env),
        (
            new_cert.to_str().unwrap().to_owned(),
            new_key.to_str().unwrap().to_owned(),
            url.to_owned()
        )
    );
    assert!(stored(&env).get("pending_rotation").is_none());
    env.run(&["register", "rotate", "--finish"])
        .fails(78, "has no rotation pending");
}

#[test]
fn rotation_at_credit_agricole_is_in_force_at_once() {
    let env = Env::new();
    configure(
        &env,
        "credit-agricole",
        "/psd2_actor_registration/v1/tpp_consumers",
        "",
    );
    env.run(&["register", "create"]).ok();
    let (new_cert, new_key) = qseal(
        env.home.path(),
        "qseal-next",
        Some(vec![PspRole::AccountInformation]),
    );
    let out = rotate(&env, &new_cert, &new_key, None);
    let rotated = one(&out);
    assert_eq!(rotated["status"], "active", "{out}");
    let (cert, key, _) = qseal_settings(&env);
    assert_eq!(
        (cert.as_str(), key.as_str()),
        (new_cert.to_str().unwrap(), new_key.to_str().unwrap())
    );
    // The bank holds the new certificate (a bare jwks array, x5c a string), and the PUT
    // carried the registration token in its body, as Crédit Agricole wants. (Read signed by
    // the new key under its kid: the profile's keyId is the old certificate's URL, where the
    // TPP publishes the new one in real life.)
    let mut show = env.command(&["register", "show", "--output", "json"]);
    show.env("STET_KEY_ID", rotated["kid"].as_str().unwrap());
    let shown = finished(&["register show"], show).json();
    assert_eq!(
        shown["record"]["jwks"][0]["x5c"],
        x5c_of(&new_cert),
        "{shown}"
    );
    let puts: Vec<Value> = received(&env)
        .into_iter()
        .filter(|r| r["method"] == "PUT")
        .collect();
    assert_eq!(puts.len(), 1, "{puts:#?}");
    assert_eq!(
        puts[0]["body"]["registration_access_token"],
        "NOTAPPLICABLE"
    );
}

#[test]
fn rotation_at_la_banque_postale_goes_through_its_portal() {
    let env = Env::new();
    configure_la_banque_postale(&env);
    let secret = env.sandbox.get("client_secret").to_owned();
    let with_password = |args: &[&str]| {
        let mut cmd = env.command(args);
        cmd.env("LBP_PORTAL_PASSWORD", &secret);
        finished(args, cmd)
    };
    with_password(&["register", "create"]).ok();
    let before = qseal_settings(&env);
    let sent_before = received(&env).len();
    let (new_cert, new_key) = qseal(
        env.home.path(),
        "qseal-next",
        Some(vec![
            PspRole::AccountInformation,
            PspRole::PaymentInitiation,
        ]),
    );
    // No jwks at LBP: the QSealC is registered on its developer portal, so rotate sends
    // nothing, keeps the old key signing and says where to upload the new certificate.
    let out = rotate(&env, &new_cert, &new_key, None);
    assert_eq!(one(&out)["status"], "pending", "{out}");
    assert!(
        out.stderr.contains("developer portal") && out.stderr.contains("--finish"),
        "{out}"
    );
    assert_eq!(
        received(&env).len(),
        sent_before,
        "nothing sent to the bank"
    );
    assert_eq!(qseal_settings(&env), before);
    // Uploaded: `--finish` reads the registration (portal credentials) and switches.
    let out = with_password(&["register", "rotate", "--finish", "--output", "json"]);
    assert_eq!(one(&out)["status"], "active", "{out}");
    let (cert, key, _) = qseal_settings(&env);
    assert_eq!(
        (cert.as_str(), key.as_str()),
        (new_cert.to_str().unwrap(), new_key.to_str().unwrap())
    );
    let last = received(&env).pop().unwrap();
    assert_eq!(last["method"], "GET", "{last}");
}

#[test]
fn the_default_endpoint_is_where_the_spec_puts_it() {
    // No registration_url: the sandbox bank profile's endpoint, the spec's basePath /v1 and
    // /register on the API's host (not below the API's own base path).
    let env = Env::new();
    let body = env.profile_body(&[]);
    assert!(!body.contains("registration_url"));
    write_private(
        &env.config,
        &format!(
            "[profiles.sandbox]\n{body}\n[profiles.sandbox.registration]\ncontacts = [\"ops@tpp.example\"]\n"
        ),
    );
    let out = env.run(&["register", "create", "--output", "json"]);
    assert_eq!(one(&out)["status"], "active", "{out}");
    let api = url::Url::parse(env.sandbox.get("api_base")).unwrap();
    let expected = format!(
        "https://{}:{}/v1/register",
        api.host_str().unwrap(),
        api.port().unwrap()
    );
    assert!(out.stderr.contains(&format!("({expected})")), "{out}");
    let requests = received(&env);
    assert_eq!(requests.len(), 1, "{requests:#?}");
    assert_eq!(requests[0]["path"], "/v1/register");
    env.run(&["register", "show"]).ok();
    assert_eq!(
        received(&env)[1]["path"].as_str().unwrap(),
        format!("/v1/register/{}", one(&out)["client_id"].as_str().unwrap())
    );
}

/// The official registration 1.0.5 file, with its two broken `$ref`s patched: the POST body
/// names `#/definitions/RegistrationRequest` (defined as `RegistrationRequestResource`), the
/// PUT body `#/parameters/RegistrationRecordparameter` (defined as
/// `RegistrationRecordParameter`). As crates/client/tests/registration_schema.rs does.
fn official_spec() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/reference/stet/stet-oauth2-registration-v1.0.5.swagger.json"
    );
    let text = std::fs::read_to_string(path).expect("the official registration spec in ../shared");
    let patched = text
        .replace(
            "\"#/definitions/RegistrationRequest\"",
            "\"#/definitions/RegistrationRequestResource\"",
        )
        .replace(
            "\"#/parameters/RegistrationRecordparameter\"",
            "\"#/parameters/RegistrationRecordParameter\"",
        );
    let mut spec: Value = serde_json::from_str(&patched).unwrap();
    // The PUT body is a RegistrationRecord, whose `required` names fields the spec's own
    // text says MUST NOT be sent in an update: an update is checked without them.
    spec["definitions"]["RegistrationRecord"]["required"] = serde_json::json!(["client_id"]);
    spec
}

/// What is wrong with `value` against the definition `name`, by jsonschema.
fn schema_errors(spec: &Value, name: &str, value: &Value) -> Vec<String> {
    let doc = serde_json::json!({
        "$ref": format!("#/definitions/{name}"),
        "definitions": spec["definitions"],
        "parameters": spec["parameters"],
    });
    let validator = jsonschema::options().build(&doc).unwrap();
    validator
        .iter_errors(value)
        .map(|e| format!("{e} at `{}`", e.instance_path()))
        .collect()
}

#[test]
fn what_stet_register_sends_against_the_official_schema() {
    let spec = official_spec();
    let metadata = "client_uri = \"https://tpp.example\"\n\
        logo_uri = \"https://tpp.example/logo.png\"\n\
        tos_uri = \"https://tpp.example/terms\"\n\
        policy_uri = \"https://tpp.example/privacy\"\n\
        client_name = \"Example TPP Payments\"\n\
        client_legal_id = \"AGTFR-ACPR-12345\"\n";

    // The spec's form: the creation and the update, as they went on the wire.
    let env = Env::new();
    configure(&env, "sandbox", "/v1/register", metadata);
    env.run(&["register", "create"]).ok();
    env.run(&["register", "update"]).ok();
    let sent = received(&env);
    assert_eq!(sent.len(), 2, "{sent:#?}");
    for (request, method, definition) in [
        (&sent[0], "POST", "RegistrationRequestResource"),
        (&sent[1], "PUT", "RegistrationRecord"),
    ] {
        assert_eq!(request["method"], method);
        let body = &request["body"];
        let found = schema_errors(&spec, definition, body);
        assert!(found.is_empty(), "{method}: {found:#?}\n{body:#}");
        // The profile's registration table went out as the spec names it.
        for (field, value) in [
            ("client_uri", "https://tpp.example"),
            ("logo_uri", "https://tpp.example/logo.png"),
            ("tos_uri", "https://tpp.example/terms"),
            ("policy_uri", "https://tpp.example/privacy"),
            ("client_name", "Example TPP Payments"),
            ("client_legal_id", "AGTFR-ACPR-12345"),
        ] {
            assert_eq!(body[field], value, "{method} {field}: {body:#}");
        }
        assert!(
            body.get("registration_access_token").is_none(),
            "never in a body at the spec: {body:#}"
        );
    }

    // CIC's rotation: one PUT with the old key (its bank-assigned kid) and the new one
    // (`"kid": null`, for the bank to fill): the schema's only complaint is that null, where
    // CIC's variant leaves the spec.
    let env = Env::new();
    configure(
        &env,
        "credit-mutuel-cic",
        "/cic/oauth2/registrations",
        metadata,
    );
    let created = env.run(&["register", "create", "--output", "json"]).json();
    let (new_cert, new_key) = qseal(
        env.home.path(),
        "qseal-next",
        Some(vec![PspRole::AccountInformation]),
    );
    rotate(&env, &new_cert, &new_key, None).ok();
    let put = received(&env)
        .into_iter()
        .find(|r| r["method"] == "PUT")
        .expect("the rotation's PUT");
    let body = &put["body"];
    let keys = body["jwks"]["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2, "{body:#}");
    assert_eq!(keys[0]["kid"], created["kid"]);
    assert_eq!(keys[1]["x5c"][0], x5c_of(&new_cert));
    let found = schema_errors(&spec, "RegistrationRecord", body);
    assert_eq!(found.len(), 1, "{found:#?}\n{body:#}");
    assert!(
        found[0].contains("null is not of type \"string\" at `/jwks/keys/1/kid`"),
        "{found:#?}"
    );
    assert_eq!(body["logo_uri"], "https://tpp.example/logo.png");
}

#[test]
fn a_creation_status_other_than_the_profiles_is_said_at_v() {
    // A bank profile that expects 200 where the sandbox's spec form answers 201.
    let env = Env::new();
    let banks = env.home.path().join("banks");
    std::fs::create_dir_all(&banks).unwrap();
    std::fs::write(
        banks.join("sandbox-200.toml"),
        "name = \"sandbox-200\"\ndisplay_name = \"Sandbox answering 200\"\nextends = \"sandbox\"\n\n[registration]\ncreated_status = 200\n",
    )
    .unwrap();
    configure(&env, "sandbox-200", "/v1/register", "");
    let mut cmd = env.command(&["-v", "register", "create", "--output", "json"]);
    cmd.env("STET_BANK_PROFILES", &banks);
    let out = finished(&["register create -v"], cmd);
    assert_eq!(one(&out)["status"], "active", "{out}");
    assert!(
        out.stderr
            .contains("answered the registration 201 where its bank profile says 200"),
        "{out}"
    );
    // The bank as its profile says: nothing to say.
    let env = Env::new();
    configure(&env, "sandbox", "/v1/register", "");
    let out = env.run(&["-v", "register", "create"]);
    out.ok();
    assert!(!out.stderr.contains("created_status"), "{out}");
}
