//! The module under stress: a full disk during a 502 storm (a real 1 MiB tmpfs filled
//! and freed), reloads and reopens in a storm, and a single-process NGINX reloading
//! with buffered records. Every record file must hold only whole JSON lines, and the
//! records written plus the records the module says it lost must equal the failures
//! NGINX answered, request by request.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use gatelog_e2e::check::Errors;
use gatelog_e2e::env::{Flavour, NO_MODULE_ENV};
use gatelog_e2e::lab::{Lab, TestOutcome, TestResult, Timeouts};
use gatelog_e2e::net::{free_port, RefusedPort};
use gatelog_e2e::nginx::Nginx;
use gatelog_e2e::records;
use gatelog_e2e::storm::{Storm, StormResult};
use gatelog_e2e::tmpfs::Tmpfs;
use gatelog_e2e::valgrind;
use regex::Regex;
use serde_json::Value;

use crate::Body;

pub fn all() -> Vec<(&'static str, Body)> {
    vec![
        ("full_disk_in_a_storm", full_disk as Body),
        ("reload_and_reopen_in_a_storm", reload_and_reopen as Body),
        ("single_process_reload_with_flush", single_process as Body),
        ("dead_syslog_server_in_a_storm", dead_syslog as Body),
        ("gatelog_and_access_log_share_a_path", shared_path as Body),
    ]
}

/// How much longer a storm lasts: memcheck makes NGINX 20-50 times slower, and a storm
/// must still fill the disk and see its reloads.
fn pace() -> u64 {
    if valgrind::enabled() {
        5
    } else {
        1
    }
}

/// The fewest failures a storm must see for its checks to mean something.
fn enough_failures() -> usize {
    if valgrind::enabled() {
        20
    } else {
        200
    }
}

fn skip_without_module(lab: &Lab, what: &str) -> Option<TestResult> {
    (!lab.with_module()).then(|| {
        Ok(TestOutcome::Skipped(format!(
            "{what} needs the module ({NO_MODULE_ENV} is set); nothing was checked"
        )))
    })
}

/// A location failing fast (connection refused) that writes every record to `destinations`.
/// The 111 lines go to a `crit` log, so NGINX's error log holds gatelog's own lines.
///
/// NGINX's own access_log is off there, and in single-process mode the location logs to
/// stderr: such a process keeps serving its open connections with the configuration a
/// reload replaced, and NGINX's logs keep writing to the descriptors that reload closed
/// (soon the numbers of other files or of client sockets).
fn storm_location(lab: &Lab, addr: &str, destinations: &[String], single_process: bool) -> String {
    let crit_log = if single_process {
        "stderr".to_string()
    } else {
        lab.prefix
            .path("logs/storm-error.log")
            .display()
            .to_string()
    };
    let mut extra =
        format!("            error_log {crit_log} crit;\n            access_log off;\n");
    for s in destinations {
        extra.push_str(&format!("            gatelog {s};\n"));
    }
    lab.php_location("/storm/", addr, Timeouts::DEFAULT, &extra)
}

/// What every storm test starts from: its lab, an upstream that refuses connections
/// (every request fails fast with 502) and the port NGINX will listen on.
struct StormRig {
    lab: Lab,
    dead: RefusedPort,
    port: u16,
}

impl StormRig {
    /// `Err(outcome)`: the test ends here, skipped because the module is deliberately
    /// absent (`what` is what could not be checked).
    fn new(flavour: &Flavour, label: &str, what: &str) -> Result<StormRig, TestResult> {
        let lab = Lab::new(flavour, label).map_err(Err)?;
        if let Some(s) = skip_without_module(&lab, what) {
            return Err(s);
        }
        let dead = RefusedPort::new().map_err(Err)?;
        let port = free_port().map_err(Err)?;
        Ok(StormRig { lab, dead, port })
    }

