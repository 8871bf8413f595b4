//! Record files: gatelog's own entries in the cycle's open files, their optional
//! buffer, and what happens to a record when a write fails.
//!
//! gatelog adds its own `ngx_open_file_t` for each path instead of sharing the one
//! `ngx_conf_open_file()` hands out: NGINX's `access_log` reads any shared entry's `data`
//! as its own buffer type, and gatelog needs its state (buffer, lost-record counts, an
//! owed newline) on every file, buffered or not. NGINX still opens, reopens (USR1,
//! calling `flush` first) and closes these entries like any other.
//!
//! Records are whole or absent: a write that stops inside a record is completed if the
//! disk takes the rest, otherwise the partial record is cut back (`ftruncate`), or, where
//! that is impossible, the next write starts with a newline so the next record starts on
//! a fresh line. Every record not written whole is counted as lost and reported by
//! [`Delivery`] (at most one error-log line per second per file, plus one at exit).
//!
//! When a configuration is replaced (reload) the old cycle's files are flushed and
//! "retired" before NGINX closes them: in single-process mode (`master_process off`)
//! the old cycle lives on for its keep-alive connections, and their records go to a
//! `dup()` of the old descriptor, never to a closed (or reused) descriptor number.

use core::ffi::{c_int, c_void};
use core::ptr;

use ngx::ffi::{
    ngx_add_timer, ngx_conf_full_name, ngx_conf_t, ngx_cycle, ngx_cycle_t, ngx_del_timer,
    ngx_event_t, ngx_list_push, ngx_list_t, ngx_log_t, ngx_open_file_t, ngx_pcalloc, ngx_time,
};

use super::live::{Linked, Live};
use super::{bytes, guard, log_report, pool_box};
use crate::delivery::{cut, records, Delivery, Final, Report, WriteError};

const NGX_OK: isize = ngx::core::Status::NGX_OK.0;
const NGX_INVALID_FILE: c_int = -1;

/// The bounded buffer of a file written with `buffer=`.
struct Buffer {
    data: Vec<u8>,
    size: usize,
    flush_ms: Option<u64>,
    /// The `flush=` timer (NULL without flush=); pool memory of the file's cycle.
    event: *mut ngx_event_t,
}

/// One record file of one configuration cycle (lives in that cycle's pool).
pub struct RecordFile {
    /// Our entry in `cycle->open_files`: NGINX keeps its `fd` current.
    file: *mut ngx_open_file_t,
    /// The cycle whose pool holds this file.
    cycle: *mut ngx_cycle_t,
    buffer: Option<Buffer>,
    delivery: Delivery,
    /// A partial record could not be cut back: the next write starts with a newline.
    newline_owed: bool,
    /// Set when the cycle was replaced: records of its remaining requests go to this
    /// duplicate of the old descriptor (-1 when `dup` failed: they are counted as lost).
    retired_fd: Option<c_int>,
    /// The next file on [`LIVE`].
    next_live: *mut RecordFile,
}

/// Every live [`RecordFile`] of this process, for the report at exit: in
/// single-process mode files of replaced cycles are no longer in the current cycle.
static LIVE: Live<RecordFile> = Live::new();

impl Linked for RecordFile {
    fn next_live(&mut self) -> &mut *mut RecordFile {
        &mut self.next_live
    }
}

impl Drop for RecordFile {
    /// Runs when the cycle's pool is destroyed: after a reload (at once in the master,
    /// when its last connection is gone in single-process mode) or after `nginx -t`.
    fn drop(&mut self) {
        // SAFETY: the list holds only files not yet dropped.
        unsafe { LIVE.remove(self) };
        if let Some(b) = &self.buffer {
            // SAFETY: the event is pool memory of this same cycle, not yet freed (pool
            // cleanups run before the pool's memory is released); a set timer is in
            // the event tree of this process.
            unsafe {
                if !b.event.is_null() && (*b.event).timer_set() != 0 {
                    ngx_del_timer(b.event);
                }
            }
        }
        if let Some(fd) = self.retired_fd.take() {
            if fd >= 0 {
                // SAFETY: the descriptor is our own dup(), closed exactly once here.
                unsafe { libc::close(fd) };
            }
        }
        // The log of the cycle being destroyed may already be closed: report through
        // the current cycle only when it is another one.
        // SAFETY: ngx_cycle is the current cycle of this process.
        if !core::ptr::eq(unsafe { ngx_cycle }, self.cycle) {
            let r = self.delivery.finish(ngx_time(), Final::Reload);
            // SAFETY: `file` is pool memory of the cycle being destroyed, still valid
            // while its cleanups run.
            unsafe { self.log(r) };
        }
    }
}

