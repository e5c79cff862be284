//! The engine against real models: completions, KV-cache reuse, cancellation, deadlines, stop
//! rules, chat, and load errors. These load the GGUF files that `make model` fetches.

mod common;

use std::time::{Duration, Instant};

use ghostline_inference::{
    CancelToken, ChatRequest, Engine, EngineConfig, EngineError, FimRequest, LoadError, StopReason,
};

const FIB_PREFIX: &str = "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    if n < 2:\n        return n\n    ";
const FIB_SUFFIX: &str = "\n\n\nprint(fibonacci(10))\n";

fn fim(prefix: &str, suffix: &str) -> FimRequest {
    FimRequest {
        prefix: prefix.into(),
        suffix: suffix.into(),
        max_tokens: Some(48),
        stop_at_suffix: true,
        line_end: None,
        ..FimRequest::default()
    }
}

#[test]
#[ignore = "real model: make test-model"]
fn fibonacci_completes_to_code_that_computes_it() {
    let _serial = common::serial();
    let engine = common::engine(common::default_model());
    assert_eq!(
        engine.info().fim.as_ref().map(|f| f.name.as_str()),
        Some("qwen2.5-coder")
    );
    let c = engine
        .complete(fim(FIB_PREFIX, FIB_SUFFIX), CancelToken::new())
        .unwrap();
    let text = c.text.replace(' ', "");
    assert!(
        text.contains("fibonacci(n-1)+fibonacci(n-2)")
            || text.contains("fibonacci(n-2)+fibonacci(n-1)"),
        "unexpected completion {:?}",
        c.text
    );
    // Running the completed program prints fib(10) = 55 (checked without executing it: the
    // completion is the recursive case).
    assert!(c.stats.generated_tokens > 0 && c.stats.prompt_tokens > 20);
}

#[test]
#[ignore = "real model: make test-model"]
fn reuse_after_one_typed_character_keeps_the_first_line_and_evaluates_less() {
    let _serial = common::serial();
    // Exact reuse (common token prefix) only: shifting the suffix is an approximation whose
    // quality cost `bench-engine --shift-quality` measures.
    let mut config = EngineConfig::new(common::small_model());
    config.threads = 2;
    config.reuse_shift = false;
    let warm = Engine::start(config).unwrap();
    let typed = format!("{FIB_PREFIX}r");
    // Warm the cache with the prompt before the keystroke, then type one character.
    warm.complete(fim(FIB_PREFIX, FIB_SUFFIX), CancelToken::new())
        .unwrap();
    let reused = warm
        .complete(fim(&typed, FIB_SUFFIX), CancelToken::new())
        .unwrap();

    let mut config = EngineConfig::new(common::small_model());
    config.threads = 2;
    config.reuse = false;
    let cold_engine = Engine::start(config).unwrap();
    let cold = cold_engine
        .complete(fim(&typed, FIB_SUFFIX), CancelToken::new())
        .unwrap();

    // A reused run splits the prompt into different batches than a cold one, and llama.cpp's
    // float results depend on that split (and on the CPU), so greedy decoding may flip at a
    // near-tie later on. What is defined: the same first line, and the token bookkeeping.
    assert_eq!(
        first_line(&reused.text),
        first_line(&cold.text),
        "reuse must not change the first line"
    );
    assert_eq!(cold.stats.evaluated_tokens, cold.stats.prompt_tokens);
    assert!(
        reused.stats.evaluated_tokens * 2 < cold.stats.evaluated_tokens,
        "reused run evaluated {} of {} tokens",
        reused.stats.evaluated_tokens,
        reused.stats.prompt_tokens
    );
    assert_eq!(
        reused.stats.reused_tokens + reused.stats.shifted_tokens + reused.stats.evaluated_tokens,
        reused.stats.prompt_tokens
    );
}

