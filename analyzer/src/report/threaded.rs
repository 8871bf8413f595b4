//! A report written on its own thread. The JSON report writes every failure (its
//! lines escaped, its shared texts looked up): on a failure-dense log that was a
//! third of the thread that also joins and classifies, while the second core waited.
//! Failures go to the writer over a bounded channel, in order; the summary and the
//! end are written after the writer has taken the last failure, on the caller's
//! thread, so the output is byte for byte what the report writes unthreaded.

use std::io;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::thread::{Scope, ScopedJoinHandle};

use super::{Classified, Report, RunInfo, Summary};

/// Failures in flight between the classifier and the writer: enough to ride out a
/// slow write, few enough that memory stays flat.
const IN_FLIGHT: usize = 64;

type Inner<'a> = Box<dyn Report + Send + 'a>;

pub struct ThreadedReport<'scope, 'a> {
    tx: Option<SyncSender<Classified>>,
    writer: Option<ScopedJoinHandle<'scope, Option<Written<'a>>>>,
    /// The report when no writer runs: it could not be started, or it has stopped
    /// (after an error, or at the end).
    inner: Option<Inner<'a>>,
}

/// The report back from the writer, and how its writing went.
type Written<'a> = (Inner<'a>, io::Result<()>);

impl<'scope, 'a: 'scope> ThreadedReport<'scope, 'a> {
    /// Starts the writer; without a thread to be had (a process limit), the report
    /// is written on the caller's thread.
    pub fn spawn<'env>(scope: &'scope Scope<'scope, 'env>, inner: Inner<'a>) -> Self
    where
        'a: 'env,
    {
        let (tx, rx) = sync_channel::<Classified>(IN_FLIGHT);
        // The report goes to the writer only once it runs: a failed spawn must not
        // take it along.
        let (give, take) = sync_channel::<Inner<'a>>(1);
        let writer = std::thread::Builder::new()
            .name("gatelog-report".into())
            .spawn_scoped(scope, move || {
                let mut inner = take.recv().ok()?;
                for c in rx {
                    if let Err(e) = inner.failure(&c) {
                        // Returning drops the receiver: the next send fails, and the
                        // classifier stops reading.
                        return Some((inner, Err(e)));
                    }
                }
                Some((inner, Ok(())))
            });
        let unthreaded = |inner| ThreadedReport {
            tx: None,
            writer: None,
            inner: Some(inner),
        };
        let Ok(writer) = writer else {
            return unthreaded(inner);
        };
        if let Err(returned) = give.send(inner) {
            // The writer is gone already; it took nothing.
            let _ = writer.join();
            return unthreaded(returned.0);
        }
        ThreadedReport {
            tx: Some(tx),
            writer: Some(writer),
            inner: None,
        }
    }

    /// Stops the writer (it takes every failure already sent) and takes the report
    /// back, with the writer's error if a write failed.
    fn stop(&mut self) -> io::Result<()> {
        self.tx = None;
        let Some(writer) = self.writer.take() else {
            return Ok(());
        };
        match writer.join() {
            Ok(Some((inner, result))) => {
                self.inner = Some(inner);
                result
            }
            Ok(None) => Err(io::Error::other(
                "the report writer stopped before it began",
            )),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

impl<'scope, 'a: 'scope> Report for ThreadedReport<'scope, 'a> {
    fn failure(&mut self, c: &Classified) -> io::Result<()> {
        self.failure_owned(c.clone())
    }

    fn failure_owned(&mut self, c: Classified) -> io::Result<()> {
        if let Some(tx) = &self.tx {
            if tx.send(c).is_ok() {
                return Ok(());
            }
            // The writer hung up: it failed, and says how when joined.
            return self.stop();
        }
        match &mut self.inner {
            Some(inner) => inner.failure(&c),
            None => Err(io::Error::other("the report writer has stopped")),
        }
    }

    fn finish(&mut self, summary: &Summary, run: &RunInfo) -> io::Result<()> {
        self.stop()?;
        match &mut self.inner {
            Some(inner) => inner.finish(summary, run),
            None => Err(io::Error::other("the report writer has stopped")),
        }
    }
}
