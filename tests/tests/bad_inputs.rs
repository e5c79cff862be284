//! Bad inputs, one test per case, against the real binary over stdio: huge documents and lines,
//! binary and non-UTF-8 files, symlink loops, imports and `#[path]` pointing outside the
//! workspace, malformed frames, `exit` without `shutdown`, a code action on a 5 MB file next to
//! a cheap request, and a burst of configuration changes.
//!
//! Each test ends by checking that the server is alive and answers the next normal request
//! quickly ([`assert_serving`]). They use the fake backend (no model file) unless the case needs
//! the real engine; those are `#[ignore = "real model: make test-model"]`.
//!
//! What the client can observe of "nothing outside the workspace is read": the fake backend's
//! explanation says how many lines the prompt's last message has, and that message lists the
//! imported definitions, so an outside definition would make it longer than the same request
//! with the import pointing nowhere (a control import inside the workspace makes it longer).
//! These tests do not judge suggestions, and do not test the engine's own limits directly.

use std::path::Path;
use std::time::{Duration, Instant};

use ghostline_tests::{
    big_python, editor_capabilities, file_uri, model_lock, small_model, uri_of, Server, Spawn,
    TIMEOUT,
};
use serde_json::{json, Value};

/// How long the next normal request may take once the bad input has been sent.
const NEXT_REQUEST: Duration = Duration::from_secs(2);
/// How long requests on a document over the size cap may take (they do no work; the bound has
/// room for a loaded 2-core CI machine running the other tests of this file at once).
const PROMPTLY: Duration = Duration::from_secs(5);
/// How long the bad requests themselves may take to be answered (with anything).
const BAD_REQUEST: Duration = Duration::from_secs(60);

fn fake_options() -> Value {
    json!({"backend": "fake", "fake": {"delayMs": 1}})
}

/// A server with the fake backend, initialized (in `folders`) and ready.
fn fake_server(folders: &[&Path]) -> Server {
    let mut s = Server::spawn(Spawn::default().settings(json!({})));
    s.initialize_in(folders, editor_capabilities(), fake_options());
    s.wait_status(0, "ready", Duration::from_secs(30));
    s
}

/// The server is alive and answers a normal request (open a small document, read it back, ask
/// for an invoked completion) within [`NEXT_REQUEST`] each.
fn assert_serving(s: &mut Server) {
    assert_serving_within(s, NEXT_REQUEST)
}

/// [`assert_serving`], with `completion` as the bound for the completion: a real model's
/// invoked completion generates until its end of text or the token cap (the 0.5B rarely ends
/// by itself: 256 tokens at ~40 tok/s on 2 cores), which is work, not a frozen server.
fn assert_serving_within(s: &mut Server, completion: Duration) {
    assert!(s.is_alive(), "the server died\n--- log ---\n{}", s.stderr());
    let uri = file_uri(&format!(
        "/tmp/ghostline-bad-inputs/probe-{}.py",
        s.message_count()
    ));
    s.open(&uri, "python", "def probe(n):\n    return n\n\n");
    let t = Instant::now();
    let id = s.send_request(
        "workspace/executeCommand",
        json!({"command": "ghostline.debugDocument", "arguments": [uri]}),
    );
    let r = s.response(id, NEXT_REQUEST + Duration::from_secs(30));
    let took = t.elapsed();
    assert_eq!(
        r.ok()["text"],
        "def probe(n):\n    return n\n\n",
        "the probe document"
    );
    assert!(took < NEXT_REQUEST, "the next normal request took {took:?}");
    let t = Instant::now();
    let id = s.send_inline(&uri, 2, 0, true);
    let r = s.response(id, completion + Duration::from_secs(30));
    let took = t.elapsed();
    assert!(r.error.is_none(), "probe completion failed: {:?}", r.error);
    assert!(
        took < completion,
        "the next normal completion took {took:?}"
    );
    assert!(s.is_alive(), "the server died\n--- log ---\n{}", s.stderr());
}

