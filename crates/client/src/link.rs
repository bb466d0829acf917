//! Resolving a bank's `_links` href to the URL to request: [`resolve_next_link`].
//!
//! Banks write `_links.next` in every form the web allows, and some it does not:
//!
//! | the bank writes | read as |
//! |---|---|
//! | `https://api.bank.example/stet/psd2/v1.5/accounts?page=2` | itself, if on the bank's origin |
//! | `/stet/psd2/v1.5/accounts?page=2` | a path on the bank's origin |
//! | `accounts?page=2`, `./accounts?page=2` | relative to the **API base**, not to the page |
//! | `v1.5/accounts?page=2`, `psd2/v1.5/accounts?page=2` | the same: the base's version prefix is not repeated |
//! | `?page=2` | the current page with another query |
//!
//! Relative hrefs are read against the API base rather than the current page (as RFC 3986
//! would): that is what STET banks mean, and reading `accounts/A1/transactions?page=2` against
//! `…/accounts/A1/transactions` would give `…/accounts/A1/accounts/A1/transactions`.
//!
//! An href on another origin (scheme, host and port) is refused: following it would send the
//! TPP's token and signature to someone else.

use stet_transport::origin;
use url::Url;

/// Why an href cannot be followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The href is empty.
    #[error("the link is empty")]
    Empty,
    /// The href points to another origin than the bank's API.
    #[error("it points to {found}, not to the bank's {expected}")]
    ForeignHost {
        /// The origin found.
        found: String,
        /// The bank's origin.
        expected: String,
    },
    /// The href is not something stet can follow.
    #[error("it is not a link stet can follow: {0}")]
    Invalid(String),
}

/// The URL a bank's `_links` href points to.
///
/// `api_base` is the STET base URL (`https://host/stet/psd2/v1.5/`, with or without the final
/// `/`), `current` the URL of the page the link was read from. See the module docs for the
/// forms accepted. Pure: no I/O, never panics, whatever `href` holds.
///
/// ```
/// use stet_client::resolve_next_link;
/// use url::Url;
///
/// let base = Url::parse("https://bank.example/stet/psd2/v1.5/").unwrap();
/// let page = base.join("accounts").unwrap();
/// for href in [
///     "https://bank.example/stet/psd2/v1.5/accounts?page=2",
///     "/stet/psd2/v1.5/accounts?page=2",
///     "accounts?page=2",
///     "./accounts?page=2",
///     "v1.5/accounts?page=2",
///     "?page=2",
/// ] {
///     let next = resolve_next_link(&base, &page, href).unwrap();
///     assert_eq!(next.as_str(), "https://bank.example/stet/psd2/v1.5/accounts?page=2");
/// }
/// assert!(resolve_next_link(&base, &page, "https://evil.example/accounts?page=2").is_err());
/// ```
pub fn resolve_next_link(api_base: &Url, current: &Url, href: &str) -> Result<Url, LinkError> {
    let href = href.trim_matches(|c: char| c == ' ');
    if href.is_empty() {
        return Err(LinkError::Empty);
    }
    // The URL parser silently drops tabs and newlines and would accept a backslash for a
    // slash; a link carrying them is not one a bank meant.
    if href
        .chars()
        .any(|c| c.is_control() || c == ' ' || c == '\\')
    {
        return Err(LinkError::Invalid(
            "it contains spaces, control characters or backslashes".to_owned(),
        ));
    }
    let mut base = api_base.clone();
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    base.set_query(None);
    base.set_fragment(None);
    let invalid = |e: url::ParseError| LinkError::Invalid(e.to_string());

    let mut url = if has_scheme(href) {
        Url::parse(href).map_err(invalid)?
    } else if href.starts_with('/') {
        // An absolute path, or `//host/...` (a network-path reference: checked below).
        base.join(href).map_err(invalid)?
    } else if href.starts_with('?') {
        current.join(href).map_err(invalid)?
    } else if href.starts_with('#') {
        return Err(LinkError::Invalid(
            "a fragment alone names no page".to_owned(),
        ));
    } else {
        let mut rel = href;
        while let Some(rest) = rel.strip_prefix("./") {
            rel = rest;
        }
        base.join(&without_repeated_prefix(&base, rel))
            .map_err(invalid)?
    };
    if !matches!(url.scheme(), "https" | "http") {
        return Err(LinkError::Invalid(format!(
            "scheme `{}` is not HTTP",
            url.scheme()
        )));
    }
    let (found, expected) = (origin(&url), origin(&base));
    if found != expected || !url.username().is_empty() || url.password().is_some() {
        return Err(LinkError::ForeignHost { found, expected });
    }
    url.set_fragment(None);
    Ok(url)
}

