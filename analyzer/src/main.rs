//! `gatelog`: exit status 0 when the analysis ran (whatever it found), 2 on bad
//! usage, 1 when an input could not be read (named in the message) or the report
//! could not be written. A reader that stops early (`gatelog analyze ... | head`)
//! is not an error: like other command-line tools, gatelog then stops quietly.

use std::io::{self, Write};

use clap::Parser;
use gatelog_analyzer::analyze::{self, AnalyzeError};
use gatelog_analyzer::cli::{Cli, Command};

// Failures are built on reader threads and dropped on the joiner or the report
// writer. glibc malloc serialises those cross-thread frees on its arena locks (a
// third of the CPU on a failure-dense log, measured with perf); mimalloc returns
// them to the owning thread's heap without a lock: half the wall time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // --help and --version are not errors; clap gives usage errors code 2.
            let _ = e.print();
            std::process::exit(e.exit_code());
        }
    };
    let code = match cli.command {
        Command::Doctor(args) => {
            let stdout = io::stdout();
            let mut out = io::BufWriter::new(stdout.lock());
            gatelog_analyzer::doctor::main(&args, &mut out)
        }
        Command::Analyze(args) => {
            if stdout_was_closed() {
                eprintln!("gatelog: standard output is closed: there is nowhere to write the report (redirect it to a file or /dev/null)");
                std::process::exit(1);
            }
            // Not locked: the JSON report is written on its own thread, and a lock
            // guard cannot move there. The buffer makes the lock per write rare.
            let mut out = io::BufWriter::with_capacity(256 * 1024, io::stdout());
            let result = analyze::run(&args, &mut out);
            let flushed = out.flush();
            let result = match (result, flushed) {
                (Ok(()), Err(e)) => Err(AnalyzeError::Output(e)),
                (r, _) => r,
            };
            match result {
                Ok(()) => 0,
                Err(AnalyzeError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => 0,
                Err(e) => {
                    eprintln!("gatelog: {e}");
                    e.exit_code()
                }
            }
        }
    };
    std::process::exit(code);
}

/// Whether the process was started with standard output closed (`>&-`). Rust's
/// runtime then opens /dev/null read-write on fd 1 before `main`, so writes would
/// vanish without an error; a shell's `>/dev/null` opens it write-only.
fn stdout_was_closed() -> bool {
    let Ok(target) = std::fs::read_link("/proc/self/fd/1") else {
        return false;
    };
    if target.as_os_str() != "/dev/null" {
        return false;
    }
    let Ok(info) = std::fs::read_to_string("/proc/self/fdinfo/1") else {
        return false;
    };
    info.lines()
        .find_map(|l| l.strip_prefix("flags:"))
        .and_then(|f| u32::from_str_radix(f.trim(), 8).ok())
        .is_some_and(|flags| flags & 0o3 == 0o2)
}
