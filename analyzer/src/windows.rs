//! Every time window of the analyzer in one place, because they depend on each
//! other: the streaming context drops FPM, kernel and journal lines a fixed time
//! behind the failures, so a rule that looks further back than that would find
//! nothing in a long log while it works on a short test file. The checks at the end
//! fail the build when a classifier window outgrows what the context keeps.
//!
//! Windows that are private to one parser or to the join's matching of one request's
//! lines (a second of slack between a record and its error line) stay where they are
//! used: they are not look-ups into the context.

const SEC: i64 = 1_000;
const MIN: i64 = 60 * SEC;

// ---- The streaming context (what is kept) ----------------------------------------

/// How long context lines are kept behind the failure being classified: the longest
/// classifier look-back, with margin.
pub const CONTEXT_LOOKBACK_MS: i64 = 15 * MIN;
/// How far ahead of a failure context lines are read before it is classified (FPM's
/// `execution timed out` after NGINX's 504, a worker's exit logged after NGINX's
/// line).
pub const CONTEXT_LOOKAHEAD_MS: i64 = MIN;
/// How far behind the newest line of the failure stream the context is evicted:
/// the look-back of the oldest failure still pending in the join, plus a minute of
/// margin.
pub const CONTEXT_KEEP_MS: i64 = CONTEXT_LOOKBACK_MS + JOIN_WINDOW_MS + MIN;
/// How much further than the look-ahead the context is read at each step (fewer,
/// larger reads).
pub const CONTEXT_STEP_MS: i64 = 10 * SEC;

// ---- The join -------------------------------------------------------------------

/// How long after its last line a failure may still gain lines. A record is written
/// when the request ends, right after the last attempt's line; NGINX workers write
/// slightly out of order; 5 s covers both.
pub const JOIN_WINDOW_MS: i64 = 5 * SEC;
/// How long the join's history of each peer (alive, read timeouts) is kept for the
/// classifier.
pub const HISTORY_MS: i64 = 15 * MIN;

// ---- The classifier (what it looks for around a failure) -------------------------

/// NGINX, FPM and the journal log whole seconds and write a moment apart: how far
/// past a failure a line about the same moment may be dated.
pub const LOG_SLACK_MS: i64 = 2 * SEC;
/// A worker's exit and NGINX's line about the dropped connection: a second or two
/// apart (whole seconds on both sides).
pub const DEATH_WINDOW_MS: i64 = 3 * SEC;
/// A kernel OOM kill or crash found by pid may be dated this far from the worker's
/// exit (raw dmesg times aligned to the wall clock are off by a few seconds at
/// most); pids are reused, but not that fast.
pub const KILL_MATCH_WINDOW_MS: i64 = 30 * SEC;
/// systemd's `A process of this unit has been killed by the OOM killer` around a
/// failure with no FPM line naming the worker.
pub const UNIT_OOM_WINDOW_MS: i64 = 5 * SEC;
/// FPM's `execution timed out ... terminating` (request_terminate_timeout) before
/// the worker's exit: at most the longest sane terminate timeout.
pub const TERMINATE_LOOKBACK_MS: i64 = 10 * MIN;
/// A PHP fatal error in worker output is the cause of its worker's exit when
/// logged this long before it.
pub const WORKER_OUTPUT_MS: i64 = 30 * SEC;
/// max_children warnings before an EAGAIN on connect (backlog full).
pub const BACKLOG_WARNING_LOOKBACK_MS: i64 = 2 * MIN;
/// max_children warnings before a connect timeout (accept queue full).
pub const CONNECT_TIMEOUT_WARNING_LOOKBACK_MS: i64 = 3 * MIN;
/// NGINX's default fastcgi_read_timeout (and proxy_/uwsgi_/scgi_/grpc_read_timeout):
/// a 504's request started that long before, unless a record or the config says
/// otherwise.
pub const DEFAULT_READ_TIMEOUT_MS: i64 = MIN;
/// NGINX's default `*_connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT_MS: i64 = MIN;
/// A max_children warning counts for a 504 when logged within its read-timeout
/// window plus this (the pool filled up shortly before the request came).
pub const READ_WARNING_MARGIN_MS: i64 = 10 * SEC;
/// FPM's request timers (`executing too slow`) within the read-timeout window plus
/// this.
pub const READ_TIMER_MARGIN_MS: i64 = 5 * SEC;
/// FPM's `execution timed out` is logged when request_terminate_timeout fires,
/// after NGINX gave up: looked for this long after the 504.
pub const READ_TIMER_LOOKAHEAD_MS: i64 = MIN;
/// A killed FPM master leaves a stale socket; its kernel line is looked for this
/// far back (as far as the context keeps).
pub const MASTER_KILL_LOOKBACK_MS: i64 = CONTEXT_LOOKBACK_MS;
/// FPM's last start-up error (bind, user) explains a stop this long after it. The
/// context keeps the last few start-up errors beyond its window, so this may
/// exceed [`CONTEXT_LOOKBACK_MS`].
pub const FPM_ERROR_LOOKBACK_MS: i64 = 60 * MIN;
/// Another peer answering within this time, while this one's socket is missing,
/// suggests a wrong address (from the NGINX log alone).
pub const OTHER_PEER_ALIVE_MS: i64 = 5 * MIN;
/// `no live upstreams` inherits the cause of the group's failures this recent
/// (NGINX's fail_timeout is 10 s by default; a group stays down while its peers
/// keep failing).
pub const NO_LIVE_LOOKBACK_MS: i64 = 2 * MIN;
/// A worker pid seen dying again after this long is another worker (pid reuse).
pub const PID_REUSE_MS: i64 = MIN;
/// How long the deaths already matched to failures are remembered.
pub const USED_DEATHS_MS: i64 = 10 * MIN;
/// A kernel log covers a failure when its dated lines reach within this of it
/// (quiet kernels log nothing for long stretches).
pub const KERNEL_COVER_MARGIN_MS: i64 = 10 * MIN;

