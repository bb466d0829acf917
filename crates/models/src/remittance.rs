//! [`RemittanceInformation`]: the text that explains a payment, in all three shapes banks use.

use std::fmt;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::{Dialect, StructuredRemittanceInformation};

/// Information sent with a payment to explain it to the payee (the "libellé").
///
/// Reads any of:
/// - STET 1.5: `{"unstructured": ["line", ...], "structured": [...]}`;
/// - STET 1.4 and most banks: `["line", ...]`;
/// - a bare string `"line"` (seen in the wild), which becomes one line.
///
/// Writes the 1.5 object, or the 1.4 array of lines when the [`Dialect`] is 1.4 (structured
/// references have no 1.4 form and are then left out).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RemittanceInformation {
    /// Free-text lines, up to 140 characters each.
    pub unstructured: Vec<String>,
    /// Structured references (1.5 only).
    pub structured: Vec<StructuredRemittanceInformation>,
}

impl RemittanceInformation {
    /// Remittance information made of one free-text line.
    pub fn line(text: impl Into<String>) -> Self {
        RemittanceInformation {
            unstructured: vec![text.into()],
            structured: Vec::new(),
        }
    }

    /// The free-text lines joined with a space: what a person reads as the payment's label.
    pub fn text(&self) -> String {
        self.unstructured.join(" ")
    }

    /// Whether there is nothing in it.
    pub fn is_empty(&self) -> bool {
        self.unstructured.is_empty() && self.structured.is_empty()
    }
}

impl Serialize for RemittanceInformation {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match Dialect::current() {
            Dialect::V1_4 => self.unstructured.serialize(serializer),
            Dialect::V1_5 => {
                let len = usize::from(!self.unstructured.is_empty())
                    + usize::from(!self.structured.is_empty());
                let mut map = serializer.serialize_map(Some(len))?;
                if !self.unstructured.is_empty() {
                    map.serialize_entry("unstructured", &self.unstructured)?;
                }
                if !self.structured.is_empty() {
                    map.serialize_entry("structured", &self.structured)?;
                }
                map.end()
            }
        }
    }
}

impl<'de> Deserialize<'de> for RemittanceInformation {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RemittanceVisitor)
    }
}

struct RemittanceVisitor;

impl<'de> Visitor<'de> for RemittanceVisitor {
    type Value = RemittanceInformation;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("remittance information: an object, an array of strings or a string")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(if v.is_empty() {
            RemittanceInformation::default()
        } else {
            RemittanceInformation::line(v)
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Ok(RemittanceInformation {
            unstructured: Lines::deserialize(de::value::SeqAccessDeserializer::new(seq))?.0,
            structured: Vec::new(),
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        /// The 1.5 object; `unstructured` itself may be a bare string.
        #[derive(Deserialize)]
        struct Object {
            #[serde(default)]
            unstructured: Option<Lines>,
            #[serde(default)]
            structured: Option<Vec<StructuredRemittanceInformation>>,
        }
        let o = Object::deserialize(de::value::MapAccessDeserializer::new(map))?;
        Ok(RemittanceInformation {
            unstructured: o.unstructured.map(|l| l.0).unwrap_or_default(),
            structured: o.structured.unwrap_or_default(),
        })
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(RemittanceInformation::default())
    }
}

/// Lines of text: an array of strings (nulls skipped) or one string.
struct Lines(Vec<String>);

impl<'de> Deserialize<'de> for Lines {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Lines;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("lines of text")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Lines, E> {
                Ok(Lines(if v.is_empty() {
                    vec![]
                } else {
                    vec![v.to_owned()]
                }))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Lines, A::Error> {
                let mut lines = Vec::new();
                while let Some(line) = seq.next_element::<Option<String>>()? {
                    lines.extend(line);
                }
                Ok(Lines(lines))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Lines, E> {
                Ok(Lines(vec![]))
            }
        }
        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> RemittanceInformation {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn reads_all_three_shapes() {
        let want = RemittanceInformation::line("Facture 42");
        assert_eq!(parse(r#"{"unstructured": ["Facture 42"]}"#), want);
        assert_eq!(parse(r#"["Facture 42"]"#), want);
        assert_eq!(parse(r#""Facture 42""#), want);
        assert_eq!(parse(r#"{"unstructured": "Facture 42"}"#), want);
        assert_eq!(parse(r#"{}"#), RemittanceInformation::default());
        assert_eq!(parse(r#"[]"#), RemittanceInformation::default());
        assert_eq!(parse(r#""""#), RemittanceInformation::default());
    }

    #[test]
    fn rejects_other_json() {
        for json in ["12", "true", "[1]", r#"{"unstructured": 3}"#] {
            assert!(
                serde_json::from_str::<RemittanceInformation>(json).is_err(),
                "{json}"
            );
        }
    }

    #[test]
    fn writes_in_the_dialect() {
        let r = RemittanceInformation::line("Facture 42");
        assert_eq!(
            crate::to_json_string(&r, Dialect::V1_5).unwrap(),
            r#"{"unstructured":["Facture 42"]}"#
        );
        assert_eq!(
            crate::to_json_string(&r, Dialect::V1_4).unwrap(),
            r#"["Facture 42"]"#
        );
    }
}
