//! The workspace folders and the repository context that completions and explanations get.
//!
//! It maps document URIs to workspace-relative paths and a repository name, and owns the
//! repository [`Index`] of `ghostline-context`: created at `initialize`, walked on a blocking
//! thread after `initialized` (with work-done progress), and kept up to date from document and
//! file-watch notifications. Requests never wait for the walk: the index answers from what it
//! has and reads imported files on demand. This module converts between LSP and the context
//! crate's plain paths; it does not decide budgets (settings do) or render prompts.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use ghostline_context::{ContextConfig, Index};
use ghostline_inference::ContextBlock;
use tower_lsp_server::ls_types::{InitializeParams, Uri, WorkspaceFoldersChangeEvent};

use crate::server::{lock, Inner, WorkProgress};

/// Workspace folders and the repository index.
#[derive(Default)]
pub struct Workspace {
    roots: Mutex<Vec<PathBuf>>,
    index: RwLock<Option<Arc<Index>>>,
}

/// Where a document lives in the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Absolute path, when the URI is a file.
    pub abs: Option<PathBuf>,
    /// Workspace-relative path with `/` separators (else the file name or the URI).
    pub rel: String,
    /// Name of the workspace folder holding it.
    pub repo: Option<String>,
}

fn convert(blocks: Vec<ghostline_context::ContextBlock>) -> Vec<ContextBlock> {
    blocks
        .into_iter()
        .map(|b| ContextBlock {
            path: b.path,
            text: b.text,
        })
        .collect()
}

impl Workspace {
    /// Reads the workspace folders (or the root URI) from `initialize` and creates the index.
    #[allow(deprecated)]
    pub fn set_roots(&self, params: &InitializeParams, budget_tokens: usize) {
        let mut roots: Vec<PathBuf> = params
            .workspace_folders
            .iter()
            .flatten()
            .filter_map(|f| f.uri.to_file_path().map(|p| p.into_owned()))
            .collect();
        if roots.is_empty() {
            if let Some(p) = params.root_uri.as_ref().and_then(|u| u.to_file_path()) {
                roots.push(p.into_owned());
            }
        }
        tracing::info!("workspace roots: {roots:?}");
        *lock(&self.roots) = roots;
        self.rebuild(budget_tokens);
    }

    fn rebuild(&self, budget_tokens: usize) {
        let roots = lock(&self.roots).clone();
        let index = (!roots.is_empty()).then(|| {
            Arc::new(Index::new(
                roots,
                ContextConfig {
                    budget_tokens,
                    ..ContextConfig::default()
                },
            ))
        });
        *self.index.write().unwrap_or_else(|e| e.into_inner()) = index;
    }

