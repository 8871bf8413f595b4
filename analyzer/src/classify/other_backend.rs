//! A failure of a backend that is not PHP-FPM (HTTP, uWSGI, SCGI, gRPC, or an
//! upstream nothing ties to FPM): none of the seven causes applies, so the diagnosis is
//! `unknown`, and the reason says in plain words what NGINX saw and what it means.
//! The confidence says how sure that reading is: an errno has one meaning; a timeout
//! or a dropped connection says what happened but not why.

use super::{Confidence, Diagnosis};
use crate::context::ContextIndex;
use crate::failure::{FailedAttempt, Failure};
use crate::model::{AttemptEvent, Cause, Peer, Phase, Protocol, TimeoutInForce};
use crate::windows::DEFAULT_READ_TIMEOUT_MS;

/// What went wrong with the backend, as NGINX saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trouble {
    /// ECONNREFUSED: nothing listens (on a unix socket: a stale socket file).
    Refused,
    /// ENOENT on a unix socket: the socket file does not exist.
    NoSocket,
    /// EACCES: the socket's permissions (unix) or a security policy (TCP).
    Denied,
    /// EAGAIN on a unix socket: its listen backlog is full.
    BacklogFull,
    /// Connecting timed out.
    ConnectTimeout,
    /// Another connect() errno (no route, network unreachable, no local port).
    ConnectError(i32),
    /// No response header within the read timeout.
    ReadTimeout,
    /// Sending the request timed out.
    SendTimeout,
    /// The backend closed or reset the connection before answering.
    Closed,
    /// The response header was larger than the buffer.
    HeaderTooBig,
    /// A response NGINX could not parse.
    BadResponse,
    Tls,
    Dns,
    /// The backend itself answered 502/504.
    Status,
    /// A message without a known meaning.
    Other,
}

/// A failure of a non-FPM backend, for the reason and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtherBackend {
    pub protocol: Protocol,
    /// The peer (`127.0.0.1:3000`, `unix:/tmp/app.sock`), when known.
    pub peer: Option<Peer>,
    pub trouble: Trouble,
}

impl OtherBackend {
    /// The backend as said to the user: `the backend at http://127.0.0.1:3000`, `the
    /// socket /tmp/app.sock`, `the upstream` ...
    pub fn target(&self) -> String {
        let who = if self.protocol == Protocol::Unknown {
            "the upstream"
        } else {
            "the backend"
        };
        match &self.peer {
            Some(p) => match p.unix_path() {
                Some(path) => format!("{who} on the socket {path}"),
                None if self.protocol == Protocol::Unknown => format!("{who} at {p}"),
                None => format!("{who} at {}://{p}", self.protocol.slug()),
            },
            None => who.to_string(),
        }
    }

    /// The directive prefix of the `*_pass` in use (`proxy`, `uwsgi`, ...), when the
    /// protocol is known.
    pub fn prefix(&self) -> Option<&'static str> {
        directive_prefix(self.protocol)
    }

    /// A directive of this backend's module: `proxy_read_timeout`, or, when the
    /// protocol is unknown, a description of the family.
    pub fn directive(&self, suffix: &str) -> String {
        match self.prefix() {
            Some(p) => format!("`{p}_{suffix}`"),
            None if suffix == "pass" => "your `*_pass` directive".to_string(),
            None => format!("the `*_{suffix}` of your `*_pass` (`proxy_{suffix}` for proxy_pass, `uwsgi_{suffix}` for uwsgi_pass, ...)"),
        }
    }

    /// What kind of server this usually is, for the reason (`uWSGI`, ...).
    pub fn kind(&self) -> &'static str {
        match self.protocol {
            Protocol::Uwsgi => "uWSGI",
            Protocol::Scgi => "the SCGI server",
            Protocol::Grpc => "the gRPC server",
            Protocol::Http | Protocol::Https => {
                "the app server (gunicorn, uvicorn, puma, node, ...)"
            }
            _ => "the backend",
        }
    }
}

/// NGINX's module prefix for a protocol.
pub fn directive_prefix(protocol: Protocol) -> Option<&'static str> {
    match protocol {
        Protocol::Fastcgi => Some("fastcgi"),
        Protocol::Http | Protocol::Https => Some("proxy"),
        Protocol::Uwsgi => Some("uwsgi"),
        Protocol::Scgi => Some("scgi"),
        Protocol::Grpc => Some("grpc"),
        Protocol::Unknown => None,
    }
}

