//! `gatelog_metrics` / `gatelog_metrics_status`: the scraped counters equal what the
//! records say, label by label, across two workers and a reload; `promtool check
//! metrics` accepts the text; `?format=json` holds the same series and matches
//! docs/gatelog.metrics.v1.schema.json, another format is a 400; a zone too small drops
//! increments and keeps serving; directive errors fail `nginx -t`.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::Duration;

use gatelog_e2e::client;
use gatelog_e2e::env::Flavour;
use gatelog_e2e::fpm::{Fpm, Pool};
use gatelog_e2e::lab::{no_module_reason, Lab, TestOutcome, TestResult, Timeouts};
use gatelog_e2e::net::{free_port, RefusedPort};
use gatelog_e2e::nginx::{nginx_t, Nginx};
use gatelog_e2e::records;
use gatelog_e2e::schema;
use serde_json::Value;

use crate::Body;

pub fn all() -> Vec<(&'static str, Body)> {
    vec![
        ("metrics_known_mix_two_workers_reload", known_mix as Body),
        ("metrics_zone_too_small_drops", zone_too_small as Body),
        (
            "metrics_nginx_t_rejects_bad_arguments",
            bad_arguments as Body,
        ),
    ]
}

const T: Timeouts = Timeouts::DEFAULT;
const FAMILIES: [&str; 2] = [
    "gatelog_upstream_failed_attempts_total",
    "gatelog_requests_total",
];

fn esc(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The series every record should have incremented, written the way the exposition
/// format writes them, computed from the records alone.
fn expected_from_records(recs: &[Value]) -> BTreeMap<String, u64> {
    let mut m = BTreeMap::new();
    for r in recs {
        let up = esc(&s(&r["upstream"]));
        for a in r["attempts"].as_array().into_iter().flatten() {
            if a["event"].is_null() {
                continue;
            }
            let errno = if a["errno_name"].is_null() {
                s(&a["errno"])
            } else {
                s(&a["errno_name"])
            };
            let k = format!(
                "gatelog_upstream_failed_attempts_total{{upstream=\"{up}\",peer=\"{}\",event=\"{}\",errno=\"{}\",phase=\"{}\",status=\"{}\"}}",
                esc(&s(&a["peer"])),
                s(&a["event"]),
                errno,
                s(&a["phase"]),
                s(&a["status"]),
            );
            *m.entry(k).or_insert(0) += 1;
        }
        let k = format!(
            "gatelog_requests_total{{upstream=\"{up}\",status=\"{}\",origin=\"{}\",recovered=\"{}\"}}",
            s(&r["status"]),
            s(&r["origin"]),
            s(&r["recovered"]),
        );
        *m.entry(k).or_insert(0) += 1;
    }
    m
}

/// The scrape's sample lines (`name{labels}` → value).
fn samples(text: &str) -> Result<BTreeMap<String, u64>, String> {
    let mut m = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (series, v) = line
            .rsplit_once(' ')
            .ok_or_else(|| format!("sample line without a value: {line:?}"))?;
        let v: u64 = v
            .parse()
            .map_err(|_| format!("sample value is not an integer: {line:?}"))?;
        if m.insert(series.to_owned(), v).is_some() {
            return Err(format!("series twice in one scrape: {series}"));
        }
    }
    Ok(m)
}

/// A series the way both renderings can be compared: name and (unescaped) labels.
type SeriesId = (String, BTreeMap<String, String>);

/// The Prometheus text's samples, labels parsed and unescaped.
fn parse_text(text: &str) -> Result<BTreeMap<SeriesId, u64>, String> {
    let mut m = BTreeMap::new();
    for (series, v) in samples(text)? {
        let (name, labels) = match series.split_once('{') {
            None => (series.as_str(), BTreeMap::new()),
            Some((name, rest)) => {
                let body = rest
                    .strip_suffix('}')
                    .ok_or_else(|| format!("unterminated labels: {series}"))?;
                (
                    name,
                    parse_label_text(body).map_err(|e| format!("{e}: {series}"))?,
                )
            }
        };
        m.insert((name.to_owned(), labels), v);
    }
    Ok(m)
}

