//! The analyzer on upstreams that are not PHP-FPM: NGINX `proxy_pass`es to a small
//! loopback HTTP backend (gatelog_e2e::backend) that first answers (the address is
//! right), then fails the way a Node, gunicorn or Apache backend fails — stopped
//! (ECONNREFUSED), hanging past `proxy_read_timeout` (504), resetting the connection
//! (RST), or, on a unix socket (`proxy_pass http://unix:/path:`), gone (ENOENT).
//!
//! NGINX's error log must show the expected line first (the fault was real); then
//! every report (error log alone; records + nginx.conf; the whole directory) must say
//! `unknown` with `upstream_protocol: "http"`, a reason in plain words naming what
//! NGINX saw and the backend's address, and not one word of PHP-FPM advice.

use std::path::Path;

use gatelog_e2e::analyzer::{self, expected_kind, Given, Sent};
use gatelog_e2e::backend::{Behaviour, HttpBackend};
use gatelog_e2e::check::{observe, AttemptOutcome};
use gatelog_e2e::client::{self, Response};
use gatelog_e2e::env::Flavour;
use gatelog_e2e::lab::{now_ms, Lab, TestResult};
use gatelog_e2e::net::free_port;
use gatelog_e2e::scenarios;

use super::analyzer::{finish_outcome, report_errors};
use crate::Body;

pub fn all() -> Vec<(&'static str, Body)> {
    vec![
        ("analyzer_http_backend_stopped", stopped as Body),
        ("analyzer_http_backend_read_timeout", read_timeout as Body),
        ("analyzer_http_backend_reset", reset as Body),
        ("analyzer_http_unix_socket_missing", unix_missing as Body),
    ]
}

/// Words that are PHP-FPM advice: none may appear in what is said about an HTTP
/// backend.
pub const PHP_FPM_WORDS: &[&str] = &["PHP", "FPM", "fpm", "pm.max_children", "fastcgi_"];

/// How the backend fails after its first good answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fail {
    Stop,
    Hang,
    Reset,
}

struct Case {
    label: &'static str,
    unix: bool,
    fail: Fail,
    /// Requests that fail.
    failing: usize,
    status: u16,
    /// The reason must contain one of these.
    reason_any: &'static [&'static str],
}

/// A refused TCP connect, as NGINX prints it (synchronously or from SO_ERROR).
fn refused(peer: &str) -> Vec<AttemptOutcome> {
    let sync = AttemptOutcome {
        message: format!("connect() to {peer} failed (111: Connection refused)"),
        ..AttemptOutcome::connect_async(111)
    };
    vec![AttemptOutcome::connect_async(111), sync]
}

fn stopped(f: &Flavour) -> TestResult {
    run(
        f,
        Case {
            label: "http-stopped",
            unix: false,
            fail: Fail::Stop,
            failing: 2,
            status: 502,
            reason_any: &["refused"],
        },
    )
}

fn read_timeout(f: &Flavour) -> TestResult {
    run(
        f,
        Case {
            label: "http-hang",
            unix: false,
            fail: Fail::Hang,
            failing: 1,
            status: 504,
            reason_any: &["timed out", "timeout"],
        },
    )
}

fn reset(f: &Flavour) -> TestResult {
    run(
        f,
        Case {
            label: "http-reset",
            unix: false,
            fail: Fail::Reset,
            failing: 2,
            status: 502,
            reason_any: &["reset", "closed"],
        },
    )
}

fn unix_missing(f: &Flavour) -> TestResult {
    run(
        f,
        Case {
            label: "http-unix-gone",
            unix: true,
            fail: Fail::Stop,
            failing: 2,
            status: 502,
            reason_any: &[
                "no such file",
                "does not exist",
                "missing",
                "not found",
                "enoent",
            ],
        },
    )
}

