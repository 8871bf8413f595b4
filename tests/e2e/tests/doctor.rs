//! `gatelog doctor` on live faults: a real NGINX and a real php8.2-fpm in the test's
//! prefix, the fault injected for real, then `gatelog doctor --nginx-conf
//! <prefix>/conf/nginx.conf --fpm-conf <prefix>/conf/php-fpm-www.conf --nginx-bin
//! <flavour's nginx> --format json`: the report validates against
//! docs/gatelog.doctor.v1.schema.json, the exit status is 3 with exactly the injected
//! cause (and this host's socket paths, ports, config lines in it), or 0 with no
//! finding on a healthy host — also when run as `nobody`, which lists what it could
//! not check.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use gatelog_e2e::analyzer;
use gatelog_e2e::cgroup::MemCgroup;
use gatelog_e2e::client::{self, Request};
use gatelog_e2e::env::Flavour;
use gatelog_e2e::fpm::{Fpm, Listen, Pm, Pool};
use gatelog_e2e::kmsg;
use gatelog_e2e::lab::{Lab, TestOutcome, TestResult, Timeouts};
use gatelog_e2e::net::free_port;
use gatelog_e2e::nginx::Nginx;
use gatelog_e2e::scenarios::{pids_in_fpm_log, wait_text};
use gatelog_e2e::schema;

use crate::Body;

pub fn all() -> Vec<(&'static str, Body)> {
    vec![
        ("doctor_healthy_host", healthy as Body),
        ("doctor_cause1_fpm_stopped", fpm_stopped),
        ("doctor_cause2_socket_root_0600", socket_root_0600),
        ("doctor_cause2_parent_dir_0700", parent_dir_0700),
        ("doctor_cause3_wrong_socket_path", wrong_path),
        ("doctor_cause3_wrong_tcp_port", wrong_port),
        ("doctor_cause4_pool_saturated", saturated),
        ("doctor_cause5_slow_script", slow_script),
        ("doctor_cause6_oom_kill", oom_kill),
        ("doctor_cause7_segfault", segfault),
        ("doctor_exit_codes", exit_codes),
    ]
}

/// A running lab: FPM with `pool`, NGINX passing `~ \.php$` to `pass` (default: the
/// pool).
struct Live {
    lab: Lab,
    fpm: Fpm,
    _nginx: Nginx,
    port: u16,
}

fn start(
    lab: Lab,
    pool: Pool,
    pass: Option<String>,
    t: Timeouts,
    cg: Option<&MemCgroup>,
) -> Result<Live, String> {
    let fpm = Fpm::start(&lab.prefix, pool, cg.map(|c| c.procs_file()).as_deref())?;
    let port = free_port()?;
    let pass = pass.unwrap_or_else(|| fpm.pool.listen.nginx_addr());
    let body = lab.php_location("~ \\.php$", &pass, t, "");
    let http = format!("{}{}", lab.default_gatelog(), lab.server(port, &body));
    let nginx = lab.start_nginx(http, &[port])?;
    Ok(Live {
        lab,
        fpm,
        _nginx: nginx,
        port,
    })
}

/// The lab's config arguments.
fn conf_args(live: &Live) -> Vec<OsString> {
    vec![
        "--nginx-conf".into(),
        live.lab.prefix.path("conf/nginx.conf").into(),
        "--fpm-conf".into(),
        live.fpm.conf.clone().into(),
        "--nginx-bin".into(),
        live.lab.flavour.binary.clone().into(),
    ]
}

