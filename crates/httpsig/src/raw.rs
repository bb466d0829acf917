//! Raw HTTP/1.1 requests as text: the format `stet sig` reads and prints.
//!
//! A raw request is a request line, header lines, an empty line and the body, with CRLF or bare
//! LF line ends (files edited by hand usually have LF). The parser is strict where a lenient
//! reading would sign something other than what is sent: obsolete folded headers, whitespace
//! before a colon, non-ASCII targets and chunked bodies are refused with a reason.

use crate::message::{Request, is_token};

/// Why a raw request could not be read. Each message says where the problem is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RawRequestError {
    /// The input holds nothing but blank lines.
    #[error("the request is empty: expected a request line such as `GET /v1/accounts HTTP/1.1`")]
    Empty,
    /// The header section never ends with an empty line.
    #[error("the headers never end: add an empty line after the last header (before any body)")]
    UnterminatedHeaders,
    /// A line is not UTF-8 text.
    #[error("line {line} is not valid UTF-8 text")]
    NotText {
        /// 1-based line number.
        line: usize,
    },
    /// The request line is not `METHOD TARGET HTTP/1.x`.
    #[error("line {line}: the request line must be `METHOD TARGET HTTP/1.1`, found `{found}`")]
    BadRequestLine {
        /// 1-based line number.
        line: usize,
        /// The line as read.
        found: String,
    },
    /// The method is not an HTTP token.
    #[error("line {line}: `{method}` is not a valid HTTP method")]
    BadMethod {
        /// 1-based line number.
        line: usize,
        /// The method as read.
        method: String,
    },
    /// The target is not in origin form or holds characters that must be percent-encoded.
    #[error(
        "line {line}: the request target `{target}` must be a path starting with `/`, \
         percent-encoded (no spaces, controls or non-ASCII characters)"
    )]
    BadTarget {
        /// 1-based line number.
        line: usize,
        /// The target as read.
        target: String,
    },
    /// The protocol version is not HTTP/1.0 or HTTP/1.1.
    #[error("line {line}: unsupported protocol `{version}`: stet reads HTTP/1.1 requests")]
    BadVersion {
        /// 1-based line number.
        line: usize,
        /// The version as read.
        version: String,
    },
    /// A header line has no colon, or its name is not a token.
    #[error("line {line}: `{found}` is not a header line (`Name: value`)")]
    BadHeaderLine {
        /// 1-based line number.
        line: usize,
        /// The line as read.
        found: String,
    },
    /// A header line starts with whitespace (obsolete line folding).
    #[error("line {line}: folded header lines are obsolete (RFC 9112): put the value on one line")]
    FoldedHeader {
        /// 1-based line number.
        line: usize,
    },
    /// A header value holds a control character.
    #[error("line {line}: the value of `{name}` holds a control character")]
    BadHeaderValue {
        /// 1-based line number.
        line: usize,
        /// The header name.
        name: String,
    },
    /// `Content-Length` is not a number, or several disagree.
    #[error("Content-Length `{found}` is not a single whole number")]
    BadContentLength {
        /// The value(s) as read.
        found: String,
    },
    /// The body is shorter or longer than `Content-Length` says.
    #[error(
        "the body is {actual} bytes but Content-Length says {declared}: fix the header, \
         or remove it to sign the body as it is"
    )]
    ContentLengthMismatch {
        /// The value of Content-Length.
        declared: usize,
        /// The bytes found after the empty line.
        actual: usize,
    },
    /// The request uses `Transfer-Encoding`.
    #[error(
        "Transfer-Encoding `{found}` is not supported: give the body as is, with a Content-Length"
    )]
    TransferEncoding {
        /// The header value.
        found: String,
    },
}

