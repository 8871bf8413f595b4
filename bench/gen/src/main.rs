//! gatelog-bench-gen: a deterministic (seeded) generator of realistic inputs for
//! `gatelog analyze`, used by `bench/run`.
//!
//! It simulates one web server over many hours -- NGINX (two workers) in front of a
//! php8.2-fpm pool, with the gatelog module loaded -- and writes what that server would
//! have logged:
//!
//! - `error.log`    NGINX error log (level info): upstream failures of all seven kinds
//!   (connect() ENOENT / EACCES / ECONNREFUSED / EAGAIN, upstream timed out, recv()
//!   failed 104, upstream prematurely closed connection), multi-line `FastCGI sent in
//!   stderr` entries, static-file `open() ... failed (2: ...)` noise, other modules'
//!   lines, info and notice lines, reloads that change the worker pids;
//! - `php8.2-fpm.log` the matching PHP-FPM log: start/stop, reloads, max_children
//!   warnings, children exiting on signal 9/11/15, execution timed out, slow scripts,
//!   worker output, recycling;
//! - `kern.log`     the kernel log as `dmesg` prints it (raw, boot-relative seconds):
//!   OOM kills (full report) and segfaults of the FPM children that died, among firewall,
//!   audit and other noise;
//! - `gatelog.json` one gatelog.v1 record per request answered 502/504 (joins the error
//!   log on pid + conn);
//! - `manifest.json` the ground truth: bytes and lines per file, failures per cause.
//!
//! Usage: gatelog-bench-gen --size 100M [--seed 1] --out DIR
//! The same seed and size always produce the same bytes.
//!
//! Also: gatelog-bench-gen measure --report FILE -- CMD ARGS... runs CMD and writes its
//! wall time, CPU time and peak RSS (getrusage of the child) to FILE as JSON.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

// ------------------------------------------------------------------------------------
// Random numbers: xoshiro256** seeded through splitmix64 (no dependencies, stable).

struct Rng {
    s: [u64; 4],
}

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut s = [0u64; 4];
        for v in s.iter_mut() {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            *v = z ^ (z >> 31);
        }
        Rng { s }
    }

    fn next(&mut self) -> u64 {
        let r = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        r
    }

    /// Uniform in 0..n (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        ((self.next() >> 32) * n) >> 32
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `per_million` / 1e6.
    fn chance(&mut self, per_million: u64) -> bool {
        self.below(1_000_000) < per_million
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Index chosen with the given weights.
    fn weighted(&mut self, weights: &[u64]) -> usize {
        let total: u64 = weights.iter().sum();
        let mut x = self.below(total);
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len() - 1
    }
}

// ------------------------------------------------------------------------------------
// Output buffers.

struct Sink {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
    bytes: u64,
    lines: u64,
}

impl Sink {
    fn create(dir: &Path, name: &str) -> Sink {
        let path = dir.join(name);
        let file = File::create(&path).unwrap_or_else(|e| die(&format!("{}: {e}", path.display())));
        Sink { path, file, buf: Vec::with_capacity(1 << 21), bytes: 0, lines: 0 }
    }

    #[inline]
    fn s(&mut self, s: &str) -> &mut Self {
        self.buf.extend_from_slice(s.as_bytes());
        self
    }

    #[inline]
    fn b(&mut self, s: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(s);
        self
    }

    #[inline]
    fn n(&mut self, v: u64) -> &mut Self {
        push_u64(&mut self.buf, v);
        self
    }

    /// Zero-padded to `w` digits.
    #[inline]
    fn nz(&mut self, v: u64, w: usize) -> &mut Self {
        push_u64_pad(&mut self.buf, v, w, b'0');
        self
    }

    #[inline]
    fn hex(&mut self, v: u64, w: usize) -> &mut Self {
        push_hex(&mut self.buf, v, w);
        self
    }

    /// JSON string body (without quotes).
    fn js(&mut self, s: &str) -> &mut Self {
        json_escape(&mut self.buf, s);
        self
    }

    #[inline]
    fn nl(&mut self) {
        self.buf.push(b'\n');
        self.lines += 1;
        if self.buf.len() >= 1 << 20 {
            self.flush();
        }
    }

    fn flush(&mut self) {
        self.file
            .write_all(&self.buf)
            .unwrap_or_else(|e| die(&format!("{}: {e}", self.path.display())));
        self.bytes += self.buf.len() as u64;
        self.buf.clear();
    }

    fn total(&self) -> u64 {
        self.bytes + self.buf.len() as u64
    }
}

