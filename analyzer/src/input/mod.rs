//! Finding, opening and recognising inputs.

pub mod detect;
pub mod framing;
pub mod reader;
pub mod route;
pub mod stats;
pub mod stdin;

use std::collections::HashSet;
use std::fmt;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::model::InputKind;
use route::{side_of, Side};

/// How an input's kind was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DetectedBy {
    Flag,
    Content,
    /// An empty file, recognised by its name. An empty kernel log still says
    /// something: no OOM kill and no crash happened.
    Name,
    /// A config file reached through another config's `include`.
    Include,
}

/// One file to read.
#[derive(Debug, Clone)]
pub struct Input {
    pub path: PathBuf,
    /// The name used in evidence and messages.
    pub name: Arc<str>,
    /// The file's role: what most of its first lines are, or what a flag said. It
    /// decides which reader is the file's primary and settles lines the content
    /// leaves open; every line is still read by its content.
    pub kind: InputKind,
    pub detected_by: DetectedBy,
    pub size: u64,
    /// The log kinds seen in the lines looked at when recognising the file (and the
    /// flag's): a file with lines of both sides is read by both readers.
    pub kinds: Vec<InputKind>,
}

impl Input {
    /// Whether the failure-side reader (records, NGINX error and access lines)
    /// reads this file.
    pub fn reads_failures(&self) -> bool {
        self.has_side(Side::Failure)
    }

    /// Whether the context-side reader (FPM, kernel, journal lines) reads it.
    pub fn reads_context(&self) -> bool {
        self.has_side(Side::Context)
    }

    /// The side of the file's role (Neutral for configs).
    pub fn primary(&self) -> Side {
        side_of(self.kind)
    }

    fn has_side(&self, side: Side) -> bool {
        // A config is read whole, as a config, by neither log reader.
        if side_of(self.kind) == Side::Neutral {
            return false;
        }
        side_of(self.kind) == side || self.kinds.iter().any(|k| side_of(*k) == side)
    }

    pub fn has_kind(&self, kind: InputKind) -> bool {
        self.kind == kind || self.kinds.contains(&kind)
    }
}

/// A path the user gave, with a kind when given by a flag.
#[derive(Debug, Clone)]
pub struct Requested {
    pub path: PathBuf,
    pub kind: Option<InputKind>,
}

/// A file that was given (or found in a directory) but not used.
#[derive(Debug, Clone)]
pub struct Skipped {
    pub name: String,
    pub reason: String,
}

/// An input that could not be read: exit status 1.
#[derive(Debug)]
pub struct InputError {
    pub name: String,
    pub error: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot read {}: {}", self.name, self.error)
    }
}

/// Everything to read, in a stable order.
#[derive(Debug, Default)]
pub struct Resolved {
    pub inputs: Vec<Input>,
    pub skipped: Vec<Skipped>,
    /// Entries that could not be read (permissions, I/O errors, non-regular files
    /// given by name): listed as skipped too, and the run's exit status says so.
    pub unreadable: Vec<InputError>,
    /// Latest year/month seen while sniffing (RFC 3164 year inference).
    pub latest_year_month: Option<(i16, i8)>,
    /// Standard input, copied to a temporary file (removed when this is dropped).
    pub stdin: Option<stdin::Spool>,
}

/// A file to sniff, and whether it was found in a directory (not named by the user).
struct Candidate {
    path: PathBuf,
    /// The name in reports (`stdin` for `-`).
    name: String,
    from_dir: bool,
}

/// Expands directories (recursively, hidden entries skipped, names sorted), drops
/// duplicates, and decides each file's kind. A path that does not exist is an
/// error (nothing to report on a typo); an entry that cannot be read is skipped and
/// listed, and the rest is still analysed. `-` is standard input, copied to a
/// temporary file first ([`stdin`]).
pub fn resolve(requested: &[Requested]) -> Result<Resolved, InputError> {
    let mut out = Resolved::default();
    // (device, inode) of every file and directory taken: the same file reached
    // twice (a path given twice, a symlink, a bind mount) is read once.
    let mut seen: HashSet<(u64, u64)> = HashSet::new();
    for req in requested {
        if stdin::is_stdin(&req.path) {
            if out.stdin.is_some() {
                return Err(InputError {
                    name: "-".to_string(),
                    error: "standard input can be given only once".to_string(),
                });
            }
            let spool = stdin::Spool::from_stdin().map_err(|e| InputError {
                name: stdin::NAME.to_string(),
                error: e.to_string(),
            })?;
            let c = Candidate {
                path: spool.path().to_path_buf(),
                name: stdin::NAME.to_string(),
                from_dir: false,
            };
            out.stdin = Some(spool);
            take_file(req, c, &mut out);
            continue;
        }
        let meta = std::fs::metadata(&req.path).map_err(|e| InputError {
            name: req.path.display().to_string(),
            error: e.to_string(),
        })?;
        let mut files = Vec::new();
        if meta.is_dir() {
            walk_dir(&req.path, &mut seen, &mut files, &mut out);
        } else if meta.is_file() {
            if seen.insert((meta.dev(), meta.ino())) {
                files.push(Candidate {
                    path: req.path.clone(),
                    name: req.path.display().to_string(),
                    from_dir: false,
                });
            }
        } else {
            // A FIFO or device read twice (sniff, then parse) would block or lose
            // its first lines.
            let name = req.path.display().to_string();
            let error = format!(
                "{} is a {}, not a regular file: give its content on standard input instead (gatelog analyze - < {name})",
                name,
                file_type_name(&meta)
            );
            out.skipped.push(Skipped {
                name: name.clone(),
                reason: error.clone(),
            });
            out.unreadable.push(InputError { name, error });
            continue;
        }
        for c in files {
            take_file(req, c, &mut out);
        }
    }
    Ok(out)
}

