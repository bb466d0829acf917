//! JUnit XML for CI: one `testsuite` per area, one `testcase` per case (named by its id and
//! title), a `failure` with the reason for each FAIL, `skipped` for SKIP, N/A and waived
//! failures, and a failing `testcase` for each stale waiver.

use std::fmt::Write as _;

use super::{Report, escape};
use crate::catalogue::Area;
use crate::outcome::{Exchange, Outcome};

fn evidence(exchanges: &[Exchange]) -> String {
    let mut out = String::new();
    for e in exchanges {
        let _ = writeln!(out, "# {}", e.purpose);
        let _ = writeln!(out, "> {} {}", e.request.method, e.request.url);
        for (n, v) in &e.request.headers {
            let _ = writeln!(out, "> {n}: {v}");
        }
        if let Some(body) = &e.request.body {
            let _ = writeln!(out, ">\n> {body}");
        }
        match (&e.response, &e.error) {
            (Some(r), _) => {
                let _ = writeln!(out, "< HTTP {}", r.status);
                for (n, v) in &r.headers {
                    let _ = writeln!(out, "< {n}: {v}");
                }
                if !r.body.is_empty() {
                    let _ = writeln!(out, "<\n< {}", r.body);
                }
            }
            (None, Some(err)) => {
                let _ = writeln!(out, "! {err}");
            }
            (None, None) => {}
        }
        out.push('\n');
    }
    out
}

/// The report as JUnit XML.
pub fn junit(report: &Report) -> String {
    let secs = |ms: u64| format!("{:.3}", ms as f64 / 1000.0);
    let failures = report
        .cases
        .iter()
        .filter(|c| c.outcome == Outcome::Fail && c.waived.is_none())
        .count()
        + report.waivers.stale.len();
    let skipped = report
        .cases
        .iter()
        .filter(|c| {
            matches!(c.outcome, Outcome::Skip | Outcome::NotApplicable) || c.waived.is_some()
        })
        .count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"stet conformance: {}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{skipped}\" time=\"{}\">",
        escape(&report.bank.profile),
        report.cases.len() + report.waivers.stale.len(),
        secs(report.duration_ms)
    );
    for area in Area::ALL {
        let cases: Vec<_> = report.cases.iter().filter(|c| c.area == area).collect();
        if cases.is_empty() {
            continue;
        }
        let fails = cases
            .iter()
            .filter(|c| c.outcome == Outcome::Fail && c.waived.is_none())
            .count();
        let skips = cases
            .iter()
            .filter(|c| {
                matches!(c.outcome, Outcome::Skip | Outcome::NotApplicable) || c.waived.is_some()
            })
            .count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{area}\" tests=\"{}\" failures=\"{fails}\" errors=\"0\" skipped=\"{skips}\" time=\"{}\" timestamp=\"{}\">",
            cases.len(),
            secs(cases.iter().map(|c| c.duration_ms).sum()),
            escape(
                report
                    .started_at
                    .trim_end_matches('Z')
                    .split('.')
                    .next()
                    .unwrap_or_default()
            )
        );
        for case in cases {
            let _ = write!(
                out,
                "    <testcase classname=\"stet.conformance.{area}\" name=\"{} {}\" time=\"{}\">",
                escape(&case.id),
                escape(&case.title),
                secs(case.duration_ms)
            );
            match (case.outcome, &case.waived) {
                (Outcome::Fail, Some(w)) => {
                    let _ = write!(
                        out,
                        "\n      <skipped message=\"{}\"/>\n    ",
                        escape(&format!(
                            "FAIL, waived until {}: {} ({})",
                            w.expires, w.reason, case.reason
                        ))
                    );
                }
                (Outcome::Fail, None) => {
                    let _ = write!(
                        out,
                        "\n      <failure message=\"{}\" type=\"{}\">{}</failure>\n    ",
                        escape(&case.reason),
                        escape(&case.clause),
                        escape(&evidence(&case.evidence))
                    );
                }
                (Outcome::Skip | Outcome::NotApplicable, _) => {
                    let _ = write!(
                        out,
                        "\n      <skipped message=\"{}\"/>\n    ",
                        escape(&format!("{}: {}", case.outcome, case.reason))
                    );
                }
                (Outcome::Warn, _) => {
                    let _ = write!(
                        out,
                        "\n      <system-out>{}</system-out>\n    ",
                        escape(&format!(
                            "WARN: {}\n\n{}",
                            case.reason,
                            evidence(&case.evidence)
                        ))
                    );
                }
                (Outcome::Pass, _) => {
                    let _ = write!(
                        out,
                        "\n      <system-out>{}</system-out>\n    ",
                        escape(&case.reason)
                    );
                }
            }
            out.push_str("</testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    if !report.waivers.stale.is_empty() {
        let _ = writeln!(
            out,
            "  <testsuite name=\"waivers\" tests=\"{n}\" failures=\"{n}\" errors=\"0\" skipped=\"0\">",
            n = report.waivers.stale.len()
        );
        for stale in &report.waivers.stale {
            let _ = writeln!(
                out,
                "    <testcase classname=\"stet.conformance.waivers\" name=\"waiver {}\"><failure message=\"{}\"/></testcase>",
                escape(&stale.case),
                escape(&format!(
                    "stale waiver: {} now ends {}; remove the waiver ({})",
                    stale.case, stale.outcome, stale.reason
                ))
            );
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
