//! Repository context for ghostline: which files of the workspace the current file imports,
//! in dependency order, rendered under a token budget — the way repository-level code models
//! (DeepSeek-Coder, Qwen2.5-Coder) were trained to read a project.
//!
//! The pieces, in the order a query uses them:
//! - `language`: Python and Rust grammars and the query files of `grammars/<lang>/`;
//! - `imports`: import statements as data (`imports.scm`);
//! - `resolve`: imports to files, confined to the workspace by `confine`;
//! - `graph`: imports followed to a depth, topologically sorted, cycles broken by in-degree;
//! - `outline`: signatures and definitions with bodies dropped (`outline.scm`);
//! - `render`: blocks chosen by relevance under the budget;
//! - `store`: the cached, thread-safe [`Index`]: files, hashes, parses, editor buffers;
//! - `context` and `definitions`: the two queries, each cancellable through a [`Stop`];
//! - `uses`: the use-driven context ([`Index::context_at`]): definitions of the names used
//!   near the cursor first, then the rest of the uses, then more of each outline;
//! - `recent`: the second source, recently edited and open files the imports do not reach
//!   (a bounded recency list of editor buffers), after the imported files in both queries;
//! - `function`: the function around a cursor (tree-sitter, else textual fallbacks).
//!
//! Facts about languages (extensions, ids, comment markers, block rules) come from
//! `ghostline-lang`, re-exported as [`lang`].
//!
//! Plain data in, plain data out: paths, byte offsets and strings. This crate knows nothing of
//! LSP, async runtimes or models; it reads files only inside the workspace roots, never writes,
//! and never prints (it logs with `tracing`).
//!
//! Invariants: every path read is canonicalized and inside a root (`confine`); the same inputs
//! give byte-identical blocks; the current file is never one of its own blocks; blocks come
//! dependencies first.
//!
//! ```no_run
//! use std::{path::Path, sync::Arc};
//! use ghostline_context::{ContextConfig, Index};
//!
//! let index = Arc::new(Index::new(vec!["/work/project".into()], ContextConfig::default()));
//! let background = Arc::clone(&index);
//! std::thread::spawn(move || background.index_all(&mut |done, total| { /* progress */ }));
//!
//! // Queries do not wait for the walk: files are read on demand meanwhile.
//! let path = Path::new("/work/project/app/main.py");
//! let text = "from app.util import helper\n\nhelper(";
//! let _ = index.update_file(path, text);
//! for block in index.context_for(path, text, &|s| s.len() / 4 + 1) {
//!     println!("{}\n{}", block.path, block.text);
//! }
//! ```

mod confine;
mod context;
mod definitions;
mod function;
mod graph;
mod imports;
mod language;
mod manifest;
mod outline;
mod recent;
mod render;
mod resolve;
mod stop;
mod store;
mod uses;

#[cfg(test)]
mod tests;

use std::ops::Range;
use std::path::{Path, PathBuf};

pub use function::{enclosing_function_for, WINDOW_BYTES};
pub use ghostline_lang as lang;
pub use language::{language_for_path, Language};
pub use stop::{Stop, Stopped};
pub use store::Index;
pub use uses::Focus;

/// Settings of the repository context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextConfig {
    /// Tokens the context blocks may take in all (path lines included).
    pub budget_tokens: usize,
    /// How far imports are followed: 1 = the current file's own imports, 2 = theirs too, ...
    pub max_depth: usize,
    /// Files larger than this are not indexed or read.
    pub max_file_bytes: u64,
    /// At most this many files are considered for one context.
    pub max_files: usize,
    /// Definitions of recently edited and open files that the imports do not reach, after
    /// the imported ones (`recent`).
    pub recent_files: bool,
}

impl Default for ContextConfig {
    fn default() -> Self {
        ContextConfig {
            budget_tokens: 1024,
            max_depth: 2,
            max_file_bytes: 1 << 20,
            max_files: 64,
            recent_files: true,
        }
    }
}

/// One file of the repository context.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ContextBlock {
    /// Workspace-relative path with `/` separators (prefixed by the root's folder name when
    /// there are several roots).
    pub path: String,
    /// The file's text, or its outline when the whole file did not fit.
    pub text: String,
}

/// What [`Index::index_all`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Source files indexed (parsed now or unchanged since the last walk).
    pub files: usize,
    /// Of those, files whose content hash was already known (not parsed again).
    pub unchanged: usize,
    /// `Cargo.toml` files read.
    pub manifests: usize,
    /// Symlinks seen and not followed.
    pub symlinks_skipped: usize,
    /// Source files over the size limit.
    pub too_large: usize,
    /// Source files containing a NUL byte.
    pub binary: usize,
    /// Source files that are not UTF-8.
    pub not_utf8: usize,
    /// Source files that could not be read.
    pub errors: usize,
}

/// The function around an offset, from [`enclosing_function`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSpan {
    /// The function's name, when one could be read (always with tree-sitter).
    pub name: Option<String>,
    /// Its bytes in the text (Python decorators included).
    pub range: Range<usize>,
}

/// Why a file was not read or indexed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The path is not inside a workspace root (or does not exist).
    #[error("{path}: outside the workspace roots", path = .path.display())]
    OutsideRoots {
        /// The path as given.
        path: PathBuf,
    },
    /// Reading failed.
    #[error("{path}: {source}", path = .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is larger than [`ContextConfig::max_file_bytes`].
    #[error("{path}: {size} bytes, over the limit of {limit}", path = .path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The file contains a NUL byte.
    #[error("{path}: binary file", path = .path.display())]
    Binary {
        /// The file.
        path: PathBuf,
    },
    /// The file is not valid UTF-8.
    #[error("{path}: not UTF-8", path = .path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
    },
    /// Not a regular file (a folder, a device, a FIFO).
    #[error("{path}: not a regular file", path = .path.display())]
    NotAFile {
        /// The path.
        path: PathBuf,
    },
    /// Excluded by `.gitignore`, `.ignore` or as a hidden file.
    #[error("{path}: ignored", path = .path.display())]
    Ignored {
        /// The file.
        path: PathBuf,
    },
    /// Not a language this crate reads.
    #[error("{path}: not a supported language", path = .path.display())]
    Unsupported {
        /// The file.
        path: PathBuf,
    },
    /// Parsing the file panicked (a bug; the file is skipped).
    #[error("{path}: internal error while indexing", path = .path.display())]
    Panicked {
        /// The file.
        path: PathBuf,
    },
}

/// The innermost function or method of `text` that contains the byte `offset`, with its name
/// and byte range — for the "explain this function" action. `None` outside any function or
/// for a language without facts. `path` only selects the language (by its extension); see
/// [`enclosing_function_for`] to name the language instead.
pub fn enclosing_function(path: &Path, text: &str, offset: usize) -> Option<FunctionSpan> {
    let lang = lang::Language::from_path(&path.to_string_lossy())?;
    enclosing_function_for(lang, text, offset)
}
