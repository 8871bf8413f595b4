//! The analyzer on log excerpts shaped like the ones people post when NGINX answers
//! 502/504 (tests/fixtures/realworld, see its README): other backends than PHP-FPM,
//! container and syslog framings, pasted lines, configs that are not ours. Each
//! directory's `expect.json` says what an honest report holds.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn corpus() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/realworld")
}

fn analyze(dir: &Path, expect: &Value) -> Value {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatelog"));
    cmd.args(["analyze", "--format", "json", "--tz", "UTC"]);
    match expect["args"].as_array() {
        // Role flags take a file name relative to the case's directory.
        Some(args) => {
            for a in args.iter().filter_map(Value::as_str) {
                if a.starts_with("--") {
                    cmd.arg(a);
                } else {
                    cmd.arg(dir.join(a));
                }
            }
        }
        None => {
            cmd.arg(dir);
        }
    }
    let out = cmd.output().expect("run gatelog");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}: {}",
        dir.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let mut report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    gatelog_analyzer::report::shared::inline(&mut report);
    report
}

fn strings(v: &Value) -> Vec<&str> {
    match v {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// Everything wrong with one failure, as readable lines.
fn check_failure(got: &Value, want: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    let reason = got["reason"].as_str().unwrap_or_default();
    let fix = got["fix"].as_str().unwrap_or_default();
    let causes = strings(&want["cause"]);
    if !causes.contains(&got["cause"].as_str().unwrap_or_default()) {
        errs.push(format!(
            "cause {} not in {causes:?} ({reason})",
            got["cause"]
        ));
    }
    for key in ["protocol", "status", "request"] {
        let field = if key == "protocol" {
            "upstream_protocol"
        } else {
            key
        };
        if !want[key].is_null() && got[field] != want[key] {
            errs.push(format!("{field} {} != {}", got[field], want[key]));
        }
    }
    let confidence = got["confidence"].as_f64().unwrap_or(-1.0);
    if let Some(max) = want["max_confidence"].as_f64() {
        if confidence > max {
            errs.push(format!("confidence {confidence} > {max} ({reason})"));
        }
    }
    if let Some(min) = want["min_confidence"].as_f64() {
        if confidence < min {
            errs.push(format!("confidence {confidence} < {min} ({reason})"));
        }
    }
    if want["time_null"] == true && !got["time"].is_null() {
        errs.push(format!("time {} should be unknown", got["time"]));
    }
    for (text, what) in [(reason, "reason"), (fix, "fix")] {
        for s in strings(&want[format!("{what}_contains")]) {
            if !text.contains(s) {
                errs.push(format!("{what} lacks {s:?}: {text}"));
            }
        }
        for s in strings(&want[format!("{what}_excludes")]) {
            if text.contains(s) {
                errs.push(format!("{what} has {s:?}: {text}"));
            }
        }
    }
    let seen = strings(&want["seen_in"]);
    if !seen.is_empty() {
        let got_seen = strings(&got["seen_in"]);
        if got_seen != seen {
            errs.push(format!("seen_in {got_seen:?} != {seen:?}"));
        }
    }
    errs
}

#[test]
fn real_world_excerpts() {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(corpus())
        .expect("corpus")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("expect.json").exists())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 26, "corpus has {} cases", dirs.len());
    let mut errors = Vec::new();
    for dir in &dirs {
        let expect: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join("expect.json")).unwrap())
                .unwrap();
        let report = analyze(dir, &expect);
        let got = report["failures"].as_array().cloned().unwrap_or_default();
        let want = expect["failures"].as_array().cloned().unwrap_or_default();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        if got.len() != want.len() {
            errors.push(format!(
                "{name}: {} failures, expected {}: {:#?}",
                got.len(),
                want.len(),
                got.iter()
                    .map(|f| format!("{} {} {}", f["cause"], f["request"], f["reason"]))
                    .collect::<Vec<_>>()
            ));
            continue;
        }
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            for e in check_failure(g, w) {
                errors.push(format!("{name} #{i}: {e}"));
            }
        }
    }
    assert!(
        errors.is_empty(),
        "{} of {} cases wrong:\n{}",
        errors
            .iter()
            .map(|e| e.split(':').next().unwrap_or_default().split(" #").next())
            .collect::<std::collections::HashSet<_>>()
            .len(),
        dirs.len(),
        errors.join("\n")
    );
}