/// Waits for every id to be answered (with a result or an error) within `timeout` in all.
fn wait_all(s: &Server, ids: &[i64], timeout: Duration) -> Vec<ghostline_tests::Response> {
    let deadline = Instant::now() + timeout;
    ids.iter()
        .map(|&id| s.response(id, deadline.saturating_duration_since(Instant::now())))
        .collect()
}

fn code_action(s: &mut Server, uri: &str, line: u32, character: u32) -> i64 {
    s.send_request(
        "textDocument/codeAction",
        json!({
            "textDocument": {"uri": uri},
            "range": {"start": {"line": line, "character": character}, "end": {"line": line, "character": character}},
            "context": {"diagnostics": []},
        }),
    )
}

fn explain(s: &mut Server, uri: &str, line: u32, character: u32) -> i64 {
    s.send_request(
        "workspace/executeCommand",
        json!({
            "command": "ghostline.explainFunction",
            "arguments": [{"uri": uri, "position": {"line": line, "character": character}}],
        }),
    )
}

fn write(path: &Path, bytes: impl AsRef<[u8]>) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn line_count(text: &str) -> u32 {
    text.split('\n').count() as u32 - 1
}

/// The messages about a document over the size limit received so far.
fn too_large_messages(s: &Server) -> usize {
    s.messages()
        .iter()
        .filter(|m| {
            m["method"] == "window/showMessage"
                && m["params"]["message"]
                    .as_str()
                    .is_some_and(|t| t.contains("over the 16 MiB limit"))
        })
        .count()
}

#[test]
fn a_twenty_megabyte_document() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.py");
    let text = big_python(20 << 20);
    write(&path, &text);
    let mut s = fake_server(&[dir.path()]);
    let uri = uri_of(&path);
    s.open(&uri, "python", &text);
    let last = line_count(&text);
    // Reading and decoding the 20 MB `didOpen` takes its time (seconds in a loaded debug
    // build); a request after it is answered once it has been handled.
    s.request(
        "workspace/executeCommand",
        json!({"command": "ghostline.debugState", "arguments": []}),
    );
    // Every feature answers at once (empty), exactly once: the text is not kept.
    let t = Instant::now();
    let ids = vec![
        s.send_inline(&uri, last, 0, true),
        s.send_inline(&uri, last / 2, 0, true),
        s.send_inline(&uri, last / 2, 4, false),
        code_action(&mut s, &uri, last / 2, 2),
        explain(&mut s, &uri, 1, 4),
    ];
    let answers = wait_all(&s, &ids, BAD_REQUEST);
    let took = t.elapsed();
    assert!(took < PROMPTLY, "the requests took {took:?}");
    for (i, r) in answers.iter().enumerate() {
        assert!(
            r.error_code() != Some(-32603),
            "internal error: {:?}",
            r.error
        );
        if i < 4 {
            assert!(r.error.is_none(), "{:?}", r.error);
            let items = &r.result;
            assert!(
                items.is_null() || items["items"].as_array().is_some_and(|a| a.is_empty()),
                "no suggestion or action for a document over the limit: {items}"
            );
        }
    }
    let held = |s: &mut Server| {
        let id = s.send_request(
            "workspace/executeCommand",
            json!({"command": "ghostline.debugDocument", "arguments": [uri]}),
        );
        s.response(id, BAD_REQUEST).ok()
    };
    let doc = held(&mut s);
    assert_eq!(
        doc["text"], "",
        "the text of a document over the limit is not kept"
    );
    assert_eq!(doc["tooLarge"].as_u64(), Some(text.len() as u64));
    // Typing in it: incremental edits are ignored, requests still answer at once, and the user
    // was told once, not per keystroke.
    let mut ids = Vec::new();
    for v in 2..12 {
        s.notify(
            "textDocument/didChange",
            json!({"textDocument": {"uri": uri, "version": v}, "contentChanges": [
                {"range": {"start": {"line": last, "character": 0}, "end": {"line": last, "character": 0}}, "text": "x"}
            ]}),
        );
        ids.push(s.send_inline(&uri, last, 1, false));
        ids.push(code_action(&mut s, &uri, last, 0));
    }
    let t = Instant::now();
    for r in wait_all(&s, &ids, BAD_REQUEST) {
        assert!(r.error.is_none(), "{:?}", r.error);
    }
    assert!(t.elapsed() < PROMPTLY, "took {:?}", t.elapsed());
    let doc = held(&mut s);
    assert_eq!(
        (doc["text"].as_str(), doc["version"].as_i64()),
        (Some(""), Some(11))
    );
    assert!(
        s.wait_message(0, "window/showMessage", Duration::from_secs(5), |p| p
            ["message"]
            .as_str()
            .is_some_and(|t| t.contains("over the 16 MiB limit")))
            .is_some(),
        "the user is told"
    );
    assert_eq!(too_large_messages(&s), 1, "told once");
    // A full text under the limit brings the document back.
    let small = "def g(n):\n    return n\n\n";
    s.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 12}, "contentChanges": [{"text": small}]}),
    );
    let doc = held(&mut s);
    assert_eq!(doc["text"], small);
    assert!(doc["tooLarge"].is_null());
    let items = s.inline(&uri, 2, 0, true);
    assert!(!items.is_empty(), "completions are back");
    // Over the limit again by a full text: one more message, the text dropped again.
    s.notify(
        "textDocument/didChange",
        json!({"textDocument": {"uri": uri, "version": 13}, "contentChanges": [{"text": text}]}),
    );
    assert_eq!(held(&mut s)["text"], "");
    for id in s.responses().iter().filter_map(|r| r.id.as_i64()) {
        assert_eq!(
            s.response_count(id),
            1,
            "request {id} answered more than once"
        );
    }
    assert_serving(&mut s);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(too_large_messages(&s), 2);
}

