//! Upstream failure counters that every worker updates in one shared-memory zone
//! (`gatelog_metrics zone=NAME:SIZE`), and their Prometheus text rendering.
//!
//! The zone holds a fixed open-addressing table made once when the zone is created:
//! a request never allocates, never takes a lock; it finds or claims its series' slot
//! with atomics and adds to it. A series looks at most [`PROBE_LIMIT`] slots; when
//! none of them holds it or is free (the table is full, or nearly), the increment goes
//! to `dropped` instead: the request is served and recorded as usual. The series come
//! from the same attempts the record is built from ([`Tally::from_record`]).
//!
//! A scrape reads one [`Snapshot`] and renders it as Prometheus text
//! ([`render_text`]) or as JSON ([`render_json`], docs/gatelog.metrics.v1.schema.json).
//!
//! This file is plain Rust over atomics: `ffi/metrics.rs` places a [`Header`] and its
//! [`Slot`]s in the zone's memory; the tests here place them in a `Vec`.

use core::hint::spin_loop;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::collections::BTreeMap;
use std::fmt::Write as _;

use gatelog_record::errno::{errno_name, errno_name_str};
use gatelog_record::line::{AttemptLine, RecordLine, UpstreamName};
use gatelog_record::record::Origin;
use gatelog_record::text::lossless_text;
use gatelog_record::{Attempt, Event};

/// Bytes of a series key (family byte + rendered labels). A longer key (a very long
/// unix socket path) is not counted: it goes to `dropped`.
pub const KEY_MAX: usize = 480;
const KEY_WORDS: usize = KEY_MAX / 8;

/// Identifies a zone this module laid out (and its layout version).
pub const MAGIC: u64 = 0x6761_7465_6c6f_6701;

const EMPTY: u32 = 0;
const CLAIMING: u32 = 1;
const READY: u32 = 2;
/// How long a worker waits for another one to finish writing a key it is claiming
/// (a few hundred nanoseconds in practice). A worker killed mid-claim leaves the slot
/// CLAIMING forever: the others then go on probing, and the series may get a second
/// slot, which the snapshot sums.
const CLAIM_SPINS: u32 = 10_000;
/// Slots a series may be placed in, from its home slot on. A lookup stops after them, so
/// an increment costs at most this many slot checks even when the table is full and a
/// storm brings a new label set with every request. With the double-hash steps of
/// [`Table::add`] over a prime capacity, the first series dropped for want of a free slot
/// in its window comes when 88–96% of the table is taken (measured with peer labels for
/// 1,097, 2,063 and 19,997 slots); the rest of the table still fills with later series.
pub const PROBE_LIMIT: usize = 64;

/// The counter families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Family {
    FailedAttempts,
    Requests,
}

impl Family {
    const ALL: [Family; 2] = [Family::FailedAttempts, Family::Requests];

    fn byte(self) -> u8 {
        match self {
            Family::FailedAttempts => b'a',
            Family::Requests => b'r',
        }
    }

    fn from_byte(b: u8) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.byte() == b)
    }

    pub fn name(self) -> &'static str {
        match self {
            Family::FailedAttempts => "gatelog_upstream_failed_attempts_total",
            Family::Requests => "gatelog_requests_total",
        }
    }

    fn help(self) -> &'static str {
        match self {
            Family::FailedAttempts => {
                "Failed upstream attempts of recorded requests, also those NGINX retried successfully."
            }
            Family::Requests => "Requests that got a gatelog record.",
        }
    }
}

/// Zone header, at the start of the table's memory.
#[repr(C)]
#[derive(Debug, Default)]
pub struct Header {
    pub magic: AtomicU64,
    pub capacity: AtomicU64,
    /// Increments not counted because their series had no slot (zone full, key too long).
    pub dropped: AtomicU64,
    /// Slots claimed.
    pub used: AtomicU64,
}

/// One series: its key and its count.
#[repr(C)]
#[derive(Debug)]
pub struct Slot {
    state: AtomicU32,
    len: AtomicU32,
    hash: AtomicU64,
    count: AtomicU64,
    key: [AtomicU64; KEY_WORDS],
}

