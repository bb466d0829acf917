//! Faults on demand: a small, reproducible spec of what goes wrong and when.
//!
//! The syntax, the counting rules and examples are in the crate manual.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::server::Reply;

/// One fault of a [`Faults`] spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Every `every`-th API request is answered `429 Too Many Requests` with `Retry-After`.
    TooManyRequests {
        /// The period, in API requests.
        every: u64,
        /// The `Retry-After` value, in seconds.
        retry_after: u64,
    },
    /// Every `every`-th API request starts a burst of `burst` consecutive `503` answers.
    Unavailable {
        /// The period, in API requests.
        every: u64,
        /// How many requests in a row get 503.
        burst: u64,
    },
    /// Every `every`-th API response is cut: the status line, headers and part of the body are
    /// sent, then the connection is closed.
    Drop {
        /// The period, in API requests.
        every: u64,
    },
    /// Every `every`-th API response waits `delay` before it is sent.
    Slow {
        /// The period, in API requests.
        every: u64,
        /// The delay.
        delay: Duration,
    },
    /// Each access token expires after it has been used `after` times, whatever its lifetime.
    ExpireToken {
        /// Uses before expiry.
        after: u64,
    },
    /// The PSU's consent (an authorization-code token and its refresh token) is revoked after
    /// `after` API calls made with it.
    Revoke {
        /// Calls before revocation.
        after: u64,
    },
    /// Every `every`-th API response ends early but cleanly: half of the JSON, with a
    /// `Content-Length` that matches, as from a front end that cut a buffer.
    Truncate {
        /// The period, in API requests.
        every: u64,
    },
    /// Every `every`-th API response is an HTML page served as `text/html` with status 200, as
    /// from a gateway's maintenance or login page in front of the API.
    ContentType {
        /// The period, in API requests.
        every: u64,
    },
    /// Every `every`-th API response is a body of `mib` MiB without `Content-Length`, made as
    /// it is sent (the sandbox never holds it): a bank or proxy gone wrong.
    HugeBody {
        /// The period, in API requests.
        every: u64,
        /// The size of the body, in MiB.
        mib: u64,
    },
    /// Every `every`-th API response has its `_links.next` pointing at another host.
    ForeignNext {
        /// The period, in API requests.
        every: u64,
    },
    /// Every `every`-th API request is answered `400` with an `ErrorModel` that has no fields
    /// (`{}`): no status, no message, nothing to tell the PSU.
    ErrorModelEmpty {
        /// The period, in API requests.
        every: u64,
    },
    /// The token endpoint answers every request with `302 Found` to another host.
    TokenRedirect,
    /// One rule of the standard broken, for a conformance check to catch
    /// ([`crate::check_faults`]).
    Check(crate::check_faults::CheckFault),
}

/// A whole faults spec: the faults in the order given. Empty means no faults.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Faults(pub Vec<Fault>);

/// Why a faults spec does not parse. The message names the faulty part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("faults spec `{part}`: {reason}")]
pub struct FaultsError {
    /// The comma-separated part that is wrong.
    pub part: String,
    /// What is wrong with it.
    pub reason: String,
}

