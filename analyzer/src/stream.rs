//! The failure-side inputs (NGINX error logs, gatelog records, access logs) read as
//! one stream in time order: each file is read line by line, and a k-way merge on
//! the time of each file's next item interleaves them. Memory is one pending item
//! per file.
//!
//! Each line is unwrapped and routed by its content ([`crate::input::route`]): a
//! container stream's NGINX lines are taken here, its PHP-FPM and kernel lines are
//! left to the context reader (which reads the same file), and nothing is counted
//! twice.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, LazyLock};
use std::thread::JoinHandle;

use crate::failure::{FailedAttempt, Failure, SeenIn};
use crate::input::framing::strip_ansi;
use crate::input::reader::{text, LineReader};
use crate::input::route::{LineKind, Routed, Router, Side};
use crate::input::stats::{take, InputStats, Take};
use crate::input::Input;
use crate::model::{AttemptEvent, Evidence, EvidenceSource, Peer, Protocol};
use crate::parse::access::{self, AccessEntry, AccessLine};
use crate::parse::nginx::{self, UpstreamMessage};
use crate::parse::records;
use crate::time::{EpochMs, Zone};

/// `FastCGI sent in stderr` texts that can explain a failure.
static NOTABLE_STDERR: LazyLock<[memchr::memmem::Finder<'static>; 5]> = LazyLock::new(|| {
    [
        "Fatal error",
        "fatal error",
        "Allowed memory",
        "Maximum execution time",
        "Segmentation",
    ]
    .map(memchr::memmem::Finder::new)
});

/// Longest multi-line error-log entry kept (NGINX caps one at 2048 bytes).
const MAX_ENTRY: usize = 8192;
/// Lines of other sources (another compose service) an entry waits for its own
/// continuation lines before it is taken as complete.
const ENTRY_PATIENCE: u32 = 64;
/// Where a line without any date goes when no dated line came before it in its
/// file: the start of the stream.
const NO_TIME_YET: EpochMs = EpochMs(0);

/// What one failure-side line contributes.
#[derive(Debug, Clone)]
pub enum Item {
    /// A failed request, from an error-log line (one attempt) or a record.
    Failure(Box<Failure>),
    /// `FastCGI sent in stderr` for the request on (pid, conn).
    Stderr {
        pid: u32,
        conn: Option<u64>,
        request: Option<String>,
        text: String,
        evidence: Evidence,
    },
    /// A 502/504 in the access log.
    Access {
        entry: AccessEntry,
        evidence: Evidence,
    },
}

/// The error-log entry being assembled.
struct Pending {
    /// The entry's text without framing (continuation lines appended).
    text: String,
    /// The framing before its first line (a docker stamp, a compose prefix), kept
    /// for the evidence.
    prefix: String,
    line: u64,
    /// The entry's time, when a date or a framing gave one.
    time: Option<EpochMs>,
    /// Where it goes in the stream when it has no time.
    order: EpochMs,
    /// Its compose service / pod: only lines of that source continue it.
    source: String,
    /// Lines of other sources seen since it started.
    waited: u32,
}

impl Default for Pending {
    fn default() -> Pending {
        Pending {
            text: String::new(),
            prefix: String::new(),
            line: 0,
            time: None,
            order: NO_TIME_YET,
            source: String::new(),
            waited: 0,
        }
    }
}

/// One failure-side input being read.
pub struct Source {
    pub input: Input,
    pub stats: InputStats,
    reader: LineReader,
    router: Router,
    /// This reader is the file's primary: it also counts framings and the lines
    /// that belong to neither side.
    primary: bool,
    /// The context-side reader reads this file too.
    context_reads: bool,
    entry: Pending,
    /// The reader's reused line buffer.
    line: Vec<u8>,
    /// The time of the file's latest dated line: where an undated line is placed.
    last_time: Option<EpochMs>,
    /// A second item from one line (an entry completed by a record line).
    queued: Option<(EpochMs, Item)>,
    done: bool,
    pub error: Option<io::Error>,
}

impl Source {
    pub fn open(input: Input, zone: &Zone, reference: (i16, i8)) -> io::Result<Source> {
        let reader = LineReader::open(&input.path)?;
        let stats = InputStats::new(&input);
        Ok(Source {
            router: Router::new(zone, reference, Some(input.kind)),
            primary: input.primary() != Side::Context,
            context_reads: input.reads_context(),
            input,
            stats,
            reader,
            entry: Pending::default(),
            line: Vec::with_capacity(4096),
            last_time: None,
            queued: None,
            done: false,
            error: None,
        })
    }

