//! `stet banks` end to end: the built binary lists the profiles, shows one with its sources,
//! speaks JSON that parses back, takes a folder of user profiles, and fails with exit 78 and
//! the known names on an unknown bank.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

fn stet(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stet"))
        .args(args)
        .env_remove("STET_BANK_PROFILES")
        .output()
        .expect("stet runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(args: &[&str]) -> String {
    let out = stet(args);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{args:?}: {}",
        text(&out.stderr)
    );
    assert!(out.stderr.is_empty(), "{}", text(&out.stderr));
    text(&out.stdout)
}

fn json(args: &[&str]) -> Value {
    serde_json::from_str(&ok(args)).expect("valid JSON on stdout")
}

/// A failure: the exit code, one `error:` line mentioning `expected`, nothing on stdout.
fn assert_fails(out: &Output, code: i32, expected: &str) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {err}");
    assert!(err.starts_with("error: "), "{err}");
    assert!(
        err.contains(expected),
        "`{err}` should mention `{expected}`"
    );
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert!(out.stdout.is_empty(), "nothing on stdout on failure");
}

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

#[test]
fn lists_every_profile_and_what_it_changes() {
    let out = ok(&["banks"]);
    let header = out.lines().next().unwrap();
    for column in ["NAME", "BANK", "DIALECT", "EXTENDS", "BASE PATH"] {
        assert!(header.contains(column), "{header}");
    }
    for name in ["generic-1.4", "generic-1.5", "sandbox"]
        .iter()
        .chain(BANKS)
    {
        assert!(
            out.lines().any(|l| l.starts_with(&format!("{name} "))),
            "{name} has a row:\n{out}"
        );
    }
    let bnp = out.lines().find(|l| l.starts_with("bnp-paribas ")).unwrap();
    assert!(
        bnp.contains("BNP Paribas, Hello bank") && bnp.contains("/psd2/retail/V1.4"),
        "{bnp}"
    );
    assert!(
        out.contains("bnp-paribas (from generic-1.4), also: bnp,"),
        "{out}"
    );
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("datetime_format")
                && l.contains("rfc3339-millis  ->  rfc3339-seconds")),
        "{out}"
    );
    assert!(out.contains("sandbox (from generic-1.5)"), "{out}");
    assert!(out.contains("live sandbox"), "{out}");
}

#[test]
fn json_list_parses_back_with_profiles_and_changes() {
    let list = json(&["banks", "--output", "json"]);
    let items = list.as_array().expect("an array");
    assert_eq!(items.len(), 3 + BANKS.len());
    for item in items {
        let profile = &item["profile"];
        let name = profile["name"].as_str().unwrap();
        assert_eq!(profile["verified_against_live_sandbox"], false, "{name}");
        assert!(
            profile["signature"]["headers"]
                .as_array()
                .is_some_and(|h| !h.is_empty())
        );
        if name.starts_with("generic-") {
            assert!(item["base"].is_null());
            assert_eq!(item["changes"].as_array().unwrap().len(), 0);
        } else {
            assert!(
                item["base"].as_str().unwrap().starts_with("generic-"),
                "{name}"
            );
            assert!(!item["changes"].as_array().unwrap().is_empty(), "{name}");
        }
    }
    let sandbox = items
        .iter()
        .find(|i| i["profile"]["name"] == "sandbox")
        .unwrap();
    assert_eq!(sandbox["profile"]["dialect"], "1.5");
    assert_eq!(sandbox["profile"]["base_path"], "/stet/psd2/v1.5");
    assert_eq!(
        sandbox["profile"]["signature"]["headers"],
        serde_json::json!(["(request-target)", "date", "x-request-id", "digest"])
    );
    let changes = &sandbox["changes"];
    assert_eq!(changes[1]["field"], "signature.digest_on_get");
    assert_eq!(
        (changes[1]["base"].clone(), changes[1]["profile"].clone()),
        (Value::Bool(true), Value::Bool(false))
    );
}

