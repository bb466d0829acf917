//! Outcomes, and the evidence kept for them: every exchange with the bank, secrets masked.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How a case ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Outcome {
    /// The bank did what the standard asks.
    #[serde(rename = "PASS")]
    Pass,
    /// It did not, and the case is mandatory.
    #[serde(rename = "FAIL")]
    Fail,
    /// It did not and the case is advisory, or it did with a remark (an unknown field).
    #[serde(rename = "WARN")]
    Warn,
    /// A prerequisite could not be had (named in the reason), or the case was not asked for.
    #[serde(rename = "SKIP")]
    Skip,
    /// The case does not apply to this bank (its dialect, or what it offers).
    #[serde(rename = "N/A")]
    NotApplicable,
}

impl Outcome {
    /// Every outcome, in report order.
    pub const ALL: [Outcome; 5] = [
        Outcome::Pass,
        Outcome::Fail,
        Outcome::Warn,
        Outcome::Skip,
        Outcome::NotApplicable,
    ];

    /// `PASS`, `FAIL`, `WARN`, `SKIP` or `N/A`.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Fail => "FAIL",
            Outcome::Warn => "WARN",
            Outcome::Skip => "SKIP",
            Outcome::NotApplicable => "N/A",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// What a check concluded: an outcome and the reason, in words a person acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The outcome (a FAIL of an advisory case becomes WARN in the report).
    pub outcome: Outcome,
    /// Why.
    pub reason: String,
    /// For a SKIP: the prerequisite that could not be had.
    pub prerequisite: Option<String>,
}

impl Verdict {
    /// PASS, with what was seen.
    pub fn pass(reason: impl Into<String>) -> Verdict {
        Verdict {
            outcome: Outcome::Pass,
            reason: reason.into(),
            prerequisite: None,
        }
    }

    /// FAIL, with what the bank did wrong.
    pub fn fail(reason: impl Into<String>) -> Verdict {
        Verdict {
            outcome: Outcome::Fail,
            reason: reason.into(),
            prerequisite: None,
        }
    }

    /// WARN, with the remark.
    pub fn warn(reason: impl Into<String>) -> Verdict {
        Verdict {
            outcome: Outcome::Warn,
            reason: reason.into(),
            prerequisite: None,
        }
    }

    /// SKIP: `prerequisite` could not be had, because `reason`.
    pub fn skip(prerequisite: impl Into<String>, reason: impl Into<String>) -> Verdict {
        let prerequisite = prerequisite.into();
        Verdict {
            outcome: Outcome::Skip,
            reason: format!("prerequisite {prerequisite}: {}", reason.into()),
            prerequisite: Some(prerequisite),
        }
    }

    /// N/A, with why.
    pub fn not_applicable(reason: impl Into<String>) -> Verdict {
        Verdict {
            outcome: Outcome::NotApplicable,
            reason: reason.into(),
            prerequisite: None,
        }
    }
}

/// A request as sent, secrets masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// The method.
    pub method: String,
    /// The URL (codes and tokens in its query masked).
    pub url: String,
    /// The headers, in order (`Authorization`, `Signature`'s signature and cookies masked).
    pub headers: Vec<(String, String)>,
    /// The body as text, when there is one (tokens, codes and secrets masked).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// An answer as received, secrets masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedResponse {
    /// The HTTP status.
    pub status: u16,
    /// The headers, in order.
    pub headers: Vec<(String, String)>,
    /// The body as text (at most 64 KiB kept; tokens masked).
    pub body: String,
}

/// One exchange with the bank: what the check sent and what came back (or why nothing did).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    /// What the request was for, in words.
    pub purpose: String,
    /// The request.
    pub request: RecordedRequest,
    /// The answer, when one came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<RecordedResponse>,
    /// Why no answer came (the connection refused, the TLS handshake failed, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long it took.
    pub duration_ms: u64,
}

/// The most of a body kept in a report.
const MAX_BODY: usize = 64 * 1024;

/// What replaces a secret.
pub const MASK: &str = "«masked»";

/// Names of values that are secrets wherever they appear: query parameters, form fields, JSON
/// keys.
const SECRET_NAMES: [&str; 8] = [
    "access_token",
    "refresh_token",
    "id_token",
    "code",
    "code_verifier",
    "client_secret",
    "state",
    "assertion",
];

