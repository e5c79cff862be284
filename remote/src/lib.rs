//! Remote model backends: llama.cpp's `llama-server` and OpenAI-compatible servers (vLLM,
//! llama-server's `/v1`, …) behind the same [`Backend`] seam as the in-process engine.
//!
//! Everything that makes a completion good stays in the language server (documents, repository
//! context, the prompt's layout, shaping, the cache, typed-through reuse, cancellation); only
//! the model call goes over the network:
//!
//! - `llama-server`: `POST {endpoint}/infill` with the prefix, suffix and the repository
//!   context as `input_extra` chunks; the server formats the FIM prompt with the model's own
//!   tokens. Chat through `{endpoint}/v1/chat/completions`.
//! - `openai`: `POST {endpoint}/v1/completions` with a raw FIM prompt rendered here in the
//!   model's format ([`FimFormat::render`]; vLLM rejects `suffix`). Chat through
//!   `/v1/chat/completions`.
//!
//! Both stream (server-sent events) and the [`StopChecker`] runs on the text as pieces arrive:
//! when a stop rule fires, the request is cancelled or the deadline passes, the HTTP response is
//! dropped, which closes its connection (an unfinished response is never put back in the pool),
//! so the server stops generating without us relying on it noticing anything else. Every
//! request carries a token cap, and a time limit (`t_max_predict_ms` for llama-server, completion
//! and chat; the `openai` API has no such field, so there the client's own timeout on the whole
//! exchange, at most the request's deadline, is the limit; both have that timeout).
//!
//! **HTTP client.** `ureq` 3 (blocking, rustls): the [`Backend`] seam is a callback on a thread
//! of the backend's choosing, so a blocking client on one thread per request fits it without a
//! second async runtime inside the server's tokio one; one shared `ureq::Agent` keeps
//! connections alive between requests (HTTP/1.1 keep-alive; ureq does not speak HTTP/2, which
//! buys nothing here with one request in flight per editor). A blocked read cannot be
//! interrupted from outside, so a small watcher thread answers a cancelled or overdue request
//! at once, and the reader closes the connection at its next piece or when the request's
//! timeout (at most the deadline) fires.
//!
//! **Security.** The API key comes from `GHOSTLINE_API_KEY` or a key file, never from the
//! settings (editors sync those); it is sent as `Authorization: Bearer`, never logged and
//! scrubbed from every error message. (ureq's TRACE log level dumps the wire unredacted, so the
//! server's log filter always caps `ureq` and `ureq_proto` at `warn`, whatever level is asked.) HTTPS uses rustls with the system's root certificates plus an optional
//! extra CA file.
//!
//! **A server that is down** yields one clear error, then requests fail fast with that same
//! error until a backoff (0.5 s doubling up to 30 s) elapses, and the next request tries again.
//!
//! Not here: KV-cache bookkeeping (the server's `cache_prompt` does that; [`Stats`] report no
//! reused tokens), token healing (ignored), sampling beyond greedy.

mod http;
mod stream;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ghostline_inference::backend::{ChatReply, ChatStream, FimReply};
use ghostline_inference::stop::{StopChecker, StopReason};
use ghostline_inference::{
    Backend, CancelToken, ChatOutput, ChatRequest, Completion, EngineError, FimFormat, FimOrder,
    FimRequest, ModelInfo, Stats,
};
use serde_json::{json, Value};

pub use http::ApiKey;

/// The environment variable the API key is read from (when no key file is configured).
pub const API_KEY_ENV: &str = "GHOSTLINE_API_KEY";

/// Time limit of a request that has no deadline of its own.
const DEFAULT_REQUEST_LIMIT: Duration = Duration::from_secs(120);
/// First and longest wait after a failure before the server is tried again.
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Which API the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteKind {
    /// llama.cpp's `llama-server` (`/infill`, `/tokenize`, `/props`).
    LlamaServer,
    /// An OpenAI-compatible server (`/v1/completions`, `/v1/chat/completions`).
    OpenAi,
}

