//! The use-driven repository context ([`Index::context_at`]): for each imported file, the
//! definitions of the names the current file uses from it — first the names in the function
//! around the cursor, then the rest of the file's uses, then the definitions those need (a
//! used class's base classes, followed through imports to a third file) — as signatures,
//! first docstring lines and class members; then, as the budget allows, whole small files,
//! whole outlines or more of each outline. When the prompt's window cuts the top of the
//! current file, its own definitions used near the cursor that were cut off come back as one
//! more block (last, under the current file's path).
//!
//! The result depends on the cursor only through the set of words of the function around it
//! (the word being typed excluded), so it stays byte-identical while the user types inside
//! one function, and the blocks stay in dependency order. This module does not cache (the
//! store does), does not decide budgets, and does not know about prompts or models.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::context::Source;
use crate::graph;
use crate::imports;
use crate::language::Language;
use crate::outline::{Def, Details};
use crate::recent::Ask;
use crate::render::block_text;
use crate::stop::{Stop, Stopped};
use crate::store::{content_hash, Current};
use crate::{ContextBlock, Index};

/// Where the cursor is and where the prompt's window of the current file starts (byte
/// offsets into the current text; `window_start` 0 when the prompt holds the file's top).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Focus {
    /// The cursor.
    pub cursor: usize,
    /// The first byte of the current file that the prompt holds.
    pub window_start: usize,
}

/// A definition whose whole text is at most this long goes in whole (bodies of small helpers
/// and constants say more than their signatures).
const SMALL_DEF_BYTES: usize = 320;

/// A definition's outline longer than this is cut to its used members.
const MAX_DEF_BYTES: usize = 1536;

/// How many imports deep a name is followed to the file that defines it (re-exports in
/// `__init__.py`, `pub use`, base classes imported by the defining file).
const MAX_HOPS: usize = 3;

/// Lines looked at above and below the cursor to find the function around it.
const LINES_UP: usize = 400;
const LINES_DOWN: usize = 200;

/// Outside any function: this many lines above and below the cursor are its neighbourhood.
const NEAR_LINES_UP: usize = 20;
const NEAR_LINES_DOWN: usize = 8;

/// Fewer tokens than this left: nothing more is tried.
pub(crate) const MIN_USEFUL_TOKENS: usize = 8;

/// Whole files above this size are not tried (they would not be small).
const MAX_WHOLE_BYTES: usize = 16 << 10;

/// How a file's block is made.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Choice {
    /// Some of its definitions (indices into `Details::defs`, sorted), each with whether it
    /// may go in whole when small (wanted ones) or only as its outline (the rest).
    Defs(Vec<(usize, bool)>),
    /// Its whole outline.
    Outline,
    /// Its whole text.
    Whole,
}

/// One file that may get a block.
struct File<'i> {
    rel: String,
    source: Option<Source<'i>>,
    /// Names wanted from this file, with their tier (0: near the cursor, 1: elsewhere).
    wants: BTreeMap<String, u8>,
    choice: Option<Choice>,
    cost: usize,
}

/// Renders a file's block from chosen definitions (see [`Growing::chosen`]).
pub(crate) type RenderDefs<'a> = dyn Fn(&[(usize, bool)]) -> String + 'a;

/// One file's block of chosen definitions, grown one definition at a time under a budget
/// shared with other blocks.
#[derive(Debug, Default)]
pub(crate) struct Growing {
    /// The definitions chosen (indices into `Details::defs`, sorted), each with whether it
    /// may go in whole.
    pub(crate) chosen: Vec<(usize, bool)>,
    /// Tokens the block costs now (path line included).
    pub(crate) cost: usize,
}

impl Growing {
    /// Adds definition `def` when the block, rendered by `render` and headed by `rel`, still
    /// fits in `remaining` plus what it costs now (`remaining` is charged the difference);
    /// whether it did.
    pub(crate) fn try_add(
        &mut self,
        def: (usize, bool),
        remaining: &mut usize,
        rel: &str,
        render: &RenderDefs,
        count_tokens: &dyn Fn(&str) -> usize,
    ) -> bool {
        let mut trial = self.chosen.clone();
        trial.push(def);
        trial.sort();
        let cost = count_tokens(&block_text(rel, &render(&trial)));
        if cost > *remaining + self.cost {
            return false;
        }
        *remaining = *remaining + self.cost - cost;
        self.cost = cost;
        self.chosen = trial;
        true
    }
}

