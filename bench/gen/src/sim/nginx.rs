//! The NGINX error log's lines that are not upstream failures (other modules, info lines,
//! PHP warnings, reloads) and the parts every error line shares: head and request context.

use super::Sim;
use crate::site::{
    push_client, ClientIp, Req, AGENTS_REFERRERS, EXCEPTIONS, PHP_FILES, PHP_URIS, SERVERS,
    STATIC_MISSING, WARNINGS,
};

impl Sim {
    pub(crate) fn req(&mut self, php: bool) -> Req {
        let server = self.rng.weighted(&[60, 25, 15]);
        let s = &SERVERS[server];
        let host = *self.rng.pick(s.hosts);
        let client = if self.rng.chance(80_000) {
            ClientIp::V6(self.rng.below(65536) as u16)
        } else {
            let a = *self.rng.pick(&[203u8, 198, 192, 185, 91, 66, 45]);
            ClientIp::V4(
                a,
                self.rng.below(256) as u8,
                self.rng.below(256) as u8,
                self.rng.range(1, 254) as u8,
            )
        };
        let uri = if php {
            *self.rng.pick(PHP_URIS)
        } else {
            *self.rng.pick(STATIC_MISSING)
        };
        let method = if php && self.rng.chance(200_000) {
            "POST"
        } else {
            "GET"
        };
        let proto = *self
            .rng
            .pick(&["HTTP/1.1", "HTTP/1.1", "HTTP/2.0", "HTTP/1.0"]);
        let referrer = if self.rng.chance(300_000) {
            *self.rng.pick(AGENTS_REFERRERS)
        } else {
            ""
        };
        Req {
            server,
            host,
            client,
            method,
            uri,
            proto,
            referrer,
        }
    }

    /// `YYYY/MM/DD HH:MM:SS [level] pid#pid: *conn ` (or without `*conn ` when conn is 0)
    pub(crate) fn err_head(&mut self, level: &str, pid: u64, conn: u64) {
        self.stamp();
        self.err
            .b(&self.st.nginx)
            .s(" [")
            .s(level)
            .s("] ")
            .n(pid)
            .s("#")
            .n(pid)
            .s(": ");
        if conn != 0 {
            self.err.s("*").n(conn).s(" ");
        }
    }

    /// `, client: ..., server: ..., request: "...", [upstream: "...",] host: "..."[, referrer: "..."]`
    pub(crate) fn err_ctx(&mut self, r: &Req, upstream: Option<&str>) {
        self.err.s(", client: ");
        push_client(&mut self.err.buf, r.client);
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

    pub(crate) fn new_conn(&mut self) -> (u64, u64) {
        self.conn += self.rng.range(1, 4);
        let w = self.workers[self.rng.below(2) as usize];
        (w, self.conn)
    }

    pub(crate) fn upstream_str(pool: usize) -> &'static str {
        if pool == 0 {
            "fastcgi://unix:/run/php/php8.2-fpm.sock:"
        } else {
            "fastcgi://127.0.0.1:9000"
        }
    }

    pub(crate) fn nginx_noise(&mut self) {
        match self.rng.weighted(&[
            300, 170, 25, 90, 50, 40, 40, 30, 30, 25, 20, 15, 15, 10, 8, 6,
        ]) {
            0 => {
                // static file that does not exist
                let r = self.req(false);
                let (w, c) = self.new_conn();
                self.err_head("error", w, c);
                self.err
                    .s("open() \"/var/www/html")
                    .s(r.uri)
                    .s("\" failed (2: No such file or directory)");
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
                    self.err
                        .s("PHP message: ")
                        .s(warn)
                        .s(" in ")
                        .s(file)
                        .s(" on line ")
                        .n(line);
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
                push_client(&mut self.err.buf, r.client);
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
                push_client(&mut self.err.buf, r.client);
                self.err.s(", server: 0.0.0.0:443").nl();
            }
            7 => {
                let r = self.req(true);
                let (w, c) = self.new_conn();
                self.err_head("error", w, c);
                let excess = self.rng.range(1, 30_000);
                self.err
                    .s("limiting requests, excess: ")
                    .n(excess / 1000)
                    .s(".")
                    .nz(excess % 1000, 3)
                    .s(" by zone \"perip\"");
                self.err_ctx(&r, None);
            }
            8 => {
                let r = self.req(true);
                let (w, c) = self.new_conn();
                self.err_head("warn", w, c);
                let (a, b, n) = (
                    self.rng.below(10),
                    self.rng.below(100),
                    self.rng.range(1, 99_999),
                );
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
                push_client(&mut self.err.buf, r.client);
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
                self.err
                    .s("client intended to send too large body: ")
                    .n(self.rng.range(1_048_577, 80_000_000))
                    .s(" bytes");
                self.err_ctx(&r, None);
            }
            13 => {
                let mut r = self.req(false);
                r.uri = "/uploads/";
                let (w, c) = self.new_conn();
                self.err_head("error", w, c);
                self.err
                    .s("directory index of \"/var/www/html/uploads/\" is forbidden");
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
                push_client(&mut self.err.buf, r.client);
                self.err.s(", server: 0.0.0.0:443").nl();
            }
        }
    }

    /// A `FastCGI sent in stderr` entry whose text spans several physical lines.
    pub(crate) fn fastcgi_multiline(&mut self, w: u64, c: u64, r: &Req) {
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
            self.err
                .s("#")
                .n(i)
                .s(" ")
                .s(f)
                .s("(")
                .n(self.rng.range(3, 900))
                .s("): App\\Kernel->handle(Object(Illuminate\\Http\\Request))")
                .nl();
        }
        self.err.s("#").n(frames).s(" {main}").nl();
        self.err
            .s("  thrown in ")
            .s(file)
            .s(" on line ")
            .n(line)
            .s("\" while reading response header from upstream");
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
            self.fpm_line("WARNING")
                .s("[pool www] child ")
                .n(child)
                .s(" said into stderr: \"Stack trace:\"")
                .nl();
            self.fpm_line("WARNING")
                .s("[pool www] child ")
                .n(child)
                .s(" said into stderr: \"#0 {main}\"")
                .nl();
        }
    }

    pub(crate) fn nginx_reload(&mut self) {
        let m = self.master_pid;
        let from = self.rng.range(20_000, 90_000);
        self.err_head("notice", m, 0);
        self.err
            .s("signal 1 (SIGHUP) received from ")
            .n(from)
            .s(", reconfiguring")
            .nl();
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
            self.err
                .s("worker process ")
                .n(p)
                .s(" exited with code 0")
                .nl();
        }
        self.err_head("notice", m, 0);
        self.err.s("signal 29 (SIGIO) received").nl();
        self.reloads += 1;
    }
}
