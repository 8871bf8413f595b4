//! EAGAIN on connect: FPM's listen backlog is full (pm.max_children exhausted).

use super::{Confidence, Diagnosis};
use crate::context::ContextIndex;
use crate::failure::Failure;
use crate::model::{Cause, Peer};
use crate::parse::fpm::FpmEvent;
use crate::windows::{BACKLOG_WARNING_LOOKBACK_MS, LOG_SLACK_MS};

pub(super) fn backlog_full(f: &Failure, peer: Option<&Peer>, ctx: &ContextIndex) -> Diagnosis {
    let mut v = Diagnosis::new(
        Cause::MaxChildrenExhausted,
        Confidence::Strong,
        "connect() got EAGAIN: the socket's listen backlog is full because every FPM worker is busy",
    );
    v.facts.backlog_full = true;
    let pool = peer
        .and_then(|p| ctx.pool_for_peer(p))
        .map(|p| p.pool.name.as_str());
    if let Some(w) = ctx
        .max_children_warnings(
            f.time.minus_ms(BACKLOG_WARNING_LOOKBACK_MS),
            f.time.plus_ms(LOG_SLACK_MS),
            pool,
        )
        .last()
    {
        v = v.with(&w.evidence);
        v.confidence = Confidence::Certain;
        if let FpmEvent::MaxChildren { limit, .. } = w.event {
            v.facts.max_children = Some(limit);
        }
    }
    v
}