impl Index {
    /// The use-driven repository context for a completion at `focus` in the file at `path`
    /// whose text is `text` (see the module documentation): blocks in dependency order, the
    /// current file's cut-off definitions last, within `budget_tokens` as counted by
    /// `count_tokens`.
    pub fn context_at(
        &self,
        path: &Path,
        text: &str,
        focus: Focus,
        count_tokens: &dyn Fn(&str) -> usize,
    ) -> Vec<ContextBlock> {
        self.context_at_until(path, text, focus, count_tokens, Stop::never())
            .unwrap_or_default()
    }

    /// [`Index::context_at`] that gives up when `stop` says so: `Err` then, never a partial
    /// context.
    pub fn context_at_until(
        &self,
        path: &Path,
        text: &str,
        focus: Focus,
        count_tokens: &dyn Fn(&str) -> usize,
        stop: Stop,
    ) -> Result<Vec<ContextBlock>, Stopped> {
        let span = tracing::debug_span!("context_at", path = %path.display());
        let _enter = span.enter();
        let started = std::time::Instant::now();
        let config = self.config();
        if config.budget_tokens == 0 || config.max_depth == 0 {
            return Ok(Vec::new());
        }
        let Some(lang) = crate::language_for_path(path) else {
            return Ok(Vec::new());
        };
        let Some(current) = Current::analyze(self, path, text, stop) else {
            stop.check_now()?;
            return Ok(Vec::new());
        };
        let nodes = self.reach(&current, &stop)?;
        let order = graph::order(&nodes);
        let near = near_words(text, focus.cursor, lang);
        let used = &current.used;

        let mut files: Vec<File> = nodes
            .iter()
            .map(|n| File {
                rel: self.roots.relative(&n.path),
                source: Source::new(self, &n.path),
                wants: BTreeMap::new(),
                choice: None,
                cost: 0,
            })
            .collect();
        let index_of: HashMap<&Path, usize> = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.path.as_path(), i))
            .collect();
        let pending = seed_wants(&current, &mut files, &index_of, &near, stop)?;
        self.follow_wants(pending, &mut files, &index_of, stop)?;
        let by_relevance = by_relevance(&files, &nodes);

        let mut budget = Budget {
            remaining: config.budget_tokens,
            count_tokens,
            stop,
        };
        let own = self.own_block(&current, text, focus, lang, &near, &mut budget)?;
        choose_wanted(&mut files, &nodes, &by_relevance, used, &mut budget)?;
        choose_more(&mut files, &nodes, &by_relevance, used, &mut budget)?;

        let mut blocks = render_blocks(&mut files, &nodes, &order, used, stop)?;
        let ask = Ask {
            current: &current.path,
            reached: nodes.iter().map(|n| n.path.as_path()).collect(),
            rank_words: &near,
            used,
            budget: budget.remaining,
        };
        blocks.extend(self.recent_blocks(&ask, count_tokens, &stop)?);
        blocks.extend(own);
        tracing::debug!(
            context_ms = format_args!("{:.3}", started.elapsed().as_secs_f64() * 1e3),
            files = nodes.len(),
            blocks = blocks.len(),
            "context built"
        );
        Ok(blocks)
    }

    /// Follows the wanted names of `pending` to the files that define them, recording each
    /// name's best tier in its file's `wants`: through re-exports, and on to the base classes
    /// of the definitions found (in the same file, or imported, while hops are left).
    fn follow_wants(
        &self,
        mut pending: Vec<Want>,
        files: &mut [File],
        index_of: &HashMap<&Path, usize>,
        stop: Stop,
    ) -> Result<(), Stopped> {
        let mut steps = 0usize;
        while let Some((file, name, t, hops)) = pending.pop() {
            steps += 1;
            if steps > 4096 {
                break;
            }
            stop.check_now()?;
            let Some(&i) = index_of.get(file.as_path()) else {
                continue;
            };
            let Some(source) = files[i].source.as_mut() else {
                continue;
            };
            let details = source.details();
            if let Some(def) = details.defs.iter().find(|d| d.names.contains(&name)) {
                let better = files[i].wants.get(&name).is_none_or(|&old| t < old);
                if !better {
                    continue;
                }
                files[i].wants.insert(name.clone(), t);
                // What the definition needs: base classes, here or imported.
                for base in bases(lang_of(&file), details.def_outline(def)) {
                    if base == name {
                        continue;
                    }
                    if details.defines(&base) {
                        pending.push((file.clone(), base, t, hops));
                    } else if hops > 0 {
                        pending.extend(
                            self.imported_as(&file, &base)
                                .into_iter()
                                .map(|(target, remote)| (target, remote, t, hops - 1)),
                        );
                    }
                }
            } else if hops > 0 {
                // A re-export: follow the file's import of that name (or its globs).
                pending.extend(
                    self.imported_as(&file, &name)
                        .into_iter()
                        .map(|(target, remote)| (target, remote, t, hops - 1)),
                );
            }
        }
        Ok(())
    }

    /// The block of the current file's own definitions that the window cut off and that are
    /// used near the cursor (`None` when the window holds the file's top, or none fits),
    /// charged to `budget`.
    fn own_block(
        &self,
        current: &Current,
        text: &str,
        focus: Focus,
        lang: Language,
        near: &HashSet<String>,
        budget: &mut Budget,
    ) -> Result<Option<ContextBlock>, Stopped> {
        let mut own: Option<ContextBlock> = None;
        if focus.window_start > 0 && focus.window_start < text.len() {
            let mut cut = focus.window_start;
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            let head = &text[..cut];
            let details = self.head_details(&current.path, lang, head);
            let wanted = wanted_defs(&details, lang, &|n| near.contains(n));
            if !wanted.is_empty() {
                let rel = self.roots.relative(&current.path);
                let mut grow = Growing::default();
                let used = &current.used;
                let render = |defs: &[(usize, bool)]| render_defs(&details, head, defs, lang, used);
                for d in wanted {
                    budget.stop.check_now()?;
                    grow.try_add(
                        (d, true),
                        &mut budget.remaining,
                        &rel,
                        &render,
                        budget.count_tokens,
                    );
                }
                if !grow.chosen.is_empty() {
                    own = Some(ContextBlock {
                        path: rel,
                        text: render(&grow.chosen),
                    });
                }
            }
        }
        Ok(own)
    }

    /// The files and names through which `file` imports `name`: its named imports of it, and
    /// its glob imports (which may hold it).
    fn imported_as(&self, file: &Path, name: &str) -> Vec<(PathBuf, String)> {
        let Some(entry) = self.entry(file) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for edge in self.edges(file, &entry).iter() {
            if let Some(b) = edge.names.iter().find(|b| b.local() == name) {
                out.push((edge.target.clone(), b.name.clone()));
            } else if edge.glob {
                out.push((edge.target.clone(), name.to_string()));
            }
        }
        out
    }

    /// The outline and definitions of the top of the current file that the window cut off,
    /// kept for one text at a time (it stays the same while the user types below it).
    fn head_details(&self, path: &Path, lang: Language, head: &str) -> Arc<Details> {
        let hash = content_hash(head);
        let mut kept = self.heads.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((p, h, d)) = kept.as_ref() {
            if p == path && *h == hash {
                return d.clone();
            }
        }
        let details = Arc::new(
            lang.parse(head)
                .map(|tree| crate::outline::details(lang, &tree, head))
                .unwrap_or_default(),
        );
        *kept = Some((path.to_path_buf(), hash, details.clone()));
        details
    }
}

