//! The timeline as inline SVG: failures per bar stacked by cause (one `<g
//! class="series">` per cause, bottom-up in the guide's order, a fixed colour per
//! cause from the stylesheet), markers for FPM lifecycle changes, OOM kills and
//! worker deaths above the bars, axes with local times. The drawing has a fixed
//! viewBox and scales with the page; every number it shows is also in the HTML
//! around it (legend, data table) for readers who cannot see it.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::buckets::{cause_index, ladder_ms, Bars, DISPLAY_WIDTHS_S};
use super::escape::Esc;
use crate::context::markers::{Marker, MarkerKind};
use crate::model::Cause;
use crate::time::{EpochMs, Zone};

const W: f64 = 960.0;
const H: f64 = 330.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
/// Marker rows: lifecycle changes, then deaths.
const LANE_Y: [f64; 2] = [14.0, 34.0];
const PLOT_TOP: f64 = 50.0;
const PLOT_BOTTOM: f64 = 290.0;
/// Most x-axis labels.
const MAX_TICKS: i64 = 8;
/// Marker symbols of one row (lifecycle, deaths) that still get lines down through
/// the bars.
const LINES_MAX: usize = 24;
/// Marker lines listed in one symbol's tooltip.
const TOOLTIP_LINES: usize = 6;

