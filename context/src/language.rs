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
            let bytes = text.as_bytes();
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
