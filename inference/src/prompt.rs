//! Prompt fitting: renders a fill-in-the-middle prompt as segments, tokenizes each segment as
//! what it is (the format's markers with special-token parsing, document and context text as
//! plain text) and trims the prompt until it fits a token budget.
//!
//! What gives way, in order: the suffix beyond a quarter of the budget; the prefix beyond half
//! of it while there is repository context; context blocks, the first (most basic dependency)
//! first; then the prefix, in blocks of whole lines from the top, or by characters when whole
//! lines cannot be dropped (a line longer than the window); last the suffix. Every round makes
//! the prompt strictly shorter, so fitting always ends, with tokens or with [`TooLong`].
//!
//! The work is bounded by the window, not by the file: before anything is tokenized, the
//! prefix, the suffix and each context block are cut by bytes (on line or character
//! boundaries) to a generous multiple of the budget. Prefix cuts are aligned to positions that
//! depend only on the start of the text, so the prompt's start stays put while the user types
//! at its end (the engine reuses the cached tokens of an unchanged prompt start).
//!
//! This module is pure: it knows no model, only a [`Tokenizer`]. It does not decide the budget
//! (the engine does, from the context size and the token cap).

use std::borrow::Cow;

use crate::fim::{ContextBlock, FimFormat, FimInput, FimOrder, Segment};

/// Prefix lines are dropped in blocks of this many when a prompt is too long, so the start of
/// the prompt stays put while the user types.
pub const PREFIX_TRIM_LINES: usize = 32;

/// How far past half the window a prefix may run before it is trimmed in favour of repository
/// context (one trim block of lines is about this many tokens).
const PREFIX_TRIM_SLACK: usize = 256;

/// Bytes of text kept per token of budget before tokenizing (code averages 3–4 bytes a token;
/// this leaves room for long whitespace and comment tokens).
const PRECUT_BYTES_PER_TOKEN: usize = 12;

/// The smallest pre-cut, in bytes, whatever the budget.
const PRECUT_MIN_BYTES: usize = 4096;

/// Character cuts of a long line happen at multiples of this many bytes from its start.
const CHAR_CUT_BLOCK: usize = 64;

/// Turns text into tokens. The engine implements it with the model's vocabulary; tests use a
/// stand-in.
pub trait Tokenizer {
    /// A token.
    type Token: Clone;
    /// Tokens of document or context text, never parsed for special tokens.
    fn plain(&self, text: &str) -> Vec<Self::Token>;
    /// Tokens of the format's own text, with special tokens parsed.
    fn special(&self, text: &str) -> Vec<Self::Token>;
    /// Tokens every prompt starts with (a BOS token for models that want one).
    fn start(&self) -> Vec<Self::Token> {
        Vec::new()
    }
    /// Number of tokens of plain `text`.
    fn count(&self, text: &str) -> usize {
        self.plain(text).len()
    }
}

/// The prompt does not fit even after trimming everything that may be trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLong {
    /// Tokens of the shortest prompt tried.
    pub tokens: usize,
}

/// Tokenizes rendered segments, each as what it is.
pub fn tokenize<T: Tokenizer>(segments: &[Segment], tok: &T) -> Vec<T::Token> {
    let mut out = tok.start();
    for segment in segments {
        match segment {
            Segment::Format(s) => out.extend(tok.special(s)),
            Segment::Text(s) => out.extend(tok.plain(s)),
        }
    }
    out
}

