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
    /// `error` for a failure, `warn` for a recovered request (see [`Record::summarize`]);
    /// `None` in records of modules older than the field.
    #[serde(default, deserialize_with = "lenient::level")]
    pub level: Option<Level>,
    /// One human line: status, method, URI, what failed, errno name, phase.
    #[serde(default)]
    pub msg: Option<String>,
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
    /// The last failed attempt's `errno_name` and `phase` (as `$gatelog_errno` and
    /// `$gatelog_phase`), so log tools need not reach into `attempts`.
    #[serde(default)]
    pub errno_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::phase")]
    pub phase: Option<Phase>,
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

/// NGINX's message without its trailing ` (ERRNO: strerror)`, which the summary
/// line replaces by the errno's name.
fn without_errno(message: &str, errno: Option<i32>) -> &str {
    let Some(n) = errno else { return message };
    if let Some(i) = message.rfind(" (") {
        let tail = &message[i + 2..];
        let number = tail
            .split_once(':')
            .and_then(|(d, _)| d.parse::<i32>().ok());
        if tail.ends_with(')') && number == Some(n) {
            return &message[..i];
        }
    }
    message
}

/// Deserializers that turn `null` and unknown vocabulary into absence.
mod lenient {
    use std::fmt;

    use serde::de::{self, Visitor};
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

    /// A word of a vocabulary: `None` when null or not known to this version. Read
    /// without copying it into a `String`: records carry several per attempt.
    fn word<'de, D, T>(d: D, known: impl Fn(&str) -> Option<T>) -> Result<Option<T>, D::Error>
    where
        D: Deserializer<'de>,
    {
        d.deserialize_option(Word(known))
    }

    struct Word<F>(F);

    impl<'de, T, F: Fn(&str) -> Option<T>> Visitor<'de> for Word<F> {
        type Value = Option<T>;

        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a string or null")
        }

        fn visit_none<E: de::Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Option<T>, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Option<T>, D::Error> {
            d.deserialize_str(self)
        }

        fn visit_str<E: de::Error>(self, s: &str) -> Result<Option<T>, E> {
            Ok((self.0)(s))
        }
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

/// The last failed attempt: the last one with an errno or a phase. The same attempt
/// gives `$gatelog_errno`/`$gatelog_phase` and the record's top-level `errno_name`/`phase`.
pub fn last_failed(attempts: &[Attempt]) -> Option<&Attempt> {
    attempts
        .iter()
        .rev()
        .find(|a| a.errno.is_some() || a.phase.is_some())
}

impl Record {
    /// Sets the fields log tools key on (`level`, `msg`, `errno_name`, `phase`) from
    /// the others; the module calls it once the attempts are in.
    pub fn summarize(&mut self) {
        self.level = Some(if self.recovered {
            Level::Warn
        } else {
            Level::Error
        });
        let last = last_failed(&self.attempts);
        self.errno_name = last.and_then(|a| a.errno_name.clone());
        self.phase = last.and_then(|a| a.phase);
        self.msg = Some(self.summary_line());
    }

