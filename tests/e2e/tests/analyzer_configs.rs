//! The analyzer with configs as they are in the world: PHP-FPM up on one TCP port
//! while NGINX passes to another; an `upstream {}` group of two real pools, both
//! stopped (`no live upstreams`); and a Debian-layout tree (`nginx.conf` →
//! `sites-enabled/` symlink → a site → `include snippets/...` → `fastcgi_pass`;
//! `php-fpm.conf` → `include=pool.d/*.conf`) that the real NGINX and FPM run with,
//! given to the analyzer only as its two top files.
//!
//! As everywhere in the suite, NGINX's own lines are checked first (the fault was
//! real), then the analyzer's reports.

use std::path::Path;
use std::time::Duration;

use gatelog_e2e::analyzer::{self, expected_kind, Given, Sent};
use gatelog_e2e::check::{observe, AttemptOutcome};
use gatelog_e2e::client::{self, Response};
use gatelog_e2e::env::Flavour;
use gatelog_e2e::fpm::{Fpm, Listen, Pool};
use gatelog_e2e::lab::{now_ms, Lab, TestResult, Timeouts};
use gatelog_e2e::net::{free_port, listening};
use gatelog_e2e::nginx::Nginx;
use gatelog_e2e::scenarios::{self, wait_text};

use super::analyzer::{finish_outcome, report_errors};
use crate::Body;

pub fn all() -> Vec<(&'static str, Body)> {
    vec![
        ("analyzer_fpm_tcp_wrong_port", tcp_wrong_port as Body),
        (
            "analyzer_no_live_upstreams_two_pools_stopped",
            two_pools_stopped as Body,
        ),
        ("analyzer_debian_layout_includes", debian_layout as Body),
    ]
}

const T: Timeouts = Timeouts::new(1000, 2000, 3000);

/// A refused TCP connect, as NGINX prints it (synchronously or from SO_ERROR).
fn refused(peer: &str) -> Vec<AttemptOutcome> {
    let sync = AttemptOutcome {
        message: format!("connect() to {peer} failed (111: Connection refused)"),
        ..AttemptOutcome::connect_async(111)
    };
    vec![AttemptOutcome::connect_async(111), sync]
}

fn expect_status(r: &Response, want: u16) -> Result<(), String> {
    if r.status == want {
        Ok(())
    } else {
        Err(format!(
            "{} answered {} (expected {want}): {}",
            r.target,
            r.status,
            String::from_utf8_lossy(&r.body)
        ))
    }
}

