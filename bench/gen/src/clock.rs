//! Simulated time as the three logs print it (NGINX `2026/04/02 14:23:17`, PHP-FPM
//! `[02-Apr-2026 14:23:17]`, ISO 8601 in records), computed without a date crate so the
//! output depends on nothing but the seed. Everything is UTC: the simulated host's local
//! time is UTC.

use crate::text::{push_u64, push_u64_pad};

pub(crate) const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Days since 1970-01-01 to (y, m, d); Howard Hinnant's civil_from_days.
pub(crate) fn civil(days: i64) -> (i64, u64, u64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u64;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub(crate) fn days_from_civil(y: i64, m: u64, d: u64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formatted timestamps of the current second, recomputed when the second changes.
pub(crate) struct Stamps {
    pub(crate) sec: u64,
    pub(crate) nginx: Vec<u8>, // 2026/04/02 14:23:17
    pub(crate) fpm: Vec<u8>,   // [02-Apr-2026 14:23:17]
    pub(crate) iso: Vec<u8>,   // 2026-04-02T14:23:17
}

impl Stamps {
    pub(crate) fn new() -> Stamps {
        Stamps {
            sec: u64::MAX,
            nginx: Vec::new(),
            fpm: Vec::new(),
            iso: Vec::new(),
        }
    }

    pub(crate) fn at(&mut self, sec: u64) {
        if sec == self.sec {
            return;
        }
        self.sec = sec;
        let (y, m, d) = civil((sec / 86_400) as i64);
        let s = sec % 86_400;
        let (hh, mm, ss) = (s / 3600, s / 60 % 60, s % 60);
        let y = y as u64;
        self.nginx.clear();
        push_u64(&mut self.nginx, y);
        self.nginx.push(b'/');
        push_u64_pad(&mut self.nginx, m, 2, b'0');
        self.nginx.push(b'/');
        push_u64_pad(&mut self.nginx, d, 2, b'0');
        self.nginx.push(b' ');
        hms(&mut self.nginx, hh, mm, ss);
        self.fpm.clear();
        self.fpm.push(b'[');
        push_u64_pad(&mut self.fpm, d, 2, b'0');
        self.fpm.push(b'-');
        self.fpm
            .extend_from_slice(MONTHS[m as usize - 1].as_bytes());
        self.fpm.push(b'-');
        push_u64(&mut self.fpm, y);
        self.fpm.push(b' ');
        hms(&mut self.fpm, hh, mm, ss);
        self.fpm.push(b']');
        self.iso.clear();
        push_u64(&mut self.iso, y);
        self.iso.push(b'-');
        push_u64_pad(&mut self.iso, m, 2, b'0');
        self.iso.push(b'-');
        push_u64_pad(&mut self.iso, d, 2, b'0');
        self.iso.push(b'T');
        hms(&mut self.iso, hh, mm, ss);
    }
}

pub(crate) fn hms(buf: &mut Vec<u8>, h: u64, m: u64, s: u64) {
    push_u64_pad(buf, h, 2, b'0');
    buf.push(b':');
    push_u64_pad(buf, m, 2, b'0');
    buf.push(b':');
    push_u64_pad(buf, s, 2, b'0');
}