/// `scheme:` at the start (RFC 3986: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"), before
/// any `/`, `?` or `#`.
fn has_scheme(href: &str) -> bool {
    let Some(colon) = href.find(':') else {
        return false;
    };
    let scheme = &href[..colon];
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

/// A relative href that repeats the end of the base path (`v1.5/accounts` under
/// `/stet/psd2/v1.5/`) as an absolute path without the repetition; other hrefs as they are.
fn without_repeated_prefix(base: &Url, rel: &str) -> String {
    let base_segments: Vec<&str> = base.path().split('/').filter(|s| !s.is_empty()).collect();
    let path = rel.split(['?', '#']).next().unwrap_or_default();
    let rel_segments: Vec<&str> = path.split('/').collect();
    // The longest suffix of the base path that the href starts with.
    for k in (1..=base_segments
        .len()
        .min(rel_segments.len().saturating_sub(1)))
        .rev()
    {
        if base_segments[base_segments.len() - k..] == rel_segments[..k] {
            let parent = &base_segments[..base_segments.len() - k];
            return if parent.is_empty() {
                format!("/{rel}")
            } else {
                format!("/{}/{rel}", parent.join("/"))
            };
        }
    }
    rel.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://bank.example:8443/stet/psd2/v1.5/").unwrap()
    }

    fn next(href: &str) -> Result<String, LinkError> {
        let current = base().join("accounts/A1/transactions?dateFrom=x").unwrap();
        resolve_next_link(&base(), &current, href).map(|u| u.to_string())
    }

    const WANT: &str = "https://bank.example:8443/stet/psd2/v1.5/accounts/A1/transactions?page=2";

    #[test]
    fn every_form_banks_write() {
        for href in [
            "https://bank.example:8443/stet/psd2/v1.5/accounts/A1/transactions?page=2",
            "HTTPS://BANK.example:8443/stet/psd2/v1.5/accounts/A1/transactions?page=2#top",
            "/stet/psd2/v1.5/accounts/A1/transactions?page=2",
            "accounts/A1/transactions?page=2",
            "./accounts/A1/transactions?page=2",
            "././accounts/A1/transactions?page=2",
            "v1.5/accounts/A1/transactions?page=2",
            "psd2/v1.5/accounts/A1/transactions?page=2",
            "stet/psd2/v1.5/accounts/A1/transactions?page=2",
            "//bank.example:8443/stet/psd2/v1.5/accounts/A1/transactions?page=2",
        ] {
            assert_eq!(next(href).as_deref(), Ok(WANT), "{href}");
        }
    }

    #[test]
    fn a_query_alone_keeps_the_current_page() {
        assert_eq!(
            next("?page=2").unwrap(),
            "https://bank.example:8443/stet/psd2/v1.5/accounts/A1/transactions?page=2"
        );
    }

    #[test]
    fn base_without_trailing_slash_or_with_a_short_prefix() {
        let b = Url::parse("https://bank.example/v1").unwrap();
        let cur = b.join("v1/accounts").unwrap();
        for href in [
            "accounts?page=2",
            "v1/accounts?page=2",
            "/v1/accounts?page=2",
        ] {
            assert_eq!(
                resolve_next_link(&b, &cur, href).unwrap().as_str(),
                "https://bank.example/v1/accounts?page=2",
                "{href}"
            );
        }
        let root = Url::parse("https://bank.example/").unwrap();
        assert_eq!(
            resolve_next_link(&root, &root, "accounts?page=2")
                .unwrap()
                .as_str(),
            "https://bank.example/accounts?page=2"
        );
    }

    #[test]
    fn other_origins_are_refused() {
        for href in [
            "https://evil.example/stet/psd2/v1.5/accounts?page=2",
            "https://bank.example/stet/psd2/v1.5/accounts?page=2", // port 443, not 8443
            "http://bank.example:8443/stet/psd2/v1.5/accounts?page=2",
            "//evil.example/accounts",
            "https://user@bank.example:8443/stet/psd2/v1.5/accounts",
            "https://bank.example:8443@evil.example/accounts",
        ] {
            assert!(
                matches!(next(href), Err(LinkError::ForeignHost { .. })),
                "{href}: {:?}",
                next(href)
            );
        }
    }

    #[test]
    fn nonsense_is_an_error_not_a_panic() {
        for href in [
            "",
            "   ",
            "#top",
            "javascript:alert(1)",
            "file:///etc/passwd",
            "mailto:x@y",
            "accounts\n?page=2",
            "\\\\evil.example\\x",
            "https://",
            "https://[::1",
        ] {
            assert!(next(href).is_err(), "{href:?}: {:?}", next(href));
        }
    }

    #[test]
    fn resource_ids_with_colons_stay_paths() {
        assert_eq!(
            next("accounts/AB:12/transactions?page=2").unwrap(),
            "https://bank.example:8443/stet/psd2/v1.5/accounts/AB:12/transactions?page=2"
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_never_leaves_the_origin(href in "\\PC{0,80}") {
            if let Ok(url) = next(&href) {
                proptest::prop_assert_eq!(origin(&url.parse::<Url>().unwrap()), origin(&base()));
            }
        }

        #[test]
        fn ascii_links_never_leave_the_origin(href in "[a-z0-9:/?#.@%\\[\\]]{0,40}") {
            if let Ok(url) = next(&href) {
                proptest::prop_assert_eq!(origin(&url.parse::<Url>().unwrap()), origin(&base()));
            }
        }
    }
}
