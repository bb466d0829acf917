//! Reading response bodies: [`parse_response`] and the [`Response`] trait.

use serde::de::DeserializeOwned;

/// A response body of the STET API (the `Hal*` resources and the error models).
pub trait Response: DeserializeOwned {
    /// The schema name in `openapi/`, e.g. `HalTransactions`.
    const SCHEMA: &'static str;
}

/// A response body that could not be read as the resource expected.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the {schema} response: {source}")]
pub struct ParseError {
    /// The schema the body was read as.
    pub schema: &'static str,
    /// What serde_json reported, with line and column.
    #[source]
    pub source: serde_json::Error,
}

/// Reads a response body as `T`. Never panics, whatever the bytes.
///
/// ```
/// use stet_models::{parse_response, HalBalances};
///
/// let body = br#"{"balances": [{"name": "Solde", "balanceType": "CLBD",
///                 "balanceAmount": {"amount": "12.10", "currency": "EUR"}}]}"#;
/// let balances: HalBalances = parse_response(body).unwrap();
/// assert_eq!(balances.balances[0].balance_amount.amount.to_string(), "12.10");
/// ```
pub fn parse_response<T: Response>(body: &[u8]) -> Result<T, ParseError> {
    serde_json::from_slice(body).map_err(|source| ParseError {
        schema: T::SCHEMA,
        source,
    })
}

/// A response parser that only says whether `body` reads: see [`crate::RESPONSE_PARSERS`].
pub type ResponseParser = fn(&[u8]) -> Result<(), ParseError>;

/// Reads `body` as `T` and drops the result: the shape of [`crate::RESPONSE_PARSERS`].
pub fn check_response<T: Response>(body: &[u8]) -> Result<(), ParseError> {
    parse_response::<T>(body).map(drop)
}

/// Feeds `body` to every response parser and counts how many accept it.
///
/// This is the fuzzing entry point: whatever the bytes, each parser returns an error or a
/// value, and none panics.
pub fn parse_with_every_response_parser(body: &[u8]) -> usize {
    crate::RESPONSE_PARSERS
        .iter()
        .filter(|(_, parse)| parse(body).is_ok())
        .count()
}

/// A check of a JSON value against one model: see [`crate::SCHEMA_CHECKS`].
pub type SchemaCheck = fn(&serde_json::Value) -> Result<(), SchemaCheckError>;

/// Why a JSON value does not fit a model.
#[derive(Debug, thiserror::Error)]
pub enum SchemaCheckError {
    /// The value does not parse as the model.
    #[error("does not parse: {0}")]
    Parse(serde_json::Error),
    /// The parsed value does not serialize.
    #[error("does not serialize: {0}")]
    Serialize(serde_json::Error),
    /// Writing the value and reading it back gives something else.
    #[error("changes through a round trip: {first} became {second}")]
    RoundTrip {
        /// The value written once.
        first: String,
        /// The value written after a round trip.
        second: String,
    },
}

/// Reads `json` as `T`, writes it (1.5 dialect), reads that back and compares.
pub fn check_schema<T>(json: &serde_json::Value) -> Result<(), SchemaCheckError>
where
    T: serde::Serialize + DeserializeOwned + PartialEq,
{
    let parsed = T::deserialize(json).map_err(SchemaCheckError::Parse)?;
    let written =
        crate::to_json_value(&parsed, crate::Dialect::V1_5).map_err(SchemaCheckError::Serialize)?;
    let again = T::deserialize(&written).map_err(SchemaCheckError::Parse)?;
    if again == parsed {
        Ok(())
    } else {
        let rewritten = crate::to_json_value(&again, crate::Dialect::V1_5)
            .map_err(SchemaCheckError::Serialize)?;
        Err(SchemaCheckError::RoundTrip {
            first: written.to_string(),
            second: rewritten.to_string(),
        })
    }
}
