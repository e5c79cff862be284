//! Supervision of the session's background work and lifecycle edge cases, driven over stdio
//! with the fake backend (no model): a repeated `initialized` starts nothing; workspace walks
//! are per root (an empty folder change walks nothing, an added folder walks only itself, a
//! removed folder leaves the index, a newer walk of a root supersedes the older one); the
//! completion budget counts from the request's arrival, context building included; and after
//! `didClose` the index holds the file's disk text, not the closed buffer's.
//!
//! What the client can observe: `ghostline.debugState` (walk counts per root, the index's
//! roots and files), `ghostline/status` notifications, and the server's log on stderr.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use ghostline_tests::{editor_capabilities, file_uri, uri_of, Server, Spawn};
use serde_json::{json, Value};

const LONG: Duration = Duration::from_secs(60);

/// The tests of this file run one at a time: walks keep the CPU busy, and one measures time.
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn spawn_in(folders: &[&Path], options: Value, args: &[&str]) -> Server {
    let spawn = Spawn {
        args: args.iter().map(|a| a.to_string()).collect(),
        ..Spawn::default()
    };
    let mut s = Server::spawn(spawn.settings(json!({})));
    s.initialize_in(folders, editor_capabilities(), options);
    s.wait_status(0, "ready", Duration::from_secs(30));
    s
}

fn debug_state(s: &mut Server, files: bool) -> Value {
    let args = if files {
        json!([{"files": true}])
    } else {
        json!([])
    };
    s.request(
        "workspace/executeCommand",
        json!({"command": "ghostline.debugState", "arguments": args}),
    )
    .ok()
}

