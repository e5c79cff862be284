//! The protocol mechanics, with the small model: start-up and progress, document sync,
//! position encodings, exactly one response per request (superseded, cancelled, stopped by an
//! edit), errors for bad requests, settings, the cache, a missing model, and the completion
//! fallback for a client without inline completion; and, with the fake backend, the
//! recently edited files that reach a request's repository context.

use std::time::{Duration, Instant};

use ghostline_tests::{
    editor_capabilities, file_uri, model_lock, small_model, Server, Spawn, TIMEOUT,
};
use serde_json::{json, Value};

const FIB: &str = "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    if n < 2:\n        return n\n    \n\n\nprint(fibonacci(10))\n";

fn options() -> Value {
    json!({
        "model": small_model(),
        "repoContext": {"enabled": false},
        "timeBudgetMs": 60000,
        "invokedTimeBudgetMs": 60000,
    })
}

fn change(uri: &str, version: i32, changes: Value) -> Value {
    json!({"textDocument": {"uri": uri, "version": version}, "contentChanges": changes})
}

fn edit(l1: u32, c1: u32, l2: u32, c2: u32, text: &str) -> Value {
    json!({"range": {"start": {"line": l1, "character": c1}, "end": {"line": l2, "character": c2}}, "text": text})
}

fn utf16_len(s: &str) -> u32 {
    s.encode_utf16().count() as u32
}

/// Waits a little so that a second (wrong) response would have arrived.
fn settle() {
    std::thread::sleep(Duration::from_millis(300));
}

