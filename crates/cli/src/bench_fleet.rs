//! `stet bench fleet`: what a fleet of workers does against a bank, and what its queue costs.
//!
//! Two measures, on a PostgreSQL server given with `--server` (the bench makes databases of
//! its own there and drops them):
//!
//! 1. **Jobs a second.** For each `--workers W`: a sandbox bank with `--psus N` PSUs in its own
//!    process, a consent per PSU (its `/authorize` approves the PSU the `login_hint` names), the
//!    N connections added with `stet psu add --batch`, `stet schedule --now`, then W `stet
//!    worker --exit-when-idle` processes started together. The wall time runs from their start
//!    to the last one's exit; their CPU time (all threads) is read from `/proc` before each is
//!    reaped, the sandbox's as a difference. Every job must have run once (`job_runs`).
//! 2. **The queue's own cost.** `--queue-jobs M` connections with jobs due now, then
//!    `--queue-clients C` tasks that claim one job and complete it until none is due, through
//!    the store's own claim and completion (no sync, no bank): the queue as the workers use
//!    it. Beside it, in the same run, `pgbench` runs the bare loop on a table of M rows:
//!    `UPDATE … WHERE id = (SELECT … FOR UPDATE SKIP LOCKED LIMIT 1)`, then the completion,
//!    with the same C clients.
//!
//! Not run in CI: figures go in BENCHMARKS.md.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use stet_sandbox::SandboxInfo;
use stet_store::{JobCompletion, Location, NewConnection, OpenOptions, Store};
use time::OffsetDateTime;

use crate::Globals;
use crate::bench::{KillOnDrop, proc_stat};
use crate::exit::{self, Failure, OrExit as _};

/// `stet bench fleet`.
#[derive(Debug, Args)]
pub struct FleetBenchArgs {
    /// A PostgreSQL server, as a URL to any of its databases; the bench creates databases of
    /// its own there (`stet_bench_fleet_…`) and drops them at the end
    #[arg(long, value_name = "URL")]
    server: String,
    /// PSUs in the sandbox bank: one connection, so one job, each
    #[arg(long, default_value_t = 200)]
    psus: usize,
    /// Accounts of each PSU
    #[arg(long, default_value_t = 3)]
    accounts: usize,
    /// Transactions of each account
    #[arg(long, default_value_t = 60)]
    transactions: usize,
    /// Worker processes to run together (repeat to compare) [default: 1, 2 and 4]
    #[arg(long = "workers", value_name = "W")]
    workers: Vec<usize>,
    /// Jobs each worker runs at once
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Jobs for the queue's own cost (claim and complete, nothing run)
    #[arg(long, default_value_t = 20_000)]
    queue_jobs: usize,
    /// Clients claiming at once, for the queue's own cost (stet's and pgbench's)
    #[arg(long, default_value_t = 4)]
    queue_clients: usize,
    #[command(flatten)]
    figures: crate::bench::FiguresArgs,
}

/// The figures of one worker run.
struct WorkerRun {
    workers: usize,
    wall: f64,
    workers_cpu: f64,
    sandbox_cpu: Option<f64>,
}

