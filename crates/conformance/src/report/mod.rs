//! The report: JSON is the source of truth ([`Report`], serialized as is); JUnit XML, the
//! HTML page and the terminal table are made from it.

mod html;
mod junit;
mod table;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use html::html;
pub use junit::junit;
pub use table::table;

use crate::catalogue::{Area, Cost, Severity};
use crate::outcome::{Exchange, Outcome};
use crate::session::TlsRecord;

/// The format tag of `report.json`.
pub const FORMAT: &str = "stet-conformance-report/1";

/// The tool that made a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    /// `stet`.
    pub name: String,
    /// Its version.
    pub version: String,
}

/// The catalogue a report was made with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogueRef {
    /// Its `version`.
    pub version: String,
    /// The SHA-256 of its text.
    pub sha256: String,
    /// `embedded`, or the file's path.
    pub source: String,
}

/// The bank tested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BankRef {
    /// The configuration profile's name.
    pub profile: String,
    /// The bank dialect profile's name.
    pub bank: String,
    /// The STET dialect.
    pub dialect: String,
    /// The official schema file answers were checked against.
    pub schema: String,
    /// The API base URL.
    pub api_base: String,
    /// What the TLS handshake negotiated.
    pub tls: TlsRecord,
}

/// A waiver as it applied to a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waived {
    /// The waiver's reason.
    pub reason: String,
    /// Its expiry date.
    pub expires: String,
}

/// One case's result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseResult {
    /// The case id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// Its area.
    pub area: Area,
    /// Its clause.
    pub clause: String,
    /// Its severity.
    pub severity: Severity,
    /// What it costs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cost: Vec<Cost>,
    /// The outcome.
    pub outcome: Outcome,
    /// Why.
    pub reason: String,
    /// For a SKIP, the prerequisite that failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prerequisite: Option<String>,
    /// For a FAIL the waiver that covers it: reported, it does not fail the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waived: Option<Waived>,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// How many requests it sent.
    pub calls: u64,
    /// For every outcome but PASS: the exchanges, secrets masked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Exchange>,
}

/// What the waivers did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WaiverSummary {
    /// The waivers file, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Ids of the failures a waiver covered.
    pub applied: Vec<String>,
    /// Waivers that no longer match a failure (the case passed): each fails the run.
    pub stale: Vec<StaleWaiver>,
    /// Waivers past their expiry date: they waive nothing.
    pub expired: Vec<String>,
}

/// A waiver whose case no longer fails.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaleWaiver {
    /// The case.
    pub case: String,
    /// Its outcome in this run.
    pub outcome: Outcome,
    /// The waiver's reason.
    pub reason: String,
}

/// The counts and the verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    /// Cases per outcome (`PASS`, `FAIL`, `WARN`, `SKIP`, `N/A`).
    pub outcomes: BTreeMap<String, u64>,
    /// Failures covered by a waiver.
    pub waived: u64,
    /// Requests sent in all, prerequisites included.
    pub calls: u64,
    /// Whether the run passed: no FAIL outside waivers, no stale waiver.
    pub passed: bool,
}

/// A conformance run, whole: `report.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// [`FORMAT`].
    pub format: String,
    /// The tool.
    pub tool: Tool,
    /// The catalogue.
    pub catalogue: CatalogueRef,
    /// The bank.
    pub bank: BankRef,
    /// How the PSU's consent was had: `token`, `psu` or `headless`.
    pub consent: String,
    /// When the run started (RFC 3339).
    pub started_at: String,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
    /// The counts and the verdict.
    pub summary: Summary,
    /// Requests made for prerequisites (consent, tokens, the account list).
    pub setup_calls: u64,
    /// Those requests, when a prerequisite failed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub setup_evidence: Vec<Exchange>,
    /// The cases, in catalogue order.
    pub cases: Vec<CaseResult>,
    /// What the waivers did.
    pub waivers: WaiverSummary,
    /// A waivers file stanza for each failure not waived, ready to paste.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub suggested_waivers: String,
}

impl Report {
    /// Counts the outcomes and decides the verdict again (after waivers were applied).
    pub fn summarize(&mut self) {
        let mut outcomes: BTreeMap<String, u64> = Outcome::ALL
            .iter()
            .map(|o| (o.label().to_owned(), 0))
            .collect();
        for case in &self.cases {
            *outcomes.entry(case.outcome.label().to_owned()).or_default() += 1;
        }
        let waived = self.cases.iter().filter(|c| c.waived.is_some()).count() as u64;
        let failed = self
            .cases
            .iter()
            .any(|c| c.outcome == Outcome::Fail && c.waived.is_none());
        self.summary = Summary {
            outcomes,
            waived,
            calls: self.setup_calls + self.cases.iter().map(|c| c.calls).sum::<u64>(),
            passed: !failed && self.waivers.stale.is_empty(),
        };
        self.suggested_waivers = self
            .cases
            .iter()
            .filter(|c| c.outcome == Outcome::Fail && c.waived.is_none())
            .map(|c| crate::waivers::stanza(&c.id, &c.reason))
            .collect::<Vec<_>>()
            .join("\n");
    }

    /// The JSON text of `report.json`.
    pub fn to_json(&self) -> String {
        // A report is strings, numbers and lists: serializing it cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// The count of one outcome.
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.summary
            .outcomes
            .get(outcome.label())
            .copied()
            .unwrap_or(0)
    }
}

/// Escapes text for XML and HTML.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Characters XML 1.0 cannot carry at all.
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\r' | '\t') => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out
}
