//! One request answered 502/504: its error-log line(s), its gatelog record and the PHP-FPM
//! and kernel lines that explain it, for each kind of failure.

use gatelog_record::{Attempt, Event, Level, Phase};

use super::record::Answer;
use super::Sim;
use crate::kind::Kind;
use crate::site::{OLD_SOCK, PHP_FILES, SERVERS, SOCK, TCP_PEER, WARNINGS};

impl Sim {
    /// One request answered 502/504: error-log line(s) and its gatelog record, plus the
    /// FPM and kernel lines that explain it.
    pub(crate) fn failure(&mut self, kind: Kind) {
        if kind == Kind::OtherBackend {
            self.other_backend_failure();
            return;
        }
        let mut r = self.req(true);
        // Episodes of the unix-socket pool happen on the unix servers; TCP pool on api.
        match kind {
            Kind::WrongPath => r.server = 1,
            Kind::Enoent | Kind::Eacces | Kind::Eagain | Kind::Reset | Kind::Closed
                if r.server == 2 =>
            {
                r.server = 0
            }
            _ => {}
        }
        if r.host.starts_with("api.") && r.server != 2 {
            r.host = SERVERS[r.server].hosts[0];
        }
        if r.server == 2 && !r.host.starts_with("api.") {
            r.host = "api.example.com";
        }
        let pool = SERVERS[r.server].pool;
        let (w, c) = self.new_conn();
        let sock = if kind == Kind::WrongPath {
            OLD_SOCK
        } else {
            SOCK
        };
        let unix_peer = format!("unix:{sock}");
        let peer: &str = if pool == 0 { &unix_peer } else { TCP_PEER };
        let upstream_ctx = if pool == 0 {
            format!("fastcgi://unix:{sock}:")
        } else {
            "fastcgi://127.0.0.1:9000".to_string()
        };

        // A few requests go through an upstream{} group and try two peers.
        let two_attempts = pool == 0
            && matches!(kind, Kind::Enoent | Kind::Econnrefused | Kind::Eacces)
            && self.rng.chance(60_000);

        let mut stderr_text: Option<String> = None;
        let (status, request_ms): (u64, u64);
        let mut attempts: Vec<Attempt> = Vec::new();
        match kind {
            Kind::Enoent | Kind::WrongPath | Kind::Eacces | Kind::Econnrefused | Kind::Eagain => {
                let (errno, name, text, level) = match kind {
                    Kind::Eacces => (13, "EACCES", "Permission denied", "crit"),
                    Kind::Econnrefused => (111, "ECONNREFUSED", "Connection refused", "error"),
                    Kind::Eagain => (11, "EAGAIN", "Resource temporarily unavailable", "error"),
                    _ => (2, "ENOENT", "No such file or directory", "crit"),
                };
                let msg = if pool == 0 {
                    format!("connect() to {peer} failed ({errno}: {text})")
                } else {
                    format!("connect() failed ({errno}: {text})")
                };
                let level = if pool == 1 { "error" } else { level };
                self.err_head(level, w, c);
                self.err.s(&msg).s(" while connecting to upstream");
                let ctx = upstream_ctx.clone();
                self.err_ctx(&r, Some(&ctx));
                attempts.push(Attempt {
                    peer: Some(peer.to_string()),
                    phase: Some(Phase::Connect),
                    errno: Some(errno),
                    errno_name: Some(name.to_string()),
                    error: Some(text.to_string()),
                    event: Some(Event::ConnectFailed),
                    message: Some(msg),
                    level: Level::from_word(level.as_bytes()),
                    status: Some(502),
                    connect_ms: None,
                    header_ms: None,
                    response_ms: Some(0),
                });
                if two_attempts {
                    // second peer of the group: the TCP pool, refused as well
                    self.err_head("error", w, c);
                    self.err.s(
                        "connect() failed (111: Connection refused) while connecting to upstream",
                    );
                    self.err_ctx(&r, Some("fastcgi://127.0.0.1:9000"));
                    attempts.push(Attempt {
                        peer: Some(TCP_PEER.to_string()),
                        phase: Some(Phase::Connect),
                        errno: Some(111),
                        errno_name: Some("ECONNREFUSED".to_string()),
                        error: Some("Connection refused".to_string()),
                        event: Some(Event::ConnectFailed),
                        message: Some("connect() failed (111: Connection refused)".to_string()),
                        level: Level::from_word("error".as_bytes()),
                        status: Some(502),
                        connect_ms: None,
                        header_ms: None,
                        response_ms: Some(0),
                    });
                }
                status = 502;
                request_ms = self.rng.below(3);
            }
            Kind::Timeout => {
                let connecting = pool == 1 && self.rng.chance(300_000);
                self.t_us += 1;
                self.err_head("error", w, c);
                self.err
                    .s("upstream timed out (110: Connection timed out) while ")
                    .s(if connecting {
                        "connecting to upstream"
                    } else {
                        "reading response header from upstream"
                    });
                let ctx = upstream_ctx.clone();
                self.err_ctx(&r, Some(&ctx));
                let ms = 60_000 + self.rng.below(5);
                attempts.push(Attempt {
                    peer: Some(peer.to_string()),
                    phase: Some(if connecting {
                        Phase::Connect
                    } else {
                        Phase::Header
                    }),
                    errno: Some(110),
                    errno_name: Some("ETIMEDOUT".to_string()),
                    error: Some("Connection timed out".to_string()),
                    event: Some(Event::TimedOut),
                    message: Some("upstream timed out (110: Connection timed out)".to_string()),
                    level: Level::from_word("error".as_bytes()),
                    status: Some(504),
                    connect_ms: if connecting { None } else { Some(0) },
                    header_ms: None,
                    response_ms: Some(ms),
                });
                status = 504;
                request_ms = ms;
                if pool == 0 && !connecting && self.rng.chance(600_000) {
                    // FPM notices the slow script too (request_slowlog_timeout / request_terminate_timeout)
                    let child = self.some_child();
                    let script = *self.rng.pick(&[
                        "/var/www/html/report.php",
                        "/var/www/html/export.php",
                        "/var/www/html/index.php",
                    ]);
                    let secs = self.rng.range(60, 75);
                    let frac = self.rng.below(1_000_000);
                    self.fpm_line("WARNING")
                        .s("[pool www] child ")
                        .n(child)
                        .s(", script '")
                        .s(script)
                        .s("' (request: \"")
                        .s(r.method)
                        .s(" ")
                        .s(r.uri)
                        .s("\") execution timed out (")
                        .n(secs)
                        .s(".")
                        .nz(frac, 6)
                        .s(" sec), terminating")
                        .nl();
                    self.child_dies("on signal 15 (SIGTERM)", Some(child));
                }
            }
            // other_backend_failure() writes those (it returned above)
            Kind::OtherBackend => unreachable!("not an FPM failure"),
            Kind::Reset | Kind::Closed => {
                // the child that served the request died: OOM kill or segfault
                let oom = kind == Kind::Reset || self.rng.chance(250_000);
                let ms = self.rng.range(5, 30_000);
                if !oom && self.rng.chance(400_000) {
                    // it said something before dying
                    let warn = *self.rng.pick(WARNINGS);
                    let file = *self.rng.pick(PHP_FILES);
                    let text = format!(
                        "PHP message: {warn} in {file} on line {}",
                        self.rng.range(3, 900)
                    );
                    self.err_head("error", w, c);
                    self.err
                        .s("FastCGI sent in stderr: \"")
                        .s(&text)
                        .s("\" while reading response header from upstream");
                    let ctx = upstream_ctx.clone();
                    self.err_ctx(&r, Some(&ctx));
                    stderr_text = Some(text);
                }
                let victim = self.children[self.rng.below(self.children.len() as u64) as usize].pid;
                if oom {
                    self.kern_oom(victim);
                } else {
                    self.kern_segfault(victim);
                }
                // FPM buries the child with that pid
                let i = self
                    .children
                    .iter()
                    .position(|ch| ch.pid == victim)
                    .unwrap_or(0);
                self.children.swap(0, i);
                let how = if oom {
                    "on signal 9 (SIGKILL)"
                } else {
                    "on signal 11 (SIGSEGV)"
                };
                self.bury_first(how);
                self.err_head("error", w, c);
                let msg = if kind == Kind::Reset {
                    "recv() failed (104: Connection reset by peer)"
                } else {
                    "upstream prematurely closed connection"
                };
                self.err
                    .s(msg)
                    .s(" while reading response header from upstream");
                let ctx = upstream_ctx.clone();
                self.err_ctx(&r, Some(&ctx));
                let reset = kind == Kind::Reset;
                attempts.push(Attempt {
                    peer: Some(peer.to_string()),
                    phase: Some(Phase::Header),
                    errno: reset.then_some(104),
                    errno_name: reset.then(|| "ECONNRESET".to_string()),
                    error: reset.then(|| "Connection reset by peer".to_string()),
                    event: Some(if kind == Kind::Reset {
                        Event::Reset
                    } else {
                        Event::ClosedPrematurely
                    }),
                    message: Some(msg.to_string()),
                    level: Level::from_word("error".as_bytes()),
                    status: Some(502),
                    connect_ms: Some(0),
                    header_ms: None,
                    response_ms: Some(ms),
                });
                status = 502;
                request_ms = ms;
            }
        }
        let upstream = if two_attempts {
            "php_backends"
        } else if pool == 0 {
            peer
        } else {
            TCP_PEER
        };
        let answer = Answer {
            status,
            request_ms,
            upstream,
            attempts: &attempts,
            stderr: stderr_text.as_deref(),
        };
        self.record(w, c, &r, &answer);
        self.failures[kind.index()] += 1;
        if status == 502 {
            self.status_502 += 1
        } else {
            self.status_504 += 1
        }
    }
}
