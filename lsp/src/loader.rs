//! Model loading and the engine's lifecycle: the [`EngineSlot`] (starting, loading, ready,
//! failed), supervised loads (one at a time, the latest setting wins, a superseded model is
//! dropped before the next one loads) with work-done progress and `ghostline/status`, and the
//! reaction to a fatal engine error ([`Session::engine_failed`]): status error, a message, and a
//! reload with backoff (1 s, 2 s, 4 s … 60 s) without a server restart. The slot itself lives in
//! [`crate::slot`].
//!
//! Remote backends (`llama-server`, `openai`) are built here too: "loading" is connecting, and
//! a model server that is down or refuses the key is not an engine failure but a state the
//! [`RemoteWatch`] reports once per change (`ghostline/status` error and one
//! `window/showMessage`, then `ready` when it answers again), probing it in the background
//! with the remote crate's backoff while requests fail fast instead of erring per keystroke.
//!
//! It does not run requests (see [`crate::complete`], [`crate::explain`]).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use ghostline_inference::backend::{ChatReply, ChatStream, FimReply};
use ghostline_inference::{
    Backend, BackendHandle, CancelToken, ChatRequest, Engine, EngineConfig, EngineError,
    FakeBackend, FimRequest, ModelInfo,
};
use ghostline_remote::{RemoteBackend, RemoteConfig, RemoteKind};
use tower_lsp_server::ls_types::MessageType;

use crate::config;
use crate::progress::WorkProgress;
use crate::protocol::State;
use crate::slot::EngineState;
use crate::state::Session;
use crate::util::lock;

/// Longest wait between two restarts of a failing engine.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A failure this long after the previous one starts the backoff over.
const BACKOFF_RESET: Duration = Duration::from_secs(300);

/// Counts a running load for as long as it lives.
struct ActiveLoad<'a>(&'a AtomicUsize);

impl Drop for ActiveLoad<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The wait before restart number `n` (1-based): 1 s, 2 s, 4 s … up to a minute.
pub fn backoff(n: u32) -> Duration {
    let secs = 1u64 << n.saturating_sub(1).min(6);
    Duration::from_secs(secs).min(MAX_BACKOFF)
}

impl Session {
    /// The engine settings implied by the current settings and the command line.
    pub fn engine_config(&self) -> EngineConfig {
        let c = self.config();
        let path = c
            .model
            .clone()
            .or_else(|| self.options().model.clone())
            .unwrap_or_else(ghostline_inference::default_model_path);
        let mut e = EngineConfig::new(expand_home(path));
        if let Some(t) = c.threads {
            e.threads = t;
        }
        e.context_size = c.context_size;
        e.max_tokens = c.max_tokens;
        e.fim_template = c.fim_template.clone();
        e.reuse = c.engine_reuse;
        e.reuse_shift = c.engine_reuse_shift;
        e.reuse_refresh_tokens = c.engine_reuse_refresh_tokens;
        e.reuse_refresh_tokens_in_line = c.engine_reuse_refresh_tokens_in_line;
        e
    }

