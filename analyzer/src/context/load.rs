//! Reading the context inputs (PHP-FPM logs, kernel logs, journal/syslog, configs)
//! into the [`Context`].
//!
//! Configs are read whole (they are small). Logs are read incrementally, in step with
//! the failure stream: [`Loader::advance`] reads each log up to a time a little ahead
//! of the failures being classified, and [`Context::evict_before`] drops what is too
//! old to matter, so the index holds a time window, not the whole log.

use std::collections::VecDeque;
use std::io;

use super::{Context, PoolConf, Timed};
use crate::input::reader::{text, LineReader};
use crate::input::stats::InputStats;
use crate::input::Input;
use crate::model::{Evidence, EvidenceSource, InputKind};
use crate::parse::fpm::{self, FpmEvent, FpmLine};
use crate::parse::fpm_conf::{ConfLine, FpmConfParser};
use crate::parse::journal;
use crate::parse::kernel::{self, KernelEvent};
use crate::parse::nginx_conf::NginxConfParser;
use crate::parse::syslog::{self, Envelope, SysTime};
use crate::progress::Progress;
use crate::time::{EpochMs, LocalClock, Zone};

/// How far back of a failure the classifier looks (request timers up to 10 min,
/// max_children warnings a read timeout back, kernel lines 2 min), with margin.
pub const LOOKBACK_MS: i64 = 15 * 60_000;
/// How far ahead of a failure the classifier looks (FPM's `execution timed out`
/// after NGINX's 504, a worker's exit logged after NGINX's line).
pub const LOOKAHEAD_MS: i64 = 60_000;
/// Bound on kept events of one kind inside the window; past it, events are counted
/// as dropped.
const MAX_EVENTS: usize = 2_000_000;
/// Recent PHP fatal errors kept while waiting for their worker to die or not.
const RECENT_OUTPUT: usize = 256;
/// Lines read between evictions while catching up (bounds memory when the context
/// starts long before the first failure).
const EVICT_EVERY_LINES: u64 = 65_536;

/// One context log being read incrementally.
pub struct ContextReader {
    input: Input,
    reader: LineReader,
    buf: Vec<u8>,
    pub stats: InputStats,
    clock: LocalClock,
    envelope: Envelope,
    /// Time of the last dated line: where the reader stands, and the time of
    /// undated worker output.
    last_time: Option<EpochMs>,
    in_worker_output: bool,
    done: bool,
}

/// Where parsed lines go; shared by all readers.
pub struct Sink {
    zone: Zone,
    /// Boot instant for raw dmesg times (from the alignment), when known.
    boot: Option<EpochMs>,
    /// Recent PHP fatal errors from worker output, waiting to see whether their
    /// worker dies: only then are they kept.
    recent_output: VecDeque<Timed<FpmEvent>>,
}

pub struct Loader {
    sink: Sink,
    readers: Vec<ContextReader>,
    reference: (i16, i8),
}

impl Loader {
    pub fn new(zone: &Zone, reference: (i16, i8), boot: Option<EpochMs>) -> Loader {
        Loader {
            sink: Sink {
                zone: zone.clone(),
                boot,
                recent_output: VecDeque::new(),
            },
            readers: Vec::new(),
            reference,
        }
    }

