//! The analyzer on NGINX error lines for every kind of upstream, written the way
//! NGINX 1.22 prints them: the seven causes only for PHP-FPM, plain words for other
//! backends, and `no live upstreams` taking the cause of the group's failures.

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("gatelog-upstreams-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn analyze(args: &[&std::path::Path]) -> Vec<Value> {
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
    let mut v: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    gatelog_analyzer::report::shared::inline(&mut v);
    v["failures"].as_array().unwrap().clone()
}

fn text<'a>(f: &'a Value, key: &str) -> &'a str {
    f[key].as_str().unwrap_or_default()
}

const OTHER_BACKENDS: &str = r#"2026/04/02 14:23:10 [error] 812#812: *30 connect() failed (111: Connection refused) while connecting to upstream, client: 127.0.0.1, server: x, request: "GET / HTTP/1.1", upstream: "http://127.0.0.1:3000/", host: "x"
2026/04/02 14:23:11 [crit] 812#812: *31 connect() to unix:/tmp/app.sock failed (2: No such file or directory) while connecting to upstream, client: 127.0.0.1, server: x, request: "GET /api HTTP/1.1", upstream: "http://unix:/tmp/app.sock:/api", host: "x"
2026/04/02 14:23:12 [error] 812#812: *32 upstream timed out (110: Connection timed out) while reading response header from upstream, client: 127.0.0.1, server: x, request: "GET /slow HTTP/1.1", upstream: "uwsgi://unix:/run/uwsgi/app/x/socket:", host: "x"
2026/04/02 14:23:13 [error] 812#812: *33 recv() failed (104: Connection reset by peer) while reading response header from upstream, client: 127.0.0.1, server: x, request: "GET / HTTP/1.1", upstream: "https://10.0.0.5:443/", host: "x"
2026/04/02 14:23:14 [error] 812#812: *34 upstream prematurely closed connection while reading response header from upstream, client: 127.0.0.1, server: x, request: "POST /helloworld.Greeter/SayHello HTTP/2.0", upstream: "grpc://127.0.0.1:50051", host: "x"
"#;

