//! ghostline's inference engine: a quantized GGUF code model running inside the process.
//!
//! One OS thread ([`Engine`]) owns the model and one long-lived llama.cpp context; callers on
//! any thread (a tokio task, the CLI) send it requests over a channel and get the result through
//! a callback. The engine remembers the exact token sequence in its KV cache and evaluates only
//! what differs from the previous request; with `reuse_shift` it also moves an unchanged suffix
//! to its new position instead of evaluating it again.
//!
//! This crate knows llama.cpp, tokenizers, FIM formats and chat templates. It knows nothing of
//! LSP, editors, tree-sitter or the file system beyond loading the model file.

pub mod backend;
mod doc_state;
mod engine;
pub mod fim;
mod llama_log;
mod model;
mod model_dir;
pub mod prompt;
mod reuse;
mod sampling;
pub mod stop;
mod token_count;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

pub use backend::{complete_blocking, Backend, BackendHandle, FakeBackend};
pub use doc_state::kv_cache_dir;
pub use engine::{Engine, EngineHandle};
pub use fim::{ContextBlock, FimFormat, FimOrder};
pub use model::ModelInfo;
pub use model_dir::{default_model_path, model_cache_dir, DEFAULT_MODEL_FILE, SMALL_MODEL_FILE};

/// The process-wide llama.cpp backend, for programs (benchmarks) that also use llama-cpp-2
/// directly: llama.cpp may be initialised only once per process.
pub fn llama_backend() -> &'static llama_cpp_2::llama_backend::LlamaBackend {
    model::backend()
}
pub use stop::{LineEnd, StopReason};

/// Engine settings. Everything that affects speed lives here, not in per-request parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineConfig {
    /// Path of the GGUF file.
    pub model_path: PathBuf,
    /// CPU threads for prompt evaluation and generation.
    pub threads: usize,
    /// Context window in tokens (prompt plus generation, all sequences together).
    pub context_size: u32,
    /// Largest number of tokens given to llama.cpp in one decode call. Cancellation and
    /// deadlines are checked between these chunks, so at most 128 is used.
    pub batch_size: u32,
    /// Default token cap of a completion.
    pub max_tokens: usize,
    /// A FIM template or preset name that overrides the one read from the model.
    pub fim_template: Option<String>,
    /// Reuse the KV entries of unchanged text after an edit by shifting their positions
    /// (llama.cpp's `--cache-reuse`). When off, only the common token prefix is reused.
    pub reuse_shift: bool,
    /// Shortest run of tokens worth shifting.
    pub reuse_min_tokens: usize,
    /// Tokens at the start of a shifted run that are evaluated again anyway: the text right
    /// after an edit is where stale KV entries mislead the model most.
    pub reuse_refresh_tokens: usize,
    /// [`reuse_refresh_tokens`](Self::reuse_refresh_tokens) for an edit inside a line (no line
    /// break added or removed): the lines after it stay where they were.
    pub reuse_refresh_tokens_in_line: usize,
    /// Reuse the KV cache at all. Off only for benchmarks.
    pub reuse: bool,
    /// Test hook: make the engine thread panic while serving chosen requests.
    #[doc(hidden)]
    pub fault_injection: Option<FaultInjection>,
    /// Memory for saved per-document KV states (see [`FimRequest::document`]), least recently
    /// used dropped first; 0 keeps none in memory.
    pub doc_state_memory_bytes: usize,
    /// Disk space for saved per-document KV states, so a document is warm again after a
    /// restart; 0 keeps none on disk.
    pub doc_state_disk_bytes: u64,
    /// Where saved states live on disk; [`kv_cache_dir`] when `None`.
    pub doc_state_dir: Option<PathBuf>,
}

/// Test hook of [`EngineConfig`]: a FIM request whose prefix contains `panic_on_prefix` makes
/// the engine thread panic while serving it. With `kill_thread`, the panic then escapes and
/// the thread ends (as a panic outside a job would). A prefix containing `fail_decode_on_prefix`
/// makes its first llama.cpp decode fail as llama.cpp reports a failure.
#[doc(hidden)]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultInjection {
    /// The marker text.
    pub panic_on_prefix: String,
    /// End the thread after answering the request.
    pub kill_thread: bool,
    /// The marker text of a failed decode (empty: none).
    pub fail_decode_on_prefix: String,
}

