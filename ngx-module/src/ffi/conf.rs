//! Configuration: the module's main and location confs and the `gatelog` directive.

use core::ffi::{c_char, c_void};
use core::ptr;

use ngx::ffi::{
    ngx_command_t, ngx_conf_log_error, ngx_conf_t, ngx_flag_t, ngx_int_t, ngx_log_t,
    ngx_parse_size, ngx_parse_time, ngx_pcalloc, ngx_str_t, ngx_syslog_peer_t,
    ngx_syslog_process_conf, ngx_uint_t, ngx_use_stderr, u_char, NGX_CONF_UNSET, NGX_LOG_DEBUG,
    NGX_LOG_EMERG,
};

use super::destination::{Destination, SyslogDestination};
use super::file;
use super::{bytes, guard, pool_box};
use crate::args::{conf_error_message, parse_target, syslog_error, Target};

use ngx::core::{NGX_CONF_ERROR as CONF_ERROR, NGX_CONF_OK as CONF_OK};

/// http{}-level state: the error_log wrappers made for this configuration cycle.
pub struct MainConf {
    /// The `gatelog_metrics` zone, NULL without one.
    pub metrics_zone: *mut ngx::ffi::ngx_shm_zone_t,
    /// Some location has `gatelog_metrics_status` (it needs the zone).
    pub metrics_status_used: bool,
    /// (original head, wrapper) for each distinct error_log chain a location uses.
    pub wrappers: Vec<(*mut ngx_log_t, *mut ngx_log_t)>,
    /// Index of `$request_id`.
    pub request_id_index: ngx_int_t,
    /// The buffer each record is written into before it goes to its destinations. Each
    /// worker has its own copy of the main conf, so this is one buffer per worker.
    pub line_buffer: core::cell::Cell<Vec<u8>>,
    /// The metrics slots this worker counted last (see `SlotCache`): per worker and
    /// per cycle, as the buffer above, so it belongs to this cycle's zone only.
    pub slot_cache: core::cell::Cell<crate::metrics::SlotCache>,
}

/// Per location, inherited like access_log.
#[repr(C)]
pub struct LocConf {
    /// `gatelog_recovered`, read by ngx_conf_set_flag_slot through its offset.
    pub recovered: ngx_flag_t,
    /// Where records go: every `gatelog` directive of this level (several may
    /// write the same record, as several access_log directives do). NULL for
    /// `gatelog off` and, before merging, when this level said nothing.
    pub destinations: *mut Vec<Destination>,
    /// This level has `gatelog` directives (or `gatelog off`).
    pub set: bool,
}

impl LocConf {
    pub fn destinations(&self) -> &[Destination] {
        // SAFETY: destinations is NULL or a pool-owned Vec living as long as the cycle.
        unsafe { self.destinations.as_ref().map_or(&[], |v| v.as_slice()) }
    }
}

/// # Safety
/// NGINX's create_loc_conf contract: the configuration being parsed.
pub unsafe extern "C" fn create_loc_conf(cf: *mut ngx_conf_t) -> *mut c_void {
    guard(ptr::null_mut(), || {
        // SAFETY: cf and its pool are valid during parsing; zeroed pool memory is then initialised field by field.
        unsafe {
            let lc = ngx_pcalloc((*cf).pool, core::mem::size_of::<LocConf>()) as *mut LocConf;
            if lc.is_null() {
                return ptr::null_mut();
            }
            (*lc).recovered = NGX_CONF_UNSET as ngx_flag_t;
            (*lc).destinations = ptr::null_mut();
            (*lc).set = false;
            lc.cast()
        }
    })
}

/// # Safety
/// `prev` and `conf` are location confs this module created.
pub unsafe fn merge_loc(prev: *mut LocConf, conf: *mut LocConf) {
    // SAFETY: both confs are valid (caller).
    unsafe {
        if !(*conf).set {
            (*conf).destinations = (*prev).destinations;
            (*conf).set = (*prev).set;
        }
        if (*conf).recovered == NGX_CONF_UNSET as ngx_flag_t {
            (*conf).recovered = if (*prev).recovered == NGX_CONF_UNSET as ngx_flag_t {
                0
            } else {
                (*prev).recovered
            };
        }
    }
}

