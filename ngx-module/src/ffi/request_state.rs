//! Per-request capture storage (in the request's pool) and the record of a request,
//! read straight from NGINX's request state.
//!
//! Nothing here allocates on the heap for a request that gets no record, and a record
//! borrows every text from NGINX's own memory: the line is written by
//! `gatelog_record::line::RecordLine` into the caller's buffer.

use core::ffi::c_void;
use core::ptr::{self, addr_of};

use gatelog_record::line::{AttemptLine, RecordLine, StderrLine, UpstreamName};
use gatelog_record::record::Origin;
use gatelog_record::time::iso8601_with_millis_text;
use gatelog_record::Timeouts;
use ngx::ffi::{
    ngx_cached_http_log_iso8601, ngx_http_core_module, ngx_http_core_srv_conf_t,
    ngx_http_get_indexed_variable, ngx_http_request_t, ngx_http_upstream_state_t, ngx_msec_t,
    ngx_pid, ngx_pool_cleanup_add, ngx_pool_t, ngx_timeofday,
};

use super::bytes;
use super::module::{main_conf_of_request, ngx_http_gatelog_module};
use crate::attempt_phase::ConnState;
use crate::attempts::{attempts, record_kind, RecordKind, StateView};
use crate::capture::{TapLine, MAX_ACTION, MAX_EVENTS, MAX_LINE};

/// What the tap kept for one main request, in its pool (plain data: nothing to drop).
pub struct Capture {
    /// The kept failure lines, oldest first (a list through the pool).
    first: *mut LineNode,
    last: *mut LineNode,
    count: usize,
    /// Lines not kept because of [`MAX_EVENTS`].
    dropped: u32,
    /// The last FastCGI stderr line, in a slot reused while it is large enough.
    stderr: *mut LineNode,
    stderr_room: usize,
}

/// One kept line: this header, then `action_len` bytes of action and `rest_len` bytes
/// of line, in one pool allocation.
struct LineNode {
    next: *mut LineNode,
    attempt: Option<usize>,
    level: usize,
    conn: ConnState,
    has_action: bool,
    action_len: usize,
    rest_len: usize,
}

impl LineNode {
    /// # Safety
    /// `node` was made by [`new_node`] and its pool is alive.
    unsafe fn line<'a>(node: *const LineNode) -> TapLine<'a> {
        // SAFETY: the bytes follow the header in the same allocation (new_node).
        unsafe {
            let data = node.add(1) as *const u8;
            let n = &*node;
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
}

/// Fills `node` (room for `room` bytes after the header) with `line`.
///
/// # Safety
/// `node` has room for a header and `room` bytes; `room` ≥ the line's kept bytes.
unsafe fn fill(node: *mut LineNode, line: &TapLine) {
    let action = line.action.unwrap_or(&[]);
    // SAFETY: the caller guarantees room for the header and both byte runs.
    unsafe {
        node.write(LineNode {
            next: ptr::null_mut(),
            attempt: line.attempt,
            level: line.level,
            conn: line.conn,
            has_action: line.action.is_some(),
            action_len: action.len(),
            rest_len: line.rest.len(),
        });
        let data = node.add(1) as *mut u8;
        ptr::copy_nonoverlapping(action.as_ptr(), data, action.len());
        ptr::copy_nonoverlapping(line.rest.as_ptr(), data.add(action.len()), line.rest.len());
    }
}

/// A pool allocation for a node with `room` bytes of text.
///
/// # Safety
/// `pool` is a live pool.
unsafe fn new_node(pool: *mut ngx_pool_t, room: usize) -> *mut LineNode {
    // ngx_palloc aligns to NGX_ALIGNMENT (a word), enough for the header.
    const { assert!(core::mem::align_of::<LineNode>() <= core::mem::size_of::<usize>()) };
    // SAFETY: the caller guarantees `pool`.
    unsafe { ngx::ffi::ngx_palloc(pool, core::mem::size_of::<LineNode>() + room) as *mut LineNode }
}

/// The bounded copy of a line the tap keeps.
fn bounded<'a>(line: &TapLine<'a>) -> TapLine<'a> {
    TapLine {
        action: line.action.filter(|a| a.len() <= MAX_ACTION),
        rest: &line.rest[..line.rest.len().min(MAX_LINE)],
        ..*line
    }
}