/// The read timeout in force for the failure's request, with where it was read:
/// the request's record, else the `*_read_timeout` the NGINX config applies where its
/// `*_pass` to that peer is written. `None` when no input says (NGINX's default then
/// applies, or the config given leaves it unset).
pub(super) fn read_timeout_in_force(f: &Failure, ctx: &ContextIndex) -> Option<TimeoutInForce> {
    // The record holds what was in force for this very request.
    if let Some(ms) = f.read_timeout_ms {
        return Some(TimeoutInForce {
            ms: ms as i64,
            source: "the request's record".to_string(),
        });
    }
    let peer = f
        .decisive()
        .and_then(|a| a.peer.as_ref())
        .or(f.peer.as_ref())?;
    let (ms, d) = ctx.nginx_read_timeout_for(peer)??;
    Some(TimeoutInForce {
        ms,
        source: format!("`{}` at {}", d.text(), d.place()),
    })
}

/// The timeout as the reason says it: "now 300 s (file:line)" or "60 s by default,
/// unless set".
pub fn timeout_text(known: Option<&TimeoutInForce>, default_ms: i64) -> String {
    match known {
        Some(k) => format!("now {} per {}", secs(k.ms), k.source),
        None => format!("{} by default, unless set", secs(default_ms)),
    }
}

fn secs(ms: i64) -> String {
    if ms % 1000 == 0 {
        format!("{} s", ms / 1000)
    } else {
        format!("{ms} ms")
    }
}

pub(super) fn diagnose(
    f: &Failure,
    a: &FailedAttempt,
    protocol: Protocol,
    ctx: &ContextIndex,
) -> Diagnosis {
    let b = OtherBackend {
        protocol,
        peer: a.peer.clone().or_else(|| f.peer.clone()),
        trouble: trouble_of(a),
    };
    let Explanation {
        mut reason,
        certain,
    } = explain(&b, f, a, ctx);
    let mut confidence = match b.trouble {
        Trouble::Other => Confidence::Weak,
        _ if certain => Confidence::Certain,
        _ => Confidence::Strong,
    };
    if protocol == Protocol::Unknown {
        // Not knowing the protocol, PHP-FPM is not ruled out.
        confidence = confidence.lower();
        reason.push_str("; nothing in the input says this upstream is PHP-FPM (no `upstream:` scheme, FPM log, pool config or PHP socket name), so none of the seven PHP-FPM causes is given");
    } else {
        reason.push_str(&format!(
            "; the upstream speaks {}, not FastCGI: this is the backend's own problem, none of gatelog's seven causes applies",
            protocol_name(protocol)
        ));
    }
    let mut v = Diagnosis::new(Cause::Unknown, confidence, reason);
    v.facts.peer = b.peer.clone();
    v.facts.other_backend = Some(b);
    v
}

/// What went wrong with the backend, from NGINX's event, errno and phase.
fn trouble_of(a: &FailedAttempt) -> Trouble {
    use AttemptEvent as E;
    match (a.event, a.errno) {
        (E::ConnectFailed, Some(111)) => Trouble::Refused,
        (E::ConnectFailed, Some(2)) => Trouble::NoSocket,
        (E::ConnectFailed, Some(13)) => Trouble::Denied,
        (E::ConnectFailed, Some(11)) => Trouble::BacklogFull,
        (E::ConnectFailed, Some(110)) => Trouble::ConnectTimeout,
        (E::ConnectFailed, Some(n)) => Trouble::ConnectError(n),
        (E::ConnectFailed, None) => Trouble::Other,
        (E::TimedOut, _) => match a.phase {
            Some(Phase::Connect) => Trouble::ConnectTimeout,
            Some(Phase::Send) => Trouble::SendTimeout,
            _ => Trouble::ReadTimeout,
        },
        (E::Reset | E::ClosedPrematurely | E::RecvFailed | E::SendFailed, _) => Trouble::Closed,
        (E::HeaderTooBig, _) => Trouble::HeaderTooBig,
        (E::InvalidHeader | E::ProtocolError | E::PrematurelySent, _) => Trouble::BadResponse,
        (E::SslFailed, _) => Trouble::Tls,
        (E::ResolveFailed, _) => Trouble::Dns,
        (E::UpstreamStatus, _) => Trouble::Status,
        (E::NoLiveUpstreams | E::Error, _) => Trouble::Other,
    }
}

