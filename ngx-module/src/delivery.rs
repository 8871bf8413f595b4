//! What became of the records written to one file: the records lost on write
//! errors, and the rate-limited error-log lines that report them.
//!
//! A full disk makes every write fail. Logging each failure would flood the error log
//! (one line per record in a 502 storm), so a file reports at most one line per second,
//! and each line carries the number of records lost since the previous line. Summed over
//! a process's lines (the last one is written at exit), the counts are exactly the
//! records that process lost. Everything here is plain arithmetic on the bytes written;
//! the system calls are in `ffi/file.rs`.

/// Why a write lost records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteError {
    /// `write()` failed with this errno.
    Errno(i32),
    /// `write()` wrote `written` of `of` bytes and then wrote nothing more, without an
    /// errno.
    Incomplete { written: usize, of: usize },
}

/// One line for the error log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// Records are being lost.
    Failed { failure: WriteError, lost: u64 },
    /// A write succeeded after failures.
    Recovered { lost: u64 },
    /// The file is no longer written by this process (exit, or its configuration was
    /// replaced): the last count and the total.
    Final { lost: u64, total: u64, when: Final },
}

/// When a [`Report::Final`] is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Final {
    Exit,
    Reload,
}

/// The write history of one file in one process.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Records lost since the last line.
    unreported: u64,
    /// Records lost by this process.
    total: u64,
    /// The second of the last line.
    last_line: Option<i64>,
    /// The last write failed.
    failing: bool,
    /// Writing recovered and no line said so yet.
    recovery_unreported: bool,
    /// A [`Report::Final`] covered everything up to now.
    finished: bool,
}

impl Delivery {
    /// Records lost by this process so far.
    pub fn total_lost(&self) -> u64 {
        self.total
    }

    /// A write that lost `lost` records. Returns the line to log, if one may be logged
    /// in second `now`.
    pub fn failed(&mut self, now: i64, lost: u64, failure: WriteError) -> Option<Report> {
        self.unreported += lost;
        self.total += lost;
        self.failing = true;
        self.recovery_unreported = false;
        self.finished = false;
        if !self.may_log(now) {
            return None;
        }
        Some(Report::Failed {
            failure,
            lost: self.take(now),
        })
    }

    /// A write that wrote all its records.
    pub fn written(&mut self, now: i64) -> Option<Report> {
        if self.failing {
            self.failing = false;
            self.recovery_unreported = true;
        }
        if !self.recovery_unreported || !self.may_log(now) {
            return None;
        }
        self.recovery_unreported = false;
        Some(Report::Recovered {
            lost: self.take(now),
        })
    }

    /// The last word on this file (at exit, or when its configuration is replaced):
    /// not rate-limited, and only when this process lost records since the last one.
    pub fn finish(&mut self, now: i64, when: Final) -> Option<Report> {
        if self.total == 0 || (self.finished && self.unreported == 0) {
            return None;
        }
        self.finished = true;
        self.recovery_unreported = false;
        Some(Report::Final {
            lost: self.take(now),
            total: self.total,
            when,
        })
    }

    fn may_log(&self, now: i64) -> bool {
        self.last_line.map_or(true, |t| now > t)
    }

    fn take(&mut self, now: i64) -> u64 {
        self.last_line = Some(now);
        core::mem::take(&mut self.unreported)
    }
}

