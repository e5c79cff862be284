//! The store of the workspace index: which source files exist under the roots, their hashes,
//! imports and outlines (parsed on first need, once per content hash), the unsaved editor
//! buffers that override them, and the parse cache of editor texts it does not hold (files
//! over the size limit are read once per content, and only their first `max_file_bytes`). The
//! queries live in `context` (repository context) and `definitions` (for "explain this
//! function"); this module answers what they ask about files.
//!
//! The walk only reads and hashes files (parsing every file was 80% of indexing time); a file
//! is parsed when a context first reaches it, with its imports and outline from one parse.
//!
//! All state sits behind locks, so one `Index` in an `Arc` serves queries while
//! [`Index::index_all`] runs on another thread; files not indexed yet are read on demand.
//! Until the first walk completes, imports resolve against the file system (confined to the
//! roots, hidden files and `.gitignore`/`.ignore` matches skipped as the walk would); after
//! it, only files the walk accepted (or that were added since) count. File texts are not kept
//! in memory, except editor buffers: they are read again when rendered, and a changed hash
//! re-parses them. Resolved imports are cached per file until the set of files changes. The
//! index never writes, and never prints.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::{Match, WalkBuilder};

use crate::confine::{normalize, read_source, Roots};
use crate::imports;
use crate::language::{language_for_path, Language};
use crate::manifest::Manifest;
use crate::outline::{self, Details};
use crate::recent::Recent;
use crate::resolve::{self, Edge, Probe};
use crate::stop::{Stop, Stopped};
use crate::{ContextConfig, Error, IndexStats};

/// What the index knows about one file.
#[derive(Debug)]
pub(crate) struct FileEntry {
    pub(crate) lang: Language,
    hash: u64,
    /// Bytes of the text the entry was read from.
    pub(crate) len: usize,
    /// The editor's unsaved text, which overrides the disk.
    pub(crate) buffer: Option<Arc<str>>,
    /// Imports and the byte ranges of their statements: parsed on first need (not by the
    /// walk, which only reads and hashes), then kept as long as the hash is the same.
    imports: OnceLock<Arc<imports::Imports>>,
    /// Outline and definitions; computed with the imports for files read from disk, on
    /// demand for editor buffers.
    pub(crate) details: OnceLock<Arc<Details>>,
    /// Resolved imports, valid for the file-set generation they were computed in.
    resolved: Mutex<Option<(u64, Arc<Vec<Edge>>)>>,
}

impl FileEntry {
    /// An entry for `text`, not parsed yet.
    fn new(lang: Language, text: &str, hash: u64) -> FileEntry {
        FileEntry {
            lang,
            hash,
            len: text.len(),
            buffer: None,
            imports: OnceLock::new(),
            details: OnceLock::new(),
            resolved: Mutex::new(None),
        }
    }

    /// The imports; `text` must be the text this entry was read from. Parses it if needed,
    /// with the outline too when `with_details` (one parse for both).
    fn imports(&self, text: &str, with_details: bool) -> Arc<imports::Imports> {
        if let Some(found) = self.imports.get() {
            return found.clone();
        }
        let found = match self.lang.parse(text) {
            Some(tree) => {
                if with_details && self.details.get().is_none() {
                    let _ = self
                        .details
                        .set(Arc::new(outline::details(self.lang, &tree, text)));
                }
                imports::extract(self.lang, &tree, text)
            }
            None => imports::Imports::default(),
        };
        self.imports.get_or_init(|| Arc::new(found)).clone()
    }

    /// The outline and definitions; `text` must be the text this entry was read from. Parses
    /// it if needed, recording the imports from the same parse.
    pub(crate) fn details(&self, text: &str) -> Arc<Details> {
        if let Some(details) = self.details.get() {
            return details.clone();
        }
        let details = match self.lang.parse(text) {
            Some(tree) => {
                if self.imports.get().is_none() {
                    let _ = self
                        .imports
                        .set(Arc::new(imports::extract(self.lang, &tree, text)));
                }
                outline::details(self.lang, &tree, text)
            }
            None => Details::default(),
        };
        self.details.get_or_init(|| Arc::new(details)).clone()
    }
}

pub(crate) fn content_hash(text: &str) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish()
}