    /// Opens a context input: a config is read whole now (its stats are returned);
    /// a log is opened for incremental reading.
    pub fn open(&mut self, input: &Input, ctx: &mut Context) -> io::Result<Option<InputStats>> {
        let mut reader = LineReader::open(&input.path)?;
        let mut stats = InputStats::new(input);
        match input.kind {
            InputKind::FpmConf => {
                load_fpm_conf(input, &mut reader, ctx, &mut stats)?;
                Ok(Some(stats))
            }
            InputKind::NginxConf => {
                load_nginx_conf(input, &mut reader, ctx, &mut stats)?;
                Ok(Some(stats))
            }
            InputKind::Fpm | InputKind::Kernel | InputKind::Journal => {
                if input.kind == InputKind::Fpm {
                    ctx.has_fpm_log = true;
                }
                if input.kind == InputKind::Kernel {
                    // Even an empty kernel log tells: no OOM kill, no crash.
                    ctx.has_kernel_log = true;
                }
                self.readers.push(ContextReader {
                    input: input.clone(),
                    reader,
                    buf: Vec::with_capacity(4096),
                    stats,
                    clock: LocalClock::new(&self.sink.zone),
                    envelope: Envelope::new(LocalClock::new(&self.sink.zone), self.reference),
                    last_time: None,
                    in_worker_output: false,
                    done: false,
                });
                ctx.kernel_open = self.kernel_open();
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    fn kernel_open(&self) -> bool {
        self.readers
            .iter()
            .any(|r| !r.done && matches!(r.input.kind, InputKind::Kernel | InputKind::Journal))
    }

    /// Reads every log up to the first line dated after `until`, evicting events
    /// before `evict_before` as it goes. Returns read errors (the input then ends).
    pub fn advance(
        &mut self,
        until: EpochMs,
        evict_before: EpochMs,
        ctx: &mut Context,
        progress: &mut Progress,
    ) -> Vec<String> {
        let mut errors = Vec::new();
        let mut since_evict = 0u64;
        for r in self.readers.iter_mut() {
            while !r.done && r.last_time.map_or(true, |t| t <= until) {
                match r.reader.next_line(&mut r.buf) {
                    Ok(true) => {}
                    Ok(false) => {
                        r.done = true;
                        break;
                    }
                    Err(e) => {
                        r.done = true;
                        r.stats.error = Some(e.to_string());
                        errors.push(format!("cannot read {}: {e}", r.input.name));
                        break;
                    }
                }
                r.stats.lines_read += 1;
                progress.tick(r.reader.raw_bytes());
                self.sink.line(r, ctx);
                since_evict += 1;
                if since_evict >= EVICT_EVERY_LINES {
                    since_evict = 0;
                    let reader_cut = r
                        .last_time
                        .map_or(evict_before, |t| t.minus_ms(LOOKBACK_MS + LOOKAHEAD_MS))
                        .min(evict_before);
                    ctx.evict_before(reader_cut);
                }
            }
            r.stats.overlong_lines = r.reader.overlong_lines;
        }
        ctx.kernel_open = self.kernel_open();
        ctx.evict_before(evict_before);
        ctx.finish();
        errors
    }

    /// Reads the rest of every log (for the counts), keeping memory bounded.
    pub fn drain(&mut self, ctx: &mut Context, progress: &mut Progress) -> Vec<String> {
        let mut errors = Vec::new();
        while self.readers.iter().any(|r| !r.done) {
            let Some(t) = self
                .readers
                .iter()
                .filter(|r| !r.done)
                .filter_map(|r| r.last_time)
                .min()
            else {
                errors.extend(self.advance(EpochMs(i64::MAX), EpochMs(i64::MIN), ctx, progress));
                break;
            };
            let until = t.plus_ms(LOOKBACK_MS);
            errors.extend(self.advance(until, until.minus_ms(LOOKBACK_MS), ctx, progress));
        }
        errors
    }

    /// The counts of every log, in the order opened.
    pub fn into_stats(self) -> Vec<InputStats> {
        self.readers.into_iter().map(|r| r.stats).collect()
    }
}

impl Sink {
    fn line(&mut self, r: &mut ContextReader, ctx: &mut Context) {
        let line_no = r.reader.line_no();
        let line = text(&r.buf).into_owned();
        match r.input.kind {
            InputKind::Fpm => self.fpm_line(r, ctx, &line, line_no),
            _ => self.system_line(r, ctx, &line, line_no),
        }
    }

    fn fpm_line(&mut self, r: &mut ContextReader, ctx: &mut Context, line: &str, line_no: u64) {
        match fpm::parse_line(line) {
            Some(parsed) => {
                r.stats.parsed();
                let at = parsed.civil.and_then(|c| r.clock.to_epoch(c));
                if let Some(t) = at {
                    r.stats.saw_time(t);
                    r.last_time = Some(t);
                }
                r.in_worker_output = matches!(parsed.event, FpmEvent::WorkerOutput { .. });
                // Worker output has no timestamp: it gets the time of the last dated line.
                let at = at.or(r.last_time);
                let name = r.input.name.clone();
                if self.keep_fpm(ctx, parsed, at, || {
                    Evidence::new(EvidenceSource::Fpm, &name, line_no, line)
                }) {
                    r.stats.lines_used += 1;
                }
            }
            // A stack trace or other raw worker output after a PHP message.
            None if r.in_worker_output || line.trim().is_empty() => r.stats.parsed(),
            None => r.stats.not_understood(line_no, line),
        }
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
        if let FpmEvent::Running { pid } = line.event {
            ctx.add_master(pid);
        }
        // A worker died: keep what it said just before (its PHP fatal error).
        if let (FpmEvent::ChildExited { pid, .. }, Some(t)) = (&line.event, at) {
            let said = self.recent_output.iter().rposition(|o| {
                matches!(o.event, FpmEvent::WorkerOutput { pid: Some(p), .. } if p == *pid)
                    && o.at.is_some_and(|a| a <= t && a >= t.minus_ms(30_000))
            });
            if let Some(out) = said.and_then(|i| self.recent_output.remove(i)) {
                ctx.fpm.push(out);
            }
        }
        let timed = Timed {
            at,
            boot_secs: None,
            evidence: evidence(),
            event: line.event,
        };
        ctx.markers.fpm(&timed);
        ctx.fpm.push(timed);
        true
    }

    fn system_line(&mut self, r: &mut ContextReader, ctx: &mut Context, line: &str, line_no: u64) {
        if line.trim().is_empty() {
            r.stats.parsed();
            return;
        }
        let source = r.input.kind.evidence_source();
        let name = r.input.name.clone();
        let evidence = || Evidence::new(source, &name, line_no, line);
        let used = if line.starts_with('{') {
            match syslog::parse_journal_json(line) {
                Some(l) => {
                    r.stats.parsed();
                    self.dispatch(r, ctx, &l.ident, &l.message, l.time, evidence)
                }
                None => {
                    r.stats.not_understood(line_no, line);
                    return;
                }
            }
        } else if let Some((time, msg)) = kernel::split_dmesg_line(line, &mut r.clock) {
            r.stats.parsed();
            ctx.has_kernel_log = true;
            self.kernel_message(r, ctx, msg, time, evidence)
        } else if let Some(l) = r.envelope.parse(line) {
            r.stats.parsed();
            let (ident, message, time) = (l.ident.to_string(), l.message.to_string(), l.time);
            self.dispatch(r, ctx, &ident, &message, time, evidence)
        } else {
            r.stats.not_understood(line_no, line);
            return;
        };
        if used {
            r.stats.lines_used += 1;
        }
    }

    /// Routes a system-log message by its identifier.
    fn dispatch(
        &mut self,
        r: &mut ContextReader,
        ctx: &mut Context,
        ident: &str,
        msg: &str,
        time: SysTime,
        evidence: impl FnOnce() -> Evidence,
    ) -> bool {
        if ident == "kernel" {
            ctx.has_kernel_log = true;
            return self.kernel_message(r, ctx, msg, time, evidence);
        }
        if let Some(t) = time.wall {
            r.stats.saw_time(t);
            r.last_time = Some(t);
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
                    let timed = Timed {
                        at: time.wall,
                        boot_secs: time.boot_secs,
                        evidence: evidence(),
                        event: m,
                    };
                    ctx.markers.unit(&timed);
                    ctx.units.push(timed);
                    true
                }
                None => false,
            };
        }
        if ident.starts_with("php") {
            ctx.has_fpm_log = true;
            if let Some(parsed) = fpm::parse_syslog_message(msg) {
                // The journal's stdout records keep FPM's own (local) timestamp.
                let at = parsed.civil.and_then(|c| r.clock.to_epoch(c)).or(time.wall);
                return self.keep_fpm(ctx, parsed, at, evidence);
            }
        }
        false
    }

    fn kernel_message(
        &mut self,
        r: &mut ContextReader,
        ctx: &mut Context,
        msg: &str,
        time: SysTime,
        evidence: impl FnOnce() -> Evidence,
    ) -> bool {
        // kern.log keeps the printk stamp after the syslog time: both clocks.
        // Only when the envelope had no boot stamp: in raw dmesg the message itself
        // may start with brackets (the OOM task table).
        let split = if time.boot_secs.is_none() {
            kernel::split_boot_stamp(msg)
        } else {
            None
        };
        let (mut time, msg) = match split {
            Some((secs, rest)) => (
                SysTime {
                    wall: time.wall,
                    boot_secs: Some(secs),
                },
                rest,
            ),
            None => (time, msg),
        };
        // Raw dmesg: place it with the boot time found by the alignment.
        if time.wall.is_none() {
            if let (Some(boot), Some(secs)) = (self.boot, time.boot_secs) {
                time.wall = Some(boot.plus_ms((secs * 1000.0) as i64));
            }
        }
        if let Some(t) = time.wall {
            r.stats.saw_time(t);
            r.last_time = Some(t);
            ctx.kernel_span = Some(
                ctx.kernel_span
                    .map_or((t, t), |(a, b)| (a.min(t), b.max(t))),
            );
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
    let timed = Timed {
        at: time.wall,
        boot_secs: time.boot_secs,
        evidence: evidence(),
        event,
    };
    ctx.markers.kernel(&timed);
    ctx.kernel.push(timed);
    true
}

/// What a first look at the logs says about raw dmesg times.
#[derive(Debug, Default)]
pub struct Prescan {
    /// (wall, boot seconds) from lines carrying both clocks.
    pub pairs: Vec<(EpochMs, f64)>,
    /// A pid in both the kernel log (boot time) and FPM's child exits (wall time):
    /// (pid, boot instant).
    pub pid_match: Option<(u32, EpochMs)>,
    /// Boot seconds of the raw dmesg lines seen (for the host boot time check).
    pub boot_secs: Vec<f64>,
    /// Whether some kernel line has only boot time (alignment needed).
    pub needs_alignment: bool,
    /// First dated FPM line.
    pub fpm_first: Option<EpochMs>,
}

/// Reads the kernel logs until a line with both clocks (or enough OOM/crash pids),
/// then the FPM logs until one of those pids exits: enough to align raw dmesg,
/// without holding anything.
pub fn prescan(inputs: &[Input], zone: &Zone, reference: (i16, i8)) -> io::Result<Prescan> {
    let mut out = Prescan::default();
    let mut candidates: Vec<(u32, f64)> = Vec::new();
    let mut buf = Vec::with_capacity(4096);
    for input in inputs
        .iter()
        .filter(|i| matches!(i.kind, InputKind::Kernel | InputKind::Journal))
    {
        let mut reader = LineReader::open(&input.path)?;
        let mut clock = LocalClock::new(zone);
        let mut envelope = Envelope::new(LocalClock::new(zone), reference);
        while reader.next_line(&mut buf)? {
            let line = text(&buf);
            let (time, msg) = if line.starts_with('{') {
                match syslog::parse_journal_json(&line) {
                    Some(l) if l.ident == "kernel" => (l.time, l.message),
                    _ => continue,
                }
            } else if let Some((time, msg)) = kernel::split_dmesg_line(&line, &mut clock) {
                (time, msg.to_string())
            } else if let Some(l) = envelope.parse(&line) {
                if l.ident != "kernel" {
                    continue;
                }
                match kernel::split_boot_stamp(l.message) {
                    Some((secs, rest)) => (
                        SysTime {
                            wall: l.time.wall,
                            boot_secs: Some(secs),
                        },
                        rest.to_string(),
                    ),
                    None => (l.time, l.message.to_string()),
                }
            } else {
                continue;
            };
            match (time.wall, time.boot_secs) {
                (Some(w), Some(s)) => {
                    out.pairs.push((w, s));
                    break;
                }
                (None, Some(s)) => {
                    out.needs_alignment = true;
                    if out.boot_secs.len() < 64 {
                        out.boot_secs.push(s);
                    }
                    if let Some(ev) = kernel::parse_message(&msg) {
                        if matches!(
                            ev,
                            KernelEvent::OomKilled { .. }
                                | KernelEvent::Segfault { .. }
                                | KernelEvent::Trap { .. }
                        ) {
                            if let Some(pid) = ev.pid() {
                                candidates.push((pid, s));
                            }
                        }
                    }
                    if candidates.len() >= 64 {
                        break;
                    }
                }
                _ => {}
            }
        }
    }
    if !out.needs_alignment {
        return Ok(out);
    }
    for input in inputs.iter().filter(|i| i.kind == InputKind::Fpm) {
        let mut reader = LineReader::open(&input.path)?;
        let mut clock = LocalClock::new(zone);
        while reader.next_line(&mut buf)? {
            let line = text(&buf);
            let Some(parsed) = fpm::parse_line(&line) else {
                continue;
            };
            let Some(at) = parsed.civil.and_then(|c| clock.to_epoch(c)) else {
                continue;
            };
            out.fpm_first.get_or_insert(at);
            if candidates.is_empty() {
                break;
            }
            if let FpmEvent::ChildExited { pid, .. } = parsed.event {
                if let Some(&(_, secs)) = candidates.iter().find(|(p, _)| *p == pid) {
                    out.pid_match = Some((pid, at.minus_ms((secs * 1000.0) as i64)));
                    break;
                }
            }
        }
        if out.pid_match.is_some() {
            break;
        }
    }
    Ok(out)
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
        stats.lines_read += 1;
        let line = text(&buf);
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
        stats.lines_read += 1;
        let line = text(&buf);
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
