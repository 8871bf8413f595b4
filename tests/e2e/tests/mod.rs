//! The tests, by topic.

mod analyzer;
mod analyzer_configs;
mod analyzer_http;
mod analyzer_streams;
mod config;
mod doctor;
mod faults;
mod html;
mod logs;
mod metrics;
mod protocol;
mod reliability;
mod retries;
mod upstreams;

use crate::Body;

/// Every test: (name, body).
pub fn all() -> Vec<(&'static str, Body)> {
    let mut v = Vec::new();
    // The analyzer's mixed runs take the longest (~10 s each): they start first.
    v.extend(analyzer::all());
    v.extend(analyzer_streams::all());
    v.extend(analyzer_configs::all());
    v.extend(analyzer_http::all());
    v.extend(html::all());
    v.extend(reliability::all());
    v.extend(faults::all());
    v.extend(retries::all());
    v.extend(upstreams::all());
    v.extend(protocol::all());
    v.extend(logs::all());
    v.extend(metrics::all());
    v.extend(config::all());
    v.extend(doctor::all());
    v
}
