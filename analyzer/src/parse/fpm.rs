//! PHP-FPM's error log in all its shapes: the file format (`[02-Apr-2026 14:23:17]
//! WARNING: ...`), the debug-level variant (microseconds and `pid N, func(), line N:`),
//! the syslog body (`[WARNING] ...`), the journal's stdout records (the file format
//! inside the message), undecorated worker output (`NOTICE: PHP message: ...` as in
//! the official Docker image), and decorated worker output (`[pool www] child N said
//! into stderr: "..."`).

use std::sync::LazyLock;

use regex::Regex;

use crate::time::{self, Civil};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FpmLevel {
    Debug,
    Notice,
    Warning,
    Error,
    Alert,
}

fn level_from(s: &str) -> Option<FpmLevel> {
    Some(match s {
        "DEBUG" => FpmLevel::Debug,
        "NOTICE" => FpmLevel::Notice,
        "WARNING" => FpmLevel::Warning,
        "ERROR" => FpmLevel::Error,
        "ALERT" => FpmLevel::Alert,
        _ => return None,
    })
}

/// The FPM messages that matter for the seven causes.
#[derive(Debug, Clone, PartialEq)]
pub enum FpmEvent {
    /// `fpm is running, pid N` (master pid).
    Running { pid: u32 },
    /// `ready to handle connections`.
    Ready,
    /// `Terminating ...` (SIGTERM/SIGINT) or `Finishing ...` (SIGQUIT).
    Terminating,
    /// `Reloading in progress ...`.
    Reloading,
    /// `exiting, bye-bye!`: clean exit; a unix socket file is removed.
    Exiting,
    /// `FPM initialization failed` and other start-up failures.
    InitFailed,
    /// `unable to bind listening socket for address 'X': <strerror> (N)`,
    /// `failed to listen to address 'X'`.
    BindFailed { address: String, errno: Option<i32> },
    /// `Another FPM instance seems to already listen on X`.
    AnotherInstance { address: String },
    /// `[pool P] cannot get uid for user 'U'` / `cannot get gid for group 'G'`.
    UserError { pool: String, name: String },
    /// `[pool P] failed to chown() the socket 'X'`.
    ChownFailed { pool: String, socket: String },
    /// `[pool P] child N exited on signal S (SIGNAME[ - core dumped]) after T seconds
    /// from start` or `... exited with code C after ...`.
    ChildExited {
        pool: String,
        pid: u32,
        signal: Option<u32>,
        signal_name: Option<String>,
        code: Option<i32>,
        core_dumped: bool,
    },
    /// `[pool P] child N started`.
    ChildStarted { pool: String, pid: u32 },
    /// `[pool P] server reached pm.max_children setting (N)` (dynamic) or `server
    /// reached max_children setting (N)` (ondemand).
    MaxChildren { pool: String, limit: u32 },
    /// `[pool P] seems busy (...)`.
    SeemsBusy { pool: String },
    /// `executing too slow (T sec), logging` (slowlog).
    SlowRequest(RequestTimer),
    /// `execution timed out (T sec), terminating` (request_terminate_timeout).
    ExecutionTimedOut(RequestTimer),
    /// Worker output, decorated or not (PHP fatal errors, stack traces).
    WorkerOutput {
        pool: Option<String>,
        pid: Option<u32>,
        text: String,
    },
    /// Understood, but not relevant to any cause.
    Other,
}

/// A request FPM's timers caught: which child, script and request.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestTimer {
    pub pool: String,
    pub pid: u32,
    pub script: String,
    /// `METHOD SCRIPT_NAME?QUERY` (not the client URI).
    pub request: String,
    pub secs: f64,
}

/// One parsed FPM line.
#[derive(Debug, Clone, PartialEq)]
pub struct FpmLine {
    /// Local time without zone; absent on worker output and syslog bodies.
    pub civil: Option<Civil>,
    pub level: Option<FpmLevel>,
    pub event: FpmEvent,
}

