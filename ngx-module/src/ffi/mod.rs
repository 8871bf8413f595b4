//! Everything that touches NGINX structures. Each `extern "C"` function NGINX calls
//! goes through [`guard`], so a panic can never unwind into C.

mod conf;
mod module;
mod record;
mod sink;
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
        core::slice::from_raw_parts(s.data, s.len)
    }
}
