//! The one reader of NGINX's upstream error messages: what a formatted error-log line
//! says about an upstream attempt.
//!
//! NGINX keeps an upstream failure's errno nowhere but in the text it formats
//! (`ngx_log_errno` prints ` (<errno>: <strerror>)`), so the module reads the line
//! NGINX itself produced, and the analyzer reads the same lines from files: both go
//! through this module, so a request seen as a record and as its error-log line gets
//! the same event and errno and joins into one failure. Templates are matched at the
//! start of the message only; the client-controlled tail (request line, Host,
//! referrer) is never interpreted.
//!
//! Every template NGINX 1.22 and 1.28 log for an upstream, and the ones that look
//! alike but are not upstream failures, are listed with the event expected in
//! `record/tests/templates.rs`; add a line there when NGINX adds a message.

use crate::event::{Event, Level, Phase};

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
    let colon = hash + find(&after[hash..], COLON)?;
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
    Failure(FailureMessage<'a>),
    /// `FastCGI sent in stderr: "..."` — context, not a failure by itself.
    FastcgiStderr { text: &'a [u8], truncated: bool },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureMessage<'a> {
    pub event: Event,
    pub errno: Option<i32>,
    /// The strerror text as printed.
    pub error: Option<&'a [u8]>,
    /// NGINX's message with the errno part, without ` while <action>` and context.
    pub message: &'a [u8],
    /// The failing call wrote to the upstream (writev/send/sendfile/SSL_write).
    pub send_side: bool,
    /// The phase the line itself states: implied by the event (a connect, resolver or
    /// TLS failure) or named by ` while <action>`. Readers of plain logs use it; the
    /// module derives the phase from connection state instead (see `Phase::from_action`).
    pub phase: Option<Phase>,
}

/// Classifies the part of a line after its prefix (`rest` of [`split_prefix`]):
/// message, errno, ` while <action>` and context.
///
/// `action` is the `log->action` NGINX appends as ` while <action>`, when known (the
/// module knows it); it locates the end of the message exactly. Without it, the
/// action is read from the text. Returns `None` for lines that are not about an
/// upstream attempt.
pub fn classify<'a>(rest: &'a [u8], action: Option<&[u8]>) -> Option<UpstreamLine<'a>> {
    let rest = trim_newline(rest);
    let (end, found) = split_tail(rest, action);
    classify_message(&rest[..end], action.or(found), end < rest.len())
}

/// Classifies a message already cut from its line: `message` is what NGINX formatted
/// with its errno part (` (111: Connection refused)`), without ` while <action>` and
/// context; `action` is the text after ` while `, if the line has one; `complete` is
/// false when the line ended inside the message (cut at NGINX's 2048-byte limit, or
/// pasted without its tail).
pub fn classify_message<'a>(
    message: &'a [u8],
    action: Option<&[u8]>,
    complete: bool,
) -> Option<UpstreamLine<'a>> {
    let msg = trim_newline(message);
    if let Some(body) = msg.strip_prefix(b"FastCGI sent in stderr: \"") {
        // The text is quoted but inner quotes are not escaped: the closing quote is the
        // last one. A line cut at 2048 bytes has none of its own.
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

    let t = template(msg, action)?;
    let side = action.map_or(Side::Either, action_side);
    // The same calls fail on the client's connection: a known client-side action
    // says the line is about the client, not the upstream.
    if side == Side::Client || (side == Side::ClientWrites && t.send_side) {
        return None;
    }
    let (errno, error) = match t.errno.then(|| trailing_errno(msg)).flatten() {
        Some((n, text)) => (Some(n), Some(text)),
        None => (None, None),
    };
    let event = match (t.event, errno) {
        (Event::RecvFailed | Event::SendFailed, Some(104)) => Event::Reset,
        (e, _) => e,
    };
    let phase = match event {
        Event::ConnectFailed | Event::NoLiveUpstreams => Some(Phase::Connect),
        Event::ResolveFailed => Some(Phase::Resolve),
        Event::SslFailed => Some(Phase::Tls),
        _ => action
            .and_then(|a| std::str::from_utf8(a).ok())
            .and_then(Phase::from_action),
    };
    Some(UpstreamLine::Failure(FailureMessage {
        event,
        errno,
        error,
        message: msg,
        send_side: t.send_side,
        phase,
    }))
}

