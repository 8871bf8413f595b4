//! A request's capture (found through its pool cleanup, see `capture_memory`) and the record of a request,
//! read straight from NGINX's request state.
//!
//! Nothing here allocates on the heap for a request that gets no record, and a record
//! borrows every text from NGINX's own memory: the line is written by
//! `gatelog_record::line::RecordLine` into the caller's buffer.

use core::ffi::c_void;
use core::ptr::addr_of;

use gatelog_record::line::{AttemptLine, RecordLine, StderrLine, UpstreamName};
use gatelog_record::record::Origin;
use gatelog_record::time::iso8601_with_millis_text;
use gatelog_record::Timeouts;
use ngx::ffi::{
    ngx_cached_http_log_iso8601, ngx_http_get_indexed_variable, ngx_http_request_t,
    ngx_http_upstream_state_t, ngx_msec_t, ngx_pid, ngx_pool_cleanup_add, ngx_pool_t,
    ngx_timeofday,
};
use ngx::http::{HttpModule, HttpModuleServerConf, NgxHttpCoreModule};

use super::bytes;
use super::capture_memory::{new_capture, release_capture, CaptureHome};
use super::module::{main_conf_of_request, Gatelog};
use crate::attempts::{attempts, record_kind, RecordKind, StateView};
use crate::capture::TapEvent;

fn ctx_index() -> usize {
    Gatelog::module().ctx_index
}

/// The capture of main request `r`, made on first use when `create` is set. It is
/// found through the pool cleanup that releases it: `r->ctx` is wiped by internal
/// redirects (error_page), the pool is not.
///
/// # Safety
/// `r` is a live main request.
pub unsafe fn capture_of(
    r: *mut ngx_http_request_t,
    create: bool,
) -> Option<&'static mut CaptureHome> {
    // SAFETY: the request, its ctx array (one slot per module) and its pool are live; the
    // capture lives until the pool's cleanup releases it, is reached only from this
    // request's event-loop callbacks, so it lives as long as the request and is never
    // aliased.
    unsafe {
        let slot = (*r).ctx.add(ctx_index());
        if !(*slot).is_null() {
            return Some(&mut *((*slot) as *mut CaptureHome));
        }
        let pool = (*r).pool;
        let ours: unsafe extern "C" fn(*mut c_void) = release_capture;
        let mut cln = (*pool).cleanup;
        while !cln.is_null() {
            if (*cln).handler.is_some_and(|h| h as usize == ours as usize) && !(*cln).data.is_null()
            {
                *slot = (*cln).data;
                return Some(&mut *((*cln).data as *mut CaptureHome));
            }
            cln = (*cln).next;
        }
        if !create {
            return None;
        }
        let cln = ngx_pool_cleanup_add(pool, 0);
        if cln.is_null() {
            return None;
        }
        let home = new_capture();
        if home.is_null() {
            // Out of memory: the cleanup stays, a no-op without handler or data.
            return None;
        }
        (*cln).data = home.cast();
        (*cln).handler = Some(release_capture);
        *slot = home.cast();
        Some(&mut *home)
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
        let capture = capture_of(r, false).map(|home| &home.capture);
        // Without a captured failure line, only a 5xx attempt status (an upstream
        // answer, or a next_upstream http_5xx) can make a record.
        if capture.is_none()
            && (states.is_empty()
                || (status != 502 && status != 504 && !states.iter().any(|s| s.status >= 500)))
        {
            return None;
        }
        // The record's parts live on the stack when they are few (nearly always), else in
        // the request's pool: no heap allocation per record, and no pool growth for one.
        let pool = (*r).pool;
        let mut view_buf = [StateView::default(); FEW];
        let views = collect(
            &mut view_buf,
            pool,
            states.len(),
            states.iter().map(state_view),
        )?;
        let mut event_buf = [TapEvent::default(); FEW];
        let events = match &capture {
            // The lines live in the capture's memory until the request's pool is destroyed.
            Some(c) => collect(
                &mut event_buf,
                pool,
                c.counts().0,
                c.lines().filter_map(|l| l.failure()),
            )?,
            None => &mut [],
        };
        let mut attempt_buf = [AttemptLine::default(); FEW + 1];
        let attempts = collect(
            &mut attempt_buf,
            pool,
            views.len() + 1,
            attempts(views, events),
        )?;
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
            time: time.as_bytes(),
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

/// Attempts, states and failure lines a record is built from without the pool.
const FEW: usize = 4;

/// Up to `max` items of `items` in `buf` when they fit, else in request-pool memory.
///
/// # Safety
/// As for [`pool_collect`].
unsafe fn collect<T: Copy>(
    buf: &mut [T],
    pool: *mut ngx_pool_t,
    max: usize,
    items: impl Iterator<Item = T>,
) -> Option<&mut [T]> {
    if max > buf.len() {
        // SAFETY: the caller guarantees `pool`.
        return unsafe { pool_collect(pool, max, items) };
    }
    let mut n = 0;
    for (slot, item) in buf.iter_mut().zip(items.take(max)) {
        *slot = item;
        n += 1;
    }
    Some(&mut buf[..n])
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
    // SAFETY: `r` is live (caller); the core module's server conf and its name are
    // configuration memory.
    unsafe { NgxHttpCoreModule::server_conf(&*r).map_or(&[], |cscf| bytes(&cscf.server_name)) }
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