    /// Loads (or reloads) the model in the background, with work-done progress and status.
    ///
    /// Loads are supervised: one runs at a time, and a load asked for while another runs waits
    /// for it and is dropped if a newer one was asked for meanwhile (the latest setting wins).
    /// A load whose result is superseded drops its model before the next load starts, so two
    /// models are never loaded at once (requests still holding the old one finish first).
    pub async fn load_model(self: Arc<Self>) {
        let ticket = self.engine().wanted.fetch_add(1, Ordering::SeqCst) + 1;
        let _one_at_a_time = self.engine().load_lock.lock().await;
        if self.engine().wanted.load(Ordering::SeqCst) != ticket {
            tracing::debug!("model load {ticket} superseded before it started");
            return;
        }
        let active = self.engine().active_loads.fetch_add(1, Ordering::SeqCst) + 1;
        let _active = ActiveLoad(&self.engine().active_loads);
        let generation = self.engine().begin();
        let config = self.engine_config();
        let settings = self.config();
        let remote = remote_config(&settings);
        let path = config.model_path.clone();
        // What is being loaded, for messages: the model file, or the server.
        let (what, short) = match &remote {
            Some(Ok(r)) => (r.endpoint.clone(), r.endpoint.clone()),
            Some(Err(_)) => ("the model server".to_owned(), "model server".to_owned()),
            None => (path.display().to_string(), file_name(&path)),
        };
        tracing::info!(model = %what, threads = config.threads, active_loads = active, "loading model");
        let verb = if remote.is_some() {
            "connecting to"
        } else {
            "loading"
        };
        self.status(State::Loading, Some(format!("{verb} {what}")), Some(0))
            .await;
        let title = if remote.is_some() {
            "ghostline: connecting to the model server"
        } else {
            "ghostline: loading model"
        };
        let progress = self.progress(None, title, Some(short)).await;
        // `fake.crash` (tests) crashes the first engine only: the restart after it works.
        let restarted = self.engine().failures() > 0;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<f32>();
        let report = remote.is_some().then(|| self.remote_reporter(generation));
        let build = Build {
            remote,
            settings,
            config,
            restarted,
            report,
        };
        let mut load = tokio::task::spawn_blocking(move || build.run(tx));
        let result = loop {
            tokio::select! {
                biased;
                res = &mut load => break res,
                Some(p) = rx.recv() => {
                    let pct = (p.clamp(0.0, 1.0) * 100.0) as u32;
                    progress.report(None, Some(pct)).await;
                    self.status(State::Loading, None, Some(pct)).await;
                }
            }
        };
        let result = match result {
            Ok(r) => r,
            Err(join) => Err(format!("the model loader crashed: {join}")),
        };
        let stored = |state| {
            self.engine().wanted.load(Ordering::SeqCst) == ticket
                && self.engine().finish(generation, state)
        };
        match result {
            Ok(Loaded { handle, watch }) => {
                let info = handle.info().clone();
                if !stored(EngineState::Ready(handle)) {
                    progress
                        .end(Some("superseded by a newer load".into()))
                        .await;
                    return;
                }
                self.loaded(&info, watch, progress).await;
            }
            Err(reason) => {
                if !stored(EngineState::Failed(reason.clone())) {
                    progress.end(None).await;
                    return;
                }
                tracing::error!("model load failed: {reason}");
                progress.end(Some("failed".into())).await;
                let msg = if settings_is_remote(&self.config()) {
                    format!("ghostline: cannot use the model server: {reason}")
                } else {
                    format!("ghostline: could not load the model {what}: {reason}")
                };
                self.client().show_message(MessageType::ERROR, &msg).await;
                self.status(State::Error, Some(msg), None).await;
            }
        }
    }

    /// Reports a backend that is in the slot now: progress end, status, a warning when it
    /// cannot fill in the middle, and a remote server's first error.
    async fn loaded(
        &self,
        info: &ModelInfo,
        watch: Option<(Arc<RemoteWatch>, Option<String>)>,
        progress: WorkProgress,
    ) {
        self.clear_cache();
        tracing::info!(name = %info.name, fim = info.fim.is_some(), "model ready");
        let done = if watch.is_some() {
            "connected"
        } else {
            "loaded"
        };
        progress.end(Some(format!("{} {done}", info.name))).await;
        if info.fim.is_none() {
            let msg = format!(
                "ghostline: model {} ({}) has no fill-in-the-middle tokens; completions are off. Set ghostline.fimTemplate to use it.",
                info.name,
                info.path.display()
            );
            self.client().show_message(MessageType::WARNING, &msg).await;
            self.status(State::Disabled, Some(msg), None).await;
        } else if !matches!(&watch, Some((_, Some(_)))) {
            self.status(State::Ready, Some(info.name.clone()), Some(100))
                .await;
        }
        // A server that is down or refuses the key: straight to its error.
        if let Some((watch, Some(error))) = watch {
            watch.down(&error);
        }
    }

