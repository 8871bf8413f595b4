//! A small HTTP backend (a Node, gunicorn or Apache app stand-in) that a test can
//! make fail the ways real backends fail: stopped (nothing listens: ECONNREFUSED on
//! TCP, ENOENT for a removed unix socket), hanging (accepts, reads the request, never
//! answers: NGINX's `proxy_read_timeout`) and resetting (reads the request, then
//! closes with SO_LINGER 0: an RST, as when the app process dies mid-request).
//!
//! It listens on 127.0.0.1 or on a unix socket (`proxy_pass http://unix:/path:`), so
//! the analyzer sees upstreams that are not PHP-FPM. One thread accepts and handles
//! connections one at a time; the behaviour can change between requests.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the backend does with the next connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Reads the request and answers `200 OK` with a short body.
    Answer,
    /// Reads the request and keeps the connection open without a byte of answer.
    Hang,
    /// Reads the request and closes with an RST (SO_LINGER 0).
    Reset,
}

impl Behaviour {
    fn to_u8(self) -> u8 {
        match self {
            Behaviour::Answer => 0,
            Behaviour::Hang => 1,
            Behaviour::Reset => 2,
        }
    }

    fn from_u8(v: u8) -> Behaviour {
        match v {
            1 => Behaviour::Hang,
            2 => Behaviour::Reset,
            _ => Behaviour::Answer,
        }
    }
}

/// Where the backend listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendAddr {
    Tcp(u16),
    Unix(PathBuf),
}

impl BackendAddr {
    /// As NGINX prints the peer (`$upstream_addr`, `connect() to ...`).
    pub fn peer(&self) -> String {
        match self {
            BackendAddr::Tcp(port) => format!("127.0.0.1:{port}"),
            BackendAddr::Unix(p) => format!("unix:{}", p.display()),
        }
    }

    /// The `proxy_pass` argument (no URI part: the request URI is passed as is).
    pub fn proxy_pass(&self) -> String {
        match self {
            BackendAddr::Tcp(port) => format!("http://127.0.0.1:{port}"),
            BackendAddr::Unix(p) => format!("http://unix:{}:", p.display()),
        }
    }
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

/// A connection of either kind.
enum Conn {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Conn {
    fn set_read_timeout(&self, t: Duration) {
        let _ = match self {
            Conn::Tcp(s) => s.set_nonblocking(false).and(s.set_read_timeout(Some(t))),
            Conn::Unix(s) => s.set_nonblocking(false).and(s.set_read_timeout(Some(t))),
        };
    }

    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Tcp(s) => s.read(buf),
            Conn::Unix(s) => s.read(buf),
        }
    }

    fn write_all(&mut self, b: &[u8]) -> std::io::Result<()> {
        match self {
            Conn::Tcp(s) => s.write_all(b),
            Conn::Unix(s) => s.write_all(b),
        }
    }

    fn raw_fd(&self) -> i32 {
        match self {
            Conn::Tcp(s) => s.as_raw_fd(),
            Conn::Unix(s) => s.as_raw_fd(),
        }
    }
}

/// The running backend; stopped (listener closed, unix socket removed) when dropped.
pub struct HttpBackend {
    pub addr: BackendAddr,
    behaviour: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    /// Request heads read so far (for the premise checks).
    requests: Arc<Mutex<Vec<String>>>,
    thread: Option<JoinHandle<()>>,
    /// After a TCP backend stopped: a bound, non-listening socket on its port, so
    /// that no other listener (another test's port 0) takes it and connects stay
    /// refused.
    hold: Option<std::os::fd::OwnedFd>,
}

impl std::fmt::Debug for HttpBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpBackend")
            .field("addr", &self.addr)
            .field("behaviour", &self.behaviour())
            .field("running", &self.running())
            .finish()
    }
}

