//! `--format text` (default): a terminal summary per cause with counts, first/last
//! seen, the strongest evidence lines with file:line, and the fix.

use std::io::{self, Write};

use super::{input_details, percent, when, Classified, Report, RunInfo, Summary};
use crate::model::{clip, Evidence};
use crate::time::Zone;

pub struct TextReport<W: Write> {
    out: W,
    zone: Zone,
}

impl<W: Write> TextReport<W> {
    pub fn new(out: W, zone: Zone) -> TextReport<W> {
        TextReport { out, zone }
    }
}

/// One evidence line on one terminal line.
pub fn evidence_line(e: &Evidence, max: usize) -> String {
    let text = e.text.replace('\n', " ⏎ ");
    format!(
        "{:<7} {}:{}  {}",
        e.source,
        e.file,
        e.line,
        clip(&text, max)
    )
}

fn statuses(map: &std::collections::BTreeMap<u16, u64>) -> String {
    map.iter()
        .map(|(s, n)| format!("{s}: {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl<W: Write> Report for TextReport<W> {
    fn failure(&mut self, _c: &Classified) -> io::Result<()> {
        Ok(())
    }

    fn finish(&mut self, summary: &Summary, run: &RunInfo) -> io::Result<()> {
        let z = &self.zone;
        let o = &mut self.out;
        if summary.total == 0 {
            writeln!(o, "gatelog: no 502/504 found in the inputs.")?;
        } else {
            let first = summary.causes.values().filter_map(|c| c.first).min();
            let last = summary.causes.values().filter_map(|c| c.last).max();
            let span = match (first, last) {
                (Some(a), Some(b)) => {
                    format!("from {} to {}", z.format_short(a), z.format_short(b))
                }
                _ => "time unknown (no date on the lines)".to_string(),
            };
            let unknown = if summary.time_unknown > 0 && first.is_some() {
                format!(", {} with time unknown", summary.time_unknown)
            } else {
                String::new()
            };
            writeln!(
                o,
                "gatelog: {} failure(s) ({}) {span}{unknown}",
                summary.total,
                statuses(&summary.by_status),
            )?;
        }
        writeln!(
            o,
            "times in {} ({})",
            run.zone.name,
            run.zone.source.as_str()
        )?;
        for s in summary.ranked() {
            writeln!(o)?;
            let number = match s.cause.number() {
                0 => String::new(),
                n => format!("[{n}] "),
            };
            writeln!(
                o,
                "{number}{} — {}: {} failure(s) ({}), {}, confidence {}",
                s.cause.slug(),
                s.cause.title(),
                s.count,
                statuses(&s.by_status),
                when(z, s.first, s.last, s.time_unknown),
                percent(s.mean_confidence()),
            )?;
            for (reason, n) in s.reasons.iter().take(3) {
                writeln!(o, "    why ({n}x): {reason}")?;
            }
            if let Some(best) = s.examples.first() {
                writeln!(o, "    evidence:")?;
                for e in best.evidence().iter().take(6) {
                    writeln!(o, "      {}", evidence_line(e, 220))?;
                }
                writeln!(o, "    fix: {}", best.fix)?;
            }
        }
        writeln!(o)?;
        writeln!(o, "inputs:")?;
        for i in &run.inputs {
            writeln!(
                o,
                "  {} — {} (by {}): {} lines, {} parsed, {} not understood, {} used{}",
                i.name,
                i.kind.label(),
                RunInfo::detected_by(i.detected_by),
                i.lines_read,
                i.lines_parsed,
                i.lines_not_understood,
                i.lines_used,
                i.error
                    .as_deref()
                    .map(|e| format!(", READ ERROR: {e}"))
                    .unwrap_or_default(),
            )?;
            for d in input_details(i) {
                writeln!(o, "      {d}")?;
            }
            for ex in &i.examples {
                writeln!(o, "      not understood, line {}: {}", ex.line, ex.text)?;
            }
        }
        for s in &run.skipped {
            writeln!(o, "  {} — skipped: {}", s.name, s.reason)?;
        }
        if run.alignment.method != crate::context::align::AlignMethod::NotNeeded {
            writeln!(o, "kernel times: {}", run.alignment.detail)?;
        }
        if run.outside_window > 0 {
            writeln!(
                o,
                "{} failure(s) outside --since/--until were left out",
                run.outside_window
            )?;
        }
        if run.dropped_events > 0 {
            writeln!(
                o,
                "{} context event(s) beyond the memory bound were not kept",
                run.dropped_events
            )?;
        }
        o.flush()
    }
}
