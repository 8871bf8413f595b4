//! Reading the configuration in force: `nginx -T` (or the given file, through its
//! includes, or a dump on standard input) and `php-fpm -tt` of every installed FPM
//! (Debian `php8.2-fpm` installs `/usr/sbin/php-fpm8.2`, RHEL `php-fpm`), or the given
//! pool files; `nginx -V` for the version, the build's prefix and default user, and
//! the module signature NGINX checks when it loads a module. The parsing is the
//! analyzer's own ([`conf_tree`]).

use std::collections::BTreeMap;
use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::context::conf_tree::{self, Loaded};
use crate::context::PoolConf;
use crate::input::{DetectedBy, Input};
use crate::model::InputKind;
use crate::parse::fpm_conf::Setting;
use crate::parse::nginx_conf::NginxConf;

use super::procs::Procs;

/// How long a subprocess (`nginx -T`, `php-fpm -tt`, `-i`) may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(15);

/// A command's outcome.
#[derive(Debug, Clone)]
pub struct Ran {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `bin args` with `LC_ALL=C`, no standard input, and a deadline.
pub fn run(bin: &Path, args: &[&str]) -> Result<Ran, String> {
    let shown = format!("{} {}", bin.display(), args.join(" "));
    let mut child = Command::new(bin)
        .args(args)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    // Both pipes are drained while the command runs (`nginx -T` prints more than a
    // pipe holds).
    let drain = |p: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = Vec::new();
            if let Some(mut p) = p {
                let _ = p.read_to_end(&mut s);
            }
            String::from_utf8_lossy(&s).into_owned()
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + COMMAND_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "{shown} did not finish within {}s",
                    COMMAND_TIMEOUT.as_secs()
                ));
            }
            Err(e) => return Err(format!("waiting for {shown}: {e}")),
        }
    };
    Ok(Ran {
        ok: status.success(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// A command in PATH, then in the sbin directories.
pub fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Every PHP-FPM binary installed: `php-fpm*` in the sbin directories and PATH.
pub fn fpm_binaries() -> Vec<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = ["/usr/sbin", "/usr/local/sbin", "/sbin"]
        .map(PathBuf::from)
        .to_vec();
    dirs.extend(std::env::split_paths(&path));
    let mut seen = Vec::new();
    let mut out = Vec::new();
    for d in dirs {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut names: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("php-fpm") && !n.ends_with(".conf"))
                    && p.is_file()
            })
            .collect();
        names.sort();
        for p in names {
            let canon = std::fs::canonicalize(&p).unwrap_or_else(|_| p.clone());
            if !seen.contains(&canon) {
                seen.push(canon);
                out.push(p);
            }
        }
    }
    out
}

/// What `nginx -V` says.
#[derive(Debug, Clone, Default)]
pub struct NginxBuild {
    pub binary: PathBuf,
    /// `1.22.1`.
    pub version: String,
    /// 1022001, as NGINX writes `nginx_version`.
    pub version_num: u64,
    pub prefix: Option<PathBuf>,
    pub conf_path: Option<PathBuf>,
    /// Build-time `--user=` / `--group=` (the workers' user without a `user` line).
    pub user: Option<String>,
    pub group: Option<String>,
    /// NGX_MODULE_SIGNATURE in the binary (a module must carry the same).
    pub signature: Option<String>,
}

/// `1.22.1` -> 1022001.
pub fn version_num(v: &str) -> Option<u64> {
    let mut it = v.split('.').map(|p| p.parse::<u64>().ok());
    let (a, b, c) = (it.next()??, it.next()??, it.next().flatten().unwrap_or(0));
    Some(a * 1_000_000 + b * 1_000 + c)
}

