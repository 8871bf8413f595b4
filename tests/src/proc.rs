//! Child processes that always die with the test: each runs in its own process
//! group, and dropping the guard SIGKILLs the whole group (master and workers, also
//! workers whose master is already gone) and reaps the leader.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A spawned process group leader.
#[derive(Debug)]
pub struct ProcGuard {
    name: String,
    child: Child,
    status: Option<ExitStatus>,
}

impl ProcGuard {
    /// Spawns `cmd` as the leader of a new process group, stdout and stderr appended to
    /// `out_file`.
    pub fn spawn(name: &str, mut cmd: Command, out_file: &Path) -> Result<ProcGuard, String> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(out_file)
            .map_err(|e| format!("opening {}: {e}", out_file.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("dup {}: {e}", out_file.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .process_group(0);
        let child = cmd
            .spawn()
            .map_err(|e| format!("starting {name} ({cmd:?}): {e}"))?;
        Ok(ProcGuard {
            name: name.to_string(),
            child,
            status: None,
        })
    }

    /// The leader's pid (= the process group id).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the leader has exited (reaps it if so).
    pub fn exited(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Ok(Some(st)) = self.child.try_wait() {
                self.status = Some(st);
            }
        }
        self.status
    }

    /// Sends `sig` to the leader only.
    pub fn signal(&self, sig: i32) -> Result<(), String> {
        if self.status.is_some() {
            return Err(format!("{} already exited", self.name));
        }
        // SAFETY: kill(2) with a pid we spawned and have not reaped yet.
        let rc = unsafe { libc::kill(self.child.id() as i32, sig) };
        if rc == 0 {
            Ok(())
        } else {
            Err(format!(
                "kill({}, {sig}) for {}: {}",
                self.child.id(),
                self.name,
                std::io::Error::last_os_error()
            ))
        }
    }

    /// Sends `sig` to the whole process group.
    pub fn signal_group(&self, sig: i32) {
        // SAFETY: kill(2) on our own process group; the group id stays valid while
        // any member is alive, and the leader is not reaped before this.
        unsafe {
            libc::kill(-(self.child.id() as i32), sig);
        }
    }

    /// Waits up to `timeout` for the leader to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = self.exited() {
                return Ok(st);
            }
            if Instant::now() >= deadline {
                return Err(format!("{} did not exit within {timeout:?}", self.name));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILLs the whole group and reaps the leader.
    pub fn kill_all(&mut self) {
        self.signal_group(libc::SIGKILL);
        if self.status.is_none() {
            let _ = self.child.kill();
            if let Ok(st) = self.child.wait() {
                self.status = Some(st);
            }
        }
        // Members of the group that outlived the leader were SIGKILLed above; give
        // the kernel a moment so that sockets they held are closed before the next
        // step of the test (bounded).
        let deadline = Instant::now() + Duration::from_secs(2);
        while group_alive(self.child.id()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Whether any live (non-zombie) process is in process group `pgid`.
pub fn group_alive(pgid: u32) -> bool {
    !group_members(pgid).is_empty()
}

/// Live (non-zombie) processes of process group `pgid`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for ent in dir.flatten() {
        let Some(pid) = ent.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Some(st) = proc_stat(pid) {
            if st.pgrp == pgid && st.state != 'Z' && st.state != 'X' {
                out.push(pid);
            }
        }
    }
    out
}

/// The fields of /proc/PID/stat this crate needs.
#[derive(Debug, Clone)]
pub struct ProcStat {
    pub state: char,
    pub ppid: u32,
    pub pgrp: u32,
}

/// Reads /proc/PID/stat.
pub fn proc_stat(pid: u32) -> Option<ProcStat> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and parentheses: fields start after the last ')'.
    let rest = &s[s.rfind(')')? + 1..];
    let mut it = rest.split_whitespace();
    let state = it.next()?.chars().next()?;
    let ppid = it.next()?.parse().ok()?;
    let pgrp = it.next()?.parse().ok()?;
    Some(ProcStat { state, ppid, pgrp })
}

/// Live children of `pid`.
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for ent in dir.flatten() {
        let Some(c) = ent.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Some(st) = proc_stat(c) {
            if st.ppid == pid && st.state != 'Z' {
                out.push(c);
            }
        }
    }
    out.sort_unstable();
    out
}

impl Drop for ProcGuard {
    fn drop(&mut self) {
        self.kill_all();
    }
}
