//! The analyzer on logs of real fault runs (tests/fixtures/real, see its README):
//! every failed request must get the injected cause, from records and from the plain
//! error log, one fault at a time and all of them mixed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn real() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real")
}

fn slug(cause: u64) -> &'static str {
    match cause {
        1 => "fpm-not-running",
        2 => "socket-permission-denied",
        3 => "wrong-socket-path",
        4 => "max-children-exhausted",
        5 => "read-timeout",
        6 => "worker-oom-killed",
        7 => "invalid-response",
        _ => "?",
    }
}

fn scenarios() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(real())
        .expect("fixture dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("scenario.json").exists())
        .collect();
    dirs.sort();
    assert_eq!(dirs.len(), 11, "fixture scenarios");
    dirs
}

/// request_id -> expected cause, for the failed requests of a scenario.
fn expected(dir: &Path) -> HashMap<String, &'static str> {
    let sc: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("scenario.json")).unwrap()).unwrap();
    let cause = slug(sc["cause"].as_u64().unwrap());
    sc["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| matches!(r["status"].as_u64(), Some(502 | 504)))
        .map(|r| (r["request_id"].as_str().unwrap().to_string(), cause))
        .collect()
}

fn analyze(files: &[PathBuf]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_gatelog"))
        .args(["analyze", "--format", "json", "--tz", "UTC"])
        .args(files)
        .output()
        .expect("run gatelog");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    gatelog_analyzer::report::shared::inline(&mut report);
    report
}

fn context(dir: &Path) -> Vec<PathBuf> {
    ["php-fpm.log", "kernel.log"]
        .iter()
        .map(|f| dir.join(f))
        .collect()
}

#[test]
fn each_fault_from_records() {
    for dir in scenarios() {
        let want = expected(&dir);
        let mut files = context(&dir);
        files.push(dir.join("gatelog.jsonl"));
        let report = analyze(&files);
        let failures = report["failures"].as_array().unwrap();
        assert_eq!(failures.len(), want.len(), "{}", dir.display());
        for f in failures {
            let id = f["request_id"].as_str().unwrap();
            assert_eq!(
                f["cause"],
                want[id],
                "{} {id}: {}",
                dir.display(),
                f["reason"]
            );
        }
    }
}

#[test]
fn each_fault_from_the_error_log() {
    for dir in scenarios() {
        let want = expected(&dir);
        let cause = *want.values().next().unwrap();
        let mut files = context(&dir);
        files.push(dir.join("nginx-error.log"));
        let report = analyze(&files);
        let failures = report["failures"].as_array().unwrap();
        assert_eq!(failures.len(), want.len(), "{}", dir.display());
        for f in failures {
            assert_eq!(f["cause"], cause, "{}: {}", dir.display(), f["reason"]);
            assert_eq!(f["status_inferred"], true);
        }
    }
}

#[test]
fn records_and_error_log_together_count_each_request_once() {
    for dir in scenarios() {
        let want = expected(&dir);
        let mut files = context(&dir);
        files.push(dir.join("gatelog.jsonl"));
        files.push(dir.join("nginx-error.log"));
        let report = analyze(&files);
        let failures = report["failures"].as_array().unwrap();
        assert_eq!(failures.len(), want.len(), "{}", dir.display());
        for f in failures {
            let seen: Vec<_> = f["seen_in"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s.as_str().unwrap())
                .collect();
            assert_eq!(seen, ["record", "error_log"], "{}", dir.display());
        }
    }
}