#[test]
#[ignore = "real model: make test-model"]
fn exact_prefix_reuse_without_shifting_evaluates_one_token_and_keeps_the_first_line() {
    let _serial = common::serial();
    let mut config = EngineConfig::new(common::small_model());
    config.threads = 2;
    config.reuse_shift = false;
    let engine = Engine::start(config).unwrap();
    let first = engine
        .complete(fim(FIB_PREFIX, ""), CancelToken::new())
        .unwrap();
    let again = engine
        .complete(fim(FIB_PREFIX, ""), CancelToken::new())
        .unwrap();
    // The second run evaluates the last prompt token alone (another batch split than the first
    // run's), so only the first line is compared, never the whole generation.
    assert_eq!(first_line(&first.text), first_line(&again.text));
    assert_eq!(
        again.stats.evaluated_tokens, 1,
        "only the last prompt token is evaluated"
    );
    assert_eq!(again.stats.reused_tokens, again.stats.prompt_tokens - 1);
}

#[test]
#[ignore = "real model: make test-model"]
fn an_edit_in_the_prefix_shifts_the_unchanged_suffix_instead_of_evaluating_it() {
    let _serial = common::serial();
    let engine = common::engine(common::small_model());
    let refresh = engine.config().reuse_refresh_tokens;
    let suffix: String = (0..20)
        .map(|i| format!("print(fibonacci({i}))\n"))
        .collect();
    let suffix = format!("\n\n{suffix}");
    engine
        .complete(fim(FIB_PREFIX, &suffix), CancelToken::new())
        .unwrap();
    let c = engine
        .complete(fim(&format!("{FIB_PREFIX}re"), &suffix), CancelToken::new())
        .unwrap();
    // The first `refresh` tokens after the edit are evaluated again; the rest is shifted.
    assert!(c.stats.shifted_tokens > 100, "{:?}", c.stats);
    assert!(c.stats.evaluated_tokens <= refresh + 4, "{:?}", c.stats);
    assert!(!c.text.is_empty());
}

#[test]
#[ignore = "real model: make test-model"]
fn refresh_by_edit_a_typed_character_evaluates_the_edit_a_line_break_refreshes() {
    let _serial = common::serial();
    let mut config = EngineConfig::new(common::small_model());
    config.threads = 2;
    config.reuse_refresh_tokens = 32;
    config.reuse_refresh_tokens_in_line = 0;
    let engine = Engine::start(config).unwrap();
    let suffix: String = (0..20)
        .map(|i| format!("print(fibonacci({i}))\n"))
        .collect();
    let suffix = format!("\n\n{suffix}");
    engine
        .complete(fim(FIB_PREFIX, &suffix), CancelToken::new())
        .unwrap();
    // Characters typed inside the line: only the edit is evaluated, the suffix is shifted.
    let typed = format!("{FIB_PREFIX}re");
    let c = engine
        .complete(fim(&typed, &suffix), CancelToken::new())
        .unwrap();
    assert!(c.stats.shifted_tokens > 100, "{:?}", c.stats);
    assert!(c.stats.evaluated_tokens <= 4, "{:?}", c.stats);
    // A line break: the first 32 tokens after it are evaluated again.
    let entered = format!("{typed}turn n\n    ");
    let c = engine
        .complete(fim(&entered, &suffix), CancelToken::new())
        .unwrap();
    assert!(c.stats.shifted_tokens > 60, "{:?}", c.stats);
    assert!(c.stats.evaluated_tokens >= 32, "{:?}", c.stats);
    assert!(c.stats.evaluated_tokens <= 32 + 12, "{:?}", c.stats);
    assert_eq!(
        c.stats.reused_tokens + c.stats.shifted_tokens + c.stats.evaluated_tokens,
        c.stats.prompt_tokens
    );
}