/// A name wanted from a file: (file, name in that file, tier, hops left).
type Want = (PathBuf, String, u8, usize);

/// The tokens left for the blocks of one context, how they are counted, and when to give up.
struct Budget<'a> {
    remaining: usize,
    count_tokens: &'a dyn Fn(&str) -> usize,
    stop: Stop<'a>,
}

/// The names the current file uses through its imports, to be followed to their definitions:
/// the names it imports and uses, and for glob and module imports the used names that the
/// imported file defines (not followed further). Tier 0 for names near the cursor, else 1.
fn seed_wants(
    current: &Current,
    files: &mut [File],
    index_of: &HashMap<&Path, usize>,
    near: &HashSet<String>,
    stop: Stop,
) -> Result<Vec<Want>, Stopped> {
    let used = &current.used;
    let tier = |name: &str| u8::from(!near.contains(name));
    let mut pending: Vec<Want> = Vec::new();
    for edge in current.edges.iter() {
        stop.check_now()?;
        for binding in &edge.names {
            if used.contains(binding.local()) {
                let t = tier(binding.local());
                pending.push((edge.target.clone(), binding.name.clone(), t, MAX_HOPS));
            }
        }
        let module_used = edge.modules.iter().any(|m| used.contains(m.as_str()));
        if edge.glob || module_used {
            if let Some(&i) = index_of.get(edge.target.as_path()) {
                if let Some(source) = files[i].source.as_mut() {
                    for def in &source.details().defs {
                        for name in def.names.iter().filter(|n| used.contains(n.as_str())) {
                            pending.push((edge.target.clone(), name.clone(), tier(name), 0));
                        }
                    }
                }
            }
        }
    }
    Ok(pending)
}

