//! Running a real NGINX on a private prefix.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::env::Flavour;
use crate::net::wait_tcp;
use crate::prefix::Prefix;
use crate::proc::ProcGuard;
use crate::valgrind;

/// The log format of the access log every test gets: it maps a request id to the
/// connection number NGINX prints as `*N` (works with and without the module).
pub const ACCESS_FORMAT: &str = "e2e";

/// What goes into nginx.conf besides the fixed frame.
#[derive(Debug, Clone)]
pub struct NginxConf {
    /// Absolute path of the module, or None for no `load_module`.
    pub load_module: Option<PathBuf>,
    /// Main `error_log` level (`info` so that everything NGINX says is kept).
    pub error_log_level: String,
    /// Extra main-context directives.
    pub main_extra: String,
    /// The content of `http {}` after the fixed part (servers, upstreams, gatelog).
    pub http: String,
    /// `master_process off`: one process serves and reloads itself on SIGHUP. Its error
    /// log is then stderr (which the harness writes to `logs/error.log`): after a reload
    /// NGINX keeps logging through the old configuration's log for the connections it
    /// still serves, and a log file the reload closed would be a reused descriptor.
    pub single_process: bool,
    /// `worker_processes` (1 unless a test needs several, e.g. shared counters).
    pub worker_processes: u32,
}

impl NginxConf {
    pub fn new(load_module: Option<PathBuf>, http: String) -> NginxConf {
        NginxConf {
            load_module,
            error_log_level: "info".into(),
            main_extra: String::new(),
            http,
            single_process: false,
            worker_processes: 1,
        }
    }

    /// The whole nginx.conf for `prefix`.
    pub fn render(&self, prefix: &Prefix) -> String {
        let p = prefix.root().display();
        let load = match &self.load_module {
            Some(m) => format!("load_module {};\n", m.display()),
            None => String::new(),
        };
        format!(
            r#"{load}user www-data;
worker_processes {workers};
master_process {master};
daemon off;
pid {p}/run/nginx.pid;
error_log {error_log} {level};
{main_extra}
events {{
    worker_connections 1024;
}}

http {{
    log_format {fmt} 'rid=$request_id conn=$connection status=$status request="$request" upstream_addr="$upstream_addr" upstream_status="$upstream_status"';
    access_log {p}/logs/access.log {fmt};
    client_body_temp_path {p}/tmp/client_body;
    proxy_temp_path {p}/tmp/proxy;
    fastcgi_temp_path {p}/tmp/fastcgi;
    uwsgi_temp_path {p}/tmp/uwsgi;
    scgi_temp_path {p}/tmp/scgi;
    default_type text/plain;
    keepalive_timeout 5s;

{http}
}}
"#,
            level = self.error_log_level,
            workers = self.worker_processes,
            master = if self.single_process { "off" } else { "on" },
            error_log = if self.single_process {
                "stderr".to_string()
            } else {
                format!("{p}/logs/error.log")
            },
            main_extra = self.main_extra,
            fmt = ACCESS_FORMAT,
            http = self.http,
        )
    }
}

/// A `server {}` block listening on 127.0.0.1:`port` with the test's `www` root and a
/// `X-Request-Id` response header on every answer (also NGINX's own 502/504 pages), so
/// a client knows the `$request_id` of what it sent. `listen_params` is appended to
/// the listen directive (e.g. ` http2` on 1.22).
pub fn server_block(prefix: &Prefix, port: u16, listen_params: &str, body: &str) -> String {
    format!(
        r#"    server {{
        listen 127.0.0.1:{port}{listen_params};
        server_name e2e.test;
        root {www};
        add_header X-Request-Id $request_id always;
{body}
    }}
"#,
        www = prefix.path("www").display(),
    )
}

/// Writes the FastCGI params file every PHP location includes and returns its path.
pub fn write_fastcgi_params(prefix: &Prefix) -> Result<PathBuf, String> {
    prefix.write(
        "conf/fastcgi_params",
        r#"fastcgi_param SCRIPT_FILENAME   $document_root$fastcgi_script_name;
fastcgi_param SCRIPT_NAME       $fastcgi_script_name;
fastcgi_param QUERY_STRING      $query_string;
fastcgi_param REQUEST_METHOD    $request_method;
fastcgi_param CONTENT_TYPE      $content_type;
fastcgi_param CONTENT_LENGTH    $content_length;
fastcgi_param REQUEST_URI       $request_uri;
fastcgi_param DOCUMENT_URI      $document_uri;
fastcgi_param DOCUMENT_ROOT     $document_root;
fastcgi_param SERVER_PROTOCOL   $server_protocol;
fastcgi_param GATEWAY_INTERFACE CGI/1.1;
fastcgi_param SERVER_SOFTWARE   nginx;
fastcgi_param REMOTE_ADDR       $remote_addr;
fastcgi_param REMOTE_PORT       $remote_port;
fastcgi_param SERVER_ADDR       $server_addr;
fastcgi_param SERVER_PORT       $server_port;
fastcgi_param SERVER_NAME       $server_name;
"#,
        0o644,
    )
}

