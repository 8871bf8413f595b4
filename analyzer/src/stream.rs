//! The failure-side inputs (NGINX error logs, gatelog records, access logs) read as
//! one stream in time order: each file is read line by line, and a k-way merge on
//! the time of each file's next item interleaves them. Memory is one pending item
//! per file.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, LazyLock};
use std::thread::JoinHandle;

use crate::failure::{Attempt, Failure, SeenIn};
use crate::input::reader::{text, LineReader};
use crate::input::stats::InputStats;
use crate::input::Input;
use crate::model::{AttemptEvent, Evidence, EvidenceSource, InputKind, Peer, Protocol};
use crate::parse::access::{self, AccessEntry, AccessLine};
use crate::parse::nginx::{self, UpstreamMessage};
use crate::parse::records;
use crate::time::{EpochMs, LocalClock, Zone};

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

/// One failure-side input being read.
pub struct Source {
    pub input: Input,
    pub stats: InputStats,
    reader: LineReader,
    clock: LocalClock,
    /// The error-log entry being assembled (continuation lines appended).
    entry: Vec<u8>,
    entry_line: u64,
    /// The reader's reused line buffer (swaps roles with `entry`).
    line: Vec<u8>,
    done: bool,
    pub error: Option<io::Error>,
}

impl Source {
    pub fn open(input: Input, zone: &Zone) -> io::Result<Source> {
        let reader = LineReader::open(&input.path)?;
        let stats = InputStats::new(&input);
        Ok(Source {
            input,
            stats,
            reader,
            clock: LocalClock::new(zone),
            entry: Vec::with_capacity(4096),
            entry_line: 0,
            line: Vec::with_capacity(4096),
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
        let r = match self.input.kind {
            InputKind::NginxError => self.next_nginx(),
            InputKind::Records => self.next_simple(Self::record_item),
            InputKind::NginxAccess => self.next_simple(Self::access_item),
            _ => Ok(None),
        };
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

    fn next_simple(
        &mut self,
        f: fn(&mut Self, &str, u64) -> Option<(EpochMs, Item)>,
    ) -> io::Result<Option<(EpochMs, Item)>> {
        loop {
            if !self.reader.next_line(&mut self.line)? {
                return Ok(None);
            }
            self.stats.lines_read += 1;
            let line_no = self.reader.line_no();
            let line = text(&self.line).into_owned();
            if line.trim().is_empty() {
                self.stats.parsed();
                continue;
            }
            if let Some(item) = f(self, &line, line_no) {
                self.stats.lines_used += 1;
                self.stats.saw_time(item.0);
                return Ok(Some(item));
            }
        }
    }

    fn record_item(&mut self, line: &str, line_no: u64) -> Option<(EpochMs, Item)> {
        let Some(rec) = records::parse_line(line) else {
            self.stats.not_understood(line_no, line);
            return None;
        };
        let Some(time) = records::instant(&rec) else {
            self.stats.not_understood(line_no, line);
            return None;
        };
        self.stats.parsed();
        if !rec.is_failure() {
            return None;
        }
        // A record is machine data: its head (time, conn, status, request) is enough
        // as evidence; the verdict's facts come from the parsed fields.
        let evidence =
            Evidence::clipped(EvidenceSource::Record, &self.input.name, line_no, line, 300);
        Some((
            time,
            Item::Failure(Box::new(failure_from_record(rec, time, evidence))),
        ))
    }

    fn access_item(&mut self, line: &str, line_no: u64) -> Option<(EpochMs, Item)> {
        match access::parse_line(line) {
            Some(AccessLine::Failure(entry)) => {
                self.stats.parsed();
                // Without a time the entry cannot be placed in the stream.
                let time = entry.time?;
                let evidence =
                    Evidence::new(EvidenceSource::Access, &self.input.name, line_no, line);
                Some((time, Item::Access { entry, evidence }))
            }
            Some(AccessLine::Other) => {
                self.stats.parsed();
                None
            }
            None => {
                self.stats.not_understood(line_no, line);
                None
            }
        }
    }

    fn next_nginx(&mut self) -> io::Result<Option<(EpochMs, Item)>> {
        loop {
            if !self.reader.next_line(&mut self.line)? {
                // End of input: the last entry is complete.
                if self.entry.is_empty() {
                    return Ok(None);
                }
                let entry = std::mem::take(&mut self.entry);
                if let Some(item) = self.nginx_entry(&entry, self.entry_line) {
                    return Ok(Some(item));
                }
                continue;
            }
            self.stats.lines_read += 1;
            if nginx::is_entry_start(&self.line) {
                // A new entry completes the previous one. The buffers swap roles
                // instead of copying: the line read becomes the entry being built.
                std::mem::swap(&mut self.entry, &mut self.line);
                let ready_line = std::mem::replace(&mut self.entry_line, self.reader.line_no());
                if !self.line.is_empty() {
                    let ready = std::mem::take(&mut self.line);
                    let item = self.nginx_entry(&ready, ready_line);
                    self.line = ready;
                    if let Some(item) = item {
                        return Ok(Some(item));
                    }
                }
            } else if !self.entry.is_empty() {
                // A continuation line (raw newline inside FastCGI stderr text).
                self.stats.parsed();
                if self.entry.len() < MAX_ENTRY {
                    self.entry.push(b'\n');
                    let room = MAX_ENTRY - self.entry.len();
                    let take = self.line.len().min(room);
                    self.entry.extend_from_slice(&self.line[..take]);
                }
            } else {
                let no = self.reader.line_no();
                let t = text(&self.line).into_owned();
                if t.trim().is_empty() {
                    self.stats.parsed();
                } else {
                    self.stats.not_understood(no, &t);
                }
            }
        }
    }

    /// Turns a complete error-log entry into an item, counting it.
    fn nginx_entry(&mut self, raw: &[u8], line_no: u64) -> Option<(EpochMs, Item)> {
        let entry_text = text(raw);
        let Some(head) = nginx::parse_head(&entry_text) else {
            let first = entry_text.lines().next().unwrap_or("");
            self.stats.not_understood(line_no, first);
            return None;
        };
        self.stats.parsed();
        let time = self.clock.to_epoch(head.civil)?;
        self.stats.saw_time(time);
        // Cheap prefilter before the full parse: only a message that starts like one
        // of NGINX's upstream templates can be one (resolver lines and lines pasted
        // without their context do not mention "upstream").
        if !gatelog_record::message::may_concern_upstream(head.body.as_bytes()) {
            return None;
        }
        let e = nginx::split_body(head);
        let kind = nginx::classify_message(&e)?;
        let request = e.context.request.map(str::to_string);
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
                self.stats.lines_used += 1;
                let evidence = Evidence::new(
                    EvidenceSource::Nginx,
                    &self.input.name,
                    line_no,
                    &entry_text,
                );
                Some((
                    time,
                    Item::Stderr {
                        pid: e.pid,
                        conn: e.conn,
                        request,
                        text: text.to_string(),
                        evidence,
                    },
                ))
            }
            UpstreamMessage::Failure(f) => {
                let phase = f.phase;
                // Failures after the header was sent are not 502/504s.
                let status = nginx::inferred_status(f.event, phase)?;
                self.stats.lines_used += 1;
                let evidence = Evidence::new(
                    EvidenceSource::Nginx,
                    &self.input.name,
                    line_no,
                    &entry_text,
                );
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
                    pid: Some(e.pid),
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
                    attempts: vec![Attempt {
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
    let mut attempts: Vec<Attempt> = rec
        .attempts
        .iter()
        .filter_map(|a| {
            // An attempt without an event this version knows says nothing it can use.
            Some(Attempt {
                event: a.event?,
                phase: a.phase,
                errno: a.errno,
                peer: a.peer.as_deref().map(Peer::from_nginx),
                message: a.message.clone().unwrap_or_default(),
            })
        })
        .collect();
    if attempts.is_empty() && rec.origin == records::Origin::Upstream {
        attempts.push(Attempt {
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
const BATCH: usize = 512;
/// Batches in flight per reader: bounds the memory between the threads.
const BATCHES_IN_FLIGHT: usize = 8;

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
