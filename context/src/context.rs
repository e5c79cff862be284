//! The repository-context query: the files the current file imports, followed to a depth,
//! ranked by relevance (imported names the file uses first, then nearer files) and rendered
//! dependencies first under the token budget. Reads files through the store; does not cache
//! (the store does) and does not decide budgets (the caller's configuration does).

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::graph;
use crate::outline::Details;
use crate::recent::Ask;
use crate::render::{self, Candidate};
use crate::resolve::Edge;
use crate::stop::{Stop, Stopped};
use crate::store::{Current, FileEntry};
use crate::{ContextBlock, Index};

impl Index {
    /// The files `current` reaches through its imports (to the configured depth and file
    /// count), each with its depth: what both context queries rank and render.
    pub(crate) fn reach(
        &self,
        current: &Current,
        stop: &Stop,
    ) -> Result<Vec<graph::Node>, Stopped> {
        let config = self.config();
        let nodes = graph::build(
            &current.path,
            &current.edges,
            config.max_depth,
            config.max_files,
            &mut |p| {
                if stop.stopped() {
                    return None;
                }
                let entry = self.entry(p)?;
                Some(self.edges(p, &entry))
            },
        );
        stop.check_now()?;
        Ok(nodes)
    }

    /// The repository context for the file at `path` whose (unsaved) text is `text`: the
    /// workspace files it imports, directly and transitively up to `max_depth`, that fit in
    /// `budget_tokens` as counted by `count_tokens`; whole where they fit, else as outlines.
    /// In dependency order (each file after the files it imports); the current file is not
    /// included. Then, within what is left of the budget, definitions of recently edited and
    /// open files the imports do not reach (`recent`), least recent first.
    ///
    /// The result depends on the imports of `text`, on which imported names occur in `text`
    /// (a word scan outside the import statements, which only matters when not everything
    /// fits) and on the imported files — not on the cursor — so it stays byte-identical while
    /// the user types inside a function. When `text` is what [`Index::update_file`] last got
    /// for `path`, its parse is reused.
    pub fn context_for(
        &self,
        path: &Path,
        text: &str,
        count_tokens: &dyn Fn(&str) -> usize,
    ) -> Vec<ContextBlock> {
        self.context_for_until(path, text, count_tokens, Stop::never())
            .unwrap_or_default()
    }

    /// [`Index::context_for`] that gives up when `stop` says so (checked while parsing, between
    /// files and between blocks): `Err` then, never a partial context.
    pub fn context_for_until(
        &self,
        path: &Path,
        text: &str,
        count_tokens: &dyn Fn(&str) -> usize,
        stop: Stop,
    ) -> Result<Vec<ContextBlock>, Stopped> {
        let span = tracing::debug_span!("context_for", path = %path.display(), files = tracing::field::Empty, blocks = tracing::field::Empty);
        let _enter = span.enter();
        let started = std::time::Instant::now();
        let config = self.config();
        if config.budget_tokens == 0 || config.max_depth == 0 {
            return Ok(Vec::new());
        }
        let Some(current) = Current::analyze(self, path, text, stop) else {
            stop.check_now()?;
            return Ok(Vec::new());
        };
        let nodes = self.reach(&current, &stop)?;
        let order = graph::order(&nodes);

        // Relevance: names the current file imports and uses.
        let direct: HashMap<&Path, &Edge> = current
            .edges
            .iter()
            .map(|e| (e.target.as_path(), e))
            .collect();
        let used_remote: BTreeSet<&str> = current
            .edges
            .iter()
            .flat_map(|e| e.names.iter())
            .filter(|b| current.used.contains(b.local()))
            .map(|b| b.name.as_str())
            .collect();
        let mut ranked: Vec<(bool, usize, String, usize)> = Vec::new();
        let mut candidates = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            stop.check_now()?;
            let rel = self.roots.relative(&node.path);
            // Unreadable files keep their slot (indices follow `nodes`) but offer nothing.
            let Some(mut source) = Source::new(self, &node.path) else {
                candidates.push(Candidate {
                    path: rel,
                    len: 0,
                    load: Box::new(|_| None),
                });
                continue;
            };
            let details = source.details();
            let edge_used = direct.get(node.path.as_path()).is_some_and(|edge| {
                edge.locals().any(|l| current.used.contains(l))
                    || edge.glob && current.used.iter().any(|u| details.defines(u))
            });
            let used = edge_used || used_remote.iter().any(|n| details.defines(n));
            ranked.push((!used, node.depth, rel.clone(), i));
            let len = source.entry.len;
            let source = std::cell::RefCell::new(source);
            candidates.push(Candidate {
                path: rel,
                len,
                load: Box::new(move |outline| {
                    if stop.stopped() {
                        return None;
                    }
                    let mut source = source.borrow_mut();
                    if outline {
                        Some(source.details().outline.clone())
                    } else {
                        source.text().map(|t| t.to_string())
                    }
                }),
            });
        }
        ranked.sort();
        let by_relevance: Vec<usize> = ranked.iter().map(|r| r.3).collect();
        let (mut blocks, remaining) = render::fill(
            candidates,
            &by_relevance,
            &order,
            config.budget_tokens,
            count_tokens,
        );
        let ask = Ask {
            current: &current.path,
            reached: nodes.iter().map(|n| n.path.as_path()).collect(),
            rank_words: &current.used,
            used: &current.used,
            budget: remaining,
        };
        blocks.extend(self.recent_blocks(&ask, count_tokens, &stop)?);
        span.record("files", nodes.len());
        span.record("blocks", blocks.len());
        // Token counting (the model's tokenizer in the server) is included.
        tracing::debug!(
            context_ms = format_args!("{:.3}", started.elapsed().as_secs_f64() * 1e3),
            "context built"
        );
        stop.check_now()?;
        Ok(blocks)
    }
}

/// One file of a context, its text read only when needed.
pub(crate) struct Source<'i> {
    index: &'i Index,
    path: PathBuf,
    pub(crate) entry: Arc<FileEntry>,
    text: Option<Arc<str>>,
}

impl<'i> Source<'i> {
    pub(crate) fn new(index: &'i Index, path: &Path) -> Option<Source<'i>> {
        let entry = index.entry(path)?;
        let text = entry.buffer.clone();
        Some(Source {
            index,
            path: path.to_path_buf(),
            entry,
            text,
        })
    }

    /// The current text (a re-read that changed the hash also replaces the entry).
    pub(crate) fn text(&mut self) -> Option<Arc<str>> {
        if self.text.is_none() {
            let (entry, text) = self.index.text(&self.path)?;
            self.entry = entry;
            self.text = Some(text);
        }
        self.text.clone()
    }

    /// The outline and definitions, from the index when known, else from the text.
    pub(crate) fn details(&mut self) -> Arc<Details> {
        if let Some(details) = self.entry.details.get() {
            return details.clone();
        }
        match self.text() {
            Some(text) => self.entry.details(&text),
            None => Arc::new(Details::default()),
        }
    }
}
