//! `context_at`: definitions cut to use, ranking by the names near the cursor, base classes
//! reached through a third file, the current file's cut-off definitions, and stability while
//! typing inside one function.

use expect_test::{expect, Expect};

use super::fixture::{count, show_blocks, typing_builds, Fixture};
use crate::{ContextConfig, Focus};

fn config(budget_tokens: usize) -> ContextConfig {
    ContextConfig {
        budget_tokens,
        ..ContextConfig::default()
    }
}

/// The use-driven context at the fixture's cursor, indexed first or not (both must agree).
fn check_at(spec: &str, budget: usize, window_start: usize, expect: Expect) {
    let fixture = Fixture::new(spec);
    let (path, text, cursor) = fixture.current.clone().unwrap();
    let focus = Focus {
        cursor,
        window_start,
    };
    let index = fixture.index(config(budget));
    let lazy = index.context_at(&path, &text, focus, &count);
    index.index_all(&mut |_, _| {});
    let walked = index.context_at(&path, &text, focus, &count);
    assert_eq!(lazy, walked, "context differs before and after the walk");
    expect.assert_eq(&show_blocks(&walked));
}

/// A module too large to fit whole or as an outline.
fn big_module() -> String {
    let mut out = String::from("\"\"\"A big module.\"\"\"\n\nfrom base import Base\n\n");
    for i in 0..60 {
        out.push_str(&format!(
            "def helper_{i}(value, *, strict=False):\n    \"\"\"Helper number {i}.\n\n    Long explanation that the outline would carry.\n    \"\"\"\n    return value + {i}\n\n"
        ));
    }
    out.push_str("class Parser(Base):\n    \"\"\"Parses things.\n\n    More words.\n    \"\"\"\n    def __init__(self, text):\n        self.text = text\n        self.pos = 0\n        self.extra = []\n        self.more = {}\n        self.seen = set()\n        self.stack = []\n        self.errors = []\n        self.warnings = []\n        self.options = None\n\n    def parse_value(self, strict=True):\n        \"\"\"Parse one value.\"\"\"\n        return self.text[self.pos:]\n\n    def unused_method(self):\n        return None\n");
    out
}

