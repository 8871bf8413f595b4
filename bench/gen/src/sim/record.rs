//! The gatelog.v1 record of a failed request, written field by field in the module's order
//! (no serializer: the bytes must not move when a serde version does).

use gatelog_record::{Attempt, Event, Level, Phase};

use super::Sim;
use crate::site::{push_client, Req, SERVERS};

/// How NGINX answered a failed request: what its record says besides the request itself.
pub(crate) struct Answer<'a> {
    pub(crate) status: u64,
    pub(crate) request_ms: u64,
    /// The record's `upstream`: the peer, the `upstream {}` group's name, or the TCP address.
    pub(crate) upstream: &'a str,
    pub(crate) attempts: &'a [Attempt],
    /// What FPM wrote to stderr for this request (`FastCGI sent in stderr`).
    pub(crate) stderr: Option<&'a str>,
}

impl Sim {
    /// Writes the record of request `r` (worker `w`, connection `c`) as the module would.
    pub(crate) fn record(&mut self, w: u64, c: u64, r: &Req, answer: &Answer) {
        self.stamp();
        let ms = self.t_us / 1000 % 1000;
        let rid = (self.rng.next(), self.rng.next());
        let o = &mut self.rec;
        o.s("{\"schema\":\"gatelog.v1\",\"time\":\"")
            .b(&self.st.iso)
            .s(".")
            .nz(ms, 3)
            .s("+00:00\",\"pid\":")
            .n(w);
        o.s(",\"conn\":")
            .n(c)
            .s(",\"request_id\":\"")
            .hex(rid.0, 16)
            .hex(rid.1, 16);
        o.s("\",\"status\":")
            .n(answer.status)
            .s(",\"origin\":\"nginx\",\"recovered\":false,\"client\":\"");
        push_client(&mut o.buf, r.client);
        o.s("\",\"server\":\"")
            .s(SERVERS[r.server].name)
            .s("\",\"host\":\"")
            .js(r.host);
        o.s("\",\"method\":\"")
            .s(r.method)
            .s("\",\"uri\":\"")
            .js(r.uri)
            .s("\",\"protocol\":\"")
            .s(r.proto);
        o.s("\",\"request_time_ms\":")
            .n(answer.request_ms)
            .s(",\"upstream\":\"")
            .js(answer.upstream);
        o.s("\",\"attempts\":[");
        for (i, a) in answer.attempts.iter().enumerate() {
            if i > 0 {
                o.s(",");
            }
            o.s("{\"peer\":").opt_str(a.peer.as_deref());
            o.s(",\"phase\":").opt_str(a.phase.map(Phase::slug));
            o.s(",\"errno\":").opt_n(a.errno.map(|n| n as u64));
            o.s(",\"errno_name\":").opt_str(a.errno_name.as_deref());
            o.s(",\"error\":").opt_str(a.error.as_deref());
            o.s(",\"event\":").opt_str(a.event.map(Event::slug));
            o.s(",\"message\":").opt_str(a.message.as_deref());
            o.s(",\"level\":").opt_str(a.level.map(Level::word));
            o.s(",\"status\":").opt_n(a.status.map(u64::from));
            o.s(",\"connect_ms\":").opt_n(a.connect_ms);
            o.s(",\"header_ms\":").opt_n(a.header_ms);
            o.s(",\"response_ms\":").opt_n(a.response_ms).s("}");
        }
        o.s("],\"timeouts_ms\":{\"connect\":60000,\"send\":60000,\"read\":60000},\"fastcgi_stderr\":");
        match answer.stderr {
            Some(t) => {
                o.s("{\"text\":\"").js(t).s("\",\"truncated\":false}");
            }
            None => {
                o.s("null");
            }
        }
        o.s("}").nl();
        self.records += 1;
    }
}
