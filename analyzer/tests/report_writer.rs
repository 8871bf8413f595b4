//! The JSON report is written on its own thread: a failing output must still end the
//! analysis with that output's error (a closed pipe stays quiet in the binary), and a
//! working one must get every failure in log order.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::Parser;
use gatelog_analyzer::analyze::{self, AnalyzeError};
use gatelog_analyzer::cli::{Cli, Command};

/// An error log of `n` refused connections, one a second.
fn error_log(n: usize) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gatelog-report-writer-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join(format!("error-{n}.log"));
    let mut log = String::new();
    for i in 0..n {
        let (m, s) = (i / 60 % 60, i % 60);
        log.push_str(&format!(
            "2026/04/02 14:{m:02}:{s:02} [error] 1234#1234: *{i} connect() to unix:/run/php/php8.2-fpm.sock failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: _, request: \"GET /r{i} HTTP/1.1\", upstream: \"fastcgi://unix:/run/php/php8.2-fpm.sock:\", host: \"localhost\"\n"
        ));
    }
    std::fs::write(&path, log).expect("write log");
    path
}

fn run(log: &Path, out: &mut (dyn Write + Send)) -> Result<(), AnalyzeError> {
    let argv = ["gatelog", "analyze", "--format", "json", "--tz", "UTC"]
        .into_iter()
        .map(String::from)
        .chain([log.display().to_string()]);
    let Command::Analyze(args) = Cli::try_parse_from(argv).expect("arguments").command else {
        panic!("not analyze");
    };
    analyze::run(&args, out)
}

/// Takes `left` bytes, then fails every write as a closed pipe does.
struct ClosesAfter {
    left: usize,
}

impl Write for ClosesAfter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::from(io::ErrorKind::BrokenPipe));
        }
        let n = buf.len().min(self.left);
        self.left -= n;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failing_output_ends_the_analysis_with_its_error() {
    let log = error_log(3000);
    for left in [0, 1, 5000, 200_000] {
        let mut out = io::BufWriter::with_capacity(1024, ClosesAfter { left });
        match run(&log, &mut out) {
            Err(AnalyzeError::Output(e)) => assert_eq!(e.kind(), io::ErrorKind::BrokenPipe),
            other => panic!("after {left} bytes: {other:?}"),
        }
    }
}

#[test]
fn every_failure_is_written_in_log_order() {
    let log = error_log(3000);
    let mut out = Vec::new();
    run(&log, &mut out).expect("analysis");
    let report: serde_json::Value = serde_json::from_slice(&out).expect("JSON report");
    let failures = report["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 3000);
    for (i, f) in failures.iter().enumerate() {
        assert_eq!(f["request"], format!("GET /r{i} HTTP/1.1"), "failure {i}");
    }
}
