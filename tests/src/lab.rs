//! A per-test lab: one prefix, one NGINX flavour, the module (or, only in
//! GATELOG_E2E_NO_MODULE mode, none) and the PHP scripts every scenario uses.

use std::path::PathBuf;

use crate::env::{no_module_mode, Flavour, NO_MODULE_ENV};
use crate::fpm::Listen;
use crate::nginx::{server_block, write_fastcgi_params, Nginx, NginxConf};
use crate::prefix::Prefix;

/// How a test ended when it did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestOutcome {
    Passed,
    /// Could not run here (reason); reported as ignored, never as passed.
    Skipped(String),
}

/// Result of a test body.
pub type TestResult = Result<TestOutcome, String>;

/// The reason used when a check needs records but the module is deliberately absent.
pub fn no_module_reason(what: &str) -> String {
    format!("{NO_MODULE_ENV} is set: {what}; record checks were NOT run")
}

/// The PHP scripts every lab has in `www/`.
pub const SCRIPTS: &[(&str, &str)] = &[
    ("ok.php", "<?php\necho \"ok\\n\";\n"),
    (
        "sleep.php",
        "<?php\nusleep((int)($_GET['ms'] ?? 1000) * 1000);\necho \"slept\\n\";\n",
    ),
    (
        // Allocates 16 MiB strings until the kernel kills the worker (memory_limit=-1).
        "oom.php",
        "<?php\n$a = [];\nfor ($i = 0; $i < 256; $i++) {\n    $a[] = str_repeat(chr(65 + $i % 26), 16 << 20);\n}\necho count($a), \"\\n\";\n",
    ),
    (
        // A real SIGSEGV inside the worker: strlen(NULL) in libc through FFI.
        "segv.php",
        "<?php\n$ffi = FFI::cdef(\"size_t strlen(const char *s);\", \"libc.so.6\");\necho $ffi->strlen(null);\n",
    ),
    (
        // PHP itself answers 502 after writing to FastCGI stderr.
        "status502.php",
        "<?php\nerror_log(\"gatelog-e2e stderr marker \\\"quoted\\\"\");\nhttp_response_code(502);\necho \"bad gateway from php\\n\";\n",
    ),
    (
        // PHP answers 502 after 3 messages of 900 bytes on stderr (PHP cuts each
        // message at 1 KiB): one FastCGI stderr segment that fits NGINX's 4 KiB
        // buffer but not its 2048-byte log line.
        "bigstderr502.php",
        "<?php\nfor ($i = 0; $i < 3; $i++) {\n    error_log(str_repeat(\"gatelog-e2e-\", 75));\n}\nhttp_response_code(502);\necho \"big stderr\\n\";\n",
    ),
    (
        // 200 with a FastCGI stderr line (for the error-log comparison).
        "warn.php",
        "<?php\nerror_log(\"gatelog-e2e warning\");\necho \"warned\\n\";\n",
    ),
];

/// One test's world.
#[derive(Debug)]
pub struct Lab {
    pub flavour: Flavour,
    pub prefix: Prefix,
    /// The module to load; None only in GATELOG_E2E_NO_MODULE mode.
    pub module: Option<PathBuf>,
    /// Unix milliseconds when the lab was created (records must be later).
    pub started_ms: i64,
}

/// Unix milliseconds now.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Lab {
    /// A lab for `flavour`. Fails (does not skip) when the module is not built.
    pub fn new(flavour: &Flavour, label: &str) -> Result<Lab, String> {
        Lab::with_module_choice(flavour, label, !no_module_mode())
    }

    /// A lab that never loads the module (the reference side of comparisons).
    pub fn without_module(flavour: &Flavour, label: &str) -> Result<Lab, String> {
        Lab::with_module_choice(flavour, label, false)
    }

    fn with_module_choice(flavour: &Flavour, label: &str, load: bool) -> Result<Lab, String> {
        // SAFETY: geteuid(2) has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Err(
                "the end-to-end suite needs root: NGINX and PHP-FPM switch their workers \
                        to www-data, and the OOM test creates a memory cgroup"
                    .into(),
            );
        }
        flavour.check_binary()?;
        let module = if load {
            Some(flavour.module_path()?)
        } else {
            None
        };
        let prefix = Prefix::new(&format!("{}-{label}", flavour.name))?;
        write_fastcgi_params(&prefix)?;
        for (name, body) in SCRIPTS {
            prefix.write(&format!("www/{name}"), body, 0o644)?;
        }
        Ok(Lab {
            flavour: flavour.clone(),
            prefix,
            module,
            started_ms: now_ms(),
        })
    }

    pub fn with_module(&self) -> bool {
        self.module.is_some()
    }

    /// Where the default `gatelog` directive writes.
    pub fn records_path(&self) -> PathBuf {
        self.prefix.path("logs/gatelog.jsonl")
    }

    /// `directive` when the module is loaded, nothing otherwise.
    pub fn gl(&self, directive: &str) -> String {
        if self.with_module() {
            format!("    {directive}\n")
        } else {
            String::new()
        }
    }

    /// `gatelog <logs/gatelog.jsonl>;` at http level (when the module is loaded).
    pub fn default_gatelog(&self) -> String {
        self.gl(&format!("gatelog {};", self.records_path().display()))
    }

    /// A PHP location (`location <pattern>`) passing to `pass` with explicit
    /// connect/send/read timeouts, so records' `timeouts_ms` can be checked.
    pub fn php_location(&self, pattern: &str, pass: &str, t: Timeouts, extra: &str) -> String {
        format!(
            r#"        location {pattern} {{
            include {params};
            fastcgi_connect_timeout {c}ms;
            fastcgi_send_timeout {s}ms;
            fastcgi_read_timeout {r}ms;
            fastcgi_pass {pass};
{extra}
        }}
"#,
            params = self.prefix.path("conf/fastcgi_params").display(),
            c = t.connect,
            s = t.send,
            r = t.read,
        )
    }

    /// A server block on `port` (see [`server_block`]).
    pub fn server(&self, port: u16, body: &str) -> String {
        server_block(&self.prefix, port, "", body)
    }

    /// A server block speaking HTTP/2 without TLS (prior knowledge) on `port`.
    pub fn h2_server(&self, port: u16, body: &str) -> String {
        if self.flavour.has_http2_directive {
            server_block(
                &self.prefix,
                port,
                "",
                &format!("        http2 on;\n{body}"),
            )
        } else {
            server_block(&self.prefix, port, " http2", body)
        }
    }

    /// The nginx.conf frame around `http` (load_module when the module is loaded).
    pub fn conf(&self, http: String) -> NginxConf {
        NginxConf::new(self.module.clone(), http)
    }

    /// Starts NGINX with `http` as the http{} content and waits for `ports`.
    pub fn start_nginx(&self, http: String, ports: &[u16]) -> Result<Nginx, String> {
        Nginx::start(&self.flavour, &self.prefix, &self.conf(http), ports)
    }

    /// `fastcgi_pass` argument for a pool.
    pub fn pass(listen: &Listen) -> String {
        listen.nginx_addr()
    }
}

/// Upstream timeouts in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: u64,
    pub send: u64,
    pub read: u64,
}

impl Timeouts {
    pub const fn new(connect: u64, send: u64, read: u64) -> Timeouts {
        Timeouts {
            connect,
            send,
            read,
        }
    }

    /// The defaults of the scenarios: distinct values so a swapped field shows.
    pub const DEFAULT: Timeouts = Timeouts::new(2000, 3000, 4000);
}
