//! Window geometry: how much text around the cursor a request sends, and where its prefix
//! starts. The prefix starts at an anchor line that depends only on the window's size, so it
//! stays put while typing (the engine reuses the cached tokens of an unchanged prompt start)
//! and one start serves a whole band of lines (see [`crate::prefill`]).
//!
//! Pure functions of the text and the sizes: no state, no model, no LSP types.

use ropey::Rope;

use crate::config::Config;

/// The prefix starts at a line that is a multiple of this at most, so that it stays put while
/// typing (smaller windows use a smaller step, see [`Windows::line_step`]).
const PREFIX_LINE_STEP: usize = 64;
/// Characters of a line longer than the window are cut in steps of this at most.
const PREFIX_CHAR_STEP: usize = 4096;

/// How much text around the cursor a request sends (settings `window.prefixChars` and
/// `window.suffixChars`).
///
/// Every token of the window is evaluated when a document is opened (nothing cached for it),
/// and a jump re-evaluates the suffix plus whatever part of the prefix is new, so the sizes
/// trade quality for the time to the first suggestion; the defaults were chosen by
/// measurement on two cores (README, "Responsiveness").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    /// Characters of prefix sent at most.
    pub prefix_chars: usize,
    /// Characters of suffix sent at most (cut at a line break).
    pub suffix_chars: usize,
}

impl Windows {
    /// The windows of `config`.
    pub fn of(config: &Config) -> Windows {
        Windows {
            prefix_chars: config.window_prefix_chars,
            suffix_chars: config.window_suffix_chars,
        }
    }

    /// Lines between two possible prefix starts (anchors): a power of two, about half the
    /// window's lines (at ~32 characters a line) and at most [`PREFIX_LINE_STEP`]. The prefix
    /// starts at the anchor nearest to where the window would start, so it is about the window
    /// long (half a step of lines more or less), it stays put while typing, and all the cursors
    /// of a band of `line_step` lines share it: a start evaluated ahead of the cursor (see
    /// [`crate::prefill`]) serves every line of its band. It depends on the setting only,
    /// never on the text.
    pub(crate) fn line_step(self) -> usize {
        let lines = (self.prefix_chars / 32).max(1);
        (1usize << lines.ilog2()).min(PREFIX_LINE_STEP)
    }

    /// Characters an enormous line is cut in steps of (a power of two, at most a quarter of
    /// the window).
    fn char_step(self) -> usize {
        let quarter = (self.prefix_chars / 4).max(1);
        (1usize << quarter.ilog2()).min(PREFIX_CHAR_STEP)
    }
}

impl Default for Windows {
    fn default() -> Self {
        Windows::of(&Config::default())
    }
}

/// Where (chars) the prefix of a cursor at `start` (at most the document's length) begins.
pub(crate) fn prefix_start(rope: &Rope, start: usize, sizes: Windows) -> usize {
    let prefix_chars = sizes.prefix_chars;
    if start <= prefix_chars {
        return 0;
    }
    let cursor_line = rope.char_to_line(start);
    let step = sizes.line_step();
    // The first line that starts inside the window, rounded to the nearest anchor.
    let cut = start - prefix_chars;
    let mut first = rope.char_to_line(cut);
    if rope.line_to_char(first) < cut {
        first += 1;
    }
    let line = anchor_line(first, step);
    let from = rope.line_to_char(line.min(cursor_line));
    if start - from > prefix_chars * 2 {
        // One enormous line: cut by characters, in steps.
        let step = sizes.char_step();
        (start - prefix_chars).div_ceil(step) * step
    } else {
        from
    }
}

/// The anchor (a multiple of `step`) nearest to `first`, the first line inside the window.
pub(crate) fn anchor_line(first: usize, step: usize) -> usize {
    (first + step / 2) / step * step
}

/// The text sent to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Text before the cursor, from a stable start.
    pub prefix: String,
    /// Text after the cursor, up to a line break.
    pub suffix: String,
}

