//! Every pool: its master and workers (from `/proc`, by pool name), workers against
//! `pm.max_children`, the accept queue of its socket (the kernel's count), its
//! status page read over its own socket with the FastCGI client (`?json&full`: the
//! listen queue, `max children reached`, slow requests, what each worker runs), and
//! the guide's formula `pm.max_children = (RAM - reserved) / worker RSS`. A pool
//! saturated now, or a request running past NGINX's read timeout now, is a finding.

use serde::Serialize;
use serde_json::Value;

use super::connect::Address;
use super::fastcgi::{self, FcgiError};
use super::finding::{errno_text, Finding, Findings, Seen, Severity};
use super::host::Action;
use super::{Doctor, PoolRef};
use crate::context::parse_nginx_duration_ms;
use crate::model::{Cause, TimeoutInForce};
use crate::parse::nginx_conf::read_timeout_directive;

/// What the status page said (the fields the checks use).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Status {
    pub listen_queue: Option<u64>,
    pub max_listen_queue: Option<u64>,
    pub idle_processes: Option<u64>,
    pub active_processes: Option<u64>,
    pub total_processes: Option<u64>,
    pub max_children_reached: Option<u64>,
    pub slow_requests: Option<u64>,
    pub accepted_conn: Option<u64>,
    /// Workers busy with a request.
    pub running: Vec<Running>,
}

/// A worker busy with a request (status page `?full`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Running {
    pub pid: u64,
    /// `GET /sleep.php?ms=5000`.
    pub request: String,
    /// How long it has been running.
    pub ms: u64,
}

/// A socket's accept queue as the kernel counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Queue {
    pub waiting: u32,
    /// Known for unix sockets (sock_diag), not from /proc/net/tcp.
    pub backlog: Option<u32>,
}

/// Reads `?json&full` output.
pub fn parse_status(body: &[u8]) -> Option<Status> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let n = |k: &str| v.get(k).and_then(Value::as_u64);
    let mut s = Status {
        listen_queue: n("listen queue"),
        max_listen_queue: n("max listen queue"),
        idle_processes: n("idle processes"),
        active_processes: n("active processes"),
        total_processes: n("total processes"),
        max_children_reached: n("max children reached"),
        slow_requests: n("slow requests"),
        accepted_conn: n("accepted conn"),
        running: Vec::new(),
    };
    for p in v
        .get("processes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let state = p.get("state").and_then(Value::as_str).unwrap_or("");
        if state != "Running" {
            continue;
        }
        let method = p
            .get("request method")
            .and_then(Value::as_str)
            .unwrap_or("");
        let uri = p.get("request uri").and_then(Value::as_str).unwrap_or("");
        let us = p
            .get("request duration")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        s.running.push(Running {
            pid: p.get("pid").and_then(Value::as_u64).unwrap_or(0),
            request: format!("{method} {uri}"),
            ms: us / 1000,
        });
    }
    Some(s)
}

/// One pool as checked (for the report).
#[derive(Debug, Clone, Serialize)]
pub struct PoolReport {
    pub name: String,
    /// The file of its `listen`.
    pub config: String,
    pub listen: Option<String>,
    pub pm: String,
    pub max_children: Option<u32>,
    pub master_pid: Option<u32>,
    pub workers: usize,
    pub avg_worker_rss_kb: Option<u64>,
    /// The kernel's accept queue of its socket.
    pub socket_queue: Option<Queue>,
    pub status: Option<Status>,
    pub status_error: Option<String>,
    /// The guide's formula with this host's figures.
    pub formula: Option<String>,
}

/// The guide's formula with this host's figures.
struct Formula {
    /// `pm.max_children = (RAM 7940 MB - reserved 1985 MB) / worker 12 MB = 496`.
    text: String,
    /// The pm.max_children that fits.
    fits: u64,
}

fn formula(d: &Doctor, p: &PoolRef, avg_kb: Option<u64>) -> Option<Formula> {
    let worker_mb = (avg_kb? / 1024).max(1);
    let mem = d.memory(p.master)?;
    let (ram, reserved, what) = (mem.ram_mb, mem.reserved_mb, mem.ram_is);
    let n = ram.saturating_sub(reserved) / worker_mb;
    Some(Formula {
        text: format!(
            "pm.max_children = (RAM {ram} MB [{what}] - reserved {reserved} MB) / worker {worker_mb} MB = {n}"
        ),
        fits: n,
    })
}

