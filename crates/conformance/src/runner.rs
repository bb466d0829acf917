//! The runner: which cases run, in what order, how many at a time; prerequisites and costs;
//! the report.

use std::time::Instant;

use futures_util::StreamExt as _;

use crate::catalogue::{Case, Catalogue, CatalogueError, Cost, Schedule, Severity};
use crate::checks::{self, Ctx};
use crate::outcome::{Outcome, Verdict};
use crate::report::{BankRef, CaseResult, CatalogueRef, Report, Summary, Tool, WaiverSummary};
use crate::session::{Session, Target};

/// What to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Case ids, area names or area codes; empty: every case.
    pub only: Vec<String>,
    /// Costs allowed besides those of the cases named in `only` by id.
    pub allow: Vec<Cost>,
    /// How many cases run at once.
    pub concurrency: usize,
    /// The tool's version, for the report.
    pub tool_version: String,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            only: Vec::new(),
            allow: Vec::new(),
            concurrency: 4,
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The selection names nothing.
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
    /// The profile cannot be used to reach the bank (the QWAC, the CA bundle).
    #[error("cannot set up the connection to the bank: {0}")]
    Setup(String),
}

/// Runs the cases `options` selects against `target` and gives the report (waivers not yet
/// applied: see [`crate::Waivers::apply`]).
pub async fn run(
    target: Target,
    catalogue: &Catalogue,
    options: &Options,
) -> Result<Report, RunError> {
    let selected = catalogue.select(&options.only)?;
    let started_at = time::OffsetDateTime::now_utc();
    let started = Instant::now();
    let tls = crate::session::tls_record(&target.profile).await;
    let bank = BankRef {
        profile: target.profile.name.clone(),
        bank: target.bank.name.clone(),
        dialect: target.bank.dialect.as_str().to_owned(),
        schema: crate::schema::official_version(target.bank.dialect).to_owned(),
        api_base: target.profile.api_base.to_string(),
        tls,
    };
    let consent = target.consent.mode().to_owned();
    let session = Session::new(target).map_err(RunError::Setup)?;
    let session = &session;

    // What does not run is decided first: the dialect, the costs not asked for.
    let mut results: Vec<Option<CaseResult>> = vec![None; selected.len()];
    let mut parallel = Vec::new();
    let mut serial = Vec::new();
    let mut last = Vec::new();
    for (i, case) in selected.iter().enumerate() {
        if let Some(verdict) = not_run(session, case, options) {
            results[i] = Some(result(case, verdict, 0, 0, Vec::new()));
            continue;
        }
        match case.schedule {
            Schedule::Parallel => parallel.push(i),
            Schedule::Serial => serial.push(i),
            Schedule::Last => last.push(i),
        }
    }
    let run_one = |i: usize| {
        let case: &Case = selected[i];
        async move {
            let ctx = Ctx::new(session);
            let t0 = Instant::now();
            let verdict = match checks::lookup(&case.check) {
                Some(check) => match prerequisites(&ctx, case).await {
                    Err(v) => v,
                    Ok(()) => check(&ctx).await.unwrap_or_else(|v| v),
                },
                None => Verdict::fail(format!("no check named {}", case.check)),
            };
            let ms = t0.elapsed().as_millis() as u64;
            tracing::info!(case = %case.id, outcome = %verdict.outcome, ms, "case");
            let calls = ctx.log.calls();
            (i, result(case, verdict, ms, calls, ctx.log.take()))
        }
    };
    // The serial cases run one after another while the others run beside them.
    let serial_run = async {
        let mut out = Vec::new();
        for &i in &serial {
            out.push(run_one(i).await);
        }
        out
    };
    let concurrency = options.concurrency.max(1);
    let parallel_run = futures_util::stream::iter(parallel.iter().map(|&i| run_one(i)))
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>();
    let (a, b) = tokio::join!(parallel_run, serial_run);
    for (i, r) in a.into_iter().chain(b) {
        results[i] = Some(r);
    }
    for &i in &last {
        let (i, r) = run_one(i).await;
        results[i] = Some(r);
    }
    let cases: Vec<CaseResult> = results.into_iter().flatten().collect();
    let setup_calls = session.setup.calls();
    let setup_evidence = if cases.iter().any(|c| c.prerequisite.is_some()) {
        session.setup.take()
    } else {
        Vec::new()
    };
    let mut report = Report {
        format: crate::report::FORMAT.to_owned(),
        tool: Tool {
            name: "stet".to_owned(),
            version: options.tool_version.clone(),
        },
        catalogue: CatalogueRef {
            version: catalogue.version.clone(),
            sha256: catalogue.sha256.clone(),
            source: catalogue.source.clone(),
        },
        bank,
        consent,
        started_at: started_at
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default(),
        duration_ms: started.elapsed().as_millis() as u64,
        summary: Summary {
            outcomes: Default::default(),
            waived: 0,
            calls: 0,
            passed: false,
        },
        setup_calls,
        setup_evidence,
        cases,
        waivers: WaiverSummary::default(),
        suggested_waivers: String::new(),
    };
    report.summarize();
    Ok(report)
}

