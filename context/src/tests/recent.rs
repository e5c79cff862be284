//! The second context source, recently edited and open files: the recency list's bounds,
//! dedupe with the import graph, the shared budget, deterministic order, the current and
//! closed documents left out, files outside the workspace never recorded, and stability
//! while typing in the current document.

use std::path::{Path, PathBuf};

use expect_test::expect;

use super::fixture::{count, show_blocks, typing_builds, Fixture};
use crate::recent::MAX_DOCS;
use crate::render::block_text;
use crate::{ContextBlock, ContextConfig, Focus, Index};

fn config(budget_tokens: usize) -> ContextConfig {
    ContextConfig {
        budget_tokens,
        ..ContextConfig::default()
    }
}

/// A workspace where `main.py` imports `util.py`; `notes.py` and `shapes.py` are imported by
/// nobody.
const SPEC: &str = r#"
//- /util.py
def clamp(x, lo, hi):
    return max(lo, min(x, hi))
//- /shapes.py
def area(w, h):
    return w * h


def perimeter(w, h):
    return 2 * (w + h)


def diagonal(w, h):
    return (w * w + h * h) ** 0.5
//- /notes.py
def remember(text):
    return text.strip()


def forget(text):
    return ""
//- /main.py
from util import clamp


def run(w, h):
    size = clamp(w, 0, 10)
    $0
"#;

/// `path`'s disk text with `insert` put in before the first occurrence of `before`.
fn edited(path: &Path, before: &str, insert: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    let at = text.find(before).unwrap();
    format!("{}{insert}{}", &text[..at], &text[at..])
}

/// Opens `path` (its disk text) and edits it before `before`.
fn open_and_edit(index: &Index, path: &Path, before: &str, insert: &str) {
    index
        .update_file(path, &std::fs::read_to_string(path).unwrap())
        .unwrap();
    index
        .update_file(path, &edited(path, before, insert))
        .unwrap();
}

/// Opens shapes.py and edits inside `perimeter`.
fn edit_perimeter(index: &Index, fixture: &Fixture) {
    let shapes = fixture.path("/shapes.py");
    open_and_edit(index, &shapes, "    return 2 * (w + h)", "    w = abs(w)\n");
}

fn context(index: &Index, fixture: &Fixture) -> Vec<ContextBlock> {
    let (path, text) = fixture.current();
    index.context_for(path, text, &count)
}

fn paths(blocks: &[ContextBlock]) -> Vec<&str> {
    blocks.iter().map(|b| b.path.as_str()).collect()
}

