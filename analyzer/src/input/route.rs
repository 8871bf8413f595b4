//! Deciding, line by line, what each line is. A stream from a container, a
//! supervisord or a `journalctl -u nginx -u php-fpm` holds NGINX error and access
//! lines, PHP-FPM lines, kernel and systemd lines side by side, each in its own
//! framing: a file has no single kind. The router unwraps each line
//! ([`super::framing`]) and reads its content; both readers of a file (the failure
//! side and the context side) run the same router over the same lines, so they agree
//! on which line is whose, and each line is counted exactly once.
//!
//! The file's role (from a flag or from its first lines) only settles what the
//! content leaves open: a stamped line nobody recognises in a kernel log is a
//! kernel line.

use std::sync::LazyLock;

use regex::Regex;

use super::framing::{Framed, Layer, Unwrapper};
use crate::model::InputKind;
use crate::parse::fpm::{self, FpmEvent, FpmLine};
use crate::parse::syslog::Envelope;
use crate::parse::{access, kernel, nginx};
use crate::time::{self, EpochMs, LocalClock, Zone};

static COMBINED_ACCESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^\S+ \S+ .*?\[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] ""#)
        .expect("static regex")
});
/// PHP-FPM's own access log (`access.log`, default format `%R - %u %t "%m %r" %s`),
/// which the official php:fpm images write to stderr beside the error log.
static FPM_ACCESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^\S+ - \S* ?\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4} "[^"]*" \d{3}"#)
        .expect("static regex")
});

/// The official nginx image's entrypoint (`/docker-entrypoint.sh: ...`,
/// `10-listen-on-ipv6-by-default.sh: info: ...`): the first lines of every
/// `docker logs` of it.
static NGINX_ENTRYPOINT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(?:/docker-entrypoint\.sh|\d\d-[\w.-]+\.(?:sh|envsh)): ").expect("static regex")
});

/// What one line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    Record,
    NginxError,
    NginxAccess,
    Fpm,
    Kernel,
    /// systemd's lines (unit events, systemd-oomd, systemd-coredump).
    Journal,
    /// A syslog or journal line of another program: understood, not relevant.
    Other,
    Blank,
    Unknown,
}

/// Which reader takes a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Records, NGINX error and access logs: the failure stream.
    Failure,
    /// PHP-FPM, kernel and journal lines: the context.
    Context,
    /// Blank, other programs', not understood: counted by the file's primary reader.
    Neutral,
}

impl LineKind {
    /// The kinds counted per input (everything but not understood).
    pub const COUNTED: [LineKind; 8] = [
        LineKind::Record,
        LineKind::NginxError,
        LineKind::NginxAccess,
        LineKind::Fpm,
        LineKind::Kernel,
        LineKind::Journal,
        LineKind::Other,
        LineKind::Blank,
    ];

    /// The name used in reports (`inputs[].lines_by_kind`): the input kinds' names.
    pub fn slug(self) -> &'static str {
        match self {
            LineKind::Record => "records",
            LineKind::NginxError => "nginx-error",
            LineKind::NginxAccess => "nginx-access",
            LineKind::Fpm => "fpm",
            LineKind::Kernel => "kernel",
            LineKind::Journal => "journal",
            LineKind::Other => "other",
            LineKind::Blank => "blank",
            LineKind::Unknown => "not-understood",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn side(self) -> Side {
        match self {
            LineKind::Record | LineKind::NginxError | LineKind::NginxAccess => Side::Failure,
            LineKind::Fpm | LineKind::Kernel | LineKind::Journal => Side::Context,
            LineKind::Other | LineKind::Blank | LineKind::Unknown => Side::Neutral,
        }
    }

    /// The input kind a file of mostly these lines is (None: not a log kind).
    pub fn input_kind(self) -> Option<InputKind> {
        Some(match self {
            LineKind::Record => InputKind::Records,
            LineKind::NginxError => InputKind::NginxError,
            LineKind::NginxAccess => InputKind::NginxAccess,
            LineKind::Fpm => InputKind::Fpm,
            LineKind::Kernel => InputKind::Kernel,
            LineKind::Journal => InputKind::Journal,
            LineKind::Other | LineKind::Blank | LineKind::Unknown => return None,
        })
    }
}

/// The reader side of an input kind (configs are read whole, by neither).
pub fn side_of(kind: InputKind) -> Side {
    match kind {
        InputKind::Records | InputKind::NginxError | InputKind::NginxAccess => Side::Failure,
        InputKind::Fpm | InputKind::Kernel | InputKind::Journal => Side::Context,
        InputKind::NginxConf | InputKind::FpmConf => Side::Neutral,
    }
}

/// One line, unwrapped and recognised.
#[derive(Debug, Clone)]
pub struct Routed<'a> {
    pub kind: LineKind,
    /// The line continues the entry the previous line of its source started (raw
    /// newlines inside an NGINX `FastCGI sent in stderr` entry or a PHP worker's
    /// output): `kind` is that entry's kind.
    pub continuation: bool,
    pub framed: Framed<'a>,
    /// The line's instant, when the framing or the line gives one: an exact stamp of
    /// the framing (docker, kubelet, journald) first, then the line's own date, then
    /// a syslog header's.
    pub time: Option<EpochMs>,
    /// The FPM line, parsed while recognising it.
    pub fpm: Option<FpmLine>,
    /// An NGINX error line pasted without NGINX's date.
    pub undated: bool,
    /// The line's own text carries a full date (NGINX's, FPM's).
    pub dated: bool,
}