/// The old selection gives the big module nothing under this budget; the new one gives the
/// definitions the line needs: the used class with its base class from a third file and the
/// helper used near the cursor, before the helper used elsewhere in the file.
#[test]
fn outlines_cut_to_use_with_base_classes_from_a_third_file() {
    let spec = format!(
        r#"
//- /base.py
class Base:
    """Root of parsers."""
    def reset(self):
        self.pos = 0
//- /big.py
{big}
//- /main.py
from big import Parser, helper_3, helper_7

def elsewhere():
    return helper_7(1)

def work(text):
    p = Parser(text)
    v = helper_3(p.parse_value())
    return v.$0
"#,
        big = big_module()
    );
    // The old selection: the big module fits neither whole nor as an outline.
    let fixture = Fixture::new(&spec);
    let (path, text) = fixture.current();
    let old = fixture.index(config(200)).context_for(path, text, &count);
    assert!(
        old.iter().all(|b| b.path != "big.py"),
        "{}",
        show_blocks(&old)
    );
    check_at(
        &spec,
        200,
        0,
        expect![[r#"
            --- base.py
            class Base:
                """Root of parsers."""
                def reset(self):
                    self.pos = 0
            --- big.py
            def helper_0(value, *, strict=False):
                """Helper number 0."""
                ...

            def helper_1(value, *, strict=False):
                """Helper number 1."""
                ...

            def helper_3(value, *, strict=False):
                """Helper number 3.

                Long explanation that the outline would carry.
                """
                return value + 3

            def helper_7(value, *, strict=False):
                """Helper number 7.

                Long explanation that the outline would carry.
                """
                return value + 7

            class Parser(Base):
                """Parses things."""
                def __init__(self, text):
                    ...
                def parse_value(self, strict=True):
                    """Parse one value."""
                    ...
                def unused_method(self):
                    ...
        "#]],
    );
    // With less room, the helpers (whole, they are small) fit and the class does not.
    check_at(
        &spec,
        90,
        0,
        expect![[r#"
            --- big.py
            def helper_3(value, *, strict=False):
                """Helper number 3.

                Long explanation that the outline would carry.
                """
                return value + 3

            def helper_7(value, *, strict=False):
                """Helper number 7.

                Long explanation that the outline would carry.
                """
                return value + 7
        "#]],
    );
}

/// Two imported files and room for one: the one whose name is used in the function around
/// the cursor wins, wherever the other is used.
#[test]
fn ranking_by_the_names_near_the_cursor() {
    let spec = r#"
//- /aaa.py
def far_helper(x, y, z):
    """Used far from the cursor."""
    return [x, y, z, x, y, z, x, y, z, x, y, z]
//- /zzz.py
def near_helper(x, y, z):
    """Used near the cursor."""
    return [z, y, x, z, y, x, z, y, x, z, y, x]
//- /main.py
from aaa import far_helper
from zzz import near_helper

def one():
    return far_helper(1, 2, 3)

def two():
    return near_helper(1, 2, $0)
"#;
    check_at(
        spec,
        40,
        0,
        expect![[r#"
            --- zzz.py
            def near_helper(x, y, z):
                """Used near the cursor."""
                return [z, y, x, z, y, x, z, y, x, z, y, x]
        "#]],
    );
}

/// Re-exports through a package's `__init__.py` lead to the defining file.
#[test]
fn reexports_lead_to_the_defining_file() {
    let spec = r#"
//- /pkg/__init__.py
from .core import Core
//- /pkg/core.py
class Core:
    def run(self, n): ...
//- /main.py
from pkg import Core
def main():
    Core().$0
"#;
    check_at(
        spec,
        1024,
        0,
        expect![[r#"
            --- pkg/core.py
            class Core:
                def run(self, n): ...
            --- pkg/__init__.py
            from .core import Core
        "#]],
    );
}

/// Rust: the used type comes with its `impl` blocks.
#[test]
fn rust_used_type_with_its_impl_blocks() {
    let mut shapes = String::from("pub struct Circle {\n    pub r: f64,\n}\n\nimpl Circle {\n    pub fn area(&self) -> f64 {\n        3.14 * self.r * self.r\n    }\n}\n\n");
    for i in 0..40 {
        shapes.push_str(&format!(
            "/// Unused number {i}.\npub fn unused_{i}(a: u32, b: u32) -> u32 {{\n    a * b + {i}\n}}\n\n"
        ));
    }
    let spec = format!(
        r#"
//- /Cargo.toml
[package]
name = "demo"
//- /src/lib.rs
mod shapes;
use crate::shapes::Circle;

fn total(c: &Circle) -> f64 {{
    c.$0
}}
//- /src/shapes.rs
{shapes}
"#
    );
    check_at(
        &spec,
        120,
        0,
        expect![[r#"
            --- src/shapes.rs
            pub struct Circle {
                pub r: f64,
            }

            impl Circle {
                pub fn area(&self) -> f64 {
                    3.14 * self.r * self.r
                }
            }

            /// Unused number 0.
            pub fn unused_0(a: u32, b: u32) -> u32 { ... }

            /// Unused number 1.
            pub fn unused_1(a: u32, b: u32) -> u32 { ... }

            /// Unused number 2.
            pub fn unused_2(a: u32, b: u32) -> u32 { ... }

            /// Unused number 3.
            pub fn unused_3(a: u32, b: u32) -> u32 { ... }
        "#]],
    );
}

/// When the window cuts the top of the current file, the definitions used near the cursor
/// that were cut off come back as a block under the file's own path, after the others.
#[test]
fn own_far_definitions_cut_by_the_window() {
    let filler = "# filler line\n".repeat(40);
    let spec = format!(
        r#"
//- /util.py
def shared(): ...
//- /main.py
from util import shared

class Config:
    """Settings."""
    def __init__(self, depth):
        self.depth = depth

def unused_far(x):
    return x

def far_used(a, b=2):
    """Far away but used."""
    return a * b
{filler}
def work():
    c = Config(3)
    shared()
    return far_used(c.$0
"#
    );
    let fixture = Fixture::new(&spec);
    let (_, text) = fixture.current();
    let window_start = text.find("# filler").unwrap();
    check_at(
        &spec,
        1024,
        window_start,
        expect![[r#"
            --- util.py
            def shared(): ...
            --- main.py
            class Config:
                """Settings."""
                def __init__(self, depth):
                    self.depth = depth

            def far_used(a, b=2):
                """Far away but used."""
                return a * b
        "#]],
    );
    // Without a cut, no block for the current file.
    check_at(
        &spec,
        1024,
        0,
        expect![[r#"
            --- util.py
            def shared(): ...
        "#]],
    );
}

/// Typing a line inside one function keystroke by keystroke keeps the blocks byte-identical
/// (the prompt's start, and with it the KV cache, is reused).
#[test]
fn stable_while_typing_inside_one_function() {
    let spec = format!(
        r#"
//- /base.py
class Base:
    def reset(self): ...
//- /big.py
{big}
//- /main.py
from big import Parser, helper_3, helper_7

def elsewhere():
    return helper_7(1)

def work(text):
    p = Parser(text)
    $0
    return p
"#,
        big = big_module()
    );
    let fixture = Fixture::new(&spec);
    let (path, text, cursor) = fixture.current.clone().unwrap();
    let index = fixture.index(config(200));
    index.index_all(&mut |_, _| {});
    let typed = "value = helper_3(p.parse_value(strict=False)) + len(text)";
    let builds = typing_builds(&index, &path, &text, cursor, typed, 0);
    let keystrokes = builds.len() - 1;
    let same = builds.windows(2).filter(|w| w[0] == w[1]).count();
    // Only completing a word that names an imported definition may change the blocks (here
    // `helper_3`, which becomes near); everything else keeps them.
    assert!(
        same + 1 >= keystrokes,
        "{same} of {keystrokes} keystrokes kept the blocks"
    );
}

/// Typing a whole method into a class, character by character — its decorator, header, line
/// breaks and every space of the indentation — keeps the blocks byte-identical from the first
/// keystroke of the header's keyword to the end: a fresh or half-indented line belongs to the
/// function above it, not to the lines around the cursor (which name the class's base, defined
/// above the window, and the helpers of the method below). Only moving from the method above
/// into the new one may change them, once.
#[test]
fn stable_while_typing_a_method_with_its_line_breaks_and_indentation() {
    let spec = format!(
        r#"
//- /base.py
class Base:
    def reset(self): ...
//- /util.py
def shared():
    return 1
//- /big.py
{big}
//- /main.py
from big import Parser, helper_3, helper_7
from util import shared

class Early:
    """Defined above the window."""
    def go(self):
        return helper_3(1)

# filler

class Holder(Early):
    def __init__(self, text):
        self.items = []
        self.parser = Parser(text)
$0
    def later(self):
        return helper_7(shared())
"#,
        big = big_module()
    );
    let fixture = Fixture::new(&spec);
    let (path, text, cursor) = fixture.current.clone().unwrap();
    let window_start = text.find("# filler").unwrap();
    let index = fixture.index(config(300));
    index.index_all(&mut |_, _| {});
    let typed = "    @property\n    def size(self):\n        total = 0\n        for item in self.items:\n            total += item.weight\n\n        return total\n";
    let header_done = typed.find("(self):").unwrap();
    let builds = typing_builds(&index, &path, &text, cursor, typed, window_start);
    let changes: Vec<usize> = (1..builds.len())
        .filter(|&n| builds[n] != builds[n - 1])
        .collect();
    assert!(
        changes.len() <= 1 && changes.iter().all(|&n| n <= header_done),
        "blocks changed at keystrokes {changes:?} of {}: {:?}",
        typed.len(),
        changes.iter().map(|&n| &typed[..n]).collect::<Vec<_>>()
    );
    assert!(!builds[0].is_empty());
}