/// Reads a raw HTTP/1.1 request.
///
/// The body is every byte after the empty line. When `Content-Length` is present it must match,
/// except that one trailing line end left by an editor (`\n` or `\r\n`) after a body of the
/// declared length is dropped.
pub fn parse_request(input: &[u8]) -> Result<Request, RawRequestError> {
    let mut lines = Lines {
        input,
        pos: 0,
        number: 0,
    };

    // RFC 9112 §2.2: a server should ignore empty lines before the request line.
    let request_line = loop {
        match lines.next_line() {
            None => return Err(RawRequestError::Empty),
            Some(([], _)) => continue,
            Some((l, _)) => break l,
        }
    };
    let line = lines.number;
    let request_line = text(request_line, line)?;
    let parts: Vec<&str> = request_line.split(' ').collect();
    let [method, target, version] = parts[..] else {
        return Err(RawRequestError::BadRequestLine {
            line,
            found: request_line.to_owned(),
        });
    };
    if !is_token(method) {
        return Err(RawRequestError::BadMethod {
            line,
            method: method.to_owned(),
        });
    }
    if !target.starts_with('/') || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(RawRequestError::BadTarget {
            line,
            target: target.to_owned(),
        });
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(RawRequestError::BadVersion {
            line,
            version: version.to_owned(),
        });
    }
    let mut request = Request::new(method, target);

    loop {
        let Some((raw, true)) = lines.next_line() else {
            return Err(RawRequestError::UnterminatedHeaders);
        };
        let line = lines.number;
        if raw.is_empty() {
            break;
        }
        if raw[0] == b' ' || raw[0] == b'\t' {
            return Err(RawRequestError::FoldedHeader { line });
        }
        let raw = text(raw, line)?;
        let Some((name, value)) = raw.split_once(':') else {
            return Err(RawRequestError::BadHeaderLine {
                line,
                found: raw.to_owned(),
            });
        };
        if !is_token(name) {
            return Err(RawRequestError::BadHeaderLine {
                line,
                found: raw.to_owned(),
            });
        }
        let value = value.trim_matches([' ', '\t']);
        if value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(RawRequestError::BadHeaderValue {
                line,
                name: name.to_owned(),
            });
        }
        request.append_header(name, value);
    }

    if let Some(te) = request.header("transfer-encoding") {
        return Err(RawRequestError::TransferEncoding { found: te });
    }
    let mut body = &input[lines.pos..];
    if let Some(declared) = content_length(&request)? {
        if body.len() > declared {
            let extra = &body[declared..];
            if extra == b"\n" || extra == b"\r\n" {
                body = &body[..declared];
            }
        }
        if body.len() != declared {
            return Err(RawRequestError::ContentLengthMismatch {
                declared,
                actual: body.len(),
            });
        }
    }
    request.set_body(body);
    Ok(request)
}

/// Writes a request as it goes on the wire: CRLF line ends, headers in order, then the body.
pub fn write_request(request: &Request) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + request.body().len());
    out.extend_from_slice(request.method().as_bytes());
    out.push(b' ');
    out.extend_from_slice(request.target().as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in request.headers() {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(request.body());
    out
}

fn content_length(request: &Request) -> Result<Option<usize>, RawRequestError> {
    let mut found: Option<usize> = None;
    for value in request.header_values("content-length") {
        let bad = || RawRequestError::BadContentLength {
            found: request.header("content-length").unwrap_or_default(),
        };
        let value = value.trim();
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let n: usize = value.parse().map_err(|_| bad())?;
        if found.is_some_and(|f| f != n) {
            return Err(bad());
        }
        found = Some(n);
    }
    Ok(found)
}

fn text(line: &[u8], number: usize) -> Result<&str, RawRequestError> {
    std::str::from_utf8(line).map_err(|_| RawRequestError::NotText { line: number })
}

/// Splits the header section into lines, CRLF or LF, remembering where the body starts.
struct Lines<'a> {
    input: &'a [u8],
    pos: usize,
    number: usize,
}

