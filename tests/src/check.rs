//! Assertions shared by the tests: what NGINX printed for a request, and the record
//! gatelog wrote for it, field by field, with the errno compared to NGINX's own.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::client::Response;
use crate::errlog::{self, AccessLine, Entry};
use crate::lab::{now_ms, Timeouts};
use crate::records;

/// errno number -> (name, glibc strerror text).
pub fn errno_info(n: i32) -> Option<(&'static str, &'static str)> {
    Some(match n {
        2 => ("ENOENT", "No such file or directory"),
        11 => ("EAGAIN", "Resource temporarily unavailable"),
        13 => ("EACCES", "Permission denied"),
        32 => ("EPIPE", "Broken pipe"),
        104 => ("ECONNRESET", "Connection reset by peer"),
        110 => ("ETIMEDOUT", "Connection timed out"),
        111 => ("ECONNREFUSED", "Connection refused"),
        _ => return None,
    })
}

/// One acceptable way an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub event: &'static str,
    pub errno: Option<i32>,
    pub level: &'static str,
    /// NGINX's message without ` while ...` and context.
    pub message: String,
}

impl Outcome {
    /// Synchronous connect() failure on a unix socket.
    pub fn connect_unix(path: &Path, errno: i32) -> Outcome {
        let (_, text) = errno_info(errno).unwrap_or(("", "?"));
        // Levels per ngx_event_connect.c: ERR for 111/11/104/..., CRIT otherwise.
        let level = if matches!(errno, 111 | 11 | 104 | 100 | 101 | 112 | 113) {
            "error"
        } else {
            "crit"
        };
        Outcome {
            event: "connect_failed",
            errno: Some(errno),
            level,
            message: format!(
                "connect() to unix:{} failed ({errno}: {text})",
                path.display()
            ),
        }
    }

    /// Asynchronous TCP connect() failure (SO_ERROR).
    pub fn connect_async(errno: i32) -> Outcome {
        let (_, text) = errno_info(errno).unwrap_or(("", "?"));
        Outcome {
            event: "connect_failed",
            errno: Some(errno),
            level: "error",
            message: format!("connect() failed ({errno}: {text})"),
        }
    }

    /// A timer-driven timeout (NGINX synthesizes 110).
    pub fn timed_out() -> Outcome {
        Outcome {
            event: "timed_out",
            errno: Some(110),
            level: "error",
            message: "upstream timed out (110: Connection timed out)".into(),
        }
    }

    /// recv() got RST.
    pub fn reset() -> Outcome {
        Outcome {
            event: "reset",
            errno: Some(104),
            level: "error",
            message: "recv() failed (104: Connection reset by peer)".into(),
        }
    }

    /// No error: the upstream itself answered with the attempt's (5xx) status.
    pub fn upstream_status() -> Outcome {
        Outcome {
            event: "upstream_status",
            errno: None,
            level: "",
            message: String::new(),
        }
    }

    /// EOF before the header.
    pub fn closed_prematurely() -> Outcome {
        Outcome {
            event: "closed_prematurely",
            errno: None,
            level: "error",
            message: "upstream prematurely closed connection".into(),
        }
    }

    fn matches_entry(&self, e: &Entry) -> bool {
        e.message() == self.message && e.level == self.level && e.errno() == self.errno
    }
}

/// What one attempt of a record must look like.
#[derive(Debug, Clone)]
pub struct AttemptExpect {
    /// As in `$upstream_addr`.
    pub peer: String,
    /// None for an attempt that did not fail.
    pub phase: Option<&'static str>,
    /// Acceptable failures (any one); empty for an attempt that did not fail.
    pub outcomes: Vec<Outcome>,
    /// `$upstream_status` of the attempt.
    pub status: Option<u16>,
}

impl AttemptExpect {
    pub fn failed(
        peer: &str,
        phase: &'static str,
        outcomes: Vec<Outcome>,
        status: u16,
    ) -> AttemptExpect {
        AttemptExpect {
            peer: peer.to_string(),
            phase: Some(phase),
            outcomes,
            status: Some(status),
        }
    }

    pub fn ok(peer: &str, status: u16) -> AttemptExpect {
        AttemptExpect {
            peer: peer.to_string(),
            phase: None,
            outcomes: Vec::new(),
            status: Some(status),
        }
    }
}

/// What a whole record must look like.
#[derive(Debug, Clone)]
pub struct RecordExpect {
    pub status: u16,
    pub origin: &'static str,
    pub recovered: bool,
    pub upstream: String,
    /// `HTTP/1.1`, `HTTP/2.0`, ...
    pub protocol: &'static str,
    pub method: &'static str,
    /// `$request_uri` as the record must carry it.
    pub uri: String,
    /// The Host header (None when none was sent).
    pub host: Option<String>,
    pub timeouts: Option<Timeouts>,
    pub attempts: Vec<AttemptExpect>,
    /// Lower bound of `request_time_ms` (e.g. the read timeout).
    pub min_request_time_ms: u64,
    /// `fastcgi_stderr.text` must contain this (None: `fastcgi_stderr` must be null).
    pub stderr_contains: Option<String>,
}

