//! Events worth marking on a report's timeline: PHP-FPM starting, stopping and
//! reloading, the kernel's OOM kills and PHP workers dying abnormally. The context
//! forgets its events once they are too old to explain a failure; these markers are
//! kept for the whole run so that a report can show them next to the failures.
//!
//! Memory stays bounded: one event seen in several logs (FPM's `exited on signal 9`
//! and the kernel's `Killed process` for the same pid, `Terminating ...` and `exiting,
//! bye-bye!` of one stop) is one marker, and past [`MAX_MARKERS`] markers of one kind
//! close in time are merged into one that counts them.

use super::Timed;
use crate::model::Evidence;
use crate::parse::fpm::FpmEvent;
use crate::parse::journal::{UnitEvent, UnitMessage};
use crate::parse::kernel::{self, KernelEvent};
use crate::time::EpochMs;

/// Markers kept before neighbours of one kind are merged.
pub const MAX_MARKERS: usize = 2_000;
/// Lines of one start, stop or reload come within this of each other.
const SAME_LIFECYCLE_MS: i64 = 2_000;
/// FPM's exit line and the kernel's line about one worker's death.
const SAME_DEATH_MS: i64 = 5_000;
/// Markers compared with a new event (logs are read in step, so the same event from
/// two logs arrives close together).
const RECENT: usize = 32;
/// Evidence lines kept per marker.
const EVIDENCE_PER_MARKER: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MarkerKind {
    FpmStart,
    FpmStop,
    FpmReload,
    OomKill,
    WorkerDeath,
}

impl MarkerKind {
    pub const ALL: [MarkerKind; 5] = [
        MarkerKind::FpmStart,
        MarkerKind::FpmStop,
        MarkerKind::FpmReload,
        MarkerKind::OomKill,
        MarkerKind::WorkerDeath,
    ];

    pub fn slug(self) -> &'static str {
        match self {
            MarkerKind::FpmStart => "fpm-start",
            MarkerKind::FpmStop => "fpm-stop",
            MarkerKind::FpmReload => "fpm-reload",
            MarkerKind::OomKill => "oom-kill",
            MarkerKind::WorkerDeath => "worker-death",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            MarkerKind::FpmStart => "PHP-FPM started",
            MarkerKind::FpmStop => "PHP-FPM stopped",
            MarkerKind::FpmReload => "PHP-FPM reloaded",
            MarkerKind::OomKill => "OOM kill",
            MarkerKind::WorkerDeath => "PHP worker died",
        }
    }

    fn is_death(self) -> bool {
        matches!(self, MarkerKind::OomKill | MarkerKind::WorkerDeath)
    }

    /// When two lines describe one event, the more specific kind names it: an OOM
    /// kill is why the worker died; a start right after a reload is the reload's.
    fn outranks(self, other: MarkerKind) -> bool {
        matches!(
            (self, other),
            (MarkerKind::OomKill, MarkerKind::WorkerDeath)
                | (MarkerKind::FpmReload, MarkerKind::FpmStart)
        )
    }
}

#[derive(Debug, Clone)]
pub struct Marker {
    pub at: EpochMs,
    pub kind: MarkerKind,
    /// Events in this marker: 1, more once the bound merged neighbours.
    pub count: u64,
    pub pid: Option<u32>,
    /// What happened, in a few words ("worker 2735 exited on signal 9 (SIGKILL)").
    pub what: String,
    /// The lines that say so (one event seen in two logs has two).
    pub evidence: Vec<Evidence>,
}

#[derive(Debug, Default)]
pub struct Markers {
    list: Vec<Marker>,
    /// Events without a wall-clock time (raw dmesg that could not be aligned).
    pub undated: u64,
    /// Once the bound was reached: markers of one kind within one slot of this
    /// width share an entry (0: not yet).
    merge_ms: i64,
}

