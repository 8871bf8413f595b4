//! The correlation index: what the PHP-FPM, kernel and systemd logs and the configs
//! say, held as compact time-sorted events. Only lines that can matter for a diagnosis
//! are kept (lifecycle, abnormal child exits, max_children warnings, request timers,
//! OOM kills, crashes), so its size follows the number of such events, not the size
//! of the logs. [`load`] fills it; the queries here serve the classifier.

pub mod align;
pub mod conf_tree;
pub mod load;
pub mod markers;

use std::collections::HashMap;
use std::sync::Arc;

use crate::model::{Evidence, EvidenceSource, Peer, Protocol};
use crate::parse::fpm::FpmEvent;
use crate::parse::fpm_conf::Pool;
use crate::parse::journal::UnitMessage;
use crate::parse::kernel::{self, KernelEvent};
use crate::parse::nginx_conf::{Directive, NginxConf, Target};
use crate::time::EpochMs;
use crate::windows::{KERNEL_COVER_MARGIN_MS, LOG_SLACK_MS, WORKER_OUTPUT_MS};

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
    /// The file of its `listen` (settings may come from several files: each
    /// [`Setting`](crate::parse::fpm_conf::Setting) has its own).
    pub file: Arc<str>,
    pub pool: Pool,
}

impl PoolConf {
    pub fn listen(&self) -> Option<Peer> {
        self.pool.get("listen").map(Peer::from_fpm_listen)
    }

    /// Evidence for one of the pool's settings, with the file it was written in.
    pub fn evidence(&self, key: &str) -> Option<Evidence> {
        let s = self.pool.setting(key)?;
        Some(Evidence::new(
            EvidenceSource::FpmConf,
            &s.file,
            s.line,
            &s.text,
        ))
    }

    /// Where a setting is written, `file:line`, for fixes; None when unset. A
    /// `php-fpm -tt` dump is not the file to edit, and says so.
    pub fn place_of(&self, key: &str) -> Option<String> {
        let s = self.pool.setting(key)?;
        Some(if self.pool.dumped {
            format!("php-fpm -tt output {}:{}", s.file, s.line)
        } else {
            format!("{}:{}", s.file, s.line)
        })
    }
}

/// What the NGINX config says about one upstream (a group, or one address), for the
/// classifier and the fixes. From [`ContextIndex::nginx_upstream`].
#[derive(Debug, Clone)]
pub struct UpstreamConf<'a> {
    /// The `upstream {}` group: named by the key, or holding the peer as a server.
    pub group: Option<&'a str>,
    /// What NGINX speaks to it, from the `*_pass` lines that reach it; `Unknown`
    /// when they disagree.
    pub protocol: Protocol,
    /// The group's `server` lines (address, `weight=`, `max_fails=`, `backup`, ...).
    pub servers: Vec<&'a Directive>,
    /// The `*_pass` lines that send requests there.
    pub passes: Vec<&'a Directive>,
    /// Every address it resolves to, each with the line that writes it.
    pub targets: Vec<&'a Target>,
}

/// A PHP version that some input shows an FPM for, and what shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhpVersionSeen {
    /// `7.0`, `8.2`.
    pub version: String,
    /// In plain words: `the FPM log file php7.0-fpm.log`, `unit php7.0-fpm.service in
    /// the journal`, `pool www listens on /run/php/php7.0-fpm.sock (www.conf:41)`.
    pub seen_in: String,
}

