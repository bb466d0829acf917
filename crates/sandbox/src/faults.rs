//! Faults on demand: a small, reproducible spec of what goes wrong and when.
//!
//! The syntax, the counting rules and examples are in the crate manual.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

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
                other => {
                    return Err(err(format!(
                        "unknown fault `{other}`: expected 429, 503, drop, slow, expire-token or revoke"
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
                _ => Fault::Revoke {
                    after: required("after")?,
                },
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
                _ => {}
            }
        }
        d
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
