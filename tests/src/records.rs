//! gatelog records: reading the JSON lines and checking them against
//! docs/gatelog.v1.schema.json.
//!
//! The schema check interprets the subset of JSON Schema (2020-12) the schema file
//! uses: `type` (one or a list), `const`, `enum`, `required`, `properties`,
//! `additionalProperties: false`, `items`, `pattern` and local `$ref`s into `$defs`
//! (and, for the analyzer's report schema, `anyOf`, `minimum`, `maximum`,
//! `maxItems`, `additionalProperties` with a schema: see [`validate_against`]). A keyword it does not know makes the check
//! fail loudly, so a schema change cannot silently turn the check off.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use regex::Regex;
use serde_json::Value;

use crate::env::schema_path;

/// The record schema, loaded once.
pub fn schema() -> Result<&'static Value, String> {
    static SCHEMA: OnceLock<Result<Value, String>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let p = schema_path();
            let text =
                std::fs::read_to_string(&p).map_err(|e| format!("reading {}: {e}", p.display()))?;
            serde_json::from_str(&text).map_err(|e| format!("parsing {}: {e}", p.display()))
        })
        .as_ref()
        .map_err(|e| e.clone())
}

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

/// Validates `v` against `schema` (a JSON Schema using only the keywords listed in
/// the module docs); returns every violation.
pub fn validate_against(schema: &Value, v: &Value) -> Vec<String> {
    let mut errs = Vec::new();
    check(schema, schema, v, "$", &mut errs);
    errs
}

/// Validates `v` against the record schema; returns every violation.
pub fn validate(v: &Value) -> Result<(), String> {
    let schema = schema()?;
    let errs = validate_against(schema, v);
    if errs.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "record violates docs/gatelog.v1.schema.json:\n  {}\nrecord: {v}",
            errs.join("\n  ")
        ))
    }
}

fn type_ok(t: &str, v: &Value) -> bool {
    match t {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "null" => v.is_null(),
        _ => false,
    }
}

fn pattern(p: &str) -> Result<Regex, String> {
    Regex::new(p).map_err(|e| format!("schema pattern {p:?}: {e}"))
}

