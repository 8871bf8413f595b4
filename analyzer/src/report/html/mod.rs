//! `--format html`: a post-incident report for people who were not on call, as one
//! self-contained file (it works offline and as an e-mail attachment): header with
//! the range, the totals and the inputs; a timeline of failures per time bucket
//! stacked by cause, with markers for FPM lifecycle changes, OOM kills and worker
//! deaths; per cause the reasons, the fix and the evidence; a bounded table of
//! failures; the inputs and how times were read.
//!
//! Nothing is loaded from anywhere: style and script are inline, the chart is SVG,
//! and a Content-Security-Policy allows only those two blocks (by their SHA-256).
//! The script is optional (legend and table filters, opening collapsed evidence for
//! printing); the content is all in the HTML. Every text from the inputs goes
//! through [`escape::Esc`].
//!
//! Memory does not grow with the input: failures are counted into time buckets
//! ([`buckets`]) and a bounded sample is kept for the table ([`sample`]); the page
//! size is bounded too (see `docs/analyzer.md`).

mod buckets;
mod chart;
pub mod escape;
mod sample;
#[cfg(test)]
mod tests;

use std::fmt::Write as _;
use std::io::{self, Write};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use self::buckets::{cause_index, Bars, Buckets};
use self::chart::{human_width, symbol, Chart};
use self::escape::{esc, with_code, Esc};
use self::sample::Sample;
use super::{percent, CauseSummary, Classified, Report, RunInfo, Summary};
use crate::context::align::AlignMethod;
use crate::context::markers::{Marker, MarkerKind};
use crate::model::{Cause, Evidence};
use crate::time::{EpochMs, Zone};

pub use self::sample::MAX_ROWS;

const STYLE: &str = include_str!("style.css");
const SCRIPT: &str = include_str!("script.js");
/// Evidence lines of a cause shown before the rest is collapsed.
const EVIDENCE_SHOWN: usize = 4;
/// How far before the first and after the last failure markers are charted, at least.
const CHART_PAD_MS: i64 = 60_000;
/// Markers listed in the chart's data table.
const MARKER_ROWS: usize = 500;

pub struct HtmlReport<W: Write> {
    out: W,
    zone: Zone,
    buckets: Option<Buckets>,
    sample: Sample,
}

impl<W: Write> HtmlReport<W> {
    pub fn new(out: W, zone: Zone) -> HtmlReport<W> {
        HtmlReport {
            out,
            zone,
            buckets: None,
            sample: Sample::default(),
        }
    }
}

/// The zone's UTC offset at `t_ms`, in ms.
fn offset_ms(zone: &Zone, t_ms: i64) -> i64 {
    jiff::Timestamp::from_millisecond(t_ms)
        .map(|ts| i64::from(zone.tz.to_offset(ts).seconds()) * 1000)
        .unwrap_or(0)
}

/// `'sha256-…'` source expression of a CSP for an inline block.
fn csp_hash(block: &str) -> String {
    let digest = Sha256::digest(block.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

/// `350 ms`, `8 s`, `4 min 10 s`, `2 h 5 min`, `3 days 2 h`.
fn duration(ms: i64) -> String {
    let s = ms / 1000;
    match ms {
        ms if ms < 1000 => format!("{ms} ms"),
        _ if s < 60 => format!("{s} s"),
        _ if s < 3600 => match s % 60 {
            0 => format!("{} min", s / 60),
            r => format!("{} min {r} s", s / 60),
        },
        _ if s < 86_400 => match (s % 3600) / 60 {
            0 => format!("{} h", s / 3600),
            m => format!("{} h {m} min", s / 3600),
        },
        _ => match (s % 86_400) / 3600 {
            0 => format!("{} days", s / 86_400),
            h => format!("{} days {h} h", s / 86_400),
        },
    }
}

/// `12,345`.
fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn status_name(s: u16) -> &'static str {
    match s {
        502 => "Bad Gateway",
        504 => "Gateway Timeout",
        _ => "other status",
    }
}

/// What the page is made of, besides the summary and the run.
struct Page<'a> {
    zone: &'a Zone,
    summary: &'a Summary,
    run: &'a RunInfo,
    sample: &'a Sample,
    buckets: Option<&'a Buckets>,
}

