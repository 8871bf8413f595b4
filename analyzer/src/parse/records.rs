//! gatelog.v1 records: the JSON lines the NGINX module writes (schema
//! docs/gatelog.v1.schema.json). Own serde structs, tolerant of missing fields, so
//! that a record from a newer or older module still yields what it has.

use serde::Deserialize;

use crate::model::{AttemptEvent, Phase};
use crate::time::{self, EpochMs};

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Record {
    pub schema: String,
    pub time: String,
    #[serde(default)]
    pub pid: Option<u32>,
    #[serde(default)]
    pub conn: Option<u64>,
    #[serde(default)]
    pub request_id: Option<String>,
    pub status: u16,
    #[serde(default)]
    pub origin: Option<String>,
    #[serde(default)]
    pub recovered: bool,
    #[serde(default)]
    pub client: Option<String>,
    #[serde(default)]
    pub server: Option<String>,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub uri: Option<String>,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub request_time_ms: Option<u64>,
    #[serde(default)]
    pub upstream: Option<String>,
    #[serde(default)]
    pub attempts: Vec<RecordAttempt>,
    #[serde(default)]
    pub timeouts_ms: Option<RecordTimeouts>,
    #[serde(default)]
    pub fastcgi_stderr: Option<RecordStderr>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct RecordAttempt {
    #[serde(default)]
    pub peer: Option<String>,
    #[serde(default)]
    pub phase: Option<String>,
    #[serde(default)]
    pub errno: Option<i32>,
    #[serde(default)]
    pub errno_name: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub level: Option<String>,
    #[serde(default)]
    pub status: Option<u16>,
}

impl RecordAttempt {
    pub fn event(&self) -> Option<AttemptEvent> {
        self.event.as_deref().and_then(AttemptEvent::from_slug)
    }

    pub fn phase(&self) -> Option<Phase> {
        self.phase.as_deref().and_then(Phase::from_slug)
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
pub struct RecordTimeouts {
    pub connect: u64,
    pub send: u64,
    pub read: u64,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct RecordStderr {
    pub text: String,
    #[serde(default)]
    pub truncated: bool,
}

impl Record {
    /// When the request ended.
    pub fn instant(&self) -> Option<EpochMs> {
        time::parse_iso_with_offset(self.time.as_bytes()).map(|(t, _)| t)
    }

    /// Whether this record is a 502/504 failure (not a recovered request).
    pub fn is_failure(&self) -> bool {
        !self.recovered && matches!(self.status, 502 | 504)
    }

    /// `METHOD URI PROTOCOL`, as NGINX's `request: "..."` context shows it.
    pub fn request_line(&self) -> Option<String> {
        let method = self.method.as_deref()?;
        let uri = self.uri.as_deref()?;
        Some(match self.protocol.as_deref() {
            Some(p) if !p.is_empty() => format!("{method} {uri} {p}"),
            _ => format!("{method} {uri}"),
        })
    }
}

/// Parses one line; `None` when it is not a gatelog.v1 record.
pub fn parse_line(line: &str) -> Option<Record> {
    let r: Record = serde_json::from_str(line).ok()?;
    (r.schema == "gatelog.v1").then_some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const ENOENT: &str = r#"{"schema":"gatelog.v1","time":"2026-04-02T14:23:17.123+00:00","pid":1234,"conn":5678,"request_id":"4f1c0e6a9b3d2c1e8f7a6b5c4d3e2f10","status":502,"origin":"nginx","recovered":false,"client":"203.0.113.7","server":"example.com","host":"example.com","method":"GET","uri":"/index.php","protocol":"HTTP/1.1","request_time_ms":0,"upstream":"unix:/run/php/php8.2-fpm.sock","attempts":[{"peer":"unix:/run/php/php8.2-fpm.sock","phase":"connect","errno":2,"errno_name":"ENOENT","error":"No such file or directory","event":"connect_failed","message":"connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory)","level":"crit","status":502,"connect_ms":null,"header_ms":null,"response_ms":null}],"timeouts_ms":{"connect":60000,"send":60000,"read":60000},"fastcgi_stderr":null}"#;

    #[test]
    fn parses_a_full_record() {
        let r = parse_line(ENOENT).unwrap();
        assert!(r.is_failure());
        assert_eq!(r.instant(), Some(EpochMs(1_775_139_797_123)));
        assert_eq!(r.conn, Some(5678));
        assert_eq!(r.attempts[0].event(), Some(AttemptEvent::ConnectFailed));
        assert_eq!(r.attempts[0].phase(), Some(Phase::Connect));
        assert_eq!(r.attempts[0].errno, Some(2));
        assert_eq!(r.timeouts_ms.map(|t| t.read), Some(60000));
        assert_eq!(r.request_line().as_deref(), Some("GET /index.php HTTP/1.1"));
    }

    #[test]
    fn recovered_and_foreign_lines() {
        let rec = ENOENT
            .replace("\"recovered\":false", "\"recovered\":true")
            .replace("\"status\":502,\"origin\"", "\"status\":200,\"origin\"");
        assert!(!parse_line(&rec).unwrap().is_failure());
        assert!(parse_line(r#"{"schema":"other","time":"x","status":502}"#).is_none());
        assert!(parse_line("not json").is_none());
        // Missing optional fields are tolerated.
        let r = parse_line(
            r#"{"schema":"gatelog.v1","time":"2026-04-02T14:23:17.000+02:00","status":504}"#,
        )
        .unwrap();
        assert!(r.is_failure());
        assert!(r.attempts.is_empty());
    }
}