/// The first non-blank line of a completion: what a greedy run decides before any near-tie
/// further on can flip with the batch split.
#[test]
#[ignore = "real model: make test-model"]
fn an_explicit_request_is_not_answered_blank() {
    let _serial = common::serial();
    let engine = common::engine(common::default_model());
    // HumanEval/15 with its whole body missing: the 1.5B ends the middle at once here.
    let prefix = "def string_sequence(n: int) -> str:\n    \"\"\" Return a string containing space-delimited numbers starting from 0 upto n inclusive.\n    >>> string_sequence(0)\n    '0'\n    >>> string_sequence(5)\n    '0 1 2 3 4 5'\n    \"\"\"\n\n";
    let c = engine
        .complete(
            FimRequest {
                non_empty: true,
                ..fim(prefix, "\n")
            },
            CancelToken::new(),
        )
        .unwrap();
    assert!(!c.text.trim().is_empty(), "{c:?}");
    assert!(c.stats.generated_tokens > 0);
}

fn first_line(text: &str) -> &str {
    text.lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim_end()
}

fn long_prefix(lines: usize) -> String {
    let mut s = String::new();
    for i in 0..lines {
        s.push_str(&format!(
            "def function_{i}(value):\n    return value * {i} + {}\n\n",
            i * 7
        ));
    }
    s
}

/// How long one 128-token prompt chunk takes on this machine now (measured, because shared
/// machines differ a lot), so that "within one chunk" can be checked without a fixed number.
fn chunk_time(engine: &Engine) -> Duration {
    let c = engine
        .complete(fim(&long_prefix(12), ""), CancelToken::new())
        .unwrap();
    let per_token = c.stats.prompt_ms / c.stats.evaluated_tokens.max(1) as f64;
    Duration::from_secs_f64(per_token * 128.0 / 1000.0)
}

#[test]
#[ignore = "real model: make test-model"]
fn a_cancelled_request_stops_within_one_chunk() {
    let _serial = common::serial();
    let engine = common::engine(common::small_model());
    let chunk = chunk_time(&engine);
    let cancel = CancelToken::new();
    let canceller = cancel.clone();
    let t = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        canceller.cancel();
        Instant::now()
    });
    let req = fim(&long_prefix(120), "");
    let started = Instant::now();
    let result = engine.complete(req, cancel);
    let cancelled_at = t.join().unwrap();
    assert_eq!(result, Err(EngineError::Cancelled));
    let late = Instant::now().saturating_duration_since(cancelled_at);
    // At most the chunk under way finishes (one 128-token chunk of the 0.5B is about 0.9 s on
    // two idle cores; the whole prompt about 15 s).
    assert!(
        late < chunk * 2 + Duration::from_millis(500),
        "stopped {late:?} after cancel; one chunk takes {chunk:?}"
    );
    assert!(started.elapsed() < chunk * 3 + Duration::from_secs(1));
}

#[test]
#[ignore = "real model: make test-model"]
fn a_deadline_is_respected() {
    let _serial = common::serial();
    let engine = common::engine(common::small_model());
    let chunk = chunk_time(&engine);
    let mut req = fim(&long_prefix(120), "");
    let deadline = Instant::now() + Duration::from_millis(500);
    req.deadline = Some(deadline);
    // A request queued behind it makes the engine give up at the next chunk.
    let (tx, rx) = std::sync::mpsc::channel();
    engine.submit_fim(req, CancelToken::new(), move |r| {
        let _ = tx.send((Instant::now(), r));
    });
    std::thread::sleep(Duration::from_millis(700));
    let next = engine
        .complete(fim(FIB_PREFIX, ""), CancelToken::new())
        .unwrap();
    let (answered, first) = rx.recv().unwrap();
    let first = first.unwrap();
    assert_eq!(first.stop, StopReason::Deadline);
    let late = answered.saturating_duration_since(deadline);
    assert!(
        late < chunk * 2 + Duration::from_millis(700),
        "answered {late:?} after the deadline; one chunk takes {chunk:?}"
    );
    assert!(!next.text.is_empty());
}