/// The PHP version in an FPM socket, log, binary or unit name: `php7.2-fpm.sock`,
/// `php7.0-fpm.log`, `php-fpm7.4`, `php8.2-fpm.service`.
pub fn php_version_in(name: &str) -> Option<&str> {
    fn version_at(s: &str) -> Option<&str> {
        let end = s
            .bytes()
            .position(|b| !(b.is_ascii_digit() || b == b'.'))
            .unwrap_or(s.len());
        let v = s[..end].trim_end_matches('.');
        (v.contains('.') && v.as_bytes().first().is_some_and(u8::is_ascii_digit)).then_some(v)
    }
    let mut rest = name;
    while let Some(i) = rest.find("php") {
        let after = &rest[i + 3..];
        if let Some(v) = after.strip_prefix("-fpm").and_then(version_at) {
            return Some(v);
        }
        if let Some(v) = version_at(after) {
            if after[v.len()..].starts_with("-fpm") {
                return Some(v);
            }
        }
        rest = after;
    }
    None
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
pub struct ContextIndex {
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
    /// PHP versions the inputs show an FPM for (pool sockets, FPM log file names,
    /// units), the first few.
    pub php_versions: Vec<PhpVersionSeen>,
    /// Events not kept because a bound was reached.
    pub dropped_events: u64,
    /// Lifecycle changes, OOM kills and worker deaths of the whole run, for the
    /// report's timeline (kept after the events leave the window).
    pub markers: markers::Markers,
    /// Built by `finish`: FPM up/down transitions in time order (from FPM's lifecycle
    /// lines and systemd's unit messages), with their evidence.
    lifecycle: Vec<Transition>,
    /// Built by `finish`: kernel event indexes by pid.
    kernel_by_pid: HashMap<u32, Vec<usize>>,
    /// Built by `finish`: FPM start-up/socket error events (indexes into `fpm`).
    fpm_errors: Vec<usize>,
    /// Built by `finish`: indexes into `fpm` of the events each query looks for, in
    /// time order. A failure-dense hour holds thousands of FPM lines in the window;
    /// each query then reads only its own kind instead of the whole range.
    fpm_index: FpmIndex,
    /// Built by `finish`: indexes into `kernel` of OOM kills and crashes of PHP
    /// processes (what `kernel_events_near` asks for).
    kernel_php: Vec<usize>,
    /// FPM master pids (`fpm is running, pid N`), the latest 64.
    pub masters: Vec<u32>,
    /// Whether a kernel log is still being read (then it covers the present).
    pub kernel_open: bool,
    /// The last lifecycle transition evicted from the window: FPM's state before it.
    lifecycle_floor: Option<Transition>,
    /// The last FPM start-up/socket errors evicted from the window (looked up to an
    /// hour back).
    error_floor: Vec<Timed<FpmEvent>>,
}

/// Where one FPM pool listens, as its config says.
#[derive(Debug, Clone)]
pub struct Listen<'a> {
    pub address: Peer,
    /// The pool config's `listen` line.
    pub evidence: Evidence,
    pub pool: &'a str,
}

/// FPM going up or down, from one of its lifecycle lines or systemd's unit messages.
#[derive(Debug, Clone)]
struct Transition {
    at: EpochMs,
    /// FPM is down after it (stopped, failed); up after a start.
    down: bool,
    evidence: Evidence,
}

/// Indexes into `ContextIndex::fpm` by kind of event.
#[derive(Debug, Default)]
struct FpmIndex {
    max_children: Vec<usize>,
    /// Abnormal child exits (a signal other than SIGQUIT, or a non-zero code).
    deaths: Vec<usize>,
    /// `executing too slow` and `execution timed out`.
    timers: Vec<usize>,
    /// The same by the hash of their request path ([`path_key`]), each in time order:
    /// a 504 asks for its own path's timers, and a dense log has thousands of others
    /// in the window.
    timers_by_path: HashMap<u64, Vec<usize>>,
    execution_timeouts: Vec<usize>,
    /// The same by child pid, each in time order: a worker's death asks for its own.
    execution_timeouts_by_pid: HashMap<u32, Vec<usize>>,
    worker_output: Vec<usize>,
}

/// The key of a request path in [`FpmIndex::timers_by_path`] (a hash: the index
/// keeps no copy of the path; a look-up compares the paths it finds).
fn path_key(path: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    path.hash(&mut h);
    h.finish()
}

