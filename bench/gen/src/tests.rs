//! The generator's promises, checked on small inputs: the same seed gives the same bytes,
//! and the incident input is what its name says (most error-log lines are upstream
//! failures, of every kind, each with its record).

use std::path::PathBuf;

use super::generate;

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "gatelog-bench-gen-test-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("scratch dir");
    d
}

fn read(dir: &std::path::Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file)).expect("generated file")
}

const FILES: [&str; 5] = [
    "error.log",
    "php8.2-fpm.log",
    "kern.log",
    "gatelog.json",
    "manifest.json",
];

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    for incident in [false, true] {
        let (a, b, c) = (scratch("a"), scratch("b"), scratch("c"));
        generate(3, 2_000_000, incident, &a);
        generate(3, 2_000_000, incident, &b);
        generate(4, 2_000_000, incident, &c);
        for f in FILES {
            assert!(
                read(&a, f) == read(&b, f),
                "{f} differs for the same seed (incident {incident})"
            );
        }
        assert!(read(&a, "error.log") != read(&c, "error.log"));
        for d in [a, b, c] {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// `"name": N` in the manifest.
fn manifest_count(manifest: &str, name: &str) -> Option<u64> {
    let at = manifest.find(&format!("\"{name}\": "))? + name.len() + 4;
    manifest[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[test]
fn incident_is_dense_with_failures_of_every_kind() {
    let d = scratch("incident");
    generate(1, 5_000_000, true, &d);
    let manifest = String::from_utf8(read(&d, "manifest.json")).expect("utf-8");
    assert!(manifest.contains("\"input\": \"incident\""));
    for kind in [
        "connect_enoent_fpm_down",
        "connect_enoent_wrong_path",
        "connect_eacces",
        "connect_econnrefused",
        "connect_eagain",
        "upstream_timed_out",
        "recv_reset_104",
        "prematurely_closed",
        "other_backend",
    ] {
        let n = manifest_count(&manifest, kind).unwrap_or(0);
        assert!(n > 0, "no {kind} in the incident input: {manifest}");
    }
    let total = manifest_count(&manifest, "total").expect("total");
    assert_eq!(manifest_count(&manifest, "records"), Some(total));
    let records = read(&d, "gatelog.json");
    assert_eq!(
        records.iter().filter(|&&b| b == b'\n').count() as u64,
        total
    );

    // Upstream failures as NGINX words them, on lines of their own.
    let err = String::from_utf8(read(&d, "error.log")).expect("utf-8");
    let lines = err.lines().count();
    let failures = err
        .lines()
        .filter(|l| {
            !l.contains("FastCGI sent in stderr")
                && (l.contains("[error]") || l.contains("[crit]"))
                && (l.contains(" while connecting to upstream,")
                    || l.contains(" while reading response header from upstream,"))
        })
        .count();
    assert!(
        failures * 2 > lines,
        "{failures} failure lines of {lines}: not most of the error log"
    );
    assert!(err.contains("upstream: \"http://127.0.0.1:3000/"));
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn quiet_manifest_has_no_other_backend() {
    let d = scratch("quiet");
    generate(1, 1_000_000, false, &d);
    let manifest = String::from_utf8(read(&d, "manifest.json")).expect("utf-8");
    assert!(!manifest.contains("other_backend"));
    assert!(!manifest.contains("\"input\""));
    let _ = std::fs::remove_dir_all(d);
}