/// `a="x",b="y\"z"` → {a: x, b: y"z} (the exposition format's escapes: `\\`, `\"`, `\n`).
fn parse_label_text(body: &str) -> Result<BTreeMap<String, String>, String> {
    let mut labels = BTreeMap::new();
    let mut rest = body;
    while !rest.is_empty() {
        let (name, after) = rest.split_once("=\"").ok_or("label without =\"")?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next().ok_or("unterminated label value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().ok_or("dangling escape")?.1 {
                    'n' => value.push('\n'),
                    c @ ('\\' | '"') => value.push(c),
                    c => return Err(format!("unknown escape \\{c}")),
                },
                (_, c) => value.push(c),
            }
        };
        if labels.insert(name.to_owned(), value).is_some() {
            return Err(format!("label {name} twice"));
        }
        rest = &after[end + 1..];
        if !rest.is_empty() {
            rest = rest.strip_prefix(',').ok_or("labels not separated by ,")?;
        }
    }
    Ok(labels)
}

/// The JSON scrape as the same map: its series, and its drop counter and zone bytes
/// under their Prometheus names.
fn parse_json(v: &Value) -> Result<BTreeMap<SeriesId, u64>, String> {
    let mut m = BTreeMap::new();
    for s in v["series"].as_array().ok_or("no series array")? {
        let name = s["name"]
            .as_str()
            .ok_or_else(|| format!("series without name: {s}"))?;
        let labels = s["labels"]
            .as_object()
            .ok_or_else(|| format!("series without labels: {s}"))?
            .iter()
            .map(|(k, v)| {
                Ok((
                    k.clone(),
                    v.as_str()
                        .ok_or_else(|| format!("label {k} not a string: {s}"))?
                        .to_owned(),
                ))
            })
            .collect::<Result<BTreeMap<_, _>, String>>()?;
        let value = s["value"]
            .as_u64()
            .ok_or_else(|| format!("value not a count: {s}"))?;
        if m.insert((name.to_owned(), labels), value).is_some() {
            return Err(format!("series twice in the JSON scrape: {s}"));
        }
    }
    for (name, at) in [
        ("gatelog_metrics_dropped_total", "/dropped_total"),
        ("gatelog_metrics_zone_size_bytes", "/zone/size_bytes"),
        ("gatelog_metrics_zone_used_bytes", "/zone/used_bytes"),
        ("gatelog_metrics_series_capacity", "/zone/series_capacity"),
    ] {
        let n = v
            .pointer(at)
            .and_then(Value::as_u64)
            .ok_or_else(|| format!("JSON scrape lacks {at}"))?;
        m.insert((name.to_owned(), BTreeMap::new()), n);
    }
    Ok(m)
}

