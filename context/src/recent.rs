//! The second source of repository context: recently edited and open files. The index keeps a
//! small recency list of the editor buffers it was given ([`Index::update_file`]): at most
//! [`MAX_DOCS`] documents in the order of their last change (no clock), each with the byte
//! offsets of its last [`MAX_EDITS`] edits (one per line, moved with later edits; a document's
//! first text is compared with what the index held for it, its previous buffer or, for a file
//! the index knows, the disk).
//! A query gets, for the files the import graph does not reach, the top-level definitions
//! around those edits and the ones whose names the code at the cursor uses — each whole when
//! small, else as its outline cut to the members used there — within what the import graph
//! left of the budget.
//!
//! Ranking: definitions named by the words that rank (near the cursor, or the current file's
//! words), then definitions around an edit, then by recency and position. The blocks come
//! least recent first (an edit elsewhere moves its file last, so the blocks before it keep
//! their bytes), each headed by its path. The current file is never a block, nor a file the
//! import graph reaches, nor a closed document; nothing is read from disk here: the texts are
//! the editor's.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::confine::read_source;
use crate::stop::{Stop, Stopped};
use crate::store::FileEntry;
use crate::uses::{near_words, render_defs, Growing, MIN_USEFUL_TOKENS};
use crate::{ContextBlock, Index};

/// Documents remembered (the least recent is forgotten first).
pub(crate) const MAX_DOCS: usize = 16;

/// Edit positions remembered per document (most recent first, one per line).
pub(crate) const MAX_EDITS: usize = 4;

/// Definitions tried per query at most (each try renders and counts one block).
const MAX_TRIES: usize = 64;

/// One document of the recency list.
#[derive(Debug, Clone)]
struct Doc {
    /// Canonical path, inside a root.
    path: PathBuf,
    /// The entry of `text` (its parse is cached there).
    entry: Arc<FileEntry>,
    /// The editor's text.
    text: Arc<str>,
    /// Byte offsets into `text` of the last edits, most recent first.
    edits: Vec<usize>,
}

/// The recency list of editor documents.
#[derive(Debug, Default)]
pub(crate) struct Recent {
    /// Least recent first.
    docs: Vec<Doc>,
}

impl Recent {
    /// Whether `path` is in the list.
    fn holds(&self, path: &Path) -> bool {
        self.docs.iter().any(|d| d.path == path)
    }

    /// `path` now holds `text` (opened, or changed): it becomes the most recent document, with
    /// the first changed byte as its latest edit — against its previous text in the list, else
    /// against `base` (the text the index held before, when known).
    pub(crate) fn touch(
        &mut self,
        path: &Path,
        entry: Arc<FileEntry>,
        text: Arc<str>,
        base: Option<Arc<str>>,
    ) {
        let edits = match self.docs.iter().position(|d| d.path == path) {
            Some(at) => {
                let old = self.docs.remove(at);
                moved_edits(&old.text, &text, old.edits)
            }
            None => base.map_or_else(Vec::new, |b| moved_edits(&b, &text, Vec::new())),
        };
        self.docs.push(Doc {
            path: path.to_path_buf(),
            entry,
            text,
            edits,
        });
        // `docs` is kept in recency order (oldest first): drop from the front.
        if self.docs.len() > MAX_DOCS {
            self.docs.remove(0);
        }
    }

    /// Forgets `path` and everything under it (closed, deleted or removed).
    pub(crate) fn forget(&mut self, path: &Path) {
        self.docs.retain(|d| !d.path.starts_with(path));
    }

    /// Forgets the documents whose path satisfies `gone`.
    pub(crate) fn forget_where(&mut self, gone: &dyn Fn(&Path) -> bool) {
        self.docs.retain(|d| !gone(&d.path));
    }

    /// The documents, least recent first.
    fn docs(&self) -> Vec<Doc> {
        self.docs.clone()
    }

    /// The paths, least recent first, with their edit offsets (tests).
    #[cfg(test)]
    pub(crate) fn list(&self) -> Vec<(PathBuf, Vec<usize>)> {
        self.docs
            .iter()
            .map(|d| (d.path.clone(), d.edits.clone()))
            .collect()
    }
}