/// Runs the doctor (binary `bin`, as root unless `as_nobody`) on the lab's configs.
fn doctor_with(live: &Live, bin: &Path, as_nobody: bool) -> Result<(Option<i32>, Value), String> {
    let p = &live.lab.prefix;
    let mut args: Vec<OsString> = Vec::new();
    let program: OsString = if as_nobody {
        args.extend(["--reuid=nobody", "--regid=nogroup", "--clear-groups"].map(OsString::from));
        args.push(bin.into());
        "setpriv".into()
    } else {
        bin.into()
    };
    args.extend(["doctor", "--format", "json", "--timeout-ms", "1500"].map(OsString::from));
    args.extend(conf_args(live));
    let run = || {
        std::process::Command::new(&program)
            .args(&args)
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| format!("running {}: {e}", program.to_string_lossy()))
    };
    let mut out = run()?;
    // The copy made for `nobody` can be held open for writing a moment by a process
    // another test thread forks meanwhile (ETXTBSY until it execs).
    for _ in 0..20 {
        if !String::from_utf8_lossy(&out.stderr).contains("Text file busy") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
        out = run()?;
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(&stdout).map_err(|e| {
        format!(
            "gatelog doctor printed no JSON ({e}), exit {:?}:\n{stdout}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        )
    })?;
    if let Err(errs) = schema::docs(schema::DOCTOR)?.validate(&report) {
        return Err(format!(
            "the doctor's report does not match its schema:\n{}",
            errs.join("\n")
        ));
    }
    // Kept for a failing test's post-mortem.
    let _ = std::fs::write(
        p.path(if as_nobody {
            "out/doctor-nobody.json"
        } else {
            "out/doctor.json"
        }),
        stdout.as_bytes(),
    );
    Ok((out.status.code(), report))
}

fn doctor(live: &Live) -> Result<(Option<i32>, Value), String> {
    doctor_with(live, &analyzer::binary()?, false)
}

fn findings(r: &Value) -> Vec<&Value> {
    r["findings"]
        .as_array()
        .map(|a| a.iter().collect())
        .unwrap_or_default()
}

/// The report must say exactly `cause` (exit 3), each finding naming every one of
/// `needles`.
fn expect_only(
    code: Option<i32>,
    r: &Value,
    cause: &str,
    needles: &[String],
) -> Result<(), String> {
    let fs = findings(r);
    let text = serde_json::to_string_pretty(&r["findings"]).unwrap_or_default();
    if code != Some(3) {
        return Err(format!(
            "exit status {code:?}, expected 3 (problems found); findings:\n{text}"
        ));
    }
    if fs.is_empty() || fs.iter().any(|f| f["cause"] != cause) {
        return Err(format!("expected only {cause} findings, got:\n{text}"));
    }
    for f in &fs {
        let s = f.to_string();
        for n in needles {
            if !s.contains(n.as_str()) {
                return Err(format!("the {cause} finding does not name {n:?}:\n{text}"));
            }
        }
    }
    Ok(())
}

fn sock(l: &Listen) -> String {
    match l {
        Listen::Unix(p) => p.display().to_string(),
        Listen::Tcp(port) => format!("127.0.0.1:{port}"),
    }
}

/// The doctor's binary copied where `nobody` can run it.
fn binary_for_nobody(lab: &Lab) -> Result<PathBuf, String> {
    let bin = analyzer::binary()?;
    let to = lab.prefix.path("tmp/gatelog");
    std::fs::copy(&bin, &to).map_err(|e| format!("copy {}: {e}", bin.display()))?;
    std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o755))
        .map_err(|e| e.to_string())?;
    Ok(to)
}

fn healthy(f: &Flavour) -> TestResult {
    let lab = Lab::new(f, "doc-healthy")?;
    let pool = Pool::unix(&lab.prefix, "www", 2);
    let live = start(lab, pool, None, Timeouts::DEFAULT, None)?;
    let r = client::get(live.port, "/ok.php")?;
    if r.status != 200 {
        return Err(format!("/ok.php answered {}", r.status));
    }
    let (code, report) = doctor(&live)?;
    if code != Some(0) || !findings(&report).is_empty() {
        return Err(format!(
            "healthy host: exit {code:?}, findings:\n{:#}",
            report["findings"]
        ));
    }
    let t = &report["targets"][0];
    let want = format!("unix:{}", sock(&live.fpm.pool.listen));
    if t["peer"] != want.as_str()
        || t["connect_errno"] != 0
        || t["pool"] != "www"
        || t["connect_as"] != "www-data"
    {
        return Err(format!("target not checked as expected: {t:#}"));
    }
    let p = &report["pools"][0];
    if p["master_pid"] != live.fpm.master_pid() || p["workers"] != 2 {
        return Err(format!(
            "pool not seen running (master {}): {p:#}",
            live.fpm.master_pid()
        ));
    }
    // Without root: the same answer, and what it could not check is listed.
    let (code, nobody) = doctor_with(&live, &binary_for_nobody(&live.lab)?, true)?;
    let unchecked = nobody["not_checked"].to_string();
    if code != Some(0) || !findings(&nobody).is_empty() || nobody["ran_as"]["root"] != false {
        return Err(format!("as nobody: exit {code:?}, report:\n{nobody:#}"));
    }
    if !unchecked.contains("connect() to") || !unchecked.contains("needs root") {
        return Err(format!(
            "as nobody, not_checked does not say connect() as www-data needs root: {unchecked}"
        ));
    }
    Ok(TestOutcome::Passed)
}