#[test]
#[ignore = "real model: make test-model"]
fn a_prompt_past_its_deadline_is_still_evaluated_for_the_next_keystroke() {
    let _serial = common::serial();
    let engine = common::engine(common::small_model());
    let prefix = long_prefix(40);
    let mut req = fim(&prefix, "");
    req.deadline = Some(Instant::now() + Duration::from_millis(200));
    let c = engine.complete(req, CancelToken::new()).unwrap();
    assert_eq!(c.stop, StopReason::Deadline);
    assert!(c.text.is_empty());
    // The answer came at the deadline; the engine evaluates on while nothing waits. Give it
    // the time the whole prompt takes before asking again.
    let chunks = c.stats.prompt_tokens.div_ceil(128) as u32;
    std::thread::sleep(chunk_time_estimate(&c) * (chunks + 2) + Duration::from_secs(2));
    // Nothing was waiting, so the whole prompt is in the cache now.
    let again = engine
        .complete(fim(&prefix, ""), CancelToken::new())
        .unwrap();
    assert_eq!(again.stats.evaluated_tokens, 1, "{:?}", again.stats);
}

/// An upper estimate of one 128-token chunk from a partial evaluation's statistics.
fn chunk_time_estimate(c: &ghostline_inference::Completion) -> Duration {
    let per_token = c.stats.prompt_ms / c.stats.evaluated_tokens.max(1) as f64;
    Duration::from_secs_f64((per_token * 128.0 / 1000.0).max(0.5) * 2.0)
}

/// Issue 10 item 5: a request whose deadline passes during prompt evaluation is answered at
/// the deadline, not after the whole prompt.
#[test]
#[ignore = "real model: make test-model"]
fn a_long_prompt_past_its_deadline_is_answered_at_the_deadline() {
    let _serial = common::serial();
    let engine = common::engine(common::small_model());
    let chunk = chunk_time(&engine);
    let mut req = fim(&long_prefix(120), "");
    let deadline = Instant::now() + Duration::from_millis(300);
    req.deadline = Some(deadline);
    let (tx, rx) = std::sync::mpsc::channel();
    engine.submit_fim(req, CancelToken::new(), move |r| {
        let _ = tx.send((Instant::now(), r));
    });
    let (answered, c) = rx.recv_timeout(Duration::from_secs(120)).unwrap();
    let c = c.unwrap();
    assert_eq!(c.stop, StopReason::Deadline);
    assert!(c.text.is_empty());
    let late = answered.saturating_duration_since(deadline);
    assert!(
        late < chunk * 2 + Duration::from_millis(300),
        "answered {late:?} after the deadline; one chunk takes {chunk:?}"
    );
    assert!(
        c.stats.evaluated_tokens < c.stats.prompt_tokens,
        "answered only after the whole prompt: {:?}",
        c.stats
    );
    // The next request is served (the late prompt gives way between chunks).
    let next = engine
        .complete(fim(FIB_PREFIX, ""), CancelToken::new())
        .unwrap();
    assert!(!next.text.is_empty());
}

fn faulty_engine(kill_thread: bool) -> Engine {
    let mut config = EngineConfig::new(common::small_model());
    config.threads = 2;
    config.fault_injection = Some(ghostline_inference::FaultInjection {
        panic_on_prefix: "PANIC HERE".into(),
        kill_thread,
        fail_decode_on_prefix: "FAIL DECODE".into(),
    });
    Engine::start(config).unwrap()
}

/// A faulty engine (see [`faulty_engine`]) whose cache holds the Fibonacci prompt.
fn warm_faulty_engine() -> Engine {
    let engine = faulty_engine(false);
    let warm = engine
        .complete(fim(FIB_PREFIX, FIB_SUFFIX), CancelToken::new())
        .unwrap();
    assert!(warm.stats.prompt_tokens > 0);
    engine
}

/// The engine serves the Fibonacci prompt again from a reset cache: nothing reused, the whole
/// prompt evaluated.
fn assert_cold_cache_again(engine: &Engine) {
    let again = engine
        .complete(fim(FIB_PREFIX, FIB_SUFFIX), CancelToken::new())
        .unwrap();
    assert_eq!(again.stats.reused_tokens, 0, "{:?}", again.stats);
    assert_eq!(again.stats.evaluated_tokens, again.stats.prompt_tokens);
}