impl Capture {
    /// Keeps a failure line (a bounded copy in `pool`).
    ///
    /// # Safety
    /// `pool` is the request's pool, the one this capture lives in.
    pub unsafe fn push(&mut self, pool: *mut ngx_pool_t, line: &TapLine) {
        if self.count >= MAX_EVENTS {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        let line = bounded(line);
        let room = line.action.map_or(0, <[u8]>::len) + line.rest.len();
        // SAFETY: the caller guarantees `pool`; the node has room for the line.
        unsafe {
            let node = new_node(pool, room);
            if node.is_null() {
                self.dropped = self.dropped.saturating_add(1);
                return;
            }
            fill(node, &line);
            match self.last.as_mut() {
                Some(last) => last.next = node,
                None => self.first = node,
            }
            self.last = node;
        }
        self.count += 1;
    }

    /// Keeps the last FastCGI stderr line of the request (a bounded copy in `pool`).
    ///
    /// # Safety
    /// As for [`Capture::push`].
    pub unsafe fn set_stderr(&mut self, pool: *mut ngx_pool_t, line: &TapLine) {
        let line = bounded(line);
        let room = line.action.map_or(0, <[u8]>::len) + line.rest.len();
        // SAFETY: the caller guarantees `pool`; the slot is reused only when it has room,
        // so the pool grows by at most twice the largest line over a request's life.
        unsafe {
            if self.stderr.is_null() || self.stderr_room < room {
                let want = room
                    .max(self.stderr_room * 2)
                    .clamp(512, MAX_LINE + MAX_ACTION);
                let node = new_node(pool, want.max(room));
                if node.is_null() {
                    return;
                }
                self.stderr = node;
                self.stderr_room = want.max(room);
            }
            fill(self.stderr, &line);
        }
    }

    /// The kept failure lines, oldest first.
    fn lines<'a>(&self) -> impl Iterator<Item = TapLine<'a>> + '_ {
        let mut node = self.first as *const LineNode;
        core::iter::from_fn(move || {
            if node.is_null() {
                return None;
            }
            // SAFETY: nodes live in the pool of the request this capture belongs to.
            let line = unsafe { LineNode::line(node) };
            // SAFETY: as above.
            node = unsafe { (*node).next };
            Some(line)
        })
    }

    fn stderr_line<'a>(&self) -> Option<TapLine<'a>> {
        // SAFETY: the slot is NULL or a node in the request's pool.
        (!self.stderr.is_null()).then(|| unsafe { LineNode::line(self.stderr) })
    }
}

/// Marks the pool cleanup that holds a request's capture. Its address identifies the
/// capture in the pool's cleanup list: `r->ctx` is wiped by internal redirects
/// (error_page), the pool is not. The capture is plain pool data: nothing to free.
///
/// # Safety
/// A pool cleanup that does nothing (the capture is plain pool data).
unsafe extern "C" fn capture_marker(_data: *mut c_void) {}

fn ctx_index() -> usize {
    // SAFETY: NGINX sets ctx_index when it loads the configuration; read only.
    unsafe { (*addr_of!(ngx_http_gatelog_module)).ctx_index }
}

