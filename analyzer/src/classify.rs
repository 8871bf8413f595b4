//! Deciding the cause of one failure from what NGINX saw and what the context says.
//!
//! The NGINX side narrows the field (errno and phase); FPM, kernel and systemd lines,
//! the configs and what the stream showed about each peer pick among what is left.
//! Confidence says how much of that evidence was there: the same verdict from the
//! NGINX log alone gets a lower number, and when nothing supports a cause the answer
//! is `unknown` with the reason.

use std::collections::HashMap;

use crate::context::{request_path, Context, FpmState, Timed};
use crate::failure::{Attempt, Failure};
use crate::join::History;
use crate::model::{AttemptEvent, Cause, Evidence, Peer, Phase};
use crate::parse::fpm::FpmEvent;
use crate::parse::kernel::KernelEvent;
use crate::time::EpochMs;

/// Default fastcgi_read_timeout (NGINX's default) when neither a record nor the
/// config says.
const DEFAULT_READ_TIMEOUT_MS: i64 = 60_000;
/// NGINX and FPM log whole seconds: a worker's exit and NGINX's line about it can be
/// a second or two apart.
const DEATH_WINDOW_MS: i64 = 3_000;

/// Facts found while classifying, used to write the fix with the user's values.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub peer: Option<Peer>,
    /// The FPM pool serving the peer, when the pool config says.
    pub pool: Option<String>,
    /// Where FPM really listens (wrong-socket-path).
    pub fpm_listen: Option<Peer>,
    pub dead_pid: Option<u32>,
    pub signal: Option<String>,
    pub exit_code: Option<i32>,
    pub crash_detail: Option<String>,
    pub victim_rss_kb: Option<u64>,
    pub max_children: Option<u32>,
    pub start_error: Option<String>,
    pub script: Option<String>,
    pub read_timeout_ms: Option<i64>,
    pub php_error: Option<String>,
    pub unix_refused: bool,
}

#[derive(Debug, Clone)]
pub struct Verdict {
    pub cause: Cause,
    /// 0..1.
    pub confidence: f64,
    pub reason: String,
    /// Context lines supporting the verdict (the failure's own lines are separate).
    pub evidence: Vec<Evidence>,
    pub facts: Facts,
}

impl Verdict {
    fn new(cause: Cause, confidence: f64, reason: impl Into<String>) -> Verdict {
        Verdict {
            cause,
            confidence,
            reason: reason.into(),
            evidence: Vec::new(),
            facts: Facts::default(),
        }
    }

    fn with(mut self, e: &Evidence) -> Verdict {
        if !self.evidence.contains(e) {
            self.evidence.push(e.clone());
        }
        self
    }
}

/// Classifies failures in stream order; remembers recent causes per upstream for
/// `no live upstreams` (which only says that earlier attempts failed).
#[derive(Default)]
pub struct Classifier {
    recent_by_upstream: HashMap<String, (EpochMs, Cause)>,
    /// Worker deaths already matched to a failure. A worker serves one request at a
    /// time, so one death explains one failure: the next failure takes another.
    used_deaths: UsedDeaths,
}

/// Worker pids whose death explained a failure, with when (pruned as time moves on).
#[derive(Default)]
pub struct UsedDeaths {
    by_pid: HashMap<u32, EpochMs>,
    inserts: u32,
}

impl UsedDeaths {
    fn contains(&self, pid: u32, at: Option<EpochMs>) -> bool {
        // The same pid dying again much later is another worker (pids are reused).
        self.by_pid
            .get(&pid)
            .is_some_and(|&t| at.map_or(true, |a| a.distance(t) <= 60_000))
    }

    fn insert(&mut self, pid: u32, at: EpochMs) {
        self.by_pid.insert(pid, at);
        self.inserts += 1;
        if self.inserts % 1024 == 0 {
            self.by_pid.retain(|_, t| t.distance(at) <= 600_000);
        }
    }
}

impl Classifier {
    pub fn classify(&mut self, f: &Failure, ctx: &Context, hist: &History) -> Verdict {
        let mut v = match f.decisive() {
            Some(a) => self.by_attempt(f, a, ctx, hist),
            None => self.without_attempt(f, ctx),
        };
        if v.facts.peer.is_none() {
            v.facts.peer = f.peer.clone();
        }
        if v.facts.pool.is_none() {
            v.facts.pool = f
                .peer
                .as_ref()
                .and_then(|p| ctx.pool_for_peer(p))
                .map(|p| p.pool.name.clone());
        }
        if v.cause != Cause::Unknown {
            for key in [f.upstream.as_deref(), f.peer.as_ref().map(|p| p.as_str())]
                .into_iter()
                .flatten()
            {
                match self.recent_by_upstream.get_mut(key) {
                    Some(slot) => *slot = (f.time, v.cause),
                    None => {
                        self.recent_by_upstream
                            .insert(key.to_string(), (f.time, v.cause));
                    }
                }
            }
        }
        v
    }

    fn by_attempt(&mut self, f: &Failure, a: &Attempt, ctx: &Context, hist: &History) -> Verdict {
        use AttemptEvent as E;
        match a.event {
            E::ConnectFailed => connect_failed(f, a, ctx, hist),
            E::TimedOut if a.phase == Some(Phase::Connect) => connect_timeout(f, ctx),
            E::TimedOut => read_timeout(f, ctx, hist),
            E::Reset | E::ClosedPrematurely | E::RecvFailed | E::SendFailed => worker_died(f, ctx, &mut self.used_deaths),
            E::InvalidHeader | E::HeaderTooBig | E::ProtocolError | E::PrematurelySent => invalid_response(f, a, ctx),
            E::NoLiveUpstreams => self.no_live_upstreams(f),
            E::UpstreamStatus => Verdict::new(
                Cause::Unknown,
                0.5,
                format!(
                    "the upstream itself answered {} (NGINX passed its status on): an application status, not a connection failure",
                    f.status
                ),
            ),
            E::ResolveFailed => Verdict::new(Cause::Unknown, 0.8, "the upstream's name could not be resolved (DNS), not one of the seven causes"),
            E::SslFailed => Verdict::new(Cause::Unknown, 0.8, "TLS to the upstream failed, not one of the seven causes"),
            E::Error => Verdict::new(Cause::Unknown, 0.3, format!("unrecognised upstream error: {}", a.message)),
        }
    }

