//! Every parser on every prefix of real-looking lines (as a cut or truncated log
//! would give them) and on a few kinds of junk: no panic, ever.

use gatelog_analyzer::input::framing::strip_ansi;
use gatelog_analyzer::input::route::Router;
use gatelog_analyzer::model::InputKind;
use gatelog_analyzer::parse::{
    access, fpm, fpm_conf, journal, kernel, nginx, nginx_conf, records, syslog,
};
use gatelog_analyzer::time::{self, LocalClock, Zone};

const LINES: &[&str] = &[
    r#"2026/04/02 14:23:17 [crit] 1234#1234: *5678 connect() to unix:/run/php/php8.2-fpm.sock failed (2: No such file or directory) while connecting to upstream, client: 203.0.113.7, server: example.com, request: "GET /index.php HTTP/1.1", upstream: "fastcgi://unix:/run/php/php8.2-fpm.sock:", host: "example.com""#,
    "2026/04/02 14:23:18 [error] 1234#1234: *5685 FastCGI sent in stderr: \"PHP message: PHP Fatal error:  Uncaught Error: Class \"App\\Foo\" not found\" while reading response header from upstream, client: 1.2.3.4, server: a, request: \"GET / HTTP/1.1\", upstream: \"fastcgi://127.0.0.1:9000\", host: \"a\", referrer: \"b\"",
    "2026/04/02 14:23:18 [error] 1#1: *43 upstream timed out... (110: Connection timed out)",
    "2026/04/02 14:23:18 [error] 1#1: *44 SSL_read() failed (SSL: error:0A000126:SSL routines::unexpected eof while reading) (104: Connection reset by peer) while reading upstream, client: 1.2.3.4, server: a",
    r#"2026/04/02 14:23:18 [error] 1#1: *45 php-fpm could not be resolved (3: Host not found), client: 1.2.3.4, server: a, request: "GET / HTTP/1.1", host: "a""#,
    "[02-Apr-2026 14:23:17.291234] WARNING: pid 812, fpm_children_bury(), line 281: [pool www] child 23114 exited on signal 9 (SIGKILL - core dumped) after 311.204556 seconds from start",
    r#"[02-Apr-2026 14:26:35] WARNING: [pool www] child 23150, script '/var/www/html/report.php' (request: "GET /report.php?id=7") execution timed out (30.012345 sec), terminating"#,
    r#"[02-Apr-2026 14:23:17] WARNING: [pool www] child 23114 said into stderr: "NOTICE: PHP message: x", pipe is closed"#,
    "[02-Apr-2026 14:23:17] ERROR: unable to bind listening socket for address '/run/php/php8.2-fpm.sock': Address already in use (98)",
    "[423847.291234] Out of memory: Killed process 23114 (php-fpm8.2) total-vm:581544kB, anon-rss:392492kB, file-rss:0kB, shmem-rss:12kB, UID:33 pgtables:976kB oom_score_adj:0",
    "[Thu Apr  2 14:23:17 2026] oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/x,task_memcg=/x,task=php-fpm8.2,pid=23114,uid=33",
    "kern  :err   : [423847.291234] php-fpm8.2[23120]: segfault at 8 ip 00007f3a1c2b4e5a sp 00007ffd4d9e8a30 error 4 in opcache.so[7f3a1c280000+d2000] likely on CPU 3 (core 3, socket 0)",
    "2026-04-02T14:23:17,291234+00:00 traps: php-fpm8.2[23120] general protection fault ip:7f2b1c4d5e6f sp:7ffe0a9b6c60 error:0 in libc.so.6[7f2b1c428000+155000]",
    "Apr  2 14:23:17 web1 kernel: [423847.291234] Memory cgroup out of memory: Kill process 2311 (php-fpm7.3) score 987 or sacrifice child",
    "Thu 2026-04-02 14:23:17 UTC web1 systemd[1]: php8.2-fpm.service: Main process exited, code=exited, status=78/CONFIG",
    "<3>1 2026-04-02T14:23:17.291234+00:00 web1 kernel - - - M",
    "Apr 02 14:23:17 web1 systemd-oomd[512]: Killed /system.slice/php8.2-fpm.service due to memory pressure",
    r#"{"__REALTIME_TIMESTAMP":"1775139797291234","_TRANSPORT":"kernel","MESSAGE":"Out of memory: Killed process 1 (php-fpm)"}"#,
    r#"203.0.113.7 - - [02/Apr/2026:14:23:17 +0000] "GET /index.php HTTP/1.1" 502 157 "-" "curl/8.5.0""#,
    r#"rid=7b51 conn=1 status=502 request="GET /oom.php HTTP/1.1" msec=1775139797.000"#,
    r#"{"schema":"gatelog.v1","time":"2026-04-02T14:23:17.123+00:00","status":502,"attempts":[{"event":"reset"}]}"#,
    "listen = /run/php/$pool.sock ; comment",
    "    fastcgi_pass unix:/run/php/php8.2-fpm.sock; # c",
    // Framings: docker -t, compose (colours, -t), kubectl, syslog-shipped FPM,
    // docker's json-file, lines pasted without a date.
    "2024-03-05T10:15:42.123456789Z 2024/03/05 10:15:42 [error] 29#29: *1 connect() to unix:/run/php/php-fpm.sock failed (2: No such file or directory) while connecting to upstream, client: 172.18.0.1",
    "\u{1b}[36mphp-fpm-1  | \u{1b}[0m2024-03-05T10:15:42.123456789Z NOTICE: PHP message: PHP Fatal error:  x",
    "\u{1b}[36mweb-1  |\u{1b}[0m 172.18.0.1 - - [05/Mar/2024:10:15:42 +0000] \"GET / HTTP/1.1\" 502 157",
    "[pod/shop-7c5b4f6c8-x2x9q/php-fpm] 2024-03-05T10:15:42.12Z [05-Mar-2024 10:15:42] WARNING: [pool www] child 1 exited on signal 9 (SIGKILL) after 1.0 seconds from start",
    "Mar  5 10:15:42 web1 php-fpm[812]: [WARNING] [pool www] server reached pm.max_children setting (5), consider raising it",
    r#"{"log":"2024/03/05 10:15:42 [error] 29#29: *1 upstream timed out (110: Connection timed out)\n","stream":"stderr","time":"2024-03-05T10:15:42.123456789Z"}"#,
    r#"[error] 1234#1234: *5 connect() to unix:/run/php/php7.2-fpm.sock failed (2: No such file or directory) while connecting to upstream, client: 1.2.3.4, server: example.com, request: "GET / HTTP/1.1""#,
    "172.18.0.3 -  05/Mar/2024:10:15:42 +0000 \"GET /index.php\" 200",
];

