//! The incident input (`--incident`): one hour in which the site is down most of the time,
//! so that most NGINX error-log lines are upstream failures -- the hour an operator runs
//! `gatelog analyze` on, and the load the mostly quiet input (`step`) hides. Every kind
//! comes in turn as an episode (all seven FPM causes and the other backend), twice an hour,
//! with sporadic timeouts and other-backend failures in between, and the PHP-FPM and kernel
//! lines that go with them.
//!
//! The hour is one hour whatever the size: the clock advances by the time one hour takes
//! divided into as many steps as the target size holds, so a bigger input is a busier hour.

use super::{Episode, Sim};
use crate::kind::{Kind, ALL_KINDS};

const HOUR_US: u64 = 3_600_000_000;
/// Bytes a step writes on average, until enough steps have been taken to measure it.
const FIRST_GUESS_STEP_BYTES: u64 = 1_000;

pub(crate) struct Incident {
    target_bytes: u64,
    steps: u64,
}

impl Incident {
    pub(crate) fn new(target_bytes: u64) -> Incident {
        Incident {
            target_bytes: target_bytes.max(1),
            steps: 0,
        }
    }
}

impl Sim {
    pub(crate) fn start_incident(&mut self, target_bytes: u64) {
        self.incident = Some(Incident::new(target_bytes));
    }

    pub(crate) fn is_incident(&self) -> bool {
        self.incident.is_some()
    }

    /// One step of the incident hour.
    pub(crate) fn incident_step(&mut self) {
        let total = self.total();
        let Some(inc) = self.incident.as_mut() else {
            return;
        };
        inc.steps += 1;
        let per_step = if inc.steps > 200 {
            total / inc.steps
        } else {
            FIRST_GUESS_STEP_BYTES
        };
        let mean_us = (HOUR_US as u128 * per_step as u128 / inc.target_bytes as u128) as u64;
        self.t_us += self.rng.range(1, (2 * mean_us).max(2));
        if let Some(e) = &self.episode {
            if self.t_us >= e.until_us {
                self.end_episode();
            }
        }
        self.background();
        if self.episode.is_none() {
            self.start_incident_episode();
        }
        let roll = self.rng.below(100);
        if roll < 85 {
            let k = self.incident_failure_kind();
            self.failure(k);
        } else if self.rng.chance(2_000) {
            self.nginx_reload();
        } else if self.rng.chance(1_000) {
            self.reopen_logs();
        } else {
            self.nginx_noise();
        }
    }

    /// Episodes of every kind in a shuffled order, two rounds in the hour.
    fn start_incident_episode(&mut self) {
        if self.rotation.is_empty() {
            let mut order = ALL_KINDS.to_vec();
            for i in (1..order.len()).rev() {
                let j = self.rng.below(i as u64 + 1) as usize;
                order.swap(i, j);
            }
            self.rotation = order;
        }
        let Some(k) = self.rotation.pop() else {
            return;
        };
        let mean = HOUR_US / (2 * ALL_KINDS.len() as u64);
        let len = self.rng.range(mean * 7 / 10, mean * 13 / 10);
        self.episode_begins(k);
        self.episode = Some(Episode {
            kind: k,
            until_us: self.t_us + len,
            rate: 0,
        });
    }

    /// Mostly the episode's kind; a worker death (OOM kill, segfault) only now and then, as
    /// the kernel kills a few workers a second, not one per request; between them timeouts
    /// and the other backend, whichever the state of FPM allows.
    fn incident_failure_kind(&mut self) -> Kind {
        let current = self.episode.as_ref().map(|e| e.kind);
        let episode_share = match current {
            Some(Kind::Reset | Kind::Closed) => 100_000,
            Some(_) => 800_000,
            None => 0,
        };
        if let Some(k) = current {
            if self.rng.chance(episode_share) {
                return k;
            }
        }
        let fpm_reachable = self.fpm_up
            && !matches!(
                current,
                Some(Kind::Enoent | Kind::Econnrefused | Kind::Eacces)
            );
        if !fpm_reachable {
            return Kind::OtherBackend;
        }
        match self.rng.weighted(&[5, 4, 1]) {
            0 => Kind::Timeout,
            1 => Kind::OtherBackend,
            _ => Kind::Closed,
        }
    }
}
