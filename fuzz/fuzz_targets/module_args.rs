//! The `gatelog` directive's arguments as NGINX hands them over (words of the
//! config line): any words give a target or an error message, never a panic; nor does
//! reading NGINX's message about a `syslog:` argument (`conf_error_message`).
#![no_main]

use libfuzzer_sys::fuzz_target;

// The parser is plain Rust inside the module crate, which links NGINX: include the
// file itself rather than the crate.
#[allow(dead_code)]
#[path = "../../ngx-module/src/args.rs"]
mod args;

fn size(v: &[u8]) -> Option<usize> {
    let s = std::str::from_utf8(v).ok()?;
    let (n, mult) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 1024),
        b'm' | b'M' => (&s[..s.len() - 1], 1024 * 1024),
        _ => (s, 1),
    };
    n.parse::<usize>().ok()?.checked_mul(mult)
}

fn time_ms(v: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(v).ok()?;
    let (n, mult) = match s.strip_suffix("ms") {
        Some(n) => (n, 1),
        None => (s.strip_suffix('s').unwrap_or(s), 1000),
    };
    n.parse::<u64>().ok()?.checked_mul(mult)
}

fuzz_target!(|data: &[u8]| {
    if let Some(msg) = args::conf_error_message(data) {
        let _ = args::syslog_error(data, Some(&msg));
    }
    let words: Vec<&[u8]> = data.split(|&b| b == b' ').collect();
    if let Ok(args::Target::File { buffer, .. }) = args::parse_target(&words, size, time_ms) {
        assert!(buffer <= args::MAX_BUFFER);
    }
});
