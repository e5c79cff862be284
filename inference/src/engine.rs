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
//! `batch_size` tokens) and between generated tokens. A request past its deadline during prompt
//! evaluation is answered late-and-empty, but its prompt is evaluated to the end while no other
//! request waits, so that the next keystroke finds it cached. Sampling is greedy. This module does not
//! shape completions (the language server does) and never blocks an async runtime: callers get
//! their answer through a callback.

use std::collections::{HashSet, VecDeque};
use std::num::NonZeroU32;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::{LlamaChatMessage, LlamaModel, RopeType};
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::DecodeError;

use crate::fim::FimInput;
use crate::model::{self, single_special_token, ModelInfo};
use crate::stop::{StopChecker, StopReason};
use crate::{
    llama_log, CancelToken, ChatOutput, ChatRequest, Completion, EngineConfig, EngineError,
    FimRequest, LoadError, Stats,
};

const SEQ_FIM: i32 = 0;
const SEQ_PARK: i32 = 1;
const SEQ_CHAT: i32 = 2;
/// Prefix lines are dropped in blocks of this many when a prompt is too long, so the start of
/// the prompt stays put while the user types.
const PREFIX_TRIM_LINES: usize = 32;

use crate::backend::{ChatReply, ChatStream, FimReply};

// One job per request on a channel: its size does not matter.
#[allow(clippy::large_enum_variant)]
enum Job {
    Fim {
        req: FimRequest,
        cancel: CancelToken,
        reply: FimReply,
        received: Instant,
    },
    Chat {
        req: ChatRequest,
        cancel: CancelToken,
        on_text: ChatStream,
        reply: ChatReply,
        received: Instant,
    },
}

impl Job {
    fn reject(self, err: EngineError) {
        match self {
            Job::Fim { reply, .. } => reply(Err(err)),
            Job::Chat { reply, .. } => reply(Err(err)),
        }
    }
}

/// A handle to the engine thread. Cheap to share behind an `Arc`; dropping the last handle
/// stops the thread after its current request.
pub struct Engine {
    tx: mpsc::Sender<Job>,
    info: ModelInfo,
    config: EngineConfig,
    model: Arc<LlamaModel>,
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
        std::thread::Builder::new()
            .name("ghostline-engine".into())
            .spawn(move || engine_thread(thread_config, progress, rx, ready_tx))
            .map_err(LoadError::Thread)?;
        let (info, model) = ready_rx.recv().map_err(|_| LoadError::Llama {
            path: config.model_path.clone(),
            reason: "the engine thread stopped while loading".into(),
        })??;
        Ok(Engine {
            tx,
            info,
            config,
            model,
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
    /// thread while the engine works.
    pub fn count_tokens(&self, text: &str) -> usize {
        self.model
            .vocab()
            .tokenize(text.as_bytes(), false, false)
            .len()
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
            reply: Box::new(reply),
            received: Instant::now(),
        };
        if let Err(mpsc::SendError(job)) = self.tx.send(job) {
            job.reject(EngineError::Stopped);
        }
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
            reply: Box::new(reply),
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

type Ready = Result<(ModelInfo, Arc<LlamaModel>), LoadError>;

fn engine_thread(
    config: EngineConfig,
    mut progress: Box<dyn FnMut(f32) + Send>,
    rx: mpsc::Receiver<Job>,
    ready: mpsc::SyncSender<Ready>,
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
    let mut worker = Worker::new(&model, ctx, info.clone(), config, rx);
    if ready.send(Ok((info, model.clone()))).is_err() {
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

/// Tokens of one KV sequence, mirroring exactly what is in the cache at positions 0…len.
#[derive(Default)]
struct Seq {
    tokens: Vec<LlamaToken>,
}

/// Why evaluation stopped early.
enum Interrupt {
    Cancelled,
    Deadline,
    Failed(EngineError),
}

impl From<Interrupt> for EngineError {
    fn from(i: Interrupt) -> Self {
        match i {
            Interrupt::Cancelled => EngineError::Cancelled,
            Interrupt::Deadline => EngineError::Cancelled,
            Interrupt::Failed(e) => e,
        }
    }
}

/// A run of cached tokens reused at another position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Shift {
    cache_start: usize,
    prompt_start: usize,
    len: usize,
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
    /// Saved KV states per document (issue 12, lever 1; see `doc_state`).
    docs: crate::doc_state::DocStates,
}

impl<'m> Worker<'m> {
    fn new(
        model: &'m LlamaModel,
        ctx: LlamaContext<'m>,
        info: ModelInfo,
        config: EngineConfig,
        rx: mpsc::Receiver<Job>,
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
            docs,
        }
    }

    fn run(&mut self) {
        loop {
            let job = match self.pending.pop_front() {
                Some(job) => job,
                // Idle for a while (or stopping): the current document's KV state is saved.
                None => match self.rx.recv_timeout(crate::doc_state::IDLE_SAVE) {
                    Ok(job) => job,
                    Err(e) => {
                        self.docs.save_current(&self.ctx, SEQ_FIM, &self.fim.tokens);
                        match e {
                            mpsc::RecvTimeoutError::Timeout => continue,
                            mpsc::RecvTimeoutError::Disconnected => return,
                        }
                    }
                },
            };
            self.dispatch(job);
        }
    }

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
                let result = if cancel.is_cancelled() {
                    Err(EngineError::Cancelled)
                } else {
                    self.run_fim(&req, &cancel, received)
                };
                reply(result);
            }
            Job::Chat {
                req,
                cancel,
                mut on_text,
                reply,
                received,
            } => {
                let result = if cancel.is_cancelled() {
                    Err(EngineError::Cancelled)
                } else {
                    self.run_chat(&req, &cancel, &mut on_text, received)
                };
                reply(result);
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
                Job::Chat { .. } => self.pending.push_back(job),
            }
        }
        ran
    }

