//! The engine thread: owns the model and one long-lived llama.cpp context, and serves
//! fill-in-the-middle and chat requests sent over a channel.
//!
//! KV cache layout (one unified cache, three sequences):
//! - sequence 0 holds the last FIM prompt and its generated tokens; `Seq::tokens` mirrors it
//!   exactly, so a request evaluates only what differs;
//! - sequence 1 is a parking place used while reusing shifted entries (see [`Worker::sync`]);
//! - sequence 2 holds a running chat, so a completion that arrives while an explanation is being
//!   written runs at once and the chat resumes where it was.
//!
//! Requests are checked for cancellation and deadlines between prompt chunks (at most
//! `batch_size` tokens) and between generated tokens. A FIM request whose deadline passes during
//! prompt evaluation is answered at once (empty, [`StopReason::Deadline`]), and its prompt is
//! evaluated on while no other request waits, so that the next keystroke finds it cached.
//!
//! Every request is answered exactly once: a panic while serving one is caught, the request is
//! answered [`EngineError::Crashed`], the cache bookkeeping starts over and the thread serves
//! on; if the thread dies anyway, queued and later requests are answered
//! [`EngineError::Stopped`]. Sampling is greedy. This module does not shape completions (the
//! language server does) and never blocks an async runtime: callers get their answer through a
//! callback.

use std::collections::{HashSet, VecDeque};
use std::num::NonZeroU32;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel, RopeType};
use llama_cpp_2::token::LlamaToken;

use crate::model::{self, single_special_token, ModelInfo};
use crate::prompt;
use crate::sampling::{self, Utf8Assembler};
use crate::token_count::Counts;

mod kv;
mod prefill;

use crate::doc_state::ColdSizes;
use crate::stop::{StopChecker, StopReason};
use crate::{
    llama_log, CancelToken, ChatOutput, ChatRequest, Completion, EngineConfig, EngineError,
    FimRequest, LoadError, PrefillCounts, PrefillItem, Stats,
};
use kv::{Interrupt, Seq};

const SEQ_FIM: i32 = 0;
const SEQ_PARK: i32 = 1;
const SEQ_CHAT: i32 = 2;
/// Tokens a cold window may leave to evaluate beyond its own size before a request counts as
/// cold (the markers and a token or two at the cursor).
const COLD_SLACK: usize = 32;
/// Prompt chunks shorter than this are not counted in the prompt evaluation rate.
const RATE_MIN_CHUNK: usize = 64;
/// Prompt chunks the rate is taken from (the best of them).
const RATE_SAMPLES: usize = 12;
/// The longest [`Engine::persist`] waits for the disk.
const PERSIST_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

use crate::backend::{ChatReply, ChatStream, FimReply};
use crate::FaultInjection;

/// A request's callback, called exactly once: by [`send`](Self::send), or with
/// [`EngineError::Stopped`] when it is dropped unanswered (the engine thread died with the job
/// still queued). A panic inside the callback is caught, so it cannot take the engine down.
struct Reply<T>(Option<ReplyFn<T>>);

type ReplyFn<T> = Box<dyn FnOnce(Result<T, EngineError>) + Send>;

impl<T> Reply<T> {
    fn new(f: ReplyFn<T>) -> Self {
        Reply(Some(f))
    }

    fn send(mut self, result: Result<T, EngineError>) {
        if let Some(f) = self.0.take() {
            if catch_unwind(AssertUnwindSafe(|| f(result))).is_err() {
                tracing::error!("a reply callback panicked");
            }
        }
    }
}

impl<T> Drop for Reply<T> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            let _ = catch_unwind(AssertUnwindSafe(|| f(Err(EngineError::Stopped))));
        }
    }
}

// One job per request on a channel: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Job {
    Fim {
        req: FimRequest,
        cancel: CancelToken,
        reply: Reply<Completion>,
        received: Instant,
    },
    Chat {
        req: ChatRequest,
        cancel: CancelToken,
        on_text: ChatStream,
        reply: Reply<ChatOutput>,
        received: Instant,
    },
    /// Save the current document's KV state and wait for the disk; then call `done`.
    Persist { done: Box<dyn FnOnce(bool) + Send> },
    /// Replace the prefill plan.
    Prefill {
        doc: String,
        items: Vec<PrefillItem>,
    },
}

impl Job {
    fn reject(self, err: EngineError) {
        match self {
            Job::Fim { reply, .. } => reply.send(Err(err)),
            Job::Chat { reply, .. } => reply.send(Err(err)),
            Job::Persist { done } => done(false),
            Job::Prefill { .. } => {}
        }
    }
}

/// The message of a caught panic.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic on the engine thread".to_owned()
    }
}