/// `1 s`, `15 min`, `2 h`, `7 days`.
pub fn human_width(ms: i64) -> String {
    let s = ms / 1000;
    match s {
        s if s % 86_400 == 0 && s > 86_400 => format!("{} days", s / 86_400),
        86_400 => "1 day".to_string(),
        s if s % 3_600 == 0 => format!("{} h", s / 3_600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// `HH:MM:SS` of a `YYYY-MM-DD HH:MM:SS` time (the whole text if it is not one).
fn time_of_day(s: &str) -> &str {
    s.get(11..).unwrap_or(s)
}

/// The smallest of 1, 2, 5 × 10^k at or above `x`.
fn nice(x: u64) -> u64 {
    let mut p = 1u64;
    while p.saturating_mul(10) <= x {
        p *= 10;
    }
    for m in [1, 2, 5, 10] {
        if m * p >= x {
            return m * p;
        }
    }
    10 * p
}

pub struct Chart<'a> {
    pub bars: &'a Bars,
    /// Causes present, stacked bottom-up in this order.
    pub causes: &'a [Cause],
    /// Markers within the bars' range, in time order.
    pub markers: &'a [&'a Marker],
    pub zone: &'a Zone,
    /// Text alternative (the `<desc>`).
    pub description: &'a str,
}

fn kind_row(k: MarkerKind) -> usize {
    match k {
        MarkerKind::OomKill | MarkerKind::WorkerDeath => 1,
        _ => 0,
    }
}

/// The marker's symbol centred on (x, y).
pub fn symbol(k: MarkerKind, x: f64, y: f64) -> String {
    match k {
        MarkerKind::FpmStart => format!(
            r#"<path d="M{:.1} {:.1}L{:.1} {:.1}L{:.1} {:.1}Z"/>"#,
            x,
            y - 6.0,
            x + 6.0,
            y + 5.0,
            x - 6.0,
            y + 5.0
        ),
        MarkerKind::FpmStop => format!(
            r#"<rect x="{:.1}" y="{:.1}" width="10" height="10"/>"#,
            x - 5.0,
            y - 5.0
        ),
        MarkerKind::FpmReload => format!(r#"<circle cx="{x:.1}" cy="{y:.1}" r="5.5"/>"#),
        MarkerKind::OomKill => format!(
            r#"<path d="M{:.1} {:.1}L{:.1} {:.1}L{:.1} {:.1}L{:.1} {:.1}Z"/>"#,
            x,
            y - 7.0,
            x + 6.0,
            y,
            x,
            y + 7.0,
            x - 6.0,
            y
        ),
        MarkerKind::WorkerDeath => format!(
            r#"<path class="cross" d="M{:.1} {:.1}L{:.1} {:.1}M{:.1} {:.1}L{:.1} {:.1}"/>"#,
            x - 5.0,
            y - 5.0,
            x + 5.0,
            y + 5.0,
            x + 5.0,
            y - 5.0,
            x - 5.0,
            y + 5.0
        ),
    }
}

impl Chart<'_> {
    fn x_of(&self, t_ms: i64) -> f64 {
        let from = self.bars.start_ms(0) as f64;
        let to = self.bars.end_ms() as f64;
        LEFT + (t_ms as f64 - from) / (to - from).max(1.0) * (W - LEFT - RIGHT)
    }

    fn local(&self, t_ms: i64) -> String {
        self.zone.format_short(EpochMs(t_ms))
    }

    pub fn render(&self, o: &mut String) {
        let b = self.bars;
        let n = b.bars.len().max(1);
        let max = (0..b.bars.len())
            .map(|i| b.total(i))
            .max()
            .unwrap_or(0)
            .max(1);
        let step = nice(max.div_ceil(4));
        let top = max.div_ceil(step) * step;
        let plot_h = PLOT_BOTTOM - PLOT_TOP;
        let slot = (W - LEFT - RIGHT) / n as f64;
        let bar_w = (slot * 0.8).clamp(1.0, 48.0);
        let _ = write!(
            o,
            r#"<svg class="timeline" viewBox="0 0 {W} {H}" role="img" aria-labelledby="chart-title chart-desc" xmlns="http://www.w3.org/2000/svg" data-bar-ms="{}" data-bars="{}">"#,
            b.width_ms,
            b.bars.len()
        );
        let _ = write!(
            o,
            r#"<title id="chart-title">Failures per {} by cause</title><desc id="chart-desc">{}</desc>"#,
            human_width(b.width_ms),
            Esc(self.description)
        );
        // Grid and y axis.
        o.push_str(r#"<g class="axis y">"#);
        let mut v = 0;
        while v <= top {
            let y = PLOT_BOTTOM - v as f64 / top as f64 * plot_h;
            let _ = write!(
                o,
                r#"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}"/><text x="{:.1}" y="{:.1}">{v}</text>"#,
                W - RIGHT,
                LEFT - 8.0,
                y + 4.0
            );
            v += step;
        }
        let _ = write!(
            o,
            r#"<text class="label" transform="translate(14 {:.1}) rotate(-90)">failures per {}</text></g>"#,
            PLOT_TOP + plot_h / 2.0,
            human_width(b.width_ms)
        );
        // Stacks: heights per bar and cause, then one group per cause.
        let mut base = vec![0.0f64; b.bars.len()];
        for &cause in self.causes {
            let ci = cause_index(cause);
            let total: u64 = b.bars.iter().map(|c| c[ci]).sum();
            let _ = write!(
                o,
                r#"<g class="series c-{slug}" data-cause="{slug}" data-total="{total}">"#,
                slug = cause.slug()
            );
            for (i, counts) in b.bars.iter().enumerate() {
                let k = counts[ci];
                if k == 0 {
                    continue;
                }
                // At least a pixel: one failure among thousands still shows.
                let h = (k as f64 / top as f64 * plot_h).max(1.0);
                let y = PLOT_BOTTOM - base[i] - h;
                base[i] += h;
                let x = LEFT + slot * i as f64 + (slot - bar_w) / 2.0;
                let _ = write!(
                    o,
                    r#"<rect x="{x:.1}" y="{y:.1}" width="{bar_w:.1}" height="{h:.1}" data-count="{k}" data-start="{}"><title>{} – {}: {k} × {}</title></rect>"#,
                    b.start_ms(i),
                    Esc(&self.local(b.start_ms(i))),
                    Esc(time_of_day(&self.local(b.start_ms(i + 1)))),
                    cause.slug()
                );
            }
            o.push_str("</g>");
        }
        self.x_axis(o);
        self.render_markers(o);
        o.push_str("</svg>");
    }

    fn x_axis(&self, o: &mut String) {
        let b = self.bars;
        let from = b.start_ms(0);
        let to = b.end_ms();
        let mut n = 0;
        let tick = loop {
            let t = ladder_ms(&DISPLAY_WIDTHS_S, n);
            if (t % b.width_ms == 0 && (to - from) / t <= MAX_TICKS) || n > 80 {
                break t;
            }
            n += 1;
        };
        let off = b.offset_ms();
        let mut t = (from + off).div_euclid(tick) * tick - off;
        if t < from {
            t += tick;
        }
        let _ = write!(
            o,
            r#"<g class="axis x"><line x1="{LEFT}" x2="{:.1}" y1="{PLOT_BOTTOM}" y2="{PLOT_BOTTOM}"/>"#,
            W - RIGHT
        );
        let mut last_day = String::new();
        while t <= to {
            let x = self.x_of(t);
            let full = self.local(t);
            let (day, time) = full.split_at(10.min(full.len()));
            let time = time.trim();
            let label = if tick >= 86_400_000 {
                day.get(5..).unwrap_or(day).to_string()
            } else {
                let hm = if tick < 60_000 {
                    time
                } else {
                    time.get(..5).unwrap_or(time)
                };
                if day != last_day {
                    format!("{} {hm}", day.get(5..).unwrap_or(day))
                } else {
                    hm.to_string()
                }
            };
            last_day = day.to_string();
            let anchor = if x < LEFT + 30.0 {
                "start"
            } else if x > W - RIGHT - 30.0 {
                "end"
            } else {
                "middle"
            };
            let _ = write!(
                o,
                r#"<line class="tick" x1="{x:.1}" x2="{x:.1}" y1="{PLOT_BOTTOM}" y2="{:.1}"/><text x="{x:.1}" y="{:.1}" text-anchor="{anchor}"><title>{}</title>{}</text>"#,
                PLOT_BOTTOM + 5.0,
                PLOT_BOTTOM + 20.0,
                Esc(&full),
                Esc(&label)
            );
            t += tick;
        }
        o.push_str("</g>");
    }

    fn render_markers(&self, o: &mut String) {
        if self.markers.is_empty() {
            return;
        }
        let b = self.bars;
        // One symbol per bar and kind: a storm of crashes stays readable and small.
        let mut groups: BTreeMap<(i64, MarkerKind), Vec<&Marker>> = BTreeMap::new();
        for m in self.markers {
            let bar = (m.at.0 - b.start_ms(0)).div_euclid(b.width_ms);
            groups.entry((bar, m.kind)).or_default().push(m);
        }
        // Symbols of different kinds in one bar and row sit side by side.
        let mut per_row: BTreeMap<(i64, usize), usize> = BTreeMap::new();
        for (bar, kind) in groups.keys() {
            *per_row.entry((*bar, kind_row(*kind))).or_default() += 1;
        }
        let mut placed: BTreeMap<(i64, usize), usize> = BTreeMap::new();
        // Lines down through the bars only while they are few: a storm of crashes
        // or restarts would hide the bars (the symbols stay).
        let lines: Vec<bool> = (0..LANE_Y.len())
            .map(|row| groups.keys().filter(|(_, k)| kind_row(*k) == row).count() <= LINES_MAX)
            .collect();
        // Room for a `×N` label beside a symbol.
        let labels = (W - LEFT - RIGHT) / (b.bars.len().max(1) as f64) >= 26.0;
        // Side by side in the order they happened; at the same instant a stop before
        // a start (a restart).
        let rank = |k: MarkerKind| match k {
            MarkerKind::FpmStop => 0,
            MarkerKind::FpmReload => 1,
            MarkerKind::FpmStart => 2,
            MarkerKind::OomKill => 3,
            MarkerKind::WorkerDeath => 4,
        };
        let mut order: Vec<(&(i64, MarkerKind), &Vec<&Marker>)> = groups.iter().collect();
        order.sort_by_key(|((bar, kind), g)| (*bar, g[0].at, rank(*kind)));
        o.push_str(r#"<g class="markers">"#);
        for ((bar, kind), group) in order {
            let kind = *kind;
            let row = kind_row(kind);
            let count: u64 = group.iter().map(|m| m.count).sum();
            let line_x = self.x_of(group[0].at.0);
            let k = placed.entry((*bar, row)).or_default();
            let of = per_row[&(*bar, row)];
            let x = line_x + (*k as f64 - (of as f64 - 1.0) / 2.0) * 14.0;
            *k += 1;
            let y = LANE_Y[row];
            let mut tip = String::new();
            for m in group.iter().take(TOOLTIP_LINES) {
                let _ = write!(tip, "{} {}", self.local(m.at.0), m.what);
                if m.count > 1 {
                    let _ = write!(tip, " (and {} more)", m.count - 1);
                }
                if let Some(e) = m.evidence.first() {
                    let _ = write!(tip, " [{}:{}]", e.file, e.line);
                }
                tip.push('\n');
            }
            if group.len() > TOOLTIP_LINES {
                let _ = write!(tip, "… {} more", group.len() - TOOLTIP_LINES);
            }
            let _ = write!(
                o,
                r#"<g class="marker mk-{slug}" data-kind="{slug}" data-count="{count}"><title>{}</title>"#,
                Esc(tip.trim_end()),
                slug = kind.slug()
            );
            if lines[row] {
                let _ = write!(
                    o,
                    r#"<line x1="{line_x:.1}" x2="{line_x:.1}" y1="{:.1}" y2="{PLOT_BOTTOM}"/>"#,
                    y + 8.0
                );
            }
            o.push_str(&symbol(kind, x, y));
            if count > 1 && labels {
                let _ = write!(
                    o,
                    r#"<text x="{:.1}" y="{:.1}">×{count}</text>"#,
                    x + 8.0,
                    y + 4.0
                );
            }
            o.push_str("</g>");
        }
        o.push_str("</g>");
    }
}
