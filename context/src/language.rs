//! The languages this crate parses with tree-sitter, their grammars and the query files from
//! `grammars/<lang>/*.scm`, embedded at build time. Which files and language ids name a
//! language is `ghostline-lang`'s to say; this module only adds the grammars.
//!
//! Parsing goes through one parser per language per thread, so any thread may parse without
//! locking. This module does not interpret query captures; `imports` and `outline` do.

use std::cell::RefCell;
use std::path::Path;
use std::sync::OnceLock;

use tree_sitter::{Parser, Query, Tree};

/// A language whose imports and definitions this crate can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Language {
    /// Python (`.py`, `.pyi`).
    Python,
    /// Rust (`.rs`).
    Rust,
}

/// The language of a file, from its extension; `None` for anything this crate does not read.
pub fn language_for_path(path: &Path) -> Option<Language> {
    let ext = path.extension()?.to_str()?;
    Language::from_lang(ghostline_lang::Language::from_extension(ext)?)
}

#[cfg(test)]
thread_local! {
    /// Bytes this thread handed to the parser, for tests that check what is parsed how often.
    pub(crate) static PARSED_BYTES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// The longest line handed to tree-sitter as it is; longer ones are parsed as comments.
pub const MAX_PARSED_LINE: usize = 4 << 10;

/// `text` with every line longer than [`MAX_PARSED_LINE`] bytes replaced, after its leading
/// whitespace, by `comment` and spaces of the same byte length (so every offset and every
/// other line stays as it is). Borrowed when no line is that long.
pub(crate) fn mask_long_lines<'a>(text: &'a str, comment: &str) -> std::borrow::Cow<'a, str> {
    let long = |line: &str| line.len() > MAX_PARSED_LINE;
    if !text.split('\n').any(long) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if !long(line) {
            out.push_str(line);
            continue;
        }
        let body = line.trim_start_matches([' ', '\t']);
        out.push_str(&line[..line.len() - body.len()]);
        let keep_cr = body.ends_with('\r');
        let width = body.len() - usize::from(keep_cr);
        out.push_str(comment);
        out.extend(std::iter::repeat_n(
            ' ',
            width.saturating_sub(comment.len()),
        ));
        if keep_cr {
            out.push('\r');
        }
    }
    debug_assert_eq!(out.len(), text.len());
    std::borrow::Cow::Owned(out)
}

/// Which query file of a language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueryKind {
    Imports,
    Outline,
}

impl Language {
    /// Every supported language.
    pub const ALL: [Language; 2] = [Language::Python, Language::Rust];