/// GET over a raw connection, for the headers: (status, Content-Type, body).
fn get_raw(port: u16, target: &str) -> Result<(u16, String, String), String> {
    let req = format!("GET {target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    let r = client::raw(port, req.as_bytes(), Duration::from_secs(10))?;
    let text =
        String::from_utf8(r.body).map_err(|e| format!("{target}: answer is not UTF-8: {e}"))?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{target}: no end of headers: {text:?}"))?;
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    Ok((r.status, content_type, body.to_owned()))
}

/// `?format=json` (among other arguments) holds the text scrape's series, label by
/// label, and matches its schema; `format=xml` is refused naming the accepted values.
fn json_scrape_matches(lab: &Lab, port: u16, text: &str) -> Result<(), String> {
    let (status, ctype, body) = get_raw(port, "/metrics?x=1&format=json")?;
    if status != 200 || ctype != "application/json" {
        return Err(format!("?format=json answered {status} {ctype:?}:\n{body}"));
    }
    // Kept with the prefix (GATELOG_E2E_KEEP=1) for a look, as out/scrape.prom is.
    lab.prefix.write("out/scrape.json", &body, 0o644)?;
    let v: Value = serde_json::from_str(&body)
        .map_err(|e| format!("JSON scrape does not parse ({e}):\n{body}"))?;
    let schema = schema::docs(schema::METRICS)?;
    if let Err(errs) = schema.validate(&v) {
        return Err(format!(
            "JSON scrape violates {}:\n  {}\n{body}",
            schema.path().display(),
            errs.join("\n  ")
        ));
    }
    let from_json = parse_json(&v)?;
    let from_text = parse_text(text)?;
    if from_json != from_text {
        return Err(format!(
            "JSON and text scrapes differ:\njson {from_json:#?}\ntext {from_text:#?}"
        ));
    }
    let (status, ctype, _) = get_raw(port, "/metrics")?;
    if status != 200 || ctype != "text/plain; version=0.0.4; charset=utf-8" {
        return Err(format!("/metrics answered {status} {ctype:?}"));
    }
    let (status, _, body) = get_raw(port, "/metrics?format=xml")?;
    if status != 400 || !body.contains("\"text\"") || !body.contains("\"json\"") {
        return Err(format!(
            "?format=xml answered {status}, expected 400 naming text and json:\n{body}"
        ));
    }
    Ok(())
}

fn promtool(lab: &Lab, text: &str) -> Result<(), String> {
    let path = lab.prefix.write("out/scrape.prom", text, 0o644)?;
    let file = std::fs::File::open(&path).map_err(|e| e.to_string())?;
    let out = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::from(file))
        .output()
        .map_err(|e| {
            format!(
                "promtool not runnable ({e}): install Debian's prometheus package (scripts/setup)"
            )
        })?;
    if !out.status.success() {
        return Err(format!(
            "promtool check metrics rejected {}:\n{}{}",
            path.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// A scrape once it counts every record in `recs` (the last one after 10 s, for the
/// caller's comparison to show). A worker writes a record and then counts it: a scrape
/// served by the other worker in between sees the record but not yet its count (seen
/// under memcheck, where that moment lasts).
fn scrape_counted(port: u16, recs: &[Value]) -> Result<String, String> {
    let want = expected_from_records(recs);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = scrape(port)?;
        let got: BTreeMap<String, u64> = samples(&text)?
            .into_iter()
            .filter(|(k, _)| FAMILIES.iter().any(|f| k.starts_with(&format!("{f}{{"))))
            .collect();
        if got == want || std::time::Instant::now() > deadline {
            return Ok(text);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn scrape(port: u16) -> Result<String, String> {
    let r = client::get(port, "/metrics")?;
    if r.status != 200 {
        return Err(format!("/metrics answered {}", r.status));
    }
    String::from_utf8(r.body).map_err(|e| format!("scrape is not UTF-8: {e}"))
}

fn expect_status(port: u16, target: &str, want: u16) -> Result<(), String> {
    let r = client::get(port, target)?;
    if r.status != want {
        return Err(format!("{target} answered {}, expected {want}", r.status));
    }
    Ok(())
}

/// FPM stopped, a root 0600 socket, upstream {dead, live} recovering, a read timeout;
/// two workers, a reload halfway.
fn known_mix(flavour: &Flavour) -> TestResult {
    let lab = Lab::new(flavour, "metrics-mix")?;
    if !lab.with_module() {
        return Ok(TestOutcome::Skipped(no_module_reason(
            "metrics need the module",
        )));
    }
    let www = Fpm::start(&lab.prefix, Pool::unix(&lab.prefix, "www", 2), None)?;
    let mut denied = Pool::unix(&lab.prefix, "denied", 1);
    denied.owner = "root".into();
    denied.group = "root".into();
    denied.mode = "0600".into();
    let denied = Fpm::start(&lab.prefix, denied, None)?;
    let mut gone = Fpm::start(&lab.prefix, Pool::unix(&lab.prefix, "gone", 1), None)?;
    let gone_addr = gone.pool.listen.nginx_addr();
    gone.stop_clean()?;
    let dead = RefusedPort::new()?;
    let port = free_port()?;
    let good = www.pool.listen.nginx_addr();
    let ok = "            fastcgi_param SCRIPT_FILENAME $document_root/ok.php;";
    let body = format!(
        "{}{}{}{}        location = /metrics {{\n            gatelog_metrics_status;\n        }}\n",
        lab.php_location("= /stopped.php", &gone_addr, T, ok),
        lab.php_location("= /denied.php", &denied.pool.listen.nginx_addr(), T, ok),
        lab.php_location("= /flaky.php", "flaky", T, ok),
        lab.php_location("= /sleep.php", &good, Timeouts::new(2000, 3000, 1000), ""),
    );
    let http = format!(
        "{}{}{}    upstream flaky {{\n        server 127.0.0.1:{};\n        server {good};\n    }}\n{}",
        lab.gl("gatelog_metrics zone=gatelog:1m;"),
        lab.default_gatelog(),
        lab.gl("gatelog_recovered on;"),
        dead.port,
        lab.server(port, &body)
    );
    let mut conf = lab.conf(http);
    conf.worker_processes = 2;
    let nginx = Nginx::start(flavour, &lab.prefix, &conf, &[port])?;
    // The port answers as soon as one worker runs; the master may still be forking the
    // other (seen once on a loaded machine).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let workers = nginx.worker_pids();
        if workers.len() == 2 {
            break;
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("expected 2 workers, got {workers:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for (t, st) in [
        ("/stopped.php", 502),
        ("/stopped.php", 502),
        ("/denied.php", 502),
        // One per cycle: after it NGINX counts the dead peer as down (max_fails=1) and
        // goes straight to the live one, without a failed attempt.
        ("/flaky.php", 200),
    ] {
        expect_status(port, t, st)?;
    }
    let recs = records::wait_for(&lab.records_path(), 4, Duration::from_secs(10))?;
    let before = samples(&scrape_counted(port, &recs)?)?;
    let old_workers = nginx.worker_pids();
    nginx.reload()?;
    // The new workers serve once the old ones are gone.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let now = nginx.worker_pids();
        if now.len() == 2 && now.iter().all(|p| !old_workers.contains(p)) {
            break;
        }
        if std::time::Instant::now() > deadline {
            return Err(format!("reload: workers {old_workers:?} → {now:?}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let after_reload = samples(&scrape(port)?)?;
    for f in FAMILIES {
        let pick = |m: &BTreeMap<String, u64>| {
            m.iter()
                .filter(|(k, _)| k.starts_with(f))
                .map(|(k, v)| (k.clone(), *v))
                .collect::<Vec<_>>()
        };
        if pick(&before) != pick(&after_reload) {
            return Err(format!(
                "the reload changed the counts of {f}:\nbefore {:?}\nafter  {:?}",
                pick(&before),
                pick(&after_reload)
            ));
        }
    }
    for (t, st) in [
        ("/stopped.php", 502),
        ("/denied.php", 502),
        ("/denied.php", 502),
        ("/flaky.php", 200),
        ("/sleep.php?ms=2500", 504),
    ] {
        expect_status(port, t, st)?;
    }
    let recs = records::wait_for(&lab.records_path(), 9, Duration::from_secs(10))?;
    if recs.len() != 9 {
        return Err(format!("expected 9 records, got {}", recs.len()));
    }
    let text = scrape_counted(port, &recs)?;
    let got: BTreeMap<String, u64> = samples(&text)?
        .into_iter()
        .filter(|(k, _)| FAMILIES.iter().any(|f| k.starts_with(&format!("{f}{{"))))
        .collect();
    let want = expected_from_records(&recs);
    if got != want {
        return Err(format!(
            "scraped counters differ from the records:\nscraped {got:#?}\nrecords {want:#?}\nscrape:\n{text}"
        ));
    }
    // The mix really happened (the records are not all one kind).
    for needle in [
        "errno=\"ENOENT\"",
        "errno=\"EACCES\"",
        "errno=\"ECONNREFUSED\",phase=\"connect\"",
        "event=\"timed_out\",errno=\"ETIMEDOUT\",phase=\"header\",status=\"504\"",
        "status=\"200\",origin=\"upstream\",recovered=\"true\"} 2",
    ] {
        if !text.contains(needle) {
            return Err(format!("scrape lacks {needle}:\n{text}"));
        }
    }
    if !text.contains("\ngatelog_metrics_dropped_total 0\n") {
        return Err(format!("drops in a 1m zone:\n{text}"));
    }
    promtool(&lab, &text)?;
    json_scrape_matches(&lab, port, &text)?;
    Ok(TestOutcome::Passed)
}

/// The smallest zone (8 pages) and 60 distinct upstreams (120 series): the table
/// fills, the rest is counted as dropped, every request is still answered and
/// recorded.
fn zone_too_small(flavour: &Flavour) -> TestResult {
    let lab = Lab::new(flavour, "metrics-small")?;
    if !lab.with_module() {
        return Ok(TestOutcome::Skipped(no_module_reason(
            "metrics need the module",
        )));
    }
    let port = free_port()?;
    let n = 60;
    let mut body = String::new();
    for i in 0..n {
        let sock = lab.prefix.path(&format!("run/missing{i}.sock"));
        body.push_str(&lab.php_location(
            &format!("= /d{i}.php"),
            &format!("unix:{}", sock.display()),
            T,
            "",
        ));
    }
    body.push_str(
        "        location = /metrics {\n            gatelog_metrics_status;\n        }\n",
    );
    body.push_str("        location = /alive {\n            return 200 \"alive\\n\";\n        }\n");
    let http = format!(
        "{}{}{}",
        lab.gl("gatelog_metrics zone=tiny:32k;"),
        lab.default_gatelog(),
        lab.server(port, &body)
    );
    let _nginx = lab.start_nginx(http, &[port])?;
    for i in 0..n {
        expect_status(port, &format!("/d{i}.php"), 502)?;
    }
    expect_status(port, "/alive", 200)?;
    let recs = records::wait_for(&lab.records_path(), n, Duration::from_secs(10))?;
    if recs.len() != n {
        return Err(format!("expected {n} records, got {}", recs.len()));
    }
    let text = scrape(port)?;
    let m = samples(&text)?;
    let get = |k: &str| {
        m.get(k)
            .copied()
            .ok_or_else(|| format!("scrape lacks {k}:\n{text}"))
    };
    let dropped = get("gatelog_metrics_dropped_total")?;
    let capacity = get("gatelog_metrics_series_capacity")?;
    let counted: u64 = m
        .iter()
        .filter(|(k, _)| FAMILIES.iter().any(|f| k.starts_with(&format!("{f}{{"))))
        .map(|(_, v)| v)
        .sum();
    let series = m
        .keys()
        .filter(|k| FAMILIES.iter().any(|f| k.starts_with(&format!("{f}{{"))))
        .count() as u64;
    if dropped == 0 || series != capacity || counted + dropped != 2 * n as u64 {
        return Err(format!(
            "expected a full table ({capacity} series, got {series}) and counted {counted} + dropped {dropped} = {}:\n{text}",
            2 * n
        ));
    }
    promtool(&lab, &text)?;
    json_scrape_matches(&lab, port, &text)?;
    Ok(TestOutcome::Passed)
}

fn bad_arguments(flavour: &Flavour) -> TestResult {
    let lab = Lab::new(flavour, "metrics-t")?;
    if !lab.with_module() {
        return Ok(TestOutcome::Skipped(no_module_reason(
            "directives of the module",
        )));
    }
    let status_loc =
        "        location = /metrics {\n            gatelog_metrics_status;\n        }\n";
    let mut errs = Vec::new();
    for (case, http, want) in [
        ("valid", "gatelog_metrics zone=m:1m;", None),
        (
            "size",
            "gatelog_metrics zone=m:lots;",
            Some("\"gatelog_metrics\" directive: invalid zone size \"lots\""),
        ),
        (
            "param",
            "gatelog_metrics m:1m;",
            Some("\"gatelog_metrics\" directive: invalid parameter \"m:1m\""),
        ),
        (
            "small",
            "gatelog_metrics zone=m:4k;",
            Some("\"gatelog_metrics\" directive: zone \"m\" is too small"),
        ),
        (
            "twice",
            "gatelog_metrics zone=m:1m;\n    gatelog_metrics zone=n:1m;",
            Some("\"gatelog_metrics\" directive: is duplicate"),
        ),
        (
            "no zone",
            "",
            Some("\"gatelog_metrics_status\" directive: needs \"gatelog_metrics zone=NAME:SIZE\""),
        ),
    ] {
        let port = free_port()?;
        let conf = lab
            .conf(format!("    {http}\n{}", lab.server(port, status_loc)))
            .render(&lab.prefix);
        let out = nginx_t(
            flavour,
            &lab.prefix,
            &format!("{}.conf", case.replace(' ', "-")),
            &conf,
        )?;
        match want {
            None if !out.success => errs.push(format!("{case}: nginx -t failed:\n{}", out.output)),
            Some(w) if out.success || !out.output.contains(w) => errs.push(format!(
                "{case}: expected failure with {w:?}, got:\n{}",
                out.output
            )),
            _ => {}
        }
    }
    if errs.is_empty() {
        Ok(TestOutcome::Passed)
    } else {
        Err(errs.join("\n"))
    }
}