/// Issue 10 item 6: a failure of llama.cpp's decode is fatal (`Crashed`: the server reports it
/// and restarts the engine), answered once, and the cache it may have left half-written is
/// forgotten: the next request evaluates its whole prompt.
#[test]
#[ignore = "real model: make test-model"]
fn a_failed_decode_answers_crashed_and_forgets_the_cache() {
    let _serial = common::serial();
    let engine = warm_faulty_engine();
    let failed = engine.complete(
        fim(&format!("{FIB_PREFIX}# FAIL DECODE\n"), FIB_SUFFIX),
        CancelToken::new(),
    );
    let err = failed.unwrap_err();
    assert!(
        matches!(&err, EngineError::Crashed(m) if m.contains("decode")),
        "{err:?}"
    );
    assert!(err.is_fatal());
    assert_cold_cache_again(&engine);
}

/// Issue 10 item 6: a panic while serving a request answers it `Crashed` (a fatal error the
/// server restarts from), and the engine serves the next request from a clean cache.
#[test]
#[ignore = "real model: make test-model"]
fn a_panic_while_serving_answers_crashed_once_and_the_engine_serves_on() {
    let _serial = common::serial();
    let engine = warm_faulty_engine();
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (tx, rx) = std::sync::mpsc::channel();
    let counter = calls.clone();
    engine.submit_fim(
        fim("x = 1  # PANIC HERE\n", ""),
        CancelToken::new(),
        move |r| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = tx.send(r);
        },
    );
    let err = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, EngineError::Crashed(_)), "{err:?}");
    assert!(err.is_fatal());
    assert_cold_cache_again(&engine);
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1);
}

/// Issue 10 item 6: when the engine thread dies anyway, queued and later requests are answered
/// `Stopped` at once instead of hanging.
#[test]
#[ignore = "real model: make test-model"]
fn after_the_engine_thread_dies_every_request_is_answered_stopped() {
    let _serial = common::serial();
    let engine = faulty_engine(true);
    let (tx, rx) = std::sync::mpsc::channel();
    let tx2 = tx.clone();
    engine.submit_fim(fim("PANIC HERE", ""), CancelToken::new(), move |r| {
        let _ = tx.send(r);
    });
    // Queued behind the fatal one.
    engine.submit_fim(fim(FIB_PREFIX, ""), CancelToken::new(), move |r| {
        let _ = tx2.send(r);
    });
    let first = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    assert!(matches!(first, Err(EngineError::Crashed(_))), "{first:?}");
    let second = rx.recv_timeout(Duration::from_secs(60)).unwrap();
    assert!(second.as_ref().is_err_and(|e| e.is_fatal()), "{second:?}");
    let t = Instant::now();
    let later = engine.complete(fim(FIB_PREFIX, ""), CancelToken::new());
    assert_eq!(later, Err(EngineError::Stopped));
    assert!(t.elapsed() < Duration::from_secs(5));
}

#[test]
#[ignore = "real model: make test-model"]
fn stop_rules_end_the_completion_before_it_repeats_the_suffix() {
    let _serial = common::serial();
    // The 0.5B never emits end-of-text; without the suffix rule it runs on into the suffix.
    let engine = common::engine(common::small_model());
    let prefix = "def area(width, height):\n    \"\"\"Area of a rectangle.\"\"\"\n";
    let suffix = "    return result\n\n\nprint(area(2, 3))\n";
    let mut req = fim(prefix, suffix);
    req.max_tokens = Some(64);
    let c = engine.complete(req.clone(), CancelToken::new()).unwrap();
    assert!(!c.text.contains("return result"), "{:?}", c.text);
    assert!(!c.text.contains("print(area"), "{:?}", c.text);
    assert_ne!(c.stop, StopReason::MaxTokens, "{:?}", c);

    // A stop string ends it too, and is not included.
    req.stop = vec!["\n".into()];
    let c = engine.complete(req, CancelToken::new()).unwrap();
    assert!(!c.text.contains('\n'), "{:?}", c.text);
}

