//! The analyzer on logs as they are carried outside one Debian box, and on the
//! demo's whole log directory.
//!
//! - `analyzer_reframed_<fault>`: a real fault scenario's NGINX and FPM logs, analyzed
//!   plain and then re-framed (gatelog_e2e::reframe) as `docker logs -t`, as `docker
//!   compose logs` (one file per service, and one coloured stream of both), as one
//!   container stream mixing NGINX and FPM lines, and with FPM's lines as rsyslog
//!   files them and `journalctl -u` prints them (`--fpm-log`, traditional,
//!   high-precision and journal stamps): every variant
//!   must give each failure the cause the plain files give, which is the injected one.
//! - `analyzer_demo_log_directory`: scripts/demo's setup (Debian's combined
//!   `access.log` without `$connection` or `$request_id`, the records, the error log
//!   at its default level, FPM's log) made to fail its three ways; the directory
//!   given as it is must report each failure exactly once.

use std::path::{Path, PathBuf};
use std::time::Duration;

use gatelog_e2e::analyzer::{self, Given, ReportExpect, Sent};
use gatelog_e2e::check::{self, AttemptOutcome};
use gatelog_e2e::client::{self, Response};
use gatelog_e2e::env::Flavour;
use gatelog_e2e::errlog;
use gatelog_e2e::fpm::{Fpm, Listen, Pool};
use gatelog_e2e::lab::{now_ms, Lab, TestResult};
use gatelog_e2e::net::free_port;
use gatelog_e2e::nginx::{Nginx, NginxConf};
use gatelog_e2e::records;
use gatelog_e2e::reframe::{self, Source, SyslogStamp};
use gatelog_e2e::scenarios::{self, wait_text, Fault, RunError};

use super::analyzer::{deaths, finish_outcome, read, report_errors, sent_for, settle};
use crate::Body;

pub fn all() -> Vec<(&'static str, Body)> {
    vec![
        ("analyzer_demo_log_directory", demo_dir as Body),
        (
            "analyzer_reframed_cause1_fpm_stopped",
            reframed_stopped as Body,
        ),
        (
            "analyzer_reframed_cause4_max_children_read_timeout",
            reframed_max_children as Body,
        ),
        (
            "analyzer_reframed_cause7_segfault",
            reframed_segfault as Body,
        ),
    ]
}

fn reframed_stopped(f: &Flavour) -> TestResult {
    reframed(Fault::FpmStopped, f)
}

fn reframed_max_children(f: &Flavour) -> TestResult {
    reframed(Fault::MaxChildrenTimeout, f)
}

fn reframed_segfault(f: &Flavour) -> TestResult {
    reframed(Fault::Segfault, f)
}

fn write(dir: &Path, name: &str, text: &str) -> Result<PathBuf, String> {
    let p = dir.join(name);
    std::fs::write(&p, text).map_err(|e| format!("writing {}: {e}", p.display()))?;
    Ok(p)
}

