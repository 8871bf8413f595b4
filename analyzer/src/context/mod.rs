//! The correlation index: what the PHP-FPM, kernel and systemd logs and the configs
//! say, held as compact time-sorted events. Only lines that can matter for a verdict
//! are kept (lifecycle, abnormal child exits, max_children warnings, request timers,
//! OOM kills, crashes), so its size follows the number of such events, not the size
//! of the logs. [`load`] fills it; the queries here serve the classifier.

pub mod align;
pub mod load;
pub mod markers;

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{Evidence, EvidenceSource, Peer};
use crate::parse::fpm::FpmEvent;
use crate::parse::fpm_conf::Pool;
use crate::parse::journal::UnitMessage;
use crate::parse::kernel::{self, KernelEvent};
use crate::parse::nginx_conf::NginxConf;
use crate::time::EpochMs;

pub use align::Alignment;

/// An event with its time (when known) and the line it came from.
#[derive(Debug, Clone)]
pub struct Timed<T> {
    pub at: Option<EpochMs>,
    /// Seconds since boot, for raw dmesg lines (aligned into `at` when possible).
    pub boot_secs: Option<f64>,
    pub evidence: Evidence,
    pub event: T,
}

/// A pool section and the file it came from.
#[derive(Debug, Clone)]
pub struct PoolConf {
    pub file: Arc<str>,
    pub pool: Pool,
}

impl PoolConf {
    pub fn listen(&self) -> Option<Peer> {
        self.pool.get("listen").map(Peer::from_fpm_listen)
    }

    /// Evidence for one of the pool's settings.
    pub fn evidence(&self, key: &str) -> Option<Evidence> {
        let s = self.pool.setting(key)?;
        Some(Evidence::new(
            EvidenceSource::FpmConf,
            &self.file,
            s.line,
            &s.text,
        ))
    }
}

/// Memory figures from the OOM dumps, for the pm.max_children formula.
#[derive(Debug, Clone, Default)]
pub struct MemoryFigures {
    /// `N pages RAM` (4 KiB pages) as kB.
    pub ram_kb: Option<u64>,
    /// A memory cgroup limit (`memory: usage ..., limit NkB`).
    pub memcg_limit_kb: Option<u64>,
    /// Sum and count of PHP worker RSS rows in the OOM task dumps.
    pub worker_rss_kb_sum: u64,
    pub worker_rss_count: u64,
    /// The largest anon-rss of a killed PHP worker.
    pub victim_rss_kb_max: Option<u64>,
}

impl MemoryFigures {
    pub fn avg_worker_kb(&self) -> Option<u64> {
        (self.worker_rss_count > 0).then(|| self.worker_rss_kb_sum / self.worker_rss_count)
    }
}

/// Whether PHP-FPM was up at some instant, and the line that says so.
#[derive(Debug, Clone)]
pub enum FpmState {
    Up(Evidence),
    Down(Evidence),
    Unknown,
}

/// What is known about FPM, the kernel and the configs.
#[derive(Debug, Default)]
pub struct Context {
    pub fpm: Vec<Timed<FpmEvent>>,
    pub kernel: Vec<Timed<KernelEvent>>,
    pub units: Vec<Timed<UnitMessage>>,
    pub pools: Vec<PoolConf>,
    pub nginx: Vec<NginxConf>,
    pub memory: MemoryFigures,
    pub alignment: Alignment,
    /// Whether any FPM log (file, syslog or journal) was given.
    pub has_fpm_log: bool,
    /// Whether any kernel log was given, and the times it covers.
    pub has_kernel_log: bool,
    pub kernel_span: Option<(EpochMs, EpochMs)>,
    pub fpm_span: Option<(EpochMs, EpochMs)>,
    /// Events not kept because a bound was reached.
    pub dropped_events: u64,
    /// Lifecycle changes, OOM kills and worker deaths of the whole run, for the
    /// report's timeline (kept after the events leave the window).
    pub markers: markers::Markers,
    /// Built by `finish`: FPM up/down transitions in time order (from FPM's lifecycle
    /// lines and systemd's unit messages), with their evidence.
    lifecycle: Vec<(EpochMs, bool, Evidence)>,
    /// Built by `finish`: kernel event indexes by pid.
    kernel_by_pid: HashMap<u32, Vec<usize>>,
    /// Built by `finish`: FPM start-up/socket error events (indexes into `fpm`).
    fpm_errors: Vec<usize>,
    /// FPM master pids (`fpm is running, pid N`), the latest 64.
    pub masters: Vec<u32>,
    /// Whether a kernel log is still being read (then it covers the present).
    pub kernel_open: bool,
    /// The last lifecycle transition evicted from the window: FPM's state before it.
    lifecycle_floor: Option<(EpochMs, bool, Evidence)>,
    /// The last FPM start-up/socket errors evicted from the window (looked up to an
    /// hour back).
    error_floor: Vec<Timed<FpmEvent>>,
}

