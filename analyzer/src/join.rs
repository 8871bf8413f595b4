//! Turning the merged stream into one failure per request: a record, its error-log
//! lines (one per attempt, plus `FastCGI sent in stderr`) and its access-log entry
//! are joined on NGINX's worker pid and connection number within a short window.
//! State is bounded by that window: a pending failure is handed on once the stream
//! has moved [`JOIN_WINDOW_MS`] past it.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use crate::failure::Failure;
use crate::model::{AttemptEvent, Evidence, EvidenceSource, Peer, Phase, Protocol};
use crate::parse::access::AccessEntry;
use crate::stream::Item;
use crate::time::EpochMs;
use crate::windows::{HISTORY_MS, JOIN_WINDOW_MS};

/// (NGINX worker pid, connection number); synthetic keys use pid u32::MAX.
type Key = (u32, u64);

/// Multiply-rotate hasher for the integer keys of the join maps: they are not
/// attacker-chosen in any way that matters offline, and SipHash showed in profiles.
#[derive(Default)]
struct IntHasher(u64);

impl Hasher for IntHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

type IntMap<K, V> = HashMap<K, V, BuildHasherDefault<IntHasher>>;

/// What the stream showed so far, by peer: used to tell "FPM was there and went
/// away" from "NGINX never reached FPM at this address", and to count concurrent
/// timeouts (a pool whose every worker was busy).
#[derive(Debug, Default)]
pub struct History {
    /// Last time a connection to the peer was accepted (any failure past connect).
    pub alive: HashMap<Peer, EpochMs>,
    /// Times of read timeouts per peer (pruned to HISTORY_MS).
    pub timeouts: HashMap<Peer, VecDeque<EpochMs>>,
}

impl History {
    fn observe(&mut self, t: EpochMs, f: &Failure) {
        // The history serves the PHP-FPM rules: an HTTP backend answering would pass
        // for FPM answering elsewhere.
        if !matches!(f.protocol, Protocol::Fastcgi | Protocol::Unknown) {
            return;
        }
        for a in &f.attempts {
            let Some(peer) = &a.peer else { continue };
            let refused = matches!(
                a.event,
                AttemptEvent::ConnectFailed
                    | AttemptEvent::NoLiveUpstreams
                    | AttemptEvent::ResolveFailed
            );
            let connect_timeout =
                a.event == AttemptEvent::TimedOut && a.phase == Some(Phase::Connect);
            let accepted = !refused && !connect_timeout;
            if accepted {
                // get_mut first: no key clone for the common case.
                match self.alive.get_mut(peer) {
                    Some(e) => *e = (*e).max(t),
                    None => {
                        self.alive.insert(peer.clone(), t);
                    }
                }
            }
            if a.event == AttemptEvent::TimedOut && a.phase != Some(Phase::Connect) {
                if !self.timeouts.contains_key(peer) {
                    self.timeouts.insert(peer.clone(), VecDeque::new());
                }
                let Some(q) = self.timeouts.get_mut(peer) else {
                    continue;
                };
                q.push_back(t);
                while q.front().is_some_and(|&x| x < t.minus_ms(HISTORY_MS)) {
                    q.pop_front();
                }
            }
        }
    }

    /// A failure merged into one seen before: only "the peer accepted" can be new
    /// (a record adds attempts the error line lacked); its timeouts were counted.
    fn observe_merged(&mut self, t: EpochMs, f: &Failure) {
        let timeouts = std::mem::take(&mut self.timeouts);
        self.observe(t, f);
        self.timeouts = timeouts;
    }

    /// Read timeouts on `peer` within [from, to].
    pub fn timeouts_between(&self, peer: &Peer, from: EpochMs, to: EpochMs) -> usize {
        self.timeouts
            .get(peer)
            .map_or(0, |q| q.iter().filter(|&&t| t >= from && t <= to).count())
    }

    /// Whether another peer than `peer` accepted connections within `window_ms` of `t`.
    pub fn other_peer_alive(&self, peer: &Peer, t: EpochMs, window_ms: i64) -> Option<&Peer> {
        self.alive
            .iter()
            .find(|(p, &at)| *p != peer && at.distance(t) <= window_ms)
            .map(|(p, _)| p)
    }
}

