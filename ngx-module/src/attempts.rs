//! Joining `r->upstream_states` with the captured failure lines into attempts, and
//! deciding whether a request gets a record.

use gatelog_record::line::AttemptLine;
use gatelog_record::record::Origin;
use gatelog_record::Event;

use crate::capture::TapEvent;

/// One entry of `r->upstream_states`, with NGINX's "unset" values turned into `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StateView<'a> {
    /// `None` for the separator entries NGINX pushes when a request uses an upstream
    /// a second time (error_page, X-Accel-Redirect); they are not attempts.
    pub peer: Option<&'a [u8]>,
    pub status: Option<u16>,
    pub connect_ms: Option<u64>,
    pub header_ms: Option<u64>,
    pub response_ms: Option<u64>,
}

/// The attempts of a request, in order: one per non-separator state, with the first
/// failure line logged for it. Failure lines logged before any state existed (the
/// resolver) become a leading attempt without a peer.
pub fn build_attempts<'a>(
    states: &[StateView<'a>],
    events: &[TapEvent<'a>],
) -> Vec<AttemptLine<'a>> {
    attempts(states, events).collect()
}

/// [`build_attempts`] one at a time (the module collects them into request-pool
/// memory; at most `states.len() + 1`).
pub fn attempts<'s, 'a>(
    states: &'s [StateView<'a>],
    events: &'s [TapEvent<'a>],
) -> impl Iterator<Item = AttemptLine<'a>> + 's {
    let before_any = events
        .iter()
        .find(|e| e.attempt.is_none())
        .map(|e| from_event(None, None, e));
    let per_state = states.iter().enumerate().filter_map(|(i, state)| {
        state.peer?;
        let cause = events.iter().find(|e| e.attempt == Some(i));
        let mut a = match cause {
            Some(e) => from_event(state.peer, state.status, e),
            None => AttemptLine {
                peer: state.peer,
                // No line but a 5xx with a parsed header: the upstream sent it.
                event: match (state.status, state.header_ms) {
                    (Some(s), Some(_)) if s >= 500 => Some(Event::UpstreamStatus),
                    _ => None,
                },
                status: state.status,
                ..AttemptLine::default()
            },
        };
        a.connect_ms = state.connect_ms;
        a.header_ms = state.header_ms;
        a.response_ms = state.response_ms;
        Some(a)
    });
    before_any.into_iter().chain(per_state)
}

fn from_event<'a>(
    peer: Option<&'a [u8]>,
    status: Option<u16>,
    e: &TapEvent<'a>,
) -> AttemptLine<'a> {
    AttemptLine {
        peer,
        phase: Some(e.phase),
        errno: e.errno,
        error: e.error,
        event: Some(e.event),
        message: Some(e.message),
        level: Some(e.level),
        status,
        connect_ms: None,
        header_ms: None,
        response_ms: None,
    }
}

/// Whether an attempt failed in a way that matters before the client got a status.
pub fn attempt_failed(a: &AttemptLine) -> bool {
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
    attempts: &[AttemptLine],
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

    fn state(peer: &str, status: u16, connect: Option<u64>, header: Option<u64>) -> StateView<'_> {
        StateView {
            peer: Some(peer.as_bytes()),
            status: Some(status),
            connect_ms: connect,
            header_ms: header,
            response_ms: Some(1),
        }
    }

    fn refused(i: usize) -> TapEvent<'static> {
        TapEvent {
            attempt: Some(i),
            event: Event::ConnectFailed,
            phase: Phase::Connect,
            level: Level::Error,
            errno: Some(111),
            error: Some(b"Connection refused"),
            message: b"connect() failed (111: Connection refused)",
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
        assert_eq!(a[1].peer, Some(&b"127.0.0.1:2"[..]));
        assert_eq!(
            a[1].to_attempt().errno_name.as_deref(),
            Some("ECONNREFUSED")
        );
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
