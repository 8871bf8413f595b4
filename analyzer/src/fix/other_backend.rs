//! The fix for a backend that is not PHP-FPM: what to check on that kind of backend
//! (its service, its listen address, its logs) and the NGINX directives of its own
//! module (`proxy_*`, `uwsgi_*`, ...). Never a PHP-FPM command.

use super::{Known, RELOAD_NGINX};
use crate::classify::{timeout_text, OtherBackend, Trouble};
use crate::model::Protocol;
use crate::windows::{DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_READ_TIMEOUT_MS};

/// Where the backend's own account of the failure is.
fn its_logs(b: &OtherBackend) -> &'static str {
    match b.protocol {
        Protocol::Uwsgi => "uWSGI's log (`logto` in its config, or its service's journal)",
        _ => "the backend's own log (`journalctl -u <its service>`, `docker logs <container>`, or its log file)",
    }
}

/// The backend's options that bound its workers and its listen queue.
fn worker_options(b: &OtherBackend) -> &'static str {
    match b.protocol {
        Protocol::Uwsgi => "uWSGI's `processes`/`threads` and `listen` (its backlog)",
        Protocol::Http | Protocol::Https => {
            "the app server's workers (gunicorn `--workers` and `--backlog`, puma `workers`/`threads`, ...)"
        }
        _ => "the backend's worker count and listen backlog",
    }
}

/// The command that shows what listens on the backend's address.
fn listening_check(b: &OtherBackend) -> String {
    let path = b.peer.as_ref().and_then(|p| p.unix_path());
    let port = b
        .peer
        .as_ref()
        .filter(|p| !p.is_unix())
        .and_then(|p| p.as_str().rsplit_once(':'))
        .map(|(_, port)| port);
    match (path, port) {
        (Some(p), _) => format!("`sudo ss -xlp | grep {p}`"),
        (None, Some(port)) => format!("`sudo ss -ltnp | grep :{port}`"),
        _ => "`sudo ss -ltnxp`".to_string(),
    }
}

pub(super) fn fix(k: &Known) -> String {
    let Some(b) = k.facts.other_backend.as_ref() else {
        return String::new();
    };
    let target = b.target();
    let pass = b.directive("pass");
    let path = b.peer.as_ref().and_then(|p| p.unix_path());
    let listening = listening_check(b);
    let logs = its_logs(b);
    let request_path =
        k.f.request
            .as_deref()
            .map(crate::context::request_path)
            .unwrap_or("/slow-endpoint");
    let mut s = match b.trouble {
        Trouble::Refused if path.is_some() => format!(
            "The backend behind {} is not running but left its socket: restart its service (or supervisor) and read {logs} for why it stopped; {listening} shows whether anything listens.",
            path.unwrap_or_default()
        ),
        Trouble::Refused => format!(
            "Start the backend that should listen there (check its service: `systemctl status <its service>` or `docker ps`, and {logs}), or point {pass} at where it really listens ({listening} shows what listens on that port), then {RELOAD_NGINX}."
        ),
        Trouble::NoSocket => format!(
            "Start {} and check that it creates {} (`ls -l {}`); if it runs, find where it listens (its config, {listening}) and point {pass} there, then {RELOAD_NGINX}.",
            b.kind(),
            path.unwrap_or("the socket"),
            path.unwrap_or("<socket>")
        ),
        Trouble::Denied if path.is_some() => format!(
            "Let NGINX's worker user open {p}: `ls -l {p}` and `namei -l {p}` show owner and mode along the path. Have the backend create the socket for a group NGINX's user is in, with mode 660 (uWSGI `chmod-socket = 660` and `chown-socket`, gunicorn `--umask 007` and its group), or add NGINX's user to the socket's group. On SELinux, `sudo ausearch -m avc -ts recent` shows a denial.",
            p = path.unwrap_or_default()
        ),
        Trouble::Denied => "A security policy stopped NGINX from connecting: on SELinux (`getenforce` says Enforcing) `sudo ausearch -m avc -ts recent` shows the denial, and `sudo setsebool -P httpd_can_network_connect 1` allows NGINX's outgoing connections; otherwise check the firewall's output rules.".to_string(),
        Trouble::BacklogFull => format!(
            "Every worker of the backend was busy and its listen queue was full: add workers or make its requests faster ({}); a longer queue only helps within the kernel's `net.core.somaxconn` (`sysctl net.core.somaxconn`).",
            worker_options(b)
        ),
        Trouble::ConnectTimeout => format!(
            "Check that {target} answers from the NGINX host (`nc -vz` to it, firewall rules, the host's state) and that the backend is not overloaded ({}); {} caps the wait ({}).",
            worker_options(b),
            b.directive("connect_timeout"),
            timeout_text(None, DEFAULT_CONNECT_TIMEOUT_MS)
        ),
        Trouble::ConnectError(_) => format!(
            "Check the network path from the NGINX host to {target} (`ip route get`, `nc -vz`); when NGINX runs out of local ports, keep connections to the backend open (`keepalive` in its `upstream {{}}` block, with `proxy_http_version 1.1;` and an empty `Connection` header for HTTP)."
        ),
        Trouble::ReadTimeout => {
            // Without the protocol, the example names proxy_pass's directive.
            let prefix = b.prefix().unwrap_or("proxy");
            let now = timeout_text(k.facts.read_timeout.as_ref(), DEFAULT_READ_TIMEOUT_MS);
            format!(
                "Find why {target} was slow on {request_path} (in {logs}: slow queries, a stuck worker, an external call). If that endpoint is meant to be slow, raise the timeout for it only: `location = {request_path} {{ {prefix}_read_timeout 300s; ... }}` ({} is {now}), then {RELOAD_NGINX}.",
                b.directive("read_timeout")
            )
        }
        Trouble::SendTimeout => format!(
            "The backend stopped reading the request: check {logs} (a full worker, a blocked reader); {} bounds the wait.",
            b.directive("send_timeout")
        ),
        Trouble::Closed => {
            let own = match b.protocol {
                Protocol::Uwsgi => "uWSGI's `harakiri`",
                Protocol::Http | Protocol::Https => "gunicorn's `--timeout`, a worker's memory limit",
                _ => "its own request timeout",
            };
            format!(
                "Read {logs} at that time for a crash, a restart or a request it killed itself ({own}); `sudo journalctl -k | grep -i 'killed process'` shows an OOM kill. If it happens on reused connections, the backend closes idle keepalive connections sooner than NGINX reuses them: lower `keepalive_timeout` in the `upstream {{}}` block below the backend's."
            )
        }
        Trouble::HeaderTooBig => format!(
            "Raise {} (e.g. 16k) and {}, or make the backend send smaller headers (cookies), then {RELOAD_NGINX}.",
            b.directive("buffer_size"),
            b.directive("buffers")
        ),
        Trouble::BadResponse => format!(
            "Check that {target} speaks what {pass} expects (an HTTPS port behind `proxy_pass http://`, or a FastCGI port behind `proxy_pass`, fails like this): ask it directly from the NGINX host (`curl -v` for HTTP) and read {logs}."
        ),
        Trouble::Tls => format!(
            "Check the backend's TLS from the NGINX host: `openssl s_client -connect <host:port> -servername <name>`; NGINX sends no server name unless {} is on, and verifies only with {}.",
            b.directive("ssl_server_name"),
            b.directive("ssl_verify")
        ),
        Trouble::Dns => "Check that the name resolves from the NGINX host (`getent hosts <name>`); a name in a variable needs a `resolver` directive.".to_string(),
        Trouble::Status => format!("The backend itself answered this status: {logs} says why."),
        Trouble::Other => format!("Read NGINX's message above and {logs} at that time."),
    };
    if b.protocol == Protocol::Unknown {
        s.push_str(" If this upstream is PHP-FPM after all, give its log, its pool config or the NGINX config for a PHP-FPM verdict.");
    }
    s
}

