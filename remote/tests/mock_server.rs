//! The remote backends against a tiny HTTP/1.1 server on a loopback port (std `TcpListener`,
//! one thread per connection) that records every request and streams canned answers with
//! pauses between pieces: llama-server's `/infill` events and OpenAI server-sent events.
//!
//! Covered: the request fields of both APIs, streaming assembly, a stop rule closing the
//! connection before the server finished sending, cancellation and deadlines answered at once,
//! a server that is down (one error, then fail-fast backoff, then recovery), keep-alive, and
//! the API key (from a file or the environment, sent as Bearer, absent from errors and logs).
//! Not covered here: a real llama-server (second tier) and TLS.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use ghostline_inference::fim::FimInput;
use ghostline_inference::{
    complete_blocking, Backend, CancelToken, ChatRequest, ContextBlock, EngineError, FimFormat,
    FimRequest, StopReason,
};
use ghostline_remote::{RemoteBackend, RemoteConfig, RemoteKind};
use serde_json::{json, Value};

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

struct Reply {
    status: u16,
    chunks: Vec<String>,
    /// Pause before each chunk.
    delay: Duration,
}

impl Reply {
    fn json(v: Value) -> Reply {
        Reply {
            status: 200,
            chunks: vec![v.to_string()],
            delay: Duration::ZERO,
        }
    }
    fn status(status: u16, body: &str) -> Reply {
        Reply {
            status,
            chunks: vec![body.to_owned()],
            delay: Duration::ZERO,
        }
    }
    fn events(events: Vec<Value>, done: bool, delay: Duration) -> Reply {
        let mut chunks: Vec<String> = events.iter().map(|e| format!("data: {e}\n\n")).collect();
        if done {
            chunks.push("data: [DONE]\n\n".into());
        }
        Reply {
            status: 200,
            chunks,
            delay,
        }
    }
}

/// How one streamed response ended, as the server saw it.
#[derive(Debug, Clone)]
struct Sent {
    path: String,
    sent: usize,
    total: usize,
    disconnected: bool,
}

type Handler = Arc<dyn Fn(&Seen) -> Reply + Send + Sync>;

struct Mock {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    sent: Arc<Mutex<Vec<Sent>>>,
    connections: Arc<AtomicUsize>,
}

impl Mock {
    fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Mock {
        Self::on(TcpListener::bind("127.0.0.1:0").unwrap(), Arc::new(handler))
    }

