//! Instants, the local clock of log files without a zone, and the date layouts the
//! inputs use.
//!
//! Everything is held as milliseconds since the Unix epoch (`EpochMs`): cheap to
//! compare and to store in the correlation index. NGINX and PHP-FPM write local time
//! without a zone, so a [`LocalClock`] turns their civil times into instants with the
//! zone given by `--tz` (or the machine's).

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::Timestamp;

/// Milliseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EpochMs(pub i64);

impl EpochMs {
    pub fn plus_ms(self, ms: i64) -> EpochMs {
        EpochMs(self.0.saturating_add(ms))
    }

    pub fn minus_ms(self, ms: i64) -> EpochMs {
        EpochMs(self.0.saturating_sub(ms))
    }

    /// Absolute distance in milliseconds.
    pub fn distance(self, other: EpochMs) -> i64 {
        self.0.saturating_sub(other.0).saturating_abs()
    }
}

/// Where the zone for zone-less log times came from (said in every report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TzSource {
    Flag,
    Machine,
}

impl TzSource {
    pub fn as_str(self) -> &'static str {
        match self {
            TzSource::Flag => "--tz",
            TzSource::Machine => "machine default",
        }
    }
}

/// The zone used for zone-less times, with its name for the report.
#[derive(Debug, Clone)]
pub struct Zone {
    pub tz: TimeZone,
    pub name: String,
    pub source: TzSource,
}

impl Zone {
    /// `--tz NAME` when given, else the machine's zone.
    pub fn from_flag(flag: Option<&str>) -> Result<Zone, String> {
        match flag {
            Some(name) => {
                let tz = TimeZone::get(name).map_err(|e| format!("--tz {name}: {e}"))?;
                Ok(Zone {
                    tz,
                    name: name.to_string(),
                    source: TzSource::Flag,
                })
            }
            None => {
                let tz = TimeZone::system();
                let name = tz.iana_name().unwrap_or("system local time").to_string();
                Ok(Zone {
                    tz,
                    name,
                    source: TzSource::Machine,
                })
            }
        }
    }

    pub fn utc() -> Zone {
        Zone {
            tz: TimeZone::UTC,
            name: "UTC".to_string(),
            source: TzSource::Flag,
        }
    }

    /// Formats an instant in this zone as RFC 3339 with milliseconds.
    pub fn format(&self, at: EpochMs) -> String {
        match Timestamp::from_millisecond(at.0) {
            Ok(ts) => ts
                .to_zoned(self.tz.clone())
                .strftime("%Y-%m-%dT%H:%M:%S%.3f%:z")
                .to_string(),
            Err(_) => format!("@{}ms", at.0),
        }
    }

    /// Shorter form for terminal output: `2026-04-02 14:23:17`.
    pub fn format_short(&self, at: EpochMs) -> String {
        match Timestamp::from_millisecond(at.0) {
            Ok(ts) => ts
                .to_zoned(self.tz.clone())
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string(),
            Err(_) => format!("@{}ms", at.0),
        }
    }
}

/// A civil (wall-clock) time as read from a log line, before a zone is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i16,
    pub month: i8,
    pub day: i8,
    pub hour: i8,
    pub minute: i8,
    pub second: i8,
    pub micros: i32,
}

impl Civil {
    fn to_datetime(self) -> Option<DateTime> {
        DateTime::new(
            self.year,
            self.month,
            self.day,
            self.hour,
            self.minute,
            self.second,
            self.micros.saturating_mul(1000),
        )
        .ok()
    }
}

/// Converts zone-less civil times to instants in one zone. Keeps the last conversion:
/// consecutive lines of a log mostly share their second, and the zone lookup is the
/// costly part.
#[derive(Debug, Clone)]
pub struct LocalClock {
    tz: TimeZone,
    last: Option<(Civil, EpochMs)>,
}

impl LocalClock {
    pub fn new(zone: &Zone) -> LocalClock {
        LocalClock {
            tz: zone.tz.clone(),
            last: None,
        }
    }

    pub fn to_epoch(&mut self, civil: Civil) -> Option<EpochMs> {
        let whole_second = Civil { micros: 0, ..civil };
        let base = match self.last {
            Some((c, at)) if c == whole_second => at,
            _ => {
                let dt = whole_second.to_datetime()?;
                let ts = self.tz.to_timestamp(dt).ok()?;
                let at = EpochMs(ts.as_millisecond());
                self.last = Some((whole_second, at));
                at
            }
        };
        Some(base.plus_ms(i64::from(civil.micros / 1000)))
    }
}

