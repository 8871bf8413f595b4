//! Retries across two upstream servers (fastcgi_next_upstream error): the record has
//! one attempt per try, in order, each compared with NGINX's own line.

use gatelog_e2e::check::{AttemptExpect, AttemptOutcome, RecordExpect};
use gatelog_e2e::client;
use gatelog_e2e::env::Flavour;
use gatelog_e2e::fpm::{Fpm, Pool};
use gatelog_e2e::lab::{no_module_reason, Lab, TestOutcome, TestResult, Timeouts};
use gatelog_e2e::net::{free_port, RefusedPort};

use crate::Body;

pub fn all() -> Vec<(&'static str, Body)> {
    vec![
        ("retry_first_dead_recovered_off", recovered_off as Body),
        ("retry_first_dead_recovered_on", recovered_on as Body),
        ("retry_both_dead", both_dead as Body),
        ("no_live_upstreams", no_live as Body),
    ]
}

const T: Timeouts = Timeouts::DEFAULT;

/// upstream `flaky` = [refused TCP port, the FPM pool]; `/flaky.php` goes there and
/// `/marker.php` to a refused port (a request that surely has a record: once its
/// record is written, the log phase of every earlier request has run).
fn first_dead(flavour: &Flavour, recovered: bool) -> TestResult {
    let lab = Lab::new(
        flavour,
        if recovered {
            "recovered-on"
        } else {
            "recovered-off"
        },
    )?;
    let fpm = Fpm::start(&lab.prefix, Pool::unix(&lab.prefix, "www", 1), None)?;
    let (dead, marker_dead) = (RefusedPort::new()?, RefusedPort::new()?);
    let port = free_port()?;
    let good = fpm.pool.listen.nginx_addr();
    let ok_script = "            fastcgi_param SCRIPT_FILENAME $document_root/ok.php;";
    let body = format!(
        "{}{}",
        lab.php_location("= /flaky.php", "flaky", T, ok_script),
        lab.php_location(
            "= /marker.php",
            &format!("127.0.0.1:{}", marker_dead.port),
            T,
            ok_script
        ),
    );
    let http = format!(
        "{}{}    upstream flaky {{\n        server 127.0.0.1:{};\n        server {good};\n    }}\n{}",
        lab.default_gatelog(),
        if recovered { lab.gl("gatelog_recovered on;") } else { String::new() },
        dead.port,
        lab.server(port, &body)
    );
    let _nginx = lab.start_nginx(http, &[port])?;
    let flaky = client::get(port, "/flaky.php")?;
    if flaky.status != 200 {
        return Err(format!(
            "/flaky.php answered {}, expected 200 from the second server",
            flaky.status
        ));
    }
    let marker = client::get(port, "/marker.php")?;
    let want = if recovered { 2 } else { 1 };
    let obs = gatelog_e2e::check::observe(&lab, &[&flaky, &marker], want)?;
    // The fault is real: NGINX tried the dead server first, then the good one.
    let a = obs.access_line(&flaky)?;
    let want_addr = format!("127.0.0.1:{}, {good}", dead.port);
    if a.upstream_addr != want_addr || a.upstream_status != "502, 200" {
        return Err(format!(
            "access log: upstream_addr {:?} status {:?}, expected {want_addr:?} and \"502, 200\"",
            a.upstream_addr, a.upstream_status
        ));
    }
    let flaky_fails = obs.fails(&flaky, &[AttemptOutcome::connect_async(111)])?;
    let marker_fails = obs.fails(&marker, &[AttemptOutcome::connect_async(111)])?;
    if !lab.with_module() {
        return Ok(TestOutcome::Skipped(no_module_reason(
            "first server refused (111), second answered 200",
        )));
    }
    let marker_x = RecordExpect::one_attempt(
        &marker,
        port,
        &format!("127.0.0.1:{}", marker_dead.port),
        Some(T),
        AttemptExpect::failed(
            &format!("127.0.0.1:{}", marker_dead.port),
            "connect",
            vec![AttemptOutcome::connect_async(111)],
            502,
        ),
    );
    obs.verify(&marker, Some(&marker_fails), &marker_x)?;
    if recovered {
        let x = RecordExpect {
            status: 200,
            origin: None,
            recovered: true,
            upstream: "flaky".into(),
            attempts: vec![
                AttemptExpect::failed(
                    &format!("127.0.0.1:{}", dead.port),
                    "connect",
                    vec![AttemptOutcome::connect_async(111)],
                    502,
                ),
                AttemptExpect::ok(&good, 200),
            ],
            ..RecordExpect::one_attempt(
                &flaky,
                port,
                "flaky",
                Some(T),
                AttemptExpect::ok(&good, 200),
            )
        };
        obs.verify(&flaky, Some(&flaky_fails), &x)?;
        if obs.records.len() != 2 {
            return Err(format!(
                "expected 2 records (recovered + marker), got {}",
                obs.records.len()
            ));
        }
    } else {
        obs.no_record(&flaky)?;
        if obs.records.len() != 1 {
            return Err(format!(
                "expected only the marker's record, got {}",
                obs.records.len()
            ));
        }
    }
    Ok(TestOutcome::Passed)
}

fn recovered_off(f: &Flavour) -> TestResult {
    first_dead(f, false)
}

