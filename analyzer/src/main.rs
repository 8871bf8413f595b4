//! `gatelog`: exit status 0 when the analysis ran (whatever it found), 2 on bad
//! usage, 1 when an input could not be read (named in the message).

use std::io::Write;

use clap::Parser;
use gatelog_analyzer::analyze;
use gatelog_analyzer::cli::{Cli, Command};

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
        Command::Analyze(args) => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::with_capacity(256 * 1024, stdout.lock());
            let result = analyze::run(&args, &mut out);
            let _ = out.flush();
            match result {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("gatelog: {e}");
                    e.exit_code()
                }
            }
        }
    };
    std::process::exit(code);
}
