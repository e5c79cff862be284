//! The fixture format of these tests, written to a temporary folder, and renderers that turn
//! results into snapshot text. Test-only; nothing here is used by the library.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use crate::resolve::Edge;
use crate::{ContextBlock, ContextConfig, Focus, Index};

/// A fixture on disk: `root` is the workspace root, `outside` a sibling folder.
pub(crate) struct Fixture {
    _dir: tempfile::TempDir,
    pub(crate) root: PathBuf,
    pub(crate) outside: PathBuf,
    /// The file with `$0`: path, text without the marker, and the marker's offset.
    pub(crate) current: Option<(PathBuf, String, usize)>,
}

impl Fixture {
    /// Writes `spec` (see the module comment of `tests`) to a new temporary folder.
    pub(crate) fn new(spec: &str) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let base = fs::canonicalize(dir.path()).unwrap();
        let root = base.join("ws");
        let outside = base.join("outside");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&outside).unwrap();
        let mut fixture = Fixture {
            _dir: dir,
            root,
            outside,
            current: None,
        };
        let mut files: Vec<(String, String)> = Vec::new();
        for line in spec.split_inclusive('\n') {
            if let Some(header) = line.strip_prefix("//- ") {
                files.push((header.trim().to_string(), String::new()));
            } else if let Some((_, text)) = files.last_mut() {
                text.push_str(line);
            } else {
                assert!(
                    line.trim().is_empty(),
                    "text before the first `//- /path`: {line:?}"
                );
            }
        }
        for (header, text) in files {
            if let Some((link, target)) = header.split_once(" -> ") {
                let link = fixture.path(link.trim());
                let target = target.trim();
                let target = if target.starts_with('/') {
                    fixture.path(target)
                } else {
                    PathBuf::from(target)
                };
                fs::create_dir_all(link.parent().unwrap()).unwrap();
                std::os::unix::fs::symlink(target, link).unwrap();
                continue;
            }
            let path = fixture.path(&header);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            let text = match text.find("$0") {
                Some(offset) => {
                    let text = text.replacen("$0", "", 1);
                    fixture.current = Some((path.clone(), text.clone(), offset));
                    text
                }
                None => text,
            };
            fs::write(&path, text).unwrap();
        }
        fixture
    }

    /// Where a fixture path lives on disk.
    pub(crate) fn path(&self, fixture_path: &str) -> PathBuf {
        match fixture_path.strip_prefix("/outside/") {
            Some(rest) => self.outside.join(rest),
            None => self.root.join(fixture_path.trim_start_matches('/')),
        }
    }

    /// An index over the root.
    pub(crate) fn index(&self, config: ContextConfig) -> Index {
        Index::new(vec![self.root.clone()], config)
    }

    /// The current file: path and text.
    pub(crate) fn current(&self) -> (&Path, &str) {
        let (path, text, _) = self.current.as_ref().expect("fixture without `$0`");
        (path, text)
    }

    /// A path for snapshots: relative to the root, `<outside>/..` outside it.
    pub(crate) fn show(&self, path: &Path) -> String {
        if let Ok(rel) = path.strip_prefix(&self.root) {
            rel.display().to_string()
        } else if let Ok(rel) = path.strip_prefix(&self.outside) {
            format!("<outside>/{}", rel.display())
        } else {
            path.display().to_string()
        }
    }

    /// Resolved imports, one per line: `target  names: a as b, c  modules: m  glob`.
    pub(crate) fn show_edges(&self, edges: &[Edge]) -> String {
        let mut out = String::new();
        for edge in edges {
            write!(out, "{}", self.show(&edge.target)).unwrap();
            if !edge.names.is_empty() {
                let names: Vec<String> = edge
                    .names
                    .iter()
                    .map(|b| match &b.alias {
                        Some(alias) => format!("{} as {alias}", b.name),
                        None => b.name.clone(),
                    })
                    .collect();
                write!(out, "  names: {}", names.join(", ")).unwrap();
            }
            if !edge.modules.is_empty() {
                write!(out, "  modules: {}", edge.modules.join(", ")).unwrap();
            }
            if edge.glob {
                out.push_str("  glob");
            }
            out.push('\n');
        }
        out
    }
}

/// The use-driven context after each keystroke of typing `typed` at byte `cursor` of `text`
/// (the file at `path`, which the editor updates each time), the untouched text first: one
/// build per prefix of `typed`, with the prompt's window starting at `window_start`.
pub(crate) fn typing_builds(
    index: &Index,
    path: &Path,
    text: &str,
    cursor: usize,
    typed: &str,
    window_start: usize,
) -> Vec<Vec<ContextBlock>> {
    (0..=typed.len())
        .filter(|&n| typed.is_char_boundary(n))
        .map(|n| {
            let mut now = text.to_string();
            now.insert_str(cursor, &typed[..n]);
            index.update_file(path, &now).unwrap();
            let focus = Focus {
                cursor: cursor + n,
                window_start,
            };
            index.context_at(path, &now, focus, &count)
        })
        .collect()
}

/// A token counter for tests: about four bytes a token.
pub(crate) fn count(text: &str) -> usize {
    text.len() / 4 + 1
}

/// Blocks as snapshot text.
pub(crate) fn show_blocks(blocks: &[ContextBlock]) -> String {
    let mut out = String::new();
    for block in blocks {
        writeln!(out, "--- {}", block.path).unwrap();
        out.push_str(&block.text);
        if !block.text.ends_with('\n') {
            out.push_str("⏎ (no newline at end)\n");
        }
    }
    out
}