/// An entry that later lines of the same source may continue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Open {
    NginxEntry,
    WorkerOutput,
}

/// Sources tracked for continuation lines (compose services, pods); more are rare.
const MAX_SOURCES: usize = 64;

/// Reads lines one after the other; remembers per source what a continuation line
/// would continue.
#[derive(Debug, Clone)]
pub struct Router {
    unwrapper: Unwrapper,
    clock: LocalClock,
    default: Option<InputKind>,
    /// The entry open in lines without a source (a plain file): the common case,
    /// kept out of the list.
    open_bare: Option<Open>,
    open: Vec<(Box<str>, Open)>,
}

impl Router {
    /// `default`: the file's role, for what the content leaves open.
    pub fn new(zone: &Zone, reference: (i16, i8), default: Option<InputKind>) -> Router {
        Router {
            unwrapper: Unwrapper::new(Envelope::new(LocalClock::new(zone), reference)),
            clock: LocalClock::new(zone),
            default,
            open_bare: None,
            open: Vec::new(),
        }
    }

    /// Unwraps and recognises one line (colours already stripped).
    pub fn route<'a>(&mut self, line: &'a str) -> Routed<'a> {
        let framed = self.unwrapper.unwrap(line);
        let open = match framed.source() {
            "" => self.open_bare,
            source => self
                .open
                .iter()
                .find(|(s, _)| &**s == source)
                .map(|(_, o)| *o),
        };
        let mut r = Routed {
            kind: LineKind::Unknown,
            continuation: false,
            time: None,
            fpm: None,
            undated: false,
            dated: false,
            framed,
        };
        let inner_time = self.recognise(&mut r, open);
        r.dated = inner_time.is_some();
        let outer = r.framed.time.and_then(|t| t.wall);
        r.time = if r.framed.exact {
            outer
        } else {
            inner_time.or(outer)
        };
        if !r.continuation {
            let now_open = match r.kind {
                LineKind::NginxError => Some(Open::NginxEntry),
                LineKind::Fpm
                    if r.fpm
                        .as_ref()
                        .is_some_and(|l| matches!(l.event, FpmEvent::WorkerOutput { .. })) =>
                {
                    Some(Open::WorkerOutput)
                }
                _ => None,
            };
            self.set_open(r.framed.source(), now_open);
        }
        r
    }

    fn set_open(&mut self, source: &str, open: Option<Open>) {
        if source.is_empty() {
            self.open_bare = open;
            return;
        }
        let i = self.open.iter().position(|(s, _)| &**s == source);
        match (i, open) {
            (Some(i), Some(o)) => self.open[i].1 = o,
            (Some(i), None) => {
                self.open.swap_remove(i);
            }
            (None, Some(o)) => {
                if self.open.len() >= MAX_SOURCES {
                    self.open.remove(0);
                }
                self.open.push((source.into(), o));
            }
            (None, None) => {}
        }
    }

    /// Sets the kind (and what goes with it); returns the line's own time.
    fn recognise(&mut self, r: &mut Routed<'_>, open: Option<Open>) -> Option<EpochMs> {
        let continues = |r: &mut Routed<'_>, o: Open| {
            r.continuation = true;
            r.kind = match o {
                Open::NginxEntry => LineKind::NginxError,
                Open::WorkerOutput => LineKind::Fpm,
            };
        };
        // `t` for recognising; the parsers get the line as written (FPM's `NOTICE: `
        // with an empty message ends in spaces).
        let full: &str = &r.framed.inner;
        let t = full.trim_end();
        if t.trim_start().is_empty() {
            // A blank line inside a multi-line entry belongs to it.
            match open {
                Some(o) => continues(r, o),
                None => r.kind = LineKind::Blank,
            }
            return None;
        }
        let enveloped =
            r.framed.layers.contains(Layer::Syslog) || r.framed.layers.contains(Layer::JournalJson);
        if enveloped {
            let ident = r.framed.ident.as_deref().unwrap_or("");
            if ident == "kernel" {
                r.kind = LineKind::Kernel;
                return None;
            }
            if ident.starts_with("systemd") {
                r.kind = LineKind::Journal;
                return None;
            }
            if ident.starts_with("php") {
                // FPM's syslog records (`[WARNING] ...`) and its stderr captured by
                // the journal (`[02-Apr-2026 14:23:17] WARNING: ...`).
                r.kind = LineKind::Fpm;
                let line = fpm::parse_syslog_message(full);
                let at = line
                    .as_ref()
                    .and_then(|l| l.civil)
                    .and_then(|c| self.clock.to_epoch(c));
                r.fpm = line;
                return at;
            }
        }
        if let Some(o) = open {
            if !starts_anew(t) {
                continues(r, o);
                return None;
            }
        }
        let b = t.as_bytes();
        if b[0] == b'{' {
            if t.contains("gatelog.v1") {
                r.kind = LineKind::Record;
                return None;
            }
            if t.contains("\"status\"") {
                r.kind = LineKind::NginxAccess;
                return None;
            }
        }
        if nginx::is_entry_start(b) {
            r.kind = LineKind::NginxError;
            return time::parse_nginx_time(b).and_then(|c| self.clock.to_epoch(c));
        }
        if b[0] == b'[' {
            if let Some((civil, _)) = time::parse_fpm_time(&b[1..]) {
                if let Some(line) = fpm::parse_line(full) {
                    r.kind = LineKind::Fpm;
                    r.fpm = Some(line);
                    return self.clock.to_epoch(civil);
                }
            }
        }
        // Raw dmesg, the bulk of a kernel log: the stamp alone says it.
        if b[0] == b'[' && kernel::has_boot_stamp(t) {
            r.kind = LineKind::Kernel;
            return None;
        }
        if kernel::split_dmesg_line(t, &mut self.clock).is_some() {
            r.kind = LineKind::Kernel;
            return None;
        }
        if is_access_line(t) {
            r.kind = LineKind::NginxAccess;
            return None;
        }
        // `[WARNING] [pool www] ...` (FPM's syslog body, pasted) and FPM's
        // undecorated output (`NOTICE: PHP message: ...`, official Docker images).
        if let Some(line) = fpm::parse_syslog_message(full) {
            r.kind = LineKind::Fpm;
            r.fpm = Some(line);
            return None;
        }
        if memchr::memmem::find(b, b" - ").is_some() && FPM_ACCESS.is_match(t) {
            // Understood, and about nothing the causes need.
            r.kind = LineKind::Fpm;
            return None;
        }
        if nginx::parse_undated_head(t, false).is_some() {
            r.kind = LineKind::NginxError;
            r.undated = true;
            return None;
        }
        // Before continuation lines: NGINX's own message with its context is a new
        // line even right after another; the text inside a FastCGI stderr entry
        // never starts the way NGINX's upstream messages do.
        if is_bare_upstream_message(t) {
            r.kind = LineKind::NginxError;
            r.undated = true;
            return None;
        }
        if let Some(o) = open {
            continues(r, o);
            return None;
        }
        if enveloped || NGINX_ENTRYPOINT.is_match(t) {
            r.kind = LineKind::Other;
            return None;
        }
        if self.default == Some(InputKind::Kernel) && r.framed.layers.contains(Layer::Timestamp) {
            // A stamped line of a kernel log the content does not name.
            r.kind = LineKind::Kernel;
        }
        None
    }
}

