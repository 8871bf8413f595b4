//! `gatelog-docgen OUT_DIR`: writes gatelog's man pages (`OUT_DIR/man/*.1`) and shell
//! completions (`OUT_DIR/completions/{gatelog.bash,_gatelog,gatelog.fish}`) from the
//! analyzer's own clap definition, so that the Debian package never ships a page or a
//! completion older than the options it describes. Run by `scripts/package`.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Command, CommandFactory};
use clap_complete::Shell;
use clap_mangen::Man;
use gatelog_analyzer::cli::Cli;
use roff::{bold, roman, Roff};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(out), None) = (args.next(), args.next()) else {
        eprintln!("usage: gatelog-docgen OUT_DIR");
        return ExitCode::from(2);
    };
    match write_all(Path::new(&out)) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("gatelog-docgen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn write_all(out: &Path) -> io::Result<Vec<PathBuf>> {
    // No page for clap's generated `help` subcommand; subcommands get their display
    // name ("gatelog-analyze") only once the command is built.
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();

    let man_dir = out.join("man");
    fs::create_dir_all(&man_dir)?;
    written.push(write_man(&man_dir, &cmd, &cmd)?);
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        written.push(write_man(&man_dir, &cmd, sub)?);
    }

    let comp_dir = out.join("completions");
    fs::create_dir_all(&comp_dir)?;
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
        written.push(clap_complete::generate_to(
            shell,
            &mut cmd.clone(),
            "gatelog",
            &comp_dir,
        )?);
    }
    Ok(written)
}

/// One page: clap's sections, then what clap cannot know (exit status, files, see also).
fn write_man(dir: &Path, top: &Command, cmd: &Command) -> io::Result<PathBuf> {
    let man = Man::new(cmd.clone())
        .source(format!("gatelog {}", top.get_version().unwrap_or_default()))
        .manual("gatelog manual");
    let path = dir.join(man.get_filename());
    let mut page = Vec::new();
    man.render_title(&mut page)?;
    man.render_name_section(&mut page)?;
    man.render_synopsis_section(&mut page)?;
    man.render_description_section(&mut page)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut page)?;
    }
    if cmd.has_subcommands() {
        man.render_subcommands_section(&mut page)?;
    }
    extra_sections(top, cmd)?.to_writer(&mut page)?;
    if cmd.get_version().is_some() {
        man.render_version_section(&mut page)?;
    }
    let mut f = fs::File::create(&path)?;
    f.write_all(&page)?;
    f.flush()?;
    Ok(path)
}

/// Exit status of each subcommand: the numbers come from the analyzer's own code, the
/// words from its documentation; a subcommand missing here fails the build of the pages.
fn exit_statuses(sub: &str) -> Option<Vec<(i32, &'static str)>> {
    use gatelog_analyzer::analyze::AnalyzeError;
    use gatelog_analyzer::doctor::{EXIT_CANNOT_RUN, EXIT_HEALTHY, EXIT_PROBLEMS, EXIT_USAGE};
    match sub {
        "analyze" => Some(vec![
            (0, "The analysis ran, whatever it found (also when a reader such as head(1) stops early)."),
            (AnalyzeError::Input(String::new()).exit_code(), "An input could not be read (it is named on standard error), or the report could not be written."),
            (AnalyzeError::Usage(String::new()).exit_code(), "Bad usage: an unknown option or subcommand, a bad option value (--format, --tz, --since, --until, the memory figures), no input."),
        ]),
        "doctor" => Some(vec![
            (EXIT_HEALTHY, "No problem found."),
            (EXIT_CANNOT_RUN, "The checks could not run (named on standard error), or the report could not be written."),
            (EXIT_USAGE, "Bad usage."),
            (EXIT_PROBLEMS, "Problems found (listed in the report)."),
        ]),
        _ => None,
    }
}

fn extra_sections(top: &Command, cmd: &Command) -> io::Result<Roff> {
    let is_top = cmd.get_name() == top.get_name();
    let subs: Vec<&str> = top
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| s.get_name())
        .collect();
    let mut r = Roff::new();
    r.control("SH", ["EXIT STATUS"]);
    let own: Vec<&str> = if is_top {
        subs.clone()
    } else {
        vec![cmd.get_name()]
    };
    for sub in own {
        let codes = exit_statuses(sub).ok_or_else(|| {
            io::Error::other(format!(
                "no exit status documented for `gatelog {sub}`: add it to exit_statuses"
            ))
        })?;
        if is_top {
            r.control("PP", []);
            r.text([bold(format!("gatelog {sub}"))]);
        }
        for (code, meaning) in codes {
            r.control("TP", []);
            r.text([bold(code.to_string())]);
            r.text([roman(meaning)]);
        }
    }
    r.control("SH", ["FILES"]);
    for (file, what) in [
        ("/var/log/nginx/gatelog.json", "Records written by the NGINX module (package libnginx-mod-http-gatelog), one JSON line per 502/504; rotated by /etc/logrotate.d/libnginx-mod-http-gatelog."),
        ("/etc/lnav/formats/gatelog/gatelog_v1.json", "lnav(1) format for the records; gatelog_v1.sql beside it defines the gatelog_v1_records and gatelog_v1_attempts views."),
        ("/usr/share/doc/gatelog/", "Record schema (gatelog.v1.schema.json), report and doctor schemas, the analyzer and doctor references, log-shipping recipes (pipelines.md)."),
    ] {
        r.control("TP", []);
        r.text([bold(file)]);
        r.text([roman(what)]);
    }
    r.control("SH", ["SEE ALSO"]);
    let mut see: Vec<String> = std::iter::once("gatelog".to_string())
        .chain(subs.iter().map(|s| format!("gatelog-{s}")))
        .filter(|page| page != &man_name(top, cmd))
        .map(|page| format!("{page}(1)"))
        .collect();
    see.extend(["lnav(1)", "nginx(8)", "logrotate(8)"].map(String::from));
    r.text([roman(see.join(", "))]);
    Ok(r)
}

/// The page's name: `gatelog` or `gatelog-<subcommand>`.
fn man_name(top: &Command, cmd: &Command) -> String {
    if cmd.get_name() == top.get_name() {
        top.get_name().to_string()
    } else {
        format!("{}-{}", top.get_name(), cmd.get_name())
    }
}
