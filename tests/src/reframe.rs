//! The same real NGINX and PHP-FPM log lines as they reach people outside one Debian
//! box: `docker logs -t` (an RFC 3339 UTC stamp with nanoseconds before each line),
//! `docker compose logs` (`web-1  | `, `php-1  | `, with or without ANSI colours),
//! one container stream holding NGINX and FPM lines together (official images,
//! supervisord), and PHP-FPM logging to syslog (`error_log = syslog`) as rsyslog
//! writes it to a file or `journalctl` prints it.
//!
//! Every function takes the lines of real logs written by a test and only wraps
//! them; the text NGINX or FPM wrote is kept byte for byte after the carrier's prefix.
//! Formats follow their sources: docker's `RFC3339NanoFixed`, compose's
//! `fmt.Sprintf("%-<width>s | ", name)` coloured with `\x1b[<code>m...\x1b[0m`
//! (cyan for the first service, yellow for the second), PHP-FPM's `zlog` syslog
//! prefix `[LEVEL] ` instead of `[date] LEVEL: `, syslog's `php-fpm[<master pid>]: `.

use crate::clock;

/// Which program wrote a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Nginx,
    Fpm,
}

/// A physical line of a log and when it was written (unix ms; a continuation line
/// of a multi-line entry takes the time of its entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamped {
    pub ms: i64,
    pub source: Source,
    pub text: String,
}

/// The physical lines of `text` (a log written by `source`) with their times. Lines
/// before the first stamped one take the first stamp found.
pub fn stamp(text: &str, source: Source) -> Vec<Stamped> {
    let parse = |l: &str| match source {
        Source::Nginx => clock::nginx_line_ms(l),
        Source::Fpm => clock::fpm_line_ms(l),
    };
    let first = text.lines().find_map(parse).unwrap_or(0);
    let mut last = first;
    text.lines()
        .map(|l| {
            if let Some(ms) = parse(l) {
                last = ms;
            }
            Stamped {
                ms: last,
                source,
                text: l.to_string(),
            }
        })
        .collect()
}

/// The lines of both logs in time order (stable: within one second each log keeps
/// its own order; FPM's lines of a second come before NGINX's, as a worker's death
/// or FPM's stop is logged by FPM before NGINX notices it in the same second).
pub fn merge(nginx: &[Stamped], fpm: &[Stamped]) -> Vec<Stamped> {
    let mut out = Vec::with_capacity(nginx.len() + fpm.len());
    let (mut i, mut j) = (0, 0);
    while i < nginx.len() || j < fpm.len() {
        let take_fpm = match (nginx.get(i), fpm.get(j)) {
            (Some(n), Some(f)) => f.ms / 1000 <= n.ms / 1000,
            (None, Some(_)) => true,
            _ => false,
        };
        if take_fpm {
            out.push(fpm[j].clone());
            j += 1;
        } else {
            out.push(nginx[i].clone());
            i += 1;
        }
    }
    out
}

fn join(lines: impl Iterator<Item = String>) -> String {
    let mut s: String = lines.collect::<Vec<_>>().join("\n");
    s.push('\n');
    s
}

/// The times docker would stamp: each line a little after its own second, strictly
/// increasing, with a nanosecond part.
fn receive_times(lines: &[Stamped]) -> Vec<(i64, u32)> {
    let mut prev = i64::MIN;
    lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let ms = (l.ms + 137).max(prev + 1);
            prev = ms;
            (ms, ((i as u32).wrapping_mul(7919) + 311) % 1_000_000)
        })
        .collect()
}

/// `docker logs -t <container>`: `2026-04-02T12:23:17.137000311Z <line>`.
pub fn docker_t(lines: &[Stamped]) -> String {
    let times = receive_times(lines);
    join(
        lines
            .iter()
            .zip(times)
            .map(|(l, (ms, ns))| format!("{} {}", clock::docker_stamp(ms, ns), l.text)),
    )
}

/// The compose service of a line's program.
pub fn service(source: Source) -> &'static str {
    match source {
        Source::Nginx => "web-1",
        Source::Fpm => "php-1",
    }
}

/// `docker compose logs` (`--no-color` when `colour` is false): `web-1  | <line>`,
/// `php-1  | <line>`; with colour the prefix is wrapped in the service's ANSI colour.
pub fn compose(lines: &[Stamped], colour: bool) -> String {
    // Compose pads every name to the longest one + 1.
    let width = 1 + lines
        .iter()
        .map(|l| service(l.source).len())
        .max()
        .unwrap_or(0);
    join(lines.iter().map(|l| {
        let prefix = format!("{:<width$} | ", service(l.source));
        if colour {
            let code = match l.source {
                Source::Nginx => "36",
                Source::Fpm => "33",
            };
            format!("\x1b[{code}m{prefix}\x1b[0m{}", l.text)
        } else {
            format!("{prefix}{}", l.text)
        }
    }))
}

/// The lines as they are (one container's stream of both programs, unprefixed).
pub fn plain(lines: &[Stamped]) -> String {
    join(lines.iter().map(|l| l.text.clone()))
}

