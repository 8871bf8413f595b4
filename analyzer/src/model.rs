//! Vocabulary shared by parsers, correlation and reports: causes, evidence lines and
//! the kinds of input.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;

/// The seven causes of the troubleshooting guide, plus `unknown`. The slugs are a
/// stable interface (`failures[].cause` in the JSON report).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    FpmNotRunning,
    SocketPermissionDenied,
    WrongSocketPath,
    MaxChildrenExhausted,
    ReadTimeout,
    WorkerOomKilled,
    InvalidResponse,
    Unknown,
}

impl Cause {
    pub const ALL: [Cause; 8] = [
        Cause::FpmNotRunning,
        Cause::SocketPermissionDenied,
        Cause::WrongSocketPath,
        Cause::MaxChildrenExhausted,
        Cause::ReadTimeout,
        Cause::WorkerOomKilled,
        Cause::InvalidResponse,
        Cause::Unknown,
    ];

    pub fn slug(self) -> &'static str {
        match self {
            Cause::FpmNotRunning => "fpm-not-running",
            Cause::SocketPermissionDenied => "socket-permission-denied",
            Cause::WrongSocketPath => "wrong-socket-path",
            Cause::MaxChildrenExhausted => "max-children-exhausted",
            Cause::ReadTimeout => "read-timeout",
            Cause::WorkerOomKilled => "worker-oom-killed",
            Cause::InvalidResponse => "invalid-response",
            Cause::Unknown => "unknown",
        }
    }

    /// The guide's number for the cause (0 for unknown).
    pub fn number(self) -> u8 {
        match self {
            Cause::FpmNotRunning => 1,
            Cause::SocketPermissionDenied => 2,
            Cause::WrongSocketPath => 3,
            Cause::MaxChildrenExhausted => 4,
            Cause::ReadTimeout => 5,
            Cause::WorkerOomKilled => 6,
            Cause::InvalidResponse => 7,
            Cause::Unknown => 0,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Cause::FpmNotRunning => "PHP-FPM is not running",
            Cause::SocketPermissionDenied => "Socket permission denied",
            Cause::WrongSocketPath => "Wrong socket path in the NGINX config",
            Cause::MaxChildrenExhausted => "pm.max_children exhausted",
            Cause::ReadTimeout => "fastcgi_read_timeout exceeded",
            Cause::WorkerOomKilled => "PHP worker killed by the OOM killer",
            Cause::InvalidResponse => "FPM returned an invalid response (crash, fatal error)",
            Cause::Unknown => "Unknown cause",
        }
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.slug())
    }
}

/// What kind of log or config an input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum InputKind {
    /// gatelog.v1 JSON lines from the NGINX module.
    Records,
    NginxError,
    NginxAccess,
    Fpm,
    /// dmesg, kern.log, `journalctl -k`.
    Kernel,
    /// journalctl / syslog with several identifiers (systemd, php-fpm, kernel).
    Journal,
    NginxConf,
    FpmConf,
}

impl InputKind {
    pub fn label(self) -> &'static str {
        match self {
            InputKind::Records => "gatelog records",
            InputKind::NginxError => "NGINX error log",
            InputKind::NginxAccess => "NGINX access log",
            InputKind::Fpm => "PHP-FPM log",
            InputKind::Kernel => "kernel log",
            InputKind::Journal => "journal/syslog",
            InputKind::NginxConf => "NGINX config",
            InputKind::FpmConf => "PHP-FPM pool config",
        }
    }

    /// The `source` of evidence taken from this kind of input.
    pub fn evidence_source(self) -> EvidenceSource {
        match self {
            InputKind::Records => EvidenceSource::Record,
            InputKind::NginxError => EvidenceSource::Nginx,
            InputKind::NginxAccess => EvidenceSource::Access,
            InputKind::Fpm => EvidenceSource::Fpm,
            InputKind::Kernel => EvidenceSource::Kernel,
            InputKind::Journal => EvidenceSource::Journal,
            InputKind::NginxConf => EvidenceSource::NginxConf,
            InputKind::FpmConf => EvidenceSource::FpmConf,
        }
    }
}

