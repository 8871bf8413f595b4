//! Running a real php8.2-fpm (master + pool) on a private prefix.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::env::PHP_FPM;
use crate::nginx::read_or_empty;
use crate::prefix::Prefix;
use crate::proc::{children_of, ProcGuard};

/// Where the pool listens.
#[derive(Debug, Clone)]
pub enum Listen {
    Unix(PathBuf),
    Tcp(u16),
}

impl Listen {
    /// As written in `fastcgi_pass` (and in `$upstream_addr`).
    pub fn nginx_addr(&self) -> String {
        match self {
            Listen::Unix(p) => format!("unix:{}", p.display()),
            Listen::Tcp(port) => format!("127.0.0.1:{port}"),
        }
    }
}

/// Process manager settings.
#[derive(Debug, Clone)]
pub enum Pm {
    Static(u32),
    /// `pm = dynamic` with everything = max (FPM logs "server reached
    /// pm.max_children setting" when saturated, unlike static).
    Dynamic(u32),
}

/// One pool (one FPM master per pool, so a test can stop or kill it alone).
#[derive(Debug, Clone)]
pub struct Pool {
    pub name: String,
    pub listen: Listen,
    pub pm: Pm,
    pub backlog: Option<i32>,
    pub owner: String,
    pub group: String,
    pub mode: String,
    /// `php_admin_value[k] = v`.
    pub admin_values: Vec<(String, String)>,
    pub request_terminate_timeout: Option<String>,
    /// Other pool lines `k = v` (`pm.status_path`, ...).
    pub settings: Vec<(String, String)>,
}

impl Pool {
    /// A static pool of `children` workers on a unix socket `run/<name>.sock`, socket
    /// www-data:www-data 0660, workers as www-data.
    pub fn unix(prefix: &Prefix, name: &str, children: u32) -> Pool {
        Pool {
            name: name.to_string(),
            listen: Listen::Unix(prefix.path(&format!("run/{name}.sock"))),
            pm: Pm::Static(children),
            backlog: None,
            owner: "www-data".into(),
            group: "www-data".into(),
            mode: "0660".into(),
            admin_values: Vec::new(),
            request_terminate_timeout: None,
            settings: Vec::new(),
        }
    }

    /// A static pool on 127.0.0.1:`port`.
    pub fn tcp(prefix: &Prefix, name: &str, port: u16, children: u32) -> Pool {
        let mut p = Pool::unix(prefix, name, children);
        p.listen = Listen::Tcp(port);
        p
    }

    pub fn admin(mut self, k: &str, v: &str) -> Pool {
        self.admin_values.push((k.to_string(), v.to_string()));
        self
    }

    /// Adds a pool line `k = v`.
    pub fn set(mut self, k: &str, v: &str) -> Pool {
        self.settings.push((k.to_string(), v.to_string()));
        self
    }

    fn render(&self, prefix: &Prefix) -> String {
        let p = prefix.root().display();
        let listen = match &self.listen {
            Listen::Unix(path) => path.display().to_string(),
            Listen::Tcp(port) => format!("127.0.0.1:{port}"),
        };
        let pm = match self.pm {
            Pm::Static(n) => format!("pm = static\npm.max_children = {n}\n"),
            Pm::Dynamic(n) => format!(
                "pm = dynamic\npm.max_children = {n}\npm.start_servers = {n}\npm.min_spare_servers = {n}\npm.max_spare_servers = {n}\n"
            ),
        };
        let mut s = format!(
            "[global]\npid = {p}/run/php-fpm-{name}.pid\nerror_log = {p}/logs/php-fpm-{name}.log\nlog_level = notice\ndaemonize = no\n\n\
             [{name}]\nuser = www-data\ngroup = www-data\nlisten = {listen}\nlisten.owner = {owner}\nlisten.group = {group}\nlisten.mode = {mode}\n\
             {pm}catch_workers_output = yes\ndecorate_workers_output = yes\nchdir = /\nclear_env = yes\n\
             php_admin_flag[log_errors] = on\nphp_admin_value[display_errors] = off\n",
            name = self.name,
            owner = self.owner,
            group = self.group,
            mode = self.mode,
        );
        if let Some(b) = self.backlog {
            s.push_str(&format!("listen.backlog = {b}\n"));
        }
        if let Some(t) = &self.request_terminate_timeout {
            s.push_str(&format!("request_terminate_timeout = {t}\n"));
        }
        for (k, v) in &self.admin_values {
            s.push_str(&format!("php_admin_value[{k}] = {v}\n"));
        }
        for (k, v) in &self.settings {
            s.push_str(&format!("{k} = {v}\n"));
        }
        s
    }
}

