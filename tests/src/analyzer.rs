//! The analyzer end to end: runs the real `gatelog analyze` (built from this
//! workspace) on the evidence a fault scenario left, and checks its report against
//! what was injected.
//!
//! - [`binary`] builds `target/release/gatelog` once per test process (`cargo build
//!   --release -p gatelog-analyzer`, a no-op when it is fresh) or takes the binary named
//!   by `GATELOG_E2E_ANALYZER`. A missing or unbuildable analyzer is a failure of every
//!   analyzer test, never a skip.
//! - [`Inputs`] are the three ways a report is asked for: the module's records (with
//!   the FPM log, the kernel log and the configs), NGINX's plain error log (with the FPM
//!   and kernel logs, no records, no configs), and the whole evidence directory.
//! - [`ReportExpect`] is one failed request as the client and NGINX's access log saw it,
//!   with the cause that was injected; [`check_report`] asserts that the report has
//!   it exactly once, with that cause, and evidence that exists in the files.

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::client::Response;
use crate::env::workspace_root;
use crate::errlog;
use crate::records;
use crate::schema::{self, Schema};

/// Environment variable naming an analyzer binary to use instead of building one.
pub const ANALYZER_ENV: &str = "GATELOG_E2E_ANALYZER";

/// How to get the analyzer when it is missing.
pub const BUILD_HINT: &str =
    "build it with `cargo build --release -p gatelog-analyzer` (scripts/setup does)";

/// The cause slugs; index = the cause number of the troubleshooting guide (0 = unknown).
pub const SLUGS: [&str; 8] = [
    "unknown",
    "fpm-not-running",
    "socket-permission-denied",
    "wrong-socket-path",
    "max-children-exhausted",
    "read-timeout",
    "worker-oom-killed",
    "invalid-response",
];

/// The slug of cause `n` (1-7).
pub fn slug(n: u8) -> &'static str {
    SLUGS.get(n as usize).copied().unwrap_or("unknown")
}

/// Words every fix of a cause must contain (any one of them, case-insensitive): the
/// remedy of the troubleshooting guide.
pub fn fix_words(cause: &str) -> &'static [&'static str] {
    match cause {
        "fpm-not-running" => &["systemctl start", "start php-fpm", "start the"],
        "socket-permission-denied" => &["listen.owner", "listen.mode"],
        "wrong-socket-path" => &["fastcgi_pass"],
        "max-children-exhausted" => &["pm.max_children"],
        "read-timeout" => &["fastcgi_read_timeout"],
        "worker-oom-killed" => &["memory_limit", "memory"],
        "invalid-response" => &["crash", "signal", "segfault", "core"],
        _ => &[],
    }
}

/// `<target>/` of the running test binary (`<target>/<profile>/deps/<exe>`), else
/// `$CARGO_TARGET_DIR`, else the workspace's `target/`.
fn target_dir() -> PathBuf {
    let from_exe = std::env::current_exe().ok().and_then(|exe| {
        let deps = exe.parent()?;
        if deps.file_name()? != "deps" {
            return None;
        }
        Some(deps.parent()?.parent()?.to_path_buf())
    });
    from_exe
        .or_else(|| std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from))
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// The analyzer binary, built once per process (see the module docs).
pub fn binary() -> Result<PathBuf, String> {
    static BIN: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    BIN.get_or_init(build).clone()
}

fn build() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os(ANALYZER_ENV).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!(
                "{ANALYZER_ENV}={} is not a file; unset it to build the analyzer, or {BUILD_HINT}",
                p.display()
            ))
        };
    }
    let target = target_dir();
    let bin = target.join("release/gatelog");
    let cargo = std::env::var_os("CARGO")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("cargo"));
    let started = Instant::now();
    let out = Command::new(&cargo)
        .current_dir(workspace_root())
        .args([
            "build",
            "--release",
            "-p",
            "gatelog-analyzer",
            "--bin",
            "gatelog",
        ])
        .arg("--target-dir")
        .arg(&target)
        .stdin(Stdio::null())
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let took = started.elapsed();
            if took > Duration::from_secs(5) {
                eprintln!(
                    "\n*** built the analyzer ({}) in {took:.1?} for the analyzer tests\n",
                    bin.display()
                );
            }
        }
        Ok(o) => {
            return Err(format!(
                "building the analyzer failed ({}):\n{}\n(the analyzer tests run `{} build --release -p gatelog-analyzer`; {BUILD_HINT})",
                o.status,
                tail(&String::from_utf8_lossy(&o.stderr), 6000),
                cargo.display()
            ))
        }
        Err(e) => {
            if !bin.is_file() {
                return Err(format!(
                    "the analyzer {} does not exist and cargo ({}) cannot be run to build it: {e}; {BUILD_HINT}",
                    bin.display(),
                    cargo.display()
                ));
            }
            eprintln!(
                "\n*** WARNING: cannot run cargo ({e}) to rebuild the analyzer; using {} as it is\n",
                bin.display()
            );
        }
    }
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!(
            "the analyzer {} does not exist after building it; {BUILD_HINT}",
            bin.display()
        ))
    }
}

