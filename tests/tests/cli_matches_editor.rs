//! `ghostline complete FILE:LINE:COL` gives the answer an editor gets at that place: both go
//! through the same pipeline (window, plan, line-end rule, token healing, repository context,
//! shaping). Runs with the fake backend (`--backend fake` / `{"backend": "fake"}`), so no
//! model is needed; the fake logs the prompt it was asked (at debug level), which the second
//! test compares across the two.
//!
//! It does not compare real-model generations (those may differ across batch splits).

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

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
    server.initialize(editor_capabilities(), settings.clone());
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
        // The editor's settings, repository context off, on both sides.
        let out = Command::new(binary())
            .args(["complete", "--backend", "fake"])
            .args(["--settings", &settings.to_string()])
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

/// The prompt in the fake backend's debug line of `log` (`None` when it logged none).
fn fake_prompt(log: &str) -> Option<String> {
    log.lines().rev().find_map(|l| {
        l.split_once("fake backend prompt prompt=")
            .map(|(_, p)| p.to_owned())
    })
}

/// `ghostline complete --backend fake` at a 0-based place, with the fake's prompt logged.
fn cli(path: &Path, line: u32, character: u32, extra: &[&str]) -> Output {
    let out = Command::new(binary())
        .args(["complete", "--backend", "fake"])
        .args(["--log-level", "ghostline_inference=debug"])
        .args(extra)
        .arg(format!("{}:{}:{}", path.display(), line + 1, character + 1))
        .output()
        .expect("run ghostline complete");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A repository (a folder holding `.git`) whose `main.py` imports `pkg/geometry.py`: the
/// command line finds the repository above the file, walks it as the server does, and asks
/// the model the editor's prompt, with the imported file as repository context.
#[test]
fn the_command_line_gets_the_editors_repository_context() {
    let dir = std::env::temp_dir().join(format!("ghostline-cli-context-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join(".git")).unwrap();
    std::fs::create_dir_all(dir.join("pkg")).unwrap();
    std::fs::write(
        dir.join("pkg/geometry.py"),
        "def area(width, height):\n    \"\"\"The area of a rectangle.\"\"\"\n    return width * height\n",
    )
    .unwrap();
    let text = "from pkg.geometry import area\n\n\ndef report(w, h):\n    \n    return w\n";
    let path = dir.join("main.py");
    std::fs::write(&path, text).unwrap();
    let (line, character) = (4, 4);

    // No time budget can cut the context short under load.
    let settings = json!({"backend": "fake", "invokedTimeBudgetMs": 600000});
    let mut server = Server::spawn(Spawn {
        args: vec!["--log-level".into(), "ghostline_inference=debug".into()],
        ..Spawn::default().settings(settings.clone())
    });
    server.initialize_in(&[&dir], editor_capabilities(), settings);
    server.wait_status(0, "ready", ghostline_tests::TIMEOUT);
    // The walk has ended (an editor's request may come before; this one must not race it).
    let t = Instant::now();
    loop {
        let state = server
            .request(
                "workspace/executeCommand",
                json!({"command": "ghostline.debugState", "arguments": []}),
            )
            .ok();
        if state["indexWalks"].as_u64() >= Some(1) && state["indexWalkRunning"] == false {
            break;
        }
        assert!(t.elapsed() < ghostline_tests::TIMEOUT, "{state}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let uri = file_uri(&path.to_string_lossy());
    server.open(&uri, "python", text);
    let items = server.inline(&uri, line, character, true);
    let editor = items
        .first()
        .and_then(|i| i["insertText"].as_str())
        .unwrap_or("")
        .to_owned();
    assert!(
        server.wait_stderr(Duration::from_secs(10), |l| fake_prompt(l).is_some()),
        "{}",
        server.stderr()
    );
    let editor_prompt = fake_prompt(&server.stderr()).unwrap();
    let _ = server.shutdown();

    let out = cli(&path, line, character, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let cli_prompt = fake_prompt(&stderr).unwrap_or_else(|| panic!("no prompt logged: {stderr}"));
    // The context reached the prompt: the imported file, under its workspace path.
    assert!(
        cli_prompt.contains("<|file_sep|>pkg/geometry.py")
            && cli_prompt.contains("return width * height"),
        "{cli_prompt}"
    );
    assert_eq!(cli_prompt, editor_prompt);
    assert_eq!(stdout.strip_suffix('\n').unwrap_or(&stdout), editor);

    // The same settings turn it off on both sides.
    let out = cli(
        &path,
        line,
        character,
        &["--settings", r#"{"repoContext": {"enabled": false}}"#],
    );
    let off = fake_prompt(&String::from_utf8_lossy(&out.stderr)).unwrap();
    assert!(!off.contains("file_sep"), "{off}");
    // An explicit workspace (here: the package folder) changes what the context can reach.
    let out = cli(
        &path,
        line,
        character,
        &["--workspace", &dir.join("pkg").to_string_lossy()],
    );
    let outside = fake_prompt(&String::from_utf8_lossy(&out.stderr)).unwrap();
    assert!(!outside.contains("pkg/geometry.py"), "{outside}");
    std::fs::remove_dir_all(&dir).ok();
}
