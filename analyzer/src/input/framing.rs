//! Unwrapping one line from whatever carried it to us. The same NGINX, PHP-FPM or
//! kernel line arrives bare in its own file, behind a `docker logs -t` stamp, a
//! `docker compose logs` prefix (with or without colours), a `kubectl logs --prefix
//! --timestamps` prefix, a syslog or journal envelope (RFC 3164, RFC 5424, rsyslog,
//! `journalctl -o short*`), or inside a JSON object (`journalctl -o json`, docker's
//! json-file driver). Each line is unwrapped on its own — one stream may mix
//! framings — into the outer time, the source the framing names (service, pod,
//! syslog identifier and pid) and the inner text, which the router then reads by
//! its content. What a framing means for a line's *kind* is the router's business.

use std::borrow::Cow;

use serde::Deserialize;

use crate::parse::syslog::{self, Envelope, SysTime};
use crate::parse::{kernel, nginx};
use crate::time::{self, EpochMs};

/// Layers within layers: compose `-t` is a prefix around a stamp around the line.
const MAX_LAYERS: usize = 4;

/// One wrapping found around a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// Docker's json-file driver: `{"log":"...\n","stream":"stderr","time":"..."}`.
    DockerJson,
    /// `journalctl -o json`.
    JournalJson,
    /// `web-1  | ` from `docker compose logs` (compose v1: `web_1  | `).
    Compose,
    /// `[pod/name/container] ` from `kubectl logs --prefix`.
    KubectlPrefix,
    /// An RFC 3339 stamp and a space: `docker logs -t`, compose `-t`, `kubectl logs
    /// --timestamps`.
    Timestamp,
    /// A syslog or journal text envelope naming the program (RFC 3164, RFC 5424,
    /// rsyslog's ISO format, `journalctl -o short*`).
    Syslog,
    /// Indentation or `>` quote markers added when a log was pasted into a ticket, a
    /// forum post (four-space code blocks) or a quoted e-mail.
    Pasted,
}

impl Layer {
    pub const ALL: [Layer; 7] = [
        Layer::DockerJson,
        Layer::JournalJson,
        Layer::Compose,
        Layer::KubectlPrefix,
        Layer::Timestamp,
        Layer::Syslog,
        Layer::Pasted,
    ];

