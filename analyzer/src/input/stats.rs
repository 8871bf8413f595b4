//! Per-input counts for the report: lines read, parsed, not understood, and what
//! was used. An unparseable line is counted and shown, never silently dropped.

use std::sync::Arc;

use serde::Serialize;

use super::{DetectedBy, Input};
use crate::model::{clip, InputKind};
use crate::time::EpochMs;

/// How many examples of lines not understood are kept per input.
const EXAMPLES_KEPT: usize = 3;

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
}
