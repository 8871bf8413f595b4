//! `no live upstreams`: NGINX had marked every server of the upstream group failed
//! (max_fails within fail_timeout) after earlier failures, so this request never
//! reached a server. The cause is that of those earlier failures: the group's
//! servers come from the NGINX config's `upstream {}` block when given, otherwise
//! the failures just before on the same server block and protocol stand in for
//! them, less surely.

use std::collections::VecDeque;

use super::{Confidence, Diagnosis};
use crate::context::ContextIndex;
use crate::failure::Failure;
use crate::model::{Cause, Evidence, Peer, Protocol};
use crate::time::EpochMs;
use crate::windows::{LOG_SLACK_MS, NO_LIVE_LOOKBACK_MS};

/// Failures remembered for `no live upstreams` (bounded by count and by
/// NO_LIVE_LOOKBACK_MS).
const MAX_RECENT: usize = 256;

/// A classified failure, as `no live upstreams` may inherit it.
#[derive(Debug, Clone)]
pub(super) struct Recent {
    time: EpochMs,
    peers: Vec<Peer>,
    server: Option<String>,
    protocol: Protocol,
    /// NGINX's own line for it (shown as evidence of the inherited cause).
    line: Option<Evidence>,
    diagnosis: Diagnosis,
}

/// What the classifier remembers of recent failures.
#[derive(Default)]
pub(super) struct RecentFailures {
    items: VecDeque<Recent>,
}

impl RecentFailures {
    /// Remembers a classified failure (not a `no live upstreams` one: those only
    /// repeat what they inherited).
    pub(super) fn push(&mut self, f: &Failure, v: &Diagnosis) {
        while self.items.front().is_some_and(|r| {
            r.time < f.time.minus_ms(NO_LIVE_LOOKBACK_MS) || self.items.len() >= MAX_RECENT
        }) {
            self.items.pop_front();
        }
        let mut peers: Vec<Peer> = f.peers().cloned().collect();
        if let Some(p) = &f.peer {
            if !peers.contains(p) {
                peers.push(p.clone());
            }
        }
        self.items.push_back(Recent {
            time: f.time,
            peers,
            server: f.server.clone(),
            protocol: f.protocol,
            line: f.evidence.first().cloned(),
            diagnosis: v.clone(),
        });
    }
}

/// The servers of upstream `group` per the NGINX config, with where the first is
/// written.
fn group_servers(ctx: &ContextIndex, group: &str) -> Option<GroupServers> {
    let u = ctx.nginx_upstream(group)?;
    u.group?;
    let first = u.servers.first()?;
    let mut peers: Vec<Peer> = u.targets.iter().map(|t| t.peer.clone()).collect();
    if peers.is_empty() {
        // A group no pass uses: its servers as written.
        peers = u
            .servers
            .iter()
            .map(|d| Peer::from_nginx(d.arg()))
            .collect();
    }
    Some(GroupServers {
        servers: peers,
        place: first.place(),
    })
}

fn same_peer(a: &Peer, b: &Peer) -> bool {
    a == b || a.reaches(b) || b.reaches(a)
}

/// An upstream group's servers as the NGINX config says.
struct GroupServers {
    servers: Vec<Peer>,
    /// Where the group's first `server` line is (`file:line`).
    place: String,
}

pub(super) fn no_live_upstreams(
    f: &Failure,
    recent: &RecentFailures,
    ctx: &ContextIndex,
) -> Diagnosis {
    let group = f
        .decisive()
        .and_then(|a| a.peer.as_ref())
        .or(f.peer.as_ref())
        .map(|p| p.as_str().to_string())
        .or_else(|| f.upstream.clone())
        .unwrap_or_else(|| "the upstream group".to_string());
    let members = group_servers(ctx, &group);
    let candidates = earlier_failures(f, recent, members.as_ref());
    let membership = match &members {
        Some(m) => format!(
            "its servers ({}, per {})",
            m.servers.iter().map(Peer::as_str).collect::<Vec<_>>().join(", "),
            m.place
        ),
        None => "servers of the same site and protocol (no NGINX config says which servers the group has)".to_string(),
    };
    let mut v = match candidates.last() {
        Some(latest) => inherit_cause(&candidates, latest, &group, &membership, members.is_some()),
        None => nothing_failed_before(&group, &membership, members.is_some()),
    };
    v.facts.dead_group = Some(group);
    v
}

