//! The remote backends against a real llama.cpp `llama-server`, through the real `ghostline`
//! binary: for `backend: "llama-server"` (`/infill`) and `backend: "openai"` (llama-server's
//! `/v1`), a completion (with repository context), cancellation mid-stream (the server's slot
//! is freed), a wrong API key (one clear error, no key in it), a server that is down and comes
//! back, the explain command, and `ghostline complete --backend …` from the command line.
//!
//! The server is started on a free loopback port with the 0.5B model, `--parallel 2` and an API
//! key. Its binary is `$GHOSTLINE_PEER_BIN`, else what `scripts/build-llama-server.sh` prints
//! (the script only prints the path when the binary exists; `make test-model` runs it first).
//! Real model: `#[ignore]`d in the fast tier. Generations are not asserted, only that answers
//! are well-formed and non-empty where a model always says something, statuses and generous
//! time bounds.
//!
//! One test runs in the fast tier, against a stand-in server without a model: the repository
//! context reaches `/infill` as `input_extra` chunks, dependencies first. Not here: TLS, vLLM
//! itself, the team benchmark.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ghostline_tests::{
    editor_capabilities, file_uri, model_lock, peer, small_model, Server, Spawn,
};
use serde_json::{json, Value};

const KEY: &str = "ghostline-test-key-5f1c9a";

/// The llama-server binary, found the way `scripts/build-llama-server.sh` prints it.
fn llama_server_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("GHOSTLINE_PEER_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/build-llama-server.sh");
    let out = Command::new("bash")
        .arg(&script)
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/build-llama-server.sh");
    assert!(out.status.success(), "scripts/build-llama-server.sh failed");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let path = PathBuf::from(stdout.lines().last().unwrap_or("").trim());
    assert!(
        path.is_file(),
        "scripts/build-llama-server.sh printed {path:?}, which is not a file"
    );
    path
}

fn free_port() -> u16 {
    peer::free_port().expect("a free port")
}

/// A running llama-server with the 0.5B model: two slots, the test's key.
struct LlamaServer(peer::LlamaServer);

impl LlamaServer {
    fn start(port: u16) -> LlamaServer {
        let args = ["--parallel", "2", "-c", "8192", "-t", "2", "-tb", "2"];
        let launch = peer::Launch {
            bin: llama_server_bin(),
            model: small_model(),
            args: args.iter().map(|a| a.to_string()).collect(),
            port: Some(port),
            api_key: Some(KEY.into()),
            log: std::env::temp_dir().join(format!("ghostline-remote-test-{port}.log")),
            healthy_within: Duration::from_secs(120),
        };
        LlamaServer(peer::LlamaServer::start(launch).unwrap_or_else(|e| panic!("{e}")))
    }

    fn endpoint(&self) -> String {
        self.0.endpoint()
    }

    /// `GET path` with the key: status and body.
    fn get(&self, path: &str) -> Option<(u16, String)> {
        self.0.get(path, Duration::from_secs(10))
    }

    /// Whether any slot is generating (`GET /slots`).
    fn busy(&self) -> bool {
        let Some((200, body)) = self.get("/slots") else {
            return true;
        };
        // The body may be chunked: find the JSON array.
        let json = body
            .find('[')
            .and_then(|a| body.rfind(']').map(|b| &body[a..=b]))
            .unwrap_or("[]");
        let slots: Value = serde_json::from_str(json).unwrap_or(json!([]));
        slots
            .as_array()
            .is_some_and(|a| a.iter().any(|s| s["is_processing"] == true))
    }
}

/// A workspace: `main.py` imports `geometry.py` (repository context).
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        dir.path().join("geometry.py"),
        "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = y\n\n\ndef distance(a, b):\n    return ((a.x - b.x) ** 2 + (a.y - b.y) ** 2) ** 0.5\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("main.py"), MAIN).unwrap();
    std::fs::write(dir.path().join("sort.py"), SORT).unwrap();
    dir
}

/// An empty function body: an invoked completion there plans a block and runs for a while.
const SORT: &str = "def merge_sort(items):\n    \n";

const MAIN: &str = "from geometry import Point, distance\n\n\ndef perimeter(points):\n    total = 0\n    for i in range(len(points)):\n        total += \n    return total\n";

