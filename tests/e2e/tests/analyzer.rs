//! The analyzer end to end: `gatelog analyze` on the logs of real faults.
//!
//! - `analyzer_<fault>`: every fault scenario of gatelog_e2e::scenarios, analyzed three
//!   times (the records with the FPM log, the kernel log and the configs; NGINX's plain
//!   error log with the FPM and kernel logs; the whole evidence directory): every
//!   502/504 of the access log is in `failures` exactly once with the injected cause.
//! - `analyzer_mixed_*`: several faults one after another against one NGINX and one
//!   PHP-FPM, with 200s in between: per-request causes.
//! - `analyzer_text_and_markdown`, `analyzer_exit_codes`: the other formats and the
//!   exit statuses on a real run.
//!
//! The analyzer is built (or found) by gatelog_e2e::analyzer::binary(); a missing
//! analyzer fails these tests.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gatelog_e2e::analyzer::{self, slug, Inputs, ReportExpect, Sent};
use gatelog_e2e::cgroup::MemCgroup;
use gatelog_e2e::check;
use gatelog_e2e::client::{self, Request, Response};
use gatelog_e2e::env::Flavour;
use gatelog_e2e::fpm::{Fpm, Pool};
use gatelog_e2e::kmsg;
use gatelog_e2e::lab::{now_ms, Lab, TestOutcome, TestResult, Timeouts};
use gatelog_e2e::net::free_port;
use gatelog_e2e::records;
use gatelog_e2e::scenarios::{self, pids_in_fpm_log, wait_text, Fault, FaultRun, RunError};

use crate::{Body, Test};

use super::mixed::{MixedLab, PAUSE};

fn os(v: &[&str]) -> Vec<OsString> {
    v.iter().map(OsString::from).collect()
}

/// Pids of `child N exited on signal SIG` lines in an FPM log.
pub(super) fn deaths(log: &str, signal: u32) -> Vec<u32> {
    log.lines()
        .filter(|l| l.contains(&format!("exited on signal {signal} ")))
        .flat_map(pids_in_fpm_log)
        .collect()
}

pub(super) fn read(p: &Path) -> String {
    std::fs::read(p)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// Waits until the access log has every response and (with the module) the records
/// file holds `failed` records: NGINX writes both in the log phase.
pub(super) fn settle(lab: &Lab, resps: &[&Response], failed: usize) -> Result<(), String> {
    check::wait_access(
        &lab.prefix.path("logs/access.log"),
        resps,
        Duration::from_secs(5),
    )?;
    if lab.with_module() {
        records::wait_for(&lab.records_path(), failed, Duration::from_secs(5))?;
    }
    Ok(())
}

pub(super) fn report_errors(what: &str, errs: Vec<String>, dir: &Path) -> Result<(), String> {
    if errs.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{what}: {} problem(s) with the analyzer's reports (evidence in {}):\n\n{}",
        errs.len(),
        dir.display(),
        errs.join("\n\n")
    ))
}

/// The inputs to try: all three with the module, only the error log without it.
pub(super) fn inputs_for(lab: &Lab) -> &'static [Inputs] {
    if lab.with_module() {
        &Inputs::ALL
    } else {
        &[Inputs::ErrorLog]
    }
}

pub(super) fn finish_outcome(lab: &Lab, what: &str) -> TestOutcome {
    if lab.with_module() {
        TestOutcome::Passed
    } else {
        TestOutcome::Skipped(gatelog_e2e::lab::no_module_reason(&format!(
            "{what}: the analyzer was checked on the plain error log only"
        )))
    }
}