#[test]
fn all_faults_mixed_in_one_set_of_logs() {
    // Concatenate every scenario's logs in time order, as one incident.
    let mut dirs = scenarios();
    // By the time of the first error-log line, then by name: scenarios that began in
    // the same second ran separate FPM instances, whose lines cannot be ordered within
    // that second (the FPM log has whole seconds); in a real incident there is one FPM.
    let start = |d: &PathBuf| {
        let log = std::fs::read_to_string(d.join("nginx-error.log")).unwrap();
        (log.get(..19).unwrap_or("").to_string(), d.clone())
    };
    dirs.sort_by_key(start);
    let out = std::env::temp_dir().join(format!("gatelog-mixed-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let mut want = HashMap::new();
    for name in [
        "gatelog.jsonl",
        "nginx-error.log",
        "php-fpm.log",
        "kernel.log",
    ] {
        let mut all = String::new();
        for d in &dirs {
            all.push_str(&std::fs::read_to_string(d.join(name)).unwrap());
        }
        std::fs::write(out.join(name), all).unwrap();
    }
    for d in &dirs {
        want.extend(expected(d));
    }
    for with in [
        ["gatelog.jsonl", "php-fpm.log", "kernel.log"],
        ["nginx-error.log", "php-fpm.log", "kernel.log"],
    ] {
        let files: Vec<PathBuf> = with.iter().map(|f| out.join(f)).collect();
        let report = analyze(&files);
        let failures = report["failures"].as_array().unwrap();
        assert_eq!(failures.len(), want.len());
        if with[0] == "gatelog.jsonl" {
            for f in failures {
                let id = f["request_id"].as_str().unwrap();
                assert_eq!(f["cause"], want[id], "{id}: {}", f["reason"]);
            }
        } else {
            // Without request ids, compare the counts per cause.
            let mut got: HashMap<String, usize> = HashMap::new();
            for f in failures {
                *got.entry(f["cause"].as_str().unwrap().to_string())
                    .or_default() += 1;
            }
            let mut exp: HashMap<String, usize> = HashMap::new();
            for c in want.values() {
                *exp.entry(c.to_string()).or_default() += 1;
            }
            assert_eq!(got, exp);
        }
    }
    std::fs::remove_dir_all(&out).ok();
}

/// A real OOM run whose raw dmesg task table (`[  22645]    33 22645 ...`) once parsed
/// as boot stamps (22645 s): the kernel reader ran past the `Killed process` line and
/// the kill was reported as a crash.
#[test]
fn oom_kill_with_task_table_rows_in_raw_dmesg() {
    let dir =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/regressions/oom_task_rows");
    let want = expected(&dir);
    assert_eq!(want.len(), 1);
    for first in ["gatelog.jsonl", "nginx-error.log"] {
        let files: Vec<PathBuf> = [first, "php-fpm.log", "kernel.log"]
            .iter()
            .map(|f| dir.join(f))
            .collect();
        let report = analyze(&files);
        let failures = report["failures"].as_array().unwrap();
        assert_eq!(failures.len(), 1, "{first}");
        assert_eq!(
            failures[0]["cause"], "worker-oom-killed",
            "{first}: {}",
            failures[0]["reason"]
        );
    }
}

/// The demo's whole log directory, Debian's `combined` access log included: each
/// failure once, joined across record, error line and access line by time, client
/// and request line (no join key in `combined`).
#[test]
fn demo_directory_with_combined_access_log_counts_each_failure_once() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/regressions/demo_combined_access");
    let want = [
        ("GET /slow.php HTTP/1.1", 504, "read-timeout"),
        ("GET /crash.php HTTP/1.1", 502, "invalid-response"),
        ("GET /index.php HTTP/1.1", 502, "fpm-not-running"),
    ];
    let with_records: Vec<PathBuf> = vec![dir.clone()];
    let without_records: Vec<PathBuf> = ["access.log", "error.log", "php-fpm.log", "fpm.conf"]
        .iter()
        .map(|f| dir.join(f))
        .collect();
    for (files, record) in [(with_records, true), (without_records, false)] {
        let report = analyze(&files);
        let failures = report["failures"].as_array().unwrap();
        assert_eq!(failures.len(), want.len(), "{failures:#?}");
        for (request, status, cause) in want {
            let f = failures
                .iter()
                .find(|f| f["request"] == request)
                .unwrap_or_else(|| panic!("{request} missing"));
            assert_eq!(f["status"], status, "{request}");
            assert_eq!(f["cause"], cause, "{request}: {}", f["reason"]);
            let seen: Vec<&str> = f["seen_in"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            let mut expect = vec!["error_log", "access_log"];
            if record {
                expect.insert(0, "record");
            }
            for s in &expect {
                assert!(seen.contains(s), "{request}: seen in {seen:?}");
            }
            assert_eq!(seen.len(), expect.len(), "{request}: seen in {seen:?}");
        }
    }
}
