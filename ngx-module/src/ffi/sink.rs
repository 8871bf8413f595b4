//! Where a location's records go: a record file (see `file.rs`) or syslog through
//! NGINX's own syslog client.

#![deny(unsafe_op_in_unsafe_fn)]

use ngx::ffi::{ngx_cycle, ngx_syslog_add_header, ngx_syslog_peer_t, ngx_syslog_send};

use super::file::RecordFile;

pub enum Sink {
    File(*mut RecordFile),
    Syslog(*mut ngx_syslog_peer_t),
}

impl Sink {
    /// Writes one record line (with its newline).
    ///
    /// # Safety
    /// Called from a worker's event loop; the pointers are pool memory of the cycle
    /// whose configuration holds this sink, alive while its requests run.
    pub unsafe fn write(&self, line: &[u8]) {
        match *self {
            // SAFETY: see above; the event loop is single-threaded, so this is the
            // only reference to the file while it writes.
            Sink::File(file) => unsafe { (*file).write(line) },
            // SAFETY: see above.
            Sink::Syslog(peer) => unsafe { write_syslog(peer, line) },
        }
    }
}

/// # Safety
/// `peer` is a peer set up by `ngx_syslog_process_conf`.
unsafe fn write_syslog(peer: *mut ngx_syslog_peer_t, line: &[u8]) {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    // "<PRI>Mon dd hh:mm:ss " + hostname + " " + tag + ": "
    // SAFETY: the current cycle and the peer are valid (see above).
    let header_max = 32 + unsafe { (*ngx_cycle).hostname.len + (*peer).tag.len };
    let mut msg: Vec<u8> = Vec::with_capacity(header_max + line.len());
    let start = msg.as_mut_ptr();
    // SAFETY: the header is at most `header_max` bytes, within msg's capacity.
    let end = unsafe { ngx_syslog_add_header(peer, start) };
    let header_len = (end as usize)
        .saturating_sub(start as usize)
        .min(header_max);
    // SAFETY: ngx_syslog_add_header initialised these bytes.
    unsafe { msg.set_len(header_len) };
    msg.extend_from_slice(line);
    // Errors are logged by ngx_syslog_send itself.
    // SAFETY: a live buffer of msg.len() bytes.
    let _ = unsafe { ngx_syslog_send(peer, msg.as_mut_ptr(), msg.len()) };
}
