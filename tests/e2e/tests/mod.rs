//! The tests, by topic.

mod faults;

use crate::Body;

/// Every test: (name, body).
pub fn all() -> Vec<(&'static str, Body)> {
    let mut v = Vec::new();
    v.extend(faults::all());
    v
}
