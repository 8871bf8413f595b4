//! The arguments of the `gatelog` directive, checked before anything is allocated.

/// Where a location's records go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target<'a> {
    Off,
    /// The whole first argument (`syslog:server=...`), handed to NGINX's own syslog
    /// parser so it behaves exactly like `access_log syslog:`.
    Syslog(&'a [u8]),
    File {
        path: &'a [u8],
        /// 0: unbuffered, one write() per record (as access_log without buffer=).
        buffer: usize,
        /// Milliseconds after which a partly filled buffer is written.
        flush_ms: Option<u64>,
    },
}

/// A larger buffer only delays records; it is also allocated once per worker.
pub const MAX_BUFFER: usize = 64 * 1024 * 1024;

/// `parse_size` and `parse_time` are NGINX's `ngx_parse_size`/`ngx_parse_time(..., 0)`
/// so that sizes and times read exactly like every other directive's.
pub fn parse_target<'a>(
    args: &[&'a [u8]],
    parse_size: impl Fn(&[u8]) -> Option<usize>,
    parse_time_ms: impl Fn(&[u8]) -> Option<u64>,
) -> Result<Target<'a>, String> {
    let (first, params) = match args.split_first() {
        Some(split) => split,
        None => return Err("needs a path, syslog:... or off".into()),
    };
    if *first == b"off" {
        return match params.first() {
            None => Ok(Target::Off),
            Some(p) => Err(format!("invalid parameter \"{}\" after off", show(p))),
        };
    }
    if first.is_empty() {
        return Err("empty path".into());
    }
    if first.starts_with(b"syslog:") {
        return match params.first() {
            None => Ok(Target::Syslog(first)),
            Some(p) => Err(format!(
                "invalid parameter \"{}\": buffer= and flush= apply to files only",
                show(p)
            )),
        };
    }
    let mut buffer = None;
    let mut flush = None;
    for p in params {
        if let Some(v) = p.strip_prefix(b"buffer=") {
            match parse_size(v) {
                Some(n) if n > MAX_BUFFER => {
                    return Err(format!("buffer size \"{}\" is larger than 64m", show(v)))
                }
                Some(n) if n > 0 => buffer = Some(n),
                _ => return Err(format!("invalid buffer size \"{}\"", show(v))),
            }
        } else if let Some(v) = p.strip_prefix(b"flush=") {
            match parse_time_ms(v) {
                Some(ms) if ms > 0 => flush = Some(ms),
                _ => return Err(format!("invalid flush time \"{}\"", show(v))),
            }
        } else {
            return Err(format!("invalid parameter \"{}\"", show(p)));
        }
    }
    if flush.is_some() && buffer.is_none() {
        return Err("flush= needs buffer=".into());
    }
    Ok(Target::File {
        path: first,
        buffer: buffer.unwrap_or(0),
        flush_ms: flush,
    })
}

/// The message of one error-log line NGINX formatted for a configuration error
/// (`2024/05/01 12:00:00 [emerg] 7#7: unknown syslog facility "x" in /etc/nginx.conf:12`),
/// without the time, level, pid and the ` in FILE:LINE` NGINX appends.
pub fn conf_error_message(line: &[u8]) -> Option<String> {
    let line = String::from_utf8_lossy(line);
    let line = line.trim_end_matches(['\n', '\r']);
    // "[level] pid#tid: " ends the prefix.
    let after_level = &line[line.find("] ")? + 2..];
    let (pid, msg) = after_level.split_once(": ")?;
    if !pid.contains('#') {
        return None;
    }
    let msg = match msg.rfind(" in ") {
        Some(i) if is_conf_location(&msg[i + 4..]) => &msg[..i],
        _ => msg,
    };
    Some(msg.to_owned())
}

/// `FILE:LINE` or `command line` (where NGINX says a configuration error is).
fn is_conf_location(s: &str) -> bool {
    if s == "command line" {
        return true;
    }
    s.rsplit_once(':').is_some_and(|(file, line)| {
        !file.is_empty() && !line.is_empty() && line.bytes().all(|b| b.is_ascii_digit())
    })
}

/// The `gatelog` error for a `syslog:` argument NGINX's syslog parser refused, naming
/// the argument and saying what NGINX said about it.
pub fn syslog_error(value: &[u8], nginx_said: Option<&str>) -> String {
    match nginx_said {
        Some(why) if !why.is_empty() => {
            format!("invalid syslog destination \"{}\": {why}", show(value))
        }
        _ => format!("invalid syslog destination \"{}\"", show(value)),
    }
}

/// `gatelog_metrics zone=NAME:SIZE`: the zone's name and size. `min` is the smallest
/// size NGINX's slab allocator can lay out with room for a table (8 pages, as NGINX's
/// own zones require).
pub fn parse_metrics_zone<'a>(
    args: &[&'a [u8]],
    parse_size: impl Fn(&[u8]) -> Option<usize>,
    min: usize,
) -> Result<(&'a [u8], usize), String> {
    let [arg] = args else {
        return Err("needs exactly one parameter, zone=NAME:SIZE".into());
    };
    let Some(value) = arg.strip_prefix(b"zone=") else {
        return Err(format!(
            "invalid parameter \"{}\", expected zone=NAME:SIZE",
            show(arg)
        ));
    };
    let Some(colon) = value.iter().rposition(|&b| b == b':') else {
        return Err(format!(
            "invalid zone \"{}\", expected NAME:SIZE",
            show(value)
        ));
    };
    let (name, size) = (&value[..colon], &value[colon + 1..]);
    if name.is_empty() {
        return Err(format!("invalid zone \"{}\": empty name", show(value)));
    }
    let size_n = match parse_size(size) {
        Some(n) if n > 0 => n,
        _ => return Err(format!("invalid zone size \"{}\"", show(size))),
    };
    if size_n < min {
        return Err(format!(
            "zone \"{}\" is too small: {} bytes, at least {min}",
            show(name),
            size_n
        ));
    }
    Ok((name, size_n))
}