impl HttpBackend {
    /// A backend on 127.0.0.1 (a free port).
    pub fn tcp(behaviour: Behaviour) -> Result<HttpBackend, String> {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(|e| format!("bind: {e}"))?;
        l.set_nonblocking(true)
            .map_err(|e| format!("nonblocking: {e}"))?;
        let port = l
            .local_addr()
            .map_err(|e| format!("local_addr: {e}"))?
            .port();
        crate::net::reserve_port(port);
        Ok(HttpBackend::spawn(
            BackendAddr::Tcp(port),
            Listener::Tcp(l),
            behaviour,
        ))
    }

    /// A backend on the unix socket `path` (mode 0666, so NGINX's www-data workers
    /// may connect), as gunicorn's `--bind unix:/run/app.sock`.
    pub fn unix(path: &Path, behaviour: Behaviour) -> Result<HttpBackend, String> {
        let _ = std::fs::remove_file(path);
        let l = UnixListener::bind(path).map_err(|e| format!("bind {}: {e}", path.display()))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))
            .map_err(|e| format!("chmod {}: {e}", path.display()))?;
        l.set_nonblocking(true)
            .map_err(|e| format!("nonblocking: {e}"))?;
        Ok(HttpBackend::spawn(
            BackendAddr::Unix(path.to_path_buf()),
            Listener::Unix(l),
            behaviour,
        ))
    }

    fn spawn(addr: BackendAddr, l: Listener, behaviour: Behaviour) -> HttpBackend {
        let b = Arc::new(AtomicU8::new(behaviour.to_u8()));
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (b2, s2, a2, r2) = (b.clone(), stop.clone(), accepted.clone(), requests.clone());
        let thread = std::thread::spawn(move || serve(l, b2, s2, a2, r2));
        HttpBackend {
            addr,
            behaviour: b,
            stop,
            accepted,
            requests,
            thread: Some(thread),
            hold: None,
        }
    }

    /// Changes what the next connections get.
    pub fn set(&self, behaviour: Behaviour) {
        self.behaviour.store(behaviour.to_u8(), Ordering::SeqCst);
    }

    pub fn behaviour(&self) -> Behaviour {
        Behaviour::from_u8(self.behaviour.load(Ordering::SeqCst))
    }

    pub fn running(&self) -> bool {
        self.thread.is_some()
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// The request heads read so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Stops the backend as a stopped service: the listener is closed (held
    /// connections too) and a unix socket file is removed, so a TCP connect is refused
    /// and a unix connect finds no file. Then checks that premise.
    pub fn stop(&mut self) -> Result<(), String> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join()
                .map_err(|_| "the backend thread panicked".to_string())?;
        }
        match &self.addr {
            BackendAddr::Tcp(port) => {
                // Another test's `free_port` (or a browser's debugging port) may bind the
                // freed port for an instant before the hold takes it: only a listener
                // that stays for a second breaks the premise.
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
                loop {
                    if self.hold.is_none() {
                        self.hold = hold_port(*port);
                    }
                    if !crate::net::listening(*port) {
                        break;
                    }
                    if std::time::Instant::now() > deadline {
                        return Err(format!(
                            "something still listens on 127.0.0.1:{port} after the backend stopped"
                        ));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
            }
            BackendAddr::Unix(p) => {
                let _ = std::fs::remove_file(p);
                if p.exists() {
                    return Err(format!(
                        "{} still exists after the backend stopped",
                        p.display()
                    ));
                }
            }
        }
        Ok(())
    }
}

impl Drop for HttpBackend {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// Binds a socket to 127.0.0.1:`port` without listening (SO_REUSEADDR: the port has
/// connections in TIME_WAIT). None when that fails (the port then stays free).
fn hold_port(port: u16) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: socket/setsockopt/bind on a fresh fd that OwnedFd then owns.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return None;
        }
        let sock = std::os::fd::OwnedFd::from_raw_fd(fd);
        let one: libc::c_int = 1;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_REUSEADDR,
            &one as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        let mut sa: libc::sockaddr_in = std::mem::zeroed();
        sa.sin_family = libc::AF_INET as libc::sa_family_t;
        sa.sin_addr.s_addr = u32::from(Ipv4Addr::LOCALHOST).to_be();
        sa.sin_port = port.to_be();
        let len = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
        if libc::bind(fd, &sa as *const _ as *const libc::sockaddr, len) != 0 {
            return None;
        }
        Some(sock)
    }
}

