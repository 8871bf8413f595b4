//! Failures per time bucket and cause, counted as they stream by, for the timeline.
//! The range is not known until the end, so counts are kept at a fine width that
//! widens (1 s, 1 min, 1 h, 1 day, then weeks) whenever the failures would span more
//! than [`FINE_LIMIT`] buckets: memory is bounded whatever the input's size. At the
//! end the bar width is chosen from the range ([`DISPLAY_WIDTHS_S`], at most
//! [`MAX_BARS`] bars), always a multiple of the fine width, so bars add up exactly.
//!
//! Buckets start at round local times: the zone's UTC offset at the first failure is
//! added before dividing, so hour buckets in a +05:30 zone start at :00 local.

use std::collections::BTreeMap;

use crate::model::Cause;

/// Most fine buckets the failures may span before the width grows.
pub const FINE_LIMIT: i64 = 4_000;
/// Most bars on the chart.
pub const MAX_BARS: i64 = 120;
/// Fine widths in seconds, each dividing every display width at or above it; past
/// the last one, widths double.
const FINE_WIDTHS_S: [i64; 5] = [1, 60, 3_600, 86_400, 604_800];
/// Bar widths in seconds; past the last one, widths double.
pub const DISPLAY_WIDTHS_S: [i64; 19] = [
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1_800, 3_600, 7_200, 10_800, 21_600, 43_200,
    86_400, 604_800,
];

/// Counts per cause, indexed like [`Cause::ALL`].
pub type Counts = [u64; Cause::ALL.len()];

pub fn cause_index(c: Cause) -> usize {
    Cause::ALL
        .iter()
        .position(|x| *x == c)
        .unwrap_or(Cause::ALL.len() - 1)
}

/// The n-th width of a ladder (ms), doubling past its end.
pub fn ladder_ms(ladder: &[i64], n: usize) -> i64 {
    let last = ladder.len() - 1;
    if n <= last {
        ladder[n] * 1000
    } else {
        let shift = (n - last).min(40) as u32;
        (ladder[last] * 1000).saturating_mul(1i64 << shift)
    }
}

#[derive(Debug)]
pub struct Buckets {
    offset_ms: i64,
    /// Index into the fine ladder.
    step: usize,
    width_ms: i64,
    counts: BTreeMap<i64, Counts>,
    pub first_ms: Option<i64>,
    pub last_ms: Option<i64>,
}

/// Bars for the chart: `bars[i]` covers [`start_ms(i)`, `start_ms(i + 1)`).
#[derive(Debug, Clone)]
pub struct Bars {
    pub width_ms: i64,
    offset_ms: i64,
    first_index: i64,
    pub bars: Vec<Counts>,
}

impl Bars {
    /// Start of bar `i` (may be one past the end), ms since the epoch.
    pub fn start_ms(&self, i: usize) -> i64 {
        (self.first_index + i as i64) * self.width_ms - self.offset_ms
    }

    /// The zone offset the bars are aligned with.
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms
    }

    pub fn end_ms(&self) -> i64 {
        self.start_ms(self.bars.len())
    }

    pub fn total(&self, i: usize) -> u64 {
        self.bars[i].iter().sum()
    }
}

impl Buckets {
    /// `offset_ms`: the zone's UTC offset (local = UTC + offset).
    pub fn new(offset_ms: i64) -> Buckets {
        Buckets {
            offset_ms,
            step: 0,
            width_ms: ladder_ms(&FINE_WIDTHS_S, 0),
            counts: BTreeMap::new(),
            first_ms: None,
            last_ms: None,
        }
    }

    fn index(&self, t_ms: i64) -> i64 {
        t_ms.saturating_add(self.offset_ms)
            .div_euclid(self.width_ms)
    }

    pub fn add(&mut self, t_ms: i64, cause: Cause) {
        self.first_ms = Some(self.first_ms.map_or(t_ms, |f| f.min(t_ms)));
        self.last_ms = Some(self.last_ms.map_or(t_ms, |l| l.max(t_ms)));
        let i = self.index(t_ms);
        self.counts.entry(i).or_insert([0; Cause::ALL.len()])[cause_index(cause)] += 1;
        while self.span() > FINE_LIMIT {
            self.widen();
        }
    }

    /// Fine buckets spanned.
    fn span(&self) -> i64 {
        match (self.counts.first_key_value(), self.counts.last_key_value()) {
            (Some((a, _)), Some((b, _))) => b - a + 1,
            _ => 0,
        }
    }

    fn widen(&mut self) {
        self.step += 1;
        let w = ladder_ms(&FINE_WIDTHS_S, self.step);
        let factor = w / self.width_ms;
        let mut out: BTreeMap<i64, Counts> = BTreeMap::new();
        for (i, c) in std::mem::take(&mut self.counts) {
            let slot = out
                .entry(i.div_euclid(factor))
                .or_insert([0; Cause::ALL.len()]);
            for (a, b) in slot.iter_mut().zip(c) {
                *a += b;
            }
        }
        self.counts = out;
        self.width_ms = w;
    }

