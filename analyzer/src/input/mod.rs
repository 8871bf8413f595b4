//! Finding, opening and recognising inputs.

pub mod reader;
