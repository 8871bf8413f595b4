//! Reading the context inputs (PHP-FPM logs, kernel logs, journal/syslog, configs)
//! into the [`ContextIndex`].
//!
//! Configs are read whole (they are small), with their includes ([`conf_tree`]). Logs
//! are read and parsed on their own threads (they do not depend on the failure stream;
//! the classifying thread is the bottleneck), a bounded number of lines ahead, and added
//! to the index in step with the failure stream: [`Loader::advance`] adds each log's
//! lines up to a time a little ahead of the failures being classified, and
//! [`ContextIndex::evict_before`] drops what is too old to matter, so the index holds a
//! time window, not the whole log. Only the classifying thread touches the index, in
//! each log's line order, so the result is the same as reading on one thread.
//!
//! Each line is unwrapped and routed by its content ([`crate::input::route`]): FPM
//! shipped through syslog, a container stream mixing NGINX and FPM lines, a journal
//! of several units all give their FPM, kernel and systemd lines here, and their
//! NGINX lines to the failure-side reader of the same file.

use std::collections::VecDeque;
use std::io;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::{conf_tree, php_version_in, ContextIndex, PhpVersionSeen, Timed};
use crate::input::framing::{strip_ansi, Layer};
use crate::input::reader::{text, LineReader};
use crate::input::route::{LineKind, Routed, Router, Side};
use crate::input::stats::{take, InputStats, Take};
use crate::input::{Input, Skipped};
use crate::model::{Evidence, EvidenceSource, InputKind};
use crate::parse::fpm::FpmEvent;
use crate::parse::journal::{self, UnitMessage};
use crate::parse::kernel::{self, KernelEvent};
use crate::parse::syslog::SysTime;
use crate::progress::Progress;
use crate::time::{EpochMs, LocalClock, Zone};
use crate::windows::{CONTEXT_LOOKAHEAD_MS, CONTEXT_LOOKBACK_MS, WORKER_OUTPUT_MS};

/// Bound on kept events of one kind inside the window; past it, events are counted
/// as dropped.
const MAX_EVENTS: usize = 2_000_000;
/// Recent PHP fatal errors kept while waiting for their worker to die or not.
const RECENT_OUTPUT: usize = 256;
/// Lines read between evictions while catching up (bounds memory when the context
/// starts long before the first failure).
const EVICT_EVERY_LINES: u64 = 65_536;
/// Lines a log's reading thread hands over at once, and batches it may read ahead
/// of the classification: reading ahead is bounded, a handover is not per line.
const BATCH_LINES: usize = 1024;
const BATCHES_AHEAD: usize = 4;

/// One context log being read on its own thread.
struct ContextReader {
    input: Input,
    reader: LineReader,
    buf: Vec<u8>,
    stats: InputStats,
    /// For raw `dmesg -T` times.
    clock: LocalClock,
    router: Router,
    /// This reader is the file's primary: it also counts framings and the lines
    /// that belong to neither side.
    primary: bool,
    /// The failure-side reader reads this file too.
    failure_reads: bool,
    /// Time of the last dated line (of any kind): where the reader stands, and the
    /// time of undated worker output.
    last_time: Option<EpochMs>,
}

/// How a reading thread parses lines: what does not depend on the index.
struct LineParser {
    /// Boot instant for raw dmesg times (from the alignment), when known.
    boot: Option<EpochMs>,
}

/// What one context line adds to the index, parsed on the log's thread and applied
/// in order on the classifying thread (which alone owns the index).
enum Op {
    PhpVersion(PhpVersionSeen),
    /// An FPM event worth keeping (a worker's death, a max_children warning, …).
    Fpm(Timed<FpmEvent>),
    /// A notable PHP error of a worker, kept only if the worker then dies.
    WorkerOutput(Timed<FpmEvent>),
    Unit(Timed<UnitMessage>),
    /// A dated kernel line (for the kernel log's span).
    KernelTime(EpochMs),
    /// A memory figure of an OOM report.
    Memory(KernelEvent),
    Kernel(Timed<KernelEvent>),
}

/// One line read.
struct ParsedLine {
    ops: Vec<Op>,
    /// The line counts as used whatever the index holds.
    used: bool,
    fpm_log: bool,
    kernel_log: bool,
    /// Where the reader stands after the line.
    last_time: Option<EpochMs>,
    raw_bytes: u64,
}