fn run(flavour: &Flavour, case: Case) -> TestResult {
    analyzer::binary()?;
    let lab = Lab::new(flavour, case.label)?;
    let mut backend = if case.unix {
        HttpBackend::unix(&lab.prefix.path("run/app.sock"), Behaviour::Answer)?
    } else {
        HttpBackend::tcp(Behaviour::Answer)?
    };
    let peer = backend.addr.peer();
    let port = free_port()?;
    let body = format!(
        "        location /app/ {{\n            proxy_connect_timeout 1000ms;\n            proxy_send_timeout 1000ms;\n            proxy_read_timeout 1000ms;\n            proxy_pass {};\n        }}\n",
        backend.addr.proxy_pass()
    );
    let http = format!("{}{}", lab.default_gatelog(), lab.server(port, &body));
    let nginx = lab.start_nginx(http, &[port])?;
    let start = now_ms();
    let ok = client::get(port, "/app/hello?phase=up")?;
    if ok.status != 200 || !String::from_utf8_lossy(&ok.body).contains("hello from the backend") {
        return Err(format!(
            "the backend at {peer} did not answer through NGINX (test premise): {} {:?}",
            ok.status,
            String::from_utf8_lossy(&ok.body)
        ));
    }
    let outcomes = match case.fail {
        Fail::Stop => {
            backend.stop()?;
            match &backend.addr {
                gatelog_e2e::backend::BackendAddr::Unix(p) => {
                    vec![AttemptOutcome::connect_unix(p, 2)]
                }
                gatelog_e2e::backend::BackendAddr::Tcp(_) => refused(&peer),
            }
        }
        Fail::Hang => {
            backend.set(Behaviour::Hang);
            vec![AttemptOutcome::timed_out()]
        }
        Fail::Reset => {
            backend.set(Behaviour::Reset);
            vec![
                AttemptOutcome::reset(),
                AttemptOutcome::closed_prematurely(),
            ]
        }
    };
    let mut fails = Vec::new();
    for n in 1..=case.failing {
        fails.push(client::get(port, &format!("/app/orders?n={n}"))?);
    }
    let end = now_ms();
    for r in &fails {
        if r.status != case.status {
            return Err(format!(
                "{} answered {} (expected {} from the {:?} backend)",
                r.target, r.status, case.status, case.fail
            ));
        }
    }
    if case.fail != Fail::Stop && backend.accepted() < 1 + case.failing {
        return Err(format!(
            "the backend accepted {} connection(s), expected {} (test premise)",
            backend.accepted(),
            1 + case.failing
        ));
    }
    // The fault really happened: NGINX's own line for each failed request.
    let mut all: Vec<&Response> = vec![&ok];
    all.extend(fails.iter());
    let obs = observe(&lab, &all, fails.len())?;
    for r in &fails {
        let lines = obs.fails(r, &outcomes)?;
        if case.fail == Fail::Hang
            && lines[0].action() != Some("reading response header from upstream")
        {
            return Err(format!("NGINX's action: {:?}", lines[0].action()));
        }
        if !lines[0]
            .upstream()
            .is_some_and(|u| u.starts_with("http://"))
        {
            return Err(format!(
                "NGINX's upstream context is {:?}, expected http://...",
                lines[0].upstream()
            ));
        }
    }
    drop(nginx);
    drop(backend);
    let dir = lab.prefix.path("out");
    scenarios::save_logs(&lab, &dir, None, None, &Err("no FPM here".into()))?;
    let mut sent = vec![Sent::new(ok, None, (start, end), case.label)];
    for r in fails {
        let mut s = Sent::new(r, Some("unknown"), (start, end), case.label);
        s.protocol = Some("http");
        s.reason_any = case.reason_any.iter().map(|w| w.to_string()).collect();
        s.mention_any = vec![peer.strip_prefix("unix:").unwrap_or(&peer).to_string()];
        s.forbid = PHP_FPM_WORDS.iter().map(|w| w.to_string()).collect();
        sent.push(s);
    }
    let expect = analyzer::expectations(&dir.join("nginx-access.log"), &sent)?;
    let errs = analyzer::check_given(&dir, &givens(&lab, &dir), &expect)?;
    report_errors(case.label, errs, &dir)?;
    Ok(finish_outcome(&lab, case.label))
}

/// The error log alone; with the module also the records with nginx.conf, and the
/// whole directory.
fn givens(lab: &Lab, dir: &Path) -> Vec<Given> {
    let mut v = vec![Given::new("error log")
        .flag("nginx-log", &dir.join("nginx-error.log"), "nginx-error")
        .seen_in(&["error_log"])];
    if lab.with_module() {
        v.push(
            Given::new("records+nginx.conf")
                .file(&dir.join("gatelog.jsonl"), "records")
                .file(&dir.join("nginx.conf"), "nginx-conf")
                .seen_in(&["record"])
                .records()
                .configs(),
        );
        v.push(
            Given::new("whole directory")
                .dir(dir, expected_kind)
                .seen_in(&["record", "error_log"])
                .records()
                .configs(),
        );
    }
    v
}