/// File indices by relevance: files with names near the cursor first, then files with other
/// uses, then the rest; within each, by depth and path.
fn by_relevance(files: &[File], nodes: &[graph::Node]) -> Vec<usize> {
    let mut ranked: Vec<(u8, usize, String, usize)> = files
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let best = f.wants.values().min().copied().unwrap_or(2);
            (best, nodes[i].depth, f.rel.clone(), i)
        })
        .collect();
    ranked.sort();
    ranked.iter().map(|r| r.3).collect()
}

/// Pass 1: each file's wanted definitions, near ones first, file by file in `by_relevance`
/// order, while the budget lasts.
fn choose_wanted(
    files: &mut [File],
    nodes: &[graph::Node],
    by_relevance: &[usize],
    used: &HashSet<String>,
    budget: &mut Budget,
) -> Result<(), Stopped> {
    for &i in by_relevance {
        if budget.remaining < MIN_USEFUL_TOKENS {
            break;
        }
        budget.stop.check_now()?;
        let file = &mut files[i];
        if file.wants.is_empty() {
            continue;
        }
        let Some(source) = file.source.as_mut() else {
            continue;
        };
        let details = source.details();
        let Some(text) = source.text() else { continue };
        let flang = lang_of(&nodes[i].path);
        let mut wanted: Vec<(u8, usize)> = details
            .defs
            .iter()
            .enumerate()
            .filter_map(|(d, def)| {
                let t = def.names.iter().filter_map(|n| file.wants.get(n)).min()?;
                Some((*t, d))
            })
            .collect();
        wanted.sort();
        let mut grow = Growing {
            chosen: Vec::new(),
            cost: file.cost,
        };
        let render = |defs: &[(usize, bool)]| render_defs(&details, &text, defs, flang, used);
        for (_, d) in wanted {
            let remaining = &mut budget.remaining;
            grow.try_add(
                (d, true),
                remaining,
                &file.rel,
                &render,
                budget.count_tokens,
            );
        }
        file.cost = grow.cost;
        if !grow.chosen.is_empty() {
            file.choice = Some(Choice::Defs(grow.chosen));
        }
    }
    Ok(())
}

/// Pass 2: for each file in `by_relevance` order while the budget lasts, its whole text when
/// small enough, else its whole outline, else more of its definitions (see [`grow_outline`]).
fn choose_more(
    files: &mut [File],
    nodes: &[graph::Node],
    by_relevance: &[usize],
    used: &HashSet<String>,
    budget: &mut Budget,
) -> Result<(), Stopped> {
    for &i in by_relevance {
        if budget.remaining < MIN_USEFUL_TOKENS {
            break;
        }
        budget.stop.check_now()?;
        let file = &mut files[i];
        let Some(source) = file.source.as_mut() else {
            continue;
        };
        let flang = lang_of(&nodes[i].path);
        let len = source.entry.len;
        let room = budget.remaining + file.cost;
        if len <= MAX_WHOLE_BYTES && len <= room.saturating_mul(16) {
            if let Some(text) = source.text().filter(|t| !t.trim().is_empty()) {
                let c = (budget.count_tokens)(&block_text(&file.rel, &text));
                if c <= room {
                    budget.remaining = room - c;
                    file.cost = c;
                    file.choice = Some(Choice::Whole);
                    continue;
                }
            }
        }
        let details = source.details();
        let outline = compact(&details.outline, flang);
        if outline.trim().is_empty() {
            continue;
        }
        if outline.len() <= room.saturating_mul(16) {
            let c = (budget.count_tokens)(&block_text(&file.rel, &outline));
            if c <= room {
                budget.remaining = room - c;
                file.cost = c;
                file.choice = Some(Choice::Outline);
                continue;
            }
        }
        grow_outline(file, &details, flang, used, budget);
    }
    Ok(())
}

/// Adds to `file`'s chosen definitions (if any) more of its definitions, in outline order, as
/// outlines only, until the budget runs low or four in a row do not fit.
fn grow_outline(
    file: &mut File,
    details: &Details,
    flang: Language,
    used: &HashSet<String>,
    budget: &mut Budget,
) {
    let Some(source) = file.source.as_mut() else {
        return;
    };
    let Some(text) = source.text() else { return };
    let mut grow = Growing {
        chosen: match &file.choice {
            Some(Choice::Defs(d)) => d.clone(),
            _ => Vec::new(),
        },
        cost: file.cost,
    };
    let render = |defs: &[(usize, bool)]| render_defs(details, &text, defs, flang, used);
    let mut misses = 0;
    for d in 0..details.defs.len() {
        if grow.chosen.iter().any(|c| c.0 == d) {
            continue;
        }
        if budget.remaining < MIN_USEFUL_TOKENS || misses >= 4 {
            break;
        }
        let remaining = &mut budget.remaining;
        if grow.try_add(
            (d, false),
            remaining,
            &file.rel,
            &render,
            budget.count_tokens,
        ) {
            misses = 0;
        } else {
            misses += 1;
        }
    }
    file.cost = grow.cost;
    if !grow.chosen.is_empty() {
        file.choice = Some(Choice::Defs(grow.chosen));
    }
}

