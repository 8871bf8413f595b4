//! The seven causes of a 502/504 in front of PHP-FPM, injected for real.
//!
//! Each [`Fault`] has a function that sets the fault up (a real php8.2-fpm, a real
//! NGINX, the real kernel), sends the requests, checks that the fault really
//! happened (NGINX's error log, PHP-FPM's log, the kernel log) and returns a
//! [`FaultRun`]: what was sent, and a [`FaultExpect`] saying what the failed requests
//! must show. [`verify`] checks NGINX's error log and the records against it;
//! [`FaultRun::save`] leaves the evidence in a directory:
//!
//! | file               | content                                                    |
//! |--------------------|------------------------------------------------------------|
//! | `nginx-error.log`  | NGINX's error log (level `info`)                           |
//! | `nginx-access.log` | access log: `rid=<request_id> conn=<N> status=... request=...` |
//! | `php-fpm.log`      | PHP-FPM's error log (log_level notice)                     |
//! | `kernel.log`       | `dmesg` lines of this run (OOM block, segfault), if any    |
//! | `gatelog.jsonl`    | the module's records (absent without the module)           |
//! | `nginx.conf`       | the generated NGINX config (its `include` is the lab's)    |
//! | `php-fpm-www.conf` | the generated PHP-FPM config (global section + pool)       |
//! | `scenario.json`    | fault name, cause number (1-7), flavour, requests sent     |
//!
//! Analyzer end-to-end tests can produce such a directory with [`run_to_dir`] (or the
//! `gatelog-e2e-scenario` binary: `gatelog-e2e-scenario <fault> <flavour> <dir>`) and
//! then run `target/release/gatelog analyze --format json <dir>/*.log <dir>/gatelog.jsonl`
//! and assert that the reported cause is `scenario.json`'s `cause`.
//!
//! # Adding a fault
//!
//! 1. Add a variant to [`Fault`] (its doc comment says the cause and how the fault
//!    is made) and append it to `Fault::ALL`.
//! 2. Write its function, `fn my_fault(lab: &Lab) -> Result<FaultRun, RunError>`,
//!    next to the others: `setup` starts PHP-FPM (a [`Pool`]: socket, pm, backlog,
//!    php_admin values; optionally in a memory cgroup) and NGINX with the `fastcgi_*`
//!    timeouts given; send the requests (`client::get`, `sequential`, `concurrent`);
//!    check that the fault really happened and return `RunError::Failed` if it did
//!    not, `RunError::Unavailable` if this machine cannot make it (the test is then
//!    reported as ignored, never passed); end with `s.finish(lab, Fault::MyFault,
//!    responses, FaultExpect { .. }, notes, cgroup)`, where [`FaultExpect`] names the
//!    failure statuses, how many requests must fail, the attempt's phase, the
//!    acceptable [`AttemptOutcome`]s (NGINX's error-log message, errno, level) and the
//!    upstream address.
//! 3. Register it in `Fault::spec`: its stable name (`causeN_what`, also the test
//!    name), the analyzer's cause number (1-7) and the function.
//!
//! That is all: the e2e suite runs `<name>::<flavour>` (fault injected, records checked)
//! and `analyzer_<name>::<flavour>` (the analyzer's three reports on its evidence) on both NGINX
//! flavours, and `gatelog-e2e-scenario --list` shows it. If the analyzer's fix must
//! name something for this fault (a path, a pool file), add it to `sent_for` in
//! tests/e2e/tests/analyzer.rs. Run it alone with
//! `cargo test --release -p gatelog-e2e --test e2e -- causeN_what`.

use std::collections::HashMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::cgroup::MemCgroup;
use crate::check::{self, AttemptExpect, AttemptOutcome, Errors, RecordExpect};
use crate::client::{self, Request, Response};
use crate::env::Flavour;
use crate::errlog::{self, AccessLine, ErrorLogEntry};
use crate::fpm::{Fpm, Listen, Pm, Pool};
use crate::kmsg;
use crate::lab::{no_module_reason, Lab, TestOutcome, TestResult, Timeouts};
use crate::net::free_port;
use crate::records;

/// Why a scenario did not produce a run.
#[derive(Debug, Clone)]
pub enum RunError {
    /// Something went wrong (a failure of the test).
    Failed(String),
    /// The machine cannot inject this fault (e.g. no memory cgroup): the test is
    /// reported as ignored with this reason.
    Unavailable(String),
}

impl From<String> for RunError {
    fn from(s: String) -> RunError {
        RunError::Failed(s)
    }
}

