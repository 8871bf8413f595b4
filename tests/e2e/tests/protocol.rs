//! Client side: HTTP/2 (prior knowledge), and requests whose URI and Host carry
//! quotes, backslashes, encoded newlines, control bytes and invalid UTF-8.

use std::time::Duration;

use gatelog_e2e::check::{observe, AttemptExpect, AttemptOutcome, RecordExpect};
use gatelog_e2e::client::{self, Request, Response};
use gatelog_e2e::env::Flavour;
use gatelog_e2e::fpm::{Fpm, Pool};
use gatelog_e2e::lab::{no_module_reason, Lab, TestOutcome, TestResult, Timeouts};
use gatelog_e2e::net::{free_port, RefusedPort};
use gatelog_e2e::records;

use crate::Body;

pub fn all() -> Vec<(&'static str, Body)> {
    vec![
        ("http2_client", http2 as Body),
        ("uri_and_host_escaping", escaping as Body),
    ]
}

/// Over HTTP/2 (h2c prior knowledge): a refused upstream (502, 111) and a read
/// timeout (504, 110), both with protocol "HTTP/2.0".
fn http2(flavour: &Flavour) -> TestResult {
    let lab = Lab::new(flavour, "http2")?;
    let fpm = Fpm::start(&lab.prefix, Pool::unix(&lab.prefix, "www", 1), None)?;
    let dead = RefusedPort::new()?;
    let port = free_port()?;
    let t = Timeouts::new(2000, 3000, 1000);
    let pass = fpm.pool.listen.nginx_addr();
    let dead_addr = format!("127.0.0.1:{}", dead.port);
    let body = format!(
        "{}{}",
        lab.php_location("^~ /refused/", &dead_addr, t, ""),
        lab.php_location("~ \\.php$", &pass, t, "")
    );
    let http = format!("{}{}", lab.default_gatelog(), lab.h2_server(port, &body));
    let _nginx = lab.start_nginx(http, &[port])?;
    let reqs = [
        Request::get(port, "/refused/x.php?h2=1").h2(),
        Request::get(port, "/sleep.php?ms=2000&h2=1").h2(),
    ];
    let resps: Vec<Response> = client::concurrent(&reqs)
        .into_iter()
        .collect::<Result<_, _>>()?;
    let (refused, slow) = (&resps[0], &resps[1]);
    if refused.status != 502 || slow.status != 504 {
        return Err(format!(
            "expected 502 and 504 over HTTP/2, got {} and {}",
            refused.status, slow.status
        ));
    }
    let obs = observe(&lab, &[refused, slow], 2)?;
    let f1 = obs.fails(refused, &[AttemptOutcome::connect_async(111)])?;
    let f2 = obs.fails(slow, &[AttemptOutcome::timed_out()])?;
    if !lab.with_module() {
        return Ok(TestOutcome::Skipped(no_module_reason(
            "HTTP/2 requests failed with 111 and 110",
        )));
    }
    let x1 = RecordExpect::one_attempt(
        refused,
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
    let mut x2 = RecordExpect::one_attempt(
        slow,
        port,
        &pass,
        Some(t),
        AttemptExpect::failed(&pass, "header", vec![AttemptOutcome::timed_out()], 504),
    );
    x2.min_request_time_ms = t.read;
    let mut errs = gatelog_e2e::check::Errors::default();
    errs.check(obs.verify(refused, Some(&f1), &x1));
    errs.check(obs.verify(slow, Some(&f2), &x2));
    errs.into_result()?;
    Ok(TestOutcome::Passed)
}

/// The bytes a record must carry for `raw`: valid UTF-8 as is, other bytes as %XX.
fn lossless(raw: &[u8]) -> String {
    let mut out = String::new();
    for chunk in raw.utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Raw requests with hostile bytes to a refused upstream: each yields exactly one
/// valid JSON line whose uri/host keep the bytes (invalid UTF-8 as %XX).
fn escaping(flavour: &Flavour) -> TestResult {
    let lab = Lab::new(flavour, "escaping")?;
    let dead = RefusedPort::new()?;
    let port = free_port()?;
    let t = Timeouts::DEFAULT;
    let dead_addr = format!("127.0.0.1:{}", dead.port);
    let body = lab.php_location("/", &dead_addr, t, "");
    let http = format!("{}{}", lab.default_gatelog(), lab.server(port, &body));
    let _nginx = lab.start_nginx(http, &[port])?;

    // (request target, Host header or None, protocol)
    type Case = (Vec<u8>, Option<Vec<u8>>, &'static str);
    let cases: Vec<Case> = vec![
        (
            b"/q\"uo\"te\\back/caf\xc3\xa9/\xff\xfe\xc3/%0A%0D%22?a=\"b\"&c=<x>\xe2\x82".to_vec(),
            // NGINX refuses control bytes, spaces and '/' in Host (400): quotes,
            // backslashes and invalid UTF-8 pass.
            Some(b"e2e\"h\\o\xffst\xc3".to_vec()),
            "HTTP/1.1",
        ),
        (
            b"/line%0Abreak%0D%0Ainjected%5Cn\"}{\"x\":\"".to_vec(),
            Some(b"127.0.0.1".to_vec()),
            "HTTP/1.1",
        ),
        (b"/no-host/\xc0\xaf".to_vec(), None, "HTTP/1.0"),
    ];
    let mut resps = Vec::new();
    for (target, host, proto) in &cases {
        let mut req = b"GET ".to_vec();
        req.extend_from_slice(target);
        req.extend_from_slice(format!(" {proto}\r\n").as_bytes());
        if let Some(h) = host {
            req.extend_from_slice(b"Host: ");
            req.extend_from_slice(h);
            req.extend_from_slice(b"\r\n");
        }
        req.extend_from_slice(b"Connection: close\r\n\r\n");
        let mut r = client::raw(port, &req, Duration::from_secs(10))?;
        if r.status != 502 {
            return Err(format!(
                "raw request {:?} answered {} (expected 502): {}",
                String::from_utf8_lossy(target),
                r.status,
                String::from_utf8_lossy(&r.body)
            ));
        }
        r.target = lossless(target);
        resps.push(r);
    }
    // And through curl: quotes and encoded newlines in the query.
    resps.push(client::get(port, "/curl/%22q%22?x=%0A&y=\"z\"")?);
    // Control bytes in the request line: NGINX answers 400 itself (no upstream, so
    // no record).
    let ctl = client::raw(
        port,
        b"GET /ctl/a\x01b\x1b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        Duration::from_secs(10),
    )?;
    if ctl.status != 400 {
        return Err(format!(
            "control bytes in the URI: expected NGINX's 400, got {}",
            ctl.status
        ));
    }
    let refs: Vec<&Response> = resps.iter().collect();
    let obs = observe(&lab, &refs, resps.len())?;
    let mut fails = Vec::new();
    for r in &resps {
        fails.push(obs.fails(r, &[AttemptOutcome::connect_async(111)])?);
    }
    if !lab.with_module() {
        return Ok(TestOutcome::Skipped(no_module_reason(
            "hostile requests answered 502 (111)",
        )));
    }
    obs.no_record(&ctl)?;
    // Exactly one line per request, each one JSON object, no raw control bytes.
    let bytes = std::fs::read(lab.records_path()).map_err(|e| format!("reading records: {e}"))?;
    let lines = bytes.iter().filter(|&&b| b == b'\n').count();
    if lines != resps.len() {
        return Err(format!(
            "{} requests wrote {lines} lines:\n{}",
            resps.len(),
            String::from_utf8_lossy(&bytes)
        ));
    }
    if let Some(b) = bytes.iter().find(|&&b| b < 0x20 && b != b'\n') {
        return Err(format!("records contain a raw control byte 0x{b:02x}"));
    }
    records::parse_lines(&bytes)?;
    let mut errs = gatelog_e2e::check::Errors::default();
    for (i, (r, f)) in resps.iter().zip(&fails).enumerate() {
        let mut x = RecordExpect::one_attempt(
            r,
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
        if let Some((_, host, proto)) = cases.get(i) {
            x.host = host.as_deref().map(lossless);
            x.protocol = proto;
        }
        errs.check(obs.verify(r, Some(f), &x));
    }
    errs.into_result()?;
    Ok(TestOutcome::Passed)
}
