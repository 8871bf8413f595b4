//! What the error-log tap keeps for one request, and how it is read at the log phase.
//!
//! The tap runs inside NGINX's `ngx_log_error` for every error line of a request with
//! an upstream, so it only copies: the line's bytes after NGINX's prefix, the action
//! NGINX appends as ` while <action>`, and the upstream's state at that moment (the
//! phase depends on it and is gone by the log phase). The line is classified only at
//! the log phase, and only when the request gets a record (a request that recovered,
//! with `gatelog_recovered` off, never pays for it). The copies live in an [`Arena`]
//! of word blocks the worker reuses ([`BlockPool`], `ffi/capture_memory.rs`), within
//! the bounds set here: not in the request's pool, which a request of a failure storm
//! already fills to the edge of its first blocks, so that a few hundred bytes more
//! cost NGINX another block (a malloc and a free) per request.

use gatelog_record::message::{classify, UpstreamLine};
use gatelog_record::{Event, Level, Phase};

use crate::attempt_phase::{derive_phase, ConnState};

/// At most this many failure lines are kept per request: a request has few
/// attempts, and a bound keeps a pathological upstream from growing memory.
pub const MAX_EVENTS: usize = 32;
/// Bytes of a line kept (NGINX formats at most 2048, `NGX_MAX_ERROR_STR`); a longer
/// one is cut, as NGINX would have cut it.
pub const MAX_LINE: usize = 4096;
/// Bytes of an action kept; a longer one (no NGINX action is) is not kept.
pub const MAX_ACTION: usize = 128;

/// What the tap keeps of one line, borrowed from where it is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapLine<'a> {
    /// Index into `r->upstream_states` when the line was logged; `None` before the
    /// first attempt was pushed (resolver failures).
    pub attempt: Option<usize>,
    /// NGINX's `NGX_LOG_*` level of the line.
    pub level: usize,
    pub conn: ConnState,
    /// `log->action` when the line was logged.
    pub action: Option<&'a [u8]>,
    /// The line after NGINX's `time [level] pid#tid: *conn ` prefix.
    pub rest: &'a [u8],
}

/// Whether the tap keeps a line: what NGINX writes after the prefix starts like an
/// upstream message (cheap; [`TapLine::failure`] decides at the log phase).
pub fn worth_keeping(rest: &[u8]) -> bool {
    gatelog_record::message::may_concern_upstream(rest)
}

/// Whether a kept line is FastCGI's stderr (one slot per request: the last one).
pub fn is_stderr(rest: &[u8]) -> bool {
    rest.starts_with(b"FastCGI sent in stderr: ")
}

/// One failure line, attributed to the upstream attempt it was logged for. (`Default`
/// only fills fixed-size buffers before they are written; it is no real event.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TapEvent<'a> {
    pub attempt: Option<usize>,
    pub event: Event,
    pub phase: Phase,
    pub level: Level,
    pub errno: Option<i32>,
    pub error: Option<&'a [u8]>,
    pub message: &'a [u8],
}

impl Default for TapEvent<'_> {
    fn default() -> Self {
        TapEvent {
            attempt: None,
            event: Event::Error,
            phase: Phase::Connect,
            level: Level::Error,
            errno: None,
            error: None,
            message: &[],
        }
    }
}

impl<'a> TapLine<'a> {
    /// The failure this line reports, if it is one.
    pub fn failure(&self) -> Option<TapEvent<'a>> {
        let level = Level::from_ngx(self.level)?;
        let Some(UpstreamLine::Failure(f)) = classify(self.rest, self.action) else {
            return None;
        };
        Some(TapEvent {
            attempt: self.attempt,
            event: f.event,
            phase: derive_phase(f.event, f.send_side, self.conn),
            level,
            errno: f.errno,
            error: f.error,
            message: f.message,
        })
    }

    /// The stderr text this line carries and whether NGINX cut it, if it is one.
    pub fn stderr(&self) -> Option<(&'a [u8], bool)> {
        match classify(self.rest, self.action)? {
            UpstreamLine::FastcgiStderr { text, truncated } => Some((text, truncated)),
            UpstreamLine::Failure(_) => None,
        }
    }
}

/// Memory for kept lines: blocks from a [`BlockPool`] in NGINX
/// (`ffi/capture_memory.rs`), plain allocations in tests. Freed all at once with its owner, never one by one.
pub trait Arena {
    /// `size` bytes aligned to a word, or NULL when out of memory.
    fn alloc(&mut self, size: usize) -> *mut u8;
}

