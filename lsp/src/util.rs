//! Small helpers every room of the server uses: a mutex lock that ignores poisoning, a stop
//! flag that trips when a handler ends, and the JSON-RPC error constructors.
//!
//! It knows nothing about the server's state or the protocol's flow.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tower_lsp_server::jsonrpc::{Error, ErrorCode};

/// Locks a mutex, ignoring poisoning (a panic elsewhere must not take the server down).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A flag that turns true when this guard is dropped: blocking work started for a handler (a
/// context build) reads it and stops once the handler has ended, however it ended (answered,
/// superseded, or dropped by `$/cancelRequest`).
pub struct StopOnDrop(Arc<AtomicBool>);

impl StopOnDrop {
    /// A new, untripped flag.
    pub fn new() -> StopOnDrop {
        StopOnDrop(Arc::new(AtomicBool::new(false)))
    }

    /// The flag, for the blocking work to check.
    pub fn flag(&self) -> Arc<AtomicBool> {
        self.0.clone()
    }
}

impl Default for StopOnDrop {
    fn default() -> Self {
        StopOnDrop::new()
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
