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
mod mixed;
mod protocol;
mod reliability;
mod retries;
mod upstreams;

use crate::Test;

/// Every test: (name, body).
pub fn all() -> Vec<Test> {
    let mut v: Vec<Test> = Vec::new();
    // The analyzer's mixed runs take the longest (~10 s each): they start first.
    v.extend(analyzer::all());
    v.extend(analyzer_streams::all().into_iter().map(Test::from));
    v.extend(analyzer_configs::all().into_iter().map(Test::from));
    v.extend(analyzer_http::all().into_iter().map(Test::from));
    v.extend(html::all().into_iter().map(Test::from));
    v.extend(reliability::all().into_iter().map(Test::from));
    v.extend(faults::all());
    v.extend(retries::all().into_iter().map(Test::from));
    v.extend(upstreams::all().into_iter().map(Test::from));
    v.extend(protocol::all().into_iter().map(Test::from));
    v.extend(logs::all().into_iter().map(Test::from));
    v.extend(metrics::all().into_iter().map(Test::from));
    v.extend(config::all().into_iter().map(Test::from));
    v.extend(doctor::all().into_iter().map(Test::from));
    v
}