impl FromStr for Faults {
    type Err = FaultsError;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let mut faults = Vec::new();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let err = |reason: String| FaultsError {
                part: part.to_owned(),
                reason,
            };
            if let Some(fault) = crate::check_faults::CheckFault::parse(part).map_err(err)? {
                faults.push(Fault::Check(fault));
                continue;
            }
            let mut pieces = part.split(':');
            let kind = pieces.next().unwrap_or_default();
            let mut params: Vec<(&str, u64)> = Vec::new();
            for piece in pieces {
                let (key, value) = piece
                    .split_once('=')
                    .ok_or_else(|| err(format!("`{piece}` is not `key=value`")))?;
                let value: u64 = value
                    .parse()
                    .map_err(|_| err(format!("`{value}` is not a whole number")))?;
                if params.iter().any(|(k, _)| *k == key) {
                    return Err(err(format!("`{key}` is given twice")));
                }
                params.push((key, value));
            }
            let allowed: &[&str] = match kind {
                "429" => &["every", "retry-after"],
                "503" => &["every", "burst"],
                "drop" => &["every"],
                "slow" => &["every", "ms"],
                "expire-token" | "revoke" => &["after"],
                "truncate" | "content-type" | "foreign-next" | "error-model-empty" => &["every"],
                "huge-body" => &["every", "mib"],
                "token-redirect" => &[],
                other => {
                    return Err(err(format!(
                        "unknown fault `{other}`: expected 429, 503, drop, slow, expire-token, \
                         revoke, truncate, content-type, huge-body, foreign-next, \
                         error-model-empty, token-redirect, or a conformance check's fault \
                         (see the sandbox manual)"
                    )));
                }
            };
            if let Some((key, _)) = params.iter().find(|(k, _)| !allowed.contains(k)) {
                return Err(err(format!(
                    "`{key}` does not apply to `{kind}` (it takes {})",
                    allowed.join(", ")
                )));
            }
            let get = |key: &str| params.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
            let required = |key: &str| {
                let v = get(key).ok_or_else(|| err(format!("`{key}=N` is required")))?;
                if v == 0 {
                    return Err(err(format!("`{key}` must be at least 1")));
                }
                Ok(v)
            };
            faults.push(match kind {
                "429" => Fault::TooManyRequests {
                    every: required("every")?,
                    retry_after: get("retry-after").unwrap_or(1),
                },
                "503" => Fault::Unavailable {
                    every: required("every")?,
                    burst: get("burst").unwrap_or(1).max(1),
                },
                "drop" => Fault::Drop {
                    every: required("every")?,
                },
                "slow" => Fault::Slow {
                    every: required("every")?,
                    delay: Duration::from_millis(required("ms")?),
                },
                "expire-token" => Fault::ExpireToken {
                    after: required("after")?,
                },
                "revoke" => Fault::Revoke {
                    after: required("after")?,
                },
                "truncate" => Fault::Truncate {
                    every: required("every")?,
                },
                "content-type" => Fault::ContentType {
                    every: required("every")?,
                },
                "huge-body" => Fault::HugeBody {
                    every: required("every")?,
                    mib: required("mib")?,
                },
                "foreign-next" => Fault::ForeignNext {
                    every: required("every")?,
                },
                "error-model-empty" => Fault::ErrorModelEmpty {
                    every: required("every")?,
                },
                _ => Fault::TokenRedirect,
            });
        }
        Ok(Faults(faults))
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::TooManyRequests { every, retry_after } => {
                write!(f, "429:every={every}:retry-after={retry_after}")
            }
            Fault::Unavailable { every, burst } => write!(f, "503:every={every}:burst={burst}"),
            Fault::Drop { every } => write!(f, "drop:every={every}"),
            Fault::Slow { every, delay } => {
                write!(f, "slow:every={every}:ms={}", delay.as_millis())
            }
            Fault::ExpireToken { after } => write!(f, "expire-token:after={after}"),
            Fault::Revoke { after } => write!(f, "revoke:after={after}"),
            Fault::Truncate { every } => write!(f, "truncate:every={every}"),
            Fault::ContentType { every } => write!(f, "content-type:every={every}"),
            Fault::HugeBody { every, mib } => write!(f, "huge-body:every={every}:mib={mib}"),
            Fault::ForeignNext { every } => write!(f, "foreign-next:every={every}"),
            Fault::ErrorModelEmpty { every } => write!(f, "error-model-empty:every={every}"),
            Fault::TokenRedirect => f.write_str("token-redirect"),
            Fault::Check(fault) => write!(f, "{fault}"),
        }
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, fault) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{fault}")?;
        }
        Ok(())
    }
}

/// What the faults decide for the `n`-th API request (1-based).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Decision {
    /// Answer 429 with this Retry-After.
    pub(crate) too_many: Option<u64>,
    /// Answer 503.
    pub(crate) unavailable: bool,
    /// Cut the response.
    pub(crate) drop: bool,
    /// Delay the response.
    pub(crate) delay: Option<Duration>,
    /// Send half the body, with a matching `Content-Length`.
    pub(crate) truncate: bool,
    /// Send an HTML page as `text/html` instead.
    pub(crate) html: bool,
    /// Send a body of this many bytes instead, made as it goes.
    pub(crate) huge: Option<u64>,
    /// Point `_links.next` at another host.
    pub(crate) foreign_next: bool,
    /// Answer 400 with `{}`.
    pub(crate) empty_error: bool,
}