/// One run of `gatelog`.
#[derive(Debug, Clone)]
pub struct GatelogRun {
    /// The arguments after `gatelog` (for messages).
    pub args: Vec<String>,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl GatelogRun {
    /// The command line, for messages.
    pub fn command(&self) -> String {
        format!("gatelog {}", self.args.join(" "))
    }

    /// Exit status 0 and stdout parsed as JSON.
    pub fn json(&self) -> Result<Value, String> {
        if self.code != Some(0) {
            return Err(format!(
                "`{}` exited with {:?} (expected 0):\n{}",
                self.command(),
                self.code,
                tail(&self.stderr, 4000)
            ));
        }
        serde_json::from_str(&self.stdout).map_err(|e| {
            format!(
                "`{}` did not print one JSON document ({e}):\n{}",
                self.command(),
                tail(&self.stdout, 4000)
            )
        })
    }
}

/// Runs `gatelog ARGS` in `cwd` (killed after 60 s).
pub fn run(args: &[OsString], cwd: &Path) -> Result<GatelogRun, String> {
    let bin = binary()?;
    let shown: Vec<String> = args
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mut child = Command::new(&bin)
        .args(args)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting {}: {e}", bin.display()))?;
    let mut so = child.stdout.take().expect("piped stdout");
    let mut se = child.stderr.take().expect("piped stderr");
    let t_out = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = so.read_to_end(&mut b);
        b
    });
    let t_err = std::thread::spawn(move || {
        let mut b = Vec::new();
        let _ = se.read_to_end(&mut b);
        b
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`gatelog {}` ran longer than 60 s",
                    shown.join(" ")
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => return Err(format!("waiting for gatelog: {e}")),
        }
    };
    let stdout = String::from_utf8_lossy(&t_out.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&t_err.join().unwrap_or_default()).into_owned();
    Ok(GatelogRun {
        args: shown,
        code: status.code(),
        stdout,
        stderr,
    })
}

/// `gatelog analyze --format FORMAT` + `rest`.
pub fn analyze(format: &str, rest: Vec<OsString>, cwd: &Path) -> Result<GatelogRun, String> {
    let mut args: Vec<OsString> = vec!["analyze".into(), "--format".into(), format.into()];
    args.extend(rest);
    run(&args, cwd)
}

/// What the analyzer is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inputs {
    /// The module's records + the FPM log + the kernel log + nginx.conf + the FPM
    /// config, every kind detected from the content.
    Records,
    /// NGINX's error log + the FPM log + the kernel log, with explicit flags
    /// (`--nginx-log`, `--fpm-log`, `--kernel-log`): no records, no configs.
    ErrorLog,
    /// The evidence directory as it is (records, error and access logs, FPM and
    /// kernel logs, configs, scenario.json): a request is in three inputs and must be
    /// reported once.
    Directory,
}

impl Inputs {
    pub const ALL: [Inputs; 3] = [Inputs::Records, Inputs::ErrorLog, Inputs::Directory];

    pub fn name(self) -> &'static str {
        match self {
            Inputs::Records => "records+fpm+kernel+configs",
            Inputs::ErrorLog => "error-log+fpm+kernel",
            Inputs::Directory => "whole directory",
        }
    }

    pub fn has_records(self) -> bool {
        self != Inputs::ErrorLog
    }

    pub fn has_configs(self) -> bool {
        self != Inputs::ErrorLog
    }

    /// The arguments after `--format X`.
    pub fn args(self, dir: &Path) -> Vec<OsString> {
        let f = |n: &str| dir.join(n).into_os_string();
        match self {
            Inputs::Records => {
                let mut v = vec![f("gatelog.jsonl"), f("php-fpm.log")];
                if dir.join("kernel.log").exists() {
                    v.push(f("kernel.log"));
                }
                v.extend(config_files(dir).into_iter().map(PathBuf::into_os_string));
                v
            }
            Inputs::ErrorLog => {
                let mut v = vec![
                    "--nginx-log".into(),
                    f("nginx-error.log"),
                    "--fpm-log".into(),
                    f("php-fpm.log"),
                ];
                if dir.join("kernel.log").exists() {
                    v.push("--kernel-log".into());
                    v.push(f("kernel.log"));
                }
                v
            }
            Inputs::Directory => vec![dir.as_os_str().to_owned()],
        }
    }

    /// `seen_in` every failure must have.
    fn seen_in(self) -> &'static [&'static str] {
        match self {
            Inputs::Records => &["record"],
            Inputs::ErrorLog => &["error_log"],
            // The e2e access log has no time field, so it cannot be joined by time:
            // only the record and the error-log lines must be merged.
            Inputs::Directory => &["record", "error_log"],
        }
    }

    /// These inputs of the evidence directory `dir` as a [`Given`].
    pub fn given(self, dir: &Path) -> Given {
        let mut g = Given::new(self.name());
        g.seen_in = self.seen_in().to_vec();
        g.has_records = self.has_records();
        g.has_configs = self.has_configs();
        match self {
            Inputs::Directory => g.dir(dir, expected_kind),
            _ => {
                let args = self.args(dir);
                let mut it = args.into_iter().peekable();
                while let Some(a) = it.next() {
                    let a = PathBuf::from(a);
                    let flag = a.to_string_lossy().strip_prefix("--").map(str::to_string);
                    match flag {
                        Some(flag) => {
                            let Some(path) = it.next().map(PathBuf::from) else {
                                break;
                            };
                            let kind = path
                                .file_name()
                                .and_then(|n| expected_kind(&n.to_string_lossy()))
                                .unwrap_or("");
                            g = g.flag(&flag, &path, kind);
                        }
                        None => {
                            let kind = a
                                .file_name()
                                .and_then(|n| expected_kind(&n.to_string_lossy()))
                                .unwrap_or("");
                            g = g.file(&a, kind);
                        }
                    }
                }
                g
            }
        }
    }
}

/// What the report must say about one file given to the analyzer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileKind {
    /// Read as this kind (`nginx-error`, `fpm`, ...).
    Is(&'static str),
    /// Read, as any kind: a stream that mixes NGINX and FPM lines.
    Any,
    /// Not a log or config: listed in `skipped`.
    Skipped,
}

/// One file of a [`Given`].
#[derive(Debug, Clone)]
pub struct GivenFile {
    pub path: PathBuf,
    pub kind: FileKind,
    /// `detected_by` values accepted for it.
    pub by: Vec<&'static str>,
    /// A framing its `framings` must count lines for (`rfc3339-timestamp`, ...).
    pub framing: Option<&'static str>,
    /// Kinds its `lines_by_kind` must count lines for (a mixed stream: both sides).
    pub line_kinds: Vec<&'static str>,
}

