//! Small helpers every room of the server uses: a mutex lock that ignores poisoning and the
//! JSON-RPC error constructors.
//!
//! It knows nothing about the server's state or the protocol's flow.

use std::sync::Mutex;

use tower_lsp_server::jsonrpc::{Error, ErrorCode};

/// Locks a mutex, ignoring poisoning (a panic elsewhere must not take the server down).
pub fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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
