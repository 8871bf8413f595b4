//! The gatelog.v1 record (docs/gatelog.v1.schema.json) and its one-line encoding.

use serde::{Deserialize, Serialize};

use crate::event::{Event, Level, Phase};

pub const SCHEMA: &str = "gatelog.v1";

/// One request answered 502/504 (or recovered after failed attempts).
/// Field order is the order in the JSON line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub schema: String,
    pub time: String,
    pub pid: u64,
    pub conn: u64,
    /// `$request_id`; `None` when nothing else in the configuration uses it.
    pub request_id: Option<String>,
    pub status: u16,
    pub origin: Origin,
    pub recovered: bool,
    pub client: String,
    pub server: String,
    pub host: Option<String>,
    pub method: String,
    pub uri: String,
    pub protocol: String,
    pub request_time_ms: u64,
    pub upstream: Option<String>,
    pub attempts: Vec<Attempt>,
    pub timeouts_ms: Option<Timeouts>,
    pub fastcgi_stderr: Option<FastcgiStderr>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// NGINX generated the status because an attempt failed.
    Nginx,
    /// The upstream itself sent the status.
    Upstream,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    pub peer: Option<String>,
    pub phase: Option<Phase>,
    pub errno: Option<i32>,
    pub errno_name: Option<String>,
    pub error: Option<String>,
    pub event: Option<Event>,
    pub message: Option<String>,
    pub level: Option<Level>,
    pub status: Option<u16>,
    pub connect_ms: Option<u64>,
    pub header_ms: Option<u64>,
    pub response_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    pub connect: u64,
    pub send: u64,
    pub read: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FastcgiStderr {
    pub text: String,
    pub truncated: bool,
}

impl Record {
    /// Appends the record as one JSON line (with the trailing newline) to `out`.
    pub fn write_line(&self, out: &mut Vec<u8>) {
        // Serializing plain structs of strings and numbers into a Vec cannot fail.
        if serde_json::to_writer(&mut *out, self).is_ok() {
            out.push(b'\n');
        }
    }

    /// The record as one JSON line without the newline.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::text::lossless_text;

    fn sample() -> Record {
        Record {
            schema: SCHEMA.into(),
            time: "2026-04-02T14:23:17.291+00:00".into(),
            pid: 1234,
            conn: 5678,
            request_id: Some("0123456789abcdef0123456789abcdef".into()),
            status: 502,
            origin: Origin::Nginx,
            recovered: false,
            client: "127.0.0.1".into(),
            server: "example.com".into(),
            host: Some("example.com".into()),
            method: "GET".into(),
            uri: lossless_text(b"/a\"b\nc\xff?x=\x01"),
            protocol: "HTTP/1.1".into(),
            request_time_ms: 3,
            upstream: Some("unix:/run/php/php8.2-fpm.sock".into()),
            attempts: vec![Attempt {
                peer: Some("unix:/run/php/php8.2-fpm.sock".into()),
                phase: Some(Phase::Connect),
                errno: Some(2),
                errno_name: Some("ENOENT".into()),
                error: Some("No such file or directory".into()),
                event: Some(Event::ConnectFailed),
                message: Some("connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory)".into()),
                level: Some(Level::Crit),
                status: Some(502),
                connect_ms: None,
                header_ms: None,
                response_ms: Some(0),
            }],
            timeouts_ms: Some(Timeouts { connect: 60000, send: 60000, read: 60000 }),
            fastcgi_stderr: None,
        }
    }

    #[test]
    fn one_valid_json_line_whatever_the_uri() {
        let mut out = Vec::new();
        sample().write_line(&mut out);
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        assert_eq!(out.last(), Some(&b'\n'));
        let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(v["uri"], "/a\"b\nc%FF?x=\u{1}");
        assert_eq!(v["attempts"][0]["phase"], "connect");
        assert_eq!(v["attempts"][0]["event"], "connect_failed");
        assert_eq!(v["attempts"][0]["level"], "crit");
        assert_eq!(v["origin"], "nginx");
        assert!(v["fastcgi_stderr"].is_null());
    }

    #[test]
    fn round_trips() {
        let r = sample();
        let back: Record = serde_json::from_str(&r.to_json()).expect("parse");
        assert_eq!(back, r);
    }

    #[test]
    fn field_order_follows_the_schema() {
        let json = sample().to_json();
        let pos = |k: &str| json.find(&format!("\"{k}\":")).expect(k);
        assert!(pos("schema") < pos("time"));
        assert!(pos("status") < pos("origin"));
        assert!(pos("attempts") < pos("timeouts_ms"));
    }
}