/// Why a case does not run at all: N/A for the bank's dialect, SKIP when it costs what was not
/// allowed.
fn not_run(session: &Session, case: &Case, options: &Options) -> Option<Verdict> {
    let dialect = session.bank().dialect.as_str();
    if !case.dialects.iter().any(|d| d == dialect) {
        return Some(Verdict::not_applicable(format!(
            "applies to STET {}; the bank speaks {dialect}",
            case.dialects.join(", ")
        )));
    }
    let named = options
        .only
        .iter()
        .any(|n| n.eq_ignore_ascii_case(&case.id));
    let area_named = options
        .only
        .iter()
        .any(|n| crate::catalogue::names(case, n));
    let missing: Vec<&str> = case
        .cost
        .iter()
        .filter(|c| !options.allow.contains(c) && !named && !area_named)
        .map(|c| c.name())
        .collect();
    if missing.is_empty() {
        return None;
    }
    let what = missing
        .iter()
        .map(|m| match *m {
            "money" => "creates payment requests",
            _ => "spends the day's unattended calls of an account",
        })
        .collect::<Vec<_>>()
        .join(" and ");
    Some(Verdict {
        outcome: Outcome::Skip,
        reason: format!(
            "not asked for: it {what}; run it with --allow {} or --only {}",
            missing.join(" --allow "),
            case.id
        ),
        prerequisite: Some(format!("--allow {}", missing.join(","))),
    })
}

/// Checks the case's prerequisites, in catalogue order; the first that cannot be had is the
/// SKIP.
async fn prerequisites(ctx: &Ctx<'_>, case: &Case) -> Result<(), Verdict> {
    use crate::catalogue::Prerequisite as P;
    use crate::checks::Bearer;
    for p in &case.prerequisites {
        match p {
            P::Consent => ctx.token(Bearer::Consent, false).await.map(drop)?,
            P::Account => ctx.session.account().await.map(drop)?,
            P::PispToken => ctx.token(Bearer::Pisp, false).await.map(drop)?,
            P::CbpiiToken => ctx.token(Bearer::Cbpii, false).await.map(drop)?,
            P::Headless => ctx.session.headless()?,
            P::Approval => ctx.session.approval_possible()?,
        }
    }
    Ok(())
}

fn result(
    case: &Case,
    verdict: Verdict,
    duration_ms: u64,
    calls: u64,
    evidence: Vec<crate::outcome::Exchange>,
) -> CaseResult {
    // An advisory case's failure is a warning.
    let outcome = match (verdict.outcome, case.severity) {
        (Outcome::Fail, Severity::Advisory) => Outcome::Warn,
        (o, _) => o,
    };
    CaseResult {
        id: case.id.clone(),
        title: case.title.clone(),
        area: case.area,
        clause: case.clause.clone(),
        severity: case.severity,
        cost: case.cost.clone(),
        outcome,
        reason: verdict.reason,
        prerequisite: verdict.prerequisite,
        waived: None,
        duration_ms,
        calls,
        evidence: if outcome == Outcome::Pass {
            Vec::new()
        } else {
            evidence
        },
    }
}
