//! The module's writer of a gatelog.v1 line: the record written straight from borrowed
//! NGINX bytes into a caller's buffer, with no owned strings and no allocation.
//!
//! A failure storm is when an operator needs NGINX at full strength, so the module does
//! not build a [`Record`] (a dozen owned strings, then serde) for each failing request.
//! The line is byte for byte what `Record::write_line` writes for the same data
//! ([`RecordLine::to_record`] is that reference, and the tests compare both on tricky
//! bytes): readers keep reading it into [`Record`], and docs/gatelog.v1.schema.json
//! does not change.
//!
//! Text fields are NGINX bytes that may be anything a client sent; they are written as
//! [`lossless_text`] would make them (invalid UTF-8 as `%XX`) and escaped as serde_json
//! escapes strings.

use crate::errno::errno_name_str;
use crate::event::{Event, Level, Phase};
use crate::record::{Attempt, FastcgiStderr, Origin, Record, Timeouts, SCHEMA};
use crate::text::{lossless_text, truncate_at_char};

/// `fastcgi_stderr.text` is cut to this many bytes of text (after `%XX` escapes).
pub const MAX_STDERR: usize = 4096;

/// The `upstream` field: the upstream{} name, or the address written in `*_pass`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamName<'a> {
    /// Written as is (an upstream{} group, a resolved host).
    Name(&'a [u8]),
    /// A unix socket path, written `unix:PATH`.
    Unix(&'a [u8]),
    /// `HOST:PORT`.
    HostPort(&'a [u8], u16),
}

/// One attempt, borrowed. `errno_name` is not a field: it is the errno's name.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttemptLine<'a> {
    pub peer: Option<&'a [u8]>,
    pub phase: Option<Phase>,
    pub errno: Option<i32>,
    pub error: Option<&'a [u8]>,
    pub event: Option<Event>,
    pub message: Option<&'a [u8]>,
    pub level: Option<Level>,
    pub status: Option<u16>,
    pub connect_ms: Option<u64>,
    pub header_ms: Option<u64>,
    pub response_ms: Option<u64>,
}

/// `fastcgi_stderr`, borrowed: the text NGINX logged (cut to [`MAX_STDERR`] when
/// written) and whether it was already cut before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StderrLine<'a> {
    pub text: &'a [u8],
    pub truncated: bool,
}

/// One record, borrowed: everything `Record` holds except what the writer derives
/// (`schema`, `level`, `msg`, the top-level `errno_name` and `phase`, each attempt's
/// `errno_name`). The module never writes `upstream_protocol` yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLine<'a> {
    /// RFC 3339 with milliseconds (see `crate::time`); ASCII. Bytes, so that the
    /// module hands over its time buffer without checking it is UTF-8 per record.
    pub time: &'a [u8],
    pub pid: u64,
    pub conn: u64,
    pub request_id: Option<&'a [u8]>,
    pub status: u16,
    pub origin: Origin,
    pub recovered: bool,
    pub client: &'a [u8],
    pub server: &'a [u8],
    pub host: Option<&'a [u8]>,
    pub method: &'a [u8],
    pub uri: &'a [u8],
    pub protocol: &'a [u8],
    pub request_time_ms: u64,
    pub upstream: Option<UpstreamName<'a>>,
    pub attempts: &'a [AttemptLine<'a>],
    pub timeouts_ms: Option<Timeouts>,
    pub fastcgi_stderr: Option<StderrLine<'a>>,
}

/// The last failed attempt (see `record::last_failed`).
pub fn last_failed<'b, 'a>(attempts: &'b [AttemptLine<'a>]) -> Option<&'b AttemptLine<'a>> {
    attempts
        .iter()
        .rev()
        .find(|a| a.errno.is_some() || a.phase.is_some())
}

