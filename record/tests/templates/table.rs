//! Every message template NGINX 1.22.1 and 1.28.3 can log while a request goes
//! through an upstream, with what gatelog reads from it.
//!
//! One [`Case`] per template (several when the action changes the phase), each naming
//! the NGINX file and function that logs it and its C format string, with a message
//! formatted from it. `nginx-templates.tsv` next to this file is the list extracted
//! from the NGINX sources by `extract.py`; `record/tests/templates.rs` checks that
//! every template there has a case here, and runs each case as the module reads it
//! (the action known) and as the analyzer reads it (from the text). The analyzer's
//! own test includes this file to check its reading of the same lines.
//!
//! When NGINX adds a message: re-run `extract.py`, add a case, and teach
//! `gatelog_record::message` its event if it is an upstream failure.

use gatelog_record::{Event, Phase};

/// What reading the line must give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// An upstream attempt failed: the event and the phase the line states; the errno
    /// is the case's.
    Failure(Event, Option<Phase>),
    /// `FastCGI sent in stderr`: context for the request, not a failure.
    Stderr,
    /// Not an upstream failure, whatever the action: the reason, from the NGINX source.
    NotUpstream(&'static str),
    /// A template the upstream shares with the client connection, logged here for the
    /// client (only the action tells).
    ClientSide,
}

#[derive(Debug, Clone)]
pub struct Case {
    /// The NGINX source file (as in `nginx-templates.tsv`) and the function(s).
    pub file: &'static str,
    pub function: &'static str,
    /// The C format string as written in the source.
    pub format: &'static str,
    pub level: &'static str,
    /// The message as NGINX formats it, before the errno part.
    pub message: &'static str,
    /// What `ngx_log_errno` appends: ` (<n>: <strerror>)`.
    pub errno: Option<(i32, &'static str)>,
    /// `log->action`, printed as ` while <action>`.
    pub action: Option<&'static str>,
    /// The `upstream: "..."` context value (`u->schema` + peer name + uri).
    pub upstream: Option<&'static str>,
    pub expect: Expect,
    /// The event read when the line is pasted without its action, when that differs.
    pub bare_event: Option<Event>,
}

impl Case {
    fn errno(mut self, n: i32, text: &'static str) -> Case {
        self.errno = Some((n, text));
        self
    }

    fn action(mut self, action: &'static str) -> Case {
        self.action = Some(action);
        self
    }

    fn upstream(mut self, upstream: &'static str) -> Case {
        self.upstream = Some(upstream);
        self
    }

    fn expect(mut self, expect: Expect) -> Case {
        self.expect = expect;
        self
    }

    fn bare(mut self, event: Event) -> Case {
        self.bare_event = Some(event);
        self
    }

    /// The message with its errno part, as in the error log.
    pub fn message_with_errno(&self) -> String {
        match self.errno {
            Some((n, text)) => format!("{} ({n}: {text})", self.message),
            None => self.message.to_string(),
        }
    }

    /// The whole error-log line, as `ngx_log_error_core` and `ngx_http_log_error`
    /// write it (without the newline).
    pub fn line(&self) -> String {
        let mut s = format!(
            "2026/04/02 14:23:17 [{}] 4242#4242: *1187 {}",
            self.level,
            self.message_with_errno()
        );
        if let Some(a) = self.action {
            s.push_str(&format!(" while {a}"));
        }
        s.push_str(
            ", client: 203.0.113.7, server: example.com, request: \"GET /index.php?id=7 HTTP/1.1\"",
        );
        if let Some(u) = self.upstream {
            s.push_str(&format!(", upstream: \"{u}\""));
        }
        s.push_str(", host: \"example.com\"");
        s
    }

    /// The line as pasted without its tail (` while ...` and context).
    pub fn bare_line(&self) -> String {
        format!(
            "2026/04/02 14:23:17 [{}] 4242#4242: *1187 {}",
            self.level,
            self.message_with_errno()
        )
    }