impl Markers {
    /// Notes an FPM event that is a marker (lifecycle, abnormal child exit).
    pub fn fpm(&mut self, e: &Timed<FpmEvent>) {
        let (kind, pid, what) = match &e.event {
            FpmEvent::Running { pid } => (
                MarkerKind::FpmStart,
                None,
                format!("PHP-FPM started (master {pid})"),
            ),
            FpmEvent::Ready => (MarkerKind::FpmStart, None, "PHP-FPM started".to_string()),
            FpmEvent::Reloading => (MarkerKind::FpmReload, None, "PHP-FPM reloaded".into()),
            FpmEvent::Terminating | FpmEvent::Exiting => {
                (MarkerKind::FpmStop, None, "PHP-FPM stopped".to_string())
            }
            FpmEvent::InitFailed => (
                MarkerKind::FpmStop,
                None,
                "PHP-FPM failed to start".to_string(),
            ),
            FpmEvent::ChildExited {
                pid,
                signal,
                signal_name,
                code,
                ..
            } => {
                // SIGQUIT is FPM's own graceful stop of a child; code 0 a clean exit.
                let how = match (signal, code) {
                    (Some(s), _) if *s != 3 => match signal_name {
                        Some(n) => format!("on signal {s} ({n})"),
                        None => format!("on signal {s}"),
                    },
                    (None, Some(c)) if *c != 0 => format!("with code {c}"),
                    _ => return,
                };
                (
                    MarkerKind::WorkerDeath,
                    Some(*pid),
                    format!("worker {pid} exited {how}"),
                )
            }
            _ => return,
        };
        self.add(e.at, kind, pid, what, &e.evidence);
    }

    /// Notes a kernel event that is a marker: any OOM kill (another process's kill
    /// tells of memory pressure too), a PHP process's crash.
    pub fn kernel(&mut self, e: &Timed<KernelEvent>) {
        let (kind, pid, what) = match &e.event {
            KernelEvent::OomKilled { pid, comm, .. }
            | KernelEvent::OomVictimChosen { pid, comm } => (
                MarkerKind::OomKill,
                *pid,
                format!("the kernel OOM-killed {comm} {pid}"),
            ),
            KernelEvent::OomSummary { pid, task, .. } => (
                MarkerKind::OomKill,
                *pid,
                format!("the kernel OOM-killed {task} {pid}"),
            ),
            KernelEvent::Segfault { pid, comm, .. }
            | KernelEvent::Trap { pid, comm, .. }
            | KernelEvent::CoreDump { pid, comm }
                if kernel::is_fpm_comm(comm) =>
            {
                (
                    MarkerKind::WorkerDeath,
                    *pid,
                    format!("{comm} {pid} crashed"),
                )
            }
            _ => return,
        };
        self.add(e.at, kind, Some(pid), what, &e.evidence);
    }

    /// Notes a systemd message about the FPM unit that is a marker.
    pub fn unit(&mut self, e: &Timed<UnitMessage>) {
        let (kind, what) = match &e.event.event {
            UnitEvent::Started => (MarkerKind::FpmStart, "PHP-FPM started"),
            UnitEvent::Stopped | UnitEvent::Deactivated | UnitEvent::MainProcessExited { .. } => {
                (MarkerKind::FpmStop, "PHP-FPM stopped")
            }
            UnitEvent::FailedToStart => (MarkerKind::FpmStop, "PHP-FPM failed to start"),
            UnitEvent::FailedWithResult(r) if r == "oom-kill" => (
                MarkerKind::OomKill,
                "systemd: the unit lost a process to the OOM killer",
            ),
            UnitEvent::FailedWithResult(_) => (MarkerKind::FpmStop, "PHP-FPM stopped"),
            UnitEvent::OomKillInUnit | UnitEvent::OomdKilled => (
                MarkerKind::OomKill,
                "systemd: the unit lost a process to the OOM killer",
            ),
            UnitEvent::Starting | UnitEvent::Stopping => return,
        };
        self.add(e.at, kind, None, what.to_string(), &e.evidence);
    }