/// Reads a request head (up to the blank line, 64 KiB or one second of silence).
fn read_head(c: &mut Conn) -> String {
    c.set_read_timeout(Duration::from_millis(1000));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(1);
    while Instant::now() < deadline && buf.len() < 65536 {
        match c.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    break;
                }
            }
        }
    }
    let end = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn reset(c: Conn) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: setsockopt(2) on a socket this function owns, with a valid linger struct.
    unsafe {
        libc::setsockopt(
            c.raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &linger as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
    drop(c);
}

fn serve(
    l: Listener,
    behaviour: Arc<AtomicU8>,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicUsize>,
    requests: Arc<Mutex<Vec<String>>>,
) {
    // Hanging connections stay open until the backend stops.
    let mut held: Vec<Conn> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        let conn = match &l {
            Listener::Tcp(t) => t.accept().map(|(s, _)| Conn::Tcp(s)),
            Listener::Unix(u) => u.accept().map(|(s, _)| Conn::Unix(s)),
        };
        let mut c = match conn {
            Ok(c) => c,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
        };
        accepted.fetch_add(1, Ordering::SeqCst);
        let head = read_head(&mut c);
        if let Ok(mut r) = requests.lock() {
            r.push(head);
        }
        match Behaviour::from_u8(behaviour.load(Ordering::SeqCst)) {
            Behaviour::Answer => {
                let body = "hello from the backend\n";
                let _ = c.write_all(
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .as_bytes(),
                );
            }
            Behaviour::Hang => held.push(c),
            // SO_LINGER 0 on a non-Tcp socket is harmless; a unix socket simply closes.
            Behaviour::Reset => reset(c),
        }
    }
    drop(held);
    drop(l);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(s: &mut impl Write) {
        let _ = s.write_all(b"GET /app/x HTTP/1.0\r\nHost: t\r\n\r\n");
    }

    #[test]
    fn answers_resets_and_refuses_when_stopped() {
        let mut b = HttpBackend::tcp(Behaviour::Answer).expect("backend");
        let BackendAddr::Tcp(port) = b.addr.clone() else {
            panic!("tcp backend");
        };
        let mut c = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
        ask(&mut c);
        let mut out = String::new();
        let _ = c.read_to_string(&mut out);
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out:?}");
        assert!(b.requests()[0].starts_with("GET /app/x HTTP/1.0"));

        b.set(Behaviour::Reset);
        let mut c = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect("connect");
        ask(&mut c);
        let mut buf = [0u8; 64];
        let e = c.read(&mut buf).expect_err("an RST, not an answer or EOF");
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset);

        b.stop().expect("stop");
        let e = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).expect_err("refused");
        assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
        assert_eq!(b.accepted(), 2);
    }

    #[test]
    fn hangs_and_a_stopped_unix_backend_leaves_no_socket() {
        let dir = std::env::temp_dir().join(format!("gatelog-backend-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("mkdir");
        let path = dir.join("app.sock");
        let mut b = HttpBackend::unix(&path, Behaviour::Hang).expect("backend");
        assert_eq!(
            b.addr.proxy_pass(),
            format!("http://unix:{}:", path.display())
        );
        let mut c = UnixStream::connect(&path).expect("connect");
        ask(&mut c);
        c.set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        let mut buf = [0u8; 64];
        let e = c.read(&mut buf).expect_err("no answer");
        assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
        b.stop().expect("stop");
        assert!(!path.exists());
        let e = UnixStream::connect(&path).expect_err("gone");
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