/// Whether `rest` (a line's text after its prefix) starts like a message this reader
/// knows. Cheap next to [`classify`]: a reader of large logs skips the lines that are
/// not about an upstream before it splits them. Never false for a line [`classify`]
/// reads as an upstream line.
pub fn may_concern_upstream(rest: &[u8]) -> bool {
    let starts_known = rest
        .first()
        .is_some_and(|&b| MESSAGE_FIRST_BYTES[usize::from(b)])
        && (rest.starts_with(b"FastCGI sent in stderr: ")
            || STARTS.iter().any(|(start, _)| rest.starts_with(start))
            || rest.starts_with(b"kevent() reported about an closed connection")
            || rest.starts_with(b"upstream sent ")
            || rest.starts_with(b"no resolver defined to resolve "));
    starts_known || find(rest, NOT_RESOLVED).is_some()
}

/// The first bytes of the message starts [`may_concern_upstream`] compares: most
/// lines of a quiet log (`open() ... failed`, `client ... closed`) are turned away by
/// one look-up instead of a comparison with every start.
const MESSAGE_FIRST_BYTES: [bool; 256] = {
    let mut table = [false; 256];
    let mut i = 0;
    while i < STARTS.len() {
        table[STARTS[i].0[0] as usize] = true;
        i += 1;
    }
    table[b'F' as usize] = true; // FastCGI sent in stderr
    table[b'k' as usize] = true; // kevent() reported about an closed connection
    table[b'u' as usize] = true; // upstream sent
    table[b'n' as usize] = true; // no resolver defined to resolve
    table
};

/// The peer named in `connect() to <peer> failed (...)`.
pub fn connect_peer(message: &[u8]) -> Option<&[u8]> {
    let rest = message.strip_prefix(b"connect() to ")?;
    let end = rfind(rest, FAILED)?;
    Some(&rest[..end])
}

/// What a template says: the event, whether NGINX appends an errno, and whether the
/// failing call wrote.
#[derive(Debug, Clone, Copy)]
struct Template {
    event: Event,
    errno: bool,
    send_side: bool,
}

const fn t(event: Event, errno: bool) -> Template {
    Template {
        event,
        errno,
        send_side: false,
    }
}

const fn send(event: Event) -> Template {
    Template {
        event,
        errno: true,
        send_side: true,
    }
}

