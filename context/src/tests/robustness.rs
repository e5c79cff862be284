//! Bad inputs and cost bounds: files over the size limit analysed once per content and only up
//! to the limit, huge texts and long lines, symlink loops, cancellation and deadlines. (Binary,
//! non-UTF-8, ignored and outside-the-roots files: `index.rs`; imports and `#[path]` leaving the
//! workspace: `imports.rs`.)

use std::fs;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::fixture::{count, show_blocks, Fixture};
use crate::language::PARSED_BYTES;
use crate::{ContextConfig, Error, Stop, Stopped};

fn parsed_bytes() -> usize {
    PARSED_BYTES.with(|n| n.get())
}

/// A text of about `len` bytes: imports of `ok` first, then many functions, then an import of
/// `late` at the very end.
fn big_text(len: usize) -> String {
    let mut text = String::from("import ok\n\n");
    let mut i = 0;
    while text.len() < len {
        text.push_str(&format!("def f{i}(x):\n    return ok.OK + x * {i}\n\n"));
        i += 1;
    }
    text.push_str("import late\n");
    text
}

const TWO_FILES: &str = "//- /ok.py\nOK = 1\n//- /late.py\nLATE = 1\n//- /main.py\n$0\n";

#[test]
fn a_file_over_the_limit_is_parsed_once_per_content_and_only_up_to_the_limit() {
    let fixture = Fixture::new(TWO_FILES);
    let limit = 4096;
    let index = fixture.index(ContextConfig {
        max_file_bytes: limit,
        ..ContextConfig::default()
    });
    index.index_all(&mut |_, _| {});
    let path = fixture.path("/main.py");
    let text = big_text(64 << 10);
    assert!(matches!(
        index.update_file(&path, &text),
        Err(Error::TooLarge { .. })
    ));
    let before = parsed_bytes();
    let first = index.context_for(&path, &text, &count);
    let parsed_once = parsed_bytes() - before;
    for _ in 0..5 {
        assert_eq!(index.context_for(&path, &text, &count), first);
    }
    let parsed = parsed_bytes() - before;
    // The prefix of the huge text, and the small imported file.
    assert!(
        parsed_once <= limit as usize + 64,
        "parsed {parsed_once} bytes of a huge text"
    );
    assert_eq!(parsed, parsed_once, "the same text was parsed again");
    // Imports past the limit are not seen; those at the top are.
    assert_eq!(show_blocks(&first), "--- ok.py\nOK = 1\n");
    // A new version is analysed again, once.
    let edited = text.replacen("import ok", "import ok, late", 1);
    let blocks = index.context_for(&path, &edited, &count);
    assert!(show_blocks(&blocks).contains("late.py"));
    let after_edit = parsed_bytes();
    index.context_for(&path, &edited, &count);
    assert_eq!(parsed_bytes(), after_edit);
}

#[test]
fn a_twenty_megabyte_document_and_a_megabyte_line() {
    let fixture = Fixture::new(TWO_FILES);
    let index = fixture.index(ContextConfig::default());
    let path = fixture.path("/main.py");
    let mut huge = big_text(20 << 20);
    assert!(index.update_file(&path, &huge).is_err());
    let before = parsed_bytes();
    let blocks = index.context_for(&path, &huge, &count);
    assert_eq!(show_blocks(&blocks), "--- ok.py\nOK = 1\n");
    assert!(parsed_bytes() - before <= 1 << 20);
    let defs = index.definitions_for(&path, &huge, "ok.OK", &count, 100);
    assert_eq!(show_blocks(&defs), "--- ok.py\nOK = 1\n");

    // One line of a megabyte (multi-byte characters, no line break) before the imports.
    huge.clear();
    huge.push_str("s = '");
    while huge.len() < 1 << 20 {
        huge.push_str("é😀x");
    }
    huge.push_str("'\nimport ok\n");
    let blocks = index.context_for(&path, &huge, &count);
    assert!(blocks.len() <= 1);
    // An imported file with a 1 MB line (under a raised limit) is outlined, not sent whole.
    fs::write(
        fixture.path("/late.py"),
        format!("LATE = '{}'\n", "y".repeat(1 << 20)),
    )
    .unwrap();
    let index = fixture.index(ContextConfig {
        max_file_bytes: 4 << 20,
        budget_tokens: 2000,
        ..ContextConfig::default()
    });
    // Its one line is longer than `MAX_PARSED_LINE`, so it parses as a comment: no outline
    // entry, and never the whole file.
    let blocks = index.context_for(&path, "import late\n", &count);
    assert!(blocks.len() <= 1);
    assert!(
        blocks.iter().all(|b| b.text.len() < 4096),
        "{:?} bytes",
        blocks.iter().map(|b| b.text.len()).collect::<Vec<_>>()
    );
}