impl Default for Slot {
    fn default() -> Slot {
        Slot {
            state: AtomicU32::new(EMPTY),
            len: AtomicU32::new(0),
            hash: AtomicU64::new(0),
            count: AtomicU64::new(0),
            key: core::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// Bytes of a table with `capacity` slots.
pub fn table_bytes(capacity: usize) -> usize {
    size_of::<Header>() + capacity * size_of::<Slot>()
}

/// Slots to make in `bytes`: the largest prime number of slots that fit, so that every
/// probe step of [`Table::add`] is coprime with it and a series' window holds
/// [`PROBE_LIMIT`] distinct slots (or all of them, in a smaller table).
pub fn capacity_for(bytes: usize) -> usize {
    let mut n = bytes.saturating_sub(size_of::<Header>()) / size_of::<Slot>();
    while n >= 2 && !is_prime(n) {
        n -= 1;
    }
    n
}

fn is_prime(n: usize) -> bool {
    n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
}

/// The key's 8-byte words as a slot stores them (little-endian, the last one padded
/// with zeros).
fn words(key: &[u8]) -> impl Iterator<Item = u64> + '_ {
    // Whole words apart from the tail: a fixed-size copy is one load, a variable one a
    // memcpy call per word.
    let whole = key.chunks_exact(8);
    let tail = whole.remainder();
    whole
        .map(|chunk| {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            u64::from_le_bytes(b)
        })
        .chain((!tail.is_empty()).then(|| {
            let mut b = [0u8; 8];
            b[..tail.len()].copy_from_slice(tail);
            u64::from_le_bytes(b)
        }))
}

/// The hash of a key from its words (8 bytes a step rather than 1: this runs for every
/// series of every recorded request): FxHash's step per word, then MurmurHash3's
/// finalizer, so that both the low bits (the home slot) and the high bits (the probe
/// step) depend on every byte.
fn hash(key: &[u8]) -> u64 {
    let mut h = key.len() as u64;
    for w in words(key) {
        h = (h.rotate_left(5) ^ w).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The table in a zone, shared by every worker.
pub struct Table<'a> {
    header: &'a Header,
    slots: &'a [Slot],
}

impl<'a> Table<'a> {
    pub fn new(header: &'a Header, slots: &'a [Slot]) -> Table<'a> {
        Table { header, slots }
    }

    /// Adds `n` to the series `key`, claiming a slot for a new one. Looks at no more than
    /// [`PROBE_LIMIT`] slots: the series' home and the ones a step apart after it, the step
    /// taken from the hash's other half (double hashing: series with the same home go
    /// different ways, so no long runs of taken slots build up as with a step of one).
    pub fn add(&self, key: &[u8], n: u64) {
        self.add_looking(key, n);
    }

    /// [`Table::add`], returning the series' slot (`None` when the increment was
    /// dropped).
    fn add_to_slot(&self, key: &[u8], n: u64) -> Option<usize> {
        self.add_looking(key, n).1
    }

    /// Adds `n` to the series in slot `at`, one [`Table::add_to_slot`] returned for this
    /// table: a claimed slot holds its series for the table's lifetime.
    fn add_at(&self, at: usize, n: u64) {
        match self.slots.get(at) {
            Some(slot) => slot.count.fetch_add(n, Ordering::Relaxed),
            None => self.header.dropped.fetch_add(n, Ordering::Relaxed),
        };
    }

    /// Identifies this table's memory (see [`SlotCache`]).
    fn identity(&self) -> (usize, usize, usize) {
        (
            core::ptr::from_ref(self.header) as usize,
            self.slots.as_ptr() as usize,
            self.slots.len(),
        )
    }

    /// [`Table::add`], returning how many slots it looked at (for the tests' bound) and
    /// the series' slot.
    fn add_looking(&self, key: &[u8], n: u64) -> (usize, Option<usize>) {
        let cap = self.slots.len();
        if key.len() > KEY_MAX || cap == 0 {
            self.header.dropped.fetch_add(n, Ordering::Relaxed);
            return (0, None);
        }
        let hash = hash(key);
        let start = (hash % cap as u64) as usize;
        let step = if cap > 1 {
            1 + ((hash >> 32) % (cap as u64 - 1)) as usize
        } else {
            1
        };
        let mut at = start;
        let window = cap.min(PROBE_LIMIT);
        for looked in 1..=window {
            let here = at;
            let slot = &self.slots[at];
            // `at` and `step` are below cap: the sum cannot overflow.
            at = (at + step) % cap;
            let mut state = slot.state.load(Ordering::Acquire);
            if state == EMPTY {
                match slot.state.compare_exchange(
                    EMPTY,
                    CLAIMING,
                    Ordering::Acquire,
                    Ordering::Acquire,
                ) {
                    Ok(_) => {
                        slot.hash.store(hash, Ordering::Relaxed);
                        slot.len.store(key.len() as u32, Ordering::Relaxed);
                        // The words after the key's stay zero, as the zone was made.
                        for (dst, w) in slot.key.iter().zip(words(key)) {
                            dst.store(w, Ordering::Relaxed);
                        }
                        slot.count.store(n, Ordering::Relaxed);
                        // Publishes the key and the first count to every reader.
                        slot.state.store(READY, Ordering::Release);
                        self.header.used.fetch_add(1, Ordering::Relaxed);
                        return (looked, Some(here));
                    }
                    Err(now) => state = now,
                }
            }
            let mut spins = 0;
            while state == CLAIMING && spins < CLAIM_SPINS {
                spin_loop();
                spins += 1;
                state = slot.state.load(Ordering::Acquire);
            }
            if state == READY && self.holds(slot, hash, key) {
                slot.count.fetch_add(n, Ordering::Relaxed);
                return (looked, Some(here));
            }
        }
        self.header.dropped.fetch_add(n, Ordering::Relaxed);
        (window, None)
    }

    fn holds(&self, slot: &Slot, hash: u64, key: &[u8]) -> bool {
        slot.hash.load(Ordering::Relaxed) == hash
            && slot.len.load(Ordering::Relaxed) as usize == key.len()
            && slot
                .key
                .iter()
                .zip(words(key))
                .all(|(a, w)| a.load(Ordering::Relaxed) == w)
    }

    /// Every series' count, read once; a series found in two slots is summed.
    pub fn snapshot(&self) -> Snapshot {
        let mut series = BTreeMap::new();
        for slot in self.slots {
            if slot.state.load(Ordering::Acquire) != READY {
                continue;
            }
            let len = (slot.len.load(Ordering::Relaxed) as usize).min(KEY_MAX);
            let mut key = Vec::with_capacity(len);
            for w in &slot.key {
                key.extend_from_slice(&w.load(Ordering::Relaxed).to_le_bytes());
            }
            key.truncate(len);
            *series.entry(key).or_insert(0) += slot.count.load(Ordering::Relaxed);
        }
        Snapshot {
            series,
            dropped: self.header.dropped.load(Ordering::Relaxed),
            used: self.header.used.load(Ordering::Relaxed),
            capacity: self.slots.len() as u64,
        }
    }
}

/// One scrape's view of a table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub series: BTreeMap<Vec<u8>, u64>,
    pub dropped: u64,
    pub used: u64,
    pub capacity: u64,
}

/// A label value escaped for the Prometheus text format (`\\`, `\"`, `\n`). Runs for
/// every label of every recorded request: the runs between escapes (in practice the
/// whole value) are copied whole.
pub fn escape_label(value: &str, out: &mut String) {
    if !needs_escape(value.as_bytes()) {
        out.push_str(value);
        return;
    }
    let mut rest = value;
    // The three are ASCII, never inside a multi-byte character: `i` is a char boundary.
    while let Some(i) = rest.bytes().position(|b| matches!(b, b'\\' | b'"' | b'\n')) {
        out.push_str(&rest[..i]);
        out.push_str(match rest.as_bytes()[i] {
            b'\\' => "\\\\",
            b'"' => "\\\"",
            _ => "\\n",
        });
        rest = &rest[i + 1..];
    }
    out.push_str(rest);
}

/// Whether `s` holds a byte the text format escapes (`\\`, `"`, newline), looked for 8
/// bytes a step: a word XOR the byte repeated has a zero byte exactly where they match,
/// and `(x - 0x01…) & !x & 0x80…` is non-zero exactly when `x` has a zero byte.
fn needs_escape(s: &[u8]) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let has = |w: u64, b: u8| {
        let x = w ^ (LO * u64::from(b));
        x.wrapping_sub(LO) & !x & HI != 0
    };
    let mut chunks = s.chunks_exact(8);
    for chunk in &mut chunks {
        let mut b = [0u8; 8];
        b.copy_from_slice(chunk);
        let w = u64::from_le_bytes(b);
        if has(w, b'\\') || has(w, b'"') || has(w, b'\n') {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&b| matches!(b, b'\\' | b'"' | b'\n'))
}

fn key(family: Family, labels: &[(&str, &str)]) -> Vec<u8> {
    let len: usize = labels.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
    let mut s = String::with_capacity(1 + len + 8);
    // The family byte is ASCII: the key stays one string until it becomes bytes.
    s.push(char::from(family.byte()));
    for (i, (name, value)) in labels.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(name);
        s.push_str("=\"");
        escape_label(value, &mut s);
        s.push('"');
    }
    s.into_bytes()
}

/// A series key written into a fixed buffer: a key longer than [`KEY_MAX`] is not
/// counted anyway (it goes to `dropped`), so the request path needs no allocation.
struct KeyBuf {
    buf: [u8; KEY_MAX],
    len: usize,
    over: bool,
    labels: usize,
}

impl KeyBuf {
    fn new(family: Family) -> KeyBuf {
        let mut k = KeyBuf {
            buf: [0; KEY_MAX],
            len: 0,
            over: false,
            labels: 0,
        };
        k.raw(&[family.byte()]);
        k
    }

    fn raw(&mut self, b: &[u8]) {
        match self.buf.get_mut(self.len..self.len + b.len()) {
            Some(dst) if !self.over => {
                dst.copy_from_slice(b);
                self.len += b.len();
            }
            _ => self.over = true,
        }
    }

    /// Valid UTF-8, escaped for the text format as [`escape_label`] does.
    fn escaped(&mut self, text: &str) {
        if !needs_escape(text.as_bytes()) {
            self.raw(text.as_bytes());
            return;
        }
        for &b in text.as_bytes() {
            match b {
                b'\\' => self.raw(b"\\\\"),
                b'"' => self.raw(b"\\\""),
                b'\n' => self.raw(b"\\n"),
                b => self.raw(&[b]),
            }
        }
    }

