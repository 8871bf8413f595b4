//! Timeouts: connecting (the accept queue was full) and reading the response header
//! (a saturated pool, cause 4, or a slow script, cause 5).

use super::other_backend::{read_timeout_in_force, timeout_text};
use super::{Confidence, Diagnosis};
use crate::context::{request_path, ContextIndex, PoolConf, Timed};
use crate::failure::Failure;
use crate::join::History;
use crate::model::Cause;
use crate::parse::fpm::FpmEvent;
use crate::time::EpochMs;
use crate::windows::{
    read_lookback_ms, CONNECT_TIMEOUT_WARNING_LOOKBACK_MS, DEFAULT_READ_TIMEOUT_MS, LOG_SLACK_MS,
    READ_TIMER_LOOKAHEAD_MS, READ_TIMER_MARGIN_MS, READ_WARNING_MARGIN_MS,
};

pub(super) fn connect_timeout(f: &Failure, ctx: &ContextIndex) -> Diagnosis {
    let pool = f
        .peer
        .as_ref()
        .and_then(|p| ctx.pool_for_peer(p))
        .map(|p| p.pool.name.as_str());
    let warnings = ctx.max_children_warnings(
        f.time.minus_ms(CONNECT_TIMEOUT_WARNING_LOOKBACK_MS),
        f.time.plus_ms(LOG_SLACK_MS),
        pool,
    );
    // On the loopback only a full accept queue drops the handshake; across a
    // network a host that is down or a firewall that drops packets does the same.
    let remote = f
        .peer
        .as_ref()
        .is_some_and(|p| !p.is_unix() && !p.is_loopback());
    let mut v = if warnings.is_empty() && remote {
        let mut v = Diagnosis::new(
            Cause::MaxChildrenExhausted,
            Confidence::Ambiguous,
            format!(
                "connecting to FPM at {} timed out: its accept queue was full (every worker busy), or the host did not answer (down, unreachable, or a firewall dropping packets); without the FPM log the two look the same",
                f.peer.as_ref().map_or(String::new(), |p| p.to_string())
            ),
        );
        v.facts.host_unreachable_possible = true;
        v
    } else if warnings.is_empty() {
        Diagnosis::new(
            Cause::MaxChildrenExhausted,
            Confidence::Likely,
            "connecting to FPM timed out: most often its accept queue was full (every worker busy, new connections not accepted); a host that does not answer (down, or a firewall dropping packets) looks the same",
        )
    } else {
        Diagnosis::new(
            Cause::MaxChildrenExhausted,
            Confidence::Strong,
            "connecting to FPM timed out: its accept queue was full (every worker busy, new connections not accepted)",
        )
    };
    v.facts.backlog_full = true;
    if let Some(w) = warnings.last() {
        v = v.with(&w.evidence);
        if let FpmEvent::MaxChildren { limit, .. } = w.event {
            v.facts.max_children = Some(limit);
        }
    }
    v
}

/// A 504 reading the header: a saturated pool (4) or a slow script (5).
/// The pool's max_children warnings while the request at `t` waited (up to the
/// read timeout `rt` before it), since FPM last (re)started.
fn max_children_before<'c>(
    t: EpochMs,
    rt: i64,
    pool_conf: Option<&PoolConf>,
    ctx: &'c ContextIndex,
) -> Vec<&'c Timed<FpmEvent>> {
    let warnings = ctx.max_children_warnings(
        t.minus_ms(read_lookback_ms(rt, READ_WARNING_MARGIN_MS)),
        t.plus_ms(LOG_SLACK_MS),
        pool_conf.map(|p| p.pool.name.as_str()),
    );
    // A (re)start of FPM after the warning gave the pool fresh workers.
    let restarted = ctx.last_start_at_or_before(t);
    warnings
        .into_iter()
        .filter(|w| restarted.map_or(true, |s| w.at.is_some_and(|a| a >= s)))
        .collect()
}