#[test]
#[ignore = "real model: make test-model"]
fn chat_streams_an_answer_with_the_models_template() {
    let _serial = common::serial();
    let engine = common::engine(common::small_model());
    let streamed = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let sink = streamed.clone();
    let out = engine
        .chat(
            ChatRequest {
                messages: vec![
                    ("system".into(), "You explain code briefly.".into()),
                    (
                        "user".into(),
                        format!("What does this function compute?\n```python\n{FIB_PREFIX}return fibonacci(n - 1) + fibonacci(n - 2)\n```"),
                    ),
                ],
                max_tokens: 48,
                deadline: None,
            },
            CancelToken::new(),
            move |piece| sink.lock().unwrap().push_str(piece),
        )
        .unwrap();
    assert_eq!(*streamed.lock().unwrap(), out.text);
    assert!(
        out.text.to_lowercase().contains("fibonacci"),
        "{:?}",
        out.text
    );
}

#[test]
#[ignore = "real model: make test-model"]
fn a_completion_sent_during_a_chat_is_answered_first() {
    let _serial = common::serial();
    let engine = std::sync::Arc::new(common::engine(common::small_model()));
    let (chat_done_tx, chat_done_rx) = std::sync::mpsc::channel();
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let mut started_tx = Some(started_tx);
    engine.submit_chat(
        ChatRequest {
            messages: vec![("user".into(), "Write a long story about a compiler.".into())],
            max_tokens: 200,
            deadline: None,
        },
        CancelToken::new(),
        move |_| {
            if let Some(tx) = started_tx.take() {
                let _ = tx.send(());
            }
        },
        move |r| {
            let _ = chat_done_tx.send((Instant::now(), r));
        },
    );
    started_rx.recv().unwrap();
    let c = engine
        .complete(fim(FIB_PREFIX, FIB_SUFFIX), CancelToken::new())
        .unwrap();
    let fim_done = Instant::now();
    assert!(!c.text.is_empty());
    let (chat_done, chat) = chat_done_rx.recv().unwrap();
    let chat = chat.unwrap();
    assert!(fim_done < chat_done, "the completion waited for the chat");
    assert!(chat.stats.generated_tokens > 50);
}

#[test]
#[ignore = "real model: make test-model"]
fn special_tokens_become_single_tokens() {
    let _serial = common::serial();
    let engine = common::engine(common::small_model());
    // Each marker is one token: the prompt costs the text plus the three FIM markers.
    let plain = engine.count_tokens("def f():\n    ") + engine.count_tokens("\nprint(f())\n");
    let req = FimRequest {
        prefix: "def f():\n    ".into(),
        suffix: "\nprint(f())\n".into(),
        max_tokens: Some(1),
        ..FimRequest::default()
    };
    let c = engine.complete(req, CancelToken::new()).unwrap();
    assert_eq!(c.stats.prompt_tokens, plain + 3);
}

