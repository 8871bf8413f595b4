//! The connection dropped before a response (reset, closed prematurely, recv/send
//! failed): which worker died, and why. An OOM kill (cause 6), a crash or abort
//! (cause 7), FPM's request_terminate_timeout (cause 5) or FPM stopping (cause 1).

use std::collections::HashMap;

use super::{Confidence, Diagnosis};
use crate::context::{ContextIndex, FpmState, Timed};
use crate::failure::Failure;
use crate::model::{Cause, Evidence};
use crate::parse::fpm::FpmEvent;
use crate::parse::kernel::KernelEvent;
use crate::time::EpochMs;
use crate::windows::{
    DEATH_WINDOW_MS, KILL_MATCH_WINDOW_MS, LOG_SLACK_MS, PID_REUSE_MS, TERMINATE_LOOKBACK_MS,
    UNIT_OOM_WINDOW_MS, USED_DEATHS_MS,
};

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
            .is_some_and(|&t| at.map_or(true, |a| a.distance(t) <= PID_REUSE_MS))
    }

    fn insert(&mut self, pid: u32, at: EpochMs) {
        self.by_pid.insert(pid, at);
        self.inserts += 1;
        if self.inserts % 1024 == 0 {
            self.by_pid.retain(|_, t| t.distance(at) <= USED_DEATHS_MS);
        }
    }
}

fn signal_label(signal: Option<u32>, name: Option<&str>) -> String {
    match (signal, name) {
        (Some(n), Some(s)) => format!("signal {n} ({s})"),
        (Some(n), None) => format!("signal {n}"),
        _ => "a signal".to_string(),
    }
}

/// The connection dropped before a response: which worker died, and why.
pub(super) fn worker_died(f: &Failure, ctx: &ContextIndex, used: &mut UsedDeaths) -> Diagnosis {
    if let Some(death) = matching_death(f, ctx, used) {
        return from_child_death(f, death, ctx);
    }
    // No FPM line about a child: the kernel, systemd, FPM's lifecycle, PHP's stderr.
    death_from_other_logs(f, ctx).unwrap_or_else(|| no_death_seen(f, ctx))
}

/// The FPM child death that explains the failure: the nearest in time not yet
/// taken by an earlier failure (marked taken).
fn matching_death<'c>(
    f: &Failure,
    ctx: &'c ContextIndex,
    used: &mut UsedDeaths,
) -> Option<&'c Timed<FpmEvent>> {
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
    let (_, death) = best?;
    if let (FpmEvent::ChildExited { pid, .. }, Some(at)) = (&death.event, death.at) {
        used.insert(*pid, at);
    }
    Some(death)
}

/// A death no FPM child line names, seen by the kernel, systemd, FPM's lifecycle
/// or PHP's stderr.
fn death_from_other_logs(f: &Failure, ctx: &ContextIndex) -> Option<Diagnosis> {
    let t = f.time;
    let near = ctx.kernel_events_near(
        t.minus_ms(DEATH_WINDOW_MS + LOG_SLACK_MS),
        t.plus_ms(DEATH_WINDOW_MS),
    );
    if let Some(k) = near.iter().find(|k| {
        matches!(
            k.event,
            KernelEvent::OomKilled { .. } | KernelEvent::OomVictimChosen { .. }
        )
    }) {
        let mut v = Diagnosis::new(
            Cause::WorkerOomKilled,
            Confidence::Strong,
            "the kernel OOM killer killed a PHP-FPM process at that moment (no FPM log line to match its pid)",
        )
        .with(&k.evidence);
        set_oom_facts(&mut v, k);
        return Some(v);
    }
    if let Some(k) = near.first() {
        let mut v = Diagnosis::new(
            Cause::InvalidResponse,
            Confidence::Strong,
            "a PHP-FPM process crashed at that moment (kernel line; no FPM log line to match its pid)",
        )
        .with(&k.evidence);
        set_crash_facts(&mut v, k);
        return Some(v);
    }
    if let Some(u) = ctx.unit_oom_near(
        t.minus_ms(UNIT_OOM_WINDOW_MS),
        t.plus_ms(UNIT_OOM_WINDOW_MS),
    ) {
        return Some(
            Diagnosis::new(
                Cause::WorkerOomKilled,
                Confidence::Likely,
                "systemd reports an OOM kill in the PHP-FPM unit at that moment",
            )
            .with(&u.evidence),
        );
    }
    if let FpmState::Down(ev) = ctx.fpm_state_at(t.plus_ms(DEATH_WINDOW_MS)) {
        if ev_time_close(ctx, &ev, t) {
            return Some(
                Diagnosis::new(
                    Cause::FpmNotRunning,
                    Confidence::Likely,
                    "PHP-FPM was stopped while the request was running (its workers exit on shutdown)",
                )
                .with(&ev),
            );
        }
    }
    if let Some(text) = f
        .stderr
        .as_deref()
        .filter(|s| s.contains("Fatal error") || s.contains("Allowed memory"))
    {
        let mut v = Diagnosis::new(
            Cause::InvalidResponse,
            Confidence::Likely,
            "PHP reported a fatal error for this request and the worker closed the connection without a valid response",
        );
        v.facts.php_error = Some(text.to_string());
        return Some(v);
    }
    None
}

