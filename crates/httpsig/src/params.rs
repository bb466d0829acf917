//! The `Signature` header's parameters: formatting and a strict, tolerant parser.
//!
//! Tolerant of what real peers send: any parameter order, spaces around `,` and `=`, unknown
//! parameters (ignored), parameter names in any case, unquoted integers for `created` and
//! `expires`, and a stray `Signature ` prefix copied from the `Authorization` form. Strict where
//! ambiguity would let a signature mean two things: a duplicated parameter, a header listed
//! twice, an unterminated quote or bad base64 are errors.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The parameters of a `Signature` header.
#[derive(Clone, PartialEq, Eq)]
pub struct SignatureParams {
    /// `keyId`: which key the verifier should use.
    pub key_id: String,
    /// `algorithm`, when present (for STET: `rsa-sha256`).
    pub algorithm: Option<String>,
    /// `created`, a Unix time, when present (draft 11 and later).
    pub created: Option<i64>,
    /// `expires`, a Unix time, when present (draft 11 and later).
    pub expires: Option<i64>,
    /// `headers`, lowercased, in order. When the header omits the parameter this is the draft's
    /// default, `["date"]`.
    pub headers: Vec<String>,
    /// The decoded signature bytes.
    pub signature: Vec<u8>,
}

impl std::fmt::Debug for SignatureParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureParams")
            .field("key_id", &self.key_id)
            .field("algorithm", &self.algorithm)
            .field("created", &self.created)
            .field("expires", &self.expires)
            .field("headers", &self.headers)
            .field("signature", &"<redacted>")
            .finish()
    }
}

/// Why a `Signature` header could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureHeaderError {
    /// The value is empty.
    #[error("the Signature header is empty")]
    Empty,
    /// Something other than `name=value` where a parameter should start.
    #[error("Signature header: expected a parameter name at byte {at}")]
    ExpectedName {
        /// Byte offset in the header value.
        at: usize,
    },
    /// A parameter name without `=`.
    #[error("Signature header: parameter `{name}` has no `=value`")]
    ExpectedEquals {
        /// The parameter name.
        name: String,
    },
    /// A quoted value that never ends.
    #[error("Signature header: the value of `{name}` is missing its closing quote")]
    Unterminated {
        /// The parameter name.
        name: String,
    },
    /// Garbage after a value.
    #[error("Signature header: expected `,` after the value of `{name}`")]
    ExpectedComma {
        /// The parameter name.
        name: String,
    },
    /// A value that must be quoted was not.
    #[error("Signature header: the value of `{name}` must be a quoted string")]
    Unquoted {
        /// The parameter name.
        name: String,
    },
    /// A parameter given twice (draft 12 §2.2: ambiguous, must be refused).
    #[error("Signature header: parameter `{name}` appears more than once")]
    Duplicate {
        /// The parameter name.
        name: String,
    },
    /// A required parameter is absent.
    #[error("Signature header: the `{name}` parameter is missing")]
    Missing {
        /// The parameter name.
        name: &'static str,
    },
    /// `headers=""`.
    #[error("Signature header: `headers` is empty; list at least one header")]
    EmptyHeaders,
    /// A header named twice in `headers`.
    #[error("Signature header: `{name}` is listed twice in `headers`")]
    HeaderListedTwice {
        /// The header name.
        name: String,
    },
    /// `signature` is not base64.
    #[error("Signature header: `signature` is not valid base64")]
    BadBase64,
    /// `created` or `expires` is not an integer.
    #[error("Signature header: `{name}` must be a Unix time in whole seconds, found `{found}`")]
    BadTimestamp {
        /// The parameter name.
        name: &'static str,
        /// The value as read.
        found: String,
    },
}

impl SignatureParams {
    /// The header value: `keyId="…",algorithm="…",[created=…,expires=…,]headers="…",signature="…"`.
    ///
    /// `headers` is written even when it is the default `date`, so that no verifier has to guess.
    pub fn to_header_value(&self) -> String {
        let mut out = String::with_capacity(128 + self.signature.len() * 4 / 3);
        out.push_str("keyId=");
        push_quoted(&mut out, &self.key_id);
        if let Some(alg) = &self.algorithm {
            out.push_str(",algorithm=");
            push_quoted(&mut out, alg);
        }
        if let Some(created) = self.created {
            out.push_str(&format!(",created={created}"));
        }
        if let Some(expires) = self.expires {
            out.push_str(&format!(",expires={expires}"));
        }
        out.push_str(",headers=");
        push_quoted(&mut out, &self.headers.join(" "));
        out.push_str(",signature=\"");
        STANDARD.encode_string(&self.signature, &mut out);
        out.push('"');
        out
    }