enum Batch {
    Lines(Vec<ParsedLine>),
    /// The end of the log, with the read error that ended it, if any.
    End(Option<String>),
}

/// The classifying thread's view of one log read on its thread.
struct LogFeed {
    rx: Receiver<Batch>,
    pending: std::vec::IntoIter<ParsedLine>,
    thread: Option<JoinHandle<InputStats>>,
    input: Input,
    name: Arc<str>,
    /// A kernel or journal log: `kernel_open` while it is being read.
    kernelish: bool,
    last_time: Option<EpochMs>,
    lines_used: u64,
    done: bool,
}

/// What the next line of a feed is.
enum Next {
    Line(ParsedLine),
    End(Option<String>),
}

impl LogFeed {
    fn next(&mut self) -> Next {
        loop {
            if let Some(l) = self.pending.next() {
                return Next::Line(l);
            }
            match self.rx.recv() {
                Ok(Batch::Lines(lines)) => self.pending = lines.into_iter(),
                Ok(Batch::End(error)) => return Next::End(error),
                // The thread ended without saying why: it panicked.
                Err(_) => {
                    return Next::End(Some(format!("cannot read {}: reader stopped", self.name)))
                }
            }
        }
    }
}

/// Applies parsed lines to the index; holds what needs the index's state.
struct ContextBuilder {
    /// Recent PHP fatal errors from worker output, waiting to see whether their
    /// worker dies: only then are they kept.
    recent_output: VecDeque<Timed<FpmEvent>>,
}

pub struct Loader {
    zone: Zone,
    boot: Option<EpochMs>,
    builder: ContextBuilder,
    feeds: Vec<LogFeed>,
    reference: (i16, i8),
}

impl Loader {
    pub fn new(zone: &Zone, reference: (i16, i8), boot: Option<EpochMs>) -> Loader {
        Loader {
            zone: zone.clone(),
            boot,
            builder: ContextBuilder {
                recent_output: VecDeque::new(),
            },
            feeds: Vec::new(),
            reference,
        }
    }

    /// Opens a context log for incremental reading (configs: [`load_configs`]).
    /// The log is read and parsed on its own thread, ahead of the classification
    /// by a bounded number of lines: it does not depend on the failure stream.
    pub fn open(
        &mut self,
        input: &Input,
        ctx: &mut ContextIndex,
    ) -> io::Result<Option<InputStats>> {
        let reader = LineReader::open(&input.path)?;
        let stats = InputStats::new(input);
        match input.kind {
            _ if input.reads_context() => {
                // What the file holds, known from its first lines: a classification
                // before the reader reaches the file's first FPM line still knows
                // that an FPM log is there.
                if input.has_kind(InputKind::Fpm) {
                    ctx.has_fpm_log = true;
                    // Debian names the log after the version: php7.0-fpm.log.
                    let file = input
                        .path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or("");
                    if let Some(v) = php_version_in(file) {
                        ctx.note_php_version(PhpVersionSeen {
                            version: v.to_string(),
                            seen_in: format!("the FPM log file {file}"),
                        });
                    }
                }
                if input.has_kind(InputKind::Kernel) {
                    // Even an empty kernel log tells: no OOM kill, no crash.
                    ctx.has_kernel_log = true;
                }
                let r = ContextReader {
                    router: Router::new(&self.zone, self.reference, Some(input.kind)),
                    primary: input.primary() != Side::Failure,
                    failure_reads: input.reads_failures(),
                    input: input.clone(),
                    reader,
                    buf: Vec::with_capacity(4096),
                    stats,
                    clock: LocalClock::new(&self.zone),
                    last_time: None,
                };
                let (tx, rx) = sync_channel(BATCHES_AHEAD);
                let parser = LineParser { boot: self.boot };
                let thread = std::thread::Builder::new()
                    .name("gatelog-context".into())
                    .spawn(move || parser.read_all(r, tx))?;
                self.feeds.push(LogFeed {
                    rx,
                    pending: Vec::new().into_iter(),
                    thread: Some(thread),
                    input: input.clone(),
                    name: input.name.clone(),
                    kernelish: input.has_kind(InputKind::Kernel)
                        || input.has_kind(InputKind::Journal),
                    last_time: None,
                    lines_used: 0,
                    done: false,
                });
                ctx.kernel_open = self.kernel_open();
                Ok(None)
            }
            _ => Ok(None),
        }
    }

