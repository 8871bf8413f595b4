//! gatelog analyzer: classify every NGINX 502/504 in front of PHP-FPM into one of
//! seven causes, from gatelog records or plain NGINX error logs, correlated with the
//! PHP-FPM, kernel and systemd logs and the configs.
//!
//! Data flow: [`input`] finds and recognises files; [`context`] loads the FPM,
//! kernel, journal and config inputs into a compact index; [`stream`] reads the
//! failure side (error logs, records, access logs) merged by time; [`join`] makes
//! one [`failure::Failure`] per request; [`classify`] decides its cause; [`fix`]
//! writes the remedy; [`report`] renders text, markdown or JSON.

pub mod analyze;
pub mod classify;
pub mod cli;
pub mod context;
pub mod doctor;
pub mod failure;
pub mod fix;
pub mod input;
pub mod join;
pub mod model;
pub mod parse;
pub mod progress;
pub mod report;
pub mod stream;
pub mod time;
pub mod windows;
