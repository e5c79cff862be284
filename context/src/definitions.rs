//! The definitions query for "explain this function": the top-level definitions a snippet
//! uses from the workspace files its file imports, re-exports followed to the defining file,
//! whole or as outlines under a budget. Reads files through the store; does not cache.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};

use crate::imports;
use crate::render;
use crate::stop::{Stop, Stopped};
use crate::store::Current;
use crate::{ContextBlock, Index};

/// How deep re-exports are followed when looking for a definition (`from .a import X` in an
/// `__init__.py`, `pub use`).
const MAX_REEXPORT_HOPS: usize = 3;

impl Index {
    /// For "explain this function": the top-level definitions that `snippet` (a part of the
    /// file at `path` whose text is `text`) uses and that the file imports from the workspace,
    /// whole where they fit in `budget` tokens, else as outlines; one block per file, files by
    /// path, definitions in file order. Re-exports (`from .a import X` in a package,
    /// `pub use`) are followed to the defining file.
    pub fn definitions_for(
        &self,
        path: &Path,
        text: &str,
        snippet: &str,
        count_tokens: &dyn Fn(&str) -> usize,
        budget: usize,
    ) -> Vec<ContextBlock> {
        self.definitions_for_until(path, text, snippet, count_tokens, budget, Stop::never())
            .unwrap_or_default()
    }

    /// [`Index::definitions_for`] that gives up when `stop` says so (checked while parsing and
    /// between files): `Err` then.
    pub fn definitions_for_until(
        &self,
        path: &Path,
        text: &str,
        snippet: &str,
        count_tokens: &dyn Fn(&str) -> usize,
        budget: usize,
        stop: Stop,
    ) -> Result<Vec<ContextBlock>, Stopped> {
        let _span = tracing::debug_span!("definitions_for", path = %path.display()).entered();
        let Some(current) = Current::analyze(self, path, text, stop) else {
            stop.check_now()?;
            return Ok(Vec::new());
        };
        let words: HashSet<&str> = imports::words(snippet).collect();
        // (file, remote name) pairs to look up.
        let mut wanted: Vec<(PathBuf, String)> = Vec::new();
        for edge in current.edges.iter() {
            stop.check_now()?;
            for binding in &edge.names {
                if words.contains(binding.local()) {
                    wanted.push((edge.target.clone(), binding.name.clone()));
                }
            }
            let whole_module = edge.glob || edge.modules.iter().any(|m| words.contains(m.as_str()));
            if whole_module {
                if let Some((entry, text)) = self.text(&edge.target) {
                    for def in &entry.details(&text).defs {
                        for name in def.names.iter().filter(|n| words.contains(n.as_str())) {
                            wanted.push((edge.target.clone(), name.clone()));
                        }
                    }
                }
            }
        }
        // Follow re-exports to the file that defines each name.
        let mut found: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
        for (file, name) in wanted {
            stop.check_now()?;
            if let Some(defining) = self.defining_file(&file, &name, MAX_REEXPORT_HOPS) {
                found.entry(defining).or_default().insert(name);
            }
        }
        let mut remaining = budget;
        let mut blocks = Vec::new();
        let mut files: Vec<(String, PathBuf, BTreeSet<String>)> = found
            .into_iter()
            .map(|(p, names)| (self.roots.relative(&p), p, names))
            .collect();
        files.sort();
        for (rel, file, names) in files {
            stop.check_now()?;
            let Some((entry, text)) = self.text(&file) else {
                continue;
            };
            let details = entry.details(&text);
            let mut parts = Vec::new();
            for def in details
                .defs
                .iter()
                .filter(|d| d.names.iter().any(|n| names.contains(n)))
            {
                let whole = text.get(def.range.clone()).unwrap_or("");
                for candidate in [whole, details.def_outline(def)] {
                    let cost = count_tokens(&render::block_text(&rel, candidate));
                    if !candidate.trim().is_empty() && cost <= remaining {
                        remaining -= cost;
                        parts.push(candidate.trim_end().to_string());
                        break;
                    }
                }
            }
            if !parts.is_empty() {
                let mut text = parts.join("\n\n");
                text.push('\n');
                blocks.push(ContextBlock { path: rel, text });
            }
        }
        Ok(blocks)
    }

    /// The file that defines `name`, starting at `file` and following its imports of that name.
    fn defining_file(&self, file: &Path, name: &str, hops: usize) -> Option<PathBuf> {
        let (entry, text) = self.text(file)?;
        if entry.details(&text).defines(name) {
            return Some(file.to_path_buf());
        }
        if hops == 0 {
            return None;
        }
        let edges = self.edges(file, &entry);
        edges
            .iter()
            .filter(|e| e.names.iter().any(|b| b.local() == name))
            .find_map(|e| {
                let remote = e.names.iter().find(|b| b.local() == name)?;
                self.defining_file(&e.target, &remote.name, hops - 1)
            })
    }
}