/// The reason for a backend's trouble, and whether NGINX's line alone makes it
/// certain.
struct Explanation {
    reason: String,
    certain: bool,
}

fn explain(b: &OtherBackend, f: &Failure, a: &FailedAttempt, ctx: &ContextIndex) -> Explanation {
    let unix = b.peer.as_ref().is_some_and(Peer::is_unix);
    let protocol = b.protocol;
    let target = b.target();
    let path = b
        .peer
        .as_ref()
        .and_then(Peer::unix_path)
        .unwrap_or("the socket")
        .to_string();
    let (reason, certain) = match b.trouble {
        Trouble::Refused if unix => (
            format!("{target} refused the connection (ECONNREFUSED): the socket file exists but nothing accepts on it, so the backend stopped or crashed and left it behind"),
            true,
        ),
        Trouble::Refused => (
            format!("{target} refused the connection (ECONNREFUSED): nothing listens there (the backend is down, or listens on another address or port)"),
            true,
        ),
        Trouble::NoSocket => (
            format!("the socket {path} does not exist (ENOENT): {} is not running, or listens elsewhere", b.kind()),
            true,
        ),
        Trouble::Denied if unix => (
            format!("NGINX's worker user may not open the socket {path} (EACCES): the permissions of the socket or of a directory above it keep it out"),
            true,
        ),
        Trouble::Denied => (
            format!("connecting to {target} was denied (EACCES): a security policy forbids NGINX's outgoing connection (SELinux, or a firewall rule)"),
            true,
        ),
        Trouble::BacklogFull => (
            format!("{target} did not accept the connection (EAGAIN): its listen backlog is full because every worker of the backend is busy"),
            true,
        ),
        Trouble::ConnectTimeout => (
            format!("connecting to {target} timed out: the host or port does not answer (host down, packets dropped by a firewall) or the backend's accept queue is full"),
            false,
        ),
        Trouble::ConnectError(n) => (
            format!("connecting to {target} failed: {}", connect_errno_meaning(n)),
            true,
        ),
        Trouble::ReadTimeout => {
            let rt = read_timeout_in_force(f, ctx);
            (
                format!(
                    "{target} did not send a response header within {} ({}): the backend is slow or stuck on this request",
                    b.directive("read_timeout"),
                    timeout_text(rt.as_ref(), DEFAULT_READ_TIMEOUT_MS)
                ),
                false,
            )
        }
        Trouble::SendTimeout => (
            format!("sending the request to {target} timed out ({}): the backend stopped reading it", b.directive("send_timeout")),
            false,
        ),
        Trouble::Closed => {
            let how = match a.errno {
                Some(104) => "reset the connection (ECONNRESET)",
                Some(32) => "closed the connection while NGINX was still sending (EPIPE)",
                _ => "closed the connection",
            };
            (
                format!("{target} {how} before answering: the backend crashed, was restarted, or dropped the request itself (its own timeout or limit)"),
                false,
            )
        }
        Trouble::HeaderTooBig => (
            format!("the response header from {target} was larger than {}: big cookies or headers from the app", b.directive("buffer_size")),
            true,
        ),
        Trouble::BadResponse => (
            format!("{target} sent a response NGINX could not parse ({}): it does not speak {} on that address, or it sent a broken response", a.message, protocol_name(protocol)),
            false,
        ),
        Trouble::Tls => (
            format!("the TLS handshake with {target} failed ({}): certificate, server name (SNI) or protocol mismatch", a.message),
            false,
        ),
        Trouble::Dns => (
            format!("the name of {target} could not be resolved (DNS): {}", a.message),
            true,
        ),
        Trouble::Status => (
            format!("{target} itself answered {}: an application status passed on by NGINX, not a connection failure", f.status),
            false,
        ),
        Trouble::Other => (format!("{target}: {}", a.message), false),
    };
    Explanation { reason, certain }
}

