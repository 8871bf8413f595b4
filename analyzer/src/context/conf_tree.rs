//! Reading NGINX and PHP-FPM configs as the servers read them: a main file and what it
//! includes. On Debian `nginx.conf` holds no `fastcgi_pass` (it is in
//! `sites-enabled/*`, a symlink into `sites-available/`) and `php-fpm.conf` holds no
//! pool (they come through `include=/etc/php/8.2/fpm/pool.d/*.conf`), so a config
//! read alone says little.
//!
//! - NGINX: `include` patterns are globs; a relative one is relative to the conf
//!   prefix, the directory of the main config (NGINX's `-c` file). An included file's
//!   directives land in the block of the `include`. `nginx -T` output already holds
//!   every file after a `# configuration file X:` line: its includes are resolved
//!   against those files, never the disk (the dump often comes from another host).
//! - FPM: `include=` is a glob; a relative one is relative to FPM's prefix, which the
//!   config does not say: tried are the directory above an `etc/` config directory
//!   (`PREFIX/etc/php-fpm.conf`, the layout of the official images) and the config's
//!   own directory. FPM follows includes 5 deep at most. `php-fpm -tt` output is
//!   read like a config (its lines are the settings in force).
//! - A config copied from another host keeps its absolute includes: when the main
//!   file is not where they point (`/etc/nginx/sites-enabled/*` while the copy is
//!   `./case/nginx/nginx.conf`), the same path under the copy's directory is tried
//!   first.
//!
//! Symlinks are followed; a file already open in the include chain is a loop and is
//! not read again; a file included twice is parsed twice (its directives may land in
//! two blocks) but counted once. A missing or unreadable include is listed in the
//! input summary, never fatal. A config given on the command line that another
//! given config includes is read through that include only (once, in its block).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::PoolConf;
use crate::input::reader::{text, LineReader};
use crate::input::stats::InputStats;
use crate::input::{DetectedBy, Input, Skipped};
use crate::model::InputKind;
use crate::parse::fpm_conf::{ConfLine, FpmConfParser, FpmInclude, Setting};
use crate::parse::nginx_conf::{self, Block, FileParser, Include, NginxConf};

/// Files read for one main config, at most (a runaway glob).
const MAX_FILES: usize = 2_048;
/// Bytes of config text kept for one main config, at most.
const MAX_BYTES: usize = 64 << 20;
/// FPM stops at 5 nested includes ("failed to include more than 5 files recursively").
const FPM_MAX_DEPTH: usize = 5;
/// NGINX has no limit of its own; a deeper chain is surely a loop through aliases.
const NGINX_MAX_DEPTH: usize = 64;

/// What the config inputs gave.
#[derive(Debug, Default)]
pub struct Loaded {
    pub nginx: Vec<NginxConf>,
    pub pools: Vec<PoolConf>,
    /// One row per file read, with the index of the input it belongs to (a file
    /// reached by an include is placed after its main config).
    pub stats: Vec<(usize, InputStats)>,
    /// Include patterns that matched nothing, loops, limits reached.
    pub skipped: Vec<Skipped>,
    /// The `[global]` settings of each FPM config (pid file, error_log), in input
    /// order.
    pub fpm_globals: Vec<BTreeMap<String, Setting>>,
}

/// Reads every config input (`(index in the input list, input)`), following includes.
pub fn load(inputs: &[(usize, Input)]) -> Loaded {
    let given: HashMap<PathBuf, usize> = inputs
        .iter()
        .enumerate()
        .map(|(k, (_, i))| (canonical(&i.path), k))
        .collect();
    let trees: Vec<Tree> = inputs
        .iter()
        .map(|(index, input)| Tree::read(*index, input, inputs, &given, None))
        .collect();
    // A given file that another given config includes is read there, in its block.
    let roots: Vec<PathBuf> = inputs.iter().map(|(_, i)| canonical(&i.path)).collect();
    let included_elsewhere: Vec<bool> = (0..trees.len())
        .map(|k| {
            (0..trees.len()).any(|j| {
                j != k
                    && trees[j].reached.contains(&roots[k])
                    // Two configs that include each other: the first given is the root.
                    && !(j > k && trees[k].reached.contains(&roots[j]))
            })
        })
        .collect();
    let mut out = Loaded::default();
    for (tree, dropped) in trees.into_iter().zip(included_elsewhere) {
        if dropped {
            continue;
        }
        out.nginx.extend(tree.nginx);
        out.pools.extend(tree.pools);
        out.stats
            .extend(tree.rows.into_iter().map(|r| (r.index, r.stats)));
        out.skipped.extend(tree.skipped);
        out.fpm_globals.extend(tree.fpm_global);
    }
    out
}