/// Parses a line of an FPM log file (or the message of a journal stdout record).
/// `None` when the line has no FPM prefix at all: a raw line of undecorated worker
/// output or something else.
pub fn parse_line(line: &str) -> Option<FpmLine> {
    let b = line.as_bytes();
    if b.first() == Some(&b'[') {
        let (civil, n) = time::parse_fpm_time(&b[1..])?;
        let rest = line.get(1 + n..)?.strip_prefix("] ")?;
        let (level, msg) = split_level(rest)?;
        return Some(FpmLine {
            civil: Some(civil),
            level: Some(level),
            event: parse_message(strip_debug_prefix(msg)),
        });
    }
    // Children print no timestamp: `NOTICE: PHP message: ...` (undecorated output).
    let (level, msg) = split_level(line)?;
    Some(FpmLine {
        civil: None,
        level: Some(level),
        event: parse_message(strip_debug_prefix(msg)),
    })
}

/// Parses the message of FPM's syslog records: `[WARNING] [pool www] ...` (or the file
/// format when the journal captured stderr).
pub fn parse_syslog_message(msg: &str) -> Option<FpmLine> {
    if let Some(rest) = msg.strip_prefix('[') {
        if let Some((lvl, body)) = rest.split_once("] ") {
            if let Some(level) = level_from(lvl) {
                return Some(FpmLine {
                    civil: None,
                    level: Some(level),
                    event: parse_message(strip_debug_prefix(body)),
                });
            }
        }
    }
    parse_line(msg)
}

fn split_level(s: &str) -> Option<(FpmLevel, &str)> {
    let (lvl, msg) = s.split_once(": ")?;
    Some((level_from(lvl)?, msg))
}

/// Drops log_level=debug's `pid N, func(), line N: ` (master) or `func(), line N: `
/// (child, syslog).
fn strip_debug_prefix(msg: &str) -> &str {
    let mut m = msg;
    if let Some(rest) = m.strip_prefix("pid ") {
        if let Some((pid, after)) = rest.split_once(", ") {
            if pid.bytes().all(|b| b.is_ascii_digit()) {
                m = after;
            }
        }
    }
    if let Some(i) = m.find("(), line ") {
        if i < 64 && !m[..i].contains(' ') {
            let after = &m[i + 9..];
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            if digits > 0 {
                if let Some(rest) = after[digits..].strip_prefix(": ") {
                    return rest;
                }
            }
        }
    }
    m
}

static CHILD_EXIT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^child (\d+) exited (?:on signal (\d+) \((\w*)( - core dumped)?\)|with code (-?\d+))",
    )
    .expect("static regex")
});
static BIND: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:unable to bind listening socket for|failed to listen to) address '([^']*)'(?:.*\((\d+)\)$)?")
        .expect("static regex")
});

/// `N, script 'S' (request: "R") executing too slow (T sec), logging` or `...
/// execution timed out (T sec), terminating` (fpm_request.c, after `child `). Split
/// by hand: the script and the request may hold anything, and a regex with two
/// open captures backtracked through every such line.
fn request_timer(pool: &str, rest: &str) -> Option<FpmEvent> {
    let (pid, rest) = rest.split_once(", script '")?;
    // The last of the two endings (the request may hold either text).
    let (at, timed_out, needle) = [
        ("\") executing too slow (", false),
        ("\") execution timed out (", true),
    ]
    .into_iter()
    .filter_map(|(needle, timed_out)| Some((rest.rfind(needle)?, timed_out, needle)))
    .max_by_key(|&(at, ..)| at)?;
    let (rest, after) = (&rest[..at], &rest[at + needle.len()..]);
    let (script, request) = rest.rsplit_once("' (request: \"")?;
    let secs = after.split_once(" sec)")?.0;
    if secs.is_empty() || !secs.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    let timer = RequestTimer {
        pool: pool.to_string(),
        pid: pid.parse().ok()?,
        script: script.to_string(),
        request: request.to_string(),
        secs: secs.parse().unwrap_or(0.0),
    };
    Some(if timed_out {
        FpmEvent::ExecutionTimedOut(timer)
    } else {
        FpmEvent::SlowRequest(timer)
    })
}