    fn kernel_open(&self) -> bool {
        self.feeds.iter().any(|f| !f.done && f.kernelish)
    }

    /// Reads every log up to the first line dated after `until`, evicting events
    /// before `evict_before` as it goes. Returns read errors (the input then ends).
    pub fn advance(
        &mut self,
        until: EpochMs,
        evict_before: EpochMs,
        ctx: &mut ContextIndex,
        progress: &mut Progress,
    ) -> Vec<String> {
        let mut errors = Vec::new();
        let mut since_evict = 0u64;
        for f in self.feeds.iter_mut() {
            while !f.done && f.last_time.map_or(true, |t| t <= until) {
                let line = match f.next() {
                    Next::Line(l) => l,
                    Next::End(error) => {
                        f.done = true;
                        errors.extend(error);
                        break;
                    }
                };
                progress.tick(line.raw_bytes);
                f.last_time = line.last_time;
                if self.builder.apply(line, ctx) {
                    f.lines_used += 1;
                }
                since_evict += 1;
                if since_evict >= EVICT_EVERY_LINES {
                    since_evict = 0;
                    let reader_cut = f
                        .last_time
                        .map_or(evict_before, |t| {
                            t.minus_ms(CONTEXT_LOOKBACK_MS + CONTEXT_LOOKAHEAD_MS)
                        })
                        .min(evict_before);
                    ctx.evict_before(reader_cut);
                }
            }
        }
        ctx.kernel_open = self.kernel_open();
        ctx.evict_before(evict_before);
        ctx.finish();
        errors
    }

    /// Reads the rest of every log (for the counts), keeping memory bounded.
    pub fn drain(&mut self, ctx: &mut ContextIndex, progress: &mut Progress) -> Vec<String> {
        let mut errors = Vec::new();
        while self.feeds.iter().any(|f| !f.done) {
            let Some(t) = self
                .feeds
                .iter()
                .filter(|f| !f.done)
                .filter_map(|f| f.last_time)
                .min()
            else {
                errors.extend(self.advance(EpochMs(i64::MAX), EpochMs(i64::MIN), ctx, progress));
                break;
            };
            let until = t.plus_ms(CONTEXT_LOOKBACK_MS);
            errors.extend(self.advance(until, until.minus_ms(CONTEXT_LOOKBACK_MS), ctx, progress));
        }
        errors
    }

    /// The logs' counts, in the order opened; the loader reads no more after it.
    pub fn take_stats(&mut self) -> Vec<InputStats> {
        self.feeds
            .drain(..)
            .map(|mut f| {
                // A log not read to its end: its thread stops at its next handover.
                drop(f.rx);
                let mut stats = f
                    .thread
                    .take()
                    .and_then(|t| t.join().ok())
                    .unwrap_or_else(|| {
                        let mut s = InputStats::new(&f.input);
                        s.error = Some("reader stopped".to_string());
                        s
                    });
                stats.lines_used += f.lines_used;
                stats
            })
            .collect()
    }
}

