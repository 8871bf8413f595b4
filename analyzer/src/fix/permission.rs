//! The fix when NGINX may not open FPM's socket: the pool's listen.owner/group/mode.

use super::{setting_at, Known};
use crate::model::Peer;

pub(super) fn fix(k: &Known) -> String {
    let Known {
        ctx,
        peer,
        unit,
        pool,
        ..
    } = *k;
    let user = ctx.nginx_user().unwrap_or_else(|| "www-data".to_string());
    let mut s = match pool {
        Some(p) => format!(
            "In {} ([{}]) set `listen.owner = {user}`, `listen.group = {user}`, `listen.mode = 0660` (now: listen.owner {}, listen.group {}, listen.mode {}).",
            p.file,
            p.pool.name,
            setting_at(p, "listen.owner"),
            setting_at(p, "listen.group"),
            setting_at(p, "listen.mode"),
        ),
        None => format!(
            "In the FPM pool config (e.g. /etc/php/*/fpm/pool.d/www.conf) set `listen.owner = {user}`, `listen.group = {user}`, `listen.mode = 0660` so that NGINX's worker user ({user}) may open the socket."
        ),
    };
    s.push_str(&format!(
        " Then `sudo systemctl restart {unit}` (reload does not re-create the socket)"
    ));
    if let Some(path) = peer.and_then(Peer::unix_path) {
        s.push_str(&format!(" and check `ls -la {path}`"));
    }
    s.push('.');
    s
}
