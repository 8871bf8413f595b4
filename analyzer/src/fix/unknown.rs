//! What to say when no cause could be decided for a PHP-FPM upstream, or when a
//! `no live upstreams` has no earlier failure to inherit from.

use super::Known;

pub(super) fn fix(k: &Known) -> String {
    let Known { v, facts, .. } = *k;
    if let Some(group) = &facts.dead_group {
        return format!(
            "NGINX answered `no live upstreams` because every server of `{group}` had failed just before: find those failures (the error log lines before this one, logged at `error` level) and fix their cause; give that log and the NGINX config (its `upstream {group}` block) for a verdict."
        );
    }
    format!(
        "No fix can be derived from the evidence ({}). Give the PHP-FPM log, the kernel log (dmesg/journal) and the configs for a verdict.",
        v.reason
    )
}
