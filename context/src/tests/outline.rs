//! Outlines, definitions and `enclosing_function`.

use std::path::Path;

use expect_test::{expect, Expect};

use crate::outline::details;
use crate::{enclosing_function, language_for_path};

fn check_outline(name: &str, text: &str, expect: Expect) {
    let lang = language_for_path(name.as_ref()).unwrap();
    let tree = lang.parse(text).unwrap();
    let details = details(lang, &tree, text);
    let mut out = details.outline.clone();
    out.push_str("=== defs\n");
    for def in &details.defs {
        let first_line = text[def.range.clone()].lines().next().unwrap_or("");
        out.push_str(&format!("{:?} {:?}\n", def.names, first_line));
    }
    expect.assert_eq(&out);
}

/// `$0` marks the offset; shows the function's name and first and last lines.
fn check_enclosing(name: &str, text: &str, expect: Expect) {
    let offset = text.find("$0").unwrap();
    let text = text.replacen("$0", "", 1);
    let found = match enclosing_function(Path::new(name), &text, offset) {
        Some(span) => {
            let body = &text[span.range.clone()];
            format!(
                "{} {:?} .. {:?}",
                span.name.unwrap_or_default(),
                body.lines().next().unwrap_or(""),
                body.lines().last().unwrap_or("")
            )
        }
        None => "none".to_string(),
    };
    expect.assert_eq(&found);
}