/// Index range of events whose time is within [from, to] (events are sorted by time,
/// events without time last).
fn range<T>(v: &[Timed<T>], from: EpochMs, to: EpochMs) -> &[Timed<T>] {
    let key = |e: &Timed<T>| e.at.unwrap_or(EpochMs(i64::MAX));
    let lo = v.partition_point(|e| key(e) < from);
    let hi = v.partition_point(|e| key(e) <= to);
    &v[lo..hi.max(lo)]
}

impl Context {
    /// Sorts the events by time; called once after loading.
    pub fn finish(&mut self) {
        let key = |at: Option<EpochMs>| at.unwrap_or(EpochMs(i64::MAX));
        self.fpm.sort_by_key(|e| key(e.at));
        self.kernel.sort_by_key(|e| key(e.at));
        self.units.sort_by_key(|e| key(e.at));
        self.lifecycle.clear();
        if let Some(floor) = &self.lifecycle_floor {
            self.lifecycle.push(floor.clone());
        }
        for e in &self.fpm {
            if let (Some(at), Some(down)) = (e.at, fpm_down_after(&e.event)) {
                self.lifecycle.push((at, down, e.evidence.clone()));
            }
        }
        for e in &self.units {
            if let (Some(at), Some(down)) = (e.at, e.event.event.fpm_down_after()) {
                self.lifecycle.push((at, down, e.evidence.clone()));
            }
        }
        // Stable: at equal times the log order stays.
        self.lifecycle.sort_by_key(|(at, _, _)| *at);
        self.kernel_by_pid.clear();
        for (i, e) in self.kernel.iter().enumerate() {
            if let Some(pid) = e.event.pid() {
                self.kernel_by_pid.entry(pid).or_default().push(i);
            }
        }
        self.fpm_errors = (0..self.fpm.len())
            .filter(|&i| is_fpm_error(&self.fpm[i].event))
            .collect();
    }

    pub fn with_alignment(alignment: Alignment) -> Context {
        Context {
            alignment,
            ..Context::default()
        }
    }

    /// Records a master pid (bounded: the latest 64).
    pub fn add_master(&mut self, pid: u32) {
        if !self.masters.contains(&pid) {
            if self.masters.len() >= 64 {
                self.masters.remove(0);
            }
            self.masters.push(pid);
        }
    }

    /// Drops events dated before `cutoff`, keeping what later questions need from
    /// them: FPM's state (the last lifecycle transition) and the last start-up
    /// errors. Call `finish` afterwards.
    pub fn evict_before(&mut self, cutoff: EpochMs) {
        let old = |at: Option<EpochMs>| at.is_some_and(|a| a < cutoff);
        let mut floor = self.lifecycle_floor.take();
        let newer = |at: EpochMs,
                     down: bool,
                     ev: &Evidence,
                     floor: &mut Option<(EpochMs, bool, Evidence)>| {
            if floor.as_ref().map_or(true, |(f, _, _)| at >= *f) {
                *floor = Some((at, down, ev.clone()));
            }
        };
        for e in self.fpm.iter().filter(|e| old(e.at)) {
            if let (Some(at), Some(down)) = (e.at, fpm_down_after(&e.event)) {
                newer(at, down, &e.evidence, &mut floor);
            }
            if is_fpm_error(&e.event) {
                if self.error_floor.len() >= 4 {
                    self.error_floor.remove(0);
                }
                self.error_floor.push(e.clone());
            }
        }
        for e in self.units.iter().filter(|e| old(e.at)) {
            if let (Some(at), Some(down)) = (e.at, e.event.event.fpm_down_after()) {
                newer(at, down, &e.evidence, &mut floor);
            }
        }
        self.lifecycle_floor = floor;
        self.fpm.retain(|e| !old(e.at));
        self.units.retain(|e| !old(e.at));
        self.kernel.retain(|e| !old(e.at));
    }

    /// FPM start-up and socket errors (bind, user, chown), in time order.
    pub fn fpm_errors(&self) -> impl DoubleEndedIterator<Item = &Timed<FpmEvent>> {
        self.error_floor
            .iter()
            .chain(self.fpm_errors.iter().map(|&i| &self.fpm[i]))
    }