/// Called after each generated piece with the whole text and its length before the piece;
/// returns where to cut and why, to stop.
type OnText<'a> = dyn FnMut(&str, usize) -> Option<(usize, StopReason)> + 'a;

/// What one run of the token loop needs besides its sequence's state.
struct Generation {
    /// The KV sequence.
    id: i32,
    max_tokens: usize,
    deadline: Option<Instant>,
    received: Instant,
    /// Text the first tokens must reproduce (token healing).
    heal: Vec<u8>,
    /// Serve completions that arrive meanwhile (a chat).
    yield_to_completions: bool,
    /// End-of-text is not taken while the text after `heal` is blank.
    non_empty: bool,
}

/// A handle to the engine thread. Cheap to share behind an `Arc`; dropping the last handle
/// stops the thread after its current request.
pub struct Engine {
    tx: mpsc::Sender<Job>,
    info: ModelInfo,
    config: EngineConfig,
    model: Arc<LlamaModel>,
    n_ctx: usize,
    prefills: Arc<prefill::Counters>,
    /// Token counts remembered (by segments when the tokenizer allows it).
    counts: Counts,
}

/// The engine is shared between tasks behind this alias.
pub type EngineHandle = Arc<Engine>;

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("info", &self.info).finish()
    }
}

impl Engine {
    /// Loads the model and starts the engine thread. Blocks until the model is loaded (seconds);
    /// call it from a blocking-friendly thread.
    pub fn start(config: EngineConfig) -> Result<Engine, LoadError> {
        Self::start_with_progress(config, Box::new(|_| {}))
    }

    /// Like [`start`](Self::start), reporting load progress (0.0 to 1.0) to `progress`.
    pub fn start_with_progress(
        config: EngineConfig,
        progress: Box<dyn FnMut(f32) + Send>,
    ) -> Result<Engine, LoadError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let thread_config = config.clone();
        let prefills = Arc::new(prefill::Counters::default());
        let thread_prefills = prefills.clone();
        std::thread::Builder::new()
            .name("ghostline-engine".into())
            .spawn(move || engine_thread(thread_config, progress, rx, ready_tx, thread_prefills))
            .map_err(LoadError::Thread)?;
        let (info, model, n_ctx) = ready_rx.recv().map_err(|_| LoadError::Llama {
            path: config.model_path.clone(),
            reason: "the engine thread stopped while loading".into(),
        })??;
        let segmented = model
            .meta_val_str("tokenizer.ggml.model")
            .is_ok_and(|m| m == "gpt2")
            && Counts::check(&|s| tokens_of(&model, s));
        tracing::debug!(segmented, "token counts remembered");
        Ok(Engine {
            tx,
            info,
            config,
            model,
            n_ctx,
            prefills,
            counts: Counts::new(segmented),
        })
    }

    /// What was loaded.
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The configuration the engine runs with.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Number of tokens `text` takes (plain text; markers are not parsed). Safe to call from any
    /// thread while the engine works. Counts are remembered, by line-start segments for a BPE
    /// tokenizer (see `token_count`), so counting text again, or text that shares lines with
    /// text counted before, costs a hash per segment.
    pub fn count_tokens(&self, text: &str) -> usize {
        self.counts.count(text, &|s| tokens_of(&self.model, s))
    }

    /// Whether [`count_tokens`](Self::count_tokens) counts by segments (it does for BPE
    /// tokenizers whose counts add up over them).
    #[doc(hidden)]
    pub fn counts_by_segment(&self) -> bool {
        self.counts.segmented()
    }

    /// The text of each token of the prompt `req` would be evaluated with (after fitting it to
    /// the context), for tests and diagnostics. Special tokens show as their marker text.
    #[doc(hidden)]
    pub fn prompt_pieces(&self, req: &FimRequest) -> Result<Vec<String>, EngineError> {
        let max_tokens = req.max_tokens.unwrap_or(self.config.max_tokens);
        let tokens = fim_prompt(&self.model, &self.info, self.n_ctx, req, max_tokens)?;
        let vocab = self.model.vocab();
        Ok(tokens
            .into_iter()
            .map(|t| {
                vocab
                    .text(t)
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .collect())
    }

    /// Queues a FIM request; `reply` is called exactly once, on the engine thread.
    pub fn submit_fim(
        &self,
        req: FimRequest,
        cancel: CancelToken,
        reply: impl FnOnce(Result<Completion, EngineError>) + Send + 'static,
    ) {
        let job = Job::Fim {
            req,
            cancel,
            reply: Reply::new(Box::new(reply)),
            received: Instant::now(),
        };
        if let Err(mpsc::SendError(job)) = self.tx.send(job) {
            job.reject(EngineError::Stopped);
        }
    }

    /// Saves the current document's KV state (memory and disk) after the queued jobs, and calls
    /// `done` once it is on disk (`true`), or when that failed or the engine stopped (`false`).
    /// The server calls it on `shutdown`, so a restarted editor finds the file it was in warm.
    pub fn persist(&self, done: impl FnOnce(bool) + Send + 'static) {
        if let Err(mpsc::SendError(job)) = self.tx.send(Job::Persist {
            done: Box::new(done),
        }) {
            job.reject(EngineError::Stopped);
        }
    }

    /// Replaces the plan of prompt starts evaluated ahead of the cursor for `document` (see
    /// [`crate::Backend::prefill`]).
    pub fn prefill(&self, document: String, items: Vec<PrefillItem>) {
        let _ = self.tx.send(Job::Prefill {
            doc: document,
            items,
        });
    }

    /// What prefilling has done since the engine started.
    pub fn prefill_counts(&self) -> PrefillCounts {
        self.prefills.snapshot()
    }

    /// Queues a chat request. `on_text` receives each new piece of text as it is generated;
    /// `reply` is called exactly once with the whole answer. Completions queued meanwhile run
    /// first.
    pub fn submit_chat(
        &self,
        req: ChatRequest,
        cancel: CancelToken,
        on_text: impl FnMut(&str) + Send + 'static,
        reply: impl FnOnce(Result<ChatOutput, EngineError>) + Send + 'static,
    ) {
        let job = Job::Chat {
            req,
            cancel,
            on_text: Box::new(on_text),
            reply: Reply::new(Box::new(reply)),
            received: Instant::now(),
        };
        if let Err(mpsc::SendError(job)) = self.tx.send(job) {
            job.reject(EngineError::Stopped);
        }
    }

    /// Runs a FIM request and waits for it (for the CLI, tests and benchmarks).
    pub fn complete(
        &self,
        req: FimRequest,
        cancel: CancelToken,
    ) -> Result<Completion, EngineError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit_fim(req, cancel, move |r| {
            let _ = tx.send(r);
        });
        rx.recv().unwrap_or(Err(EngineError::Stopped))
    }

    /// Runs a chat request and waits for it.
    pub fn chat(
        &self,
        req: ChatRequest,
        cancel: CancelToken,
        on_text: impl FnMut(&str) + Send + 'static,
    ) -> Result<ChatOutput, EngineError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit_chat(req, cancel, on_text, move |r| {
            let _ = tx.send(r);
        });
        rx.recv().unwrap_or(Err(EngineError::Stopped))
    }
}