#[test]
fn symlink_loops_end_the_walk() {
    let fixture = Fixture::new(
        "//- /main.py\nimport sub.m\n$0\n//- /sub/m.py\nM = 1\n//- /sub/up -> /\n//- /a.py -> /b.py\n//- /b.py -> /a.py\n//- /sub/self -> /sub/self\n",
    );
    let (path, text) = fixture.current();
    let index = fixture.index(ContextConfig::default());
    let lazy = index.context_for(path, text, &count);
    let stats = index.index_all(&mut |_, _| {});
    assert_eq!(stats.files, 2);
    assert_eq!(stats.symlinks_skipped, 4);
    assert_eq!(index.context_for(path, text, &count), lazy);
    assert_eq!(show_blocks(&lazy), "--- sub/m.py\nM = 1\n");
    let looped = fixture.path("/a.py");
    let _ = index.update_file(&looped, "import b\n");
    assert!(index.context_for(&looped, "import b\n", &count).is_empty());
    assert!(index.refresh_path(&fixture.path("/sub/self")).is_err());
}

#[test]
fn queries_stop_when_cancelled_or_past_their_deadline() {
    let fixture = Fixture::new(
        "//- /main.py\nimport a, b\nuse = a.A + b.B\n$0\n//- /a.py\nA = 1\n//- /b.py\nB = 2\n",
    );
    let (path, text) = fixture.current();
    let index = fixture.index(ContextConfig::default());
    let cancelled = AtomicBool::new(true);
    assert_eq!(
        index.context_for_until(path, text, &count, Stop::flag(&cancelled)),
        Err(Stopped::Cancelled)
    );
    let past = Instant::now() - Duration::from_millis(1);
    assert_eq!(
        index.context_for_until(path, text, &count, Stop::never().until(past)),
        Err(Stopped::Deadline)
    );
    assert_eq!(
        index.definitions_for_until(path, text, "a.A", &count, 100, Stop::flag(&cancelled)),
        Err(Stopped::Cancelled)
    );
    // Superseded midway: the check turns true after a few looks.
    for after in 0..6 {
        let looks = AtomicUsize::new(0);
        let check = || looks.fetch_add(1, Ordering::Relaxed) >= after;
        let result = index.context_for_until(path, text, &count, Stop::check(&check));
        assert_eq!(result, Err(Stopped::Cancelled), "after {after} looks");
    }
    // Not stopped: the same answer as the plain query.
    let running = AtomicBool::new(false);
    let future = Instant::now() + Duration::from_secs(60);
    let full = index
        .context_for_until(path, text, &count, Stop::flag(&running).until(future))
        .unwrap();
    assert_eq!(full, index.context_for(path, text, &count));
    assert_eq!(full.len(), 2);
}

#[test]
fn a_cancelled_parse_leaves_the_parser_usable() {
    use crate::language::Language;
    let text = big_text(256 << 10);
    assert!(Language::Python.parse_until(&text, &|| true).is_none());
    let tree = Language::Python.parse("def f():\n    pass\n").unwrap();
    assert!(!tree.root_node().has_error());
    assert_eq!(tree.root_node().end_byte(), 18);
}
