//! The kernel log (`dmesg`) around a scenario.

use std::process::Command;

/// Runs `dmesg` and returns its lines (`[ seconds] text`), or why it cannot.
pub fn dmesg_lines() -> Result<Vec<String>, String> {
    let out = Command::new("dmesg")
        .output()
        .map_err(|e| format!("running dmesg: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "dmesg failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

/// A position in the kernel log: lines after it belong to the run.
#[derive(Debug, Clone)]
pub struct Mark {
    /// The last line seen when the mark was taken (the ring buffer may rotate, so the
    /// position is found again by content, not by index).
    last: Option<String>,
    count: usize,
}

/// Takes a mark, or says why the kernel log cannot be read.
pub fn mark() -> Result<Mark, String> {
    let lines = dmesg_lines()?;
    Ok(Mark {
        last: lines.last().cloned(),
        count: lines.len(),
    })
}

/// Kernel log lines written since `m`.
pub fn since(m: &Mark) -> Result<Vec<String>, String> {
    let lines = dmesg_lines()?;
    let start = match &m.last {
        None => 0,
        Some(last) => match lines.iter().rposition(|l| l == last) {
            Some(i) => i + 1,
            None => m.count.min(lines.len()),
        },
    };
    Ok(lines[start..].to_vec())
}

fn mentions_pid(line: &str, pid: u32) -> bool {
    let p = pid.to_string();
    line.contains(&format!("[{p}]"))
        || line.contains(&format!("pid={p},"))
        || line.contains(&format!("pid={p}\n"))
        || line.ends_with(&format!("pid={p}"))
        || line.contains(&format!("process {p} "))
        || line.contains(&format!("PID: {p} "))
        || line.contains(&format!("victim {p} "))
        || line.contains(&format!("[{p:>7}]"))
}

/// Keeps the kernel lines that concern `pids` (or mention `needle`, e.g. the cgroup
/// path): segfault lines with the `Code:` line after them, and whole OOM blocks
/// (`invoked oom-killer` .. `Killed process` / `oom_reaper`) that mention one of the
/// pids. Parallel tests write kernel lines too; this keeps only this run's.
pub fn filter(lines: &[String], pids: &[u32], needle: Option<&str>) -> Vec<String> {
    let hit =
        |l: &str| pids.iter().any(|&p| mentions_pid(l, p)) || needle.is_some_and(|n| l.contains(n));
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = &lines[i];
        if l.contains("invoked oom-killer") {
            // The block ends at the reaper line or at the next oom-killer invocation.
            // The block ends with the "Killed process" line (the reaper's line comes
            // later and names the pid itself) or before the next invocation.
            let mut j = i + 1;
            let mut end = lines.len().min(i + 1);
            while j < lines.len() {
                if lines[j].contains("invoked oom-killer") {
                    end = j;
                    break;
                }
                if lines[j].contains("Killed process") {
                    end = j + 1;
                    break;
                }
                j += 1;
            }
            if j == lines.len() {
                end = lines.len();
            }
            let block = &lines[i..end];
            if block.iter().any(|b| hit(b)) {
                out.extend(block.iter().cloned());
            }
            i = end;
            continue;
        }
        if hit(l) {
            out.push(l.clone());
            if l.contains("segfault at") || l.contains("traps:") {
                if let Some(next) = lines.get(i + 1) {
                    if next.contains("Code: ") {
                        out.push(next.clone());
                        i += 1;
                    }
                }
            }
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_our_blocks() {
        let lines: Vec<String> = [
            "[1.0] php-fpm8.2 invoked oom-killer: gfp_mask=0x0, order=0, oom_score_adj=0",
            "[1.1] CPU: 0 PID: 42 Comm: php-fpm8.2",
            "[1.2] oom-kill:constraint=CONSTRAINT_MEMCG,task=php-fpm8.2,pid=42,uid=33",
            "[1.3] Memory cgroup out of memory: Killed process 42 (php-fpm8.2) total-vm:1kB",
            "[1.4] oom_reaper: reaped process 42 (php-fpm8.2), now anon-rss:0kB",
            "[1.5] unrelated line",
            "[2.0] php-fpm8.2[77]: segfault at 0 ip 0 sp 0 error 4 in libc.so.6[1,2+3]",
            "[2.1] Code: 00 11",
            "[3.0] php-fpm8.2[42]: segfault at 0 ip 0 sp 0 error 4 in libc.so.6[1,2+3]",
            "[3.1] Code: 22 33",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let got = filter(&lines, &[42], None);
        assert_eq!(got.len(), 7, "{got:#?}");
        assert!(got
            .iter()
            .all(|l| !l.contains("[77]") && !l.contains("00 11")));
    }
}
