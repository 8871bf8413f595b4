//! Configuration: the module's main and location confs and the `gatelog` directive.

use core::ffi::{c_char, c_void};
use core::ptr;

use ngx::ffi::{
    ngx_command_t, ngx_conf_log_error, ngx_conf_open_file, ngx_conf_t, ngx_event_t, ngx_flag_t,
    ngx_int_t, ngx_log_t, ngx_open_file_t, ngx_parse_size, ngx_parse_time, ngx_pcalloc, ngx_str_t,
    ngx_syslog_peer_t, ngx_syslog_process_conf, NGX_CONF_UNSET, NGX_LOG_EMERG,
};

use super::sink::{file_buffer_flush, FileBuffer, Sink};
use super::{bytes, guard};
use crate::args::{parse_target, Target};

const CONF_OK: *mut c_char = ptr::null_mut();
const CONF_ERROR: *mut c_char = usize::MAX as *mut c_char; // NGX_CONF_ERROR is (char *) -1

/// http{}-level state: the error_log wrappers made for this configuration cycle.
#[derive(Default)]
pub struct MainConf {
    /// (original head, wrapper) for each distinct error_log chain a location uses.
    pub wrappers: Vec<(*mut ngx_log_t, *mut ngx_log_t)>,
    /// Index of `$request_id`.
    pub request_id_index: ngx_int_t,
}

/// Per location, inherited like access_log.
#[repr(C)]
pub struct LocConf {
    /// `gatelog_recovered`, read by ngx_conf_set_flag_slot through its offset.
    pub recovered: ngx_flag_t,
    /// Where records go: every `gatelog` directive of this level (several may
    /// write the same record, as several access_log directives do). NULL for
    /// `gatelog off` and, before merging, when this level said nothing.
    pub sinks: *mut Vec<Sink>,
    /// This level has `gatelog` directives (or `gatelog off`).
    pub set: bool,
}

impl LocConf {
    pub fn sinks(&self) -> &[Sink] {
        // SAFETY: sinks is NULL or a pool-owned Vec living as long as the cycle.
        unsafe { self.sinks.as_ref().map_or(&[], |v| v.as_slice()) }
    }
}

pub fn recovered_offset() -> usize {
    core::mem::offset_of!(LocConf, recovered)
}

pub unsafe extern "C" fn create_loc_conf(cf: *mut ngx_conf_t) -> *mut c_void {
    guard(ptr::null_mut(), || {
        let lc = ngx_pcalloc((*cf).pool, core::mem::size_of::<LocConf>()) as *mut LocConf;
        if lc.is_null() {
            return ptr::null_mut();
        }
        (*lc).recovered = NGX_CONF_UNSET as ngx_flag_t;
        (*lc).sinks = ptr::null_mut();
        (*lc).set = false;
        lc.cast()
    })
}