    /// Kernel events naming `pid`.
    fn kernel_of(&self, pid: u32) -> impl Iterator<Item = &Timed<KernelEvent>> {
        self.kernel_by_pid
            .get(&pid)
            .into_iter()
            .flatten()
            .map(|&i| &self.kernel[i])
    }

    /// Whether FPM was up at `t`, from FPM's own lifecycle lines and systemd's unit
    /// messages. Before the first lifecycle event, the first event decides: a start
    /// means it was down ("never started"), a stop means it was up.
    pub fn fpm_state_at(&self, t: EpochMs) -> FpmState {
        // Index of the first transition after t.
        let after = self.lifecycle.partition_point(|(at, _, _)| *at <= t);
        if after > 0 {
            // The last transition at or before t; within one second a "down" line
            // after an "up" line of the same second is the later state.
            let (_, down, ev) = &self.lifecycle[after - 1];
            return if *down {
                FpmState::Down(ev.clone())
            } else {
                FpmState::Up(ev.clone())
            };
        }
        match self.lifecycle.first() {
            // Before the first transition: a start means it was down ("never
            // started"), a stop means it was up.
            Some((_, false, ev)) => FpmState::Down(ev.clone()),
            Some((_, true, ev)) => FpmState::Up(ev.clone()),
            None => FpmState::Unknown,
        }
    }

    /// The last time FPM (re)started at or before `t`, from its lifecycle lines.
    pub fn last_start_at_or_before(&self, t: EpochMs) -> Option<EpochMs> {
        let after = self.lifecycle.partition_point(|(at, _, _)| *at <= t);
        self.lifecycle[..after]
            .iter()
            .rev()
            .find(|(_, down, _)| !down)
            .map(|(at, _, _)| *at)
    }

    /// Whether a lifecycle transition happened within `window_ms` of `t`.
    pub fn lifecycle_near(&self, ev: &Evidence, t: EpochMs, window_ms: i64) -> bool {
        let from = self
            .lifecycle
            .partition_point(|(at, _, _)| *at < t.minus_ms(window_ms));
        self.lifecycle[from..]
            .iter()
            .take_while(|(at, _, _)| *at <= t.plus_ms(window_ms))
            .any(|(_, _, e)| e == ev)
    }

    /// Addresses FPM listens on: pool `listen` values, with their evidence and pool.
    pub fn listens(&self) -> Vec<(Peer, Evidence, &str)> {
        self.pools
            .iter()
            .filter_map(|p| Some((p.listen()?, p.evidence("listen")?, p.pool.name.as_str())))
            .collect()
    }

    /// The pool listening where `peer` connects.
    pub fn pool_for_peer(&self, peer: &Peer) -> Option<&PoolConf> {
        self.pools
            .iter()
            .find(|p| p.listen().is_some_and(|l| peer.reaches(&l)))
    }

    /// `server reached (pm.)max_children` warnings in [from, to], for `pool` when given.
    pub fn max_children_warnings(
        &self,
        from: EpochMs,
        to: EpochMs,
        pool: Option<&str>,
    ) -> Vec<&Timed<FpmEvent>> {
        range(&self.fpm, from, to)
            .iter()
            .filter(|e| match &e.event {
                FpmEvent::MaxChildren { pool: p, .. } => pool.map_or(true, |want| want == p),
                _ => false,
            })
            .collect()
    }

    /// Abnormal child exits (a signal, or a non-zero code) in [from, to].
    pub fn child_deaths(&self, from: EpochMs, to: EpochMs) -> Vec<&Timed<FpmEvent>> {
        range(&self.fpm, from, to)
            .iter()
            .filter(|e| match &e.event {
                FpmEvent::ChildExited { signal, code, .. } => {
                    // SIGQUIT is FPM's own graceful stop of a child.
                    signal.is_some_and(|s| s != 3) || code.is_some_and(|c| c != 0)
                }
                _ => false,
            })
            .collect()
    }

    /// FPM's `execution timed out ... terminating` for child `pid` at or before `until`.
    pub fn execution_timeout_of(
        &self,
        pid: u32,
        near: EpochMs,
        window_ms: i64,
    ) -> Option<&Timed<FpmEvent>> {
        range(&self.fpm, near.minus_ms(window_ms), near.plus_ms(2_000))
            .iter()
            .rev()
            .find(|e| matches!(&e.event, FpmEvent::ExecutionTimedOut(t) if t.pid == pid))
    }

