//! The dispatch table: the `LanguageServer` handlers, each short (params → snapshot of the
//! session → a call into a room → conversion back).
//!
//! State lives in [`crate::state`], what lifecycle events imply in [`crate::lifecycle`], model
//! loading in [`crate::loader`], requests in [`crate::complete`] and [`crate::explain`], the
//! capabilities in [`crate::protocol`], the debug commands in [`crate::debug`]. CPU work
//! proportional to a document (function finding) runs on a blocking thread, never on the
//! protocol task.

use std::sync::Arc;

use serde_json::Value;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer};

use crate::config::{self, Config};
use crate::debug;
use crate::position::Encoding;
use crate::protocol;
use crate::state::{Options, Session};
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
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        let session = &self.session;
        let general = params.capabilities.general.as_ref();
        let encoding = Encoding::negotiate(general.and_then(|g| g.position_encodings.as_deref()));
        session.set_client(encoding, protocol::client_caps(&params.capabilities));
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
        Ok(protocol::initialize_result(encoding))
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
            protocol::DEBUG_DOCUMENT_COMMAND => debug::document(&self.session, &params.arguments),
            protocol::DEBUG_LAST_COMPLETION_COMMAND => debug::last_completion(&self.session),
            protocol::DEBUG_STATE_COMMAND => debug::state(&self.session, &params.arguments),
            other => Err(invalid_params(format!("unknown command {other}"))),
        }
    }
}
