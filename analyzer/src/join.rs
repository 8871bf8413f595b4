//! Turning the merged stream into one failure per request: a record, its error-log
//! lines (one per attempt, plus `FastCGI sent in stderr`) and its access-log entry
//! are joined on NGINX's worker pid and connection number within a short window.
//! State is bounded by that window: a pending failure is handed on once the stream
//! has moved [`JOIN_WINDOW_MS`] past it.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use crate::failure::Failure;
use crate::model::{AttemptEvent, Evidence, Peer, Phase};
use crate::stream::Item;
use crate::time::EpochMs;

/// How long after its last line a failure may still gain lines. A record is written
/// when the request ends, right after the last attempt's line; NGINX workers write
/// slightly out of order; 5 s covers both.
pub const JOIN_WINDOW_MS: i64 = 5_000;

/// How long observations are kept for the classifier (longer than any sane
/// fastcgi_read_timeout window).
const HISTORY_MS: i64 = 15 * 60_000;

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

struct Pending {
    failure: Option<Failure>,
    /// FastCGI stderr seen before (or without) the failure line.
    stderr: Option<(String, Evidence, Option<String>)>,
    last: EpochMs,
    generation: u64,
}

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

#[derive(Default)]
pub struct Joiner {
    pending: IntMap<Key, Pending>,
    by_conn: IntMap<u64, Key>,
    /// (client, request) -> key, for access logs without $connection; kept only
    /// when such a log is among the inputs.
    by_request: HashMap<(String, String), Key>,
    index_requests: bool,
    order: VecDeque<(EpochMs, Key, u64)>,
    generation: u64,
    next_synthetic: u64,
    pub history: History,
    /// Error-log/record lines merged into an existing failure.
    pub joined_lines: u64,
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