impl EngineConfig {
    /// Defaults for `model_path`: all cores up to 8, 4096 tokens of context.
    pub fn new(model_path: impl Into<PathBuf>) -> Self {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .min(8);
        EngineConfig {
            model_path: model_path.into(),
            threads,
            context_size: 4096,
            batch_size: 128,
            max_tokens: 128,
            fim_template: None,
            reuse_shift: true,
            reuse_min_tokens: 8,
            // Measured with bench-engine --shift-quality (0.5B, every 40th single-line task,
            // warm state = before Enter): shifting the whole suffix kept 23% of first lines
            // identical to exact re-evaluation (pass@1 42% -> 19%); re-evaluating its first 32
            // tokens kept 88.5% identical (pass@1 46%).
            reuse_refresh_tokens: 32,
            reuse_refresh_tokens_in_line: 8,
            reuse: true,
            fault_injection: None,
            doc_state_memory_bytes: 512 << 20,
            doc_state_disk_bytes: 2 << 30,
            doc_state_dir: None,
        }
    }
}

/// Why a model could not be loaded. Every variant names the path.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Nothing at the path.
    #[error("model file {path} does not exist")]
    NotFound {
        /// The path that was tried.
        path: PathBuf,
    },
    /// The path is not a regular file (a directory, a device such as `/dev/zero`, a FIFO).
    #[error("model file {path} is not a regular file: it is {kind}")]
    NotRegularFile {
        /// The path that was tried.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// The path could not be read.
    #[error("model file {path} cannot be read: {source}")]
    Io {
        /// The path that was tried.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file does not start with the GGUF magic.
    #[error("{path} is not a GGUF model file ({reason})")]
    NotGguf {
        /// The path that was tried.
        path: PathBuf,
        /// What was found instead.
        reason: String,
    },
    /// llama.cpp refused the file (truncated, corrupt, unsupported architecture …).
    #[error("llama.cpp could not load {path}: {reason}")]
    Llama {
        /// The path that was tried.
        path: PathBuf,
        /// llama.cpp's own error lines, or a summary.
        reason: String,
    },
    /// The model loaded but a context could not be created (e.g. not enough memory).
    #[error("could not create a {context_size}-token context for {path}: {reason}")]
    Context {
        /// The model's path.
        path: PathBuf,
        /// The requested context size.
        context_size: u32,
        /// llama.cpp's error lines.
        reason: String,
    },
    /// The configured FIM template is invalid.
    #[error(transparent)]
    Template(#[from] fim::TemplateError),
    /// The engine thread could not be started.
    #[error("could not start the engine thread: {0}")]
    Thread(std::io::Error),
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    /// The request's cancel token fired.
    #[error("request cancelled")]
    Cancelled,
    /// The model has no fill-in-the-middle tokens and no template was configured.
    #[error("model {model} has no fill-in-the-middle tokens; set a FIM template (fimTemplate) to use it for completions")]
    NoFim {
        /// The model's name.
        model: String,
    },
    /// The model has no chat template.
    #[error("model {model} has no chat template")]
    NoChatTemplate {
        /// The model's name.
        model: String,
    },
    /// The prompt does not fit in the context window even after trimming.
    #[error("prompt of {tokens} tokens does not fit in a {context} token context")]
    PromptTooLong {
        /// Prompt length.
        tokens: usize,
        /// Context size.
        context: u32,
    },
    /// A request could not be put into llama.cpp's form (a chat message or template it
    /// rejects, a batch it cannot hold). Not fatal: a failure of llama.cpp's evaluation itself
    /// is [`EngineError::Crashed`].
    #[error("llama.cpp rejected the request: {0}")]
    Decode(String),
    /// The engine thread is gone (the model was unloaded or the thread panicked).
    #[error("the inference engine has stopped")]
    Stopped,
    /// The backend failed in a way that later requests will hit too (a panic on the engine
    /// thread, a llama.cpp state it cannot recover from): the server reports it and restarts
    /// the backend.
    #[error("the inference engine failed: {0}")]
    Crashed(String),
    /// A remote model server failed or cannot be reached (remote backends). The message says
    /// which server and what happened, never the API key. Not fatal: the backend retries by
    /// itself, with backoff.
    #[error("{0}")]
    Remote(String),
}

impl EngineError {
    /// Whether the backend must be restarted before it can answer again.
    pub fn is_fatal(&self) -> bool {
        matches!(self, EngineError::Stopped | EngineError::Crashed(_))
    }
}

/// A flag that stops a request between prompt chunks and between generated tokens.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A fresh, not cancelled token.
    pub fn new() -> Self {
        Self::default()
    }
    /// Cancels every request holding a clone of this token.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }
    /// Whether [`cancel`](Self::cancel) was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// A fill-in-the-middle request.
#[derive(Debug, Clone, Default)]
pub struct FimRequest {
    /// Text before the cursor.
    pub prefix: String,
    /// Text after the cursor.
    pub suffix: String,
    /// Workspace-relative path of the file, used for repository context headers.
    pub path: Option<String>,
    /// Name of the repository, for formats with a repository header.
    pub repo_name: Option<String>,
    /// Other files of the repository, dependencies first.
    pub context: Vec<ContextBlock>,
    /// Token cap; the engine's default when `None`.
    pub max_tokens: Option<usize>,
    /// Strings that end the completion (not included).
    pub stop: Vec<String>,
    /// Stop when the completion starts reproducing the text after the cursor.
    pub stop_at_suffix: bool,
    /// End a completion that continues the cursor line at its first line break (see
    /// [`LineEnd`]); `None`: only `stop` and the other rules end it.
    pub line_end: Option<LineEnd>,
    /// PSM or SPM; the format's default when `None`.
    pub order: Option<FimOrder>,
    /// Give up (returning the text so far) at this instant.
    pub deadline: Option<Instant>,
    /// Take the prefix's last token out of the prompt and make the completion start with its
    /// text (for a cursor in the middle of a word). The returned text never includes it.
    pub token_healing: bool,
    /// A stable key of the document (its URI). The engine keeps a KV state per document and
    /// restores it when requests come back to that document; `None` leaves the state as is.
    pub document: Option<String>,
    /// A smaller window for a cold place: when the engine would have to evaluate more of the
    /// prompt than this window holds (nothing cached shares its start: a file just opened, a
    /// jump to a place not prefilled), it asks with the end of the prefix and the start of the
    /// suffix in these sizes instead. The server sets it for as-you-type requests only.
    pub cold_window: Option<ColdWindow>,
    /// Told the text generated so far (what the answer would hold, healed text excluded)
    /// while the run goes on, so a caller can offer its first finished line before the run
    /// ends. A backend that does not stream never calls it; the answer is the same either way.
    pub progress: Option<Progress>,
    /// The user asked for a suggestion: end-of-text is not taken while the completion is still
    /// blank (the most likely other token is), so an explicit request is not answered with
    /// nothing when the model would offer something. The in-process engine honours it.
    pub non_empty: bool,
    /// Told the text generated so far (healed text excluded) after each piece the stop rules
    /// kept; when it answers that the suggestion made from that text can no longer change (the
    /// caller's shaping has ended the block at a finished line), the run stops there
    /// ([`StopReason::ScopeEnded`]) instead of generating what would be cut anyway. Every
    /// backend honours it through its [`StopChecker`](crate::stop::StopChecker).
    pub settled: Option<Settled>,
}

/// Decides whether a FIM run's text so far already makes its final suggestion (see
/// [`FimRequest::settled`]). Called on the backend's thread after each piece: it must be quick.
#[derive(Clone)]
pub struct Settled(Arc<dyn Fn(&str) -> bool + Send + Sync>);

impl Settled {
    /// A check calling `f` with the whole text so far.
    pub fn new(f: impl Fn(&str) -> bool + Send + Sync + 'static) -> Self {
        Settled(Arc::new(f))
    }

    /// Whether the suggestion made from `text`, the whole text so far, can no longer change.
    pub fn check(&self, text: &str) -> bool {
        (self.0)(text)
    }
}

impl std::fmt::Debug for Settled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Settled")
    }
}

