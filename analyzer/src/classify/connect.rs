//! `connect() failed`: the errno says which family of causes is left.

use super::{backlog, permission, timeout, wrong_path, Confidence, Diagnosis};
use crate::context::ContextIndex;
use crate::failure::{FailedAttempt, Failure};
use crate::join::History;
use crate::model::Cause;

pub(super) fn connect_failed(
    f: &Failure,
    a: &FailedAttempt,
    ctx: &ContextIndex,
    hist: &History,
) -> Diagnosis {
    let peer = a.peer.clone().or_else(|| f.peer.clone());
    let mut v = match a.errno {
        Some(2) => wrong_path::no_such_socket(f, peer.as_ref(), ctx, hist),
        Some(13) => permission::permission_denied(peer.as_ref(), ctx),
        Some(111) => wrong_path::refused(f, peer.as_ref(), ctx, hist),
        Some(11) => backlog::backlog_full(f, peer.as_ref(), ctx),
        Some(110) => timeout::connect_timeout(f, ctx),
        Some(n) => Diagnosis::new(
            Cause::Unknown,
            Confidence::Likely,
            format!("connect() failed with errno {n}: a network or address problem, not one of the seven causes"),
        ),
        None => Diagnosis::new(Cause::Unknown, Confidence::Weak, "connect() failed without an errno (line cut?)"),
    };
    v.facts.peer = peer;
    v
}

#[cfg(test)]
mod tests {
    use crate::classify::testing::*;

    #[test]
    fn refused_and_eacces_and_eagain() {
        let ctx = ContextIndex::default();
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

    // connect() failed (111: Connection refused) while connecting to upstream, ...
    // upstream: "fastcgi://127.0.0.1:9000"
    #[test]
    fn tcp_refused_alone_leaves_a_wrong_port_open() {
        let f = failure(
            AttemptEvent::ConnectFailed,
            Phase::Connect,
            Some(111),
            "127.0.0.1:9000",
        );
        let ctx = ContextIndex::default();
        let v = classify(&f, &ctx);
        assert_eq!(v.cause, Cause::FpmNotRunning);
        assert_eq!(v.confidence, Confidence::Likely);
        assert_eq!(v.facts.also_possible, Some(Cause::WrongSocketPath));
        let fix = fix_text(&v, &f, &ctx);
        assert!(
            fix.contains("ss -ltnp") && fix.contains("grep -rn '^listen'"),
            "{fix}"
        );
        // NGINX reached FPM there before: it stopped.
        let mut hist = History::default();
        hist.alive
            .insert(Peer("127.0.0.1:9000".into()), EpochMs(T - 60_000));
        let v = Classifier::default().classify(&f, &ctx, &hist);
        assert_eq!(v.confidence, Confidence::Strong);
        assert_eq!(v.facts.also_possible, None);
        // A stale unix socket was left by a server that ran there.
        let f = failure(AttemptEvent::ConnectFailed, Phase::Connect, Some(111), SOCK);
        let v = classify(&f, &ctx);
        assert_eq!(v.confidence, Confidence::Strong);
        assert_eq!(v.facts.also_possible, None);
    }

    // connect() to unix:/run/php/php8.2-fpm.sock failed (11: Resource temporarily
    // unavailable) while connecting to upstream
    #[test]
    fn eagain_fix_names_the_backlog_and_somaxconn() {
        let f = failure(AttemptEvent::ConnectFailed, Phase::Connect, Some(11), SOCK);
        let mut ctx = ContextIndex::default();
        let v = classify(&f, &ctx);
        assert!(v.facts.backlog_full);
        let fix = fix_text(&v, &f, &ctx);
        for want in [
            "pm.max_children",
            "listen.backlog",
            "net.core.somaxconn",
            "511 by default on Linux, unless set",
        ] {
            assert!(fix.contains(want), "{want} missing: {fix}");
        }
        // The pool's own value, with where it is set.
        pool(&mut ctx, "[www]\nlisten = /run/php/php8.2-fpm.sock\nlisten.backlog = 1024\npm.max_children = 5\n");
        let v = classify(&f, &ctx);
        let fix = fix_text(&v, &f, &ctx);
        assert!(fix.contains("now 1024 (www.conf:3)"), "{fix}");
    }
}