impl LineParser {
    /// Reads the whole log, handing parsed lines over in batches; stops early when
    /// the loader no longer listens. Returns the log's counts.
    fn read_all(self, mut r: ContextReader, tx: SyncSender<Batch>) -> InputStats {
        let mut batch = Vec::with_capacity(BATCH_LINES);
        let end = loop {
            match r.reader.next_line(&mut r.buf) {
                Ok(true) => {}
                Ok(false) => break None,
                Err(e) => {
                    r.stats.error = Some(e.to_string());
                    break Some(format!("cannot read {}: {e}", r.input.name));
                }
            }
            r.stats.lines_read += 1;
            batch.push(self.line(&mut r));
            if batch.len() >= BATCH_LINES {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_LINES));
                if tx.send(Batch::Lines(full)).is_err() {
                    break None;
                }
            }
        };
        r.stats.overlong_lines = r.reader.overlong_lines;
        if !batch.is_empty() {
            let _ = tx.send(Batch::Lines(batch));
        }
        let _ = tx.send(Batch::End(end));
        r.stats
    }

    fn line(&self, r: &mut ContextReader) -> ParsedLine {
        let line_no = r.reader.line_no();
        let buf = std::mem::take(&mut r.buf);
        let text = text(&buf);
        let clean = strip_ansi(&text);
        let routed = r.router.route(&clean);
        let mut out = ParsedLine {
            ops: Vec::new(),
            used: false,
            fpm_log: false,
            kernel_log: false,
            last_time: None,
            raw_bytes: 0,
        };
        if r.primary {
            r.stats.count_framing(routed.framed.layers);
        }
        // Where the reader stands: any dated line, NGINX's included.
        if let Some(t) = routed.time {
            r.last_time = Some(t);
        }
        match take(routed.kind, Side::Context, r.primary, r.failure_reads) {
            Take::Leave => {}
            Take::Unread => {
                r.stats.count_kind(routed.kind);
                r.stats.parsed();
                r.stats.other_role_unread += 1;
            }
            Take::Own => {
                if routed.kind != LineKind::Unknown {
                    r.stats.count_kind(routed.kind);
                }
                out.used = match routed.kind {
                    LineKind::Fpm => self.fpm_line(r, &mut out, routed, &clean, line_no),
                    LineKind::Kernel => self.kernel_line(r, &mut out, &routed, &clean, line_no),
                    LineKind::Journal => self.journal_line(r, &mut out, &routed, &clean, line_no),
                    LineKind::Blank | LineKind::Other => {
                        r.stats.parsed();
                        false
                    }
                    _ => {
                        r.stats.not_understood(line_no, &clean);
                        false
                    }
                };
            }
        }
        drop(clean);
        drop(text);
        r.buf = buf;
        out.last_time = r.last_time;
        out.raw_bytes = r.reader.raw_bytes();
        out
    }

    fn fpm_line(
        &self,
        r: &mut ContextReader,
        out: &mut ParsedLine,
        routed: Routed<'_>,
        line: &str,
        line_no: u64,
    ) -> bool {
        r.stats.parsed();
        out.fpm_log = true;
        let Some(parsed) = routed.fpm else {
            // A continuation of worker output (a stack trace), FPM's access log, or
            // a syslog record of FPM's that says nothing the causes need.
            return false;
        };
        if let Some(t) = routed.time {
            r.stats.saw_time(t);
        }
        // `php8.2-fpm[812]:` in the journal names the version.
        if let Some(v) = routed.framed.ident.as_deref().and_then(php_version_in) {
            out.ops.push(Op::PhpVersion(PhpVersionSeen {
                version: v.to_string(),
                seen_in: format!(
                    "{} lines in the journal",
                    routed.framed.ident.as_deref().unwrap_or("")
                ),
            }));
        }
        // Worker output has no timestamp: it gets the time of the last dated line.
        let at = routed.time.or(r.last_time);
        let timed = |event| Timed {
            at,
            boot_secs: None,
            evidence: Evidence::new(EvidenceSource::Fpm, &r.input.name, line_no, line),
            event,
        };
        match &parsed.event {
            FpmEvent::Other | FpmEvent::ChildStarted { .. } => false,
            FpmEvent::ChildExited { signal, code, .. }
                if signal.is_none() && code.map_or(true, |c| c == 0) =>
            {
                false
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
                out.ops.push(Op::WorkerOutput(timed(parsed.event)));
                true
            }
            // Kept or not depends on the index ([`ContextBuilder::keep_fpm`]).
            _ => {
                out.ops.push(Op::Fpm(timed(parsed.event)));
                false
            }
        }
    }

    fn kernel_line(
        &self,
        r: &mut ContextReader,
        out: &mut ParsedLine,
        routed: &Routed<'_>,
        line: &str,
        line_no: u64,
    ) -> bool {
        out.kernel_log = true;
        let inner: &str = &routed.framed.inner;
        let layers = routed.framed.layers;
        if layers.contains(Layer::Syslog) || layers.contains(Layer::JournalJson) {
            r.stats.parsed();
            let time = routed.framed.time.unwrap_or(SysTime {
                wall: None,
                boot_secs: None,
            });
            return self.kernel_message(r, out, inner, time, line, line_no);
        }
        if let Some((time, msg)) = kernel::split_dmesg_line(inner, &mut r.clock) {
            r.stats.parsed();
            // A stamp around dmesg's own line: the stamp is the wall time.
            let time = SysTime {
                wall: time.wall.or(routed.time),
                boot_secs: time.boot_secs,
            };
            return self.kernel_message(r, out, msg, time, line, line_no);
        }
        // A stamped line of a kernel log that names no format of its own.
        r.stats.parsed();
        let time = SysTime {
            wall: routed.time,
            boot_secs: None,
        };
        self.kernel_message(r, out, inner, time, line, line_no)
    }

    /// systemd's lines: unit events of the FPM unit, systemd-oomd, systemd-coredump.
    fn journal_line(
        &self,
        r: &mut ContextReader,
        out: &mut ParsedLine,
        routed: &Routed<'_>,
        line: &str,
        line_no: u64,
    ) -> bool {
        r.stats.parsed();
        let ident = routed.framed.ident.as_deref().unwrap_or("");
        let msg: &str = &routed.framed.inner;
        let time = routed.framed.time.unwrap_or(SysTime {
            wall: routed.time,
            boot_secs: None,
        });
        if let Some(t) = time.wall {
            r.stats.saw_time(t);
        }
        let evidence = || Evidence::new(EvidenceSource::Journal, &r.input.name, line_no, line);
        if ident == "systemd-coredump" {
            if let Some(ev) = kernel::parse_coredump(msg) {
                out.ops.push(Op::Kernel(Timed {
                    at: time.wall,
                    boot_secs: time.boot_secs,
                    evidence: evidence(),
                    event: ev,
                }));
            }
            return false;
        }
        if let Some(m) = journal::parse_message(ident, msg) {
            if let Some(v) = m.unit.as_deref().and_then(php_version_in) {
                let seen_in = format!("unit {} in the journal", m.unit.as_deref().unwrap_or(""));
                out.ops.push(Op::PhpVersion(PhpVersionSeen {
                    version: v.to_string(),
                    seen_in,
                }));
            }
            out.ops.push(Op::Unit(Timed {
                at: time.wall,
                boot_secs: time.boot_secs,
                evidence: evidence(),
                event: m,
            }));
        }
        false
    }

    fn kernel_message(
        &self,
        r: &mut ContextReader,
        out: &mut ParsedLine,
        msg: &str,
        time: SysTime,
        line: &str,
        line_no: u64,
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
            out.ops.push(Op::KernelTime(t));
        }
        let Some(event) = kernel::parse_message(msg) else {
            return false;
        };
        match &event {
            KernelEvent::TaskRow { .. }
            | KernelEvent::PagesRam { .. }
            | KernelEvent::MemcgLimit { .. } => {
                out.ops.push(Op::Memory(event));
                return true;
            }
            KernelEvent::OomInvoked { .. } => return true,
            _ => {}
        }
        out.ops.push(Op::Kernel(Timed {
            at: time.wall,
            boot_secs: time.boot_secs,
            evidence: Evidence::new(EvidenceSource::Kernel, &r.input.name, line_no, line),
            event,
        }));
        false
    }
}