fn all_parsers(s: &str) {
    let zone = Zone::utc();
    let mut clock = LocalClock::new(&zone);
    let mut env = syslog::Envelope::new(LocalClock::new(&zone), (2026, 4));
    if let Some(e) = nginx::parse_entry(s) {
        let _ = nginx::classify_message(&e);
    }
    let _ = gatelog_record::message::classify(s.as_bytes(), None);
    let _ = gatelog_record::message::classify(s.as_bytes(), Some(b"reading upstream"));
    let _ = fpm::parse_line(s);
    let _ = fpm::parse_syslog_message(s);
    let _ = kernel::parse_message(s);
    let _ = kernel::parse_coredump(s);
    let _ = kernel::split_boot_stamp(s);
    let _ = kernel::split_dmesg_line(s, &mut clock);
    let _ = env.parse(s);
    let _ = syslog::parse_journal_json(s);
    let _ = journal::parse_message("systemd", s);
    let _ = journal::parse_message("systemd-oomd", s);
    let _ = access::parse_line(s);
    let _ = records::parse_line(s);
    let _ = fpm_conf::FpmConfParser::default().feed(s, 1);
    let _ = fpm_conf::dump_body(s);
    let mut conf = nginx_conf::NginxConf::default();
    let _ = nginx_conf::FileParser::new("x".into(), Vec::new(), 0).feed(&mut conf, s, 1);
    let _ = nginx_conf::dump_marker(s);
    conf.resolve();
    let _ = time::parse_user_time(s, &zone);
    let _ = time::parse_iso_with_offset(s.as_bytes());
    let _ = time::parse_access_time(s.as_bytes());
    let _ = time::parse_ctime(s.as_bytes());
    let _ = nginx::parse_undated_head(s, false);
    if let Some(h) = nginx::parse_undated_head(s, true) {
        let _ = nginx::split_body(h);
    }
    let clean = strip_ansi(s);
    for default in [None, Some(InputKind::Kernel), Some(InputKind::Fpm)] {
        let mut router = Router::new(&zone, (2026, 4), default);
        // Twice: the second line may continue the first.
        let _ = router.route(&clean);
        let r = router.route(&clean);
        let _ = r.framed.prefix_of(&clean);
    }
}

#[test]
fn every_prefix_of_every_line() {
    for line in LINES {
        for (i, _) in line.char_indices() {
            all_parsers(&line[..i]);
            all_parsers(&line[i..]);
        }
        all_parsers(line);
    }
}

#[test]
fn junk() {
    for s in [
        "",
        " ",
        "[",
        "]",
        "{",
        "<",
        "<1>",
        "<1>1 ",
        "[ ]",
        "[1.] ",
        "ä[ö]ü: ",
        "\u{0}\u{1}\u{2}",
        "2026/04/02 14:23:17 [error] ",
        "Thu 2026-04-02",
        "\u{1b}",
        "\u{1b}[",
        "\u{1b}[36",
        "a |",
        " | x",
        "[a/b/c]",
        "[pod/x/y]x",
        "2024-03-05T10:15:42Z",
        "2024-03-05T10:15:42.Z x",
        "{\"log\":",
        "{\"log\":1}",
        "{\"__CURSOR\":\"x\"}",
        "[error]",
        "[error] #1: x",
        "1#: x",
        "#1: x",
    ] {
        all_parsers(s);
    }
    // Multi-byte text where ASCII is expected.
    all_parsers("2026/04/02 14:23:17 [error] 1#1: *1 connect() to ü failed (2: Nö) while connecting to upstream, client: ü, server: ö, request: \"ä");
    all_parsers("[02-Äpr-2026 14:23:17] NOTICE: x");
}