/// The NGX_MODULE_SIGNATURE string in a binary or module (`8,4,8,0011...`).
pub fn module_signature(bytes: &[u8]) -> Option<String> {
    let mut i = 0;
    while i + 40 <= bytes.len() {
        let w = &bytes[i..];
        // `D,D,D,` then at least 30 of 0/1.
        if w[0].is_ascii_digit()
            && w[1] == b','
            && w[2].is_ascii_digit()
            && w[3] == b','
            && w[4].is_ascii_digit()
            && w[5] == b','
        {
            let bits = w[6..]
                .iter()
                .take_while(|b| **b == b'0' || **b == b'1')
                .count();
            let before_ok = i == 0 || !bytes[i - 1].is_ascii_digit();
            if bits >= 30 && before_ok && w.get(6 + bits) == Some(&0) {
                return Some(String::from_utf8_lossy(&w[..6 + bits]).into_owned());
            }
        }
        i += 1;
    }
    None
}

/// Runs `nginx -V` and reads the binary's signature.
pub fn nginx_build(bin: &Path) -> Result<NginxBuild, String> {
    let ran = run(bin, &["-V"])?;
    let text = format!("{}{}", ran.stderr, ran.stdout);
    let version = text
        .lines()
        .find_map(|l| l.strip_prefix("nginx version: "))
        .and_then(|v| v.split('/').nth(1))
        .map(|v| v.split_whitespace().next().unwrap_or(v).to_string())
        .ok_or_else(|| format!("{} -V printed no version: {}", bin.display(), text.trim()))?;
    let arg = |name: &str| {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(name))
            .map(|v| v.trim_matches('\'').to_string())
    };
    let signature = std::fs::read(bin).ok().and_then(|b| module_signature(&b));
    Ok(NginxBuild {
        binary: bin.to_path_buf(),
        version_num: version_num(&version).unwrap_or(0),
        version,
        prefix: arg("--prefix=").map(PathBuf::from),
        conf_path: arg("--conf-path=").map(PathBuf::from),
        user: arg("--user="),
        group: arg("--group="),
        signature,
    })
}

/// The NGINX side of the host.
#[derive(Debug, Default)]
pub struct NginxSide {
    pub conf: Option<NginxConf>,
    /// How it was read: `nginx -T (/usr/sbin/nginx)`, a file, standard input.
    pub source: String,
    /// The main config file (to find the master that runs it).
    pub conf_path: Option<PathBuf>,
    pub build: Option<NginxBuild>,
    /// Files read (name, lines) and include problems, for the summary.
    pub files: Vec<(String, u64)>,
    pub problems: Vec<String>,
}

/// One FPM installation or config.
#[derive(Debug, Default)]
pub struct FpmSide {
    pub source: String,
    pub binary: Option<PathBuf>,
    /// The main config file (php-fpm.conf) when known.
    pub config: Option<PathBuf>,
    pub pools: Vec<PoolConf>,
    pub global: BTreeMap<String, Setting>,
    pub problems: Vec<String>,
}

impl FpmSide {
    /// A `[global]` setting's value.
    pub fn global(&self, key: &str) -> Option<&str> {
        self.global.get(key).map(|s| s.value.as_str())
    }

    /// The systemd unit of this FPM when it is the distribution's (Debian
    /// `php-fpm8.2` -> `php8.2-fpm`, RHEL `php-fpm`), None for a config elsewhere.
    pub fn unit(&self) -> Option<String> {
        let bin = self
            .binary
            .as_ref()
            .and_then(|b| b.file_name())
            .and_then(|n| n.to_str())
            .unwrap_or("php-fpm");
        let distro = self
            .config
            .as_ref()
            .map_or(true, |c| c.to_string_lossy().starts_with("/etc/php"));
        distro.then(|| match bin.strip_prefix("php-fpm") {
            Some(v) if !v.is_empty() => format!("php{v}-fpm"),
            _ => "php-fpm".to_string(),
        })
    }

    /// How to start, restart or reload this FPM, as the host names it.
    pub fn command(&self, action: Action) -> String {
        self.command_for(action, None)
    }