#[derive(Debug, Default)]
struct State {
    files: HashMap<PathBuf, Arc<FileEntry>>,
    /// Symlinks seen inside the roots (never followed by the walk; resolved on lookup).
    links: HashSet<PathBuf>,
    /// `Cargo.toml` by folder; `None` caches "no manifest here" before the first walk.
    manifests: BTreeMap<PathBuf, Option<Arc<Manifest>>>,
}

impl State {
    /// Whether `path` or one of its ancestors is a known symlink.
    fn through_link(&self, path: &Path) -> bool {
        !self.links.is_empty() && path.ancestors().any(|a| self.links.contains(a))
    }
}

/// An index of the source files under some workspace roots. `Send + Sync`; share it in an
/// `Arc`.
#[derive(Debug)]
pub struct Index {
    pub(crate) roots: Roots,
    config: RwLock<ContextConfig>,
    state: RwLock<State>,
    /// Bumped whenever the set of files or manifests changes (cached resolutions expire).
    generation: AtomicU64,
    /// The roots whose walk has completed.
    walked: Mutex<HashSet<PathBuf>>,
    /// `.gitignore`/`.ignore` matchers by folder, for files looked up before the first walk.
    ignores: Mutex<HashMap<PathBuf, Option<Arc<Gitignore>>>>,
    /// Analyses of editor texts the store does not hold, most recent first.
    analyses: Mutex<Vec<Analysis>>,
    /// The outline of the top of one current file that the prompt's window cut off (by path
    /// and content hash).
    pub(crate) heads: Mutex<Option<(PathBuf, u64, Arc<Details>)>>,
    /// Recently edited and open editor buffers (`recent`).
    pub(crate) recent: Mutex<Recent>,
}

/// Everything a walk found under one folder.
#[derive(Debug, Default)]
struct Walked {
    sources: Vec<PathBuf>,
    manifests: Vec<PathBuf>,
    links: Vec<PathBuf>,
}

/// The walker all of the index uses: `.gitignore`/`.ignore`/`.git/info/exclude` honoured even
/// outside a Git repository, hidden files skipped, symlinks not followed, and nothing read
/// above the root (no parent or global ignore files).
fn walker(root: &Path) -> WalkBuilder {
    let mut builder = WalkBuilder::new(root);
    builder
        .hidden(true)
        .parents(false)
        .ignore(true)
        .git_ignore(true)
        .git_global(false)
        .git_exclude(true)
        .require_git(false)
        .follow_links(false);
    builder
}

fn walk(builder: WalkBuilder, out: &mut Walked, stop: Stop) {
    for entry in builder.build() {
        if stop.stopped() {
            return;
        }
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                tracing::debug!(%err, "walk error");
                continue;
            }
        };
        let Some(kind) = entry.file_type() else {
            continue;
        };
        let path = entry.into_path();
        if kind.is_symlink() {
            out.links.push(path);
        } else if kind.is_file() {
            if path.file_name().is_some_and(|n| n == "Cargo.toml") {
                out.manifests.push(path);
            } else if language_for_path(&path).is_some() {
                out.sources.push(path);
            }
        }
    }
}

