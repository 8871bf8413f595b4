//! A minimal FastCGI client (FastCGI 1.0 specification): one request as a
//! Responder — BEGIN_REQUEST, PARAMS, an empty PARAMS, an empty STDIN — then the
//! STDOUT and STDERR streams until END_REQUEST. Enough to read PHP-FPM's status page
//! over a pool's own socket, as `cgi-fcgi -bind -connect` does, with a deadline on
//! every step so a saturated pool cannot hang the doctor.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use super::connect::{self, Address};

const VERSION: u8 = 1;
const BEGIN_REQUEST: u8 = 1;
const END_REQUEST: u8 = 3;
const PARAMS: u8 = 4;
const STDIN: u8 = 5;
const STDOUT: u8 = 6;
const STDERR: u8 = 7;
const RESPONDER: u16 = 1;
const REQUEST_ID: u16 = 1;
/// Responses larger than this are cut (a status page with `full` for hundreds of
/// workers stays far below).
const MAX_RESPONSE: usize = 4 << 20;

/// What went wrong talking to the FastCGI server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FcgiError {
    /// connect() failed with this errno.
    Connect(i32),
    /// No complete answer before the deadline (the request waits for a worker).
    Timeout,
    /// The server closed the connection or broke the protocol.
    Protocol(String),
}

impl std::fmt::Display for FcgiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FcgiError::Connect(e) => write!(
                f,
                "connect() failed ({e}: {})",
                std::io::Error::from_raw_os_error(*e)
            ),
            FcgiError::Timeout => f.write_str("no answer before the timeout"),
            FcgiError::Protocol(s) => f.write_str(s),
        }
    }
}

/// A FastCGI response: the CGI status, headers and body (STDOUT), and STDERR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub stderr: Vec<u8>,
}

fn record(kind: u8, content: &[u8], out: &mut Vec<u8>) {
    // Content is at most 65535 bytes per record; padding to 8 bytes as the spec
    // recommends.
    let len = content.len().min(65_535);
    let pad = (8 - len % 8) % 8;
    out.extend([VERSION, kind]);
    out.extend(REQUEST_ID.to_be_bytes());
    out.extend((len as u16).to_be_bytes());
    out.extend([pad as u8, 0]);
    out.extend(&content[..len]);
    out.extend(std::iter::repeat(0).take(pad));
}

fn name_value_len(n: usize, out: &mut Vec<u8>) {
    if n < 128 {
        out.push(n as u8);
    } else {
        out.extend(((n as u32) | 0x8000_0000).to_be_bytes());
    }
}

/// The bytes of one request with `params` and an empty body.
pub fn encode_request(params: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut begin = Vec::new();
    begin.extend(RESPONDER.to_be_bytes());
    // flags 0: the server closes the connection after the request.
    begin.extend([0u8; 6]);
    record(BEGIN_REQUEST, &begin, &mut out);
    let mut p = Vec::new();
    for (k, v) in params {
        name_value_len(k.len(), &mut p);
        name_value_len(v.len(), &mut p);
        p.extend(k.as_bytes());
        p.extend(v.as_bytes());
    }
    for chunk in p.chunks(65_535) {
        record(PARAMS, chunk, &mut out);
    }
    record(PARAMS, &[], &mut out);
    record(STDIN, &[], &mut out);
    out
}

/// Reads records from `r` until END_REQUEST: (stdout, stderr).
pub fn read_response(r: &mut dyn Read) -> Result<(Vec<u8>, Vec<u8>), FcgiError> {
    let mut stdout = Vec::new();
    let mut stderr = Vec::new();
    loop {
        let mut h = [0u8; 8];
        read_exact(r, &mut h)?;
        if h[0] != VERSION {
            return Err(FcgiError::Protocol(format!(
                "not a FastCGI answer (version byte {})",
                h[0]
            )));
        }
        let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
        let pad = usize::from(h[6]);
        let mut body = vec![0u8; len + pad];
        read_exact(r, &mut body)?;
        body.truncate(len);
        match h[1] {
            STDOUT if stdout.len() < MAX_RESPONSE => stdout.extend(body),
            STDERR if stderr.len() < MAX_RESPONSE => stderr.extend(body),
            END_REQUEST => return Ok((stdout, stderr)),
            _ => {}
        }
    }
}

fn read_exact(r: &mut dyn Read, buf: &mut [u8]) -> Result<(), FcgiError> {
    r.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => FcgiError::Timeout,
        std::io::ErrorKind::UnexpectedEof => {
            FcgiError::Protocol("the server closed the connection before END_REQUEST".into())
        }
        _ => FcgiError::Protocol(e.to_string()),
    })
}

