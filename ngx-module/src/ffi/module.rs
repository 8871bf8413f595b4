//! The module table NGINX loads, its hooks, and the two phase handlers.

#![deny(unsafe_op_in_unsafe_fn)]

use core::ffi::{c_char, c_void};
use core::ptr::{self, addr_of, addr_of_mut};

use ngx::ffi::{
    ngx_array_push, ngx_command_t, ngx_conf_log_error, ngx_conf_set_flag_slot, ngx_conf_t,
    ngx_cycle_t, ngx_http_conf_ctx_t, ngx_http_core_loc_conf_t, ngx_http_core_main_conf_t,
    ngx_http_core_module, ngx_http_get_variable_index, ngx_http_handler_pt, ngx_http_module,
    ngx_http_module_t, ngx_http_phases_NGX_HTTP_LOG_PHASE,
    ngx_http_phases_NGX_HTTP_POST_READ_PHASE, ngx_http_request_t, ngx_http_variable_t, ngx_int_t,
    ngx_module_t, ngx_str_t, NGX_CONF_1MORE, NGX_CONF_FLAG, NGX_CONF_NOARGS, NGX_HTTP_LOC_CONF,
    NGX_HTTP_LOC_CONF_OFFSET, NGX_HTTP_MAIN_CONF, NGX_HTTP_MAIN_CONF_OFFSET, NGX_HTTP_MODULE,
    NGX_HTTP_SRV_CONF, NGX_LOG_EMERG,
};

use super::conf::{cmd_gatelog, create_loc_conf, merge_loc, recovered_offset, LocConf, MainConf};
use super::destination::exit_process as exit_syslog;
use super::file::{exit_process as exit_files, retire_old_files};
use super::metrics::{cmd_metrics, cmd_metrics_status, table_of};
use super::request_state::record_for;
use super::tap::{learn_http_log_handler, refresh, wrap};
use super::variables::add_variables;
use super::{bytes, guard};

const NGX_OK: ngx_int_t = 0;
const NGX_ERROR: ngx_int_t = -1;
const NGX_DECLINED: ngx_int_t = -5;
const CONF_ERROR: *mut c_char = usize::MAX as *mut c_char;

static NGX_HTTP_GATELOG_CTX: ngx_http_module_t = ngx_http_module_t {
    preconfiguration: Some(preconfiguration),
    postconfiguration: Some(postconfiguration),
    create_main_conf: Some(create_main_conf),
    init_main_conf: None,
    create_srv_conf: None,
    merge_srv_conf: None,
    create_loc_conf: Some(create_loc_conf),
    merge_loc_conf: Some(merge_loc_conf),
};

const CONTEXTS: usize = (NGX_HTTP_MAIN_CONF | NGX_HTTP_SRV_CONF | NGX_HTTP_LOC_CONF) as usize;

static mut NGX_HTTP_GATELOG_COMMANDS: [ngx_command_t; 5] = [
    ngx_command_t {
        name: ngx_str_t {
            len: 7,
            data: c"gatelog".as_ptr() as *mut u8,
        },
        type_: CONTEXTS | NGX_CONF_1MORE as usize,
        set: Some(cmd_gatelog),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: 0,
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx_str_t {
            len: 17,
            data: c"gatelog_recovered".as_ptr() as *mut u8,
        },
        type_: CONTEXTS | NGX_CONF_FLAG as usize,
        set: Some(ngx_conf_set_flag_slot),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: 0, // set in preconfiguration: offset_of! is not const-evaluable through the FFI type here
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx_str_t {
            len: 15,
            data: c"gatelog_metrics".as_ptr() as *mut u8,
        },
        type_: (NGX_HTTP_MAIN_CONF | NGX_CONF_1MORE) as usize,
        set: Some(cmd_metrics),
        conf: NGX_HTTP_MAIN_CONF_OFFSET,
        offset: 0,
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx_str_t {
            len: 22,
            data: c"gatelog_metrics_status".as_ptr() as *mut u8,
        },
        type_: (NGX_HTTP_LOC_CONF | NGX_CONF_NOARGS) as usize,
        set: Some(cmd_metrics_status),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: 0,
        post: ptr::null_mut(),
    },
    ngx_command_t::empty(),
];

#[used]
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static mut ngx_http_gatelog_module: ngx_module_t = ngx_module_t {
    ctx: addr_of!(NGX_HTTP_GATELOG_CTX) as *mut c_void,
    // SAFETY: only the address of the static command table is taken.
    commands: unsafe { addr_of_mut!(NGX_HTTP_GATELOG_COMMANDS[0]) },
    type_: NGX_HTTP_MODULE as usize,
    init_module: Some(init_module),
    exit_process: Some(exit_process),
    ..ngx_module_t::default()
};

