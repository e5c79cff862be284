//! ghostline's language server: LSP over stdio in front of the in-process inference engine
//! (`ghostline-inference`) and the repository context (`ghostline-context`).
//!
//! Code map:
//! - [`server`]: the `LanguageServer` handlers (the dispatch table);
//! - [`state`]: the session's state (documents and per-document state in a `DashMap`,
//!   settings, cache) with private fields and a snapshot per request;
//! - [`lifecycle`]: what settings changes and `initialized` imply (reloads, walks, watchers);
//! - [`loader`]: model loading, the engine's lifecycle and restarts after a failure;
//!   [`slot`]: the engine's slot it supervises;
//! - [`progress`]: work-done progress;
//! - [`util`]: the lock helper, blocking work that stops with its handler, error constructors;
//! - [`complete`]: inline completion and the completion fallback (snapshot → engine → shape);
//! - [`pipeline`]: the completion pipeline as pure functions (also `ghostline complete`'s);
//! - [`window`]: how much text around the cursor a request sends, and where its prefix starts;
//! - [`prefill`]: the prompt starts to evaluate ahead of the cursor;
//! - [`generation`]: model runs shared by the requests that can use them (typing adopts them);
//! - [`explain`]: the "Explain this function" code action and command;
//! - [`shaping`], [`cache`], [`position`], [`config`], [`document`], [`functions`]: pure
//!   modules with their own tests;
//! - [`workspace`]: workspace folders and repository context;
//! - [`framing`]: the transport: frames in and out, bad frames answered and skipped;
//! - [`logwriter`]: logs to stderr without ever blocking the server;
//! - [`protocol`]: the capabilities `initialize` negotiates, ghostline's custom notifications
//!   and commands; [`debug`]: the debug commands;
//! - [`trace`]: one span per request, panics answered as errors.

pub mod cache;
pub mod complete;
pub mod config;
pub mod debug;
pub mod document;
pub mod explain;
pub mod framing;
pub mod functions;
pub mod generation;
pub mod lifecycle;
pub mod loader;
pub mod logwriter;
pub mod pipeline;
pub mod position;
pub mod prefill;
pub mod progress;
pub mod protocol;
pub mod server;
pub mod shaping;
pub mod slot;
pub mod state;
pub mod trace;
pub mod util;
pub mod window;
pub mod workspace;

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tower_lsp_server::{LspService, Server};

pub use state::Options;

/// How many requests are handled at the same time. High, so that notifications (edits) are
/// never queued behind long requests such as an explanation.
const CONCURRENCY: usize = 64;
/// How long `exit` (or the end of the input) waits for the handlers still running.
const EXIT_GRACE: Duration = Duration::from_secs(1);
/// Size of the in-memory pipes between the framing layer and tower-lsp-server.
const PIPE_BYTES: usize = 1 << 16;

/// How the server ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    /// The process exit code: 0 after `shutdown`, else 1.
    pub code: i32,
}

/// Runs the language server on `input`/`output` (stdin/stdout for the binary, in-memory pipes
/// in tests) until `exit` or the end of the input, then waits at most [`EXIT_GRACE`] for the
/// handlers still running. Bad frames are answered and skipped ([`framing`]).
pub async fn serve<R, W>(options: Options, input: R, output: W) -> Exit
where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (service, socket) = LspService::build(|client| server::Backend::new(client, options))
        .custom_method(
            "textDocument/inlineCompletion",
            server::Backend::inline_completion,
        )
        .finish();
    let (to_service, service_in) = tokio::io::duplex(PIPE_BYTES);
    let (service_out, from_service) = tokio::io::duplex(PIPE_BYTES);
    let (frames, frames_rx) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    let writer = tokio::spawn(framing::write_frames(frames_rx, output));
    let copier = tokio::spawn(framing::copy_frames(
        tokio::io::BufReader::new(from_service),
        frames.clone(),
    ));
    let lsp = tokio::spawn(
        Server::new(service_in, service_out, socket)
            .concurrency_level(CONCURRENCY)
            .serve(trace::Traced::new(service)),
    );
    let ended = framing::pump(tokio::io::BufReader::new(input), to_service, frames).await;
    tracing::info!(
        exit = ended.exit,
        shutdown = ended.shutdown,
        "stopping: waiting at most {EXIT_GRACE:?} for running work"
    );
    let lsp_abort = lsp.abort_handle();
    if tokio::time::timeout(EXIT_GRACE, lsp).await.is_err() {
        tracing::warn!("handlers still running at exit: abandoned");
        lsp_abort.abort();
    }
    // tower-lsp-server's last frames, then the writer.
    let _ = tokio::time::timeout(Duration::from_millis(200), copier).await;
    let _ = tokio::time::timeout(Duration::from_millis(500), writer).await;
    Exit { code: ended.code() }
}
