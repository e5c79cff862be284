//! The workspace folders and the repository context that completions and explanations get.
//!
//! It maps document URIs to workspace-relative paths and a repository name, and owns the
//! repository index of `ghostline-context`, built on a background thread after `initialized` and
//! kept up to date from document and file-watch notifications. Requests never wait for the
//! index: until it is built they get no repository context.
//!
//! INTEGRATION POINT (ghostline-context): the index calls are marked below; until the crate
//! exports `Index`, `ContextConfig`, `context_for` and `definitions_for`, completions get no
//! repository context and explanations no imported definitions.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ghostline_inference::ContextBlock;
use tower_lsp_server::ls_types::{InitializeParams, Uri, WorkspaceFoldersChangeEvent};

use crate::server::{lock, Inner};

/// Workspace folders and the repository index.
#[derive(Default)]
pub struct Workspace {
    roots: Mutex<Vec<PathBuf>>,
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

impl Workspace {
    /// Reads the workspace folders (or the root URI) from `initialize`.
    #[allow(deprecated)]
    pub fn set_roots(&self, params: &InitializeParams) {
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
    }

    /// Adds and removes folders.
    pub fn folders_changed(&self, event: &WorkspaceFoldersChangeEvent) {
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

    /// Starts indexing the workspace in the background.
    pub fn start_indexing(&self, inner: Arc<Inner>) {
        // INTEGRATION POINT (ghostline-context): build `Index` over the roots on a blocking
        // thread, with work-done progress, and store it here.
        let _ = inner;
    }

    /// A document was opened, changed or saved.
    pub fn document_changed(&self, uri: &Uri, text: &str) {
        // INTEGRATION POINT (ghostline-context): update the index for this file.
        let _ = (uri, text);
    }

    /// A watched file changed on disk.
    pub fn file_changed(&self, uri: &Uri, deleted: bool) {
        // INTEGRATION POINT (ghostline-context): re-read or drop the file in the index.
        let _ = (uri, deleted);
    }

    /// Repository context for a completion in `loc` with document text `text`, within
    /// `budget_tokens`. Never waits for the index.
    pub fn context_for(
        &self,
        loc: &Location,
        text: &str,
        budget_tokens: usize,
        count_tokens: &dyn Fn(&str) -> usize,
    ) -> Vec<ContextBlock> {
        // INTEGRATION POINT (ghostline-context): `index.context_for(path, text, &count_tokens)`.
        let _ = (loc, text, budget_tokens, count_tokens);
        Vec::new()
    }

    /// Definitions used by the code in `range` of the document, for explanations.
    pub fn definitions_for(&self, loc: &Location, text: &str, range: std::ops::Range<usize>, budget_tokens: usize, count_tokens: &dyn Fn(&str) -> usize) -> Vec<ContextBlock> {
        // INTEGRATION POINT (ghostline-context): `index.definitions_for(...)`.
        let _ = (loc, text, range, budget_tokens, count_tokens);
        Vec::new()
    }
}

fn slash_path(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}