impl RecordLine<'_> {
    /// Appends the record as one JSON line, with its newline, to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        let last = last_failed(self.attempts);
        out.extend_from_slice(b"{\"schema\":\"");
        out.extend_from_slice(SCHEMA.as_bytes());
        out.extend_from_slice(b"\",\"time\":");
        text(out, self.time);
        out.extend_from_slice(if self.recovered {
            b",\"level\":\"warn\",\"msg\":\""
        } else {
            b",\"level\":\"error\",\"msg\":\""
        });
        self.write_summary(out);
        out.extend_from_slice(b"\",\"pid\":");
        number(out, self.pid);
        out.extend_from_slice(b",\"conn\":");
        number(out, self.conn);
        out.extend_from_slice(b",\"request_id\":");
        opt_text(out, self.request_id);
        out.extend_from_slice(b",\"status\":");
        number(out, self.status.into());
        out.extend_from_slice(match self.origin {
            Origin::Nginx => b",\"origin\":\"nginx\"",
            Origin::Upstream => b",\"origin\":\"upstream\"",
        });
        out.extend_from_slice(if self.recovered {
            b",\"recovered\":true,\"client\":"
        } else {
            b",\"recovered\":false,\"client\":"
        });
        text(out, self.client);
        out.extend_from_slice(b",\"server\":");
        text(out, self.server);
        out.extend_from_slice(b",\"host\":");
        opt_text(out, self.host);
        out.extend_from_slice(b",\"method\":");
        text(out, self.method);
        out.extend_from_slice(b",\"uri\":");
        text(out, self.uri);
        out.extend_from_slice(b",\"protocol\":");
        text(out, self.protocol);
        out.extend_from_slice(b",\"request_time_ms\":");
        number(out, self.request_time_ms);
        out.extend_from_slice(b",\"upstream\":");
        match self.upstream {
            None => out.extend_from_slice(b"null"),
            Some(u) => {
                out.push(b'"');
                upstream_name(out, u);
                out.push(b'"');
            }
        }
        out.extend_from_slice(b",\"errno_name\":");
        opt_str(out, last.and_then(|a| a.errno).and_then(errno_name_str));
        out.extend_from_slice(b",\"phase\":");
        opt_str(out, last.and_then(|a| a.phase).map(Phase::slug));
        out.extend_from_slice(b",\"attempts\":[");
        for (i, a) in self.attempts.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            attempt(out, a);
        }
        out.extend_from_slice(b"],\"timeouts_ms\":");
        match self.timeouts_ms {
            None => out.extend_from_slice(b"null"),
            Some(t) => {
                out.extend_from_slice(b"{\"connect\":");
                number(out, t.connect);
                out.extend_from_slice(b",\"send\":");
                number(out, t.send);
                out.extend_from_slice(b",\"read\":");
                number(out, t.read);
                out.push(b'}');
            }
        }
        out.extend_from_slice(b",\"fastcgi_stderr\":");
        match self.fastcgi_stderr {
            None => out.extend_from_slice(b"null"),
            Some(s) => {
                out.extend_from_slice(b"{\"text\":\"");
                let cut = capped_text(out, s.text, MAX_STDERR);
                out.extend_from_slice(if cut || s.truncated {
                    b"\",\"truncated\":true}"
                } else {
                    b"\",\"truncated\":false}"
                });
            }
        }
        out.extend_from_slice(b"}\n");
    }

    /// The `msg` field's text, escaped (see `Record::summary_line`, which this mirrors).
    fn write_summary(&self, out: &mut Vec<u8>) {
        number(out, self.status.into());
        out.push(b' ');
        text_body(out, self.method);
        out.push(b' ');
        uri_in_summary(out, self.uri);
        let Some(a) = self.attempts.iter().rev().find(|a| a.event.is_some()) else {
            return;
        };
        out.extend_from_slice(if self.recovered {
            b": recovered after "
        } else {
            b": "
        });
        match (a.message, a.event) {
            (Some(m), _) => text_body(out, without_errno(m, a.errno)),
            (None, Some(Event::UpstreamStatus)) => match a.status {
                Some(s) => {
                    out.extend_from_slice(b"upstream answered ");
                    number(out, s.into());
                }
                None => out.extend_from_slice(b"upstream answered with an error status"),
            },
            (None, Some(e)) => out.extend_from_slice(e.slug().as_bytes()),
            (None, None) => {}
        }
        let name = a.errno.and_then(errno_name_str);
        if name.is_none() && a.errno.is_none() && a.phase.is_none() {
            return;
        }
        out.extend_from_slice(b" (");
        match (name, a.errno) {
            (Some(n), _) => out.extend_from_slice(n.as_bytes()),
            (None, Some(n)) => signed(out, n),
            (None, None) => {}
        }
        if let Some(p) = a.phase {
            if a.errno.is_some() {
                out.extend_from_slice(b", ");
            }
            out.extend_from_slice(p.slug().as_bytes());
        }
        out.push(b')');
    }

    /// The same record as the reader's type, built the slow way (owned strings). The
    /// reference the writer is tested against, and what `gatelog_metrics` counts from.
    pub fn to_record(&self) -> Record {
        let mut r = Record {
            schema: SCHEMA.to_owned(),
            time: lossless_text(self.time),
            level: None,
            msg: None,
            pid: Some(self.pid),
            conn: Some(self.conn),
            request_id: self.request_id.map(lossless_text),
            status: self.status,
            origin: self.origin,
            recovered: self.recovered,
            client: lossless_text(self.client),
            server: lossless_text(self.server),
            host: self.host.map(lossless_text),
            method: lossless_text(self.method),
            uri: lossless_text(self.uri),
            protocol: lossless_text(self.protocol),
            request_time_ms: Some(self.request_time_ms),
            upstream: self.upstream.map(|u| match u {
                UpstreamName::Name(n) => lossless_text(n),
                UpstreamName::Unix(path) => format!("unix:{}", lossless_text(path)),
                UpstreamName::HostPort(host, port) => format!("{}:{port}", lossless_text(host)),
            }),
            upstream_protocol: None,
            errno_name: None,
            phase: None,
            attempts: self.attempts.iter().map(AttemptLine::to_attempt).collect(),
            timeouts_ms: self.timeouts_ms,
            fastcgi_stderr: self.fastcgi_stderr.map(|s| {
                let mut text = lossless_text(s.text);
                let cut = truncate_at_char(&mut text, MAX_STDERR);
                FastcgiStderr {
                    text,
                    truncated: cut || s.truncated,
                }
            }),
        };
        r.summarize();
        r
    }
}