impl crate::backend::Backend for Engine {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn context_size(&self) -> usize {
        self.config.context_size.max(256) as usize
    }

    fn count_tokens(&self, text: &str) -> usize {
        Engine::count_tokens(self, text)
    }

    fn submit_fim(&self, req: FimRequest, cancel: CancelToken, reply: FimReply) {
        Engine::submit_fim(self, req, cancel, reply)
    }

    fn streams_progress(&self) -> bool {
        true
    }

    fn persist(&self, done: Box<dyn FnOnce(bool) + Send>) {
        Engine::persist(self, done)
    }

    fn prefill(&self, document: String, items: Vec<PrefillItem>) {
        Engine::prefill(self, document, items)
    }

    fn submit_chat(
        &self,
        req: ChatRequest,
        cancel: CancelToken,
        on_text: ChatStream,
        reply: ChatReply,
    ) {
        Engine::submit_chat(self, req, cancel, on_text, reply)
    }
}

type Ready = Result<(ModelInfo, Arc<LlamaModel>, usize), LoadError>;

fn engine_thread(
    config: EngineConfig,
    mut progress: Box<dyn FnMut(f32) + Send>,
    rx: mpsc::Receiver<Job>,
    ready: mpsc::SyncSender<Ready>,
    prefills: Arc<prefill::Counters>,
) {
    progress(0.0);
    let loaded = model::load(&config);
    let (model, info) = match loaded {
        Ok(m) => m,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    progress(1.0);
    let model = Arc::new(model);
    let ctx = match new_context(&model, &config) {
        Ok(ctx) => ctx,
        Err(reason) => {
            let _ = ready.send(Err(LoadError::Context {
                path: config.model_path.clone(),
                context_size: config.context_size,
                reason,
            }));
            return;
        }
    };
    let n_ctx = ctx.n_ctx() as usize;
    let mut worker = Worker::new(&model, ctx, info.clone(), config, rx, prefills);
    if ready.send(Ok((info, model.clone(), n_ctx))).is_err() {
        return;
    }
    worker.run();
}

fn new_context<'m>(
    model: &'m LlamaModel,
    config: &EngineConfig,
) -> Result<LlamaContext<'m>, String> {
    let threads = i32::try_from(config.threads.max(1)).unwrap_or(8);
    let batch = config.batch_size.clamp(1, 512);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(config.context_size.max(256)))
        .with_n_batch(batch.max(128))
        .with_n_ubatch(batch.max(128))
        .with_n_seq_max(3)
        .with_kv_unified(true)
        .with_n_threads(threads)
        .with_n_threads_batch(threads);
    llama_log::clear_errors();
    model
        .new_context(model::backend(), params)
        .map_err(|e| llama_log::recent_errors().unwrap_or_else(|| e.to_string()))
}