/// Waits until no walk runs; the state then.
fn walks_settled(s: &mut Server) -> Value {
    let t = Instant::now();
    loop {
        let state = debug_state(s, true);
        if state["indexWalkRunning"] == false {
            return state;
        }
        assert!(t.elapsed() < LONG, "walks still running: {state}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn walks_of(state: &Value, root: &Path) -> u64 {
    state["indexWalksByRoot"][root.to_string_lossy().as_ref()]
        .as_u64()
        .unwrap_or(0)
}

fn files_under(state: &Value, root: &Path) -> Vec<String> {
    state["indexFiles"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .filter(|f| Path::new(f).starts_with(root))
        .map(str::to_owned)
        .collect()
}

fn folder(path: &Path) -> Value {
    json!({"uri": uri_of(path), "name": path.file_name().unwrap().to_string_lossy()})
}

/// A canonical temporary folder with `n` small Python files.
fn project(n: usize, tag: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    for i in 0..n {
        let body = format!("import os\n\ndef {tag}_{i}(a):\n    return os.path.join(a, '{i}')\n");
        std::fs::write(root.join(format!("{tag}{i}.py")), body).unwrap();
    }
    (dir, root)
}

#[test]
fn a_repeated_initialized_is_ignored() {
    let _serial = serial();
    let (_dir, root) = project(20, "m");
    let mut s = spawn_in(
        &[&root],
        json!({"backend": "fake", "fake": {"loadDelayMs": 100}}),
        &[],
    );
    walks_settled(&mut s);
    let from = s.message_count();
    for _ in 0..3 {
        s.notify("initialized", json!({}));
    }
    assert!(
        s.wait_stderr(Duration::from_secs(10), |log| log
            .matches("repeated initialized notification ignored")
            .count()
            == 3),
        "each repeat is logged:\n{}",
        s.stderr()
    );
    // Time for a second load or walk to show if one had started.
    std::thread::sleep(Duration::from_millis(800));
    let state = walks_settled(&mut s);
    assert_eq!(state["indexWalks"], 1, "{state}");
    let loads = s.stderr().matches("loading model").count();
    assert_eq!(loads, 1, "one model load:\n{}", s.stderr());
    let loading_after = s
        .messages()
        .iter()
        .skip(from)
        .filter(|m| m["method"] == "ghostline/status" && m["params"]["state"] == "loading")
        .count();
    assert_eq!(loading_after, 0, "no status `loading` after a repeat");
    assert_eq!(s.shutdown().code(), Some(0));
}

#[test]
fn workspace_folders_are_walked_on_their_own() {
    let _serial = serial();
    let (_a, a) = project(30, "a");
    let (_b, b) = project(20, "b");
    let mut s = spawn_in(&[&a], json!({"backend": "fake"}), &[]);
    let state = walks_settled(&mut s);
    assert_eq!(walks_of(&state, &a), 1, "{state}");
    assert_eq!(files_under(&state, &a).len(), 30, "{state}");

    // A change that adds and removes nothing is a no-op.
    for _ in 0..5 {
        s.notify(
            "workspace/didChangeWorkspaceFolders",
            json!({"event": {"added": [], "removed": []}}),
        );
    }
    std::thread::sleep(Duration::from_millis(500));
    let state = walks_settled(&mut s);
    assert_eq!(state["indexWalks"], 1, "an empty change walked: {state}");

    // Adding a folder walks that folder only.
    s.notify(
        "workspace/didChangeWorkspaceFolders",
        json!({"event": {"added": [folder(&b)], "removed": []}}),
    );
    let t = Instant::now();
    let state = loop {
        let state = walks_settled(&mut s);
        if walks_of(&state, &b) == 1 {
            break state;
        }
        assert!(
            t.elapsed() < LONG,
            "the added folder was not walked: {state}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        walks_of(&state, &a),
        1,
        "the other root was walked again: {state}"
    );
    assert_eq!(state["indexWalks"], 2, "{state}");
    assert_eq!(files_under(&state, &b).len(), 20, "{state}");
    assert_eq!(files_under(&state, &a).len(), 30, "{state}");

    // Removing a folder drops its files (an open document's buffer too) and walks nothing.
    let open = a.join("a0.py");
    s.open(&uri_of(&open), "python", "def edited():\n    pass\n");
    s.notify(
        "workspace/didChangeWorkspaceFolders",
        json!({"event": {"added": [], "removed": [folder(&a)]}}),
    );
    let t = Instant::now();
    let state = loop {
        let state = walks_settled(&mut s);
        if state["indexRoots"].as_array().unwrap().len() == 1 {
            break state;
        }
        assert!(t.elapsed() < LONG, "the folder was not removed: {state}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(state["indexRoots"], json!([b.to_string_lossy()]), "{state}");
    assert_eq!(files_under(&state, &a), Vec::<String>::new(), "{state}");
    assert_eq!(files_under(&state, &b).len(), 20, "{state}");
    assert_eq!(state["indexWalks"], 2, "{state}");
    assert_eq!(s.shutdown().code(), Some(0));
}

/// Walk starts and ends in the log, in order: (walk number, root, "start" | "end").
fn walk_events(log: &str) -> Vec<(u64, String, &'static str)> {
    let field = |line: &str, name: &str| -> Option<String> {
        let at = line.find(&format!(" {name}="))? + name.len() + 2;
        Some(line[at..].split_whitespace().next()?.to_owned())
    };
    log.lines()
        .filter_map(|l| {
            let kind = if l.contains("walking the workspace") {
                "start"
            } else if l.contains("workspace indexed") || l.contains("workspace walk") {
                "end"
            } else {
                return None;
            };
            Some((field(l, "walk")?.parse().ok()?, field(l, "root")?, kind))
        })
        .collect()
}

#[test]
fn a_newer_walk_of_a_root_supersedes_the_older_one() {
    let _serial = serial();
    let (_dir, root) = project(6000, "m");
    let mut s = spawn_in(&[&root], json!({"backend": "fake"}), &[]);
    // Turning repository context off and on walks every root again: three times in a row,
    // while the first walk runs.
    for _ in 0..3 {
        for enabled in [false, true] {
            s.notify(
                "workspace/didChangeConfiguration",
                json!({"settings": {"ghostline": {"repoContext": {"enabled": enabled}}}}),
            );
        }
    }
    let state = walks_settled(&mut s);
    assert_eq!(files_under(&state, &root).len(), 6000, "{state}");
    let log = s.stderr();
    let events = walk_events(&log);
    let starts = events.iter().filter(|e| e.2 == "start").count();
    assert!(starts >= 1 && starts as u64 == state["indexWalks"].as_u64().unwrap());
    // One walk of the root at a time: every start comes after the previous walk's end.
    let mut running: Option<u64> = None;
    for (n, r, kind) in &events {
        assert_eq!(Path::new(r), root, "{log}");
        match *kind {
            "start" => {
                assert!(
                    running.is_none(),
                    "walk {n} overlaps walk {running:?}:\n{log}"
                );
                running = Some(*n);
            }
            _ => {
                assert_eq!(running, Some(*n), "{log}");
                running = None;
            }
        }
    }
    // The newest walk completes; the walks it superseded were cancelled, not completed.
    let last = events.last().unwrap();
    assert_eq!(last.2, "end");
    let completed = log
        .lines()
        .filter(|l| l.contains("workspace indexed"))
        .count();
    let cancelled = log
        .lines()
        .filter(|l| l.contains("workspace walk cancelled"))
        .count();
    assert_eq!(completed + cancelled, starts, "{log}");
    assert!(
        log.lines()
            .rev()
            .find(|l| l.contains("walking the workspace")
                || l.contains("workspace walk")
                || l.contains("workspace indexed"))
            .is_some_and(|l| l.contains("workspace indexed")),
        "the newest walk completes:\n{log}"
    );
    eprintln!("{starts} walks of the root, {cancelled} cancelled by a newer one");
    // Four triggers (the start and three re-enables): at most four walks.
    assert!(starts <= 4, "{starts} walks:\n{log}");
    assert_eq!(s.shutdown().code(), Some(0));
}

#[test]
fn after_did_close_the_index_holds_the_disk_text() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let shared = root.join("shared.py");
    std::fs::write(&shared, "def from_disk(a):\n    return a + 1\n").unwrap();
    let main = root.join("main.py");
    let main_text = "import os\n\n\ndef main():\n    ";
    std::fs::write(&main, main_text).unwrap();
    let mut s = spawn_in(
        &[&root],
        json!({"backend": "fake"}),
        &["--log-level", "info,ghostline_lsp::workspace=trace"],
    );
    walks_settled(&mut s);
    let shared_uri = uri_of(&shared);
    // Rounds of a burst of unsaved edits, closed at once: index updates race with the close.
    for round in 0..5 {
        s.open(
            &shared_uri,
            "python",
            &format!("def from_buffer_{round}_0(b):\n    return b\n"),
        );
        for v in 1..40 {
            s.notify(
                "textDocument/didChange",
                json!({"textDocument": {"uri": shared_uri, "version": v}, "contentChanges": [
                    {"text": format!("def from_buffer_{round}_{v}(b):\n    return b\n")}
                ]}),
            );
        }
        s.notify(
            "textDocument/didClose",
            json!({"textDocument": {"uri": shared_uri}}),
        );
    }
    // Let every update that was queued run.
    std::thread::sleep(Duration::from_millis(500));
    let main_uri = uri_of(&main);
    s.open(&main_uri, "python", main_text);
    // The recently edited files no longer offer the closed document.
    let before = s.stderr().len();
    let id = s.send_inline(&main_uri, 4, 4, true);
    s.response(id, LONG).ok();
    assert!(s.wait_stderr(Duration::from_secs(10), |l| l[before..]
        .contains("repository context")));
    let log = s.stderr()[before..].to_owned();
    assert!(
        !log.contains("from_buffer"),
        "a closed buffer is offered:\n{log}"
    );
    assert!(
        !log.contains("shared.py"),
        "a closed document is still recent:\n{log}"
    );
    // An import of it reads the disk's text.
    let importing = "from shared import from_disk\n\n\ndef main():\n    ";
    s.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": main_uri, "version": 2}, "contentChanges": [{"text": importing}]}),
    );
    let before = s.stderr().len();
    let id = s.send_inline(&main_uri, 4, 4, true);
    s.response(id, LONG).ok();
    assert!(s.wait_stderr(Duration::from_secs(10), |l| l[before..]
        .contains("repository context")));
    std::thread::sleep(Duration::from_millis(200));
    let log = s.stderr()[before..].to_owned();
    assert!(log.contains("def from_disk"), "the disk's text:\n{log}");
    assert!(
        !log.contains("from_buffer"),
        "a closed buffer's text:\n{log}"
    );
    assert_eq!(s.shutdown().code(), Some(0));
}

/// A document that is not on disk (no index entry to reuse): the context build of a request on
/// it runs the test hook's delay.
fn open_scratch(s: &Server, root: &Path) -> String {
    let uri = file_uri(&root.join("scratch.py").to_string_lossy());
    s.open(&uri, "python", "import os\n\n\ndef f(a):\n    ");
    uri
}

#[test]
fn the_budget_counts_context_building() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    std::fs::write(root.join("util.py"), "def helper(a):\n    return a\n").unwrap();
    // Context building takes 2 s (test hook, stopped by the request's deadline or
    // supersession); each fake token 20 ms; the automatic budget 400 ms.
    let budget = 400;
    let mut s = spawn_in(
        &[&root],
        json!({"backend": "fake", "timeBudgetMs": budget, "invokedTimeBudgetMs": 60000,
               "fake": {"delayMs": 20, "contextDelayMs": 2000}}),
        &["--log-level", "info,ghostline_lsp::workspace=debug"],
    );
    walks_settled(&mut s);
    let uri = open_scratch(&s, &root);
    let mut took = Vec::new();
    // A new text each time: nothing comes from the suggestion cache.
    let mut version = 1;
    let mut edit = |s: &Server, name: &str| {
        version += 1;
        s.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": [
                {"text": format!("import os\n\n\ndef {name}(a):\n    ")}
            ]}),
        );
    };
    for i in 0..3 {
        edit(&s, &format!("auto_{i}"));
        let t = Instant::now();
        let id = s.send_inline(&uri, 4, 4, false);
        let r = s.response(id, LONG);
        took.push(t.elapsed());
        assert!(r.error.is_none(), "{:?}", r.error);
    }
    // The budget plus slack for a loaded machine; without the half-budget give-up the context
    // alone would take 2 s.
    for t in &took {
        assert!(
            *t < Duration::from_millis(budget + 600),
            "automatic completions took {took:?}"
        );
    }
    assert!(
        s.stderr()
            .contains("repository context given up: deadline passed"),
        "{}",
        s.stderr()
    );
    // An invoked request with a long budget waits for its context (the hook's delay is real).
    edit(&s, "invoked");
    let t = Instant::now();
    let id = s.send_inline(&uri, 4, 4, true);
    s.response(id, LONG).ok();
    assert!(
        t.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        t.elapsed()
    );
    eprintln!("automatic completions with a 2 s context build and a {budget} ms budget: {took:?}");
    assert_eq!(s.shutdown().code(), Some(0));
}
