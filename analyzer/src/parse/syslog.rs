//! The envelope around system-log lines: RFC 3164 (`/var/log/syslog`, kern.log),
//! RFC 5424, rsyslog's ISO file format, and the `journalctl` text outputs (short,
//! short-precise, short-iso, short-iso-precise, short-full, short-monotonic,
//! short-unix) and `-o json`. What is inside (kernel, systemd, php-fpm messages) is
//! parsed by the modules for those.

use serde::Deserialize;

use crate::time::{self, EpochMs, LocalClock};

/// The time of a system-log line, as precise as the format tells it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SysTime {
    /// Wall-clock instant, when the format has one.
    pub wall: Option<EpochMs>,
    /// Seconds since boot (`short-monotonic`, the journal's monotonic timestamp).
    pub boot_secs: Option<f64>,
}

/// One system-log line, split into its envelope and message.
#[derive(Debug, Clone, PartialEq)]
pub struct SysLine<'a> {
    pub time: SysTime,
    pub ident: &'a str,
    pub pid: Option<u32>,
    pub message: &'a str,
}

/// State for lines whose time has no year (RFC 3164, journalctl short).
#[derive(Debug, Clone)]
pub struct Envelope {
    clock: LocalClock,
    /// Year and month of the newest dated line seen in any input; RFC 3164 lines are
    /// placed in that year, or the year before when their month is far later (the log
    /// spans a new year).
    reference: (i16, i8),
}

impl Envelope {
    pub fn new(clock: LocalClock, reference: (i16, i8)) -> Envelope {
        Envelope { clock, reference }
    }

    fn year_for(&self, month: i8) -> i16 {
        let (year, ref_month) = self.reference;
        if month > ref_month + 6 {
            year - 1
        } else {
            year
        }
    }

    /// Parses a text line in any of the envelope formats. `None` when the line does
    /// not look like a system-log line at all.
    pub fn parse<'a>(&mut self, line: &'a str) -> Option<SysLine<'a>> {
        let b = line.as_bytes();
        let mut rest = line;
        // `<PRI>` as sent on the wire, followed by RFC 5424's version `1 `.
        if b.first() == Some(&b'<') {
            let end = line.find('>')?;
            if end > 4 || !b[1..end].iter().all(u8::is_ascii_digit) {
                return None;
            }
            rest = &line[end + 1..];
            if let Some(r) = rest.strip_prefix("1 ") {
                return parse_rfc5424(r);
            }
        }
        let rb = rest.as_bytes();
        let (time, after) = if rb.len() > 15 && rb[0].is_ascii_alphabetic() && rb[3] == b' ' {
            if rb[4].is_ascii_digit() && rb[8] == b'-' {
                // short-full: `Thu 2026-04-02 14:23:17 UTC host ident: msg`
                self.short_full(rest)?
            } else {
                let (civil, n) = time::parse_syslog_time(rb, 1970)?;
                let civil = time::Civil {
                    year: self.year_for(civil.month),
                    ..civil
                };
                let wall = self.clock.to_epoch(civil);
                (
                    SysTime {
                        wall,
                        boot_secs: None,
                    },
                    &rest[n..],
                )
            }
        } else if rb.len() > 20 && rb[4] == b'-' && rb[10] == b'T' {
            let (at, n) = time::parse_iso_with_offset(rb)?;
            (
                SysTime {
                    wall: Some(at),
                    boot_secs: None,
                },
                &rest[n..],
            )
        } else if rb.first() == Some(&b'[') {
            // short-monotonic: `[423847.291234] host ident: msg`
            let close = rest.find("] ")?;
            let secs: f64 = rest[1..close].trim().parse().ok()?;
            (
                SysTime {
                    wall: None,
                    boot_secs: Some(secs),
                },
                &rest[close + 1..],
            )
        } else if rb.first().is_some_and(u8::is_ascii_digit) {
            // short-unix: `1775139797.291234 host ident: msg`
            let sp = rest.find(' ')?;
            let secs: f64 = rest[..sp].parse().ok()?;
            if secs < 100_000_000.0 {
                return None;
            }
            (
                SysTime {
                    wall: Some(EpochMs((secs * 1000.0) as i64)),
                    boot_secs: None,
                },
                &rest[sp..],
            )
        } else {
            return None;
        };
        let after = after.strip_prefix(' ')?;
        let (_host, ident_part) = split_word(after)?;
        let (ident, pid, message) = split_ident(ident_part)?;
        Some(SysLine {
            time,
            ident,
            pid,
            message,
        })
    }

    fn short_full<'a>(&mut self, rest: &'a str) -> Option<(SysTime, &'a str)> {
        // `Thu 2026-04-02 14:23:17 UTC host ...`
        let b = rest.as_bytes();
        if b.len() < 4 + 19 + 2 {
            return None;
        }
        let date = &b[4..];
        let civil = time::Civil {
            year: time::digits(date, 4)? as i16,
            month: time::digits(&date[5..], 2)? as i8,
            day: time::digits(&date[8..], 2)? as i8,
            hour: time::digits(&date[11..], 2)? as i8,
            minute: time::digits(&date[14..], 2)? as i8,
            second: time::digits(&date[17..], 2)? as i8,
            micros: 0,
        };
        let after_clock = &rest[4 + 19..];
        let after_clock = after_clock.strip_prefix(' ')?;
        let (zone, after) = split_word(after_clock)?;
        let wall = if zone == "UTC" || zone == "GMT" {
            time::civil_utc(civil)
        } else {
            // A zone abbreviation (CEST, EST) is ambiguous; the local zone is the best
            // reading, since journalctl prints in the machine's zone.
            self.clock.to_epoch(civil)
        };
        Some((
            SysTime {
                wall,
                boot_secs: None,
            },
            // Put back the separating space the caller strips.
            &rest[rest.len() - after.len() - 1..],
        ))
    }
}

