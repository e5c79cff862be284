//! The backend seam: what the language server needs from a model, and nothing more.
//!
//! [`Backend`] is implemented by the in-process llama.cpp [`Engine`](crate::Engine) and by
//! [`FakeBackend`], a deterministic stand-in that lets the pipeline, protocol and storm tests run
//! without a model file. Remote backends (llama-server, OpenAI-compatible servers) fit the same
//! trait: a backend that cannot count tokens exactly says so ([`Backend::exact_token_counts`]),
//! and one that cannot share KV state simply reports zero reused tokens in its [`Stats`].
//!
//! Every `submit_*` call answers exactly once through its `reply` callback, on a thread of the
//! backend's choosing (never the caller's async runtime), also when cancelled or stopped.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::model::ModelInfo;
use crate::stop::{StopChecker, StopReason};
use crate::CancelToken;
use crate::{
    ChatOutput, ChatRequest, Completion, EngineError, FimFormat, FimRequest, PrefillItem, Stats,
};

/// Called exactly once with the result of a FIM request.
pub type FimReply = Box<dyn FnOnce(Result<Completion, EngineError>) + Send>;
/// Called exactly once with the result of a chat request.
pub type ChatReply = Box<dyn FnOnce(Result<ChatOutput, EngineError>) + Send>;
/// Receives each new piece of a chat answer as it is generated.
pub type ChatStream = Box<dyn FnMut(&str) + Send>;

/// A model the server can ask for completions and chat answers.
pub trait Backend: Send + Sync + 'static {
    /// What the backend serves: its name, FIM format, chat template, trained context.
    fn info(&self) -> &ModelInfo;

    /// The context window requests must fit in (prompt plus generation), in tokens.
    fn context_size(&self) -> usize;

    /// Number of tokens `text` takes as plain text (markers are not parsed). Safe to call from
    /// any thread while the backend works.
    fn count_tokens(&self, text: &str) -> usize;

    /// Whether [`count_tokens`](Self::count_tokens) is exact (the model's own tokenizer) or an
    /// estimate (a remote server without a tokenize endpoint).
    fn exact_token_counts(&self) -> bool {
        true
    }

    /// Queues a FIM request; `reply` is called exactly once.
    fn submit_fim(&self, req: FimRequest, cancel: CancelToken, reply: FimReply);

    /// Whether it reports a FIM run's text while the run goes on ([`FimRequest::progress`]).
    /// The server answers an as-you-type request at its run's first finished line, and lets
    /// the run go on past the answer, only with a backend that does; one that answers at the
    /// end (a remote server) keeps the request's budget as the run's deadline.
    fn streams_progress(&self) -> bool {
        false
    }

    /// Keeps what is worth keeping across a restart (the local engine: the current document's
    /// KV state, on disk); `done(true)` once it is kept. Nothing to keep by default.
    fn persist(&self, done: Box<dyn FnOnce(bool) + Send>) {
        done(true)
    }

    /// Replaces the plan of prompt starts to evaluate ahead of the cursor (one document's at a
    /// time, most useful first) with `items` for `document`; an empty list cancels that
    /// document's plan (the server sends one when it is closed). The local engine works
    /// on it only while idle and stops between small chunks as soon as a request arrives, so a
    /// prefill never delays a keystroke by more than one chunk. Backends that cannot keep
    /// state ahead (remote servers) ignore it.
    fn prefill(&self, document: String, items: Vec<PrefillItem>) {
        let _ = (document, items);
    }

    /// Queues a chat request; `on_text` receives each new piece of text, `reply` is called
    /// exactly once with the whole answer.
    fn submit_chat(
        &self,
        req: ChatRequest,
        cancel: CancelToken,
        on_text: ChatStream,
        reply: ChatReply,
    );
}

/// A backend shared between tasks.
pub type BackendHandle = Arc<dyn Backend>;

/// Runs a FIM request on any backend and waits for it (CLI, tests, benchmarks).
pub fn complete_blocking(
    backend: &dyn Backend,
    req: FimRequest,
    cancel: CancelToken,
) -> Result<Completion, EngineError> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    backend.submit_fim(
        req,
        cancel,
        Box::new(move |r| {
            let _ = tx.send(r);
        }),
    );
    rx.recv().unwrap_or(Err(EngineError::Stopped))
}

/// What the fake "model" writes for a request, before the stop rules (as a real model's raw
/// output would be): a pure function of the request.
pub type FakeScript = Arc<dyn Fn(&FimRequest) -> String + Send + Sync>;

