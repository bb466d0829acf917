use stet_httpsig::SigningProfile;

use super::registry::BUILTIN_FOR_TESTS;
use super::*;

const BANKS: &[&str] = &[
    "arkea",
    "bnp-paribas",
    "boursorama",
    "bpce",
    "credit-agricole",
    "credit-mutuel-cic",
    "la-banque-postale",
    "lcl",
    "societe-generale",
];

fn banks() -> BankProfiles {
    BankProfiles::builtin()
}

#[test]
fn every_builtin_profile_parses_resolves_and_validates() {
    let banks = banks();
    let all = banks.all().unwrap();
    assert_eq!(all.len(), BUILTIN_FOR_TESTS.len());
    let mut names: Vec<&str> = all.iter().map(|p| p.name.as_str()).collect();
    names.sort_unstable();
    let mut expected = vec!["generic-1.4", "generic-1.5", "sandbox"];
    expected.extend(BANKS);
    expected.sort_unstable();
    assert_eq!(names, expected);
    for profile in &all {
        profile
            .signing_profile("https://tpp.example/qseal.pem")
            .validate()
            .unwrap();
        assert!(!profile.verified_against_live_sandbox, "{}", profile.name);
        assert!(
            !profile.notes.trim().is_empty(),
            "{} has notes",
            profile.name
        );
        for h in &profile.signature.headers {
            assert_eq!(
                h,
                &h.to_ascii_lowercase(),
                "{}: lowercase headers",
                profile.name
            );
        }
    }
}

#[test]
fn every_bank_file_extends_a_generic_and_says_it_is_unverified() {
    for (file, text) in BUILTIN_FOR_TESTS {
        let table: toml::Table = toml::from_str(text).unwrap();
        let name = table["name"].as_str().unwrap();
        assert_eq!(
            *file,
            format!("{name}.toml"),
            "file named after its profile"
        );
        // Said in each file, not merely inherited.
        assert_eq!(
            table
                .get("verified_against_live_sandbox")
                .and_then(toml::Value::as_bool),
            Some(false),
            "{file} states verified_against_live_sandbox = false"
        );
        if BANKS.contains(&name) {
            let base = table["extends"].as_str().unwrap();
            assert!(base.starts_with("generic-"), "{file} extends {base}");
        }
    }
}

#[test]
fn every_value_in_a_builtin_file_cites_its_source() {
    const NO_SOURCE_NEEDED: &[&str] = &[
        "name",
        "display_name",
        "aliases",
        "extends",
        "verified_against_live_sandbox",
        "notes",
    ];
    for (file, text) in BUILTIN_FOR_TESTS {
        let table: toml::Table = toml::from_str(text).unwrap();
        let sources = super::sources::scan(text);
        let mut keys = Vec::new();
        for (key, value) in &table {
            match value {
                toml::Value::Table(sub) => keys.extend(sub.keys().map(|k| format!("{key}.{k}"))),
                _ => keys.push(key.clone()),
            }
        }
        // Scopes share one comment block per group; each group's first key carries it.
        for key in keys {
            if NO_SOURCE_NEEDED.contains(&key.as_str()) || key.starts_with("scopes.") {
                continue;
            }
            assert!(
                sources.get(&key).is_some_and(|s| !s.is_empty()),
                "{file}: `{key}` has no `# source:` comment"
            );
        }
        if table.contains_key("scopes") {
            assert!(sources.contains_key("scopes.aisp") && sources.contains_key("scopes.cbpii"));
        }
    }
}

#[test]
fn the_sandbox_signs_what_a_strict_stet_bank_verifies() {
    let sandbox = banks().get("sandbox").unwrap();
    assert_eq!(sandbox.dialect, Dialect::V1_5);
    assert_eq!(sandbox.base_path, "/stet/psd2/v1.5");
    assert_eq!(sandbox.signing_profile("k"), SigningProfile::stet("k"));
    assert_eq!(sandbox.confirmation_path, ConfirmationPath::Confirmation);
    assert_eq!(sandbox.scopes.cbpii, "cbpii");
}

