//! Confinement to the workspace roots: the one place that decides whether a path may be read,
//! and the one function that reads source files (size, binary and UTF-8 checks).
//!
//! Every path this crate reads goes through [`Roots::confine`] (or comes from the walker, which
//! starts at a canonical root and never follows a symlink). Paths are canonicalized, so `..`,
//! absolute paths in `#[path]` attributes and symlinks pointing elsewhere are all caught by a
//! prefix check on the real path. This module does not walk directories or apply `.gitignore`.

use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, RwLock};

use crate::Error;

/// The canonical workspace roots; roots come and go ([`Roots::add`], [`Roots::remove`]) while
/// queries read them.
#[derive(Debug)]
pub(crate) struct Roots {
    roots: RwLock<Arc<Vec<PathBuf>>>,
}

/// The canonical form of a workspace root, when it exists and is a folder (else logged).
fn canonical_root(root: &Path) -> Option<PathBuf> {
    match fs::canonicalize(root) {
        Ok(path) if path.is_dir() => Some(path),
        Ok(_) => {
            tracing::warn!(root = %root.display(), "workspace root is not a directory");
            None
        }
        Err(err) => {
            tracing::warn!(root = %root.display(), %err, "workspace root dropped");
            None
        }
    }
}

impl Roots {
    /// Canonicalizes `roots`; roots that do not exist are dropped (and logged).
    pub(crate) fn new(roots: Vec<PathBuf>) -> Roots {
        let mut canonical = Vec::new();
        for path in roots.iter().filter_map(|r| canonical_root(r)) {
            if !canonical.contains(&path) {
                canonical.push(path);
            }
        }
        Roots {
            roots: RwLock::new(Arc::new(canonical)),
        }
    }

    /// The canonical roots, in the order given.
    pub(crate) fn paths(&self) -> Arc<Vec<PathBuf>> {
        self.roots.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Adds `root`; its canonical path when it exists and was not a root yet.
    pub(crate) fn add(&self, root: &Path) -> Option<PathBuf> {
        let path = canonical_root(root)?;
        let mut roots = self.roots.write().unwrap_or_else(|p| p.into_inner());
        if roots.contains(&path) {
            return None;
        }
        Arc::make_mut(&mut roots).push(path.clone());
        Some(path)
    }

    /// Removes `root` (as given, or its canonical path); the removed canonical root.
    pub(crate) fn remove(&self, root: &Path) -> Option<PathBuf> {
        let canonical = fs::canonicalize(root).ok();
        let mut roots = self.roots.write().unwrap_or_else(|p| p.into_inner());
        let at = roots
            .iter()
            .position(|r| r == root || Some(r) == canonical.as_ref())?;
        Some(Arc::make_mut(&mut roots).remove(at))
    }

    /// The innermost root that contains the canonical path `path`.
    pub(crate) fn root_of(&self, path: &Path) -> Option<PathBuf> {
        self.paths()
            .iter()
            .filter(|root| path.starts_with(root))
            .max_by_key(|root| root.as_os_str().len())
            .cloned()
    }

    /// The single confinement check: `candidate`'s real path (symlinks and `..` resolved) if it
    /// exists and lies inside a root; `None` otherwise. Relative candidates are refused.
    pub(crate) fn confine(&self, candidate: &Path) -> Option<PathBuf> {
        if !candidate.is_absolute() {
            return None;
        }
        let real = fs::canonicalize(candidate).ok()?;
        self.root_of(&real)?;
        Some(real)
    }

    /// Like [`Roots::confine`], but also accepts a file that does not exist yet (an unsaved
    /// buffer) when its parent directory is inside a root.
    pub(crate) fn confine_new(&self, path: &Path) -> Option<PathBuf> {
        if let Some(real) = self.confine(path) {
            return Some(real);
        }
        let name = match path.components().next_back()? {
            Component::Normal(name) => name,
            _ => return None,
        };
        let parent = self.confine(path.parent()?)?;
        Some(parent.join(name))
    }

    /// The workspace-relative path of a canonical path, with `/` separators. With several
    /// roots, the root's folder name comes first so that paths from different roots differ.
    pub(crate) fn relative(&self, path: &Path) -> String {
        let Some(root) = self.root_of(path) else {
            return path.to_string_lossy().replace('\\', "/");
        };
        let mut parts: Vec<String> = Vec::new();
        if self.paths().len() > 1 {
            if let Some(name) = root.file_name() {
                parts.push(name.to_string_lossy().into_owned());
            }
        }
        if let Ok(rest) = path.strip_prefix(&root) {
            parts.extend(
                rest.components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned()),
            );
        }
        parts.join("/")
    }
}

/// Removes `.` and `..` components without touching the file system (`..` at the top stays
/// at the top). Used only to look paths up in the index; reading still goes through
/// [`Roots::confine`].
pub(crate) fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Reads a source file that has already been confined: regular files only, at most
/// `max_bytes`, no NUL byte, valid UTF-8.
pub(crate) fn read_source(path: &Path, max_bytes: u64) -> Result<String, Error> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(Error::NotAFile {
            path: path.to_path_buf(),
        });
    }
    if meta.len() > max_bytes {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
            limit: max_bytes,
        });
    }
    let file = fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > max_bytes {
        return Err(Error::TooLarge {
            path: path.to_path_buf(),
            size: bytes.len() as u64,
            limit: max_bytes,
        });
    }
    check_text(path, bytes)
}

/// The binary and UTF-8 checks of [`read_source`], for bytes from anywhere.
pub(crate) fn check_text(path: &Path, bytes: Vec<u8>) -> Result<String, Error> {
    if bytes.contains(&0) {
        return Err(Error::Binary {
            path: path.to_path_buf(),
        });
    }
    String::from_utf8(bytes).map_err(|_| Error::NotUtf8 {
        path: path.to_path_buf(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_is_lexical() {
        assert_eq!(
            normalize(Path::new("/a/b/../c/./d")),
            PathBuf::from("/a/c/d")
        );
        assert_eq!(normalize(Path::new("/../../x")), PathBuf::from("/x"));
    }

    #[test]
    fn relative_paths_name_the_root_when_there_are_several() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["one/a", "two/b"] {
            fs::create_dir_all(dir.path().join(name)).unwrap();
        }
        let one = fs::canonicalize(dir.path().join("one")).unwrap();
        let single = Roots::new(vec![one.clone()]);
        assert_eq!(single.relative(&one.join("a/x.py")), "a/x.py");
        let both = Roots::new(vec![
            one.clone(),
            dir.path().join("two"),
            dir.path().join("missing"),
        ]);
        assert_eq!(both.paths().len(), 2);
        assert_eq!(both.relative(&one.join("a/x.py")), "one/a/x.py");
    }

    #[test]
    fn confine_refuses_relative_and_outside() {
        let dir = tempfile::tempdir().unwrap();
        let ws = dir.path().join("ws");
        fs::create_dir_all(ws.join("a")).unwrap();
        fs::write(ws.join("a/x.py"), "").unwrap();
        fs::write(dir.path().join("secret.py"), "").unwrap();
        let roots = Roots::new(vec![ws.clone()]);
        assert!(roots.confine(Path::new("a/x.py")).is_none());
        assert!(roots.confine(&ws.join("a/x.py")).is_some());
        assert!(roots.confine(&ws.join("a/../../secret.py")).is_none());
        assert!(roots.confine(Path::new("/etc/passwd")).is_none());
        assert!(roots.confine_new(&ws.join("a/new.py")).is_some());
        assert!(roots.confine_new(&ws.join("../new.py")).is_none());
    }
}
