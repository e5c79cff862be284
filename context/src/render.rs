//! Filling a token budget: given candidate files ranked by relevance, takes each whole if it
//! fits, else its outline if that fits, else nothing, and returns the choices in dependency
//! order as [`ContextBlock`]s.
//!
//! Tokens are counted by the caller's function (the model's tokenizer in the server) on the
//! block as the engine will see it: the path on one line, then the text. This module does not
//! rank, order or read files; it is handed both orders.

use crate::ContextBlock;

/// Once less than this many tokens are left, nothing else is tried.
const MIN_USEFUL_TOKENS: usize = 8;

/// Code tokenizes at 3–5 bytes a token; even runs of indentation stay well under this many. A
/// text longer than `remaining * MAX_BYTES_PER_TOKEN` bytes is taken not to fit without
/// counting (nor reading) it.
const MAX_BYTES_PER_TOKEN: usize = 16;

/// One file that may go into the context.
pub(crate) struct Candidate<'a> {
    /// Workspace-relative path.
    pub(crate) path: String,
    /// Bytes of the whole text (known without reading it).
    pub(crate) len: usize,
    /// Produces the whole text (`false`) or the outline (`true`), read only when tried.
    pub(crate) load: Box<dyn FnMut(bool) -> Option<String> + 'a>,
}

/// Picks blocks for `candidates` under `budget` tokens. `by_relevance` and `by_dependency` are
/// two orders of indices into `candidates`; the first decides who gets the budget first, the
/// second is the order of the result. Also returns the tokens left.
pub(crate) fn fill(
    candidates: Vec<Candidate<'_>>,
    by_relevance: &[usize],
    by_dependency: &[usize],
    budget: usize,
    count_tokens: &dyn Fn(&str) -> usize,
) -> (Vec<ContextBlock>, usize) {
    let mut slots: Vec<Option<Candidate>> = candidates.into_iter().map(Some).collect();
    let mut chosen: Vec<Option<ContextBlock>> = (0..slots.len()).map(|_| None).collect();
    let mut remaining = budget;
    for &i in by_relevance {
        if remaining < MIN_USEFUL_TOKENS {
            break;
        }
        let Some(mut candidate) = slots.get_mut(i).and_then(Option::take) else {
            continue;
        };
        let path = candidate.path;
        if !too_long(&path, candidate.len, remaining) {
            if let Some(text) = (candidate.load)(false) {
                if text.trim().is_empty() {
                    continue;
                }
                if let Some(cost) = cost_within(&path, &text, remaining, count_tokens) {
                    remaining -= cost;
                    chosen[i] = Some(ContextBlock { path, text });
                    continue;
                }
            }
        }
        let Some(outline) = (candidate.load)(true).filter(|o| !o.trim().is_empty()) else {
            continue;
        };
        if let Some(cost) = cost_within(&path, &outline, remaining, count_tokens) {
            remaining -= cost;
            chosen[i] = Some(ContextBlock {
                path,
                text: outline,
            });
        }
    }
    let blocks = by_dependency
        .iter()
        .filter_map(|&i| chosen.get_mut(i)?.take())
        .collect();
    (blocks, remaining)
}

/// The tokens of a block, if at most `remaining`.
fn cost_within(
    path: &str,
    text: &str,
    remaining: usize,
    count_tokens: &dyn Fn(&str) -> usize,
) -> Option<usize> {
    if too_long(path, text.len(), remaining) {
        return None;
    }
    let cost = count_tokens(&block_text(path, text));
    (cost <= remaining).then_some(cost)
}

/// Whether a block of `len` bytes is sure not to fit in `remaining` tokens.
fn too_long(path: &str, len: usize, remaining: usize) -> bool {
    len + path.len() > remaining.saturating_mul(MAX_BYTES_PER_TOKEN)
}

/// The text whose tokens are counted for a block: its path line and its text.
pub(crate) fn block_text(path: &str, text: &str) -> String {
    let mut out = String::with_capacity(path.len() + text.len() + 1);
    out.push_str(path);
    out.push('\n');
    out.push_str(text);
    out
}