/// A deterministic backend for tests: no model file, no randomness, optional latency.
///
/// Its "generation" is the text its script returns for the request, streamed word by word
/// through the same [`StopChecker`] the engine uses, with the same token cap, deadline and
/// cancellation checks, so everything downstream of the model (shaping, caching, protocol)
/// behaves as with a real one. Tokens are counted as whitespace-separated words plus
/// punctuation runs (an estimate, as a remote backend's would be).
pub struct FakeBackend {
    info: ModelInfo,
    context_size: usize,
    script: FakeScript,
    delay_per_token: Duration,
}

impl FakeBackend {
    /// A fake with the Qwen2.5-Coder FIM format and the default script.
    pub fn new() -> Self {
        FakeBackend {
            info: ModelInfo {
                path: "fake".into(),
                name: "fake".into(),
                architecture: "fake".into(),
                n_params: 0,
                size_bytes: 0,
                n_ctx_train: 32768,
                fim: Some(FimFormat::qwen()),
                has_chat_template: true,
            },
            context_size: 4096,
            script: Arc::new(default_script),
            delay_per_token: Duration::ZERO,
        }
    }

    /// Replaces what the fake writes.
    pub fn with_script(
        mut self,
        script: impl Fn(&FimRequest) -> String + Send + Sync + 'static,
    ) -> Self {
        self.script = Arc::new(script);
        self
    }

    /// Writes `lines` lines at a blank cursor line instead of one (the default script).
    pub fn with_lines(self, lines: usize) -> Self {
        self.with_script(move |req| lines_script(req, lines))
    }

    /// Sleeps this long per generated token (and per 64 prompt tokens), to exercise
    /// cancellation, supersession and deadlines.
    pub fn with_delay_per_token(mut self, delay: Duration) -> Self {
        self.delay_per_token = delay;
        self
    }

    /// Sets the context window it reports.
    pub fn with_context_size(mut self, tokens: usize) -> Self {
        self.context_size = tokens;
        self
    }

    fn run_fim(&self, req: &FimRequest, cancel: &CancelToken) -> Result<Completion, EngineError> {
        let received = Instant::now();
        if tracing::enabled!(tracing::Level::DEBUG) {
            // The prompt a model of this format would get (tests compare it across callers).
            let prompt = self.info.fim.as_ref().map(|f| {
                let input = req.fim_input();
                f.render(&input, req.order)
            });
            tracing::debug!(prompt = ?prompt.unwrap_or_default(), "fake backend prompt");
        }
        let raw = (self.script)(req);
        let prompt_tokens = self.count_tokens(&req.prefix) + self.count_tokens(&req.suffix);
        let mut stats = Stats {
            evaluated_tokens: prompt_tokens,
            ..Stats::for_prompt(prompt_tokens)
        };
        // "Evaluate the prompt": a pause proportional to its length, cancellable.
        for _ in 0..prompt_tokens / 64 {
            if cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            if req.deadline.is_some_and(|d| Instant::now() >= d) {
                stats.total_ms = ms(received);
                return Ok(Completion {
                    text: String::new(),
                    stop: StopReason::Deadline,
                    stats,
                });
            }
            std::thread::sleep(self.delay_per_token);
        }
        let mut stops = req.stop.clone();
        if let Some(f) = &self.info.fim {
            stops.extend(f.stop_markers.iter().cloned());
        }
        let suffix = if req.stop_at_suffix {
            req.suffix.as_str()
        } else {
            ""
        };
        let checker = StopChecker::new(stops, suffix)
            .with_line_end(req.line_end.clone())
            .with_settled(req.settled.clone());
        let max_tokens = req.max_tokens.unwrap_or(128);
        let mut text = String::new();
        let mut stop = StopReason::EndOfText;
        for piece in fake_tokens(&raw) {
            if cancel.is_cancelled() {
                return Err(EngineError::Cancelled);
            }
            if req.deadline.is_some_and(|d| Instant::now() >= d) {
                stop = StopReason::Deadline;
                break;
            }
            if stats.generated_tokens == max_tokens {
                stop = StopReason::MaxTokens;
                break;
            }
            std::thread::sleep(self.delay_per_token);
            stats.generated(received);
            text.push_str(piece);
            if let Some((cut, why)) = checker.check(&text) {
                text.truncate(cut);
                stop = why;
                break;
            }
            if let Some(p) = &req.progress {
                p.report(&text);
            }
        }
        stats.total_ms = ms(received);
        Ok(Completion { text, stop, stats })
    }
}