/// The recent failures of the group's servers (without the config: of the same
/// server block and protocol).
fn earlier_failures<'r>(
    f: &Failure,
    recent: &'r RecentFailures,
    members: Option<&GroupServers>,
) -> Vec<&'r Recent> {
    let window = recent.items.iter().filter(|r| {
        r.time <= f.time.plus_ms(LOG_SLACK_MS) && r.time >= f.time.minus_ms(NO_LIVE_LOOKBACK_MS)
    });
    match members {
        Some(m) => window
            .filter(|r| {
                r.peers
                    .iter()
                    .any(|p| m.servers.iter().any(|s| same_peer(p, s)))
            })
            .collect(),
        None => window
            .filter(|r| {
                let same_server = match (&r.server, &f.server) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                };
                let same_protocol = r.protocol == f.protocol
                    || r.protocol == Protocol::Unknown
                    || f.protocol == Protocol::Unknown;
                same_server && same_protocol
            })
            .collect(),
    }
}

/// No earlier failure in the input explains the group's servers being down.
fn nothing_failed_before(group: &str, membership: &str, config_known: bool) -> Diagnosis {
    let secs = NO_LIVE_LOOKBACK_MS / 1000;
    Diagnosis::new(
        Cause::Unknown,
        Confidence::Weak,
        if config_known {
            format!(
                "no live upstreams: NGINX had marked every server of `{group}` failed after earlier failures, but none of {membership} failed in the input in the {secs} s before (error_log above `error` level, or the failures are in another file)"
            )
        } else {
            format!(
                "no live upstreams: NGINX had marked every server of `{group}` failed after earlier failures that are not in the input, and no NGINX config says which servers `{group}` has: give the error log lines before this one, or the config"
            )
        },
    )
}

/// The cause most earlier failures had (ties go to the latest), with that
/// failure's facts and evidence.
fn inherit_cause(
    candidates: &[&Recent],
    latest: &Recent,
    group: &str,
    membership: &str,
    config_known: bool,
) -> Diagnosis {
    let secs = NO_LIVE_LOOKBACK_MS / 1000;
    let mut counts: Vec<(Cause, usize)> = Vec::new();
    for r in candidates {
        match counts.iter_mut().find(|(c, _)| *c == r.diagnosis.cause) {
            Some((_, n)) => *n += 1,
            None => counts.push((r.diagnosis.cause, 1)),
        }
    }
    let (cause, n) = counts
        .iter()
        .copied()
        .max_by_key(|(c, n)| (*n, *c == latest.diagnosis.cause))
        .unwrap_or((latest.diagnosis.cause, 1));
    let base = candidates
        .iter()
        .rev()
        .find(|r| r.diagnosis.cause == cause)
        .copied()
        .unwrap_or(latest);
    let mut confidence = if config_known {
        base.diagnosis.confidence.min(Confidence::Strong)
    } else {
        base.diagnosis.confidence.lower().min(Confidence::Likely)
    };
    let mut reason = format!(
        "no live upstreams: NGINX had marked every server of `{group}` failed after earlier failures; of those of {membership} in the {secs} s before, {n} of {} had the cause {cause}: {}",
        candidates.len(),
        base.diagnosis.reason
    );
    if counts.len() > 1 {
        confidence = confidence.min(Confidence::Ambiguous);
        let others: Vec<String> = counts
            .iter()
            .filter(|(c, _)| *c != cause)
            .map(|(c, k)| format!("{k} {c}"))
            .collect();
        reason.push_str(&format!(" (also {})", others.join(", ")));
    }
    let mut v = Diagnosis::new(cause, confidence, reason);
    v.facts = base.diagnosis.facts.clone();
    if let Some(line) = &base.line {
        v = v.with(line);
    }
    for e in &base.diagnosis.evidence {
        v = v.with(e);
    }
    v
}

#[cfg(test)]
mod tests {
    use crate::classify::testing::*;

    /// `no live upstreams` as NGINX 1.22 logs it for a group of FastCGI servers.
    fn no_live(offset_ms: i64) -> Failure {
        let mut f = failure(
            AttemptEvent::NoLiveUpstreams,
            Phase::Connect,
            None,
            "php_pool",
        );
        f.time = EpochMs(T + offset_ms);
        f.upstream = Some("php_pool".into());
        f.server = Some("x".into());
        f.attempts[0].message = "no live upstreams".into();
        f
    }

    fn refused(offset_ms: i64, peer: &str) -> Failure {
        let mut f = failure(AttemptEvent::ConnectFailed, Phase::Connect, Some(111), peer);
        f.time = EpochMs(T + offset_ms);
        f.upstream = Some(peer.into());
        f.server = Some("x".into());
        f
    }