/// FPM listens on 127.0.0.1:A (and says "ready to handle connections"); NGINX's
/// `fastcgi_pass` names 127.0.0.1:B where nothing listens. With both configs and
/// FPM's log: `wrong-socket-path`, and the fix names both addresses.
fn tcp_wrong_port(flavour: &Flavour) -> TestResult {
    analyzer::binary()?;
    let lab = Lab::new(flavour, "tcp-wrong-port")?;
    let fport = free_port()?;
    let fpm = Fpm::start(&lab.prefix, Pool::tcp(&lab.prefix, "www", fport, 1), None)?;
    let wrong = free_port()?;
    if !listening(fport) || listening(wrong) {
        return Err(format!(
            "premise: FPM must listen on {fport} ({}) and nothing on {wrong} ({})",
            listening(fport),
            listening(wrong)
        ));
    }
    wait_text(
        &fpm.log,
        "ready to handle connections",
        Duration::from_secs(1),
    )?;
    let good = format!("127.0.0.1:{fport}");
    let bad = format!("127.0.0.1:{wrong}");
    let port = free_port()?;
    let http = format!(
        "{}{}",
        lab.default_gatelog(),
        lab.server(port, &lab.php_location("~ \\.php$", &bad, T, ""))
    );
    let nginx = lab.start_nginx(http, &[port])?;
    let start = now_ms();
    let resps = vec![
        client::get(port, "/ok.php?n=1")?,
        client::get(port, "/ok.php?n=2")?,
    ];
    let end = now_ms();
    for r in &resps {
        expect_status(r, 502)?;
    }
    let all: Vec<&Response> = resps.iter().collect();
    let obs = observe(&lab, &all, resps.len())?;
    for r in &resps {
        obs.fails(r, &refused(&bad))?;
    }
    drop(nginx);
    let (log, conf) = (fpm.log.clone(), fpm.conf.clone());
    drop(fpm);
    let dir = lab.prefix.path("out");
    scenarios::save_logs(
        &lab,
        &dir,
        Some(&log),
        Some(&conf),
        &Err("not needed".into()),
    )?;
    let sent: Vec<Sent> = resps
        .into_iter()
        .map(|r| {
            let mut s = Sent::new(r, Some("wrong-socket-path"), (start, end), "wrong port");
            s.protocol = Some("fastcgi");
            s.fix_mentions_with_conf = vec![good.clone(), bad.clone()];
            s
        })
        .collect();
    let expect = analyzer::expectations(&dir.join("nginx-access.log"), &sent)?;
    let conf_name = conf
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut givens = vec![Given::new("error-log+fpm-log+configs")
        .flag("nginx-log", &dir.join("nginx-error.log"), "nginx-error")
        .flag("fpm-log", &dir.join("php-fpm.log"), "fpm")
        .file(&dir.join("nginx.conf"), "nginx-conf")
        .file(&dir.join(&conf_name), "fpm-conf")
        .seen_in(&["error_log"])
        .configs()];
    if lab.with_module() {
        givens.push(
            Given::new("records+fpm-log+configs")
                .file(&dir.join("gatelog.jsonl"), "records")
                .file(&dir.join("php-fpm.log"), "fpm")
                .file(&dir.join("nginx.conf"), "nginx-conf")
                .file(&dir.join(&conf_name), "fpm-conf")
                .seen_in(&["record"])
                .records()
                .configs(),
        );
        givens.push(
            Given::new("whole directory")
                .dir(&dir, expected_kind)
                .seen_in(&["record", "error_log"])
                .records()
                .configs(),
        );
    }
    let errs = analyzer::check_given(&dir, &givens, &expect)?;
    report_errors("FPM on one port, NGINX on another", errs, &dir)?;
    Ok(finish_outcome(&lab, "wrong TCP port"))
}