/// Receives a FIM run's text so far (see [`FimRequest::progress`]). Called on the backend's
/// thread after each generated piece that the stop rules kept: it must be quick.
#[derive(Clone)]
pub struct Progress(Arc<dyn Fn(&str) + Send + Sync>);

impl Progress {
    /// A receiver calling `f` with the whole text so far.
    pub fn new(f: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Progress(Arc::new(f))
    }

    /// Reports `text`, the whole text generated so far.
    pub fn report(&self, text: &str) {
        (self.0)(text)
    }
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

impl FimRequest {
    /// What goes into this request's FIM prompt, borrowed from it.
    pub fn fim_input(&self) -> fim::FimInput<'_> {
        fim::FimInput {
            path: self.path.as_deref(),
            prefix: &self.prefix,
            suffix: &self.suffix,
            context: &self.context,
            repo_name: self.repo_name.as_deref(),
        }
    }
}

/// Sizes of the window the engine falls back to at a cold place (see
/// [`FimRequest::cold_window`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColdWindow {
    /// Tokens of prefix kept at most (about: whole blocks of lines are dropped).
    pub prefix_tokens: usize,
    /// Tokens of suffix kept at most.
    pub suffix_tokens: usize,
    /// How long evaluating the cold window may take, in milliseconds (0: no limit). Once the
    /// engine has measured its prompt evaluation rate, a window that would take longer is
    /// scaled down (prefix and suffix alike, to [`ColdWindow::MIN_TOKENS`] at least), so a
    /// jump answers within seconds on a slow or busy machine and keeps the whole cold window
    /// on a fast one. A document keeps its size while the user types at the same place.
    pub target_ms: u64,
}