fn push_u64(buf: &mut Vec<u8>, mut v: u64) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    loop {
        i -= 1;
        tmp[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    buf.extend_from_slice(&tmp[i..]);
}

fn push_u64_pad(buf: &mut Vec<u8>, v: u64, w: usize, pad: u8) {
    let mut tmp = [0u8; 20];
    let mut i = tmp.len();
    let mut x = v;
    loop {
        i -= 1;
        tmp[i] = b'0' + (x % 10) as u8;
        x /= 10;
        if x == 0 {
            break;
        }
    }
    for _ in (tmp.len() - i)..w {
        buf.push(pad);
    }
    buf.extend_from_slice(&tmp[i..]);
}

fn push_hex(buf: &mut Vec<u8>, v: u64, w: usize) {
    const H: &[u8; 16] = b"0123456789abcdef";
    for i in (0..w).rev() {
        buf.push(H[((v >> (i * 4)) & 15) as usize]);
    }
}

fn json_escape(buf: &mut Vec<u8>, s: &str) {
    for &c in s.as_bytes() {
        match c {
            b'"' => buf.extend_from_slice(b"\\\""),
            b'\\' => buf.extend_from_slice(b"\\\\"),
            b'\n' => buf.extend_from_slice(b"\\n"),
            b'\t' => buf.extend_from_slice(b"\\t"),
            c if c < 0x20 => {
                buf.extend_from_slice(b"\\u00");
                push_hex(buf, c as u64, 2);
            }
            c => buf.push(c),
        }
    }
}

fn die(msg: &str) -> ! {
    eprintln!("gatelog-bench-gen: {msg}");
    std::process::exit(2);
}

// ------------------------------------------------------------------------------------
// Time. Everything is UTC ("local time" of the simulated host is UTC).

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Days since 1970-01-01 to (y, m, d); Howard Hinnant's civil_from_days.
fn civil(days: i64) -> (i64, u64, u64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u64;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u64;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_from_civil(y: i64, m: u64, d: u64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Formatted timestamps of the current second, recomputed when the second changes.
struct Stamps {
    sec: u64,
    nginx: Vec<u8>, // 2026/04/02 14:23:17
    fpm: Vec<u8>,   // [02-Apr-2026 14:23:17]
    iso: Vec<u8>,   // 2026-04-02T14:23:17
}

impl Stamps {
    fn new() -> Stamps {
        Stamps { sec: u64::MAX, nginx: Vec::new(), fpm: Vec::new(), iso: Vec::new() }
    }

    fn at(&mut self, sec: u64) {
        if sec == self.sec {
            return;
        }
        self.sec = sec;
        let (y, m, d) = civil((sec / 86_400) as i64);
        let s = sec % 86_400;
        let (hh, mm, ss) = (s / 3600, s / 60 % 60, s % 60);
        let y = y as u64;
        self.nginx.clear();
        push_u64(&mut self.nginx, y);
        self.nginx.push(b'/');
        push_u64_pad(&mut self.nginx, m, 2, b'0');
        self.nginx.push(b'/');
        push_u64_pad(&mut self.nginx, d, 2, b'0');
        self.nginx.push(b' ');
        hms(&mut self.nginx, hh, mm, ss);
        self.fpm.clear();
        self.fpm.push(b'[');
        push_u64_pad(&mut self.fpm, d, 2, b'0');
        self.fpm.push(b'-');
        self.fpm.extend_from_slice(MONTHS[m as usize - 1].as_bytes());
        self.fpm.push(b'-');
        push_u64(&mut self.fpm, y);
        self.fpm.push(b' ');
        hms(&mut self.fpm, hh, mm, ss);
        self.fpm.push(b']');
        self.iso.clear();
        push_u64(&mut self.iso, y);
        self.iso.push(b'-');
        push_u64_pad(&mut self.iso, m, 2, b'0');
        self.iso.push(b'-');
        push_u64_pad(&mut self.iso, d, 2, b'0');
        self.iso.push(b'T');
        hms(&mut self.iso, hh, mm, ss);
    }
}

fn hms(buf: &mut Vec<u8>, h: u64, m: u64, s: u64) {
    push_u64_pad(buf, h, 2, b'0');
    buf.push(b':');
    push_u64_pad(buf, m, 2, b'0');
    buf.push(b':');
    push_u64_pad(buf, s, 2, b'0');
}

// ------------------------------------------------------------------------------------
// The simulated site.

const SOCK: &str = "/run/php/php8.2-fpm.sock";
const OLD_SOCK: &str = "/run/php/php8.1-fpm.sock";
const TCP_PEER: &str = "127.0.0.1:9000";
const FPM_CONF: &str = "/etc/php/8.2/fpm/php-fpm.conf";
const MAX_CHILDREN: u64 = 24;

struct Server {
    name: &'static str,
    hosts: &'static [&'static str],
    /// Where PHP goes: 0 = the unix socket pool "www", 1 = the TCP pool "api".
    pool: usize,
}

const SERVERS: &[Server] = &[
    Server { name: "example.com", hosts: &["example.com", "www.example.com"], pool: 0 },
    Server { name: "shop.example.com", hosts: &["shop.example.com"], pool: 0 },
    Server { name: "api.example.com", hosts: &["api.example.com", "api.example.com:443"], pool: 1 },
];

const PHP_URIS: &[&str] = &[
    "/", "/index.php", "/index.php?p=2", "/checkout", "/cart?add=1842", "/cart", "/login", "/wp-login.php",
    "/search?q=red+shoes", "/search?q=%E2%9C%93&page=3", "/account/orders", "/report.php?id=7",
    "/report.php?id=1203&format=pdf", "/export.php?format=csv", "/admin/index.php", "/api/v1/orders?id=123",
    "/api/v1/orders", "/api/v1/products?limit=50&offset=200", "/api/v2/session", "/xmlrpc.php",
    "/blog/2026/03/why-502", "/category/shoes?sort=price", "/product/8812", "/newsletter/subscribe",
];
const STATIC_MISSING: &[&str] = &[
    "/favicon.ico", "/apple-touch-icon.png", "/apple-touch-icon-precomposed.png", "/robots.txt",
    "/.env", "/.git/config", "/wp-content/plugins/revslider/readme.txt", "/assets/js/app.4f1c2e.js.map",
    "/images/banner-2025.jpg", "/sitemap.xml", "/ads.txt", "/.well-known/security.txt",
    "/static/css/main.8a1b.css", "/uploads/2026/03/IMG_2231.jpeg", "/vendor/phpunit/phpunit/src/Util/PHP/eval-stdin.php",
];
const AGENTS_REFERRERS: &[&str] = &["https://example.com/", "https://www.google.com/", "https://shop.example.com/cart", ""];
const PHP_FILES: &[&str] = &[
    "/var/www/html/index.php", "/var/www/html/app/Http/Controllers/CartController.php",
    "/var/www/html/app/Models/Order.php", "/var/www/html/vendor/laravel/framework/src/Illuminate/Database/Connection.php",
    "/var/www/html/report.php", "/var/www/html/export.php", "/var/www/html/wp-includes/class-wpdb.php",
];
const WARNINGS: &[&str] = &[
    "PHP Warning:  Undefined array key \"utm_source\"",
    "PHP Warning:  Undefined variable $cart",
    "PHP Deprecated:  strlen(): Passing null to parameter #1 ($string) of type string is deprecated",
    "PHP Notice:  Only variables should be passed by reference",
    "PHP Warning:  Trying to access array offset on value of type null",
    "PHP Deprecated:  Creation of dynamic property App\\Models\\Order::$legacy is deprecated",
];
const EXCEPTIONS: &[&str] = &[
    "Uncaught Error: Class \"App\\Foo\" not found",
    "Uncaught PDOException: SQLSTATE[HY000] [2002] Connection refused",
    "Uncaught TypeError: App\\Cart::add(): Argument #1 ($id) must be of type int, string given",
    "Uncaught RuntimeException: Redis connection timed out",
];
const OTHER_PROCS: &[(&str, u64)] = &[
    ("systemd-journal", 321), ("mariadbd", 901), ("redis-server", 955), ("nginx", 812), ("sshd", 640),
    ("cron", 598), ("node_exporter", 702), ("fail2ban-server", 733),
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    /// connect() to unix:... failed (2: No such file or directory): FPM stopped.
    Enoent,
    /// same text, a socket path FPM does not listen on (php8.1 left in a vhost).
    WrongPath,
    /// connect() ... failed (13: Permission denied).
    Eacces,
    /// connect() ... failed (111: Connection refused): master dead, socket left / TCP pool down.
    Econnrefused,
    /// connect() ... failed (11: Resource temporarily unavailable): backlog full.
    Eagain,
    /// upstream timed out (110) while reading response header / connecting (TCP).
    Timeout,
    /// recv() failed (104: Connection reset by peer): child killed (OOM).
    Reset,
    /// upstream prematurely closed connection: child crashed (segfault) or killed.
    Closed,
}

const KINDS: [Kind; 8] =
    [Kind::Enoent, Kind::WrongPath, Kind::Eacces, Kind::Econnrefused, Kind::Eagain, Kind::Timeout, Kind::Reset, Kind::Closed];

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Enoent => "connect_enoent_fpm_down",
            Kind::WrongPath => "connect_enoent_wrong_path",
            Kind::Eacces => "connect_eacces",
            Kind::Econnrefused => "connect_econnrefused",
            Kind::Eagain => "connect_eagain",
            Kind::Timeout => "upstream_timed_out",
            Kind::Reset => "recv_reset_104",
            Kind::Closed => "prematurely_closed",
        }
    }
}

struct Req {
    server: usize,
    host: &'static str,
    client: ClientIp,
    method: &'static str,
    uri: &'static str,
    proto: &'static str,
    referrer: &'static str,
}

#[derive(Clone, Copy)]
enum ClientIp {
    V4(u8, u8, u8, u8),
    V6(u16),
}

struct Child {
    pid: u64,
    born_us: u64,
}

struct Episode {
    kind: Kind,
    until_us: u64,
    /// per million steps that emit a failure of this kind during the episode
    rate: u64,
}

struct Sim {
    rng: Rng,
    t_us: u64,
    boot_us: u64,
    st: Stamps,
    err: Sink,
    fpm: Sink,
    kern: Sink,
    rec: Sink,
    master_pid: u64,
    workers: [u64; 2],
    fpm_master: u64,
    fpm_up: bool,
    children: Vec<Child>,
    next_pid: u64,
    conn: u64,
    episode: Option<Episode>,
    rotation: Vec<Kind>,
    failures: [u64; 8],
    records: u64,
    status_502: u64,
    status_504: u64,
    oom_kills: u64,
    segfaults: u64,
    reloads: u64,
    multi_line_stderr: u64,
    kern_noise_due_us: u64,
    fpm_recycle_due_us: u64,
}

impl Sim {
    fn new(seed: u64, dir: &Path) -> Sim {
        // 2026-04-02 06:00:00 UTC; the machine booted ~4.9 days earlier.
        let start = days_from_civil(2026, 4, 2) as u64 * 86_400 + 6 * 3600;
        let mut sim = Sim {
            rng: Rng::new(seed),
            t_us: start * 1_000_000,
            boot_us: (start - 423_000) * 1_000_000 - 291_234,
            st: Stamps::new(),
            err: Sink::create(dir, "error.log"),
            fpm: Sink::create(dir, "php8.2-fpm.log"),
            kern: Sink::create(dir, "kern.log"),
            rec: Sink::create(dir, "gatelog.json"),
            master_pid: 812,
            workers: [1234, 1235],
            fpm_master: 0,
            fpm_up: false,
            children: Vec::new(),
            next_pid: 23_000,
            conn: 1_000,
            episode: None,
            rotation: Vec::new(),
            failures: [0; 8],
            records: 0,
            status_502: 0,
            status_504: 0,
            oom_kills: 0,
            segfaults: 0,
            reloads: 0,
            multi_line_stderr: 0,
            kern_noise_due_us: 0,
            fpm_recycle_due_us: 0,
        };
        sim.kern_noise_due_us = sim.t_us;
        sim.fpm_recycle_due_us = sim.t_us + 600_000_000;
        sim.fpm_start();
        sim
    }