/// What a fault's failures must show in the report besides the cause.
pub(super) fn sent_for(
    fault: Fault,
    run: &FaultRun,
    window: (i64, i64),
    fpm_log: &str,
) -> Vec<Sent> {
    let cause = slug(fault.cause());
    let sock = run
        .expect
        .upstream
        .strip_prefix("unix:")
        .map(str::to_string)
        .unwrap_or_default();
    run.responses
        .iter()
        .map(|r| {
            let failed = r.status == 502 || r.status == 504;
            let mut s = Sent::new(r.clone(), failed.then_some(cause), window, fault.name());
            match fault {
                Fault::FpmStopped | Fault::FpmKilled | Fault::SocketPermission => {
                    s.fix_mentions.push(sock.clone());
                }
                Fault::WrongSocketPath => {
                    s.fix_mentions.push(sock.clone());
                }
                _ => {}
            }
            match fault {
                Fault::SocketPermission => {
                    // The pool file to edit, and the owner to give the socket: the
                    // user NGINX's workers run as (nginx.conf's `user www-data`).
                    s.fix_mentions_with_conf.push("php-fpm-www.conf".into());
                    s.fix_mentions_with_conf.push("www-data".into());
                }
                Fault::WrongSocketPath => {
                    // FPM's own socket, from its pool config.
                    let good = sock.replace("php8.1-fpm.sock", "www.sock");
                    s.fix_mentions_with_conf.push(good);
                }
                Fault::MaxChildrenTimeout
                | Fault::MaxChildrenBacklog
                | Fault::MaxChildrenTcpConnectTimeout => {
                    s.fix_mentions_with_conf.push("php-fpm-www.conf".into());
                }
                _ => {}
            }
            match fault {
                Fault::OomKill => {
                    for pid in deaths(fpm_log, 9) {
                        s.cite
                            .push(("fpm", format!("child {pid} exited on signal 9")));
                        s.cite.push(("kernel", format!("Killed process {pid} ")));
                    }
                }
                Fault::Segfault => {
                    for pid in deaths(fpm_log, 11) {
                        s.cite
                            .push(("fpm", format!("child {pid} exited on signal 11")));
                    }
                }
                Fault::MaxChildrenTimeout if fpm_log.contains("max_children") => {
                    s.cite.push(("fpm", "max_children".into()));
                }
                _ => {}
            }
            s
        })
        .collect()
}

/// Runs `fault` in a fresh lab, leaves the evidence in `out/` and checks the
/// analyzer's reports on it.
fn fault_test(fault: Fault, flavour: &Flavour) -> TestResult {
    // A missing analyzer fails before any process is started.
    analyzer::binary()?;
    let lab = Lab::new(flavour, &format!("an-{}", fault.name()))?;
    let start = now_ms();
    let run = match scenarios::run(fault, &lab) {
        Ok(run) => run,
        Err(RunError::Unavailable(why)) => return Ok(TestOutcome::Skipped(why)),
        Err(RunError::Failed(e)) => return Err(e),
    };
    let end = now_ms();
    let all: Vec<&Response> = run.responses.iter().collect();
    settle(&lab, &all, run.failed().len())?;
    let dir = lab.prefix.path("out");
    run.save(&lab, &dir)?;
    // The fault must have been injected as planned (NGINX's lines, the records), or
    // the analyzer's answer means nothing.
    if let Err(e) = scenarios::verify(&lab, &run) {
        return Err(format!("the fault was not injected as planned: {e}"));
    }
    let fpm_log = read(&dir.join("php-fpm.log"));
    let sent = sent_for(fault, &run, (start, end), &fpm_log);
    let expect = analyzer::expectations(&dir.join("nginx-access.log"), &sent)?;
    if expect.is_empty() {
        return Err(format!("{}: no request failed", fault.name()));
    }
    let errs = analyzer::check_all(&dir, inputs_for(&lab), &expect)?;
    report_errors(fault.name(), errs, &dir)?;
    Ok(finish_outcome(&lab, fault.name()))
}

/// One test per fault of [`Fault::ALL`]: `analyzer_<fault name>`.
fn fault_tests() -> Vec<Test> {
    Fault::ALL
        .into_iter()
        .map(|fault| {
            Test::new(format!("analyzer_{}", fault.name()), move |f: &Flavour| {
                fault_test(fault, f)
            })
        })
        .collect()
}

/// The requests of a mixed run, phase by phase.
struct Journal {
    port: u16,
    sent: Vec<Sent>,
    /// Phase name -> (start, end) in unix ms.
    phases: Vec<(String, (i64, i64))>,
}

impl Journal {
    fn new(port: u16) -> Journal {
        Journal {
            port,
            sent: Vec::new(),
            phases: Vec::new(),
        }
    }

    /// Requests that must answer 200.
    fn ok(&mut self, phase: &str, n: usize) -> Result<(), String> {
        let start = now_ms();
        for i in 1..=n {
            let r = client::get(self.port, &format!("/ok.php?phase={phase}&n={i}"))?;
            if r.status != 200 {
                return Err(format!(
                    "[{phase}] {} answered {} (expected 200): {}",
                    r.target,
                    r.status,
                    String::from_utf8_lossy(&r.body)
                ));
            }
            self.sent.push(Sent::new(r, None, (start, now_ms()), phase));
        }
        self.phases.push((phase.to_string(), (start, now_ms())));
        Ok(())
    }