#[test]
fn one_profile_in_full_with_sources() {
    let out = ok(&["banks", "HelloBank"]);
    assert!(
        out.starts_with("bnp-paribas: BNP Paribas, Hello bank\n"),
        "{out}"
    );
    assert!(out.contains("extends: generic-1.4"), "{out}");
    assert!(
        out.contains("checked against the bank's live sandbox: no"),
        "{out}"
    );
    assert!(
        out.contains("* datetime_format"),
        "changed fields are starred:\n{out}"
    );
    assert!(out.contains("source: Nuapay release notes"), "{out}");
    assert!(
        out.contains("set by generic-1.4 (built-in banks/generic-1.4.toml)"),
        "{out}"
    );
    assert!(out.contains("notes:\n  Second-hand only"), "{out}");
    assert!(out.contains("\n  Sandbox:"), "{out}");

    let one = json(&["banks", "bpce", "--output", "json"]);
    assert_eq!(one["profile"]["name"], "bpce");
    assert_eq!(one["profile"]["dialect"], "1.6");
    assert_eq!(one["base"], "generic-1.5");
    let fields = one["fields"].as_array().unwrap();
    let key_id = fields
        .iter()
        .find(|f| f["field"] == "signature.key_id")
        .unwrap();
    assert_eq!(key_id["value"], "registration-id");
    assert_eq!(key_id["set_by"], "bpce");
    assert!(
        key_id["source"].as_str().unwrap().contains("client id"),
        "{key_id}"
    );
    let scopes = fields
        .iter()
        .find(|f| f["field"] == "scopes.cbpii")
        .unwrap();
    assert_eq!(
        (scopes["value"].as_str(), scopes["set_by"].as_str()),
        (Some("cbpii"), Some("generic-1.5"))
    );
}

#[test]
fn an_unknown_bank_exits_78_with_the_known_names() {
    let out = stet(&["banks", "bousorama"]);
    assert_fails(&out, 78, "unknown bank `bousorama`");
    let err = text(&out.stderr);
    assert!(err.contains("did you mean `boursorama`?"), "{err}");
    for name in BANKS {
        assert!(err.contains(name), "{err} lists {name}");
    }
}

fn write(dir: &Path, name: &str, body: &str) {
    std::fs::write(dir.join(name), body).unwrap();
}

#[test]
fn user_profiles_patch_and_add_and_their_typos_are_named() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bpce.toml",
        "name = \"bpce\"\nextends = \"bpce\"\n# source: my own test\nbase_path = \"/stet/psd2/v1.4.2\"\n",
    );
    write(
        dir.path(),
        "mybank.toml",
        "name = \"mybank\"\ndisplay_name = \"My Bank\"\nextends = \"generic-1.5\"\nverified_against_live_sandbox = false\npaginates = false\n",
    );
    let folder = dir.path().to_str().unwrap();
    let one = json(&["banks", "--profiles", folder, "bpce", "--output", "json"]);
    assert_eq!(one["profile"]["base_path"], "/stet/psd2/v1.4.2");
    assert_eq!(one["profile"]["dialect"], "1.6");
    let base_path = one["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["field"] == "base_path")
        .unwrap();
    assert_eq!(base_path["source"], "my own test");
    assert!(base_path["origin"].as_str().unwrap().ends_with("bpce.toml"));

    let list = ok(&["banks", "--profiles", folder]);
    assert!(list.contains("mybank (from generic-1.5)"), "{list}");
    assert!(
        list.lines()
            .any(|l| l.starts_with("mybank ") && l.contains("My Bank")),
        "{list}"
    );

    // The same through the environment.
    let out = Command::new(env!("CARGO_BIN_EXE_stet"))
        .args(["banks", "mybank", "--output", "json"])
        .env("STET_BANK_PROFILES", folder)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    write(
        dir.path(),
        "typo.toml",
        "name = \"typo\"\nextends = \"generic-1.4\"\npaginate = false\n",
    );
    let out = stet(&["banks", "--profiles", folder]);
    assert_fails(&out, 78, "typo.toml: line 3: unknown field `paginate`");
}

#[test]
fn help_has_an_example() {
    let out = ok(&["banks", "--help"]);
    assert!(out.contains("stet banks hellobank"), "{out}");
}
