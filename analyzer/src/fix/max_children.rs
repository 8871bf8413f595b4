//! The fix when every FPM worker was busy: raise pm.max_children, sized to memory;
//! when connections found the listen backlog full, also the backlog's bounds.

use super::{children_formula, setting_at, Known};

pub(super) fn fix(k: &Known) -> String {
    let Known {
        ctx,
        mem,
        facts,
        pool,
        ..
    } = *k;
    // First tell a full pool from a host that does not answer.
    let check = match k.peer.filter(|_| facts.host_unreachable_possible) {
        Some(p) => {
            let (host, port) = p.as_str().rsplit_once(':').unwrap_or((p.as_str(), ""));
            format!(
                "First check that {p} answers at all from the NGINX host (`nc -zv -w 3 {host} {port}`): if it does not, the FPM host is down or a firewall drops the connection, and that is the fix. If it answers, the pool is full: "
            )
        }
        None => String::new(),
    };
    let mut s = match pool {
        Some(p) => format!(
            "Raise pm.max_children in {} ([{}], now {}; pm = {}).",
            p.file,
            p.pool.name,
            setting_at(p, "pm.max_children"),
            p.pool.pm()
        ),
        None => match facts.max_children {
            Some(n) => {
                format!("Raise pm.max_children (FPM reports the limit {n}) in the pool config.")
            }
            None => "Raise pm.max_children in the pool config.".to_string(),
        },
    };
    match children_formula(ctx, facts, mem) {
        Some(formula) => s.push_str(&format!(" Size it with the memory you have: {}.", formula.text())),
        None => s.push_str(
            " Size it as (total RAM MB - reserved MB) / average worker MB (worker size: `ps -o rss= -p $(pgrep -d, php-fpm)`; or give --ram-mb/--worker-mb).",
        ),
    }
    if facts.backlog_full {
        let backlog = match pool {
            Some(p) => format!("now {}", setting_at(p, "listen.backlog")),
            None => "511 by default on Linux, unless set".to_string(),
        };
        s.push_str(&format!(
            " New connections found FPM's listen queue full: it holds `listen.backlog` connections ({backlog}), capped by the kernel's `net.core.somaxconn` (`sysctl net.core.somaxconn`); raising both lets requests wait instead of failing, but only more workers or faster scripts serve them."
        ));
    }
    s.push_str(&format!(
        " Then {}`sudo systemctl restart {}`.",
        k.find_unit(),
        k.unit()
    ));
    if check.is_empty() {
        return s;
    }
    // "... the pool is full: raise pm.max_children ..."
    let mut chars = s.chars();
    let first = chars.next().map(|c| c.to_ascii_lowercase());
    check + &first.into_iter().chain(chars).collect::<String>()
}
