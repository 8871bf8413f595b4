//! A request storm: a few keep-alive HTTP/1.1 connections sending GETs as fast as
//! NGINX answers them, while the test fills a disk, reloads or reopens. Every answer is
//! kept (status, `X-Request-Id`, when it arrived), so a test can compare the records
//! written with the failures NGINX answered, request by request.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One answered request.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub request_id: String,
    /// Milliseconds after the storm started.
    pub at_ms: u64,
}

/// What the storm saw.
#[derive(Debug, Default)]
pub struct StormResult {
    pub answers: Vec<Answer>,
    /// Requests sent on a connection NGINX closed before answering (an idle keep-alive
    /// connection closed by a worker shutting down: NGINX never read them).
    pub unanswered: u64,
    /// Connections opened (one per thread at the start, more after closes).
    pub connections: u64,
    /// Errors other than a closed connection (the first few).
    pub errors: Vec<String>,
}

impl StormResult {
    /// Answers with `status`.
    pub fn with_status(&self, status: u16) -> impl Iterator<Item = &Answer> {
        self.answers.iter().filter(move |a| a.status == status)
    }

    /// The longest time (ms) without any answer between `from_ms` and `to_ms`.
    pub fn longest_silence_ms(&self, from_ms: u64, to_ms: u64) -> u64 {
        let mut at: Vec<u64> = self
            .answers
            .iter()
            .map(|a| a.at_ms)
            .filter(|&t| t >= from_ms && t <= to_ms)
            .collect();
        at.sort_unstable();
        let mut prev = from_ms;
        let mut longest = 0;
        for t in at.into_iter().chain([to_ms]) {
            longest = longest.max(t - prev);
            prev = t;
        }
        longest
    }
}

/// A running storm; [`Storm::stop`] ends it and returns what it saw.
pub struct Storm {
    stop: Arc<AtomicBool>,
    started: Instant,
    threads: Vec<JoinHandle<StormResult>>,
}

impl Storm {
    /// Starts `connections` threads sending `GET <target>` to 127.0.0.1:`port`.
    pub fn start(port: u16, target: &str, connections: usize) -> Storm {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let threads = (0..connections)
            .map(|_| {
                let stop = stop.clone();
                let target = target.to_string();
                std::thread::spawn(move || run(port, &target, &stop, started))
            })
            .collect();
        Storm {
            stop,
            started,
            threads,
        }
    }

    /// Milliseconds since the start.
    pub fn elapsed_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Sleeps until `ms` after the start.
    pub fn wait_until(&self, ms: u64) {
        let now = self.elapsed_ms();
        if ms > now {
            std::thread::sleep(Duration::from_millis(ms - now));
        }
    }

    /// Stops every connection after its current request and merges the results.
    pub fn stop(self) -> StormResult {
        self.stop.store(true, Ordering::SeqCst);
        let mut all = StormResult::default();
        for t in self.threads {
            match t.join() {
                Ok(r) => {
                    all.answers.extend(r.answers);
                    all.unanswered += r.unanswered;
                    all.connections += r.connections;
                    all.errors.extend(r.errors);
                }
                Err(_) => all.errors.push("a storm thread panicked".into()),
            }
        }
        all.answers.sort_by_key(|a| a.at_ms);
        all.errors.truncate(10);
        all
    }
}

/// How one exchange ended.
enum Exchange {
    Answered(u16, String, bool),
    /// Closed before any byte of the response.
    Closed,
    Failed(String),
}

fn run(port: u16, target: &str, stop: &AtomicBool, started: Instant) -> StormResult {
    let mut out = StormResult::default();
    let request = format!("GET {target} HTTP/1.1\r\nHost: e2e.test\r\n\r\n");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut conn: Option<BufReader<TcpStream>> = None;
    while !stop.load(Ordering::Relaxed) {
        let c = match conn.as_mut() {
            Some(c) => c,
            None => match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
                Ok(s) => {
                    let _ = s.set_nodelay(true);
                    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                    out.connections += 1;
                    conn.insert(BufReader::new(s))
                }
                Err(e) => {
                    out.errors.push(format!("connect: {e}"));
                    std::thread::sleep(Duration::from_millis(20));
                    continue;
                }
            },
        };
        match exchange(c, request.as_bytes()) {
            Exchange::Answered(status, request_id, keep) => {
                out.answers.push(Answer {
                    status,
                    request_id,
                    at_ms: started.elapsed().as_millis() as u64,
                });
                if !keep {
                    conn = None;
                }
            }
            Exchange::Closed => {
                out.unanswered += 1;
                conn = None;
            }
            Exchange::Failed(e) => {
                out.errors.push(e);
                conn = None;
            }
        }
    }
    out
}

fn exchange(c: &mut BufReader<TcpStream>, request: &[u8]) -> Exchange {
    if let Err(e) = c.get_mut().write_all(request) {
        return match e.kind() {
            std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset => {
                Exchange::Closed
            }
            _ => Exchange::Failed(format!("write: {e}")),
        };
    }
    let mut line = String::new();
    match c.read_line(&mut line) {
        Ok(0) => return Exchange::Closed,
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return Exchange::Closed,
        Err(e) => return Exchange::Failed(format!("reading the status line: {e}")),
    }
    let Some(status) = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
    else {
        return Exchange::Failed(format!("not a status line: {line:?}"));
    };
    let (mut length, mut request_id, mut keep) = (0usize, String::new(), true);
    loop {
        let mut h = String::new();
        match c.read_line(&mut h) {
            Ok(0) => return Exchange::Failed("connection closed inside the header".into()),
            Ok(_) => {}
            Err(e) => return Exchange::Failed(format!("reading the header: {e}")),
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let Some((name, value)) = h.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => length = value.parse().unwrap_or(0),
            "x-request-id" => request_id = value.to_string(),
            "connection" => keep = !value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    let mut body = vec![0u8; length];
    if let Err(e) = c.read_exact(&mut body) {
        return Exchange::Failed(format!("reading the body: {e}"));
    }
    Exchange::Answered(status, request_id, keep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn silence_counts_the_edges() {
        let r = StormResult {
            answers: [100, 150, 400, 420]
                .iter()
                .map(|&t| Answer {
                    status: 502,
                    request_id: String::new(),
                    at_ms: t,
                })
                .collect(),
            ..StormResult::default()
        };
        assert_eq!(r.longest_silence_ms(0, 500), 250);
        assert_eq!(r.longest_silence_ms(0, 1000), 580);
        assert_eq!(r.longest_silence_ms(410, 430), 10);
    }
}