impl<'a> Lines<'a> {
    /// The next line without its line end, and whether it had one; `None` at the end of input.
    fn next_line(&mut self) -> Option<(&'a [u8], bool)> {
        let rest = &self.input[self.pos..];
        if rest.is_empty() {
            return None;
        }
        self.number += 1;
        match rest.iter().position(|&b| b == b'\n') {
            Some(end) => {
                self.pos += end + 1;
                let line = &rest[..end];
                Some((line.strip_suffix(b"\r").unwrap_or(line), true))
            }
            None => {
                self.pos = self.input.len();
                Some((rest, false))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_crlf_and_lf_alike() {
        let crlf = b"POST /foo?a=b HTTP/1.1\r\nHost: example.com\r\nContent-Length: 2\r\n\r\n{}";
        let lf = b"POST /foo?a=b HTTP/1.1\nHost: example.com\nContent-Length: 2\n\n{}";
        let a = parse_request(crlf).unwrap();
        let b = parse_request(lf).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.method(), "POST");
        assert_eq!(a.target(), "/foo?a=b");
        assert_eq!(a.header("host").as_deref(), Some("example.com"));
        assert_eq!(a.body(), b"{}");
    }

    #[test]
    fn drops_one_trailing_newline_after_a_declared_body() {
        let req = parse_request(b"POST / HTTP/1.1\nContent-Length: 2\n\n{}\n").unwrap();
        assert_eq!(req.body(), b"{}");
        let err = parse_request(b"POST / HTTP/1.1\nContent-Length: 2\n\n{}\n\n").unwrap_err();
        assert_eq!(
            err,
            RawRequestError::ContentLengthMismatch {
                declared: 2,
                actual: 4
            }
        );
    }

    #[test]
    fn without_content_length_the_body_is_every_byte() {
        let req = parse_request(b"POST / HTTP/1.1\nA: b\n\nabc\n").unwrap();
        assert_eq!(req.body(), b"abc\n");
        let req = parse_request(b"GET / HTTP/1.1\nA: b\n\n").unwrap();
        assert!(req.body().is_empty());
    }

    #[test]
    fn refuses_what_would_be_signed_wrongly() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty"),
            (b"\n\n", "empty"),
            (b"GET / HTTP/1.1\nHost: x\n", "never end"),
            (b"GET / HTTP/1.1\nHost: x", "never end"),
            (b"GET / HTTP/1.1", "never end"),
            (b"not http at all", "request line"),
            (b"GET /\n\n", "request line"),
            (b"GET  / HTTP/1.1\n\n", "request line"),
            (b"G(T / HTTP/1.1\n\n", "method"),
            (b"GET /a b HTTP/1.1\n\n", "request line"),
            (b"GET http://x/ HTTP/1.1\n\n", "must be a path"),
            ("GET /caf\u{e9} HTTP/1.1\n\n".as_bytes(), "must be a path"),
            (b"GET / HTTP/2\n\n", "unsupported protocol"),
            (b"GET / HTTP/1.1\nHost x\n\n", "not a header line"),
            (b"GET / HTTP/1.1\nHost : x\n\n", "not a header line"),
            (b"GET / HTTP/1.1\nA: b\n c\n\n", "folded"),
            (b"GET / HTTP/1.1\nA: b\x01c\n\n", "control character"),
            (b"GET / HTTP/1.1\nA: \xff\n\n", "UTF-8"),
            (b"POST / HTTP/1.1\nContent-Length: x\n\n", "whole number"),
            (
                b"POST / HTTP/1.1\nContent-Length: 1\nContent-Length: 2\n\n",
                "whole number",
            ),
            (
                b"POST / HTTP/1.1\nContent-Length: 5\n\nab",
                "Content-Length says 5",
            ),
            (
                b"POST / HTTP/1.1\nTransfer-Encoding: chunked\n\n0\r\n\r\n",
                "Transfer-Encoding",
            ),
        ];
        for (input, expected) in cases {
            let err = parse_request(input).unwrap_err().to_string();
            assert!(
                err.contains(expected),
                "{:?}: `{err}` should mention `{expected}`",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn writes_what_it_reads() {
        let input =
            b"PUT /v1/consents?x=%20 HTTP/1.1\r\nHost: bank:8443\r\nA: 1\r\na: 2\r\n\r\nbody";
        let req = parse_request(input).unwrap();
        assert_eq!(write_request(&req), input);
    }
}
