//! The one JSON Schema check of the tests: the schemas in docs/ (records, the
//! analyzer's report, the doctor's report, the metrics scrape) applied by the maintained `jsonschema`
//! crate, so that a document is valid exactly when a user's validator would say so
//! (the harness used to carry its own interpreter of a keyword subset).
//!
//! [`validate_file`] checks a JSON file or a JSON-lines file (one document per line);
//! the `validate-json` binary and the benchmark use it on generated records.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use serde_json::Value;

use crate::env::workspace_root;

/// The record schema's file name in docs/.
pub const RECORD: &str = "gatelog.v1.schema.json";
/// The analyzer's report schema.
pub const REPORT: &str = "gatelog.report.v2.schema.json";
/// The doctor's report schema.
pub const DOCTOR: &str = "gatelog.doctor.v1.schema.json";
/// The module's metrics scrape in JSON.
pub const METRICS: &str = "gatelog.metrics.v1.schema.json";

/// A compiled schema and the file it came from (named in every error).
pub struct Schema {
    path: PathBuf,
    validator: jsonschema::Validator,
}

impl Schema {
    /// Reads and compiles a schema file.
    pub fn load(path: &Path) -> Result<Schema, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not JSON: {e}", path.display()))?;
        Schema::compile(path, &value)
    }

    /// Compiles a schema given as a value (`path` only names it in errors).
    pub fn compile(path: &Path, schema: &Value) -> Result<Schema, String> {
        let validator = jsonschema::validator_for(schema)
            .map_err(|e| format!("{} is not a valid JSON Schema: {e}", path.display()))?;
        Ok(Schema {
            path: path.to_path_buf(),
            validator,
        })
    }

    /// The schema file, as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every violation of `doc`, each as `<JSON pointer>: <what is wrong>`.
    pub fn errors(&self, doc: &Value) -> Vec<String> {
        self.validator
            .iter_errors(doc)
            .map(|e| {
                let at = e.instance_path.to_string();
                format!("{}: {e}", if at.is_empty() { "/" } else { &at })
            })
            .collect()
    }

    /// `Ok` when `doc` is valid, else every violation in one message naming the schema.
    pub fn validate(&self, doc: &Value) -> Result<(), Vec<String>> {
        let errs = self.errors(doc);
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs)
        }
    }
}

/// A schema of docs/ by file name ([`RECORD`], [`REPORT`], [`DOCTOR`], [`METRICS`]), compiled
/// once per test process.
pub fn docs(name: &str) -> Result<&'static Schema, String> {
    static CACHE: OnceLock<Mutex<HashMap<String, Result<&'static Schema, String>>>> =
        OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    cache
        .entry(name.to_string())
        .or_insert_with(|| {
            let schema = Schema::load(&workspace_root().join("docs").join(name))?;
            // Lives as long as the test process, like the file it came from.
            Ok(&*Box::leak(Box::new(schema)))
        })
        .clone()
}

/// Why a file did not validate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    /// 1-based line of the offending document (1 for a whole-file JSON document).
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for FileError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Validates `text`, either one JSON document (possibly pretty-printed over many
/// lines) or JSON lines (one document per line, empty lines not allowed except a
/// final newline); returns the number of valid documents or the first error with
/// its line number.
pub fn validate_text(schema: &Schema, text: &str) -> Result<usize, FileError> {
    // A whole-file document first: a pretty-printed report spans many lines.
    if let Ok(doc) = serde_json::from_str::<Value>(text) {
        return match schema.errors(&doc).into_iter().next() {
            None => Ok(1),
            Some(message) => Err(FileError { line: 1, message }),
        };
    }
    let body = text.strip_suffix('\n').unwrap_or(text);
    if body.is_empty() {
        return Err(FileError {
            line: 1,
            message: "no JSON document".into(),
        });
    }
    let mut n = 0;
    for (i, line) in body.split('\n').enumerate() {
        let at = |message: String| FileError {
            line: i + 1,
            message,
        };
        let doc: Value =
            serde_json::from_str(line).map_err(|e| at(format!("not one JSON document ({e})")))?;
        if let Some(message) = schema.errors(&doc).into_iter().next() {
            return Err(at(message));
        }
        n += 1;
    }
    Ok(n)
}

/// [`validate_text`] on a file.
pub fn validate_file(schema: &Schema, path: &Path) -> Result<usize, FileError> {
    let text = std::fs::read_to_string(path).map_err(|e| FileError {
        line: 0,
        message: format!("reading {}: {e}", path.display()),
    })?;
    validate_text(schema, &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two records the module wrote in a real run of `cause1_fpm_stopped` (the
    /// analyzer's fixture), as JSON lines.
    fn real_records() -> String {
        let p =
            workspace_root().join("analyzer/tests/fixtures/real/cause1_fpm_stopped/gatelog.jsonl");
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    #[test]
    fn the_docs_schemas_compile() {
        for name in [RECORD, REPORT, DOCTOR, METRICS] {
            docs(name).unwrap_or_else(|e| panic!("{e}"));
        }
        assert!(docs("no-such.schema.json").is_err());
    }

    #[test]
    fn json_lines_report_the_first_bad_line() {
        let schema = docs(RECORD).expect("record schema");
        let text = real_records();
        assert_eq!(validate_text(schema, &text), Ok(2));
        // The second record with a phase no attempt has.
        let lines: Vec<&str> = text.lines().collect();
        let mut bad: Value = serde_json::from_str(lines[1]).expect("JSON");
        bad["attempts"][0]["phase"] = "dialing".into();
        let broken = format!("{}\n{bad}\n{}\n", lines[0], lines[0]);
        let e = validate_text(schema, &broken).expect_err("line 2 is invalid");
        assert_eq!(e.line, 2, "{e}");
        assert!(e.message.starts_with("/attempts/0/phase:"), "{e}");
        // A record cut short by a partial write.
        let cut = format!("{}\n{}\n", lines[0], &lines[1][..40]);
        let e = validate_text(schema, &cut).expect_err("cut line");
        assert_eq!(e.line, 2, "{e}");
        assert!(validate_text(schema, "").is_err());
    }

    #[test]
    fn a_pretty_printed_document_is_one_document() {
        let schema = docs(RECORD).expect("record schema");
        let first = real_records()
            .lines()
            .next()
            .map(str::to_string)
            .expect("a line");
        let doc: Value = serde_json::from_str(&first).expect("JSON");
        let text = serde_json::to_string_pretty(&doc).expect("JSON");
        assert_eq!(validate_text(schema, &text), Ok(1));
        // Keys the schema does not name, and a level NGINX does not give a record.
        let mut bad = doc.clone();
        bad["extra"] = 1.into();
        bad["level"] = "crit".into();
        let errs = schema.errors(&bad);
        assert_eq!(errs.len(), 2, "{errs:#?}");
        assert!(errs.iter().any(|e| e.starts_with("/level:")), "{errs:#?}");
        assert!(errs.iter().any(|e| e.contains("extra")), "{errs:#?}");
    }
}