/// Converts a civil time that is known to be UTC (or carries its own offset, applied
/// by the caller) to an instant.
pub fn civil_utc(civil: Civil) -> Option<EpochMs> {
    let dt = civil.to_datetime()?;
    match TimeZone::UTC.to_timestamp(dt) {
        Ok(ts) => Some(EpochMs(ts.as_millisecond())),
        // jiff's timestamps end a day before 9999-12-31T23:59:59Z, a time people
        // do type as "until the end"; plain arithmetic covers the rest.
        Err(_) => {
            let days = days_from_civil(i64::from(civil.year), civil.month.into(), civil.day.into());
            let secs = days * 86_400
                + i64::from(civil.hour) * 3_600
                + i64::from(civil.minute) * 60
                + i64::from(civil.second);
            Some(EpochMs(secs * 1_000 + i64::from(civil.micros) / 1_000))
        }
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `Jan`..`Dec` (C locale, as strftime `%b` writes them) to 1..=12.
pub fn month_from_abbrev(s: &[u8]) -> Option<i8> {
    if s.len() != 3 {
        return None;
    }
    let m = match [
        s[0].to_ascii_lowercase(),
        s[1].to_ascii_lowercase(),
        s[2].to_ascii_lowercase(),
    ] {
        [b'j', b'a', b'n'] => 1,
        [b'f', b'e', b'b'] => 2,
        [b'm', b'a', b'r'] => 3,
        [b'a', b'p', b'r'] => 4,
        [b'm', b'a', b'y'] => 5,
        [b'j', b'u', b'n'] => 6,
        [b'j', b'u', b'l'] => 7,
        [b'a', b'u', b'g'] => 8,
        [b's', b'e', b'p'] => 9,
        [b'o', b'c', b't'] => 10,
        [b'n', b'o', b'v'] => 11,
        [b'd', b'e', b'c'] => 12,
        _ => return None,
    };
    Some(m)
}

/// Parses exactly `n` ASCII digits.
pub fn digits(s: &[u8], n: usize) -> Option<i32> {
    if s.len() < n {
        return None;
    }
    let mut v: i32 = 0;
    for &b in &s[..n] {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + i32::from(b - b'0');
    }
    Some(v)
}

/// A day of month that may be space-padded (`" 2"`) or zero-padded (`"02"`).
fn padded_day(s: &[u8]) -> Option<i8> {
    if s.len() < 2 {
        return None;
    }
    let d = if s[0] == b' ' {
        digits(&s[1..], 1)?
    } else {
        digits(s, 2)?
    };
    i8::try_from(d).ok()
}

/// `HH:MM:SS` at the start of `s`.
fn clock(s: &[u8]) -> Option<(i8, i8, i8)> {
    if s.len() < 8 || s[2] != b':' || s[5] != b':' {
        return None;
    }
    let h = digits(s, 2)?;
    let m = digits(&s[3..], 2)?;
    let sec = digits(&s[6..], 2)?;
    Some((h as i8, m as i8, sec as i8))
}

/// Fractional seconds after a `.` or `,`: returns (micros, bytes consumed incl. the dot).
fn fraction(s: &[u8]) -> (i32, usize) {
    if s.first().is_some_and(|&b| b == b'.' || b == b',') {
        let mut n = 1;
        let mut micros: i64 = 0;
        let mut scale = 100_000;
        while n < s.len() && s[n].is_ascii_digit() {
            if scale > 0 {
                micros += i64::from(s[n] - b'0') * scale;
                scale /= 10;
            }
            n += 1;
        }
        if n > 1 {
            return (micros as i32, n);
        }
    }
    (0, 0)
}

/// NGINX error log: `2026/04/02 14:23:17` (19 bytes).
pub fn parse_nginx_time(s: &[u8]) -> Option<Civil> {
    if s.len() < 19 || s[4] != b'/' || s[7] != b'/' || s[10] != b' ' {
        return None;
    }
    let (hour, minute, second) = clock(&s[11..])?;
    Some(Civil {
        year: digits(s, 4)? as i16,
        month: digits(&s[5..], 2)? as i8,
        day: digits(&s[8..], 2)? as i8,
        hour,
        minute,
        second,
        micros: 0,
    })
}

/// PHP-FPM: `02-Apr-2026 14:23:17` optionally followed by `.291234` (debug level).
/// Returns the civil time and the bytes consumed.
pub fn parse_fpm_time(s: &[u8]) -> Option<(Civil, usize)> {
    if s.len() < 20 || s[2] != b'-' || s[6] != b'-' || s[11] != b' ' {
        return None;
    }
    let (hour, minute, second) = clock(&s[12..])?;
    let (micros, extra) = fraction(&s[20..]);
    Some((
        Civil {
            year: digits(&s[7..], 4)? as i16,
            month: month_from_abbrev(&s[3..6])?,
            day: digits(s, 2)? as i8,
            hour,
            minute,
            second,
            micros,
        },
        20 + extra,
    ))
}

/// RFC 3164 / journalctl short: `Apr  2 14:23:17` or `Apr 02 14:23:17`, optionally
/// `.291234` (short-precise). The year is not in the text: `year` supplies it.
pub fn parse_syslog_time(s: &[u8], year: i16) -> Option<(Civil, usize)> {
    if s.len() < 15 || s[3] != b' ' || s[6] != b' ' {
        return None;
    }
    let month = month_from_abbrev(&s[0..3])?;
    let day = padded_day(&s[4..6])?;
    let (hour, minute, second) = clock(&s[7..])?;
    let (micros, extra) = fraction(&s[15..]);
    Some((
        Civil {
            year,
            month,
            day,
            hour,
            minute,
            second,
            micros,
        },
        15 + extra,
    ))
}

/// `dmesg -T`: `Thu Apr  2 14:23:17 2026` (24 bytes).
pub fn parse_ctime(s: &[u8]) -> Option<Civil> {
    if s.len() < 24 || s[3] != b' ' || s[7] != b' ' || s[10] != b' ' || s[19] != b' ' {
        return None;
    }
    let month = month_from_abbrev(&s[4..7])?;
    let day = padded_day(&s[8..10])?;
    let (hour, minute, second) = clock(&s[11..])?;
    Some(Civil {
        year: digits(&s[20..], 4)? as i16,
        month,
        day,
        hour,
        minute,
        second,
        micros: 0,
    })
}

/// ISO 8601 with an offset: `2026-04-02T14:23:17.291234+00:00`, `...+0000`,
/// `...,291234+00:00` (dmesg iso), `...Z`. Returns the instant and the bytes consumed.
pub fn parse_iso_with_offset(s: &[u8]) -> Option<(EpochMs, usize)> {
    if s.len() < 20 || s[4] != b'-' || s[7] != b'-' || (s[10] != b'T' && s[10] != b' ') {
        return None;
    }
    let (hour, minute, second) = clock(&s[11..])?;
    let (micros, extra) = fraction(&s[19..]);
    let civil = Civil {
        year: digits(s, 4)? as i16,
        month: digits(&s[5..], 2)? as i8,
        day: digits(&s[8..], 2)? as i8,
        hour,
        minute,
        second,
        micros,
    };
    let mut n = 19 + extra;
    let offset_secs: i64 = match s.get(n) {
        Some(b'Z') => {
            n += 1;
            0
        }
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits(&s[n + 1..], 2)?;
            let (om, len) = if s.get(n + 3) == Some(&b':') {
                (digits(&s[n + 4..], 2)?, 6)
            } else {
                (digits(&s[n + 3..], 2)?, 5)
            };
            n += len;
            let v = i64::from(oh * 3600 + om * 60);
            if sign == b'-' {
                -v
            } else {
                v
            }
        }
        _ => return None,
    };
    let utc = civil_utc(civil)?;
    Some((utc.minus_ms(offset_secs * 1000), n))
}

/// NGINX access log `$time_local`: `02/Apr/2026:14:23:17 +0000`.
pub fn parse_access_time(s: &[u8]) -> Option<EpochMs> {
    if s.len() < 26 || s[2] != b'/' || s[6] != b'/' || s[11] != b':' || s[20] != b' ' {
        return None;
    }
    let (hour, minute, second) = clock(&s[12..])?;
    let civil = Civil {
        year: digits(&s[7..], 4)? as i16,
        month: month_from_abbrev(&s[3..6])?,
        day: digits(s, 2)? as i8,
        hour,
        minute,
        second,
        micros: 0,
    };
    let sign = s[21];
    let oh = digits(&s[22..], 2)?;
    let om = digits(&s[24..], 2)?;
    let mut off = i64::from(oh * 3600 + om * 60);
    if sign == b'-' {
        off = -off;
    } else if sign != b'+' {
        return None;
    }
    Some(civil_utc(civil)?.minus_ms(off * 1000))
}

/// `--since`/`--until`/`--boot-time` values: RFC 3339, `YYYY-MM-DD HH:MM:SS` (local in
/// `zone`), or seconds since the epoch.
pub fn parse_user_time(s: &str, zone: &Zone) -> Option<EpochMs> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        let secs: f64 = s.parse().ok()?;
        return Some(EpochMs((secs * 1000.0) as i64));
    }
    if let Some((at, n)) = parse_iso_with_offset(s.as_bytes()) {
        if n == s.len() {
            return Some(at);
        }
    }
    let dt: DateTime = s.replace('T', " ").parse().ok()?;
    match zone.tz.to_timestamp(dt) {
        Ok(ts) => Some(EpochMs(ts.as_millisecond())),
        // Past jiff's range (the last hours of year 9999): the zone's offset cannot
        // matter there.
        Err(_) => civil_utc(Civil {
            year: dt.year(),
            month: dt.month(),
            day: dt.day(),
            hour: dt.hour(),
            minute: dt.minute(),
            second: dt.second(),
            micros: 0,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc_clock() -> LocalClock {
        LocalClock::new(&Zone::utc())
    }

    // 2026-04-02T14:23:17Z
    const T: i64 = 1_775_139_797_000;

    #[test]
    fn user_times_up_to_the_end_of_year_9999() {
        let utc = Zone::utc();
        assert_eq!(
            parse_user_time("9999-12-31T23:59:59Z", &utc),
            Some(EpochMs(253_402_300_799_000))
        );
        assert_eq!(
            parse_user_time("9999-12-31T23:59:59+00:00", &utc),
            Some(EpochMs(253_402_300_799_000))
        );
        assert_eq!(
            parse_user_time("9999-12-31 23:59:59", &utc),
            Some(EpochMs(253_402_300_799_000))
        );
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2026, 4, 2), 20_545);
    }

    #[test]
    fn nginx_time() {
        let c = parse_nginx_time(b"2026/04/02 14:23:17 [crit] 1#1: x").unwrap();
        assert_eq!(utc_clock().to_epoch(c), Some(EpochMs(T)));
        assert!(parse_nginx_time(b"2026-04-02 14:23:17").is_none());
    }

    #[test]
    fn fpm_time_plain_and_debug() {
        let (c, n) = parse_fpm_time(b"02-Apr-2026 14:23:17] NOTICE").unwrap();
        assert_eq!(n, 20);
        assert_eq!(utc_clock().to_epoch(c), Some(EpochMs(T)));
        let (c, n) = parse_fpm_time(b"02-Apr-2026 14:23:17.291234] WARNING").unwrap();
        assert_eq!(n, 27);
        assert_eq!(utc_clock().to_epoch(c), Some(EpochMs(T + 291)));
    }

    #[test]
    fn local_clock_applies_zone() {
        let zone = Zone::from_flag(Some("Europe/Berlin")).unwrap();
        let mut clock = LocalClock::new(&zone);
        let c = parse_nginx_time(b"2026/04/02 16:23:17").unwrap();
        // CEST is UTC+2 in April.
        assert_eq!(clock.to_epoch(c), Some(EpochMs(T)));
        assert_eq!(zone.format(EpochMs(T)), "2026-04-02T16:23:17.000+02:00");
    }

    #[test]
    fn syslog_time_space_and_zero_padded() {
        let (a, n) = parse_syslog_time(b"Apr  2 14:23:17 web1", 2026).unwrap();
        let (b, _) = parse_syslog_time(b"Apr 02 14:23:17 web1", 2026).unwrap();
        assert_eq!(n, 15);
        assert_eq!(a, b);
        let (p, n) = parse_syslog_time(b"Apr 02 14:23:17.291234 web1", 2026).unwrap();
        assert_eq!(n, 22);
        assert_eq!(p.micros, 291_234);
    }

    #[test]
    fn ctime_and_iso_and_access() {
        let c = parse_ctime(b"Thu Apr  2 14:23:17 2026] Out").unwrap();
        assert_eq!(civil_utc(c), Some(EpochMs(T)));
        for s in [
            "2026-04-02T14:23:17+0000 web1",
            "2026-04-02T14:23:17+00:00 web1",
            "2026-04-02T16:23:17+02:00 web1",
            "2026-04-02T14:23:17Z",
        ] {
            assert_eq!(
                parse_iso_with_offset(s.as_bytes()).map(|x| x.0),
                Some(EpochMs(T)),
                "{s}"
            );
        }
        let (at, _) = parse_iso_with_offset(b"2026-04-02T14:23:17,291234+00:00 M").unwrap();
        assert_eq!(at, EpochMs(T + 291));
        assert_eq!(
            parse_access_time(b"02/Apr/2026:14:23:17 +0000]"),
            Some(EpochMs(T))
        );
        assert_eq!(
            parse_access_time(b"02/Apr/2026:15:23:17 +0100]"),
            Some(EpochMs(T))
        );
    }

    #[test]
    fn user_times() {
        let z = Zone::utc();
        assert_eq!(
            parse_user_time("2026-04-02T14:23:17Z", &z),
            Some(EpochMs(T))
        );
        assert_eq!(parse_user_time("2026-04-02 14:23:17", &z), Some(EpochMs(T)));
        assert_eq!(parse_user_time("1775139797", &z), Some(EpochMs(T)));
        assert_eq!(parse_user_time("yesterday", &z), None);
    }
}