/// How to reach and use a remote server.
#[derive(Debug, Clone)]
pub struct RemoteConfig {
    /// Which API.
    pub kind: RemoteKind,
    /// Base URL, e.g. `http://127.0.0.1:8080` (for `openai`, `/v1` is appended unless present).
    pub endpoint: String,
    /// The served model's name (sent as `model`; guessed from `/v1/models` when `None`).
    pub model: Option<String>,
    /// File holding the API key; the environment variable [`api_key_env`](Self::api_key_env)
    /// is used when `None`.
    pub api_key_file: Option<PathBuf>,
    /// Environment variable holding the API key ([`API_KEY_ENV`]; tests use their own).
    pub api_key_env: String,
    /// PEM file with extra CA certificates trusted besides the system's roots.
    pub ca_file: Option<PathBuf>,
    /// Connect timeout, and the longest wait for a response to start.
    pub timeout: Duration,
    /// FIM format (preset or template); guessed from the model name when `None` (Qwen2.5-Coder
    /// when nothing matches).
    pub fim_template: Option<String>,
    /// Context window requests must fit in, when the server does not say (`/props`).
    pub context_size: usize,
    /// Token cap of a request that has none.
    pub max_tokens: usize,
}

impl RemoteConfig {
    /// Defaults for a server of `kind` at `endpoint`.
    pub fn new(kind: RemoteKind, endpoint: impl Into<String>) -> Self {
        RemoteConfig {
            kind,
            endpoint: endpoint.into(),
            model: None,
            api_key_file: None,
            api_key_env: API_KEY_ENV.to_owned(),
            ca_file: None,
            timeout: Duration::from_secs(5),
            fim_template: None,
            context_size: 4096,
            max_tokens: 128,
        }
    }
}

