//! What follows from the session's lifecycle events: applying settings (from
//! `initializationOptions`, `didChangeConfiguration` or a `workspace/configuration` pull) and
//! what a change implies (cache cleared, index budget, a reload of the model, a walk of the
//! workspace), the file watchers, and the background work that `initialized` starts.
//!
//! It does not handle requests (see [`crate::server`]) or load models itself
//! ([`crate::loader`]).

use std::sync::Arc;

use serde_json::Value;
use tower_lsp_server::ls_types::*;

use crate::config;
use crate::progress::CLIENT_REQUEST_TIMEOUT;
use crate::state::Session;

impl Session {
    /// Applies a settings object; reports invalid values, logs unknown keys, reloads the model
    /// when an engine setting changed and walks the workspace when repository context was turned
    /// on (both when `reload` is set: a change after start-up).
    pub async fn apply_settings(self: &Arc<Self>, settings: &Value, reload: bool) {
        let before = self.config();
        let update = self.update_config(settings);
        for key in &update.unknown {
            tracing::warn!("unknown setting ghostline.{key} ignored");
        }
        for message in &update.invalid {
            tracing::warn!("{message}");
            self.client()
                .show_message(MessageType::WARNING, message)
                .await;
        }
        if update.changed {
            let now = self.config();
            tracing::info!("settings changed: {now:?}");
            self.clear_cache();
            self.workspace().configure(&now);
            // (`initialized` walks after applying the pulled settings anyway.)
            if reload && now.repo_context_enabled && !before.repo_context_enabled {
                self.start_indexing();
            }
        }
        if update.engine_changed && reload {
            let session = self.clone();
            tokio::spawn(async move { session.load_model().await });
        }
    }

    /// Walks every workspace root in the background when repository context is on; a root
    /// whose walk runs gets a new one that supersedes it.
    pub fn start_indexing(&self) {
        if self.config().repo_context_enabled {
            self.workspace()
                .start_indexing(self.client().clone(), self.caps().work_done_progress);
        }
    }

    /// Walks the workspace roots `roots` (canonical, just added) when repository context is on.
    pub fn walk_roots(&self, roots: Vec<std::path::PathBuf>) {
        if self.config().repo_context_enabled && !roots.is_empty() {
            self.workspace().walk_roots(
                roots,
                self.client().clone(),
                self.caps().work_done_progress,
            );
        }
    }

    /// The index sees the unsaved text of `uri` (opened or changed).
    pub fn index_document(self: &Arc<Self>, uri: &Uri) {
        if !self.config().repo_context_enabled {
            return;
        }
        let (session, key) = (self.clone(), uri.clone());
        self.workspace()
            .document_changed(uri, move || session.text(&key));
    }

    /// After `initialized`: queued messages, pulled settings, the workspace walk, file
    /// watchers, the model.
    pub async fn start(self: Arc<Self>) {
        for (typ, m) in self.take_messages() {
            self.client().show_message(typ, m).await;
        }
        if let Some(settings) = self.pull_settings().await {
            self.apply_settings(config::section(&settings), false).await;
        }
        self.start_indexing();
        self.watch_files().await;
        self.load_model().await;
    }

    /// Asks the client to report changes of source files and manifests on disk.
    async fn watch_files(&self) {
        if !self.caps().watch_files {
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
        let register = self.client().register_capability(vec![registration]);
        match tokio::time::timeout(CLIENT_REQUEST_TIMEOUT, register).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!("file watching not registered: {e}"),
            Err(_) => tracing::warn!("file watching not registered: no answer"),
        }
    }

    /// Pulls `workspace/configuration` for section `ghostline`, when the client supports it.
    pub async fn pull_settings(&self) -> Option<Value> {
        if !self.caps().configuration {
            return None;
        }
        let items = vec![ConfigurationItem {
            scope_uri: None,
            section: Some("ghostline".into()),
        }];
        match tokio::time::timeout(CLIENT_REQUEST_TIMEOUT, self.client().configuration(items)).await
        {
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