/// The starts of NGINX's upstream messages (pasted without their head).
const UPSTREAM_MESSAGE_STARTS: [&str; 13] = [
    "connect() ",
    "kevent() ",
    "upstream ",
    "recv() ",
    "readv() ",
    "writev() ",
    "send() ",
    "sendfile() ",
    "SSL_",
    "no live upstreams",
    "no resolver",
    "peer closed",
    "FastCGI sent in stderr",
];

/// FPM's levels as its lines start without a date (`NOTICE: PHP message: ...`).
const FPM_LEVEL_STARTS: [&str; 5] = ["NOTICE: ", "WARNING: ", "ERROR: ", "ALERT: ", "DEBUG: "];

/// Whether a line right after a multi-line entry may start something new instead of
/// continuing it. Only a line that starts the way some log line does is looked at
/// further: the text inside an entry (a PHP stack trace: `Stack trace:`, `#0 ...`,
/// `  thrown in ...`) is by far the common case and stays cheap.
fn starts_anew(t: &str) -> bool {
    let b = t.as_bytes();
    match b[0] {
        // Dates, dmesg stamps, `[level]`, JSON, IPs and pids, `::1` clients, the
        // nginx image's `/docker-entrypoint.sh: ...`.
        b'{' | b'[' | b':' | b'/' | b'0'..=b'9' => true,
        _ => {
            FPM_LEVEL_STARTS.iter().any(|p| t.starts_with(p))
                || UPSTREAM_MESSAGE_STARTS.iter().any(|p| t.starts_with(p))
                // A `combined` line whose client is a host name.
                || memchr::memmem::find(b, b"] \"").is_some()
        }
    }
}