    /// `502 GET /index.php: connect() to unix:/run/php/php8.2-fpm.sock failed (ENOENT, connect)`:
    /// what happened in the last attempt that went wrong, its errno spelled as a name
    /// instead of NGINX's `(2: No such file or directory)`.
    fn summary_line(&self) -> String {
        use std::fmt::Write;
        let mut line = String::with_capacity(64 + self.uri.len());
        let _ = write!(line, "{} {} ", self.status, self.method);
        // One line whatever the URI holds: control characters as NGINX's access log escapes them.
        for c in self.uri.chars() {
            if c.is_control() && c.is_ascii() {
                let _ = write!(line, "\\x{:02X}", c as u32);
            } else {
                line.push(c);
            }
        }
        // The last attempt with an event; an upstream's own 5xx has no errno or phase.
        let Some(a) = self.attempts.iter().rev().find(|a| a.event.is_some()) else {
            return line;
        };
        line.push_str(if self.recovered {
            ": recovered after "
        } else {
            ": "
        });
        match (&a.message, a.event) {
            (Some(m), _) => line.push_str(without_errno(m, a.errno)),
            (None, Some(Event::UpstreamStatus)) => match a.status {
                Some(s) => {
                    let _ = write!(line, "upstream answered {s}");
                }
                None => line.push_str("upstream answered with an error status"),
            },
            (None, Some(e)) => line.push_str(e.slug()),
            (None, None) => {}
        }
        // The name, else the bare number (one the C library does not know); the phase.
        let _ = match (a.errno_name.as_deref(), a.errno, a.phase) {
            (Some(n), _, Some(p)) => write!(line, " ({n}, {})", p.slug()),
            (Some(n), _, None) => write!(line, " ({n})"),
            (None, Some(n), Some(p)) => write!(line, " ({n}, {})", p.slug()),
            (None, Some(n), None) => write!(line, " ({n})"),
            (None, None, Some(p)) => write!(line, " ({})", p.slug()),
            (None, None, None) => Ok(()),
        };
        line
    }

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
        let mut r = Record {
            schema: SCHEMA.into(),
            time: "2026-04-02T14:23:17.291+00:00".into(),
            level: None,
            msg: None,
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
            errno_name: None,
            phase: None,
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
        };
        r.summarize();
        r
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
    const SAMPLE_LINE: &str = r#"{"schema":"gatelog.v1","time":"2026-04-02T14:23:17.291+00:00","level":"error","msg":"502 GET /a\"b\\x0Ac%FF?x=\\x01: connect() to unix:/run/php/php8.2-fpm.sock failed (ENOENT, connect)","pid":1234,"conn":5678,"request_id":"0123456789abcdef0123456789abcdef","status":502,"origin":"nginx","recovered":false,"client":"127.0.0.1","server":"example.com","host":"example.com","method":"GET","uri":"/a\"b\nc%FF?x=\u0001","protocol":"HTTP/1.1","request_time_ms":3,"upstream":"unix:/run/php/php8.2-fpm.sock","errno_name":"ENOENT","phase":"connect","attempts":[{"peer":"unix:/run/php/php8.2-fpm.sock","phase":"connect","errno":2,"errno_name":"ENOENT","error":"No such file or directory","event":"connect_failed","message":"connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory)","level":"crit","status":502,"connect_ms":null,"header_ms":null,"response_ms":0}],"timeouts_ms":{"connect":60000,"send":60000,"read":60000},"fastcgi_stderr":null}"#;

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
            r#""upstream":"unix:/run/php/php8.2-fpm.sock","upstream_protocol":"fastcgi","errno_name""#
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
            r#"{"schema":"gatelog.v1","time":"2026-04-02T14:23:17.000+00:00","pid":null,"conn":7,"status":502,"origin":"proxy","recovered":null,"client":null,"method":"GET","uri":"/x","protocol":null,"upstream":null,"upstream_protocol":"spdy","shard":3,"attempts":[{"event":"quic_failed","phase":"handshake","level":"debug","errno":71},{"event":"reset","phase":"header","errno":104,"peer":"127.0.0.1:9000"},{"event":"re\u0073et","phase":null,"level":null}],"fastcgi_stderr":{"text":"PHP Fatal error","truncated":null}}"#,
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
        // A word written with an escape, and words that are null.
        let c = &r.attempts[2];
        assert_eq!(
            (c.event, c.phase, c.level),
            (Some(Event::Reset), None, None)
        );
        assert_eq!(r.fastcgi_stderr.map(|s| s.truncated), Some(false));
        // A word that is not a string is not a record.
        assert!(Record::from_json_line(
            r#"{"schema":"gatelog.v1","time":"2026-04-02T14:23:17.000+00:00","status":502,"phase":3}"#
        )
        .is_none());
    }

    fn attempt(peer: &str, status: u16) -> Attempt {
        Attempt {
            peer: Some(peer.into()),
            phase: None,
            errno: None,
            errno_name: None,
            error: None,
            event: None,
            message: None,
            level: None,
            status: Some(status),
            connect_ms: Some(0),
            header_ms: Some(0),
            response_ms: Some(0),
        }
    }