fn settings(backend: &str, endpoint: &str) -> Value {
    json!({"backend": backend, "remote": {"endpoint": endpoint, "timeoutMs": 3000},
           "timeBudgetMs": 20000, "invokedTimeBudgetMs": 30000})
}

/// ghostline connected to `endpoint` with `key` in its environment, `main.py` open.
fn ghostline(backend: &str, endpoint: &str, key: &str, dir: &Path) -> (Server, String) {
    let options = settings(backend, endpoint);
    let spawn = Spawn {
        env: vec![("GHOSTLINE_API_KEY".into(), key.into())],
        ..Spawn::default()
    }
    .settings(options.clone());
    let mut s = Server::spawn(spawn);
    s.initialize_in(&[dir], editor_capabilities(), options);
    let uri = file_uri(&dir.join("main.py").to_string_lossy());
    s.open(&uri, "python", MAIN);
    (s, uri)
}

fn show_messages(s: &Server, from: usize) -> Vec<String> {
    s.messages()
        .iter()
        .skip(from)
        .filter(|m| m["method"] == "window/showMessage")
        .map(|m| m["params"]["message"].as_str().unwrap_or("").to_owned())
        .collect()
}

fn last_completion(s: &mut Server) -> Value {
    s.request(
        "workspace/executeCommand",
        json!({"command": "ghostline.debugLastCompletion", "arguments": []}),
    )
    .ok()
}

fn completes(backend: &str) {
    let _model = model_lock();
    let server = LlamaServer::start(free_port());
    let dir = workspace();
    let (mut s, uri) = ghostline(backend, &server.endpoint(), KEY, dir.path());
    let ready = s.wait_status(0, "ready", Duration::from_secs(60));
    assert!(
        ready["params"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&server.endpoint())),
        "{ready}"
    );
    let t = Instant::now();
    let items = s.inline(&uri, 6, 17, true);
    let took = t.elapsed();
    assert!(took < Duration::from_secs(60), "took {took:?}");
    assert!(!items.is_empty(), "no suggestion\n{}", s.stderr());
    let text = items[0]["insertText"].as_str().expect("insertText");
    assert!(!text.trim().is_empty(), "{items:?}");
    let stats = last_completion(&mut s);
    assert!(stats["generatedTokens"].as_u64() > Some(0), "{stats}");
    assert!(stats["promptTokens"].as_u64() > Some(0), "{stats}");
    // The same place again: the suggestion cache answers without the server.
    let t = Instant::now();
    let again = s.inline(&uri, 6, 17, true);
    assert!(!again.is_empty());
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(s.protocol_errors().is_empty());
    assert_eq!(s.shutdown().code(), Some(0));
}