/// What is pending on one connection: several failures under HTTP/2 (concurrent
/// streams) or keepalive (one request after another), and FastCGI stderr lines
/// waiting for their failure.
#[derive(Default)]
struct Slot {
    failures: Vec<(u64, Failure)>,
    stderr: Vec<PendingStderr>,
}

/// A `FastCGI sent in stderr` line waiting for the failure of its request.
struct PendingStderr {
    /// The expiry-queue generation of this entry.
    generation: u64,
    /// The request line NGINX logged with it, when it did.
    request: Option<String>,
    text: String,
    evidence: Evidence,
}

impl Slot {
    fn is_empty(&self) -> bool {
        self.failures.is_empty() && self.stderr.is_empty()
    }
}

#[derive(Default)]
pub struct Joiner {
    slots: IntMap<Key, Slot>,
    by_conn: IntMap<u64, Key>,
    /// (client, request) -> keys of the pending failures of that request, for access
    /// logs without $connection (Debian's default `combined`); kept only when an
    /// access log is among the inputs. A client repeating one URL has several.
    by_request: HashMap<(String, String), Vec<Key>>,
    index_requests: bool,
    /// Expiry queue: (last time touched, key, generation of the entry).
    order: VecDeque<(EpochMs, Key, u64)>,
    generation: u64,
    next_synthetic: u64,
    pub history: History,
    /// Error-log/record/access lines merged into a failure seen in another input.
    pub joined_lines: u64,
}

/// How far apart an access-log entry and its error line or record may be when no
/// connection number joins them: both are written as the request ends, in whole
/// seconds in the common formats.
const ACCESS_JOIN_MS: i64 = 2_000;

/// What an access-log entry adds to the failure it joined.
fn absorb_access(f: &mut Failure, entry: &AccessEntry, evidence: Evidence) {
    if f.request_id.is_none() {
        f.request_id = entry.request_id.clone();
    }
    // The access log's status is what the client got.
    f.status = entry.status;
    f.status_inferred = false;
    f.seen_in.access_log = true;
    f.add_evidence(evidence);
}

/// Whether two request lines may be the same request (unknown matches anything).
fn same_request(a: &Option<String>, b: &Option<String>) -> bool {
    a.is_none() || b.is_none() || a == b
}

/// The span of a record's request: [end - request_time, end], with a second of
/// slack for NGINX's whole-second log times.
fn record_window(rec: &Failure) -> (EpochMs, EpochMs) {
    let span = rec.request_time_ms.unwrap_or(0) as i64 + 1_000;
    (rec.time.minus_ms(span), rec.time.plus_ms(1_000))
}

fn within(t: EpochMs, (from, to): (EpochMs, EpochMs)) -> bool {
    t >= from && t <= to
}

impl Joiner {
    /// `index_requests`: also join access-log entries without `$connection` on
    /// (client, request line); costs a map entry per failure, so only when needed.
    pub fn new(index_requests: bool) -> Joiner {
        Joiner {
            index_requests,
            ..Joiner::default()
        }
    }

    fn bump(&mut self) -> u64 {
        self.generation += 1;
        self.generation
    }

    /// Feeds one item at stream time `t`; completed failures go to `out`.
    pub fn push(&mut self, t: EpochMs, item: Item, out: &mut impl FnMut(Failure, &History)) {
        self.expire(t, out);
        match item {
            Item::Failure(f) => self.push_failure(t, *f),
            Item::Stderr {
                pid,
                conn,
                request,
                text,
                evidence,
            } => self.push_stderr(t, (pid, conn.unwrap_or(u64::MAX)), request, text, evidence),
            Item::Access { entry, evidence } => self.push_access(t, entry, evidence),
        }
    }

    fn push_stderr(
        &mut self,
        t: EpochMs,
        key: Key,
        request: Option<String>,
        text: String,
        evidence: Evidence,
    ) {
        let g = self.bump();
        let slot = self.slots.entry(key).or_default();
        // A failure of the same request just logged (stderr usually comes first).
        if let Some((gen, f)) = slot.failures.iter_mut().rev().find(|(_, f)| {
            f.stderr.is_none() && same_request(&f.request, &request) && f.time.distance(t) <= 2_000
        }) {
            f.stderr = Some(text);
            f.add_evidence(evidence);
            *gen = g;
        } else {
            // Bounded: a connection with stderr lines but no failure keeps a few.
            if slot.stderr.len() >= 4 {
                slot.stderr.remove(0);
            }
            slot.stderr.push(PendingStderr {
                generation: g,
                request,
                text,
                evidence,
            });
        }
        self.order.push_back((t, key, g));
    }

