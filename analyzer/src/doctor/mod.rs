//! `gatelog doctor`: the live checks an operator runs in the middle of an incident,
//! done right. It reads the configuration in force (NGINX and every FPM), checks
//! every FastCGI target NGINX passes to (the socket, its permissions for NGINX's
//! worker user, a real connect() as that user), every pool (master and workers,
//! status page, accept queue, memory), the timeouts, and the recent history (OOM
//! kills and crashes of FPM workers, FPM's warnings, the gatelog module and its
//! records), and says what is wrong with the cause slug `analyze` uses, the evidence
//! and the fix with this host's values. Read-only: it writes nothing on the host.
//!
//! One file per family of checks: [`host`] (configs), [`targets`], [`pools`],
//! [`timeouts`], [`history`]; the system facts they use: [`users`], [`perms`],
//! [`connect`], [`sockets`], [`procs`], [`fastcgi`]; output: [`render`].

pub mod connect;
pub mod fastcgi;
pub mod finding;
pub mod history;
pub mod host;
pub mod perms;
pub mod pools;
pub mod procs;
pub mod render;
pub mod sockets;
pub mod targets;
pub mod timeouts;
pub mod users;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};

use crate::context::PoolConf;
use crate::model::Peer;
use crate::time::{parse_user_time, EpochMs, Zone};

use finding::Findings;
use host::{FpmSide, NginxFrom, NginxSide};
use procs::{Proc, Procs};
use sockets::{TcpListen, UnixListen};
use users::Account;

/// Output formats of the doctor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DoctorFormat {
    Text,
    Json,
}

/// `gatelog doctor` arguments.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// NGINX config: the main file (read through its includes), a saved `nginx -T`
    /// output, or `-` for `nginx -T` output on standard input. Default: run
    /// `nginx -T`.
    #[arg(long = "nginx-conf", value_name = "PATH|-")]
    pub nginx_conf: Option<PathBuf>,
    /// PHP-FPM config: php-fpm.conf or a pool file (read through `include=`), a
    /// saved `php-fpm -tt` output, or `-` for standard input; repeatable. Default:
    /// `php-fpm -tt` of every installed FPM.
    #[arg(long = "fpm-conf", value_name = "PATH|-")]
    pub fpm_conf: Vec<PathBuf>,
    /// The NGINX binary for `-T` and `-V` (default: the one running the config,
    /// else `nginx` in PATH or /usr/sbin).
    #[arg(long = "nginx-bin", value_name = "PATH")]
    pub nginx_bin: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: DoctorFormat,
    /// Recent history from this time: a duration back from now (`90m`, `2h`,
    /// `1d`), RFC 3339, `YYYY-MM-DD HH:MM:SS` (local time) or epoch seconds.
    #[arg(long, value_name = "TIME", default_value = "1h")]
    pub since: String,
    /// How long a connect() or the status page may take, in milliseconds.
    #[arg(long = "timeout-ms", value_name = "MS", default_value = "2000",
          value_parser = clap::value_parser!(u64).range(1..=60_000))]
    pub timeout_ms: u64,
    /// RAM for the pm.max_children formula (default: MemTotal, or the memory
    /// cgroup limit FPM runs under).
    #[arg(long = "ram-mb", value_name = "MB", value_parser = clap::value_parser!(u64).range(1..=1 << 30))]
    pub ram_mb: Option<u64>,
    /// Memory reserved for everything but PHP (default: a quarter of RAM; none in a
    /// memory cgroup).
    #[arg(long = "reserved-mb", value_name = "MB", value_parser = clap::value_parser!(u64).range(0..=1 << 30))]
    pub reserved_mb: Option<u64>,
}

/// Exit statuses.
pub const EXIT_HEALTHY: i32 = 0;
pub const EXIT_PROBLEMS: i32 = 3;
pub const EXIT_USAGE: i32 = 2;
pub const EXIT_CANNOT_RUN: i32 = 1;

/// One pool as configured and as running.
#[derive(Debug)]
pub struct PoolRef<'a> {
    pub side: &'a FpmSide,
    pub conf: &'a PoolConf,
    pub master: Option<&'a Proc>,
    /// How the master was found (pid file, config in its title).
    pub master_how: String,
    pub workers: Vec<&'a Proc>,
}