#[test]
fn bank_quirks_come_through() {
    let banks = banks();
    let bnp = banks.get("bnp-paribas").unwrap();
    assert_eq!(bnp.datetime_format, DateTimeFormat::Rfc3339Seconds);
    assert!(!bnp.paginates);
    assert_eq!(bnp.max_history_days_per_request, Some(90));
    assert!(!bnp.put_consents);
    assert_eq!(bnp.base_path, "/psd2/retail/V1.4");
    assert_eq!(bnp.scopes.cbpii, "piisp", "inherited from generic-1.4");

    let bpce = banks.get("bpce").unwrap();
    assert_eq!(bpce.dialect, Dialect::V1_6);
    assert_eq!(bpce.signature.key_id, KeyIdForm::RegistrationId);
    assert!(bpce.psu_ip_required);
    let signing = bpce.signing_profile("client-123");
    assert_eq!(signing.key_id, "client-123");
    assert_eq!(
        signing.headers,
        ["(request-target)", "date", "digest", "x-request-id"]
    );
    assert!(!signing.sign_psu_headers);
    assert!(signing.digest_on_empty_body);

    let sg = banks.get("sg").unwrap();
    assert!(!sg.signature.headers.iter().any(|h| h == "(request-target)"));
    assert_eq!(sg.confirmation_path.segment(), None);
    assert_eq!(sg.extended_history, ExtendedHistory::FirstTokenOnly);

    assert_eq!(banks.get("lcl").unwrap().accept, "application/json");
    assert_eq!(
        banks.get("credit-agricole").unwrap().signature.key_id,
        KeyIdForm::IssuerSerial
    );
    assert_eq!(
        banks.get("fortuneo").unwrap().extended_history,
        ExtendedHistory::Unsupported
    );
    assert_eq!(
        banks.get("lbp").unwrap().max_history_days_per_request,
        Some(89)
    );
}

#[test]
fn lookup_is_case_insensitive_and_knows_aliases() {
    let banks = banks();
    for alias in [
        "hellobank",
        "HelloBank",
        " BNP ",
        "bnp-paribas",
        "Hello-Bank",
    ] {
        assert_eq!(banks.get(alias).unwrap().name, "bnp-paribas", "{alias}");
    }
    assert_eq!(banks.get("Caisse-Epargne").unwrap().name, "bpce");
    assert_eq!(banks.get("CIC").unwrap().name, "credit-mutuel-cic");
    assert_eq!(banks.canonical_name("fortuneo").unwrap(), "arkea");
}