/// `upstream php_pool { server unix:a.sock; server unix:b.sock; }` of two real
/// pools (one FPM master each), both stopped: the first request fails on both
/// sockets (ENOENT), NGINX marks both peers down, the next ones get `no live
/// upstreams`. Every one is `fpm-not-running`: with the configs and FPM's logs, and
/// from the error log alone.
fn two_pools_stopped(flavour: &Flavour) -> TestResult {
    analyzer::binary()?;
    let lab = Lab::new(flavour, "two-pools-down")?;
    let mut a = Fpm::start(&lab.prefix, Pool::unix(&lab.prefix, "a", 1), None)?;
    let mut b = Fpm::start(&lab.prefix, Pool::unix(&lab.prefix, "b", 1), None)?;
    let sock = |f: &Fpm| match &f.pool.listen {
        Listen::Unix(p) => p.clone(),
        Listen::Tcp(_) => Default::default(),
    };
    let (sa, sb) = (sock(&a), sock(&b));
    let port = free_port()?;
    let http = format!(
        "{}    upstream php_pool {{\n        server unix:{};\n        server unix:{};\n    }}\n{}",
        lab.default_gatelog(),
        sa.display(),
        sb.display(),
        lab.server(port, &lab.php_location("~ \\.php$", "php_pool", T, ""))
    );
    let nginx = lab.start_nginx(http, &[port])?;
    // Round robin: one request to each pool, both answer.
    let oks = vec![
        client::get(port, "/ok.php?before=stop&n=1")?,
        client::get(port, "/ok.php?before=stop&n=2")?,
    ];
    for r in &oks {
        expect_status(r, 200)?;
    }
    a.stop_clean()?;
    b.stop_clean()?;
    for (f, s) in [(&a, &sa), (&b, &sb)] {
        wait_text(&f.log, "exiting, bye-bye!", Duration::from_secs(2))?;
        if s.exists() {
            return Err(format!("{} still exists after FPM stopped", s.display()));
        }
    }
    let start = now_ms();
    let fails = vec![
        client::get(port, "/ok.php?after=stop&n=1")?,
        client::get(port, "/ok.php?after=stop&n=2")?,
        client::get(port, "/index.php?after=stop&n=3")?,
    ];
    let end = now_ms();
    for r in &fails {
        expect_status(r, 502)?;
    }
    let mut all: Vec<&Response> = oks.iter().collect();
    all.extend(fails.iter());
    let obs = observe(&lab, &all, fails.len())?;
    let first = obs.fails(
        &fails[0],
        &[
            AttemptOutcome::connect_unix(&sa, 2),
            AttemptOutcome::connect_unix(&sb, 2),
        ],
    )?;
    if first.len() != 2 {
        return Err(format!(
            "the first request after the stop should fail on both sockets, NGINX logged {} failure(s)",
            first.len()
        ));
    }
    let nolive = AttemptOutcome {
        event: "no_live_upstreams",
        errno: None,
        level: "error",
        message: "no live upstreams".into(),
    };
    for r in &fails[1..] {
        obs.fails(r, std::slice::from_ref(&nolive))?;
    }
    drop(nginx);
    let dir = lab.prefix.path("out");
    scenarios::save_logs(&lab, &dir, None, None, &Err("not needed".into()))?;
    for f in [&a, &b] {
        let copy = |from: &Path| -> Result<(), String> {
            let name = from.file_name().unwrap_or_default();
            std::fs::copy(from, dir.join(name))
                .map(|_| ())
                .map_err(|e| format!("copy {}: {e}", from.display()))
        };
        copy(&f.log)?;
        copy(&f.conf)?;
    }
    drop((a, b));
    let mut sent: Vec<Sent> = oks
        .into_iter()
        .map(|r| Sent::new(r, None, (start, end), "up"))
        .collect();
    for r in fails {
        let mut s = Sent::new(
            r,
            Some("fpm-not-running"),
            (start, end),
            "both pools stopped",
        );
        s.protocol = Some("fastcgi");
        sent.push(s);
    }
    let expect = analyzer::expectations(&dir.join("nginx-access.log"), &sent)?;
    let f = |n: &str| dir.join(n);
    let mut givens = vec![
        Given::new("error-log+fpm-logs+configs")
            .flag("nginx-log", &f("nginx-error.log"), "nginx-error")
            .flag("fpm-log", &f("php-fpm-a.log"), "fpm")
            .flag("fpm-log", &f("php-fpm-b.log"), "fpm")
            .file(&f("nginx.conf"), "nginx-conf")
            .file(&f("php-fpm-a.conf"), "fpm-conf")
            .file(&f("php-fpm-b.conf"), "fpm-conf")
            .seen_in(&["error_log"])
            .configs(),
        Given::new("error log alone")
            .flag("nginx-log", &f("nginx-error.log"), "nginx-error")
            .seen_in(&["error_log"]),
    ];
    if lab.with_module() {
        givens.push(
            Given::new("records+fpm-logs+configs")
                .file(&f("gatelog.jsonl"), "records")
                .file(&f("php-fpm-a.log"), "fpm")
                .file(&f("php-fpm-b.log"), "fpm")
                .file(&f("nginx.conf"), "nginx-conf")
                .file(&f("php-fpm-a.conf"), "fpm-conf")
                .file(&f("php-fpm-b.conf"), "fpm-conf")
                .seen_in(&["record"])
                .records()
                .configs(),
        );
    }
    let errs = analyzer::check_given(&dir, &givens, &expect)?;
    report_errors("upstream group of two stopped pools", errs, &dir)?;
    Ok(finish_outcome(&lab, "no live upstreams"))
}