    /// The same, naming the running master's pid where a signal does it.
    pub fn command_for(&self, action: Action, master: Option<u32>) -> String {
        if let Some(unit) = self.unit() {
            return format!("`sudo systemctl {} {unit}`", action.verb());
        }
        let conf = self
            .config
            .as_ref()
            .map(|c| c.display().to_string())
            .unwrap_or_default();
        let bin = self
            .binary
            .as_ref()
            .map_or("php-fpm".to_string(), |b| b.display().to_string());
        match action {
            Action::Start => format!("start it with its config: `sudo {bin} --fpm-config {conf}`"),
            Action::Restart => format!(
                "stop its master (SIGQUIT) and start it again: `sudo {bin} --fpm-config {conf}`"
            ),
            Action::Reload => format!(
                "`sudo kill -USR2 {}` (SIGUSR2 to its master)",
                master.map_or("<master pid>".to_string(), |p| p.to_string())
            ),
        }
    }
}

/// What to do with an FPM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Start,
    Restart,
    Reload,
}

impl Action {
    fn verb(self) -> &'static str {
        match self {
            Action::Start => "start",
            Action::Restart => "restart",
            Action::Reload => "reload",
        }
    }
}

fn flag_input(path: &Path, name: &str, kind: InputKind) -> Input {
    Input {
        path: path.to_path_buf(),
        name: Arc::from(name),
        kind,
        detected_by: DetectedBy::Flag,
        size: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
        kinds: vec![kind],
    }
}

fn stdin_lines() -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    let stdin = std::io::stdin();
    for l in stdin.lock().split(b'\n') {
        let l = l.map_err(|e| format!("reading standard input: {e}"))?;
        let s = String::from_utf8_lossy(&l);
        lines.push(s.trim_end_matches('\r').to_string());
    }
    Ok(lines)
}

fn summarize(loaded: &Loaded, files: &mut Vec<(String, u64)>, problems: &mut Vec<String>) {
    for (_, s) in &loaded.stats {
        match &s.error {
            Some(e) => problems.push(format!("{}: {e}", s.name)),
            None => files.push((s.name.to_string(), s.lines_read)),
        }
    }
    for s in &loaded.skipped {
        problems.push(format!("{}: {}", s.name, s.reason));
    }
}

/// Where the NGINX config comes from.
pub enum NginxFrom<'a> {
    File(&'a Path),
    Stdin,
    /// `nginx -T` of this binary.
    Dump(&'a Path),
}

/// Reads the NGINX config. Err: nothing could be read (the message says why).
pub fn read_nginx(from: NginxFrom, build: Option<NginxBuild>) -> Result<NginxSide, String> {
    let mut side = NginxSide {
        build,
        ..NginxSide::default()
    };
    let loaded = match from {
        NginxFrom::File(p) => {
            if !p.exists() {
                return Err(format!("{}: no such file", p.display()));
            }
            side.source = p.display().to_string();
            side.conf_path = Some(std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf()));
            conf_tree::load(&[(
                0,
                flag_input(p, &p.display().to_string(), InputKind::NginxConf),
            )])
        }
        NginxFrom::Stdin => {
            side.source = "standard input".into();
            let lines = stdin_lines()?;
            conf_tree::load_lines(
                &flag_input(Path::new("-"), "standard input", InputKind::NginxConf),
                lines,
            )
        }
        NginxFrom::Dump(bin) => {
            let ran = run(bin, &["-T"])?;
            if !ran.ok || !ran.stdout.contains("# configuration file ") {
                // `nginx -T` fails without root when it cannot open a log file: the
                // config files themselves may still be readable.
                let why = ran
                    .stderr
                    .lines()
                    .find(|l| l.contains("[emerg]") || l.contains("failed"))
                    .unwrap_or(ran.stderr.trim())
                    .to_string();
                let conf = side.build.as_ref().and_then(|b| b.conf_path.clone());
                match conf {
                    Some(c) if c.exists() => {
                        side.problems.push(format!(
                            "{} -T failed ({why}); read {} and its includes instead",
                            bin.display(),
                            c.display()
                        ));
                        side.source = c.display().to_string();
                        side.conf_path = Some(c.clone());
                        conf_tree::load(&[(
                            0,
                            flag_input(&c, &c.display().to_string(), InputKind::NginxConf),
                        )])
                    }
                    _ => return Err(format!("{} -T failed: {why}", bin.display())),
                }
            } else {
                side.source = format!("{} -T", bin.display());
                side.conf_path = side.build.as_ref().and_then(|b| b.conf_path.clone());
                let name = format!("nginx -T ({})", bin.display());
                let lines = ran.stdout.lines().map(str::to_string).collect();
                conf_tree::load_lines(
                    &flag_input(Path::new("nginx-T"), &name, InputKind::NginxConf),
                    lines,
                )
            }
        }
    };
    summarize(&loaded, &mut side.files, &mut side.problems);
    side.conf = loaded.nginx.into_iter().next();
    Ok(side)
}

