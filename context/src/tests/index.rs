//! The index: query files compile, the walk skips ignored, binary, huge and symlinked files,
//! nothing outside the roots is read, and `Index` can be shared between threads.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use expect_test::{expect, Expect};

use super::fixture::{count, show_blocks, Fixture};
use crate::language::{Language, QueryKind};
use crate::{ContextConfig, Index};

#[test]
fn every_query_file_compiles_against_its_grammar() {
    let grammars = Path::new(env!("CARGO_MANIFEST_DIR")).join("../grammars");
    let mut checked = Vec::new();
    for lang_dir in fs::read_dir(&grammars).unwrap() {
        let lang_dir = lang_dir.unwrap().path();
        let name = lang_dir.file_name().unwrap().to_str().unwrap().to_string();
        let lang = Language::ALL
            .into_iter()
            .find(|l| l.name() == name)
            .unwrap_or_else(|| panic!("grammars/{name}: no such language in the crate"));
        for file in fs::read_dir(&lang_dir).unwrap() {
            let file = file.unwrap().path();
            if file.extension().is_some_and(|e| e == "scm") {
                let source = fs::read_to_string(&file).unwrap();
                if let Err(err) = tree_sitter::Query::new(&lang.grammar(), &source) {
                    panic!("{}: {err}", file.display());
                }
                checked.push(format!(
                    "{name}/{}",
                    file.file_name().unwrap().to_str().unwrap()
                ));
            }
        }
        // The embedded copies are the files on disk, and they compile.
        for kind in [QueryKind::Imports, QueryKind::Outline] {
            assert!(lang.query(kind).is_some(), "{name}: {kind:?}");
        }
    }
    checked.sort();
    expect![[
        r#"["python/imports.scm", "python/outline.scm", "rust/imports.scm", "rust/outline.scm"]"#
    ]]
    .assert_eq(&format!("{checked:?}"));
}

#[test]
fn index_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Index>();
}

/// Indexes the fixture with a 200-byte file limit and shows the stats and the context.
fn check_walk(spec: &str, extra: impl FnOnce(&Fixture), expect: Expect) {
    let fixture = Fixture::new(spec);
    extra(&fixture);
    let (path, text) = fixture.current();
    let index = fixture.index(ContextConfig {
        max_file_bytes: 200,
        ..ContextConfig::default()
    });
    let lazy = index.context_for(path, text, &count);
    let mut calls = Vec::new();
    let stats = index.index_all(&mut |done, total| calls.push((done, total)));
    assert_eq!(
        calls.last(),
        Some(&(
            stats.files + stats.too_large + stats.binary + stats.not_utf8 + stats.errors,
            calls[0].1
        ))
    );
    let walked = index.context_for(path, text, &count);
    let mut out = format!("{stats:?}\n");
    out.push_str(&show_blocks(&walked));
    if lazy != walked {
        out.push_str("=== before the walk\n");
        out.push_str(&show_blocks(&lazy));
    }
    expect.assert_eq(&out);
}

