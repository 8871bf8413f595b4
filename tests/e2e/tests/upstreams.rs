//! Other upstream failures: proxy_pass to a listener that accepts and never answers;
//! PHP itself answering 502 (origin "upstream", FastCGI stderr kept).

use gatelog_e2e::check::{observe, AttemptExpect, AttemptOutcome, RecordExpect};
use gatelog_e2e::client;
use gatelog_e2e::env::Flavour;
use gatelog_e2e::fpm::{Fpm, Pool};
use gatelog_e2e::lab::{no_module_reason, Lab, TestOutcome, TestResult, Timeouts};
use gatelog_e2e::net::{free_port, Blackhole, RefusedPort, ResetListener, SynDrop};

use crate::Body;

pub fn all() -> Vec<(&'static str, Body)> {
    vec![
        ("proxy_pass_hanging_listener", proxy_hang as Body),
        ("upstream_sent_502_with_stderr", upstream_502 as Body),
        (
            "upstream_sent_502_long_stderr_truncated",
            big_stderr as Body,
        ),
        (
            "connect_timeout_with_mirror_phase_from_state",
            mirror_connect_timeout as Body,
        ),
        (
            "upstream_resets_while_request_is_sent",
            reset_while_sending as Body,
        ),
        ("scgi_uwsgi_grpc_refused", other_modules as Body),
    ]
}

/// proxy_pass to a TCP listener that accepts and never answers: 504, phase header,
/// errno 110 (synthesized by NGINX).
fn proxy_hang(flavour: &Flavour) -> TestResult {
    let lab = Lab::new(flavour, "proxy-hang")?;
    let hole = Blackhole::new()?;
    let port = free_port()?;
    let t = Timeouts::new(2000, 3000, 1000);
    let addr = format!("127.0.0.1:{}", hole.port);
    let body = format!(
        "        location /hang/ {{\n            proxy_connect_timeout {}ms;\n            proxy_send_timeout {}ms;\n            proxy_read_timeout {}ms;\n            proxy_pass http://{addr};\n        }}\n",
        t.connect, t.send, t.read
    );
    let http = format!("{}{}", lab.default_gatelog(), lab.server(port, &body));
    let _nginx = lab.start_nginx(http, &[port])?;
    let r = client::get(port, "/hang/report?id=7")?;
    if r.status != 504 {
        return Err(format!("expected 504, got {}", r.status));
    }
    if hole.accepted() == 0 {
        return Err("the hanging listener accepted no connection".into());
    }
    let obs = observe(&lab, &[&r], 1)?;
    let fails = obs.fails(&r, &[AttemptOutcome::timed_out()])?;
    if fails[0].action() != Some("reading response header from upstream") {
        return Err(format!("NGINX's action: {:?}", fails[0].action()));
    }
    if !lab.with_module() {
        return Ok(TestOutcome::Skipped(no_module_reason(
            "proxy read timeout logged as 110",
        )));
    }
    let mut x = RecordExpect::one_attempt(
        &r,
        port,
        &addr,
        Some(t),
        AttemptExpect::failed(&addr, "header", vec![AttemptOutcome::timed_out()], 504),
    );
    x.min_request_time_ms = t.read;
    obs.verify(&r, Some(&fails), &x)?;
    Ok(TestOutcome::Passed)
}