/// Output of `nginx -t`.
#[derive(Debug, Clone)]
pub struct TestOutput {
    pub success: bool,
    pub code: Option<i32>,
    pub output: String,
}

fn base_args(prefix: &Prefix, conf: &Path) -> Vec<String> {
    vec![
        "-p".into(),
        format!("{}/", prefix.root().display()),
        "-c".into(),
        conf.display().to_string(),
        "-e".into(),
        prefix.path("logs/startup.log").display().to_string(),
    ]
}

/// Writes `conf` to `conf/<name>` and runs `nginx -t` on it.
pub fn nginx_t(
    flavour: &Flavour,
    prefix: &Prefix,
    name: &str,
    conf: &str,
) -> Result<TestOutput, String> {
    flavour.check_binary()?;
    let path = prefix.write(&format!("conf/{name}"), conf, 0o644)?;
    let tag = format!("t-{}", name.trim_end_matches(".conf"));
    let mut cmd = if valgrind::enabled() {
        valgrind::command(&flavour.binary, &prefix.path("logs"), &tag)
    } else {
        Command::new(&flavour.binary)
    };
    let out = cmd
        .arg("-t")
        .args(base_args(prefix, &path))
        .output()
        .map_err(|e| format!("running {} -t: {e}", flavour.binary.display()))?;
    if valgrind::enabled() {
        eprintln!("{}", valgrind::check(&prefix.path("logs"), &tag)?);
    }
    let mut output = String::from_utf8_lossy(&out.stderr).into_owned();
    output.push_str(&String::from_utf8_lossy(&out.stdout));
    Ok(TestOutput {
        success: out.status.success(),
        code: out.status.code(),
        output,
    })
}

/// A running NGINX (master + one worker), killed with its whole process group when
/// dropped.
#[derive(Debug)]
pub struct Nginx {
    proc: ProcGuard,
    pub flavour: Flavour,
    pub conf_path: PathBuf,
    pub error_log: PathBuf,
    pub access_log: PathBuf,
    prefix_root: PathBuf,
    /// Runs under valgrind (memcheck mode).
    memcheck: bool,
}

impl Nginx {
    /// Writes nginx.conf, starts NGINX and waits until every port in `ports` accepts
    /// connections and the worker process is up.
    pub fn start(
        flavour: &Flavour,
        prefix: &Prefix,
        conf: &NginxConf,
        ports: &[u16],
    ) -> Result<Nginx, String> {
        let text = conf.render(prefix);
        let conf_path = prefix.write("conf/nginx.conf", &text, 0o644)?;
        Nginx::launch(flavour, prefix, &conf_path, ports, conf.single_process)
    }

    /// Starts NGINX with a config file the test wrote itself (e.g. a Debian-layout
    /// tree reached through `include`) and waits as [`Nginx::start`] does. Its
    /// `error_log` must be `logs/error.log` of the prefix.
    pub fn start_file(
        flavour: &Flavour,
        prefix: &Prefix,
        conf_path: &Path,
        ports: &[u16],
    ) -> Result<Nginx, String> {
        Nginx::launch(flavour, prefix, conf_path, ports, false)
    }