/// An access-log line: `combined` and its variants, or `key=value` fields with a
/// status. (JSON access lines are recognised by their `"status"`.)
fn is_access_line(t: &str) -> bool {
    let b = t.as_bytes();
    if memchr::memmem::find(b, b"] \"").is_some() && COMBINED_ACCESS.is_match(t) {
        return true;
    }
    t.contains("status=") && access::parse_line(t).is_some()
}

/// NGINX's message with its context, pasted alone (`connect() to ... failed (2: No
/// such file or directory) while connecting to upstream, client: ...`): an upstream
/// message NGINX would have written, with the context or the action NGINX appends.
fn is_bare_upstream_message(t: &str) -> bool {
    let Some(head) = nginx::parse_undated_head(t, true) else {
        return false;
    };
    let e = nginx::split_body(head);
    let has_context = e.context.client.is_some() || e.context.upstream.is_some();
    (has_context || e.action.is_some()) && nginx::classify_message(&e).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::framing::strip_ansi;

    /// 2024-03-05T10:15:42Z
    const T: i64 = 1_709_633_742_000;

    fn router(default: Option<InputKind>) -> Router {
        Router::new(&Zone::utc(), (2024, 3), default)
    }

    fn kinds(default: Option<InputKind>, text: &str) -> Vec<(LineKind, bool)> {
        let mut r = router(default);
        text.lines()
            .map(|l| {
                let clean = strip_ansi(l);
                let x = r.route(&clean);
                (x.kind, x.continuation)
            })
            .collect()
    }

    use LineKind as K;

    const NGINX: &str = r#"2024/03/05 10:15:42 [error] 29#29: *1 connect() to unix:/run/php/php-fpm.sock failed (2: No such file or directory) while connecting to upstream, client: 172.18.0.1, server: localhost, request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/run/php/php-fpm.sock:", host: "localhost:8080""#;

    #[test]
    fn a_compose_stream_of_nginx_and_php_fpm() {
        // `docker compose logs` of the official nginx and php:fpm images, colours on:
        // NGINX's error and access lines, FPM's own log and its workers' output.
        let text = format!(
            "\x1b[36mweb-1  | \x1b[0m{NGINX}\n\
             \x1b[36mweb-1  | \x1b[0m172.18.0.1 - - [05/Mar/2024:10:15:42 +0000] \"GET / HTTP/1.1\" 502 157 \"-\" \"curl/8.5.0\" \"-\"\n\
             \x1b[33mphp-1  | \x1b[0m[05-Mar-2024 10:15:42] WARNING: [pool www] server reached pm.max_children setting (5), consider raising it\n\
             \x1b[33mphp-1  | \x1b[0mNOTICE: PHP message: PHP Fatal error:  Uncaught Exception: boom in /var/www/html/index.php:3\n\
             \x1b[33mphp-1  | \x1b[0mStack trace:\n\
             \x1b[36mweb-1  | \x1b[0m/docker-entrypoint.sh: Configuration complete; ready for start up\n\
             \x1b[33mphp-1  | \x1b[0m#0 {{main}}\n\
             \x1b[33mphp-1  | \x1b[0m  thrown in /var/www/html/index.php on line 3\n\
             \x1b[33mphp-1  | \x1b[0m127.0.0.1 -  05/Mar/2024:10:15:42 +0000 \"GET /index.php\" 500\n"
        );
        assert_eq!(
            kinds(None, &text),
            vec![
                (K::NginxError, false),
                (K::NginxAccess, false),
                (K::Fpm, false),
                (K::Fpm, false),
                (K::Fpm, true),
                (K::Other, false),
                (K::Fpm, true),
                (K::Fpm, true),
                (K::Fpm, false),
            ]
        );
    }

    #[test]
    fn nginx_multi_line_entries_continue_across_blank_lines() {
        let text = "2024/03/05 10:15:42 [error] 29#29: *1 FastCGI sent in stderr: \"PHP message: PHP Fatal error:  Uncaught Error: x in /var/www/a.php:3\n\
                    Stack trace:\n\
                    \n\
                    #0 {main}\n\
                    \x20 thrown in /var/www/a.php on line 3\" while reading response header from upstream, client: 1.2.3.4, server: a, request: \"GET /a.php HTTP/1.1\", upstream: \"fastcgi://unix:/run/php/php-fpm.sock:\", host: \"a\"\n\
                    [05-Mar-2024 10:15:43] NOTICE: Terminating ...\n\
                    Stack trace:\n";
        assert_eq!(
            kinds(None, text),
            vec![
                (K::NginxError, false),
                (K::NginxError, true),
                (K::NginxError, true),
                (K::NginxError, true),
                (K::NginxError, true),
                (K::Fpm, false),
                (K::Unknown, false),
            ]
        );
    }

    #[test]
    fn a_journal_of_several_units() {
        let text = "Mar 05 10:15:40 web1 systemd[1]: Stopping php8.2-fpm.service - The PHP 8.2 FastCGI Process Manager...\n\
                    Mar 05 10:15:41 web1 php-fpm8.2[812]: [05-Mar-2024 10:15:41] NOTICE: exiting, bye-bye!\n\
                    Mar 05 10:15:41 web1 kernel: [423847.291234] Out of memory: Killed process 23114 (php-fpm8.2)\n\
                    Mar 05 10:15:42 web1 nginx[700]: 2024/03/05 10:15:42 [crit] 701#701: *9 connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory) while connecting to upstream, client: 1.2.3.4, server: a, request: \"GET / HTTP/1.1\", upstream: \"fastcgi://unix:/run/php/php8.2-fpm.sock:\", host: \"a\"\n\
                    Mar 05 10:15:42 web1 sshd[900]: Accepted publickey for root from 10.0.0.1 port 50000 ssh2\n\
                    Mar 05 10:15:43 web1 php-fpm[812]: [WARNING] [pool www] child 123 exited on signal 9 (SIGKILL) after 12.345678 seconds from start\n";
        assert_eq!(
            kinds(Some(InputKind::Journal), text),
            vec![
                (K::Journal, false),
                (K::Fpm, false),
                (K::Kernel, false),
                (K::NginxError, false),
                (K::Other, false),
                (K::Fpm, false),
            ]
        );
    }

    #[test]
    fn times_prefer_the_exact_stamp() {
        let mut r = router(None);
        // docker -t: the daemon's stamp, not NGINX's whole second.
        let line = format!("2024-03-05T10:15:43.250000000Z {NGINX}");
        let x = r.route(&line);
        assert_eq!((x.kind, x.time), (K::NginxError, Some(EpochMs(T + 1250))));
        // plain: NGINX's date in the zone.
        assert_eq!(r.route(NGINX).time, Some(EpochMs(T)));
        // syslog FPM body: the header's time; FPM stderr in the journal: FPM's date.
        let x = r.route("Mar  5 10:15:44 web1 php-fpm[812]: [NOTICE] ready to handle connections");
        assert_eq!((x.kind, x.time), (K::Fpm, Some(EpochMs(T + 2000))));
        assert!(matches!(x.fpm.map(|l| l.event), Some(FpmEvent::Ready)));
        let x = r.route("Mar  5 10:15:44 web1 php-fpm8.2[812]: [05-Mar-2024 10:15:45] NOTICE: ready to handle connections");
        assert_eq!(x.time, Some(EpochMs(T + 3000)));
        // undecorated worker output: no time of its own.
        let x = r.route("NOTICE: PHP message: PHP Warning:  x");
        assert_eq!((x.kind, x.time), (K::Fpm, None));
    }

    #[test]
    fn pasted_nginx_lines_without_a_date() {
        let mut r = router(None);
        for line in [
            r#"[error] 1234#1234: *5 connect() to unix:/run/php/php7.2-fpm.sock failed (2: No such file or directory) while connecting to upstream, client: 1.2.3.4, server: example.com, request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/run/php/php7.2-fpm.sock:", host: "example.com""#,
            r#"[error] *5 connect() to unix:/run/php/php7.2-fpm.sock failed (2: No such file or directory) while connecting to upstream, client: 1.2.3.4, server: example.com"#,
            r#"connect() to unix:/run/php/php7.2-fpm.sock failed (2: No such file or directory) while connecting to upstream, client: 1.2.3.4, server: example.com, request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/run/php/php7.2-fpm.sock:", host: "example.com""#,
            r#"upstream timed out (110: Connection timed out) while reading response header from upstream"#,
        ] {
            let x = r.route(line);
            assert_eq!(
                (x.kind, x.undated, x.time),
                (K::NginxError, true, None),
                "{line}"
            );
        }
        // A sentence that merely mentions an upstream is not an NGINX line (after
        // one it would be read as the entry's continuation, as NGINX writes them).
        let x = router(None).route("we restarted the upstream at noon");
        assert_eq!(x.kind, K::Unknown);
    }

    #[test]
    fn the_role_settles_stamped_lines_the_content_does_not_name() {
        let text = "2024-03-05T10:15:42.000000000Z usb 1-1: new high-speed USB device number 2\n";
        assert_eq!(
            kinds(Some(InputKind::Kernel), text),
            vec![(K::Kernel, false)]
        );
        assert_eq!(
            kinds(Some(InputKind::NginxError), text),
            vec![(K::Unknown, false)]
        );
        // dmesg's own ISO format is a kernel line whatever the role.
        let text =
            "2024-03-05T10:15:42,291234+00:00 Out of memory: Killed process 1 (php-fpm8.2)\n";
        assert_eq!(
            kinds(Some(InputKind::NginxError), text),
            vec![(K::Kernel, false)]
        );
    }

    #[test]
    fn fpm_lines_with_an_empty_message() {
        // `php-fpm -tt` into FPM's log: blank settings lines end in spaces.
        let x = router(None).route("[03-Dec-2026 12:10:00] NOTICE:  ");
        assert_eq!(x.kind, K::Fpm);
        assert!(x.fpm.is_some());
    }

    #[test]
    fn records_and_json_access() {
        let text = "{\"schema\":\"gatelog.v1\",\"time\":\"2024-03-05T10:15:42.801+00:00\",\"status\":502}\n{\"time_iso8601\":\"2024-03-05T10:15:42+00:00\",\"status\":\"502\",\"request_id\":\"abc\"}\n{\"hello\":1}\n";
        assert_eq!(
            kinds(None, text),
            vec![
                (K::Record, false),
                (K::NginxAccess, false),
                (K::Unknown, false)
            ]
        );
    }
}
