//! The fix when NGINX may not open FPM's socket: the pool's listen.owner/group/mode.

use super::{setting_at, Known, FIND_LISTEN};
use crate::model::Peer;

pub(super) fn fix(k: &Known) -> String {
    let Known {
        ctx, peer, pool, ..
    } = *k;
    // The worker user only when the config says; a guessed `www-data` would be
    // wrong on half the distributions.
    let user = match ctx.nginx_user() {
        Some(u) => format!("`{u}`"),
        None => {
            "NGINX's worker user (the `user` directive; `ps -o user= -C nginx | sort -u` shows it)"
                .to_string()
        }
    };
    if k.facts.policy_denied {
        return format!(
            "A security policy stopped NGINX from connecting to {}: on SELinux (`getenforce` says Enforcing) `sudo ausearch -m avc -ts recent` shows the denial, and `sudo setsebool -P httpd_can_network_connect 1` allows NGINX's outgoing connections (or label the port: `sudo semanage port -l | grep http_port_t`); otherwise check the firewall's output rules (`sudo iptables -S OUTPUT`, `sudo nft list ruleset`).",
            k.peer_s
        );
    }
    let mut s = match pool {
        Some(p) => format!(
            "In {} ([{}]) set `listen.owner` and `listen.group` to {user} and `listen.mode = 0660` (now: listen.owner {}, listen.group {}, listen.mode {}).",
            p.file,
            p.pool.name,
            setting_at(p, "listen.owner"),
            setting_at(p, "listen.group"),
            setting_at(p, "listen.mode"),
        ),
        None => format!(
            "In the FPM pool config that listens on {} (find it: {FIND_LISTEN}) set `listen.owner` and `listen.group` to {user} and `listen.mode = 0660`.",
            k.peer_s
        ),
    };
    s.push_str(&format!(
        " Then restart PHP-FPM: {}`sudo systemctl restart {}` (a reload does not re-create the socket)",
        k.find_unit(),
        k.unit()
    ));
    if let Some(path) = peer.and_then(Peer::unix_path) {
        s.push_str(&format!(
            ", and check `ls -l {path}` (and `namei -l {path}` for the directories above it)"
        ));
    }
    s.push('.');
    s
}