/// The injected faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Fault {
    /// Cause 1: FPM stopped cleanly, the unix socket is gone (ENOENT, crit).
    FpmStopped,
    /// Cause 1: FPM master and workers SIGKILLed, stale socket (ECONNREFUSED).
    FpmKilled,
    /// Cause 1: FPM on TCP stopped, nothing listens (111 from SO_ERROR, async).
    FpmTcpDown,
    /// Cause 2: socket root:root 0600, NGINX workers run as www-data (EACCES).
    SocketPermission,
    /// Cause 3: FPM healthy on one socket, fastcgi_pass names another (ENOENT).
    WrongSocketPath,
    /// Cause 4: pm.max_children = 1, slow script, concurrent requests: 504 read
    /// timeouts while requests wait in FPM's queue.
    MaxChildrenTimeout,
    /// Cause 4: pm.max_children = 1 and listen.backlog = 0: EAGAIN on connect (502).
    MaxChildrenBacklog,
    /// Cause 4 over TCP: pm.max_children = 1 and listen.backlog = 0 on 127.0.0.1: the
    /// kernel drops SYNs, NGINX's connect times out (504, phase connect, 110).
    MaxChildrenTcpConnectTimeout,
    /// Cause 5: fastcgi_read_timeout 1s, the script sleeps longer (504, 110).
    ReadTimeout,
    /// Cause 6: the worker is killed by a real kernel OOM kill in a memory cgroup.
    OomKill,
    /// Cause 7: the worker segfaults mid-request (PHP FFI strlen(NULL)).
    Segfault,
}

impl Fault {
    pub const ALL: [Fault; 11] = [
        Fault::FpmStopped,
        Fault::FpmKilled,
        Fault::FpmTcpDown,
        Fault::SocketPermission,
        Fault::WrongSocketPath,
        Fault::MaxChildrenTimeout,
        Fault::MaxChildrenBacklog,
        Fault::MaxChildrenTcpConnectTimeout,
        Fault::ReadTimeout,
        Fault::OomKill,
        Fault::Segfault,
    ];

    /// Stable name (also the test name).
    pub fn name(self) -> &'static str {
        self.spec().name
    }

    /// The analyzer's cause number (1-7).
    pub fn cause(self) -> u8 {
        self.spec().cause
    }

    pub fn by_name(name: &str) -> Option<Fault> {
        Fault::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The one place a fault is registered: its name, its cause, its function.
    fn spec(self) -> FaultSpec {
        let (name, cause, inject): (_, _, Inject) = match self {
            Fault::FpmStopped => ("cause1_fpm_stopped", 1, fpm_stopped),
            Fault::FpmKilled => ("cause1_fpm_killed_stale_socket", 1, fpm_killed),
            Fault::FpmTcpDown => ("cause1_fpm_tcp_down", 1, fpm_tcp_down),
            Fault::SocketPermission => ("cause2_socket_permission", 2, socket_permission),
            Fault::WrongSocketPath => ("cause3_wrong_socket_path", 3, wrong_socket_path),
            Fault::MaxChildrenTimeout => {
                ("cause4_max_children_read_timeout", 4, max_children_timeout)
            }
            Fault::MaxChildrenBacklog => (
                "cause4_max_children_backlog_eagain",
                4,
                max_children_backlog,
            ),
            Fault::MaxChildrenTcpConnectTimeout => (
                "cause4_max_children_tcp_connect_timeout",
                4,
                max_children_tcp_connect_timeout,
            ),
            Fault::ReadTimeout => ("cause5_read_timeout", 5, read_timeout),
            Fault::OomKill => ("cause6_oom_kill", 6, oom_kill),
            Fault::Segfault => ("cause7_segfault", 7, segfault),
        };
        FaultSpec {
            name,
            cause,
            inject,
        }
    }
}

/// A fault's function: sets the fault up in the lab, sends the requests, checks that
/// the fault really happened and says what the failed requests must show.
type Inject = fn(&Lab) -> Result<FaultRun, RunError>;

struct FaultSpec {
    name: &'static str,
    cause: u8,
    inject: Inject,
}

/// What the failed requests of a run must show (NGINX's error log, the records).
#[derive(Debug, Clone)]
pub struct FaultExpect {
    /// Statuses a failed request may have (502 and/or 504).
    pub statuses: &'static [u16],
    /// At least this many requests must have failed.
    pub min_failed: usize,
    /// The phase of the (single) attempt of a failed request.
    pub phase: &'static str,
    /// The acceptable ways that attempt failed.
    pub outcomes: Vec<AttemptOutcome>,
    /// The `fastcgi_pass` address: the record's `upstream` and the attempt's `peer`.
    pub upstream: String,
}

/// What a scenario did and what its failed requests must show.
#[derive(Debug, Clone)]
pub struct FaultRun {
    pub fault: Fault,
    pub flavour: String,
    /// The NGINX port requests went to.
    pub port: u16,
    /// Every response, in order (sanity requests before the fault included).
    pub responses: Vec<Response>,
    /// What its failed requests must show.
    pub expect: FaultExpect,
    /// The fastcgi_*_timeout values of the location.
    pub timeouts: Timeouts,
    /// PHP-FPM's error log.
    pub fpm_log: Option<PathBuf>,
    /// PHP-FPM's generated config (`[global]` + the pool).
    pub fpm_conf: Option<PathBuf>,
    /// FPM master and worker pids seen during the run.
    pub fpm_pids: Vec<u32>,
    /// This run's kernel log lines, or why they could not be read.
    pub kernel: Result<Vec<String>, String>,
    /// Things the scenario established (evidence), for the report.
    pub notes: Vec<String>,
}

