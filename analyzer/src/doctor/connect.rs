//! A real connect(2) to an upstream, made the way NGINX makes it (a non-blocking
//! stream socket; a unix socket with a full backlog answers EAGAIN at once, a TCP
//! connect that gets no answer ends at the timeout, as `fastcgi_connect_timeout`
//! does with 110), and as NGINX's worker user: in a forked child that drops to that
//! user's uid, gid and supplementary groups first. The errno that comes back is the
//! one NGINX would log.
//!
//! The child only calls async-signal-safe functions on memory prepared before the
//! fork (the address, the group list), then `_exit`s: it never returns into Rust.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use super::users::Account;

/// Where to connect.
#[derive(Debug, Clone)]
pub enum Address {
    Unix(std::path::PathBuf),
    Tcp(SocketAddr),
}

impl Address {
    /// From a normalised peer (`unix:/path`, `host:port`), resolving host names.
    pub fn from_peer(peer: &str) -> Result<Address, String> {
        if let Some(path) = peer.strip_prefix("unix:") {
            return Ok(Address::Unix(path.into()));
        }
        let spec = peer.strip_prefix("*:").map_or(peer.to_string(), |port| {
            // FPM's bare port listens on every address; NGINX reaches it locally.
            format!("127.0.0.1:{port}")
        });
        let mut addrs = spec
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve {peer}: {e}"))?;
        addrs
            .next()
            .map(Address::Tcp)
            .ok_or_else(|| format!("{peer} resolves to no address"))
    }
}

/// A socket address in the C layout, built before any fork.
struct RawAddr {
    storage: libc::sockaddr_storage,
    len: libc::socklen_t,
    family: libc::c_int,
}

fn raw_addr(addr: &Address) -> Result<RawAddr, String> {
    // SAFETY: an all-zero sockaddr_storage is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    match addr {
        Address::Unix(path) => {
            let bytes = path.as_os_str().as_encoded_bytes();
            // SAFETY: sockaddr_storage is larger than sockaddr_un and suitably aligned.
            let un = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_un) };
            if bytes.len() >= un.sun_path.len() {
                return Err(format!(
                    "{} is longer than a unix socket path may be ({} bytes)",
                    path.display(),
                    un.sun_path.len() - 1
                ));
            }
            un.sun_family = libc::AF_UNIX as libc::sa_family_t;
            for (d, s) in un.sun_path.iter_mut().zip(bytes) {
                *d = *s as libc::c_char;
            }
            let len = std::mem::size_of::<libc::sa_family_t>() + bytes.len() + 1;
            Ok(RawAddr {
                storage,
                len: len as libc::socklen_t,
                family: libc::AF_UNIX,
            })
        }
        Address::Tcp(SocketAddr::V4(a)) => {
            // SAFETY: sockaddr_storage is larger than sockaddr_in and suitably aligned.
            let sin = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in) };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_port = a.port().to_be();
            sin.sin_addr.s_addr = u32::from_ne_bytes(a.ip().octets());
            Ok(RawAddr {
                storage,
                len: std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                family: libc::AF_INET,
            })
        }
        Address::Tcp(SocketAddr::V6(a)) => {
            // SAFETY: sockaddr_storage is larger than sockaddr_in6 and suitably aligned.
            let sin6 = unsafe { &mut *(&mut storage as *mut _ as *mut libc::sockaddr_in6) };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_port = a.port().to_be();
            sin6.sin6_addr.s6_addr = a.ip().octets();
            sin6.sin6_scope_id = a.scope_id();
            Ok(RawAddr {
                storage,
                len: std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                family: libc::AF_INET6,
            })
        }
    }
}

/// The current errno.
fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// connect(2) as NGINX does it: 0 when connected, else the errno (110 when the
/// timeout passes first). Async-signal-safe: no allocation, only system calls.
fn nginx_connect(a: &RawAddr, timeout_ms: libc::c_int) -> (libc::c_int, i32) {
    // SAFETY: plain system calls on a socket this function owns; `a` is a valid
    // address of `a.len` bytes.
    unsafe {
        let fd = libc::socket(
            a.family,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        );
        if fd < 0 {
            return (-1, errno());
        }
        let rc = libc::connect(fd, &a.storage as *const _ as *const libc::sockaddr, a.len);
        if rc == 0 {
            return (fd, 0);
        }
        let e = errno();
        if e != libc::EINPROGRESS {
            libc::close(fd);
            return (-1, e);
        }
        let mut p = libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        };
        let n = libc::poll(&mut p, 1, timeout_ms);
        if n == 0 {
            libc::close(fd);
            return (-1, libc::ETIMEDOUT);
        }
        if n < 0 {
            let e = errno();
            libc::close(fd);
            return (-1, e);
        }
        let mut err: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        if libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            &mut err as *mut _ as *mut libc::c_void,
            &mut len,
        ) < 0
        {
            let e = errno();
            libc::close(fd);
            return (-1, e);
        }
        if err != 0 {
            libc::close(fd);
            return (-1, err);
        }
        (fd, 0)
    }
}

