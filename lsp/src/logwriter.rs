//! A log writer that never blocks the server: lines go through a bounded queue to a thread
//! that writes them to stderr; when the queue is full (the client does not read stderr) lines
//! are dropped and counted, and the count is written once the queue drains.
//!
//! It does not format or filter logs (`tracing-subscriber` does).

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender, TrySendError};
use std::sync::Arc;

/// Lines queued before new ones are dropped.
const QUEUE_LINES: usize = 4096;

/// A `MakeWriter` for `tracing-subscriber` that queues whole log lines.
#[derive(Clone)]
pub struct NonBlocking {
    tx: SyncSender<Vec<u8>>,
    /// Dropped lines not yet reported on the sink (the log thread resets it).
    unreported: Arc<AtomicU64>,
    /// Dropped lines since the writer was made (never reset).
    dropped: Arc<AtomicU64>,
}

impl NonBlocking {
    /// A writer to `sink` (stderr in the binary) on a thread of its own.
    pub fn new(mut sink: impl Write + Send + 'static) -> Self {
        let (tx, rx) = sync_channel::<Vec<u8>>(QUEUE_LINES);
        let unreported = Arc::new(AtomicU64::new(0));
        let dropped = Arc::new(AtomicU64::new(0));
        let seen = unreported.clone();
        std::thread::Builder::new()
            .name("ghostline-log".into())
            .spawn(move || {
                while let Ok(line) = rx.recv() {
                    let lost = seen.swap(0, Ordering::Relaxed);
                    if lost > 0 {
                        let _ = writeln!(sink, "ghostline: {lost} log lines dropped (stderr full)");
                    }
                    let _ = sink.write_all(&line);
                    let _ = sink.flush();
                }
            })
            .expect("spawn the log thread");
        NonBlocking {
            tx,
            unreported,
            dropped,
        }
    }

    /// Lines dropped since the writer was made.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// One log event, sent as a whole when it is dropped.
pub struct Line {
    buf: Vec<u8>,
    owner: NonBlocking,
}

impl Write for Line {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        match self.owner.tx.try_send(std::mem::take(&mut self.buf)) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.owner.unreported.fetch_add(1, Ordering::Relaxed);
                self.owner.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for NonBlocking {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line {
            buf: Vec::new(),
            owner: self.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::fmt::MakeWriter;

    /// A sink that never returns, like a pipe nobody reads.
    struct Stuck;
    impl Write for Stuck {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            std::thread::sleep(std::time::Duration::from_secs(3600));
            Ok(0)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_sink_drops_lines_instead_of_blocking() {
        let w = NonBlocking::new(Stuck);
        let t = std::time::Instant::now();
        for _ in 0..QUEUE_LINES * 2 {
            let mut line = w.make_writer();
            line.write_all(b"a log line\n").unwrap();
        }
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
        // The queue holds QUEUE_LINES and the log thread takes at most one line before the
        // sink blocks it for good, so at least QUEUE_LINES - 1 of the 2 × QUEUE_LINES are
        // dropped, however the threads are scheduled.
        assert!(w.dropped() >= QUEUE_LINES as u64 - 1, "{}", w.dropped());
    }
}
