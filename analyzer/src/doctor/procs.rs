//! The processes that matter, from `/proc` (no `ps`, whose `-C php-fpm` finds
//! nothing where the binary is `php-fpm8.2`): PHP-FPM masters (`php-fpm: master
//! process (CONFIG)`) and their pool workers (`php-fpm: pool NAME`), NGINX masters
//! (`nginx: master process CMDLINE`) and workers, each with its parent, owner and
//! resident memory.

use std::collections::HashMap;

/// One process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proc {
    pub pid: u32,
    pub ppid: u32,
    /// The kernel's name (`php-fpm8.2`, `nginx`).
    pub comm: String,
    /// The command line, NULs as spaces (FPM and NGINX rewrite it as a title).
    pub cmdline: String,
    pub uid: u32,
    pub rss_kb: u64,
    /// Start time in clock ticks after boot.
    pub start_ticks: u64,
}

impl Proc {
    /// The config of an FPM master: `php-fpm: master process (/etc/php/8.2/fpm/php-fpm.conf)`.
    pub fn fpm_master_config(&self) -> Option<&str> {
        let rest = self.cmdline.strip_prefix("php-fpm: master process (")?;
        Some(rest.rsplit_once(')').map_or(rest, |(c, _)| c))
    }

    /// The pool of an FPM worker: `php-fpm: pool www`.
    pub fn fpm_pool(&self) -> Option<&str> {
        self.cmdline
            .strip_prefix("php-fpm: pool ")
            .map(|p| p.split_whitespace().next().unwrap_or(p))
    }

    /// The command line of an NGINX master (`nginx: master process /usr/sbin/nginx -c X`).
    pub fn nginx_master_args(&self) -> Option<&str> {
        self.cmdline
            .strip_prefix("nginx: master process")
            .map(str::trim)
    }

    pub fn is_nginx_worker(&self) -> bool {
        self.cmdline.starts_with("nginx: worker process")
    }
}

/// A snapshot of `/proc`.
#[derive(Debug, Default)]
pub struct Procs {
    pub all: Vec<Proc>,
    /// Processes whose details could not be read (gone, or hidden).
    pub unreadable: usize,
}

fn read_proc(pid: u32) -> Option<Proc> {
    let base = format!("/proc/{pid}");
    let stat = std::fs::read_to_string(format!("{base}/stat")).ok()?;
    // `pid (comm) state ppid ...`: comm may hold spaces and parentheses.
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    let ppid = rest.get(1)?.parse().ok()?;
    let start_ticks = rest.get(19)?.parse().unwrap_or(0);
    let cmdline = std::fs::read(format!("{base}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default();
    let status = std::fs::read_to_string(format!("{base}/status")).unwrap_or_default();
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .map(str::trim)
    };
    let uid = field("Uid:")
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(u32::MAX);
    let rss_kb = field("VmRSS:")
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Some(Proc {
        pid,
        ppid,
        comm,
        cmdline,
        uid,
        rss_kb,
        start_ticks,
    })
}

impl Procs {
    /// Reads every process of interest (FPM and NGINX ones; others are skipped by name).
    pub fn scan() -> Procs {
        let mut out = Procs::default();
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return out;
        };
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            let comm = comm.trim();
            if !(comm.starts_with("php") || comm.starts_with("nginx")) {
                continue;
            }
            match read_proc(pid) {
                Some(p) => out.all.push(p),
                None => out.unreadable += 1,
            }
        }
        out.all.sort_by_key(|p| p.pid);
        out
    }

    pub fn get(&self, pid: u32) -> Option<&Proc> {
        self.all.iter().find(|p| p.pid == pid)
    }

    pub fn children(&self, pid: u32) -> impl Iterator<Item = &Proc> {
        self.all.iter().filter(move |p| p.ppid == pid)
    }

    pub fn fpm_masters(&self) -> impl Iterator<Item = &Proc> {
        self.all.iter().filter(|p| p.fpm_master_config().is_some())
    }

    pub fn nginx_masters(&self) -> impl Iterator<Item = &Proc> {
        self.all.iter().filter(|p| p.nginx_master_args().is_some())
    }

    /// Workers of `master` by pool name.
    pub fn pools_of(&self, master: u32) -> HashMap<String, Vec<&Proc>> {
        let mut out: HashMap<String, Vec<&Proc>> = HashMap::new();
        for c in self.children(master) {
            if let Some(pool) = c.fpm_pool() {
                out.entry(pool.to_string()).or_default().push(c);
            }
        }
        out
    }
}

/// Seconds since boot of a start time in ticks.
pub fn ticks_to_secs(ticks: u64) -> f64 {
    // SAFETY: sysconf(3) has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    ticks as f64 / if hz > 0 { hz as f64 } else { 100.0 }
}

/// `MemTotal` of /proc/meminfo in kB.
pub fn mem_total_kb() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The memory limit of a process's cgroup (v2 `memory.max`, v1
/// `memory.limit_in_bytes`) in kB, when one is set below the machine's memory.
pub fn cgroup_memory_limit_kb(pid: u32) -> Option<(u64, String)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    for line in text.lines() {
        let mut it = line.splitn(3, ':');
        let (_, ctrls, path) = (it.next()?, it.next()?, it.next()?);
        let file = if ctrls.is_empty() {
            format!("/sys/fs/cgroup{path}/memory.max")
        } else if ctrls.split(',').any(|c| c == "memory") {
            format!("/sys/fs/cgroup/memory{path}/memory.limit_in_bytes")
        } else {
            continue;
        };
        let Ok(v) = std::fs::read_to_string(&file) else {
            continue;
        };
        let Ok(bytes) = v.trim().parse::<u64>() else {
            continue;
        };
        let kb = bytes / 1024;
        if mem_total_kb().is_some_and(|total| kb < total) {
            return Some((kb, file));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(cmdline: &str) -> Proc {
        Proc {
            pid: 1,
            ppid: 0,
            comm: "php-fpm8.2".into(),
            cmdline: cmdline.into(),
            uid: 0,
            rss_kb: 0,
            start_ticks: 0,
        }
    }

    #[test]
    fn titles_as_debian_shows_them() {
        // /proc/PID/cmdline of Debian's php8.2-fpm and nginx (NULs made spaces).
        let m = p("php-fpm: master process (/etc/php/8.2/fpm/php-fpm.conf)");
        assert_eq!(m.fpm_master_config(), Some("/etc/php/8.2/fpm/php-fpm.conf"));
        assert_eq!(p("php-fpm: pool www").fpm_pool(), Some("www"));
        assert_eq!(p("php-fpm: pool www").fpm_master_config(), None);
        let n = p("nginx: master process /usr/sbin/nginx -g daemon on; master_process on;");
        assert_eq!(
            n.nginx_master_args(),
            Some("/usr/sbin/nginx -g daemon on; master_process on;")
        );
        assert!(p("nginx: worker process").is_nginx_worker());
    }

    #[test]
    fn own_process_reads() {
        let me = read_proc(std::process::id()).expect("own /proc entry");
        assert!(me.rss_kb > 0);
        assert!(mem_total_kb().is_some_and(|k| k > 0));
    }
}
