//! Configs as a whole, on output of the real programs (tests/fixtures/conf, made by
//! its capture.sh on Debian 12: nginx 1.22, php8.2-fpm): `nginx -T` read the same as
//! the tree it came from, `php-fpm8.2 -tt` read as a pool config, and the two real
//! wrong-address runs (FPM on one TCP port with NGINX pointed at another; a socket
//! named for a PHP version that is not installed) classified as wrong-socket-path.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use gatelog_analyzer::context::conf_tree;
use gatelog_analyzer::input::{detect, DetectedBy, Input};
use gatelog_analyzer::model::{InputKind, Protocol};
use gatelog_analyzer::parse::nginx_conf::{self, NginxConf};
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/conf")
}

fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gatelog-configs-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn input(path: &Path, kind: InputKind) -> Input {
    Input {
        path: path.to_path_buf(),
        name: Arc::from(path.display().to_string()),
        kind,
        detected_by: DetectedBy::Flag,
        size: 0,
        kinds: Vec::new(),
    }
}

fn load_nginx(path: &Path) -> NginxConf {
    let mut loaded = conf_tree::load(&[(0, input(path, InputKind::NginxConf))]);
    assert_eq!(loaded.nginx.len(), 1);
    loaded.nginx.remove(0)
}

/// Every target as (peer, protocol, file below etc/nginx/, line, blocks).
fn targets(c: &NginxConf) -> Vec<(String, Protocol, String, u64, String)> {
    c.targets
        .iter()
        .map(|t| {
            let file = t
                .pass
                .file
                .rsplit_once("/etc/nginx/")
                .map_or("?", |(_, f)| f);
            (
                t.peer.to_string(),
                t.protocol,
                file.to_string(),
                t.pass.line,
                t.pass.context.clone(),
            )
        })
        .collect()
}

/// The files of `nginx -T` output, as (name, text).
fn dumped_files(dump: &str) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = Vec::new();
    for line in dump.lines() {
        if let Some(name) = nginx_conf::dump_marker(line) {
            files.push((name.to_string(), String::new()));
        } else if let Some((_, text)) = files.last_mut() {
            text.push_str(line);
            text.push('\n');
        }
    }
    files
}

#[test]
fn nginx_t_reads_like_the_tree_it_came_from() {
    let dump_path = fixtures().join("debian/nginx-T.txt");
    let from_dump = load_nginx(&dump_path);
    // The default site's PHP location, enabled as its comments say: line 60 of
    // sites-enabled/default, reached through `include .../sites-enabled/*;`.
    let want = vec![(
        "unix:/run/php/php8.2-fpm.sock".to_string(),
        Protocol::Fastcgi,
        "sites-enabled/default".to_string(),
        60,
        "http > server > location ~ \\.php$".to_string(),
    )];
    assert_eq!(targets(&from_dump), want);
    assert_eq!(from_dump.user.as_ref().map(|d| d.arg()), Some("www-data"));

    // Rebuild the tree from the dump (Debian's symlink included) and read it from
    // disk, through its includes: same directives, same files and lines.
    let dump = std::fs::read_to_string(&dump_path).unwrap();
    let root = temp_dir("debian-tree");
    let files = dumped_files(&dump);
    assert_eq!(files.len(), 5);
    for (name, text) in &files {
        let rel = name.rsplit_once("/etc/nginx/").unwrap().1;
        let (path, link) = match rel.strip_prefix("sites-enabled/") {
            Some(site) => (
                root.join("etc/nginx/sites-available").join(site),
                Some(root.join("etc/nginx").join(rel)),
            ),
            None => (root.join("etc/nginx").join(rel), None),
        };
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        if let Some(link) = link {
            std::fs::create_dir_all(link.parent().unwrap()).unwrap();
            symlink(&path, &link).unwrap();
        }
    }
    // The dump's absolute includes name the capture's directory: the copy's own
    // files are read instead.
    let from_disk = load_nginx(&root.join("etc/nginx/nginx.conf"));
    assert_eq!(targets(&from_disk), want);
    assert_eq!(
        from_disk
            .user
            .as_ref()
            .map(|d| (d.line, d.arg().to_string())),
        from_dump
            .user
            .as_ref()
            .map(|d| (d.line, d.arg().to_string()))
    );
}

#[test]
fn php_fpm_tt_is_a_pool_config() {
    let tt = fixtures().join("debian/php-fpm8.2-tt.txt");
    assert_eq!(
        detect::sniff(&tt, None).unwrap().kind,
        Some(InputKind::FpmConf)
    );
    // FPM also writes the dump into its error_log: that file stays an FPM log.
    let log = fixtures().join("tcp-port/php8.2-fpm.log");
    assert_eq!(
        detect::sniff(&log, None).unwrap().kind,
        Some(InputKind::Fpm)
    );

    let loaded = conf_tree::load(&[(0, input(&tt, InputKind::FpmConf))]);
    assert_eq!(loaded.pools.len(), 1);
    let www = &loaded.pools[0];
    assert_eq!(www.pool.name, "www");
    assert!(www.pool.dumped);
    let listen = www.pool.setting("listen").unwrap();
    assert_eq!(listen.value, "/run/php/php8.2-fpm.sock");
    assert_eq!(listen.line, 24);
    assert_eq!(www.pool.max_children(), Some(5));
    assert_eq!(www.pool.get("listen.owner"), Some("www-data"));
    // `undefined` is FPM's word for unset.
    assert_eq!(www.pool.get("listen.mode"), None);
    let stats = &loaded.stats[0].1;
    assert_eq!(stats.lines_not_understood, 0);
    assert_eq!(stats.lines_read, 63);
}

