//! PHP-FPM configuration (php-fpm.conf and pool.d/*.conf in INI syntax, or the
//! `php-fpm -tt` dump of the settings in force): per pool the `listen` address and its
//! owner/group/mode/backlog, the process manager, limits and the request timeout, each
//! with the file and line it was written on, for the evidence and the fixes.
//!
//! One parser reads a whole tree: FPM keeps its current section across `include=`
//! (an included file goes on in the section its includer was in, and the section it
//! ends in stays current), and a section named again adds to the same pool. Reading
//! files is the loader's job: the parser says which `include=` it met.

use std::collections::BTreeMap;
use std::sync::Arc;

/// A setting's value and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub value: String,
    pub file: Arc<str>,
    pub line: u64,
    pub text: String,
}

/// One `[pool]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pool {
    pub name: String,
    pub settings: BTreeMap<String, Setting>,
    /// Read from `php-fpm -tt` output: its lines are not the file to edit.
    pub dumped: bool,
}

impl Pool {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.settings.get(key).map(|s| s.value.as_str())
    }

    pub fn setting(&self, key: &str) -> Option<&Setting> {
        self.settings.get(key)
    }

    pub fn max_children(&self) -> Option<u32> {
        self.get("pm.max_children")?.parse().ok()
    }

    /// `pm` (static, dynamic, ondemand); FPM's default is dynamic.
    pub fn pm(&self) -> &str {
        self.get("pm").unwrap_or("dynamic")
    }
}

/// The keys that matter here; others are ignored.
const KEYS: [&str; 25] = [
    "listen",
    "listen.owner",
    "listen.group",
    "listen.mode",
    "listen.backlog",
    "listen.acl_users",
    "listen.acl_groups",
    "listen.allowed_clients",
    "user",
    "group",
    "pm",
    "pm.max_children",
    "pm.start_servers",
    "pm.min_spare_servers",
    "pm.max_spare_servers",
    "pm.max_requests",
    "request_terminate_timeout",
    // The live checks of `gatelog doctor`: the status page, the ping, PHP's limits.
    "pm.status_path",
    "pm.status_listen",
    "ping.path",
    "ping.response",
    "php_admin_value[max_execution_time]",
    "php_value[max_execution_time]",
    "php_admin_value[memory_limit]",
    "php_value[memory_limit]",
];

/// An `include=` met while parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FpmInclude {
    pub pattern: String,
    pub file: Arc<str>,
    pub line: u64,
}

/// What one line was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfLine {
    Understood,
    NotUnderstood,
}

/// Incremental parser over a whole config tree: feed lines (switching files with
/// [`FpmConfParser::set_file`]), then take the pools.
#[derive(Debug)]
pub struct FpmConfParser {
    pools: Vec<Pool>,
    /// Index of the current pool; None in `[global]` (and before any section).
    current: Option<usize>,
    /// Values in `[global]` (error_log, log_level).
    pub global: BTreeMap<String, Setting>,
    file: Arc<str>,
    include: Option<FpmInclude>,
}

impl Default for FpmConfParser {
    /// A parser for text without a file name (tests, standard input).
    fn default() -> FpmConfParser {
        FpmConfParser::new(Arc::from(""))
    }
}

impl FpmConfParser {
    pub fn new(file: Arc<str>) -> FpmConfParser {
        FpmConfParser {
            pools: Vec::new(),
            current: None,
            global: BTreeMap::new(),
            file,
            include: None,
        }
    }

    /// The file the next lines come from (sections carry on across files).
    pub fn set_file(&mut self, file: Arc<str>) {
        self.file = file;
    }

    /// The `include=` of the last line fed, if it was one. FPM reads it right there.
    pub fn take_include(&mut self) -> Option<FpmInclude> {
        self.include.take()
    }