    fn total(&self) -> u64 {
        self.err.total() + self.fpm.total() + self.kern.total() + self.rec.total()
    }

    fn pid(&mut self) -> u64 {
        self.next_pid += self.rng.range(1, 7);
        if self.next_pid > 4_000_000 {
            self.next_pid = 2_000;
        }
        self.next_pid
    }

    fn stamp(&mut self) {
        self.st.at(self.t_us / 1_000_000);
    }

    // -------------------------------------------------------------- PHP-FPM log lines

    fn fpm_line(&mut self, level: &str) -> &mut Sink {
        self.stamp();
        self.fpm.b(&self.st.fpm).s(" ").s(level).s(": ");
        &mut self.fpm
    }

    fn fpm_start(&mut self) {
        self.fpm_master = self.pid();
        let pid = self.fpm_master;
        self.fpm_line("NOTICE").s("fpm is running, pid ").n(pid).nl();
        self.fpm_line("NOTICE").s("ready to handle connections").nl();
        self.fpm_line("NOTICE").s("systemd monitor interval set to 10000ms").nl();
        self.children.clear();
        for _ in 0..MAX_CHILDREN {
            let pid = self.pid();
            self.children.push(Child { pid, born_us: self.t_us });
        }
        self.fpm_up = true;
    }

    fn fpm_stop(&mut self) {
        self.fpm_line("NOTICE").s("Terminating ...").nl();
        self.fpm_line("NOTICE").s("exiting, bye-bye!").nl();
        self.fpm_up = false;
    }

    fn fpm_reload(&mut self) {
        self.fpm_line("NOTICE").s("Reloading in progress ...").nl();
        let conf = FPM_CONF;
        self.fpm_line("NOTICE")
            .s("reloading: execvp(\"/usr/sbin/php-fpm8.2\", {\"/usr/sbin/php-fpm8.2\", \"--nodaemonize\", \"--fpm-config\", \"")
            .s(conf)
            .s("\"})")
            .nl();
        self.fpm_line("NOTICE").s("using inherited socket fd=7, \"").s(SOCK).s("\"").nl();
        self.fpm_start();
    }

    /// A child dies (signal or code); FPM respawns it. Returns the dead pid.
    fn child_dies(&mut self, how: &str, pid: Option<u64>) -> u64 {
        let i = match pid.and_then(|p| self.children.iter().position(|c| c.pid == p)) {
            Some(i) => i,
            None => self.rng.below(self.children.len() as u64) as usize,
        };
        let pid = self.children[i].pid;
        let age_us = self.t_us.saturating_sub(self.children[i].born_us) + self.rng.range(1, 999_999);
        self.fpm_line("WARNING")
            .s("[pool www] child ")
            .n(pid)
            .s(" exited ")
            .s(how)
            .s(" after ")
            .n(age_us / 1_000_000)
            .s(".")
            .nz(age_us % 1_000_000, 6)
            .s(" seconds from start")
            .nl();
        let new = self.pid();
        self.fpm_line("NOTICE").s("[pool www] child ").n(new).s(" started").nl();
        self.children[i] = Child { pid: new, born_us: self.t_us };
        pid
    }

    fn some_child(&mut self) -> u64 {
        self.rng.pick(&self.children).pid
    }

    // -------------------------------------------------------------- kernel log lines

    fn kern_line(&mut self) -> &mut Sink {
        let rel = self.t_us - self.boot_us;
        self.kern.s("[").n(rel / 1_000_000).s(".").nz(rel % 1_000_000, 6).s("] ");
        &mut self.kern
    }

    fn kern_noise(&mut self) {
        match self.rng.weighted(&[60, 12, 6, 4, 3, 2]) {
            0 => {
                let (a, b, c) = (self.rng.range(1, 223), self.rng.below(256), self.rng.below(256));
                let d = self.rng.range(1, 254);
                let dpt = *self.rng.pick(&[22u64, 23, 3389, 8080, 5432, 6379, 445, 1433]);
                let (spt, id, ttl) = (self.rng.range(1024, 65535), self.rng.below(65536), self.rng.range(40, 250));
                let mac = self.rng.next();
                self.kern_line()
                    .s("[UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56:")
                    .hex(mac & 0xff, 2)
                    .s(":")
                    .hex((mac >> 8) & 0xff, 2)
                    .s(":")
                    .hex((mac >> 16) & 0xff, 2)
                    .s(":00:00:00:08:00 SRC=")
                    .n(a)
                    .s(".")
                    .n(b)
                    .s(".")
                    .n(c)
                    .s(".")
                    .n(d)
                    .s(" DST=10.0.0.5 LEN=44 TOS=0x00 PREC=0x00 TTL=")
                    .n(ttl)
                    .s(" ID=")
                    .n(id)
                    .s(" PROTO=TCP SPT=")
                    .n(spt)
                    .s(" DPT=")
                    .n(dpt)
                    .s(" WINDOW=1024 RES=0x00 SYN URGP=0 ")
                    .nl();
            }
            1 => {
                let serial = self.rng.range(100, 999_999);
                let pid = self.rng.range(300, 30_000);
                let sec = self.t_us / 1_000_000;
                let ms = self.t_us / 1000 % 1000;
                self.kern_line()
                    .s("audit: type=1400 audit(")
                    .n(sec)
                    .s(".")
                    .nz(ms, 3)
                    .s(":")
                    .n(serial)
                    .s("): apparmor=\"DENIED\" operation=\"open\" class=\"file\" profile=\"/usr/sbin/mariadbd\" name=\"/proc/")
                    .n(pid)
                    .s("/status\" pid=")
                    .n(pid)
                    .s(" comm=\"mariadbd\" requested_mask=\"r\" denied_mask=\"r\" fsuid=106 ouid=106")
                    .nl();
            }
            2 => {
                self.kern_line().s("TCP: request_sock_TCP: Possible SYN flooding on port 443. Sending cookies.  Check SNMP counters.").nl();
            }
            3 => {
                self.kern_line().s("nf_conntrack: nf_conntrack: table full, dropping packet").nl();
            }
            4 => {
                self.kern_line().s("EXT4-fs (vda1): warning: mounting fs with errors, running e2fsck is recommended").nl();
            }
            _ => {
                let n = self.rng.range(2, 40);
                self.kern_line().s("show_signal_msg: ").n(n).s(" callbacks suppressed").nl();
            }
        }
    }