/// The capture of main request `r`, made on first use when `create` is set.
///
/// # Safety
/// `r` is a live main request.
pub unsafe fn capture_of(r: *mut ngx_http_request_t, create: bool) -> Option<&'static mut Capture> {
    // SAFETY: the request, its ctx array (one slot per module) and its pool are live; the
    // capture is pool memory of that request, reached only from this request's event-loop
    // callbacks, so it lives as long as the request and is never aliased.
    unsafe {
        let slot = (*r).ctx.add(ctx_index());
        if !(*slot).is_null() {
            return Some(&mut *((*slot) as *mut Capture));
        }
        let pool = (*r).pool;
        let ours: unsafe extern "C" fn(*mut c_void) = capture_marker;
        let mut cln = (*pool).cleanup;
        while !cln.is_null() {
            if (*cln).handler.is_some_and(|h| h as usize == ours as usize) && !(*cln).data.is_null()
            {
                *slot = (*cln).data;
                return Some(&mut *((*cln).data as *mut Capture));
            }
            cln = (*cln).next;
        }
        if !create {
            return None;
        }
        const { assert!(core::mem::align_of::<Capture>() <= core::mem::size_of::<usize>()) };
        let cln = ngx_pool_cleanup_add(pool, core::mem::size_of::<Capture>());
        if cln.is_null() {
            return None;
        }
        let data = (*cln).data as *mut Capture;
        data.write(Capture {
            first: ptr::null_mut(),
            last: ptr::null_mut(),
            count: 0,
            dropped: 0,
            stderr: ptr::null_mut(),
            stderr_room: 0,
        });
        (*cln).handler = Some(capture_marker);
        *slot = data.cast();
        Some(&mut *data)
    }
}

/// `$status`'s rule: the error status if one was set, else the response status.
///
/// # Safety
/// `r` is a live request.
unsafe fn final_status(r: *mut ngx_http_request_t) -> u16 {
    // SAFETY: `r` is live (caller).
    unsafe {
        let s = if (*r).err_status != 0 {
            (*r).err_status
        } else {
            (*r).headers_out.status
        };
        u16::try_from(s).unwrap_or(0)
    }
}

/// Calls `f` with the record of main request `r`, if it gets one.
///
/// # Safety
/// `r` is a live main request in its log phase (or a variable lookup).
pub unsafe fn with_record<R>(
    r: *mut ngx_http_request_t,
    record_recovered: bool,
    f: impl FnOnce(&RecordLine) -> R,
) -> Option<R> {
    // SAFETY: `r` is live (caller): its connection, confs, upstream and header fields are
    // NGINX-owned memory valid during the request; NULL pointers are checked before use.
    unsafe {
        let status = final_status(r);
        // The normal path: a good answer with recovered-recording off costs nothing.
        if status != 502 && status != 504 && !record_recovered {
            return None;
        }
        let states = state_slice(r);
        let capture = capture_of(r, false);
        // Without a captured failure line, only a 5xx attempt status (an upstream
        // answer, or a next_upstream http_5xx) can make a record.
        if capture.is_none()
            && (states.is_empty()
                || (status != 502 && status != 504 && !states.iter().any(|s| s.status >= 500)))
        {
            return None;
        }
        // The record's parts live in the request's pool: no heap allocation per record.
        let pool = (*r).pool;
        let views = pool_collect(pool, states.len(), states.iter().map(state_view))?;
        let events = match &capture {
            Some(c) => pool_collect(pool, c.count, c.lines().filter_map(|l| l.failure()))?,
            None => &mut [],
        };
        let attempts = pool_collect(pool, views.len() + 1, attempts(views, events))?;
        let (origin, recovered) = match record_kind(status, attempts, record_recovered)? {
            RecordKind::Failed(o) => (o, false),
            // The final answer came from an upstream; the failures are in the attempts.
            RecordKind::Recovered => (Origin::Upstream, true),
        };

        let tp = ngx_timeofday();
        let now_ms = tp.sec.saturating_mul(1000).saturating_add(tp.msec as i64);
        let start_ms = (*r)
            .start_sec
            .saturating_mul(1000)
            .saturating_add((*r).start_msec as i64);
        let time = iso8601_with_millis_text(
            bytes(&*addr_of!(ngx_cached_http_log_iso8601)),
            tp.msec as u32,
            now_ms,
            tp.gmtoff as i32,
        );
        let c = (*r).connection;
        let conn = if (*c).log.is_null() {
            (*c).number
        } else {
            (*(*c).log).connection
        };
        let host = (*r).headers_in.host;
        let mut version = [0u8; 32];
        let stderr = capture
            .as_ref()
            .and_then(|c| c.stderr_line())
            .and_then(|l| l.stderr());

        let line = RecordLine {
            time: time.as_str(),
            pid: ngx_pid as u64,
            conn,
            request_id: request_id(r),
            status,
            origin,
            recovered,
            client: bytes(&(*c).addr_text),
            server: server_name(r),
            host: (!host.is_null()).then(|| bytes(&(*host).value)),
            method: bytes(&(*r).method_name),
            uri: bytes(&(*r).unparsed_uri),
            protocol: protocol(r, &mut version),
            request_time_ms: u64::try_from(now_ms.saturating_sub(start_ms)).unwrap_or(0),
            upstream: upstream_name(r),
            attempts,
            timeouts_ms: timeouts(r),
            fastcgi_stderr: stderr.map(|(text, truncated)| StderrLine { text, truncated }),
        };
        Some(f(&line))
    }
}