fn show(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(v: &[u8]) -> Option<usize> {
        let s = std::str::from_utf8(v).ok()?;
        match s.strip_suffix('k') {
            Some(n) => n.parse::<usize>().ok().map(|n| n * 1024),
            None => s.parse().ok(),
        }
    }
    fn time(v: &[u8]) -> Option<u64> {
        let s = std::str::from_utf8(v).ok()?;
        s.strip_suffix('s')?.parse::<u64>().ok().map(|n| n * 1000)
    }
    fn parse<'a>(args: &[&'a [u8]]) -> Result<Target<'a>, String> {
        parse_target(args, size, time)
    }

    #[test]
    fn accepts_the_documented_forms() {
        assert_eq!(parse(&[b"off"]), Ok(Target::Off));
        assert_eq!(
            parse(&[b"/var/log/g.json"]),
            Ok(Target::File {
                path: b"/var/log/g.json",
                buffer: 0,
                flush_ms: None
            })
        );
        assert_eq!(
            parse(&[b"g.json", b"buffer=64k", b"flush=5s"]),
            Ok(Target::File {
                path: b"g.json",
                buffer: 65536,
                flush_ms: Some(5000)
            })
        );
        assert_eq!(
            parse(&[b"syslog:server=127.0.0.1:514,tag=gatelog"]),
            Ok(Target::Syslog(b"syslog:server=127.0.0.1:514,tag=gatelog"))
        );
    }

    #[test]
    fn names_the_bad_value() {
        assert_eq!(
            parse(&[b"g", b"buffer=lots"]),
            Err("invalid buffer size \"lots\"".into())
        );
        assert_eq!(
            parse(&[b"g", b"buffer=0"]),
            Err("invalid buffer size \"0\"".into())
        );
        assert_eq!(
            parse(&[b"g", b"buffer=1k", b"flush=soon"]),
            Err("invalid flush time \"soon\"".into())
        );
        assert_eq!(
            parse(&[b"g", b"gzip"]),
            Err("invalid parameter \"gzip\"".into())
        );
        assert_eq!(
            parse(&[b"g", b"flush=1s"]),
            Err("flush= needs buffer=".into())
        );
        assert!(parse(&[b"off", b"x"]).is_err());
        assert!(parse(&[b"syslog:server=x", b"buffer=1k"]).is_err());
        assert!(parse(&[]).is_err());
    }

    #[test]
    fn nginx_conf_errors_lose_their_prefix_and_location() {
        let said = |l: &[u8]| conf_error_message(l);
        assert_eq!(
            said(b"2026/05/01 12:00:00 [emerg] 3117#3117: unknown syslog facility \"nowhere\" in /tmp/p/conf/bad5.conf:14\n")
                .as_deref(),
            Some("unknown syslog facility \"nowhere\"")
        );
        assert_eq!(
            said(b"2026/05/01 12:00:00 [emerg] 1#1: no syslog server specified in command line\n")
                .as_deref(),
            Some("no syslog server specified")
        );
        assert_eq!(
            said(b"2026/05/01 12:00:00 [emerg] 1#1: invalid port in syslog server \"127.0.0.1:99999\" in /etc/nginx/nginx.conf:3\n")
                .as_deref(),
            Some("invalid port in syslog server \"127.0.0.1:99999\"")
        );
        // A message that merely contains " in " keeps it.
        assert_eq!(
            said(b"2026/05/01 12:00:00 [emerg] 1#1: host not found in syslog server \"x\"")
                .as_deref(),
            Some("host not found in syslog server \"x\"")
        );
        assert_eq!(said(b"garbage"), None);
        assert_eq!(
            syslog_error(b"syslog:server=1.2.3.4,facility=nowhere", Some("unknown syslog facility \"nowhere\"")),
            "invalid syslog destination \"syslog:server=1.2.3.4,facility=nowhere\": unknown syslog facility \"nowhere\""
        );
        assert_eq!(
            syslog_error(b"syslog:", None),
            "invalid syslog destination \"syslog:\""
        );
    }

    #[test]
    fn metrics_zone() {
        fn size(v: &[u8]) -> Option<usize> {
            match v {
                b"1m" => Some(1 << 20),
                b"16k" => Some(16384),
                _ => None,
            }
        }
        fn p<'a>(a: &[&'a [u8]]) -> Result<(&'a [u8], usize), String> {
            parse_metrics_zone(a, size, 32768)
        }
        assert_eq!(p(&[b"zone=gl:1m"]), Ok((&b"gl"[..], 1 << 20)));
        assert_eq!(p(&[b"zone=a:b:1m"]), Ok((&b"a:b"[..], 1 << 20)));
        assert_eq!(
            p(&[]),
            Err("needs exactly one parameter, zone=NAME:SIZE".into())
        );
        assert_eq!(
            p(&[b"size=1m"]),
            Err("invalid parameter \"size=1m\", expected zone=NAME:SIZE".into())
        );
        assert_eq!(
            p(&[b"zone=gl"]),
            Err("invalid zone \"gl\", expected NAME:SIZE".into())
        );
        assert_eq!(
            p(&[b"zone=:1m"]),
            Err("invalid zone \":1m\": empty name".into())
        );
        assert_eq!(
            p(&[b"zone=gl:lots"]),
            Err("invalid zone size \"lots\"".into())
        );
        assert_eq!(
            p(&[b"zone=gl:16k"]),
            Err("zone \"gl\" is too small: 16384 bytes, at least 32768".into())
        );
    }
}
