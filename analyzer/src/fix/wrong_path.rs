//! The fix when NGINX connects where FPM does not listen: the config lines that write
//! the wrong address (file:line, as found through the includes), what to write
//! instead, and where FPM's `listen` is set, for the case where NGINX is right.

use super::{Known, RELOAD_NGINX};
use crate::context::php_version_in;
use crate::model::Peer;
use crate::parse::nginx_conf::Target;

/// How NGINX must write an FPM listen address: a bare port or a wildcard host is
/// reached on the loopback.
fn nginx_form(listen: &Peer) -> String {
    match listen.as_str().rsplit_once(':') {
        Some((host, port))
            if !listen.is_unix() && matches!(host, "*" | "0.0.0.0" | "[::]" | "::" | "") =>
        {
            format!("127.0.0.1:{port}")
        }
        _ => listen.as_str().to_string(),
    }
}

pub(super) fn fix(k: &Known) -> String {
    if k.facts.foreign_reply.is_none() {
        return address_fix(k);
    }
    // Something answered, just not in FastCGI: name it and where FPM really is.
    let whom = match k.peer.filter(|p| !p.is_unix()) {
        Some(p) => format!(
            "`sudo ss -ltnp | grep ':{}'` names it",
            p.as_str().rsplit_once(':').map_or("", |(_, port)| port)
        ),
        None => format!("`sudo ss -lxp | grep {}` names it", k.peer_s),
    };
    let fpm = match k.facts.fpm_listen.clone().or_else(|| k.pool.and_then(|p| p.listen())) {
        Some(l) => format!("PHP-FPM listens on `{}`", nginx_form(&l)),
        None => "Find where PHP-FPM listens (`listen` in its pool configs, or `php-fpm -tt 2>&1 | grep 'listen ='` with your FPM binary)".to_string(),
    };
    format!(
        "Another program listens on {}: {whom}. {fpm}: point `fastcgi_pass` there (or use `proxy_pass` if that program is the HTTP backend you meant), then {RELOAD_NGINX}.",
        k.peer_s
    )
}

fn address_fix(k: &Known) -> String {
    let listen = k
        .facts
        .fpm_listen
        .clone()
        .or_else(|| k.pool.and_then(|p| p.listen()));
    let written = where_written(k);
    let directive = written
        .first()
        .map_or("fastcgi_pass", |t| t.pass.name.as_str());
    let mut s = match &listen {
        Some(l) => point_at_listen(k, l, &written, directive),
        None => listen_unknown(k, &written, directive),
    };
    s.push_str(&format!(", then {RELOAD_NGINX}."));
    s
}

/// Where the NGINX config writes the wrong address, each place once.
fn where_written<'a>(k: &Known<'a>) -> Vec<&'a Target> {
    let Some(p) = k.peer else {
        return Vec::new();
    };
    let mut w: Vec<&Target> = Vec::new();
    for t in k
        .ctx
        .nginx_targets()
        .filter(|t| t.peer == *p || p.reaches(&t.peer))
    {
        if !w
            .iter()
            .any(|x| x.written_at.place() == t.written_at.place())
        {
            w.push(t);
        }
    }
    w
}

/// The pool config line that sets a `listen`.
struct ListenPlace<'a> {
    pool: &'a str,
    place: String,
    /// Read from a `php-fpm -tt` dump, which is not the file to edit.
    dumped: bool,
}

/// FPM's address is known: point NGINX at it (or FPM at NGINX's address).
fn point_at_listen(k: &Known, l: &Peer, written: &[&Target], directive: &str) -> String {
    let Known {
        ctx, peer, peer_s, ..
    } = *k;
    let to = nginx_form(l);
    let listen_place = ctx
        .pools
        .iter()
        .find(|p| p.listen().as_ref() == Some(l))
        .and_then(|p| {
            Some(ListenPlace {
                pool: p.pool.name.as_str(),
                place: p.place_of("listen")?,
                dumped: p.pool.dumped,
            })
        });
    let mut s = format!("NGINX connects to {peer_s} but PHP-FPM listens on {l}");
    if let Some(lp) = &listen_place {
        s.push_str(&format!(" (pool {}, {})", lp.pool, lp.place));
    }
    s.push_str(". ");
    if written.is_empty() {
        s.push_str(&format!(
            "Point NGINX at it: `{directive} {to};` where it now passes to {peer_s} (`sudo nginx -T | grep -n '{}'` finds the line)",
            peer.map_or(peer_s, |p| p.unix_path().unwrap_or(p.as_str()))
        ));
    } else {
        let changes: Vec<String> = written
            .iter()
            .map(|t| {
                let now = t.written_at.text();
                format!(
                    "in {} change `{now}` to `{}`",
                    t.written_at.place(),
                    now.replacen(&t.address, &to, 1)
                )
            })
            .collect();
        s.push_str(&format!("Point NGINX at it: {}", changes.join("; ")));
    }
    // Moving a PHP 8.2 pool onto a php7.2 socket name would only hide the mismatch.
    let versions_differ = matches!(
        (
            peer.and_then(Peer::unix_path).and_then(php_version_in),
            l.unix_path().and_then(php_version_in),
        ),
        (Some(a), Some(b)) if a != b
    );
    if let Some(lp) = listen_place.as_ref().filter(|_| !versions_differ) {
        let at = if lp.dumped {
            format!("in pool {}'s config", lp.pool)
        } else {
            format!("at {}", lp.place)
        };
        s.push_str(&format!(
            " (or, if NGINX is right, set `listen = {}` {at} and restart PHP-FPM)",
            peer.map_or(peer_s, |p| p.unix_path().unwrap_or(p.as_str()))
        ));
    }
    s
}

/// No input says where FPM listens: how to find it, or the PHP version mismatch.
fn listen_unknown(k: &Known, written: &[&Target], directive: &str) -> String {
    let Known {
        ctx, peer, peer_s, ..
    } = *k;
    let mut s = match peer.and_then(|p| ctx.php_version_mismatch(p)) {
        Some((wanted, seen)) => {
            let have: Vec<&str> = seen.iter().map(|v| v.version.as_str()).collect();
            let have = have.first().copied().unwrap_or("?");
            format!(
                "NGINX connects to {peer_s}, a socket for PHP {wanted}, but the inputs show PHP-FPM {have}. Point `{directive}` at the socket the PHP {have} pool listens on (its pool config's `listen`; on Debian/Ubuntu `sudo grep -rs '^listen' /etc/php/{have}/fpm/pool.d/`), or install and start PHP-FPM {wanted}"
            )
        }
        None => format!(
            "NGINX connects to {peer_s}, where nothing is while PHP-FPM runs. Find where FPM listens (`listen` in its pool configs, or `php-fpm -tt 2>&1 | grep 'listen ='` with your FPM binary) and point `{directive}` at it"
        ),
    };
    if !written.is_empty() {
        let now: Vec<String> = written
            .iter()
            .map(|t| format!("{}: {}", t.written_at.place(), t.written_at.text()))
            .collect();
        s.push_str(&format!(" (now: {})", now.join("; ")));
    }
    s
}
