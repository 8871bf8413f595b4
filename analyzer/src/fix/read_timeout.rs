//! The fix when a script outran fastcgi_read_timeout: make it faster or raise the
//! timeout for that endpoint only.

use super::{Known, RELOAD_NGINX};
use crate::classify::timeout_text;
use crate::context::parse_fpm_duration_secs;
use crate::model::Cause;
use crate::windows::DEFAULT_READ_TIMEOUT_MS;

pub(super) fn fix(k: &Known) -> String {
    let Known { f, facts, pool, .. } = *k;
    let current = timeout_text(facts.read_timeout.as_ref(), DEFAULT_READ_TIMEOUT_MS);
    let path = f
        .request
        .as_deref()
        .map(crate::context::request_path)
        .unwrap_or("/slow-endpoint");
    let mut s = format!(
        "The request ran longer than fastcgi_read_timeout ({current}). Make {} faster, or raise the timeout for that endpoint only: `location = {path} {{ fastcgi_read_timeout 300s; ... }}`, then {RELOAD_NGINX}.",
        facts.script.as_deref().unwrap_or(path)
    );
    if facts.also_possible == Some(Cause::MaxChildrenExhausted) {
        s.push_str(" If many requests timed out together, the pool may have been full instead: FPM's log then says `server reached pm.max_children setting` (`grep max_children <FPM error_log>`), and raising pm.max_children, not the timeout, is the fix.");
    }
    if let Some(p) = pool {
        if let Some(rt) = p.pool.get("request_terminate_timeout") {
            let secs = parse_fpm_duration_secs(rt).unwrap_or(0);
            if secs > 0 {
                s.push_str(&format!(
                    " FPM's request_terminate_timeout = {rt} ({}:{}) also kills long requests (NGINX then answers 502): keep it at or above the script's run time.",
                    p.file,
                    p.pool.setting("request_terminate_timeout").map_or(0, |x| x.line)
                ));
            }
        }
    }
    s
}
