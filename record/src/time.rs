//! RFC 3339 timestamps with milliseconds and the worker's UTC offset.

use jiff::tz::{Offset, TimeZone};
use jiff::Timestamp;

/// Formats `epoch_ms` in the zone whose offset from UTC is `gmtoff_minutes` (what
/// NGINX caches as `ngx_cached_time->gmtoff`), e.g. `2026-11-23T21:30:01.123+01:00`.
pub fn rfc3339_millis(epoch_ms: i64, gmtoff_minutes: i32) -> String {
    let ts = Timestamp::from_millisecond(epoch_ms).unwrap_or(Timestamp::UNIX_EPOCH);
    let offset = Offset::from_seconds(gmtoff_minutes.saturating_mul(60)).unwrap_or(Offset::UTC);
    let zoned = ts.to_zoned(TimeZone::fixed(offset));
    zoned.strftime("%Y-%m-%dT%H:%M:%S%.3f%:z").to_string()
}

/// Inserts milliseconds into NGINX's cached `$time_iso8601` text
/// (`2026-11-23T21:30:01+01:00` -> `2026-11-23T21:30:01.123+01:00`): NGINX already
/// formatted the current second, so a record only adds three digits. Falls back to
/// formatting from scratch when the text is not in that shape.
pub fn iso8601_with_millis(cached: &[u8], msec: u32, epoch_ms: i64, gmtoff_minutes: i32) -> String {
    iso8601_with_millis_text(cached, msec, epoch_ms, gmtoff_minutes)
        .as_str()
        .to_owned()
}

/// A timestamp's text in a fixed buffer (no allocation on NGINX's shape).
#[derive(Debug, Clone, Copy)]
pub struct TimeText {
    buf: [u8; 48],
    len: usize,
}

impl TimeText {
    /// The text's bytes (ASCII).
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII is ever copied in (checked where it is filled).
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }

    fn from_ascii(parts: &[&[u8]]) -> TimeText {
        let mut t = TimeText {
            buf: [0; 48],
            len: 0,
        };
        for p in parts {
            let n = p.len().min(t.buf.len() - t.len);
            t.buf[t.len..t.len + n].copy_from_slice(&p[..n]);
            t.len += n;
        }
        t
    }
}

/// [`iso8601_with_millis`] without an allocation (the module writes one per record).
pub fn iso8601_with_millis_text(
    cached: &[u8],
    msec: u32,
    epoch_ms: i64,
    gmtoff_minutes: i32,
) -> TimeText {
    let shaped = cached.len() == 25
        && cached.get(10) == Some(&b'T')
        && matches!(cached.get(19), Some(b'+' | b'-'))
        && cached.is_ascii();
    if !shaped {
        let s = rfc3339_millis(epoch_ms, gmtoff_minutes);
        return TimeText::from_ascii(&[s.as_bytes()]);
    }
    let ms = msec % 1000;
    let digits = [
        b'.',
        b'0' + (ms / 100) as u8,
        b'0' + (ms / 10 % 10) as u8,
        b'0' + (ms % 10) as u8,
    ];
    TimeText::from_ascii(&[&cached[..19], &digits, &cached[19..]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_millis_into_the_cached_iso_time() {
        assert_eq!(
            iso8601_with_millis(b"2026-04-02T16:23:17+02:00", 5, 0, 0),
            "2026-04-02T16:23:17.005+02:00"
        );
        // Not NGINX's shape: formatted from the timestamp instead.
        assert_eq!(
            iso8601_with_millis(b"garbage", 291, 1_775_139_797_291, 0),
            "2026-04-02T14:23:17.291+00:00"
        );
    }

    #[test]
    fn formats_with_offset_and_millis() {
        // 2026-04-02T14:23:17.291Z
        assert_eq!(
            rfc3339_millis(1_775_139_797_291, 0),
            "2026-04-02T14:23:17.291+00:00"
        );
        assert_eq!(
            rfc3339_millis(1_775_139_797_005, 120),
            "2026-04-02T16:23:17.005+02:00"
        );
        assert_eq!(
            rfc3339_millis(1_775_139_797_000, -330),
            "2026-04-02T08:53:17.000-05:30"
        );
    }
}
