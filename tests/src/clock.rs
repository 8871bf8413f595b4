//! Wall-clock conversions the log checks and re-framings need: NGINX's and PHP-FPM's
//! zone-less local stamps to unix milliseconds, and unix milliseconds to the stamps
//! other log carriers print (docker's RFC 3339 UTC with nanoseconds, rsyslog's
//! traditional `Mmm dd HH:MM:SS` and its RFC 3339 local form). The machine's zone is
//! the zone NGINX and FPM wrote in, so libc's local time is the right one.

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Unix ms of a local calendar time (`mon0` = 0..11).
pub fn local_ms(year: i32, mon0: i32, day: i32, h: i32, mi: i32, s: i32) -> Option<i64> {
    // SAFETY: an all-zero tm is a valid argument; mktime only reads and normalises it.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = year - 1900;
    tm.tm_mon = mon0;
    tm.tm_mday = day;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    tm.tm_isdst = -1;
    // SAFETY: tm is a valid, initialised struct owned by this frame.
    let secs = unsafe { libc::mktime(&mut tm) };
    (secs != -1).then_some(secs as i64 * 1000)
}

fn num(s: &str) -> Option<i32> {
    s.parse().ok()
}

/// Unix ms of an NGINX error-log line's `2026/04/02 14:23:17` (local time), if any.
pub fn nginx_line_ms(line: &str) -> Option<i64> {
    let head = line.get(..19)?;
    let b = head.as_bytes();
    if b[4] != b'/' || b[7] != b'/' || b[10] != b' ' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    local_ms(
        num(&head[0..4])?,
        num(&head[5..7])? - 1,
        num(&head[8..10])?,
        num(&head[11..13])?,
        num(&head[14..16])?,
        num(&head[17..19])?,
    )
}

/// Unix ms of a PHP-FPM log line's `[23-Nov-2026 22:16:50]` (local time), if any.
pub fn fpm_line_ms(line: &str) -> Option<i64> {
    let inner = line.strip_prefix('[')?.split(']').next()?;
    let (date, time) = inner.split_once(' ')?;
    let mut d = date.split('-');
    let day = num(d.next()?)?;
    let name = d.next()?;
    let mon = MONTHS.iter().position(|m| *m == name)? as i32;
    let year = num(d.next()?)?;
    let mut t = time.split(['.', ':']);
    let h = num(t.next()?)?;
    let mi = num(t.next()?)?;
    let sec = num(t.next()?)?;
    local_ms(year, mon, day, h, mi, sec)
}

fn tm_of(ms: i64, local: bool) -> libc::tm {
    let secs = ms.div_euclid(1000) as libc::time_t;
    // SAFETY: an all-zero tm is valid output storage; localtime_r/gmtime_r fill it
    // from a valid time_t owned by this frame.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if local {
            libc::localtime_r(&secs, &mut tm);
        } else {
            libc::gmtime_r(&secs, &mut tm);
        }
        tm
    }
}

/// Docker's `docker logs -t` stamp: RFC 3339 in UTC with nine fraction digits
/// (`2026-04-02T12:23:17.123456789Z`); `nanos` is the part below the millisecond.
pub fn docker_stamp(ms: i64, nanos: u32) -> String {
    let tm = tm_of(ms, false);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}{:06}Z",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        ms.rem_euclid(1000),
        nanos % 1_000_000
    )
}

/// rsyslog's traditional file format stamp (RFC 3164): `Apr  2 14:23:17`, local.
pub fn syslog_3164_stamp(ms: i64) -> String {
    let tm = tm_of(ms, true);
    format!(
        "{} {:>2} {:02}:{:02}:{:02}",
        MONTHS[tm.tm_mon.clamp(0, 11) as usize],
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// `journalctl`'s default (`-o short`) stamp: `Apr 02 14:23:17`, local, the day
/// zero-padded (strftime `%b %d %H:%M:%S`).
pub fn journal_short_stamp(ms: i64) -> String {
    let tm = tm_of(ms, true);
    format!(
        "{} {:02} {:02}:{:02}:{:02}",
        MONTHS[tm.tm_mon.clamp(0, 11) as usize],
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// rsyslog's high-precision file format stamp (RSYSLOG_FileFormat):
/// `2026-04-02T14:23:17.123456+02:00`, local with the offset.
pub fn syslog_rfc3339_stamp(ms: i64) -> String {
    let tm = tm_of(ms, true);
    let off = tm.tm_gmtoff / 60;
    let sign = if off < 0 { '-' } else { '+' };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}000{sign}{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        ms.rem_euclid(1000),
        off.abs() / 60,
        off.abs() % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_and_fpm_stamps_agree() {
        let n = nginx_line_ms("2026/11/23 22:16:50 [error] 1#1: *1 x").expect("nginx stamp");
        let f = fpm_line_ms("[23-Nov-2026 22:16:50] NOTICE: x").expect("fpm stamp");
        assert_eq!(n, f);
        assert_eq!(nginx_line_ms("Stack trace:"), None);
        assert_eq!(fpm_line_ms("NOTICE: x"), None);
        let b = fpm_line_ms("[23-Nov-2026 22:16:51.123456] DEBUG: x").expect("parses");
        assert_eq!(b - f, 1000);
    }

    #[test]
    fn carrier_stamps() {
        // 2026-04-02T12:23:17.250Z
        let ms = 1_775_132_597_250;
        assert_eq!(docker_stamp(ms, 123_456), "2026-04-02T12:23:17.250123456Z");
        let local = syslog_3164_stamp(ms);
        assert_eq!(local.len(), 15, "{local:?}");
        let j = journal_short_stamp(ms);
        assert_eq!(j.len(), 15, "{j:?}");
        assert_eq!(&j[3..5], " 0", "{j:?}");
        assert_eq!(&local[3..5], "  ", "{local:?}");
        assert!(syslog_rfc3339_stamp(ms).contains(".250000"));
        // Round trip through the local stamps.
        let back = nginx_line_ms(&format!(
            "{} [error] 1#1: x",
            syslog_rfc3339_stamp(ms)[..19]
                .replace('-', "/")
                .replace('T', " ")
        ))
        .expect("round trip");
        assert_eq!(back, ms - 250);
    }
}