    fn add(
        &mut self,
        at: Option<EpochMs>,
        kind: MarkerKind,
        pid: Option<u32>,
        what: String,
        evidence: &Evidence,
    ) {
        let Some(at) = at else {
            self.undated += 1;
            return;
        };
        let start = self.list.len().saturating_sub(RECENT);
        if let Some(i) = self.same_event(start, at, kind, pid, evidence) {
            let m = &mut self.list[i];
            if kind.outranks(m.kind) {
                m.kind = kind;
                m.what = what;
            } else if m.kind == kind && kind.is_death() && !m.what.contains(&what) {
                // FPM's and the kernel's words for one death both tell something.
                m.what = format!("{}; {what}", m.what);
            }
            m.at = m.at.min(at);
            if m.evidence.len() < EVIDENCE_PER_MARKER && !m.evidence.contains(evidence) {
                m.evidence.push(evidence.clone());
            }
            return;
        }
        if self.merge_ms > 0 {
            let slot = at.0.div_euclid(self.merge_ms);
            if let Some(m) = self.list[start..]
                .iter_mut()
                .rev()
                .find(|m| m.kind == kind && m.at.0.div_euclid(self.merge_ms) == slot)
            {
                m.count += 1;
                m.at = m.at.min(at);
                if m.pid != pid {
                    m.pid = None;
                }
                return;
            }
        }
        self.list.push(Marker {
            at,
            kind,
            count: 1,
            pid,
            what,
            evidence: vec![evidence.clone()],
        });
        if self.list.len() > MAX_MARKERS {
            self.coarsen();
        }
    }

    /// The marker (index) that an event at `at` belongs to, when it is one already
    /// marked, seen in another line: a death of the same pid (FPM's exit line and the
    /// kernel's); for lifecycle changes, the previous line of the same log when it
    /// is part of the same change (`Terminating ...` then `exiting, bye-bye!`), or
    /// the same change seen in another log (FPM's log and systemd's journal). Two
    /// starts of one log a second apart with a stop in between stay two.
    fn same_event(
        &self,
        start: usize,
        at: EpochMs,
        kind: MarkerKind,
        pid: Option<u32>,
        evidence: &Evidence,
    ) -> Option<usize> {
        let recent = (start..self.list.len()).rev();
        let close = |m: &Marker, ms: i64| m.at.distance(at) <= ms;
        if kind.is_death() {
            return recent.into_iter().find(|&i| {
                let m = &self.list[i];
                m.kind.is_death()
                    && close(m, SAME_DEATH_MS)
                    && match (m.pid, pid) {
                        (Some(a), Some(b)) => a == b,
                        // systemd's OOM message names no pid: the kernel's kill near it.
                        _ => m.kind == MarkerKind::OomKill && kind == MarkerKind::OomKill,
                    }
            });
        }
        let from_this_log = |m: &Marker| m.evidence.iter().any(|e| e.file == evidence.file);
        let lifecycle = || recent.clone().filter(|&i| !self.list[i].kind.is_death());
        if let Some(i) = lifecycle().find(|&i| from_this_log(&self.list[i])) {
            let m = &self.list[i];
            if lifecycle_pair(m.kind, kind) && close(m, SAME_LIFECYCLE_MS) {
                return Some(i);
            }
        }
        lifecycle().find(|&i| {
            let m = &self.list[i];
            lifecycle_pair(m.kind, kind) && close(m, SAME_LIFECYCLE_MS) && !from_this_log(m)
        })
    }