#[test]
#[ignore = "real model: make test-model"]
fn editor_session_mechanics() {
    let _lock = model_lock();
    let mut s = Server::spawn(Spawn::default());

    // --- start-up: initialize answers at once; the model loads afterwards with progress.
    let t0 = Instant::now();
    let init = s.initialize(editor_capabilities(), options());
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "initialize took {:?}",
        t0.elapsed()
    );
    let caps = &init["capabilities"];
    assert_eq!(caps["positionEncoding"], "utf-16");
    assert_eq!(caps["textDocumentSync"]["change"], 2);
    assert_eq!(caps["inlineCompletionProvider"], true);
    assert!(caps["completionProvider"].is_object());
    assert!(caps["codeActionProvider"].is_object());
    let commands = caps["executeCommandProvider"]["commands"]
        .as_array()
        .unwrap();
    assert!(commands.contains(&json!("ghostline.explainFunction")));
    s.wait_status(0, "ready", TIMEOUT);
    let create = s
        .wait_message(0, "window/workDoneProgress/create", TIMEOUT, |_| true)
        .expect("progress token created");
    let token = create["params"]["token"].clone();
    for kind in ["begin", "end"] {
        assert!(
            s.wait_message(0, "$/progress", TIMEOUT, |p| p["token"] == token
                && p["value"]["kind"] == kind)
                .is_some(),
            "no $/progress {kind}"
        );
    }
    assert!(s
        .wait_message(0, "ghostline/status", TIMEOUT, |p| p["state"] == "loading")
        .is_some());

    // --- documents: incremental edits with non-ASCII text, in UTF-16 positions.
    let doc = file_uri("/tmp/ghostline-tests/edits.py");
    s.open(&doc, "python", "x = 1\ny = 2\n");
    s.notify(
        "textDocument/didChange",
        change(
            &doc,
            2,
            json!([edit(0, 4, 0, 5, "\"é😀\""), edit(1, 0, 1, 1, "zz")]),
        ),
    );
    assert_eq!(s.document_text(&doc), "x = \"é😀\"\nzz = 2\n");
    // After `x = "é😀` is 4 + 1 + 1 + 2 = 8 UTF-16 units.
    let col = utf16_len("x = \"é😀");
    s.notify(
        "textDocument/didChange",
        change(&doc, 3, json!([edit(0, col, 0, col, "!")])),
    );
    assert_eq!(s.document_text(&doc), "x = \"é😀!\"\nzz = 2\n");
    // Inside the surrogate pair rounds down; past the end of a line clamps; full replacement.
    s.notify(
        "textDocument/didChange",
        change(
            &doc,
            4,
            json!([edit(0, 7, 0, 7, "|"), edit(1, 99, 1, 99, ";")]),
        ),
    );
    assert_eq!(s.document_text(&doc), "x = \"é|😀!\"\nzz = 2;\n");
    s.notify(
        "textDocument/didChange",
        change(
            &doc,
            5,
            json!([{"text": "a = 1\r\nb = 2\r\n"}, edit(1, 0, 1, 1, "c")]),
        ),
    );
    assert_eq!(s.document_text(&doc), "a = 1\r\nc = 2\r\n");

    // --- a completion on a line with é and an emoji: the range is where the client meant.
    let line = "greeting = \"héllo 😀\" + ";
    let uni = file_uri("/tmp/ghostline-tests/unicode.py");
    s.open(&uni, "python", &format!("{line}\n"));
    let end = utf16_len(line);
    let items = s.inline(&uni, 0, end, true);
    for item in &items {
        assert_eq!(
            item["range"]["start"],
            json!({"line": 0, "character": end}),
            "{item}"
        );
        assert_eq!(
            item["range"]["end"],
            json!({"line": 0, "character": end}),
            "{item}"
        );
    }

    // --- sensible code at the cursor, then the cache: the same request needs no model work,
    // and typing the start of the suggestion gets the rest at once.
    let fib = file_uri("/tmp/ghostline-tests/fib.py");
    s.open(&fib, "python", FIB);
    let items = s.inline(&fib, 4, 4, true);
    assert_eq!(items.len(), 1, "{items:?}\n{}", s.stderr());
    let suggestion = items[0]["insertText"].as_str().unwrap().to_owned();
    assert!(suggestion.trim().len() > 3, "{suggestion:?}");
    let again = s.inline(&fib, 4, 4, true);
    assert_eq!(again, items);
    let typed: String = suggestion.chars().take(3).collect();
    s.notify(
        "textDocument/didChange",
        change(&fib, 2, json!([edit(4, 4, 4, 4, &typed)])),
    );
    let rest = s.inline(&fib, 4, 4 + utf16_len(&typed), false);
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert_eq!(
        format!("{typed}{}", rest[0]["insertText"].as_str().unwrap()),
        suggestion
    );
    assert!(
        s.wait_stderr(Duration::from_secs(5), |log| log
            .matches("outcome=\"cached\"")
            .count()
            >= 2),
        "expected two cache hits in the log\n{}",
        s.stderr()
    );
    s.notify(
        "textDocument/didChange",
        change(&fib, 3, json!([edit(4, 4, 4, 4 + utf16_len(&typed), "")])),
    );
    assert_eq!(s.document_text(&fib), FIB);

    // --- a newer request supersedes the older one: empty result at once, one response each.
    let body = file_uri("/tmp/ghostline-tests/body.py");
    s.open(
        &body,
        "python",
        "import math\n\n\ndef area_of_circle(radius):\n    \n",
    );
    let first = s.send_inline(&body, 4, 4, true);
    let second = s.send_inline(&body, 4, 4, true);
    let r1 = s.response(first, TIMEOUT).ok();
    assert_eq!(
        r1["items"],
        json!([]),
        "the superseded request must get an empty result"
    );
    let _ = s.response(second, TIMEOUT).ok();
    settle();
    assert_eq!((s.response_count(first), s.response_count(second)), (1, 1));

    // --- $/cancelRequest: RequestCancelled, exactly once.
    let other = file_uri("/tmp/ghostline-tests/cancel.py");
    s.open(&other, "python", "def parse_config(path):\n    \n");
    let id = s.send_inline(&other, 1, 4, true);
    s.notify("$/cancelRequest", json!({"id": id}));
    let r = s.response(id, TIMEOUT);
    assert_eq!(r.error_code(), Some(-32800), "{r:?}");
    settle();
    assert_eq!(s.response_count(id), 1);

    // --- an edit while generating stops the work for the old version.
    let id = s.send_inline(&other, 1, 4, true);
    s.notify(
        "textDocument/didChange",
        change(&other, 2, json!([edit(0, 0, 0, 0, "# config\n")])),
    );
    let r = s.response(id, TIMEOUT).ok();
    assert_eq!(r["items"], json!([]));
    settle();
    assert_eq!(s.response_count(id), 1);

    // --- bad requests get errors, and the server keeps working.
    let inline = |uri: &str, line: u32, ch: u32| json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": ch}, "context": {"triggerKind": 1}});
    let r = s.request("textDocument/inlineCompletion", inline(&fib, 999, 0));
    assert_eq!(r.error_code(), Some(-32602), "{r:?}");
    let r = s.request(
        "textDocument/inlineCompletion",
        inline("file:///not/open.py", 0, 0),
    );
    assert_eq!(r.error_code(), Some(-32602), "{r:?}");
    let r = s.request(
        "textDocument/inlineCompletion",
        json!({"textDocument": {"uri": fib}, "context": {"triggerKind": 1}}),
    );
    assert_eq!(r.error_code(), Some(-32602), "{r:?}");
    let r = s.request("textDocument/inlineCompletion", json!({"textDocument": {"uri": fib}, "position": {"line": -1, "character": "x"}, "context": {"triggerKind": 1}}));
    assert_eq!(r.error_code(), Some(-32602), "{r:?}");
    let r = s.request(
        "workspace/executeCommand",
        json!({"command": "ghostline.explainFunction", "arguments": [{"nope": 1}]}),
    );
    assert_eq!(r.error_code(), Some(-32602), "{r:?}");
    let r = s.request(
        "workspace/executeCommand",
        json!({"command": "ghostline.noSuchCommand"}),
    );
    assert!(r.error.is_some());
    // A character past the end of the line is clamped to the end of the line.
    let r = s
        .request("textDocument/inlineCompletion", inline(&fib, 4, 400))
        .ok();
    for item in r["items"].as_array().unwrap() {
        assert_eq!(item["range"]["start"], json!({"line": 4, "character": 4}));
    }
    // Still working.
    assert_eq!(s.inline(&fib, 4, 4, true), items);

    // --- selectedCompletionInfo: the suggestion extends the item selected in the completion
    // widget and replaces its range.
    let sel = file_uri("/tmp/ghostline-tests/selected.py");
    s.open(&sel, "python", "import os\n\nconfig_dir = os.pa\n");
    let r = s
        .request(
            "textDocument/inlineCompletion",
            json!({
                "textDocument": {"uri": sel},
                "position": {"line": 2, "character": 18},
                "context": {"triggerKind": 2, "selectedCompletionInfo": {
                    "range": {"start": {"line": 2, "character": 16}, "end": {"line": 2, "character": 18}},
                    "text": "path"}},
            }),
        )
        .ok();
    let selected = r["items"].as_array().unwrap();
    assert_eq!(selected.len(), 1, "{r}");
    assert!(
        selected[0]["insertText"]
            .as_str()
            .unwrap()
            .starts_with("path"),
        "{r}"
    );
    assert_eq!(
        selected[0]["range"]["start"],
        json!({"line": 2, "character": 16})
    );
    assert_eq!(
        selected[0]["range"]["end"],
        json!({"line": 2, "character": 18})
    );

    // --- settings: an invalid value is reported and ignored; `trigger: manual` turns off
    // automatic suggestions only.
    let from = s.message_count();
    s.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"ghostline": {"maxTokens": "lots", "trigger": "manual"}}}),
    );
    let warning = s
        .wait_message(from, "window/showMessage", TIMEOUT, |p| p["type"] == 2)
        .expect("a warning about maxTokens");
    assert!(
        warning["params"]["message"]
            .as_str()
            .unwrap()
            .contains("maxTokens"),
        "{warning}"
    );
    let t = Instant::now();
    assert_eq!(s.inline(&body, 4, 4, false), Vec::<Value>::new());
    assert!(t.elapsed() < Duration::from_secs(1));
    assert_eq!(s.inline(&fib, 4, 4, true).len(), 1);
    s.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"ghostline": {"trigger": "automatic"}}}),
    );

    // --- automatic triggers skip the middle of a word.
    let mid = file_uri("/tmp/ghostline-tests/mid.py");
    s.open(&mid, "python", "value = compute_total(items)\n");
    assert_eq!(s.inline(&mid, 0, 12, false), Vec::<Value>::new());

    assert!(s.protocol_errors().is_empty(), "{:?}", s.protocol_errors());
    assert!(s.shutdown().success());
}