/// Message starts, most specific first. Why an event is chosen:
/// - connection level (the socket failed, timed out or was closed): `ConnectFailed`,
///   `TimedOut`, `RecvFailed`/`SendFailed` (`Reset` when the errno is ECONNRESET),
///   `ClosedPrematurely` (the upstream closed the connection: FIN);
/// - the response broke its protocol's framing, including an orderly end of a
///   protocol stream before the response was complete (FastCGI stdout, a gRPC stream):
///   `ProtocolError` — the upstream process is alive and ended the stream itself;
/// - the response's header (or trailer) is invalid: `InvalidHeader`, `HeaderTooBig`.
const STARTS: &[(&[u8], Template)] = {
    use Event::*;
    &[
        // src/event/ngx_event_connect.c, src/http/ngx_http_upstream.c (test_connect)
        (b"connect() to ", t(ConnectFailed, true)),
        (b"connect() failed", t(ConnectFailed, true)),
        (
            b"kevent() reported that connect() failed",
            t(ConnectFailed, true),
        ),
        // src/http/ngx_http_upstream.c
        (b"upstream timed out", t(TimedOut, true)),
        (b"no live upstreams", t(NoLiveUpstreams, false)),
        (
            b"upstream prematurely closed connection",
            t(ClosedPrematurely, false),
        ),
        (
            b"upstream prematurely sent response",
            t(PrematurelySent, false),
        ),
        (
            b"upstream SSL certificate verify error: ",
            t(SslFailed, false),
        ),
        (
            b"upstream SSL certificate does not match ",
            t(SslFailed, false),
        ),
        // src/os/unix/ngx_recv.c, ngx_readv_chain.c, ngx_send.c, ngx_writev_chain.c,
        // ngx_linux_sendfile_chain.c; src/event/ngx_event_openssl.c, ngx_event_pipe.c
        (b"recv() failed", t(RecvFailed, true)),
        (b"readv() failed", t(RecvFailed, true)),
        (b"ioctl(FIONREAD) failed", t(RecvFailed, true)),
        (b"SSL_read() failed", t(RecvFailed, true)),
        (
            b"kevent() reported that upstream closed connection",
            t(RecvFailed, true),
        ),
        (b"writev() failed", send(SendFailed)),
        (b"send() failed", send(SendFailed)),
        (b"send() returned zero", send(SendFailed)),
        (b"sendfile() failed", send(SendFailed)),
        (b"SSL_write() failed", send(SendFailed)),
        (b"SSL_sendfile() failed", send(SendFailed)),
        (b"SSL_do_handshake() failed", t(SslFailed, true)),
        (
            b"peer closed connection in SSL handshake",
            t(SslFailed, true),
        ),
        // src/http/modules/ngx_http_fastcgi_module.c
        (
            b"upstream prematurely closed FastCGI ",
            t(ProtocolError, false),
        ),
        (
            b"upstream sent unsupported FastCGI protocol version",
            t(ProtocolError, false),
        ),
        (
            b"upstream sent invalid FastCGI record type",
            t(ProtocolError, false),
        ),
        (
            b"upstream sent unexpected FastCGI ",
            t(ProtocolError, false),
        ),
        // src/http/modules/ngx_http_grpc_module.c: HTTP/2 framing
        (
            b"upstream prematurely closed stream",
            t(ProtocolError, false),
        ),
        (
            b"upstream rejected request with error ",
            t(ProtocolError, false),
        ),
        (b"upstream sent goaway with error ", t(ProtocolError, false)),
        (b"upstream violated ", t(ProtocolError, false)),
        (
            b"upstream sent unexpected http2 frame",
            t(ProtocolError, false),
        ),
        (
            b"upstream sent unexpected push promise frame",
            t(ProtocolError, false),
        ),
        (b"upstream sent frame for ", t(ProtocolError, false)),
        (b"upstream sent data frame for ", t(ProtocolError, false)),
        (
            b"upstream sent trailer without end stream flag",
            t(ProtocolError, false),
        ),
        (
            b"upstream sent response body larger than ",
            t(ProtocolError, false),
        ),
        (
            b"upstream sent too short http2 frame",
            t(ProtocolError, false),
        ),
        (b"upstream sent too large http2 ", t(ProtocolError, false)),
        (b"upstream sent http2 ", t(ProtocolError, false)),
        (b"upstream sent invalid http2 ", t(ProtocolError, false)),
        (b"upstream sent zero http2 ", t(ProtocolError, false)),
        (
            b"upstream sent truncated http2 header",
            t(ProtocolError, false),
        ),
        (
            b"upstream sent invalid encoded header",
            t(ProtocolError, false),
        ),
        (
            b"upstream sent headers frame with ",
            t(ProtocolError, false),
        ),
        (
            b"upstream sent rst stream frame with ",
            t(ProtocolError, false),
        ),
        (b"upstream sent goaway frame with ", t(ProtocolError, false)),
        (
            b"upstream sent window update frame with ",
            t(ProtocolError, false),
        ),
        (
            b"upstream sent too large window update",
            t(ProtocolError, false),
        ),
        (
            b"upstream sent settings frame with ",
            t(ProtocolError, false),
        ),
        (
            b"upstream sent too many settings frames",
            t(ProtocolError, false),
        ),
        (b"upstream sent ping frame with ", t(ProtocolError, false)),
        (
            b"upstream sent too many ping frames",
            t(ProtocolError, false),
        ),
        // src/http/modules/ngx_http_proxy_module.c: HTTP/1.1 chunked framing
        (
            b"upstream sent invalid chunked response",
            t(ProtocolError, false),
        ),
        // every protocol: the response header
        (b"upstream sent too big header", t(HeaderTooBig, false)),
    ]
};

/// `upstream sent ...` messages that are warnings: NGINX ignores the excess or the
/// duplicate and goes on, the response is not failed.
const WARNINGS: &[&[u8]] = &[
    b"upstream sent more data than specified in ",
    b"upstream sent data after ",
];

