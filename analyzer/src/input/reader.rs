//! Reading an input line by line with one reused buffer, whatever its compression.
//!
//! Memory stays flat however large the file: a line is borrowed from the buffer until
//! the next call, and a pathological line (no newline for megabytes) is cut at
//! [`MAX_LINE`] instead of growing the buffer without bound.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use flate2::read::MultiGzDecoder;

/// Longest line kept. NGINX caps its lines at 2048 bytes and FPM at `log_limit`;
/// anything longer than this is not a log line we could use.
pub const MAX_LINE: usize = 64 * 1024;

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Counts the raw (compressed) bytes read from the file, for progress display.
struct CountingRead<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens `path`, transparently decompressing gzip (recognised by its magic bytes,
/// so `error.log.2.gz` and a gzip file without the suffix both work).
/// A reader and its shared count of raw bytes read.
pub type Opened = (Box<dyn BufRead + Send>, Arc<AtomicU64>);

pub fn open(path: &Path) -> io::Result<Opened> {
    let mut file = File::open(path)?;
    let mut magic = [0u8; 2];
    let n = read_fully(&mut file, &mut magic)?;
    let file = File::open(path)?;
    let count = Arc::new(AtomicU64::new(0));
    let counted = CountingRead {
        inner: file,
        count: Arc::clone(&count),
    };
    let reader: Box<dyn BufRead + Send> = if n == 2 && magic == GZIP_MAGIC {
        Box::new(BufReader::with_capacity(
            256 * 1024,
            MultiGzDecoder::new(BufReader::with_capacity(64 * 1024, counted)),
        ))
    } else {
        Box::new(BufReader::with_capacity(256 * 1024, counted))
    };
    Ok((reader, count))
}

fn read_fully(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Yields the lines of a reader without their `\n` / `\r\n`, into a buffer the
/// caller owns and reuses.
pub struct LineReader {
    inner: Box<dyn BufRead + Send>,
    line_no: u64,
    raw_bytes: Arc<AtomicU64>,
    /// Lines longer than MAX_LINE, cut (counted for the input summary).
    pub overlong_lines: u64,
}

impl LineReader {
    pub fn open(path: &Path) -> io::Result<LineReader> {
        let (inner, raw_bytes) = open(path)?;
        Ok(LineReader::new(inner, raw_bytes))
    }

    pub fn from_reader(inner: Box<dyn BufRead + Send>) -> LineReader {
        LineReader::new(inner, Arc::new(AtomicU64::new(0)))
    }

    fn new(inner: Box<dyn BufRead + Send>, raw_bytes: Arc<AtomicU64>) -> LineReader {
        LineReader {
            inner,
            line_no: 0,
            raw_bytes,
            overlong_lines: 0,
        }
    }

    /// 1-based number of the line last returned.
    pub fn line_no(&self) -> u64 {
        self.line_no
    }

    /// Raw bytes consumed from the file so far (compressed size for .gz).
    pub fn raw_bytes(&self) -> u64 {
        self.raw_bytes.load(Ordering::Relaxed)
    }

    /// A shared handle on the raw byte count (read from another thread).
    pub fn raw_counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.raw_bytes)
    }

    /// Reads the next line into `buf` (cleared first); false at the end of the input.
    pub fn next_line(&mut self, buf: &mut Vec<u8>) -> io::Result<bool> {
        buf.clear();
        let mut cut = false;
        loop {
            let available = match self.inner.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                if buf.is_empty() && !cut {
                    return Ok(false);
                }
                break;
            }
            let (chunk, consumed, done) = match memchr::memchr(b'\n', available) {
                Some(i) => (&available[..i], i + 1, true),
                None => (available, available.len(), false),
            };
            let room = MAX_LINE.saturating_sub(buf.len());
            if chunk.len() > room {
                buf.extend_from_slice(&chunk[..room]);
                cut = true;
            } else {
                buf.extend_from_slice(chunk);
            }
            self.inner.consume(consumed);
            if done {
                break;
            }
        }
        if cut {
            self.overlong_lines += 1;
        }
        if buf.last() == Some(&b'\r') {
            buf.pop();
        }
        self.line_no += 1;
        Ok(true)
    }
}

/// A line as text; invalid UTF-8 (binary junk, Latin-1 URIs) is replaced, never fatal.
pub fn text(line: &[u8]) -> Cow<'_, str> {
    // from_utf8 has a fast ASCII path; the lossy walk only for the rare bad line.
    match std::str::from_utf8(line) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    fn lines_of(data: &[u8]) -> Vec<Vec<u8>> {
        let mut r = LineReader::from_reader(Box::new(Cursor::new(data.to_vec())));
        let mut out = Vec::new();
        let mut buf = Vec::new();
        while r.next_line(&mut buf).unwrap() {
            out.push(buf.clone());
        }
        out
    }

    #[test]
    fn splits_lines_and_strips_crlf() {
        assert_eq!(
            lines_of(b"a\r\nb\n\nc"),
            vec![b"a".to_vec(), b"b".to_vec(), b"".to_vec(), b"c".to_vec()]
        );
        assert!(lines_of(b"").is_empty());
    }

    #[test]
    fn cuts_overlong_lines() {
        let mut data = vec![b'x'; MAX_LINE + 10];
        data.extend_from_slice(b"\nnext\n");
        let mut r = LineReader::from_reader(Box::new(Cursor::new(data)));
        let mut buf = Vec::new();
        assert!(r.next_line(&mut buf).unwrap());
        assert_eq!(buf.len(), MAX_LINE);
        assert!(r.next_line(&mut buf).unwrap());
        assert_eq!(buf, b"next");
        assert_eq!(r.overlong_lines, 1);
        assert_eq!(r.line_no(), 2);
    }

    #[test]
    fn reads_gzip_by_magic() {
        let dir = std::env::temp_dir().join(format!("gatelog-reader-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("error.log.1");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(b"one\ntwo\n").unwrap();
        std::fs::write(&path, enc.finish().unwrap()).unwrap();
        let mut r = LineReader::open(&path).unwrap();
        let mut buf = Vec::new();
        assert!(r.next_line(&mut buf).unwrap());
        assert_eq!(buf, b"one");
        assert!(r.next_line(&mut buf).unwrap());
        assert_eq!(buf, b"two");
        assert!(!r.next_line(&mut buf).unwrap());
        assert!(r.raw_bytes() > 0);
        std::fs::remove_dir_all(&dir).ok();
    }
}