/// How rsyslog stamps a line in a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyslogStamp {
    /// RSYSLOG_TraditionalFileFormat: `Apr  2 14:23:17`.
    Traditional,
    /// RSYSLOG_FileFormat: `2026-04-02T14:23:17.000000+02:00`.
    HighPrecision,
    /// `journalctl -u php8.2-fpm` (`-o short`): `Apr 02 14:23:17`, as journald keeps
    /// FPM's syslog messages.
    Journal,
}

/// PHP-FPM's log as rsyslog files it when FPM runs with `error_log = syslog`
/// (`syslog.ident = php-fpm`): `<stamp> <host> php-fpm[<pid>]: [WARNING] [pool www]
/// child 7302 exited on signal 9 (SIGKILL) after 0.07 seconds from start`. FPM's
/// own `[date] LEVEL: ` prefix becomes zlog's syslog prefix `[LEVEL] `.
pub fn fpm_syslog(fpm: &[Stamped], host: &str, pid: u32, style: SyslogStamp) -> String {
    join(fpm.iter().map(|l| {
        let stamp = match style {
            SyslogStamp::Traditional => clock::syslog_3164_stamp(l.ms),
            SyslogStamp::HighPrecision => clock::syslog_rfc3339_stamp(l.ms),
            SyslogStamp::Journal => clock::journal_short_stamp(l.ms),
        };
        format!(
            "{stamp} {host} php-fpm[{pid}]: {}",
            fpm_syslog_message(&l.text)
        )
    }))
}

/// `[02-Apr-2026 14:23:17] WARNING: msg` -> `[WARNING] msg`.
pub fn fpm_syslog_message(line: &str) -> String {
    let rest = match line.strip_prefix('[').and_then(|r| r.split_once("] ")) {
        Some((_, rest)) => rest,
        None => line,
    };
    match rest.split_once(": ") {
        Some((level, msg))
            if !level.is_empty() && level.bytes().all(|b| b.is_ascii_uppercase()) =>
        {
            format!("[{level}] {msg}")
        }
        _ => rest.to_string(),
    }
}

/// The FPM master's pid from its `fpm is running, pid N` line.
pub fn fpm_master_pid(fpm_log: &str) -> Option<u32> {
    let rest = fpm_log.split("fpm is running, pid ").nth(1)?;
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NGINX: &str = "2026/04/02 14:23:17 [notice] 70#70: start worker processes\n\
2026/04/02 14:23:19 [error] 71#71: *3 FastCGI sent in stderr: \"PHP message: x\n\
Stack trace:\n\
#0 {main}\" while reading response header from upstream, client: 127.0.0.1\n";
    const FPM: &str = "[02-Apr-2026 14:23:16] NOTICE: fpm is running, pid 60\n\
[02-Apr-2026 14:23:16] NOTICE: ready to handle connections\n\
[02-Apr-2026 14:23:19] WARNING: [pool www] child 61 exited on signal 11 (SIGSEGV) after 2.5 seconds from start\n";

    #[test]
    fn continuation_lines_keep_their_entry_time() {
        let n = stamp(NGINX, Source::Nginx);
        assert_eq!(n.len(), 4);
        assert_eq!(n[1].ms, n[3].ms);
        assert_eq!(n[1].ms - n[0].ms, 2000);
    }

    #[test]
    fn merged_in_time_order() {
        let m = merge(&stamp(NGINX, Source::Nginx), &stamp(FPM, Source::Fpm));
        let src: Vec<Source> = m.iter().map(|l| l.source).collect();
        use Source::*;
        assert_eq!(src, vec![Fpm, Fpm, Nginx, Fpm, Nginx, Nginx, Nginx]);
        assert!(plain(&m).ends_with(
            "#0 {main}\" while reading response header from upstream, client: 127.0.0.1\n"
        ));
    }

    #[test]
    fn carriers() {
        let n = stamp(NGINX, Source::Nginx);
        let d = docker_t(&n);
        let first = d.lines().next().unwrap_or("");
        assert!(first.ends_with("Z 2026/04/02 14:23:17 [notice] 70#70: start worker processes"));
        assert_eq!(first.find('Z'), Some(29), "{first:?}");
        let c = compose(&merge(&n, &stamp(FPM, Source::Fpm)), false);
        assert!(c.starts_with("php-1  | [02-Apr-2026 14:23:16] NOTICE: fpm is running, pid 60\n"));
        assert!(c.contains("\nweb-1  | Stack trace:\n"));
        let a = compose(&n, true);
        assert!(a.starts_with("\x1b[36mweb-1  | \x1b[0m2026/04/02 14:23:17 [notice]"));
        let f = stamp(FPM, Source::Fpm);
        let s = fpm_syslog(&f, "web01", 60, SyslogStamp::Traditional);
        let last = s.lines().last().unwrap_or("");
        assert!(last.ends_with(" web01 php-fpm[60]: [WARNING] [pool www] child 61 exited on signal 11 (SIGSEGV) after 2.5 seconds from start"), "{last:?}");
        assert_eq!(&last[..6], "Apr  2");
        assert_eq!(fpm_master_pid(FPM), Some(60));
    }
}
