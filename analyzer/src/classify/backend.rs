//! Which kind of backend a failure went to. The seven causes are PHP-FPM's: they
//! apply to a FastCGI upstream, and to one whose protocol no input states (a record,
//! an access line, a line pasted without its `upstream:` context) only when
//! something in the inputs ties it to PHP-FPM. Everything else is judged as what it
//! is: an HTTP, uWSGI, SCGI or gRPC backend.

use crate::context::ContextIndex;
use crate::failure::Failure;
use crate::model::{Peer, Protocol};

/// The backend as far as the inputs tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Backend {
    /// PHP-FPM: the seven causes apply. `Some(why)` when the protocol itself is not
    /// in the input and only context says FPM (for the reason).
    Fpm(Option<&'static str>),
    /// Any other backend, or an unknown protocol with nothing pointing at FPM.
    Other(Protocol),
}

/// The upstream's protocol as far as the inputs say: the one NGINX printed (or the
/// record), else the NGINX config's `*_pass` to that peer.
pub(super) fn protocol(f: &Failure, ctx: &ContextIndex) -> Protocol {
    match f.protocol {
        Protocol::Unknown => protocol_from_config(f, ctx).unwrap_or(Protocol::Unknown),
        p => p,
    }
}

/// Decides the backend of `f`: its [`protocol`], else FPM evidence.
pub(super) fn of(f: &Failure, ctx: &ContextIndex) -> Backend {
    match protocol(f, ctx) {
        Protocol::Fastcgi => Backend::Fpm(None),
        Protocol::Unknown => match fpm_evidence(f, ctx) {
            Some(why) => Backend::Fpm(Some(why)),
            None => Backend::Other(Protocol::Unknown),
        },
        other => Backend::Other(other),
    }
}

/// The protocol of the `*_pass` lines that reach the failure's peer or upstream
/// group, when they agree.
fn protocol_from_config(f: &Failure, ctx: &ContextIndex) -> Option<Protocol> {
    let keys = f
        .peer
        .iter()
        .chain(f.peers())
        .map(Peer::as_str)
        .chain(f.upstream.as_deref());
    keys.filter_map(|k| ctx.nginx_upstream(k))
        .map(|u| u.protocol)
        .find(|p| *p != Protocol::Unknown)
}

/// What ties a failure of unknown protocol to PHP-FPM, most specific first.
fn fpm_evidence(f: &Failure, ctx: &ContextIndex) -> Option<&'static str> {
    // Only the FastCGI module logs `FastCGI sent in stderr`.
    if f.stderr.is_some() {
        return Some("NGINX logged FastCGI stderr for the request");
    }
    let peers: Vec<&Peer> = f.peer.iter().chain(f.peers()).collect();
    if peers.iter().any(|p| ctx.pool_for_peer(p).is_some()) {
        return Some("an FPM pool listens on its address");
    }
    if peers.iter().any(|p| names_fpm(p)) {
        return Some("its socket is named for PHP-FPM");
    }
    if ctx.has_fpm_log {
        return Some("an FPM log was given");
    }
    if !ctx.pools.is_empty() {
        return Some("an FPM pool config was given");
    }
    if ctx.units.iter().any(|u| u.event.unit.is_some()) {
        return Some("the journal names an FPM unit");
    }
    None
}

/// A unix socket whose file or its directory names PHP or FPM
/// (`/run/php/php8.2-fpm.sock`, `/run/php-fpm/www.sock`, `/var/run/php/www.sock`).
/// Directories further up say nothing (`/tmp/fpm-test/run/app.sock`).
fn names_fpm(peer: &Peer) -> bool {
    peer.unix_path().is_some_and(|path| {
        let p = path.to_ascii_lowercase();
        p.rsplit('/')
            .take(2)
            .any(|part| part.contains("fpm") || part.starts_with("php"))
    })
}

/// Whether the FPM evidence is about this upstream (rather than only the presence of
/// an FPM input somewhere): then the reason need not mention it.
pub(super) fn is_specific(why: &str) -> bool {
    !matches!(
        why,
        "an FPM log was given" | "an FPM pool config was given" | "the journal names an FPM unit"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::testing::*;

    fn with_protocol(protocol: Protocol, peer: &str) -> Failure {
        let mut f = failure(AttemptEvent::ConnectFailed, Phase::Connect, Some(111), peer);
        f.protocol = protocol;
        f
    }

    #[test]
    fn the_scheme_decides_when_nginx_printed_it() {
        let ctx = fpm_log_only();
        assert_eq!(
            of(&with_protocol(Protocol::Fastcgi, "127.0.0.1:9000"), &ctx),
            Backend::Fpm(None)
        );
        // An FPM log elsewhere does not make an HTTP backend PHP-FPM.
        for p in [
            Protocol::Http,
            Protocol::Https,
            Protocol::Uwsgi,
            Protocol::Scgi,
            Protocol::Grpc,
        ] {
            assert_eq!(
                of(&with_protocol(p, "127.0.0.1:3000"), &ctx),
                Backend::Other(p)
            );
        }
    }

    #[test]
    fn unknown_protocol_needs_fpm_evidence() {
        let f = with_protocol(Protocol::Unknown, "127.0.0.1:3000");
        assert_eq!(
            of(&f, &ContextIndex::default()),
            Backend::Other(Protocol::Unknown)
        );
        // A Debian socket name, RHEL's socket directory.
        for sock in [
            "unix:/run/php/php8.2-fpm.sock",
            "unix:/run/php-fpm/www.sock",
        ] {
            let f = with_protocol(Protocol::Unknown, sock);
            assert!(
                matches!(of(&f, &ContextIndex::default()), Backend::Fpm(Some(_))),
                "{sock}"
            );
        }
        // gunicorn's socket is not FPM's, nor is one under a directory named so.
        for sock in ["unix:/tmp/app.sock", "unix:/tmp/fpm-test/run/app.sock"] {
            let f = with_protocol(Protocol::Unknown, sock);
            assert_eq!(
                of(&f, &ContextIndex::default()),
                Backend::Other(Protocol::Unknown),
                "{sock}"
            );
        }
        // A pool listening there.
        let mut ctx = ContextIndex::default();
        pool(&mut ctx, "[www]\nlisten = 127.0.0.1:9000\n");
        let f = with_protocol(Protocol::Unknown, "127.0.0.1:9000");
        assert_eq!(
            of(&f, &ctx),
            Backend::Fpm(Some("an FPM pool listens on its address"))
        );
        // FastCGI stderr is FastCGI.
        let mut f = with_protocol(Protocol::Unknown, "127.0.0.1:3000");
        f.stderr = Some("PHP message: PHP Fatal error:  Uncaught Error".into());
        assert!(matches!(
            of(&f, &ContextIndex::default()),
            Backend::Fpm(Some(_))
        ));
    }

    #[test]
    fn the_config_names_the_protocol_of_a_record() {
        let mut ctx = ContextIndex::default();
        nginx_conf(
            &mut ctx,
            "/etc/nginx/sites-enabled/default",
            "upstream app {\n    server 127.0.0.1:3000;\n    server 127.0.0.1:3001;\n}\nserver {\n    location / {\n        proxy_pass http://app;\n    }\n    location ~ \\.php$ {\n        fastcgi_pass 127.0.0.1:9000;\n    }\n}\n",
        );
        let f = with_protocol(Protocol::Unknown, "127.0.0.1:3001");
        assert_eq!(of(&f, &ctx), Backend::Other(Protocol::Http));
        let f = with_protocol(Protocol::Unknown, "127.0.0.1:9000");
        assert_eq!(of(&f, &ctx), Backend::Fpm(None));
    }
}
