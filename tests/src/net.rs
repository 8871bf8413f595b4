//! Loopback ports and fake peers: a port that refuses, a TCP listener that accepts
//! and never answers, a UDP receiver (a syslog server stand-in).

use std::collections::HashSet;
use std::io::ErrorKind;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

fn handed_out() -> &'static Mutex<HashSet<u16>> {
    static PORTS: OnceLock<Mutex<HashSet<u16>>> = OnceLock::new();
    PORTS.get_or_init(|| Mutex::new(HashSet::new()))
}

/// Marks `port` as taken by a listener this process bound itself, so that
/// [`free_port`] never hands it out (also after the listener is closed: a stopped
/// backend's port must stay refused).
pub fn reserve_port(port: u16) {
    if let Ok(mut set) = handed_out().lock() {
        set.insert(port);
    }
}

/// A loopback TCP port that was free a moment ago and that this process has not
/// handed out before (parallel tests never get the same port).
pub fn free_port() -> Result<u16, String> {
    for _ in 0..200 {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| format!("bind 127.0.0.1:0: {e}"))?;
        let port = l
            .local_addr()
            .map_err(|e| format!("local_addr: {e}"))?
            .port();
        let mut set = handed_out()
            .lock()
            .map_err(|_| "port set poisoned".to_string())?;
        if set.insert(port) {
            return Ok(port);
        }
    }
    Err("no free loopback port found".into())
}

/// Whether a TCP socket listens on 127.0.0.1:`port` (read from /proc/net/tcp, so
/// no probe connection shows up in the logs under test).
pub fn listening(port: u16) -> bool {
    let want = format!("0100007F:{port:04X}");
    let text = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    text.lines().skip(1).any(|l| {
        let mut f = l.split_whitespace();
        let local = f.nth(1);
        let state = f.nth(1);
        local == Some(want.as_str()) && state == Some("0A")
    })
}

/// Waits until something listens on 127.0.0.1:`port`.
pub fn wait_tcp(port: u16, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if listening(port) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Connects to 127.0.0.1:`port`.
pub fn connect(port: u16, timeout: Duration) -> std::io::Result<TcpStream> {
    TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), timeout)
}

/// A loopback port on which connect() is refused (ECONNREFUSED): a TCP socket bound
/// to the port but not listening, held for the lifetime of the value so nothing else
/// can take the port.
#[derive(Debug)]
pub struct RefusedPort {
    _sock: OwnedFd,
    pub port: u16,
}

impl RefusedPort {
    pub fn new() -> Result<RefusedPort, String> {
        // SAFETY: plain socket(2)/bind(2)/getsockname(2) calls on a fresh fd that
        // OwnedFd then owns.
        unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            if fd < 0 {
                return Err(format!("socket: {}", std::io::Error::last_os_error()));
            }
            let sock = OwnedFd::from_raw_fd(fd);
            let mut sa: libc::sockaddr_in = std::mem::zeroed();
            sa.sin_family = libc::AF_INET as libc::sa_family_t;
            sa.sin_addr.s_addr = u32::from(Ipv4Addr::LOCALHOST).to_be();
            sa.sin_port = 0;
            let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            if libc::bind(
                sock.as_raw_fd(),
                &sa as *const _ as *const libc::sockaddr,
                len,
            ) != 0
            {
                return Err(format!("bind: {}", std::io::Error::last_os_error()));
            }
            let mut out: libc::sockaddr_in = std::mem::zeroed();
            let mut olen = len;
            if libc::getsockname(
                sock.as_raw_fd(),
                &mut out as *mut _ as *mut libc::sockaddr,
                &mut olen,
            ) != 0
            {
                return Err(format!("getsockname: {}", std::io::Error::last_os_error()));
            }
            let port = u16::from_be(out.sin_port);
            if let Ok(mut set) = handed_out().lock() {
                set.insert(port);
            }
            Ok(RefusedPort { _sock: sock, port })
        }
    }
}

/// A TCP listener on loopback that accepts every connection and never answers nor
/// closes it (until dropped): the upstream "hangs".
#[derive(Debug)]
pub struct Blackhole {
    pub port: u16,
    stop: Arc<AtomicBool>,
    accepted: Arc<Mutex<Vec<TcpStream>>>,
    thread: Option<JoinHandle<()>>,
}

