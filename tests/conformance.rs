//! `stet conformance` end to end: the `stet` binary against `stet sandbox serve`, compliant
//! and with faults. The reports are read by what we did not write: JUnit XML by Python's
//! junitparser and libxml2's xmllint, the HTML page by headless Chromium, the evidence
//! bundle's signature by OpenSSL and its zip by Python's zipfile.

#![allow(missing_docs)]

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::*;

/// A sandbox shaped for the catalogue: pages that span the 90 days a token sees, tokens that
/// expire within the run's wait.
const SHAPE: [&str; 8] = [
    "--accounts",
    "2",
    "--transactions",
    "120",
    "--page-size",
    "10",
    "--token-lifetime",
    "4",
];

fn env_with(faults: &str) -> Env {
    let mut args: Vec<&str> = SHAPE.to_vec();
    if !faults.is_empty() {
        args.extend(["--faults", faults]);
    }
    Env::with(&args, "sandbox")
}

/// `stet conformance run --consent CONSENT ARGS --psu-ip …`.
fn consented(env: &Env, consent: &str, args: &[&str]) -> Out {
    let mut all = vec!["conformance", "run", "--consent", consent];
    all.extend(args);
    env.present(&all)
}

/// `stet conformance run --consent headless ARGS --psu-ip …`.
fn headless(env: &Env, args: &[&str]) -> Out {
    consented(env, "headless", args)
}

fn report(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json");
    serde_json::from_str(&text).expect("report.json is JSON")
}

fn case<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("{id} in the report"))
}

