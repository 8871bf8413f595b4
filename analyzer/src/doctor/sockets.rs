//! Who listens where, and how many connections wait to be accepted: the kernel's
//! own view, independent of permissions and of FPM's status page (which reports no
//! listen queue for unix sockets on Linux, and is served by the same busy workers).
//!
//! - unix sockets: NETLINK_SOCK_DIAG (what `ss -xl` uses): every listening socket's
//!   bound path, inode, accept-queue length and backlog.
//! - TCP: `/proc/net/tcp` and `/proc/net/tcp6`: for a LISTEN socket `rx_queue` is
//!   the accept queue.
//! - which process holds a socket: `/proc/PID/fd` links `socket:[INODE]` (root).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A listening unix socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnixListen {
    pub path: String,
    pub inode: u64,
    /// Connections waiting in the accept queue.
    pub queue: u32,
    /// The backlog (listen.backlog, capped by net.core.somaxconn).
    pub backlog: u32,
}

/// A listening TCP socket (`/proc/net/tcp` has no backlog for it: `ss` asks
/// netlink for that).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpListen {
    pub ip: IpAddr,
    pub port: u16,
    pub inode: u64,
    pub queue: u32,
}

const NETLINK_SOCK_DIAG: libc::c_int = 4;
const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const TCP_LISTEN: u32 = 10;
const UDIAG_SHOW_NAME: u32 = 0x01;
const UDIAG_SHOW_RQLEN: u32 = 0x10;
const UNIX_DIAG_NAME: u16 = 0;
const UNIX_DIAG_RQLEN: u16 = 4;

/// The request: nlmsghdr + unix_diag_req, in native byte order.
fn diag_request() -> Vec<u8> {
    let mut b = Vec::with_capacity(40);
    let len: u32 = 16 + 24;
    b.extend(len.to_ne_bytes());
    b.extend(SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    let flags: u16 = 0x01 | 0x300; // NLM_F_REQUEST | NLM_F_DUMP
    b.extend(flags.to_ne_bytes());
    b.extend(1u32.to_ne_bytes()); // seq
    b.extend(0u32.to_ne_bytes()); // pid
    b.push(libc::AF_UNIX as u8); // sdiag_family
    b.push(0); // sdiag_protocol
    b.extend(0u16.to_ne_bytes()); // pad
    b.extend((1u32 << TCP_LISTEN).to_ne_bytes()); // udiag_states
    b.extend(0u32.to_ne_bytes()); // udiag_ino
    b.extend((UDIAG_SHOW_NAME | UDIAG_SHOW_RQLEN).to_ne_bytes());
    b.extend([0u8; 8]); // cookie
    b
}

fn u16_at(b: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(i..i + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], i: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(i..i + 4)?.try_into().ok()?))
}

/// Parses a batch of netlink messages. Ok(true) when the dump is done.
fn parse_batch(b: &[u8], out: &mut Vec<UnixListen>) -> Result<bool, String> {
    let mut off = 0;
    while off + 16 <= b.len() {
        let len = u32_at(b, off).ok_or("short netlink header")? as usize;
        let kind = u16_at(b, off + 4).ok_or("short netlink header")?;
        if len < 16 || off + len > b.len() {
            return Err("malformed netlink message".into());
        }
        let msg = &b[off + 16..off + len];
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let e = u32_at(msg, 0).map_or(0, |v| -(v as i32));
                return Err(format!(
                    "sock_diag: {}",
                    io::Error::from_raw_os_error(e.max(0))
                ));
            }
            _ => {
                // unix_diag_msg: family, type, state, pad, ino u32, cookie[2] u32.
                let inode = u64::from(u32_at(msg, 4).unwrap_or(0));
                let mut path = None;
                let mut queue = (0, 0);
                let mut a = 16;
                while a + 4 <= msg.len() {
                    let alen = usize::from(u16_at(msg, a).unwrap_or(0));
                    let atype = u16_at(msg, a + 2).unwrap_or(u16::MAX);
                    if alen < 4 || a + alen > msg.len() {
                        break;
                    }
                    let data = &msg[a + 4..a + alen];
                    match atype {
                        UNIX_DIAG_NAME => {
                            // Abstract names start with NUL: shown as `@name`.
                            let name = match data.split_first() {
                                Some((0, rest)) => format!("@{}", String::from_utf8_lossy(rest)),
                                _ => String::from_utf8_lossy(data)
                                    .trim_end_matches('\0')
                                    .to_string(),
                            };
                            path = Some(name);
                        }
                        UNIX_DIAG_RQLEN => {
                            queue = (u32_at(data, 0).unwrap_or(0), u32_at(data, 4).unwrap_or(0));
                        }
                        _ => {}
                    }
                    a += (alen + 3) & !3;
                }
                if let Some(path) = path {
                    out.push(UnixListen {
                        path,
                        inode,
                        queue: queue.0,
                        backlog: queue.1,
                    });
                }
            }
        }
        off += (len + 3) & !3;
    }
    Ok(false)
}

