//! [`Amount`]: money as an exact decimal, read from a JSON string or number.

use std::fmt;
use std::str::FromStr;

use rust_decimal::Decimal;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Dialect;

/// The key under which serde_json (with `arbitrary_precision`) hands over a number's digits.
const SERDE_JSON_NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// An exact decimal number: an amount of money, or a rate.
///
/// STET 1.4 sends amounts as strings (`"12.10"`), 1.5 as numbers (`12.10`); both parse, and
/// neither goes through `f64`: the digits are read as written, so `12.10` stays `12.10` (scale
/// included) and `0.1` is exactly one tenth. It serializes as a number, or as a string when the
/// [`Dialect`] is 1.4.
///
/// ```
/// use stet_models::{Amount, Dialect, to_json_string};
///
/// let a: Amount = serde_json::from_str("12.10").unwrap();
/// let b: Amount = serde_json::from_str("\"12.10\"").unwrap();
/// assert_eq!(a, b);
/// assert_eq!(a.to_string(), "12.10");
/// assert_eq!(to_json_string(&a, Dialect::V1_5).unwrap(), "12.10");
/// assert_eq!(to_json_string(&a, Dialect::V1_4).unwrap(), "\"12.10\"");
/// ```
///
/// Equality is numeric *and* includes the scale: `12.1` and `12.10` are different `Amount`s
/// because they print differently; compare [`Amount::decimal`] values for numeric equality.
#[derive(Debug, Clone, Copy, Default)]
pub struct Amount(Decimal);

impl PartialEq for Amount {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}

impl Eq for Amount {}

impl PartialOrd for Amount {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Amount {
    /// By value, then by scale: `12.1 < 12.10 < 12.2`.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0
            .cmp(&other.0)
            .then(self.0.scale().cmp(&other.0.scale()))
    }
}

impl std::hash::Hash for Amount {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.normalize().hash(state);
        self.0.scale().hash(state);
    }
}

impl Amount {
    /// Wraps a decimal.
    pub const fn new(value: Decimal) -> Self {
        Amount(value)
    }

    /// The decimal value.
    pub const fn decimal(self) -> Decimal {
        self.0
    }
}

impl From<Decimal> for Amount {
    fn from(value: Decimal) -> Self {
        Amount(value)
    }
}

impl From<Amount> for Decimal {
    fn from(value: Amount) -> Self {
        value.0
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Why a text is not an amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a decimal amount: {text:?}")]
pub struct ParseAmountError {
    text: String,
}

impl FromStr for Amount {
    type Err = ParseAmountError;

    /// Reads `12`, `-12.10`, `+3.5`, ` 7.00 ` and exponent forms such as `1.5E2`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let err = || ParseAmountError {
            text: s.chars().take(64).collect(),
        };
        let plain = t.strip_prefix('+').unwrap_or(t);
        // Decimal::from_str is lenient (it accepts "1_000" and ".5"); STET never sends those,
        // but banks do send "12." or "12", which are fine. Reject what is not a number at all.
        let bytes = plain.as_bytes();
        let digits = bytes.iter().filter(|b| b.is_ascii_digit()).count();
        if digits == 0
            || !bytes
                .iter()
                .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'e' | b'E' | b'+'))
        {
            return Err(err());
        }
        if plain.contains(['e', 'E']) {
            return Decimal::from_scientific(plain)
                .map(Amount)
                .map_err(|_| err());
        }
        Decimal::from_str_exact(plain)
            .map(Amount)
            .map_err(|_| err())
    }
}

impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = self.0.to_string();
        match Dialect::current() {
            Dialect::V1_4 => serializer.serialize_str(&text),
            Dialect::V1_5 => {
                // With arbitrary_precision a Number carries its digits verbatim to the writer.
                let number =
                    serde_json::Number::from_str(&text).map_err(serde::ser::Error::custom)?;
                number.serialize(serializer)
            }
        }
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AmountVisitor)
    }
}

struct AmountVisitor;

impl<'de> Visitor<'de> for AmountVisitor {
    type Value = Amount;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an amount, as a JSON number or a string of digits")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Amount, E> {
        v.parse().map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Amount, E> {
        Ok(Amount(Decimal::from(v)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Amount, E> {
        Ok(Amount(Decimal::from(v)))
    }

    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Amount, E> {
        Decimal::try_from_i128_with_scale(v, 0)
            .map(Amount)
            .map_err(E::custom)
    }

    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Amount, E> {
        let v = i128::try_from(v).map_err(E::custom)?;
        self.visit_i128(v)
    }

    /// serde_json hands over an `f64` only when its shortest form is exactly the text it read,
    /// so printing it back gives the original digits.
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Amount, E> {
        if !v.is_finite() {
            return Err(E::custom("amount is not finite"));
        }
        self.visit_str(&v.to_string())
    }

    /// serde_json's `arbitrary_precision` form: `{"$serde_json::private::Number": "12.10"}`.
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Amount, A::Error> {
        let key: Option<String> = map.next_key()?;
        match key.as_deref() {
            Some(SERDE_JSON_NUMBER_TOKEN) => {
                let digits: String = map.next_value()?;
                self.visit_str(&digits)
            }
            _ => Err(de::Error::invalid_type(de::Unexpected::Map, &self)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Amount {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn numbers_and_strings_read_the_same_digits() {
        for (json, text) in [
            ("12.10", "12.10"),
            ("\"12.10\"", "12.10"),
            ("0.1", "0.1"),
            ("-0.30", "-0.30"),
            ("123456789012.12345", "123456789012.12345"),
            ("30000.0", "30000.0"),
            ("7", "7"),
            ("\"-7\"", "-7"),
            ("1.5E2", "150"),
        ] {
            assert_eq!(parse(json).to_string(), text, "{json}");
        }
    }

    #[test]
    fn sums_are_exact() {
        let a = parse("0.1").decimal() + parse("0.2").decimal();
        assert_eq!(a.to_string(), "0.3");
    }

    #[test]
    fn rejects_what_is_not_a_number() {
        for json in [
            "\"\"",
            "\"abc\"",
            "\"1,5\"",
            "true",
            "[1]",
            "{\"a\":1}",
            "\"1e99999\"",
        ] {
            assert!(serde_json::from_str::<Amount>(json).is_err(), "{json}");
        }
    }

    #[test]
    fn writes_in_the_dialect() {
        let a = parse("12.10");
        assert_eq!(crate::to_json_string(&a, Dialect::V1_5).unwrap(), "12.10");
        assert_eq!(
            crate::to_json_string(&a, Dialect::V1_4).unwrap(),
            "\"12.10\""
        );
    }

    #[test]
    fn reads_from_a_value_exactly() {
        let v: serde_json::Value = serde_json::from_str("{\"a\": 12.10, \"b\": 0.1}").unwrap();
        let a: Amount = serde_json::from_value(v["a"].clone()).unwrap();
        let b: Amount = serde_json::from_value(v["b"].clone()).unwrap();
        assert_eq!(a.to_string(), "12.10");
        assert_eq!(b.to_string(), "0.1");
    }
}
