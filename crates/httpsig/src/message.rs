//! An HTTP request as data: what a signature covers, and nothing about how it is sent.

use std::fmt;

/// An HTTP request as it goes on the wire: method, request target, headers in order, body bytes.
///
/// Header names keep the case they were given (they are lowercased only inside signing
/// strings); several headers of one name stay separate entries, in order, because the signing
/// string joins them with `", "` in wire order.
///
/// `Debug` redacts the values of `Authorization`, `Signature` and `Cookie`, so that a request can
/// be logged without leaking a token or a signature.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    /// A request with no headers and no body. `target` is the request target exactly as on the
    /// wire: the percent-encoded path and query, such as `/v1/accounts?page=2`.
    pub fn new(method: impl Into<String>, target: impl Into<String>) -> Self {
        Request {
            method: method.into(),
            target: target.into(),
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header after the existing ones (builder style).
    #[must_use]
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.append_header(name, value);
        self
    }

    /// Sets the body (builder style).
    #[must_use]
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// The method, as given (`GET`, `POST`, …).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request target as on the wire: encoded path and query.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Every header in order, as `(name, value)` pairs.
    pub fn headers(&self) -> &[(String, String)] {
        &self.headers
    }

    /// The body bytes, exactly as sent.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// Replaces the body.
    pub fn set_body(&mut self, body: impl Into<Vec<u8>>) {
        self.body = body.into();
    }

    /// The values of every header named `name` (case-insensitive), in wire order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The value of the header `name` as a signature sees it: each value trimmed of surrounding
    /// spaces and tabs, several values joined with `", "`. `None` when the request has no such
    /// header (an empty header is `Some("")`).
    pub fn header(&self, name: &str) -> Option<String> {
        let mut values = self
            .header_values(name)
            .map(|v| v.trim_matches([' ', '\t']));
        let first = values.next()?;
        let mut joined = first.to_owned();
        for v in values {
            joined.push_str(", ");
            joined.push_str(v);
        }
        Some(joined)
    }

    /// Whether the request has at least one header named `name` (case-insensitive).
    pub fn has_header(&self, name: &str) -> bool {
        self.header_values(name).next().is_some()
    }

    /// Adds a header after the existing ones, keeping any of the same name.
    pub fn append_header(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.headers.push((name.into(), value.into()));
    }

    /// Sets `name` to a single `value`: the first header of that name is replaced in place, later
    /// ones removed; when there is none, the header is appended.
    pub fn set_header(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self
            .headers
            .iter()
            .position(|(n, _)| n.eq_ignore_ascii_case(&name))
        {
            Some(i) => {
                self.headers[i].1 = value;
                let mut seen = 0usize;
                self.headers.retain(|(n, _)| {
                    if n.eq_ignore_ascii_case(&name) {
                        seen += 1;
                        seen == 1
                    } else {
                        true
                    }
                });
            }
            None => self.headers.push((name, value)),
        }
    }

    /// Removes every header named `name`; returns how many there were.
    pub fn remove_header(&mut self, name: &str) -> usize {
        let before = self.headers.len();
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        before - self.headers.len()
    }
}

/// Header names whose values are secrets and never appear in `Debug` output.
pub(crate) fn is_secret_header(name: &str) -> bool {
    [
        "authorization",
        "signature",
        "cookie",
        "proxy-authorization",
    ]
    .iter()
    .any(|s| name.eq_ignore_ascii_case(s))
}

impl fmt::Debug for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Headers<'a>(&'a [(String, String)]);
        impl fmt::Debug for Headers<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list()
                    .entries(self.0.iter().map(|(n, v)| {
                        let v = if is_secret_header(n) { "<redacted>" } else { v };
                        format!("{n}: {v}")
                    }))
                    .finish()
            }
        }
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("target", &self.target)
            .field("headers", &Headers(&self.headers))
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// Whether `s` is an HTTP token (RFC 9110 `tchar`s), as header names and methods must be.
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// Whether `b` is an RFC 9110 `tchar`. Works on bytes so that callers scanning untrusted text
/// never slice a `str` inside a multi-byte character.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// Whether `s` starts with `prefix`, ASCII case-insensitively, compared as bytes (slicing the
/// `str` could split a multi-byte character).
pub(crate) fn starts_with_ignore_case(s: &str, prefix: &str) -> bool {
    s.len() >= prefix.len() && s.as_bytes()[..prefix.len()].eq_ignore_ascii_case(prefix.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_several_values_in_wire_order_and_trims_them() {
        let req = Request::new("GET", "/")
            .with_header("X-Thing", " a ")
            .with_header("Other", "z")
            .with_header("x-thing", "b\t");
        assert_eq!(req.header("X-THING").as_deref(), Some("a, b"));
        assert_eq!(req.header("missing"), None);
    }

    #[test]
    fn an_empty_header_is_present() {
        let req = Request::new("GET", "/").with_header("X-Empty", "");
        assert_eq!(req.header("x-empty").as_deref(), Some(""));
    }

    #[test]
    fn set_header_replaces_in_place_and_drops_duplicates() {
        let mut req = Request::new("GET", "/")
            .with_header("A", "1")
            .with_header("Digest", "x")
            .with_header("B", "2")
            .with_header("digest", "y");
        req.set_header("Digest", "z");
        let names: Vec<_> = req
            .headers()
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        assert_eq!(names, ["A=1", "Digest=z", "B=2"]);
    }

    #[test]
    fn debug_redacts_secrets() {
        let req = Request::new("GET", "/")
            .with_header("Authorization", "Bearer canary-token")
            .with_header("Signature", "keyId=\"k\",signature=\"canary-sig\"");
        let shown = format!("{req:?}");
        assert!(!shown.contains("canary"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }
}
