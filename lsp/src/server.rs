//! The language server: shared state ([`Inner`]) and the LSP handlers ([`Backend`]).
//!
//! Handlers are short: params → snapshot of the state (taken before the first `.await`, so that
//! notifications that arrive meanwhile cannot interleave with it) → a call into a module
//! ([`crate::complete`], [`crate::explain`]) → conversion back. Locks are `std` mutexes held for
//! a few statements and never across an `.await`. Model work runs on the engine thread; the
//! model itself loads on a blocking thread after `initialized`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::oneshot;
use tower_lsp_server::jsonrpc::{Error, ErrorCode, Result};
use tower_lsp_server::ls_types::*;
use tower_lsp_server::{Client, LanguageServer};

use crate::cache::CompletionCache;
use crate::config::{self, Config};
use crate::document::Document;
use crate::generation::Generation;
use crate::position::{self, Encoding};
use crate::protocol::{self, State, StatusNotification, StatusParams};
use crate::workspace::Workspace;

pub use crate::loader::{EngineSlot, EngineState};
pub use crate::progress::WorkProgress;
use crate::progress::CLIENT_REQUEST_TIMEOUT;

/// Options from the command line.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--model`: the model when the settings name none.
    pub model: Option<PathBuf>,
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

/// A completion request waiting for its answer; a newer request (or an edit) makes it answer
/// empty at once. The model run it waits for is a [`Generation`], cancelled separately.
pub struct InFlight {
    /// Identifies the request.
    pub id: u64,
    /// Tells the request to answer with an empty result now.
    pub superseded: oneshot::Sender<()>,
}

impl InFlight {
    fn stop(self) {
        let _ = self.superseded.send(());
    }
}

/// The server's state, shared with background tasks.
pub struct Inner {
    /// Talks to the client.
    pub client: Client,
    /// Command-line options.
    pub options: Options,
    /// Open documents.
    pub docs: Mutex<HashMap<Uri, Document>>,
    /// Current settings.
    pub config: Mutex<Arc<Config>>,
    /// Negotiated position encoding.
    pub encoding: Mutex<Encoding>,
    /// Client capabilities.
    pub caps: Mutex<ClientCaps>,
    /// The model.
    pub engine: EngineSlot,
    /// Completion requests waiting, per document.
    pub inflight: Mutex<HashMap<Uri, InFlight>>,
    /// The running model run, per document.
    pub generations: Mutex<HashMap<Uri, Arc<Generation>>>,
    /// Recent suggestions.
    pub cache: Mutex<CompletionCache>,
    /// Workspace folders and the repository index.
    pub workspace: Workspace,
    /// Messages from `initializationOptions`, shown after `initialized`.
    pending_messages: Mutex<Vec<(MessageType, String)>>,
    seq: AtomicU64,
    /// Statistics of the last finished model run (`ghostline.debugLastCompletion`).
    pub last_generation: Mutex<Option<Value>>,
    /// Documents whose size the user was told about.
    told_too_large: Mutex<std::collections::HashSet<Uri>>,
}

/// Documents larger than this get no completions or code actions (their text stays in sync).
pub const MAX_DOCUMENT_BYTES: usize = 16 << 20;

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

impl Inner {
    /// Current settings.
    pub fn config(&self) -> Arc<Config> {
        lock(&self.config).clone()
    }

    /// Negotiated position encoding.
    pub fn encoding(&self) -> Encoding {
        *lock(&self.encoding)
    }

    /// Whether `uri` is over [`MAX_DOCUMENT_BYTES`]: its text stays in sync but it gets no
    /// completions or code actions; the user is told once per document.
    pub fn too_large(self: &Arc<Self>, uri: &Uri) -> bool {
        let bytes = lock(&self.docs).get(uri).map_or(0, |d| d.rope.len_bytes());
        if bytes <= MAX_DOCUMENT_BYTES {
            return false;
        }
        if lock(&self.told_too_large).insert(uri.clone()) {
            let inner = self.clone();
            let msg = format!(
                "ghostline: {} is {} MiB, over the {} MiB limit: no completions or code actions for it",
                uri.as_str(),
                bytes >> 20,
                MAX_DOCUMENT_BYTES >> 20
            );
            tokio::spawn(async move { inner.client.show_message(MessageType::WARNING, msg).await });
        }
        true
    }