/// A running php-fpm8.2 master with its pool, killed with all its workers when dropped.
#[derive(Debug)]
pub struct Fpm {
    proc: ProcGuard,
    pub pool: Pool,
    pub log: PathBuf,
    pub conf: PathBuf,
}

impl Fpm {
    /// Starts php-fpm8.2 -F -y CONF and waits for "ready to handle connections". With
    /// `cgroup_procs`, the master joins that cgroup (its `cgroup.procs` file) before
    /// exec, so the master and every worker run inside it.
    pub fn start(prefix: &Prefix, pool: Pool, cgroup_procs: Option<&Path>) -> Result<Fpm, String> {
        let conf = prefix.write(
            &format!("conf/php-fpm-{}.conf", pool.name),
            &pool.render(prefix),
            0o644,
        )?;
        let log = prefix.path(&format!("logs/php-fpm-{}.log", pool.name));
        Fpm::launch(prefix, pool, conf, log, cgroup_procs)
    }

    /// Starts php-fpm8.2 -F -y `conf` with a config the test wrote itself (e.g. a
    /// Debian-layout `php-fpm.conf` with `include=`); `pool` says where it listens
    /// and how many workers to wait for, `log` is its `error_log`.
    pub fn start_conf(prefix: &Prefix, pool: Pool, conf: &Path, log: &Path) -> Result<Fpm, String> {
        Fpm::launch(prefix, pool, conf.to_path_buf(), log.to_path_buf(), None)
    }

    fn launch(
        prefix: &Prefix,
        pool: Pool,
        conf: PathBuf,
        log: PathBuf,
        cgroup_procs: Option<&Path>,
    ) -> Result<Fpm, String> {
        let mut cmd = Command::new(PHP_FPM);
        cmd.arg("-F").arg("-y").arg(&conf);
        if let Some(procs) = cgroup_procs {
            let path = std::ffi::CString::new(procs.as_os_str().as_encoded_bytes())
                .map_err(|_| "cgroup path contains NUL".to_string())?;
            // SAFETY: the closure runs in the child between fork and exec and only
            // calls async-signal-safe functions (getpid, open, write, close) on
            // memory prepared before fork.
            unsafe {
                cmd.pre_exec(move || {
                    let fd = libc::open(path.as_ptr(), libc::O_WRONLY);
                    if fd < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    let mut buf = [0u8; 16];
                    let mut n = libc::getpid() as u32;
                    let mut i = buf.len();
                    loop {
                        i -= 1;
                        buf[i] = b'0' + (n % 10) as u8;
                        n /= 10;
                        if n == 0 {
                            break;
                        }
                    }
                    let len = buf.len() - i;
                    let rc = libc::write(fd, buf[i..].as_ptr() as *const libc::c_void, len);
                    libc::close(fd);
                    if rc < 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let mut proc = ProcGuard::spawn(
            &format!("php-fpm ({})", pool.name),
            cmd,
            &prefix.path(&format!("logs/php-fpm-{}.stdio", pool.name)),
        )?;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(st) = proc.exited() {
                return Err(format!(
                    "php-fpm ({}) exited at start-up with {st}:\n{}\n{}",
                    pool.name,
                    read_or_empty(&prefix.path(&format!("logs/php-fpm-{}.stdio", pool.name))),
                    read_or_empty(&log)
                ));
            }
            if read_or_empty(&log).contains("ready to handle connections") {
                break;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "php-fpm ({}) not ready after 15s:\n{}",
                    pool.name,
                    read_or_empty(&log)
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // "ready" is logged before the workers of a static pool are all forked.
        let want = match pool.pm {
            Pm::Static(n) | Pm::Dynamic(n) => n as usize,
        };
        while children_of(proc.pid()).len() < want && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(Fpm {
            proc,
            pool,
            log,
            conf,
        })
    }

    pub fn master_pid(&self) -> u32 {
        self.proc.pid()
    }

    /// The current worker pids.
    pub fn worker_pids(&self) -> Vec<u32> {
        children_of(self.proc.pid())
    }

    /// Stops FPM cleanly (SIGTERM, as `systemctl stop` does): "Terminating ...",
    /// "exiting, bye-bye!", the unix socket file is removed.
    pub fn stop_clean(&mut self) -> Result<(), String> {
        self.proc.signal(libc::SIGTERM)?;
        self.proc.wait_exit(Duration::from_secs(10))?;
        self.proc.kill_all();
        Ok(())
    }

    /// SIGKILLs the master and all its workers at once (a crash of the whole
    /// service: the unix socket file is left behind, nothing listens on it).
    pub fn kill9(&mut self) {
        self.proc.kill_all();
    }

    /// The FPM error log so far.
    pub fn log_text(&self) -> String {
        read_or_empty(&self.log)
    }
}