/// The largest read timeout NGINX applies on the way to this pool (ms), with the
/// directive's text and place (NGINX's default 60 s when none is set).
pub fn read_timeout_to(d: &Doctor, p: &PoolRef) -> Option<TimeoutInForce> {
    let conf = d.nginx.as_ref()?.conf.as_ref()?;
    let listen = p.listen()?;
    let mut best: Option<TimeoutInForce> = None;
    for t in conf.targets.iter().filter(|t| t.peer.reaches(&listen)) {
        let (ms, source) = match conf.read_timeout_for(&t.pass) {
            Some(dir) => match parse_nginx_duration_ms(dir.arg()) {
                Some(ms) => (
                    ms,
                    format!("{} {} ({})", dir.name, dir.args.join(" "), dir.place()),
                ),
                None => continue,
            },
            None => (
                60_000,
                format!(
                    "{} not set: NGINX's default 60s applies to {} ({})",
                    read_timeout_directive(&t.pass.name).unwrap_or("read timeout"),
                    t.pass.text(),
                    t.pass.place()
                ),
            ),
        };
        if best.as_ref().map_or(true, |b| ms > b.ms) {
            best = Some(TimeoutInForce { ms, source });
        }
    }
    best
}

/// Checks every pool; adds the findings and notes.
pub fn check(d: &mut Doctor) -> Vec<PoolReport> {
    let mut found = Findings::default();
    let reports = d
        .pools()
        .iter()
        .map(|p| check_one(d, p, &mut found))
        .collect();
    d.findings.absorb(found);
    reports
}

/// Checks one pool: its report, with what it found added to `found`.
fn check_one(d: &Doctor, p: &PoolRef, found: &mut Findings) -> PoolReport {
    let avg = average_worker_rss_kb(p);
    let formula = formula(d, p, avg);
    let mut report = pool_report(d, p, avg, &formula);
    if p.master.is_none() {
        // Whether that matters is the targets' question (a pool nobody passes to may
        // be off on purpose).
        return report;
    }
    let status = read_status_page(d, p, &mut report, found);
    match saturation(p, &report, &status) {
        Some(evidence) => found.find(saturated(p, evidence, formula.as_ref())),
        None => {
            if let Some(n) = report
                .status
                .as_ref()
                .and_then(|s| s.max_children_reached)
                .filter(|n| *n > 0)
            {
                found.note(
                    "status-page",
                    format!(
                        "pool {} reached pm.max_children {n} time(s) since it started (status page `max children reached`)",
                        p.name()
                    ),
                    formula.as_ref().map(|f| f.text.clone()),
                );
            }
        }
    }
    if let (Some(s), Some(limit)) = (&report.status, read_timeout_to(d, p)) {
        if let Some(f) = outrun_read_timeout(p, s, &status, &limit) {
            found.find(f);
        }
    }
    report
}

fn average_worker_rss_kb(p: &PoolRef) -> Option<u64> {
    let rss: Vec<u64> = p
        .workers
        .iter()
        .map(|w| w.rss_kb)
        .filter(|k| *k > 0)
        .collect();
    (!rss.is_empty()).then(|| rss.iter().sum::<u64>() / rss.len() as u64)
}

/// What is known of the pool before its status page is asked.
fn pool_report(d: &Doctor, p: &PoolRef, avg: Option<u64>, formula: &Option<Formula>) -> PoolReport {
    let listen = p.listen();
    let socket_queue = listen.as_ref().and_then(|l| match l.unix_path() {
        Some(path) => d.unix_listener(path).map(|x| Queue {
            waiting: x.queue,
            backlog: Some(x.backlog),
        }),
        None => d.tcp_listener(l).map(|x| Queue {
            waiting: x.queue,
            backlog: None,
        }),
    });
    PoolReport {
        name: p.name().to_string(),
        config: p.conf.file.to_string(),
        listen: listen.as_ref().map(|l| l.to_string()),
        pm: p.conf.pool.pm().to_string(),
        max_children: p.conf.pool.max_children(),
        master_pid: p.master.map(|m| m.pid),
        workers: p.workers.len(),
        avg_worker_rss_kb: avg,
        socket_queue,
        status: None,
        status_error: None,
        formula: formula.as_ref().map(|f| f.text.clone()),
    }
}

/// How asking the status page went, besides what the report holds.
struct StatusAsked {
    /// `pm.status_path`, when the pool sets one.
    path: Option<String>,
    /// Why the request waited (no answer in time, EAGAIN on connect): itself a
    /// sign of a saturated pool.
    wait: Option<String>,
}

