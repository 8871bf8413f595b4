//! gatelog end-to-end harness: real NGINX (Debian's 1.22 and the vendored 1.28), real
//! php8.2-fpm, real faults, and checks of what the gatelog module writes.
//!
//! - [`prefix`]: a unique, world-traversable temp prefix per test.
//! - [`proc`]: process-group guards (everything a test starts dies with it).
//! - [`nginx`], [`fpm`]: runners with generated configs; [`net`]: free ports, a port
//!   that refuses, a listener that accepts and never answers, a UDP (syslog) receiver.
//! - [`client`]: curl (HTTP/1.1, HTTP/2 prior knowledge), raw TCP requests.
//! - [`errlog`]: NGINX's error log per `*conn` with the printed errno; the access log.
//! - [`records`]: the module's JSON lines; [`schema`]: the JSON Schemas of docs/
//!   applied by the `jsonschema` crate (records, reports, doctor output).
//! - [`cgroup`], [`kmsg`]: a memory cgroup for real OOM kills; the kernel log.
//! - [`lab`]: one test's world; [`check`]: record assertions; [`scenarios`]: the
//!   seven causes as reusable functions that leave their logs in a directory.
//! - [`storm`]: keep-alive connections sending requests as fast as NGINX answers;
//!   [`tmpfs`]: a small tmpfs to fill (a real full disk); [`valgrind`]: memcheck mode.
//! - [`analyzer`]: runs the real `gatelog analyze` on that evidence and checks its
//!   report against the injected causes.
//! - [`backend`]: a loopback HTTP backend (TCP or unix socket) that answers, hangs,
//!   resets or is stopped: upstreams that are not PHP-FPM.
//! - [`reframe`]: the same real log lines as docker, compose and syslog carry them;
//!   [`clock`]: the local and carrier time stamps they need.
//! - [`browser`]: headless Chromium over WebDriver, for the HTML report.

pub mod analyzer;
pub mod backend;
pub mod browser;
pub mod cgroup;
pub mod check;
pub mod client;
pub mod clock;
pub mod env;
pub mod errlog;
pub mod fpm;
pub mod kmsg;
pub mod lab;
pub mod net;
pub mod nginx;
pub mod prefix;
pub mod proc;
pub mod records;
pub mod reframe;
pub mod scenarios;
pub mod schema;
pub mod storm;
pub mod tmpfs;
pub mod valgrind;