    /// Requests that must all fail (502/504) with `cause`; returns their index range.
    fn fail(
        &mut self,
        phase: &str,
        cause: &'static str,
        send: impl FnOnce(u16) -> Result<Vec<Response>, String>,
    ) -> Result<std::ops::Range<usize>, String> {
        let start = now_ms();
        let resps = send(self.port)?;
        let end = now_ms();
        for r in &resps {
            if r.status != 502 && r.status != 504 {
                return Err(format!(
                    "[{phase}] {} answered {}: the fault was not injected",
                    r.target, r.status
                ));
            }
        }
        let from = self.sent.len();
        self.sent.extend(
            resps
                .into_iter()
                .map(|r| Sent::new(r, Some(cause), (start, end), phase)),
        );
        self.phases.push((phase.to_string(), (start, end)));
        Ok(from..self.sent.len())
    }

    fn window(&self, phase: &str) -> (i64, i64) {
        self.phases
            .iter()
            .find(|(p, _)| p == phase)
            .map(|(_, w)| *w)
            .unwrap_or((0, 0))
    }

    fn responses(&self) -> Vec<&Response> {
        self.sent.iter().map(|s| &s.response).collect()
    }

    fn failed(&self) -> usize {
        self.sent.iter().filter(|s| s.cause.is_some()).count()
    }
}

/// Sleeps until the wall clock is `ms` milliseconds into a second later than the
/// second of `after` (unix ms), so that two events never share a logged second.
fn at_fraction_after(ms: i64, after: i64) {
    let now = now_ms();
    let mut target = now - now.rem_euclid(1000) + ms;
    while target < now || target.div_euclid(1000) <= after.div_euclid(1000) {
        target += 1000;
    }
    std::thread::sleep(Duration::from_millis((target - now) as u64));
}

fn get_path(target: &str) -> impl FnOnce(u16) -> Result<Vec<Response>, String> + '_ {
    move |p| Ok(vec![client::get(p, target)?])
}

/// The kernel lines of the run (filtered to its FPM processes / cgroup).
pub(super) fn kernel_lines(
    mark: &Result<kmsg::Mark, String>,
    pids: &[u32],
    cgroup: Option<&str>,
) -> Result<Vec<String>, String> {
    match mark {
        Ok(m) => kmsg::since(m).map(|l| kmsg::filter(&l, pids, cgroup)),
        Err(e) => Err(e.clone()),
    }
}

