//! `--format json`: schema gatelog.report.v2 (docs/gatelog.report.v2.schema.json).
//! `failures` is written while the inputs are read (one object per failure, never
//! all held in memory); a failure's reason, fix and evidence lines are indexes into
//! the `reasons`, `fixes` and `lines` tables ([`super::shared`]), which follow it with
//! `causes`, `summary`, `inputs` and `time` at the end.

use std::io::{self, Write};

use serde::Serialize;
use serde_json::json;

use super::shared::SharedTable;
use super::{Classified, Report, RunInfo, Summary};
use crate::time::Zone;

pub const SCHEMA: &str = "gatelog.report.v2";

pub struct JsonReport<W: Write> {
    out: W,
    zone: Zone,
    started: bool,
    count: u64,
    reasons: SharedTable,
    fixes: SharedTable,
    lines: SharedTable,
    /// The failure's evidence as indexes into `lines` (reused).
    evidence: Vec<u32>,
}

#[derive(Serialize)]
struct FailureJson<'a> {
    /// null when no input dated the failure (a line pasted without its date).
    time: Option<String>,
    conn: Option<u64>,
    pid: Option<u32>,
    request_id: Option<&'a str>,
    status: u16,
    status_inferred: bool,
    peer: Option<&'a str>,
    upstream: Option<&'a str>,
    upstream_protocol: crate::model::Protocol,
    request: Option<&'a str>,
    client: Option<&'a str>,
    server: Option<&'a str>,
    host: Option<&'a str>,
    cause: &'static str,
    confidence: f64,
    /// Index into `reasons`.
    reason: u32,
    /// Indexes into `lines`.
    evidence: &'a [u32],
    /// Index into `fixes`.
    fix: u32,
    seen_in: Vec<&'static str>,
}

impl<W: Write> JsonReport<W> {
    pub fn new(out: W, zone: Zone) -> JsonReport<W> {
        JsonReport {
            out,
            zone,
            started: false,
            count: 0,
            reasons: SharedTable::new(),
            fixes: SharedTable::new(),
            lines: SharedTable::new(),
            evidence: Vec::new(),
        }
    }

    fn start(&mut self) -> io::Result<()> {
        if !self.started {
            self.started = true;
            write!(
                self.out,
                "{{\"schema\":\"{SCHEMA}\",\"generator\":{{\"name\":\"gatelog\",\"version\":\"{}\"}},\"failures\":[",
                env!("CARGO_PKG_VERSION")
            )?;
        }
        Ok(())
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Which readers read an input: `failures` (records, NGINX lines), `context`
/// (FPM, kernel, journal lines); both for a mixed stream, none for a config.
fn read_for(i: &crate::input::stats::InputStats) -> Vec<&'static str> {
    [
        i.read_for_failures.then_some("failures"),
        i.read_for_context.then_some("context"),
    ]
    .into_iter()
    .flatten()
    .collect()
}

impl<W: Write> Report for JsonReport<W> {
    fn failure(&mut self, c: &Classified) -> io::Result<()> {
        self.start()?;
        let f = &c.failure;
        let mut seen_in = Vec::new();
        if f.seen_in.record {
            seen_in.push("record");
        }
        if f.seen_in.error_log {
            seen_in.push("error_log");
        }
        if f.seen_in.access_log {
            seen_in.push("access_log");
        }
        let reason = self.reasons.index_of_text(&c.diagnosis.reason)?;
        let fix = self.fixes.index_of_text(&c.fix)?;
        let mut evidence = std::mem::take(&mut self.evidence);
        evidence.clear();
        // The failure's own lines come first and are its own: only the context
        // lines (an FPM warning, a kernel OOM kill) recur across failures.
        let own = c.failure.evidence.len();
        for (k, e) in c.evidence().into_iter().enumerate() {
            evidence.push(if k < own {
                self.lines.append_evidence(e)?
            } else {
                self.lines.index_of_evidence(e)?
            });
        }
        let obj = FailureJson {
            time: f.time_known.then(|| self.zone.format(f.time)),
            conn: f.conn,
            pid: f.pid,
            request_id: f.request_id.as_deref(),
            status: f.status,
            status_inferred: f.status_inferred,
            peer: f.peer.as_ref().map(|p| p.as_str()),
            upstream: f.upstream.as_deref(),
            upstream_protocol: c.diagnosis.facts.protocol.unwrap_or(f.protocol),
            request: f.request.as_deref(),
            client: f.client.as_deref(),
            server: f.server.as_deref(),
            host: f.host.as_deref(),
            cause: c.diagnosis.cause.slug(),
            confidence: c.diagnosis.confidence.value(),
            reason,
            evidence: &evidence,
            fix,
            seen_in,
        };
        if self.count > 0 {
            self.out.write_all(b",")?;
        }
        self.out.write_all(b"\n")?;
        serde_json::to_writer(&mut self.out, &obj)?;
        self.evidence = evidence;
        self.count += 1;
        Ok(())
    }