    /// NGINX with the storm location writing records to `destinations` (see
    /// [`storm_location`]); `single_process`: `master_process off`.
    fn nginx(&self, destinations: &[String], single_process: bool) -> Result<Nginx, String> {
        let lab = &self.lab;
        let upstream = format!("127.0.0.1:{}", self.dead.port);
        let body = storm_location(lab, &upstream, destinations, single_process);
        let mut conf = lab.conf(lab.server(self.port, &body));
        conf.single_process = single_process;
        Nginx::start(&lab.flavour, &lab.prefix, &conf, &[self.port])
    }
}

/// Two record files in `dir`, `plain.jsonl` unbuffered and `buffered.jsonl` with the
/// `buffered` options (`buffer=... flush=...`), and the `gatelog` targets naming them.
fn plain_and_buffered(dir: &Path, buffered: &str) -> ([PathBuf; 2], Vec<String>) {
    let files = [dir.join("plain.jsonl"), dir.join("buffered.jsonl")];
    let destinations = vec![
        files[0].display().to_string(),
        format!("{} {buffered}", files[1].display()),
    ];
    (files, destinations)
}

/// What a storm's answers must match.
struct StormFailures {
    ids: HashSet<String>,
}

/// The 502s of a storm; any other status is an error unless in `tolerated`.
fn failures(result: &StormResult, tolerated: &[u16], errs: &mut Errors) -> StormFailures {
    for e in &result.errors {
        errs.push(format!("storm client: {e}"));
    }
    let others: Vec<u16> = result
        .answers
        .iter()
        .map(|a| a.status)
        .filter(|&s| s != 502 && !tolerated.contains(&s))
        .collect();
    if !others.is_empty() {
        errs.push(format!(
            "{} answers were not 502 (first: {})",
            others.len(),
            others[0]
        ));
    }
    let ids: HashSet<String> = result
        .with_status(502)
        .map(|a| a.request_id.clone())
        .collect();
    if ids.len() != result.with_status(502).count() || ids.contains("") {
        errs.push("502 answers without a distinct X-Request-Id");
    }
    StormFailures { ids }
}

/// [`failures`], and at least [`enough_failures`] of them.
fn storm_failures(result: &StormResult, tolerated: &[u16], errs: &mut Errors) -> StormFailures {
    let f = failures(result, tolerated, errs);
    if f.ids.len() < enough_failures() {
        errs.push(format!("only {} failures in the storm", f.ids.len()));
    }
    f
}

/// A `gatelog:` line of NGINX's error log.
#[derive(Debug)]
struct GatelogLine {
    second: String,
    pid: u32,
    file: String,
    /// "N record(s) lost since the last message".
    lost: u64,
    /// The exit/reload summary (not rate-limited).
    last_word: bool,
    text: String,
}