#[test]
fn a_line_of_one_megabyte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("minified.py");
    let text = format!(
        "data = \"{}\"\n\ndef after():\n    return data\n",
        "ab😀".repeat(1 << 18)
    );
    write(&path, &text);
    let mut s = fake_server(&[dir.path()]);
    let uri = uri_of(&path);
    s.open(&uri, "python", &text);
    let ids = vec![
        // Column 0 right after the long line, its middle, its end, past its end.
        s.send_inline(&uri, 1, 0, true),
        s.send_inline(&uri, 1, 0, false),
        s.send_inline(&uri, 0, 500_001, true),
        s.send_inline(&uri, 0, 1 << 20, true),
        s.send_inline(&uri, 0, u32::MAX, false),
        code_action(&mut s, &uri, 0, 300_000),
        explain(&mut s, &uri, 3, 4),
    ];
    assert_serving(&mut s);
    for r in wait_all(&s, &ids, BAD_REQUEST) {
        assert!(
            r.error_code() != Some(-32603),
            "internal error: {:?}",
            r.error
        );
    }
    assert_serving(&mut s);
}

/// Issue 10 item 2 with the real engine: a line longer than the context window right before a
/// cursor at column 0 must not loop the engine thread; later completions still answer.
#[test]
#[ignore = "real model: make test-model"]
fn a_line_longer_than_the_context_window_with_the_real_engine() {
    let _lock = model_lock();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("table.py");
    let text = format!("TABLE = [{}]\n\n", "1, ".repeat(400));
    write(&path, &text);
    let mut s = Server::spawn(Spawn::default().settings(json!({})));
    s.initialize_in(
        &[dir.path()],
        editor_capabilities(),
        json!({"model": small_model(), "contextSize": 256, "invokedTimeBudgetMs": 3000, "timeBudgetMs": 1000}),
    );
    s.wait_status(0, "ready", TIMEOUT);
    let uri = uri_of(&path);
    s.open(&uri, "python", &text);
    let t = Instant::now();
    let id = s.send_inline(&uri, 1, 0, true);
    let r = s.response(id, Duration::from_secs(30));
    assert!(r.error.is_none(), "{:?}", r.error);
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "the completion after the long line took {:?}",
        t.elapsed()
    );
    // The engine is free again: a completion elsewhere answers within its budget.
    let other = file_uri("/tmp/ghostline-bad-inputs/after-long-line.py");
    s.open(&other, "python", "def add(a, b):\n    ");
    let t = Instant::now();
    let id = s.send_inline(&other, 1, 4, true);
    s.response(id, Duration::from_secs(30));
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(s.is_alive());
}