    /// The name used in reports (`inputs[].framings`).
    pub fn slug(self) -> &'static str {
        match self {
            Layer::DockerJson => "docker-json",
            Layer::JournalJson => "journal-json",
            Layer::Compose => "compose-prefix",
            Layer::KubectlPrefix => "kubectl-prefix",
            Layer::Timestamp => "rfc3339-timestamp",
            Layer::Syslog => "syslog",
            Layer::Pasted => "pasted",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// The set of layers around one line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Layers(u8);

impl Layers {
    pub fn insert(&mut self, l: Layer) {
        self.0 |= 1 << l.index();
    }

    pub fn contains(self, l: Layer) -> bool {
        self.0 & (1 << l.index()) != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Layer> {
        Layer::ALL.into_iter().filter(move |l| self.contains(*l))
    }
}

/// One line, unwrapped.
#[derive(Debug, Clone, PartialEq)]
pub struct Framed<'a> {
    pub layers: Layers,
    /// The time a layer gave (the stamp of docker/kubectl, the syslog header, the
    /// journal's realtime), when any did.
    pub time: Option<SysTime>,
    /// `time` is an exact instant written by the machinery (docker, kubelet,
    /// journald): it beats the inner line's own zone-less, whole-second time.
    pub exact: bool,
    /// The compose service (`web-1`) or kubectl `pod/name/container`.
    pub tag: Option<&'a str>,
    /// The syslog / journal identifier (`php-fpm`, `kernel`, `systemd`).
    pub ident: Option<Cow<'a, str>>,
    pub pid: Option<u32>,
    pub inner: Cow<'a, str>,
}

impl<'a> Framed<'a> {
    fn plain(line: &'a str) -> Framed<'a> {
        Framed {
            layers: Layers::default(),
            time: None,
            exact: false,
            tag: None,
            ident: None,
            pid: None,
            inner: Cow::Borrowed(line),
        }
    }

    /// Whose line this is, as far as the framing says: the compose service or pod,
    /// else the syslog identifier; empty for a bare line. Only lines of one source
    /// continue each other.
    pub fn source(&self) -> &str {
        self.tag.or(self.ident.as_deref()).unwrap_or("")
    }

    /// The framing's text before the inner line, when the inner line is the end of
    /// `line` (every text framing; not the JSON ones).
    pub fn prefix_of<'l>(&self, line: &'l str) -> &'l str {
        if self.layers.is_empty() {
            return "";
        }
        // Where the inner text sits in the line: from the pointers, not by comparing
        // the bytes again (this runs for every entry of a large log).
        match &self.inner {
            Cow::Borrowed(inner) => {
                let start = (inner.as_ptr() as usize).wrapping_sub(line.as_ptr() as usize);
                if start <= line.len() && start + inner.len() == line.len() {
                    line.get(..start).unwrap_or("")
                } else {
                    ""
                }
            }
            Cow::Owned(_) => "",
        }
    }

    fn set_time(&mut self, t: SysTime, exact: bool) {
        // The outermost exact stamp wins; a syslog header only fills a gap.
        if self.exact {
            return;
        }
        if exact || self.time.is_none() {
            self.time = Some(t);
            self.exact = exact;
        }
    }
}

/// Removes ANSI colour and cursor sequences (`\x1b[36m`, `\x1b[0m`, `\x1b[2K`):
/// `docker compose logs` colours its prefixes on a terminal, and pasted logs keep
/// them.
pub fn strip_ansi(line: &str) -> Cow<'_, str> {
    // Asked of every line: memchr's SIMD scan, not the slice's byte loop.
    if memchr::memchr(0x1b, line.as_bytes()).is_none() {
        return Cow::Borrowed(line);
    }
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\x1b' {
            out.push(c);
            continue;
        }
        match chars.peek() {
            // CSI: parameters and intermediates up to a final byte in @..~.
            Some('[') => {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            // A two-character escape (`ESC c`, `ESC (B` keeps its second char out).
            Some(_) => {
                chars.next();
            }
            None => {}
        }
    }
    Cow::Owned(out)
}

/// Unwraps lines; holds the year reference and zone for envelopes without them.
#[derive(Debug, Clone)]
pub struct Unwrapper {
    envelope: Envelope,
}

impl Unwrapper {
    pub fn new(envelope: Envelope) -> Unwrapper {
        Unwrapper { envelope }
    }

    /// Unwraps every framing around `line` (colours already stripped).
    pub fn unwrap<'a>(&mut self, line: &'a str) -> Framed<'a> {
        if line.starts_with('{') {
            if let Some(f) = json_framing(line) {
                return f;
            }
            return Framed::plain(line);
        }
        let mut f = Framed::plain(line);
        let mut rest = line;
        if let Some(after) = paste_marks(rest) {
            f.layers.insert(Layer::Pasted);
            rest = after;
        } else if matches!(rest.as_bytes().first(), Some(b' ' | b'\t' | b'>')) {
            // A pasted syslog or journal line (`    Mar 05 10:30:00 web01 kernel: ...`).
            let trimmed = rest.trim_start_matches([' ', '\t', '>']);
            if self.envelope.parse(trimmed).is_some() {
                f.layers.insert(Layer::Pasted);
                rest = trimmed;
            }
        }
        for _ in 0..MAX_LAYERS {
            if bare_content(rest) {
                break;
            }
            if let Some((tag, after)) = compose_prefix(rest) {
                f.layers.insert(Layer::Compose);
                f.tag.get_or_insert(tag);
                rest = after;
                continue;
            }
            if let Some((tag, after)) = kubectl_prefix(rest) {
                f.layers.insert(Layer::KubectlPrefix);
                f.tag.get_or_insert(tag);
                rest = after;
                continue;
            }
            if let Some((at, utc, after)) = rfc3339_prefix(rest) {
                // docker and the kubelet write UTC (`Z`); an offset is rsyslog's or
                // journalctl's short-iso, whose envelope names the program.
                if !utc {
                    if let Some(l) = self.envelope.parse(rest) {
                        f.layers.insert(Layer::Syslog);
                        f.set_time(l.time, false);
                        f.ident = Some(Cow::Borrowed(l.ident));
                        f.pid = l.pid;
                        rest = l.message;
                        break;
                    }
                }
                f.layers.insert(Layer::Timestamp);
                f.set_time(
                    SysTime {
                        wall: Some(at),
                        boot_secs: None,
                    },
                    true,
                );
                // What a stamp or an envelope carries is the program's own text.
                rest = after;
                break;
            }
            if let Some(l) = self.envelope.parse(rest) {
                f.layers.insert(Layer::Syslog);
                f.set_time(l.time, false);
                f.ident = Some(Cow::Borrowed(l.ident));
                f.pid = l.pid;
                rest = l.message;
                break;
            }
            break;
        }
        f.inner = Cow::Borrowed(rest);
        f
    }
}