fn gatelog_lines(error_log: &Path) -> Result<Vec<GatelogLine>, String> {
    let text = std::fs::read_to_string(error_log)
        .map_err(|e| format!("reading {}: {e}", error_log.display()))?;
    let line_re =
        Regex::new(r"^(\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) \[(\w+)\] (\d+)#\d+: (gatelog: [^\n]*)$")
            .map_err(|e| e.to_string())?;
    let file_re = Regex::new(r#""([^"]+)""#).map_err(|e| e.to_string())?;
    let lost_re =
        Regex::new(r"(\d+) records? lost since the last message").map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for l in text.lines() {
        let Some(c) = line_re.captures(l) else {
            if l.contains("gatelog:") {
                return Err(format!("a gatelog line in an unexpected form: {l}"));
            }
            continue;
        };
        let msg = c[4].to_string();
        let file = file_re
            .captures(&msg)
            .map(|f| f[1].to_string())
            .ok_or_else(|| format!("a gatelog line without a file: {l}"))?;
        let lost = lost_re
            .captures(&msg)
            .and_then(|n| n[1].parse().ok())
            .ok_or_else(|| format!("a gatelog line without a lost-record count: {l}"))?;
        if &c[2] != "alert" {
            return Err(format!("a gatelog line not at alert: {l}"));
        }
        out.push(GatelogLine {
            second: c[1].to_string(),
            pid: c[3].parse().unwrap_or(0),
            file,
            lost,
            last_word: msg.starts_with("gatelog: at exit") || msg.starts_with("gatelog: at reload"),
            text: l.to_string(),
        });
    }
    Ok(out)
}

/// At most one non-final line per process and second for each target.
fn at_most_one_per_second(lines: &[&GatelogLine], errs: &mut Errors) {
    let mut per_second: BTreeMap<(u32, &str, &str), usize> = BTreeMap::new();
    for l in lines.iter().filter(|l| !l.last_word) {
        *per_second.entry((l.pid, &l.file, &l.second)).or_default() += 1;
    }
    for ((pid, file, second), n) in per_second {
        if n > 1 {
            errs.push(format!(
                "{n} gatelog lines about {file} from pid {pid} in second {second}"
            ));
        }
    }
}

/// The records of `files` (every line one JSON record), their request ids unique and
/// each one a failure the storm saw.
fn read_records(files: &[PathBuf], f: &StormFailures, errs: &mut Errors) -> Vec<Value> {
    let mut all = Vec::new();
    for p in files {
        match records::read(p) {
            Ok(v) => all.extend(v),
            Err(e) => errs.push(format!("not whole JSON lines: {e}")),
        }
    }
    let mut seen = HashSet::new();
    for r in &all {
        let id = r["request_id"].as_str().unwrap_or("").to_string();
        if !f.ids.contains(&id) {
            errs.push(format!("a record for a request that did not fail: {id:?}"));
        }
        if !seen.insert(id.clone()) {
            errs.push(format!("two records for request {id}"));
        }
    }
    all
}

/// A storm against a refused upstream while the record files sit on a 1 MiB tmpfs: the
/// disk is filled (all but 64 KiB), the storm fills the rest, the filler is deleted
/// after 1.2 s (the storm fills the disk again), and NGINX exits gracefully (times
/// [`pace`]d under memcheck). Checked
/// for an unbuffered and a buffered file:
/// - at most one gatelog line per second per file (plus the one at exit);
/// - every line of each record file is a whole JSON record (short writes cut back);
/// - records in the file + records the lines say were lost == 502s answered;
/// - NGINX answered all along (no silence longer than 500 ms).
fn full_disk(flavour: &Flavour) -> TestResult {
    let rig = match StormRig::new(flavour, "full-disk", "the full-disk storm") {
        Ok(rig) => rig,
        Err(outcome) => return outcome,
    };
    let lab = &rig.lab;
    let dir = lab.prefix.path("disk");
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let disk = match Tmpfs::mount(&dir, 1 << 20) {
        Ok(d) => d,
        Err(why) => return Ok(TestOutcome::Skipped(why)),
    };
    let ([plain, buffered], destinations) = plain_and_buffered(&dir, "buffer=8k flush=200ms");
    let mut nginx = rig.nginx(&destinations, false)?;
    // Under memcheck the storm is slow: leave less room so that it still fills the disk.
    disk.fill(
        "filler",
        if valgrind::enabled() {
            8 << 10
        } else {
            64 << 10
        },
    )?;
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let storm = Storm::start(rig.port, "/storm/x", 4);
    storm.wait_until(1200 * pace());
    let before_free = size(&plain) + size(&buffered);
    std::fs::remove_file(disk.path().join("filler")).map_err(|e| format!("freeing: {e}"))?;
    storm.wait_until(2600 * pace());
    let result = storm.stop();
    nginx.quit()?;
    // Keep the evidence with the prefix (the tmpfs goes when the test ends).
    for p in [&plain, &buffered] {
        if let Some(name) = p.file_name() {
            let _ = std::fs::copy(p, lab.prefix.path("out").join(name));
        }
    }

    let mut errs = Errors::default();
    let f = storm_failures(&result, &[], &mut errs);
    let first = result.answers.first().map_or(0, |a| a.at_ms);
    let silence = result.longest_silence_ms(first, 2600 * pace());
    if silence > 500 * pace() {
        errs.push(format!(
            "NGINX stopped answering for {silence} ms while the disk was full"
        ));
    }
    let lines = gatelog_lines(&nginx.error_log)?;
    let mut written_bytes = 0;
    for p in [&plain, &buffered] {
        written_bytes += size(p);
        let recs = read_records(std::slice::from_ref(p), &f, &mut errs);
        let name = p.display().to_string();
        let mine: Vec<&GatelogLine> = lines.iter().filter(|l| l.file == name).collect();
        let lost: u64 = mine.iter().map(|l| l.lost).sum();
        if recs.len() as u64 + lost != f.ids.len() as u64 {
            errs.push(format!(
                "{name}: {} records + {lost} reported lost != {} failures",
                recs.len(),
                f.ids.len()
            ));
        }
        if !mine
            .iter()
            .any(|l| l.text.contains("(28: No space left on device)"))
        {
            errs.push(format!("{name}: no ENOSPC line: was the disk ever full?"));
        }
        if !mine.iter().any(|l| l.last_word) {
            errs.push(format!("{name}: no count of lost records at exit"));
        }
        at_most_one_per_second(&mine, &mut errs);
    }
    if written_bytes <= before_free {
        errs.push(format!(
            "{before_free} bytes of records when space was freed, {written_bytes} at the end: \
             writing did not resume"
        ));
    }
    errs.into_result()?;
    Ok(TestOutcome::Passed)
}

/// A storm while NGINX reloads (SIGHUP: new workers, the old ones finish and exit) and
/// reopens its files after they were renamed (USR1, as logrotate does), twice each:
/// every 502 has exactly one record in the old or new files, buffered or not, and the
/// module logs no error.
fn reload_and_reopen(flavour: &Flavour) -> TestResult {
    let rig = match StormRig::new(flavour, "reload-storm", "reload in a storm") {
        Ok(rig) => rig,
        Err(outcome) => return outcome,
    };
    let logs = rig.lab.prefix.path("logs");
    let ([plain, buffered], destinations) = plain_and_buffered(&logs, "buffer=16k flush=200ms");
    let mut nginx = rig.nginx(&destinations, false)?;
    let rotated = |p: &Path, n: u32| PathBuf::from(format!("{}.{n}", p.display()));
    let storm = Storm::start(rig.port, "/storm/x", 4);
    for (i, at) in [400u64, 800, 1200, 1600].iter().enumerate() {
        storm.wait_until(*at * pace());
        if i % 2 == 0 {
            nginx.reload()?;
        } else {
            let n = (i / 2 + 1) as u32;
            for p in [&plain, &buffered] {
                std::fs::rename(p, rotated(p, n)).map_err(|e| format!("rename: {e}"))?;
            }
            nginx.reopen()?;
        }
    }
    storm.wait_until(2000 * pace());
    let result = storm.stop();
    nginx.quit()?;
    let mut errs = Errors::default();
    let f = storm_failures(&result, &[], &mut errs);
    for p in [&plain, &buffered] {
        let mut n = 0;
        let mut seen = HashSet::new();
        for file in [rotated(p, 1), rotated(p, 2), p.clone()] {
            let recs = read_records(std::slice::from_ref(&file), &f, &mut errs);
            if recs.is_empty() {
                errs.push(format!("{} got no records", file.display()));
            }
            n += recs.len();
            for r in &recs {
                if !seen.insert(r["request_id"].as_str().unwrap_or("").to_string()) {
                    errs.push(format!("a record in two files: {}", r["request_id"]));
                }
            }
        }
        if n != f.ids.len() {
            errs.push(format!(
                "{}: {n} records for {} failures ({} requests unanswered on closed connections)",
                p.display(),
                f.ids.len(),
                result.unanswered
            ));
        }
    }
    errs.check(no_gatelog_lines(&nginx));
    errs.into_result()?;
    Ok(TestOutcome::Passed)
}

/// `master_process off`: NGINX reloads itself on SIGHUP and keeps the old
/// configuration for its open keep-alive connections. A storm on such connections
/// over two reloads, to an unbuffered and a `buffer=64k flush=300ms` file: every 502
/// has its record (none lost in the old configuration's buffer or written to its
/// closed descriptor), and the module logs no error.
fn single_process(flavour: &Flavour) -> TestResult {
    let rig = match StormRig::new(flavour, "single-hup", "single-process reload") {
        Ok(rig) => rig,
        Err(outcome) => return outcome,
    };
    let logs = rig.lab.prefix.path("logs");
    let ([plain, buffered], destinations) = plain_and_buffered(&logs, "buffer=64k flush=300ms");
    let mut nginx = rig.nginx(&destinations, true)?;
    let storm = Storm::start(rig.port, "/storm/x", 3);
    storm.wait_until(600 * pace());
    nginx.reload()?;
    storm.wait_until(1200 * pace());
    nginx.reload()?;
    storm.wait_until(1800 * pace());
    let result = storm.stop();
    // The current configuration's flush= timer writes what the storm left buffered.
    std::thread::sleep(Duration::from_millis(600 * pace()));
    let mut errs = Errors::default();
    // After a reload a single process takes connections only from the new cycle's
    // free list, which is empty at first: NGINX answers some requests 500 ("1024
    // worker_connections are not enough") before it reaches an upstream. Those are not
    // upstream failures and get no record (checked below: every record is a 502).
    let f = storm_failures(&result, &[500], &mut errs);
    let log = std::fs::read_to_string(&nginx.error_log).unwrap_or_default();
    let reloads = log.matches("(SIGHUP) received").count();
    if reloads != 2 {
        errs.push(format!(
            "NGINX logged {reloads} reconfigurations, expected 2"
        ));
    }
    for p in [&plain, &buffered] {
        let recs = read_records(std::slice::from_ref(p), &f, &mut errs);
        if recs.len() != f.ids.len() {
            errs.push(format!(
                "{} before exit: {} records for {} failures ({} answers, {} requests \
                 unanswered, {} connections)",
                p.display(),
                recs.len(),
                f.ids.len(),
                result.answers.len(),
                result.unanswered,
                result.connections
            ));
        }
    }
    nginx.quit()?;
    errs.check(no_gatelog_lines(&nginx));
    errs.into_result()?;
    Ok(TestOutcome::Passed)
}

fn no_gatelog_lines(nginx: &Nginx) -> Result<(), String> {
    let lines = gatelog_lines(&nginx.error_log)?;
    if lines.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "the module logged errors: {:?}",
            lines.iter().map(|l| &l.text).take(5).collect::<Vec<_>>()
        ))
    }
}

