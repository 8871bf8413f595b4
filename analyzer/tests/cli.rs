//! The command line as a shell sees it: bad numbers and windows are usage errors,
//! a reader that stops early ends the run quietly, and a report that cannot be
//! written is an error with a message.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};

fn gatelog() -> Command {
    Command::new(env!("CARGO_BIN_EXE_gatelog"))
}

fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/regressions/demo_combined_access")
}

/// An error log with many failures: a JSON report far larger than a pipe's buffer.
fn big_error_log() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gatelog-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("error.log");
    let mut text = String::new();
    for i in 0..5_000 {
        let (m, s) = (i / 60 % 60, i % 60);
        text.push_str(&format!(
            "2026/12/03 11:{m:02}:{s:02} [crit] 812#812: *{i} connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory) while connecting to upstream, client: 127.0.0.1, server: x, request: \"GET /{i}.php HTTP/1.1\", upstream: \"fastcgi://unix:/run/php/php8.2-fpm.sock:\", host: \"x\"\n"
        ));
    }
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_reader_that_stops_early_ends_the_run_quietly() {
    let log = big_error_log();
    let mut child = gatelog()
        .args(["analyze", "--format", "json"])
        .arg(&log)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut head = [0u8; 100];
    child.stdout.take().unwrap().read_exact(&mut head).unwrap();
    // The pipe closes here, as `| head -c 100` does.
    let out = child.wait_with_output().unwrap();
    std::fs::remove_dir_all(log.parent().unwrap()).ok();
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stderr), "");
}

#[test]
fn closed_or_full_stdout_is_an_error_with_a_message() {
    let closed = Command::new("sh")
        .arg("-c")
        .arg("exec \"$0\" analyze \"$1\" >&-")
        .arg(env!("CARGO_BIN_EXE_gatelog"))
        .arg(demo())
        .output()
        .unwrap();
    assert_eq!(closed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&closed.stderr).contains("standard output is closed"));

    let full = gatelog()
        .arg("analyze")
        .arg(demo())
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    assert_eq!(full.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&full.stderr).contains("cannot write the report"));

    // /dev/null on purpose is fine.
    let null = gatelog()
        .arg("analyze")
        .arg(demo())
        .stdout(std::fs::File::create("/dev/null").unwrap())
        .output()
        .unwrap();
    assert_eq!(null.status.code(), Some(0));
}

#[test]
fn senseless_numbers_and_windows_are_usage_errors() {
    for args in [
        vec!["--worker-mb", "0"],
        vec!["--ram-mb", "18446744073709551615"],
        vec!["--reserved-mb", "-1"],
        vec!["--since", "2021-01-01", "--until", "2020-01-01"],
    ] {
        let out = gatelog()
            .arg("analyze")
            .args(&args)
            .arg(demo())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(!out.stderr.is_empty(), "{args:?}");
    }
    let far = gatelog()
        .args([
            "analyze",
            "--format",
            "json",
            "--until",
            "9999-12-31T23:59:59Z",
        ])
        .arg(demo())
        .output()
        .unwrap();
    assert_eq!(
        far.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&far.stderr)
    );
}