pub fn run(args: FleetBenchArgs, globals: &Globals) -> Result<u8, Failure> {
    let psql = tool("psql")?;
    let pgbench = tool("pgbench")?;
    let exe = std::env::current_exe().or_exit(1, "cannot find the stet executable")?;
    let work = tempfile::tempdir().or_exit(exit::IO, "cannot create a temporary folder")?;
    let server = Server {
        psql,
        url: args.server.clone(),
    };
    server.sql("SELECT 1").map_err(|e| {
        Failure::new(
            exit::UNAVAILABLE,
            format!("--server {}: {e}", stet_store::redact(&args.server)),
        )
    })?;
    let workers = if args.workers.is_empty() {
        vec![1, 2, 4]
    } else {
        args.workers.clone()
    };

    let mut runs = Vec::new();
    for &w in &workers {
        let db = server.fresh(&format!("stet_bench_fleet_w{w}"))?;
        let run = worker_run(&args, &exe, work.path(), &db, w, globals.quiet);
        server.drop_database(&db);
        runs.push(run?);
    }

    let db = server.fresh("stet_bench_fleet_queue")?;
    let queue = queue_cost(&args, &db.url);
    server.drop_database(&db);
    let queue = queue?;
    let db = server.fresh("stet_bench_fleet_pgbench")?;
    let bare = pgbench_cost(&args, &pgbench, &server, &db, work.path());
    server.drop_database(&db);
    let bare = bare?;

    let jobs = args.psus as f64;
    if args.figures.json() {
        let rows: Vec<_> = runs
            .iter()
            .map(|r| {
                serde_json::json!({
                    "workers": r.workers,
                    "wall_s": round(r.wall, 3),
                    "jobs_per_s": round(jobs / r.wall, 1),
                    "workers_cpu_s": round(r.workers_cpu, 2),
                    "cpu_ms_per_job": round(r.workers_cpu / jobs * 1000.0, 2),
                    "sandbox_cpu_s": r.sandbox_cpu.map(|c| round(c, 2)),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "psus": args.psus, "accounts": args.accounts, "transactions": args.transactions,
                "concurrency": args.concurrency, "runs": rows,
                "queue": {"jobs": args.queue_jobs, "clients": args.queue_clients,
                    "stet_ms_per_job": round(queue * 1000.0, 3),
                    "pgbench_ms_per_job": round(bare * 1000.0, 3)},
            })
        );
    } else {
        println!(
            "{} PSUs × {} accounts × {} transactions, {} jobs at once per worker",
            args.psus, args.accounts, args.transactions, args.concurrency
        );
        for r in &runs {
            let bank = r
                .sandbox_cpu
                .map_or(String::new(), |c| format!("; sandbox {c:.2} s of CPU"));
            println!(
                "{} worker(s): {:.2} s, {:.1} jobs/s, {:.2} s of CPU ({:.2} ms a job){bank}",
                r.workers,
                r.wall,
                jobs / r.wall,
                r.workers_cpu,
                r.workers_cpu / jobs * 1000.0
            );
        }
        println!(
            "queue, {} jobs by {} clients: stet's claim and completion {:.3} ms a job; \
             a bare SKIP LOCKED loop (pgbench) {:.3} ms a job: {:.2}×",
            args.queue_jobs,
            args.queue_clients,
            queue * 1000.0,
            bare * 1000.0,
            queue / bare
        );
    }
    Ok(0)
}

fn round(x: f64, digits: i32) -> f64 {
    let p = 10f64.powi(digits);
    (x * p).round() / p
}

fn tool(name: &str) -> Result<std::path::PathBuf, Failure> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Failure::new(
                exit::CONFIG,
                format!(
                    "{name} is not on PATH: the bench drives PostgreSQL with its client tools \
                     (Debian: apt-get install postgresql-client; pgbench is in postgresql)"
                ),
            )
        })
}

/// The PostgreSQL server the bench makes its databases on, through `psql`.
struct Server {
    psql: std::path::PathBuf,
    url: String,
}

/// A database of the bench's.
struct Database {
    name: String,
    url: String,
}

impl Server {
    fn sql(&self, sql: &str) -> Result<String, String> {
        sql_at(&self.psql, &self.url, sql)
    }

    /// A new, empty database named `name` (dropped first if a killed run left it).
    fn fresh(&self, name: &str) -> Result<Database, Failure> {
        let fail = |e: String| Failure::new(exit::UNAVAILABLE, format!("creating {name}: {e}"));
        self.sql(&format!("DROP DATABASE IF EXISTS {name}"))
            .map_err(fail)?;
        self.sql(&format!("CREATE DATABASE {name}")).map_err(fail)?;
        let mut url = url::Url::parse(&self.url)
            .map_err(|e| Failure::new(exit::CONFIG, format!("--server: {e}")))?;
        url.set_path(&format!("/{name}"));
        Ok(Database {
            name: name.to_owned(),
            url: url.to_string(),
        })
    }

    fn drop_database(&self, db: &Database) {
        // Best effort: a database left behind is dropped by the next run's `fresh`.
        let _ = self.sql(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.name));
    }
}