impl RecordExpect {
    /// A failed request on the test server (curl, HTTP/1.1) with one attempt.
    pub fn one_attempt(
        resp: &Response,
        port: u16,
        upstream: &str,
        timeouts: Option<Timeouts>,
        a: AttemptExpect,
    ) -> RecordExpect {
        RecordExpect {
            status: resp.status,
            origin: "nginx",
            recovered: false,
            upstream: upstream.to_string(),
            protocol: if resp.http2 { "HTTP/2.0" } else { "HTTP/1.1" },
            method: "GET",
            uri: resp.target.clone(),
            host: Some(format!("127.0.0.1:{port}")),
            timeouts,
            attempts: vec![a],
            min_request_time_ms: 0,
            stderr_contains: None,
        }
    }
}

/// Waits until the access log has a line for every response (so NGINX's log phase
/// ran for each) and returns the lines by request id.
pub fn wait_access(
    path: &Path,
    resps: &[&Response],
    timeout: Duration,
) -> Result<HashMap<String, AccessLine>, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let lines = errlog::read_access(path);
        let missing: Vec<&str> = resps
            .iter()
            .filter(|r| !lines.contains_key(&r.request_id))
            .map(|r| r.request_id.as_str())
            .collect();
        if missing.is_empty() {
            return Ok(lines);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "access log {} has no line for request id(s) {missing:?} after {timeout:?}",
                path.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The error-log side of a failed request: its connection's upstream failure lines
/// must start with one of `first` (the fault was really injected). Returns the
/// failure entries of that connection.
pub fn errlog_failures<'a>(
    entries: &'a [Entry],
    access: &AccessLine,
    first: &[Outcome],
) -> Result<Vec<&'a Entry>, String> {
    let fails = errlog::failures_for(entries, access.conn);
    let Some(e0) = fails.first() else {
        return Err(format!(
            "NGINX logged no upstream failure for *{} (request {:?}, status {}); expected one of {:?}",
            access.conn,
            access.request,
            access.status,
            first.iter().map(|o| &o.message).collect::<Vec<_>>()
        ));
    };
    if !first.is_empty() && !first.iter().any(|o| o.matches_entry(e0)) {
        return Err(format!(
            "NGINX's error log for *{}: expected [{}] one of {:?}, got [{}] {:?}",
            access.conn,
            first.iter().map(|o| o.level).collect::<Vec<_>>().join("|"),
            first.iter().map(|o| &o.message).collect::<Vec<_>>(),
            e0.level,
            e0.message()
        ));
    }
    Ok(fails)
}

fn get<'a>(r: &'a Value, k: &str) -> &'a Value {
    r.get(k).unwrap_or(&Value::Null)
}

fn field_eq(errs: &mut Vec<String>, what: &str, got: &Value, want: &Value) {
    if got != want {
        errs.push(format!("{what}: expected {want}, got {got}"));
    }
}

/// Compares each failed attempt of `rec` with NGINX's error-log line for the same
/// `*conn`, in order: errno (exactly the number NGINX printed), strerror text, level,
/// message. `fails` are the connection's upstream failure entries.
pub fn compare_with_errlog(rec: &Value, fails: &[&Entry], errs: &mut Vec<String>) {
    let attempts = get(rec, "attempts").as_array().cloned().unwrap_or_default();
    let failed: Vec<&Value> = attempts
        .iter()
        .filter(|a| !get(a, "phase").is_null())
        .collect();
    if failed.len() != fails.len() {
        errs.push(format!(
            "record has {} failed attempt(s) but NGINX logged {} upstream failure line(s) for *{}: {:?}",
            failed.len(),
            fails.len(),
            get(rec, "conn"),
            fails.iter().map(|e| e.message()).collect::<Vec<_>>()
        ));
    }
    for (i, (a, e)) in failed.iter().zip(fails.iter()).enumerate() {
        let want_errno = e.errno_and_text();
        field_eq(
            errs,
            &format!(
                "attempts[{i}].errno vs NGINX's error log ({:?})",
                e.message()
            ),
            get(a, "errno"),
            &want_errno
                .as_ref()
                .map_or(Value::Null, |(n, _)| Value::from(*n)),
        );
        field_eq(
            errs,
            &format!("attempts[{i}].error vs NGINX's error log"),
            get(a, "error"),
            &want_errno
                .as_ref()
                .map_or(Value::Null, |(_, t)| Value::from(t.as_str())),
        );
        field_eq(
            errs,
            &format!("attempts[{i}].level vs NGINX's error log"),
            get(a, "level"),
            &Value::from(e.level.as_str()),
        );
        field_eq(
            errs,
            &format!("attempts[{i}].message vs NGINX's error log"),
            get(a, "message"),
            &Value::from(e.message()),
        );
    }
}