    /// Feeds one item at stream time `t`; completed failures go to `out`.
    pub fn push(&mut self, t: EpochMs, item: Item, out: &mut impl FnMut(Failure, &History)) {
        self.expire(t, out);
        match item {
            Item::Failure(f) => self.push_failure(t, *f, out),
            Item::Stderr {
                pid,
                conn,
                request,
                text,
                evidence,
            } => {
                let key = (pid, conn.unwrap_or(u64::MAX));
                match self.pending.get_mut(&key) {
                    Some(p) if p.failure.is_some() => {
                        if let Some(f) = p.failure.as_mut() {
                            if f.stderr.is_none() {
                                f.stderr = Some(text);
                            }
                            f.add_evidence(evidence);
                        }
                        p.last = t;
                    }
                    _ => {
                        let g = self.bump();
                        self.pending.insert(
                            key,
                            Pending {
                                failure: None,
                                stderr: Some((text, evidence, request)),
                                last: t,
                                generation: g,
                            },
                        );
                        self.order.push_back((t, key, g));
                    }
                }
            }
            Item::Access { entry, evidence } => {
                let key = entry
                    .conn
                    .and_then(|c| self.by_conn.get(&c).copied())
                    .or_else(|| {
                        let (c, r) = (entry.client.clone()?, entry.request.clone()?);
                        self.by_request.get(&(c, r)).copied()
                    });
                if let Some(p) = key.and_then(|k| self.pending.get_mut(&k)) {
                    if let Some(f) = p.failure.as_mut() {
                        if f.request_id.is_none() {
                            f.request_id = entry.request_id.clone();
                        }
                        // The access log's status is what the client got.
                        f.status = entry.status;
                        f.status_inferred = false;
                        f.seen_in.access_log = true;
                        f.add_evidence(evidence);
                        self.joined_lines += 1;
                        return;
                    }
                }
                // A 502/504 without an error-log line or record.
                let failure = Failure {
                    time: t,
                    pid: None,
                    conn: entry.conn,
                    request_id: entry.request_id,
                    status: entry.status,
                    status_inferred: false,
                    peer: entry.upstream_addr.as_deref().map(Peer::from_nginx),
                    upstream: entry.upstream_addr,
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
                self.push_failure(t, failure, out);
            }
        }
    }

    fn bump(&mut self) -> u64 {
        self.generation += 1;
        self.generation
    }

    fn push_failure(
        &mut self,
        t: EpochMs,
        mut f: Failure,
        out: &mut impl FnMut(Failure, &History),
    ) {
        self.history.observe(t, &f);
        let key = match (f.pid, f.conn) {
            (Some(p), Some(c)) => (p, c),
            _ => {
                self.next_synthetic += 1;
                (u32::MAX, self.next_synthetic)
            }
        };
        if let Some(mut p) = self.pending.remove(&key) {
            match p.failure.take() {
                Some(existing) => match merge(existing, f, t) {
                    Ok(merged) => {
                        self.joined_lines += 1;
                        f = merged;
                    }
                    Err((done, new)) => {
                        self.emit(done, out);
                        f = new;
                    }
                },
                None => {
                    // A stderr line waiting for its failure: same request?
                    if let Some((text, ev, req)) = p.stderr.take() {
                        if req.is_none() || f.request.is_none() || req == f.request {
                            f.stderr.get_or_insert(text);
                            f.add_evidence(ev);
                        }
                    }
                }
            }
        }
        let g = self.bump();
        if let Some(c) = f.conn {
            self.by_conn.insert(c, key);
        }
        if self.index_requests {
            if let (Some(c), Some(r)) = (&f.client, &f.request) {
                self.by_request.insert((c.clone(), r.clone()), key);
            }
        }
        self.pending.insert(
            key,
            Pending {
                failure: Some(f),
                stderr: None,
                last: t,
                generation: g,
            },
        );
        self.order.push_back((t, key, g));
    }

    fn emit(&mut self, f: Failure, out: &mut impl FnMut(Failure, &History)) {
        out(f, &self.history);
    }

    /// Hands on the failures the stream has moved past.
    fn expire(&mut self, now: EpochMs, out: &mut impl FnMut(Failure, &History)) {
        while let Some(&(t, key, g)) = self.order.front() {
            if t >= now.minus_ms(JOIN_WINDOW_MS) {
                break;
            }
            self.order.pop_front();
            if self.pending.get(&key).is_some_and(|p| p.generation == g) {
                self.finish_key(key, out);
            }
        }
    }

    fn finish_key(&mut self, key: Key, out: &mut impl FnMut(Failure, &History)) {
        if let Some(p) = self.pending.remove(&key) {
            if let Some(f) = p.failure {
                if let Some(c) = f.conn {
                    if self.by_conn.get(&c) == Some(&key) {
                        self.by_conn.remove(&c);
                    }
                }
                if let (true, Some(c), Some(r)) = (self.index_requests, &f.client, &f.request) {
                    let k = (c.clone(), r.clone());
                    if self.by_request.get(&k) == Some(&key) {
                        self.by_request.remove(&k);
                    }
                }
                self.emit(f, out);
            }
            let _ = p.last;
        }
    }

    /// End of the stream: everything pending is complete.
    pub fn finish(&mut self, out: &mut impl FnMut(Failure, &History)) {
        let mut keys: Vec<(EpochMs, Key)> = self
            .pending
            .iter()
            .map(|(k, p)| (p.failure.as_ref().map_or(p.last, |f| f.time), *k))
            .collect();
        keys.sort();
        for (_, k) in keys {
            self.finish_key(k, out);
        }
        self.order.clear();
    }
}

/// Joins `new` into `existing` when both are the same request; otherwise returns
/// both (the first is complete).
#[allow(clippy::result_large_err)] // both failures go back to the caller, by value
fn merge(mut existing: Failure, new: Failure, t: EpochMs) -> Result<Failure, (Failure, Failure)> {
    let same_request =
        existing.request.is_none() || new.request.is_none() || existing.request == new.request;
    if !same_request {
        return Err((existing, new));
    }
    let record_window = |rec: &Failure| {
        // A record's request spans [end - request_time, end]; lines of its attempts
        // fall in it (1 s of slack for NGINX's second-resolution log times).
        let span = rec.request_time_ms.unwrap_or(0) as i64 + 1_000;
        (rec.time.minus_ms(span), rec.time.plus_ms(1_000))
    };
    match (existing.seen_in.record, new.seen_in.record) {
        (false, true) => {
            // The record arrives after its error-log line(s).
            let (from, to) = record_window(&new);
            if existing.time < from || existing.time > to {
                return Err((existing, new));
            }
            let mut merged = new;
            merged.seen_in.error_log = true;
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
            Ok(merged)
        }
        (true, false) => {
            let (from, to) = record_window(&existing);
            if new.time < from || new.time > to {
                return Err((existing, new));
            }
            existing.seen_in.error_log = true;
            for e in new.evidence {
                existing.add_evidence(e);
            }
            Ok(existing)
        }
        (true, true) => Err((existing, new)),
        (false, false) => {
            // Two error-log lines: another attempt of the same request only when it
            // went to a different peer (fastcgi_next_upstream); the same peer again
            // is the next request on a keepalive connection.
            let new_peer = new.peer.as_ref();
            let tried = existing.peers().any(|p| Some(p) == new_peer);
            if tried || existing.attempts.is_empty() || t.distance(existing.time) > 120_000 {
                return Err((existing, new));
            }
            existing.attempts.extend(new.attempts);
            existing.time = new.time;
            existing.status = new.status;
            existing.peer = new.peer;
            for e in new.evidence {
                existing.add_evidence(e);
            }
            Ok(existing)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::failure::{Attempt, SeenIn};
    use std::sync::Arc;

    fn failure(t: i64, conn: u64, record: bool, peer: &str) -> Failure {
        Failure {
            time: EpochMs(t),
            pid: Some(10),
            conn: Some(conn),
            request_id: None,
            status: 502,
            status_inferred: !record,
            peer: Some(Peer(peer.into())),
            upstream: None,
            request: Some("GET / HTTP/1.1".into()),
            client: Some("10.0.0.1".into()),
            server: None,
            host: None,
            attempts: vec![Attempt {
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
                if record { "record" } else { "nginx" },
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
    fn stderr_attaches_to_the_following_failure() {
        let ev = Evidence::new("nginx", &Arc::from("f"), 1, "FastCGI sent in stderr");
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
}