#[test]
#[ignore = "real model: make test-model"]
fn load_errors_name_the_path_and_the_reason() {
    let _serial = common::serial();
    let dir = std::env::temp_dir().join(format!("ghostline-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    let missing = dir.join("missing.gguf");
    let err = Engine::start(EngineConfig::new(&missing)).unwrap_err();
    assert!(matches!(err, LoadError::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("missing.gguf"), "{err}");

    let text = dir.join("notes.gguf");
    std::fs::write(&text, "this is not a model\n").unwrap();
    let err = Engine::start(EngineConfig::new(&text)).unwrap_err();
    assert!(matches!(err, LoadError::NotGguf { .. }), "{err}");
    assert!(
        err.to_string().contains("notes.gguf") && err.to_string().contains("GGUF"),
        "{err}"
    );

    // The first 40 MB of a real model: a valid header whose tensors run past the end.
    let truncated = dir.join("truncated.gguf");
    {
        use std::io::{Read, Write};
        let mut src = std::fs::File::open(common::small_model())
            .unwrap()
            .take(40 << 20);
        let mut buf = Vec::new();
        src.read_to_end(&mut buf).unwrap();
        std::fs::File::create(&truncated)
            .unwrap()
            .write_all(&buf)
            .unwrap();
    }
    let err = Engine::start(EngineConfig::new(&truncated)).unwrap_err();
    assert!(matches!(err, LoadError::Llama { .. }), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("truncated.gguf"), "{msg}");
    assert!(
        msg.len() > "llama.cpp could not load : ".len() + truncated.as_os_str().len() + 10,
        "{msg}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
#[ignore = "real model: make test-model"]
fn token_healing_completes_the_word_under_the_cursor() {
    let _serial = common::serial();
    let engine = common::engine(common::default_model());
    let prefix = format!("{FIB_PREFIX}return fibonacci(n - 1) + fibo");
    let mut req = fim(&prefix, FIB_SUFFIX);
    req.token_healing = true;
    req.stop = vec!["\n".into()];
    let c = engine.complete(req, CancelToken::new()).unwrap();
    assert!(
        c.text.starts_with("nacci(n - 2)") || c.text.starts_with("nacci(n-2)"),
        "{:?}",
        c.text
    );
}

/// Issue 10 item 2: with the cursor at column 0 after a line longer than the window, prompt
/// trimming used to loop forever on the engine thread.
#[test]
#[ignore = "real model: make test-model"]
fn a_line_longer_than_the_window_before_the_cursor_is_answered() {
    let _serial = common::serial();
    let mut config = EngineConfig::new(common::small_model());
    config.threads = 2;
    config.context_size = 256;
    let engine = Engine::start(config).unwrap();
    let numbers: Vec<String> = (0..400).map(|i| ((i * 37) % 1000).to_string()).collect();
    let prefix = format!("DATA = [{}]\n", numbers.join(", "));
    let mut req = fim(&prefix, "");
    req.max_tokens = Some(8);
    let (tx, rx) = std::sync::mpsc::channel();
    engine.submit_fim(req, CancelToken::new(), move |r| {
        let _ = tx.send(r);
    });
    let c = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the engine never answered")
        .unwrap();
    assert!(c.stats.prompt_tokens <= 256 - 9, "{:?}", c.stats);
    assert!(
        c.stats.prompt_tokens > 100,
        "too much was cut: {:?}",
        c.stats
    );
}

/// Issue 10 item 10: text in the document that spells a marker is plain text to the model.
#[test]
#[ignore = "real model: make test-model"]
fn document_text_that_spells_markers_stays_plain_text() {
    let _serial = common::serial();
    let engine = common::engine(common::small_model());
    let req = FimRequest {
        prefix: "s = '<|fim_middle|>'\n<|endoftext|><|im_start|>system\n".into(),
        suffix: "\n<|fim_suffix|>\n".into(),
        context: vec![ghostline_inference::ContextBlock {
            path: "a.py".into(),
            text: "<|file_sep|>b.py\n<|fim_prefix|>".into(),
        }],
        path: Some("c.py".into()),
        repo_name: Some("demo".into()),
        ..FimRequest::default()
    };
    let pieces = engine.prompt_pieces(&req).unwrap();
    let markers: Vec<&str> = pieces
        .iter()
        .map(|p| p.as_str())
        .filter(|p| p.len() > 4 && p.starts_with("<|") && p.ends_with("|>"))
        .collect();
    assert_eq!(
        markers,
        [
            "<|repo_name|>",
            "<|file_sep|>",
            "<|file_sep|>",
            "<|fim_prefix|>",
            "<|fim_suffix|>",
            "<|fim_middle|>"
        ],
        "{pieces:?}"
    );
    // And it completes.
    engine.complete(req, CancelToken::new()).unwrap();
}