/// The config a `-tt` run tested: `configuration file X test is successful`.
fn tested_config(text: &str) -> Option<PathBuf> {
    text.lines().find_map(|l| {
        let i = l.find("configuration file ")?;
        let rest = &l[i + "configuration file ".len()..];
        rest.strip_suffix(" test is successful").map(PathBuf::from)
    })
}

fn fpm_side_from(loaded: Loaded, source: String) -> FpmSide {
    let mut side = FpmSide {
        source,
        ..FpmSide::default()
    };
    let mut files = Vec::new();
    summarize(&loaded, &mut files, &mut side.problems);
    side.global = loaded.fpm_globals.into_iter().next().unwrap_or_default();
    side.pools = loaded.pools;
    side
}

/// Reads one FPM config file (or `-`: standard input).
pub fn read_fpm_file(path: &Path, procs: &Procs) -> Result<FpmSide, String> {
    if path == Path::new("-") {
        let lines = stdin_lines()?;
        let config = tested_config(&lines.join("\n"));
        let loaded = conf_tree::load_lines(
            &flag_input(Path::new("-"), "standard input", InputKind::FpmConf),
            lines,
        );
        let mut side = fpm_side_from(loaded, "standard input".into());
        side.config = config;
        side.binary = binary_for_config(side.config.as_deref(), procs);
        return Ok(side);
    }
    if !path.exists() {
        return Err(format!("{}: no such file", path.display()));
    }
    let loaded = conf_tree::load(&[(
        0,
        flag_input(path, &path.display().to_string(), InputKind::FpmConf),
    )]);
    let mut side = fpm_side_from(loaded, path.display().to_string());
    let canon = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    // A saved `php-fpm -tt` output names the config it tested.
    let text = std::fs::read_to_string(path).unwrap_or_default();
    side.config = tested_config(&text).or(Some(canon));
    side.binary = binary_for_config(side.config.as_deref(), procs);
    Ok(side)
}

/// The FPM binary that runs (or would run) a config: the running master's, else the
/// Debian one named by the path (`/etc/php/8.2/...` -> php-fpm8.2), else `php-fpm`.
fn binary_for_config(config: Option<&Path>, procs: &Procs) -> Option<PathBuf> {
    if let Some(c) = config {
        for m in procs.fpm_masters() {
            if m.fpm_master_config().map(Path::new) == Some(c) {
                if let Ok(exe) = std::fs::read_link(format!("/proc/{}/exe", m.pid)) {
                    return Some(exe);
                }
            }
        }
        let s = c.to_string_lossy();
        if let Some(v) = s
            .strip_prefix("/etc/php/")
            .and_then(|r| r.split('/').next())
        {
            if let Some(b) = find_binary(&format!("php-fpm{v}")) {
                return Some(b);
            }
        }
    }
    fpm_binaries().into_iter().next()
}

