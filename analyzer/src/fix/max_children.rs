//! The fix when every FPM worker was busy: raise pm.max_children, sized to memory.

use super::{children_formula, setting_at, Known};

pub(super) fn fix(k: &Known) -> String {
    let Known {
        ctx,
        mem,
        facts,
        unit,
        pool,
        ..
    } = *k;
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
            " Size it as (total RAM MB - reserved MB) / average worker MB (`ps --no-headers -o rss -C php-fpm` for the worker size; or give --ram-mb/--worker-mb).",
        ),
    }
    s.push_str(&format!(" Then `sudo systemctl restart {unit}`."));
    s
}