/// Classifies an FPM message (after the level and any debug prefix).
pub fn parse_message(msg: &str) -> FpmEvent {
    // `[pool www] ...` messages.
    if let Some(rest) = msg.strip_prefix("[pool ") {
        let Some((pool, body)) = rest.split_once("] ") else {
            return FpmEvent::Other;
        };
        return parse_pool_message(pool, body);
    }
    if let Some(rest) = msg.strip_prefix("fpm is running, pid ") {
        return match rest.trim().parse() {
            Ok(pid) => FpmEvent::Running { pid },
            Err(_) => FpmEvent::Other,
        };
    }
    if msg.starts_with("ready to handle connections") {
        return FpmEvent::Ready;
    }
    if msg.starts_with("Terminating ...") || msg.starts_with("Finishing ...") {
        return FpmEvent::Terminating;
    }
    if msg.starts_with("Reloading in progress") {
        return FpmEvent::Reloading;
    }
    if msg.starts_with("exiting, bye-bye!") {
        return FpmEvent::Exiting;
    }
    if msg.starts_with("FPM initialization failed")
        || msg.starts_with("failed to post process the configuration")
        || msg.starts_with("failed to load configuration file")
        || msg.starts_with("No pool defined")
    {
        return FpmEvent::InitFailed;
    }
    // A regex's captures cost far more than a look at the start: most messages are
    // not these.
    let may_bind = msg.starts_with("unable to bind") || msg.starts_with("failed to listen to");
    if let Some(c) = may_bind.then(|| BIND.captures(msg)).flatten() {
        return FpmEvent::BindFailed {
            address: c[1].to_string(),
            errno: c.get(2).and_then(|m| m.as_str().parse().ok()),
        };
    }
    if let Some(rest) = msg.strip_prefix("Another FPM instance seems to already listen on ") {
        return FpmEvent::AnotherInstance {
            address: rest.trim().to_string(),
        };
    }
    if msg.starts_with("PHP message: ") || msg.starts_with("PHP ") {
        return FpmEvent::WorkerOutput {
            pool: None,
            pid: None,
            text: msg.to_string(),
        };
    }
    FpmEvent::Other
}

