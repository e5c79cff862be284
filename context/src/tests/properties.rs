//! Property tests (proptest, a fixed number of cases) of import and outline parsing on arbitrary
//! input: bytes read as a file would be (lossy UTF-8) and strings built from the pieces that
//! make code hard (keywords, brackets, `#[path]`, multi-byte characters, CRLF, long lines).
//! Nothing panics; every range an extraction returns lies within the text, starts before it
//! ends and falls on char boundaries.
//!
//! It does not check what is extracted (the fixture tests do) or the index and its queries.

use std::ops::Range;

use proptest::prelude::*;

use crate::function::enclosing_function_for;
use crate::imports;
use crate::lang::Language as Lang;
use crate::language::Language;
use crate::outline;

const CASES: u32 = 256;

const PIECES: &[&str] = &[
    "import ",
    "from ",
    " import ",
    " as ",
    "use ",
    "mod ",
    "pub ",
    "def ",
    "fn ",
    "class ",
    "impl ",
    "struct ",
    "async ",
    "return ",
    "self",
    "super",
    "crate",
    "::",
    ".",
    "..",
    ",",
    "*",
    "(",
    ")",
    "{",
    "}",
    "[",
    "]",
    ":",
    ";",
    "=",
    "->",
    "@decorator\n",
    "#[path = \"../x.rs\"]\n",
    "\"\"\"doc\"\"\"",
    "/// doc\n",
    "# comment\n",
    "'",
    "\"",
    "\\",
    "\n",
    "\r\n",
    "\r",
    "    ",
    "\t",
    "a",
    "b_c",
    "Name",
    "x1",
    "é",
    "😀",
    "\u{200d}",
    "\u{2028}",
    "\0",
];

/// Code-like text: a sequence of [`PIECES`], sometimes with a long line.
fn code() -> impl Strategy<Value = String> {
    (
        prop::collection::vec(prop::sample::select(PIECES), 0..160),
        prop::option::of(0usize..6000),
    )
        .prop_map(|(pieces, long)| {
            let mut text: String = pieces.concat();
            if let Some(n) = long {
                let at = (0..=text.len())
                    .rev()
                    .find(|&i| text.is_char_boundary(i) && i <= text.len() / 2)
                    .unwrap_or(0);
                text.insert_str(at, &"x".repeat(n));
            }
            text
        })
}

/// Arbitrary bytes, read as a file is (invalid UTF-8 replaced).
fn bytes() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<u8>(), 0..2048)
        .prop_map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![code(), bytes()]
}

fn assert_range(text: &str, r: &Range<usize>, what: &str) {
    assert!(
        r.start <= r.end && r.end <= text.len(),
        "{what} {r:?} out of a text of {} bytes",
        text.len()
    );
    assert!(
        text.is_char_boundary(r.start) && text.is_char_boundary(r.end),
        "{what} {r:?} not on char boundaries"
    );
}

fn check(lang: Language, text: &str, offset: usize) {
    let Some(tree) = lang.parse(text) else {
        return;
    };
    let found = imports::extract(lang, &tree, text);
    for r in &found.statements {
        assert_range(text, r, "import statement");
    }
    let details = outline::details(lang, &tree, text);
    for def in &details.defs {
        assert_range(text, &def.range, "definition");
        assert_range(&details.outline, &def.outline, "definition outline");
        let _ = details.def_outline(def);
    }
    let offset = offset % (text.len() + 1);
    if let Some((_, r)) = outline::enclosing_function(lang, &tree, text, offset) {
        assert_range(text, &r, "enclosing function");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(CASES))]

    #[test]
    fn python_imports_and_outlines_of_arbitrary_text(text in text(), offset in any::<usize>()) {
        check(Language::Python, &text, offset);
    }

    #[test]
    fn rust_imports_and_outlines_of_arbitrary_text(text in text(), offset in any::<usize>()) {
        check(Language::Rust, &text, offset);
    }

    #[test]
    fn the_function_finder_on_arbitrary_text(text in text(), offset in any::<usize>()) {
        let offset = offset % (text.len() + 2);
        for lang in [Lang::Python, Lang::Rust, Lang::C, Lang::JavaScript, Lang::Go] {
            if let Some(f) = enclosing_function_for(lang, &text, offset) {
                assert_range(&text, &f.range, "function");
            }
        }
    }
}