/// PHP answers `Status: 502` after writing to FastCGI stderr: a record with origin
/// "upstream", an attempt with event upstream_status and no errno, and the stderr text.
fn upstream_502(flavour: &Flavour) -> TestResult {
    let lab = Lab::new(flavour, "upstream-502")?;
    let fpm = Fpm::start(&lab.prefix, Pool::unix(&lab.prefix, "www", 1), None)?;
    let port = free_port()?;
    let t = Timeouts::DEFAULT;
    let pass = fpm.pool.listen.nginx_addr();
    let http = format!(
        "{}{}",
        lab.default_gatelog(),
        lab.server(port, &lab.php_location("~ \\.php$", &pass, t, ""))
    );
    let _nginx = lab.start_nginx(http, &[port])?;
    let r = client::get(port, "/status502.php")?;
    if r.status != 502 || !String::from_utf8_lossy(&r.body).contains("bad gateway from php") {
        return Err(format!(
            "expected PHP's own 502, got {} {:?}",
            r.status,
            String::from_utf8_lossy(&r.body)
        ));
    }
    let obs = observe(&lab, &[&r], 1)?;
    let a = obs.access_line(&r)?;
    let stderr_line = obs
        .entries
        .iter()
        .find(|e| e.conn == Some(a.conn) && e.text.starts_with("FastCGI sent in stderr: "))
        .ok_or("NGINX logged no FastCGI stderr line")?;
    if !stderr_line
        .text
        .contains("gatelog-e2e stderr marker \"quoted\"")
    {
        return Err(format!("unexpected stderr line: {}", stderr_line.text));
    }
    if !lab.with_module() {
        return Ok(TestOutcome::Skipped(no_module_reason(
            "PHP answered 502 with a stderr line",
        )));
    }
    let mut x = RecordExpect::one_attempt(
        &r,
        port,
        &pass,
        Some(t),
        AttemptExpect {
            peer: pass.clone(),
            phase: None,
            outcomes: vec![AttemptOutcome::upstream_status()],
            status: Some(502),
        },
    );
    x.origin = Some("upstream");
    x.stderr_contains = Some("gatelog-e2e stderr marker \"quoted\"".into());
    obs.verify(&r, Some(&[]), &x)?;
    let rec = obs.record(&r)?;
    if rec["fastcgi_stderr"]["truncated"] != false {
        return Err(format!(
            "fastcgi_stderr.truncated should be false: {}",
            rec["fastcgi_stderr"]
        ));
    }
    Ok(TestOutcome::Passed)
}

/// PHP writes ~2.8 KB to stderr and answers 502: NGINX cuts its line at 2048 bytes,
/// the record says `truncated: true` and keeps at most 4 KiB.
fn big_stderr(flavour: &Flavour) -> TestResult {
    let lab = Lab::new(flavour, "big-stderr")?;
    let fpm = Fpm::start(&lab.prefix, Pool::unix(&lab.prefix, "www", 1), None)?;
    let port = free_port()?;
    let t = Timeouts::DEFAULT;
    let pass = fpm.pool.listen.nginx_addr();
    let http = format!(
        "{}{}",
        lab.default_gatelog(),
        lab.server(port, &lab.php_location("~ \\.php$", &pass, t, ""))
    );
    let _nginx = lab.start_nginx(http, &[port])?;
    let r = client::get(port, "/bigstderr502.php")?;
    if r.status != 502 {
        return Err(format!("expected PHP's own 502, got {}", r.status));
    }
    let obs = observe(&lab, &[&r], 1)?;
    let a = obs.access_line(&r)?;
    let lines: Vec<_> = obs
        .entries
        .iter()
        .filter(|e| e.conn == Some(a.conn) && e.text.starts_with("FastCGI sent in stderr: "))
        .collect();
    let [line] = lines.as_slice() else {
        return Err(format!(
            "expected one FastCGI stderr line (test premise), got {}",
            lines.len()
        ));
    };
    // NGINX cut the line at 2048 bytes: the closing quote and the context are gone.
    if line
        .text
        .contains("\" while reading response header from upstream")
    {
        return Err(format!(
            "NGINX did not cut the long stderr line (test premise): {}",
            line.text
        ));
    }
    if !lab.with_module() {
        return Ok(TestOutcome::Skipped(no_module_reason(
            "NGINX cut a long stderr line",
        )));
    }
    let mut x = RecordExpect::one_attempt(
        &r,
        port,
        &pass,
        Some(t),
        AttemptExpect {
            peer: pass.clone(),
            phase: None,
            outcomes: vec![AttemptOutcome::upstream_status()],
            status: Some(502),
        },
    );
    x.origin = Some("upstream");
    x.stderr_contains = Some("gatelog-e2e-gatelog-e2e-".into());
    obs.verify(&r, Some(&[]), &x)?;
    let rec = obs.record(&r)?;
    let st = &rec["fastcgi_stderr"];
    let len = st["text"].as_str().map_or(0, str::len);
    if st["truncated"] != true || len > 4096 {
        return Err(format!(
            "expected truncated=true and at most 4096 bytes, got truncated={} and {len} bytes",
            st["truncated"]
        ));
    }
    Ok(TestOutcome::Passed)
}