#[test]
fn a_binary_file_opened_as_a_document() {
    let dir = tempfile::tempdir().unwrap();
    // Bytes as a client would show them: every code point below 256 (NUL, controls, Latin-1),
    // replacement characters, and lone CRs.
    let mut text: String = (0u32..256)
        .cycle()
        .take(64 * 1024)
        .map(|b| char::from_u32(b).unwrap())
        .collect();
    text.push_str("\u{FFFD}\u{FFFD}\r\r\0\0\0");
    let path = dir.path().join("image.py");
    write(
        &path,
        [0x89u8, b'P', b'N', b'G', 0, 0, 0xff, 0xfe, 0, 1, 2, 3],
    );
    write(&dir.path().join("blob.bin"), vec![0u8; 100_000]);
    let mut s = fake_server(&[dir.path()]);
    let uri = uri_of(&path);
    s.open(&uri, "python", &text);
    let lines = line_count(&text);
    let mut ids = Vec::new();
    for line in [0, lines / 3, lines / 2, lines] {
        ids.push(s.send_inline(&uri, line, 0, true));
        ids.push(s.send_inline(&uri, line, 7, false));
        ids.push(code_action(&mut s, &uri, line, 3));
        ids.push(explain(&mut s, &uri, line, 1));
    }
    for r in wait_all(&s, &ids, BAD_REQUEST) {
        assert!(
            r.error_code() != Some(-32603),
            "internal error: {:?}",
            r.error
        );
    }
    assert_eq!(s.document_text(&uri), text);
    assert_serving(&mut s);
}

#[test]
fn non_utf8_files_in_the_workspace() {
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path();
    write(
        &ws.join("latin1.py"),
        b"# caf\xe9\ndef helper(x):\n    return x + 1 # \xff\xfe\n".as_slice(),
    );
    write(
        &ws.join("broken.py"),
        b"def g():\n    return '\xc3\x28'\n\x80\x81\x82\n".as_slice(),
    );
    write(
        &ws.join("utf16.py"),
        b"\xff\xfed\x00e\x00f\x00 \x00".as_slice(),
    );
    write(
        &ws.join("src/lib.rs"),
        b"pub fn r() -> u8 { b'\xe9' }\n".as_slice(),
    );
    let main = "from latin1 import helper\nimport broken\nimport utf16\n\ndef use(v):\n    return helper(v) + broken.g()\n\n";
    write(&ws.join("main.py"), main);
    let mut s = fake_server(&[ws]);
    assert!(
        s.wait_stderr(Duration::from_secs(30), |l| l.contains("workspace indexed")),
        "the workspace walk did not finish\n{}",
        s.stderr()
    );
    let uri = uri_of(&ws.join("main.py"));
    s.open(&uri, "python", main);
    let ids = vec![
        s.send_inline(&uri, 6, 0, true),
        s.send_inline(&uri, 5, 4, true),
        explain(&mut s, &uri, 5, 6),
    ];
    for r in wait_all(&s, &ids, BAD_REQUEST) {
        assert!(r.error.is_none(), "{:?}", r.error);
    }
    assert_serving(&mut s);
}