    /// The errno the reader must return.
    pub fn expected_errno(&self) -> Option<i32> {
        self.errno.map(|(n, _)| n)
    }
}

fn case(
    file: &'static str,
    function: &'static str,
    format: &'static str,
    level: &'static str,
    message: &'static str,
) -> Case {
    Case {
        file,
        function,
        format,
        level,
        message,
        errno: None,
        action: None,
        upstream: None,
        expect: Expect::NotUpstream("unset"),
        bare_event: None,
    }
}

// `upstream: "..."` values as `ngx_http_log_error_handler` prints them: unix peers get
// ':' before the (empty for FastCGI) uri.
const FCGI_UNIX: &str = "fastcgi://unix:/run/php/php8.2-fpm.sock:";
const FCGI_TCP: &str = "fastcgi://127.0.0.1:9000";
const FCGI_GROUP: &str = "fastcgi://php";
const HTTP: &str = "http://127.0.0.1:3000/index.php?id=7";
const HTTPS: &str = "https://10.0.0.5:443/index.php?id=7";
const UWSGI: &str = "uwsgi://unix:/run/uwsgi/app/site/socket:";
const SCGI: &str = "scgi://127.0.0.1:4000";
const GRPC: &str = "grpc://127.0.0.1:50051";

const CONNECTING: &str = "connecting to upstream";
const TLS: &str = "SSL handshaking to upstream";
const SENDING: &str = "sending request to upstream";
const HEADER: &str = "reading response header from upstream";
const READING: &str = "reading upstream";
const TO_CLIENT: &str = "sending to client";
const UPGRADED: &str = "proxying upgraded connection";

const OWN_500: &str = "NGINX's own resource or configuration failed; it answers 500, not 502/504";
const WARNING: &str = "a warning: NGINX ignores the excess and the response goes on";
const CLIENT: &str = "about the client's connection";
const SERVER_TLS: &str = "TLS of NGINX as a server (client connections) only";
const DEBUG_OR_NOTICE: &str = "not an error (debug or notice level)";

const CONNECT: &str = "src/event/ngx_event_connect.c";
const SSL: &str = "src/event/ngx_event_openssl.c";
const PIPE: &str = "src/event/ngx_event_pipe.c";
const FASTCGI: &str = "src/http/modules/ngx_http_fastcgi_module.c";
const GRPC_M: &str = "src/http/modules/ngx_http_grpc_module.c";
const PROXY: &str = "src/http/modules/ngx_http_proxy_module.c";
const SCGI_M: &str = "src/http/modules/ngx_http_scgi_module.c";
const UWSGI_M: &str = "src/http/modules/ngx_http_uwsgi_module.c";
const UPSTREAM: &str = "src/http/ngx_http_upstream.c";
const RR: &str = "src/http/ngx_http_upstream_round_robin.c";
const SENDFILE: &str = "src/os/unix/ngx_linux_sendfile_chain.c";
const READV: &str = "src/os/unix/ngx_readv_chain.c";
const RECV: &str = "src/os/unix/ngx_recv.c";
const SEND: &str = "src/os/unix/ngx_send.c";
const WRITEV: &str = "src/os/unix/ngx_writev_chain.c";

/// The table, one case a template (kept one line a case: it is read as a table).
#[rustfmt::skip]
pub fn cases() -> Vec<Case> {
    use Event::*;
    use Expect::{ClientSide, Failure as F, NotUpstream as Not, Stderr};
    let connect = Some(Phase::Connect);
    let tls = Some(Phase::Tls);
    let send = Some(Phase::Send);
    let header = Some(Phase::Header);
    let body = Some(Phase::Body);
    let resolve = Some(Phase::Resolve);
    vec![
        // ---- src/event/ngx_event_connect.c: ngx_event_connect_peer ----
        case(CONNECT, "ngx_event_connect_peer", "connect() to %V failed", "crit", "connect() to unix:/run/php/php8.2-fpm.sock failed")
            .errno(2, "No such file or directory").action(CONNECTING).upstream(FCGI_UNIX).expect(F(ConnectFailed, connect)),
        case(CONNECT, "ngx_event_connect_peer", "connect() to %V failed", "crit", "connect() to unix:/run/php/php8.2-fpm.sock failed")
            .errno(13, "Permission denied").action(CONNECTING).upstream(FCGI_UNIX).expect(F(ConnectFailed, connect)),
        // Linux: EAGAIN on a unix socket whose listen queue is full (logged at error).
        case(CONNECT, "ngx_event_connect_peer", "connect() to %V failed", "error", "connect() to unix:/run/php/php8.2-fpm.sock failed")
            .errno(11, "Resource temporarily unavailable").action(CONNECTING).upstream(FCGI_UNIX).expect(F(ConnectFailed, connect)),
        case(CONNECT, "ngx_event_connect_peer", "connect() to %V failed", "error", "connect() to 127.0.0.1:3000 failed")
            .errno(111, "Connection refused").action(CONNECTING).upstream(HTTP).expect(F(ConnectFailed, connect)),
        case(CONNECT, "ngx_event_connect_peer", "connect() to %V failed", "error", "connect() to 10.0.0.5:443 failed")
            .errno(113, "No route to host").action(CONNECTING).upstream(HTTPS).expect(F(ConnectFailed, connect)),
        case(CONNECT, "ngx_event_connect_peer", "connect() to %V failed", "crit", "connect() to 127.0.0.1:9000 failed")
            .errno(99, "Cannot assign requested address").action(CONNECTING).upstream(FCGI_TCP).expect(F(ConnectFailed, connect)),
        case(CONNECT, "ngx_event_connect_peer", "socket() failed", "alert", "socket() failed")
            .errno(24, "Too many open files").action(CONNECTING).upstream(FCGI_TCP).expect(Not(OWN_500)),
        case(CONNECT, "ngx_event_connect_peer", "bind(%V) failed", "crit", "bind(10.0.0.9) failed")
            .errno(99, "Cannot assign requested address").action(CONNECTING).upstream(HTTP).expect(Not(OWN_500)),
        case(CONNECT, "ngx_event_connect_peer", "close() socket failed", "alert", "close() socket failed")
            .errno(9, "Bad file descriptor").action(CONNECTING).upstream(HTTP).expect(Not(OWN_500)),
        case(CONNECT, "ngx_event_connect_set_transparent", "could not enable transparent proxying for IPv6 on this platform", "alert", "could not enable transparent proxying for IPv6 on this platform")
            .action(CONNECTING).upstream(HTTP).expect(Not(OWN_500)),
        case(CONNECT, "ngx_event_connect_peer", "ioctl(!FIONBIO) failed", "alert", "ioctl(!FIONBIO) failed")
            .errno(9, "Bad file descriptor").action(CONNECTING).upstream(HTTP).expect(Not(OWN_500)),
        case(CONNECT, "ngx_event_connect_peer", "ioctl(FIONBIO) failed", "alert", "ioctl(FIONBIO) failed")
            .errno(9, "Bad file descriptor").action(CONNECTING).upstream(HTTP).expect(Not(OWN_500)),
        case(CONNECT, "ngx_event_connect_set_transparent", "setsockopt(IPV6_BINDANY) failed", "alert", "setsockopt(IPV6_BINDANY) failed")
            .errno(22, "Invalid argument").action(CONNECTING).upstream(HTTP).expect(Not(OWN_500)),
        case(CONNECT, "ngx_event_connect_set_transparent", "setsockopt(IPV6_TRANSPARENT) failed", "alert", "setsockopt(IPV6_TRANSPARENT) failed")
            .errno(1, "Operation not permitted").action(CONNECTING).upstream(HTTP).expect(Not(OWN_500)),
        case(CONNECT, "ngx_event_connect_set_transparent", "setsockopt(IP_BINDANY) failed", "alert", "setsockopt(IP_BINDANY) failed")
            .errno(22, "Invalid argument").action(CONNECTING).upstream(HTTP).expect(Not(OWN_500)),
        case(CONNECT, "ngx_event_connect_peer", "setsockopt(IP_BIND_ADDRESS_NO_PORT) failed, ignored", "alert", "setsockopt(IP_BIND_ADDRESS_NO_PORT) failed, ignored")
            .errno(92, "Protocol not available").action(CONNECTING).upstream(HTTP).expect(Not(OWN_500)),
        case(CONNECT, "ngx_event_connect_set_transparent", "setsockopt(IP_TRANSPARENT) failed", "alert", "setsockopt(IP_TRANSPARENT) failed")
            .errno(1, "Operation not permitted").action(CONNECTING).upstream(HTTP).expect(Not(OWN_500)),
        case(CONNECT, "ngx_event_connect_set_transparent", "setsockopt(SO_BINDANY) failed", "alert", "setsockopt(SO_BINDANY) failed")
            .errno(22, "Invalid argument").action(CONNECTING).upstream(HTTP).expect(Not(OWN_500)),
        case(CONNECT, "ngx_event_connect_peer", "setsockopt(SO_KEEPALIVE) failed, ignored", "alert", "setsockopt(SO_KEEPALIVE) failed, ignored")
            .errno(22, "Invalid argument").action(CONNECTING).upstream(HTTP).expect(Not(OWN_500)),
        case(CONNECT, "ngx_event_connect_peer", "setsockopt(SO_RCVBUF) failed", "alert", "setsockopt(SO_RCVBUF) failed")
            .errno(22, "Invalid argument").action(CONNECTING).upstream(HTTP).expect(Not(OWN_500)),
        case(CONNECT, "ngx_event_connect_peer", "setsockopt(SO_REUSEADDR) failed", "alert", "setsockopt(SO_REUSEADDR) failed")
            .errno(22, "Invalid argument").action(CONNECTING).upstream(HTTP).expect(Not(OWN_500)),

        // ---- src/http/ngx_http_upstream.c ----
        case(UPSTREAM, "ngx_http_upstream_test_connect", "connect() failed", "error", "connect() failed")
            .errno(111, "Connection refused").action(CONNECTING).upstream(FCGI_TCP).expect(F(ConnectFailed, connect)),
        case(UPSTREAM, "ngx_http_upstream_test_connect", "connect() failed", "error", "connect() failed")
            .errno(110, "Connection timed out").action(CONNECTING).upstream(HTTP).expect(F(ConnectFailed, connect)),
        // FreeBSD numbers: 61 is ECONNREFUSED there.
        case(UPSTREAM, "ngx_http_upstream_test_connect", "kevent() reported that connect() failed", "error", "kevent() reported that connect() failed")
            .errno(61, "Connection refused").action(CONNECTING).upstream(FCGI_TCP).expect(F(ConnectFailed, connect)),
        case(UPSTREAM, "ngx_http_upstream_connect", "no live upstreams", "error", "no live upstreams")
            .action(CONNECTING).upstream(FCGI_GROUP).expect(F(NoLiveUpstreams, connect)),
        // NGINX synthesizes ETIMEDOUT for every upstream timer; the action names where.
        case(UPSTREAM, "ngx_http_upstream_next", "upstream timed out", "error", "upstream timed out")
            .errno(110, "Connection timed out").action(CONNECTING).upstream(FCGI_TCP).expect(F(TimedOut, connect)),
        case(UPSTREAM, "ngx_http_upstream_next", "upstream timed out", "error", "upstream timed out")
            .errno(110, "Connection timed out").action(TLS).upstream(HTTPS).expect(F(TimedOut, tls)),
        case(UPSTREAM, "ngx_http_upstream_next", "upstream timed out", "error", "upstream timed out")
            .errno(110, "Connection timed out").action(SENDING).upstream(FCGI_UNIX).expect(F(TimedOut, send)),
        case(UPSTREAM, "ngx_http_upstream_next", "upstream timed out", "error", "upstream timed out")
            .errno(110, "Connection timed out").action(HEADER).upstream(FCGI_UNIX).expect(F(TimedOut, header)),
        case(UPSTREAM, "ngx_http_upstream_process_upstream", "upstream timed out", "error", "upstream timed out")
            .errno(110, "Connection timed out").action(READING).upstream(HTTP).expect(F(TimedOut, body)),
        case(UPSTREAM, "ngx_http_upstream_process_non_buffered_upstream", "upstream timed out", "error", "upstream timed out")
            .errno(110, "Connection timed out").action(READING).upstream(GRPC).expect(F(TimedOut, body)),
        case(UPSTREAM, "ngx_http_upstream_process_upgraded", "upstream timed out", "error", "upstream timed out")
            .errno(110, "Connection timed out").action(UPGRADED).upstream(HTTP).expect(F(TimedOut, body)),
        case(UPSTREAM, "ngx_http_upstream_process_downstream", "client timed out", "error", "client timed out")
            .errno(110, "Connection timed out").action(TO_CLIENT).upstream(HTTP).expect(Not(CLIENT)),
        case(UPSTREAM, "ngx_http_upstream_process_header", "upstream prematurely closed connection", "error", "upstream prematurely closed connection")
            .action(HEADER).upstream(FCGI_UNIX).expect(F(ClosedPrematurely, header)),
        case(UPSTREAM, "ngx_http_upstream_process_request", "upstream prematurely closed connection", "error", "upstream prematurely closed connection")
            .action(READING).upstream(HTTP).expect(F(ClosedPrematurely, body)),
        case(UPSTREAM, "ngx_http_upstream_process_header", "upstream prematurely sent response", "error", "upstream prematurely sent response")
            .action(HEADER).upstream(HTTPS).expect(F(PrematurelySent, header)),
        case(UPSTREAM, "ngx_http_upstream_process_header", "upstream sent too big header", "error", "upstream sent too big header")
            .action(HEADER).upstream(FCGI_UNIX).expect(F(HeaderTooBig, header)),
        case(UPSTREAM, "ngx_http_upstream_process_content_length,ngx_http_upstream_process_transfer_encoding", r#"upstream sent \"Content-Length\" and \"Transfer-Encoding\" headers at the same time"#, "error", r#"upstream sent "Content-Length" and "Transfer-Encoding" headers at the same time"#)
            .action(HEADER).upstream(HTTP).expect(F(InvalidHeader, header)),
        case(UPSTREAM, "ngx_http_upstream_process_content_length,ngx_http_upstream_process_transfer_encoding", r#"upstream sent duplicate header line: \"%V: %V\", previous value: \"%V: %V\""#, "error", r#"upstream sent duplicate header line: "Content-Length: 12", previous value: "Content-Length: 10""#)
            .action(HEADER).upstream(FCGI_UNIX).expect(F(InvalidHeader, header)),
        case(UPSTREAM, "ngx_http_upstream_process_header_line,ngx_http_upstream_process_last_modified,ngx_http_upstream_process_expires,ngx_http_upstream_process_accel_expires,ngx_http_upstream_process_limit_rate", r#"upstream sent duplicate header line: \"%V: %V\", previous value: \"%V: %V\", ignored"#, "warn", r#"upstream sent duplicate header line: "Expires: 0", previous value: "Expires: Thu, 19 Nov 1981 08:52:00 GMT", ignored"#)
            .action(HEADER).upstream(FCGI_UNIX).expect(Not(WARNING)),
        case(UPSTREAM, "ngx_http_upstream_process_content_length", r#"upstream sent invalid \"Content-Length\" header: \"%V: %V\""#, "error", r#"upstream sent invalid "Content-Length" header: "Content-Length: -1""#)
            .action(HEADER).upstream(HTTP).expect(F(InvalidHeader, header)),
        case(UPSTREAM, "ngx_http_upstream_process_transfer_encoding", r#"upstream sent unknown \"Transfer-Encoding\": \"%V\""#, "error", r#"upstream sent unknown "Transfer-Encoding": "gzip, chunked""#)
            .action(HEADER).upstream(HTTP).expect(F(InvalidHeader, header)),
        case(UPSTREAM, "ngx_http_upstream_non_buffered_filter", r#"upstream sent more data than specified in \"Content-Length\" header"#, "warn", r#"upstream sent more data than specified in "Content-Length" header"#)
            .action(READING).upstream(HTTP).expect(Not(WARNING)),
        case(UPSTREAM, "ngx_http_upstream_ssl_handshake", r#"upstream SSL certificate does not match \"%V\""#, "error", r#"upstream SSL certificate does not match "backend.internal""#)
            .action(TLS).upstream(HTTPS).expect(F(SslFailed, tls)),
        // `(%l:%s)` is X509's verify result, not an errno.
        case(UPSTREAM, "ngx_http_upstream_ssl_handshake", "upstream SSL certificate verify error: (%l:%s)", "error", "upstream SSL certificate verify error: (10:certificate has expired)")
            .action(TLS).upstream(HTTPS).expect(F(SslFailed, tls)),
        case(UPSTREAM, "ngx_http_upstream_ssl_name", r#"SSL_set_tlsext_host_name(\"%s\") failed"#, "error", r#"SSL_set_tlsext_host_name("backend.internal") failed"#)
            .action(TLS).upstream(HTTPS).expect(Not(OWN_500)),
        // The resolver's number is an rcode (ngx_resolver_strerror), kept in the message.
        case(UPSTREAM, "ngx_http_upstream_resolve_handler", "%V could not be resolved (%i: %s)", "error", "php-fpm could not be resolved (3: Host not found)")
            .expect(F(ResolveFailed, resolve)),
        case(UPSTREAM, "ngx_http_upstream_resolve_handler", "%V could not be resolved (%i: %s)", "error", "backend.internal could not be resolved (110: Operation timed out)")
            .expect(F(ResolveFailed, resolve)),
        case(UPSTREAM, "ngx_http_upstream_init_request", "no resolver defined to resolve %V", "error", "no resolver defined to resolve app.internal")
            .expect(F(ResolveFailed, resolve)),
        case(UPSTREAM, "ngx_http_upstream_init_request", r#"no port in upstream \"%V\""#, "error", r#"no port in upstream "backend""#)
            .expect(Not(OWN_500)),
        case(UPSTREAM, "ngx_http_upstream_init_request", "no upstream configuration", "alert", "no upstream configuration")
            .expect(Not(OWN_500)),
        case(UPSTREAM, "ngx_http_upstream_cache", "%V_buffer_size %uz is not enough for cache key, it should be increased to at least %uz", "error", "fastcgi_buffer_size 4096 is not enough for cache key, it should be increased to at least 4352")
            .upstream(FCGI_UNIX).expect(Not(OWN_500)),
        case(UPSTREAM, "ngx_http_upstream_cache_get", r#"cache \"%V\" not found"#, "error", r#"cache "pages" not found"#)
            .expect(Not(OWN_500)),
        case(UPSTREAM, "ngx_http_upstream_cache_send", r#"cache file \"%s\" contains invalid header"#, "crit", r#"cache file "/var/cache/nginx/3/4f/a1b2c3d4e5f60718293a4b5c6d7e84f3" contains invalid header"#)
            .expect(Not(OWN_500)),
        case(UPSTREAM, "ngx_http_upstream_check_broken_connection", "client prematurely closed connection", "info", "client prematurely closed connection")
            .errno(104, "Connection reset by peer").action(HEADER).upstream(FCGI_UNIX).expect(Not(CLIENT)),
        case(UPSTREAM, "ngx_http_upstream_check_broken_connection", "client prematurely closed connection, so upstream connection is closed too", "info", "client prematurely closed connection, so upstream connection is closed too")
            .action(HEADER).upstream(FCGI_UNIX).expect(Not(CLIENT)),
        case(UPSTREAM, "ngx_http_upstream_check_broken_connection", "epoll_wait() reported that client prematurely closed connection", "info", "epoll_wait() reported that client prematurely closed connection")
            .action(HEADER).upstream(FCGI_UNIX).expect(Not(CLIENT)),
        case(UPSTREAM, "ngx_http_upstream_check_broken_connection", "epoll_wait() reported that client prematurely closed connection, so upstream connection is closed too", "info", "epoll_wait() reported that client prematurely closed connection, so upstream connection is closed too")
            .action(HEADER).upstream(FCGI_UNIX).expect(Not(CLIENT)),
        case(UPSTREAM, "ngx_http_upstream_check_broken_connection", "kevent() reported that client prematurely closed connection", "info", "kevent() reported that client prematurely closed connection")
            .errno(54, "Connection reset by peer").action(HEADER).upstream(FCGI_UNIX).expect(Not(CLIENT)),
        case(UPSTREAM, "ngx_http_upstream_check_broken_connection", "kevent() reported that client prematurely closed connection, so upstream connection is closed too", "info", "kevent() reported that client prematurely closed connection, so upstream connection is closed too")
            .errno(54, "Connection reset by peer").action(HEADER).upstream(FCGI_UNIX).expect(Not(CLIENT)),
        case(UPSTREAM, "ngx_http_upstream_upgrade", "connection upgrade in subrequest", "error", "connection upgrade in subrequest")
            .action(HEADER).upstream(HTTP).expect(Not(OWN_500)),
        case(UPSTREAM, "ngx_http_upstream_set_local", r#"invalid local address \"%V\""#, "error", r#"invalid local address "10.0.0.300""#)
            .expect(Not(OWN_500)),
        case(UPSTREAM, "ngx_http_upstream_send_request", "setsockopt(!TCP_CORK) failed", "crit", "setsockopt(!TCP_CORK) failed")
            .errno(9, "Bad file descriptor").action(SENDING).upstream(HTTP).expect(Not(OWN_500)),
        case(UPSTREAM, "ngx_http_upstream_thread_event_handler", "thread operation took too long", "alert", "thread operation took too long")
            .action(READING).upstream(HTTP).expect(Not(OWN_500)),
        case(UPSTREAM, "ngx_http_upstream_thread_handler", r#"thread pool \"%V\" not found"#, "error", r#"thread pool "default" not found"#)
            .action(READING).upstream(HTTP).expect(Not(OWN_500)),
        case(UPSTREAM, "ngx_http_upstream_finalize_request", r#"unlink() \"%s\" failed"#, "crit", r#"unlink() "/var/cache/nginx/temp/0000000042" failed"#)
            .errno(2, "No such file or directory").action(TO_CLIENT).upstream(HTTP).expect(Not(OWN_500)),

        // ---- src/http/ngx_http_upstream_round_robin.c ----
        case(RR, "ngx_http_upstream_free_round_robin_peer", "upstream server temporarily disabled", "warn", "upstream server temporarily disabled")
            .action(CONNECTING).upstream(FCGI_TCP).expect(Not("follows the failure that disabled the peer; not a failure by itself")),

        // ---- src/http/modules/ngx_http_fastcgi_module.c ----
        case(FASTCGI, "ngx_http_fastcgi_process_header,ngx_http_fastcgi_input_filter,ngx_http_fastcgi_non_buffered_filter", r#"FastCGI sent in stderr: \"%*s\""#, "error", "FastCGI sent in stderr: \"PHP message: PHP Fatal error:  Allowed memory size of 134217728 bytes exhausted (tried to allocate 20480 bytes) in /var/www/html/index.php on line 12\"")
            .action(HEADER).upstream(FCGI_UNIX).expect(Stderr),
        // The FastCGI server ended stdout (an empty STDOUT record) before a complete
        // header: NGINX returns NGX_HTTP_UPSTREAM_INVALID_HEADER. The server is alive
        // and ended the stream itself, so this is a protocol error, not a dead worker.
        case(FASTCGI, "ngx_http_fastcgi_process_header,ngx_http_fastcgi_input_filter", "upstream prematurely closed FastCGI stdout", "error", "upstream prematurely closed FastCGI stdout")
            .action(HEADER).upstream(FCGI_UNIX).expect(F(ProtocolError, header)),
        case(FASTCGI, "ngx_http_fastcgi_input_filter,ngx_http_fastcgi_non_buffered_filter", "upstream prematurely closed FastCGI request", "error", "upstream prematurely closed FastCGI request")
            .action(READING).upstream(FCGI_UNIX).expect(F(ProtocolError, body)),
        // 72 is 'H': an HTTP server answered on the FastCGI port.
        case(FASTCGI, "ngx_http_fastcgi_process_record", "upstream sent unsupported FastCGI protocol version: %d", "error", "upstream sent unsupported FastCGI protocol version: 72")
            .action(HEADER).upstream(FCGI_TCP).expect(F(ProtocolError, header)),
        case(FASTCGI, "ngx_http_fastcgi_process_record", "upstream sent invalid FastCGI record type: %d", "error", "upstream sent invalid FastCGI record type: 2")
            .action(HEADER).upstream(FCGI_TCP).expect(F(ProtocolError, header)),
        case(FASTCGI, "ngx_http_fastcgi_process_header", "upstream sent unexpected FastCGI record: %ui", "error", "upstream sent unexpected FastCGI record: 3")
            .action(HEADER).upstream(FCGI_UNIX).expect(F(ProtocolError, header)),
        case(FASTCGI, "ngx_http_fastcgi_process_record", "upstream sent unexpected FastCGI request id high byte: %d", "error", "upstream sent unexpected FastCGI request id high byte: 1")
            .action(HEADER).upstream(FCGI_UNIX).expect(F(ProtocolError, header)),
        case(FASTCGI, "ngx_http_fastcgi_process_record", "upstream sent unexpected FastCGI request id low byte: %d", "error", "upstream sent unexpected FastCGI request id low byte: 2")
            .action(HEADER).upstream(FCGI_UNIX).expect(F(ProtocolError, header)),
        case(FASTCGI, "ngx_http_fastcgi_process_header", r#"upstream sent invalid header: \"%*s\\x%02xd...\""#, "error", r#"upstream sent invalid header: "X-Debug\x0D...""#)
            .action(HEADER).upstream(FCGI_UNIX).expect(F(InvalidHeader, header)),
        case(FASTCGI, "ngx_http_fastcgi_process_header", r#"upstream sent invalid status \"%V\""#, "error", r#"upstream sent invalid status "abc OK""#)
            .action(HEADER).upstream(FCGI_UNIX).expect(F(InvalidHeader, header)),
        case(FASTCGI, "ngx_http_fastcgi_input_filter,ngx_http_fastcgi_non_buffered_filter", r#"upstream sent more data than specified in \"Content-Length\" header"#, "warn", r#"upstream sent more data than specified in "Content-Length" header"#)
            .action(READING).upstream(FCGI_UNIX).expect(Not(WARNING)),
        case(FASTCGI, "ngx_http_fastcgi_eval", r#"%s in upstream \"%V\""#, "error", r#"invalid port in upstream "127.0.0.1:90a0""#)
            .expect(Not(OWN_500)),
        case(FASTCGI, "ngx_http_fastcgi_create_request", "fastcgi request record is too big: %uz", "alert", "fastcgi request record is too big: 70000")
            .expect(Not(OWN_500)),
        case(FASTCGI, "ngx_http_fastcgi_process_header", "invalid header after joining FastCGI records", "alert", "invalid header after joining FastCGI records")
            .action(HEADER).upstream(FCGI_UNIX).expect(Not(OWN_500)),
        case(FASTCGI, "ngx_http_fastcgi_split", r#"pcre2_match() failed: %i on \"%V\" using \"%V\""#, "alert", r#"pcre2_match() failed: -47 on "/index.php/x" using "^(.+\.php)(/.+)$""#)
            .expect(Not(OWN_500)),

        // ---- src/http/modules/ngx_http_proxy_module.c ----
        case(PROXY, "ngx_http_proxy_process_status_line", "upstream sent no valid HTTP/1.0 header", "error", "upstream sent no valid HTTP/1.0 header")
            .action(HEADER).upstream(HTTP).expect(F(InvalidHeader, header)),
        case(PROXY, "ngx_http_proxy_process_header", r#"upstream sent invalid header: \"%*s\\x%02xd...\""#, "error", r#"upstream sent invalid header: "Set-Cookie: a=b\x00...""#)
            .action(HEADER).upstream(HTTP).expect(F(InvalidHeader, header)),
        case(PROXY, "ngx_http_proxy_chunked_filter,ngx_http_proxy_non_buffered_chunked_filter", "upstream sent invalid chunked response", "error", "upstream sent invalid chunked response")
            .action(READING).upstream(HTTP).expect(F(ProtocolError, body)),
        case(PROXY, "ngx_http_proxy_process_trailer", r#"upstream sent invalid trailer: \"%*s\\x%02xd...\""#, "error", r#"upstream sent invalid trailer: "X-Checksum\x01...""#)
            .action(READING).upstream(HTTP).expect(F(InvalidHeader, body)),
        case(PROXY, "ngx_http_proxy_process_trailer", "upstream sent too big trailers", "error", "upstream sent too big trailers")
            .action(READING).upstream(HTTP).expect(F(InvalidHeader, body)),
        case(PROXY, "ngx_http_proxy_chunked_filter,ngx_http_proxy_non_buffered_chunked_filter", "upstream sent data after final chunk", "warn", "upstream sent data after final chunk")
            .action(READING).upstream(HTTP).expect(Not(WARNING)),
        case(PROXY, "ngx_http_proxy_chunked_filter,ngx_http_proxy_non_buffered_chunked_filter", "upstream sent data after trailers", "warn", "upstream sent data after trailers")
            .action(READING).upstream(HTTP).expect(Not(WARNING)),
        case(PROXY, "ngx_http_proxy_copy_filter,ngx_http_proxy_non_buffered_copy_filter", r#"upstream sent more data than specified in \"Content-Length\" header"#, "warn", r#"upstream sent more data than specified in "Content-Length" header"#)
            .action(READING).upstream(HTTP).expect(Not(WARNING)),
        case(PROXY, "ngx_http_proxy_eval", r#"%s in upstream \"%V\""#, "error", r#"no host in upstream "http://""#)
            .expect(Not(OWN_500)),
        case(PROXY, "ngx_http_proxy_eval", r#"invalid URL prefix in \"%V\""#, "error", r#"invalid URL prefix in "backend:3000""#)
            .expect(Not(OWN_500)),
        case(PROXY, "ngx_http_proxy_create_request", "zero length URI to proxy", "error", "zero length URI to proxy")
            .expect(Not(OWN_500)),

        // ---- src/http/modules/ngx_http_uwsgi_module.c ----
        case(UWSGI_M, "ngx_http_uwsgi_process_header", r#"upstream sent invalid header: \"%*s\\x%02xd...\""#, "error", r#"upstream sent invalid header: "Content-Type text/html\x0A...""#)
            .action(HEADER).upstream(UWSGI).expect(F(InvalidHeader, header)),
        case(UWSGI_M, "ngx_http_uwsgi_process_header", r#"upstream sent invalid status \"%V\""#, "error", r#"upstream sent invalid status "OK""#)
            .action(HEADER).upstream(UWSGI).expect(F(InvalidHeader, header)),
        case(UWSGI_M, "ngx_http_uwsgi_eval", r#"%s in upstream \"%V\""#, "error", r#"no host in upstream """#)
            .expect(Not(OWN_500)),
        case(UWSGI_M, "ngx_http_uwsgi_eval", "suwsgi protocol requires SSL support", "error", "suwsgi protocol requires SSL support")
            .expect(Not(OWN_500)),
        case(UWSGI_M, "ngx_http_uwsgi_create_request", "uwsgi request is too big: %uz", "error", "uwsgi request is too big: 70000")
            .expect(Not(OWN_500)),
        case(UWSGI_M, "ngx_http_uwsgi_create_request", "uwsgi request is too little: %uz", "error", "uwsgi request is too little: 2")
            .expect(Not(OWN_500)),

        // ---- src/http/modules/ngx_http_scgi_module.c ----
        case(SCGI_M, "ngx_http_scgi_process_header", r#"upstream sent invalid header: \"%*s\\x%02xd...\""#, "error", r#"upstream sent invalid header: "Status\x0D...""#)
            .action(HEADER).upstream(SCGI).expect(F(InvalidHeader, header)),
        case(SCGI_M, "ngx_http_scgi_process_header", r#"upstream sent invalid status \"%V\""#, "error", r#"upstream sent invalid status "2000 OK""#)
            .action(HEADER).upstream(SCGI).expect(F(InvalidHeader, header)),
        case(SCGI_M, "ngx_http_scgi_eval", r#"%s in upstream \"%V\""#, "error", r#"invalid port in upstream "127.0.0.1:x""#)
            .expect(Not(OWN_500)),

        // ---- src/http/modules/ngx_http_grpc_module.c: HTTP/2 framing and headers ----
        case(GRPC_M, "ngx_http_grpc_filter_init,ngx_http_grpc_filter", "upstream prematurely closed stream", "error", "upstream prematurely closed stream")
            .action(READING).upstream(GRPC).expect(F(ProtocolError, body)),
        case(GRPC_M, "ngx_http_grpc_process_header,ngx_http_grpc_filter", "upstream rejected request with error %ui", "error", "upstream rejected request with error 7")
            .action(HEADER).upstream(GRPC).expect(F(ProtocolError, header)),
        case(GRPC_M, "ngx_http_grpc_process_header,ngx_http_grpc_filter", "upstream sent goaway with error %ui", "error", "upstream sent goaway with error 2")
            .action(HEADER).upstream(GRPC).expect(F(ProtocolError, header)),
        case(GRPC_M, "ngx_http_grpc_process_header,ngx_http_grpc_filter", "upstream sent unexpected http2 frame: %d", "error", "upstream sent unexpected http2 frame: 9")
            .action(HEADER).upstream(GRPC).expect(F(ProtocolError, header)),
        case(GRPC_M, "ngx_http_grpc_process_header,ngx_http_grpc_filter", "upstream sent frame for unknown stream %ui", "error", "upstream sent frame for unknown stream 3")
            .action(HEADER).upstream(GRPC).expect(F(ProtocolError, header)),
        case(GRPC_M, "ngx_http_grpc_filter", "upstream sent frame for closed stream %ui", "error", "upstream sent frame for closed stream 1")
            .action(READING).upstream(GRPC).expect(F(ProtocolError, body)),
        case(GRPC_M, "ngx_http_grpc_filter", "upstream sent data frame for unknown stream %ui", "error", "upstream sent data frame for unknown stream 5")
            .action(READING).upstream(GRPC).expect(F(ProtocolError, body)),
        case(GRPC_M, "ngx_http_grpc_process_header,ngx_http_grpc_filter", "upstream sent unexpected push promise frame", "error", "upstream sent unexpected push promise frame")
            .action(HEADER).upstream(GRPC).expect(F(ProtocolError, header)),
        case(GRPC_M, "ngx_http_grpc_filter", "upstream violated stream flow control, received %uz data frame with window %uz", "error", "upstream violated stream flow control, received 70000 data frame with window 65535")
            .action(READING).upstream(GRPC).expect(F(ProtocolError, body)),
        case(GRPC_M, "ngx_http_grpc_filter", "upstream violated connection flow control, received %uz data frame with window %uz", "error", "upstream violated connection flow control, received 70000 data frame with window 65535")
            .action(READING).upstream(GRPC).expect(F(ProtocolError, body)),
        case(GRPC_M, "ngx_http_grpc_filter", "upstream sent trailer without end stream flag", "error", "upstream sent trailer without end stream flag")
            .action(READING).upstream(GRPC).expect(F(ProtocolError, body)),
        case(GRPC_M, "ngx_http_grpc_filter", "upstream sent response body larger than indicated content length", "error", "upstream sent response body larger than indicated content length")
            .action(READING).upstream(GRPC).expect(F(ProtocolError, body)),
        case(GRPC_M, "ngx_http_grpc_filter", "upstream sent too short http2 frame", "error", "upstream sent too short http2 frame")
            .action(READING).upstream(GRPC).expect(F(ProtocolError, body)),
        case(GRPC_M, "ngx_http_grpc_filter,ngx_http_grpc_parse_header", "upstream sent http2 frame with too long padding: %d in frame %uz", "error", "upstream sent http2 frame with too long padding: 200 in frame 100")
            .action(HEADER).upstream(GRPC).expect(F(ProtocolError, header)),
        case(GRPC_M, "ngx_http_grpc_parse_frame", "upstream sent too large http2 frame: %uz", "error", "upstream sent too large http2 frame: 16777215")
            .action(HEADER).upstream(GRPC).expect(F(ProtocolError, header)),
        case(GRPC_M, "ngx_http_grpc_parse_header", "upstream sent headers frame with invalid length: %uz", "error", "upstream sent headers frame with invalid length: 0")
            .action(HEADER).upstream(GRPC).expect(F(ProtocolError, header)),
        case(GRPC_M, "ngx_http_grpc_parse_header", "upstream sent truncated http2 header", "error", "upstream sent truncated http2 header")
            .action(HEADER).upstream(GRPC).expect(F(ProtocolError, header)),
        case(GRPC_M, "ngx_http_grpc_parse_fragment", "upstream sent invalid http2 table index: %ui", "error", "upstream sent invalid http2 table index: 99")
            .action(HEADER).upstream(GRPC).expect(F(ProtocolError, header)),
        case(GRPC_M, "ngx_http_grpc_parse_fragment", "upstream sent invalid http2 dynamic table size update: %ui", "error", "upstream sent invalid http2 dynamic table size update: 8192")
            .action(HEADER).upstream(GRPC).expect(F(ProtocolError, header)),
        case(GRPC_M, "ngx_http_grpc_parse_fragment", "upstream sent http2 table index with continuation flag", "error", "upstream sent http2 table index with continuation flag")
            .action(HEADER).upstream(GRPC).expect(F(ProtocolError, header)),
        case(GRPC_M, "ngx_http_grpc_parse_fragment", "upstream sent zero http2 header name length", "error", "upstream sent zero http2 header name length")
            .action(HEADER).upstream(GRPC).expect(F(ProtocolError, header)),
        case(GRPC_M, "ngx_http_grpc_parse_fragment", "upstream sent too large http2 header name length", "error", "upstream sent too large http2 header name length")
            .action(HEADER).upstream(GRPC).expect(F(ProtocolError, header)),
        case(GRPC_M, "ngx_http_grpc_parse_fragment", "upstream sent too large http2 header value length", "error", "upstream sent too large http2 header value length")
            .action(HEADER).upstream(GRPC).expect(F(ProtocolError, header)),
        case(GRPC_M, "ngx_http_grpc_parse_fragment", "upstream sent invalid encoded header", "error", "upstream sent invalid encoded header")
            .action(HEADER).upstream(GRPC).expect(F(ProtocolError, header)),
        case(GRPC_M, "ngx_http_grpc_parse_rst_stream", "upstream sent rst stream frame with invalid length: %uz", "error", "upstream sent rst stream frame with invalid length: 8")
            .action(HEADER).upstream(GRPC).expect(F(ProtocolError, header)),
        case(GRPC_M, "ngx_http_grpc_parse_goaway", "upstream sent goaway frame with non-zero stream id: %ui", "error", "upstream sent goaway frame with non-zero stream id: 1")
            .action(HEADER).upstream(GRPC).expect(F(ProtocolError, header)),
        case(GRPC_M, "ngx_http_grpc_parse_goaway", "upstream sent goaway frame with invalid length: %uz", "error", "upstream sent goaway frame with invalid length: 4")
            .action(HEADER).upstream(GRPC).expect(F(ProtocolError, header)),
        case(GRPC_M, "ngx_http_grpc_parse_window_update", "upstream sent window update frame with invalid length: %uz", "error", "upstream sent window update frame with invalid length: 3")
            .action(READING).upstream(GRPC).expect(F(ProtocolError, body)),
        case(GRPC_M, "ngx_http_grpc_parse_window_update", "upstream sent too large window update", "error", "upstream sent too large window update")
            .action(READING).upstream(GRPC).expect(F(ProtocolError, body)),
        case(GRPC_M, "ngx_http_grpc_parse_settings", "upstream sent settings frame with non-zero stream id: %ui", "error", "upstream sent settings frame with non-zero stream id: 1")
            .action(HEADER).upstream(GRPC).expect(F(ProtocolError, header)),
        case(GRPC_M, "ngx_http_grpc_parse_settings", "upstream sent settings frame with ack flag and non-zero length: %uz", "error", "upstream sent settings frame with ack flag and non-zero length: 6")
            .action(HEADER).upstream(GRPC).expect(F(ProtocolError, header)),
        case(GRPC_M, "ngx_http_grpc_parse_settings", "upstream sent settings frame with invalid length: %uz", "error", "upstream sent settings frame with invalid length: 5")
            .action(HEADER).upstream(GRPC).expect(F(ProtocolError, header)),
        case(GRPC_M, "ngx_http_grpc_parse_settings", "upstream sent settings frame with too large initial window size: %ui", "error", "upstream sent settings frame with too large initial window size: 2147483648")
            .action(HEADER).upstream(GRPC).expect(F(ProtocolError, header)),
        case(GRPC_M, "ngx_http_grpc_parse_settings", "upstream sent too many settings frames", "error", "upstream sent too many settings frames")
            .action(HEADER).upstream(GRPC).expect(F(ProtocolError, header)),
        case(GRPC_M, "ngx_http_grpc_parse_ping", "upstream sent ping frame with non-zero stream id: %ui", "error", "upstream sent ping frame with non-zero stream id: 1")
            .action(READING).upstream(GRPC).expect(F(ProtocolError, body)),
        case(GRPC_M, "ngx_http_grpc_parse_ping", "upstream sent ping frame with invalid length: %uz", "error", "upstream sent ping frame with invalid length: 4")
            .action(READING).upstream(GRPC).expect(F(ProtocolError, body)),
        case(GRPC_M, "ngx_http_grpc_parse_ping", "upstream sent ping frame with ack flag", "error", "upstream sent ping frame with ack flag")
            .action(READING).upstream(GRPC).expect(F(ProtocolError, body)),
        case(GRPC_M, "ngx_http_grpc_parse_ping", "upstream sent too many ping frames", "error", "upstream sent too many ping frames")
            .action(READING).upstream(GRPC).expect(F(ProtocolError, body)),
        case(GRPC_M, "ngx_http_grpc_process_header", r#"upstream sent invalid header \"%V: %V\""#, "error", r#"upstream sent invalid header "x-status: 200""#)
            .action(HEADER).upstream(GRPC).expect(F(InvalidHeader, header)),
        case(GRPC_M, "ngx_http_grpc_parse_fragment", r#"upstream sent invalid header: \"%V: %V\""#, "error", r#"upstream sent invalid header: "Content-Type: application/grpc""#)
            .action(HEADER).upstream(GRPC).expect(F(InvalidHeader, header)),
        case(GRPC_M, "ngx_http_grpc_process_header", "upstream sent invalid header", "error", "upstream sent invalid header")
            .action(HEADER).upstream(GRPC).expect(F(InvalidHeader, header)),
        case(GRPC_M, "ngx_http_grpc_process_header", "upstream sent duplicate :status header", "error", "upstream sent duplicate :status header")
            .action(HEADER).upstream(GRPC).expect(F(InvalidHeader, header)),
        case(GRPC_M, "ngx_http_grpc_process_header", r#"upstream sent invalid :status \"%V\""#, "error", r#"upstream sent invalid :status "20""#)
            .action(HEADER).upstream(GRPC).expect(F(InvalidHeader, header)),
        case(GRPC_M, "ngx_http_grpc_process_header", r#"upstream sent unexpected :status \"%V\""#, "error", r#"upstream sent unexpected :status "101""#)
            .action(HEADER).upstream(GRPC).expect(F(InvalidHeader, header)),
        case(GRPC_M, "ngx_http_grpc_process_header", "upstream sent no :status header", "error", "upstream sent no :status header")
            .action(HEADER).upstream(GRPC).expect(F(InvalidHeader, header)),
        case(GRPC_M, "ngx_http_grpc_filter", r#"upstream sent invalid trailer \"%V: %V\""#, "error", r#"upstream sent invalid trailer ":status: 200""#)
            .action(READING).upstream(GRPC).expect(F(InvalidHeader, body)),
        case(GRPC_M, "ngx_http_grpc_filter", "upstream sent invalid trailer", "error", "upstream sent invalid trailer")
            .action(READING).upstream(GRPC).expect(F(InvalidHeader, body)),
        case(GRPC_M, "ngx_http_grpc_eval", r#"%s in upstream \"%V\""#, "error", r#"no host in upstream """#)
            .expect(Not(OWN_500)),
        case(GRPC_M, "ngx_http_grpc_eval", "grpcs protocol requires SSL support", "error", "grpcs protocol requires SSL support")
            .expect(Not(OWN_500)),
        case(GRPC_M, "ngx_http_grpc_get_connection_data", "no connection data found for keepalive http2 connection", "error", "no connection data found for keepalive http2 connection")
            .action(SENDING).upstream(GRPC).expect(Not(OWN_500)),

        // ---- src/event/ngx_event_openssl.c: TLS to the upstream ----
        case(SSL, "ngx_ssl_handshake", "SSL_do_handshake() failed", "error", "SSL_do_handshake() failed (SSL: error:0A00010B:SSL routines::wrong version number)")
            .action(TLS).upstream(HTTPS).expect(F(SslFailed, tls)),
        case(SSL, "ngx_ssl_handshake", "SSL_do_handshake() failed", "crit", "SSL_do_handshake() failed (SSL: error:14094410:SSL routines:ssl3_read_bytes:sslv3 alert handshake failure:SSL alert number 40)")
            .action(TLS).upstream(HTTPS).expect(F(SslFailed, tls)),
        case(SSL, "ngx_ssl_handshake", "SSL_do_handshake() failed", "error", "SSL_do_handshake() failed")
            .errno(104, "Connection reset by peer").action(TLS).upstream(HTTPS).expect(F(SslFailed, tls)),
        // The same call for NGINX's own TLS server: the action has no "to upstream".
        case(SSL, "ngx_ssl_handshake", "SSL_do_handshake() failed", "crit", "SSL_do_handshake() failed (SSL: error:0A00006C:SSL routines::bad key share)")
            .action("SSL handshaking").expect(ClientSide),
        case(SSL, "ngx_ssl_handshake,ngx_ssl_try_early_data", "peer closed connection in SSL handshake", "error", "peer closed connection in SSL handshake")
            .action(TLS).upstream(HTTPS).expect(F(SslFailed, tls)),
        case(SSL, "ngx_ssl_handshake,ngx_ssl_try_early_data", "peer closed connection in SSL handshake", "error", "peer closed connection in SSL handshake")
            .errno(104, "Connection reset by peer").action(TLS).upstream(HTTPS).expect(F(SslFailed, tls)),
        case(SSL, "ngx_ssl_handle_recv", "SSL_read() failed", "error", "SSL_read() failed (SSL: error:0A000126:SSL routines::unexpected eof while reading)")
            .action(READING).upstream(HTTPS).expect(F(RecvFailed, body)),
        case(SSL, "ngx_ssl_handle_recv", "SSL_read() failed", "error", "SSL_read() failed")
            .errno(104, "Connection reset by peer").action(HEADER).upstream(HTTPS).expect(F(Reset, header)),
        case(SSL, "ngx_ssl_write", "SSL_write() failed", "error", "SSL_write() failed")
            .errno(32, "Broken pipe").action(SENDING).upstream(HTTPS).expect(F(SendFailed, send)),
        case(SSL, "ngx_ssl_write", "SSL_write() failed", "crit", "SSL_write() failed (SSL: error:0A00007F:SSL routines::bad write retry)")
            .action(SENDING).upstream(HTTPS).expect(F(SendFailed, send)),
        case(SSL, "ngx_ssl_write", "SSL_write() failed", "info", "SSL_write() failed")
            .errno(32, "Broken pipe").action(TO_CLIENT).upstream(HTTPS).expect(ClientSide),
        case(SSL, "ngx_ssl_sendfile", "SSL_sendfile() failed", "error", "SSL_sendfile() failed")
            .errno(104, "Connection reset by peer").action(SENDING).upstream(HTTPS).expect(F(Reset, send)),
        case(SSL, "ngx_ssl_recv", "ioctl(FIONREAD) failed", "alert", "ioctl(FIONREAD) failed")
            .errno(9, "Bad file descriptor").action(HEADER).upstream(HTTPS).expect(F(RecvFailed, header)),
        case(SSL, "ngx_ssl_shutdown", "SSL_shutdown() failed", "crit", "SSL_shutdown() failed (SSL: error:0A000197:SSL routines::shutdown while in init)")
            .action(READING).upstream(HTTPS).expect(Not("closing the connection after the response; the response is not failed")),
        case(SSL, "ngx_ssl_sendfile", "SSL_sendfile() not available", "alert", "SSL_sendfile() not available")
            .action(TO_CLIENT).expect(Not(OWN_500)),
        case(SSL, "ngx_ssl_sendfile", r#"SSL_sendfile() reported that \"%s\" was truncated at %O"#, "alert", r#"SSL_sendfile() reported that "/var/www/html/big.iso" was truncated at 1048576"#)
            .action(TO_CLIENT).expect(Not("a local file changed while NGINX sent it")),
        case(SSL, "ngx_ssl_try_early_data", "SSL_read_early_data() failed", "crit", "SSL_read_early_data() failed (SSL: error:0A0000F4:SSL routines::unexpected message)")
            .action("SSL handshaking").expect(Not(SERVER_TLS)),
        case(SSL, "ngx_ssl_write_early", "SSL_write_early_data() failed", "crit", "SSL_write_early_data() failed")
            .errno(32, "Broken pipe").action(TO_CLIENT).expect(Not(SERVER_TLS)),
        case(SSL, "ngx_ssl_handshake", "handshake rejected", "info", "handshake rejected")
            .action("SSL handshaking").expect(Not(SERVER_TLS)),
        case(SSL, "ngx_ssl_handle_recv", "SSL renegotiation disabled", "notice", "SSL renegotiation disabled")
            .action("reading client request headers").expect(Not(DEBUG_OR_NOTICE)),
        case(SSL, "ngx_ssl_handle_recv", "ignoring stale global SSL error", "debug", "ignoring stale global SSL error (SSL: error:0A000126:SSL routines::unexpected eof while reading)")
            .action(READING).upstream(HTTPS).expect(Not(DEBUG_OR_NOTICE)),

        // ---- src/event/ngx_event_pipe.c (buffered response body) ----
        // FreeBSD numbers: 54 is ECONNRESET there.
        case(PIPE, "ngx_event_pipe_read_upstream", "kevent() reported that upstream closed connection", "error", "kevent() reported that upstream closed connection")
            .errno(54, "Connection reset by peer").action(TO_CLIENT).upstream(HTTP).expect(F(RecvFailed, body)),
        case(PIPE, "ngx_event_pipe_copy_input_filter", r#"upstream sent more data than specified in \"Content-Length\" header"#, "warn", r#"upstream sent more data than specified in "Content-Length" header"#)
            .action(TO_CLIENT).upstream(HTTP).expect(Not(WARNING)),
        case(PIPE, "ngx_event_pipe_write_to_downstream", "recycled buffer in pipe out chain", "alert", "recycled buffer in pipe out chain")
            .action(TO_CLIENT).upstream(HTTP).expect(Not(OWN_500)),

        // ---- src/os/unix: the socket calls on the upstream connection ----
        case(RECV, "ngx_unix_recv", "recv() failed", "error", "recv() failed")
            .errno(104, "Connection reset by peer").action(HEADER).upstream(FCGI_UNIX).expect(F(Reset, header)),
        // Asynchronous connect refused, seen at the first read.
        case(RECV, "ngx_unix_recv", "recv() failed", "error", "recv() failed")
            .errno(111, "Connection refused").action(HEADER).upstream(FCGI_TCP).expect(F(RecvFailed, header)),
        case(RECV, "ngx_unix_recv", "recv() failed", "info", "recv() failed")
            .errno(104, "Connection reset by peer").action("reading client request headers").expect(ClientSide),
        case(RECV, "ngx_unix_recv", "ioctl(FIONREAD) failed", "alert", "ioctl(FIONREAD) failed")
            .errno(9, "Bad file descriptor").action(HEADER).upstream(HTTP).expect(F(RecvFailed, header)),
        case(RECV, "ngx_unix_recv", "kevent() reported about an closed connection", "error", "kevent() reported about an closed connection")
            .errno(54, "Connection reset by peer").action(HEADER).upstream(FCGI_TCP).expect(F(RecvFailed, header)),
        case(READV, "ngx_readv_chain", "readv() failed", "error", "readv() failed")
            .errno(104, "Connection reset by peer").action(READING).upstream(FCGI_UNIX).expect(F(Reset, body)),
        // Buffered proxying reads the upstream while "sending to client".
        case(READV, "ngx_readv_chain", "readv() failed", "error", "readv() failed")
            .errno(104, "Connection reset by peer").action(TO_CLIENT).upstream(HTTP).expect(F(Reset, body)),
        case(READV, "ngx_readv_chain", "ioctl(FIONREAD) failed", "alert", "ioctl(FIONREAD) failed")
            .errno(9, "Bad file descriptor").action(READING).upstream(HTTP).expect(F(RecvFailed, body)),
        case(READV, "ngx_readv_chain", "kevent() reported about an closed connection", "error", "kevent() reported about an closed connection")
            .errno(54, "Connection reset by peer").action(READING).upstream(HTTP).expect(F(RecvFailed, body)),
        case(SEND, "ngx_unix_send", "send() failed", "error", "send() failed")
            .errno(32, "Broken pipe").action(SENDING).upstream(GRPC).expect(F(SendFailed, send)),
        case(SEND, "ngx_unix_send", "send() returned zero", "alert", "send() returned zero")
            .action(SENDING).upstream(HTTP).expect(F(SendFailed, send)),
        // Logged by recv and send alike: without the action it reads as a receive.
        case(SEND, "ngx_unix_send", "kevent() reported about an closed connection", "error", "kevent() reported about an closed connection")
            .errno(32, "Broken pipe").action(SENDING).upstream(HTTP).expect(F(SendFailed, send)).bare(RecvFailed),
        case(WRITEV, "ngx_writev", "writev() failed", "error", "writev() failed")
            .errno(32, "Broken pipe").action(SENDING).upstream(FCGI_UNIX).expect(F(SendFailed, send)),
        case(WRITEV, "ngx_writev", "writev() failed", "error", "writev() failed")
            .errno(104, "Connection reset by peer").action(SENDING).upstream(FCGI_TCP).expect(F(Reset, send)),
        // The client went away while it got the response body.
        case(WRITEV, "ngx_writev", "writev() failed", "info", "writev() failed")
            .errno(32, "Broken pipe").action(TO_CLIENT).upstream(HTTP).expect(ClientSide),
        case(WRITEV, "ngx_writev_chain", "kevent() reported about an closed connection", "error", "kevent() reported about an closed connection")
            .errno(32, "Broken pipe").action(SENDING).upstream(HTTP).expect(F(SendFailed, send)).bare(RecvFailed),
        case(WRITEV, "ngx_writev_chain", "file buf in writev t:%d r:%d f:%d %p %p-%p %p %O-%O", "alert", "file buf in writev t:0 r:0 f:1 0000000000000000 0000000000000000-0000000000000000 000055D1C3A2B8F0 0-4096")
            .action(SENDING).upstream(HTTP).expect(Not(OWN_500)),
        case(WRITEV, "ngx_output_chain_to_iovec", "bad buf in output chain t:%d r:%d f:%d %p %p-%p %p %O-%O", "alert", "bad buf in output chain t:0 r:0 f:0 0000000000000000 0000000000000000-0000000000000000 0000000000000000 0-0")
            .action(SENDING).upstream(HTTP).expect(Not(OWN_500)),
        case(SENDFILE, "ngx_linux_sendfile,ngx_linux_sendfile_thread", "sendfile() failed", "error", "sendfile() failed")
            .errno(32, "Broken pipe").action(SENDING).upstream(FCGI_TCP).expect(F(SendFailed, send)),
        case(SENDFILE, "ngx_linux_sendfile,ngx_linux_sendfile_thread", "sendfile() failed", "info", "sendfile() failed")
            .errno(104, "Connection reset by peer").action("sending response to client").expect(ClientSide),
        case(SENDFILE, "ngx_linux_sendfile,ngx_linux_sendfile_thread", r#"sendfile() reported that \"%s\" was truncated at %O"#, "alert", r#"sendfile() reported that "/var/lib/nginx/body/0000000007" was truncated at 0"#)
            .action(SENDING).upstream(HTTP).expect(Not("a local file changed while NGINX sent it")),
        case(SENDFILE, "ngx_linux_sendfile_chain", "setsockopt(TCP_CORK) failed", "error", "setsockopt(TCP_CORK) failed")
            .errno(104, "Connection reset by peer").action(SENDING).upstream(HTTP).expect(Not(OWN_500)),
        case(SENDFILE, "ngx_linux_sendfile_chain", "setsockopt(TCP_NODELAY) failed", "error", "setsockopt(TCP_NODELAY) failed")
            .errno(104, "Connection reset by peer").action(SENDING).upstream(HTTP).expect(Not(OWN_500)),

        // ---- lines that are not about an upstream at all ----
        case("", "", "", "error", r#"open() "/var/www/html/favicon.ico" failed"#)
            .errno(2, "No such file or directory").expect(Not("a static file, no upstream")),
        case("", "", "", "error", "client intended to send too large body: 10485761 bytes")
            .expect(Not("the client's request body")),
        case("", "", "", "error", r#"directory index of "/var/www/html/" is forbidden"#)
            .expect(Not("a static location")),
    ]
}
