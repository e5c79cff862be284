//! Token counts remembered per piece of text, for the callers that count the same text over and
//! over: the repository context counts each candidate block, grows blocks one definition at a
//! time (counting the whole block again each time) and is built again on every keystroke.
//!
//! A byte-level BPE tokenizer with a GPT-2-style pre-tokenizer (Qwen2, DeepSeek-Coder,
//! StarCoder, Llama 3) splits text into pieces by a regular expression before it merges bytes,
//! and no token spans two pieces. None of those expressions lets a piece run from a line break
//! into a following non-blank character (letters take at most one leading space or punctuation
//! mark, never a line break; runs of punctuation or white space end at line breaks). So the
//! count of a text is the sum of the counts of its *segments*, cut after every `\n` that is
//! followed by a printable ASCII character, and each segment is tokenized once and then
//! remembered (by a 64-bit hash of its bytes). The engine uses segments only when the model's
//! tokenizer is such a BPE one and a sample gives the same count both ways
//! ([`Counts::check`]); otherwise it remembers whole texts.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

/// Counts remembered at most; the memory is cleared when it would hold more (about 2 MB).
const MAX_ENTRIES: usize = 1 << 16;

/// Remembered token counts of texts or of their segments.
#[derive(Debug)]
pub(crate) struct Counts {
    segmented: bool,
    known: Mutex<HashMap<(usize, u64), usize>>,
}

impl Counts {
    /// A memory that counts by segments when `segmented`, else by whole texts.
    pub(crate) fn new(segmented: bool) -> Counts {
        Counts {
            segmented,
            known: Mutex::new(HashMap::new()),
        }
    }

    /// Whether this memory counts by segments.
    pub(crate) fn segmented(&self) -> bool {
        self.segmented
    }

    /// The tokens of `text`, by `count` (the tokenizer) for what is not remembered yet.
    pub(crate) fn count(&self, text: &str, count: &dyn Fn(&str) -> usize) -> usize {
        if self.segmented {
            segments(text).map(|s| self.remembered(s, count)).sum()
        } else {
            self.remembered(text, count)
        }
    }

    fn remembered(&self, text: &str, count: &dyn Fn(&str) -> usize) -> usize {
        if text.is_empty() {
            return 0;
        }
        let key = (text.len(), hash(text));
        if let Some(&n) = self.lock().get(&key) {
            return n;
        }
        // Tokenized outside the lock: other threads count meanwhile.
        let n = count(text);
        let mut known = self.lock();
        if known.len() >= MAX_ENTRIES {
            known.clear();
        }
        known.insert(key, n);
        n
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(usize, u64), usize>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `count` is additive over segments on a sample of code (both languages' line
    /// shapes: blank lines, indentation, comments, strings, closing brackets, non-ASCII text).
    pub(crate) fn check(count: &dyn Fn(&str) -> usize) -> bool {
        let sample = SAMPLE;
        let whole = count(sample);
        let parts: usize = segments(sample).map(count).sum();
        whole == parts && segments(sample).count() > 10
    }
}

const SAMPLE: &str = "import os\nfrom .util import (helper,\n    other)\n\n\nclass Thing(Base):\n    \"\"\"Doc.\n\n    More.\n    \"\"\"\n\n    def run(self, x: int) -> str:\n        return f\"{x}\" # done\n\n@decorator\ndef free(*args, **kw):\n    ...\n\n# A comment: é, 😀.\nX = {'a': [1, 2]}\n}\n)\n]\n  \n\t\nfn main() {\n    let v = vec![1];\n}\n\n/// Doc.\npub struct S<'a> {\n    x: &'a str,\n}\n'quoted'\n\"s\"\n123\n";

fn hash(text: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// `text` cut after each `\n` that a printable ASCII character follows; the pieces cover it.
pub(crate) fn segments(text: &str) -> impl Iterator<Item = &str> {
    let bytes = text.as_bytes();
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= bytes.len() {
            return None;
        }
        let from = start;
        let mut i = start + 1;
        while i < bytes.len() && !(bytes[i - 1] == b'\n' && bytes[i].is_ascii_graphic()) {
            i += 1;
        }
        start = i;
        // Cuts fall between an ASCII line break and an ASCII character: char boundaries.
        Some(&text[from..i])
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn segments_cover_the_text_and_cut_before_printable_line_starts() {
        let text = "a\n  b\n\nc\n}\n\té\n";
        let parts: Vec<&str> = segments(text).collect();
        assert_eq!(parts, ["a\n  b\n\n", "c\n", "}\n\té\n"]);
        assert_eq!(parts.concat(), text);
        assert_eq!(segments("").count(), 0);
        assert_eq!(segments("\nx").collect::<Vec<_>>(), ["\n", "x"]);
    }

    #[test]
    fn counts_are_remembered_per_segment() {
        let calls = Cell::new(0);
        let bytes = |s: &str| {
            calls.set(calls.get() + 1);
            s.len()
        };
        let counts = Counts::new(true);
        assert_eq!(counts.count("one\ntwo\n", &bytes), 8);
        assert_eq!(calls.get(), 2);
        assert_eq!(counts.count("one\nthree\ntwo\n", &bytes), 14);
        assert_eq!(calls.get(), 3, "only the new segment is counted");
        let whole = Counts::new(false);
        assert_eq!(whole.count("one\ntwo\n", &bytes), 8);
        assert_eq!(whole.count("one\ntwo\n", &bytes), 8);
        assert_eq!(calls.get(), 4);
    }

    #[test]
    fn the_check_tells_additive_counts_from_others() {
        assert!(Counts::check(&|s: &str| s.len()));
        assert!(!Counts::check(&|s: &str| s.len() / 4 + 1));
    }
}
