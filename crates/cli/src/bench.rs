//! `stet bench`: the figures behind BENCHMARKS.md, measured on the machine at hand.
//!
//! - `sign`: signatures per second per core for the default backend on a typical STET request
//!   (the Digest of a 1 KiB body, six signed headers), beside the bare RSA rate.
//! - `sync`: a sandbox bank in a separate process, and `stet transactions --all --output
//!   ndjson` pulling everything from it, as a user would run it: wall time, transactions and
//!   pages per second, the command's peak resident memory and CPU time, and the signing-bound
//!   floor (pages × measured signing time ÷ cores the client used, measured: its CPU time over
//!   the wall time).

use std::io::{BufRead as _, BufReader, Read as _};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use clap::{Args, Subcommand};
use stet_httpsig::{Backend, PrivateKey, Request, Signer, SigningProfile, sign_request};
use stet_sandbox::SandboxInfo;
use stet_transport::FileTokenStore;

use crate::Globals;
use crate::exit::{self, Failure, OrExit as _};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Signatures per second per core on a typical STET request, beside the bare RSA rate
    #[command(after_help = "Example:\n  stet bench sign --seconds 5")]
    Sign(SignArgs),
    /// Pull every transaction of every account from a sandbox bank in another process
    #[command(
        after_help = "Example:\n  stet bench sync --accounts 100 --transactions 5000 --page-size 100 --concurrency 4"
    )]
    Sync(SyncArgs),
    /// Export many stored transactions, beside sqlite3 dumping the same view as CSV
    #[command(
        after_help = "Example:\n  stet bench export --transactions 1000000 --format beancount --format ofx"
    )]
    Export(crate::bench_export::ExportBenchArgs),
    /// Jobs a second of 1, 2 and 4 `stet worker` processes syncing a sandbox bank's PSUs, and
    /// the queue's own cost per job beside a bare SKIP LOCKED loop run by pgbench
    #[command(
        after_help = "Example:\n  stet bench fleet --server 'postgres://postgres@localhost/postgres?host=/run/postgresql' --psus 200 --workers 1 --workers 2 --workers 4"
    )]
    Fleet(crate::bench_fleet::FleetBenchArgs),
}

#[derive(Debug, Args)]
pub struct SignArgs {
    /// How long to measure each rate, in seconds
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    #[command(flatten)]
    figures: crate::bench::FiguresArgs,
    /// What signs: `software` (each built-in backend, with a throwaway key) or `pkcs11` (the
    /// HSM key given with --key)
    #[arg(long, default_value = "software", value_parser = ["software", "pkcs11"])]
    backend: String,
    /// With --backend pkcs11: the key, as a `pkcs11:` URI (an RSA key)
    #[arg(long, value_name = "URI", required_if_eq("backend", "pkcs11"))]
    key: Option<String>,
    /// With --backend pkcs11: the module, when the URI has no module-path
    #[arg(long, env = "STET_PKCS11_MODULE", value_name = "MODULE.so")]
    pkcs11_module: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Accounts in the sandbox bank
    #[arg(long, default_value_t = 10)]
    accounts: usize,
    /// Transactions per account
    #[arg(long, default_value_t = 1000)]
    transactions: usize,
    /// Transactions per page
    #[arg(long, default_value_t = 100)]
    page_size: usize,
    /// Accounts fetched at once
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    #[command(flatten)]
    figures: crate::bench::FiguresArgs,
    /// Also run `stet sync` into this store, twice (first sync, then unchanged), after the
    /// NDJSON sync of the same bank: `sqlite` for a new file in a temporary folder, or a URL
    /// of an empty store. Repeat to compare stores in one run
    #[arg(long = "store", value_name = "URL")]
    stores: Vec<String>,
}