/// Reads one config whose text is already in memory (`nginx -T` or `php-fpm -tt`
/// output captured from a command or standard input): a dump's includes are
/// resolved among its own files; a file's includes are read from the disk.
pub fn load_lines(input: &Input, lines: Vec<String>) -> Loaded {
    let inputs = [(0, input.clone())];
    let tree = Tree::read(0, input, &inputs, &HashMap::new(), Some(lines));
    Loaded {
        nginx: tree.nginx,
        pools: tree.pools,
        stats: tree.rows.into_iter().map(|r| (r.index, r.stats)).collect(),
        skipped: tree.skipped,
        fpm_globals: tree.fpm_global.into_iter().collect(),
    }
}

/// `path` with symlinks resolved (itself when it cannot be).
fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The lines of a file (`.gz` too), and the overlong count.
fn read_lines(path: &Path) -> io::Result<(Vec<String>, u64)> {
    let mut reader = LineReader::open(path)?;
    let mut buf = Vec::with_capacity(4096);
    let mut lines = Vec::new();
    while reader.next_line(&mut buf)? {
        lines.push(text(&buf).into_owned());
    }
    Ok((lines, reader.overlong_lines))
}

fn has_glob(p: &str) -> bool {
    p.contains(['*', '?', '['])
}

/// Glob like glob(3): `*` does not cross `/` nor match a leading dot; sorted.
fn glob_files(pattern: &str) -> Vec<PathBuf> {
    let opts = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: true,
    };
    match glob::glob_with(pattern, opts) {
        Ok(paths) => paths
            .filter_map(Result::ok)
            .filter(|p| !p.is_dir())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The same absolute path under `dir`, for a config copied from another host:
/// `/etc/nginx/sites-enabled/*` with the main file in `./case/nginx/` ->
/// `./case/nginx/sites-enabled/*` (the last component of `dir` is looked for in the
/// pattern). None when it is the same path or `dir`'s name is not in it.
fn rebased(pattern: &str, dir: &Path) -> Option<String> {
    let name = dir.file_name()?.to_str()?;
    let comps: Vec<&str> = pattern.split('/').collect();
    let at = comps.iter().rposition(|c| *c == name)?;
    if at + 1 >= comps.len() {
        return None;
    }
    let original = comps[..=at].join("/");
    if canonical(Path::new(&original)) == canonical(dir) {
        return None;
    }
    Some(format!("{}/{}", dir.display(), comps[at + 1..].join("/")))
}

/// A file as read: the name its directives carry (the first it was read under), its
/// lines, and its row.
struct FileRead {
    name: Arc<str>,
    lines: Arc<Vec<String>>,
    row: usize,
}

/// One file read for a tree (its row in the input summary).
struct InputRow {
    index: usize,
    stats: InputStats,
}

/// One main config and everything it includes.
struct Tree {
    nginx: Vec<NginxConf>,
    pools: Vec<PoolConf>,
    rows: Vec<InputRow>,
    skipped: Vec<Skipped>,
    /// Files reached through includes (canonical), not the main file itself.
    reached: HashSet<PathBuf>,
    /// An FPM config's `[global]` settings.
    fpm_global: Option<BTreeMap<String, Setting>>,
}

/// State while reading one tree.
struct Reader<'a> {
    root_index: usize,
    kind: InputKind,
    inputs: &'a [(usize, Input)],
    given: &'a HashMap<PathBuf, usize>,
    /// Directory of the main config: NGINX's conf prefix, FPM's config directory.
    prefix: PathBuf,
    /// Canonical path -> the file as read.
    files: HashMap<PathBuf, FileRead>,
    /// Files open in the include chain (canonical).
    chain: Vec<PathBuf>,
    rows: Vec<InputRow>,
    skipped: Vec<Skipped>,
    reached: HashSet<PathBuf>,
    bytes: usize,
}

impl Tree {
    fn read(
        index: usize,
        input: &Input,
        inputs: &[(usize, Input)],
        given: &HashMap<PathBuf, usize>,
        preloaded: Option<Vec<String>>,
    ) -> Tree {
        let prefix = input
            .path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let mut r = Reader {
            root_index: index,
            kind: input.kind,
            inputs,
            given,
            prefix,
            files: HashMap::new(),
            chain: Vec::new(),
            rows: Vec::new(),
            skipped: Vec::new(),
            reached: HashSet::new(),
            bytes: 0,
        };
        let mut tree = Tree {
            nginx: Vec::new(),
            pools: Vec::new(),
            rows: Vec::new(),
            skipped: Vec::new(),
            reached: HashSet::new(),
            fpm_global: None,
        };
        let root = canonical(&input.path);
        if let Some(lines) = preloaded {
            let mut stats = InputStats::new(input);
            stats.lines_read = lines.len() as u64;
            r.files.insert(
                root.clone(),
                FileRead {
                    name: Arc::clone(&input.name),
                    lines: Arc::new(lines),
                    row: 0,
                },
            );
            r.rows.push(InputRow { index, stats });
        }
        let lines = match r.open(&root, &input.path, Some(input), "") {
            Some(lines) => lines,
            None => {
                tree.rows = r.rows;
                return tree;
            }
        };
        r.chain.push(root.clone());
        match input.kind {
            InputKind::NginxConf => tree.nginx.push(r.nginx_tree(input, &lines)),
            InputKind::FpmConf => r.fpm_tree(input, &lines, &mut tree),
            _ => {}
        }
        tree.rows = r.rows;
        tree.skipped = r.skipped;
        tree.reached = r.reached;
        tree
    }
}