    /// What a remote backend of load `generation` calls when its server goes down (`Some`
    /// message) or answers again (`None`): the status, and one message per new error.
    fn remote_reporter(self: &Arc<Self>, generation: u64) -> Report {
        let inner: Weak<Session> = Arc::downgrade(self);
        let runtime = tokio::runtime::Handle::current();
        let last_shown = Mutex::new(None::<String>);
        Box::new(move |error: Option<&str>| {
            let Some(inner) = inner.upgrade() else {
                return;
            };
            if inner.engine().generation.load(Ordering::SeqCst) != generation {
                return; // A newer backend replaced this one.
            }
            inner.engine().set_remote_down(error.is_some());
            let error = error.map(str::to_owned);
            // The same error again (down, up, down) updates the status but is not shown again.
            let show = error.is_some() && *lock(&last_shown) != error;
            if show {
                lock(&last_shown).clone_from(&error);
            }
            runtime.spawn(async move {
                match error {
                    Some(msg) => {
                        tracing::warn!("{msg}");
                        let msg = format!("{msg}; retrying in the background");
                        if show {
                            inner.client().show_message(MessageType::ERROR, &msg).await;
                        }
                        inner.status(State::Error, Some(msg), None).await;
                    }
                    None => {
                        let name = inner.engine().ready().map(|e| e.info().name.clone());
                        tracing::info!("the model server answers again");
                        inner.status(State::Ready, name, Some(100)).await;
                    }
                }
            });
        })
    }

    /// Reacts to an error from `engine`: when it is fatal ([`EngineError::is_fatal`]: the
    /// engine thread stopped or crashed) and `engine` is still the loaded one, marks the engine
    /// failed, sends `ghostline/status` error and `window/showMessage`, and reloads it after a
    /// backoff. Other errors, and errors of an engine already replaced, are ignored. Call it
    /// from every path that gets an error from the backend.
    pub fn engine_failed(self: &Arc<Self>, engine: &BackendHandle, err: &EngineError) {
        if !err.is_fatal() {
            return;
        }
        {
            let mut state = lock(&self.engine().state);
            let current = matches!(&*state, EngineState::Ready(e)
                if std::ptr::addr_eq(Arc::as_ptr(e), Arc::as_ptr(engine)));
            if !current {
                return;
            }
            *state = EngineState::Failed(err.to_string());
        }
        let attempt = {
            let mut f = lock(&self.engine().failures);
            let now = Instant::now();
            if f.1
                .is_some_and(|last| now.duration_since(last) > BACKOFF_RESET)
            {
                f.0 = 0;
            }
            f.0 += 1;
            f.1 = Some(now);
            f.0
        };
        let delay = backoff(attempt);
        let wanted = self.engine().wanted.load(Ordering::SeqCst);
        tracing::error!(attempt, ?delay, "the engine failed: {err}; restarting it");
        let inner = self.clone();
        let msg = format!(
            "ghostline: the inference engine failed ({err}); restarting it in {} s",
            delay.as_secs()
        );
        tokio::spawn(async move {
            inner.client().show_message(MessageType::ERROR, &msg).await;
            inner.status(State::Error, Some(msg), None).await;
            tokio::time::sleep(delay).await;
            // A load asked for meanwhile (a setting changed) replaces the restart.
            if inner.engine().wanted.load(Ordering::SeqCst) == wanted {
                inner.load_model().await;
            }
        });
    }
}

/// The fake backend with every request failing as after an engine crash (`fake.crash`, tests).
struct Crashing(FakeBackend);

impl Backend for Crashing {
    fn info(&self) -> &ModelInfo {
        self.0.info()
    }

    fn context_size(&self) -> usize {
        self.0.context_size()
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.0.count_tokens(text)
    }

    fn exact_token_counts(&self) -> bool {
        false
    }

    fn submit_fim(&self, _: FimRequest, _: CancelToken, reply: FimReply) {
        std::thread::spawn(move || reply(Err(EngineError::Crashed("fake crash".into()))));
    }

