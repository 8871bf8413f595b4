//! The recent past (`--since`, an hour by default): OOM kills and crashes of FPM
//! workers in the kernel log (`/dev/kmsg`, read without blocking), FPM's own
//! warnings (`server reached pm.max_children`, `child N exited on signal S`), the
//! gatelog module (is it loaded, was it built for this NGINX) and its records (are
//! they being written, what failed). A kernel event is tied to a pool by the pid
//! that pool's FPM log names; one no pool log names is a note, not a finding, when
//! every pool log could be read (it belongs to another FPM).

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::finding::{Finding, Findings, Seen, Severity};
use super::host::{module_signature, NginxBuild, NginxSide};
use super::procs::Proc;
use super::Doctor;
use crate::model::Cause;
use crate::parse::fpm::{self, FpmEvent};
use crate::parse::kernel::{self, is_fpm_comm, KernelEvent};
use crate::parse::nginx_conf::Directive;
use crate::time::{parse_iso_with_offset, EpochMs, LocalClock};

/// How much of the end of a log is read (the window is recent).
const TAIL_BYTES: u64 = 8 << 20;

/// A kernel message with its time.
#[derive(Debug, Clone)]
struct KLine {
    at: EpochMs,
    text: String,
    event: KernelEvent,
}

/// Wall time of boot as the printk clock counts (CLOCK_MONOTONIC).
fn boot_ms(now: EpochMs) -> EpochMs {
    // SAFETY: an all-zero timespec is valid; clock_gettime fills it.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: ts is a valid timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    now.minus_ms(ts.tv_sec as i64 * 1000 + ts.tv_nsec as i64 / 1_000_000)
}

/// The kernel log records since boot (what is left in the ring buffer): one
/// read(2) per record, `PRI,SEQ,USEC,FLAGS;message`. Err: why it cannot be read.
fn read_kmsg(now: EpochMs) -> Result<(Vec<KLine>, Option<EpochMs>), String> {
    let c = c"/dev/kmsg";
    // SAFETY: a constant NUL-terminated path.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(format!("/dev/kmsg: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: fd was just opened and is owned here only.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let boot = boot_ms(now);
    let mut out = Vec::new();
    let mut oldest = None;
    let mut buf = vec![0u8; 16 * 1024];
    for _ in 0..1_000_000 {
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            match std::io::Error::last_os_error().raw_os_error() {
                // A record overwritten while reading: go on with the next.
                Some(libc::EPIPE) => continue,
                Some(libc::EAGAIN) => break,
                _ => return Err(format!("/dev/kmsg: {}", std::io::Error::last_os_error())),
            }
        }
        if n == 0 {
            break;
        }
        let rec = String::from_utf8_lossy(&buf[..n as usize]);
        let Some((head, body)) = rec.split_once(';') else {
            continue;
        };
        let usec: i64 = head
            .split(',')
            .nth(2)
            .and_then(|u| u.parse().ok())
            .unwrap_or(0);
        let at = boot.plus_ms(usec / 1000);
        oldest.get_or_insert(at);
        // Continuation lines (` KEY=value`) follow the message.
        let msg = body.split('\n').next().unwrap_or("");
        if let Some(event) = kernel::parse_message(msg) {
            out.push(KLine {
                at,
                text: msg.to_string(),
                event,
            });
        }
    }
    Ok((out, oldest))
}

/// The last lines of a file (at most TAIL_BYTES), with their 1-based line numbers
/// when the whole file was read (else numbers count from the first line read).
fn tail_lines(path: &Path) -> std::io::Result<(Vec<String>, bool)> {
    let mut f = std::fs::File::open(path)?;
    let len = f.metadata()?.len();
    let whole = len <= TAIL_BYTES;
    if !whole {
        f.seek(SeekFrom::Start(len - TAIL_BYTES))?;
    }
    let mut b = Vec::new();
    f.take(TAIL_BYTES).read_to_end(&mut b)?;
    let text = String::from_utf8_lossy(&b);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    if !whole && !lines.is_empty() {
        lines.remove(0);
    }
    Ok((lines, whole))
}

/// One FPM log line of interest within the window.
#[derive(Debug, Clone)]
struct FpmHistoryLine {
    side: usize,
    at: EpochMs,
    place: String,
    text: String,
    event: FpmEvent,
}