    pub fn raw_bytes(&self) -> u64 {
        self.reader.raw_bytes()
    }

    /// The next item, or `None` at the end. A read error ends the input (kept in
    /// `error` for the report and the exit status).
    pub fn next_item(&mut self) -> Option<(EpochMs, Item)> {
        if self.done {
            return None;
        }
        let r = self.next_any();
        self.stats.overlong_lines = self.reader.overlong_lines;
        match r {
            Ok(Some(item)) => Some(item),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.stats.error = Some(e.to_string());
                self.error = Some(e);
                self.done = true;
                None
            }
        }
    }

    fn next_any(&mut self) -> io::Result<Option<(EpochMs, Item)>> {
        if let Some(q) = self.queued.take() {
            return Ok(Some(q));
        }
        loop {
            // The buffer is taken out while the line is handled (which needs &mut
            // self) and put back for reuse: no copy per line.
            let mut line = std::mem::take(&mut self.line);
            let more = self.reader.next_line(&mut line);
            let item = match more {
                Ok(true) => self.on_line(&line),
                // End of input: the last entry is complete.
                Ok(false) => {
                    self.line = line;
                    return Ok(self.finish_entry());
                }
                Err(e) => {
                    self.line = line;
                    return Err(e);
                }
            };
            self.line = line;
            if item.is_some() {
                return Ok(item);
            }
        }
    }

    fn on_line(&mut self, raw: &[u8]) -> Option<(EpochMs, Item)> {
        self.stats.lines_read += 1;
        let line_no = self.reader.line_no();
        let text = text(raw);
        let clean = strip_ansi(&text);
        let r = self.router.route(&clean);
        if self.primary {
            self.stats.count_framing(r.framed.layers);
        }
        if let Some(t) = r.time {
            self.last_time = Some(t);
        }
        let source = r.framed.source();
        let ours = !self.entry.text.is_empty()
            && self.entry.source.len() == source.len()
            && (source.is_empty() || self.entry.source == source);
        if r.continuation && r.kind == LineKind::NginxError {
            // A raw newline inside the entry (FastCGI stderr text).
            self.stats.count_kind(LineKind::NginxError);
            self.stats.parsed();
            if ours && self.entry.text.len() < MAX_ENTRY {
                self.entry.text.push('\n');
                let room = MAX_ENTRY - self.entry.text.len();
                let inner: &str = &r.framed.inner;
                let mut cut = inner.len().min(room);
                while !inner.is_char_boundary(cut) {
                    cut -= 1;
                }
                self.entry.text.push_str(&inner[..cut]);
            }
            return None;
        }
        // A line of the entry's source completes it; lines of other sources (a
        // multiplexed compose stream) complete it only after a while.
        let done = if ours || self.entry.waited >= ENTRY_PATIENCE {
            self.finish_entry()
        } else {
            if !self.entry.text.is_empty() {
                self.entry.waited += 1;
            }
            None
        };
        let own = self.take_line(&r, &clean, line_no);
        match (done, own) {
            (Some(a), Some(b)) => {
                self.queued = Some(b);
                Some(a)
            }
            (a, b) => a.or(b),
        }
    }

    /// Handles a line that is not a continuation; returns its item, if any.
    fn take_line(&mut self, r: &Routed<'_>, clean: &str, line_no: u64) -> Option<(EpochMs, Item)> {
        match take(r.kind, Side::Failure, self.primary, self.context_reads) {
            Take::Leave => return None,
            Take::Unread => {
                self.stats.count_kind(r.kind);
                self.stats.parsed();
                self.stats.other_role_unread += 1;
                return None;
            }
            Take::Own => {}
        }
        let inner: &str = &r.framed.inner;
        match r.kind {
            LineKind::NginxError => {
                self.stats.count_kind(LineKind::NginxError);
                // An entry of the same source is complete by now (see on_line); one
                // of another source that is still waiting gives way.
                let earlier = self.finish_entry();
                self.entry.text.clear();
                self.entry.text.push_str(inner);
                self.entry.prefix.clear();
                self.entry.prefix.push_str(r.framed.prefix_of(clean));
                self.entry.line = line_no;
                self.entry.time = r.time;
                self.entry.order = self.last_time.unwrap_or(NO_TIME_YET);
                self.entry.source.clear();
                self.entry.source.push_str(r.framed.source());
                self.entry.waited = 0;
                earlier
            }
            LineKind::Record => {
                self.stats.count_kind(LineKind::Record);
                self.record_item(inner, clean, line_no)
            }
            LineKind::NginxAccess => {
                self.stats.count_kind(LineKind::NginxAccess);
                self.access_item(inner, clean, line_no, r.time)
            }
            LineKind::Blank | LineKind::Other => {
                self.stats.count_kind(r.kind);
                self.stats.parsed();
                None
            }
            LineKind::Unknown | LineKind::Fpm | LineKind::Kernel | LineKind::Journal => {
                self.stats.not_understood(line_no, clean);
                None
            }
        }
    }

    /// The entry being assembled, as an item (and the buffer kept for reuse).
    fn finish_entry(&mut self) -> Option<(EpochMs, Item)> {
        if self.entry.text.is_empty() {
            return None;
        }
        let text = std::mem::take(&mut self.entry.text);
        let item = self.nginx_entry(&text);
        self.entry.text = text;
        self.entry.text.clear();
        item
    }

    fn record_item(&mut self, line: &str, raw: &str, line_no: u64) -> Option<(EpochMs, Item)> {
        let Some(rec) = records::parse_line(line) else {
            self.stats.not_understood(line_no, raw);
            return None;
        };
        let Some(time) = records::instant(&rec) else {
            self.stats.not_understood(line_no, raw);
            return None;
        };
        self.stats.parsed();
        self.stats.saw_time(time);
        if !rec.is_failure() {
            return None;
        }
        self.stats.lines_used += 1;
        // A record is machine data: its head (time, conn, status, request) is enough
        // as evidence; the diagnosis's facts come from the parsed fields.
        let evidence =
            Evidence::clipped(EvidenceSource::Record, &self.input.name, line_no, raw, 300);
        Some((
            time,
            Item::Failure(Box::new(failure_from_record(rec, time, evidence))),
        ))
    }

    fn access_item(
        &mut self,
        line: &str,
        raw: &str,
        line_no: u64,
        framed_time: Option<EpochMs>,
    ) -> Option<(EpochMs, Item)> {
        match access::parse_line(line) {
            Some(AccessLine::Failure(entry)) => {
                self.stats.parsed();
                // Without a time the entry cannot be placed in the stream.
                let time = entry.time.or(framed_time)?;
                self.stats.saw_time(time);
                self.stats.lines_used += 1;
                let evidence =
                    Evidence::new(EvidenceSource::Access, &self.input.name, line_no, raw);
                Some((time, Item::Access { entry, evidence }))
            }
            Some(AccessLine::Other) => {
                self.stats.parsed();
                None
            }
            None => {
                self.stats.not_understood(line_no, raw);
                None
            }
        }
    }

    /// Turns a complete error-log entry into an item, counting it.
    fn nginx_entry(&mut self, entry_text: &str) -> Option<(EpochMs, Item)> {
        let line_no = self.entry.line;
        let head =
            nginx::parse_head(entry_text).or_else(|| nginx::parse_undated_head(entry_text, true));
        let Some(head) = head else {
            let first = entry_text.lines().next().unwrap_or("");
            self.stats.not_understood(line_no, first);
            return None;
        };
        self.stats.parsed();
        let time_known = self.entry.time.is_some();
        let time = self.entry.time.unwrap_or(self.entry.order);
        if time_known {
            self.stats.saw_time(time);
        }
        // Cheap prefilter before the full parse: only a message that starts like one
        // of NGINX's upstream templates can be one (resolver lines and lines pasted
        // without their context do not mention "upstream").
        if !gatelog_record::message::may_concern_upstream(head.body.as_bytes()) {
            return None;
        }
        let e = nginx::split_body(head);
        let kind = nginx::classify_message(&e)?;
        let request = e.context.request.map(str::to_string);
        let evidence = |name: &Arc<str>, prefix: &str| {
            if prefix.is_empty() {
                Evidence::new(EvidenceSource::Nginx, name, line_no, entry_text)
            } else {
                Evidence::new(
                    EvidenceSource::Nginx,
                    name,
                    line_no,
                    &format!("{prefix}{entry_text}"),
                )
            }
        };
        match kind {
            UpstreamMessage::FastcgiStderr { text } => {
                // Only what can explain a 502 is worth joining: PHP fatal errors. A
                // busy log has many warnings per failure.
                if !NOTABLE_STDERR
                    .iter()
                    .any(|f| f.find(text.as_bytes()).is_some())
                {
                    return None;
                }
                // Joined on NGINX's worker pid: a pasted line without it joins nothing.
                let pid = e.pid?;
                self.stats.lines_used += 1;
                if !time_known {
                    self.stats.time_unknown += 1;
                }
                Some((
                    time,
                    Item::Stderr {
                        pid,
                        conn: e.conn,
                        request,
                        text: text.to_string(),
                        evidence: evidence(&self.input.name, &self.entry.prefix),
                    },
                ))
            }
            UpstreamMessage::Failure(f) => {
                let phase = f.phase;
                // Failures after the header was sent are not 502/504s.
                let status = nginx::inferred_status(f.event, phase)?;
                self.stats.lines_used += 1;
                if !time_known {
                    self.stats.time_unknown += 1;
                }
                let evidence = evidence(&self.input.name, &self.entry.prefix);
                let upstream_peer = e.context.upstream.map(Peer::from_nginx);
                let peer = f
                    .peer
                    .map(Peer::from_nginx)
                    .or_else(|| upstream_peer.clone());
                let upstream = upstream_peer.map(|p| p.0.to_string());
                let protocol = e
                    .context
                    .upstream
                    .map_or(Protocol::Unknown, Protocol::from_upstream_value);
                let failure = Failure {
                    time,
                    time_known,
                    pid: e.pid,
                    conn: e.conn,
                    request_id: None,
                    status,
                    status_inferred: true,
                    peer: peer.clone(),
                    upstream,
                    protocol,
                    request,
                    client: e.context.client.map(str::to_string),
                    server: e.context.server.map(str::to_string),
                    host: e.context.host.map(str::to_string),
                    attempts: vec![FailedAttempt {
                        event: f.event,
                        phase,
                        errno: f.errno,
                        peer,
                        message: f.message.to_string(),
                    }],
                    stderr: None,
                    request_time_ms: None,
                    read_timeout_ms: None,
                    seen_in: SeenIn {
                        error_log: true,
                        ..SeenIn::default()
                    },
                    evidence: vec![evidence],
                };
                Some((time, Item::Failure(Box::new(failure))))
            }
        }
    }
}