struct Worker<'m> {
    model: &'m LlamaModel,
    ctx: LlamaContext<'m>,
    info: ModelInfo,
    config: EngineConfig,
    rx: mpsc::Receiver<Job>,
    pending: VecDeque<Job>,
    batch: LlamaBatch<'static>,
    fim: Seq,
    chat: Seq,
    stop_tokens: HashSet<LlamaToken>,
    /// Text of every token (special tokens render empty), for token healing.
    pieces: Vec<Vec<u8>>,
    can_shift: bool,
    n_ctx: usize,
    /// Set by the fault-injection hook: end the thread after answering the job.
    die: bool,
    /// The test hook for a failed decode: the next decode fails.
    fail_decode: bool,
    /// Saved KV states per document (issue 12, lever 1; see `doc_state`).
    docs: crate::doc_state::DocStates,
    /// Prompt starts to evaluate while idle (issue 12, lever 2; see `prefill`).
    plan: Option<prefill::Plan>,
    /// When the last job was served.
    last_job: Instant,
    prefills: Arc<prefill::Counters>,
    /// Prompt evaluation rates (tokens a second) of the last [`RATE_SAMPLES`] chunks of at
    /// least [`RATE_MIN_CHUNK`] tokens, or the rate saved by an earlier run (see
    /// [`Self::prompt_rate`]).
    rate_samples: VecDeque<f64>,
    /// The rate last saved to (or read from) the cache directory, so that the first cold
    /// window after a restart is sized as before it.
    rate_saved: Option<f64>,
}

impl<'m> Worker<'m> {
    fn new(
        model: &'m LlamaModel,
        ctx: LlamaContext<'m>,
        info: ModelInfo,
        config: EngineConfig,
        rx: mpsc::Receiver<Job>,
        prefills: Arc<prefill::Counters>,
    ) -> Self {
        let stop_tokens = info
            .fim
            .iter()
            .flat_map(|f| f.stop_markers.iter())
            .filter_map(|m| single_special_token(model, m))
            .collect();
        let can_shift = matches!(model.rope_type(), Some(RopeType::Norm | RopeType::NeoX));
        let pieces = (0..model.n_vocab())
            .map(|t| {
                model
                    .vocab()
                    .token_to_piece(LlamaToken::new(t), false, None)
            })
            .collect();
        let n_ctx = ctx.n_ctx() as usize;
        let batch_cap = config.batch_size.clamp(1, 512) as usize;
        let docs = crate::doc_state::DocStates::new(&config, n_ctx);
        Worker {
            model,
            ctx,
            info,
            config,
            rx,
            pending: VecDeque::new(),
            batch: LlamaBatch::new(batch_cap, 1),
            fim: Seq::default(),
            chat: Seq::default(),
            stop_tokens,
            pieces,
            can_shift,
            n_ctx,
            die: false,
            fail_decode: false,
            docs,
            plan: None,
            last_job: Instant::now(),
            prefills,
            rate_samples: VecDeque::new(),
            rate_saved: None,
        }
    }

    /// Counts a prompt chunk of `tokens` evaluated in `secs` into the prompt rate (only
    /// chunks of at least [`RATE_MIN_CHUNK`] tokens: smaller ones run slower per token).
    pub(crate) fn note_rate(&mut self, tokens: usize, secs: f64) {
        if tokens < RATE_MIN_CHUNK || secs <= 0.0 {
            return;
        }
        if self.rate_samples.len() == RATE_SAMPLES {
            self.rate_samples.pop_front();
        }
        self.rate_samples.push_back(tokens as f64 / secs);
    }

    /// Prompt evaluation rate in tokens a second: the best of the recent samples (a chunk
    /// slowed by other work on the machine does not shrink the windows for good), which sizes
    /// cold windows to their time target.
    fn prompt_rate(&self) -> Option<f64> {
        self.rate_samples.iter().copied().reduce(f64::max)
    }

    /// Saves the prompt rate when it changed by more than a tenth since it was last saved.
    fn save_rate(&mut self) {
        let Some(rate) = self.prompt_rate() else {
            return;
        };
        if self
            .rate_saved
            .is_some_and(|saved| (rate - saved).abs() <= saved * 0.1)
        {
            return;
        }
        self.docs.save_rate(rate);
        self.rate_saved = Some(rate);
    }

