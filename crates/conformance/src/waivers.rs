//! Waivers: known deviations of a bank, each with a reason and an expiry date.
//!
//! ```toml
//! [[waiver]]
//! case = "STET-SIG-001"
//! reason = "the sandbox accepts unsigned requests; production does not (ticket 4711)"
//! expires = "2027-03-31"
//! ```
//!
//! A failure a waiver covers is reported (outcome FAIL, marked waived) and does not fail the
//! run. A waiver whose case no longer fails (it passed, warned or does not apply) is *stale*
//! and fails the run, so that waivers do not outlive the deviation they excuse. A waiver past
//! its expiry waives nothing. A case that did not run, or was skipped, leaves its waiver
//! untouched: nothing was learnt about it.

use serde::Deserialize;

use crate::catalogue::Catalogue;
use crate::outcome::Outcome;
use crate::report::{Report, StaleWaiver, Waived};

/// One waiver.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Waiver {
    /// The case id it excuses.
    pub case: String,
    /// Why the deviation is accepted (a ticket, a bank's statement).
    pub reason: String,
    /// The last day it applies (`YYYY-MM-DD`).
    pub expires: String,
}

/// A waivers file, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Waivers {
    /// Where it came from.
    pub source: String,
    /// The waivers, in file order.
    pub waivers: Vec<Waiver>,
}

/// Why a waivers file cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("waivers {source_name}: {detail}")]
pub struct WaiverError {
    /// The file.
    pub source_name: String,
    /// What is wrong and how to fix it.
    pub detail: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(rename = "waiver", default)]
    waivers: Vec<Waiver>,
}

fn date(text: &str) -> Option<time::Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, format).ok()
}

impl Waivers {
    /// Reads a waivers file and checks it against `catalogue`: every case named exists, every
    /// expiry is a date, every reason says something.
    pub fn from_toml(
        text: &str,
        source: &str,
        catalogue: &Catalogue,
    ) -> Result<Waivers, WaiverError> {
        let err = |detail: String| WaiverError {
            source_name: source.to_owned(),
            detail,
        };
        let file: File =
            toml::from_str(text).map_err(|e| err(e.to_string().trim_end().replace('\n', " ")))?;
        for (i, w) in file.waivers.iter().enumerate() {
            let at = format!("waiver {} ({})", i + 1, w.case);
            if catalogue.get(&w.case).is_none() {
                return Err(err(format!(
                    "{at}: no case {} in the catalogue (`stet conformance list` shows the ids)",
                    w.case
                )));
            }
            if w.reason.trim().is_empty() {
                return Err(err(format!(
                    "{at}: `reason` is empty: say why the deviation is accepted"
                )));
            }
            if date(&w.expires).is_none() {
                return Err(err(format!(
                    "{at}: expires `{}` is not a date (YYYY-MM-DD)",
                    w.expires
                )));
            }
            if file.waivers[..i]
                .iter()
                .any(|o| o.case.eq_ignore_ascii_case(&w.case))
            {
                return Err(err(format!("{at}: the case has two waivers; keep one")));
            }
        }
        Ok(Waivers {
            source: source.to_owned(),
            waivers: file.waivers,
        })
    }

    /// Applies the waivers to `report` as of `today`, then summarizes it again.
    pub fn apply(&self, report: &mut Report, today: time::Date) {
        report.waivers.file = Some(self.source.clone());
        for w in &self.waivers {
            let Some(case) = report
                .cases
                .iter_mut()
                .find(|c| c.id.eq_ignore_ascii_case(&w.case))
            else {
                continue;
            };
            let expired = date(&w.expires).is_some_and(|d| d < today);
            if expired {
                report
                    .waivers
                    .expired
                    .push(format!("{} (expired {}): {}", w.case, w.expires, w.reason));
                continue;
            }
            match case.outcome {
                Outcome::Fail => {
                    case.waived = Some(Waived {
                        reason: w.reason.clone(),
                        expires: w.expires.clone(),
                    });
                    report.waivers.applied.push(case.id.clone());
                }
                Outcome::Pass | Outcome::Warn | Outcome::NotApplicable => {
                    report.waivers.stale.push(StaleWaiver {
                        case: case.id.clone(),
                        outcome: case.outcome,
                        reason: w.reason.clone(),
                    });
                }
                Outcome::Skip => {}
            }
        }
        report.summarize();
    }
}

/// A waivers file stanza for a failure of `case`, ready to paste (the reason is the
/// failure's, to be replaced with why it is accepted; the expiry three months on).
pub fn stanza(case: &str, failure: &str) -> String {
    let expires = time::OffsetDateTime::now_utc().date() + time::Duration::days(91);
    let failure: String = failure.chars().take(200).collect();
    format!(
        "[[waiver]]\ncase = \"{case}\"\nreason = \"{}\"\nexpires = \"{expires}\"\n",
        failure.replace('\\', "\\\\").replace('"', "\\\"")
    )
}
