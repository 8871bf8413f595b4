//! `connect() failed`: the errno says which family of causes is left.

use super::{backlog, not_running, permission, timeout, wrong_path, Confidence, Verdict};
use crate::context::Context;
use crate::failure::{Attempt, Failure};
use crate::join::History;
use crate::model::Cause;

pub(super) fn connect_failed(f: &Failure, a: &Attempt, ctx: &Context, hist: &History) -> Verdict {
    let peer = a.peer.clone().or_else(|| f.peer.clone());
    let mut v = match a.errno {
        Some(2) => wrong_path::no_such_socket(f, peer.as_ref(), ctx, hist),
        Some(13) => permission::permission_denied(peer.as_ref(), ctx),
        Some(111) => not_running::refused(f, peer.as_ref(), ctx),
        Some(11) => backlog::backlog_full(f, peer.as_ref(), ctx),
        Some(110) => timeout::connect_timeout(f, ctx),
        Some(n) => Verdict::new(
            Cause::Unknown,
            Confidence::Likely,
            format!("connect() failed with errno {n}: a network or address problem, not one of the seven causes"),
        ),
        None => Verdict::new(Cause::Unknown, Confidence::Weak, "connect() failed without an errno (line cut?)"),
    };
    v.facts.peer = peer;
    v
}

#[cfg(test)]
mod tests {
    use crate::classify::testing::*;

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
}
