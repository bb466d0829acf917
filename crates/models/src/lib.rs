//! # stet-models
//!
//! The resources of the STET PSD2 API (accounts, balances, transactions, payment requests,
//! consents, funds confirmations) as Rust data, generated from the spec in `openapi/` and made
//! tolerant of the dialects banks actually speak. Data only: no I/O, no HTTP.
//!
//! ## What is here
//!
//! - One type per schema of `openapi/stet-psd2.openapi.yaml`, under the schema's own name
//!   ([`HalTransactions`], [`Transaction`], [`PaymentRequestResource`], [`Access`], ...),
//!   generated into `src/generated.rs` by `cargo xtask codegen`. Field names are the STET names
//!   in snake case (`bicFi` is `bic_fi`, `_links` is `links`, `self` is `self_`); docs carry
//!   the spec's description, its constraints and the differences with STET 1.4.
//! - The hand-written types that make them tolerant: [`Amount`], [`StetDateTime`], [`StetDate`],
//!   [`RemittanceInformation`], [`Workspace`], [`Raw`], [`Lenient`], and the open code lists.
//! - [`parse_response`] to read a body, [`to_json_vec`] to write one in a [`Dialect`].
//! - [`OPERATIONS`]: the fourteen operations (method, path, body and response schemas).
//!
//! ## How tolerance works
//!
//! STET is a family of dialects: most French banks run 1.4.x, some 1.5 or 1.6, and each bends
//! the spec somewhere. Reading is therefore lenient and writing is exact.
//!
//! - **Amounts** arrive as strings (1.4: `"12.10"`) or numbers (1.5: `12.10`). [`Amount`] reads
//!   both into a `rust_decimal::Decimal` *without passing through `f64`*: serde_json runs with
//!   `arbitrary_precision`, so the digits reach us as written, and `12.10` stays `12.10`.
//! - **Dates** arrive as `date` or `date-time`, with or without seconds, milliseconds or an
//!   offset. [`StetDateTime`] keeps which form it got and writes it back the same way. In an
//!   optional field, `""` means absent.
//! - **`remittanceInformation`** arrives as `{"unstructured": [...]}` (1.5), `[...]` (1.4) or a
//!   bare string: [`RemittanceInformation`] reads all three.
//! - **Code lists** ([`BalanceStatus`], [`TransactionStatus`], [`PaymentInformationStatusCode`],
//!   ...) are open: each has an `Other(String)` variant that keeps a value the spec does not
//!   list (balance type `ITAV`, status `ACCO`) instead of failing the whole response. Free-text
//!   fields such as `psuStatus` are plain strings.
//! - **Unknown fields** are ignored, never an error. They are not lost: list items are held
//!   as [`Raw<T>`], which keeps the object's original JSON text (bank fields included, numbers as
//!   written) next to the parsed value, for export and debugging.
//! - **Informational fields in an unexpected shape** (a code written as an object, as STET
//!   1.4.0.47's own example does for `appliedAuthenticationApproach`) are [`Lenient`]: read
//!   when they can be, kept as received when not, never a reason to refuse the answer.
//! - A few fields the standard requires but banks omit (`_links`, error `status` and
//!   `message`, 1.4's beneficiary on the request rather than on each transfer) are optional
//!   here; the field docs say so.
//!
//! ## The dialect switch
//!
//! Reading never needs the version. Writing does: a 1.4 bank wants `"amount": "12.10"` and
//! remittance lines as an array, a 1.5 bank wants `12.10` and an object. [`to_json_vec`],
//! [`to_json_string`] and [`to_json_value`] take a [`Dialect`]; plain `serde_json` calls write
//! 1.5. (The setting is thread-local for the duration of the call, since serde cannot pass
//! context to a field.) Request bodies written in 1.5 validate against the official 1.5.0.43
//! schema, and in 1.4 against 1.4.0.47: the tests check both.
//!
//! ## Example
//!
//! ```
//! use stet_models::{Dialect, HalTransactions, TransactionStatus, parse_response, to_json_string};
//!
//! // A 1.4 bank: amount as a string, date without time, remittance as an array,
//! // a field of its own.
//! let body = br#"{"transactions": [{
//!     "transactionAmount": {"amount": "12.10", "currency": "EUR"},
//!     "creditDebitIndicator": "DBIT", "status": "BOOK", "bookingDate": "2018-02-12",
//!     "remittanceInformation": ["CB CARREFOUR 12/02"], "cardNumber": "4970XXXXXXXX1234"}],
//!   "_links": {"self": {"href": "/v1/accounts/A1/transactions"}}}"#;
//!
//! let page: HalTransactions = parse_response(body)?;
//! let tx = &page.transactions[0];
//! assert_eq!(tx.status, TransactionStatus::Book);
//! assert_eq!(tx.transaction_amount.amount.to_string(), "12.10");
//! assert_eq!(tx.booking_date.unwrap().to_string(), "2018-02-12");
//! assert_eq!(tx.remittance_information.as_ref().unwrap().text(), "CB CARREFOUR 12/02");
//! assert!(tx.json().get().contains(r#""cardNumber": "4970XXXXXXXX1234""#)); // kept, as sent
//!
//! // Written back for a 1.5 consumer, the amount is a number with the same digits.
//! let out = to_json_string(&page, Dialect::V1_5)?;
//! assert!(out.contains(r#""amount":12.10"#));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Regenerating
//!
//! Edit `openapi/stet-psd2.openapi.yaml`, then run `cargo xtask codegen` and commit
//! `src/generated.rs`. The test `tests/codegen_up_to_date.rs` fails when the two disagree.

mod amount;
pub mod date;
mod dialect;
mod generated;
mod lenient;
mod open_enum;
mod operation;
mod raw;
mod remittance;
mod response;
mod workspace;

pub use amount::{Amount, ParseAmountError};
pub use date::{ParseDateError, StetDate, StetDateTime};
pub use dialect::{Dialect, to_json_string, to_json_value, to_json_vec};
pub use generated::*;
pub use lenient::Lenient;
pub use operation::Operation;
pub use raw::Raw;
pub use remittance::RemittanceInformation;
pub use response::{
    ParseError, Response, ResponseParser, SchemaCheck, SchemaCheckError, check_response,
    check_schema, parse_response, parse_with_every_response_parser,
};
pub use workspace::Workspace;
