//! The configuration interface: `nginx -t` with bad arguments, `nginx -s reopen`
//! while records are written (file and buffered file), the variables, syslog.

use std::collections::HashSet;
use std::time::Duration;

use gatelog_e2e::check::{observe, AttemptExpect, AttemptOutcome, Errors, RecordExpect};
use gatelog_e2e::client::{self, Response};
use gatelog_e2e::env::Flavour;
use gatelog_e2e::lab::{Lab, TestOutcome, TestResult, Timeouts};
use gatelog_e2e::net::{free_port, RefusedPort, UdpReceiver};
use gatelog_e2e::nginx::nginx_t;
use gatelog_e2e::records;
use serde_json::Value;

use crate::Body;

pub fn all() -> Vec<(&'static str, Body)> {
    vec![
        ("nginx_t_rejects_bad_arguments", nginx_t_bad as Body),
        ("reopen_while_writing", reopen as Body),
        ("variables_for_access_log", variables as Body),
        ("syslog_sink", syslog as Body),
        ("gatelog_off_and_inheritance", off_and_inheritance as Body),
        ("buffered_flush_and_exit", buffered as Body),
    ]
}

fn skip_without_module(lab: &Lab, what: &str) -> Option<TestResult> {
    (!lab.with_module()).then(|| {
        Ok(TestOutcome::Skipped(format!(
            "{what} needs the module ({} is set); nothing was checked",
            gatelog_e2e::env::NO_MODULE_ENV
        )))
    })
}

/// Each bad argument makes `nginx -t` fail with a message naming the directive (or
/// the path) and the bad value, pointing at the right line; the good configuration
/// passes (so the failures are due to the arguments alone).
fn nginx_t_bad(flavour: &Flavour) -> TestResult {
    let lab = Lab::new(flavour, "nginx-t")?;
    if let Some(s) = skip_without_module(&lab, "nginx -t with gatelog arguments") {
        return s;
    }
    let file = lab.records_path();
    let f = file.display();
    let missing_dir = lab.prefix.path("no/such/dir/gatelog.jsonl");
    // A valid http-level gatelog; the directive under test sits in the server block.
    let conf_with = |directive: &str| {
        let body = format!(
            "        {directive}\n        location / {{ gatelog off; gatelog_recovered on; return 204; }}\n"
        );
        let http = format!(
            "    gatelog {f} buffer=32k flush=2s;\n{}",
            lab.server(free_port().unwrap_or(1), &body)
        );
        lab.conf(http).render(&lab.prefix)
    };
    // (case, directive line, text that must appear, must name "gatelog")
    let cases: Vec<(&str, String, String, bool)> = vec![
        (
            "bad buffer",
            format!("gatelog {f} buffer=lots;"),
            "lots".into(),
            true,
        ),
        (
            "bad flush",
            format!("gatelog {f} buffer=4k flush=soon;"),
            "soon".into(),
            true,
        ),
        (
            "unknown parameter",
            format!("gatelog {f} colour=blue;"),
            "colour=blue".into(),
            true,
        ),
        (
            "missing path argument",
            "gatelog;".into(),
            "gatelog".into(),
            true,
        ),
        (
            "bad gatelog_recovered",
            "gatelog_recovered maybe;".into(),
            "maybe".into(),
            true,
        ),
        // NGINX's syslog parser decides; the message names gatelog, the whole value
        // and what NGINX said.
        (
            "bad syslog facility",
            "gatelog syslog:server=127.0.0.1:5514,facility=nowhere;".into(),
            "invalid syslog destination \"syslog:server=127.0.0.1:5514,facility=nowhere\": \
             unknown syslog facility \"nowhere\""
                .into(),
            true,
        ),
        (
            "syslog without server",
            "gatelog syslog:tag=gatelog;".into(),
            "invalid syslog destination \"syslog:tag=gatelog\": no syslog server specified".into(),
            true,
        ),
        (
            "syslog bad port",
            "gatelog syslog:server=127.0.0.1:99999;".into(),
            "invalid syslog destination \"syslog:server=127.0.0.1:99999\": invalid port in \
             syslog server \"127.0.0.1:99999\""
                .into(),
            true,
        ),
        (
            "syslog bad tag",
            "gatelog syslog:server=127.0.0.1,tag=no-dash;".into(),
            "invalid syslog destination \"syslog:server=127.0.0.1,tag=no-dash\": syslog \"tag\" \
             only allows alphanumeric characters and underscore"
                .into(),
            true,
        ),
        (
            "syslog unknown parameter",
            "gatelog syslog:server=127.0.0.1,colour=red;".into(),
            "invalid syslog destination \"syslog:server=127.0.0.1,colour=red\": unknown syslog \
             parameter \"colour=red\""
                .into(),
            true,
        ),
        (
            "unopenable path",
            format!("gatelog {};", missing_dir.display()),
            missing_dir.display().to_string(),
            false,
        ),
    ];
    let mut errs = Errors::default();
    let good = nginx_t(
        flavour,
        &lab.prefix,
        "good.conf",
        &conf_with("gatelog_recovered off;"),
    )?;
    if !good.success {
        errs.push(format!(
            "the valid configuration fails nginx -t:\n{}",
            good.output
        ));
    }
    let root = lab.prefix.root().display().to_string();
    for (i, (case, directive, value, names_directive)) in cases.iter().enumerate() {
        let name = format!("bad{i}.conf");
        let conf = conf_with(directive);
        let line = conf
            .lines()
            .position(|l| l.trim() == directive.as_str())
            .map(|n| n + 1)
            .unwrap_or(0);
        let out = nginx_t(flavour, &lab.prefix, &name, &conf)?;
        // The prefix path contains "gatelog-e2e": judge the message without it.
        let text = out.output.replace(&root, "PREFIX");
        let value_text = value.replace(&root, "PREFIX");
        if out.success {
            errs.push(format!(
                "{case}: nginx -t accepted `{directive}`:\n{}",
                out.output
            ));
            continue;
        }
        if !text.contains(&value_text) {
            errs.push(format!(
                "{case}: the message does not name {value_text:?}:\n{text}"
            ));
        }
        // `"gatelog" directive: ...`, or NGINX's own `... in "gatelog" directive`.
        if *names_directive && !text.contains("\"gatelog") {
            errs.push(format!(
                "{case}: the message does not name the directive:\n{text}"
            ));
        }
        if !text.contains(&format!("{name}:{line}")) {
            errs.push(format!(
                "{case}: the message does not point at {name}:{line}:\n{text}"
            ));
        }
    }
    errs.into_result()?;
    Ok(TestOutcome::Passed)
}

