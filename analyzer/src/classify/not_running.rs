//! ECONNREFUSED on connect: nothing listens (FPM not running, or a stale socket
//! left by a killed master), and FPM's start-up errors that explain why.

use super::{Confidence, Diagnosis};
use crate::context::{ContextIndex, FpmState};
use crate::failure::Failure;
use crate::join::History;
use crate::model::{Cause, Evidence, Peer};
use crate::parse::fpm::FpmEvent;
use crate::time::EpochMs;
use crate::windows::{FPM_ERROR_LOOKBACK_MS, LOG_SLACK_MS, MASTER_KILL_LOOKBACK_MS};

pub(super) fn refused(
    f: &Failure,
    peer: Option<&Peer>,
    ctx: &ContextIndex,
    hist: &History,
) -> Diagnosis {
    let unix = peer.is_some_and(Peer::is_unix);
    let what = if unix {
        "the socket file exists but nothing listens on it (stale socket left after FPM was killed or crashed)"
    } else {
        "nothing listens on that address and port"
    };
    let mut v = match ctx.fpm_state_at(f.time) {
        FpmState::Down(ev) => Diagnosis::new(Cause::FpmNotRunning, Confidence::Certain, format!("connection refused: {what}; FPM was stopped")).with(&ev),
        FpmState::Up(ev) => Diagnosis::new(
            Cause::FpmNotRunning,
            Confidence::Likely,
            format!("connection refused: {what}; the FPM log last shows it running, so the master died without a log line (killed?)"),
        )
        .with(&ev),
        // A socket file is left only by a server that ran there: FPM stopped.
        FpmState::Unknown if unix => Diagnosis::new(Cause::FpmNotRunning, Confidence::Strong, format!("connection refused: {what}")),
        FpmState::Unknown => match peer.filter(|p| hist.alive.contains_key(*p)) {
            Some(p) => Diagnosis::new(
                Cause::FpmNotRunning,
                Confidence::Strong,
                format!("connection refused: {what}, where NGINX reached FPM at {p} earlier: FPM stopped (from the NGINX log alone)"),
            ),
            None => {
                let mut v = Diagnosis::new(
                    Cause::FpmNotRunning,
                    Confidence::Likely,
                    format!("connection refused: {what}: PHP-FPM is not running, or it listens on another address; no FPM log or pool config to tell"),
                );
                v.facts.also_possible = Some(Cause::WrongSocketPath);
                v
            }
        },
    };
    v.facts.unix_refused = unix;
    v.facts.start_error = start_error_before(ctx, f.time);
    if let Some(e) = fpm_error_evidence(ctx, f.time) {
        v = v.with(&e);
    }
    // A master killed by the kernel explains the stale socket: FPM's own log says
    // nothing then. Match the master pid from `fpm is running, pid N`.
    for k in ctx.kernel_events_of_near(
        &ctx.masters,
        f.time.minus_ms(MASTER_KILL_LOOKBACK_MS),
        f.time.plus_ms(LOG_SLACK_MS),
    ) {
        v = v.with(&k.evidence);
    }
    v
}

/// The last FPM start-up error before `t` (bind, user, init), as text for the fix.
pub(super) fn start_error_before(ctx: &ContextIndex, t: EpochMs) -> Option<String> {
    fpm_error_evidence(ctx, t).map(|e| e.text)
}

pub(super) fn fpm_error_evidence(ctx: &ContextIndex, t: EpochMs) -> Option<Evidence> {
    ctx.fpm_errors()
        .rev()
        .filter(|e| {
            e.at.is_some_and(|a| {
                a <= t.plus_ms(LOG_SLACK_MS) && a >= t.minus_ms(FPM_ERROR_LOOKBACK_MS)
            })
        })
        .find(|e| !matches!(e.event, FpmEvent::ChownFailed { .. }))
        .map(|e| e.evidence.clone())
}
