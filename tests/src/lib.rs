//! A small LSP client for end-to-end tests and benchmarks: it spawns the real `ghostline`
//! binary and talks to it over stdio exactly as an editor does.
//!
//! - Content-Length framing both ways; anything on the server's stdout that is not a framed
//!   JSON-RPC message is recorded as a protocol violation ([`Server::protocol_errors`]).
//! - Requests are matched with responses by id; every response is kept, so a test can check
//!   that each request was answered exactly once.
//! - Notifications and server-to-client requests are collected in arrival order; the client
//!   answers `window/workDoneProgress/create` and `workspace/configuration` (with the settings
//!   given to [`Spawn::settings`]) like an editor would.
//! - Every wait has a timeout, and dropping a [`Server`] kills the process, so a test never
//!   hangs.
//!
//! It knows nothing of the server's internals.

pub mod args;
pub mod humaneval;
pub mod peer;
pub mod rng;
pub mod stats;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Default time to wait for anything.
pub const TIMEOUT: Duration = Duration::from_secs(120);

/// The `ghostline` binary: `$GHOSTLINE_BIN`, else `<target>/debug/ghostline` (honouring
/// `$CARGO_TARGET_DIR`).
pub fn binary() -> PathBuf {
    if let Some(p) = std::env::var_os("GHOSTLINE_BIN").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    let bin = target_debug().join("ghostline");
    assert!(
        bin.exists(),
        "{} does not exist: run `cargo build --bin ghostline` first (or set GHOSTLINE_BIN)",
        bin.display()
    );
    bin
}

/// `<target>/debug` of this workspace (honouring `$CARGO_TARGET_DIR`): where the binaries and
/// the examples (`examples/`) of the dev build are.
pub fn target_debug() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root");
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|t| {
            if t.is_absolute() {
                t
            } else {
                workspace.join(t)
            }
        })
        .unwrap_or_else(|| workspace.join("target"))
        .join("debug")
}

/// The model folder and the models' file names: `inference/src/model_dir.rs`, the engine's own
/// definition, compiled here too (this crate drives the binary and does not link the engine).
#[path = "../../inference/src/model_dir.rs"]
pub mod model_dir;

/// `$XDG_CACHE_HOME/ghostline/models`, else `~/.cache/ghostline/models`.
pub fn model_dir() -> PathBuf {
    model_dir::model_cache_dir()
}

/// The default 1.5B model (`$GHOSTLINE_MODEL` when set).
pub fn default_model() -> PathBuf {
    let p = model_dir::default_model_path();
    assert!(
        p.exists(),
        "model {} is missing: run `make models`",
        p.display()
    );
    p
}

/// The small 0.5B model, for tests that only need the mechanics.
pub fn small_model() -> PathBuf {
    let p = model_dir().join(model_dir::SMALL_MODEL_FILE);
    assert!(
        p.exists(),
        "model {} is missing: run `make models`",
        p.display()
    );
    p
}

/// The `file://` URI of a path on disk.
pub fn uri_of(path: &Path) -> String {
    file_uri(&path.to_string_lossy())
}

/// `n` bytes of Python: assignments and small functions (large documents for tests).
pub fn big_python(n: usize) -> String {
    let mut s = String::with_capacity(n + 64);
    let mut i = 0;
    while s.len() < n {
        if i % 10 == 0 {
            s.push_str(&format!("def f_{i}(a, b):\n    return a + b + {i}\n\n"));
        } else {
            s.push_str(&format!("value_{i} = {i}\n"));
        }
        i += 1;
    }
    s
}

/// A `file://` URI for a path (need not exist).
pub fn file_uri(path: &str) -> String {
    format!("file://{path}")
}

/// A JSON-RPC response.
#[derive(Debug, Clone)]
pub struct Response {
    /// The id.
    pub id: Value,
    /// `result` (`Null` when absent).
    pub result: Value,
    /// `error`, when present.
    pub error: Option<Value>,
    /// When it arrived.
    pub at: Instant,
}

impl Response {
    /// The result; panics with the error otherwise.
    pub fn ok(self) -> Value {
        if let Some(e) = self.error {
            panic!("request {} failed: {e}", self.id);
        }
        self.result
    }

    /// The error code, when it is an error.
    pub fn error_code(&self) -> Option<i64> {
        self.error.as_ref().and_then(|e| e["code"].as_i64())
    }
}

#[derive(Default)]
struct Shared {
    responses: Vec<Response>,
    /// Notifications and server-to-client requests, in order.
    messages: Vec<Value>,
    protocol_errors: Vec<String>,
    closed: bool,
    stderr: String,
}