impl Reader<'_> {
    /// Reads a file the first time it is met (adding its row); later, its lines again.
    /// `from` says where it was included (for the summary), empty for the main file.
    fn open(
        &mut self,
        canon: &Path,
        path: &Path,
        input: Option<&Input>,
        from: &str,
    ) -> Option<Arc<Vec<String>>> {
        if let Some(f) = self.files.get(canon) {
            return Some(Arc::clone(&f.lines));
        }
        // A file also given on the command line keeps its own name and row.
        let given = self.given.get(canon).map(|&k| &self.inputs[k]);
        let (row_index, row_input) = match (input, given) {
            (Some(i), _) => (self.root_index, i.clone()),
            (None, Some((gi, gin))) => (*gi, gin.clone()),
            (None, None) => (
                self.root_index,
                Input {
                    path: path.to_path_buf(),
                    name: Arc::from(path.display().to_string()),
                    kind: self.kind,
                    detected_by: DetectedBy::Include,
                    size: std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
                    kinds: Vec::new(),
                },
            ),
        };
        let mut stats = InputStats::new(&row_input);
        if self.files.len() >= MAX_FILES || self.bytes >= MAX_BYTES {
            self.skipped.push(Skipped {
                name: row_input.name.to_string(),
                reason: format!(
                    "not read{from}: more than {MAX_FILES} config files or {} MiB",
                    MAX_BYTES >> 20
                ),
            });
            return None;
        }
        match read_lines(path) {
            Ok((lines, overlong)) => {
                stats.lines_read = lines.len() as u64;
                stats.overlong_lines = overlong;
                self.bytes += lines.iter().map(String::len).sum::<usize>();
                let lines = Arc::new(lines);
                self.files.insert(
                    canon.to_path_buf(),
                    FileRead {
                        name: Arc::clone(&row_input.name),
                        lines: Arc::clone(&lines),
                        row: self.rows.len(),
                    },
                );
                self.rows.push(InputRow {
                    index: row_index,
                    stats,
                });
                Some(lines)
            }
            Err(e) => {
                stats.error = Some(format!("{e}{from}"));
                self.rows.push(InputRow {
                    index: row_index,
                    stats,
                });
                None
            }
        }
    }

    /// The name a file's directives carry (the first name it was read under).
    fn name_of(&self, canon: &Path) -> Option<Arc<str>> {
        self.files.get(canon).map(|f| Arc::clone(&f.name))
    }

    fn row_of(&mut self, canon: &Path) -> Option<&mut InputStats> {
        let i = self.files.get(canon)?.row;
        self.rows.get_mut(i).map(|r| &mut r.stats)
    }

    /// Counts one line of a file in its row of the input summary.
    fn tally(&mut self, canon: &Path, n: u64, line: &str, understood: bool) {
        if let Some(s) = self.row_of(canon) {
            if understood {
                s.parsed();
            } else {
                s.not_understood(n, line);
            }
        }
    }

    /// Follows one include (NGINX's or FPM's, the same walk): reads each file the
    /// pattern names at the first of `candidates` that names any, through
    /// `read_file`, skipping loops and chains deeper than `max_depth`.
    fn follow_include(
        &mut self,
        pattern: &str,
        candidates: Vec<String>,
        from: &str,
        max_depth: usize,
        mut read_file: impl FnMut(&mut Self, Arc<str>, &[String]),
    ) {
        let paths = match self.include_paths(pattern, candidates) {
            Ok(p) => p,
            Err(tried) => {
                self.missing(pattern, &tried, from);
                return;
            }
        };
        for path in paths {
            let canon = canonical(&path);
            let shown = path.display().to_string();
            let Some(lines) = self.open(&canon, &path, None, from) else {
                continue;
            };
            if !self.enter(&canon, &shown, from, max_depth) {
                continue;
            }
            let name = self
                .name_of(&canon)
                .unwrap_or_else(|| Arc::from(shown.as_str()));
            read_file(self, name, &lines);
            self.chain.pop();
        }
    }

    /// Enters an included file: false for a loop or too deep a chain.
    fn enter(&mut self, canon: &Path, shown: &str, from: &str, max_depth: usize) -> bool {
        if self.chain.iter().any(|c| c == canon) {
            self.skipped.push(Skipped {
                name: shown.to_string(),
                reason: format!("include loop{from}: the file is already being read"),
            });
            return false;
        }
        if self.chain.len() > max_depth {
            self.skipped.push(Skipped {
                name: shown.to_string(),
                reason: format!("not read{from}: more than {max_depth} nested includes"),
            });
            return false;
        }
        self.reached.insert(canon.to_path_buf());
        self.chain.push(canon.to_path_buf());
        true
    }

    /// The files an include pattern names, trying each candidate path in turn.
    /// Err: the candidates tried, when none names anything.
    fn include_paths(
        &self,
        pattern: &str,
        candidates: Vec<String>,
    ) -> Result<Vec<PathBuf>, Vec<String>> {
        for c in &candidates {
            let found = if has_glob(pattern) {
                glob_files(c)
            } else if Path::new(c).exists() {
                vec![PathBuf::from(c)]
            } else {
                Vec::new()
            };
            if !found.is_empty() {
                return Ok(found);
            }
        }
        Err(candidates)
    }

    /// Where an absolute include may be: under the copy first, then as written.
    fn absolute_candidates(&self, pattern: &str) -> Vec<String> {
        let mut c = Vec::new();
        if let Some(r) = rebased(pattern, &self.prefix) {
            c.push(r);
        }
        c.push(pattern.to_string());
        c
    }

    /// Reports an include that names nothing.
    fn missing(&mut self, pattern: &str, tried: &[String], from: &str) {
        if has_glob(pattern) {
            // NGINX and FPM accept a pattern that matches nothing; say so anyway.
            self.skipped.push(Skipped {
                name: pattern.to_string(),
                reason: format!("matches no file{from} (looked for {})", tried.join(", ")),
            });
        } else {
            let path = tried.last().cloned().unwrap_or_else(|| pattern.to_string());
            let input = Input {
                path: PathBuf::from(&path),
                name: Arc::from(path.as_str()),
                kind: self.kind,
                detected_by: DetectedBy::Include,
                size: 0,
                kinds: Vec::new(),
            };
            let mut stats = InputStats::new(&input);
            stats.error = Some(format!(
                "no such file{from} (looked for {})",
                tried.join(", ")
            ));
            self.rows.push(InputRow {
                index: self.root_index,
                stats,
            });
        }
    }

    // ----- NGINX -----

    /// A main NGINX config (a file or `nginx -T` output) with its includes.
    fn nginx_tree(&mut self, input: &Input, lines: &[String]) -> NginxConf {
        let mut conf = NginxConf::default();
        if lines.iter().any(|l| nginx_conf::dump_marker(l).is_some()) {
            self.nginx_dump(&mut conf, lines);
        } else {
            self.nginx_file(&mut conf, Arc::clone(&input.name), lines, Vec::new());
        }
        conf.resolve();
        self.count_nginx_used(&conf);
        conf
    }

    fn nginx_file(
        &mut self,
        conf: &mut NginxConf,
        name: Arc<str>,
        lines: &[String],
        stack: Vec<Block>,
    ) {
        let canon = self.chain.last().cloned().unwrap_or_default();
        let count = self
            .row_of(&canon)
            .is_some_and(|s| s.lines_parsed + s.lines_not_understood == 0);
        let mut p = FileParser::new(name, stack, 0);
        for (i, line) in lines.iter().enumerate() {
            let n = i as u64 + 1;
            let ok = p.feed(conf, line, n);
            if count {
                self.tally(&canon, n, line, ok);
            }
            for inc in p.take_includes() {
                self.nginx_include(conf, inc);
            }
        }
    }

    /// `nginx -T` output: the files after each marker, includes resolved among them.
    fn nginx_dump(&mut self, conf: &mut NginxConf, lines: &[String]) {
        let canon = self.chain.last().cloned().unwrap_or_default();
        let mut files: Vec<DumpedFile> = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let n = i as u64 + 1;
            if let Some(name) = nginx_conf::dump_marker(line) {
                files.push(DumpedFile {
                    name: Arc::from(name),
                    marker: n,
                    lines: Vec::new(),
                });
            } else if let Some(f) = files.last_mut() {
                f.lines.push(i);
            } else if let Some(s) = self.row_of(&canon) {
                // Before the first marker only `nginx -t`'s result lines belong.
                if nginx_conf::is_test_result(line) || line.trim().is_empty() {
                    s.parsed();
                } else {
                    s.not_understood(n, line);
                }
            }
        }
        if let Some(s) = self.row_of(&canon) {
            s.lines_parsed += files.len() as u64;
        }
        let Some(main) = files.first() else { return };
        // NGINX's conf prefix: the main file's directory.
        let prefix = Path::new(&*main.name)
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let dump = Dump {
            files: &files,
            lines,
            prefix,
        };
        let mut read = vec![false; files.len()];
        self.dump_file(conf, &dump, 0, Vec::new(), &mut read, &mut Vec::new());
        // Files no include reached (an include inside a block not understood).
        for k in 0..files.len() {
            if !read[k] {
                self.dump_file(conf, &dump, k, Vec::new(), &mut read, &mut Vec::new());
            }
        }
    }

    fn dump_file(
        &mut self,
        conf: &mut NginxConf,
        dump: &Dump,
        k: usize,
        stack: Vec<Block>,
        read: &mut [bool],
        chain: &mut Vec<usize>,
    ) {
        let canon = self.chain.last().cloned().unwrap_or_default();
        let count = !read[k];
        read[k] = true;
        chain.push(k);
        let f = &dump.files[k];
        let mut p = FileParser::new(Arc::clone(&f.name), stack, f.marker);
        for &i in &f.lines {
            let n = i as u64 + 1;
            let line = &dump.lines[i];
            let ok = p.feed(conf, line, n);
            if count {
                self.tally(&canon, n, line, ok);
            }
            for inc in p.take_includes() {
                let from = format!(" (included at {})", inc.directive.place());
                let full = if inc.pattern.starts_with('/') {
                    inc.pattern.clone()
                } else {
                    format!("{}/{}", dump.prefix, inc.pattern)
                };
                let matched = dump.matching(&full);
                if matched.is_empty() {
                    self.skipped.push(Skipped {
                        name: full.clone(),
                        reason: format!("matches no file of the nginx -T output{from}"),
                    });
                }
                for m in matched {
                    if chain.contains(&m) || chain.len() > NGINX_MAX_DEPTH {
                        self.skipped.push(Skipped {
                            name: dump.files[m].name.to_string(),
                            reason: format!("include loop{from}: the file is already being read"),
                        });
                        continue;
                    }
                    self.dump_file(conf, dump, m, inc.stack.clone(), read, chain);
                }
            }
        }
        chain.pop();
    }

    fn nginx_include(&mut self, conf: &mut NginxConf, inc: Include) {
        let from = format!(" (included at {})", inc.directive.place());
        let candidates = if inc.pattern.starts_with('/') {
            self.absolute_candidates(&inc.pattern)
        } else {
            vec![format!("{}/{}", self.prefix.display(), inc.pattern)]
        };
        self.follow_include(
            &inc.pattern,
            candidates,
            &from,
            NGINX_MAX_DEPTH,
            |reader, name, lines| reader.nginx_file(conf, name, lines, inc.stack.clone()),
        );
    }

    fn count_nginx_used(&mut self, conf: &NginxConf) {
        let mut used: HashMap<&str, HashSet<u64>> = HashMap::new();
        let all = conf
            .passes
            .iter()
            .chain(conf.tuning.iter())
            .chain(conf.sets.iter())
            .chain(conf.upstreams.values().flatten())
            .chain(conf.maps.values().flatten())
            .chain(conf.user.iter());
        for d in all {
            used.entry(&d.file).or_default().insert(d.line);
        }
        self.add_used(&used);
    }

    fn add_used(&mut self, used: &HashMap<&str, HashSet<u64>>) {
        // A dump is one input: its files' directives count for its one row.
        let names: Vec<(Arc<str>, usize)> = self
            .files
            .values()
            .map(|f| (Arc::clone(&f.name), f.row))
            .collect();
        let single = names.len() == 1;
        for (name, row) in names {
            let n = if single {
                used.values().map(|s| s.len() as u64).sum()
            } else {
                used.get(&*name).map_or(0, |s| s.len() as u64)
            };
            if let Some(r) = self.rows.get_mut(row) {
                r.stats.lines_used += n;
            }
        }
    }

    // ----- PHP-FPM -----

    /// A main FPM config with its includes: its pools and its `[global]` settings
    /// go into `tree`.
    fn fpm_tree(&mut self, input: &Input, lines: &[String], tree: &mut Tree) {
        let mut parser = FpmConfParser::new(Arc::clone(&input.name));
        self.fpm_file(&mut parser, Arc::clone(&input.name), lines);
        tree.fpm_global = Some(std::mem::take(&mut parser.global));
        let pools = parser.finish();
        self.count_fpm_used(&pools);
        tree.pools = pools
            .into_iter()
            .map(|pool| PoolConf {
                file: pool
                    .setting("listen")
                    .map_or_else(|| Arc::clone(&input.name), |s| Arc::clone(&s.file)),
                pool,
            })
            .collect();
    }

    fn fpm_file(&mut self, parser: &mut FpmConfParser, name: Arc<str>, lines: &[String]) {
        let canon = self.chain.last().cloned().unwrap_or_default();
        let count = self
            .row_of(&canon)
            .is_some_and(|s| s.lines_parsed + s.lines_not_understood == 0);
        parser.set_file(Arc::clone(&name));
        for (i, line) in lines.iter().enumerate() {
            let n = i as u64 + 1;
            let r = parser.feed(line, n);
            if count {
                self.tally(&canon, n, line, r == ConfLine::Understood);
            }
            if let Some(inc) = parser.take_include() {
                self.fpm_include(parser, inc);
                parser.set_file(Arc::clone(&name));
            }
        }
    }

    fn fpm_include(&mut self, parser: &mut FpmConfParser, inc: FpmInclude) {
        let from = format!(" (included at {}:{})", inc.file, inc.line);
        let candidates = if inc.pattern.starts_with('/') {
            self.absolute_candidates(&inc.pattern)
        } else {
            // FPM's prefix: above `PREFIX/etc/`, else the config's own directory.
            let mut c = Vec::new();
            if self.prefix.file_name().is_some_and(|n| n == "etc") {
                if let Some(up) = self.prefix.parent() {
                    c.push(format!("{}/{}", up.display(), inc.pattern));
                }
            }
            c.push(format!("{}/{}", self.prefix.display(), inc.pattern));
            c
        };
        self.follow_include(
            &inc.pattern,
            candidates,
            &from,
            FPM_MAX_DEPTH,
            |reader, name, lines| reader.fpm_file(parser, name, lines),
        );
    }

    fn count_fpm_used(&mut self, pools: &[crate::parse::fpm_conf::Pool]) {
        let mut used: HashMap<&str, HashSet<u64>> = HashMap::new();
        for s in pools.iter().flat_map(|p| p.settings.values()) {
            used.entry(&s.file).or_default().insert(s.line);
        }
        self.add_used(&used);
    }
}

