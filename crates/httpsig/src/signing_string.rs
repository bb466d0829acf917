//! The signing string: what is actually signed.

use crate::message::Request;

/// Why a signing string could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SigningStringError {
    /// A header named in the list is absent from the request. It is never signed as empty.
    #[error(
        "header `{0}` is in the signed header list but the request has none: \
         add the header to the request or remove it from the list"
    )]
    MissingHeader(String),
    /// `(created)` is listed but there is no `created` value.
    #[error("`(created)` is in the signed header list but no `created` time is set")]
    MissingCreated,
    /// `(expires)` is listed but there is no `expires` value.
    #[error("`(expires)` is in the signed header list but no `expires` time is set")]
    MissingExpires,
    /// The list is empty.
    #[error("the signed header list is empty")]
    EmptyList,
}

/// Builds the signing string of `request` for the ordered header list `headers`.
///
/// Each listed name, lowercased, gives one line `name: value`, lines joined by `\n` with no
/// trailing newline:
/// - `(request-target)`: the lowercased method, a space, and the target exactly as on the wire;
/// - `(created)` / `(expires)`: the given Unix times;
/// - any other name: the header's values, each trimmed, joined with `", "` in wire order.
///
/// ```
/// use stet_httpsig::{Request, signing_string};
/// let req = Request::new("GET", "/v1/accounts?page=2").with_header("Date", "Sun, 05 Jan 2014 21:31:40 GMT");
/// let s = signing_string(&req, &["(request-target)", "date"], None, None).unwrap();
/// assert_eq!(s, "(request-target): get /v1/accounts?page=2\ndate: Sun, 05 Jan 2014 21:31:40 GMT");
/// ```
pub fn signing_string<S: AsRef<str>>(
    request: &Request,
    headers: &[S],
    created: Option<i64>,
    expires: Option<i64>,
) -> Result<String, SigningStringError> {
    if headers.is_empty() {
        return Err(SigningStringError::EmptyList);
    }
    let mut out = String::with_capacity(256);
    for (i, name) in headers.iter().enumerate() {
        let name = name.as_ref().to_ascii_lowercase();
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&name);
        out.push_str(": ");
        match name.as_str() {
            "(request-target)" => {
                out.push_str(&request.method().to_ascii_lowercase());
                out.push(' ');
                out.push_str(request.target());
            }
            "(created)" => {
                let created = created.ok_or(SigningStringError::MissingCreated)?;
                out.push_str(&created.to_string());
            }
            "(expires)" => {
                let expires = expires.ok_or(SigningStringError::MissingExpires)?;
                out.push_str(&expires.to_string());
            }
            _ => {
                let value = request
                    .header(&name)
                    .ok_or_else(|| SigningStringError::MissingHeader(name.clone()))?;
                out.push_str(&value);
            }
        }
    }
    Ok(out)
}
