//! The NGINX error log.
//!
//! An entry starts with `YYYY/MM/DD HH:MM:SS [level] pid#tid: [*conn ]`; a physical line
//! that does not start that way continues the previous entry (the raw newlines of a
//! `FastCGI sent in stderr` message). The context (`, client: ..., server: ...,
//! request: "...", upstream: "...", host: "..."`) is parsed from the right, because
//! the message itself may contain `, client:` and quotes are not escaped. Lines can be
//! cut at 2048 bytes, losing the context: what is left is still used. Lines pasted
//! without the date (as people paste them into tickets), or without `pid#tid:`, or
//! the message alone with its context, are read by [`parse_undated_head`].

use std::sync::LazyLock;

use gatelog_record::message::{self, UpstreamLine};
use memchr::memmem;

use crate::model::{AttemptEvent, Phase};
use crate::time::{self, Civil};

// Searchers built once: `str::find` with a string pattern builds a searcher per call,
// which dominated the profile on large logs.
static CLIENT_KEY: LazyLock<memmem::FinderRev<'static>> =
    LazyLock::new(|| memmem::FinderRev::new(", client: "));
static WHILE: LazyLock<memmem::FinderRev<'static>> =
    LazyLock::new(|| memmem::FinderRev::new(" while "));
static COMMA_SPACE: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(", "));

/// First `, ` in `s`, or its end.
fn until_comma(s: &str) -> usize {
    COMMA_SPACE.find(s.as_bytes()).unwrap_or(s.len())
}

/// The NGINX levels, as written between brackets.
pub const LEVELS: [&str; 8] = [
    "emerg", "alert", "crit", "error", "warn", "notice", "info", "debug",
];

/// NGINX's line cap (`NGX_MAX_ERROR_STR`); an entry this long was probably cut.
pub const MAX_ERROR_STR: usize = 2048;

/// Whether a physical line starts a new entry. Cheap: checked on every line.
pub fn is_entry_start(line: &[u8]) -> bool {
    line.len() > 24
        && line[4] == b'/'
        && line[7] == b'/'
        && line[10] == b' '
        && line[13] == b':'
        && line[19] == b' '
        && line[20] == b'['
        && line[0].is_ascii_digit()
}

/// The request context NGINX appends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestContext<'a> {
    pub client: Option<&'a str>,
    pub server: Option<&'a str>,
    pub request: Option<&'a str>,
    pub upstream: Option<&'a str>,
    pub host: Option<&'a str>,
}

/// One entry, split into its parts (borrowed from the entry text).
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorLogEntry<'a> {
    /// None for a line pasted without its date.
    pub civil: Option<Civil>,
    /// Empty for a line pasted without its level.
    pub level: &'a str,
    /// None for a line pasted without `pid#tid:`.
    pub pid: Option<u32>,
    pub conn: Option<u64>,
    /// The message as NGINX printed it, with its ` (N: strerror)` part, without
    /// action and context. What it means is read by [`classify_message`].
    pub message: &'a str,
    pub action: Option<&'a str>,
    pub context: RequestContext<'a>,
    /// The line reached NGINX's 2048-byte cap (the context may be missing).
    pub truncated: bool,
}

/// The head of an entry: what every line has, parsed cheaply.
#[derive(Debug, Clone, PartialEq)]
pub struct Head<'a> {
    /// None for a line pasted without its date.
    pub civil: Option<Civil>,
    /// Empty for a line pasted without its level.
    pub level: &'a str,
    /// None for a line pasted without `pid#tid:`.
    pub pid: Option<u32>,
    pub conn: Option<u64>,
    /// Everything after `pid#tid: [*conn ]`.
    pub body: &'a str,
    /// The whole entry's length (to tell a line cut at 2048 bytes).
    len: usize,
}

