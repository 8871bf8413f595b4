//! Runs the binary on the troubleshooting guide's example lines (one directory per
//! cause under tests/fixtures/guide) and checks every failure's cause.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn fixture(dir: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/guide")
        .join(dir)
}

fn analyze_json(args: &[&str]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_gatelog"))
        .arg("analyze")
        .args(["--format", "json", "--tz", "UTC"])
        .args(args)
        .output()
        .expect("run gatelog");
    let code = out.status.code().unwrap_or(-1);
    let mut json: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    gatelog_analyzer::report::shared::inline(&mut json);
    (code, json)
}

fn causes(dir: &str) -> Vec<String> {
    let path = fixture(dir);
    let (code, json) = analyze_json(&[path.to_str().expect("utf-8 path")]);
    assert_eq!(code, 0, "{json}");
    assert_eq!(json["schema"], "gatelog.report.v2");
    json["failures"]
        .as_array()
        .expect("failures array")
        .iter()
        .map(|f| f["cause"].as_str().unwrap_or("").to_string())
        .collect()
}

#[test]
fn cause_1_fpm_not_running() {
    assert_eq!(
        causes("1-fpm-not-running"),
        ["fpm-not-running", "fpm-not-running"]
    );
}

#[test]
fn cause_2_socket_permission_denied() {
    assert_eq!(
        causes("2-socket-permission-denied"),
        ["socket-permission-denied"]
    );
}

#[test]
fn cause_3_wrong_socket_path() {
    assert_eq!(causes("3-wrong-socket-path"), ["wrong-socket-path"]);
}

#[test]
fn cause_4_max_children_exhausted() {
    assert_eq!(
        causes("4-max-children-exhausted"),
        ["max-children-exhausted"]
    );
}

#[test]
fn cause_5_read_timeout() {
    assert_eq!(causes("5-read-timeout"), ["read-timeout"]);
}

#[test]
fn cause_6_worker_oom_killed() {
    assert_eq!(causes("6-worker-oom-killed"), ["worker-oom-killed"]);
}

#[test]
fn cause_7_invalid_response() {
    // The guide's lines as it prints them carry no `upstream:` context and come
    // with no FPM input: nothing says the upstream is PHP-FPM, so no PHP-FPM cause.
    let (_, bare) = analyze_json(&[fixture("7-invalid-response").to_str().unwrap()]);
    for f in bare["failures"].as_array().unwrap() {
        assert_eq!(f["cause"], "unknown", "{f}");
        assert!(
            f["reason"].as_str().unwrap().contains("PHP-FPM"),
            "{}",
            f["reason"]
        );
        assert!(
            !f["fix"].as_str().unwrap().contains("systemctl"),
            "{}",
            f["fix"]
        );
    }
    // The same lines as NGINX writes them in front of PHP-FPM (with the upstream's
    // scheme) are cause 7.
    let text = std::fs::read_to_string(fixture("7-invalid-response/error.log")).unwrap();
    let dir = std::env::temp_dir().join(format!("gatelog-guide7-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("error.log");
    let with_context: String = text
        .lines()
        .map(|l| {
            format!("{l}, client: 10.0.0.1, server: yourdomain.com, request: \"GET / HTTP/2.0\", upstream: \"fastcgi://unix:/run/php/php8.2-fpm.sock:\", host: \"yourdomain.com\"\n")
        })
        .collect();
    std::fs::write(&log, with_context).unwrap();
    let (_, json) = analyze_json(&[log.to_str().unwrap()]);
    let got: Vec<&str> = json["failures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["cause"].as_str().unwrap())
        .collect();
    assert_eq!(got, ["invalid-response", "invalid-response"]);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn same_lines_without_context_lower_the_confidence() {
    // Cause 6's NGINX line alone cannot tell an OOM kill from a crash.
    let path = fixture("6-worker-oom-killed/error.log");
    let (_, alone) = analyze_json(&[path.to_str().unwrap()]);
    let (_, full) = analyze_json(&[fixture("6-worker-oom-killed").to_str().unwrap()]);
    let c_alone = alone["failures"][0]["confidence"].as_f64().unwrap();
    let c_full = full["failures"][0]["confidence"].as_f64().unwrap();
    assert!(c_alone < c_full, "{c_alone} !< {c_full}");
}
