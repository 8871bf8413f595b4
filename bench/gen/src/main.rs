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
//! Usage: gatelog-bench-gen --size 100M [--seed 1] [--incident] --out DIR
//! The same seed and size always produce the same bytes. `--incident` writes one hour in
//! which most error-log lines are upstream failures (sim/incident.rs) instead of hours of a
//! mostly quiet server.
//!
//! Also: gatelog-bench-gen measure --report FILE -- CMD ARGS... runs CMD and writes its
//! wall time, CPU time and peak RSS (getrusage of the child) to FILE as JSON; and
//! gatelog-bench-gen blackhole [PORT] is the upstream that never answers (blackhole.rs).

mod blackhole;
mod clock;
mod kind;
mod measure;
mod rng;
mod sim;
mod site;
mod text;
mod writer;

use std::path::PathBuf;

use sim::Sim;

pub(crate) fn die(msg: &str) -> ! {
    eprintln!("gatelog-bench-gen: {msg}");
    std::process::exit(2);
}

pub(crate) fn parse_size(s: &str) -> u64 {
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
    num.parse::<u64>()
        .unwrap_or_else(|_| die(&format!("bad size {s:?}")))
        * mul
}

const HELP: &str = "\
usage: gatelog-bench-gen --size 100M [--seed N] [--incident] --out DIR
       gatelog-bench-gen measure --report FILE -- COMMAND [ARGS...]
       gatelog-bench-gen blackhole [PORT]

Writes error.log, php8.2-fpm.log, kern.log, gatelog.json and manifest.json (total size of
the four logs ~ SIZE; same seed and size, same bytes). Without --incident: hours of a
mostly quiet server with failure episodes; with it: one incident hour in which most
error-log lines are upstream failures of every kind.";

fn main() {
    let all: Vec<String> = std::env::args().skip(1).collect();
    match all.first().map(String::as_str) {
        Some("measure") => measure::run(&all[1..]),
        Some("blackhole") => blackhole::run(&all[1..]),
        _ => {}
    }
    let mut size = None;
    let mut seed = 1u64;
    let mut out = None;
    let mut incident = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--size" => size = Some(parse_size(&args.next().unwrap_or_default())),
            "--seed" => {
                seed = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| die("bad --seed"))
            }
            "--out" => out = args.next().map(PathBuf::from),
            "--incident" => incident = true,
            "-h" | "--help" => {
                println!("{HELP}");
                return;
            }
            _ => die(&format!("unknown argument {a:?} (try --help)")),
        }
    }
    let size = size.unwrap_or_else(|| die("--size is required"));
    let out = out.unwrap_or_else(|| die("--out is required"));
    std::fs::create_dir_all(&out).unwrap_or_else(|e| die(&format!("{}: {e}", out.display())));
    generate(seed, size, incident, &out);
}

/// Writes the input of that seed and size into `out` (which exists).
fn generate(seed: u64, size: u64, incident: bool, out: &std::path::Path) {
    if incident {
        // the incident hour: 14:00 to 15:00
        let mut sim = Sim::new(seed, out, 14);
        sim.start_incident(size);
        while sim.total() < size {
            sim.incident_step();
        }
        sim.finish(out, seed, size);
        return;
    }
    let mut sim = Sim::new(seed, out, 6);
    while sim.total() < size {
        sim.step();
    }
    sim.finish(out, seed, size);
}

#[cfg(test)]
mod tests;