    fn on(listener: TcpListener, handler: Handler) -> Mock {
        let port = listener.local_addr().unwrap().port();
        let mock = Mock {
            port,
            seen: Arc::default(),
            sent: Arc::default(),
            connections: Arc::default(),
        };
        let (seen, sent, conns) = (
            mock.seen.clone(),
            mock.sent.clone(),
            mock.connections.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                conns.fetch_add(1, Ordering::SeqCst);
                let (seen, sent, handler) = (seen.clone(), sent.clone(), handler.clone());
                std::thread::spawn(move || serve(stream, &handler, &seen, &sent));
            }
        });
        mock
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn requests(&self, path: &str) -> Vec<Seen> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }

    /// Waits for the end of the streamed response to `path`.
    fn wait_sent(&self, path: &str, within: Duration) -> Option<Sent> {
        let until = Instant::now() + within;
        while Instant::now() < until {
            if let Some(s) = self.sent.lock().unwrap().iter().find(|s| s.path == path) {
                return Some(s.clone());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        None
    }
}

fn serve(stream: TcpStream, handler: &Handler, seen: &Mutex<Vec<Seen>>, sent: &Mutex<Vec<Sent>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, path) = (
            parts.next().unwrap_or("").to_owned(),
            parts.next().unwrap_or("").to_owned(),
        );
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((n, v)) = h.split_once(':') {
                headers.push((n.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let len: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let req = Seen {
            method,
            path: path.clone(),
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        seen.lock().unwrap().push(req.clone());
        let reply = handler(&req);
        let streaming = reply.chunks.len() > 1 || reply.delay > Duration::ZERO;
        let ctype = if streaming {
            "text/event-stream"
        } else {
            "application/json"
        };
        let head = format!(
            "HTTP/1.1 {} X\r\nContent-Type: {ctype}\r\nTransfer-Encoding: chunked\r\n\r\n",
            reply.status
        );
        let mut disconnected = out.write_all(head.as_bytes()).is_err();
        let mut n = 0;
        for chunk in &reply.chunks {
            if disconnected {
                break;
            }
            std::thread::sleep(reply.delay);
            let framed = format!("{:x}\r\n{chunk}\r\n", chunk.len());
            if out
                .write_all(framed.as_bytes())
                .and_then(|_| out.flush())
                .is_err()
            {
                disconnected = true;
                break;
            }
            n += 1;
        }
        if !disconnected {
            disconnected = out.write_all(b"0\r\n\r\n").is_err();
        }
        sent.lock().unwrap().push(Sent {
            path,
            sent: n,
            total: reply.chunks.len(),
            disconnected,
        });
        if disconnected {
            return;
        }
    }
}

fn infill_event(content: &str) -> Value {
    json!({"content": content, "stop": false})
}

fn openai_event(text: &str) -> Value {
    json!({"choices": [{"text": text, "index": 0, "finish_reason": null}]})
}

fn llama_props(seen: &Seen) -> Option<Reply> {
    match seen.path.as_str() {
        "/props" => Some(Reply::json(json!({
            "default_generation_settings": {"n_ctx": 8192},
            "model_path": "/models/qwen2.5-coder-7b-instruct-q8_0.gguf"
        }))),
        "/tokenize" => {
            let content = seen.json()["content"].as_str().unwrap_or("").to_owned();
            let tokens: Vec<u32> = content.split_whitespace().map(|_| 7).collect();
            Some(Reply::json(json!({ "tokens": tokens })))
        }
        _ => None,
    }
}

fn config(kind: RemoteKind, url: &str) -> RemoteConfig {
    let mut c = RemoteConfig::new(kind, url);
    c.api_key_env = "GHOSTLINE_TEST_NO_SUCH_KEY".into();
    c.timeout = Duration::from_secs(2);
    c
}

fn fim(prefix: &str, suffix: &str) -> FimRequest {
    FimRequest {
        prefix: prefix.into(),
        suffix: suffix.into(),
        max_tokens: Some(32),
        deadline: Some(Instant::now() + Duration::from_secs(5)),
        ..FimRequest::default()
    }
}

#[test]
fn llama_server_infill_sends_the_fields_and_assembles_the_stream() {
    let mock = Mock::start(|seen| {
        llama_props(seen).unwrap_or_else(|| {
            Reply::events(
                vec![
                    infill_event("return"),
                    infill_event(" a"),
                    infill_event(" + b"),
                    json!({"content": "", "stop": true, "stop_type": "eos",
                           "tokens_evaluated": 40, "timings": {"prompt_n": 12, "prompt_ms": 3.5}}),
                ],
                false,
                Duration::from_millis(2),
            )
        })
    });
    let backend = RemoteBackend::new(config(RemoteKind::LlamaServer, &mock.url())).unwrap();
    assert_eq!(backend.context_size(), 8192, "n_ctx from /props");
    assert!(backend.exact_token_counts(), "/tokenize answers");
    assert!(backend.info().name.contains("qwen2.5-coder-7b"));
    let before = mock.requests("/tokenize").len();
    assert_eq!(backend.count_tokens("a b c"), 3);
    assert_eq!(backend.count_tokens("a b c"), 3);
    assert_eq!(
        mock.requests("/tokenize").len(),
        before + 1,
        "counts are cached"
    );

    let mut req = fim("def add(a, b):\n    ", "\n\nprint(add(1, 2))\n");
    req.context = vec![
        ContextBlock {
            path: "pkg/util.py".into(),
            text: "def helper():\n    return 1\n".into(),
        },
        ContextBlock {
            path: "pkg/b.py".into(),
            text: "X = 2\n".into(),
        },
    ];
    req.stop = vec!["\n\n".into()];
    req.deadline = Some(Instant::now() + Duration::from_millis(1500));
    let c = complete_blocking(&backend, req, CancelToken::new()).unwrap();
    assert_eq!(c.text, "return a + b");
    assert_eq!(c.stop, StopReason::EndOfText);
    assert_eq!(c.stats.generated_tokens, 3);
    assert_eq!(c.stats.evaluated_tokens, 12);
    assert_eq!(c.stats.prompt_tokens, 40);

    let infill = mock.requests("/infill");
    assert_eq!(infill.len(), 1);
    assert_eq!(infill[0].method, "POST");
    let b = infill[0].json();
    assert_eq!(b["input_prefix"], "def add(a, b):\n    ");
    assert_eq!(b["input_suffix"], "\n\nprint(add(1, 2))\n");
    assert_eq!(
        b["input_extra"],
        json!([
            {"filename": "pkg/util.py", "text": "def helper():\n    return 1\n"},
            {"filename": "pkg/b.py", "text": "X = 2\n"}
        ])
    );
    assert_eq!(b["n_predict"], 32);
    assert_eq!(b["cache_prompt"], true);
    assert_eq!(b["stream"], true);
    assert_eq!(b["temperature"], 0);
    assert_eq!(b["samplers"], json!(["top_k"]));
    assert_eq!(b["top_k"], 1);
    let t = b["t_max_predict_ms"].as_u64().unwrap();
    assert!(
        t > 1000 && t <= 1500,
        "t_max_predict_ms from the deadline: {t}"
    );
    assert!(b["stop"].as_array().unwrap().contains(&json!("\n\n")));

    // A second request reuses the kept-alive connection.
    complete_blocking(&backend, fim("x = ", ""), CancelToken::new()).unwrap();
    assert_eq!(mock.connections.load(Ordering::SeqCst), 1, "keep-alive");
}

#[test]
fn openai_completions_get_a_locally_rendered_fim_prompt_and_sse() {
    let mock = Mock::start(|seen| match seen.path.as_str() {
        "/v1/models" => Reply::json(json!({"data": [{"id": "Qwen/Qwen2.5-Coder-7B"}]})),
        "/tokenize" => Reply::status(404, "{\"detail\":\"Not Found\"}"),
        _ => Reply::events(
            vec![
                openai_event("total"),
                openai_event(" = a"),
                openai_event(" + b"),
                json!({"choices": [{"text": "", "index": 0, "finish_reason": "stop"}]}),
            ],
            true,
            Duration::from_millis(2),
        ),
    });
    // The URL may already end in /v1: it is not doubled.
    let backend =
        RemoteBackend::new(config(RemoteKind::OpenAi, &format!("{}/v1/", mock.url()))).unwrap();
    assert!(!backend.exact_token_counts(), "no tokenizer: estimates");
    assert_eq!(backend.count_tokens(&"x".repeat(35)), 10);
    let mut req = fim("def f(a, b):\n    ", "\n    return total\n");
    req.path = Some("pkg/main.py".into());
    req.context = vec![ContextBlock {
        path: "pkg/util.py".into(),
        text: "X = 1\n".into(),
    }];
    req.repo_name = Some("demo".into());
    req.stop = vec!["\n\n".into()];
    let c = complete_blocking(&backend, req.clone(), CancelToken::new()).unwrap();
    assert_eq!(c.text, "total = a + b");
    assert_eq!(c.stop, StopReason::EndOfText);

    let sent = mock.requests("/v1/completions");
    assert_eq!(sent.len(), 1);
    let b = sent[0].json();
    let expected = FimFormat::qwen().render(
        &FimInput {
            path: Some("pkg/main.py"),
            prefix: &req.prefix,
            suffix: &req.suffix,
            context: &req.context,
            repo_name: Some("demo"),
        },
        None,
    );
    assert_eq!(b["prompt"], expected);
    assert!(expected.contains("<|file_sep|>pkg/util.py"));
    assert_eq!(b["model"], "Qwen/Qwen2.5-Coder-7B");
    assert_eq!(b["max_tokens"], 32);
    assert_eq!(b["temperature"], 0);
    assert_eq!(b["stream"], true);
    assert_eq!(b["stop"][0], "\n\n");
    assert!(b.get("suffix").is_none(), "vLLM rejects suffix");
    assert_eq!(mock.connections.load(Ordering::SeqCst), 1, "keep-alive");
}

/// An OpenAI-compatible server that streams `first`, then 60 more pieces 15 ms apart (so a
/// client that stops early closes the connection long before the end), and a backend for it.
fn slow_openai_stream(first: &'static [&'static str]) -> (Mock, RemoteBackend) {
    let mock = Mock::start(move |_| {
        let mut events: Vec<Value> = first.iter().map(|t| openai_event(t)).collect();
        events.extend((0..60).map(|_| openai_event("zzz")));
        Reply::events(events, true, Duration::from_millis(15))
    });
    let mut cfg = config(RemoteKind::OpenAi, &mock.url());
    cfg.model = Some("qwen2.5-coder-1.5b".into());
    let backend = RemoteBackend::new(cfg).unwrap();
    (mock, backend)
}

/// The client closed the completion stream before the server had sent all of it.
fn assert_closed_early(mock: &Mock) {
    let s = mock
        .wait_sent("/v1/completions", Duration::from_secs(3))
        .expect("the response ended");
    assert!(s.disconnected, "the client closed the connection: {s:?}");
    assert!(s.sent < s.total, "before the server finished: {s:?}");
}

#[test]
fn a_stop_rule_closes_the_connection_before_the_server_finished() {
    let (mock, backend) = slow_openai_stream(&["a = 1", "\n\n"]);
    let mut req = fim("x = 0\n", "");
    req.stop = vec!["\n\n".into()];
    req.max_tokens = Some(100);
    let started = Instant::now();
    let c = complete_blocking(&backend, req, CancelToken::new()).unwrap();
    assert_eq!(c.text, "a = 1");
    assert_eq!(c.stop, StopReason::StopString);
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_closed_early(&mock);
}

#[test]
fn a_settled_block_closes_the_connection_too() {
    let (mock, backend) = slow_openai_stream(&["    return 1\n", "def g"]);
    let mut req = fim("def f():\n", "");
    req.max_tokens = Some(100);
    req.settled = Some(ghostline_inference::Settled::new(|text: &str| {
        text.contains("\ndef ")
    }));
    let c = complete_blocking(&backend, req, CancelToken::new()).unwrap();
    assert_eq!(c.stop, StopReason::ScopeEnded);
    assert_eq!(
        c.text, "    return 1\ndef g",
        "the text up to where it settled"
    );
    assert_closed_early(&mock);
}

#[test]
fn the_line_end_rule_and_the_token_cap_stop_llama_server_streams_too() {
    let mock = Mock::start(|seen| {
        llama_props(seen).unwrap_or_else(|| {
            let mut events = vec![infill_event("b)"), infill_event("\n"), infill_event("x")];
            events.extend((0..40).map(|_| infill_event("y")));
            Reply::events(events, false, Duration::from_millis(10))
        })
    });
    let backend = RemoteBackend::new(config(RemoteKind::LlamaServer, &mock.url())).unwrap();
    let mut req = fim("print(a, ", "\n");
    req.line_end = Some(ghostline_inference::LineEnd {
        cursor_line: "print(a, ".into(),
        openers: vec![':', '(', '{'],
        line_comment: "#".into(),
    });
    let c = complete_blocking(&backend, req, CancelToken::new()).unwrap();
    assert_eq!((c.text.as_str(), c.stop), ("b)", StopReason::StopString));

    let mut req = fim("y = ", "");
    req.max_tokens = Some(5);
    let c = complete_blocking(&backend, req, CancelToken::new()).unwrap();
    assert_eq!(c.stop, StopReason::MaxTokens);
    assert_eq!(c.stats.generated_tokens, 5);
}

#[test]
fn cancellation_answers_at_once_and_drops_the_request() {
    let mock = Mock::start(|_| {
        Reply::events(
            (0..30).map(|_| openai_event("x")).collect(),
            true,
            Duration::from_millis(100),
        )
    });
    let mut cfg = config(RemoteKind::OpenAi, &mock.url());
    cfg.model = Some("m".into());
    let backend = RemoteBackend::new(cfg).unwrap();
    let cancel = CancelToken::new();
    let (tx, rx) = std::sync::mpsc::channel();
    let calls = Arc::new(AtomicUsize::new(0));
    let calls2 = calls.clone();
    backend.submit_fim(
        fim("a", ""),
        cancel.clone(),
        Box::new(move |r| {
            calls2.fetch_add(1, Ordering::SeqCst);
            let _ = tx.send((r, Instant::now()));
        }),
    );
    std::thread::sleep(Duration::from_millis(250));
    let cancelled_at = Instant::now();
    cancel.cancel();
    let (r, at) = rx.recv_timeout(Duration::from_secs(2)).unwrap();
    assert_eq!(r, Err(EngineError::Cancelled));
    assert!(
        at.duration_since(cancelled_at) < Duration::from_millis(80),
        "answered {:?} after cancel",
        at.duration_since(cancelled_at)
    );
    let s = mock
        .wait_sent("/v1/completions", Duration::from_secs(3))
        .unwrap();
    assert!(s.disconnected && s.sent < s.total, "{s:?}");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "exactly one reply");
}

#[test]
fn the_deadline_returns_the_text_so_far() {
    let mock = Mock::start(|seen| {
        llama_props(seen).unwrap_or_else(|| {
            Reply::events(
                (0..30).map(|_| infill_event("ab")).collect(),
                false,
                Duration::from_millis(100),
            )
        })
    });
    let backend = RemoteBackend::new(config(RemoteKind::LlamaServer, &mock.url())).unwrap();
    let mut req = fim("s = '", "");
    let started = Instant::now();
    req.deadline = Some(started + Duration::from_millis(350));
    let c = complete_blocking(&backend, req, CancelToken::new()).unwrap();
    let took = started.elapsed();
    assert_eq!(c.stop, StopReason::Deadline);
    assert!(
        c.text.starts_with("ab") && c.text.len() < 60,
        "{:?}",
        c.text
    );
    assert!(
        took >= Duration::from_millis(340) && took < Duration::from_millis(500),
        "{took:?}"
    );
    let s = mock.wait_sent("/infill", Duration::from_secs(3)).unwrap();
    assert!(s.disconnected && s.sent < s.total, "{s:?}");
    // The server was told the limit too.
    let t = mock.requests("/infill")[0].json()["t_max_predict_ms"]
        .as_u64()
        .unwrap();
    assert!(t <= 350, "{t}");
}

#[test]
fn chat_streams_pieces_through_chat_completions() {
    let mock = Mock::start(|seen| {
        llama_props(seen).unwrap_or_else(|| {
            Reply::events(
                vec![
                    json!({"choices": [{"delta": {"role": "assistant"}, "finish_reason": null}]}),
                    json!({"choices": [{"delta": {"content": "It adds"}, "finish_reason": null}]}),
                    json!({"choices": [{"delta": {"content": " numbers."}, "finish_reason": null}]}),
                    json!({"choices": [{"delta": {}, "finish_reason": "stop"}]}),
                ],
                true,
                Duration::from_millis(2),
            )
        })
    });
    let backend = RemoteBackend::new(config(RemoteKind::LlamaServer, &mock.url())).unwrap();
    let pieces = Arc::new(Mutex::new(Vec::new()));
    let p2 = pieces.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    backend.submit_chat(
        ChatRequest {
            messages: vec![
                ("system".into(), "Explain code.".into()),
                ("user".into(), "def add(a, b): return a + b".into()),
            ],
            max_tokens: 64,
            deadline: Some(Instant::now() + Duration::from_secs(5)),
        },
        CancelToken::new(),
        Box::new(move |t| p2.lock().unwrap().push(t.to_owned())),
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    );
    let out = rx.recv_timeout(Duration::from_secs(5)).unwrap().unwrap();
    assert_eq!(out.text, "It adds numbers.");
    assert_eq!(out.stop, StopReason::EndOfText);
    assert_eq!(*pieces.lock().unwrap(), vec!["It adds", " numbers."]);
    let b = mock.requests("/v1/chat/completions")[0].json();
    assert_eq!(b["messages"][1]["content"], "def add(a, b): return a + b");
    assert_eq!(b["messages"][0]["role"], "system");
    assert_eq!(b["max_tokens"], 64);
    assert_eq!(b["stream"], true);
    assert_eq!(b["model"], "qwen2.5-coder-7b-instruct-q8_0.gguf");
}

#[test]
fn a_server_that_is_down_gives_one_error_then_backs_off_then_recovers() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let mut cfg = config(RemoteKind::OpenAi, &url);
    cfg.model = Some("m".into());
    let backend = RemoteBackend::new(cfg).unwrap();
    let err = complete_blocking(&backend, fim("a", ""), CancelToken::new()).unwrap_err();
    let EngineError::Remote(msg) = &err else {
        panic!("{err:?}")
    };
    assert!(msg.contains(&url) && msg.contains("unavailable"), "{msg}");
    assert!(backend.unavailable().is_some());

    // The server comes up; within the backoff, requests fail fast with the same error and
    // do not even connect.
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let mock = Mock::on(
        listener,
        Arc::new(|_: &Seen| {
            Reply::events(vec![openai_event("ok")], true, Duration::from_millis(1))
        }),
    );
    let started = Instant::now();
    let again = complete_blocking(&backend, fim("a", ""), CancelToken::new()).unwrap_err();
    assert_eq!(again, err);
    // Failing fast is the connection count; the time only has to stay well inside the
    // 1 s backoff (a loaded 2-core CI machine can deschedule a thread for tens of ms).
    assert!(started.elapsed() < Duration::from_millis(500));
    assert_eq!(mock.connections.load(Ordering::SeqCst), 0);

    // After the backoff the next request reaches it.
    std::thread::sleep(Duration::from_millis(1100));
    let c = complete_blocking(&backend, fim("a", ""), CancelToken::new()).unwrap();
    assert_eq!(c.text, "ok");
    assert!(backend.unavailable().is_none());
}

