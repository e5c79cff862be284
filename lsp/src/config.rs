//! The server's settings, read from `initializationOptions`, `workspace/didChangeConfiguration`
//! and `workspace/configuration` (section `ghostline`).
//!
//! Every client sends the same camelCase object (`{"model": …, "repoContext": {"enabled":
//! false}}`; dotted keys such as `"repoContext.enabled"` are accepted too). Applying an object
//! changes only the keys it contains. Invalid values are reported and leave the previous value;
//! unknown keys are reported so that the caller can log them. This module does not send
//! messages or reload anything: [`Update`] says what happened.

use std::path::PathBuf;

use serde_json::{Map, Value};

/// When completions are offered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// On every keystroke the client asks for (automatic) and on demand (invoked).
    Automatic,
    /// Only when the user asks (invoked inline completion, completion requests).
    Manual,
}

/// Which model backend answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    /// The in-process llama.cpp engine (the default).
    Local,
    /// llama.cpp's `llama-server` at `remote.endpoint` (`/infill`, chat through `/v1`).
    LlamaServer,
    /// An OpenAI-compatible server (vLLM, llama-server's `/v1`, …) at `remote.endpoint`.
    OpenAi,
    /// A deterministic stand-in without a model file, for tests (`ghostline_inference::FakeBackend`).
    Fake,
}

/// Default of `window.prefixChars` (chosen by measurement, README "Responsiveness").
pub const DEFAULT_PREFIX_CHARS: usize = 3_000;
/// Defaults of `window.coldPrefixTokens` / `window.coldSuffixTokens`: an as-you-type request
/// at a cold place evaluates about 450 tokens (about 2.5 s for the 1.5B on two cores) instead
/// of the whole window (about 1,100 tokens, 6–7 s).
pub const DEFAULT_COLD_PREFIX_TOKENS: usize = 320;
pub const DEFAULT_COLD_SUFFIX_TOKENS: usize = 96;
/// Default of `window.coldTargetMs`: how long a cold window's prompt may take once the engine
/// has measured its rate (smaller windows beyond that), so that a jump answers within about
/// 3 s (the prompt, then the first line) on a slow or busy machine.
pub const DEFAULT_COLD_TARGET_MS: u64 = 2_000;
/// Default of `prefill.maxStarts`: about 10,000 tokens of background evaluation per document
/// (about a minute of idle time on two cores for the 1.5B), some 300 MB of saved states.
pub const DEFAULT_PREFILL_STARTS: usize = 8;
/// Default of `window.suffixChars` (chosen by measurement, README "Responsiveness").
pub const DEFAULT_SUFFIX_CHARS: usize = 1_000;
/// Largest `window.prefixChars` / `window.suffixChars`: far beyond any context window (the
/// prompt is trimmed to `contextSize` tokens anyway).
pub const MAX_WINDOW_CHARS: u64 = 1_000_000;

