//! One parser per kind of input line. Parsers never panic on input and never
//! `unwrap()` input data: a line they do not understand is reported by the caller.

pub mod access;
pub mod fpm;
pub mod fpm_conf;
pub mod journal;
pub mod kernel;
pub mod nginx;
pub mod nginx_conf;
pub mod records;
pub mod syslog;
