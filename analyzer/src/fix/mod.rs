//! The fix for a diagnosis, written with the user's own values (socket paths, unit
//! names, pool settings, timeouts, memory figures) as the troubleshooting guide
//! prescribes them. One file per cause; this one dispatches and holds what several
//! fixes share (the unit name, the pool, a setting with where it is set).

mod formula;
mod invalid;
mod max_children;
mod not_running;
mod oom;
mod other_backend;
mod permission;
mod read_timeout;
mod unknown;
mod wrong_path;

pub use formula::{children_formula, ChildrenFormula};

use crate::classify::{Diagnosis, Facts};
use crate::context::{ContextIndex, PoolConf};
use crate::failure::Failure;
use crate::model::{Cause, Peer};

/// Memory figures the user can give for the pm.max_children formula.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryOverrides {
    pub ram_mb: Option<u64>,
    pub reserved_mb: Option<u64>,
    pub worker_mb: Option<u64>,
}

/// What a fix is written from: the diagnosis, the failure, the context and what is
/// derived from them once for every cause.
#[derive(Clone, Copy)]
struct Known<'a> {
    v: &'a Diagnosis,
    f: &'a Failure,
    ctx: &'a ContextIndex,
    mem: MemoryOverrides,
    facts: &'a Facts,
    peer: Option<&'a Peer>,
    /// The peer as text, or a description when unknown.
    peer_s: &'a str,
    /// FPM's systemd unit, when an input names it.
    unit: Option<&'a str>,
    pool: Option<&'a PoolConf>,
}

impl Known<'_> {
    /// The unit for a command: its name, or `<unit>` after [`Known::find_unit`].
    fn unit(&self) -> &str {
        self.unit.unwrap_or("<unit>")
    }

    /// How to find the unit's name when no input names it (empty when one does):
    /// a name that may not exist on the host is never printed.
    fn find_unit(&self) -> &'static str {
        match self.unit {
            Some(_) => "",
            None => "find PHP-FPM's unit with `systemctl list-units --type=service --all '*fpm*'` (`<unit>` below); ",
        }
    }
}

/// PHP-FPM's systemd unit, only when an input names it: the journal's unit lines,
/// else a distribution's naming in the socket path or a pool config's path
/// (Debian's `/run/php/php8.2-fpm.sock` and `/etc/php/8.2/fpm/`: `php8.2-fpm`;
/// Fedora/RHEL's `/run/php-fpm/` and `/etc/php-fpm.d/`: `php-fpm`).
fn fpm_unit(ctx: &ContextIndex, peer: Option<&Peer>) -> Option<String> {
    if let Some(u) = ctx.units.iter().find_map(|u| u.event.unit.clone()) {
        return Some(u.trim_end_matches(".service").to_string());
    }
    peer.and_then(Peer::unix_path)
        .into_iter()
        .chain(ctx.pools.iter().map(|p| &*p.file))
        .find_map(unit_from_path)
}

fn unit_from_path(path: &str) -> Option<String> {
    let file = path.rsplit('/').next().unwrap_or(path);
    // Debian names the socket after the unit, version included: a bare
    // `php-fpm.sock` names no unit.
    if let Some(version) = file
        .strip_suffix("-fpm.sock")
        .and_then(|name| name.strip_prefix("php"))
    {
        if !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return Some(format!("php{version}-fpm"));
        }
    }
    if let Some(rest) = path.strip_prefix("/etc/php/") {
        if let Some((version, tail)) = rest.split_once('/') {
            let numeric =
                !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit() || b == b'.');
            if numeric && tail.starts_with("fpm/") {
                return Some(format!("php{version}-fpm"));
            }
        }
    }
    let rhel = ["/run/php-fpm/", "/var/run/php-fpm/", "/etc/php-fpm.d/"];
    if rhel.iter().any(|d| path.starts_with(d)) || path == "/etc/php-fpm.conf" {
        return Some("php-fpm".to_string());
    }
    None
}

fn pool_of<'a>(ctx: &'a ContextIndex, facts: &Facts) -> Option<&'a PoolConf> {
    facts
        .peer
        .as_ref()
        .and_then(|p| ctx.pool_for_peer(p))
        .or_else(|| {
            facts
                .pool
                .as_ref()
                .and_then(|n| ctx.pools.iter().find(|p| &p.pool.name == n))
        })
        .or_else(|| (ctx.pools.len() == 1).then(|| &ctx.pools[0]))
}

/// A pool setting as the fix quotes it: `5 (www.conf:12)`, or that the pool config
/// does not set it.
fn setting_at(pool: &PoolConf, key: &str) -> String {
    match (pool.pool.setting(key), pool.place_of(key)) {
        (Some(s), Some(place)) => format!("{} ({place})", s.value),
        _ => format!("not set in {}", pool.file),
    }
}