fn cancels_mid_stream(backend: &str) {
    let _model = model_lock();
    let server = LlamaServer::start(free_port());
    let dir = workspace();
    let (mut s, uri) = ghostline(backend, &server.endpoint(), KEY, dir.path());
    s.wait_status(0, "ready", Duration::from_secs(60));
    s.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"ghostline": {"maxTokens": 1024}}}),
    );
    let sort = file_uri(&dir.path().join("sort.py").to_string_lossy());
    s.open(&sort, "python", SORT);
    let id = s.send_inline(&sort, 1, 4, true);
    let t = Instant::now();
    while !server.busy() && t.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let cancelled_at = Instant::now();
    s.notify("$/cancelRequest", json!({"id": id}));
    let r = s.response(id, Duration::from_secs(10));
    assert!(r.error_code() == Some(-32800) || r.error.is_none(), "{r:?}");
    assert!(cancelled_at.elapsed() < Duration::from_secs(5));
    assert_eq!(s.response_count(id), 1, "exactly one response");
    // The connection was closed: the server stops generating for it.
    let t = Instant::now();
    while server.busy() {
        assert!(
            t.elapsed() < Duration::from_secs(15),
            "llama-server still generating 15 s after the cancel"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // And the next request is answered.
    let items = s.inline(&uri, 6, 17, true);
    assert!(!items.is_empty(), "{}", s.stderr());
    assert_eq!(s.shutdown().code(), Some(0));
}

fn wrong_key_is_one_clear_error(backend: &str) {
    let _model = model_lock();
    let server = LlamaServer::start(free_port());
    let dir = workspace();
    let wrong = "not-the-key-0042";
    let (mut s, uri) = ghostline(backend, &server.endpoint(), wrong, dir.path());
    let status = s.wait_status(0, "error", Duration::from_secs(60));
    let msg = status["params"]["message"]
        .as_str()
        .unwrap_or("")
        .to_owned();
    assert!(
        msg.contains("401") && msg.contains("GHOSTLINE_API_KEY"),
        "{msg}"
    );
    // Keystrokes: answered at once, with nothing; no further messages.
    for col in [13u32, 14, 15, 16, 17] {
        let t = Instant::now();
        let items = s.inline(&uri, 6, col, false);
        assert!(items.is_empty());
        assert!(t.elapsed() < Duration::from_secs(5));
    }
    std::thread::sleep(Duration::from_millis(300));
    let shown = show_messages(&s, 0);
    assert_eq!(shown.len(), 1, "{shown:?}");
    assert!(shown[0].contains("401"), "{shown:?}");
    let log = s.stderr();
    for text in shown.iter().chain([&msg, &log]) {
        assert!(
            !text.contains(wrong) && !text.contains(KEY),
            "key leaked: {text}"
        );
    }
    assert_eq!(s.shutdown().code(), Some(0));
}

fn down_and_back(backend: &str) {
    let _model = model_lock();
    let port = free_port();
    let dir = workspace();
    let endpoint = format!("http://127.0.0.1:{port}");
    let (mut s, uri) = ghostline(backend, &endpoint, KEY, dir.path());
    let status = s.wait_status(0, "error", Duration::from_secs(30));
    assert!(
        status["params"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(&endpoint) && m.contains("unavailable")),
        "{status}"
    );
    for col in [13u32, 14, 15, 16, 17] {
        let t = Instant::now();
        assert!(s.inline(&uri, 6, col, false).is_empty());
        assert!(t.elapsed() < Duration::from_secs(5));
    }
    let shown = show_messages(&s, 0);
    assert_eq!(
        shown.len(),
        1,
        "one message, not one per keystroke: {shown:?}"
    );
    // The server comes up: ghostline notices by itself.
    let from = s.message_count();
    let server = LlamaServer::start(port);
    s.wait_status(from, "ready", Duration::from_secs(60));
    let items = s.inline(&uri, 6, 17, true);
    assert!(!items.is_empty(), "{}", s.stderr());
    // Down again: one error status; back: ready.
    let from = s.message_count();
    drop(server);
    let _ = s.inline(&uri, 6, 16, true);
    s.wait_status(from, "error", Duration::from_secs(30));
    let from = s.message_count();
    let _server = LlamaServer::start(port);
    s.wait_status(from, "ready", Duration::from_secs(60));
    assert_eq!(s.shutdown().code(), Some(0));
}

fn explains(backend: &str) {
    let _model = model_lock();
    let server = LlamaServer::start(free_port());
    let dir = workspace();
    let (mut s, uri) = ghostline(backend, &server.endpoint(), KEY, dir.path());
    s.wait_status(0, "ready", Duration::from_secs(60));
    s.notify(
        "workspace/didChangeConfiguration",
        json!({"settings": {"ghostline": {"explainMaxTokens": 64}}}),
    );
    let t = Instant::now();
    let r = s
        .request(
            "workspace/executeCommand",
            json!({"command": "ghostline.explainFunction",
                   "arguments": [{"uri": uri, "position": {"line": 4, "character": 6}}]}),
        )
        .ok();
    let text = r.as_str().expect("markdown");
    assert!(text.contains("perimeter"), "{text}");
    assert!(text.len() > "perimeter".len() + 20, "{text}");
    assert!(t.elapsed() < Duration::from_secs(120));
    assert_eq!(s.shutdown().code(), Some(0));
}

/// `ghostline complete FILE:LINE:COL --backend … --endpoint …` against the real server: the
/// key from the environment, one completion on stdout, exit 0; with a wrong key, a clear error
/// on stderr without the key, exit non-zero.
fn completes_from_the_command_line(backend: &str) {
    let _model = model_lock();
    let server = LlamaServer::start(free_port());
    let dir = workspace();
    let file = dir.path().join("main.py");
    let run = |key: &str| {
        Command::new(ghostline_tests::binary())
            .arg("complete")
            .arg(format!("{}:7:18", file.display()))
            .args(["--backend", backend, "--endpoint", &server.endpoint()])
            .args(["--max-tokens", "24", "--time-budget-ms", "60000"])
            .env("GHOSTLINE_API_KEY", key)
            .stdin(Stdio::null())
            .output()
            .expect("run ghostline complete")
    };
    let out = run(KEY);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}\n{stderr}", out.status);
    assert!(
        !stdout.trim().is_empty(),
        "no completion; stderr:\n{stderr}"
    );
    assert!(!stderr.contains(KEY), "the key reached stderr");
    let wrong = "ghostline-wrong-key-0000";
    let out = run(wrong);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a wrong key succeeded: {stderr}");
    assert!(
        stderr.contains("key") || stderr.contains("401") || stderr.contains("nauthori"),
        "{stderr}"
    );
    assert!(!stderr.contains(wrong), "the key reached stderr: {stderr}");
}

