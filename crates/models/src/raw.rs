//! [`Raw`]: a parsed resource together with the JSON it was parsed from.

use std::ops::Deref;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A resource as parsed (`T`) together with the exact JSON object the bank sent for it.
///
/// The models read what they know and ignore the rest; banks add their own fields (a card
/// number, a category, a running balance). `Raw` keeps the whole object, fields the models do
/// not know included, with numbers as written, for export and debugging. The generated list
/// responses hold their items as `Raw<_>` (for example
/// [`HalTransactions::transactions`](crate::HalTransactions::transactions) is a
/// `Vec<Raw<Transaction>>`); `Raw<T>` dereferences to `T`, so `tx.status` works as usual.
///
/// Any other type can be wrapped at will: `serde_json::from_slice::<Raw<HalAccounts>>(body)`.
///
/// Serializing a `Raw<T>` writes `T` (in the current [`Dialect`](crate::Dialect)), not the
/// original JSON: use [`Raw::json`] for that. Equality compares the parsed values only.
#[derive(Debug, Clone)]
pub struct Raw<T> {
    value: T,
    json: serde_json::Value,
}

impl<T> Raw<T> {
    /// The JSON as received, unknown fields included.
    pub fn json(&self) -> &serde_json::Value {
        &self.json
    }

    /// The parsed value.
    pub fn get(&self) -> &T {
        &self.value
    }

    /// The parsed value, dropping the JSON.
    pub fn into_inner(self) -> T {
        self.value
    }

    /// The parsed value and the JSON.
    pub fn into_parts(self) -> (T, serde_json::Value) {
        (self.value, self.json)
    }
}

impl<T: Serialize> Raw<T> {
    /// Wraps a value built in code; its "raw" JSON is its own serialization (in 1.5 form).
    pub fn new(value: T) -> Self {
        // Serializing the models into a Value cannot fail: all their maps have string keys.
        let json = crate::to_json_value(&value, crate::Dialect::V1_5).unwrap_or_default();
        Raw { value, json }
    }
}

impl<T> Deref for Raw<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T: PartialEq> PartialEq for Raw<T> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<T: Serialize> Serialize for Raw<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.value.serialize(serializer)
    }
}

impl<'de, T: for<'a> Deserialize<'a>> Deserialize<'de> for Raw<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = serde_json::Value::deserialize(deserializer)?;
        let value = T::deserialize(&json).map_err(D::Error::custom)?;
        Ok(Raw { value, json })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BalanceResource;

    #[test]
    fn keeps_unknown_fields_and_exact_numbers() {
        let json = r#"{"name": "Solde", "balanceAmount": {"amount": 12.10, "currency": "EUR"},
                       "balanceType": "ITAV", "bankSpecific": {"x": 1}}"#;
        let b: Raw<BalanceResource> = serde_json::from_str(json).unwrap();
        assert_eq!(b.name.as_deref(), Some("Solde"));
        assert_eq!(b.balance_amount.amount.to_string(), "12.10");
        assert_eq!(b.json()["bankSpecific"]["x"], 1);
        assert_eq!(
            serde_json::to_string(&b.json()["balanceAmount"]["amount"]).unwrap(),
            "12.10"
        );
    }
}