impl ContextBuilder {
    /// Adds one parsed line to the index; returns whether it was used.
    fn apply(&mut self, line: ParsedLine, ctx: &mut ContextIndex) -> bool {
        if line.fpm_log {
            ctx.has_fpm_log = true;
        }
        if line.kernel_log {
            ctx.has_kernel_log = true;
        }
        let mut used = line.used;
        for op in line.ops {
            match op {
                Op::PhpVersion(seen) => ctx.note_php_version(seen),
                Op::Fpm(timed) => used |= self.keep_fpm(ctx, timed),
                Op::WorkerOutput(timed) => {
                    if self.recent_output.len() >= RECENT_OUTPUT {
                        self.recent_output.pop_front();
                    }
                    self.recent_output.push_back(timed);
                }
                Op::Unit(timed) => {
                    if ctx.units.len() >= MAX_EVENTS {
                        ctx.dropped_events += 1;
                    } else {
                        ctx.markers.unit(&timed);
                        ctx.units.push(timed);
                        used = true;
                    }
                }
                Op::KernelTime(t) => {
                    ctx.kernel_span = Some(
                        ctx.kernel_span
                            .map_or((t, t), |(a, b)| (a.min(t), b.max(t))),
                    );
                }
                Op::Memory(event) => {
                    let mem = &mut ctx.memory;
                    match event {
                        KernelEvent::TaskRow {
                            rss_pages, name, ..
                        } if kernel::is_fpm_comm(&name) => {
                            mem.worker_rss_kb_sum += rss_pages * 4;
                            mem.worker_rss_count += 1;
                        }
                        KernelEvent::PagesRam { pages } => mem.ram_kb = Some(pages * 4),
                        KernelEvent::MemcgLimit { limit_kb } => mem.memcg_limit_kb = Some(limit_kb),
                        _ => {}
                    }
                }
                Op::Kernel(timed) => {
                    if let KernelEvent::OomKilled {
                        anon_rss_kb: Some(kb),
                        comm,
                        ..
                    } = &timed.event
                    {
                        if kernel::is_fpm_comm(comm) {
                            let mem = &mut ctx.memory;
                            mem.victim_rss_kb_max =
                                Some(mem.victim_rss_kb_max.map_or(*kb, |m| m.max(*kb)));
                        }
                    }
                    used |= push_kernel(ctx, timed);
                }
            }
        }
        used
    }

