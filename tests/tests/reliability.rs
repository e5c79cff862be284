//! Reliability of the server process against bad input and lifecycle edge cases, with the fake
//! backend (no model): bad frames are answered and skipped, `exit` is bounded and returns the
//! exit code LSP asks for, a client that never reads stderr does not block the server, engine
//! failures are reported and recovered from, background work is supervised, and heavy handlers
//! do not delay cheap ones.
//!
//! It does not test completion quality or the real engine.

use std::time::{Duration, Instant};

use ghostline_tests::{editor_capabilities, file_uri, Server, Spawn};
use serde_json::{json, Value};

fn fake(extra: Value) -> Value {
    let mut o = json!({"backend": "fake", "repoContext": {"enabled": false}});
    if let (Some(o), Some(extra)) = (o.as_object_mut(), extra.as_object()) {
        for (k, v) in extra {
            o.insert(k.clone(), v.clone());
        }
    }
    o
}

fn started(spawn: Spawn, options: Value) -> Server {
    let mut s = Server::spawn(spawn.settings(options.clone()));
    s.initialize(editor_capabilities(), options);
    s.wait_status(0, "ready", Duration::from_secs(30));
    s
}

fn cheap(s: &mut Server) -> Duration {
    let t = Instant::now();
    s.request(
        "workspace/executeCommand",
        json!({"command": "ghostline.debugLastCompletion", "arguments": []}),
    );
    t.elapsed()
}

/// The error responses with id null received so far.
fn null_id_errors(s: &Server) -> Vec<i64> {
    s.responses()
        .iter()
        .filter(|r| r.id.is_null())
        .filter_map(|r| r.error_code())
        .collect()
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    f.extend_from_slice(body);
    f
}

