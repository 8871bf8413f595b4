//! The fix when a script outran fastcgi_read_timeout: make it faster or raise the
//! timeout for that endpoint only.

use super::Known;
use crate::context::parse_fpm_duration_secs;

pub(super) fn fix(k: &Known) -> String {
    let Known {
        f,
        ctx,
        facts,
        pool,
        ..
    } = *k;
    let current = ctx
        .nginx_read_timeout_ms()
        .map(|(_, where_)| where_)
        .or_else(|| facts.read_timeout_ms.map(|ms| format!("{} s", ms / 1000)))
        .unwrap_or_else(|| "60 s (default)".to_string());
    let path = f
        .request
        .as_deref()
        .map(crate::context::request_path)
        .unwrap_or("/slow-endpoint");
    let mut s = format!(
        "The request ran longer than fastcgi_read_timeout (now {current}). Make {} faster, or raise the timeout for that endpoint only: `location = {path} {{ fastcgi_read_timeout 300s; ... }}`, then `sudo nginx -t && sudo systemctl reload nginx`.",
        facts.script.as_deref().unwrap_or(path)
    );
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