    /// Reads a `Signature` header value.
    pub fn parse(value: &str) -> Result<Self, SignatureHeaderError> {
        let mut rest = value.trim_matches([' ', '\t']);
        if rest.is_empty() {
            return Err(SignatureHeaderError::Empty);
        }
        // Tolerate the `Authorization: Signature …` form pasted into the Signature header.
        if rest.len() > 10 && crate::message::starts_with_ignore_case(rest, "signature ") {
            // The 10 bytes just matched are ASCII, so byte 10 is a character boundary.
            rest = rest[10..].trim_start_matches([' ', '\t']);
        }
        let base = value.len() - rest.len();
        let raw = parse_pairs(rest, base)?;

        let mut key_id = None;
        let mut algorithm = None;
        let mut created = None;
        let mut expires = None;
        let mut headers = None;
        let mut signature = None;
        let mut seen: Vec<String> = Vec::new();
        for (name, value, quoted) in raw {
            let lower = name.to_ascii_lowercase();
            if seen.contains(&lower) {
                return Err(SignatureHeaderError::Duplicate { name });
            }
            seen.push(lower.clone());
            let needs_quotes = || {
                if quoted {
                    Ok(value.clone())
                } else {
                    Err(SignatureHeaderError::Unquoted { name: name.clone() })
                }
            };
            match lower.as_str() {
                "keyid" => key_id = Some(needs_quotes()?),
                "algorithm" => algorithm = Some(needs_quotes()?),
                "headers" => headers = Some(needs_quotes()?),
                "signature" => signature = Some(needs_quotes()?),
                "created" => created = Some(timestamp("created", &value)?),
                "expires" => expires = Some(timestamp("expires", &value)?),
                _ => {} // unknown parameters are ignored (draft 12 §2.2)
            }
        }

        let key_id = key_id.ok_or(SignatureHeaderError::Missing { name: "keyId" })?;
        let signature = signature.ok_or(SignatureHeaderError::Missing { name: "signature" })?;
        let signature = STANDARD
            .decode(signature.trim())
            .map_err(|_| SignatureHeaderError::BadBase64)?;
        if signature.is_empty() {
            return Err(SignatureHeaderError::BadBase64);
        }
        let headers = match headers {
            None => vec!["date".to_owned()],
            Some(list) => {
                let list: Vec<String> = list
                    .split([' ', '\t'])
                    .filter(|h| !h.is_empty())
                    .map(str::to_ascii_lowercase)
                    .collect();
                if list.is_empty() {
                    return Err(SignatureHeaderError::EmptyHeaders);
                }
                for (i, h) in list.iter().enumerate() {
                    if list[..i].contains(h) {
                        return Err(SignatureHeaderError::HeaderListedTwice { name: h.clone() });
                    }
                }
                list
            }
        };
        Ok(SignatureParams {
            key_id,
            algorithm,
            created,
            expires,
            headers,
            signature,
        })
    }
}

fn timestamp(name: &'static str, value: &str) -> Result<i64, SignatureHeaderError> {
    let value = value.trim();
    let ok = !value.is_empty()
        && value
            .strip_prefix('-')
            .unwrap_or(value)
            .bytes()
            .all(|b| b.is_ascii_digit());
    let bad = || SignatureHeaderError::BadTimestamp {
        name,
        found: value.to_owned(),
    };
    if !ok {
        return Err(bad());
    }
    value.parse().map_err(|_| bad())
}

