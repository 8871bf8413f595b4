//! Where a location's records go: a record file (see `file.rs`) or a syslog server.
//!
//! Syslog datagrams carry NGINX's own header (`ngx_syslog_add_header`, so PRI, time,
//! hostname and tag read as `access_log syslog:` writes them) but are sent by gatelog:
//! NGINX's `ngx_syslog_send` logs every failed send (with the server down, an error line
//! for every second record), and a record storm would flood the error log. gatelog
//! counts the records it could not send and reports them like file write errors (at
//! most one line per second, the count since the last line, and a total at exit).

use core::ffi::c_int;

use ngx::ffi::{ngx_cycle, ngx_cycle_t, ngx_syslog_add_header, ngx_syslog_peer_t, ngx_time};

use super::file::RecordFile;
use super::live::{Linked, Live};
use super::{bytes, log_report};
use crate::delivery::{Delivery, Final, WriteError};

pub enum Destination {
    File(*mut RecordFile),
    Syslog(*mut SyslogDestination),
}

impl Destination {
    /// Writes one record line (with its newline).
    ///
    /// # Safety
    /// Called from a worker's event loop; the pointers are pool memory of the cycle
    /// whose configuration holds this destination, alive while its requests run.
    pub unsafe fn write(&self, line: &[u8]) {
        match *self {
            // SAFETY: see above; the event loop is single-threaded, so this is the
            // only reference to the file while it writes.
            Destination::File(file) => unsafe { (*file).write(line) },
            // SAFETY: as for files.
            Destination::Syslog(s) => unsafe { (*s).write(line) },
        }
    }
}

/// One `gatelog syslog:` destination of one configuration cycle (in its pool).
pub struct SyslogDestination {
    /// Parsed by `ngx_syslog_process_conf` (server, facility, severity, tag).
    peer: *mut ngx_syslog_peer_t,
    cycle: *mut ngx_cycle_t,
    /// This process's connected datagram socket, made on the first record (-1: none).
    fd: c_int,
    delivery: Delivery,
    /// The next destination on [`LIVE`].
    next_live: *mut SyslogDestination,
}

/// Every live [`SyslogDestination`] of this process, for the report at exit.
static LIVE: Live<SyslogDestination> = Live::new();

impl Linked for SyslogDestination {
    fn next_live(&mut self) -> &mut *mut SyslogDestination {
        &mut self.next_live
    }
}

impl SyslogDestination {
    /// A destination for `peer`, registered for the report at exit once it has its final
    /// address (see [`SyslogDestination::register`]).
    pub fn new(peer: *mut ngx_syslog_peer_t, cycle: *mut ngx_cycle_t) -> SyslogDestination {
        SyslogDestination {
            peer,
            cycle,
            fd: -1,
            delivery: Delivery::default(),
            next_live: core::ptr::null_mut(),
        }
    }

    /// Adds the destination (now at its final address in the pool) to the exit report.
    ///
    /// # Safety
    /// `this` is pool memory that stays valid until the destination is dropped.
    pub unsafe fn register(this: *mut SyslogDestination) {
        // SAFETY: the caller guarantees `this`; Drop removes it.
        unsafe { LIVE.push(this) };
    }

    fn target(&self) -> String {
        // SAFETY: the peer is pool memory of the same cycle as this destination.
        let name = unsafe { bytes(&(*self.peer).server.name) };
        format!("syslog server \"{}\"", String::from_utf8_lossy(name))
    }

    fn write(&mut self, line: &[u8]) {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        // "<PRI>Mon dd hh:mm:ss " + hostname + " " + tag + ": "
        // SAFETY: the current cycle and the peer are valid (see Destination::write).
        let header_max = 32 + unsafe { (*ngx_cycle).hostname.len + (*self.peer).tag.len };
        let mut msg: Vec<u8> = Vec::with_capacity(header_max + line.len());
        let start = msg.as_mut_ptr();
        // SAFETY: the header is at most `header_max` bytes, within msg's capacity.
        let end = unsafe { ngx_syslog_add_header(self.peer, start) };
        let header_len = (end as usize)
            .saturating_sub(start as usize)
            .min(header_max);
        // SAFETY: ngx_syslog_add_header initialised these bytes.
        unsafe { msg.set_len(header_len) };
        msg.extend_from_slice(line);
        let now = ngx_time();
        let report = match self.send(&msg) {
            Ok(()) => self.delivery.written(now),
            Err(f) => self.delivery.failed(now, 1, f),
        };
        if report.is_some() {
            log_report(report, "send()", &self.target());
        }
    }

    fn send(&mut self, msg: &[u8]) -> Result<(), WriteError> {
        if self.fd < 0 {
            self.fd = self.connect()?;
        }
        // SAFETY: a live buffer of msg.len() bytes on our own socket.
        let n = unsafe { libc::send(self.fd, msg.as_ptr().cast(), msg.len(), libc::MSG_NOSIGNAL) };
        if n >= 0 && n as usize == msg.len() {
            return Ok(());
        }
        if n >= 0 {
            return Err(WriteError::Incomplete {
                written: n as usize,
                of: msg.len(),
            });
        }
        let e = errno();
        // A refused or unreachable server: start afresh with the next record, as NGINX
        // does. A full socket buffer (EAGAIN) only loses this record.
        if e != libc::EAGAIN {
            self.close();
        }
        Err(WriteError::Errno(e))
    }

    fn connect(&self) -> Result<c_int, WriteError> {
        // SAFETY: the peer's server address was set by ngx_parse_url at configuration.
        let (sa, len) = unsafe { ((*self.peer).server.sockaddr, (*self.peer).server.socklen) };
        if sa.is_null() {
            return Err(WriteError::Errno(libc::EDESTADDRREQ));
        }
        // SAFETY: reading the family of a valid sockaddr.
        let family = c_int::from(unsafe { (*sa).sa_family });
        // SAFETY: plain socket(2) and connect(2) on the peer's own address; the
        // descriptor is closed on failure.
        unsafe {
            let fd = libc::socket(
                family,
                libc::SOCK_DGRAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            );
            if fd < 0 {
                return Err(WriteError::Errno(errno()));
            }
            if libc::connect(fd, sa.cast(), len) != 0 {
                let e = errno();
                libc::close(fd);
                return Err(WriteError::Errno(e));
            }
            Ok(fd)
        }
    }

    fn close(&mut self) {
        if self.fd >= 0 {
            // SAFETY: our own socket, closed once.
            unsafe { libc::close(self.fd) };
            self.fd = -1;
        }
    }

    fn finish(&mut self, when: Final) {
        let report = self.delivery.finish(ngx_time(), when);
        if report.is_some() {
            log_report(report, "send()", &self.target());
        }
    }
}

impl Drop for SyslogDestination {
    /// Runs when the cycle's pool is destroyed.
    fn drop(&mut self) {
        // SAFETY: the list holds only destinations not yet dropped.
        unsafe { LIVE.remove(self) };
        self.close();
        // The log of the cycle being destroyed may already be closed.
        // SAFETY: ngx_cycle is the current cycle of this process.
        if !core::ptr::eq(unsafe { ngx_cycle }, self.cycle) {
            self.finish(Final::Reload);
        }
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// Exit of a worker (or of the single process): report the records not sent.
pub fn exit_process() {
    // SAFETY: the list holds only destinations not yet dropped.
    unsafe { LIVE.each(|s| s.finish(Final::Exit)) };
}