/// Mixed run 1: one NGINX and one pool on a unix socket; a read timeout on an idle
/// pool, a segfault, a request to a wrong socket path while FPM is up, FPM stopped,
/// FPM restarted with a socket NGINX may not open, then restarted with one worker and
/// saturated — with 200s in between.
fn mixed_fpm_lifecycle(flavour: &Flavour) -> TestResult {
    analyzer::binary()?;
    let lab = Lab::new(flavour, "an-mixed-lifecycle")?;
    // Static: one busy worker of two is not a saturated pool (no max_children warning).
    let mut m = MixedLab::start(&lab)?;
    let sock = m.pool_addr().trim_start_matches("unix:").to_string();
    let wrong = m.wrong.clone();
    let mut j = Journal::new(m.port);

    j.ok("start", 2)?;
    // 1. A slow script on an idle pool: 504 after fastcgi_read_timeout 1s.
    j.fail(
        "read-timeout",
        slug(5),
        get_path("/sleep.php?ms=2500&phase=read-timeout"),
    )?;
    // Let the worker finish its 2.5 s.
    std::thread::sleep(Duration::from_millis(1700));
    j.ok("after-read-timeout", 2)?;
    // 2. A worker segfaults.
    let seg = j.fail("segfault", slug(7), get_path("/segv.php?phase=segfault"))?;
    let log = wait_text(&m.fpm.log, "exited on signal 11", Duration::from_secs(5))?;
    for pid in deaths(&log, 11) {
        for s in &mut j.sent[seg.clone()] {
            s.cite
                .push(("fpm", format!("child {pid} exited on signal 11")));
        }
    }
    std::thread::sleep(PAUSE);
    j.ok("after-segfault", 2)?;
    // 3. A location passes to a socket that does not exist while FPM runs.
    let ws = j.fail("wrong-socket-path", slug(3), |p| {
        Ok(vec![
            client::get(p, "/wrong.php?n=1")?,
            client::get(p, "/wrong.php?n=2")?,
        ])
    })?;
    for s in &mut j.sent[ws] {
        s.fix_mentions.push(wrong.display().to_string());
        s.fix_mentions_with_conf.push(sock.clone());
    }
    std::thread::sleep(PAUSE);
    // 4. FPM stopped (SIGTERM): the socket is gone.
    m.stop_fpm(Duration::from_secs(2))?;
    let stopped = j.fail("fpm-stopped", slug(1), |p| {
        Ok(vec![
            client::get(p, "/ok.php?phase=fpm-stopped&n=1")?,
            client::get(p, "/index.php?phase=fpm-stopped&n=2")?,
        ])
    })?;
    for s in &mut j.sent[stopped] {
        s.fix_mentions.push(sock.clone());
    }
    std::thread::sleep(PAUSE);
    // 5. Restarted with a socket only root may open.
    m.restart_root_only()?;
    let denied = j.fail("permission-denied", slug(2), |p| {
        Ok(vec![
            client::get(p, "/ok.php?phase=permission-denied&n=1")?,
            client::get(p, "/ok.php?phase=permission-denied&n=2")?,
        ])
    })?;
    for s in &mut j.sent[denied] {
        s.fix_mentions.push(sock.clone());
    }
    std::thread::sleep(PAUSE);
    // 6. Restarted right, with a single worker (pm = dynamic logs max_children).
    m.restart_single_worker()?;
    j.ok("restarted", 2)?;
    // 7. Three concurrent 1.5 s requests on one worker: 504s on a saturated pool.
    let sat = j.fail("max-children", slug(4), |p| {
        let reqs: Vec<Request> = (1..=3)
            .map(|i| Request::get(p, &format!("/sleep.php?ms=1500&phase=max-children&n={i}")))
            .collect();
        client::concurrent(&reqs).into_iter().collect()
    })?;
    wait_text(
        &m.fpm.log,
        "server reached pm.max_children setting (1)",
        Duration::from_secs(3),
    )?;
    for s in &mut j.sent[sat] {
        s.cite.push(("fpm", "max_children".into()));
        s.fix_mentions_with_conf.push("php-fpm-www.conf".into());
    }

    let (dir, _) = m.finish(&j.responses(), j.failed())?;

    let expect = analyzer::expectations(&dir.join("nginx-access.log"), &j.sent)?;
    let mut errs = analyzer::check_all(&dir, inputs_for(&lab), &expect)?;
    if lab.with_module() {
        errs.extend(window_check(&dir, &j, &expect)?);
    }
    report_errors("mixed run (FPM lifecycle)", errs, &dir)?;
    Ok(finish_outcome(&lab, "mixed run"))
}

/// `--since`/`--until` around the FPM-down phases: only their failures, the rest
/// counted as outside the window.
fn window_check(dir: &Path, j: &Journal, expect: &[ReportExpect]) -> Result<Vec<String>, String> {
    let (since, _) = j.window("fpm-stopped");
    let (_, until) = j.window("permission-denied");
    let since_s = since.div_euclid(1000);
    let until_s = until.div_euclid(1000) + 1;
    let inside: Vec<ReportExpect> = expect
        .iter()
        .filter(|x| x.phase == "fpm-stopped" || x.phase == "permission-denied")
        .cloned()
        .collect();
    let mut args = Inputs::Records.args(dir);
    args.extend(os(&[
        "--since",
        &since_s.to_string(),
        "--until",
        &until_s.to_string(),
    ]));
    let r = analyzer::analyze("json", args, dir)?;
    let report = match r.json() {
        Ok(v) => v,
        Err(e) => return Ok(vec![format!("[--since/--until] {e}")]),
    };
    let mut errs: Vec<String> = analyzer::check_report(&report, Inputs::Records, dir, &inside)
        .into_iter()
        .map(|e| format!("[--since {since_s} --until {until_s}] {e}"))
        .collect();
    let outside = report["summary"]["outside_window"].as_u64();
    let want = (expect.len() - inside.len()) as u64;
    if outside != Some(want) {
        errs.push(format!(
            "[--since {since_s} --until {until_s}] summary.outside_window is {outside:?}, expected {want}"
        ));
    }
    Ok(errs)
}