/// Checks the history; adds findings and notes.
pub fn check(d: &mut Doctor) {
    let mut found = Findings::default();
    let fpm = read_fpm_logs(d, &mut found);
    let kernel = read_kernel_log(d, &mut found);
    let explained = worker_deaths(d, &fpm.lines, kernel.as_deref(), &mut found);
    let pools_logged = fpm.all_read && !d.fpm.is_empty();
    if let Some(k) = &kernel {
        unexplained_kernel_events(d, k, &explained, pools_logged, &mut found);
    }
    max_children_warnings(d, &fpm.lines, &mut found);
    execution_timeouts(d, &fpm.lines, &mut found);
    d.findings.absorb(found);
    gatelog_module(d);
}

/// What the pools' FPM logs say within the window.
struct FpmHistory {
    lines: Vec<FpmHistoryLine>,
    /// Whether every pool's log was read (else a kernel event may be of a pool
    /// whose log was not).
    all_read: bool,
}

/// Reads the tail of every FPM log the configs name; what cannot be read is listed
/// as unchecked.
fn read_fpm_logs(d: &Doctor, found: &mut Findings) -> FpmHistory {
    let mut history = FpmHistory {
        lines: Vec::new(),
        all_read: true,
    };
    for (i, side) in d.fpm.iter().enumerate() {
        let Some(log) = side.global("error_log") else {
            history.all_read = false;
            found.unchecked(
                format!("FPM log of {}", side.source),
                "the config sets no error_log (FPM then logs under its prefix)",
            );
            continue;
        };
        if log == "syslog" || log.starts_with("syslog") {
            history.all_read = false;
            found.unchecked(
                format!("FPM log of {}", side.source),
                "FPM logs to syslog: read it with `journalctl -t php-fpm --since -1h` and `gatelog analyze`",
            );
            continue;
        }
        if !log.starts_with('/') {
            history.all_read = false;
            found.unchecked(
                format!("FPM log {log}"),
                "a relative error_log is under FPM's prefix, which the config does not say",
            );
            continue;
        }
        match tail_lines(Path::new(log)) {
            Ok((text, whole)) => history
                .lines
                .extend(fpm_lines_of_interest(d, i, log, &text, whole)),
            Err(e) => {
                history.all_read = false;
                found.unchecked(format!("FPM log {log}"), e.to_string());
            }
        }
    }
    history
}

/// The lines of one FPM log (side `side`) that matter, within the window.
fn fpm_lines_of_interest(
    d: &Doctor,
    side: usize,
    log: &str,
    text: &[String],
    whole: bool,
) -> Vec<FpmHistoryLine> {
    let mut clock = LocalClock::new(&d.zone);
    let mut out = Vec::new();
    for (n, l) in text.iter().enumerate() {
        let Some(p) = fpm::parse_line(l) else {
            continue;
        };
        let Some(at) = p.civil.and_then(|c| clock.to_epoch(c)) else {
            continue;
        };
        if at < d.since {
            continue;
        }
        let keep = matches!(
            p.event,
            FpmEvent::ChildExited {
                signal: Some(_),
                ..
            } | FpmEvent::MaxChildren { .. }
                | FpmEvent::ExecutionTimedOut(_)
                | FpmEvent::SeemsBusy { .. }
        );
        if keep {
            out.push(FpmHistoryLine {
                side,
                at,
                place: if whole {
                    format!("{log}:{}", n + 1)
                } else {
                    log.to_string()
                },
                text: l.clone(),
                event: p.event,
            });
        }
    }
    out
}

/// The kernel's lines within the window; `None` when the log cannot be read.
fn read_kernel_log(d: &Doctor, found: &mut Findings) -> Option<Vec<KLine>> {
    match read_kmsg(d.now) {
        Ok((k, oldest)) => {
            if let Some(o) = oldest.filter(|o| *o > d.since) {
                found.note(
                    "history",
                    format!(
                        "the kernel's ring buffer starts at {}, after the window's start {}: earlier OOM kills are only in the journal (`journalctl -k`)",
                        d.zone.format(o),
                        d.zone.format(d.since)
                    ),
                    None,
                );
            }
            Some(k.into_iter().filter(|k| k.at >= d.since).collect())
        }
        Err(e) => {
            found.unchecked(
                "kernel log (OOM kills, segfaults)",
                format!(
                    "{e}{}",
                    if d.root {
                        ""
                    } else {
                        " (reading it needs root where kernel.dmesg_restrict = 1)"
                    }
                ),
            );
            None
        }
    }
}

