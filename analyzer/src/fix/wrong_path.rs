//! The fix when NGINX connects where FPM does not listen: point fastcgi_pass at FPM.

use super::Known;

pub(super) fn fix(k: &Known) -> String {
    let Known {
        ctx,
        facts,
        peer,
        peer_s,
        pool,
        ..
    } = *k;
    let target = facts
        .fpm_listen
        .as_ref()
        .map(|l| l.0.to_string())
        .or_else(|| pool.and_then(|p| p.listen()).map(|l| l.0.to_string()));
    let mut s = match &target {
        Some(t) => format!("NGINX connects to {peer_s} but PHP-FPM listens on {t}. Change the NGINX config to `fastcgi_pass {t};`"),
        None => format!(
            "NGINX connects to {peer_s}, which does not exist while PHP-FPM runs. Find FPM's socket (`sudo grep -r '^listen' /etc/php/*/fpm/pool.d/`) and point `fastcgi_pass` at it"
        ),
    };
    let lines = peer.map(|p| ctx.nginx_passes_to(p)).unwrap_or_default();
    if !lines.is_empty() {
        s.push_str(&format!(" (now: {})", lines.join("; ")));
    }
    s.push_str(", then `sudo nginx -t && sudo systemctl reload nginx`.");
    s
}