/// Words in a capture block: a request's capture and its usual one or two failure
/// lines (a few hundred bytes each) fit in one.
pub const BLOCK_WORDS: usize = 128;
/// Free blocks a worker keeps for the next requests (64 KiB); more are freed.
pub const KEPT_BLOCKS: usize = 64;

/// The blocks captures are made of, reused by a worker from one request to the next: a
/// storm's requests take and give back the same few blocks, with no malloc or free.
#[derive(Debug, Default)]
pub struct BlockPool {
    free: Vec<Box<[u64]>>,
}

impl BlockPool {
    pub const fn new() -> BlockPool {
        BlockPool { free: Vec::new() }
    }

    /// A block of at least `words` words (a reused one when it is a standard size);
    /// `None` when the memory cannot be had. Fallible, as NGINX's own allocations are:
    /// a failed allocation in Rust would abort the worker, and a storm is when memory
    /// runs short.
    pub fn take(&mut self, words: usize) -> Option<Box<[u64]>> {
        let words = if words <= BLOCK_WORDS {
            if let Some(b) = self.free.pop() {
                return Some(b);
            }
            BLOCK_WORDS
        } else {
            words
        };
        let mut block: Vec<u64> = Vec::new();
        block.try_reserve_exact(words).ok()?;
        block.resize(words, 0);
        Some(block.into_boxed_slice())
    }

    /// Takes `block` back: kept for reuse when it is a standard one and fewer than
    /// [`KEPT_BLOCKS`] are free, else freed.
    pub fn give(&mut self, block: Box<[u64]>) {
        if block.len() == BLOCK_WORDS && self.free.len() < KEPT_BLOCKS {
            self.free.push(block);
        }
    }

    /// Blocks kept for reuse.
    pub fn free_blocks(&self) -> usize {
        self.free.len()
    }
}

/// What the tap kept for one main request (plain data: nothing to drop; its lines live
/// in the request's arena).
#[derive(Debug)]
pub struct Capture {
    /// The kept failure lines, oldest first (a list through the arena).
    first: *mut LineNode,
    last: *mut LineNode,
    count: usize,
    /// Lines not kept because of [`MAX_EVENTS`] (or an arena out of memory).
    dropped: u32,
    /// The last FastCGI stderr line, in a slot reused while it is large enough.
    stderr: *mut LineNode,
    stderr_room: usize,
}

/// One kept line: this header, then `action_len` bytes of action and `rest_len` bytes
/// of line, in one arena allocation.
struct LineNode {
    next: *mut LineNode,
    attempt: Option<usize>,
    level: usize,
    conn: ConnState,
    has_action: bool,
    action_len: usize,
    rest_len: usize,
}

// Arenas align to a word (NGINX's NGX_ALIGNMENT), enough for a node's header.
const _: () = assert!(core::mem::align_of::<LineNode>() <= core::mem::size_of::<usize>());

/// The bounded copy of a line the tap keeps.
fn bounded<'a>(line: &TapLine<'a>) -> TapLine<'a> {
    TapLine {
        action: line.action.filter(|a| a.len() <= MAX_ACTION),
        rest: &line.rest[..line.rest.len().min(MAX_LINE)],
        ..*line
    }
}

fn room(line: &TapLine) -> usize {
    line.action.map_or(0, <[u8]>::len) + line.rest.len()
}

/// A node with `room` bytes of text from `arena` (NULL when out of memory).
fn new_node(arena: &mut impl Arena, room: usize) -> *mut LineNode {
    arena
        .alloc(core::mem::size_of::<LineNode>() + room)
        .cast::<LineNode>()
}

/// Fills `node` with `line`.
///
/// # Safety
/// `node` has room for a header and at least [`room`]`(line)` bytes after it.
unsafe fn fill(node: *mut LineNode, line: &TapLine) {
    let action = line.action.unwrap_or(&[]);
    // SAFETY: the caller guarantees room for the header and both byte runs; `node` is
    // word-aligned arena memory.
    unsafe {
        node.write(LineNode {
            next: core::ptr::null_mut(),
            attempt: line.attempt,
            level: line.level,
            conn: line.conn,
            has_action: line.action.is_some(),
            action_len: action.len(),
            rest_len: line.rest.len(),
        });
        let data = node.add(1).cast::<u8>();
        core::ptr::copy_nonoverlapping(action.as_ptr(), data, action.len());
        core::ptr::copy_nonoverlapping(line.rest.as_ptr(), data.add(action.len()), line.rest.len());
    }
}

