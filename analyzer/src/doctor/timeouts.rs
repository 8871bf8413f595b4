//! The three clocks on a PHP request: NGINX's `fastcgi_read_timeout` (per location),
//! FPM's `request_terminate_timeout` (per pool, wall time) and PHP's
//! `max_execution_time` (php.ini or the pool's `php_admin_value`; on Linux it counts
//! the script's CPU time only, so a script waiting on a database or `sleep()` is not
//! stopped by it). Combinations that leave workers busy after NGINX gave up, or turn
//! a 504 into a 502, are notes: they are how a slow script becomes cause 4 or 5, not
//! a failure by themselves.

use super::host;
use super::pools::read_timeout_to;
use super::Doctor;
use crate::context::parse_fpm_duration_secs;
use crate::model::TimeoutInForce;

/// Adds the notes for every pool NGINX passes to.
pub fn check(d: &mut Doctor) {
    let mut notes = Vec::new();
    let mut ini_cache: Vec<(std::path::PathBuf, Option<(u64, String)>)> = Vec::new();
    for p in d.pools() {
        let Some(TimeoutInForce {
            ms: read_ms,
            source: read_text,
        }) = read_timeout_to(d, &p)
        else {
            continue;
        };
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
            notes.push((
                format!(
                    "{pool}: request_terminate_timeout is off, so a script NGINX gave up on (504 after {read_s} s: {read_text}) keeps its worker until it ends; enough of them exhaust pm.max_children"
                ),
                Some(format!(
                    "set `request_terminate_timeout = {}s` ({rtt_place}): a little above NGINX's read timeout",
                    (read_ms + 999) / 1000 + 5
                )),
            ));
        } else if (rtt as i64) * 1000 > read_ms {
            notes.push((
                format!(
                    "{pool}: request_terminate_timeout {rtt} s ({rtt_place}) is longer than NGINX waits ({read_text}): for up to {} s after a 504 the worker is still busy",
                    rtt as i64 - read_ms / 1000
                ),
                None,
            ));
        } else if (rtt as i64) * 1000 < read_ms {
            notes.push((
                format!(
                    "{pool}: request_terminate_timeout {rtt} s ({rtt_place}) ends scripts before NGINX's read timeout ({read_text}): a long request gets 502 (upstream prematurely closed), not 504"
                ),
                None,
            ));
        }
        // PHP's own limit: the pool's value, else php.ini's through `php-fpm -i`.
        let admin = [
            "php_admin_value[max_execution_time]",
            "php_value[max_execution_time]",
        ]
        .iter()
        .find_map(|k| {
            let v = p.conf.pool.get(k)?.trim().parse::<u64>().ok()?;
            Some((v, format!("{k} ({})", p.place(k))))
        });
        let met = admin.or_else(|| {
            let bin = p.side.binary.clone()?;
            if let Some((_, v)) = ini_cache.iter().find(|(b, _)| *b == bin) {
                return v.clone();
            }
            let v = host::php_ini_max_execution_time(&bin);
            ini_cache.push((bin, v.clone()));
            v
        });
        if let Some((met, where_)) = met {
            if met == 0 || (met as i64) * 1000 > read_ms {
                notes.push((
                    format!(
                        "{pool}: max_execution_time {} ({where_}) does not stop a script before NGINX's read timeout ({read_text}); it counts CPU time only, so waiting on I/O or sleep() is never stopped by it",
                        if met == 0 { "0 (no limit)".to_string() } else { format!("{met} s") }
                    ),
                    None,
                ));
            }
        }
    }
    for (text, fix) in notes {
        d.findings.note("timeouts", text, fix);
    }
}