/// All settings, with their defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Which backend answers.
    pub backend: BackendKind,
    /// Hidden (tests): milliseconds per token of the fake backend.
    pub fake_delay_ms: u64,
    /// Hidden (tests): lines the fake backend writes at a blank line.
    pub fake_lines: usize,
    /// Hidden (tests): milliseconds the fake backend takes to "load".
    pub fake_load_delay_ms: u64,
    /// Hidden (tests): the fake backend fails every request as if its engine had crashed.
    pub fake_crash: bool,
    /// Hidden (tests): milliseconds every repository-context query waits before it starts
    /// (checking its stop), to make a slow context build deterministic.
    pub fake_context_delay_ms: u64,
    /// Benchmarks only (hidden `bench.coldWindowInvoked`): explicit requests get the cold
    /// window too, so that `bench-infill` measures what a cold place's window costs.
    pub cold_window_invoked: bool,
    /// GGUF file; the command line's `--model`, `GHOSTLINE_MODEL` or the cache path when `None`.
    pub model: Option<PathBuf>,
    /// Engine threads; all cores up to 8 when `None`.
    pub threads: Option<usize>,
    /// Context window in tokens.
    pub context_size: u32,
    /// Token cap of a multi-line completion.
    pub max_tokens: usize,
    /// Time budget of an automatic completion, in milliseconds.
    pub time_budget_ms: u64,
    /// Time budget of an invoked completion, in milliseconds.
    pub invoked_time_budget_ms: u64,
    /// Whether completions see other files of the repository.
    pub repo_context_enabled: bool,
    /// Token budget of the repository context.
    pub repo_context_budget_tokens: usize,
    /// Characters of the document before the cursor sent at most.
    pub window_prefix_chars: usize,
    /// Characters of the document after the cursor sent at most.
    pub window_suffix_chars: usize,
    /// Prompt starts of the current document evaluated ahead of the cursor while the engine
    /// is idle (`prefill.maxStarts`; 0, or `prefill.enabled` false: none).
    pub prefill_max_starts: usize,
    /// Whether the engine evaluates ahead of the cursor while idle (`prefill.enabled`).
    pub prefill_enabled: bool,
    /// Tokens of prefix / suffix of an as-you-type request at a cold place
    /// (`window.coldPrefixTokens` / `window.coldSuffixTokens`; a prefix of 0: off).
    pub cold_prefix_tokens: usize,
    pub cold_suffix_tokens: usize,
    /// How long evaluating a cold window may take (`window.coldTargetMs`; 0: no limit).
    pub cold_target_ms: u64,
    /// Repository context chosen by the names used near the cursor (`repoContext.selection`
    /// `"uses"`, the default: +15.6 points exact match on `bench-crossfile`, against +9.4) or
    /// by whole files and outlines (`"files"`).
    pub repo_context_by_use: bool,
    /// Definitions of recently edited and open files that the imports do not reach, after the
    /// imported ones (`repoContext.recentFiles`).
    pub repo_context_recent_files: bool,
    /// FIM template or preset overriding the model's own.
    pub fim_template: Option<String>,
    /// When completions are offered.
    pub trigger: Trigger,
    /// Token cap of an explanation.
    pub explain_max_tokens: usize,
    /// Time budget of an explanation, in milliseconds.
    pub explain_time_budget_ms: u64,
    /// Hidden (benchmarks): reuse the KV cache between requests.
    pub engine_reuse: bool,
    /// Hidden (benchmarks): shift reused KV entries after an edit.
    pub engine_reuse_shift: bool,
    /// Hidden (benchmarks): tokens re-evaluated at the start of a shifted run.
    pub engine_reuse_refresh_tokens: usize,
    /// The same for an edit inside a line (no line break added or removed).
    pub engine_reuse_refresh_tokens_in_line: usize,
    /// Base URL of the model server (`llama-server` and `openai` backends).
    pub remote_endpoint: Option<String>,
    /// The served model's name, where the server's API needs one (`openai`); also says the
    /// FIM format when `fimTemplate` is not set.
    pub remote_model: Option<String>,
    /// File holding the API key (else the environment variable `GHOSTLINE_API_KEY`). The key
    /// itself is never a setting: editors sync settings.
    pub remote_api_key_file: Option<PathBuf>,
    /// PEM file with extra CA certificates for an https endpoint.
    pub remote_ca_file: Option<PathBuf>,
    /// Connect timeout and longest wait for an answer to start, in milliseconds.
    pub remote_timeout_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            backend: BackendKind::Local,
            fake_delay_ms: 0,
            fake_lines: 1,
            fake_load_delay_ms: 0,
            fake_crash: false,
            fake_context_delay_ms: 0,
            cold_window_invoked: false,
            model: None,
            threads: None,
            context_size: 4096,
            max_tokens: 128,
            time_budget_ms: 1500,
            invoked_time_budget_ms: 5000,
            repo_context_enabled: true,
            repo_context_budget_tokens: 1024,
            window_prefix_chars: DEFAULT_PREFIX_CHARS,
            window_suffix_chars: DEFAULT_SUFFIX_CHARS,
            prefill_max_starts: DEFAULT_PREFILL_STARTS,
            prefill_enabled: true,
            cold_prefix_tokens: DEFAULT_COLD_PREFIX_TOKENS,
            cold_suffix_tokens: DEFAULT_COLD_SUFFIX_TOKENS,
            cold_target_ms: DEFAULT_COLD_TARGET_MS,
            // Measured on `bench-crossfile` (README, "Cross-file completion").
            repo_context_by_use: true,
            repo_context_recent_files: true,
            fim_template: None,
            trigger: Trigger::Automatic,
            explain_max_tokens: 384,
            explain_time_budget_ms: 60_000,
            engine_reuse: true,
            engine_reuse_shift: true,
            engine_reuse_refresh_tokens: 32,
            engine_reuse_refresh_tokens_in_line: 8,
            remote_endpoint: None,
            remote_model: None,
            remote_api_key_file: None,
            remote_ca_file: None,
            remote_timeout_ms: 5000,
        }
    }
}

