//! The stable vocabularies of a record: what happened, where, and at which level.

use serde::{Deserialize, Serialize};

/// What happened to an upstream attempt; the slug is part of the gatelog.v1 schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// `connect() to X failed` / `connect() failed` (sync errno or SO_ERROR).
    ConnectFailed,
    /// `upstream timed out` (NGINX synthesizes errno 110).
    TimedOut,
    /// recv/readv/writev/send failed with 104 (the peer sent RST).
    Reset,
    /// recv()/readv() failed with another errno.
    RecvFailed,
    /// writev()/send()/sendfile() failed with another errno.
    SendFailed,
    /// The upstream closed (FIN) before a complete response.
    ClosedPrematurely,
    /// `upstream sent invalid header`, invalid status, bad Content-Length, ...
    InvalidHeader,
    /// The response broke its protocol's framing: FastCGI records (version, type,
    /// request id, stdout ended before the header), gRPC's HTTP/2 frames and streams,
    /// HTTP/1.1 chunks.
    ProtocolError,
    /// `upstream sent too big header`.
    HeaderTooBig,
    /// `upstream prematurely sent response` (plain text before the TLS handshake).
    PrematurelySent,
    /// TLS handshake or certificate failures.
    SslFailed,
    /// `no live upstreams`.
    NoLiveUpstreams,
    /// `... could not be resolved`, `no resolver defined to resolve ...`.
    ResolveFailed,
    /// No error line: the upstream itself answered with this attempt's status.
    UpstreamStatus,
    /// Another error-level line logged for the attempt.
    Error,
}

impl Event {
    pub const ALL: [Event; 15] = [
        Event::ConnectFailed,
        Event::TimedOut,
        Event::Reset,
        Event::RecvFailed,
        Event::SendFailed,
        Event::ClosedPrematurely,
        Event::InvalidHeader,
        Event::ProtocolError,
        Event::HeaderTooBig,
        Event::PrematurelySent,
        Event::SslFailed,
        Event::NoLiveUpstreams,
        Event::ResolveFailed,
        Event::UpstreamStatus,
        Event::Error,
    ];

    /// The event named by a gatelog.v1 slug.
    pub fn from_slug(s: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.slug() == s)
    }

    pub fn slug(self) -> &'static str {
        match self {
            Event::ConnectFailed => "connect_failed",
            Event::TimedOut => "timed_out",
            Event::Reset => "reset",
            Event::RecvFailed => "recv_failed",
            Event::SendFailed => "send_failed",
            Event::ClosedPrematurely => "closed_prematurely",
            Event::InvalidHeader => "invalid_header",
            Event::ProtocolError => "protocol_error",
            Event::HeaderTooBig => "header_too_big",
            Event::PrematurelySent => "prematurely_sent",
            Event::SslFailed => "ssl_failed",
            Event::NoLiveUpstreams => "no_live_upstreams",
            Event::ResolveFailed => "resolve_failed",
            Event::UpstreamStatus => "upstream_status",
            Event::Error => "error",
        }
    }
}

/// Where an attempt failed. Derived from connection state, never from the printed
/// action, which a sibling subrequest can overwrite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Resolve,
    Connect,
    Tls,
    Send,
    Header,
    Body,
}

impl Phase {
    pub const ALL: [Phase; 6] = [
        Phase::Resolve,
        Phase::Connect,
        Phase::Tls,
        Phase::Send,
        Phase::Header,
        Phase::Body,
    ];

    /// The phase named by a gatelog.v1 slug.
    pub fn from_slug(s: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.slug() == s)
    }

    /// The phase an error-log line's ` while <action>` names. Only for readers of
    /// plain logs: the action is shared by a connection's requests and can be stale,
    /// which is why the module derives the phase from connection state instead.
    pub fn from_action(action: &str) -> Option<Phase> {
        Some(match action {
            "connecting to upstream" => Phase::Connect,
            "SSL handshaking to upstream" => Phase::Tls,
            "sending request to upstream" => Phase::Send,
            "reading response header from upstream" => Phase::Header,
            // The status went out before an upgraded connection (WebSocket) is proxied.
            "reading upstream" | "sending to client" | "proxying upgraded connection" => {
                Phase::Body
            }
            _ => return None,
        })
    }

    pub fn slug(self) -> &'static str {
        match self {
            Phase::Resolve => "resolve",
            Phase::Connect => "connect",
            Phase::Tls => "tls",
            Phase::Send => "send",
            Phase::Header => "header",
            Phase::Body => "body",
        }
    }
}

/// NGINX log levels, numbered as `NGX_LOG_*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    Emerg = 1,
    Alert = 2,
    Crit = 3,
    Error = 4,
    Warn = 5,
    Notice = 6,
    Info = 7,
}

impl Level {
    /// From the numeric `NGX_LOG_*` value; debug (8) and unknown values are `None`.
    pub fn from_ngx(level: usize) -> Option<Level> {
        Some(match level {
            1 => Level::Emerg,
            2 => Level::Alert,
            3 => Level::Crit,
            4 => Level::Error,
            5 => Level::Warn,
            6 => Level::Notice,
            7 => Level::Info,
            _ => return None,
        })
    }

    /// From the bracketed word of an error-log line (`crit`, `error`, ...).
    pub fn from_word(word: &[u8]) -> Option<Level> {
        Some(match word {
            b"emerg" => Level::Emerg,
            b"alert" => Level::Alert,
            b"crit" => Level::Crit,
            b"error" => Level::Error,
            b"warn" => Level::Warn,
            b"notice" => Level::Notice,
            b"info" => Level::Info,
            _ => return None,
        })
    }

    pub fn word(self) -> &'static str {
        match self {
            Level::Emerg => "emerg",
            Level::Alert => "alert",
            Level::Crit => "crit",
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Notice => "notice",
            Level::Info => "info",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_round_trip_and_match_serde() {
        for e in Event::ALL {
            assert_eq!(Event::from_slug(e.slug()), Some(e));
            assert_eq!(
                serde_json::to_string(&e).ok(),
                Some(format!("\"{}\"", e.slug()))
            );
        }
        for p in Phase::ALL {
            assert_eq!(Phase::from_slug(p.slug()), Some(p));
            assert_eq!(
                serde_json::to_string(&p).ok(),
                Some(format!("\"{}\"", p.slug()))
            );
        }
        assert_eq!(Event::from_slug("nope"), None);
    }
}