/// Builds a failure from a gatelog.v1 record.
pub fn failure_from_record(rec: records::Record, time: EpochMs, evidence: Evidence) -> Failure {
    let request = rec.request_line();
    let mut attempts: Vec<FailedAttempt> = rec
        .attempts
        .iter()
        .filter_map(|a| {
            // An attempt without an event this version knows says nothing it can use.
            Some(FailedAttempt {
                event: a.event?,
                phase: a.phase,
                errno: a.errno,
                peer: a.peer.as_deref().map(Peer::from_nginx),
                message: a.message.clone().unwrap_or_default(),
            })
        })
        .collect();
    if attempts.is_empty() && rec.origin == records::Origin::Upstream {
        attempts.push(FailedAttempt {
            event: AttemptEvent::UpstreamStatus,
            phase: None,
            errno: None,
            peer: rec.upstream.as_deref().map(Peer::from_nginx),
            message: format!("the upstream itself answered {}", rec.status),
        });
    }
    let peer = attempts
        .iter()
        .rev()
        .find_map(|a| a.peer.clone())
        .or_else(|| rec.upstream.as_deref().map(Peer::from_nginx));
    let text = |s: String| Some(s).filter(|s| !s.is_empty());
    Failure {
        time,
        time_known: true,
        pid: rec.pid.and_then(|p| u32::try_from(p).ok()),
        conn: rec.conn,
        request_id: rec.request_id.filter(|s| !s.is_empty()),
        status: rec.status,
        status_inferred: false,
        peer,
        upstream: rec.upstream,
        // Records of this module version do not say yet; the error line joined to the
        // record does.
        protocol: rec.upstream_protocol.unwrap_or(Protocol::Unknown),
        request,
        client: text(rec.client),
        server: text(rec.server),
        host: rec.host,
        attempts,
        stderr: rec.fastcgi_stderr.map(|s| s.text),
        request_time_ms: rec.request_time_ms,
        read_timeout_ms: rec.timeouts_ms.map(|t| t.read),
        seen_in: SeenIn {
            record: true,
            ..SeenIn::default()
        },
        evidence: vec![evidence],
    }
}