/// Nothing shows a death: what the logs given still allow to say.
fn no_death_seen(f: &Failure, ctx: &ContextIndex) -> Diagnosis {
    if ctx.has_fpm_log {
        Diagnosis::new(
            Cause::InvalidResponse,
            Confidence::Ambiguous,
            "FPM closed the connection without a response and logged no child death (e.g. listen.allowed_clients, exit() before output)",
        )
    } else if ctx.kernel_covers(f.time) {
        Diagnosis::new(
            Cause::InvalidResponse,
            Confidence::Ambiguous,
            "the worker closed or reset the connection before answering, and the kernel log shows no OOM kill or crash of PHP then: PHP ended the request itself (a fatal error, exit()) or FPM refused the client (listen.allowed_clients); no FPM log to tell",
        )
    } else {
        let mut v = Diagnosis::new(
            Cause::InvalidResponse,
            Confidence::Ambiguous,
            "the worker closed or reset the connection before answering: it crashed, or the kernel's OOM killer killed it; without the FPM and kernel logs the two cannot be told apart",
        );
        v.facts.also_possible = Some(Cause::WorkerOomKilled);
        v
    }
}

/// Whether a lifecycle evidence line is within the death window of `t`.
fn ev_time_close(ctx: &ContextIndex, ev: &Evidence, t: EpochMs) -> bool {
    ctx.lifecycle_near(ev, t, DEATH_WINDOW_MS + LOG_SLACK_MS)
}