    /// Stores an FPM event; returns whether it was kept.
    fn keep_fpm(&mut self, ctx: &mut ContextIndex, timed: Timed<FpmEvent>) -> bool {
        if ctx.fpm.len() >= MAX_EVENTS {
            ctx.dropped_events += 1;
            return false;
        }
        if let FpmEvent::Running { pid } = timed.event {
            ctx.add_master(pid);
        }
        // A worker died: keep what it said just before (its PHP fatal error).
        if let (FpmEvent::ChildExited { pid, .. }, Some(t)) = (&timed.event, timed.at) {
            let said = self.recent_output.iter().rposition(|o| {
                matches!(o.event, FpmEvent::WorkerOutput { pid: Some(p), .. } if p == *pid)
                    && o.at
                        .is_some_and(|a| a <= t && a >= t.minus_ms(WORKER_OUTPUT_MS))
            });
            if let Some(out) = said.and_then(|i| self.recent_output.remove(i)) {
                ctx.fpm.push(out);
            }
        }
        ctx.markers.fpm(&timed);
        ctx.fpm.push(timed);
        true
    }
}

fn push_kernel(ctx: &mut ContextIndex, timed: Timed<KernelEvent>) -> bool {
    if ctx.kernel.len() >= MAX_EVENTS {
        ctx.dropped_events += 1;
        return false;
    }
    ctx.markers.kernel(&timed);
    ctx.kernel.push(timed);
    true
}

/// What a first look at the logs says about raw dmesg times.
#[derive(Debug, Default)]
pub struct Prescan {
    /// Lines carrying both clocks.
    pub pairs: Vec<ClockPair>,
    /// A pid in both the kernel log (boot time) and FPM's child exits (wall time).
    pub pid_match: Option<PidMatch>,
    /// Boot seconds of the raw dmesg lines seen (for the host boot time check).
    pub boot_secs: Vec<f64>,
    /// Whether some kernel line has only boot time (alignment needed).
    pub needs_alignment: bool,
    /// First dated FPM line.
    pub fpm_first: Option<EpochMs>,
}

/// Reads the kernel logs until a line with both clocks (or enough OOM/crash pids),
/// then the FPM logs until one of those pids exits: enough to align raw dmesg,
/// without holding anything. Files are routed line by line as the readers do, so a
/// syslog or container stream gives its kernel and FPM lines.
/// A kernel line's wall-clock time and its boot time.
#[derive(Debug, Clone, Copy)]
pub struct ClockPair {
    pub wall: EpochMs,
    pub boot_secs: f64,
}

/// A pid whose death is in both the kernel log (boot time) and FPM's child exits
/// (wall time): the boot instant that makes them agree.
#[derive(Debug, Clone, Copy)]
pub struct PidMatch {
    pub pid: u32,
    pub boot: EpochMs,
}

/// A PHP process's death in the kernel log with only its boot time.
struct BootTimeDeath {
    pid: u32,
    boot_secs: f64,
}

pub fn prescan(inputs: &[Input], zone: &Zone, reference: (i16, i8)) -> io::Result<Prescan> {
    let mut out = Prescan::default();
    let mut deaths: Vec<BootTimeDeath> = Vec::new();
    for input in inputs
        .iter()
        .filter(|i| i.has_kind(InputKind::Kernel) || i.has_kind(InputKind::Journal))
    {
        prescan_kernel(input, zone, reference, &mut out, &mut deaths)?;
    }
    if !out.needs_alignment {
        return Ok(out);
    }
    for input in inputs.iter().filter(|i| i.has_kind(InputKind::Fpm)) {
        prescan_fpm(input, zone, reference, &deaths, &mut out)?;
        if out.pid_match.is_some() {
            break;
        }
    }
    Ok(out)
}