fn protocol_name(p: Protocol) -> &'static str {
    match p {
        Protocol::Fastcgi => "FastCGI",
        Protocol::Http => "HTTP",
        Protocol::Https => "HTTPS",
        Protocol::Uwsgi => "uwsgi",
        Protocol::Scgi => "SCGI",
        Protocol::Grpc => "gRPC",
        Protocol::Unknown => "the expected protocol",
    }
}

/// The connect() errnos NGINX reports besides the ones above, in plain words.
fn connect_errno_meaning(n: i32) -> String {
    match n {
        113 => "no route to the host (EHOSTUNREACH): it is down or a firewall rejects it".to_string(),
        101 => "the network is unreachable (ENETUNREACH)".to_string(),
        99 => "no free local address or port (EADDRNOTAVAIL): NGINX ran out of source ports, usually too many short connections in TIME_WAIT".to_string(),
        104 => "the connection was reset (ECONNRESET) while connecting".to_string(),
        n => format!("errno {n}"),
    }
}

#[cfg(test)]
mod tests {
    use crate::classify::testing::*;

    fn judge(f: &Failure, ctx: &ContextIndex) -> (Diagnosis, String) {
        let v = Classifier::default().classify(f, ctx, &History::default());
        let fix = fix_text(&v, f, ctx);
        (v, fix)
    }

    /// What a fix for another backend must never say.
    fn assert_no_fpm_fix(fix: &str) {
        for word in [
            "php-fpm",
            "PHP-FPM",
            "pm.max_children",
            "fastcgi_",
            "listen.owner",
        ] {
            assert!(!fix.contains(word), "{word} in the fix: {fix}");
        }
    }

    // connect() failed (111: Connection refused) while connecting to upstream, ...
    // upstream: "http://127.0.0.1:3000/"
    #[test]
    fn an_http_backend_refusing_is_unknown_with_what_nginx_saw() {
        // Even with an FPM log among the inputs: the scheme says HTTP.
        let ctx = fpm_log_only();
        let f = over(
            Protocol::Http,
            failure(
                AttemptEvent::ConnectFailed,
                Phase::Connect,
                Some(111),
                "127.0.0.1:3000",
            ),
        );
        let (v, fix) = judge(&f, &ctx);
        assert_eq!(v.cause, Cause::Unknown);
        assert_eq!(v.confidence, Confidence::Certain);
        assert!(
            v.reason.starts_with("the backend at http://127.0.0.1:3000 refused the connection (ECONNREFUSED): nothing listens there"),
            "{}",
            v.reason
        );
        assert!(
            fix.contains("`proxy_pass`") && fix.contains("ss -ltnp | grep :3000"),
            "{fix}"
        );
        assert_no_fpm_fix(&fix);
    }

    // connect() to unix:/tmp/app.sock failed (2: No such file or directory) ...
    // upstream: "http://unix:/tmp/app.sock:/api" (gunicorn behind NGINX)
    #[test]
    fn a_missing_gunicorn_socket_says_the_socket_does_not_exist() {
        let f = over(
            Protocol::Http,
            failure(
                AttemptEvent::ConnectFailed,
                Phase::Connect,
                Some(2),
                "unix:/tmp/app.sock",
            ),
        );
        let (v, fix) = judge(&f, &ContextIndex::default());
        assert_eq!(v.cause, Cause::Unknown);
        assert!(
            v.reason
                .starts_with("the socket /tmp/app.sock does not exist (ENOENT)"),
            "{}",
            v.reason
        );
        assert!(v.reason.contains("gunicorn"), "{}", v.reason);
        assert!(fix.contains("ls -l /tmp/app.sock"), "{fix}");
        assert_no_fpm_fix(&fix);
    }