/// `pool www`, with the FPM it belongs to when several are checked.
fn pool_subject(d: &Doctor, side: usize, name: &str) -> String {
    if d.fpm.len() > 1 {
        format!("pool {name} ({})", d.fpm[side].source)
    } else {
        format!("pool {name}")
    }
}

/// Worker deaths FPM logged, explained by the kernel's lines where they can be;
/// returns the pids explained.
fn worker_deaths(
    d: &Doctor,
    lines: &[FpmHistoryLine],
    kernel: Option<&[KLine]>,
    found: &mut Findings,
) -> Vec<u32> {
    let mut explained = Vec::new();
    for l in lines {
        let FpmEvent::ChildExited {
            pool,
            pid,
            signal: Some(sig),
            signal_name,
            ..
        } = &l.event
        else {
            continue;
        };
        let death = WorkerDeath {
            line: l,
            pool,
            pid: *pid,
        };
        if *sig == 9 {
            let k_oom = kernel.and_then(|k| {
                k.iter()
                    .find(|x| matches!(&x.event, KernelEvent::OomKilled { pid: p, .. } if p == pid))
            });
            match k_oom {
                Some(k) => {
                    explained.push(*pid);
                    found.find(oom_kill(d, &death, k));
                }
                None => found.note(
                    "history",
                    sigkill_without_oom(d, &death, kernel.is_some()),
                    None,
                ),
            }
        } else if matches!(sig, 11 | 7 | 6 | 4 | 8) {
            // Crashes: SIGSEGV, SIGBUS, SIGABRT, SIGILL, SIGFPE.
            explained.push(*pid);
            let k_crash = kernel.and_then(|k| {
                k.iter().find(|x| matches!(&x.event, KernelEvent::Segfault { pid: p, .. } | KernelEvent::Trap { pid: p, .. } if p == pid))
            });
            let name = signal_name
                .clone()
                .unwrap_or_else(|| format!("signal {sig}"));
            found.find(crash(d, &death, &name, k_crash));
        }
    }
    explained
}

/// A worker's death on a signal, as FPM logged it.
struct WorkerDeath<'a> {
    line: &'a FpmHistoryLine,
    pool: &'a str,
    pid: u32,
}

/// A worker FPM saw die of SIGKILL, and the kernel's OOM kill of it.
fn oom_kill(d: &Doctor, w: &WorkerDeath, k: &KLine) -> Finding {
    let WorkerDeath { line: l, pool, pid } = *w;
    let side = &d.fpm[l.side];
    let conf = side.pools.iter().find(|p| p.pool.name == pool);
    let rss = match &k.event {
        KernelEvent::OomKilled {
            anon_rss_kb: Some(r),
            ..
        } => Some(*r),
        _ => None,
    };
    let memcg = matches!(&k.event, KernelEvent::OomKilled { memcg: true, .. });
    let mut evidence = vec![
        Seen::new(l.place.clone(), l.text.clone()),
        Seen::new(
            format!("kernel log (/dev/kmsg) at {}", d.zone.format(k.at)),
            k.text.clone(),
        ),
    ];
    if let Some(ev) = conf.and_then(|c| {
        c.evidence("php_admin_value[memory_limit]")
            .or_else(|| c.evidence("php_value[memory_limit]"))
    }) {
        evidence.push(Seen::new(format!("{}:{}", ev.file, ev.line), ev.text));
    }
    if let Some(ev) = conf.and_then(|c| c.evidence("pm.max_children")) {
        evidence.push(Seen::new(format!("{}:{}", ev.file, ev.line), ev.text));
    }
    let formula = rss.map(|kb| {
        let mb = (kb / 1024).max(1);
        match d.memory(None) {
            Some(super::Memory {
                ram_mb: ram,
                reserved_mb: reserved,
                ram_is: what,
            }) => format!(
                " With workers of up to {mb} MB: pm.max_children = (RAM {ram} MB [{what}] - reserved {reserved} MB) / {mb} MB = {}.",
                ram.saturating_sub(reserved) / mb
            ),
            None => String::new(),
        }
    }).unwrap_or_default();
    Finding {
        cause: Some(Cause::WorkerOomKilled),
        severity: Severity::Warning,
        subject: pool_subject(d, l.side, pool),
        summary: format!(
            "worker {pid} of pool {pool} was killed by the kernel's OOM killer{} at {}{}",
            if memcg { " (memory cgroup limit)" } else { "" },
            d.zone.format(k.at),
            rss.map(|r| format!(" using {} MB", r / 1024)).unwrap_or_default()
        ),
        evidence,
        fix: format!(
            "Bound PHP's memory so the workers fit: `php_admin_value[memory_limit] = 256M` in the pool ({}) or memory_limit in php.ini, lower pm.max_children ({}), and pm.max_requests to recycle leaking workers.{formula}",
            conf.map_or_else(|| side.source.clone(), |c| c.file.to_string()),
            conf.and_then(|c| c.place_of("pm.max_children")).unwrap_or_else(|| "pm.max_children".into())
        ),
    }
}

