//! Aligning raw `dmesg` times (seconds since boot) with wall-clock time, and saying
//! how it was done. In order of trust:
//! 1. `--boot-time` given by the user;
//! 2. lines that carry both clocks (kern.log keeps the printk stamp after the syslog
//!    time; journal JSON has both);
//! 3. a pid seen in both the FPM log (`child N exited on signal 9`, wall time) and the
//!    kernel log (`Killed process N`, boot time);
//! 4. this host's boot time (`btime` in /proc/stat), only when the result falls within
//!    the time span of the other inputs (the logs are then from this boot).

use serde::Serialize;

use super::load::Prescan;
use crate::time::EpochMs;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AlignMethod {
    /// No kernel line needed it (no raw dmesg input).
    #[default]
    NotNeeded,
    BootTimeFlag,
    KernelLogClock,
    PidMatch,
    HostBootTime,
    /// Raw dmesg times stay unaligned; kernel lines join by pid only.
    NotAligned,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Alignment {
    pub method: AlignMethod,
    /// The boot instant used, in ms since the epoch.
    pub boot_epoch_ms: Option<i64>,
    pub detail: String,
}

/// Reads `btime` (boot time, seconds since the epoch) from /proc/stat.
pub fn host_boot_time() -> Option<EpochMs> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("btime "))?;
    let secs: i64 = line[6..].trim().parse().ok()?;
    Some(EpochMs(secs * 1000))
}

/// Decides the boot instant for raw dmesg times from what the prescan found.
/// `others_span` is the time span of the other inputs (for the host boot time check).
pub fn decide(
    flag: Option<EpochMs>,
    prescan: &Prescan,
    host_btime: Option<EpochMs>,
    others_span: Option<(EpochMs, EpochMs)>,
) -> Alignment {
    if !prescan.needs_alignment {
        return Alignment::default();
    }
    let boot_of = |wall: EpochMs, secs: f64| wall.minus_ms((secs * 1000.0) as i64);
    let chosen: Option<(AlignMethod, EpochMs, String)> = if let Some(b) = flag {
        Some((
            AlignMethod::BootTimeFlag,
            b,
            "--boot-time given".to_string(),
        ))
    } else if let Some(pair) = prescan.pairs.first() {
        Some((
            AlignMethod::KernelLogClock,
            boot_of(pair.wall, pair.boot_secs),
            "from a kernel line carrying both wall-clock and boot time".to_string(),
        ))
    } else if let Some(m) = prescan.pid_match {
        Some((
            AlignMethod::PidMatch,
            m.boot,
            format!(
                "pid {} is in both the FPM log (child exit) and the kernel log",
                m.pid
            ),
        ))
    } else {
        host_btime.and_then(|b| {
            // Only trust this host's boot if the aligned kernel lines land in the
            // span of the other inputs.
            let (lo, hi) = others_span?;
            let inside = prescan.boot_secs.iter().all(|s| {
                let at = b.plus_ms((s * 1000.0) as i64);
                at >= lo.minus_ms(3_600_000) && at <= hi.plus_ms(3_600_000)
            });
            inside.then(|| {
                (
                    AlignMethod::HostBootTime,
                    b,
                    "this host's boot time (/proc/stat btime); the kernel lines fall within the other logs' span".to_string(),
                )
            })
        })
    };
    match chosen {
        Some((method, boot, detail)) => Alignment {
            method,
            boot_epoch_ms: Some(boot.0),
            detail,
        },
        None => Alignment {
            method: AlignMethod::NotAligned,
            boot_epoch_ms: None,
            detail: "raw dmesg times (seconds since boot) could not be aligned: give --boot-time, or kern.log/journal output; kernel lines are joined by pid only".to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::load::{ClockPair, PidMatch};

    fn needs() -> Prescan {
        Prescan {
            needs_alignment: true,
            boot_secs: vec![10.0],
            ..Prescan::default()
        }
    }

    #[test]
    fn order_of_trust() {
        assert_eq!(
            decide(None, &Prescan::default(), None, None).method,
            AlignMethod::NotNeeded
        );
        let mut p = needs();
        p.pid_match = Some(PidMatch {
            pid: 23114,
            boot: EpochMs(1_000),
        });
        let a = decide(None, &p, None, None);
        assert_eq!(
            (a.method, a.boot_epoch_ms),
            (AlignMethod::PidMatch, Some(1_000))
        );
        p.pairs.push(ClockPair {
            wall: EpochMs(20_000),
            boot_secs: 10.0,
        });
        let a = decide(None, &p, None, None);
        assert_eq!(
            (a.method, a.boot_epoch_ms),
            (AlignMethod::KernelLogClock, Some(10_000))
        );
        let a = decide(Some(EpochMs(5_000)), &p, None, None);
        assert_eq!(
            (a.method, a.boot_epoch_ms),
            (AlignMethod::BootTimeFlag, Some(5_000))
        );
    }

    #[test]
    fn host_btime_needs_a_plausible_span() {
        // Host booted long after the other logs: not this boot.
        let a = decide(
            None,
            &needs(),
            Some(EpochMs(100_000_000_000)),
            Some((EpochMs(0), EpochMs(1_000))),
        );
        assert_eq!(a.method, AlignMethod::NotAligned);
        let a = decide(
            None,
            &needs(),
            Some(EpochMs(1_000_000)),
            Some((EpochMs(1_000_000), EpochMs(2_000_000))),
        );
        assert_eq!(
            (a.method, a.boot_epoch_ms),
            (AlignMethod::HostBootTime, Some(1_000_000))
        );
    }
}