fn masked_pairs(query: &str) -> String {
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if SECRET_NAMES.contains(&k.as_ref()) {
            out.append_pair(&k, MASK);
        } else {
            out.append_pair(&k, &v);
        }
    }
    out.finish()
}

/// A URL with its secret query parameters masked.
pub fn mask_url(url: &str) -> String {
    match url.split_once('?') {
        Some((base, query)) => {
            let (query, fragment) = match query.split_once('#') {
                Some((q, f)) => (q, Some(f)),
                None => (query, None),
            };
            let mut out = format!("{base}?{}", masked_pairs(query));
            if let Some(f) = fragment {
                out.push('#');
                out.push_str(&masked_pairs(f));
            }
            out
        }
        None => url.to_owned(),
    }
}

/// A header value with its secret part masked.
pub fn mask_header(name: &str, value: &str) -> String {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "authorization" | "proxy-authorization" => match value.split_once(' ') {
            Some((scheme, _)) => format!("{scheme} {MASK}"),
            None => MASK.to_owned(),
        },
        "cookie" | "set-cookie" => MASK.to_owned(),
        "signature" => match stet_httpsig::SignatureParams::parse(value) {
            Ok(params) => format!(
                "keyId=\"{}\",algorithm=\"{}\",headers=\"{}\",signature=\"{MASK}\"",
                params.key_id,
                params.algorithm.as_deref().unwrap_or(""),
                params.headers.join(" ")
            ),
            Err(_) => MASK.to_owned(),
        },
        "location" | "content-location" => mask_url(value),
        _ => value.to_owned(),
    }
}

fn mask_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map.iter_mut() {
                if SECRET_NAMES.contains(&k.as_str()) && v.is_string() {
                    *v = serde_json::Value::String(MASK.to_owned());
                } else {
                    mask_json(v);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(mask_json),
        _ => {}
    }
}

/// A body as text with its secrets masked: JSON keys and form fields named like secrets.
pub fn mask_body(body: &[u8], content_type: Option<&str>) -> String {
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX_BODY)]).into_owned();
    let cut = if body.len() > MAX_BODY {
        format!("\n… ({} bytes in all)", body.len())
    } else {
        String::new()
    };
    if let Ok(mut json) = serde_json::from_slice::<serde_json::Value>(body) {
        mask_json(&mut json);
        let mut s = serde_json::to_string(&json).unwrap_or(text);
        if s.len() > MAX_BODY {
            let mut end = MAX_BODY;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            s.truncate(end);
        }
        return s + &cut;
    }
    if content_type.is_some_and(|c| c.contains("x-www-form-urlencoded")) {
        return masked_pairs(&text) + &cut;
    }
    text + &cut
}

/// The headers of a list, each masked.
pub fn mask_headers<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Vec<(String, String)> {
    headers
        .into_iter()
        .map(|(n, v)| (n.to_owned(), mask_header(n, v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_masked_everywhere() {
        assert_eq!(
            mask_url("http://127.0.0.1/cb?code=abc&state=xyz&x=1"),
            format!(
                "http://127.0.0.1/cb?code={m}&state={m}&x=1",
                m = "%C2%ABmasked%C2%BB"
            )
        );
        assert_eq!(
            mask_header("Authorization", "Bearer abcdef"),
            format!("Bearer {MASK}")
        );
        let sig = "keyId=\"k\",algorithm=\"rsa-sha256\",headers=\"date\",signature=\"QUJD\"";
        let masked = mask_header("Signature", sig);
        assert!(
            !masked.contains("QUJD") && masked.contains("keyId=\"k\""),
            "{masked}"
        );
        let body = mask_body(
            br#"{"access_token":"t0k","refresh_token":"r","token_type":"Bearer"}"#,
            None,
        );
        assert!(!body.contains("t0k") && body.contains("Bearer"), "{body}");
        let form = mask_body(
            b"grant_type=authorization_code&code=c0de&code_verifier=v3r",
            Some("application/x-www-form-urlencoded"),
        );
        assert!(!form.contains("c0de") && !form.contains("v3r"), "{form}");
    }
}