/// How far back the read-timeout rules look for a read timeout of `rt` ms plus
/// `margin`: never past what the context keeps (a huge configured timeout would
/// otherwise ask for lines already dropped).
pub fn read_lookback_ms(rt: i64, margin: i64) -> i64 {
    (rt + margin).clamp(0, CONTEXT_LOOKBACK_MS)
}

// ---- Checks ----------------------------------------------------------------------

/// Every look-back of a classifier rule into the context, from the failure's time.
const CONTEXT_LOOKBACKS: [i64; 10] = [
    DEATH_WINDOW_MS + LOG_SLACK_MS,
    DEATH_WINDOW_MS + KILL_MATCH_WINDOW_MS,
    UNIT_OOM_WINDOW_MS,
    DEATH_WINDOW_MS + TERMINATE_LOOKBACK_MS,
    DEATH_WINDOW_MS + WORKER_OUTPUT_MS,
    BACKLOG_WARNING_LOOKBACK_MS,
    CONNECT_TIMEOUT_WARNING_LOOKBACK_MS,
    DEFAULT_READ_TIMEOUT_MS + READ_WARNING_MARGIN_MS,
    DEFAULT_READ_TIMEOUT_MS + READ_TIMER_MARGIN_MS,
    MASTER_KILL_LOOKBACK_MS,
];

/// Every look-ahead of a classifier rule into the context, from the failure's time.
const CONTEXT_LOOKAHEADS: [i64; 5] = [
    DEATH_WINDOW_MS + LOG_SLACK_MS,
    DEATH_WINDOW_MS + KILL_MATCH_WINDOW_MS,
    UNIT_OOM_WINDOW_MS,
    READ_TIMER_LOOKAHEAD_MS,
    LOG_SLACK_MS,
];

const fn all_at_most(windows: &[i64], limit: i64) -> bool {
    let mut i = 0;
    while i < windows.len() {
        if windows[i] > limit {
            return false;
        }
        i += 1;
    }
    true
}

const _: () = assert!(
    all_at_most(&CONTEXT_LOOKBACKS, CONTEXT_LOOKBACK_MS),
    "a classifier look-back is longer than the streaming context keeps (CONTEXT_LOOKBACK_MS)"
);
// The context is read CONTEXT_LOOKAHEAD_MS (plus a step) ahead of the failures.
const _: () = assert!(
    all_at_most(&CONTEXT_LOOKAHEADS, CONTEXT_LOOKAHEAD_MS),
    "a classifier look-ahead is longer than the streaming context reads ahead (CONTEXT_LOOKAHEAD_MS)"
);
// The join's history serves the same rules.
const _: () = assert!(
    all_at_most(&[OTHER_PEER_ALIVE_MS, CONTEXT_LOOKBACK_MS], HISTORY_MS),
    "the classifier asks the join's history further back than HISTORY_MS"
);
// A failure is classified JOIN_WINDOW_MS after its last line: the context must still
// read ahead of it by then.
const _: () = assert!(JOIN_WINDOW_MS < CONTEXT_LOOKAHEAD_MS);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_lookback_is_capped_by_the_context() {
        assert_eq!(read_lookback_ms(30 * SEC, READ_WARNING_MARGIN_MS), 40 * SEC);
        assert_eq!(
            read_lookback_ms(60 * MIN, READ_WARNING_MARGIN_MS),
            CONTEXT_LOOKBACK_MS
        );
    }

    #[test]
    fn the_window_check_catches_a_long_window() {
        assert!(all_at_most(&CONTEXT_LOOKBACKS, CONTEXT_LOOKBACK_MS));
        assert!(!all_at_most(
            &[CONTEXT_LOOKBACK_MS + 1],
            CONTEXT_LOOKBACK_MS
        ));
    }
}