fn template(msg: &[u8], action: Option<&[u8]>) -> Option<Template> {
    if let Some((_, t)) = STARTS.iter().find(|(start, _)| msg.starts_with(start)) {
        return Some(*t);
    }
    // `kevent() reported about an closed connection` (FreeBSD) is logged by both
    // recv and send; the action tells which.
    if msg.starts_with(b"kevent() reported about an closed connection") {
        return Some(if action == Some(b"sending request to upstream") {
            send(Event::SendFailed)
        } else {
            t(Event::RecvFailed, true)
        });
    }
    if msg.starts_with(b"upstream sent ") {
        if WARNINGS.iter().any(|w| msg.starts_with(w)) || msg.ends_with(b", ignored") {
            return None;
        }
        // Invalid status, header, trailer, Content-Length, Transfer-Encoding,
        // `:status`, duplicate header lines (the ones NGINX does not ignore), and any
        // other complaint about what the upstream sent.
        return Some(t(Event::InvalidHeader, false));
    }
    // `no resolver defined to resolve <host>` (request time); the configuration-time
    // `... resolve names at run time in upstream "x" in file:line` is not a request's.
    if let Some(host) = msg.strip_prefix(b"no resolver defined to resolve ") {
        return is_name(host).then_some(t(Event::ResolveFailed, false));
    }
    // `<host> could not be resolved (<rcode>: <text>)`: the number is a resolver
    // rcode (3: Host not found, 110: Operation timed out), not an errno, so it stays
    // in the message only.
    if let Some(i) = find(msg, NOT_RESOLVED) {
        return is_name(&msg[..i]).then_some(t(Event::ResolveFailed, false));
    }
    None
}

/// A host name or address as NGINX prints `%V` of a name to resolve: one word.
fn is_name(b: &[u8]) -> bool {
    !b.is_empty() && !b.iter().any(|c| c.is_ascii_whitespace() || *c == b'"')
}

/// Which connection NGINX was working on when it logged the line, by its action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    /// An action of the upstream (`connecting to upstream`, ...).
    Upstream,
    /// `sending to client`: the response body goes to the client while the upstream is
    /// read (buffered proxying reads upstream under this action), so reads there are
    /// the upstream's and writes the client's.
    ClientWrites,
    /// The client's connection or NGINX's own work; no upstream is involved.
    Client,
    /// Not known (a third-party module's action) or either side (upgraded connections).
    Either,
}

fn action_side(action: &[u8]) -> Side {
    match action {
        b"connecting to upstream"
        | b"SSL handshaking to upstream"
        | b"sending request to upstream"
        | b"reading response header from upstream"
        | b"reading upstream" => Side::Upstream,
        b"sending to client" => Side::ClientWrites,
        // src/http/ngx_http_request.c, v2/, ngx_http_static_module.c, ngx_http_core
        // (resolver, OCSP), ngx_log.c: the actions NGINX sets outside upstream work.
        b"waiting for request"
        | b"SSL handshaking"
        | b"reading PROXY protocol"
        | b"reading client request line"
        | b"reading client request headers"
        | b"reading client pipelined request line"
        | b"processing HTTP/2 connection"
        | b"sending response to client"
        | b"sending flv to client"
        | b"sending mp4 to client"
        | b"keepalive"
        | b"closing request"
        | b"logging request"
        | b"resolving"
        | b"requesting certificate status"
        | b"logging to syslog" => Side::Client,
        _ => Side::Either,
    }
}

/// The ` (<errno>: <strerror>)` NGINX appends at the very end of the message
/// (`ngx_log_errno`, after a `...` when the message overflowed).
fn trailing_errno(msg: &[u8]) -> Option<(i32, &[u8])> {
    let inner = msg.strip_suffix(b")")?;
    let open = rfind(inner, OPEN)?;
    let inner = &inner[open + 2..];
    let colon = find(inner, COLON)?;
    let n = parse_u64(&inner[..colon])?;
    let n = i32::try_from(n).ok()?;
    Some((n, &inner[colon + 2..]))
}

/// Where the message ends and NGINX's ` while <action>, client: ...` tail begins, and
/// the action found there.
fn split_tail<'a>(rest: &'a [u8], action: Option<&[u8]>) -> (usize, Option<&'a [u8]>) {
    if let Some(action) = action {
        // The first ` while <action>, client: `.
        let mut from = 0;
        while let Some(i) = find(&rest[from..], WHILE) {
            let w = from + i;
            let a = w + WHILE.len();
            if rest[a..].starts_with(action) && rest[a + action.len()..].starts_with(b", client: ")
            {
                return (w, Some(&rest[a..a + action.len()]));
            }
            from = w + 1;
        }
    }
    if let Some(i) = find(rest, CLIENT) {
        // Without a known action the tail may still start with " while "; the last one
        // before the context is NGINX's (an SSL error text can hold "while" too).
        if let Some(w) = rfind(&rest[..i], WHILE) {
            return (w, Some(&rest[w + WHILE.len()..i]));
        }
        return (i, None);
    }
    // No context: cut at 2048 bytes, or pasted without it. A trailing known action
    // still ends the message.
    if let Some(w) = rfind(rest, WHILE) {
        let a = &rest[w + WHILE.len()..];
        let known = std::str::from_utf8(a).is_ok_and(|a| Phase::from_action(a).is_some());
        if known || action_side(a) != Side::Either {
            return (w, Some(a));
        }
    }
    (rest.len(), None)
}