#[test]
fn python_outline() {
    check_outline(
        "m.py",
        r#""""Module docstring."""
import os
from typing import Any

MAX = 10
name: str = "x"
A, B = 1, 2

def top(a: int, b=MAX) -> int:
    """Adds."""
    c = a + b
    return c

def one_liner(x): return x

@decorator(1)
def decorated():
    pass

class Base(object):
    """A base."""
    field: int = 0

    def __init__(self, x):
        self.x = x

    @property
    def prop(self):
        """The prop."""
        return self.x

    class Inner:
        def deep(self): ...

class Empty:
    pass

if __name__ == "__main__":
    top(1)
"#,
        expect![[r#"
            """Module docstring."""
            MAX = 10
            name: str = "x"
            A, B = 1, 2

            def top(a: int, b=MAX) -> int:
                """Adds."""
                ...

            def one_liner(x): ...

            @decorator(1)
            def decorated():
                ...

            class Base(object):
                """A base."""
                field: int = 0
                def __init__(self, x):
                    ...
                @property
                def prop(self):
                    """The prop."""
                    ...
                class Inner:
                    def deep(self): ...

            class Empty:
                ...
            === defs
            ["MAX"] "MAX = 10"
            ["name"] "name: str = \"x\""
            ["A", "B"] "A, B = 1, 2"
            ["top"] "def top(a: int, b=MAX) -> int:"
            ["one_liner"] "def one_liner(x): return x"
            ["decorated"] "@decorator(1)"
            ["Base"] "class Base(object):"
            ["Empty"] "class Empty:"
        "#]],
    );
}

#[test]
fn rust_outline() {
    check_outline(
        "lib.rs",
        r#"//! Crate docs.
use std::fmt;
pub use crate::inner::Thing;

/// A constant.
pub const MAX: usize = 10;
static NAME: &str = "x";

/// A point.
#[derive(Debug, Clone)]
pub struct Point<T> {
    pub x: T,
    y: T,
}

// A plain comment is dropped.
pub enum Shape { Circle(f64), Square }

pub type Alias = Point<u8>;

/// Makes one.
pub fn make(x: u8) -> Point<u8> {
    let y = x * 2;
    Point { x, y }
}

impl<T: Clone> Point<T> {
    /// The x.
    pub fn x(&self) -> T {
        self.x.clone()
    }
    const ORIGIN: u8 = 0;
}

pub trait Area {
    fn area(&self) -> f64;
    fn double(&self) -> f64 {
        self.area() * 2.0
    }
}

impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result where Self: Sized {
        write!(f, "shape")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn it_works() {
        assert!(true);
    }
}

macro_rules! m { () => {}; }
pub mod child;
"#,
        expect![[r#"
            //! Crate docs.
            pub use crate::inner::Thing;

            /// A constant.
            pub const MAX: usize = 10;

            static NAME: &str = "x";

            /// A point.
            #[derive(Debug, Clone)]
            pub struct Point<T> {
                pub x: T,
                y: T,
            }

            pub enum Shape { Circle(f64), Square }
            pub type Alias = Point<u8>;

            /// Makes one.
            pub fn make(x: u8) -> Point<u8> { ... }

            impl<T: Clone> Point<T> {
                /// The x.
                pub fn x(&self) -> T { ... }
                const ORIGIN: u8 = 0;
            }

            pub trait Area {
                fn area(&self) -> f64;
                fn double(&self) -> f64 { ... }
            }

            impl fmt::Display for Shape {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result where Self: Sized { ... }
            }

            macro_rules! m { () => {}; }
            pub mod child;
            === defs
            ["MAX"] "/// A constant."
            ["NAME"] "static NAME: &str = \"x\";"
            ["Point"] "/// A point."
            ["Shape"] "pub enum Shape { Circle(f64), Square }"
            ["Alias"] "pub type Alias = Point<u8>;"
            ["make"] "/// Makes one."
            ["Point"] "impl<T: Clone> Point<T> {"
            ["Area"] "pub trait Area {"
            ["Shape"] "impl fmt::Display for Shape {"
            ["m"] "macro_rules! m { () => {}; }"
            ["child"] "pub mod child;"
        "#]],
    );
}

#[test]
fn huge_items_are_cut() {
    let table: String = (0..400).map(|i| format!("    {i},\n")).collect();
    let src = format!("pub const TABLE: [u32; 400] = [\n{table}];\npub fn f() {{\n    g();\n}}\n");
    let lang = language_for_path("lib.rs".as_ref()).unwrap();
    let details = details(lang, &lang.parse(&src).unwrap(), &src);
    assert!(details.outline.len() < 2200, "{}", details.outline.len());
    assert!(details
        .outline
        .starts_with("pub const TABLE: [u32; 400] = [\n    0,\n    1,\n"));
    assert!(
        details
            .outline
            .ends_with("\n    ...\n\npub fn f() { ... }\n"),
        "{}",
        details.outline
    );
    assert_eq!(details.defs.len(), 2);
}

#[test]
fn enclosing_function_python() {
    let src = r#"
def outer(a):
    x = 1
    def inner(b):
        return b$0 + 1
    return inner

class C:
    @staticmethod
    def method(self):
        pass
"#;
    check_enclosing(
        "m.py",
        src,
        expect![[r#"inner "def inner(b):" .. "        return b + 1""#]],
    );
    check_enclosing(
        "m.py",
        &src.replace("b$0 + 1", "b + 1").replace("x = 1", "x$0 = 1"),
        expect![[r#"outer "def outer(a):" .. "    return inner""#]],
    );
    check_enclosing(
        "m.py",
        &src.replace("b$0 + 1", "b + 1").replace("pass", "pa$0ss"),
        expect![[r#"method "@staticmethod" .. "        pass""#]],
    );
    check_enclosing(
        "m.py",
        &src.replace("b$0 + 1", "b + 1")
            .replace("class C:", "class $0C:"),
        expect!["none"],
    );
}

#[test]
fn enclosing_function_rust() {
    let src = r#"
fn outer() -> u8 {
    fn inner(x: u8) -> u8 {
        x$0 + 1
    }
    let f = |y| y * 2;
    f(inner(1))
}

impl S {
    pub fn method(&self) {
        todo!()
    }
}

trait T { fn sig(&self); }
"#;
    check_enclosing(
        "lib.rs",
        src,
        expect![[r#"inner "fn inner(x: u8) -> u8 {" .. "    }""#]],
    );
    check_enclosing(
        "lib.rs",
        &src.replace("x$0 + 1", "x + 1").replace("y * 2", "y$0 * 2"),
        expect![[r#"outer "fn outer() -> u8 {" .. "}""#]],
    );
    check_enclosing(
        "lib.rs",
        &src.replace("x$0 + 1", "x + 1").replace("todo", "to$0do"),
        expect![[r#"method "pub fn method(&self) {" .. "    }""#]],
    );
    check_enclosing(
        "lib.rs",
        &src.replace("x$0 + 1", "x + 1")
            .replace("fn sig", "fn $0sig"),
        expect!["none"],
    );
    check_enclosing("notes.txt", "x$0", expect!["none"]);
    assert!(enclosing_function(Path::new("a.rs"), "fn f() {}", 10_000).is_none());
}