/// How a bench prints its figures: text for people, or JSON for scripts (`-o json`, or
/// `--json` as before): one compact object per line, one line per set of figures (`bench
/// sync --store` adds a line per store), so a script can append runs to a file of figures.
#[derive(Debug, Clone, Args)]
pub struct FiguresArgs {
    /// table (text for people, also `text`) or json (one object per line of figures)
    #[arg(long, short = 'o', value_enum, value_name = "FORMAT")]
    output: Option<FiguresFormat>,
    /// The same as `--output json`
    #[arg(long, conflicts_with = "output")]
    json: bool,
}

/// The formats a bench prints its figures in (CSV and NDJSON say nothing more here: the
/// figures are nested, and JSON is already one object per line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FiguresFormat {
    /// The figures as sentences and aligned columns
    #[value(alias = "text")]
    Table,
    /// One JSON object per line
    Json,
}

impl FiguresArgs {
    /// Whether the figures are printed as JSON.
    pub fn json(&self) -> bool {
        self.json || self.output == Some(FiguresFormat::Json)
    }
}

pub fn run(command: BenchCommand, globals: &Globals) -> Result<u8, Failure> {
    match command {
        BenchCommand::Sign(args) => sign(args),
        BenchCommand::Sync(args) => sync(args, globals),
        BenchCommand::Export(args) => crate::bench_export::run(args, globals),
        BenchCommand::Fleet(args) => crate::bench_fleet::run(args, globals),
    }
}

/// A throwaway RSA-2048 QSealC key, made by the sandbox's PKI generator.
fn bench_key(dir: &std::path::Path) -> Result<PrivateKey, Failure> {
    stet_sandbox::pki::generate(dir).map_err(|e| Failure::new(exit::IO, e))?;
    let pem = std::fs::read(dir.join("tpp-qseal.key"))
        .or_exit(exit::IO, "cannot read the generated key")?;
    PrivateKey::from_bytes(&pem, None).map_err(|e| Failure::new(exit::CONFIG, e))
}