fn trim_newline(b: &[u8]) -> &[u8] {
    b.strip_suffix(b"\n").unwrap_or(b)
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    memchr::memchr(needle, hay)
}

/// A fixed needle and the byte [`find`] and [`rfind`] scan for, chosen when the
/// program is compiled: picking it per call (a pass over the needle's bytes) cost the
/// module's log phase about 500 instructions per record.
#[derive(Debug, Clone, Copy)]
struct Needle {
    bytes: &'static [u8],
    /// Where the anchor is in the needle.
    at: usize,
    anchor: u8,
}

impl Needle {
    const fn new(bytes: &'static [u8]) -> Needle {
        let (at, anchor) = anchor(bytes);
        Needle { bytes, at, anchor }
    }

    const fn len(&self) -> usize {
        self.bytes.len()
    }
}

const WHILE: Needle = Needle::new(b" while ");
const CLIENT: Needle = Needle::new(b", client: ");
const COLON: Needle = Needle::new(b": ");
const OPEN: Needle = Needle::new(b" (");
const FAILED: Needle = Needle::new(b" failed");
const NOT_RESOLVED: Needle = Needle::new(b" could not be resolved (");

/// The first occurrence of `needle`. The needles here are short and fixed, and the
/// haystacks one line: scanning for one of the needle's bytes with `memchr` costs no
/// setup, where a `memmem` searcher is built anew for every call (the module reads a
/// line in a request's log phase; the analyzer reads millions).
#[inline(always)]
fn find(hay: &[u8], needle: Needle) -> Option<usize> {
    if needle.bytes.is_empty() {
        return None;
    }
    let (at, anchor) = (needle.at, needle.anchor);
    let mut from = at;
    while let Some(i) = memchr::memchr(anchor, hay.get(from..)?) {
        let start = from + i - at;
        if hay[start..].starts_with(needle.bytes) {
            return Some(start);
        }
        from += i + 1;
    }
    None
}

/// The last occurrence of `needle` (see [`find`]).
#[inline(always)]
fn rfind(hay: &[u8], needle: Needle) -> Option<usize> {
    if needle.bytes.is_empty() {
        return None;
    }
    let (at, anchor) = (needle.at, needle.anchor);
    let tail = needle.len() - at;
    let mut end = hay.len().checked_sub(tail - 1)?;
    while let Some(i) = memchr::memrchr(anchor, &hay[at.min(end)..end]) {
        let start = at.min(end) + i - at;
        if hay[start..].starts_with(needle.bytes) {
            return Some(start);
        }
        end = at.min(end) + i;
    }
    None
}

/// The needle byte to scan for, and where it is in the needle: its rarest byte in
/// log text (the first of the rarest), so that `memchr` stops seldom. Scanning for a
/// letter of ` could not be resolved (` stopped at every `c` of every line (a third of
/// the analyzer's reading time on a quiet log); its `(` occurs a few times per line.
/// `(0, 0)` for an empty needle, which is never found.
const fn anchor(needle: &[u8]) -> (usize, u8) {
    if needle.is_empty() {
        return (0, 0);
    }
    let mut best = 0;
    let mut i = 1;
    while i < needle.len() {
        if commonness(needle[i]) < commonness(needle[best]) {
            best = i;
        }
        i += 1;
    }
    (best, needle[best])
}