    fn submit_chat(&self, _: ChatRequest, _: CancelToken, _: ChatStream, reply: ChatReply) {
        std::thread::spawn(move || reply(Err(EngineError::Crashed("fake crash".into()))));
    }
}

/// What one load builds, moved to a blocking thread.
struct Build {
    remote: Option<Result<RemoteConfig, String>>,
    settings: Arc<config::Config>,
    config: EngineConfig,
    /// The engine failed before (`fake.crash` crashes the first engine only).
    restarted: bool,
    report: Option<Report>,
}

impl Build {
    /// Builds the backend (blocking: a model load, or a remote server's first check),
    /// reporting progress (0.0–1.0) on `tx`.
    fn run(self, tx: tokio::sync::mpsc::UnboundedSender<f32>) -> Result<Loaded, String> {
        let Build {
            remote,
            settings,
            config,
            restarted,
            report,
        } = self;
        if let Some(remote) = remote {
            let remote = remote?;
            let backend = Arc::new(RemoteBackend::new(remote).map_err(|e| e.to_string())?);
            let _ = tx.send(1.0);
            // One authenticated request now: a wrong key or a server that is down shows at
            // once, not at the first keystroke.
            let first_error = backend.check().err();
            let watch = RemoteWatch::new(&backend, report.expect("a reporter"));
            let handle = Arc::new(Watched {
                remote: backend,
                watch: watch.clone(),
            }) as BackendHandle;
            return Ok(Loaded {
                handle,
                watch: Some((watch, first_error)),
            });
        }
        if settings.backend == config::BackendKind::Fake {
            std::thread::sleep(Duration::from_millis(settings.fake_load_delay_ms));
            let _ = tx.send(1.0);
            let delay = Duration::from_millis(settings.fake_delay_ms);
            let fake = FakeBackend::new()
                .with_lines(settings.fake_lines)
                .with_delay_per_token(delay)
                .with_context_size(config.context_size as usize);
            let handle = if settings.fake_crash && !restarted {
                Arc::new(Crashing(fake)) as BackendHandle
            } else {
                Arc::new(fake) as BackendHandle
            };
            return Ok(Loaded {
                handle,
                watch: None,
            });
        }
        Engine::start_with_progress(
            config,
            Box::new(move |p| {
                let _ = tx.send(p);
            }),
        )
        .map(|engine| Loaded {
            handle: Arc::new(engine) as BackendHandle,
            watch: None,
        })
        .map_err(|e| e.to_string())
    }
}

/// A loaded backend, and the health watch of a remote one with the error of its first check.
struct Loaded {
    handle: BackendHandle,
    watch: Option<(Arc<RemoteWatch>, Option<String>)>,
}

fn settings_is_remote(c: &config::Config) -> bool {
    matches!(
        c.backend,
        config::BackendKind::LlamaServer | config::BackendKind::OpenAi
    )
}

/// The remote backend's settings, when a remote backend is chosen; an error when the settings
/// cannot make one (no endpoint).
fn remote_config(c: &config::Config) -> Option<Result<RemoteConfig, String>> {
    let kind = match c.backend {
        config::BackendKind::LlamaServer => RemoteKind::LlamaServer,
        config::BackendKind::OpenAi => RemoteKind::OpenAi,
        _ => return None,
    };
    let Some(endpoint) = c.remote_endpoint.clone() else {
        return Some(Err(format!(
            "ghostline.backend is \"{}\" but ghostline.remote.endpoint is not set (the server's base URL, e.g. http://127.0.0.1:8080)",
            if kind == RemoteKind::LlamaServer { "llama-server" } else { "openai" }
        )));
    };
    let mut r = RemoteConfig::new(kind, endpoint);
    r.model = c.remote_model.clone();
    r.api_key_file = c.remote_api_key_file.clone().map(expand_home);
    r.ca_file = c.remote_ca_file.clone().map(expand_home);
    r.timeout = Duration::from_millis(c.remote_timeout_ms);
    r.fim_template = c.fim_template.clone();
    r.context_size = c.context_size as usize;
    r.max_tokens = c.max_tokens;
    Some(Ok(r))
}