    fn run(&mut self) {
        if let Some(rate) = self.docs.saved_rate() {
            self.rate_samples.push_back(rate);
            self.rate_saved = Some(rate);
        }
        loop {
            let job = match self.pending.pop_front() {
                Some(job) => job,
                // Idle for a while: prefill ahead of the cursor when there is a plan, else save
                // the current document's KV state (also when stopping).
                None => {
                    let wait = if self.has_plan() {
                        prefill::PREFILL_IDLE.saturating_sub(self.last_job.elapsed())
                    } else {
                        crate::doc_state::IDLE_SAVE
                    };
                    match self.rx.recv_timeout(wait) {
                        Ok(job) => job,
                        Err(mpsc::RecvTimeoutError::Timeout) if self.has_plan() => {
                            self.prefill_step();
                            continue;
                        }
                        Err(e) => {
                            self.docs.save_current(&self.ctx, SEQ_FIM, &self.fim.tokens);
                            self.save_rate();
                            match e {
                                mpsc::RecvTimeoutError::Timeout => continue,
                                mpsc::RecvTimeoutError::Disconnected => return,
                            }
                        }
                    }
                }
            };
            self.dispatch(job);
            self.last_job = Instant::now();
        }
    }

    /// Serves one job. A panic while serving it is caught: the job is answered
    /// [`EngineError::Crashed`], the KV bookkeeping starts over and the thread serves on.
    fn dispatch(&mut self, job: Job) {
        match job {
            Job::Fim {
                req,
                cancel,
                reply,
                received,
            } => {
                let span = tracing::debug_span!("fim", prefix_len = req.prefix.len());
                let _e = span.enter();
                let mut reply = Some(reply);
                let outcome = catch_unwind(AssertUnwindSafe(|| {
                    if cancel.is_cancelled() {
                        return Err(EngineError::Cancelled);
                    }
                    self.inject_fault(&req.prefix);
                    self.run_fim(&req, &cancel, received, &mut reply)
                }));
                let result = outcome.unwrap_or_else(|p| Err(self.recover(&*p)));
                if let Some(reply) = reply.take() {
                    reply.send(result);
                }
                if self.die {
                    // The test hook for a thread that dies anyway: unwind out of the thread.
                    std::panic::resume_unwind(Box::new("injected fault: the engine thread ends"));
                }
            }
            Job::Chat {
                req,
                cancel,
                mut on_text,
                reply,
                received,
            } => {
                let outcome = catch_unwind(AssertUnwindSafe(|| {
                    if cancel.is_cancelled() {
                        return Err(EngineError::Cancelled);
                    }
                    self.run_chat(&req, &cancel, &mut on_text, received)
                }));
                let result = outcome.unwrap_or_else(|p| Err(self.recover(&*p)));
                reply.send(result);
            }
            Job::Persist { done } => {
                self.docs.save_current(&self.ctx, SEQ_FIM, &self.fim.tokens);
                self.save_rate();
                done(self.docs.flush(PERSIST_WAIT));
            }
            Job::Prefill { doc, items } => self.set_plan(doc, items),
        }
    }

    /// After a panic: forget every cached sequence (the cache and its mirror may disagree).
    fn recover(&mut self, payload: &(dyn std::any::Any + Send)) -> EngineError {
        let msg = panic_message(payload);
        tracing::error!(panic = %msg, "the engine panicked while serving a request; its cache is reset");
        self.ctx.clear_kv_cache();
        self.fim.tokens.clear();
        self.chat.tokens.clear();
        EngineError::Crashed(msg)
    }

    /// The test hook of [`FaultInjection`].
    fn inject_fault(&mut self, prefix: &str) {
        if let Some(FaultInjection {
            panic_on_prefix,
            kill_thread,
            fail_decode_on_prefix,
        }) = &self.config.fault_injection
        {
            self.fail_decode = !fail_decode_on_prefix.is_empty()
                && prefix.contains(fail_decode_on_prefix.as_str());
            if !panic_on_prefix.is_empty() && prefix.contains(panic_on_prefix.as_str()) {
                self.die = *kill_thread;
                panic!("injected fault");
            }
        }
    }

    /// Runs FIM jobs that arrived while a chat is generating; chat jobs wait their turn.
    fn serve_waiting_completions(&mut self) -> bool {
        let mut ran = false;
        while let Ok(job) = self.rx.try_recv() {
            match job {
                Job::Fim { .. } => {
                    self.dispatch(job);
                    ran = true;
                }
                Job::Chat { .. } | Job::Persist { .. } | Job::Prefill { .. } => {
                    self.pending.push_back(job)
                }
            }
        }
        ran
    }