fn read<T>(lock: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    lock.write()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The result of indexing one file from disk.
enum Indexed {
    Parsed,
    Unchanged,
}

impl Index {
    /// An empty index over `roots` (canonicalized; roots that do not exist are dropped).
    /// Nothing is read until a query or [`Index::index_all`].
    pub fn new(roots: Vec<PathBuf>, config: ContextConfig) -> Index {
        Index {
            roots: Roots::new(roots),
            config: RwLock::new(config),
            state: RwLock::new(State::default()),
            generation: AtomicU64::new(0),
            walked: Mutex::new(HashSet::new()),
            ignores: Mutex::new(HashMap::new()),
            analyses: Mutex::new(Vec::new()),
            heads: Mutex::new(None),
            recent: Mutex::new(Recent::default()),
        }
    }

    /// The configuration in effect.
    pub fn config(&self) -> ContextConfig {
        read(&self.config).clone()
    }

    /// Replaces the configuration; later queries use it.
    pub fn set_config(&self, config: ContextConfig) {
        *write(&self.config) = config;
    }

    /// The canonical workspace roots that exist.
    pub fn roots(&self) -> Vec<PathBuf> {
        self.roots.paths().to_vec()
    }

    /// Adds a workspace root (nothing is read until a query or [`Index::index_root`]); its
    /// canonical path, or `None` when it does not exist or already is a root.
    pub fn add_root(&self, root: &Path) -> Option<PathBuf> {
        let added = self.roots.add(root)?;
        self.ignores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.bump();
        Some(added)
    }

    /// Removes a workspace root and forgets what the index knows under it (editor buffers and
    /// recently edited files included) that no remaining root holds; the removed canonical
    /// root, or `None` when it was not one.
    pub fn remove_root(&self, root: &Path) -> Option<PathBuf> {
        let removed = self.roots.remove(root)?;
        let orphan = |p: &Path| p.starts_with(&removed) && self.roots.root_of(p).is_none();
        {
            let mut state = write(&self.state);
            state.files.retain(|p, _| !orphan(p));
            state.links.retain(|p| !orphan(p));
            state.manifests.retain(|d, _| !orphan(d));
        }
        self.lock_walked().remove(&removed);
        self.analyses
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|a| !orphan(&a.path));
        self.forget_recent_under(&orphan);
        self.bump();
        Some(removed)
    }

    /// Forgets files a walk read under a root that was removed while it ran.
    fn drop_orphans(&self) {
        let roots = self.roots.paths();
        let held = |p: &Path| roots.iter().any(|r| p.starts_with(r));
        let mut state = write(&self.state);
        state.files.retain(|p, _| held(p));
        state.links.retain(|p| held(p));
        state.manifests.retain(|d, _| held(d));
    }

    fn lock_walked(&self) -> std::sync::MutexGuard<'_, HashSet<PathBuf>> {
        self.walked.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the walk of the root holding the canonical `path` has completed (then only the
    /// files it accepted, or that were added since, count).
    fn walked(&self, path: &Path) -> bool {
        let Some(root) = self.roots.root_of(path) else {
            return false;
        };
        self.lock_walked().contains(&root)
    }

    /// Whether every root's walk has completed.
    fn walked_all(&self) -> bool {
        let walked = self.lock_walked();
        self.roots.paths().iter().all(|r| walked.contains(r))
    }

    /// The number of source files the index knows.
    pub fn len(&self) -> usize {
        read(&self.state).files.len()
    }

    /// The source files the index knows (indexed, read on demand or open in the editor), sorted.
    pub fn files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = read(&self.state).files.keys().cloned().collect();
        files.sort();
        files
    }

    /// Whether the index knows no source file.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn bump(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }

    /// Walks every root and reads and hashes every source file (in parallel; a file is parsed
    /// when a query first needs it), calling `progress(done, total)` on the calling thread from
    /// time to time and once at the end. Files whose content hash did not change keep their
    /// parse. Queries may run meanwhile.
    pub fn index_all(&self, progress: &mut dyn FnMut(usize, usize)) -> IndexStats {
        let roots = self.roots.paths();
        self.index_roots(&roots, Stop::never(), progress)
            .unwrap_or_default()
    }

    /// [`Index::index_all`] for one root (canonical, as [`Index::add_root`] or
    /// [`Index::roots`] give it): files of other roots are left alone. Stops early, changing
    /// nothing it has not read yet, when `stop` says so (checked between folders and files).
    pub fn index_root(
        &self,
        root: &Path,
        stop: Stop,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<IndexStats, Stopped> {
        if !self.roots.paths().iter().any(|r| r == root) {
            return Ok(IndexStats::default());
        }
        self.index_roots(&[root.to_path_buf()], stop, progress)
    }

    fn index_roots(
        &self,
        roots: &[PathBuf],
        stop: Stop,
        progress: &mut dyn FnMut(usize, usize),
    ) -> Result<IndexStats, Stopped> {
        let _span = tracing::info_span!("index_all", roots = roots.len()).entered();
        let started = std::time::Instant::now();
        let max_bytes = self.config().max_file_bytes;
        self.ignores
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        let mut found = Walked::default();
        for root in roots {
            walk(walker(root), &mut found, stop);
            stop.check_now()?;
        }
        let walked_here = |p: &Path| roots.iter().any(|r| p.starts_with(r));
        found.sources.sort();
        found.sources.dedup();
        let mut stats = IndexStats {
            symlinks_skipped: found.links.len(),
            ..IndexStats::default()
        };
        let mut manifests = BTreeMap::new();
        for path in &found.manifests {
            match read_source(path, max_bytes) {
                Ok(text) => {
                    if let Some(dir) = path.parent() {
                        manifests.insert(dir.to_path_buf(), Some(Arc::new(Manifest::parse(&text))));
                        stats.manifests += 1;
                    }
                }
                Err(err) => tracing::debug!(%err, "manifest skipped"),
            }
        }
        {
            let mut state = write(&self.state);
            state.manifests.retain(|d, _| !walked_here(d));
            state.manifests.extend(manifests);
            state.links.retain(|p| !walked_here(p));
            state.links.extend(found.links.iter().cloned());
        }

        let total = found.sources.len();
        progress(0, total);
        let step = (total / 100).max(1);
        let next = AtomicUsize::new(0);
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 8)
            .min(total.max(1));
        let (tx, rx) = mpsc::channel();
        let abort = AtomicBool::new(false);
        std::thread::scope(|scope| {
            for _ in 0..workers {
                let tx = tx.clone();
                let (next, sources, abort) = (&next, &found.sources, &abort);
                scope.spawn(move || loop {
                    if abort.load(Ordering::Relaxed) {
                        break;
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = sources.get(i) else { break };
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        self.index_disk_file(path, max_bytes)
                    }));
                    let outcome = outcome.unwrap_or_else(|_| {
                        tracing::error!(path = %path.display(), "indexing panicked");
                        Err(Error::Panicked { path: path.clone() })
                    });
                    if tx.send(outcome).is_err() {
                        break;
                    }
                });
            }
            drop(tx);
            let mut done = 0;
            for outcome in rx {
                if stop.stopped() {
                    abort.store(true, Ordering::Relaxed);
                    continue;
                }
                done += 1;
                match outcome {
                    Ok(Indexed::Parsed) => stats.files += 1,
                    Ok(Indexed::Unchanged) => {
                        stats.files += 1;
                        stats.unchanged += 1;
                    }
                    Err(Error::TooLarge { .. }) => stats.too_large += 1,
                    Err(Error::Binary { .. }) => stats.binary += 1,
                    Err(Error::NotUtf8 { .. }) => stats.not_utf8 += 1,
                    Err(err) => {
                        tracing::debug!(%err, "file skipped");
                        stats.errors += 1;
                    }
                }
                if done % step == 0 && done < total {
                    progress(done, total);
                }
            }
        });

        if abort.load(Ordering::Relaxed) {
            // What was read stays (it is the disk's text), except under a root removed
            // meanwhile; nothing else is forgotten.
            self.drop_orphans();
            self.bump();
            return Err(stop.reason().unwrap_or(Stopped::Cancelled));
        }
        let seen: HashSet<&PathBuf> = found.sources.iter().collect();
        {
            let mut state = write(&self.state);
            state.files.retain(|path, entry| {
                entry.buffer.is_some() || seen.contains(path) || !walked_here(path)
            });
        }
        self.drop_orphans();
        {
            // A root removed meanwhile is not marked walked.
            let now = self.roots.paths();
            let mut walked = self.lock_walked();
            walked.extend(roots.iter().filter(|r| now.contains(r)).cloned());
        }
        self.bump();
        progress(total, total);
        tracing::info!(
            ?stats,
            elapsed_ms = format_args!("{:.1}", started.elapsed().as_secs_f64() * 1e3),
            "indexed"
        );
        Ok(stats)
    }

    /// Reads and hashes one walked file (canonical, inside a root); a known hash keeps its entry.
    fn index_disk_file(&self, path: &Path, max_bytes: u64) -> Result<Indexed, Error> {
        let lang = language_for_path(path).ok_or_else(|| Error::Unsupported {
            path: path.to_path_buf(),
        })?;
        let text = read_source(path, max_bytes)?;
        let hash = content_hash(&text);
        if let Some(entry) = read(&self.state).files.get(path) {
            if entry.buffer.is_some() || entry.hash == hash {
                return Ok(Indexed::Unchanged);
            }
        }
        let entry = Arc::new(FileEntry::new(lang, &text, hash));
        let mut state = write(&self.state);
        if state.files.get(path).is_some_and(|e| e.buffer.is_some()) {
            return Ok(Indexed::Unchanged);
        }
        state.files.insert(path.to_path_buf(), entry);
        Ok(Indexed::Parsed)
    }

    /// Sets the editor's unsaved text of `path` (from `didOpen`/`didChange`); it overrides the
    /// disk until [`Index::refresh_path`] or [`Index::remove_file`], and the file becomes the
    /// most recent of the recently edited and open files until [`Index::close_file`].
    pub fn update_file(&self, path: &Path, text: &str) -> Result<(), Error> {
        let real = self
            .roots
            .confine_new(path)
            .ok_or_else(|| Error::OutsideRoots {
                path: path.to_path_buf(),
            })?;
        let lang =
            language_for_path(&real).ok_or_else(|| Error::Unsupported { path: real.clone() })?;
        let max_bytes = self.config().max_file_bytes;
        if text.len() as u64 > max_bytes {
            return Err(Error::TooLarge {
                path: real,
                size: text.len() as u64,
                limit: max_bytes,
            });
        }
        if text.contains('\0') {
            return Err(Error::Binary { path: real });
        }
        let hash = content_hash(text);
        if let Some(entry) = read(&self.state).files.get(&real) {
            if entry.buffer.is_some() && entry.hash == hash {
                return Ok(());
            }
        }
        let buffer: Arc<str> = Arc::from(text);
        let mut entry = FileEntry::new(lang, text, hash);
        entry.buffer = Some(buffer.clone());
        let entry = Arc::new(entry);
        let previous = write(&self.state).files.insert(real.clone(), entry.clone());
        if previous.is_none() {
            self.bump();
        }
        self.touch_recent(&real, entry, buffer, previous);
        Ok(())
    }

    /// Forgets `path` and, for a folder, everything under it (deleted, or no longer part of
    /// the workspace), editor buffers included.
    pub fn remove_file(&self, path: &Path) {
        if !path.is_absolute() {
            return;
        }
        let Some(real) = self.roots.confine_new(path) else {
            return;
        };
        self.forget_recent(&real);
        if self.forget(&real) {
            self.bump();
        }
    }

    /// Removes what the index knows at or under the canonical `real`; whether anything was.
    fn forget(&self, real: &Path) -> bool {
        let mut state = write(&self.state);
        let before = (state.files.len(), state.manifests.len(), state.links.len());
        state.files.retain(|p, _| !p.starts_with(real));
        state.links.retain(|p| !p.starts_with(real));
        let mut stale: Vec<PathBuf> = state
            .manifests
            .range(real.to_path_buf()..)
            .map(|(d, _)| d.clone())
            .take_while(|d| d.starts_with(real))
            .collect();
        if real.ends_with("Cargo.toml") {
            stale.extend(real.parent().map(Path::to_path_buf));
        }
        for dir in stale {
            state.manifests.remove(&dir);
        }
        before != (state.files.len(), state.manifests.len(), state.links.len())
    }

    /// Brings `path` (a file or a folder, from `didSave`, `didClose` or watched-file events)
    /// in line with the disk: drops any editor buffer, re-reads what still exists and is not
    /// ignored, forgets the rest. An error says why `path` itself is not indexed.
    pub fn refresh_path(&self, path: &Path) -> Result<(), Error> {
        let outside = || Error::OutsideRoots {
            path: path.to_path_buf(),
        };
        if !path.is_absolute() {
            return Err(outside());
        }
        if path
            .file_name()
            .is_some_and(|n| n == ".gitignore" || n == ".ignore")
        {
            // Takes effect for lazy lookups now, and for the index at the next `index_all`.
            self.ignores
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
        }
        let meta = match fs::symlink_metadata(path) {
            Ok(meta) => meta,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                self.remove_file(path);
                return Ok(());
            }
            Err(source) => {
                return Err(Error::Io {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        if meta.file_type().is_symlink() {
            // The link's own place (its folder resolved, not the link).
            let parent = path.parent().and_then(|p| self.roots.confine(p));
            if let (Some(parent), Some(name)) = (parent, path.file_name()) {
                write(&self.state).links.insert(parent.join(name));
                self.bump();
            }
        }
        let real = self.roots.confine(path).ok_or_else(outside)?;
        let root = self.roots.root_of(&real).ok_or_else(outside)?.to_path_buf();
        // Walk from the root down to `real` only, so that the rules of a full walk apply.
        let mut builder = walker(&root);
        let target = real.clone();
        builder.filter_entry(move |entry| {
            target.starts_with(entry.path()) || entry.path().starts_with(&target)
        });
        let mut found = Walked::default();
        walk(builder, &mut found, Stop::never());
        let max_bytes = self.config().max_file_bytes;
        let mut changed = self.forget(&real);
        {
            let mut state = write(&self.state);
            state.links.extend(found.links.iter().cloned());
            for manifest in &found.manifests {
                if let (Ok(text), Some(dir)) = (read_source(manifest, max_bytes), manifest.parent())
                {
                    state
                        .manifests
                        .insert(dir.to_path_buf(), Some(Arc::new(Manifest::parse(&text))));
                    changed = true;
                }
            }
        }
        let mut result = Ok(());
        for source in &found.sources {
            match self.index_disk_file(source, max_bytes) {
                Ok(_) => changed = true,
                Err(err) => {
                    tracing::debug!(%err, "file skipped");
                    if *source == real {
                        result = Err(err);
                    }
                }
            }
        }
        let walked_to_it = found.sources.contains(&real) || found.manifests.contains(&real);
        if result.is_ok() && real.is_file() && !walked_to_it {
            result = Err(
                if language_for_path(&real).is_some() || real.ends_with("Cargo.toml") {
                    Error::Ignored { path: real }
                } else {
                    Error::Unsupported { path: real }
                },
            );
        }
        if changed {
            self.bump();
        }
        result
    }

    /// Whether the walk would skip the canonical `path`: hidden, or matched by a `.gitignore` or
    /// `.ignore` between its root and its folder (deeper files override shallower ones). Used
    /// before the first walk, so that lazily read files follow the walk's rules.
    fn ignored(&self, path: &Path) -> bool {
        let Some(root) = self.roots.root_of(path) else {
            return true;
        };
        let Ok(rel) = path.strip_prefix(&root) else {
            return true;
        };
        if rel
            .components()
            .any(|c| c.as_os_str().to_string_lossy().starts_with('.'))
        {
            return true;
        }
        let mut ignored = false;
        let mut dir = root.to_path_buf();
        let folders = rel.components().count().saturating_sub(1);
        for component in rel.components().take(folders + 1) {
            if let Some(matcher) = self.ignore_matcher(&dir) {
                match matcher.matched_path_or_any_parents(path, false) {
                    Match::Ignore(_) => ignored = true,
                    Match::Whitelist(_) => ignored = false,
                    Match::None => {}
                }
            }
            dir.push(component);
        }
        ignored
    }

    /// The ignore rules of one folder (`.gitignore`, then `.ignore`, which wins).
    fn ignore_matcher(&self, dir: &Path) -> Option<Arc<Gitignore>> {
        let mut cache = self.ignores.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(known) = cache.get(dir) {
            return known.clone();
        }
        let mut builder = GitignoreBuilder::new(dir);
        let mut any = false;
        let mut files = vec![dir.join(".gitignore"), dir.join(".ignore")];
        if self.roots.paths().iter().any(|r| r == dir) {
            files.insert(0, dir.join(".git/info/exclude"));
        }
        for file in files {
            if self.roots.confine(&file).is_some_and(|f| f.is_file())
                && builder.add(&file).is_none()
            {
                any = true;
            }
        }
        let matcher = if any {
            builder.build().ok().map(Arc::new)
        } else {
            None
        };
        cache.insert(dir.to_path_buf(), matcher.clone());
        matcher
    }

    /// The entry for a canonical `path`, reading it from disk if the index does not know it.
    pub(crate) fn entry(&self, path: &Path) -> Option<Arc<FileEntry>> {
        if let Some(entry) = read(&self.state).files.get(path) {
            return Some(entry.clone());
        }
        self.load(path, None).map(|(entry, _)| entry)
    }

    /// The current text of a canonical `path` and its entry (re-parsed if the disk changed).
    pub(crate) fn text(&self, path: &Path) -> Option<(Arc<FileEntry>, Arc<str>)> {
        let known = read(&self.state).files.get(path).cloned();
        if let Some(entry) = &known {
            if let Some(buffer) = &entry.buffer {
                return Some((entry.clone(), buffer.clone()));
            }
        }
        self.load(path, known)
    }

    /// Reads `path` from disk; reuses `known` if the hash matches, else stores a new (unparsed) entry.
    fn load(
        &self,
        path: &Path,
        known: Option<Arc<FileEntry>>,
    ) -> Option<(Arc<FileEntry>, Arc<str>)> {
        let lang = language_for_path(path)?;
        let text = match read_source(path, self.config().max_file_bytes) {
            Ok(text) => text,
            Err(err) => {
                tracing::debug!(%err, "not read");
                return None;
            }
        };
        let hash = content_hash(&text);
        if let Some(entry) = known.filter(|e| e.hash == hash) {
            return Some((entry, Arc::from(text)));
        }
        let entry = Arc::new(FileEntry::new(lang, &text, hash));
        let mut state = write(&self.state);
        if let Some(existing) = state.files.get(path).filter(|e| e.buffer.is_some()) {
            let buffer = existing.buffer.clone()?;
            return Some((existing.clone(), buffer));
        }
        state.files.insert(path.to_path_buf(), entry.clone());
        Some((entry, Arc::from(text)))
    }

    /// The imports of a known entry, parsed now if they were not yet. A file not open in the
    /// editor is read again for that; if it changed on disk, its entry is replaced (as
    /// [`Index::text`] does).
    fn imports_of(
        &self,
        path: &Path,
        entry: &Arc<FileEntry>,
    ) -> (Arc<FileEntry>, Arc<imports::Imports>) {
        if let Some(found) = entry.imports.get() {
            return (entry.clone(), found.clone());
        }
        if let Some(buffer) = &entry.buffer {
            return (entry.clone(), entry.imports(buffer, false));
        }
        match self.load(path, Some(entry.clone())) {
            Some((entry, text)) => {
                let found = entry.imports(&text, entry.buffer.is_none());
                (entry, found)
            }
            None => (entry.clone(), Arc::new(imports::Imports::default())),
        }
    }

    /// The resolved imports of an indexed file, cached per file-set generation once the walk
    /// has completed.
    pub(crate) fn edges(&self, path: &Path, entry: &Arc<FileEntry>) -> Arc<Vec<Edge>> {
        let generation = self.generation.load(Ordering::SeqCst);
        let cache = self.walked_all();
        if cache {
            let cached = entry.resolved.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((g, edges)) = cached.as_ref() {
                if *g == generation {
                    return edges.clone();
                }
            }
        }
        let (entry, found) = self.imports_of(path, entry);
        let edges = Arc::new(resolve::resolve(self, entry.lang, path, &found.imports));
        if cache {
            *entry.resolved.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((generation, edges.clone()));
        }
        edges
    }
}

/// Most analyses of texts the store does not hold (files over the size limit, files not
/// indexed yet) that are kept, most recent first.
const MAX_ANALYSES: usize = 4;

/// The analysis of an editor text the store does not hold, kept per content so that asking
/// again (every completion asks) costs a hash, not a parse.
#[derive(Debug)]
pub(crate) struct Analysis {
    path: PathBuf,
    hash: u64,
    generation: u64,
    edges: Arc<Vec<Edge>>,
    used: Arc<HashSet<String>>,
}

/// At most `max_bytes` of `text`, cut after its last line break inside the limit (or at a
/// char boundary when there is none): the part of a file too large to index that is parsed.
pub(crate) fn bounded(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut cut = max_bytes;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let head = &text[..cut];
    head.rfind('\n').map_or(head, |nl| &head[..nl + 1])
}

/// The file being edited: its canonical path, resolved imports and the words it uses outside
/// its import statements (a lexical scan: also words in comments and strings).
pub(crate) struct Current {
    pub(crate) path: PathBuf,
    pub(crate) edges: Arc<Vec<Edge>>,
    pub(crate) used: Arc<HashSet<String>>,
}

impl Current {
    /// Reuses the index's parse when `text` is what the index holds for `path` (the editor
    /// sent it with `update_file`), else the analysis kept for the same text, else parses it.
    /// Of a text over the size limit only the first `max_file_bytes` are read (imports come
    /// first), once per content. `None` when the file is not one to read, or when stopped.
    pub(crate) fn analyze(index: &Index, path: &Path, text: &str, stop: Stop) -> Option<Current> {
        let lang = language_for_path(path)?;
        let Some(real) = index.roots.confine_new(path) else {
            tracing::debug!("outside the workspace roots");
            return None;
        };
        let max_bytes = usize::try_from(index.config().max_file_bytes).unwrap_or(usize::MAX);
        let text = bounded(text, max_bytes);
        let hash = content_hash(text);
        let known = read(&index.state)
            .files
            .get(&real)
            .filter(|e| e.hash == hash)
            .cloned();
        if let Some(entry) = known {
            // `text` is the entry's text: parse it here rather than read the disk again.
            let statements = entry
                .imports(text, entry.buffer.is_none())
                .statements
                .clone();
            let used = imports::words_outside(text, &statements)
                .into_iter()
                .map(str::to_string)
                .collect();
            return Some(Current {
                edges: index.edges(&real, &entry),
                path: real,
                used: Arc::new(used),
            });
        }
        let generation = index.generation.load(Ordering::SeqCst);
        {
            let mut kept = index.analyses.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(at) = kept
                .iter()
                .position(|a| a.path == real && a.hash == hash && a.generation == generation)
            {
                let found = kept.remove(at);
                let current = Current {
                    path: real,
                    edges: found.edges.clone(),
                    used: found.used.clone(),
                };
                kept.insert(0, found);
                return Some(current);
            }
        }
        let tree = lang.parse_until(text, &|| stop.stopped())?;
        let found = imports::extract(lang, &tree, text);
        let edges = Arc::new(resolve::resolve(index, lang, &real, &found.imports));
        let used: Arc<HashSet<String>> = Arc::new(
            imports::words_outside(text, &found.statements)
                .into_iter()
                .map(str::to_string)
                .collect(),
        );
        let mut kept = index.analyses.lock().unwrap_or_else(|p| p.into_inner());
        kept.retain(|a| a.path != real);
        kept.insert(
            0,
            Analysis {
                path: real.clone(),
                hash,
                generation,
                edges: edges.clone(),
                used: used.clone(),
            },
        );
        kept.truncate(MAX_ANALYSES);
        Some(Current {
            path: real,
            edges,
            used,
        })
    }
}

impl Probe for Index {
    fn roots(&self) -> &Roots {
        &self.roots
    }

    fn file(&self, candidate: &Path) -> Option<PathBuf> {
        let path = normalize(candidate);
        // Candidates are built on canonical folders: one that is not under a root by its
        // name is not inside one at all, and is not even looked at on disk.
        self.roots.root_of(&path)?;
        let walked = self.walked(&path);
        {
            let state = read(&self.state);
            if state.files.contains_key(&path) {
                return Some(path);
            }
            if walked && !state.through_link(&path) {
                return None;
            }
        }
        let real = self.roots.confine(&path)?;
        language_for_path(&real)?;
        if walked {
            read(&self.state).files.contains_key(&real).then_some(real)
        } else {
            (real.is_file() && !self.ignored(&real)).then_some(real)
        }
    }

    fn manifest(&self, dir: &Path) -> Option<Arc<Manifest>> {
        if let Some(known) = read(&self.state).manifests.get(dir) {
            return known.clone();
        }
        if self.walked(dir) {
            return None;
        }
        let manifest = self
            .roots
            .confine(&dir.join("Cargo.toml"))
            .and_then(|path| read_source(&path, self.config().max_file_bytes).ok())
            .map(|text| Arc::new(Manifest::parse(&text)));
        write(&self.state)
            .manifests
            .insert(dir.to_path_buf(), manifest.clone());
        manifest
    }

    fn subdirs(&self, dir: &Path) -> Vec<PathBuf> {
        if self.walked(dir) {
            return self
                .manifests_under(dir)
                .into_iter()
                .filter_map(|(d, _)| (d.parent() == Some(dir)).then_some(d))
                .collect();
        }
        let Some(real) = self.roots.confine(dir) else {
            return Vec::new();
        };
        let Ok(entries) = fs::read_dir(&real) else {
            return Vec::new();
        };
        let mut dirs: Vec<PathBuf> = entries
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .map(|e| e.path())
            .collect();
        dirs.sort();
        dirs
    }

    fn manifests_under(&self, dir: &Path) -> Vec<(PathBuf, Arc<Manifest>)> {
        read(&self.state)
            .manifests
            .range(dir.to_path_buf()..)
            .take_while(|(d, _)| d.starts_with(dir))
            .filter_map(|(d, m)| Some((d.clone(), m.clone()?)))
            .collect()
    }
}
