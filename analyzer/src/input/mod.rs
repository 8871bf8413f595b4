//! Finding, opening and recognising inputs.

pub mod detect;
pub mod reader;
pub mod stats;

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::model::InputKind;

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
    pub kind: InputKind,
    pub detected_by: DetectedBy,
    pub size: u64,
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
}

/// Expands directories (recursively, hidden entries skipped, names sorted), drops
/// duplicates, and decides each file's kind.
pub fn resolve(requested: &[Requested]) -> Result<Resolved, InputError> {
    let mut out = Resolved::default();
    let mut seen = HashSet::new();
    for req in requested {
        let meta = std::fs::metadata(&req.path).map_err(|e| InputError {
            name: req.path.display().to_string(),
            error: e.to_string(),
        })?;
        let mut files = Vec::new();
        if meta.is_dir() {
            collect_dir(&req.path, &mut files).map_err(|e| InputError {
                name: req.path.display().to_string(),
                error: e.to_string(),
            })?;
        } else {
            files.push(req.path.clone());
        }
        let from_dir = meta.is_dir();
        for file in files {
            let key = std::fs::canonicalize(&file).unwrap_or_else(|_| file.clone());
            if !seen.insert(key) {
                continue;
            }
            let name = file.display().to_string();
            let size = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            let sniffed = detect::sniff(&file).map_err(|e| InputError {
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
            out.inputs.push(Input {
                path: file,
                name: Arc::from(name.as_str()),
                kind,
                detected_by,
                size,
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