    // upstream timed out (110: Connection timed out) while reading response header
    // from upstream, ... upstream: "uwsgi://unix:/run/uwsgi/app/x/socket:"
    #[test]
    fn a_uwsgi_timeout_names_uwsgi_read_timeout_and_says_when_it_is_the_default() {
        let mut f = over(
            Protocol::Uwsgi,
            failure(
                AttemptEvent::TimedOut,
                Phase::Header,
                Some(110),
                "unix:/run/uwsgi/app/x/socket",
            ),
        );
        f.read_timeout_ms = None;
        let (v, fix) = judge(&f, &ContextIndex::default());
        assert_eq!(v.cause, Cause::Unknown);
        assert_eq!(v.confidence, Confidence::Strong);
        assert!(
            v.reason
                .contains("`uwsgi_read_timeout` (60 s by default, unless set)"),
            "{}",
            v.reason
        );
        assert!(v.reason.contains("slow or stuck"), "{}", v.reason);
        assert!(fix.contains("uwsgi_read_timeout 300s"), "{fix}");
        assert_no_fpm_fix(&fix);
        // The record says what was in force.
        f.read_timeout_ms = Some(30_000);
        let (v, _) = judge(&f, &ContextIndex::default());
        assert!(
            v.reason.contains("now 30 s per the request's record"),
            "{}",
            v.reason
        );
    }

    // recv() failed (104: Connection reset by peer) while reading response header
    // from upstream, ... upstream: "https://10.0.0.5:443/"
    #[test]
    fn a_reset_from_an_https_backend() {
        let f = over(
            Protocol::Https,
            failure(
                AttemptEvent::Reset,
                Phase::Header,
                Some(104),
                "10.0.0.5:443",
            ),
        );
        let (v, fix) = judge(&f, &ContextIndex::default());
        assert_eq!(v.cause, Cause::Unknown);
        assert!(
            v.reason.contains(
                "https://10.0.0.5:443 reset the connection (ECONNRESET) before answering"
            ),
            "{}",
            v.reason
        );
        assert_eq!(v.confidence, Confidence::Strong);
        assert_no_fpm_fix(&fix);
    }

    // connect() to 127.0.0.1:8080 failed (13: Permission denied): SELinux on RHEL.
    #[test]
    fn eacces_on_tcp_points_at_selinux_and_on_a_socket_at_its_permissions() {
        let f = over(
            Protocol::Http,
            failure(
                AttemptEvent::ConnectFailed,
                Phase::Connect,
                Some(13),
                "127.0.0.1:8080",
            ),
        );
        let (v, fix) = judge(&f, &ContextIndex::default());
        assert!(v.reason.contains("SELinux"), "{}", v.reason);
        assert!(fix.contains("httpd_can_network_connect"), "{fix}");
        let f = over(
            Protocol::Uwsgi,
            failure(
                AttemptEvent::ConnectFailed,
                Phase::Connect,
                Some(13),
                "unix:/run/uwsgi/app.sock",
            ),
        );
        let (v, fix) = judge(&f, &ContextIndex::default());
        assert!(
            v.reason
                .contains("may not open the socket /run/uwsgi/app.sock"),
            "{}",
            v.reason
        );
        assert!(fix.contains("chmod-socket"), "{fix}");
        assert_no_fpm_fix(&fix);
    }

    #[test]
    fn an_upstream_of_unknown_protocol_with_no_fpm_evidence_is_unknown_less_surely() {
        // A record (no scheme) for a peer nothing ties to PHP-FPM.
        let f = over(
            Protocol::Unknown,
            failure(
                AttemptEvent::ConnectFailed,
                Phase::Connect,
                Some(111),
                "127.0.0.1:3000",
            ),
        );
        let (v, fix) = judge(&f, &ContextIndex::default());
        assert_eq!(v.cause, Cause::Unknown);
        assert_eq!(v.confidence, Confidence::Strong);
        assert!(
            v.reason
                .starts_with("the upstream at 127.0.0.1:3000 refused"),
            "{}",
            v.reason
        );
        assert!(
            v.reason
                .contains("nothing in the input says this upstream is PHP-FPM"),
            "{}",
            v.reason
        );
        assert!(
            fix.contains("If this upstream is PHP-FPM after all"),
            "{fix}"
        );
    }

    #[test]
    fn the_access_log_alone_for_an_http_backend_is_unknown() {
        let mut f = over(
            Protocol::Http,
            failure(
                AttemptEvent::Reset,
                Phase::Header,
                Some(104),
                "127.0.0.1:3000",
            ),
        );
        f.attempts.clear();
        let (v, _) = judge(&f, &fpm_log_only());
        assert_eq!(v.cause, Cause::Unknown);
    }
}