    fn push_access(&mut self, t: EpochMs, entry: AccessEntry, evidence: Evidence) {
        if let Some((key, i)) = self.access_partner(t, &entry) {
            let g = self.bump();
            if let Some((gen, f)) = self.slots.get_mut(&key).and_then(|s| s.failures.get_mut(i)) {
                absorb_access(f, &entry, evidence);
                *gen = g;
                self.order.push_back((t, key, g));
                self.joined_lines += 1;
                return;
            }
        }
        // A 502/504 without an error-log line or record.
        let failure = Failure {
            time: t,
            time_known: true,
            pid: None,
            conn: entry.conn,
            request_id: entry.request_id,
            status: entry.status,
            status_inferred: false,
            peer: entry.upstream_addr.as_deref().map(Peer::from_nginx),
            upstream: entry.upstream_addr,
            // `$upstream_addr` carries no scheme.
            protocol: Protocol::Unknown,
            request: entry.request,
            client: entry.client,
            server: None,
            host: None,
            attempts: Vec::new(),
            stderr: None,
            request_time_ms: None,
            read_timeout_ms: None,
            seen_in: crate::failure::SeenIn {
                access_log: true,
                ..Default::default()
            },
            evidence: vec![evidence],
        };
        self.push_failure(t, failure);
    }

