//! The gatelog.v1 record (docs/gatelog.v1.schema.json): written strictly by the
//! module as one JSON line, read leniently by the analyzer into the same type.
//!
//! The module fills every field, so its lines always match the schema. A reader meets
//! records from older or newer modules and hand-made ones: a missing or `null` field
//! reads as absent (or empty), an unknown field is ignored, and a vocabulary word
//! this version does not know (an event, phase or level from a newer module) reads as
//! `None` instead of failing the whole line.

use serde::{Deserialize, Serialize};

use crate::event::{Event, Level, Phase};
use crate::protocol::Protocol;

pub const SCHEMA: &str = "gatelog.v1";

/// One request answered 502/504 (or recovered after failed attempts).
/// Field order is the order in the JSON line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub schema: String,
    pub time: String,
    /// Always written; `None` only when a record read lacks it.
    #[serde(default)]
    pub pid: Option<u64>,
    /// Always written; `None` only when a record read lacks it.
    #[serde(default)]
    pub conn: Option<u64>,
    /// `$request_id`; `None` when nothing else in the configuration uses it.
    #[serde(default)]
    pub request_id: Option<String>,
    pub status: u16,
    /// A record read without (or with an unknown) origin counts as NGINX's: every
    /// module version writes it, only hand-made records lack it.
    #[serde(default, deserialize_with = "lenient::origin")]
    pub origin: Origin,
    #[serde(default, deserialize_with = "lenient::null_as_default")]
    pub recovered: bool,
    /// Empty when a record read lacks it (as the next four).
    #[serde(default, deserialize_with = "lenient::null_as_default")]
    pub client: String,
    #[serde(default, deserialize_with = "lenient::null_as_default")]
    pub server: String,
    #[serde(default)]
    pub host: Option<String>,
    #[serde(default, deserialize_with = "lenient::null_as_default")]
    pub method: String,
    #[serde(default, deserialize_with = "lenient::null_as_default")]
    pub uri: String,
    #[serde(default, deserialize_with = "lenient::null_as_default")]
    pub protocol: String,
    /// Always written; `None` only when a record read lacks it.
    #[serde(default)]
    pub request_time_ms: Option<u64>,
    pub upstream: Option<String>,
    /// What NGINX spoke to the upstream. The module does not write it yet (the line
    /// then has no such key); a reader takes it when a record has it.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "lenient::protocol"
    )]
    pub upstream_protocol: Option<Protocol>,
    #[serde(default, deserialize_with = "lenient::null_as_default")]
    pub attempts: Vec<Attempt>,
    #[serde(default)]
    pub timeouts_ms: Option<Timeouts>,
    #[serde(default)]
    pub fastcgi_stderr: Option<FastcgiStderr>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// NGINX generated the status because an attempt failed.
    #[default]
    Nginx,
    /// The upstream itself sent the status.
    Upstream,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attempt {
    #[serde(default)]
    pub peer: Option<String>,
    #[serde(default, deserialize_with = "lenient::phase")]
    pub phase: Option<Phase>,
    #[serde(default)]
    pub errno: Option<i32>,
    #[serde(default)]
    pub errno_name: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default, deserialize_with = "lenient::event")]
    pub event: Option<Event>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default, deserialize_with = "lenient::level")]
    pub level: Option<Level>,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub connect_ms: Option<u64>,
    #[serde(default)]
    pub header_ms: Option<u64>,
    #[serde(default)]
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
    #[serde(default, deserialize_with = "lenient::null_as_default")]
    pub truncated: bool,
}

/// Deserializers that turn `null` and unknown vocabulary into absence.
mod lenient {
    use serde::{Deserialize, Deserializer};

    use crate::event::{Event, Level, Phase};
    use crate::protocol::Protocol;

    use super::Origin;

    pub fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de> + Default,
    {
        Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
    }

    /// A word of a vocabulary: `None` when null or not known to this version.
    fn word<'de, D, T>(d: D, known: impl Fn(&str) -> Option<T>) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
    {
        Ok(Option::<String>::deserialize(d)?.and_then(|s| known(&s)))
    }

    pub fn event<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Event>, D::Error> {
        word(d, Event::from_slug)
    }

    pub fn phase<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Phase>, D::Error> {
        word(d, Phase::from_slug)
    }

    pub fn level<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Level>, D::Error> {
        word(d, |s| Level::from_word(s.as_bytes()))
    }

    pub fn protocol<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Protocol>, D::Error> {
        word(d, |s| Some(Protocol::from_scheme(s)))
    }

    pub fn origin<'de, D: Deserializer<'de>>(d: D) -> Result<Origin, D::Error> {
        let known = |s: &str| match s {
            "nginx" => Some(Origin::Nginx),
            "upstream" => Some(Origin::Upstream),
            _ => None,
        };
        Ok(word(d, known)?.unwrap_or_default())
    }
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

    /// Reads one line leniently (see the module header); `None` when it is not JSON,
    /// not an object of this shape, or not a gatelog.v1 record.
    pub fn from_json_line(line: &str) -> Option<Record> {
        let r: Record = serde_json::from_str(line).ok()?;
        (r.schema == SCHEMA).then_some(r)
    }