const T: Timeouts = Timeouts::DEFAULT;

fn expect_status(r: Response, want: u16) -> Result<Response, String> {
    if r.status == want {
        Ok(r)
    } else {
        Err(format!(
            "{} answered {} (expected {want}): {}",
            r.target,
            r.status,
            String::from_utf8_lossy(&r.body)
        ))
    }
}

pub fn wait_text(path: &Path, needle: &str, timeout: Duration) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return Ok(text);
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{} does not contain {needle:?} after {timeout:?}:\n{text}",
                path.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// FPM child pids named in its log (`child N ...`).
pub fn pids_in_fpm_log(text: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for w in text.split("child ").skip(1) {
        if let Some(n) = w
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|d| d.parse().ok())
        {
            out.push(n);
        }
    }
    out
}

struct Setup {
    fpm: Fpm,
    port: u16,
    _nginx: crate::nginx::Nginx,
    kmark: Result<kmsg::Mark, String>,
    pids: Vec<u32>,
    timeouts: Timeouts,
}

/// FPM (optionally in a cgroup) + NGINX with one server whose `~ \.php$` location
/// passes to `pass` (default: the pool) with `timeouts`; `extra_locations` go before.
fn setup(
    lab: &Lab,
    pool: Pool,
    cgroup: Option<&MemCgroup>,
    pass: Option<String>,
    timeouts: Timeouts,
    extra_locations: &str,
) -> Result<Setup, String> {
    let kmark = kmsg::mark();
    let fpm = Fpm::start(&lab.prefix, pool, cgroup.map(|c| c.procs_file()).as_deref())?;
    let mut pids = vec![fpm.master_pid()];
    pids.extend(fpm.worker_pids());
    let port = free_port()?;
    let pass = pass.unwrap_or_else(|| fpm.pool.listen.nginx_addr());
    let body = format!(
        "{extra_locations}{}",
        lab.php_location("~ \\.php$", &pass, timeouts, "")
    );
    let http = format!("{}{}", lab.default_gatelog(), lab.server(port, &body));
    let nginx = lab.start_nginx(http, &[port])?;
    Ok(Setup {
        fpm,
        port,
        _nginx: nginx,
        kmark,
        pids,
        timeouts,
    })
}

impl Setup {
    fn finish(
        mut self,
        lab: &Lab,
        fault: Fault,
        responses: Vec<Response>,
        expect: FaultExpect,
        notes: Vec<String>,
        cgroup: Option<&MemCgroup>,
    ) -> FaultRun {
        // NGINX writes the access log and the records in the log phase, right after
        // the response: let it finish before the processes are killed.
        let all: Vec<&Response> = responses.iter().collect();
        let _ = check::wait_access(
            &lab.prefix.path("logs/access.log"),
            &all,
            Duration::from_secs(5),
        );
        let log_text = self.fpm.log_text();
        self.pids.extend(self.fpm.worker_pids());
        self.pids.extend(pids_in_fpm_log(&log_text));
        self.pids.sort_unstable();
        self.pids.dedup();
        let kernel = match &self.kmark {
            Ok(m) => kmsg::since(m).map(|lines| {
                kmsg::filter(
                    &lines,
                    &self.pids,
                    cgroup.map(|c| c.kernel_path()).as_deref(),
                )
            }),
            Err(e) => Err(e.clone()),
        };
        FaultRun {
            fault,
            flavour: lab.flavour.name.to_string(),
            port: self.port,
            responses,
            expect,
            timeouts: self.timeouts,
            fpm_log: Some(self.fpm.log.clone()),
            fpm_conf: Some(self.fpm.conf.clone()),
            fpm_pids: self.pids.clone(),
            kernel,
            notes,
        }
    }
}

fn sequential(port: u16, targets: &[&str]) -> Result<Vec<Response>, String> {
    targets.iter().map(|t| client::get(port, t)).collect()
}

/// `n` requests to `target` at once, numbered `&n=1`, `&n=2`, ...
fn concurrent(port: u16, n: usize, target: &str) -> Result<Vec<Response>, String> {
    let reqs: Vec<Request> = (1..=n)
        .map(|i| Request::get(port, &format!("{target}&n={i}")))
        .collect();
    client::concurrent(&reqs).into_iter().collect()
}

fn unix_path(listen: &Listen) -> PathBuf {
    match listen {
        Listen::Unix(p) => p.clone(),
        Listen::Tcp(_) => PathBuf::new(),
    }
}

/// Runs `fault` in `lab`. The fault's own evidence (socket gone, FPM log lines,
/// kernel OOM kill, ...) is checked by its function; records are checked by [`verify`].
pub fn run(fault: Fault, lab: &Lab) -> Result<FaultRun, RunError> {
    (fault.spec().inject)(lab)
}