#[cfg(unix)]
#[test]
fn symlink_loops_in_the_workspace() {
    use std::os::unix::fs::symlink;
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path();
    write(&ws.join("pkg/mod.py"), "def f():\n    return 1\n");
    symlink(".", ws.join("loop")).unwrap();
    symlink("..", ws.join("pkg/up")).unwrap();
    symlink(ws, ws.join("pkg/absolute")).unwrap();
    symlink("self", ws.join("self")).unwrap();
    symlink("y", ws.join("x")).unwrap();
    symlink("x", ws.join("y")).unwrap();
    symlink("x/z.py", ws.join("z.py")).unwrap();
    let main = "from pkg.mod import f\nfrom loop.loop.pkg.mod import f as g\nimport x\n\ndef use():\n    return f() + g()\n\n";
    write(&ws.join("main.py"), main);
    let mut s = fake_server(&[ws]);
    assert!(
        s.wait_stderr(Duration::from_secs(30), |l| l.contains("workspace indexed")),
        "the workspace walk did not finish\n{}",
        s.stderr()
    );
    let uri = uri_of(&ws.join("main.py"));
    s.open(&uri, "python", main);
    let ids = vec![s.send_inline(&uri, 6, 0, true), explain(&mut s, &uri, 5, 6)];
    for r in wait_all(&s, &ids, BAD_REQUEST) {
        assert!(r.error.is_none(), "{:?}", r.error);
    }
    // A loop opened as a document (the client resolved it as it could).
    let looped = uri_of(&ws.join("loop/loop/loop/main.py"));
    s.open(&looped, "python", main);
    let id = s.send_inline(&looped, 6, 0, true);
    assert!(s.response(id, BAD_REQUEST).error.is_none());
    assert_serving(&mut s);
}

/// Lines of the last prompt message, from the fake backend's explanation ("… the last one has
/// N lines.").
fn prompt_lines(s: &mut Server, uri: &str, line: u32) -> usize {
    let id = explain(s, uri, line, 6);
    let r = s.response(id, BAD_REQUEST).ok();
    let text = r.as_str().expect("markdown");
    let n = text
        .split("the last one has ")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|n| n.parse().ok());
    n.unwrap_or_else(|| panic!("not the fake backend's explanation: {text}"))
}

/// The definition outside the workspace that must never reach a prompt: long, so that it
/// would show in the prompt's line count.
fn secret(lang: &str) -> String {
    let body: String = (0..40)
        .map(|i| match lang {
            "python" => format!("    OUTSIDE_MARKER_{i} = {i}\n"),
            _ => format!("    let _outside_marker_{i}: u32 = {i};\n"),
        })
        .collect();
    match lang {
        "python" => format!("def marker_fn():\n{body}    return 1\n"),
        _ => format!("pub fn marker_fn() -> u32 {{\n{body}    1\n}}\n"),
    }
}

#[test]
fn python_imports_pointing_outside_the_workspace_are_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    let ws = dir.path().join("ws");
    write(&outside.join("secret.py"), secret("python"));
    write(&outside.join("__init__.py"), "");
    write(&ws.join("inside.py"), secret("python"));
    write(&ws.join("app/__init__.py"), "");
    #[cfg(unix)]
    std::os::unix::fs::symlink(&outside, ws.join("link")).unwrap();
    let function = "def use():\n    return marker_fn()\n";
    let variants = [
        ("missing.py", "from nowhere import marker_fn\n"),
        ("control.py", "from inside import marker_fn\n"),
        (
            "app/relative.py",
            "from ...outside.secret import marker_fn\n",
        ),
        (
            "app/relative2.py",
            "from ..outside.secret import marker_fn\n",
        ),
        ("symlinked.py", "from link.secret import marker_fn\n"),
        ("parent.py", "from outside.secret import marker_fn\n"),
    ];
    for (name, import) in variants {
        write(&ws.join(name), format!("{import}\n{function}"));
    }
    let mut s = fake_server(&[&ws]);
    assert!(s.wait_stderr(Duration::from_secs(30), |l| l.contains("workspace indexed")));
    let mut lines = Vec::new();
    for (name, import) in variants {
        let uri = uri_of(&ws.join(name));
        s.open(&uri, "python", &format!("{import}\n{function}"));
        lines.push((name, prompt_lines(&mut s, &uri, 3)));
    }
    let base = lines[0].1;
    assert!(
        lines[1].1 > base,
        "control: a definition inside the workspace reaches the prompt ({lines:?})"
    );
    for (name, n) in &lines[2..] {
        assert_eq!(
            *n, base,
            "{name}: a definition from outside the workspace reached the prompt ({lines:?})"
        );
    }
    assert_serving(&mut s);
}

