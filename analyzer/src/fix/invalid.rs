//! The fix when FPM answered with no valid response: the crash, PHP's fatal error or
//! the header buffers.

use super::Known;

pub(super) fn fix(k: &Known) -> String {
    let Known {
        f,
        ctx,
        facts,
        unit,
        ..
    } = *k;
    let mut s = String::new();
    if let Some(c) = &facts.crash_detail {
        s.push_str(&format!("The worker crashed ({c}): update or disable the extension named there (e.g. opcache, JIT), and enable core dumps to debug it. "));
    } else if let Some(sig) = &facts.signal {
        s.push_str(&format!("The worker died on {sig}: look for a crashing extension or a process that kills workers. "));
    }
    if let Some(e) = &facts.php_error {
        s.push_str(&format!("PHP said: {}. Fix that error (a fatal error, e.g. memory_limit or a missing class after a deploy: clear opcache with `sudo systemctl reload {unit}`). ", crate::model::clip(e, 200)));
    }
    if f.attempts
        .iter()
        .any(|a| a.event == crate::model::AttemptEvent::HeaderTooBig)
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
        s.push_str(&format!(
            "FPM closed the connection without a valid response: read the PHP-FPM log (`sudo tail -50 /var/log/{unit}.log`) and enable `catch_workers_output = yes` and php.ini `log_errors = On` to see the fatal error or crash."
        ));
    }
    s.trim_end().to_string()
}
