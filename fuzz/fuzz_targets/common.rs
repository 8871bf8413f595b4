// Shared by the analyze_* targets: run the whole `gatelog analyze` on bytes written
// to files, the way a user's logs reach it (detection, framing, every parser, the
// join, the classifier and the JSON report). The files live in a directory of this
// process, rewritten for every input.

use std::path::PathBuf;
use std::sync::OnceLock;

use clap::Parser;
use gatelog_analyzer::analyze;
use gatelog_analyzer::cli::{Cli, Command};

pub fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = std::env::temp_dir().join(format!("gatelog-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&d).expect("fuzz temp dir");
        d
    })
}

/// Runs `gatelog analyze --format json --tz UTC ARGS`; errors are answers, panics
/// are bugs.
pub fn analyze(args: &[String]) {
    let mut argv = vec![
        "gatelog".to_string(),
        "analyze".into(),
        "--format".into(),
        "json".into(),
        "--tz".into(),
        "UTC".into(),
    ];
    argv.extend(args.iter().cloned());
    let Ok(cli) = Cli::try_parse_from(argv) else {
        return;
    };
    let Command::Analyze(a) = cli.command else {
        return;
    };
    let _ = analyze::run(&a, &mut std::io::sink());
}