/// The blocks of the chosen files, in dependency `order`: each file's whole text, compact
/// outline or rendered definitions (blank ones left out).
fn render_blocks(
    files: &mut [File],
    nodes: &[graph::Node],
    order: &[usize],
    used: &HashSet<String>,
    stop: Stop,
) -> Result<Vec<ContextBlock>, Stopped> {
    let mut blocks = Vec::new();
    for &i in order {
        stop.check_now()?;
        let file = &mut files[i];
        let (Some(choice), Some(source)) = (file.choice.clone(), file.source.as_mut()) else {
            continue;
        };
        let flang = lang_of(&nodes[i].path);
        let text = match choice {
            Choice::Whole => source.text().map(|t| t.to_string()),
            Choice::Outline => Some(compact(&source.details().outline, flang)),
            Choice::Defs(d) => {
                let details = source.details();
                source
                    .text()
                    .map(|t| render_defs(&details, &t, &d, flang, used))
            }
        };
        if let Some(text) = text.filter(|t| !t.trim().is_empty()) {
            blocks.push(ContextBlock {
                path: file.rel.clone(),
                text,
            });
        }
    }
    Ok(blocks)
}

fn lang_of(path: &Path) -> Language {
    crate::language_for_path(path).unwrap_or(Language::Python)
}

/// The definitions of `details` whose names `wanted` accepts, with the definitions of the
/// same file their outlines name as base classes; sorted by position.
fn wanted_defs(details: &Details, lang: Language, wanted: &dyn Fn(&str) -> bool) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    let mut queue: Vec<usize> = details
        .defs
        .iter()
        .enumerate()
        .filter(|(_, d)| d.names.iter().any(|n| wanted(n)))
        .map(|(i, _)| i)
        .collect();
    while let Some(d) = queue.pop() {
        if out.contains(&d) || out.len() > 64 {
            continue;
        }
        out.push(d);
        for base in bases(lang, details.def_outline(&details.defs[d])) {
            if let Some(b) = details.defs.iter().position(|x| x.names.contains(&base)) {
                queue.push(b);
            }
        }
    }
    out.sort();
    out
}

/// The names a definition's header lists as base classes (`class A(B, m.C):` gives `B`, `m`,
/// `C`); Rust definitions give none (their `impl` blocks carry the type's name).
fn bases(lang: Language, outline: &str) -> Vec<String> {
    if lang != Language::Python {
        return Vec::new();
    }
    let Some(header) = outline
        .lines()
        .find(|l| l.trim_start().starts_with("class "))
    else {
        return Vec::new();
    };
    let (Some(open), Some(close)) = (header.find('('), header.rfind(')')) else {
        return Vec::new();
    };
    if close <= open {
        return Vec::new();
    }
    header[open + 1..close]
        .split(',')
        .filter(|part| !part.contains('='))
        .flat_map(imports::words)
        .filter(|w| !matches!(*w, "object" | "Generic" | "Protocol"))
        .map(str::to_string)
        .collect()
}

/// The text for some definitions of a file (indices into `details.defs`, sorted): each whole
/// when small, else its compact outline cut to the members `used` names; a blank line between
/// multi-line parts.
pub(crate) fn render_defs(
    details: &Details,
    text: &str,
    defs: &[(usize, bool)],
    lang: Language,
    used: &HashSet<String>,
) -> String {
    let mut out = String::new();
    let mut last_multiline = false;
    for &(d, may_be_whole) in defs {
        let Some(def) = details.defs.get(d) else {
            continue;
        };
        let part = def_text(details, def, text, lang, used, may_be_whole);
        let part = part.trim_end();
        if part.is_empty() {
            continue;
        }
        let multiline = part.contains('\n');
        if !out.is_empty() && (multiline || last_multiline) {
            out.push('\n');
        }
        last_multiline = multiline;
        out.push_str(part);
        out.push('\n');
    }
    out
}

