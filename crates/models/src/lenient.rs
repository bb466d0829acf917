//! [`Lenient`]: a field read as its model when it can be, kept as received when it cannot.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// A field that the client does not act on, read as `T` when it has the expected shape and
/// kept as the JSON the bank sent when it has another.
///
/// Banks write some informational fields in shapes of their own. STET 1.4.0.47's own example
/// of a payment request's creation writes `appliedAuthenticationApproach` as an object
/// (`{"appliedAuthenticationApproach": "REDIRECT"}`) where its schema says a code; a bank
/// built from the example does the same. Failing the whole answer over such a field would
/// lose what matters in it (the payment request's id, the approval link), so the field is
/// kept as received instead, for the caller to report ([`Lenient::unexpected`]).
///
/// Fields are lenient where the spec says so (`x-rust-lenient: true` in `openapi/`).
/// Serializing writes `T`, or the kept JSON as it was.
///
/// ```
/// use stet_models::{AuthenticationApproach, HalAuthenticationRequest, parse_response};
///
/// let body = br#"{"appliedAuthenticationApproach": {"appliedAuthenticationApproach": "REDIRECT"},
///     "_links": {"consentApproval": {"href": "https://bank.example/approve"}}}"#;
/// let answer: HalAuthenticationRequest = parse_response(body)?;
/// let applied = answer.applied_authentication_approach.unwrap();
/// assert_eq!(applied.get(), None);
/// assert_eq!(
///     applied.unexpected().unwrap().get(),
///     r#"{"appliedAuthenticationApproach": "REDIRECT"}"#
/// );
/// assert!(answer.links.unwrap().consent_approval.is_some());
///
/// let usual: HalAuthenticationRequest =
///     parse_response(br#"{"appliedAuthenticationApproach": "REDIRECT"}"#)?;
/// assert_eq!(
///     usual.applied_authentication_approach.unwrap().get(),
///     Some(&AuthenticationApproach::Redirect)
/// );
/// # Ok::<(), stet_models::ParseError>(())
/// ```
#[derive(Debug, Clone)]
pub enum Lenient<T> {
    /// Read as the model.
    Read(T),
    /// In another shape: the JSON as received.
    Unexpected(Box<RawValue>),
}

impl<T> Lenient<T> {
    /// The value, when it had the expected shape.
    pub fn get(&self) -> Option<&T> {
        match self {
            Lenient::Read(value) => Some(value),
            Lenient::Unexpected(_) => None,
        }
    }

    /// The JSON as received, when it did not have the expected shape.
    pub fn unexpected(&self) -> Option<&RawValue> {
        match self {
            Lenient::Read(_) => None,
            Lenient::Unexpected(json) => Some(json),
        }
    }
}

impl<'a, T: From<&'a str>> From<&'a str> for Lenient<T> {
    fn from(code: &'a str) -> Self {
        Lenient::Read(T::from(code))
    }
}

impl<T: PartialEq> PartialEq for Lenient<T> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Lenient::Read(a), Lenient::Read(b)) => a == b,
            (Lenient::Unexpected(a), Lenient::Unexpected(b)) => a.get() == b.get(),
            _ => false,
        }
    }
}

impl<T: Serialize> Serialize for Lenient<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Lenient::Read(value) => value.serialize(serializer),
            Lenient::Unexpected(json) => json.serialize(serializer),
        }
    }
}

impl<'de, T: for<'a> Deserialize<'a>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = Box::<RawValue>::deserialize(deserializer)?;
        Ok(match serde_json::from_str(json.get()) {
            Ok(value) => Lenient::Read(value),
            Err(_) => Lenient::Unexpected(json),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuthenticationApproach;

    #[test]
    fn a_code_is_read_and_anything_else_is_kept_as_sent() {
        let read: Lenient<AuthenticationApproach> = serde_json::from_str(r#""DECOUPLED""#).unwrap();
        assert_eq!(read.get(), Some(&AuthenticationApproach::Decoupled));
        assert_eq!(serde_json::to_string(&read).unwrap(), r#""DECOUPLED""#);

        for odd in [r#"{"a": [1, 2.50]}"#, "42", "[\"REDIRECT\"]", "null"] {
            let kept: Lenient<AuthenticationApproach> = serde_json::from_str(odd).unwrap();
            assert_eq!(kept.unexpected().map(RawValue::get), Some(odd), "{odd}");
            assert_eq!(serde_json::to_string(&kept).unwrap(), odd);
        }
        assert_eq!(
            Lenient::<AuthenticationApproach>::from("REDIRECT"),
            Lenient::Read(AuthenticationApproach::Redirect)
        );
    }
}
