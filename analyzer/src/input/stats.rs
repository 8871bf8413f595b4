//! Per-input counts for the report: lines read, parsed, not understood, and what
//! was used, per kind of line and per framing. An unparseable line is counted and
//! shown, never silently dropped.
//!
//! A file holding lines of both sides (NGINX and PHP-FPM in one container stream)
//! is read by both readers; each counts the lines that are its own, the file's
//! primary reader (the one of the file's role) also counts what belongs to neither
//! and the framings, and [`InputStats::merge`] adds the two up, so every line is
//! counted once.

use std::sync::Arc;

use serde::Serialize;

use super::framing::{Layer, Layers};
use super::route::LineKind;
use super::{DetectedBy, Input};
use crate::model::{clip, InputKind};
use crate::time::EpochMs;

/// How many examples of lines not understood are kept per input.
const EXAMPLES_KEPT: usize = 3;
/// `framings` slot of lines without any framing.
pub const PLAIN: usize = Layer::ALL.len();

#[derive(Debug, Clone, Serialize)]
pub struct NotUnderstood {
    pub line: u64,
    pub text: String,
}

#[derive(Debug, Clone)]
pub struct InputStats {
    pub name: Arc<str>,
    pub kind: InputKind,
    pub detected_by: DetectedBy,
    pub size: u64,
    pub lines_read: u64,
    pub lines_parsed: u64,
    pub lines_not_understood: u64,
    /// Lines that became evidence or failures.
    pub lines_used: u64,
    /// Lines longer than the reader's cap (cut).
    pub overlong_lines: u64,
    pub first: Option<EpochMs>,
    pub last: Option<EpochMs>,
    pub examples: Vec<NotUnderstood>,
    /// A read error part-way through (the input is then incomplete).
    pub error: Option<String>,
    /// Lines per kind ([`LineKind::COUNTED`] order); a continuation line counts
    /// with its entry. Lines not understood are not in here.
    pub by_kind: [u64; LineKind::COUNTED.len()],
    /// Lines per framing layer ([`Layer::ALL`] order), then lines without any.
    pub framings: [u64; Layer::ALL.len() + 1],
    /// Failures from lines without any date (pasted): their time is unknown.
    pub time_unknown: u64,
    /// Lines of the other side's kinds in a file that side does not read (they
    /// appeared only after the lines the file was recognised by).
    pub other_role_unread: u64,
    /// Read by the failure-side reader and by the context-side reader.
    pub read_for_failures: bool,
    pub read_for_context: bool,
}

impl InputStats {
    pub fn new(input: &Input) -> InputStats {
        InputStats {
            name: Arc::clone(&input.name),
            kind: input.kind,
            detected_by: input.detected_by,
            size: input.size,
            lines_read: 0,
            lines_parsed: 0,
            lines_not_understood: 0,
            lines_used: 0,
            overlong_lines: 0,
            first: None,
            last: None,
            examples: Vec::new(),
            error: None,
            by_kind: [0; LineKind::COUNTED.len()],
            framings: [0; Layer::ALL.len() + 1],
            time_unknown: 0,
            other_role_unread: 0,
            read_for_failures: input.reads_failures(),
            read_for_context: input.reads_context(),
        }
    }

    pub fn parsed(&mut self) {
        self.lines_parsed += 1;
    }

    pub fn not_understood(&mut self, line: u64, text: &str) {
        self.lines_not_understood += 1;
        if self.examples.len() < EXAMPLES_KEPT {
            self.examples.push(NotUnderstood {
                line,
                text: clip(text, 200),
            });
        }
    }

    pub fn saw_time(&mut self, at: EpochMs) {
        self.first = Some(self.first.map_or(at, |f| f.min(at)));
        self.last = Some(self.last.map_or(at, |l| l.max(at)));
    }

    /// Counts a line of `kind` (not for lines not understood).
    pub fn count_kind(&mut self, kind: LineKind) {
        if let Some(i) = LineKind::COUNTED.iter().position(|k| *k == kind) {
            self.by_kind[i] += 1;
        }
    }

    pub fn count_framing(&mut self, layers: Layers) {
        if layers.is_empty() {
            self.framings[PLAIN] += 1;
        }
        for l in layers.iter() {
            self.framings[l.index()] += 1;
        }
    }

    /// Lines per kind with their names, non-zero only.
    pub fn kinds(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        LineKind::COUNTED
            .iter()
            .zip(self.by_kind)
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| (k.slug(), n))
    }

    /// Lines per framing with their names, non-zero only.
    pub fn framing_counts(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        Layer::ALL
            .iter()
            .map(|l| l.slug())
            .chain(["plain"])
            .zip(self.framings)
            .filter(|(_, n)| *n > 0)
    }

    /// Adds the counts of the file's other reader (`other` counted only its own
    /// lines: no line is in both).
    pub fn merge(&mut self, other: InputStats) {
        self.lines_read = self.lines_read.max(other.lines_read);
        self.lines_parsed += other.lines_parsed;
        self.lines_not_understood += other.lines_not_understood;
        self.lines_used += other.lines_used;
        self.overlong_lines = self.overlong_lines.max(other.overlong_lines);
        if let Some(f) = other.first {
            self.saw_time(f);
        }
        if let Some(l) = other.last {
            self.saw_time(l);
        }
        self.examples.extend(other.examples);
        self.examples.sort_by_key(|e| e.line);
        self.examples.truncate(EXAMPLES_KEPT);
        if self.error.is_none() {
            self.error = other.error;
        }
        for (a, b) in self.by_kind.iter_mut().zip(other.by_kind) {
            *a += b;
        }
        for (a, b) in self.framings.iter_mut().zip(other.framings) {
            *a += b;
        }
        self.time_unknown += other.time_unknown;
        self.other_role_unread += other.other_role_unread;
    }
}

/// What a reader does with a routed line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    /// The line is this reader's: parse and count it.
    Own,
    /// The file's other reader counts it.
    Leave,
    /// The other side's, in a file that side does not read: counted as such.
    Unread,
}

/// Which reader counts a line of `kind`. `mine`: the reader's side; `primary`: the
/// reader is the file's primary (counts blank, other and not understood lines);
/// `other_reads`: the file's other side has a reader.
pub fn take(kind: LineKind, mine: super::route::Side, primary: bool, other_reads: bool) -> Take {
    use super::route::Side;
    let side = kind.side();
    if side == mine || (side == Side::Neutral && primary) {
        Take::Own
    } else if side == Side::Neutral || other_reads {
        Take::Leave
    } else {
        Take::Unread
    }
}