fn from_child_death(f: &Failure, death: &Timed<FpmEvent>, ctx: &ContextIndex) -> Diagnosis {
    let FpmEvent::ChildExited {
        pid,
        signal,
        signal_name,
        code,
        ..
    } = &death.event
    else {
        return Diagnosis::new(
            Cause::Unknown,
            Confidence::Weak,
            "internal: not a child exit",
        );
    };
    let pid = *pid;
    let label = signal_label(*signal, signal_name.as_deref());
    let mut v = if let Some(timeout) =
        ctx.execution_timeout_of(pid, death.at.unwrap_or(f.time), TERMINATE_LOOKBACK_MS)
    {
        let mut v = Diagnosis::new(
            Cause::ReadTimeout,
            Confidence::Strong,
            format!("FPM's request_terminate_timeout killed worker {pid} ({label}): the request outlived the timeout, so NGINX saw the connection drop"),
        )
        .with(&timeout.evidence);
        if let FpmEvent::ExecutionTimedOut(r) = &timeout.event {
            v.facts.script = Some(r.script.clone());
        }
        v
    } else if *signal == Some(9) {
        sigkilled(f, pid, death, ctx)
    } else if *signal == Some(15)
        && matches!(
            ctx.fpm_state_at(f.time.plus_ms(DEATH_WINDOW_MS)),
            FpmState::Down(_)
        )
    {
        Diagnosis::new(
            Cause::FpmNotRunning,
            Confidence::Likely,
            format!("worker {pid} was terminated because PHP-FPM was stopping"),
        )
    } else {
        crashed(pid, &label, *code, death, ctx)
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

/// A worker killed with SIGKILL: the OOM killer when the kernel or systemd says
/// so, else another sender.
fn sigkilled(f: &Failure, pid: u32, death: &Timed<FpmEvent>, ctx: &ContextIndex) -> Diagnosis {
    if let Some(k) = ctx.oom_kill_of(pid, death.at, KILL_MATCH_WINDOW_MS) {
        let mut v = Diagnosis::new(
            Cause::WorkerOomKilled,
            Confidence::Certain,
            format!("the kernel OOM killer killed worker {pid} (SIGKILL; the same pid in the kernel log)"),
        )
        .with(&k.evidence);
        set_oom_facts(&mut v, k);
        v
    } else if let Some(u) = ctx.unit_oom_near(
        f.time.minus_ms(UNIT_OOM_WINDOW_MS),
        f.time.plus_ms(UNIT_OOM_WINDOW_MS),
    ) {
        Diagnosis::new(
            Cause::WorkerOomKilled,
            Confidence::Strong,
            format!("worker {pid} got SIGKILL and systemd reports an OOM kill in the unit"),
        )
        .with(&u.evidence)
    } else if ctx.kernel_covers(f.time) {
        Diagnosis::new(
            Cause::InvalidResponse,
            Confidence::Strong,
            format!("worker {pid} got SIGKILL but the kernel log has no OOM kill for it: something else sent it (a manual kill -9, FPM's master or systemd after a stop timed out, a supervisor)"),
        )
    } else {
        let mut v = Diagnosis::new(
            Cause::WorkerOomKilled,
            Confidence::Ambiguous,
            format!("worker {pid} got SIGKILL: the kernel's OOM killer, or another sender (a manual kill -9, FPM's master or systemd after a stop timed out); no kernel log was given to tell"),
        );
        v.facts.also_possible = Some(Cause::InvalidResponse);
        v
    }
}

/// A worker that died on another signal or exited with an error code: a crash or
/// abort, certain when the kernel logged it.
fn crashed(
    pid: u32,
    label: &str,
    code: Option<i32>,
    death: &Timed<FpmEvent>,
    ctx: &ContextIndex,
) -> Diagnosis {
    let what = match code {
        Some(c) => format!("exited with code {c}"),
        None => format!("died on {label}"),
    };
    let mut v = Diagnosis::new(
        Cause::InvalidResponse,
        Confidence::Strong,
        format!("worker {pid} {what} before answering (crash or abort)"),
    );
    if let Some(k) = ctx.crash_of(pid, death.at, KILL_MATCH_WINDOW_MS) {
        v = v.with(&k.evidence);
        v.confidence = Confidence::Certain;
        set_crash_facts(&mut v, k);
    }
    v
}

fn set_oom_facts(v: &mut Diagnosis, k: &Timed<KernelEvent>) {
    if let KernelEvent::OomKilled {
        pid, anon_rss_kb, ..
    } = &k.event
    {
        v.facts.dead_pid = Some(*pid);
        v.facts.victim_rss_kb = *anon_rss_kb;
    }
}

fn set_crash_facts(v: &mut Diagnosis, k: &Timed<KernelEvent>) {
    v.facts.crash_detail = match &k.event {
        KernelEvent::Segfault { comm, detail, .. } => Some(format!("{comm} segfault {detail}")),
        KernelEvent::Trap { comm, what, .. } => Some(format!("{comm} {what}")),
        KernelEvent::CoreDump { comm, .. } => Some(format!("{comm} dumped core")),
        _ => None,
    };
}

#[cfg(test)]
mod tests {
    use crate::classify::testing::*;

    #[test]
    fn one_death_explains_one_failure() {
        // An OOM kill and a segfault in the same second: the first failure takes
        // the first death, the second failure the other one.
        let mut ctx = ContextIndex::default();
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
    fn sigkill_with_kernel_oom_is_oom_and_without_is_invalid_response() {
        let f = failure(AttemptEvent::Reset, Phase::Header, Some(104), SOCK);
        let mut ctx = ContextIndex::default();
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
        let mut ctx = ContextIndex::default();
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
        let mut ctx = ContextIndex::default();
        fpm(&mut ctx, 0, exit(23114, Some(9), Some("SIGKILL"), None));
        let v = classify(&f, &ctx);
        assert_eq!(v.cause, Cause::WorkerOomKilled);
        assert!(v.confidence <= Confidence::Ambiguous);
    }

    #[test]
    fn crash_abort_and_exit_code_are_invalid_response() {
        let f = failure(AttemptEvent::ClosedPrematurely, Phase::Header, None, SOCK);
        for e in [
            exit(1, Some(11), Some("SIGSEGV"), None),
            exit(1, Some(6), Some("SIGABRT"), None),
            exit(1, None, None, Some(255)),
        ] {
            let mut ctx = ContextIndex::default();
            fpm(&mut ctx, 1_000, e);
            assert_eq!(classify(&f, &ctx).cause, Cause::InvalidResponse);
        }
        let mut ctx = ContextIndex::default();
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
        let mut ctx = ContextIndex::default();
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
        let mut ctx = ContextIndex::default();
        fpm(&mut ctx, 60_000, exit(1, Some(9), Some("SIGKILL"), None));
        let v = classify(&f, &ctx);
        assert_eq!(v.cause, Cause::InvalidResponse);
        assert!(v.confidence <= Confidence::Ambiguous);
    }

    #[test]
    fn fpm_request_terminate_timeout_is_read_timeout() {
        let f = failure(AttemptEvent::Reset, Phase::Header, Some(104), SOCK);
        let mut ctx = ContextIndex::default();
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
        let mut ctx = ContextIndex::default();
        ctx.units.push(Timed {
            at: Some(EpochMs(T)),
            boot_secs: None,
            evidence: ev(
                EvidenceSource::Journal,
                "php8.2-fpm.service: A process of this unit has been killed by the OOM killer.",
            ),
            event: UnitMessage {
                unit: Some("php8.2-fpm.service".into()),
                event: UnitEvent::OomKillInUnit,
            },
        });
        assert_eq!(classify(&f, &ctx).cause, Cause::WorkerOomKilled);
    }

    // recv() failed (104: Connection reset by peer) while reading response header
    // from upstream, NGINX log only.
    #[test]
    fn a_reset_alone_is_ambiguous_between_a_crash_and_an_oom_kill() {
        let f = failure(AttemptEvent::Reset, Phase::Header, Some(104), SOCK);
        let ctx = ContextIndex::default();
        let v = classify(&f, &ctx);
        assert!(v.confidence <= Confidence::Ambiguous);
        assert_eq!(v.facts.also_possible, Some(Cause::WorkerOomKilled));
        assert!(
            v.reason.contains("crashed") && v.reason.contains("OOM"),
            "{}",
            v.reason
        );
        let fix = fix_text(&v, &f, &ctx);
        for check in [
            "journalctl -k",
            "killed process",
            "exited on signal",
            "coredumpctl",
            "memory_limit",
        ] {
            assert!(fix.contains(check), "{check} missing: {fix}");
        }
        // A kernel log covering the time with no OOM kill rules the OOM killer out.
        let mut ctx = ContextIndex::default();
        kernel(
            &mut ctx,
            -60_000,
            KernelEvent::Segfault {
                pid: 1,
                comm: "mysqld".into(),
                detail: "at 0".into(),
            },
        );
        let v = classify(&f, &ctx);
        assert_eq!(v.facts.also_possible, None);
    }

    #[test]
    fn sigkill_fixes_say_who_sends_it() {
        let f = failure(AttemptEvent::Reset, Phase::Header, Some(104), SOCK);
        // No kernel log: an OOM kill or another sender.
        let mut ctx = ContextIndex::default();
        fpm(&mut ctx, 0, exit(23114, Some(9), Some("SIGKILL"), None));
        let v = classify(&f, &ctx);
        assert_eq!(v.cause, Cause::WorkerOomKilled);
        assert_eq!(v.facts.also_possible, Some(Cause::InvalidResponse));
        let fix = fix_text(&v, &f, &ctx);
        assert!(fix.contains("grep -i 'killed process 23114'"), "{fix}");
        assert!(
            fix.contains("process_control_timeout") && fix.contains("TimeoutStopSec"),
            "{fix}"
        );
        // A kernel log without an OOM kill for it: someone else sent SIGKILL.
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
        let v = classify(&f, &ctx);
        assert_eq!(v.cause, Cause::InvalidResponse);
        let fix = fix_text(&v, &f, &ctx);
        assert!(
            fix.contains("Worker 23114 was killed with signal 9 (SIGKILL)")
                && fix.contains("kill -9"),
            "{fix}"
        );
        assert!(!fix.contains("crashed"), "{fix}");
    }

    #[test]
    fn a_segfault_fix_is_about_extensions_and_core_dumps() {
        let f = failure(AttemptEvent::ClosedPrematurely, Phase::Header, None, SOCK);
        let mut ctx = ContextIndex::default();
        fpm(&mut ctx, 0, exit(4242, Some(11), Some("SIGSEGV"), None));
        let v = classify(&f, &ctx);
        assert_eq!(v.cause, Cause::InvalidResponse);
        let fix = fix_text(&v, &f, &ctx);
        for want in ["crashed", "opcache", "php -m", "rlimit_core", "coredumpctl"] {
            assert!(fix.contains(want), "{want} missing: {fix}");
        }
        assert!(!fix.contains("kills workers"), "{fix}");
    }
}
