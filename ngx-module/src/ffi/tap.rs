//! The error-log tap: a module-owned `ngx_log_t` placed at the head of every
//! location's error_log chain.
//!
//! `ngx_set_connection_log()` copies the head's writer into each request's
//! connection log, so NGINX calls [`tap_writer`] with the connection log itself for
//! every line the request logs, before it walks on to the user's own log nodes
//! (which it does by itself: the tap writes nothing, and the error log stays
//! byte-for-byte what it was). The line is exactly what NGINX printed, so the errno
//! in it is the errno NGINX reports — whichever syscall, SO_ERROR or timer it came
//! from. The head's level is raised to at least `error`, so capture works even
//! when the user's error_log is at `crit`; the user's nodes keep their own levels.

use core::ffi::CStr;
use core::ptr;
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use gatelog_record::message::{classify, split_prefix, UpstreamLine};
use gatelog_record::text::lossless_text;
use gatelog_record::Level;
use ngx::ffi::{
    ngx_conf_t, ngx_http_log_ctx_t, ngx_http_request_t, ngx_log_t, ngx_msec_t, ngx_pcalloc,
    ngx_uint_t, u_char, NGX_LOG_ERR,
};

use super::conf::MainConf;
use super::guard;
use super::record::capture_of;
use crate::capture::TapEvent;
use crate::phase::{derive_phase, ConnState};

/// `ngx_http_log_error` is static in NGINX; its address is learned from the first
/// request's connection log and identifies the logs whose `data` is an
/// `ngx_http_log_ctx_t`.
static HTTP_LOG_HANDLER: AtomicUsize = AtomicUsize::new(0);
/// Set while the tap runs: nothing it calls may log, but never re-enter if it does.
static IN_TAP: AtomicBool = AtomicBool::new(false);

/// Remembers the HTTP connection-log handler (called for every request).
pub unsafe fn learn_http_log_handler(r: *mut ngx_http_request_t) {
    if HTTP_LOG_HANDLER.load(Ordering::Relaxed) != 0 {
        return;
    }
    let c = (*r).connection;
    if c.is_null() || (*c).log.is_null() {
        return;
    }
    if let Some(h) = (*(*c).log).handler {
        HTTP_LOG_HANDLER.store(h as usize, Ordering::Relaxed);
    }
}

fn is_tap(log: *const ngx_log_t) -> bool {
    let ours: unsafe extern "C" fn(*mut ngx_log_t, ngx_uint_t, *mut u_char, usize) = tap_writer;
    unsafe { (*log).writer.is_some_and(|w| w as usize == ours as usize) }
}

fn head_level(orig: ngx_uint_t) -> ngx_uint_t {
    orig.max(NGX_LOG_ERR as ngx_uint_t)
}

/// Returns the tap node that heads `orig`'s chain, making it once per chain.
pub unsafe fn wrap(cf: *mut ngx_conf_t, mc: &mut MainConf, orig: *mut ngx_log_t) -> *mut ngx_log_t {
    if orig.is_null() || is_tap(orig) {
        return orig;
    }
    if let Some(&(_, w)) = mc.wrappers.iter().find(|(o, _)| *o == orig) {
        return w;
    }
    let w = ngx_pcalloc((*cf).pool, core::mem::size_of::<ngx_log_t>()) as *mut ngx_log_t;
    if w.is_null() {
        return orig;
    }
    (*w).writer = Some(tap_writer);
    (*w).wdata = ptr::null_mut();
    (*w).next = orig;
    (*w).file = (*orig).file;
    (*w).log_level = head_level((*orig).log_level);
    mc.wrappers.push((orig, w));
    w
}

