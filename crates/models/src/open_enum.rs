//! `open_enum!`: string enums that keep the values they do not know.
//!
//! STET's code lists grow between versions (1.6 adds payment status `ACCO`), and banks send
//! values outside them (balance type `ITAV`). A closed Rust enum would turn each of those into a
//! parse failure of the whole response. Each generated code list is therefore an enum with one
//! variant per known value plus `Other(String)`, which holds anything else verbatim and writes
//! it back unchanged.

/// Defines an open string enum: known variants plus `Other(String)`.
///
/// ```text
/// open_enum! {
///     /// Type of a balance.
///     BalanceStatus {
///         /// Accounting balance.
///         Clbd = "CLBD",
///     }
/// }
/// ```
macro_rules! open_enum {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value this version of the models does not know, kept as received.
            Other(String),
        }

        impl $name {
            /// Every value the models know, in the order of the spec.
            pub const KNOWN: &'static [&'static str] = &[$($value),*];

            /// The value as written on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $( $name::$variant => $value, )*
                    $name::Other(other) => other.as_str(),
                }
            }

            /// Whether this is one of the values the models know.
            pub fn is_known(&self) -> bool {
                !matches!(self, $name::Other(_))
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                match value {
                    $( $value => $name::$variant, )*
                    other => $name::Other(other.to_owned()),
                }
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                match value.as_str() {
                    $( $value => $name::$variant, )*
                    _ => $name::Other(value),
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok($name::from(s))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_str($crate::open_enum::OpenEnumVisitor::<$name>::new())
            }
        }
    };
}

pub(crate) use open_enum;

/// Serde visitor shared by every open enum: any string is accepted.
pub(crate) struct OpenEnumVisitor<T>(std::marker::PhantomData<T>);

impl<T> OpenEnumVisitor<T> {
    pub(crate) fn new() -> Self {
        OpenEnumVisitor(std::marker::PhantomData)
    }
}

impl<T: From<String> + for<'a> From<&'a str>> serde::de::Visitor<'_> for OpenEnumVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a code, as a string")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<T, E> {
        Ok(T::from(v))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<T, E> {
        Ok(T::from(v))
    }
}

#[cfg(test)]
mod tests {
    use crate::{BalanceStatus, PaymentInformationStatusCode};

    #[test]
    fn known_and_unknown_values_round_trip() {
        let known: BalanceStatus = serde_json::from_str("\"CLBD\"").unwrap();
        assert_eq!(known, BalanceStatus::Clbd);
        let other: BalanceStatus = serde_json::from_str("\"XXXX\"").unwrap();
        assert_eq!(other, BalanceStatus::Other("XXXX".into()));
        assert!(!other.is_known());
        assert_eq!(serde_json::to_string(&other).unwrap(), "\"XXXX\"");
        assert_eq!(
            "ACCO".parse::<PaymentInformationStatusCode>().unwrap(),
            PaymentInformationStatusCode::Acco
        );
    }

    #[test]
    fn non_strings_are_errors() {
        assert!(serde_json::from_str::<BalanceStatus>("12").is_err());
        assert!(serde_json::from_str::<BalanceStatus>("null").is_err());
    }
}