/// Items handed from a reader thread to the merge in batches, so that the channel
/// costs little per line.
const BATCH: usize = 256;
/// Batches in flight per reader: bounds the memory between the threads.
const BATCHES_IN_FLIGHT: usize = 4;

/// A source read and parsed on its own thread: reading, decompressing and parsing
/// run beside joining and classifying (two cores in CI and on the benchmark host).
pub struct ThreadedSource {
    rx: Receiver<Vec<(EpochMs, Item)>>,
    current: std::vec::IntoIter<(EpochMs, Item)>,
    handle: Option<JoinHandle<Source>>,
    raw_bytes: Arc<AtomicU64>,
}

impl ThreadedSource {
    pub fn spawn(mut source: Source) -> io::Result<ThreadedSource> {
        let (tx, rx) = sync_channel::<Vec<(EpochMs, Item)>>(BATCHES_IN_FLIGHT);
        let raw_bytes = source.reader.raw_counter();
        let reader = move || {
            let mut batch = Vec::with_capacity(BATCH);
            while let Some(item) = source.next_item() {
                batch.push(item);
                if batch.len() >= BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    if tx.send(full).is_err() {
                        return source;
                    }
                }
            }
            if !batch.is_empty() {
                let _ = tx.send(batch);
            }
            source
        };
        // A named thread shows in profiles.
        let handle = Some(
            std::thread::Builder::new()
                .name("gatelog-read".to_string())
                .spawn(reader)?,
        );
        Ok(ThreadedSource {
            rx,
            current: Vec::new().into_iter(),
            handle,
            raw_bytes,
        })
    }

    fn next_item(&mut self) -> Option<(EpochMs, Item)> {
        loop {
            if let Some(item) = self.current.next() {
                return Some(item);
            }
            self.current = self.rx.recv().ok()?.into_iter();
        }
    }

    /// Waits for the reader and returns it (with its counts and any read error).
    pub fn finish(mut self) -> Option<Source> {
        drop(self.rx);
        self.handle.take()?.join().ok()
    }
}