/// What applying a settings object did.
#[derive(Debug, Default, PartialEq)]
pub struct Update {
    /// One message per invalid value (the previous value was kept).
    pub invalid: Vec<String>,
    /// Keys that mean nothing to ghostline.
    pub unknown: Vec<String>,
    /// A setting of the engine (model, threads, contextSize, fimTemplate, engine.*) changed.
    pub engine_changed: bool,
    /// Anything changed.
    pub changed: bool,
}

impl Config {
    /// The smaller window of as-you-type requests at a cold place, `None` when off.
    pub fn cold_window(&self) -> Option<ghostline_inference::ColdWindow> {
        (self.cold_prefix_tokens > 0).then_some(ghostline_inference::ColdWindow {
            prefix_tokens: self.cold_prefix_tokens,
            suffix_tokens: self.cold_suffix_tokens,
            target_ms: self.cold_target_ms,
        })
    }

    /// Applies a settings object. `null` changes nothing; a value that is not an object is
    /// reported as invalid.
    pub fn apply(&mut self, settings: &Value) -> Update {
        let mut update = Update::default();
        let before = self.clone();
        match settings {
            Value::Null => {}
            Value::Object(map) => self.apply_object(map, "", &mut update),
            other => update
                .invalid
                .push(format!("ghostline settings must be an object, not {other}")),
        }
        update.changed = *self != before;
        update.engine_changed = self.backend != before.backend
            || self.fake_delay_ms != before.fake_delay_ms
            || self.fake_lines != before.fake_lines
            || self.fake_load_delay_ms != before.fake_load_delay_ms
            || self.fake_crash != before.fake_crash
            || self.model != before.model
            || self.threads != before.threads
            || self.context_size != before.context_size
            || self.fim_template != before.fim_template
            || self.engine_reuse != before.engine_reuse
            || self.engine_reuse_shift != before.engine_reuse_shift
            || self.engine_reuse_refresh_tokens != before.engine_reuse_refresh_tokens
            || self.engine_reuse_refresh_tokens_in_line
                != before.engine_reuse_refresh_tokens_in_line
            || self.remote_endpoint != before.remote_endpoint
            || self.remote_model != before.remote_model
            || self.remote_api_key_file != before.remote_api_key_file
            || self.remote_ca_file != before.remote_ca_file
            || self.remote_timeout_ms != before.remote_timeout_ms;
        update
    }

    fn apply_object(&mut self, map: &Map<String, Value>, parent: &str, update: &mut Update) {
        for (key, value) in map {
            let full = if parent.is_empty() {
                key.clone()
            } else {
                format!("{parent}.{key}")
            };
            if let Err(why) = self.apply_key(&full, value, update) {
                // A value that may hold a secret is never repeated (messages are shown and
                // logged).
                let shown = if may_hold_secret(&full, value) {
                    "(not shown)".to_owned()
                } else {
                    value.to_string()
                };
                update
                    .invalid
                    .push(format!("ghostline: invalid setting {full} = {shown}: {why}; keeping the previous value"));
            }
        }
    }