impl Report {
    /// The error-log text: `call` is the system call (`write()`, `send()`), `target`
    /// what it writes to, as it should appear (`"/var/log/g.json"`, `syslog server
    /// "127.0.0.1:514"`); `strerror` gives the text of an errno.
    pub fn text(&self, call: &str, target: &str, strerror: impl Fn(i32) -> String) -> String {
        let lost = |n: u64| {
            format!(
                "{n} record{} lost since the last message",
                if n == 1 { "" } else { "s" }
            )
        };
        match *self {
            Report::Failed {
                failure: WriteError::Errno(e),
                lost: n,
            } => format!(
                "gatelog: {call} to {target} failed ({e}: {}); {}",
                strerror(e),
                lost(n)
            ),
            Report::Failed {
                failure: WriteError::Incomplete { written, of },
                lost: n,
            } => format!(
                "gatelog: {call} to {target} was incomplete: {written} of {of}; {}",
                lost(n)
            ),
            Report::Recovered { lost: n } => {
                format!("gatelog: {call} to {target} works again; {}", lost(n))
            }
            Report::Final {
                lost: n,
                total,
                when,
            } => format!(
                "gatelog: {}, {call} to {target}: {}, {total} in all by this process",
                match when {
                    Final::Exit => "at exit",
                    Final::Reload => "at reload",
                },
                lost(n)
            ),
        }
    }
}

/// Records in `data` (whole records only: each ends with the one newline of its line).
pub fn records(data: &[u8]) -> u64 {
    data.iter().filter(|&&b| b == b'\n').count() as u64
}

/// Where a write of whole records stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    /// Bytes of complete records written.
    pub whole: usize,
    /// Bytes written of the record that was cut (0: the write stopped between records).
    pub partial: usize,
    /// Records not written completely (the cut one included).
    pub lost: u64,
}