/// The entries of `idx` (pointing into `v`, in time order) whose event's time is
/// within [from, to], as [`range`] gives them.
fn range_of<'a, T, I>(
    v: &'a [Timed<T>],
    idx: &'a [I],
    at: impl Fn(&I) -> usize,
    from: EpochMs,
    to: EpochMs,
) -> &'a [I] {
    let key = |i: &I| v[at(i)].at.unwrap_or(EpochMs(i64::MAX));
    let lo = idx.partition_point(|i| key(i) < from);
    let hi = idx.partition_point(|i| key(i) <= to);
    &idx[lo..hi.max(lo)]
}

/// Index range of events whose time is within [from, to] (events are sorted by time,
/// events without time last).
fn range<T>(v: &[Timed<T>], from: EpochMs, to: EpochMs) -> &[Timed<T>] {
    let key = |e: &Timed<T>| e.at.unwrap_or(EpochMs(i64::MAX));
    let lo = v.partition_point(|e| key(e) < from);
    let hi = v.partition_point(|e| key(e) <= to);
    &v[lo..hi.max(lo)]
}

impl ContextIndex {
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
                self.lifecycle.push(Transition {
                    at,
                    down,
                    evidence: e.evidence.clone(),
                });
            }
        }
        for e in &self.units {
            if let (Some(at), Some(down)) = (e.at, e.event.event.fpm_down_after()) {
                self.lifecycle.push(Transition {
                    at,
                    down,
                    evidence: e.evidence.clone(),
                });
            }
        }
        // Stable: at equal times the log order stays.
        self.lifecycle.sort_by_key(|tr| tr.at);
        self.kernel_by_pid.clear();
        for (i, e) in self.kernel.iter().enumerate() {
            if let Some(pid) = e.event.pid() {
                self.kernel_by_pid.entry(pid).or_default().push(i);
            }
        }
        self.fpm_errors = (0..self.fpm.len())
            .filter(|&i| is_fpm_error(&self.fpm[i].event))
            .collect();
        let ix = &mut self.fpm_index;
        ix.max_children.clear();
        ix.deaths.clear();
        ix.timers.clear();
        ix.timers_by_path.clear();
        ix.execution_timeouts.clear();
        ix.execution_timeouts_by_pid.clear();
        ix.worker_output.clear();
        for (i, e) in self.fpm.iter().enumerate() {
            match &e.event {
                FpmEvent::MaxChildren { .. } => ix.max_children.push(i),
                // SIGQUIT is FPM's own graceful stop of a child.
                FpmEvent::ChildExited { signal, code, .. }
                    if signal.is_some_and(|s| s != 3) || code.is_some_and(|c| c != 0) =>
                {
                    ix.deaths.push(i)
                }
                FpmEvent::SlowRequest(t) => {
                    let path = request_path(&t.request);
                    ix.timers_by_path.entry(path_key(path)).or_default().push(i);
                    ix.timers.push(i);
                }
                FpmEvent::ExecutionTimedOut(t) => {
                    let path = request_path(&t.request);
                    ix.timers_by_path.entry(path_key(path)).or_default().push(i);
                    ix.timers.push(i);
                    ix.execution_timeouts.push(i);
                    ix.execution_timeouts_by_pid
                        .entry(t.pid)
                        .or_default()
                        .push(i);
                }
                FpmEvent::WorkerOutput { pid: Some(_), .. } => ix.worker_output.push(i),
                _ => {}
            }
        }
        self.kernel_php = (0..self.kernel.len())
            .filter(|&i| {
                let e = &self.kernel[i].event;
                matches!(
                    e,
                    KernelEvent::OomKilled { .. }
                        | KernelEvent::OomVictimChosen { .. }
                        | KernelEvent::Segfault { .. }
                        | KernelEvent::Trap { .. }
                        | KernelEvent::CoreDump { .. }
                ) && e.comm().is_some_and(kernel::is_fpm_comm)
            })
            .collect();
    }

    pub fn with_alignment(alignment: Alignment) -> ContextIndex {
        ContextIndex {
            alignment,
            ..ContextIndex::default()
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
        let newer = |at: EpochMs, down: bool, ev: &Evidence, floor: &mut Option<Transition>| {
            if floor.as_ref().map_or(true, |f| at >= f.at) {
                *floor = Some(Transition {
                    at,
                    down,
                    evidence: ev.clone(),
                });
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
        let after = self.lifecycle.partition_point(|tr| tr.at <= t);
        if after > 0 {
            // The last transition at or before t; within one second a "down" line
            // after an "up" line of the same second is the later state.
            let last = &self.lifecycle[after - 1];
            return if last.down {
                FpmState::Down(last.evidence.clone())
            } else {
                FpmState::Up(last.evidence.clone())
            };
        }
        match self.lifecycle.first() {
            // Before the first transition: a start means it was down ("never
            // started"), a stop means it was up.
            Some(first) if first.down => FpmState::Up(first.evidence.clone()),
            Some(first) => FpmState::Down(first.evidence.clone()),
            None => FpmState::Unknown,
        }
    }

    /// The last time FPM (re)started at or before `t`, from its lifecycle lines.
    pub fn last_start_at_or_before(&self, t: EpochMs) -> Option<EpochMs> {
        let after = self.lifecycle.partition_point(|tr| tr.at <= t);
        self.lifecycle[..after]
            .iter()
            .rev()
            .find(|tr| !tr.down)
            .map(|tr| tr.at)
    }

    /// Whether a lifecycle transition happened within `window_ms` of `t`.
    pub fn lifecycle_near(&self, ev: &Evidence, t: EpochMs, window_ms: i64) -> bool {
        let from = self
            .lifecycle
            .partition_point(|tr| tr.at < t.minus_ms(window_ms));
        self.lifecycle[from..]
            .iter()
            .take_while(|tr| tr.at <= t.plus_ms(window_ms))
            .any(|tr| tr.evidence == *ev)
    }

    /// Called once the configs are read: notes the PHP versions their pools name.
    pub fn finish_configs(&mut self) {
        let seen: Vec<PhpVersionSeen> = self
            .pools
            .iter()
            .filter_map(|p| {
                let listen = p.pool.setting("listen")?;
                Some(PhpVersionSeen {
                    version: php_version_in(&listen.value)?.to_string(),
                    seen_in: format!(
                        "pool {} listens on {} ({}:{})",
                        p.pool.name, listen.value, listen.file, listen.line
                    ),
                })
            })
            .collect();
        for v in seen {
            self.note_php_version(v);
        }
    }

    /// Notes a PHP version an input shows (bounded: the first 16 distinct sources).
    pub fn note_php_version(&mut self, seen: PhpVersionSeen) {
        if self.php_versions.len() < 16 && !self.php_versions.contains(&seen) {
            self.php_versions.push(seen);
        }
    }

    /// When `peer` names a PHP version (`/run/php/php7.2-fpm.sock`) that no input
    /// shows an FPM for, while inputs show FPM for other versions: the peer's
    /// version and what the inputs show instead.
    pub fn php_version_mismatch<'a>(
        &'a self,
        peer: &'a Peer,
    ) -> Option<(&'a str, Vec<&'a PhpVersionSeen>)> {
        let wanted = php_version_in(peer.unix_path()?)?;
        if self.php_versions.is_empty() || self.php_versions.iter().any(|v| v.version == wanted) {
            return None;
        }
        Some((wanted, self.php_versions.iter().collect()))
    }

    /// Every address NGINX passes requests to, per the configs given.
    pub fn nginx_targets(&self) -> impl Iterator<Item = &Target> {
        self.nginx.iter().flat_map(|c| c.targets.iter())
    }

    /// What the NGINX config says about an upstream, by group name (`no live
    /// upstreams` names the group: `upstream: "fastcgi://php_backend"`) or by peer
    /// (`unix:/run/php/php8.2-fpm.sock`, `127.0.0.1:9000`, with or without scheme).
    /// None when no config given names it.
    pub fn nginx_upstream(&self, key: &str) -> Option<UpstreamConf<'_>> {
        let peer = Peer::from_nginx(key);
        for conf in &self.nginx {
            let (group, targets): (Option<&str>, Vec<&Target>) =
                match conf.upstreams.get_key_value(peer.as_str()) {
                    Some((name, _)) => (
                        Some(name.as_str()),
                        conf.targets
                            .iter()
                            .filter(|t| t.group.as_deref() == Some(name.as_str()))
                            .collect(),
                    ),
                    None => {
                        let t: Vec<&Target> = conf
                            .targets
                            .iter()
                            .filter(|t| t.peer == peer || peer.reaches(&t.peer))
                            .collect();
                        let g = t.first().and_then(|t| t.group.as_deref());
                        (
                            g.filter(|g| t.iter().all(|t| t.group.as_deref() == Some(*g))),
                            t,
                        )
                    }
                };
            if group.is_none() && targets.is_empty() {
                continue;
            }
            let servers = group
                .and_then(|g| conf.upstreams.get(g))
                .map(|s| s.iter().collect())
                .unwrap_or_default();
            let mut passes: Vec<&Directive> = Vec::new();
            for t in &targets {
                if !passes
                    .iter()
                    .any(|p| p.file == t.pass.file && p.line == t.pass.line)
                {
                    passes.push(&t.pass);
                }
            }
            if let Some(g) = group {
                // A group no resolved pass reaches may still be named by one.
                for p in conf.passes.iter().filter(|p| p.arg().ends_with(g)) {
                    if !passes.iter().any(|q| q.file == p.file && q.line == p.line) {
                        passes.push(p);
                    }
                }
            }
            let mut protocols = targets.iter().map(|t| t.protocol);
            let protocol = match protocols.next() {
                Some(first) if protocols.all(|p| p == first) => first,
                _ => Protocol::Unknown,
            };
            return Some(UpstreamConf {
                group,
                protocol,
                servers,
                passes,
                targets,
            });
        }
        None
    }

    /// The config lines that write `peer` as an address (the line to change when
    /// it is wrong): a group's `server`, a `*_pass`, a `set`/`map` line. One per place.
    pub fn nginx_lines_for(&self, peer: &Peer) -> Vec<&Directive> {
        let mut out: Vec<&Directive> = Vec::new();
        for t in self.nginx_targets() {
            if (t.peer == *peer || peer.reaches(&t.peer))
                && !out
                    .iter()
                    .any(|d| d.file == t.written_at.file && d.line == t.written_at.line)
            {
                out.push(&t.written_at);
            }
        }
        out
    }

    /// The read timeout NGINX applies to requests sent to `peer`: the directive in
    /// force where its `*_pass` is written (None inside: not set there, NGINX's
    /// default 60 s). None when no config given passes to `peer`. When several
    /// passes reach it with different values, the longest (a failure after it
    /// cannot be a read timeout of a shorter one).
    pub fn nginx_read_timeout_for(&self, peer: &Peer) -> Option<Option<(i64, &Directive)>> {
        let mut found: Option<Option<(i64, &Directive)>> = None;
        for conf in &self.nginx {
            for t in conf
                .targets
                .iter()
                .filter(|t| t.peer == *peer || peer.reaches(&t.peer))
            {
                let here = conf
                    .read_timeout_for(&t.pass)
                    .and_then(|d| Some((parse_nginx_duration_ms(d.arg())?, d)));
                found = Some(match (found.flatten(), here) {
                    (Some(a), Some(b)) => Some(if b.0 > a.0 { b } else { a }),
                    (a, b) => a.or(b),
                });
            }
        }
        found
    }

    /// Addresses FPM listens on: pool `listen` values, with their evidence and pool.
    pub fn listens(&self) -> Vec<Listen<'_>> {
        self.pools
            .iter()
            .filter_map(|p| {
                Some(Listen {
                    address: p.listen()?,
                    evidence: p.evidence("listen")?,
                    pool: p.pool.name.as_str(),
                })
            })
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
        range_of(&self.fpm, &self.fpm_index.max_children, |&i| i, from, to)
            .iter()
            .map(|&i| &self.fpm[i])
            .filter(|e| match &e.event {
                FpmEvent::MaxChildren { pool: p, .. } => pool.map_or(true, |want| want == p),
                _ => false,
            })
            .collect()
    }

    /// Abnormal child exits (a signal, or a non-zero code) in [from, to].
    pub fn child_deaths(&self, from: EpochMs, to: EpochMs) -> Vec<&Timed<FpmEvent>> {
        range_of(&self.fpm, &self.fpm_index.deaths, |&i| i, from, to)
            .iter()
            .map(|&i| &self.fpm[i])
            .collect()
    }

    /// FPM's `execution timed out ... terminating` for child `pid` at or before `until`.
    pub fn execution_timeout_of(
        &self,
        pid: u32,
        near: EpochMs,
        window_ms: i64,
    ) -> Option<&Timed<FpmEvent>> {
        let of_pid = self.fpm_index.execution_timeouts_by_pid.get(&pid)?;
        range_of(
            &self.fpm,
            of_pid,
            |&i| i,
            near.minus_ms(window_ms),
            near.plus_ms(LOG_SLACK_MS),
        )
        .iter()
        .rev()
        .map(|&i| &self.fpm[i])
        .find(|e| matches!(&e.event, FpmEvent::ExecutionTimedOut(t) if t.pid == pid))
    }

    /// The first FPM request-timer line (`executing too slow` or `execution timed
    /// out`) in [from, to] whose request path is `path` (any path when `None`).
    pub fn first_request_timer(
        &self,
        from: EpochMs,
        to: EpochMs,
        path: Option<&str>,
    ) -> Option<&Timed<FpmEvent>> {
        let Some(want) = path else {
            let i = range_of(&self.fpm, &self.fpm_index.timers, |&i| i, from, to).first()?;
            return Some(&self.fpm[*i]);
        };
        let of_path = self.fpm_index.timers_by_path.get(&path_key(want))?;
        range_of(&self.fpm, of_path, |&i| i, from, to)
            .iter()
            .map(|&i| &self.fpm[i])
            .find(|e| match &e.event {
                FpmEvent::SlowRequest(t) | FpmEvent::ExecutionTimedOut(t) => {
                    request_path(&t.request) == want
                }
                _ => false,
            })
    }

    /// Worker output (PHP fatal errors) of child `pid` near `t`.
    pub fn worker_output_of(&self, pid: u32, t: EpochMs) -> Option<&Timed<FpmEvent>> {
        range_of(
            &self.fpm,
            &self.fpm_index.worker_output,
            |&i| i,
            t.minus_ms(WORKER_OUTPUT_MS),
            t.plus_ms(LOG_SLACK_MS),
        )
        .iter()
        .rev()
        .map(|&i| &self.fpm[i])
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
        // The pid's own events, in log order (as a walk over all of them finds them).
        self.kernel_of(pid)
            .filter(|e| {
                matches!(
                    e.event,
                    KernelEvent::OomKilled { .. }
                        | KernelEvent::OomSummary { .. }
                        | KernelEvent::OomVictimChosen { .. }
                ) && close(e.at)
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
        range_of(&self.kernel, &self.kernel_php, |&i| i, from, to)
            .iter()
            .map(|&i| &self.kernel[i])
            .collect()
    }

    /// What [`Self::kernel_events_near`] gives, only for the processes `pids`
    /// (FPM's masters): a few index lookups instead of a walk over every PHP
    /// process the kernel killed in the window.
    pub fn kernel_events_of_near(
        &self,
        pids: &[u32],
        from: EpochMs,
        to: EpochMs,
    ) -> Vec<&Timed<KernelEvent>> {
        let mut found: Vec<usize> = pids
            .iter()
            .filter_map(|p| self.kernel_by_pid.get(p))
            .flatten()
            .copied()
            .filter(|&i| self.kernel_php.binary_search(&i).is_ok())
            .filter(|&i| {
                let at = self.kernel[i].at.unwrap_or(EpochMs(i64::MAX));
                at >= from && at <= to
            })
            .collect();
        // In log order, each once (a pid listed twice).
        found.sort_unstable();
        found.dedup();
        found.into_iter().map(|i| &self.kernel[i]).collect()
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
                .is_some_and(|(a, _)| t >= a.minus_ms(KERNEL_COVER_MARGIN_MS))
        {
            return true;
        }
        match self.kernel_span {
            Some((a, b)) => {
                t >= a.minus_ms(KERNEL_COVER_MARGIN_MS) && t <= b.plus_ms(KERNEL_COVER_MARGIN_MS)
            }
            // A kernel log with no dated line (raw dmesg, not aligned) covers the boot.
            None => true,
        }
    }

    /// Where the NGINX config writes `peer` (`file:line: text`), for fixes.
    pub fn nginx_passes_to(&self, peer: &Peer) -> Vec<String> {
        self.nginx_lines_for(peer)
            .into_iter()
            .map(|d| format!("{}: {}", d.place(), d.text()))
            .collect()
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

    /// Timers of many paths and pids, as a dense log has them in one window.
    fn timers_ctx() -> ContextIndex {
        use crate::parse::fpm::RequestTimer;
        let file: Arc<str> = Arc::from("fpm.log");
        let mut ctx = ContextIndex::default();
        for i in 0..2000u32 {
            let path = ["/a.php", "/b.php", "/c.php"][(i % 3) as usize];
            let timer = RequestTimer {
                pool: "www".into(),
                pid: 100 + i % 50,
                script: format!("/var/www{path}"),
                request: format!("GET {path}?n={i}"),
                secs: 30.0,
            };
            ctx.fpm.push(Timed {
                at: Some(EpochMs(1_000 * i64::from(i))),
                boot_secs: None,
                evidence: Evidence::new(EvidenceSource::Fpm, &file, u64::from(i) + 1, "t"),
                event: if i % 2 == 0 {
                    FpmEvent::ExecutionTimedOut(timer)
                } else {
                    FpmEvent::SlowRequest(timer)
                },
            });
        }
        ctx.finish();
        ctx
    }

    #[test]
    fn the_first_timer_of_a_path_is_the_first_in_time_of_that_path() {
        let ctx = timers_ctx();
        let line = |e: Option<&Timed<FpmEvent>>| e.map(|e| e.evidence.line);
        let t = |s: i64| EpochMs(1_000 * s);
        // Lines are i + 1; /b.php is every i with i % 3 == 1.
        assert_eq!(
            line(ctx.first_request_timer(t(0), t(1999), Some("/b.php"))),
            Some(2)
        );
        assert_eq!(
            line(ctx.first_request_timer(t(1500), t(1999), Some("/c.php"))),
            Some(1503)
        );
        assert_eq!(
            line(ctx.first_request_timer(t(1500), t(1999), None)),
            Some(1501)
        );
        assert_eq!(
            line(ctx.first_request_timer(t(1500), t(1999), Some("/d.php"))),
            None
        );
        assert_eq!(
            line(ctx.first_request_timer(t(1998), t(1998), Some("/b.php"))),
            None
        );
        // Execution timeouts are the even i; pid = 100 + i % 50, so pid 106 has them at
        // i = 6, 56, ..., 956 and pid 107 (odd i only) has none.
        let of = |pid, near| line(ctx.execution_timeout_of(pid, t(near), 600_000));
        assert_eq!(of(106, 1000), Some(957));
        assert_eq!(of(108, 1000), Some(959));
        assert_eq!(of(107, 1000), None);
        assert_eq!(of(106, 3), None);
        assert_eq!(of(999, 1000), None);
    }

    fn nginx_ctx(text: &str) -> ContextIndex {
        use crate::parse::nginx_conf::FileParser;
        let mut conf = NginxConf::default();
        let mut p = FileParser::new(Arc::from("/etc/nginx/conf.d/app.conf"), Vec::new(), 0);
        for (i, l) in text.lines().enumerate() {
            p.feed(&mut conf, l, i as u64 + 1);
        }
        conf.resolve();
        ContextIndex {
            nginx: vec![conf],
            ..ContextIndex::default()
        }
    }

    const APP: &str = "upstream php_backend {
    server unix:/run/php/a.sock max_fails=1;
    server 127.0.0.1:9001 backup;
}
server {
    fastcgi_read_timeout 30s;
    location ~ \\.php$ { fastcgi_pass php_backend; }
    location /slow/ { fastcgi_pass php_backend; fastcgi_read_timeout 5m; }
    location /node/ { proxy_pass http://localhost:3000; }
}
";

    #[test]
    fn upstream_by_group_name_or_peer() {
        let ctx = nginx_ctx(APP);
        // `no live upstreams` names the group: upstream: "fastcgi://php_backend".
        let u = ctx.nginx_upstream("fastcgi://php_backend").unwrap();
        assert_eq!(u.group, Some("php_backend"));
        assert_eq!(u.protocol, Protocol::Fastcgi);
        assert_eq!(
            u.servers.iter().map(|d| d.text()).collect::<Vec<_>>(),
            [
                "server unix:/run/php/a.sock max_fails=1;",
                "server 127.0.0.1:9001 backup;"
            ]
        );
        assert_eq!(u.passes.iter().map(|d| d.line).collect::<Vec<_>>(), [7, 8]);
        // A failing peer finds its group and the `server` line that names it.
        let u = ctx.nginx_upstream("127.0.0.1:9001").unwrap();
        assert_eq!(u.group, Some("php_backend"));
        assert_eq!(u.targets.len(), 2, "one per pass");
        assert!(u.targets.iter().all(|t| t.written_at.line == 3));
        // A direct pass, `localhost` reaching 127.0.0.1.
        let u = ctx.nginx_upstream("http://127.0.0.1:3000/api").unwrap();
        assert_eq!((u.group, u.protocol), (None, Protocol::Http));
        assert_eq!(u.passes[0].place(), "/etc/nginx/conf.d/app.conf:9");
        assert!(ctx.nginx_upstream("10.0.0.9:80").is_none());
        assert_eq!(
            ctx.nginx_passes_to(&Peer::from_nginx("unix:/run/php/a.sock")),
            ["/etc/nginx/conf.d/app.conf:2: server unix:/run/php/a.sock max_fails=1;"]
        );
    }

    #[test]
    fn read_timeout_where_the_pass_is() {
        let ctx = nginx_ctx(APP);
        // Two locations pass to the group: the longer timeout bounds both.
        let (ms, d) = ctx
            .nginx_read_timeout_for(&Peer::from_nginx("unix:/run/php/a.sock"))
            .unwrap()
            .unwrap();
        assert_eq!((ms, d.line), (300_000, 8));
        // Passed to, but no proxy_read_timeout anywhere: NGINX's default.
        assert_eq!(
            ctx.nginx_read_timeout_for(&Peer::from_nginx("127.0.0.1:3000"))
                .map(|o| o.is_none()),
            Some(true)
        );
        // Not passed to at all: the config does not say.
        assert!(ctx
            .nginx_read_timeout_for(&Peer::from_nginx("127.0.0.1:9"))
            .is_none());
    }

    #[test]
    fn php_versions_in_names() {
        assert_eq!(php_version_in("/run/php/php7.2-fpm.sock"), Some("7.2"));
        assert_eq!(php_version_in("php7.0-fpm.log"), Some("7.0"));
        assert_eq!(php_version_in("php8.2-fpm.service"), Some("8.2"));
        assert_eq!(php_version_in("php-fpm7.4"), Some("7.4"));
        assert_eq!(php_version_in("/run/php/php-fpm.sock"), None);
        assert_eq!(php_version_in("/run/php/www.sock"), None);
        assert_eq!(php_version_in("php8-fpm"), None);
    }

    #[test]
    fn request_paths() {
        assert_eq!(request_path("GET /report.php?id=7 HTTP/1.1"), "/report.php");
        assert_eq!(request_path("GET /report.php?id=7"), "/report.php");
    }
}
