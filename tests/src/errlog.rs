//! NGINX's error log and the test access log, parsed.

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;

use regex::Regex;

/// One error-log entry (a line, plus continuation lines of a multi-line message such
/// as `FastCGI sent in stderr`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorLogEntry {
    pub time: String,
    pub level: String,
    pub pid: u32,
    pub tid: u32,
    /// The `*N` connection number, when printed.
    pub conn: Option<u64>,
    /// Everything after `*N ` (or after `pid#tid: `).
    pub text: String,
}

/// The templates whose ` (<errno>: <strerror>)` NGINX prints for an upstream attempt.
pub const ERRNO_TEMPLATES: &[&str] = &[
    "connect() to ",
    "connect() failed",
    "kevent() reported that connect() failed",
    "upstream timed out",
    "recv() failed",
    "readv() failed",
    "writev() failed",
    "send() failed",
    "sendfile() failed",
];

/// Templates of upstream failures without an errno.
pub const PLAIN_FAILURE_TEMPLATES: &[&str] = &[
    "upstream prematurely closed",
    "upstream sent ",
    "no live upstreams",
    "upstream prematurely sent response",
];

fn head_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r"^(\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}) \[(emerg|alert|crit|error|warn|notice|info|debug)\] (\d+)#(\d+): (?:\*(\d+) )?",
        )
        .expect("static regex")
    })
}

fn errno_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r" \((\d+): ([^)]*)\)").expect("static regex"))
}

/// Parses an error log. Lines that do not start a record continue the previous one.
pub fn parse(text: &str) -> Vec<ErrorLogEntry> {
    let mut out: Vec<ErrorLogEntry> = Vec::new();
    for line in text.split('\n') {
        if let Some(c) = head_re().captures(line) {
            let whole = c.get(0).map_or(0, |m| m.end());
            out.push(ErrorLogEntry {
                time: c[1].to_string(),
                level: c[2].to_string(),
                pid: c[3].parse().unwrap_or(0),
                tid: c[4].parse().unwrap_or(0),
                conn: c.get(5).and_then(|m| m.as_str().parse().ok()),
                text: line[whole..].to_string(),
            });
        } else if let Some(last) = out.last_mut() {
            last.text.push('\n');
            last.text.push_str(line);
        }
    }
    // A trailing newline leaves an empty continuation.
    if let Some(last) = out.last_mut() {
        while last.text.ends_with('\n') {
            last.text.pop();
        }
    }
    out
}

/// Reads and parses the error log at `path` (missing file = no entries).
pub fn read(path: &Path) -> Vec<ErrorLogEntry> {
    match std::fs::read(path) {
        Ok(b) => parse(&String::from_utf8_lossy(&b)),
        Err(_) => Vec::new(),
    }
}

impl ErrorLogEntry {
    /// The part before the client/server context (`, client: `).
    pub fn head(&self) -> &str {
        match self.text.find(", client: ") {
            Some(i) => &self.text[..i],
            None => &self.text,
        }
    }

    /// NGINX's own message, errno part included, without ` while <action>` and the
    /// context (what a record's `attempts[].message` carries).
    pub fn message(&self) -> &str {
        let head = self.head();
        match head.rfind(" while ") {
            Some(i) => &head[..i],
            None => head,
        }
    }

    /// The action (`connecting to upstream`, ...), if printed.
    pub fn action(&self) -> Option<&str> {
        let head = self.head();
        head.rfind(" while ").map(|i| &head[i + 7..])
    }

    /// The errno NGINX printed, for the upstream templates that carry one.
    pub fn errno(&self) -> Option<i32> {
        self.errno_and_text().map(|(n, _)| n)
    }

    /// (errno, strerror text) for the upstream templates that carry one.
    pub fn errno_and_text(&self) -> Option<(i32, String)> {
        let msg = self.message();
        if !ERRNO_TEMPLATES.iter().any(|t| msg.starts_with(t)) {
            return None;
        }
        let c = errno_re().captures(msg)?;
        Some((c[1].parse().ok()?, c[2].to_string()))
    }

    /// Whether this is an upstream attempt failure (with or without errno), i.e. what
    /// a record's attempt must correspond to.
    pub fn is_upstream_failure(&self) -> bool {
        let msg = self.message();
        matches!(self.level.as_str(), "emerg" | "alert" | "crit" | "error")
            && (ERRNO_TEMPLATES.iter().any(|t| msg.starts_with(t))
                || PLAIN_FAILURE_TEMPLATES.iter().any(|t| msg.starts_with(t)))
    }