    /// The kernel's full OOM report (6.1 layout) killing `victim`.
    fn kern_oom(&mut self, victim: u64) {
        let invoker = self.some_child();
        let cpu = self.rng.below(2);
        fn l(s: &mut Sim) -> &mut Sink {
            s.kern_line()
        }
        l(self).s("php-fpm8.2 invoked oom-killer: gfp_mask=0x140cca(GFP_HIGHUSER_MOVABLE|__GFP_COMP), order=0, oom_score_adj=0").nl();
        l(self)
            .s("CPU: ")
            .n(cpu)
            .s(" PID: ")
            .n(invoker)
            .s(" Comm: php-fpm8.2 Not tainted 6.1.0-31-amd64 #1  Debian 6.1.128-1")
            .nl();
        l(self).s("Hardware name: QEMU Standard PC (i440FX + PIIX, 1996), BIOS 1.16.2-debian-1.16.2-1 04/01/2014").nl();
        l(self).s("Call Trace:").nl();
        l(self).s(" <TASK>").nl();
        for f in [
            "dump_stack_lvl+0x44/0x5c", "dump_header+0x4a/0x211", "oom_kill_process.cold+0xb/0x10",
            "out_of_memory+0x1fd/0x4e0", "__alloc_pages_slowpath.constprop.0+0xc7a/0xe20",
            "__alloc_pages+0x305/0x330", "folio_alloc+0x17/0x50", "__filemap_get_folio+0x155/0x340",
            "filemap_fault+0x139/0x910", "__do_fault+0x30/0x110", "do_fault+0x1b9/0x410",
            "__handle_mm_fault+0x660/0xfa0", "handle_mm_fault+0xdb/0x2d0", "do_user_addr_fault+0x191/0x550",
            "exc_page_fault+0x70/0x170", "asm_exc_page_fault+0x22/0x30",
        ] {
            l(self).s(" ").s(f).nl();
        }
        l(self).s(" </TASK>").nl();
        l(self).s("Mem-Info:").nl();
        let free = self.rng.range(20_000, 24_000);
        let inactive = self.rng.range(900_000, 980_000);
        l(self)
            .s("active_anon:1783 inactive_anon:")
            .n(inactive)
            .s(" isolated_anon:0 active_file:120 inactive_file:93 isolated_file:0 unevictable:0 dirty:0 writeback:0 slab_reclaimable:9182 slab_unreclaimable:14421 mapped:5120 shmem:2210 pagetables:6012 sec_pagetables:0 bounce:0 kernel_misc_reclaimable:0 free:")
            .n(free)
            .s(" free_pcp:61 free_cma:0")
            .nl();
        l(self).s("Node 0 active_anon:7132kB inactive_anon:3821532kB active_file:480kB inactive_file:372kB unevictable:0kB isolated(anon):0kB isolated(file):0kB mapped:20480kB dirty:0kB writeback:0kB shmem:8840kB shmem_thp: 0kB shmem_pmdmapped: 0kB anon_thp: 0kB writeback_tmp:0kB kernel_stack:3312kB pagetables:24048kB sec_pagetables:0kB all_unreclaimable? yes").nl();
        l(self).s("Node 0 DMA free:14336kB boost:0kB min:132kB low:164kB high:196kB reserved_highatomic:0KB active_anon:0kB inactive_anon:0kB active_file:0kB inactive_file:0kB unevictable:0kB writepending:0kB present:15992kB managed:15360kB mlocked:0kB bounce:0kB free_pcp:0kB local_pcp:0kB free_cma:0kB").nl();
        l(self).s("lowmem_reserve[]: 0 2947 3892 3892 3892").nl();
        l(self).s("Node 0 DMA32 free:54324kB boost:0kB min:25220kB low:31524kB high:37828kB reserved_highatomic:0KB active_anon:4184kB inactive_anon:2949880kB active_file:140kB inactive_file:112kB unevictable:0kB writepending:0kB present:3129196kB managed:3063660kB mlocked:0kB bounce:0kB free_pcp:120kB local_pcp:0kB free_cma:0kB").nl();
        l(self).s("Free swap  = 0kB").nl();
        l(self).s("Total swap = 0kB").nl();
        l(self).s("1048446 pages RAM").nl();
        l(self).s("Tasks state (memory values in pages):").nl();
        l(self).s("[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name").nl();
        for &(name, pid) in OTHER_PROCS {
            let (vm, rss) = (self.rng.range(2_000, 400_000), self.rng.range(200, 60_000));
            let pt = self.rng.range(40, 900) * 1024;
            let adj = if name == "systemd-journal" { -250i64 } else { 0 };
            l(self).s("[");
            push_u64_pad(&mut self.kern.buf, pid, 7, b' ');
            self.kern.s("] ");
            push_u64_pad(&mut self.kern.buf, 0, 5, b' ');
            self.kern.s(" ");
            push_u64_pad(&mut self.kern.buf, pid, 5, b' ');
            self.kern.s(" ");
            push_u64_pad(&mut self.kern.buf, vm, 8, b' ');
            self.kern.s(" ");
            push_u64_pad(&mut self.kern.buf, rss, 8, b' ');
            self.kern.s(" ");
            push_u64_pad(&mut self.kern.buf, pt, 8, b' ');
            self.kern.s("        0         ");
            if adj < 0 {
                self.kern.s(" -250");
            } else {
                self.kern.s("    0");
            }
            self.kern.s(" ").s(name).nl();
        }
        let pids: Vec<u64> = self.children.iter().map(|c| c.pid).collect();
        for pid in pids {
            let rss = if pid == victim { self.rng.range(90_000, 110_000) } else { self.rng.range(8_000, 40_000) };
            l(self).s("[");
            push_u64_pad(&mut self.kern.buf, pid, 7, b' ');
            self.kern.s("]    33 ");
            push_u64_pad(&mut self.kern.buf, pid, 5, b' ');
            self.kern.s("   145386 ");
            push_u64_pad(&mut self.kern.buf, rss, 8, b' ');
            self.kern.s("   999424        0             0 php-fpm8.2").nl();
        }
        l(self)
            .s("oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0,global_oom,task_memcg=/system.slice/php8.2-fpm.service,task=php-fpm8.2,pid=")
            .n(victim)
            .s(",uid=33")
            .nl();
        let anon = self.rng.range(360_000, 440_000);
        l(self)
            .s("Out of memory: Killed process ")
            .n(victim)
            .s(" (php-fpm8.2) total-vm:581544kB, anon-rss:")
            .n(anon)
            .s("kB, file-rss:0kB, shmem-rss:12kB, UID:33 pgtables:976kB oom_score_adj:0")
            .nl();
        self.t_us += self.rng.range(5_000, 40_000);
        l(self)
            .s("oom_reaper: reaped process ")
            .n(victim)
            .s(" (php-fpm8.2), now anon-rss:0kB, file-rss:0kB, shmem-rss:12kB")
            .nl();
        self.oom_kills += 1;
    }

    fn kern_segfault(&mut self, victim: u64) {
        let ip = 0x7f3a_1c2b_0000 + self.rng.below(0xffff);
        let sp = 0x7ffd_4d9e_0000 + self.rng.below(0xffff);
        let at = *self.rng.pick(&[0u64, 8, 0x10, 0x18, 0x7f3a1c000000]);
        let cpu = self.rng.below(2);
        self.kern_line()
            .s("php-fpm8.2[")
            .n(victim)
            .s("]: segfault at ")
            .hex(at, if at > 0xffff { 12 } else { 1 })
            .s(" ip 0000")
            .hex(ip, 12)
            .s(" sp 0000")
            .hex(sp, 12)
            .s(" error 4 in opcache.so[7f3a1c280000+d2000] likely on CPU ")
            .n(cpu)
            .s(" (core ")
            .n(cpu)
            .s(", socket 0)")
            .nl();
        self.kern_line()
            .s("Code: 48 8b 47 08 48 85 c0 74 0b 48 8b 50 10 48 85 d2 <48> 8b 02 c3 0f 1f 44 00 00 31 c0 c3 66 2e 0f 1f 84 00 00 00 00 00 f3")
            .nl();
        self.segfaults += 1;
    }

    // -------------------------------------------------------------- NGINX error log

    fn req(&mut self, php: bool) -> Req {
        let server = self.rng.weighted(&[60, 25, 15]);
        let s = &SERVERS[server];
        let host = *self.rng.pick(s.hosts);
        let client = if self.rng.chance(80_000) {
            ClientIp::V6(self.rng.below(65536) as u16)
        } else {
            let a = *self.rng.pick(&[203u8, 198, 192, 185, 91, 66, 45]);
            ClientIp::V4(a, self.rng.below(256) as u8, self.rng.below(256) as u8, self.rng.range(1, 254) as u8)
        };
        let uri = if php { *self.rng.pick(PHP_URIS) } else { *self.rng.pick(STATIC_MISSING) };
        let method = if php && self.rng.chance(200_000) { "POST" } else { "GET" };
        let proto = *self.rng.pick(&["HTTP/1.1", "HTTP/1.1", "HTTP/2.0", "HTTP/1.0"]);
        let referrer = if self.rng.chance(300_000) { *self.rng.pick(AGENTS_REFERRERS) } else { "" };
        Req { server, host, client, method, uri, proto, referrer }
    }

    fn push_client(buf: &mut Vec<u8>, c: ClientIp) {
        match c {
            ClientIp::V4(a, b, c2, d) => {
                push_u64(buf, a as u64);
                buf.push(b'.');
                push_u64(buf, b as u64);
                buf.push(b'.');
                push_u64(buf, c2 as u64);
                buf.push(b'.');
                push_u64(buf, d as u64);
            }
            ClientIp::V6(x) => {
                buf.extend_from_slice(b"2001:db8:85a3::");
                push_hex(buf, x as u64, 4);
            }
        }
    }

    /// `YYYY/MM/DD HH:MM:SS [level] pid#pid: *conn ` (or without `*conn ` when conn is 0)
    fn err_head(&mut self, level: &str, pid: u64, conn: u64) {
        self.stamp();
        self.err.b(&self.st.nginx).s(" [").s(level).s("] ").n(pid).s("#").n(pid).s(": ");
        if conn != 0 {
            self.err.s("*").n(conn).s(" ");
        }
    }

