//! `context_for` and `definitions_for`: dependency order, the budget and the outline fallback,
//! relevance, determinism.

use expect_test::{expect, Expect};

use super::fixture::{count, show_blocks, Fixture};
use crate::ContextConfig;

/// The context of the fixture's current file, indexed first or not (both must agree).
fn check_with(spec: &str, config: ContextConfig, expect: Expect) {
    let fixture = Fixture::new(spec);
    let (path, text) = fixture.current();
    let index = fixture.index(config);
    let lazy = index.context_for(path, text, &count);
    index.index_all(&mut |_, _| {});
    let walked = index.context_for(path, text, &count);
    assert_eq!(lazy, walked, "context differs before and after the walk");
    expect.assert_eq(&show_blocks(&walked));
}

fn check(spec: &str, expect: Expect) {
    check_with(
        spec,
        ContextConfig {
            max_depth: 3,
            ..ContextConfig::default()
        },
        expect,
    );
}

#[test]
fn chain_dependencies_first_current_file_excluded() {
    check(
        r#"
//- /a.py
from b import B
A = B + 1
//- /b.py
from c import C
B = C + 1
//- /c.py
C = 1
//- /main.py
from a import A
print(A)$0
"#,
        expect![[r#"
            --- c.py
            C = 1
            --- b.py
            from c import C
            B = C + 1
            --- a.py
            from b import B
            A = B + 1
        "#]],
    );
}

#[test]
fn diamond() {
    check(
        r#"
//- /main.py
import left, right
$0
//- /left.py
from base import X
//- /right.py
from base import X
//- /base.py
X = 1
"#,
        expect![[r#"
            --- base.py
            X = 1
            --- left.py
            from base import X
            --- right.py
            from base import X
        "#]],
    );
}

#[test]
fn cycle_broken_by_in_degree_then_path() {
    check(
        r#"
//- /main.rs
mod a;
mod b;
mod c;
$0
//- /a.rs
use crate::b::B;
pub struct A;
//- /b.rs
use crate::c::C;
pub struct B;
//- /c.rs
use crate::a::A;
pub struct C;
"#,
        expect![[r#"
            --- a.rs
            use crate::b::B;
            pub struct A;
            --- c.rs
            use crate::a::A;
            pub struct C;
            --- b.rs
            use crate::c::C;
            pub struct B;
        "#]],
    );
}

#[test]
fn cycle_back_to_the_current_file_is_ignored() {
    check(
        r#"
//- /main.py
from helper import h
def run(): ...$0
//- /helper.py
from main import run
def h(): run()
"#,
        expect![[r#"
            --- helper.py
            from main import run
            def h(): run()
        "#]],
    );
}

#[test]
fn depth_limit() {
    check_with(
        r#"
//- /main.py
import a
$0
//- /a.py
import b
//- /b.py
import c
//- /c.py
C = 1
"#,
        ContextConfig {
            max_depth: 2,
            ..ContextConfig::default()
        },
        expect![[r#"
            --- b.py
            import c
            --- a.py
            import b
        "#]],
    );
}

/// `big` does not fit whole and falls back to its outline; `huge` does not fit even as an
/// outline; `used` is imported by name and used, so it is served first.
#[test]
fn budget_outline_fallback_and_relevance() {
    let body = "    x = 1\n".repeat(20);
    let spec = format!(
        r#"
//- /main.py
import big
import huge
from used import helper
from unused import other
helper(1)$0
//- /big.py
"""Big module."""
LIMIT = 3
def first(a, b):
    """First."""
{body}def second():
{body}
//- /huge.py
{huge}
//- /used.py
def helper(n):
    return n * 2
//- /unused.py
def other(n):
    return n * 3
"#,
        huge = (0..40)
            .map(|i| format!("def f{i}(x):\n{body}"))
            .collect::<String>(),
    );
    check_with(
        &spec,
        ContextConfig {
            budget_tokens: 100,
            ..ContextConfig::default()
        },
        expect![[r#"
            --- big.py
            """Big module."""
            LIMIT = 3

            def first(a, b):
                """First."""
                ...

            def second():
                ...
            --- unused.py
            def other(n):
                return n * 3
            --- used.py
            def helper(n):
                return n * 2
        "#]],
    );
    // With a budget for one block only, the used file wins over the unused one.
    check_with(
        &spec,
        ContextConfig {
            budget_tokens: 20,
            ..ContextConfig::default()
        },
        expect![[r#"
            --- unused.py
            def other(n):
                ...
            --- used.py
            def helper(n):
                return n * 2
        "#]],
    );
}

#[test]
fn output_is_deterministic_and_ignores_the_cursor() {
    let spec = r#"
//- /pkg/__init__.py
from .core import Core
//- /pkg/core.py
class Core:
    def run(self): ...
//- /pkg/util.py
def helper(): ...
//- /main.py
from pkg import Core
from pkg.util import helper
def main():
    Core().run()$0
"#;
    let fixture = Fixture::new(spec);
    let (path, text) = fixture.current();
    let index = fixture.index(ContextConfig::default());
    index.index_all(&mut |_, _| {});
    let first = index.context_for(path, text, &count);
    assert!(!first.is_empty());
    for _ in 0..3 {
        assert_eq!(index.context_for(path, text, &count), first);
    }
    // Typing inside a function changes nothing.
    let typed = text.replace("Core().run()", "Core().run()\n    x = Core().ru");
    assert_eq!(index.context_for(path, &typed, &count), first);
    // A fresh index gives the same bytes.
    let again = fixture.index(ContextConfig::default());
    assert_eq!(again.context_for(path, text, &count), first);
}

#[test]
fn editor_buffers_override_the_disk() {
    let fixture = Fixture::new(
        r#"
//- /main.py
from lib import f
$0
//- /lib.py
def f(): return "disk"
"#,
    );
    let (path, text) = fixture.current();
    let index = fixture.index(ContextConfig::default());
    index.index_all(&mut |_, _| {});
    let lib = fixture.path("/lib.py");
    index
        .update_file(&lib, "from extra import g\ndef f(): return \"buffer\"\n")
        .unwrap();
    std::fs::write(fixture.path("/extra.py"), "def g(): ...\n").unwrap();
    index.refresh_path(&fixture.path("/extra.py")).unwrap();
    expect![[r#"
        --- extra.py
        def g(): ...
        --- lib.py
        from extra import g
        def f(): return "buffer"
    "#]]
    .assert_eq(&show_blocks(&index.context_for(path, text, &count)));
    index.refresh_path(&lib).unwrap();
    expect![[r#"
        --- lib.py
        def f(): return "disk"
    "#]]
    .assert_eq(&show_blocks(&index.context_for(path, text, &count)));
    std::fs::remove_file(&lib).unwrap();
    index.refresh_path(&lib).unwrap();
    assert!(index.context_for(path, text, &count).is_empty());
}

#[test]
fn definitions_for_a_snippet() {
    let fixture = Fixture::new(
        r#"
//- /pkg/__init__.py
from .shapes import Circle
//- /pkg/shapes.py
"""Shapes."""
class Circle:
    """A circle."""
    def area(self):
        return 3.14 * self.r ** 2

class Square:
    pass
//- /pkg/mathx.py
def clamp(x, lo, hi):
    return max(lo, min(x, hi))

def unused():
    pass
//- /main.py
from pkg import Circle
import pkg.mathx as mx
from os import path

def total(shapes):
    s = 0$0
    for c in shapes:
        s += mx.clamp(Circle().area(), 0, 10)
    return s
"#,
    );
    let (path, text) = fixture.current();
    let index = fixture.index(ContextConfig::default());
    let span = crate::enclosing_function(path, text, fixture.current.as_ref().unwrap().2).unwrap();
    let snippet = &text[span.range];
    let blocks = index.definitions_for(path, text, snippet, &count, 1000);
    expect![[r#"
        --- pkg/mathx.py
        def clamp(x, lo, hi):
            return max(lo, min(x, hi))
        --- pkg/shapes.py
        class Circle:
            """A circle."""
            def area(self):
                return 3.14 * self.r ** 2
    "#]]
    .assert_eq(&show_blocks(&blocks));
    let small = index.definitions_for(path, text, snippet, &count, 25);
    expect![[r#"
        --- pkg/mathx.py
        def clamp(x, lo, hi):
            return max(lo, min(x, hi))
    "#]]
    .assert_eq(&show_blocks(&small));
}

#[test]
fn unsaved_new_file_and_rust_definitions() {
    let fixture = Fixture::new(
        r#"
//- /Cargo.toml
[package]
name = "app"
//- /src/lib.rs
pub mod shapes;
//- /src/shapes.rs
/// A circle.
pub struct Circle {
    pub r: f64,
}

impl Circle {
    /// Its area.
    pub fn area(&self) -> f64 {
        3.14 * self.r * self.r
    }
}

pub fn unused() {}
"#,
    );
    let index = fixture.index(ContextConfig::default());
    // A file that exists only in the editor.
    let path = fixture.path("/src/new.rs");
    let text = "use crate::shapes::Circle;\n\nfn total(c: &Circle) -> f64 {\n    c.area()\n}\n";
    index.update_file(&path, text).unwrap();
    expect![[r#"
        --- src/shapes.rs
        /// A circle.
        pub struct Circle {
            pub r: f64,
        }

        impl Circle {
            /// Its area.
            pub fn area(&self) -> f64 {
                3.14 * self.r * self.r
            }
        }

        pub fn unused() {}
    "#]]
    .assert_eq(&show_blocks(&index.context_for(&path, text, &count)));
    let function = crate::enclosing_function(&path, text, text.find("c.area").unwrap()).unwrap();
    let snippet = &text[function.range];
    expect![[r#"
        --- src/shapes.rs
        /// A circle.
        pub struct Circle {
            pub r: f64,
        }

        impl Circle {
            /// Its area.
            pub fn area(&self) -> f64 {
                3.14 * self.r * self.r
            }
        }
    "#]]
    .assert_eq(&show_blocks(
        &index.definitions_for(&path, text, snippet, &count, 500),
    ));
}