    /// FPM request-timer lines (`executing too slow` or `execution timed out`) in
    /// [from, to] whose request path is `path`.
    pub fn request_timers(
        &self,
        from: EpochMs,
        to: EpochMs,
        path: Option<&str>,
    ) -> Vec<&Timed<FpmEvent>> {
        range(&self.fpm, from, to)
            .iter()
            .filter(|e| match &e.event {
                FpmEvent::SlowRequest(t) | FpmEvent::ExecutionTimedOut(t) => {
                    path.map_or(true, |p| request_path(&t.request) == p)
                }
                _ => false,
            })
            .collect()
    }

    /// Worker output (PHP fatal errors) of child `pid` near `t`.
    pub fn worker_output_of(&self, pid: u32, t: EpochMs) -> Option<&Timed<FpmEvent>> {
        range(&self.fpm, t.minus_ms(30_000), t.plus_ms(2_000))
            .iter()
            .rev()
            .find(|e| matches!(&e.event, FpmEvent::WorkerOutput { pid: Some(p), .. } if *p == pid))
    }

    /// The kernel's OOM kill of `pid` (any OOM line naming it). When both sides have
    /// times, they must be within `window_ms`; pids are reused, but not that fast.
    pub fn oom_kill_of(
        &self,
        pid: u32,
        near: Option<EpochMs>,
        window_ms: i64,
    ) -> Option<&Timed<KernelEvent>> {
        let close = |at: Option<EpochMs>| match (at, near) {
            (Some(a), Some(n)) => a.distance(n) <= window_ms,
            _ => true,
        };
        self.kernel
            .iter()
            .filter(|e| {
                matches!(
                    e.event,
                    KernelEvent::OomKilled { .. }
                        | KernelEvent::OomSummary { .. }
                        | KernelEvent::OomVictimChosen { .. }
                ) && e.event.pid() == Some(pid)
                    && close(e.at)
            })
            // The `Killed process` line is the most telling.
            .max_by_key(|e| matches!(e.event, KernelEvent::OomKilled { .. }))
    }

    /// The kernel's (or systemd-coredump's) crash report for `pid`.
    pub fn crash_of(
        &self,
        pid: u32,
        near: Option<EpochMs>,
        window_ms: i64,
    ) -> Option<&Timed<KernelEvent>> {
        self.kernel_of(pid).find(|e| {
            matches!(
                e.event,
                KernelEvent::Segfault { .. }
                    | KernelEvent::Trap { .. }
                    | KernelEvent::CoreDump { .. }
            ) && match (e.at, near) {
                (Some(a), Some(n)) => a.distance(n) <= window_ms,
                _ => true,
            }
        })
    }

    /// Kernel OOM kills or crashes of PHP processes in [from, to] (when no FPM line
    /// names the pid).
    pub fn kernel_events_near(&self, from: EpochMs, to: EpochMs) -> Vec<&Timed<KernelEvent>> {
        range(&self.kernel, from, to)
            .iter()
            .filter(|e| {
                matches!(
                    e.event,
                    KernelEvent::OomKilled { .. }
                        | KernelEvent::OomVictimChosen { .. }
                        | KernelEvent::Segfault { .. }
                        | KernelEvent::Trap { .. }
                        | KernelEvent::CoreDump { .. }
                ) && e.event.comm().is_some_and(kernel::is_fpm_comm)
            })
            .collect()
    }

    /// systemd saying the FPM unit lost a process to the OOM killer in [from, to].
    pub fn unit_oom_near(&self, from: EpochMs, to: EpochMs) -> Option<&Timed<UnitMessage>> {
        use crate::parse::journal::UnitEvent;
        range(&self.units, from, to)
            .iter()
            .find(|e| match &e.event.event {
                UnitEvent::OomKillInUnit | UnitEvent::OomdKilled => true,
                UnitEvent::FailedWithResult(r) => r == "oom-kill",
                _ => false,
            })
    }

    /// Whether the kernel log covers `t` (so a missing OOM line means there was none).
    pub fn kernel_covers(&self, t: EpochMs) -> bool {
        if !self.has_kernel_log {
            return false;
        }
        // Still being read: it reaches past `t` (the window runs ahead).
        if self.kernel_open
            && self
                .kernel_span
                .is_some_and(|(a, _)| t >= a.minus_ms(600_000))
        {
            return true;
        }
        match self.kernel_span {
            Some((a, b)) => t >= a.minus_ms(600_000) && t <= b.plus_ms(600_000),
            // A kernel log with no dated line (raw dmesg, not aligned) covers the boot.
            None => true,
        }
    }