fn push_quoted(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Splits `name=value` pairs; values are quoted strings (with `\` escapes) or bare tokens.
fn parse_pairs(
    input: &str,
    base: usize,
) -> Result<Vec<(String, String, bool)>, SignatureHeaderError> {
    let bytes = input.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    let skip_ows = |i: &mut usize| {
        while *i < bytes.len() && (bytes[*i] == b' ' || bytes[*i] == b'\t') {
            *i += 1;
        }
    };
    loop {
        skip_ows(&mut i);
        let start = i;
        while i < bytes.len() && crate::message::is_tchar(bytes[i]) {
            i += 1;
        }
        if start == i {
            return Err(SignatureHeaderError::ExpectedName { at: base + i });
        }
        let name = input[start..i].to_owned();
        skip_ows(&mut i);
        if i >= bytes.len() || bytes[i] != b'=' {
            return Err(SignatureHeaderError::ExpectedEquals { name });
        }
        i += 1;
        skip_ows(&mut i);
        let (value, quoted) = if i < bytes.len() && bytes[i] == b'"' {
            i += 1;
            let mut value = String::new();
            loop {
                let Some(c) = input[i..].chars().next() else {
                    return Err(SignatureHeaderError::Unterminated { name });
                };
                i += c.len_utf8();
                match c {
                    '"' => break,
                    '\\' => {
                        let Some(escaped) = input[i..].chars().next() else {
                            return Err(SignatureHeaderError::Unterminated { name });
                        };
                        i += escaped.len_utf8();
                        value.push(escaped);
                    }
                    c => value.push(c),
                }
            }
            (value, true)
        } else {
            let start = i;
            while i < bytes.len() && crate::message::is_tchar(bytes[i]) {
                i += 1;
            }
            (input[start..i].to_owned(), false)
        };
        skip_ows(&mut i);
        out.push((name.clone(), value, quoted));
        if i >= bytes.len() {
            return Ok(out);
        }
        if bytes[i] != b',' {
            return Err(SignatureHeaderError::ExpectedComma { name });
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const C2: &str = "keyId=\"Test\",algorithm=\"rsa-sha256\",headers=\"(request-target) host date\",signature=\"qdx+H7PHHDZgy4y/Ahn9Tny9V3GP6YgBPyUXMmoxWtLbHpUnXS2mg2+SbrQDMCJypxBLSPQR2aAjn7ndmw2iicw3HMbe8VfEdKFYRqzic+efkb3nndiv/x1xSHDJWeSWkx3ButlYSuBskLu6kd9Fswtemr3lgdDEmn04swr2Os0=\"";

    #[test]
    fn round_trips_the_cavage_c2_header_byte_for_byte() {
        let params = SignatureParams::parse(C2).unwrap();
        assert_eq!(params.key_id, "Test");
        assert_eq!(params.headers, ["(request-target)", "host", "date"]);
        assert_eq!(params.signature.len(), 128);
        assert_eq!(params.to_header_value(), C2);
    }

    #[test]
    fn tolerates_order_spaces_case_unknowns_and_prefix() {
        let v = "Signature signature = \"AAAA\" , foo=\"bar\", HEADERS=\"Date  X-Request-ID\",created=1402170695, keyid=\"a\\\"b\"";
        let p = SignatureParams::parse(v).unwrap();
        assert_eq!(p.key_id, "a\"b");
        assert_eq!(p.headers, ["date", "x-request-id"]);
        assert_eq!(p.created, Some(1402170695));
        assert_eq!(p.algorithm, None);
        let again = SignatureParams::parse(&p.to_header_value()).unwrap();
        assert_eq!(again, p);
    }

    #[test]
    fn defaults_headers_to_date() {
        let p = SignatureParams::parse("keyId=\"k\",signature=\"AAAA\"").unwrap();
        assert_eq!(p.headers, ["date"]);
    }

    #[test]
    fn rejects_each_malformation_precisely() {
        use SignatureHeaderError as E;
        let cases: &[(&str, E)] = &[
            ("", E::Empty),
            ("keyId=\"k\"", E::Missing { name: "signature" }),
            ("signature=\"AAAA\"", E::Missing { name: "keyId" }),
            (
                "keyId=\"k\",keyId=\"j\",signature=\"AAAA\"",
                E::Duplicate {
                    name: "keyId".into(),
                },
            ),
            (
                "keyId=\"k\",KEYID=\"j\",signature=\"AAAA\"",
                E::Duplicate {
                    name: "KEYID".into(),
                },
            ),
            ("keyId=\"k\",signature=\"%%%\"", E::BadBase64),
            ("keyId=\"k\",signature=\"\"", E::BadBase64),
            (
                "keyId=\"k,signature=\"AAAA\"",
                E::ExpectedComma {
                    name: "keyId".into(),
                },
            ),
            (
                "keyId=\"k\",signature=\"AAAA",
                E::Unterminated {
                    name: "signature".into(),
                },
            ),
            (
                "keyId=k,signature=\"AAAA\"",
                E::Unquoted {
                    name: "keyId".into(),
                },
            ),
            (
                "keyId",
                E::ExpectedEquals {
                    name: "keyId".into(),
                },
            ),
            (
                "keyId=\"k\",,signature=\"AAAA\"",
                E::ExpectedName { at: 10 },
            ),
            (
                "keyId=\"k\",signature=\"AAAA\",",
                E::ExpectedName { at: 27 },
            ),
            (
                "keyId=\"k\" x,signature=\"AAAA\"",
                E::ExpectedComma {
                    name: "keyId".into(),
                },
            ),
            (
                "keyId=\"k\",headers=\" \",signature=\"AAAA\"",
                E::EmptyHeaders,
            ),
            (
                "keyId=\"k\",headers=\"date Date\",signature=\"AAAA\"",
                E::HeaderListedTwice {
                    name: "date".into(),
                },
            ),
            (
                "keyId=\"k\",created=12.5,signature=\"AAAA\"",
                E::BadTimestamp {
                    name: "created",
                    found: "12.5".into(),
                },
            ),
            (
                "keyId=\"k\",created=\"x\",signature=\"AAAA\"",
                E::BadTimestamp {
                    name: "created",
                    found: "x".into(),
                },
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(
                SignatureParams::parse(input).as_ref(),
                Err(expected),
                "{input}"
            );
        }
    }

    /// Found by the `signature_header` fuzz target: non-ASCII input made the name scanner slice
    /// inside a multi-byte character.
    #[test]
    fn non_ascii_input_is_an_error_not_a_panic() {
        for input in [
            "\u{2d6}",
            "keyId=\"k\",\u{2d6}=\"x\"",
            "Signature\u{e9}keyId=\"k\"",
            "signature \u{e9}",
        ] {
            assert!(SignatureParams::parse(input).is_err(), "{input}");
        }
        let p = SignatureParams::parse("keyId=\"caf\u{e9}\",signature=\"AAAA\"").unwrap();
        assert_eq!(p.key_id, "caf\u{e9}");
    }

    #[test]
    fn debug_hides_the_signature() {
        let p = SignatureParams::parse(C2).unwrap();
        assert!(!format!("{p:?}").contains("qdx"));
    }
}