impl RecordFile {
    fn fd(&self) -> c_int {
        match self.retired_fd {
            Some(fd) => fd,
            // SAFETY: `file` points into the open_files list of our cycle, which lives
            // as long as this struct (same pool).
            None => unsafe { (*self.file).fd },
        }
    }

    /// Writes one record line (with its newline), through the buffer if there is one.
    pub fn write(&mut self, line: &[u8]) {
        if self.retired_fd.is_some() {
            self.deliver(line);
            return;
        }
        let Some(b) = self.buffer.as_mut() else {
            self.deliver(line);
            return;
        };
        if line.len() > b.size - b.data.len() {
            self.flush();
        }
        let Some(b) = self.buffer.as_mut() else {
            return;
        };
        if line.len() > b.size {
            self.deliver(line);
            return;
        }
        if b.data.is_empty() && !b.event.is_null() {
            if let Some(ms) = b.flush_ms {
                // SAFETY: the event lives in our cycle's pool; timers are only armed in
                // the process that writes, from its event loop.
                unsafe { ngx_add_timer(b.event, ms as _) };
            }
        }
        b.data.extend_from_slice(line);
    }

    /// Writes the buffered records now.
    fn flush(&mut self) {
        let Some(b) = self.buffer.as_mut() else {
            return;
        };
        // SAFETY: as in `write`; deleting an armed timer of this process.
        unsafe {
            if !b.event.is_null() && (*b.event).timer_set() != 0 {
                ngx_del_timer(b.event);
            }
        }
        if b.data.is_empty() {
            return;
        }
        let data = core::mem::take(&mut b.data);
        self.deliver(&data);
        if let Some(b) = self.buffer.as_mut() {
            b.data = data;
            b.data.clear();
        }
    }

    /// NGINX is about to reopen or stop using the descriptor: write the buffer and the
    /// owed newline to it (a newline must not start the next file).
    fn settle(&mut self) {
        self.flush();
        if self.newline_owed {
            self.newline_owed = false;
            // SAFETY: writing one byte from a static buffer to our descriptor.
            let n = unsafe { libc::write(self.fd(), b"\n".as_ptr().cast(), 1) };
            if n != 1 {
                // The partial record stays unterminated; it was counted as lost.
            }
        }
    }

    /// One `write()` of whole records (plus an owed newline), and what follows when it
    /// fails or stops short.
    fn deliver(&mut self, data: &[u8]) {
        let fd = self.fd();
        let owed = self.newline_owed;
        let iov = [
            libc::iovec {
                iov_base: b"\n".as_ptr() as *mut c_void,
                iov_len: 1,
            },
            libc::iovec {
                iov_base: data.as_ptr() as *mut c_void,
                iov_len: data.len(),
            },
        ];
        let first = usize::from(!owed);
        // SAFETY: both iovecs point to live buffers of the given lengths.
        let n = unsafe { libc::writev(fd, iov[first..].as_ptr(), (2 - first) as c_int) };
        let errno = errno();
        let now = ngx_time();
        if n >= 0 && n as usize == data.len() + usize::from(owed) {
            self.newline_owed = false;
            let r = self.delivery.written(now);
            // SAFETY: see `log`.
            unsafe { self.log(r) };
            return;
        }
        if n < 0 {
            let r = self
                .delivery
                .failed(now, records(data), WriteError::Errno(errno));
            // SAFETY: see `log`.
            unsafe { self.log(r) };
            return;
        }
        let mut n = n as usize;
        if owed && n > 0 {
            self.newline_owed = false;
            n -= 1;
        }
        let (written, failure) = complete(fd, data, n);
        if written == data.len() {
            let r = self.delivery.written(now);
            // SAFETY: see `log`.
            unsafe { self.log(r) };
            return;
        }
        let c = cut(data, written);
        if c.partial > 0 && !cut_back(fd, c.partial) {
            self.newline_owed = true;
        }
        let r = self.delivery.failed(now, c.lost, failure);
        // SAFETY: see `log`.
        unsafe { self.log(r) };
    }