impl PoolRef<'_> {
    pub fn name(&self) -> &str {
        &self.conf.pool.name
    }

    pub fn listen(&self) -> Option<Peer> {
        self.conf.listen()
    }

    /// `file:line` of a setting, or of the pool's file when unset.
    pub fn place(&self, key: &str) -> String {
        self.conf
            .place_of(key)
            .unwrap_or_else(|| self.conf.file.to_string())
    }
}

/// Everything the checks share.
pub struct Doctor {
    pub timeout: Duration,
    pub now: EpochMs,
    pub since: EpochMs,
    pub zone: Zone,
    pub root: bool,
    pub me: Option<Account>,
    pub nginx: Option<NginxSide>,
    pub fpm: Vec<FpmSide>,
    pub procs: Procs,
    /// NGINX's worker user and how it is known.
    pub worker: Option<Account>,
    pub worker_source: String,
    /// The NGINX master running this config, and its workers.
    pub nginx_master: Option<Proc>,
    pub nginx_workers: Vec<Proc>,
    pub unix: Result<Vec<UnixListen>, String>,
    pub tcp: Result<Vec<TcpListen>, String>,
    pub ram_mb: Option<u64>,
    pub reserved_mb: Option<u64>,
    pub findings: Findings,
}

impl Doctor {
    /// Every configured pool with its running processes.
    pub fn pools(&self) -> Vec<PoolRef<'_>> {
        let mut out = Vec::new();
        for side in &self.fpm {
            let (master, how) = find_master(side, &self.procs);
            for conf in &side.pools {
                let workers = master
                    .map(|m| {
                        self.procs
                            .children(m.pid)
                            .filter(|c| c.fpm_pool() == Some(conf.pool.name.as_str()))
                            .collect()
                    })
                    .unwrap_or_default();
                out.push(PoolRef {
                    side,
                    conf,
                    master,
                    master_how: how.clone(),
                    workers,
                });
            }
        }
        out
    }

    /// The listening unix socket at `path`, if any.
    pub fn unix_listener(&self, path: &str) -> Option<&UnixListen> {
        let canon = std::fs::canonicalize(path).ok();
        self.unix.as_ref().ok()?.iter().find(|l| {
            l.path == path
                || canon
                    .as_deref()
                    .is_some_and(|c| std::fs::canonicalize(&l.path).ok().as_deref() == Some(c))
        })
    }

    /// The listening TCP socket a connection to `peer` reaches, if any.
    pub fn tcp_listener(&self, peer: &Peer) -> Option<&TcpListen> {
        let (host, port) = peer.as_str().rsplit_once(':')?;
        let port: u16 = port.parse().ok()?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        self.tcp.as_ref().ok()?.iter().find(|l| {
            l.port == port
                && (l.ip.is_unspecified()
                    || l.ip.to_string() == host
                    || (l.ip.is_loopback()
                        && matches!(host, "localhost" | "127.0.0.1" | "::1" | "*")))
        })
    }

    /// The memory figures for the formula.
    pub fn memory(&self, master: Option<&Proc>) -> Option<Memory> {
        if let Some(r) = self.ram_mb {
            return Some(Memory {
                ram_mb: r,
                reserved_mb: self.reserved_mb.unwrap_or(r / 4),
                ram_is: "--ram-mb".into(),
            });
        }
        if let Some((kb, file)) = master.and_then(|m| procs::cgroup_memory_limit_kb(m.pid)) {
            return Some(Memory {
                ram_mb: kb / 1024,
                reserved_mb: self.reserved_mb.unwrap_or(0),
                ram_is: format!("memory cgroup limit ({file})"),
            });
        }
        let mb = procs::mem_total_kb()? / 1024;
        Some(Memory {
            ram_mb: mb,
            reserved_mb: self.reserved_mb.unwrap_or(mb / 4),
            ram_is: "MemTotal (/proc/meminfo)".into(),
        })
    }
}

/// The memory the pm.max_children formula divides among the workers.
pub struct Memory {
    pub ram_mb: u64,
    pub reserved_mb: u64,
    /// Where the RAM figure comes from (`--ram-mb`, a cgroup limit, MemTotal).
    pub ram_is: String,
}

