//! The one owner of per-language facts in ghostline: which file extensions and LSP language ids
//! name a language, how it writes a line comment (and so a path comment in a prompt), how it
//! delimits blocks, which characters open one, and whether `ghostline-context` has a
//! tree-sitter grammar for it (by name; this crate links no grammar).
//!
//! Dependency-free on purpose, so that `lsp`, `context` and `inference` can all read it without
//! depending on each other. It holds facts only: no parsing, no shaping rules, no I/O.

/// How a language delimits blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Blocks {
    /// By indentation, after a line ending with `:` (Python).
    Indent,
    /// By `{` and `}` (Rust, C and its relatives).
    Braces,
    /// Neither is known.
    Unknown,
}

/// How a block comment is written around a path in a prompt (`<!-- path -->`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Comment {
    /// What opens the comment (`#`, `//`, `--`, `<!--` …).
    pub open: &'static str,
    /// What closes it (empty for line comments).
    pub close: &'static str,
}

/// A language ghostline knows facts about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Language {
    Python,
    Rust,
    C,
    Cpp,
    CSharp,
    Java,
    JavaScript,
    TypeScript,
    Go,
    Kotlin,
    Scala,
    Swift,
    Php,
    Dart,
    Zig,
}

/// Static facts about one language.
struct Facts {
    lang: Language,
    name: &'static str,
    /// LSP language ids (the first is the canonical one).
    ids: &'static [&'static str],
    /// File extensions, without the dot.
    extensions: &'static [&'static str],
    line_comment: &'static str,
    blocks: Blocks,
    /// Characters that, ending a line, open a block whose body follows on the next lines.
    block_openers: &'static [char],
    /// Keywords that introduce a function definition, each with its trailing space.
    function_keywords: &'static [&'static str],
    /// The grammar folder under `grammars/` when `ghostline-context` parses the language.
    grammar: Option<&'static str>,
}

const BRACE_OPENERS: &[char] = &['{', '(', '['];
const C_FUNCTIONS: &[&str] = &[];

const FACTS: &[Facts] = &[
    Facts {
        lang: Language::Python,
        name: "python",
        ids: &["python"],
        extensions: &["py", "pyi", "pyw"],
        line_comment: "#",
        blocks: Blocks::Indent,
        block_openers: &[':', '(', '[', '{'],
        function_keywords: &["def ", "async def "],
        grammar: Some("python"),
    },
    Facts {
        lang: Language::Rust,
        name: "rust",
        ids: &["rust"],
        extensions: &["rs"],
        line_comment: "//",
        blocks: Blocks::Braces,
        block_openers: BRACE_OPENERS,
        function_keywords: &["fn "],
        grammar: Some("rust"),
    },
    Facts {
        lang: Language::C,
        name: "c",
        ids: &["c"],
        extensions: &["c", "h"],
        line_comment: "//",
        blocks: Blocks::Braces,
        block_openers: BRACE_OPENERS,
        function_keywords: C_FUNCTIONS,
        grammar: None,
    },
    Facts {
        lang: Language::Cpp,
        name: "cpp",
        ids: &["cpp"],
        extensions: &["cc", "cpp", "cxx", "hpp", "hh", "hxx"],
        line_comment: "//",
        blocks: Blocks::Braces,
        block_openers: BRACE_OPENERS,
        function_keywords: C_FUNCTIONS,
        grammar: None,
    },
    Facts {
        lang: Language::CSharp,
        name: "csharp",
        ids: &["csharp"],
        extensions: &["cs"],
        line_comment: "//",
        blocks: Blocks::Braces,
        block_openers: BRACE_OPENERS,
        function_keywords: C_FUNCTIONS,
        grammar: None,
    },
    Facts {
        lang: Language::Java,
        name: "java",
        ids: &["java"],
        extensions: &["java"],
        line_comment: "//",
        blocks: Blocks::Braces,
        block_openers: BRACE_OPENERS,
        function_keywords: C_FUNCTIONS,
        grammar: None,
    },
    Facts {
        lang: Language::JavaScript,
        name: "javascript",
        ids: &["javascript", "javascriptreact"],
        extensions: &["js", "jsx", "mjs", "cjs"],
        line_comment: "//",
        blocks: Blocks::Braces,
        block_openers: BRACE_OPENERS,
        function_keywords: &["function "],
        grammar: None,
    },
    Facts {
        lang: Language::TypeScript,
        name: "typescript",
        ids: &["typescript", "typescriptreact"],
        extensions: &["ts", "tsx", "mts", "cts"],
        line_comment: "//",
        blocks: Blocks::Braces,
        block_openers: BRACE_OPENERS,
        function_keywords: &["function "],
        grammar: None,
    },
    Facts {
        lang: Language::Go,
        name: "go",
        ids: &["go"],
        extensions: &["go"],
        line_comment: "//",
        blocks: Blocks::Braces,
        block_openers: BRACE_OPENERS,
        function_keywords: &["func "],
        grammar: None,
    },
    Facts {
        lang: Language::Kotlin,
        name: "kotlin",
        ids: &["kotlin"],
        extensions: &["kt", "kts"],
        line_comment: "//",
        blocks: Blocks::Braces,
        block_openers: BRACE_OPENERS,
        function_keywords: &["fun "],
        grammar: None,
    },
    Facts {
        lang: Language::Scala,
        name: "scala",
        ids: &["scala"],
        extensions: &["scala", "sc"],
        line_comment: "//",
        blocks: Blocks::Braces,
        block_openers: BRACE_OPENERS,
        function_keywords: &["def "],
        grammar: None,
    },
    Facts {
        lang: Language::Swift,
        name: "swift",
        ids: &["swift"],
        extensions: &["swift"],
        line_comment: "//",
        blocks: Blocks::Braces,
        block_openers: BRACE_OPENERS,
        function_keywords: &["func "],
        grammar: None,
    },
    Facts {
        lang: Language::Php,
        name: "php",
        ids: &["php"],
        extensions: &["php"],
        line_comment: "//",
        blocks: Blocks::Braces,
        block_openers: BRACE_OPENERS,
        function_keywords: &["function "],
        grammar: None,
    },
    Facts {
        lang: Language::Dart,
        name: "dart",
        ids: &["dart"],
        extensions: &["dart"],
        line_comment: "//",
        blocks: Blocks::Braces,
        block_openers: BRACE_OPENERS,
        function_keywords: C_FUNCTIONS,
        grammar: None,
    },
    Facts {
        lang: Language::Zig,
        name: "zig",
        ids: &["zig"],
        extensions: &["zig"],
        line_comment: "//",
        blocks: Blocks::Braces,
        block_openers: BRACE_OPENERS,
        function_keywords: &["fn "],
        grammar: None,
    },
];

