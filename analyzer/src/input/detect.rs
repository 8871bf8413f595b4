//! Recognising what an input is by its first lines. Each line votes for the kinds it
//! fits; the kind with most votes wins. Explicit flags (`--fpm-log` ...) bypass this.

use std::io;
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;

use super::reader::{text, LineReader};
use crate::model::InputKind;
use crate::parse::{access, fpm, fpm_conf, kernel, nginx, nginx_conf, syslog};
use crate::time::{self, LocalClock, Zone};

/// Lines looked at; enough to get past a header or a few odd lines.
const SNIFF_LINES: usize = 200;

static COMBINED_ACCESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"^\S+ \S+ .*?\[\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} [+-]\d{4}\] ""#)
        .expect("static regex")
});

/// What sniffing found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    pub kind: Option<InputKind>,
    /// No non-blank line at all.
    pub empty: bool,
    /// Year and month of the latest dated line seen (for RFC 3164 lines without year).
    pub latest_year_month: Option<(i16, i8)>,
}

/// The kinds a single line fits.
pub fn line_votes(
    line: &str,
    envelope: &mut syslog::Envelope,
    clock: &mut LocalClock,
) -> Vec<InputKind> {
    let t = line.trim_end();
    if t.trim().is_empty() {
        return Vec::new();
    }
    if t.starts_with('{') {
        if t.contains("gatelog.v1") {
            return vec![InputKind::Records];
        }
        if t.contains("\"__REALTIME_TIMESTAMP\"") || t.contains("\"__CURSOR\"") {
            return if t.contains("\"_TRANSPORT\":\"kernel\"") {
                vec![InputKind::Kernel]
            } else {
                vec![InputKind::Journal]
            };
        }
        if t.contains("\"status\"") {
            return vec![InputKind::NginxAccess];
        }
        return Vec::new();
    }
    if nginx::is_entry_start(t.as_bytes()) {
        return vec![InputKind::NginxError];
    }
    // `php-fpm -tt` prints the settings as FPM log lines, and also writes them to
    // FPM's error_log: they vote for both, so a dump alone is a config (a tie goes to
    // the first vote) and a log holding one stays a log (its other lines decide).
    if fpm_conf::looks_like_fpm_dump(t) {
        return vec![InputKind::FpmConf, InputKind::Fpm];
    }
    if t.starts_with('[') && time::parse_fpm_time(&t.as_bytes()[1..]).is_some() {
        return vec![InputKind::Fpm];
    }
    if kernel::split_dmesg_line(t, clock).is_some() {
        return vec![InputKind::Kernel];
    }
    if let Some(l) = envelope.parse(t) {
        return if l.ident == "kernel" {
            vec![InputKind::Kernel]
        } else {
            vec![InputKind::Journal]
        };
    }
    if COMBINED_ACCESS.is_match(t) || (t.contains("status=") && access::parse_line(t).is_some()) {
        return vec![InputKind::NginxAccess];
    }
    if fpm::parse_line(t).is_some() {
        return vec![InputKind::Fpm];
    }
    let mut votes = Vec::new();
    if fpm_conf::looks_like_fpm_conf(t) {
        votes.push(InputKind::FpmConf);
    }
    if nginx_conf::looks_like_nginx_conf(t) {
        votes.push(InputKind::NginxConf);
    }
    votes
}

/// Reads the first lines of `path` and guesses its kind.
pub fn sniff(path: &Path) -> io::Result<Sniffed> {
    let mut reader = LineReader::open(path)?;
    let zone = Zone::utc();
    let mut clock = LocalClock::new(&zone);
    let mut envelope = syslog::Envelope::new(LocalClock::new(&zone), (2000, 1));
    let mut counts: Vec<(InputKind, usize)> = Vec::new();
    let mut latest: Option<(i16, i8)> = None;
    let mut seen = 0;
    let mut binary = 0;
    let mut nonblank = 0;
    let mut buf = Vec::with_capacity(4096);
    while reader.next_line(&mut buf)? {
        let line = &buf[..];
        if line.contains(&0) {
            binary += 1;
        }
        let line = text(line);
        if !line.trim().is_empty() {
            nonblank += 1;
        }
        if let Some(ym) = year_month(&line) {
            latest = Some(latest.map_or(ym, |l| l.max(ym)));
        }
        for kind in line_votes(&line, &mut envelope, &mut clock) {
            match counts.iter_mut().find(|(k, _)| *k == kind) {
                Some((_, n)) => *n += 1,
                None => counts.push((kind, 1)),
            }
        }
        seen += 1;
        if seen >= SNIFF_LINES {
            break;
        }
    }
    if binary > seen / 2 {
        return Ok(Sniffed {
            kind: None,
            empty: false,
            latest_year_month: latest,
        });
    }
    // Most votes wins; on a tie the earlier vote (the order above) wins.
    let kind = counts
        .iter()
        .enumerate()
        .max_by_key(|(i, (_, n))| (*n, usize::MAX - i))
        .map(|(_, (k, _))| *k);
    Ok(Sniffed {
        kind,
        empty: nonblank == 0,
        latest_year_month: latest,
    })
}