/// Everything logged by this test binary (DEBUG and above, ureq's `log` records included).
fn logs() -> Arc<Mutex<Vec<u8>>> {
    static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let b = buf.clone();
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || LogWriter(b.clone()))
            .try_init();
        buf
    })
    .clone()
}

struct LogWriter(Arc<Mutex<Vec<u8>>>);

impl Write for LogWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn the_api_key_is_sent_as_bearer_and_never_shown() {
    let logs = logs();
    let key = "sk-h6-file-0123456789";
    // A server that wants the key, and echoes it in its error message.
    let mock = Mock::start(move |seen| {
        if seen.header("authorization") == Some(&format!("Bearer {key}")) {
            Reply::events(vec![openai_event("fine")], true, Duration::from_millis(1))
        } else {
            Reply::status(
                401,
                &format!(
                    "{{\"error\":{{\"message\":\"invalid key {}\"}}}}",
                    seen.header("authorization").unwrap_or("")
                ),
            )
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("key");
    std::fs::write(&file, format!("{key}\n")).unwrap();
    let mut cfg = config(RemoteKind::OpenAi, &mock.url());
    cfg.model = Some("m".into());
    cfg.api_key_file = Some(file.clone());
    let backend = RemoteBackend::new(cfg.clone()).unwrap();
    let c = complete_blocking(&backend, fim("a", ""), CancelToken::new()).unwrap();
    assert_eq!(c.text, "fine");
    for seen in mock.seen.lock().unwrap().iter() {
        assert_eq!(
            seen.header("authorization"),
            Some(format!("Bearer {key}").as_str())
        );
    }

    // From the environment.
    std::env::set_var("GHOSTLINE_TEST_KEY_H6", key);
    let mut env_cfg = cfg.clone();
    env_cfg.api_key_file = None;
    env_cfg.api_key_env = "GHOSTLINE_TEST_KEY_H6".into();
    let backend = RemoteBackend::new(env_cfg).unwrap();
    let c = complete_blocking(&backend, fim("a", ""), CancelToken::new()).unwrap();
    assert_eq!(c.text, "fine");

    // A wrong key: a clear error that does not contain it.
    let wrong = "sk-wrong-key-987654321";
    std::fs::write(&file, wrong).unwrap();
    let backend = RemoteBackend::new(cfg.clone()).unwrap();
    let err = complete_blocking(&backend, fim("a", ""), CancelToken::new()).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("401") && msg.contains("API_KEY"), "{msg}");
    assert!(!msg.contains(wrong) && !msg.contains(key), "{msg}");
    assert!(!format!("{err:?}").contains(wrong));

    // A key file that cannot be read: an error naming the file only.
    let mut missing = cfg;
    missing.api_key_file = Some(dir.path().join("nope"));
    let e = RemoteBackend::new(missing).err().unwrap().to_string();
    assert!(e.contains("nope"), "{e}");

    let logged = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(logged.contains("remote backend ready"), "logs are captured");
    assert!(!logged.contains(key) && !logged.contains(wrong), "{logged}");
}