#[test]
fn bad_frames_are_answered_and_skipped() {
    let mut s = started(Spawn::default(), fake(json!({})));
    let cases: Vec<(&str, Vec<u8>, i64)> = vec![
        ("not JSON", frame(b"{this is not json"), -32700),
        (
            "not UTF-8",
            frame(b"{\"jsonrpc\":\"2.0\",\"method\":\"\xff\xfe\"}"),
            -32700,
        ),
        (
            "bad Content-Length",
            b"Content-Length: twelve\r\n\r\n{\"a\":1}".to_vec(),
            -32700,
        ),
        (
            "no Content-Length",
            b"Content-Type: x\r\n\r\n{}".to_vec(),
            -32700,
        ),
        ("not JSON-RPC", frame(b"[1,2,3]"), -32600),
        ("no method", frame(br#"{"jsonrpc":"2.0","foo":1}"#), -32600),
        (
            "too large",
            {
                let mut f = b"Content-Length: 70000000\r\n\r\n".to_vec();
                f.extend(std::iter::repeat_n(b' ', 70_000_000));
                f
            },
            -32700,
        ),
    ];
    for (what, bytes, code) in cases {
        let before = null_id_errors(&s).len();
        s.send_raw(&bytes);
        let t = Instant::now();
        while null_id_errors(&s).len() == before && t.elapsed() < Duration::from_secs(20) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let errors = null_id_errors(&s);
        assert_eq!(
            errors.len(),
            before + 1,
            "{what}: one error answer expected: {errors:?}\n{}",
            s.stderr()
        );
        assert_eq!(errors[before], code, "{what}");
        // The server still answers.
        cheap(&mut s);
    }
    // An invalid request with an id is answered with that id.
    s.send_raw(&frame(br#"{"jsonrpc":"1.0","id":4242,"method":"x"}"#));
    let r = s.response(4242, Duration::from_secs(10));
    assert_eq!(r.error_code(), Some(-32600));
    assert!(s.protocol_errors().is_empty(), "{:?}", s.protocol_errors());
    let status = s.shutdown();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn exit_without_shutdown_is_code_1_and_bounded() {
    // A slow explanation runs while `exit` arrives: the process still ends within ~1 s.
    let mut s = started(Spawn::default(), fake(json!({"fake": {"delayMs": 2000}})));
    let uri = file_uri("/tmp/ghostline-rel/a.py");
    s.open(&uri, "python", "def f(x):\n    return x + 1\n");
    s.send_request(
        "workspace/executeCommand",
        json!({"command": "ghostline.explainFunction", "arguments": [{"uri": uri, "position": {"line": 1, "character": 4}}]}),
    );
    std::thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    s.notify("exit", Value::Null);
    let status = s
        .wait_exit(Duration::from_secs(5))
        .expect("the server did not exit");
    assert!(
        t.elapsed() < Duration::from_millis(2500),
        "exit took {:?}",
        t.elapsed()
    );
    assert_eq!(status.code(), Some(1));
}

#[test]
fn exit_after_shutdown_is_code_0() {
    let s = started(Spawn::default(), fake(json!({})));
    let status = s.shutdown();
    assert_eq!(status.code(), Some(0));
}

#[test]
fn closing_stdin_ends_the_server() {
    let mut s = started(Spawn::default(), fake(json!({})));
    s.close_stdin();
    let status = s
        .wait_exit(Duration::from_secs(5))
        .expect("the server did not exit");
    assert_eq!(status.code(), Some(1));
}

#[test]
fn a_client_that_never_reads_stderr_does_not_block_the_server() {
    let spawn = Spawn {
        args: vec!["--log-level".into(), "trace".into()],
        ignore_stderr: true,
        ..Spawn::default()
    };
    let mut s = started(spawn, fake(json!({})));
    let uri = file_uri("/tmp/ghostline-rel/log.py");
    s.open(&uri, "python", "x = 1\n");
    // Each request logs several lines at trace level: far more than a pipe buffer holds.
    for i in 0..600 {
        let id = s.send_inline(&uri, 1, 0, true);
        let r = s.response(id, Duration::from_secs(10));
        assert!(r.error.is_none(), "request {i}: {:?}", r.error);
    }
    assert_eq!(s.shutdown().code(), Some(0));
}

#[test]
fn a_crashed_engine_is_reported_and_restarted() {
    let mut s = started(Spawn::default(), fake(json!({"fake": {"crash": true}})));
    let uri = file_uri("/tmp/ghostline-rel/crash.py");
    s.open(&uri, "python", "def f(x):\n    return x + 1\n");
    let from = s.message_count();
    let r = s.request(
        "workspace/executeCommand",
        json!({"command": "ghostline.explainFunction", "arguments": [{"uri": uri, "position": {"line": 1, "character": 4}}]}),
    );
    assert!(r.error.is_some(), "the crash must fail the request");
    s.wait_engine_restart(from);
    assert_eq!(s.shutdown().code(), Some(0));
}

#[test]
fn a_burst_of_setting_changes_loads_one_model_at_a_time() {
    let options = fake(json!({"fake": {"loadDelayMs": 400}}));
    let s = started(Spawn::default(), options);
    for i in 0..5 {
        s.notify(
            "workspace/didChangeConfiguration",
            json!({"settings": {"ghostline": {"backend": "fake", "fake": {"loadDelayMs": 400}, "contextSize": 1024 + i}}}),
        );
    }
    let from = 0;
    // The last setting wins: the server ends ready with it.
    std::thread::sleep(Duration::from_millis(3000));
    s.wait_status(from, "ready", Duration::from_secs(10));
    let log = s.stderr();
    let loads: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("loading model"))
        .collect();
    assert!(
        loads.iter().all(|l| l.contains("active_loads=1")),
        "two loads ran at once:\n{}",
        loads.join("\n")
    );
    // The initial load, the first of the burst, and the last one; the rest were dropped.
    assert!(
        loads.len() <= 3,
        "{} loads:\n{}",
        loads.len(),
        loads.join("\n")
    );
    assert_eq!(s.shutdown().code(), Some(0));
}

#[test]
fn a_cancelled_explanation_ends_its_progress_and_status() {
    let mut s = started(Spawn::default(), fake(json!({"fake": {"delayMs": 300}})));
    let uri = file_uri("/tmp/ghostline-rel/cancel.py");
    s.open(&uri, "python", "def f(x):\n    return x + 1\n");
    let from = s.message_count();
    let id = s.send_request(
        "workspace/executeCommand",
        json!({"command": "ghostline.explainFunction", "workDoneToken": "explain-1",
               "arguments": [{"uri": uri, "position": {"line": 1, "character": 4}}]}),
    );
    s.wait_message(from, "$/progress", Duration::from_secs(10), |p| {
        p["token"] == "explain-1" && p["value"]["kind"] == "begin"
    })
    .expect("progress begins");
    s.notify("$/cancelRequest", json!({"id": id}));
    let r = s.response(id, Duration::from_secs(10));
    assert_eq!(r.error_code(), Some(-32800));
    s.wait_message(from, "$/progress", Duration::from_secs(5), |p| {
        p["token"] == "explain-1" && p["value"]["kind"] == "end"
    })
    .expect("progress ends after a cancel");
    let generating = s
        .messages()
        .iter()
        .enumerate()
        .skip(from)
        .filter(|(_, m)| m["method"] == "ghostline/status" && m["params"]["state"] == "generating")
        .map(|(i, _)| i)
        .next_back()
        .expect("status generating");
    s.wait_status(generating + 1, "idle", Duration::from_secs(5));
    assert_eq!(s.shutdown().code(), Some(0));
}

#[test]
fn a_code_action_on_a_big_document_does_not_delay_cheap_requests() {
    let mut s = started(Spawn::default(), fake(json!({})));
    let big_uri = file_uri("/tmp/ghostline-rel/big.py");
    let mut big = String::new();
    let mut i = 0;
    while big.len() < 5 << 20 {
        big.push_str(&format!(
            "def f{i}(x):\n    y = x * {i}\n    return y + 1\n\n"
        ));
        i += 1;
    }
    s.open(&big_uri, "python", &big);
    cheap(&mut s);
    let last = big.lines().count() as u32 - 3;
    let mut ids = Vec::new();
    let mut latencies = Vec::new();
    for k in 0..20 {
        if k % 5 == 0 {
            ids.push(s.send_request(
                "textDocument/codeAction",
                json!({"textDocument": {"uri": big_uri},
                       "range": {"start": {"line": last, "character": 4}, "end": {"line": last, "character": 4}},
                       "context": {"diagnostics": []}}),
            ));
        }
        latencies.push(cheap(&mut s));
    }
    for id in ids {
        let r = s.response(id, Duration::from_secs(60));
        assert!(r.error.is_none(), "{:?}", r.error);
    }
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    eprintln!(
        "cheap request latency while code actions run: p50 {:?}, p99 {:?}",
        latencies[latencies.len() / 2],
        p99
    );
    // 100 ms in a quiet release build; a shared debug build gets headroom.
    assert!(
        p99 < Duration::from_millis(300),
        "p99 {p99:?} ({latencies:?})"
    );
    assert_eq!(s.shutdown().code(), Some(0));
}