    /// The FIM prompt of `req`, fitted to the context (see [`crate::prompt`]).
    fn fim_prompt(
        &self,
        req: &FimRequest,
        max_tokens: usize,
    ) -> Result<Vec<LlamaToken>, EngineError> {
        fim_prompt(self.model, &self.info, self.n_ctx, req, max_tokens)
    }

    fn run_fim(
        &mut self,
        req: &FimRequest,
        cancel: &CancelToken,
        received: Instant,
        reply: &mut Option<Reply<Completion>>,
    ) -> Result<Completion, EngineError> {
        let max_tokens = req.max_tokens.unwrap_or(self.config.max_tokens);
        // Token healing: the prefix's last token is taken out of the prompt and the first
        // generated tokens must reproduce its text, so a cursor inside a token (`ret|`) does
        // not force the model to continue from an unnatural token boundary.
        let healed = if req.token_healing {
            self.healable_tail(&req.prefix)
        } else {
            String::new()
        };
        let prompt = if healed.is_empty() {
            self.fim_prompt(req, max_tokens)?
        } else {
            let mut trimmed = req.clone();
            trimmed.prefix.truncate(req.prefix.len() - healed.len());
            self.fim_prompt(&trimmed, max_tokens)?
        };
        // A cold place asks with its smaller window, when the request allows one.
        let (prompt, cold) = self.cold_or(req, prompt, &healed, max_tokens)?;
        // Per-document KV state: of what the sequence holds, the document's last state and its
        // prefilled starts, the one that spares the most of this prompt (shared start and shiftable
        // suffix).
        if let Some(doc) = req.document.as_deref() {
            self.docs
                .prepare(&mut self.ctx, SEQ_FIM, &mut self.fim.tokens, doc, &prompt);
            self.docs.set_cold(cold);
        }
        let mut stats = Stats {
            cold: cold.is_some(),
            ..Stats::for_prompt(prompt.len())
        };
        let eval_start = Instant::now();
        // Past the deadline the request is answered at once (empty); its prompt is evaluated
        // on while nothing else waits, for the next keystroke.
        let mut answer_late = |partial: &Stats| {
            if let Some(reply) = reply.take() {
                let mut stats = *partial;
                stats.prompt_ms = ms(eval_start);
                stats.total_ms = ms(received);
                reply.send(Ok(Completion {
                    text: String::new(),
                    stop: StopReason::Deadline,
                    stats,
                }));
            }
        };
        let sync = self.sync(
            SEQ_FIM,
            &prompt,
            cancel,
            req.deadline,
            &mut stats,
            &mut answer_late,
        );
        stats.prompt_ms = ms(eval_start);
        let logits_at = match sync {
            Ok(i) => i,
            Err(Interrupt::Deadline) => {
                stats.total_ms = ms(received);
                return Ok(Completion {
                    text: String::new(),
                    stop: StopReason::Deadline,
                    stats,
                });
            }
            Err(e) => return Err(e.into()),
        };

        let mut stops = req.stop.clone();
        if let Some(f) = &self.info.fim {
            stops.extend(f.stop_markers.iter().cloned());
        }
        let suffix_for_stop = if req.stop_at_suffix {
            req.suffix.as_str()
        } else {
            ""
        };
        let checker = StopChecker::new(stops, suffix_for_stop)
            .with_line_end(req.line_end.clone())
            .with_settled(req.settled.clone());
        let healed_len = healed.len();
        let (text, stop) = self.generate(
            Generation {
                id: SEQ_FIM,
                max_tokens,
                deadline: req.deadline,
                received,
                heal: healed.as_bytes().to_vec(),
                yield_to_completions: false,
                non_empty: req.non_empty,
            },
            logits_at,
            cancel,
            &mut stats,
            &mut |text, _| {
                if text.len() < healed_len {
                    return None;
                }
                let stop = checker
                    .check(&text[healed_len..])
                    .map(|(cut, why)| (healed_len + cut, why));
                if let (None, Some(p)) = (&stop, &req.progress) {
                    p.report(&text[healed_len..]);
                }
                stop
            },
        )?;
        let text = match text.strip_prefix(healed.as_str()) {
            Some(visible) => visible.to_owned(),
            // Stopped before the healed text was reproduced: nothing to insert.
            None => String::new(),
        };
        stats.total_ms = ms(received);
        tracing::debug!(?stop, "fim done {stats}");
        Ok(Completion { text, stop, stats })
    }