/// A worker killed with SIGKILL that the kernel log shows no OOM kill of.
fn sigkill_without_oom(d: &Doctor, w: &WorkerDeath, kernel_read: bool) -> String {
    let WorkerDeath { line: l, pool, pid } = *w;
    format!(
        "worker {pid} of pool {pool} was killed with SIGKILL at {} ({}){}",
        d.zone.format(l.at),
        l.place,
        if kernel_read {
            "; the kernel log shows no OOM kill of it: something else killed it"
        } else {
            "; the kernel log could not be read to tell an OOM kill"
        }
    )
}

/// A worker that died on a crash signal, with the kernel's line about it when
/// there is one.
fn crash(d: &Doctor, w: &WorkerDeath, name: &str, k: Option<&KLine>) -> Finding {
    let WorkerDeath { line: l, pool, pid } = *w;
    let side = &d.fpm[l.side];
    let mut evidence = vec![Seen::new(l.place.clone(), l.text.clone())];
    if let Some(k) = k {
        evidence.push(Seen::new(
            format!("kernel log (/dev/kmsg) at {}", d.zone.format(k.at)),
            k.text.clone(),
        ));
    }
    Finding {
        cause: Some(Cause::InvalidResponse),
        severity: Severity::Warning,
        subject: pool_subject(d, l.side, pool),
        summary: format!(
            "worker {pid} of pool {pool} died on {name} at {} while serving a request: NGINX got no valid response (502)",
            d.zone.format(l.at)
        ),
        evidence,
        fix: format!(
            "A crashing PHP extension or script: find it with a core dump (`coredumpctl list {}`; `sudo coredumpctl gdb <pid>`) or the slowlog's backtrace, update or disable the extension; the pool's log {} has the request.",
            side.binary.as_ref().and_then(|b| b.file_name()).and_then(|n| n.to_str()).unwrap_or("php-fpm"),
            side.global("error_log").unwrap_or("")
        ),
    }
}

/// An OOM kill or crash of a PHP process that no pool log checked names.
struct UnexplainedEvent<'k> {
    cause: Cause,
    pid: u32,
    line: &'k KLine,
}

/// Kernel events of PHP processes no pool log names: when every pool's log was
/// read they are other FPMs' workers (one note per cause), else findings.
fn unexplained_kernel_events(
    d: &Doctor,
    kernel: &[KLine],
    explained: &[u32],
    pools_logged: bool,
    found: &mut Findings,
) {
    let mut foreign: Vec<UnexplainedEvent> = Vec::new();
    for x in kernel {
        let (pid, cause) = match &x.event {
            KernelEvent::OomKilled { pid, comm, .. } if is_fpm_comm(comm) => {
                (*pid, Cause::WorkerOomKilled)
            }
            KernelEvent::Segfault { pid, comm, .. } | KernelEvent::Trap { pid, comm, .. }
                if is_fpm_comm(comm) =>
            {
                (*pid, Cause::InvalidResponse)
            }
            _ => continue,
        };
        if explained.contains(&pid) {
            continue;
        }
        let event = UnexplainedEvent {
            cause,
            pid,
            line: x,
        };
        if pools_logged {
            foreign.push(event);
        } else {
            found.find(unexplained_finding(d, &event));
        }
    }
    for cause in [Cause::WorkerOomKilled, Cause::InvalidResponse] {
        let these: Vec<&UnexplainedEvent> = foreign.iter().filter(|f| f.cause == cause).collect();
        let Some(last) = these.last() else { continue };
        let pids: Vec<String> = these
            .iter()
            .rev()
            .take(5)
            .map(|f| f.pid.to_string())
            .collect();
        found.note(
            "history",
            format!(
                "the kernel log shows {} {} of PHP processes since {} (pids {}{}) that no log of the pools checked names: other FPMs' workers. Last at {}: `{}`",
                these.len(),
                if cause == Cause::WorkerOomKilled { "OOM kill(s)" } else { "crash(es)" },
                d.zone.format(d.since),
                pids.join(", "),
                if these.len() > 5 { ", ..." } else { "" },
                d.zone.format(last.line.at),
                last.line.text
            ),
            None,
        );
    }
}