    /// Logs `report` (see [`log_report`]).
    ///
    /// # Safety
    /// `self.file` must be valid (it is while this struct lives: same pool).
    unsafe fn log(&self, report: Option<Report>) {
        if report.is_none() {
            return;
        }
        // SAFETY: the caller guarantees `file`; its name is NGINX-owned pool memory.
        let name = String::from_utf8_lossy(unsafe { path_of(self.file) }).into_owned();
        log_report(report, "write()", &format!("\"{name}\""));
    }
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Writes the rest of `data` after a short write of `written` bytes, for as long as
/// the file takes bytes. Returns the bytes written in all and why it stopped.
fn complete(fd: c_int, data: &[u8], mut written: usize) -> (usize, WriteError) {
    while written < data.len() {
        let rest = &data[written..];
        // SAFETY: `rest` is a live buffer of rest.len() bytes.
        let m = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        if m > 0 {
            written += m as usize;
            continue;
        }
        let failure = if m < 0 {
            WriteError::Errno(errno())
        } else {
            WriteError::Incomplete {
                written,
                of: data.len(),
            }
        };
        return (written, failure);
    }
    (
        written,
        WriteError::Incomplete {
            written,
            of: data.len(),
        },
    )
}

/// Removes the last `partial` bytes of the file if they are the cut record: the file
/// must be a regular file that ends where this descriptor's last write ended. The
/// descriptor is shared by every worker, but a write stops short only because the disk
/// is full, so no other write can have appended in the microseconds since.
fn cut_back(fd: c_int, partial: usize) -> bool {
    // SAFETY: fstat into a zeroed stat owned here.
    let mut st: libc::stat = unsafe { core::mem::zeroed() };
    // SAFETY: fstat writes into `st`, owned here.
    let rc = unsafe { libc::fstat(fd, &mut st) };
    if rc != 0 || (st.st_mode & libc::S_IFMT) != libc::S_IFREG {
        return false;
    }
    // SAFETY: lseek/ftruncate on our descriptor; SEEK_CUR with 0 does not move it.
    let end = unsafe { libc::lseek(fd, 0, libc::SEEK_CUR) };
    let partial = partial as libc::off_t;
    if end < partial || end != st.st_size {
        return false;
    }
    // SAFETY: as above.
    unsafe { libc::ftruncate(fd, end - partial) == 0 }
}

/// The path of one of our entries (its name without the counted NUL, see [`open`]).
///
/// # Safety
/// `file` is a valid entry made by [`open`].
unsafe fn path_of<'a>(file: *mut ngx_open_file_t) -> &'a [u8] {
    // SAFETY: the caller guarantees `file`; its name is pool memory of its cycle.
    let name = unsafe { bytes(&(*file).name) };
    name.strip_suffix(b"\0").unwrap_or(name)
}

/// The record file of `file`, if it is one of ours.
///
/// # Safety
/// `file` must be a valid entry of an open_files list.
unsafe fn record_file_of(file: *mut ngx_open_file_t) -> Option<&'static mut RecordFile> {
    let ours: unsafe extern "C" fn(*mut ngx_open_file_t, *mut ngx_log_t) = file_flush;
    // SAFETY: the caller guarantees `file`; `data` of our entries is a RecordFile in the
    // same pool.
    unsafe {
        match (*file).flush {
            Some(f) if f as usize == ours as usize && !(*file).data.is_null() => {
                Some(&mut *((*file).data as *mut RecordFile))
            }
            _ => None,
        }
    }
}

/// Calls `f` for every entry of an open_files list.
///
/// # Safety
/// `list` must be an initialised (or zeroed) `ngx_list_t` of `ngx_open_file_t`.
unsafe fn each_file(list: *mut ngx_list_t, mut f: impl FnMut(*mut ngx_open_file_t)) {
    // SAFETY: NGINX's list layout: parts chained by `next`, `nelts` elements each.
    unsafe {
        let mut part: *mut ngx::ffi::ngx_list_part_t = &mut (*list).part;
        while !part.is_null() {
            let elts = (*part).elts as *mut ngx_open_file_t;
            if !elts.is_null() {
                for i in 0..(*part).nelts {
                    f(elts.add(i));
                }
            }
            part = (*part).next;
        }
    }
}