    /// NGINX bytes as the record writes them ([`lossless_text`]: invalid UTF-8 as
    /// `%XX`), escaped.
    fn text(&mut self, bytes: &[u8]) {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        for chunk in bytes.utf8_chunks() {
            self.escaped(chunk.valid());
            for &b in chunk.invalid() {
                self.raw(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
            }
        }
    }

    fn number(&mut self, n: i64) {
        let mut digits = [0u8; 20];
        let mut at = digits.len();
        let mut m = n.unsigned_abs();
        loop {
            at -= 1;
            digits[at] = b'0' + (m % 10) as u8;
            m /= 10;
            if m == 0 {
                break;
            }
        }
        if n < 0 {
            self.raw(b"-");
        }
        self.raw(&digits[at..]);
    }

    /// Starts label `name`'s value; [`KeyBuf::end`] closes it.
    fn label(&mut self, name: &str) {
        if self.labels > 0 {
            self.raw(b",");
        }
        self.labels += 1;
        self.raw(name.as_bytes());
        self.raw(b"=\"");
    }

    fn end(&mut self) {
        self.raw(b"\"");
    }

    fn upstream(&mut self, u: Option<UpstreamName>) {
        self.label("upstream");
        match u {
            None => {}
            Some(UpstreamName::Name(n)) => self.text(n),
            Some(UpstreamName::Unix(path)) => {
                self.raw(b"unix:");
                self.text(path);
            }
            Some(UpstreamName::HostPort(host, port)) => {
                self.text(host);
                self.raw(b":");
                self.number(i64::from(port));
            }
        }
        self.end();
    }

    /// The key, or `None` when it did not fit.
    fn key(&self) -> Option<&[u8]> {
        (!self.over).then_some(&self.buf[..self.len])
    }
}

/// The key of failed attempt `a` (which has `event`) of `line`.
fn attempt_key(line: &RecordLine, a: &AttemptLine, event: Event) -> KeyBuf {
    let mut k = KeyBuf::new(Family::FailedAttempts);
    k.upstream(line.upstream);
    k.label("peer");
    if let Some(peer) = a.peer {
        k.text(peer);
    }
    k.end();
    k.label("event");
    k.raw(event.slug().as_bytes());
    k.end();
    k.label("errno");
    if let Some(e) = a.errno {
        match errno_name_str(e) {
            Some(name) => k.raw(name.as_bytes()),
            None => k.number(i64::from(e)),
        }
    }
    k.end();
    k.label("phase");
    if let Some(p) = a.phase {
        k.raw(p.slug().as_bytes());
    }
    k.end();
    k.label("status");
    if let Some(st) = a.status {
        k.number(i64::from(st));
    }
    k.end();
    k
}

/// The key of `line`'s request series.
fn request_key(line: &RecordLine) -> KeyBuf {
    let mut k = KeyBuf::new(Family::Requests);
    k.upstream(line.upstream);
    k.label("status");
    k.number(i64::from(line.status));
    k.end();
    k.label("origin");
    k.raw(match line.origin {
        Origin::Nginx => b"nginx",
        Origin::Upstream => b"upstream",
    });
    k.end();
    k.label("recovered");
    k.raw(if line.recovered { b"true" } else { b"false" });
    k.end();
    k
}

/// Each series key one recorded request increments, in [`Tally::keys`]'s order (the
/// same keys as `Tally::from_line(line).keys()`; `None` for one longer than
/// [`KEY_MAX`]), written from the borrowed line into a stack buffer.
fn line_keys(line: &RecordLine, mut each: impl FnMut(Option<&[u8]>)) {
    for a in line.attempts {
        if let Some(event) = a.event {
            each(attempt_key(line, a, event).key());
        }
    }
    each(request_key(line).key());
}

/// Counts one recorded request: one increment per failed attempt and one for the
/// request, with no allocation (keys in a stack buffer; a key too long to fit is a
/// drop, as in [`Table::add`]). The request path uses [`count_line_cached`]; this is
/// what it must stay equal to.
pub fn count_line(table: &Table, line: &RecordLine) {
    line_keys(line, |key| match key {
        Some(key) => table.add(key, 1),
        None => {
            table.header.dropped.fetch_add(1, Ordering::Relaxed);
        }
    });
}

/// Label sets remembered per worker.
const CACHE_ENTRIES: usize = 8;
/// A label set whose fields take more bytes than this is not remembered (a very long
/// peer or upstream name: such a key is dropped anyway beyond [`KEY_MAX`]).
const CACHE_FIELDS_MAX: usize = 2 * KEY_MAX;

/// The slots of the series this worker counted last, by the record fields their keys
/// are made from. In a storm every request repeats a few label sets: a remembered one
/// is counted in its slot at once, its key not written, hashed and looked up again.
///
/// Right because a claimed slot is never freed nor reused: it holds its series for as
/// long as the table exists. The cache belongs to one table (a worker's copy of one
/// cycle's main conf, whose zone stays mapped in the worker); used with another, it
/// forgets everything first, so a reload that reuses the zone or makes a new one
/// cannot send counts to a slot of another table. Series that found no slot (table
/// full, key too long) are not remembered: each of their increments goes the whole
/// way, and is dropped as before.
#[derive(Debug, Default)]
pub struct SlotCache {
    table: (usize, usize, usize),
    /// (fields, slot), replaced in turn.
    entries: Vec<(Vec<u8>, usize)>,
    next: usize,
    /// The fields of the series being counted (reused).
    fields: Vec<u8>,
}

impl SlotCache {
    fn use_table(&mut self, table: &Table) {
        let id = table.identity();
        if self.table != id {
            self.table = id;
            self.entries.clear();
            self.next = 0;
        }
    }

    fn slot(&self) -> Option<usize> {
        self.entries
            .iter()
            .find(|(fields, _)| *fields == self.fields)
            .map(|&(_, slot)| slot)
    }

    fn remember(&mut self, slot: usize) {
        if self.fields.len() > CACHE_FIELDS_MAX {
            return;
        }
        if self.entries.len() < CACHE_ENTRIES {
            self.entries.push((self.fields.clone(), slot));
            return;
        }
        let (fields, at) = &mut self.entries[self.next];
        fields.clear();
        fields.extend_from_slice(&self.fields);
        *at = slot;
        self.next = (self.next + 1) % CACHE_ENTRIES;
    }

    /// Counts the series whose fields are in `self.fields` and whose key `key` makes.
    fn count(&mut self, table: &Table, key: impl FnOnce() -> KeyBuf) {
        if let Some(slot) = self.slot() {
            table.add_at(slot, 1);
            return;
        }
        match key().key() {
            Some(key) => {
                if let Some(slot) = table.add_to_slot(key, 1) {
                    self.remember(slot);
                }
            }
            None => {
                table.header.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The fields a key is made from, each with its length or presence, so that two
/// different sets of fields never write the same bytes here.
struct Fields<'a>(&'a mut Vec<u8>);

impl Fields<'_> {
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(&(b.len() as u64).to_le_bytes());
        self.0.extend_from_slice(b);
    }

    fn opt_bytes(&mut self, b: Option<&[u8]>) {
        match b {
            None => self.0.push(0),
            Some(b) => {
                self.0.push(1);
                self.bytes(b);
            }
        }
    }

    fn upstream(&mut self, u: Option<UpstreamName>) {
        match u {
            None => self.0.push(0),
            Some(UpstreamName::Name(n)) => {
                self.0.push(1);
                self.bytes(n);
            }
            Some(UpstreamName::Unix(path)) => {
                self.0.push(2);
                self.bytes(path);
            }
            Some(UpstreamName::HostPort(host, port)) => {
                self.0.push(3);
                self.bytes(host);
                self.0.extend_from_slice(&port.to_le_bytes());
            }
        }
    }

    fn opt_u32(&mut self, v: Option<u32>) {
        match v {
            None => self.0.push(0),
            Some(v) => {
                self.0.push(1);
                self.0.extend_from_slice(&v.to_le_bytes());
            }
        }
    }
}

/// [`count_line`] through `cache`: the same increments, most of them without making
/// their key.
pub fn count_line_cached(table: &Table, cache: &mut SlotCache, line: &RecordLine) {
    cache.use_table(table);
    for a in line.attempts {
        let Some(event) = a.event else {
            continue;
        };
        cache.fields.clear();
        let mut f = Fields(&mut cache.fields);
        f.0.push(Family::FailedAttempts.byte());
        f.upstream(line.upstream);
        f.opt_bytes(a.peer);
        f.0.push(event as u8);
        f.opt_u32(a.errno.map(|e| e as u32));
        f.opt_u32(a.phase.map(|p| p as u32));
        f.opt_u32(a.status.map(u32::from));
        cache.count(table, || attempt_key(line, a, event));
    }
    cache.fields.clear();
    let mut f = Fields(&mut cache.fields);
    f.0.push(Family::Requests.byte());
    f.upstream(line.upstream);
    f.0.extend_from_slice(&line.status.to_le_bytes());
    f.0.push(line.origin as u8);
    f.0.push(u8::from(line.recovered));
    cache.count(table, || request_key(line));
}

/// One failed attempt's labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedAttempt {
    pub peer: String,
    pub event: String,
    pub errno: String,
    pub phase: String,
    pub status: String,
}

/// What one recorded request adds to the counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    pub upstream: String,
    pub status: u16,
    pub origin: Origin,
    pub recovered: bool,
    pub failed: Vec<FailedAttempt>,
}

