//! How much of a prompt a cached token sequence spares: the start both share, and a later
//! run of cached tokens that reappears further on in the prompt (the text after the cursor,
//! moved by an edit before it), which the engine shifts instead of evaluating again (see
//! `engine::kv`). The engine's KV bookkeeping and its choice among saved per-document states
//! ([`crate::doc_state`]) both measure with these.
//!
//! Pure functions of token lists: no model, no cache.

use llama_cpp_2::token::LlamaToken;

/// Shortest run that counts as shiftable when states are compared (the engine's own minimum
/// is its `reuse_min_tokens` plus the refresh).
pub(crate) const MIN_RUN: usize = 16;

/// The number of leading tokens `a` and `b` share.
pub(crate) fn shared_start(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Tokens of `prompt` that a sequence holding `cached` need not evaluate: the shared start and
/// the longest shiftable run after it.
pub(crate) fn reusable(cached: &[LlamaToken], prompt: &[LlamaToken]) -> usize {
    let n = shared_start(cached, prompt).min(prompt.len().saturating_sub(1));
    n + find_shift(cached, prompt, n, MIN_RUN).map_or(0, |s| s.len)
}

/// A run of cached tokens reused at another position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shift {
    pub(crate) cache_start: usize,
    pub(crate) prompt_start: usize,
    pub(crate) len: usize,
}

/// The longest run of at least `min` cached tokens (after the common prefix `n_past`) that
/// reappears further on in `prompt` (before its last token). The longest, not the first: text
/// the user types often repeats the text after the cursor (a line like the next one, a copy
/// of a block), and the first run found would then be that short echo, leaving the real
/// suffix to be evaluated again.
pub(crate) fn find_shift(
    cached: &[LlamaToken],
    prompt: &[LlamaToken],
    n_past: usize,
    min: usize,
) -> Option<Shift> {
    let end = prompt.len().saturating_sub(1);
    if cached.len() <= n_past || end <= n_past {
        return None;
    }
    let window = min.max(1);
    let cache_tail = &cached[n_past..];
    // Index the cache by the first `window` tokens of each run.
    let mut starts: std::collections::HashMap<&[LlamaToken], usize> = Default::default();
    for i in 0..cache_tail.len().saturating_sub(window - 1) {
        starts.entry(&cache_tail[i..i + window]).or_insert(i);
    }
    let mut best: Option<Shift> = None;
    let mut p = n_past;
    while p + window <= end {
        let Some(&c) = starts.get(&prompt[p..p + window]) else {
            p += 1;
            continue;
        };
        let cache_start = n_past + c;
        let len = cached[cache_start..]
            .iter()
            .zip(&prompt[p..end])
            .take_while(|(x, y)| x == y)
            .count();
        if len >= min && best.is_none_or(|b| len > b.len) {
            best = Some(Shift {
                cache_start,
                prompt_start: p,
                len,
            });
        }
        // A longer run starting inside this one would have to repeat it: go on after it.
        p += len.max(1);
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(v: &[i32]) -> Vec<LlamaToken> {
        v.iter().map(|&t| LlamaToken::new(t)).collect()
    }

    #[test]
    fn finds_the_unchanged_suffix_after_an_edit() {
        // cache: prefix(1,2,3) old(4) suffix(10..20) mid(99) generated(7,7)
        let mut cached = toks(&[1, 2, 3, 4]);
        cached.extend(toks(&(10..20).collect::<Vec<_>>()));
        cached.extend(toks(&[99, 7, 7]));
        let mut prompt = toks(&[1, 2, 3, 5, 6]);
        prompt.extend(toks(&(10..20).collect::<Vec<_>>()));
        prompt.extend(toks(&[99]));
        let n_past = shared_start(&cached, &prompt);
        assert_eq!(n_past, 3);
        let sh = find_shift(&cached, &prompt, n_past, 4).unwrap();
        assert_eq!(
            sh,
            Shift {
                cache_start: 4,
                prompt_start: 5,
                len: 10
            }
        );
    }

    #[test]
    fn no_shift_for_short_runs_or_identical_prompts() {
        let cached = toks(&[1, 2, 3, 4, 5, 6]);
        assert_eq!(find_shift(&cached, &toks(&[1, 2, 9, 4, 5, 6]), 2, 8), None);
        assert_eq!(find_shift(&cached, &cached, 5, 1), None);
    }

    #[test]
    fn typed_text_that_echoes_the_suffix_does_not_hide_it() {
        // cache: prefix(1,2) suffix(10..40) mid(99); the user typed a copy of the suffix's
        // first 12 tokens before it.
        let suffix: Vec<i32> = (10..40).collect();
        let mut cached = toks(&[1, 2]);
        cached.extend(toks(&suffix));
        cached.extend(toks(&[99]));
        let mut prompt = toks(&[1, 2]);
        prompt.extend(toks(&suffix[..12]));
        prompt.extend(toks(&[5]));
        prompt.extend(toks(&suffix));
        prompt.extend(toks(&[99]));
        let sh = find_shift(&cached, &prompt, 2, 9).unwrap();
        assert_eq!(
            sh,
            Shift {
                cache_start: 2,
                prompt_start: 15,
                len: 30
            }
        );
    }
    #[test]
    fn a_state_holding_the_suffix_spares_more_than_a_longer_start_without_it() {
        // The live state: prefix(1..5), the old cursor text (6), suffix(100..140), generated.
        let suffix: Vec<i32> = (100..140).collect();
        let mut live = toks(&[1, 2, 3, 4, 5, 6]);
        live.extend(toks(&suffix));
        live.extend(toks(&[99, 7, 7]));
        // A prefilled start: the prefix and the typed text, then the lines after the cursor
        // as prefix (no suffix).
        let prefilled = toks(&[1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 13]);
        let mut prompt = toks(&[1, 2, 3, 4, 5, 8, 9]);
        prompt.extend(toks(&suffix));
        prompt.extend(toks(&[99]));
        assert_eq!(shared_start(&prefilled, &prompt), 7);
        assert_eq!(reusable(&prefilled, &prompt), 7);
        assert_eq!(reusable(&live, &prompt), 5 + 40);
    }
}
