//! Reading the upstream failure out of one formatted NGINX error-log line.
//!
//! NGINX keeps an upstream failure's errno nowhere but in the text it formats
//! (`ngx_log_errno` prints ` (<errno>: <strerror>)`), so the module reads the line
//! NGINX itself produced: the number is by construction the one in the error log.
//! Templates are matched at the start of the message only; the client-controlled
//! tail (request line, Host, referrer) is never interpreted.

use crate::event::{Event, Level};

/// The parts of `YYYY/MM/DD HH:MM:SS [level] pid#tid: *conn message...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinePrefix<'a> {
    pub level: Level,
    pub pid: u64,
    pub conn: Option<u64>,
    /// Everything after the prefix: message, errno, action and context.
    pub rest: &'a [u8],
}

/// Splits the fixed prefix NGINX's `ngx_log_error_core` writes.
pub fn split_prefix(line: &[u8]) -> Option<LinePrefix<'_>> {
    let open = memchr(b'[', line)?;
    let close = open + memchr(b']', &line[open..])?;
    let level = Level::from_word(&line[open + 1..close])?;
    let after = line.get(close + 2..)?; // "] "
    let hash = memchr(b'#', after)?;
    let pid = parse_u64(&after[..hash])?;
    let colon = hash + find(&after[hash..], b": ")?;
    let mut rest = &after[colon + 2..];
    let mut conn = None;
    if rest.first() == Some(&b'*') {
        let sp = memchr(b' ', rest)?;
        conn = Some(parse_u64(&rest[1..sp])?);
        rest = &rest[sp + 1..];
    }
    Some(LinePrefix {
        level,
        pid,
        conn,
        rest,
    })
}

/// What an error line says about the upstream attempt it was logged for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamLine<'a> {
    /// A failure that ends the attempt.
    Failure(Failure<'a>),
    /// `FastCGI sent in stderr: "..."` — context, not a failure by itself.
    FastcgiStderr { text: &'a [u8], truncated: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure<'a> {
    pub event: Event,
    pub errno: Option<i32>,
    /// The strerror text as printed.
    pub error: Option<&'a [u8]>,
    /// NGINX's message with the errno part, without ` while <action>` and context.
    pub message: &'a [u8],
    /// The failing call wrote to the upstream (writev/send/sendfile/SSL_write).
    pub send_side: bool,
}

/// Classifies the message part of a line (`rest` of [`split_prefix`]).
///
/// `action` is the `log->action` NGINX appends as ` while <action>`, when known; it
/// locates the end of the message exactly. Returns `None` for lines that are not
/// about an upstream attempt.
pub fn classify<'a>(rest: &'a [u8], action: Option<&[u8]>) -> Option<UpstreamLine<'a>> {
    let rest = trim_newline(rest);
    let end = message_end(rest, action);
    let msg = &rest[..end];

    if let Some(body) = msg.strip_prefix(b"FastCGI sent in stderr: \"") {
        // The text is quoted but inner quotes are not escaped: the closing quote is the
        // last one before the tail. A line cut at 2048 bytes has no tail.
        let complete = end < rest.len();
        return Some(match body.iter().rposition(|&b| b == b'"') {
            Some(q) if complete => UpstreamLine::FastcgiStderr {
                text: &body[..q],
                truncated: false,
            },
            _ => UpstreamLine::FastcgiStderr {
                text: body,
                truncated: true,
            },
        });
    }

    let (event, has_errno) = template(msg)?;
    let (errno, error, message) = if has_errno {
        match errno_part(msg) {
            Some((n, text, close)) => (Some(n), Some(text), &msg[..close]),
            None => (None, None, msg),
        }
    } else {
        (None, None, msg)
    };
    let send_side = event == Event::SendFailed;
    let event = match (event, errno) {
        (Event::RecvFailed | Event::SendFailed, Some(104)) => Event::Reset,
        (e, _) => e,
    };
    Some(UpstreamLine::Failure(Failure {
        event,
        errno,
        error,
        message,
        send_side,
    }))
}