/// Parses time, level, pid and connection. `None` when the text is not an
/// error-log entry.
pub fn parse_head(entry: &str) -> Option<Head<'_>> {
    let b = entry.as_bytes();
    if !is_entry_start(b) {
        return None;
    }
    let civil = time::parse_nginx_time(b)?;
    let close = memchr::memchr(b']', &b[21..])? + 21;
    let level = &entry[21..close];
    if !LEVELS.contains(&level) {
        return None;
    }
    let rest = entry.get(close + 2..)?;
    let hash = memchr::memchr(b'#', rest.as_bytes())?;
    let pid: u32 = rest[..hash].parse().ok()?;
    let colon = memchr::memchr(b':', rest.as_bytes())?;
    if rest.as_bytes().get(colon + 1) != Some(&b' ') {
        return None;
    }
    let (conn, body) = split_conn(&rest[colon + 2..]);
    Some(Head {
        civil: Some(civil),
        level,
        pid: Some(pid),
        conn,
        body,
        len: entry.len(),
    })
}

/// `*N ` before the message.
fn split_conn(body: &str) -> (Option<u64>, &str) {
    if let Some(after_star) = body.strip_prefix('*') {
        let digits = after_star.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 {
            let rest = &after_star[digits..];
            return (
                after_star[..digits].parse().ok(),
                rest.strip_prefix(' ').unwrap_or(rest),
            );
        }
    }
    (None, body)
}

/// The head of a line pasted without NGINX's date: `[error] 1234#1234: *5 msg`,
/// `[error] *5 msg`, `1234#1234: *5 msg`. With `bare`, a line with none of these is
/// taken whole as the message (the caller has checked that it is an upstream
/// message with its context). `None` when the text starts like a dated entry or
/// has none of the parts and `bare` is false.
pub fn parse_undated_head(line: &str, bare: bool) -> Option<Head<'_>> {
    if is_entry_start(line.as_bytes()) {
        return None;
    }
    let mut rest = line.trim_start();
    let mut level = "";
    if let Some(r) = rest.strip_prefix('[') {
        let close = memchr::memchr(b']', r.as_bytes())?;
        if !LEVELS.contains(&&r[..close]) {
            return None;
        }
        level = &r[..close];
        rest = r[close + 1..].trim_start();
    }
    let mut pid = None;
    if let Some(hash) = memchr::memchr(b'#', rest.as_bytes()) {
        let tid_end = rest[hash + 1..]
            .bytes()
            .take_while(u8::is_ascii_digit)
            .count();
        let after = &rest[hash + 1 + tid_end..];
        if hash > 0 && tid_end > 0 && after.starts_with(": ") {
            if let Ok(p) = rest[..hash].parse() {
                pid = Some(p);
                rest = &after[2..];
            }
        }
    }
    let (conn, body) = split_conn(rest);
    if level.is_empty() && pid.is_none() && !bare {
        return None;
    }
    Some(Head {
        civil: None,
        level,
        pid,
        conn,
        body,
        len: line.len(),
    })
}

/// Parses a whole entry: the head, then message, errno, action and context.
pub fn parse_entry(entry: &str) -> Option<ErrorLogEntry<'_>> {
    parse_head(entry).map(split_body)
}

/// Splits a head's body into message, action and context.
pub fn split_body(h: Head<'_>) -> ErrorLogEntry<'_> {
    let truncated = h.len >= MAX_ERROR_STR - 1;
    let (head, context) = split_context(h.body);
    let (message, action) = split_action(head);
    ErrorLogEntry {
        civil: h.civil,
        level: h.level,
        pid: h.pid,
        conn: h.conn,
        message,
        action,
        context,
        truncated,
    }
}

/// Finds the context from the right: the last `, client: ` that is followed by an
/// address and `, server: ` (or by the end of a cut line).
fn split_context(body: &str) -> (&str, RequestContext<'_>) {
    const KEY: &str = ", client: ";
    let mut search_end = body.len();
    while let Some(i) = CLIENT_KEY.rfind(&body.as_bytes()[..search_end]) {
        let after = &body[i + KEY.len()..];
        let addr_end = until_comma(after);
        let addr = &after[..addr_end];
        let plausible = !addr.contains(' ')
            && !addr.contains('\n')
            && (after[addr_end..].starts_with(", server: ") || addr_end == after.len());
        if plausible {
            return (&body[..i], parse_context(&body[i + 2..]));
        }
        search_end = i;
    }
    (body, RequestContext::default())
}

/// Parses `client: X, server: Y, request: "...", upstream: "...", host: "..."`.
fn parse_context(ctx: &str) -> RequestContext<'_> {
    let mut c = RequestContext::default();
    let mut rest = ctx;
    if let Some(r) = rest.strip_prefix("client: ") {
        let end = until_comma(r);
        c.client = Some(&r[..end]);
        rest = &r[end..];
    }
    if let Some(r) = rest.strip_prefix(", server: ") {
        let end = until_comma(r);
        c.server = Some(&r[..end]);
        rest = &r[end..];
    }
    c.request = take_quoted(", request: \"", &mut rest);
    let _ = take_quoted(", subrequest: \"", &mut rest);
    c.upstream = take_quoted(", upstream: \"", &mut rest);
    c.host = take_quoted(", host: \"", &mut rest);
    c
}