impl ColdWindow {
    /// The smallest cold window a time target scales to (prefix and suffix together).
    pub const MIN_TOKENS: usize = 128;

    /// The sizes (prefix, suffix) that evaluate in about `target_ms` at `rate` tokens a
    /// second: the configured ones when they do (or with no target or no rate yet), else
    /// both scaled by the same factor, rounded down to 8 tokens, never below
    /// [`MIN_TOKENS`](Self::MIN_TOKENS) together.
    pub fn sized(&self, rate: Option<f64>) -> (usize, usize) {
        let whole = self.prefix_tokens + self.suffix_tokens;
        let Some(rate) = rate.filter(|r| *r > 0.0 && self.target_ms > 0 && whole > 0) else {
            return (self.prefix_tokens, self.suffix_tokens);
        };
        let fits = (rate * self.target_ms as f64 / 1000.0) as usize;
        if fits >= whole {
            return (self.prefix_tokens, self.suffix_tokens);
        }
        let total = fits.max(Self::MIN_TOKENS).min(whole);
        let suffix = (self.suffix_tokens * total / whole) / 8 * 8;
        let prefix = (total - suffix) / 8 * 8;
        (prefix, suffix)
    }
}

/// A start of a document's prompt that the engine evaluates ahead of the cursor while it is
/// idle (issue 12, lever 2), so that a later request whose prompt starts the same way (a jump
/// to a line this start covers) evaluates only the rest: its suffix and whatever part of the
/// prefix lies beyond it.
#[derive(Debug, Clone, Default)]
pub struct PrefillItem {
    /// Names this start among the document's (the server: the line its prefix starts at).
    pub anchor: String,
    /// The request a cursor at the end of the covered text would send, with an empty suffix:
    /// the tokens of its prompt up to the end of the prefix are evaluated, no more.
    /// `request.document` names the document.
    pub request: FimRequest,
}

/// What prefilling has done since the engine started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PrefillCounts {
    /// Items whose whole start is now held (evaluated, or found already held).
    pub done: u64,
    /// Tokens evaluated for prefills.
    pub evaluated_tokens: u64,
    /// Times a prefill stopped between chunks because a request arrived.
    pub preempted: u64,
}

/// Where the time and the tokens of one request went.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Stats {
    /// Tokens in the prompt.
    pub prompt_tokens: usize,
    /// Prompt tokens whose KV entries were reused as they were (common prefix).
    pub reused_tokens: usize,
    /// Prompt tokens whose KV entries were reused by shifting their position.
    pub shifted_tokens: usize,
    /// Prompt tokens evaluated.
    pub evaluated_tokens: usize,
    /// The request was cold and asked with its smaller window ([`FimRequest::cold_window`]).
    pub cold: bool,
    /// Tokens generated.
    pub generated_tokens: usize,
    /// Milliseconds spent evaluating the prompt.
    pub prompt_ms: f64,
    /// Milliseconds from receiving the request to the first generated token.
    pub first_token_ms: f64,
    /// Milliseconds from receiving the request to the answer.
    pub total_ms: f64,
}

/// One figure of [`Stats`], for whoever writes them out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum StatValue {
    /// A count of tokens.
    Count(usize),
    /// Milliseconds (written rounded to whole milliseconds).
    Ms(f64),
    /// A yes/no fact.
    Flag(bool),
}

impl std::fmt::Display for StatValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StatValue::Count(n) => write!(f, "{n}"),
            StatValue::Ms(ms) => write!(f, "{ms:.0}"),
            StatValue::Flag(b) => write!(f, "{b}"),
        }
    }
}

