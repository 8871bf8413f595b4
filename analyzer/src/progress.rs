//! Progress on stderr, only when stderr is a terminal and the inputs are large: a
//! pipeline or a test never sees it.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// Inputs smaller than this finish before progress would be useful.
const LARGE_INPUT_BYTES: u64 = 64 * 1024 * 1024;
const REDRAW_EVERY: Duration = Duration::from_millis(250);

pub struct Progress {
    enabled: bool,
    total: u64,
    /// Bytes of the inputs already finished.
    done: u64,
    current_name: String,
    last_draw: Instant,
    ticks: u32,
}

impl Progress {
    pub fn new(total_bytes: u64) -> Progress {
        let enabled = total_bytes >= LARGE_INPUT_BYTES && std::io::stderr().is_terminal();
        Progress::with(enabled, total_bytes)
    }

    pub fn disabled() -> Progress {
        Progress::with(false, 0)
    }

    fn with(enabled: bool, total: u64) -> Progress {
        Progress {
            enabled,
            total,
            done: 0,
            current_name: String::new(),
            last_draw: Instant::now(),
            ticks: 0,
        }
    }

    pub fn start_file(&mut self, name: &str) {
        self.current_name = name.to_string();
    }

    pub fn finish_file(&mut self, size: u64) {
        self.done += size;
    }

    /// Called per line with the bytes read of the current file; cheap when disabled
    /// and checks the clock only every few thousand lines.
    pub fn tick(&mut self, current_bytes: u64) {
        if !self.enabled {
            return;
        }
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks % 4096 != 0 || self.last_draw.elapsed() < REDRAW_EVERY {
            return;
        }
        self.last_draw = Instant::now();
        let pct =
            ((self.done + current_bytes) as f64 / self.total.max(1) as f64 * 100.0).min(100.0);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r\x1b[Kgatelog: {pct:5.1}%  {}", self.current_name);
        let _ = err.flush();
    }

    /// Progress for the merged failure stream (bytes over all of its inputs).
    pub fn tick_total(&mut self, bytes: u64) {
        if !self.enabled {
            return;
        }
        self.done = 0;
        self.tick(bytes);
    }

    pub fn clear(&mut self) {
        if self.enabled {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[K");
        }
    }
}