/// One way of asking for a report: the arguments, and what the report must say
/// about each input and each failure's joins.
#[derive(Debug, Clone)]
pub struct Given {
    /// For messages (`[name] ...`).
    pub name: String,
    /// The arguments after `--format X`.
    pub args: Vec<OsString>,
    pub files: Vec<GivenFile>,
    /// Sources every failure must be `seen_in`.
    pub seen_in: Vec<&'static str>,
    /// Records are among the inputs: every failure must carry its `request_id`.
    pub has_records: bool,
    /// Configs are among the inputs: `fix_mentions_with_conf` apply.
    pub has_configs: bool,
    /// The logs are re-framed (docker, compose, syslog): an evidence text may be
    /// the end of its file's line (the line without the carrier's prefix).
    pub framed: bool,
}

impl Given {
    pub fn new(name: &str) -> Given {
        Given {
            name: name.to_string(),
            args: Vec::new(),
            files: Vec::new(),
            seen_in: Vec::new(),
            has_records: false,
            has_configs: false,
            framed: false,
        }
    }

    /// `--<flag> <path>`: read as `kind` (empty: any kind), `detected_by` "flag".
    pub fn flag(mut self, flag: &str, path: &Path, kind: &'static str) -> Given {
        self.args.push(format!("--{flag}").into());
        self.args.push(path.as_os_str().to_owned());
        self.files.push(GivenFile {
            path: path.to_path_buf(),
            kind: if kind.is_empty() {
                FileKind::Any
            } else {
                FileKind::Is(kind)
            },
            by: vec!["flag"],
            framing: None,
            line_kinds: Vec::new(),
        });
        self
    }

    /// A file whose kind the analyzer must detect: read as `kind` (empty: any kind),
    /// `detected_by` "content" (or "name" for an empty file).
    pub fn file(mut self, path: &Path, kind: &'static str) -> Given {
        let empty = std::fs::metadata(path)
            .map(|m| m.len() == 0)
            .unwrap_or(true);
        self.args.push(path.as_os_str().to_owned());
        self.files.push(GivenFile {
            path: path.to_path_buf(),
            kind: if kind.is_empty() {
                FileKind::Any
            } else {
                FileKind::Is(kind)
            },
            by: if empty {
                vec!["content", "name"]
            } else {
                vec!["content"]
            },
            framing: None,
            line_kinds: Vec::new(),
        });
        self
    }

