//! The dispatch table: the `LanguageServer` handlers, each short (params → snapshot of the
//! session → a call into a room → conversion back).
//!
//! State lives in [`crate::state`], what lifecycle events imply in [`crate::lifecycle`], model
//! loading in [`crate::loader`], requests in [`crate::complete`] and [`crate::explain`]. CPU work
//! proportional to a document (function finding) runs on a blocking thread, never on the
//! protocol task.

use std::sync::Arc;

use serde_json::Value;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer};

use crate::config::{self, Config};
use crate::position::Encoding;
use crate::protocol;
use crate::state::{ClientCaps, Options, Session};
use crate::util::{invalid_params, request_failed};

/// The language server as tower-lsp-server sees it.
pub struct Backend {
    session: Arc<Session>,
}

impl Backend {
    /// A server talking to `client`.
    pub fn new(client: Client, options: Options) -> Self {
        Backend {
            session: Arc::new(Session::new(client, options)),
        }
    }

    /// The session (tests and in-process embedding).
    pub fn session(&self) -> &Arc<Session> {
        &self.session
    }

    /// `textDocument/inlineCompletion`.
    pub async fn inline_completion(
        &self,
        params: InlineCompletionParams,
    ) -> Result<InlineCompletionList> {
        let uri = &params.text_document_position.text_document.uri;
        if self.session.too_large(uri) {
            return Ok(InlineCompletionList { items: Vec::new() });
        }
        crate::complete::inline_completion(&self.session, params).await
    }

    fn debug_document(&self, args: &[Value]) -> Result<Option<Value>> {
        let uri = args
            .first()
            .and_then(|a| a.as_str().or_else(|| a.get("uri").and_then(Value::as_str)))
            .ok_or_else(|| invalid_params("expected [uri] or [{uri}]"))?;
        let uri: Uri = uri
            .parse()
            .map_err(|_| invalid_params(format!("not a URI: {uri}")))?;
        let snap = self.session.snapshot(&uri)?;
        Ok(Some(serde_json::json!({
            "uri": uri.as_str(),
            "version": snap.version,
            "languageId": snap.language_id,
            "text": snap.rope.to_string(),
            "tooLarge": snap.too_large,
        })))
    }

    fn debug_state(&self, args: &[Value]) -> Value {
        let c = self.session.counts();
        let w = self.session.workspace().walk_counts();
        let path = |p: &std::path::Path| p.to_string_lossy().into_owned();
        let mut state = serde_json::json!({
            "documents": c.documents,
            "flights": c.flights,
            "generations": c.generations,
            "indexWalks": w.started,
            "indexWalkRunning": w.running,
            "indexWalksByRoot": w.by_root.iter().map(|(r, n)| (path(r), Value::from(*n))).collect::<serde_json::Map<_, _>>(),
            "indexRoots": w.roots.iter().map(|r| path(r)).collect::<Vec<_>>(),
            "indexFileCount": w.files,
        });
        // `[{"files": true}]`: the files the index knows too.
        if args.first().is_some_and(|a| a["files"] == true) {
            let files: Vec<String> = self
                .session
                .workspace()
                .index_files()
                .iter()
                .map(|p| path(p))
                .collect();
            state["indexFiles"] = files.into();
        }
        state
    }
}

