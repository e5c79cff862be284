//! Model loading and the engine's lifecycle: the [`EngineSlot`] (starting, loading, ready,
//! failed), supervised loads (one at a time, the latest setting wins, a superseded model is
//! dropped before the next one loads) with work-done progress and `ghostline/status`, and the
//! reaction to a fatal engine error ([`Session::engine_failed`]): status error, a message, and a
//! reload with backoff (1 s, 2 s, 4 s … 60 s) without a server restart. The slot itself lives in
//! [`crate::slot`].
//!
//! It does not run requests (see [`crate::complete`], [`crate::explain`]).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ghostline_inference::backend::{ChatReply, ChatStream, FimReply};
use ghostline_inference::{
    Backend, BackendHandle, CancelToken, ChatRequest, Engine, EngineConfig, EngineError,
    FakeBackend, FimRequest, ModelInfo,
};
use tower_lsp_server::ls_types::MessageType;

use crate::config;
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
        let path = config.model_path.clone();
        tracing::info!(path = %path.display(), threads = config.threads, active_loads = active, "loading model");
        self.status(
            State::Loading,
            Some(format!("loading {}", path.display())),
            Some(0),
        )
        .await;
        let progress = self
            .progress(None, "ghostline: loading model", Some(file_name(&path)))
            .await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<f32>();
        let settings = self.config();
        // `fake.crash` (tests) crashes the first engine only: the restart after it works.
        let restarted = self.engine().failures() > 0;
        let mut load = tokio::task::spawn_blocking(move || {
            if settings.backend == config::BackendKind::Fake {
                std::thread::sleep(Duration::from_millis(settings.fake_load_delay_ms));
                let _ = tx.send(1.0);
                let delay = Duration::from_millis(settings.fake_delay_ms);
                let fake = FakeBackend::new()
                    .with_delay_per_token(delay)
                    .with_context_size(config.context_size as usize);
                if settings.fake_crash && !restarted {
                    return Ok(Arc::new(Crashing(fake)) as BackendHandle);
                }
                return Ok(Arc::new(fake) as BackendHandle);
            }
            Engine::start_with_progress(
                config,
                Box::new(move |p| {
                    let _ = tx.send(p);
                }),
            )
            .map(|engine| Arc::new(engine) as BackendHandle)
        });
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
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(join) => Err(format!("the model loader crashed: {join}")),
        };
        match result {
            Ok(engine) => {
                let info = engine.info().clone();
                let latest = self.engine().wanted.load(Ordering::SeqCst) == ticket;
                if !latest || !self.engine().finish(generation, EngineState::Ready(engine)) {
                    progress
                        .end(Some("superseded by a newer load".into()))
                        .await;
                    return;
                }
                self.clear_cache();
                tracing::info!(name = %info.name, fim = info.fim.is_some(), "model ready");
                progress.end(Some(format!("{} loaded", info.name))).await;
                if info.fim.is_none() {
                    let msg = format!(
                        "ghostline: model {} ({}) has no fill-in-the-middle tokens; completions are off. Set ghostline.fimTemplate to use it.",
                        info.name,
                        info.path.display()
                    );
                    self.client().show_message(MessageType::WARNING, &msg).await;
                    self.status(State::Disabled, Some(msg), None).await;
                } else {
                    self.status(State::Ready, Some(info.name.clone()), Some(100))
                        .await;
                }
            }
            Err(reason) => {
                let latest = self.engine().wanted.load(Ordering::SeqCst) == ticket;
                if !latest
                    || !self
                        .engine()
                        .finish(generation, EngineState::Failed(reason.clone()))
                {
                    progress.end(None).await;
                    return;
                }
                tracing::error!("model load failed: {reason}");
                progress.end(Some("failed".into())).await;
                let msg = format!(
                    "ghostline: could not load the model {}: {reason}",
                    path.display()
                );
                self.client().show_message(MessageType::ERROR, &msg).await;
                self.status(State::Error, Some(msg), None).await;
            }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_a_minute() {
        let waits: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
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