    /// Whether this record is a 502/504 failure (not a recovered request).
    pub fn is_failure(&self) -> bool {
        !self.recovered && matches!(self.status, 502 | 504)
    }

    /// `METHOD URI PROTOCOL`, as NGINX's `request: "..."` context shows it; `None`
    /// when the record lacks the method or the URI.
    pub fn request_line(&self) -> Option<String> {
        if self.method.is_empty() || self.uri.is_empty() {
            return None;
        }
        Some(if self.protocol.is_empty() {
            format!("{} {}", self.method, self.uri)
        } else {
            format!("{} {} {}", self.method, self.uri, self.protocol)
        })
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
            pid: Some(1234),
            conn: Some(5678),
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
            request_time_ms: Some(3),
            upstream: Some("unix:/run/php/php8.2-fpm.sock".into()),
            upstream_protocol: None,
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

    /// What the module writes for `sample()`, byte for byte: reading leniently must not
    /// change the writer's output.
    const SAMPLE_LINE: &str = r#"{"schema":"gatelog.v1","time":"2026-04-02T14:23:17.291+00:00","pid":1234,"conn":5678,"request_id":"0123456789abcdef0123456789abcdef","status":502,"origin":"nginx","recovered":false,"client":"127.0.0.1","server":"example.com","host":"example.com","method":"GET","uri":"/a\"b\nc%FF?x=\u0001","protocol":"HTTP/1.1","request_time_ms":3,"upstream":"unix:/run/php/php8.2-fpm.sock","attempts":[{"peer":"unix:/run/php/php8.2-fpm.sock","phase":"connect","errno":2,"errno_name":"ENOENT","error":"No such file or directory","event":"connect_failed","message":"connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory)","level":"crit","status":502,"connect_ms":null,"header_ms":null,"response_ms":0}],"timeouts_ms":{"connect":60000,"send":60000,"read":60000},"fastcgi_stderr":null}"#;

    #[test]
    fn round_trips_through_the_lenient_reader() {
        let r = sample();
        assert_eq!(r.to_json(), SAMPLE_LINE);
        let back = Record::from_json_line(&r.to_json()).expect("parse");
        assert_eq!(back, r);
        assert_eq!(back.to_json(), SAMPLE_LINE);
        let mut with_protocol = r.clone();
        with_protocol.upstream_protocol = Some(crate::Protocol::Fastcgi);
        let json = with_protocol.to_json();
        assert!(json.contains(
            r#""upstream":"unix:/run/php/php8.2-fpm.sock","upstream_protocol":"fastcgi","attempts""#
        ));
        assert_eq!(Record::from_json_line(&json), Some(with_protocol));
    }

    #[test]
    fn reads_sparse_old_and_newer_records() {
        // Only what every version had: schema, time, status.
        let r = Record::from_json_line(
            r#"{"schema":"gatelog.v1","time":"2026-04-02T14:23:17.000+02:00","status":504}"#,
        )
        .expect("sparse record");
        assert!(r.is_failure());
        assert_eq!((r.pid, r.conn, r.request_time_ms), (None, None, None));
        assert!(r.attempts.is_empty() && r.client.is_empty());
        assert_eq!(r.origin, Origin::Nginx);
        assert_eq!(r.request_line(), None);
        // null everywhere, keys this version does not know, words from a newer module.
        let r = Record::from_json_line(
            r#"{"schema":"gatelog.v1","time":"2026-04-02T14:23:17.000+00:00","pid":null,"conn":7,"status":502,"origin":"proxy","recovered":null,"client":null,"method":"GET","uri":"/x","protocol":null,"upstream":null,"upstream_protocol":"spdy","shard":3,"attempts":[{"event":"quic_failed","phase":"handshake","level":"debug","errno":71},{"event":"reset","phase":"header","errno":104,"peer":"127.0.0.1:9000"}],"fastcgi_stderr":{"text":"PHP Fatal error","truncated":null}}"#,
        )
        .expect("lenient record");
        assert_eq!((r.pid, r.conn), (None, Some(7)));
        assert_eq!(r.origin, Origin::Nginx);
        assert_eq!(r.request_line().as_deref(), Some("GET /x"));
        assert_eq!(r.upstream_protocol, Some(crate::Protocol::Unknown));
        let a = &r.attempts[0];
        assert_eq!(
            (a.event, a.phase, a.level, a.errno),
            (None, None, None, Some(71))
        );
        let b = &r.attempts[1];
        assert_eq!(
            (b.event, b.phase),
            (Some(Event::Reset), Some(Phase::Header))
        );
        assert_eq!(r.fastcgi_stderr.map(|s| s.truncated), Some(false));
    }

    #[test]
    fn rejects_what_is_not_a_record() {
        assert!(Record::from_json_line(r#"{"schema":"other","time":"x","status":502}"#).is_none());
        assert!(Record::from_json_line("not json").is_none());
        assert!(Record::from_json_line(r#"{"schema":"gatelog.v1","time":"x"}"#).is_none());
        assert!(
            Record::from_json_line(r#"{"schema":"gatelog.v1","time":"x","status":"502"}"#)
                .is_none()
        );
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