struct State {
    shared: Mutex<Shared>,
    changed: Condvar,
}

impl State {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// How to start the server.
#[derive(Debug, Clone, Default)]
pub struct Spawn {
    /// Extra command-line arguments.
    pub args: Vec<String>,
    /// Environment variables.
    pub env: Vec<(String, String)>,
    /// What `workspace/configuration` answers (section `ghostline`).
    pub settings: Option<Value>,
    /// Never read the server's stderr (a client that ignores it); `stderr()` stays empty.
    pub ignore_stderr: bool,
}

impl Spawn {
    /// The answer to `workspace/configuration`.
    pub fn settings(mut self, settings: Value) -> Self {
        self.settings = Some(settings);
        self
    }
}

/// A running `ghostline` process.
pub struct Server {
    child: Child,
    stdin: Arc<Mutex<Option<ChildStdin>>>,
    state: Arc<State>,
    next_id: i64,
    started: Instant,
}

fn write_message(stdin: &Mutex<Option<ChildStdin>>, msg: &Value) -> std::io::Result<()> {
    let body = serde_json::to_vec(msg).expect("json");
    let mut frame = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    frame.extend_from_slice(&body);
    write_raw(stdin, &frame)
}

fn write_raw(stdin: &Mutex<Option<ChildStdin>>, bytes: &[u8]) -> std::io::Result<()> {
    let mut w = stdin.lock().unwrap_or_else(|e| e.into_inner());
    let w = w
        .as_mut()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stdin closed"))?;
    w.write_all(bytes)?;
    w.flush()
}

/// Reads one framed message; `Ok(None)` at end of stream.
fn read_message(r: &mut impl BufRead) -> Result<Option<Value>, String> {
    let mut length: Option<usize> = None;
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).map_err(|e| e.to_string())?;
        if n == 0 {
            return if length.is_none() {
                Ok(None)
            } else {
                Err("end of stream inside headers".into())
            };
        }
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("not a header line on stdout: {line:?}"))?;
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(
                value
                    .trim()
                    .parse()
                    .map_err(|_| format!("bad Content-Length {value:?}"))?,
            );
        }
    }
    let length = length.ok_or("message without Content-Length")?;
    let mut body = vec![0; length];
    r.read_exact(&mut body).map_err(|e| e.to_string())?;
    serde_json::from_slice(&body)
        .map_err(|e| format!("body is not JSON ({e}): {}", String::from_utf8_lossy(&body)))
}