/// Path comments for files of languages ghostline has no other facts about, by extension.
const OTHER_COMMENTS: &[(&[&str], Comment)] = &[
    (
        &[
            "rb", "sh", "bash", "zsh", "pl", "r", "R", "toml", "yaml", "yml", "jl", "ex", "exs",
            "nim", "cmake", "mk",
        ],
        Comment {
            open: "#",
            close: "",
        },
    ),
    (
        &["lua", "sql", "hs", "elm", "ada"],
        Comment {
            open: "--",
            close: "",
        },
    ),
    (
        &["html", "xml", "vue", "svelte", "md"],
        Comment {
            open: "<!--",
            close: " -->",
        },
    ),
    (
        &["css"],
        Comment {
            open: "/*",
            close: " */",
        },
    ),
    (
        &["lisp", "clj", "el", "scm"],
        Comment {
            open: ";;",
            close: "",
        },
    ),
    (
        &["erl", "hrl", "tex"],
        Comment {
            open: "%",
            close: "",
        },
    ),
    (
        &["vim"],
        Comment {
            open: "\"",
            close: "",
        },
    ),
];

/// The extension of a path (`a/b.py` → `py`), without looking at the file system.
fn extension(path: &str) -> Option<&str> {
    let name = path.rsplit(['/', '\\']).next()?;
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then_some(ext)
}

impl Language {
    /// Every language, in declaration order.
    pub const ALL: [Language; 15] = [
        Language::Python,
        Language::Rust,
        Language::C,
        Language::Cpp,
        Language::CSharp,
        Language::Java,
        Language::JavaScript,
        Language::TypeScript,
        Language::Go,
        Language::Kotlin,
        Language::Scala,
        Language::Swift,
        Language::Php,
        Language::Dart,
        Language::Zig,
    ];