fn unexplained_finding(d: &Doctor, e: &UnexplainedEvent) -> Finding {
    let oom = e.cause == Cause::WorkerOomKilled;
    Finding {
        cause: Some(e.cause),
        severity: Severity::Warning,
        subject: "PHP-FPM".into(),
        summary: format!(
            "PHP process {} {} at {}",
            e.pid,
            if oom {
                "was killed by the OOM killer"
            } else {
                "crashed"
            },
            d.zone.format(e.line.at)
        ),
        evidence: vec![Seen::new(
            format!("kernel log (/dev/kmsg) at {}", d.zone.format(e.line.at)),
            e.line.text.clone(),
        )],
        fix: if oom {
            "Bound PHP's memory (memory_limit) and pm.max_children so the workers fit in RAM."
                .into()
        } else {
            "Find the crashing extension with a core dump (`coredumpctl list`).".into()
        },
    }
}

/// FPM's max_children warnings: one finding per pool.
fn max_children_warnings(d: &Doctor, lines: &[FpmHistoryLine], found: &mut Findings) {
    let mut by_pool: BTreeMap<(usize, String), Vec<&FpmHistoryLine>> = BTreeMap::new();
    for l in lines {
        if let FpmEvent::MaxChildren { pool, .. } = &l.event {
            by_pool.entry((l.side, pool.clone())).or_default().push(l);
        }
    }
    for ((side, pool), ls) in by_pool {
        let conf = d.fpm[side].pools.iter().find(|p| p.pool.name == pool);
        let mut evidence: Vec<Seen> = ls
            .iter()
            .rev()
            .take(3)
            .map(|l| Seen::new(l.place.clone(), l.text.clone()))
            .collect();
        if let Some(ev) = conf.and_then(|c| c.evidence("pm.max_children")) {
            evidence.push(Seen::new(format!("{}:{}", ev.file, ev.line), ev.text));
        }
        found.find(Finding {
            cause: Some(Cause::MaxChildrenExhausted),
            severity: Severity::Warning,
            subject: pool_subject(d, side, &pool),
            summary: format!(
                "pool {pool} reached pm.max_children {} time(s) since {}, last at {}",
                ls.len(),
                d.zone.format(d.since),
                ls.last().map(|l| d.zone.format(l.at)).unwrap_or_default()
            ),
            evidence,
            fix: format!(
                "Raise pm.max_children ({}) within memory (the guide's formula: (RAM - reserved) / worker RSS), or make the slow requests faster.",
                conf.and_then(|c| c.place_of("pm.max_children")).unwrap_or_else(|| "pm.max_children".into())
            ),
        });
    }
}

/// Requests FPM's request_terminate_timeout ended: notes.
fn execution_timeouts(d: &Doctor, lines: &[FpmHistoryLine], found: &mut Findings) {
    for l in lines {
        if let FpmEvent::ExecutionTimedOut(t) = &l.event {
            found.note(
                "history",
                format!(
                    "FPM's request_terminate_timeout ended {} in pool {} after {:.1} s at {} ({}): NGINX got 502 for it",
                    t.request,
                    t.pool,
                    t.secs,
                    d.zone.format(l.at),
                    l.place
                ),
                None,
            );
        }
    }
}

