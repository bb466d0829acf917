//! The terminal table: one line per case, then the counts.

use std::fmt::Write as _;

use super::Report;
use crate::outcome::Outcome;

/// The report as a table for a terminal (no colour: the CLI adds none either).
pub fn table(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "stet conformance: {} ({} {}, {}), catalogue {}, consent {}",
        report.bank.profile,
        report.bank.bank,
        report.bank.dialect,
        report.bank.api_base,
        report.catalogue.version,
        report.consent
    );
    if report.bank.tls.error.is_none() {
        let _ = writeln!(
            out,
            "TLS: {} {}",
            report.bank.tls.version, report.bank.tls.cipher
        );
    }
    out.push('\n');
    let width = report
        .cases
        .iter()
        .map(|c| c.title.chars().count())
        .max()
        .unwrap_or(5)
        .min(70);
    let _ = writeln!(
        out,
        "{:<13} {:<7} {:<width$}  REASON",
        "CASE", "OUTCOME", "TITLE"
    );
    for case in &report.cases {
        let outcome = match (&case.waived, case.outcome) {
            (Some(_), Outcome::Fail) => "WAIVED".to_owned(),
            (_, o) => o.label().to_owned(),
        };
        let title: String = case.title.chars().take(width).collect();
        let reason: String = case.reason.chars().take(160).collect();
        let _ = writeln!(
            out,
            "{:<13} {outcome:<7} {title:<width$}  {reason}",
            case.id
        );
    }
    out.push('\n');
    let counts: Vec<String> = Outcome::ALL
        .iter()
        .map(|o| format!("{} {}", report.count(*o), o.label()))
        .collect();
    let _ = writeln!(
        out,
        "{} ({} waived); {} requests in {:.1} s",
        counts.join(", "),
        report.summary.waived,
        report.summary.calls,
        report.duration_ms as f64 / 1000.0
    );
    for stale in &report.waivers.stale {
        let _ = writeln!(
            out,
            "stale waiver: {} now ends {}: remove it from the waivers file",
            stale.case, stale.outcome
        );
    }
    for expired in &report.waivers.expired {
        let _ = writeln!(
            out,
            "expired waiver: {expired} (it waives nothing any more)"
        );
    }
    let _ = writeln!(
        out,
        "{}",
        if report.summary.passed {
            "PASSED"
        } else {
            "FAILED"
        }
    );
    out
}
