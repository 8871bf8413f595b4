//! The fix when PHP-FPM is not running: start it (after removing a stale socket).
//! When a wrong address fits the evidence as well, the fix says how to tell the two
//! apart and covers both.

use super::{Known, FIND_LISTEN, RELOAD_NGINX};
use crate::model::{Cause, Peer};

pub(super) fn fix(k: &Known) -> String {
    let Known {
        ctx, facts, peer, ..
    } = *k;
    let unit = k.unit();
    let path = peer.and_then(Peer::unix_path);
    let start = format!(
        "{}`sudo systemctl start {unit}` (and `sudo systemctl enable {unit}`); why it stopped: `sudo journalctl -u {unit} --no-pager -n 50`",
        k.find_unit()
    );
    let mut s = String::new();
    if facts.also_possible == Some(Cause::WrongSocketPath) {
        let check = match path {
            Some(p) => format!("`ls -l {p}` and `pgrep -a php-fpm`"),
            None => "`pgrep -a php-fpm` and `sudo ss -ltnp | grep php`".to_string(),
        };
        let now = peer.map(|p| ctx.nginx_passes_to(p)).unwrap_or_default();
        let now = if now.is_empty() {
            String::new()
        } else {
            format!(" (now: {})", now.join("; "))
        };
        s.push_str(&format!(
            "Tell the two apart with {check}. If no PHP-FPM process runs, start it: {start}. If it runs, NGINX points at the wrong address: find where FPM listens ({FIND_LISTEN}) and point `fastcgi_pass` there{now}, then {RELOAD_NGINX}."
        ));
    } else {
        match path.filter(|_| facts.unix_refused) {
            Some(p) => s.push_str(&format!(
                "Remove the stale socket (`sudo rm -f {p}`), then start PHP-FPM: {start}."
            )),
            None => s.push_str(&format!("Start PHP-FPM: {start}.")),
        }
        if let Some(p) = path {
            s.push_str(&format!(" Verify with `ls -l {p}`."));
        }
    }
    if let Some(e) = &facts.start_error {
        s.push_str(&format!(" Its last start-up error: {e}"));
    }
    s
}
