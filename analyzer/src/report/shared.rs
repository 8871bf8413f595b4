//! The texts of the JSON report that many failures share (reasons, fixes, evidence
//! lines), each written once and referred to by its index. In an incident hour
//! thousands of failures carry the same fix, the same reason and the same FPM
//! warning as evidence; written per failure they made the report larger than its
//! inputs.
//!
//! The report is streamed, so a table cannot be held whole: its entries go to a
//! private scratch file as they are first seen (written out after `failures`), and
//! only the recently used distinct entries are remembered for reuse (two
//! generations: an entry used again survives the next clearing). An entry seen
//! again after it was forgotten is written again under a new index: the report grows
//! a little, but every index still names exactly the text the failure had, and
//! memory stays flat whatever the size of the logs.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};

use gatelog_record::line::json_string;

use crate::input::stdin::Spool;
use crate::model::Evidence;

/// Distinct entries remembered per table generation (and their bytes): beyond
/// either, the current generation becomes the older one and a new one starts.
const REMEMBERED: usize = 4096;
const REMEMBERED_BYTES: usize = 4 << 20;

/// One table: `reasons`, `fixes` or `lines`.
pub struct SharedTable {
    scratch: Option<BufWriter<File>>,
    count: u32,
    recent: HashMap<Box<[u8]>, u32>,
    recent_bytes: usize,
    /// The generation before `recent`: an entry found here moves back to `recent`.
    older: HashMap<Box<[u8]>, u32>,
    buf: Vec<u8>,
    /// The text last asked for by [`Self::index_of_text`] and its index: failures in
    /// a row mostly share their fix and reason, and a comparison is cheaper than
    /// escaping and hashing it again.
    last_text: String,
    last_index: Option<u32>,
}

impl SharedTable {
    pub fn new() -> SharedTable {
        SharedTable {
            scratch: None,
            count: 0,
            recent: HashMap::new(),
            recent_bytes: 0,
            older: HashMap::new(),
            buf: Vec::with_capacity(1024),
            last_text: String::new(),
            last_index: None,
        }
    }

    /// The index of the piece of evidence `e` in the table, written to it when new.
    pub fn index_of_evidence(&mut self, e: &Evidence) -> io::Result<u32> {
        self.buf.clear();
        e.write_json(&mut self.buf);
        self.find_or_write()
    }

    /// The index of `text` in the table, written to it when new.
    pub fn index_of_text(&mut self, text: &str) -> io::Result<u32> {
        if let Some(i) = self.last_index.filter(|_| self.last_text == text) {
            return Ok(i);
        }
        self.buf.clear();
        json_string(&mut self.buf, text);
        let i = self.find_or_write()?;
        self.last_text.clear();
        self.last_text.push_str(text);
        self.last_index = Some(i);
        Ok(i)
    }

    /// Writes a piece of evidence as a new entry without looking for it: for a line
    /// known to be new (a failure's own error-log line), which would only push the
    /// texts that recur out of memory.
    pub fn append_evidence(&mut self, e: &Evidence) -> io::Result<u32> {
        self.buf.clear();
        e.write_json(&mut self.buf);
        self.write_entry()
    }

    /// The index of the entry in `buf`, written when new.
    fn find_or_write(&mut self) -> io::Result<u32> {
        if let Some(&i) = self.recent.get(self.buf.as_slice()) {
            return Ok(i);
        }
        if self.recent.len() >= REMEMBERED || self.recent_bytes >= REMEMBERED_BYTES {
            self.older = std::mem::take(&mut self.recent);
            self.recent_bytes = 0;
        }
        if let Some((k, i)) = self.older.remove_entry(self.buf.as_slice()) {
            self.recent_bytes += k.len();
            self.recent.insert(k, i);
            return Ok(i);
        }
        let i = self.write_entry()?;
        self.recent_bytes += self.buf.len();
        self.recent.insert(self.buf.as_slice().into(), i);
        Ok(i)
    }

    /// Writes `buf` as the next entry; returns its index.
    fn write_entry(&mut self) -> io::Result<u32> {
        let i = self.count;
        self.count += 1;
        let out = match &mut self.scratch {
            Some(out) => out,
            None => self
                .scratch
                .insert(BufWriter::with_capacity(256 * 1024, Spool::scratch()?)),
        };
        if i > 0 {
            out.write_all(b",\n")?;
        }
        out.write_all(&self.buf)?;
        Ok(i)
    }

    /// Writes the table as the members of a JSON array (without brackets) to `out`.
    pub fn copy_to(&mut self, out: &mut impl Write) -> io::Result<()> {
        let Some(scratch) = self.scratch.take() else {
            return Ok(());
        };
        let mut file = scratch.into_inner().map_err(|e| e.into_error())?;
        file.seek(SeekFrom::Start(0))?;
        io::copy(&mut file, out)?;
        Ok(())
    }
}

impl Default for SharedTable {
    fn default() -> SharedTable {
        SharedTable::new()
    }
}