    #[test]
    fn summary_of_a_failure_names_the_errno_and_phase() {
        let r = sample();
        assert_eq!(r.level, Some(Level::Error));
        assert_eq!(r.errno_name.as_deref(), Some("ENOENT"));
        assert_eq!(r.phase, Some(Phase::Connect));
        let mut plain = r.clone();
        plain.uri = "/index.php".into();
        plain.summarize();
        assert_eq!(
            plain.msg.as_deref(),
            Some("502 GET /index.php: connect() to unix:/run/php/php8.2-fpm.sock failed (ENOENT, connect)")
        );
    }

    #[test]
    fn summary_of_a_recovered_request_and_an_upstream_answer() {
        // Real attempts: NGINX's "upstream timed out" (errno 110 it synthesizes), then a good peer.
        let mut timed_out = attempt("127.0.0.1:9000", 504);
        timed_out.phase = Some(Phase::Header);
        timed_out.errno = Some(110);
        timed_out.errno_name = Some("ETIMEDOUT".into());
        timed_out.error = Some("Connection timed out".into());
        timed_out.event = Some(Event::TimedOut);
        timed_out.message = Some("upstream timed out (110: Connection timed out)".into());
        timed_out.level = Some(Level::Error);
        let mut r = sample();
        r.status = 200;
        r.recovered = true;
        r.origin = Origin::Upstream;
        r.uri = "/retry".into();
        r.attempts = vec![timed_out, attempt("127.0.0.1:9001", 200)];
        r.summarize();
        assert_eq!(r.level, Some(Level::Warn));
        assert_eq!(
            (r.errno_name.as_deref(), r.phase),
            (Some("ETIMEDOUT"), Some(Phase::Header))
        );
        assert_eq!(
            r.msg.as_deref(),
            Some("200 GET /retry: recovered after upstream timed out (ETIMEDOUT, header)")
        );
        assert!(r.to_json().contains(r#""level":"warn""#));

        // The upstream itself answered 502: no errno, no phase, nothing NGINX printed.
        let mut own = attempt("127.0.0.1:9001", 502);
        own.event = Some(Event::UpstreamStatus);
        r.status = 502;
        r.recovered = false;
        r.uri = "/upstream502".into();
        r.attempts = vec![own];
        r.summarize();
        assert_eq!(r.level, Some(Level::Error));
        assert_eq!((r.errno_name.as_deref(), r.phase), (None, None));
        assert_eq!(
            r.msg.as_deref(),
            Some("502 GET /upstream502: upstream answered 502")
        );
        let json = r.to_json();
        assert!(json.contains(r#""errno_name":null,"phase":null"#), "{json}");

        // No attempt at all: status and request only.
        r.attempts.clear();
        r.summarize();
        assert_eq!(r.msg.as_deref(), Some("502 GET /upstream502"));
    }

    #[test]
    fn the_errno_part_is_cut_only_when_it_is_the_attempts_errno() {
        let m = "connect() failed (111: Connection refused)";
        assert_eq!(without_errno(m, Some(111)), "connect() failed");
        assert_eq!(without_errno(m, Some(2)), m);
        assert_eq!(without_errno(m, None), m);
        assert_eq!(
            without_errno("upstream prematurely closed connection", Some(104)),
            "upstream prematurely closed connection"
        );
    }

    #[test]
    fn summary_fields_are_optional_when_reading() {
        let r = Record::from_json_line(
            r#"{"schema":"gatelog.v1","time":"2026-04-02T14:23:17.000+00:00","status":502}"#,
        )
        .expect("record without the summary fields");
        assert_eq!(
            (r.level, r.msg, r.errno_name, r.phase),
            (None, None, None, None)
        );
        let r = Record::from_json_line(
            r#"{"schema":"gatelog.v1","time":"2026-04-02T14:23:17.000+00:00","level":"fatal","msg":null,"errno_name":"ENOENT","phase":"handshake","status":502}"#,
        )
        .expect("record with words from a newer module");
        assert_eq!((r.level, r.phase), (None, None));
        assert_eq!(r.errno_name.as_deref(), Some("ENOENT"));
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
        assert!(pos("time") < pos("level") && pos("level") < pos("msg") && pos("msg") < pos("pid"));
        assert!(pos("upstream") < pos("errno_name") && pos("errno_name") < pos("phase"));
        assert!(pos("phase") < pos("attempts"));
        assert!(pos("status") < pos("origin"));
        assert!(pos("attempts") < pos("timeouts_ms"));
    }
}