#[test]
fn an_unknown_bank_lists_the_known_names_and_suggests_one() {
    let err = banks().get("hellobnak").unwrap_err();
    let message = err.to_string();
    assert!(message.contains("unknown bank `hellobnak`"), "{message}");
    assert!(message.contains("did you mean `bnp-paribas`?"), "{message}");
    for name in BANKS {
        assert!(message.contains(name), "{message} lists {name}");
    }
    let err = banks().get("boursor").unwrap_err().to_string();
    assert!(err.contains("did you mean `boursorama`?"), "{err}");
    let err = banks().get("zzzzzzzz").unwrap_err().to_string();
    assert!(!err.contains("did you mean"), "{err}");
    let err = banks().get("nope").unwrap_err();
    assert!(
        matches!(
            &err,
            BankError::UnknownBank {
                suggestion: None,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn an_unknown_field_is_an_error_naming_it_and_its_line() {
    let mut banks = banks();
    let err = banks
        .add_toml(
            "user/bpce.toml",
            "name = \"bpce\"\nextends = \"bpce\"\npsu_ip_requierd = false\n",
        )
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("user/bpce.toml: line 3:"), "{err}");
    assert!(err.contains("unknown field `psu_ip_requierd`"), "{err}");

    let err = banks
        .add_toml(
            "x.toml",
            "name = \"x\"\n[signature]\nkey = \"certificate-url\"\n",
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `key`"), "{err}");

    let err = banks
        .add_toml("x.toml", "name = \"x\"\ndialect = \"1.7\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("1.7") && err.contains("line 2"), "{err}");
}

#[test]
fn inheritance_merges_field_by_field_and_keeps_identity_own() {
    let mut banks = banks();
    banks
        .add_toml(
            "mine.toml",
            r#"
name = "My-Bank"
aliases = ["Mine"]
extends = "hellobank"
verified_against_live_sandbox = false
[signature]
key_id = "serial-hex"
"#,
        )
        .unwrap();
    let mine = banks.get("mine").unwrap();
    let bnp = banks.get("bnp").unwrap();
    assert_eq!(mine.name, "my-bank");
    assert_eq!(
        mine.display_name, "my-bank",
        "display_name is not inherited"
    );
    assert_eq!(mine.aliases, ["mine"]);
    assert_eq!(mine.extends.as_deref(), Some("hellobank"));
    assert_eq!(mine.generic_base.as_deref(), Some("generic-1.4"));
    assert_eq!(mine.signature.key_id, KeyIdForm::SerialHex);
    // The rest of [signature] comes from BNP, the rest of the profile too.
    assert_eq!(mine.signature.headers, bnp.signature.headers);
    assert_eq!(
        mine.signature.sign_psu_headers,
        bnp.signature.sign_psu_headers
    );
    assert_eq!(mine.base_path, bnp.base_path);
    assert_eq!(mine.notes, bnp.notes);

    let explained = banks.explain("mine").unwrap();
    let key_id = explained
        .iter()
        .find(|f| f.field == "signature.key_id")
        .unwrap();
    assert_eq!(
        (key_id.set_by.as_str(), key_id.origin.as_str()),
        ("my-bank", "mine.toml")
    );
    let dialect = explained.iter().find(|f| f.field == "dialect").unwrap();
    assert_eq!(dialect.set_by, "bnp-paribas");
    assert!(
        dialect.source.as_deref().unwrap().contains("BNP"),
        "{dialect:?}"
    );
}

#[test]
fn a_user_file_patches_or_replaces_a_builtin() {
    let mut banks = banks();
    // Extends its own name: laid over the built-in.
    banks
        .add_toml(
            "user/bpce.toml",
            "name = \"BPCE\"\nextends = \"bpce\"\naliases = [\"banquepop\"]\n# source: our tests\nbase_path = \"/stet/psd2/v1.4.2\"\n",
        )
        .unwrap();
    let bpce = banks.get("banquepop").unwrap();
    assert_eq!(bpce.base_path, "/stet/psd2/v1.4.2");
    assert_eq!(
        bpce.dialect,
        Dialect::V1_6,
        "the rest of the built-in stays"
    );
    assert_eq!(bpce.extends.as_deref(), Some("generic-1.5"));
    assert!(bpce.aliases.contains(&"89c3".to_owned()));
    let base_path = banks
        .explain("bpce")
        .unwrap()
        .into_iter()
        .find(|f| f.field == "base_path")
        .unwrap();
    assert_eq!(base_path.origin, "user/bpce.toml");
    assert_eq!(base_path.source.as_deref(), Some("our tests"));

    // Same name, another base: replaces it.
    banks
        .add_toml(
            "user/lcl.toml",
            "name = \"lcl\"\nextends = \"generic-1.5\"\nverified_against_live_sandbox = false\n",
        )
        .unwrap();
    let lcl = banks.get("lcl").unwrap();
    assert_eq!(lcl.accept, "application/hal+json; charset=utf-8");
    assert!(lcl.aliases.is_empty());
    assert!(banks.get("credit-lyonnais").is_err());

    // A name that is another profile's alias is refused.
    let err = banks
        .add_toml(
            "user/x.toml",
            "name = \"hellobank\"\nextends = \"generic-1.4\"\n",
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("alias of profile `bnp-paribas`"), "{err}");
}

#[test]
fn add_dir_reads_toml_files_in_order() {
    let dir = std::env::temp_dir().join(format!("stet-bank-dir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("a.toml"),
        "name = \"a\"\nextends = \"generic-1.5\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("b.toml"),
        "name = \"b\"\nextends = \"a\"\naccept = \"application/json\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("readme.txt"), "not a profile").unwrap();
    let mut banks = banks();
    assert_eq!(banks.add_dir(&dir).unwrap(), 2);
    assert_eq!(
        banks.get("b").unwrap().generic_base.as_deref(),
        Some("generic-1.5")
    );
    assert_eq!(banks.add_dir(&dir.join("missing")).unwrap(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_cycle_and_an_unknown_base_are_clear_errors() {
    let mut banks = banks();
    banks
        .add_toml("a.toml", "name = \"a\"\nextends = \"b\"\n")
        .unwrap();
    banks
        .add_toml("b.toml", "name = \"b\"\nextends = \"a\"\n")
        .unwrap();
    let err = banks.get("a").unwrap_err();
    assert!(
        matches!(&err, BankError::Cycle { chain } if chain == &["a", "b", "a"]),
        "{err}"
    );
    assert!(err.to_string().contains("a -> b -> a"));

    banks
        .add_toml("self.toml", "name = \"self\"\nextends = \"self\"\n")
        .unwrap();
    assert!(matches!(banks.get("self"), Err(BankError::Cycle { .. })));

    banks
        .add_toml("c.toml", "name = \"c\"\nextends = \"generic-1.9\"\n")
        .unwrap();
    let err = banks.get("c").unwrap_err().to_string();
    assert!(
        err.contains("profile `c` extends `generic-1.9`, which is not a known profile"),
        "{err}"
    );
    assert!(err.contains("generic-1.4"), "{err}");
}

#[test]
fn a_root_without_every_field_or_with_bad_values_is_refused() {
    let mut banks = banks();
    banks
        .add_toml("r.toml", "name = \"r\"\ndialect = \"1.5\"\n")
        .unwrap();
    let err = banks.get("r").unwrap_err().to_string();
    assert!(
        err.contains("profile `r`") && err.contains("missing field"),
        "{err}"
    );

    for (toml, expected) in [
        ("base_path = \"v1/\"", "base_path"),
        (
            "max_history_days_per_request = 0",
            "max_history_days_per_request",
        ),
        (
            "[signature]\nheaders = [\"date\", \"Date\"]",
            "listed twice",
        ),
        ("[signature]\nheaders = []", "empty"),
        ("[signature]\nheaders = [\"bad header\"]", "bad header"),
        (
            "authorization_scheme = \"Bearer token\"",
            "authorization_scheme",
        ),
    ] {
        let mut banks = BankProfiles::builtin();
        banks
            .add_toml(
                "bad.toml",
                &format!("name = \"bad\"\nextends = \"generic-1.4\"\n{toml}\n"),
            )
            .unwrap();
        let err = banks.get("bad").unwrap_err().to_string();
        assert!(
            err.contains("profile `bad`") && err.contains(expected),
            "{toml}: {err}"
        );
    }
}

#[test]
fn diff_from_base_lists_what_a_bank_changes() {
    let banks = banks();
    let diff = banks.diff_from_base("hellobank").unwrap();
    assert_eq!(diff.profile, "bnp-paribas");
    assert_eq!(diff.base.as_deref(), Some("generic-1.4"));
    let fields: Vec<&str> = diff.changes.iter().map(|c| c.field).collect();
    assert_eq!(
        fields,
        [
            "base_path",
            "max_history_days_per_request",
            "datetime_format",
            "paginates",
            "put_consents",
            "signature.headers",
            "signature.sign_psu_headers",
            "signature.content_type_without_body",
            "registration.path",
            "registration.extra",
            "registration.approval",
            "registration.delete",
        ]
    );
    let first = &diff.changes[0];
    assert_eq!(first.base, FieldValue::Text("/v1".into()));
    assert_eq!(first.profile, FieldValue::Text("/psd2/retail/V1.4".into()));
    assert_eq!(diff.changes[1].base, FieldValue::Unset);
    assert_eq!(diff.changes[1].profile, FieldValue::Number(90));

    let sandbox = banks.diff_from_base("sandbox").unwrap();
    let fields: Vec<&str> = sandbox.changes.iter().map(|c| c.field).collect();
    assert_eq!(
        fields,
        [
            "base_path",
            "signature.digest_on_get",
            "sync.entry_reference_stable"
        ]
    );

    let generic = banks.diff_from_base("generic-1.4").unwrap();
    assert_eq!((generic.base, generic.changes.len()), (None, 0));

    // Every bank changes something, and never the sandbox-verification flag.
    for bank in BANKS {
        let diff = banks.diff_from_base(bank).unwrap();
        assert!(!diff.changes.is_empty(), "{bank}");
        assert!(
            diff.changes
                .iter()
                .all(|c| c.field != "verified_against_live_sandbox")
        );
    }
}

#[test]
fn history_is_split_into_windows() {
    use time::macros::date;
    let banks = banks();
    let bnp = banks.get("bnp").unwrap();
    let windows = bnp.history_windows(date!(2024 - 01 - 01), date!(2024 - 07 - 01));
    assert_eq!(
        windows,
        [
            (date!(2024 - 01 - 01), date!(2024 - 03 - 31)),
            (date!(2024 - 03 - 31), date!(2024 - 06 - 29)),
            (date!(2024 - 06 - 29), date!(2024 - 07 - 01)),
        ]
    );
    assert!(
        bnp.history_windows(date!(2024 - 01 - 02), date!(2024 - 01 - 01))
            .is_empty()
    );
    let generic = banks.get("generic-1.5").unwrap();
    assert_eq!(
        generic.history_windows(date!(2020 - 01 - 01), date!(2024 - 01 - 01)),
        [(date!(2020 - 01 - 01), date!(2024 - 01 - 01))]
    );
}

#[test]
fn datetimes_follow_the_profile() {
    use time::macros::datetime;
    let at = datetime!(2020-07-09 12:32:11.123 UTC);
    let banks = banks();
    assert_eq!(
        banks.get("bnp").unwrap().format_datetime(at),
        "2020-07-09T12:32:11Z"
    );
    assert_eq!(
        banks.get("bpce").unwrap().format_datetime(at),
        "2020-07-09T12:32:11.123Z"
    );
    let paris = datetime!(2020-07-09 14:32:11.5 +02:00);
    assert_eq!(
        DateTimeFormat::Rfc3339Millis.format(paris),
        "2020-07-09T14:32:11.500+02:00"
    );
    let west = datetime!(2020-07-09 08:02:11 -04:30);
    assert_eq!(
        DateTimeFormat::Rfc3339Seconds.format(west),
        "2020-07-09T08:02:11-04:30"
    );
}

#[test]
fn dialects_name_their_transaction_cursor() {
    assert_eq!(
        Dialect::V1_4.transactions_cursor_param(),
        "afterEntryReference"
    );
    assert_eq!(
        Dialect::V1_6.transactions_cursor_param(),
        "entryReferenceFrom"
    );
}

#[test]
fn a_resolved_profile_round_trips_through_serde() {
    let bnp = banks().get("bnp").unwrap();
    let text = toml::to_string(&bnp).unwrap();
    let back: BankProfile = toml::from_str(&text).unwrap();
    assert_eq!(back, bnp);
}

#[test]
fn a_list_that_signs_content_type_says_what_a_get_does() {
    // Signing content-type on every request with nothing sent on a GET would fail every GET:
    // refused when the profile is resolved, naming both ways out.
    let mut banks = BankProfiles::builtin();
    banks
        .add_toml(
            "ct.toml",
            "name = \"ct\"\nextends = \"generic-1.5\"\n[signature]\nheaders = [\"(request-target)\", \"date\", \"content-type\"]\n",
        )
        .unwrap();
    let err = banks.get("ct").unwrap_err().to_string();
    assert!(err.contains("content_type_without_body"), "{err}");
    assert!(err.contains("headers_without_body"), "{err}");

    // Either a Content-Type on GETs…
    banks
        .add_toml(
            "ct.toml",
            "name = \"ct\"\nextends = \"ct\"\n[signature]\ncontent_type_without_body = true\n",
        )
        .unwrap();
    let sends = banks.get("ct").unwrap();
    assert_eq!(
        sends.signing_profile_without_body("k"),
        sends.signing_profile("k")
    );
    // …or a list for GETs without it.
    let mut banks = BankProfiles::builtin();
    banks
        .add_toml(
            "ct.toml",
            "name = \"ct\"\nextends = \"generic-1.5\"\n[signature]\nheaders = [\"(request-target)\", \"date\", \"content-type\"]\nheaders_without_body = [\"(request-target)\", \"date\"]\n",
        )
        .unwrap();
    let split = banks.get("ct").unwrap();
    assert_eq!(
        split.signing_profile_without_body("k").headers,
        ["(request-target)", "date"]
    );
    assert_eq!(split.signing_profile("k").headers[2], "content-type");

    // Content-Length is never on a GET.
    let mut banks = BankProfiles::builtin();
    banks
        .add_toml(
            "cl.toml",
            "name = \"cl\"\nextends = \"generic-1.5\"\n[signature]\nheaders = [\"date\", \"content-length\"]\n",
        )
        .unwrap();
    let err = banks.get("cl").unwrap_err().to_string();
    assert!(err.contains("content-length"), "{err}");

    // The built-in profiles that sign content-type send it on GETs.
    for profile in BankProfiles::builtin().all().unwrap() {
        if profile
            .headers_without_body()
            .iter()
            .any(|h| h == "content-type")
        {
            assert!(
                profile.signature.content_type_without_body,
                "{}",
                profile.name
            );
        }
    }
}

#[test]
fn payment_and_funds_rules_follow_each_spec() {
    let banks = banks();
    let v15 = banks.get("generic-1.5").unwrap();
    assert_eq!(v15.payment, PaymentRules::default());
    let v14 = banks.get("generic-1.4").unwrap();
    assert_eq!(v14.payment.beneficiary, Placement::PaymentLevel);
    assert_eq!(v14.payment.standing_order, StandingOrderForm::Flat);
    let ca = banks.get("credit-agricole").unwrap();
    assert_eq!(ca.payment.requested_execution_date, Placement::EachTransfer);
    assert!(ca.payment.report_urls_required && !ca.payment.cancellation);
    assert!(ca.funds_confirmation.payee_required);
    assert_eq!(
        ca.funds_confirmation.headers["PSU-Account-Consent-Responsability"],
        "BY-ASPSP"
    );
    assert_eq!(ca.accept, "application/json");
    assert_eq!(ca.confirmation_path, ConfirmationPath::Confirmation);

    // A bad header name in funds_confirmation.headers is refused.
    let mut banks = BankProfiles::builtin();
    banks
        .add_toml(
            "h.toml",
            "name = \"h\"\nextends = \"generic-1.5\"\n[funds_confirmation]\nheaders = { \"bad name\" = \"x\" }\n",
        )
        .unwrap();
    let err = banks.get("h").unwrap_err().to_string();
    assert!(err.contains("bad name"), "{err}");
}

#[test]
fn every_bank_profile_says_whether_its_bank_published_a_spec() {
    for profile in banks().all().unwrap() {
        if !BANKS.contains(&profile.name.as_str()) {
            continue;
        }
        let notes = profile.notes.to_lowercase();
        assert!(
            notes.contains("second-hand") || notes.contains("bank's own openapi"),
            "{}: the notes say where the profile comes from",
            profile.name
        );
    }
}