fn check(root: &Value, s: &Value, v: &Value, at: &str, errs: &mut Vec<String>) {
    let Some(obj) = s.as_object() else {
        errs.push(format!("{at}: schema node is not an object"));
        return;
    };
    for (k, kv) in obj {
        match k.as_str() {
            "$schema" | "$id" | "title" | "description" | "$defs" => {}
            "$ref" => {
                let target = kv
                    .as_str()
                    .and_then(|r| r.strip_prefix("#/"))
                    .and_then(|r| {
                        r.split('/')
                            .try_fold(root, |node, part| node.get(part))
                    });
                match target {
                    Some(t) => check(root, t, v, at, errs),
                    None => errs.push(format!("{at}: unresolvable $ref {kv}")),
                }
            }
            "type" => {
                let ok = match kv {
                    Value::String(t) => type_ok(t, v),
                    Value::Array(ts) => ts.iter().any(|t| t.as_str().is_some_and(|t| type_ok(t, v))),
                    _ => false,
                };
                if !ok {
                    errs.push(format!("{at}: {v} is not of type {kv}"));
                }
            }
            "const" => {
                if v != kv {
                    errs.push(format!("{at}: {v} is not {kv}"));
                }
            }
            "enum" => {
                if !kv.as_array().is_some_and(|a| a.contains(v)) {
                    errs.push(format!("{at}: {v} is not one of {kv}"));
                }
            }
            "pattern" => {
                if let (Some(p), Some(text)) = (kv.as_str(), v.as_str()) {
                    match pattern(p) {
                        Ok(re) if re.is_match(text) => {}
                        Ok(_) => errs.push(format!("{at}: {text:?} does not match {p:?}")),
                        Err(e) => errs.push(e),
                    }
                }
            }
            "required" => {
                if let Some(o) = v.as_object() {
                    for r in kv.as_array().into_iter().flatten().filter_map(|r| r.as_str()) {
                        if !o.contains_key(r) {
                            errs.push(format!("{at}: required key {r:?} is missing"));
                        }
                    }
                }
            }
            "properties" => {
                if let (Some(o), Some(props)) = (v.as_object(), kv.as_object()) {
                    for (name, sub) in props {
                        if let Some(val) = o.get(name) {
                            check(root, sub, val, &format!("{at}.{name}"), errs);
                        }
                    }
                }
            }
            "additionalProperties" => {
                if kv == &Value::Bool(false) {
                    if let Some(o) = v.as_object() {
                        let props = obj.get("properties").and_then(|p| p.as_object());
                        for key in o.keys() {
                            if !props.is_some_and(|p| p.contains_key(key)) {
                                errs.push(format!("{at}: unexpected key {key:?}"));
                            }
                        }
                    }
                } else if kv.is_object() {
                    // A schema for the values of the keys `properties` does not name.
                    if let Some(o) = v.as_object() {
                        let props = obj.get("properties").and_then(|p| p.as_object());
                        for (key, val) in o {
                            if !props.is_some_and(|p| p.contains_key(key)) {
                                check(root, kv, val, &format!("{at}.{key}"), errs);
                            }
                        }
                    }
                } else {
                    errs.push(format!("{at}: unsupported additionalProperties {kv}"));
                }
            }
            "anyOf" => {
                let alts = kv.as_array().map(Vec::as_slice).unwrap_or_default();
                let ok = alts.iter().any(|alt| {
                    let mut sub = Vec::new();
                    check(root, alt, v, at, &mut sub);
                    sub.is_empty()
                });
                if !ok {
                    errs.push(format!("{at}: {v} matches none of anyOf {kv}"));
                }
            }
            "minimum" | "maximum" => {
                if let (Some(bound), Some(x)) = (kv.as_f64(), v.as_f64()) {
                    let ok = if k == "minimum" { x >= bound } else { x <= bound };
                    if !ok {
                        errs.push(format!("{at}: {v} violates {k} {kv}"));
                    }
                }
            }
            "maxItems" => {
                if let (Some(max), Some(a)) = (kv.as_u64(), v.as_array()) {
                    if a.len() as u64 > max {
                        errs.push(format!("{at}: {} items, maxItems {max}", a.len()));
                    }
                }
            }
            "propertyNames" => {
                // Each key of the object, as a string, against the subschema.
                if let Some(o) = v.as_object() {
                    for key in o.keys() {
                        check(root, kv, &Value::String(key.clone()), &format!("{at}.{key} (name)"), errs);
                    }
                }
            }
            "items" => {
                if let Some(a) = v.as_array() {
                    for (i, item) in a.iter().enumerate() {
                        check(root, kv, item, &format!("{at}[{i}]"), errs);
                    }
                }
            }
            other => errs.push(format!(
                "{at}: schema keyword {other:?} is not understood by the e2e schema check (extend records.rs)"
            )),
        }
    }
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

    #[test]
    fn any_of_and_bounds() {
        let schema = serde_json::json!({
            "type": "object",
            "properties": {
                "t": { "anyOf": [{ "type": "string", "pattern": "^a" }, { "type": "null" }] },
                "c": { "type": "number", "minimum": 0, "maximum": 1 },
                "l": { "type": "array", "maxItems": 2 },
                "m": { "type": "object", "additionalProperties": { "type": "integer" } }
            }
        });
        let ok = serde_json::json!({"t": null, "c": 0.5, "l": [1, 2], "m": {"502": 3}});
        assert!(validate_against(&schema, &ok).is_empty());
        let ok2 = serde_json::json!({"t": "abc", "c": 1, "l": []});
        assert!(validate_against(&schema, &ok2).is_empty());
        let bad = serde_json::json!({"t": "xyz", "c": 1.5, "l": [1, 2, 3], "m": {"504": "x"}});
        let e = validate_against(&schema, &bad).join("\n");
        assert!(
            e.contains("anyOf")
                && e.contains("maximum")
                && e.contains("maxItems")
                && e.contains("$.m.504"),
            "{e}"
        );
    }

    #[test]
    fn property_names() {
        let schema = serde_json::json!({
            "type": "object",
            "propertyNames": { "enum": ["plain", "syslog"] },
            "additionalProperties": { "type": "integer", "minimum": 1 }
        });
        let ok = serde_json::json!({"plain": 3, "syslog": 1});
        assert!(validate_against(&schema, &ok).is_empty());
        let bad = serde_json::json!({"plain": 3, "smoke-signals": 1});
        let e = validate_against(&schema, &bad).join("\n");
        assert!(e.contains("smoke-signals"), "{e}");
    }
}