    /// Fine buckets held (the memory used).
    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.counts.len()
    }

    #[cfg(test)]
    pub fn fine_width_ms(&self) -> i64 {
        self.width_ms
    }

    /// The bar width for a chart of [from_ms, to_ms]: the narrowest display width
    /// that is a multiple of the fine width and needs at most MAX_BARS bars.
    pub fn bar_width_ms(&self, from_ms: i64, to_ms: i64) -> i64 {
        let mut n = 0;
        loop {
            let d = ladder_ms(&DISPLAY_WIDTHS_S, n);
            let bars = (to_ms.saturating_add(self.offset_ms)).div_euclid(d)
                - (from_ms.saturating_add(self.offset_ms)).div_euclid(d)
                + 1;
            if (d >= self.width_ms && d % self.width_ms == 0 && bars <= MAX_BARS) || n > 80 {
                return d;
            }
            n += 1;
        }
    }

    /// The counts as bars over [from_ms, to_ms] (which holds every failure).
    pub fn bars(&self, from_ms: i64, to_ms: i64) -> Bars {
        let d = self.bar_width_ms(from_ms, to_ms);
        let first = from_ms.saturating_add(self.offset_ms).div_euclid(d);
        let last = to_ms.saturating_add(self.offset_ms).div_euclid(d);
        let n = (last - first + 1).clamp(1, MAX_BARS * 2) as usize;
        let mut bars = vec![[0u64; Cause::ALL.len()]; n];
        let factor = (d / self.width_ms).max(1);
        for (i, c) in &self.counts {
            let j = (i.div_euclid(factor) - first).clamp(0, n as i64 - 1) as usize;
            for (a, b) in bars[j].iter_mut().zip(c) {
                *a += b;
            }
        }
        Bars {
            width_ms: d,
            offset_ms: self.offset_ms,
            first_index: first,
            bars,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_795_392_000_000; // 2026-11-23T00:00:00Z

    fn total(b: &Bars) -> u64 {
        (0..b.bars.len()).map(|i| b.total(i)).sum()
    }

    #[test]
    fn the_bar_width_follows_the_range() {
        let b = Buckets::new(0);
        let w = |span_s: i64| b.bar_width_ms(T0, T0 + span_s * 1000) / 1000;
        assert_eq!(w(0), 1);
        assert_eq!(w(30), 1);
        assert_eq!(w(119), 1);
        assert_eq!(w(200), 2);
        assert_eq!(w(590), 5);
        assert_eq!(w(3_000), 30);
        assert_eq!(w(3_600), 60);
        assert_eq!(w(6 * 3_600), 300);
        assert_eq!(w(24 * 3_600), 900);
        assert_eq!(w(7 * 86_400), 7_200);
        assert_eq!(w(90 * 86_400), 86_400);
    }

    #[test]
    fn counts_add_up_per_bar_and_cause() {
        let mut b = Buckets::new(0);
        for s in 0..10 {
            b.add(T0 + s * 1000 + 500, Cause::ReadTimeout);
        }
        b.add(T0 + 3_200, Cause::WorkerOomKilled);
        let bars = b.bars(T0, T0 + 9_999);
        assert_eq!(bars.width_ms, 1000);
        assert_eq!(bars.bars.len(), 10);
        assert_eq!(bars.bars[3][cause_index(Cause::ReadTimeout)], 1);
        assert_eq!(bars.bars[3][cause_index(Cause::WorkerOomKilled)], 1);
        assert_eq!(bars.start_ms(3), T0 + 3_000);
        assert_eq!(total(&bars), 11);
    }

    #[test]
    fn buckets_start_at_round_local_times() {
        // +05:30: local midnight is 18:30 UTC the day before.
        let off = (5 * 60 + 30) * 60_000;
        let mut b = Buckets::new(off);
        let local_midnight = T0 - off;
        b.add(local_midnight + 10 * 3_600_000, Cause::FpmNotRunning);
        b.add(local_midnight + 30 * 3_600_000, Cause::FpmNotRunning);
        let bars = b.bars(
            local_midnight + 10 * 3_600_000,
            local_midnight + 30 * 3_600_000,
        );
        assert_eq!(bars.width_ms, 900_000);
        // Each bar starts on a quarter hour of local time.
        for i in 0..bars.bars.len() {
            assert_eq!((bars.start_ms(i) + off).rem_euclid(900_000), 0);
        }
        assert_eq!(total(&bars), 2);
    }

    #[test]
    fn memory_is_bounded_over_a_year_of_failures() {
        let mut b = Buckets::new(0);
        let mut n = 0u64;
        // One failure every 37 s for a year, causes in turn.
        let mut t = T0;
        while t < T0 + 365 * 86_400_000 {
            b.add(t, Cause::ALL[(n % 8) as usize]);
            n += 1;
            t += 37_000;
            assert!(b.held() as i64 <= FINE_LIMIT);
        }
        assert_eq!(b.fine_width_ms(), 86_400_000);
        let (f, l) = (b.first_ms.unwrap(), b.last_ms.unwrap());
        let bars = b.bars(f, l);
        assert!(bars.bars.len() as i64 <= MAX_BARS);
        assert_eq!(bars.width_ms % b.fine_width_ms(), 0);
        assert_eq!(total(&bars), n);
    }

    #[test]
    fn failures_out_of_order_and_far_apart_are_all_counted() {
        let mut b = Buckets::new(0);
        b.add(T0 + 5_000, Cause::Unknown);
        b.add(T0, Cause::Unknown);
        // A stray line dated ten years later widens everything, loses nothing.
        b.add(T0 + 10 * 365 * 86_400_000, Cause::Unknown);
        let bars = b.bars(b.first_ms.unwrap(), b.last_ms.unwrap());
        assert!(bars.bars.len() as i64 <= MAX_BARS);
        assert_eq!(total(&bars), 3);
    }
}
