//! Memcheck mode (`GATELOG_E2E_VALGRIND=1`): every NGINX the suite starts (and every
//! `nginx -t`) runs under `valgrind --tool=memcheck`, one log per process (master and
//! its single worker). When NGINX stops, the logs are read: an error whose stacks (the
//! error's own, or where the memory was allocated or freed) pass through gatelog code,
//! or a block gatelog allocated and definitely lost, fails the test. Errors elsewhere
//! (NGINX, libc) are printed as a count, not failed: they are not this project's.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable that turns memcheck mode on.
pub const VALGRIND_ENV: &str = "GATELOG_E2E_VALGRIND";

/// `true` when [`VALGRIND_ENV`] is set to something other than "" or "0".
pub fn enabled() -> bool {
    std::env::var(VALGRIND_ENV).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// `binary` run under memcheck, each process logging to `<log_dir>/valgrind-<tag>.<pid>.log`.
pub fn command(binary: &Path, log_dir: &Path, tag: &str) -> Command {
    let mut cmd = Command::new("valgrind");
    cmd.arg("--tool=memcheck")
        .arg(format!(
            "--log-file={}/valgrind-{tag}.%p.log",
            log_dir.display()
        ))
        // NGINX unloads the module at exit: without this its frames in the leak report
        // would be `???`.
        .arg("--keep-debuginfo=yes")
        .arg("--leak-check=full")
        .arg("--show-leak-kinds=definite")
        .arg("--errors-for-leak-kinds=definite")
        .arg("--num-callers=40")
        .arg("--error-limit=no")
        .arg(binary);
    cmd
}

/// One error (or definite leak) memcheck reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub log: PathBuf,
    /// The first line (`Invalid read of size 8`, `32 bytes in 1 blocks are definitely
    /// lost ...`).
    pub what: String,
    /// A stack frame is in gatelog (the module or the record crate).
    pub in_gatelog: bool,
    /// The whole block, without the `==pid==` prefixes.
    pub text: String,
}

/// What memcheck said for one process.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Report {
    pub findings: Vec<Finding>,
    /// `ERROR SUMMARY` was printed (the process exited, not killed).
    pub complete: bool,
}

/// Splits a memcheck log into its blocks and keeps those with stack frames.
pub fn parse(log: &Path, text: &str) -> Report {
    let mut report = Report::default();
    let mut block: Vec<&str> = Vec::new();
    let flush = |block: &mut Vec<&str>, report: &mut Report| {
        let frames = block.iter().filter(|l| is_frame(l)).count();
        if frames > 0 {
            report.findings.push(Finding {
                log: log.to_path_buf(),
                what: block[0].trim().to_string(),
                in_gatelog: block.iter().any(|l| is_frame(l) && is_gatelog(l)),
                text: block.join("\n"),
            });
        }
        block.clear();
    };
    for line in text.lines() {
        // "==1234== message"; other lines (rare: a program's own output) are skipped.
        let Some(rest) = line.strip_prefix("==").and_then(|l| {
            l.split_once("== ")
                .map(|(_, m)| m)
                .or_else(|| l.strip_suffix("==").map(|_| ""))
        }) else {
            continue;
        };
        if rest.trim().is_empty() {
            flush(&mut block, &mut report);
            continue;
        }
        if rest.starts_with("ERROR SUMMARY:") {
            report.complete = true;
        }
        block.push(rest);
    }
    flush(&mut block, &mut report);
    report
}

fn is_frame(line: &str) -> bool {
    let t = line.trim_start();
    (t.starts_with("at 0x") || t.starts_with("by 0x")) && t.contains(": ")
}

/// A frame of the module's `.so`, or a symbol of its crates.
fn is_gatelog(frame: &str) -> bool {
    frame.contains("ngx_http_gatelog_module") || frame.contains("gatelog_record")
}

/// Reads the memcheck logs `valgrind-<tag>.<pid>.log` in `dir`.
pub fn read_dir(dir: &Path, tag: &str) -> Result<Vec<Report>, String> {
    let start = format!("valgrind-{tag}.");
    let mut out = Vec::new();
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for e in entries.flatten() {
        let p = e.path();
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with(&start) && name.ends_with(".log") {
            let text = std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
            out.push(parse(&p, &text));
        }
    }
    Ok(out)
}

