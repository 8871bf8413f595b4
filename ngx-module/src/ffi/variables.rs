//! `$gatelog_json`, `$gatelog_failed`, `$gatelog_errno`, `$gatelog_phase`: the same
//! record, for composition with log_format/access_log (e.g. `if=$gatelog_failed`).

#![deny(unsafe_op_in_unsafe_fn)]

use ngx::ffi::{
    ngx_conf_t, ngx_http_add_variable, ngx_http_request_t, ngx_int_t, ngx_pnalloc, ngx_str_t,
    ngx_variable_value_t, NGX_HTTP_VAR_NOCACHEABLE,
};

use super::guard;
use super::module::loc_conf_of_request;
use super::request_state::record_for;

const NGX_OK: ngx_int_t = 0;
const NGX_ERROR: ngx_int_t = -1;

const JSON: usize = 0;
const FAILED: usize = 1;
const ERRNO: usize = 2;
const PHASE: usize = 3;

/// # Safety
/// Called from preconfiguration with the configuration being parsed.
pub unsafe fn add_variables(cf: *mut ngx_conf_t) -> ngx_int_t {
    for (name, which) in [
        (&b"gatelog_json"[..], JSON),
        (b"gatelog_failed", FAILED),
        (b"gatelog_errno", ERRNO),
        (b"gatelog_phase", PHASE),
    ] {
        let mut n = ngx_str_t {
            len: name.len(),
            data: name.as_ptr() as *mut u8,
        };
        // SAFETY: NGINX copies the name into the configuration; cf is valid.
        let v = unsafe { ngx_http_add_variable(cf, &mut n, NGX_HTTP_VAR_NOCACHEABLE as _) };
        if v.is_null() {
            return NGX_ERROR;
        }
        // SAFETY: `v` is the variable NGINX just made (non-NULL).
        unsafe {
            (*v).get_handler = Some(get_variable);
            (*v).data = which;
        }
    }
    NGX_OK
}

unsafe extern "C" fn get_variable(
    r: *mut ngx_http_request_t,
    v: *mut ngx_variable_value_t,
    which: usize,
) -> ngx_int_t {
    guard(NGX_ERROR, || {
        // SAFETY: NGINX calls a variable's handler with a live request and value.
        let main = unsafe { (*r).main };
        // SAFETY: as above; the request's confs are set.
        let recovered = unsafe { loc_conf_of_request(r) }.is_some_and(|lc| lc.recovered == 1);
        // SAFETY: `main` is the request's main request, alive as long as `r`.
        let built = unsafe { record_for(main, recovered) };
        let value: Option<Vec<u8>> = built.and_then(|b| match which {
            JSON => Some(b.json.strip_suffix(b"\n").unwrap_or(&b.json).to_vec()),
            FAILED => Some(b"1".to_vec()),
            ERRNO => b.last_errno.map(|e| e.to_string().into_bytes()),
            PHASE => b.last_phase.map(|p| p.slug().as_bytes().to_vec()),
            _ => None,
        });
        let Some(value) = value else {
            // SAFETY: `v` is the live value NGINX passed.
            unsafe { (*v).set_not_found(1) };
            return NGX_OK;
        };
        // The value must live as long as the request: copy it into the request pool.
        // SAFETY: allocating from the live request's pool.
        let p = unsafe { ngx_pnalloc((*r).pool, value.len().max(1)) } as *mut u8;
        if p.is_null() {
            return NGX_ERROR;
        }
        // SAFETY: `p` has room for value.len() bytes; `v` is the live value.
        unsafe {
            core::ptr::copy_nonoverlapping(value.as_ptr(), p, value.len());
            (*v).data = p;
            (*v).set_len(value.len() as _);
            (*v).set_valid(1);
            (*v).set_no_cacheable(1);
            (*v).set_not_found(0);
        }
        NGX_OK
    })
}