fn def_text(
    details: &Details,
    def: &Def,
    text: &str,
    lang: Language,
    used: &HashSet<String>,
    may_be_whole: bool,
) -> String {
    let whole = text.get(def.range.clone()).unwrap_or("");
    if may_be_whole && !whole.is_empty() && whole.len() <= SMALL_DEF_BYTES {
        // Whole, from the start of its line (indentation kept).
        let start = text[..def.range.start].rfind('\n').map_or(0, |i| i + 1);
        return text.get(start..def.range.end).unwrap_or(whole).to_string();
    }
    let outline = compact(details.def_outline(def), lang);
    if outline.len() <= MAX_DEF_BYTES {
        return outline;
    }
    members(&outline, used)
}

/// An outline with Python docstrings cut to their first line.
pub(crate) fn compact(outline: &str, lang: Language) -> String {
    if lang != Language::Python {
        return outline.to_string();
    }
    let mut out = String::with_capacity(outline.len());
    let mut lines = outline.split_inclusive('\n');
    while let Some(line) = lines.next() {
        let trimmed = line.trim_start();
        let quote = ["\"\"\"", "'''", "r\"\"\"", "r'''"]
            .into_iter()
            .find(|q| trimmed.starts_with(q));
        let Some(quote) = quote else {
            out.push_str(line);
            continue;
        };
        let delim = &quote[quote.len() - 3..];
        let after = &trimmed[quote.len()..];
        if after.contains(delim) {
            out.push_str(line);
            continue;
        }
        // A multi-line docstring: keep its first line of text, close it there.
        let indent = &line[..line.len() - trimmed.len()];
        let mut first = after.trim_end().to_string();
        let mut closed = false;
        if first.is_empty() {
            if let Some(next) = lines.next() {
                if let Some(at) = next.find(delim) {
                    first = next[..at].trim().to_string();
                    closed = true;
                } else {
                    first = next.trim().to_string();
                }
            }
        }
        if !closed {
            for rest in lines.by_ref() {
                if rest.contains(delim) {
                    break;
                }
            }
        }
        out.push_str(indent);
        out.push_str(quote);
        out.push_str(&first);
        out.push_str(delim);
        out.push('\n');
    }
    out
}

/// A long class or `impl` outline cut to its header, its constructor and the members whose
/// names `used` holds (members are the lines at the first indentation below the header, with
/// what follows them more deeply indented); a `...` line where members were left out.
fn members(outline: &str, used: &HashSet<String>) -> String {
    let lines: Vec<&str> = outline.split_inclusive('\n').collect();
    let indent_of = |l: &str| l.len() - l.trim_start().len();
    let Some(member_indent) = lines
        .iter()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| indent_of(l))
        .find(|&i| i > indent_of(lines[0]))
    else {
        return outline.to_string();
    };
    // Chunks: [start, end) line ranges, each starting at a member line.
    let mut chunks: Vec<(usize, usize)> = Vec::new();
    let mut head_end = lines.len();
    for (i, l) in lines.iter().enumerate().skip(1) {
        if l.trim().is_empty() {
            continue;
        }
        let ind = indent_of(l);
        let starts_member = ind == member_indent
            && !l.trim_start().starts_with(['"', '\'', ')', '}', ']'])
            && chunks.last().is_none_or(|c| {
                // Decorators and attributes start the chunk of what they lead.
                let prev = lines[i - 1].trim_start();
                !(prev.starts_with('@') || prev.starts_with("#[") || prev.starts_with("///"))
                    || c.0 == i
            });
        if ind < member_indent {
            if let Some(last) = chunks.last_mut() {
                last.1 = i;
            }
            chunks.push((i, lines.len()));
            break;
        }
        if starts_member {
            if chunks.is_empty() {
                head_end = head_end.min(i);
            }
            if let Some(last) = chunks.last_mut() {
                last.1 = i;
            }
            chunks.push((i, lines.len()));
        }
    }
    if chunks.is_empty() {
        return outline.to_string();
    }
    let head_end = head_end.min(chunks[0].0);
    let mut out: String = lines[..head_end].concat();
    let mut skipped = false;
    let pad = " ".repeat(member_indent);
    for &(s, e) in &chunks {
        let chunk = &lines[s..e];
        let name = chunk
            .iter()
            .map(|l| l.trim_start())
            .find(|l| !l.starts_with('@') && !l.starts_with("#[") && !l.starts_with("//"))
            .and_then(|l| member_name(l));
        let closing = indent_of(chunk[0]) < member_indent;
        let keep = closing
            || name.is_some_and(|n| {
                used.contains(n) || matches!(n, "__init__" | "new" | "__new__" | "__call__")
            });
        if keep {
            if std::mem::take(&mut skipped) {
                out.push_str(&pad);
                out.push_str("...\n");
            }
            out.push_str(&chunk.concat());
        } else {
            skipped = true;
        }
    }
    if skipped {
        out.push_str(&pad);
        out.push_str("...\n");
    }
    out
}