    /// The folder name of the language under `grammars/`.
    pub fn name(self) -> &'static str {
        self.lang().grammar().unwrap_or("")
    }

    /// The language's facts.
    pub fn lang(self) -> ghostline_lang::Language {
        match self {
            Language::Python => ghostline_lang::Language::Python,
            Language::Rust => ghostline_lang::Language::Rust,
        }
    }

    /// The parsed language for `lang`, when it has a grammar here.
    pub fn from_lang(lang: ghostline_lang::Language) -> Option<Language> {
        Language::ALL.into_iter().find(|l| l.lang() == lang)
    }

    pub(crate) fn grammar(self) -> tree_sitter::Language {
        match self {
            Language::Python => tree_sitter_python::LANGUAGE.into(),
            Language::Rust => tree_sitter_rust::LANGUAGE.into(),
        }
    }

    /// The text of one of the language's query files.
    pub(crate) fn query_source(self, kind: QueryKind) -> &'static str {
        match (self, kind) {
            (Language::Python, QueryKind::Imports) => {
                include_str!("../../grammars/python/imports.scm")
            }
            (Language::Python, QueryKind::Outline) => {
                include_str!("../../grammars/python/outline.scm")
            }
            (Language::Rust, QueryKind::Imports) => include_str!("../../grammars/rust/imports.scm"),
            (Language::Rust, QueryKind::Outline) => include_str!("../../grammars/rust/outline.scm"),
        }
    }

    /// The compiled query, or `None` (logged once) if it does not compile — a test guarantees
    /// it does, but a broken query must not take the server down.
    pub(crate) fn query(self, kind: QueryKind) -> Option<&'static Query> {
        static QUERIES: [[OnceLock<Option<Query>>; 2]; 2] = [
            [OnceLock::new(), OnceLock::new()],
            [OnceLock::new(), OnceLock::new()],
        ];
        let lang_slot = match self {
            Language::Python => 0,
            Language::Rust => 1,
        };
        let kind_slot = match kind {
            QueryKind::Imports => 0,
            QueryKind::Outline => 1,
        };
        QUERIES[lang_slot][kind_slot]
            .get_or_init(|| match Query::new(&self.grammar(), self.query_source(kind)) {
                Ok(query) => Some(query),
                Err(err) => {
                    tracing::error!(language = self.name(), ?kind, %err, "query does not compile");
                    None
                }
            })
            .as_ref()
    }

    /// Where imports are searched: the node kinds that hold statements (searched through) and
    /// the kinds that may be imports (handed to `imports.scm`). Only a pruning of the search —
    /// the query decides what an import is — so that expressions are never visited.
    pub(crate) fn import_search(self) -> (&'static [&'static str], &'static [&'static str]) {
        match self {
            Language::Python => (
                &[
                    "module",
                    "block",
                    "if_statement",
                    "elif_clause",
                    "else_clause",
                    "try_statement",
                    "except_clause",
                    "except_group_clause",
                    "finally_clause",
                    "with_statement",
                    "for_statement",
                    "while_statement",
                    "function_definition",
                    "class_definition",
                    "decorated_definition",
                    "match_statement",
                    "case_clause",
                    "ERROR",
                ],
                &["import_statement", "import_from_statement"],
            ),
            Language::Rust => (
                &[
                    "source_file",
                    "mod_item",
                    "declaration_list",
                    "function_item",
                    "impl_item",
                    "trait_item",
                    "block",
                    "expression_statement",
                    "if_expression",
                    "else_clause",
                    "loop_expression",
                    "while_expression",
                    "for_expression",
                    "unsafe_block",
                    "ERROR",
                ],
                &["use_declaration", "mod_item"],
            ),
        }
    }

    /// Parses `text`; `None` only if tree-sitter gives up (it recovers from syntax errors).
    pub(crate) fn parse(self, text: &str) -> Option<Tree> {
        self.parse_until(text, &|| false)
    }

    /// Parses `text` unless `stop()` turns true meanwhile (asked every few thousand bytes):
    /// then `None`, and the parser is reset for the next text.
    ///
    /// Lines longer than [`MAX_PARSED_LINE`] (minified code, data literals, generated tables)
    /// are parsed as comments of the same length, so byte offsets stay those of `text`:
    /// tree-sitter's error recovery is quadratic on such a line when a window starts inside
    /// it (measured: 26 s in a release build for 256 KiB of a string literal's middle), and
    /// no outline or import lives in one.
    pub(crate) fn parse_until(self, text: &str, stop: &dyn Fn() -> bool) -> Option<Tree> {
        #[cfg(test)]
        PARSED_BYTES.with(|n| n.set(n.get() + text.len()));
        thread_local! {
            static PARSERS: RefCell<Vec<(Language, Parser)>> = const { RefCell::new(Vec::new()) };
        }
        PARSERS.with(|parsers| {
            let mut parsers = parsers.borrow_mut();
            let index = match parsers.iter().position(|(lang, _)| *lang == self) {
                Some(index) => index,
                None => {
                    let mut parser = Parser::new();
                    if let Err(err) = parser.set_language(&self.grammar()) {
                        tracing::error!(language = self.name(), %err, "grammar does not load");
                        return None;
                    }
                    parsers.push((self, parser));
                    parsers.len() - 1
                }
            };
            let parser = &mut parsers[index].1;
            let masked = mask_long_lines(text, self.lang().line_comment());
            let bytes = masked.as_bytes();
            let mut progress = |_: &tree_sitter::ParseState| stop();
            let options = tree_sitter::ParseOptions::new().progress_callback(&mut progress);
            let tree = parser.parse_with_options(
                &mut |at, _| bytes.get(at..).unwrap_or(&[]),
                None,
                Some(options),
            );
            if tree.is_none() {
                parser.reset();
            }
            tree
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_become_comments_of_the_same_length() {
        let long = "ab😀".repeat(2000);
        let text = format!("import os\n    x = \"{long}\"\r\ndef f():\n    return 1\n");
        let masked = mask_long_lines(&text, "#");
        assert_eq!(masked.len(), text.len());
        let lines: Vec<&str> = masked.split('\n').collect();
        assert_eq!(lines[0], "import os");
        assert!(lines[1].starts_with("    #     "), "{:?}", &lines[1][..12]);
        assert!(lines[1].ends_with(" \r"));
        assert_eq!(lines[2], "def f():");
        assert!(matches!(
            mask_long_lines("short\nlines\n", "#"),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    /// Issue 10: a window that starts in the middle of a 1 MB string literal of multi-byte
    /// characters put tree-sitter into error recovery for minutes; masked, the line is one
    /// comment and the function after it is found.
    #[test]
    fn a_window_inside_a_megabyte_line_parses_without_errors() {
        let text = format!(
            "data = \"{}\"\n\ndef after():\n    return data\n",
            "ab😀".repeat(1 << 18)
        );
        let start = (0..=text.len() / 2)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap();
        let tree = Language::Python.parse(&text[start..]).unwrap();
        assert!(
            !tree.root_node().has_error(),
            "{}",
            tree.root_node().to_sexp()
        );
        let found = crate::enclosing_function(Path::new("x.py"), &text, text.len() - 5).unwrap();
        assert_eq!(found.name.as_deref(), Some("after"));
    }
}