/// Known message starts and whether NGINX appends an errno to them.
fn template(msg: &[u8]) -> Option<(Event, bool)> {
    const TABLE: &[(&[u8], Event, bool)] = &[
        (b"connect() to ", Event::ConnectFailed, true),
        (b"connect() failed", Event::ConnectFailed, true),
        (
            b"kevent() reported that connect() failed",
            Event::ConnectFailed,
            true,
        ),
        (b"upstream timed out", Event::TimedOut, true),
        (b"recv() failed", Event::RecvFailed, true),
        (b"readv() failed", Event::RecvFailed, true),
        (b"SSL_read() failed", Event::RecvFailed, true),
        (b"writev() failed", Event::SendFailed, true),
        (b"send() failed", Event::SendFailed, true),
        (b"sendfile() failed", Event::SendFailed, true),
        (b"SSL_write() failed", Event::SendFailed, true),
        (
            b"upstream prematurely closed",
            Event::ClosedPrematurely,
            false,
        ),
        (b"upstream sent too big header", Event::HeaderTooBig, false),
        (
            b"upstream prematurely sent response",
            Event::PrematurelySent,
            false,
        ),
        (
            b"upstream sent unsupported FastCGI protocol version",
            Event::ProtocolError,
            false,
        ),
        (
            b"upstream sent invalid FastCGI record type",
            Event::ProtocolError,
            false,
        ),
        (
            b"upstream sent unexpected FastCGI",
            Event::ProtocolError,
            false,
        ),
        (b"upstream sent ", Event::InvalidHeader, false),
        (b"SSL_do_handshake() failed", Event::SslFailed, true),
        (
            b"peer closed connection in SSL handshake",
            Event::SslFailed,
            true,
        ),
        (b"upstream SSL certificate", Event::SslFailed, false),
        (b"no live upstreams", Event::NoLiveUpstreams, false),
        (
            b"no resolver defined to resolve ",
            Event::ResolveFailed,
            false,
        ),
    ];
    for (prefix, event, errno) in TABLE {
        if msg.starts_with(prefix) {
            return Some((*event, *errno));
        }
    }
    // `<host> could not be resolved (<rcode>: <text>)`: the number is a resolver rcode,
    // not an errno, so it is kept in the message only.
    if find(msg, b" could not be resolved (").is_some() {
        return Some((Event::ResolveFailed, false));
    }
    None
}

/// Finds ` (<digits>: <text>)` and returns the number, the text and the offset just
/// past the `)`.
fn errno_part(msg: &[u8]) -> Option<(i32, &[u8], usize)> {
    let mut from = 0;
    while let Some(i) = find(&msg[from..], b" (") {
        let start = from + i + 2;
        let digits = msg[start..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        if digits > 0 && msg[start + digits..].starts_with(b": ") {
            let n: i32 = std::str::from_utf8(&msg[start..start + digits])
                .ok()?
                .parse()
                .ok()?;
            let text_start = start + digits + 2;
            let close = text_start + memchr(b')', &msg[text_start..])?;
            return Some((n, &msg[text_start..close], close + 1));
        }
        from = start;
    }
    None
}

/// Where the message ends and NGINX's ` while <action>, client: ...` tail begins.
fn message_end(rest: &[u8], action: Option<&[u8]>) -> usize {
    if let Some(action) = action {
        let mut needle = Vec::with_capacity(action.len() + 20);
        needle.extend_from_slice(b" while ");
        needle.extend_from_slice(action);
        needle.extend_from_slice(b", client: ");
        if let Some(i) = find(rest, &needle) {
            return i;
        }
    }
    if let Some(i) = find(rest, b", client: ") {
        // Without a known action the tail may still start with " while ".
        if let Some(w) = rfind(&rest[..i], b" while ") {
            return w;
        }
        return i;
    }
    rest.len()
}

fn trim_newline(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\n").unwrap_or(b)
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    memchr::memchr(needle, hay)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    memchr::memmem::find(hay, needle)
}

fn rfind(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return None;
    }
    memchr::memmem::rfind(hay, needle)
}

