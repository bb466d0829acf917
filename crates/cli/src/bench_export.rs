//! `stet bench export`: a store filled with many transactions (written through the store's
//! own API, not a sync), exported to each format by the `stet` binary, beside the floor:
//! `sqlite3` dumping the `stet_transactions` view as CSV from the same file, in the same run.
//! Wall time and peak resident memory of each, for BENCHMARKS.md.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Instant;

use clap::Args;
use rust_decimal::Decimal;
use stet_store::{
    AccountBatch, CreditDebit, IdPolicy, Location, ObservedAccount, ObservedBalance,
    ObservedTransaction, OpenOptions, RunOutcome, Status, Store,
};

use crate::Globals;
use crate::exit::{self, Failure, OrExit as _};

#[derive(Debug, Args)]
pub struct ExportBenchArgs {
    /// Transactions in the store
    #[arg(long, default_value_t = 1_000_000)]
    transactions: usize,
    /// Accounts they are spread over
    #[arg(long, default_value_t = 10)]
    accounts: usize,
    /// A format to export (repeat for several)
    #[arg(long = "format", value_name = "FORMAT", default_values = ["beancount", "ofx"])]
    formats: Vec<String>,
    #[command(flatten)]
    figures: crate::bench::FiguresArgs,
}

const LABELS: [&str; 6] = [
    "CB BOULANGERIE DU MARCHÉ",
    "PRLV SEPA ÉLECTRICITÉ DE FRANCE – ÉCHÉANCE",
    "VIR SEPA SALAIRE ACME SAS",
    "CB CARREFOUR MARKET",
    "RETRAIT DAB PARIS",
    "CB PIEROGARNIA ŁÓDŹ & CO",
];

/// One account's rows: unique labels (so no two rows look alike), a year of dates.
fn batch(account: usize, rows: usize) -> AccountBatch {
    let iban = format!("FR76300040000{:03}{:011}", account % 1000, account);
    let start = time::macros::date!(2025 - 01 - 01);
    let mut sum = Decimal::ZERO;
    let transactions: Vec<ObservedTransaction> = (0..rows)
        .map(|n| {
            let day = start + time::Duration::days((n * 365 / rows.max(1)) as i64);
            let cents = ((n * 7919 + account * 104_729) % 25_000 + 150) as i64;
            let credit = n % 5 == 0;
            let amount = Decimal::new(cents, 2);
            sum += if credit { amount } else { -amount };
            let label = format!("{} {n}", LABELS[n % LABELS.len()]);
            let reference = format!("B{account:03}-{n:08}");
            let raw_json = format!(
                r#"{{"entryReference":"{reference}","transactionAmount":{{"amount":"{amount}","currency":"EUR"}},"creditDebitIndicator":"{}","status":"BOOK","bookingDate":"{day}","remittanceInformation":{{"unstructured":["{label}"]}}}}"#,
                if credit { "CRDT" } else { "DBIT" }
            );
            ObservedTransaction {
                status: Status::Booked,
                booking_date: Some(day),
                value_date: Some(day),
                transaction_date: Some(day),
                amount,
                currency: "EUR".into(),
                credit_debit: if credit {
                    CreditDebit::Credit
                } else {
                    CreditDebit::Debit
                },
                label: Some(label),
                counterparty: None,
                entry_reference: Some(reference),
                raw_json,
            }
        })
        .collect();
    let end = start + time::Duration::days(365);
    AccountBatch {
        profile: "bench".into(),
        bank: "bench".into(),
        account: ObservedAccount {
            iban: Some(iban),
            resource_id: format!("BENCH{account:04}"),
            name: Some(format!("Compte {account}")),
            currency: Some("EUR".into()),
        },
        balances: vec![ObservedBalance {
            balance_type: "CLBD".into(),
            amount: Decimal::new(1_000_000, 2) + sum,
            currency: "EUR".into(),
            reference_date: Some(end),
            name: None,
            raw_json: "{}".into(),
        }],
        transactions,
        date_from: None,
        policy: IdPolicy::default(),
        calls: 0,
        connection_id: None,
    }
}