    fn push_failure(&mut self, t: EpochMs, mut f: Failure) {
        let key = match (f.pid, f.conn) {
            (Some(p), Some(c)) => (p, c),
            _ => {
                self.next_synthetic += 1;
                (u32::MAX, self.next_synthetic)
            }
        };
        // Its access-log line may have come first (same second, sorted earlier).
        if !f.attempts.is_empty() || f.seen_in.record {
            self.take_access_only(t, &mut f);
        }
        let g = self.bump();
        let slot = self.slots.entry(key).or_default();
        if let Some(i) = partner(&slot.failures, &f, t) {
            let (_, existing) = slot.failures.remove(i);
            let merged = merge(existing, f, t);
            slot.failures.insert(i, (g, merged));
            // The same request seen again (record + error-log line): counted once.
            self.history.observe_merged(t, &slot.failures[i].1);
            self.order.push_back((t, key, g));
            self.joined_lines += 1;
            return;
        }
        // FastCGI stderr waiting for this request.
        if let Some(i) = slot
            .stderr
            .iter()
            .position(|s| same_request(&s.request, &f.request))
        {
            let pending = slot.stderr.remove(i);
            f.stderr.get_or_insert(pending.text);
            f.add_evidence(pending.evidence);
        }
        if let Some(c) = f.conn {
            self.by_conn.insert(c, key);
        }
        if self.index_requests {
            if let (Some(c), Some(r)) = (&f.client, &f.request) {
                let keys = self.by_request.entry((c.clone(), r.clone())).or_default();
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
        }
        self.history.observe(t, &f);
        slot.failures.push((g, f));
        self.order.push_back((t, key, g));
    }

    /// Pending keys that may hold the request of an access-log entry: by connection
    /// number when the log has `$connection`, else by client and request line.
    fn access_candidates(
        &self,
        conn: Option<u64>,
        client: &Option<String>,
        request: &Option<String>,
    ) -> Vec<Key> {
        if let Some(k) = conn.and_then(|c| self.by_conn.get(&c)) {
            return vec![*k];
        }
        match (client, request) {
            (Some(c), Some(r)) => self
                .by_request
                .get(&(c.clone(), r.clone()))
                .cloned()
                .unwrap_or_default(),
            _ => Vec::new(),
        }
    }

    /// The pending failure an access-log 502/504 belongs to: the same request and
    /// client, the same status (unless the error line's was only inferred), logged
    /// within [`ACCESS_JOIN_MS`]; the closest in time.
    fn access_partner(&self, t: EpochMs, entry: &AccessEntry) -> Option<(Key, usize)> {
        let keyed = entry.conn.is_some() && entry.conn.and_then(|c| self.by_conn.get(&c)).is_some();
        let mut best: Option<(i64, Key, usize)> = None;
        for key in self.access_candidates(entry.conn, &entry.client, &entry.request) {
            let Some(slot) = self.slots.get(&key) else {
                continue;
            };
            for (i, (_, f)) in slot.failures.iter().enumerate() {
                // A line without a date joins nothing by time.
                let fits = f.time_known
                    && !f.seen_in.access_log
                    && same_request(&f.request, &entry.request)
                    && (f.status_inferred || f.status == entry.status)
                    // Without a connection number only time ties them together.
                    && (keyed || f.time.distance(t) <= ACCESS_JOIN_MS);
                let d = f.time.distance(t);
                if fits && best.map_or(true, |(bd, _, _)| d < bd) {
                    best = Some((d, key, i));
                }
            }
        }
        best.map(|(_, k, i)| (k, i))
    }

    /// A failure from an error line or a record takes the access-log-only failure
    /// of its request that arrived before it (its access line sorted first in the
    /// same second), so the request counts once.
    fn take_access_only(&mut self, t: EpochMs, f: &mut Failure) {
        let mut best: Option<(i64, Key, usize)> = None;
        for key in self.access_candidates(f.conn, &f.client, &f.request) {
            let Some(slot) = self.slots.get(&key) else {
                continue;
            };
            for (i, (_, p)) in slot.failures.iter().enumerate() {
                let access_only =
                    p.attempts.is_empty() && !p.seen_in.record && !p.seen_in.error_log;
                let fits = access_only
                    && f.time_known
                    && same_request(&p.request, &f.request)
                    && (f.status_inferred || f.status == p.status)
                    && (p.conn.is_some() && p.conn == f.conn
                        || p.time.distance(t) <= ACCESS_JOIN_MS);
                let d = p.time.distance(t);
                if fits && best.map_or(true, |(bd, _, _)| d < bd) {
                    best = Some((d, key, i));
                }
            }
        }
        let Some((_, key, i)) = best else { return };
        let Some(slot) = self.slots.get_mut(&key) else {
            return;
        };
        let (_, access) = slot.failures.remove(i);
        if slot.is_empty() {
            self.slots.remove(&key);
            if let Some(c) = access.conn {
                if self.by_conn.get(&c) == Some(&key) {
                    self.by_conn.remove(&c);
                }
            }
            if let (Some(c), Some(r)) = (&access.client, &access.request) {
                let k = (c.clone(), r.clone());
                if let Some(keys) = self.by_request.get_mut(&k) {
                    keys.retain(|x| *x != key);
                    if keys.is_empty() {
                        self.by_request.remove(&k);
                    }
                }
            }
        }
        // Its expiry entry goes stale (no failure with that generation remains).
        f.status = access.status;
        f.status_inferred = false;
        f.seen_in.access_log = true;
        if f.request_id.is_none() {
            f.request_id = access.request_id;
        }
        for e in access.evidence {
            f.add_evidence(e);
        }
        self.joined_lines += 1;
    }

    /// Hands on the failures the stream has moved past.
    fn expire(&mut self, now: EpochMs, out: &mut impl FnMut(Failure, &History)) {
        while let Some(&(t, key, g)) = self.order.front() {
            if t >= now.minus_ms(JOIN_WINDOW_MS) {
                break;
            }
            self.order.pop_front();
            self.finish_entry(key, g, out);
        }
    }

    /// Completes the failure (or drops the stderr line) with generation `g`; a stale
    /// generation (the entry was touched since) does nothing.
    fn finish_entry(&mut self, key: Key, g: u64, out: &mut impl FnMut(Failure, &History)) {
        let Some(slot) = self.slots.get_mut(&key) else {
            return;
        };
        let mut done = None;
        if let Some(i) = slot.failures.iter().position(|(gen, _)| *gen == g) {
            done = Some(slot.failures.remove(i).1);
        } else if let Some(i) = slot.stderr.iter().position(|s| s.generation == g) {
            slot.stderr.remove(i);
        }
        if slot.is_empty() {
            self.slots.remove(&key);
            if let Some(f) = &done {
                if let Some(c) = f.conn {
                    if self.by_conn.get(&c) == Some(&key) {
                        self.by_conn.remove(&c);
                    }
                }
            }
        }
        if let Some(f) = done {
            if let (true, Some(c), Some(r)) = (self.index_requests, &f.client, &f.request) {
                let k = (c.clone(), r.clone());
                let still_pending = self.slots.contains_key(&key);
                if let Some(keys) = self.by_request.get_mut(&k) {
                    if !still_pending {
                        keys.retain(|x| *x != key);
                    }
                    if keys.is_empty() {
                        self.by_request.remove(&k);
                    }
                }
            }
            out(f, &self.history);
        }
    }

    /// End of the stream: everything pending is complete, in time order.
    pub fn finish(&mut self, out: &mut impl FnMut(Failure, &History)) {
        let mut rest: Vec<Failure> = self
            .slots
            .drain()
            .flat_map(|(_, slot)| slot.failures.into_iter().map(|(_, f)| f))
            .collect();
        // Ties (lines without a date share their file's last time) in file order.
        rest.sort_by(|a, b| {
            let at = |f: &Failure| f.evidence.first().map(|e| (e.file.clone(), e.line));
            a.time.cmp(&b.time).then_with(|| at(a).cmp(&at(b)))
        });
        for f in rest {
            out(f, &self.history);
        }
        self.order.clear();
        self.by_conn.clear();
        self.by_request.clear();
    }
}

/// The pending failure `f` belongs to, if any: a record joins the error-log lines
/// of its attempts; an error-log line joins its record, or is another attempt of
/// the same request (a different peer: fastcgi_next_upstream). The same peer again
/// is the next request on a keepalive connection, or another HTTP/2 stream.
fn partner(pending: &[(u64, Failure)], f: &Failure, t: EpochMs) -> Option<usize> {
    let event = |x: &Failure| x.decisive().map(|a| a.event);
    pending.iter().position(|(_, p)| {
        // A line without a date joins nothing by time (its time only keeps order).
        if !same_request(&p.request, &f.request) || !p.time_known || !f.time_known {
            return false;
        }
        match (p.seen_in.record, f.seen_in.record) {
            (false, true) => {
                // An error line already joined to its access-log entry still takes its
                // record (both are written after the line); the statuses must agree.
                within(p.time, record_window(f))
                    && (!p.seen_in.access_log || p.status == f.status)
                    && (event(p).is_none() || f.attempts.iter().any(|a| Some(a.event) == event(p)))
            }
            (true, false) => {
                // A record takes one error-log line per attempt.
                let lines = p
                    .evidence
                    .iter()
                    .filter(|e| e.source == EvidenceSource::Nginx)
                    .count();
                within(f.time, record_window(p))
                    && lines < p.attempts.len().max(1)
                    && (event(f).is_none() || p.attempts.iter().any(|a| Some(a.event) == event(f)))
            }
            (true, true) => false,
            (false, false) => {
                let tried = f.peer.is_some() && p.peers().any(|x| Some(x) == f.peer.as_ref());
                !tried
                    && !p.attempts.is_empty()
                    && !f.attempts.is_empty()
                    && t.distance(p.time) <= 120_000
            }
        }
    })
}

/// Joins `new` into `existing` (a partner).
fn merge(existing: Failure, new: Failure, t: EpochMs) -> Failure {
    // Whichever side said what NGINX spoke to the upstream (a record may not).
    let protocol = match existing.protocol {
        Protocol::Unknown => new.protocol,
        p => p,
    };
    let mut merged = merge_sides(existing, new, t);
    merged.protocol = protocol;
    merged
}

fn merge_sides(mut existing: Failure, new: Failure, t: EpochMs) -> Failure {
    match (existing.seen_in.record, new.seen_in.record) {
        (false, true) => {
            // The record arrives after its error-log line(s): it is the authority.
            let mut merged = new;
            merged.seen_in.error_log |= existing.seen_in.error_log;
            merged.seen_in.access_log |= existing.seen_in.access_log;
            if merged.stderr.is_none() {
                merged.stderr = existing.stderr;
            }
            if merged.request_id.is_none() {
                merged.request_id = existing.request_id;
            }
            for e in existing.evidence {
                merged.add_evidence(e);
            }
            merged
        }
        (true, false) => {
            existing.seen_in.error_log |= new.seen_in.error_log;
            for e in new.evidence {
                existing.add_evidence(e);
            }
            existing
        }
        _ => {
            existing.attempts.extend(new.attempts);
            existing.time = t.max(existing.time);
            existing.status = new.status;
            existing.peer = new.peer;
            for e in new.evidence {
                existing.add_evidence(e);
            }
            existing
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::{FailedAttempt, SeenIn};
    use std::sync::Arc;

    fn failure(t: i64, conn: u64, record: bool, peer: &str) -> Failure {
        Failure {
            time: EpochMs(t),
            time_known: true,
            pid: Some(10),
            conn: Some(conn),
            request_id: None,
            status: 502,
            status_inferred: !record,
            peer: Some(Peer(peer.into())),
            upstream: None,
            protocol: Protocol::Fastcgi,
            request: Some("GET / HTTP/1.1".into()),
            client: Some("10.0.0.1".into()),
            server: None,
            host: None,
            attempts: vec![FailedAttempt {
                event: AttemptEvent::Reset,
                phase: Some(Phase::Header),
                errno: Some(104),
                peer: Some(Peer(peer.into())),
                message: "recv() failed".into(),
            }],
            stderr: None,
            request_time_ms: Some(100),
            read_timeout_ms: None,
            seen_in: SeenIn {
                record,
                error_log: !record,
                access_log: false,
            },
            evidence: vec![Evidence::new(
                if record {
                    EvidenceSource::Record
                } else {
                    EvidenceSource::Nginx
                },
                &Arc::from("f"),
                t as u64,
                "x",
            )],
        }
    }

    fn run(items: Vec<(i64, Item)>) -> Vec<Failure> {
        let mut j = Joiner::default();
        let mut out = Vec::new();
        for (t, item) in items {
            j.push(EpochMs(t), item, &mut |f, _| out.push(f));
        }
        j.finish(&mut |f, _| out.push(f));
        out
    }

    #[test]
    fn record_and_error_line_are_one_failure() {
        let out = run(vec![
            (
                1_000,
                Item::Failure(Box::new(failure(1_000, 7, false, "unix:/a"))),
            ),
            (
                1_050,
                Item::Failure(Box::new(failure(1_050, 7, true, "unix:/a"))),
            ),
        ]);
        assert_eq!(out.len(), 1);
        assert!(out[0].seen_in.record && out[0].seen_in.error_log);
        assert_eq!(out[0].evidence.len(), 2);
    }

    #[test]
    fn keepalive_requests_and_late_lines_are_separate() {
        let out = run(vec![
            (
                1_000,
                Item::Failure(Box::new(failure(1_000, 7, false, "unix:/a"))),
            ),
            (
                1_500,
                Item::Failure(Box::new(failure(1_500, 7, false, "unix:/a"))),
            ),
            (
                60_000,
                Item::Failure(Box::new(failure(60_000, 7, true, "unix:/a"))),
            ),
        ]);
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn next_upstream_attempts_join() {
        let out = run(vec![
            (
                1_000,
                Item::Failure(Box::new(failure(1_000, 7, false, "unix:/a"))),
            ),
            (
                1_001,
                Item::Failure(Box::new(failure(1_001, 7, false, "unix:/b"))),
            ),
        ]);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].attempts.len(), 2);
    }

    #[test]
    fn concurrent_http2_streams_on_one_connection() {
        // Two streams of one connection fail the same way in the same second; their
        // records then arrive: two failures, each with its line and its record.
        let out = run(vec![
            (
                1_000,
                Item::Failure(Box::new(failure(1_000, 7, false, "unix:/a"))),
            ),
            (
                1_000,
                Item::Failure(Box::new(failure(1_000, 7, false, "unix:/a"))),
            ),
            (
                1_040,
                Item::Failure(Box::new(failure(1_040, 7, true, "unix:/a"))),
            ),
            (
                1_050,
                Item::Failure(Box::new(failure(1_050, 7, true, "unix:/a"))),
            ),
        ]);
        assert_eq!(out.len(), 2);
        for f in &out {
            assert!(f.seen_in.record && f.seen_in.error_log, "{f:?}");
        }
    }

    #[test]
    fn stderr_attaches_to_the_following_failure() {
        let ev = Evidence::new(
            EvidenceSource::Nginx,
            &Arc::from("f"),
            1,
            "FastCGI sent in stderr",
        );
        let out = run(vec![
            (
                900,
                Item::Stderr {
                    pid: 10,
                    conn: Some(7),
                    request: Some("GET / HTTP/1.1".into()),
                    text: "PHP message: PHP Fatal error:  x".into(),
                    evidence: ev,
                },
            ),
            (
                1_000,
                Item::Failure(Box::new(failure(1_000, 7, false, "unix:/a"))),
            ),
        ]);
        assert_eq!(out.len(), 1);
        assert_eq!(
            out[0].stderr.as_deref(),
            Some("PHP message: PHP Fatal error:  x")
        );
    }

    fn access(t: i64, status: u16, conn: Option<u64>) -> Item {
        Item::Access {
            entry: AccessEntry {
                time: Some(EpochMs(t)),
                status,
                client: Some("10.0.0.1".into()),
                request: Some("GET / HTTP/1.1".into()),
                request_id: None,
                conn,
                upstream_addr: None,
            },
            evidence: Evidence::new(
                EvidenceSource::Access,
                &Arc::from("access.log"),
                t as u64,
                "a",
            ),
        }
    }

    fn run_indexed(items: Vec<(i64, Item)>) -> Vec<Failure> {
        let mut j = Joiner::new(true);
        let mut out = Vec::new();
        for (t, item) in items {
            j.push(EpochMs(t), item, &mut |f, _| out.push(f));
        }
        j.finish(&mut |f, _| out.push(f));
        out.sort_by_key(|f| f.time);
        out
    }

    fn line(t: i64, conn: u64) -> Item {
        Item::Failure(Box::new(failure(t, conn, false, "unix:/a")))
    }

    #[test]
    fn combined_access_lines_join_their_error_lines_once() {
        // Debian's combined format: no $connection. One client asks for the same URL
        // three times, a second apart; in each second the access line sorts before
        // or after the error line. Three failures, each seen in both logs.
        let out = run_indexed(vec![
            (1_000, line(1_000, 1)),
            (1_000, access(1_000, 502, None)),
            (2_000, access(2_000, 502, None)),
            (2_000, line(2_000, 2)),
            (3_000, line(3_000, 3)),
            (3_000, access(3_000, 502, None)),
        ]);
        assert_eq!(out.len(), 3, "{out:#?}");
        for f in &out {
            assert!(f.seen_in.error_log && f.seen_in.access_log, "{f:?}");
            assert!(!f.status_inferred);
        }
    }

    #[test]
    fn access_line_with_conn_first_joins_its_record() {
        let out = run_indexed(vec![
            (1_000, access(1_000, 502, Some(7))),
            (
                1_050,
                Item::Failure(Box::new(failure(1_050, 7, true, "unix:/a"))),
            ),
        ]);
        assert_eq!(out.len(), 1, "{out:#?}");
        assert!(out[0].seen_in.record && out[0].seen_in.access_log);
    }

    #[test]
    fn access_lines_that_match_nothing_stay_failures() {
        // A record says 502; an access 504 of the same URL in that second is another
        // request; an access 502 eight seconds later is too far from any line.
        let out = run_indexed(vec![
            (
                1_000,
                Item::Failure(Box::new(failure(1_000, 1, true, "unix:/a"))),
            ),
            (1_000, access(1_000, 504, None)),
            (9_000, access(9_000, 502, None)),
        ]);
        assert_eq!(out.len(), 3, "{out:#?}");
        assert!(out.iter().all(|f| f.seen_in.access_log != f.seen_in.record));
    }

    #[test]
    fn access_status_replaces_an_inferred_one() {
        let out = run_indexed(vec![
            (1_000, line(1_000, 1)),
            (1_400, access(1_400, 504, None)),
        ]);
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0].status, 504);
        assert!(!out[0].status_inferred);
    }
}
