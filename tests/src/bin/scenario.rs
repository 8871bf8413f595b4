//! `gatelog-e2e-scenario <fault> <flavour> <dir>`: injects one fault for real and
//! leaves NGINX's error log, PHP-FPM's log, the kernel log excerpt, the records and
//! scenario.json in <dir> (input for analyzer end-to-end tests).
//! `gatelog-e2e-scenario --list` prints the fault names.

use std::path::PathBuf;
use std::process::ExitCode;

use gatelog_e2e::env::Flavour;
use gatelog_e2e::scenarios::{run_to_dir, Fault, RunError};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--list") {
        for f in Fault::ALL {
            println!("{}\tcause {}", f.name(), f.cause());
        }
        return ExitCode::SUCCESS;
    }
    let [fault, flavour, dir] = args.as_slice() else {
        eprintln!("usage: gatelog-e2e-scenario <fault> <flavour> <dir> | --list");
        return ExitCode::from(2);
    };
    let Some(fault) = Fault::by_name(fault) else {
        eprintln!("unknown fault {fault:?} (see --list)");
        return ExitCode::from(2);
    };
    let Some(flavour) = Flavour::by_name(flavour) else {
        eprintln!("unknown flavour {flavour:?} (deb-1.22, vendored-1.28)");
        return ExitCode::from(2);
    };
    match run_to_dir(fault, &flavour, &PathBuf::from(dir)) {
        Ok(run) => {
            println!(
                "{}: {} request(s), {} failed; evidence in {dir}",
                fault.name(),
                run.responses.len(),
                run.failed().len()
            );
            ExitCode::SUCCESS
        }
        Err(RunError::Unavailable(why)) => {
            eprintln!("{}: cannot run here: {why}", fault.name());
            ExitCode::from(3)
        }
        Err(RunError::Failed(e)) => {
            eprintln!("{}: {e}", fault.name());
            ExitCode::FAILURE
        }
    }
}
