//! gatelog.v1 records: the JSON lines the NGINX module writes (schema
//! docs/gatelog.v1.schema.json), read into the module's own type,
//! `gatelog_record::Record`, which reads leniently: a record from an older or newer
//! module, or a hand-made one, still yields what it has.

pub use gatelog_record::record::{Origin, Record};

use crate::time::{self, EpochMs};

/// Parses one line; `None` when it is not a gatelog.v1 record.
pub fn parse_line(line: &str) -> Option<Record> {
    Record::from_json_line(line)
}

/// When the request ended.
pub fn instant(rec: &Record) -> Option<EpochMs> {
    time::parse_iso_with_offset(rec.time.as_bytes()).map(|(t, _)| t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AttemptEvent, Phase};

    pub const ENOENT: &str = r#"{"schema":"gatelog.v1","time":"2026-04-02T14:23:17.123+00:00","pid":1234,"conn":5678,"request_id":"4f1c0e6a9b3d2c1e8f7a6b5c4d3e2f10","status":502,"origin":"nginx","recovered":false,"client":"203.0.113.7","server":"example.com","host":"example.com","method":"GET","uri":"/index.php","protocol":"HTTP/1.1","request_time_ms":0,"upstream":"unix:/run/php/php8.2-fpm.sock","attempts":[{"peer":"unix:/run/php/php8.2-fpm.sock","phase":"connect","errno":2,"errno_name":"ENOENT","error":"No such file or directory","event":"connect_failed","message":"connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory)","level":"crit","status":502,"connect_ms":null,"header_ms":null,"response_ms":null}],"timeouts_ms":{"connect":60000,"send":60000,"read":60000},"fastcgi_stderr":null}"#;

    #[test]
    fn parses_a_full_record() {
        let r = parse_line(ENOENT).unwrap();
        assert!(r.is_failure());
        assert_eq!(instant(&r), Some(EpochMs(1_775_139_797_123)));
        assert_eq!(r.conn, Some(5678));
        assert_eq!(r.attempts[0].event, Some(AttemptEvent::ConnectFailed));
        assert_eq!(r.attempts[0].phase, Some(Phase::Connect));
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
        assert_eq!(instant(&r), Some(EpochMs(1_775_132_597_000)));
    }

    #[test]
    fn a_failure_from_a_record_keeps_what_it_says_and_nothing_else() {
        use crate::model::{Evidence, Protocol};
        use crate::stream::failure_from_record;
        let ev = || {
            Evidence::new(
                crate::model::EvidenceSource::Record,
                &std::sync::Arc::from("r.jsonl"),
                1,
                "{}",
            )
        };
        let r = parse_line(ENOENT).unwrap();
        let t = instant(&r).unwrap();
        let f = failure_from_record(r, t, ev());
        assert_eq!((f.pid, f.conn, f.status), (Some(1234), Some(5678), 502));
        assert_eq!(f.protocol, Protocol::Unknown);
        assert_eq!(f.client.as_deref(), Some("203.0.113.7"));
        assert_eq!(f.attempts[0].event, AttemptEvent::ConnectFailed);
        // A record that names its protocol (a later module), with fields missing.
        let r = parse_line(
            r#"{"schema":"gatelog.v1","time":"2026-04-02T14:23:17.000+00:00","status":502,"origin":"upstream","upstream":"127.0.0.1:3000","upstream_protocol":"http"}"#,
        )
        .unwrap();
        let f = failure_from_record(r, t, ev());
        assert_eq!(f.protocol, Protocol::Http);
        assert_eq!(
            (f.pid, f.conn, f.client, f.request),
            (None, None, None, None)
        );
        assert_eq!(f.attempts[0].event, AttemptEvent::UpstreamStatus);
    }
}