    /// A fresh request number.
    pub fn next_id(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Sends `ghostline/status`.
    pub async fn status(&self, state: State, message: Option<String>, percentage: Option<u32>) {
        self.client
            .send_notification::<StatusNotification>(StatusParams {
                state,
                message,
                percentage,
            })
            .await;
    }

    /// Registers a completion for `uri`, stopping the one it supersedes.
    pub fn register_inflight(&self, uri: &Uri, flight: InFlight) {
        let old = lock(&self.inflight).insert(uri.clone(), flight);
        if let Some(old) = old {
            tracing::debug!(uri = uri.as_str(), "superseding completion {}", old.id);
            old.stop();
        }
    }

    /// Forgets completion `id` of `uri` (it finished or was dropped).
    pub fn unregister_inflight(&self, uri: &Uri, id: u64) {
        let mut map = lock(&self.inflight);
        if map.get(uri).is_some_and(|f| f.id == id) {
            map.remove(uri);
        }
    }

    /// Stops the completion running for `uri`, if any.
    pub fn stop_inflight(&self, uri: &Uri) {
        let old = lock(&self.inflight).remove(uri);
        if let Some(old) = old {
            old.stop();
        }
    }

    /// Applies a settings object; reports invalid values, logs unknown keys, reloads the model
    /// when an engine setting changed (and `reload` is set).
    pub async fn apply_settings(self: &Arc<Self>, settings: &Value, reload: bool) {
        let update = {
            let mut guard = lock(&self.config);
            let mut next = (**guard).clone();
            let update = next.apply(settings);
            *guard = Arc::new(next);
            update
        };
        for key in &update.unknown {
            tracing::warn!("unknown setting ghostline.{key} ignored");
        }
        for message in &update.invalid {
            tracing::warn!("{message}");
            self.client
                .show_message(MessageType::WARNING, message)
                .await;
        }
        if update.changed {
            tracing::info!("settings changed: {:?}", self.config());
            lock(&self.cache).clear();
            self.workspace
                .set_budget(self.config().repo_context_budget_tokens);
        }
        if update.engine_changed && reload {
            let inner = self.clone();
            tokio::spawn(async move { inner.load_model().await });
        }
    }

    /// Asks the client to report changes of source files and manifests on disk.
    async fn watch_files(&self) {
        if !lock(&self.caps).watch_files {
            return;
        }
        let watchers: Vec<FileSystemWatcher> = [
            "**/*.py",
            "**/*.pyi",
            "**/*.rs",
            "**/Cargo.toml",
            "**/.gitignore",
        ]
        .into_iter()
        .map(|glob| FileSystemWatcher {
            glob_pattern: GlobPattern::String(glob.into()),
            kind: None,
        })
        .collect();
        let options = DidChangeWatchedFilesRegistrationOptions { watchers };
        let registration = Registration {
            id: "ghostline-watch".into(),
            method: "workspace/didChangeWatchedFiles".into(),
            register_options: serde_json::to_value(options).ok(),
        };
        let register = self.client.register_capability(vec![registration]);
        match tokio::time::timeout(CLIENT_REQUEST_TIMEOUT, register).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("file watching not registered: {e}"),
            Err(_) => tracing::warn!("file watching not registered: no answer"),
        }
    }

    /// Pulls `workspace/configuration` for section `ghostline`, when the client supports it.
    async fn pull_settings(&self) -> Option<Value> {
        if !lock(&self.caps).configuration {
            return None;
        }
        let items = vec![ConfigurationItem {
            scope_uri: None,
            section: Some("ghostline".into()),
        }];
        match tokio::time::timeout(CLIENT_REQUEST_TIMEOUT, self.client.configuration(items)).await {
            Ok(Ok(mut values)) if !values.is_empty() => Some(values.swap_remove(0)),
            Ok(Ok(_)) => None,
            Ok(Err(e)) => {
                tracing::warn!("workspace/configuration failed: {e}");
                None
            }
            Err(_) => {
                tracing::warn!("workspace/configuration: no answer from the client");
                None
            }
        }
    }
}

/// The language server as tower-lsp-server sees it.
pub struct Backend {
    /// Shared state.
    pub inner: Arc<Inner>,
}

impl Backend {
    /// A server talking to `client`.
    pub fn new(client: Client, options: Options) -> Self {
        Backend {
            inner: Arc::new(Inner {
                client,
                options,
                docs: Mutex::new(HashMap::new()),
                config: Mutex::new(Arc::new(Config::default())),
                encoding: Mutex::new(Encoding::default()),
                caps: Mutex::new(ClientCaps::default()),
                engine: EngineSlot::new(),
                inflight: Mutex::new(HashMap::new()),
                generations: Mutex::new(HashMap::new()),
                cache: Mutex::new(CompletionCache::new()),
                workspace: Workspace::default(),
                pending_messages: Mutex::new(Vec::new()),
                seq: AtomicU64::new(0),
                last_generation: Mutex::new(None),
                told_too_large: Mutex::new(std::collections::HashSet::new()),
            }),
        }
    }

