//! Kernel log lines: the OOM killer (kernels 4.x to 6.x), segfaults and traps, in
//! every sink: raw `dmesg`, `dmesg -T`, `dmesg -x`, `dmesg --time-format iso`, and
//! (through [`super::syslog`]) kern.log/syslog and `journalctl -k`.

use std::sync::LazyLock;

use regex::Regex;

use super::syslog::SysTime;
use crate::time::{self, LocalClock};

/// A kernel message that matters for correlation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelEvent {
    /// `Out of memory: Killed process N (comm) total-vm:..., anon-rss:NkB, ...`
    /// (global or memory-cgroup OOM; the 4.x line without a prefix too).
    OomKilled {
        pid: u32,
        comm: String,
        anon_rss_kb: Option<u64>,
        memcg: bool,
    },
    /// 5.0+ summary `oom-kill:constraint=...,task=comm,pid=N,uid=N`.
    OomSummary {
        pid: u32,
        task: String,
        memcg: Option<String>,
    },
    /// 4.x `Kill process N (comm) score S or sacrifice child` (the victim is chosen).
    OomVictimChosen { pid: u32, comm: String },
    /// `comm invoked oom-killer: ...` (the allocating task, not the victim).
    OomInvoked { comm: String },
    /// A row of the OOM task dump: rss in pages.
    TaskRow {
        pid: u32,
        rss_pages: u64,
        name: String,
    },
    /// `N pages RAM` from the OOM memory dump: the machine's memory size.
    PagesRam { pages: u64 },
    /// `memory: usage NkB, limit NkB, failcnt N` (memory cgroup OOM).
    MemcgLimit { limit_kb: u64 },
    /// `comm[pid]: segfault at ADDR ip ... [in lib[...]]`.
    Segfault {
        pid: u32,
        comm: String,
        detail: String,
    },
    /// `traps: comm[pid] general protection fault ip:...`.
    Trap {
        pid: u32,
        comm: String,
        what: String,
    },
    /// systemd-coredump: `Process N (comm) of user U dumped core.` (or `terminated
    /// abnormally without generating a coredump`).
    CoreDump { pid: u32, comm: String },
}

impl KernelEvent {
    pub fn pid(&self) -> Option<u32> {
        match self {
            KernelEvent::OomKilled { pid, .. }
            | KernelEvent::OomSummary { pid, .. }
            | KernelEvent::OomVictimChosen { pid, .. }
            | KernelEvent::TaskRow { pid, .. }
            | KernelEvent::Segfault { pid, .. }
            | KernelEvent::Trap { pid, .. }
            | KernelEvent::CoreDump { pid, .. } => Some(*pid),
            _ => None,
        }
    }

    /// The process name the event is about.
    pub fn comm(&self) -> Option<&str> {
        match self {
            KernelEvent::OomKilled { comm, .. }
            | KernelEvent::OomVictimChosen { comm, .. }
            | KernelEvent::Segfault { comm, .. }
            | KernelEvent::Trap { comm, .. }
            | KernelEvent::CoreDump { comm, .. } => Some(comm),
            KernelEvent::OomSummary { task, .. } => Some(task),
            KernelEvent::TaskRow { name, .. } => Some(name),
            _ => None,
        }
    }
}

/// Whether a kernel `comm` is a PHP-FPM process (`php-fpm8.2`, `php-fpm7.4`,
/// `php-fpm`; the kernel keeps the binary's basename, at most 15 bytes).
pub fn is_fpm_comm(comm: &str) -> bool {
    comm.starts_with("php-fpm") || comm.starts_with("php-cgi") || comm.starts_with("php")
}

// Prefilters, built once (a kernel log is mostly other lines).
static KILLED_NEEDLE: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new("Killed process "));
static SACRIFICE_NEEDLE: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new("or sacrifice child"));
static INVOKED_NEEDLE: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(" invoked oom-killer:"));
static SEGFAULT_NEEDLE: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new("segfault at "));
static PAGES_RAM_NEEDLE: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(" pages RAM"));

static KILLED: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"Killed process (\d+) \(([^)]*)\)(?:.*?anon-rss:(\d+)kB)?").expect("static regex")
});
static SACRIFICE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"Kill process (\d+) \(([^)]*)\) score \d+ or sacrifice child")
        .expect("static regex")
});
static INVOKED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(\S+) invoked oom-killer:").expect("static regex"));
static PAGES_RAM: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^(\d+) pages RAM$").expect("static regex"));
static MEMCG_USAGE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^memory: usage \d+kB, limit (\d+)kB").expect("static regex"));
static SEGFAULT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(\S+)\[(\d+)\]: segfault at (\S+)(?:.*? in (\S+?)\[)?").expect("static regex")
});
static TRAP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^traps: (\S+)\[(\d+)\] (.+?) ip:\S*(?:.*? in (\S+?)\[)?").expect("static regex")
});