    /// `prompt`, or the prompt of `req`'s cold window when nothing cached shares enough of
    /// `prompt`'s start (more than the cold window would have to be evaluated); the cold
    /// window's sizes when it was used.
    fn cold_or(
        &mut self,
        req: &FimRequest,
        prompt: Vec<LlamaToken>,
        healed: &str,
        max_tokens: usize,
    ) -> Result<(Vec<LlamaToken>, Option<ColdSizes>), EngineError> {
        let (Some(cold), Some(doc)) = (req.cold_window, req.document.as_deref()) else {
            return Ok((prompt, None));
        };
        let cached = self.docs.best_shared(doc, &self.fim.tokens, &prompt);
        // The sizes the document's cached prompt was cut to, if any, are kept while that
        // window's start is held (the user types at the same place, or comes back to it, also
        // after a restart); at a new place the window is sized anew for the measured rate.
        let sized = cold.sized(self.prompt_rate());
        let mut held = None;
        if let Some(kept) = self.docs.cold_size(doc).filter(|k| *k != sized) {
            let small = self.cold_prompt(req, healed, max_tokens, kept)?;
            if self.docs.best_shared(doc, &self.fim.tokens, &small) * 2 >= small.len() {
                held = Some((kept, small));
            }
        }
        let size = held.as_ref().map_or(sized, |(k, _)| *k);
        if prompt.len().saturating_sub(cached) <= size.0 + size.1 + COLD_SLACK {
            return Ok((prompt, None));
        }
        let small = match held {
            Some((_, small)) => small,
            None => self.cold_prompt(req, healed, max_tokens, size)?,
        };
        tracing::debug!(
            prefix_tokens = size.0,
            suffix_tokens = size.1,
            rate = self.prompt_rate().map(|r| r.round()),
            "cold window"
        );
        Ok((small, Some(size)))
    }

    /// The prompt of `req`'s window cut to `sizes` (prefix, suffix tokens).
    fn cold_prompt(
        &mut self,
        req: &FimRequest,
        healed: &str,
        max_tokens: usize,
        sizes: ColdSizes,
    ) -> Result<Vec<LlamaToken>, EngineError> {
        let prefix = &req.prefix[..req.prefix.len() - healed.len()];
        let (p, s) = prompt::shrink(prefix, &req.suffix, sizes.0, sizes.1, &Vocab(self.model));
        let small = FimRequest {
            prefix: p.to_owned(),
            suffix: s.to_owned(),
            ..req.clone()
        };
        self.fim_prompt(&small, max_tokens)
    }