/// The main error_log can be set after http{} and default logs are opened after
/// parsing: copy the final level and file from each wrapped chain (init_module).
pub unsafe fn refresh(mc: &MainConf, cycle: *mut ngx::ffi::ngx_cycle_t) {
    for &(orig, w) in &mc.wrappers {
        (*w).log_level = head_level((*orig).log_level);
        (*w).file = (*orig).file;
    }
    // Listening sockets copied the server's head into ls->log before init_module.
    let ls = &(*cycle).listening;
    if ls.elts.is_null() {
        return;
    }
    let listening =
        core::slice::from_raw_parts_mut(ls.elts as *mut ngx::ffi::ngx_listening_t, ls.nelts);
    for l in listening {
        if let Some(&(_, w)) = mc.wrappers.iter().find(|(_, w)| *w == l.logp) {
            l.log.log_level = (*w).log_level;
            l.log.file = (*w).file;
        }
    }
}

/// `ngx_log_t.writer` of the tap node.
pub unsafe extern "C" fn tap_writer(
    log: *mut ngx_log_t,
    level: ngx_uint_t,
    buf: *mut u_char,
    len: usize,
) {
    // Upstream failures are logged at error, crit or alert; skip everything else
    // (debug lines included) before any work.
    if level > NGX_LOG_ERR as ngx_uint_t || buf.is_null() {
        return;
    }
    if IN_TAP.swap(true, Ordering::Acquire) {
        return;
    }
    guard((), || {
        tap(log, level, core::slice::from_raw_parts(buf, len))
    });
    IN_TAP.store(false, Ordering::Release);
}

unsafe fn tap(log: *mut ngx_log_t, level: ngx_uint_t, line: &[u8]) {
    let handler = (*log).handler.map_or(0, |h| h as usize);
    if handler == 0 || handler != HTTP_LOG_HANDLER.load(Ordering::Relaxed) {
        return;
    }
    let ctx = (*log).data as *mut ngx_http_log_ctx_t;
    if ctx.is_null() || (*ctx).request.is_null() {
        return;
    }
    let r = if (*ctx).current_request.is_null() {
        (*ctx).request
    } else {
        (*ctx).current_request
    };
    // Records describe main requests; a subrequest's upstream has its own states.
    if r != (*r).main {
        return;
    }
    let u = (*r).upstream;
    if u.is_null() {
        return;
    }
    let Some(prefix) = split_prefix(line) else {
        return;
    };
    let action = if (*log).action.is_null() {
        None
    } else {
        Some(CStr::from_ptr((*log).action).to_bytes())
    };
    let Some(parsed) = classify(prefix.rest, action) else {
        return;
    };
    let Some(level) = Level::from_ngx(level) else {
        return;
    };
    let Some(capture) = capture_of(r, true) else {
        return;
    };

    match parsed {
        UpstreamLine::FastcgiStderr { text, truncated } => capture.set_stderr(text, truncated),
        UpstreamLine::Failure(f) => {
            let states = (*r).upstream_states;
            let attempt = if states.is_null() || (*states).nelts == 0 {
                None
            } else {
                Some((*states).nelts - 1)
            };
            let phase = derive_phase(f.event, f.send_side, conn_state(u));
            capture.push(TapEvent {
                attempt,
                event: f.event,
                phase,
                level,
                errno: f.errno,
                error: f.error.map(lossless_text),
                message: lossless_text(f.message),
            });
        }
    }
}

unsafe fn conn_state(u: *mut ngx::ffi::ngx_http_upstream_t) -> ConnState {
    let mut s = ConnState {
        request_sent: (*u).request_sent() != 0,
        header_sent: (*u).header_sent() != 0,
        ..ConnState::default()
    };
    let state = (*u).state;
    s.connect_time_set = !state.is_null() && (*state).connect_time != ngx_msec_t::MAX;
    let pc = (*u).peer.connection;
    if !pc.is_null() {
        s.connected = true;
        s.ssl = !(*pc).ssl.is_null();
        if !(*pc).read.is_null() {
            s.read_timedout = (*(*pc).read).timedout() != 0;
        }
        if !(*pc).write.is_null() {
            s.write_timedout = (*(*pc).write).timedout() != 0;
        }
    }
    s
}