/// A kernel log's first lines: a line with both clocks, else the boot times and
/// the PHP deaths of raw dmesg lines.
fn prescan_kernel(
    input: &Input,
    zone: &Zone,
    reference: (i16, i8),
    out: &mut Prescan,
    deaths: &mut Vec<BootTimeDeath>,
) -> io::Result<()> {
    let mut buf = Vec::with_capacity(4096);
    let mut reader = LineReader::open(&input.path)?;
    let mut clock = LocalClock::new(zone);
    let mut router = Router::new(zone, reference, Some(input.kind));
    while reader.next_line(&mut buf)? {
        let line = text(&buf);
        let clean = strip_ansi(&line);
        let r = router.route(&clean);
        if r.kind != LineKind::Kernel {
            continue;
        }
        let Some((time, msg)) = kernel_line_time(&r, &mut clock) else {
            continue;
        };
        match (time.wall, time.boot_secs) {
            (Some(wall), Some(boot_secs)) => {
                out.pairs.push(ClockPair { wall, boot_secs });
                break;
            }
            (None, Some(s)) => {
                out.needs_alignment = true;
                if out.boot_secs.len() < 64 {
                    out.boot_secs.push(s);
                }
                if let Some(ev) = kernel::parse_message(msg) {
                    if matches!(
                        ev,
                        KernelEvent::OomKilled { .. }
                            | KernelEvent::Segfault { .. }
                            | KernelEvent::Trap { .. }
                    ) {
                        if let Some(pid) = ev.pid() {
                            deaths.push(BootTimeDeath { pid, boot_secs: s });
                        }
                    }
                }
                if deaths.len() >= 64 {
                    break;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The clocks of a kernel line (a syslog or journal frame's, else dmesg's own
/// stamp) and its message; `None` for a line that is not a kernel message.
fn kernel_line_time<'r>(r: &'r Routed, clock: &mut LocalClock) -> Option<(SysTime, &'r str)> {
    let inner: &str = &r.framed.inner;
    if r.framed.layers.contains(Layer::Syslog) || r.framed.layers.contains(Layer::JournalJson) {
        let time = r.framed.time.unwrap_or(SysTime {
            wall: None,
            boot_secs: None,
        });
        return Some(match (time.boot_secs, kernel::split_boot_stamp(inner)) {
            (None, Some((secs, rest))) => (
                SysTime {
                    wall: time.wall,
                    boot_secs: Some(secs),
                },
                rest,
            ),
            _ => (time, inner),
        });
    }
    let (time, msg) = kernel::split_dmesg_line(inner, clock)?;
    Some((
        SysTime {
            wall: time.wall.or(r.time),
            boot_secs: time.boot_secs,
        },
        msg,
    ))
}

/// An FPM log's first dated line, and a child exit of a pid the kernel log saw die.
fn prescan_fpm(
    input: &Input,
    zone: &Zone,
    reference: (i16, i8),
    deaths: &[BootTimeDeath],
    out: &mut Prescan,
) -> io::Result<()> {
    let mut buf = Vec::with_capacity(4096);
    let mut reader = LineReader::open(&input.path)?;
    let mut router = Router::new(zone, reference, Some(input.kind));
    while reader.next_line(&mut buf)? {
        let line = text(&buf);
        let clean = strip_ansi(&line);
        let r = router.route(&clean);
        let (Some(parsed), Some(at)) = (r.fpm, r.time) else {
            continue;
        };
        out.fpm_first.get_or_insert(at);
        if deaths.is_empty() {
            break;
        }
        if let FpmEvent::ChildExited { pid, .. } = parsed.event {
            if let Some(d) = deaths.iter().find(|d| d.pid == pid) {
                out.pid_match = Some(PidMatch {
                    pid,
                    boot: at.minus_ms((d.boot_secs * 1000.0) as i64),
                });
                break;
            }
        }
    }
    Ok(())
}

/// Reads the NGINX and FPM configs (following their includes) into the context.
/// Returns a row per file read, with the index of the input it belongs to, and what
/// was named but not read (include patterns that match nothing, loops). Never fails:
/// an unreadable file is a row with its error.
pub fn load_configs(
    inputs: &[(usize, Input)],
    ctx: &mut ContextIndex,
) -> (Vec<(usize, InputStats)>, Vec<Skipped>) {
    let loaded = conf_tree::load(inputs);
    ctx.nginx.extend(loaded.nginx);
    ctx.pools.extend(loaded.pools);
    ctx.finish_configs();
    (loaded.stats, loaded.skipped)
}