/// Renders `input` in `format` and trims it until it takes at most `budget` tokens.
pub fn fit<T: Tokenizer>(
    format: &FimFormat,
    input: &FimInput<'_>,
    order: Option<FimOrder>,
    budget: usize,
    tok: &T,
) -> Result<Vec<T::Token>, TooLong> {
    let cap = budget
        .saturating_mul(PRECUT_BYTES_PER_TOKEN)
        .max(PRECUT_MIN_BYTES);
    let mut prefix = precut_prefix(input.prefix, cap);
    let mut suffix = precut_head(input.suffix, cap);
    let blocks: Cow<'_, [ContextBlock]> = if input.context.iter().any(|b| b.text.len() > cap) {
        Cow::Owned(
            input
                .context
                .iter()
                .map(|b| ContextBlock {
                    path: b.path.clone(),
                    text: precut_head(&b.text, cap).to_owned(),
                })
                .collect(),
        )
    } else {
        Cow::Borrowed(input.context)
    };
    let mut context: &[ContextBlock] = &blocks;
    loop {
        let rendered = format.segments(
            &FimInput {
                path: input.path,
                prefix,
                suffix,
                context,
                repo_name: input.repo_name,
            },
            order,
        );
        let tokens = tokenize(&rendered, tok);
        if tokens.len() <= budget {
            return Ok(tokens);
        }
        let over = tokens.len() - budget;
        let prefix_tokens = tok.count(prefix);
        let suffix_tokens = tok.count(suffix);
        // Every branch makes the suffix, the context or the prefix strictly shorter.
        if suffix_tokens > budget / 4 {
            suffix = keep_head(suffix, tok, budget / 4);
        } else if !context.is_empty()
            && prefix_tokens > budget / 2 + PREFIX_TRIM_SLACK
            && prefix.contains('\n')
        {
            let cut = cut_line_blocks_from_start(
                prefix,
                |s| tok.count(s),
                over.min(prefix_tokens - budget / 2),
            );
            if cut.len() == prefix.len() {
                context = &context[1..];
            } else {
                prefix = cut;
            }
        } else if !context.is_empty() {
            context = &context[1..];
        } else if !prefix.is_empty() {
            prefix = drop_head(prefix, tok, over, prefix_tokens);
        } else if !suffix.is_empty() {
            suffix = keep_head(suffix, tok, suffix_tokens.saturating_sub(over));
        } else {
            return Err(TooLong {
                tokens: tokens.len(),
            });
        }
    }
}

/// Keeps the end of `text` (the part nearest the cursor): at least `cap` bytes when it is
/// longer, cut where a line starts when one is near. The cut moves only every `cap / 2` bytes
/// of growth, so typing at the end does not move the start.
pub fn precut_prefix(text: &str, cap: usize) -> &str {
    if text.len() <= cap {
        return text;
    }
    let block = (cap / 2).max(1);
    let cut = ceil_char(text, (text.len() - cap) / block * block);
    let snap = block / 4;
    let cut = match text[cut..].find('\n') {
        Some(i) if i < snap => cut + i + 1,
        _ => cut,
    };
    &text[cut..]
}

/// Keeps the start of `text` (the part nearest the cursor, for a suffix; the head of a context
/// file): at most `cap` bytes, cut after a line when one ends near the cut.
pub fn precut_head(text: &str, cap: usize) -> &str {
    if text.len() <= cap {
        return text;
    }
    let end = floor_char(text, cap);
    let snap = cap / 8;
    match text[..end].rfind('\n') {
        Some(i) if end - i - 1 < snap => &text[..i + 1],
        _ => &text[..end],
    }
}

/// The longest start of `text` that takes at most `budget` tokens: whole lines when at least
/// one fits, else characters. Strictly shorter than `text` when `text` is over the budget.
fn keep_head<'a, T: Tokenizer>(text: &'a str, tok: &T, budget: usize) -> &'a str {
    let lines = cut_lines_from_end(text, |s| tok.count(s), budget);
    if !lines.is_empty() && lines.len() < text.len() {
        return lines;
    }
    if text.is_empty() {
        return text;
    }
    // Binary search over character boundaries for the longest strict start within the budget.
    let (mut lo, mut hi) = (0usize, floor_char(text, text.len() - 1));
    while lo < hi {
        let mid = ceil_char(text, lo + (hi - lo).div_ceil(2));
        if tok.count(&text[..mid]) <= budget {
            lo = mid;
        } else {
            hi = floor_char(text, mid - 1);
        }
    }
    &text[..lo]
}