impl Server {
    /// Starts the binary with `--log-level info` plus `spawn.args`.
    pub fn spawn(spawn: Spawn) -> Server {
        let mut cmd = Command::new(binary());
        cmd.arg("serve")
            .args(&spawn.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in &spawn.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn ghostline");
        let stdin = Arc::new(Mutex::new(Some(child.stdin.take().expect("stdin"))));
        let stdout = child.stdout.take().expect("stdout");
        let stderr = child.stderr.take().expect("stderr");
        let state = Arc::new(State {
            shared: Mutex::new(Shared::default()),
            changed: Condvar::new(),
        });

        let s = state.clone();
        let ignore_stderr = spawn.ignore_stderr;
        std::thread::spawn(move || {
            if ignore_stderr {
                // Keep the pipe open and unread until the process ends.
                let _stderr = stderr;
                while !s.lock().closed {
                    std::thread::sleep(Duration::from_millis(50));
                }
                return;
            }
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut g = s.lock();
                g.stderr.push_str(&line);
                g.stderr.push('\n');
                drop(g);
                s.changed.notify_all();
            }
        });

        let s = state.clone();
        let w = stdin.clone();
        let settings = spawn.settings.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stdout);
            loop {
                match read_message(&mut r) {
                    Ok(Some(msg)) => {
                        let has_method = msg.get("method").is_some();
                        let has_id = msg.get("id").is_some();
                        if has_method && has_id {
                            // A request from the server: answer like an editor.
                            let result = match msg["method"].as_str() {
                                Some("workspace/configuration") => {
                                    let n = msg["params"]["items"].as_array().map_or(1, Vec::len);
                                    Value::Array(vec![settings.clone().unwrap_or(Value::Null); n])
                                }
                                _ => Value::Null,
                            };
                            let _ = write_message(
                                &w,
                                &json!({"jsonrpc": "2.0", "id": msg["id"], "result": result}),
                            );
                        }
                        let mut g = s.lock();
                        if has_method {
                            g.messages.push(msg);
                        } else if has_id {
                            g.responses.push(Response {
                                id: msg["id"].clone(),
                                result: msg.get("result").cloned().unwrap_or(Value::Null),
                                error: msg.get("error").cloned(),
                                at: Instant::now(),
                            });
                        } else {
                            g.protocol_errors
                                .push(format!("neither request nor response: {msg}"));
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        s.lock().protocol_errors.push(e);
                        s.changed.notify_all();
                        break;
                    }
                }
                s.changed.notify_all();
            }
            s.lock().closed = true;
            s.changed.notify_all();
        });

        Server {
            child,
            stdin,
            state,
            next_id: 0,
            started: Instant::now(),
        }
    }

    /// Sends a raw message.
    pub fn send(&self, msg: &Value) {
        write_message(&self.stdin, msg).expect("write to ghostline");
    }

    /// Writes raw bytes to the server's stdin (bad frames, partial frames).
    pub fn send_raw(&self, bytes: &[u8]) {
        write_raw(&self.stdin, bytes).expect("write to ghostline");
    }

    /// Closes the server's stdin.
    pub fn close_stdin(&self) {
        self.stdin.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// Waits up to `timeout` for the process to end; its status, or `None` if still running.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sends a request and returns its id without waiting.
    pub fn send_request(&mut self, method: &str, params: Value) -> i64 {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    /// Sends a notification.
    pub fn notify(&self, method: &str, params: Value) {
        self.send(&json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// Waits for `cond` on the shared state, up to `timeout`.
    fn wait_for<T>(
        &self,
        timeout: Duration,
        mut cond: impl FnMut(&Shared) -> Option<T>,
    ) -> Option<T> {
        let deadline = Instant::now() + timeout;
        let mut g = self.state.lock();
        loop {
            if let Some(t) = cond(&g) {
                return Some(t);
            }
            let now = Instant::now();
            if now >= deadline || g.closed {
                return cond(&g);
            }
            g = self
                .state
                .changed
                .wait_timeout(g, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Waits for the response to request `id`.
    pub fn response(&self, id: i64, timeout: Duration) -> Response {
        self.wait_for(timeout, |s| {
            s.responses.iter().find(|r| r.id == json!(id)).cloned()
        })
        .unwrap_or_else(|| {
            panic!(
                "no response to request {id} within {timeout:?}\n--- server log ---\n{}",
                self.stderr()
            )
        })
    }

    /// Sends a request and waits for its response.
    pub fn request(&mut self, method: &str, params: Value) -> Response {
        let id = self.send_request(method, params);
        self.response(id, TIMEOUT)
    }

    /// All responses so far.
    pub fn responses(&self) -> Vec<Response> {
        self.state.lock().responses.clone()
    }

    /// How many responses request `id` got so far.
    pub fn response_count(&self, id: i64) -> usize {
        self.state
            .lock()
            .responses
            .iter()
            .filter(|r| r.id == json!(id))
            .count()
    }

    /// Waits for a notification (or server request) with `method` whose params satisfy `pred`,
    /// among those received from index `from` on.
    pub fn wait_message(
        &self,
        from: usize,
        method: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Option<Value> {
        self.wait_for(timeout, |s| {
            s.messages
                .iter()
                .skip(from)
                .find(|m| m["method"] == method && pred(&m["params"]))
                .cloned()
        })
    }

    /// Number of notifications and server requests received so far.
    pub fn message_count(&self) -> usize {
        self.state.lock().messages.len()
    }

    /// All notifications and server requests received so far.
    pub fn messages(&self) -> Vec<Value> {
        self.state.lock().messages.clone()
    }

    /// Anything on stdout that was not a well-formed message.
    pub fn protocol_errors(&self) -> Vec<String> {
        self.state.lock().protocol_errors.clone()
    }

    /// What the server wrote to stderr.
    pub fn stderr(&self) -> String {
        self.state.lock().stderr.clone()
    }

    /// Waits until the server's stderr satisfies `pred` (logs arrive on their own pipe, a little
    /// after the responses they describe).
    pub fn wait_stderr(&self, timeout: Duration, pred: impl Fn(&str) -> bool) -> bool {
        self.wait_for(timeout, |s| pred(&s.stderr).then_some(()))
            .is_some()
    }

    /// Time since the process started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// `initialize` (with `capabilities` and `initialization_options`) then `initialized`.
    pub fn initialize(&mut self, capabilities: Value, options: Value) -> Value {
        self.initialize_in(&[], capabilities, options)
    }

    /// Like [`initialize`](Self::initialize), with workspace folders.
    pub fn initialize_in(
        &mut self,
        folders: &[&Path],
        capabilities: Value,
        options: Value,
    ) -> Value {
        let folders: Vec<Value> = folders
            .iter()
            .map(|f| json!({"uri": file_uri(&f.to_string_lossy()), "name": f.file_name().map(|n| n.to_string_lossy().into_owned())}))
            .collect();
        let params = json!({
            "processId": std::process::id(),
            "clientInfo": {"name": "ghostline-tests"},
            "rootUri": null,
            "workspaceFolders": if folders.is_empty() { Value::Null } else { Value::Array(folders) },
            "capabilities": capabilities,
            "initializationOptions": options,
        });
        let result = self.request("initialize", params).ok();
        self.notify("initialized", json!({}));
        result
    }

    /// Waits until `ghostline/status` says `state` (e.g. `ready`, `error`).
    pub fn wait_status(&self, from: usize, state: &str, timeout: Duration) -> Value {
        self.wait_message(from, "ghostline/status", timeout, |p| p["state"] == state)
            .unwrap_or_else(|| {
                panic!(
                    "no ghostline/status {state} within {timeout:?}\n--- server log ---\n{}",
                    self.stderr()
                )
            })
    }

    /// Waits, from message `from` on, for what a fatal engine error brings: status `error`,
    /// an error message saying the engine restarts, and status `ready` again after the first
    /// backoff (1 s), without a server restart.
    pub fn wait_engine_restart(&self, from: usize) {
        self.wait_status(from, "error", Duration::from_secs(5));
        self.wait_message(from, "window/showMessage", Duration::from_secs(5), |p| {
            p["type"] == 1
                && p["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("restarting"))
        })
        .expect("an error message");
        self.wait_status(from, "ready", Duration::from_secs(10));
    }

    /// `textDocument/didOpen`.
    pub fn open(&self, uri: &str, language_id: &str, text: &str) {
        self.notify(
            "textDocument/didOpen",
            json!({"textDocument": {"uri": uri, "languageId": language_id, "version": 1, "text": text}}),
        );
    }

    /// Sends `textDocument/inlineCompletion` at (line, character) without waiting.
    pub fn send_inline(&mut self, uri: &str, line: u32, character: u32, invoked: bool) -> i64 {
        self.send_request(
            "textDocument/inlineCompletion",
            json!({
                "textDocument": {"uri": uri},
                "position": {"line": line, "character": character},
                "context": {"triggerKind": if invoked { 1 } else { 2 }},
            }),
        )
    }

    /// `textDocument/inlineCompletion` and its items.
    pub fn inline(&mut self, uri: &str, line: u32, character: u32, invoked: bool) -> Vec<Value> {
        let id = self.send_inline(uri, line, character, invoked);
        let result = self.response(id, TIMEOUT).ok();
        result["items"].as_array().cloned().unwrap_or_default()
    }

    /// The text the server holds for `uri` (test-only command).
    pub fn document_text(&mut self, uri: &str) -> String {
        let r = self
            .request(
                "workspace/executeCommand",
                json!({"command": "ghostline.debugDocument", "arguments": [uri]}),
            )
            .ok();
        r["text"].as_str().expect("text").to_owned()
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The process's resident set size in KiB (`VmRSS` of `/proc/<pid>/status`); `None` when it
    /// cannot be read (not Linux, or the process ended).
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    }

    /// Sends `exit` (without `shutdown`) and waits up to `timeout` for the process to end.
    pub fn exit_without_shutdown(mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        self.notify("exit", Value::Null);
        self.wait_exit(timeout)
    }

    /// `shutdown` then `exit`; waits for the process to end.
    pub fn shutdown(mut self) -> std::process::ExitStatus {
        let _ = self.request("shutdown", Value::Null);
        self.notify("exit", Value::Null);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                panic!("ghostline did not exit after shutdown/exit");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The usual client capabilities of an editor with inline completion and work-done progress.
pub fn editor_capabilities() -> Value {
    json!({
        "window": {"workDoneProgress": true, "showMessage": {}},
        "workspace": {"configuration": true, "didChangeConfiguration": {"dynamicRegistration": false}},
        "textDocument": {
            "inlineCompletion": {"dynamicRegistration": false},
            "completion": {"completionItem": {"snippetSupport": false}},
            "synchronization": {"didSave": true},
        },
    })
}

/// Serialises tests that load models, so that two loads do not compete for the two cores.
pub fn model_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Byte offset in `text` of an LSP position (line, UTF-16 character), clamped to the line's end
/// and to the text.
pub fn utf16_offset(text: &str, line: u64, character: u64) -> usize {
    let mut start = 0;
    for _ in 0..line {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => return text.len(),
        }
    }
    let mut units = 0u64;
    for (i, c) in text[start..].char_indices() {
        if units >= character || c == '\n' {
            return start + i;
        }
        units += c.len_utf16() as u64;
    }
    text.len()
}
