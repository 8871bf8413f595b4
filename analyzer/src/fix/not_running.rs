//! The fix when PHP-FPM is not running: start it (after removing a stale socket).

use super::Known;
use crate::model::Peer;

pub(super) fn fix(k: &Known) -> String {
    let Known {
        facts, peer, unit, ..
    } = *k;
    let mut s = String::new();
    if facts.unix_refused {
        if let Some(path) = peer.and_then(Peer::unix_path) {
            s.push_str(&format!(
                "Remove the stale socket (`sudo rm -f {path}`), then start"
            ));
        } else {
            s.push_str("Start");
        }
    } else {
        s.push_str("Start");
    }
    s.push_str(&format!(
        " PHP-FPM: `sudo systemctl start {unit}` and `sudo systemctl enable {unit}`; check why it stopped with `sudo journalctl -u {unit} --no-pager -n 50`."
    ));
    if let Some(e) = &facts.start_error {
        s.push_str(&format!(" Its last start-up error: {e}"));
    }
    if let Some(path) = peer.and_then(Peer::unix_path) {
        s.push_str(&format!(" Verify with `ls -la {path}`."));
    }
    s
}