impl Tally {
    /// From the record's own fields: a failed attempt is one with an event, as in the
    /// record (the successful attempt of a recovered request has none).
    pub fn from_record(
        upstream: Option<&str>,
        status: u16,
        origin: Origin,
        recovered: bool,
        attempts: &[Attempt],
    ) -> Tally {
        let opt = |v: Option<String>| v.unwrap_or_default();
        Tally {
            upstream: upstream.unwrap_or_default().to_owned(),
            status,
            origin,
            recovered,
            failed: attempts
                .iter()
                .filter_map(|a| {
                    let event = a.event?;
                    Some(FailedAttempt {
                        peer: opt(a.peer.clone()),
                        event: event.slug().to_owned(),
                        // A number the table does not know is still one of a few hundred.
                        errno: opt(a
                            .errno
                            .map(|e| errno_name(e).unwrap_or_else(|| e.to_string()))),
                        phase: opt(a.phase.map(|p| p.slug().to_owned())),
                        status: opt(a.status.map(|s| s.to_string())),
                    })
                })
                .collect(),
        }
    }

    /// From the module's borrowed record line: what [`Tally::from_record`] makes of
    /// `line.to_record()`, without that owned copy of the whole record (the request path
    /// of a configuration with a zone makes only the labels). Text as the record writes
    /// it ([`lossless_text`]); the tests hold both ways equal.
    pub fn from_line(line: &RecordLine) -> Tally {
        let opt = |v: Option<String>| v.unwrap_or_default();
        Tally {
            upstream: match line.upstream {
                None => String::new(),
                Some(UpstreamName::Name(n)) => lossless_text(n),
                Some(UpstreamName::Unix(path)) => format!("unix:{}", lossless_text(path)),
                Some(UpstreamName::HostPort(host, port)) => {
                    format!("{}:{port}", lossless_text(host))
                }
            },
            status: line.status,
            origin: line.origin,
            recovered: line.recovered,
            failed: line
                .attempts
                .iter()
                .filter_map(|a| {
                    let event = a.event?;
                    Some(FailedAttempt {
                        peer: opt(a.peer.map(lossless_text)),
                        event: event.slug().to_owned(),
                        errno: opt(a.errno.map(|e| {
                            errno_name_str(e).map_or_else(|| e.to_string(), str::to_owned)
                        })),
                        phase: opt(a.phase.map(|p| p.slug().to_owned())),
                        status: opt(a.status.map(|s| s.to_string())),
                    })
                })
                .collect(),
        }
    }

    /// The series keys this request increments by one each (a key may repeat: two
    /// identical failed attempts count two).
    pub fn keys(&self) -> Vec<Vec<u8>> {
        let status = self.status.to_string();
        let mut keys = Vec::with_capacity(self.failed.len() + 1);
        for a in &self.failed {
            keys.push(key(
                Family::FailedAttempts,
                &[
                    ("upstream", &self.upstream),
                    ("peer", &a.peer),
                    ("event", &a.event),
                    ("errno", &a.errno),
                    ("phase", &a.phase),
                    ("status", &a.status),
                ],
            ));
        }
        let origin = match self.origin {
            Origin::Nginx => "nginx",
            Origin::Upstream => "upstream",
        };
        keys.push(key(
            Family::Requests,
            &[
                ("upstream", &self.upstream),
                ("status", &status),
                ("origin", origin),
                ("recovered", if self.recovered { "true" } else { "false" }),
            ],
        ));
        keys
    }
}

/// How a scrape wants the counters: `?format=` of `gatelog_metrics_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The Prometheus text exposition format 0.0.4 (no `format` argument, or `text`).
    Text,
    /// `gatelog.metrics.v1` JSON.
    Json,
}

impl Format {
    pub fn content_type(self) -> &'static [u8] {
        match self {
            Format::Text => b"text/plain; version=0.0.4; charset=utf-8",
            Format::Json => b"application/json",
        }
    }
}

/// The scrape's format from its query string (`r->args`, without the `?`): the first
/// `format` argument anywhere in it, as NGINX's `$arg_format` would pick it (name
/// case-insensitive, value as sent). `Err` is the message for a 400 answer.
pub fn format_from_query(args: &[u8]) -> Result<Format, String> {
    let value = args.split(|&b| b == b'&').find_map(|arg| {
        let (name, value) = match arg.iter().position(|&b| b == b'=') {
            Some(i) => (&arg[..i], &arg[i + 1..]),
            None => (arg, &b""[..]),
        };
        name.eq_ignore_ascii_case(b"format").then_some(value)
    });
    match value {
        None | Some(b"text") => Ok(Format::Text),
        Some(b"json") => Ok(Format::Json),
        Some(other) => Err(format!(
            "unknown format \"{}\": accepted values are \"text\" (Prometheus text format 0.0.4, the default) and \"json\" (gatelog.metrics.v1)\n",
            String::from_utf8_lossy(other).escape_debug()
        )),
    }
}

/// One series of a snapshot, as both renderings show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Series<'a> {
    pub family: Family,
    /// The labels as the key holds them: the text format's `{…}` content.
    pub text: &'a str,
    /// The same labels, names and unescaped values, in key order.
    pub labels: Vec<(&'a str, String)>,
    pub value: u64,
}

/// `name="escaped",…` (a key without its family byte) split into names and values.
fn parse_labels(text: &str) -> Option<Vec<(&str, String)>> {
    let mut labels = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next()? {
                (i, '"') => break i,
                (_, '\\') => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    c @ ('\\' | '"') => value.push(c),
                    _ => return None,
                },
                (_, c) => value.push(c),
            }
        };
        labels.push((name, value));
        rest = &after[end + 1..];
        if !rest.is_empty() {
            rest = rest.strip_prefix(',')?;
        }
    }
    Some(labels)
}

/// The snapshot's series, family by family, each in key order. Keys are written by this
/// module from UTF-8 strings; a key that is not, or does not parse back into labels (a
/// foreign or torn slot), is left out of both renderings rather than shown broken.
pub fn series(snap: &Snapshot) -> Vec<Series<'_>> {
    let mut out = Vec::with_capacity(snap.series.len());
    for family in Family::ALL {
        for (k, &value) in &snap.series {
            let Some((&b, labels)) = k.split_first() else {
                continue;
            };
            if Family::from_byte(b) != Some(family) {
                continue;
            }
            let Ok(text) = core::str::from_utf8(labels) else {
                continue;
            };
            let Some(labels) = parse_labels(text) else {
                continue;
            };
            out.push(Series {
                family,
                text,
                labels,
                value,
            });
        }
    }
    out
}

/// Bytes of the zone's table that hold series: the header and one slot per series.
fn used_bytes(snap: &Snapshot) -> u64 {
    table_bytes(0) as u64 + snap.used * size_of::<Slot>() as u64
}

