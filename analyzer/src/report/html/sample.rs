//! The failures listed in the report's table: for each cause its first
//! [`FIRST_PER_CAUSE`] and last [`LAST_PER_CAUSE`] failures, so the table is bounded
//! (at most [`MAX_ROWS`] rows) while it still shows how every cause began and ended.
//! Every failure is in `--format json`.

use std::collections::{BTreeMap, VecDeque};

use super::super::Classified;
use crate::model::{clip, Cause};
use crate::time::EpochMs;

pub const FIRST_PER_CAUSE: usize = 100;
pub const LAST_PER_CAUSE: usize = 100;
pub const MAX_ROWS: usize = (FIRST_PER_CAUSE + LAST_PER_CAUSE) * Cause::ALL.len();
/// Longest request line or upstream kept per row.
const TEXT_MAX: usize = 300;

#[derive(Debug, Clone)]
pub struct Row {
    /// Order of arrival (ties in time keep it).
    pub seq: u64,
    pub time: EpochMs,
    /// False for a line without any date (its `time` only keeps the order).
    pub time_known: bool,
    pub status: u16,
    pub status_inferred: bool,
    pub request: Option<String>,
    pub peer: Option<String>,
    pub client: Option<String>,
    pub cause: Cause,
}

#[derive(Debug, Default)]
struct PerCause {
    first: Vec<Row>,
    last: VecDeque<Row>,
    /// Failures between the first and the last ones, not listed.
    omitted: u64,
}

#[derive(Debug, Default)]
pub struct Sample {
    causes: BTreeMap<Cause, PerCause>,
    seq: u64,
}

impl Sample {
    pub fn add(&mut self, c: &Classified) {
        let f = &c.failure;
        let row = Row {
            seq: self.seq,
            time: f.time,
            time_known: f.time_known,
            status: f.status,
            status_inferred: f.status_inferred,
            request: f.request.as_deref().map(|r| clip(r, TEXT_MAX)),
            peer: f.peer.as_ref().map(|p| clip(&p.0, TEXT_MAX)),
            client: f.client.as_deref().map(|r| clip(r, TEXT_MAX)),
            cause: c.diagnosis.cause,
        };
        self.seq += 1;
        let p = self.causes.entry(row.cause).or_default();
        if p.first.len() < FIRST_PER_CAUSE {
            p.first.push(row);
            return;
        }
        p.last.push_back(row);
        if p.last.len() > LAST_PER_CAUSE {
            p.last.pop_front();
            p.omitted += 1;
        }
    }

    /// Rows kept, in time order.
    pub fn rows(&self) -> Vec<&Row> {
        let mut v: Vec<&Row> = self
            .causes
            .values()
            .flat_map(|p| p.first.iter().chain(p.last.iter()))
            .collect();
        v.sort_by_key(|r| (r.time, r.seq));
        v
    }

    /// Failures not listed, per cause.
    pub fn omitted(&self) -> Vec<(Cause, u64)> {
        self.causes
            .iter()
            .filter(|(_, p)| p.omitted > 0)
            .map(|(c, p)| (*c, p.omitted))
            .collect()
    }

    #[cfg(test)]
    pub fn held(&self) -> usize {
        self.causes
            .values()
            .map(|p| p.first.len() + p.last.len())
            .sum()
    }
}
