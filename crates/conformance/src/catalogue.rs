//! The catalogue: the cases, as data. One is embedded ([`Catalogue::embedded`]); a TPP may
//! give its own ([`Catalogue::from_toml`]) to change severities, drop cases or add cases that
//! call the same checks.

use std::collections::HashSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The embedded catalogue's text (`catalogue.toml` beside this crate's manifest).
pub const EMBEDDED: &str = include_str!("../catalogue.toml");

/// What a case is about; `--only` takes these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Area {
    /// Mutual TLS with the QWAC (`TLS`).
    Transport,
    /// Tokens, `/authorize` and the token endpoint (`OAU`).
    Oauth,
    /// HTTP signatures and `Digest` (`SIG`).
    Signature,
    /// Answers: schemas, headers, the error model (`RES`).
    Resources,
    /// `_links` paging and date bounds (`PAG`).
    Pagination,
    /// Payment requests (`PIS`).
    Payments,
    /// Funds confirmations (`CBP`).
    Funds,
    /// The unattended budget (`BUD`).
    Budget,
}

impl Area {
    /// Every area, in report order.
    pub const ALL: [Area; 8] = [
        Area::Transport,
        Area::Oauth,
        Area::Signature,
        Area::Resources,
        Area::Pagination,
        Area::Payments,
        Area::Funds,
        Area::Budget,
    ];

    /// The lowercase name (`signature`).
    pub fn name(self) -> &'static str {
        match self {
            Area::Transport => "transport",
            Area::Oauth => "oauth",
            Area::Signature => "signature",
            Area::Resources => "resources",
            Area::Pagination => "pagination",
            Area::Payments => "payments",
            Area::Funds => "funds",
            Area::Budget => "budget",
        }
    }

    /// The heading in reports (`OAuth`).
    pub fn heading(self) -> &'static str {
        match self {
            Area::Transport => "Transport (mutual TLS)",
            Area::Oauth => "OAuth",
            Area::Signature => "Signatures",
            Area::Resources => "Resources",
            Area::Pagination => "Pagination",
            Area::Payments => "Payment requests (PISP)",
            Area::Funds => "Funds confirmation (CBPII)",
            Area::Budget => "Unattended budget",
        }
    }

    /// The code in case ids (`SIG` in `STET-SIG-004`).
    pub fn code(self) -> &'static str {
        match self {
            Area::Transport => "TLS",
            Area::Oauth => "OAU",
            Area::Signature => "SIG",
            Area::Resources => "RES",
            Area::Pagination => "PAG",
            Area::Payments => "PIS",
            Area::Funds => "CBP",
            Area::Budget => "BUD",
        }
    }
}

impl fmt::Display for Area {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a failure counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A failure is FAIL: the run fails.
    Mandatory,
    /// A failure is WARN: reported, the run passes.
    Advisory,
}

/// What a case spends at the bank; such cases run only when asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cost {
    /// It creates payment requests (and may confirm them).
    Money,
    /// It spends the unattended calls of an account for the day.
    Budget,
}

impl Cost {
    /// The name, as `--allow` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Cost::Money => "money",
            Cost::Budget => "budget",
        }
    }
}

/// When a case runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Schedule {
    /// With the others, several at a time.
    #[default]
    Parallel,
    /// One after another, in catalogue order, with the other serial cases.
    Serial,
    /// After every other case (it may wait, e.g. for a token to expire).
    Last,
}

/// What a case needs before it can run. When one cannot be had, the case is SKIP and says
/// which, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Prerequisite {
    /// The PSU's consent: an access token for the AISP scope.
    Consent,
    /// An account of the PSU (from `GET /accounts`).
    Account,
    /// A client-credentials token for the PISP scope.
    PispToken,
    /// A client-credentials token for the CBPII scope (`piisp` in 1.4).
    CbpiiToken,
    /// `/authorize` driven without a PSU (`--consent headless`).
    Headless,
    /// A PSU who approves payment requests (`--consent headless` or `psu`).
    Approval,
}

impl Prerequisite {
    /// The name as written in the catalogue.
    pub fn name(self) -> &'static str {
        match self {
            Prerequisite::Consent => "consent",
            Prerequisite::Account => "account",
            Prerequisite::PispToken => "pisp-token",
            Prerequisite::CbpiiToken => "cbpii-token",
            Prerequisite::Headless => "headless",
            Prerequisite::Approval => "approval",
        }
    }
}

