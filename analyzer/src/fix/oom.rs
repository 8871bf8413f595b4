//! The fix when the kernel killed a worker for memory: memory_limit, pm.max_children
//! within RAM, pm.max_requests. When the kill may have come from elsewhere (SIGKILL
//! with no kernel log), the fix first says how to confirm it.

use super::{children_formula, invalid, setting_at, Known};
use crate::model::Cause;

pub(super) fn fix(k: &Known) -> String {
    let Known {
        ctx,
        mem,
        facts,
        pool,
        ..
    } = *k;
    let mut s = String::new();
    let unsure = facts.also_possible == Some(Cause::InvalidResponse);
    if unsure {
        let pid = facts.dead_pid.map_or(String::new(), |p| format!(" {p}"));
        s.push_str(&format!(
            "Confirm it was the OOM killer: `sudo journalctl -k | grep -i 'killed process{pid}'` (or `sudo dmesg -T | grep -i 'killed process'`). If the kernel killed it: "
        ));
    } else {
        s.push_str("The kernel killed a PHP worker for memory");
        if let (Some(pid), Some(kb)) = (facts.dead_pid, facts.victim_rss_kb) {
            s.push_str(&format!(" (pid {pid} used {} MB)", kb / 1024));
        }
        s.push_str(". ");
    }
    s.push_str("Cap memory per request with php.ini `memory_limit` (e.g. 256M) and fix the script's memory use;");
    match children_formula(ctx, facts, mem) {
        Some(formula) => s.push_str(&format!(" keep all workers within RAM: {}", formula.text())),
        None => s.push_str(
            " keep pm.max_children x worker memory within RAM: (RAM MB - reserved MB) / worker MB",
        ),
    }
    if let Some(p) = pool {
        s.push_str(&format!(
            " (pm.max_children now {})",
            setting_at(p, "pm.max_children")
        ));
    }
    s.push_str(&format!(
        "; `pm.max_requests = 500` recycles leaking workers. If systemd stopped the unit after the kill (OOMPolicy=stop), start it again: {}`sudo systemctl start {}`.",
        k.find_unit(),
        k.unit()
    ));
    if unsure {
        s.push_str(" If the kernel log has no such line, ");
        s.push_str(&invalid::who_sent_sigkill(k));
    }
    s
}
