//! Import extraction and resolution: every import form, confinement, syntax errors.

use expect_test::{expect, Expect};

use super::fixture::Fixture;
use crate::imports::extract;
use crate::resolve::resolve;
use crate::{language_for_path, ContextConfig};

/// The raw imports of `text` (a file named `name`), one per line.
fn check_raw(name: &str, text: &str, expect: Expect) {
    let lang = language_for_path(name.as_ref()).unwrap();
    let tree = lang.parse(text).unwrap();
    let found = extract(lang, &tree, text);
    let lines: Vec<String> = found.imports.iter().map(|i| format!("{i:?}")).collect();
    expect.assert_eq(&(lines.join("\n") + "\n"));
}

/// The resolved imports of the fixture's current file, the same before and after a full walk.
fn check(spec: &str, expect: Expect) {
    let fixture = Fixture::new(spec);
    let (path, text) = fixture.current();
    let lang = language_for_path(path).unwrap();
    let tree = lang.parse(text).unwrap();
    let found = extract(lang, &tree, text);
    let index = fixture.index(ContextConfig::default());
    let lazy = fixture.show_edges(&resolve(&index, lang, path, &found.imports));
    index.index_all(&mut |_, _| {});
    let walked = fixture.show_edges(&resolve(&index, lang, path, &found.imports));
    assert_eq!(lazy, walked, "resolution differs before and after the walk");
    expect.assert_eq(&walked);
}