/// Why a remote backend could not be set up (the server being down is not one of them: that is
/// reported per request, with backoff).
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// `remote.endpoint` is missing or not an http(s) URL.
    #[error("remote.endpoint must be an http:// or https:// URL, got {0:?}")]
    Endpoint(String),
    /// The key file could not be read or is empty.
    #[error("cannot read the API key file {path}: {reason}")]
    KeyFile {
        /// The configured file.
        path: PathBuf,
        /// What went wrong (never the file's content).
        reason: String,
    },
    /// The CA file could not be read or holds no certificate.
    #[error("cannot use the CA file {path}: {reason}")]
    CaFile {
        /// The configured file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The FIM template is invalid.
    #[error(transparent)]
    Template(#[from] ghostline_inference::fim::TemplateError),
}

/// A model served over HTTP.
pub struct RemoteBackend {
    shared: Arc<Shared>,
}

struct Shared {
    kind: RemoteKind,
    /// Endpoint without a trailing `/` (and, for llama-server paths, without `/v1`).
    root: String,
    /// The OpenAI API base, ending in `/v1`.
    v1: String,
    /// The endpoint as shown in messages (no user info, no trailing `/`).
    shown: String,
    model: Option<String>,
    agent: ureq::Agent,
    key: Option<ApiKey>,
    timeout: Duration,
    info: ModelInfo,
    format: FimFormat,
    context_size: usize,
    max_tokens: usize,
    exact_counts: bool,
    counts: Mutex<HashMap<u64, usize>>,
    health: Mutex<Health>,
}

#[derive(Default)]
struct Health {
    failures: u32,
    retry_at: Option<Instant>,
    error: Option<String>,
}

impl RemoteBackend {
    /// Sets up the backend: reads the key and CA files and asks the server (briefly) for its
    /// model, context size and tokenizer. A server that does not answer is not an error here:
    /// the backend starts in backoff and requests report the failure.
    pub fn new(config: RemoteConfig) -> Result<Self, RemoteError> {
        let endpoint = config.endpoint.trim().trim_end_matches('/').to_owned();
        if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
            return Err(RemoteError::Endpoint(config.endpoint.clone()));
        }
        let root = endpoint.strip_suffix("/v1").unwrap_or(&endpoint).to_owned();
        let v1 = format!("{root}/v1");
        let shown = http::without_userinfo(&endpoint);
        let key = http::load_api_key(config.api_key_file.as_deref(), &config.api_key_env)?;
        let agent = http::agent(config.ca_file.as_deref(), config.timeout)?;
        let mut shared = Shared {
            kind: config.kind,
            root,
            v1,
            shown,
            model: config.model.clone(),
            agent,
            key,
            timeout: config.timeout,
            info: ModelInfo {
                path: PathBuf::from(&endpoint),
                name: String::new(),
                architecture: "remote".into(),
                n_params: 0,
                size_bytes: 0,
                n_ctx_train: config.context_size as u32,
                fim: None,
                has_chat_template: true,
            },
            format: FimFormat::qwen(),
            context_size: config.context_size,
            max_tokens: config.max_tokens,
            exact_counts: false,
            counts: Mutex::new(HashMap::new()),
            health: Mutex::new(Health::default()),
        };
        shared.probe();
        let format = match &config.fim_template {
            Some(t) => FimFormat::from_template(t)?,
            None => guess_format(shared.model.as_deref().unwrap_or("")),
        };
        shared.format = format.clone();
        shared.info.fim = Some(format);
        shared.info.name = match &shared.model {
            Some(m) => format!("{m} at {}", shared.shown),
            None => shared.shown.clone(),
        };
        shared.info.n_ctx_train = shared.context_size as u32;
        tracing::info!(
            endpoint = %shared.shown,
            kind = ?shared.kind,
            model = shared.model.as_deref().unwrap_or("?"),
            exact_token_counts = shared.exact_counts,
            api_key = shared.key.is_some(),
            "remote backend ready"
        );
        Ok(RemoteBackend {
            shared: Arc::new(shared),
        })
    }

    /// The last connection error while the server is in backoff, `None` while it answers.
    pub fn unavailable(&self) -> Option<String> {
        let h = self.shared.health.lock().unwrap_or_else(|e| e.into_inner());
        h.retry_at.and(h.error.clone())
    }

    /// When the server, now in backoff, will be tried again (`None` while it answers).
    pub fn retry_at(&self) -> Option<Instant> {
        lock(&self.shared.health).retry_at
    }

    /// Asks the server, briefly, whether it answers an authenticated request (`GET /v1/models`
    /// with the key; llama-server's `/health` would not check the key). Updates the backoff
    /// like a request does: `Ok` ends it, a connection error or a status that later requests
    /// would get too (401, 403, 5xx) starts or extends it. The error is the message a user
    /// sees, without the key.
    pub fn check(&self) -> Result<(), String> {
        let s = &self.shared;
        let mut req = s.agent.get(format!("{}/models", s.v1));
        if let Some(key) = &s.key {
            req = req.header("Authorization", key.bearer());
        }
        let limit = s.timeout.min(Duration::from_secs(5));
        let req = req.config().timeout_global(Some(limit)).build();
        match req.call() {
            Ok(resp) if resp.status().is_success() || resp.status().as_u16() == 404 => {
                // 404: a server without a model list still answered.
                drop(read_text(resp));
                s.succeeded();
                Ok(())
            }
            Ok(resp) => {
                let status = resp.status().as_u16();
                let detail = read_text(resp);
                let msg = http::status_message(status, &detail, &s.shown, s.key.as_ref());
                if http::status_is_persistent(status) {
                    s.failed(msg.clone());
                }
                Err(msg)
            }
            Err(e) => {
                let msg = http::describe(&e, &s.shown, s.key.as_ref());
                s.failed(msg.clone());
                Err(msg)
            }
        }
    }
}

/// The FIM format a model name suggests (Qwen2.5-Coder when nothing matches).
pub fn guess_format(model: &str) -> FimFormat {
    let m = model.to_ascii_lowercase();
    if m.contains("starcoder2") {
        FimFormat::starcoder(true)
    } else if m.contains("starcoder") {
        FimFormat::starcoder(false)
    } else if m.contains("santacoder") {
        FimFormat::santacoder()
    } else if m.contains("deepseek") {
        FimFormat::deepseek()
    } else if m.contains("codestral") {
        FimFormat::codestral()
    } else if m.contains("codegemma") {
        FimFormat::codegemma()
    } else if m.contains("codellama") || m.contains("code-llama") {
        FimFormat::codellama(FimOrder::Spm)
    } else {
        FimFormat::qwen()
    }
}

