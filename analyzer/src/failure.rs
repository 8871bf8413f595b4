//! A 502/504 as NGINX saw it, assembled from a record, error-log lines and an
//! access-log entry (whichever are given), before classification.

use crate::model::{AttemptEvent, Evidence, Peer, Phase, Protocol};
use crate::time::EpochMs;

/// Evidence lines kept per failure: the NGINX side plus the best context lines.
pub const MAX_EVIDENCE: usize = 8;

/// One failed upstream attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedAttempt {
    pub event: AttemptEvent,
    pub phase: Option<Phase>,
    pub errno: Option<i32>,
    pub peer: Option<Peer>,
    /// NGINX's message (without context), for reasons and fixes.
    pub message: String,
}

/// Which inputs saw the failure.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeenIn {
    pub record: bool,
    pub error_log: bool,
    pub access_log: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// When NGINX logged it; for a line without any date (pasted into a ticket) the
    /// time of its file's previous dated line, only to keep the stream in order.
    pub time: EpochMs,
    /// False when no input dated the failure: reports show the time as unknown,
    /// and it is not correlated by time with FPM, kernel or journal lines.
    pub time_known: bool,
    pub pid: Option<u32>,
    pub conn: Option<u64>,
    pub request_id: Option<String>,
    pub status: u16,
    /// True when the status was inferred from the error-log message (no record or
    /// access-log entry confirmed it).
    pub status_inferred: bool,
    pub peer: Option<Peer>,
    /// The `upstream` as configured (group name or address), when known.
    pub upstream: Option<String>,
    /// What NGINX spoke to the upstream: the seven causes apply to FastCGI only.
    pub protocol: Protocol,
    /// `METHOD URI PROTOCOL`.
    pub request: Option<String>,
    pub client: Option<String>,
    pub server: Option<String>,
    pub host: Option<String>,
    pub attempts: Vec<FailedAttempt>,
    /// `FastCGI sent in stderr` text for the request.
    pub stderr: Option<String>,
    pub request_time_ms: Option<u64>,
    /// fastcgi_read_timeout in force (records carry it).
    pub read_timeout_ms: Option<u64>,
    pub seen_in: SeenIn,
    pub evidence: Vec<Evidence>,
}

impl Failure {
    /// The attempt that decided the outcome: the last one that failed.
    pub fn decisive(&self) -> Option<&FailedAttempt> {
        self.attempts.last()
    }

    pub fn add_evidence(&mut self, e: Evidence) {
        if self.evidence.len() < MAX_EVIDENCE && !self.evidence.contains(&e) {
            self.evidence.push(e);
        }
    }

    /// The peers this failure's attempts went to.
    pub fn peers(&self) -> impl Iterator<Item = &Peer> {
        self.attempts.iter().filter_map(|a| a.peer.as_ref())
    }
}
