//! ghostline's language server: LSP over stdio in front of the in-process inference engine
//! (`ghostline-inference`) and the repository context (`ghostline-context`).
//!
//! Code map:
//! - [`server`]: shared state, model loading, the `LanguageServer` handlers;
//! - [`complete`]: inline completion and the completion fallback (snapshot → engine → shape);
//! - [`generation`]: model runs shared by the requests that can use them (typing adopts them);
//! - [`explain`]: the "Explain this function" code action and command;
//! - [`shaping`], [`cache`], [`position`], [`config`], [`document`], [`functions`]: pure
//!   modules with their own tests;
//! - [`workspace`]: workspace folders and repository context;
//! - [`protocol`]: ghostline's custom notifications and commands;
//! - [`trace`]: one span per request, panics answered as errors.

pub mod cache;
pub mod complete;
pub mod config;
pub mod document;
pub mod explain;
pub mod functions;
pub mod generation;
pub mod pipeline;
pub mod position;
pub mod protocol;
pub mod server;
pub mod shaping;
pub mod trace;
pub mod workspace;

use tower_lsp_server::{LspService, Server};

pub use server::Options;

/// How many requests are handled at the same time. High, so that notifications (edits) are
/// never queued behind long requests such as an explanation.
const CONCURRENCY: usize = 64;

/// Runs the language server on stdin/stdout until the client exits.
pub async fn serve(options: Options) {
    let (service, socket) = LspService::build(|client| server::Backend::new(client, options))
        .custom_method(
            "textDocument/inlineCompletion",
            server::Backend::inline_completion,
        )
        .finish();
    let stdin = tokio::io::stdin();
    let stdout = tokio::io::stdout();
    Server::new(stdin, stdout, socket)
        .concurrency_level(CONCURRENCY)
        .serve(trace::Traced::new(service))
        .await;
}