    pub fn feed(&mut self, line: &str, line_no: u64) -> ConfLine {
        let (body, dumped) = match dump_body(line) {
            Some(body) => (body, true),
            None => (line, false),
        };
        let t = body.trim();
        if t.is_empty() || t.starts_with(';') || t.starts_with('#') {
            return ConfLine::Understood;
        }
        if dumped && !t.starts_with('[') && !t.contains(" = ") {
            // Other FPM messages around the dump: `configuration file X test is
            // successful`, a warning about an include. Not settings.
            return ConfLine::Understood;
        }
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            self.section(name.trim(), dumped);
            return ConfLine::Understood;
        }
        let Some((key, value)) = t.split_once('=') else {
            return ConfLine::NotUnderstood;
        };
        let key = key.trim();
        let value = ini_value(value);
        if key == "include" && !dumped {
            self.include = Some(FpmInclude {
                pattern: value.to_string(),
                file: Arc::clone(&self.file),
                line: line_no,
            });
            return ConfLine::Understood;
        }
        // The dump prints every setting; `undefined` is one that is not set.
        if dumped && value == "undefined" {
            return ConfLine::Understood;
        }
        let setting = Setting {
            value: value.to_string(),
            file: Arc::clone(&self.file),
            line: line_no,
            text: t.to_string(),
        };
        match self.current.and_then(|i| self.pools.get_mut(i)) {
            None => {
                self.global.insert(key.to_string(), setting);
            }
            Some(pool) => {
                if KEYS.contains(&key) {
                    // `$pool` expands to the pool name (FPM does this for every value).
                    let value = setting.value.replace("$pool", &pool.name);
                    pool.settings
                        .insert(key.to_string(), Setting { value, ..setting });
                }
            }
        }
        ConfLine::Understood
    }

    fn section(&mut self, name: &str, dumped: bool) {
        if name.eq_ignore_ascii_case("global") {
            self.current = None;
            return;
        }
        // A section named again is the same pool (FPM: "bring it back").
        let i = match self
            .pools
            .iter()
            .position(|p| p.name.eq_ignore_ascii_case(name))
        {
            Some(i) => i,
            None => {
                self.pools.push(Pool {
                    name: name.to_string(),
                    settings: BTreeMap::new(),
                    dumped,
                });
                self.pools.len() - 1
            }
        };
        self.current = Some(i);
    }

    pub fn finish(self) -> Vec<Pool> {
        self.pools
    }
}

/// An INI value: quoted, or up to a `;` comment.
fn ini_value(v: &str) -> &str {
    let v = v.trim();
    for q in ['"', '\''] {
        if let Some(rest) = v.strip_prefix(q) {
            return rest.split(q).next().unwrap_or(rest);
        }
    }
    v.split(';').next().unwrap_or(v).trim()
}

/// The message of a `php-fpm -tt` output line: `[03-Dec-2026 11:54:45] NOTICE: \tlisten
/// = /run/php/php8.2-fpm.sock` -> `\tlisten = ...` (FPM logs each setting with
/// zlog; at log_level debug the message starts with `pid N, fpm_conf_dump(), line
/// N: `). None for a line without that prefix.
pub fn dump_body(line: &str) -> Option<&str> {
    let rest = line.strip_prefix('[')?;
    let (stamp, rest) = rest.split_once("] ")?;
    // `03-Dec-2026 11:54:45` (or with `.123456` at debug level).
    if stamp.len() < 20 || !stamp.as_bytes()[2].eq(&b'-') {
        return None;
    }
    // The dump's blank separator is `NOTICE: ` + " ": trimmed, the message is gone.
    let (level, msg) = rest
        .split_once(": ")
        .or_else(|| Some((rest.trim_end().strip_suffix(':')?, "")))?;
    if !matches!(level, "NOTICE" | "WARNING" | "ERROR" | "ALERT" | "DEBUG") {
        return None;
    }
    let msg = match msg.strip_prefix("pid ") {
        Some(r) => r
            .split_once("(), line ")
            .and_then(|(_, r)| r.split_once(": "))
            .map_or(msg, |(_, m)| m),
        None => msg,
    };
    Some(msg)
}