/// Every listening unix socket of this network namespace.
pub fn unix_listeners() -> Result<Vec<UnixListen>, String> {
    // SAFETY: socket(2) with constant arguments.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_DGRAM | libc::SOCK_CLOEXEC,
            NETLINK_SOCK_DIAG,
        )
    };
    if fd < 0 {
        return Err(format!("netlink socket: {}", io::Error::last_os_error()));
    }
    // SAFETY: fd was just opened and is owned here only.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let tv = libc::timeval {
        tv_sec: 2,
        tv_usec: 0,
    };
    // SAFETY: setting a receive timeout on our own socket with a valid timeval.
    unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            &tv as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::timeval>() as libc::socklen_t,
        );
    }
    let req = diag_request();
    // SAFETY: an all-zero sockaddr_nl is the kernel as destination.
    let mut kernel: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    kernel.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: req and kernel are valid for the given lengths.
    let sent = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            req.as_ptr().cast(),
            req.len(),
            0,
            &kernel as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if sent < 0 {
        return Err(format!("sock_diag request: {}", io::Error::last_os_error()));
    }
    let mut out = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..10_000 {
        // SAFETY: buf is valid for its length.
        let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
        if n < 0 {
            return Err(format!("sock_diag: {}", io::Error::last_os_error()));
        }
        if n == 0 || parse_batch(&buf[..n as usize], &mut out)? {
            return Ok(out);
        }
    }
    Ok(out)
}

/// Parses `/proc/net/tcp` or `tcp6` text: the LISTEN sockets.
pub fn parse_proc_net_tcp(text: &str) -> Vec<TcpListen> {
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 10 || f[3] != "0A" {
            continue;
        }
        let Some((ip_hex, port_hex)) = f[1].split_once(':') else {
            continue;
        };
        let Some(ip) = parse_hex_ip(ip_hex) else {
            continue;
        };
        let Ok(port) = u16::from_str_radix(port_hex, 16) else {
            continue;
        };
        let rx = f[4].split_once(':').map_or("0", |(_, rx)| rx);
        out.push(TcpListen {
            ip,
            port,
            inode: f[9].parse().unwrap_or(0),
            queue: u32::from_str_radix(rx, 16).unwrap_or(0),
        });
    }
    out
}

/// The kernel prints each 32-bit word of the address with `%08X` of its in-memory
/// value: the bytes come back with to_ne_bytes.
fn parse_hex_ip(h: &str) -> Option<IpAddr> {
    let word = |s: &str| u32::from_str_radix(s, 16).ok().map(u32::to_ne_bytes);
    match h.len() {
        8 => Some(IpAddr::V4(Ipv4Addr::from(word(h)?))),
        32 => {
            let mut b = [0u8; 16];
            for i in 0..4 {
                b[i * 4..i * 4 + 4].copy_from_slice(&word(&h[i * 8..i * 8 + 8])?);
            }
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

/// Every listening TCP socket (IPv4 and IPv6).
pub fn tcp_listeners() -> Result<Vec<TcpListen>, String> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    for f in ["/proc/net/tcp", "/proc/net/tcp6"] {
        match std::fs::read_to_string(f) {
            Ok(t) => out.extend(parse_proc_net_tcp(&t)),
            Err(e) => errors.push(format!("{f}: {e}")),
        }
    }
    if out.is_empty() && errors.len() == 2 {
        return Err(errors.join("; "));
    }
    Ok(out)
}

/// The pids holding each of `inodes` open (from `/proc/*/fd`; other users'
/// processes only as root).
pub fn socket_holders(inodes: &[u64]) -> HashMap<u64, Vec<u32>> {
    let mut out: HashMap<u64, Vec<u32>> = HashMap::new();
    if inodes.is_empty() {
        return out;
    }
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.flatten() {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(p.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let t = target.to_string_lossy();
            let Some(ino) = t
                .strip_prefix("socket:[")
                .and_then(|r| r.strip_suffix(']'))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            if inodes.contains(&ino) {
                let v = out.entry(ino).or_default();
                if !v.contains(&pid) {
                    v.push(pid);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_net_tcp_listen_rows() {
        // As the kernel prints them (x86_64): 127.0.0.1:9000 listening with 3
        // connections queued; an established row is skipped.
        let text = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:2328 00000000:0000 0A 00000000:00000003 00:00000000 00000000     0        0 41234 1 0000000000000000 100 0 0 10 0\n   1: 0100007F:2328 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000    33        0 41299 1 0000000000000000 20 4 30 10 -1\n";
        let l = parse_proc_net_tcp(text);
        assert_eq!(l.len(), 1);
        if cfg!(target_endian = "little") {
            assert_eq!(l[0].ip, IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        assert_eq!(l[0].port, 9000);
        assert_eq!((l[0].queue, l[0].inode), (3, 41234));
        let v6 = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000200:00000000 00:00000000 00000000     0        0 1234 1 0000000000000000 100 0 0 10 0\n";
        let l = parse_proc_net_tcp(v6);
        assert_eq!(l[0].ip, IpAddr::V6(Ipv6Addr::UNSPECIFIED));
        assert_eq!(l[0].port, 80);
    }

    #[test]
    fn sock_diag_sees_a_listener_and_its_queue() {
        let d = std::env::temp_dir().join(format!("gatelog-diag-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        let path = d.join("l.sock");
        let _l = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let _c1 = std::os::unix::net::UnixStream::connect(&path).unwrap();
        let _c2 = std::os::unix::net::UnixStream::connect(&path).unwrap();
        let all = unix_listeners().expect("sock_diag works for unprivileged users");
        let me = all
            .iter()
            .find(|l| l.path == path.display().to_string())
            .expect("our listener");
        assert_eq!(me.queue, 2);
        assert!(me.backlog >= 2);
        let holders = socket_holders(&[me.inode]);
        assert!(holders[&me.inode].contains(&std::process::id()));
    }
}