/// The kind an (empty) file's name suggests: `kern.log`, `dmesg.txt`, `php8.2-fpm.log`,
/// `gatelog.jsonl`, `access.log`, `error.log`.
pub fn kind_from_name(path: &Path) -> Option<InputKind> {
    let name = path.file_name()?.to_str()?.to_ascii_lowercase();
    let has = |s: &str| name.contains(s);
    Some(if has("kern") || has("dmesg") || has("kmsg") {
        InputKind::Kernel
    } else if has("journal") || has("syslog") {
        InputKind::Journal
    } else if has("fpm") && !has(".conf") {
        InputKind::Fpm
    } else if has("gatelog") || name.ends_with(".jsonl") {
        InputKind::Records
    } else if has("access") {
        InputKind::NginxAccess
    } else if has("error") {
        InputKind::NginxError
    } else {
        return None;
    })
}

/// The year and month of a line that carries a full date (NGINX, FPM, ISO).
fn year_month(line: &str) -> Option<(i16, i8)> {
    let b = line.as_bytes();
    if let Some(c) = time::parse_nginx_time(b) {
        return Some((c.year, c.month));
    }
    if b.first() == Some(&b'[') {
        if let Some((c, _)) = time::parse_fpm_time(&b[1..]) {
            return Some((c.year, c.month));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind_of(content: &str) -> Option<InputKind> {
        let dir = std::env::temp_dir().join(format!(
            "gatelog-detect-{}-{}",
            std::process::id(),
            content.len()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("input");
        std::fs::write(&p, content).unwrap();
        let k = sniff(&p).unwrap().kind;
        std::fs::remove_dir_all(&dir).ok();
        k
    }

    #[test]
    fn recognises_each_kind() {
        assert_eq!(kind_of("2026/04/02 14:23:17 [crit] 1#1: *1 connect() to unix:/x failed (2: No such file or directory) while connecting to upstream, client: 1.2.3.4, server: a\n"), Some(InputKind::NginxError));
        assert_eq!(
            kind_of("[02-Apr-2026 14:23:17] NOTICE: fpm is running, pid 812\n"),
            Some(InputKind::Fpm)
        );
        assert_eq!(
            kind_of("NOTICE: PHP message: PHP Fatal error:  x\nStack trace:\n#0 {main}\n"),
            Some(InputKind::Fpm)
        );
        assert_eq!(
            kind_of("[  321.572384] Out of memory: Killed process 1 (php-fpm8.2)\n"),
            Some(InputKind::Kernel)
        );
        assert_eq!(kind_of("Apr  2 14:23:17 web1 kernel: [423847.291234] Out of memory: Killed process 1 (x)\n"), Some(InputKind::Kernel));
        assert_eq!(kind_of("Apr 02 14:23:17 web1 systemd[1]: Started php8.2-fpm.service - The PHP 8.2 FastCGI Process Manager.\nApr 02 14:23:17 web1 php-fpm8.2[812]: [02-Apr-2026 14:23:17] ERROR: FPM initialization failed\n"), Some(InputKind::Journal));
        assert_eq!(kind_of("203.0.113.7 - - [02/Apr/2026:14:23:17 +0000] \"GET / HTTP/1.1\" 502 157 \"-\" \"curl/8.5.0\"\n"), Some(InputKind::NginxAccess));
        assert_eq!(
            kind_of("{\"schema\":\"gatelog.v1\",\"time\":\"x\"}\n"),
            Some(InputKind::Records)
        );
        assert_eq!(
            kind_of("[www]\nlisten = /run/php/php8.2-fpm.sock\npm = dynamic\n"),
            Some(InputKind::FpmConf)
        );
        assert_eq!(kind_of("server {\n    listen 80;\n    location ~ \\.php$ {\n        fastcgi_pass unix:/run/php/php8.2-fpm.sock;\n    }\n}\n"), Some(InputKind::NginxConf));
        assert_eq!(kind_of("hello\nworld\n"), None);
        assert_eq!(
            kind_from_name(Path::new("/x/kernel.log")),
            Some(InputKind::Kernel)
        );
        assert_eq!(
            kind_from_name(Path::new("php8.2-fpm.log.1")),
            Some(InputKind::Fpm)
        );
        assert_eq!(kind_from_name(Path::new("www.conf")), None);
        assert_eq!(
            kind_of("{\n  \"cause\": 6,\n  \"x\": [\n    1\n  ]\n}\n"),
            None
        );
        assert_eq!(
            kind_of("rid=1 conn=1 status=502 request=\"GET / HTTP/1.1\"\n"),
            Some(InputKind::NginxAccess)
        );
    }
}