/// The edit offsets after `old` became `new`: the first changed byte first, then the earlier
/// edits moved with the text (one per line, at most [`MAX_EDITS`]).
fn moved_edits(old: &str, new: &str, edits: Vec<usize>) -> Vec<usize> {
    let (start, old_end, new_end) = changed(old, new);
    if old_end == start && new_end == start {
        return edits;
    }
    let mut out = vec![start];
    for p in edits {
        let moved = if p >= old_end {
            p - old_end + new_end
        } else {
            p.min(start)
        };
        let same_line = out
            .iter()
            .any(|&q| !new[moved.min(q)..moved.max(q)].contains('\n'));
        if !same_line {
            out.push(moved);
        }
    }
    out.truncate(MAX_EDITS);
    out
}

/// The changed part of `old` → `new`: `(start, old_end, new_end)`, on character boundaries.
fn changed(old: &str, new: &str) -> (usize, usize, usize) {
    let (a, b) = (old.as_bytes(), new.as_bytes());
    let mut start = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    while !new.is_char_boundary(start) || !old.is_char_boundary(start) {
        start -= 1;
    }
    let room = a.len().min(b.len()) - start;
    let mut tail = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take(room)
        .take_while(|(x, y)| x == y)
        .count();
    while !new.is_char_boundary(b.len() - tail) || !old.is_char_boundary(a.len() - tail) {
        tail -= 1;
    }
    (start, a.len() - tail, b.len() - tail)
}

/// What one query asks of the recent source.
pub(crate) struct Ask<'a> {
    /// The current file (canonical): never a block.
    pub(crate) current: &'a Path,
    /// The files the import graph reaches: never a block here.
    pub(crate) reached: HashSet<&'a Path>,
    /// Words whose definitions rank first (near the cursor, else the current file's words).
    pub(crate) rank_words: &'a HashSet<String>,
    /// Words the current file uses (long classes are cut to these members).
    pub(crate) used: &'a HashSet<String>,
    /// Tokens left for these blocks.
    pub(crate) budget: usize,
}

/// One definition that may go in: rank key, then the document and the definition.
type Candidate = ((bool, bool, usize, usize), usize, usize);

impl Index {
    /// Records that the editor's `text` of the canonical `path` changed (see [`Recent`]);
    /// `previous` is the entry the index held before. A document new to the list is compared
    /// with the text the index held: the previous buffer, else the file on disk when the index
    /// knew it (an editor's first change may reach the index before its opening text does).
    pub(crate) fn touch_recent(
        &self,
        path: &Path,
        entry: Arc<FileEntry>,
        text: Arc<str>,
        previous: Option<Arc<FileEntry>>,
    ) {
        let known = self
            .recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .holds(path);
        let base = match previous {
            Some(prev) if !known => prev.buffer.clone().or_else(|| {
                read_source(path, self.config().max_file_bytes)
                    .ok()
                    .map(Arc::from)
            }),
            _ => None,
        };
        self.recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .touch(path, entry, text, base);
    }

    /// The editor closed `path`: its recent edits leave the context.
    pub fn close_file(&self, path: &Path) {
        if let Some(real) = self.roots.confine_new(path) {
            self.forget_recent(&real);
        }
    }

    pub(crate) fn forget_recent_under(&self, gone: &dyn Fn(&Path) -> bool) {
        self.recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .forget_where(gone);
    }

    pub(crate) fn forget_recent(&self, real: &Path) {
        self.recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .forget(real);
    }

    /// The blocks of recently edited and open files for one query (see the module
    /// documentation), least recent first; empty when the setting is off.
    pub(crate) fn recent_blocks(
        &self,
        ask: &Ask,
        count_tokens: &dyn Fn(&str) -> usize,
        stop: &Stop,
    ) -> Result<Vec<ContextBlock>, Stopped> {
        if !self.config().recent_files || ask.budget < MIN_USEFUL_TOKENS {
            return Ok(Vec::new());
        }
        let docs: Vec<Doc> = {
            let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            recent.docs()
        }
        .into_iter()
        .filter(|d| d.path != ask.current && !ask.reached.contains(d.path.as_path()))
        .collect();
        let mut candidates: Vec<Candidate> = Vec::new();
        let mut picks: Vec<Pick> = Vec::new();
        for (i, doc) in docs.iter().enumerate() {
            stop.check_now()?;
            let (found, edit_words) = doc_candidates(doc, i, docs.len(), ask);
            candidates.extend(found);
            picks.push(Pick {
                rel: self.roots.relative(&doc.path),
                edit_words,
                words: None,
                grow: Growing::default(),
            });
        }
        candidates.sort();
        let mut remaining = ask.budget;
        for (_, i, d) in candidates.into_iter().take(MAX_TRIES) {
            if remaining < MIN_USEFUL_TOKENS {
                break;
            }
            stop.check_now()?;
            picks[i].try_add(&docs[i], d, ask.used, &mut remaining, count_tokens);
        }
        Ok(docs
            .iter()
            .zip(picks)
            .filter_map(|(doc, pick)| pick.block(doc))
            .collect())
    }
}

