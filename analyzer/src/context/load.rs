//! Reading the context inputs (PHP-FPM logs, kernel logs, journal/syslog, configs)
//! into the [`Context`], line by line.

use std::collections::VecDeque;
use std::io;

use super::{Context, PoolConf, Timed};
use crate::input::reader::{text, LineReader};
use crate::input::stats::InputStats;
use crate::input::Input;
use crate::model::{Evidence, InputKind};
use crate::parse::fpm::{self, FpmEvent, FpmLine};
use crate::parse::fpm_conf::{ConfLine, FpmConfParser};
use crate::parse::journal;
use crate::parse::kernel::{self, KernelEvent};
use crate::parse::nginx_conf::NginxConfParser;
use crate::parse::syslog::{self, Envelope, SysTime};
use crate::progress::Progress;
use crate::time::{EpochMs, LocalClock, Zone};

/// Bound on kept events of one kind; past it, events are counted as dropped.
const MAX_EVENTS: usize = 2_000_000;
/// Recent PHP fatal errors kept while waiting for their worker to die or not.
const RECENT_OUTPUT: usize = 256;

/// Settings shared by the loaders.
pub struct Loader<'a> {
    pub zone: &'a Zone,
    /// Year/month for lines without a year.
    pub reference: (i16, i8),
    /// (wall, boot seconds) pairs from lines carrying both clocks.
    pub boot_pairs: Vec<(EpochMs, f64)>,
    /// Recent PHP fatal errors from worker output, waiting to see whether their
    /// worker dies: only then are they kept (memory stays flat however many fatal
    /// errors a long log has).
    recent_output: VecDeque<Timed<FpmEvent>>,
}

