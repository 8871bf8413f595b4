//! Command line: `gatelog analyze [PATH...] [--format text|markdown|json] ...` and
//! `gatelog doctor` (its arguments live in [`crate::doctor`]).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "gatelog",
    version,
    about = "Why did NGINX answer 502/504 in front of PHP-FPM? Classifies every failure into one of seven causes from gatelog records or NGINX error logs, correlated with PHP-FPM, kernel and systemd logs and the configs."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per run: the size of the variants does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Analyze logs and configs. Every line is unwrapped from its framing (docker
    /// logs -t, docker compose prefixes, kubectl --prefix/--timestamps, syslog,
    /// journalctl short*/json, docker json-file) and read by its content, so one
    /// file may mix NGINX, PHP-FPM, kernel and journal lines. The flags below set a
    /// file's role (how lines its content leaves open are read), never its lines'
    /// format. `-` reads standard input. Directories are read recursively; .gz and
    /// rotated files are fine.
    Analyze(AnalyzeArgs),
    /// Check this host now: NGINX's FastCGI targets, the PHP-FPM pools, timeouts
    /// and the last hour's OOM kills and crashes (read-only). Exit status 0: no
    /// problem, 3: problems found, 2: bad usage, 1: could not run.
    Doctor(crate::doctor::DoctorArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Markdown,
    Json,
    /// One self-contained page with a timeline, for people who were not on call.
    Html,
}

#[derive(Debug, Args)]
pub struct AnalyzeArgs {
    /// Logs, configs or directories (`-`: standard input); what each file is, is
    /// detected from its lines.
    pub paths: Vec<PathBuf>,

    /// Report format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,

    /// gatelog.v1 records (JSON lines from the NGINX module). Like every flag
    /// below: sets the file's role; its lines are still read by their content.
    /// `-`: standard input.
    #[arg(long = "records", value_name = "PATH")]
    pub records: Vec<PathBuf>,
    /// NGINX error log (also in a docker/compose/kubectl stream or syslog).
    #[arg(long = "nginx-log", value_name = "PATH")]
    pub nginx_log: Vec<PathBuf>,
    /// NGINX access log (combined or JSON).
    #[arg(long = "access-log", value_name = "PATH")]
    pub access_log: Vec<PathBuf>,
    /// PHP-FPM error log: its own file, `error_log = syslog`, the journal, or a
    /// container's stderr.
    #[arg(long = "fpm-log", value_name = "PATH")]
    pub fpm_log: Vec<PathBuf>,
    /// Kernel log: dmesg (raw, -T, -x, iso), kern.log, journalctl -k.
    #[arg(long = "kernel-log", value_name = "PATH")]
    pub kernel_log: Vec<PathBuf>,
    /// journalctl output (short*, json) or syslog with systemd/php-fpm/kernel lines.
    #[arg(long = "journal", value_name = "PATH")]
    pub journal: Vec<PathBuf>,
    /// NGINX config (`nginx -T` output or config files).
    #[arg(long = "nginx-conf", value_name = "PATH")]
    pub nginx_conf: Vec<PathBuf>,
    /// PHP-FPM config (php-fpm.conf, pool.d/*.conf).
    #[arg(long = "fpm-conf", value_name = "PATH")]
    pub fpm_conf: Vec<PathBuf>,

    /// Zone of the zone-less times in NGINX and FPM logs (IANA name, e.g.
    /// Europe/Berlin). Default: this machine's zone.
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,
    /// Only failures at or after this time (RFC 3339, `YYYY-MM-DD HH:MM:SS` in
    /// --tz, or epoch seconds).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Only failures at or before this time.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// When the kernel booted, to place raw dmesg times (RFC 3339 or epoch seconds).
    #[arg(long = "boot-time", value_name = "TIME")]
    pub boot_time: Option<String>,

    /// RAM for the pm.max_children formula (default: from the OOM dump).
    #[arg(long = "ram-mb", value_name = "MB", value_parser = clap::value_parser!(u64).range(1..=MAX_MB))]
    pub ram_mb: Option<u64>,
    /// Memory reserved for everything but PHP (default: a quarter of RAM).
    #[arg(long = "reserved-mb", value_name = "MB", value_parser = clap::value_parser!(u64).range(0..=MAX_MB))]
    pub reserved_mb: Option<u64>,
    /// Average PHP worker memory (default: from the OOM dump).
    #[arg(long = "worker-mb", value_name = "MB", value_parser = clap::value_parser!(u64).range(1..=MAX_MB))]
    pub worker_mb: Option<u64>,
}

/// Largest memory figure accepted (1 PiB in MB): anything above is a typo, and the
/// pm.max_children formula stays far from overflow.
const MAX_MB: u64 = 1 << 30;