    /// NGINX's fastcgi_read_timeout from the config, in ms.
    pub fn nginx_read_timeout_ms(&self) -> Option<(i64, String)> {
        self.nginx.iter().find_map(|c| {
            let d = c
                .tuning_value("fastcgi_read_timeout")
                .or_else(|| c.tuning_value("proxy_read_timeout"))?;
            Some((
                parse_nginx_duration_ms(d.arg())?,
                format!("{} ({}:{})", d.text(), d.file, d.line),
            ))
        })
    }

    /// Where NGINX is configured to pass to `peer` (fastcgi_pass lines), for fixes.
    pub fn nginx_passes_to(&self, peer: &Peer) -> Vec<String> {
        let mut out = Vec::new();
        for c in &self.nginx {
            for d in &c.passes {
                let targets = c.resolve(d.arg());
                if targets.iter().any(|t| Peer::from_nginx(t) == *peer)
                    || Peer::from_nginx(d.arg()) == *peer
                {
                    out.push(format!("{}:{}: {}", d.file, d.line, d.text()));
                }
            }
        }
        out
    }

    /// The NGINX worker user (`user` directive).
    pub fn nginx_user(&self) -> Option<String> {
        self.nginx
            .iter()
            .find_map(|c| c.user.as_ref().map(|d| d.arg().to_string()))
    }
}

/// Whether FPM is down after an FPM lifecycle line (None: not a lifecycle line).
fn fpm_down_after(e: &FpmEvent) -> Option<bool> {
    match e {
        FpmEvent::Running { .. } | FpmEvent::Ready => Some(false),
        FpmEvent::Terminating | FpmEvent::Exiting | FpmEvent::InitFailed => Some(true),
        _ => None,
    }
}

fn is_fpm_error(e: &FpmEvent) -> bool {
    matches!(
        e,
        FpmEvent::BindFailed { .. }
            | FpmEvent::UserError { .. }
            | FpmEvent::AnotherInstance { .. }
            | FpmEvent::ChownFailed { .. }
    )
}

/// The path of `METHOD /path?query[ PROTO]`.
pub fn request_path(request: &str) -> &str {
    let target = request.split(' ').nth(1).unwrap_or(request);
    target.split('?').next().unwrap_or(target)
}

/// NGINX time values: `60`, `60s`, `500ms`, `5m`, `1h`, `1m30s`.
pub fn parse_nginx_duration_ms(v: &str) -> Option<i64> {
    let mut total: i64 = 0;
    let mut num = String::new();
    let mut chars = v.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: i64 = num.parse().ok()?;
        num.clear();
        let unit = match c {
            'm' if chars.peek() == Some(&'s') => {
                chars.next();
                1
            }
            'm' => 60_000,
            's' => 1_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            _ => return None,
        };
        total += n * unit;
        any = true;
    }
    if !num.is_empty() {
        total += num.parse::<i64>().ok()? * 1000;
        any = true;
    }
    any.then_some(total)
}

/// FPM durations: `30s`, `30`, `5m`, `1h`, `0` (off).
pub fn parse_fpm_duration_secs(v: &str) -> Option<u64> {
    let v = v.trim();
    let (num, mult) = match v.chars().last()? {
        's' => (&v[..v.len() - 1], 1),
        'm' => (&v[..v.len() - 1], 60),
        'h' => (&v[..v.len() - 1], 3600),
        'd' => (&v[..v.len() - 1], 86400),
        _ => (v, 1),
    };
    Some(num.parse::<u64>().ok()? * mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_nginx_duration_ms("60"), Some(60_000));
        assert_eq!(parse_nginx_duration_ms("300s"), Some(300_000));
        assert_eq!(parse_nginx_duration_ms("500ms"), Some(500));
        assert_eq!(parse_nginx_duration_ms("1m30s"), Some(90_000));
        assert_eq!(parse_nginx_duration_ms("x"), None);
        assert_eq!(parse_fpm_duration_secs("30s"), Some(30));
        assert_eq!(parse_fpm_duration_secs("5m"), Some(300));
        assert_eq!(parse_fpm_duration_secs("0"), Some(0));
    }

    #[test]
    fn request_paths() {
        assert_eq!(request_path("GET /report.php?id=7 HTTP/1.1"), "/report.php");
        assert_eq!(request_path("GET /report.php?id=7"), "/report.php");
    }
}