/// Whether a line is one of `php-fpm -tt`'s lines: a setting, a section, the blank
/// separator, the test result (used by detection: they look like FPM log lines).
pub fn looks_like_fpm_dump(line: &str) -> bool {
    dump_body(line).is_some_and(|b| {
        let t = b.trim();
        (b.starts_with('\t') && t.contains(" = "))
            || (t.starts_with('[') && t.ends_with(']') && !t.contains(' '))
            || t.is_empty()
            || (t.starts_with("configuration file ") && t.ends_with(" test is successful"))
    })
}

/// Whether a line looks like FPM's INI config (used by detection).
pub fn looks_like_fpm_conf(line: &str) -> bool {
    let t = line.trim();
    if t.starts_with('[') && t.ends_with(']') && !t.contains(' ') {
        return true;
    }
    match t.split_once('=') {
        Some((k, _)) => {
            let k = k.trim();
            KEYS.contains(&k)
                || matches!(
                    k,
                    "error_log"
                        | "pid"
                        | "include"
                        | "log_level"
                        | "catch_workers_output"
                        | "slowlog"
                        | "request_slowlog_timeout"
                        | "pm.status_path"
                )
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(p: &mut FpmConfParser, text: &str) {
        for (i, l) in text.lines().enumerate() {
            assert_eq!(p.feed(l, i as u64 + 1), ConfLine::Understood, "{l}");
        }
    }

    #[test]
    fn pools_with_values_and_lines() {
        let text = "[global]\nerror_log = /var/log/php8.2-fpm.log\n\n[www]\n; comment\nuser = www-data\ngroup = www-data\nlisten = /run/php/php8.2-fpm.sock\nlisten.owner = www-data\nlisten.group = www-data\nlisten.mode = 0660\npm = dynamic\npm.max_children = 5\nrequest_terminate_timeout = 30s\nphp_admin_value[memory_limit] = 128M\n[api]\nlisten = /run/php/$pool.sock\npm = static\npm.max_children = 20 ; inline\nlisten.owner = \"www-data\"\n";
        let mut p = FpmConfParser::new(Arc::from("www.conf"));
        feed_all(&mut p, text);
        assert_eq!(
            p.global.get("error_log").map(|s| s.value.as_str()),
            Some("/var/log/php8.2-fpm.log")
        );
        let pools = p.finish();
        assert_eq!(pools.len(), 2);
        let www = &pools[0];
        assert_eq!(www.name, "www");
        assert_eq!(www.get("listen"), Some("/run/php/php8.2-fpm.sock"));
        assert_eq!(www.setting("listen").map(|s| s.line), Some(8));
        assert_eq!(www.get("listen.mode"), Some("0660"));
        assert_eq!(www.max_children(), Some(5));
        assert_eq!(www.pm(), "dynamic");
        assert_eq!(www.get("request_terminate_timeout"), Some("30s"));
        let api = &pools[1];
        assert_eq!(api.get("listen"), Some("/run/php/api.sock"));
        assert_eq!(api.pm(), "static");
        assert_eq!(api.max_children(), Some(20));
        assert_eq!(api.get("listen.owner"), Some("www-data"));
    }

    #[test]
    fn sections_carry_across_includes_and_merge() {
        // Debian's php-fpm.conf ends with include=...; the pool file names its pool.
        let mut p = FpmConfParser::new(Arc::from("/etc/php/8.2/fpm/php-fpm.conf"));
        assert_eq!(p.feed("[global]", 1), ConfLine::Understood);
        assert_eq!(
            p.feed("include=/etc/php/8.2/fpm/pool.d/*.conf", 2),
            ConfLine::Understood
        );
        let inc = p.take_include();
        assert_eq!(
            inc,
            Some(FpmInclude {
                pattern: "/etc/php/8.2/fpm/pool.d/*.conf".to_string(),
                file: Arc::from("/etc/php/8.2/fpm/php-fpm.conf"),
                line: 2
            })
        );
        assert_eq!(p.take_include(), None);
        p.set_file(Arc::from("/etc/php/8.2/fpm/pool.d/www.conf"));
        feed_all(&mut p, "[www]\nlisten = 127.0.0.1:9000\n");
        p.set_file(Arc::from("/etc/php/8.2/fpm/pool.d/zz-override.conf"));
        feed_all(&mut p, "[WWW]\npm.max_children = 12\n");
        let pools = p.finish();
        assert_eq!(pools.len(), 1);
        let www = &pools[0];
        assert_eq!(
            &*www.setting("listen").unwrap().file,
            "/etc/php/8.2/fpm/pool.d/www.conf"
        );
        assert_eq!(
            &*www.setting("pm.max_children").unwrap().file,
            "/etc/php/8.2/fpm/pool.d/zz-override.conf"
        );
        assert_eq!(www.max_children(), Some(12));
    }

    #[test]
    fn tt_dump_lines() {
        // As php-fpm8.2 -tt prints them (tabs included).
        let lines = [
            "[03-Dec-2026 11:54:45] NOTICE: [global]",
            "[03-Dec-2026 11:54:45] NOTICE: \terror_log = /var/log/php8.2-fpm.log",
            "[03-Dec-2026 11:54:45] NOTICE:  ",
            "[03-Dec-2026 11:54:45] NOTICE: [www]",
            "[03-Dec-2026 11:54:45] NOTICE: \tprefix = undefined",
            "[03-Dec-2026 11:54:45] NOTICE: \tlisten = /run/php/php8.2-fpm.sock",
            "[03-Dec-2026 11:54:45] NOTICE: \tlisten.mode = undefined",
            "[03-Dec-2026 11:54:45] NOTICE: \tpm.max_children = 5",
            "[03-Dec-2026 11:54:45] NOTICE: configuration file /etc/php/8.2/fpm/php-fpm.conf test is successful",
        ];
        let mut p = FpmConfParser::new(Arc::from("fpm-tt.txt"));
        for (i, l) in lines.iter().enumerate() {
            assert_eq!(p.feed(l, i as u64 + 1), ConfLine::Understood, "{l}");
        }
        let pools = p.finish();
        assert_eq!(pools.len(), 1);
        assert!(pools[0].dumped);
        assert_eq!(pools[0].get("listen"), Some("/run/php/php8.2-fpm.sock"));
        assert_eq!(pools[0].setting("listen").map(|s| s.line), Some(6));
        assert_eq!(
            pools[0].setting("listen").map(|s| s.text.as_str()),
            Some("listen = /run/php/php8.2-fpm.sock")
        );
        assert_eq!(pools[0].get("listen.mode"), None);
        assert_eq!(pools[0].max_children(), Some(5));
        assert!(looks_like_fpm_dump(lines[5]));
        assert!(looks_like_fpm_dump(lines[3]));
        // The separator as a line reader that trims line ends sees it.
        assert!(looks_like_fpm_dump("[03-Dec-2026 11:54:45] NOTICE:"));
        assert!(!looks_like_fpm_dump(
            "[03-Dec-2026 11:54:45] NOTICE: fpm is running, pid 4242"
        ));
        // Debug level adds the function and line.
        assert_eq!(
            dump_body("[03-Dec-2026 11:54:45.123456] NOTICE: pid 7, fpm_conf_dump(), line 1811: \tlisten = 9000"),
            Some("\tlisten = 9000")
        );
    }

    #[test]
    fn garbage_is_not_understood() {
        let mut p = FpmConfParser::new(Arc::from("x"));
        assert_eq!(p.feed("this is not ini", 1), ConfLine::NotUnderstood);
        assert!(looks_like_fpm_conf("[www]"));
        assert!(looks_like_fpm_conf("pm.max_children = 5"));
        assert!(!looks_like_fpm_conf("server {"));
    }
}
