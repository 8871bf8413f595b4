//! NGINX access logs (optional context): the default `combined` format and JSON
//! formats with fields such as `$request_id`, `$connection`, `$status`. Only 502/504
//! entries are kept; they confirm a failure's status and give it a request id.

use std::sync::LazyLock;

use regex::Regex;
use serde_json::Value;

use crate::time::{self, EpochMs};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEntry {
    pub time: Option<EpochMs>,
    pub status: u16,
    pub client: Option<String>,
    pub request: Option<String>,
    pub request_id: Option<String>,
    pub conn: Option<u64>,
    pub upstream_addr: Option<String>,
}

/// Result of looking at one access-log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLine {
    /// A 502 or 504.
    Failure(AccessEntry),
    /// An access-log line with another status.
    Other,
}

static COMBINED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^(\S+) \S+ .*?\[([^\]]+)\] "((?:[^"\\]|\\.)*)" (\d{3}) "#).expect("static regex")
});

/// Parses a line; `None` when it is not an access-log line.
pub fn parse_line(line: &str) -> Option<AccessLine> {
    if line.starts_with('{') {
        return parse_json(line);
    }
    if line.starts_with(|c: char| c.is_ascii_lowercase()) && line.contains("status=") {
        return parse_logfmt(line);
    }
    // Cheap path for the bulk of lines: only 502/504 need the regex.
    let b = line.as_bytes();
    let candidate = memchr::memmem::find(b, b"\" 502 ").is_some()
        || memchr::memmem::find(b, b"\" 504 ").is_some();
    if !candidate {
        return looks_like_combined(b).then_some(AccessLine::Other);
    }
    let c = COMBINED.captures(line)?;
    let status: u16 = c[4].parse().ok()?;
    if !matches!(status, 502 | 504) {
        return Some(AccessLine::Other);
    }
    Some(AccessLine::Failure(AccessEntry {
        time: time::parse_access_time(c[2].as_bytes()),
        status,
        client: Some(c[1].to_string()),
        request: Some(c[3].to_string()),
        request_id: None,
        conn: None,
        upstream_addr: None,
    }))
}

/// `key=value key="quoted value" ...` formats (log_format with named fields).
fn parse_logfmt(line: &str) -> Option<AccessLine> {
    let mut fields: Vec<(&str, String)> = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        let eq = rest.find('=')?;
        let key = rest[..eq].trim();
        if key.is_empty() || key.contains(' ') {
            return None;
        }
        let after = &rest[eq + 1..];
        let (value, next) = if let Some(q) = after.strip_prefix('"') {
            // Values may contain escaped quotes (\" or \x22).
            let mut end = None;
            let b = q.as_bytes();
            let mut i = 0;
            while i < b.len() {
                match b[i] {
                    b'\\' => i += 2,
                    b'"' => {
                        end = Some(i);
                        break;
                    }
                    _ => i += 1,
                }
            }
            let end = end?;
            (q[..end].to_string(), &q[end + 1..])
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        fields.push((key, value));
        rest = next.trim_start();
    }
    let get = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| fields.iter().find(|(f, _)| f == k).map(|(_, v)| v.clone()))
            .filter(|v| !v.is_empty() && v != "-")
    };
    let status: u16 = get(&["status"])?.parse().ok()?;
    if !matches!(status, 502 | 504) {
        return Some(AccessLine::Other);
    }
    let time = get(&["msec"])
        .and_then(|s| s.parse::<f64>().ok())
        .map(|secs| EpochMs((secs * 1000.0) as i64))
        .or_else(|| {
            get(&["time_iso8601", "time", "ts"])
                .and_then(|s| time::parse_iso_with_offset(s.as_bytes()).map(|(t, _)| t))
        })
        .or_else(|| get(&["time_local"]).and_then(|s| time::parse_access_time(s.as_bytes())));
    Some(AccessLine::Failure(AccessEntry {
        time,
        status,
        client: get(&["remote_addr", "client"]),
        request: get(&["request"]),
        request_id: get(&["request_id", "rid", "req_id"]),
        conn: get(&["connection", "conn"]).and_then(|s| s.parse().ok()),
        upstream_addr: get(&["upstream_addr", "upstream"]),
    }))
}

fn looks_like_combined(b: &[u8]) -> bool {
    memchr::memmem::find(b, b" [").is_some() && memchr::memmem::find(b, b"] \"").is_some()
}

