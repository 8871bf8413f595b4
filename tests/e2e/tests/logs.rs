//! The module must leave NGINX's own logging alone: the error log is identical with
//! and without it, and a location logging only `crit` still gets records with errno
//! while its error log stays free of the error-level line.

use std::collections::HashMap;
use std::time::Duration;

use gatelog_e2e::check::{observe, AttemptExpect, AttemptOutcome, Errors, RecordExpect};
use gatelog_e2e::client::{self, Response};
use gatelog_e2e::env::Flavour;
use gatelog_e2e::errlog;
use gatelog_e2e::fpm::{Fpm, Pool};
use gatelog_e2e::lab::{no_module_reason, Lab, TestOutcome, TestResult, Timeouts};
use gatelog_e2e::net::{free_port, Blackhole, RefusedPort};
use regex::Regex;

use crate::Body;

pub fn all() -> Vec<(&'static str, Body)> {
    vec![
        (
            "error_log_identical_with_and_without_module",
            identical as Body,
        ),
        ("crit_error_log_still_records_errno", crit_location as Body),
    ]
}

/// What one side of the comparison produced.
struct Side {
    responses: Vec<(u16, Vec<u8>)>,
    log: String,
    records: usize,
}

const TARGETS: &[&str] = &[
    "/ok.php",
    "/warn.php",
    "/missing.php",
    "/status502.php",
    "/refused/a?x=1",
    "/nosock/b",
    "/sleep.php?ms=1500",
    "/hang/c",
    "/ok.php?again=1",
];

