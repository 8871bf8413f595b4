//! `gatelog-bench-gen blackhole`: the upstream of bench/run's 504 storm, a TCP listener on
//! 127.0.0.1 that accepts every connection and never answers. NGINX connects, sends its
//! request and waits until `proxy_read_timeout`; when it gives up and closes, this side
//! closes too. That last part is why it is not the e2e harness's `net::Blackhole` (which
//! keeps every connection until it is dropped, right for a test of a few requests): a storm
//! opens hundreds of thousands of connections and would run out of file descriptors.
//!
//! Prints the port it listens on, then serves until killed. One thread, `poll(2)`.

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;

use crate::die;

pub(crate) fn run(args: &[String]) -> ! {
    let port: u16 = match args {
        [] => 0,
        [p] => p
            .parse()
            .unwrap_or_else(|_| die(&format!("blackhole: bad port {p:?}"))),
        _ => die("usage: gatelog-bench-gen blackhole [PORT]"),
    };
    raise_fd_limit();
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))
        .unwrap_or_else(|e| die(&format!("blackhole: bind: {e}")));
    listener
        .set_nonblocking(true)
        .unwrap_or_else(|e| die(&format!("blackhole: {e}")));
    let port = listener
        .local_addr()
        .map(|a| a.port())
        .unwrap_or_else(|e| die(&format!("blackhole: {e}")));
    let mut out = std::io::stdout();
    // bench/run reads this line to know where to proxy_pass
    if writeln!(out, "{port}").and_then(|()| out.flush()).is_err() {
        std::process::exit(1);
    }
    serve(&listener)
}

/// Up to the hard limit: each connection NGINX holds open for its read timeout is a descriptor here.
fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn serve(listener: &TcpListener) -> ! {
    let mut conns: Vec<TcpStream> = Vec::new();
    let mut fds: Vec<libc::pollfd> = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        fds.clear();
        fds.push(libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        fds.extend(conns.iter().map(|c| libc::pollfd {
            fd: c.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }));
        // SAFETY: `fds` is a live, correctly sized array of pollfd for the duration of the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if n < 0 {
            continue; // EINTR
        }
        // Connections first (indexes match `fds[1..]`), then accept: accepting changes `conns`.
        let mut i = conns.len();
        while i > 0 {
            i -= 1;
            if fds[i + 1].revents == 0 {
                continue;
            }
            let closed = loop {
                match conns[i].read(&mut buf) {
                    Ok(0) => break true,
                    Ok(_) => continue,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break false,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => break true,
                }
            };
            if closed {
                conns.swap_remove(i);
            }
        }
        if fds[0].revents != 0 {
            // Until WouldBlock (all taken) or EMFILE and friends (the next round retries).
            while let Ok((c, _)) = listener.accept() {
                if c.set_nonblocking(true).is_ok() {
                    conns.push(c);
                }
            }
        }
    }
}