    /// Merges markers of one kind within ever wider slots until half the bound is
    /// free (so that coarsening is rare).
    fn coarsen(&mut self) {
        self.list.sort_by_key(|m| m.at);
        while self.list.len() > MAX_MARKERS / 2 {
            self.merge_ms = if self.merge_ms == 0 {
                1_000
            } else {
                self.merge_ms.saturating_mul(2)
            };
            let w = self.merge_ms;
            let mut out: Vec<Marker> = Vec::with_capacity(self.list.len());
            // Index in `out` of the last marker of each kind.
            let mut last: [Option<usize>; MarkerKind::ALL.len()] = [None; MarkerKind::ALL.len()];
            for m in self.list.drain(..) {
                let k = m.kind as usize;
                if let Some(i) = last[k] {
                    let o = &mut out[i];
                    if o.at.0.div_euclid(w) == m.at.0.div_euclid(w) {
                        o.count += m.count;
                        if o.pid != m.pid {
                            o.pid = None;
                        }
                        continue;
                    }
                }
                last[k] = Some(out.len());
                out.push(m);
            }
            self.list = out;
        }
    }

    /// The markers in time order.
    pub fn sorted(&self) -> Vec<&Marker> {
        let mut v: Vec<&Marker> = self.list.iter().collect();
        v.sort_by_key(|m| (m.at, m.kind));
        v
    }

    /// Events of `kind` noted (merged markers count all of theirs).
    pub fn total(&self, kind: MarkerKind) -> u64 {
        self.list
            .iter()
            .filter(|m| m.kind == kind)
            .map(|m| m.count)
            .sum()
    }

    /// Whether markers were merged to stay within the bound.
    pub fn merged(&self) -> bool {
        self.merge_ms > 0
    }
}

