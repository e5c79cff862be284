//! The workspace folders and the repository context that completions and explanations get.
//!
//! It maps document URIs to workspace-relative paths and a repository name, and owns the
//! repository [`Index`] of `ghostline-context`: created at `initialize`, walked on a blocking
//! thread after `initialized` (with work-done progress), and kept up to date from document and
//! file-watch notifications (a closed document also leaves the index's recently edited
//! files). Requests never wait for the walk: the index answers from what it
//! has and reads imported files on demand. This module converts between LSP and the context
//! crate's plain paths; it does not decide budgets (settings do) or render prompts.
//!
//! Background work is supervised: walks are per root, at most one per root at a time (a newer
//! walk of a root cancels the older one and starts once it has stopped); adding a folder walks
//! only that folder, removing one drops its files, and a change that adds and removes nothing
//! (or a repeated `initialized`) walks nothing. Updates of one file are serialized (a per-path
//! lock), so the disk re-read that `didClose` asks for always lands after the unsaved text of
//! an edit that raced with it, and an update that finds the document closed changes nothing.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use ghostline_context::{ContextConfig, Index, Stop, Stopped};
use ghostline_inference::ContextBlock;
use ropey::Rope;
use tower_lsp_server::ls_types::{InitializeParams, Uri, WorkspaceFoldersChangeEvent};
use tower_lsp_server::Client;

use crate::config::Config;
use crate::progress::WorkProgress;
use crate::util::lock;

/// Stripes of the per-path update lock.
const PATH_LOCKS: usize = 64;

/// Workspace folders and the repository index.
pub struct Workspace {
    roots: Mutex<Vec<PathBuf>>,
    index: RwLock<Option<Arc<Index>>>,
    /// The walk of each root (canonical) that was asked for and has not ended.
    walks: Mutex<HashMap<PathBuf, RootWalk>>,
    walks_started: AtomicUsize,
    /// Walks started, by root (canonical).
    walks_by_root: Mutex<HashMap<PathBuf, usize>>,
    path_locks: Vec<Mutex<()>>,
    /// Test hook (`fake.contextDelayMs`): milliseconds a context query waits before it starts.
    test_context_delay_ms: AtomicU64,
}

impl Default for Workspace {
    fn default() -> Self {
        Workspace {
            roots: Mutex::default(),
            index: RwLock::default(),
            walks: Mutex::default(),
            walks_started: AtomicUsize::new(0),
            walks_by_root: Mutex::default(),
            path_locks: (0..PATH_LOCKS).map(|_| Mutex::new(())).collect(),
            test_context_delay_ms: AtomicU64::new(0),
        }
    }
}

/// The newest walk of one root: a newer one cancels it, and starts after it has stopped.
struct RootWalk {
    /// Set to stop it; also tells which walk this is (to forget only itself when it ends).
    cancel: Arc<AtomicBool>,
    done: tokio::sync::watch::Receiver<bool>,
}

/// Counts of the walks (`ghostline.debugState`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkCounts {
    /// Walks started since the server started.
    pub started: usize,
    /// Whether one runs now.
    pub running: bool,
    /// Walks started, by root.
    pub by_root: Vec<(PathBuf, usize)>,
    /// The index's roots (canonical).
    pub roots: Vec<PathBuf>,
    /// Source files the index knows.
    pub files: usize,
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

/// The index's settings from the server's, the rest kept from `base`.
fn context_config(config: &Config, base: ContextConfig) -> ContextConfig {
    ContextConfig {
        budget_tokens: config.repo_context_budget_tokens,
        recent_files: config.repo_context_recent_files,
        ..base
    }
}