    /// `single_process`: the configuration says `master_process off` and logs to stderr
    /// (see [`NginxConf::single_process`]).
    fn launch(
        flavour: &Flavour,
        prefix: &Prefix,
        conf_path: &Path,
        ports: &[u16],
        single_process: bool,
    ) -> Result<Nginx, String> {
        flavour.check_binary()?;
        let conf_path = conf_path.to_path_buf();
        let text = read_or_empty(&conf_path);
        let memcheck = valgrind::enabled();
        let mut cmd = if memcheck {
            valgrind::command(&flavour.binary, &prefix.path("logs"), "nginx")
        } else {
            Command::new(&flavour.binary)
        };
        cmd.args(base_args(prefix, &conf_path));
        // Memcheck makes start-up (and everything else) many times slower.
        let slow = if memcheck { 6 } else { 1 };
        let stdio = if single_process {
            "logs/error.log"
        } else {
            "logs/nginx.stdio"
        };
        let mut proc = ProcGuard::spawn("nginx", cmd, &prefix.path(stdio))?;
        let nginx = Nginx {
            flavour: flavour.clone(),
            conf_path,
            error_log: prefix.path("logs/error.log"),
            access_log: prefix.path("logs/access.log"),
            prefix_root: prefix.root().to_path_buf(),
            memcheck,
            proc: {
                // Wait for the listening sockets, watching for an early exit.
                let deadline = std::time::Instant::now() + Duration::from_secs(15 * slow);
                for &port in ports {
                    loop {
                        if let Some(st) = proc.exited() {
                            return Err(format!(
                                "nginx ({}) exited at start-up with {st}:\n{}\n{}\nconfig:\n{text}",
                                flavour.name,
                                read_or_empty(&prefix.path("logs/nginx.stdio")),
                                read_or_empty(&prefix.path("logs/error.log")),
                            ));
                        }
                        if wait_tcp(port, Duration::from_millis(50)) {
                            break;
                        }
                        if std::time::Instant::now() > deadline {
                            return Err(format!(
                                "nginx ({}) does not listen on {port}",
                                flavour.name
                            ));
                        }
                    }
                }
                proc
            },
        };
        let mut nginx = nginx;
        if !single_process {
            nginx.wait_worker()?;
        }
        Ok(nginx)
    }

    fn wait_worker(&mut self) -> Result<(), String> {
        let slow = if self.memcheck { 6 } else { 1 };
        let deadline = std::time::Instant::now() + Duration::from_secs(10 * slow);
        while std::time::Instant::now() < deadline {
            if let Some(st) = self.proc.exited() {
                return Err(format!(
                    "nginx ({}) exited at start-up with {st} (port taken?):\n{}\n{}",
                    self.flavour.name,
                    read_or_empty(&self.prefix_root.join("logs/nginx.stdio")),
                    read_or_empty(&self.error_log),
                ));
            }
            if !crate::proc::children_of(self.proc.pid()).is_empty() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err("nginx worker process did not start".into())
    }

    /// The master's pid.
    pub fn master_pid(&self) -> u32 {
        self.proc.pid()
    }

    /// The worker pids.
    pub fn worker_pids(&self) -> Vec<u32> {
        crate::proc::children_of(self.proc.pid())
    }

    /// `nginx -s reopen` (SIGUSR1 through the pid file, as logrotate does).
    pub fn reopen(&self) -> Result<(), String> {
        self.signal_cmd("reopen")
    }

    /// `nginx -s reload` (SIGHUP through the pid file).
    pub fn reload(&self) -> Result<(), String> {
        self.signal_cmd("reload")
    }

    fn signal_cmd(&self, what: &str) -> Result<(), String> {
        let out = Command::new(&self.flavour.binary)
            .args([
                "-p",
                &format!("{}/", self.prefix_root.display()),
                "-c",
                &self.conf_path.display().to_string(),
                "-e",
                &self
                    .prefix_root
                    .join("logs/startup.log")
                    .display()
                    .to_string(),
                "-s",
                what,
            ])
            .output()
            .map_err(|e| format!("nginx -s {what}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "nginx -s {what} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    /// Graceful stop (SIGQUIT): workers finish and flush their buffers.
    pub fn quit(&mut self) -> Result<(), String> {
        self.proc.signal(libc::SIGQUIT)?;
        let slow = if self.memcheck { 6 } else { 1 };
        self.proc
            .wait_exit(Duration::from_secs(10 * slow))
            .map(|_| ())
    }
}

impl Drop for Nginx {
    /// In memcheck mode: a graceful stop (so memcheck checks the exit paths and leaks),
    /// then the logs are read, and an error in a gatelog frame fails the test (a panic
    /// here reaches the test runner, or the thread that ran this NGINX).
    fn drop(&mut self) {
        if !self.memcheck {
            return;
        }
        if self.proc.exited().is_none() && self.proc.signal(libc::SIGQUIT).is_ok() {
            let _ = self.proc.wait_exit(Duration::from_secs(60));
        }
        // The worker writes its leak report after the master saw it exit; the
        // process group is gone once every report is written.
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while crate::proc::group_alive(self.proc.pid()) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        match valgrind::check(&self.prefix_root.join("logs"), "nginx") {
            Ok(summary) => eprintln!("{summary}"),
            Err(e) if !std::thread::panicking() => panic!("{e}"),
            Err(e) => eprintln!("{e}"),
        }
    }
}

pub(crate) fn read_or_empty(p: &Path) -> String {
    std::fs::read(p)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}