/// The last failed attempt's errno and phase (`$gatelog_errno`, `$gatelog_phase`).
pub fn last_failed<'a>(line: &'a RecordLine) -> Option<&'a AttemptLine<'a>> {
    gatelog_record::line::last_failed(line.attempts)
}

/// Up to `max` items of `items` in request-pool memory (freed with the request).
/// `None` when the pool is out of memory.
///
/// # Safety
/// `pool` is a live request pool; the slice must not outlive it.
unsafe fn pool_collect<'a, T: Copy>(
    pool: *mut ngx_pool_t,
    max: usize,
    items: impl Iterator<Item = T>,
) -> Option<&'a mut [T]> {
    if max == 0 {
        return Some(&mut []);
    }
    // ngx_palloc aligns to NGX_ALIGNMENT (a word), enough for these types.
    const { assert!(core::mem::align_of::<T>() <= core::mem::size_of::<usize>()) };
    let bytes = core::mem::size_of::<T>().checked_mul(max)?;
    // SAFETY: the caller guarantees `pool`.
    let p = unsafe { ngx::ffi::ngx_palloc(pool, bytes) } as *mut T;
    if p.is_null() {
        return None;
    }
    let mut n = 0;
    for item in items.take(max) {
        // SAFETY: `n < max`: within the allocation; each slot is written once.
        unsafe { p.add(n).write(item) };
        n += 1;
    }
    // SAFETY: the first `n` slots are initialised; the pool outlives the slice (caller).
    Some(unsafe { core::slice::from_raw_parts_mut(p, n) })
}

fn ms(v: ngx_msec_t) -> Option<u64> {
    (v != ngx_msec_t::MAX).then_some(v as u64)
}

/// # Safety
/// `r` is a live request.
unsafe fn state_slice<'a>(r: *mut ngx_http_request_t) -> &'a [ngx_http_upstream_state_t] {
    // SAFETY: the upstream_states array holds `nelts` states (checked for NULL and emptiness).
    unsafe {
        let arr = (*r).upstream_states;
        if arr.is_null() || (*arr).nelts == 0 || (*arr).elts.is_null() {
            return &[];
        }
        core::slice::from_raw_parts(
            (*arr).elts as *const ngx_http_upstream_state_t,
            (*arr).nelts,
        )
    }
}

fn state_view(s: &ngx_http_upstream_state_t) -> StateView<'_> {
    StateView {
        // SAFETY: a state's peer is NULL or an ngx_str_t of the upstream's peer data,
        // which lives as long as the request's configuration.
        peer: (!s.peer.is_null()).then(|| unsafe { bytes(&*s.peer) }),
        status: u16::try_from(s.status).ok().filter(|&v| v != 0),
        connect_ms: ms(s.connect_time),
        header_ms: ms(s.header_time),
        response_ms: ms(s.response_time),
    }
}