/// Takes `<key>"value"` off the front of `rest`. Quoted values end at `", <next key>: "`
/// (inner quotes are not escaped), or at the last quote of a cut line.
fn take_quoted<'a>(key: &str, rest: &mut &'a str) -> Option<&'a str> {
    const NEXT: [&str; 5] = [
        "\", subrequest: \"",
        "\", upstream: \"",
        "\", host: \"",
        "\", referrer: \"",
        "\", ",
    ];
    let r: &'a str = rest.strip_prefix(key)?;
    // The first quote followed by a known next key ends the value.
    let end = memchr::memchr_iter(b'"', r.as_bytes())
        .find(|&i| NEXT.iter().any(|n| r[i..].starts_with(n)))
        .or_else(|| memchr::memrchr(b'"', r.as_bytes()))
        .unwrap_or(r.len());
    *rest = r.get(end + 1..).unwrap_or("");
    Some(&r[..end])
}

/// Splits ` while <action>` off the end of the message.
fn split_action(head: &str) -> (&str, Option<&str>) {
    if let Some(i) = WHILE.rfind(head.as_bytes()) {
        let action = &head[i + 7..];
        if action.len() < 48 && !action.contains('"') && !action.contains('\n') {
            return (&head[..i], Some(action));
        }
    }
    (head, None)
}

/// What an entry says about an upstream, read by the one reader of NGINX's upstream
/// messages (`gatelog_record::message`, which the module's error-log tap uses too), so
/// that an error line and the record of the same request agree; `None` for messages
/// unrelated to upstreams (static files `open() ... failed (2: ...)`, client errors,
/// start-up notices) and for the client's side of a connection.
pub fn classify_message<'a>(e: &ErrorLogEntry<'a>) -> Option<UpstreamMessage<'a>> {
    // A line whose tail was found was not cut inside the message.
    let complete = e.action.is_some() || e.context.client.is_some();
    let m = e.message;
    let read = message::classify_message(m.as_bytes(), e.action.map(str::as_bytes), complete)?;
    Some(match read {
        UpstreamLine::FastcgiStderr { text, .. } => {
            UpstreamMessage::FastcgiStderr { text: sub(m, text) }
        }
        UpstreamLine::Failure(f) => UpstreamMessage::Failure(LineFailure {
            event: f.event,
            phase: f.phase,
            errno: f.errno,
            message: sub(m, f.message),
            peer: message::connect_peer(f.message).map(|p| sub(m, p)),
        }),
    })
}

/// `part`, a slice the reader cut from `s`'s bytes, as a `&str` of `s`. The reader
/// cuts at ASCII delimiters, so the bounds are character boundaries.
fn sub<'a>(s: &'a str, part: &[u8]) -> &'a str {
    let start = (part.as_ptr() as usize).wrapping_sub(s.as_ptr() as usize);
    s.get(start..start + part.len()).unwrap_or("")
}