/// How often a byte occurs in log text, roughly: spaces and lower-case letters are
/// everywhere, digits and the punctuation of addresses and paths in every line,
/// brackets and other punctuation a few times per line.
const fn commonness(b: u8) -> u8 {
    match b {
        b' ' => 6,
        b'e' | b't' | b'a' | b'o' | b'i' | b'n' | b's' | b'r' => 5,
        b'a'..=b'z' => 4,
        b'0'..=b'9' | b'.' | b'/' | b':' | b',' | b'"' => 3,
        b'A'..=b'Z' => 2,
        _ => 1,
    }
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

    #[test]
    fn find_and_rfind_agree_with_memmem() {
        // Anchors fall first (`,`), mid-needle (`:` of ": ") and last (`(`).
        let needles: [&[u8]; 9] = [
            b" could not be resolved (",
            b"ed (",
            b" while ",
            b", client: ",
            b" (",
            b": ",
            b" failed",
            b"  ",
            b"x",
        ];
        let mut seed = 1u64;
        for _ in 0..3000 {
            let mut hay = Vec::new();
            for _ in 0..(seed % 40) {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let piece: &[u8] = [
                    &b" "[..],
                    b"w",
                    b"while",
                    b" while ",
                    b",",
                    b", client: ",
                    b"(",
                    b" (",
                    b":",
                    b"x",
                    b"failed",
                    b" could not be resolved",
                    b" could not be resolved (",
                    b"ed",
                ][(seed >> 33) as usize % 14];
                hay.extend_from_slice(piece);
            }
            for n in needles {
                assert_eq!(
                    find(&hay, Needle::new(n)),
                    memchr::memmem::find(&hay, n),
                    "{hay:?} {n:?}"
                );
                assert_eq!(
                    rfind(&hay, Needle::new(n)),
                    memchr::memmem::rfind(&hay, n),
                    "{hay:?} {n:?}"
                );
            }
        }
        assert_eq!(find(b"abc", Needle::new(b"")), None);
        assert_eq!(rfind(b"", OPEN), None);
    }

    fn failure<'a>(line: &'a [u8], action: Option<&[u8]>) -> (LinePrefix<'a>, FailureMessage<'a>) {
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
        assert_eq!(f.phase, Some(Phase::Connect));
        assert_eq!(
            f.message,
            &b"connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory)"[..]
        );
        assert_eq!(
            connect_peer(f.message),
            Some(&b"unix:/run/php/php8.2-fpm.sock"[..])
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
        assert_eq!(f.phase, Some(Phase::Header));
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
            (f.event, f.errno, f.send_side, f.phase),
            (Event::SendFailed, Some(32), true, Some(Phase::Send))
        );
        let line = b"2026/04/02 14:25:41 [error] 9#9: *1 upstream prematurely closed connection while reading response header from upstream, client: 1.2.3.4, server: x";
        let (_, f) = failure(line, None);
        assert_eq!((f.event, f.errno), (Event::ClosedPrematurely, None));
        assert_eq!(f.message, &b"upstream prematurely closed connection"[..]);
    }

    #[test]
    fn client_side_lines_are_not_upstream_failures() {
        // Real lines: a client that went away while NGINX sent it the response body.
        let line = b"2026/04/02 14:25:41 [info] 9#9: *1 writev() failed (32: Broken pipe) while sending to client, client: 1.2.3.4, server: x, request: \"GET /big HTTP/1.1\", upstream: \"http://127.0.0.1:3000/big\", host: \"x\"";
        let p = split_prefix(line).expect("prefix");
        assert_eq!(classify(p.rest, None), None);
        assert_eq!(classify(p.rest, Some(b"sending to client")), None);
        // ... but the upstream is read under the same action (buffered proxying).
        let line = b"2026/04/02 14:25:41 [error] 9#9: *1 readv() failed (104: Connection reset by peer) while sending to client, client: 1.2.3.4, server: x";
        let (_, f) = failure(line, None);
        assert_eq!((f.event, f.phase), (Event::Reset, Some(Phase::Body)));
        let line = b"2026/04/02 14:25:41 [crit] 9#9: *1 SSL_do_handshake() failed (SSL: error:0A00006C:SSL routines::bad key share) while SSL handshaking, client: 1.2.3.4, server: 0.0.0.0:443";
        let p = split_prefix(line).expect("prefix");
        assert_eq!(classify(p.rest, None), None);
    }

    #[test]
    fn ssl_text_with_while_and_a_trailing_errno() {
        let line = b"2026/04/02 14:25:41 [error] 9#9: *1 SSL_read() failed (SSL: error:0A000126:SSL routines::unexpected eof while reading) (104: Connection reset by peer) while reading upstream, client: 1.2.3.4, server: x";
        let (_, f) = failure(line, None);
        assert_eq!(
            (f.event, f.errno, f.phase),
            (Event::Reset, Some(104), Some(Phase::Body))
        );
        let line = b"2026/04/02 14:25:41 [error] 9#9: *1 SSL_do_handshake() failed (SSL: error:0A000086:SSL routines::certificate verify failed) while SSL handshaking to upstream, client: 1.2.3.4, server: x";
        let (_, f) = failure(line, None);
        assert_eq!(
            (f.event, f.errno, f.phase),
            (Event::SslFailed, None, Some(Phase::Tls))
        );
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