    fn finish(&mut self, summary: &Summary, run: &RunInfo) -> io::Result<()> {
        self.start()?;
        let z = &self.zone;
        let causes: Vec<_> = summary
            .ranked()
            .into_iter()
            .map(|s| {
                json!({
                    "cause": s.cause.slug(),
                    "title": s.cause.title(),
                    "count": s.count,
                    "first": s.first.map(|t| z.format(t)),
                    "last": s.last.map(|t| z.format(t)),
                    "time_unknown": s.time_unknown,
                    "by_status": s.by_status.iter().map(|(k, v)| (k.to_string(), serde_json::Value::from(*v))).collect::<serde_json::Map<_, _>>(),
                    "mean_confidence": round2(s.mean_confidence()),
                    "reasons": s.reasons.iter().map(|(r, n)| json!({"reason": r, "count": n})).collect::<Vec<_>>(),
                    "fix": s.fix(),
                })
            })
            .collect();
        let inputs: Vec<_> = run
            .inputs
            .iter()
            .map(|i| {
                json!({
                    "file": &*i.name,
                    "kind": i.kind,
                    "detected_by": RunInfo::detected_by(i.detected_by),
                    "bytes": i.size,
                    "lines_read": i.lines_read,
                    "lines_parsed": i.lines_parsed,
                    "lines_not_understood": i.lines_not_understood,
                    "lines_used": i.lines_used,
                    "overlong_lines": i.overlong_lines,
                    "first": i.first.map(|t| z.format(t)),
                    "last": i.last.map(|t| z.format(t)),
                    "not_understood_examples": i.examples,
                    "error": i.error,
                    "lines_by_kind": i.kinds().map(|(k, n)| (k.to_string(), serde_json::Value::from(n))).collect::<serde_json::Map<_, _>>(),
                    "framings": i.framing_counts().map(|(k, n)| (k.to_string(), serde_json::Value::from(n))).collect::<serde_json::Map<_, _>>(),
                    "lines_other_side_unread": i.other_role_unread,
                    "failures_time_unknown": i.time_unknown,
                    "read_for": read_for(i),
                })
            })
            .collect();
        let skipped: Vec<_> = run
            .skipped
            .iter()
            .map(|s| json!({"file": s.name, "reason": s.reason}))
            .collect();
        let timeline: Vec<_> = summary
            .incidents
            .iter()
            .map(|i| {
                json!({
                    "cause": i.cause.slug(),
                    "first": z.format(i.first),
                    "last": z.format(i.last),
                    "count": i.count,
                    "peer": i.peer,
                    "example": i.example,
                })
            })
            .collect();
        let tail = json!({
            "causes": causes,
            "summary": {
                "failures": summary.total,
                "by_status": summary.by_status.iter().map(|(k, v)| (k.to_string(), serde_json::Value::from(*v))).collect::<serde_json::Map<_, _>>(),
                "outside_window": run.outside_window,
                "joined_lines": run.joined_lines,
                "dropped_context_events": run.dropped_events,
                "time_unknown": summary.time_unknown,
            },
            "timeline": timeline,
            "timeline_incidents_dropped": summary.incidents_dropped,
            "inputs": inputs,
            "skipped": skipped,
            "time": {
                "tz": run.zone.name,
                "tz_source": run.zone.source.as_str(),
                "kernel_alignment": run.alignment,
                "since": run.since.map(|t| z.format(t)),
                "until": run.until.map(|t| z.format(t)),
            },
        });
        // Append the tail's members after the failures array.
        let tail = serde_json::to_string(&tail)?;
        let members = tail.strip_prefix('{').unwrap_or(&tail);
        self.out.write_all(b"\n],\"reasons\":[")?;
        self.reasons.copy_to(&mut self.out)?;
        self.out.write_all(b"],\"fixes\":[")?;
        self.fixes.copy_to(&mut self.out)?;
        self.out.write_all(b"],\"lines\":[")?;
        self.lines.copy_to(&mut self.out)?;
        writeln!(self.out, "],{members}")?;
        self.out.flush()
    }
}