/// The name a member line introduces: `def f(`, `async def f(`, `fn f(`, `pub fn f<`,
/// `X = ..`, `x: int`, `const X`, `type T`.
fn member_name(line: &str) -> Option<&str> {
    let mut words = imports::words(line);
    let mut first = words.next()?;
    while matches!(
        first,
        "pub" | "crate" | "super" | "async" | "unsafe" | "const" | "extern" | "static"
    ) {
        match words.next() {
            Some(w) => first = w,
            None => return Some(first),
        }
    }
    if matches!(
        first,
        "def" | "fn" | "class" | "type" | "struct" | "enum" | "trait"
    ) {
        return words.next();
    }
    Some(first)
}

/// The words of the function around `cursor` (or, outside any function, of the lines around
/// it), without the word being typed at the cursor. A textual scan by indentation (Python
/// blocks, and Rust as formatted), so that it costs no parse per keystroke.
///
/// The function is found by lines, not by the cursor's column, so that it stays the same while
/// a function is typed: a line that holds nothing yet but the word being typed (a fresh line,
/// its indentation half typed) continues the nearest non-blank line above it; a header or a
/// decorator (attribute) line, that one or the cursor's own, starts the function.
pub(crate) fn near_words(text: &str, cursor: usize, lang: Language) -> HashSet<String> {
    let mut cursor = cursor.min(text.len());
    while !text.is_char_boundary(cursor) {
        cursor -= 1;
    }
    let partial = text[..cursor]
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_alphanumeric() || *c == '_')
        .last()
        .map_or(cursor, |(i, _)| i);
    let line_start = text[..cursor].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[cursor..].find('\n').map_or(text.len(), |i| cursor + i);
    let indent = |l: &str| l.len() - l.trim_start().len();
    let above: Vec<(usize, &str)> = line_offsets_rev(text, line_start, LINES_UP);

    // The line that places the cursor: its own, or for a fresh line the nearest non-blank line
    // above. A header or decorator (attribute) there starts the function.
    let before_word = &text[line_start..partial];
    let fresh = before_word.trim().is_empty() && text[cursor..line_end].trim().is_empty();
    let placed = if fresh {
        above
            .iter()
            .position(|(_, l)| !l.trim().is_empty())
            .map(|i| (above[i].0, above[i].1, i + 1))
    } else {
        Some((line_start, &text[line_start..line_end], 0))
    };
    let mut header: Option<(usize, usize)> = None; // (offset, indentation)
    let mut scan_from = 0; // lines of `above` already passed
    let mut limit = usize::MAX;
    if let Some((offset, line, passed)) = placed {
        let t = line.trim_start();
        let decorator = match lang {
            Language::Python => t.starts_with('@'),
            Language::Rust => t.starts_with("#["),
        };
        if decorator || is_header(t, lang) {
            header = Some((offset, indent(line)));
        } else {
            // A closing bracket line belongs to the block it closes.
            limit = indent(line) + usize::from(t.starts_with([')', ']', '}']));
            scan_from = passed;
        }
    }

    // Up: the nearest function header less indented than the placing line.
    if header.is_none() && placed.is_some() {
        for &(offset, line) in &above[scan_from..] {
            if line.trim().is_empty() {
                continue;
            }
            let ind = indent(line);
            let t = line.trim_start();
            if is_header(t, lang) && ind < limit {
                header = Some((offset, ind));
                break;
            }
            let continuation = t.starts_with([')', '{', '-', '"', '\'', '#', '@', ']', '}'])
                || t.starts_with("where")
                || t.starts_with("//");
            if continuation {
                continue;
            }
            limit = limit.min(ind);
            if ind == 0 {
                break;
            }
        }
    }
    let (start, end) = match header {
        Some((offset, ind)) => {
            // Down: until a non-blank line indented no deeper than the header.
            let mut end = text.len();
            let mut at = line_end;
            for _ in 0..LINES_DOWN {
                if at >= text.len() {
                    break;
                }
                let next_start = at + 1;
                let next_end = text[next_start..]
                    .find('\n')
                    .map_or(text.len(), |i| next_start + i);
                let line = &text[next_start..next_end];
                if !line.trim().is_empty() && indent(line) <= ind {
                    let t = line.trim_start();
                    if !t.starts_with([')', '}', ']']) {
                        end = next_start;
                        break;
                    }
                }
                at = next_end;
                end = next_end;
            }
            (offset, end)
        }
        None => {
            let start = above
                .get(NEAR_LINES_UP.min(above.len().saturating_sub(1)))
                .map_or(line_start, |&(o, _)| o);
            let mut end = line_end;
            for _ in 0..NEAR_LINES_DOWN {
                if end >= text.len() {
                    break;
                }
                end = text[end + 1..]
                    .find('\n')
                    .map_or(text.len(), |i| end + 1 + i);
            }
            (start.min(line_start), end)
        }
    };
    let mut out: HashSet<String> = imports::words(&text[start..partial])
        .map(str::to_string)
        .collect();
    out.extend(imports::words(&text[cursor..end.max(cursor)]).map(str::to_string));
    out
}

