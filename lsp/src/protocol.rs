//! ghostline's side of LSP: the capabilities `initialize` negotiates, and its additions (custom
//! notifications, command names and their parameters).
//!
//! Editor clients (editors/) rely on these names and shapes; change them together.

use serde::{Deserialize, Serialize};
use tower_lsp_server::ls_types::notification::Notification;
use tower_lsp_server::ls_types::*;

use crate::position::Encoding;

/// The command that explains a function: arguments `[{uri, position}]` or `[{uri, range}]`;
/// the result is Markdown.
pub const EXPLAIN_COMMAND: &str = "ghostline.explainFunction";
/// Test-only command: argument `uri` or `{uri}`; the result is `{version, text}` of the document
/// as the server holds it.
pub const DEBUG_DOCUMENT_COMMAND: &str = "ghostline.debugDocument";
/// Test and benchmark command: no arguments; the result describes the last finished model run
/// (`promptTokens`, `reusedTokens`, `shiftedTokens`, `evaluatedTokens`, `generatedTokens`,
/// `promptMs`, `firstTokenMs`, `totalMs`, `cold`: `Stats::fields`; and `stop`,
/// `prefillStarts`), or `null` before the first.
pub const DEBUG_LAST_COMPLETION_COMMAND: &str = "ghostline.debugLastCompletion";
/// Test command: the result counts the session's state: `documents` open, completion requests
/// waiting (`flights`), model runs registered (`generations`), the workspace walks
/// (`indexWalks` started, `indexWalkRunning`, `indexWalksByRoot`) and the index (`indexRoots`,
/// `indexFileCount`; with the argument `{"files": true}` also `indexFiles`, sorted).
pub const DEBUG_STATE_COMMAND: &str = "ghostline.debugState";

/// The kind of the "Explain this function" code action.
pub fn code_action_kind() -> CodeActionKind {
    CodeActionKind::new("ghostline.explain")
}

/// What the client can do, from `initialize`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientCaps {
    /// `window.workDoneProgress`.
    pub work_done_progress: bool,
    /// `workspace.configuration`.
    pub configuration: bool,
    /// `workspace.didChangeWatchedFiles.dynamicRegistration`.
    pub watch_files: bool,
    /// `textDocument.inlineCompletion`: the client shows ghost text, so `textDocument/completion`
    /// (the fallback) stays empty to avoid showing the same suggestion twice.
    pub inline_completion: bool,
}

/// What the client can do, read from `initialize`.
pub fn client_caps(caps: &ClientCapabilities) -> ClientCaps {
    let workspace = caps.workspace.as_ref();
    ClientCaps {
        work_done_progress: caps
            .window
            .as_ref()
            .and_then(|w| w.work_done_progress)
            .unwrap_or(false),
        configuration: workspace.and_then(|w| w.configuration).unwrap_or(false),
        watch_files: workspace
            .and_then(|w| w.did_change_watched_files.as_ref())
            .and_then(|w| w.dynamic_registration)
            .unwrap_or(false),
        inline_completion: caps
            .text_document
            .as_ref()
            .is_some_and(|t| t.inline_completion.is_some()),
    }
}

/// The answer to `initialize`: the server's name and version, and what it can do.
pub fn initialize_result(encoding: Encoding) -> InitializeResult {
    InitializeResult {
        server_info: Some(ServerInfo {
            name: "ghostline".into(),
            version: Some(env!("CARGO_PKG_VERSION").into()),
        }),
        capabilities: server_caps(encoding),
        offset_encoding: None,
    }
}

/// What the server can do.
fn server_caps(encoding: Encoding) -> ServerCapabilities {
    ServerCapabilities {
        position_encoding: Some(encoding.kind()),
        text_document_sync: Some(TextDocumentSyncCapability::Options(
            TextDocumentSyncOptions {
                open_close: Some(true),
                change: Some(TextDocumentSyncKind::INCREMENTAL),
                save: Some(TextDocumentSyncSaveOptions::Supported(true)),
                ..Default::default()
            },
        )),
        inline_completion_provider: Some(OneOf::Left(true)),
        completion_provider: Some(CompletionOptions {
            resolve_provider: Some(false),
            ..Default::default()
        }),
        code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
            code_action_kinds: Some(vec![code_action_kind()]),
            ..Default::default()
        })),
        execute_command_provider: Some(ExecuteCommandOptions {
            commands: vec![
                EXPLAIN_COMMAND.into(),
                DEBUG_DOCUMENT_COMMAND.into(),
                DEBUG_LAST_COMPLETION_COMMAND.into(),
                DEBUG_STATE_COMMAND.into(),
            ],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The server's state, for status bars.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// The model is loading.
    Loading,
    /// The model is loaded and nothing runs.
    Ready,
    /// A completion or explanation runs.
    Generating,
    /// The work finished.
    Idle,
    /// The model could not be loaded (the message says why).
    Error,
    /// Suggestions are off.
    Disabled,
}

/// Params of `ghostline/status`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusParams {
    /// The state.
    pub state: State,
    /// Details (model name, error).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Load progress, 0 to 100.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percentage: Option<u32>,
}

/// `ghostline/status`.
pub enum StatusNotification {}

impl Notification for StatusNotification {
    type Params = StatusParams;
    const METHOD: &'static str = "ghostline/status";
}

/// Params of `ghostline/explainProgress`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplainProgressParams {
    /// The progress token of the request, when it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<serde_json::Value>,
    /// The document being explained.
    pub uri: Uri,
    /// All the Markdown written so far.
    pub text: String,
    /// Whether the explanation is finished.
    pub done: bool,
}

/// `ghostline/explainProgress`.
pub enum ExplainProgressNotification {}

impl Notification for ExplainProgressNotification {
    type Params = ExplainProgressParams;
    const METHOD: &'static str = "ghostline/explainProgress";
}

/// The argument of [`EXPLAIN_COMMAND`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplainArgs {
    /// The document.
    pub uri: Uri,
    /// The cursor (the function around it is explained).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<Position>,
    /// A selection (the function around it, or the selection itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<Range>,
}
