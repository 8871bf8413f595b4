//! The fix when FPM answered with no valid response, written for what ended the
//! worker: a crash (extensions, opcache/JIT, a core dump), a SIGKILL or SIGTERM
//! from someone (who sends them), an exit code, PHP's fatal error, or the header
//! buffers. When an OOM kill fits as well (no FPM or kernel log), the fix says how
//! to tell the two apart.

use super::Known;
use crate::model::{AttemptEvent, Cause};

/// Signals that mean the worker crashed (by name or number as FPM logs them).
fn is_crash(signal: &str) -> bool {
    matches!(
        signal,
        "SIGSEGV" | "SIGBUS" | "SIGILL" | "SIGFPE" | "SIGABRT" | "11" | "7" | "4" | "8" | "6"
    )
}

fn worker(k: &Known) -> String {
    k.facts
        .dead_pid
        .map_or("The worker".to_string(), |p| format!("Worker {p}"))
}

/// What sends SIGKILL to an FPM worker besides the OOM killer, and where to look.
pub(super) fn who_sent_sigkill(k: &Known) -> String {
    format!(
        "find who sent SIGKILL: FPM's master sends it only when a stop or reload outlasts `process_control_timeout` (SIGQUIT, then SIGTERM, then SIGKILL a second later); systemd does when stopping the unit takes longer than `TimeoutStopSec`; container runtimes do after their stop grace period (`docker stop`, Kubernetes); otherwise a person or a script ran `kill -9`. Look for a stop or reload at that time in the unit's journal ({}`sudo journalctl -u {}`), the container's events, deploy scripts and cron jobs.",
        k.find_unit(),
        k.unit()
    )
}

/// What to do about a crashed worker.
const CRASH_ADVICE: &str = "usually a PHP extension or opcache/JIT. List the extensions (`php -m`), update PHP and them, and disable suspects one at a time (JIT first: `opcache.jit=off`; then debuggers and APM agents). For a backtrace let workers dump core (`rlimit_core = unlimited` in the pool, `LimitCORE=infinity` for the unit), then `coredumpctl list` and `coredumpctl gdb <pid>`. ";

fn crash_fix(what: &str) -> String {
    format!("The worker crashed ({what}): {CRASH_ADVICE}")
}

pub(super) fn fix(k: &Known) -> String {
    let Known { f, ctx, facts, .. } = *k;
    let mut s = String::new();
    if facts.also_possible == Some(Cause::WorkerOomKilled) {
        s.push_str("Tell a crash from an OOM kill: `sudo journalctl -k | grep -i -E 'killed process|segfault'` (or `sudo dmesg -T`) and the FPM log's `child N exited on signal` line at that time. Signal 9 (SIGKILL) with the kernel's `Killed process N` is the OOM killer: cap php.ini `memory_limit` and keep pm.max_children x worker memory within RAM. Signal 11 (SIGSEGV) or 6 (SIGABRT) is a crash: ");
        s.push_str(CRASH_ADVICE);
    } else if let Some(c) = &facts.crash_detail {
        s.push_str(&crash_fix(c));
    } else if let Some(sig) = facts.signal.as_deref() {
        let who = worker(k);
        if is_crash(sig) {
            s.push_str(&crash_fix(&format!("signal {sig}")));
        } else if matches!(sig, "SIGKILL" | "9") {
            s.push_str(&format!(
                "{who} was killed with signal 9 (SIGKILL) and the kernel log has no OOM kill for it: {} ",
                who_sent_sigkill(k)
            ));
        } else if matches!(sig, "SIGTERM" | "15") {
            s.push_str(&format!(
                "{who} got SIGTERM: FPM sends it when `request_terminate_timeout` expires (it then logs `execution timed out`) and while stopping; otherwise a deploy script or a person sent it. Look at the FPM log around it and at {}`sudo journalctl -u {}`. ",
                k.find_unit(),
                k.unit()
            ));
        } else {
            s.push_str(&format!(
                "{who} died on signal {sig}: find what sent it (`sudo journalctl -u {}` at that time) or why it raised it. ",
                k.unit()
            ));
        }
    } else if let Some(code) = facts.exit_code {
        s.push_str(&format!(
            "{} exited with code {code}: PHP ended the process itself (a fatal error in an extension, `exit()` during shutdown). ",
            worker(k)
        ));
    }
    if let Some(e) = &facts.php_error {
        s.push_str(&format!(
            "PHP said: {}. Fix that error (a fatal error such as memory_limit, or a class missing after a deploy: then clear opcache by reloading PHP-FPM, {}`sudo systemctl reload {}`). ",
            crate::model::clip(e, 200),
            k.find_unit(),
            k.unit()
        ));
    }
    if f.attempts
        .iter()
        .any(|a| a.event == AttemptEvent::HeaderTooBig)
    {
        let now = ctx
            .nginx
            .iter()
            .find_map(|c| c.tuning_value("fastcgi_buffer_size"))
            .map(|d| format!(" (now {}:{}: {})", d.file, d.line, d.text()))
            .unwrap_or_default();
        s.push_str(&format!("Raise the header buffers: `fastcgi_buffer_size 32k; fastcgi_buffers 16 16k;`{now}, and reduce what PHP writes to stderr. "));
    }
    if s.is_empty() {
        s.push_str("FPM closed the connection without a valid response: read the PHP-FPM log (its path is `error_log` in php-fpm.conf) around that time, and set `catch_workers_output = yes` in the pool and php.ini `log_errors = On` to see the fatal error or crash.");
    } else if facts.signal.as_deref().is_some_and(is_crash) || facts.exit_code.is_some() {
        s.push_str("Set `catch_workers_output = yes` in the pool to see what the worker printed before it ended.");
    }
    s.trim_end().to_string()
}