/// Cause 1: FPM on a unix socket stopped cleanly; the socket file is gone.
fn fpm_stopped(lab: &Lab) -> Result<FaultRun, RunError> {
    let mut s = setup(lab, Pool::unix(&lab.prefix, "www", 2), None, None, T, "")?;
    let mut resps = vec![expect_status(
        client::get(s.port, "/ok.php?before=stop")?,
        200,
    )?];
    s.fpm.stop_clean()?;
    let sock = unix_path(&s.fpm.pool.listen);
    if sock.exists() {
        return Err(RunError::Failed(format!(
            "FPM stopped cleanly but {} still exists",
            sock.display()
        )));
    }
    let log = wait_text(&s.fpm.log, "exiting, bye-bye!", Duration::from_secs(2))?;
    resps.extend(sequential(
        s.port,
        &["/ok.php?after=stop&n=1", "/index.php?after=stop&n=2"],
    )?);
    let notes = vec![
        format!(
            "FPM log: {}",
            log.lines().rev().take(2).collect::<Vec<_>>().join(" / ")
        ),
        format!("{} removed", sock.display()),
    ];
    let expect = FaultExpect {
        statuses: &[502],
        min_failed: 2,
        phase: "connect",
        outcomes: vec![AttemptOutcome::connect_unix(&sock, 2)],
        upstream: s.fpm.pool.listen.nginx_addr(),
    };
    Ok(s.finish(lab, Fault::FpmStopped, resps, expect, notes, None))
}

/// Cause 1: FPM SIGKILLed; its socket file stays and nobody accepts on it.
fn fpm_killed(lab: &Lab) -> Result<FaultRun, RunError> {
    let mut s = setup(lab, Pool::unix(&lab.prefix, "www", 2), None, None, T, "")?;
    let mut resps = vec![expect_status(
        client::get(s.port, "/ok.php?before=kill")?,
        200,
    )?];
    s.fpm.kill9();
    let sock = unix_path(&s.fpm.pool.listen);
    if !sock.exists() {
        return Err(RunError::Failed(format!(
            "after SIGKILL the stale socket {} is gone",
            sock.display()
        )));
    }
    resps.extend(sequential(
        s.port,
        &["/ok.php?after=kill&n=1", "/index.php?after=kill&n=2"],
    )?);
    let notes = vec![format!(
        "master {} and workers SIGKILLed; stale {} left",
        s.fpm.master_pid(),
        sock.display()
    )];
    let expect = FaultExpect {
        statuses: &[502],
        min_failed: 2,
        phase: "connect",
        outcomes: vec![AttemptOutcome::connect_unix(&sock, 111)],
        upstream: s.fpm.pool.listen.nginx_addr(),
    };
    Ok(s.finish(lab, Fault::FpmKilled, resps, expect, notes, None))
}

/// Cause 1 over TCP: FPM stopped, nothing listens on its port.
fn fpm_tcp_down(lab: &Lab) -> Result<FaultRun, RunError> {
    let fport = free_port()?;
    let mut s = setup(
        lab,
        Pool::tcp(&lab.prefix, "www", fport, 2),
        None,
        None,
        T,
        "",
    )?;
    let mut resps = vec![expect_status(
        client::get(s.port, "/ok.php?before=stop")?,
        200,
    )?];
    s.fpm.stop_clean()?;
    wait_text(&s.fpm.log, "exiting, bye-bye!", Duration::from_secs(2))?;
    resps.extend(sequential(
        s.port,
        &["/ok.php?after=stop&n=1", "/ok.php?after=stop&n=2"],
    )?);
    let peer = s.fpm.pool.listen.nginx_addr();
    let notes = vec![format!("FPM on {peer} stopped cleanly")];
    let expect = FaultExpect {
        statuses: &[502],
        min_failed: 2,
        phase: "connect",
        outcomes: vec![AttemptOutcome::connect_async(111)],
        upstream: peer,
    };
    Ok(s.finish(lab, Fault::FpmTcpDown, resps, expect, notes, None))
}

/// Cause 2: the socket is root:root 0600, NGINX's workers run as www-data.
fn socket_permission(lab: &Lab) -> Result<FaultRun, RunError> {
    let mut pool = Pool::unix(&lab.prefix, "www", 1);
    pool.owner = "root".into();
    pool.group = "root".into();
    pool.mode = "0600".into();
    let s = setup(lab, pool, None, None, T, "")?;
    let sock = unix_path(&s.fpm.pool.listen);
    let md = std::fs::metadata(&sock).map_err(|e| format!("stat {}: {e}", sock.display()))?;
    if md.uid() != 0 || md.gid() != 0 || md.permissions().mode() & 0o777 != 0o600 {
        return Err(RunError::Failed(format!(
            "{} is {}:{} {:o}, expected root:root 0600",
            sock.display(),
            md.uid(),
            md.gid(),
            md.permissions().mode() & 0o777
        )));
    }
    let resps = sequential(s.port, &["/ok.php?n=1", "/ok.php?n=2"])?;
    let notes = vec![format!(
        "{} is root:root 0600, NGINX workers run as www-data",
        sock.display()
    )];
    let expect = FaultExpect {
        statuses: &[502],
        min_failed: 2,
        phase: "connect",
        outcomes: vec![AttemptOutcome::connect_unix(&sock, 13)],
        upstream: s.fpm.pool.listen.nginx_addr(),
    };
    Ok(s.finish(lab, Fault::SocketPermission, resps, expect, notes, None))
}