#[test]
#[ignore = "real model: make test-model"]
fn missing_model_reports_and_recovers() {
    let _lock = model_lock();
    let mut s = Server::spawn(Spawn::default());
    let missing = "/nonexistent/ghostline/missing-model.gguf";
    s.initialize(
        editor_capabilities(),
        json!({"model": missing, "timeBudgetMs": 60000, "invokedTimeBudgetMs": 60000}),
    );
    let error = s
        .wait_message(0, "window/showMessage", TIMEOUT, |p| p["type"] == 1)
        .expect("an error message");
    let message = error["params"]["message"].as_str().unwrap();
    assert!(
        message.contains(missing) && message.contains("does not exist"),
        "{message}"
    );
    s.wait_status(0, "error", TIMEOUT);

    let fib = file_uri("/tmp/ghostline-tests/fib.py");
    s.open(&fib, "python", FIB);
    let t = Instant::now();
    assert_eq!(s.inline(&fib, 4, 4, true), Vec::<Value>::new());
    let r = s
        .request(
            "textDocument/completion",
            json!({"textDocument": {"uri": fib}, "position": {"line": 4, "character": 4}}),
        )
        .ok();
    assert_eq!(r["items"], json!([]));
    assert!(t.elapsed() < Duration::from_secs(2));
    let r = s.request("workspace/executeCommand", json!({"command": "ghostline.explainFunction", "arguments": [{"uri": fib, "position": {"line": 3, "character": 8}}]}));
    assert!(
        r.error.as_ref().is_some_and(|e| e["message"]
            .as_str()
            .unwrap()
            .contains("could not be loaded")),
        "{r:?}"
    );

    // Fixing the setting reloads.
    let from = s.message_count();
    s.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"ghostline": {"model": small_model()}}}),
    );
    s.wait_status(from, "ready", TIMEOUT);
    assert_eq!(s.inline(&fib, 4, 4, true).len(), 1);
    assert!(s.shutdown().success());
}