/// A Debian-layout tree in the prefix, run for real by NGINX (`-c
/// etc/nginx/nginx.conf`) and PHP-FPM (`-y etc/php/8.2/fpm/php-fpm.conf`). The site's
/// PHP location reaches its `fastcgi_pass` through `include snippets/php-upstream.conf`
/// (relative to the config prefix), and that names `php7.4-fpm.sock` while the only
/// pool (in `pool.d/www.conf`, reached through `include=`) listens on
/// `php8.2-fpm.sock`. Given only the two top files (+ logs), the analyzer must
/// follow the includes: `wrong-socket-path`, the fix naming both sockets and the
/// snippet to change.
fn debian_layout(flavour: &Flavour) -> TestResult {
    analyzer::binary()?;
    let lab = Lab::new(flavour, "debian-layout")?;
    let p = &lab.prefix;
    let root = p.root().display().to_string();
    let port = free_port()?;
    let good = p.path("run/php/php8.2-fpm.sock");
    let wrong = p.path("run/php/php7.4-fpm.sock");
    std::fs::create_dir_all(p.path("run/php")).map_err(|e| format!("mkdir run/php: {e}"))?;
    p.write("etc/nginx/conf.d/.keep", "", 0o644)?;
    std::fs::copy(
        p.path("conf/fastcgi_params"),
        p.path("etc/nginx/fastcgi_params"),
    )
    .map_err(|e| format!("copy fastcgi_params: {e}"))?;

    // nginx.conf: the lab's frame (module, logs, temp paths), the http{} content of
    // Debian's: conf.d and sites-enabled included.
    let conf = lab.conf(format!(
        "{}    include {root}/etc/nginx/conf.d/*.conf;\n    include {root}/etc/nginx/sites-enabled/*;\n",
        lab.default_gatelog()
    ));
    let nginx_conf = p.write("etc/nginx/nginx.conf", &conf.render(p), 0o644)?;
    let site = format!(
        r#"server {{
    listen 127.0.0.1:{port};
    server_name e2e.test;
    root {root}/www;
    index index.php index.html;
    add_header X-Request-Id $request_id always;

    location / {{
        try_files $uri $uri/ =404;
    }}

    location ~ \.php$ {{
        include snippets/fastcgi-php.conf;
        include snippets/php-upstream.conf;
    }}
}}
"#
    );
    p.write("etc/nginx/sites-available/site", &site, 0o644)?;
    std::fs::create_dir_all(p.path("etc/nginx/sites-enabled"))
        .map_err(|e| format!("mkdir sites-enabled: {e}"))?;
    std::os::unix::fs::symlink(
        p.path("etc/nginx/sites-available/site"),
        p.path("etc/nginx/sites-enabled/site"),
    )
    .map_err(|e| format!("symlink sites-enabled/site: {e}"))?;
    // Debian's snippet, as shipped.
    p.write(
        "etc/nginx/snippets/fastcgi-php.conf",
        "# regex to split $uri to $fastcgi_script_name and $fastcgi_path\nfastcgi_split_path_info ^(.+?\\.php)(/.*)$;\n\n# Check that the PHP script exists before passing it\ntry_files $fastcgi_script_name =404;\n\n# Bypass the fact that try_files resets $fastcgi_path_info\n# see: http://trac.nginx.org/nginx/ticket/321\nset $path_info $fastcgi_path_info;\nfastcgi_param PATH_INFO $path_info;\n\nfastcgi_index index.php;\ninclude fastcgi_params;\n",
        0o644,
    )?;
    // The fault: a socket named for a PHP version that has no pool here.
    let upstream_snippet = p.write(
        "etc/nginx/snippets/php-upstream.conf",
        &format!(
            "fastcgi_connect_timeout {}ms;\nfastcgi_read_timeout {}ms;\nfastcgi_pass unix:{};\n",
            T.connect,
            T.read,
            wrong.display()
        ),
        0o644,
    )?;

    let fpm_log = p.path("logs/php8.2-fpm.log");
    let fpm_conf = p.write(
        "etc/php/8.2/fpm/php-fpm.conf",
        &format!(
            ";;;;;;;;;;;;;;;;;;;;;\n; FPM Configuration ;\n;;;;;;;;;;;;;;;;;;;;;\n\n[global]\npid = {root}/run/php/php8.2-fpm.pid\nerror_log = {}\nlog_level = notice\ndaemonize = no\n\n;;;;;;;;;;;;;;;;;;;;\n; Pool Definitions ;\n;;;;;;;;;;;;;;;;;;;;\ninclude={root}/etc/php/8.2/fpm/pool.d/*.conf\n",
            fpm_log.display()
        ),
        0o644,
    )?;
    p.write(
        "etc/php/8.2/fpm/pool.d/www.conf",
        &format!(
            "[www]\nuser = www-data\ngroup = www-data\nlisten = {}\nlisten.owner = www-data\nlisten.group = www-data\nlisten.mode = 0660\npm = static\npm.max_children = 1\ncatch_workers_output = yes\nchdir = /\nclear_env = yes\n",
            good.display()
        ),
        0o644,
    )?;
    let mut pool = Pool::unix(p, "www", 1);
    pool.listen = Listen::Unix(good.clone());
    let fpm = Fpm::start_conf(p, pool, &fpm_conf, &fpm_log)?;
    // FPM really runs with the pool from pool.d: its socket is there.
    let is_socket = std::fs::metadata(&good)
        .map(|m| std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()))
        .unwrap_or(false);
    if !is_socket || wrong.exists() {
        return Err(format!(
            "premise: {} must be FPM's socket ({is_socket}) and {} must not exist",
            good.display(),
            wrong.display()
        ));
    }
    let nginx = Nginx::start_file(&lab.flavour, p, &nginx_conf, &[port])?;
    let start = now_ms();
    let resps = vec![
        client::get(port, "/ok.php?n=1")?,
        client::get(port, "/ok.php?n=2")?,
    ];
    let end = now_ms();
    for r in &resps {
        expect_status(r, 502)?;
    }
    let all: Vec<&Response> = resps.iter().collect();
    let obs = observe(&lab, &all, resps.len())?;
    // NGINX ran the tree: the path it failed on is the snippet's.
    for r in &resps {
        obs.fails(r, &[AttemptOutcome::connect_unix(&wrong, 2)])?;
    }
    drop(nginx);
    drop(fpm);
    let snippet_name = upstream_snippet
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let sent: Vec<Sent> = resps
        .into_iter()
        .map(|r| {
            let mut s = Sent::new(r, Some("wrong-socket-path"), (start, end), "debian layout");
            s.protocol = Some("fastcgi");
            s.fix_mentions.push(wrong.display().to_string());
            s.fix_mentions_with_conf = vec![good.display().to_string(), snippet_name.clone()];
            s
        })
        .collect();
    let expect = analyzer::expectations(&p.path("logs/access.log"), &sent)?;
    let mut givens = vec![Given::new("error-log+fpm-log+top configs (flags)")
        .flag("nginx-log", &p.path("logs/error.log"), "nginx-error")
        .flag("fpm-log", &fpm_log, "fpm")
        .flag("nginx-conf", &nginx_conf, "nginx-conf")
        .flag("fpm-conf", &fpm_conf, "fpm-conf")
        .seen_in(&["error_log"])
        .configs()];
    if lab.with_module() {
        givens.push(
            Given::new("records+fpm-log+top configs")
                .file(&lab.records_path(), "records")
                .file(&fpm_log, "fpm")
                .file(&nginx_conf, "nginx-conf")
                .file(&fpm_conf, "fpm-conf")
                .seen_in(&["record"])
                .records()
                .configs(),
        );
    }
    let errs = analyzer::check_given(p.root(), &givens, &expect)?;
    report_errors("Debian layout", errs, p.root())?;
    Ok(finish_outcome(&lab, "Debian layout"))
}