impl Default for FakeBackend {
    fn default() -> Self {
        Self::new()
    }
}

/// The default script: a deterministic line that depends on the prompt, then end-of-text.
fn default_script(req: &FimRequest) -> String {
    lines_script(req, 1)
}

/// The default script, writing `lines` lines at a blank cursor line (`value_N = N`, then
/// `value_N_1 = 1`, ...), each at the cursor's indentation.
fn lines_script(req: &FimRequest, lines: usize) -> String {
    let line = req.prefix.rsplit('\n').next().unwrap_or("");
    let indent: String = line.chars().take_while(|c| c.is_whitespace()).collect();
    let n = req.prefix.len() % 1000;
    if line.trim().is_empty() {
        let mut text = format!("value_{n} = {n}\n{indent}");
        for i in 1..lines {
            text.push_str(&format!("value_{n}_{i} = {i}\n{indent}"));
        }
        text
    } else {
        format!("_{n}\n")
    }
}

/// Splits text into fake tokens: runs of word characters, runs of spaces, single others.
fn fake_tokens(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        let first = rest.chars().next()?;
        let class = |c: char| {
            if c.is_alphanumeric() || c == '_' {
                0
            } else if c == ' ' {
                1
            } else {
                2
            }
        };
        let k = class(first);
        let end = if k == 2 {
            first.len_utf8()
        } else {
            rest.char_indices()
                .find(|&(_, c)| class(c) != k)
                .map_or(rest.len(), |(i, _)| i)
        };
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

impl Backend for FakeBackend {
    fn info(&self) -> &ModelInfo {
        &self.info
    }

    fn context_size(&self) -> usize {
        self.context_size
    }

    fn count_tokens(&self, text: &str) -> usize {
        fake_tokens(text).filter(|t| !t.starts_with(' ')).count()
    }

    fn exact_token_counts(&self) -> bool {
        false
    }

    fn streams_progress(&self) -> bool {
        true
    }

    fn submit_fim(&self, req: FimRequest, cancel: CancelToken, reply: FimReply) {
        let this = FakeBackend {
            info: self.info.clone(),
            context_size: self.context_size,
            script: self.script.clone(),
            delay_per_token: self.delay_per_token,
        };
        std::thread::spawn(move || reply(this.run_fim(&req, &cancel)));
    }

    fn submit_chat(
        &self,
        req: ChatRequest,
        cancel: CancelToken,
        mut on_text: ChatStream,
        reply: ChatReply,
    ) {
        let delay = self.delay_per_token;
        std::thread::spawn(move || {
            let received = Instant::now();
            let question = req.messages.last().map(|(_, c)| c.as_str()).unwrap_or("");
            let answer = format!(
                "**Fake explanation.** The request had {} messages; the last one has {} lines.\n",
                req.messages.len(),
                question.lines().count()
            );
            let mut stats = Stats::default();
            let mut text = String::new();
            let mut stop = StopReason::EndOfText;
            for piece in fake_tokens(&answer) {
                if cancel.is_cancelled() {
                    return reply(Err(EngineError::Cancelled));
                }
                if req.deadline.is_some_and(|d| Instant::now() >= d) {
                    stop = StopReason::Deadline;
                    break;
                }
                if stats.generated_tokens == req.max_tokens {
                    stop = StopReason::MaxTokens;
                    break;
                }
                std::thread::sleep(delay);
                stats.generated_tokens += 1;
                text.push_str(piece);
                on_text(piece);
            }
            stats.total_ms = ms(received);
            reply(Ok(ChatOutput { text, stop, stats }))
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fake_answers_once_applies_stop_rules_and_honours_cancellation() {
        let fake = FakeBackend::new().with_script(|_| "return 1\nprint(x)\n".into());
        let req = FimRequest {
            prefix: "def f():\n    ".into(),
            suffix: "\nprint(x)\n".into(),
            stop_at_suffix: true,
            ..FimRequest::default()
        };
        let c = complete_blocking(&fake, req.clone(), CancelToken::new()).unwrap();
        assert_eq!(c.text.trim_end(), "return 1");
        assert_eq!(c.stop, StopReason::SuffixReached);
        let cancel = CancelToken::new();
        cancel.cancel();
        assert_eq!(
            complete_blocking(&fake, req, cancel),
            Err(EngineError::Cancelled)
        );
    }

    #[test]
    fn fake_tokens_cover_the_text() {
        let text = "def  f(x):\n    return x_1 + 2 # é😀";
        assert_eq!(fake_tokens(text).collect::<String>(), text);
    }
}