impl AttemptLine<'_> {
    /// The reader's type of this attempt.
    pub fn to_attempt(&self) -> Attempt {
        Attempt {
            peer: self.peer.map(lossless_text),
            phase: self.phase,
            errno: self.errno,
            errno_name: self.errno.and_then(errno_name_str).map(str::to_owned),
            error: self.error.map(lossless_text),
            event: self.event,
            message: self.message.map(lossless_text),
            level: self.level,
            status: self.status,
            connect_ms: self.connect_ms,
            header_ms: self.header_ms,
            response_ms: self.response_ms,
        }
    }
}

fn attempt(out: &mut Vec<u8>, a: &AttemptLine) {
    out.extend_from_slice(b"{\"peer\":");
    opt_text(out, a.peer);
    out.extend_from_slice(b",\"phase\":");
    opt_str(out, a.phase.map(Phase::slug));
    out.extend_from_slice(b",\"errno\":");
    match a.errno {
        Some(n) => signed(out, n),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"errno_name\":");
    opt_str(out, a.errno.and_then(errno_name_str));
    out.extend_from_slice(b",\"error\":");
    opt_text(out, a.error);
    out.extend_from_slice(b",\"event\":");
    opt_str(out, a.event.map(Event::slug));
    out.extend_from_slice(b",\"message\":");
    opt_text(out, a.message);
    out.extend_from_slice(b",\"level\":");
    opt_str(out, a.level.map(Level::word));
    out.extend_from_slice(b",\"status\":");
    opt_number(out, a.status.map(u64::from));
    out.extend_from_slice(b",\"connect_ms\":");
    opt_number(out, a.connect_ms);
    out.extend_from_slice(b",\"header_ms\":");
    opt_number(out, a.header_ms);
    out.extend_from_slice(b",\"response_ms\":");
    opt_number(out, a.response_ms);
    out.push(b'}');
}

/// `message` without its trailing ` (ERRNO: strerror)` when ERRNO is `errno` (as
/// `record::without_errno`, on bytes: the cut point is ASCII, so cutting before or
/// after making the text lossless gives the same text).
fn without_errno(message: &[u8], errno: Option<i32>) -> &[u8] {
    let Some(n) = errno else { return message };
    let Some(i) = message.windows(2).rposition(|w| w == b" (") else {
        return message;
    };
    let tail = &message[i + 2..];
    let number = tail
        .iter()
        .position(|&b| b == b':')
        .and_then(|c| parse_i32(&tail[..c]));
    if tail.ends_with(b")") && number == Some(n) {
        return &message[..i];
    }
    message
}

/// `str::parse::<i32>` on bytes (an optional sign, then only ASCII digits), without
/// checking the bytes are UTF-8 first: anything else is not a number either way.
fn parse_i32(b: &[u8]) -> Option<i32> {
    let (negative, digits) = match b {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, b),
    };
    if digits.is_empty() {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        if !d.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i64::from(d - b'0');
        // Digits only make it larger: past |i32::MIN| it fits neither sign.
        if v > 1 << 31 {
            return None;
        }
    }
    i32::try_from(if negative { -v } else { v }).ok()
}

fn upstream_name(out: &mut Vec<u8>, u: UpstreamName) {
    match u {
        UpstreamName::Name(n) => text_body(out, n),
        UpstreamName::Unix(path) => {
            out.extend_from_slice(b"unix:");
            text_body(out, path);
        }
        UpstreamName::HostPort(host, port) => {
            text_body(out, host);
            out.push(b':');
            number(out, port.into());
        }
    }
}

fn opt_text(out: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        Some(b) => text(out, b),
        None => out.extend_from_slice(b"null"),
    }
}

/// A vocabulary word or name: ASCII that needs no escape.
#[inline]
fn opt_str(out: &mut Vec<u8>, v: Option<&str>) {
    match v {
        Some(s) => {
            out.push(b'"');
            out.extend_from_slice(s.as_bytes());
            out.push(b'"');
        }
        None => out.extend_from_slice(b"null"),
    }
}