fn parse_pool_message(pool: &str, body: &str) -> FpmEvent {
    let pool_s = || pool.to_string();
    // `child N started` and `child N said into stderr` are the bulk of a busy pool's
    // log: the regex runs only on exits.
    let may_exit = body.starts_with("child ") && body.contains(" exited ");
    if let Some(c) = may_exit.then(|| CHILD_EXIT.captures(body)).flatten() {
        let Ok(pid) = c[1].parse() else {
            return FpmEvent::Other;
        };
        return FpmEvent::ChildExited {
            pool: pool_s(),
            pid,
            signal: c.get(2).and_then(|m| m.as_str().parse().ok()),
            signal_name: c
                .get(3)
                .map(|m| m.as_str().to_string())
                .filter(|s| !s.is_empty()),
            code: c.get(5).and_then(|m| m.as_str().parse().ok()),
            core_dumped: c.get(4).is_some(),
        };
    }
    if let Some(rest) = body.strip_prefix("child ") {
        if let Some(pid) = rest.strip_suffix(" started") {
            if let Ok(pid) = pid.parse() {
                return FpmEvent::ChildStarted {
                    pool: pool_s(),
                    pid,
                };
            }
        }
        if let Some((pid, said)) = rest.split_once(" said into ") {
            let Ok(pid) = pid.parse() else {
                return FpmEvent::Other;
            };
            // `stderr: "<payload>"`, optionally `, pipe is closed`; inner quotes are
            // not escaped, so strip the known ending instead of scanning for a quote.
            let payload = said.split_once(": \"").map(|(_, p)| p).unwrap_or("");
            let payload = payload
                .strip_suffix("\", pipe is closed")
                .or_else(|| payload.strip_suffix('"'))
                .unwrap_or(payload);
            return FpmEvent::WorkerOutput {
                pool: Some(pool_s()),
                pid: Some(pid),
                text: payload.to_string(),
            };
        }
        if let Some(event) = request_timer(pool, rest) {
            return event;
        }
    }
    if let Some(rest) = body
        .strip_prefix("server reached pm.max_children setting (")
        .or_else(|| body.strip_prefix("server reached max_children setting ("))
    {
        let limit = rest
            .split(')')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        return FpmEvent::MaxChildren {
            pool: pool_s(),
            limit,
        };
    }
    if body.starts_with("seems busy") {
        return FpmEvent::SeemsBusy { pool: pool_s() };
    }
    if let Some(rest) = body
        .strip_prefix("cannot get uid for user '")
        .or_else(|| body.strip_prefix("cannot get gid for group '"))
    {
        return FpmEvent::UserError {
            pool: pool_s(),
            name: rest.split('\'').next().unwrap_or("").to_string(),
        };
    }
    if let Some(rest) = body.strip_prefix("failed to chown() the socket '") {
        return FpmEvent::ChownFailed {
            pool: pool_s(),
            socket: rest.split('\'').next().unwrap_or("").to_string(),
        };
    }
    if body.starts_with("child failed to initialize")
        || body.starts_with("please specify user and group")
    {
        return FpmEvent::InitFailed;
    }
    FpmEvent::Other
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(line: &str) -> FpmEvent {
        parse_line(line)
            .unwrap_or_else(|| panic!("not parsed: {line}"))
            .event
    }

    #[test]
    fn lifecycle() {
        assert_eq!(
            ev("[02-Apr-2026 14:23:17] NOTICE: fpm is running, pid 812"),
            FpmEvent::Running { pid: 812 }
        );
        assert_eq!(
            ev("[02-Apr-2026 14:30:03] NOTICE: ready to handle connections"),
            FpmEvent::Ready
        );
        assert_eq!(
            ev("[02-Apr-2026 14:30:02] NOTICE: Terminating ..."),
            FpmEvent::Terminating
        );
        assert_eq!(
            ev("[02-Apr-2026 14:30:02] NOTICE: Finishing ..."),
            FpmEvent::Terminating
        );
        assert_eq!(
            ev("[02-Apr-2026 14:30:02] NOTICE: exiting, bye-bye!"),
            FpmEvent::Exiting
        );
        assert_eq!(
            ev("[02-Apr-2026 14:30:02] NOTICE: Reloading in progress ..."),
            FpmEvent::Reloading
        );
        assert_eq!(
            ev("[02-Apr-2026 14:23:17] ERROR: FPM initialization failed"),
            FpmEvent::InitFailed
        );
        assert_eq!(
            ev("[02-Apr-2026 14:30:03] NOTICE: systemd monitor interval set to 10000ms"),
            FpmEvent::Other
        );
        let l = parse_line("[02-Apr-2026 14:23:17] NOTICE: fpm is running, pid 812").unwrap();
        assert_eq!(l.level, Some(FpmLevel::Notice));
        assert_eq!(
            l.civil.map(|c| (c.day, c.hour, c.second)),
            Some((2, 14, 17))
        );
    }

    #[test]
    fn sockets_and_users() {
        assert_eq!(
            ev("[02-Apr-2026 14:23:17] ERROR: unable to bind listening socket for address '/run/php/php8.2-fpm.sock': Address already in use (98)"),
            FpmEvent::BindFailed { address: "/run/php/php8.2-fpm.sock".into(), errno: Some(98) }
        );
        assert_eq!(
            ev("[02-Apr-2026 14:23:17] ERROR: unable to bind listening socket for address '/run/php/php8.2-fpm.sock': No such file or directory (2)"),
            FpmEvent::BindFailed { address: "/run/php/php8.2-fpm.sock".into(), errno: Some(2) }
        );
        assert_eq!(
            ev("[02-Apr-2026 14:23:17] ERROR: [pool www] cannot get uid for user 'nginx': Success (0)"),
            FpmEvent::UserError { pool: "www".into(), name: "nginx".into() }
        );
        assert_eq!(
            ev("[02-Apr-2026 14:23:17] ERROR: [pool www] cannot get gid for group 'www'"),
            FpmEvent::UserError {
                pool: "www".into(),
                name: "www".into()
            }
        );
        assert_eq!(
            ev("[02-Apr-2026 14:23:17] ERROR: Another FPM instance seems to already listen on /run/php/php8.2-fpm.sock"),
            FpmEvent::AnotherInstance { address: "/run/php/php8.2-fpm.sock".into() }
        );
        assert_eq!(
            ev("[02-Apr-2026 14:23:17] ERROR: [pool www] failed to chown() the socket '/run/php/x.sock': Operation not permitted (1)"),
            FpmEvent::ChownFailed { pool: "www".into(), socket: "/run/php/x.sock".into() }
        );
    }

    #[test]
    fn child_exits() {
        let exit =
            |pid, signal: Option<u32>, name: Option<&str>, code, core| FpmEvent::ChildExited {
                pool: "www".into(),
                pid,
                signal,
                signal_name: name.map(String::from),
                code,
                core_dumped: core,
            };
        assert_eq!(
            ev("[02-Apr-2026 14:25:41] WARNING: [pool www] child 23114 exited on signal 9 (SIGKILL) after 311.204556 seconds from start"),
            exit(23114, Some(9), Some("SIGKILL"), None, false)
        );
        assert_eq!(
            ev("[02-Apr-2026 14:27:05] WARNING: [pool www] child 23121 exited on signal 11 (SIGSEGV - core dumped) after 12.000187 seconds from start"),
            exit(23121, Some(11), Some("SIGSEGV"), None, true)
        );
        assert_eq!(
            ev("[02-Apr-2026 14:27:06] WARNING: [pool www] child 23122 exited on signal 6 (SIGABRT) after 0.512220 seconds from start"),
            exit(23122, Some(6), Some("SIGABRT"), None, false)
        );
        assert_eq!(
            ev("[02-Apr-2026 14:27:06] WARNING: [pool www] child 23123 exited with code 255 after 0.102334 seconds from start"),
            exit(23123, None, None, Some(255), false)
        );
        assert_eq!(
            ev("[02-Apr-2026 14:27:06] WARNING: [pool www] child 23124 exited on signal 31 () after 0.1 seconds from start"),
            exit(23124, Some(31), None, None, false)
        );
        assert_eq!(
            ev("[02-Apr-2026 14:25:41] NOTICE: [pool www] child 23190 started"),
            FpmEvent::ChildStarted {
                pool: "www".into(),
                pid: 23190
            }
        );
    }

    #[test]
    fn debug_level_prefix() {
        let l = parse_line("[02-Apr-2026 14:23:17.291234] WARNING: pid 812, fpm_children_bury(), line 281: [pool www] child 23114 exited on signal 9 (SIGKILL) after 311.204556 seconds from start").unwrap();
        assert_eq!(l.civil.map(|c| c.micros), Some(291234));
        assert!(matches!(
            l.event,
            FpmEvent::ChildExited {
                pid: 23114,
                signal: Some(9),
                ..
            }
        ));
        assert_eq!(ev("[02-Apr-2026 14:23:17.291301] DEBUG: pid 812, fpm_got_signal(), line 82: received SIGCHLD"), FpmEvent::Other);
    }

    #[test]
    fn max_children_both_wordings_and_busy() {
        assert_eq!(
            ev("[02-Apr-2026 14:23:17] WARNING: [pool www] server reached pm.max_children setting (5), consider raising it"),
            FpmEvent::MaxChildren { pool: "www".into(), limit: 5 }
        );
        assert_eq!(
            ev("[02-Apr-2026 14:23:17] WARNING: [pool api] server reached max_children setting (20), consider raising it"),
            FpmEvent::MaxChildren { pool: "api".into(), limit: 20 }
        );
        assert_eq!(
            ev("[02-Apr-2026 14:23:17] WARNING: [pool www] seems busy (you may need to increase pm.start_servers, or pm.min/max_spare_servers), spawning 8 children, there are 0 idle, and 13 total children"),
            FpmEvent::SeemsBusy { pool: "www".into() }
        );
    }

    #[test]
    fn request_timer_with_quotes_and_parentheses_in_the_request() {
        let e = ev(
            r#"[02-Apr-2026 14:26:05] WARNING: [pool www] child 7, script '/srv/a b/it's.php' (request: "GET /x.php?q=") executing too slow (1.0 sec)&y=(2)") execution timed out (30.5 sec), terminating"#,
        );
        let FpmEvent::ExecutionTimedOut(t) = e else {
            panic!("{e:?}");
        };
        assert_eq!(
            (t.pid, t.script.as_str(), t.secs),
            (7, "/srv/a b/it's.php", 30.5)
        );
        assert_eq!(
            t.request,
            r#"GET /x.php?q=") executing too slow (1.0 sec)&y=(2)"#
        );
        for cut in [
            "[02-Apr-2026 14:26:05] WARNING: [pool www] child 7, script '/a.php' (request: \"GET /\") execution timed out (",
            "[02-Apr-2026 14:26:05] WARNING: [pool www] child x, script '/a.php' (request: \"GET /\") execution timed out (3 sec), terminating",
        ] {
            assert_eq!(ev(cut), FpmEvent::Other, "{cut}");
        }
    }

    #[test]
    fn request_timers() {
        let timer = RequestTimer {
            pool: "www".into(),
            pid: 23150,
            script: "/var/www/html/report.php".into(),
            request: "GET /report.php?id=7".into(),
            secs: 5.004112,
        };
        assert_eq!(
            ev(
                r#"[02-Apr-2026 14:26:05] WARNING: [pool www] child 23150, script '/var/www/html/report.php' (request: "GET /report.php?id=7") executing too slow (5.004112 sec), logging"#
            ),
            FpmEvent::SlowRequest(timer.clone())
        );
        assert_eq!(
            ev(
                r#"[02-Apr-2026 14:26:35] WARNING: [pool www] child 23150, script '/var/www/html/report.php' (request: "GET /report.php?id=7") execution timed out (30.012345 sec), terminating"#
            ),
            FpmEvent::ExecutionTimedOut(RequestTimer {
                secs: 30.012345,
                ..timer
            })
        );
    }

    #[test]
    fn worker_output_decorated_and_not() {
        assert_eq!(
            ev(r#"[02-Apr-2026 14:23:17] WARNING: [pool www] child 23114 said into stderr: "NOTICE: PHP message: PHP Fatal error:  Uncaught Error: Class "App\Foo" not found in /var/www/html/index.php:3""#),
            FpmEvent::WorkerOutput {
                pool: Some("www".into()),
                pid: Some(23114),
                text: r#"NOTICE: PHP message: PHP Fatal error:  Uncaught Error: Class "App\Foo" not found in /var/www/html/index.php:3"#.into()
            }
        );
        assert_eq!(
            ev(
                r#"[02-Apr-2026 14:23:19] WARNING: [pool www] child 23116 said into stdout: "debug output", pipe is closed"#
            ),
            FpmEvent::WorkerOutput {
                pool: Some("www".into()),
                pid: Some(23116),
                text: "debug output".into()
            }
        );
        let l = parse_line("NOTICE: PHP message: PHP Fatal error:  Uncaught Error: Call to undefined function foo() in /var/www/html/index.php:3").unwrap();
        assert_eq!(l.civil, None);
        assert!(matches!(l.event, FpmEvent::WorkerOutput { pid: None, .. }));
        assert!(parse_line("Stack trace:").is_none());
        assert!(parse_line("#0 {main}").is_none());
    }

    #[test]
    fn syslog_and_journal_bodies() {
        let l = parse_syslog_message(
            "[WARNING] [pool www] server reached pm.max_children setting (5), consider raising it",
        )
        .unwrap();
        assert_eq!(l.level, Some(FpmLevel::Warning));
        assert_eq!(l.civil, None);
        assert_eq!(
            l.event,
            FpmEvent::MaxChildren {
                pool: "www".into(),
                limit: 5
            }
        );
        let l = parse_syslog_message("[WARNING] fpm_children_bury(), line 281: [pool www] child 1 exited on signal 9 (SIGKILL) after 1.0 seconds from start").unwrap();
        assert!(matches!(l.event, FpmEvent::ChildExited { pid: 1, .. }));
        let l = parse_syslog_message("[02-Apr-2026 14:23:17] ERROR: FPM initialization failed")
            .unwrap();
        assert!(l.civil.is_some());
        assert_eq!(l.event, FpmEvent::InitFailed);
    }
}