/// Puts a `gatelog.report.v2` document's shared texts back into its failures:
/// `reason` and `fix` as text, `evidence` as the line objects, as each failure reads
/// whole (gatelog.report.v1 wrote them so). The tables stay. An index that names no
/// entry is left as it is (the report was cut).
pub fn inline(report: &mut serde_json::Value) {
    use serde_json::Value;
    let table = |report: &mut Value, name: &str| -> Vec<Value> {
        match report.get_mut(name) {
            Some(Value::Array(a)) => a.clone(),
            _ => Vec::new(),
        }
    };
    let (reasons, fixes, lines) = (
        table(report, "reasons"),
        table(report, "fixes"),
        table(report, "lines"),
    );
    let entry = |t: &[Value], v: &Value| -> Option<Value> {
        t.get(usize::try_from(v.as_u64()?).ok()?).cloned()
    };
    let Some(Value::Array(failures)) = report.get_mut("failures") else {
        return;
    };
    for f in failures {
        for (key, t) in [("reason", &reasons), ("fix", &fixes)] {
            if let Some(v) = f.get_mut(key) {
                if let Some(text) = entry(t, v) {
                    *v = text;
                }
            }
        }
        if let Some(Value::Array(ev)) = f.get_mut("evidence") {
            for v in ev.iter_mut() {
                if let Some(line) = entry(&lines, v) {
                    *v = line;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_text(t: &mut SharedTable) -> String {
        let mut out = Vec::new();
        t.copy_to(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_same_text_is_written_once() {
        let mut t = SharedTable::new();
        assert_eq!(t.index_of_text("restart FPM").unwrap(), 0);
        assert_eq!(t.index_of_text("raise pm.max_children").unwrap(), 1);
        assert_eq!(t.index_of_text("restart FPM").unwrap(), 0);
        assert_eq!(
            table_text(&mut t),
            "\"restart FPM\",\n\"raise pm.max_children\""
        );
    }

    #[test]
    fn a_text_in_use_is_kept_and_a_forgotten_one_gets_a_new_index_that_names_it() {
        let mut t = SharedTable::new();
        // Two generations of other texts; "fix" is used again in between.
        for n in 0..2 * REMEMBERED {
            if n % 1000 == 0 {
                assert_eq!(t.index_of_text("fix").unwrap(), 0);
            }
            t.index_of_text(&format!("reason {n}")).unwrap();
        }
        assert_eq!(
            t.index_of_text("fix").unwrap(),
            0,
            "used in every generation"
        );
        for n in 0..REMEMBERED {
            t.index_of_text(&format!("more {n}")).unwrap();
        }
        // "reason 0" was in a generation dropped since: written again, under an
        // index of its own.
        let again = t.index_of_text("reason 0").unwrap() as usize;
        assert_eq!(again, 1 + 3 * REMEMBERED);
        let all: Vec<String> = serde_json::from_str(&format!("[{}]", table_text(&mut t))).unwrap();
        assert_eq!(all.len(), again + 1);
        assert_eq!((all[0].as_str(), all[1].as_str()), ("fix", "reason 0"));
        assert_eq!(all[again], "reason 0");
    }

    #[test]
    fn a_text_asked_for_twice_in_a_row_has_one_index() {
        let mut t = SharedTable::new();
        assert_eq!(t.index_of_text("a").unwrap(), 0);
        assert_eq!(t.index_of_text("a").unwrap(), 0);
        assert_eq!(t.index_of_text("b").unwrap(), 1);
        assert_eq!(t.index_of_text("a").unwrap(), 0);
        assert_eq!(table_text(&mut t), "\"a\",\n\"b\"");
    }

    #[test]
    fn an_appended_entry_is_new_and_not_remembered() {
        let mut t = SharedTable::new();
        let file: std::sync::Arc<str> = "error.log".into();
        let e = Evidence::new(crate::model::EvidenceSource::Nginx, &file, 3, "own line");
        assert_eq!(t.append_evidence(&e).unwrap(), 0);
        assert_eq!(t.index_of_evidence(&e).unwrap(), 1);
        assert_eq!(t.index_of_evidence(&e).unwrap(), 1);
        let entry = r#"{"source":"nginx","file":"error.log","line":3,"text":"own line"}"#;
        assert_eq!(table_text(&mut t), format!("{entry},\n{entry}"));
    }

    #[test]
    fn inline_puts_the_texts_back() {
        let mut r = serde_json::json!({
            "failures": [{"reason": 1, "fix": 0, "evidence": [0, 1]}],
            "reasons": ["a", "b"],
            "fixes": ["restart"],
            "lines": [{"line": 7}, {"line": 9}],
        });
        inline(&mut r);
        assert_eq!(
            r["failures"][0],
            serde_json::json!({"reason": "b", "fix": "restart", "evidence": [{"line": 7}, {"line": 9}]})
        );
    }

    #[test]
    fn an_empty_table_writes_nothing() {
        let mut t = SharedTable::new();
        assert_eq!(table_text(&mut t), "");
    }
}