    fn conf(ctx: &mut ContextIndex) {
        nginx_conf(
            ctx,
            "/etc/nginx/conf.d/x.conf",
            "upstream php_pool {\n    server unix:/run/a.sock;\n    server unix:/run/b.sock;\n}\nserver {\n    server_name x;\n    location ~ \\.php$ {\n        fastcgi_pass php_pool;\n    }\n}\n",
        );
    }

    #[test]
    fn the_groups_earlier_failures_give_the_cause() {
        // Both pools stopped: the earlier connect() failures carry the peers.
        let mut ctx = ContextIndex::default();
        conf(&mut ctx);
        let mut c = Classifier::default();
        let h = History::default();
        for (t, p) in [(-4_000, "unix:/run/a.sock"), (-3_000, "unix:/run/b.sock")] {
            assert_eq!(
                c.classify(&refused(t, p), &ctx, &h).cause,
                Cause::FpmNotRunning
            );
        }
        let v = c.classify(&no_live(0), &ctx, &h);
        assert_eq!(v.cause, Cause::FpmNotRunning);
        assert!(v.reason.contains("php_pool"), "{}", v.reason);
        assert!(
            v.reason.contains("/etc/nginx/conf.d/x.conf:2"),
            "{}",
            v.reason
        );
        assert_eq!(v.facts.dead_group.as_deref(), Some("php_pool"));
        // The fix is for the servers that failed, not for a socket named php_pool.
        assert_eq!(v.facts.peer, Some(Peer("unix:/run/b.sock".into())));
        assert!(!v.evidence.is_empty());
    }

    #[test]
    fn without_config_the_failures_just_before_stand_in_less_surely() {
        let ctx = ContextIndex::default();
        let mut c = Classifier::default();
        let h = History::default();
        let first = c.classify(&refused(-2_000, "unix:/run/a.sock"), &ctx, &h);
        let v = c.classify(&no_live(0), &ctx, &h);
        assert_eq!(v.cause, first.cause);
        assert!(v.confidence < first.confidence, "{v:?}");
        assert!(v.reason.contains("no NGINX config"), "{}", v.reason);
        // Failures of another site do not count.
        let mut c = Classifier::default();
        let mut other = refused(-2_000, "unix:/run/a.sock");
        other.server = Some("other.example".into());
        c.classify(&other, &ctx, &h);
        assert_eq!(c.classify(&no_live(0), &ctx, &h).cause, Cause::Unknown);
    }

    #[test]
    fn failures_long_before_or_of_other_servers_do_not_count() {
        let mut ctx = ContextIndex::default();
        conf(&mut ctx);
        let mut c = Classifier::default();
        let h = History::default();
        c.classify(&refused(-600_000, "unix:/run/a.sock"), &ctx, &h);
        c.classify(&refused(-1_000, "unix:/run/other.sock"), &ctx, &h);
        let v = c.classify(&no_live(0), &ctx, &h);
        assert_eq!(v.cause, Cause::Unknown);
        assert_eq!(v.confidence, Confidence::Weak);
        assert!(
            v.reason.contains("unix:/run/a.sock, unix:/run/b.sock"),
            "{}",
            v.reason
        );
    }

    #[test]
    fn nothing_before_and_no_config_is_unknown_with_an_honest_reason() {
        let v = Classifier::default().classify(
            &no_live(0),
            &ContextIndex::default(),
            &History::default(),
        );
        assert_eq!(v.cause, Cause::Unknown);
        assert!(v.confidence <= Confidence::Weak);
        assert!(v.reason.contains("not in the input"), "{}", v.reason);
    }

    #[test]
    fn mixed_causes_are_ambiguous() {
        let mut ctx = ContextIndex::default();
        conf(&mut ctx);
        let mut c = Classifier::default();
        let h = History::default();
        c.classify(&refused(-3_000, "unix:/run/a.sock"), &ctx, &h);
        let eacces = {
            let mut f = refused(-2_000, "unix:/run/b.sock");
            f.attempts[0].errno = Some(13);
            f
        };
        assert_eq!(
            c.classify(&eacces, &ctx, &h).cause,
            Cause::SocketPermissionDenied
        );
        let v = c.classify(&no_live(0), &ctx, &h);
        assert_eq!(v.confidence, Confidence::Ambiguous);
        assert!(v.reason.contains("also 1"), "{}", v.reason);
    }
}
