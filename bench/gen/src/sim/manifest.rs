//! `manifest.json`: the ground truth of a generated input (bytes and lines per file,
//! failures per kind), which bench/run compares with what the analyzer reports.

use std::path::Path;

use super::Sim;
use crate::die;
use crate::kind::{Kind, ALL_KINDS, KINDS};

impl Sim {
    pub(crate) fn finish(mut self, dir: &Path, seed: u64, target: u64) {
        for s in [&mut self.err, &mut self.fpm, &mut self.kern, &mut self.rec] {
            s.flush();
        }
        let mut m = String::new();
        m.push_str("{\n");
        m.push_str(&format!(
            "  \"generator\": \"gatelog-bench-gen {}\",\n",
            env!("CARGO_PKG_VERSION")
        ));
        if self.is_incident() {
            m.push_str("  \"input\": \"incident\",\n");
        }
        m.push_str(&format!(
            "  \"seed\": {seed},\n  \"target_bytes\": {target},\n"
        ));
        m.push_str(&format!(
            "  \"total_bytes\": {},\n",
            self.err.bytes + self.fpm.bytes + self.kern.bytes + self.rec.bytes
        ));
        m.push_str("  \"files\": {\n");
        let files = [&self.err, &self.fpm, &self.kern, &self.rec];
        for (i, s) in files.iter().enumerate() {
            m.push_str(&format!(
                "    \"{}\": {{\"bytes\": {}, \"lines\": {}}}{}\n",
                s.path.file_name().unwrap().to_string_lossy(),
                s.bytes,
                s.lines,
                if i + 1 < files.len() { "," } else { "" }
            ));
        }
        m.push_str("  },\n  \"failures\": {\n");
        // The quiet input's manifest stays as it was: the other backend only in the incident's.
        let kinds: &[Kind] = if self.is_incident() {
            &ALL_KINDS
        } else {
            &KINDS
        };
        for k in kinds {
            m.push_str(&format!(
                "    \"{}\": {},\n",
                k.name(),
                self.failures[k.index()]
            ));
        }
        m.push_str(&format!(
            "    \"total\": {}\n  }},\n",
            self.failures.iter().sum::<u64>()
        ));
        m.push_str(&format!(
            "  \"records\": {},\n  \"status_502\": {},\n  \"status_504\": {},\n  \"oom_kills\": {},\n  \"segfaults\": {},\n  \"nginx_reloads\": {},\n  \"multi_line_fastcgi_stderr\": {}\n}}\n",
            self.records, self.status_502, self.status_504, self.oom_kills, self.segfaults, self.reloads, self.multi_line_stderr
        ));
        std::fs::write(dir.join("manifest.json"), m)
            .unwrap_or_else(|e| die(&format!("manifest.json: {e}")));
    }
}