/// How to find where FPM listens, on any distribution's layout.
const FIND_LISTEN: &str = "`sudo grep -rn '^listen' /etc/php*`";

/// Reloading NGINX without naming its unit.
const RELOAD_NGINX: &str = "`sudo nginx -t && sudo nginx -s reload`";

/// The fix text for one failure.
pub fn fix_for(v: &Diagnosis, f: &Failure, ctx: &ContextIndex, mem: MemoryOverrides) -> String {
    let facts = &v.facts;
    let peer = facts.peer.as_ref().or(f.peer.as_ref());
    let peer_s = peer.map_or("the FPM socket".to_string(), |p| p.0.to_string());
    let unit = fpm_unit(ctx, peer);
    let k = Known {
        v,
        f,
        ctx,
        mem,
        facts,
        peer,
        peer_s: &peer_s,
        unit: unit.as_deref(),
        pool: pool_of(ctx, facts),
    };
    let mut s = match v.cause {
        Cause::FpmNotRunning => not_running::fix(&k),
        Cause::SocketPermissionDenied => permission::fix(&k),
        Cause::WrongSocketPath => wrong_path::fix(&k),
        Cause::MaxChildrenExhausted => max_children::fix(&k),
        Cause::ReadTimeout => read_timeout::fix(&k),
        Cause::WorkerOomKilled => oom::fix(&k),
        Cause::InvalidResponse => invalid::fix(&k),
        Cause::Unknown if facts.other_backend.is_some() => other_backend::fix(&k),
        Cause::Unknown => unknown::fix(&k),
    };
    if let (Some(group), true) = (&facts.dead_group, v.cause != Cause::Unknown) {
        s.push_str(&format!(
            " NGINX had marked every server of `{group}` failed after these failures and answers `no live upstreams` until one works again (max_fails within fail_timeout)."
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::unit_from_path;
    use crate::classify::testing::*;

    #[test]
    fn unit_names_only_from_what_an_input_says() {
        assert_eq!(
            unit_from_path("/run/php/php8.2-fpm.sock").as_deref(),
            Some("php8.2-fpm")
        );
        assert_eq!(
            unit_from_path("/etc/php/7.4/fpm/pool.d/www.conf").as_deref(),
            Some("php7.4-fpm")
        );
        assert_eq!(
            unit_from_path("/run/php-fpm/www.sock").as_deref(),
            Some("php-fpm")
        );
        assert_eq!(
            unit_from_path("/etc/php-fpm.d/www.conf").as_deref(),
            Some("php-fpm")
        );
        for nothing in [
            "/run/php/www.sock",
            "/tmp/php.sock",
            "/tmp/demo/php-fpm.sock",
            "www.conf",
            "/etc/php/8.2/cli/php.ini",
        ] {
            assert_eq!(unit_from_path(nothing), None, "{nothing}");
        }
    }

    #[test]
    fn the_journal_names_the_unit() {
        let f = failure(
            AttemptEvent::ConnectFailed,
            Phase::Connect,
            Some(111),
            "127.0.0.1:9000",
        );
        let mut ctx = ContextIndex::default();
        ctx.units.push(Timed {
            at: Some(EpochMs(T - 10_000)),
            boot_secs: None,
            evidence: ev(
                EvidenceSource::Journal,
                "Stopped php7.4-fpm.service - The PHP 7.4 FastCGI Process Manager.",
            ),
            event: UnitMessage {
                unit: Some("php7.4-fpm.service".into()),
                event: UnitEvent::Stopped,
            },
        });
        ctx.finish();
        let v = Classifier::default().classify(&f, &ctx, &History::default());
        let fix = fix_text(&v, &f, &ctx);
        assert!(fix.contains("sudo systemctl start php7.4-fpm`"), "{fix}");
        assert!(!fix.contains("list-units"), "{fix}");
    }

    // connect() to unix:/run/php/php8.2-fpm.sock failed (13: Permission denied)
    #[test]
    fn the_permission_fix_names_the_nginx_user_only_from_the_config() {
        let f = failure(AttemptEvent::ConnectFailed, Phase::Connect, Some(13), SOCK);
        let ctx = ContextIndex::default();
        let v = Classifier::default().classify(&f, &ctx, &History::default());
        let fix = fix_text(&v, &f, &ctx);
        assert!(!fix.contains("www-data"), "{fix}");
        assert!(fix.contains("ps -o user= -C nginx"), "{fix}");
        let mut ctx = ContextIndex::default();
        nginx_conf(
            &mut ctx,
            "/etc/nginx/nginx.conf",
            "user nginx;\nhttp {\n}\n",
        );
        let fix = fix_text(&v, &f, &ctx);
        assert!(fix.contains("to `nginx`"), "{fix}");
    }
}