/// Cause 3: FPM is healthy on its socket, `fastcgi_pass` names another path.
fn wrong_socket_path(lab: &Lab) -> Result<FaultRun, RunError> {
    let wrong = lab.prefix.path("run/php8.1-fpm.sock");
    let pool = Pool::unix(&lab.prefix, "www", 1);
    let good = pool.listen.nginx_addr();
    // /healthy.php goes to the right socket: FPM is up.
    let healthy = lab.php_location(
        "= /healthy.php",
        &good,
        T,
        "            fastcgi_param SCRIPT_FILENAME $document_root/ok.php;",
    );
    let wrong_addr = format!("unix:{}", wrong.display());
    let s = setup(lab, pool, None, Some(wrong_addr.clone()), T, &healthy)?;
    let mut resps = vec![expect_status(client::get(s.port, "/healthy.php")?, 200)?];
    resps.extend(sequential(s.port, &["/ok.php?n=1", "/ok.php?n=2"])?);
    let notes = vec![format!(
        "FPM listens on {good}, fastcgi_pass names {wrong_addr}"
    )];
    let expect = FaultExpect {
        statuses: &[502],
        min_failed: 2,
        phase: "connect",
        outcomes: vec![AttemptOutcome::connect_unix(&wrong, 2)],
        upstream: wrong_addr,
    };
    Ok(s.finish(lab, Fault::WrongSocketPath, resps, expect, notes, None))
}

/// Cause 4: one FPM worker, slow scripts, concurrent requests: the ones waiting in
/// FPM's queue hit fastcgi_read_timeout (504).
fn max_children_timeout(lab: &Lab) -> Result<FaultRun, RunError> {
    let mut pool = Pool::unix(&lab.prefix, "www", 1);
    pool.pm = Pm::Dynamic(1);
    let s = setup(lab, pool, None, None, Timeouts::new(2000, 3000, 1000), "")?;
    let resps = concurrent(s.port, 4, "/sleep.php?ms=1500")?;
    // pm = dynamic logs the saturation once a second (evidence for the analyzer).
    let notes = match wait_text(
        &s.fpm.log,
        "server reached pm.max_children setting (1)",
        Duration::from_secs(3),
    ) {
        Ok(_) => vec!["FPM logged: server reached pm.max_children setting (1)".to_string()],
        Err(_) => {
            vec!["FPM did not log max_children (its maintenance runs once a second)".to_string()]
        }
    };
    let expect = FaultExpect {
        statuses: &[504],
        min_failed: 4,
        phase: "header",
        outcomes: vec![AttemptOutcome::timed_out()],
        upstream: s.fpm.pool.listen.nginx_addr(),
    };
    Ok(s.finish(lab, Fault::MaxChildrenTimeout, resps, expect, notes, None))
}

/// Cause 4: one FPM worker and listen.backlog = 0 on a unix socket: connect()
/// fails with EAGAIN while the worker is busy (502).
fn max_children_backlog(lab: &Lab) -> Result<FaultRun, RunError> {
    let mut pool = Pool::unix(&lab.prefix, "www", 1);
    pool.pm = Pm::Dynamic(1);
    pool.backlog = Some(0);
    let s = setup(lab, pool, None, None, T, "")?;
    let resps = concurrent(s.port, 5, "/sleep.php?ms=700")?;
    let sock = unix_path(&s.fpm.pool.listen);
    let notes = vec![format!(
        "listen.backlog = 0 on {}; one worker busy 700 ms per request",
        sock.display()
    )];
    let expect = FaultExpect {
        statuses: &[502],
        min_failed: 2,
        phase: "connect",
        outcomes: vec![AttemptOutcome::connect_unix(&sock, 11)],
        upstream: s.fpm.pool.listen.nginx_addr(),
    };
    Ok(s.finish(lab, Fault::MaxChildrenBacklog, resps, expect, notes, None))
}