#[test]
fn the_definition_around_an_edit_in_another_file_follows_the_imported_files() {
    let fixture = Fixture::new(SPEC);
    let index = fixture.index(config(1024));
    edit_perimeter(&index, &fixture);
    // Only the edited function: the others are neither edited nor used in `main.py`.
    expect![[r#"
        --- util.py
        def clamp(x, lo, hi):
            return max(lo, min(x, hi))
        --- shapes.py
        def perimeter(w, h):
            w = abs(w)
            return 2 * (w + h)
    "#]]
    .assert_eq(&show_blocks(&context(&index, &fixture)));
}

#[test]
fn the_recency_list_is_bounded_and_forgets_the_least_recent() {
    let fixture = Fixture::new(SPEC);
    let index = fixture.index(config(1024));
    let files: Vec<PathBuf> = (0..MAX_DOCS + 4)
        .map(|i| {
            let path = fixture.path(&format!("/many/m{i:02}.py"));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, format!("def f{i}():\n    return {i}\n")).unwrap();
            index
                .update_file(&path, &format!("def f{i}():\n    return {i} + 1\n"))
                .unwrap();
            path
        })
        .collect();
    let list = index.recent.lock().unwrap().list();
    assert_eq!(list.len(), MAX_DOCS);
    let kept: Vec<&PathBuf> = list.iter().map(|(p, _)| p).collect();
    let expected: Vec<PathBuf> = files[4..]
        .iter()
        .map(|p| std::fs::canonicalize(p).unwrap())
        .collect();
    assert_eq!(kept, expected.iter().collect::<Vec<_>>());
}

#[test]
fn an_imported_file_is_not_repeated_as_a_recent_one() {
    let fixture = Fixture::new(SPEC);
    let index = fixture.index(config(1024));
    let util = fixture.path("/util.py");
    open_and_edit(&index, &util, "    return", "    lo = lo or 0\n");
    let blocks = context(&index, &fixture);
    assert_eq!(paths(&blocks), ["util.py"], "{}", show_blocks(&blocks));
    // The import block is the editor's text.
    assert!(blocks[0].text.contains("lo = lo or 0"));
}

#[test]
fn the_current_document_and_closed_ones_are_left_out() {
    let fixture = Fixture::new(SPEC);
    let index = fixture.index(config(1024));
    let (main, text) = fixture.current();
    let notes = fixture.path("/notes.py");
    open_and_edit(&index, &notes, "    return \"\"", "    text = None\n");
    index.update_file(main, text).unwrap();
    index
        .update_file(main, &format!("{text}def extra():\n    pass\n"))
        .unwrap();
    let blocks = context(&index, &fixture);
    assert_eq!(paths(&blocks), ["util.py", "notes.py"]);
    index.close_file(&notes);
    assert_eq!(paths(&context(&index, &fixture)), ["util.py"]);
}

#[test]
fn files_outside_the_workspace_are_never_recorded() {
    let fixture = Fixture::new(SPEC);
    let index = fixture.index(config(1024));
    let outside = fixture.path("/outside/secret.py");
    std::fs::write(&outside, "def secret():\n    return 1\n").unwrap();
    assert!(index
        .update_file(&outside, "def secret():\n    return 2\n")
        .is_err());
    assert!(index.recent.lock().unwrap().list().is_empty());
    assert_eq!(paths(&context(&index, &fixture)), ["util.py"]);
}

#[test]
fn blocks_are_least_recent_first_and_the_same_for_the_same_edits() {
    let fixture = Fixture::new(SPEC);
    let index = fixture.index(config(1024));
    let (shapes, notes) = (fixture.path("/shapes.py"), fixture.path("/notes.py"));
    open_and_edit(&index, &shapes, "    return w * h", "    h = abs(h)\n");
    open_and_edit(&index, &notes, "    return text", "    text = str(text)\n");
    let first = context(&index, &fixture);
    assert_eq!(paths(&first), ["util.py", "shapes.py", "notes.py"]);
    assert_eq!(first, context(&index, &fixture));
    // Editing shapes.py again makes it the most recent: it moves last, notes.py keeps its bytes.
    let again = edited(
        &shapes,
        "    return w * h",
        "    h = abs(h)\n    w = abs(w)\n",
    );
    index.update_file(&shapes, &again).unwrap();
    let second = context(&index, &fixture);
    assert_eq!(paths(&second), ["util.py", "notes.py", "shapes.py"]);
    assert_eq!(first[2], second[1]);
}

#[test]
fn recent_blocks_share_the_budget_and_names_near_the_cursor_rank_first() {
    let fixture = Fixture::new(SPEC);
    let (main, text) = fixture.current();
    let cursor = fixture.current.as_ref().unwrap().2;
    // The current function uses `diagonal`, which nothing imports; shapes.py is only open.
    let text = text.replace(
        "    size = clamp",
        "    d = diagonal(w, h)\n    size = clamp",
    );
    let cursor = cursor + "    d = diagonal(w, h)\n".len();
    let focus = Focus {
        cursor,
        window_start: 0,
    };
    let notes = fixture.path("/notes.py");
    let shapes = fixture.path("/shapes.py");
    for budget in [20, 40, 60, 1024] {
        let index = fixture.index(config(budget));
        index
            .update_file(&shapes, &std::fs::read_to_string(&shapes).unwrap())
            .unwrap();
        open_and_edit(&index, &notes, "    return \"\"", "    text = None\n");
        for blocks in [
            index.context_for(main, &text, &count),
            index.context_at(main, &text, focus, &count),
        ] {
            let spent: usize = blocks
                .iter()
                .map(|b| count(&block_text(&b.path, &b.text)))
                .sum();
            assert!(
                spent <= budget,
                "{spent} > {budget}: {}",
                show_blocks(&blocks)
            );
            if budget == 40 {
                // Room for one more block: the definition named near the cursor wins over
                // the more recent edit.
                assert_eq!(paths(&blocks), ["util.py", "shapes.py"]);
                assert!(blocks[1].text.starts_with("def diagonal"));
            }
            if budget == 1024 {
                assert_eq!(paths(&blocks), ["util.py", "shapes.py", "notes.py"]);
            }
        }
    }
}

#[test]
fn typing_in_the_current_document_keeps_the_recent_blocks() {
    let fixture = Fixture::new(SPEC);
    let (path, text, cursor) = fixture.current.clone().unwrap();
    let index = fixture.index(config(1024));
    edit_perimeter(&index, &fixture);
    let typed = "total = perimeter(w, h) + size";
    let builds = typing_builds(&index, &path, &text, cursor, typed, 0);
    for (n, blocks) in builds.iter().enumerate() {
        assert!(paths(blocks).contains(&"shapes.py"));
        assert_eq!(&builds[0], blocks, "after typing {:?}", &typed[..n]);
    }
}

#[test]
fn the_setting_turns_the_source_off() {
    let fixture = Fixture::new(SPEC);
    let index = fixture.index(ContextConfig {
        recent_files: false,
        ..config(1024)
    });
    edit_perimeter(&index, &fixture);
    assert_eq!(paths(&context(&index, &fixture)), ["util.py"]);
}

#[test]
fn a_first_change_is_found_against_the_disk_only_for_a_file_the_index_knows() {
    let fixture = Fixture::new(SPEC);
    let shapes = fixture.path("/shapes.py");
    let text = edited(&shapes, "    return 2 * (w + h)", "    w = abs(w)\n");
    // Not walked, never read: the editor's text is all there is, with no edit in it.
    let index = fixture.index(config(1024));
    index.update_file(&shapes, &text).unwrap();
    assert_eq!(paths(&context(&index, &fixture)), ["util.py"]);
    // Walked: the change against the indexed file is an edit.
    let index = fixture.index(config(1024));
    index.index_all(&mut |_, _| {});
    index.update_file(&shapes, &text).unwrap();
    let blocks = context(&index, &fixture);
    assert_eq!(paths(&blocks), ["util.py", "shapes.py"]);
    assert!(blocks[1].text.starts_with("def perimeter"));
}