/// The Prometheus text exposition format (version 0.0.4) of `snap`, for a zone of
/// `zone_bytes` bytes.
pub fn render_text(snap: &Snapshot, zone_bytes: u64) -> String {
    let all = series(snap);
    let mut out = String::with_capacity(1024 + all.len() * 200);
    for family in Family::ALL {
        let name = family.name();
        let _ = writeln!(out, "# HELP {name} {}", family.help());
        let _ = writeln!(out, "# TYPE {name} counter");
        for s in all.iter().filter(|s| s.family == family) {
            let _ = writeln!(out, "{name}{{{}}} {}", s.text, s.value);
        }
    }
    for (name, kind, help, v) in [
        (
            "gatelog_metrics_dropped_total",
            "counter",
            "Increments not counted because the zone had no free slot for their series.",
            snap.dropped,
        ),
        (
            "gatelog_metrics_zone_size_bytes",
            "gauge",
            "Size of the gatelog_metrics zone.",
            zone_bytes,
        ),
        (
            "gatelog_metrics_zone_used_bytes",
            "gauge",
            "Bytes of the zone's table holding series.",
            used_bytes(snap),
        ),
        (
            "gatelog_metrics_series_capacity",
            "gauge",
            "Series the zone's table can hold.",
            snap.capacity,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
        );
    }
    out
}