fn opt_number(out: &mut Vec<u8>, v: Option<u64>) {
    match v {
        Some(n) => number(out, n),
        None => out.extend_from_slice(b"null"),
    }
}

#[inline]
fn number(out: &mut Vec<u8>, n: u64) {
    // Most numbers in a record are below 1000 (status, milliseconds, errno, a young
    // connection's number): written with one constant-length copy, no digit buffer.
    if n < 10 {
        out.push(b'0' + n as u8);
        return;
    }
    if n < 100 {
        let pair = n as usize * 2;
        out.extend_from_slice(&[PAIRS[pair], PAIRS[pair + 1]]);
        return;
    }
    if n < 1000 {
        three_digits(out, n);
        return;
    }
    // A pid, a timeout in milliseconds.
    if n < 100_000 {
        let high = n / 1000;
        if high < 10 {
            out.push(b'0' + high as u8);
        } else {
            let pair = high as usize * 2;
            out.extend_from_slice(&[PAIRS[pair], PAIRS[pair + 1]]);
        }
        three_digits(out, n % 1000);
        return;
    }
    long_number(out, n);
}

/// `n` < 1000 as exactly three digits.
#[inline(always)]
fn three_digits(out: &mut Vec<u8>, n: u64) {
    let pair = (n % 100) as usize * 2;
    out.extend_from_slice(&[b'0' + (n / 100) as u8, PAIRS[pair], PAIRS[pair + 1]]);
}

/// Two digits at a time.
const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
    2021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869\
    707172737475767778798081828384858687888990919293949596979899";

#[inline(never)]
fn long_number(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        digits[i] = b'0' + n as u8;
    }
    out.extend_from_slice(&digits[i..]);
}

fn signed(out: &mut Vec<u8>, n: i32) {
    if n < 0 {
        out.push(b'-');
    }
    number(out, u64::from(n.unsigned_abs()));
}

/// NGINX bytes as a quoted JSON string.
fn text(out: &mut Vec<u8>, b: &[u8]) {
    out.push(b'"');
    text_body(out, b);
    out.push(b'"');
}

/// NGINX bytes as the inside of a JSON string: [`lossless_text`], escaped.
fn text_body(out: &mut Vec<u8>, b: &[u8]) {
    // ASCII up to the first byte that needs care, in one pass; the rest (rare) out of
    // line, so that this common path stays a small function.
    let clean = clean_prefix(b, true);
    out.extend_from_slice(&b[..clean]);
    if clean < b.len() {
        text_body_rest(out, &b[clean..]);
    }
}

#[inline(never)]
fn text_body_rest(out: &mut Vec<u8>, rest: &[u8]) {
    for chunk in rest.utf8_chunks() {
        escaped(out, chunk.valid().as_bytes());
        for &x in chunk.invalid() {
            percent(out, x);
        }
    }
}

/// `s` as a quoted JSON string, byte for byte as serde_json writes it: for readers
/// that write many long texts (the analyzer's report lines), where serde_json's
/// byte-at-a-time escaping was a sixth of the analysis.
pub fn json_string(out: &mut Vec<u8>, s: &str) {
    string(out, s.as_bytes());
}

/// A quoted string already known to be text (UTF-8).
fn string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    escaped(out, s);
    out.push(b'"');
}

/// The URI inside `msg`: lossless text with ASCII control characters as `\xNN` (as
/// NGINX's access log escapes them), so the summary stays one line.
fn uri_in_summary(out: &mut Vec<u8>, b: &[u8]) {
    // Plain printable ASCII (nearly every URI) is written as is.
    if clean_prefix(b, true) == b.len() && !b.contains(&0x7f) {
        out.extend_from_slice(b);
        return;
    }
    uri_in_summary_rest(out, b);
}

#[inline(never)]
fn uri_in_summary_rest(out: &mut Vec<u8>, b: &[u8]) {
    for chunk in b.utf8_chunks() {
        let valid = chunk.valid().as_bytes();
        let mut start = 0;
        for (i, &c) in valid.iter().enumerate() {
            if c < 0x20 || c == 0x7f {
                escaped(out, &valid[start..i]);
                // `\xNN`, its backslash escaped for JSON.
                out.extend_from_slice(b"\\\\x");
                out.push(HEX_UPPER[usize::from(c >> 4)]);
                out.push(HEX_UPPER[usize::from(c & 0xf)]);
                start = i + 1;
            }
        }
        escaped(out, &valid[start..]);
        for &x in chunk.invalid() {
            percent(out, x);
        }
    }
}