/// One case of the catalogue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// A stable id, `STET-<area code>-<three digits>`.
    pub id: String,
    /// What is checked, in one line.
    pub title: String,
    /// The area.
    pub area: Area,
    /// The clause of the standard (or of the texts it builds on) the case comes from.
    pub clause: String,
    /// The STET dialects it applies to (`1.4`, `1.5`, `1.6`); on others it is N/A.
    pub dialects: Vec<String>,
    /// What it needs first.
    #[serde(default)]
    pub prerequisites: Vec<Prerequisite>,
    /// How a failure counts.
    pub severity: Severity,
    /// What it spends at the bank.
    #[serde(default)]
    pub cost: Vec<Cost>,
    /// When it runs.
    #[serde(default)]
    pub schedule: Schedule,
    /// The check (Rust) that runs it, e.g. `signature.missing`.
    pub check: String,
    /// The sandbox fault that makes it fail: `stet sandbox serve --faults FAULT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault: Option<String>,
}

/// A catalogue, checked: ids unique and well formed, every check known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Catalogue {
    /// The catalogue's version (its `version` key).
    pub version: String,
    /// The SHA-256 of its text, hex: which exact catalogue a report was made with.
    pub sha256: String,
    /// Where it came from: `embedded`, or the file's path.
    pub source: String,
    /// Its text, as read (it goes into the evidence bundle).
    #[serde(skip)]
    pub text: String,
    /// The cases, in file order.
    pub cases: Vec<Case>,
}

/// Why a catalogue (or a selection from it) cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    /// Not TOML, or not the catalogue's shape.
    #[error("catalogue {source_name}: {detail}")]
    Parse {
        /// The file, or `embedded`.
        source_name: String,
        /// What the TOML parser said.
        detail: String,
    },
    /// A case is wrong.
    #[error("catalogue {source_name}, case {case}: {detail}")]
    Case {
        /// The file, or `embedded`.
        source_name: String,
        /// The case's id (or its position).
        case: String,
        /// What is wrong and what to write instead.
        detail: String,
    },
    /// `--only` names nothing in the catalogue.
    #[error(
        "`{0}` is neither a case id nor an area of the catalogue (areas: transport, oauth, \
         signature, resources, pagination, payments, funds, budget; `stet conformance list` \
         shows the ids)"
    )]
    UnknownSelection(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: String,
    #[serde(rename = "case", default)]
    cases: Vec<Case>,
}

fn valid_id(id: &str, area: Area) -> bool {
    let Some(rest) = id.strip_prefix("STET-") else {
        return false;
    };
    let Some((code, number)) = rest.split_once('-') else {
        return false;
    };
    code == area.code() && number.len() == 3 && number.bytes().all(|b| b.is_ascii_digit())
}

impl Catalogue {
    /// The catalogue compiled into stet.
    pub fn embedded() -> Catalogue {
        // The embedded file is checked by this crate's tests; a failure here is a build defect.
        Catalogue::from_toml(EMBEDDED, "embedded").expect("the embedded catalogue is valid")
    }

    /// Reads and checks a catalogue. `source` names it in messages and reports.
    pub fn from_toml(text: &str, source: &str) -> Result<Catalogue, CatalogueError> {
        let file: File = toml::from_str(text).map_err(|e| CatalogueError::Parse {
            source_name: source.to_owned(),
            detail: e.to_string().trim_end().replace('\n', " "),
        })?;
        let err = |case: &str, detail: String| CatalogueError::Case {
            source_name: source.to_owned(),
            case: case.to_owned(),
            detail,
        };
        let mut seen = HashSet::new();
        for case in &file.cases {
            if !valid_id(&case.id, case.area) {
                return Err(err(
                    &case.id,
                    format!(
                        "the id must be STET-{}-NNN for area {} (three digits)",
                        case.area.code(),
                        case.area
                    ),
                ));
            }
            if !seen.insert(case.id.clone()) {
                return Err(err(&case.id, "the id is used twice".to_owned()));
            }
            if crate::checks::lookup(&case.check).is_none() {
                return Err(err(
                    &case.id,
                    format!(
                        "unknown check `{}`; the checks are: {}",
                        case.check,
                        crate::checks::names().join(", ")
                    ),
                ));
            }
            if case.dialects.is_empty() {
                return Err(err(&case.id, "`dialects` is empty".to_owned()));
            }
            if let Some(d) = case
                .dialects
                .iter()
                .find(|d| !matches!(d.as_str(), "1.4" | "1.5" | "1.6"))
            {
                return Err(err(
                    &case.id,
                    format!("unknown dialect `{d}`: write 1.4, 1.5 or 1.6"),
                ));
            }
            if case.title.trim().is_empty() {
                return Err(err(&case.id, "`title` is empty".to_owned()));
            }
        }
        Ok(Catalogue {
            version: file.version,
            sha256: hex(&Sha256::digest(text.as_bytes())),
            source: source.to_owned(),
            text: text.to_owned(),
            cases: file.cases,
        })
    }