/// `load_module` and `gatelog` lines: is the module there, built for this NGINX,
/// loaded by the running master, and are its records written.
fn gatelog_module(d: &mut Doctor) {
    let mut found = Findings::default();
    if let Some(n) = d.nginx.as_ref() {
        if let Some(conf) = n.conf.as_ref() {
            let prefix = nginx_prefix(n);
            let modules: Vec<&Directive> = conf
                .logging
                .iter()
                .filter(|x| x.name == "load_module" && x.arg().contains("gatelog"))
                .collect();
            if modules.is_empty() {
                found.note(
                    "gatelog",
                    "NGINX does not load the gatelog module: no records are written (`gatelog analyze` still reads the error log)".to_string(),
                    Some("add `load_module /path/to/ngx_http_gatelog_module.so;` and `gatelog /var/log/nginx/gatelog.json;` (README)".to_string()),
                );
            }
            for m in &modules {
                check_module(d, n, m, &resolve_under(&prefix, m.arg()), &mut found);
            }
            let destinations = conf.logging.iter().filter(|x| x.name == "gatelog");
            for s in destinations {
                let a = s.arg();
                if a == "off" || a.starts_with("syslog:") {
                    continue;
                }
                check_records_file(
                    d,
                    s,
                    &resolve_under(&prefix, a),
                    !modules.is_empty(),
                    &mut found,
                );
            }
        }
    }
    d.findings.absorb(found);
}

/// NGINX's prefix (relative paths in its config are under it): the build's, else
/// above the config's directory.
fn nginx_prefix(n: &NginxSide) -> PathBuf {
    n.build
        .as_ref()
        .and_then(|b| b.prefix.clone())
        .or_else(|| {
            n.conf_path
                .as_ref()
                .and_then(|c| c.parent())
                .and_then(|p| p.parent())
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| PathBuf::from("/"))
}

fn resolve_under(prefix: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        prefix.join(p)
    }
}

/// One `load_module` of the gatelog module: readable, built for this NGINX,
/// loaded by the running master.
fn check_module(d: &Doctor, n: &NginxSide, m: &Directive, so: &Path, found: &mut Findings) {
    let bytes = match std::fs::read(so) {
        Ok(b) => b,
        Err(e) => {
            found.find(Finding {
                cause: None,
                severity: Severity::Warning,
                subject: "gatelog module".into(),
                summary: format!(
                    "{} ({}) names a module NGINX cannot read: {e}; NGINX will not start or reload",
                    m.text(),
                    m.place()
                ),
                evidence: vec![Seen::new(m.place(), m.text())],
                fix: format!(
                    "Install the module at {} or fix the path (nginx-build/build.sh builds it).",
                    so.display()
                ),
            });
            return;
        }
    };
    match &n.build {
        Some(b) => module_build(b, so, &bytes, found),
        None => found.unchecked(
            "gatelog module version",
            "no nginx binary to compare with (--nginx-bin)",
        ),
    }
    if let Some(master) = &d.nginx_master {
        module_loaded(d, master, so, found);
    }
}

/// Whether the module file was built for the NGINX binary (signature and version).
fn module_build(b: &NginxBuild, so: &Path, bytes: &[u8], found: &mut Findings) {
    let sig = module_signature(bytes);
    let version_in = bytes.windows(8).any(|w| w == b.version_num.to_le_bytes());
    if (sig.is_some() && b.signature.is_some() && sig != b.signature) || !version_in {
        found.find(Finding {
            cause: None,
            severity: Severity::Warning,
            subject: "gatelog module".into(),
            summary: format!(
                "{} was not built for this NGINX ({} {}): NGINX refuses to load it (`nginx -t`: \"module is not binary compatible\" or \"version ... instead of ...\")",
                so.display(),
                b.binary.display(),
                b.version
            ),
            evidence: vec![
                Seen::new(format!("{} -V", b.binary.display()), format!("nginx/{}; signature {}", b.version, b.signature.clone().unwrap_or_default())),
                Seen::new(so.display().to_string(), format!("signature {}; version {} {}", sig.unwrap_or_default(), b.version_num, if version_in { "present" } else { "absent" })),
            ],
            fix: "Rebuild the module against this NGINX's sources and configure flags (`nginx-build/build.sh`), then `sudo nginx -t && sudo systemctl reload nginx`.".into(),
        });
    } else {
        found.note(
            "gatelog",
            format!(
                "gatelog module {} matches {} nginx/{}",
                so.display(),
                b.binary.display(),
                b.version
            ),
            None,
        );
    }
}