#[test]
fn rust_path_attributes_pointing_outside_the_workspace_are_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let outside = dir.path().join("outside");
    let ws = dir.path().join("ws");
    write(&outside.join("secret.rs"), secret("rust"));
    write(
        &ws.join("Cargo.toml"),
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
    );
    write(&ws.join("src/inner/secret.rs"), secret("rust"));
    #[cfg(unix)]
    std::os::unix::fs::symlink(outside.join("secret.rs"), ws.join("src/linked.rs")).unwrap();
    let function = "fn use_it() -> u32 {\n    secret::marker_fn()\n}\n";
    let outside_abs = outside.join("secret.rs");
    let variants = [
        (
            "missing",
            "#[path = \"nope/secret.rs\"]\nmod secret;\n".to_owned(),
        ),
        (
            "control",
            "#[path = \"inner/secret.rs\"]\nmod secret;\n".to_owned(),
        ),
        (
            "relative",
            "#[path = \"../../outside/secret.rs\"]\nmod secret;\n".to_owned(),
        ),
        (
            "absolute",
            format!("#[path = \"{}\"]\nmod secret;\n", outside_abs.display()),
        ),
        (
            "symlinked",
            "#[path = \"linked.rs\"]\nmod secret;\n".to_owned(),
        ),
    ];
    let main = ws.join("src/main.rs");
    write(
        &main,
        format!("{}\n{function}\nfn main() {{}}\n", variants[0].1),
    );
    let mut s = fake_server(&[&ws]);
    assert!(s.wait_stderr(Duration::from_secs(30), |l| l.contains("workspace indexed")));
    let uri = uri_of(&main);
    let mut lines = Vec::new();
    for (version, (name, header)) in variants.iter().enumerate() {
        let text = format!("{header}\n{function}\nfn main() {{}}\n");
        // The same document, its `mod` declaration changed (as the user would edit it).
        if version == 0 {
            s.open(&uri, "rust", &text);
        } else {
            s.notify(
                "textDocument/didChange",
                json!({"textDocument": {"uri": uri, "version": version + 1}, "contentChanges": [{"text": text}]}),
            );
        }
        lines.push((*name, prompt_lines(&mut s, &uri, 4)));
    }
    let base = lines[0].1;
    assert!(
        lines[1].1 > base,
        "control: a module inside the workspace reaches the prompt ({lines:?})"
    );
    for (name, n) in &lines[2..] {
        assert_eq!(
            *n, base,
            "{name}: a module outside the workspace reached the prompt ({lines:?})"
        );
    }
    assert_serving(&mut s);
}

/// Sends `body` framed with a correct Content-Length.
fn send_frame(s: &Server, body: &[u8]) {
    let mut frame = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    frame.extend_from_slice(body);
    s.send_raw(&frame);
}