/// Cause 4 over TCP: one FPM worker and listen.backlog = 0 on 127.0.0.1: the kernel
/// drops SYNs beyond the queue, NGINX's connect times out (504).
fn max_children_tcp_connect_timeout(lab: &Lab) -> Result<FaultRun, RunError> {
    let fport = free_port()?;
    let mut pool = Pool::tcp(&lab.prefix, "www", fport, 1);
    pool.pm = Pm::Dynamic(1);
    pool.backlog = Some(0);
    let s = setup(lab, pool, None, None, Timeouts::new(800, 3000, 6000), "")?;
    let resps = concurrent(s.port, 4, "/sleep.php?ms=1000")?;
    let peer = s.fpm.pool.listen.nginx_addr();
    let notes = vec![format!(
        "listen.backlog = 0 on {peer}: SYNs beyond the queue are dropped; fastcgi_connect_timeout 800ms"
    )];
    let expect = FaultExpect {
        statuses: &[504],
        min_failed: 2,
        phase: "connect",
        outcomes: vec![AttemptOutcome::timed_out()],
        upstream: peer,
    };
    Ok(s.finish(
        lab,
        Fault::MaxChildrenTcpConnectTimeout,
        resps,
        expect,
        notes,
        None,
    ))
}

/// Cause 5: fastcgi_read_timeout 1s, the script sleeps 2.5 s (504).
fn read_timeout(lab: &Lab) -> Result<FaultRun, RunError> {
    let pool = Pool::unix(&lab.prefix, "www", 1);
    let s = setup(lab, pool, None, None, Timeouts::new(2000, 3000, 1000), "")?;
    let resps = vec![client::get(s.port, "/sleep.php?ms=2500")?];
    let notes = vec!["fastcgi_read_timeout 1s, script sleeps 2.5 s".to_string()];
    let expect = FaultExpect {
        statuses: &[504],
        min_failed: 1,
        phase: "header",
        outcomes: vec![AttemptOutcome::timed_out()],
        upstream: s.fpm.pool.listen.nginx_addr(),
    };
    Ok(s.finish(lab, Fault::ReadTimeout, resps, expect, notes, None))
}

/// Cause 6: FPM in a 64 MiB memory cgroup, a script allocates without limit: the
/// kernel OOM-kills the worker mid-request (502).
fn oom_kill(lab: &Lab) -> Result<FaultRun, RunError> {
    // Without a readable kernel log the OOM kill cannot be shown: say so before starting.
    drop(kmsg::mark().map_err(|e| RunError::Unavailable(format!("kernel log not readable: {e}")))?);
    let cg = MemCgroup::create("oom", 64 << 20).map_err(RunError::Unavailable)?;
    let pool = Pool::unix(&lab.prefix, "www", 1).admin("memory_limit", "-1");
    let s = setup(lab, pool, Some(&cg), None, T, "")?;
    let inside = cg.pids();
    if !inside.contains(&s.fpm.master_pid()) {
        return Err(RunError::Failed(format!(
            "FPM master {} is not in {} (procs: {inside:?})",
            s.fpm.master_pid(),
            cg.path.display()
        )));
    }
    let resps = vec![client::get(s.port, "/oom.php")?];
    let log = wait_text(
        &s.fpm.log,
        "exited on signal 9 (SIGKILL)",
        Duration::from_secs(5),
    )?;
    let killed: Vec<u32> = log
        .lines()
        .filter(|l| l.contains("exited on signal 9 (SIGKILL)"))
        .flat_map(pids_in_fpm_log)
        .collect();
    let notes = vec![
        format!(
            "FPM in memory cgroup {} (limit 64 MiB), worker(s) {killed:?} SIGKILLed",
            cg.kernel_path()
        ),
        format!("cgroup oom_kill counter: {:?}", cg.oom_kills()),
    ];
    let expect = FaultExpect {
        statuses: &[502],
        min_failed: 1,
        phase: "header",
        outcomes: vec![
            AttemptOutcome::reset(),
            AttemptOutcome::closed_prematurely(),
        ],
        upstream: s.fpm.pool.listen.nginx_addr(),
    };
    let run = s.finish(lab, Fault::OomKill, resps, expect, notes, Some(&cg));
    // The kernel must show the OOM kill of exactly that worker.
    let kernel = run
        .kernel
        .clone()
        .map_err(|e| RunError::Unavailable(format!("kernel log not readable: {e}")))?;
    let found = killed.iter().any(|pid| {
        kernel
            .iter()
            .any(|l| l.contains(&format!("Killed process {pid} ")) && l.contains("out of memory"))
    });
    if !found {
        return Err(RunError::Failed(format!(
            "kernel log shows no OOM kill of FPM worker(s) {killed:?}:\n{}",
            kernel.join("\n")
        )));
    }
    Ok(run)
}

/// Cause 7: the worker segfaults mid-request (PHP FFI `strlen(NULL)`) (502).
fn segfault(lab: &Lab) -> Result<FaultRun, RunError> {
    let pool = Pool::unix(&lab.prefix, "www", 1).admin("ffi.enable", "1");
    let s = setup(lab, pool, None, None, T, "")?;
    let resps = vec![client::get(s.port, "/segv.php?n=1")?];
    let log = wait_text(
        &s.fpm.log,
        "exited on signal 11 (SIGSEGV",
        Duration::from_secs(5),
    )?;
    let line = log
        .lines()
        .find(|l| l.contains("signal 11"))
        .unwrap_or("")
        .to_string();
    let expect = FaultExpect {
        statuses: &[502],
        min_failed: 1,
        phase: "header",
        outcomes: vec![
            AttemptOutcome::reset(),
            AttemptOutcome::closed_prematurely(),
        ],
        upstream: s.fpm.pool.listen.nginx_addr(),
    };
    let notes = vec![format!("FPM log: {line}")];
    Ok(s.finish(lab, Fault::Segfault, resps, expect, notes, None))
}

