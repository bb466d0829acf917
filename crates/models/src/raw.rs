//! [`Raw`]: a parsed resource together with the JSON text it was parsed from.

use std::ops::Deref;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// A resource as parsed (`T`) together with the exact JSON object the bank sent for it.
///
/// The models read what they know and ignore the rest; banks add their own fields (a card
/// number, a category, a running balance). `Raw` keeps the whole object as text, fields the
/// models do not know included, numbers and key order as written, for export and debugging.
/// The generated list responses hold their items as `Raw<_>` (for example
/// [`HalTransactions::transactions`](crate::HalTransactions::transactions) is a
/// `Vec<Raw<Transaction>>`); `Raw<T>` dereferences to `T`, so `tx.status` works as usual.
///
/// Any other type can be wrapped at will: `serde_json::from_slice::<Raw<HalAccounts>>(body)`.
/// Code that only passes resources through (an NDJSON export) can keep the text alone, as a
/// `Box<RawValue>`, and read it as a model later with [`Raw::from_json`], where needed.
///
/// Serializing a `Raw<T>` writes `T` (in the current [`Dialect`](crate::Dialect)), not the
/// original JSON: use [`Raw::json`] for that. Equality compares the parsed values only.
#[derive(Debug, Clone)]
pub struct Raw<T> {
    value: T,
    json: Box<RawValue>,
}

impl<T> Raw<T> {
    /// The JSON as received, unknown fields included: the exact text of the object (with the
    /// bank's whitespace, which may include line breaks). `json().get()` is the `&str`.
    pub fn json(&self) -> &RawValue {
        &self.json
    }

    /// The JSON as received, as a `serde_json::Value` tree (built on each call; numbers keep
    /// their digits, object keys come out sorted).
    pub fn to_value(&self) -> serde_json::Value {
        // The text was read as JSON when this was built, so reading it again cannot fail.
        serde_json::from_str(self.json.get()).unwrap_or_default()
    }

    /// The parsed value.
    pub fn get(&self) -> &T {
        &self.value
    }

    /// The parsed value, dropping the JSON.
    pub fn into_inner(self) -> T {
        self.value
    }

    /// The parsed value and the JSON text.
    pub fn into_parts(self) -> (T, Box<RawValue>) {
        (self.value, self.json)
    }
}

impl<T: for<'a> Deserialize<'a>> Raw<T> {
    /// Reads JSON text kept as received as `T`, once: the text is kept as it is.
    pub fn from_json(json: Box<RawValue>) -> Result<Self, serde_json::Error> {
        let value = serde_json::from_str(json.get())?;
        Ok(Raw { value, json })
    }
}

impl<T: Serialize> Raw<T> {
    /// Wraps a value built in code; its "raw" JSON is its own serialization (in 1.5 form).
    pub fn new(value: T) -> Self {
        // Serializing the models cannot fail (all their maps have string keys), and what
        // serde_json writes is JSON; `null` stands in should either ever change.
        let json = crate::to_json_string(&value, crate::Dialect::V1_5)
            .ok()
            .and_then(|text| RawValue::from_string(text).ok())
            .unwrap_or_else(|| RawValue::NULL.to_owned());
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
        // The object's text is sliced out once (no tree is built), then `T` is read from it.
        let json = Box::<RawValue>::deserialize(deserializer)?;
        Raw::from_json(json).map_err(|e| D::Error::custom(without_position(&e)))
    }
}

/// serde_json's message without its " at line L column C": that position is inside the
/// object's own text, and the enclosing document adds its own, which is the one that helps.
fn without_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    match text.strip_suffix(&suffix) {
        Some(message) => message.to_owned(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BalanceResource, HalBalances, Transaction};

    #[test]
    fn keeps_unknown_fields_and_exact_numbers() {
        let json = r#"{"name": "Solde", "balanceAmount": {"amount": 12.10, "currency": "EUR"},
                       "balanceType": "ITAV", "bankSpecific": {"x": 1}}"#;
        let b: Raw<BalanceResource> = serde_json::from_str(json).unwrap();
        assert_eq!(b.name.as_deref(), Some("Solde"));
        assert_eq!(b.balance_amount.amount.to_string(), "12.10");
        // The text is kept byte for byte: key order, whitespace, digits.
        assert_eq!(b.json().get(), json);
        assert_eq!(b.to_value()["bankSpecific"]["x"], 1);
        assert_eq!(
            serde_json::to_string(&b.to_value()["balanceAmount"]["amount"]).unwrap(),
            "12.10"
        );
    }

    #[test]
    fn items_of_a_list_keep_their_own_text() {
        let body = br#"{"balances": [
            {"balanceType": "CLBD", "balanceAmount": {"currency": "EUR", "amount": "1.50"},
             "name": "A"},
            {"name": "B", "balanceType": "XPCD", "balanceAmount": {"amount": 2, "currency": "EUR"}}
        ]}"#;
        let page: HalBalances = crate::parse_response(body).unwrap();
        assert_eq!(
            page.balances[0].json().get(),
            "{\"balanceType\": \"CLBD\", \"balanceAmount\": {\"currency\": \"EUR\", \"amount\": \"1.50\"},\n             \"name\": \"A\"}"
        );
        assert_eq!(
            page.balances[1].json().get(),
            r#"{"name": "B", "balanceType": "XPCD", "balanceAmount": {"amount": 2, "currency": "EUR"}}"#
        );
        assert_eq!(page.balances[1].balance_amount.amount.to_string(), "2");
    }

    #[test]
    fn from_json_reads_the_model_once_and_keeps_the_text() {
        let text = r#"{"transactionAmount": {"amount": "-0.30", "currency": "EUR"},
            "creditDebitIndicator": "DBIT", "status": "PDNG", "cardNumber": "4970XXXX1234"}"#;
        let raw = RawValue::from_string(text.to_owned()).unwrap();
        let tx = Raw::<Transaction>::from_json(raw).unwrap();
        assert_eq!(tx.status.as_str(), "PDNG");
        assert_eq!(tx.transaction_amount.amount.to_string(), "-0.30");
        assert_eq!(tx.json().get(), text);

        let wrong = RawValue::from_string(r#"{"status": 3}"#.to_owned()).unwrap();
        assert!(Raw::<Transaction>::from_json(wrong).is_err());
    }

    #[test]
    fn an_item_that_does_not_fit_is_placed_in_the_document() {
        let body = b"{\"balances\": [\n  {\"name\": \"A\", \"balanceType\": \"CLBD\"}\n]}";
        let err = crate::parse_response::<HalBalances>(body)
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing field `balanceAmount`"), "{err}");
        // One position, the document's (just after the item), not one inside the item.
        assert_eq!(err.matches(" at line ").count(), 1, "{err}");
        assert!(!err.contains("line 1 column"), "{err}");
    }

    #[test]
    fn built_in_code_and_read_from_a_value_alike() {
        let b: Raw<BalanceResource> = serde_json::from_value(serde_json::json!({
            "name": "Solde", "balanceType": "CLBD",
            "balanceAmount": {"amount": "12.10", "currency": "EUR"}
        }))
        .unwrap();
        assert_eq!(b.balance_amount.amount.to_string(), "12.10");
        let again = Raw::new(b.get().clone());
        assert_eq!(again, b);
        assert_eq!(
            again.to_value()["balanceAmount"]["amount"].to_string(),
            "12.10"
        );
    }
}
