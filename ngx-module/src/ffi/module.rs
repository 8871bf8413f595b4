//! The module table NGINX loads, its hooks, and the two phase handlers.

use core::ffi::{c_char, c_void};
use core::mem::offset_of;
use core::ptr::{self, addr_of, addr_of_mut};

use ngx::core::{Status, NGX_CONF_ERROR, NGX_CONF_OK};
use ngx::http::{HttpModule, HttpModuleLocationConf, HttpModuleMainConf, NgxHttpCoreModule};
use ngx::ngx_string;

use ngx::ffi::{
    ngx_array_push, ngx_command_t, ngx_conf_log_error, ngx_conf_set_flag_slot, ngx_conf_t,
    ngx_cycle_t, ngx_http_core_main_conf_t, ngx_http_get_variable_index, ngx_http_handler_pt,
    ngx_http_module_t, ngx_http_phases_NGX_HTTP_LOG_PHASE,
    ngx_http_phases_NGX_HTTP_POST_READ_PHASE, ngx_http_request_t, ngx_http_variable_t, ngx_int_t,
    ngx_module_t, NGX_CONF_1MORE, NGX_CONF_FLAG, NGX_CONF_NOARGS, NGX_HTTP_LOC_CONF,
    NGX_HTTP_LOC_CONF_OFFSET, NGX_HTTP_MAIN_CONF, NGX_HTTP_MAIN_CONF_OFFSET, NGX_HTTP_MODULE,
    NGX_HTTP_SRV_CONF, NGX_LOG_EMERG,
};

use super::conf::{cmd_gatelog, create_loc_conf, merge_loc, LocConf, MainConf};
use super::destination::exit_process as exit_syslog;
use super::file::{exit_process as exit_files, retire_old_files};
use super::metrics::{cmd_metrics, cmd_metrics_status, table_of};
use super::request_state::with_record;
use super::tap::{learn_http_log_handler, refresh, wrap};
use super::variables::add_variables;
use super::{bytes, guard, pool_box};
use crate::metrics::count_line_cached;

const NGX_OK: ngx_int_t = Status::NGX_OK.0;
const NGX_ERROR: ngx_int_t = Status::NGX_ERROR.0;
const NGX_DECLINED: ngx_int_t = Status::NGX_DECLINED.0;
/// The capacity of the per-worker record buffer kept between records.
const LINE_BUFFER_KEPT: usize = 64 * 1024;

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
        name: ngx_string!("gatelog"),
        type_: CONTEXTS | NGX_CONF_1MORE as usize,
        set: Some(cmd_gatelog),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: 0,
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx_string!("gatelog_recovered"),
        type_: CONTEXTS | NGX_CONF_FLAG as usize,
        set: Some(ngx_conf_set_flag_slot),
        conf: NGX_HTTP_LOC_CONF_OFFSET,
        offset: offset_of!(LocConf, recovered),
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx_string!("gatelog_metrics"),
        type_: (NGX_HTTP_MAIN_CONF | NGX_CONF_1MORE) as usize,
        set: Some(cmd_metrics),
        conf: NGX_HTTP_MAIN_CONF_OFFSET,
        offset: 0,
        post: ptr::null_mut(),
    },
    ngx_command_t {
        name: ngx_string!("gatelog_metrics_status"),
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

/// The module as the `ngx` crate's configuration accessors know it: its main and
/// location confs are this crate's [`MainConf`] and [`LocConf`].
pub struct Gatelog;

impl HttpModule for Gatelog {
    fn module() -> &'static ngx_module_t {
        // SAFETY: NGINX writes the module's indices while it loads the configuration,
        // before any accessor runs; afterwards the table is only read.
        unsafe { &*addr_of!(ngx_http_gatelog_module) }
    }
}

// SAFETY: create_main_conf makes a MainConf; create_loc_conf makes a LocConf.
unsafe impl HttpModuleMainConf for Gatelog {
    type MainConf = MainConf;
}

// SAFETY: as above.
unsafe impl HttpModuleLocationConf for Gatelog {
    type LocationConf = LocConf;
}

/// This module's index among the HTTP modules (`ffi/metrics.rs` reads confs by it).
pub(super) fn http_ctx_index() -> usize {
    Gatelog::module().ctx_index
}

/// This module's main conf for the configuration being parsed.
///
/// # Safety
/// `cf` is a configuration inside http{}.
unsafe fn main_conf(cf: *mut ngx_conf_t) -> Option<&'static mut MainConf> {
    // SAFETY: the caller guarantees `cf`; in http{} its ctx is an ngx_http_conf_ctx_t.
    Gatelog::main_conf_mut(unsafe { &*cf })
}

/// # Safety
/// `r` is a live request.
pub unsafe fn main_conf_of_request(r: *mut ngx_http_request_t) -> Option<&'static MainConf> {
    // SAFETY: the caller guarantees `r`.
    Gatelog::main_conf(unsafe { &*r })
}

/// # Safety
/// `r` is a live request.
pub unsafe fn loc_conf_of_request(r: *mut ngx_http_request_t) -> Option<&'static LocConf> {
    // SAFETY: the caller guarantees `r`.
    Gatelog::location_conf(unsafe { &*r })
}

/// # Safety
/// NGINX's preconfiguration contract: the configuration being parsed.
unsafe extern "C" fn preconfiguration(cf: *mut ngx_conf_t) -> ngx_int_t {
    guard(NGX_ERROR, || {
        // SAFETY: NGINX calls preconfiguration with the configuration being parsed.
        unsafe { add_variables(cf) }
    })
}