pub unsafe fn merge_loc(prev: *mut LocConf, conf: *mut LocConf) {
    if !(*conf).set {
        (*conf).sinks = (*prev).sinks;
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

/// `gatelog PATH [buffer=SIZE] [flush=TIME] | syslog:... | off;`
pub unsafe extern "C" fn cmd_gatelog(
    cf: *mut ngx_conf_t,
    _cmd: *mut ngx_command_t,
    conf: *mut c_void,
) -> *mut c_char {
    guard(CONF_ERROR, || {
        let lc = conf as *mut LocConf;
        let args_arr = (*cf).args;
        let elts =
            core::slice::from_raw_parts((*args_arr).elts as *const ngx_str_t, (*args_arr).nelts);
        let args: Vec<&[u8]> = elts[1..].iter().map(|s| bytes(s)).collect();

        let target = match parse_target(&args, parse_size, parse_time_ms) {
            Ok(t) => t,
            Err(msg) => return conf_error(cf, &msg),
        };
        let off = matches!(target, Target::Off);
        // `off` is a level's only word about gatelog; destinations may be several.
        if (*lc).set && (off || (*lc).sinks.is_null()) {
            return conf_error(
                cf,
                "\"off\" cannot be combined with other gatelog directives at the same level",
            );
        }
        let sink = match target {
            Target::Off => None,
            Target::Syslog(_) => {
                let peer = ngx_pcalloc((*cf).pool, core::mem::size_of::<ngx_syslog_peer_t>())
                    as *mut ngx_syslog_peer_t;
                if peer.is_null() {
                    return CONF_ERROR;
                }
                // NGINX's own parser reads cf->args[1], exactly as for access_log.
                if !ngx_syslog_process_conf(cf, peer).is_null() {
                    return CONF_ERROR;
                }
                Some(Sink::Syslog(peer))
            }
            Target::File {
                path,
                buffer,
                flush_ms,
            } => {
                let mut name = elts[1];
                let file = ngx_conf_open_file((*cf).cycle, &mut name);
                if file.is_null() {
                    return CONF_ERROR;
                }
                // NGINX opens the file after parsing and would only say `open() failed`;
                // try now so the message names the directive.
                if let Err(msg) = try_open(file) {
                    return conf_error(cf, &msg);
                }
                if buffer > 0 {
                    if let Err(msg) = attach_buffer(cf, file, path, buffer, flush_ms) {
                        return conf_error(cf, &msg);
                    }
                }
                Some(Sink::File(file))
            }
        };
        if let Some(sink) = sink {
            if (*lc).sinks.is_null() {
                (*lc).sinks = ngx::core::Pool::from_ngx_pool((*cf).pool).allocate(Vec::new());
                if (*lc).sinks.is_null() {
                    return CONF_ERROR;
                }
            }
            (*(*lc).sinks).push(sink);
        }
        (*lc).set = true;
        CONF_OK
    })
}

/// Several locations may log to one path: NGINX opens it once, and the buffer hangs
/// off that one ngx_open_file_t, as access_log does, so records never interleave.
unsafe fn attach_buffer(
    cf: *mut ngx_conf_t,
    file: *mut ngx_open_file_t,
    path: &[u8],
    size: usize,
    flush_ms: Option<u64>,
) -> Result<(), String> {
    let ours: unsafe extern "C" fn(*mut ngx_open_file_t, *mut ngx_log_t) = file_buffer_flush;
    if !(*file).data.is_null() {
        let same_owner = (*file).flush.is_some_and(|f| f as usize == ours as usize);
        if !same_owner {
            return Err(format!(
                "\"{}\" is already used by another log with its own buffer",
                String::from_utf8_lossy(path)
            ));
        }
        let existing = &*((*file).data as *const FileBuffer);
        if existing.capacity() != size || existing.flush_ms != flush_ms {
            return Err(format!(
                "\"{}\" already defined with conflicting buffer= or flush= parameters",
                String::from_utf8_lossy(path)
            ));
        }
        return Ok(());
    }
    let mut event: *mut ngx_event_t = ptr::null_mut();
    if flush_ms.is_some() {
        event = ngx_pcalloc((*cf).pool, core::mem::size_of::<ngx_event_t>()) as *mut ngx_event_t;
        if event.is_null() {
            return Err("out of memory".into());
        }
        (*event).data = file.cast();
        (*event).handler = Some(super::sink::flush_timer_handler);
        (*event).log = &mut (*(*cf).cycle).new_log;
        // A pending flush must not keep a gracefully exiting worker alive; the
        // exit-process hook of the core flushes open files anyway.
        (*event).set_cancelable(1);
    }
    let buffer =
        ngx::core::Pool::from_ngx_pool((*cf).pool).allocate(FileBuffer::new(size, flush_ms, event));
    if buffer.is_null() {
        return Err("out of memory".into());
    }
    (*file).data = buffer.cast();
    (*file).flush = Some(file_buffer_flush);
    Ok(())
}

/// Opens (creating it if needed, as NGINX will) and closes the record file.
unsafe fn try_open(file: *mut ngx_open_file_t) -> Result<(), String> {
    let name = bytes(&(*file).name);
    let shown = String::from_utf8_lossy(name).into_owned();
    let Ok(path) = std::ffi::CString::new(name) else {
        return Err(format!("path \"{shown}\" contains a NUL byte"));
    };
    let fd = libc::open(
        path.as_ptr(),
        libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT,
        0o644,
    );
    if fd < 0 {
        let err = std::io::Error::last_os_error();
        return Err(format!("cannot open \"{shown}\": {err}"));
    }
    libc::close(fd);
    Ok(())
}

fn parse_size(v: &[u8]) -> Option<usize> {
    let mut s = ngx_str_t {
        len: v.len(),
        data: v.as_ptr() as *mut u8,
    };
    let n = unsafe { ngx_parse_size(&mut s) };
    usize::try_from(n).ok()
}

fn parse_time_ms(v: &[u8]) -> Option<u64> {
    let mut s = ngx_str_t {
        len: v.len(),
        data: v.as_ptr() as *mut u8,
    };
    let n = unsafe { ngx_parse_time(&mut s, 0) };
    u64::try_from(n).ok()
}

/// Logs `"gatelog" directive <msg>` at emerg (NGINX appends the file and line).
unsafe fn conf_error(cf: *mut ngx_conf_t, msg: &str) -> *mut c_char {
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