macro_rules! both_backends {
    ($($name:ident: $body:ident;)*) => {
        mod llama_server {
            $(
                #[test]
                #[ignore = "real model: make test-model"]
                fn $name() {
                    super::$body("llama-server");
                }
            )*
        }
        mod openai {
            $(
                #[test]
                #[ignore = "real model: make test-model"]
                fn $name() {
                    super::$body("openai");
                }
            )*
        }
    };
}

both_backends! {
    completes_with_repository_context: completes;
    cancellation_mid_stream_frees_the_server: cancels_mid_stream;
    a_wrong_key_is_one_clear_error: wrong_key_is_one_clear_error;
    a_server_that_is_down_comes_back: down_and_back;
    explains_a_function: explains;
    completes_from_the_command_line: completes_from_the_command_line;
}

/// A stand-in llama-server (no model): answers `/v1/models` and streams one `/infill` event,
/// recording every `/infill` body. Everything else is 404.
fn mock_llama_server() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<Value>>>) {
    use std::io::{BufRead, BufReader};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: std::sync::Arc<std::sync::Mutex<Vec<Value>>> = Default::default();
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let record = record.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("").to_owned();
                let mut len = 0;
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                    if let Some((n, v)) = h.split_once(':') {
                        if n.eq_ignore_ascii_case("content-length") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                    }
                }
                let mut body = vec![0; len];
                let _ = reader.read_exact(&mut body);
                let (status, ctype, text) = match path.as_str() {
                    "/v1/models" => (
                        200,
                        "application/json",
                        json!({"data": [{"id": "qwen2.5-coder-mock"}]}).to_string(),
                    ),
                    "/infill" => {
                        record
                            .lock()
                            .unwrap()
                            .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                        (
                            200,
                            "text/event-stream",
                            format!(
                                "data: {}\n\n",
                                json!({"content": "points[i]", "stop": true})
                            ),
                        )
                    }
                    _ => (404, "application/json", "{}".to_owned()),
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status} X\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
            });
        }
    });
    (port, seen)
}