impl Page<'_> {
    fn t(&self, at: EpochMs) -> String {
        self.zone.format_short(at)
    }

    /// `<time datetime="…">…</time>`.
    fn time(&self, at: EpochMs) -> String {
        format!(
            r#"<time datetime="{}">{}</time>"#,
            Esc(&self.zone.format(at)),
            Esc(&self.t(at))
        )
    }

    /// A table's time: to the millisecond, without the date when the report
    /// covers one day.
    fn row_time(&self, at: EpochMs, one_day: bool) -> String {
        let full = self.zone.format(at);
        // `YYYY-MM-DDTHH:MM:SS.mmm+hh:mm`
        let shown = match (one_day, full.get(11..23)) {
            (true, Some(t)) => t.to_string(),
            _ => full.get(..23).unwrap_or(&full).replace('T', " "),
        };
        format!(r#"<time datetime="{}">{}</time>"#, Esc(&full), Esc(&shown))
    }

    /// First and last dated failure.
    fn range(&self) -> Option<(EpochMs, EpochMs)> {
        let first = self.summary.causes.values().filter_map(|c| c.first).min()?;
        let last = self.summary.causes.values().filter_map(|c| c.last).max()?;
        Some((first, last))
    }

    /// `<time>` of an instant the inputs may not have given.
    fn maybe_time(&self, at: Option<EpochMs>) -> String {
        at.map_or_else(|| "unknown".to_string(), |t| self.time(t))
    }

    /// Causes present, in the guide's order (the stacking and legend order).
    fn causes(&self) -> Vec<&CauseSummary> {
        Cause::ALL
            .iter()
            .filter_map(|c| self.summary.causes.get(c))
            .collect()
    }

    fn render(&self) -> String {
        let mut o = String::with_capacity(256 * 1024);
        let style_hash = csp_hash(STYLE);
        let script_hash = csp_hash(SCRIPT);
        let title = match self.range() {
            Some((f, l)) => format!(
                "gatelog: {} failed request(s), {} to {}",
                self.summary.total,
                self.t(f),
                self.t(l)
            ),
            None => "gatelog: no 502/504 found".to_string(),
        };
        let _ = write!(
            o,
            r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src {style_hash}; script-src {script_hash}; img-src data:; base-uri 'none'; form-action 'none'">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="generator" content="gatelog {version}">
<title>{title}</title>
<style>{STYLE}</style>
</head>
<body>
<div class="page">
"#,
            version = env!("CARGO_PKG_VERSION"),
            title = Esc(&title),
        );
        self.header(&mut o);
        o.push_str("<main>\n");
        if self.summary.total > 0 {
            self.timeline(&mut o);
            self.cause_sections(&mut o);
            self.failures(&mut o);
        } else {
            self.markers_only(&mut o);
        }
        self.inputs(&mut o);
        self.method(&mut o);
        let _ = write!(
            o,
            r#"</main>
<footer>Generated by gatelog {}. This file is self-contained: it loads nothing from anywhere.</footer>
</div>
<script>{SCRIPT}</script>
</body>
</html>
"#,
            env!("CARGO_PKG_VERSION")
        );
        o
    }

    fn header(&self, o: &mut String) {
        let s = self.summary;
        o.push_str(r#"<header class="report-head">"#);
        o.push_str(r#"<p class="eyebrow">gatelog · post-incident report</p>"#);
        let undated = if s.time_unknown > 0 {
            format!(" ({} without any date)", thousands(s.time_unknown))
        } else {
            String::new()
        };
        let _ = match self.range() {
            Some((f, l)) => write!(
                o,
                r#"<h1>NGINX answered 502/504 to {} request(s)</h1><p class="range">From {} to {} ({}){undated} · times in {} ({})</p>"#,
                thousands(s.total),
                self.time(f),
                self.time(l),
                duration(l.0 - f.0),
                Esc(&self.run.zone.name),
                Esc(self.run.zone.source.as_str())
            ),
            None if s.total > 0 => write!(
                o,
                r#"<h1>NGINX answered 502/504 to {} request(s)</h1><p class="range">When is unknown: the lines have no dates · times in {} ({})</p>"#,
                thousands(s.total),
                Esc(&self.run.zone.name),
                Esc(self.run.zone.source.as_str())
            ),
            None => write!(
                o,
                r#"<h1>No 502/504 responses were found in the inputs</h1><p class="range">Times in {} ({})</p>"#,
                Esc(&self.run.zone.name),
                Esc(self.run.zone.source.as_str())
            ),
        };
        let _ = write!(
            o,
            r#"<dl class="kpis"><div><dt>Failed requests</dt><dd data-total="{}">{}</dd></div>"#,
            s.total,
            thousands(s.total)
        );
        for (status, n) in &s.by_status {
            let _ = write!(
                o,
                r#"<div data-status="{status}" data-count="{n}"><dt>{status} {}</dt><dd>{}</dd></div>"#,
                status_name(*status),
                thousands(*n)
            );
        }
        let _ = write!(
            o,
            r#"<div><dt>Causes</dt><dd data-causes="{0}">{0}</dd></div>"#,
            s.causes.len()
        );
        let not_understood: u64 = self.run.inputs.iter().map(|i| i.lines_not_understood).sum();
        let lines: u64 = self.run.inputs.iter().map(|i| i.lines_read).sum();
        let _ = write!(
            o,
            r##"<div><dt>Inputs read</dt><dd>{} <small>file(s), {} lines</small></dd></div><div><dt>Lines not understood</dt><dd data-not-understood="{}"{}>{}</dd></div></dl>"##,
            self.run.inputs.len(),
            thousands(lines),
            not_understood,
            if not_understood > 0 {
                r#" class="warn""#
            } else {
                ""
            },
            thousands(not_understood)
        );
        let mut toc = vec![];
        if s.total > 0 {
            toc.push(("timeline", "Timeline"));
            toc.push(("causes", "Causes"));
            toc.push(("failures", "Failures"));
        } else if !self.run.markers.sorted().is_empty() {
            toc.push(("events", "Events"));
        }
        toc.push(("inputs", "Inputs"));
        toc.push(("method", "How this report was made"));
        o.push_str(r#"<nav class="toc" aria-label="Contents"><ol>"#);
        for (id, name) in toc {
            let _ = write!(o, r##"<li><a href="#{id}">{name}</a></li>"##);
        }
        o.push_str("</ol></nav></header>\n");
    }

    /// The chart's range: the failures, widened to the markers close to them (a
    /// restart after the last failure shows whether it ended the incident).
    fn chart_range(&self, first: i64, last: i64) -> (i64, i64, Vec<&Marker>) {
        let span = last - first;
        let pad = (span / 4).max(CHART_PAD_MS);
        let near: Vec<&Marker> = self
            .run
            .markers
            .sorted()
            .into_iter()
            .filter(|m| m.at.0 >= first - pad && m.at.0 <= last + pad)
            .collect();
        let from = near
            .iter()
            .map(|m| m.at.0)
            .min()
            .unwrap_or(first)
            .min(first);
        let to = near.iter().map(|m| m.at.0).max().unwrap_or(last).max(last);
        (from, to, near)
    }

    fn timeline(&self, o: &mut String) {
        let Some(b) = self.buckets else {
            return;
        };
        let (Some(first), Some(last)) = (b.first_ms, b.last_ms) else {
            return;
        };
        let (from, to, markers) = self.chart_range(first, last);
        // An empty bar on each side: the incident's start and end show as edges.
        let d = b.bar_width_ms(from, to);
        let bars = b.bars(from.saturating_sub(d), to.saturating_add(d));
        let causes = self.causes();
        let cause_list: Vec<Cause> = causes.iter().map(|c| c.cause).collect();
        let desc = self.description(&bars, &causes, &markers);
        o.push_str(
            r#"<section class="panel" id="timeline" aria-labelledby="h-timeline"><h2 id="h-timeline">Timeline</h2><figure>"#,
        );
        Chart {
            bars: &bars,
            causes: &cause_list,
            markers: &markers,
            zone: self.zone,
            description: &desc,
        }
        .render(o);
        let _ = write!(
            o,
            r#"<figcaption>Failed requests per {} from {} to {}, stacked by cause. Above the bars: PHP-FPM starts, stops and reloads, OOM kills and worker deaths found in the inputs. Point at a bar or a marker for its details; the numbers are also in the table below the legend.</figcaption></figure>"#,
            human_width(bars.width_ms),
            Esc(&self.t(EpochMs(bars.start_ms(0)))),
            Esc(&self.t(EpochMs(bars.end_ms())))
        );
        o.push_str(r#"<ul class="legend" aria-label="Causes">"#);
        for c in &causes {
            let _ = write!(
                o,
                r#"<li data-cause="{slug}" data-count="{n}"><button type="button" aria-pressed="false" data-cause="{slug}"><span class="swatch c-{slug}"></span>{title} <span class="n">{count}</span></button></li>"#,
                slug = c.cause.slug(),
                n = c.count,
                title = Esc(c.cause.title()),
                count = thousands(c.count)
            );
        }
        o.push_str("</ul>");
        let all = self.run.markers.sorted();
        if !all.is_empty() {
            o.push_str(r#"<ul class="legend" aria-label="Markers">"#);
            for k in MarkerKind::ALL {
                let shown: u64 = markers
                    .iter()
                    .filter(|m| m.kind == k)
                    .map(|m| m.count)
                    .sum();
                if shown == 0 {
                    continue;
                }
                let _ = write!(
                    o,
                    r#"<li data-kind="{slug}" data-count="{shown}"><svg viewBox="-8 -8 16 16" aria-hidden="true" class="mk-{slug}">{}</svg>{} <span class="n">{}</span></li>"#,
                    symbol(k, 0.0, 0.0),
                    k.title(),
                    thousands(shown),
                    slug = k.slug()
                );
            }
            o.push_str("</ul>");
            let outside: u64 = all.iter().map(|m| m.count).sum::<u64>()
                - markers.iter().map(|m| m.count).sum::<u64>();
            if outside > 0 {
                let _ = write!(
                    o,
                    r##"<p class="note">{} more event(s) (FPM lifecycle, OOM kills, worker deaths) lie outside the charted range; they are listed in <a href="#chart-data">the chart's data</a>.</p>"##,
                    thousands(outside)
                );
            }
        }
        if self.summary.time_unknown > 0 {
            let _ = write!(
                o,
                r#"<p class="note">{} failed request(s) had no date in any input (lines pasted without their time) and are not on the chart; the legend and the sections below count them.</p>"#,
                thousands(self.summary.time_unknown)
            );
        }
        if self.run.markers.undated > 0 {
            let _ = write!(
                o,
                r#"<p class="note">{} kernel event(s) had no wall-clock time (raw dmesg that could not be aligned) and are not on the chart.</p>"#,
                thousands(self.run.markers.undated)
            );
        }
        self.chart_data(o, &bars, &causes, &all);
        o.push_str("</section>\n");
    }

    /// The chart in words: range, peak, per cause, markers.
    fn description(&self, bars: &Bars, causes: &[&CauseSummary], markers: &[&Marker]) -> String {
        let mut d = format!(
            "{} failed request(s) between {} and {}, counted per {}.",
            self.summary.total,
            self.t(EpochMs(bars.start_ms(0))),
            self.t(EpochMs(bars.end_ms())),
            human_width(bars.width_ms)
        );
        if let Some((i, n)) = (0..bars.bars.len())
            .map(|i| (i, bars.total(i)))
            .max_by_key(|&(i, n)| (n, std::cmp::Reverse(i)))
        {
            let _ = write!(
                d,
                " The most in one bar: {n}, from {}.",
                self.t(EpochMs(bars.start_ms(i)))
            );
        }
        for c in causes {
            let _ = match (c.first, c.last) {
                (Some(f), Some(l)) => write!(
                    d,
                    " {}: {} from {} to {}.",
                    c.cause.slug(),
                    c.count,
                    self.t(f),
                    self.t(l)
                ),
                _ => write!(d, " {}: {}, time unknown.", c.cause.slug(), c.count),
            };
        }
        if self.summary.time_unknown > 0 {
            let _ = write!(
                d,
                " {} failure(s) without any date are not charted.",
                self.summary.time_unknown
            );
        }
        for k in MarkerKind::ALL {
            let n: u64 = markers
                .iter()
                .filter(|m| m.kind == k)
                .map(|m| m.count)
                .sum();
            if n > 0 {
                let _ = write!(d, " {} × {}.", n, k.title());
            }
        }
        d
    }

    fn chart_data(&self, o: &mut String, bars: &Bars, causes: &[&CauseSummary], all: &[&Marker]) {
        o.push_str(r#"<details id="chart-data"><summary>The chart's data as tables</summary>"#);
        let _ = write!(
            o,
            r#"<div class="table-scroll"><table><caption class="sr-only">Failed requests per {}</caption><thead><tr><th scope="col">From</th><th scope="col" class="num">All</th>"#,
            human_width(bars.width_ms)
        );
        for c in causes {
            let _ = write!(
                o,
                r#"<th scope="col" class="num"><span class="swatch c-{0}"></span> {0}</th>"#,
                c.cause.slug()
            );
        }
        o.push_str("</tr></thead><tbody>");
        for (i, counts) in bars.bars.iter().enumerate() {
            let total = bars.total(i);
            if total == 0 {
                continue;
            }
            let _ = write!(
                o,
                r#"<tr><td>{}</td><td class="num">{}</td>"#,
                self.time(EpochMs(bars.start_ms(i))),
                total
            );
            for c in causes {
                let _ = write!(
                    o,
                    r#"<td class="num">{}</td>"#,
                    counts[cause_index(c.cause)]
                );
            }
            o.push_str("</tr>");
        }
        o.push_str("</tbody></table></div>");
        self.marker_table(o, all);
        o.push_str("</details>");
    }

    fn marker_table(&self, o: &mut String, all: &[&Marker]) {
        if all.is_empty() {
            return;
        }
        o.push_str(r#"<h4>Events from the FPM, kernel and systemd logs</h4><div class="table-scroll"><table><thead><tr><th scope="col">Time</th><th scope="col">Event</th><th scope="col">What</th><th scope="col">Where</th></tr></thead><tbody>"#);
        for m in all.iter().take(MARKER_ROWS) {
            let where_: Vec<String> = m
                .evidence
                .iter()
                .map(|e| format!("{}:{}", e.file, e.line))
                .collect();
            let what = if m.count > 1 {
                format!("{} (and {} more like it)", m.what, m.count - 1)
            } else {
                m.what.clone()
            };
            let _ = write!(
                o,
                r#"<tr data-kind="{}"><td>{}</td><td>{}</td><td class="wrap">{}</td><td class="wrap mono">{}</td></tr>"#,
                m.kind.slug(),
                self.time(m.at),
                m.kind.title(),
                Esc(&what),
                Esc(&where_.join(", "))
            );
        }
        o.push_str("</tbody></table></div>");
        if all.len() > MARKER_ROWS {
            let _ = write!(
                o,
                r#"<p class="note">The first {MARKER_ROWS} of {} events are listed.</p>"#,
                thousands(all.len() as u64)
            );
        }
        if self.run.markers.merged() {
            o.push_str(r#"<p class="note">There were so many events that neighbours of one kind were merged to keep the report small; each row says how many it stands for.</p>"#);
        }
    }

    /// Without failures, the events found are still worth a table.
    fn markers_only(&self, o: &mut String) {
        let all = self.run.markers.sorted();
        if all.is_empty() {
            return;
        }
        o.push_str(r#"<section class="panel" id="events" aria-labelledby="h-events"><h2 id="h-events">Events</h2>"#);
        self.marker_table(o, &all);
        o.push_str("</section>\n");
    }

    fn cause_sections(&self, o: &mut String) {
        o.push_str(r#"<section class="panel" id="causes" aria-labelledby="h-causes"><h2 id="h-causes">Causes</h2><p class="note">Most frequent first. Confidence is the mean over the cause's failures (see <i>How this report was made</i>).</p>"#);
        for s in self.summary.ranked() {
            self.cause(o, s);
        }
        o.push_str("</section>\n");
    }

    fn cause(&self, o: &mut String, s: &CauseSummary) {
        let slug = s.cause.slug();
        let number = match s.cause.number() {
            0 => String::new(),
            n => format!(r#"<span class="num">{n}.</span> "#),
        };
        let statuses: Vec<String> = s
            .by_status
            .iter()
            .map(|(st, n)| format!("{st}: {}", thousands(*n)))
            .collect();
        let _ = write!(
            o,
            r#"<article class="cause c-{slug}" id="cause-{slug}" data-cause="{slug}" data-count="{}" aria-labelledby="h-{slug}"><h3 id="h-{slug}"><span class="swatch c-{slug}"></span>{number}{} <code>{slug}</code></h3>"#,
            s.count,
            Esc(s.cause.title())
        );
        let strongest = s
            .examples
            .first()
            .map(|e| e.diagnosis.confidence.name())
            .unwrap_or("");
        let _ = write!(
            o,
            r#"<dl class="facts"><div><dt>Failed requests</dt><dd>{} ({})</dd></div><div><dt>First</dt><dd>{}</dd></div><div><dt>Last</dt><dd>{}</dd></div>{}<div><dt>Confidence</dt><dd>{} <small>(strongest case: {})</small></dd></div></dl>"#,
            thousands(s.count),
            statuses.join(", "),
            self.maybe_time(s.first),
            self.maybe_time(s.last),
            if s.time_unknown > 0 {
                format!(
                    "<div><dt>Time unknown</dt><dd>{}</dd></div>",
                    thousands(s.time_unknown)
                )
            } else {
                String::new()
            },
            percent(s.mean_confidence()),
            strongest
        );
        o.push_str(r#"<h4>Why</h4><ul class="reasons">"#);
        let mut listed = 0;
        let mut reasons: Vec<&(String, u64)> = s.reasons.iter().collect();
        reasons.sort_by_key(|r| std::cmp::Reverse(r.1));
        for (reason, n) in reasons {
            listed += n;
            let _ = write!(
                o,
                r#"<li><span class="n">{}×</span> {}</li>"#,
                thousands(*n),
                with_code(reason)
            );
        }
        if listed < s.count {
            let _ = write!(
                o,
                r#"<li><span class="n">{}×</span> other reasons (not itemised: only the first {} distinct reasons are kept)</li>"#,
                thousands(s.count - listed),
                s.reasons.len()
            );
        }
        o.push_str("</ul>");
        if !s.fix().is_empty() {
            let _ = write!(
                o,
                r#"<h4>Fix</h4><p class="fix">{}</p>"#,
                with_code(s.fix())
            );
        }
        self.evidence(o, s);
        o.push_str("</article>");
    }

    fn case_line(&self, c: &Classified, label: &str) -> String {
        let f = &c.failure;
        format!(
            r#"<p class="case">{label}: {} · {}{} · <span class="mono">{}</span> · confidence {} ({})</p>"#,
            self.maybe_time(f.time_known.then_some(f.time)),
            f.status,
            if f.status_inferred { " (inferred)" } else { "" },
            Esc(f.request.as_deref().unwrap_or("request not logged")),
            c.diagnosis.confidence.name(),
            percent(c.diagnosis.confidence.value())
        )
    }

    fn evidence(&self, o: &mut String, s: &CauseSummary) {
        let Some(best) = s.examples.first() else {
            return;
        };
        let lines = best.evidence();
        o.push_str("<h4>Evidence</h4>");
        o.push_str(&self.case_line(best, "Strongest case"));
        evidence_list(o, &lines[..lines.len().min(EVIDENCE_SHOWN)]);
        let more_lines = lines.len().saturating_sub(EVIDENCE_SHOWN);
        let more_cases = s.examples.len() - 1;
        if more_lines == 0 && more_cases == 0 {
            return;
        }
        let mut what = Vec::new();
        if more_lines > 0 {
            what.push(format!("{more_lines} more line(s) of this case"));
        }
        if more_cases > 0 {
            what.push(format!("{more_cases} more case(s)"));
        }
        let _ = write!(o, "<details><summary>{}</summary>", what.join(" and "));
        if more_lines > 0 {
            evidence_list(o, &lines[EVIDENCE_SHOWN..]);
        }
        for (i, c) in s.examples.iter().skip(1).enumerate() {
            o.push_str(&self.case_line(c, &format!("Case {}", i + 2)));
            evidence_list(o, &c.evidence());
        }
        o.push_str("</details>");
    }

    fn failures(&self, o: &mut String) {
        let rows = self.sample.rows();
        let _ = write!(
            o,
            r#"<section class="panel" id="failures" aria-labelledby="h-failures"><h2 id="h-failures">Failures</h2><p class="note" data-rows="{}" data-total="{}">"#,
            rows.len(),
            self.summary.total
        );
        let omitted = self.sample.omitted();
        if omitted.is_empty() {
            let _ = write!(
                o,
                "All {} failed requests, in time order.",
                thousands(self.summary.total)
            );
        } else {
            let parts: Vec<String> = omitted
                .iter()
                .map(|(c, n)| format!("{} of {}", thousands(*n), c.slug()))
                .collect();
            let _ = write!(
                o,
                "{} of {} failed requests, in time order: the table lists at most the first {} and the last {} of each cause ({} rows at most), so that the page stays small whatever the size of the logs. Not listed: {}. <code>--format json</code> lists every failure.",
                thousands(rows.len() as u64),
                thousands(self.summary.total),
                sample::FIRST_PER_CAUSE,
                sample::LAST_PER_CAUSE,
                thousands(MAX_ROWS as u64),
                parts.join(", ")
            );
        }
        o.push_str("</p>");
        o.push_str(r#"<div class="filters" id="failure-filters" hidden><label>Cause <select id="filter-cause"><option value="">all</option>"#);
        for c in self.causes() {
            let _ = write!(o, r#"<option value="{0}">{0}</option>"#, c.cause.slug());
        }
        o.push_str(r#"</select></label><label>Contains <input id="filter-text" type="search" autocomplete="off"></label><output id="filter-shown" aria-live="polite"></output></div>"#);
        o.push_str(r#"<div class="table-scroll"><table id="failure-table"><thead><tr><th scope="col">Time</th><th scope="col">Status</th><th scope="col">Request</th><th scope="col">Client</th><th scope="col">Upstream</th><th scope="col">Cause</th></tr></thead><tbody>"#);
        let one_day = self
            .range()
            .is_some_and(|(f, l)| self.t(f).get(..10) == self.t(l).get(..10));
        for r in &rows {
            let slug = r.cause.slug();
            let _ = write!(
                o,
                r##"<tr data-cause="{slug}"><td class="nowrap">{}</td><td class="nowrap">{}{}</td><td class="wrap mono">{}</td><td class="nowrap">{}</td><td class="wrap mono">{}</td><td class="nowrap"><a class="cause-link" href="#cause-{slug}"><span class="swatch c-{slug}"></span> {slug}</a></td></tr>"##,
                if r.time_known {
                    self.row_time(r.time, one_day)
                } else {
                    "unknown".to_string()
                },
                r.status,
                if r.status_inferred {
                    r#"<span class="status-inferred" title="inferred from the error-log message">*</span>"#
                } else {
                    ""
                },
                Esc(r.request.as_deref().unwrap_or("–")),
                Esc(r.client.as_deref().unwrap_or("–")),
                Esc(r.peer.as_deref().unwrap_or("–")),
            );
        }
        o.push_str("</tbody></table></div>");
        if rows.iter().any(|r| r.status_inferred) {
            o.push_str(r#"<p class="note">* The status was inferred from NGINX's error-log message (timeouts 504, other errors 502): no record or access-log entry gave it.</p>"#);
        }
        o.push_str("</section>\n");
    }

    fn inputs(&self, o: &mut String) {
        o.push_str(r#"<section class="panel" id="inputs" aria-labelledby="h-inputs"><h2 id="h-inputs">Inputs</h2><div class="table-scroll"><table><thead><tr><th scope="col">File</th><th scope="col">Kind</th><th scope="col">Detected by</th><th scope="col" class="num">Lines</th><th scope="col" class="num">Parsed</th><th scope="col" class="num">Not understood</th><th scope="col" class="num">Used</th></tr></thead><tbody>"#);
        for i in &self.run.inputs {
            let _ = write!(
                o,
                r#"<tr{}><td class="wrap mono">{}{}</td><td>{}</td><td>{}</td><td class="num">{}</td><td class="num">{}</td><td class="num nu">{}</td><td class="num">{}</td></tr>"#,
                if i.lines_not_understood > 0 || i.error.is_some() {
                    r#" class="bad""#
                } else {
                    ""
                },
                Esc(&i.name),
                i.error
                    .as_deref()
                    .map(|e| format!(r#"<br><span class="warn">read error: {}</span>"#, esc(e)))
                    .unwrap_or_default()
                    + &super::input_details(i)
                        .iter()
                        .map(|d| format!(r#"<br><small class="detail">{}</small>"#, esc(d)))
                        .collect::<String>(),
                i.kind.label(),
                RunInfo::detected_by(i.detected_by),
                thousands(i.lines_read),
                thousands(i.lines_parsed),
                thousands(i.lines_not_understood),
                thousands(i.lines_used)
            );
        }
        o.push_str("</tbody></table></div>");
        let with_examples: Vec<_> = self
            .run
            .inputs
            .iter()
            .filter(|i| !i.examples.is_empty())
            .collect();
        if !with_examples.is_empty() {
            o.push_str(r#"<details><summary>Lines not understood (the first examples of each file)</summary><ul class="evidence">"#);
            for i in with_examples {
                for ex in &i.examples {
                    let _ = write!(
                        o,
                        r#"<li><span class="src">{}</span><span class="loc">{}:{}</span><code>{}</code></li>"#,
                        i.kind.evidence_source().as_str(),
                        Esc(&i.name),
                        ex.line,
                        Esc(&ex.text)
                    );
                }
            }
            o.push_str("</ul></details>");
        }
        if !self.run.skipped.is_empty() {
            o.push_str(r#"<h4>Skipped</h4><ul>"#);
            for s in &self.run.skipped {
                let _ = write!(
                    o,
                    r#"<li><span class="mono">{}</span>: {}</li>"#,
                    Esc(&s.name),
                    Esc(&s.reason)
                );
            }
            o.push_str("</ul>");
        }
        o.push_str("</section>\n");
    }

    fn method(&self, o: &mut String) {
        let r = self.run;
        o.push_str(r#"<section class="panel" id="method" aria-labelledby="h-method"><h2 id="h-method">How this report was made</h2><ul>"#);
        let _ = write!(
            o,
            "<li>Local times in the NGINX and PHP-FPM logs were read as {} ({}); every time on this page is in that zone.</li>",
            Esc(&r.zone.name),
            Esc(r.zone.source.as_str())
        );
        if r.alignment.method != AlignMethod::NotNeeded {
            let _ = write!(
                o,
                "<li>Kernel times (seconds since boot): {}.</li>",
                Esc(&r.alignment.detail)
            );
        }
        if r.since.is_some() || r.until.is_some() {
            let _ = write!(
                o,
                "<li>Only failures {}{}{} were reported; {} outside that window were left out.</li>",
                r.since
                    .map(|s| format!("from {}", self.t(s)))
                    .unwrap_or_default(),
                if r.since.is_some() && r.until.is_some() {
                    " "
                } else {
                    ""
                },
                r.until
                    .map(|u| format!("until {}", self.t(u)))
                    .unwrap_or_default(),
                thousands(r.outside_window)
            );
        }
        o.push_str("<li>Failures were joined across inputs on NGINX's worker pid and connection number (a request seen as a record and as error-log lines is one failure), and correlated with FPM and kernel lines by time, worker pid, socket address and pool.</li>");
        if r.joined_lines > 0 {
            let _ = write!(
                o,
                "<li>{} line(s) were joined into failures seen in another input.</li>",
                thousands(r.joined_lines)
            );
        }
        o.push_str("<li>Confidence: certain 95%, strong 85%, likely 70%, ambiguous 50%, weak 25% — how much of the evidence was there, not how likely NGINX's message is.</li>");
        let _ = write!(
            o,
            "<li>Counts and the chart are exact. To keep this page small whatever the size of the logs, it lists at most {} failures (the first {} and last {} of each cause), three cases per cause and ten distinct reasons per cause; events on the chart are merged per bar.</li>",
            thousands(MAX_ROWS as u64),
            sample::FIRST_PER_CAUSE,
            sample::LAST_PER_CAUSE
        );
        if r.dropped_events > 0 {
            let _ = write!(
                o,
                r#"<li class="warn">{} context event(s) beyond the memory bound were not kept.</li>"#,
                thousands(r.dropped_events)
            );
        }
        o.push_str("</ul></section>\n");
    }
}

fn evidence_list(o: &mut String, lines: &[&Evidence]) {
    o.push_str(r#"<ol class="evidence">"#);
    for e in lines {
        let _ = write!(
            o,
            r#"<li><span class="src">{}</span><span class="loc">{}:{}</span><code>{}</code></li>"#,
            e.source.as_str(),
            Esc(&e.file),
            e.line,
            Esc(&e.text)
        );
    }
    o.push_str("</ol>");
}

impl<W: Write> Report for HtmlReport<W> {
    fn failure(&mut self, c: &Classified) -> io::Result<()> {
        // A failure without a date has no place on the timeline (the summary counts it).
        if c.failure.time_known {
            let t = c.failure.time.0;
            let zone = &self.zone;
            self.buckets
                .get_or_insert_with(|| Buckets::new(offset_ms(zone, t)))
                .add(t, c.diagnosis.cause);
        }
        self.sample.add(c);
        Ok(())
    }

    fn finish(&mut self, summary: &Summary, run: &RunInfo) -> io::Result<()> {
        let page = Page {
            zone: &self.zone,
            summary,
            run,
            sample: &self.sample,
            buckets: self.buckets.as_ref(),
        }
        .render();
        self.out.write_all(page.as_bytes())?;
        self.out.flush()
    }
}