fn sql_at(psql: &Path, url: &str, sql: &str) -> Result<String, String> {
    let out = Command::new(psql)
        .args([
            "-X",
            "-q",
            "-t",
            "-A",
            "-v",
            "ON_ERROR_STOP=1",
            url,
            "-c",
            sql,
        ])
        .output()
        .map_err(|e| format!("cannot run psql: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// The sandbox bank, with `psus` PSUs, in its own process, and what it printed of itself.
fn sandbox(exe: &Path, args: &FleetBenchArgs) -> Result<(Child, SandboxInfo), Failure> {
    let mut child = Command::new(exe)
        .args(["sandbox", "serve", "--port", "0"])
        .args(["--psus", &args.psus.to_string()])
        .args(["--accounts", &args.accounts.to_string()])
        .args(["--transactions", &args.transactions.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .or_exit(1, "cannot start the sandbox")?;
    let mut line = String::new();
    let read = child
        .stdout
        .take()
        .map(|out| BufReader::new(out).read_line(&mut line));
    let info = match read {
        Some(Ok(_)) => serde_json::from_str::<SandboxInfo>(&line)
            .or_exit(exit::DATA, "the sandbox's JSON line"),
        _ => Err(Failure::new(1, "the sandbox printed nothing")),
    };
    match info {
        Ok(info) => Ok((child, info)),
        Err(e) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(e)
        }
    }
}

/// One run of `workers` workers over a fresh sandbox and database.
fn worker_run(
    args: &FleetBenchArgs,
    exe: &Path,
    dir: &Path,
    db: &Database,
    workers: usize,
    quiet: bool,
) -> Result<WorkerRun, Failure> {
    let (mut bank, info) = sandbox(exe, args)?;
    let bank = KillOnDrop(&mut bank);
    let sandbox_pid = bank.0.id();
    let home = dir.join(format!("w{workers}"));
    std::fs::create_dir_all(&home).or_exit(exit::IO, "cannot create a folder")?;
    let profile = crate::demo::profile_for(&info, &home)?;
    let bank_profile = crate::profile::bank(&profile)?;
    let key = stet_fleet::StoreKey::generate();

    // A consent per PSU, as `stet psu add --batch` reads them.
    let lines = crate::store::runtime()?.block_on(async {
        let transport = stet_client::transport_builder(&profile, &bank_profile).build()?;
        let oauth = Arc::new(
            transport
                .oauth()
                .ok_or_else(|| Failure::new(exit::CONFIG, "no token endpoint"))?
                .clone(),
        );
        let info = Arc::new(info.clone());
        let scopes = vec!["aisp".to_owned()];
        let mut lines = Vec::with_capacity(args.psus);
        for chunk in (1..=args.psus).collect::<Vec<_>>().chunks(16) {
            let tasks = chunk.iter().map(|k| {
                let (oauth, info, scopes) = (oauth.clone(), info.clone(), scopes.clone());
                async move {
                    let name = format!("psu-{k}");
                    let t =
                        crate::demo::approve_as(&oauth, &info, &scopes, None, Some(&name)).await?;
                    Ok::<_, Failure>(
                        serde_json::json!({
                            "name": name,
                            "token": {
                                "access_token": t.access_token.expose(),
                                "refresh_token": t.refresh_token.as_ref().map(|r| r.expose().to_owned()),
                                "expires_in": t.expires_at.map(|at| at.saturating_sub(t.obtained_at)),
                                "scope": t.scopes.join(" "),
                                "token_type": "Bearer",
                            }
                        })
                        .to_string(),
                    )
                }
            });
            for line in futures_util::future::join_all(tasks).await {
                lines.push(line?);
            }
        }
        Ok::<_, Failure>(lines)
    })?;
    let batch = home.join("consents.ndjson");
    crate::init::create_private(&batch, &(lines.join("\n") + "\n"))?;

    let stet = |args: &[&str]| {
        let mut c = Command::new(exe);
        c.args(args)
            .args(["--store", &db.url, "-q"])
            .env("STET_CONFIG", home.join("config.toml"))
            .env("STET_PROFILE", "demo")
            .env("XDG_DATA_HOME", home.join("data"))
            .env(stet_fleet::STORE_KEY_ENV, key.as_str());
        c
    };
    let done = |what: &str, mut c: Command| -> Result<(), Failure> {
        let out = c.output().or_exit(1, format!("cannot run `stet {what}`"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Failure::new(
                1,
                format!(
                    "`stet {what}` failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
            ))
        }
    };
    let batch_arg = batch.to_string_lossy().into_owned();
    done(
        "psu add --batch",
        stet(&["psu", "add", "--profile", "demo", "--batch", &batch_arg]),
    )?;
    done("schedule --now", stet(&["schedule", "--now"]))?;

    let bank_before = proc_stat(sandbox_pid).map(|s| s.cpu_seconds);
    let started = Instant::now();
    let mut children = Vec::new();
    for i in 0..workers {
        let mut c = stet(&[
            "worker",
            "--exit-when-idle",
            "--concurrency",
            &args.concurrency.to_string(),
            "--worker-id",
            &format!("bench-{i}"),
            // An idle worker looks again every 2 s by default: the last ones would wait that
            // long for the others' final jobs before exiting, which is not the queue's speed.
            "--poll-ms",
            "50",
        ]);
        c.stdout(Stdio::null()).stderr(Stdio::piped());
        children.push(c.spawn().or_exit(1, "cannot start `stet worker`")?);
    }
    let (cpu, failures) = wait_all(children)?;
    let wall = started.elapsed().as_secs_f64();
    let sandbox_cpu = bank_before
        .zip(proc_stat(sandbox_pid))
        .map(|(before, after)| after.cpu_seconds - before);
    drop(bank);
    if let Some(err) = failures {
        return Err(Failure::new(1, format!("a worker failed: {err}")));
    }
    let psql = tool("psql")?;
    let ran = sql_at(
        &psql,
        &db.url,
        "SELECT count(*) FROM job_runs WHERE outcome = 'done'",
    )
    .map_err(|e| Failure::new(1, format!("counting the job runs: {e}")))?;
    if ran != args.psus.to_string() {
        return Err(Failure::new(
            1,
            format!(
                "{ran} job(s) done for {} connections: the run is not a measure",
                args.psus
            ),
        ));
    }
    if !quiet {
        eprintln!(
            "{workers} worker(s): {} jobs done in {wall:.2} s",
            args.psus
        );
    }
    Ok(WorkerRun {
        workers,
        wall,
        workers_cpu: cpu,
        sandbox_cpu,
    })
}

/// Waits for every child, summing their CPU time (read while each is a zombie, so final);
/// the first failure's stderr, if any.
fn wait_all(mut children: Vec<Child>) -> Result<(f64, Option<String>), Failure> {
    let mut cpu = vec![0.0; children.len()];
    let mut finished = vec![false; children.len()];
    let mut failure = None;
    while finished.iter().any(|f| !f) {
        for (i, child) in children.iter_mut().enumerate() {
            if finished[i] {
                continue;
            }
            if let Some(stat) = proc_stat(child.id()) {
                cpu[i] = stat.cpu_seconds;
                if !stat.zombie {
                    continue;
                }
            }
            if let Some(status) = child.try_wait().or_exit(1, "cannot wait for a worker")? {
                finished[i] = true;
                if !status.success() && failure.is_none() {
                    let mut err = String::new();
                    if let Some(mut e) = child.stderr.take() {
                        let _ = e.read_to_string(&mut err);
                    }
                    failure = Some(err.trim().to_owned());
                }
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok((cpu.iter().sum(), failure))
}

/// Seconds per job of the store's own claim and completion, `--queue-clients` at once.
fn queue_cost(args: &FleetBenchArgs, url: &str) -> Result<f64, Failure> {
    crate::store::runtime()?.block_on(async {
        let location = Location::parse(url).map_err(crate::store::failure)?;
        let options = OpenOptions {
            max_connections: (args.queue_clients as u32 + 2).max(4),
            ..OpenOptions::default()
        };
        let store = Store::open(&location, &options)
            .await
            .map_err(crate::store::failure)?;
        // Connections with jobs due now; their sealed tokens are never opened here.
        for i in 0..args.queue_jobs {
            store
                .add_connection(
                    &NewConnection {
                        profile: "bench".to_owned(),
                        name: format!("c{i}"),
                        bank: "sandbox".to_owned(),
                        scopes: "aisp".to_owned(),
                        consent_valid_until: None,
                    },
                    |_| Ok((vec![0; 64], "bench".to_owned())),
                )
                .await
                .map_err(crate::store::failure)?;
        }
        store.schedule(true).await.map_err(crate::store::failure)?;
        let store = Arc::new(store);
        let started = Instant::now();
        let tasks = (0..args.queue_clients).map(|c| {
            let store = store.clone();
            async move {
                let owner = format!("bench-{c}");
                let mut jobs = 0u64;
                loop {
                    let claimed = store
                        .claim_jobs(&owner, Duration::from_secs(60), 1)
                        .await
                        .map_err(crate::store::failure)?;
                    let Some(job) = claimed.first() else {
                        break;
                    };
                    let now = OffsetDateTime::now_utc();
                    let completion = JobCompletion {
                        outcome: "done".to_owned(),
                        next_due: Some(now + time::Duration::hours(6)),
                        retry: false,
                        calls: 0,
                        transactions: 0,
                        error: None,
                        started_at: now,
                        kind: job.kind.clone(),
                    };
                    store
                        .complete_job(job, &owner, &completion)
                        .await
                        .map_err(crate::store::failure)?;
                    jobs += 1;
                }
                Ok::<u64, Failure>(jobs)
            }
        });
        let mut total = 0;
        for jobs in futures_util::future::join_all(tasks).await {
            total += jobs?;
        }
        let seconds = started.elapsed().as_secs_f64();
        store.close().await;
        if total != args.queue_jobs as u64 {
            return Err(Failure::new(
                1,
                format!("{total} jobs claimed for {} due", args.queue_jobs),
            ));
        }
        Ok(seconds / total as f64)
    })
}

/// Seconds per job of the bare loop: claim one due row with `FOR UPDATE SKIP LOCKED`, then
/// complete it, by `pgbench` with the same number of clients.
fn pgbench_cost(
    args: &FleetBenchArgs,
    pgbench: &Path,
    server: &Server,
    db: &Database,
    dir: &Path,
) -> Result<f64, Failure> {
    let clients = args.queue_clients.max(1);
    let per_client = args.queue_jobs / clients;
    let jobs = per_client * clients;
    // One statement a call: psql runs a multi-statement `-c` in one transaction, where
    // VACUUM cannot run.
    for sql in [
        "CREATE TABLE bench_jobs (id bigserial PRIMARY KEY, due_at timestamptz NOT NULL, \
         lease_owner text, lease_until timestamptz)"
            .to_owned(),
        "CREATE INDEX bench_jobs_due ON bench_jobs (due_at)".to_owned(),
        format!(
            "INSERT INTO bench_jobs (due_at) SELECT now() - interval '1 second' \
             FROM generate_series(1, {jobs})"
        ),
        "VACUUM ANALYZE bench_jobs".to_owned(),
    ] {
        sql_at(&server.psql, &db.url, &sql)
            .map_err(|e| Failure::new(1, format!("preparing the pgbench table: {e}")))?;
    }
    let script = dir.join("skip-locked.sql");
    std::fs::write(
        &script,
        "UPDATE bench_jobs SET lease_owner = 'c' || :client_id, lease_until = now() + interval '60 seconds' \
         WHERE id = (SELECT id FROM bench_jobs WHERE due_at <= now() \
         AND (lease_until IS NULL OR lease_until < now()) ORDER BY due_at, id \
         FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id AS job \\gset\n\
         UPDATE bench_jobs SET lease_owner = NULL, lease_until = NULL, \
         due_at = now() + interval '6 hours' WHERE id = :job;\n",
    )
    .or_exit(exit::IO, "cannot write the pgbench script")?;
    let out = Command::new(pgbench)
        // Prepared statements, as sqlx uses them: the comparison is of the queues, not of
        // parsing and planning each statement again.
        .args(["-n", "-M", "prepared"])
        .args(["-c", &clients.to_string(), "-j", &clients.to_string()])
        .args(["-t", &per_client.to_string(), "-f"])
        .arg(&script)
        .arg(&db.url)
        .output()
        .or_exit(1, "cannot run pgbench")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(Failure::new(
            1,
            format!(
                "pgbench failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ));
    }
    // "tps = 1234.5 (without initial connection time)"
    let tps = text
        .lines()
        .filter(|l| l.starts_with("tps = "))
        .find_map(|l| {
            l["tps = ".len()..]
                .split_whitespace()
                .next()?
                .parse::<f64>()
                .ok()
        })
        .ok_or_else(|| Failure::new(1, format!("no tps in pgbench's output: {text}")))?;
    Ok(1.0 / tps)
}
