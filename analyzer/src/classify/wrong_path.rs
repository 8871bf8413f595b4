//! ENOENT on connect: the socket file does not exist. Either FPM is down (cause 1)
//! or it is up and listens elsewhere (cause 3, a wrong path in the NGINX config);
//! this file weighs which, from FPM's state, its pool configs and the stream.

use super::not_running::{fpm_error_evidence, start_error_before};
use super::{Confidence, Verdict};
use crate::context::{Context, FpmState};
use crate::failure::Failure;
use crate::join::History;
use crate::model::{Cause, Peer};

/// ENOENT: FPM down (cause 1) or FPM up elsewhere (cause 3).
pub(super) fn no_such_socket(
    f: &Failure,
    peer: Option<&Peer>,
    ctx: &Context,
    hist: &History,
) -> Verdict {
    let t = f.time;
    let listens = ctx.listens();
    let served_here = peer.is_some_and(|p| listens.iter().any(|(l, _, _)| p.reaches(l)));
    let elsewhere = listens
        .iter()
        .find(|(l, _, _)| peer.is_none_or_not_reaching(l));
    let peer_name = peer.map_or("the socket".to_string(), |p| p.0.to_string());
    let mut v = match ctx.fpm_state_at(t) {
        FpmState::Down(ev) => {
            let mut v = Verdict::new(
                Cause::FpmNotRunning,
                Confidence::Certain,
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
                    Confidence::Certain,
                    format!("PHP-FPM was running and listens on {l}, but NGINX connects to {peer_name}"),
                )
                .with(lev)
                .with(&ev);
                v.facts.fpm_listen = Some(l.clone());
                v
            }
            (true, _) => Verdict::new(
                Cause::FpmNotRunning,
                Confidence::Ambiguous,
                format!("{peer_name} is FPM's configured listen address but the socket file was missing although the FPM log shows it running: FPM (or its socket) went away without a log line"),
            )
            .with(&ev),
            (false, None) => Verdict::new(
                Cause::WrongSocketPath,
                Confidence::Likely,
                format!("PHP-FPM was running (per its log) but {peer_name} does not exist: FPM listens somewhere else (give the pool config to see where)"),
            )
            .with(&ev),
        },
        FpmState::Unknown => {
            if let (false, Some((l, lev, _))) = (served_here, elsewhere) {
                let mut v = Verdict::new(
                    Cause::WrongSocketPath,
                    Confidence::Strong,
                    format!("FPM's pool config listens on {l}, but NGINX connects to {peer_name} (no FPM log to confirm FPM was up)"),
                )
                .with(lev);
                v.facts.fpm_listen = Some(l.clone());
                v
            } else if served_here {
                Verdict::new(
                    Cause::FpmNotRunning,
                    Confidence::Likely,
                    format!("{peer_name} is FPM's configured listen address and does not exist: FPM is not running (no FPM log to confirm)"),
                )
            } else if let Some(p) = peer.filter(|p| hist.alive.contains_key(*p)) {
                Verdict::new(
                    Cause::FpmNotRunning,
                    Confidence::Likely,
                    format!("NGINX reached FPM at {p} earlier and now the socket is gone: FPM stopped (from the NGINX log alone)"),
                )
            } else if let Some(other) = peer.and_then(|p| hist.other_peer_alive(p, t, 300_000)) {
                let mut v = Verdict::new(
                    Cause::WrongSocketPath,
                    Confidence::Likely,
                    format!("FPM answered at {other} around the same time, while {peer_name} does not exist (from the NGINX log alone)"),
                );
                v.facts.fpm_listen = Some(other.clone());
                v
            } else {
                Verdict::new(
                    Cause::FpmNotRunning,
                    Confidence::Ambiguous,
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

#[cfg(test)]
mod tests {
    use crate::classify::testing::*;

    #[test]
    fn enoent_with_fpm_stopped_is_fpm_not_running() {
        let mut ctx = Context::default();
        fpm(&mut ctx, -60_000, FpmEvent::Running { pid: 812 });
        fpm(&mut ctx, -10_000, FpmEvent::Terminating);
        fpm(&mut ctx, -10_000, FpmEvent::Exiting);
        let v = classify(
            &failure(AttemptEvent::ConnectFailed, Phase::Connect, Some(2), SOCK),
            &ctx,
        );
        assert_eq!(v.cause, Cause::FpmNotRunning);
        assert_eq!(v.confidence, Confidence::Certain);
        assert!(!v.evidence.is_empty());
    }

    #[test]
    fn enoent_never_started_is_fpm_not_running() {
        let mut ctx = Context::default();
        fpm(&mut ctx, 60_000, FpmEvent::Running { pid: 812 });
        let v = classify(
            &failure(AttemptEvent::ConnectFailed, Phase::Connect, Some(2), SOCK),
            &ctx,
        );
        assert_eq!(v.cause, Cause::FpmNotRunning);
    }

    #[test]
    fn enoent_with_fpm_up_elsewhere_is_wrong_socket_path() {
        let mut ctx = Context::default();
        fpm(&mut ctx, -60_000, FpmEvent::Running { pid: 812 });
        fpm(&mut ctx, -60_000, FpmEvent::Ready);
        pool(&mut ctx, "[www]\nlisten = /run/php/php8.2-fpm.sock\n");
        let f = failure(
            AttemptEvent::ConnectFailed,
            Phase::Connect,
            Some(2),
            "unix:/run/php/php8.1-fpm.sock",
        );
        let v = classify(&f, &ctx);
        assert_eq!(v.cause, Cause::WrongSocketPath);
        assert_eq!(v.facts.fpm_listen, Some(Peer(SOCK.into())));
        let fix = crate::fix::fix_for(&v, &f, &ctx, Default::default());
        assert!(
            fix.contains("fastcgi_pass unix:/run/php/php8.2-fpm.sock;"),
            "{fix}"
        );
    }
}