/// A write of `data` (whole records) that stopped after `written` bytes.
pub fn cut(data: &[u8], written: usize) -> Cut {
    let written = written.min(data.len());
    let whole = data[..written]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    Cut {
        whole,
        partial: written - whole,
        lost: records(&data[whole..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENOSPC: i32 = 28;

    fn strerror(e: i32) -> String {
        if e == ENOSPC {
            "No space left on device".into()
        } else {
            format!("errno {e}")
        }
    }

    #[test]
    fn one_line_per_second_with_the_count_since_the_last() {
        let mut d = Delivery::default();
        let full = WriteError::Errno(ENOSPC);
        assert_eq!(
            d.failed(100, 1, full),
            Some(Report::Failed {
                failure: full,
                lost: 1
            })
        );
        // A storm in the same second: counted, not logged.
        for _ in 0..5000 {
            assert_eq!(d.failed(100, 1, full), None);
        }
        assert_eq!(
            d.failed(101, 2, full),
            Some(Report::Failed {
                failure: full,
                lost: 5002
            })
        );
        assert_eq!(d.total_lost(), 5003);
    }

    #[test]
    fn recovery_is_reported_once_not_before_the_next_second() {
        let mut d = Delivery::default();
        assert!(d.written(5).is_none(), "nothing to report before a failure");
        assert!(d.failed(10, 3, WriteError::Errno(ENOSPC)).is_some());
        assert_eq!(d.failed(10, 4, WriteError::Errno(ENOSPC)), None);
        // Space is back within the same second: the line waits for the next second.
        assert_eq!(d.written(10), None);
        assert_eq!(d.written(11), Some(Report::Recovered { lost: 4 }));
        assert_eq!(d.written(12), None);
        assert_eq!(d.written(13), None);
    }

    #[test]
    fn a_new_failure_before_the_recovery_line_carries_the_count() {
        let mut d = Delivery::default();
        assert!(d.failed(10, 1, WriteError::Errno(ENOSPC)).is_some());
        assert_eq!(d.written(10), None);
        assert_eq!(d.failed(10, 2, WriteError::Errno(ENOSPC)), None);
        assert_eq!(
            d.failed(11, 1, WriteError::Errno(ENOSPC)),
            Some(Report::Failed {
                failure: WriteError::Errno(ENOSPC),
                lost: 3
            })
        );
    }

    #[test]
    fn finish_reports_what_no_line_said_yet_and_the_total() {
        let mut d = Delivery::default();
        assert_eq!(d.finish(1, Final::Exit), None, "nothing lost: silent");
        assert!(d.failed(10, 2, WriteError::Errno(ENOSPC)).is_some());
        assert_eq!(d.failed(10, 5, WriteError::Errno(ENOSPC)), None);
        assert_eq!(
            d.finish(10, Final::Exit),
            Some(Report::Final {
                lost: 5,
                total: 7,
                when: Final::Exit
            })
        );
        assert_eq!(d.finish(10, Final::Exit), None, "said once");
        assert!(d.failed(10, 1, WriteError::Errno(ENOSPC)).is_none());
        assert_eq!(
            d.finish(10, Final::Exit),
            Some(Report::Final {
                lost: 1,
                total: 8,
                when: Final::Exit
            })
        );
    }

    #[test]
    fn the_counts_over_all_lines_add_up_to_the_records_lost() {
        // Failures and successes over 30 seconds, 37 writes a second.
        let mut d = Delivery::default();
        let (mut lost, mut reported, mut lines_per_second) = (0u64, 0u64, Vec::new());
        for sec in 0..30i64 {
            let mut lines = 0;
            for i in 0..37u64 {
                let r = if (sec / 4) % 2 == 0 && i % 3 != 0 {
                    lost += i % 4 + 1;
                    d.failed(sec, i % 4 + 1, WriteError::Errno(ENOSPC))
                } else {
                    d.written(sec)
                };
                if let Some(Report::Failed { lost, .. } | Report::Recovered { lost }) = r {
                    reported += lost;
                    lines += 1;
                }
            }
            lines_per_second.push(lines);
        }
        if let Some(Report::Final { lost: n, total, .. }) = d.finish(30, Final::Exit) {
            reported += n;
            assert_eq!(total, lost);
        }
        assert_eq!(reported, lost);
        assert!(
            lines_per_second.iter().all(|&n| n <= 1),
            "{lines_per_second:?}"
        );
    }

    #[test]
    fn texts_name_the_file_the_errno_and_the_count() {
        let f = Report::Failed {
            failure: WriteError::Errno(ENOSPC),
            lost: 1532,
        };
        assert_eq!(
            f.text("write()", "\"/var/log/g.json\"", strerror),
            "gatelog: write() to \"/var/log/g.json\" failed (28: No space left on device); \
             1532 records lost since the last message"
        );
        assert_eq!(
            Report::Recovered { lost: 1 }.text("send()", "syslog server \"127.0.0.1:514\"", strerror),
            "gatelog: send() to syslog server \"127.0.0.1:514\" works again; 1 record lost since the last message"
        );
        assert_eq!(
            Report::Final {
                lost: 0,
                total: 9,
                when: Final::Exit
            }
            .text("write()", "\"g\"", strerror),
            "gatelog: at exit, write() to \"g\": 0 records lost since the last message, 9 in all by this process"
        );
        assert_eq!(
            Report::Failed {
                failure: WriteError::Incomplete {
                    written: 10,
                    of: 900
                },
                lost: 1
            }
            .text("write()", "\"g\"", strerror),
            "gatelog: write() to \"g\" was incomplete: 10 of 900; 1 record lost since the last message"
        );
    }

    #[test]
    fn a_cut_write_keeps_whole_records_and_counts_the_rest() {
        let data = b"{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n";
        // Inside the second record.
        assert_eq!(
            cut(data, 11),
            Cut {
                whole: 8,
                partial: 3,
                lost: 2
            }
        );
        // Exactly between records: nothing to cut back.
        assert_eq!(
            cut(data, 16),
            Cut {
                whole: 16,
                partial: 0,
                lost: 1
            }
        );
        // Inside the first record.
        assert_eq!(
            cut(data, 1),
            Cut {
                whole: 0,
                partial: 1,
                lost: 3
            }
        );
        assert_eq!(
            cut(data, data.len()),
            Cut {
                whole: data.len(),
                partial: 0,
                lost: 0
            }
        );
        assert_eq!(records(data), 3);
    }
}