/// A storm whose records go to a syslog server that is not there (a closed UDP port):
/// every other datagram comes back as ECONNREFUSED. NGINX's own syslog client would log
/// each failure; gatelog logs at most one line per second, and the counts in its lines
/// add up to the total it reports at exit.
fn dead_syslog(flavour: &Flavour) -> TestResult {
    let rig = match StormRig::new(flavour, "dead-syslog", "a dead syslog server") {
        Ok(rig) => rig,
        Err(outcome) => return outcome,
    };
    // A UDP port nobody listens on.
    let closed = std::net::UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .map_err(|e| format!("udp: {e}"))?
        .port();
    let destinations = [format!("syslog:server=127.0.0.1:{closed},tag=gatelog_e2e")];
    let mut nginx = rig.nginx(&destinations, false)?;
    let storm = Storm::start(rig.port, "/storm/x", 3);
    storm.wait_until(1500 * pace());
    let result = storm.stop();
    nginx.quit()?;
    let mut errs = Errors::default();
    let f = failures(&result, &[], &mut errs);
    let lines = gatelog_lines(&nginx.error_log)?;
    let mine: Vec<&GatelogLine> = lines.iter().collect();
    at_most_one_per_second(&mine, &mut errs);
    let total_re = Regex::new(r"(\d+) in all by this process").map_err(|e| e.to_string())?;
    let total: Option<u64> = lines
        .iter()
        .filter(|l| l.last_word)
        .find_map(|l| total_re.captures(&l.text).and_then(|c| c[1].parse().ok()));
    let summed: u64 = lines.iter().map(|l| l.lost).sum();
    match total {
        None => errs.push("no count of unsent records at exit".to_string()),
        Some(t) if t != summed => errs.push(format!(
            "the lines count {summed} unsent records, the exit line says {t} in all"
        )),
        Some(t) if t == 0 || t > f.ids.len() as u64 => errs.push(format!(
            "{t} records reported unsent for {} failures",
            f.ids.len()
        )),
        Some(_) => {}
    }
    if !lines
        .iter()
        .any(|l| l.text.contains("(111: Connection refused)"))
    {
        errs.push("no ECONNREFUSED line: did the records go to syslog?");
    }
    let log = std::fs::read_to_string(&nginx.error_log).unwrap_or_default();
    let nginx_own = log.lines().filter(|l| l.contains("send() failed")).count();
    if nginx_own > 0 {
        errs.push(format!(
            "NGINX logged {nginx_own} syslog send() failures itself"
        ));
    }
    errs.into_result()?;
    Ok(TestOutcome::Passed)
}