impl Faults {
    /// The decision for the `n`-th API request (1-based).
    pub(crate) fn decide(&self, n: u64) -> Decision {
        let mut d = Decision::default();
        for fault in &self.0 {
            match *fault {
                Fault::TooManyRequests { every, retry_after } if n.is_multiple_of(every) => {
                    d.too_many = Some(retry_after);
                }
                Fault::Unavailable { every, burst } => {
                    // Requests every·k, every·k+1, …, every·k+burst-1 (k ≥ 1).
                    let k = n / every;
                    if k >= 1 && n - k * every < burst {
                        d.unavailable = true;
                    }
                }
                Fault::Drop { every } if n.is_multiple_of(every) => d.drop = true,
                Fault::Slow { every, delay } if n.is_multiple_of(every) => d.delay = Some(delay),
                Fault::Truncate { every } if n.is_multiple_of(every) => d.truncate = true,
                Fault::ContentType { every } if n.is_multiple_of(every) => d.html = true,
                Fault::HugeBody { every, mib } if n.is_multiple_of(every) => {
                    d.huge = Some(mib.saturating_mul(1024 * 1024));
                }
                Fault::ForeignNext { every } if n.is_multiple_of(every) => d.foreign_next = true,
                Fault::ErrorModelEmpty { every } if n.is_multiple_of(every) => {
                    d.empty_error = true;
                }
                _ => {}
            }
        }
        d
    }

    /// The answer of the token endpoint when `token-redirect` is on: a redirect to another
    /// host, which a client must not follow (it would carry the client's credentials there).
    pub(crate) fn token_redirect(&self) -> Option<Reply> {
        self.0
            .contains(&Fault::TokenRedirect)
            .then(|| Reply::new(302).with_header("Location", FOREIGN_TOKEN_URL))
    }

    /// Uses after which an access token expires, if that fault is on.
    pub(crate) fn token_uses(&self) -> Option<u64> {
        self.0.iter().find_map(|f| match f {
            Fault::ExpireToken { after } => Some(*after),
            _ => None,
        })
    }

    /// Calls after which a PSU consent is revoked, if that fault is on.
    pub(crate) fn revoke_after(&self) -> Option<u64> {
        self.0.iter().find_map(|f| match f {
            Fault::Revoke { after } => Some(*after),
            _ => None,
        })
    }
}

/// Where `token-redirect` sends token calls: a host that is not the bank's.
const FOREIGN_TOKEN_URL: &str = "https://elsewhere.example/token";
/// Where `foreign-next` points `_links.next`.
const FOREIGN_HOST: &str = "https://elsewhere.example";
/// The page `content-type` serves, as a gateway's maintenance page.
const MAINTENANCE_PAGE: &str = "<!DOCTYPE html>\n<html><head><title>Maintenance</title></head>\
<body><h1>Service under maintenance</h1><p>Please come back later.</p></body></html>\n";

impl Decision {
    /// Applies the faults that change the answer itself, after it was made.
    pub(crate) fn apply(&self, reply: &mut Reply) {
        reply.cut = self.drop;
        if self.empty_error {
            *reply = Reply::json(400, b"{}".to_vec());
            return;
        }
        if self.foreign_next {
            foreign_next(reply);
        }
        if self.truncate {
            let half = reply.body.len() / 2;
            reply.body.truncate(half);
        }
        if self.html {
            reply
                .headers
                .retain(|(n, _)| !n.eq_ignore_ascii_case("content-type"));
            reply.status = 200;
            reply.body = MAINTENANCE_PAGE.as_bytes().to_vec();
            reply.headers.push((
                "Content-Type".to_owned(),
                "text/html; charset=utf-8".to_owned(),
            ));
        }
        if let Some(bytes) = self.huge {
            reply.body.clear();
            reply.generated = Some(bytes);
        }
    }
}

