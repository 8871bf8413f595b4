//! What to say when no cause could be decided.

use super::Known;

pub(super) fn fix(k: &Known) -> String {
    let Known { v, .. } = *k;
    format!(
    "No fix can be derived from the evidence ({}). Give the PHP-FPM log, the kernel log (dmesg/journal) and the configs for a verdict.",
    v.reason
)
}
