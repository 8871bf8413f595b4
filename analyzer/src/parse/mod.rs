//! One parser per kind of input line. Parsers never panic on input and never
//! `unwrap()` input data: a line they do not understand is reported by the caller.

pub mod kernel;
pub mod syslog;