    fn no_live_upstreams(&self, f: &Failure) -> Verdict {
        let recent = [f.upstream.as_deref(), f.peer.as_ref().map(|p| p.as_str())]
            .into_iter()
            .flatten()
            .find_map(|k| self.recent_by_upstream.get(k))
            .filter(|(t, _)| f.time.distance(*t) <= 120_000);
        match recent {
            Some((_, cause)) => Verdict::new(
                *cause,
                0.6,
                format!(
                    "no live upstreams: NGINX marked every server failed after earlier attempts, which were {cause}"
                ),
            ),
            None => Verdict::new(
                Cause::Unknown,
                0.3,
                "no live upstreams: every server of the upstream group was marked failed (max_fails) by earlier attempts that are not in the input",
            ),
        }
    }

    /// An access-log 502/504 without error-log line or record: only context can tell.
    fn without_attempt(&mut self, f: &Failure, ctx: &Context) -> Verdict {
        let mut v = worker_died(f, ctx, &mut self.used_deaths);
        if v.confidence <= 0.5 {
            v = Verdict::new(
                Cause::Unknown,
                0.2,
                format!(
                    "the access log shows {} but no error-log line or record says why (error_log level above error, or the upstream itself answered {})",
                    f.status, f.status
                ),
            );
        } else {
            v.confidence = (v.confidence - 0.2).max(0.3);
        }
        v
    }
}

fn connect_failed(f: &Failure, a: &Attempt, ctx: &Context, hist: &History) -> Verdict {
    let peer = a.peer.clone().or_else(|| f.peer.clone());
    let mut v = match a.errno {
        Some(2) => no_such_socket(f, peer.as_ref(), ctx, hist),
        Some(13) => permission_denied(peer.as_ref(), ctx),
        Some(111) => refused(f, peer.as_ref(), ctx),
        Some(11) => {
            let mut v = Verdict::new(
                Cause::MaxChildrenExhausted,
                0.9,
                "connect() got EAGAIN: the socket's listen backlog is full because every FPM worker is busy",
            );
            let pool = peer.as_ref().and_then(|p| ctx.pool_for_peer(p)).map(|p| p.pool.name.as_str());
            if let Some(w) = ctx.max_children_warnings(f.time.minus_ms(120_000), f.time.plus_ms(2_000), pool).last() {
                v = v.with(&w.evidence);
                v.confidence = 0.95;
                if let FpmEvent::MaxChildren { limit, .. } = w.event {
                    v.facts.max_children = Some(limit);
                }
            }
            v
        }
        Some(110) => connect_timeout(f, ctx),
        Some(n) => Verdict::new(
            Cause::Unknown,
            0.6,
            format!("connect() failed with errno {n}: a network or address problem, not one of the seven causes"),
        ),
        None => Verdict::new(Cause::Unknown, 0.2, "connect() failed without an errno (line cut?)"),
    };
    v.facts.peer = peer;
    v
}

/// ENOENT: FPM down (cause 1) or FPM up elsewhere (cause 3).
fn no_such_socket(f: &Failure, peer: Option<&Peer>, ctx: &Context, hist: &History) -> Verdict {
    let t = f.time;
    let listens = ctx.listens();
    let served_here = peer.is_some_and(|p| listens.iter().any(|(l, _, _)| p.reaches(l)));
    let elsewhere = listens
        .iter()
        .find(|(l, _, _)| peer.is_none_or_not_reaching(l));
    let peer_name = peer.map_or("the socket".to_string(), |p| p.0.to_string());
    let mut v = match ctx.fpm_state_at(t) {
        FpmState::Down(ev) => {
            let mut v = Verdict::new(
                Cause::FpmNotRunning,
                0.95,
                format!("{peer_name} does not exist and PHP-FPM was stopped at that time (last lifecycle line says so)"),
            )
            .with(&ev);
            if let Some((l, lev, _)) = elsewhere.filter(|_| !served_here) {
                v.reason.push_str(&format!("; note: FPM's config listens on {l}, not {peer_name}"));
                v = v.with(lev);
            }
            v
        }
        FpmState::Up(ev) => match (served_here, elsewhere) {
            (false, Some((l, lev, _))) => {
                let mut v = Verdict::new(
                    Cause::WrongSocketPath,
                    0.95,
                    format!("PHP-FPM was running and listens on {l}, but NGINX connects to {peer_name}"),
                )
                .with(lev)
                .with(&ev);
                v.facts.fpm_listen = Some(l.clone());
                v
            }
            (true, _) => Verdict::new(
                Cause::FpmNotRunning,
                0.5,
                format!("{peer_name} is FPM's configured listen address but the socket file was missing although the FPM log shows it running: FPM (or its socket) went away without a log line"),
            )
            .with(&ev),
            (false, None) => Verdict::new(
                Cause::WrongSocketPath,
                0.75,
                format!("PHP-FPM was running (per its log) but {peer_name} does not exist: FPM listens somewhere else (give the pool config to see where)"),
            )
            .with(&ev),
        },
        FpmState::Unknown => {
            if let (false, Some((l, lev, _))) = (served_here, elsewhere) {
                let mut v = Verdict::new(
                    Cause::WrongSocketPath,
                    0.8,
                    format!("FPM's pool config listens on {l}, but NGINX connects to {peer_name} (no FPM log to confirm FPM was up)"),
                )
                .with(lev);
                v.facts.fpm_listen = Some(l.clone());
                v
            } else if served_here {
                Verdict::new(
                    Cause::FpmNotRunning,
                    0.75,
                    format!("{peer_name} is FPM's configured listen address and does not exist: FPM is not running (no FPM log to confirm)"),
                )
            } else if let Some(p) = peer.filter(|p| hist.alive.contains_key(*p)) {
                Verdict::new(
                    Cause::FpmNotRunning,
                    0.7,
                    format!("NGINX reached FPM at {p} earlier and now the socket is gone: FPM stopped (from the NGINX log alone)"),
                )
            } else if let Some(other) = peer.and_then(|p| hist.other_peer_alive(p, t, 300_000)) {
                let mut v = Verdict::new(
                    Cause::WrongSocketPath,
                    0.65,
                    format!("FPM answered at {other} around the same time, while {peer_name} does not exist (from the NGINX log alone)"),
                );
                v.facts.fpm_listen = Some(other.clone());
                v
            } else {
                Verdict::new(
                    Cause::FpmNotRunning,
                    0.5,
                    format!("{peer_name} does not exist: FPM is not running, or NGINX points at a wrong path; give the FPM log or pool config to tell them apart"),
                )
            }
        }
    };
    v.facts.start_error = start_error_before(ctx, t);
    if v.cause == Cause::FpmNotRunning {
        if let Some(e) = fpm_error_evidence(ctx, t) {
            v = v.with(&e);
        }
    }
    v
}

