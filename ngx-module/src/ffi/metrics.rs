//! The `gatelog_metrics` shared-memory zone and the `gatelog_metrics_status` content
//! handler: placing `crate::metrics`'s table in the zone and serving its rendering
//! (Prometheus text, or JSON with `?format=json`).
//!
//! The table is made once, in the zone's init when the zone is new; a reload with the
//! same name and size hands NGINX's old zone (and its counts) to the new cycle, whose
//! init then only adopts it. The request path never allocates in the zone.

#![deny(unsafe_op_in_unsafe_fn)]

use core::alloc::Layout;
use core::ffi::{c_char, c_void};
use core::ptr;
use core::sync::atomic::Ordering;

use ngx::allocator::Allocator;
use ngx::core::SlabPool;
use ngx::ffi::{
    ngx_alloc_chain_link, ngx_command_t, ngx_conf_log_error, ngx_conf_t, ngx_create_temp_buf,
    ngx_http_core_loc_conf_t, ngx_http_core_module, ngx_http_discard_request_body,
    ngx_http_output_filter, ngx_http_request_t, ngx_http_send_header, ngx_int_t, ngx_pagesize,
    ngx_parse_size, ngx_shared_memory_add, ngx_shm_zone_t, ngx_slab_pool_t, ngx_str_t,
    NGX_HTTP_BAD_REQUEST, NGX_HTTP_GET, NGX_HTTP_HEAD, NGX_HTTP_INTERNAL_SERVER_ERROR,
    NGX_HTTP_NOT_ALLOWED, NGX_LOG_EMERG,
};

use super::conf::MainConf;
use super::module::ngx_http_gatelog_module;
use super::{bytes, guard};
use crate::args::parse_metrics_zone;
use crate::metrics::{
    capacity_for, format_from_query, render_json, render_text, table_bytes, Format, Header, Slot,
    Table, MAGIC,
};

const NGX_OK: ngx_int_t = 0;
const NGX_ERROR: ngx_int_t = -1;
const CONF_OK: *mut c_char = ptr::null_mut();
const CONF_ERROR: *mut c_char = usize::MAX as *mut c_char;
const PLAIN_TEXT: &[u8] = b"text/plain; charset=utf-8";

/// # Safety
/// `cf` is the configuration being parsed.
unsafe fn directive_error(cf: *mut ngx_conf_t, directive: &str, msg: &str) -> *mut c_char {
    let text =
        std::ffi::CString::new(format!("\"{directive}\" directive: {msg}").replace('\0', ""))
            .unwrap_or_default();
    // SAFETY: "%s" with one NUL-terminated string; cf is valid (caller).
    unsafe { ngx_conf_log_error(NGX_LOG_EMERG as _, cf, 0, c"%s".as_ptr(), text.as_ptr()) };
    CONF_ERROR
}

/// `gatelog_metrics zone=NAME:SIZE;` (http).
pub unsafe extern "C" fn cmd_metrics(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    guard(CONF_ERROR, || {
        // SAFETY: NGINX calls a directive handler with the configuration being parsed (its args
        // hold the directive and its arguments) and, for an http-main directive, this module's
        // main conf.
        unsafe {
            let mc = &mut *(conf as *mut MainConf);
            let args_arr = (*cf).args;
            let elts = core::slice::from_raw_parts(
                (*args_arr).elts as *const ngx_str_t,
                (*args_arr).nelts,
            );
            if !mc.metrics_zone.is_null() {
                return directive_error(cf, "gatelog_metrics", "is duplicate");
            }
            let args: Vec<&[u8]> = elts[1..].iter().map(|s| bytes(s)).collect();
            let parse = |v: &[u8]| {
                let mut s = ngx_str_t {
                    len: v.len(),
                    data: v.as_ptr() as *mut u8,
                };
                usize::try_from(ngx_parse_size(&mut s)).ok()
            };
            let (name, size) = match parse_metrics_zone(&args, parse, 8 * ngx_pagesize) {
                Ok(v) => v,
                Err(msg) => return directive_error(cf, "gatelog_metrics", &msg),
            };
            // The name must outlive parsing: it points into cf->args, which NGINX keeps in
            // the cycle's pool, as for every other zone directive.
            let mut name = ngx_str_t {
                len: name.len(),
                data: name.as_ptr() as *mut u8,
            };
            let zone = ngx_shared_memory_add(
                cf,
                &mut name,
                size,
                ptr::addr_of_mut!(ngx_http_gatelog_module).cast(),
            );
            if zone.is_null() {
                // NGINX said why (same name, other size or other module).
                return CONF_ERROR;
            }
            if (*zone).init.is_some() {
                return directive_error(cf, "gatelog_metrics", "zone is already used");
            }
            (*zone).init = Some(init_zone);
            mc.metrics_zone = zone;
            CONF_OK
        }
    })
}

/// `gatelog_metrics_status;` (location): the location's content is the counters.
pub unsafe extern "C" fn cmd_metrics_status(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    _conf: *mut c_void,
) -> *mut c_char {
    guard(CONF_ERROR, || {
        // SAFETY: in a location, cf->ctx is that location's http conf ctx, holding the core
        // module's location conf; NGINX reads clcf->handler for the content phase.
        unsafe {
            let ctx = (*cf).ctx as *mut ngx::ffi::ngx_http_conf_ctx_t;
            let clcf = *(*ctx).loc_conf.add(ngx_http_core_module.ctx_index)
                as *mut ngx_http_core_loc_conf_t;
            let mc = *(*ctx).main_conf.add(super::module::http_ctx_index()) as *mut MainConf;
            if clcf.is_null() || mc.is_null() {
                return CONF_ERROR;
            }
            (*clcf).handler = Some(status_handler);
            (*mc).metrics_status_used = true;
            CONF_OK
        }
    })
}