/// A connect timeout (SYNs dropped) on a main request while a `mirror` subrequest
/// completes: NGINX may print the shared action of the subrequest ("while sending to
/// client"), but the record's phase comes from the connection state: `connect`, 110,
/// 504. The mirror subrequest (200) has no record of its own.
fn mirror_connect_timeout(flavour: &Flavour) -> TestResult {
    let lab = Lab::new(flavour, "mirror")?;
    let fpm = Fpm::start(&lab.prefix, Pool::unix(&lab.prefix, "www", 1), None)?;
    let drop = SynDrop::new()?;
    let port = free_port()?;
    let t = Timeouts::new(1000, 3000, 4000);
    let addr = format!("127.0.0.1:{}", drop.port);
    let body = format!(
        "{}{}",
        lab.php_location("= /mix.php", &addr, t, "            mirror /m_ok;"),
        lab.php_location(
            "= /m_ok",
            &fpm.pool.listen.nginx_addr(),
            t,
            "            internal;\n            fastcgi_param SCRIPT_FILENAME $document_root/ok.php;"
        ),
    );
    let http = format!("{}{}", lab.default_gatelog(), lab.server(port, &body));
    let _nginx = lab.start_nginx(http, &[port])?;
    let r = client::get(port, "/mix.php")?;
    if r.status != 504 {
        return Err(format!("expected 504 (connect timeout), got {}", r.status));
    }
    let obs = observe(&lab, &[&r], 1)?;
    let fails = obs.fails(&r, &[AttemptOutcome::timed_out()])?;
    let action = fails[0].action().unwrap_or("").to_string();
    if !lab.with_module() {
        return Ok(TestOutcome::Skipped(no_module_reason(&format!(
            "connect timeout logged as 110 while {action:?}"
        ))));
    }
    let mut x = RecordExpect::one_attempt(
        &r,
        port,
        &addr,
        Some(t),
        AttemptExpect::failed(&addr, "connect", vec![AttemptOutcome::timed_out()], 504),
    );
    x.min_request_time_ms = t.connect;
    obs.verify(&r, Some(&fails), &x)
        .map_err(|e| format!("{e}\n(NGINX printed the action {action:?})"))?;
    if obs.records.len() != 1 {
        return Err(format!(
            "expected one record (the mirror has none), got {}",
            obs.records.len()
        ));
    }
    Ok(TestOutcome::Passed)
}

/// proxy_pass of a 16 MiB POST body to an upstream that reads 4 KiB and resets the
/// connection: NGINX fails while sending (writev/sendfile 104 or 32: phase `send`) or,
/// if the whole body fit in the socket buffers, while reading the header (recv 104 /
/// closed: phase `header`). Whichever line NGINX printed, the record must agree with it.
fn reset_while_sending(flavour: &Flavour) -> TestResult {
    let lab = Lab::new(flavour, "reset-send")?;
    let up = ResetListener::new()?;
    let port = free_port()?;
    let t = Timeouts::new(2000, 3000, 4000);
    let addr = format!("127.0.0.1:{}", up.port);
    let body = format!(
        "        client_max_body_size 64m;\n        location /upload/ {{\n            proxy_connect_timeout {}ms;\n            proxy_send_timeout {}ms;\n            proxy_read_timeout {}ms;\n            proxy_pass http://{addr};\n        }}\n",
        t.connect, t.send, t.read
    );
    let http = format!("{}{}", lab.default_gatelog(), lab.server(port, &body));
    let _nginx = lab.start_nginx(http, &[port])?;
    let file = lab.prefix.path("tmp/body.bin");
    std::fs::write(&file, vec![b'x'; 16 << 20]).map_err(|e| format!("writing the body: {e}"))?;
    let r = gatelog_e2e::client::Request::post_file(port, "/upload/big", &file).send()?;
    if r.status != 502 {
        return Err(format!("expected 502, got {}", r.status));
    }
    let obs = observe(&lab, &[&r], 1)?;
    let fails = obs.fails(&r, &[])?;
    let e = fails[0];
    let msg = e.message();
    let (phase, outcome) = match e.errno_and_text() {
        Some((n, _))
            if ["writev() failed", "send() failed", "sendfile() failed"]
                .iter()
                .any(|t| msg.starts_with(t)) =>
        {
            (
                "send",
                AttemptOutcome {
                    event: if n == 104 { "reset" } else { "send_failed" },
                    errno: Some(n),
                    level: if matches!(n, 104 | 32) {
                        "error"
                    } else {
                        "alert"
                    },
                    message: msg.to_string(),
                },
            )
        }
        Some((104, _)) if msg.starts_with("recv() failed") || msg.starts_with("readv() failed") => {
            ("header", AttemptOutcome::reset())
        }
        None if msg == "upstream prematurely closed connection" => {
            ("header", AttemptOutcome::closed_prematurely())
        }
        _ => {
            return Err(format!(
                "unexpected NGINX line for the reset upstream: [{}] {msg}",
                e.level
            ))
        }
    };
    if !lab.with_module() {
        return Ok(TestOutcome::Skipped(no_module_reason(&format!(
            "upstream reset, NGINX logged {msg:?}"
        ))));
    }
    let mut x = RecordExpect::one_attempt(
        &r,
        port,
        &addr,
        Some(t),
        AttemptExpect::failed(&addr, phase, vec![outcome], 502),
    );
    x.method = "POST";
    obs.verify(&r, Some(&fails), &x).map_err(|err| {
        format!(
            "{err}\n(NGINX logged [{}] {msg:?} while {:?})",
            e.level,
            e.action()
        )
    })?;
    Ok(TestOutcome::Passed)
}