// A cdylib built by cargo must carry NGINX's module table itself; a build through
// NGINX's `configure --add-dynamic-module` (ngx-module/config) links the table NGINX
// generates in C, and a second one would clash.
#[cfg(feature = "export-modules")]
ngx::ngx_modules!(ngx_http_gatelog_module);

pub(super) fn http_ctx_index() -> usize {
    ctx_index()
}

fn ctx_index() -> usize {
    // SAFETY: NGINX sets ctx_index when it loads the configuration; read only.
    unsafe { (*addr_of!(ngx_http_gatelog_module)).ctx_index }
}

/// # Safety
/// `cf` is the configuration being parsed.
unsafe fn conf_ctx(cf: *mut ngx_conf_t) -> *mut ngx_http_conf_ctx_t {
    // SAFETY: cf is valid (caller); in an http{} context its ctx is an ngx_http_conf_ctx_t.
    unsafe { (*cf).ctx as *mut ngx_http_conf_ctx_t }
}

/// This module's main conf for the configuration being parsed.
///
/// # Safety
/// `cf` is a configuration inside http{}.
unsafe fn main_conf(cf: *mut ngx_conf_t) -> Option<&'static mut MainConf> {
    // SAFETY: the http conf ctx holds one main conf pointer per HTTP module, ours at ctx_index.
    unsafe {
        let p = *(*conf_ctx(cf)).main_conf.add(ctx_index()) as *mut MainConf;
        p.as_mut()
    }
}

/// # Safety
/// `r` is a live request.
pub unsafe fn main_conf_of_request(r: *mut ngx_http_request_t) -> Option<&'static MainConf> {
    // SAFETY: a live request holds one main conf pointer per HTTP module, ours at ctx_index.
    unsafe {
        let p = *(*r).main_conf.add(ctx_index()) as *const MainConf;
        p.as_ref()
    }
}

/// # Safety
/// `r` is a live request.
pub unsafe fn loc_conf_of_request(r: *mut ngx_http_request_t) -> Option<&'static LocConf> {
    // SAFETY: a live request holds one location conf pointer per HTTP module, ours at ctx_index.
    unsafe {
        let p = *(*r).loc_conf.add(ctx_index()) as *const LocConf;
        p.as_ref()
    }
}

unsafe extern "C" fn preconfiguration(cf: *mut ngx_conf_t) -> ngx_int_t {
    guard(NGX_ERROR, || {
        // SAFETY: NGINX calls preconfiguration once per configuration, single-threaded, before
        // parsing directives: nothing reads the command table meanwhile; cf is valid.
        unsafe {
            NGX_HTTP_GATELOG_COMMANDS[1].offset = recovered_offset();
            add_variables(cf)
        }
    })
}

unsafe extern "C" fn create_main_conf(cf: *mut ngx_conf_t) -> *mut c_void {
    guard(ptr::null_mut(), || {
        // SAFETY: cf and its pool are valid during parsing.
        unsafe {
            let mc = MainConf {
                metrics_zone: ptr::null_mut(),
                metrics_status_used: false,
                wrappers: Vec::new(),
                request_id_index: -1,
            };
            ngx::core::Pool::from_ngx_pool((*cf).pool)
                .allocate(mc)
                .cast()
        }
    })
}

unsafe extern "C" fn merge_loc_conf(
    cf: *mut ngx_conf_t,
    prev: *mut c_void,
    conf: *mut c_void,
) -> *mut c_char {
    guard(CONF_ERROR, || {
        // SAFETY: NGINX passes the parent and child confs this module created and the conf being
        // merged; the core module's location conf of that level is set.
        unsafe {
            merge_loc(prev as *mut LocConf, conf as *mut LocConf);
            // The core module has merged every location before this (later) module runs,
            // so clcf->error_log is final here; cf->ctx is the location being merged.
            let clcf = *(*conf_ctx(cf)).loc_conf.add(ngx_http_core_module.ctx_index)
                as *mut ngx_http_core_loc_conf_t;
            if let (Some(mc), false) = (main_conf(cf), clcf.is_null()) {
                (*clcf).error_log = wrap(cf, mc, (*clcf).error_log);
            }
            ptr::null_mut()
        }
    })
}