fn parse_u64(b: &[u8]) -> Option<u64> {
    if b.is_empty() || b.len() > 19 {
        return None;
    }
    b.iter().try_fold(0u64, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + u64::from(d - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure<'a>(line: &'a [u8], action: Option<&[u8]>) -> (LinePrefix<'a>, Failure<'a>) {
        let p = split_prefix(line).expect("prefix");
        match classify(p.rest, action).expect("upstream line") {
            UpstreamLine::Failure(f) => (p, f),
            other => panic!("not a failure: {other:?}"),
        }
    }

    #[test]
    fn sync_connect_enoent_at_crit() {
        let line = b"2026/04/02 14:23:17 [crit] 1234#1234: *5678 connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory) while connecting to upstream, client: 10.0.0.1, server: yourdomain.com, request: \"GET / HTTP/2.0\", upstream: \"fastcgi://unix:/run/php/php8.2-fpm.sock:\", host: \"yourdomain.com\"\n";
        let (p, f) = failure(line, Some(b"connecting to upstream"));
        assert_eq!(p.level, Level::Crit);
        assert_eq!(p.pid, 1234);
        assert_eq!(p.conn, Some(5678));
        assert_eq!(f.event, Event::ConnectFailed);
        assert_eq!(f.errno, Some(2));
        assert_eq!(f.error, Some(&b"No such file or directory"[..]));
        assert_eq!(
            f.message,
            &b"connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory)"[..]
        );
    }

    #[test]
    fn async_connect_refused_and_timeouts() {
        let line = b"2026/04/02 14:23:17 [error] 1234#1234: *5681 connect() failed (111: Connection refused) while connecting to upstream, client: 203.0.113.7, server: _, request: \"GET /index.php HTTP/1.1\", upstream: \"fastcgi://127.0.0.1:9000\", host: \"10.0.0.5\"";
        let (_, f) = failure(line, None);
        assert_eq!((f.event, f.errno), (Event::ConnectFailed, Some(111)));
        let line = b"2026/04/02 14:24:17 [error] 1234#1234: *5682 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 203.0.113.7, server: example.com";
        let (_, f) = failure(line, Some(b"reading response header from upstream"));
        assert_eq!((f.event, f.errno), (Event::TimedOut, Some(110)));
        assert_eq!(
            f.message,
            &b"upstream timed out (110: Connection timed out)"[..]
        );
    }

    #[test]
    fn resets_and_premature_close() {
        let line = b"2026/04/02 14:25:41 [error] 9#9: *1 recv() failed (104: Connection reset by peer) while reading response header from upstream, client: 1.2.3.4, server: x";
        assert_eq!(failure(line, None).1.event, Event::Reset);
        let line = b"2026/04/02 14:25:41 [error] 9#9: *1 writev() failed (32: Broken pipe) while sending request to upstream, client: 1.2.3.4, server: x";
        let (_, f) = failure(line, None);
        assert_eq!(
            (f.event, f.errno, f.send_side),
            (Event::SendFailed, Some(32), true)
        );
        let line = b"2026/04/02 14:25:41 [error] 9#9: *1 upstream prematurely closed connection while reading response header from upstream, client: 1.2.3.4, server: x";
        let (_, f) = failure(line, None);
        assert_eq!((f.event, f.errno), (Event::ClosedPrematurely, None));
        assert_eq!(f.message, &b"upstream prematurely closed connection"[..]);
    }

    #[test]
    fn invalid_and_protocol_and_nolive() {
        for (msg, ev) in [
            (&b"upstream sent too big header"[..], Event::HeaderTooBig),
            (
                b"upstream sent invalid header: \"X\\x01\" while",
                Event::InvalidHeader,
            ),
            (
                b"upstream sent unsupported FastCGI protocol version: 72",
                Event::ProtocolError,
            ),
            (
                b"upstream sent unexpected FastCGI record: 3",
                Event::ProtocolError,
            ),
            (b"no live upstreams", Event::NoLiveUpstreams),
            (
                b"php.invalid could not be resolved (3: Host not found)",
                Event::ResolveFailed,
            ),
        ] {
            let mut line = b"2026/04/02 14:25:41 [error] 9#9: *1 ".to_vec();
            line.extend_from_slice(msg);
            line.extend_from_slice(b", client: 1.2.3.4, server: x");
            let (_, f) = failure(&line, None);
            assert_eq!(f.event, ev, "{}", String::from_utf8_lossy(msg));
            assert_eq!(f.errno, None);
        }
    }

    #[test]
    fn fastcgi_stderr_multiline_with_inner_quotes() {
        let line = b"2026/04/02 14:23:18 [error] 1234#1234: *5685 FastCGI sent in stderr: \"PHP message: PHP Fatal error:  Uncaught Error: Class \"App\\Foo\" not found\nStack trace:\n#0 {main}\" while reading response header from upstream, client: 203.0.113.7, server: example.com, request: \"GET / HTTP/1.1\"\n";
        let p = split_prefix(line).expect("prefix");
        match classify(p.rest, Some(b"reading response header from upstream")) {
            Some(UpstreamLine::FastcgiStderr { text, truncated }) => {
                assert!(!truncated);
                assert_eq!(
                    text,
                    &b"PHP message: PHP Fatal error:  Uncaught Error: Class \"App\\Foo\" not found\nStack trace:\n#0 {main}"[..]
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fastcgi_stderr_cut_at_2048() {
        let mut line = b"2026/04/02 14:23:18 [error] 1#1: *5 FastCGI sent in stderr: \"".to_vec();
        line.extend(std::iter::repeat_n(b'x', 2000));
        let p = split_prefix(&line).expect("prefix");
        match classify(p.rest, None) {
            Some(UpstreamLine::FastcgiStderr { text, truncated }) => {
                assert!(truncated);
                assert_eq!(text.len(), 2000);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn client_tail_cannot_forge_a_template() {
        let line = b"2026/04/02 14:23:18 [error] 1#1: *5 open() \"/x\" failed (2: No such file or directory), client: 1.2.3.4, server: x, request: \"GET /connect() to x failed (13: y) HTTP/1.1\"";
        let p = split_prefix(line).expect("prefix");
        assert_eq!(classify(p.rest, None), None);
    }

    #[test]
    fn prefix_without_connection() {
        let line = b"2026/04/02 14:23:18 [alert] 77#0: worker process 80 exited on signal 11";
        let p = split_prefix(line).expect("prefix");
        assert_eq!((p.level, p.pid, p.conn), (Level::Alert, 77, None));
        assert!(split_prefix(b"garbage").is_none());
    }
}
