//! Recent suggestions, so that repeated requests and typing through a suggestion need no model
//! work.
//!
//! - The same prefix and suffix give back the same suggestion.
//! - When the user types the first characters of a suggestion (the new prefix is an old prefix
//!   plus what was typed, the typed text starts the suggestion, the suffix is unchanged), the
//!   rest of the suggestion is returned at once.
//!
//! Keys are the exact prefix and suffix sent to the model, so a changed window, setting or model
//! simply misses; the server clears the cache when settings change. This module does not know
//! about documents or the engine.

use std::collections::VecDeque;

/// How many suggestions are remembered.
const CAPACITY: usize = 16;

#[derive(Debug, Clone)]
struct Entry {
    prefix: String,
    suffix: String,
    text: String,
}

/// What the cache knows about a prefix and suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hit {
    /// The same request was answered with this text (possibly empty: nothing to suggest).
    Exact(String),
    /// The user typed the start of a suggestion; this is the rest of it.
    TypedThrough(String),
}

impl Hit {
    /// The suggestion text.
    pub fn text(&self) -> &str {
        match self {
            Hit::Exact(t) | Hit::TypedThrough(t) => t,
        }
    }
}

/// Most recently used first.
#[derive(Debug, Default)]
pub struct CompletionCache {
    entries: VecDeque<Entry>,
}

impl CompletionCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    /// Looks up a request.
    pub fn get(&mut self, prefix: &str, suffix: &str) -> Option<Hit> {
        let mut found = None;
        for (i, e) in self.entries.iter().enumerate() {
            if e.suffix != suffix {
                continue;
            }
            if e.prefix == prefix {
                found = Some((i, Hit::Exact(e.text.clone())));
                break;
            }
            if let Some(typed) = prefix.strip_prefix(e.prefix.as_str()) {
                if let Some(rest) = e.text.strip_prefix(typed) {
                    if !rest.trim().is_empty() && found.is_none() {
                        found = Some((i, Hit::TypedThrough(rest.to_owned())));
                    }
                }
            }
        }
        let (i, hit) = found?;
        // Keep the entry fresh.
        if let Some(e) = self.entries.remove(i) {
            self.entries.push_front(e);
        }
        Some(hit)
    }

    /// Remembers the suggestion for a request.
    pub fn insert(&mut self, prefix: &str, suffix: &str, text: &str) {
        self.entries
            .retain(|e| !(e.prefix == prefix && e.suffix == suffix));
        self.entries.push_front(Entry {
            prefix: prefix.to_owned(),
            suffix: suffix.to_owned(),
            text: text.to_owned(),
        });
        self.entries.truncate(CAPACITY);
    }

    /// Forgets everything (after a change of settings or model).
    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_prefix_and_suffix_hit() {
        let mut c = CompletionCache::new();
        c.insert("def f():\n    ", "\n", "return 1");
        assert_eq!(
            c.get("def f():\n    ", "\n"),
            Some(Hit::Exact("return 1".into()))
        );
        assert_eq!(c.get("def f():\n    ", "\nx"), None);
        assert_eq!(c.get("def g():\n    ", "\n"), None);
    }

    #[test]
    fn empty_answers_are_remembered() {
        let mut c = CompletionCache::new();
        c.insert("x = 1", "", "");
        assert_eq!(c.get("x = 1", ""), Some(Hit::Exact(String::new())));
    }

    #[test]
    fn typing_through_returns_the_rest() {
        let mut c = CompletionCache::new();
        c.insert("    ", "\n", "return fibonacci(n - 1)");
        assert_eq!(
            c.get("    ret", "\n"),
            Some(Hit::TypedThrough("urn fibonacci(n - 1)".into()))
        );
        assert_eq!(
            c.get("    return fibonacci(", "\n"),
            Some(Hit::TypedThrough("n - 1)".into()))
        );
        // Typed something else.
        assert_eq!(c.get("    rex", "\n"), None);
        // Typed all of it: nothing left to offer from the cache.
        assert_eq!(c.get("    return fibonacci(n - 1)", "\n"), None);
        // The suffix changed.
        assert_eq!(c.get("    ret", "\n\n"), None);
    }

    #[test]
    fn exact_hits_win_over_typed_through() {
        let mut c = CompletionCache::new();
        c.insert("a", "", "bcd");
        c.insert("ab", "", "XYZ");
        assert_eq!(c.get("ab", ""), Some(Hit::Exact("XYZ".into())));
    }

    #[test]
    fn capacity_and_clear() {
        let mut c = CompletionCache::new();
        for i in 0..40 {
            c.insert(&format!("p{i}"), "", "t");
        }
        assert_eq!(c.get("p0", ""), None);
        assert!(c.get("p39", "").is_some());
        c.clear();
        assert_eq!(c.get("p39", ""), None);
    }
}