/// `<ts> host app procid msgid [sd] msg` after `<PRI>1 `.
fn parse_rfc5424(r: &str) -> Option<SysLine<'_>> {
    let (at, n) = time::parse_iso_with_offset(r.as_bytes())?;
    let r = r[n..].strip_prefix(' ')?;
    let (_host, r) = split_word(r)?;
    let (app, r) = split_word(r)?;
    let (procid, r) = split_word(r)?;
    let (_msgid, r) = split_word(r)?;
    let message = if let Some(stripped) = r.strip_prefix("- ") {
        stripped
    } else if r == "-" {
        ""
    } else if r.starts_with('[') {
        r.find("] ").map(|i| &r[i + 2..]).unwrap_or("")
    } else {
        r
    };
    Some(SysLine {
        time: SysTime {
            wall: Some(at),
            boot_secs: None,
        },
        ident: app,
        pid: procid.parse().ok(),
        message,
    })
}

/// First space-separated word and the rest after the space.
fn split_word(s: &str) -> Option<(&str, &str)> {
    let i = s.find(' ')?;
    Some((&s[..i], &s[i + 1..]))
}

/// `ident[pid]: message` or `ident: message`.
fn split_ident(s: &str) -> Option<(&str, Option<u32>, &str)> {
    let colon = s
        .find(": ")
        .or_else(|| s.strip_suffix(':').map(|x| x.len()))?;
    let head = &s[..colon];
    if head.is_empty() || head.contains(' ') {
        return None;
    }
    let message = s.get(colon + 2..).unwrap_or("");
    if let Some(open) = head.find('[') {
        let pid = head[open + 1..].strip_suffix(']')?.parse().ok();
        Some((&head[..open], pid, message))
    } else {
        Some((head, None, message))
    }
}

/// One `journalctl -o json` object (all values are strings; MESSAGE may be null or
/// an array of bytes).
#[derive(Debug, Deserialize)]
struct JournalJson {
    #[serde(rename = "__REALTIME_TIMESTAMP")]
    realtime: Option<String>,
    #[serde(rename = "__MONOTONIC_TIMESTAMP")]
    monotonic: Option<String>,
    #[serde(rename = "_SOURCE_MONOTONIC_TIMESTAMP")]
    source_monotonic: Option<String>,
    #[serde(rename = "_TRANSPORT")]
    transport: Option<String>,
    #[serde(rename = "SYSLOG_IDENTIFIER")]
    identifier: Option<String>,
    #[serde(rename = "_COMM")]
    comm: Option<String>,
    #[serde(rename = "_PID")]
    pid: Option<String>,
    #[serde(rename = "MESSAGE")]
    message: Option<serde_json::Value>,
}

/// An owned system-log line from a journal JSON object.
#[derive(Debug, Clone, PartialEq)]
pub struct OwnedSysLine {
    pub time: SysTime,
    pub ident: String,
    pub pid: Option<u32>,
    pub message: String,
}

