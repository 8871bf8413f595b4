//! `$gatelog_json`, `$gatelog_failed`, `$gatelog_errno`, `$gatelog_phase`: the same
//! record, for composition with log_format/access_log (e.g. `if=$gatelog_failed`).

use ngx::ffi::{
    ngx_conf_t, ngx_http_add_variable, ngx_http_request_t, ngx_int_t, ngx_pnalloc, ngx_str_t,
    ngx_variable_value_t, NGX_HTTP_VAR_NOCACHEABLE,
};

use super::guard;
use super::module::loc_conf_of_request;
use super::request_state::{last_failed, with_record};

const NGX_OK: ngx_int_t = ngx::core::Status::NGX_OK.0;
const NGX_ERROR: ngx_int_t = ngx::core::Status::NGX_ERROR.0;

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
            data: name.as_ptr().cast_mut(),
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

/// # Safety
/// NGINX's variable handler contract: a live request and its value slot.
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
        // The record is rebuilt for each lookup: NGINX's cached time does not move within
        // a request's log phase, so every lookup and the record line agree byte for byte.
        // SAFETY: `main` is the request's main request, alive as long as `r`.
        let value: Option<Vec<u8>> = unsafe {
            with_record(main, recovered, |record| match which {
                JSON => {
                    let mut json = Vec::with_capacity(1024);
                    record.write(&mut json);
                    json.pop(); // the newline
                    Some(json)
                }
                FAILED => Some(b"1".to_vec()),
                ERRNO => last_failed(record)
                    .and_then(|a| a.errno)
                    .map(|e| e.to_string().into_bytes()),
                PHASE => last_failed(record)
                    .and_then(|a| a.phase)
                    .map(|p| p.slug().as_bytes().to_vec()),
                _ => None,
            })
        }
        .flatten();
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