/// Drops at least `over` tokens from the start of `text` (which takes `tokens` tokens): whole
/// blocks of lines when that makes progress, else characters, in blocks aligned to the start.
/// Always strictly shorter than `text` when `text` is not empty.
fn drop_head<'a, T: Tokenizer>(text: &'a str, tok: &T, over: usize, tokens: usize) -> &'a str {
    let cut = cut_line_blocks_from_start(text, |s| tok.count(s), over);
    if cut.len() < text.len() {
        return cut;
    }
    // Whole lines cannot go (the cursor's line is longer than the window): cut characters,
    // keeping the text nearest the cursor. Binary search over aligned cut points for the
    // first whose rest fits.
    let want = tokens.saturating_sub(over);
    let blocks = text.len().div_ceil(CHAR_CUT_BLOCK);
    let at = |k: usize| ceil_char(text, (k * CHAR_CUT_BLOCK).min(text.len()));
    let (mut lo, mut hi) = (1usize, blocks);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if tok.count(&text[at(mid)..]) <= want {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    &text[at(lo)..]
}

/// Keeps the first lines of `text` that fit in `budget` tokens.
fn cut_lines_from_end(text: &str, count: impl Fn(&str) -> usize, budget: usize) -> &str {
    let mut end = 0;
    let mut used = 0;
    for line in text.split_inclusive('\n') {
        used += count(line);
        if used > budget {
            break;
        }
        end += line.len();
    }
    &text[..end]
}

/// Lines per block when a cold window is cut from a prefix (see [`shrink`]), for a prefix of
/// 320 tokens (the default); a smaller window cuts proportionally smaller blocks (at least
/// [`COLD_TRIM_MIN_LINES`]), so that it does not drop most of its own lines at once.
const COLD_TRIM_LINES: usize = 16;
const COLD_TRIM_MIN_LINES: usize = 4;
const COLD_TRIM_TOKENS_PER_LINE: usize = 20;

/// A smaller window of the same place: the end of `prefix` in at most about `prefix_tokens`
/// tokens (whole blocks of lines dropped from its start, aligned to the start so that typing
/// at its end does not move it; characters when one line is longer) and the start of `suffix`
/// in at most `suffix_tokens` (whole lines when one fits). The engine uses it for a request
/// whose full prompt it would have to evaluate almost whole (a cold place).
pub fn shrink<'a, T: Tokenizer>(
    prefix: &'a str,
    suffix: &'a str,
    prefix_tokens: usize,
    suffix_tokens: usize,
    tok: &T,
) -> (&'a str, &'a str) {
    let n = tok.count(prefix);
    let prefix = if n > prefix_tokens {
        let over = n - prefix_tokens;
        let block =
            (prefix_tokens / COLD_TRIM_TOKENS_PER_LINE).clamp(COLD_TRIM_MIN_LINES, COLD_TRIM_LINES);
        let cut = cut_blocks_from_start(prefix, |s| tok.count(s), over, block);
        if cut.len() < prefix.len() {
            cut
        } else {
            drop_head(prefix, tok, over, n)
        }
    } else {
        prefix
    };
    let suffix = if tok.count(suffix) > suffix_tokens {
        keep_head(suffix, tok, suffix_tokens)
    } else {
        suffix
    };
    (prefix, suffix)
}

/// Drops whole blocks of [`PREFIX_TRIM_LINES`] lines from the start of `text` until at least
/// `over` tokens are gone (at least one block), never the last line. Block boundaries depend
/// only on the text's start, so the trimmed prompt's start does not move while the user types
/// at its end.
fn cut_line_blocks_from_start(text: &str, count: impl Fn(&str) -> usize, over: usize) -> &str {
    cut_blocks_from_start(text, count, over, PREFIX_TRIM_LINES)
}

/// [`cut_line_blocks_from_start`] with blocks of `block` lines.
fn cut_blocks_from_start(
    text: &str,
    count: impl Fn(&str) -> usize,
    over: usize,
    block: usize,
) -> &str {
    let mut start = 0;
    let mut dropped = 0;
    let mut lines = 0;
    for line in text.split_inclusive('\n') {
        if start + line.len() >= text.len() {
            break; // keep the cursor's line
        }
        start += line.len();
        dropped += count(line);
        lines += 1;
        if lines % block.max(1) == 0 && dropped >= over {
            break;
        }
    }
    &text[start..]
}

