//! The guide's pm.max_children formula, from the user's figures or the OOM dumps.

use crate::classify::Facts;
use crate::context::ContextIndex;

use super::MemoryOverrides;

/// The guide's formula: max_children = (RAM - reserved) / average worker memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChildrenFormula {
    pub ram_mb: u64,
    pub reserved_mb: u64,
    pub worker_mb: u64,
    pub max_children: u64,
}

impl ChildrenFormula {
    pub fn text(&self) -> String {
        if self.max_children == 0 {
            return format!(
                "not even one worker of {} MB fits in (RAM {} MB - reserved {} MB): lower memory_limit or give PHP more memory",
                self.worker_mb, self.ram_mb, self.reserved_mb
            );
        }
        format!(
            "pm.max_children = (RAM {} MB - reserved {} MB) / worker {} MB = {}",
            self.ram_mb, self.reserved_mb, self.worker_mb, self.max_children
        )
    }
}

/// Computes the formula from the overrides and what the OOM dumps showed. The
/// reserve defaults to a quarter of RAM (the guide's 4 GB of 16 GB).
pub fn children_formula(
    ctx: &ContextIndex,
    facts: &Facts,
    o: MemoryOverrides,
) -> Option<ChildrenFormula> {
    let mem = &ctx.memory;
    // A memory cgroup limit is FPM's own budget: nothing else to reserve in it.
    let (ram_mb, default_reserve) = match (o.ram_mb, mem.memcg_limit_kb, mem.ram_kb) {
        (Some(r), _, _) => (r, r / 4),
        (None, Some(l), _) => (l / 1024, 0),
        (None, None, Some(r)) => (r / 1024, r / 1024 / 4),
        _ => return None,
    };
    let worker_mb = o
        .worker_mb
        .or(mem.avg_worker_kb().map(|k| k / 1024))
        .or(facts.victim_rss_kb.map(|k| k / 1024))
        .or(mem.victim_rss_kb_max.map(|k| k / 1024))?
        .max(1);
    let reserved_mb = o.reserved_mb.unwrap_or(default_reserve);
    let max_children = ram_mb.saturating_sub(reserved_mb) / worker_mb;
    Some(ChildrenFormula {
        ram_mb,
        reserved_mb,
        worker_mb,
        max_children,
    })
}