static COREDUMP: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^Process (\d+) \(([^)]*)\) of user \S+ (?:dumped core|terminated abnormally)")
        .expect("static regex")
});

/// Parses a `systemd-coredump` message.
pub fn parse_coredump(msg: &str) -> Option<KernelEvent> {
    let c = COREDUMP.captures(msg)?;
    Some(KernelEvent::CoreDump {
        pid: c[1].parse().ok()?,
        comm: c[2].to_string(),
    })
}

/// Parses a kernel message (without any time prefix).
pub fn parse_message(msg: &str) -> Option<KernelEvent> {
    let b = msg.as_bytes();
    let has = |f: &LazyLock<memchr::memmem::Finder<'static>>| f.find(b).is_some();
    if has(&KILLED_NEEDLE) {
        let c = KILLED.captures(msg)?;
        return Some(KernelEvent::OomKilled {
            pid: c[1].parse().ok()?,
            comm: c[2].to_string(),
            anon_rss_kb: c.get(3).and_then(|m| m.as_str().parse().ok()),
            memcg: msg.starts_with("Memory cgroup out of memory"),
        });
    }
    if has(&SACRIFICE_NEEDLE) {
        let c = SACRIFICE.captures(msg)?;
        return Some(KernelEvent::OomVictimChosen {
            pid: c[1].parse().ok()?,
            comm: c[2].to_string(),
        });
    }
    if let Some(rest) = msg.strip_prefix("oom-kill:") {
        let mut pid = None;
        let mut task = None;
        let mut memcg = None;
        for kv in rest.split(',') {
            match kv.split_once('=') {
                Some(("pid", v)) => pid = v.parse().ok(),
                Some(("task", v)) => task = Some(v.to_string()),
                Some(("oom_memcg", v)) => memcg = Some(v.to_string()),
                _ => {}
            }
        }
        return Some(KernelEvent::OomSummary {
            pid: pid?,
            task: task?,
            memcg,
        });
    }
    if has(&INVOKED_NEEDLE) {
        let c = INVOKED.captures(msg)?;
        return Some(KernelEvent::OomInvoked {
            comm: c[1].to_string(),
        });
    }
    if has(&SEGFAULT_NEEDLE) {
        let c = SEGFAULT.captures(msg)?;
        let detail = match c.get(4) {
            Some(lib) => format!("at {} in {}", &c[3], lib.as_str()),
            None => format!("at {}", &c[3]),
        };
        return Some(KernelEvent::Segfault {
            pid: c[2].parse().ok()?,
            comm: c[1].to_string(),
            detail,
        });
    }
    if msg.starts_with("traps: ") {
        let c = TRAP.captures(msg)?;
        let what = match c.get(4) {
            Some(lib) => format!("{} in {}", &c[3], lib.as_str()),
            None => c[3].to_string(),
        };
        return Some(KernelEvent::Trap {
            pid: c[2].parse().ok()?,
            comm: c[1].to_string(),
            what,
        });
    }
    if b.first() == Some(&b'[') && b.get(1).is_some_and(|&x| x == b' ' || x.is_ascii_digit()) {
        return parse_task_row(msg);
    }
    if has(&PAGES_RAM_NEEDLE) {
        let c = PAGES_RAM.captures(msg.trim())?;
        return Some(KernelEvent::PagesRam {
            pages: c[1].parse().ok()?,
        });
    }
    if msg.starts_with("memory: usage ") {
        let c = MEMCG_USAGE.captures(msg)?;
        return Some(KernelEvent::MemcgLimit {
            limit_kb: c[1].parse().ok()?,
        });
    }
    None
}

/// A row of the OOM killer's task table, `[  pid]   uid  tgid total_vm      rss ...
/// name` (mm/oom_kill.c dump_task; 6.x inserts rss_anon/rss_file/rss_shmem after
/// rss, so rss stays the fifth column and the name the last). Split by hand: an OOM
/// dump has a row per task, and a backtracking regex over each cost a sixth of the
/// analysis of a quiet log.
fn parse_task_row(msg: &str) -> Option<KernelEvent> {
    let rest = msg.strip_prefix('[')?;
    let (pid, rest) = rest.split_once(']')?;
    let mut cols = rest.split_ascii_whitespace();
    fn number(c: Option<&str>) -> Option<&str> {
        c.filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
    }
    // uid, tgid, total_vm
    for _ in 0..3 {
        number(cols.next())?;
    }
    let rss_pages = number(cols.next())?.parse().ok()?;
    let name = cols.next_back()?;
    Some(KernelEvent::TaskRow {
        pid: pid.trim().parse().ok()?,
        rss_pages,
        name: name.to_string(),
    })
}

