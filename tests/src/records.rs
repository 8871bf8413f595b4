//! gatelog records: reading the JSON lines the module writes, finding a request's
//! record, its time; [`validate`] checks one against docs/gatelog.v1.schema.json
//! (through [`crate::schema`]).

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::schema;

/// Reads the records file: every line must be one JSON object; the file must end
/// with a newline. Missing file = no records.
pub fn read(path: &Path) -> Result<Vec<Value>, String> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("reading {}: {e}", path.display())),
    };
    parse_lines(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses JSON lines (one object per line, newline-terminated).
pub fn parse_lines(bytes: &[u8]) -> Result<Vec<Value>, String> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let text = std::str::from_utf8(bytes).map_err(|e| format!("records are not UTF-8: {e}"))?;
    let Some(body) = text.strip_suffix('\n') else {
        return Err(format!(
            "last record is not newline-terminated (a partial write?): {:?}",
            tail(text)
        ));
    };
    let mut out = Vec::new();
    for (i, line) in body.split('\n').enumerate() {
        let v: Value = serde_json::from_str(line)
            .map_err(|e| format!("line {} is not one JSON value ({e}): {line:?}", i + 1))?;
        if !v.is_object() {
            return Err(format!("line {} is not a JSON object: {line}", i + 1));
        }
        out.push(v);
    }
    Ok(out)
}

fn tail(s: &str) -> &str {
    let mut start = s.len().saturating_sub(200);
    while !s.is_char_boundary(start) {
        start -= 1;
    }
    &s[start..]
}

/// Polls the records file until it holds at least `n` complete records (records are
/// written in NGINX's log phase, which may run after the client got its answer).
pub fn wait_for(path: &Path, n: usize, timeout: Duration) -> Result<Vec<Value>, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let got = read(path);
        match &got {
            Ok(v) if v.len() >= n => return got,
            _ if Instant::now() >= deadline => {
                return match got {
                    Ok(v) => Err(format!(
                        "expected at least {n} record(s) in {} within {timeout:?}, found {}{}",
                        path.display(),
                        v.len(),
                        if v.is_empty() {
                            String::new()
                        } else {
                            format!(
                                ": {}",
                                v.iter()
                                    .map(|r| r.to_string())
                                    .collect::<Vec<_>>()
                                    .join("\n")
                            )
                        }
                    )),
                    Err(e) => Err(e),
                }
            }
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Validates `v` against the record schema; returns every violation.
pub fn validate(v: &Value) -> Result<(), String> {
    schema::docs(schema::RECORD)?.validate(v).map_err(|errs| {
        format!(
            "record violates docs/{}:\n  {}\nrecord: {v}",
            schema::RECORD,
            errs.join("\n  ")
        )
    })
}

/// Looks a record up by `request_id`.
pub fn by_request_id<'a>(records: &'a [Value], rid: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| r.get("request_id").and_then(|v| v.as_str()) == Some(rid))
        .collect()
}

/// Parses an RFC 3339 time with milliseconds and offset into Unix milliseconds.
pub fn parse_time_ms(t: &str) -> Option<i64> {
    let b = t.as_bytes();
    if b.len() != 29 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'.' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, s, ms) = (num(11..13)?, num(14..16)?, num(17..19)?, num(20..23)?);
    let sign = match b[23] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (oh, om) = (num(24..26)?, num(27..29)?);
    // Days from civil (Howard Hinnant).
    let y2 = if mo <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    let secs = days * 86400 + h * 3600 + mi * 60 + s - sign * (oh * 3600 + om * 60);
    Some(secs * 1000 + ms)
}

#[cfg(test)]
pub(crate) mod tests_support {
    /// The current UTC time as a record writes it.
    pub fn now_rfc3339() -> String {
        let ms = crate::lab::now_ms();
        let (secs, milli) = (ms.div_euclid(1000), ms.rem_euclid(1000));
        let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
        // Civil from days (Howard Hinnant).
        let z = days + 719468;
        let era = z.div_euclid(146097);
        let doe = z - era * 146097;
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{milli:03}+00:00",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60
        )
    }

    #[test]
    fn round_trips() {
        let t = now_rfc3339();
        let back = super::parse_time_ms(&t).expect("parses");
        assert!((crate::lab::now_ms() - back).abs() < 1000, "{t}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_parses() {
        assert_eq!(parse_time_ms("1970-01-01T00:00:01.5000+00:00"), None);
        assert_eq!(parse_time_ms("1970-01-01T00:00:01.500+00:00"), Some(1500));
        assert_eq!(parse_time_ms("1970-01-01T01:00:00.000+01:00"), Some(0));
        assert_eq!(
            parse_time_ms("2026-11-23T21:30:01.123+01:00"),
            Some(1_795_465_801_123)
        );
    }

    #[test]
    fn lines_must_be_complete_objects() {
        assert!(parse_lines(b"{\"a\":1}\n{\"b\":2}\n").is_ok());
        assert!(parse_lines(b"{\"a\":1}\n{\"b\":").is_err());
        assert!(parse_lines(b"{\"a\":1}\n\n").is_err());
        assert!(parse_lines(b"[1]\n").is_err());
    }

    #[test]
    fn schema_check_catches_violations() {
        let good = serde_json::json!({
            "schema": "gatelog.v1", "time": "2026-11-23T21:30:01.123+01:00", "pid": 1, "conn": 2,
            "request_id": "x", "status": 502, "origin": "nginx", "recovered": false, "client": "127.0.0.1",
            "server": "e2e.test", "host": null, "method": "GET", "uri": "/", "protocol": "HTTP/1.1",
            "request_time_ms": 0, "upstream": "unix:/x", "timeouts_ms": {"connect": 1, "send": 2, "read": 3},
            "fastcgi_stderr": null,
            "attempts": [{"peer": "unix:/x", "phase": "connect", "errno": 2, "errno_name": "ENOENT",
              "error": "No such file or directory", "event": "connect_failed", "message": "m", "level": "crit",
              "status": 502, "connect_ms": null, "header_ms": null, "response_ms": 0}]
        });
        validate(&good).expect("valid record");
        let mut bad = good.clone();
        bad["attempts"][0]["phase"] = "dialing".into();
        bad["extra"] = 1.into();
        bad["time"] = "yesterday".into();
        let e = validate(&bad).expect_err("invalid record");
        assert!(
            e.contains("dialing") && e.contains("extra") && e.contains("yesterday"),
            "{e}"
        );
    }
}
