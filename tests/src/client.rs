//! HTTP clients: curl (HTTP/1.1 and HTTP/2 prior knowledge) and raw TCP requests.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

/// What a client saw.
#[derive(Debug, Clone)]
pub struct Response {
    /// The target as sent (path and query).
    pub target: String,
    pub status: u16,
    /// The `X-Request-Id` header every test server adds (`$request_id`).
    pub request_id: String,
    pub body: Vec<u8>,
    pub http2: bool,
    pub elapsed: Duration,
}

/// One request.
#[derive(Debug, Clone)]
pub struct Request {
    pub port: u16,
    /// Path and query, sent as is (curl --path-as-is).
    pub target: String,
    pub http2: bool,
    pub method: String,
    pub max_time: Duration,
    /// A file sent as the request body (`--data-binary @file`).
    pub body_file: Option<std::path::PathBuf>,
}

impl Request {
    pub fn get(port: u16, target: &str) -> Request {
        Request {
            port,
            target: target.to_string(),
            http2: false,
            method: "GET".into(),
            max_time: Duration::from_secs(20),
            body_file: None,
        }
    }

    /// POST with the content of `file` as body.
    pub fn post_file(port: u16, target: &str, file: &std::path::Path) -> Request {
        let mut r = Request::get(port, target);
        r.method = "POST".into();
        r.body_file = Some(file.to_path_buf());
        r
    }

    pub fn h2(mut self) -> Request {
        self.http2 = true;
        self
    }

    /// Sends the request with curl.
    pub fn send(&self) -> Result<Response, String> {
        const MARK: &str = "\n--gatelog-e2e--";
        let url = format!("http://127.0.0.1:{}{}", self.port, self.target);
        let mut cmd = Command::new("curl");
        // --noproxy: an http_proxy in the environment must not catch loopback traffic.
        cmd.args(["-sS", "--noproxy", "*", "--path-as-is", "-X", &self.method])
            .arg("--max-time")
            .arg(format!("{}", self.max_time.as_secs_f64()))
            .arg("-w")
            .arg(format!(
                "{MARK}%{{http_code}} %header{{x-request-id}} %{{http_version}}"
            ));
        if let Some(f) = &self.body_file {
            cmd.arg("--data-binary").arg(format!("@{}", f.display()));
            cmd.args([
                "-H",
                "Content-Type: application/octet-stream",
                "-H",
                "Expect:",
            ]);
        }
        if self.http2 {
            cmd.arg("--http2-prior-knowledge");
        } else {
            cmd.arg("--http1.1");
        }
        cmd.arg(&url);
        let start = Instant::now();
        let out = cmd.output().map_err(|e| format!("running curl: {e}"))?;
        let elapsed = start.elapsed();
        let stdout = out.stdout;
        let mark = MARK.as_bytes();
        let pos = stdout
            .windows(mark.len())
            .rposition(|w| w == mark)
            .ok_or_else(|| {
                format!(
                    "curl {url}: no write-out in output (exit {:?}): {}",
                    out.status.code(),
                    String::from_utf8_lossy(&out.stderr)
                )
            })?;
        let tail = String::from_utf8_lossy(&stdout[pos + mark.len()..]).into_owned();
        let mut it = tail.split(' ');
        let status: u16 = it
            .next()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| format!("curl {url}: bad write-out {tail:?}"))?;
        if status == 0 {
            return Err(format!(
                "curl {url}: no response (exit {:?}): {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let request_id = it.next().unwrap_or("").trim().to_string();
        let version = it.next().unwrap_or("").trim().to_string();
        if self.http2 && version != "2" {
            return Err(format!(
                "curl {url}: asked for HTTP/2, got HTTP version {version:?}"
            ));
        }
        Ok(Response {
            target: self.target.clone(),
            status,
            request_id,
            body: stdout[..pos].to_vec(),
            http2: self.http2,
            elapsed,
        })
    }
}

/// GET `target` on 127.0.0.1:`port` over HTTP/1.1.
pub fn get(port: u16, target: &str) -> Result<Response, String> {
    Request::get(port, target).send()
}

/// Sends all requests at once (one thread each) and returns the responses in order.
pub fn concurrent(reqs: &[Request]) -> Vec<Result<Response, String>> {
    std::thread::scope(|s| {
        let handles: Vec<_> = reqs.iter().map(|r| s.spawn(move || r.send())).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("client thread panicked".into()))
            })
            .collect()
    })
}

/// Sends `raw` bytes as they are (the request should carry `Connection: close`) and
/// reads the answer until EOF. Returns (status, x-request-id, whole answer).
pub fn raw(port: u16, raw: &[u8], timeout: Duration) -> Result<Response, String> {
    let start = Instant::now();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut s =
        TcpStream::connect_timeout(&addr, timeout).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_read_timeout(Some(timeout))
        .map_err(|e| format!("timeout: {e}"))?;
    s.write_all(raw).map_err(|e| format!("write: {e}"))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).map_err(|e| format!("read: {e}"))?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no HTTP status in raw answer: {text:?}"))?;
    let request_id = text
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("x-request-id")
                .then(|| v.trim().to_string())
        })
        .unwrap_or_default();
    Ok(Response {
        target: String::new(),
        status,
        request_id,
        body: buf,
        http2: false,
        elapsed: start.elapsed(),
    })
}
