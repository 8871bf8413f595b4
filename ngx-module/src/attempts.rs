//! Joining `r->upstream_states` with the captured failure lines into attempts, and
//! deciding whether a request gets a record.

use gatelog_record::errno::errno_name;
use gatelog_record::record::Origin;
use gatelog_record::{Attempt, Event};

use crate::capture::TapEvent;

/// One entry of `r->upstream_states`, with NGINX's "unset" values turned into `None`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StateView {
    /// `None` for the separator entries NGINX pushes when a request uses an upstream
    /// a second time (error_page, X-Accel-Redirect); they are not attempts.
    pub peer: Option<String>,
    pub status: Option<u16>,
    pub connect_ms: Option<u64>,
    pub header_ms: Option<u64>,
    pub response_ms: Option<u64>,
}

/// The attempts of a request, in order: one per non-separator state, with the first
/// failure line logged for it. Failure lines logged before any state existed (the
/// resolver) become a leading attempt without a peer.
pub fn build_attempts(states: &[StateView], events: &[TapEvent]) -> Vec<Attempt> {
    let mut attempts = Vec::with_capacity(states.len() + 1);
    if let Some(e) = events.iter().find(|e| e.attempt.is_none()) {
        attempts.push(from_event(None, None, e));
    }
    for (i, state) in states.iter().enumerate() {
        if state.peer.is_none() {
            continue;
        }
        let cause = events.iter().find(|e| e.attempt == Some(i));
        let mut a = match cause {
            Some(e) => from_event(state.peer.clone(), state.status, e),
            None => Attempt {
                peer: state.peer.clone(),
                phase: None,
                errno: None,
                errno_name: None,
                error: None,
                // No line but a 5xx with a parsed header: the upstream sent it.
                event: match (state.status, state.header_ms) {
                    (Some(s), Some(_)) if s >= 500 => Some(Event::UpstreamStatus),
                    _ => None,
                },
                message: None,
                level: None,
                status: state.status,
                connect_ms: None,
                header_ms: None,
                response_ms: None,
            },
        };
        a.connect_ms = state.connect_ms;
        a.header_ms = state.header_ms;
        a.response_ms = state.response_ms;
        attempts.push(a);
    }
    attempts
}

fn from_event(peer: Option<String>, status: Option<u16>, e: &TapEvent) -> Attempt {
    Attempt {
        peer,
        phase: Some(e.phase),
        errno: e.errno,
        errno_name: e.errno.and_then(errno_name),
        error: e.error.clone(),
        event: Some(e.event),
        message: Some(e.message.clone()),
        level: Some(e.level),
        status,
        connect_ms: None,
        header_ms: None,
        response_ms: None,
    }
}

/// Whether an attempt failed in a way that matters before the client got a status.
pub fn attempt_failed(a: &Attempt) -> bool {
    match a.event {
        Some(Event::UpstreamStatus) => true,
        Some(_) => a.phase != Some(gatelog_record::Phase::Body),
        None => false,
    }
}

/// What kind of record, if any, a request with final `status` gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Failed(Origin),
    Recovered,
}

pub fn record_kind(
    status: u16,
    attempts: &[Attempt],
    record_recovered: bool,
) -> Option<RecordKind> {
    if attempts.is_empty() {
        return None;
    }
    if status == 502 || status == 504 {
        let last_by_nginx = attempts
            .last()
            .and_then(|a| a.event)
            .is_some_and(|e| e != Event::UpstreamStatus);
        return Some(RecordKind::Failed(if last_by_nginx {
            Origin::Nginx
        } else {
            Origin::Upstream
        }));
    }
    if record_recovered && attempts.iter().any(attempt_failed) {
        return Some(RecordKind::Recovered);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatelog_record::{Level, Phase};

    fn state(peer: &str, status: u16, connect: Option<u64>, header: Option<u64>) -> StateView {
        StateView {
            peer: Some(peer.into()),
            status: Some(status),
            connect_ms: connect,
            header_ms: header,
            response_ms: Some(1),
        }
    }

    fn refused(i: usize) -> TapEvent {
        TapEvent {
            attempt: Some(i),
            event: Event::ConnectFailed,
            phase: Phase::Connect,
            level: Level::Error,
            errno: Some(111),
            error: Some("Connection refused".into()),
            message: "connect() failed (111: Connection refused)".into(),
        }
    }

    #[test]
    fn two_dead_peers_give_two_attempts() {
        let states = [
            state("127.0.0.1:1", 502, None, None),
            state("127.0.0.1:2", 502, None, None),
        ];
        let a = build_attempts(&states, &[refused(0), refused(1)]);
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].peer.as_deref(), Some("127.0.0.1:2"));
        assert_eq!(a[1].errno_name.as_deref(), Some("ECONNREFUSED"));
        assert_eq!(a[0].phase, Some(Phase::Connect));
        assert_eq!(
            record_kind(502, &a, false),
            Some(RecordKind::Failed(Origin::Nginx))
        );
    }

    #[test]
    fn first_dead_second_answers_is_recovered_only_when_asked() {
        let states = [
            state("127.0.0.1:1", 502, None, None),
            state("127.0.0.1:2", 200, Some(0), Some(1)),
        ];
        let a = build_attempts(&states, &[refused(0)]);
        assert_eq!(a[1].event, None);
        assert_eq!(record_kind(200, &a, false), None);
        assert_eq!(record_kind(200, &a, true), Some(RecordKind::Recovered));
    }

    #[test]
    fn upstream_sent_502() {
        let states = [state("unix:/run/php.sock", 502, Some(0), Some(3))];
        let a = build_attempts(&states, &[]);
        assert_eq!(a[0].event, Some(Event::UpstreamStatus));
        assert_eq!(
            record_kind(502, &a, false),
            Some(RecordKind::Failed(Origin::Upstream))
        );
    }

    #[test]
    fn separators_are_skipped_but_keep_indices() {
        let states = [
            state("127.0.0.1:1", 502, None, None),
            StateView::default(),
            state("127.0.0.1:2", 504, Some(0), None),
        ];
        let mut timeout = refused(2);
        timeout.event = Event::TimedOut;
        timeout.errno = Some(110);
        let a = build_attempts(&states, &[refused(0), timeout]);
        assert_eq!(a.len(), 2);
        assert_eq!(a[1].errno, Some(110));
        assert_eq!(a[1].status, Some(504));
    }

    #[test]
    fn no_upstream_no_record() {
        assert_eq!(record_kind(502, &[], true), None);
    }

    #[test]
    fn body_phase_failure_is_not_recovered() {
        let states = [state("127.0.0.1:1", 200, Some(0), Some(1))];
        let mut ev = refused(0);
        ev.event = Event::ClosedPrematurely;
        ev.phase = Phase::Body;
        let a = build_attempts(&states, &[ev]);
        assert_eq!(record_kind(200, &a, true), None);
    }
}