    fn tokenize(&self, text: &str) -> Vec<LlamaToken> {
        self.model.vocab().tokenize(text.as_bytes(), true, true)
    }

    /// Renders and tokenizes the FIM prompt, trimming it to fit the context: the suffix to a
    /// quarter of the room, then context blocks, then prefix lines in fixed blocks from the top.
    fn fim_prompt(
        &self,
        req: &FimRequest,
        max_tokens: usize,
    ) -> Result<Vec<LlamaToken>, EngineError> {
        let format = self.info.fim.as_ref().ok_or_else(|| EngineError::NoFim {
            model: self.info.name.clone(),
        })?;
        let room = self.n_ctx.saturating_sub(max_tokens + 1);
        let mut suffix: &str = &req.suffix;
        let mut prefix: &str = &req.prefix;
        let mut context: &[crate::ContextBlock] = &req.context;
        let count = |s: &str| {
            self.model
                .vocab()
                .tokenize(s.as_bytes(), false, false)
                .len()
        };
        loop {
            let input = FimInput {
                path: req.path.as_deref(),
                prefix,
                suffix,
                context,
                repo_name: req.repo_name.as_deref(),
            };
            let tokens = self.tokenize(&format.render(&input, req.order));
            if tokens.len() <= room {
                return Ok(tokens);
            }
            let over = tokens.len() - room;
            // What gives way, in order: the suffix beyond a quarter of the window; the prefix
            // beyond half of it while there is repository context (nearby code matters more
            // than a distant start of the file, and context beats both once that is gone);
            // context blocks, the first (most basic dependency) first; then the prefix.
            let prefix_tokens = count(prefix);
            if count(suffix) > room / 4 && suffix.contains('\n') {
                suffix = cut_lines_from_end(suffix, count, room / 4);
            } else if !context.is_empty()
                && prefix_tokens > room / 2 + PREFIX_TRIM_SLACK
                && prefix.contains('\n')
            {
                let cut =
                    cut_line_blocks_from_start(prefix, count, over.min(prefix_tokens - room / 2));
                if cut.len() == prefix.len() {
                    context = &context[1..];
                } else {
                    prefix = cut;
                }
            } else if !context.is_empty() {
                context = &context[1..];
            } else if prefix.contains('\n') {
                prefix = cut_line_blocks_from_start(prefix, count, over);
            } else {
                return Err(EngineError::PromptTooLong {
                    tokens: tokens.len(),
                    context: self.n_ctx as u32,
                });
            }
        }
    }

