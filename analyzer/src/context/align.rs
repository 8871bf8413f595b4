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

use super::{Context, Timed};
use crate::parse::fpm::FpmEvent;
use crate::parse::kernel::KernelEvent;
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

/// Decides the boot instant and fills the times of boot-relative kernel events.
/// `pairs` are (wall, boot seconds) from lines carrying both clocks; `others_span` is
/// the time span of the other inputs.
pub fn align(
    ctx: &mut Context,
    flag: Option<EpochMs>,
    pairs: &[(EpochMs, f64)],
    host_btime: Option<EpochMs>,
    others_span: Option<(EpochMs, EpochMs)>,
) {
    let needs = ctx
        .kernel
        .iter()
        .any(|e| e.at.is_none() && e.boot_secs.is_some());
    if !needs {
        ctx.alignment = Alignment::default();
        return;
    }
    let boot_of = |wall: EpochMs, secs: f64| wall.minus_ms((secs * 1000.0) as i64);
    let chosen: Option<(AlignMethod, EpochMs, String)> = if let Some(b) = flag {
        Some((
            AlignMethod::BootTimeFlag,
            b,
            "--boot-time given".to_string(),
        ))
    } else if let Some(&(wall, secs)) = pairs.first() {
        Some((
            AlignMethod::KernelLogClock,
            boot_of(wall, secs),
            format!(
                "from {} kernel line(s) carrying both wall-clock and boot time",
                pairs.len()
            ),
        ))
    } else if let Some((pid, boot)) = pid_match(&ctx.kernel, &ctx.fpm) {
        Some((
            AlignMethod::PidMatch,
            boot,
            format!("pid {pid} is in both the FPM log (child exit) and the kernel log"),
        ))
    } else {
        host_btime.and_then(|b| {
            // Only trust this host's boot if the aligned kernel lines land in the
            // span of the other inputs.
            let (lo, hi) = others_span?;
            let inside = ctx
                .kernel
                .iter()
                .filter_map(|e| e.boot_secs)
                .all(|s| {
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
        Some((method, boot, detail)) => {
            for e in ctx.kernel.iter_mut() {
                if e.at.is_none() {
                    if let Some(s) = e.boot_secs {
                        e.at = Some(boot.plus_ms((s * 1000.0) as i64));
                    }
                }
            }
            let times = ctx.kernel.iter().filter_map(|e| e.at);
            ctx.kernel_span = times.fold(None, |acc: Option<(EpochMs, EpochMs)>, t| {
                Some(acc.map_or((t, t), |(a, b)| (a.min(t), b.max(t))))
            });
            ctx.alignment = Alignment {
                method,
                boot_epoch_ms: Some(boot.0),
                detail,
            };
        }
        None => {
            ctx.alignment = Alignment {
                method: AlignMethod::NotAligned,
                boot_epoch_ms: None,
                detail: "raw dmesg times (seconds since boot) could not be aligned: give --boot-time, or kern.log/journal output; kernel lines are joined by pid only".to_string(),
            };
        }
    }
}

/// A pid killed or crashed in the kernel log (boot time) whose FPM child exit has a
/// wall time: boot = wall - seconds.
fn pid_match(kernel: &[Timed<KernelEvent>], fpm: &[Timed<FpmEvent>]) -> Option<(u32, EpochMs)> {
    for k in kernel.iter().filter(|k| k.at.is_none()) {
        let (Some(secs), Some(pid)) = (k.boot_secs, k.event.pid()) else {
            continue;
        };
        if !matches!(
            k.event,
            KernelEvent::OomKilled { .. } | KernelEvent::Segfault { .. } | KernelEvent::Trap { .. }
        ) {
            continue;
        }
        let exit = fpm
            .iter()
            .find(|f| matches!(&f.event, FpmEvent::ChildExited { pid: p, .. } if *p == pid));
        if let Some(at) = exit.and_then(|f| f.at) {
            return Some((pid, at.minus_ms((secs * 1000.0) as i64)));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Evidence;
    use std::sync::Arc;

    fn ev() -> Evidence {
        Evidence::new("kernel", &Arc::from("dmesg"), 1, "x")
    }

    fn kernel_kill(pid: u32, secs: f64) -> Timed<KernelEvent> {
        Timed {
            at: None,
            boot_secs: Some(secs),
            evidence: ev(),
            event: KernelEvent::OomKilled {
                pid,
                comm: "php-fpm8.2".into(),
                anon_rss_kb: None,
                memcg: false,
            },
        }
    }

    #[test]
    fn aligns_by_pid() {
        let mut ctx = Context::default();
        ctx.kernel.push(kernel_kill(23114, 100.5));
        ctx.fpm.push(Timed {
            at: Some(EpochMs(1_000_000)),
            boot_secs: None,
            evidence: ev(),
            event: FpmEvent::ChildExited {
                pool: "www".into(),
                pid: 23114,
                signal: Some(9),
                signal_name: Some("SIGKILL".into()),
                code: None,
                core_dumped: false,
            },
        });
        align(&mut ctx, None, &[], None, None);
        assert_eq!(ctx.alignment.method, AlignMethod::PidMatch);
        assert_eq!(ctx.kernel[0].at, Some(EpochMs(1_000_000)));
    }

    #[test]
    fn flag_wins_and_host_btime_needs_plausible_span() {
        let mut ctx = Context::default();
        ctx.kernel.push(kernel_kill(1, 10.0));
        align(
            &mut ctx,
            Some(EpochMs(5_000)),
            &[(EpochMs(0), 0.0)],
            None,
            None,
        );
        assert_eq!(ctx.alignment.method, AlignMethod::BootTimeFlag);
        assert_eq!(ctx.kernel[0].at, Some(EpochMs(15_000)));

        let mut ctx = Context::default();
        ctx.kernel.push(kernel_kill(1, 10.0));
        // Host booted long after the other logs: not this boot.
        align(
            &mut ctx,
            None,
            &[],
            Some(EpochMs(100_000_000_000)),
            Some((EpochMs(0), EpochMs(1_000))),
        );
        assert_eq!(ctx.alignment.method, AlignMethod::NotAligned);
        assert_eq!(ctx.kernel[0].at, None);

        let mut ctx = Context::default();
        ctx.kernel.push(kernel_kill(1, 10.0));
        align(
            &mut ctx,
            None,
            &[],
            Some(EpochMs(1_000_000)),
            Some((EpochMs(1_000_000), EpochMs(2_000_000))),
        );
        assert_eq!(ctx.alignment.method, AlignMethod::HostBootTime);
        assert_eq!(ctx.kernel[0].at, Some(EpochMs(1_010_000)));
    }
}