/// The running master of an FPM config: by its pid file, else by the config named
/// in its title.
fn find_master<'a>(side: &FpmSide, procs: &'a Procs) -> (Option<&'a Proc>, String) {
    if let Some(pid_file) = side.global("pid") {
        if let Ok(text) = std::fs::read_to_string(pid_file) {
            if let Some(p) = text
                .trim()
                .parse::<u32>()
                .ok()
                .and_then(|pid| procs.get(pid))
            {
                if p.fpm_master_config().is_some() {
                    return (Some(p), format!("pid file {pid_file}"));
                }
            }
        }
    }
    if let Some(conf) = &side.config {
        let canon = std::fs::canonicalize(conf).unwrap_or_else(|_| conf.clone());
        for m in procs.fpm_masters() {
            let Some(c) = m.fpm_master_config() else {
                continue;
            };
            let c = std::fs::canonicalize(c).unwrap_or_else(|_| PathBuf::from(c));
            if c == canon {
                return (Some(m), format!("process title names {}", conf.display()));
            }
        }
    }
    (None, String::new())
}

/// `--since`: a duration back from `now`, or a time.
pub fn parse_since(s: &str, now: EpochMs, zone: &Zone) -> Option<EpochMs> {
    let t = s.trim();
    if let Some(num) = t
        .strip_suffix('m')
        .map(|n| (n, 60_000))
        .or_else(|| t.strip_suffix('h').map(|n| (n, 3_600_000)))
        .or_else(|| t.strip_suffix('d').map(|n| (n, 86_400_000)))
        .or_else(|| t.strip_suffix('s').map(|n| (n, 1_000)))
    {
        if let Ok(n) = num.0.parse::<i64>() {
            return Some(now.minus_ms(n.saturating_mul(num.1)));
        }
    }
    parse_user_time(t, zone)
}

/// The NGINX master that runs `conf` (its title holds `-c CONF`, or no `-c` when
/// it is the build's default config).
fn find_nginx_master(
    procs: &Procs,
    conf: Option<&Path>,
    default_conf: Option<&Path>,
) -> Option<Proc> {
    let canon = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    let want = conf.map(canon);
    let default = default_conf.map(canon);
    procs
        .nginx_masters()
        .find(|m| {
            let args: Vec<&str> = m
                .nginx_master_args()
                .unwrap_or("")
                .split_whitespace()
                .collect();
            let c = args
                .iter()
                .position(|a| *a == "-c")
                .and_then(|i| args.get(i + 1))
                .map(|c| canon(Path::new(c)));
            match (&want, c) {
                (Some(w), Some(c)) => *w == c,
                (Some(w), None) => Some(w) == default.as_ref(),
                (None, _) => true,
            }
        })
        .cloned()
}

