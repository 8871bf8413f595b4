//! Everything that touches NGINX structures. Each `extern "C"` function NGINX calls
//! goes through [`guard`], so a panic can never unwind into C. Every unsafe operation
//! sits in an `unsafe` block that says why it is sound (`// SAFETY:`), also inside
//! `unsafe fn`s.

#![deny(clippy::undocumented_unsafe_blocks)]

mod capture_memory;
mod conf;
mod destination;
mod file;
mod live;
mod metrics;
mod module;
mod request_state;
mod tap;
mod variables;

use core::panic::AssertUnwindSafe;

/// Runs `f`, turning a panic into `fallback`. Panics are bugs; NGINX must survive them.
pub(crate) fn guard<R>(fallback: R, f: impl FnOnce() -> R) -> R {
    std::panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or(fallback)
}

/// The bytes of an `ngx_str_t` (empty for a NULL data pointer).
///
/// # Safety
/// `s.data` must be NULL or point to `s.len` readable bytes that outlive the result.
pub(crate) unsafe fn bytes<'a>(s: &ngx::ffi::ngx_str_t) -> &'a [u8] {
    if s.data.is_null() || s.len == 0 {
        &[]
    } else {
        // SAFETY: the caller guarantees s.len readable bytes at s.data.
        unsafe { core::slice::from_raw_parts(s.data, s.len) }
    }
}

/// Moves `value` into `pool`; it is dropped when the pool is destroyed. NULL when the
/// pool is out of memory (then `value` is dropped at once).
///
/// # Safety
/// `pool` must be a valid pool; the result must not be used after its destruction.
pub(crate) unsafe fn pool_box<T>(pool: *mut ngx::ffi::ngx_pool_t, value: T) -> *mut T {
    // ngx_palloc aligns to NGX_ALIGNMENT (a word).
    const { assert!(core::mem::align_of::<T>() <= core::mem::size_of::<usize>()) };
    // SAFETY: the caller guarantees `pool`.
    let p = unsafe { ngx::ffi::ngx_palloc(pool, core::mem::size_of::<T>()) } as *mut T;
    if p.is_null() {
        return core::ptr::null_mut();
    }
    // SAFETY: as above.
    let cln = unsafe { ngx::ffi::ngx_pool_cleanup_add(pool, 0) };
    if cln.is_null() {
        return core::ptr::null_mut();
    }
    // SAFETY: `p` is fresh, aligned pool memory of size_of::<T>() bytes; the cleanup
    // drops it exactly once, when the pool is destroyed.
    unsafe {
        p.write(value);
        (*cln).handler = Some(drop_in_pool::<T>);
        (*cln).data = p.cast();
    }
    p
}

/// # Safety
/// A pool cleanup: `data` is the value `pool_box` wrote, and NGINX runs it once.
unsafe extern "C" fn drop_in_pool<T>(data: *mut core::ffi::c_void) {
    guard((), || {
        // SAFETY: `data` is the value pool_box wrote, dropped only here.
        unsafe { core::ptr::drop_in_place(data as *mut T) }
    })
}

/// Logs a write report at alert on the current cycle's error log (see
/// `crate::delivery`): `call` is the system call, `target` what it writes to.
pub(crate) fn log_report(report: Option<crate::delivery::Report>, call: &str, target: &str) {
    let Some(report) = report else {
        return;
    };
    // SAFETY: ngx_cycle is this process's current cycle; its log is valid while it is
    // current.
    let log = unsafe { (*ngx::ffi::ngx_cycle).log };
    // SAFETY: checked for NULL first.
    if log.is_null() || unsafe { (*log).log_level } < ngx::ffi::NGX_LOG_ALERT as usize {
        return;
    }
    let text = report.text(call, target, strerror);
    let Ok(text) = std::ffi::CString::new(text.replace('\0', "\\0")) else {
        return;
    };
    // SAFETY: "%s" with one NUL-terminated string that outlives the call.
    unsafe {
        ngx::ffi::ngx_log_error_core(
            ngx::ffi::NGX_LOG_ALERT as _,
            log,
            0,
            c"%s".as_ptr(),
            text.as_ptr(),
        )
    };
}

/// The text of an errno, as NGINX prints it after `errno: `.
pub(crate) fn strerror(e: i32) -> String {
    let s = std::io::Error::from_raw_os_error(e).to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_owned(),
        None => s,
    }
}