    /// The cases `only` names (ids, area names or area codes, any case), in catalogue order;
    /// every case when `only` is empty.
    pub fn select(&self, only: &[String]) -> Result<Vec<&Case>, CatalogueError> {
        if only.is_empty() {
            return Ok(self.cases.iter().collect());
        }
        for name in only {
            if !self.cases.iter().any(|c| names(c, name)) {
                return Err(CatalogueError::UnknownSelection(name.clone()));
            }
        }
        Ok(self
            .cases
            .iter()
            .filter(|c| only.iter().any(|n| names(c, n)))
            .collect())
    }

    /// The case with this id.
    pub fn get(&self, id: &str) -> Option<&Case> {
        self.cases.iter().find(|c| c.id.eq_ignore_ascii_case(id))
    }
}

/// Whether `name` (from `--only`) designates `case`: its id, its area, or its area code.
pub(crate) fn names(case: &Case, name: &str) -> bool {
    case.id.eq_ignore_ascii_case(name)
        || case.area.name().eq_ignore_ascii_case(name)
        || case.area.code().eq_ignore_ascii_case(name)
        || format!("STET-{}", case.area.code()).eq_ignore_ascii_case(name)
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_catalogue_is_valid_and_every_case_names_its_fault() {
        let c = Catalogue::embedded();
        assert!(c.cases.len() >= 35, "{}", c.cases.len());
        for case in &c.cases {
            assert!(case.fault.is_some(), "{} names no fault", case.id);
        }
        assert_eq!(c.source, "embedded");
        assert_eq!(c.sha256.len(), 64);
    }

    #[test]
    fn selections_by_id_area_and_code() {
        let c = Catalogue::embedded();
        let ids = |only: &[&str]| -> Vec<String> {
            let only: Vec<String> = only.iter().map(|s| (*s).to_owned()).collect();
            c.select(&only)
                .unwrap()
                .iter()
                .map(|c| c.id.clone())
                .collect()
        };
        assert_eq!(ids(&["stet-sig-004"]), ["STET-SIG-004"]);
        assert_eq!(ids(&["transport"]), ["STET-TLS-001", "STET-TLS-002"]);
        assert_eq!(ids(&["BUD"]), ["STET-BUD-001"]);
        assert!(ids(&["STET-PIS"]).len() == 4);
        let e = c.select(&["nope".to_owned()]).unwrap_err().to_string();
        assert!(e.contains("`nope` is neither a case id nor an area"), "{e}");
    }

    #[test]
    fn bad_catalogues_say_what_is_wrong() {
        let case = |extra: &str| {
            format!(
                "version = \"1\"\n[[case]]\nid = \"STET-SIG-001\"\ntitle = \"t\"\narea = \"signature\"\n\
                 clause = \"c\"\ndialects = [\"1.5\"]\nseverity = \"mandatory\"\ncheck = \"signature.missing\"\n{extra}"
            )
        };
        assert!(Catalogue::from_toml(&case(""), "x.toml").is_ok());
        for (text, needle) in [
            (case("colour = \"red\""), "unknown field `colour`"),
            (
                case("").replace("signature.missing", "signature.nope"),
                "unknown check `signature.nope`",
            ),
            (
                case("").replace("STET-SIG-001", "STET-TLS-001"),
                "must be STET-SIG-NNN",
            ),
            (
                case("").replace("[\"1.5\"]", "[\"2.0\"]"),
                "unknown dialect `2.0`",
            ),
            (
                format!(
                    "{}\n{}",
                    case(""),
                    case("").replace("version = \"1\"\n", "")
                ),
                "used twice",
            ),
            ("not toml [".to_owned(), "catalogue x.toml"),
        ] {
            let e = Catalogue::from_toml(&text, "x.toml")
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }
}