/// Splits a `[  321.572384] ` printk timestamp off a message (raw dmesg, and kern.log
/// which keeps it after the syslog header). Returns seconds since boot and the rest.
pub fn split_boot_stamp(s: &str) -> Option<(f64, &str)> {
    let (inner, msg) = boot_stamp(s)?;
    let secs: f64 = inner.parse().ok()?;
    Some((secs, msg))
}

/// Whether `s` starts with a printk stamp: what the router asks of every line of a
/// kernel log, without the cost of reading the seconds.
pub fn has_boot_stamp(s: &str) -> bool {
    boot_stamp(s).is_some()
}

/// The digits of a printk stamp and the message after it.
fn boot_stamp(s: &str) -> Option<(&str, &str)> {
    let rest = s.strip_prefix('[')?;
    let close = rest.find(']')?;
    let inner = rest[..close].trim();
    // printk stamps are `%5lu.%06lu`: the fraction is what tells them from the OOM
    // task table's `[  22645]` pid column, which would otherwise read as 22645 s.
    let (whole, frac) = inner.split_once('.')?;
    if whole.is_empty()
        || frac.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let msg = &rest[close + 1..];
    Some((inner, msg.strip_prefix(' ').unwrap_or(msg)))
}

/// A line in one of `dmesg`'s own formats (not a syslog envelope): raw, `-T`, `-x`,
/// `--time-format iso`. Returns the time and the message.
pub fn split_dmesg_line<'a>(line: &'a str, clock: &mut LocalClock) -> Option<(SysTime, &'a str)> {
    let mut s = line;
    // dmesg -x: `kern  :err   : [...] msg`
    if let Some(i) = s.find(": [") {
        let head = &s[..i];
        if head.len() < 16
            && head.contains(':')
            && head
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b' ' || b == b':')
        {
            s = &s[i + 2..];
        }
    }
    if let Some((secs, msg)) = split_boot_stamp(s) {
        return Some((
            SysTime {
                wall: None,
                boot_secs: Some(secs),
            },
            msg,
        ));
    }
    let b = s.as_bytes();
    if b.first() == Some(&b'[') && s.len() > 27 && b[25] == b']' {
        // dmesg -T prints local time (derived from the boot time).
        let civil = time::parse_ctime(&b[1..])?;
        let msg = &s[26..];
        return Some((
            SysTime {
                wall: clock.to_epoch(civil),
                boot_secs: None,
            },
            msg.strip_prefix(' ').unwrap_or(msg),
        ));
    }
    if b.len() > 20 && b[4] == b'-' && b[10] == b'T' {
        let (at, n) = time::parse_iso_with_offset(b)?;
        let msg = &s[n..];
        return Some((
            SysTime {
                wall: Some(at),
                boot_secs: None,
            },
            msg.strip_prefix(' ').unwrap_or(msg),
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    #[test]
    fn task_table_pid_column_is_not_a_boot_stamp() {
        // From a real OOM kill (raw dmesg): the row after the printk stamp.
        assert_eq!(
            super::split_boot_stamp("[  22645]    33 22645    66870    17281    15522     1630       129   274432        0             0 php-fpm8.2"),
            None
        );
        assert_eq!(
            super::split_boot_stamp(
                "[ 5514.106157] Memory cgroup out of memory: Killed process 22645 (php-fpm8.2)"
            ),
            Some((
                5514.106157,
                "Memory cgroup out of memory: Killed process 22645 (php-fpm8.2)"
            ))
        );
    }

    use super::*;
    use crate::time::{EpochMs, Zone};

    fn oom(msg: &str) -> KernelEvent {
        parse_message(msg).unwrap_or_else(|| panic!("not parsed: {msg}"))
    }

    #[test]
    fn oom_killed_variants_4x_to_6x() {
        assert_eq!(
            oom("Out of memory: Killed process 23114 (php-fpm8.2) total-vm:581544kB, anon-rss:392492kB, file-rss:0kB, shmem-rss:12kB, UID:33 pgtables:976kB oom_score_adj:0"),
            KernelEvent::OomKilled { pid: 23114, comm: "php-fpm8.2".into(), anon_rss_kb: Some(392492), memcg: false }
        );
        assert_eq!(
            oom("Memory cgroup out of memory: Killed process 23114 (php-fpm8.2) total-vm:581544kB, anon-rss:392492kB, file-rss:10240kB, shmem-rss:12kB, UID:33 pgtables:976kB oom_score_adj:0"),
            KernelEvent::OomKilled { pid: 23114, comm: "php-fpm8.2".into(), anon_rss_kb: Some(392492), memcg: true }
        );
        // 4.x second line, no prefix; and the guide's shortened form.
        assert_eq!(
            oom("Killed process 2311 (php-fpm7.3) total-vm:1423532kB, anon-rss:1012344kB, file-rss:0kB, shmem-rss:8kB"),
            KernelEvent::OomKilled { pid: 2311, comm: "php-fpm7.3".into(), anon_rss_kb: Some(1012344), memcg: false }
        );
        assert_eq!(
            oom("Out of memory: Killed process 28491 (php-fpm8.2)"),
            KernelEvent::OomKilled {
                pid: 28491,
                comm: "php-fpm8.2".into(),
                anon_rss_kb: None,
                memcg: false
            }
        );
        assert_eq!(
            oom("Out of memory: Kill process 2311 (php-fpm7.3) score 412 or sacrifice child"),
            KernelEvent::OomVictimChosen {
                pid: 2311,
                comm: "php-fpm7.3".into()
            }
        );
        assert_eq!(
            oom("Memory cgroup out of memory: Kill process 2311 (php-fpm7.3) score 987 or sacrifice child"),
            KernelEvent::OomVictimChosen { pid: 2311, comm: "php-fpm7.3".into() }
        );
    }

    #[test]
    fn oom_summary_and_dump() {
        assert_eq!(
            oom("oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/system.slice/php8.2-fpm.service,task_memcg=/system.slice/php8.2-fpm.service,task=php-fpm8.2,pid=23114,uid=33"),
            KernelEvent::OomSummary { pid: 23114, task: "php-fpm8.2".into(), memcg: Some("/system.slice/php8.2-fpm.service".into()) }
        );
        assert_eq!(
            oom("oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/system.slice/php8.2-fpm.service,task=php-fpm8.2,pid=23114,uid=33"),
            KernelEvent::OomSummary { pid: 23114, task: "php-fpm8.2".into(), memcg: None }
        );
        assert_eq!(
            oom("php-fpm8.2 invoked oom-killer: gfp_mask=0x100cca(GFP_HIGHUSER_MOVABLE), order=0, oom_score_adj=0"),
            KernelEvent::OomInvoked { comm: "php-fpm8.2".into() }
        );
        assert_eq!(
            oom("php-fpm7.3 invoked oom-killer: gfp_mask=0x6200ca(GFP_HIGHUSER_MOVABLE), nodemask=(null), order=0, oom_score_adj=0"),
            KernelEvent::OomInvoked { comm: "php-fpm7.3".into() }
        );
        assert_eq!(
            oom("[  23114]    33 23114   145386    98123   999424        0             0 php-fpm8.2"),
            KernelEvent::TaskRow { pid: 23114, rss_pages: 98123, name: "php-fpm8.2".into() }
        );
        // 6.12 layout with rss_anon/rss_file/rss_shmem columns: rss is still 5th.
        assert_eq!(
            oom("[  23114]    33 23114   145386    98123    98000      100       23   999424        0             0 php-fpm8.4"),
            KernelEvent::TaskRow { pid: 23114, rss_pages: 98123, name: "php-fpm8.4".into() }
        );
        // Not task rows: the table header, a row cut before its name, a row with a word
        // where a number belongs.
        assert_eq!(parse_message("[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name"), None);
        assert_eq!(
            parse_message("[  23114]    33 23114   145386    98123"),
            None
        );
        assert_eq!(
            parse_message("[  23114]    33 23114   x    98123 999424 0 0 php-fpm8.2"),
            None
        );
        assert_eq!(
            oom("4194174 pages RAM"),
            KernelEvent::PagesRam { pages: 4194174 }
        );
        assert_eq!(
            oom("memory: usage 524288kB, limit 524288kB, failcnt 123"),
            KernelEvent::MemcgLimit { limit_kb: 524288 }
        );
        // The header row is not a task.
        assert_eq!(parse_message("[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name"), None);
    }

    #[test]
    fn segfaults_and_traps() {
        assert_eq!(
            oom("php-fpm7.4[23120]: segfault at 10 ip 000055d9a3f1c2e0 sp 00007ffe0a9b6c60 error 4 in php-fpm7.4[55d9a3c00000+38d000]"),
            KernelEvent::Segfault { pid: 23120, comm: "php-fpm7.4".into(), detail: "at 10 in php-fpm7.4".into() }
        );
        assert_eq!(
            oom("php-fpm8.2[23120]: segfault at 8 ip 00007f3a1c2b4e5a sp 00007ffd4d9e8a30 error 4 in opcache.so[7f3a1c280000+d2000] likely on CPU 3 (core 3, socket 0)"),
            KernelEvent::Segfault { pid: 23120, comm: "php-fpm8.2".into(), detail: "at 8 in opcache.so".into() }
        );
        assert_eq!(
            oom("php-fpm8.4[23120]: segfault at 8 ip 000055d9a3f1c2e0 sp 00007ffe0a9b6c60 error 4 in php-fpm8.4[31c2e0,55d9a3c00000+38d000] likely on CPU 1 (core 1, socket 0)"),
            KernelEvent::Segfault { pid: 23120, comm: "php-fpm8.4".into(), detail: "at 8 in php-fpm8.4".into() }
        );
        // JIT code: no " in ".
        assert_eq!(
            oom("php-fpm8.2[23121]: segfault at 0 ip 00007f3a1c2b4e5a sp 00007ffd4d9e8a30 error 6"),
            KernelEvent::Segfault {
                pid: 23121,
                comm: "php-fpm8.2".into(),
                detail: "at 0".into()
            }
        );
        assert_eq!(
            oom("traps: php-fpm8.2[23120] general protection fault ip:7f2b1c4d5e6f sp:7ffe0a9b6c60 error:0 in libc.so.6[7f2b1c428000+155000]"),
            KernelEvent::Trap { pid: 23120, comm: "php-fpm8.2".into(), what: "general protection fault in libc.so.6".into() }
        );
        assert_eq!(
            oom("traps: php-fpm8.2[23122] trap invalid opcode ip:55d9a3f1c2e0 sp:7ffe0a9b6c60 error:0 in php-fpm8.2[55d9a3c00000+38d000]"),
            KernelEvent::Trap { pid: 23122, comm: "php-fpm8.2".into(), what: "trap invalid opcode in php-fpm8.2".into() }
        );
    }

    #[test]
    fn coredump() {
        assert_eq!(
            parse_coredump("Process 23120 (php-fpm8.2) of user 33 dumped core."),
            Some(KernelEvent::CoreDump {
                pid: 23120,
                comm: "php-fpm8.2".into()
            })
        );
        assert_eq!(parse_coredump("Stack trace of thread 23120:"), None);
    }

    #[test]
    fn irrelevant_lines_are_none() {
        for m in [
            "Code: 48 8b 47 08 48 85 c0 74 0b",
            "oom_reaper: reaped process 23114 (php-fpm8.2), now anon-rss:0kB, file-rss:0kB, shmem-rss:12kB",
            "Tasks state (memory values in pages):",
            "show_signal_msg: 12 callbacks suppressed",
            "eth0: link up",
        ] {
            assert_eq!(parse_message(m), None, "{m}");
        }
    }

    #[test]
    fn dmesg_line_forms() {
        let mut clock = LocalClock::new(&Zone::utc());
        let (t, m) = split_dmesg_line(
            "[  321.572384] Out of memory: Killed process 1 (x)",
            &mut clock,
        )
        .unwrap();
        assert_eq!(t.boot_secs, Some(321.572384));
        assert_eq!(m, "Out of memory: Killed process 1 (x)");
        let (t, m) = split_dmesg_line(
            "[423847.291234] php-fpm8.2[23120]: segfault at 8",
            &mut clock,
        )
        .unwrap();
        assert_eq!(t.boot_secs, Some(423847.291234));
        assert!(m.starts_with("php-fpm8.2[23120]"));
        let (t, m) = split_dmesg_line(
            "[Thu Apr  2 14:23:17 2026] Out of memory: Killed process 1 (x)",
            &mut clock,
        )
        .unwrap();
        assert_eq!(t.wall, Some(EpochMs(1_775_139_797_000)));
        assert!(m.starts_with("Out of memory"));
        let (t, m) = split_dmesg_line(
            "kern  :err   : [423847.291234] Out of memory: Killed process 1 (x)",
            &mut clock,
        )
        .unwrap();
        assert_eq!(t.boot_secs, Some(423847.291234));
        assert!(m.starts_with("Out of memory"));
        let (t, _) = split_dmesg_line(
            "2026-04-02T14:23:17,291234+00:00 Out of memory: Killed process 1 (x)",
            &mut clock,
        )
        .unwrap();
        assert_eq!(t.wall, Some(EpochMs(1_775_139_797_291)));
        assert!(split_dmesg_line("Apr  2 14:23:17 web1 kernel: x", &mut clock).is_none());
    }
}