/// The record file for path `name` in the cycle being configured: the one another
/// `gatelog` directive made, or a new entry of `cycle->open_files`.
///
/// # Safety
/// Called while parsing a configuration, with `cf` valid.
pub unsafe fn open(
    cf: *mut ngx_conf_t,
    name: ngx::ffi::ngx_str_t,
) -> Result<*mut RecordFile, String> {
    // SAFETY: cf is valid during parsing; its cycle is the one being configured.
    let cycle = unsafe { (*cf).cycle };
    let mut full = name;
    // SAFETY: NGINX's own path resolution (prefix-relative), allocating from the
    // cycle's pool; the result is NUL-terminated like every configuration word.
    if unsafe { ngx_conf_full_name(cycle, &mut full, 0) } != NGX_OK {
        // SAFETY: `name` is the directive's argument, alive during parsing.
        let shown = show(unsafe { bytes(&name) });
        return Err(format!("cannot make a full path of \"{shown}\""));
    }
    // SAFETY: `full` now points to pool memory of full.len bytes.
    let path = unsafe { bytes(&full) };
    let mut found = None;
    // SAFETY: the cycle's open_files list is initialised before parsing.
    unsafe {
        each_file(&mut (*cycle).open_files, |f| {
            if found.is_none() {
                if let Some(rf) = record_file_of(f) {
                    if path_of(f) == path {
                        found = Some(rf as *mut RecordFile);
                    }
                }
            }
        })
    };
    if let Some(rf) = found {
        return Ok(rf);
    }
    try_open(path)?;
    // Checked before the entry is pushed (see below for why the NUL matters).
    // SAFETY: ngx_conf_full_name leaves a NUL-terminated string (a configuration word,
    // or a copy made with ngx_cpystrn): full.len + 1 bytes are readable.
    if unsafe { *full.data.add(full.len) } != 0 {
        return Err(format!("\"{}\": not a NUL-terminated path", show(path)));
    }
    // SAFETY: pushing to the cycle's open_files list, as ngx_conf_open_file does.
    let file = unsafe { ngx_list_push(&mut (*cycle).open_files) } as *mut ngx_open_file_t;
    if file.is_null() {
        return Err(format!("\"{}\": out of memory", show(path)));
    }
    // The entry's name length counts the terminating NUL: ngx_conf_open_file() (which
    // access_log and error_log use) matches entries by length and bytes and must never
    // hand ours, with a RecordFile in `data`, to another module. NGINX opens, reopens
    // and names files by `name.data` as a C string, so nothing else changes.
    // SAFETY: `file` is a fresh list element; NGINX opens it after parsing because its
    // name is set, and calls `flush` before reopening it and at exit.
    unsafe {
        (*file).fd = NGX_INVALID_FILE;
        (*file).name = ngx::ffi::ngx_str_t {
            len: full.len + 1,
            data: full.data,
        };
        (*file).data = ptr::null_mut();
        (*file).flush = Some(file_flush);
    }
    let rf = RecordFile {
        file,
        cycle,
        buffer: None,
        delivery: Delivery::default(),
        newline_owed: false,
        retired_fd: None,
        next_live: ptr::null_mut(),
    };
    // SAFETY: the cycle's pool outlives every use of the file (requests and timers of
    // the cycle); `pool_box` drops it when the pool is destroyed.
    let rf = unsafe { pool_box((*cf).pool, rf) };
    if rf.is_null() {
        return Err(format!("\"{}\": out of memory", show(path)));
    }
    // SAFETY: as above.
    unsafe { (*file).data = rf.cast() };
    // SAFETY: `rf` is at its final address; Drop removes it.
    unsafe { LIVE.push(rf) };
    Ok(rf)
}

/// Gives `rf` a buffer of `size` bytes written after `flush_ms`; a path used by several
/// directives has one buffer, so they must agree on it.
///
/// # Safety
/// Called while parsing a configuration, with `cf` valid and `rf` from [`open`].
pub unsafe fn set_buffer(
    cf: *mut ngx_conf_t,
    rf: *mut RecordFile,
    size: usize,
    flush_ms: Option<u64>,
) -> Result<(), String> {
    // SAFETY: the caller guarantees `rf` (pool memory of the cycle being configured).
    let rf = unsafe { &mut *rf };
    if let Some(b) = &rf.buffer {
        if b.size != size || b.flush_ms != flush_ms {
            return Err("already defined with conflicting buffer= or flush= parameters".into());
        }
        return Ok(());
    }
    let mut event: *mut ngx_event_t = ptr::null_mut();
    if flush_ms.is_some() {
        // SAFETY: zeroed pool memory is a valid, unarmed ngx_event_t.
        event = unsafe { ngx_pcalloc((*cf).pool, core::mem::size_of::<ngx_event_t>()) }
            as *mut ngx_event_t;
        if event.is_null() {
            return Err("out of memory".into());
        }
        // SAFETY: `event` is the zeroed event above; `new_log` is part of the cycle.
        unsafe {
            (*event).data = (rf as *mut RecordFile).cast();
            (*event).handler = Some(flush_timer_handler);
            (*event).log = &mut (*(*cf).cycle).new_log;
            // A pending flush must not keep a gracefully exiting worker alive; the
            // exit hooks flush anyway.
            (*event).set_cancelable(1);
        }
    }
    rf.buffer = Some(Buffer {
        data: Vec::with_capacity(size),
        size,
        flush_ms,
        event,
    });
    Ok(())
}