/// An upstream-related message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamMessage<'a> {
    /// An attempt failed.
    Failure(LineFailure<'a>),
    /// `FastCGI sent in stderr: "<text>"`: context for the request, not a failure by
    /// itself.
    FastcgiStderr { text: &'a str },
}

/// A failed attempt, as one error line states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineFailure<'a> {
    pub event: AttemptEvent,
    /// Implied by the event (connect, resolver, TLS) or named by ` while <action>`.
    pub phase: Option<Phase>,
    pub errno: Option<i32>,
    /// The message as NGINX printed it, errno part included.
    pub message: &'a str,
    /// The peer of `connect() to <peer> failed`.
    pub peer: Option<&'a str>,
}

/// The status NGINX answers for a failed attempt (reference §2.1: timeouts give 504,
/// everything else 502); `None` when the failure happened after the response header
/// was sent (body phase: the client got a truncated 200, not a 502/504).
pub fn inferred_status(event: AttemptEvent, phase: Option<Phase>) -> Option<u16> {
    let pre_response = matches!(
        event,
        AttemptEvent::ConnectFailed | AttemptEvent::NoLiveUpstreams | AttemptEvent::ResolveFailed
    );
    if phase == Some(Phase::Body) && !pre_response {
        return None;
    }
    Some(if event == AttemptEvent::TimedOut {
        504
    } else {
        502
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(s: &str) -> ErrorLogEntry<'_> {
        parse_entry(s).unwrap_or_else(|| panic!("not parsed: {s}"))
    }

    fn failure<'a>(e: &ErrorLogEntry<'a>) -> LineFailure<'a> {
        match classify_message(e) {
            Some(UpstreamMessage::Failure(f)) => f,
            other => panic!("not a failure: {other:?}"),
        }
    }

    /// The event of a failure line; `None` for any other line.
    fn event_of(e: &ErrorLogEntry<'_>) -> Option<AttemptEvent> {
        match classify_message(e) {
            Some(UpstreamMessage::Failure(f)) => Some(f.event),
            _ => None,
        }
    }

    fn event(s: &str) -> Option<AttemptEvent> {
        event_of(&entry(s))
    }

    fn stderr<'a>(e: &ErrorLogEntry<'a>) -> Option<&'a str> {
        match classify_message(e) {
            Some(UpstreamMessage::FastcgiStderr { text }) => Some(text),
            _ => None,
        }
    }

    use AttemptEvent as E;

    #[test]
    fn connect_failures() {
        let s = r#"2026/04/02 14:23:17 [crit] 1234#1234: *5678 connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory) while connecting to upstream, client: 203.0.113.7, server: example.com, request: "GET /index.php HTTP/1.1", upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "example.com""#;
        let e = entry(s);
        assert_eq!(e.level, "crit");
        assert_eq!(e.pid, Some(1234));
        assert_eq!(e.conn, Some(5678));
        assert_eq!(e.action, Some("connecting to upstream"));
        assert_eq!(
            e.message,
            "connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory)"
        );
        let f = failure(&e);
        assert_eq!((f.errno, f.phase), (Some(2), Some(Phase::Connect)));
        assert_eq!(f.message, e.message);
        assert_eq!(f.peer, Some("unix:/run/php/php8.2-fpm.sock"));
        assert_eq!(e.context.client, Some("203.0.113.7"));
        assert_eq!(e.context.server, Some("example.com"));
        assert_eq!(e.context.request, Some("GET /index.php HTTP/1.1"));
        assert_eq!(
            e.context.upstream,
            Some("fastcgi://unix:/run/php/php8.2-fpm.sock:")
        );
        assert_eq!(e.context.host, Some("example.com"));
        assert_eq!(event_of(&e), Some(E::ConnectFailed));

        let e = entry(
            r#"2026/04/02 14:23:17 [crit] 1234#1234: *5679 connect() to unix:/run/php/php8.2-fpm.sock failed (13: Permission denied) while connecting to upstream, client: 203.0.113.7, server: example.com, request: "GET / HTTP/2.0", upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "example.com", referrer: "https://example.com/login""#,
        );
        assert_eq!(failure(&e).errno, Some(13));
        assert_eq!(e.context.host, Some("example.com"));
        let e = entry(
            r#"2026/04/02 14:23:17 [error] 1234#1234: *5680 connect() to unix:/run/php/php8.2-fpm.sock failed (11: Resource temporarily unavailable) while connecting to upstream, client: 203.0.113.7, server: example.com, request: "POST /api/save HTTP/1.1", upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "example.com""#,
        );
        assert_eq!(failure(&e).errno, Some(11));
        let e = entry(
            r#"2026/04/02 14:23:17 [error] 1234#1234: *5681 connect() failed (111: Connection refused) while connecting to upstream, client: 203.0.113.7, server: _, request: "GET /index.php HTTP/1.1", upstream: "fastcgi://127.0.0.1:9000", host: "10.0.0.5""#,
        );
        assert_eq!(failure(&e).errno, Some(111));
        assert_eq!(e.context.server, Some("_"));
        assert_eq!(e.context.upstream, Some("fastcgi://127.0.0.1:9000"));
        assert_eq!(event_of(&e), Some(E::ConnectFailed));
        assert_eq!(
            inferred_status(E::ConnectFailed, Some(Phase::Connect)),
            Some(502)
        );
    }

    #[test]
    fn timeouts_resets_and_closes() {
        let t = r#"2026/04/02 14:24:17 [error] 1234#1234: *5682 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 203.0.113.7, server: example.com, request: "GET /report.php?id=7 HTTP/1.1", upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "example.com""#;
        let e = entry(t);
        assert_eq!(failure(&e).errno, Some(110));
        assert_eq!(e.action, Some("reading response header from upstream"));
        assert_eq!(event_of(&e), Some(E::TimedOut));
        assert_eq!(
            inferred_status(
                E::TimedOut,
                Phase::from_action("reading response header from upstream")
            ),
            Some(504)
        );
        // musl spells 110 differently: the number decides.
        assert_eq!(
            event(
                r#"2026/04/02 14:24:17 [error] 7#7: *1 upstream timed out (110: Operation timed out) while connecting to upstream, client: 10.0.0.1, server: a, request: "GET / HTTP/1.1", upstream: "fastcgi://127.0.0.1:9000", host: "a""#
            ),
            Some(E::TimedOut)
        );
        assert_eq!(
            event(
                r#"2026/04/02 14:25:41 [error] 1234#1234: *5683 upstream prematurely closed connection while reading response header from upstream, client: 203.0.113.7, server: example.com, request: "GET /export.php HTTP/1.1", upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "example.com""#
            ),
            Some(E::ClosedPrematurely)
        );
        assert_eq!(
            event(
                r#"2026/04/02 14:25:41 [error] 1234#1234: *5684 recv() failed (104: Connection reset by peer) while reading response header from upstream, client: 203.0.113.7, server: example.com, request: "POST /upload.php HTTP/1.1", upstream: "fastcgi://127.0.0.1:9000", host: "example.com""#
            ),
            Some(E::Reset)
        );
        assert_eq!(
            event(
                r#"2026/04/02 14:25:41 [error] 1#1: *9 writev() failed (32: Broken pipe) while sending request to upstream, client: 10.0.0.1, server: a, request: "POST /u HTTP/1.1", upstream: "fastcgi://unix:/run/php/x.sock:", host: "a""#
            ),
            Some(E::SendFailed)
        );
        // Body phase: the status was already sent; not a 502/504.
        let e = entry(
            r#"2026/04/02 14:25:41 [error] 1#1: *9 readv() failed (104: Connection reset by peer) while reading upstream, client: 10.0.0.1, server: a, request: "GET /big HTTP/1.1", upstream: "fastcgi://unix:/run/php/x.sock:", host: "a""#,
        );
        assert_eq!(
            inferred_status(E::Reset, e.action.and_then(Phase::from_action)),
            None
        );
    }

    #[test]
    fn invalid_responses_and_no_live() {
        assert_eq!(
            event(
                r#"2026/04/02 14:23:19 [error] 1234#1234: *5688 upstream sent too big header while reading response header from upstream, client: 10.0.0.1, server: a, request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/run/php/x.sock:", host: "a""#
            ),
            Some(E::HeaderTooBig)
        );
        assert_eq!(
            event(
                r#"2026/04/02 14:23:19 [error] 1#1: *1 upstream sent invalid header: "X-Bad\x00..." while reading response header from upstream, client: 10.0.0.1, server: a, request: "GET / HTTP/1.1", upstream: "fastcgi://127.0.0.1:9000", host: "a""#
            ),
            Some(E::InvalidHeader)
        );
        assert_eq!(
            event(
                r#"2026/04/02 14:23:19 [error] 1#1: *1 upstream sent unsupported FastCGI protocol version: 72 while reading response header from upstream, client: 10.0.0.1, server: a, request: "GET / HTTP/1.1", upstream: "fastcgi://127.0.0.1:9000", host: "a""#
            ),
            Some(E::ProtocolError)
        );
        assert_eq!(
            event(
                r#"2026/04/02 14:23:19 [error] 1#1: *1 upstream prematurely closed FastCGI stdout while reading response header from upstream, client: 10.0.0.1, server: a, request: "GET / HTTP/1.1", upstream: "fastcgi://127.0.0.1:9000", host: "a""#
            ),
            Some(E::ProtocolError)
        );
        let e = entry(
            r#"2026/04/02 14:23:19 [error] 1#1: *1 no live upstreams while connecting to upstream, client: 10.0.0.1, server: a, request: "GET / HTTP/1.1", upstream: "fastcgi://php", host: "a""#,
        );
        assert_eq!(event_of(&e), Some(E::NoLiveUpstreams));
        assert_eq!(e.context.upstream, Some("fastcgi://php"));
    }

    #[test]
    fn fastcgi_stderr_multiline_with_inner_quotes() {
        let s = "2026/04/02 14:23:18 [error] 1234#1234: *5685 FastCGI sent in stderr: \"PHP message: PHP Fatal error:  Uncaught Error: Class \"App\\Foo\" not found in /var/www/html/index.php:3\nStack trace:\n#0 {main}\n  thrown in /var/www/html/index.php on line 3\" while reading response header from upstream, client: 203.0.113.7, server: example.com, request: \"GET / HTTP/1.1\", upstream: \"fastcgi://unix:/run/php/php8.2-fpm.sock:\", host: \"example.com\"";
        let e = entry(s);
        assert!(stderr(&e).is_some());
        let text = stderr(&e).unwrap();
        assert!(
            text.starts_with("PHP message: PHP Fatal error:  Uncaught Error: Class \"App\\Foo\"")
        );
        assert!(text.ends_with("on line 3"));
        assert_eq!(e.action, Some("reading response header from upstream"));
        assert_eq!(e.context.request, Some("GET / HTTP/1.1"));
        // A message containing ", client: " itself: the real context is the last.
        let s = r#"2026/04/02 14:23:18 [error] 1#1: *7 FastCGI sent in stderr: "PHP message: bad input, client: evil, server: x" while reading response header from upstream, client: 203.0.113.7, server: example.com, request: "GET / HTTP/1.1", upstream: "fastcgi://127.0.0.1:9000", host: "example.com""#;
        let e = entry(s);
        assert_eq!(e.context.client, Some("203.0.113.7"));
        assert_eq!(
            stderr(&e),
            Some("PHP message: bad input, client: evil, server: x")
        );
        // `client: ...` after the guide's abbreviated example.
        let e = entry(
            r#"2026/04/02 14:23:18 [error] 1234#1234: *5686 FastCGI sent in stderr: "PHP message: PHP Warning:  Undefined variable $x in /var/www/html/a.php on line 5; PHP message: PHP Fatal error:  Allowed memory size of 134217728 bytes exhausted (tried to allocate 20480 bytes) in /var/www/html/a.php on line 9" while reading response header from upstream, client: ..."#,
        );
        assert!(stderr(&e).unwrap().contains("Allowed memory size"));
    }

    #[test]
    fn truncated_line_keeps_message_and_conn() {
        let mut s = String::from(
            "2026/04/02 14:23:18 [error] 1#1: *42 FastCGI sent in stderr: \"PHP message: ",
        );
        s.push_str(&"x".repeat(MAX_ERROR_STR));
        s.truncate(MAX_ERROR_STR);
        let e = entry(&s);
        assert!(e.truncated);
        assert_eq!(e.conn, Some(42));
        assert_eq!(e.context, RequestContext::default());
        assert!(stderr(&e).is_some());
        // errno survives truncation behind "...".
        let e = entry("2026/04/02 14:23:18 [error] 1#1: *43 upstream timed out... (110: Connection timed out)");
        let f = failure(&e);
        assert_eq!((f.event, f.errno), (E::TimedOut, Some(110)));
        assert_eq!(
            f.message,
            "upstream timed out... (110: Connection timed out)"
        );
    }

    #[test]
    fn unrelated_lines() {
        let e = entry(
            r#"2026/04/02 14:23:17 [error] 1234#1234: *12 open() "/var/www/html/favicon.ico" failed (2: No such file or directory), client: 203.0.113.7, server: example.com, request: "GET /favicon.ico HTTP/1.1", host: "example.com""#,
        );
        assert_eq!(classify_message(&e), None);
        let e = entry("2026/04/02 14:23:17 [notice] 1234#1234: signal process started");
        assert_eq!(e.conn, None);
        assert_eq!(event_of(&e), None);
        assert!(parse_entry("Stack trace:").is_none());
        assert!(parse_entry("2026/04/02 14:23:17 [bogus] 1#1: x").is_none());
    }

    #[test]
    fn lines_pasted_without_the_date() {
        // As pasted into tickets: the date cut off, then also the pid, then all but
        // the message and its context.
        let full = r#"[error] 1234#1234: *5 connect() to unix:/run/php/php7.2-fpm.sock failed (2: No such file or directory) while connecting to upstream, client: 1.2.3.4, server: example.com, request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/run/php/php7.2-fpm.sock:", host: "example.com""#;
        let h = parse_undated_head(full, false).unwrap();
        assert_eq!(
            (h.civil, h.level, h.pid, h.conn),
            (None, "error", Some(1234), Some(5))
        );
        let e = split_body(h);
        let f = failure(&e);
        assert_eq!((f.event, f.errno), (E::ConnectFailed, Some(2)));
        assert_eq!(f.peer, Some("unix:/run/php/php7.2-fpm.sock"));
        assert_eq!(e.context.server, Some("example.com"));

        let h = parse_undated_head(r#"[crit] *5 connect() to unix:/run/php/php7.2-fpm.sock failed (13: Permission denied) while connecting to upstream, client: 1.2.3.4, server: example.com, request: "GET / HTTP/1.1""#, false).unwrap();
        assert_eq!((h.level, h.pid, h.conn), ("crit", None, Some(5)));
        assert_eq!(failure(&split_body(h)).errno, Some(13));

        let h = parse_undated_head(r#"11#11: *3 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 10.0.0.1, server: _, request: "GET /slow.php HTTP/1.1", upstream: "fastcgi://127.0.0.1:9000", host: "x""#, false).unwrap();
        assert_eq!((h.level, h.pid, h.conn), ("", Some(11), Some(3)));

        let bare = r#"connect() to unix:/run/php/php7.2-fpm.sock failed (2: No such file or directory) while connecting to upstream, client: 1.2.3.4, server: example.com, request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/run/php/php7.2-fpm.sock:", host: "example.com""#;
        assert!(parse_undated_head(bare, false).is_none());
        let e = split_body(parse_undated_head(bare, true).unwrap());
        assert_eq!((e.pid, e.conn, failure(&e).errno), (None, None, Some(2)));
        assert_eq!(e.action, Some("connecting to upstream"));

        // Not undated NGINX lines.
        assert!(
            parse_undated_head("[ERROR] [pool www] cannot get uid for user 'www'", false).is_none()
        );
        assert!(parse_undated_head("[www]", false).is_none());
        assert!(parse_undated_head("Stack trace:", false).is_none());
        assert!(parse_undated_head(full.trim_start_matches("[error] "), false).is_some());
        assert!(parse_undated_head("2026/04/02 14:23:17 [error] 1#1: x", true).is_none());
    }
}
