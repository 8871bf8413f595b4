//! The three clocks on a PHP request: NGINX's `fastcgi_read_timeout` (per location),
//! FPM's `request_terminate_timeout` (per pool, wall time) and PHP's
//! `max_execution_time` (php.ini or the pool's `php_admin_value`; on Linux it counts
//! the script's CPU time only, so a script waiting on a database or `sleep()` is not
//! stopped by it). Combinations that leave workers busy after NGINX gave up, or turn
//! a 504 into a 502, are notes: they are how a slow script becomes cause 4 or 5, not
//! a failure by themselves.

use super::finding::Findings;
use super::host;
use super::pools::read_timeout_to;
use super::{Doctor, PoolRef};
use crate::context::parse_fpm_duration_secs;
use crate::model::TimeoutInForce;

/// Adds the notes for every pool NGINX passes to.
pub fn check(d: &mut Doctor) {
    let mut found = Findings::default();
    let mut ini_cache = IniCache::default();
    for p in d.pools() {
        let Some(read) = read_timeout_to(d, &p) else {
            continue;
        };
        if let Some(note) = terminate_timeout_note(&p, &read) {
            found.note("timeouts", note.text, note.fix);
        }
        if let Some(text) = max_execution_time_note(&p, &read, &mut ini_cache) {
            found.note("timeouts", text, None);
        }
    }
    d.findings.absorb(found);
}

/// A note's text and the fix it suggests.
struct TimeoutNote {
    text: String,
    fix: Option<String>,
}

/// How the pool's request_terminate_timeout compares with NGINX's read timeout.
fn terminate_timeout_note(p: &PoolRef, read: &TimeoutInForce) -> Option<TimeoutNote> {
    let (read_ms, read_text) = (read.ms, &read.source);
    let read_s = read_ms as f64 / 1000.0;
    let rtt = p
        .conf
        .pool
        .get("request_terminate_timeout")
        .and_then(parse_fpm_duration_secs)
        .unwrap_or(0);
    let pool = format!("pool {}", p.name());
    let rtt_place = p.place("request_terminate_timeout");
    if rtt == 0 {
        Some(TimeoutNote {
            text: format!(
                "{pool}: request_terminate_timeout is off, so a script NGINX gave up on (504 after {read_s} s: {read_text}) keeps its worker until it ends; enough of them exhaust pm.max_children"
            ),
            fix: Some(format!(
                "set `request_terminate_timeout = {}s` ({rtt_place}): a little above NGINX's read timeout",
                (read_ms + 999) / 1000 + 5
            )),
        })
    } else if (rtt as i64) * 1000 > read_ms {
        Some(TimeoutNote {
            text: format!(
                "{pool}: request_terminate_timeout {rtt} s ({rtt_place}) is longer than NGINX waits ({read_text}): for up to {} s after a 504 the worker is still busy",
                rtt as i64 - read_ms / 1000
            ),
            fix: None,
        })
    } else if (rtt as i64) * 1000 < read_ms {
        Some(TimeoutNote {
            text: format!(
                "{pool}: request_terminate_timeout {rtt} s ({rtt_place}) ends scripts before NGINX's read timeout ({read_text}): a long request gets 502 (upstream prematurely closed), not 504"
            ),
            fix: None,
        })
    } else {
        None
    }
}

/// php.ini's max_execution_time per FPM binary, asked once each.
#[derive(Default)]
struct IniCache {
    by_binary: Vec<(std::path::PathBuf, Option<(u64, String)>)>,
}

impl IniCache {
    fn max_execution_time(&mut self, bin: std::path::PathBuf) -> Option<(u64, String)> {
        if let Some((_, v)) = self.by_binary.iter().find(|(b, _)| *b == bin) {
            return v.clone();
        }
        let v = host::php_ini_max_execution_time(&bin);
        self.by_binary.push((bin, v.clone()));
        v
    }
}

/// PHP's own limit (the pool's value, else php.ini's through `php-fpm -i`) when it
/// does not stop a script before NGINX gives up.
fn max_execution_time_note(
    p: &PoolRef,
    read: &TimeoutInForce,
    ini: &mut IniCache,
) -> Option<String> {
    let admin = [
        "php_admin_value[max_execution_time]",
        "php_value[max_execution_time]",
    ]
    .iter()
    .find_map(|k| {
        let v = p.conf.pool.get(k)?.trim().parse::<u64>().ok()?;
        Some((v, format!("{k} ({})", p.place(k))))
    });
    let (met, where_) = admin.or_else(|| ini.max_execution_time(p.side.binary.clone()?))?;
    if met != 0 && (met as i64) * 1000 <= read.ms {
        return None;
    }
    Some(format!(
        "pool {}: max_execution_time {} ({where_}) does not stop a script before NGINX's read timeout ({}); it counts CPU time only, so waiting on I/O or sleep() is never stopped by it",
        p.name(),
        if met == 0 { "0 (no limit)".to_string() } else { format!("{met} s") },
        read.source
    ))
}