/// What the client can do, read from `initialize`.
fn client_caps(caps: &ClientCapabilities) -> ClientCaps {
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
            code_action_kinds: Some(vec![crate::explain::code_action_kind()]),
            ..Default::default()
        })),
        execute_command_provider: Some(ExecuteCommandOptions {
            commands: vec![
                protocol::EXPLAIN_COMMAND.into(),
                protocol::DEBUG_DOCUMENT_COMMAND.into(),
                protocol::DEBUG_LAST_COMPLETION_COMMAND.into(),
                protocol::DEBUG_STATE_COMMAND.into(),
            ],
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        let session = &self.session;
        let general = params.capabilities.general.as_ref();
        let encoding = Encoding::negotiate(general.and_then(|g| g.position_encodings.as_deref()));
        session.set_client(encoding, client_caps(&params.capabilities));
        if let Some(options) = &params.initialization_options {
            let mut config = Config::default();
            let update = config.apply(config::section(options));
            for key in update.unknown {
                tracing::warn!("unknown setting ghostline.{key} ignored");
            }
            for m in update.invalid {
                session.queue_message(MessageType::WARNING, m);
            }
            session.set_config(config);
        }
        session.workspace().set_roots(&params, &session.config());
        let client = params.client_info.as_ref().map_or("?", |c| c.name.as_str());
        tracing::info!(client, ?encoding, "initialize");
        Ok(InitializeResult {
            server_info: Some(ServerInfo {
                name: "ghostline".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            capabilities: server_caps(encoding),
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        // The background work starts once: a repeated `initialized` would load the model and
        // walk the workspace again.
        if !self.session.first_initialized() {
            tracing::warn!("repeated initialized notification ignored");
            return;
        }
        tokio::spawn(self.session.clone().start());
    }

    async fn shutdown(&self) -> Result<()> {
        self.session.stop_all();
        // The document the user was in comes back warm after a restart (issue 12): its KV state
        // goes to disk now, not only after the engine has been idle for a while.
        if let Some(engine) = self.session.engine().ready() {
            let (tx, rx) = tokio::sync::oneshot::channel();
            engine.persist(Box::new(move |ok| {
                let _ = tx.send(ok);
            }));
            let kept = tokio::time::timeout(std::time::Duration::from_secs(6), rx).await;
            tracing::debug!(?kept, "kept the current document's KV state");
        }
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let d = params.text_document;
        if self
            .session
            .open_text(d.uri.clone(), &d.text, d.version, &d.language_id)
        {
            self.session.index_document(&d.uri);
        }
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let uri = params.text_document.uri;
        let version = params.text_document.version;
        if !self.session.change(&uri, version, &params.content_changes) {
            tracing::warn!(
                uri = uri.as_str(),
                "didChange for a document that is not open"
            );
            return;
        }
        self.session.index_document(&uri);
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        self.session.workspace().refresh(&params.text_document.uri);
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let uri = params.text_document.uri;
        self.session.close(&uri);
        // Nothing more is evaluated ahead for a closed document.
        if let Some(engine) = self.session.engine().ready() {
            engine.prefill(uri.as_str().to_owned(), Vec::new());
        }
        self.session.workspace().closed(&uri);
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        let settings = params.settings;
        let empty = settings.is_null() || settings.as_object().is_some_and(|o| o.is_empty());
        let settings = if empty {
            match self.session.pull_settings().await {
                Some(pulled) => pulled,
                None => return,
            }
        } else {
            settings
        };
        self.session
            .apply_settings(config::section(&settings), true)
            .await;
    }

    async fn did_change_watched_files(&self, params: DidChangeWatchedFilesParams) {
        for change in params.changes {
            self.session.workspace().refresh(&change.uri);
        }
    }

    async fn did_change_workspace_folders(&self, params: DidChangeWorkspaceFoldersParams) {
        let config = self.session.config();
        let added = self
            .session
            .workspace()
            .folders_changed(&params.event, &config);
        self.session.walk_roots(added);
    }

    async fn completion(&self, params: CompletionParams) -> Result<Option<CompletionResponse>> {
        if self
            .session
            .too_large(&params.text_document_position.text_document.uri)
        {
            return Ok(None);
        }
        crate::complete::completion(&self.session, params).await
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        if self.session.too_large(&params.text_document.uri) {
            return Ok(None);
        }
        // Function finding is proportional to the document: off the protocol task.
        let session = self.session.clone();
        tokio::task::spawn_blocking(move || crate::explain::code_action(&session, params))
            .await
            .unwrap_or_else(|e| Err(request_failed(format!("code action failed: {e}"))))
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<Value>> {
        match params.command.as_str() {
            protocol::EXPLAIN_COMMAND => {
                let token = params.work_done_progress_params.work_done_token;
                crate::explain::execute(&self.session, &params.arguments, token)
                    .await
                    .map(Some)
            }
            protocol::DEBUG_DOCUMENT_COMMAND => self.debug_document(&params.arguments),
            protocol::DEBUG_LAST_COMPLETION_COMMAND => Ok(self.session.last_generation()),
            protocol::DEBUG_STATE_COMMAND => Ok(Some(self.debug_state(&params.arguments))),
            other => Err(invalid_params(format!("unknown command {other}"))),
        }
    }
}