/// Whether the running master has the module file mapped, and whether the file
/// changed after the master started.
fn module_loaded(d: &Doctor, master: &Proc, so: &Path, found: &mut Findings) {
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", master.pid)).unwrap_or_default();
    let canon = std::fs::canonicalize(so).unwrap_or(so.to_path_buf());
    let loaded = maps.contains(&*canon.to_string_lossy()) || maps.contains(&*so.to_string_lossy());
    let started = super::procs::ticks_to_secs(master.start_ticks);
    let boot = boot_ms(d.now);
    let master_start = boot.plus_ms((started * 1000.0) as i64);
    let changed = std::fs::metadata(so)
        .ok()
        .map(|m| EpochMs(m.mtime() * 1000));
    if !loaded && !maps.is_empty() {
        found.note(
            "gatelog",
            format!(
                "the running NGINX master {} has not loaded {}: reload NGINX to load it",
                master.pid,
                so.display()
            ),
            None,
        );
    } else if changed.is_some_and(|c| c > master_start) {
        found.note("gatelog", format!("{} changed after NGINX master {} started: `sudo nginx -t && sudo systemctl reload nginx` loads the new one", so.display(), master.pid), None);
    }
}

/// One `gatelog` file: written, and what its records say since the window's start.
fn check_records_file(
    d: &Doctor,
    s: &Directive,
    path: &Path,
    module_loaded: bool,
    found: &mut Findings,
) {
    let md = match std::fs::metadata(path) {
        Ok(md) => md,
        Err(e) => {
            if module_loaded {
                found.find(Finding {
                    cause: None,
                    severity: Severity::Warning,
                    subject: format!("gatelog records {}", path.display()),
                    summary: format!("gatelog records are not being written: {} ({}): {e}", path.display(), s.place()),
                    evidence: vec![Seen::new(s.place(), s.text())],
                    fix: "NGINX opens the file when it reads its config: `sudo nginx -t && sudo systemctl reload nginx`, and check the directory exists.".into(),
                });
            }
            return;
        }
    };
    let since_text = d.zone.format(d.since);
    let (lines, _) = tail_lines(path).unwrap_or_default();
    let tally = tally_records(d, &lines);
    let total: u64 = tally.statuses.values().sum();
    let text = if total == 0 {
        format!(
            "gatelog records: {} ({} bytes) holds no record since {since_text}",
            path.display(),
            md.len()
        )
    } else {
        let by: Vec<String> = tally
            .counts
            .iter()
            .map(|(k, n)| format!("{k} ×{n}"))
            .collect();
        let st: Vec<String> = tally
            .statuses
            .iter()
            .map(|(s, n)| format!("{s}: {n}"))
            .collect();
        format!(
            "gatelog records: {} holds {total} record(s) since {since_text} ({}), last at {}: {}",
            path.display(),
            st.join(", "),
            tally.last.map(|l| d.zone.format(l)).unwrap_or_default(),
            by.join("; ")
        )
    };
    let fix = (total > 0).then(|| format!("explain them: `gatelog analyze --since '{since_text}' {} <NGINX error log> <FPM log> <kernel log>`", path.display()));
    let text = if tally.bad > 0 {
        format!("{text} ({} line(s) not readable as records)", tally.bad)
    } else {
        text
    };
    found.note("gatelog", text, fix);
}

/// The records of a file's tail since the window's start, counted.
#[derive(Default)]
struct RecordTally {
    /// By `upstream event [errno]`.
    counts: BTreeMap<String, u64>,
    statuses: BTreeMap<u16, u64>,
    last: Option<EpochMs>,
    /// Lines that are not records.
    bad: u64,
}

fn tally_records(d: &Doctor, lines: &[String]) -> RecordTally {
    let mut t = RecordTally::default();
    for l in lines {
        let Some(r) = gatelog_record::Record::from_json_line(l) else {
            t.bad += 1;
            continue;
        };
        let Some((at, _)) = parse_iso_with_offset(r.time.as_bytes()) else {
            t.bad += 1;
            continue;
        };
        if at < d.since {
            continue;
        }
        t.last = Some(at);
        *t.statuses.entry(r.status).or_default() += 1;
        let a = r.attempts.last();
        let key = format!(
            "{} {}{}",
            r.upstream.clone().unwrap_or_else(|| "-".into()),
            a.and_then(|a| a.event).map_or("-", |e| e.slug()),
            a.and_then(|a| a.errno_name.clone())
                .map(|n| format!(" {n}"))
                .unwrap_or_default()
        );
        *t.counts.entry(key).or_default() += 1;
    }
    t
}
