//! Reports. Failures are handed over one at a time: the JSON report streams them out
//! as they come, and every format keeps only a bounded summary (per-cause counts,
//! a few strongest examples, a timeline of incidents), so memory does not grow with
//! the number of failures.

pub mod html;
pub mod json;
pub mod markdown;
pub mod shared;
pub mod text;
pub mod threaded;

use std::collections::BTreeMap;
use std::io;

use crate::classify::{Confidence, Diagnosis};
use crate::context::markers::Markers;
use crate::context::Alignment;
use crate::failure::Failure;
use crate::input::stats::InputStats;
use crate::input::{DetectedBy, Skipped};
use crate::model::{Cause, Evidence};
use crate::time::{EpochMs, Zone};

/// Examples kept per cause (the most confident ones).
const EXAMPLES_PER_CAUSE: usize = 3;
/// Incidents kept for the timeline; later ones are only counted.
const MAX_INCIDENTS: usize = 500;
/// Failures of one cause closer than this belong to one incident.
const INCIDENT_GAP_MS: i64 = 60_000;
/// Distinct reasons kept per cause.
const MAX_REASONS: usize = 10;

/// A failure with its diagnosis and fix.
#[derive(Debug, Clone)]
pub struct Classified {
    pub failure: Failure,
    pub diagnosis: Diagnosis,
    pub fix: String,
}

impl Classified {
    /// The failure's own lines first, then the context that decided the diagnosis.
    pub fn evidence(&self) -> Vec<&Evidence> {
        let mut out: Vec<&Evidence> = self.failure.evidence.iter().collect();
        for e in &self.diagnosis.evidence {
            if out.len() >= crate::failure::MAX_EVIDENCE + 4 {
                break;
            }
            if !out.contains(&e) {
                out.push(e);
            }
        }
        out
    }
}

#[derive(Debug, Clone)]
pub struct CauseSummary {
    pub cause: Cause,
    pub count: u64,
    /// First and last dated failure (None when no failure of the cause had a time).
    pub first: Option<EpochMs>,
    pub last: Option<EpochMs>,
    /// Failures without any time (lines pasted without their date).
    pub time_unknown: u64,
    pub by_status: BTreeMap<u16, u64>,
    pub confidence_sum: f64,
    pub examples: Vec<Classified>,
    pub reasons: Vec<(String, u64)>,
}

impl CauseSummary {
    pub fn mean_confidence(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.confidence_sum / self.count as f64
        }
    }

    /// The fix of the most confident example.
    pub fn fix(&self) -> &str {
        self.examples.first().map_or("", |c| c.fix.as_str())
    }
}

/// A run of failures of one cause without a gap longer than INCIDENT_GAP_MS.
#[derive(Debug, Clone)]
pub struct Incident {
    pub cause: Cause,
    pub first: EpochMs,
    pub last: EpochMs,
    pub count: u64,
    pub peer: Option<String>,
    pub example: String,
}

/// Bounded aggregate of all failures.
#[derive(Debug, Default)]
pub struct Summary {
    pub causes: BTreeMap<Cause, CauseSummary>,
    pub total: u64,
    pub by_status: BTreeMap<u16, u64>,
    pub incidents: Vec<Incident>,
    pub incidents_dropped: u64,
    /// Failures without any time: not on the timeline.
    pub time_unknown: u64,
}

impl Summary {
    /// Whether a failure of `cause` with `confidence` would become an example.
    pub fn would_keep(&self, cause: Cause, confidence: Confidence) -> bool {
        self.causes.get(&cause).map_or(true, |s| {
            s.examples.len() < EXAMPLES_PER_CAUSE
                || s.examples
                    .last()
                    .is_some_and(|w| confidence > w.diagnosis.confidence)
        })
    }

    pub fn add(&mut self, c: &Classified) {
        let f = &c.failure;
        let cause = c.diagnosis.cause;
        self.total += 1;
        *self.by_status.entry(f.status).or_default() += 1;
        let s = self.causes.entry(cause).or_insert_with(|| CauseSummary {
            cause,
            count: 0,
            first: None,
            last: None,
            time_unknown: 0,
            by_status: BTreeMap::new(),
            confidence_sum: 0.0,
            examples: Vec::new(),
            reasons: Vec::new(),
        });
        s.count += 1;
        if f.time_known {
            s.first = Some(s.first.map_or(f.time, |t| t.min(f.time)));
            s.last = Some(s.last.map_or(f.time, |t| t.max(f.time)));
        } else {
            s.time_unknown += 1;
        }
        *s.by_status.entry(f.status).or_default() += 1;
        s.confidence_sum += c.diagnosis.confidence.value();
        match s.reasons.iter().position(|(r, _)| *r == c.diagnosis.reason) {
            Some(i) => s.reasons[i].1 += 1,
            None if s.reasons.len() < MAX_REASONS => {
                s.reasons.push((c.diagnosis.reason.clone(), 1))
            }
            None => {}
        }
        // Keep the most confident examples; ties keep the earliest.
        let better = s.examples.len() < EXAMPLES_PER_CAUSE
            || s.examples
                .last()
                .is_some_and(|w| c.diagnosis.confidence > w.diagnosis.confidence);
        if better {
            if s.examples.len() >= EXAMPLES_PER_CAUSE {
                s.examples.pop();
            }
            let pos = s
                .examples
                .iter()
                .position(|e| c.diagnosis.confidence > e.diagnosis.confidence)
                .unwrap_or(s.examples.len());
            s.examples.insert(pos, c.clone());
        }
        self.add_incident(c);
    }