/// `$request_id`, when the configuration uses it elsewhere (see postconfiguration).
///
/// # Safety
/// `r` is a live request.
unsafe fn request_id<'a>(r: *mut ngx_http_request_t) -> Option<&'a [u8]> {
    // SAFETY: `r` is live (caller); the indexed variable value is checked for NULL and not_found.
    unsafe {
        let mc = main_conf_of_request(r)?;
        if mc.request_id_index < 0 {
            return None;
        }
        let v = ngx_http_get_indexed_variable(r, mc.request_id_index as usize);
        if v.is_null() || (*v).not_found() != 0 || (*v).data.is_null() {
            return None;
        }
        Some(core::slice::from_raw_parts((*v).data, (*v).len() as usize))
    }
}

/// # Safety
/// `r` is a live request.
unsafe fn server_name<'a>(r: *mut ngx_http_request_t) -> &'a [u8] {
    // SAFETY: the request's server conf of the core module is set for every request.
    unsafe {
        let cscf =
            *(*r).srv_conf.add(ngx_http_core_module.ctx_index) as *const ngx_http_core_srv_conf_t;
        if cscf.is_null() {
            return &[];
        }
        bytes(&(*cscf).server_name)
    }
}

/// The request line's protocol, or the one NGINX parsed (written into `buf`).
///
/// # Safety
/// `r` is a live request.
unsafe fn protocol(r: *mut ngx_http_request_t, buf: &mut [u8; 32]) -> &[u8] {
    // SAFETY: `r` is live (caller).
    let (p, v) = unsafe { (bytes(&(*r).http_protocol), (*r).http_version) };
    if !p.is_empty() {
        return p;
    }
    match v {
        9 => b"HTTP/0.9",
        1000 => b"HTTP/1.0",
        1001 => b"HTTP/1.1",
        2000 => b"HTTP/2.0",
        3000 => b"HTTP/3.0",
        v => {
            use std::io::Write;
            let mut w = &mut buf[..];
            let _ = write!(w, "HTTP/{}.{}", v / 1000, v % 1000);
            let left = w.len();
            &buf[..32 - left]
        }
    }
}

/// The upstream{} group name, or the address written in `*_pass`.
///
/// # Safety
/// `r` is a live request.
unsafe fn upstream_name<'a>(r: *mut ngx_http_request_t) -> Option<UpstreamName<'a>> {
    // SAFETY: `r` is live (caller); its upstream, upstream conf and resolved address are checked
    // for NULL.
    unsafe {
        let u = (*r).upstream;
        if u.is_null() {
            return None;
        }
        let uscf = (*u).upstream;
        if !uscf.is_null() {
            let host = bytes(&(*uscf).host);
            // Implicit upstreams (made by `fastcgi_pass ADDR`) have no srv_conf; their
            // host is the address as written, the unix: prefix stripped.
            if (*uscf).srv_conf.is_null() {
                if host.starts_with(b"/") {
                    return Some(UpstreamName::Unix(host));
                }
                if (*uscf).port != 0 {
                    return Some(UpstreamName::HostPort(host, (*uscf).port));
                }
            }
            return Some(UpstreamName::Name(host));
        }
        let res = (*u).resolved;
        if !res.is_null() {
            let host = bytes(&(*res).host);
            return Some(if (*res).port != 0 {
                UpstreamName::HostPort(host, (*res).port)
            } else {
                UpstreamName::Name(host)
            });
        }
        None
    }
}

/// # Safety
/// `r` is a live request.
unsafe fn timeouts(r: *mut ngx_http_request_t) -> Option<Timeouts> {
    // SAFETY: `r` is live (caller); its upstream and upstream conf are checked for NULL.
    unsafe {
        let u = (*r).upstream;
        if u.is_null() || (*u).conf.is_null() {
            return None;
        }
        let conf = (*u).conf;
        Some(Timeouts {
            connect: (*conf).connect_timeout as u64,
            send: (*conf).send_timeout as u64,
            read: (*conf).read_timeout as u64,
        })
    }
}