#[test]
fn walk_skips_ignored_binary_huge_and_symlinked_files() {
    check_walk(
        r#"
//- /.gitignore
build/
generated.py
//- /main.py
import ok, generated, binary, huge, linked_out, loop, notutf8
from build import artifact
from .hidden import x
$0
//- /ok.py
OK = 1
//- /generated.py
GEN = 1
//- /build/artifact.py
ART = 1
//- /huge.py
HUGE = """...................................................................................................................................................................................................................................."""
//- /outside/linked_out.py
SECRET = 1
//- /linked_out.py -> /outside/linked_out.py
//- /loop -> /
//- /.hidden/x.py
"#,
        |fixture| {
            fs::write(fixture.path("/notutf8.py"), b"X = '\xff'\n").unwrap();
            fs::write(fixture.path("/binary.py"), b"B = 1\0\n").unwrap();
        },
        expect![[r#"
            IndexStats { files: 2, unchanged: 1, manifests: 0, symlinks_skipped: 2, too_large: 1, binary: 1, not_utf8: 1, errors: 0 }
            --- ok.py
            OK = 1
        "#]],
    );
}

#[test]
fn symlinks_inside_the_workspace_resolve_to_their_target() {
    check_walk(
        r#"
//- /main.py
import alias
$0
//- /real/target.py
T = 1
//- /alias.py -> /real/target.py
"#,
        |_| {},
        expect![[r#"
            IndexStats { files: 2, unchanged: 1, manifests: 0, symlinks_skipped: 1, too_large: 0, binary: 0, not_utf8: 0, errors: 0 }
            --- real/target.py
            T = 1
        "#]],
    );
}

#[test]
fn nothing_outside_the_roots_is_read() {
    let fixture = Fixture::new(
        r#"
//- /main.py
from .. import secret
$0
//- /outside/secret.py
SECRET = 1
"#,
    );
    let index = fixture.index(ContextConfig::default());
    let secret = fixture.path("/outside/secret.py");
    assert!(index.update_file(&secret, "x = 1").is_err());
    assert!(index.refresh_path(&secret).is_err());
    assert!(index.refresh_path(Path::new("relative.py")).is_err());
    index.remove_file(&secret);
    // The current file itself outside the roots: no context.
    assert!(index
        .context_for(&secret, "import main\n", &count)
        .is_empty());
    let (path, text) = fixture.current();
    assert!(index.context_for(path, text, &count).is_empty());
    index.index_all(&mut |_, _| {});
    assert_eq!(index.len(), 1);
}

#[test]
fn missing_roots_and_odd_paths_do_not_panic() {
    let index = Index::new(
        vec![PathBuf::from("/definitely/not/here")],
        ContextConfig::default(),
    );
    assert!(index.roots().is_empty());
    let stats = index.index_all(&mut |_, _| {});
    assert_eq!(stats.files, 0);
    for path in ["", "/", "..", "/dev/null", "x.py", "/dev/zero.py"] {
        assert!(index
            .context_for(Path::new(path), "import os\n", &count)
            .is_empty());
        let _ = index.refresh_path(Path::new(path));
        index.remove_file(Path::new(path));
    }
}

#[test]
fn queries_run_while_indexing() {
    let mut spec = String::from("//- /main.py\nimport m0\n$0\n");
    for i in 0..200 {
        spec.push_str(&format!("//- /m{i}.py\nimport m{}\nX{i} = {i}\n", i + 1));
    }
    let fixture = Fixture::new(&spec);
    let (path, text) = fixture.current();
    let index = Arc::new(fixture.index(ContextConfig::default()));
    let background = {
        let index = index.clone();
        std::thread::spawn(move || index.index_all(&mut |_, _| {}))
    };
    let during = index.context_for(path, text, &count);
    let stats = background.join().unwrap();
    assert_eq!(stats.files, 201);
    assert_eq!(index.context_for(path, text, &count), during);
    expect![[r#"
        --- m1.py
        import m2
        X1 = 1
        --- m0.py
        import m1
        X0 = 0
    "#]]
    .assert_eq(&show_blocks(&during));
    // A second walk finds nothing changed.
    let again = index.index_all(&mut |_, _| {});
    assert_eq!((again.files, again.unchanged), (201, 201));
}

#[test]
fn roots_come_and_go_and_each_root_walks_on_its_own() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    let (ra, rb) = (
        a.path().canonicalize().unwrap(),
        b.path().canonicalize().unwrap(),
    );
    fs::write(ra.join("x.py"), "def x():\n    pass\n").unwrap();
    fs::write(rb.join("y.py"), "def y():\n    pass\n").unwrap();
    let index = Index::new(vec![ra.clone()], ContextConfig::default());
    assert_eq!(
        index
            .index_root(&ra, crate::Stop::never(), &mut |_, _| {})
            .unwrap()
            .files,
        1
    );
    assert_eq!(index.add_root(b.path()), Some(rb.clone()));
    assert_eq!(index.add_root(&rb), None, "already a root");
    // Walking the new root reads it only, and keeps what the other root has.
    let stats = index
        .index_root(&rb, crate::Stop::never(), &mut |_, _| {})
        .unwrap();
    assert_eq!(stats.files, 1);
    let mut both = vec![ra.join("x.py"), rb.join("y.py")];
    both.sort();
    assert_eq!(index.files(), both);
    // A stopped walk changes nothing it did not read.
    let stop = std::sync::atomic::AtomicBool::new(true);
    fs::write(ra.join("z.py"), "def z():\n    pass\n").unwrap();
    assert!(index
        .index_root(&ra, crate::Stop::flag(&stop), &mut |_, _| {})
        .is_err());
    assert_eq!(index.len(), 2);
    // Removing a root forgets its files, editor buffers included.
    index
        .update_file(&ra.join("w.py"), "def w():\n    pass\n")
        .unwrap();
    assert_eq!(index.remove_root(&ra), Some(ra.clone()));
    assert_eq!(index.remove_root(&ra), None);
    assert_eq!(index.files(), vec![rb.join("y.py")]);
    assert_eq!(index.roots(), vec![rb]);
}
