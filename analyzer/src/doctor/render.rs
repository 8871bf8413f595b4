//! The doctor's report: text for a terminal (findings first, then what was
//! checked), or JSON (`gatelog.doctor.v1`, docs/gatelog.doctor.v1.schema.json).

use std::io::{self, Write};

use serde::Serialize;

use super::finding::{Finding, Note, Unchecked};
use super::pools::PoolReport;
use super::targets::TargetReport;
use super::{Doctor, EXIT_HEALTHY, EXIT_PROBLEMS};

/// The JSON schema name.
pub const SCHEMA: &str = "gatelog.doctor.v1";

/// Who ran the checks.
#[derive(Debug, Serialize)]
pub struct RanAs {
    pub user: String,
    pub uid: u32,
    pub root: bool,
}

/// What NGINX is here.
#[derive(Debug, Serialize)]
pub struct NginxReport {
    /// How the config was read.
    pub source: String,
    pub binary: Option<String>,
    pub version: Option<String>,
    pub files_read: usize,
    pub problems: Vec<String>,
    pub master_pid: Option<u32>,
    pub worker_pids: Vec<u32>,
    /// The account the workers run as, and how it is known.
    pub worker_user: Option<String>,
    pub worker_user_from: String,
}

/// One FPM config read.
#[derive(Debug, Serialize)]
pub struct FpmReport {
    pub source: String,
    pub binary: Option<String>,
    pub config: Option<String>,
    pub pools: Vec<String>,
    pub problems: Vec<String>,
}

/// The whole report.
#[derive(Debug, Serialize)]
pub struct DoctorReport {
    pub schema: &'static str,
    pub time: String,
    pub since: String,
    pub ran_as: RanAs,
    pub nginx: Option<NginxReport>,
    pub fpm: Vec<FpmReport>,
    pub targets: Vec<TargetReport>,
    pub pools: Vec<PoolReport>,
    pub findings: Vec<Finding>,
    pub notes: Vec<Note>,
    pub not_checked: Vec<Unchecked>,
}

impl DoctorReport {
    pub fn new(d: &Doctor, targets: Vec<TargetReport>, pools: Vec<PoolReport>) -> DoctorReport {
        let nginx = d.nginx.as_ref().map(|n| NginxReport {
            source: n.source.clone(),
            binary: n.build.as_ref().map(|b| b.binary.display().to_string()),
            version: n.build.as_ref().map(|b| b.version.clone()),
            files_read: n.files.len(),
            problems: n.problems.clone(),
            master_pid: d.nginx_master.as_ref().map(|m| m.pid),
            worker_pids: d.nginx_workers.iter().map(|w| w.pid).collect(),
            worker_user: d.worker.as_ref().map(|w| w.describe()),
            worker_user_from: d.worker_source.clone(),
        });
        let fpm = d
            .fpm
            .iter()
            .map(|f| FpmReport {
                source: f.source.clone(),
                binary: f.binary.as_ref().map(|b| b.display().to_string()),
                config: f.config.as_ref().map(|c| c.display().to_string()),
                pools: f.pools.iter().map(|p| p.pool.name.clone()).collect(),
                problems: f.problems.clone(),
            })
            .collect();
        let mut findings = d.findings.found.clone();
        findings.sort_by_key(|f| (f.severity, f.cause.map_or(9, |c| c.number())));
        DoctorReport {
            schema: SCHEMA,
            time: d.zone.format(d.now),
            since: d.zone.format(d.since),
            ran_as: RanAs {
                user: d.me.as_ref().map_or("?".into(), |m| m.name.clone()),
                uid: super::users::euid(),
                root: d.root,
            },
            nginx,
            fpm,
            targets,
            pools,
            findings,
            notes: d.findings.notes.clone(),
            not_checked: d.findings.unchecked.clone(),
        }
    }

    pub fn exit_code(&self) -> i32 {
        if self.findings.is_empty() {
            EXIT_HEALTHY
        } else {
            EXIT_PROBLEMS
        }
    }
}

pub fn json(r: &DoctorReport, out: &mut dyn Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, r).map_err(io::Error::other)?;
    writeln!(out)
}

pub fn text(r: &DoctorReport, out: &mut dyn Write) -> io::Result<()> {
    text_header(r, out)?;
    text_findings(r, out)?;
    writeln!(out, "\nchecked")?;
    text_nginx(r, out)?;
    text_fpm(r, out)?;
    text_targets(r, out)?;
    text_pools(r, out)?;
    text_notes(r, out)
}

/// Who ran the doctor, when, and how many problems it found.
fn text_header(r: &DoctorReport, out: &mut dyn Write) -> io::Result<()> {
    writeln!(
        out,
        "gatelog doctor: {} as {}{}, history since {}",
        r.time,
        r.ran_as.user,
        if r.ran_as.root {
            ""
        } else {
            " (not root: some checks skipped, see below)"
        },
        r.since
    )?;
    if r.findings.is_empty() {
        writeln!(out, "\nno problem found")?;
    } else {
        writeln!(out, "\n{} problem(s) found", r.findings.len())?;
    }
    Ok(())
}