impl Blackhole {
    pub fn new() -> Result<Blackhole, String> {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| format!("bind: {e}"))?;
        l.set_nonblocking(true)
            .map_err(|e| format!("nonblocking: {e}"))?;
        let port = l
            .local_addr()
            .map_err(|e| format!("local_addr: {e}"))?
            .port();
        if let Ok(mut set) = handed_out().lock() {
            set.insert(port);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let (s, a) = (stop.clone(), accepted.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((stream, _)) => {
                        if let Ok(mut v) = a.lock() {
                            v.push(stream);
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Ok(Blackhole {
            port,
            stop,
            accepted,
            thread: Some(thread),
        })
    }

    /// How many connections were accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.lock().map(|v| v.len()).unwrap_or(0)
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A UDP socket on loopback that collects datagrams (a syslog server).
#[derive(Debug)]
pub struct UdpReceiver {
    pub port: u16,
    sock: UdpSocket,
}

impl UdpReceiver {
    pub fn new() -> Result<UdpReceiver, String> {
        let sock =
            UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| format!("udp bind: {e}"))?;
        let port = sock
            .local_addr()
            .map_err(|e| format!("local_addr: {e}"))?
            .port();
        sock.set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(|e| format!("udp timeout: {e}"))?;
        Ok(UdpReceiver { port, sock })
    }

    /// Collects datagrams until `n` arrived or `timeout` passed.
    pub fn collect(&self, n: usize, timeout: Duration) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 65536];
        while out.len() < n && Instant::now() < deadline {
            if let Ok(len) = self.sock.recv(&mut buf) {
                out.push(buf[..len].to_vec());
            }
        }
        out
    }
}

/// A TCP listener on loopback whose accept queue is full and never drained: a
/// listen(2) backlog of 0 with one connection queued, so every further SYN is dropped
/// and connect() times out (as when an FPM TCP backlog is full).
#[derive(Debug)]
pub struct SynDrop {
    pub port: u16,
    _listener: TcpListener,
    _queued: TcpStream,
}

impl SynDrop {
    pub fn new() -> Result<SynDrop, String> {
        // SAFETY: socket/bind/listen on a fresh fd that TcpListener then owns.
        let listener = unsafe {
            let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
            if fd < 0 {
                return Err(format!("socket: {}", std::io::Error::last_os_error()));
            }
            let l = TcpListener::from(OwnedFd::from_raw_fd(fd));
            let mut sa: libc::sockaddr_in = std::mem::zeroed();
            sa.sin_family = libc::AF_INET as libc::sa_family_t;
            sa.sin_addr.s_addr = u32::from(Ipv4Addr::LOCALHOST).to_be();
            let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            if libc::bind(l.as_raw_fd(), &sa as *const _ as *const libc::sockaddr, len) != 0 {
                return Err(format!("bind: {}", std::io::Error::last_os_error()));
            }
            if libc::listen(l.as_raw_fd(), 0) != 0 {
                return Err(format!("listen: {}", std::io::Error::last_os_error()));
            }
            l
        };
        let port = listener
            .local_addr()
            .map_err(|e| format!("local_addr: {e}"))?
            .port();
        if let Ok(mut set) = handed_out().lock() {
            set.insert(port);
        }
        let queued = connect(port, Duration::from_secs(2))
            .map_err(|e| format!("filling the accept queue: {e}"))?;
        // Check the premise: the next SYN is dropped.
        if connect(port, Duration::from_millis(300)).is_ok() {
            return Err("the kernel accepted a connection beyond the listen backlog".into());
        }
        Ok(SynDrop {
            port,
            _listener: listener,
            _queued: queued,
        })
    }
}

/// A TCP listener on loopback that accepts, reads a little of the request and then
/// resets the connection (close with SO_LINGER 0): the upstream dies while NGINX is
/// still sending a large request body.
#[derive(Debug)]
pub struct ResetListener {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ResetListener {
    pub fn new() -> Result<ResetListener, String> {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| format!("bind: {e}"))?;
        l.set_nonblocking(true)
            .map_err(|e| format!("nonblocking: {e}"))?;
        let port = l
            .local_addr()
            .map_err(|e| format!("local_addr: {e}"))?
            .port();
        if let Ok(mut set) = handed_out().lock() {
            set.insert(port);
        }
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match l.accept() {
                    Ok((mut stream, _)) => {
                        let _ = stream.set_nonblocking(false);
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut buf = [0u8; 4096];
                        let _ = std::io::Read::read(&mut stream, &mut buf);
                        let linger = libc::linger {
                            l_onoff: 1,
                            l_linger: 0,
                        };
                        // SAFETY: setsockopt(2) on a socket we own, with a valid linger.
                        unsafe {
                            libc::setsockopt(
                                stream.as_raw_fd(),
                                libc::SOL_SOCKET,
                                libc::SO_LINGER,
                                &linger as *const _ as *const libc::c_void,
                                std::mem::size_of::<libc::linger>() as libc::socklen_t,
                            );
                        }
                        drop(stream);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Ok(ResetListener {
            port,
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for ResetListener {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