/// (conn, cause) of every failure of a report, sorted.
fn causes_by_conn(report: &serde_json::Value) -> Vec<(u64, String)> {
    let mut v: Vec<(u64, String)> = report["failures"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            (
                f["conn"].as_u64().unwrap_or(0),
                f["cause"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Runs `fault`, then analyzes its NGINX and FPM logs plain and in every framing.
fn reframed(fault: Fault, flavour: &Flavour) -> TestResult {
    analyzer::binary()?;
    let lab = Lab::new(flavour, &format!("rf-{}", fault.name()))?;
    let start = now_ms();
    let run = match scenarios::run(fault, &lab) {
        Ok(run) => run,
        Err(RunError::Unavailable(why)) => return Ok(gatelog_e2e::lab::TestOutcome::Skipped(why)),
        Err(RunError::Failed(e)) => return Err(e),
    };
    let end = now_ms();
    let all: Vec<&Response> = run.responses.iter().collect();
    settle(&lab, &all, run.failed().len())?;
    let dir = lab.prefix.path("out");
    run.save(&lab, &dir)?;
    if let Err(e) = scenarios::verify(&lab, &run) {
        return Err(format!("the fault was not injected as planned: {e}"));
    }
    let fpm_text = read(&dir.join("php-fpm.log"));
    let nginx_text = read(&dir.join("nginx-error.log"));
    let sent = sent_for(fault, &run, (start, end), &fpm_text);
    let expect = analyzer::expectations(&dir.join("nginx-access.log"), &sent)?;

    // The framed copies, next to a copy of the kernel log.
    let fdir = lab.prefix.path("framed");
    std::fs::create_dir_all(&fdir).map_err(|e| format!("mkdir {}: {e}", fdir.display()))?;
    let kernel = dir.join("kernel.log");
    let kernel = if kernel.exists() {
        let k = fdir.join("kernel.log");
        std::fs::copy(&kernel, &k).map_err(|e| format!("copy kernel.log: {e}"))?;
        Some(k)
    } else {
        None
    };
    let n = reframe::stamp(&nginx_text, Source::Nginx);
    let f = reframe::stamp(&fpm_text, Source::Fpm);
    let both = reframe::merge(&n, &f);
    let pid = reframe::fpm_master_pid(&fpm_text)
        .ok_or_else(|| format!("no `fpm is running, pid N` line in FPM's log:\n{fpm_text}"))?;
    let plain_nginx = write(&fdir, "nginx-error.log", &nginx_text)?;
    let plain_fpm = write(&fdir, "php-fpm.log", &fpm_text)?;
    let docker_web = write(&fdir, "docker-web.log", &reframe::docker_t(&n))?;
    let docker_php = write(&fdir, "docker-php.log", &reframe::docker_t(&f))?;
    let compose_web = write(&fdir, "compose-web.log", &reframe::compose(&n, false))?;
    let compose_php = write(&fdir, "compose-php.log", &reframe::compose(&f, false))?;
    let compose_all = write(&fdir, "compose-all.log", &reframe::compose(&both, true))?;
    let container = write(&fdir, "container.log", &reframe::plain(&both))?;
    let syslog = write(
        &fdir,
        "php-fpm-syslog.log",
        &reframe::fpm_syslog(&f, "web01", pid, SyslogStamp::Traditional),
    )?;
    let syslog_hp = write(
        &fdir,
        "php-fpm-syslog-hp.log",
        &reframe::fpm_syslog(&f, "web01", pid, SyslogStamp::HighPrecision),
    )?;
    let journal = write(
        &fdir,
        "php-fpm-journal.log",
        &reframe::fpm_syslog(&f, "web01", pid, SyslogStamp::Journal),
    )?;

    let with_kernel = |g: Given| match &kernel {
        Some(k) => g.flag("kernel-log", k, "kernel"),
        None => g,
    };
    let plain = with_kernel(
        Given::new("plain files")
            .flag("nginx-log", &plain_nginx, "nginx-error")
            .flag("fpm-log", &plain_fpm, "fpm")
            .seen_in(&["error_log"]),
    );
    let framed = vec![
        with_kernel(
            Given::new("docker logs -t")
                .file(&docker_web, "nginx-error")
                .framing("rfc3339-timestamp")
                .file(&docker_php, "fpm")
                .framing("rfc3339-timestamp"),
        ),
        with_kernel(
            Given::new("docker compose logs, one file per service")
                .file(&compose_web, "nginx-error")
                .framing("compose-prefix")
                .file(&compose_php, "fpm")
                .framing("compose-prefix"),
        ),
        with_kernel(
            Given::new("docker compose logs, coloured, both services")
                .file(&compose_all, "")
                .framing("compose-prefix")
                .line_kinds(&["nginx-error", "fpm"]),
        ),
        with_kernel(
            Given::new("one container stream of NGINX and FPM")
                .file(&container, "")
                .framing("plain")
                .line_kinds(&["nginx-error", "fpm"]),
        ),
        with_kernel(
            Given::new("FPM via syslog (--fpm-log, traditional stamps)")
                .flag("nginx-log", &plain_nginx, "nginx-error")
                .flag("fpm-log", &syslog, "")
                .framing("syslog"),
        ),
        with_kernel(
            Given::new("FPM via syslog (--fpm-log, high-precision stamps)")
                .flag("nginx-log", &plain_nginx, "nginx-error")
                .flag("fpm-log", &syslog_hp, "")
                .framing("syslog"),
        ),
        with_kernel(
            Given::new("FPM via the journal (--fpm-log, journalctl -u)")
                .flag("nginx-log", &plain_nginx, "nginx-error")
                .flag("fpm-log", &journal, "")
                .framing("syslog"),
        ),
    ];

    // The plain files first: the reference every framing must match.
    let mut errs = Vec::new();
    let r = analyzer::analyze("json", plain.args.clone(), &fdir)?;
    let reference = match r.json() {
        Ok(v) => {
            errs.extend(analyzer::check_given_report(&v, &plain, &fdir, &expect));
            Some(causes_by_conn(&v))
        }
        Err(e) => {
            errs.push(format!("[plain files] {e}"));
            None
        }
    };
    for g in framed {
        let g = g.seen_in(&["error_log"]).framed();
        let r = analyzer::analyze("json", g.args.clone(), &fdir)?;
        match r.json() {
            Ok(v) => {
                errs.extend(analyzer::check_given_report(&v, &g, &fdir, &expect));
                let got = causes_by_conn(&v);
                if let Some(want) = &reference {
                    if &got != want {
                        errs.push(format!(
                            "[{}] (conn, cause) {got:?}, the plain files gave {want:?}",
                            g.name
                        ));
                    }
                }
            }
            Err(e) => errs.push(format!("[{}] {e}", g.name)),
        }
    }
    report_errors(&format!("{} re-framed", fault.name()), errs, &fdir)?;
    Ok(finish_outcome(&lab, &format!("{} re-framed", fault.name())))
}

/// The demo's scripts (scripts/demo), with the slow one shortened.
const DEMO_SCRIPTS: &[(&str, &str)] = &[
    ("index.php", "<?php echo \"hello from php-fpm\\n\";\n"),
    ("slow.php", "<?php usleep(1600000); echo \"too late\\n\";\n"),
    (
        "crash.php",
        "<?php\n// A real segmentation fault: strlen(NULL) through FFI.\nFFI::cdef(\"size_t strlen(const char *s);\", \"libc.so.6\")->strlen(null);\n",
    ),
];

/// The kinds of the demo's log directory.
fn demo_kind(name: &str) -> Option<&'static str> {
    match name {
        "error.log" => Some("nginx-error"),
        "access.log" => Some("nginx-access"),
        "gatelog.json" => Some("records"),
        "php-fpm.log" => Some("fpm"),
        _ => None,
    }
}

/// scripts/demo's NGINX and FPM (its configs: error log at the default level,
/// Debian's default combined access log, the records, `fastcgi_read_timeout 1s`, a
/// static pool of two with FFI), failing its three ways one after another: a slow
/// script (504), a worker that segfaults (502), FPM stopped (502). The test's own
/// access log (`rid=... conn=...`, to know each request's `*N`) is written outside
/// the demo's log directory. The directory as it is must report each failure once.
fn demo_dir(flavour: &Flavour) -> TestResult {
    analyzer::binary()?;
    let lab = Lab::new(flavour, "demo-dir")?;
    let p = &lab.prefix;
    let root = p.root().display().to_string();
    let logs = p.path("demo/logs");
    std::fs::create_dir_all(&logs).map_err(|e| format!("mkdir {}: {e}", logs.display()))?;
    for (name, body) in DEMO_SCRIPTS {
        p.write(&format!("www/{name}"), body, 0o644)?;
    }
    let sock = p.path("run/php-fpm.sock");
    let fpm_log = logs.join("php-fpm.log");
    let fpm_conf = p.write(
        "demo/fpm.conf",
        &format!(
            "[global]\nerror_log = {}\npid = {root}/run/fpm.pid\ndaemonize = no\n[www]\nuser = www-data\ngroup = www-data\nlisten = {}\nlisten.owner = www-data\nlisten.group = www-data\npm = static\npm.max_children = 2\ncatch_workers_output = yes\nphp_admin_value[ffi.enable] = 1\n",
            fpm_log.display(),
            sock.display()
        ),
        0o644,
    )?;
    let mut pool = Pool::unix(p, "www", 2);
    pool.listen = Listen::Unix(sock.clone());
    let mut fpm = Fpm::start_conf(p, pool, &fpm_conf, &fpm_log)?;
    let port = free_port()?;
    let records = logs.join("gatelog.json");
    let gatelog = lab.gl(&format!("gatelog {};", records.display()));
    let conf = NginxConf::new(lab.module.clone(), String::new());
    let load = match &conf.load_module {
        Some(m) => format!("load_module {};\n", m.display()),
        None => String::new(),
    };
    let nginx_conf = p.write(
        "demo/nginx.conf",
        &format!(
            r#"{load}user www-data;
worker_processes 1;
master_process on;
daemon off;
error_log {logs}/error.log;
pid {root}/run/nginx.pid;
events {{}}
http {{
    client_body_temp_path {root}/tmp/body;
    fastcgi_temp_path {root}/tmp/fastcgi;
    proxy_temp_path {root}/tmp/proxy;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    access_log {logs}/access.log;
    # The test's own bookkeeping, outside the demo's log directory.
    log_format e2e 'rid=$request_id conn=$connection status=$status request="$request" upstream_addr="$upstream_addr" upstream_status="$upstream_status"';
    access_log {root}/logs/access.log e2e;
{gatelog}    server {{
        listen 127.0.0.1:{port};
        server_name demo.gatelog;
        root {root}/www;
        add_header X-Request-Id $request_id always;
        location ~ \.php$ {{
            include {root}/conf/fastcgi_params;
            fastcgi_param SCRIPT_FILENAME $document_root$fastcgi_script_name;
            fastcgi_pass unix:{sock};
            fastcgi_read_timeout 1s;
        }}
    }}
}}
"#,
            logs = logs.display(),
            sock = sock.display(),
        ),
        0o644,
    )?;
    let nginx = Nginx::start_file(&lab.flavour, p, &nginx_conf, &[port])?;
    let pause = Duration::from_millis(1200);
    let mut sent = Vec::new();
    let phase = |sent: &mut Vec<Sent>,
                 target: &str,
                 cause: Option<&'static str>|
     -> Result<Response, String> {
        let t0 = now_ms();
        let r = client::get(port, target)?;
        sent.push(Sent::new(r.clone(), cause, (t0, now_ms()), target));
        Ok(r)
    };
    let ok = phase(&mut sent, "/index.php", None)?;
    let slow = phase(&mut sent, "/slow.php", Some("read-timeout"))?;
    // The slow script still runs for 0.6 s in one worker; the other one crashes.
    std::thread::sleep(pause);
    let crash = phase(&mut sent, "/crash.php", Some("invalid-response"))?;
    let log = wait_text(&fpm_log, "exited on signal 11", Duration::from_secs(5))?;
    for pid in deaths(&log, 11) {
        if let Some(s) = sent.last_mut() {
            s.cite
                .push(("fpm", format!("child {pid} exited on signal 11")));
        }
    }
    std::thread::sleep(pause);
    fpm.stop_clean()?;
    wait_text(&fpm_log, "exiting, bye-bye!", Duration::from_secs(2))?;
    let down = phase(&mut sent, "/index.php", Some("fpm-not-running"))?;
    for (r, want) in [(&ok, 200), (&slow, 504), (&crash, 502), (&down, 502)] {
        if r.status != want {
            return Err(format!(
                "{} answered {} (expected {want}): {}",
                r.target,
                r.status,
                String::from_utf8_lossy(&r.body)
            ));
        }
    }
    // The faults really happened: NGINX's lines in the demo's error log.
    let all: Vec<&Response> = sent.iter().map(|s| &s.response).collect();
    let access = check::wait_access(&p.path("logs/access.log"), &all, Duration::from_secs(5))?;
    if lab.with_module() {
        records::wait_for(&records, 3, Duration::from_secs(5))?;
    }
    drop(nginx);
    drop(fpm);
    let entries = errlog::read(&logs.join("error.log"));
    for (r, outcomes) in [
        (&slow, vec![AttemptOutcome::timed_out()]),
        (
            &crash,
            vec![
                AttemptOutcome::reset(),
                AttemptOutcome::closed_prematurely(),
            ],
        ),
        (&down, vec![AttemptOutcome::connect_unix(&sock, 2)]),
    ] {
        let a = access
            .get(&r.request_id)
            .ok_or_else(|| format!("no access line for {}", r.target))?;
        check::errlog_failures(&entries, a, &outcomes)?;
    }
    // Debian's combined format: the premise of the test.
    let combined = read(&logs.join("access.log"));
    let lines: Vec<&str> = combined.lines().collect();
    if lines.len() != 4
        || !lines
            .iter()
            .all(|l| l.contains("\" 50") || l.contains("\" 200 "))
    {
        return Err(format!(
            "the demo's access.log should hold 4 combined lines:\n{combined}"
        ));
    }
    for s in &mut sent {
        if s.cause == Some("fpm-not-running") {
            s.fix_mentions.push(sock.display().to_string());
        }
    }
    let expect: Vec<ReportExpect> = analyzer::expectations(&p.path("logs/access.log"), &sent)?;
    let mut g = Given::new("the demo's log directory").dir(&logs, demo_kind);
    g = if lab.with_module() {
        g.seen_in(&["record", "error_log", "access_log"]).records()
    } else {
        g.seen_in(&["error_log", "access_log"])
    };
    // And as the README's usage puts it: the directory plus the FPM config.
    let with_conf = Given::new("the demo's log directory + fpm.conf")
        .dir(&logs, demo_kind)
        .file(&fpm_conf, "fpm-conf")
        .seen_in(&g.seen_in.clone())
        .configs();
    let with_conf = if lab.with_module() {
        with_conf.records()
    } else {
        with_conf
    };
    let errs = analyzer::check_given(&logs, &[g, with_conf], &expect)?;
    report_errors("the demo's log directory", errs, &logs)?;
    Ok(finish_outcome(&lab, "the demo's log directory"))
}