/// Lines that start the way NGINX, PHP-FPM or dmesg write them: no framing to look
/// for (the common case, kept cheap).
fn bare_content(s: &str) -> bool {
    let b = s.as_bytes();
    if nginx::is_entry_start(b) {
        return true;
    }
    if b.first() == Some(&b'[') {
        // `[02-Apr-2026 14:23:17] ` (FPM), `[  321.572384] ` (dmesg), `[Thu Apr  2 ...`
        // (dmesg -T).
        return time::parse_fpm_time(&b[1..]).is_some()
            || kernel::has_boot_stamp(s)
            || time::parse_ctime(&b[1..]).is_some();
    }
    false
}

/// What follows a paste's indentation or quote markers (`    `, `\t`, `> `, `>> `),
/// when it is a line some framing or parser knows; a line merely indented (a PHP
/// stack trace continuing a FastCGI stderr entry) is left as it is.
fn paste_marks(s: &str) -> Option<&str> {
    let first = *s.as_bytes().first()?;
    if !matches!(first, b' ' | b'\t' | b'>') {
        return None;
    }
    let rest = s.trim_start_matches([' ', '\t', '>']);
    let known = bare_content(rest)
        || rfc3339_prefix(rest).is_some()
        || compose_prefix(rest).is_some()
        || kubectl_prefix(rest).is_some()
        // NGINX lines pasted without their date: `[error] 12#12: *3 ...`, or the bare
        // message with NGINX's context.
        || nginx::parse_undated_head(rest, false).is_some()
        || (rest.contains(" while ") && rest.contains("upstream, client: "));
    known.then_some(rest)
}

/// `name  | rest` (padded to the longest service name; `|` alone for an empty line).
fn compose_prefix(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    let name_end = memchr::memchr(b' ', b)?;
    if name_end == 0 || name_end > 128 || !b[0].is_ascii_alphanumeric() {
        return None;
    }
    if !b[..name_end]
        .iter()
        .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
    {
        return None;
    }
    let mut i = name_end;
    while b.get(i) == Some(&b' ') {
        i += 1;
    }
    if b.get(i) != Some(&b'|') {
        return None;
    }
    let rest = match b.get(i + 1) {
        None => "",
        Some(b' ') => &s[i + 2..],
        Some(_) => return None,
    };
    Some((&s[..name_end], rest))
}

/// `[pod/name/container] rest`.
fn kubectl_prefix(s: &str) -> Option<(&str, &str)> {
    let inner = s.strip_prefix('[')?;
    let close = memchr::memchr(b']', inner.as_bytes())?;
    let tag = &inner[..close];
    if close > 300
        || !tag.starts_with(|c: char| c.is_ascii_alphabetic())
        || tag.contains(' ')
        || tag.bytes().filter(|&c| c == b'/').count() != 2
    {
        return None;
    }
    let after = &inner[close + 1..];
    let rest = if after.is_empty() {
        after
    } else {
        after.strip_prefix(' ')?
    };
    Some((tag, rest))
}

/// An RFC 3339 stamp and a space: (instant, written in UTC, rest). dmesg's own ISO
/// format (`2026-04-02T14:23:17,291234+00:00`, a comma) is the kernel's content,
/// not a framing.
fn rfc3339_prefix(s: &str) -> Option<(EpochMs, bool, &str)> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b.get(19) == Some(&b',') {
        return None;
    }
    let (at, n) = time::parse_iso_with_offset(b)?;
    let rest = &s[n..];
    let rest = if rest.is_empty() {
        rest
    } else {
        rest.strip_prefix(' ')?
    };
    Some((at, b[n - 1] == b'Z', rest))
}

