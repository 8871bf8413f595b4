//! The simulation: one web server (NGINX with two workers in front of a php8.2-fpm pool,
//! the gatelog module loaded) whose state -- pids, children, episodes, the clock -- evolves
//! step by step, each step writing what that server would log. The parts that write each log
//! live in the submodules; this file holds the state they share.

use std::path::Path;

use crate::clock::{days_from_civil, Stamps};
use crate::kind::Kind;
use crate::rng::Rng;
use crate::writer::LogWriter;

pub(crate) use incident::Incident;

mod failure;
mod fpm;
mod incident;
mod kernel;
mod manifest;
mod nginx;
mod other_backend;
mod record;
mod timeline;

pub(crate) struct Child {
    pid: u64,
    born_us: u64,
}

pub(crate) struct Episode {
    kind: Kind,
    until_us: u64,
    /// per million steps that emit a failure of this kind during the episode
    rate: u64,
}

pub(crate) struct Sim {
    rng: Rng,
    t_us: u64,
    boot_us: u64,
    st: Stamps,
    err: LogWriter,
    fpm: LogWriter,
    kern: LogWriter,
    rec: LogWriter,
    master_pid: u64,
    workers: [u64; 2],
    fpm_master: u64,
    fpm_up: bool,
    children: Vec<Child>,
    next_pid: u64,
    conn: u64,
    episode: Option<Episode>,
    rotation: Vec<Kind>,
    failures: [u64; 9],
    incident: Option<Incident>,
    records: u64,
    status_502: u64,
    status_504: u64,
    oom_kills: u64,
    segfaults: u64,
    reloads: u64,
    multi_line_stderr: u64,
    kern_noise_due_us: u64,
    fpm_recycle_due_us: u64,
}

impl Sim {
    /// A server whose logs start at `hour`:00 UTC on 2026-04-02.
    pub(crate) fn new(seed: u64, dir: &Path, hour: u64) -> Sim {
        // The machine booted ~4.9 days before 06:00.
        let start = days_from_civil(2026, 4, 2) as u64 * 86_400 + hour * 3600;
        let boot = days_from_civil(2026, 4, 2) as u64 * 86_400 + 6 * 3600 - 423_000;
        let mut sim = Sim {
            rng: Rng::new(seed),
            t_us: start * 1_000_000,
            boot_us: boot * 1_000_000 - 291_234,
            st: Stamps::new(),
            err: LogWriter::create(dir, "error.log"),
            fpm: LogWriter::create(dir, "php8.2-fpm.log"),
            kern: LogWriter::create(dir, "kern.log"),
            rec: LogWriter::create(dir, "gatelog.json"),
            master_pid: 812,
            workers: [1234, 1235],
            fpm_master: 0,
            fpm_up: false,
            children: Vec::new(),
            next_pid: 23_000,
            conn: 1_000,
            episode: None,
            rotation: Vec::new(),
            failures: [0; 9],
            incident: None,
            records: 0,
            status_502: 0,
            status_504: 0,
            oom_kills: 0,
            segfaults: 0,
            reloads: 0,
            multi_line_stderr: 0,
            kern_noise_due_us: 0,
            fpm_recycle_due_us: 0,
        };
        sim.kern_noise_due_us = sim.t_us;
        sim.fpm_recycle_due_us = sim.t_us + 600_000_000;
        sim.fpm_start();
        sim
    }

    pub(crate) fn total(&self) -> u64 {
        self.err.total() + self.fpm.total() + self.kern.total() + self.rec.total()
    }

    pub(crate) fn pid(&mut self) -> u64 {
        self.next_pid += self.rng.range(1, 7);
        if self.next_pid > 4_000_000 {
            self.next_pid = 2_000;
        }
        self.next_pid
    }

    pub(crate) fn stamp(&mut self) {
        self.st.at(self.t_us / 1_000_000);
    }

    // -------------------------------------------------------------- PHP-FPM log lines
}