/// What kind of line a piece of evidence is (`evidence[].source` in the JSON report;
/// the strings are a stable interface). It names the line's content, which a mixed
/// stream can make differ from the kind of the file it came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EvidenceSource {
    /// A gatelog.v1 record.
    Record,
    /// An NGINX error-log line.
    Nginx,
    /// An NGINX access-log line.
    Access,
    /// A PHP-FPM log line (file, syslog or journal).
    Fpm,
    Kernel,
    /// A systemd (or other journal/syslog) line that is neither FPM's nor the kernel's.
    Journal,
    NginxConf,
    FpmConf,
}

impl EvidenceSource {
    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceSource::Record => "record",
            EvidenceSource::Nginx => "nginx",
            EvidenceSource::Access => "access",
            EvidenceSource::Fpm => "fpm",
            EvidenceSource::Kernel => "kernel",
            EvidenceSource::Journal => "journal",
            EvidenceSource::NginxConf => "nginx-conf",
            EvidenceSource::FpmConf => "fpm-conf",
        }
    }
}

impl fmt::Display for EvidenceSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`: reports align the column with `{:<7}`.
        f.pad(self.as_str())
    }
}

/// What went wrong on one upstream attempt, and where: the vocabulary of gatelog.v1
/// (`attempts[].event`, `attempts[].phase`), shared with the module, so records and
/// error-log lines meet in one vocabulary.
pub use gatelog_record::{Event as AttemptEvent, Phase, Protocol};

/// Longest evidence text kept: enough for any upstream line's message and context,
/// bounded so that memory per failure stays small.
pub const EVIDENCE_TEXT_MAX: usize = 600;

/// A timeout in force and where an input says so (`the request's record`, the
/// directive with its `file:line`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeoutInForce {
    pub ms: i64,
    pub source: String,
}

/// One line that supports a diagnosis, with where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub source: EvidenceSource,
    pub file: Arc<str>,
    /// 1-based line number in the (decompressed) file.
    pub line: u64,
    pub text: String,
}

impl Evidence {
    pub fn new(source: EvidenceSource, file: &Arc<str>, line: u64, text: &str) -> Evidence {
        Evidence::clipped(source, file, line, text, EVIDENCE_TEXT_MAX)
    }

    /// Evidence cut at `max` bytes.
    pub fn clipped(
        source: EvidenceSource,
        file: &Arc<str>,
        line: u64,
        text: &str,
        max: usize,
    ) -> Evidence {
        Evidence {
            source,
            file: Arc::clone(file),
            line,
            text: clip(text, max),
        }
    }
}

impl Evidence {
    /// The evidence as a JSON object, byte for byte what serde_json writes for it
    /// (the field order of the struct), but with gatelog's word-at-a-time escaping:
    /// the JSON report writes every failure's lines, and serde_json's escaping of
    /// them was the largest single cost of an incident's analysis.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        use gatelog_record::line::json_string;
        out.extend_from_slice(b"{\"source\":\"");
        out.extend_from_slice(self.source.as_str().as_bytes());
        out.extend_from_slice(b"\",\"file\":");
        json_string(out, &self.file);
        out.extend_from_slice(b",\"line\":");
        // Writing to a Vec cannot fail.
        let _ = std::io::Write::write_fmt(out, format_args!("{}", self.line));
        out.extend_from_slice(b",\"text\":");
        json_string(out, &self.text);
        out.push(b'}');
    }
}

/// Cuts `s` to at most `max` bytes on a char boundary, marking the cut with `…`.
pub fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// `unix:/run/php/x.sock` or `host:port`, the form records and `$upstream_addr` use.
/// Normalised so that NGINX's spellings and FPM's `listen` compare.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Peer(pub Arc<str>);

