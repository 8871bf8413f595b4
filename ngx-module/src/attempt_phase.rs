//! Which phase an attempt failed in, from the upstream connection's state.
//!
//! `log->action` is not used: it is shared by all requests of a connection, and a
//! sibling subrequest can overwrite it before the line is printed.

use gatelog_record::{Event, Phase};

/// The upstream state read in the error-log tap when the failure line is logged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnState {
    /// `u->peer.connection` is set (a synchronous connect failure has closed it).
    pub connected: bool,
    pub read_timedout: bool,
    pub write_timedout: bool,
    /// `u->state->connect_time` is set: `send_request` was reached.
    pub connect_time_set: bool,
    pub request_sent: bool,
    /// `u->header_sent`: the response header went to the client; failures are body-phase.
    pub header_sent: bool,
    /// The upstream connection is TLS (`pc->ssl`).
    pub ssl: bool,
}

/// `send_side` is true for writev()/send()/sendfile() failures.
pub fn derive_phase(event: Event, send_side: bool, s: ConnState) -> Phase {
    match event {
        Event::ConnectFailed | Event::NoLiveUpstreams => Phase::Connect,
        Event::ResolveFailed => Phase::Resolve,
        Event::SslFailed => Phase::Tls,
        Event::TimedOut => {
            if s.header_sent {
                Phase::Body
            } else if s.read_timedout {
                Phase::Header
            } else if s.write_timedout && !s.connect_time_set {
                if s.ssl {
                    Phase::Tls
                } else {
                    Phase::Connect
                }
            } else if s.write_timedout {
                Phase::Send
            } else if s.request_sent {
                Phase::Header
            } else {
                Phase::Connect
            }
        }
        _ if send_side => Phase::Send,
        _ if s.header_sent => Phase::Body,
        _ if !s.request_sent && !s.connect_time_set => Phase::Connect,
        _ => Phase::Header,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_by_event_flags() {
        let connect = ConnState {
            connected: true,
            write_timedout: true,
            ..Default::default()
        };
        assert_eq!(
            derive_phase(Event::TimedOut, false, connect),
            Phase::Connect
        );
        let tls = ConnState {
            ssl: true,
            ..connect
        };
        assert_eq!(derive_phase(Event::TimedOut, false, tls), Phase::Tls);
        let send = ConnState {
            connect_time_set: true,
            request_sent: true,
            ..connect
        };
        assert_eq!(derive_phase(Event::TimedOut, false, send), Phase::Send);
        let read = ConnState {
            connected: true,
            read_timedout: true,
            connect_time_set: true,
            request_sent: true,
            ..Default::default()
        };
        assert_eq!(derive_phase(Event::TimedOut, false, read), Phase::Header);
        let body = ConnState {
            header_sent: true,
            ..read
        };
        assert_eq!(derive_phase(Event::TimedOut, false, body), Phase::Body);
    }

    #[test]
    fn errors_by_template_and_progress() {
        let none = ConnState::default();
        assert_eq!(
            derive_phase(Event::ConnectFailed, false, none),
            Phase::Connect
        );
        assert_eq!(
            derive_phase(Event::NoLiveUpstreams, false, none),
            Phase::Connect
        );
        let sent = ConnState {
            connected: true,
            connect_time_set: true,
            request_sent: true,
            ..none
        };
        assert_eq!(derive_phase(Event::Reset, true, sent), Phase::Send);
        assert_eq!(derive_phase(Event::Reset, false, sent), Phase::Header);
        assert_eq!(
            derive_phase(Event::ClosedPrematurely, false, sent),
            Phase::Header
        );
        let body = ConnState {
            header_sent: true,
            ..sent
        };
        assert_eq!(
            derive_phase(Event::ClosedPrematurely, false, body),
            Phase::Body
        );
        assert_eq!(derive_phase(Event::SslFailed, false, sent), Phase::Tls);
    }
}
