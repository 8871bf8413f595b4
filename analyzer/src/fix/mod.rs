//! The fix for a verdict, written with the user's own values (socket paths, unit
//! names, pool settings, timeouts, memory figures) as the troubleshooting guide
//! prescribes them. One file per cause; this one dispatches and holds what several
//! fixes share (the unit name, the pool, a setting with where it is set).

mod formula;
mod invalid;
mod max_children;
mod not_running;
mod oom;
mod permission;
mod read_timeout;
mod unknown;
mod wrong_path;

pub use formula::{children_formula, ChildrenFormula};

use crate::classify::{Facts, Verdict};
use crate::context::{Context, PoolConf};
use crate::failure::Failure;
use crate::model::{Cause, Peer};

/// Memory figures the user can give for the pm.max_children formula.
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryOverrides {
    pub ram_mb: Option<u64>,
    pub reserved_mb: Option<u64>,
    pub worker_mb: Option<u64>,
}

/// What a fix is written from: the verdict, the failure, the context and what is
/// derived from them once for every cause.
#[derive(Clone, Copy)]
struct Known<'a> {
    v: &'a Verdict,
    f: &'a Failure,
    ctx: &'a Context,
    mem: MemoryOverrides,
    facts: &'a Facts,
    peer: Option<&'a Peer>,
    /// The peer as text, or a description when unknown.
    peer_s: &'a str,
    unit: &'a str,
    pool: Option<&'a PoolConf>,
}

/// The systemd unit of FPM: from the journal, else from a Debian socket name
/// (`/run/php/php8.2-fpm.sock` -> `php8.2-fpm`), else a placeholder.
fn fpm_unit(ctx: &Context, peer: Option<&Peer>) -> String {
    if let Some(u) = ctx.units.iter().find_map(|u| u.event.unit.clone()) {
        return u.trim_end_matches(".service").to_string();
    }
    let from_path = peer
        .and_then(Peer::unix_path)
        .and_then(|p| p.rsplit('/').next())
        .and_then(|f| f.strip_suffix(".sock"))
        .filter(|s| s.starts_with("php") && s.contains("fpm"));
    from_path.unwrap_or("php-fpm").to_string()
}

fn pool_of<'a>(ctx: &'a Context, facts: &Facts) -> Option<&'a PoolConf> {
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

fn setting_at(pool: &PoolConf, key: &str) -> String {
    match pool.pool.setting(key) {
        Some(s) => format!("{} ({}:{})", s.value, pool.file, s.line),
        None => "unset".to_string(),
    }
}

/// The fix text for one failure.
pub fn fix_for(v: &Verdict, f: &Failure, ctx: &Context, mem: MemoryOverrides) -> String {
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
        unit: &unit,
        pool: pool_of(ctx, facts),
    };
    match v.cause {
        Cause::FpmNotRunning => not_running::fix(&k),
        Cause::SocketPermissionDenied => permission::fix(&k),
        Cause::WrongSocketPath => wrong_path::fix(&k),
        Cause::MaxChildrenExhausted => max_children::fix(&k),
        Cause::ReadTimeout => read_timeout::fix(&k),
        Cause::WorkerOomKilled => oom::fix(&k),
        Cause::InvalidResponse => invalid::fix(&k),
        Cause::Unknown => unknown::fix(&k),
    }
}