/// Parses one line of `journalctl -o json`.
pub fn parse_journal_json(line: &str) -> Option<OwnedSysLine> {
    let j: JournalJson = serde_json::from_str(line).ok()?;
    let message = match j.message? {
        serde_json::Value::String(s) => s,
        // Not printable UTF-8: the journal gives the bytes.
        serde_json::Value::Array(bytes) => {
            let raw: Vec<u8> = bytes
                .iter()
                .filter_map(|v| v.as_u64().and_then(|n| u8::try_from(n).ok()))
                .collect();
            String::from_utf8_lossy(&raw).into_owned()
        }
        _ => return None,
    };
    let micros = |s: &Option<String>| s.as_deref().and_then(|v| v.parse::<i64>().ok());
    let wall = micros(&j.realtime).map(|us| EpochMs(us / 1000));
    let boot_secs = micros(&j.source_monotonic)
        .or_else(|| micros(&j.monotonic))
        .map(|us| us as f64 / 1e6);
    let ident = if j.transport.as_deref() == Some("kernel") {
        "kernel".to_string()
    } else {
        j.identifier.or(j.comm).unwrap_or_default()
    };
    Some(OwnedSysLine {
        time: SysTime { wall, boot_secs },
        ident,
        pid: j.pid.and_then(|p| p.parse().ok()),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Zone;

    const T: i64 = 1_775_139_797_000; // 2026-04-02T14:23:17Z

    fn env() -> Envelope {
        Envelope::new(LocalClock::new(&Zone::utc()), (2026, 4))
    }

    #[test]
    fn rfc3164_and_journal_short() {
        let mut e = env();
        let a = e
            .parse("Apr  2 14:23:17 web1 kernel: [423847.291234] Out of memory: Killed process 23114 (php-fpm8.2)")
            .unwrap();
        assert_eq!(a.time.wall, Some(EpochMs(T)));
        assert_eq!(a.ident, "kernel");
        assert!(a.message.starts_with("[423847.291234] Out of memory"));
        let b = e
            .parse("Apr 02 14:23:17 web1 php-fpm[812]: [WARNING] [pool www] server reached pm.max_children setting (5), consider raising it")
            .unwrap();
        assert_eq!(b.ident, "php-fpm");
        assert_eq!(b.pid, Some(812));
        assert_eq!(b.time.wall, Some(EpochMs(T)));
        let c = e
            .parse("Apr 02 14:23:17.291234 web1 systemd[1]: php8.2-fpm.service: Deactivated successfully.")
            .unwrap();
        assert_eq!(c.time.wall, Some(EpochMs(T + 291)));
        assert_eq!(c.ident, "systemd");
        assert_eq!(c.message, "php8.2-fpm.service: Deactivated successfully.");
    }

    #[test]
    fn year_rolls_back_for_december_lines_read_in_january() {
        let mut e = Envelope::new(LocalClock::new(&Zone::utc()), (2027, 1));
        let l = e.parse("Dec 31 23:59:59 web1 kernel: x").unwrap();
        let jan = e.parse("Jan  1 00:00:01 web1 kernel: x").unwrap();
        assert!(l.time.wall.unwrap() < jan.time.wall.unwrap());
        assert_eq!(jan.time.wall.unwrap().0 - l.time.wall.unwrap().0, 2000);
    }

    #[test]
    fn iso_and_full_and_monotonic_and_unix() {
        let mut e = env();
        for line in [
            "2026-04-02T14:23:17+0000 web1 kernel: M",
            "2026-04-02T14:23:17+00:00 web1 kernel: M",
            "2026-04-02T14:23:17.000000+00:00 web1 kernel: M",
            "Thu 2026-04-02 14:23:17 UTC web1 kernel: M",
            "1775139797.000000 web1 kernel: M",
            "<3>Apr  2 14:23:17 web1 kernel: M",
            "<3>1 2026-04-02T14:23:17.000000+00:00 web1 kernel - - - M",
        ] {
            let l = e.parse(line).unwrap_or_else(|| panic!("{line}"));
            assert_eq!(l.time.wall, Some(EpochMs(T)), "{line}");
            assert_eq!(l.ident, "kernel", "{line}");
            assert_eq!(l.message, "M", "{line}");
        }
        let m = e.parse("[423847.291234] web1 kernel: M").unwrap();
        assert_eq!(m.time.boot_secs, Some(423847.291234));
        assert_eq!(m.time.wall, None);
    }

    #[test]
    fn rejects_non_syslog() {
        let mut e = env();
        assert!(e.parse("2026/04/02 14:23:17 [error] 1#1: *1 x").is_none());
        assert!(e
            .parse("[02-Apr-2026 14:23:17] NOTICE: fpm is running, pid 1")
            .is_none());
        assert!(e
            .parse("[  321.572384] Out of memory: Killed process 1 (x)")
            .is_none());
        assert!(e.parse("hello world").is_none());
    }

    #[test]
    fn journal_json_kernel_record() {
        let l = parse_journal_json(r#"{"__CURSOR":"s=1","__REALTIME_TIMESTAMP":"1775139797291234","__MONOTONIC_TIMESTAMP":"423847291234","_TRANSPORT":"kernel","PRIORITY":"3","SYSLOG_IDENTIFIER":"kernel","_SOURCE_MONOTONIC_TIMESTAMP":"423847291234","MESSAGE":"Out of memory: Killed process 23114 (php-fpm8.2)"}"#).unwrap();
        assert_eq!(l.ident, "kernel");
        assert_eq!(l.time.wall, Some(EpochMs(T + 291)));
        assert_eq!(l.time.boot_secs, Some(423847.291234));
        let b = parse_journal_json(r#"{"__REALTIME_TIMESTAMP":"1775139797000000","_TRANSPORT":"stdout","SYSLOG_IDENTIFIER":"php-fpm8.2","_PID":"812","MESSAGE":[65,66,7]}"#).unwrap();
        assert_eq!(b.ident, "php-fpm8.2");
        assert_eq!(b.pid, Some(812));
        assert_eq!(b.message, "AB\u{7}");
        assert!(parse_journal_json(r#"{"MESSAGE":null}"#).is_none());
    }
}