fn analyze(args: &[&Path]) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_gatelog"))
        .args(["analyze", "--format", "json", "--tz", "UTC"])
        .args(args)
        .output()
        .expect("run gatelog");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut report: Value = serde_json::from_slice(&out.stdout).unwrap();
    gatelog_analyzer::report::shared::inline(&mut report);
    report
}

/// The value after `key = ` in a `php-fpm -tt` dump.
fn dumped(tt: &str, key: &str) -> String {
    let pat = format!("\t{key} = ");
    tt.lines()
        .find_map(|l| l.split_once(&pat).map(|(_, v)| v.to_string()))
        .unwrap()
}

#[test]
fn fpm_on_one_port_nginx_on_another() {
    let d = fixtures().join("tcp-port");
    let tt = std::fs::read_to_string(d.join("php-fpm8.2-tt.txt")).unwrap();
    let listen = dumped(&tt, "listen");
    let error = std::fs::read_to_string(d.join("error.log")).unwrap();
    let wrong = error
        .split("upstream: \"fastcgi://")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    assert_ne!(listen, wrong);
    let report = analyze(&[
        &d.join("error.log"),
        &d.join("php8.2-fpm.log"),
        &d.join("nginx-T.txt"),
        &d.join("php-fpm8.2-tt.txt"),
    ]);
    let failures = report["failures"].as_array().unwrap();
    assert_eq!(failures.len(), 1);
    let f = &failures[0];
    assert_eq!(f["cause"], "wrong-socket-path", "{}", f["reason"]);
    let reason = f["reason"].as_str().unwrap();
    assert!(
        reason.contains(&listen) && reason.contains(&wrong),
        "{reason}"
    );
    let fix = f["fix"].as_str().unwrap();
    assert!(
        fix.contains(&format!(
            "sites-enabled/app:13 change `fastcgi_pass {wrong};` to `fastcgi_pass {listen};`"
        )),
        "{fix}"
    );
    let sources: Vec<&str> = f["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["source"].as_str().unwrap())
        .collect();
    assert!(
        sources.contains(&"nginx-conf") && sources.contains(&"fpm-conf"),
        "{sources:?}"
    );
    // The FPM log alone (no configs): nothing says where FPM listens, so no
    // wrong-address verdict is invented.
    let report = analyze(&[&d.join("error.log"), &d.join("php8.2-fpm.log")]);
    assert_ne!(report["failures"][0]["cause"], "wrong-socket-path");
}

#[test]
fn socket_named_for_a_php_version_that_is_not_there() {
    // The NGINX line is real (nothing at /run/php/php7.2-fpm.sock); the 7.0 side is
    // written here the way Debian's php7.0-fpm names and logs things.
    let d = fixtures().join("php-version");
    let dir = temp_dir("php-version");
    let error = std::fs::read_to_string(d.join("error.log")).unwrap();
    let day = &error[..10]; // 2026/12/03
    let (y, m, dd) = (&day[..4], &day[5..7], &day[8..10]);
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ][m.parse::<usize>().unwrap() - 1];
    let log = dir.join("php7.0-fpm.log");
    std::fs::write(
        &log,
        format!(
            "[{dd}-{month}-{y} 00:00:01] NOTICE: fpm is running, pid 812\n[{dd}-{month}-{y} 00:00:01] NOTICE: ready to handle connections\n"
        ),
    )
    .unwrap();
    let report = analyze(&[&d.join("error.log"), &log]);
    let f = &report["failures"][0];
    assert_eq!(f["cause"], "wrong-socket-path", "{}", f["reason"]);
    let reason = f["reason"].as_str().unwrap();
    assert!(
        reason.contains("PHP 7.2") && reason.contains("php7.0-fpm.log"),
        "{reason}"
    );

    let pool = dir.join("www.conf");
    std::fs::write(
        &pool,
        "[www]\nuser = www-data\ngroup = www-data\nlisten = /run/php/php7.0-fpm.sock\n",
    )
    .unwrap();
    let report = analyze(&[&d.join("error.log"), &log, &pool]);
    let f = &report["failures"][0];
    assert_eq!(f["cause"], "wrong-socket-path", "{}", f["reason"]);
    let fix = f["fix"].as_str().unwrap();
    assert!(
        fix.contains("`fastcgi_pass unix:/run/php/php7.0-fpm.sock;`"),
        "{fix}"
    );
}
