//! Two files, the first with a role flag chosen by the first byte (its lines read
//! as that role whatever their framing), the second detected: context and failure
//! side meet in the join and the classifier.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

const ROLES: [&str; 8] = [
    "--nginx-log",
    "--access-log",
    "--records",
    "--fpm-log",
    "--kernel-log",
    "--journal",
    "--nginx-conf",
    "--fpm-conf",
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let (a, b) = match rest.iter().position(|&x| x == 0xff) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, &[][..]),
    };
    let fa = common::dir().join("role.log");
    let fb = common::dir().join("other.log");
    if std::fs::write(&fa, a).is_err() || std::fs::write(&fb, b).is_err() {
        return;
    }
    common::analyze(&[
        ROLES[usize::from(sel) % ROLES.len()].to_string(),
        fa.display().to_string(),
        fb.display().to_string(),
    ]);
});