/// The lines above `line_start` (nearest first) with their start offsets, at most `max`.
fn line_offsets_rev(text: &str, line_start: usize, max: usize) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut end = line_start; // exclusive end of the previous line's newline
    while end > 0 && out.len() < max {
        let body_end = end - 1; // the '\n'
        let start = text[..body_end].rfind('\n').map_or(0, |i| i + 1);
        out.push((start, &text[start..body_end]));
        end = start;
    }
    out
}

/// Whether a (trimmed) line is a function's header.
fn is_header(t: &str, lang: Language) -> bool {
    match lang {
        Language::Python => t.starts_with("def ") || t.starts_with("async def "),
        Language::Rust => {
            let mut words = t.split_whitespace();
            for w in words.by_ref() {
                if w == "fn" {
                    return true;
                }
                let modifier = w.starts_with("pub")
                    || matches!(
                        w,
                        "async" | "const" | "unsafe" | "extern" | "\"C\"" | "default"
                    );
                if !modifier {
                    return false;
                }
            }
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn near(text: &str) -> Vec<String> {
        let cursor = text.find("$0").unwrap();
        let text = text.replace("$0", "");
        let mut words: Vec<String> = near_words(&text, cursor, Language::Python)
            .into_iter()
            .collect();
        words.sort();
        words
    }

    #[test]
    fn near_words_are_the_function_around_the_cursor_without_the_partial_word() {
        let text = "import a\n\ndef far():\n    far_call()\n\nclass C(Base):\n    def m(self, x):\n        if x:\n            y = helper(x)\n            return y.pa$0\n        z = 2\n\n    def other(self):\n        other_call()\n";
        assert_eq!(
            near(text),
            ["def", "helper", "if", "m", "return", "self", "x", "y", "z"]
        );
    }

    #[test]
    fn near_words_outside_functions_are_the_lines_around() {
        let text = "X = 1\nY = make(X)\nZ = Y.$0\n";
        assert_eq!(near(text), ["X", "Y", "Z", "make"]);
    }

    #[test]
    fn rust_multiline_signature_is_found() {
        let text = "fn far() { gone(); }\n\nfn near(\n    a: A,\n) -> B {\n    let v = a.build();\n    v.$0\n}\n";
        let cursor = text.find("$0").unwrap();
        let text = text.replace("$0", "");
        let words = near_words(&text, cursor, Language::Rust);
        assert!(words.contains("build") && words.contains("A") && words.contains("B"));
        assert!(!words.contains("gone"), "{words:?}");
    }

    #[test]
    fn docstrings_are_cut_to_their_first_line() {
        let outline = "def f(x):\n    \"\"\"Do it.\n\n    Long story.\n    \"\"\"\n    ...\n\ndef g():\n    \"\"\"\n    Second style.\n    More.\n    \"\"\"\n    ...\n";
        assert_eq!(
            compact(outline, Language::Python),
            "def f(x):\n    \"\"\"Do it.\"\"\"\n    ...\n\ndef g():\n    \"\"\"Second style.\"\"\"\n    ...\n"
        );
    }

    #[test]
    fn long_classes_are_cut_to_used_members() {
        let outline = "class C(B):\n    \"\"\"Doc.\"\"\"\n    X = 1\n    def __init__(self): ...\n    def used(self): ...\n    @property\n    def skipped(self): ...\n    def also(self): ...\n";
        let used: HashSet<String> = ["used", "X"].iter().map(|s| s.to_string()).collect();
        assert_eq!(
            members(outline, &used),
            "class C(B):\n    \"\"\"Doc.\"\"\"\n    X = 1\n    def __init__(self): ...\n    def used(self): ...\n    ...\n"
        );
    }

    #[test]
    fn bases_of_a_class_header() {
        assert_eq!(
            bases(
                Language::Python,
                "class A(B, m.C, metaclass=Meta):\n    ...\n"
            ),
            ["B", "m", "C"]
        );
        assert!(bases(Language::Python, "def f(a, b): ...\n").is_empty());
    }
}