trait NotReaching {
    fn is_none_or_not_reaching(&self, listen: &Peer) -> bool;
}

impl NotReaching for Option<&Peer> {
    fn is_none_or_not_reaching(&self, listen: &Peer) -> bool {
        self.map_or(true, |p| !p.reaches(listen))
    }
}

fn permission_denied(peer: Option<&Peer>, ctx: &Context) -> Verdict {
    let mut v = Verdict::new(
        Cause::SocketPermissionDenied,
        0.95,
        "connect() got EACCES: the NGINX worker user may not open the FPM socket (listen.owner/listen.group/listen.mode)",
    );
    if let Some(pool) = peer.and_then(|p| ctx.pool_for_peer(p)) {
        for key in [
            "listen.owner",
            "listen.group",
            "listen.mode",
            "listen.acl_users",
        ] {
            if let Some(e) = pool.evidence(key) {
                v = v.with(&e);
            }
        }
    }
    for e in ctx.fpm_errors().filter(|e| {
        matches!(
            e.event,
            FpmEvent::ChownFailed { .. } | FpmEvent::UserError { .. }
        )
    }) {
        v = v.with(&e.evidence);
    }
    v
}

fn refused(f: &Failure, peer: Option<&Peer>, ctx: &Context) -> Verdict {
    let unix = peer.is_some_and(Peer::is_unix);
    let what = if unix {
        "the socket file exists but nothing listens on it (stale socket left after FPM was killed or crashed)"
    } else {
        "nothing listens on that address and port"
    };
    let mut v = match ctx.fpm_state_at(f.time) {
        FpmState::Down(ev) => Verdict::new(Cause::FpmNotRunning, 0.95, format!("connection refused: {what}; FPM was stopped")).with(&ev),
        FpmState::Up(ev) => Verdict::new(
            Cause::FpmNotRunning,
            0.7,
            format!("connection refused: {what}; the FPM log last shows it running, so the master died without a log line (killed?)"),
        )
        .with(&ev),
        FpmState::Unknown => Verdict::new(Cause::FpmNotRunning, 0.9, format!("connection refused: {what}")),
    };
    v.facts.unix_refused = unix;
    v.facts.start_error = start_error_before(ctx, f.time);
    if let Some(e) = fpm_error_evidence(ctx, f.time) {
        v = v.with(&e);
    }
    // A master killed by the kernel explains the stale socket: FPM's own log says
    // nothing then. Match the master pid from `fpm is running, pid N`.
    for k in ctx.kernel_events_near(f.time.minus_ms(3_600_000), f.time.plus_ms(2_000)) {
        if k.event.pid().is_some_and(|p| ctx.masters.contains(&p)) {
            v = v.with(&k.evidence);
        }
    }
    v
}

fn connect_timeout(f: &Failure, ctx: &Context) -> Verdict {
    let pool = f
        .peer
        .as_ref()
        .and_then(|p| ctx.pool_for_peer(p))
        .map(|p| p.pool.name.as_str());
    let warnings = ctx.max_children_warnings(f.time.minus_ms(180_000), f.time.plus_ms(2_000), pool);
    let mut v = Verdict::new(
        Cause::MaxChildrenExhausted,
        if warnings.is_empty() { 0.6 } else { 0.9 },
        "connecting to FPM timed out: its accept queue was full (every worker busy, new connections not accepted)",
    );
    if let Some(w) = warnings.last() {
        v = v.with(&w.evidence);
        if let FpmEvent::MaxChildren { limit, .. } = w.event {
            v.facts.max_children = Some(limit);
        }
    }
    v
}