fn fpm_stopped(f: &Flavour) -> TestResult {
    let lab = Lab::new(f, "doc-stopped")?;
    let pool = Pool::unix(&lab.prefix, "www", 1);
    let mut live = start(lab, pool, None, Timeouts::DEFAULT, None)?;
    live.fpm.stop_clean()?;
    let (code, r) = doctor(&live)?;
    let conf = live.fpm.conf.display().to_string();
    expect_only(
        code,
        &r,
        "fpm-not-running",
        &[
            sock(&live.fpm.pool.listen),
            "pool www".into(),
            conf,
            "ENOENT".into(),
        ],
    )?;
    Ok(TestOutcome::Passed)
}

fn socket_root_0600(f: &Flavour) -> TestResult {
    let lab = Lab::new(f, "doc-perm")?;
    let mut pool = Pool::unix(&lab.prefix, "www", 1);
    pool.owner = "root".into();
    pool.group = "root".into();
    pool.mode = "0600".into();
    let live = start(lab, pool, None, Timeouts::DEFAULT, None)?;
    let (code, r) = doctor(&live)?;
    expect_only(
        code,
        &r,
        "socket-permission-denied",
        &[
            sock(&live.fpm.pool.listen),
            "EACCES".into(),
            "root:root 0600".into(),
            "listen.owner = www-data".into(),
            "listen.owner = root".into(),
            live.fpm.conf.display().to_string(),
        ],
    )?;
    // The default text format says the same.
    let mut args: Vec<OsString> = vec!["doctor".into()];
    args.extend(conf_args(&live));
    let run = analyzer::run(&args, live.lab.prefix.root())?;
    let _ = std::fs::write(live.lab.prefix.path("out/doctor.txt"), &run.stdout);
    let sock = sock(&live.fpm.pool.listen);
    if run.code != Some(3)
        || !run
            .stdout
            .contains("[1] socket-permission-denied (critical)")
        || !run.stdout.contains(&sock)
        || !run.stdout.contains("    fix: ")
    {
        return Err(format!(
            "text report (exit {:?}):\n{}{}",
            run.code, run.stdout, run.stderr
        ));
    }
    Ok(TestOutcome::Passed)
}

fn parent_dir_0700(f: &Flavour) -> TestResult {
    let lab = Lab::new(f, "doc-dir")?;
    let dir = lab.prefix.path("run/private");
    std::fs::create_dir(&dir).map_err(|e| e.to_string())?;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| e.to_string())?;
    let mut pool = Pool::unix(&lab.prefix, "www", 1);
    pool.listen = Listen::Unix(dir.join("www.sock"));
    let live = start(lab, pool, None, Timeouts::DEFAULT, None)?;
    let (code, r) = doctor(&live)?;
    let d = dir.display().to_string();
    expect_only(
        code,
        &r,
        "socket-permission-denied",
        &[
            format!("directory {d} is root:root 0700 directory"),
            "EACCES".into(),
            format!("chmod o+x {d}"),
        ],
    )?;
    Ok(TestOutcome::Passed)
}

fn wrong_path(f: &Flavour) -> TestResult {
    let lab = Lab::new(f, "doc-wrongpath")?;
    let wrong = lab.prefix.path("run/php8.1-fpm.sock").display().to_string();
    let pool = Pool::unix(&lab.prefix, "www", 1);
    let live = start(
        lab,
        pool,
        Some(format!("unix:{wrong}")),
        Timeouts::DEFAULT,
        None,
    )?;
    let (code, r) = doctor(&live)?;
    let nginx_conf = live
        .lab
        .prefix
        .path("conf/nginx.conf")
        .display()
        .to_string();
    expect_only(
        code,
        &r,
        "wrong-socket-path",
        &[
            wrong,
            sock(&live.fpm.pool.listen),
            format!("{nginx_conf}:"),
            "pool www".into(),
            "ENOENT".into(),
        ],
    )?;
    Ok(TestOutcome::Passed)
}

