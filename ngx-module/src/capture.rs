//! What the error-log tap keeps for one request, bounded.

use gatelog_record::text::{lossless_text, truncate_at_char};
use gatelog_record::{Event, Level, Phase};

/// At most this many failure lines are kept per request: a request has few
/// attempts, and a bound keeps a pathological upstream from growing memory.
pub const MAX_EVENTS: usize = 32;
/// `fastcgi_stderr.text` is cut to this many bytes.
pub const MAX_STDERR: usize = 4096;

/// One failure line, attributed to the upstream attempt it was logged for.
#[derive(Debug, Clone, PartialEq)]
pub struct TapEvent {
    /// Index into `r->upstream_states` when the line was logged; `None` before the
    /// first attempt was pushed (resolver failures).
    pub attempt: Option<usize>,
    pub event: Event,
    pub phase: Phase,
    pub level: Level,
    pub errno: Option<i32>,
    pub error: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stderr {
    pub text: String,
    pub truncated: bool,
}

/// Everything captured for one (main) request.
#[derive(Debug, Default)]
pub struct RequestCapture {
    pub events: Vec<TapEvent>,
    /// Lines not kept because of [`MAX_EVENTS`].
    pub dropped: u32,
    pub stderr: Option<Stderr>,
    /// The record, cached with the status it was built for, so the log-phase handler
    /// and the `$gatelog_*` variables share one build.
    pub cached: Option<(u16, Option<Built>)>,
}

/// A built record and the values the variables expose.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    /// One JSON line, with its newline.
    pub json: Vec<u8>,
    /// errno and phase of the last failed attempt.
    pub last_errno: Option<i32>,
    pub last_phase: Option<Phase>,
    /// What the record adds to the `gatelog_metrics` counters.
    pub tally: crate::metrics::Tally,
}

impl RequestCapture {
    pub fn push(&mut self, event: TapEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        self.cached = None;
        self.events.push(event);
    }

    /// Keeps the last stderr text of the request, as NGINX logged it.
    pub fn set_stderr(&mut self, bytes: &[u8], truncated_by_nginx: bool) {
        let mut text = lossless_text(&bytes[..bytes.len().min(MAX_STDERR * 3)]);
        let cut = truncate_at_char(&mut text, MAX_STDERR);
        self.cached = None;
        self.stderr = Some(Stderr {
            text,
            truncated: cut || truncated_by_nginx,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(i: usize) -> TapEvent {
        TapEvent {
            attempt: Some(i),
            event: Event::ConnectFailed,
            phase: Phase::Connect,
            level: Level::Error,
            errno: Some(111),
            error: None,
            message: String::new(),
        }
    }

    #[test]
    fn events_are_bounded() {
        let mut c = RequestCapture::default();
        for i in 0..MAX_EVENTS + 5 {
            c.push(ev(i));
        }
        assert_eq!(c.events.len(), MAX_EVENTS);
        assert_eq!(c.dropped, 5);
    }

    #[test]
    fn stderr_is_bounded_and_flagged() {
        let mut c = RequestCapture::default();
        c.set_stderr(&vec![b'a'; 10_000], false);
        let s = c.stderr.as_ref().expect("stderr");
        assert_eq!(s.text.len(), MAX_STDERR);
        assert!(s.truncated);
        c.set_stderr(b"PHP message: x", false);
        assert_eq!(c.stderr.as_ref().map(|s| s.truncated), Some(false));
        c.set_stderr(b"cut by nginx", true);
        assert_eq!(c.stderr.as_ref().map(|s| s.truncated), Some(true));
    }
}
