//! [`Workspace`]: a group of accounts, read from an object or a bare identifier.

use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// A workspace groups accounts, e.g. personal and professional (STET 1.5).
///
/// The schema says `{"identification": "PRO_1", "label": "..."}`, but the official example of
/// the account list writes `"workspace": "PERSO"`; both read, the bare form with an empty label.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Workspace {
    /// Identifier of the workspace. At most 32 characters.
    pub identification: String,
    /// Label of the workspace. At most 128 characters.
    pub label: String,
}

impl<'de> Deserialize<'de> for Workspace {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Workspace;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a workspace object or its identifier")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Workspace, E> {
                Ok(Workspace {
                    identification: v.to_owned(),
                    label: String::new(),
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Workspace, A::Error> {
                #[derive(Deserialize)]
                struct Object {
                    identification: String,
                    #[serde(default)]
                    label: String,
                }
                let o = Object::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Workspace {
                    identification: o.identification,
                    label: o.label,
                })
            }
        }
        deserializer.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_object_and_bare_string() {
        let a: Workspace =
            serde_json::from_str(r#"{"identification":"PRO_1","label":"SARL"}"#).unwrap();
        assert_eq!(a.identification, "PRO_1");
        assert_eq!(a.label, "SARL");
        let b: Workspace = serde_json::from_str(r#""PERSO""#).unwrap();
        assert_eq!(b.identification, "PERSO");
        assert!(serde_json::from_str::<Workspace>("3").is_err());
    }
}