    fn apply_key(&mut self, key: &str, v: &Value, update: &mut Update) -> Result<(), String> {
        match key {
            "backend" => {
                self.backend = match v.as_str() {
                    Some("local") => BackendKind::Local,
                    Some("llama-server") => BackendKind::LlamaServer,
                    Some("openai") => BackendKind::OpenAi,
                    Some("fake") => BackendKind::Fake,
                    _ => return Err("expected \"local\", \"llama-server\" or \"openai\"".into()),
                }
            }
            "remote.endpoint" => self.remote_endpoint = endpoint(v)?,
            "remote.model" => self.remote_model = opt_string(v)?,
            "remote.apiKeyFile" => self.remote_api_key_file = opt_string(v)?.map(PathBuf::from),
            "remote.caFile" => self.remote_ca_file = opt_string(v)?.map(PathBuf::from),
            "remote.timeoutMs" => self.remote_timeout_ms = int(v, 100, 600_000)?,
            "remote.apiKey" | "apiKey" | "remote.key" | "remote.token" => {
                return Err(
                    "the API key is never read from the settings (editors sync them): \
                     set the environment variable GHOSTLINE_API_KEY or ghostline.remote.apiKeyFile"
                        .into(),
                )
            }
            "fake.delayMs" => self.fake_delay_ms = int(v, 0, 10_000)?,
            "fake.lines" => self.fake_lines = int(v, 1, 100)? as usize,
            "fake.loadDelayMs" => self.fake_load_delay_ms = int(v, 0, 60_000)?,
            "fake.crash" => self.fake_crash = boolean(v)?,
            "fake.contextDelayMs" => self.fake_context_delay_ms = int(v, 0, 60_000)?,
            "bench.coldWindowInvoked" => self.cold_window_invoked = boolean(v)?,
            "model" => self.model = opt_string(v)?.map(PathBuf::from),
            "threads" => self.threads = opt_int(v, 1, 256)?.map(|n| n as usize),
            "contextSize" => self.context_size = int(v, 256, 131_072)? as u32,
            "maxTokens" => self.max_tokens = int(v, 1, 4096)? as usize,
            "timeBudgetMs" => self.time_budget_ms = int(v, 10, 600_000)?,
            "invokedTimeBudgetMs" => self.invoked_time_budget_ms = int(v, 10, 600_000)?,
            "repoContext.enabled" => self.repo_context_enabled = boolean(v)?,
            "repoContext.budgetTokens" => {
                self.repo_context_budget_tokens = int(v, 0, 65_536)? as usize
            }
            "window.prefixChars" => {
                self.window_prefix_chars = int(v, 64, MAX_WINDOW_CHARS)? as usize
            }
            "window.suffixChars" => {
                self.window_suffix_chars = int(v, 0, MAX_WINDOW_CHARS)? as usize
            }
            "prefill.maxStarts" => self.prefill_max_starts = int(v, 0, 64)? as usize,
            "prefill.enabled" => self.prefill_enabled = boolean(v)?,
            "window.coldPrefixTokens" => self.cold_prefix_tokens = int(v, 0, 65_536)? as usize,
            "window.coldSuffixTokens" => self.cold_suffix_tokens = int(v, 0, 65_536)? as usize,
            "window.coldTargetMs" => self.cold_target_ms = int(v, 0, 600_000)?,
            "repoContext.recentFiles" => self.repo_context_recent_files = boolean(v)?,
            "repoContext.selection" => {
                self.repo_context_by_use = match v.as_str() {
                    Some("uses") => true,
                    Some("files") => false,
                    _ => return Err("expected \"uses\" or \"files\"".into()),
                }
            }
            "fimTemplate" => self.fim_template = opt_string(v)?,
            "trigger" => {
                self.trigger = match v.as_str() {
                    Some("automatic") => Trigger::Automatic,
                    Some("manual") => Trigger::Manual,
                    _ => return Err("expected \"automatic\" or \"manual\"".into()),
                }
            }
            "explainMaxTokens" => self.explain_max_tokens = int(v, 1, 8192)? as usize,
            "explainTimeBudgetMs" => self.explain_time_budget_ms = int(v, 100, 3_600_000)?,
            "engine.reuse" => self.engine_reuse = boolean(v)?,
            "engine.reuseShift" => self.engine_reuse_shift = boolean(v)?,
            "engine.reuseRefreshTokens" => {
                self.engine_reuse_refresh_tokens = int(v, 0, 4096)? as usize
            }
            "engine.reuseRefreshTokensInLine" => {
                self.engine_reuse_refresh_tokens_in_line = int(v, 0, 4096)? as usize
            }
            "repoContext" | "engine" | "fake" | "remote" | "window" | "prefill" | "bench" => {
                match v {
                    Value::Object(map) => self.apply_object(map, key, update),
                    Value::Null => {}
                    _ => return Err("expected an object".into()),
                }
            }
            _ => update.unknown.push(key.to_owned()),
        }
        Ok(())
    }
}