    fn run_chat(
        &mut self,
        req: &ChatRequest,
        cancel: &CancelToken,
        on_text: &mut ChatStream,
        received: Instant,
    ) -> Result<ChatOutput, EngineError> {
        let template = self
            .model
            .chat_template(None)
            .map_err(|_| EngineError::NoChatTemplate {
                model: self.info.name.clone(),
            })?;
        let messages = req
            .messages
            .iter()
            .map(|(role, content)| {
                LlamaChatMessage::new(role.clone(), content.replace('\0', ""))
                    .map_err(|e| EngineError::Decode(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let prompt_text = self
            .model
            .apply_chat_template(&template, &messages, true)
            .map_err(|e| EngineError::Decode(format!("chat template: {e}")))?;
        let tokens = self
            .model
            .vocab()
            .tokenize(prompt_text.as_bytes(), false, true);
        let room = self.n_ctx.saturating_sub(req.max_tokens + 1);
        if tokens.len() > room {
            return Err(EngineError::PromptTooLong {
                tokens: tokens.len(),
                context: self.n_ctx as u32,
            });
        }
        let mut stats = Stats::for_prompt(tokens.len());
        let t0 = Instant::now();
        let logits_at = self
            .sync(
                SEQ_CHAT,
                &tokens,
                cancel,
                req.deadline,
                &mut stats,
                &mut |_| {},
            )
            .map_err(EngineError::from)?;
        stats.prompt_ms = ms(t0);
        let (text, stop) = self.generate(
            Generation {
                id: SEQ_CHAT,
                max_tokens: req.max_tokens,
                deadline: req.deadline,
                received,
                heal: Vec::new(),
                yield_to_completions: true,
                non_empty: false,
            },
            logits_at,
            cancel,
            &mut stats,
            &mut |text, before| {
                if text.len() > before {
                    on_text(&text[before..]);
                }
                None
            },
        )?;
        stats.total_ms = ms(received);
        Ok(ChatOutput { text, stop, stats })
    }

    /// The token loop shared by completions and chats: picks tokens greedily (reproducing
    /// `heal` first), assembles their text, asks `on_text(text, len_before)` after each piece
    /// whether to stop (and where to cut), and evaluates each token in sequence `id`. A chat
    /// lets completions that arrive meanwhile run first, then evaluates its last token again.
    fn generate(
        &mut self,
        g: Generation,
        mut logits_at: i32,
        cancel: &CancelToken,
        stats: &mut Stats,
        on_text: &mut OnText<'_>,
    ) -> Result<(String, StopReason), EngineError> {
        let mut history = if g.yield_to_completions {
            self.seq_mut(g.id).tokens.clone()
        } else {
            Vec::new()
        };
        let heal_len = g.heal.len();
        let mut need = g.heal;
        let mut text = String::new();
        let mut utf8 = Utf8Assembler::default();
        let mut stop = StopReason::MaxTokens;
        while stats.generated_tokens < g.max_tokens {
            if cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            if g.deadline.is_some_and(|d| Instant::now() >= d) {
                stop = StopReason::Deadline;
                break;
            }
            let logits = self.ctx.get_logits_ith(logits_at);
            let blank = g.non_empty && text.get(heal_len..).is_none_or(|t| t.trim().is_empty());
            let token = LlamaToken::new(if !need.is_empty() {
                sampling::greedy_with_prefix(logits, &self.pieces, &need)
            } else if blank {
                sampling::greedy_where(logits, |i| !self.is_stop_token(LlamaToken::new(i as i32)))
            } else {
                sampling::greedy(logits)
            } as i32);
            stats.generated(g.received);
            if self.is_stop_token(token) {
                stop = StopReason::EndOfText;
                break;
            }
            let piece = &self.pieces[token.0 as usize];
            sampling::consume_heal(&mut need, piece);
            let before = text.len();
            utf8.push(piece, &mut text);
            if let Some((cut, why)) = on_text(&text, before) {
                text.truncate(cut);
                stop = why;
                break;
            }
            if stats.generated_tokens == g.max_tokens {
                break;
            }
            if self.seq_mut(g.id).tokens.len() + 1 >= self.n_ctx {
                stop = StopReason::ContextFull;
                break;
            }
            if g.yield_to_completions {
                history.push(token);
                if self.serve_waiting_completions() {
                    // The logits of the last token were overwritten: evaluate it again
                    // (everything before it is still cached unless a completion needed the
                    // room).
                    let mut resync = Stats::default();
                    logits_at = self
                        .sync(g.id, &history, cancel, g.deadline, &mut resync, &mut |_| {})
                        .map_err(EngineError::from)?;
                    continue;
                }
            }
            logits_at = self.decode_one(g.id, token).map_err(EngineError::from)?;
        }
        Ok((text, stop))
    }

    /// The text of the last token of `prefix`, when healing it makes sense.
    fn healable_tail(&self, prefix: &str) -> String {
        let tokens = self.model.vocab().tokenize(prefix.as_bytes(), false, false);
        match tokens.last() {
            Some(last) => sampling::healable_tail(prefix, &self.pieces[last.0 as usize]),
            None => String::new(),
        }
    }

    fn is_stop_token(&self, token: LlamaToken) -> bool {
        let vocab = self.model.vocab();
        vocab.is_eog(token) || vocab.is_control(token) || self.stop_tokens.contains(&token)
    }

    /// Whether another request is queued (it is moved to `pending`, keeping its turn).
    fn job_waiting(&mut self) -> bool {
        if let Ok(job) = self.rx.try_recv() {
            self.pending.push_back(job);
        }
        !self.pending.is_empty()
    }
}

/// The tokens of plain `text` (markers not parsed), counted by the tokenizer itself.
fn tokens_of(model: &LlamaModel, text: &str) -> usize {
    model.vocab().tokenize(text.as_bytes(), false, false).len()
}

/// The model's vocabulary as the prompt fitter's tokenizer: document text plain, the
/// format's text with special tokens parsed.
struct Vocab<'m>(&'m LlamaModel);

impl prompt::Tokenizer for Vocab<'_> {
    type Token = LlamaToken;

    fn plain(&self, text: &str) -> Vec<LlamaToken> {
        self.0.vocab().tokenize(text.as_bytes(), false, false)
    }

    fn special(&self, text: &str) -> Vec<LlamaToken> {
        self.0.vocab().tokenize(text.as_bytes(), false, true)
    }

    fn start(&self) -> Vec<LlamaToken> {
        let vocab = self.0.vocab();
        if vocab.should_add_bos() {
            vec![vocab.bos()]
        } else {
            Vec::new()
        }
    }
}

/// Renders, tokenizes and trims the FIM prompt of `req` to leave room for `max_tokens`.
fn fim_prompt(
    model: &LlamaModel,
    info: &ModelInfo,
    n_ctx: usize,
    req: &FimRequest,
    max_tokens: usize,
) -> Result<Vec<LlamaToken>, EngineError> {
    let format = info.fim.as_ref().ok_or_else(|| EngineError::NoFim {
        model: info.name.clone(),
    })?;
    let budget = n_ctx.saturating_sub(max_tokens + 1);
    let input = req.fim_input();
    prompt::fit(format, &input, req.order, budget, &Vocab(model)).map_err(|e| {
        EngineError::PromptTooLong {
            tokens: e.tokens,
            context: n_ctx as u32,
        }
    })
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}