#[test]
#[ignore = "real model: make test-model"]
fn completion_fallback_for_a_utf8_client_without_inline_completion() {
    let _lock = model_lock();
    let mut s = Server::spawn(Spawn::default());
    let caps = json!({
        "general": {"positionEncodings": ["utf-8", "utf-16"]},
        "textDocument": {"completion": {"completionItem": {"snippetSupport": false}}},
    });
    let init = s.initialize(caps, options());
    assert_eq!(init["capabilities"]["positionEncoding"], "utf-8");
    s.wait_status(0, "ready", TIMEOUT);

    let uri = file_uri("/tmp/ghostline-tests/fallback.py");
    let prefix = "# Grüße 😀\ndef fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    if n < 2:\n        return n\n    ";
    s.open(
        &uri,
        "python",
        &format!("{prefix}\n\n\nprint(fibonacci(10))\n"),
    );
    // UTF-8 positions: an edit right after the emoji (byte 15 of line 0).
    let col = "# Grüße 😀".len() as u32;
    s.notify(
        "textDocument/didChange",
        change(&uri, 2, json!([edit(0, col, 0, col, "!")])),
    );
    assert!(s.document_text(&uri).starts_with("# Grüße 😀!\n"));

    let r = s
        .request(
            "textDocument/completion",
            json!({"textDocument": {"uri": uri}, "position": {"line": 5, "character": 4}, "context": {"triggerKind": 1}}),
        )
        .ok();
    let items = r["items"].as_array().expect("a completion list");
    assert_eq!(items.len(), 1, "{r}");
    let item = &items[0];
    let new_text = item["textEdit"]["newText"].as_str().unwrap();
    assert!(new_text.contains("fibonacci"), "{new_text:?}");
    assert_eq!(
        item["textEdit"]["range"]["start"],
        json!({"line": 5, "character": 4})
    );
    assert_eq!(
        item["label"].as_str().unwrap(),
        new_text.lines().next().unwrap().trim()
    );
    let doc = item["documentation"]["value"].as_str().unwrap();
    assert!(
        item["documentation"]["kind"] == "markdown"
            && doc.starts_with("```python\n")
            && doc.contains(new_text),
        "{doc}"
    );
    assert!(s.shutdown().success());
}