    /// `, client: ..., server: ..., request: "...", [upstream: "...",] host: "..."[, referrer: "..."]`
    fn err_ctx(&mut self, r: &Req, upstream: Option<&str>) {
        self.err.s(", client: ");
        Sim::push_client(&mut self.err.buf, r.client);
        self.err
            .s(", server: ")
            .s(SERVERS[r.server].name)
            .s(", request: \"")
            .s(r.method)
            .s(" ")
            .s(r.uri)
            .s(" ")
            .s(r.proto)
            .s("\"");
        if let Some(u) = upstream {
            self.err.s(", upstream: \"").s(u).s("\"");
        }
        self.err.s(", host: \"").s(r.host).s("\"");
        if !r.referrer.is_empty() {
            self.err.s(", referrer: \"").s(r.referrer).s("\"");
        }
        self.err.nl();
    }

    fn new_conn(&mut self) -> (u64, u64) {
        self.conn += self.rng.range(1, 4);
        let w = self.workers[self.rng.below(2) as usize];
        (w, self.conn)
    }

    fn upstream_str(pool: usize) -> &'static str {
        if pool == 0 {
            "fastcgi://unix:/run/php/php8.2-fpm.sock:"
        } else {
            "fastcgi://127.0.0.1:9000"
        }
    }

    fn nginx_noise(&mut self) {
        match self.rng.weighted(&[300, 170, 25, 90, 50, 40, 40, 30, 30, 25, 20, 15, 15, 10, 8, 6]) {
            0 => {
                // static file that does not exist
                let r = self.req(false);
                let (w, c) = self.new_conn();
                self.err_head("error", w, c);
                self.err.s("open() \"/var/www/html").s(r.uri).s("\" failed (2: No such file or directory)");
                self.err_ctx(&r, None);
            }
            1 => {
                // PHP warnings on a request that succeeded (200)
                let r = self.req(true);
                let (w, c) = self.new_conn();
                self.err_head("error", w, c);
                let n = self.rng.range(1, 3);
                self.err.s("FastCGI sent in stderr: \"");
                for i in 0..n {
                    if i > 0 {
                        self.err.s("; ");
                    }
                    let warn = *self.rng.pick(WARNINGS);
                    let file = *self.rng.pick(PHP_FILES);
                    let line = self.rng.range(3, 900);
                    self.err.s("PHP message: ").s(warn).s(" in ").s(file).s(" on line ").n(line);
                }
                self.err.s("\" while reading response header from upstream");
                let pool = SERVERS[r.server].pool;
                self.err_ctx(&r, Some(Sim::upstream_str(pool)));
            }
            2 => {
                // uncaught exception: multi-line stderr entry, answered 500 by FPM
                let r = self.req(true);
                let (w, c) = self.new_conn();
                self.fastcgi_multiline(w, c, &r);
                self.multi_line_stderr += 1;
            }
            3 => {
                let php = self.rng.chance(500_000);
                let r = self.req(php);
                let (w, c) = self.new_conn();
                self.err_head("info", w, c);
                self.err.s("client ");
                Sim::push_client(&mut self.err.buf, r.client);
                self.err.s(" closed keepalive connection").nl();
            }
            4 => {
                let r = self.req(true);
                let (w, c) = self.new_conn();
                self.err_head("info", w, c);
                self.err.s("client prematurely closed connection while reading response header from upstream");
                let pool = SERVERS[r.server].pool;
                self.err_ctx(&r, Some(Sim::upstream_str(pool)));
            }
            5 => {
                let r = self.req(true);
                let (w, c) = self.new_conn();
                self.err_head("info", w, c);
                self.err.s("epoll_wait() reported that client prematurely closed connection, so upstream connection is closed too while sending request to upstream");
                let pool = SERVERS[r.server].pool;
                self.err_ctx(&r, Some(Sim::upstream_str(pool)));
            }
            6 => {
                let r = self.req(false);
                let (w, c) = self.new_conn();
                self.err_head("info", w, c);
                self.err.s("client timed out (110: Connection timed out) while waiting for request, client: ");
                Sim::push_client(&mut self.err.buf, r.client);
                self.err.s(", server: 0.0.0.0:443").nl();
            }
            7 => {
                let r = self.req(true);
                let (w, c) = self.new_conn();
                self.err_head("error", w, c);
                let excess = self.rng.range(1, 30_000);
                self.err.s("limiting requests, excess: ").n(excess / 1000).s(".").nz(excess % 1000, 3).s(" by zone \"perip\"");
                self.err_ctx(&r, None);
            }
            8 => {
                let r = self.req(true);
                let (w, c) = self.new_conn();
                self.err_head("warn", w, c);
                let (a, b, n) = (self.rng.below(10), self.rng.below(100), self.rng.range(1, 99_999));
                self.err.s("an upstream response is buffered to a temporary file /var/lib/nginx/fastcgi/").n(a).s("/").nz(b, 2).s("/").nz(n, 10).s(" while reading upstream");
                let pool = SERVERS[r.server].pool;
                self.err_ctx(&r, Some(Sim::upstream_str(pool)));
            }
            9 => {
                let r = self.req(true);
                let (w, c) = self.new_conn();
                self.err_head("warn", w, c);
                self.err.s("a client request body is buffered to a temporary file /var/lib/nginx/body/").nz(self.rng.range(1, 99_999), 10);
                self.err_ctx(&r, None);
            }
            10 => {
                let r = self.req(false);
                let (w, c) = self.new_conn();
                self.err_head("crit", w, c);
                self.err.s("SSL_do_handshake() failed (SSL: error:0A00006C:SSL routines::bad key share) while SSL handshaking, client: ");
                Sim::push_client(&mut self.err.buf, r.client);
                self.err.s(", server: 0.0.0.0:443").nl();
            }
            11 => {
                let r = self.req(false);
                let (w, c) = self.new_conn();
                self.err_head("error", w, c);
                self.err.s("access forbidden by rule");
                self.err_ctx(&r, None);
            }
            12 => {
                let r = self.req(true);
                let (w, c) = self.new_conn();
                self.err_head("error", w, c);
                self.err.s("client intended to send too large body: ").n(self.rng.range(1_048_577, 80_000_000)).s(" bytes");
                self.err_ctx(&r, None);
            }
            13 => {
                let mut r = self.req(false);
                r.uri = "/uploads/";
                let (w, c) = self.new_conn();
                self.err_head("error", w, c);
                self.err.s("directory index of \"/var/www/html/uploads/\" is forbidden");
                self.err_ctx(&r, None);
            }
            14 => {
                let r = self.req(true);
                let (w, c) = self.new_conn();
                self.err_head("error", w, c);
                self.err.s("FastCGI sent in stderr: \"Primary script unknown\" while reading response header from upstream");
                let pool = SERVERS[r.server].pool;
                self.err_ctx(&r, Some(Sim::upstream_str(pool)));
            }
            _ => {
                let r = self.req(false);
                let (w, c) = self.new_conn();
                self.err_head("info", w, c);
                self.err.s("SSL_read() failed (SSL: error:0A000126:SSL routines::unexpected eof while reading) while waiting for request, client: ");
                Sim::push_client(&mut self.err.buf, r.client);
                self.err.s(", server: 0.0.0.0:443").nl();
            }
        }
    }

    /// A `FastCGI sent in stderr` entry whose text spans several physical lines.
    fn fastcgi_multiline(&mut self, w: u64, c: u64, r: &Req) {
        let ex = *self.rng.pick(EXCEPTIONS);
        let file = *self.rng.pick(PHP_FILES);
        let line = self.rng.range(3, 900);
        self.err_head("error", w, c);
        self.err
            .s("FastCGI sent in stderr: \"PHP message: PHP Fatal error:  ")
            .s(ex)
            .s(" in ")
            .s(file)
            .s(":")
            .n(line)
            .nl();
        self.err.s("Stack trace:").nl();
        let frames = self.rng.range(1, 6);
        for i in 0..frames {
            let f = *self.rng.pick(PHP_FILES);
            self.err.s("#").n(i).s(" ").s(f).s("(").n(self.rng.range(3, 900)).s("): App\\Kernel->handle(Object(Illuminate\\Http\\Request))").nl();
        }
        self.err.s("#").n(frames).s(" {main}").nl();
        self.err.s("  thrown in ").s(file).s(" on line ").n(line).s("\" while reading response header from upstream");
        let pool = SERVERS[r.server].pool;
        self.err_ctx(r, Some(Sim::upstream_str(pool)));
        if self.rng.chance(300_000) {
            // the same text through catch_workers_output
            let child = self.some_child();
            self.fpm_line("WARNING")
                .s("[pool www] child ")
                .n(child)
                .s(" said into stderr: \"NOTICE: PHP message: PHP Fatal error:  ")
                .s(ex)
                .s(" in ")
                .s(file)
                .s(":")
                .n(line)
                .s("\"")
                .nl();
            self.fpm_line("WARNING").s("[pool www] child ").n(child).s(" said into stderr: \"Stack trace:\"").nl();
            self.fpm_line("WARNING").s("[pool www] child ").n(child).s(" said into stderr: \"#0 {main}\"").nl();
        }
    }

    fn nginx_reload(&mut self) {
        let m = self.master_pid;
        let from = self.rng.range(20_000, 90_000);
        self.err_head("notice", m, 0);
        self.err.s("signal 1 (SIGHUP) received from ").n(from).s(", reconfiguring").nl();
        self.err_head("notice", m, 0);
        self.err.s("reconfiguring").nl();
        self.err_head("notice", m, 0);
        self.err.s("using the \"epoll\" event method").nl();
        self.err_head("notice", m, 0);
        self.err.s("start worker processes").nl();
        let old = self.workers;
        for i in 0..2 {
            self.workers[i] = self.pid();
            let p = self.workers[i];
            self.err_head("notice", m, 0);
            self.err.s("start worker process ").n(p).nl();
        }
        for p in old {
            self.err_head("notice", p, 0);
            self.err.s("gracefully shutting down").nl();
            self.err_head("notice", p, 0);
            self.err.s("exiting").nl();
            self.err_head("notice", p, 0);
            self.err.s("exit").nl();
            self.err_head("notice", m, 0);
            self.err.s("signal 17 (SIGCHLD) received from ").n(p).nl();
            self.err_head("notice", m, 0);
            self.err.s("worker process ").n(p).s(" exited with code 0").nl();
        }
        self.err_head("notice", m, 0);
        self.err.s("signal 29 (SIGIO) received").nl();
        self.reloads += 1;
    }

    // -------------------------------------------------------------- upstream failures

    /// One request answered 502/504: error-log line(s) and its gatelog record, plus the
    /// FPM and kernel lines that explain it.
    fn failure(&mut self, kind: Kind) {
        let mut r = self.req(true);
        // Episodes of the unix-socket pool happen on the unix servers; TCP pool on api.
        match kind {
            Kind::WrongPath => r.server = 1,
            Kind::Enoent | Kind::Eacces | Kind::Eagain | Kind::Reset | Kind::Closed => {
                if r.server == 2 {
                    r.server = 0
                }
            }
            _ => {}
        }
        if r.host.starts_with("api.") && r.server != 2 {
            r.host = SERVERS[r.server].hosts[0];
        }
        if r.server == 2 && !r.host.starts_with("api.") {
            r.host = "api.example.com";
        }
        let pool = SERVERS[r.server].pool;
        let (w, c) = self.new_conn();
        let sock = if kind == Kind::WrongPath { OLD_SOCK } else { SOCK };
        let unix_peer = format!("unix:{sock}");
        let peer: &str = if pool == 0 { &unix_peer } else { TCP_PEER };
        let upstream_ctx = if pool == 0 {
            format!("fastcgi://unix:{sock}:")
        } else {
            "fastcgi://127.0.0.1:9000".to_string()
        };

        // A few requests go through an upstream{} group and try two peers.
        let two_attempts = pool == 0
            && matches!(kind, Kind::Enoent | Kind::Econnrefused | Kind::Eacces)
            && self.rng.chance(60_000);

        let mut stderr_text: Option<String> = None;
        let (status, request_ms): (u64, u64);
        let mut attempts: Vec<Attempt> = Vec::new();
        match kind {
            Kind::Enoent | Kind::WrongPath | Kind::Eacces | Kind::Econnrefused | Kind::Eagain => {
                let (errno, name, text, level) = match kind {
                    Kind::Eacces => (13, "EACCES", "Permission denied", "crit"),
                    Kind::Econnrefused => (111, "ECONNREFUSED", "Connection refused", "error"),
                    Kind::Eagain => (11, "EAGAIN", "Resource temporarily unavailable", "error"),
                    _ => (2, "ENOENT", "No such file or directory", "crit"),
                };
                let msg = if pool == 0 {
                    format!("connect() to {peer} failed ({errno}: {text})")
                } else {
                    format!("connect() failed ({errno}: {text})")
                };
                let level = if pool == 1 { "error" } else { level };
                self.err_head(level, w, c);
                self.err.s(&msg).s(" while connecting to upstream");
                let ctx = upstream_ctx.clone();
                self.err_ctx(&r, Some(&ctx));
                attempts.push(Attempt {
                    peer: peer.to_string(),
                    phase: "connect",
                    errno: Some((errno, name, text)),
                    event: "connect_failed",
                    message: msg,
                    level,
                    status: 502,
                    connect_ms: None,
                    response_ms: 0,
                });
                if two_attempts {
                    // second peer of the group: the TCP pool, refused as well
                    self.err_head("error", w, c);
                    self.err.s("connect() failed (111: Connection refused) while connecting to upstream");
                    self.err_ctx(&r, Some("fastcgi://127.0.0.1:9000"));
                    attempts.push(Attempt {
                        peer: TCP_PEER.to_string(),
                        phase: "connect",
                        errno: Some((111, "ECONNREFUSED", "Connection refused")),
                        event: "connect_failed",
                        message: "connect() failed (111: Connection refused)".to_string(),
                        level: "error",
                        status: 502,
                        connect_ms: None,
                        response_ms: 0,
                    });
                }
                status = 502;
                request_ms = self.rng.below(3);
            }
            Kind::Timeout => {
                let connecting = pool == 1 && self.rng.chance(300_000);
                self.t_us += 1;
                self.err_head("error", w, c);
                self.err.s("upstream timed out (110: Connection timed out) while ").s(if connecting {
                    "connecting to upstream"
                } else {
                    "reading response header from upstream"
                });
                let ctx = upstream_ctx.clone();
                self.err_ctx(&r, Some(&ctx));
                let ms = 60_000 + self.rng.below(5);
                attempts.push(Attempt {
                    peer: peer.to_string(),
                    phase: if connecting { "connect" } else { "header" },
                    errno: Some((110, "ETIMEDOUT", "Connection timed out")),
                    event: "timed_out",
                    message: "upstream timed out (110: Connection timed out)".to_string(),
                    level: "error",
                    status: 504,
                    connect_ms: if connecting { None } else { Some(0) },
                    response_ms: ms,
                });
                status = 504;
                request_ms = ms;
                if pool == 0 && !connecting && self.rng.chance(600_000) {
                    // FPM notices the slow script too (request_slowlog_timeout / request_terminate_timeout)
                    let child = self.some_child();
                    let script = *self.rng.pick(&["/var/www/html/report.php", "/var/www/html/export.php", "/var/www/html/index.php"]);
                    let secs = self.rng.range(60, 75);
                    let frac = self.rng.below(1_000_000);
                    self.fpm_line("WARNING")
                        .s("[pool www] child ")
                        .n(child)
                        .s(", script '")
                        .s(script)
                        .s("' (request: \"")
                        .s(r.method)
                        .s(" ")
                        .s(r.uri)
                        .s("\") execution timed out (")
                        .n(secs)
                        .s(".")
                        .nz(frac, 6)
                        .s(" sec), terminating")
                        .nl();
                    self.child_dies("on signal 15 (SIGTERM)", Some(child));
                }
            }
            Kind::Reset | Kind::Closed => {
                // the child that served the request died: OOM kill or segfault
                let oom = kind == Kind::Reset || self.rng.chance(250_000);
                let ms = self.rng.range(5, 30_000);
                if !oom && self.rng.chance(400_000) {
                    // it said something before dying
                    let warn = *self.rng.pick(WARNINGS);
                    let file = *self.rng.pick(PHP_FILES);
                    let text = format!("PHP message: {warn} in {file} on line {}", self.rng.range(3, 900));
                    self.err_head("error", w, c);
                    self.err.s("FastCGI sent in stderr: \"").s(&text).s("\" while reading response header from upstream");
                    let ctx = upstream_ctx.clone();
                    self.err_ctx(&r, Some(&ctx));
                    stderr_text = Some(text);
                }
                let victim = self.children[self.rng.below(self.children.len() as u64) as usize].pid;
                if oom {
                    self.kern_oom(victim);
                } else {
                    self.kern_segfault(victim);
                }
                // FPM buries the child with that pid
                let i = self.children.iter().position(|ch| ch.pid == victim).unwrap_or(0);
                self.children.swap(0, i);
                let how = if oom { "on signal 9 (SIGKILL)" } else { "on signal 11 (SIGSEGV)" };
                self.bury_first(how);
                self.err_head("error", w, c);
                let msg = if kind == Kind::Reset {
                    "recv() failed (104: Connection reset by peer)"
                } else {
                    "upstream prematurely closed connection"
                };
                self.err.s(msg).s(" while reading response header from upstream");
                let ctx = upstream_ctx.clone();
                self.err_ctx(&r, Some(&ctx));
                attempts.push(Attempt {
                    peer: peer.to_string(),
                    phase: "header",
                    errno: if kind == Kind::Reset { Some((104, "ECONNRESET", "Connection reset by peer")) } else { None },
                    event: if kind == Kind::Reset { "reset" } else { "closed_prematurely" },
                    message: msg.to_string(),
                    level: "error",
                    status: 502,
                    connect_ms: Some(0),
                    response_ms: ms,
                });
                status = 502;
                request_ms = ms;
            }
        }
        self.record(w, c, &r, status, request_ms, two_attempts, &attempts, stderr_text.as_deref(), pool);
        self.failures[KINDS.iter().position(|k| *k == kind).unwrap()] += 1;
        if status == 502 {
            self.status_502 += 1
        } else {
            self.status_504 += 1
        }
    }

    fn bury_first(&mut self, how: &str) {
        let pid = self.children[0].pid;
        let age_us = self.t_us.saturating_sub(self.children[0].born_us) + self.rng.range(1, 999_999);
        self.fpm_line("WARNING")
            .s("[pool www] child ")
            .n(pid)
            .s(" exited ")
            .s(how)
            .s(" after ")
            .n(age_us / 1_000_000)
            .s(".")
            .nz(age_us % 1_000_000, 6)
            .s(" seconds from start")
            .nl();
        let new = self.pid();
        self.fpm_line("NOTICE").s("[pool www] child ").n(new).s(" started").nl();
        self.children[0] = Child { pid: new, born_us: self.t_us };
    }

    #[allow(clippy::too_many_arguments)]
    fn record(&mut self, w: u64, c: u64, r: &Req, status: u64, request_ms: u64, group: bool, attempts: &[Attempt], stderr: Option<&str>, pool: usize) {
        self.stamp();
        let ms = self.t_us / 1000 % 1000;
        let rid = (self.rng.next(), self.rng.next());
        let o = &mut self.rec;
        o.s("{\"schema\":\"gatelog.v1\",\"time\":\"").b(&self.st.iso).s(".").nz(ms, 3).s("+00:00\",\"pid\":").n(w);
        o.s(",\"conn\":").n(c).s(",\"request_id\":\"").hex(rid.0, 16).hex(rid.1, 16);
        o.s("\",\"status\":").n(status).s(",\"origin\":\"nginx\",\"recovered\":false,\"client\":\"");
        Sim::push_client(&mut o.buf, r.client);
        o.s("\",\"server\":\"").s(SERVERS[r.server].name).s("\",\"host\":\"").js(r.host);
        o.s("\",\"method\":\"").s(r.method).s("\",\"uri\":\"").js(r.uri).s("\",\"protocol\":\"").s(r.proto);
        o.s("\",\"request_time_ms\":").n(request_ms).s(",\"upstream\":\"");
        if group {
            o.s("php_backends");
        } else if pool == 0 {
            o.js(&attempts[0].peer);
        } else {
            o.s(TCP_PEER);
        }
        o.s("\",\"attempts\":[");
        for (i, a) in attempts.iter().enumerate() {
            if i > 0 {
                o.s(",");
            }
            o.s("{\"peer\":\"").js(&a.peer).s("\",\"phase\":\"").s(a.phase).s("\",");
            match a.errno {
                Some((n, name, text)) => {
                    o.s("\"errno\":").n(n).s(",\"errno_name\":\"").s(name).s("\",\"error\":\"").s(text).s("\",");
                }
                None => {
                    o.s("\"errno\":null,\"errno_name\":null,\"error\":null,");
                }
            }
            o.s("\"event\":\"").s(a.event).s("\",\"message\":\"").js(&a.message).s("\",\"level\":\"").s(a.level);
            o.s("\",\"status\":").n(a.status).s(",\"connect_ms\":");
            match a.connect_ms {
                Some(v) => o.n(v),
                None => o.s("null"),
            };
            o.s(",\"header_ms\":null,\"response_ms\":").n(a.response_ms).s("}");
        }
        o.s("],\"timeouts_ms\":{\"connect\":60000,\"send\":60000,\"read\":60000},\"fastcgi_stderr\":");
        match stderr {
            Some(t) => {
                o.s("{\"text\":\"").js(t).s("\",\"truncated\":false}");
            }
            None => {
                o.s("null");
            }
        }
        o.s("}").nl();
        self.records += 1;
    }

    // -------------------------------------------------------------- the timeline

    fn start_episode(&mut self) {
        // weights per kind: Enoent, WrongPath, Eacces, Econnrefused, Eagain, Timeout, Reset, Closed
        // Every kind comes once per round of eight episodes, in a shuffled order, so that
        // even a small input holds all of them.
        if self.rotation.is_empty() {
            let mut order = KINDS.to_vec();
            for i in (1..order.len()).rev() {
                let j = self.rng.below(i as u64 + 1) as usize;
                order.swap(i, j);
            }
            self.rotation = order;
        }
        let k = self.rotation.pop().unwrap();
        let secs = self.rng.range(15, 150);
        let rate = match k {
            Kind::Reset | Kind::Closed => 25_000,
            Kind::Timeout => 60_000,
            Kind::WrongPath => 150_000,
            _ => 300_000,
        };
        match k {
            Kind::Enoent => self.fpm_stop(),
            Kind::Eacces => {
                self.fpm_reload();
                if self.rng.chance(500_000) {
                    self.fpm_line("ERROR").s("[pool www] cannot get uid for user 'www-data2': Success (0)").nl();
                }
            }
            Kind::Econnrefused => {
                // the master was OOM-killed: it writes nothing, the socket file stays
                let m = self.fpm_master;
                self.kern_oom(m);
                self.fpm_up = false;
            }
            Kind::Eagain => {
                self.fpm_line("WARNING")
                    .s("[pool www] server reached pm.max_children setting (")
                    .n(MAX_CHILDREN)
                    .s("), consider raising it")
                    .nl();
                self.fpm_line("WARNING")
                    .s("[pool www] seems busy (you may need to increase pm.start_servers, or pm.min/max_spare_servers), spawning 8 children, there are 0 idle, and ")
                    .n(MAX_CHILDREN)
                    .s(" total children")
                    .nl();
            }
            _ => {}
        }
        self.episode = Some(Episode { kind: k, until_us: self.t_us + secs * 1_000_000, rate });
    }

    fn end_episode(&mut self) {
        let e = self.episode.take().unwrap();
        match e.kind {
            Kind::Enoent | Kind::Econnrefused => self.fpm_start(),
            Kind::Eacces => self.fpm_reload(),
            _ => {}
        }
    }

    fn step(&mut self) {
        self.t_us += self.rng.range(1, 40_000);
        if let Some(e) = &self.episode {
            if self.t_us >= e.until_us {
                self.end_episode();
            }
        }
        if self.t_us >= self.kern_noise_due_us {
            self.kern_noise();
            self.kern_noise_due_us = self.t_us + self.rng.range(1, 1_500_000);
        }
        if self.t_us >= self.fpm_recycle_due_us {
            if self.fpm_up {
                if self.rng.chance(700_000) {
                    self.child_dies("with code 0", None);
                } else {
                    let child = self.some_child();
                    let script = *self.rng.pick(&["/var/www/html/report.php", "/var/www/html/export.php", "/var/www/html/index.php"]);
                    let secs = self.rng.range(5, 20);
                    let frac = self.rng.below(1_000_000);
                    self.fpm_line("WARNING")
                        .s("[pool www] child ")
                        .n(child)
                        .s(", script '")
                        .s(script)
                        .s("' (request: \"GET /")
                        .s(&script[14..])
                        .s("\") executing too slow (")
                        .n(secs)
                        .s(".")
                        .nz(frac, 6)
                        .s(" sec), logging")
                        .nl();
                    self.fpm_line("NOTICE").s("child ").n(child).s(" stopped for tracing").nl();
                    self.fpm_line("NOTICE").s("about to trace ").n(child).nl();
                    self.fpm_line("NOTICE").s("finished trace of ").n(child).nl();
                }
            }
            self.fpm_recycle_due_us = self.t_us + self.rng.range(1_000_000, 60_000_000);
        }
        if let Some(e) = &self.episode {
            if self.rng.chance(e.rate) {
                let k = e.kind;
                self.failure(k);
                return;
            }
        } else if self.rng.chance(100) {
            self.start_episode();
            return;
        }
        if self.rng.chance(12_000) {
            // sporadic failures outside (or inside) episodes
            let k = KINDS[self.rng.weighted(&[0, 0, 0, 2, 2, 12, 2, 4])];
            if self.fpm_up || !matches!(k, Kind::Reset | Kind::Closed) {
                self.failure(k);
                return;
            }
        }
        if self.rng.chance(15) {
            self.nginx_reload();
            return;
        }
        if self.rng.chance(8) {
            self.fpm_line("NOTICE").s("error log file re-opened").nl();
            let m = self.master_pid;
            self.err_head("notice", m, 0);
            self.err.s("signal 10 (SIGUSR1) received from 1, reopening logs").nl();
            self.err_head("notice", m, 0);
            self.err.s("reopening logs").nl();
            return;
        }
        self.nginx_noise();
    }

    fn finish(mut self, dir: &Path, seed: u64, target: u64) {
        for s in [&mut self.err, &mut self.fpm, &mut self.kern, &mut self.rec] {
            s.flush();
        }
        let mut m = String::new();
        m.push_str("{\n");
        m.push_str(&format!("  \"generator\": \"gatelog-bench-gen {}\",\n", env!("CARGO_PKG_VERSION")));
        m.push_str(&format!("  \"seed\": {seed},\n  \"target_bytes\": {target},\n"));
        m.push_str(&format!(
            "  \"total_bytes\": {},\n",
            self.err.bytes + self.fpm.bytes + self.kern.bytes + self.rec.bytes
        ));
        m.push_str("  \"files\": {\n");
        let files = [&self.err, &self.fpm, &self.kern, &self.rec];
        for (i, s) in files.iter().enumerate() {
            m.push_str(&format!(
                "    \"{}\": {{\"bytes\": {}, \"lines\": {}}}{}\n",
                s.path.file_name().unwrap().to_string_lossy(),
                s.bytes,
                s.lines,
                if i + 1 < files.len() { "," } else { "" }
            ));
        }
        m.push_str("  },\n  \"failures\": {\n");
        for (i, k) in KINDS.iter().enumerate() {
            m.push_str(&format!("    \"{}\": {},\n", k.name(), self.failures[i]));
        }
        m.push_str(&format!("    \"total\": {}\n  }},\n", self.failures.iter().sum::<u64>()));
        m.push_str(&format!(
            "  \"records\": {},\n  \"status_502\": {},\n  \"status_504\": {},\n  \"oom_kills\": {},\n  \"segfaults\": {},\n  \"nginx_reloads\": {},\n  \"multi_line_fastcgi_stderr\": {}\n}}\n",
            self.records, self.status_502, self.status_504, self.oom_kills, self.segfaults, self.reloads, self.multi_line_stderr
        ));
        std::fs::write(dir.join("manifest.json"), m).unwrap_or_else(|e| die(&format!("manifest.json: {e}")));
    }
}

