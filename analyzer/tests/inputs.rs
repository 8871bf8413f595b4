//! Whatever directory gatelog is pointed at: symlink loops end, unreadable entries
//! are listed and skipped (exit 1, report still written), FIFOs never block.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

const LINE: &str = "2026/12/03 11:56:06 [crit] 812#812: *8 connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory) while connecting to upstream, client: 127.0.0.1, server: x, request: \"GET /index.php HTTP/1.1\", upstream: \"fastcgi://unix:/run/php/php8.2-fpm.sock:\", host: \"x\"\n";

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("gatelog-inputs-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the analyzer with a deadline: a hang is a failure, not a stuck test.
fn run(mut cmd: Command) -> Output {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(20) {
            child.kill().ok();
            panic!("gatelog did not finish within 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn analyze(args: &[&Path]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatelog"));
    cmd.args(["analyze", "--format", "json"]).args(args);
    run(cmd)
}

fn report(out: &Output) -> Value {
    let mut report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "no JSON report ({e}); stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    gatelog_analyzer::report::shared::inline(&mut report);
    report
}

fn skipped_reasons(r: &Value) -> Vec<String> {
    r["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| format!("{}: {}", s["file"], s["reason"]))
        .collect()
}

#[test]
fn symlink_loops_end_and_each_file_is_read_once() {
    let d = TempDir::new("loops");
    std::fs::write(d.0.join("error.log"), LINE).unwrap();
    symlink(".", d.0.join("x")).unwrap();
    symlink(".", d.0.join("y")).unwrap();
    std::fs::create_dir(d.0.join("sub")).unwrap();
    symlink("..", d.0.join("sub/up")).unwrap();
    symlink("../error.log", d.0.join("sub/same.log")).unwrap();
    let out = analyze(&[&d.0, &d.0.join("error.log")]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report(&out);
    assert_eq!(r["failures"].as_array().unwrap().len(), 1);
    assert_eq!(
        r["inputs"].as_array().unwrap().len(),
        1,
        "{:#}",
        r["inputs"]
    );
    let reasons = skipped_reasons(&r);
    assert_eq!(
        reasons
            .iter()
            .filter(|s| s.contains("symlink loop"))
            .count(),
        3,
        "{reasons:#?}"
    );
}

#[test]
fn an_unreadable_entry_is_listed_and_the_rest_analysed() {
    let d = TempDir::new("unreadable");
    std::fs::write(d.0.join("error.log"), LINE).unwrap();
    let locked = d.0.join("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::write(locked.join("php-fpm.log"), "x\n").unwrap();
    std::fs::write(d.0.join("secret.log"), LINE).unwrap();
    for p in [&locked, &d.0.join("secret.log")] {
        let mode = if p.is_dir() { 0o700 } else { 0o600 };
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    std::fs::set_permissions(
        d.0.join("error.log"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    // Root reads everything: run as nobody then (setpriv, util-linux).
    let root = unsafe_geteuid() == 0;
    let mut cmd = if root {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]);
        c.arg(env!("CARGO_BIN_EXE_gatelog"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_gatelog"))
    };
    cmd.args(["analyze", "--format", "json"]).arg(&d.0);
    let out = run(cmd);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("locked"), "{stderr}");
    assert!(stderr.contains("secret.log"), "{stderr}");
    let r = report(&out);
    assert_eq!(r["failures"].as_array().unwrap().len(), 1);
    let reasons = skipped_reasons(&r);
    assert!(
        reasons
            .iter()
            .any(|s| s.contains("locked") && s.contains("ermission denied")),
        "{reasons:#?}"
    );
}

fn unsafe_geteuid() -> u32 {
    // The owner of /proc/self is the effective uid: no libc call needed.
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(u32::MAX)
}

#[test]
fn fifos_never_block() {
    let d = TempDir::new("fifo");
    std::fs::write(d.0.join("error.log"), LINE).unwrap();
    let fifo = d.0.join("pipe");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    // In a directory: skipped with a reason.
    let out = analyze(&[&d.0]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = report(&out);
    assert_eq!(r["failures"].as_array().unwrap().len(), 1);
    assert!(
        skipped_reasons(&r)
            .iter()
            .any(|s| s.contains("pipe") && s.contains("not a regular file")),
        "{:#?}",
        skipped_reasons(&r)
    );
    // Named explicitly: refused with a message that says what to do, the rest read.
    let out = analyze(&[&fifo, &d.0.join("error.log")]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("FIFO") && stderr.contains("standard input"),
        "{stderr}"
    );
    assert_eq!(report(&out)["failures"].as_array().unwrap().len(), 1);
}