#[cfg(test)]
mod tests {
    use crate::classify::testing::*;
    use crate::classify::{OtherBackend, Trouble};
    use crate::fix::fix_for;
    use crate::model::Protocol;

    /// Fixes for non-FPM backends never prescribe PHP-FPM.
    fn assert_no_fpm(fix: &str) {
        for word in [
            "php-fpm",
            "PHP-FPM",
            "pm.max_children",
            "fastcgi_",
            "systemctl start php",
        ] {
            if word == "PHP-FPM" && fix.contains("If this upstream is PHP-FPM after all") {
                continue;
            }
            assert!(!fix.contains(word), "{word} in: {fix}");
        }
    }

    #[test]
    fn every_trouble_has_a_fix_for_its_kind_of_backend() {
        let ctx = ContextIndex::default();
        let troubles = [
            Trouble::Refused,
            Trouble::NoSocket,
            Trouble::Denied,
            Trouble::BacklogFull,
            Trouble::ConnectTimeout,
            Trouble::ConnectError(113),
            Trouble::ReadTimeout,
            Trouble::SendTimeout,
            Trouble::Closed,
            Trouble::HeaderTooBig,
            Trouble::BadResponse,
            Trouble::Tls,
            Trouble::Dns,
            Trouble::Status,
            Trouble::Other,
        ];
        for protocol in [
            Protocol::Http,
            Protocol::Uwsgi,
            Protocol::Grpc,
            Protocol::Unknown,
        ] {
            for peer in ["127.0.0.1:3000", "unix:/tmp/app.sock"] {
                for trouble in troubles {
                    let f = failure(AttemptEvent::Error, Phase::Header, None, peer);
                    let mut v = Classifier::default().classify(&f, &ctx, &History::default());
                    v.cause = Cause::Unknown;
                    v.facts.other_backend = Some(OtherBackend {
                        protocol,
                        peer: Some(Peer(peer.into())),
                        trouble,
                    });
                    let fix = fix_for(&v, &f, &ctx, Default::default());
                    assert!(fix.len() > 40, "{protocol:?} {trouble:?}: {fix}");
                    assert_no_fpm(&fix);
                }
            }
        }
    }
}
