//! `LogWriter`: one generated file, written through a large buffer with chainable pushes of
//! text and numbers, so that producing a gigabyte costs seconds and not minutes; it also
//! counts the bytes and lines that go into the manifest.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::die;
use crate::text::{json_escape, push_hex, push_u64, push_u64_pad};

pub(crate) struct LogWriter {
    pub(crate) path: PathBuf,
    pub(crate) file: File,
    pub(crate) buf: Vec<u8>,
    pub(crate) bytes: u64,
    pub(crate) lines: u64,
}

impl LogWriter {
    pub(crate) fn create(dir: &Path, name: &str) -> LogWriter {
        let path = dir.join(name);
        let file = File::create(&path).unwrap_or_else(|e| die(&format!("{}: {e}", path.display())));
        LogWriter {
            path,
            file,
            buf: Vec::with_capacity(1 << 21),
            bytes: 0,
            lines: 0,
        }
    }

    #[inline]
    pub(crate) fn s(&mut self, s: &str) -> &mut Self {
        self.buf.extend_from_slice(s.as_bytes());
        self
    }

    #[inline]
    pub(crate) fn b(&mut self, s: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(s);
        self
    }

    #[inline]
    pub(crate) fn n(&mut self, v: u64) -> &mut Self {
        push_u64(&mut self.buf, v);
        self
    }

    /// Zero-padded to `w` digits.
    #[inline]
    pub(crate) fn nz(&mut self, v: u64, w: usize) -> &mut Self {
        push_u64_pad(&mut self.buf, v, w, b'0');
        self
    }

    #[inline]
    pub(crate) fn hex(&mut self, v: u64, w: usize) -> &mut Self {
        push_hex(&mut self.buf, v, w);
        self
    }

    /// JSON string body (without quotes).
    pub(crate) fn js(&mut self, s: &str) -> &mut Self {
        json_escape(&mut self.buf, s);
        self
    }

    /// A JSON string (quoted, escaped), or `null`.
    pub(crate) fn opt_str(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.s("\"").js(s).s("\""),
            None => self.s("null"),
        }
    }

    /// A JSON number, or `null`.
    pub(crate) fn opt_n(&mut self, v: Option<u64>) -> &mut Self {
        match v {
            Some(v) => self.n(v),
            None => self.s("null"),
        }
    }

    #[inline]
    pub(crate) fn nl(&mut self) {
        self.buf.push(b'\n');
        self.lines += 1;
        if self.buf.len() >= 1 << 20 {
            self.flush();
        }
    }

    pub(crate) fn flush(&mut self) {
        self.file
            .write_all(&self.buf)
            .unwrap_or_else(|e| die(&format!("{}: {e}", self.path.display())));
        self.bytes += self.buf.len() as u64;
        self.buf.clear();
    }

    pub(crate) fn total(&self) -> u64 {
        self.bytes + self.buf.len() as u64
    }
}
