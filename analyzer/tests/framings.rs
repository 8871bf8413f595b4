//! The logs of the real fault runs (tests/fixtures/real), re-framed the way they
//! reach people outside one Debian box — `docker logs -t` of a container writing
//! NGINX and PHP-FPM lines to one stream, `docker compose logs` with colours and with
//! `-t`, `kubectl logs --prefix --timestamps`, `journalctl -u nginx -u php-fpm` (text
//! and JSON), docker's json-file, one unframed stream of both (supervisord, ddev),
//! PHP-FPM logging through syslog given with `--fpm-log` — must give every failure
//! the same cause, confidence and status as the plain files. Lines pasted without
//! NGINX's date, and standard input, are checked here too.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn real() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/real")
}

fn scenarios() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(real())
        .expect("fixture dir")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("scenario.json").exists())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 11, "fixture scenarios");
    dirs
}

fn gatelog(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatelog"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run gatelog");
    // A child that stops before reading (a usage error) closes the pipe: what it
    // printed and its status are the test's business, not the write's.
    let writer = stdin.map(|text| {
        let mut pipe = child.stdin.take().expect("stdin");
        let text = text.to_string();
        std::thread::spawn(move || {
            let _ = pipe.write_all(text.as_bytes());
        })
    });
    let out = child.wait_with_output().expect("gatelog output");
    if let Some(w) = writer {
        let _ = w.join();
    }
    out
}

fn analyze(files: &[&Path], flags: &[&str]) -> Value {
    let mut args = vec!["analyze", "--format", "json", "--tz", "UTC"];
    args.extend_from_slice(flags);
    let paths: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    args.extend(paths.iter().map(String::as_str));
    let out = gatelog(&args, None);
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

/// (cause, status, confidence) of every failure, sorted: what must not change.
fn verdicts(report: &Value) -> Vec<(String, u64, String)> {
    let mut v: Vec<_> = report["failures"]
        .as_array()
        .expect("failures")
        .iter()
        .map(|f| {
            (
                f["cause"].as_str().unwrap_or("?").to_string(),
                f["status"].as_u64().unwrap_or(0),
                format!("{}", f["confidence"]),
            )
        })
        .collect();
    v.sort();
    v
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// (year, month, day, hour, minute, second).
type Civil = (u32, u32, u32, u32, u32, u32);

/// A line's time, from NGINX's or FPM's date.
fn line_time(line: &str) -> Option<Civil> {
    let n = |s: &str| s.parse::<u32>().ok();
    let b = line.as_bytes();
    if b.len() > 19 && b[4] == b'/' && b[7] == b'/' {
        return Some((
            n(&line[0..4])?,
            n(&line[5..7])?,
            n(&line[8..10])?,
            n(&line[11..13])?,
            n(&line[14..16])?,
            n(&line[17..19])?,
        ));
    }
    if b.first() == Some(&b'[') && b.len() > 21 && b[3] == b'-' {
        let month = MONTHS.iter().position(|m| *m == &line[4..7])? as u32 + 1;
        return Some((
            n(&line[8..12])?,
            month,
            n(&line[1..3])?,
            n(&line[13..15])?,
            n(&line[16..18])?,
            n(&line[19..21])?,
        ));
    }
    None
}

/// The NGINX error log and the FPM log of a scenario as one stream in time order:
/// (time, service, line); a line without a date keeps the time of the line before.
fn merged(dir: &Path) -> Vec<(Civil, &'static str, String)> {
    let mut out = Vec::new();
    for (file, service) in [("nginx-error.log", "web"), ("php-fpm.log", "php")] {
        let text = std::fs::read_to_string(dir.join(file)).expect("fixture log");
        let mut last = (1970, 1, 1, 0, 0, 0);
        for line in text.lines() {
            let t = line_time(line).unwrap_or(last);
            last = t;
            out.push((t, service, line.to_string()));
        }
    }
    // Stable: lines of one file keep their order within a second.
    out.sort_by_key(|(t, _, _)| *t);
    out
}

/// `docker logs -t`'s RFC3339NanoFixed stamp, the i-th line a microsecond later.
fn rfc3339(t: Civil, i: usize) -> String {
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        t.0,
        t.1,
        t.2,
        t.3,
        t.4,
        t.5,
        (i % 1000) * 1000
    )
}

/// RFC 3164 / `journalctl -o short`'s `Nov 23 22:12:55` (`%b %e %T` in syslog).
fn rfc3164(t: Civil, pad_day: bool) -> String {
    let day = if pad_day {
        format!("{:>2}", t.2)
    } else {
        format!("{:02}", t.2)
    };
    format!(
        "{} {} {:02}:{:02}:{:02}",
        MONTHS[(t.1 - 1) as usize],
        day,
        t.3,
        t.4,
        t.5
    )
}

/// Microseconds since the epoch of a UTC civil time (days from civil, Hinnant).
fn epoch_us(t: Civil) -> i64 {
    let (y, m, d) = (t.0 as i64, t.1 as i64, t.2 as i64);
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 86_400) + t.3 as i64 * 3600 + t.4 as i64 * 60 + t.5 as i64) * 1_000_000
}