impl<'a> Loader<'a> {
    pub fn new(zone: &'a Zone, reference: (i16, i8)) -> Loader<'a> {
        Loader {
            zone,
            reference,
            boot_pairs: Vec::new(),
            recent_output: VecDeque::new(),
        }
    }

    /// Reads one context input. I/O errors part-way are returned; what was read stays.
    pub fn load(
        &mut self,
        input: &Input,
        ctx: &mut Context,
        stats: &mut InputStats,
        progress: &mut Progress,
    ) -> io::Result<()> {
        let mut reader = LineReader::open(&input.path)?;
        let result = match input.kind {
            InputKind::Fpm => self.load_fpm(input, &mut reader, ctx, stats, progress),
            InputKind::Kernel | InputKind::Journal => {
                self.load_system_log(input, &mut reader, ctx, stats, progress)
            }
            InputKind::FpmConf => load_fpm_conf(input, &mut reader, ctx, stats),
            InputKind::NginxConf => load_nginx_conf(input, &mut reader, ctx, stats),
            _ => Ok(()),
        };
        stats.overlong_lines = reader.overlong_lines;
        result
    }

    fn load_fpm(
        &mut self,
        input: &Input,
        reader: &mut LineReader,
        ctx: &mut Context,
        stats: &mut InputStats,
        progress: &mut Progress,
    ) -> io::Result<()> {
        ctx.has_fpm_log = true;
        let mut clock = LocalClock::new(self.zone);
        // Worker output has no timestamp: it gets the time of the last dated line.
        let mut last_time: Option<EpochMs> = None;
        let mut in_worker_output = false;
        let mut buf = Vec::with_capacity(4096);
        while reader.next_line(&mut buf)? {
            let raw = &buf[..];
            stats.lines_read += 1;
            progress.tick(reader.raw_bytes());
            let line = text(raw);
            match fpm::parse_line(&line) {
                Some(parsed) => {
                    stats.parsed();
                    let at = parsed.civil.and_then(|c| clock.to_epoch(c));
                    if let Some(t) = at {
                        stats.saw_time(t);
                        last_time = Some(t);
                    }
                    in_worker_output = matches!(parsed.event, FpmEvent::WorkerOutput { .. });
                    let at = at.or(last_time);
                    let line_no = reader.line_no();
                    if self.keep_fpm(ctx, parsed, at, || {
                        Evidence::new("fpm", &input.name, line_no, &line)
                    }) {
                        stats.lines_used += 1;
                    }
                }
                // A stack trace or other raw worker output after a PHP message.
                None if in_worker_output || line.trim().is_empty() => stats.parsed(),
                None => stats.not_understood(reader.line_no(), &line),
            }
        }
        ctx.fpm_span = match (ctx.fpm_span, stats.first, stats.last) {
            (Some((a, b)), Some(f), Some(l)) => Some((a.min(f), b.max(l))),
            (None, Some(f), Some(l)) => Some((f, l)),
            (span, _, _) => span,
        };
        Ok(())
    }

    /// Stores an FPM event when it can matter; returns whether it was kept.
    fn keep_fpm(
        &mut self,
        ctx: &mut Context,
        line: FpmLine,
        at: Option<EpochMs>,
        evidence: impl FnOnce() -> Evidence,
    ) -> bool {
        match &line.event {
            FpmEvent::Other | FpmEvent::ChildStarted { .. } => return false,
            FpmEvent::ChildExited { signal, code, .. }
                if signal.is_none() && code.map_or(true, |c| c == 0) =>
            {
                return false
            }
            FpmEvent::WorkerOutput { text, pid, .. } => {
                let notable = [
                    "Fatal",
                    "fatal",
                    "Allowed memory",
                    "Segmentation",
                    "Connection disallowed",
                    "Maximum execution time",
                ]
                .iter()
                .any(|k| text.contains(k));
                if !notable || pid.is_none() {
                    return false;
                }
                if self.recent_output.len() >= RECENT_OUTPUT {
                    self.recent_output.pop_front();
                }
                self.recent_output.push_back(Timed {
                    at,
                    boot_secs: None,
                    evidence: evidence(),
                    event: line.event,
                });
                return true;
            }
            _ => {}
        }
        if ctx.fpm.len() >= MAX_EVENTS {
            ctx.dropped_events += 1;
            return false;
        }
        // A worker died: keep what it said just before (its PHP fatal error).
        if let (FpmEvent::ChildExited { pid, .. }, Some(t)) = (&line.event, at) {
            let said = self.recent_output.iter().rposition(|o| {
                matches!(o.event, FpmEvent::WorkerOutput { pid: Some(p), .. } if p == *pid)
                    && o.at.is_some_and(|a| a <= t && a >= t.minus_ms(30_000))
            });
            if let Some(i) = said {
                if let Some(out) = self.recent_output.remove(i) {
                    ctx.fpm.push(out);
                }
            }
        }
        ctx.fpm.push(Timed {
            at,
            boot_secs: None,
            evidence: evidence(),
            event: line.event,
        });
        true
    }

    fn load_system_log(
        &mut self,
        input: &Input,
        reader: &mut LineReader,
        ctx: &mut Context,
        stats: &mut InputStats,
        progress: &mut Progress,
    ) -> io::Result<()> {
        if input.kind == InputKind::Kernel {
            // Even an empty kernel log tells: no OOM kill, no crash.
            ctx.has_kernel_log = true;
        }
        let mut clock = LocalClock::new(self.zone);
        let mut envelope = Envelope::new(LocalClock::new(self.zone), self.reference);
        let source = input.kind.evidence_source();
        let mut buf = Vec::with_capacity(4096);
        while reader.next_line(&mut buf)? {
            let raw = &buf[..];
            stats.lines_read += 1;
            progress.tick(reader.raw_bytes());
            let line = text(raw);
            if line.trim().is_empty() {
                stats.parsed();
                continue;
            }
            let line_no = reader.line_no();
            let evidence = || Evidence::new(source, &input.name, line_no, &line);
            let used = if line.starts_with('{') {
                match syslog::parse_journal_json(&line) {
                    Some(l) => {
                        stats.parsed();
                        self.dispatch(ctx, stats, &l.ident, &l.message, l.time, evidence)
                    }
                    None => {
                        stats.not_understood(line_no, &line);
                        continue;
                    }
                }
            } else if let Some((time, msg)) = kernel::split_dmesg_line(&line, &mut clock) {
                stats.parsed();
                ctx.has_kernel_log = true;
                self.kernel_message(ctx, stats, msg, time, evidence)
            } else if let Some(l) = envelope.parse(&line) {
                stats.parsed();
                self.dispatch(ctx, stats, l.ident, l.message, l.time, evidence)
            } else {
                stats.not_understood(line_no, &line);
                continue;
            };
            if used {
                stats.lines_used += 1;
            }
        }
        Ok(())
    }

    /// Routes a system-log message by its identifier.
    fn dispatch(
        &mut self,
        ctx: &mut Context,
        stats: &mut InputStats,
        ident: &str,
        msg: &str,
        time: SysTime,
        evidence: impl FnOnce() -> Evidence,
    ) -> bool {
        if let Some(t) = time.wall {
            stats.saw_time(t);
        }
        if ident == "kernel" {
            ctx.has_kernel_log = true;
            return self.kernel_message(ctx, stats, msg, time, evidence);
        }
        if ident == "systemd-coredump" {
            return match kernel::parse_coredump(msg) {
                Some(ev) => push_kernel(ctx, time, ev, evidence),
                None => false,
            };
        }
        if ident.starts_with("systemd") {
            return match journal::parse_message(ident, msg) {
                Some(m) => {
                    if ctx.units.len() >= MAX_EVENTS {
                        ctx.dropped_events += 1;
                        return false;
                    }
                    ctx.units.push(Timed {
                        at: time.wall,
                        boot_secs: time.boot_secs,
                        evidence: evidence(),
                        event: m,
                    });
                    true
                }
                None => false,
            };
        }
        if ident.starts_with("php") {
            ctx.has_fpm_log = true;
            if let Some(parsed) = fpm::parse_syslog_message(msg) {
                // The journal's stdout records keep FPM's own (local) timestamp.
                let at = parsed
                    .civil
                    .and_then(|c| LocalClock::new(self.zone).to_epoch(c))
                    .or(time.wall);
                if let Some(t) = at {
                    ctx.fpm_span = Some(ctx.fpm_span.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
                }
                return self.keep_fpm(ctx, parsed, at, evidence);
            }
        }
        false
    }

    fn kernel_message(
        &mut self,
        ctx: &mut Context,
        stats: &mut InputStats,
        msg: &str,
        time: SysTime,
        evidence: impl FnOnce() -> Evidence,
    ) -> bool {
        // kern.log keeps the printk stamp after the syslog time: both clocks.
        let (time, msg) = match kernel::split_boot_stamp(msg) {
            Some((secs, rest)) => {
                if let Some(wall) = time.wall {
                    if self.boot_pairs.len() < 16 {
                        self.boot_pairs.push((wall, secs));
                    }
                }
                (
                    SysTime {
                        wall: time.wall,
                        boot_secs: Some(secs),
                    },
                    rest,
                )
            }
            None => (time, msg),
        };
        if let (Some(wall), Some(secs)) = (time.wall, time.boot_secs) {
            if self.boot_pairs.len() < 16 && !self.boot_pairs.contains(&(wall, secs)) {
                self.boot_pairs.push((wall, secs));
            }
        }
        if let Some(t) = time.wall {
            stats.saw_time(t);
        }
        let Some(event) = kernel::parse_message(msg) else {
            return false;
        };
        let mem = &mut ctx.memory;
        match &event {
            KernelEvent::TaskRow {
                rss_pages, name, ..
            } => {
                if kernel::is_fpm_comm(name) {
                    mem.worker_rss_kb_sum += rss_pages * 4;
                    mem.worker_rss_count += 1;
                }
                return true;
            }
            KernelEvent::PagesRam { pages } => {
                mem.ram_kb = Some(pages * 4);
                return true;
            }
            KernelEvent::MemcgLimit { limit_kb } => {
                mem.memcg_limit_kb = Some(*limit_kb);
                return true;
            }
            KernelEvent::OomInvoked { .. } => return true,
            KernelEvent::OomKilled {
                anon_rss_kb: Some(kb),
                comm,
                ..
            } if kernel::is_fpm_comm(comm) => {
                mem.victim_rss_kb_max = Some(mem.victim_rss_kb_max.map_or(*kb, |m| m.max(*kb)));
            }
            _ => {}
        }
        push_kernel(ctx, time, event, evidence)
    }
}

fn push_kernel(
    ctx: &mut Context,
    time: SysTime,
    event: KernelEvent,
    evidence: impl FnOnce() -> Evidence,
) -> bool {
    if ctx.kernel.len() >= MAX_EVENTS {
        ctx.dropped_events += 1;
        return false;
    }
    if let Some(t) = time.wall {
        ctx.kernel_span = Some(
            ctx.kernel_span
                .map_or((t, t), |(a, b)| (a.min(t), b.max(t))),
        );
    }
    ctx.kernel.push(Timed {
        at: time.wall,
        boot_secs: time.boot_secs,
        evidence: evidence(),
        event,
    });
    true
}

fn load_fpm_conf(
    input: &Input,
    reader: &mut LineReader,
    ctx: &mut Context,
    stats: &mut InputStats,
) -> io::Result<()> {
    let mut parser = FpmConfParser::default();
    let mut buf = Vec::with_capacity(4096);
    while reader.next_line(&mut buf)? {
        let raw = &buf[..];
        stats.lines_read += 1;
        let line = text(raw);
        match parser.feed(&line, reader.line_no()) {
            ConfLine::Understood => stats.parsed(),
            ConfLine::NotUnderstood => stats.not_understood(reader.line_no(), &line),
        }
    }
    for pool in parser.finish() {
        stats.lines_used += pool.settings.len() as u64;
        ctx.pools.push(PoolConf {
            file: input.name.clone(),
            pool,
        });
    }
    Ok(())
}

fn load_nginx_conf(
    input: &Input,
    reader: &mut LineReader,
    ctx: &mut Context,
    stats: &mut InputStats,
) -> io::Result<()> {
    let mut parser = NginxConfParser::new(&input.name);
    let mut buf = Vec::with_capacity(4096);
    while reader.next_line(&mut buf)? {
        let raw = &buf[..];
        stats.lines_read += 1;
        let line = text(raw);
        if parser.feed(&line, reader.line_no()) {
            stats.parsed();
        } else {
            stats.not_understood(reader.line_no(), &line);
        }
    }
    let conf = parser.finish();
    stats.lines_used += (conf.passes.len() + conf.tuning.len()) as u64;
    ctx.nginx.push(conf);
    Ok(())
}