/// Asks the status page over the pool's own socket (or its status_listen); the
/// answer or the error goes into the report.
fn read_status_page(
    d: &Doctor,
    p: &PoolRef,
    report: &mut PoolReport,
    found: &mut Findings,
) -> StatusAsked {
    let path = p.conf.pool.get("pm.status_path").map(str::to_string);
    let mut wait: Option<String> = None;
    let Some(path_s) = &path else {
        found.note(
            "status-page",
            format!(
                "pool {} has no status page, so its listen queue, slow requests and running requests cannot be read",
                p.name()
            ),
            Some(format!(
                "add to pool [{}] in {}:\n    pm.status_path = /fpm-status\n    ping.path = /fpm-ping\nthen reload FPM ({})",
                p.name(),
                p.conf.file,
                p.side.command_for(Action::Reload, p.master.map(|m| m.pid))
            )),
        );
        return StatusAsked { path, wait };
    };
    let via = p
        .conf
        .pool
        .get("pm.status_listen")
        .map(crate::model::Peer::from_fpm_listen)
        .or_else(|| p.listen());
    match via.map(|v| Address::from_peer(v.as_str())) {
        Some(Ok(addr)) => match fastcgi::get(&addr, path_s, "json&full", d.timeout) {
            Ok(r) if r.status == 200 => match parse_status(&r.body) {
                Some(s) => report.status = Some(s),
                None => {
                    report.status_error = Some(format!(
                        "{path_s}?json&full did not answer JSON: {}",
                        String::from_utf8_lossy(&r.body[..r.body.len().min(120)])
                    ))
                }
            },
            Ok(r) => {
                report.status_error = Some(format!(
                    "{path_s}?json&full answered status {}: {}",
                    r.status,
                    String::from_utf8_lossy(&r.body[..r.body.len().min(120)]).trim()
                ))
            }
            Err(FcgiError::Timeout) => {
                let why = format!(
                    "the status request got no answer within {} ms: it waits in the queue behind busy workers",
                    d.timeout.as_millis()
                );
                wait = Some(why.clone());
                report.status_error = Some(why);
            }
            Err(FcgiError::Connect(e)) if e == libc::EAGAIN => {
                let why = format!(
                    "the status request's connect() failed with {}",
                    errno_text(e)
                );
                wait = Some(why.clone());
                report.status_error = Some(why);
            }
            Err(e) => report.status_error = Some(format!("{path_s}: {e}")),
        },
        Some(Err(e)) => report.status_error = Some(e),
        None => report.status_error = Some("the pool has no listen address".into()),
    }
    StatusAsked { path, wait }
}

/// Signs that every worker is busy and connections wait now; `None` when there
/// are none.
fn saturation(p: &PoolRef, report: &PoolReport, status: &StatusAsked) -> Option<Vec<Seen>> {
    let listen = p.listen();
    let status_path = status.path.as_deref().unwrap_or("");
    let max = p.conf.pool.max_children();
    let mut sat = Vec::new();
    if let Some(Queue {
        waiting: q,
        backlog: b,
    }) = report.socket_queue.filter(|q| q.waiting > 0)
    {
        sat.push(Seen::new(
            format!(
                "accept queue of {} ({})",
                listen.as_ref().map(|l| l.to_string()).unwrap_or_default(),
                if listen.as_ref().is_some_and(|l| l.is_unix()) {
                    "sock_diag"
                } else {
                    "/proc/net/tcp"
                }
            ),
            format!(
                "{q} connection(s) waiting for a worker{}",
                b.map(|b| format!(" (backlog {b})")).unwrap_or_default()
            ),
        ));
    }
    if let Some(s) = &report.status {
        if let Some(q) = s.listen_queue.filter(|q| *q > 0) {
            sat.push(Seen::new(
                format!("status page {status_path}?json"),
                format!(
                    "listen queue {q}, max listen queue {}, idle processes {}, active processes {}",
                    s.max_listen_queue.unwrap_or(0),
                    s.idle_processes.unwrap_or(0),
                    s.active_processes.unwrap_or(0)
                ),
            ));
        }
    }
    let full = max.is_some_and(|m| p.workers.len() as u32 >= m);
    if let Some(why) = &status.wait {
        if full {
            sat.push(Seen::new(format!("status page {status_path}"), why.clone()));
        }
    }
    if sat.is_empty() {
        return None;
    }
    sat.push(Seen::new(
        "processes (/proc)",
        format!(
            "{} worker(s) of pm.max_children {} ({}), master {}",
            p.workers.len(),
            max.map_or("?".to_string(), |m| m.to_string()),
            p.place("pm.max_children"),
            p.master.map_or(0, |m| m.pid)
        ),
    ));
    if let Some(s) = &report.status {
        for r in s.running.iter().take(5) {
            sat.push(Seen::new(
                "status page (full)",
                format!(
                    "worker {} runs {} for {:.1} s",
                    r.pid,
                    r.request,
                    r.ms as f64 / 1000.0
                ),
            ));
        }
    }
    Some(sat)
}