/// The prefix (chars `..start`, then `head`) and suffix (chars `end..`) around a cursor, at most
/// `sizes` long (the suffix is cut at its last line break inside the window; the prefix starts
/// at the nearest anchor line, see [`Windows::line_step`], so it may be up to half a step of
/// lines shorter or longer).
pub fn window(rope: &Rope, start: usize, end: usize, head: &str, sizes: Windows) -> Window {
    let suffix_chars = sizes.suffix_chars;
    let len = rope.len_chars();
    let start = start.min(len);
    let end = end.clamp(start, len);
    let from = prefix_start(rope, start, sizes);
    let mut prefix = rope.slice(from..start).to_string();
    prefix.push_str(head);
    let mut to = (end + suffix_chars).min(len);
    if to < len {
        let slice = rope.slice(end..to);
        if let Some(nl) = (0..slice.len_chars())
            .rev()
            .find(|&i| slice.char(i) == '\n')
        {
            to = end + nl + 1;
        }
    }
    Window {
        prefix,
        suffix: rope.slice(end..to).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The windows before they became settings.
    const OLD: Windows = Windows {
        prefix_chars: 24_000,
        suffix_chars: 4_000,
    };

    #[test]
    fn small_documents_are_sent_whole() {
        let rope = Rope::from_str("def f():\n    return 1\n\nprint(f())\n");
        let w = window(&rope, 13, 13, "", Windows::default());
        assert_eq!(w.prefix, "def f():\n    ");
        assert_eq!(w.suffix, "return 1\n\nprint(f())\n");
        let w = window(&rope, 13, 15, "ret", Windows::default());
        assert_eq!(w.prefix, "def f():\n    ret");
        assert_eq!(w.suffix, "turn 1\n\nprint(f())\n");
    }

    fn numbered(lines: usize) -> Rope {
        // 19 characters a line.
        let text: String = (0..lines)
            .map(|i| format!("line_{i:05} = {i:05}\n"))
            .collect();
        Rope::from_str(&text)
    }

    #[test]
    fn large_documents_start_at_a_stable_line_and_cut_the_suffix_at_a_line() {
        let rope = numbered(3000);
        let cursor = rope.line_to_char(2000) + 4;
        let w = window(&rope, cursor, cursor, "", OLD);
        let half = PREFIX_LINE_STEP / 2 * 19;
        assert!(
            w.prefix.len() <= OLD.prefix_chars + half,
            "{}",
            w.prefix.len()
        );
        let first_line: usize = w.prefix[5..10].parse().unwrap();
        assert_eq!(first_line % PREFIX_LINE_STEP, 0);
        // One more character typed: the same start.
        let w2 = window(&rope, cursor + 1, cursor + 1, "", OLD);
        assert_eq!(&w2.prefix[..20], &w.prefix[..20]);
        assert!(w.suffix.len() <= OLD.suffix_chars && w.suffix.ends_with('\n'));
    }

    #[test]
    fn one_enormous_line() {
        let text = "x".repeat(100_000);
        let rope = Rope::from_str(&text);
        let w = window(&rope, 90_000, 90_000, "", OLD);
        assert!(w.prefix.len() <= OLD.prefix_chars && w.prefix.len() > OLD.prefix_chars - 4096);
        assert_eq!(w.suffix.len(), OLD.suffix_chars);
        let small = Windows {
            prefix_chars: 1000,
            suffix_chars: 300,
        };
        let w = window(&rope, 90_000, 90_000, "", small);
        assert!(
            w.prefix.len() <= 1000 && w.prefix.len() > 750,
            "{}",
            w.prefix.len()
        );
        // No line break inside the suffix window: cut by characters.
        assert_eq!(w.suffix.len(), 300);
    }

    #[test]
    fn the_windows_follow_the_settings() {
        let rope = numbered(3000);
        let cursor = rope.line_to_char(2000);
        for (prefix_chars, suffix_chars) in [(3000, 1000), (500, 100), (24_000, 4000), (64, 0)] {
            let sizes = Windows {
                prefix_chars,
                suffix_chars,
            };
            let w = window(&rope, cursor, cursor, "", sizes);
            // The window, give or take half a step of lines (the nearest anchor), and a step
            // is at most half the window.
            let half = (sizes.line_step() / 2 + 1) * 19;
            assert!(
                w.prefix.len() <= prefix_chars + half,
                "{sizes:?}: {}",
                w.prefix.len()
            );
            assert!(
                w.prefix.len() + half >= prefix_chars,
                "{sizes:?}: {}",
                w.prefix.len()
            );
            assert!(sizes.line_step() * 19 <= prefix_chars / 2 + 19, "{sizes:?}");
            // The suffix: whole lines, at most the window, at most one line short of it.
            assert!(w.suffix.len() <= suffix_chars, "{sizes:?}");
            assert!(w.suffix.len() + 19 > suffix_chars, "{sizes:?}");
            assert!(w.suffix.is_empty() || w.suffix.ends_with('\n'));
        }
        // The old constants give the old windows.
        assert_eq!(OLD.line_step(), PREFIX_LINE_STEP);
        assert_eq!(OLD.char_step(), PREFIX_CHAR_STEP);
        assert_eq!(
            Windows::of(&Config::default()),
            Windows {
                prefix_chars: crate::config::DEFAULT_PREFIX_CHARS,
                suffix_chars: crate::config::DEFAULT_SUFFIX_CHARS,
            }
        );
    }

    #[test]
    fn a_small_window_keeps_its_start_while_typing() {
        // Typing forward within a rounding step keeps the prefix start, so the KV cache of the
        // document's prompt is reused keystroke after keystroke.
        let sizes = Windows::default();
        let step = sizes.line_step();
        assert!(step > 1 && step.is_power_of_two(), "{step}");
        let rope = numbered(3000);
        let at = rope.line_to_char(1000);
        let first = window(&rope, at, at, "", sizes);
        let mut starts = std::collections::BTreeSet::new();
        for typed in 0..(step * 19) {
            let w = window(&rope, at + typed, at + typed, "", sizes);
            starts.insert(w.prefix[..19].to_owned());
        }
        // Typing a step of lines moves the start at most once.
        assert!(starts.len() <= 2, "{starts:?}");
        // Typing a line break (the document grows by a line) does not move it either.
        let mut text = rope.to_string();
        text.insert(at + 4, '\n');
        let grown = Rope::from_str(&text);
        let w = window(&grown, at + 5, at + 5, "", sizes);
        assert_eq!(w.prefix[..19], first.prefix[..19]);
    }
}