/// One file inside `nginx -T` output.
struct DumpedFile {
    name: Arc<str>,
    /// Line number of its `# configuration file` marker (its line 1 is the next).
    marker: u64,
    /// Indexes of its lines in the output.
    lines: Vec<usize>,
}

struct Dump<'a> {
    files: &'a [DumpedFile],
    lines: &'a [String],
    prefix: String,
}

impl Dump<'_> {
    /// The dumped files an include pattern names, in glob order.
    fn matching(&self, pattern: &str) -> Vec<usize> {
        let opts = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: true,
        };
        let mut found: Vec<usize> = match glob::Pattern::new(pattern) {
            Ok(p) if has_glob(pattern) => (0..self.files.len())
                .filter(|&k| p.matches_with(&self.files[k].name, opts))
                .collect(),
            _ => (0..self.files.len())
                .filter(|&k| *self.files[k].name == *pattern)
                .collect(),
        };
        found.sort_by(|a, b| self.files[*a].name.cmp(&self.files[*b].name));
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A fresh directory for one test.
    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("gatelog-conf-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn write(path: &Path, text: &str) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn input(path: &Path, kind: InputKind) -> Input {
        Input {
            path: path.to_path_buf(),
            name: Arc::from(path.display().to_string()),
            kind,
            detected_by: DetectedBy::Content,
            size: 0,
            kinds: Vec::new(),
        }
    }

    /// Debian's layout: nginx.conf -> sites-enabled/* (a symlink into sites-available)
    /// -> snippets/fastcgi-php.conf (relative, against the conf prefix) -> fastcgi.conf;
    /// php-fpm.conf -> pool.d/*.conf.
    fn debian_tree(root: &Path) -> (PathBuf, PathBuf) {
        let n = root.join("etc/nginx");
        let r = n.display();
        write(
            &n.join("nginx.conf"),
            &format!("user www-data;\nworker_processes auto;\nevents {{\n\tworker_connections 768;\n}}\nhttp {{\n\tinclude {r}/mime.types;\n\tinclude {r}/conf.d/*.conf;\n\tinclude {r}/sites-enabled/*;\n}}\n"),
        );
        write(&n.join("mime.types"), "types {\n    text/html html;\n}\n");
        write(
            &n.join("snippets/fastcgi-php.conf"),
            "fastcgi_split_path_info ^(.+?\\.php)(/.*)$;\ntry_files $fastcgi_script_name =404;\nfastcgi_index index.php;\ninclude fastcgi.conf;\n",
        );
        write(
            &n.join("fastcgi.conf"),
            "fastcgi_param  SCRIPT_FILENAME    $document_root$fastcgi_script_name;\n",
        );
        write(
            &n.join("sites-available/default"),
            "server {\n\tlisten 80 default_server;\n\troot /var/www/html;\n\n\tlocation ~ \\.php$ {\n\t\tinclude snippets/fastcgi-php.conf;\n\n\t\t# With php-fpm (or other unix sockets):\n\t\tfastcgi_pass unix:/run/php/php8.2-fpm.sock;\n\t}\n}\n",
        );
        std::fs::create_dir_all(n.join("sites-enabled")).unwrap();
        symlink(
            n.join("sites-available/default"),
            n.join("sites-enabled/default"),
        )
        .unwrap();
        let f = root.join("etc/php/8.2/fpm");
        write(
            &f.join("php-fpm.conf"),
            &format!("[global]\npid = /run/php/php8.2-fpm.pid\nerror_log = /var/log/php8.2-fpm.log\ninclude={}/pool.d/*.conf\n", f.display()),
        );
        write(
            &f.join("pool.d/www.conf"),
            "; Start a new pool named 'www'.\n[www]\nuser = www-data\ngroup = www-data\nlisten = /run/php/php8.2-fpm.sock\nlisten.owner = www-data\nlisten.group = www-data\npm = dynamic\npm.max_children = 5\n",
        );
        (n.join("nginx.conf"), f.join("php-fpm.conf"))
    }

    #[test]
    fn debian_layout_through_includes() {
        let root = temp_dir("debian");
        let (nginx, fpm) = debian_tree(&root);
        let loaded = load(&[
            (0, input(&nginx, InputKind::NginxConf)),
            (1, input(&fpm, InputKind::FpmConf)),
        ]);
        let conf = &loaded.nginx[0];
        assert_eq!(conf.targets.len(), 1);
        let t = &conf.targets[0];
        assert_eq!(t.peer.as_str(), "unix:/run/php/php8.2-fpm.sock");
        // The included file's own name and line, in the block that included it.
        let site = root.join("etc/nginx/sites-enabled/default");
        assert_eq!(&*t.pass.file, site.display().to_string());
        assert_eq!(t.pass.line, 9);
        assert_eq!(t.pass.context, "http > server > location ~ \\.php$");
        assert_eq!(conf.user.as_ref().map(|d| d.arg()), Some("www-data"));
        let pools = &loaded.pools;
        assert_eq!(pools.len(), 1);
        let listen = pools[0].pool.setting("listen").unwrap();
        assert_eq!(listen.value, "/run/php/php8.2-fpm.sock");
        assert_eq!(
            &*listen.file,
            root.join("etc/php/8.2/fpm/pool.d/www.conf")
                .display()
                .to_string()
        );
        assert_eq!(listen.line, 5);
        // One row per file read, included ones after their main config.
        let rows: Vec<(usize, String, DetectedBy, u64)> = loaded
            .stats
            .iter()
            .map(|(i, s)| {
                (
                    *i,
                    s.name.rsplit("/etc/").next().unwrap().to_string(),
                    s.detected_by,
                    s.lines_read,
                )
            })
            .collect();
        assert_eq!(
            rows,
            [
                (0, "nginx/nginx.conf".to_string(), DetectedBy::Content, 10),
                (0, "nginx/mime.types".to_string(), DetectedBy::Include, 3),
                (
                    0,
                    "nginx/sites-enabled/default".to_string(),
                    DetectedBy::Include,
                    11
                ),
                (
                    0,
                    "nginx/snippets/fastcgi-php.conf".to_string(),
                    DetectedBy::Include,
                    4
                ),
                (0, "nginx/fastcgi.conf".to_string(), DetectedBy::Include, 1),
                (
                    1,
                    "php/8.2/fpm/php-fpm.conf".to_string(),
                    DetectedBy::Content,
                    4
                ),
                (
                    1,
                    "php/8.2/fpm/pool.d/www.conf".to_string(),
                    DetectedBy::Include,
                    9
                ),
            ]
        );
        // conf.d/ is empty: NGINX accepts that, the summary says it.
        assert_eq!(loaded.skipped.len(), 1, "{:?}", loaded.skipped);
        assert!(loaded.skipped[0].name.ends_with("conf.d/*.conf"));
        assert!(
            loaded.skipped[0].reason.contains("matches no file"),
            "{}",
            loaded.skipped[0].reason
        );
        let used = |name: &str| {
            loaded
                .stats
                .iter()
                .find(|(_, s)| s.name.ends_with(name))
                .unwrap()
                .1
                .lines_used
        };
        assert_eq!(used("sites-enabled/default"), 1);
        assert_eq!(used("pool.d/www.conf"), 7);
    }

    #[test]
    fn a_given_file_that_is_also_included_is_read_once() {
        // README usage: the pool directory and the main config both given.
        let root = temp_dir("given-twice");
        let (_, fpm) = debian_tree(&root);
        let www = root.join("etc/php/8.2/fpm/pool.d/www.conf");
        let loaded = load(&[
            (0, input(&www, InputKind::FpmConf)),
            (1, input(&fpm, InputKind::FpmConf)),
        ]);
        assert_eq!(loaded.pools.len(), 1);
        let rows: Vec<(usize, DetectedBy)> = loaded
            .stats
            .iter()
            .map(|(i, s)| (*i, s.detected_by))
            .collect();
        // www.conf keeps its own row (index 0, by content), read through the include.
        assert_eq!(rows, [(1, DetectedBy::Content), (0, DetectedBy::Content)]);
    }

    #[test]
    fn loops_missing_files_and_unbalanced_braces() {
        let root = temp_dir("loops");
        let a = root.join("nginx.conf");
        write(&a, "http {\n    include loop.conf;\n    include missing.conf;\n    include nothing/*.conf;\n}\n");
        write(
            &root.join("loop.conf"),
            "include nginx.conf;\nfastcgi_pass 127.0.0.1:9000;\n}\n",
        );
        let loaded = load(&[(0, input(&a, InputKind::NginxConf))]);
        assert_eq!(loaded.nginx[0].targets.len(), 1);
        let reasons: Vec<&str> = loaded.skipped.iter().map(|s| s.reason.as_str()).collect();
        assert!(
            reasons.iter().any(|r| r.starts_with("include loop")),
            "{reasons:?}"
        );
        assert!(
            reasons.iter().any(|r| r.starts_with("matches no file")),
            "{reasons:?}"
        );
        let missing = loaded
            .stats
            .iter()
            .find(|(_, s)| s.name.ends_with("missing.conf"))
            .unwrap();
        assert!(missing
            .1
            .error
            .as_deref()
            .unwrap()
            .starts_with("no such file (included at "));
        // A `}` closing the includer's block is not NGINX syntax.
        let lp = loaded
            .stats
            .iter()
            .find(|(_, s)| s.name.ends_with("loop.conf"))
            .unwrap();
        assert_eq!(lp.1.lines_not_understood, 1);
    }

    #[test]
    fn a_copied_tree_reads_its_own_files_first() {
        // /etc/nginx copied to ./case/nginx: its absolute includes point at /etc/nginx.
        let root = temp_dir("copy");
        let n = root.join("case/nginx");
        write(
            &n.join("nginx.conf"),
            "http {\n    include /etc/nginx/sites-enabled/*;\n}\n",
        );
        write(
            &n.join("sites-enabled/app"),
            "server { location / { fastcgi_pass 127.0.0.1:9001; } }\n",
        );
        let loaded = load(&[(0, input(&n.join("nginx.conf"), InputKind::NginxConf))]);
        let t = &loaded.nginx[0].targets;
        assert_eq!(t.len(), 1);
        assert_eq!(
            &*t[0].pass.file,
            n.join("sites-enabled/app").display().to_string()
        );
        assert_eq!(
            rebased("/etc/nginx/conf.d/*.conf", Path::new("/etc/nginx")),
            None
        );
    }

    #[test]
    fn text_in_memory_nginx_dump_and_fpm_globals() {
        // `nginx -T` captured from the command (gatelog doctor): includes resolve
        // among the dumped files, never the disk.
        let dump = "nginx: the configuration file /etc/nginx/nginx.conf syntax is ok\nnginx: configuration file /etc/nginx/nginx.conf test is successful\n# configuration file /etc/nginx/nginx.conf:\nuser www-data;\nhttp {\n\tinclude /etc/nginx/sites-enabled/*;\n}\n\n# configuration file /etc/nginx/sites-enabled/default:\nserver {\n\tlocation ~ \\.php$ {\n\t\tfastcgi_pass unix:/run/php/php8.2-fpm.sock;\n\t}\n}\n";
        let lines: Vec<String> = dump.lines().map(str::to_string).collect();
        let loaded = load_lines(&input(Path::new("nginx-T"), InputKind::NginxConf), lines);
        let t = &loaded.nginx[0].targets;
        assert_eq!(t.len(), 1);
        assert_eq!(&*t[0].pass.file, "/etc/nginx/sites-enabled/default");
        assert_eq!(t[0].pass.line, 3);
        assert!(loaded.skipped.is_empty(), "{:?}", loaded.skipped);
        // FPM's `-tt` dump: the [global] settings come back too.
        let tt = "[03-Dec-2026 12:25:24] NOTICE: [global]\n[03-Dec-2026 12:25:24] NOTICE: \tpid = /run/php/php8.2-fpm.pid\n[03-Dec-2026 12:25:24] NOTICE: \terror_log = /var/log/php8.2-fpm.log\n[03-Dec-2026 12:25:24] NOTICE:  \n[03-Dec-2026 12:25:24] NOTICE: [www]\n[03-Dec-2026 12:25:24] NOTICE: \tlisten = /run/php/php8.2-fpm.sock\n[03-Dec-2026 12:25:24] NOTICE: \tpm.status_path = /fpm-status\n";
        let lines: Vec<String> = tt.lines().map(str::to_string).collect();
        let loaded = load_lines(&input(Path::new("php-fpm-tt"), InputKind::FpmConf), lines);
        assert_eq!(loaded.pools.len(), 1);
        assert_eq!(
            loaded.pools[0].pool.get("pm.status_path"),
            Some("/fpm-status")
        );
        assert_eq!(
            loaded.fpm_globals[0]
                .get("error_log")
                .map(|s| s.value.as_str()),
            Some("/var/log/php8.2-fpm.log")
        );
    }

    #[test]
    fn fpm_relative_include_in_the_official_image_layout() {
        // php:fpm images: /usr/local/etc/php-fpm.conf has include=etc/php-fpm.d/*.conf
        // relative to the prefix /usr/local.
        let root = temp_dir("docker");
        let etc = root.join("usr/local/etc");
        write(
            &etc.join("php-fpm.conf"),
            "[global]\ninclude=etc/php-fpm.d/*.conf\n",
        );
        write(
            &etc.join("php-fpm.d/www.conf"),
            "[www]\nlisten = 127.0.0.1:9000\n",
        );
        write(
            &etc.join("php-fpm.d/zz-docker.conf"),
            "[global]\ndaemonize = no\n\n[www]\nlisten = 9000\n",
        );
        let loaded = load(&[(0, input(&etc.join("php-fpm.conf"), InputKind::FpmConf))]);
        assert_eq!(loaded.pools.len(), 1);
        // zz-docker.conf is read last and wins, as in FPM.
        let l = loaded.pools[0].pool.setting("listen").unwrap();
        assert_eq!(l.value, "9000");
        assert!(l.file.ends_with("php-fpm.d/zz-docker.conf"));
        assert!(loaded.skipped.is_empty(), "{:?}", loaded.skipped);
    }
}