/// The line a node holds.
///
/// # Safety
/// `node` was filled by [`fill`] and its arena is alive for `'a`.
unsafe fn read<'a>(node: *const LineNode) -> TapLine<'a> {
    // SAFETY: the bytes follow the header in the same allocation (fill).
    unsafe {
        let n = &*node;
        let data = node.add(1).cast::<u8>();
        TapLine {
            attempt: n.attempt,
            level: n.level,
            conn: n.conn,
            action: n
                .has_action
                .then(|| core::slice::from_raw_parts(data, n.action_len)),
            rest: core::slice::from_raw_parts(data.add(n.action_len), n.rest_len),
        }
    }
}

impl Default for Capture {
    fn default() -> Capture {
        Capture::new()
    }
}

impl Capture {
    pub const fn new() -> Capture {
        Capture {
            first: core::ptr::null_mut(),
            last: core::ptr::null_mut(),
            count: 0,
            dropped: 0,
            stderr: core::ptr::null_mut(),
            stderr_room: 0,
        }
    }

    /// Failure lines kept, and lines not kept.
    pub fn counts(&self) -> (usize, u32) {
        (self.count, self.dropped)
    }

    /// Keeps a failure line (a bounded copy in `arena`).
    ///
    /// # Safety
    /// `arena` is the one this capture's lines live in, alive as long as the capture.
    pub unsafe fn push(&mut self, arena: &mut impl Arena, line: &TapLine) {
        if self.count >= MAX_EVENTS {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        let line = bounded(line);
        let node = new_node(arena, room(&line));
        if node.is_null() {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        // SAFETY: the node has room for the line; the previous last node lives in the same
        // arena (caller).
        unsafe {
            fill(node, &line);
            match self.last.as_mut() {
                Some(last) => last.next = node,
                None => self.first = node,
            }
        }
        self.last = node;
        self.count += 1;
    }

    /// Keeps the last FastCGI stderr line of the request (a bounded copy in `arena`).
    /// The slot is reused while the new line fits; a larger one gets a slot of at least
    /// twice the size, so a request's stderr lines take at most about twice the largest.
    ///
    /// # Safety
    /// As for [`Capture::push`].
    pub unsafe fn set_stderr(&mut self, arena: &mut impl Arena, line: &TapLine) {
        let line = bounded(line);
        let need = room(&line);
        if self.stderr.is_null() || self.stderr_room < need {
            let want = need
                .max(self.stderr_room * 2)
                .clamp(512, MAX_LINE + MAX_ACTION)
                .max(need);
            let node = new_node(arena, want);
            if node.is_null() {
                return;
            }
            self.stderr = node;
            self.stderr_room = want;
        }
        // SAFETY: the slot has room for `need` bytes.
        unsafe { fill(self.stderr, &line) };
    }

    /// The kept failure lines, oldest first.
    ///
    /// # Safety
    /// The capture's arena is alive for `'a`.
    pub unsafe fn lines<'a>(&self) -> impl Iterator<Item = TapLine<'a>> + '_ {
        let mut node = self.first.cast_const();
        core::iter::from_fn(move || {
            if node.is_null() {
                return None;
            }
            // SAFETY: nodes live in the capture's arena (caller).
            let line = unsafe { read(node) };
            // SAFETY: as above.
            node = unsafe { (*node).next };
            Some(line)
        })
    }

    /// The last stderr line kept.
    ///
    /// # Safety
    /// As for [`Capture::lines`].
    pub unsafe fn stderr_line<'a>(&self) -> Option<TapLine<'a>> {
        // SAFETY: the slot is NULL or a node in the capture's arena (caller).
        (!self.stderr.is_null()).then(|| unsafe { read(self.stderr) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As NGINX 1.22 logs a missing PHP-FPM socket (the tap sees the line without
    /// the `time [level] pid#tid: *conn ` prefix).
    const ENOENT: &[u8] = b"connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory) while connecting to upstream, client: 127.0.0.1, server: localhost, request: \"GET /index.php HTTP/1.1\", upstream: \"fastcgi://unix:/run/php/php8.2-fpm.sock:\", host: \"localhost\"\n";

    fn line<'a>(rest: &'a [u8], action: &'static [u8], conn: ConnState) -> TapLine<'a> {
        TapLine {
            attempt: Some(0),
            level: 3,
            conn,
            action: Some(action),
            rest,
        }
    }

    #[test]
    fn a_kept_line_is_classified_at_the_log_phase() {
        assert!(worth_keeping(ENOENT) && !is_stderr(ENOENT));
        let e = line(ENOENT, b"connecting to upstream", ConnState::default())
            .failure()
            .expect("a failure");
        assert_eq!(
            (e.event, e.phase, e.level, e.errno),
            (Event::ConnectFailed, Phase::Connect, Level::Crit, Some(2))
        );
        assert_eq!(e.error, Some(&b"No such file or directory"[..]));
        assert_eq!(
            e.message,
            &b"connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory)"[..]
        );
    }

    #[test]
    fn the_phase_comes_from_the_state_kept_with_the_line() {
        let timed_out = b"upstream timed out (110: Connection timed out) while reading response header from upstream, client: 127.0.0.1, server: localhost, request: \"GET / HTTP/1.1\", upstream: \"http://127.0.0.1:8080/\", host: \"localhost\"";
        let read = ConnState {
            connected: true,
            read_timedout: true,
            connect_time_set: true,
            request_sent: true,
            ..ConnState::default()
        };
        let e = line(timed_out, b"reading response header from upstream", read)
            .failure()
            .expect("a failure");
        assert_eq!((e.event, e.phase), (Event::TimedOut, Phase::Header));
    }

    #[test]
    fn lines_that_are_not_failures_give_none() {
        let stderr = b"FastCGI sent in stderr: \"PHP message: PHP Warning:  x\" while reading response header from upstream, client: 127.0.0.1, server: localhost, request: \"GET / HTTP/1.1\", upstream: \"fastcgi://unix:/run/php/php8.2-fpm.sock:\", host: \"localhost\"";
        let l = line(
            stderr,
            b"reading response header from upstream",
            ConnState::default(),
        );
        assert!(is_stderr(stderr));
        assert_eq!(l.failure(), None);
        assert_eq!(
            l.stderr(),
            Some((&b"PHP message: PHP Warning:  x"[..], false))
        );
        // The client side of the same call is not the upstream's.
        let client = b"writev() failed (32: Broken pipe) while sending to client, client: 127.0.0.1, server: localhost, request: \"GET / HTTP/1.1\"";
        assert_eq!(
            line(client, b"sending to client", ConnState::default()).failure(),
            None
        );
        // Debug lines are never kept as failures.
        let mut debug = line(ENOENT, b"connecting to upstream", ConnState::default());
        debug.level = 8;
        assert_eq!(debug.failure(), None);
        assert!(!worth_keeping(
            b"open() \"/var/www/x\" failed (2: No such file or directory)"
        ));
    }

    #[test]
    fn blocks_are_reused_and_the_free_list_is_bounded() {
        let mut pool = BlockPool::new();
        let a = pool.take(10).unwrap();
        assert_eq!(a.len(), BLOCK_WORDS);
        let addr = a.as_ptr();
        pool.give(a);
        assert_eq!(pool.free_blocks(), 1);
        // The same block comes back for the next request.
        let b = pool.take(BLOCK_WORDS).unwrap();
        assert_eq!(b.as_ptr(), addr);
        assert_eq!(pool.free_blocks(), 0);
        // A large line gets a block of its own size, freed when given back.
        let big = pool.take(BLOCK_WORDS + 1).unwrap();
        assert_eq!(big.len(), BLOCK_WORDS + 1);
        pool.give(big);
        assert_eq!(pool.free_blocks(), 0);
        // A storm of concurrent captures leaves at most KEPT_BLOCKS behind.
        let many: Vec<_> = (0..KEPT_BLOCKS + 10)
            .map(|_| pool.take(1).unwrap())
            .collect();
        for block in many {
            pool.give(block);
        }
        pool.give(b);
        assert_eq!(pool.free_blocks(), KEPT_BLOCKS);
    }

    #[test]
    fn a_block_that_cannot_be_had_is_none_not_an_abort() {
        let mut pool = BlockPool::new();
        // More than the address space: refused up front, as an exhausted heap refuses.
        assert!(pool.take(usize::MAX / 4).is_none());
        assert!(pool.take(1 << 60).is_none());
        // The pool still works after.
        assert_eq!(pool.take(1).map(|b| b.len()), Some(BLOCK_WORDS));
    }

    /// Word-aligned allocations kept until the test ends; counts the bytes handed out.
    #[derive(Default)]
    struct TestArena {
        blocks: Vec<Box<[u64]>>,
        bytes: usize,
        fail: bool,
    }

    impl Arena for TestArena {
        fn alloc(&mut self, size: usize) -> *mut u8 {
            if self.fail {
                return core::ptr::null_mut();
            }
            self.bytes += size;
            let mut block = vec![0u64; size.div_ceil(8)].into_boxed_slice();
            let p = block.as_mut_ptr().cast::<u8>();
            self.blocks.push(block);
            p
        }
    }

    #[test]
    fn lines_are_kept_in_order_and_bounded() {
        let mut arena = TestArena::default();
        let mut c = Capture::new();
        let lines: Vec<Vec<u8>> = (0..MAX_EVENTS + 5)
            .map(|i| {
                format!("connect() to 127.0.0.1:{i} failed (111: Connection refused)").into_bytes()
            })
            .collect();
        for (i, rest) in lines.iter().enumerate() {
            let mut l = line(rest, b"connecting to upstream", ConnState::default());
            l.attempt = Some(i);
            // SAFETY: the arena outlives the capture.
            unsafe { c.push(&mut arena, &l) };
        }
        assert_eq!(c.counts(), (MAX_EVENTS, 5));
        // SAFETY: as above.
        let kept: Vec<TapLine> = unsafe { c.lines() }.collect();
        assert_eq!(kept.len(), MAX_EVENTS);
        for (i, l) in kept.iter().enumerate() {
            assert_eq!(
                (l.attempt, l.rest, l.action),
                (Some(i), &lines[i][..], Some(&b"connecting to upstream"[..]))
            );
            assert_eq!(l.failure().map(|e| e.errno), Some(Some(111)));
        }
    }

    #[test]
    fn a_line_is_cut_an_odd_action_dropped_and_an_arena_out_of_memory_counted() {
        let mut arena = TestArena::default();
        let mut c = Capture::new();
        let long = vec![b'x'; MAX_LINE + 100];
        let odd_action = vec![b'a'; MAX_ACTION + 1];
        // SAFETY: the arena outlives the capture.
        unsafe { c.push(&mut arena, &line(&long, b"x", ConnState::default())) };
        let mut l = line(ENOENT, b"x", ConnState::default());
        l.action = Some(&odd_action);
        // SAFETY: as above.
        unsafe { c.push(&mut arena, &l) };
        // SAFETY: as above.
        let kept: Vec<TapLine> = unsafe { c.lines() }.collect();
        assert_eq!(kept[0].rest.len(), MAX_LINE);
        assert_eq!((kept[1].action, kept[1].rest), (None, ENOENT));
        arena.fail = true;
        // SAFETY: as above.
        unsafe { c.push(&mut arena, &line(ENOENT, b"x", ConnState::default())) };
        assert_eq!(c.counts(), (2, 1));
    }

    #[test]
    fn the_last_stderr_line_is_kept_in_a_slot_of_bounded_growth() {
        let mut arena = TestArena::default();
        let mut c = Capture::new();
        // SAFETY: the arena outlives the capture.
        assert!(unsafe { c.stderr_line() }.is_none());
        let mut largest = 0;
        for i in 0..2000usize {
            let text = format!("FastCGI sent in stderr: \"PHP message: {}\" while reading response header from upstream, client: 127.0.0.1", "w".repeat(i % 1500));
            largest = largest.max(text.len());
            let l = line(
                text.as_bytes(),
                b"reading response header from upstream",
                ConnState::default(),
            );
            // SAFETY: as above.
            unsafe { c.set_stderr(&mut arena, &l) };
            // SAFETY: as above.
            let kept = unsafe { c.stderr_line() }.expect("kept");
            assert_eq!(kept.rest, text.as_bytes());
            assert_eq!(
                kept.stderr().map(|(t, cut)| (t.len(), cut)),
                Some((13 + i % 1500, false))
            );
        }
        // 2000 lines, but the slots together stay within a few times the largest line.
        assert!(
            arena.bytes < 4 * (largest + 200),
            "{} bytes for lines up to {largest}",
            arena.bytes
        );
        assert_eq!(c.counts(), (0, 0));
    }
}