/// Tokens of `text` when no tokenizer is reachable: about 3.5 bytes per token for code.
pub fn estimate_tokens(text: &str) -> usize {
    (text.len() * 2).div_ceil(7)
}

impl Shared {
    fn post(&self, url: &str, limit: Duration) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        let mut req = self
            .agent
            .post(url)
            .header("Content-Type", "application/json")
            .header("Accept", "text/event-stream, application/json");
        if let Some(key) = &self.key {
            req = req.header("Authorization", key.bearer());
        }
        req.config()
            .timeout_global(Some(limit.max(Duration::from_millis(1))))
            .build()
    }

    /// Asks the server for its model, context size and tokenizer. Quiet about failures.
    fn probe(&mut self) {
        let limit = self.timeout.min(Duration::from_secs(3));
        if self.kind == RemoteKind::LlamaServer {
            let mut req = self.agent.get(format!("{}/props", self.root));
            if let Some(key) = &self.key {
                req = req.header("Authorization", key.bearer());
            }
            let req = req.config().timeout_global(Some(limit)).build();
            match req.call() {
                Ok(resp) => {
                    if let Some(props) = read_json(resp) {
                        let n_ctx = props
                            .pointer("/default_generation_settings/n_ctx")
                            .and_then(Value::as_u64)
                            .or_else(|| props.get("n_ctx").and_then(Value::as_u64));
                        if let Some(n) = n_ctx.filter(|&n| n >= 256) {
                            self.context_size = n as usize;
                        }
                        if self.model.is_none() {
                            self.model = props
                                .get("model_path")
                                .and_then(Value::as_str)
                                .and_then(|p| Path::new(p).file_name())
                                .map(|f| f.to_string_lossy().into_owned());
                        }
                    }
                }
                Err(e) if http::is_connection_error(&e) => {
                    self.failed(http::describe(&e, &self.shown, self.key.as_ref()));
                    return;
                }
                Err(_) => {}
            }
        }
        if self.model.is_none() {
            let mut req = self.agent.get(format!("{}/models", self.v1));
            if let Some(key) = &self.key {
                req = req.header("Authorization", key.bearer());
            }
            let req = req.config().timeout_global(Some(limit)).build();
            match req.call() {
                Ok(resp) => {
                    self.model = read_json(resp).and_then(|v| {
                        v.pointer("/data/0/id")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    })
                }
                Err(e) if http::is_connection_error(&e) => {
                    self.failed(http::describe(&e, &self.shown, self.key.as_ref()));
                    return;
                }
                Err(_) => {}
            }
        }
        let sample = "def fibonacci(n):\n    return n if n < 2 else fibonacci(n - 1)\n";
        if let Some(n) = self.tokenize(sample, limit) {
            self.exact_counts = n > 0;
        }
    }

    /// Exact token count from the server's tokenizer, or `None`.
    fn tokenize(&self, text: &str, limit: Duration) -> Option<usize> {
        let (url, body) = match self.kind {
            RemoteKind::LlamaServer => (
                format!("{}/tokenize", self.root),
                json!({"content": text, "add_special": false}),
            ),
            RemoteKind::OpenAi => {
                let mut body = json!({"prompt": text, "add_special_tokens": false});
                if let Some(m) = &self.model {
                    body["model"] = json!(m);
                }
                (format!("{}/tokenize", self.root), body)
            }
        };
        let resp = self.post(&url, limit).send(body.to_string()).ok()?;
        let v = read_json(resp)?;
        v.get("count")
            .and_then(Value::as_u64)
            .map(|n| n as usize)
            .or_else(|| v.get("tokens").and_then(Value::as_array).map(Vec::len))
            .filter(|&n| n > 0 || text.is_empty())
    }

    /// Fails fast while in backoff.
    fn check_backoff(&self) -> Result<(), EngineError> {
        let h = self.health.lock().unwrap_or_else(|e| e.into_inner());
        match (h.retry_at, &h.error) {
            (Some(at), Some(err)) if Instant::now() < at => Err(EngineError::Remote(err.clone())),
            _ => Ok(()),
        }
    }

    /// Records a failure that later requests would hit too, and starts (or extends) backoff.
    fn failed(&self, message: String) {
        let mut h = self.health.lock().unwrap_or_else(|e| e.into_inner());
        h.failures = h.failures.saturating_add(1);
        let wait = BACKOFF_MIN
            .saturating_mul(1 << (h.failures - 1).min(8))
            .min(BACKOFF_MAX);
        if h.failures == 1 {
            tracing::warn!("{message}; retrying in {:.1} s", wait.as_secs_f64());
        } else {
            tracing::debug!("{message}; retrying in {:.1} s", wait.as_secs_f64());
        }
        h.retry_at = Some(Instant::now() + wait);
        h.error = Some(message);
    }

    fn succeeded(&self) {
        let mut h = self.health.lock().unwrap_or_else(|e| e.into_inner());
        if h.failures > 0 {
            tracing::info!(endpoint = %self.shown, "the model server answers again");
        }
        *h = Health::default();
    }

    /// Sends `body` to `url` and returns the streaming response, or the request's error
    /// (recorded for backoff when later requests would fail the same way).
    fn open(
        &self,
        url: &str,
        body: &Value,
        limit: Duration,
    ) -> Result<ureq::http::Response<ureq::Body>, Failure> {
        match self.post(url, limit).send(body.to_string()) {
            Ok(resp) if resp.status().is_success() => Ok(resp),
            Ok(resp) => {
                let status = resp.status().as_u16();
                let detail = read_text(resp);
                let msg = http::status_message(status, &detail, &self.shown, self.key.as_ref());
                if http::status_is_persistent(status) {
                    self.failed(msg.clone());
                }
                Err(Failure::Error(msg))
            }
            Err(e) if http::is_timeout(&e) => Err(Failure::Timeout),
            Err(e) => {
                let msg = http::describe(&e, &self.shown, self.key.as_ref());
                if http::is_connection_error(&e) {
                    self.failed(msg.clone());
                }
                Err(Failure::Error(msg))
            }
        }
    }

    fn fim_body(
        &self,
        req: &FimRequest,
        max_tokens: usize,
        stops: &[String],
        limit: Duration,
    ) -> (String, Value) {
        match self.kind {
            RemoteKind::LlamaServer => {
                let extra: Vec<Value> = req
                    .context
                    .iter()
                    .map(|b| json!({"filename": b.path, "text": b.text}))
                    .collect();
                let body = json!({
                    "input_prefix": req.prefix,
                    "input_suffix": req.suffix,
                    "input_extra": extra,
                    "prompt": "",
                    "n_predict": max_tokens,
                    "cache_prompt": true,
                    "t_max_predict_ms": limit.as_millis() as u64,
                    "temperature": 0,
                    "top_k": 1,
                    "samplers": ["top_k"],
                    "stop": stops,
                    "stream": true,
                });
                (format!("{}/infill", self.root), body)
            }
            RemoteKind::OpenAi => {
                let input = req.fim_input();
                let prompt = self.format.render(&input, req.order);
                let mut body = json!({
                    "prompt": prompt,
                    "max_tokens": max_tokens,
                    "temperature": 0,
                    "stop": stops.iter().take(4).collect::<Vec<_>>(),
                    "stream": true,
                });
                if let Some(m) = &self.model {
                    body["model"] = json!(m);
                }
                (format!("{}/completions", self.v1), body)
            }
        }
    }

    fn chat_body(&self, req: &ChatRequest) -> (String, Value) {
        let messages: Vec<Value> = req
            .messages
            .iter()
            .map(|(role, content)| json!({"role": role, "content": content}))
            .collect();
        let mut body = json!({
            "messages": messages,
            "max_tokens": req.max_tokens,
            "temperature": 0,
            "stream": true,
        });
        if let Some(m) = &self.model {
            body["model"] = json!(m);
        }
        // llama-server bounds its own generation time too (a field other servers ignore or
        // reject, so only there); every request also has the client's timeout.
        if let (RemoteKind::LlamaServer, Some(deadline)) = (self.kind, req.deadline) {
            let left = deadline.saturating_duration_since(Instant::now());
            body["t_max_predict_ms"] = json!(left.as_millis().max(1) as u64);
        }
        (format!("{}/chat/completions", self.v1), body)
    }
}