/// FPM's own line as its syslog record says it (zlog.c: `[LEVEL] ` and the
/// message, no date).
fn fpm_syslog_body(line: &str) -> Option<String> {
    let rest = line.split_once("] ")?.1;
    let (level, msg) = rest.split_once(": ")?;
    Some(format!("[{level}] {msg}"))
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("gatelog-framings-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        Scratch(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.0.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn reframed_real_runs_give_the_same_verdicts() {
    for dir in scenarios() {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let kernel = dir.join("kernel.log");
        let plain = analyze(
            &[
                &dir.join("nginx-error.log"),
                &dir.join("php-fpm.log"),
                &kernel,
            ],
            &[],
        );
        let want = verdicts(&plain);
        assert!(!want.is_empty(), "{name}: no failure in the plain files");
        let scratch = Scratch::new(&name);
        let lines = merged(&dir);
        let mut docker = String::new();
        // supervisord or ddev: both programs' stderr in one unframed stream.
        let mut mixed = String::new();
        let mut compose = String::new();
        let mut compose_t = String::new();
        let mut kubectl = String::new();
        let mut journal = String::new();
        let mut docker_json = String::new();
        let mut journal_json = String::new();
        for (i, (t, service, line)) in lines.iter().enumerate() {
            let stamp = rfc3339(*t, i);
            docker.push_str(&format!("{stamp} {line}\n"));
            mixed.push_str(&format!("{line}\n"));
            // compose v2: `%-Ns | ` coloured on a terminal.
            let colour = if *service == "web" { "36" } else { "33" };
            compose.push_str(&format!("\x1b[{colour}m{service}-1  | \x1b[0m{line}\n"));
            compose_t.push_str(&format!("{service}_1  | {stamp} {line}\n"));
            let container = if *service == "web" {
                "nginx"
            } else {
                "php-fpm"
            };
            kubectl.push_str(&format!(
                "[pod/shop-7c5b4f6c8-x2x9q/{container}] {stamp} {line}\n"
            ));
            // journalctl -u nginx -u php-fpm: NGINX and FPM's stderr as the journal
            // captured them (an identifier without a PHP version, as on RHEL: Debian's
            // `php-fpm8.2` would tell the version, which the plain files do not).
            let ident = if *service == "web" {
                "nginx[2561]"
            } else {
                "php-fpm[2557]"
            };
            journal.push_str(&format!("{} web1 {ident}: {line}\n", rfc3164(*t, false)));
            // /var/lib/docker/containers/*/*-json.log
            docker_json.push_str(
                &serde_json::json!({"log": format!("{line}\n"), "stream": "stderr", "time": stamp})
                    .to_string(),
            );
            docker_json.push('\n');
            // journalctl -o json
            let (name, pid) = ident.trim_end_matches(']').split_once('[').unwrap();
            journal_json.push_str(
                &serde_json::json!({
                    "__CURSOR": format!("s=0;i={i}"),
                    "__REALTIME_TIMESTAMP": (epoch_us(*t) + i as i64).to_string(),
                    "_TRANSPORT": "stdout",
                    "SYSLOG_IDENTIFIER": name,
                    "_PID": pid,
                    "MESSAGE": line,
                })
                .to_string(),
            );
            journal_json.push('\n');
        }
        let fpm_syslog: String = std::fs::read_to_string(dir.join("php-fpm.log"))
            .unwrap()
            .lines()
            .filter_map(|l| Some((line_time(l)?, fpm_syslog_body(l)?)))
            .map(|(t, body)| format!("{} web1 php-fpm[2557]: {body}\n", rfc3164(t, true)))
            .collect();
        let variants: [(&str, Vec<PathBuf>, Vec<&str>); 9] = [
            (
                "one unframed stream",
                vec![scratch.write("supervisord.log", &mixed)],
                vec![],
            ),
            (
                "docker json-file",
                vec![scratch.write("container-json.log", &docker_json)],
                vec![],
            ),
            (
                "journal json",
                vec![scratch.write("journal.json", &journal_json)],
                vec![],
            ),
            (
                "docker -t",
                vec![scratch.write("docker.log", &docker)],
                vec![],
            ),
            (
                "compose",
                vec![scratch.write("compose.log", &compose)],
                vec![],
            ),
            (
                "compose -t",
                vec![scratch.write("compose-t.log", &compose_t)],
                vec![],
            ),
            (
                "kubectl",
                vec![scratch.write("kubectl.log", &kubectl)],
                vec![],
            ),
            (
                "journal",
                vec![scratch.write("journal.txt", &journal)],
                vec![],
            ),
            ("fpm via syslog", vec![dir.join("nginx-error.log")], vec![]),
        ];
        for (what, files, _) in variants {
            let mut paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
            paths.push(&kernel);
            let report = if what == "fpm via syslog" {
                let syslog = scratch.write("fpm-syslog.log", &fpm_syslog);
                let s = syslog.display().to_string();
                analyze(&paths, &["--fpm-log", &s])
            } else {
                analyze(&paths, &[])
            };
            assert_eq!(verdicts(&report), want, "{name}: {what}");
            let stream = &report["inputs"][0];
            assert_eq!(
                stream["lines_not_understood"], 0,
                "{name}: {what}: {stream}"
            );
            if what == "fpm via syslog" {
                let fpm = report["inputs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|i| i["kind"] == "fpm")
                    .expect("the FPM input");
                assert_eq!(fpm["detected_by"], "flag");
                assert_eq!(fpm["lines_not_understood"], 0, "{name}: {fpm}");
                assert!(fpm["framings"]["syslog"].as_u64() > Some(0), "{fpm}");
            } else {
                // One file, both sides: every line counted once.
                assert_eq!(stream["lines_read"].as_u64(), Some(lines.len() as u64));
                let by_kind: u64 = stream["lines_by_kind"]
                    .as_object()
                    .unwrap()
                    .values()
                    .filter_map(Value::as_u64)
                    .sum();
                assert_eq!(by_kind, lines.len() as u64, "{name}: {what}: {stream}");
                assert_eq!(
                    stream["read_for"],
                    serde_json::json!(["failures", "context"]),
                    "{name}: {what}"
                );
            }
        }
    }
}

#[test]
fn a_docker_stamped_nginx_log_is_not_a_kernel_log() {
    // `docker logs -t` of the nginx container alone: the stamps once made the file
    // a kernel log and its failures vanished.
    let dir = real().join("cause1_fpm_stopped");
    let scratch = Scratch::new("docker-nginx");
    let text = std::fs::read_to_string(dir.join("nginx-error.log")).unwrap();
    let stamped: String = text
        .lines()
        .enumerate()
        .map(|(i, l)| format!("{} {l}\n", rfc3339(line_time(l).unwrap(), i)))
        .collect();
    let file = scratch.write("nginx.log", &stamped);
    let plain = analyze(&[&dir.join("nginx-error.log")], &[]);
    let report = analyze(&[&file], &[]);
    assert_eq!(report["inputs"][0]["kind"], "nginx-error");
    assert_eq!(verdicts(&report), verdicts(&plain));
    assert!(!verdicts(&report).is_empty());
    // Even when told it is a kernel log, the NGINX lines are NGINX lines.
    let flagged = analyze(&[], &["--kernel-log", &file.display().to_string()]);
    assert_eq!(flagged["inputs"][0]["kind"], "kernel");
    assert_eq!(verdicts(&flagged), verdicts(&plain));
}

const PASTED: &str = r#"[error] 1234#1234: *5 connect() to unix:/run/php/php7.2-fpm.sock failed (2: No such file or directory) while connecting to upstream, client: 1.2.3.4, server: example.com, request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/run/php/php7.2-fpm.sock:", host: "example.com"
[error] *7 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 1.2.3.4, server: example.com, request: "GET /report.php HTTP/1.1", upstream: "fastcgi://unix:/run/php/php7.2-fpm.sock:", host: "example.com"
recv() failed (104: Connection reset by peer) while reading response header from upstream, client: 1.2.3.4, server: example.com, request: "GET /export.php HTTP/1.1", upstream: "fastcgi://unix:/run/php/php7.2-fpm.sock:", host: "example.com"
"#;

#[test]
fn lines_pasted_without_a_date_on_standard_input() {
    let out = gatelog(&["analyze", "--format", "json", "-"], Some(PASTED));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut report: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    gatelog_analyzer::report::shared::inline(&mut report);
    let failures = report["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 3);
    for f in failures {
        assert!(f["time"].is_null(), "{f}");
        assert_eq!(f["evidence"][0]["file"], "stdin");
    }
    let causes: Vec<_> = failures
        .iter()
        .map(|f| f["cause"].as_str().unwrap())
        .collect();
    assert_eq!(causes[0], "fpm-not-running", "{causes:?}");
    assert_eq!(causes[1], "read-timeout", "{causes:?}");
    assert_eq!(failures[0]["pid"], 1234);
    assert_eq!(failures[1]["conn"], 7);
    assert!(failures[2]["pid"].is_null());
    assert_eq!(report["summary"]["time_unknown"], 3);
    assert!(report["timeline"].as_array().unwrap().is_empty());
    let input = &report["inputs"][0];
    assert_eq!(input["file"], "stdin");
    assert_eq!(input["failures_time_unknown"], 3);
    assert_eq!(input["lines_not_understood"], 0);
    for c in report["causes"].as_array().unwrap() {
        assert!(c["first"].is_null() && c["last"].is_null(), "{c}");
        assert!(c["time_unknown"].as_u64() > Some(0));
    }
    // The text report says so instead of printing a made-up time.
    let out = gatelog(&["analyze", "-"], Some(PASTED));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("time unknown"), "{text}");
    assert!(!text.contains("1970"), "{text}");
    // Standard input is one input.
    let out = gatelog(&["analyze", "-", "-"], Some(PASTED));
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_undated_failure_is_not_joined_by_time_to_the_fpm_log() {
    // The FPM log of a real OOM kill, and the NGINX line of that failure pasted
    // without its date: the verdict must not come from the FPM lines (their time
    // cannot be matched), and the reason says why.
    let dir = real().join("cause6_oom_kill");
    let text = std::fs::read_to_string(dir.join("nginx-error.log")).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("recv() failed"))
        .expect("the failure line");
    let pasted = &line[20..];
    assert!(pasted.starts_with("[error]"), "{pasted}");
    let scratch = Scratch::new("undated-join");
    let file = scratch.write("ticket.txt", &format!("{pasted}\n"));
    let report = analyze(
        &[&file, &dir.join("php-fpm.log"), &dir.join("kernel.log")],
        &[],
    );
    let f = &report["failures"][0];
    assert!(f["time"].is_null());
    assert_ne!(f["cause"], "worker-oom-killed", "{f}");
    let reason = f["reason"].as_str().unwrap();
    assert!(reason.contains("no date"), "{reason}");
    let sources: Vec<_> = f["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["source"].as_str().unwrap())
        .collect();
    assert_eq!(sources, ["nginx"], "{f}");
    // The same line with its date joins the FPM and kernel lines.
    let dated = scratch.write("dated.txt", &format!("{line}\n"));
    let report = analyze(
        &[&dated, &dir.join("php-fpm.log"), &dir.join("kernel.log")],
        &[],
    );
    assert_eq!(report["failures"][0]["cause"], "worker-oom-killed");
}

#[test]
fn lines_of_the_other_side_found_late_are_counted_not_lost() {
    // An NGINX log whose first 1000 lines and last 64 KiB hold no FPM line, with a
    // few FPM lines in between (a container that logged FPM only for a while): the
    // file is read as an NGINX log; the FPM lines are counted as unread, never as
    // not understood, and the summary says so.
    let scratch = Scratch::new("late");
    let notice = "2026/11/23 22:12:46 [notice] 2561#2561: signal 17 (SIGCHLD) received from 2562";
    let mut text = String::new();
    for _ in 0..1500 {
        text.push_str(notice);
        text.push('\n');
    }
    for _ in 0..5 {
        text.push_str("[23-Nov-2026 22:12:47] NOTICE: ready to handle connections\n");
    }
    while text.len() < 1500 * notice.len() + 80 * 1024 {
        text.push_str(notice);
        text.push('\n');
    }
    let file = scratch.write("error.log", &text);
    let report = analyze(&[&file], &[]);
    let input = &report["inputs"][0];
    assert_eq!(input["kind"], "nginx-error");
    assert_eq!(input["read_for"], serde_json::json!(["failures"]));
    assert_eq!(input["lines_other_side_unread"], 5, "{input}");
    assert_eq!(input["lines_by_kind"]["fpm"], 5, "{input}");
    assert_eq!(input["lines_not_understood"], 0, "{input}");
    let out = gatelog(&["analyze", &file.display().to_string()], None);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("5 line(s) of the other side"), "{text}");
}