/// `prompt_tokens` of the last answered inline completion, from the server's log.
fn last_prompt_tokens(s: &Server) -> usize {
    let log = s.stderr();
    let line = log
        .lines()
        .rev()
        .find(|l| {
            l.contains("method=textDocument/inlineCompletion")
                && l.contains("prompt_tokens=")
                && l.contains("done")
        })
        .unwrap_or_else(|| panic!("no completion in the log\n{log}"));
    let at = line.find("prompt_tokens=").unwrap() + "prompt_tokens=".len();
    line[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
#[ignore = "real model: make test-model"]
fn repository_context_reaches_the_prompt() {
    let _lock = model_lock();
    let root = std::env::temp_dir().join(format!("ghostline-repo-{}", std::process::id()));
    std::fs::create_dir_all(root.join("geometry")).unwrap();
    let shapes: String = (0..12)
        .map(|i| format!("def shape_area_{i}(width, height):\n    \"\"\"Area of shape {i}.\"\"\"\n    return width * height * {i}\n\n\n"))
        .collect();
    std::fs::write(root.join("geometry/__init__.py"), "").unwrap();
    std::fs::write(root.join("geometry/shapes.py"), &shapes).unwrap();
    let main = "from geometry.shapes import shape_area_3\n\n\ndef total_area(items):\n    \n";
    std::fs::write(root.join("main.py"), main).unwrap();

    let mut s = Server::spawn(Spawn::default());
    let mut opts = options();
    opts["repoContext"] = json!({"enabled": true, "budgetTokens": 1024});
    s.initialize_in(&[root.as_path()], editor_capabilities(), opts);
    s.wait_status(0, "ready", TIMEOUT);
    let uri = file_uri(&root.join("main.py").to_string_lossy());
    s.open(&uri, "python", main);
    let with_context = s.inline(&uri, 4, 4, true);
    assert!(
        s.wait_stderr(Duration::from_secs(5), |l| l.contains("inlineCompletion")
            && l.contains("prompt_tokens="))
    );
    let with = last_prompt_tokens(&s);

    s.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"ghostline": {"repoContext": {"enabled": false}}}}),
    );
    let _ = s.request(
        "workspace/executeCommand",
        json!({"command": "ghostline.debugDocument", "arguments": [uri]}),
    );
    let without_context = s.inline(&uri, 4, 4, true);
    std::thread::sleep(Duration::from_millis(500));
    let without = last_prompt_tokens(&s);
    assert!(
        with > without + 100,
        "with context {with} tokens, without {without}: {with_context:?} {without_context:?}"
    );
    assert!(s.shutdown().success());
    let _ = std::fs::remove_dir_all(&root);
}

/// The `repository context` lines the server logged (debug level, `workspace.rs`), each with
/// the trace lines of its blocks that follow it, from byte `from` of the log on.
fn logged_contexts(s: &Server, from: usize) -> Vec<String> {
    let log = s.stderr();
    let mut out: Vec<String> = Vec::new();
    for line in log[from..].lines() {
        if line.contains("repository context") {
            out.push(String::new());
        }
        if let Some(last) = out.last_mut() {
            last.push_str(line);
            last.push('\n');
        }
    }
    out
}

