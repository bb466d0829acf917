//! # stet-conformance
//!
//! Tests a bank's STET API against the standard, the way a TPP meets it: over mutual TLS with
//! its QWAC, signing with its QSealC, with the PSU's consent. PSD2 (RTS art. 30 and 33, EBA
//! guideline 6.5) asks banks for a testing facility that behaves like production, negative
//! cases and security included; this crate checks that it does, and says where it does not.
//!
//! ## The pieces
//!
//! - [`Catalogue`]: the cases, as data (`catalogue.toml`, embedded; a TPP may give its own).
//!   Each has a stable id (`STET-SIG-004`), the clause it comes from, the dialects it applies
//!   to, its prerequisites, a severity, what it costs at the bank, and the check that runs it.
//! - The checks, in Rust (one per kind of case): transport (no client certificate, an
//!   untrusted one), OAuth (no, unknown, expired and wrong-scope tokens; `state`, PKCE and
//!   single-use codes at `/authorize`; the token endpoint without a certificate), signatures
//!   (none, tampered, a Digest of another body, a body changed after signing, a stale Date,
//!   an unknown keyId, a required header left out; each refusal in STET's error model),
//!   resources (answers valid against the official schema of the bank's dialect:
//!   [`schema`]; Content-Type; X-Request-ID echoed; the error model), pagination (`next`
//!   walked to the end, no loop, `self`, same origin, 204 for nothing, `dateFrom`/`dateTo`,
//!   history beyond 90 days), payment requests (consentApproval, the status lifecycle,
//!   confirmation, cancellation), funds confirmation, and the unattended budget.
//! - [`run`]: runs a selection against a [`Target`] (the transport, the bank profile, how the
//!   PSU's consent is had: a pre-minted token, a PSU at a browser through a [`PsuAgent`], or
//!   headless where the sandbox approves by itself) and gives a [`Report`].
//! - [`Report`]: JSON is the source of truth; [`report::junit`], [`report::html`] (one
//!   self-contained page) and [`report::table`] are made from it.
//! - [`Waivers`]: known deviations with a reason and an expiry; a waived failure is reported
//!   but does not fail the run, and a waiver that no longer matches a failure fails it.
//! - [`bundle`]: the evidence bundle, a zip of the report, the bank profile and the catalogue
//!   with a SHA-256 manifest signed with the TPP's QSealC; [`bundle::verify`] checks one: that
//!   it is intact always, who signed it when given the QSealC or a CA ([`bundle::Trust`]).
//!
//! ## Outcomes
//!
//! PASS; FAIL (a mandatory case the bank broke); WARN (an advisory case it broke, or a remark
//! such as a field the schema does not define); SKIP (a prerequisite could not be had, and
//! the reason says which, or a costly case was not asked for); N/A (not for this dialect, or
//! nothing to check). Every outcome but PASS keeps its exchanges with the bank, with tokens,
//! codes, secrets and signatures masked.
//!
//! ## Every check can fail
//!
//! Each case names the sandbox fault that makes it fail (`stet sandbox serve --faults
//! accept-unsigned`): this crate's tests run the whole catalogue against the compliant
//! sandbox, where every case passes, and each case against its fault, where that case fails
//! and no other changes outcome.
//!
//! ```no_run
//! # async fn demo(target: stet_conformance::Target) -> Result<(), Box<dyn std::error::Error>> {
//! use stet_conformance::{Catalogue, Options, run};
//!
//! let catalogue = Catalogue::embedded();
//! let report = run(target, &catalogue, &Options::default()).await?;
//! std::fs::write("report.json", report.to_json())?;
//! std::fs::write("junit.xml", stet_conformance::report::junit(&report))?;
//! assert!(report.summary.passed);
//! # Ok(()) }
//! ```

// The errors and verdicts carry what a person needs to act; they are built only on failure.
#![allow(clippy::result_large_err)]

pub mod bundle;
pub mod catalogue;
mod checks;
pub mod outcome;
pub mod report;
mod runner;
pub mod schema;
mod session;
mod waivers;

pub use catalogue::{Area, Case, Catalogue, CatalogueError, Cost, Prerequisite, Severity};
pub use checks::names as check_names;
pub use outcome::{Exchange, Outcome, Verdict};
pub use report::Report;
pub use runner::{Options, RunError, run};
pub use session::{Consent, PsuAgent, Target, TlsRecord};
pub use waivers::{Waiver, WaiverError, Waivers};