impl Peer {
    /// From NGINX's `upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:"` value, a
    /// `connect() to X failed` peer, or a record's peer.
    pub fn from_nginx(value: &str) -> Peer {
        let mut v = value.trim();
        if let Some(i) = v.find("://") {
            v = &v[i + 3..];
        }
        if let Some(path) = v.strip_prefix("unix:") {
            // NGINX appends ':' + uri to unix peers; FastCGI has an empty uri.
            let path = path.split(':').next().unwrap_or(path);
            if !path.starts_with("/var/run/") {
                return Peer(Arc::from(&v[..5 + path.len()]));
            }
            return Peer(Arc::from(format!("unix:{}", normalise_socket_path(path))));
        }
        // TCP: drop a proxied URI after host:port.
        let v = v.split('/').next().unwrap_or(v);
        Peer(Arc::from(v))
    }

    /// From FPM's `listen` value: a path, `9000`, `127.0.0.1:9000`, `[::]:9000`.
    pub fn from_fpm_listen(value: &str) -> Peer {
        let v = value.trim().trim_matches('"').trim_matches('\'');
        if v.starts_with('/') {
            return Peer(Arc::from(format!("unix:{}", normalise_socket_path(v))));
        }
        if v.bytes().all(|b| b.is_ascii_digit()) {
            return Peer(Arc::from(format!("*:{v}")));
        }
        Peer(Arc::from(v))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn unix_path(&self) -> Option<&str> {
        self.0.strip_prefix("unix:")
    }

    pub fn is_unix(&self) -> bool {
        self.0.starts_with("unix:")
    }

    /// A TCP peer on this host's loopback (`127.x`, `[::1]`, `localhost`).
    pub fn is_loopback(&self) -> bool {
        match self.host() {
            Some(h) => h.starts_with("127.") || matches!(h, "[::1]" | "::1" | "localhost"),
            None => false,
        }
    }

    fn port(&self) -> Option<&str> {
        if self.is_unix() {
            return None;
        }
        self.0.rsplit_once(':').map(|(_, p)| p)
    }

    fn host(&self) -> Option<&str> {
        if self.is_unix() {
            return None;
        }
        self.0.rsplit_once(':').map(|(h, _)| h)
    }

    /// Whether a connection to `self` (NGINX side) reaches a socket listening on
    /// `listen` (FPM side). Wildcard listen addresses match any host on that port.
    pub fn reaches(&self, listen: &Peer) -> bool {
        if self.is_unix() || listen.is_unix() {
            return self.0 == listen.0;
        }
        match (self.port(), listen.port(), listen.host()) {
            (Some(a), Some(b), Some(h)) if a == b => {
                let wildcard = matches!(h, "*" | "0.0.0.0" | "[::]" | "::" | "");
                let local = |x: &str| matches!(x, "127.0.0.1" | "localhost" | "[::1]");
                wildcard || Some(h) == self.host() || (local(h) && self.host().is_some_and(local))
            }
            _ => false,
        }
    }
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// `/var/run` is a symlink to `/run` on every current distribution: the same socket.
fn normalise_socket_path(p: &str) -> String {
    match p.strip_prefix("/var/run/") {
        Some(rest) => format!("/run/{rest}"),
        None => p.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn evidence_json_is_what_serde_json_writes() {
        let file: std::sync::Arc<str> = "/var/log/nginx/error \"x\".log".into();
        let texts = [
            String::new(),
            "2026/04/02 06:11:30 [error] 1234#1234: *86637 connect() to unix:/run/php/php8.2-fpm.sock failed (111: Connection refused)".to_string(),
            r#"{"schema":"gatelog.v1","msg":"a \"quoted\" \\ path"}"#.to_string(),
            "tab\there\r\nnew line, bell \u{7}, escape \u{1b}[31m, DEL \u{7f}, NUL \u{0}".to_string(),
            "écrit — 日本語 ✓ \u{8}\u{c}".to_string(),
            "x".repeat(63) + "\"",
            "\\".repeat(9),
        ];
        for (k, text) in texts.iter().enumerate() {
            for source in [
                EvidenceSource::Record,
                EvidenceSource::NginxConf,
                EvidenceSource::Fpm,
            ] {
                let e = Evidence::new(source, &file, k as u64 * 1_000_003, text);
                let mut ours = Vec::new();
                e.write_json(&mut ours);
                assert_eq!(
                    String::from_utf8(ours).unwrap(),
                    serde_json::to_string(&e).unwrap()
                );
            }
        }
        // Every byte value below 0x80 and a few above, one at a time.
        for c in (0u32..0x80).chain([0xe9, 0x2014, 0x1f600]) {
            let text = format!("a{}b", char::from_u32(c).unwrap());
            let e = Evidence::new(EvidenceSource::Kernel, &file, 1, &text);
            let mut ours = Vec::new();
            e.write_json(&mut ours);
            assert_eq!(ours, serde_json::to_vec(&e).unwrap(), "{c:#x}");
        }
    }

    use super::*;

    #[test]
    fn slugs_are_stable() {
        let slugs: Vec<_> = Cause::ALL.iter().map(|c| c.slug()).collect();
        assert_eq!(
            slugs,
            [
                "fpm-not-running",
                "socket-permission-denied",
                "wrong-socket-path",
                "max-children-exhausted",
                "read-timeout",
                "worker-oom-killed",
                "invalid-response",
                "unknown"
            ]
        );
        assert_eq!(
            serde_json::to_string(&Cause::WorkerOomKilled).unwrap(),
            "\"worker-oom-killed\""
        );
    }

    #[test]
    fn evidence_sources_keep_their_strings() {
        use EvidenceSource as S;
        let all = [
            (S::Record, "record"),
            (S::Nginx, "nginx"),
            (S::Access, "access"),
            (S::Fpm, "fpm"),
            (S::Kernel, "kernel"),
            (S::Journal, "journal"),
            (S::NginxConf, "nginx-conf"),
            (S::FpmConf, "fpm-conf"),
        ];
        for (s, text) in all {
            assert_eq!(s.as_str(), text);
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{text}\""));
        }
        assert_eq!(format!("{:<7}|", S::Fpm), "fpm    |");
    }

    #[test]
    fn peers_normalise() {
        let a = Peer::from_nginx("fastcgi://unix:/run/php/php8.2-fpm.sock:");
        let b = Peer::from_nginx("unix:/run/php/php8.2-fpm.sock");
        let c = Peer::from_fpm_listen("/var/run/php/php8.2-fpm.sock");
        assert_eq!(a, b);
        assert_eq!(a, c);
        assert_eq!(a.unix_path(), Some("/run/php/php8.2-fpm.sock"));
        let t = Peer::from_nginx("fastcgi://127.0.0.1:9000");
        assert_eq!(t.as_str(), "127.0.0.1:9000");
        assert!(t.reaches(&Peer::from_fpm_listen("9000")));
        assert!(t.reaches(&Peer::from_fpm_listen("127.0.0.1:9000")));
        assert!(
            Peer::from_nginx("localhost:9000").reaches(&Peer::from_fpm_listen("127.0.0.1:9000"))
        );
        assert!(!t.reaches(&Peer::from_fpm_listen("9001")));
        assert!(!a.reaches(&Peer::from_fpm_listen("/run/php/php8.1-fpm.sock")));
        assert_eq!(
            Peer::from_nginx("http://10.0.0.2:8080/app/").as_str(),
            "10.0.0.2:8080"
        );
    }

    #[test]
    fn clip_respects_char_boundaries() {
        assert_eq!(clip("abc", 5), "abc");
        assert_eq!(clip("ääää", 3), "ä…");
    }
}