    fn run_fim(
        &mut self,
        req: &FimRequest,
        cancel: &CancelToken,
        received: Instant,
    ) -> Result<Completion, EngineError> {
        // Per-document KV state: save the one the sequence holds, restore this document's.
        self.docs.switch_to(
            &mut self.ctx,
            SEQ_FIM,
            &mut self.fim.tokens,
            req.document.as_deref(),
        );
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
        let mut need: Vec<u8> = healed.as_bytes().to_vec();
        let mut stats = Stats {
            prompt_tokens: prompt.len(),
            ..Stats::default()
        };
        let eval_start = Instant::now();
        let sync = self.sync(SEQ_FIM, &prompt, cancel, req.deadline, &mut stats);
        stats.prompt_ms = ms(eval_start);
        let mut logits_at = match sync {
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
        let checker = StopChecker::new(stops, suffix_for_stop).with_line_end(req.line_end.clone());
        let mut text = String::new();
        let mut pending_bytes = Vec::new();
        let mut stop = StopReason::MaxTokens;
        while stats.generated_tokens < max_tokens {
            if cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            if req.deadline.is_some_and(|d| Instant::now() >= d) {
                stop = StopReason::Deadline;
                break;
            }
            let token = if need.is_empty() {
                self.greedy(logits_at)
            } else {
                self.greedy_with_prefix(logits_at, &need)
            };
            if stats.generated_tokens == 0 {
                stats.first_token_ms = ms(received);
            }
            stats.generated_tokens += 1;
            if self.is_stop_token(token) {
                stop = StopReason::EndOfText;
                break;
            }
            if !need.is_empty() {
                let piece = &self.pieces[token.0 as usize];
                let covered = piece.len().min(need.len());
                need.drain(..covered);
            }
            self.append_piece(token, &mut pending_bytes, &mut text);
            if text.len() >= healed.len() {
                if let Some((cut, why)) = checker.check(&text[healed.len()..]) {
                    text.truncate(healed.len() + cut);
                    stop = why;
                    break;
                }
            }
            if stats.generated_tokens == max_tokens {
                break;
            }
            if self.fim.tokens.len() + 1 >= self.n_ctx {
                stop = StopReason::ContextFull;
                break;
            }
            logits_at = self.decode_one(SEQ_FIM, token).map_err(EngineError::from)?;
        }
        let text = match text.strip_prefix(healed.as_str()) {
            Some(visible) => visible.to_owned(),
            // Stopped before the healed text was reproduced: nothing to insert.
            None => String::new(),
        };
        stats.total_ms = ms(received);
        tracing::debug!(
            prompt = stats.prompt_tokens,
            reused = stats.reused_tokens,
            shifted = stats.shifted_tokens,
            evaluated = stats.evaluated_tokens,
            generated = stats.generated_tokens,
            first_token_ms = stats.first_token_ms,
            total_ms = stats.total_ms,
            ?stop,
            "fim done"
        );
        Ok(Completion { text, stop, stats })
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
        let mut tokens = self
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
        let mut stats = Stats {
            prompt_tokens: tokens.len(),
            ..Stats::default()
        };
        let t0 = Instant::now();
        let mut logits_at = self
            .sync(SEQ_CHAT, &tokens, cancel, req.deadline, &mut stats)
            .map_err(EngineError::from)?;
        stats.prompt_ms = ms(t0);
        let mut text = String::new();
        let mut pending_bytes = Vec::new();
        let mut stop = StopReason::MaxTokens;
        while stats.generated_tokens < req.max_tokens {
            if cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            if req.deadline.is_some_and(|d| Instant::now() >= d) {
                stop = StopReason::Deadline;
                break;
            }
            let token = self.greedy(logits_at);
            if stats.generated_tokens == 0 {
                stats.first_token_ms = ms(received);
            }
            stats.generated_tokens += 1;
            if self.is_stop_token(token) {
                stop = StopReason::EndOfText;
                break;
            }
            let before = text.len();
            self.append_piece(token, &mut pending_bytes, &mut text);
            if text.len() > before {
                on_text(&text[before..]);
            }
            tokens.push(token);
            if tokens.len() + 1 >= self.n_ctx {
                stop = StopReason::ContextFull;
                break;
            }
            if self.serve_waiting_completions() {
                // The logits of the chat's last token were overwritten: evaluate it again
                // (everything before it is still cached unless a completion needed the room).
                let mut resync = Stats::default();
                logits_at = self
                    .sync(SEQ_CHAT, &tokens, cancel, req.deadline, &mut resync)
                    .map_err(EngineError::from)?;
            } else {
                logits_at = self
                    .decode_one(SEQ_CHAT, token)
                    .map_err(EngineError::from)?;
            }
        }
        stats.total_ms = ms(received);
        Ok(ChatOutput { text, stop, stats })
    }

    fn is_stop_token(&self, token: LlamaToken) -> bool {
        let vocab = self.model.vocab();
        vocab.is_eog(token) || vocab.is_control(token) || self.stop_tokens.contains(&token)
    }

    /// The text of the last token of `prefix`, when healing it makes sense.
    fn healable_tail(&self, prefix: &str) -> String {
        let tokens = self.model.vocab().tokenize(prefix.as_bytes(), false, false);
        let Some(&last) = tokens.last() else {
            return String::new();
        };
        let piece = &self.pieces[last.0 as usize];
        match std::str::from_utf8(piece) {
            Ok(p) if !p.is_empty() && prefix.ends_with(p) && !p.contains('\n') => p.to_owned(),
            _ => String::new(),
        }
    }

    /// The most likely token whose text agrees with `need` (starts with it, or is a start of
    /// it), so that generation reproduces the healed text before going on.
    fn greedy_with_prefix(&self, logits_at: i32, need: &[u8]) -> LlamaToken {
        let logits = self.ctx.get_logits_ith(logits_at);
        let mut best = None;
        let mut best_logit = f32::NEG_INFINITY;
        for (i, &l) in logits.iter().enumerate() {
            if l <= best_logit {
                continue;
            }
            let p = &self.pieces[i];
            if !p.is_empty() && (p.starts_with(need) || need.starts_with(p)) {
                best_logit = l;
                best = Some(i);
            }
        }
        match best {
            Some(i) => LlamaToken::new(i as i32),
            None => self.greedy(logits_at),
        }
    }

    fn greedy(&self, logits_at: i32) -> LlamaToken {
        let logits = self.ctx.get_logits_ith(logits_at);
        let mut best = 0usize;
        let mut best_logit = f32::NEG_INFINITY;
        for (i, &l) in logits.iter().enumerate() {
            if l > best_logit {
                best_logit = l;
                best = i;
            }
        }
        LlamaToken::new(best as i32)
    }

    /// Appends the token's text, holding back an incomplete UTF-8 sequence.
    fn append_piece(&self, token: LlamaToken, pending: &mut Vec<u8>, text: &mut String) {
        pending.extend(self.model.vocab().token_to_piece(token, false, None));
        loop {
            match std::str::from_utf8(pending) {
                Ok(s) => {
                    text.push_str(s);
                    pending.clear();
                    return;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    text.push_str(std::str::from_utf8(&pending[..valid]).unwrap_or_default());
                    match e.error_len() {
                        // Incomplete sequence at the end: wait for the next token.
                        None => {
                            pending.drain(..valid);
                            return;
                        }
                        Some(bad) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }

    fn seq_mut(&mut self, id: i32) -> &mut Seq {
        if id == SEQ_CHAT {
            &mut self.chat
        } else {
            &mut self.fim
        }
    }

    /// Makes sequence `id` hold `prompt`, evaluating as little as possible, and returns the
    /// batch index of the last prompt token's logits.
    ///
    /// The common token prefix is kept. For the FIM sequence, a later run of cached tokens that
    /// reappears further on in the prompt (the unchanged suffix after a keystroke in the
    /// prefix) is moved to its new position instead of being evaluated again: it is parked in
    /// sequence 1, the new tokens before it are evaluated in sequence 0 (so they never attend
    /// to it), then it is shifted and handed back.
    fn sync(
        &mut self,
        id: i32,
        prompt: &[LlamaToken],
        cancel: &CancelToken,
        deadline: Option<Instant>,
        stats: &mut Stats,
    ) -> Result<i32, Interrupt> {
        let reuse = self.config.reuse;
        let try_shift = reuse && self.config.reuse_shift && self.can_shift && id == SEQ_FIM;
        let min_shift = self.config.reuse_min_tokens.max(1);
        let cached = if id == SEQ_CHAT {
            &self.chat.tokens
        } else {
            &self.fim.tokens
        };
        let mut n_past = if reuse {
            common_prefix(cached, prompt)
        } else {
            0
        };
        // The last prompt token is always evaluated: its logits give the first token.
        n_past = n_past.min(prompt.len().saturating_sub(1));
        let refresh = self.config.reuse_refresh_tokens;
        let shift = if try_shift {
            find_shift(cached, prompt, n_past, min_shift + refresh).map(|sh| Shift {
                cache_start: sh.cache_start + refresh,
                prompt_start: sh.prompt_start + refresh,
                len: sh.len - refresh,
            })
        } else {
            None
        };
        stats.reused_tokens = n_past;

        if let Some(sh) = shift {
            // Park the run in its own sequence before the tail of this one is removed.
            let _ = self.ctx.kv_cache_seq_rm(SEQ_PARK, None, None);
            let _ = self.ctx.kv_cache_seq_cp(
                id,
                SEQ_PARK,
                Some(sh.cache_start as u32),
                Some((sh.cache_start + sh.len) as u32),
            );
        }
        self.kv_rm(id, n_past);
        self.seq_mut(id).tokens.truncate(n_past);
        if let Some(sh) = shift {
            let delta = sh.prompt_start as i64 - sh.cache_start as i64;
            let _ = self.ctx.kv_cache_seq_add(
                SEQ_PARK,
                Some(sh.cache_start as u32),
                Some((sh.cache_start + sh.len) as u32),
                delta as i32,
            );
            let gap = &prompt[n_past..sh.prompt_start];
            let result = self.eval(id, gap, false, cancel, deadline, stats);
            if let Err(e) = result {
                let _ = self.ctx.kv_cache_seq_rm(SEQ_PARK, None, None);
                return Err(e);
            }
            let _ = self.ctx.kv_cache_seq_cp(SEQ_PARK, id, None, None);
            let _ = self.ctx.kv_cache_seq_rm(SEQ_PARK, None, None);
            let seq = self.seq_mut(id);
            seq.tokens
                .extend_from_slice(&prompt[sh.prompt_start..sh.prompt_start + sh.len]);
            stats.shifted_tokens = sh.len;
            n_past = sh.prompt_start + sh.len;
        }
        let rest = &prompt[n_past..];
        let idx = self.eval(id, rest, true, cancel, deadline, stats)?;
        Ok(idx)
    }

    fn kv_rm(&mut self, id: i32, from: usize) {
        if self
            .ctx
            .kv_cache_seq_rm(id, Some(from as u32), None)
            .is_err()
        {
            // Partial removal is refused only by recurrent models: start over.
            let _ = self.ctx.kv_cache_seq_rm(id, None, None);
            self.seq_mut(id).tokens.clear();
        }
    }

    /// Evaluates `tokens` at the end of sequence `id` in chunks, checking for cancellation
    /// between chunks. Returns the batch index of the last token (logits requested only for it
    /// when `want_logits`).
    fn eval(
        &mut self,
        id: i32,
        tokens: &[LlamaToken],
        want_logits: bool,
        cancel: &CancelToken,
        deadline: Option<Instant>,
        stats: &mut Stats,
    ) -> Result<i32, Interrupt> {
        let chunk_len = (self.config.batch_size.clamp(1, 512)) as usize;
        let mut last = 0;
        let n = tokens.len();
        let mut late = false;
        for (c, chunk) in tokens.chunks(chunk_len).enumerate() {
            if cancel.is_cancelled() {
                return Err(Interrupt::Cancelled);
            }
            if !late && deadline.is_some_and(|d| Instant::now() >= d) {
                late = true;
            }
            if late && self.job_waiting() {
                return Err(Interrupt::Deadline);
            }
            let start = self.seq_mut(id).tokens.len();
            self.batch.clear();
            for (i, &t) in chunk.iter().enumerate() {
                let is_last = c * chunk_len + i + 1 == n;
                self.batch
                    .add(t, (start + i) as i32, &[id], want_logits && is_last)
                    .map_err(|e| Interrupt::Failed(EngineError::Decode(e.to_string())))?;
            }
            self.decode_batch()?;
            self.seq_mut(id).tokens.extend_from_slice(chunk);
            stats.evaluated_tokens += chunk.len();
            last = chunk.len() as i32 - 1;
        }
        if late {
            // The answer is late, but the prompt is now in the cache: the next keystroke's
            // request finds it there instead of starting over.
            return Err(Interrupt::Deadline);
        }
        Ok(last)
    }

    /// Whether another request is queued (it is moved to `pending`, keeping its turn).
    fn job_waiting(&mut self) -> bool {
        if let Ok(job) = self.rx.try_recv() {
            self.pending.push_back(job);
        }
        !self.pending.is_empty()
    }

    fn decode_one(&mut self, id: i32, token: LlamaToken) -> Result<i32, Interrupt> {
        let pos = self.seq_mut(id).tokens.len() as i32;
        self.batch.clear();
        self.batch
            .add(token, pos, &[id], true)
            .map_err(|e| Interrupt::Failed(EngineError::Decode(e.to_string())))?;
        self.decode_batch()?;
        self.seq_mut(id).tokens.push(token);
        Ok(0)
    }

    /// Decodes the batch; when the cache is full, a paused chat gives up its room first.
    fn decode_batch(&mut self) -> Result<(), Interrupt> {
        match self.ctx.decode(&mut self.batch) {
            Ok(()) => Ok(()),
            Err(DecodeError::NoKvCacheSlot) if !self.chat.tokens.is_empty() => {
                tracing::debug!("KV cache full: evicting the paused chat");
                let _ = self.ctx.kv_cache_seq_rm(SEQ_CHAT, None, None);
                self.chat.tokens.clear();
                self.ctx
                    .decode(&mut self.batch)
                    .map_err(|e| Interrupt::Failed(EngineError::Decode(e.to_string())))
            }
            Err(e) => Err(Interrupt::Failed(EngineError::Decode(e.to_string()))),
        }
    }
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

/// Finds the first run of at least `min` cached tokens after `n_past` that reappears in the
/// prompt after `n_past` (excluding the prompt's last token, which is always evaluated).
fn find_shift(
    cached: &[LlamaToken],
    prompt: &[LlamaToken],
    n_past: usize,
    min: usize,
) -> Option<Shift> {
    let end = prompt.len().saturating_sub(1);
    if cached.len() <= n_past || end <= n_past {
        return None;
    }
    let window = min.max(1);
    let cache_tail = &cached[n_past..];
    // Index the cache by the first `window` tokens of each run.
    let mut starts: std::collections::HashMap<&[LlamaToken], usize> = Default::default();
    for i in 0..cache_tail.len().saturating_sub(window - 1) {
        starts.entry(&cache_tail[i..i + window]).or_insert(i);
    }
    for p in n_past..end.saturating_sub(window - 1) {
        let Some(&c) = starts.get(&prompt[p..p + window]) else {
            continue;
        };
        let cache_start = n_past + c;
        let len = cached[cache_start..]
            .iter()
            .zip(&prompt[p..end])
            .take_while(|(x, y)| x == y)
            .count();
        if len >= min {
            return Some(Shift {
                cache_start,
                prompt_start: p,
                len,
            });
        }
    }
    None
}

/// Keeps the first lines of `text` that fit in `budget` tokens.
fn cut_lines_from_end<'a>(text: &'a str, count: impl Fn(&str) -> usize, budget: usize) -> &'a str {
    let mut end = 0;
    let mut used = 0;
    for line in text.split_inclusive('\n') {
        used += count(line);
        if used > budget {
            break;
        }
        end += line.len();
    }
    &text[..end]
}

/// Drops whole blocks of [`PREFIX_TRIM_LINES`] lines from the start of `text` until at least
/// `over` tokens are gone (at least one block). Block boundaries depend only on the text's
/// start, so the trimmed prompt's start does not move while the user types at its end.
/// How far past half the window a prefix may run before it is trimmed in favour of repository
/// context (one trim block of lines is about this many tokens).
const PREFIX_TRIM_SLACK: usize = 256;

fn cut_line_blocks_from_start<'a>(
    text: &'a str,
    count: impl Fn(&str) -> usize,
    over: usize,
) -> &'a str {
    let mut start = 0;
    let mut dropped = 0;
    let mut lines = 0;
    for line in text.split_inclusive('\n') {
        if start + line.len() >= text.len() {
            break; // keep the cursor's line
        }
        start += line.len();
        dropped += count(line);
        lines += 1;
        if lines % PREFIX_TRIM_LINES == 0 && dropped >= over {
            break;
        }
    }
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(v: &[i32]) -> Vec<LlamaToken> {
        v.iter().map(|&t| LlamaToken::new(t)).collect()
    }

    #[test]
    fn finds_the_unchanged_suffix_after_an_edit() {
        // cache: prefix(1,2,3) old(4) suffix(10..20) mid(99) generated(7,7)
        let mut cached = toks(&[1, 2, 3, 4]);
        cached.extend(toks(&(10..20).collect::<Vec<_>>()));
        cached.extend(toks(&[99, 7, 7]));
        let mut prompt = toks(&[1, 2, 3, 5, 6]);
        prompt.extend(toks(&(10..20).collect::<Vec<_>>()));
        prompt.extend(toks(&[99]));
        let n_past = common_prefix(&cached, &prompt);
        assert_eq!(n_past, 3);
        let sh = find_shift(&cached, &prompt, n_past, 4).unwrap();
        assert_eq!(
            sh,
            Shift {
                cache_start: 4,
                prompt_start: 5,
                len: 10
            }
        );
    }

    #[test]
    fn no_shift_for_short_runs_or_identical_prompts() {
        let cached = toks(&[1, 2, 3, 4, 5, 6]);
        assert_eq!(find_shift(&cached, &toks(&[1, 2, 9, 4, 5, 6]), 2, 8), None);
        assert_eq!(find_shift(&cached, &cached, 5, 1), None);
    }

    #[test]
    fn prefix_trimming_drops_fixed_blocks() {
        let text: String = (0..100).map(|i| format!("line {i}\n")).collect::<String>() + "cur";
        let count = |s: &str| s.len();
        let cut = cut_line_blocks_from_start(&text, count, 10);
        assert!(cut.starts_with("line 32\n"), "{}", &cut[..20]);
        let cut = cut_line_blocks_from_start(&text, count, 300);
        assert!(cut.starts_with("line 64\n"), "{}", &cut[..20]);
        assert_eq!(cut_line_blocks_from_start("a\ncur", count, 100), "cur");
    }

    #[test]
    fn suffix_trimming_keeps_first_lines() {
        assert_eq!(
            cut_lines_from_end("ab\ncd\nef\n", |s: &str| s.len(), 6),
            "ab\ncd\n"
        );
    }
}
