//! Deciding the cause of one failure from what NGINX saw and what the context says.
//!
//! The NGINX side narrows the field (errno and phase); FPM, kernel and systemd lines,
//! the configs and what the stream showed about each peer pick among what is left.
//! Confidence says how much of that evidence was there: the same diagnosis from the
//! NGINX log alone gets a lower number, and when nothing supports a cause the answer
//! is `unknown` with the reason.
//!
//! This file holds the diagnosis and the dispatch on what NGINX saw; each family of
//! causes has its own file, so a new cause or a new piece of evidence goes to one
//! place:
//! - [`connect`]: `connect() failed`, dispatched by errno to [`not_running`]
//!   (ECONNREFUSED), [`permission`] (EACCES), [`wrong_path`] (ENOENT) and
//!   [`backlog`] (EAGAIN);
//! - [`timeout`]: connect and read timeouts (saturated pool or slow script);
//! - [`worker_death`]: the connection dropped (OOM kill, crash, terminate timeout);
//! - [`invalid`]: FPM answered but broke the protocol;
//! - [`no_live`]: `no live upstreams`, which inherits the cause of earlier failures;
//! - [`unknown`]: what is none of the seven causes;
//! - [`backend`] decides first whether the upstream is PHP-FPM at all; the seven
//!   causes are PHP-FPM's, and [`other_backend`] judges any other backend.

mod backend;
mod backlog;
mod confidence;
mod connect;
mod invalid;
mod no_live;
mod not_running;
mod other_backend;
mod permission;
#[cfg(test)]
pub(crate) mod testing;
mod timeout;
mod unknown;
mod worker_death;
mod wrong_path;

use crate::context::ContextIndex;
use crate::failure::{FailedAttempt, Failure};
use crate::join::History;
use crate::model::{AttemptEvent, Cause, Evidence, Peer, Phase, Protocol, TimeoutInForce};

use backend::Backend;
pub use confidence::Confidence;
use no_live::RecentFailures;
pub use other_backend::{directive_prefix, timeout_text, OtherBackend, Trouble};
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
    /// The read timeout in force and where an input says so (`the request's
    /// record`, `file:line`); `None` when no input says (the default applies).
    pub read_timeout: Option<TimeoutInForce>,
    pub php_error: Option<String>,
    pub unix_refused: bool,
    /// EACCES on a TCP connect: a security policy (SELinux, firewall), not socket
    /// file permissions.
    pub policy_denied: bool,
    /// A connect timeout to another host: the host may be down or filtered.
    pub host_unreachable_possible: bool,
    /// `upstream sent unsupported FastCGI protocol version: N` with N a printable
    /// character: another protocol (HTTP's `H`) answered on the FastCGI address.
    pub foreign_reply: Option<char>,
    /// A second cause that fits the evidence as well as the diagnosis's: the diagnosis
    /// is ambiguous and the fix covers both, with the check that tells them apart.
    pub also_possible: Option<Cause>,
    /// connect() found FPM's listen backlog (accept queue) full.
    pub backlog_full: bool,
    /// A backend that is not PHP-FPM: what NGINX saw of it.
    pub other_backend: Option<OtherBackend>,
    /// `no live upstreams`: the group whose servers NGINX had all marked failed.
    pub dead_group: Option<String>,
    /// The upstream's protocol as far as the inputs say (NGINX's line, the record or
    /// the config's `*_pass`); the report's `upstream_protocol`. Set for every
    /// classified failure.
    pub protocol: Option<Protocol>,
}

#[derive(Debug, Clone)]
pub struct Diagnosis {
    pub cause: Cause,
    /// How much of the evidence was there (the JSON report's number is its value).
    pub confidence: Confidence,
    pub reason: String,
    /// Context lines supporting the diagnosis (the failure's own lines are separate).
    pub evidence: Vec<Evidence>,
    pub facts: Facts,
}

impl Diagnosis {
    fn new(cause: Cause, confidence: Confidence, reason: impl Into<String>) -> Diagnosis {
        Diagnosis {
            cause,
            confidence,
            reason: reason.into(),
            evidence: Vec::new(),
            facts: Facts::default(),
        }
    }

    fn with(mut self, e: &Evidence) -> Diagnosis {
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
    /// Recent failures, whose cause a `no live upstreams` inherits.
    recent: RecentFailures,
    /// Worker deaths already matched to a failure. A worker serves one request at a
    /// time, so one death explains one failure: the next failure takes another.
    used_deaths: UsedDeaths,
}

impl Classifier {
    pub fn classify(&mut self, f: &Failure, ctx: &ContextIndex, hist: &History) -> Diagnosis {
        let no_live = f
            .decisive()
            .is_some_and(|a| a.event == AttemptEvent::NoLiveUpstreams);
        let mut v = match (backend::of(f, ctx), f.decisive()) {
            // Whatever the backend: the cause is that of the group's earlier failures.
            (_, Some(_)) if no_live => no_live::no_live_upstreams(f, &self.recent, ctx),
            (Backend::Other(protocol), Some(a)) => other_backend::diagnose(f, a, protocol, ctx),
            (Backend::Other(_), None) => unknown::access_only(f),
            (Backend::Fpm(why), attempt) => {
                let mut v = match attempt {
                    Some(a) => self.by_attempt(f, a, ctx, hist),
                    None => self.without_attempt(f, ctx),
                };
                // Say so when only the presence of an FPM input made it PHP-FPM.
                if let Some(why) = why.filter(|w| !backend::is_specific(w)) {
                    v.reason.push_str(&format!(
                        " (NGINX's line does not name the upstream's protocol; taken as PHP-FPM because {why})"
                    ));
                }
                v
            }
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
        v.facts.protocol = Some(backend::protocol(f, ctx));
        if !no_live && f.decisive().is_some() {
            self.recent.push(f, &v);
        }
        v
    }

    fn by_attempt(
        &mut self,
        f: &Failure,
        a: &FailedAttempt,
        ctx: &ContextIndex,
        hist: &History,
    ) -> Diagnosis {
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
            E::NoLiveUpstreams => no_live::no_live_upstreams(f, &self.recent, ctx),
            E::UpstreamStatus => unknown::upstream_status(f),
            E::ResolveFailed => unknown::resolve_failed(),
            E::SslFailed => unknown::tls_failed(),
            E::Error => unknown::unrecognised(a),
        }
    }

    /// An access-log 502/504 without error-log line or record: only context can tell.
    fn without_attempt(&mut self, f: &Failure, ctx: &ContextIndex) -> Diagnosis {
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