/// Opens (creating it if needed, as NGINX will) and closes the record file, so that
/// `nginx -t` names the directive and the path when it cannot be opened.
fn try_open(name: &[u8]) -> Result<(), String> {
    let Ok(path) = std::ffi::CString::new(name) else {
        return Err(format!("path \"{}\" contains a NUL byte", show(name)));
    };
    // SAFETY: a NUL-terminated path; the descriptor is closed right away.
    let fd = unsafe {
        libc::open(
            path.as_ptr(),
            libc::O_WRONLY | libc::O_APPEND | libc::O_CREAT | libc::O_CLOEXEC,
            0o644,
        )
    };
    if fd < 0 {
        let err = std::io::Error::last_os_error();
        return Err(format!("cannot open \"{}\": {err}", show(name)));
    }
    // SAFETY: our own descriptor.
    unsafe { libc::close(fd) };
    Ok(())
}

/// `file->flush`: NGINX calls it before reopening the file (USR1) and at exit.
///
/// # Safety
/// NGINX's `ngx_open_file_t.flush` contract: an entry of a live cycle's open_files.
unsafe extern "C" fn file_flush(file: *mut ngx_open_file_t, _log: *mut ngx_log_t) {
    guard((), || {
        // SAFETY: NGINX passes an entry of a live cycle's open_files.
        if let Some(rf) = unsafe { record_file_of(file) } {
            rf.settle();
        }
    })
}

/// The `flush=` timer.
///
/// # Safety
/// NGINX's event handler contract: the `flush=` timer event `set_buffer` made.
unsafe extern "C" fn flush_timer_handler(ev: *mut ngx_event_t) {
    guard((), || {
        // SAFETY: the event's data is the RecordFile of the same pool (set_buffer).
        let rf = unsafe { (*ev).data } as *mut RecordFile;
        if !rf.is_null() {
            // SAFETY: as above.
            unsafe { (*rf).flush() };
        }
    })
}

/// Called when `cycle` is about to replace its old cycle (init_module), before NGINX
/// closes the old cycle's files: each of our old files is flushed, its timer stopped,
/// and its descriptor duplicated for the requests the old cycle still serves.
///
/// # Safety
/// `cycle` is the cycle being initialised by ngx_init_cycle.
pub unsafe fn retire_old_files(cycle: *mut ngx_cycle_t) {
    // SAFETY: ngx_init_cycle sets old_cycle before calling init_module.
    let old = unsafe { (*cycle).old_cycle };
    if old.is_null() {
        return;
    }
    // SAFETY: the old cycle is alive (its files are closed after init_module); the init
    // cycle has a zeroed list.
    unsafe {
        each_file(&mut (*old).open_files, |f| {
            if let Some(rf) = record_file_of(f) {
                if rf.retired_fd.is_some() {
                    return;
                }
                rf.settle();
                rf.buffer = None;
                let fd = (*f).fd;
                rf.retired_fd = Some(if fd == NGX_INVALID_FILE {
                    -1
                } else {
                    libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0)
                });
                let r = rf.delivery.finish(ngx_time(), Final::Reload);
                rf.log(r);
            }
        })
    };
}

/// Exit of a worker (or of the single process): write what is buffered and report
/// the records this process lost.
pub fn exit_process() {
    // SAFETY: the list holds only files not yet dropped.
    unsafe {
        LIVE.each(|rf| {
            rf.settle();
            let r = rf.delivery.finish(ngx_time(), Final::Exit);
            rf.log(r);
        })
    };
}