/// Fast tier (no model): the repository context reaches llama-server as `input_extra` chunks,
/// dependencies first (the order of the local prompt), and the answer comes back shaped.
#[test]
fn llama_server_gets_repository_context_as_input_extra_in_topological_order() {
    let (port, seen) = mock_llama_server();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("geometry.py"),
        "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = y\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("shapes.py"),
        "from geometry import Point\n\n\ndef square(n):\n    return [Point(0, 0), Point(n, 0), Point(n, n), Point(0, n)]\n",
    )
    .unwrap();
    let main =
        "from shapes import square\n\n\ndef corners(n):\n    points = square(n)\n    return \n";
    std::fs::write(dir.path().join("main.py"), main).unwrap();
    let endpoint = format!("http://127.0.0.1:{port}");
    let options = settings("llama-server", &endpoint);
    let mut s = Server::spawn(Spawn::default().settings(options.clone()));
    s.initialize_in(&[dir.path()], editor_capabilities(), options);
    s.wait_status(0, "ready", Duration::from_secs(30));
    let uri = file_uri(&dir.path().join("main.py").to_string_lossy());
    s.open(&uri, "python", main);
    let items = s.inline(&uri, 5, 11, true);
    assert_eq!(items.len(), 1, "{items:?}\n{}", s.stderr());
    assert!(
        items[0]["insertText"]
            .as_str()
            .unwrap()
            .contains("points[i]"),
        "{items:?}"
    );
    let bodies = seen.lock().unwrap().clone();
    let body = bodies.last().expect("an /infill request");
    let files: Vec<&str> = body["input_extra"]
        .as_array()
        .expect("input_extra")
        .iter()
        .map(|c| c["filename"].as_str().unwrap_or(""))
        .collect();
    let at = |name: &str| files.iter().position(|f| f.ends_with(name));
    let (g, sh) = (at("geometry.py"), at("shapes.py"));
    assert!(g.is_some() && sh.is_some() && g < sh, "{files:?}");
    assert!(body["input_prefix"]
        .as_str()
        .unwrap()
        .ends_with("    return "));
    assert_eq!(body["cache_prompt"], true);
    assert!(body["n_predict"].as_u64().is_some_and(|n| n > 0));
    assert!(body["t_max_predict_ms"].as_u64().is_some_and(|n| n > 0));
    assert_eq!(s.shutdown().code(), Some(0));
}

/// Fast tier (no model): with every log level at trace, the API key still never reaches the
/// log (the HTTP client's wire dump is capped at `warn`), though requests carrying it were sent.
#[test]
fn the_api_key_never_reaches_a_trace_log() {
    let (port, seen) = mock_llama_server();
    let dir = workspace();
    let endpoint = format!("http://127.0.0.1:{port}");
    let options = settings("llama-server", &endpoint);
    let spawn = Spawn {
        env: vec![
            ("GHOSTLINE_API_KEY".into(), KEY.into()),
            ("GHOSTLINE_LOG".into(), "trace".into()),
        ],
        ..Spawn::default()
    }
    .settings(options.clone());
    let mut s = Server::spawn(spawn);
    s.initialize_in(&[dir.path()], editor_capabilities(), options);
    s.wait_status(0, "ready", Duration::from_secs(30));
    let uri = file_uri(&dir.path().join("main.py").to_string_lossy());
    s.open(&uri, "python", MAIN);
    let items = s.inline(&uri, 6, 17, true);
    assert!(!items.is_empty(), "{}", s.stderr());
    assert!(
        !seen.lock().unwrap().is_empty(),
        "no /infill request was sent"
    );
    let log = s.stderr();
    assert!(log.contains("TRACE"), "trace logging is on");
    assert!(!log.contains(KEY), "the key reached the log");
    assert_eq!(s.shutdown().code(), Some(0));
}

/// Fast tier (no model): while the model server is down, keystrokes fail fast during the
/// backoff and the log gets no warning per keystroke (the first failure is logged once and the
/// status bar shows it).
#[test]
fn a_server_that_is_down_warns_once_not_per_keystroke() {
    let dir = workspace();
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let (mut s, uri) = ghostline("llama-server", &endpoint, KEY, dir.path());
    s.wait_status(0, "error", Duration::from_secs(30));
    let warnings = |s: &Server| {
        s.stderr()
            .lines()
            .filter(|l| l.contains("WARN"))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let _ = s.inline(&uri, 6, 13, false);
    let before = warnings(&s);
    for col in [14u32, 15, 16, 17, 16, 15, 14, 13, 14, 15, 16, 17] {
        let t = Instant::now();
        assert!(s.inline(&uri, 6, col, false).is_empty());
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    }
    let after = warnings(&s);
    assert!(
        !after.iter().any(|l| l.contains("completion failed")),
        "a warning per keystroke: {after:#?}"
    );
    assert!(
        after.len() <= before.len() + 1,
        "warnings grew with keystrokes: {before:#?} then {after:#?}"
    );
    assert_eq!(s.shutdown().code(), Some(0));
}
