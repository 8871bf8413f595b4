//! Deciding the cause of one failure from what NGINX saw and what the context says.
//!
//! The NGINX side narrows the field (errno and phase); FPM, kernel and systemd lines,
//! the configs and what the stream showed about each peer pick among what is left.
//! Confidence says how much of that evidence was there: the same verdict from the
//! NGINX log alone gets a lower number, and when nothing supports a cause the answer
//! is `unknown` with the reason.
//!
//! This file holds the verdict and the dispatch on what NGINX saw; each family of
//! causes has its own file, so a new cause or a new piece of evidence goes to one
//! place:
//! - [`connect`]: `connect() failed`, dispatched by errno to [`not_running`]
//!   (ECONNREFUSED), [`permission`] (EACCES), [`wrong_path`] (ENOENT) and
//!   [`backlog`] (EAGAIN);
//! - [`timeout`]: connect and read timeouts (saturated pool or slow script);
//! - [`worker_death`]: the connection dropped (OOM kill, crash, terminate timeout);
//! - [`invalid`]: FPM answered but broke the protocol;
//! - [`no_live`]: `no live upstreams`, which inherits the cause of earlier failures;
//! - [`unknown`]: what is none of the seven causes.

mod backlog;
mod confidence;
mod connect;
mod invalid;
mod no_live;
mod not_running;
mod permission;
#[cfg(test)]
mod testing;
mod timeout;
mod unknown;
mod worker_death;
mod wrong_path;

use std::collections::HashMap;

use crate::context::Context;
use crate::failure::{Attempt, Failure};
use crate::join::History;
use crate::model::{AttemptEvent, Cause, Evidence, Peer, Phase};
use crate::time::EpochMs;

pub use confidence::Confidence;
use worker_death::UsedDeaths;

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
    /// How much of the evidence was there (the JSON report's number is its value).
    pub confidence: Confidence,
    pub reason: String,
    /// Context lines supporting the verdict (the failure's own lines are separate).
    pub evidence: Vec<Evidence>,
    pub facts: Facts,
}

impl Verdict {
    fn new(cause: Cause, confidence: Confidence, reason: impl Into<String>) -> Verdict {
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
            E::ConnectFailed => connect::connect_failed(f, a, ctx, hist),
            E::TimedOut if a.phase == Some(Phase::Connect) => timeout::connect_timeout(f, ctx),
            E::TimedOut => timeout::read_timeout(f, ctx, hist),
            E::Reset | E::ClosedPrematurely | E::RecvFailed | E::SendFailed => {
                worker_death::worker_died(f, ctx, &mut self.used_deaths)
            }
            E::InvalidHeader | E::HeaderTooBig | E::ProtocolError | E::PrematurelySent => {
                invalid::invalid_response(f, a, ctx)
            }
            E::NoLiveUpstreams => no_live::no_live_upstreams(f, &self.recent_by_upstream),
            E::UpstreamStatus => unknown::upstream_status(f),
            E::ResolveFailed => unknown::resolve_failed(),
            E::SslFailed => unknown::tls_failed(),
            E::Error => unknown::unrecognised(a),
        }
    }

    /// An access-log 502/504 without error-log line or record: only context can tell.
    fn without_attempt(&mut self, f: &Failure, ctx: &Context) -> Verdict {
        let mut v = worker_death::worker_died(f, ctx, &mut self.used_deaths);
        // Joined by time only: one level less sure than the same evidence for a
        // failure NGINX's error log describes.
        if v.confidence <= Confidence::Ambiguous {
            v = unknown::access_only(f);
        } else {
            v.confidence = v.confidence.lower();
        }
        v
    }
}
