//! Recognising what an input is by its first lines (and, for a large plain file, its
//! last ones). Each line is unwrapped and routed as the readers will route it
//! ([`super::route`]); the kind with most lines is the file's role, and every log
//! kind seen is noted so that a file mixing NGINX and PHP-FPM lines is read by both
//! readers. A flag (`--fpm-log` ...) sets the role instead, never the lines' kinds.

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

use super::framing::strip_ansi;
use super::reader::{text, LineReader};
use super::route::{LineKind, Router};
use crate::model::InputKind;
use crate::parse::{fpm_conf, nginx_conf};
use crate::time::{EpochMs, Zone};

/// Lines looked at from the start; enough to get past a header or a few odd lines.
const SNIFF_LINES: usize = 1000;
/// Bytes looked at from the end of a large uncompressed file: container streams mix
/// kinds throughout, but a stream whose FPM lines start late is still seen.
const SNIFF_TAIL_BYTES: u64 = 64 * 1024;

/// What sniffing found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sniffed {
    pub kind: Option<InputKind>,
    /// No non-blank line at all.
    pub empty: bool,
    /// Year and month of the latest dated line seen (for RFC 3164 lines without year).
    pub latest_year_month: Option<(i16, i8)>,
    /// Every log kind seen (configs are not log kinds).
    pub kinds: Vec<InputKind>,
}

/// Votes of the lines looked at.
#[derive(Default)]
struct Tally {
    counts: Vec<(InputKind, usize)>,
    latest: Option<(i16, i8)>,
    seen: usize,
    binary: usize,
    nonblank: usize,
}

impl Tally {
    fn vote(&mut self, kind: InputKind) {
        match self.counts.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => self.counts.push((kind, 1)),
        }
    }

    fn line(&mut self, raw: &[u8], router: &mut Router) {
        self.seen += 1;
        if raw.contains(&0) {
            self.binary += 1;
        }
        let line = text(raw);
        if !line.trim().is_empty() {
            self.nonblank += 1;
        }
        let clean = strip_ansi(&line);
        let r = router.route(&clean);
        // A syslog header has no year: only a date written out counts.
        let full_date = r.framed.exact || r.dated;
        if let Some(ym) = r.time.filter(|_| full_date).and_then(year_month) {
            self.latest = Some(self.latest.map_or(ym, |l| l.max(ym)));
        }
        if r.continuation {
            return;
        }
        // `php-fpm -tt` prints the settings as FPM log lines, and also writes them to
        // FPM's error_log: they vote for both, so a dump alone is a config (a tie goes
        // to the first vote) and a log holding one stays a log (its other lines
        // decide).
        if fpm_conf::looks_like_fpm_dump(clean.trim_end()) {
            self.vote(InputKind::FpmConf);
            self.vote(InputKind::Fpm);
            return;
        }
        match r.kind {
            LineKind::Blank => {}
            // A syslog or journal line of another program: a journal.
            LineKind::Other => self.vote(InputKind::Journal),
            LineKind::Unknown => {
                let t = clean.trim_end();
                if fpm_conf::looks_like_fpm_conf(t) {
                    self.vote(InputKind::FpmConf);
                }
                if nginx_conf::looks_like_nginx_conf(t) {
                    self.vote(InputKind::NginxConf);
                }
            }
            k => {
                if let Some(kind) = k.input_kind() {
                    self.vote(kind);
                }
            }
        }
    }
}

/// Reads the first lines of `path` (and the last of a large plain file) and guesses
/// its kind. `flag`: the role given on the command line, if any.
pub fn sniff(path: &Path, flag: Option<InputKind>) -> io::Result<Sniffed> {
    let mut reader = LineReader::open(path)?;
    let zone = Zone::utc();
    let mut router = Router::new(&zone, (2000, 1), flag);
    let mut tally = Tally::default();
    let mut buf = Vec::with_capacity(4096);
    while tally.seen < SNIFF_LINES && reader.next_line(&mut buf)? {
        tally.line(&buf, &mut router);
    }
    if tally.seen >= SNIFF_LINES {
        sniff_tail(path, reader.raw_bytes(), flag, &mut tally)?;
    }
    if tally.binary > tally.seen / 2 {
        return Ok(Sniffed {
            kind: None,
            empty: false,
            latest_year_month: tally.latest,
            kinds: Vec::new(),
        });
    }
    // Most votes wins; on a tie the earlier vote wins.
    let kind = tally
        .counts
        .iter()
        .enumerate()
        .max_by_key(|(i, (_, n))| (*n, usize::MAX - i))
        .map(|(_, (k, _))| *k);
    let kinds = tally
        .counts
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| !matches!(k, InputKind::NginxConf | InputKind::FpmConf))
        .collect();
    Ok(Sniffed {
        kind,
        empty: tally.nonblank == 0,
        latest_year_month: tally.latest,
        kinds,
    })
}

/// The last lines of an uncompressed file much larger than what was read.
fn sniff_tail(
    path: &Path,
    consumed: u64,
    flag: Option<InputKind>,
    tally: &mut Tally,
) -> io::Result<()> {
    let mut file = File::open(path)?;
    let size = file.metadata()?.len();
    let mut magic = [0u8; 2];
    if file.read(&mut magic)? == 2 && magic == [0x1f, 0x8b] {
        return Ok(());
    }
    if size <= consumed.saturating_add(SNIFF_TAIL_BYTES) {
        return Ok(());
    }
    file.seek(SeekFrom::Start(size - SNIFF_TAIL_BYTES))?;
    let mut r = BufReader::new(file.take(SNIFF_TAIL_BYTES));
    let mut buf = Vec::with_capacity(4096);
    // The first line is cut.
    r.read_until(b'\n', &mut buf)?;
    let mut router = Router::new(&Zone::utc(), (2000, 1), flag);
    let stop = tally.seen + SNIFF_LINES;
    loop {
        buf.clear();
        if r.read_until(b'\n', &mut buf)? == 0 || tally.seen >= stop {
            return Ok(());
        }
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        tally.line(&buf, &mut router);
    }
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

/// The year and month of an instant (UTC is close enough for a year reference).
fn year_month(at: EpochMs) -> Option<(i16, i8)> {
    let ts = jiff::Timestamp::from_millisecond(at.0).ok()?;
    let d = ts.to_zoned(jiff::tz::TimeZone::UTC);
    Some((d.year(), d.month()))
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
        let k = sniff(&p, None).unwrap().kind;
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