fn wrong_port(f: &Flavour) -> TestResult {
    let lab = Lab::new(f, "doc-wrongport")?;
    let fport = free_port()?;
    let pool = Pool::tcp(&lab.prefix, "www", fport, 1);
    let other = loop {
        let p = free_port()?;
        if p != fport {
            break p;
        }
    };
    let live = start(
        lab,
        pool,
        Some(format!("127.0.0.1:{other}")),
        Timeouts::DEFAULT,
        None,
    )?;
    let (code, r) = doctor(&live)?;
    expect_only(
        code,
        &r,
        "wrong-socket-path",
        &[
            format!("127.0.0.1:{other}"),
            format!("127.0.0.1:{fport}"),
            "ECONNREFUSED".into(),
        ],
    )?;
    Ok(TestOutcome::Passed)
}

/// Sends `reqs` in a background thread; returns the join handle.
fn background(
    reqs: Vec<Request>,
) -> std::thread::JoinHandle<Vec<Result<client::Response, String>>> {
    std::thread::spawn(move || client::concurrent(&reqs))
}

fn saturated(f: &Flavour) -> TestResult {
    let lab = Lab::new(f, "doc-saturated")?;
    let fport = free_port()?;
    // One worker on TCP (FPM's status page reports the listen queue of TCP sockets);
    // the status page on its own socket, served while the worker is busy.
    let mut pool = Pool::tcp(&lab.prefix, "www", fport, 1)
        .set("pm.status_path", "/fpm-status")
        .set(
            "pm.status_listen",
            &lab.prefix.path("run/www-status.sock").display().to_string(),
        );
    pool.pm = Pm::Dynamic(1);
    let live = start(lab, pool, None, Timeouts::new(2000, 3000, 10_000), None)?;
    // 4 x 1.5 s through one worker: the last waits 4.5 s, within the read timeout.
    let reqs = (1..=4)
        .map(|i| Request::get(live.port, &format!("/sleep.php?ms=1500&n={i}")))
        .collect();
    let sent = background(reqs);
    // FPM's master updates the status page's listen queue once a second: ask until
    // it shows (while the queue lasts, about 4.5 s).
    let started = Instant::now();
    let mut last = Err(String::new());
    while started.elapsed() < Duration::from_millis(3500) {
        std::thread::sleep(Duration::from_millis(600));
        let (code, r) = doctor(&live)?;
        last = expect_only(
            code,
            &r,
            "max-children-exhausted",
            &[
                "pool www".into(),
                "pm.max_children".into(),
                "accept queue".into(),
                "/sleep.php?ms=1500".into(),
            ],
        );
        let q = r["pools"][0]["status"]["listen_queue"].as_u64();
        if last.is_ok() && q.is_some_and(|q| q > 0) {
            break;
        }
        if last.is_ok() {
            last = Err(format!(
                "the status page shows no listen queue: {:#}",
                r["pools"][0]
            ));
        }
    }
    let resps = sent
        .join()
        .map_err(|_| "client thread panicked".to_string())?;
    for x in resps {
        let x = x?;
        if x.status != 200 {
            return Err(format!(
                "{} answered {} (the read timeout is 10 s)",
                x.target, x.status
            ));
        }
    }
    last?;
    Ok(TestOutcome::Passed)
}

fn slow_script(f: &Flavour) -> TestResult {
    let lab = Lab::new(f, "doc-slow")?;
    let pool = Pool::unix(&lab.prefix, "www", 2).set("pm.status_path", "/fpm-status");
    let live = start(lab, pool, None, Timeouts::new(2000, 3000, 1000), None)?;
    let sent = background(vec![Request::get(live.port, "/sleep.php?ms=6000")]);
    // From 1 s after the script starts until it ends, it runs past NGINX's read
    // timeout (a loaded machine may start the client late: ask until it shows).
    let nginx_conf = live
        .lab
        .prefix
        .path("conf/nginx.conf")
        .display()
        .to_string();
    let started = Instant::now();
    let mut last = Err(String::new());
    while started.elapsed() < Duration::from_millis(5000) {
        std::thread::sleep(Duration::from_millis(500));
        let (code, r) = doctor(&live)?;
        last = expect_only(
            code,
            &r,
            "read-timeout",
            &[
                "GET /sleep.php?ms=6000".into(),
                "fastcgi_read_timeout 1000ms".into(),
                format!("{nginx_conf}:"),
            ],
        );
        if last.is_ok() {
            break;
        }
    }
    let resp = sent
        .join()
        .map_err(|_| "client thread panicked".to_string())?;
    let resp = resp.into_iter().next().ok_or("no response")??;
    if resp.status != 504 {
        return Err(format!(
            "/sleep.php answered {} (expected 504 after 1 s)",
            resp.status
        ));
    }
    last?;
    Ok(TestOutcome::Passed)
}