fn floor_char(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_char(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// One token per character of plain text; format text is split into markers `<…>` (one
    /// token each) and characters. Counts the bytes it tokenizes.
    #[derive(Default)]
    struct Chars {
        bytes: Cell<usize>,
    }

    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Tok {
        Char(char),
        Special(String),
    }

    impl Tokenizer for Chars {
        type Token = Tok;
        fn plain(&self, text: &str) -> Vec<Tok> {
            self.bytes.set(self.bytes.get() + text.len());
            text.chars().map(Tok::Char).collect()
        }
        fn special(&self, text: &str) -> Vec<Tok> {
            let mut out = Vec::new();
            let mut rest = text;
            while !rest.is_empty() {
                if rest.starts_with('<') {
                    if let Some(end) = rest.find('>') {
                        out.push(Tok::Special(rest[..=end].to_owned()));
                        rest = &rest[end + 1..];
                        continue;
                    }
                }
                let c = rest.chars().next().unwrap();
                out.push(Tok::Char(c));
                rest = &rest[c.len_utf8()..];
            }
            out
        }
    }

    fn input<'a>(prefix: &'a str, suffix: &'a str, context: &'a [ContextBlock]) -> FimInput<'a> {
        FimInput {
            path: None,
            prefix,
            suffix,
            context,
            repo_name: None,
        }
    }

    fn text_of(tokens: &[Tok]) -> String {
        tokens
            .iter()
            .map(|t| match t {
                Tok::Char(c) => c.to_string(),
                Tok::Special(s) => s.clone(),
            })
            .collect()
    }

    fn specials(tokens: &[Tok]) -> Vec<&str> {
        tokens
            .iter()
            .filter_map(|t| match t {
                Tok::Special(s) => Some(s.as_str()),
                Tok::Char(_) => None,
            })
            .collect()
    }

    /// Issue 10 item 2: the cursor at column 0 right after a line longer than the window used
    /// to loop forever (no whole line could be dropped).
    #[test]
    fn a_line_longer_than_the_window_is_cut_by_characters() {
        let prefix = format!("{}\n", "x".repeat(400));
        let tok = Chars::default();
        let tokens = fit(
            &FimFormat::qwen(),
            &input(&prefix, "", &[]),
            None,
            200,
            &tok,
        )
        .unwrap();
        assert!(tokens.len() <= 200, "{}", tokens.len());
        let text = text_of(&tokens);
        // The text nearest the cursor is kept: the prompt's prefix ends with the line break.
        assert!(text.ends_with("x\n<|fim_suffix|><|fim_middle|>"), "{text}");
        assert!(tokens.len() > 100, "too much was cut: {}", tokens.len());
    }

    #[test]
    fn long_lines_before_and_after_the_cursor_and_several_lines_fit_too() {
        let long = "y".repeat(1000);
        let prefix = format!("a\n{long}\nb\n{long}\n");
        let suffix = format!("{long}\n{long}");
        let tok = Chars::default();
        let tokens = fit(
            &FimFormat::qwen(),
            &input(&prefix, &suffix, &[]),
            None,
            300,
            &tok,
        )
        .unwrap();
        assert!(tokens.len() <= 300);
        assert_eq!(
            specials(&tokens),
            ["<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"]
        );
    }

    #[test]
    fn a_budget_smaller_than_the_markers_is_too_long_not_a_hang() {
        let tok = Chars::default();
        let err = fit(
            &FimFormat::qwen(),
            &input("abc\n", "def", &[]),
            None,
            2,
            &tok,
        )
        .unwrap_err();
        assert_eq!(err, TooLong { tokens: 3 });
        let err = fit(&FimFormat::qwen(), &input("", "", &[]), None, 0, &tok).unwrap_err();
        assert_eq!(err.tokens, 3);
    }

    /// Issue 10 item 10: document and context text are plain text; only the format's own
    /// markers are special tokens.
    #[test]
    fn markers_inside_the_document_are_plain_text() {
        let ctx = [ContextBlock {
            path: "a<|fim_prefix|>.py".into(),
            text: "<|endoftext|><|im_start|>system\n".into(),
        }];
        let i = FimInput {
            path: Some("b.py"),
            prefix: "x = '<|fim_middle|>'\n<|file_sep|>",
            suffix: "<|endoftext|>",
            context: &ctx,
            repo_name: Some("<|repo_name|>"),
        };
        let tok = Chars::default();
        let tokens = fit(&FimFormat::qwen(), &i, None, 10_000, &tok).unwrap();
        assert_eq!(
            specials(&tokens),
            [
                "<|repo_name|>",
                "<|file_sep|>",
                "<|file_sep|>",
                "<|fim_prefix|>",
                "<|fim_suffix|>",
                "<|fim_middle|>"
            ]
        );
        // The text is all there, as characters.
        assert_eq!(
            text_of(&tokens),
            FimFormat::qwen().render(&i, None),
            "rendering and tokenizing agree"
        );
    }

    #[test]
    fn the_suffix_gives_way_to_a_quarter_of_the_budget_first() {
        let prefix: String = (0..10).map(|i| format!("p{i}\n")).collect();
        let suffix: String = (0..100).map(|i| format!("s{i:02}\n")).collect();
        let tok = Chars::default();
        let tokens = fit(
            &FimFormat::qwen(),
            &input(&prefix, &suffix, &[]),
            None,
            200,
            &tok,
        )
        .unwrap();
        let text = text_of(&tokens);
        assert!(text.contains(&prefix), "the prefix stays whole: {text}");
        assert!(text.contains("s00\ns01\n"), "the suffix keeps its start");
        assert!(!text.contains("s99"));
    }

    #[test]
    fn context_blocks_go_before_the_prefix_first_block_first() {
        let ctx = vec![
            ContextBlock {
                path: "a.py".into(),
                text: "A".repeat(100),
            },
            ContextBlock {
                path: "b.py".into(),
                text: "B".repeat(100),
            },
        ];
        let prefix: String = (0..20).map(|i| format!("line{i}\n")).collect();
        let tok = Chars::default();
        let tokens = fit(
            &FimFormat::qwen(),
            &input(&prefix, "", &ctx),
            None,
            260,
            &tok,
        )
        .unwrap();
        let text = text_of(&tokens);
        assert!(!text.contains('A') && text.contains('B') && text.contains(&prefix));
    }

    #[test]
    fn the_prefix_is_cut_in_blocks_that_stay_put_while_typing() {
        let prefix: String = (0..100).map(|i| format!("line {i:03}\n")).collect();
        let tok = Chars::default();
        let fitted = |p: &str| {
            text_of(&fit(&FimFormat::qwen(), &input(p, "", &[]), None, 600, &tok).unwrap())
        };
        let a = fitted(&prefix);
        let b = fitted(&format!("{prefix}ab"));
        assert!(a.starts_with("<|fim_prefix|>line 064\n"), "{}", &a[..40]);
        assert_eq!(a[..200], b[..200], "typing moved the prompt's start");
    }

    /// A 4 MB prefix is not tokenized whole: everything is pre-cut to a multiple of the budget.
    #[test]
    fn a_huge_prefix_costs_work_in_proportion_to_the_window() {
        let prefix: String = "abcdefghijklmnopqrstuvwxyz0123456789 = 42\n".repeat(100_000);
        assert!(prefix.len() > 4_000_000);
        let suffix = prefix.clone();
        let tok = Chars::default();
        let tokens = fit(
            &FimFormat::qwen(),
            &input(&prefix, &suffix, &[]),
            None,
            1000,
            &tok,
        )
        .unwrap();
        assert!(tokens.len() <= 1000);
        assert!(
            tok.bytes.get() < 1000 * PRECUT_BYTES_PER_TOKEN * 20,
            "tokenized {} bytes",
            tok.bytes.get()
        );
    }

    #[test]
    fn precuts_keep_the_text_nearest_the_cursor_on_line_and_char_boundaries() {
        let text = "é".repeat(5000); // 10,000 bytes, no lines
        let cut = precut_prefix(&text, 4096);
        assert!(cut.len() >= 4096 && text.ends_with(cut));
        let head = precut_head(&text, 4097);
        assert!(head.len() <= 4097 && text.starts_with(head));
        let lines = "0123456789\n".repeat(1000);
        let cut = precut_prefix(&lines, 4096);
        assert!(
            cut.starts_with("0123") && cut.len() >= 3584,
            "{}",
            cut.len()
        );
        let head = precut_head(&lines, 4096);
        assert!(head.ends_with('\n'));
        // The cut does not move while text is appended (until a block's worth is).
        let longer = format!("{lines}abc");
        assert_eq!(
            lines.len() - cut.len(),
            longer.len() - precut_prefix(&longer, 4096).len()
        );
    }

    #[test]
    fn prefix_trimming_drops_fixed_blocks() {
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect::<String>() + "cur";
        let count = |s: &str| s.len();
        let cut = cut_line_blocks_from_start(&text, count, 10);
        assert!(cut.starts_with("line 32\n"), "{}", &cut[..20]);
        let cut = cut_line_blocks_from_start(&text, count, 300);
        assert!(cut.starts_with("line 64\n"), "{}", &cut[..20]);
        assert_eq!(cut_line_blocks_from_start("a\ncur", count, 100), "cur");
    }

    #[test]
    fn suffix_trimming_keeps_first_lines() {
        assert_eq!(
            cut_lines_from_end("ab\ncd\nef\n", |s: &str| s.len(), 6),
            "ab\ncd\n"
        );
    }

    #[test]
    fn a_cold_window_keeps_the_end_of_the_prefix_and_a_stable_start_while_typing() {
        let tok = Chars::default();
        let prefix: String = (0..100).map(|i| format!("line {i:03}\n")).collect();
        let suffix: String = (0..50).map(|i| format!("after {i:03}\n")).collect();
        let (p, s) = shrink(&prefix, &suffix, 200, 60, &tok);
        // At most about the budget (whole blocks of 10 lines dropped for 200 tokens), ending
        // at the cursor.
        assert!(p.len() <= 200 && p.len() + 10 * 9 > 200, "{}", p.len());
        // A smaller window drops smaller blocks (4 lines at 80 tokens), so it keeps most of
        // its budget.
        let (small, _) = shrink(&prefix, &suffix, 80, 20, &tok);
        assert!(
            small.len() <= 80 && small.len() + 4 * 9 > 80,
            "{}",
            small.len()
        );
        assert!(prefix.ends_with(p) && p.starts_with("line "));
        assert!(s.len() <= 60 && suffix.starts_with(s) && s.ends_with('\n'));
        // Typing at the end keeps the start until a whole block more must go.
        let typed = format!("{prefix}ab");
        let (p2, _) = shrink(&typed, &suffix, 200, 60, &tok);
        assert_eq!(&p2[..9], &p[..9]);
        // Small enough already: untouched.
        assert_eq!(shrink("a\nb", "c", 200, 60, &tok), ("a\nb", "c"));
        // One enormous line: characters.
        let long = "x".repeat(1000);
        let (p, _) = shrink(&long, "", 200, 60, &tok);
        assert!(p.len() <= 200 && !p.is_empty(), "{}", p.len());
    }

    #[test]
    fn keep_head_and_drop_head_always_make_progress() {
        let tok = Chars::default();
        for text in ["x", "xy", "é", "éé\n", "abc\ndef", &"z".repeat(300)] {
            let n = text.chars().count();
            for budget in 0..n {
                let kept = keep_head(text, &tok, budget);
                assert!(
                    kept.len() < text.len() && text.starts_with(kept),
                    "{text:?} {budget}"
                );
            }
            for over in 1..=n {
                let rest = drop_head(text, &tok, over, n);
                assert!(
                    rest.len() < text.len() && text.ends_with(rest),
                    "{text:?} {over}"
                );
            }
        }
    }
}