struct Attempt {
    peer: String,
    phase: &'static str,
    errno: Option<(u64, &'static str, &'static str)>,
    event: &'static str,
    message: String,
    level: &'static str,
    status: u64,
    connect_ms: Option<u64>,
    response_ms: u64,
}

fn parse_size(s: &str) -> u64 {
    let s = s.trim();
    let (num, mul) = match s.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => {
            let mul = match s[i..].to_ascii_uppercase().as_str() {
                "K" | "KB" => 1_000,
                "M" | "MB" => 1_000_000,
                "G" | "GB" => 1_000_000_000,
                "KIB" => 1 << 10,
                "MIB" => 1 << 20,
                "GIB" => 1 << 30,
                _ => die(&format!("bad size {s:?}")),
            };
            (&s[..i], mul)
        }
        None => (s, 1),
    };
    num.parse::<u64>().unwrap_or_else(|_| die(&format!("bad size {s:?}"))) * mul
}

// ------------------------------------------------------------------------------------
// `measure`: run a command and report its wall time, CPU time and peak RSS. A tiny
// launcher keeps the peak RSS honest: a child forked from a big process (Python)
// inherits that process's high-water mark until it execs.

#[repr(C)]
struct Timeval {
    sec: i64,
    usec: i64,
}

#[repr(C)]
struct Rusage {
    utime: Timeval,
    stime: Timeval,
    maxrss: i64,
    rest: [i64; 13],
}

