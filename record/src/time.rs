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

#[cfg(test)]
mod tests {
    use super::*;

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