/// A STET POST with a 1 KiB body and six signed headers.
fn typical_request() -> (Request, SigningProfile) {
    let mut body = br#"{"paymentInformationId":"MyPmtInfId","creditTransferTransaction":[{"remittanceInformation":[""#.to_vec();
    body.resize(1024 - 5, b'x');
    body.extend_from_slice(br#""]}]}"#);
    let request = Request::new("POST", "/stet/psd2/v1.5/payment-requests")
        .with_header("Host", "api.bank.example")
        .with_header("Date", httpdate::fmt_http_date(SystemTime::now()))
        .with_header("X-Request-ID", "3b4c5d6e-7f80-4a1b-9c2d-3e4f5a6b7c8d")
        .with_header("Content-Type", "application/json")
        .with_header("PSU-IP-Address", "192.0.2.10")
        .with_body(body);
    let profile = SigningProfile::new("qseal").with_headers(&[
        "(request-target)",
        "host",
        "date",
        "x-request-id",
        "content-type",
        "digest",
    ]);
    (request, profile)
}

/// Operations per second of `op`, run for about `seconds`.
fn rate(seconds: f64, mut op: impl FnMut() -> Result<(), Failure>) -> Result<f64, Failure> {
    for _ in 0..20 {
        op()?; // warm-up
    }
    let budget = Duration::from_secs_f64(seconds.max(0.1));
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < budget {
        op()?;
        n += 1;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// Seconds per signature of a typical STET request on the default backend.
fn signing_time(signer: &dyn Signer, seconds: f64) -> Result<f64, Failure> {
    let (unsigned, profile) = typical_request();
    let per_second = rate(seconds, || {
        let mut request = unsigned.clone();
        sign_request(&mut request, &profile, signer, SystemTime::now())
            .map(drop)
            .map_err(|e| Failure::new(1, e))
    })?;
    Ok(1.0 / per_second)
}

fn sign(args: SignArgs) -> Result<u8, Failure> {
    if args.backend == "pkcs11" {
        return sign_pkcs11(&args);
    }
    let dir = tempfile::tempdir().or_exit(exit::IO, "cannot create a temporary folder")?;
    let key = bench_key(dir.path())?;
    let mut rows = Vec::new();
    for backend in Backend::all() {
        let signer = key
            .signer(*backend)
            .map_err(|e| Failure::new(exit::CONFIG, e))?;
        let stet = 1.0 / signing_time(signer.as_ref(), args.seconds)?;
        let message = [0x5au8; 300];
        let raw = rate(args.seconds, || {
            signer
                .sign(&message)
                .map(drop)
                .map_err(|e| Failure::new(1, e))
        })?;
        rows.push((backend.name(), stet, raw));
    }
    if args.figures.json() {
        let list: Vec<serde_json::Value> = rows
            .iter()
            .map(|(b, stet, raw)| serde_json::json!({"backend": b, "stet_request_per_s": stet.round(), "raw_rsa2048_per_s": raw.round()}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"key_bits": key.bits(), "results": list})
        );
    } else {
        println!("RSA-{} signatures per second, one core:", key.bits());
        for (backend, stet, raw) in rows {
            println!("  {backend:<11} STET request {stet:>8.0}/s   bare RSA {raw:>8.0}/s");
        }
    }
    Ok(0)
}

/// The HSM's rate: a STET request and a bare signature on one thread, then bare signatures
/// from as many threads as the key's session pool holds (an HSM signs in parallel).
fn sign_pkcs11(args: &SignArgs) -> Result<u8, Failure> {
    let uri = args.key.as_deref().unwrap_or_default();
    let signer = crate::sig::hsm_signer(uri, args.pkcs11_module.as_deref())?;
    let stet = 1.0 / signing_time(&signer, args.seconds)?;
    let message = [0x5au8; 300];
    let raw = rate(args.seconds, || {
        signer
            .sign(&message)
            .map(drop)
            .map_err(|e| Failure::new(1, e))
    })?;
    // Parallel: one key (and so one session pool) shared by the threads, as the transport
    // shares it.
    let key = stet_pkcs11::Pkcs11Key::open_uri(
        uri,
        args.pkcs11_module.as_deref(),
        stet_pkcs11::DEFAULT_SESSIONS,
    )
    .map_err(|e| Failure::new(exit::CONFIG, e))?;
    let shared =
        Arc::new(stet_pkcs11::Pkcs11Signer::new(key).map_err(|e| Failure::new(exit::CONFIG, e))?);
    let threads = stet_pkcs11::DEFAULT_SESSIONS;
    let deadline = Instant::now() + Duration::from_secs_f64(args.seconds.max(0.1));
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            let signer = shared.clone();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while Instant::now() < deadline {
                    if signer.sign(&message).is_err() {
                        return None;
                    }
                    n += 1;
                }
                Some(n)
            })
        })
        .collect();
    let mut total = 0u64;
    for worker in workers {
        total += worker
            .join()
            .ok()
            .flatten()
            .ok_or_else(|| Failure::new(1, "the HSM failed to sign during the run"))?;
    }
    let parallel = total as f64 / started.elapsed().as_secs_f64();
    let bits = signer.key_bits();
    if args.figures.json() {
        println!(
            "{}",
            serde_json::json!({
                "key_bits": bits,
                "backend": "pkcs11",
                "module": signer.key().module().display().to_string(),
                "stet_request_per_s": stet.round(),
                "raw_per_s": raw.round(),
                "threads": threads,
                "raw_parallel_per_s": parallel.round(),
            })
        );
    } else {
        println!(
            "RSA-{bits} signatures per second through {}:",
            signer.key().module().display()
        );
        println!("  pkcs11      STET request {stet:>8.0}/s   bare RSA {raw:>8.0}/s   (one thread)");
        println!(
            "  pkcs11      bare RSA {parallel:>8.0}/s from {threads} threads (one session each)"
        );
    }
    Ok(0)
}