/// Why a request ended without an answer from the stream.
enum Failure {
    /// The client's timeout (the request's deadline) fired.
    Timeout,
    /// A message for the user.
    Error(String),
}

fn read_json(resp: ureq::http::Response<ureq::Body>) -> Option<Value> {
    serde_json::from_str(&read_text(resp)).ok()
}

fn read_text(resp: ureq::http::Response<ureq::Body>) -> String {
    let mut body = resp.into_body();
    body.with_config()
        .limit(64 * 1024)
        .read_to_string()
        .unwrap_or_default()
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// What a request's reader and its watcher share: the reply (taken by whoever answers first)
/// and the text so far.
struct Flight<R> {
    reply: Option<R>,
    text: String,
    stats: Stats,
}

type Shared2<R> = Arc<Mutex<Flight<R>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Answers a cancelled or overdue request at once, while the reader may be blocked on the
/// network. Ends when the reader has answered.
fn watch<R: Send + 'static>(
    flight: Shared2<R>,
    done: Arc<AtomicBool>,
    cancel: CancelToken,
    deadline: Instant,
    answer: impl Fn(R, Result<(String, Stats), EngineError>) + Send + 'static,
    received: Instant,
) {
    std::thread::spawn(move || loop {
        if done.load(Ordering::Acquire) {
            return;
        }
        let why = if cancel.is_cancelled() {
            Some(Err(EngineError::Cancelled))
        } else if Instant::now() >= deadline {
            None
        } else {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        };
        let mut f = lock(&flight);
        let Some(reply) = f.reply.take() else {
            return;
        };
        let result = match why {
            Some(err) => err,
            None => {
                f.stats.total_ms = ms(received);
                Ok((std::mem::take(&mut f.text), f.stats))
            }
        };
        drop(f);
        answer(reply, result);
        return;
    });
}