pub fn run(args: ExportBenchArgs, globals: &Globals) -> Result<u8, Failure> {
    let sqlite3 = which("sqlite3").ok_or_else(|| {
        Failure::new(
            exit::CONFIG,
            "sqlite3 is not on PATH: the floor is `sqlite3` dumping the view; install it (Debian: apt-get install sqlite3)",
        )
    })?;
    let work = tempfile::Builder::new()
        .prefix("stet-bench-export-")
        .tempdir()
        .or_exit(exit::IO, "cannot make a temporary folder")?;
    let db = work.path().join("bench.db");
    let url = format!("sqlite:{}", db.display());
    let accounts = args.accounts.max(1);
    let per = args.transactions / accounts;

    let started = Instant::now();
    crate::store::runtime()?.block_on(async {
        let store = Store::open(
            &Location::parse(&url).map_err(crate::store::failure)?,
            &OpenOptions::default(),
        )
        .await
        .map_err(crate::store::failure)?;
        let run = store
            .begin_run("bench", "bench")
            .await
            .map_err(crate::store::failure)?;
        for a in 0..accounts {
            store
                .apply(&run, &batch(a, per))
                .await
                .map_err(crate::store::failure)?;
        }
        store
            .finish_run(
                &run,
                &RunOutcome {
                    outcome: "ok",
                    calls: 0,
                    error: None,
                },
            )
            .await
            .map_err(crate::store::failure)?;
        store.close().await;
        Ok::<(), Failure>(())
    })?;
    if !globals.quiet {
        eprintln!(
            "filled {} with {} transactions in {accounts} accounts in {:.1} s",
            db.display(),
            per * accounts,
            started.elapsed().as_secs_f64()
        );
    }

    // The fill leaves the file's pages dirty: written back while the first reader runs, they
    // would slow whichever is measured first. Flushed, then read once unmeasured, every
    // reader below finds the same warm file.
    std::fs::File::open(&db)
        .and_then(|f| f.sync_all())
        .or_exit(exit::IO, "cannot flush the bench store")?;
    let floor = || -> Result<Command, Failure> {
        let mut floor = Command::new(&sqlite3);
        floor
            .args(["-csv", "-header"])
            .arg(&db)
            .arg("SELECT * FROM stet_transactions")
            .stdout(output_file(&work.path().join("floor.csv"))?)
            .stderr(Stdio::piped());
        Ok(floor)
    };
    crate::bench::measure(floor()?, "sqlite3")?;
    let mut figures = Vec::new();
    let (floor_s, floor_kib) = crate::bench::measure(floor()?, "sqlite3")?;
    figures.push(("sqlite3 -csv (the view)".to_owned(), floor_s, floor_kib));
    let exe = std::env::current_exe().or_exit(1, "cannot find the stet binary")?;
    for format in &args.formats {
        let out = work.path().join(format!("export.{format}"));
        let mut command = Command::new(&exe);
        command
            .args([
                "export",
                "-q",
                "--all-profiles",
                "--store",
                &url,
                "--format",
            ])
            .arg(format)
            // To stdout, redirected to a file as the floor's is: both write the same way
            // (`--file` adds an fsync and a rename, which the floor does not do).
            .stdout(output_file(&out)?)
            .stderr(Stdio::piped());
        let (s, kib) = crate::bench::measure(command, &format!("stet export --format {format}"))?;
        figures.push((format!("stet export --format {format}"), s, kib));
    }
    if args.figures.json() {
        let rows: Vec<_> = figures
            .iter()
            .map(|(what, s, kib)| {
                serde_json::json!({"what": what, "wall_s": (s * 1000.0).round() / 1000.0,
                    "peak_rss_mib": (*kib as f64 / 102.4).round() / 10.0, "over_floor": (s / floor_s * 100.0).round() / 100.0})
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"transactions": per * accounts, "accounts": accounts, "runs": rows})
        );
    } else {
        println!(
            "{} transactions in {accounts} accounts (SQLite)",
            per * accounts
        );
        for (what, s, kib) in &figures {
            println!(
                "{what:<34} {s:>8.2} s  {:>5.2}× the floor  peak {:>7.1} MiB",
                s / floor_s,
                *kib as f64 / 1024.0
            );
        }
    }
    Ok(0)
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| PathBuf::from(d).join(name))
        .find(|p| p.is_file())
}

/// A new file for a measured command's stdout: both sides of the comparison write their
/// output to the same disk, neither to `/dev/null`.
fn output_file(path: &std::path::Path) -> Result<Stdio, Failure> {
    let file =
        std::fs::File::create(path).or_exit(1, format!("cannot create {}", path.display()))?;
    Ok(Stdio::from(file))
}