    fn add_incident(&mut self, c: &Classified) {
        let f = &c.failure;
        let cause = c.diagnosis.cause;
        if !f.time_known {
            // A timeline has no place for it; the count says it exists.
            self.time_unknown += 1;
            return;
        }
        if let Some(inc) = self.incidents.iter_mut().rev().take(8).find(|i| {
            i.cause == cause && f.time >= i.first && f.time <= i.last.plus_ms(INCIDENT_GAP_MS)
        }) {
            inc.count += 1;
            inc.last = inc.last.max(f.time);
            return;
        }
        if self.incidents.len() >= MAX_INCIDENTS {
            self.incidents_dropped += 1;
            return;
        }
        self.incidents.push(Incident {
            cause,
            first: f.time,
            last: f.time,
            count: 1,
            peer: f.peer.as_ref().map(|p| p.0.to_string()),
            example: f
                .decisive()
                .map(|a| a.message.clone())
                .unwrap_or_else(|| format!("{} in the access log", f.status)),
        });
    }

    /// Causes by count, most frequent first.
    pub fn ranked(&self) -> Vec<&CauseSummary> {
        let mut v: Vec<_> = self.causes.values().collect();
        v.sort_by(|a, b| b.count.cmp(&a.count).then(a.cause.cmp(&b.cause)));
        v
    }
}

/// Everything about the run besides the failures.
#[derive(Debug)]
pub struct RunInfo {
    pub inputs: Vec<InputStats>,
    pub skipped: Vec<Skipped>,
    pub zone: Zone,
    pub alignment: Alignment,
    pub since: Option<EpochMs>,
    pub until: Option<EpochMs>,
    pub dropped_events: u64,
    /// Failures outside --since/--until.
    pub outside_window: u64,
    /// Lines joined into failures seen elsewhere (record + error log).
    pub joined_lines: u64,
    /// FPM lifecycle changes, OOM kills and worker deaths (for timelines).
    pub markers: Markers,
}

impl RunInfo {
    pub fn detected_by(d: DetectedBy) -> &'static str {
        match d {
            DetectedBy::Flag => "flag",
            DetectedBy::Content => "content",
            DetectedBy::Name => "name",
            DetectedBy::Include => "include",
        }
    }
}

/// A report format: gets each failure as it is classified, then the summary.
pub trait Report {
    fn failure(&mut self, c: &Classified) -> io::Result<()>;
    /// [`Self::failure`] for a failure the caller is done with (a threaded report
    /// takes it without a copy).
    fn failure_owned(&mut self, c: Classified) -> io::Result<()> {
        self.failure(&c)
    }
    fn finish(&mut self, summary: &Summary, run: &RunInfo) -> io::Result<()>;
}

/// What an input summary line leaves out, in words: the kinds of lines a mixed
/// file held, its framings, the lines of the other side nobody read, the failures
/// without a time. Empty for a plain file of one kind.
pub fn input_details(i: &InputStats) -> Vec<String> {
    let mut out = Vec::new();
    let kinds: Vec<_> = i.kinds().filter(|(k, _)| *k != "blank").collect();
    let framings: Vec<_> = i.framing_counts().collect();
    let plain_only = framings.iter().all(|(f, _)| *f == "plain");
    if kinds.len() > 1 || !plain_only {
        let list = |v: &[(&str, u64)]| {
            v.iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut line = format!("lines: {}", list(&kinds));
        if !plain_only {
            line.push_str(&format!("; framing: {}", list(&framings)));
        }
        if i.read_for_failures && i.read_for_context {
            line.push_str("; read for the failures and for the context");
        }
        out.push(line);
    }
    if i.other_role_unread > 0 {
        out.push(format!(
            "{} line(s) of the other side (NGINX vs PHP-FPM/kernel/journal) appear only after the lines the file was recognised by and were counted, not read",
            i.other_role_unread
        ));
    }
    if i.time_unknown > 0 {
        out.push(format!(
            "{} failure line(s) without any date: their time is unknown",
            i.time_unknown
        ));
    }
    out
}

/// When a cause's failures happened, for text and markdown: `first X, last Y`,
/// with how many had no time, or `time unknown` when none had one.
pub fn when(z: &Zone, first: Option<EpochMs>, last: Option<EpochMs>, unknown: u64) -> String {
    match (first, last) {
        (Some(a), Some(b)) if unknown > 0 => format!(
            "first {}, last {} ({unknown} with time unknown)",
            z.format_short(a),
            z.format_short(b)
        ),
        (Some(a), Some(b)) => format!("first {}, last {}", z.format_short(a), z.format_short(b)),
        _ => "time unknown (no date on the lines)".to_string(),
    }
}

/// `0.95` -> `95%`.
pub fn percent(x: f64) -> String {
    format!("{:.0}%", (x * 100.0).round())
}