/// Connects as this process (for the FastCGI client): the connected socket in
/// blocking mode, or the errno.
pub fn connect_here(addr: &Address, timeout: Duration) -> Result<OwnedFd, i32> {
    let raw = raw_addr(addr).map_err(|_| libc::ENAMETOOLONG)?;
    let (fd, e) = nginx_connect(&raw, timeout_ms(timeout));
    if fd < 0 {
        return Err(e);
    }
    // SAFETY: fd is a socket nginx_connect opened and nobody else owns.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: fcntl on an fd we own.
    unsafe {
        let flags = libc::fcntl(owned.as_raw_fd(), libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(owned.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
    Ok(owned)
}

fn timeout_ms(t: Duration) -> libc::c_int {
    t.as_millis().min(i32::MAX as u128) as libc::c_int
}

/// What the child reports: the stage that failed (0 = the connect itself) and the
/// errno (0 = connected).
const STAGE_CONNECT: i32 = 0;
const STAGE_SETGROUPS: i32 = 1;
const STAGE_SETGID: i32 = 2;
const STAGE_SETUID: i32 = 3;

/// The result of a connect as another user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tried {
    /// 0 = connected, else the errno NGINX would get.
    Errno(i32),
    /// Could not try (dropping privileges failed, fork failed, ...).
    Failed(String),
}

/// connect(2) to `addr` as `who` (None: as this process), from a forked child.
/// Needs root to switch to another user.
pub fn connect_as(addr: &Address, who: Option<&Account>, timeout: Duration) -> Tried {
    let raw = match raw_addr(addr) {
        Ok(r) => r,
        Err(e) => return Tried::Failed(e),
    };
    let groups: Vec<libc::gid_t> = who.map(|w| w.groups.clone()).unwrap_or_default();
    let ids = who.map(|w| (w.uid, w.gid));
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: fds has room for the two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Tried::Failed(format!("pipe2: {}", io::Error::last_os_error()));
    }
    // SAFETY: both descriptors were just created and are owned here only.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    let ms = timeout_ms(timeout);
    // SAFETY: the child runs only async-signal-safe calls (setgroups, setgid,
    // setuid, socket, connect, poll, getsockopt, close, write, _exit) on memory
    // prepared before the fork, and never returns from this block.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Tried::Failed(format!("fork: {}", io::Error::last_os_error()));
    }
    if pid == 0 {
        // SAFETY: see above; the child ends with _exit.
        unsafe {
            let report = |stage: i32, e: i32| {
                let mut msg = [0u8; 8];
                msg[..4].copy_from_slice(&stage.to_ne_bytes());
                msg[4..].copy_from_slice(&e.to_ne_bytes());
                libc::write(wr.as_raw_fd(), msg.as_ptr().cast(), msg.len());
                libc::_exit(0);
            };
            if let Some((uid, gid)) = ids {
                if libc::setgroups(groups.len(), groups.as_ptr()) != 0 {
                    report(STAGE_SETGROUPS, errno());
                }
                if libc::setgid(gid) != 0 {
                    report(STAGE_SETGID, errno());
                }
                if libc::setuid(uid) != 0 {
                    report(STAGE_SETUID, errno());
                }
            }
            let (fd, e) = nginx_connect(&raw, ms);
            if fd >= 0 {
                libc::close(fd);
            }
            report(STAGE_CONNECT, e);
        }
    }
    drop(wr);
    let result = read_report(&rd, timeout + Duration::from_secs(2));
    let mut status = 0;
    if result.is_none() {
        // SAFETY: pid is our own child.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    // SAFETY: reaping our own child.
    unsafe { libc::waitpid(pid, &mut status, 0) };
    let who_name = who.map_or("this user", |w| w.name.as_str());
    match result {
        None => Tried::Failed("the connecting child did not answer".into()),
        Some((STAGE_CONNECT, e)) => Tried::Errno(e),
        Some((stage, e)) => {
            let call = match stage {
                STAGE_SETGROUPS => "setgroups",
                STAGE_SETGID => "setgid",
                STAGE_SETUID => "setuid",
                _ => "setup",
            };
            Tried::Failed(format!(
                "cannot switch to {who_name}: {call}: {}",
                io::Error::from_raw_os_error(e)
            ))
        }
    }
}

/// Reads the child's 8-byte report within `timeout`.
fn read_report(rd: &OwnedFd, timeout: Duration) -> Option<(i32, i32)> {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 8];
    let mut got = 0;
    while got < buf.len() {
        let left = deadline.checked_duration_since(Instant::now())?;
        let mut p = libc::pollfd {
            fd: rd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: p is a valid pollfd for an fd we own.
        let n = unsafe { libc::poll(&mut p, 1, timeout_ms(left).max(1)) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        if n <= 0 {
            return None;
        }
        // SAFETY: reading into the unfilled part of buf.
        let r = unsafe {
            libc::read(
                rd.as_raw_fd(),
                buf[got..].as_mut_ptr().cast(),
                buf.len() - got,
            )
        };
        if r <= 0 {
            return None;
        }
        got += r as usize;
    }
    let stage = i32::from_ne_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let e = i32::from_ne_bytes([buf[4], buf[5], buf[6], buf[7]]);
    Some((stage, e))
}

/// Whether a path names a unix socket file that exists.
pub fn is_socket(path: &Path) -> bool {
    use std::os::unix::fs::FileTypeExt;
    std::fs::metadata(path).is_ok_and(|m| m.file_type().is_socket())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    fn temp(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("gatelog-conn-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn errnos_nginx_would_get() {
        let d = temp("errnos");
        let t = Duration::from_millis(500);
        // Missing path: ENOENT.
        let missing = Address::Unix(d.join("missing.sock"));
        assert_eq!(connect_as(&missing, None, t), Tried::Errno(libc::ENOENT));
        // A listening socket: connected.
        let path = d.join("ok.sock");
        let l = UnixListener::bind(&path).unwrap();
        assert_eq!(
            connect_as(&Address::Unix(path.clone()), None, t),
            Tried::Errno(0)
        );
        assert!(is_socket(&path));
        // A socket file nobody listens on (stale): ECONNREFUSED.
        drop(l);
        assert_eq!(
            connect_as(&Address::Unix(path), None, t),
            Tried::Errno(libc::ECONNREFUSED)
        );
        // A TCP port nobody listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let a = Address::from_peer(&format!("127.0.0.1:{port}")).unwrap();
        assert_eq!(connect_as(&a, None, t), Tried::Errno(libc::ECONNREFUSED));
        assert!(matches!(
            Address::from_peer("*:9000"),
            Ok(Address::Tcp(a)) if a.to_string() == "127.0.0.1:9000"
        ));
    }

    #[test]
    fn a_full_unix_backlog_is_eagain() {
        let d = temp("backlog");
        let path = d.join("full.sock");
        // SAFETY: test-only raw socket with backlog 0 (std has no backlog option).
        let fd = unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) };
        assert!(fd >= 0);
        let raw = raw_addr(&Address::Unix(path.clone())).unwrap();
        // SAFETY: binding our own socket to a valid address.
        unsafe {
            assert_eq!(
                libc::bind(
                    fd,
                    &raw.storage as *const _ as *const libc::sockaddr,
                    raw.len
                ),
                0
            );
            assert_eq!(libc::listen(fd, 0), 0);
        }
        let t = Duration::from_millis(300);
        let mut seen = Vec::new();
        let mut held = Vec::new();
        for _ in 0..4 {
            match connect_here(&Address::Unix(path.clone()), t) {
                Ok(c) => held.push(c),
                Err(e) => seen.push(e),
            }
        }
        assert!(seen.contains(&libc::EAGAIN), "{seen:?}");
        // SAFETY: closing the test socket.
        unsafe { libc::close(fd) };
    }

    #[test]
    fn long_paths_are_refused_before_any_fork() {
        let long = Address::Unix(std::path::PathBuf::from(format!("/{}", "x".repeat(200))));
        assert!(
            matches!(connect_as(&long, None, Duration::from_millis(10)), Tried::Failed(e) if e.contains("longer"))
        );
    }
}