/// A saturated pool, with `evidence` from [`saturation`].
fn saturated(p: &PoolRef, evidence: Vec<Seen>, formula: Option<&Formula>) -> Finding {
    let max = p.conf.pool.max_children();
    let mut fix = format!(
        "Every worker is busy and requests queue: raise pm.max_children (now {} at {})",
        max.map_or("unset".to_string(), |m| m.to_string()),
        p.place("pm.max_children")
    );
    match formula {
        Some(f) => fix.push_str(&format!(
            " within memory: {}{}",
            f.text,
            if max.is_some_and(|m| u64::from(m) >= f.fits) {
                " — more workers do not fit: make the slow requests faster or add memory"
            } else {
                ""
            }
        )),
        None => fix.push_str(" as far as memory allows"),
    }
    fix.push_str(&format!(
        "; then {}. Find the slow requests (status page `?full`, request_slowlog_timeout) and make them faster.",
        p.side.command(Action::Restart)
    ));
    Finding {
        cause: Some(Cause::MaxChildrenExhausted),
        severity: Severity::Critical,
        subject: format!("pool {}", p.name()),
        summary: format!(
            "pool {} is saturated: all {} worker(s) are busy and connections wait for one",
            p.name(),
            p.workers.len()
        ),
        evidence,
        fix,
    }
}

/// Requests running longer than NGINX waits: NGINX has answered 504 already.
fn outrun_read_timeout(
    p: &PoolRef,
    s: &Status,
    status: &StatusAsked,
    read_timeout: &TimeoutInForce,
) -> Option<Finding> {
    let TimeoutInForce {
        ms: limit,
        source: text,
    } = read_timeout;
    let over: Vec<&Running> = s.running.iter().filter(|r| r.ms as i64 > *limit).collect();
    let first = over.first()?;
    let mut evidence: Vec<Seen> = over
        .iter()
        .map(|r| {
            Seen::new(
                format!("status page {}?full", status.path.as_deref().unwrap_or("")),
                format!(
                    "worker {} runs {} for {:.1} s",
                    r.pid,
                    r.request,
                    r.ms as f64 / 1000.0
                ),
            )
        })
        .collect();
    evidence.push(Seen::new("NGINX read timeout", text.clone()));
    let rtt = p
        .conf
        .pool
        .get("request_terminate_timeout")
        .unwrap_or("0 (off)");
    evidence.push(Seen::new(
        p.place("request_terminate_timeout"),
        format!("request_terminate_timeout = {rtt}"),
    ));
    let script = first
        .request
        .split_whitespace()
        .nth(1)
        .unwrap_or("/script.php")
        .split('?')
        .next()
        .unwrap_or("/script.php")
        .to_string();
    Some(Finding {
        cause: Some(Cause::ReadTimeout),
        severity: Severity::Warning,
        subject: format!("pool {}", p.name()),
        summary: format!(
            "{} request(s) in pool {} run longer than NGINX waits ({} ms): NGINX answers 504 while the script goes on",
            over.len(),
            p.name(),
            limit
        ),
        evidence,
        fix: format!(
            "Make {script} faster, or raise the timeout for that endpoint only: `location = {script} {{ fastcgi_read_timeout 300s; ... }}` (now {text}), then `sudo nginx -t && sudo systemctl reload nginx`; set request_terminate_timeout ({}) a little above it so FPM stops what NGINX gave up on.",
            p.place("request_terminate_timeout")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_json_as_fpm_prints_it() {
        // php-fpm8.2 `/status?json&full` (one worker busy with a slow script, one
        // answering the status request itself).
        let body = br#"{"pool":"www","process manager":"static","start time":1764765600,"start since":42,"accepted conn":7,"listen queue":3,"max listen queue":4,"listen queue len":0,"idle processes":0,"active processes":2,"total processes":2,"max active processes":2,"max children reached":0,"slow requests":0,"processes":[{"pid":4242,"state":"Running","start time":1764765600,"start since":42,"requests":3,"request duration":1632118,"request method":"GET","request uri":"/sleep.php?ms=5000","content length":0,"user":"-","script":"/srv/www/sleep.php","last request cpu":0.00,"last request memory":0},{"pid":4243,"state":"Running","start time":1764765600,"start since":42,"requests":4,"request duration":187,"request method":"GET","request uri":"/fpm-status?json&full","content length":0,"user":"-","script":"-","last request cpu":0.00,"last request memory":0}]}"#;
        let s = parse_status(body).unwrap();
        assert_eq!(s.listen_queue, Some(3));
        assert_eq!(s.idle_processes, Some(0));
        assert_eq!(s.running.len(), 2);
        assert_eq!(
            s.running[0],
            Running {
                pid: 4242,
                request: "GET /sleep.php?ms=5000".to_string(),
                ms: 1632
            }
        );
        assert_eq!(parse_status(b"pool: www\n"), None);
    }
}
