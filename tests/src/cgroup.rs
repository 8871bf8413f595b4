//! A memory cgroup with a low limit, created under this process's own memory cgroup
//! (cgroup v1 `memory` hierarchy, or cgroup v2 where the memory controller is
//! available), removed on drop after killing whatever still runs in it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A child memory cgroup.
#[derive(Debug)]
pub struct MemCgroup {
    pub path: PathBuf,
    pub v2: bool,
}

struct Mount {
    point: PathBuf,
    root: String,
    v2: bool,
}

fn mounts() -> Vec<Mount> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        // id parent maj:min root mountpoint opts [optional...] - fstype source superopts
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if l.len() < 5 || r.len() < 3 {
            continue;
        }
        let (root, point) = (l[3], l[4]);
        match r[0] {
            "cgroup" if r[2].split(',').any(|o| o == "memory") => out.push(Mount {
                point: PathBuf::from(point),
                root: root.to_string(),
                v2: false,
            }),
            "cgroup2" => out.push(Mount {
                point: PathBuf::from(point),
                root: root.to_string(),
                v2: true,
            }),
            _ => {}
        }
    }
    out
}

/// This process's cgroup path in the v1 memory hierarchy and in v2.
fn own_paths() -> (Option<String>, Option<String>) {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let (mut v1, mut v2) = (None, None);
    for line in text.lines() {
        let mut it = line.splitn(3, ':');
        let (Some(id), Some(ctrls), Some(path)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if id == "0" && ctrls.is_empty() {
            v2 = Some(path.to_string());
        } else if ctrls.split(',').any(|c| c == "memory") {
            v1 = Some(path.to_string());
        }
    }
    (v1, v2)
}

fn join(m: &Mount, cg: &str) -> PathBuf {
    // The mount shows the hierarchy from `m.root` down.
    let rel = cg.strip_prefix(m.root.as_str()).unwrap_or(cg);
    m.point.join(rel.trim_start_matches('/'))
}

impl MemCgroup {
    /// Creates a child memory cgroup limited to `limit` bytes (no swap), or says why
    /// this machine cannot (which makes the test that needs it *ignored*).
    pub fn create(label: &str, limit: u64) -> Result<MemCgroup, String> {
        let (v1, v2) = own_paths();
        let ms = mounts();
        let name = format!(
            "gatelog-e2e-{}-{}-{label}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let mut why = Vec::new();
        if let Some(own) = &v1 {
            if let Some(m) = ms.iter().find(|m| !m.v2) {
                let path = join(m, own).join(&name);
                match std::fs::create_dir(&path) {
                    Ok(()) => {
                        let cg = MemCgroup { path, v2: false };
                        cg.write("memory.limit_in_bytes", &limit.to_string())?;
                        // Best effort: without swap accounting the file is absent.
                        let _ = cg.write("memory.memsw.limit_in_bytes", &limit.to_string());
                        let _ = cg.write("memory.swappiness", "0");
                        return Ok(cg);
                    }
                    Err(e) => why.push(format!("cgroup v1: cannot create {}: {e}", path.display())),
                }
            } else {
                why.push("cgroup v1: memory hierarchy not mounted".into());
            }
        } else {
            why.push("cgroup v1: no memory controller in /proc/self/cgroup".into());
        }
        if let Some(own) = &v2 {
            for m in ms.iter().filter(|m| m.v2) {
                let parent = join(m, own);
                let ctrls =
                    std::fs::read_to_string(parent.join("cgroup.controllers")).unwrap_or_default();
                if !ctrls.split_whitespace().any(|c| c == "memory") {
                    why.push(format!(
                        "cgroup v2 at {}: memory controller not available (controllers: {:?})",
                        parent.display(),
                        ctrls.trim()
                    ));
                    continue;
                }
                let path = parent.join(&name);
                if let Err(e) = std::fs::create_dir(&path) {
                    why.push(format!("cgroup v2: cannot create {}: {e}", path.display()));
                    continue;
                }
                if !path.join("memory.max").exists() {
                    let _ = std::fs::write(parent.join("cgroup.subtree_control"), "+memory");
                }
                let cg = MemCgroup { path, v2: true };
                if !cg.path.join("memory.max").exists() {
                    why.push(format!(
                        "cgroup v2: memory controller cannot be enabled for children of {} \
                         (a cgroup with processes cannot delegate it)",
                        parent.display()
                    ));
                    continue;
                }
                cg.write("memory.max", &limit.to_string())?;
                let _ = cg.write("memory.swap.max", "0");
                return Ok(cg);
            }
        }
        Err(format!("no writable memory cgroup: {}", why.join("; ")))
    }

    fn write(&self, file: &str, value: &str) -> Result<(), String> {
        std::fs::write(self.path.join(file), value)
            .map_err(|e| format!("writing {value} to {}: {e}", self.path.join(file).display()))
    }

    /// The file a process writes its pid to in order to join.
    pub fn procs_file(&self) -> PathBuf {
        self.path.join("cgroup.procs")
    }

    /// Pids currently in the cgroup.
    pub fn pids(&self) -> Vec<u32> {
        std::fs::read_to_string(self.procs_file())
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// How many OOM kills the cgroup saw (v1 `memory.oom_control` oom_kill, v2
    /// `memory.events` oom_kill), if the kernel reports it.
    pub fn oom_kills(&self) -> Option<u64> {
        let file = if self.v2 {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        let text = std::fs::read_to_string(self.path.join(file)).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
    }

    /// The path as the kernel prints it (relative to the hierarchy root).
    pub fn kernel_path(&self) -> String {
        let s = self.path.display().to_string();
        for m in mounts() {
            if let Some(rest) = s.strip_prefix(&m.point.display().to_string()) {
                if m.v2 == self.v2 {
                    return format!("{}{}", m.root.trim_end_matches('/'), rest);
                }
            }
        }
        s
    }
}

fn kill_all_in(path: &Path) {
    let procs = std::fs::read_to_string(path.join("cgroup.procs")).unwrap_or_default();
    for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        // SAFETY: kill(2) on pids that are in our own test cgroup.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

impl Drop for MemCgroup {
    fn drop(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            kill_all_in(&self.path);
            if std::fs::remove_dir(&self.path).is_ok() || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