fn run_side(lab: &Lab) -> Result<Side, String> {
    let fpm = Fpm::start(&lab.prefix, Pool::unix(&lab.prefix, "www", 2), None)?;
    let dead = RefusedPort::new()?;
    let hole = Blackhole::new()?;
    let port = free_port()?;
    let t = Timeouts::new(2000, 3000, 1000);
    let missing = lab.prefix.path("run/missing.sock");
    let body = format!(
        "{}{}{}        location /hang/ {{\n            proxy_read_timeout 1s;\n            proxy_pass http://127.0.0.1:{};\n        }}\n",
        lab.php_location("/refused/", &format!("127.0.0.1:{}", dead.port), t, ""),
        lab.php_location("/nosock/", &format!("unix:{}", missing.display()), t, ""),
        lab.php_location("~ \\.php$", &fpm.pool.listen.nginx_addr(), t, ""),
        hole.port
    );
    let http = format!("{}{}", lab.default_gatelog(), lab.server(port, &body));
    let mut nginx = lab.start_nginx(http, &[port])?;
    let mut responses = Vec::new();
    let mut sent: Vec<Response> = Vec::new();
    for t in TARGETS {
        let r = client::get(port, t)?;
        responses.push((r.status, r.body.clone()));
        sent.push(r);
    }
    let raw = client::raw(
        port,
        b"GET /refused/\xff\"q\" HTTP/1.1\r\nHost: odd\"host\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    )?;
    responses.push((raw.status, Vec::new()));
    let refs: Vec<&Response> = sent.iter().collect();
    let failed = sent
        .iter()
        .filter(|r| r.status == 502 || r.status == 504)
        .count()
        + 1;
    let obs = observe(lab, &refs, failed)?;
    // Graceful stop: shutdown lines are part of the comparison too.
    nginx.quit()?;
    drop(fpm);
    let log = String::from_utf8_lossy(
        &std::fs::read(&nginx.error_log).map_err(|e| format!("error log: {e}"))?,
    )
    .into_owned();
    let ports = [port, dead.port, hole.port];
    Ok(Side {
        responses,
        log: normalise(
            &log,
            lab.prefix.root().to_str().unwrap_or("/nonexistent"),
            &ports,
        ),
        records: obs.records.len(),
    })
}

/// Replaces what legitimately differs between two runs: times, pids, connection
/// numbers (renumbered by first appearance), the prefix path and the ports.
fn normalise(log: &str, prefix: &str, ports: &[u16]) -> String {
    let mut s = log.replace(prefix, "PREFIX");
    for p in ports {
        s = s.replace(&format!(":{p}"), ":PORT");
    }
    let time = Regex::new(r"(?m)^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2} ").expect("regex");
    let pid = Regex::new(r"\] \d+#\d+: ").expect("regex");
    let pids =
        Regex::new(r"(start worker process|received from|worker process|signal process|pid) \d+")
            .expect("regex");
    let conn = Regex::new(r"\*(\d+) ").expect("regex");
    s = time.replace_all(&s, "TIME ").into_owned();
    s = pid.replace_all(&s, "] PID#TID: ").into_owned();
    s = pids.replace_all(&s, "$1 PID").into_owned();
    let mut map: HashMap<String, usize> = HashMap::new();
    conn.replace_all(&s, |c: &regex::Captures| {
        let n = map.len() + 1;
        let k = *map.entry(c[1].to_string()).or_insert(n);
        format!("*C{k} ")
    })
    .into_owned()
}

fn identical(flavour: &Flavour) -> TestResult {
    let with = Lab::new(flavour, "log-with")?;
    let without = Lab::without_module(flavour, "log-without")?;
    let (a, b) = std::thread::scope(|s| {
        let ha = s.spawn(|| run_side(&with));
        let hb = s.spawn(|| run_side(&without));
        (
            ha.join().unwrap_or_else(|_| Err("thread panicked".into())),
            hb.join().unwrap_or_else(|_| Err("thread panicked".into())),
        )
    });
    let (a, b) = (a?, b?);
    let mut errs = Errors::default();
    for (i, (x, y)) in a.responses.iter().zip(&b.responses).enumerate() {
        if x != y {
            errs.push(format!(
                "request {} answered differently: with the module {} {:?}, without {} {:?}",
                TARGETS.get(i).unwrap_or(&"raw"),
                x.0,
                String::from_utf8_lossy(&x.1),
                y.0,
                String::from_utf8_lossy(&y.1)
            ));
        }
    }
    if a.log != b.log {
        let la: Vec<&str> = a.log.lines().collect();
        let lb: Vec<&str> = b.log.lines().collect();
        let first = la
            .iter()
            .zip(&lb)
            .position(|(x, y)| x != y)
            .unwrap_or(la.len().min(lb.len()));
        errs.push(format!(
            "error logs differ (normalised) at line {}: with the module ({} lines):\n  {}\nwithout ({} lines):\n  {}",
            first + 1,
            la.len(),
            la.get(first).unwrap_or(&"<end>"),
            lb.len(),
            lb.get(first).unwrap_or(&"<end>")
        ));
    }
    // Make sure the comparison covered the failures it is meant to.
    for needle in [
        "(111: Connection refused)",
        "(2: No such file or directory)",
        "(110: Connection timed out)",
        "FastCGI sent in stderr",
    ] {
        if !b.log.contains(needle) {
            errs.push(format!("the reference error log lacks {needle:?}"));
        }
    }
    errs.into_result()?;
    if !with.with_module() {
        return Ok(TestOutcome::Skipped(no_module_reason(
            "both sides ran without the module",
        )));
    }
    if a.records != 6 {
        return Err(format!(
            "the module side wrote {} records, expected 6",
            a.records
        ));
    }
    Ok(TestOutcome::Passed)
}

/// `location /crit/ { error_log crit.log crit; }`: a refused upstream (111, logged
/// at error) is hidden from crit.log but its record still has errno 111; a missing
/// socket (ENOENT, logged at crit) shows in crit.log with the same errno.
fn crit_location(flavour: &Flavour) -> TestResult {
    let lab = Lab::new(flavour, "crit")?;
    let dead = RefusedPort::new()?;
    let port = free_port()?;
    let t = Timeouts::DEFAULT;
    let crit_log = lab.prefix.path("logs/crit.log");
    let missing = lab.prefix.path("run/missing.sock");
    let dead_addr = format!("127.0.0.1:{}", dead.port);
    let el = format!("            error_log {} crit;", crit_log.display());
    let body = format!(
        "{}{}",
        lab.php_location("/crit/refused/", &dead_addr, t, &el),
        lab.php_location(
            "/crit/nosock/",
            &format!("unix:{}", missing.display()),
            t,
            &el
        ),
    );
    let http = format!("{}{}", lab.default_gatelog(), lab.server(port, &body));
    let _nginx = lab.start_nginx(http, &[port])?;
    let refused = client::get(port, "/crit/refused/x")?;
    let nosock = client::get(port, "/crit/nosock/y")?;
    if refused.status != 502 || nosock.status != 502 {
        return Err(format!(
            "expected 502 twice, got {} and {}",
            refused.status, nosock.status
        ));
    }
    let obs = observe(&lab, &[&refused, &nosock], 2)?;
    let crit_entries = errlog::read(&crit_log);
    let conn_refused = obs.access_line(&refused)?.conn;
    let conn_nosock = obs.access_line(&nosock)?.conn;
    // The error-level line is nowhere: not in crit.log, not in the main error log.
    let leaked: Vec<&errlog::ErrorLogEntry> = crit_entries
        .iter()
        .chain(obs.entries.iter())
        .filter(|e| e.conn == Some(conn_refused) && e.is_upstream_failure())
        .collect();
    if !leaked.is_empty() {
        return Err(format!(
            "the error-level failure was logged although the location logs crit only: {leaked:?}"
        ));
    }
    let crit_fails = errlog::failures_for(&crit_entries, conn_nosock);
    let want = AttemptOutcome::connect_unix(&missing, 2);
    if crit_fails.len() != 1 || crit_fails[0].message() != want.message {
        return Err(format!(
            "crit.log should hold the ENOENT line for *{conn_nosock}: {crit_entries:?}"
        ));
    }
    if !lab.with_module() {
        return Ok(TestOutcome::Skipped(no_module_reason(
            "crit.log shows ENOENT and hides 111",
        )));
    }
    let x1 = RecordExpect::one_attempt(
        &refused,
        port,
        &dead_addr,
        Some(t),
        AttemptExpect::failed(
            &dead_addr,
            "connect",
            vec![AttemptOutcome::connect_async(111)],
            502,
        ),
    );
    let x2 = RecordExpect::one_attempt(
        &nosock,
        port,
        &format!("unix:{}", missing.display()),
        Some(t),
        AttemptExpect::failed(
            &format!("unix:{}", missing.display()),
            "connect",
            vec![want],
            502,
        ),
    );
    let mut errs = Errors::default();
    // No line to compare with for the hidden one: the expectation is the line NGINX
    // prints at error level (checked against real lines in the other tests).
    errs.check(obs.verify(&refused, None, &x1));
    errs.check(obs.verify(&nosock, Some(&crit_fails), &x2));
    errs.into_result()?;
    Ok(TestOutcome::Passed)
}