/// Checks one attempt against its expectation.
pub fn check_attempt(a: &Value, i: usize, x: &AttemptExpect, errs: &mut Vec<String>) {
    let at = format!("attempts[{i}]");
    field_eq(
        errs,
        &format!("{at}.peer"),
        get(a, "peer"),
        &Value::from(x.peer.as_str()),
    );
    field_eq(
        errs,
        &format!("{at}.phase"),
        get(a, "phase"),
        &x.phase.map_or(Value::Null, Value::from),
    );
    field_eq(
        errs,
        &format!("{at}.status"),
        get(a, "status"),
        &x.status.map_or(Value::Null, Value::from),
    );
    if x.outcomes.is_empty() {
        for k in ["errno", "errno_name", "error", "event", "message", "level"] {
            field_eq(
                errs,
                &format!("{at}.{k} (attempt did not fail)"),
                get(a, k),
                &Value::Null,
            );
        }
    } else {
        let event = get(a, "event").as_str().unwrap_or("");
        match x.outcomes.iter().find(|o| o.event == event) {
            None => errs.push(format!(
                "{at}.event: expected one of {:?}, got {}",
                x.outcomes.iter().map(|o| o.event).collect::<Vec<_>>(),
                get(a, "event")
            )),
            Some(o) => {
                field_eq(
                    errs,
                    &format!("{at}.errno"),
                    get(a, "errno"),
                    &o.errno.map_or(Value::Null, Value::from),
                );
                let (name, text) = o
                    .errno
                    .and_then(errno_info)
                    .map_or((None, None), |(n, t)| (Some(n), Some(t)));
                field_eq(
                    errs,
                    &format!("{at}.errno_name"),
                    get(a, "errno_name"),
                    &name.map_or(Value::Null, Value::from),
                );
                field_eq(
                    errs,
                    &format!("{at}.error"),
                    get(a, "error"),
                    &text.map_or(Value::Null, Value::from),
                );
                // An empty level/message means "no NGINX line" (upstream_status): null.
                let opt = |s: &str| {
                    if s.is_empty() {
                        Value::Null
                    } else {
                        Value::from(s)
                    }
                };
                field_eq(errs, &format!("{at}.level"), get(a, "level"), &opt(o.level));
                field_eq(
                    errs,
                    &format!("{at}.message"),
                    get(a, "message"),
                    &opt(&o.message),
                );
            }
        }
    }
    // Timings: null where not reached.
    let is_int = |v: &Value| v.is_u64();
    match x.phase {
        Some("connect") => field_eq(
            errs,
            &format!("{at}.connect_ms (connect failed)"),
            get(a, "connect_ms"),
            &Value::Null,
        ),
        Some("header") | Some("body") | Some("send") | None => {
            if !is_int(get(a, "connect_ms")) {
                errs.push(format!(
                    "{at}.connect_ms: expected an integer (connected), got {}",
                    get(a, "connect_ms")
                ));
            }
        }
        _ => {}
    }
    if x.phase.is_some() {
        field_eq(
            errs,
            &format!("{at}.header_ms (no header received)"),
            get(a, "header_ms"),
            &Value::Null,
        );
    } else if !is_int(get(a, "header_ms")) {
        errs.push(format!(
            "{at}.header_ms: expected an integer (header received), got {}",
            get(a, "header_ms")
        ));
    }
    if !is_int(get(a, "response_ms")) {
        errs.push(format!(
            "{at}.response_ms: expected an integer, got {}",
            get(a, "response_ms")
        ));
    }
}