/// `gatelog PATH [buffer=SIZE] [flush=TIME] | syslog:... | off;`
///
/// # Safety
/// NGINX's directive handler contract: the configuration being parsed and this level's `LocConf`.
pub unsafe extern "C" fn cmd_gatelog(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    guard(CONF_ERROR, || {
        // SAFETY: NGINX calls a directive handler with the configuration being parsed (its args array holds the directive and its arguments) and this level's conf, which this module created.
        unsafe {
            let lc = conf as *mut LocConf;
            let elts = (*(*cf).args).as_slice::<ngx_str_t>();
            let args: Vec<&[u8]> = elts[1..].iter().map(|s| bytes(s)).collect();

            let target = match parse_target(&args, parse_size, parse_time_ms) {
                Ok(t) => t,
                Err(msg) => return conf_error(cf, &msg),
            };
            let off = matches!(target, Target::Off);
            // `off` is a level's only word about gatelog; destinations may be several.
            if (*lc).set && (off || (*lc).destinations.is_null()) {
                return conf_error(
                    cf,
                    "\"off\" cannot be combined with other gatelog directives at the same level",
                );
            }
            let destination = match target {
                Target::Off => None,
                Target::Syslog(value) => {
                    let peer = ngx_pcalloc((*cf).pool, core::mem::size_of::<ngx_syslog_peer_t>())
                        as *mut ngx_syslog_peer_t;
                    if peer.is_null() {
                        return CONF_ERROR;
                    }
                    // NGINX's own parser reads cf->args[1], exactly as for access_log, and
                    // cuts it at its commas: keep the value for the message.
                    let value = value.to_vec();
                    let mut said = Vec::new();
                    // The parser reads cf->args only; cf and peer are valid.
                    let failed = capture_conf_errors(cf, &mut said, || {
                        !ngx_syslog_process_conf(cf, peer).is_null()
                    });
                    if failed {
                        let why = conf_error_message(&said);
                        return conf_error(cf, &syslog_error(&value, why.as_deref()));
                    }
                    let destination =
                        pool_box((*cf).pool, SyslogDestination::new(peer, (*cf).cycle));
                    if destination.is_null() {
                        return CONF_ERROR;
                    }
                    SyslogDestination::register(destination);
                    Some(Destination::Syslog(destination))
                }
                Target::File {
                    path,
                    buffer,
                    flush_ms,
                } => {
                    let shown = String::from_utf8_lossy(path).into_owned();
                    let rf = match file::open(cf, elts[1]) {
                        Ok(rf) => rf,
                        Err(e) => return conf_error(cf, &e),
                    };
                    if buffer > 0 {
                        if let Err(e) = file::set_buffer(cf, rf, buffer, flush_ms) {
                            return conf_error(cf, &format!("\"{shown}\" {e}"));
                        }
                    }
                    Some(Destination::File(rf))
                }
            };
            if let Some(destination) = destination {
                if (*lc).destinations.is_null() {
                    (*lc).destinations =
                        ngx::core::Pool::from_ngx_pool((*cf).pool).allocate(Vec::new());
                    if (*lc).destinations.is_null() {
                        return CONF_ERROR;
                    }
                }
                (*(*lc).destinations).push(destination);
            }
            (*lc).set = true;
            CONF_OK
        }
    })
}

/// Runs `f` with the configuration's error messages captured in `said` instead of
/// logged, so that `gatelog` can say them in its own words (naming the directive and the
/// value); nothing reaches the error log or the terminal meanwhile.
///
/// # Safety
/// `cf` is the configuration being parsed; `f` logs through `cf->log` only.
unsafe fn capture_conf_errors(
    cf: *mut ngx_conf_t,
    said: &mut Vec<u8>,
    f: impl FnOnce() -> bool,
) -> bool {
    // SAFETY: a zeroed ngx_log_t is a valid log node without file, handler or next; with
    // a writer NGINX hands it each formatted line and touches nothing else.
    let mut capture: ngx_log_t = unsafe { core::mem::zeroed() };
    capture.log_level = NGX_LOG_DEBUG as ngx_uint_t;
    capture.writer = Some(capture_writer);
    capture.wdata = (said as *mut Vec<u8>).cast();
    // SAFETY: cf->log and ngx_use_stderr are restored before returning; NGINX is
    // single-threaded while it parses the configuration. Without clearing
    // ngx_use_stderr NGINX would also print the message to the terminal (nginx -t).
    unsafe {
        let saved_log = (*cf).log;
        let saved_stderr = ngx_use_stderr;
        (*cf).log = &mut capture;
        ngx_use_stderr = 0;
        let failed = f();
        (*cf).log = saved_log;
        ngx_use_stderr = saved_stderr;
        failed
    }
}

/// `ngx_log_t.writer` of [`capture_conf_errors`]: keeps the first line.
///
/// # Safety
/// NGINX's `ngx_log_t.writer` contract, on the log made by `capture_conf_errors`.
unsafe extern "C" fn capture_writer(
    log: *mut ngx_log_t,
    _level: ngx_uint_t,
    buf: *mut u_char,
    len: usize,
) {
    guard((), || {
        // SAFETY: wdata is the Vec of capture_conf_errors, alive during the call; buf
        // holds len bytes of the formatted line.
        unsafe {
            let said = (*log).wdata as *mut Vec<u8>;
            if !said.is_null() && !buf.is_null() && (*said).is_empty() {
                (*said).extend_from_slice(core::slice::from_raw_parts(buf, len));
            }
        }
    })
}

fn parse_size(v: &[u8]) -> Option<usize> {
    let mut s = ngx_str_t {
        len: v.len(),
        data: v.as_ptr() as *mut u8,
    };
    // SAFETY: NGINX reads s.len bytes of the argument (which outlives the call).
    let n = unsafe { ngx_parse_size(&mut s) };
    usize::try_from(n).ok()
}

fn parse_time_ms(v: &[u8]) -> Option<u64> {
    let mut s = ngx_str_t {
        len: v.len(),
        data: v.as_ptr() as *mut u8,
    };
    // SAFETY: NGINX reads s.len bytes of the argument (which outlives the call).
    let n = unsafe { ngx_parse_time(&mut s, 0) };
    u64::try_from(n).ok()
}

/// Logs `"gatelog" directive <msg>` at emerg (NGINX appends the file and line).
///
/// # Safety
/// `cf` is the configuration being parsed.
unsafe fn conf_error(cf: *mut ngx_conf_t, msg: &str) -> *mut c_char {
    // SAFETY: a NUL-terminated message for "%s"; cf is valid (caller).
    unsafe {
        let text = std::ffi::CString::new(msg.replace('\0', "\\0")).unwrap_or_default();
        ngx_conf_log_error(
            NGX_LOG_EMERG as _,
            cf,
            0,
            c"\"gatelog\" directive: %s".as_ptr(),
            text.as_ptr(),
        );
        CONF_ERROR
    }
}
