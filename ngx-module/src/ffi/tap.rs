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

use gatelog_record::message::split_prefix;
use ngx::ffi::{
    ngx_conf_t, ngx_http_log_ctx_t, ngx_http_request_t, ngx_log_t, ngx_msec_t, ngx_pcalloc,
    ngx_uint_t, u_char, NGX_LOG_ERR,
};

use super::conf::MainConf;
use super::guard;
use super::request_state::capture_of;
use crate::attempt_phase::ConnState;
use crate::capture::{is_stderr, worth_keeping, TapLine};

/// `ngx_http_log_error` is static in NGINX; its address is learned from the first
/// request's connection log and identifies the logs whose `data` is an
/// `ngx_http_log_ctx_t`.
static HTTP_LOG_HANDLER: AtomicUsize = AtomicUsize::new(0);
/// Set while the tap runs: nothing it calls may log, but never re-enter if it does.
static IN_TAP: AtomicBool = AtomicBool::new(false);

/// Remembers the HTTP connection-log handler (called for every request).
///
/// # Safety
/// `r` is a live request.
pub unsafe fn learn_http_log_handler(r: *mut ngx_http_request_t) {
    if HTTP_LOG_HANDLER.load(Ordering::Relaxed) != 0 {
        return;
    }
    // SAFETY: a live request has a connection; its log is checked for NULL.
    unsafe {
        let c = (*r).connection;
        if c.is_null() || (*c).log.is_null() {
            return;
        }
        if let Some(h) = (*(*c).log).handler {
            HTTP_LOG_HANDLER.store(h as usize, Ordering::Relaxed);
        }
    }
}

fn is_tap(log: *const ngx_log_t) -> bool {
    let ours: unsafe extern "C" fn(*mut ngx_log_t, ngx_uint_t, *mut u_char, usize) = tap_writer;
    // SAFETY: callers pass log nodes of a configuration (non-NULL, checked by wrap).
    unsafe { (*log).writer.is_some_and(|w| w as usize == ours as usize) }
}

fn head_level(orig: ngx_uint_t) -> ngx_uint_t {
    orig.max(NGX_LOG_ERR as ngx_uint_t)
}

/// Returns the tap node that heads `orig`'s chain, making it once per chain.
///
/// # Safety
/// Called while merging locations, with `cf` valid and `orig` NULL or a log node of
/// this configuration.
pub unsafe fn wrap(cf: *mut ngx_conf_t, mc: &mut MainConf, orig: *mut ngx_log_t) -> *mut ngx_log_t {
    if orig.is_null() || is_tap(orig) {
        return orig;
    }
    if let Some(&(_, w)) = mc.wrappers.iter().find(|(o, _)| *o == orig) {
        return w;
    }
    // SAFETY: zeroed pool memory is a valid ngx_log_t; it lives as long as the cycle.
    let w = unsafe { ngx_pcalloc((*cf).pool, core::mem::size_of::<ngx_log_t>()) } as *mut ngx_log_t;
    if w.is_null() {
        return orig;
    }
    // SAFETY: `w` is the fresh node above, `orig` a valid node (caller).
    unsafe {
        (*w).writer = Some(tap_writer);
        (*w).wdata = ptr::null_mut();
        (*w).next = orig;
        (*w).file = (*orig).file;
        (*w).log_level = head_level((*orig).log_level);
    }
    mc.wrappers.push((orig, w));
    w
}

/// The main error_log can be set after http{} and default logs are opened after
/// parsing: copy the final level and file from each wrapped chain (init_module).
///
/// # Safety
/// `cycle` is the cycle being initialised and `mc` its main conf.
pub unsafe fn refresh(mc: &MainConf, cycle: *mut ngx::ffi::ngx_cycle_t) {
    for &(orig, w) in &mc.wrappers {
        // SAFETY: both nodes are pool memory of this cycle.
        unsafe {
            (*w).log_level = head_level((*orig).log_level);
            (*w).file = (*orig).file;
        }
    }
    // Listening sockets copied the server's head into ls->log before init_module.
    // SAFETY: the cycle's listening array holds ngx_listening_t.
    let listening = unsafe {
        (*cycle)
            .listening
            .as_slice_mut::<ngx::ffi::ngx_listening_t>()
    };
    for l in listening {
        if let Some(&(_, w)) = mc.wrappers.iter().find(|(_, w)| *w == l.logp) {
            // SAFETY: `w` is one of our nodes (pool memory of this cycle).
            unsafe {
                l.log.log_level = (*w).log_level;
                l.log.file = (*w).file;
            }
        }
    }
}

/// `ngx_log_t.writer` of the tap node.
///
/// # Safety
/// NGINX's `ngx_log_t.writer` contract: the log being written and `len` bytes at `buf`.
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
        // SAFETY: NGINX passes the formatted line (len bytes) and the log it is
        // writing through, both valid for the call.
        unsafe { tap(log, level, core::slice::from_raw_parts(buf, len)) }
    });
    IN_TAP.store(false, Ordering::Release);
}

/// # Safety
/// `log` is the log NGINX is writing `line` through (for HTTP connection logs, its
/// `data` is the request's `ngx_http_log_ctx_t`).
unsafe fn tap(log: *mut ngx_log_t, level: ngx_uint_t, line: &[u8]) {
    // SAFETY: `log` is valid (caller); only logs whose handler is NGINX's HTTP log
    // handler are read further, and for those `data` is an ngx_http_log_ctx_t whose
    // requests are alive while they log.
    let (r, action) = unsafe {
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
        let action = if (*log).action.is_null() {
            None
        } else {
            Some(CStr::from_ptr((*log).action).to_bytes())
        };
        (r, action)
    };
    // Records describe main requests; a subrequest's upstream has its own states.
    // SAFETY: `r` is a live request (above).
    let (main, u) = unsafe { ((*r).main, (*r).upstream) };
    if r != main || u.is_null() {
        return;
    }
    let Some(prefix) = split_prefix(line) else {
        return;
    };
    let rest = prefix.rest;
    let stderr = is_stderr(rest);
    if !stderr && !worth_keeping(rest) {
        return;
    }
    // SAFETY: `r` is a live main request; its upstream_states array, if any, holds nelts
    // states; `u` is its live upstream.
    let (home, attempt, conn) = unsafe {
        let Some(home) = capture_of(r, true) else {
            return;
        };
        let states = (*r).upstream_states;
        let attempt = if states.is_null() || (*states).nelts == 0 {
            None
        } else {
            Some((*states).nelts - 1)
        };
        (home, attempt, conn_state(u))
    };
    let kept = TapLine {
        attempt,
        level,
        conn,
        action,
        rest,
    };
    // SAFETY: the capture's lines live in its own memory, alive as long as the capture.
    unsafe {
        if stderr {
            home.capture.set_stderr(&mut home.memory, &kept);
        } else {
            home.capture.push(&mut home.memory, &kept);
        }
    }
}

/// # Safety
/// `u` is a live upstream.
unsafe fn conn_state(u: *mut ngx::ffi::ngx_http_upstream_t) -> ConnState {
    // SAFETY: `u` is valid (caller); its state and peer connection (and that
    // connection's events) are checked for NULL before use.
    unsafe {
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
}