/// Mixed run 2 (needs a memory cgroup and the kernel log): FPM in a 64 MiB cgroup;
/// a worker OOM-killed by the kernel, a worker SIGKILLed by hand (no OOM), a
/// segfault, another OOM kill — with 200s in between. The FPM log says `exited on
/// signal 9` for three of them; only the kernel log tells 6 from 7.
///
/// The deaths come about one second apart, each 0.6 s into its second and never two
/// in one second: whole-second FPM lines [s], [s+1], ..., each failure in the same
/// second as its own worker's death line (records carry milliseconds, the FPM log
/// whole seconds).
fn mixed_worker_deaths(flavour: &Flavour) -> TestResult {
    analyzer::binary()?;
    let kmark = match kmsg::mark() {
        Ok(m) => m,
        Err(e) => {
            return Ok(TestOutcome::Skipped(format!(
                "kernel log not readable: {e}"
            )))
        }
    };
    let cg = match MemCgroup::create("an-mixed", 64 << 20) {
        Ok(c) => c,
        Err(why) => return Ok(TestOutcome::Skipped(why)),
    };
    let lab = Lab::new(flavour, "an-mixed-deaths")?;
    let hold = lab.prefix.path("tmp/hold");
    std::fs::create_dir_all(&hold).map_err(|e| format!("mkdir {}: {e}", hold.display()))?;
    std::fs::set_permissions(&hold, std::fs::Permissions::from_mode(0o777))
        .map_err(|e| format!("chmod {}: {e}", hold.display()))?;
    let pid_file = hold.join("pid");
    lab.prefix.write(
        "www/hold.php",
        &format!(
            "<?php\nfile_put_contents('{}', (string)getmypid());\nusleep(5000000);\necho \"held\\n\";\n",
            pid_file.display()
        ),
        0o644,
    )?;
    let pool = Pool::unix(&lab.prefix, "www", 2)
        .admin("memory_limit", "-1")
        .admin("ffi.enable", "1");
    let fpm = Fpm::start(&lab.prefix, pool.clone(), Some(&cg.procs_file()))?;
    let mut pids = vec![fpm.master_pid()];
    pids.extend(fpm.worker_pids());
    let port = free_port()?;
    let main = lab.php_location(
        "~ \\.php$",
        &pool.listen.nginx_addr(),
        Timeouts::DEFAULT,
        "",
    );
    let http = format!("{}{}", lab.default_gatelog(), lab.server(port, &main));
    let nginx = lab.start_nginx(http, &[port])?;
    let mut j = Journal::new(port);
    let wait_deaths = |signal: u32, n: usize| -> Result<Vec<u32>, String> {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let d = deaths(&fpm.log_text(), signal);
            if d.len() >= n {
                return Ok(d);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "FPM logged {} death(s) on signal {signal}, expected {n}:\n{}",
                    d.len(),
                    fpm.log_text()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let cite_death =
        |j: &mut Journal, range: std::ops::Range<usize>, pid: u32, sig: u32, oom: bool| {
            for s in &mut j.sent[range] {
                s.cite
                    .push(("fpm", format!("child {pid} exited on signal {sig}")));
                if oom {
                    s.cite.push(("kernel", format!("Killed process {pid} ")));
                }
            }
        };

    j.ok("start", 2)?;
    // 1. The kernel's OOM killer.
    at_fraction_after(600, now_ms() - 1000);
    let r = j.fail("oom-kill", slug(6), get_path("/oom.php?phase=oom-kill"))?;
    let d = wait_deaths(9, 1)?;
    let mut last_death = now_ms();
    cite_death(&mut j, r, d[0], 9, true);
    j.ok("after-oom", 2)?;
    // 2. A worker SIGKILLed by hand mid-request: no OOM line anywhere.
    let _ = std::fs::remove_file(&pid_file);
    at_fraction_after(600, last_death);
    let r = j.fail("killed-by-hand", slug(7), |p| {
        std::thread::scope(|sc| {
            let h = sc.spawn(|| client::get(p, "/hold.php?phase=killed-by-hand"));
            let deadline = Instant::now() + Duration::from_secs(3);
            let pid: u32 = loop {
                if let Some(pid) = std::fs::read_to_string(&pid_file)
                    .ok()
                    .and_then(|s| s.trim().parse().ok())
                {
                    break pid;
                }
                if Instant::now() > deadline {
                    return Err("hold.php did not write its pid".to_string());
                }
                std::thread::sleep(Duration::from_millis(10));
            };
            if !fpm.worker_pids().contains(&pid) {
                return Err(format!("pid {pid} from hold.php is not an FPM worker"));
            }
            // SAFETY: kill(2) on the FPM worker this test started, by its pid.
            if unsafe { libc::kill(pid as i32, libc::SIGKILL) } != 0 {
                return Err(format!(
                    "kill -9 {pid}: {}",
                    std::io::Error::last_os_error()
                ));
            }
            h.join()
                .map_err(|_| "client thread panicked".to_string())?
                .map(|r| vec![r])
        })
    })?;
    let d = wait_deaths(9, 2)?;
    last_death = now_ms();
    cite_death(&mut j, r, d[1], 9, false);
    j.ok("after-kill", 2)?;
    // 3. A segfault.
    at_fraction_after(600, last_death);
    let r = j.fail("segfault", slug(7), get_path("/segv.php?phase=segfault"))?;
    let d = wait_deaths(11, 1)?;
    last_death = now_ms();
    cite_death(&mut j, r, d[0], 11, false);
    j.ok("after-segfault", 2)?;
    // 4. The OOM killer again.
    at_fraction_after(600, last_death);
    let r = j.fail(
        "oom-kill-again",
        slug(6),
        get_path("/oom.php?phase=oom-kill-again"),
    )?;
    let d = wait_deaths(9, 3)?;
    cite_death(&mut j, r, d[2], 9, true);
    std::thread::sleep(PAUSE);
    j.ok("end", 1)?;

    settle(&lab, &j.responses(), j.failed())?;
    drop(nginx);
    let log_text = fpm.log_text();
    pids.extend(fpm.worker_pids());
    pids.extend(pids_in_fpm_log(&log_text));
    pids.sort_unstable();
    pids.dedup();
    let kernel = kernel_lines(&Ok(kmark), &pids, Some(&cg.kernel_path()));
    let (fpm_log, fpm_conf) = (fpm.log.clone(), fpm.conf.clone());
    drop(fpm);
    // The injection itself: two OOM kills in the kernel log, of the right workers.
    let klines = kernel.clone().map_err(|e| format!("kernel log: {e}"))?;
    let sig9 = deaths(&log_text, 9);
    for (i, pid) in sig9.iter().enumerate() {
        let killed = klines
            .iter()
            .any(|l| l.contains(&format!("Killed process {pid} ")));
        if killed != (i != 1) {
            return Err(format!(
                "the kernel log {} an OOM kill of worker {pid} (death {} of {sig9:?}): \n{}",
                if killed { "shows" } else { "does not show" },
                i + 1,
                klines.join("\n")
            ));
        }
    }
    let dir = lab.prefix.path("out");
    scenarios::save_logs(&lab, &dir, Some(&fpm_log), Some(&fpm_conf), &kernel)?;
    let expect = analyzer::expectations(&dir.join("nginx-access.log"), &j.sent)?;
    let errs = analyzer::check_all(&dir, inputs_for(&lab), &expect)?;
    report_errors("mixed run (worker deaths)", errs, &dir)?;
    Ok(finish_outcome(&lab, "mixed run"))
}

/// One slow request on an idle static pool of two workers: a read timeout (5), not
/// a saturated pool — one worker stayed free, nothing waited. (The scenario
/// `cause5_read_timeout` uses a pool of one.)
fn read_timeout_static_pool_of_two(flavour: &Flavour) -> TestResult {
    analyzer::binary()?;
    let lab = Lab::new(flavour, "an-rt-static-two")?;
    let kmark = kmsg::mark();
    let pool = Pool::unix(&lab.prefix, "www", 2);
    let fpm = Fpm::start(&lab.prefix, pool.clone(), None)?;
    let port = free_port()?;
    let t = Timeouts::new(2000, 3000, 1000);
    let main = lab.php_location("~ \\.php$", &pool.listen.nginx_addr(), t, "");
    let http = format!("{}{}", lab.default_gatelog(), lab.server(port, &main));
    let nginx = lab.start_nginx(http, &[port])?;
    let mut j = Journal::new(port);
    j.ok("start", 2)?;
    j.fail(
        "read-timeout",
        slug(5),
        get_path("/sleep.php?ms=2500&phase=read-timeout"),
    )?;
    // The other worker was free all along.
    j.ok("meanwhile", 2)?;
    settle(&lab, &j.responses(), j.failed())?;
    drop(nginx);
    let mut pids = vec![fpm.master_pid()];
    pids.extend(fpm.worker_pids());
    let kernel = kernel_lines(&kmark, &pids, None);
    let (fpm_log, fpm_conf) = (fpm.log.clone(), fpm.conf.clone());
    drop(fpm);
    let dir = lab.prefix.path("out");
    scenarios::save_logs(&lab, &dir, Some(&fpm_log), Some(&fpm_conf), &kernel)?;
    let expect = analyzer::expectations(&dir.join("nginx-access.log"), &j.sent)?;
    let errs = analyzer::check_all(&dir, inputs_for(&lab), &expect)?;
    report_errors("read timeout on a static pool of two", errs, &dir)?;
    Ok(finish_outcome(&lab, "read timeout on a static pool of two"))
}

/// A real run (the segfault scenario) for the format and exit-status tests: returns
/// the lab (keeps the files) and the evidence directory.
fn real_run(flavour: &Flavour, fault: Fault, label: &str) -> Result<(Lab, PathBuf), RunError> {
    analyzer::binary()?;
    let lab = Lab::new(flavour, label)?;
    let run = scenarios::run(fault, &lab)?;
    let all: Vec<&Response> = run.responses.iter().collect();
    settle(&lab, &all, run.failed().len())?;
    let dir = lab.prefix.path("out");
    run.save(&lab, &dir)?;
    Ok((lab, dir))
}

/// `--format text` (the default) and `--format markdown` on a real segfault run:
/// exit 0, not empty, the cause, its fix and the request are there.
fn text_and_markdown(flavour: &Flavour) -> TestResult {
    // `_lab` keeps the prefix (and the evidence) until the end of the test.
    let (_lab, dir) = match real_run(flavour, Fault::Segfault, "an-formats") {
        Ok(x) => x,
        Err(RunError::Unavailable(why)) => return Ok(TestOutcome::Skipped(why)),
        Err(RunError::Failed(e)) => return Err(e),
    };
    let args = vec![dir.clone().into_os_string()];
    let json = analyzer::analyze("json", args.clone(), &dir)?.json()?;
    let cause = slug(7);
    let fix = json["causes"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["cause"] == cause))
        .and_then(|c| c["fix"].as_str())
        .unwrap_or("")
        .to_string();
    let mut errs = Vec::new();
    if fix.is_empty() {
        errs.push(format!(
            "the JSON report has no {cause} cause with a fix: {}",
            json["causes"]
        ));
    }
    let fix_head: String = fix.chars().take(40).collect();
    let default = analyzer::run(
        &[OsString::from("analyze"), dir.clone().into_os_string()],
        &dir,
    )?;
    let text = analyzer::analyze("text", args.clone(), &dir)?;
    let md = analyzer::analyze("markdown", args, &dir)?;
    for (name, r) in [
        ("default (text)", &default),
        ("--format text", &text),
        ("--format markdown", &md),
    ] {
        let out = &r.stdout;
        let mut bad = Vec::new();
        if r.code != Some(0) {
            bad.push(format!("exit status {:?} ({})", r.code, r.stderr.trim()));
        }
        if out.trim().is_empty() {
            bad.push("empty output".to_string());
        }
        if out.trim_start().starts_with('{') {
            bad.push("printed JSON".to_string());
        }
        if !out.contains(cause) {
            bad.push(format!("does not name the cause {cause}"));
        }
        if !out.to_lowercase().contains("fix") || (!fix_head.is_empty() && !out.contains(&fix_head))
        {
            bad.push(format!("does not show the fix ({fix_head:?}…)"));
        }
        if !out.contains("/segv.php") {
            bad.push("does not show the failed request (/segv.php)".to_string());
        }
        if name.contains("markdown") && !out.starts_with("# ") {
            bad.push("does not start with a `# ` title".to_string());
        }
        if !bad.is_empty() {
            errs.push(format!(
                "`{}` ({name}): {}\n--- output ---\n{}",
                r.command(),
                bad.join("; "),
                out.chars().take(3000).collect::<String>()
            ));
        }
    }
    report_errors("text and markdown", errs, &dir)?;
    Ok(TestOutcome::Passed)
}

/// Exit statuses: 0 when it ran (failures or none), 2 on bad usage, 1 on an input
/// it could not read, named on stderr.
fn exit_codes(flavour: &Flavour) -> TestResult {
    let (lab, dir) = match real_run(flavour, Fault::SocketPermission, "an-exit-codes") {
        Ok(x) => x,
        Err(RunError::Unavailable(why)) => return Ok(TestOutcome::Skipped(why)),
        Err(RunError::Failed(e)) => return Err(e),
    };
    let d = dir.display().to_string();
    let f = |n: &str| dir.join(n).display().to_string();
    let missing = f("php-fpm.log.1");
    // A rotated, compressed error log cut in the middle (a copy interrupted).
    let bad_dir = lab.prefix.path("bad");
    std::fs::create_dir_all(&bad_dir).map_err(|e| format!("mkdir {}: {e}", bad_dir.display()))?;
    let gz = bad_dir.join("nginx-error.log.2.gz");
    let out = std::process::Command::new("gzip")
        .arg("-c")
        .arg(dir.join("nginx-error.log"))
        .output()
        .map_err(|e| format!("running gzip: {e}"))?;
    let cut = out.stdout.len() / 2;
    std::fs::write(&gz, &out.stdout[..cut])
        .map_err(|e| format!("writing {}: {e}", gz.display()))?;
    let gz_s = gz.display().to_string();

    // (args, expected status, text stderr must contain)
    let cases: Vec<(Vec<String>, i32, String)> = vec![
        (vec!["analyze".into(), d.clone()], 0, String::new()),
        (
            vec![
                "analyze".into(),
                "--format".into(),
                "json".into(),
                f("php-fpm.log"),
            ],
            0,
            String::new(),
        ),
        (
            vec![
                "analyze".into(),
                "--format".into(),
                "yaml".into(),
                d.clone(),
            ],
            2,
            "yaml".into(),
        ),
        (
            vec!["analyze".into(), "--no-such-flag".into(), d.clone()],
            2,
            "--no-such-flag".into(),
        ),
        (
            vec![
                "analyze".into(),
                "--tz".into(),
                "Not/AZone".into(),
                d.clone(),
            ],
            2,
            "Not/AZone".into(),
        ),
        (
            vec![
                "analyze".into(),
                "--since".into(),
                "not-a-time".into(),
                d.clone(),
            ],
            2,
            "not-a-time".into(),
        ),
        (vec!["analyze".into()], 2, String::new()),
        (vec!["no-such-command".into()], 2, "no-such-command".into()),
        (
            vec![
                "analyze".into(),
                "--format".into(),
                "json".into(),
                f("nginx-error.log"),
                missing.clone(),
            ],
            1,
            missing.clone(),
        ),
        (
            vec![
                "analyze".into(),
                "--fpm-log".into(),
                missing.clone(),
                d.clone(),
            ],
            1,
            missing.clone(),
        ),
        (
            vec![
                "analyze".into(),
                "--format".into(),
                "json".into(),
                gz_s.clone(),
            ],
            1,
            gz_s.clone(),
        ),
    ];
    let mut errs = Vec::new();
    for (args, want, needle) in cases {
        let os_args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let r = analyzer::run(&os_args, &dir)?;
        let mut bad = Vec::new();
        if r.code != Some(want) {
            bad.push(format!("exit status {:?}, expected {want}", r.code));
        }
        if want != 0 && r.stderr.trim().is_empty() {
            bad.push("nothing on stderr".to_string());
        }
        if !needle.is_empty() && !r.stderr.contains(&needle) {
            bad.push(format!("stderr does not name {needle:?}"));
        }
        if want == 0 && args.iter().any(|a| a == "json") {
            match r.json() {
                Ok(v) if v["failures"].as_array().is_some_and(|a| a.is_empty()) => {}
                Ok(v) => bad.push(format!(
                    "the FPM log alone has no 502/504, but the report has failures: {}",
                    v["failures"]
                )),
                Err(e) => bad.push(e),
            }
        }
        if !bad.is_empty() {
            errs.push(format!(
                "`{}`: {}\n  stderr: {}",
                r.command(),
                bad.join("; "),
                r.stderr.trim().chars().take(1500).collect::<String>()
            ));
        }
    }
    report_errors("exit statuses", errs, &dir)?;
    Ok(TestOutcome::Passed)
}

pub fn all() -> Vec<Test> {
    let mut v: Vec<Test> = vec![
        ("analyzer_mixed_fpm_lifecycle", mixed_fpm_lifecycle as Body).into(),
        ("analyzer_mixed_worker_deaths", mixed_worker_deaths as Body).into(),
    ];
    v.extend(fault_tests());
    let rest: [(&'static str, Body); 3] = [
        (
            "analyzer_read_timeout_static_pool_of_two",
            read_timeout_static_pool_of_two,
        ),
        ("analyzer_text_and_markdown", text_and_markdown),
        ("analyzer_exit_codes", exit_codes),
    ];
    v.extend(rest.into_iter().map(Test::from));
    v
}