    /// A directory: each file in it must be read as `kind_of(name)`, or skipped
    /// where that is None.
    pub fn dir(mut self, dir: &Path, kind_of: fn(&str) -> Option<&'static str>) -> Given {
        self.args.push(dir.as_os_str().to_owned());
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
            .map(|rd| rd.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        paths.sort();
        for p in paths {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let empty = std::fs::metadata(&p).map(|m| m.len() == 0).unwrap_or(true);
            self.files.push(GivenFile {
                kind: match kind_of(&name) {
                    Some(k) => FileKind::Is(k),
                    None => FileKind::Skipped,
                },
                by: if empty {
                    vec!["content", "name"]
                } else {
                    vec!["content"]
                },
                path: p,
                framing: None,
                line_kinds: Vec::new(),
            });
        }
        self
    }

    /// The file added last must be reported with lines in `framing`.
    pub fn framing(mut self, framing: &'static str) -> Given {
        if let Some(f) = self.files.last_mut() {
            f.framing = Some(framing);
        }
        self
    }

    /// The file added last must have lines of each of `kinds` in `lines_by_kind`.
    pub fn line_kinds(mut self, kinds: &[&'static str]) -> Given {
        if let Some(f) = self.files.last_mut() {
            f.line_kinds = kinds.to_vec();
        }
        self
    }

    /// Extra arguments that name no input (`--since X`, `--tz Y`).
    pub fn arg(mut self, a: &str) -> Given {
        self.args.push(a.into());
        self
    }

    pub fn seen_in(mut self, v: &[&'static str]) -> Given {
        self.seen_in = v.to_vec();
        self
    }

    pub fn records(mut self) -> Given {
        self.has_records = true;
        self
    }

    pub fn configs(mut self) -> Given {
        self.has_configs = true;
        self
    }

    pub fn framed(mut self) -> Given {
        self.framed = true;
        self
    }
}

/// nginx.conf and php-fpm-*.conf in `dir`.
pub fn config_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| {
                    let n = p.file_name().map(|n| n.to_string_lossy().into_owned());
                    n.is_some_and(|n| {
                        n == "nginx.conf" || (n.starts_with("php-fpm") && n.ends_with(".conf"))
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The kind the analyzer must detect for a file of the evidence directory (None:
/// it must skip it).
pub fn expected_kind(name: &str) -> Option<&'static str> {
    match name {
        "gatelog.jsonl" => Some("records"),
        "nginx-error.log" => Some("nginx-error"),
        "nginx-access.log" => Some("nginx-access"),
        "php-fpm.log" => Some("fpm"),
        "kernel.log" => Some("kernel"),
        "nginx.conf" => Some("nginx-conf"),
        n if n.starts_with("php-fpm") && n.ends_with(".conf") => Some("fpm-conf"),
        _ => None,
    }
}

/// A request the client sent, with what the analyzer must say about it.
#[derive(Debug, Clone)]
pub struct Sent {
    pub response: Response,
    /// The injected cause when the request failed (None: it must have answered 200).
    pub cause: Option<&'static str>,
    /// Unix ms: the phase the request belongs to started and ended.
    pub window: (i64, i64),
    /// The phase, for messages.
    pub phase: String,
    /// (source, text) the failure's evidence must contain (on top of the generic checks).
    pub cite: Vec<(&'static str, String)>,
    /// Text the fix must contain, whatever the inputs.
    pub fix_mentions: Vec<String>,
    /// Text the fix must contain when the configs are among the inputs.
    pub fix_mentions_with_conf: Vec<String>,
    /// The report's `upstream_protocol` (None: not checked).
    pub protocol: Option<&'static str>,
    /// The reason must contain one of these (case-insensitive; empty: not checked).
    pub reason_any: Vec<String>,
    /// The reason or the fix must contain one of these (empty: not checked).
    pub mention_any: Vec<String>,
    /// Neither the reason nor the fix may contain any of these (case-sensitive).
    pub forbid: Vec<String>,
}

impl Sent {
    pub fn new(
        response: Response,
        cause: Option<&'static str>,
        window: (i64, i64),
        phase: &str,
    ) -> Sent {
        Sent {
            response,
            cause,
            window,
            phase: phase.to_string(),
            cite: Vec::new(),
            fix_mentions: Vec::new(),
            fix_mentions_with_conf: Vec::new(),
            protocol: None,
            reason_any: Vec::new(),
            mention_any: Vec::new(),
            forbid: Vec::new(),
        }
    }
}

/// One failure the report must contain.
#[derive(Debug, Clone)]
pub struct ReportExpect {
    pub request_id: String,
    pub conn: u64,
    pub status: u16,
    pub request: String,
    pub cause: &'static str,
    pub window: (i64, i64),
    pub phase: String,
    pub cite: Vec<(&'static str, String)>,
    pub fix_mentions: Vec<String>,
    pub fix_mentions_with_conf: Vec<String>,
    pub protocol: Option<&'static str>,
    pub reason_any: Vec<String>,
    pub mention_any: Vec<String>,
    pub forbid: Vec<String>,
}

/// The failures the report must contain: every 502/504 line of `access_log`, which
/// must be exactly the requests the client saw fail (and the requests that were
/// meant to fail).
pub fn expectations(access_log: &Path, sent: &[Sent]) -> Result<Vec<ReportExpect>, String> {
    let access = errlog::read_access(access_log);
    let mut errs = Vec::new();
    let mut out = Vec::new();
    for s in sent {
        let r = &s.response;
        let want_fail = s.cause.is_some();
        let failed = r.status == 502 || r.status == 504;
        if want_fail != failed {
            errs.push(format!(
                "[{}] {} answered {} (expected {}): the fault was not injected as planned",
                s.phase,
                r.target,
                r.status,
                if want_fail { "502/504" } else { "200" }
            ));
        }
        let Some(a) = access.get(&r.request_id) else {
            errs.push(format!(
                "[{}] {} (request id {}) has no access-log line",
                s.phase, r.target, r.request_id
            ));
            continue;
        };
        if a.status != r.status {
            errs.push(format!(
                "[{}] {}: the client saw {}, the access log says {}",
                s.phase, r.target, r.status, a.status
            ));
        }
        if let (true, Some(cause)) = (failed, s.cause) {
            out.push(ReportExpect {
                request_id: r.request_id.clone(),
                conn: a.conn,
                status: a.status,
                request: a.request.clone(),
                cause,
                window: s.window,
                phase: s.phase.clone(),
                cite: s.cite.clone(),
                fix_mentions: s.fix_mentions.clone(),
                fix_mentions_with_conf: s.fix_mentions_with_conf.clone(),
                protocol: s.protocol,
                reason_any: s.reason_any.clone(),
                mention_any: s.mention_any.clone(),
                forbid: s.forbid.clone(),
            });
        }
    }
    let fails_in_log = access
        .values()
        .filter(|a| a.status == 502 || a.status == 504)
        .count();
    if fails_in_log != out.len() && errs.is_empty() {
        errs.push(format!(
            "the access log has {fails_in_log} 502/504 line(s) but {} request(s) were sent to fail",
            out.len()
        ));
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(errs.join("\n"))
    }
}

/// docs/gatelog.report.v2.schema.json, compiled once.
pub fn report_schema() -> Result<&'static Schema, String> {
    schema::docs(schema::REPORT)
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

/// A failure of the report, described for a message: cause, confidence, reason,
/// evidence lines.
pub fn describe(f: &Value) -> String {
    let mut out = format!(
        "analyzer said {} (confidence {}, status {}, conn {}, request_id {}, time {}): {}\n      evidence:",
        s(f, "cause"),
        f.get("confidence").unwrap_or(&Value::Null),
        f.get("status").unwrap_or(&Value::Null),
        f.get("conn").unwrap_or(&Value::Null),
        f.get("request_id").unwrap_or(&Value::Null),
        s(f, "time"),
        s(f, "reason"),
    );
    for e in f
        .get("evidence")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        out.push_str(&format!(
            "\n        {} {}:{}  {}",
            s(e, "source"),
            s(e, "file"),
            e.get("line").unwrap_or(&Value::Null),
            tail_chars(s(e, "text"), 300)
        ));
    }
    out.push_str(&format!("\n      fix: {}", s(f, "fix")));
    out
}

fn tail_chars(t: &str, n: usize) -> String {
    if t.chars().count() <= n {
        t.to_string()
    } else {
        format!("{}…", t.chars().take(n).collect::<String>())
    }
}

/// Reads files once for the evidence checks.
#[derive(Default)]
struct Files(HashMap<PathBuf, Option<Vec<String>>>);

impl Files {
    fn line(&mut self, path: &Path, n: u64) -> Option<String> {
        let lines = self.0.entry(path.to_path_buf()).or_insert_with(|| {
            std::fs::read(path).ok().map(|b| {
                String::from_utf8_lossy(&b)
                    .lines()
                    .map(str::to_string)
                    .collect()
            })
        });
        let i = usize::try_from(n).ok()?.checked_sub(1)?;
        lines.as_ref()?.get(i).cloned()
    }
}

/// Whether evidence `text` (cut at 600 bytes with `…`, a multi-line entry joined
/// with `\n`) is the file's line `line`.
fn evidence_matches(text: &str, line: &str, framed: bool) -> bool {
    let first = text.split('\n').next().unwrap_or("");
    // A coloured line (docker compose) may be cited without its colour codes.
    if framed && line.contains('\x1b') {
        let plain = strip_ansi(line);
        if plain != line && evidence_matches(text, &plain, true) {
            return true;
        }
    }
    // A config line may be cited without its indentation.
    match (first.strip_suffix('…'), framed) {
        (Some(cut), false) => line.starts_with(cut) || line.trim_start().starts_with(cut),
        (None, false) => first == line || (!first.is_empty() && first == line.trim()),
        // A re-framed line: the text may be what follows the carrier's prefix.
        (Some(cut), true) => !cut.is_empty() && line.contains(cut),
        (None, true) => !first.is_empty() && line.ends_with(first),
    }
}

/// `line` without ANSI CSI sequences (`ESC [ ... final byte`), as a terminal shows it.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' && chars.peek() == Some(&'[') {
            chars.next();
            // Parameters and intermediates, then one final byte in @..~.
            for d in chars.by_ref() {
                if ('@'..='~').contains(&d) {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The pid in FPM's `child N exited ...` line.
fn fpm_child_pid(text: &str) -> Option<u32> {
    let rest = text.split("child ").nth(1)?;
    if !rest.contains("exited") {
        return None;
    }
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// The pid in a kernel line that names a process (`Killed process N`,
/// `php-fpm8.2[N]: segfault`, `pid=N`).
fn kernel_pid(text: &str) -> Option<u32> {
    let num =
        |s: &str| -> Option<u32> { s.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok() };
    if let Some(r) = text.split("Killed process ").nth(1) {
        return num(r);
    }
    if let Some(i) = text.find("]: segfault") {
        let head = &text[..i];
        return num(head.rsplit('[').next()?);
    }
    if let Some(r) = text.split(",pid=").nth(1) {
        return num(r);
    }
    None
}

/// Unix ms of an FPM log line's `[23-Nov-2026 22:16:50]` (local time), if any.
pub fn fpm_line_ms(text: &str) -> Option<i64> {
    crate::clock::fpm_line_ms(text)
}

/// Checks a JSON report against the expected failures; returns every problem
/// (misclassifications described with the analyzer's reason and evidence).
pub fn check_report(
    report: &Value,
    inputs: Inputs,
    dir: &Path,
    expect: &[ReportExpect],
) -> Vec<String> {
    check_given_report(report, &inputs.given(dir), dir, expect)
}

/// Checks a JSON report asked for with `given` against the expected failures;
/// evidence files are relative to `dir` (or absolute).
pub fn check_given_report(
    report: &Value,
    given: &Given,
    dir: &Path,
    expect: &[ReportExpect],
) -> Vec<String> {
    let tag = given.name.as_str();
    let mut errs = Vec::new();
    check_report_schema(report, tag, &mut errs);
    let whole = inline_shared(report, tag, &mut errs);
    let report = &whole;
    check_inputs(report, given, &mut errs);
    let seen = match_failures(report, given, dir, expect, &mut errs);
    check_each_reported_once(tag, expect, &seen, &mut errs);
    check_totals(report, tag, expect, &mut errs);
    errs
}

/// The report with each failure whole: its `reason`, `fix` and `evidence` are
/// indexes into the report's `reasons`, `fixes` and `lines`, put back in place here
/// (an index that names no entry is an error).
fn inline_shared(report: &Value, tag: &str, errs: &mut Vec<String>) -> Value {
    let mut whole = report.clone();
    let table = |name: &str| report[name].as_array().cloned().unwrap_or_default();
    let (reasons, fixes, lines) = (table("reasons"), table("fixes"), table("lines"));
    let Some(failures) = whole.get_mut("failures").and_then(Value::as_array_mut) else {
        return whole;
    };
    for (k, f) in failures.iter_mut().enumerate() {
        let mut entry = |t: &[Value], v: &mut Value, what: &str| match v
            .as_u64()
            .and_then(|i| t.get(i as usize))
        {
            Some(e) => *v = e.clone(),
            None => errs.push(format!("[{tag}] failures[{k}].{what} {v} names no entry")),
        };
        if let Some(v) = f.get_mut("reason") {
            entry(&reasons, v, "reason");
        }
        if let Some(v) = f.get_mut("fix") {
            entry(&fixes, v, "fix");
        }
        if let Some(ev) = f.get_mut("evidence").and_then(Value::as_array_mut) {
            for v in ev.iter_mut() {
                entry(&lines, v, "evidence");
            }
        }
    }
    whole
}

/// The report is what docs/gatelog.report.v2.schema.json describes, and says so.
fn check_report_schema(report: &Value, tag: &str, errs: &mut Vec<String>) {
    match report_schema() {
        Ok(schema) => {
            if let Err(v) = schema.validate(report) {
                errs.push(format!(
                    "[{tag}] the report violates docs/gatelog.report.v2.schema.json:\n  {}",
                    v.into_iter().take(20).collect::<Vec<_>>().join("\n  ")
                ));
            }
        }
        Err(e) => errs.push(e),
    }
    if report.get("schema").and_then(Value::as_str) != Some("gatelog.report.v2") {
        errs.push(format!("[{tag}] \"schema\" is not \"gatelog.report.v2\""));
    }
}

/// Pairs each reported failure with the expected one (by request id, else by
/// `*conn`) and checks it; returns, per expected failure, the reported ones that
/// matched it. A reported failure no request matches is an error.
fn match_failures<'r>(
    report: &'r Value,
    given: &Given,
    dir: &Path,
    expect: &[ReportExpect],
    errs: &mut Vec<String>,
) -> Vec<Vec<&'r Value>> {
    let tag = given.name.as_str();
    let by_rid: HashMap<&str, usize> = expect
        .iter()
        .enumerate()
        .map(|(i, e)| (e.request_id.as_str(), i))
        .collect();
    let by_conn: HashMap<u64, usize> = expect
        .iter()
        .enumerate()
        .map(|(i, e)| (e.conn, i))
        .collect();
    let mut seen: Vec<Vec<&Value>> = vec![Vec::new(); expect.len()];
    let mut files = Files::default();
    for f in report
        .get("failures")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let rid = f.get("request_id").and_then(Value::as_str);
        let conn = f.get("conn").and_then(Value::as_u64);
        let idx = rid
            .and_then(|r| by_rid.get(r).copied())
            .or_else(|| conn.and_then(|c| by_conn.get(&c).copied()));
        let Some(i) = idx else {
            errs.push(format!(
                "[{tag}] a failure no request of the run matches (an invented, split or duplicated failure):\n      {}",
                describe(f)
            ));
            continue;
        };
        seen[i].push(f);
        let x = &expect[i];
        let what = format!(
            "[{tag}] [{}] {} (conn {}, request_id {}, {})",
            x.phase, x.request, x.conn, x.request_id, x.status
        );
        check_failure_identity(f, x, given, &what, errs);
        check_failure_cause(f, x, &what, errs);
        check_failure_time(f, x, &what, errs);
        check_seen_in(f, given, &what, errs);
        check_evidence(f, x, &what, dir, given.framed, &mut files, errs);
        check_words(f, x, &what, errs);
        check_fix(f, x, given, &what, errs);
    }
    seen
}

/// The request id (only when records or a JSON access log could give one) and
/// NGINX's `*conn`.
fn check_failure_identity(
    f: &Value,
    x: &ReportExpect,
    given: &Given,
    what: &str,
    errs: &mut Vec<String>,
) {
    let rid = f.get("request_id").and_then(Value::as_str);
    let conn = f.get("conn").and_then(Value::as_u64);
    if given.has_records && rid != Some(x.request_id.as_str()) {
        errs.push(format!(
            "{what}: request_id is {rid:?} although the record has {}",
            x.request_id
        ));
    }
    if conn != Some(x.conn) {
        errs.push(format!("{what}: conn is {conn:?}, NGINX's *{}", x.conn));
    }
    if rid.is_some() && !given.has_records {
        errs.push(format!(
            "{what}: request_id {rid:?} without records or a JSON access log"
        ));
    }
}

/// The injected cause, and the status the client saw.
fn check_failure_cause(f: &Value, x: &ReportExpect, what: &str, errs: &mut Vec<String>) {
    if s(f, "cause") != x.cause {
        errs.push(format!(
            "{what}: MISCLASSIFIED: injected {}, {}",
            x.cause,
            describe(f)
        ));
    }
    if f.get("status").and_then(Value::as_u64) != Some(u64::from(x.status)) {
        errs.push(format!(
            "{what}: status {} in the report",
            f.get("status").unwrap_or(&Value::Null)
        ));
    }
}

/// The failure's time is inside the phase that caused it (a second and a half of
/// slack: the error log has whole seconds).
fn check_failure_time(f: &Value, x: &ReportExpect, what: &str, errs: &mut Vec<String>) {
    match f
        .get("time")
        .and_then(Value::as_str)
        .and_then(records::parse_time_ms)
    {
        Some(t) if t >= x.window.0 - 1500 && t <= x.window.1 + 1500 => {}
        other => errs.push(format!(
            "{what}: time {:?} ({other:?}) is outside the phase [{}, {}] (unix ms)",
            s(f, "time"),
            x.window.0,
            x.window.1
        )),
    }
}

/// The failure was joined across every input that saw it.
fn check_seen_in(f: &Value, given: &Given, what: &str, errs: &mut Vec<String>) {
    let seen_in: Vec<&str> = f
        .get("seen_in")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for want in &given.seen_in {
        if !seen_in.contains(want) {
            errs.push(format!(
                "{what}: seen_in {seen_in:?} lacks {want:?} (not joined across inputs?)"
            ));
        }
    }
}

/// When the cause is right, the fix names the cause's words and what the inputs
/// say (config values only when configs were given).
fn check_fix(f: &Value, x: &ReportExpect, given: &Given, what: &str, errs: &mut Vec<String>) {
    if s(f, "cause") != x.cause {
        return;
    }
    let fix = s(f, "fix");
    let lower = fix.to_lowercase();
    let words = fix_words(x.cause);
    if !words.is_empty() && !words.iter().any(|w| lower.contains(w)) {
        errs.push(format!(
            "{what}: the fix mentions none of {words:?}: {fix:?}"
        ));
    }
    let mut mentions: Vec<&String> = x.fix_mentions.iter().collect();
    if given.has_configs {
        mentions.extend(&x.fix_mentions_with_conf);
    }
    for m in mentions {
        if !fix.contains(m.as_str()) {
            errs.push(format!("{what}: the fix does not mention {m:?}: {fix:?}"));
        }
    }
}

/// Every expected failure is in the report exactly once.
fn check_each_reported_once(
    tag: &str,
    expect: &[ReportExpect],
    seen: &[Vec<&Value>],
    errs: &mut Vec<String>,
) {
    for (x, seen) in expect.iter().zip(seen) {
        match seen.len() {
            1 => {}
            0 => errs.push(format!(
                "[{tag}] [{}] {} (conn {}, request_id {}, {}, injected {}) is MISSING from the report",
                x.phase, x.request, x.conn, x.request_id, x.status, x.cause
            )),
            n => errs.push(format!(
                "[{tag}] [{}] {} (conn {}, request_id {}) is reported {n} times (must be once):\n      {}",
                x.phase,
                x.request,
                x.conn,
                x.request_id,
                seen.iter().map(|f| describe(f)).collect::<Vec<_>>().join("\n      ")
            )),
        }
    }
}

/// The per-cause counts and `summary.failures` add up to the injected failures.
fn check_totals(report: &Value, tag: &str, expect: &[ReportExpect], errs: &mut Vec<String>) {
    let mut want: BTreeMap<String, u64> = BTreeMap::new();
    for x in expect {
        *want.entry(x.cause.to_string()).or_default() += 1;
    }
    let mut got: BTreeMap<String, u64> = BTreeMap::new();
    for c in report
        .get("causes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        *got.entry(s(c, "cause").to_string()).or_default() +=
            c.get("count").and_then(Value::as_u64).unwrap_or(0);
    }
    if got != want {
        errs.push(format!(
            "[{tag}] \"causes\" counts {got:?}, the injected faults {want:?}"
        ));
    }
    let total = report
        .get("summary")
        .and_then(|s| s.get("failures"))
        .and_then(Value::as_u64);
    if total != Some(expect.len() as u64) {
        errs.push(format!(
            "[{tag}] summary.failures is {total:?}, {} request(s) failed",
            expect.len()
        ));
    }
}

/// The protocol, the reason's words, the address named, the words nobody may use.
fn check_words(f: &Value, x: &ReportExpect, what: &str, errs: &mut Vec<String>) {
    if let Some(p) = x.protocol {
        let got = f.get("upstream_protocol").unwrap_or(&Value::Null);
        if got.as_str() != Some(p) {
            errs.push(format!(
                "{what}: upstream_protocol is {got}, NGINX spoke {p}; {}",
                describe(f)
            ));
        }
    }
    let reason = s(f, "reason");
    let fix = s(f, "fix");
    let lower = reason.to_lowercase();
    if !x.reason_any.is_empty()
        && !x
            .reason_any
            .iter()
            .any(|w| lower.contains(&w.to_lowercase()))
    {
        errs.push(format!(
            "{what}: the reason names none of {:?} (what NGINX saw): {reason:?}",
            x.reason_any
        ));
    }
    if !x.mention_any.is_empty()
        && !x
            .mention_any
            .iter()
            .any(|m| reason.contains(m.as_str()) || fix.contains(m.as_str()))
    {
        errs.push(format!(
            "{what}: neither the reason nor the fix names {:?}: reason {reason:?}, fix {fix:?}",
            x.mention_any
        ));
    }
    for (field, text) in [("reason", reason), ("fix", fix)] {
        let said: Vec<&String> = x
            .forbid
            .iter()
            .filter(|w| text.contains(w.as_str()))
            .collect();
        if !said.is_empty() {
            errs.push(format!(
                "{what}: the {field} says {said:?}, which does not apply to this upstream: {text:?}"
            ));
        }
    }
}

fn check_evidence(
    f: &Value,
    x: &ReportExpect,
    what: &str,
    dir: &Path,
    framed: bool,
    files: &mut Files,
    errs: &mut Vec<String>,
) {
    let ev: Vec<&Value> = f
        .get("evidence")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    if ev.is_empty() {
        errs.push(format!("{what}: no evidence"));
        return;
    }
    let mut fpm_pids = Vec::new();
    let mut kernel_pids = Vec::new();
    for e in &ev {
        let file = s(e, "file");
        let n = e.get("line").and_then(Value::as_u64).unwrap_or(0);
        let text = s(e, "text");
        let path = dir.join(file);
        match files.line(&path, n) {
            Some(l) if evidence_matches(text, &l, framed) => {}
            Some(l) => errs.push(format!(
                "{what}: evidence {file}:{n} is {text:?} but that line of the file is {l:?}"
            )),
            None => errs.push(format!(
                "{what}: evidence {file}:{n} does not exist ({})",
                path.display()
            )),
        }
        match s(e, "source") {
            "fpm" => {
                if let Some(p) = fpm_child_pid(text) {
                    fpm_pids.push(p);
                    // A worker's death must be the one of this phase.
                    if let Some(t) = fpm_line_ms(text) {
                        if t < x.window.0 - 2000 || t > x.window.1 + 2000 {
                            errs.push(format!(
                                "{what}: cites {text:?}, a death outside the phase [{}, {}]",
                                x.window.0, x.window.1
                            ));
                        }
                    }
                }
            }
            "kernel" => {
                if let Some(p) = kernel_pid(text) {
                    kernel_pids.push(p);
                }
            }
            _ => {}
        }
    }
    if !fpm_pids.is_empty()
        && !kernel_pids.is_empty()
        && !kernel_pids.iter().any(|k| fpm_pids.contains(k))
    {
        errs.push(format!(
            "{what}: the FPM line names worker(s) {fpm_pids:?} but the kernel line names {kernel_pids:?}"
        ));
    }
    for (source, needle) in &x.cite {
        if !ev
            .iter()
            .any(|e| s(e, "source") == *source && s(e, "text").contains(needle.as_str()))
        {
            errs.push(format!(
                "{what}: the evidence lacks the {source} line with {needle:?} (cause {}); {}",
                x.cause,
                describe(f)
            ));
        }
    }
}

fn check_inputs(report: &Value, given: &Given, errs: &mut Vec<String>) {
    let tag = given.name.as_str();
    let listed: Vec<&Value> = report
        .get("inputs")
        .and_then(Value::as_array)
        .map(|a| a.iter().collect())
        .unwrap_or_default();
    let skipped: Vec<String> = report
        .get("skipped")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|v| s(v, "file").to_string()).collect())
        .unwrap_or_default();
    // The report names files as given (absolute here) or relative to the directory
    // given: compare by path, else by file name.
    let same = |reported: &str, p: &Path| -> bool {
        let r = Path::new(reported);
        r == p || (r.is_relative() && p.ends_with(r)) || (r.file_name() == p.file_name())
    };
    for gf in &given.files {
        let p = &gf.path;
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let empty = std::fs::metadata(p).map(|m| m.len() == 0).unwrap_or(true);
        let entry = listed.iter().find(|i| same(s(i, "file"), p));
        let in_skipped = skipped.iter().any(|f| same(f, p));
        match (&gf.kind, entry) {
            (FileKind::Skipped, None) => {
                if !in_skipped {
                    errs.push(format!(
                        "[{tag}] {name} is neither read nor listed as skipped"
                    ));
                }
            }
            (FileKind::Skipped, Some(i)) => errs.push(format!(
                "[{tag}] {name} is not a log or config but was read as {:?}",
                s(i, "kind")
            )),
            (_, None) if empty && in_skipped => {}
            (kind, None) => errs.push(format!(
                "[{tag}] {name} ({kind:?}) is not among the inputs read{}",
                if in_skipped { " (it was skipped)" } else { "" }
            )),
            (kind, Some(i)) => {
                if let FileKind::Is(k) = kind {
                    if s(i, "kind") != *k {
                        errs.push(format!(
                            "[{tag}] {name} was read as {:?}, it is {k:?}",
                            s(i, "kind")
                        ));
                    }
                }
                if !gf.by.contains(&s(i, "detected_by")) {
                    errs.push(format!(
                        "[{tag}] {name}: detected_by {:?}, expected one of {:?}",
                        s(i, "detected_by"),
                        gf.by
                    ));
                }
                let nu = i
                    .get("lines_not_understood")
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                if nu > 0 {
                    errs.push(format!(
                        "[{tag}] {name}: {nu} line(s) of real logs not understood: {}",
                        i.get("not_understood_examples").unwrap_or(&Value::Null)
                    ));
                }
                if !i.get("error").unwrap_or(&Value::Null).is_null() {
                    errs.push(format!("[{tag}] {name}: read error {}", i["error"]));
                }
                for k in &gf.line_kinds {
                    let n = i
                        .get("lines_by_kind")
                        .and_then(|m| m.get(*k))
                        .and_then(Value::as_u64)
                        .unwrap_or(0);
                    if n == 0 {
                        errs.push(format!(
                            "[{tag}] {name}: no line read as {k:?}: lines_by_kind {}",
                            i.get("lines_by_kind").unwrap_or(&Value::Null)
                        ));
                    }
                }
                if let Some(fr) = gf.framing {
                    let n = i
                        .get("framings")
                        .and_then(|m| m.get(fr))
                        .and_then(Value::as_u64)
                        .unwrap_or(0);
                    if n == 0 {
                        errs.push(format!(
                            "[{tag}] {name}: no line counted in framing {fr:?}: framings {}",
                            i.get("framings").unwrap_or(&Value::Null)
                        ));
                    }
                }
            }
        }
    }
}

/// Runs the analyzer on `dir` with each of `inputs` and checks every report;
/// returns all problems.
pub fn check_all(
    dir: &Path,
    inputs: &[Inputs],
    expect: &[ReportExpect],
) -> Result<Vec<String>, String> {
    let given: Vec<Given> = inputs.iter().map(|i| i.given(dir)).collect();
    check_given(dir, &given, expect)
}

/// Runs the analyzer (in `dir`) once per [`Given`] and checks every report; returns
/// all problems.
pub fn check_given(
    dir: &Path,
    given: &[Given],
    expect: &[ReportExpect],
) -> Result<Vec<String>, String> {
    let mut errs = Vec::new();
    for g in given {
        let r = analyze("json", g.args.clone(), dir)?;
        match r.json() {
            Ok(report) => errs.extend(check_given_report(&report, g, dir, expect)),
            Err(e) => errs.push(format!("[{}] {e}", g.name)),
        }
    }
    Ok(errs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pids_from_lines() {
        assert_eq!(
            fpm_child_pid("[23-Nov-2026 22:16:50] WARNING: [pool www] child 7302 exited on signal 9 (SIGKILL) after 0.07 seconds from start"),
            Some(7302)
        );
        assert_eq!(fpm_child_pid("[pool www] child 7306 started"), None);
        assert_eq!(
            kernel_pid("[ 3431.079425] Memory cgroup out of memory: Killed process 7302 (php-fpm8.2) total-vm:267480kB"),
            Some(7302)
        );
        assert_eq!(
            kernel_pid("[ 3431.688594] php-fpm8.2[7312]: segfault at 0 ip 00007ff5a5374219"),
            Some(7312)
        );
        assert_eq!(
            kernel_pid("[ 1.0] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),task=php-fpm8.2,pid=77,uid=33"),
            Some(77)
        );
    }

    #[test]
    fn evidence_text_is_compared_with_the_line() {
        assert!(evidence_matches("abc", "abc", false));
        assert!(!evidence_matches("abc", "abcd", false));
        assert!(evidence_matches("ab…", "abcd", false));
        assert!(evidence_matches("abc\nsecond", "abc", false));
        assert!(evidence_matches(
            "fastcgi_pass x;",
            "    fastcgi_pass x;",
            false
        ));
        assert!(evidence_matches("fastcgi_p…", "    fastcgi_pass x;", false));
        assert!(!evidence_matches("", "    ", false));
        assert!(!evidence_matches("abc", "web-1  | abc", false));
        assert!(evidence_matches("abc", "web-1  | abc", true));
        assert!(evidence_matches("ab…", "web-1  | abcd", true));
        assert!(!evidence_matches("abc", "web-1  | abcd", true));
        assert!(!evidence_matches("", "web-1  | abcd", true));
        let coloured = "\x1b[33mphp-1  | \x1b[0m[03-Dec-2026 12:58:32] NOTICE: x";
        assert!(evidence_matches(
            "php-1  | [03-Dec-2026 12:58:32] NOTICE: x",
            coloured,
            true
        ));
        assert!(evidence_matches(
            "[03-Dec-2026 12:58:32] NOTICE: x",
            coloured,
            true
        ));
        assert!(evidence_matches(coloured, coloured, true));
        assert!(!evidence_matches(
            "php-1  | [03-Dec-2026 12:58:32] NOTICE: y",
            coloured,
            true
        ));
        assert!(!evidence_matches(
            "php-1  | [03-Dec-2026 12:58:32] NOTICE: x",
            coloured,
            false
        ));
        assert_eq!(strip_ansi("\x1b[36;1mweb-1  | \x1b[0mA"), "web-1  | A");
    }

    #[test]
    fn fpm_times_are_local() {
        let a = fpm_line_ms("[23-Nov-2026 22:16:50] NOTICE: x").expect("parses");
        let b = fpm_line_ms("[23-Nov-2026 22:16:51.123456] DEBUG: x").expect("parses");
        assert_eq!(b - a, 1000);
        assert_eq!(fpm_line_ms("NOTICE: x"), None);
    }

    #[test]
    fn slugs() {
        assert_eq!(slug(1), "fpm-not-running");
        assert_eq!(slug(7), "invalid-response");
        assert_eq!(slug(9), "unknown");
    }
}