/// `s` as a JSON string literal.
fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The `gatelog.metrics.v1` JSON of `snap` (docs/gatelog.metrics.v1.schema.json): the
/// same series as [`render_text`], one per line, labels as an object; then the drops
/// and the zone's bytes. One line per series keeps a scrape readable with `grep`.
pub fn render_json(snap: &Snapshot, zone_bytes: u64) -> String {
    let all = series(snap);
    let mut out = String::with_capacity(256 + all.len() * 220);
    out.push_str("{\"schema\":\"gatelog.metrics.v1\",\"series\":[");
    for (i, s) in all.iter().enumerate() {
        out.push_str(if i == 0 { "\n" } else { ",\n" });
        out.push_str("{\"name\":");
        json_string(s.family.name(), &mut out);
        out.push_str(",\"labels\":{");
        for (j, (name, value)) in s.labels.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            json_string(name, &mut out);
            out.push(':');
            json_string(value, &mut out);
        }
        let _ = write!(out, "}},\"value\":{}}}", s.value);
    }
    let _ = writeln!(
        out,
        "\n],\"dropped_total\":{},\"zone\":{{\"size_bytes\":{zone_bytes},\"used_bytes\":{},\"series_capacity\":{}}}}}",
        snap.dropped,
        used_bytes(snap),
        snap.capacity
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatelog_record::Phase;

    fn table(cap: usize) -> (Header, Vec<Slot>) {
        let h = Header::default();
        h.magic.store(MAGIC, Ordering::Relaxed);
        h.capacity.store(cap as u64, Ordering::Relaxed);
        (h, (0..cap).map(|_| Slot::default()).collect())
    }

    fn attempt(peer: &str, event: Option<Event>, errno: Option<i32>, status: u16) -> Attempt {
        Attempt {
            peer: Some(peer.into()),
            phase: event.map(|_| Phase::Connect),
            errno,
            errno_name: None,
            error: None,
            event,
            message: None,
            level: None,
            status: Some(status),
            connect_ms: None,
            header_ms: None,
            response_ms: None,
        }
    }

    #[test]
    fn recovered_request_counts_its_failed_attempt_not_the_good_one() {
        let attempts = [
            attempt("127.0.0.1:1", Some(Event::ConnectFailed), Some(111), 502),
            attempt("unix:/run/php/php8.2-fpm.sock", None, None, 200),
        ];
        let t = Tally::from_record(Some("php"), 200, Origin::Upstream, true, &attempts);
        let keys: Vec<String> = t
            .keys()
            .into_iter()
            .map(|k| String::from_utf8(k).unwrap())
            .collect();
        assert_eq!(
            keys,
            [
                "aupstream=\"php\",peer=\"127.0.0.1:1\",event=\"connect_failed\",errno=\"ECONNREFUSED\",phase=\"connect\",status=\"502\"",
                "rupstream=\"php\",status=\"200\",origin=\"upstream\",recovered=\"true\"",
            ]
        );
    }

    #[test]
    fn tally_from_the_line_equals_tally_from_its_record() {
        use gatelog_record::line::AttemptLine;
        let attempts = [
            AttemptLine {
                peer: Some(b"127.0.0.1:9000"),
                phase: Some(Phase::Connect),
                errno: Some(111),
                event: Some(Event::ConnectFailed),
                status: Some(502),
                ..AttemptLine::default()
            },
            AttemptLine {
                peer: Some(b"unix:/run/a\"b\\c\nd\xff.sock"),
                phase: Some(Phase::Header),
                errno: Some(4242),
                event: Some(Event::TimedOut),
                status: None,
                ..AttemptLine::default()
            },
            AttemptLine {
                peer: None,
                event: Some(Event::NoLiveUpstreams),
                ..AttemptLine::default()
            },
            // The good attempt of a recovered request: not a failed one.
            AttemptLine {
                peer: Some(b"unix:/run/php/php8.2-fpm.sock"),
                status: Some(200),
                ..AttemptLine::default()
            },
        ];
        for (upstream, status, origin, recovered) in [
            (
                Some(UpstreamName::Name(b"php\xc3")),
                502,
                Origin::Nginx,
                false,
            ),
            (
                Some(UpstreamName::Unix(b"/run/php/php8.2-fpm.sock")),
                504,
                Origin::Nginx,
                false,
            ),
            (
                Some(UpstreamName::HostPort(b"127.0.0.1", 9000)),
                200,
                Origin::Upstream,
                true,
            ),
            (None, 502, Origin::Upstream, false),
        ] {
            let line = RecordLine {
                time: b"2026-04-02T14:23:17.291+00:00",
                pid: 1,
                conn: 2,
                request_id: None,
                status,
                origin,
                recovered,
                client: b"127.0.0.1",
                server: b"",
                host: None,
                method: b"GET",
                uri: b"/",
                protocol: b"HTTP/1.1",
                request_time_ms: 0,
                upstream,
                attempts: &attempts,
                timeouts_ms: None,
                fastcgi_stderr: None,
            };
            let r = line.to_record();
            let want = Tally::from_record(
                r.upstream.as_deref(),
                r.status,
                r.origin,
                r.recovered,
                &r.attempts,
            );
            let got = Tally::from_line(&line);
            assert_eq!(got, want);
            assert_eq!(got.failed.len(), 3);
            // The allocation-free keys are the same bytes.
            let mut keys = Vec::new();
            line_keys(&line, |k| keys.push(k.map(<[u8]>::to_vec)));
            assert_eq!(keys, got.keys().into_iter().map(Some).collect::<Vec<_>>());
            // And count the same.
            let (h, slots) = table(11);
            let t = Table::new(&h, &slots);
            count_line(&t, &line);
            let (h2, slots2) = table(11);
            let t2 = Table::new(&h2, &slots2);
            for k in got.keys() {
                t2.add(&k, 1);
            }
            assert_eq!(t.snapshot(), t2.snapshot());
        }
    }

    /// Records of a storm and around it: one label set repeated, more distinct ones
    /// than the cache holds, fields that only differ in where one ends and the next
    /// starts, every upstream form, and a peer too long for a slot.
    fn cache_lines(
        long_peer: &[u8],
    ) -> Vec<(Vec<AttemptLine<'_>>, Option<UpstreamName<'_>>, u16, bool)> {
        use gatelog_record::line::AttemptLine;
        let failed = |peer: &'static [u8], errno: Option<i32>, phase: Option<Phase>| AttemptLine {
            peer: Some(peer),
            phase,
            errno,
            event: Some(Event::ConnectFailed),
            status: Some(502),
            ..AttemptLine::default()
        };
        let mut lines = Vec::new();
        for round in 0..3 {
            for _ in 0..5 {
                lines.push((
                    vec![failed(b"unix:/run/php.sock", Some(2), Some(Phase::Connect))],
                    Some(UpstreamName::Unix(b"/run/php.sock")),
                    502,
                    false,
                ));
            }
            for (i, peer) in [
                &b"10.0.0.1:9000"[..],
                b"10.0.0.2:9000",
                b"10.0.0.3:9000",
                b"10.0.0.4:9000",
                b"10.0.0.5:9000",
                b"10.0.0.6:9000",
                b"10.0.0.7:9000",
                b"10.0.0.8:9000",
                b"10.0.0.9:9000",
                b"10.0.0.10:9000",
            ]
            .into_iter()
            .enumerate()
            {
                let errno = [Some(111), None, Some(-3), Some(4242)][i % 4];
                let phase = [Some(Phase::Connect), None][i % 2];
                lines.push((
                    vec![failed(peer, errno, phase), failed(peer, Some(110), None)],
                    Some(UpstreamName::Name(b"backend")),
                    [502, 504][i % 2],
                    false,
                ));
            }
            // The same bytes split differently between upstream and peer.
            lines.push((
                vec![failed(b"c", Some(2), None)],
                Some(UpstreamName::Name(b"a\x01b")),
                502,
                false,
            ));
            lines.push((
                vec![failed(b"b\x01c", Some(2), None)],
                Some(UpstreamName::Name(b"a")),
                502,
                false,
            ));
            lines.push((
                vec![failed(b"bc", Some(2), None)],
                Some(UpstreamName::Name(b"a")),
                502,
                false,
            ));
            lines.push((
                vec![failed(b"c", Some(2), None)],
                Some(UpstreamName::Name(b"ab")),
                502,
                false,
            ));
            for port in [80, 81, 80 + round] {
                lines.push((
                    vec![failed(b"c", Some(2), None)],
                    Some(UpstreamName::HostPort(b"ab", port)),
                    502,
                    false,
                ));
            }
            lines.push((
                vec![AttemptLine {
                    peer: Some(long_peer),
                    event: Some(Event::TimedOut),
                    ..AttemptLine::default()
                }],
                None,
                504,
                false,
            ));
            // Recovered: the good attempt is not counted.
            lines.push((
                vec![
                    failed(b"10.0.0.1:9000", Some(111), Some(Phase::Connect)),
                    AttemptLine {
                        peer: Some(b"10.0.0.2:9000"),
                        status: Some(200),
                        ..AttemptLine::default()
                    },
                ],
                Some(UpstreamName::Name(b"backend")),
                200,
                true,
            ));
        }
        lines
    }

    fn line_of<'a>(
        attempts: &'a [AttemptLine<'a>],
        upstream: Option<UpstreamName<'a>>,
        status: u16,
        recovered: bool,
    ) -> RecordLine<'a> {
        RecordLine {
            time: b"2026-04-02T14:23:17.291+00:00",
            pid: 1,
            conn: 2,
            request_id: None,
            status,
            origin: if recovered {
                Origin::Upstream
            } else {
                Origin::Nginx
            },
            recovered,
            client: b"127.0.0.1",
            server: b"",
            host: None,
            method: b"GET",
            uri: b"/",
            protocol: b"HTTP/1.1",
            request_time_ms: 0,
            upstream,
            attempts,
            timeouts_ms: None,
            fastcgi_stderr: None,
        }
    }

    /// The cache changes how a series finds its slot, never what is counted: in a roomy
    /// table and in one too small for every series (drops included).
    #[test]
    fn cached_counting_counts_what_counting_counts() {
        let long_peer = vec![b'p'; KEY_MAX];
        let lines = cache_lines(&long_peer);
        for cap in [7, 97] {
            let (h, slots) = table(cap);
            let plain = Table::new(&h, &slots);
            let (hc, slotsc) = table(cap);
            let cached = Table::new(&hc, &slotsc);
            let mut cache = SlotCache::default();
            for (attempts, upstream, status, recovered) in &lines {
                let line = line_of(attempts, *upstream, *status, *recovered);
                count_line(&plain, &line);
                count_line_cached(&cached, &mut cache, &line);
                assert_eq!(cached.snapshot(), plain.snapshot(), "{cap} slots");
            }
            assert!(!cache.entries.is_empty());
            if cap == 7 {
                assert!(plain.snapshot().dropped > 3, "the small table is full");
            }
        }
    }

    /// A cache used with another table (a reload with a new zone) forgets its slots:
    /// counts go to the new table's own series, and the old table is left alone.
    #[test]
    fn a_cache_used_with_another_table_forgets_its_slots() {
        let long_peer = vec![b'p'; KEY_MAX];
        let lines = cache_lines(&long_peer);
        let (h1, slots1) = table(97);
        let first = Table::new(&h1, &slots1);
        let mut cache = SlotCache::default();
        // The storm and two more requests: eight label sets, all remembered.
        let few = &lines[..7];
        for (attempts, upstream, status, recovered) in few {
            count_line_cached(
                &first,
                &mut cache,
                &line_of(attempts, *upstream, *status, *recovered),
            );
        }
        assert_eq!(cache.entries.len(), CACHE_ENTRIES);
        let before = first.snapshot();
        // A differently sized table, so the series' slots differ.
        let (h2, slots2) = table(89);
        let second = Table::new(&h2, &slots2);
        let (h3, slots3) = table(89);
        let reference = Table::new(&h3, &slots3);
        for (attempts, upstream, status, recovered) in few {
            let line = line_of(attempts, *upstream, *status, *recovered);
            count_line_cached(&second, &mut cache, &line);
            count_line(&reference, &line);
        }
        assert_eq!(second.snapshot(), reference.snapshot());
        assert_eq!(first.snapshot(), before);
    }

    #[test]
    fn a_line_key_too_long_for_a_slot_is_a_drop() {
        use gatelog_record::line::AttemptLine;
        let long = vec![b'p'; KEY_MAX];
        let attempts = [AttemptLine {
            peer: Some(&long),
            phase: Some(Phase::Connect),
            errno: Some(-3),
            event: Some(Event::ConnectFailed),
            status: Some(502),
            ..AttemptLine::default()
        }];
        let line = RecordLine {
            time: b"2026-04-02T14:23:17.291+00:00",
            pid: 1,
            conn: 2,
            request_id: None,
            status: 502,
            origin: Origin::Nginx,
            recovered: false,
            client: b"127.0.0.1",
            server: b"",
            host: None,
            method: b"GET",
            uri: b"/",
            protocol: b"HTTP/1.1",
            request_time_ms: 0,
            upstream: Some(UpstreamName::HostPort(b"10.0.0.1", 9000)),
            attempts: &attempts,
            timeouts_ms: None,
            fastcgi_stderr: None,
        };
        let mut keys = Vec::new();
        line_keys(&line, |k| keys.push(k.map(<[u8]>::to_vec)));
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0], None);
        assert_eq!(
            keys[1].as_deref(),
            Some(
                &b"rupstream=\"10.0.0.1:9000\",status=\"502\",origin=\"nginx\",recovered=\"false\""
                    [..]
            )
        );
        let (h, slots) = table(11);
        let t = Table::new(&h, &slots);
        count_line(&t, &line);
        let snap = t.snapshot();
        assert_eq!((snap.dropped, snap.used), (1, 1));
        // A negative number (not an errno NGINX gives, but an i32) is written with its sign.
        let mut k = KeyBuf::new(Family::Requests);
        k.number(-3);
        k.number(0);
        k.number(i64::MIN);
        assert_eq!(k.key(), Some(&b"r-30-9223372036854775808"[..]));
    }

    #[test]
    fn unknown_errno_is_its_number_and_missing_fields_are_empty() {
        let mut a = attempt("x", Some(Event::NoLiveUpstreams), Some(4242), 502);
        a.peer = None;
        a.status = None;
        let t = Tally::from_record(None, 502, Origin::Nginx, false, &[a]);
        let k = String::from_utf8(t.keys()[0].clone()).unwrap();
        assert_eq!(
            k,
            "aupstream=\"\",peer=\"\",event=\"no_live_upstreams\",errno=\"4242\",phase=\"connect\",status=\"\""
        );
    }

    #[test]
    fn label_values_are_escaped() {
        let mut s = String::new();
        escape_label("unix:/tmp/a\"b\\c\nd", &mut s);
        assert_eq!(s, "unix:/tmp/a\\\"b\\\\c\\nd");
    }

    #[test]
    fn needs_escape_finds_each_escaped_byte_at_every_position() {
        for len in 0..20 {
            let plain = "é".repeat(len / 2) + &"x".repeat(len % 2);
            assert!(!needs_escape(plain.as_bytes()), "{plain:?}");
            let bytes = plain.as_bytes();
            for at in 0..=bytes.len() {
                for c in [b'\\', b'"', b'\n'] {
                    let mut v = bytes[..at].to_vec();
                    v.push(c);
                    v.extend_from_slice(&bytes[at..]);
                    assert!(needs_escape(&v), "{v:?}");
                }
            }
        }
        // Neighbours of the three bytes (and bytes with the high bit set) are no match.
        assert!(!needs_escape(
            b"[]!#\x0b\x09\xdc\xa2\xff/unix:/run/php.sock"
        ));
    }

    #[test]
    fn counts_add_up_per_series() {
        let (h, slots) = table(8);
        let t = Table::new(&h, &slots);
        t.add(b"rstatus=\"502\"", 1);
        t.add(b"rstatus=\"504\"", 1);
        t.add(b"rstatus=\"502\"", 2);
        let s = t.snapshot();
        assert_eq!(s.series[&b"rstatus=\"502\""[..]], 3);
        assert_eq!(s.series[&b"rstatus=\"504\""[..]], 1);
        assert_eq!((s.used, s.dropped, s.capacity), (2, 0, 8));
    }

    #[test]
    fn full_table_drops_new_series_and_keeps_counting_old_ones() {
        let (h, slots) = table(2);
        let t = Table::new(&h, &slots);
        t.add(b"ra=\"1\"", 1);
        t.add(b"ra=\"2\"", 1);
        t.add(b"ra=\"3\"", 1);
        t.add(b"ra=\"3\"", 1);
        t.add(b"ra=\"1\"", 1);
        let s = t.snapshot();
        assert_eq!(s.series.len(), 2);
        assert_eq!(s.series[&b"ra=\"1\""[..]], 2);
        assert_eq!(s.dropped, 2);
    }

    #[test]
    fn key_longer_than_a_slot_is_dropped() {
        let (h, slots) = table(4);
        let t = Table::new(&h, &slots);
        t.add(&vec![b'r'; KEY_MAX + 1], 1);
        t.add(&vec![b'r'; KEY_MAX], 1);
        let s = t.snapshot();
        assert_eq!((s.dropped, s.used), (1, 1));
        assert_eq!(s.series[&vec![b'r'; KEY_MAX]], 1);
    }

    #[test]
    fn keys_differing_only_after_the_first_word_are_different_series() {
        let (h, slots) = table(4);
        let t = Table::new(&h, &slots);
        t.add(b"rpeer=\"unix:/a.sock\"", 1);
        t.add(b"rpeer=\"unix:/b.sock\"", 1);
        assert_eq!(t.snapshot().series.len(), 2);
    }

    #[test]
    fn threads_count_every_increment_once() {
        let (h, slots) = table(64);
        let t = Table::new(&h, &slots);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for i in 0..1000u32 {
                        t.add(format!("rk=\"{}\"", i % 10).as_bytes(), 1);
                    }
                });
            }
        });
        let snap = t.snapshot();
        assert_eq!(snap.series.len(), 10);
        assert!(snap.series.values().all(|&n| n == 400));
        assert_eq!(snap.used, 10);
    }

    #[test]
    fn renders_prometheus_text() {
        let (h, slots) = table(4);
        let t = Table::new(&h, &slots);
        let attempts = [attempt(
            "unix:/run/php.sock",
            Some(Event::ConnectFailed),
            Some(13),
            502,
        )];
        let tally = Tally::from_record(
            Some("unix:/run/php.sock"),
            502,
            Origin::Nginx,
            false,
            &attempts,
        );
        for k in tally.keys() {
            t.add(&k, 1);
        }
        let text = render_text(&t.snapshot(), 32768);
        let slot = size_of::<Slot>();
        let used = table_bytes(2);
        assert_eq!(
            text,
            format!(
                "# HELP gatelog_upstream_failed_attempts_total Failed upstream attempts of recorded requests, also those NGINX retried successfully.
# TYPE gatelog_upstream_failed_attempts_total counter
gatelog_upstream_failed_attempts_total{{upstream=\"unix:/run/php.sock\",peer=\"unix:/run/php.sock\",event=\"connect_failed\",errno=\"EACCES\",phase=\"connect\",status=\"502\"}} 1
# HELP gatelog_requests_total Requests that got a gatelog record.
# TYPE gatelog_requests_total counter
gatelog_requests_total{{upstream=\"unix:/run/php.sock\",status=\"502\",origin=\"nginx\",recovered=\"false\"}} 1
# HELP gatelog_metrics_dropped_total Increments not counted because the zone had no free slot for their series.
# TYPE gatelog_metrics_dropped_total counter
gatelog_metrics_dropped_total 0
# HELP gatelog_metrics_zone_size_bytes Size of the gatelog_metrics zone.
# TYPE gatelog_metrics_zone_size_bytes gauge
gatelog_metrics_zone_size_bytes 32768
# HELP gatelog_metrics_zone_used_bytes Bytes of the zone's table holding series.
# TYPE gatelog_metrics_zone_used_bytes gauge
gatelog_metrics_zone_used_bytes {used}
# HELP gatelog_metrics_series_capacity Series the zone's table can hold.
# TYPE gatelog_metrics_series_capacity gauge
gatelog_metrics_series_capacity 4
"
            )
        );
        assert_eq!(used, table_bytes(0) + 2 * slot);
    }

    #[test]
    fn format_comes_from_the_first_format_argument() {
        for (args, want) in [
            (&b""[..], Ok(Format::Text)),
            (b"format=json", Ok(Format::Json)),
            (b"a=1&format=json&b=2", Ok(Format::Json)),
            (b"FORMAT=json", Ok(Format::Json)),
            (b"format=text", Ok(Format::Text)),
            (b"format=json&format=xml", Ok(Format::Json)),
            (b"formats=xml&x=format", Ok(Format::Text)),
        ] {
            assert_eq!(
                format_from_query(args).map_err(|_| ()),
                want,
                "{}",
                String::from_utf8_lossy(args)
            );
        }
        for bad in [&b"format=xml"[..], b"format=", b"format", b"format=JSON"] {
            let msg = format_from_query(bad).unwrap_err();
            assert!(
                msg.contains("\"text\"") && msg.contains("\"json\""),
                "{msg}"
            );
        }
        assert!(format_from_query(b"format=xml")
            .unwrap_err()
            .starts_with("unknown format \"xml\""));
    }

    /// A table holding one failed attempt whose peer and upstream carry every character
    /// the text format escapes, and a request series.
    fn escaped_table() -> (Header, Vec<Slot>) {
        let (h, slots) = table(7);
        let t = Table::new(&h, &slots);
        let peer = "unix:/tmp/a\"b\\c\nd.sock";
        let attempts = [attempt(peer, Some(Event::ConnectFailed), Some(2), 502)];
        let tally = Tally::from_record(Some(peer), 502, Origin::Nginx, false, &attempts);
        for k in tally.keys() {
            t.add(&k, 3);
        }
        (h, slots)
    }

    #[test]
    fn labels_parse_back_from_their_escaped_text() {
        assert_eq!(
            parse_labels("peer=\"unix:/tmp/a\\\"b\\\\c\\nd\",event=\"\""),
            Some(vec![
                ("peer", "unix:/tmp/a\"b\\c\nd".to_owned()),
                ("event", String::new())
            ])
        );
        assert_eq!(parse_labels(""), Some(vec![]));
        for broken in ["peer=\"x", "peer=\"x\"event=\"y\"", "peer=\"\\t\"", "peer"] {
            assert_eq!(parse_labels(broken), None, "{broken}");
        }
    }

    #[test]
    fn json_holds_the_text_series_with_unescaped_labels() {
        let (h, slots) = escaped_table();
        let snap = Table::new(&h, &slots).snapshot();
        let json = render_json(&snap, 32768);
        let v: serde_json::Value = serde_json::from_str(&json).unwrap();
        let peer = "unix:/tmp/a\"b\\c\nd.sock";
        assert_eq!(
            v,
            serde_json::json!({
                "schema": "gatelog.metrics.v1",
                "series": [
                    {
                        "name": "gatelog_upstream_failed_attempts_total",
                        "labels": {"upstream": peer, "peer": peer, "event": "connect_failed",
                                   "errno": "ENOENT", "phase": "connect", "status": "502"},
                        "value": 3
                    },
                    {
                        "name": "gatelog_requests_total",
                        "labels": {"upstream": peer, "status": "502", "origin": "nginx",
                                   "recovered": "false"},
                        "value": 3
                    }
                ],
                "dropped_total": 0,
                "zone": {"size_bytes": 32768, "used_bytes": table_bytes(2), "series_capacity": 7}
            })
        );
        // The text shows the same two series, escaped the Prometheus way.
        let text = render_text(&snap, 32768);
        assert!(text.contains(
            "gatelog_requests_total{upstream=\"unix:/tmp/a\\\"b\\\\c\\nd.sock\",status=\"502\",origin=\"nginx\",recovered=\"false\"} 3\n"
        ));
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("gatelog_") && l.contains('{'))
                .count(),
            2
        );
    }

    #[test]
    fn json_escapes_control_characters() {
        let mut s = String::new();
        json_string("a\u{1}\t\"\\\r", &mut s);
        assert_eq!(s, "\"a\\u0001\\t\\\"\\\\\\r\"");
        assert_eq!(
            serde_json::from_str::<String>(&s).unwrap(),
            "a\u{1}\t\"\\\r"
        );
    }

    #[test]
    fn a_slot_that_does_not_parse_is_left_out_of_both_renderings() {
        let (h, slots) = table(7);
        let t = Table::new(&h, &slots);
        t.add(b"rstatus=\"502\"", 1);
        t.add(b"rstatus=\"50", 1);
        t.add(b"r\xffx=\"1\"", 1);
        let snap = t.snapshot();
        assert_eq!(series(&snap).len(), 1);
        let json: serde_json::Value = serde_json::from_str(&render_json(&snap, 1)).unwrap();
        assert_eq!(json["series"].as_array().map(Vec::len), Some(1));
        assert_eq!(
            render_text(&snap, 1)
                .lines()
                .filter(|l| l.starts_with("gatelog_requests_total{"))
                .count(),
            1
        );
    }

    #[test]
    fn empty_table_renders_an_empty_series_list() {
        let (h, slots) = table(7);
        let snap = Table::new(&h, &slots).snapshot();
        let v: serde_json::Value = serde_json::from_str(&render_json(&snap, 1)).unwrap();
        assert_eq!(v["series"], serde_json::json!([]));
    }

    #[test]
    fn capacity_is_the_largest_prime_that_fits() {
        assert_eq!(capacity_for(table_bytes(37)), 37);
        assert_eq!(capacity_for(table_bytes(37) - 1), 31);
        assert_eq!(capacity_for(table_bytes(36)), 31);
        assert_eq!(capacity_for(table_bytes(1)), 1);
        assert_eq!(capacity_for(0), 0);
        // 2,064 slots fit in a 1m zone's free pages; 2,063 are made.
        assert_eq!(capacity_for(table_bytes(2064)), 2063);
    }

    fn storm_key(i: usize) -> Vec<u8> {
        format!(
            "aupstream=\"php\",peer=\"10.0.{}.{}:9000\",event=\"connect_failed\",errno=\"ECONNREFUSED\",phase=\"connect\",status=\"502\"",
            i / 250,
            i % 250
        )
        .into_bytes()
    }

    #[test]
    fn new_series_against_a_full_table_look_at_a_bounded_number_of_slots() {
        // The 1m zone's table.
        let cap = capacity_for(table_bytes(2064));
        assert!(
            cap > 10 * PROBE_LIMIT,
            "the table must be larger than a window"
        );
        let (h, slots) = table(cap);
        let t = Table::new(&h, &slots);
        // Distinct series until every slot is taken (some are dropped on the way: their
        // window was full while other slots were free).
        let mut next = 0;
        let mut first_drop_at = None;
        while h.used.load(Ordering::Relaxed) < cap as u64 {
            let before = h.dropped.load(Ordering::Relaxed);
            t.add(&storm_key(next), 1);
            if first_drop_at.is_none() && h.dropped.load(Ordering::Relaxed) > before {
                first_drop_at = Some(h.used.load(Ordering::Relaxed));
            }
            next += 1;
            assert!(next < 20 * cap, "the table never filled");
        }
        // Double hashing fills most of the table before the first drop.
        let first = first_drop_at.unwrap_or(cap as u64);
        assert!(
            first * 100 >= cap as u64 * 85,
            "first drop at {first} of {cap}"
        );
        let stored = t.snapshot();
        assert_eq!(stored.series.len(), cap);

        // The storm: every attempt a new label set. Each looks at PROBE_LIMIT slots, not
        // the whole table, and is counted as dropped.
        let dropped = h.dropped.load(Ordering::Relaxed);
        for i in 0..1000 {
            assert_eq!(t.add_looking(&storm_key(next + i), 1).0, PROBE_LIMIT);
        }
        assert_eq!(h.dropped.load(Ordering::Relaxed), dropped + 1000);

        // The series already there keep counting, each found within its window.
        for k in stored.series.keys() {
            assert!(t.add_looking(k, 1).0 <= PROBE_LIMIT);
        }
        let after = t.snapshot();
        assert!(stored
            .series
            .iter()
            .all(|(k, n)| after.series.get(k) == Some(&(n + 1))));
        assert_eq!(after.dropped, dropped + 1000);
    }

    #[test]
    fn a_table_smaller_than_the_window_fills_every_slot_before_dropping() {
        let cap = capacity_for(32768);
        assert!(cap < PROBE_LIMIT);
        let (h, slots) = table(cap);
        let t = Table::new(&h, &slots);
        for i in 0..cap {
            t.add(&storm_key(i), 1);
        }
        assert_eq!(
            (
                h.used.load(Ordering::Relaxed),
                h.dropped.load(Ordering::Relaxed)
            ),
            (cap as u64, 0)
        );
        assert_eq!(t.add_looking(&storm_key(cap), 1).0, cap);
        assert_eq!(h.dropped.load(Ordering::Relaxed), 1);
    }
}