unsafe extern "C" fn postconfiguration(cf: *mut ngx_conf_t) -> ngx_int_t {
    guard(NGX_ERROR, || {
        // SAFETY: cf is the parsed configuration; the core module's main conf and its phase arrays
        // exist at this point.
        unsafe {
            let Some(mc) = main_conf(cf) else {
                return NGX_ERROR;
            };
            if mc.metrics_status_used && mc.metrics_zone.is_null() {
                ngx_conf_log_error(
                    NGX_LOG_EMERG as _,
                    cf,
                    0,
                    c"\"gatelog_metrics_status\" directive: needs \"gatelog_metrics zone=NAME:SIZE\" in http{}".as_ptr(),
                );
                return NGX_ERROR;
            }
            let cmcf = *(*conf_ctx(cf))
                .main_conf
                .add(ngx_http_core_module.ctx_index)
                as *mut ngx_http_core_main_conf_t;
            // $request_id costs 16 bytes from OpenSSL's DRBG per request (most of a
            // record's cost in a 502 storm) and only helps where something else carries
            // it too (log_format, proxy_set_header, fastcgi_param...): include it only
            // when the configuration already indexed it.
            mc.request_id_index = if variable_is_used(cmcf, b"request_id") {
                let mut name = ngx_str_t {
                    len: 10,
                    data: c"request_id".as_ptr() as *mut u8,
                };
                ngx_http_get_variable_index(cf, &mut name)
            } else {
                -1
            };

            for (phase, handler) in [
                (
                    ngx_http_phases_NGX_HTTP_POST_READ_PHASE,
                    post_read_handler as unsafe extern "C" fn(_) -> _,
                ),
                (ngx_http_phases_NGX_HTTP_LOG_PHASE, log_handler),
            ] {
                let h = ngx_array_push(&mut (*cmcf).phases[phase as usize].handlers)
                    as *mut ngx_http_handler_pt;
                if h.is_null() {
                    return NGX_ERROR;
                }
                *h = Some(handler);
            }
            NGX_OK
        }
    })
}

/// Whether some directive already asked for variable `name` by index.
///
/// # Safety
/// `cmcf` is the core main conf of the configuration being parsed.
unsafe fn variable_is_used(cmcf: *mut ngx_http_core_main_conf_t, name: &[u8]) -> bool {
    // SAFETY: the variables array holds `nelts` ngx_http_variable_t (checked for NULL).
    unsafe {
        let vars = &(*cmcf).variables;
        if vars.elts.is_null() {
            return false;
        }
        let vars = core::slice::from_raw_parts(vars.elts as *const ngx_http_variable_t, vars.nelts);
        vars.iter()
            .any(|v| bytes(&v.name).eq_ignore_ascii_case(name))
    }
}

unsafe extern "C" fn init_module(cycle: *mut ngx_cycle_t) -> ngx_int_t {
    guard(NGX_ERROR, || {
        // SAFETY: NGINX calls init_module with the cycle being initialised; its conf_ctx and the
        // http conf are checked for NULL.
        unsafe {
            // Before NGINX closes the replaced cycle's files (reload).
            retire_old_files(cycle);
            let ctxs = (*cycle).conf_ctx;
            if ctxs.is_null() {
                return NGX_OK;
            }
            let http = *ctxs.add(ngx_http_module.index) as *mut ngx_http_conf_ctx_t;
            if http.is_null() {
                return NGX_OK; // no http{} block
            }
            let mc = *(*http).main_conf.add(ctx_index()) as *const MainConf;
            if let Some(mc) = mc.as_ref() {
                refresh(mc, cycle);
            }
            NGX_OK
        }
    })
}

/// A worker (or the single process) exits: buffered records are written and the
/// records lost on write errors are reported.
unsafe extern "C" fn exit_process(_cycle: *mut ngx_cycle_t) {
    guard((), || {
        exit_files();
        exit_syslog();
    })
}

/// Learns NGINX's HTTP log handler; does nothing else.
unsafe extern "C" fn post_read_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    guard(NGX_DECLINED, || {
        // SAFETY: NGINX calls phase handlers with a live request.
        unsafe {
            learn_http_log_handler(r);
            NGX_DECLINED
        }
    })
}

/// Writes the record of a request that ends with 502/504 after an upstream failure.
unsafe extern "C" fn log_handler(r: *mut ngx_http_request_t) -> ngx_int_t {
    guard(NGX_OK, || {
        // SAFETY: NGINX calls phase handlers with a live request; its confs and destinations belong to the
        // cycle serving it.
        unsafe {
            if r != (*r).main {
                return NGX_OK;
            }
            let Some(lc) = loc_conf_of_request(r) else {
                return NGX_OK;
            };
            let destinations = lc.destinations();
            // Zones stay mapped for a worker's lifetime; the zone is this request's cycle's.
            let metrics = main_conf_of_request(r).and_then(|mc| table_of(mc.metrics_zone));
            if destinations.is_empty() && metrics.is_none() {
                return NGX_OK;
            }
            if let Some(built) = record_for(r, lc.recovered == 1) {
                for destination in destinations {
                    destination.write(&built.json);
                }
                if let Some((table, _)) = metrics {
                    for key in built.tally.keys() {
                        table.add(&key, 1);
                    }
                }
            }
            NGX_OK
        }
    })
}