/// Types one character at (line, col) of `uri` (version `version`) and asks for an invoked
/// completion there; returns the context the request was given (what the log says of it).
fn type_and_complete(s: &mut Server, uri: &str, version: i32, line: u32, col: u32) -> String {
    let from = s.stderr().len();
    s.notify(
        "textDocument/didChange",
        change(uri, version, json!([edit(line, col, line, col, "x")])),
    );
    let id = s.send_inline(uri, line, col + 1, true);
    assert!(s.response(id, TIMEOUT).error.is_none());
    assert!(
        s.wait_stderr(Duration::from_secs(5), |l| l[from..]
            .contains("repository context")),
        "no context logged\n{}",
        &s.stderr()[from..]
    );
    // The block lines follow the summary line: let them arrive.
    settle();
    logged_contexts(s, from).pop().unwrap()
}

/// Issue 14 item 3 with the fake backend (no model): a definition edited in another open
/// document that the current file does not import reaches the request's context, as the
/// function around the edit only; a document outside the workspace never does, and a closed
/// one leaves it.
#[test]
fn recently_edited_open_files_reach_the_context_until_closed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("ws");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let main = "import os\n\n\ndef run(w, h):\n    \n";
    let shapes =
        "def area(w, h):\n    return w * h\n\n\ndef perimeter(w, h):\n    return 2 * (w + h)\n";
    let secret = "def secret_outside(v):\n    return v\n";
    for (path, text) in [
        (root.join("main.py"), main),
        (root.join("shapes.py"), shapes),
        (outside.join("secret.py"), secret),
    ] {
        std::fs::write(path, text).unwrap();
    }
    let mut s = Server::spawn(Spawn {
        args: vec![
            "--log-level".into(),
            "info,ghostline_lsp::workspace=trace".into(),
        ],
        ..Spawn::default()
    });
    s.initialize_in(
        &[root.as_path()],
        editor_capabilities(),
        json!({"backend": "fake", "fake": {"delayMs": 1}, "repoContext": {"enabled": true}}),
    );
    s.wait_status(0, "ready", TIMEOUT);
    // The walk knows shapes.py: its first change is an edit even if the index sees it before
    // the opening text (both are read from the session on a blocking thread).
    assert!(s.wait_stderr(TIMEOUT, |l| l.contains("workspace indexed")));
    let uri = |p: &std::path::Path| file_uri(&p.to_string_lossy());
    let (main_uri, shapes_uri, secret_uri) = (
        uri(&root.join("main.py")),
        uri(&root.join("shapes.py")),
        uri(&outside.join("secret.py")),
    );
    // Edit `perimeter` in shapes.py and `secret_outside` outside the workspace, then type
    // in main.py, which imports neither.
    s.open(&shapes_uri, "python", shapes);
    s.notify(
        "textDocument/didChange",
        change(
            &shapes_uri,
            2,
            json!([edit(5, 0, 5, 0, "    w = abs(w)\n")]),
        ),
    );
    s.open(&secret_uri, "python", secret);
    s.notify(
        "textDocument/didChange",
        change(&secret_uri, 2, json!([edit(1, 0, 1, 0, "    v = v + 1\n")])),
    );
    s.open(&main_uri, "python", main);
    // The index takes edits on a blocking thread: type until the edit is seen (or give up).
    let mut version = 2;
    let mut col = 4;
    let mut seen = String::new();
    for _ in 0..40 {
        seen = type_and_complete(&mut s, &main_uri, version, 4, col);
        (version, col) = (version + 1, col + 1);
        if seen.contains("w = abs(w)") {
            break;
        }
    }
    assert!(seen.contains("paths=shapes.py"), "{seen}");
    assert!(seen.contains("def perimeter(w, h):") && seen.contains("w = abs(w)"));
    assert!(
        !seen.contains("def area"),
        "only the edited function: {seen}"
    );
    let log = s.stderr();
    assert!(!log.contains("secret_outside"), "outside file in a context");

    // Closed: shapes.py leaves the context.
    s.notify(
        "textDocument/didClose",
        json!({"textDocument": {"uri": shapes_uri}}),
    );
    for _ in 0..40 {
        seen = type_and_complete(&mut s, &main_uri, version, 4, col);
        (version, col) = (version + 1, col + 1);
        if !seen.contains("shapes.py") {
            break;
        }
    }
    assert!(seen.contains("blocks=0"), "{seen}");
    assert!(s.shutdown().success());
}