/// Checks the memcheck logs of `tag` in `dir`: `Err` lists the findings in gatelog
/// frames (or says that there is no log at all); otherwise a one-line summary.
pub fn check(dir: &Path, tag: &str) -> Result<String, String> {
    let reports = read_dir(dir, tag)?;
    if reports.is_empty() {
        return Err(format!(
            "memcheck: no valgrind-{tag}.*.log in {}: did valgrind run?",
            dir.display()
        ));
    }
    let mine: Vec<&Finding> = reports
        .iter()
        .flat_map(|r| &r.findings)
        .filter(|f| f.in_gatelog)
        .collect();
    if !mine.is_empty() {
        return Err(format!(
            "memcheck: {} error(s) in gatelog frames:\n{}",
            mine.len(),
            mine.iter()
                .map(|f| format!("{}:\n{}", f.log.display(), f.text))
                .collect::<Vec<_>>()
                .join("\n\n")
        ));
    }
    let others: Vec<&str> = reports
        .iter()
        .flat_map(|r| &r.findings)
        .map(|f| f.what.as_str())
        .collect();
    let complete = reports.iter().filter(|r| r.complete).count();
    Ok(format!(
        "memcheck: {} process(es) ({complete} ran to exit) in {}: 0 errors in gatelog frames, \
         {} elsewhere{}",
        reports.len(),
        dir.display(),
        others.len(),
        if others.is_empty() {
            String::new()
        } else {
            format!(" ({})", others.join("; "))
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped like memcheck 3.19's output for an NGINX worker (frames shortened).
    const LOG: &str = "\
==22106== Memcheck, a memory error detector
==22106== Copyright (C) 2002-2022, and GNU GPL'd, by Julian Seward et al.
==22106== Command: /usr/sbin/nginx -p /tmp/p/ -c /tmp/p/conf/nginx.conf
==22106== Parent PID: 22084
==22106== 
==22106== Invalid read of size 8
==22106==    at 0x54A97AC: ngx_http_gatelog_module::ffi::file::RecordFile::write (file.rs:120)
==22106==    by 0x54A95A9: ngx_http_gatelog_module::ffi::module::log_handler (module.rs:230)
==22106==    by 0x16F0EF: ngx_http_log_request (in /usr/sbin/nginx)
==22106==  Address 0x0 is not stack'd, malloc'd or (recently) free'd
==22106== 
==22106== Syscall param epoll_ctl(event) points to uninitialised byte(s)
==22106==    at 0x4C7E8DA: epoll_ctl (syscall-template.S:120)
==22106==    by 0x15E2C1: ??? (in /usr/sbin/nginx)
==22106== 
==22106== HEAP SUMMARY:
==22106==     in use at exit: 234,315 bytes in 27 blocks
==22106== 
==22106== 8 bytes in 1 blocks are definitely lost in loss record 1 of 16
==22106==    at 0x48417B4: malloc (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)
==22106==    by 0x154CFE: ngx_alloc (in /usr/sbin/nginx)
==22106==    by 0x12E404: ngx_set_environment (in /usr/sbin/nginx)
==22106== 
==22106== 32 bytes in 1 blocks are definitely lost in loss record 2 of 16
==22106==    at 0x48417B4: malloc (in /usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so)
==22106==    by 0x54A97AC: ??? (in /work/x/nginx-build/out/deb-1.22/ngx_http_gatelog_module.so)
==22106==    by 0x14360D: ngx_conf_parse (in /usr/sbin/nginx)
==22106== 
==22106== ERROR SUMMARY: 4 errors from 4 contexts (suppressed: 0 from 0)
";

    #[test]
    fn blocks_with_frames_are_findings_and_gatelog_frames_are_recognised() {
        let r = parse(Path::new("v.log"), LOG);
        assert!(r.complete);
        let what: Vec<(&str, bool)> = r
            .findings
            .iter()
            .map(|f| (f.what.as_str(), f.in_gatelog))
            .collect();
        assert_eq!(
            what,
            [
                ("Invalid read of size 8", true),
                (
                    "Syscall param epoll_ctl(event) points to uninitialised byte(s)",
                    false
                ),
                (
                    "8 bytes in 1 blocks are definitely lost in loss record 1 of 16",
                    false
                ),
                (
                    "32 bytes in 1 blocks are definitely lost in loss record 2 of 16",
                    true
                ),
            ]
        );
        assert!(r.findings[0].text.contains("Address 0x0 is not stack'd"));
    }

    #[test]
    fn a_killed_process_has_no_summary() {
        let r = parse(
            Path::new("v.log"),
            "==1== Memcheck, a memory error detector\n==1== \n",
        );
        assert!(!r.complete);
        assert!(r.findings.is_empty());
    }
}