fn sync(args: SyncArgs, globals: &Globals) -> Result<u8, Failure> {
    let work = tempfile::tempdir().or_exit(exit::IO, "cannot create a temporary folder")?;
    let exe = std::env::current_exe().or_exit(1, "cannot find the stet executable")?;

    // The bank, in its own process.
    let mut bank = Command::new(&exe)
        .args(["sandbox", "serve", "--port", "0"])
        .args(["--accounts", &args.accounts.to_string()])
        .args(["--transactions", &args.transactions.to_string()])
        .args(["--page-size", &args.page_size.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .or_exit(1, "cannot start the sandbox")?;
    // Killed when this function returns, however it returns.
    let sandbox = KillOnDrop(&mut bank);
    let sandbox_pid = sandbox.0.id();
    let mut line = String::new();
    let stdout = sandbox
        .0
        .stdout
        .take()
        .ok_or_else(|| Failure::new(1, "no sandbox output"))?;
    BufReader::new(stdout)
        .read_line(&mut line)
        .or_exit(1, "cannot read the sandbox's JSON line")?;
    let info: SandboxInfo =
        serde_json::from_str(&line).or_exit(exit::DATA, "the sandbox's JSON line")?;

    // The consent, stored where the measured command will find it.
    let data_home = work.path().join("data");
    let profile = crate::demo::profile_for(&info, work.path())?;
    let bank_profile = crate::profile::bank(&profile)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .or_exit(1, "cannot start the async runtime")?;
    let sign_seconds = runtime.block_on(async {
        let transport = stet_client::transport_builder(&profile, &bank_profile)
            .token_store(Arc::new(FileTokenStore::new(
                data_home.join("stet").join("tokens"),
            )))
            .build()?;
        let oauth = transport
            .oauth()
            .ok_or_else(|| Failure::new(exit::CONFIG, "no token endpoint"))?;
        let scopes = [
            "aisp".to_owned(),
            bank_profile.scopes.extended_history.clone(),
        ];
        let token = crate::demo::approve(oauth, &info, &scopes, None).await?;
        transport
            .store_token(crate::auth::CONSENT_KEY, token)
            .await?;
        let key = PrivateKey::from_bytes(
            &std::fs::read(&info.qseal_key).or_exit(exit::IO, "QSealC key")?,
            None,
        )
        .map_err(|e| Failure::new(exit::CONFIG, e))?;
        let signer = key
            .signer(Backend::default())
            .map_err(|e| Failure::new(exit::CONFIG, e))?;
        signing_time(signer.as_ref(), 1.0)
    })?;

    // The measured command, exactly as a user runs it.
    let from = (time::OffsetDateTime::now_utc().date() - time::Duration::days(400)).to_string();
    let started = Instant::now();
    let mut child = Command::new(&exe)
        .args([
            "transactions",
            "--all",
            "--output",
            "ndjson",
            "--psu-ip",
            "127.0.0.1",
            "-q",
        ])
        .args([
            "--from",
            &from,
            "--concurrency",
            &args.concurrency.to_string(),
        ])
        .env("STET_CONFIG", work.path().join("config.toml"))
        .env("STET_PROFILE", "demo")
        .env("XDG_DATA_HOME", &data_home)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .or_exit(1, "cannot start `stet transactions`")?;
    let pid = child.id();
    let bank_cpu_before = proc_stat(sandbox_pid).map(|s| s.cpu_seconds);
    let mut out = child
        .stdout
        .take()
        .ok_or_else(|| Failure::new(1, "no output"))?;
    let counter = std::thread::spawn(move || {
        let mut buf = vec![0u8; 1 << 16];
        let mut lines = 0u64;
        while let Ok(n) = out.read(&mut buf) {
            if n == 0 {
                break;
            }
            lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
        }
        lines
    });
    let mut peak_kib = 0u64;
    let mut client_cpu = None;
    let status = loop {
        if let Some(kib) = vm_hwm_kib(pid) {
            peak_kib = peak_kib.max(kib);
        }
        // On Linux the child is reaped only once /proc shows it a zombie: its CPU time is
        // then final (every thread's, as the kernel sums them for the process).
        match proc_stat(pid) {
            Some(stat) => {
                client_cpu = Some(stat.cpu_seconds);
                if stat.zombie {
                    break child
                        .wait()
                        .or_exit(1, "cannot wait for `stet transactions`")?;
                }
            }
            None => {
                if let Some(status) = child
                    .try_wait()
                    .or_exit(1, "cannot wait for `stet transactions`")?
                {
                    break status;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let wall = started.elapsed().as_secs_f64();
    let bank_cpu = bank_cpu_before
        .zip(proc_stat(sandbox_pid))
        .map(|(before, after)| after.cpu_seconds - before);
    let transactions = counter.join().unwrap_or(0);
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        return Err(Failure::new(
            1,
            format!("`stet transactions --all` failed: {}", err.trim()),
        ));
    }
    let pages_per_account = args.transactions.div_ceil(args.page_size.max(1)).max(1);
    let pages = (args.accounts * pages_per_account) as f64 + 1.0; // + the accounts list
    let machine_cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    // The cores the client used: its CPU time over the wall time, at most the machine's.
    // Where /proc is missing, the most it could have used.
    let cores = match client_cpu {
        Some(cpu) => (cpu / wall).clamp(0.01, machine_cores),
        None => machine_cores.min(args.concurrency.max(1) as f64),
    };
    let floor = pages * sign_seconds / cores;
    // The same floor had the client kept every core busy: how far the wall time is from it.
    let all_cores_floor = pages * sign_seconds / machine_cores;
    let round3 = |x: f64| (x * 1000.0).round() / 1000.0;
    let figures = serde_json::json!({
        "accounts": args.accounts,
        "transactions_per_account": args.transactions,
        "page_size": args.page_size,
        "concurrency": args.concurrency,
        "transactions": transactions,
        "pages": pages,
        "wall_s": (wall * 1000.0).round() / 1000.0,
        "transactions_per_s": (transactions as f64 / wall).round(),
        "pages_per_s": (pages / wall).round(),
        "peak_rss_mib": (peak_kib as f64 / 1024.0 * 10.0).round() / 10.0,
        "signing_ms": (sign_seconds * 1e5).round() / 100.0,
        "client_cpu_s": client_cpu.map(round3),
        "client_cores": (cores * 100.0).round() / 100.0,
        "client_cores_measured": client_cpu.is_some(),
        "sandbox_cpu_s": bank_cpu.map(round3),
        "machine_cores": machine_cores,
        "signing_floor_s": round3(floor),
        "wall_over_floor": (wall / floor * 100.0).round() / 100.0,
        "all_cores_floor_s": round3(all_cores_floor),
        "wall_over_all_cores_floor": (wall / all_cores_floor * 100.0).round() / 100.0,
    });
    if args.figures.json() {
        println!("{figures}");
    } else {
        let used = match client_cpu {
            Some(cpu) => format!("{cpu:.2} s of CPU over {wall:.2} s: {cores:.2} core(s) used"),
            None => format!("{cores} core(s) at most (CPU time not measured here)"),
        };
        let bank = bank_cpu.map_or(String::new(), |cpu| {
            format!("; the sandbox bank used {cpu:.2} s of CPU on the same machine")
        });
        println!(
            "{transactions} transactions in {pages} pages: {wall:.2} s ({:.0} transactions/s, {:.0} pages/s)\n\
             `stet transactions --all --output ndjson`: peak resident memory {:.1} MiB; {used}{bank}\n\
             signing-bound floor: {pages} pages × {:.3} ms ÷ {cores:.2} core(s) = {floor:.2} s; wall time is {:.2}× the floor\n\
             (with all {machine_cores} cores busy the floor would be {all_cores_floor:.2} s: {:.2}×)",
            transactions as f64 / wall,
            pages / wall,
            peak_kib as f64 / 1024.0,
            sign_seconds * 1000.0,
            wall / floor,
            wall / all_cores_floor,
        );
    }
    for store in &args.stores {
        let url = match store.as_str() {
            "sqlite" => format!("sqlite:{}", work.path().join("bench.db").display()),
            other => other.to_owned(),
        };
        let mut shown = Vec::new();
        for pass in ["first", "unchanged"] {
            let mut command = Command::new(&exe);
            command
                .args(["sync", "--store", &url, "--psu-ip", "127.0.0.1", "-q"])
                .args(["--concurrency", &args.concurrency.to_string()]);
            // The first sync asks for the whole history; the second is a plain incremental
            // `stet sync`, which asks only from the newest booked date minus the overlap.
            if pass == "first" {
                command.args(["--from", &from]);
            }
            command
                .env("STET_CONFIG", work.path().join("config.toml"))
                .env("STET_PROFILE", "demo")
                .env("XDG_DATA_HOME", &data_home)
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let (seconds, peak) = measure(command, "stet sync")?;
            shown.push(serde_json::json!({
                "pass": pass,
                "wall_s": round3(seconds),
                "peak_rss_mib": (peak as f64 / 1024.0 * 10.0).round() / 10.0,
                "over_ndjson": (seconds / wall * 100.0).round() / 100.0,
            }));
            if !args.figures.json() {
                println!(
                    "`stet sync --store {}` ({pass}): {seconds:.2} s, {:.2}× the NDJSON sync; peak resident memory {:.1} MiB",
                    stet_store::redact(&url),
                    seconds / wall,
                    peak as f64 / 1024.0
                );
            }
        }
        if args.figures.json() {
            println!(
                "{}",
                serde_json::json!({"store": stet_store::redact(&url), "ndjson_wall_s": round3(wall), "syncs": shown})
            );
        }
    }
    if !globals.quiet && transactions != (args.accounts * args.transactions) as u64 {
        eprintln!(
            "warning: {} transactions expected, {transactions} received",
            args.accounts * args.transactions
        );
    }
    Ok(0)
}

/// Runs `command` to its end: its wall time and peak resident memory (KiB, polled).
pub(crate) fn measure(mut command: Command, what: &str) -> Result<(f64, u64), Failure> {
    let started = Instant::now();
    let mut child = command
        .spawn()
        .or_exit(1, format!("cannot start `{what}`"))?;
    let pid = child.id();
    let mut peak = 0u64;
    let status = loop {
        if let Some(kib) = vm_hwm_kib(pid) {
            peak = peak.max(kib);
        }
        if let Some(status) = child
            .try_wait()
            .or_exit(1, format!("cannot wait for `{what}`"))?
        {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let wall = started.elapsed().as_secs_f64();
    if !status.success() {
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        return Err(Failure::new(1, format!("`{what}` failed: {}", err.trim())));
    }
    Ok((wall, peak))
}

/// What /proc says of a process: its CPU time so far and whether it has exited.
pub(crate) struct ProcStat {
    /// User plus system time of all its threads, in seconds.
    pub(crate) cpu_seconds: f64,
    /// Exited, not yet reaped.
    pub(crate) zombie: bool,
}

/// `/proc/PID/stat` of process `pid` (None elsewhere than Linux, or once it has been reaped).
pub(crate) fn proc_stat(pid: u32) -> Option<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid …": comm may hold spaces and parentheses, so fields are counted
    // from the last ')'. utime and stime are fields 14 and 15, in clock ticks.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    let ticks = |i: usize| fields.get(i)?.parse::<u64>().ok();
    // USER_HZ: the kernel reports these fields in 1/100 s on every Linux architecture stet
    // builds for (the ABI fixes it, whatever the kernel's own tick rate).
    let cpu_seconds = (ticks(11)? + ticks(12)?) as f64 / 100.0;
    Some(ProcStat {
        cpu_seconds,
        zombie: fields.first() == Some(&"Z"),
    })
}

/// The peak resident set size of process `pid`, from Linux's /proc (None elsewhere, or once
/// the process has exited).
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

pub(crate) struct KillOnDrop<'a>(pub(crate) &'a mut std::process::Child);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