/// `gatelog` and a buffered `access_log` on one path: each keeps its own descriptor and
/// buffer (NGINX's access_log reads a shared file entry's buffer as its own), so the file
/// holds the access lines and the records, each whole, after a graceful exit.
fn shared_path(flavour: &Flavour) -> TestResult {
    let lab = Lab::new(flavour, "shared-path")?;
    if let Some(s) = skip_without_module(&lab, "a path shared with access_log") {
        return s;
    }
    let dead = RefusedPort::new()?;
    let port = free_port()?;
    let shared = lab.prefix.path("logs/shared.log");
    let extra = format!(
        "            gatelog {p} buffer=4k flush=100ms;\n            access_log {p} e2e buffer=4k flush=100ms;\n",
        p = shared.display()
    );
    let body = lab.php_location(
        "/shared/",
        &format!("127.0.0.1:{}", dead.port),
        Timeouts::DEFAULT,
        &extra,
    );
    let mut nginx = lab.start_nginx(lab.server(port, &body), &[port])?;
    let mut ids = Vec::new();
    for i in 0..3 {
        let r = gatelog_e2e::client::get(port, &format!("/shared/{i}"))?;
        if r.status != 502 {
            return Err(format!("/shared/{i} answered {}", r.status));
        }
        ids.push(r.request_id);
    }
    nginx.quit()?;
    let text =
        std::fs::read_to_string(&shared).map_err(|e| format!("{}: {e}", shared.display()))?;
    let mut errs = Errors::default();
    let (mut access, mut recs) = (Vec::new(), Vec::new());
    for line in text.lines() {
        if line.starts_with("rid=") {
            access.push(line);
        } else {
            match serde_json::from_str::<Value>(line) {
                Ok(v) => recs.push(v),
                Err(e) => errs.push(format!(
                    "neither an access line nor a record ({e}): {line:?}"
                )),
            }
        }
    }
    for id in &ids {
        if access
            .iter()
            .filter(|l| l.starts_with(&format!("rid={id} ")))
            .count()
            != 1
        {
            errs.push(format!("no single access line for {id}:\n{text}"));
        }
        if recs
            .iter()
            .filter(|r| r["request_id"] == id.as_str())
            .count()
            != 1
        {
            errs.push(format!("no single record for {id}:\n{text}"));
        }
    }
    errs.check(no_gatelog_lines(&nginx));
    errs.into_result()?;
    Ok(TestOutcome::Passed)
}