/// Reads the configs and the system state; Err: exit status and message.
fn gather(args: &DoctorArgs) -> Result<Doctor, (i32, String)> {
    let zone = Zone::from_flag(None).map_err(|e| (EXIT_CANNOT_RUN, e))?;
    let now = EpochMs(jiff::Timestamp::now().as_millisecond());
    let since = checked_since(args, now, &zone)?;
    let procs = Procs::scan();
    let mut findings = Findings::default();
    let nginx = read_nginx_side(args, &procs, &mut findings)?;
    let fpm = read_fpm_sides(args, &procs, &mut findings)?;
    if nginx.as_ref().and_then(|n| n.conf.as_ref()).is_none()
        && fpm.iter().all(|f| f.pools.is_empty())
    {
        return Err((EXIT_CANNOT_RUN, no_config_read(&findings)));
    }
    let default_conf = nginx
        .as_ref()
        .and_then(|n| n.build.as_ref())
        .and_then(|b| b.conf_path.clone());
    let nginx_master = find_nginx_master(
        &procs,
        nginx.as_ref().and_then(|n| n.conf_path.as_deref()),
        default_conf.as_deref(),
    );
    let nginx_workers: Vec<Proc> = nginx_master
        .as_ref()
        .map(|m| {
            procs
                .children(m.pid)
                .filter(|c| c.is_nginx_worker())
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let worker = nginx_worker_user(nginx.as_ref(), &nginx_workers, &mut findings);
    let unix = sockets::unix_listeners();
    if let Err(e) = &unix {
        findings.unchecked("listening unix sockets (sock_diag)", e.clone());
    }
    let tcp = sockets::tcp_listeners();
    if let Err(e) = &tcp {
        findings.unchecked("listening TCP sockets (/proc/net/tcp)", e.clone());
    }
    Ok(Doctor {
        timeout: Duration::from_millis(args.timeout_ms),
        now,
        since,
        zone,
        root: users::euid() == 0,
        me: users::process_account(std::process::id()),
        nginx,
        fpm,
        procs,
        worker_source: worker
            .as_ref()
            .map_or_else(String::new, |w| w.known_from.clone()),
        worker: worker.map(|w| w.account),
        nginx_master,
        nginx_workers,
        unix,
        tcp,
        ram_mb: args.ram_mb,
        reserved_mb: args.reserved_mb,
        findings,
    })
}

/// The window's start from `--since`, after checking the arguments that can be
/// wrong together.
fn checked_since(args: &DoctorArgs, now: EpochMs, zone: &Zone) -> Result<EpochMs, (i32, String)> {
    let since = parse_since(&args.since, now, zone).ok_or_else(|| {
        (
            EXIT_USAGE,
            format!(
                "--since {:?}: not a duration (90m, 2h, 1d) or a time (RFC 3339, YYYY-MM-DD HH:MM:SS, epoch seconds)",
                args.since
            ),
        )
    })?;
    let stdin_uses = usize::from(args.nginx_conf.as_deref() == Some(Path::new("-")))
        + args
            .fpm_conf
            .iter()
            .filter(|p| p.as_os_str() == "-")
            .count();
    if stdin_uses > 1 {
        return Err((
            EXIT_USAGE,
            "only one of --nginx-conf and --fpm-conf can be `-` (standard input)".into(),
        ));
    }
    Ok(since)
}

/// NGINX: the binary (given, the one running the config, in PATH), its build and
/// its configuration. A config given but unreadable stops the doctor.
fn read_nginx_side(
    args: &DoctorArgs,
    procs: &Procs,
    findings: &mut Findings,
) -> Result<Option<NginxSide>, (i32, String)> {
    let running_bin = |p: &Proc| std::fs::read_link(format!("/proc/{}/exe", p.pid)).ok();
    let given_conf = args.nginx_conf.as_deref().filter(|p| *p != Path::new("-"));
    let pre_master = find_nginx_master(procs, given_conf, None);
    let nginx_bin = args
        .nginx_bin
        .clone()
        .or_else(|| pre_master.as_ref().and_then(running_bin))
        .or_else(|| host::find_binary("nginx"));
    let build = match &nginx_bin {
        Some(b) => match host::nginx_build(b) {
            Ok(b) => Some(b),
            Err(e) => {
                findings.unchecked("nginx -V", e);
                None
            }
        },
        None => {
            findings.unchecked(
                "nginx -V",
                "no nginx binary found (give it with --nginx-bin)",
            );
            None
        }
    };
    let from = match (&args.nginx_conf, &nginx_bin) {
        (Some(p), _) if p.as_os_str() == "-" => Some(NginxFrom::Stdin),
        (Some(p), _) => Some(NginxFrom::File(p)),
        (None, Some(b)) => Some(NginxFrom::Dump(b)),
        (None, None) => None,
    };
    match from {
        Some(f) => match host::read_nginx(f, build) {
            Ok(side) => Ok(Some(side)),
            Err(e) if args.nginx_conf.is_some() => Err((EXIT_CANNOT_RUN, e)),
            Err(e) => {
                findings.unchecked("NGINX configuration", e);
                Ok(None)
            }
        },
        None => {
            findings.unchecked(
                "NGINX configuration",
                "no nginx binary to run `nginx -T` (give --nginx-conf or --nginx-bin)",
            );
            Ok(None)
        }
    }
}

/// FPM: the given configs, else `-tt` of every installed binary.
fn read_fpm_sides(
    args: &DoctorArgs,
    procs: &Procs,
    findings: &mut Findings,
) -> Result<Vec<FpmSide>, (i32, String)> {
    let mut fpm = Vec::new();
    if !args.fpm_conf.is_empty() {
        for p in &args.fpm_conf {
            fpm.push(host::read_fpm_file(p, procs).map_err(|e| (EXIT_CANNOT_RUN, e))?);
        }
        return Ok(fpm);
    }
    let bins = host::fpm_binaries();
    if bins.is_empty() {
        findings.unchecked(
            "PHP-FPM configuration",
            "no php-fpm binary found in /usr/sbin, /usr/local/sbin or PATH (give --fpm-conf)",
        );
    }
    for b in bins {
        match host::read_fpm_dump(&b) {
            Ok(side) => fpm.push(side),
            Err(e) => findings.unchecked(format!("{} -tt", b.display()), e),
        }
    }
    Ok(fpm)
}

/// Why the doctor cannot run: no configuration read, with what was tried.
fn no_config_read(findings: &Findings) -> String {
    let why: Vec<String> = findings
        .unchecked
        .iter()
        .map(|u| format!("{}: {}", u.check, u.reason))
        .collect();
    format!(
        "no NGINX or PHP-FPM configuration could be read{}",
        if why.is_empty() {
            String::new()
        } else {
            format!(" ({})", why.join("; "))
        }
    )
}

/// NGINX's worker user and how it is known.
struct WorkerUser {
    account: Account,
    known_from: String,
}

/// Who NGINX's workers are: the running workers' real credentials, else the
/// `user` directive, else the build's default.
fn nginx_worker_user(
    nginx: Option<&NginxSide>,
    workers: &[Proc],
    findings: &mut Findings,
) -> Option<WorkerUser> {
    if let Some(w) = workers.first() {
        if let Some(account) = users::process_account(w.pid) {
            return Some(WorkerUser {
                account,
                known_from: format!("running NGINX worker {}", w.pid),
            });
        }
    }
    let user_line = nginx
        .and_then(|n| n.conf.as_ref())
        .and_then(|c| c.user.as_ref());
    if let Some(d) = user_line {
        return match users::nginx_account(d.arg(), d.args.get(1).map(String::as_str)) {
            Ok(account) => Some(WorkerUser {
                account,
                known_from: format!("{} ({})", d.text(), d.place()),
            }),
            Err(e) => {
                findings.unchecked(
                    "NGINX worker user",
                    format!("{} ({}): {e}", d.text(), d.place()),
                );
                None
            }
        };
    }
    let b = nginx.and_then(|n| n.build.as_ref())?;
    let user = b.user.clone().unwrap_or_else(|| "nobody".into());
    match users::nginx_account(&user, b.group.as_deref()) {
        Ok(account) => Some(WorkerUser {
            account,
            known_from: format!("no `user` line: the build's default user {user}"),
        }),
        Err(e) => {
            findings.unchecked("NGINX worker user", e);
            None
        }
    }
}

/// Runs the doctor; returns the exit status.
pub fn main(args: &DoctorArgs, out: &mut dyn Write) -> i32 {
    let mut d = match gather(args) {
        Ok(d) => d,
        Err((code, msg)) => {
            eprintln!("gatelog doctor: {msg}");
            return code;
        }
    };
    let targets = targets::check(&mut d);
    let pools = pools::check(&mut d);
    timeouts::check(&mut d);
    history::check(&mut d);
    let report = render::DoctorReport::new(&d, targets, pools);
    let written = match args.format {
        DoctorFormat::Text => render::text(&report, out),
        DoctorFormat::Json => render::json(&report, out),
    };
    if let Err(e) = written.and_then(|_| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            return report.exit_code();
        }
        eprintln!("gatelog doctor: writing the report: {e}");
        return EXIT_CANNOT_RUN;
    }
    report.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_values() {
        let z = Zone::utc();
        let now = EpochMs(1_775_139_797_000);
        assert_eq!(parse_since("1h", now, &z), Some(now.minus_ms(3_600_000)));
        assert_eq!(parse_since("90m", now, &z), Some(now.minus_ms(5_400_000)));
        assert_eq!(parse_since("2d", now, &z), Some(now.minus_ms(172_800_000)));
        assert_eq!(
            parse_since("2026-04-02 14:00:00", now, &z),
            Some(EpochMs(1_775_138_400_000))
        );
        assert_eq!(parse_since("soon", now, &z), None);
    }
}
