//! End-to-end tests of `stet export`: a store filled by syncing the sandbox bank over real
//! sockets (non-ASCII labels, debits and credits, an account in USD, pending transactions, a
//! look-alike pair), exported in every format and read back by the tools people import
//! with, none of them ours:
//! - beancount by `bean-check`; ledger/hledger by `hledger check -s` and `ledger --pedantic`,
//!   each also failing on a copy one cent off (the balance assertions catch it);
//! - OFX 1.02 by ofxtools (warnings as errors), libofx's `ofxdump` (no warning, no error) and
//!   ofxparse, and ledger-autosync run twice adding nothing the second time; OFX 2.2 by
//!   ofxtools and `ofxdump`;
//! - QIF by quiffen (day first); camt.053 `.001.02` and `.001.08` by `xmllint` against the
//!   ISO 20022 XSDs; CSV and JSON by Python's own readers.
//!
//! Totals and closing balances are compared with what the bank itself lists. After a further
//! sync (`POST /sandbox/advance`), every id is unchanged and `--since-last` gives exactly the
//! new transactions, on SQLite and on PostgreSQL; a transaction the bank changed after it was
//! exported is reported, not written again.

#![allow(missing_docs)]

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::*;

const EXTENDED: &[&str] = &["--scope", "aisp", "--scope", "extended_transaction_history"];
const ACCOUNTS: usize = 4;

fn bank(accounts: usize, transactions: usize) -> Env {
    let (a, t) = (accounts.to_string(), transactions.to_string());
    let env = Env::with(
        &["--accounts", &a, "--transactions", &t, "--page-size", "25"],
        "sandbox",
    );
    env.login(EXTENDED);
    env
}

fn sandbox_post(env: &Env, path: &str, body: &str) -> Value {
    let ca = std::fs::read(env.sandbox.get("ca")).expect("read the sandbox CA");
    let url = url::Url::parse(env.sandbox.get("api_base"))
        .and_then(|base| base.join(path))
        .expect("URL");
    let body = body.to_owned();
    block_on(async move {
        let client = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).expect("CA PEM")])
            .build()
            .expect("client");
        let response = client.post(url).body(body).send().await.expect("sandbox");
        assert_eq!(response.status().as_u16(), 200);
        serde_json::from_slice(&response.bytes().await.expect("body")).expect("JSON")
    })
}

fn advance(env: &Env) -> Value {
    sandbox_post(
        env,
        "/sandbox/advance",
        r#"{"days": 3, "transactions_per_account": 4}"#,
    )
}

fn sync(env: &Env, store: &str) {
    env.present(&["sync", "--store", store]).ok();
}

/// `stet export --store STORE ARGS`.
fn export(env: &Env, store: &str, args: &[&str]) -> Out {
    let mut all = vec!["export", "--store", store];
    all.extend(args);
    let out = env.run(&all);
    out.no_panic();
    out
}

/// Exports to `dir/NAME` and gives the path.
fn export_file(env: &Env, store: &str, dir: &Path, name: &str, args: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let mut all = args.to_vec();
    let p = path.to_str().unwrap().to_owned();
    all.extend(["--file", &p]);
    let out = export(env, store, &all);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.stdout, "", "with --file, nothing on stdout: {out}");
    assert!(out.stderr.contains("exported "), "{out}");
    path
}