fn parse_json(line: &str) -> Option<AccessLine> {
    let v: Value = serde_json::from_str(line).ok()?;
    let obj = v.as_object()?;
    let get = |keys: &[&str]| {
        keys.iter()
            .find_map(|k| obj.get(*k))
            .filter(|v| !v.is_null())
    };
    let as_string = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let as_u64 = |v: &Value| match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    };
    let status = get(&["status", "http_status", "response_status"]).and_then(as_u64)?;
    let status = u16::try_from(status).ok()?;
    if !matches!(status, 502 | 504) {
        return Some(AccessLine::Other);
    }
    let time = get(&["msec"])
        .and_then(|v| match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        })
        .map(|secs| EpochMs((secs * 1000.0) as i64))
        .or_else(|| {
            get(&["time_iso8601", "time", "timestamp", "@timestamp"])
                .and_then(Value::as_str)
                .and_then(|s| time::parse_iso_with_offset(s.as_bytes()).map(|(t, _)| t))
        })
        .or_else(|| {
            get(&["time_local"])
                .and_then(Value::as_str)
                .and_then(|s| time::parse_access_time(s.as_bytes()))
        });
    Some(AccessLine::Failure(AccessEntry {
        time,
        status,
        client: get(&["remote_addr", "client", "client_ip"]).and_then(as_string),
        request: get(&["request"]).and_then(as_string),
        request_id: get(&["request_id", "req_id", "id"]).and_then(as_string),
        conn: get(&["connection", "conn"]).and_then(as_u64),
        upstream_addr: get(&["upstream_addr", "upstream"]).and_then(as_string),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined() {
        let l = parse_line(r#"203.0.113.7 - - [02/Apr/2026:14:23:17 +0000] "GET /index.php HTTP/1.1" 502 157 "-" "curl/8.5.0""#).unwrap();
        let AccessLine::Failure(e) = l else {
            panic!("{l:?}")
        };
        assert_eq!(e.status, 502);
        assert_eq!(e.time, Some(EpochMs(1_775_139_797_000)));
        assert_eq!(e.client.as_deref(), Some("203.0.113.7"));
        assert_eq!(e.request.as_deref(), Some("GET /index.php HTTP/1.1"));
        assert_eq!(
            parse_line(
                r#"203.0.113.7 - - [02/Apr/2026:14:23:17 +0000] "GET / HTTP/1.1" 200 612 "-" "curl/8.5.0""#
            ),
            Some(AccessLine::Other)
        );
        assert_eq!(parse_line("garbage"), None);
    }

    #[test]
    fn key_value_format() {
        let l = parse_line(r#"rid=7b51 conn=1 status=502 request="GET /oom.php HTTP/1.1" upstream_addr="unix:/run/www.sock" msec=1775139797.000"#).unwrap();
        let AccessLine::Failure(e) = l else {
            panic!("{l:?}")
        };
        assert_eq!(e.request_id.as_deref(), Some("7b51"));
        assert_eq!(e.conn, Some(1));
        assert_eq!(e.request.as_deref(), Some("GET /oom.php HTTP/1.1"));
        assert_eq!(e.time, Some(EpochMs(1_775_139_797_000)));
        assert_eq!(
            parse_line("rid=1 conn=2 status=200 request=\"GET / HTTP/1.1\""),
            Some(AccessLine::Other)
        );
    }

    #[test]
    fn json_with_request_id_and_connection() {
        let l = parse_line(r#"{"time_iso8601":"2026-04-02T14:23:17+00:00","remote_addr":"203.0.113.7","request":"GET /x.php HTTP/1.1","status":"504","request_id":"abc123","connection":"5678","upstream_addr":"unix:/run/php/php8.2-fpm.sock"}"#).unwrap();
        let AccessLine::Failure(e) = l else {
            panic!("{l:?}")
        };
        assert_eq!(e.status, 504);
        assert_eq!(e.conn, Some(5678));
        assert_eq!(e.request_id.as_deref(), Some("abc123"));
        assert_eq!(e.time, Some(EpochMs(1_775_139_797_000)));
        let l = parse_line(r#"{"msec":"1775139797.250","status":502,"connection":7}"#).unwrap();
        let AccessLine::Failure(e) = l else {
            panic!("{l:?}")
        };
        assert_eq!(e.time, Some(EpochMs(1_775_139_797_250)));
        assert_eq!(parse_line(r#"{"status":200}"#), Some(AccessLine::Other));
        assert_eq!(parse_line(r#"{"status":"#), None);
    }
}