/// A 504 reading the header: a saturated pool (4) or a slow script (5).
fn read_timeout(f: &Failure, ctx: &Context, hist: &History) -> Verdict {
    let t = f.time;
    let (rt, _) = f
        .read_timeout_ms
        .map(|ms| (ms as i64, String::new()))
        .or_else(|| ctx.nginx_read_timeout_ms())
        .unwrap_or((DEFAULT_READ_TIMEOUT_MS, String::new()));
    let pool_conf = f.peer.as_ref().and_then(|p| ctx.pool_for_peer(p));
    let pool = pool_conf.map(|p| p.pool.name.as_str());
    let warnings = ctx.max_children_warnings(t.minus_ms(rt + 10_000), t.plus_ms(2_000), pool);
    // A (re)start of FPM after the warning gave the pool fresh workers.
    let restarted = ctx.last_start_at_or_before(t);
    let warnings: Vec<_> = warnings
        .into_iter()
        .filter(|w| restarted.map_or(true, |s| w.at.is_some_and(|a| a >= s)))
        .collect();
    let path = f.request.as_deref().map(request_path);
    let timers = ctx.request_timers(t.minus_ms(rt + 5_000), t.plus_ms(60_000), path);
    let mut v = if let Some(w) = warnings.last() {
        let mut v = Verdict::new(
            Cause::MaxChildrenExhausted,
            0.9,
            "NGINX timed out waiting for a response while the pool had reached pm.max_children: the request waited for a free worker",
        )
        .with(&w.evidence);
        if let FpmEvent::MaxChildren { limit, .. } = w.event {
            v.facts.max_children = Some(limit);
        }
        v
    } else if let Some((n, busy)) = static_pool_saturated(f, pool_conf, hist, rt) {
        let mut v = Verdict::new(
            Cause::MaxChildrenExhausted,
            0.75,
            format!("pm = static logs no max_children warning, but {busy} requests timed out together on a pool of {n} workers: every worker was busy and requests waited for one"),
        );
        if let Some(e) = pool_conf.and_then(|p| p.evidence("pm.max_children")) {
            v = v.with(&e);
        }
        v.facts.max_children = Some(n);
        v
    } else if let Some(timer) = timers.first() {
        let mut v = Verdict::new(
            Cause::ReadTimeout,
            0.95,
            "the script ran longer than fastcgi_read_timeout (FPM's request timers saw it), on a pool that was not saturated",
        )
        .with(&timer.evidence);
        if let FpmEvent::SlowRequest(r) | FpmEvent::ExecutionTimedOut(r) = &timer.event {
            v.facts.script = Some(r.script.clone());
        }
        v
    } else if ctx.has_fpm_log {
        Verdict::new(
            Cause::ReadTimeout,
            0.85,
            "the script did not answer within fastcgi_read_timeout and the pool logged no max_children warning: the script itself was slow",
        )
    } else {
        Verdict::new(
            Cause::ReadTimeout,
            0.6,
            "the script did not answer within fastcgi_read_timeout; no FPM log to rule out a saturated pool (max_children)",
        )
    };
    v.facts.read_timeout_ms = Some(rt);
    if let Some(timer) = timers.first() {
        v = v.with(&timer.evidence);
    }
    v
}

/// Under pm = static, whether at least max_children requests timed out within one
/// read-timeout window on this peer (every worker busy).
fn static_pool_saturated(
    f: &Failure,
    pool: Option<&crate::context::PoolConf>,
    hist: &History,
    rt: i64,
) -> Option<(u32, usize)> {
    let pool = pool?;
    if pool.pool.pm() != "static" {
        return None;
    }
    let n = pool.pool.max_children()?;
    let peer = f.peer.as_ref()?;
    let busy = hist.timeouts_between(peer, f.time.minus_ms(rt), f.time.plus_ms(2_000));
    // n slow requests on n workers are n slow scripts; only more timeouts than
    // workers mean some request waited for a worker.
    (busy > n as usize && n > 0).then_some((n, busy))
}

fn signal_label(signal: Option<u32>, name: Option<&str>) -> String {
    match (signal, name) {
        (Some(n), Some(s)) => format!("signal {n} ({s})"),
        (Some(n), None) => format!("signal {n}"),
        _ => "a signal".to_string(),
    }
}

/// The connection dropped before a response: which worker died, and why.
fn worker_died(f: &Failure, ctx: &Context, used: &mut UsedDeaths) -> Verdict {
    let t = f.time;
    let deaths = ctx.child_deaths(t.minus_ms(DEATH_WINDOW_MS), t.plus_ms(DEATH_WINDOW_MS));
    // FPM logs whole seconds: the distance is to that second, and deaths within one
    // second keep their log order (failures arrive in time order too). A death
    // already matched to an earlier failure comes last.
    let to_second = |at: Option<EpochMs>| {
        at.map_or(i64::MAX, |a| {
            if t < a {
                a.0 - t.0
            } else {
                (t.0 - a.0 - 999).max(0)
            }
        })
    };
    let best = deaths.iter().enumerate().min_by_key(|(i, d)| {
        let pid = match d.event {
            FpmEvent::ChildExited { pid, .. } => pid,
            _ => 0,
        };
        (used.contains(pid, d.at), to_second(d.at), *i)
    });
    if let Some((_, death)) = best {
        if let (FpmEvent::ChildExited { pid, .. }, Some(at)) = (&death.event, death.at) {
            used.insert(*pid, at);
        }
        return from_child_death(f, death, ctx);
    }
    // No FPM line about a child: the kernel, systemd, FPM's lifecycle, PHP's stderr.
    let near = ctx.kernel_events_near(
        t.minus_ms(DEATH_WINDOW_MS + 2_000),
        t.plus_ms(DEATH_WINDOW_MS),
    );
    if let Some(k) = near.iter().find(|k| {
        matches!(
            k.event,
            KernelEvent::OomKilled { .. } | KernelEvent::OomVictimChosen { .. }
        )
    }) {
        let mut v = Verdict::new(
            Cause::WorkerOomKilled,
            0.8,
            "the kernel OOM killer killed a PHP-FPM process at that moment (no FPM log line to match its pid)",
        )
        .with(&k.evidence);
        set_oom_facts(&mut v, k);
        return v;
    }
    if let Some(k) = near.first() {
        let mut v = Verdict::new(
            Cause::InvalidResponse,
            0.85,
            "a PHP-FPM process crashed at that moment (kernel line; no FPM log line to match its pid)",
        )
        .with(&k.evidence);
        set_crash_facts(&mut v, k);
        return v;
    }
    if let Some(u) = ctx.unit_oom_near(t.minus_ms(5_000), t.plus_ms(5_000)) {
        return Verdict::new(
            Cause::WorkerOomKilled,
            0.75,
            "systemd reports an OOM kill in the PHP-FPM unit at that moment",
        )
        .with(&u.evidence);
    }
    if let FpmState::Down(ev) = ctx.fpm_state_at(t.plus_ms(DEATH_WINDOW_MS)) {
        if ev_time_close(ctx, &ev, t) {
            return Verdict::new(
                Cause::FpmNotRunning,
                0.7,
                "PHP-FPM was stopped while the request was running (its workers exit on shutdown)",
            )
            .with(&ev);
        }
    }
    if let Some(text) = f
        .stderr
        .as_deref()
        .filter(|s| s.contains("Fatal error") || s.contains("Allowed memory"))
    {
        let mut v = Verdict::new(
            Cause::InvalidResponse,
            0.7,
            "PHP reported a fatal error for this request and the worker closed the connection without a valid response",
        );
        v.facts.php_error = Some(text.to_string());
        return v;
    }
    if ctx.has_fpm_log {
        Verdict::new(
            Cause::InvalidResponse,
            0.5,
            "FPM closed the connection without a response and logged no child death (e.g. listen.allowed_clients, exit() before output)",
        )
    } else {
        Verdict::new(
            Cause::InvalidResponse,
            0.45,
            "the worker closed or reset the connection before answering; without the FPM and kernel logs an OOM kill cannot be told from a crash",
        )
    }
}