/// Told `Some(error)` when the model server goes down, `None` when it answers again.
type Report = Box<dyn Fn(Option<&str>) + Send + Sync>;

/// Watches a remote backend's health: reports each change once, and while the server is down
/// probes it whenever its backoff ends, so that the status recovers without a keystroke.
struct RemoteWatch {
    /// The error reported, while the server is down.
    down: Mutex<Option<String>>,
    /// A probing thread runs.
    probing: AtomicBool,
    remote: Weak<RemoteBackend>,
    report: Report,
}

impl RemoteWatch {
    fn new(remote: &Arc<RemoteBackend>, report: Report) -> Arc<Self> {
        Arc::new(RemoteWatch {
            down: Mutex::new(None),
            probing: AtomicBool::new(false),
            remote: Arc::downgrade(remote),
            report,
        })
    }

    /// A request got `result`.
    fn observe(self: &Arc<Self>, error: Option<&EngineError>) {
        match error {
            None => self.up(),
            Some(EngineError::Remote(msg)) => self.down(msg),
            Some(_) => {}
        }
    }

    fn down(self: &Arc<Self>, msg: &str) {
        {
            let mut down = lock(&self.down);
            if down.is_some() {
                return;
            }
            *down = Some(msg.to_owned());
        }
        (self.report)(Some(msg));
        self.probe_in_background();
    }

    fn up(&self) {
        if lock(&self.down).take().is_some() {
            (self.report)(None);
        }
    }

    /// Probes the server at the end of each backoff until it answers (or the backend is gone).
    fn probe_in_background(self: &Arc<Self>) {
        if self.probing.swap(true, Ordering::SeqCst) {
            return;
        }
        let me = Arc::downgrade(self);
        std::thread::spawn(move || loop {
            let wait = {
                let Some(watch) = me.upgrade() else { return };
                let Some(remote) = watch.remote.upgrade() else {
                    return;
                };
                let down = lock(&watch.down);
                if down.is_none() {
                    watch.probing.store(false, Ordering::SeqCst);
                    return;
                }
                remote
                    .retry_at()
                    .map_or(Duration::from_millis(500), |at| {
                        at.saturating_duration_since(Instant::now())
                    })
                    .max(Duration::from_millis(100))
            };
            std::thread::sleep(wait);
            let Some(watch) = me.upgrade() else { return };
            let Some(remote) = watch.remote.upgrade() else {
                return;
            };
            if remote.retry_at().is_some_and(|at| at > Instant::now()) {
                continue; // A request failed meanwhile and extended the backoff.
            }
            if remote.check().is_ok() {
                watch.up();
            }
        });
    }
}

/// A remote backend whose replies feed its [`RemoteWatch`].
struct Watched {
    remote: Arc<RemoteBackend>,
    watch: Arc<RemoteWatch>,
}

impl Backend for Watched {
    fn info(&self) -> &ModelInfo {
        self.remote.info()
    }

    fn context_size(&self) -> usize {
        self.remote.context_size()
    }

    fn count_tokens(&self, text: &str) -> usize {
        self.remote.count_tokens(text)
    }

    fn exact_token_counts(&self) -> bool {
        self.remote.exact_token_counts()
    }

    fn submit_fim(&self, req: FimRequest, cancel: CancelToken, reply: FimReply) {
        let watch = self.watch.clone();
        self.remote.submit_fim(
            req,
            cancel,
            Box::new(move |r| {
                watch.observe(r.as_ref().err());
                reply(r)
            }),
        );
    }

    fn submit_chat(
        &self,
        req: ChatRequest,
        cancel: CancelToken,
        on_text: ChatStream,
        reply: ChatReply,
    ) {
        let watch = self.watch.clone();
        self.remote.submit_chat(
            req,
            cancel,
            on_text,
            Box::new(move |r| {
                watch.observe(r.as_ref().err());
                reply(r)
            }),
        );
    }
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn expand_home(path: PathBuf) -> PathBuf {
    if let Ok(rest) = path.strip_prefix("~") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        let waits: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }
}