/// Runs a validator: (exit code, stdout, stderr).
fn tool(program: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs a Python snippet (the test venv's Python) with `args` as `sys.argv[1:]`, and reads
/// the JSON it prints. Snippets that use ofxtools run with warnings as errors: ofxtools
/// reports a value too long for its field (`NAME`, `ACCTID`) only as a warning. (ofxparse's
/// own use of a deprecated BeautifulSoup method would fail the others.)
fn python(code: &str, args: &[&str]) -> Value {
    let mut all = if code.contains("ofxtools") {
        vec!["-W", "error", "-c", code]
    } else {
        vec!["-c", code]
    };
    all.extend(args);
    let (rc, out, err) = tool(&stet_testkit::python(), &all);
    assert_eq!(rc, 0, "python failed:\n{err}\n{out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}\n{err}"))
}

/// What the bank lists now, per IBAN: booked transactions' (count, signed sum), pending
/// count, booked balance (CLBD) and currency.
#[derive(Debug, Default, Clone)]
struct Truth {
    booked: usize,
    booked_sum: rust_decimal::Decimal,
    pending: usize,
    clbd: String,
    currency: String,
}

fn truth(env: &Env) -> BTreeMap<String, Truth> {
    let accounts = env.present(&["accounts", "--output", "json"]).json_array();
    let listing = env
        .present(&["transactions", "--all", "--output", "ndjson"])
        .ndjson();
    let mut out = BTreeMap::new();
    for a in accounts {
        let id = a["resourceId"].as_str().unwrap();
        let iban = a["accountId"]["iban"].as_str().unwrap().to_owned();
        let mut t = Truth {
            currency: a["currency"].as_str().unwrap().to_owned(),
            ..Truth::default()
        };
        // Entry references start with the account's first resource id.
        for tx in listing.iter().filter(|t| {
            t["entryReference"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{id}-"))
        }) {
            let amount: rust_decimal::Decimal = tx["transactionAmount"]["amount"]
                .as_str()
                .map(|s| s.parse().unwrap())
                .unwrap_or_else(|| {
                    tx["transactionAmount"]["amount"]
                        .to_string()
                        .parse()
                        .unwrap()
                });
            let signed = if tx["creditDebitIndicator"] == "DBIT" {
                -amount
            } else {
                amount
            };
            if tx["status"] == "BOOK" {
                t.booked += 1;
                t.booked_sum += signed;
            } else {
                t.pending += 1;
            }
        }
        let balances = env
            .present(&["balances", id, "--output", "json"])
            .json_array();
        let clbd = balances
            .iter()
            .map(|row| &row["balance"])
            .find(|b| b["balanceType"] == "CLBD")
            .expect("a CLBD balance");
        t.clbd = clbd["balanceAmount"]["amount"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| clbd["balanceAmount"]["amount"].to_string());
        out.insert(iban, t);
    }
    out
}

fn dec(s: &str) -> rust_decimal::Decimal {
    s.parse().unwrap_or_else(|e| panic!("`{s}`: {e}"))
}

/// The stable ids of an NDJSON export, with their rows.
fn ndjson_rows(env: &Env, store: &str, extra: &[&str]) -> BTreeMap<String, Value> {
    let mut args = vec!["--format", "ndjson", "--all-profiles"];
    args.extend(extra);
    let out = export(env, store, &args);
    let mut rows = BTreeMap::new();
    for row in out.ndjson() {
        let id = row["stable_id"].as_str().unwrap().to_owned();
        assert!(id.starts_with("s1-") && id.len() == 35, "{row}");
        assert!(rows.insert(id, row.clone()).is_none(), "an id twice: {row}");
    }
    rows
}

/// Changes the first bank posting of a journal by one cent (the counter posting too, so it
/// still balances): only a balance assertion can see it.
fn one_cent_off(text: &str, account_prefix: &str, indent: &str) -> String {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let tx = lines
        .iter()
        .position(|l| l.contains("stet-id: "))
        .expect("a transaction");
    for line in lines.iter_mut().skip(tx).take(4) {
        let trimmed = line.trim_start();
        if !trimmed.starts_with(account_prefix)
            && !trimmed.starts_with("Expenses")
            && !trimmed.starts_with("Income")
        {
            continue;
        }
        let mut parts: Vec<&str> = trimmed.split("  ").collect();
        let (amount, currency) = parts[1].split_once(' ').unwrap();
        let cent = rust_decimal::Decimal::new(1, 2);
        let bumped = if trimmed.starts_with(account_prefix) {
            dec(amount) + cent
        } else {
            dec(amount) - cent
        };
        let new = format!("{bumped} {currency}");
        parts[1] = &new;
        *line = format!("{indent}{}", parts.join("  "));
    }
    lines.join("\n") + "\n"
}

#[test]
fn every_format_passes_the_tools_people_import_with() {
    let env = bank(ACCOUNTS, 40);
    let dir = env.home.path().join("exports");
    std::fs::create_dir_all(&dir).unwrap();
    let store = format!("sqlite:{}", env.home.path().join("stet.db").display());
    // Two syncs with the bank's clock moved between: two balance snapshots, so the later
    // assertions are the bank's word on what the store holds.
    sync(&env, &store);
    let advanced = advance(&env);
    assert!(advanced["added"].as_u64().unwrap() > 0, "{advanced}");
    sync(&env, &store);
    let bank = truth(&env);
    assert_eq!(bank.len(), ACCOUNTS);
    let booked: usize = bank.values().map(|t| t.booked).sum();
    let pending: usize = bank.values().map(|t| t.pending).sum();
    assert!(pending > 0, "the sandbox lists pending transactions");
    assert!(
        bank.values().any(|t| t.currency == "USD") && bank.values().any(|t| t.currency == "EUR"),
        "two currencies: {bank:?}"
    );

    // The rows: the store's columns, booked only by default, the bank's totals.
    let rows = ndjson_rows(&env, &store, &[]);
    assert_eq!(rows.len(), booked);
    for (iban, t) in &bank {
        let mine: Vec<&Value> = rows.values().filter(|r| r["iban"] == **iban).collect();
        assert_eq!(mine.len(), t.booked, "{iban}");
        let sum: rust_decimal::Decimal = mine
            .iter()
            .map(|r| dec(r["amount"].as_str().unwrap()))
            .sum();
        assert_eq!(
            sum, t.booked_sum,
            "{iban}: the export's total is the bank's"
        );
        assert!(
            mine.iter()
                .all(|r| r["currency"] == *t.currency && r["status"] == "BOOK")
        );
    }
    assert!(
        rows.values()
            .any(|r| !r["label"].as_str().unwrap_or("").is_ascii()),
        "the sandbox's labels include non-ASCII ones"
    );
    // The look-alike pair: same day, amount and label, two rows with two ids.
    let mut seen: BTreeMap<(String, String, String, String), usize> = BTreeMap::new();
    for r in rows.values() {
        let key = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
        *seen
            .entry((
                key("iban"),
                key("booking_date"),
                key("amount"),
                key("label"),
            ))
            .or_default() += 1;
    }
    assert!(
        seen.values().any(|n| *n >= 2),
        "a look-alike pair, kept as two"
    );

    // beancount: bean-check, silent; one cent off fails.
    let bean = export_file(
        &env,
        &store,
        &dir,
        "books.beancount",
        &["--format", "beancount", "--all-profiles"],
    );
    let bean_check = stet_testkit::venv_tool("bean-check");
    let (rc, out, err) = tool(&bean_check, &[bean.to_str().unwrap()]);
    assert_eq!((rc, out.as_str(), err.as_str()), (0, "", ""), "bean-check");
    let text = std::fs::read_to_string(&bean).unwrap();
    assert_eq!(text.matches("stet-id: \"s1-").count(), booked);
    assert_eq!(
        text.matches(" balance ").count(),
        2 * ACCOUNTS,
        "two snapshots each"
    );
    assert!(text.contains("  iban: \"FR76"), "open carries the IBAN");
    assert!(text.contains(" USD") && text.contains(" EUR"));
    let off = dir.join("off.beancount");
    std::fs::write(&off, one_cent_off(&text, "Assets:", "  ")).unwrap();
    let (rc, out, err) = tool(&bean_check, &[off.to_str().unwrap()]);
    assert_ne!(rc, 0, "one cent off must fail bean-check");
    assert!(
        (out + &err).contains("Balance failed"),
        "bean-check names the balance"
    );

    // The default counter accounts carry the flows.
    assert!(
        text.contains("Expenses:Unknown") && text.contains("Income:Unknown"),
        "the default counter accounts"
    );

    // A date range (from inclusive, to exclusive): the rows booked in it, and the books still
    // check, the opening balance carrying what came before.
    let mut dates: Vec<&str> = rows
        .values()
        .map(|r| r["booking_date"].as_str().unwrap())
        .collect();
    dates.sort_unstable();
    let (from, to) = (dates[dates.len() / 3], dates[2 * dates.len() / 3]);
    assert!(from < to, "{from} {to}");
    let ranged = export_file(
        &env,
        &store,
        &dir,
        "range.beancount",
        &[
            "--format",
            "beancount",
            "--all-profiles",
            "--from",
            from,
            "--to",
            to,
        ],
    );
    let (rc, out, err) = tool(&bean_check, &[ranged.to_str().unwrap()]);
    assert_eq!(
        (rc, out.as_str(), err.as_str()),
        (0, "", ""),
        "bean-check of {from}..{to}"
    );
    let in_range = dates.iter().filter(|d| **d >= from && **d < to).count();
    assert_eq!(
        std::fs::read_to_string(&ranged)
            .unwrap()
            .matches("stet-id: \"s1-")
            .count(),
        in_range
    );

    // An account named in [export.accounts] is booked under that name, the others under
    // the default one; the books still check.
    let iban = bank.keys().next().unwrap();
    let config = std::fs::read_to_string(&env.config).unwrap();
    write_private(
        &env.config,
        &format!("{config}\n[export.accounts]\n{iban} = \"Assets:Bank:Mine:Courant\"\n"),
    );
    let mapped = export_file(
        &env,
        &store,
        &dir,
        "mapped.beancount",
        &["--format", "beancount", "--all-profiles"],
    );
    write_private(&env.config, &config);
    let (rc, out, err) = tool(&bean_check, &[mapped.to_str().unwrap()]);
    assert_eq!(
        (rc, out.as_str(), err.as_str()),
        (0, "", ""),
        "bean-check, mapped"
    );
    let mapped = std::fs::read_to_string(&mapped).unwrap();
    assert!(
        mapped.contains(" open Assets:Bank:Mine:Courant"),
        "the mapped name"
    );
    assert!(
        !mapped.contains(&format!("Assets:Bank:Sandbox:{}", &iban[iban.len() - 4..])),
        "not the default name for the mapped account"
    );
    assert_eq!(
        mapped.matches(" open Assets:Bank:Sandbox:").count(),
        ACCOUNTS - 1,
        "the others keep their default names"
    );

    // ledger and hledger: one journal for both, strict; one cent off fails in both.
    let journal = export_file(
        &env,
        &store,
        &dir,
        "books.journal",
        &["--format", "ledger", "--all-profiles"],
    );
    let hledger = stet_testkit::system_tool("hledger", "hledger");
    let ledger = stet_testkit::system_tool("ledger", "ledger");
    let j = journal.to_str().unwrap();
    let (rc, _, err) = tool(&hledger, &["-f", j, "check", "-s"]);
    assert_eq!((rc, err.as_str()), (0, ""), "hledger check -s");
    let (rc, _, err) = tool(&ledger, &["-f", j, "--pedantic", "bal"]);
    assert_eq!((rc, err.as_str()), (0, ""), "ledger --pedantic");
    let text = std::fs::read_to_string(&journal).unwrap();
    assert_eq!(text.matches("; stet-id: s1-").count(), booked);
    assert!(text.contains("commodity USD") && text.contains("tag stet-id"));
    // The closing balance in the books is the bank's CLBD.
    for (iban, t) in &bank {
        let name = format!("Assets:Bank:Sandbox:{}", &iban[iban.len() - 4..]);
        let (rc, out, err) = tool(
            &hledger,
            &["-f", j, "bal", &name, "-N", "--flat", "-O", "csv"],
        );
        assert_eq!(rc, 0, "{err}");
        assert!(
            out.contains(&format!("{} {}", t.clbd, t.currency))
                || out.contains(&format!("{}{}", t.clbd, t.currency)),
            "{name}: hledger's balance {out} is the bank's {} {}",
            t.clbd,
            t.currency
        );
    }
    let off = dir.join("off.journal");
    std::fs::write(&off, one_cent_off(&text, "Assets:", "    ")).unwrap();
    let o = off.to_str().unwrap();
    assert_ne!(
        tool(&hledger, &["-f", o, "check", "-s"]).0,
        0,
        "hledger: one cent off"
    );
    assert_ne!(
        tool(&ledger, &["-f", o, "--pedantic", "bal"]).0,
        0,
        "ledger: one cent off"
    );
    // Pending transactions marked `!`, and the journal still passes both tools.
    let pending_journal = export_file(
        &env,
        &store,
        &dir,
        "pending.journal",
        &["--format", "ledger", "--all-profiles", "--include-pending"],
    );
    let pj = pending_journal.to_str().unwrap();
    let (rc, _, err) = tool(&hledger, &["-f", pj, "check", "-s"]);
    assert_eq!((rc, err.as_str()), (0, ""), "hledger check -s with pending");
    let (rc, _, err) = tool(&ledger, &["-f", pj, "--pedantic", "bal"]);
    assert_eq!(
        (rc, err.as_str()),
        (0, ""),
        "ledger --pedantic with pending"
    );
    let pending_text = std::fs::read_to_string(&pending_journal).unwrap();
    assert_eq!(
        pending_text
            .lines()
            .filter(|l| l.len() > 11 && l[10..].starts_with(" ! "))
            .count(),
        pending
    );
    // `--format hledger` is the same journal.
    let hl = export_file(
        &env,
        &store,
        &dir,
        "books.hledger",
        &["--format", "hledger", "--all-profiles"],
    );
    assert_eq!(std::fs::read_to_string(&hl).unwrap(), text);

    // OFX 1.02 (Windows-1252): ofxtools (warnings as errors), ofxdump, ofxparse.
    let ofx = export_file(
        &env,
        &store,
        &dir,
        "books.ofx",
        &["--format", "ofx", "--all-profiles"],
    );
    let bytes = std::fs::read(&ofx).unwrap();
    assert!(bytes.starts_with(b"OFXHEADER:100\nDATA:OFXSGML\nVERSION:102"));
    assert!(
        std::str::from_utf8(&bytes).is_err(),
        "Windows-1252, not UTF-8"
    );
    let read = python(
        r#"
import json, sys
from ofxtools.Parser import OFXTree
t = OFXTree(); t.parse(sys.argv[1]); ofx = t.convert()
print(json.dumps([{"bank": s.account.bankid, "branch": s.account.branchid, "acct": s.account.acctid,
  "key": s.account.acctkey, "n": len(s.transactions), "ids": [x.fitid for x in s.transactions],
  "sum": str(sum(x.trnamt for x in s.transactions)), "ledgerbal": str(s.ledgerbal.balamt),
  "names": [x.name for x in s.transactions], "memos": [x.memo for x in s.transactions],
  "currency": s.curdef} for s in ofx.statements]))
"#,
        &[ofx.to_str().unwrap()],
    );
    let read = read.as_array().unwrap();
    assert_eq!(read.len(), ACCOUNTS);
    for s in read {
        let iban = format!(
            "{}{}{}",
            s["bank"].as_str().unwrap(),
            s["branch"].as_str().unwrap(),
            s["acct"].as_str().unwrap()
        );
        let (full, t) = bank
            .iter()
            .find(|(i, _)| i[4..25] == iban && i[25..] == *s["key"].as_str().unwrap())
            .unwrap_or_else(|| panic!("the RIB split of {s} is one of the bank's IBANs"));
        assert_eq!(s["n"].as_u64().unwrap() as usize, t.booked, "{full}");
        assert_eq!(dec(s["sum"].as_str().unwrap()), t.booked_sum, "{full}");
        assert_eq!(
            dec(s["ledgerbal"].as_str().unwrap()),
            dec(&t.clbd),
            "{full}: LEDGERBAL"
        );
        assert_eq!(s["currency"], *t.currency);
        for id in s["ids"].as_array().unwrap() {
            assert!(
                rows.contains_key(id.as_str().unwrap()),
                "FITID is the stable id"
            );
        }
        for name in s["names"].as_array().unwrap() {
            assert!(name.as_str().unwrap().chars().count() <= 32);
        }
    }
    let long = read
        .iter()
        .flat_map(|s| s["memos"].as_array().unwrap().iter())
        .find(|m| m.as_str().unwrap().chars().count() > 32);
    assert!(long.is_some(), "a label longer than NAME is whole in MEMO");
    let ofxdump = stet_testkit::system_tool("ofxdump", "ofx");
    let (rc, out, err) = tool(&ofxdump, &[ofx.to_str().unwrap()]);
    assert_eq!(rc, 0, "{err}");
    assert!(
        !err.contains("WARNING") && !err.contains("ERROR"),
        "ofxdump warns or errs:\n{err}"
    );
    assert_eq!(
        out.matches("Financial institution's ID for this transaction")
            .count(),
        booked,
        "libofx reads every transaction"
    );
    let parsed = python(
        r#"
import json, sys, ofxparse
with open(sys.argv[1], "rb") as f:
    o = ofxparse.OfxParser.parse(f)
print(json.dumps([len(a.statement.transactions) for a in o.accounts]))
"#,
        &[ofx.to_str().unwrap()],
    );
    assert_eq!(
        parsed
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_u64().unwrap() as usize)
            .sum::<usize>(),
        booked,
        "ofxparse"
    );
    // ledger-autosync: one account's statement twice; the second run adds nothing.
    let (iban, t) = bank.iter().next().unwrap();
    let one = export_file(
        &env,
        &store,
        &dir,
        "one.ofx",
        &["--format", "ofx", "--all-profiles", "--account", iban],
    );
    let books = dir.join("autosync.ledger");
    std::fs::write(&books, "").unwrap();
    let autosync = stet_testkit::venv_tool("ledger-autosync");
    let (rc, first, err) = tool(
        &autosync,
        &["-l", books.to_str().unwrap(), one.to_str().unwrap()],
    );
    assert_eq!(rc, 0, "{err}");
    assert_eq!(
        first.matches("; ofxid: ").count(),
        t.booked,
        "{first}\n{err}"
    );
    std::fs::write(&books, &first).unwrap();
    let (rc, second, err) = tool(
        &autosync,
        &["-l", books.to_str().unwrap(), one.to_str().unwrap()],
    );
    assert_eq!(rc, 0, "{err}");
    assert_eq!(
        second.trim(),
        "",
        "ledger-autosync adds nothing the second time"
    );

    // OFX 2.2 (UTF-8 XML): ofxtools with warnings as errors; ofxdump without errors.
    let ofx2 = export_file(
        &env,
        &store,
        &dir,
        "books2.ofx",
        &["--format", "ofx", "--ofx-version", "220", "--all-profiles"],
    );
    let n = python(
        r#"
import json, sys
from ofxtools.Parser import OFXTree
t = OFXTree(); t.parse(sys.argv[1])
print(json.dumps(sum(len(s.transactions) for s in t.convert().statements)))
"#,
        &[ofx2.to_str().unwrap()],
    );
    assert_eq!(n.as_u64().unwrap() as usize, booked);
    let (rc, _, err) = tool(&ofxdump, &[ofx2.to_str().unwrap()]);
    assert!(rc == 0 && !err.contains("ERROR"), "{err}");

    // QIF: quiffen, day first; every id in N.
    let qif = export_file(
        &env,
        &store,
        &dir,
        "books.qif",
        &["--format", "qif", "--all-profiles"],
    );
    let q = python(
        r#"
import json, sys
from quiffen import Qif
q = Qif.parse(sys.argv[1], day_first=True)
print(json.dumps([[str(t.date.date()), str(t.amount), t.check_number] for a in q.accounts.values() for t in a.transactions.get("Bank", [])]))
"#,
        &[qif.to_str().unwrap()],
    );
    let q = q.as_array().unwrap();
    assert_eq!(q.len(), booked);
    // Four-digit years: quiffen would read `05/01/26` the same, the issue's importers not.
    let qif_text = std::fs::read_to_string(&qif).unwrap();
    let dates: Vec<&str> = qif_text
        .lines()
        .filter_map(|l| l.strip_prefix('D'))
        .collect();
    assert_eq!(dates.len(), booked);
    assert!(
        dates.iter().all(|d| d.len() == 10
            && d.chars().enumerate().all(|(i, c)| if i == 2 || i == 5 {
                c == '/'
            } else {
                c.is_ascii_digit()
            })),
        "DD/MM/YYYY: {dates:?}"
    );
    for t in q {
        let row = &rows[t[2].as_str().unwrap()];
        assert_eq!(
            t[0], row["booking_date"],
            "the date read day first is the booking date"
        );
        assert_eq!(
            dec(t[1].as_str().unwrap()),
            dec(row["amount"].as_str().unwrap())
        );
    }

    // camt.053 .02 (default) and .08: valid against the ISO 20022 XSDs; entries and closing
    // balances are the bank's.
    let xsd = stet_testkit::camt_xsd_dir();
    let xmllint = stet_testkit::system_tool("xmllint", "libxml2-utils");
    let all_ids: BTreeSet<String> = ndjson_rows(&env, &store, &["--include-pending"])
        .into_keys()
        .collect();
    assert_eq!(all_ids.len(), booked + pending);
    for version in ["02", "08"] {
        let mut args = vec!["--format", "camt053", "--all-profiles", "--include-pending"];
        // .02 is the default: asked for without the flag.
        if version != "02" {
            args.extend(["--camt-version", version]);
        }
        let camt = export_file(&env, &store, &dir, &format!("books.{version}.xml"), &args);
        let schema = xsd.join(format!("camt.053.001.{version}.xsd"));
        let (rc, _, err) = tool(
            &xmllint,
            &[
                "--noout",
                "--schema",
                schema.to_str().unwrap(),
                camt.to_str().unwrap(),
            ],
        );
        assert_eq!(rc, 0, "camt.053.001.{version}: {err}");
        let text = std::fs::read_to_string(&camt).unwrap();
        assert!(
            text.contains(&format!(
                "urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version}"
            )),
            "camt.053.001.{version}"
        );
        assert_eq!(text.matches("<Ntry>").count(), booked + pending);
        // Every row's stable id, as the entry's reference and the bank's reference (what
        // importers deduplicate on).
        let between = |open: &str, close: &str| -> BTreeSet<String> {
            text.split(open)
                .skip(1)
                .map(|rest| rest.split(close).next().unwrap().to_owned())
                .collect()
        };
        assert_eq!(between("<NtryRef>", "</NtryRef>"), all_ids);
        assert_eq!(between("<AcctSvcrRef>", "</AcctSvcrRef>"), all_ids);
        assert_eq!(
            text.matches("PDNG").count(),
            pending,
            "pending entries marked PDNG"
        );
        for t in bank.values() {
            assert!(
                text.contains(&format!(
                    "<Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy=\"{}\">{}</Amt>",
                    t.currency,
                    dec(&t.clbd).abs()
                )),
                "the bank's closing balance {} {}",
                t.clbd,
                t.currency
            );
        }
    }

    // Pending: marked `!` in beancount, which still checks.
    let with_pending = export_file(
        &env,
        &store,
        &dir,
        "pending.beancount",
        &[
            "--format",
            "beancount",
            "--all-profiles",
            "--include-pending",
        ],
    );
    let (rc, out, err) = tool(&bean_check, &[with_pending.to_str().unwrap()]);
    assert_eq!(
        (rc, out.as_str(), err.as_str()),
        (0, "", ""),
        "bean-check with pending"
    );
    let text = std::fs::read_to_string(&with_pending).unwrap();
    assert_eq!(
        text.lines()
            .filter(|l| l.len() > 11 && l[10..].starts_with(" ! "))
            .count(),
        pending
    );

    // CSV and JSON: the same rows as NDJSON.
    let csv = export_file(
        &env,
        &store,
        &dir,
        "books.csv",
        &["--format", "csv", "--all-profiles"],
    );
    let c = python(
        r#"
import csv, json, sys
with open(sys.argv[1], newline="", encoding="utf-8") as f:
    print(json.dumps([[r["stable_id"], r["amount"], r["label"]] for r in csv.DictReader(f)]))
"#,
        &[csv.to_str().unwrap()],
    );
    let c = c.as_array().unwrap();
    assert_eq!(c.len(), booked);
    for r in c {
        let row = &rows[r[0].as_str().unwrap()];
        assert_eq!((&r[1], &r[2]), (&row["amount"], &row["label"]));
    }
    let json = export(&env, &store, &["--format", "json", "--all-profiles"]).json_array();
    let ids: BTreeSet<&str> = json
        .iter()
        .map(|r| r["stable_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, rows.keys().map(String::as_str).collect());

    // Offline: with the bank stopped and no token left, the same books.
    let mut env = env;
    env.sandbox.stop();
    let tokens = env.home.path().join("data/stet/tokens");
    assert!(tokens.exists(), "the tokens were where stet keeps them");
    std::fs::remove_dir_all(&tokens).unwrap();
    let offline = export(&env, &store, &["--format", "beancount", "--all-profiles"]);
    assert_eq!(
        offline.ok(),
        std::fs::read_to_string(&bean).unwrap(),
        "the export needs neither the bank nor a token"
    );
}

fn since_last_and_stable_ids(store_for: impl Fn(&Env) -> String) {
    let env = bank(3, 30);
    let store = store_for(&env);
    let dir = env.home.path().join("exports");
    std::fs::create_dir_all(&dir).unwrap();
    sync(&env, &store);
    let before = ndjson_rows(&env, &store, &[]);
    let with_pending = ndjson_rows(&env, &store, &["--include-pending"]);

    // Everything once under `books`, and the pending ones under `live`.
    let first = export_file(
        &env,
        &store,
        &dir,
        "1.beancount",
        &[
            "--format",
            "beancount",
            "--all-profiles",
            "--since-last",
            "books",
        ],
    );
    let live = export(
        &env,
        &store,
        &[
            "--format",
            "ndjson",
            "--all-profiles",
            "--include-pending",
            "--since-last",
            "live",
        ],
    );
    assert_eq!(live.ndjson().len(), with_pending.len());
    // Nothing new: nothing written, nothing recorded twice.
    let again = export(
        &env,
        &store,
        &[
            "--format",
            "ndjson",
            "--all-profiles",
            "--since-last",
            "books",
        ],
    );
    assert_eq!(again.ok(), "", "{again}");
    assert!(
        again
            .stderr
            .contains(&format!("{} already exported", before.len())),
        "{again}"
    );

    // The bank moves on; a sync; new transactions, pending ones booked under new labels.
    let advanced = advance(&env);
    sync(&env, &store);
    let after = ndjson_rows(&env, &store, &[]);
    for (id, row) in &before {
        assert_eq!(
            after.get(id).map(|r| &r["amount"]),
            Some(&row["amount"]),
            "{id} kept its id"
        );
    }
    let new: BTreeSet<&String> = after.keys().filter(|k| !before.contains_key(*k)).collect();
    assert!(!new.is_empty());
    let second = export_file(
        &env,
        &store,
        &dir,
        "2.beancount",
        &[
            "--format",
            "beancount",
            "--all-profiles",
            "--since-last",
            "books",
        ],
    );
    let text = std::fs::read_to_string(&second).unwrap();
    let written: BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("stet-id: \""))
        .map(|l| l.trim_end_matches('"'))
        .collect();
    assert_eq!(
        written,
        new.iter().map(|s| s.as_str()).collect(),
        "exactly the new ones"
    );
    assert!(!text.contains(" open "), "appended: nothing opened twice");
    // Appended to the first, the books still check, balances included.
    let books = dir.join("books.beancount");
    let mut all = std::fs::read_to_string(&first).unwrap();
    all.push_str(&text);
    std::fs::write(&books, all).unwrap();
    let (rc, out, err) = tool(
        &stet_testkit::venv_tool("bean-check"),
        &[books.to_str().unwrap()],
    );
    assert_eq!(
        (rc, out.as_str(), err.as_str()),
        (0, "", ""),
        "the appended books check"
    );

    // `live` exported pending rows the bank has since booked (new label and date): each is
    // reported with both versions, and not written again.
    let live = export(
        &env,
        &store,
        &[
            "--format",
            "ndjson",
            "--all-profiles",
            "--include-pending",
            "--since-last",
            "live",
        ],
    );
    let warnings: Vec<&str> = live
        .stderr
        .lines()
        .filter(|l| l.starts_with("warning:") && l.contains("changed at the bank"))
        .collect();
    assert_eq!(
        warnings.len() as u64,
        advanced["booked"].as_u64().unwrap(),
        "{live}"
    );
    assert!(
        warnings
            .iter()
            .all(|w| w.contains("(PDNG)") && w.contains("(BOOK)")),
        "{live}"
    );
    for row in live.ndjson() {
        let id = row["stable_id"].as_str().unwrap();
        assert!(
            !with_pending.contains_key(id),
            "{id} was exported under `live` before"
        );
    }
}

#[test]
fn re_exports_keep_every_id_and_since_last_gives_exactly_the_new_in_sqlite() {
    since_last_and_stable_ids(|env| format!("sqlite:{}", env.home.path().join("s.db").display()));
}

#[test]
fn re_exports_keep_every_id_and_since_last_gives_exactly_the_new_in_postgres() {
    since_last_and_stable_ids(|_| stet_testkit::fresh_postgres_database("export"));
}

#[test]
fn bad_input_says_what_to_do_and_leaves_the_file_alone() {
    let env = Env::new();
    let home = env.home.path();
    let store = format!("sqlite:{}", home.join("none.db").display());
    export(&env, &store, &["--format", "beancount"]).fails(66, "run `stet sync` first");

    let store = format!("sqlite:{}", home.join("s.db").display());
    env.login(EXTENDED);
    sync(&env, &store);
    export(&env, &store, &["--format", "ofx", "--include-pending"]).fails(2, "pending");
    export(&env, &store, &["--format", "qif", "--include-pending"]).fails(2, "pending");
    export(
        &env,
        &store,
        &[
            "--format",
            "csv",
            "--from",
            "2026-02-01",
            "--to",
            "2026-01-01",
        ],
    )
    .fails(2, "--to is exclusive");
    export(
        &env,
        &store,
        &["--format", "csv", "--since-last", "my books!"],
    )
    .fails(2, "--since-last");
    export(
        &env,
        &store,
        &[
            "--format",
            "csv",
            "--account",
            "FR7630006000011234567890189",
        ],
    )
    .fails(66, "holds nothing");
    let out = env.run(&[
        "export",
        "--store",
        &store,
        "--format",
        "camt053",
        "--camt-version",
        "99",
    ]);
    assert_eq!(out.code, 2, "{out}");

    // A bad account name in [export]: exit 78, the file and the rule named.
    let config = std::fs::read_to_string(&env.config).unwrap();
    write_private(
        &env.config,
        &format!("{config}\n[export.accounts]\nFR7630004010006746778722047 = \"my bank\"\n"),
    );
    export(&env, &store, &["--format", "ledger"]).fails(78, "[export]");
    write_private(
        &env.config,
        &format!("{config}\n[export]\nexpenses = \"Expenses:Divers\"\n"),
    );
    let journal = export(&env, &store, &["--format", "ledger"]);
    assert!(
        journal.ok().contains("account Expenses:Divers"),
        "{journal}"
    );

    // --file: a folder that is not there, and a read-only one: exit 74, the old file intact.
    let missing = home.join("no/such/dir/books.beancount");
    export(
        &env,
        &store,
        &["--format", "beancount", "--file", missing.to_str().unwrap()],
    )
    .fails(74, "no/such/dir");
    assert!(!missing.exists());
    let ro = home.join("ro");
    std::fs::create_dir(&ro).unwrap();
    let kept = ro.join("books.beancount");
    std::fs::write(&kept, "; my books\n").unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o500)).unwrap();
    let out = export(
        &env,
        &store,
        &["--format", "beancount", "--file", kept.to_str().unwrap()],
    );
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o700)).unwrap();
    // Root ignores folder permissions: then the export succeeds, and replaces the file whole.
    if out.code == 0 {
        assert!(std::fs::read_to_string(&kept).unwrap().contains("stet-id"));
    } else {
        out.fails(74, "cannot write");
        assert_eq!(std::fs::read_to_string(&kept).unwrap(), "; my books\n");
    }
    // A new export file is the owner's only: it holds bank data.
    let mine = home.join("mine.csv");
    export(
        &env,
        &store,
        &["--format", "csv", "--file", mine.to_str().unwrap()],
    )
    .ok();
    assert_eq!(
        std::fs::metadata(&mine).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // A row the store cannot read, met after others were written: the export fails, and the
    // file it was to replace is left as it was, with no partial file beside it.
    std::fs::write(&kept, "; my books\n").unwrap();
    let path = store.strip_prefix("sqlite:").unwrap();
    let damaged = std::process::Command::new(stet_testkit::system_tool("sqlite3", "sqlite3"))
        .arg(path)
        .arg(
            "UPDATE transactions SET amount = 'not a number' WHERE rowid = \
             (SELECT rowid FROM transactions ORDER BY booking_date DESC LIMIT 1)",
        )
        .status()
        .unwrap();
    assert!(damaged.success());
    let out = export(
        &env,
        &store,
        &["--format", "beancount", "--file", kept.to_str().unwrap()],
    );
    assert_ne!(out.code, 0, "{out}");
    assert!(out.stderr.contains("not a number"), "{out}");
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "; my books\n");
    let beside: Vec<_> = std::fs::read_dir(&ro)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(beside, [std::ffi::OsString::from("books.beancount")]);
}