/// Lossless text cut to at most `max` bytes of text on a character boundary (as
/// `truncate_at_char` on [`lossless_text`]); returns whether it cut.
fn capped_text(out: &mut Vec<u8>, b: &[u8], max: usize) -> bool {
    let mut left = max;
    for chunk in b.utf8_chunks() {
        let valid = chunk.valid();
        if valid.len() > left {
            let mut end = left;
            while !valid.is_char_boundary(end) {
                end -= 1;
            }
            escaped(out, &valid.as_bytes()[..end]);
            return true;
        }
        escaped(out, valid.as_bytes());
        left -= valid.len();
        for &x in chunk.invalid() {
            if left < 3 {
                // `%XX` is ASCII: the text may end inside it.
                let mut p = Vec::with_capacity(3);
                percent(&mut p, x);
                out.extend_from_slice(&p[..left]);
                return true;
            }
            percent(out, x);
            left -= 3;
        }
    }
    false
}

const ONES: u64 = u64::MAX / 255;
const HIGH: u64 = ONES * 0x80;

/// Whether any of the eight bytes in `w` is below 0x20, `"`, `\\` or has a bit of
/// `high` set. Exact for the word as a whole: the "has a byte below n" and "has a zero
/// byte" tests have no false positives when only asked whether any byte matches.
fn word_needs_escape(w: u64, high: u64) -> bool {
    let zero = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let below_space = w.wrapping_sub(ONES * 0x20) & !w & HIGH;
    let quote = zero(w ^ (ONES * u64::from(b'"')));
    let backslash = zero(w ^ (ONES * u64::from(b'\\')));
    (below_space | quote | backslash | (w & high)) != 0
}

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";
const HEX_LOWER: &[u8; 16] = b"0123456789abcdef";

fn percent(out: &mut Vec<u8>, b: u8) {
    out.extend_from_slice(&[
        b'%',
        HEX_UPPER[usize::from(b >> 4)],
        HEX_UPPER[usize::from(b & 0xf)],
    ]);
}

/// Valid UTF-8 escaped as serde_json escapes strings: `"`, `\\` and control bytes
/// below 0x20 (`\\n`, `\\r`, `\\t`, `\\b`, `\\f`, else `\\u00xx`); everything else as is.
fn escaped(out: &mut Vec<u8>, mut s: &[u8]) {
    loop {
        let clean = clean_prefix(s, false);
        out.extend_from_slice(&s[..clean]);
        let Some(&c) = s.get(clean) else {
            return;
        };
        escape_byte(out, c);
        s = &s[clean + 1..];
    }
}

/// One byte that needs an escape (see [`escaped`]).
#[inline(never)]
fn escape_byte(out: &mut Vec<u8>, c: u8) {
    match c {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0c => out.extend_from_slice(b"\\f"),
        _ => out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX_LOWER[usize::from(c >> 4)],
            HEX_LOWER[usize::from(c & 0xf)],
        ]),
    }
}