/// Sniffs one file and files it as an input or a skipped entry.
fn take_file(req: &Requested, c: Candidate, out: &mut Resolved) {
    let file = c.path;
    let name = c.name;
    let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    let sniffed = match detect::sniff(&file, req.kind) {
        Ok(s) => s,
        Err(e) => {
            out.skipped.push(Skipped {
                name: name.clone(),
                reason: format!("cannot read: {e}"),
            });
            out.unreadable.push(InputError {
                name,
                error: e.to_string(),
            });
            return;
        }
    };
    if let Some(ym) = sniffed.latest_year_month {
        out.latest_year_month = Some(out.latest_year_month.map_or(ym, |l| l.max(ym)));
    }
    let by_name = if sniffed.empty {
        detect::kind_from_name(&file)
    } else {
        None
    };
    let (kind, detected_by) = match (req.kind, sniffed.kind, by_name) {
        (Some(k), _, _) => (k, DetectedBy::Flag),
        (None, Some(k), _) => (k, DetectedBy::Content),
        (None, None, Some(k)) => (k, DetectedBy::Name),
        (None, None, None) => {
            out.skipped.push(Skipped {
                reason: if size == 0 {
                    "empty".to_string()
                } else if c.from_dir {
                    "not a recognised log or config".to_string()
                } else {
                    "not a recognised log or config (use --nginx-log, --fpm-log, ... to say what it is)".to_string()
                },
                name,
            });
            return;
        }
    };
    let mut kinds = sniffed.kinds;
    if !kinds.contains(&kind) {
        kinds.push(kind);
    }
    out.inputs.push(Input {
        path: file,
        name: Arc::from(name.as_str()),
        kind,
        detected_by,
        size,
        kinds,
    });
}

fn file_type_name(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_fifo() {
        "FIFO (named pipe)"
    } else if t.is_socket() {
        "socket"
    } else if t.is_char_device() || t.is_block_device() {
        "device"
    } else {
        "special file"
    }
}

/// Walks `dir` recursively in name order, following symlinks. Hidden entries are
/// skipped; a symlink loop, a directory reached twice and an entry that cannot be
/// read are listed (the last one also as unreadable) and the walk goes on, so
/// memory stays bounded by the tree, whatever links it holds.
fn walk_dir(
    dir: &Path,
    seen: &mut HashSet<(u64, u64)>,
    files: &mut Vec<Candidate>,
    out: &mut Resolved,
) {
    let walker = walkdir::WalkDir::new(dir)
        .follow_links(true)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            e.depth() == 0 || !e.file_name().to_str().is_some_and(|n| n.starts_with('.'))
        });
    let mut walker = walker;
    while let Some(entry) = walker.next() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let name = e
                    .path()
                    .map_or_else(|| dir.display().to_string(), |p| p.display().to_string());
                if let Some(ancestor) = e.loop_ancestor() {
                    out.skipped.push(Skipped {
                        name,
                        reason: format!("symlink loop: leads back to {}", ancestor.display()),
                    });
                    continue;
                }
                let error = e
                    .io_error()
                    .map_or_else(|| e.to_string(), |io| io.to_string());
                out.skipped.push(Skipped {
                    name: name.clone(),
                    reason: format!("cannot read: {error}"),
                });
                out.unreadable.push(InputError { name, error });
                continue;
            }
        };
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        let id = (meta.dev(), meta.ino());
        if meta.is_dir() {
            // A directory reached again through another link: its files are taken.
            if !seen.insert(id) && entry.depth() > 0 {
                walker.skip_current_dir();
            }
            continue;
        }
        if !meta.is_file() {
            out.skipped.push(Skipped {
                name: entry.path().display().to_string(),
                reason: format!("a {}, not a regular file", file_type_name(&meta)),
            });
            continue;
        }
        if seen.insert(id) {
            files.push(Candidate {
                name: entry.path().display().to_string(),
                path: entry.into_path(),
                from_dir: true,
            });
        }
    }
}