/// # Safety
/// NGINX's create_main_conf contract: the configuration being parsed.
unsafe extern "C" fn create_main_conf(cf: *mut ngx_conf_t) -> *mut c_void {
    guard(ptr::null_mut(), || {
        // SAFETY: cf and its pool are valid during parsing.
        unsafe {
            let mc = MainConf {
                metrics_zone: ptr::null_mut(),
                metrics_status_used: false,
                wrappers: Vec::new(),
                request_id_index: -1,
                line_buffer: core::cell::Cell::new(Vec::new()),
                slot_cache: core::cell::Cell::default(),
            };
            pool_box((*cf).pool, mc).cast()
        }
    })
}

/// # Safety
/// NGINX's merge contract: the configuration being parsed and two `LocConf`s this module made.
unsafe extern "C" fn merge_loc_conf(
    cf: *mut ngx_conf_t,
    prev: *mut c_void,
    conf: *mut c_void,
) -> *mut c_char {
    guard(NGX_CONF_ERROR, || {
        // SAFETY: NGINX passes the parent and child confs this module created and the conf being
        // merged; the core module's location conf of that level is set.
        unsafe {
            merge_loc(prev as *mut LocConf, conf as *mut LocConf);
            // The core module has merged every location before this (later) module runs,
            // so clcf->error_log is final here; cf->ctx is the location being merged.
            let clcf = NgxHttpCoreModule::location_conf_mut(&*cf);
            if let (Some(mc), Some(clcf)) = (main_conf(cf), clcf) {
                clcf.error_log = wrap(cf, mc, clcf.error_log);
            }
            NGX_CONF_OK
        }
    })
}

/// # Safety
/// NGINX's postconfiguration contract: the parsed http{} configuration.
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
            let Some(cmcf) = NgxHttpCoreModule::main_conf_mut(&*cf) else {
                return NGX_ERROR;
            };
            // $request_id costs 16 bytes from OpenSSL's DRBG per request (most of a
            // record's cost in a 502 storm) and only helps where something else carries
            // it too (log_format, proxy_set_header, fastcgi_param...): include it only
            // when the configuration already indexed it.
            mc.request_id_index = if variable_is_used(cmcf, b"request_id") {
                let mut name = ngx_string!("request_id");
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
                let h = ngx_array_push(&mut cmcf.phases[phase as usize].handlers)
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
unsafe fn variable_is_used(cmcf: &ngx_http_core_main_conf_t, name: &[u8]) -> bool {
    // SAFETY: the variables array holds ngx_http_variable_t (as_slice checks emptiness).
    let vars = unsafe { cmcf.variables.as_slice::<ngx_http_variable_t>() };
    vars.iter()
        // SAFETY: each variable's name is configuration memory.
        .any(|v| unsafe { bytes(&v.name) }.eq_ignore_ascii_case(name))
}

/// # Safety
/// NGINX's init_module contract: the cycle being initialised.
unsafe extern "C" fn init_module(cycle: *mut ngx_cycle_t) -> ngx_int_t {
    guard(NGX_ERROR, || {
        // SAFETY: NGINX calls init_module with the cycle being initialised; its conf_ctx and the
        // http conf are checked for NULL.
        unsafe {
            // Before NGINX closes the replaced cycle's files (reload).
            retire_old_files(cycle);
            if (*cycle).conf_ctx.is_null() {
                return NGX_OK;
            }
            // None without an http{} block.
            if let Some(mc) = Gatelog::main_conf(&*cycle) {
                refresh(mc, cycle);
            }
            NGX_OK
        }
    })
}

/// A worker (or the single process) exits: buffered records are written and the
/// records lost on write errors are reported.
///
/// # Safety
/// NGINX's exit_process contract: the process's cycle (not read).
unsafe extern "C" fn exit_process(_cycle: *mut ngx_cycle_t) {
    guard((), || {
        exit_files();
        exit_syslog();
    })
}

/// Learns NGINX's HTTP log handler; does nothing else.
///
/// # Safety
/// NGINX's phase handler contract: a live request.
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
///
/// # Safety
/// NGINX's phase handler contract: a live request.
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
            let Some(mc) = main_conf_of_request(r) else {
                return NGX_OK;
            };
            let destinations = lc.destinations();
            // Zones stay mapped for a worker's lifetime; the zone is this request's cycle's.
            let metrics = table_of(mc.metrics_zone);
            if destinations.is_empty() && metrics.is_none() {
                return NGX_OK;
            }
            with_record(r, lc.recovered == 1, |record| {
                // One buffer per worker (the main conf is this process's copy), reused
                // for every record: no allocation once it has grown to a record's size.
                let mut line = mc.line_buffer.take();
                line.clear();
                record.write(&mut line);
                for destination in destinations {
                    destination.write(&line);
                }
                // A record is a few hundred bytes; an exceptional one (a huge URI) does
                // not keep its memory for the worker's lifetime.
                if line.capacity() <= LINE_BUFFER_KEPT {
                    mc.line_buffer.set(line);
                }
                if let Some((table, _)) = metrics {
                    // Counted from the same attempts; a label set this worker counted
                    // recently goes straight to its slot, others get their keys written
                    // from the borrowed line (no owned copy of the record).
                    let mut cache = mc.slot_cache.take();
                    count_line_cached(&table, &mut cache, record);
                    mc.slot_cache.set(cache);
                }
            });
            NGX_OK
        }
    })
}