pub(super) fn read_timeout(f: &Failure, ctx: &ContextIndex, hist: &History) -> Diagnosis {
    let t = f.time;
    let known = read_timeout_in_force(f, ctx);
    let rt = known.as_ref().map_or(DEFAULT_READ_TIMEOUT_MS, |k| k.ms);
    let within = format!(
        "fastcgi_read_timeout ({})",
        timeout_text(known.as_ref(), DEFAULT_READ_TIMEOUT_MS)
    );
    let pool_conf = f.peer.as_ref().and_then(|p| ctx.pool_for_peer(p));
    let warnings = max_children_before(t, rt, pool_conf, ctx);
    let path = f.request.as_deref().map(request_path);
    let timer = ctx.first_request_timer(
        t.minus_ms(read_lookback_ms(rt, READ_TIMER_MARGIN_MS)),
        t.plus_ms(READ_TIMER_LOOKAHEAD_MS),
        path,
    );
    let mut v = if let Some(w) = warnings.last() {
        let mut v = Diagnosis::new(
            Cause::MaxChildrenExhausted,
            Confidence::Strong,
            "NGINX timed out waiting for a response while the pool had reached pm.max_children: the request waited for a free worker",
        )
        .with(&w.evidence);
        if let FpmEvent::MaxChildren { limit, .. } = w.event {
            v.facts.max_children = Some(limit);
        }
        v
    } else if let Some((n, busy)) = static_pool_saturated(f, pool_conf, hist, rt) {
        let mut v = Diagnosis::new(
            Cause::MaxChildrenExhausted,
            Confidence::Likely,
            format!("pm = static logs no max_children warning, but {busy} requests timed out together on a pool of {n} workers: every worker was busy and requests waited for one"),
        );
        if let Some(e) = pool_conf.and_then(|p| p.evidence("pm.max_children")) {
            v = v.with(&e);
        }
        v.facts.max_children = Some(n);
        v
    } else if let Some(timer) = timer {
        let mut v = Diagnosis::new(
            Cause::ReadTimeout,
            Confidence::Certain,
            format!("the script ran longer than {within} (FPM's request timers saw it), on a pool that was not saturated"),
        )
        .with(&timer.evidence);
        if let FpmEvent::SlowRequest(r) | FpmEvent::ExecutionTimedOut(r) = &timer.event {
            v.facts.script = Some(r.script.clone());
        }
        v
    } else if ctx.has_fpm_log {
        Diagnosis::new(
            Cause::ReadTimeout,
            Confidence::Strong,
            format!("the script did not answer within {within} and the pool logged no max_children warning: the script itself was slow"),
        )
    } else {
        // The same line comes from a slow script and from a request queued behind
        // busy workers; only FPM's log (or status page) tells them apart.
        let mut v = Diagnosis::new(
            Cause::ReadTimeout,
            Confidence::Ambiguous,
            format!("the script did not answer within {within}: a slow script, or a pool whose every worker was busy (pm.max_children) so the request waited; without the FPM log the two look the same"),
        );
        v.facts.also_possible = Some(Cause::MaxChildrenExhausted);
        v
    };
    v.facts.read_timeout = known;
    if let Some(timer) = timer {
        v = v.with(&timer.evidence);
    }
    v
}

/// Under pm = static, whether at least max_children requests timed out within one
/// read-timeout window on this peer (every worker busy).
fn static_pool_saturated(
    f: &Failure,
    pool: Option<&PoolConf>,
    hist: &History,
    rt: i64,
) -> Option<(u32, usize)> {
    let pool = pool?;
    if pool.pool.pm() != "static" {
        return None;
    }
    let n = pool.pool.max_children()?;
    let peer = f.peer.as_ref()?;
    let busy = hist.timeouts_between(
        peer,
        f.time.minus_ms(read_lookback_ms(rt, 0)),
        f.time.plus_ms(LOG_SLACK_MS),
    );
    // n slow requests on n workers are n slow scripts; only more timeouts than
    // workers mean some request waited for a worker.
    (busy > n as usize && n > 0).then_some((n, busy))
}

#[cfg(test)]
mod tests {
    use crate::classify::testing::*;

    #[test]
    fn timeout_on_saturated_pool_vs_idle_pool() {
        let f = failure(AttemptEvent::TimedOut, Phase::Header, Some(110), SOCK);
        let mut busy = ContextIndex::default();
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
        let mut earlier = ContextIndex::default();
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
        assert!(v.confidence >= Confidence::Strong);
        // NGINX log alone: read-timeout, less sure.
        let v = classify(&f, &ContextIndex::default());
        assert_eq!(v.cause, Cause::ReadTimeout);
        assert!(v.confidence < Confidence::Strong);
    }

    #[test]
    fn a_restart_after_the_warning_ends_the_saturation() {
        let f = failure(AttemptEvent::TimedOut, Phase::Header, Some(110), SOCK);
        let mut ctx = ContextIndex::default();
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

    // upstream timed out (110: Connection timed out) while reading response header
    // from upstream: "now N" only when an input says N.
    #[test]
    fn the_read_timeout_is_now_n_only_when_an_input_says_so() {
        let mut f = failure(AttemptEvent::TimedOut, Phase::Header, Some(110), SOCK);
        f.read_timeout_ms = None;
        let ctx = ContextIndex::default();
        let v = classify(&f, &ctx);
        assert!(
            v.reason.contains("60 s by default, unless set"),
            "{}",
            v.reason
        );
        let fix = fix_text(&v, &f, &ctx);
        assert!(
            fix.contains("(60 s by default, unless set)") && !fix.contains("now 60"),
            "{fix}"
        );
        // From the record.
        f.read_timeout_ms = Some(30_000);
        let v = classify(&f, &ctx);
        assert!(fix_text(&v, &f, &ctx).contains("now 30 s per the request's record"));
        // From the config, with its place; proxy_read_timeout is not FastCGI's.
        f.read_timeout_ms = None;
        let mut ctx = ContextIndex::default();
        nginx_conf(
            &mut ctx,
            "/etc/nginx/sites-enabled/yourdomain.conf",
            "server {\n    proxy_read_timeout 10s;\n    location ~ \\.php$ {\n        fastcgi_read_timeout 300s;\n        fastcgi_pass unix:/run/php/php8.2-fpm.sock;\n    }\n}\n",
        );
        let v = classify(&f, &ctx);
        assert!(
            v.reason
                .contains("now 300 s per `fastcgi_read_timeout 300s;` at /etc/nginx/sites-enabled/yourdomain.conf:4"),
            "{}",
            v.reason
        );
    }
}
