//! `ghostline complete FILE:LINE:COL` gives the answer an editor gets at that place: both go
//! through the same pipeline (window, plan, line-end rule, token healing, shaping). Runs with
//! the fake backend (`--backend fake` / `{"backend": "fake"}`), so no model is needed; the
//! editor side has repository context off, as the command line has none.
//!
//! It does not compare real-model generations (those may differ across batch splits).

use std::process::Command;

use ghostline_tests::{binary, editor_capabilities, file_uri, Server, Spawn};
use serde_json::json;

/// Cursors (0-based line, character) in a small Python file: a blank line in a body, the end
/// of a complete line, after a word, and before text right of the cursor.
const DOC: &str = "def total(xs):\n    s = 0\n    \n    for x in xs:\n        s += x\n    return s\n\n\nprint(tot)\n";
const CURSORS: [(u32, u32); 4] = [(2, 4), (1, 9), (8, 9), (8, 6)];

#[test]
fn the_command_line_answers_what_the_editor_gets() {
    let dir = std::env::temp_dir().join(format!("ghostline-cli-editor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("total.py");
    std::fs::write(&path, DOC).unwrap();

    let settings = json!({"backend": "fake", "repoContext": {"enabled": false}});
    let mut server = Server::spawn(Spawn::default().settings(settings.clone()));
    server.initialize(editor_capabilities(), settings);
    server.wait_status(0, "ready", ghostline_tests::TIMEOUT);
    let uri = file_uri(&path.to_string_lossy());
    server.open(&uri, "python", DOC);

    let mut answered = 0;
    for (line, character) in CURSORS {
        let items = server.inline(&uri, line, character, true);
        let editor = items
            .first()
            .and_then(|i| i["insertText"].as_str())
            .unwrap_or("")
            .to_owned();
        let out = Command::new(binary())
            .args(["complete", "--backend", "fake"])
            .arg(format!("{}:{}:{}", path.display(), line + 1, character + 1))
            .output()
            .expect("run ghostline complete");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let cli = stdout.strip_suffix('\n').unwrap_or(&stdout);
        assert_eq!(cli, editor, "at {line}:{character}");
        answered += !editor.is_empty() as usize;
    }
    assert!(
        answered >= 2,
        "the fake backend answered at {answered} of the cursors"
    );
    let _ = server.shutdown();
    std::fs::remove_dir_all(&dir).ok();
}
