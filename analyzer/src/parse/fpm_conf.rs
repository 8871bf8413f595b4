//! PHP-FPM configuration (php-fpm.conf and pool.d/*.conf, INI syntax): per pool the
//! `listen` address and its owner/group/mode/backlog, the process manager, limits and
//! the request timeout, with the file and line of each value for the fixes.

use std::collections::BTreeMap;

/// A setting's value and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    pub value: String,
    pub line: u64,
    pub text: String,
}

/// One `[pool]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pool {
    pub name: String,
    pub settings: BTreeMap<String, Setting>,
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
const KEYS: [&str; 16] = [
    "listen",
    "listen.owner",
    "listen.group",
    "listen.mode",
    "listen.backlog",
    "listen.acl_users",
    "listen.acl_groups",
    "user",
    "group",
    "pm",
    "pm.max_children",
    "pm.start_servers",
    "pm.min_spare_servers",
    "pm.max_spare_servers",
    "pm.max_requests",
    "request_terminate_timeout",
];

/// Incremental parser: feed lines, then take the pools.
#[derive(Debug, Default)]
pub struct FpmConfParser {
    pools: Vec<Pool>,
    current: Option<Pool>,
    /// Values in `[global]` (error_log, log_level).
    pub global: BTreeMap<String, Setting>,
    in_global: bool,
}

/// What one line was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfLine {
    Understood,
    NotUnderstood,
}

impl FpmConfParser {
    pub fn feed(&mut self, line: &str, line_no: u64) -> ConfLine {
        let t = line.trim();
        if t.is_empty() || t.starts_with(';') || t.starts_with('#') {
            return ConfLine::Understood;
        }
        if let Some(name) = t.strip_prefix('[').and_then(|r| r.strip_suffix(']')) {
            if let Some(pool) = self.current.take() {
                self.pools.push(pool);
            }
            self.in_global = name == "global";
            if !self.in_global {
                self.current = Some(Pool {
                    name: name.to_string(),
                    settings: BTreeMap::new(),
                });
            }
            return ConfLine::Understood;
        }
        let Some((key, value)) = t.split_once('=') else {
            return ConfLine::NotUnderstood;
        };
        let key = key.trim();
        // Inline comments after `;` are allowed in INI values.
        let value = value
            .split(" ;")
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches('"');
        let setting = Setting {
            value: value.to_string(),
            line: line_no,
            text: t.to_string(),
        };
        if self.in_global {
            self.global.insert(key.to_string(), setting);
        } else if let Some(pool) = self.current.as_mut() {
            if KEYS.contains(&key) {
                // `$pool` expands to the pool name (FPM does this for every value).
                let value = setting.value.replace("$pool", &pool.name);
                pool.settings
                    .insert(key.to_string(), Setting { value, ..setting });
            }
        }
        ConfLine::Understood
    }

    pub fn finish(mut self) -> Vec<Pool> {
        if let Some(pool) = self.current.take() {
            self.pools.push(pool);
        }
        self.pools
    }
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

    #[test]
    fn pools_with_values_and_lines() {
        let text = "[global]\nerror_log = /var/log/php8.2-fpm.log\n\n[www]\n; comment\nuser = www-data\ngroup = www-data\nlisten = /run/php/php8.2-fpm.sock\nlisten.owner = www-data\nlisten.group = www-data\nlisten.mode = 0660\npm = dynamic\npm.max_children = 5\nrequest_terminate_timeout = 30s\nphp_admin_value[memory_limit] = 128M\n[api]\nlisten = /run/php/$pool.sock\npm = static\npm.max_children = 20 ; inline\n";
        let mut p = FpmConfParser::default();
        for (i, l) in text.lines().enumerate() {
            assert_eq!(p.feed(l, i as u64 + 1), ConfLine::Understood, "{l}");
        }
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
    }

    #[test]
    fn garbage_is_not_understood() {
        let mut p = FpmConfParser::default();
        assert_eq!(p.feed("this is not ini", 1), ConfLine::NotUnderstood);
        assert!(looks_like_fpm_conf("[www]"));
        assert!(looks_like_fpm_conf("pm.max_children = 5"));
        assert!(!looks_like_fpm_conf("server {"));
    }
}