/// The blocks for the engine. Logs, at debug level, which blocks a request gets and a digest
/// of their bytes (equal digests: byte-identical blocks, the prompt start unchanged; see
/// `bench-typing --context`), and their text at trace level.
fn convert(blocks: Vec<ghostline_context::ContextBlock>) -> Vec<ContextBlock> {
    if tracing::enabled!(tracing::Level::DEBUG) {
        let mut digest = std::collections::hash_map::DefaultHasher::new();
        blocks.hash(&mut digest);
        let paths: Vec<&str> = blocks.iter().map(|b| b.path.as_str()).collect();
        tracing::debug!(
            blocks = blocks.len(),
            paths = %paths.join(","),
            digest = format_args!("{:016x}", digest.finish()),
            "repository context"
        );
        for b in &blocks {
            tracing::trace!(path = %b.path, text = %b.text, "context block");
        }
    }
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
    pub fn set_roots(&self, params: &InitializeParams, config: &Config) {
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
        self.rebuild(config);
    }

    /// A workspace of `roots` outside an editor (`ghostline complete`), with its index created
    /// (not walked yet: see [`Workspace::walk_now`]).
    pub fn with_roots(roots: Vec<PathBuf>, config: &Config) -> Workspace {
        let ws = Workspace::default();
        *lock(&ws.roots) = roots;
        ws.rebuild(config);
        ws
    }

    /// Walks the whole workspace on the calling thread, as the server does in the background
    /// after `initialized`; `None` without an index.
    pub fn walk_now(&self) -> Option<ghostline_context::IndexStats> {
        let index = self.index()?;
        self.walks_started.fetch_add(1, Ordering::SeqCst);
        Some(index.index_all(&mut |_, _| {}))
    }

    /// The unsaved text of the document at `path` on the calling thread, as `didOpen` gives it
    /// to the index (see [`Workspace::document_changed`]).
    pub fn open_now(&self, path: &Path, text: &str) {
        let Some(index) = self.index() else {
            return;
        };
        if ghostline_context::language_for_path(path).is_none() {
            return;
        }
        let _serial = lock(self.path_lock(path));
        if let Err(e) = index.update_file(path, text) {
            tracing::debug!("not indexed: {e}");
        }
    }

    fn rebuild(&self, config: &Config) {
        self.test_context_delay_ms
            .store(config.fake_context_delay_ms, Ordering::Relaxed);
        let roots = lock(&self.roots).clone();
        let index = (!roots.is_empty()).then(|| {
            Arc::new(Index::new(
                roots,
                context_config(config, ContextConfig::default()),
            ))
        });
        *self.index.write().unwrap_or_else(|e| e.into_inner()) = index;
    }

    fn index(&self) -> Option<Arc<Index>> {
        self.index.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The settings changed: the index takes the repository context's budget and sources.
    pub fn configure(&self, config: &Config) {
        self.test_context_delay_ms
            .store(config.fake_context_delay_ms, Ordering::Relaxed);
        if let Some(index) = self.index() {
            index.set_config(context_config(config, index.config()));
        }
    }

    /// Adds and removes folders: a removed folder's walk stops and its files leave the index;
    /// returns the added roots (canonical) for the caller to walk. A change that adds and
    /// removes nothing changes nothing.
    pub fn folders_changed(
        &self,
        event: &WorkspaceFoldersChangeEvent,
        config: &Config,
    ) -> Vec<PathBuf> {
        if event.added.is_empty() && event.removed.is_empty() {
            tracing::debug!("workspace folders change with nothing added or removed: ignored");
            return Vec::new();
        }
        let removed: Vec<PathBuf> = event
            .removed
            .iter()
            .filter_map(|f| f.uri.to_file_path().map(|p| p.into_owned()))
            .collect();
        let added: Vec<PathBuf> = event
            .added
            .iter()
            .filter_map(|f| f.uri.to_file_path().map(|p| p.into_owned()))
            .collect();
        {
            let mut roots = lock(&self.roots);
            roots.retain(|r| !removed.contains(r));
            for p in &added {
                if !roots.contains(p) {
                    roots.push(p.clone());
                }
            }
        }
        let Some(index) = self.index() else {
            self.rebuild(config);
            return self.index().map(|i| i.roots()).unwrap_or_default();
        };
        for root in &removed {
            if let Some(real) = index.remove_root(root) {
                self.cancel_walk(&real);
                tracing::info!(root = %real.display(), "workspace folder removed");
            }
        }
        let mut walk = Vec::new();
        for root in &added {
            if let Some(real) = index.add_root(root) {
                tracing::info!(root = %real.display(), "workspace folder added");
                walk.push(real);
            }
        }
        walk
    }

    /// Stops the walk of `root`, if one runs.
    fn cancel_walk(&self, root: &Path) {
        if let Some(w) = lock(&self.walks).get(root) {
            w.cancel.store(true, Ordering::SeqCst);
        }
    }

    /// Where `uri` lives.
    pub fn locate(&self, uri: &Uri) -> Location {
        match uri.to_file_path() {
            Some(abs) => self.locate_path(&abs),
            None => Location {
                abs: None,
                rel: uri.as_str().rsplit('/').next().unwrap_or("").to_owned(),
                repo: None,
            },
        }
    }

    /// Where the file at the absolute path `abs` lives.
    pub fn locate_path(&self, abs: &Path) -> Location {
        let roots = lock(&self.roots);
        // The deepest root containing the file.
        match roots
            .iter()
            .filter(|r| abs.starts_with(r))
            .max_by_key(|r| r.components().count())
        {
            Some(root) => Location {
                abs: Some(abs.to_path_buf()),
                rel: slash_path(abs.strip_prefix(root).unwrap_or(abs)),
                repo: root.file_name().map(|n| n.to_string_lossy().into_owned()),
            },
            None => Location {
                abs: Some(abs.to_path_buf()),
                rel: abs
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                repo: None,
            },
        }
    }

    /// Walks every root in the background (see [`Workspace::walk_roots`]).
    pub fn start_indexing(self: &Arc<Self>, client: Client, can_create: bool) {
        let Some(index) = self.index() else {
            return;
        };
        self.walk_roots(index.roots(), client, can_create);
    }

    /// Walks `roots` (canonical) in the background, each on its own, with work-done progress
    /// (a token created with `client` when `can_create`). A root whose walk runs gets a new
    /// one: the old one is cancelled and the new one starts after it has stopped, so at most
    /// one walk per root runs at a time, and the newest wins.
    pub fn walk_roots(self: &Arc<Self>, roots: Vec<PathBuf>, client: Client, can_create: bool) {
        for root in roots {
            let cancel = Arc::new(AtomicBool::new(false));
            let (done_tx, done) = tokio::sync::watch::channel(false);
            let previous = {
                let mut walks = lock(&self.walks);
                let previous = walks.insert(
                    root.clone(),
                    RootWalk {
                        cancel: cancel.clone(),
                        done,
                    },
                );
                previous.map(|p| {
                    p.cancel.store(true, Ordering::SeqCst);
                    p.done
                })
            };
            if previous.is_some() {
                tracing::debug!(root = %root.display(), "a walk of this root runs: it is cancelled for a new one");
            }
            let (ws, client) = (self.clone(), client.clone());
            tokio::spawn(async move {
                if let Some(mut previous) = previous {
                    let _ = previous.wait_for(|done| *done).await;
                }
                if !cancel.load(Ordering::SeqCst) {
                    if let Some(index) = ws.index() {
                        ws.walk_once(index, &root, &cancel, &client, can_create)
                            .await;
                    }
                }
                let _ = done_tx.send(true);
                let mut walks = lock(&ws.walks);
                if walks
                    .get(&root)
                    .is_some_and(|w| Arc::ptr_eq(&w.cancel, &cancel))
                {
                    walks.remove(&root);
                }
            });
        }
    }

    /// Counts of the walks.
    pub fn walk_counts(&self) -> WalkCounts {
        let mut by_root: Vec<(PathBuf, usize)> = lock(&self.walks_by_root)
            .iter()
            .map(|(r, n)| (r.clone(), *n))
            .collect();
        by_root.sort();
        let index = self.index();
        WalkCounts {
            started: self.walks_started.load(Ordering::SeqCst),
            running: !lock(&self.walks).is_empty(),
            by_root,
            roots: index.as_ref().map(|i| i.roots()).unwrap_or_default(),
            files: index.as_ref().map_or(0, |i| i.len()),
        }
    }

    /// The source files the index knows (`ghostline.debugState` with `files`).
    pub fn index_files(&self) -> Vec<PathBuf> {
        self.index().map(|i| i.files()).unwrap_or_default()
    }

    async fn walk_once(
        &self,
        index: Arc<Index>,
        root: &Path,
        cancel: &Arc<AtomicBool>,
        client: &Client,
        can_create: bool,
    ) {
        let n = self.walks_started.fetch_add(1, Ordering::SeqCst) + 1;
        *lock(&self.walks_by_root)
            .entry(root.to_path_buf())
            .or_default() += 1;
        tracing::info!(walk = n, root = %root.display(), "walking the workspace");
        let progress = WorkProgress::begin(
            client,
            can_create,
            None,
            "ghostline: indexing the workspace",
            None,
        )
        .await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, usize)>();
        let (flag, at) = (cancel.clone(), root.to_path_buf());
        let mut walk = tokio::task::spawn_blocking(move || {
            index.index_root(&at, Stop::flag(&flag), &mut |done, total| {
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
            Ok(Ok(stats)) => {
                tracing::info!(walk = n, root = %root.display(), ?stats, "workspace indexed");
                progress.end(Some(format!("{} files", stats.files))).await;
            }
            Ok(Err(why)) => {
                tracing::info!(walk = n, root = %root.display(), "workspace walk {why}");
                progress.end(Some("stopped".into())).await;
            }
            Err(e) => {
                tracing::error!("indexing crashed: {e}");
                progress.end(Some("failed".into())).await;
            }
        }
    }

    /// The update lock of `path`.
    fn path_lock(&self, path: &Path) -> &Mutex<()> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        path.hash(&mut h);
        &self.path_locks[(h.finish() as usize) % PATH_LOCKS]
    }

    /// A document was opened or changed: the index sees its unsaved text, which `text` reads
    /// (`None`: the document was closed meanwhile, and the index keeps the disk's text).
    /// Parsing runs on a blocking thread and reads the latest text at that time, so bursts of
    /// edits are cheap.
    pub fn document_changed(
        self: &Arc<Self>,
        uri: &Uri,
        text: impl FnOnce() -> Option<String> + Send + 'static,
    ) {
        let (Some(index), Some(path)) = (self.index(), uri.to_file_path().map(|p| p.into_owned()))
        else {
            return;
        };
        if ghostline_context::language_for_path(&path).is_none() {
            return;
        }
        let ws = self.clone();
        tokio::task::spawn_blocking(move || {
            let _serial = lock(ws.path_lock(&path));
            if let Some(text) = text() {
                if let Err(e) = index.update_file(&path, &text) {
                    tracing::debug!("not indexed: {e}");
                }
            }
        });
    }

    /// A document was saved, or a watched file changed: the index re-reads the disk.
    pub fn refresh(self: &Arc<Self>, uri: &Uri) {
        self.reread(uri, false);
    }

    /// A document was closed: the index re-reads the disk, and the document leaves the
    /// recently edited files.
    pub fn closed(self: &Arc<Self>, uri: &Uri) {
        self.reread(uri, true);
    }

    fn reread(self: &Arc<Self>, uri: &Uri, closed: bool) {
        let (Some(index), Some(path)) = (self.index(), uri.to_file_path().map(|p| p.into_owned()))
        else {
            return;
        };
        let ws = self.clone();
        tokio::task::spawn_blocking(move || {
            let _serial = lock(ws.path_lock(&path));
            if closed {
                index.close_file(&path);
            }
            if let Err(e) = index.refresh_path(&path) {
                tracing::debug!("not indexed: {e}");
            }
        });
    }

    /// The repository context for a completion at char `cursor` of `rope` (the file at `loc`)
    /// whose prompt's prefix starts at char `window_start`, as `config` asks: the use-driven
    /// context (`repoContext.selection` `"uses"`, the default) or the import-driven one
    /// (`"files"`), empty when it is off (see [`wants_context`]) or when `stop` says so first. Runs on the calling thread. The editor's
    /// requests and `ghostline complete` both build their context here.
    #[allow(clippy::too_many_arguments)]
    pub fn completion_context(
        &self,
        loc: &Location,
        rope: &Rope,
        cursor: usize,
        window_start: usize,
        config: &Config,
        count_tokens: &dyn Fn(&str) -> usize,
        stop: Stop,
    ) -> Vec<ContextBlock> {
        if !wants_context(config, loc) {
            return Vec::new();
        }
        let text = rope.to_string();
        if config.repo_context_by_use {
            let focus = ghostline_context::Focus {
                cursor: rope.char_to_byte(cursor.min(rope.len_chars())),
                window_start: rope.char_to_byte(window_start.min(rope.len_chars())),
            };
            self.context_at(loc, &text, focus, count_tokens, stop)
        } else {
            self.context_for(loc, &text, count_tokens, stop)
        }
    }

    /// Repository context for a completion in the file at `loc` with text `text` (runs on the
    /// calling thread: call it from a blocking-friendly one). Empty when `stop` says so first
    /// (superseded, cancelled or past the request's budget): never a partial context.
    pub fn context_for(
        &self,
        loc: &Location,
        text: &str,
        count_tokens: &dyn Fn(&str) -> usize,
        stop: Stop,
    ) -> Vec<ContextBlock> {
        let (Some(index), Some(path)) = (self.index(), loc.abs.as_deref()) else {
            return Vec::new();
        };
        if ghostline_context::language_for_path(path).is_none() {
            return Vec::new();
        }
        if let Err(why) = self.test_delay(stop) {
            tracing::debug!("repository context given up: {why}");
            return Vec::new();
        }
        convert(given_up(index.context_for_until(
            path,
            text,
            count_tokens,
            stop,
        )))
    }

    /// The use-driven repository context for a completion at `focus` (byte offsets into
    /// `text`) in the file at `loc` (runs on the calling thread; empty when `stop` says so).
    pub fn context_at(
        &self,
        loc: &Location,
        text: &str,
        focus: ghostline_context::Focus,
        count_tokens: &dyn Fn(&str) -> usize,
        stop: Stop,
    ) -> Vec<ContextBlock> {
        let (Some(index), Some(path)) = (self.index(), loc.abs.as_deref()) else {
            return Vec::new();
        };
        if ghostline_context::language_for_path(path).is_none() {
            return Vec::new();
        }
        if let Err(why) = self.test_delay(stop) {
            tracing::debug!("repository context given up: {why}");
            return Vec::new();
        }
        convert(given_up(index.context_at_until(
            path,
            text,
            focus,
            count_tokens,
            stop,
        )))
    }

    /// The test hook's wait (`fake.contextDelayMs`; none unless set): sleeps in small steps
    /// until the delay has passed, or `stop` says so.
    fn test_delay(&self, stop: Stop) -> Result<(), Stopped> {
        let ms = self.test_context_delay_ms.load(Ordering::Relaxed);
        if ms == 0 {
            return Ok(());
        }
        let until = std::time::Instant::now() + std::time::Duration::from_millis(ms);
        while std::time::Instant::now() < until {
            stop.check_now()?;
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Ok(())
    }

    /// Definitions from other files that `snippet` (part of the file at `loc`) uses (empty when
    /// `stop` says so first).
    pub fn definitions_for(
        &self,
        loc: &Location,
        text: &str,
        snippet: &str,
        budget_tokens: usize,
        count_tokens: &dyn Fn(&str) -> usize,
        stop: Stop,
    ) -> Vec<ContextBlock> {
        let (Some(index), Some(path)) = (self.index(), loc.abs.as_deref()) else {
            return Vec::new();
        };
        if ghostline_context::language_for_path(path).is_none() {
            return Vec::new();
        }
        convert(given_up(index.definitions_for_until(
            path,
            text,
            snippet,
            count_tokens,
            budget_tokens,
            stop,
        )))
    }
}

/// Whether a completion in the file at `loc` gets repository context under `config`
/// (`repoContext.enabled`, a budget, and a file on disk).
pub fn wants_context(config: &Config, loc: &Location) -> bool {
    config.repo_context_enabled && config.repo_context_budget_tokens > 0 && loc.abs.is_some()
}

/// A query's blocks, or none when it gave up (logged: the request goes on without context).
fn given_up(
    r: Result<Vec<ghostline_context::ContextBlock>, Stopped>,
) -> Vec<ghostline_context::ContextBlock> {
    r.unwrap_or_else(|why| {
        tracing::debug!("repository context given up: {why}");
        Vec::new()
    })
}

fn slash_path(p: &Path) -> String {
    p.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_index_takes_the_budget_and_the_recent_files_setting() {
        let mut config = Config::default();
        let base = ContextConfig {
            max_depth: 3,
            ..ContextConfig::default()
        };
        let c = context_config(&config, base.clone());
        assert!(c.recent_files);
        assert_eq!(c.budget_tokens, 1024);
        config.repo_context_recent_files = false;
        config.repo_context_budget_tokens = 256;
        let c = context_config(&config, base);
        assert!(!c.recent_files);
        assert_eq!((c.budget_tokens, c.max_depth), (256, 3));
    }
}