/// How many leading bytes of `s` need no escape: none below 0x20, `"` or `\\` (and,
/// with `ascii`, none from 0x80: the caller checks those are UTF-8). Most text needs no
/// escape, so it is read eight bytes at a time.
fn clean_prefix(s: &[u8], ascii: bool) -> usize {
    let high = if ascii { HIGH } else { 0 };
    let mut i = 0;
    for word in s.chunks_exact(8) {
        let mut w = [0u8; 8];
        w.copy_from_slice(word);
        if word_needs_escape(u64::from_le_bytes(w), high) {
            break;
        }
        i += 8;
    }
    // Fewer than eight bytes left: read them as one more word, overlapping the clean
    // one before, when the text is long enough (it usually ends clean).
    if i < s.len() && s.len() - i < 8 && s.len() >= 8 {
        let mut w = [0u8; 8];
        w.copy_from_slice(&s[s.len() - 8..]);
        if !word_needs_escape(u64::from_le_bytes(w), high) {
            return s.len();
        }
    }
    while let Some(&c) = s.get(i) {
        if c < 0x20 || c == b'"' || c == b'\\' || (ascii && c >= 0x80) {
            break;
        }
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused<'a>() -> AttemptLine<'a> {
        AttemptLine {
            peer: Some(b"unix:/run/php/php8.2-fpm.sock"),
            phase: Some(Phase::Connect),
            errno: Some(2),
            error: Some(b"No such file or directory"),
            event: Some(Event::ConnectFailed),
            message: Some(
                b"connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory)",
            ),
            level: Some(Level::Crit),
            status: Some(502),
            connect_ms: None,
            header_ms: None,
            response_ms: Some(0),
        }
    }

    fn sample<'a>(attempts: &'a [AttemptLine<'a>]) -> RecordLine<'a> {
        RecordLine {
            time: b"2026-04-02T14:23:17.291+00:00",
            pid: 1234,
            conn: 5678,
            request_id: Some(b"0123456789abcdef0123456789abcdef"),
            status: 502,
            origin: Origin::Nginx,
            recovered: false,
            client: b"127.0.0.1",
            server: b"example.com",
            host: Some(b"example.com"),
            method: b"GET",
            uri: b"/a\"b\nc\xff?x=\x01",
            protocol: b"HTTP/1.1",
            request_time_ms: 3,
            upstream: Some(UpstreamName::Unix(b"/run/php/php8.2-fpm.sock")),
            attempts,
            timeouts_ms: Some(Timeouts {
                connect: 60000,
                send: 60000,
                read: 60000,
            }),
            fastcgi_stderr: None,
        }
    }

    fn written(r: &RecordLine) -> String {
        let mut out = Vec::new();
        r.write(&mut out);
        String::from_utf8(out).expect("the line is UTF-8")
    }

    fn reference(r: &RecordLine) -> String {
        let mut out = Vec::new();
        r.to_record().write_line(&mut out);
        String::from_utf8(out).expect("the line is UTF-8")
    }

    /// The serde writer's line for the same record (record.rs `SAMPLE_LINE`).
    #[test]
    fn writes_what_serde_writes() {
        let a = [refused()];
        let r = sample(&a);
        assert_eq!(written(&r), reference(&r));
        assert!(written(&r).starts_with(r#"{"schema":"gatelog.v1","time":"2026-04-02T14:23:17.291+00:00","level":"error","msg":"502 GET /a\"b\\x0Ac%FF?x=\\x01: connect() to unix:/run/php/php8.2-fpm.sock failed (ENOENT, connect)","#));
    }

    /// Writer -> reader: every field of the record comes back.
    #[test]
    fn round_trips_every_field() {
        let mut timed_out = refused();
        timed_out.peer = Some(b"10.0.0.2:9000");
        timed_out.phase = Some(Phase::Header);
        timed_out.errno = Some(110);
        timed_out.error = Some(b"Connection timed out");
        timed_out.event = Some(Event::TimedOut);
        timed_out.message = Some(b"upstream timed out (110: Connection timed out)");
        timed_out.level = Some(Level::Error);
        timed_out.status = Some(504);
        timed_out.connect_ms = Some(1);
        timed_out.header_ms = Some(2);
        timed_out.response_ms = Some(60001);
        let good = AttemptLine {
            peer: Some(b"10.0.0.3:9000"),
            status: Some(200),
            connect_ms: Some(0),
            header_ms: Some(4),
            response_ms: Some(5),
            ..AttemptLine::default()
        };
        let a = [refused(), timed_out, good];
        let mut r = sample(&a);
        r.status = 200;
        r.recovered = true;
        r.origin = Origin::Upstream;
        r.upstream = Some(UpstreamName::HostPort(b"10.0.0.2", 9000));
        r.fastcgi_stderr = Some(StderrLine {
            text: b"PHP message: PHP Fatal error:  \"x\"\n\xc3",
            truncated: true,
        });
        let line = written(&r);
        assert_eq!(line, reference(&r));
        let back = Record::from_json_line(line.trim_end()).expect("a gatelog.v1 record");
        assert_eq!(back, r.to_record());
        assert_eq!(back.schema, SCHEMA);
        assert_eq!(back.time, "2026-04-02T14:23:17.291+00:00");
        assert_eq!(back.level, Some(Level::Warn));
        assert_eq!(
            back.msg.as_deref(),
            Some("200 GET /a\"b\\x0Ac%FF?x=\\x01: recovered after upstream timed out (ETIMEDOUT, header)")
        );
        assert_eq!((back.pid, back.conn), (Some(1234), Some(5678)));
        assert_eq!(
            back.request_id.as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        assert_eq!(
            (back.status, back.origin, back.recovered),
            (200, Origin::Upstream, true)
        );
        assert_eq!(
            (back.client.as_str(), back.server.as_str()),
            ("127.0.0.1", "example.com")
        );
        assert_eq!(back.host.as_deref(), Some("example.com"));
        assert_eq!(
            (back.method.as_str(), back.uri.as_str()),
            ("GET", "/a\"b\nc%FF?x=\u{1}")
        );
        assert_eq!(back.protocol, "HTTP/1.1");
        assert_eq!(back.request_time_ms, Some(3));
        assert_eq!(back.upstream.as_deref(), Some("10.0.0.2:9000"));
        assert_eq!(back.upstream_protocol, None);
        assert_eq!(
            (back.errno_name.as_deref(), back.phase),
            (Some("ETIMEDOUT"), Some(Phase::Header))
        );
        assert_eq!(back.attempts.len(), 3);
        let t = &back.attempts[1];
        assert_eq!(t.peer.as_deref(), Some("10.0.0.2:9000"));
        assert_eq!(
            (t.phase, t.errno, t.errno_name.as_deref()),
            (Some(Phase::Header), Some(110), Some("ETIMEDOUT"))
        );
        assert_eq!(t.error.as_deref(), Some("Connection timed out"));
        assert_eq!(
            (t.event, t.level, t.status),
            (Some(Event::TimedOut), Some(Level::Error), Some(504))
        );
        assert_eq!(
            t.message.as_deref(),
            Some("upstream timed out (110: Connection timed out)")
        );
        assert_eq!(
            (t.connect_ms, t.header_ms, t.response_ms),
            (Some(1), Some(2), Some(60001))
        );
        let g = &back.attempts[2];
        assert_eq!(
            (g.event, g.phase, g.errno, g.message.as_deref()),
            (None, None, None, None)
        );
        assert_eq!(
            back.timeouts_ms,
            Some(Timeouts {
                connect: 60000,
                send: 60000,
                read: 60000
            })
        );
        let s = back.fastcgi_stderr.expect("stderr");
        assert_eq!(
            (s.text.as_str(), s.truncated),
            ("PHP message: PHP Fatal error:  \"x\"\n%C3", true)
        );
    }

    #[test]
    fn absent_fields_and_upstream_answers() {
        let own = AttemptLine {
            peer: Some(b"127.0.0.1:9001"),
            event: Some(Event::UpstreamStatus),
            status: Some(502),
            ..AttemptLine::default()
        };
        let no_status = AttemptLine {
            status: None,
            ..own
        };
        let by_slug = AttemptLine {
            event: Some(Event::Error),
            errno: Some(99_999),
            phase: Some(Phase::Body),
            ..AttemptLine::default()
        };
        let bare_errno = AttemptLine {
            phase: None,
            ..by_slug
        };
        let phase_only = AttemptLine {
            errno: None,
            ..by_slug
        };
        let negative = AttemptLine {
            errno: Some(-3),
            ..by_slug
        };
        for attempts in [
            &[][..],
            &[own][..],
            &[no_status][..],
            &[by_slug][..],
            &[bare_errno][..],
            &[phase_only][..],
            &[negative][..],
            &[own, by_slug][..],
        ] {
            let mut r = sample(attempts);
            r.request_id = None;
            r.host = None;
            r.upstream = None;
            r.timeouts_ms = None;
            r.origin = Origin::Upstream;
            assert_eq!(written(&r), reference(&r), "{attempts:?}");
            r.upstream = Some(UpstreamName::Name(b"php \"pool\""));
            assert_eq!(written(&r), reference(&r), "{attempts:?}");
        }
    }

    /// A deterministic stream of awkward bytes: quotes, backslashes, every control
    /// byte, DEL, multi-byte characters, cut ones and stray continuation bytes.
    fn awkward(seed: &mut u64, len: usize) -> Vec<u8> {
        const PIECES: &[&[u8]] = &[
            b"a",
            b"/",
            b"\"",
            b"\\",
            b"\n",
            b"\r",
            b"\t",
            b"\x08",
            b"\x0c",
            b"\x00",
            b"\x1f",
            b"\x7f",
            b"\xc3\xa9",
            b"\xe2\x82\xac",
            b"\xf0\x9f\x98\x80",
            b"\xc3",
            b"\xe2\x82",
            b"\x80",
            b"\xff",
            b"%",
            b" (",
            b"111",
            b": ",
            b")",
            b"x",
        ];
        let mut out = Vec::new();
        for _ in 0..len {
            *seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            out.extend_from_slice(PIECES[(*seed >> 33) as usize % PIECES.len()]);
        }
        out
    }

    #[test]
    fn awkward_bytes_write_as_serde_writes_them() {
        let mut seed = 7;
        for round in 0..400 {
            let uri = awkward(&mut seed, round % 40);
            let method = awkward(&mut seed, 3);
            let peer = awkward(&mut seed, 5);
            let mut message = awkward(&mut seed, round % 30);
            if round % 3 == 0 {
                message.extend_from_slice(b" (111: Connection refused)");
            }
            let error = awkward(&mut seed, 4);
            let stderr = awkward(&mut seed, round * 7 % 1700);
            let a = [AttemptLine {
                peer: Some(&peer),
                phase: Some(Phase::Send),
                errno: Some(111),
                error: Some(&error),
                event: Some(Event::SendFailed),
                message: Some(&message),
                level: Some(Level::Error),
                status: Some(502),
                connect_ms: Some(round as u64),
                header_ms: None,
                response_ms: Some(u64::MAX),
            }];
            let mut r = sample(&a);
            r.uri = &uri;
            r.method = &method;
            r.client = &peer;
            r.upstream = Some(UpstreamName::Unix(&error));
            r.fastcgi_stderr = Some(StderrLine {
                text: &stderr,
                truncated: round % 5 == 0,
            });
            let line = written(&r);
            assert_eq!(line, reference(&r), "round {round}");
            assert_eq!(line.matches('\n').count(), 1);
            assert!(Record::from_json_line(line.trim_end()).is_some());
        }
    }

    #[test]
    fn every_byte_is_escaped_as_serde_escapes_it_at_every_offset() {
        for b in 0u8..0x80 {
            for (len, at) in (1..25).flat_map(|len| (0..len).map(move |at| (len, at))) {
                let mut s = vec![b'a'; len];
                s[at] = b;
                let mut out = Vec::new();
                escaped(&mut out, &s);
                let text = std::str::from_utf8(&s).expect("ASCII");
                let want = serde_json::to_string(text).expect("a string");
                assert_eq!(
                    out,
                    want.as_bytes()[1..want.len() - 1],
                    "byte {b:#x} at {at}"
                );
            }
        }
    }

    /// Long clean runs that end (or break) on each kind of byte the writer treats
    /// specially: the word-at-a-time scan must stop exactly there, in every field kind
    /// (plain text, the URI in `msg`, a message without its errno, the stderr text).
    #[test]
    fn clean_runs_ending_in_every_escape_class() {
        const SPECIALS: &[&[u8]] = &[
            b"\"",
            b"\\",
            b"\n",
            b"\r",
            b"\t",
            b"\x08",
            b"\x0c",
            b"\x00",
            b"\x01",
            b"\x1f",
            b" ",
            b"\x7f",
            b"\x80",
            b"\xff",
            b"\xc3",
            b"\xc3\xa9",
            b"\xe2\x82\xac",
            b"\xf0\x9f\x98\x80",
        ];
        for len in 0..40 {
            for special in SPECIALS {
                for at_end in [true, false] {
                    let mut text = b"/abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH"[..len].to_vec();
                    text.extend_from_slice(special);
                    if !at_end {
                        text.extend_from_slice(b"tail/of/the/text");
                    }
                    let a = [AttemptLine {
                        message: Some(&text),
                        error: Some(&text),
                        ..refused()
                    }];
                    let mut r = sample(&a);
                    r.uri = &text;
                    r.server = &text;
                    r.fastcgi_stderr = Some(StderrLine {
                        text: &text,
                        truncated: false,
                    });
                    let line = written(&r);
                    assert_eq!(line, reference(&r), "{text:?}");
                    let back = Record::from_json_line(line.trim_end()).expect("a record");
                    assert_eq!(back.server, lossless_text(&text), "{text:?}");
                }
            }
        }
    }

    #[test]
    fn errno_digits_parse_as_str_parse_does() {
        for s in [
            "",
            "-",
            "+",
            "0",
            "2",
            "02",
            "+2",
            "-2",
            "--2",
            "+-2",
            "2 ",
            " 2",
            "1a",
            "111",
            "2147483647",
            "2147483648",
            "-2147483648",
            "-2147483649",
            "00000000000000000002",
            "99999999999999999999",
            "\u{e9}",
            "\u{ff}1",
        ] {
            assert_eq!(parse_i32(s.as_bytes()), s.parse::<i32>().ok(), "{s:?}");
        }
        assert_eq!(parse_i32(b"1\xff"), None);
    }

    #[test]
    fn numbers_as_serde_writes_them() {
        for n in [
            0,
            1,
            9,
            10,
            11,
            99,
            100,
            101,
            999,
            1000,
            1001,
            9999,
            10000,
            60000,
            65535,
            99_999,
            100_000,
            100_001,
            1 << 40,
            u64::MAX,
        ]
        .into_iter()
        .chain((0..2000).map(|i| i * 37))
        {
            let mut out = Vec::new();
            number(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
        for n in [i32::MIN, -111, -1, 0, 7, i32::MAX] {
            let mut out = Vec::new();
            signed(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }

    #[test]
    fn stderr_is_cut_at_the_limit_on_a_character() {
        let mut long = vec![b'a'; MAX_STDERR - 1];
        long.extend_from_slice("é".as_bytes());
        let mut r = sample(&[]);
        r.fastcgi_stderr = Some(StderrLine {
            text: &long,
            truncated: false,
        });
        let back = Record::from_json_line(written(&r).trim_end()).expect("record");
        let s = back.fastcgi_stderr.expect("stderr");
        assert_eq!((s.text.len(), s.truncated), (MAX_STDERR - 1, true));
        // Invalid bytes count as their three-byte escape; the cut may fall inside one.
        let invalid = vec![0xffu8; 2000];
        r.fastcgi_stderr = Some(StderrLine {
            text: &invalid,
            truncated: false,
        });
        let line = written(&r);
        assert_eq!(line, reference(&r));
        let s = Record::from_json_line(line.trim_end())
            .and_then(|b| b.fastcgi_stderr)
            .expect("stderr");
        assert_eq!((s.text.len(), s.truncated), (MAX_STDERR, true));
        assert!(
            s.text.ends_with("%FF%"),
            "4096 = 1365 escapes and one byte of the next"
        );
    }
}