    /// `textDocument/inlineCompletion`.
    pub async fn inline_completion(
        &self,
        params: InlineCompletionParams,
    ) -> Result<InlineCompletionList> {
        if self
            .inner
            .too_large(&params.text_document_position.text_document.uri)
        {
            return Ok(InlineCompletionList { items: Vec::new() });
        }
        crate::complete::inline_completion(&self.inner, params).await
    }

    fn debug_document(&self, args: &[Value]) -> Result<Option<Value>> {
        let uri = args
            .first()
            .and_then(|a| a.as_str().or_else(|| a.get("uri").and_then(Value::as_str)))
            .ok_or_else(|| invalid_params("expected [uri] or [{uri}]"))?;
        let uri: Uri = uri
            .parse()
            .map_err(|_| invalid_params(format!("not a URI: {uri}")))?;
        let docs = lock(&self.inner.docs);
        let doc = docs
            .get(&uri)
            .ok_or_else(|| invalid_params(format!("document not open: {}", uri.as_str())))?;
        Ok(Some(serde_json::json!({
            "uri": uri.as_str(),
            "version": doc.version,
            "languageId": doc.language_id,
            "text": doc.rope.to_string(),
        })))
    }
}

impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> Result<InitializeResult> {
        let inner = &self.inner;
        let general = params.capabilities.general.as_ref();
        let encoding = Encoding::negotiate(general.and_then(|g| g.position_encodings.as_deref()));
        *lock(&inner.encoding) = encoding;
        *lock(&inner.caps) = ClientCaps {
            work_done_progress: params
                .capabilities
                .window
                .as_ref()
                .and_then(|w| w.work_done_progress)
                .unwrap_or(false),
            configuration: params
                .capabilities
                .workspace
                .as_ref()
                .and_then(|w| w.configuration)
                .unwrap_or(false),
            watch_files: params
                .capabilities
                .workspace
                .as_ref()
                .and_then(|w| w.did_change_watched_files.as_ref())
                .and_then(|w| w.dynamic_registration)
                .unwrap_or(false),
            inline_completion: params
                .capabilities
                .text_document
                .as_ref()
                .is_some_and(|t| t.inline_completion.is_some()),
        };
        if let Some(options) = &params.initialization_options {
            let mut config = Config::default();
            let update = config.apply(config::section(options));
            for key in update.unknown {
                tracing::warn!("unknown setting ghostline.{key} ignored");
            }
            lock(&inner.pending_messages).extend(
                update
                    .invalid
                    .into_iter()
                    .map(|m| (MessageType::WARNING, m)),
            );
            *lock(&inner.config) = Arc::new(config);
        }
        inner
            .workspace
            .set_roots(&params, inner.config().repo_context_budget_tokens);
        tracing::info!(
            client = params
                .client_info
                .as_ref()
                .map(|c| c.name.as_str())
                .unwrap_or("?"),
            ?encoding,
            "initialize"
        );
        Ok(InitializeResult {
            server_info: Some(ServerInfo {
                name: "ghostline".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
            capabilities: ServerCapabilities {
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
                code_action_provider: Some(CodeActionProviderCapability::Options(
                    CodeActionOptions {
                        code_action_kinds: Some(vec![crate::explain::code_action_kind()]),
                        ..Default::default()
                    },
                )),
                execute_command_provider: Some(ExecuteCommandOptions {
                    commands: vec![
                        protocol::EXPLAIN_COMMAND.into(),
                        protocol::DEBUG_DOCUMENT_COMMAND.into(),
                        protocol::DEBUG_LAST_COMPLETION_COMMAND.into(),
                    ],
                    ..Default::default()
                }),
                ..Default::default()
            },
            offset_encoding: None,
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        let inner = self.inner.clone();
        tokio::spawn(async move {
            let messages = std::mem::take(&mut *lock(&inner.pending_messages));
            for (typ, m) in messages {
                inner.client.show_message(typ, m).await;
            }
            if let Some(settings) = inner.pull_settings().await {
                inner
                    .apply_settings(config::section(&settings), false)
                    .await;
            }
            inner.workspace.start_indexing(inner.clone());
            inner.watch_files().await;
            inner.load_model().await;
        });
    }

    async fn shutdown(&self) -> Result<()> {
        let flights: Vec<InFlight> = lock(&self.inner.inflight).drain().map(|(_, f)| f).collect();
        for f in flights {
            f.stop();
        }
        for (_, g) in lock(&self.inner.generations).drain() {
            g.cancel.cancel();
        }
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let d = params.text_document;
        lock(&self.inner.docs).insert(
            d.uri.clone(),
            Document::new(&d.text, d.version, &d.language_id),
        );
        self.inner.workspace.document_changed(&d.uri, &self.inner);
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let uri = params.text_document.uri;
        let enc = self.inner.encoding();
        {
            let mut docs = lock(&self.inner.docs);
            let Some(doc) = docs.get_mut(&uri) else {
                tracing::warn!(
                    uri = uri.as_str(),
                    "didChange for a document that is not open"
                );
                return;
            };
            // Typing at the cursor of the running generation keeps it (a later request
            // adopts it); any other edit cancels it.
            let generation = lock(&self.inner.generations).get(&uri).cloned();
            if let Some(g) = generation {
                let insertion = match params.content_changes.as_slice() {
                    [c] => c.range.filter(|r| r.start == r.end).map(|r| {
                        (
                            position::to_char_clamped(&doc.rope, r.start, enc),
                            c.text.chars().count(),
                        )
                    }),
                    _ => None,
                };
                if !g.on_edit(insertion.map(|i| i.0), insertion.map_or(0, |i| i.1)) {
                    tracing::debug!("edit away from the cursor: generation {} cancelled", g.id);
                }
            }
            doc.apply(params.text_document.version, &params.content_changes, enc);
        }
        // The request for the previous version answers empty now.
        self.inner.stop_inflight(&uri);
        self.inner.workspace.document_changed(&uri, &self.inner);
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        self.inner.workspace.refresh(&params.text_document.uri);
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let uri = params.text_document.uri;
        lock(&self.inner.docs).remove(&uri);
        lock(&self.inner.told_too_large).remove(&uri);
        self.inner.stop_inflight(&uri);
        if let Some(g) = lock(&self.inner.generations).remove(&uri) {
            g.cancel.cancel();
        }
        self.inner.workspace.refresh(&uri);
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        let settings = params.settings;
        let empty = settings.is_null() || settings.as_object().is_some_and(|o| o.is_empty());
        if empty {
            if let Some(pulled) = self.inner.pull_settings().await {
                self.inner
                    .apply_settings(config::section(&pulled), true)
                    .await;
            }
        } else {
            self.inner
                .apply_settings(config::section(&settings), true)
                .await;
        }
    }

    async fn did_change_watched_files(&self, params: DidChangeWatchedFilesParams) {
        for change in params.changes {
            self.inner.workspace.refresh(&change.uri);
        }
    }

    async fn did_change_workspace_folders(&self, params: DidChangeWorkspaceFoldersParams) {
        self.inner
            .workspace
            .folders_changed(&params.event, self.inner.clone());
    }

    async fn completion(&self, params: CompletionParams) -> Result<Option<CompletionResponse>> {
        if self
            .inner
            .too_large(&params.text_document_position.text_document.uri)
        {
            return Ok(None);
        }
        crate::complete::completion(&self.inner, params).await
    }

    async fn code_action(&self, params: CodeActionParams) -> Result<Option<CodeActionResponse>> {
        if self.inner.too_large(&params.text_document.uri) {
            return Ok(None);
        }
        // Function finding is proportional to the document: off the protocol task.
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || crate::explain::code_action(&inner, params))
            .await
            .unwrap_or_else(|e| Err(request_failed(format!("code action failed: {e}"))))
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> Result<Option<Value>> {
        match params.command.as_str() {
            protocol::EXPLAIN_COMMAND => {
                let token = params.work_done_progress_params.work_done_token;
                crate::explain::execute(&self.inner, &params.arguments, token)
                    .await
                    .map(Some)
            }
            protocol::DEBUG_DOCUMENT_COMMAND => self.debug_document(&params.arguments),
            protocol::DEBUG_LAST_COMPLETION_COMMAND => {
                Ok(lock(&self.inner.last_generation).clone())
            }
            other => Err(invalid_params(format!("unknown command {other}"))),
        }
    }
}

/// Converts a char offset of `rope` to a position in the client's encoding.
pub fn to_lsp(rope: &ropey::Rope, offset: usize, enc: Encoding) -> Position {
    position::to_position(rope, offset, enc)
}