#[test]
fn other_backends_are_unknown_in_plain_words_with_their_own_fix() {
    let dir = temp_dir("other");
    let log = dir.join("error.log");
    std::fs::write(&log, OTHER_BACKENDS).unwrap();
    // An FPM log among the inputs changes nothing: the scheme says what NGINX spoke.
    let fpm = dir.join("php8.2-fpm.log");
    std::fs::write(
        &fpm,
        "[02-Apr-2026 14:20:00] NOTICE: fpm is running, pid 700\n[02-Apr-2026 14:20:00] NOTICE: ready to handle connections\n",
    )
    .unwrap();
    let failures = analyze(&[&log, &fpm]);
    let want = [
        ("http", "the backend at http://127.0.0.1:3000 refused the connection (ECONNREFUSED): nothing listens there"),
        ("http", "the socket /tmp/app.sock does not exist (ENOENT)"),
        ("uwsgi", "did not send a response header within `uwsgi_read_timeout` (60 s by default, unless set): the backend is slow or stuck"),
        ("https", "https://10.0.0.5:443 reset the connection (ECONNRESET) before answering"),
        ("grpc", "grpc://127.0.0.1:50051 closed the connection before answering"),
    ];
    assert_eq!(failures.len(), want.len(), "{failures:#?}");
    for (f, (protocol, reason)) in failures.iter().zip(want) {
        assert_eq!(text(f, "cause"), "unknown", "{f}");
        assert_eq!(text(f, "upstream_protocol"), protocol, "{f}");
        assert!(text(f, "reason").contains(reason), "{}", text(f, "reason"));
        let fix = text(f, "fix");
        for fpm_word in [
            "php-fpm",
            "PHP-FPM",
            "pm.max_children",
            "fastcgi_",
            "systemctl start php",
        ] {
            assert!(!fix.contains(fpm_word), "{fpm_word} in: {fix}");
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn no_live_upstreams_takes_the_cause_of_the_groups_failures() {
    let dir = temp_dir("nolive");
    let log = dir.join("error.log");
    std::fs::write(
        &log,
        r#"2026/04/02 14:23:15 [crit] 812#812: *34 connect() to unix:/run/a.sock failed (2: No such file or directory) while connecting to upstream, client: 127.0.0.1, server: x, request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/run/a.sock:", host: "x"
2026/04/02 14:23:15 [crit] 812#812: *34 connect() to unix:/run/b.sock failed (2: No such file or directory) while connecting to upstream, client: 127.0.0.1, server: x, request: "GET / HTTP/1.1", upstream: "fastcgi://unix:/run/b.sock:", host: "x"
2026/04/02 14:23:17 [error] 812#812: *35 no live upstreams while connecting to upstream, client: 127.0.0.1, server: x, request: "GET / HTTP/1.1", upstream: "fastcgi://php_pool", host: "x"
"#,
    )
    .unwrap();
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        "http {\n    upstream php_pool {\n        server unix:/run/a.sock;\n        server unix:/run/b.sock;\n    }\n    server {\n        server_name x;\n        location / {\n            fastcgi_pass php_pool;\n        }\n    }\n}\n",
    )
    .unwrap();
    let fpm = dir.join("php-fpm.log");
    std::fs::write(
        &fpm,
        "[02-Apr-2026 14:20:00] NOTICE: fpm is running, pid 700\n[02-Apr-2026 14:20:00] NOTICE: ready to handle connections\n[02-Apr-2026 14:23:00] NOTICE: Terminating ...\n[02-Apr-2026 14:23:00] NOTICE: exiting, bye-bye!\n",
    )
    .unwrap();
    let failures = analyze(&[&log, &conf, &fpm]);
    assert_eq!(failures.len(), 2, "{failures:#?}");
    for f in &failures {
        assert_eq!(text(f, "cause"), "fpm-not-running", "{f}");
    }
    let no_live = &failures[1];
    let reason = text(no_live, "reason");
    assert!(reason.starts_with("no live upstreams"), "{reason}");
    assert!(
        reason.contains("`php_pool`") && reason.contains("nginx.conf:3"),
        "{reason}"
    );
    assert!(
        text(no_live, "fix").contains("no live upstreams"),
        "{}",
        text(no_live, "fix")
    );

    // The no-live line alone: unknown, saying what is missing.
    let alone = dir.join("alone.log");
    std::fs::write(
        &alone,
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .nth(2)
            .unwrap(),
    )
    .unwrap();
    let failures = analyze(&[&alone]);
    assert_eq!(text(&failures[0], "cause"), "unknown");
    assert!(
        text(&failures[0], "reason").contains("not in the input"),
        "{}",
        failures[0]
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_config_names_the_protocol_of_a_line_pasted_without_its_context() {
    let dir = temp_dir("conf");
    let log = dir.join("error.log");
    // Cut after `server:` as often pasted: no `upstream:` scheme.
    std::fs::write(
        &log,
        "2026/04/02 14:23:11 [crit] 812#812: *31 connect() to unix:/tmp/app.sock failed (2: No such file or directory) while connecting to upstream, client: 127.0.0.1, server: x\n",
    )
    .unwrap();
    let conf = dir.join("app.conf");
    std::fs::write(
        &conf,
        "server {\n    server_name x;\n    location / {\n        proxy_pass http://unix:/tmp/app.sock:/;\n    }\n}\n",
    )
    .unwrap();
    let failures = analyze(&[&log, &conf]);
    assert_eq!(
        text(&failures[0], "upstream_protocol"),
        "http",
        "{}",
        failures[0]
    );
    assert_eq!(text(&failures[0], "cause"), "unknown");
    assert!(
        text(&failures[0], "reason").starts_with("the socket /tmp/app.sock does not exist"),
        "{}",
        failures[0]
    );
    // Without the config nothing says what it is: still no PHP-FPM verdict.
    let failures = analyze(&[&log]);
    assert_eq!(text(&failures[0], "upstream_protocol"), "unknown");
    assert_eq!(text(&failures[0], "cause"), "unknown");
    std::fs::remove_dir_all(&dir).ok();
}