/// Merges the sources by time.
pub struct Merger {
    pub sources: Vec<ThreadedSource>,
    heads: Vec<Option<Item>>,
    heap: BinaryHeap<Reverse<(EpochMs, usize)>>,
}

impl Merger {
    pub fn new(sources: Vec<Source>) -> io::Result<Merger> {
        let mut sources: Vec<ThreadedSource> = sources
            .into_iter()
            .map(ThreadedSource::spawn)
            .collect::<io::Result<_>>()?;
        let mut heads = Vec::with_capacity(sources.len());
        let mut heap = BinaryHeap::new();
        for (i, s) in sources.iter_mut().enumerate() {
            match s.next_item() {
                Some((t, item)) => {
                    heap.push(Reverse((t, i)));
                    heads.push(Some(item));
                }
                None => heads.push(None),
            }
        }
        Ok(Merger {
            sources,
            heads,
            heap,
        })
    }

    /// Time of the earliest pending item (the start of the failure-side inputs).
    pub fn first_time(&self) -> Option<EpochMs> {
        self.heap.peek().map(|Reverse((t, _))| *t)
    }

    /// Raw bytes read over all sources (for progress).
    pub fn raw_bytes(&self) -> u64 {
        self.sources
            .iter()
            .map(|s| s.raw_bytes.load(Ordering::Relaxed))
            .sum()
    }

    /// Waits for every reader; returns them in the order given.
    pub fn finish(self) -> Vec<Option<Source>> {
        self.sources
            .into_iter()
            .map(ThreadedSource::finish)
            .collect()
    }
}

impl Iterator for Merger {
    type Item = (EpochMs, Item);

    fn next(&mut self) -> Option<(EpochMs, Item)> {
        let Reverse((t, i)) = self.heap.pop()?;
        let item = self.heads[i].take()?;
        if let Some((nt, next)) = self.sources[i].next_item() {
            self.heads[i] = Some(next);
            self.heap.push(Reverse((nt, i)));
        }
        Some((t, item))
    }
}