/// Whether a lifecycle evidence line is within the death window of `t`.
fn ev_time_close(ctx: &Context, ev: &Evidence, t: EpochMs) -> bool {
    ctx.lifecycle_near(ev, t, DEATH_WINDOW_MS + 2_000)
}

fn from_child_death(f: &Failure, death: &Timed<FpmEvent>, ctx: &Context) -> Verdict {
    let FpmEvent::ChildExited {
        pid,
        signal,
        signal_name,
        code,
        ..
    } = &death.event
    else {
        return Verdict::new(Cause::Unknown, 0.1, "internal: not a child exit");
    };
    let pid = *pid;
    let label = signal_label(*signal, signal_name.as_deref());
    let mut v = if let Some(timeout) =
        ctx.execution_timeout_of(pid, death.at.unwrap_or(f.time), 600_000)
    {
        let mut v = Verdict::new(
            Cause::ReadTimeout,
            0.9,
            format!("FPM's request_terminate_timeout killed worker {pid} ({label}): the request outlived the timeout, so NGINX saw the connection drop"),
        )
        .with(&timeout.evidence);
        if let FpmEvent::ExecutionTimedOut(r) = &timeout.event {
            v.facts.script = Some(r.script.clone());
        }
        v
    } else if *signal == Some(9) {
        if let Some(k) = ctx.oom_kill_of(pid, death.at, 120_000) {
            let mut v = Verdict::new(
                Cause::WorkerOomKilled,
                0.95,
                format!("the kernel OOM killer killed worker {pid} (SIGKILL; the same pid in the kernel log)"),
            )
            .with(&k.evidence);
            set_oom_facts(&mut v, k);
            v
        } else if let Some(u) = ctx.unit_oom_near(f.time.minus_ms(5_000), f.time.plus_ms(5_000)) {
            Verdict::new(
                Cause::WorkerOomKilled,
                0.85,
                format!("worker {pid} got SIGKILL and systemd reports an OOM kill in the unit"),
            )
            .with(&u.evidence)
        } else if ctx.kernel_covers(f.time) {
            Verdict::new(
                Cause::InvalidResponse,
                0.8,
                format!("worker {pid} got SIGKILL but the kernel log has no OOM kill for it: killed by hand or by another tool"),
            )
        } else {
            Verdict::new(
                Cause::WorkerOomKilled,
                0.55,
                format!("worker {pid} got SIGKILL, most often the OOM killer; no kernel log was given to confirm (a manual kill looks the same)"),
            )
        }
    } else if *signal == Some(15)
        && matches!(
            ctx.fpm_state_at(f.time.plus_ms(DEATH_WINDOW_MS)),
            FpmState::Down(_)
        )
    {
        Verdict::new(
            Cause::FpmNotRunning,
            0.7,
            format!("worker {pid} was terminated because PHP-FPM was stopping"),
        )
    } else {
        let what = match code {
            Some(c) => format!("exited with code {c}"),
            None => format!("died on {label}"),
        };
        let mut v = Verdict::new(
            Cause::InvalidResponse,
            0.9,
            format!("worker {pid} {what} before answering (crash or abort)"),
        );
        if let Some(k) = ctx.crash_of(pid, death.at, 120_000) {
            v = v.with(&k.evidence);
            v.confidence = 0.95;
            set_crash_facts(&mut v, k);
        }
        v
    };
    v = v.with(&death.evidence);
    v.facts.dead_pid = Some(pid);
    v.facts.signal = signal_name
        .clone()
        .or_else(|| signal.map(|s| s.to_string()));
    v.facts.exit_code = *code;
    if let Some(out) = ctx.worker_output_of(pid, death.at.unwrap_or(f.time)) {
        v = v.with(&out.evidence);
        if let FpmEvent::WorkerOutput { text, .. } = &out.event {
            v.facts.php_error = Some(text.clone());
        }
    }
    if v.facts.php_error.is_none() {
        v.facts.php_error = f.stderr.clone();
    }
    v
}

fn set_oom_facts(v: &mut Verdict, k: &Timed<KernelEvent>) {
    if let KernelEvent::OomKilled {
        pid, anon_rss_kb, ..
    } = &k.event
    {
        v.facts.dead_pid = Some(*pid);
        v.facts.victim_rss_kb = *anon_rss_kb;
    }
}

fn set_crash_facts(v: &mut Verdict, k: &Timed<KernelEvent>) {
    v.facts.crash_detail = match &k.event {
        KernelEvent::Segfault { comm, detail, .. } => Some(format!("{comm} segfault {detail}")),
        KernelEvent::Trap { comm, what, .. } => Some(format!("{comm} {what}")),
        KernelEvent::CoreDump { comm, .. } => Some(format!("{comm} dumped core")),
        _ => None,
    };
}

fn invalid_response(f: &Failure, a: &Attempt, ctx: &Context) -> Verdict {
    let what = match a.event {
        AttemptEvent::HeaderTooBig => {
            "FPM's response header (with PHP's stderr output) was larger than fastcgi_buffer_size"
        }
        AttemptEvent::InvalidHeader => "FPM sent a header NGINX could not parse",
        _ => "FPM broke the FastCGI protocol (e.g. closed stdout before the header)",
    };
    let mut v = Verdict::new(
        Cause::InvalidResponse,
        0.9,
        format!("invalid response: {what}"),
    );
    v.facts.php_error = f.stderr.clone();
    let deaths = ctx.child_deaths(
        f.time.minus_ms(DEATH_WINDOW_MS),
        f.time.plus_ms(DEATH_WINDOW_MS),
    );
    if let Some(d) = deaths.first() {
        v = v.with(&d.evidence);
    }
    v
}