/// Everything about one record: schema, request fields, attempts, and errno equality
/// with NGINX's error log (`fails` = the connection's failure entries; pass `None`
/// when the location's error log level hides them).
pub fn check_record(
    rec: &Value,
    resp: &Response,
    access: &AccessLine,
    fails: Option<&[&Entry]>,
    worker_pid: Option<u32>,
    x: &RecordExpect,
) -> Result<(), String> {
    let mut errs = Vec::new();
    if let Err(e) = records::validate(rec) {
        errs.push(e);
    }
    field_eq(
        &mut errs,
        "request_id",
        get(rec, "request_id"),
        &Value::from(resp.request_id.as_str()),
    );
    field_eq(
        &mut errs,
        "conn (the *N of the error log)",
        get(rec, "conn"),
        &Value::from(access.conn),
    );
    if let Some(pid) = worker_pid {
        field_eq(
            &mut errs,
            "pid (the worker)",
            get(rec, "pid"),
            &Value::from(pid),
        );
    }
    field_eq(
        &mut errs,
        "status",
        get(rec, "status"),
        &Value::from(x.status),
    );
    field_eq(
        &mut errs,
        "status vs the client's",
        get(rec, "status"),
        &Value::from(resp.status),
    );
    field_eq(
        &mut errs,
        "origin",
        get(rec, "origin"),
        &Value::from(x.origin),
    );
    field_eq(
        &mut errs,
        "recovered",
        get(rec, "recovered"),
        &Value::from(x.recovered),
    );
    field_eq(
        &mut errs,
        "client",
        get(rec, "client"),
        &Value::from("127.0.0.1"),
    );
    field_eq(
        &mut errs,
        "server",
        get(rec, "server"),
        &Value::from("e2e.test"),
    );
    field_eq(
        &mut errs,
        "host",
        get(rec, "host"),
        &x.host.as_deref().map_or(Value::Null, Value::from),
    );
    field_eq(
        &mut errs,
        "method",
        get(rec, "method"),
        &Value::from(x.method),
    );
    field_eq(
        &mut errs,
        "uri",
        get(rec, "uri"),
        &Value::from(x.uri.as_str()),
    );
    field_eq(
        &mut errs,
        "protocol",
        get(rec, "protocol"),
        &Value::from(x.protocol),
    );
    field_eq(
        &mut errs,
        "upstream",
        get(rec, "upstream"),
        &Value::from(x.upstream.as_str()),
    );
    match x.timeouts {
        Some(t) => field_eq(
            &mut errs,
            "timeouts_ms",
            get(rec, "timeouts_ms"),
            &serde_json::json!({"connect": t.connect, "send": t.send, "read": t.read}),
        ),
        None => {}
    }
    match &x.stderr_contains {
        None => field_eq(
            &mut errs,
            "fastcgi_stderr",
            get(rec, "fastcgi_stderr"),
            &Value::Null,
        ),
        Some(s) => {
            let text = get(get(rec, "fastcgi_stderr"), "text")
                .as_str()
                .unwrap_or("");
            if !text.contains(s.as_str()) {
                errs.push(format!(
                    "fastcgi_stderr.text: expected to contain {s:?}, got {}",
                    get(rec, "fastcgi_stderr")
                ));
            }
        }
    }
    // time: when the request ended, inside the test's window.
    let now = now_ms();
    match get(rec, "time").as_str().and_then(records::parse_time_ms) {
        Some(t) if t <= now + 1000 && t >= now - resp.elapsed.as_millis() as i64 - 60_000 => {}
        _ => errs.push(format!(
            "time: {} is not an RFC 3339 time of this test run",
            get(rec, "time")
        )),
    }
    match get(rec, "request_time_ms").as_u64() {
        Some(ms)
            if ms + 5 >= x.min_request_time_ms && ms <= resp.elapsed.as_millis() as u64 + 1000 => {}
        _ => errs.push(format!(
            "request_time_ms: {} is not within [{}, client's {} ms]",
            get(rec, "request_time_ms"),
            x.min_request_time_ms,
            resp.elapsed.as_millis()
        )),
    }
    let attempts = get(rec, "attempts").as_array().cloned().unwrap_or_default();
    if attempts.len() != x.attempts.len() {
        errs.push(format!(
            "attempts: expected {} attempt(s), got {}",
            x.attempts.len(),
            attempts.len()
        ));
    }
    for (i, (a, xa)) in attempts.iter().zip(&x.attempts).enumerate() {
        check_attempt(a, i, xa, &mut errs);
    }
    if let Some(fails) = fails {
        compare_with_errlog(rec, fails, &mut errs);
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "record for {} (request id {}, *{}) is wrong:\n  - {}\nrecord: {rec}",
            resp.target,
            resp.request_id,
            access.conn,
            errs.join("\n  - ")
        ))
    }
}

/// The worker pid NGINX printed for connection `conn`.
pub fn worker_pid_for(entries: &[Entry], conn: u64) -> Option<u32> {
    entries.iter().find(|e| e.conn == Some(conn)).map(|e| e.pid)
}

/// Collects errors instead of stopping at the first.
#[derive(Debug, Default)]
pub struct Errors(pub Vec<String>);

impl Errors {
    pub fn check(&mut self, r: Result<(), String>) {
        if let Err(e) = r {
            self.0.push(e);
        }
    }

    pub fn push(&mut self, e: impl Into<String>) {
        self.0.push(e.into());
    }

    pub fn into_result(self) -> Result<(), String> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(self.0.join("\n\n"))
        }
    }
}
