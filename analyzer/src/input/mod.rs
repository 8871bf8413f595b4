//! Finding, opening and recognising inputs.

pub mod detect;
pub mod framing;
pub mod reader;
pub mod route;
pub mod stats;
pub mod stdin;

use std::collections::HashSet;
use std::fmt;
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
    /// Latest year/month seen while sniffing (RFC 3164 year inference).
    pub latest_year_month: Option<(i16, i8)>,
    /// Standard input, copied to a temporary file (removed when this is dropped).
    pub stdin: Option<stdin::Spool>,
}

/// Expands directories (recursively, hidden entries skipped, names sorted), drops
/// duplicates, and decides each file's kind. `-` is standard input.
pub fn resolve(requested: &[Requested]) -> Result<Resolved, InputError> {
    let mut out = Resolved::default();
    let mut seen = HashSet::new();
    for req in requested {
        let mut files = Vec::new();
        let mut from_dir = false;
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
            files.push((spool.path().to_path_buf(), stdin::NAME.to_string()));
            out.stdin = Some(spool);
        } else {
            let meta = std::fs::metadata(&req.path).map_err(|e| InputError {
                name: req.path.display().to_string(),
                error: e.to_string(),
            })?;
            if meta.is_dir() {
                from_dir = true;
                let mut found = Vec::new();
                collect_dir(&req.path, &mut found).map_err(|e| InputError {
                    name: req.path.display().to_string(),
                    error: e.to_string(),
                })?;
                files.extend(found.into_iter().map(|f| {
                    let name = f.display().to_string();
                    (f, name)
                }));
            } else {
                files.push((req.path.clone(), req.path.display().to_string()));
            }
        }
        for (file, name) in files {
            let key = std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
            if !seen.insert(key) {
                continue;
            }
            let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            let sniffed = detect::sniff(&file, req.kind).map_err(|e| InputError {
                name: name.clone(),
                error: e.to_string(),
            })?;
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
                        } else if from_dir {
                            "not a recognised log or config".to_string()
                        } else {
                            "not a recognised log or config (use --nginx-log, --fpm-log, ... to say what it is)".to_string()
                        },
                        name,
                    });
                    continue;
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
    }
    Ok(out)
}

fn collect_dir(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            collect_dir(&p, out)?;
        } else if p.is_file() {
            out.push(p);
        }
    }
    Ok(())
}