/// The last FPM start-up error before `t` (bind, user, init), as text for the fix.
fn start_error_before(ctx: &Context, t: EpochMs) -> Option<String> {
    fpm_error_evidence(ctx, t).map(|e| e.text)
}

fn fpm_error_evidence(ctx: &Context, t: EpochMs) -> Option<Evidence> {
    ctx.fpm_errors()
        .rev()
        .filter(|e| {
            e.at.is_some_and(|a| a <= t.plus_ms(2_000) && a >= t.minus_ms(3_600_000))
        })
        .find(|e| !matches!(e.event, FpmEvent::ChownFailed { .. }))
        .map(|e| e.evidence.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::PoolConf;
    use crate::failure::SeenIn;
    use crate::parse::fpm_conf::FpmConfParser;
    use crate::parse::journal::{UnitEvent, UnitMessage};
    use std::sync::Arc;

    const T: i64 = 1_775_139_797_000;
    const SOCK: &str = "unix:/run/php/php8.2-fpm.sock";

    fn ev(source: &'static str, text: &str) -> Evidence {
        Evidence::new(source, &Arc::from("test.log"), 1, text)
    }

    fn failure(event: AttemptEvent, phase: Phase, errno: Option<i32>, peer: &str) -> Failure {
        Failure {
            time: EpochMs(T),
            time_known: true,
            pid: Some(1234),
            conn: Some(5678),
            request_id: None,
            status: if event == AttemptEvent::TimedOut {
                504
            } else {
                502
            },
            status_inferred: true,
            peer: Some(Peer(peer.into())),
            upstream: None,
            protocol: crate::model::Protocol::Fastcgi,
            request: Some("GET /report.php?id=7 HTTP/1.1".into()),
            client: None,
            server: None,
            host: None,
            attempts: vec![Attempt {
                event,
                phase: Some(phase),
                errno,
                peer: Some(Peer(peer.into())),
                message: "test".into(),
            }],
            stderr: None,
            request_time_ms: None,
            read_timeout_ms: Some(30_000),
            seen_in: SeenIn::default(),
            evidence: vec![ev("nginx", "line")],
        }
    }

    fn fpm(ctx: &mut Context, offset_ms: i64, event: FpmEvent) {
        ctx.has_fpm_log = true;
        ctx.fpm.push(Timed {
            at: Some(EpochMs(T + offset_ms)),
            boot_secs: None,
            evidence: ev("fpm", &format!("{event:?}")),
            event,
        });
        ctx.finish();
    }

    fn kernel(ctx: &mut Context, offset_ms: i64, event: KernelEvent) {
        ctx.has_kernel_log = true;
        let at = EpochMs(T + offset_ms);
        ctx.kernel_span = Some((at, at));
        ctx.kernel.push(Timed {
            at: Some(at),
            boot_secs: None,
            evidence: ev("kernel", &format!("{event:?}")),
            event,
        });
        ctx.finish();
    }

    fn pool(ctx: &mut Context, text: &str) {
        let mut p = FpmConfParser::default();
        for (i, l) in text.lines().enumerate() {
            p.feed(l, i as u64 + 1);
        }
        for pool in p.finish() {
            ctx.pools.push(PoolConf {
                file: Arc::from("www.conf"),
                pool,
            });
        }
    }

    fn exit(pid: u32, signal: Option<u32>, name: Option<&str>, code: Option<i32>) -> FpmEvent {
        FpmEvent::ChildExited {
            pool: "www".into(),
            pid,
            signal,
            signal_name: name.map(String::from),
            code,
            core_dumped: false,
        }
    }

    /// A context that has an FPM log with nothing relevant in it.
    fn fpm_log_only() -> Context {
        let mut ctx = Context::default();
        fpm(&mut ctx, -3_600_000, FpmEvent::Ready);
        ctx
    }

    fn classify(f: &Failure, ctx: &Context) -> Verdict {
        Classifier::default().classify(f, ctx, &History::default())
    }

    #[test]
    fn enoent_with_fpm_stopped_is_fpm_not_running() {
        let mut ctx = Context::default();
        fpm(&mut ctx, -60_000, FpmEvent::Running { pid: 812 });
        fpm(&mut ctx, -10_000, FpmEvent::Terminating);
        fpm(&mut ctx, -10_000, FpmEvent::Exiting);
        let v = classify(
            &failure(AttemptEvent::ConnectFailed, Phase::Connect, Some(2), SOCK),
            &ctx,
        );
        assert_eq!(v.cause, Cause::FpmNotRunning);
        assert!(v.confidence >= 0.9);
        assert!(!v.evidence.is_empty());
    }

    #[test]
    fn enoent_never_started_is_fpm_not_running() {
        let mut ctx = Context::default();
        fpm(&mut ctx, 60_000, FpmEvent::Running { pid: 812 });
        let v = classify(
            &failure(AttemptEvent::ConnectFailed, Phase::Connect, Some(2), SOCK),
            &ctx,
        );
        assert_eq!(v.cause, Cause::FpmNotRunning);
    }

    #[test]
    fn enoent_with_fpm_up_elsewhere_is_wrong_socket_path() {
        let mut ctx = Context::default();
        fpm(&mut ctx, -60_000, FpmEvent::Running { pid: 812 });
        fpm(&mut ctx, -60_000, FpmEvent::Ready);
        pool(&mut ctx, "[www]\nlisten = /run/php/php8.2-fpm.sock\n");
        let f = failure(
            AttemptEvent::ConnectFailed,
            Phase::Connect,
            Some(2),
            "unix:/run/php/php8.1-fpm.sock",
        );
        let v = classify(&f, &ctx);
        assert_eq!(v.cause, Cause::WrongSocketPath);
        assert_eq!(v.facts.fpm_listen, Some(Peer(SOCK.into())));
        let fix = crate::fix::fix_for(&v, &f, &ctx, Default::default());
        assert!(
            fix.contains("fastcgi_pass unix:/run/php/php8.2-fpm.sock;"),
            "{fix}"
        );
    }

    #[test]
    fn refused_and_eacces_and_eagain() {
        let ctx = Context::default();
        let v = classify(
            &failure(
                AttemptEvent::ConnectFailed,
                Phase::Connect,
                Some(111),
                "127.0.0.1:9000",
            ),
            &ctx,
        );
        assert_eq!(v.cause, Cause::FpmNotRunning);
        let f = failure(AttemptEvent::ConnectFailed, Phase::Connect, Some(111), SOCK);
        let v = classify(&f, &ctx);
        assert!(v.facts.unix_refused);
        assert!(crate::fix::fix_for(&v, &f, &ctx, Default::default())
            .contains("rm -f /run/php/php8.2-fpm.sock"));
        let v = classify(
            &failure(AttemptEvent::ConnectFailed, Phase::Connect, Some(13), SOCK),
            &ctx,
        );
        assert_eq!(v.cause, Cause::SocketPermissionDenied);
        let v = classify(
            &failure(AttemptEvent::ConnectFailed, Phase::Connect, Some(11), SOCK),
            &ctx,
        );
        assert_eq!(v.cause, Cause::MaxChildrenExhausted);
    }

    #[test]
    fn timeout_on_saturated_pool_vs_idle_pool() {
        let f = failure(AttemptEvent::TimedOut, Phase::Header, Some(110), SOCK);
        let mut busy = Context::default();
        fpm(
            &mut busy,
            -25_000,
            FpmEvent::MaxChildren {
                pool: "www".into(),
                limit: 5,
            },
        );
        assert_eq!(classify(&f, &busy).cause, Cause::MaxChildrenExhausted);
        // The same warning long before this request's window does not count.
        let mut earlier = Context::default();
        fpm(
            &mut earlier,
            -600_000,
            FpmEvent::MaxChildren {
                pool: "www".into(),
                limit: 5,
            },
        );
        let v = classify(&f, &earlier);
        assert_eq!(v.cause, Cause::ReadTimeout);
        assert!(v.confidence > 0.8);
        // NGINX log alone: read-timeout, less sure.
        let v = classify(&f, &Context::default());
        assert_eq!(v.cause, Cause::ReadTimeout);
        assert!(v.confidence < 0.7);
    }

    #[test]
    fn a_restart_after_the_warning_ends_the_saturation() {
        let f = failure(AttemptEvent::TimedOut, Phase::Header, Some(110), SOCK);
        let mut ctx = Context::default();
        fpm(
            &mut ctx,
            -8_000,
            FpmEvent::MaxChildren {
                pool: "www".into(),
                limit: 1,
            },
        );
        fpm(&mut ctx, -5_000, FpmEvent::Running { pid: 900 });
        assert_eq!(classify(&f, &ctx).cause, Cause::ReadTimeout);
    }

    #[test]
    fn one_death_explains_one_failure() {
        // An OOM kill and a segfault in the same second: the first failure takes
        // the first death, the second failure the other one.
        let mut ctx = Context::default();
        fpm(&mut ctx, 0, exit(2735, Some(9), Some("SIGKILL"), None));
        fpm(&mut ctx, 0, exit(2749, Some(11), Some("SIGSEGV"), None));
        kernel(
            &mut ctx,
            0,
            KernelEvent::OomKilled {
                pid: 2735,
                comm: "php-fpm8.2".into(),
                anon_rss_kb: None,
                memcg: true,
            },
        );
        let mut c = Classifier::default();
        let mut first = failure(AttemptEvent::Reset, Phase::Header, Some(104), SOCK);
        first.time = EpochMs(T + 565);
        let mut second = first.clone();
        second.time = EpochMs(T + 992);
        assert_eq!(
            c.classify(&first, &ctx, &History::default()).cause,
            Cause::WorkerOomKilled
        );
        assert_eq!(
            c.classify(&second, &ctx, &History::default()).cause,
            Cause::InvalidResponse
        );
    }

    #[test]
    fn static_pool_with_every_worker_busy() {
        let mut ctx = fpm_log_only();
        pool(
            &mut ctx,
            "[www]\nlisten = /run/php/php8.2-fpm.sock\npm = static\npm.max_children = 2\n",
        );
        let f = failure(AttemptEvent::TimedOut, Phase::Header, Some(110), SOCK);
        let mut hist = History::default();
        let peer = Peer(SOCK.into());
        hist.timeouts
            .entry(peer.clone())
            .or_default()
            .push_back(EpochMs(T - 100));
        let mut c = Classifier::default();
        assert_eq!(c.classify(&f, &ctx, &hist).cause, Cause::ReadTimeout);
        // Two slow requests on two workers: slow scripts, nobody waited.
        hist.timeouts
            .entry(peer.clone())
            .or_default()
            .push_back(EpochMs(T));
        assert_eq!(c.classify(&f, &ctx, &hist).cause, Cause::ReadTimeout);
        // A third timed out too: it waited for a worker.
        hist.timeouts
            .entry(peer)
            .or_default()
            .push_back(EpochMs(T + 50));
        assert_eq!(
            c.classify(&f, &ctx, &hist).cause,
            Cause::MaxChildrenExhausted
        );
    }

    #[test]
    fn sigkill_with_kernel_oom_is_oom_and_without_is_invalid_response() {
        let f = failure(AttemptEvent::Reset, Phase::Header, Some(104), SOCK);
        let mut ctx = Context::default();
        fpm(&mut ctx, 0, exit(23114, Some(9), Some("SIGKILL"), None));
        kernel(
            &mut ctx,
            -5,
            KernelEvent::OomKilled {
                pid: 23114,
                comm: "php-fpm8.2".into(),
                anon_rss_kb: Some(392_492),
                memcg: false,
            },
        );
        let v = classify(&f, &ctx);
        assert_eq!(v.cause, Cause::WorkerOomKilled);
        assert_eq!(v.facts.victim_rss_kb, Some(392_492));
        // A kernel log that covers the time but names another pid: a manual kill.
        let mut ctx = Context::default();
        fpm(&mut ctx, 0, exit(23114, Some(9), Some("SIGKILL"), None));
        kernel(
            &mut ctx,
            -5,
            KernelEvent::OomKilled {
                pid: 999,
                comm: "mysqld".into(),
                anon_rss_kb: None,
                memcg: false,
            },
        );
        assert_eq!(classify(&f, &ctx).cause, Cause::InvalidResponse);
        // No kernel log at all: most likely OOM, but not sure.
        let mut ctx = Context::default();
        fpm(&mut ctx, 0, exit(23114, Some(9), Some("SIGKILL"), None));
        let v = classify(&f, &ctx);
        assert_eq!(v.cause, Cause::WorkerOomKilled);
        assert!(v.confidence < 0.6);
    }

    #[test]
    fn crash_abort_and_exit_code_are_invalid_response() {
        let f = failure(AttemptEvent::ClosedPrematurely, Phase::Header, None, SOCK);
        for e in [
            exit(1, Some(11), Some("SIGSEGV"), None),
            exit(1, Some(6), Some("SIGABRT"), None),
            exit(1, None, None, Some(255)),
        ] {
            let mut ctx = Context::default();
            fpm(&mut ctx, 1_000, e);
            assert_eq!(classify(&f, &ctx).cause, Cause::InvalidResponse);
        }
        let mut ctx = Context::default();
        fpm(&mut ctx, 0, exit(1, Some(11), Some("SIGSEGV"), None));
        kernel(
            &mut ctx,
            0,
            KernelEvent::Segfault {
                pid: 1,
                comm: "php-fpm8.2".into(),
                detail: "at 8 in opcache.so".into(),
            },
        );
        let v = classify(&f, &ctx);
        assert_eq!(v.cause, Cause::InvalidResponse);
        assert_eq!(
            v.facts.crash_detail.as_deref(),
            Some("php-fpm8.2 segfault at 8 in opcache.so")
        );
        // Kernel line alone, no FPM log.
        let mut ctx = Context::default();
        kernel(
            &mut ctx,
            0,
            KernelEvent::Segfault {
                pid: 1,
                comm: "php-fpm8.2".into(),
                detail: "at 8".into(),
            },
        );
        assert_eq!(classify(&f, &ctx).cause, Cause::InvalidResponse);
        // A worker death far from the failure is not its cause.
        let mut ctx = Context::default();
        fpm(&mut ctx, 60_000, exit(1, Some(9), Some("SIGKILL"), None));
        let v = classify(&f, &ctx);
        assert_eq!(v.cause, Cause::InvalidResponse);
        assert!(v.confidence <= 0.5);
    }

    #[test]
    fn fpm_request_terminate_timeout_is_read_timeout() {
        let f = failure(AttemptEvent::Reset, Phase::Header, Some(104), SOCK);
        let mut ctx = Context::default();
        fpm(
            &mut ctx,
            0,
            FpmEvent::ExecutionTimedOut(crate::parse::fpm::RequestTimer {
                pool: "www".into(),
                pid: 23150,
                script: "/var/www/html/report.php".into(),
                request: "GET /report.php?id=7".into(),
                secs: 30.01,
            }),
        );
        fpm(&mut ctx, 0, exit(23150, Some(15), Some("SIGTERM"), None));
        let v = classify(&f, &ctx);
        assert_eq!(v.cause, Cause::ReadTimeout);
        assert_eq!(v.facts.script.as_deref(), Some("/var/www/html/report.php"));
    }

    #[test]
    fn systemd_oom_without_kernel_log() {
        let f = failure(AttemptEvent::ClosedPrematurely, Phase::Header, None, SOCK);
        let mut ctx = Context::default();
        ctx.units.push(Timed {
            at: Some(EpochMs(T)),
            boot_secs: None,
            evidence: ev(
                "journal",
                "php8.2-fpm.service: A process of this unit has been killed by the OOM killer.",
            ),
            event: UnitMessage {
                unit: Some("php8.2-fpm.service".into()),
                event: UnitEvent::OomKillInUnit,
            },
        });
        assert_eq!(classify(&f, &ctx).cause, Cause::WorkerOomKilled);
    }

    #[test]
    fn invalid_headers() {
        let ctx = Context::default();
        for e in [
            AttemptEvent::HeaderTooBig,
            AttemptEvent::InvalidHeader,
            AttemptEvent::ProtocolError,
        ] {
            assert_eq!(
                classify(&failure(e, Phase::Header, None, SOCK), &ctx).cause,
                Cause::InvalidResponse
            );
        }
    }

    #[test]
    fn unknown_with_a_reason() {
        let ctx = Context::default();
        for f in [
            failure(
                AttemptEvent::ConnectFailed,
                Phase::Connect,
                Some(99),
                "10.0.0.2:9000",
            ),
            failure(AttemptEvent::UpstreamStatus, Phase::Header, None, SOCK),
            failure(
                AttemptEvent::ResolveFailed,
                Phase::Resolve,
                None,
                "php.internal:9000",
            ),
            failure(AttemptEvent::NoLiveUpstreams, Phase::Connect, None, "php"),
        ] {
            let v = classify(&f, &ctx);
            assert_eq!(v.cause, Cause::Unknown, "{:?}", f.attempts[0].event);
            assert!(!v.reason.is_empty());
        }
    }

    #[test]
    fn no_live_upstreams_follows_the_earlier_failures() {
        let ctx = Context::default();
        let mut c = Classifier::default();
        let mut first = failure(
            AttemptEvent::ConnectFailed,
            Phase::Connect,
            Some(111),
            "127.0.0.1:9000",
        );
        first.upstream = Some("php".into());
        assert_eq!(
            c.classify(&first, &ctx, &History::default()).cause,
            Cause::FpmNotRunning
        );
        let mut later = failure(AttemptEvent::NoLiveUpstreams, Phase::Connect, None, "php");
        later.upstream = Some("php".into());
        let v = c.classify(&later, &ctx, &History::default());
        assert_eq!(v.cause, Cause::FpmNotRunning);
        assert!(v.confidence < 0.9);
    }
}