/// Sequential failing requests to two locations (unbuffered file, buffered file)
/// while the files are renamed and `nginx -s reopen` runs: every request's record is
/// in the old or the new file, exactly once, and the new files get records.
fn reopen(flavour: &Flavour) -> TestResult {
    let lab = Lab::new(flavour, "reopen")?;
    if let Some(s) = skip_without_module(&lab, "reopen") {
        return s;
    }
    let dead = RefusedPort::new()?;
    let port = free_port()?;
    let t = Timeouts::DEFAULT;
    let plain = lab.prefix.path("logs/plain.jsonl");
    let buffered = lab.prefix.path("logs/buffered.jsonl");
    let addr = format!("127.0.0.1:{}", dead.port);
    let body = format!(
        "{}{}",
        lab.php_location(
            "/plain/",
            &addr,
            t,
            &format!("            gatelog {};", plain.display())
        ),
        lab.php_location(
            "/buffered/",
            &addr,
            t,
            &format!(
                "            gatelog {} buffer=16k flush=300ms;",
                buffered.display()
            )
        ),
    );
    let http = lab.server(port, &body);
    let nginx = lab.start_nginx(http, &[port])?;
    const N: usize = 40;
    let (tx, rx) = std::sync::mpsc::channel::<usize>();
    let sender = std::thread::spawn(move || -> Result<Vec<Response>, String> {
        let mut out = Vec::new();
        for i in 0..N {
            let which = if i % 2 == 0 { "plain" } else { "buffered" };
            out.push(client::get(port, &format!("/{which}/{i}"))?);
            let _ = tx.send(i);
        }
        Ok(out)
    });
    // Rotate after a quarter of the requests, as logrotate would.
    let mut seen = 0;
    while seen < N / 4 {
        seen = rx
            .recv_timeout(Duration::from_secs(20))
            .map_err(|e| format!("sender stalled: {e}"))?
            + 1;
    }
    let rotated = |p: &std::path::Path| p.with_extension("jsonl.1");
    for p in [&plain, &buffered] {
        std::fs::rename(p, rotated(p)).map_err(|e| format!("rename {}: {e}", p.display()))?;
    }
    nginx.reopen()?;
    let resps = sender.join().map_err(|_| "sender panicked".to_string())??;
    if let Some(r) = resps.iter().find(|r| r.status != 502) {
        return Err(format!("{} answered {}", r.target, r.status));
    }
    // Wait until every record arrived (the buffered file flushes every 300 ms).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let (mut old, mut new) = (Vec::new(), Vec::new());
    while std::time::Instant::now() < deadline {
        old = [
            records::read(&rotated(&plain))?,
            records::read(&rotated(&buffered))?,
        ]
        .concat();
        new = [records::read(&plain)?, records::read(&buffered)?].concat();
        if old.len() + new.len() >= N {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut errs = Errors::default();
    let ids = |v: &[Value]| -> Vec<String> {
        v.iter()
            .filter_map(|r| r["request_id"].as_str().map(str::to_string))
            .collect()
    };
    let all_ids: Vec<String> = [ids(&old), ids(&new)].concat();
    let unique: HashSet<&String> = all_ids.iter().collect();
    if unique.len() != all_ids.len() {
        errs.push(format!(
            "duplicate records after reopen: {} records, {} distinct",
            all_ids.len(),
            unique.len()
        ));
    }
    let want: HashSet<&String> = resps.iter().map(|r| &r.request_id).collect();
    let lost: Vec<&&String> = want.difference(&unique).collect();
    if !lost.is_empty() {
        errs.push(format!(
            "{} record(s) lost across the reopen: {lost:?}",
            lost.len()
        ));
    }
    for (p, what) in [(&plain, "unbuffered"), (&buffered, "buffered")] {
        if records::read(p)?.is_empty() {
            errs.push(format!(
                "the reopened {what} file {} got no records",
                p.display()
            ));
        }
        if records::read(&rotated(p))?.is_empty() {
            errs.push(format!("the rotated {what} file got no records"));
        }
    }
    for r in old.iter().chain(&new) {
        errs.check(records::validate(r));
    }
    errs.into_result()?;
    Ok(TestOutcome::Passed)
}

/// `$gatelog_failed`, `$gatelog_errno`, `$gatelog_phase` and `$gatelog_json` in
/// access logs: `if=$gatelog_failed` logs only failures, and `$gatelog_json` is the
/// record the module wrote.
fn variables(flavour: &Flavour) -> TestResult {
    let lab = Lab::new(flavour, "variables")?;
    if let Some(s) = skip_without_module(&lab, "variables") {
        return s;
    }
    let dead = RefusedPort::new()?;
    let fpm = gatelog_e2e::fpm::Fpm::start(
        &lab.prefix,
        gatelog_e2e::fpm::Pool::unix(&lab.prefix, "www", 1),
        None,
    )?;
    let port = free_port()?;
    let t = Timeouts::new(2000, 3000, 1000);
    let failed_log = lab.prefix.path("logs/failed.log");
    let json_log = lab.prefix.path("logs/json.log");
    let addr = format!("127.0.0.1:{}", dead.port);
    let missing = lab.prefix.path("run/missing.sock");
    let body = format!(
        "{}{}{}",
        lab.php_location("/refused/", &addr, t, ""),
        lab.php_location("/two/", "two", t, ""),
        lab.php_location("~ \\.php$", &fpm.pool.listen.nginx_addr(), t, "")
    );
    let http = format!(
        "    upstream two {{\n        server {addr};\n        server unix:{};\n    }}\n{}    log_format glvars 'rid=$request_id failed=[$gatelog_failed] errno=[$gatelog_errno] phase=[$gatelog_phase]';\n    log_format gljson escape=none 'rid=$request_id json=$gatelog_json';\n    access_log {} glvars if=$gatelog_failed;\n    access_log {} gljson;\n{}",
        missing.display(),
        lab.default_gatelog(),
        failed_log.display(),
        json_log.display(),
        lab.server(port, &body)
    );
    let _nginx = lab.start_nginx(http, &[port])?;
    let ok = client::get(port, "/ok.php")?;
    let refused = client::get(port, "/refused/x")?;
    let slow = client::get(port, "/sleep.php?ms=1500")?;
    // Two attempts (111, then ENOENT): the variables describe the last one.
    let two = client::get(port, "/two/y")?;
    if (ok.status, refused.status, slow.status, two.status) != (200, 502, 504, 502) {
        return Err(format!(
            "statuses {} {} {} {}, expected 200 502 504 502",
            ok.status, refused.status, slow.status, two.status
        ));
    }
    let obs = observe(&lab, &[&ok, &refused, &slow, &two], 3)?;
    let mut errs = Errors::default();
    let failed_text = std::fs::read_to_string(&failed_log).unwrap_or_default();
    let expect_lines = [
        format!(
            "rid={} failed=[1] errno=[111] phase=[connect]",
            refused.request_id
        ),
        format!(
            "rid={} failed=[1] errno=[110] phase=[header]",
            slow.request_id
        ),
        format!(
            "rid={} failed=[1] errno=[2] phase=[connect]",
            two.request_id
        ),
    ];
    let got: Vec<&str> = failed_text.lines().collect();
    if got != expect_lines.iter().map(String::as_str).collect::<Vec<_>>() {
        errs.push(format!(
            "access_log if=$gatelog_failed wrote:\n{failed_text}expected:\n{}",
            expect_lines.join("\n")
        ));
    }
    let json_text = std::fs::read_to_string(&json_log).unwrap_or_default();
    for r in [&ok, &refused, &slow, &two] {
        let prefix = format!("rid={} json=", r.request_id);
        let Some(line) = json_text.lines().find(|l| l.starts_with(&prefix)) else {
            errs.push(format!("no $gatelog_json line for {}", r.target));
            continue;
        };
        let json = &line[prefix.len()..];
        if r.status == 200 {
            if !json.is_empty() && json != "-" {
                errs.push(format!(
                    "$gatelog_json should be empty for a good request, got {json}"
                ));
            }
            continue;
        }
        let v: Value = match serde_json::from_str(json) {
            Ok(v) => v,
            Err(e) => {
                errs.push(format!(
                    "$gatelog_json for {} is not JSON ({e}): {json}",
                    r.target
                ));
                continue;
            }
        };
        errs.check(records::validate(&v));
        match obs.record(r) {
            Ok(rec) => {
                let strip = |v: &Value| {
                    let mut v = v.clone();
                    if let Some(o) = v.as_object_mut() {
                        // Taken at the same instant or a millisecond apart.
                        o.remove("time");
                        o.remove("request_time_ms");
                    }
                    v
                };
                if strip(rec) != strip(&v) {
                    errs.push(format!(
                        "$gatelog_json differs from the record:\n  var:    {v}\n  record: {rec}"
                    ));
                }
            }
            Err(e) => errs.push(e),
        }
    }
    // Sanity: the record itself is right.
    let x = RecordExpect::one_attempt(
        &refused,
        port,
        &addr,
        Some(t),
        AttemptExpect::failed(
            &addr,
            "connect",
            vec![AttemptOutcome::connect_async(111)],
            502,
        ),
    );
    let fails = obs.fails(&refused, &[AttemptOutcome::connect_async(111)])?;
    errs.check(obs.verify(&refused, Some(&fails), &x));
    errs.into_result()?;
    Ok(TestOutcome::Passed)
}

/// `gatelog syslog:server=...,facility=local3,severity=warn,tag=gatelog_e2e`: the record
/// arrives as the payload of one datagram with PRI 156 (local3*8 + warn) and the tag.
fn syslog(flavour: &Flavour) -> TestResult {
    let lab = Lab::new(flavour, "syslog")?;
    if let Some(s) = skip_without_module(&lab, "syslog") {
        return s;
    }
    let sink = UdpReceiver::new()?;
    let dead = RefusedPort::new()?;
    let port = free_port()?;
    let t = Timeouts::DEFAULT;
    let addr = format!("127.0.0.1:{}", dead.port);
    let body = lab.php_location("/", &addr, t, "");
    let http = format!(
        "    gatelog syslog:server=127.0.0.1:{},facility=local3,severity=warn,tag=gatelog_e2e;\n{}",
        sink.port,
        lab.server(port, &body)
    );
    let _nginx = lab.start_nginx(http, &[port])?;
    let r = client::get(port, "/via/syslog")?;
    if r.status != 502 {
        return Err(format!("expected 502, got {}", r.status));
    }
    let grams = sink.collect(1, Duration::from_secs(5));
    let Some(g) = grams.first() else {
        return Err("no syslog datagram arrived".into());
    };
    let text = String::from_utf8_lossy(g).into_owned();
    let Some(rest) = text.strip_prefix("<156>") else {
        return Err(format!("expected PRI <156> (local3.warn), got {text:?}"));
    };
    let Some(i) = rest.find(" gatelog_e2e: ") else {
        return Err(format!("no tag \"gatelog_e2e: \" in {text:?}"));
    };
    let payload = rest[i + " gatelog_e2e: ".len()..].trim_end_matches('\n');
    let v: Value = serde_json::from_str(payload)
        .map_err(|e| format!("syslog payload is not one JSON record ({e}): {payload:?}"))?;
    records::validate(&v)?;
    if v["request_id"] != r.request_id.as_str() || v["attempts"][0]["errno"] != 111 {
        return Err(format!("syslog record does not describe the request: {v}"));
    }
    Ok(TestOutcome::Passed)
}

/// `gatelog` set at server level is inherited by locations; `gatelog off` in one
/// location silences it there; another location writes to its own file.
fn off_and_inheritance(flavour: &Flavour) -> TestResult {
    let lab = Lab::new(flavour, "off")?;
    if let Some(s) = skip_without_module(&lab, "gatelog off") {
        return s;
    }
    let dead = RefusedPort::new()?;
    let port = free_port()?;
    let t = Timeouts::DEFAULT;
    let addr = format!("127.0.0.1:{}", dead.port);
    let own = lab.prefix.path("logs/own.jsonl");
    let body = format!(
        "        gatelog {};\n{}{}{}",
        lab.records_path().display(),
        lab.php_location("/inherited/", &addr, t, ""),
        lab.php_location("/quiet/", &addr, t, "            gatelog off;"),
        lab.php_location(
            "/own/",
            &addr,
            t,
            &format!("            gatelog {};", own.display())
        ),
    );
    let _nginx = lab.start_nginx(lab.server(port, &body), &[port])?;
    let quiet = client::get(port, "/quiet/a")?;
    let own_r = client::get(port, "/own/b")?;
    let inherited = client::get(port, "/inherited/c")?;
    let obs = observe(&lab, &[&quiet, &own_r, &inherited], 1)?;
    let mut errs = Errors::default();
    errs.check(obs.no_record(&quiet));
    errs.check(obs.no_record(&own_r));
    errs.check(obs.record(&inherited).map(|_| ()));
    if obs.records.len() != 1 {
        errs.push(format!(
            "server-level file: expected 1 record, got {}",
            obs.records.len()
        ));
    }
    let own_recs = records::wait_for(&own, 1, Duration::from_secs(5))?;
    if own_recs.len() != 1 || own_recs[0]["request_id"] != own_r.request_id.as_str() {
        errs.push(format!(
            "the location's own file should hold exactly /own/b's record: {own_recs:?}"
        ));
    }
    errs.into_result()?;
    Ok(TestOutcome::Passed)
}

/// `buffer=64k flush=300ms`: the record reaches the file within the flush time without
/// further traffic. `buffer=64k` without flush: the record stays in the buffer until
/// NGINX exits gracefully, then it is written.
fn buffered(flavour: &Flavour) -> TestResult {
    let lab = Lab::new(flavour, "buffered")?;
    if let Some(s) = skip_without_module(&lab, "buffering") {
        return s;
    }
    let dead = RefusedPort::new()?;
    let port = free_port()?;
    let t = Timeouts::DEFAULT;
    let addr = format!("127.0.0.1:{}", dead.port);
    let flushed = lab.prefix.path("logs/flushed.jsonl");
    let held = lab.prefix.path("logs/held.jsonl");
    let body = format!(
        "{}{}",
        lab.php_location(
            "/flushed/",
            &addr,
            t,
            &format!(
                "            gatelog {} buffer=64k flush=300ms;",
                flushed.display()
            )
        ),
        lab.php_location(
            "/held/",
            &addr,
            t,
            &format!("            gatelog {} buffer=64k;", held.display())
        ),
    );
    let mut nginx = lab.start_nginx(lab.server(port, &body), &[port])?;
    let h = client::get(port, "/held/a")?;
    let f = client::get(port, "/flushed/b")?;
    let start = std::time::Instant::now();
    let got = records::wait_for(&flushed, 1, Duration::from_secs(3))?;
    let waited = start.elapsed();
    let mut errs = Errors::default();
    if got[0]["request_id"] != f.request_id.as_str() {
        errs.push(format!("flushed file holds the wrong record: {}", got[0]));
    }
    // The held record was written before the flushed one and is still buffered.
    let early = records::read(&held)?;
    if !early.is_empty() {
        errs.push(format!(
            "buffer=64k without flush= wrote its record before exit ({} ms after the request)",
            waited.as_millis()
        ));
    }
    nginx.quit()?;
    let late = records::read(&held)?;
    if late.len() != 1 || late[0]["request_id"] != h.request_id.as_str() {
        errs.push(format!(
            "after a graceful exit the buffered record must be in the file: {late:?}"
        ));
    }
    for r in got.iter().chain(&late) {
        errs.check(records::validate(r));
    }
    errs.into_result()?;
    Ok(TestOutcome::Passed)
}