/// Splits a CGI answer (`Status: 200 OK\r\nContent-type: ...\r\n\r\nbody`).
pub fn parse_cgi(stdout: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let (head, body) = match find(stdout, b"\r\n\r\n") {
        Some(i) => (&stdout[..i], stdout[i + 4..].to_vec()),
        None => match find(stdout, b"\n\n") {
            Some(i) => (&stdout[..i], stdout[i + 2..].to_vec()),
            None => (&stdout[..0], stdout.to_vec()),
        },
    };
    let mut status = 200;
    let mut headers = Vec::new();
    for line in String::from_utf8_lossy(head).lines() {
        if let Some((k, v)) = line.split_once(':') {
            let (k, v) = (k.trim().to_string(), v.trim().to_string());
            if k.eq_ignore_ascii_case("status") {
                status = v
                    .split_whitespace()
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(200);
            }
            headers.push((k, v));
        }
    }
    (status, headers, body)
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// GETs `path?query` from the FastCGI server at `addr` (as FPM's status page wants
/// it: SCRIPT_NAME and SCRIPT_FILENAME are the path), within `timeout` overall.
pub fn get(
    addr: &Address,
    path: &str,
    query: &str,
    timeout: Duration,
) -> Result<Response, FcgiError> {
    let deadline = Instant::now() + timeout;
    let fd = connect::connect_here(addr, timeout).map_err(FcgiError::Connect)?;
    let uri = if query.is_empty() {
        path.to_string()
    } else {
        format!("{path}?{query}")
    };
    let params = [
        ("GATEWAY_INTERFACE", "CGI/1.1"),
        ("SERVER_SOFTWARE", "gatelog-doctor"),
        ("SERVER_PROTOCOL", "HTTP/1.1"),
        ("REQUEST_METHOD", "GET"),
        ("SCRIPT_NAME", path),
        ("SCRIPT_FILENAME", path),
        ("DOCUMENT_URI", path),
        ("REQUEST_URI", uri.as_str()),
        ("QUERY_STRING", query),
        ("REMOTE_ADDR", "127.0.0.1"),
        ("SERVER_NAME", "localhost"),
    ];
    let req = encode_request(&params);
    let left = |d: Instant| {
        d.checked_duration_since(Instant::now())
            .filter(|l| !l.is_zero())
            .ok_or(FcgiError::Timeout)
    };
    let (stdout, stderr) = match addr {
        Address::Unix(_) => {
            let mut s = UnixStream::from(fd);
            let t = left(deadline)?;
            s.set_write_timeout(Some(t))
                .and_then(|_| s.set_read_timeout(Some(t)))
                .map_err(|e| FcgiError::Protocol(e.to_string()))?;
            s.write_all(&req)
                .map_err(|e| FcgiError::Protocol(format!("sending the request: {e}")))?;
            read_response(&mut s)?
        }
        Address::Tcp(_) => {
            let mut s = std::net::TcpStream::from(fd);
            let t = left(deadline)?;
            s.set_write_timeout(Some(t))
                .and_then(|_| s.set_read_timeout(Some(t)))
                .map_err(|e| FcgiError::Protocol(e.to_string()))?;
            s.write_all(&req)
                .map_err(|e| FcgiError::Protocol(format!("sending the request: {e}")))?;
            read_response(&mut s)?
        }
    };
    let (status, headers, body) = parse_cgi(&stdout);
    Ok(Response {
        status,
        headers,
        body,
        stderr,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_bytes_follow_the_spec() {
        let b = encode_request(&[("SCRIPT_NAME", "/status")]);
        // BEGIN_REQUEST: header + 8 bytes (role 1, flags 0).
        assert_eq!(&b[..8], &[1, 1, 0, 1, 0, 8, 0, 0]);
        assert_eq!(&b[8..16], &[0, 1, 0, 0, 0, 0, 0, 0]);
        // PARAMS: 1 + 1 + 11 + 7 = 20 bytes, padded by 4.
        assert_eq!(&b[16..24], &[1, 4, 0, 1, 0, 20, 4, 0]);
        assert_eq!(b[24], 11);
        assert_eq!(b[25], 7);
        assert_eq!(&b[26..37], b"SCRIPT_NAME");
        assert_eq!(&b[37..44], b"/status");
        // Empty PARAMS and STDIN end the request.
        let tail = &b[48..];
        assert_eq!(tail, &[1, 4, 0, 1, 0, 0, 0, 0, 1, 5, 0, 1, 0, 0, 0, 0]);
        // Long values use the 4-byte length.
        let long = "x".repeat(200);
        let b = encode_request(&[("QUERY_STRING", long.as_str())]);
        assert_eq!(&b[16 + 8 + 1..16 + 8 + 5], &[0x80, 0, 0, 200]);
    }

    #[test]
    fn response_records_and_cgi_headers() {
        // What php-fpm sends for `/status?json`: STDOUT in one record, END_REQUEST.
        let body = b"Content-type: application/json\r\nExpires: Thu, 01 Jan 1970 00:00:00 GMT\r\n\r\n{\"pool\":\"www\"}";
        let mut wire = Vec::new();
        record(STDOUT, body, &mut wire);
        record(STDERR, b"warn", &mut wire);
        record(STDOUT, &[], &mut wire);
        record(END_REQUEST, &[0, 0, 0, 0, 0, 0, 0, 0], &mut wire);
        let (out, err) = read_response(&mut wire.as_slice()).unwrap();
        assert_eq!(err, b"warn");
        let (status, headers, body) = parse_cgi(&out);
        assert_eq!(status, 200);
        assert_eq!(headers[0].1, "application/json");
        assert_eq!(body, b"{\"pool\":\"www\"}");
        let (status, _, _) = parse_cgi(b"Status: 404 Not Found\r\n\r\nFile not found.\n");
        assert_eq!(status, 404);
        // A cut stream is a protocol error, not a hang or a panic.
        let e = read_response(&mut &wire[..10]).unwrap_err();
        assert!(matches!(e, FcgiError::Protocol(_)), "{e:?}");
        let e = read_response(&mut &b"HTTP/1.1 200 OK\r\n"[..]).unwrap_err();
        assert!(e.to_string().contains("not a FastCGI answer"), "{e}");
    }
}