fn python(script: &str, args: &[&str]) -> String {
    let out = Command::new(stet_testkit::python())
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "python: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The page as headless Chromium shows it once its scripts ran, with no network to reach.
fn dom(html: &Path) -> String {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new(stet_testkit::chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--host-resolver-rules=MAP * ~NOTFOUND",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("chromium runs");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("</html>"),
        "chromium printed no page: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// Every `Authorization` and token in the evidence is masked.
fn assert_masked(report: &Value) {
    let text = report.to_string();
    for case in report["cases"].as_array().unwrap() {
        for exchange in case["evidence"].as_array().into_iter().flatten() {
            for header in exchange["request"]["headers"].as_array().unwrap() {
                if header[0]
                    .as_str()
                    .unwrap()
                    .eq_ignore_ascii_case("authorization")
                {
                    assert!(
                        header[1].as_str().unwrap().ends_with("«masked»"),
                        "{header}"
                    );
                }
                if header[0]
                    .as_str()
                    .unwrap()
                    .eq_ignore_ascii_case("signature")
                {
                    assert!(
                        header[1]
                            .as_str()
                            .unwrap()
                            .contains("signature=\"«masked»\"")
                    );
                }
            }
        }
    }
    assert!(
        !text.contains("\"access_token\":\"0") && !text.contains("code=0"),
        "a token or code in clear"
    );
}

const JUNIT: &str = r#"
import sys
from junitparser import JUnitXml, Failure, Skipped
xml = JUnitXml.fromfile(sys.argv[1])
cases = [c for suite in xml for c in suite]
failed = [c.name for c in cases if any(isinstance(r, Failure) for r in c.result)]
skipped = [c.name for c in cases if any(isinstance(r, Skipped) for r in c.result)]
print(len(cases))
print("|".join(failed))
print("|".join(skipped))
for c in cases:
    for r in c.result:
        if isinstance(r, Failure):
            print("FAILURE", c.name, "::", r.message)
"#;

#[test]
fn a_failing_run_reports_in_json_junit_and_html() {
    stet_testkit::system_tool("xmllint", "libxml2-utils");
    let env = env_with("accept-unsigned,loop-next");
    let dir = env.home.path().join("reports");
    let out = headless(
        &env,
        &[
            "--only",
            "signature,pagination",
            "--report-dir",
            dir.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, 1, "a check failed: exit 1\n{out}");
    // The table on stdout; the paste-ready waivers on stderr.
    assert!(out.stdout.contains("STET-SIG-001  FAIL"), "{out}");
    assert!(out.stdout.contains("FAILED"), "{out}");
    assert!(out.stderr.contains("case = \"STET-SIG-001\""), "{out}");

    let report = report(&dir);
    assert_eq!(report["format"], "stet-conformance-report/1");
    assert_eq!(report["cases"].as_array().unwrap().len(), 14);
    assert_eq!(case(&report, "STET-SIG-001")["outcome"], "FAIL");
    assert_eq!(case(&report, "STET-PAG-002")["outcome"], "FAIL");
    assert_eq!(case(&report, "STET-SIG-002")["outcome"], "PASS");
    assert_eq!(report["summary"]["outcomes"]["FAIL"], 2);
    assert_eq!(report["summary"]["passed"], false);
    let evidence = case(&report, "STET-SIG-001")["evidence"]
        .as_array()
        .unwrap();
    assert_eq!(
        evidence[0]["response"]["status"], 200,
        "the unsigned request was served"
    );
    assert!(
        evidence[0]["request"]["headers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|h| h[0] != "Signature"),
        "the evidence shows the request as sent: without Signature"
    );
    assert_masked(&report);
    // The TLS version and cipher suite of the bank's endpoint are recorded.
    let tls = &report["bank"]["tls"];
    let cipher = tls["cipher"].as_str().unwrap_or_default().to_owned();
    assert!(
        cipher.starts_with("TLS13_") || cipher.starts_with("TLS_ECDHE_"),
        "a cipher suite: {tls}"
    );
    assert!(
        tls["version"]
            .as_str()
            .unwrap_or_default()
            .starts_with("TLS"),
        "{tls}"
    );

    // JUnit: well-formed for libxml2, and read by junitparser: one testcase per case, the two
    // failures with their reasons.
    let junit = dir.join("junit.xml");
    let lint = Command::new("xmllint")
        .arg("--noout")
        .arg(&junit)
        .output()
        .unwrap();
    assert!(
        lint.status.success(),
        "{}",
        String::from_utf8_lossy(&lint.stderr)
    );
    let parsed = python(JUNIT, &[junit.to_str().unwrap()]);
    let mut lines = parsed.lines();
    assert_eq!(lines.next(), Some("14"), "{parsed}");
    let failed: Vec<&str> = lines.next().unwrap().split('|').collect();
    assert_eq!(failed.len(), 2, "{parsed}");
    assert!(
        failed
            .iter()
            .any(|n| n.starts_with("STET-SIG-001 A request without a Signature")),
        "{parsed}"
    );
    assert!(
        failed.iter().any(|n| n.starts_with("STET-PAG-002 ")),
        "{parsed}"
    );
    assert!(
        parsed.contains("FAILURE STET-SIG-001")
            && parsed.contains("accepted a request without a Signature header"),
        "{parsed}"
    );

    // HTML: headless Chromium, no network: the summary, each area, each case, the evidence.
    let page = dom(&dir.join("report.html"));
    assert!(
        page.contains("data-ready=\"yes\""),
        "the page's script ran: {page}"
    );
    assert!(page.contains("data-verdict=\"failed\""));
    assert!(page.contains(r#"<td data-outcome="FAIL">2</td>"#), "{page}");
    assert!(
        page.contains(r#"<td data-outcome="PASS">12</td>"#),
        "{page}"
    );
    for id in [
        "STET-SIG-001",
        "STET-SIG-007",
        "STET-PAG-001",
        "STET-PAG-007",
    ] {
        assert!(page.contains(&format!("<b>{id}</b>")), "{id}");
    }
    assert!(page.contains("id=\"area-signature\"") && page.contains("id=\"area-pagination\""));
    let tls_line = page
        .split("id=\"tls\"")
        .nth(1)
        .and_then(|rest| rest.split("</p>").next())
        .unwrap_or_else(|| panic!("a #tls line: {page}"));
    assert!(tls_line.contains(&cipher), "{tls_line} shows {cipher}");
    // Failures are opened by the script, their evidence shown.
    assert!(
        page.contains(r#"id="STET-SIG-001" data-outcome="FAIL" open="""#),
        "the failed case is opened: {page}"
    );
    assert!(page.contains("GET accounts without Signature"));
    assert!(
        page.contains("14</span> cases shown"),
        "the script counted the cases"
    );
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    for external in ["src=\"http", "href=\"http", "<link", "@import", "url("] {
        assert!(
            !html.contains(external),
            "the page loads nothing: {external}"
        );
    }
}

#[test]
fn a_compliant_run_passes_and_prints_each_format() {
    let env = env_with("");
    for (format, check) in [
        ("json", "\"format\": \"stet-conformance-report/1\""),
        ("junit", "<testsuites name=\"stet conformance: sandbox\""),
        ("html", "<!DOCTYPE html>"),
        ("table", "PASSED"),
    ] {
        let out = headless(
            &env,
            &["--only", "resources,STET-OAU-005", "--output", format],
        );
        assert_eq!(out.code, 0, "{format}: {out}");
        assert!(out.stdout.contains(check), "{format}: {out}");
    }
    // The list.
    let list = env.run(&["conformance", "list", "--output", "json"]);
    assert_eq!(list.code, 0, "{list}");
    let catalogue: Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(catalogue["cases"].as_array().unwrap().len(), 39);
    let table = env.run(&["conformance", "list"]);
    // The COST column (the fourth), not the AREA one.
    let cost = |id: &str| -> String {
        let line = table
            .stdout
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{id} in {table}"));
        line.split_whitespace().nth(3).unwrap().to_owned()
    };
    assert_eq!(cost("STET-BUD-001"), "budget", "{table}");
    assert_eq!(cost("STET-PIS-002"), "money", "{table}");
    assert_eq!(cost("STET-RES-001"), "-", "{table}");
}

#[test]
fn costly_cases_run_only_when_asked() {
    // The whole catalogue, nothing allowed: the cases that create payment requests or spend
    // the day's unattended calls are reported as not run, and the bank saw none of it.
    let env = env_with("");
    let dir = env.home.path().join("reports");
    let out = headless(&env, &["--report-dir", dir.to_str().unwrap()]);
    let report = report(&dir);
    let not_passed: Vec<String> = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["outcome"] == "FAIL" || c["outcome"] == "WARN")
        .map(|c| format!("{} {} {}", c["id"], c["outcome"], c["reason"]))
        .collect();
    assert!(not_passed.is_empty(), "{}", not_passed.join("\n"));
    assert_eq!(out.code, 0, "{out}");
    for (id, allow, what) in [
        ("STET-PIS-001", "money", "creates payment requests"),
        ("STET-PIS-002", "money", "creates payment requests"),
        ("STET-PIS-003", "money", "creates payment requests"),
        ("STET-PIS-004", "money", "creates payment requests"),
        (
            "STET-BUD-001",
            "budget",
            "spends the day's unattended calls",
        ),
    ] {
        let c = case(&report, id);
        assert_eq!(c["outcome"], "SKIP", "{id}: {c:#}");
        assert_eq!(c["prerequisite"], format!("--allow {allow}"), "{id}: {c:#}");
        let reason = c["reason"].as_str().unwrap();
        assert!(
            reason.contains("not asked for") && reason.contains(what),
            "{id}: {reason}"
        );
        assert!(
            reason.contains(&format!("--allow {allow}"))
                && reason.contains(&format!("--only {id}")),
            "{id}: {reason}"
        );
        assert_eq!(c["evidence"].as_array().map_or(0, Vec::len), 0, "{id}");
    }
    // The rest ran.
    assert_eq!(case(&report, "STET-CBP-001")["outcome"], "PASS");
    assert_eq!(report["summary"]["outcomes"]["SKIP"], 5, "{report:#}");
    let stats = env.sandbox_stats();
    assert_eq!(stats["paymentRequestsCreated"], 0, "{stats}");
    assert_eq!(stats["unattendedRefused"], 0, "{stats}");
    assert_eq!(
        stats["unattendedPeak"], 0,
        "no unattended call was made: {stats}"
    );
}

#[test]
fn a_failed_prerequisite_skips_the_cases_that_need_it_and_names_it() {
    // --consent token with no stored token and STET_ACCESS_TOKEN set but empty (which counts
    // as unset): the cases that need the consent SKIP naming it; the others run.
    let mut env = env_with("");
    env.vars.push(("STET_ACCESS_TOKEN".into(), String::new()));
    let dir = env.home.path().join("reports");
    let out = consented(
        &env,
        "token",
        &[
            "--only",
            "STET-RES-001,STET-PAG-001,STET-OAU-001",
            "--report-dir",
            dir.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, 0, "a SKIP fails nothing: {out}");
    let report = report(&dir);
    assert_eq!(report["consent"], "token");
    for id in ["STET-RES-001", "STET-PAG-001"] {
        let c = case(&report, id);
        assert_eq!(c["outcome"], "SKIP", "{id}: {c:#}");
        assert_eq!(c["prerequisite"], "consent", "{id}: {c:#}");
        let reason = c["reason"].as_str().unwrap();
        assert!(
            reason.starts_with("prerequisite consent: no consent token for profile `sandbox`")
                && reason.contains("stet auth login"),
            "{id}: {reason}"
        );
    }
    assert_eq!(case(&report, "STET-OAU-001")["outcome"], "PASS");
    // Nothing was sent to get the consent: the setup evidence says so (no exchange).
    assert_eq!(report["setup_calls"], 0, "{report:#}");
    assert_eq!(
        report["setup_evidence"].as_array().map_or(0, Vec::len),
        0,
        "{report:#}"
    );

    // A prerequisite that failed at the bank: a PSU without accounts. The cases that need an
    // account SKIP naming it, and the report keeps the setup's exchanges that show why.
    let env = Env::with(&["--accounts", "0"], "sandbox");
    let dir = env.home.path().join("reports");
    let out = headless(
        &env,
        &[
            "--only",
            "STET-RES-002,STET-RES-001",
            "--report-dir",
            dir.to_str().unwrap(),
        ],
    );
    let accounts = self::report(&dir);
    let c = case(&accounts, "STET-RES-002");
    assert_eq!(c["outcome"], "SKIP", "{out}\n{c:#}");
    assert_eq!(c["prerequisite"], "account", "{c:#}");
    let setup = accounts["setup_evidence"].as_array().unwrap();
    assert!(
        setup.iter().any(|e| e["request"]["url"]
            .as_str()
            .unwrap_or("")
            .ends_with("/accounts")),
        "the setup's GET accounts is in the evidence: {setup:#?}"
    );
}

#[test]
fn consent_token_uses_the_stored_token_or_stet_access_token() {
    let mut env = Env::with(
        &[
            "--accounts",
            "2",
            "--transactions",
            "40",
            "--page-size",
            "10",
        ],
        "sandbox",
    );
    env.login(&[]);
    let run = |env: &Env, dir: &Path| {
        let issued = env.sandbox_stats()["tokensIssued"].clone();
        let out = consented(
            env,
            "token",
            &[
                "--only",
                "STET-RES-001,STET-RES-003,STET-PAG-001",
                "--report-dir",
                dir.to_str().unwrap(),
            ],
        );
        assert_eq!(out.code, 0, "{out}");
        let report = report(dir);
        assert_eq!(report["consent"], "token");
        for id in ["STET-RES-001", "STET-RES-003", "STET-PAG-001"] {
            assert_eq!(case(&report, id)["outcome"], "PASS", "{id}: {report:#}");
        }
        // The consent came from the token: the bank issued none during the run.
        assert_eq!(env.sandbox_stats()["tokensIssued"], issued);
    };
    run(&env, &env.home.path().join("stored"));

    // The same token through STET_ACCESS_TOKEN, with the stored one gone.
    let text = std::fs::read_to_string(env.token_file("sandbox")).unwrap();
    let stored: Value = serde_json::from_str(&text).unwrap();
    let access = stored["tokens"]
        .as_object()
        .and_then(|t| t.values().find_map(|t| t["access_token"].as_str()))
        .unwrap_or_else(|| panic!("an access token in the token file"))
        .to_owned();
    std::fs::remove_file(env.token_file("sandbox")).unwrap();
    env.vars.push(("STET_ACCESS_TOKEN".into(), access));
    run(&env, &env.home.path().join("env"));
}

#[test]
fn the_psu_approves_at_a_browser() {
    // --consent psu: the PSU's consent, then the payment request's approval, each through the
    // loopback listener of `stet auth login`.
    let env = env_with("");
    let dir = env.home.path().join("psu");
    let mut running = env.spawn(&[
        "conformance",
        "run",
        "--consent",
        "psu",
        "--only",
        "STET-RES-001,STET-PIS-002",
        "--allow",
        "money",
        "--report-dir",
        dir.to_str().unwrap(),
        "--psu-ip",
        PSU_IP,
    ]);
    for _ in 0..2 {
        let url = running.authorize_url();
        let location = env.consent_at_bank(&url);
        assert_eq!(deliver(&location), 200);
    }
    let out = running.finish();
    assert_eq!(out.code, 0, "{out}");
    let report = report(&dir);
    assert_eq!(report["consent"], "psu");
    assert_eq!(
        case(&report, "STET-PIS-002")["outcome"],
        "PASS",
        "{report:#}"
    );
    assert_eq!(case(&report, "STET-RES-001")["outcome"], "PASS");
}

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

#[test]
fn waivers_excuse_failures_and_stale_or_expired_ones_fail_the_run() {
    let env = env_with("accept-unsigned");
    let home = env.home.path();
    let run = |waivers: &Path| {
        headless(
            &env,
            &[
                "--only",
                "STET-SIG-001,STET-SIG-002",
                "--waivers",
                waivers.to_str().unwrap(),
                "--output",
                "json",
            ],
        )
    };
    let waiver = |case: &str, expires: &str| {
        format!(
            "[[waiver]]\ncase = \"{case}\"\nreason = \"sandbox only, ticket 4711\"\nexpires = \"{expires}\"\n"
        )
    };
    // The failure, waived: reported, and the run passes.
    let ok = write(&home.join("ok.toml"), &waiver("STET-SIG-001", "2999-12-31"));
    let out = run(&ok);
    assert_eq!(out.code, 0, "{out}");
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(case(&report, "STET-SIG-001")["outcome"], "FAIL");
    assert_eq!(
        case(&report, "STET-SIG-001")["waived"]["reason"],
        "sandbox only, ticket 4711"
    );
    assert_eq!(report["summary"]["waived"], 1);
    assert_eq!(report["summary"]["passed"], true);

    // A waiver for a case that passes is stale: the run fails.
    let stale = write(
        &home.join("stale.toml"),
        &format!(
            "{}\n{}",
            waiver("STET-SIG-001", "2999-12-31"),
            waiver("STET-SIG-002", "2999-12-31")
        ),
    );
    let out = run(&stale);
    assert_eq!(out.code, 1, "{out}");
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["waivers"]["stale"][0]["case"], "STET-SIG-002");
    assert_eq!(report["waivers"]["stale"][0]["outcome"], "PASS");

    // An expired waiver waives nothing.
    let expired = write(
        &home.join("expired.toml"),
        &waiver("STET-SIG-001", "2020-01-01"),
    );
    let out = run(&expired);
    assert_eq!(out.code, 1, "{out}");
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(case(&report, "STET-SIG-001").get("waived").is_none());
    assert!(
        report["waivers"]["expired"][0]
            .as_str()
            .unwrap()
            .starts_with("STET-SIG-001")
    );

    // A waivers file that names no case of the catalogue, or is not TOML: exit 2, nothing sent.
    let unknown = write(
        &home.join("unknown.toml"),
        &waiver("STET-SIG-099", "2999-12-31"),
    );
    run(&unknown).fails(2, "no case STET-SIG-099 in the catalogue");
    let broken = write(&home.join("broken.toml"), "[[waiver]]\ncase = ");
    run(&broken).fails(2, "waivers");
    let bad_date = write(&home.join("date.toml"), &waiver("STET-SIG-001", "soon"));
    run(&bad_date).fails(2, "expires `soon` is not a date");
}

const UNZIP: &str = r#"
import hashlib, json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
out = sys.argv[2]
z.extractall(out)
manifest = json.loads(z.read("manifest.json"))
for name, digest in manifest["files"].items():
    assert hashlib.sha256(z.read(name)).hexdigest() == digest, name
print(" ".join(sorted(z.namelist())))
"#;

const TAMPER: &str = r#"
import sys, zipfile
src, dst, name = sys.argv[1], sys.argv[2], sys.argv[3]
with zipfile.ZipFile(src) as a, zipfile.ZipFile(dst, "w") as b:
    for item in a.infolist():
        data = a.read(item.filename)
        if item.filename == name:
            data = data.replace(b"PASS", b"FAIL", 1) if b"PASS" in data else data + b" "
        b.writestr(item, data)
"#;

/// `stet conformance verify-bundle BUNDLE ARGS`.
fn verify_bundle(env: &Env, bundle: &str, args: &[&str]) -> Out {
    let mut all = vec!["conformance", "verify-bundle", bundle];
    all.extend(args);
    env.run(&all)
}

#[test]
fn the_evidence_bundle_is_signed_with_the_qsealc_and_tampering_is_caught() {
    let openssl = stet_testkit::system_tool("openssl", "openssl");
    let env = env_with("");
    let home = env.home.path();
    let bundle = home.join("evidence.zip");
    let out = headless(
        &env,
        &[
            "--only",
            "STET-SIG-001,STET-RES-007",
            "--bundle",
            bundle.to_str().unwrap(),
        ],
    );
    assert_eq!(out.code, 0, "{out}");
    let verified = verify_bundle(&env, bundle.to_str().unwrap(), &[]);
    assert_eq!(verified.code, 0, "{verified}");
    assert!(verified.stdout.starts_with("ok: "), "{verified}");
    assert!(verified.stdout.contains("2 cases, passed"), "{verified}");
    // Intact, but nothing says who signed: the output says so.
    assert!(
        verified
            .stdout
            .contains("(not authenticated: pass --cert FILE or --ca FILE to check who signed)"),
        "{verified}"
    );

    // Python's zipfile reads it and the manifest's SHA-256s match; OpenSSL verifies the
    // signature with the QSealC's public key.
    let unzipped = home.join("unzipped");
    let names = python(
        UNZIP,
        &[bundle.to_str().unwrap(), unzipped.to_str().unwrap()],
    );
    assert_eq!(
        names.trim(),
        "bank-profile.json catalogue.toml manifest.json manifest.sig qsealc.pem report.json"
    );
    let pubkey = home.join("qseal.pub.pem");
    let extracted = Command::new(&openssl)
        .args(["x509", "-pubkey", "-noout", "-in"])
        .arg(unzipped.join("qsealc.pem"))
        .output()
        .unwrap();
    assert!(extracted.status.success());
    std::fs::write(&pubkey, &extracted.stdout).unwrap();
    let check = Command::new(&openssl)
        .args(["dgst", "-sha256", "-verify"])
        .arg(&pubkey)
        .arg("-signature")
        .arg(unzipped.join("manifest.sig"))
        .arg(unzipped.join("manifest.json"))
        .output()
        .unwrap();
    assert!(
        check.status.success() && String::from_utf8_lossy(&check.stdout).contains("Verified OK"),
        "openssl: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
    let profile = std::fs::read_to_string(unzipped.join("bank-profile.json")).unwrap();
    assert!(
        !profile.contains("BEGIN") && profile.contains("\"key_id\""),
        "{profile}"
    );

    // A changed report, a changed manifest, another signer: each refused, exit 1.
    for (entry, needle) in [
        ("report.json", "report.json was changed after signing"),
        (
            "manifest.json",
            "manifest.sig is not a signature of manifest.json",
        ),
    ] {
        let tampered = home.join(format!("tampered-{entry}.zip"));
        python(
            TAMPER,
            &[bundle.to_str().unwrap(), tampered.to_str().unwrap(), entry],
        );
        verify_bundle(&env, tampered.to_str().unwrap(), &[]).fails(1, needle);
    }
    verify_bundle(
        &env,
        bundle.to_str().unwrap(),
        &["--cert", env.sandbox.get("qwac_cert")],
    )
    .fails(1, "signed with another QSealC than the certificate given");
    verify_bundle(
        &env,
        bundle.to_str().unwrap(),
        &["--cert", env.sandbox.get("qseal_cert")],
    )
    .ok();
    verify_bundle(&env, home.join("nope.zip").to_str().unwrap(), &[])
        .fails(2, "cannot read the bundle");
    let not_zip = write(&home.join("not.zip"), "hello");
    verify_bundle(&env, not_zip.to_str().unwrap(), &[]).fails(1, "not a readable zip");
    let ca = env.sandbox.get("ca");
    for flag in ["--cert", "--ca"] {
        verify_bundle(
            &env,
            bundle.to_str().unwrap(),
            &[flag, home.join("nope.pem").to_str().unwrap()],
        )
        .fails(2, "cannot read");
        verify_bundle(
            &env,
            bundle.to_str().unwrap(),
            &[flag, not_zip.to_str().unwrap()],
        )
        .fails(2, "holds no PEM certificate");
    }

    // --ca: the genuine bundle's QSealC chains to the sandbox's CA; JSON says so.
    let json = verify_bundle(
        &env,
        bundle.to_str().unwrap(),
        &["--ca", ca, "--output", "json"],
    );
    assert_eq!(json.code, 0, "{json}");
    let shown = json.json();
    assert_eq!(shown["valid"], true, "{shown}");
    assert_eq!(shown["authenticated"], true, "{shown}");
    assert_eq!(shown["authenticated_by"], "ca", "{shown}");
    assert!(
        shown["signer"].as_str().unwrap().contains("QSealC"),
        "{shown}"
    );
    assert!(!shown["ca"].as_str().unwrap().is_empty(), "{shown}");
    assert_eq!(shown["report"]["cases"], 2, "{shown}");
    assert_eq!(shown["report"]["passed"], true, "{shown}");
    assert!(shown["error"].is_null(), "{shown}");

    // A forged bundle: its report changed, re-signed with a self-signed certificate bearing
    // the TPP's QSealC name. Intact and "signed by" that name without --cert or --ca; refused
    // with --ca.
    let subject = Command::new(&openssl)
        .args(["x509", "-noout", "-subject", "-nameopt", "compat", "-in"])
        .arg(unzipped.join("qsealc.pem"))
        .output()
        .unwrap();
    let subject = String::from_utf8_lossy(&subject.stdout)
        .trim()
        .trim_start_matches("subject=")
        .to_owned();
    assert!(subject.starts_with('/'), "{subject}");
    let (forged_key, forged_cert) = (home.join("forged.key"), home.join("forged.pem"));
    let made = Command::new(&openssl)
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-subj",
        ])
        .arg(&subject)
        // An end-entity certificate like the real QSealC, only self-signed.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&forged_key)
        .arg("-out")
        .arg(&forged_cert)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let forged = home.join("forged.zip");
    python(
        FORGE,
        &[
            bundle.to_str().unwrap(),
            forged.to_str().unwrap(),
            forged_cert.to_str().unwrap(),
            forged_key.to_str().unwrap(),
            openssl.to_str().unwrap(),
        ],
    );
    let accepted = verify_bundle(&env, forged.to_str().unwrap(), &[]);
    assert_eq!(accepted.code, 0, "integrity alone holds: {accepted}");
    assert!(
        accepted.stdout.contains("not authenticated")
            && accepted.stdout.contains("2 cases, failed"),
        "{accepted}"
    );
    let json = verify_bundle(&env, forged.to_str().unwrap(), &["--output", "json"]);
    assert_eq!(json.json()["authenticated"], false, "{json}");
    assert!(json.json()["authenticated_by"].is_null(), "{json}");
    verify_bundle(&env, forged.to_str().unwrap(), &["--ca", ca])
        .fails(1, "does not chain to the CA given");
    let refused = verify_bundle(
        &env,
        forged.to_str().unwrap(),
        &["--ca", ca, "--output", "json"],
    );
    assert_eq!(refused.code, 1, "{refused}");
    let refused: Value = serde_json::from_str(&refused.stdout).unwrap();
    assert_eq!(refused["valid"], false, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("does not chain to the CA given"),
        "{refused}"
    );
    verify_bundle(
        &env,
        forged.to_str().unwrap(),
        &["--cert", env.sandbox.get("qseal_cert")],
    )
    .fails(1, "signed with another QSealC than the certificate given");
}

/// Re-signs a bundle as a forger would: the report changed, the manifest's SHA-256s made
/// again, the manifest signed with another key, whose self-signed certificate is bundled.
const FORGE: &str = r#"
import hashlib, json, subprocess, sys, zipfile
src, dst, cert, key, openssl = sys.argv[1:6]
with zipfile.ZipFile(src) as a:
    entries = {i.filename: a.read(i.filename) for i in a.infolist()}
entries["report.json"] = entries["report.json"].replace(b'"passed": true', b'"passed": false', 1)
entries["qsealc.pem"] = open(cert, "rb").read()
manifest = json.loads(entries["manifest.json"])
for name in manifest["files"]:
    manifest["files"][name] = hashlib.sha256(entries[name]).hexdigest()
entries["manifest.json"] = json.dumps(manifest, indent=2).encode()
entries["manifest.sig"] = subprocess.run(
    [openssl, "dgst", "-sha256", "-sign", key], input=entries["manifest.json"],
    capture_output=True, check=True).stdout
with zipfile.ZipFile(dst, "w") as b:
    for name, data in entries.items():
        b.writestr(name, data)
"#;

#[test]
fn bad_setup_exits_2_and_unwritable_reports_exit_3() {
    let env = env_with("");
    let home = env.home.path();
    env.run(&["conformance", "run", "--only", "nothing-such"])
        .fails(2, "`nothing-such` is neither a case id nor an area");
    let catalogue = write(
        &home.join("cat.toml"),
        "version = \"x\"\n[[case]]\nid = \"STET-SIG-001\"\n",
    );
    env.run(&[
        "conformance",
        "run",
        "--catalogue",
        catalogue.to_str().unwrap(),
    ])
    .fails(2, "catalogue");
    env.run(&["--profile", "nope", "conformance", "run"])
        .fails(2, "no profile `nope`");
    // A file where the report folder should be.
    let file = write(&home.join("a-file"), "");
    headless(
        &env,
        &[
            "--only",
            "STET-RES-007",
            "--report-dir",
            file.to_str().unwrap(),
        ],
    )
    .fails(3, "cannot create the report folder");
    // A catalogue of one's own: a severity changed, one case.
    let own = write(&home.join("own.toml"), OWN_CATALOGUE);
    let out = headless(
        &env,
        &["--catalogue", own.to_str().unwrap(), "--output", "json"],
    );
    assert_eq!(out.code, 0, "{out}");
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["catalogue"]["version"], "own-1");
    assert_eq!(report["cases"][0]["severity"], "advisory");
}

/// A catalogue of one's own: one case, made advisory.
const OWN_CATALOGUE: &str = r#"version = "own-1"

[[case]]
id = "STET-RES-007"
title = "X-Request-ID comes back"
area = "resources"
clause = "ours"
dialects = ["1.5"]
prerequisites = ["consent"]
severity = "advisory"
check = "resources.request_id_echoed"
"#;
