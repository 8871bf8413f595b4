//! Any bytes as one file of unknown kind: detection, then whatever it was taken for.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let file = common::dir().join("input.log");
    if std::fs::write(&file, data).is_err() {
        return;
    }
    common::analyze(&[file.display().to_string()]);
});
