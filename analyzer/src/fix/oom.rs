//! The fix when the kernel killed a worker for memory: memory_limit, pm.max_children
//! within RAM, pm.max_requests.

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
    let mut s = String::from("The kernel killed a PHP worker for memory");
    if let (Some(pid), Some(kb)) = (facts.dead_pid, facts.victim_rss_kb) {
        s.push_str(&format!(" (pid {pid} used {} MB)", kb / 1024));
    }
    s.push_str(". Cap memory per request with php.ini `memory_limit` (e.g. 256M) and fix the script's memory use;");
    match children_formula(ctx, facts, mem) {
        Some(formula) => s.push_str(&format!(" keep all workers within RAM: {}", formula.text())),
        None => s.push_str(
            " keep pm.max_children x worker memory within RAM: (RAM MB - reserved MB) / worker MB",
        ),
    }
    if let Some(p) = pool {
        s.push_str(&format!(
            " (now {} in {})",
            setting_at(p, "pm.max_children"),
            p.file
        ));
    }
    s.push_str("; `pm.max_requests = 500` recycles leaking workers. If systemd stopped the unit after the kill (OOMPolicy=stop), start it again: ");
    s.push_str(&format!("`sudo systemctl start {unit}`."));
    s
}
