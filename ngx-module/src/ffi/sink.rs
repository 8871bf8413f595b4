//! Writing records: to a file (unbuffered or through a bounded buffer, reopened by
//! NGINX on USR1) or to syslog through NGINX's own syslog client.

use core::ptr;

use ngx::ffi::{
    ngx_add_timer, ngx_cycle, ngx_del_timer, ngx_event_t, ngx_log_error_core, ngx_log_t,
    ngx_open_file_t, ngx_syslog_add_header, ngx_syslog_peer_t, ngx_syslog_send, ngx_time,
    NGX_LOG_ALERT,
};

use super::guard;

pub enum Sink {
    File(*mut ngx_open_file_t),
    Syslog(*mut ngx_syslog_peer_t),
}

/// The buffer of one file; lives in `file->data` so all locations writing the file
/// share it, and NGINX's reopen and exit paths flush it through `file->flush`.
pub struct FileBuffer {
    buf: Vec<u8>,
    pub flush_ms: Option<u64>,
    event: *mut ngx_event_t,
    /// Last time a write error was logged, so a full disk does not flood the log.
    last_error_log: i64,
}

impl FileBuffer {
    pub fn new(size: usize, flush_ms: Option<u64>, event: *mut ngx_event_t) -> FileBuffer {
        FileBuffer {
            buf: Vec::with_capacity(size),
            flush_ms,
            event,
            last_error_log: 0,
        }
    }

    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }
}

impl Sink {
    /// Writes one record line (with its newline).
    ///
    /// # Safety
    /// Called from a worker's event loop with the cycle's pointers valid.
    pub unsafe fn write(&self, line: &[u8]) {
        match *self {
            Sink::File(file) => write_file(file, line),
            Sink::Syslog(peer) => write_syslog(peer, line),
        }
    }
}

unsafe fn buffer_of(file: *mut ngx_open_file_t) -> Option<&'static mut FileBuffer> {
    let ours: unsafe extern "C" fn(*mut ngx_open_file_t, *mut ngx_log_t) = file_buffer_flush;
    match (*file).flush {
        Some(f) if f as usize == ours as usize && !(*file).data.is_null() => {
            Some(&mut *((*file).data as *mut FileBuffer))
        }
        _ => None,
    }
}

unsafe fn write_file(file: *mut ngx_open_file_t, line: &[u8]) {
    let Some(b) = buffer_of(file) else {
        write_fd(file, line, None);
        return;
    };
    let cap = b.buf.capacity();
    if line.len() > cap - b.buf.len() {
        flush(file, b);
    }
    if line.len() > cap {
        write_fd(file, line, Some(b));
        return;
    }
    if b.buf.is_empty() && !b.event.is_null() {
        if let Some(ms) = b.flush_ms {
            ngx_add_timer(b.event, ms as _);
        }
    }
    b.buf.extend_from_slice(line);
}

unsafe fn flush(file: *mut ngx_open_file_t, b: &mut FileBuffer) {
    if !b.buf.is_empty() {
        let data = core::mem::take(&mut b.buf);
        write_fd(file, &data, Some(b));
        b.buf = data;
        b.buf.clear();
    }
    if !b.event.is_null() && (*b.event).timer_set() != 0 {
        ngx_del_timer(b.event);
    }
}

unsafe fn write_fd(file: *mut ngx_open_file_t, data: &[u8], b: Option<&mut FileBuffer>) {
    let n = libc::write((*file).fd, data.as_ptr().cast(), data.len());
    if n >= 0 && n as usize == data.len() {
        return;
    }
    let err = if n < 0 { *libc::__errno_location() } else { 0 };
    let now = ngx_time();
    if let Some(b) = b {
        if now == b.last_error_log {
            return;
        }
        b.last_error_log = now;
    }
    let log = (*ngx_cycle).log;
    if log.is_null() || (*log).log_level < NGX_LOG_ALERT as usize {
        return;
    }
    if n < 0 {
        ngx_log_error_core(
            NGX_LOG_ALERT as _,
            log,
            err,
            c"gatelog: write() to \"%s\" failed".as_ptr(),
            (*file).name.data,
        );
    } else {
        ngx_log_error_core(
            NGX_LOG_ALERT as _,
            log,
            0,
            c"gatelog: write() to \"%s\" was incomplete: %z of %uz".as_ptr(),
            (*file).name.data,
            n,
            data.len(),
        );
    }
}

unsafe fn write_syslog(peer: *mut ngx_syslog_peer_t, line: &[u8]) {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    // "<PRI>Mon dd hh:mm:ss " + hostname + " " + tag + ": "
    let header_max = 32 + (*ngx_cycle).hostname.len + (*peer).tag.len;
    let mut msg: Vec<u8> = Vec::with_capacity(header_max + line.len());
    let start = msg.as_mut_ptr();
    let end = ngx_syslog_add_header(peer, start);
    let header_len = (end as usize)
        .saturating_sub(start as usize)
        .min(header_max);
    msg.set_len(header_len);
    msg.extend_from_slice(line);
    // Errors are logged by ngx_syslog_send itself, rate-limited by NGINX.
    let _ = ngx_syslog_send(peer, msg.as_mut_ptr(), msg.len());
}

/// `file->flush`: called by NGINX before reopening the file (USR1) and when a worker
/// exits, and by gatelog when the buffer is full.
pub unsafe extern "C" fn file_buffer_flush(file: *mut ngx_open_file_t, _log: *mut ngx_log_t) {
    guard((), || {
        if let Some(b) = buffer_of(file) {
            flush(file, b);
        }
    })
}

/// The flush= timer.
pub unsafe extern "C" fn flush_timer_handler(ev: *mut ngx_event_t) {
    guard((), || {
        let file = (*ev).data as *mut ngx_open_file_t;
        if !file.is_null() {
            file_buffer_flush(file, ptr::null_mut());
        }
    })
}
