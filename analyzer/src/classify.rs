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
            for key in [f.upstream.as_deref(), f.peer.as_ref().map(|p| p.0.as_str())]
                .into_iter()
                .flatten()
            {
                self.recent_by_upstream
                    .insert(key.to_string(), (f.time, v.cause));
            }
        }
        v
    }

    fn by_attempt(&self, f: &Failure, a: &Attempt, ctx: &Context, hist: &History) -> Verdict {
        use AttemptEvent as E;
        match a.event {
            E::ConnectFailed => connect_failed(f, a, ctx, hist),
            E::TimedOut if a.phase == Some(Phase::Connect) => connect_timeout(f, ctx),
            E::TimedOut => read_timeout(f, ctx, hist),
            E::Reset | E::ClosedPrematurely | E::RecvFailed | E::SendFailed => worker_died(f, ctx),
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
        let recent = [f.upstream.as_deref(), f.peer.as_ref().map(|p| p.0.as_str())]
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
    fn without_attempt(&self, f: &Failure, ctx: &Context) -> Verdict {
        let mut v = worker_died(f, ctx);
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
    let peer_name = peer.map_or("the socket".to_string(), |p| p.0.clone());
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
    for e in ctx.fpm.iter().filter(|e| {
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
    let masters: Vec<u32> = ctx
        .fpm
        .iter()
        .filter_map(|e| match e.event {
            FpmEvent::Running { pid } => Some(pid),
            _ => None,
        })
        .collect();
    for k in ctx.kernel_events_near(f.time.minus_ms(3_600_000), f.time.plus_ms(2_000)) {
        if k.event.pid().is_some_and(|p| masters.contains(&p)) {
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
            format!("pm = static logs no max_children warning, but {busy} requests timed out together on a pool of {n} workers: every worker was busy"),
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
    (busy >= n as usize && n > 0).then_some((n, busy))
}

fn signal_label(signal: Option<u32>, name: Option<&str>) -> String {
    match (signal, name) {
        (Some(n), Some(s)) => format!("signal {n} ({s})"),
        (Some(n), None) => format!("signal {n}"),
        _ => "a signal".to_string(),
    }
}

/// The connection dropped before a response: which worker died, and why.
fn worker_died(f: &Failure, ctx: &Context) -> Verdict {
    let t = f.time;
    let deaths = ctx.child_deaths(t.minus_ms(DEATH_WINDOW_MS), t.plus_ms(DEATH_WINDOW_MS));
    let nearest = deaths
        .iter()
        .min_by_key(|d| d.at.map_or(i64::MAX, |a| a.distance(t)));
    if let Some(death) = nearest {
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

/// Whether a lifecycle evidence line is the one within the death window (by line
/// lookup in the FPM events).
fn ev_time_close(ctx: &Context, ev: &Evidence, t: EpochMs) -> bool {
    ctx.fpm
        .iter()
        .map(|e| (e.at, &e.evidence))
        .chain(ctx.units.iter().map(|e| (e.at, &e.evidence)))
        .any(|(at, e)| e == ev && at.is_some_and(|a| a.distance(t) <= DEATH_WINDOW_MS + 2_000))
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
    ctx.fpm
        .iter()
        .rev()
        .filter(|e| {
            e.at.is_some_and(|a| a <= t.plus_ms(2_000) && a >= t.minus_ms(3_600_000))
        })
        .find(|e| {
            matches!(
                e.event,
                FpmEvent::BindFailed { .. }
                    | FpmEvent::UserError { .. }
                    | FpmEvent::AnotherInstance { .. }
            )
        })
        .map(|e| e.evidence.clone())
}