    fn facts(self) -> &'static Facts {
        // FACTS is in `ALL` order (a test checks it).
        &FACTS[self as usize]
    }

    /// From a file extension without the dot (`py`, `rs`); case-sensitive, as editors are.
    pub fn from_extension(ext: &str) -> Option<Language> {
        FACTS
            .iter()
            .find(|f| f.extensions.contains(&ext))
            .map(|f| f.lang)
    }

    /// From a path's extension (`src/main.rs`); `None` without a known one.
    pub fn from_path(path: &str) -> Option<Language> {
        Language::from_extension(extension(path)?)
    }

    /// From an LSP language id (`python`, `typescriptreact`).
    pub fn from_id(id: &str) -> Option<Language> {
        FACTS.iter().find(|f| f.ids.contains(&id)).map(|f| f.lang)
    }

    /// From the client's language id, else from the path's extension.
    pub fn detect(language_id: &str, path: &str) -> Option<Language> {
        Language::from_id(language_id).or_else(|| Language::from_path(path))
    }

    /// A short lowercase name (`python`, `cpp`).
    pub fn name(self) -> &'static str {
        self.facts().name
    }

    /// The canonical LSP language id.
    pub fn language_id(self) -> &'static str {
        self.facts().ids[0]
    }

    /// Every LSP language id that names it.
    pub fn language_ids(self) -> &'static [&'static str] {
        self.facts().ids
    }

    /// File extensions, without the dot.
    pub fn extensions(self) -> &'static [&'static str] {
        self.facts().extensions
    }

    /// What starts a line comment.
    pub fn line_comment(self) -> &'static str {
        self.facts().line_comment
    }

    /// How blocks are delimited.
    pub fn blocks(self) -> Blocks {
        self.facts().blocks
    }

    /// Characters that, ending a line, open a block.
    pub fn block_openers(self) -> &'static [char] {
        self.facts().block_openers
    }

    /// Keywords that introduce a function (`def `, `fn `, `func ` …), with their trailing
    /// space; empty for C-style declarations (`int main(void) {`), found by shape instead.
    pub fn function_keywords(self) -> &'static [&'static str] {
        self.facts().function_keywords
    }

    /// The grammar folder under `grammars/` when `ghostline-context` parses the language with
    /// tree-sitter (Python, Rust); `None` for the textual fallbacks.
    pub fn grammar(self) -> Option<&'static str> {
        self.facts().grammar
    }
}

/// The comment that wraps a path ahead of a file in a prompt, by the path's extension: the
/// line comment of a known language, else a table of common others, else `//`.
pub fn path_comment(path: &str) -> Comment {
    let ext = extension(path).unwrap_or("");
    if let Some(lang) = Language::from_extension(ext) {
        return Comment {
            open: lang.line_comment(),
            close: "",
        };
    }
    OTHER_COMMENTS
        .iter()
        .find(|(exts, _)| exts.contains(&ext))
        .map_or(
            Comment {
                open: "//",
                close: "",
            },
            |(_, c)| *c,
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn facts_are_in_all_order_and_unambiguous() {
        for (i, lang) in Language::ALL.into_iter().enumerate() {
            assert_eq!(FACTS[i].lang, lang);
            assert_eq!(lang.language_ids()[0], lang.language_id());
        }
        assert_eq!(FACTS.len(), Language::ALL.len());
        let mut exts: Vec<&str> = FACTS.iter().flat_map(|f| f.extensions).copied().collect();
        let mut ids: Vec<&str> = FACTS.iter().flat_map(|f| f.ids).copied().collect();
        let (e, i) = (exts.len(), ids.len());
        exts.sort();
        exts.dedup();
        ids.sort();
        ids.dedup();
        assert_eq!(
            (exts.len(), ids.len()),
            (e, i),
            "an extension or id names two languages"
        );
    }

    #[test]
    fn detection() {
        assert_eq!(Language::detect("python", "a.txt"), Some(Language::Python));
        assert_eq!(Language::detect("", "src/main.rs"), Some(Language::Rust));
        assert_eq!(
            Language::detect("typescriptreact", ""),
            Some(Language::TypeScript)
        );
        assert_eq!(Language::detect("markdown", "README.md"), None);
        assert_eq!(Language::from_path("dir.rs/Makefile"), None);
        assert_eq!(Language::from_path(".py"), None);
        assert_eq!(Language::from_path("a\\b.pyi"), Some(Language::Python));
        assert_eq!(Language::Python.grammar(), Some("python"));
        assert_eq!(Language::Go.grammar(), None);
        assert_eq!(Language::Python.blocks(), Blocks::Indent);
        assert_eq!(Language::Java.block_openers(), &['{', '(', '[']);
    }

    #[test]
    fn path_comments() {
        let show = |p: &str| {
            let c = path_comment(p);
            format!("{} {p}{}", c.open, c.close)
        };
        assert_eq!(show("a/b.py"), "# a/b.py");
        assert_eq!(show("src/lib.rs"), "// src/lib.rs");
        assert_eq!(show("x.lua"), "-- x.lua");
        assert_eq!(show("x.html"), "<!-- x.html -->");
        assert_eq!(show("Makefile"), "// Makefile");
    }
}