extern "C" {
    fn getrusage(who: i32, usage: *mut Rusage) -> i32;
}

fn measure(args: &[String]) -> ! {
    let (report, cmd) = match args {
        [flag, report, sep, cmd @ ..] if flag == "--report" && sep == "--" && !cmd.is_empty() => (report, cmd),
        _ => die("usage: gatelog-bench-gen measure --report FILE -- COMMAND [ARGS...]"),
    };
    let t0 = std::time::Instant::now();
    let status = std::process::Command::new(&cmd[0])
        .args(&cmd[1..])
        .status()
        .unwrap_or_else(|e| die(&format!("{}: {e}", cmd[0])));
    let wall = t0.elapsed().as_secs_f64();
    let mut ru = Rusage { utime: Timeval { sec: 0, usec: 0 }, stime: Timeval { sec: 0, usec: 0 }, maxrss: 0, rest: [0; 13] };
    // SAFETY: getrusage fills the struct we pass; RUSAGE_CHILDREN = -1.
    unsafe { getrusage(-1, &mut ru) };
    let cpu = |t: &Timeval| t.sec as f64 + t.usec as f64 / 1e6;
    let code = status.code().unwrap_or(128 + std::os::unix::process::ExitStatusExt::signal(&status).unwrap_or(0));
    let text = format!(
        "{{\"wall_s\": {wall:.6}, \"user_s\": {:.6}, \"sys_s\": {:.6}, \"maxrss_kib\": {}, \"exit\": {code}}}\n",
        cpu(&ru.utime),
        cpu(&ru.stime),
        ru.maxrss
    );
    std::fs::write(report, text).unwrap_or_else(|e| die(&format!("{report}: {e}")));
    std::process::exit(code);
}