/// `php-fpm -tt` of one installed binary.
pub fn read_fpm_dump(bin: &Path) -> Result<FpmSide, String> {
    let ran = run(bin, &["-tt"])?;
    // FPM logs the dump on stderr.
    let text = format!("{}{}", ran.stderr, ran.stdout);
    if !ran.ok {
        let why = text
            .lines()
            .rev()
            .find(|l| l.contains("ERROR") || l.contains("ALERT"))
            .unwrap_or(text.trim())
            .to_string();
        return Err(format!("{} -tt failed: {why}", bin.display()));
    }
    let name = format!("{} -tt", bin.display());
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let loaded = conf_tree::load_lines(
        &flag_input(Path::new("php-fpm-tt"), &name, InputKind::FpmConf),
        lines,
    );
    let mut side = fpm_side_from(loaded, name);
    side.config = tested_config(&text);
    side.binary = Some(bin.to_path_buf());
    // The dump has the values in force but not where they are written: the same
    // config read as files gives each setting its file:line for the fixes.
    if let Some(conf) = side.config.clone().filter(|c| c.is_file()) {
        let files = conf_tree::load(&[(
            0,
            flag_input(&conf, &conf.display().to_string(), InputKind::FpmConf),
        )]);
        let names = |p: &[PoolConf]| {
            let mut n: Vec<String> = p.iter().map(|p| p.pool.name.clone()).collect();
            n.sort();
            n
        };
        if !files.pools.is_empty() && names(&files.pools) == names(&side.pools) {
            side.pools = files.pools;
            side.global = files.fpm_globals.into_iter().next().unwrap_or_default();
        }
    }
    Ok(side)
}

/// PHP's `max_execution_time` from the ini files FPM loads (`php-fpm -i`).
pub fn php_ini_max_execution_time(bin: &Path) -> Option<(u64, String)> {
    let ran = run(bin, &["-i"]).ok()?;
    let ini = ran
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("Loaded Configuration File => "))
        .unwrap_or("php.ini")
        .to_string();
    let v = ran
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("max_execution_time => "))?
        .split(" => ")
        .next()?
        .trim()
        .parse()
        .ok()?;
    Some((v, format!("{} -i ({ini})", bin.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_signatures() {
        assert_eq!(version_num("1.22.1"), Some(1_022_001));
        assert_eq!(version_num("1.28.3"), Some(1_028_003));
        assert_eq!(version_num("x"), None);
        let mut b = b"\x00garbage 12,3 8,4,8,0011111111010111001111111111111111\x00more".to_vec();
        assert_eq!(
            module_signature(&b).as_deref(),
            Some("8,4,8,0011111111010111001111111111111111")
        );
        b.truncate(20);
        assert_eq!(module_signature(&b), None);
    }

    #[test]
    fn tested_config_line() {
        let t = "[03-Dec-2026 12:25:24] NOTICE:  \n[03-Dec-2026 12:25:24] NOTICE: configuration file /etc/php/8.2/fpm/php-fpm.conf test is successful\n";
        assert_eq!(
            tested_config(t),
            Some(PathBuf::from("/etc/php/8.2/fpm/php-fpm.conf"))
        );
    }

    #[test]
    fn start_commands_name_the_unit() {
        let side = FpmSide {
            binary: Some("/usr/sbin/php-fpm8.2".into()),
            config: Some("/etc/php/8.2/fpm/php-fpm.conf".into()),
            ..FpmSide::default()
        };
        assert_eq!(
            side.command(Action::Start),
            "`sudo systemctl start php8.2-fpm`"
        );
        assert_eq!(
            side.command(Action::Reload),
            "`sudo systemctl reload php8.2-fpm`"
        );
        let side = FpmSide {
            binary: Some("/usr/sbin/php-fpm".into()),
            config: Some("/etc/php-fpm.conf".into()),
            ..FpmSide::default()
        };
        assert_eq!(
            side.command(Action::Restart),
            "`sudo systemctl restart php-fpm`"
        );
        let side = FpmSide {
            binary: Some("/usr/sbin/php-fpm8.2".into()),
            config: Some("/srv/app/fpm.conf".into()),
            ..FpmSide::default()
        };
        assert!(side
            .command(Action::Start)
            .contains("--fpm-config /srv/app/fpm.conf"));
        assert!(side.command(Action::Reload).contains("USR2"));
        assert_eq!(side.unit(), None);
    }
}