/// Waits for an FPM log line and returns the pids of `exited on signal SIG` lines.
fn dead_workers(fpm: &Fpm, signal: u32) -> Result<Vec<u32>, String> {
    let log = wait_text(
        &fpm.log,
        &format!("exited on signal {signal} "),
        Duration::from_secs(5),
    )?;
    Ok(log
        .lines()
        .filter(|l| l.contains(&format!("exited on signal {signal} ")))
        .flat_map(pids_in_fpm_log)
        .collect())
}

fn oom_kill(f: &Flavour) -> TestResult {
    if let Err(e) = kmsg::mark() {
        return Ok(TestOutcome::Skipped(format!(
            "kernel log not readable: {e}"
        )));
    }
    let cg = match MemCgroup::create("doc-oom", 64 << 20) {
        Ok(c) => c,
        Err(e) => return Ok(TestOutcome::Skipped(e)),
    };
    let lab = Lab::new(f, "doc-oom")?;
    let pool = Pool::unix(&lab.prefix, "www", 1).admin("memory_limit", "-1");
    let live = start(lab, pool, None, Timeouts::DEFAULT, Some(&cg))?;
    let r = client::get(live.port, "/oom.php")?;
    if r.status != 502 {
        return Err(format!("/oom.php answered {}", r.status));
    }
    let killed = dead_workers(&live.fpm, 9)?;
    // The kernel writes its lines as it kills; give the reader a moment.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let (code, rep) = doctor(&live)?;
        let needles: Vec<String> = vec![
            format!("worker {}", killed[0]),
            "Killed process".into(),
            "memory_limit".into(),
        ];
        match expect_only(code, &rep, "worker-oom-killed", &needles) {
            Ok(()) => return Ok(TestOutcome::Passed),
            Err(e) if Instant::now() > deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(300)),
        }
    }
}

fn segfault(f: &Flavour) -> TestResult {
    let lab = Lab::new(f, "doc-segv")?;
    let pool = Pool::unix(&lab.prefix, "www", 1).admin("ffi.enable", "1");
    let live = start(lab, pool, None, Timeouts::DEFAULT, None)?;
    let r = client::get(live.port, "/segv.php")?;
    if r.status != 502 {
        return Err(format!("/segv.php answered {}", r.status));
    }
    let dead = dead_workers(&live.fpm, 11)?;
    let (code, rep) = doctor(&live)?;
    expect_only(
        code,
        &rep,
        "invalid-response",
        &[
            format!("worker {}", dead[0]),
            "SIGSEGV".into(),
            live.fpm.log.display().to_string(),
        ],
    )?;
    Ok(TestOutcome::Passed)
}

/// 2 on bad usage, 1 when nothing can be read; each says why on stderr.
fn exit_codes(_: &Flavour) -> TestResult {
    let cwd = std::env::temp_dir();
    let cases: [(&[&str], i32, &str); 4] = [
        (&["doctor", "--format", "yaml"], 2, "yaml"),
        (&["doctor", "--since", "soon"], 2, "--since"),
        (
            &["doctor", "--nginx-conf", "-", "--fpm-conf", "-"],
            2,
            "standard input",
        ),
        (
            &["doctor", "--nginx-conf", "/nonexistent/nginx.conf"],
            1,
            "/nonexistent/nginx.conf",
        ),
    ];
    for (args, want, says) in cases {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        let run = analyzer::run(&args, &cwd)?;
        if run.code != Some(want) || !run.stderr.contains(says) {
            return Err(format!(
                "`{}`: exit {:?} (expected {want}), stderr {:?} (expected to name {says:?})",
                run.command(),
                run.code,
                run.stderr
            ));
        }
    }
    Ok(TestOutcome::Passed)
}