fn recovered_on(f: &Flavour) -> TestResult {
    first_dead(f, true)
}

/// upstream `both` = [refused TCP port (async 111, error), missing unix socket
/// (ENOENT, crit)]: one 502 with two attempts, in order.
fn both_dead(flavour: &Flavour) -> TestResult {
    let lab = Lab::new(flavour, "both-dead")?;
    let dead = RefusedPort::new()?;
    let missing = lab.prefix.path("run/missing.sock");
    let port = free_port()?;
    let body = lab.php_location("~ \\.php$", "both", T, "");
    let http = format!(
        "{}    upstream both {{\n        server 127.0.0.1:{};\n        server unix:{};\n    }}\n{}",
        lab.default_gatelog(),
        dead.port,
        missing.display(),
        lab.server(port, &body)
    );
    let _nginx = lab.start_nginx(http, &[port])?;
    let r = client::get(port, "/ok.php?both=dead")?;
    if r.status != 502 {
        return Err(format!("expected 502, got {}", r.status));
    }
    let obs = gatelog_e2e::check::observe(&lab, &[&r], 1)?;
    let fails = obs.fails(&r, &[AttemptOutcome::connect_async(111)])?;
    let second = AttemptOutcome::connect_unix(&missing, 2);
    if fails.len() != 2 || fails[1].message() != second.message || fails[1].level != "crit" {
        return Err(format!(
            "NGINX should log two failures (111 then ENOENT at crit), got {:?}",
            fails
                .iter()
                .map(|e| (&e.level, e.message()))
                .collect::<Vec<_>>()
        ));
    }
    if !lab.with_module() {
        return Ok(TestOutcome::Skipped(no_module_reason(
            "both servers failed (111, then 2)",
        )));
    }
    let x = RecordExpect {
        attempts: vec![
            AttemptExpect::failed(
                &format!("127.0.0.1:{}", dead.port),
                "connect",
                vec![AttemptOutcome::connect_async(111)],
                502,
            ),
            AttemptExpect::failed(
                &format!("unix:{}", missing.display()),
                "connect",
                vec![second],
                502,
            ),
        ],
        ..RecordExpect::one_attempt(&r, port, "both", Some(T), AttemptExpect::ok("", 0))
    };
    obs.verify(&r, Some(&fails), &x)?;
    if obs.records.len() != 1 {
        return Err(format!("expected one record, got {}", obs.records.len()));
    }
    Ok(TestOutcome::Passed)
}

/// upstream `down` = two refused ports (max_fails=1): the first request fails on both
/// and marks them down; the second finds no live peer: event no_live_upstreams, peer =
/// the group name, no errno.
fn no_live(flavour: &Flavour) -> TestResult {
    let lab = Lab::new(flavour, "no-live")?;
    let (d1, d2) = (RefusedPort::new()?, RefusedPort::new()?);
    let port = free_port()?;
    let body = lab.php_location("/", "down", T, "");
    let http = format!(
        "{}    upstream down {{\n        server 127.0.0.1:{} max_fails=1 fail_timeout=60s;\n        server 127.0.0.1:{} max_fails=1 fail_timeout=60s;\n    }}\n{}",
        lab.default_gatelog(),
        d1.port,
        d2.port,
        lab.server(port, &body)
    );
    let _nginx = lab.start_nginx(http, &[port])?;
    let first = client::get(port, "/first")?;
    let second = client::get(port, "/second")?;
    if first.status != 502 || second.status != 502 {
        return Err(format!(
            "expected 502 twice, got {} and {}",
            first.status, second.status
        ));
    }
    let obs = gatelog_e2e::check::observe(&lab, &[&first, &second], 2)?;
    let f1 = obs.fails(&first, &[AttemptOutcome::connect_async(111)])?;
    let nolive = AttemptOutcome {
        event: "no_live_upstreams",
        errno: None,
        level: "error",
        message: "no live upstreams".into(),
    };
    let f2 = obs.fails(&second, std::slice::from_ref(&nolive))?;
    if !lab.with_module() {
        return Ok(TestOutcome::Skipped(no_module_reason(
            "second request found no live upstreams",
        )));
    }
    let p1 = format!("127.0.0.1:{}", d1.port);
    let p2 = format!("127.0.0.1:{}", d2.port);
    let x1 = RecordExpect {
        attempts: vec![
            AttemptExpect::failed(
                &p1,
                "connect",
                vec![AttemptOutcome::connect_async(111)],
                502,
            ),
            AttemptExpect::failed(
                &p2,
                "connect",
                vec![AttemptOutcome::connect_async(111)],
                502,
            ),
        ],
        ..RecordExpect::one_attempt(&first, port, "down", Some(T), AttemptExpect::ok("", 0))
    };
    let x2 = RecordExpect::one_attempt(
        &second,
        port,
        "down",
        Some(T),
        AttemptExpect::failed("down", "connect", vec![nolive], 502),
    );
    let mut errs = gatelog_e2e::check::Errors::default();
    errs.check(obs.verify(&first, Some(&f1), &x1));
    errs.check(obs.verify(&second, Some(&f2), &x2));
    errs.into_result()?;
    Ok(TestOutcome::Passed)
}