impl FaultRun {
    /// Responses that are failures (502/504).
    pub fn failed(&self) -> Vec<&Response> {
        self.responses
            .iter()
            .filter(|r| r.status == 502 || r.status == 504)
            .collect()
    }

    /// Copies the evidence into `dir` (see the module docs for the files).
    pub fn save(&self, lab: &Lab, dir: &Path) -> Result<(), String> {
        save_logs(
            lab,
            dir,
            self.fpm_log.as_deref(),
            self.fpm_conf.as_deref(),
            &self.kernel,
        )?;
        let meta = json!({
            "fault": self.fault.name(),
            "cause": self.fault.cause(),
            "flavour": self.flavour,
            "module_loaded": lab.with_module(),
            "upstream": self.expect.upstream,
            "expected_phase": self.expect.phase,
            "expected_events": self.expect.outcomes.iter().map(|o| o.event).collect::<Vec<_>>(),
            "expected_errnos": self.expect.outcomes.iter().map(|o| o.errno).collect::<Vec<_>>(),
            "fpm_pids": self.fpm_pids,
            "kernel_log": match &self.kernel { Ok(_) => json!("kernel.log"), Err(e) => json!({"unavailable": e}) },
            "notes": self.notes,
            "requests": self.responses.iter().map(|r| json!({
                "target": r.target, "status": r.status, "request_id": r.request_id, "http2": r.http2,
            })).collect::<Vec<_>>(),
        });
        let text =
            serde_json::to_string_pretty(&meta).map_err(|e| format!("scenario.json: {e}"))?;
        std::fs::write(dir.join("scenario.json"), text + "\n")
            .map_err(|e| format!("writing scenario.json: {e}"))
    }
}

/// Copies a lab's evidence into `dir`: `nginx-error.log`, `nginx-access.log`,
/// `gatelog.jsonl`, `php-fpm.log` (from `fpm_log`), `nginx.conf`, the FPM config
/// under its own name (`php-fpm-<pool>.conf`), and `kernel.log` (the given lines;
/// not written when the kernel log could not be read).
pub fn save_logs(
    lab: &Lab,
    dir: &Path,
    fpm_log: Option<&Path>,
    fpm_conf: Option<&Path>,
    kernel: &Result<Vec<String>, String>,
) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
    let copy = |from: &Path, to: &str| -> Result<(), String> {
        if from.exists() {
            std::fs::copy(from, dir.join(to))
                .map_err(|e| format!("copy {} to {}: {e}", from.display(), dir.display()))?;
        }
        Ok(())
    };
    copy(&lab.prefix.path("logs/error.log"), "nginx-error.log")?;
    copy(&lab.prefix.path("logs/access.log"), "nginx-access.log")?;
    copy(&lab.records_path(), "gatelog.jsonl")?;
    if let Some(l) = fpm_log {
        copy(l, "php-fpm.log")?;
    }
    // The configs, for the analyzer's fixes (socket paths, pool settings, timeouts).
    copy(&lab.prefix.path("conf/nginx.conf"), "nginx.conf")?;
    if let Some(c) = fpm_conf {
        let name = c
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "php-fpm.conf".into());
        copy(c, &name)?;
    }
    if let Ok(k) = kernel {
        let mut text = k.join("\n");
        if !text.is_empty() {
            text.push('\n');
        }
        std::fs::write(dir.join("kernel.log"), text)
            .map_err(|e| format!("writing kernel.log: {e}"))?;
    }
    Ok(())
}