/// Moves `_links.next` (when the page has one) to another host, path and query kept.
fn foreign_next(reply: &mut Reply) {
    let Ok(mut page) = serde_json::from_slice::<serde_json::Value>(&reply.body) else {
        return;
    };
    let Some(href) = page
        .pointer_mut("/_links/next/href")
        .and_then(|h| h.as_str().map(str::to_owned))
    else {
        return;
    };
    // Absolute, absolute-path or relative: keep what follows the authority, or the whole.
    let tail = match href.split_once("://") {
        Some((_, rest)) => rest
            .find('/')
            .map(|i| rest[i..].to_owned())
            .unwrap_or_default(),
        None if href.starts_with('/') => href,
        None => format!("/{href}"),
    };
    page["_links"]["next"]["href"] = serde_json::Value::String(format!("{FOREIGN_HOST}{tail}"));
    reply.body = page.to_string().into_bytes();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_the_documented_example() {
        let spec = "429:every=7:retry-after=1,503:every=50:burst=3,drop:every=40,slow:every=30:ms=2500,expire-token:after=20,revoke:after=100";
        let faults: Faults = spec.parse().unwrap();
        assert_eq!(faults.0.len(), 6);
        assert_eq!(faults.to_string(), spec);
        assert_eq!("".parse::<Faults>().unwrap(), Faults::default());
    }

    #[test]
    fn answer_faults_parse_print_and_apply() {
        let spec = "truncate:every=2,content-type:every=3,huge-body:every=5:mib=300,foreign-next:every=7,error-model-empty:every=11,token-redirect";
        let faults: Faults = spec.parse().unwrap();
        assert_eq!(faults.0.len(), 6);
        assert_eq!(faults.to_string(), spec);
        assert!(faults.token_redirect().is_some());
        assert!(Faults::default().token_redirect().is_none());
        assert!(faults.decide(2).truncate && !faults.decide(3).truncate);
        assert!(faults.decide(3).html);
        assert_eq!(faults.decide(5).huge, Some(300 * 1024 * 1024));
        assert!(faults.decide(7).foreign_next);
        assert!(faults.decide(11).empty_error);

        let page = br#"{"accounts":[],"_links":{"next":{"href":"https://127.0.0.1:8443/stet/psd2/v1.5/accounts?page=2"}}}"#;
        let answer = |d: &Decision| {
            let mut reply = Reply::json(200, page.to_vec());
            d.apply(&mut reply);
            reply
        };
        let cut = answer(&faults.decide(2));
        assert_eq!(cut.body, page[..page.len() / 2]);
        let html = answer(&faults.decide(3));
        assert!(html.body.starts_with(b"<!DOCTYPE html>"));
        assert!(
            html.headers
                .iter()
                .any(|(n, v)| n == "Content-Type" && v.starts_with("text/html"))
        );
        assert!(!html.headers.iter().any(|(_, v)| v.contains("json")));
        let huge = answer(&faults.decide(5));
        assert_eq!(
            (huge.body.len(), huge.generated),
            (0, Some(300 * 1024 * 1024))
        );
        let foreign = answer(&faults.decide(7));
        let json: serde_json::Value = serde_json::from_slice(&foreign.body).unwrap();
        assert_eq!(
            json["_links"]["next"]["href"],
            "https://elsewhere.example/stet/psd2/v1.5/accounts?page=2"
        );
        let empty = answer(&faults.decide(11));
        assert_eq!(
            (empty.status, empty.body.as_slice()),
            (400, b"{}".as_slice())
        );
        // Request 1 is faultless: the answer is untouched.
        assert_eq!(answer(&faults.decide(1)).body, page);
    }

    #[test]
    fn errors_name_the_part() {
        for (spec, needle) in [
            ("418:every=2", "unknown fault `418`"),
            ("429", "`every=N` is required"),
            ("429:every=0", "at least 1"),
            ("429:every=x", "not a whole number"),
            ("drop:every=2:ms=3", "`ms` does not apply to `drop`"),
            ("slow:every=2", "`ms=N` is required"),
            ("drop:every", "not `key=value`"),
            ("drop:every=1:every=2", "given twice"),
            ("huge-body:every=1", "`mib=N` is required"),
            (
                "token-redirect:every=1",
                "`every` does not apply to `token-redirect`",
            ),
        ] {
            let e = spec.parse::<Faults>().unwrap_err().to_string();
            assert!(e.contains(needle), "{spec}: {e}");
        }
    }

    #[test]
    fn decisions_follow_the_counts() {
        let f: Faults = "429:every=3,503:every=10:burst=2,drop:every=4,slow:every=5:ms=7"
            .parse()
            .unwrap();
        let hits = |pred: &dyn Fn(&Decision) -> bool| -> Vec<u64> {
            (1..=21).filter(|n| pred(&f.decide(*n))).collect()
        };
        assert_eq!(hits(&|d| d.too_many.is_some()), [3, 6, 9, 12, 15, 18, 21]);
        assert_eq!(hits(&|d| d.unavailable), [10, 11, 20, 21]);
        assert_eq!(hits(&|d| d.drop), [4, 8, 12, 16, 20]);
        assert_eq!(hits(&|d| d.delay.is_some()), [5, 10, 15, 20]);
    }
}