/// scgi_pass, uwsgi_pass and grpc_pass to a refused port: a record each (502, 111,
/// async connect), with each module's own timeouts.
fn other_modules(flavour: &Flavour) -> TestResult {
    let lab = Lab::new(flavour, "other-modules")?;
    let dead = RefusedPort::new()?;
    let port = free_port()?;
    let addr = format!("127.0.0.1:{}", dead.port);
    let mods: [(&str, &str, Timeouts); 3] = [
        ("scgi", "", Timeouts::new(1100, 1200, 1300)),
        ("uwsgi", "", Timeouts::new(2100, 2200, 2300)),
        ("grpc", "grpc://", Timeouts::new(3100, 3200, 3300)),
    ];
    let mut body = String::new();
    for (m, scheme, t) in &mods {
        body.push_str(&format!(
            "        location /{m}/ {{\n            {m}_connect_timeout {}ms;\n            {m}_send_timeout {}ms;\n            {m}_read_timeout {}ms;\n            {m}_pass {scheme}{addr};\n        }}\n",
            t.connect, t.send, t.read
        ));
    }
    let http = format!("{}{}", lab.default_gatelog(), lab.h2_server(port, &body));
    let _nginx = lab.start_nginx(http, &[port])?;
    let mut resps = Vec::new();
    for (m, _, _) in &mods {
        // grpc needs an HTTP/2 client for a realistic request; all go over h2c.
        let r = gatelog_e2e::client::Request::get(port, &format!("/{m}/x"))
            .h2()
            .send()?;
        if r.status != 502 {
            return Err(format!("/{m}/x answered {}, expected 502", r.status));
        }
        resps.push(r);
    }
    let refs: Vec<&gatelog_e2e::client::Response> = resps.iter().collect();
    let obs = observe(&lab, &refs, resps.len())?;
    let mut all_fails = Vec::new();
    for r in &resps {
        all_fails.push(obs.fails(r, &[AttemptOutcome::connect_async(111)])?);
    }
    if !lab.with_module() {
        return Ok(TestOutcome::Skipped(no_module_reason(
            "scgi/uwsgi/grpc refused with 111",
        )));
    }
    let mut errs = gatelog_e2e::check::Errors::default();
    for ((r, f), (m, _, t)) in resps.iter().zip(&all_fails).zip(&mods) {
        let x = RecordExpect::one_attempt(
            r,
            port,
            &addr,
            Some(*t),
            AttemptExpect::failed(
                &addr,
                "connect",
                vec![AttemptOutcome::connect_async(111)],
                502,
            ),
        );
        errs.check(
            obs.verify(r, Some(f), &x)
                .map_err(|e| format!("{m}_pass: {e}")),
        );
    }
    errs.into_result()?;
    Ok(TestOutcome::Passed)
}