fn main() {
    let all: Vec<String> = std::env::args().skip(1).collect();
    if all.first().map(String::as_str) == Some("measure") {
        measure(&all[1..]);
    }
    let mut size = None;
    let mut seed = 1u64;
    let mut out = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--size" => size = Some(parse_size(&args.next().unwrap_or_default())),
            "--seed" => seed = args.next().and_then(|s| s.parse().ok()).unwrap_or_else(|| die("bad --seed")),
            "--out" => out = args.next().map(PathBuf::from),
            "-h" | "--help" => {
                println!("usage: gatelog-bench-gen --size 100M [--seed N] --out DIR\n\nWrites error.log, php8.2-fpm.log, kern.log, gatelog.json and manifest.json\n(total size of the four logs ~ SIZE; same seed and size, same bytes).");
                return;
            }
            _ => die(&format!("unknown argument {a:?} (try --help)")),
        }
    }
    let size = size.unwrap_or_else(|| die("--size is required"));
    let out = out.unwrap_or_else(|| die("--out is required"));
    std::fs::create_dir_all(&out).unwrap_or_else(|e| die(&format!("{}: {e}", out.display())));
    let mut sim = Sim::new(seed, &out);
    while sim.total() < size {
        sim.step();
    }
    sim.finish(&out, seed, size);
}
