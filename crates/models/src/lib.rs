//! # stet-models
//!
//! (crate docs written below once the API settles)

mod amount;
pub mod date;
mod dialect;
mod generated;
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
pub use operation::Operation;
pub use raw::Raw;
pub use remittance::RemittanceInformation;
pub use workspace::Workspace;
pub use response::{
    ParseError, Response, SchemaCheck, SchemaCheckError, check_response, check_schema,
    parse_response, parse_with_every_response_parser,
};
