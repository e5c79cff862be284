//! With the default model: an editor's session gets sensible ghost text at the cursor and an
//! explanation of the function it is in. One server for both, to load the model once.

use std::time::{Duration, Instant};

use ghostline_tests::{
    default_model, editor_capabilities, file_uri, model_lock, Server, Spawn, TIMEOUT,
};
use serde_json::json;

const FIB: &str = "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    if n < 2:\n        return n\n    \n\n\nprint(fibonacci(10))\n";

#[test]
#[ignore = "real model: make test-model"]
fn fibonacci_completion_and_explanation() {
    let _lock = model_lock();
    let mut s = Server::spawn(Spawn::default());
    let model = default_model();
    let t0 = Instant::now();
    let init = s.initialize(
        editor_capabilities(),
        json!({"model": model, "repoContext": {"enabled": false}, "explainMaxTokens": 160, "invokedTimeBudgetMs": 60000}),
    );
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "initialize must answer at once"
    );
    assert_eq!(
        init["capabilities"]["inlineCompletionProvider"],
        json!(true)
    );
    s.wait_status(0, "ready", TIMEOUT);

    let uri = file_uri("/tmp/ghostline-tests/fib.py");
    s.open(&uri, "python", FIB);

    // The cursor on the empty line after `return n`, indented.
    let items = s.inline(&uri, 4, 4, true);
    assert_eq!(
        items.len(),
        1,
        "one suggestion expected, got {items:?}\n{}",
        s.stderr()
    );
    let text = items[0]["insertText"].as_str().unwrap();
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    assert!(
        compact.contains("fibonacci(n-1)") || compact.contains("fibonacci(n-2)"),
        "unexpected suggestion {text:?}\n{}",
        s.stderr()
    );
    assert!(
        !text.contains("print(fibonacci(10))"),
        "the suggestion runs into the next lines: {text:?}"
    );
    assert_eq!(
        items[0]["range"],
        json!({"start": {"line": 4, "character": 4}, "end": {"line": 4, "character": 4}})
    );

    // The code action is offered inside the function, and not outside.
    let actions = s
        .request(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": uri}, "range": {"start": {"line": 2, "character": 6}, "end": {"line": 2, "character": 6}}, "context": {"diagnostics": []}}),
        )
        .ok();
    let action = &actions[0];
    assert_eq!(action["command"]["command"], "ghostline.explainFunction");
    let outside = s
        .request(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": uri}, "range": {"start": {"line": 7, "character": 1}, "end": {"line": 7, "character": 1}}, "context": {"diagnostics": []}}),
        )
        .ok();
    assert!(
        outside.is_null() || outside.as_array().is_some_and(|a| a.is_empty()),
        "{outside}"
    );

    // Run the action's command with a progress token, as an editor does.
    let from = s.message_count();
    let mut params = action["command"].clone();
    params["workDoneToken"] = json!("explain-1");
    let params = json!({"command": params["command"], "arguments": params["arguments"], "workDoneToken": "explain-1"});
    let markdown = s.request("workspace/executeCommand", params).ok();
    let markdown = markdown.as_str().expect("markdown string");
    assert!(markdown.to_lowercase().contains("fibonacci"), "{markdown}");
    assert!(markdown.len() > 60, "too short: {markdown}");
    // Streamed through $/progress and ghostline/explainProgress, then shown.
    let reports = s
        .messages()
        .into_iter()
        .skip(from)
        .filter(|m| {
            m["method"] == "$/progress"
                && m["params"]["token"] == "explain-1"
                && m["params"]["value"]["kind"] == "report"
        })
        .count();
    assert!(reports >= 2, "expected streamed progress, got {reports}");
    assert!(s
        .wait_message(from, "ghostline/explainProgress", TIMEOUT, |p| p["done"]
            == true
            && p["text"] == markdown)
        .is_some());
    assert!(s
        .wait_message(from, "window/showMessage", TIMEOUT, |p| p["type"] == 3
            && p["message"] == markdown)
        .is_some());

    assert!(s.protocol_errors().is_empty(), "{:?}", s.protocol_errors());
    assert!(s.shutdown().success());
}
