//! `no live upstreams`: NGINX marked every server of the group failed after earlier
//! attempts, so the cause is that of those attempts.

use std::collections::HashMap;

use super::{Confidence, Verdict};
use crate::failure::Failure;
use crate::model::Cause;
use crate::time::EpochMs;

/// The cause of the latest failure on the same upstream (or peer) shortly before.
pub(super) fn no_live_upstreams(
    f: &Failure,
    recent_by_upstream: &HashMap<String, (EpochMs, Cause)>,
) -> Verdict {
    let recent = [f.upstream.as_deref(), f.peer.as_ref().map(|p| p.as_str())]
        .into_iter()
        .flatten()
        .find_map(|k| recent_by_upstream.get(k))
        .filter(|(t, _)| f.time.distance(*t) <= 120_000);
    match recent {
        Some((_, cause)) => Verdict::new(
            *cause,
            Confidence::Likely,
            format!(
                "no live upstreams: NGINX marked every server failed after earlier attempts, which were {cause}"
            ),
        ),
        None => Verdict::new(
            Cause::Unknown,
            Confidence::Weak,
            "no live upstreams: every server of the upstream group was marked failed (max_fails) by earlier attempts that are not in the input",
        ),
    }
}

#[cfg(test)]
mod tests {
    use crate::classify::testing::*;

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
        assert!(v.confidence < Confidence::Strong);
    }
}