fn text_findings(r: &DoctorReport, out: &mut dyn Write) -> io::Result<()> {
    for (i, f) in r.findings.iter().enumerate() {
        writeln!(
            out,
            "\n[{}] {} ({}) — {}",
            i + 1,
            f.cause.map_or("gatelog", |c| c.slug()),
            f.severity.as_str(),
            f.subject
        )?;
        writeln!(out, "    {}", f.summary)?;
        writeln!(out, "    evidence:")?;
        for e in &f.evidence {
            writeln!(out, "      {}: {}", e.source, e.value)?;
        }
        writeln!(out, "    fix: {}", f.fix)?;
    }
    Ok(())
}

fn text_nginx(r: &DoctorReport, out: &mut dyn Write) -> io::Result<()> {
    if let Some(n) = &r.nginx {
        writeln!(
            out,
            "  NGINX {} from {} ({} file(s)); master {}, workers as {}{}",
            n.version.as_deref().unwrap_or("(version unknown)"),
            n.source,
            n.files_read,
            n.master_pid
                .map_or("not running".to_string(), |p| p.to_string()),
            n.worker_user.as_deref().unwrap_or("?"),
            if n.worker_user_from.is_empty() {
                String::new()
            } else {
                format!(" [{}]", n.worker_user_from)
            }
        )?;
        for p in &n.problems {
            writeln!(out, "    ! {p}")?;
        }
    }
    Ok(())
}

fn text_fpm(r: &DoctorReport, out: &mut dyn Write) -> io::Result<()> {
    for f in &r.fpm {
        writeln!(
            out,
            "  PHP-FPM from {}: pool(s) {}",
            f.source,
            if f.pools.is_empty() {
                "none".to_string()
            } else {
                f.pools.join(", ")
            }
        )?;
        for p in &f.problems {
            writeln!(out, "    ! {p}")?;
        }
    }
    Ok(())
}

fn text_targets(r: &DoctorReport, out: &mut dyn Write) -> io::Result<()> {
    for t in &r.targets {
        writeln!(
            out,
            "  target {} ({}; {}){}",
            t.peer,
            t.protocol,
            t.passes.join(", "),
            t.pool
                .as_ref()
                .map(|p| format!(" -> pool {p}"))
                .unwrap_or_default()
        )?;
        for s in &t.path {
            writeln!(out, "    {s}")?;
        }
        if let Some(l) = &t.listener {
            writeln!(out, "    {l}")?;
        }
        writeln!(
            out,
            "    connect() as {}: {}",
            t.connect_as.as_deref().unwrap_or("?"),
            t.connect_result
        )?;
    }
    Ok(())
}

fn text_pools(r: &DoctorReport, out: &mut dyn Write) -> io::Result<()> {
    for p in &r.pools {
        let mut line = format!(
            "  pool {} ({}) listen {} pm {} max_children {}: ",
            p.name,
            p.config,
            p.listen.as_deref().unwrap_or("?"),
            p.pm,
            p.max_children.map_or("?".to_string(), |m| m.to_string())
        );
        match p.master_pid {
            Some(m) => line.push_str(&format!(
                "master {m}, {} worker(s){}",
                p.workers,
                p.avg_worker_rss_kb
                    .map(|k| format!(", average RSS {} MB", k / 1024))
                    .unwrap_or_default()
            )),
            None => line.push_str("not running"),
        }
        writeln!(out, "{line}")?;
        if let Some(q) = p.socket_queue {
            writeln!(
                out,
                "    accept queue {}{}",
                q.waiting,
                q.backlog
                    .map(|b| format!(" (backlog {b})"))
                    .unwrap_or_default()
            )?;
        }
        if let Some(s) = &p.status {
            writeln!(
                out,
                "    status: listen queue {}, idle {}, active {}, max children reached {}, slow requests {}",
                s.listen_queue.unwrap_or(0),
                s.idle_processes.unwrap_or(0),
                s.active_processes.unwrap_or(0),
                s.max_children_reached.unwrap_or(0),
                s.slow_requests.unwrap_or(0)
            )?;
        }
        if let Some(e) = &p.status_error {
            writeln!(out, "    status page: {e}")?;
        }
        if let Some(f) = &p.formula {
            writeln!(out, "    {f}")?;
        }
    }
    Ok(())
}

/// The notes, and what could not be checked.
fn text_notes(r: &DoctorReport, out: &mut dyn Write) -> io::Result<()> {
    if !r.notes.is_empty() {
        writeln!(out, "\nnotes")?;
        for n in &r.notes {
            writeln!(out, "  - [{}] {}", n.topic, n.text)?;
            if let Some(f) = &n.fix {
                for (i, l) in f.lines().enumerate() {
                    writeln!(out, "    {}{l}", if i == 0 { "fix: " } else { "" })?;
                }
            }
        }
    }
    if !r.not_checked.is_empty() {
        writeln!(out, "\nnot checked")?;
        for u in &r.not_checked {
            writeln!(out, "  - {}: {}", u.check, u.reason)?;
        }
    }
    Ok(())
}