    fn index(&self) -> Option<Arc<Index>> {
        self.index.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The repository context budget changed.
    pub fn set_budget(&self, budget_tokens: usize) {
        if let Some(index) = self.index() {
            index.set_config(ContextConfig {
                budget_tokens,
                ..index.config()
            });
        }
    }

    /// Adds and removes folders, then re-indexes.
    pub fn folders_changed(&self, event: &WorkspaceFoldersChangeEvent, inner: Arc<Inner>) {
        {
            let mut roots = lock(&self.roots);
            for f in &event.removed {
                if let Some(p) = f.uri.to_file_path() {
                    roots.retain(|r| r != p.as_ref());
                }
            }
            for f in &event.added {
                if let Some(p) = f.uri.to_file_path() {
                    roots.push(p.into_owned());
                }
            }
        }
        self.rebuild(inner.config().repo_context_budget_tokens);
        self.start_indexing(inner);
    }

    /// Where `uri` lives.
    pub fn locate(&self, uri: &Uri) -> Location {
        let abs = uri.to_file_path().map(|p| p.into_owned());
        let roots = lock(&self.roots);
        if let Some(abs) = &abs {
            // The deepest root containing the file.
            if let Some(root) = roots
                .iter()
                .filter(|r| abs.starts_with(r))
                .max_by_key(|r| r.components().count())
            {
                let rel = abs.strip_prefix(root).unwrap_or(abs);
                return Location {
                    abs: Some(abs.clone()),
                    rel: slash_path(rel),
                    repo: root.file_name().map(|n| n.to_string_lossy().into_owned()),
                };
            }
            return Location {
                abs: Some(abs.clone()),
                rel: abs
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                repo: None,
            };
        }
        Location {
            abs: None,
            rel: uri.as_str().rsplit('/').next().unwrap_or("").to_owned(),
            repo: None,
        }
    }

    /// Walks the workspace in the background, with work-done progress.
    pub fn start_indexing(&self, inner: Arc<Inner>) {
        let Some(index) = self.index() else { return };
        if !inner.config().repo_context_enabled {
            return;
        }
        tokio::spawn(async move {
            let progress =
                WorkProgress::begin(&inner, None, "ghostline: indexing the workspace", None).await;
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, usize)>();
            let mut walk = tokio::task::spawn_blocking(move || {
                index.index_all(&mut |done, total| {
                    let _ = tx.send((done, total));
                })
            });
            let mut last_pct = None;
            let stats = loop {
                tokio::select! {
                    biased;
                    r = &mut walk => break r,
                    Some((done, total)) = rx.recv() => {
                        let pct = (done * 100).checked_div(total).unwrap_or(100) as u32;
                        if last_pct != Some(pct) {
                            last_pct = Some(pct);
                            progress.report(Some(format!("{done}/{total} files")), Some(pct)).await;
                        }
                    }
                }
            };
            match stats {
                Ok(stats) => {
                    tracing::info!(?stats, "workspace indexed");
                    progress.end(Some(format!("{} files", stats.files))).await;
                }
                Err(e) => {
                    tracing::error!("indexing crashed: {e}");
                    progress.end(Some("failed".into())).await;
                }
            }
        });
    }

    /// A document was opened or changed: the index sees its unsaved text. Parsing runs on a
    /// blocking thread and reads the latest text at that time, so bursts of edits are cheap.
    pub fn document_changed(&self, uri: &Uri, inner: &Arc<Inner>) {
        let (Some(index), Some(path)) = (self.index(), uri.to_file_path().map(|p| p.into_owned()))
        else {
            return;
        };
        if ghostline_context::language_for_path(&path).is_none()
            || !inner.config().repo_context_enabled
        {
            return;
        }
        let inner = inner.clone();
        let uri = uri.clone();
        tokio::task::spawn_blocking(move || {
            let text = lock(&inner.docs).get(&uri).map(|d| d.rope.to_string());
            if let Some(text) = text {
                if let Err(e) = index.update_file(&path, &text) {
                    tracing::debug!("not indexed: {e}");
                }
            }
        });
    }

    /// A document was saved or closed, or a watched file changed: the index re-reads the disk.
    pub fn refresh(&self, uri: &Uri) {
        let (Some(index), Some(path)) = (self.index(), uri.to_file_path().map(|p| p.into_owned()))
        else {
            return;
        };
        tokio::task::spawn_blocking(move || {
            if let Err(e) = index.refresh_path(&path) {
                tracing::debug!("not indexed: {e}");
            }
        });
    }

    /// Repository context for a completion in the file at `loc` with text `text` (runs on the
    /// calling thread: call it from a blocking-friendly one).
    pub fn context_for(
        &self,
        loc: &Location,
        text: &str,
        count_tokens: &dyn Fn(&str) -> usize,
    ) -> Vec<ContextBlock> {
        let (Some(index), Some(path)) = (self.index(), loc.abs.as_deref()) else {
            return Vec::new();
        };
        if ghostline_context::language_for_path(path).is_none() {
            return Vec::new();
        }
        convert(index.context_for(path, text, count_tokens))
    }

    /// Definitions from other files that `snippet` (part of the file at `loc`) uses.
    pub fn definitions_for(
        &self,
        loc: &Location,
        text: &str,
        snippet: &str,
        budget_tokens: usize,
        count_tokens: &dyn Fn(&str) -> usize,
    ) -> Vec<ContextBlock> {
        let (Some(index), Some(path)) = (self.index(), loc.abs.as_deref()) else {
            return Vec::new();
        };
        if ghostline_context::language_for_path(path).is_none() {
            return Vec::new();
        }
        convert(index.definitions_for(path, text, snippet, count_tokens, budget_tokens))
    }
}

fn slash_path(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}