/// Whether the value of setting `key` may be a secret (a key, or an URL with a password).
fn may_hold_secret(key: &str, value: &Value) -> bool {
    let k = key.to_ascii_lowercase();
    k.ends_with("apikey")
        || k.ends_with("key")
        || k.ends_with("token")
        || k.ends_with("password")
        || value.as_str().is_some_and(has_userinfo)
}

/// Whether an URL carries `user[:password]@` before its host.
fn has_userinfo(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    authority.contains('@')
}

/// `remote.endpoint`: an http(s) URL without credentials (`null` or `""` unsets it).
fn endpoint(v: &Value) -> Result<Option<String>, String> {
    let Some(url) = opt_string(v)? else {
        return Ok(None);
    };
    let url = url.trim().to_owned();
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err("expected an http:// or https:// URL such as http://127.0.0.1:8080".into());
    }
    if has_userinfo(&url) {
        return Err(
            "credentials do not belong in the URL (editors sync settings): \
             set GHOSTLINE_API_KEY or ghostline.remote.apiKeyFile"
                .into(),
        );
    }
    Ok(Some(url))
}

fn opt_string(v: &Value) -> Result<Option<String>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err("expected a string".into()),
    }
}

fn int(v: &Value, min: u64, max: u64) -> Result<u64, String> {
    let n = v
        .as_u64()
        .or_else(|| {
            v.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        })
        .ok_or_else(|| format!("expected an integer from {min} to {max}"))?;
    if (min..=max).contains(&n) {
        Ok(n)
    } else {
        Err(format!("expected an integer from {min} to {max}"))
    }
}

fn opt_int(v: &Value, min: u64, max: u64) -> Result<Option<u64>, String> {
    match v {
        Value::Null => Ok(None),
        _ => int(v, min, max).map(Some),
    }
}

fn boolean(v: &Value) -> Result<bool, String> {
    v.as_bool().ok_or_else(|| "expected true or false".into())
}