/// Waits for an error response with `id` (`Value::Null` for "unknown") and one of `codes`.
fn wait_error(s: &Server, id: Value, codes: &[i64], timeout: Duration) -> Option<i64> {
    let deadline = Instant::now() + timeout;
    loop {
        let found = s
            .responses()
            .into_iter()
            .filter(|r| r.id == id)
            .find_map(|r| r.error_code().filter(|c| codes.contains(c)));
        if found.is_some() || Instant::now() > deadline {
            return found;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_body_that_is_not_json() {
    let mut s = fake_server(&[]);
    send_frame(&s, b"this is not json {");
    assert_eq!(
        wait_error(&s, Value::Null, &[-32700], NEXT_REQUEST),
        Some(-32700),
        "no parse error (-32700) for a body that is not JSON; responses {:?}",
        s.responses()
            .iter()
            .map(|r| (&r.id, &r.error))
            .collect::<Vec<_>>()
    );
    assert_serving(&mut s);
}

/// How many error responses with one of `codes` arrived so far.
fn error_count(s: &Server, codes: &[i64]) -> usize {
    s.responses()
        .iter()
        .filter(|r| r.error_code().is_some_and(|c| codes.contains(&c)))
        .count()
}

/// Waits until more than `before` error responses with one of `codes` arrived.
fn wait_more_errors(s: &Server, codes: &[i64], before: usize, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    while error_count(s, codes) <= before {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

#[test]
fn json_that_is_not_json_rpc() {
    let mut s = fake_server(&[]);
    // A request whose method is not a string: its id is known, so the error names it (or
    // null, when the server cannot tell).
    send_frame(&s, br#"{"jsonrpc": "2.0", "id": 4242, "method": 17}"#);
    assert!(
        wait_more_errors(&s, &[-32600], 0, NEXT_REQUEST),
        "no invalid-request error (-32600) for a request whose method is a number"
    );
    assert!(
        s.responses()
            .iter()
            .filter(|r| r.error_code() == Some(-32600))
            .all(|r| r.id == json!(4242) || r.id.is_null()),
        "the error names another id"
    );
    for body in [
        br#"{"hello": "world"}"#.as_slice(),
        br#"[1, 2, 3]"#,
        br#"42"#,
    ] {
        let before = error_count(&s, &[-32600]);
        send_frame(&s, body);
        assert!(
            wait_more_errors(&s, &[-32600], before, NEXT_REQUEST),
            "no invalid-request error (-32600) for {}",
            String::from_utf8_lossy(body)
        );
    }
    assert_serving(&mut s);
}

#[test]
fn a_bad_content_length() {
    let mut s = fake_server(&[]);
    // Not a number: the frame cannot be delimited; the server must find the next one.
    s.send_raw(b"Content-Length: twelve\r\n\r\n{\"jsonrpc\":\"2.0\"}");
    // Too short: the body is cut (a parse error), the rest is garbage before the next header.
    let body = br#"{"jsonrpc":"2.0","id":5151,"method":"shutdown"}"#;
    let mut frame = b"Content-Length: 10\r\n\r\n".to_vec();
    frame.extend_from_slice(body);
    s.send_raw(&frame);
    // A header without a length.
    s.send_raw(b"Content-Type: application/json\r\n\r\n{}");
    assert!(
        wait_error(&s, Value::Null, &[-32700, -32600], NEXT_REQUEST).is_some(),
        "no parse error for a frame cut by a short Content-Length"
    );
    assert_serving(&mut s);
}

#[test]
fn a_body_that_is_not_utf8() {
    let mut s = fake_server(&[]);
    send_frame(
        &s,
        b"{\"jsonrpc\":\"2.0\",\"id\":6161,\"method\":\"textDocument/hover\",\"params\":\"\xff\xfe\xc3\x28\"}",
    );
    assert!(
        wait_error(&s, Value::Null, &[-32700], NEXT_REQUEST).is_some()
            || wait_error(&s, json!(6161), &[-32700, -32600], Duration::ZERO).is_some(),
        "no parse error (-32700) for a body that is not UTF-8"
    );
    assert_serving(&mut s);
}

#[test]
fn exit_without_shutdown_exits_with_code_1() {
    let mut s = fake_server(&[]);
    assert_serving(&mut s);
    let status = s
        .exit_without_shutdown(Duration::from_secs(5))
        .expect("the server did not exit within 5 s of `exit`");
    assert_eq!(
        status.code(),
        Some(1),
        "LSP: exit without shutdown is code 1"
    );
}

#[test]
fn shutdown_then_exit_exits_with_code_0_promptly() {
    let mut s = fake_server(&[]);
    assert_serving(&mut s);
    let t = Instant::now();
    let status = s.shutdown();
    assert_eq!(status.code(), Some(0));
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
}

#[test]
fn a_code_action_on_a_5mb_file_does_not_delay_a_cheap_request() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.py");
    let text = big_python(5 << 20);
    write(&big, &text);
    let small = dir.path().join("small.py");
    let small_text = "def small(a):\n    return a * 2\n";
    write(&small, small_text);
    let mut s = fake_server(&[dir.path()]);
    let (big, small) = (uri_of(&big), uri_of(&small));
    s.open(&big, "python", &text);
    s.open(&small, "python", small_text);
    // Warm up: the documents are in, the small code action works.
    let id = code_action(&mut s, &small, 1, 4);
    assert!(s.response(id, BAD_REQUEST).ok().is_array());
    let last = line_count(&text);
    let mut worst = Duration::ZERO;
    let mut heavy = Vec::new();
    for round in 0..5 {
        // As an editor does on every cursor move in the big file.
        heavy.push(code_action(&mut s, &big, last / 2 + round * 7, 4));
        heavy.push(code_action(&mut s, &big, last - 3, 4));
        std::thread::sleep(Duration::from_millis(20));
        let t = Instant::now();
        let id = code_action(&mut s, &small, 1, 4);
        let r = s.response(id, BAD_REQUEST);
        worst = worst.max(t.elapsed());
        assert!(r.ok().is_array());
    }
    eprintln!("cheap code action next to a 5 MB one: worst {worst:?}");
    // Served behind the big ones it would wait for at least two of them (1.3 s each before
    // they moved off the handler thread); the bound leaves room for a loaded 2-core machine
    // running the other tests of this file at the same time (seen: up to 147 ms).
    assert!(
        worst < Duration::from_millis(400),
        "a cheap code action took {worst:?} while code actions on a 5 MB file ran"
    );
    wait_all(&s, &heavy, BAD_REQUEST);
    assert_serving(&mut s);
}

#[test]
#[ignore = "real model: make test-model"]
fn a_burst_of_ten_configuration_changes_loads_one_model() {
    let _lock = model_lock();
    let model = small_model();
    let model_kib = std::fs::metadata(&model).unwrap().len() / 1024;
    let mut s = Server::spawn(Spawn::default().settings(json!({})));
    s.initialize(
        editor_capabilities(),
        json!({"model": model, "contextSize": 1024, "repoContext": {"enabled": false}}),
    );
    s.wait_status(0, "ready", TIMEOUT);
    let ready_before = s.stderr().matches("model ready").count();
    let rss_before = s.rss_kib().unwrap();
    let from = s.message_count();
    for i in 0..10 {
        s.notify(
            "workspace/didChangeConfiguration",
            json!({"settings": {"ghostline": {"contextSize": 1024 + 256 * (i + 1)}}}),
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Sample RSS until a model is ready after the burst, then 3 s more (a second, wrong load
    // would show itself there).
    let deadline = Instant::now() + TIMEOUT;
    let mut peak = rss_before;
    let mut settle_until: Option<Instant> = None;
    loop {
        peak = peak.max(s.rss_kib().unwrap_or(0));
        let now = Instant::now();
        match settle_until {
            Some(t) if now > t => break,
            Some(_) => {}
            None => {
                let ready =
                    s.messages().iter().skip(from).any(|m| {
                        m["method"] == "ghostline/status" && m["params"]["state"] == "ready"
                    });
                if ready {
                    settle_until = Some(now + Duration::from_secs(3));
                }
                assert!(now < deadline, "no model ready after the burst");
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let loads = s.stderr().matches("model ready").count() - ready_before;
    eprintln!(
        "burst of 10 configuration changes: {loads} model loads finished, RSS {rss_before} KiB before, peak {peak} KiB (model file {model_kib} KiB)"
    );
    assert!(
        loads <= 1,
        "{loads} models loaded for one burst of settings"
    );
    assert!(
        peak < rss_before + model_kib * 3 / 2,
        "peak RSS {peak} KiB: more than one model in memory at once (before {rss_before} KiB, model {model_kib} KiB)"
    );
    assert_serving_within(&mut s, Duration::from_secs(20));
}
