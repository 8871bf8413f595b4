//! What the error-log tap keeps for one request, and how it is read at the log phase.
//!
//! The tap runs inside NGINX's `ngx_log_error` for every error line of a request with
//! an upstream, so it only copies: the line's bytes after NGINX's prefix, the action
//! NGINX appends as ` while <action>`, and the upstream's state at that moment (the
//! phase depends on it and is gone by the log phase). The line is classified only at
//! the log phase, and only when the request gets a record (a request that recovered,
//! with `gatelog_recovered` off, never pays for it). The copies live in the request's
//! pool (see `ffi/request_state.rs`), within the bounds set here.

use gatelog_record::message::{classify, UpstreamLine};
use gatelog_record::{Event, Level, Phase};

use crate::attempt_phase::{derive_phase, ConnState};

/// At most this many failure lines are kept per request: a request has few
/// attempts, and a bound keeps a pathological upstream from growing memory.
pub const MAX_EVENTS: usize = 32;
/// Bytes of a line kept (NGINX formats at most 2048, `NGX_MAX_ERROR_STR`); a longer
/// one is cut, as NGINX would have cut it.
pub const MAX_LINE: usize = 4096;
/// Bytes of an action kept; a longer one (no NGINX action is) is not kept.
pub const MAX_ACTION: usize = 128;

/// What the tap keeps of one line, borrowed from where it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapLine<'a> {
    /// Index into `r->upstream_states` when the line was logged; `None` before the
    /// first attempt was pushed (resolver failures).
    pub attempt: Option<usize>,
    /// NGINX's `NGX_LOG_*` level of the line.
    pub level: usize,
    pub conn: ConnState,
    /// `log->action` when the line was logged.
    pub action: Option<&'a [u8]>,
    /// The line after NGINX's `time [level] pid#tid: *conn ` prefix.
    pub rest: &'a [u8],
}

/// Whether the tap keeps a line: what NGINX writes after the prefix starts like an
/// upstream message (cheap; [`TapLine::failure`] decides at the log phase).
pub fn worth_keeping(rest: &[u8]) -> bool {
    gatelog_record::message::may_concern_upstream(rest)
}

/// Whether a kept line is FastCGI's stderr (one slot per request: the last one).
pub fn is_stderr(rest: &[u8]) -> bool {
    rest.starts_with(b"FastCGI sent in stderr: ")
}

/// One failure line, attributed to the upstream attempt it was logged for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapEvent<'a> {
    pub attempt: Option<usize>,
    pub event: Event,
    pub phase: Phase,
    pub level: Level,
    pub errno: Option<i32>,
    pub error: Option<&'a [u8]>,
    pub message: &'a [u8],
}

impl<'a> TapLine<'a> {
    /// The failure this line reports, if it is one.
    pub fn failure(&self) -> Option<TapEvent<'a>> {
        let level = Level::from_ngx(self.level)?;
        let Some(UpstreamLine::Failure(f)) = classify(self.rest, self.action) else {
            return None;
        };
        Some(TapEvent {
            attempt: self.attempt,
            event: f.event,
            phase: derive_phase(f.event, f.send_side, self.conn),
            level,
            errno: f.errno,
            error: f.error,
            message: f.message,
        })
    }

    /// The stderr text this line carries and whether NGINX cut it, if it is one.
    pub fn stderr(&self) -> Option<(&'a [u8], bool)> {
        match classify(self.rest, self.action)? {
            UpstreamLine::FastcgiStderr { text, truncated } => Some((text, truncated)),
            UpstreamLine::Failure(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As NGINX 1.22 logs a missing PHP-FPM socket (the tap sees the line without
    /// the `time [level] pid#tid: *conn ` prefix).
    const ENOENT: &[u8] = b"connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory) while connecting to upstream, client: 127.0.0.1, server: localhost, request: \"GET /index.php HTTP/1.1\", upstream: \"fastcgi://unix:/run/php/php8.2-fpm.sock:\", host: \"localhost\"\n";

    fn line<'a>(rest: &'a [u8], action: &'static [u8], conn: ConnState) -> TapLine<'a> {
        TapLine {
            attempt: Some(0),
            level: 3,
            conn,
            action: Some(action),
            rest,
        }
    }

    #[test]
    fn a_kept_line_is_classified_at_the_log_phase() {
        assert!(worth_keeping(ENOENT) && !is_stderr(ENOENT));
        let e = line(ENOENT, b"connecting to upstream", ConnState::default())
            .failure()
            .expect("a failure");
        assert_eq!(
            (e.event, e.phase, e.level, e.errno),
            (Event::ConnectFailed, Phase::Connect, Level::Crit, Some(2))
        );
        assert_eq!(e.error, Some(&b"No such file or directory"[..]));
        assert_eq!(
            e.message,
            &b"connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory)"[..]
        );
    }

    #[test]
    fn the_phase_comes_from_the_state_kept_with_the_line() {
        let timed_out = b"upstream timed out (110: Connection timed out) while reading response header from upstream, client: 127.0.0.1, server: localhost, request: \"GET / HTTP/1.1\", upstream: \"http://127.0.0.1:8080/\", host: \"localhost\"";
        let read = ConnState {
            connected: true,
            read_timedout: true,
            connect_time_set: true,
            request_sent: true,
            ..ConnState::default()
        };
        let e = line(timed_out, b"reading response header from upstream", read)
            .failure()
            .expect("a failure");
        assert_eq!((e.event, e.phase), (Event::TimedOut, Phase::Header));
    }

    #[test]
    fn lines_that_are_not_failures_give_none() {
        let stderr = b"FastCGI sent in stderr: \"PHP message: PHP Warning:  x\" while reading response header from upstream, client: 127.0.0.1, server: localhost, request: \"GET / HTTP/1.1\", upstream: \"fastcgi://unix:/run/php/php8.2-fpm.sock:\", host: \"localhost\"";
        let l = line(
            stderr,
            b"reading response header from upstream",
            ConnState::default(),
        );
        assert!(is_stderr(stderr));
        assert_eq!(l.failure(), None);
        assert_eq!(
            l.stderr(),
            Some((&b"PHP message: PHP Warning:  x"[..], false))
        );
        // The client side of the same call is not the upstream's.
        let client = b"writev() failed (32: Broken pipe) while sending to client, client: 127.0.0.1, server: localhost, request: \"GET / HTTP/1.1\"";
        assert_eq!(
            line(client, b"sending to client", ConnState::default()).failure(),
            None
        );
        // Debug lines are never kept as failures.
        let mut debug = line(ENOENT, b"connecting to upstream", ConnState::default());
        debug.level = 8;
        assert_eq!(debug.failure(), None);
        assert!(!worth_keeping(
            b"open() \"/var/www/x\" failed (2: No such file or directory)"
        ));
    }
}