/// One line of docker's json-file log (`/var/lib/docker/containers/*/*-json.log`).
#[derive(Deserialize)]
struct DockerJsonLine {
    log: String,
    time: Option<String>,
}

/// The JSON framings: docker's json-file lines and `journalctl -o json` records.
/// Other JSON (gatelog records, JSON access logs) is content.
fn json_framing(line: &str) -> Option<Framed<'_>> {
    if line.starts_with("{\"log\":") {
        let d: DockerJsonLine = serde_json::from_str(line).ok()?;
        let mut f = Framed::plain(line);
        f.layers.insert(Layer::DockerJson);
        if let Some((at, _)) = d
            .time
            .as_deref()
            .and_then(|t| time::parse_iso_with_offset(t.as_bytes()))
        {
            f.set_time(
                SysTime {
                    wall: Some(at),
                    boot_secs: None,
                },
                true,
            );
        }
        let text = d.log.strip_suffix('\n').unwrap_or(&d.log);
        let text = text.strip_suffix('\r').unwrap_or(text);
        f.inner = Cow::Owned(text.to_string());
        return Some(f);
    }
    if !(line.contains("\"__REALTIME_TIMESTAMP\"") || line.contains("\"__CURSOR\"")) {
        return None;
    }
    let j = syslog::parse_journal_json(line)?;
    let mut f = Framed::plain(line);
    f.layers.insert(Layer::JournalJson);
    f.set_time(j.time, j.time.wall.is_some());
    f.ident = Some(Cow::Owned(j.ident));
    f.pid = j.pid;
    f.inner = Cow::Owned(j.message);
    Some(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{LocalClock, Zone};

    /// 2024-03-05T10:15:42Z
    const T: i64 = 1_709_633_742_000;

    fn unwrap(line: &str) -> Framed<'_> {
        let env = Envelope::new(LocalClock::new(&Zone::utc()), (2024, 3));
        Unwrapper::new(env).unwrap(line)
    }

    fn layers(f: &Framed) -> Vec<&'static str> {
        f.layers.iter().map(Layer::slug).collect()
    }

    const NGINX: &str = "2024/03/05 10:15:42 [error] 29#29: *1 connect() to unix:/run/php/php-fpm.sock failed (2: No such file or directory) while connecting to upstream, client: 172.18.0.1, server: localhost, request: \"GET / HTTP/1.1\", upstream: \"fastcgi://unix:/run/php/php-fpm.sock:\", host: \"localhost:8080\"";

    #[test]
    fn plain_lines_stay_plain() {
        for line in [
            NGINX,
            "[05-Mar-2024 10:15:42] WARNING: [pool www] server reached pm.max_children setting (5), consider raising it",
            "[  321.572384] Out of memory: Killed process 23114 (php-fpm8.2) total-vm:1024kB",
            "NOTICE: PHP message: PHP Fatal error:  Allowed memory size of 134217728 bytes exhausted",
            "172.18.0.1 - - [05/Mar/2024:10:15:42 +0000] \"GET / HTTP/1.1\" 502 157 \"-\" \"curl/8.5.0\"",
            "{\"schema\":\"gatelog.v1\",\"time\":\"2024-03-05T10:15:42.123+00:00\"}",
            "[EXT4-fs (sda1)] nothing",
            "",
        ] {
            let f = unwrap(line);
            assert!(f.layers.is_empty(), "{line}: {:?}", layers(&f));
            assert_eq!(f.inner, line);
            assert_eq!(f.time, None);
        }
    }

    #[test]
    fn docker_logs_timestamps() {
        // `docker logs -t`: RFC3339NanoFixed, always nine digits, UTC.
        let line = format!("2024-03-05T10:15:42.123456789Z {NGINX}");
        let f = unwrap(&line);
        assert_eq!(layers(&f), ["rfc3339-timestamp"]);
        assert_eq!(f.inner, NGINX);
        assert_eq!(f.time.and_then(|t| t.wall), Some(EpochMs(T + 123)));
        assert!(f.exact);
        assert_eq!(f.prefix_of(&line), "2024-03-05T10:15:42.123456789Z ");
        // FPM's undecorated output under the same stamp.
        let f = unwrap("2024-03-05T10:15:42.000000001Z NOTICE: PHP message: PHP Warning:  x");
        assert_eq!(f.inner, "NOTICE: PHP message: PHP Warning:  x");
        // kubectl logs --timestamps: RFC3339Nano, trailing zeros trimmed.
        let f = unwrap(
            "2024-03-05T10:15:42.1234Z [05-Mar-2024 10:15:42] NOTICE: ready to handle connections",
        );
        assert_eq!(f.time.and_then(|t| t.wall), Some(EpochMs(T + 123)));
        assert_eq!(
            f.inner,
            "[05-Mar-2024 10:15:42] NOTICE: ready to handle connections"
        );
        // An empty line docker stamped.
        let f = unwrap("2024-03-05T10:15:42.123456789Z ");
        assert_eq!(f.inner, "");
        assert!(f.exact);
    }

    #[test]
    fn dmesg_iso_is_content_not_framing() {
        let line = "2024-03-05T10:15:42,123456+00:00 Out of memory: Killed process 1 (php-fpm8.2)";
        let f = unwrap(line);
        assert!(f.layers.is_empty());
        assert_eq!(f.inner, line);
    }

    #[test]
    fn compose_prefixes() {
        // compose v2: `%-Ns | `, colours around the whole prefix on a terminal.
        for (line, tag) in [
            (format!("web-1      | {NGINX}"), "web-1"),
            (format!("web_1  | {NGINX}"), "web_1"),
            (format!("\x1b[36mphp-fpm-1  | \x1b[0m{NGINX}"), "php-fpm-1"),
            (format!("\x1b[36mweb-1  |\x1b[0m {NGINX}"), "web-1"),
        ] {
            let clean = strip_ansi(&line);
            let f = unwrap(&clean);
            assert_eq!(layers(&f), ["compose-prefix"], "{line:?}");
            assert_eq!(f.tag, Some(tag));
            assert_eq!(f.inner, NGINX);
            assert_eq!(f.time, None);
        }
        // compose logs -t: prefix, then the stamp.
        let line = format!("web-1  | 2024-03-05T10:15:42.123456789Z {NGINX}");
        let f = unwrap(&line);
        assert_eq!(layers(&f), ["compose-prefix", "rfc3339-timestamp"]);
        assert_eq!(f.inner, NGINX);
        assert_eq!(f.time.and_then(|t| t.wall), Some(EpochMs(T + 123)));
        // An empty line of a service.
        assert_eq!(unwrap("php-1  |").inner, "");
        // Not a prefix.
        assert!(unwrap("a|b").layers.is_empty());
        assert!(unwrap("hello world | x").layers.is_empty());
    }

    #[test]
    fn kubectl_prefix_and_timestamps() {
        let line =
            format!("[pod/nginx-7c5b4f6c8-x2x9q/nginx] 2024-03-05T10:15:42.123456789Z {NGINX}");
        let f = unwrap(&line);
        assert_eq!(layers(&f), ["kubectl-prefix", "rfc3339-timestamp"]);
        assert_eq!(f.tag, Some("pod/nginx-7c5b4f6c8-x2x9q/nginx"));
        assert_eq!(f.inner, NGINX);
        assert!(f.exact);
    }

    #[test]
    fn syslog_envelopes() {
        // FPM with `error_log = syslog` (zlog.c: `[LEVEL] ` then the message).
        let line = "Mar  5 10:15:42 web1 php-fpm[812]: [WARNING] [pool www] child 123 exited on signal 9 (SIGKILL) after 12.345678 seconds from start";
        let f = unwrap(line);
        assert_eq!(layers(&f), ["syslog"]);
        assert_eq!(f.ident.as_deref(), Some("php-fpm"));
        assert_eq!(f.pid, Some(812));
        assert_eq!(
            f.inner,
            "[WARNING] [pool www] child 123 exited on signal 9 (SIGKILL) after 12.345678 seconds from start"
        );
        assert_eq!(f.time.and_then(|t| t.wall), Some(EpochMs(T)));
        assert!(!f.exact);
        // RFC 5424 as rsyslog forwards it.
        let f = unwrap("<28>1 2024-03-05T10:15:42.000000+00:00 web1 php-fpm 812 - - [WARNING] [pool www] server reached pm.max_children setting (5), consider raising it");
        assert_eq!(f.ident.as_deref(), Some("php-fpm"));
        assert!(f.inner.starts_with("[WARNING] [pool www] server reached"));
        // journalctl -o short-iso: an offset, not `Z`: the envelope.
        let f = unwrap("2024-03-05T10:15:42+0000 web1 systemd[1]: Stopped php8.2-fpm.service - The PHP 8.2 FastCGI Process Manager.");
        assert_eq!(layers(&f), ["syslog"]);
        assert_eq!(f.ident.as_deref(), Some("systemd"));
        // NGINX's own `error_log syslog:server=...`: the date stays in the message.
        let line = format!("<11>Mar  5 10:15:42 web1 nginx: {NGINX}");
        let f = unwrap(&line);
        assert_eq!(f.ident.as_deref(), Some("nginx"));
        assert_eq!(f.inner, NGINX);
        // Docker's journald driver: the container's tag as identifier.
        let f =
            unwrap("Mar 05 10:15:42 web1 3f2a1b9c4d5e[1234]: NOTICE: PHP message: PHP Warning:  x");
        assert_eq!(f.ident.as_deref(), Some("3f2a1b9c4d5e"));
        assert_eq!(f.inner, "NOTICE: PHP message: PHP Warning:  x");
    }

    #[test]
    fn json_framings() {
        let line = r#"{"log":"2024/03/05 10:15:42 [error] 29#29: *1 upstream timed out (110: Connection timed out) while reading response header from upstream\n","stream":"stderr","time":"2024-03-05T10:15:42.123456789Z"}"#;
        let f = unwrap(line);
        assert_eq!(layers(&f), ["docker-json"]);
        assert!(f.inner.starts_with("2024/03/05 10:15:42 [error] 29#29"));
        assert!(!f.inner.ends_with('\n'));
        assert_eq!(f.time.and_then(|t| t.wall), Some(EpochMs(T + 123)));
        assert_eq!(f.prefix_of(line), "");
        let line = r#"{"__CURSOR":"s=1","__REALTIME_TIMESTAMP":"1709633742123456","_TRANSPORT":"syslog","SYSLOG_IDENTIFIER":"php-fpm","_PID":"812","MESSAGE":"[NOTICE] ready to handle connections"}"#;
        let f = unwrap(line);
        assert_eq!(layers(&f), ["journal-json"]);
        assert_eq!(f.ident.as_deref(), Some("php-fpm"));
        assert_eq!(f.pid, Some(812));
        assert_eq!(f.inner, "[NOTICE] ready to handle connections");
        assert_eq!(f.time.and_then(|t| t.wall), Some(EpochMs(T + 123)));
    }

    #[test]
    fn ansi_is_stripped() {
        assert_eq!(strip_ansi("\x1b[36mweb-1  |\x1b[0m x"), "web-1  | x");
        assert_eq!(strip_ansi("\x1b[1;31mred\x1b[0m\x1b[2K"), "red");
        assert_eq!(strip_ansi("plain"), "plain");
        assert_eq!(strip_ansi("cut \x1b"), "cut ");
    }

    #[test]
    fn pasted_indentation_and_quote_marks() {
        let line = "2024/03/05 10:15:42 [error] 12#12: *3 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 1.2.3.4";
        for prefix in ["    ", "\t", "> ", ">> ", "> > ", "  > "] {
            let pasted = format!("{prefix}{line}");
            let f = unwrap(&pasted);
            assert_eq!(f.inner, line, "{prefix:?}");
            assert!(f.layers.contains(Layer::Pasted));
        }
        let f = unwrap("    web-1  | [05-Mar-2024 10:15:48] NOTICE: fpm is running, pid 1");
        assert!(f.layers.contains(Layer::Pasted) && f.layers.contains(Layer::Compose));
        let undated = "[error] 12#12: *3 connect() to 127.0.0.1:8080 failed (13: Permission denied) while connecting to upstream, client: 1.2.3.4";
        assert_eq!(unwrap(&format!("> {undated}")).inner, undated);
        // An indented continuation (PHP stack trace) is not a paste.
        let f = unwrap("    #0 /var/www/html/index.php(12): foo()");
        assert_eq!(f.inner, "    #0 /var/www/html/index.php(12): foo()");
        assert!(f.layers.is_empty());
    }
}