#[test]
fn python_raw_forms() {
    check_raw(
        "m.py",
        r#"
import a.b
import a.b as c, d
from a.b import c, d as e
from . import x
from ..pkg.mod import y
from .. import *
from __future__ import annotations
if TYPE_CHECKING:
    from t import T
def f():
    import lazy
try:
    import fast
except ImportError:
    import slow as fast
"#,
        expect![[r#"
            PyModule { module: ["a", "b"], alias: None }
            PyModule { module: ["a", "b"], alias: Some("c") }
            PyModule { module: ["d"], alias: None }
            PyFrom { level: 0, module: ["a", "b"], names: [Binding { name: "c", alias: None }, Binding { name: "d", alias: Some("e") }], glob: false }
            PyFrom { level: 1, module: [], names: [Binding { name: "x", alias: None }], glob: false }
            PyFrom { level: 2, module: ["pkg", "mod"], names: [Binding { name: "y", alias: None }], glob: false }
            PyFrom { level: 2, module: [], names: [], glob: true }
            PyFrom { level: 0, module: ["t"], names: [Binding { name: "T", alias: None }], glob: false }
            PyModule { module: ["lazy"], alias: None }
            PyModule { module: ["fast"], alias: None }
            PyModule { module: ["slow"], alias: Some("fast") }
        "#]],
    );
}

#[test]
fn rust_raw_forms() {
    check_raw(
        "lib.rs",
        r#"
mod a;
#[cfg(test)]
#[path = "x/y.rs"]
mod b;
mod inline { mod c; use super::a::*; }
use crate::a::{B, c::{self, D as E}, f::*};
use super::super::g;
use self::h as _;
use ::std::fmt;
use r#type::Thing;
pub(crate) use k::{};
"#,
        expect![[r#"
            RustMod { name: "a", path_attr: None, inline: [] }
            RustMod { name: "b", path_attr: Some("x/y.rs"), inline: [] }
            RustMod { name: "c", path_attr: None, inline: ["inline"] }
            RustUse { path: ["super", "a"], alias: None, glob: true, inline: ["inline"] }
            RustUse { path: ["crate", "a", "B"], alias: None, glob: false, inline: [] }
            RustUse { path: ["crate", "a", "c"], alias: None, glob: false, inline: [] }
            RustUse { path: ["crate", "a", "c", "D"], alias: Some("E"), glob: false, inline: [] }
            RustUse { path: ["crate", "a", "f"], alias: None, glob: true, inline: [] }
            RustUse { path: ["super", "super", "g"], alias: None, glob: false, inline: [] }
            RustUse { path: ["self", "h"], alias: None, glob: false, inline: [] }
            RustUse { path: ["std", "fmt"], alias: None, glob: false, inline: [] }
            RustUse { path: ["type", "Thing"], alias: None, glob: false, inline: [] }
        "#]],
    );
}

#[test]
fn syntax_errors_still_yield_imports() {
    check_raw(
        "m.py",
        r#"
from app.util import helper
import app.models as m

def broken(:
    return [1, 2
class Half(
from app.late import thing
"#,
        expect![[r#"
            PyFrom { level: 0, module: ["app", "util"], names: [Binding { name: "helper", alias: None }], glob: false }
            PyModule { module: ["app", "models"], alias: Some("m") }
            PyFrom { level: 0, module: ["app", "late"], names: [Binding { name: "thing", alias: None }], glob: false }
        "#]],
    );
    check_raw(
        "lib.rs",
        r#"
use crate::a::B;
mod c;
fn broken( {
    let x = ;
}
use crate::d::E;
"#,
        expect![[r#"
            RustUse { path: ["crate", "a", "B"], alias: None, glob: false, inline: [] }
            RustMod { name: "c", path_attr: None, inline: [] }
            RustUse { path: ["crate", "d", "E"], alias: None, glob: false, inline: [] }
        "#]],
    );
}

#[test]
fn python_absolute_relative_and_conditional_imports() {
    check(
        r#"
//- /app/__init__.py
//- /app/main.py
import app.util
import app.models as m
from app.services import billing, shipping as ship
from app.services.billing import Invoice, charge
from . import helpers
from .sub.deep import thing as t
from ..lib.tools import shared
from typing import TYPE_CHECKING
import os, json
if TYPE_CHECKING:
    from app.typing_only import Hint
def f():
    from app.lazy import late
$0
//- /app/util.py
//- /app/models/__init__.py
//- /app/services/billing.py
//- /app/services/shipping.py
//- /app/helpers.py
//- /app/sub/deep.py
//- /lib/tools.py
//- /app/typing_only.py
//- /app/lazy.py
"#,
        expect![[r#"
            app/helpers.py  modules: helpers
            app/lazy.py  names: late
            app/models/__init__.py  modules: m
            app/services/billing.py  names: Invoice, charge  modules: billing
            app/services/shipping.py  modules: ship
            app/sub/deep.py  names: thing as t
            app/typing_only.py  names: Hint
            app/util.py  modules: app
            lib/tools.py  names: shared
        "#]],
    );
}

#[test]
fn python_src_layout_namespace_packages_and_scripts() {
    check(
        r#"
//- /src/mypkg/__init__.py
from .core import Engine
//- /src/mypkg/core.py
class Engine: ...
//- /nspkg/inner/mod.py
//- /tests/conftest_helpers.py
//- /tests/test_core.py
from mypkg import Engine
from mypkg.core import run
import nspkg.inner.mod
from nspkg.inner import mod as m2
from nspkg import inner
import conftest_helpers
from mypkg import *
$0
"#,
        expect![[r#"
            nspkg/inner/mod.py  modules: m2, nspkg
            src/mypkg/__init__.py  names: Engine  glob
            src/mypkg/core.py  names: run
            tests/conftest_helpers.py  modules: conftest_helpers
        "#]],
    );
}

/// The fixture's root folder is `ws`; opened at a package, `import ws.x` means `./x.py`.
#[test]
fn python_workspace_opened_at_a_package() {
    check(
        r#"
//- /__init__.py
//- /util.py
//- /sub/mod.py
//- /sub/user.py
from ws.util import helper
from ws import util
import ws.sub.mod
from ws.missing import nothing
$0
"#,
        expect![[r#"
            sub/mod.py  modules: ws
            util.py  names: helper  modules: util
        "#]],
    );
}

#[test]
fn python_imports_that_leave_the_workspace_are_dropped() {
    check(
        r#"
//- /top.py
from ........ import x
from .. import secret
from ..outside import secret as s2
from . import sibling
import os.path
$0
//- /sibling.py
//- /outside/secret.py
//- /outside/outside.py
"#,
        expect![[r#"
            sibling.py  modules: sibling
        "#]],
    );
}

#[test]
fn rust_modules_use_trees_and_workspace_crates() {
    check(
        r#"
//- /Cargo.toml
[workspace]
members = ["app", "util-lib"]
//- /app/Cargo.toml
[package]
name = "app"
//- /app/src/lib.rs
mod plain;
mod dir;
#[path = "custom/place.rs"]
mod moved;
pub mod nested;
use crate::plain::Plain;
use self::dir::{DirThing, sub::{self, Deep as D}};
use util_lib::helper;
use std::collections::HashMap;
use serde::Serialize;
mod inline {
    mod inner_file;
    use super::nested::*;
}
#[cfg(test)]
mod tests {
    use super::*;
}
$0
//- /app/src/plain.rs
//- /app/src/dir/mod.rs
//- /app/src/dir/sub.rs
//- /app/src/custom/place.rs
//- /app/src/nested.rs
//- /app/src/inline/inner_file.rs
//- /util-lib/Cargo.toml
[package]
name = "util-lib"
//- /util-lib/src/lib.rs
pub fn helper() {}
"#,
        expect![[r#"
            app/src/custom/place.rs  modules: moved
            app/src/dir/mod.rs  names: DirThing  modules: dir
            app/src/dir/sub.rs  names: Deep as D  modules: sub
            app/src/inline/inner_file.rs  modules: inner_file
            app/src/nested.rs  modules: nested  glob
            app/src/plain.rs  names: Plain  modules: plain
            util-lib/src/lib.rs  names: helper
        "#]],
    );
}

#[test]
fn rust_paths_from_a_submodule() {
    check(
        r#"
//- /Cargo.toml
[package]
name = "app"
//- /src/main.rs
//- /src/plain.rs
//- /src/dir/mod.rs
//- /src/dir/sub.rs
mod child;
use super::DirThing;
use super::super::plain::Plain;
use crate::dir;
use child::Kid;
use plain::Other;
$0
//- /src/dir/sub/child.rs
"#,
        expect![[r#"
            src/dir/mod.rs  names: DirThing  modules: dir
            src/dir/sub/child.rs  names: Kid  modules: child
            src/plain.rs  names: Other, Plain
        "#]],
    );
}

#[test]
fn rust_integration_test_uses_its_own_library() {
    check(
        r#"
//- /Cargo.toml
[package]
name = "my-app"
//- /src/lib.rs
//- /src/engine.rs
//- /tests/common/mod.rs
//- /tests/it.rs
mod common;
use my_app::engine::Engine;
use my_app::Thing;
$0
"#,
        expect![[r#"
            src/engine.rs  names: Engine
            src/lib.rs  names: Thing
            tests/common/mod.rs  modules: common
        "#]],
    );
}

#[test]
fn rust_path_attributes_cannot_leave_the_workspace() {
    check(
        r#"
//- /Cargo.toml
[package]
name = "app"
//- /src/lib.rs
#[path = "/etc/passwd"]
mod passwd;
#[path = "../../outside/x.rs"]
mod escape;
#[path = "../../../../../../../../../../outside/x.rs"]
mod deep_escape;
#[path = "../inside.rs"]
mod fine;
mod linked;
$0
//- /inside.rs
//- /outside/x.rs
//- /src/linked.rs -> /outside/x.rs
"#,
        expect![[r#"
            inside.rs  modules: fine
        "#]],
    );
}