/// Checks a run: every failed request's NGINX error-log line is the expected one
/// (the fault was really injected), and — with the module — it has exactly one record
/// whose fields match, whose errno equals the errno NGINX printed for the same
/// `*conn`; requests that did not fail have none.
pub fn verify(lab: &Lab, run: &FaultRun) -> TestResult {
    let failed = run.failed();
    let mut errs = Errors::default();
    check_statuses(run, &failed, &mut errs);
    let all: Vec<&Response> = run.responses.iter().collect();
    let access = check::wait_access(
        &lab.prefix.path("logs/access.log"),
        &all,
        Duration::from_secs(5),
    )?;
    let entries = errlog::read(&lab.prefix.path("logs/error.log"));
    let fails_by_rid = errlog_failures_by_request(run, &failed, &access, &entries, &mut errs);
    errs.into_result()?;
    if !lab.with_module() {
        return Ok(TestOutcome::Skipped(no_module_reason(&format!(
            "fault injected and NGINX logged {:?} for {} request(s)",
            run.expect
                .outcomes
                .iter()
                .map(|o| &o.message)
                .collect::<Vec<_>>(),
            failed.len()
        ))));
    }
    let recs = records::wait_for(&lab.records_path(), failed.len(), Duration::from_secs(5))?;
    let mut errs = Errors::default();
    for r in &run.responses {
        let mine = records::by_request_id(&recs, &r.request_id);
        match fails_by_rid.get(&r.request_id) {
            None if !mine.is_empty() => errs.push(format!(
                "{} answered {} but has a record: {}",
                r.target, r.status, mine[0]
            )),
            None => {}
            Some(_) if mine.len() != 1 => errs.push(format!(
                "{} (status {}, request id {}) must have exactly one record, found {}",
                r.target,
                r.status,
                r.request_id,
                mine.len()
            )),
            Some(fails) => errs.check(check::check_record(
                mine[0],
                r,
                &access[&r.request_id],
                Some(fails),
                check::worker_pid_for(&entries, access[&r.request_id].conn),
                &record_expect(run, r),
            )),
        }
    }
    if recs.len() != failed.len() {
        errs.push(format!(
            "{} record(s) written for {} failed request(s):\n{}",
            recs.len(),
            failed.len(),
            recs.iter()
                .map(|r| r.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        ));
    }
    errs.into_result()?;
    Ok(TestOutcome::Passed)
}

/// Every request answered 200 or an expected failure status, and enough failed.
fn check_statuses(run: &FaultRun, failed: &[&Response], errs: &mut Errors) {
    let x = &run.expect;
    for r in &run.responses {
        if !(r.status == 200 || x.statuses.contains(&r.status)) {
            errs.push(format!(
                "{} answered {}; expected 200 or {:?}",
                r.target, r.status, x.statuses
            ));
        }
    }
    if failed.len() < x.min_failed {
        errs.push(format!(
            "{} of {} requests failed, expected at least {} (statuses {:?})",
            failed.len(),
            run.responses.len(),
            x.min_failed,
            run.responses.iter().map(|r| r.status).collect::<Vec<_>>()
        ));
    }
}

/// Each failed request's failure entries in NGINX's error log (one of the expected
/// outcomes), by request id: the proof the fault was injected.
fn errlog_failures_by_request<'e>(
    run: &FaultRun,
    failed: &[&Response],
    access: &HashMap<String, AccessLine>,
    entries: &'e [ErrorLogEntry],
    errs: &mut Errors,
) -> HashMap<String, Vec<&'e ErrorLogEntry>> {
    let mut fails_by_rid = HashMap::new();
    for r in failed {
        match check::errlog_failures(entries, &access[&r.request_id], &run.expect.outcomes) {
            Ok(f) => {
                fails_by_rid.insert(r.request_id.clone(), f);
            }
            Err(e) => errs.push(e),
        }
    }
    fails_by_rid
}

/// The record a failed request must have: one failed attempt to the upstream, and
/// for a 504 at least the timeout of the phase that timed out.
fn record_expect(run: &FaultRun, r: &Response) -> RecordExpect {
    let x = &run.expect;
    let mut rx = RecordExpect::one_attempt(
        r,
        run.port,
        &x.upstream,
        Some(run.timeouts),
        AttemptExpect::failed(&x.upstream, x.phase, x.outcomes.clone(), r.status),
    );
    if r.status == 504 {
        rx.min_request_time_ms = match x.phase {
            "connect" => run.timeouts.connect,
            "send" => run.timeouts.send,
            _ => run.timeouts.read,
        };
    }
    rx
}

/// Runs `fault` on `flavour` in a fresh lab and leaves the evidence in `dir`
/// (for analyzer end-to-end tests). Returns the run.
pub fn run_to_dir(fault: Fault, flavour: &Flavour, dir: &Path) -> Result<FaultRun, RunError> {
    let lab = Lab::new(flavour, fault.name())?;
    let run = run(fault, &lab)?;
    // Records are written in the log phase: wait for the access log (same phase).
    let all: Vec<&Response> = run.responses.iter().collect();
    check::wait_access(
        &lab.prefix.path("logs/access.log"),
        &all,
        Duration::from_secs(5),
    )?;
    if lab.with_module() {
        let _ = records::wait_for(
            &lab.records_path(),
            run.failed().len(),
            Duration::from_secs(5),
        );
    }
    run.save(&lab, dir)?;
    Ok(run)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_fault_has_its_own_name_and_a_cause() {
        let mut names: Vec<&str> = Fault::ALL.iter().map(|f| f.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Fault::ALL.len(), "two faults share a name");
        for f in Fault::ALL {
            assert_eq!(Fault::by_name(f.name()), Some(f));
            assert!((1..=7).contains(&f.cause()), "{f:?}");
            assert!(
                f.name().starts_with(&format!("cause{}_", f.cause())),
                "{f:?}"
            );
        }
    }
}
