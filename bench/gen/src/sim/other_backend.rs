//! A failure of the HTTP app behind `proxy_pass` on app.example.com: what NGINX logs when a
//! backend that is not PHP-FPM refuses, times out, resets or closes. The analyzer must not
//! give these one of the seven FPM causes, so the incident input carries them.

use gatelog_record::{Attempt, Event, Level, Phase};

use super::record::Answer;
use super::Sim;
use crate::kind::Kind;
use crate::site::{APP_PEER, APP_SERVER, APP_URIS};

impl Sim {
    pub(crate) fn other_backend_failure(&mut self) {
        let mut r = self.req(true);
        r.server = APP_SERVER;
        r.host = "app.example.com";
        r.uri = *self.rng.pick(APP_URIS);
        let (w, c) = self.new_conn();
        let ctx = format!("http://{APP_PEER}{}", r.uri);
        // refused (app down), read timeout (app stuck), reset or closed (app crashed)
        let which = self.rng.weighted(&[40, 30, 15, 15]);
        let (msg, action, phase, event, errno, status, ms) = match which {
            0 => (
                "connect() failed (111: Connection refused)",
                "connecting to upstream",
                Phase::Connect,
                Event::ConnectFailed,
                Some((111, "ECONNREFUSED", "Connection refused")),
                502,
                0,
            ),
            1 => (
                "upstream timed out (110: Connection timed out)",
                "reading response header from upstream",
                Phase::Header,
                Event::TimedOut,
                Some((110, "ETIMEDOUT", "Connection timed out")),
                504,
                60_000 + self.rng.below(5),
            ),
            2 => (
                "recv() failed (104: Connection reset by peer)",
                "reading response header from upstream",
                Phase::Header,
                Event::Reset,
                Some((104, "ECONNRESET", "Connection reset by peer")),
                502,
                self.rng.range(2, 900),
            ),
            _ => (
                "upstream prematurely closed connection",
                "reading response header from upstream",
                Phase::Header,
                Event::ClosedPrematurely,
                None,
                502,
                self.rng.range(2, 900),
            ),
        };
        self.err_head("error", w, c);
        self.err.s(msg).s(" while ").s(action);
        self.err_ctx(&r, Some(&ctx));
        let attempt = Attempt {
            peer: Some(APP_PEER.to_string()),
            phase: Some(phase),
            errno: errno.map(|e| e.0),
            errno_name: errno.map(|e| e.1.to_string()),
            error: errno.map(|e| e.2.to_string()),
            event: Some(event),
            message: Some(msg.to_string()),
            level: Some(Level::Error),
            status: Some(status as u16),
            connect_ms: if phase == Phase::Connect {
                None
            } else {
                Some(0)
            },
            header_ms: None,
            response_ms: Some(ms),
        };
        let answer = Answer {
            status,
            request_ms: ms,
            upstream: APP_PEER,
            attempts: std::slice::from_ref(&attempt),
            stderr: None,
        };
        self.record(w, c, &r, &answer);
        self.failures[Kind::OtherBackend.index()] += 1;
        if status == 502 {
            self.status_502 += 1
        } else {
            self.status_504 += 1
        }
    }
}