/// What one document of a query gets.
struct Pick {
    rel: String,
    /// The words around its edits.
    edit_words: HashSet<String>,
    /// Those and the current file's (long classes are cut to these members), made when the
    /// document's first definition is tried.
    words: Option<HashSet<String>>,
    grow: Growing,
}

impl Pick {
    /// Adds definition `d` of `doc` if its block still fits.
    fn try_add(
        &mut self,
        doc: &Doc,
        d: usize,
        used: &HashSet<String>,
        remaining: &mut usize,
        count_tokens: &dyn Fn(&str) -> usize,
    ) {
        let edit_words = &self.edit_words;
        let words = self
            .words
            .get_or_insert_with(|| used.union(edit_words).cloned().collect());
        let details = doc.entry.details(&doc.text);
        let lang = doc.entry.lang;
        let render = |defs: &[(usize, bool)]| render_defs(&details, &doc.text, defs, lang, words);
        self.grow
            .try_add((d, true), remaining, &self.rel, &render, count_tokens);
    }

    /// The document's block, if it got any definition.
    fn block(self, doc: &Doc) -> Option<ContextBlock> {
        let words = self.words.filter(|_| !self.grow.chosen.is_empty())?;
        let details = doc.entry.details(&doc.text);
        let text = render_defs(
            &details,
            &doc.text,
            &self.grow.chosen,
            doc.entry.lang,
            &words,
        );
        Some(ContextBlock {
            path: self.rel,
            text,
        })
    }
}

/// The definitions of one document that may go in (`i`: its place, least recent first, of
/// `n`), and the words around its edits.
fn doc_candidates(doc: &Doc, i: usize, n: usize, ask: &Ask) -> (Vec<Candidate>, HashSet<String>) {
    let details = doc.entry.details(&doc.text);
    let lang = doc.entry.lang;
    let mut words = HashSet::new();
    let mut edited: Vec<usize> = Vec::new();
    for &p in &doc.edits {
        if let Some(d) = details
            .defs
            .iter()
            .position(|d| d.range.start <= p && p <= d.range.end)
        {
            edited.push(d);
            words.extend(near_words(&doc.text, p, lang));
        }
    }
    let recency = n - 1 - i;
    let out = details
        .defs
        .iter()
        .enumerate()
        .filter_map(|(d, def)| {
            let named = def.names.iter().any(|w| ask.rank_words.contains(w));
            let near_edit = edited.contains(&d);
            (named || near_edit).then_some(((!named, !near_edit, recency, d), i, d))
        })
        .collect();
    (out, words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_insertion_is_an_edit_and_earlier_edits_move_with_the_text() {
        let old = "a\nbb\ncc\n";
        let new = "a\nbXb\ncc\n";
        assert_eq!(changed(old, new), (3, 3, 4));
        // An earlier edit on line 3 moves by one byte; one on line 1 stays.
        assert_eq!(moved_edits(old, new, vec![6, 0]), vec![3, 7, 0]);
        // A second edit on the same line replaces the first.
        assert_eq!(moved_edits(new, "a\nbXYb\ncc\n", vec![3]), vec![4]);
        // No change: the edits stay.
        assert_eq!(moved_edits(old, old, vec![1]), vec![1]);
    }

    #[test]
    fn deletions_and_multibyte_text_keep_char_boundaries() {
        assert_eq!(changed("héllo", "hllo"), (1, 3, 1));
        assert_eq!(changed("aé", "aè"), (1, 3, 3));
        assert_eq!(changed("xx", "xxx"), (2, 2, 3));
    }

    #[test]
    fn at_most_max_edits_are_kept() {
        let mut text = String::from("0\n1\n2\n3\n4\n5\n6\n");
        let mut edits = Vec::new();
        for line in 0..6 {
            let at = line * 3;
            let mut next = text.clone();
            next.insert(at, 'x');
            edits = moved_edits(&text, &next, edits);
            text = next;
        }
        assert_eq!(edits.len(), MAX_EDITS);
        assert_eq!(edits[0], 15, "the latest edit first: {edits:?}");
    }
}