/// Whether `a` and `b` can be two lines about one lifecycle change: the same kind,
/// or a reload and the start it ends with.
fn lifecycle_pair(a: MarkerKind, b: MarkerKind) -> bool {
    a == b || a.outranks(b) || b.outranks(a)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::model::EvidenceSource;
    use crate::parse::{fpm, journal, kernel};

    fn timed<T>(at: i64, line: u64, text: &str, event: T) -> Timed<T> {
        let file: Arc<str> = Arc::from("php8.2-fpm.log");
        Timed {
            at: Some(EpochMs(at)),
            boot_secs: None,
            evidence: Evidence::new(EvidenceSource::Fpm, &file, line, text),
            event,
        }
    }

    fn fpm_line(m: &mut Markers, at: i64, line: u64, text: &str) {
        let parsed = fpm::parse_line(text).expect("an FPM line");
        m.fpm(&timed(at, line, text, parsed.event));
    }

    #[test]
    fn one_stop_and_one_start_from_their_several_lines() {
        let mut m = Markers::default();
        // A real stop and restart (e2e run, php8.2-fpm 8.2.29).
        fpm_line(
            &mut m,
            1_000,
            1,
            "[23-Nov-2026 22:12:54] NOTICE: Terminating ...",
        );
        fpm_line(
            &mut m,
            1_000,
            2,
            "[23-Nov-2026 22:12:54] NOTICE: exiting, bye-bye!",
        );
        fpm_line(
            &mut m,
            9_000,
            3,
            "[23-Nov-2026 22:13:02] NOTICE: fpm is running, pid 2748",
        );
        fpm_line(
            &mut m,
            9_000,
            4,
            "[23-Nov-2026 22:13:02] NOTICE: ready to handle connections",
        );
        let v = m.sorted();
        assert_eq!(v.len(), 2, "{v:?}");
        assert_eq!(v[0].kind, MarkerKind::FpmStop);
        assert_eq!(v[0].evidence.len(), 2);
        assert_eq!(v[1].kind, MarkerKind::FpmStart);
        assert_eq!(v[1].what, "PHP-FPM started (master 2748)");
    }

    #[test]
    fn a_restart_within_a_second_is_a_stop_and_a_start() {
        let mut m = Markers::default();
        // A real e2e run: FPM restarted twice, the second time within one second.
        for (i, (at, line)) in [
            (
                30_000,
                "[03-Dec-2026 12:35:30] NOTICE: fpm is running, pid 21175",
            ),
            (
                30_000,
                "[03-Dec-2026 12:35:30] NOTICE: ready to handle connections",
            ),
            (31_000, "[03-Dec-2026 12:35:31] NOTICE: Terminating ..."),
            (31_000, "[03-Dec-2026 12:35:31] NOTICE: exiting, bye-bye!"),
            (
                31_000,
                "[03-Dec-2026 12:35:31] NOTICE: fpm is running, pid 21187",
            ),
            (
                31_000,
                "[03-Dec-2026 12:35:31] NOTICE: ready to handle connections",
            ),
        ]
        .into_iter()
        .enumerate()
        {
            fpm_line(&mut m, at, i as u64 + 1, line);
        }
        let kinds: Vec<MarkerKind> = m.sorted().iter().map(|x| x.kind).collect();
        assert_eq!(
            kinds,
            [
                MarkerKind::FpmStart,
                MarkerKind::FpmStart,
                MarkerKind::FpmStop
            ],
            "{:?}",
            m.sorted()
        );
        assert_eq!(m.total(MarkerKind::FpmStart), 2);
    }

    #[test]
    fn one_stop_in_the_fpm_log_and_the_journal_is_one_marker() {
        let mut m = Markers::default();
        fpm_line(
            &mut m,
            1_000,
            1,
            "[23-Nov-2026 22:12:54] NOTICE: Terminating ...",
        );
        fpm_line(
            &mut m,
            1_000,
            2,
            "[23-Nov-2026 22:12:54] NOTICE: exiting, bye-bye!",
        );
        let text = "Nov 23 22:12:54 web systemd[1]: Stopped php8.2-fpm.service - The PHP 8.2 FastCGI Process Manager.";
        let msg = journal::parse_message(
            "systemd",
            "Stopped php8.2-fpm.service - The PHP 8.2 FastCGI Process Manager.",
        )
        .expect("a unit message");
        let file: Arc<str> = Arc::from("journal.txt");
        let unit = |at: i64, line: u64, msg: UnitMessage| Timed {
            at: Some(EpochMs(at)),
            boot_secs: None,
            evidence: Evidence::new(EvidenceSource::Journal, &file, line, text),
            event: msg,
        };
        m.unit(&unit(1_250, 10, msg.clone()));
        assert_eq!(m.sorted().len(), 1, "{:?}", m.sorted());
        assert_eq!(m.sorted()[0].evidence.len(), 3);
        // Stopped again a minute later: another stop.
        m.unit(&unit(61_000, 20, msg));
        assert_eq!(m.total(MarkerKind::FpmStop), 2);
    }

    #[test]
    fn a_reload_swallows_the_start_that_follows_it() {
        let mut m = Markers::default();
        fpm_line(
            &mut m,
            0,
            1,
            "[23-Nov-2026 22:12:54] NOTICE: Reloading in progress ...",
        );
        fpm_line(
            &mut m,
            500,
            2,
            "[23-Nov-2026 22:12:54] NOTICE: fpm is running, pid 2748",
        );
        fpm_line(
            &mut m,
            500,
            3,
            "[23-Nov-2026 22:12:54] NOTICE: ready to handle connections",
        );
        let v = m.sorted();
        assert_eq!(v.len(), 1, "{v:?}");
        assert_eq!(v[0].kind, MarkerKind::FpmReload);
    }

    #[test]
    fn an_oom_kill_in_two_logs_is_one_oom_marker_and_a_crash_stays_apart() {
        let mut m = Markers::default();
        // FPM first (the reader order varies), then the kernel's lines for the same pid.
        fpm_line(
            &mut m,
            10_000,
            4,
            "[23-Nov-2026 22:12:55] WARNING: [pool www] child 2735 exited on signal 9 (SIGKILL) after 0.707584 seconds from start",
        );
        let k = "Memory cgroup out of memory: Killed process 2735 (php-fpm8.2) total-vm:267480kB, anon-rss:62124kB, file-rss:6660kB, shmem-rss:392kB, UID:33 pgtables:256kB oom_score_adj:0";
        m.kernel(&timed(
            9_600,
            81,
            k,
            kernel::parse_message(k).expect("OOM line"),
        ));
        let s = "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/gatelog,task_memcg=/gatelog,task=php-fpm8.2,pid=2735,uid=33";
        m.kernel(&timed(
            9_600,
            80,
            s,
            kernel::parse_message(s).expect("summary"),
        ));
        // Another worker segfaults a second later.
        fpm_line(
            &mut m,
            11_000,
            5,
            "[23-Nov-2026 22:12:56] WARNING: [pool www] child 2749 exited on signal 11 (SIGSEGV) after 0.174368 seconds from start",
        );
        let v = m.sorted();
        assert_eq!(v.len(), 2, "{v:?}");
        assert_eq!(v[0].kind, MarkerKind::OomKill);
        assert_eq!(v[0].pid, Some(2735));
        assert_eq!(v[0].evidence.len(), 3);
        assert!(
            v[0].what.contains("OOM-killed php-fpm8.2 2735"),
            "{}",
            v[0].what
        );
        assert_eq!(v[1].kind, MarkerKind::WorkerDeath);
        assert_eq!(v[1].what, "worker 2749 exited on signal 11 (SIGSEGV)");
    }

    #[test]
    fn graceful_and_clean_exits_are_not_deaths() {
        let mut m = Markers::default();
        for (i, text) in [
            "[23-Nov-2026 22:12:55] NOTICE: [pool www] child 2735 exited on signal 3 (SIGQUIT) after 10.1 seconds from start",
            "[23-Nov-2026 22:12:55] NOTICE: [pool www] child 2736 exited with code 0 after 10.1 seconds from start",
        ]
        .into_iter()
        .enumerate()
        {
            let parsed = fpm::parse_line(text).expect("an FPM line");
            assert!(matches!(parsed.event, FpmEvent::ChildExited { .. }), "{parsed:?}");
            fpm_line(&mut m, 0, i as u64 + 1, text);
        }
        assert!(m.sorted().is_empty());
        // The same line with a code is a death.
        fpm_line(
            &mut m,
            0,
            3,
            "[23-Nov-2026 22:12:55] WARNING: [pool www] child 2737 exited with code 255 after 0.2 seconds from start",
        );
        assert_eq!(m.sorted()[0].what, "worker 2737 exited with code 255");
    }

    #[test]
    fn undated_events_are_counted_not_placed() {
        let mut m = Markers::default();
        let k = "Out of memory: Killed process 77 (php-fpm8.2) total-vm:1kB, anon-rss:1kB, file-rss:0kB, shmem-rss:0kB";
        let mut t = timed(0, 1, k, kernel::parse_message(k).expect("OOM line"));
        t.at = None;
        m.kernel(&t);
        assert!(m.sorted().is_empty());
        assert_eq!(m.undated, 1);
    }

    #[test]
    fn memory_stays_bounded_and_every_event_is_counted() {
        let mut m = Markers::default();
        let n: u64 = 50_000;
        for i in 0..n {
            let pid = 10_000 + i as u32;
            let text = format!(
                "[23-Nov-2026 22:12:55] WARNING: [pool www] child {pid} exited on signal 11 (SIGSEGV) after 0.1 seconds from start"
            );
            // One crash every 7 s.
            fpm_line(&mut m, i as i64 * 7_000, i + 1, &text);
            assert!(m.list.len() <= MAX_MARKERS);
        }
        assert!(m.merged());
        assert_eq!(m.total(MarkerKind::WorkerDeath), n);
        let v = m.sorted();
        assert!(
            v.len() <= MAX_MARKERS && v.len() > MAX_MARKERS / 8,
            "{}",
            v.len()
        );
        assert!(v.windows(2).all(|w| w[0].at <= w[1].at));
    }
}
