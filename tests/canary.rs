//! (being written)

#![allow(missing_docs)]

mod support;
