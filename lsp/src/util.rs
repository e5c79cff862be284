//! Small helpers every room of the server uses: a mutex lock that ignores poisoning, blocking
//! work that stops when its handler ends or its deadline passes, and the JSON-RPC error
//! constructors.
//!
//! It knows nothing about the server's state or the protocol's flow.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ghostline_context::Stop;

use tower_lsp_server::jsonrpc::{Error, ErrorCode};

/// Locks a mutex, ignoring poisoning (a panic elsewhere must not take the server down).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `work` on a blocking thread with a [`Stop`] that says stop once the returned future
/// has ended or was dropped — however the handler awaiting it ended: answered, superseded, or
/// dropped by `$/cancelRequest` — and at `deadline`. `None` when the work panicked.
///
/// Context building for completions and definitions for explanations run this way: past the
/// deadline the request goes on without them rather than late.
pub async fn blocking_until<T: Send + 'static>(
    deadline: Option<Instant>,
    work: impl FnOnce(Stop<'_>) -> T + Send + 'static,
) -> Option<T> {
    let guard = StopOnDrop::new();
    let flag = guard.flag();
    let done = tokio::task::spawn_blocking(move || {
        let mut stop = Stop::flag(&flag);
        if let Some(d) = deadline {
            stop = stop.until(d);
        }
        work(stop)
    })
    .await;
    drop(guard);
    done.ok()
}

/// A flag that turns true when this guard is dropped: blocking work started for a handler
/// reads it and stops once the handler has ended (see [`blocking_until`]).
struct StopOnDrop(Arc<AtomicBool>);

impl StopOnDrop {
    /// A new, untripped flag.
    fn new() -> StopOnDrop {
        StopOnDrop(Arc::new(AtomicBool::new(false)))
    }

    /// The flag, for the blocking work to check.
    fn flag(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// An `InvalidParams` error.
pub fn invalid_params(message: impl Into<String>) -> Error {
    Error::invalid_params(message.into())
}

/// A `RequestFailed` (-32803) error.
pub fn request_failed(message: impl Into<String>) -> Error {
    Error {
        code: ErrorCode::ServerError(-32803),
        message: message.into().into(),
        data: None,
    }
}