impl Backend for RemoteBackend {
    fn info(&self) -> &ModelInfo {
        &self.shared.info
    }

    fn context_size(&self) -> usize {
        self.shared.context_size
    }

    fn count_tokens(&self, text: &str) -> usize {
        let s = &self.shared;
        if !s.exact_counts || text.is_empty() {
            return estimate_tokens(text);
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        text.hash(&mut h);
        let key = h.finish();
        if let Some(&n) = lock(&s.counts).get(&key) {
            return n;
        }
        if s.check_backoff().is_err() {
            return estimate_tokens(text);
        }
        match s.tokenize(text, s.timeout.min(Duration::from_secs(1))) {
            Some(n) => {
                let mut c = lock(&s.counts);
                if c.len() > 8192 {
                    c.clear();
                }
                c.insert(key, n);
                n
            }
            None => estimate_tokens(text),
        }
    }

    fn exact_token_counts(&self) -> bool {
        self.shared.exact_counts
    }

    fn submit_fim(&self, req: FimRequest, cancel: CancelToken, reply: FimReply) {
        let received = Instant::now();
        if cancel.is_cancelled() {
            return reply(Err(EngineError::Cancelled));
        }
        if let Err(e) = self.shared.check_backoff() {
            return reply(Err(e));
        }
        let shared = self.shared.clone();
        let deadline = req.deadline.unwrap_or(received + DEFAULT_REQUEST_LIMIT);
        let flight: Shared2<FimReply> = Arc::new(Mutex::new(Flight {
            reply: Some(reply),
            text: String::new(),
            stats: Stats::default(),
        }));
        let done = Arc::new(AtomicBool::new(false));
        let answer = |reply: FimReply, r: Result<(String, Stats), EngineError>| {
            reply(r.map(|(text, stats)| Completion {
                text,
                stop: StopReason::Deadline,
                stats,
            }))
        };
        watch(
            flight.clone(),
            done.clone(),
            cancel.clone(),
            deadline,
            answer,
            received,
        );
        std::thread::spawn(move || {
            run_fim(&shared, &req, &cancel, deadline, &flight, received);
            done.store(true, Ordering::Release);
        });
    }

    fn submit_chat(
        &self,
        req: ChatRequest,
        cancel: CancelToken,
        on_text: ChatStream,
        reply: ChatReply,
    ) {
        let received = Instant::now();
        if cancel.is_cancelled() {
            return reply(Err(EngineError::Cancelled));
        }
        if let Err(e) = self.shared.check_backoff() {
            return reply(Err(e));
        }
        let shared = self.shared.clone();
        let deadline = req.deadline.unwrap_or(received + DEFAULT_REQUEST_LIMIT);
        let flight: Shared2<ChatReply> = Arc::new(Mutex::new(Flight {
            reply: Some(reply),
            text: String::new(),
            stats: Stats::default(),
        }));
        let done = Arc::new(AtomicBool::new(false));
        let answer = |reply: ChatReply, r: Result<(String, Stats), EngineError>| {
            reply(r.map(|(text, stats)| ChatOutput {
                text,
                stop: StopReason::Deadline,
                stats,
            }))
        };
        watch(
            flight.clone(),
            done.clone(),
            cancel.clone(),
            deadline,
            answer,
            received,
        );
        std::thread::spawn(move || {
            run_chat(&shared, &req, &cancel, deadline, &flight, on_text, received);
            done.store(true, Ordering::Release);
        });
    }
}

/// Runs one FIM request on the current thread and answers through `flight` (unless the
/// watcher already did).
fn run_fim(
    s: &Shared,
    req: &FimRequest,
    cancel: &CancelToken,
    deadline: Instant,
    flight: &Shared2<FimReply>,
    received: Instant,
) {
    let mut stops = req.stop.clone();
    stops.extend(s.format.stop_markers.iter().cloned());
    stops.retain(|x| !x.is_empty());
    let suffix = if req.stop_at_suffix {
        req.suffix.as_str()
    } else {
        ""
    };
    let checker = StopChecker::new(stops.clone(), suffix)
        .with_line_end(req.line_end.clone())
        .with_settled(req.settled.clone());
    let max_tokens = req.max_tokens.unwrap_or(s.max_tokens).max(1);
    let limit = deadline.saturating_duration_since(Instant::now());
    let (url, body) = s.fim_body(req, max_tokens, &stops, limit);
    {
        let mut f = lock(flight);
        f.stats.prompt_tokens = estimate_tokens(&req.prefix) + estimate_tokens(&req.suffix);
    }
    let finish = |result: Result<StopReason, EngineError>| {
        let mut f = lock(flight);
        let Some(reply) = f.reply.take() else {
            return;
        };
        f.stats.total_ms = ms(received);
        let out = result.map(|stop| Completion {
            text: std::mem::take(&mut f.text),
            stop,
            stats: f.stats,
        });
        drop(f);
        reply(out);
    };
    let resp = match s.open(&url, &body, limit) {
        Ok(r) => r,
        Err(Failure::Timeout) => return finish(Ok(StopReason::Deadline)),
        Err(Failure::Error(msg)) => return finish(Err(EngineError::Remote(msg))),
    };
    s.succeeded();
    let kind = s.kind;
    let mut server_stop = None;
    let outcome = stream::read_events(resp, |event| {
        if cancel.is_cancelled() {
            return stream::Flow::Stop(Err(EngineError::Cancelled));
        }
        let mut f = lock(flight);
        if f.reply.is_none() {
            // The watcher answered (cancelled, deadline): close the connection.
            return stream::Flow::Stop(Err(EngineError::Cancelled));
        }
        let piece = stream::fim_piece(kind, event);
        if let Some(p) = &piece.timings {
            f.stats.evaluated_tokens = p.prompt_n.unwrap_or(f.stats.evaluated_tokens);
            f.stats.prompt_ms = p.prompt_ms.unwrap_or(f.stats.prompt_ms);
            if let Some(n) = p.prompt_total {
                f.stats.prompt_tokens = n;
            }
        }
        if !piece.text.is_empty() {
            f.stats.generated(received);
            f.text.push_str(&piece.text);
            if let Some((cut, why)) = checker.check(&f.text) {
                f.text.truncate(cut);
                return stream::Flow::Stop(Ok(why));
            }
            if f.stats.generated_tokens >= max_tokens {
                return stream::Flow::Stop(Ok(StopReason::MaxTokens));
            }
        }
        // The server said why it ended: read on to the end of the body, so that the
        // connection goes back to the pool.
        if piece.finished.is_some() {
            server_stop = piece.finished;
        }
        stream::Flow::Continue
    });
    finish(outcome_to_result(outcome, server_stop, s))
}

fn outcome_to_result(
    outcome: stream::Outcome,
    server_stop: Option<StopReason>,
    s: &Shared,
) -> Result<StopReason, EngineError> {
    match outcome {
        stream::Outcome::Stopped(r) => r,
        stream::Outcome::Ended => Ok(server_stop.unwrap_or(StopReason::EndOfText)),
        stream::Outcome::Timeout => Ok(StopReason::Deadline),
        stream::Outcome::Error(msg) => Err(EngineError::Remote(http::scrub(
            &format!("the model server at {} failed mid-answer: {msg}", s.shown),
            s.key.as_ref(),
        ))),
    }
}

fn run_chat(
    s: &Shared,
    req: &ChatRequest,
    cancel: &CancelToken,
    deadline: Instant,
    flight: &Shared2<ChatReply>,
    mut on_text: ChatStream,
    received: Instant,
) {
    let limit = deadline.saturating_duration_since(Instant::now());
    let (url, body) = s.chat_body(req);
    let finish = |result: Result<StopReason, EngineError>| {
        let mut f = lock(flight);
        let Some(reply) = f.reply.take() else {
            return;
        };
        f.stats.total_ms = ms(received);
        let out = result.map(|stop| ChatOutput {
            text: std::mem::take(&mut f.text),
            stop,
            stats: f.stats,
        });
        drop(f);
        reply(out);
    };
    let resp = match s.open(&url, &body, limit) {
        Ok(r) => r,
        Err(Failure::Timeout) => return finish(Ok(StopReason::Deadline)),
        Err(Failure::Error(msg)) => return finish(Err(EngineError::Remote(msg))),
    };
    s.succeeded();
    let max_tokens = req.max_tokens.max(1);
    let mut server_stop = None;
    let outcome = stream::read_events(resp, |event| {
        if cancel.is_cancelled() {
            return stream::Flow::Stop(Err(EngineError::Cancelled));
        }
        let mut f = lock(flight);
        if f.reply.is_none() {
            return stream::Flow::Stop(Err(EngineError::Cancelled));
        }
        let piece = stream::chat_piece(event);
        if !piece.text.is_empty() {
            f.stats.generated(received);
            f.text.push_str(&piece.text);
            drop(f);
            on_text(&piece.text);
            if lock(flight).stats.generated_tokens >= max_tokens {
                return stream::Flow::Stop(Ok(StopReason::MaxTokens));
            }
        }
        // The server said why it ended: read on to the end of the body, so that the
        // connection goes back to the pool.
        if piece.finished.is_some() {
            server_stop = piece.finished;
        }
        stream::Flow::Continue
    });
    finish(outcome_to_result(outcome, server_stop, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_are_guessed_from_model_names() {
        assert_eq!(guess_format("Qwen/Qwen2.5-Coder-7B").name, "qwen2.5-coder");
        assert_eq!(guess_format("bigcode/starcoder2-15b").name, "starcoder2");
        assert_eq!(
            guess_format("deepseek-coder-6.7b-base").name,
            "deepseek-coder"
        );
        assert_eq!(guess_format("something-else").name, "qwen2.5-coder");
    }

    #[test]
    fn estimates_are_about_three_and_a_half_bytes_per_token() {
        assert_eq!(estimate_tokens(""), 0);
        assert_eq!(estimate_tokens("abcdefg"), 2);
        assert_eq!(estimate_tokens(&"x".repeat(350)), 100);
    }

    #[test]
    fn endpoints_must_be_urls() {
        let err = RemoteBackend::new(RemoteConfig::new(RemoteKind::OpenAi, "localhost:8080"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("http://"), "{err}");
    }
}