/// Makes the table in a new zone, or adopts the old cycle's (reload).
unsafe extern "C" fn init_zone(zone: *mut ngx_shm_zone_t, data: *mut c_void) -> ngx_int_t {
    guard(NGX_ERROR, || {
        // SAFETY: NGINX calls a zone's init once per cycle in the master (or single process),
        // with the zone mapped and slab-initialised, and `data` the same zone's data in the old
        // cycle (NULL when new), which is a table this function made.
        unsafe {
            if !data.is_null() {
                (*zone).data = data;
                return NGX_OK;
            }
            let Some(pool) = SlabPool::from_shm_zone(&*zone) else {
                return NGX_ERROR;
            };
            let sp = (*zone).shm.addr as *mut ngx_slab_pool_t;
            // All free pages, in one allocation: the zone is fresh, its pages contiguous.
            let mut pages = (*sp).pfree;
            let table = loop {
                let cap = capacity_for(pages * ngx_pagesize);
                if cap == 0 {
                    return NGX_ERROR;
                }
                let Ok(layout) = Layout::from_size_align(table_bytes(cap), 64) else {
                    return NGX_ERROR;
                };
                if let Ok(p) = pool.allocate_zeroed(layout) {
                    break (p.as_ptr() as *mut u8, cap);
                }
                pages -= 1;
            };
            let header = &*(table.0 as *const Header);
            header.capacity.store(table.1 as u64, Ordering::Relaxed);
            header.magic.store(MAGIC, Ordering::Release);
            (*sp).data = table.0.cast();
            (*zone).data = table.0.cast();
            NGX_OK
        }
    })
}

/// The table of a zone this module initialised.
///
/// # Safety
/// `zone` is NULL or a zone of the configuration serving the caller, in a worker (or the
/// single process), where zones stay mapped for the process's lifetime.
pub unsafe fn table_of(zone: *const ngx_shm_zone_t) -> Option<(Table<'static>, u64)> {
    // SAFETY: as the caller guarantees; `data` is NULL or the table init_zone laid out
    // (header, then `capacity` zeroed-then-claimed slots, all atomics).
    unsafe {
        let zone = zone.as_ref()?;
        let p = zone.data as *const u8;
        if p.is_null() {
            return None;
        }
        let header = &*(p as *const Header);
        if header.magic.load(Ordering::Acquire) != MAGIC {
            return None;
        }
        let cap = header.capacity.load(Ordering::Relaxed) as usize;
        let slots = core::slice::from_raw_parts(p.add(size_of::<Header>()) as *const Slot, cap);
        Some((Table::new(header, slots), zone.shm.size as u64))
    }
}

/// Serves the counters: Prometheus text, or JSON for `?format=json`; 400 (saying which
/// formats there are) for another `format`.
unsafe extern "C" fn status_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    guard(NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t, || {
        // SAFETY: NGINX calls a content handler with a live request, whose args and main
        // conf are valid for its lifetime.
        unsafe {
            if (*r).method & (NGX_HTTP_GET | NGX_HTTP_HEAD) as usize == 0 {
                return NGX_HTTP_NOT_ALLOWED as ngx_int_t;
            }
            let rc = ngx_http_discard_request_body(r);
            if rc != NGX_OK {
                return rc;
            }
            let format = match format_from_query(bytes(&(*r).args)) {
                Ok(f) => f,
                Err(msg) => return send(r, NGX_HTTP_BAD_REQUEST as usize, PLAIN_TEXT, &msg),
            };
            let zone = super::module::main_conf_of_request(r)
                .map_or(ptr::null_mut(), |mc| mc.metrics_zone);
            let Some((table, zone_bytes)) = table_of(zone) else {
                return NGX_HTTP_INTERNAL_SERVER_ERROR as ngx_int_t;
            };
            // One snapshot, whichever rendering.
            let snap = table.snapshot();
            let body = match format {
                Format::Text => render_text(&snap, zone_bytes),
                Format::Json => render_json(&snap, zone_bytes),
            };
            send(r, 200, format.content_type(), &body)
        }
    })
}

/// Sends `body` as the whole response (headers only for HEAD).
///
/// # Safety
/// `r` is a live request in its content handler; `content_type` is static.
unsafe fn send(
    r: *mut ngx_http_request_t,
    status: usize,
    content_type: &'static [u8],
    body: &str,
) -> ngx_int_t {
    // SAFETY: as the caller guarantees; the buffer and chain are allocated from the
    // request's pool and live until it is finalized.
    unsafe {
        let h = &mut (*r).headers_out;
        h.status = status;
        h.content_type_len = content_type.len();
        h.content_type = ngx_str_t {
            len: content_type.len(),
            data: content_type.as_ptr() as *mut u8,
        };
        h.content_length_n = body.len() as i64;
        if (*r).method & NGX_HTTP_HEAD as usize != 0 {
            (*r).set_header_only(1);
        }
        let rc = ngx_http_send_header(r);
        if rc == NGX_ERROR || rc > NGX_OK || (*r).header_only() != 0 {
            return rc;
        }
        let b = ngx_create_temp_buf((*r).pool, body.len());
        let out = ngx_alloc_chain_link((*r).pool);
        if b.is_null() || out.is_null() {
            return NGX_ERROR;
        }
        ptr::copy_nonoverlapping(body.as_ptr(), (*b).last, body.len());
        (*b).last = (*b).last.add(body.len());
        if r == (*r).main {
            (*b).set_last_buf(1);
        }
        (*b).set_last_in_chain(1);
        (*out).buf = b;
        (*out).next = ptr::null_mut();
        ngx_http_output_filter(r, out)
    }
}