    /// The `request: "..."` of the context.
    pub fn request_line(&self) -> Option<&str> {
        let i = self.text.find(", request: \"")? + 12;
        let rest = &self.text[i..];
        // The request line itself may contain quotes: anchor on what follows it.
        let end = [
            ", upstream: \"",
            ", host: \"",
            ", subrequest: \"",
            ", referrer: \"",
        ]
        .iter()
        .filter_map(|k| rest.find(k))
        .min()
        .unwrap_or(rest.len());
        Some(rest[..end].strip_suffix('"').unwrap_or(&rest[..end]))
    }

    /// The `upstream: "..."` of the context.
    pub fn upstream(&self) -> Option<&str> {
        let i = self.text.find(", upstream: \"")? + 13;
        let rest = &self.text[i..];
        Some(&rest[..rest.find('"').unwrap_or(rest.len())])
    }
}

/// Upstream failure entries for connection `conn`, in log order.
pub fn failures_for(entries: &[ErrorLogEntry], conn: u64) -> Vec<&ErrorLogEntry> {
    entries
        .iter()
        .filter(|e| e.conn == Some(conn) && e.is_upstream_failure())
        .collect()
}

/// One access-log line in the test format (see [`crate::nginx::NginxConf`]).
#[derive(Debug, Clone)]
pub struct AccessLine {
    pub request_id: String,
    pub conn: u64,
    pub status: u16,
    pub request: String,
    pub upstream_addr: String,
    pub upstream_status: String,
}

/// Reads the access log: request id -> line.
pub fn read_access(path: &Path) -> HashMap<String, AccessLine> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        Regex::new(
            r#"^rid=(\S+) conn=(\d+) status=(\d+) request="(.*)" upstream_addr="(.*)" upstream_status="(.*)"$"#,
        )
        .expect("static regex")
    });
    let mut out = HashMap::new();
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    for line in text.lines() {
        if let Some(c) = re.captures(line) {
            out.insert(
                c[1].to_string(),
                AccessLine {
                    request_id: c[1].to_string(),
                    conn: c[2].parse().unwrap_or(0),
                    status: c[3].parse().unwrap_or(0),
                    request: c[4].to_string(),
                    upstream_addr: c[5].to_string(),
                    upstream_status: c[6].to_string(),
                },
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entries_and_errno() {
        let log = "2026/04/02 14:23:17 [crit] 1234#1234: *5678 connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory) while connecting to upstream, client: 203.0.113.7, server: example.com, request: \"GET /index.php HTTP/1.1\", upstream: \"fastcgi://unix:/run/php/php8.2-fpm.sock:\", host: \"example.com\"\n\
2026/04/02 14:23:18 [error] 1234#1234: *5685 FastCGI sent in stderr: \"PHP message: x\nStack trace:\n#0 {main}\" while reading response header from upstream, client: 203.0.113.7, server: example.com, request: \"GET / HTTP/1.1\", upstream: \"fastcgi://unix:/run/php/php8.2-fpm.sock:\", host: \"example.com\"\n\
2026/04/02 14:23:19 [error] 1234#1234: *5686 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 127.0.0.1, server: e, request: \"GET /a\"b HTTP/1.1\", upstream: \"fastcgi://127.0.0.1:9000\", host: \"h\"\n\
2026/04/02 14:23:20 [notice] 1234#1234: signal process started\n";
        let e = parse(log);
        assert_eq!(e.len(), 4);
        assert_eq!(e[0].level, "crit");
        assert_eq!(e[0].conn, Some(5678));
        assert_eq!(e[0].errno(), Some(2));
        assert_eq!(
            e[0].message(),
            "connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory)"
        );
        assert_eq!(e[0].action(), Some("connecting to upstream"));
        assert!(e[0].is_upstream_failure());
        assert!(e[1].text.contains("Stack trace:\n#0 {main}"));
        assert!(!e[1].is_upstream_failure());
        assert_eq!(e[1].errno(), None);
        assert_eq!(
            e[2].errno_and_text(),
            Some((110, "Connection timed out".to_string()))
        );
        assert_eq!(e[2].request_line(), Some("GET /a\"b HTTP/1.1"));
        assert_eq!(e[2].upstream(), Some("fastcgi://127.0.0.1:9000"));
        assert_eq!(e[3].conn, None);
    }
}