/// The `ghostline` object inside a `didChangeConfiguration` payload: `settings.ghostline` when
/// present, else the settings themselves.
pub fn section(settings: &Value) -> &Value {
    settings.get("ghostline").unwrap_or(settings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn defaults() {
        let c = Config::default();
        assert_eq!(c.max_tokens, 128);
        assert!(c.repo_context_enabled);
        assert_eq!(c.repo_context_budget_tokens, 1024);
        assert_eq!(c.trigger, Trigger::Automatic);
    }

    #[test]
    fn nested_and_dotted_keys() {
        let mut c = Config::default();
        let u = c.apply(&json!({
            "model": "/m.gguf", "threads": 2, "contextSize": 2048, "maxTokens": 64,
            "timeBudgetMs": 900, "repoContext": {"enabled": false, "budgetTokens": 256},
            "fimTemplate": "qwen", "trigger": "manual"
        }));
        assert_eq!(u.invalid, Vec::<String>::new());
        assert!(u.engine_changed && u.changed);
        assert_eq!(c.model, Some(PathBuf::from("/m.gguf")));
        assert_eq!(c.threads, Some(2));
        assert_eq!(c.context_size, 2048);
        assert_eq!(c.max_tokens, 64);
        assert_eq!(c.time_budget_ms, 900);
        assert!(!c.repo_context_enabled);
        assert_eq!(c.repo_context_budget_tokens, 256);
        assert_eq!(c.fim_template.as_deref(), Some("qwen"));
        assert_eq!(c.trigger, Trigger::Manual);

        let u = c.apply(&json!({"repoContext.enabled": true}));
        assert!(c.repo_context_enabled);
        assert!(u.changed && !u.engine_changed);

        assert!(c.repo_context_recent_files);
        let u = c.apply(&json!({"repoContext": {"recentFiles": false}}));
        assert!(!c.repo_context_recent_files);
        assert!(u.changed && !u.engine_changed);
        let u = c.apply(&json!({"repoContext.recentFiles": "yes"}));
        assert_eq!(u.invalid.len(), 1);
        assert!(!c.repo_context_recent_files);
    }

    #[test]
    fn invalid_values_keep_the_previous_value() {
        let mut c = Config::default();
        let u = c.apply(&json!({"threads": 0, "maxTokens": "many", "trigger": "sometimes", "timeBudgetMs": 700}));
        assert_eq!(u.invalid.len(), 3, "{:?}", u.invalid);
        assert!(
            u.invalid[0].contains("maxTokens") || u.invalid.iter().any(|m| m.contains("maxTokens"))
        );
        assert_eq!(c.threads, None);
        assert_eq!(c.max_tokens, 128);
        assert_eq!(c.trigger, Trigger::Automatic);
        assert_eq!(c.time_budget_ms, 700);
        assert!(!u.engine_changed);
    }

    #[test]
    fn unknown_keys_are_reported() {
        let mut c = Config::default();
        let u = c.apply(&json!({"colour": "blue", "repoContext": {"depth": 3}}));
        assert_eq!(
            u.unknown,
            vec!["colour".to_string(), "repoContext.depth".to_string()]
        );
        assert!(!u.changed);
    }

    #[test]
    fn null_and_empty_model_mean_the_default() {
        let mut c = Config::default();
        c.apply(&json!({"model": "/a.gguf"}));
        let u = c.apply(&json!({"model": ""}));
        assert_eq!(c.model, None);
        assert!(u.engine_changed);
        assert_eq!(c.apply(&Value::Null), Update::default());
        assert_eq!(c.apply(&json!(3)).invalid.len(), 1);
    }

    #[test]
    fn hidden_engine_options() {
        let mut c = Config::default();
        let u = c.apply(&json!({"engine": {"reuse": false}}));
        assert!(!c.engine_reuse && u.engine_changed);
        let u =
            c.apply(&json!({"bench": {"coldWindowInvoked": true}, "window": {"coldTargetMs": 0}}));
        assert!(c.cold_window_invoked && u.unknown.is_empty() && u.invalid.is_empty());
        assert_eq!(c.cold_window().map(|w| w.target_ms), Some(0));
    }

    #[test]
    fn remote_backends_and_their_settings() {
        let mut c = Config::default();
        let u = c.apply(&json!({
            "backend": "openai",
            "remote": {"endpoint": "https://gpu.example:8000/v1", "model": "Qwen/Qwen2.5-Coder-7B",
                       "apiKeyFile": "/run/key", "caFile": "/etc/ca.pem", "timeoutMs": 2500},
            "fimTemplate": "qwen"
        }));
        assert_eq!(u.invalid, Vec::<String>::new());
        assert!(u.engine_changed);
        assert_eq!(c.backend, BackendKind::OpenAi);
        assert_eq!(
            c.remote_endpoint.as_deref(),
            Some("https://gpu.example:8000/v1")
        );
        assert_eq!(c.remote_model.as_deref(), Some("Qwen/Qwen2.5-Coder-7B"));
        assert_eq!(c.remote_api_key_file, Some(PathBuf::from("/run/key")));
        assert_eq!(c.remote_ca_file, Some(PathBuf::from("/etc/ca.pem")));
        assert_eq!(c.remote_timeout_ms, 2500);
        let u = c
            .apply(&json!({"backend": "llama-server", "remote.endpoint": "http://127.0.0.1:8080"}));
        assert!(u.engine_changed && u.invalid.is_empty());
        assert_eq!(c.backend, BackendKind::LlamaServer);
        let u = c.apply(&json!({"remote": {"timeoutMs": 3000}}));
        assert!(u.engine_changed);
    }

    #[test]
    fn bad_remote_values_are_reported_and_secrets_never_repeated() {
        let mut c = Config::default();
        let u = c.apply(&json!({
            "backend": "vllm",
            "remote": {"endpoint": "gpu.example:8000", "timeoutMs": 5, "apiKey": "sk-secret-1"},
        }));
        assert_eq!(u.invalid.len(), 4, "{:?}", u.invalid);
        assert_eq!(c, Config::default());
        assert!(
            u.invalid.iter().all(|m| !m.contains("sk-secret")),
            "{:?}",
            u.invalid
        );
        let key = u
            .invalid
            .iter()
            .find(|m| m.contains("remote.apiKey"))
            .unwrap();
        assert!(key.contains("GHOSTLINE_API_KEY"), "{key}");
        let u = c.apply(&json!({"remote.endpoint": "https://bob:hunter2@gpu.example/"}));
        assert_eq!(u.invalid.len(), 1);
        assert!(u.invalid[0].contains("credentials"), "{:?}", u.invalid);
        for m in &u.invalid {
            assert!(!m.contains("hunter2") && !m.contains("sk-secret"), "{m}");
        }
        assert_eq!(c.remote_endpoint, None);
    }

    #[test]
    fn window_settings_are_validated() {
        let mut c = Config::default();
        assert_eq!(
            (c.window_prefix_chars, c.window_suffix_chars),
            (DEFAULT_PREFIX_CHARS, DEFAULT_SUFFIX_CHARS)
        );
        let u = c.apply(&json!({"window": {"prefixChars": 8000, "suffixChars": 0}}));
        assert_eq!(u.invalid, Vec::<String>::new());
        assert!(u.changed && !u.engine_changed);
        assert_eq!((c.window_prefix_chars, c.window_suffix_chars), (8000, 0));
        let u = c.apply(&json!({"window.prefixChars": 24000, "window.suffixChars": 4000}));
        assert!(u.invalid.is_empty() && u.unknown.is_empty());
        assert_eq!(
            (c.window_prefix_chars, c.window_suffix_chars),
            (24000, 4000)
        );
        // Too small a prefix, negative, fractional, too large, not a number: all refused.
        let u = c.apply(&json!({"window": {"prefixChars": 10, "suffixChars": -1}}));
        assert_eq!(u.invalid.len(), 2, "{:?}", u.invalid);
        assert!(u.invalid[0].contains("window."), "{:?}", u.invalid);
        let u = c.apply(&json!({"window.prefixChars": 2.5, "window.suffixChars": 2_000_000}));
        assert_eq!(u.invalid.len(), 2, "{:?}", u.invalid);
        let u = c.apply(&json!({"window": {"prefixChars": "big"}, "window.sizeChars": 3}));
        assert_eq!(u.invalid.len(), 1, "{:?}", u.invalid);
        assert_eq!(u.unknown, vec!["window.sizeChars".to_string()]);
        assert_eq!(
            (c.window_prefix_chars, c.window_suffix_chars),
            (24000, 4000)
        );
        assert!(!u.changed);
    }

    #[test]
    fn prefill_settings_nested_or_dotted() {
        let mut c = Config::default();
        assert_eq!(
            (c.prefill_enabled, c.prefill_max_starts),
            (true, DEFAULT_PREFILL_STARTS)
        );
        let u = c.apply(&json!({"prefill": {"maxStarts": 0, "enabled": false}}));
        assert!(u.invalid.is_empty() && u.unknown.is_empty(), "{u:?}");
        assert!(u.changed && !u.engine_changed);
        assert_eq!((c.prefill_enabled, c.prefill_max_starts), (false, 0));
        let u = c.apply(&json!({"prefill.maxStarts": 3, "prefill.enabled": true}));
        assert!(u.invalid.is_empty() && u.unknown.is_empty(), "{u:?}");
        assert_eq!((c.prefill_enabled, c.prefill_max_starts), (true, 3));
        let u = c.apply(&json!({"prefill": {"maxStarts": 65, "enabled": "yes"}}));
        assert_eq!(u.invalid.len(), 2, "{:?}", u.invalid);
        assert_eq!((c.prefill_enabled, c.prefill_max_starts), (true, 3));
    }

    #[test]
    fn section_unwraps_ghostline() {
        let v = json!({"ghostline": {"maxTokens": 3}});
        assert_eq!(section(&v), &json!({"maxTokens": 3}));
        let v = json!({"maxTokens": 3});
        assert_eq!(section(&v), &v);
    }
}