impl Stats {
    /// The statistics of a request whose prompt has `prompt_tokens` tokens, before anything is
    /// evaluated or generated.
    pub fn for_prompt(prompt_tokens: usize) -> Stats {
        Stats {
            prompt_tokens,
            ..Stats::default()
        }
    }

    /// Counts one generated token of a request received at `received` (the first one sets
    /// [`Stats::first_token_ms`]).
    pub fn generated(&mut self, received: Instant) {
        if self.generated_tokens == 0 {
            self.first_token_ms = received.elapsed().as_secs_f64() * 1000.0;
        }
        self.generated_tokens += 1;
    }

    /// Every figure with its name (`snake_case`), in one order: the server's logs and trace
    /// spans, its debug command and `ghostline complete` all write these and nothing else.
    pub fn fields(&self) -> [(&'static str, StatValue); 9] {
        use StatValue::{Count, Flag, Ms};
        [
            ("prompt_tokens", Count(self.prompt_tokens)),
            ("reused_tokens", Count(self.reused_tokens)),
            ("shifted_tokens", Count(self.shifted_tokens)),
            ("evaluated_tokens", Count(self.evaluated_tokens)),
            ("generated_tokens", Count(self.generated_tokens)),
            ("prompt_ms", Ms(self.prompt_ms)),
            ("first_token_ms", Ms(self.first_token_ms)),
            ("total_ms", Ms(self.total_ms)),
            ("cold", Flag(self.cold)),
        ]
    }
}

/// `prompt_tokens=… reused_tokens=… … cold=…`: the fields of [`Stats::fields`], as log lines
/// write fields (benchmark drivers read them back by name).
impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (name, value)) in self.fields().iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{name}={value}")?;
        }
        Ok(())
    }
}

/// The result of a FIM request.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The middle text, after the stop rules.
    pub text: String,
    /// Why generation ended.
    pub stop: StopReason,
    /// Timing and token counts.
    pub stats: Stats,
}

/// A chat request (e.g. "explain this function").
#[derive(Debug, Clone, Default)]
pub struct ChatRequest {
    /// `(role, content)` pairs, e.g. `("system", …)`, `("user", …)`.
    pub messages: Vec<(String, String)>,
    /// Token cap.
    pub max_tokens: usize,
    /// Give up (returning the text so far) at this instant.
    pub deadline: Option<Instant>,
}

/// The result of a chat request.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatOutput {
    /// The whole answer.
    pub text: String,
    /// Why generation ended.
    pub stop: StopReason,
    /// Timing and token counts.
    pub stats: Stats,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cold_window_is_scaled_to_its_time_target_at_the_measured_rate() {
        let cold = ColdWindow {
            prefix_tokens: 320,
            suffix_tokens: 96,
            target_ms: 2000,
        };
        // Not measured yet, or no target: the configured sizes.
        assert_eq!(cold.sized(None), (320, 96));
        let untimed = ColdWindow {
            target_ms: 0,
            ..cold
        };
        assert_eq!(untimed.sized(Some(10.0)), (320, 96));
        // Fast enough: the whole cold window.
        assert_eq!(cold.sized(Some(500.0)), (320, 96));
        // 100 tokens/s: 200 tokens in 2 s, split as configured.
        let (p, s) = cold.sized(Some(100.0));
        assert!(p + s <= 200, "{p} + {s}");
        assert_eq!((p, s), (160, 40));
        // Very slow: never below the floor.
        let (p, s) = cold.sized(Some(5.0));
        assert!(p + s <= ColdWindow::MIN_TOKENS && p + s >= ColdWindow::MIN_TOKENS - 16);
        assert!(s > 0 && p > s);
    }

    #[test]
    fn stats_are_written_as_named_fields_in_one_order() {
        let mut s = Stats {
            reused_tokens: 2,
            prompt_ms: 12.4,
            total_ms: 30.6,
            ..Stats::for_prompt(10)
        };
        s.generated(Instant::now());
        s.generated(Instant::now());
        assert_eq!(s.generated_tokens, 2);
        assert_eq!(
            s.to_string(),
            format!(
                "prompt_tokens=10 reused_tokens=2 shifted_tokens=0 evaluated_tokens=0 \
                 generated_tokens=2 prompt_ms=12 first_token_ms={:.0} total_ms=31 cold=false",
                s.first_token_ms
            )
        );
        assert_eq!(s.fields().len(), 9);
    }
}
