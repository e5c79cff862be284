//! Prefill ahead of the cursor against a real model (issue 12, lever 2): a start evaluated
//! while the engine is idle serves a later jump (only the suffix is evaluated), a request that
//! arrives meanwhile stops the prefill between chunks and the prefill resumes where it stopped,
//! and an empty plan cancels. Assertions are on token bookkeeping, never on generated text.
//! These load the 0.5B model (`make model`).

#[allow(dead_code)]
mod common;

use std::time::{Duration, Instant};

use ghostline_inference::{
    CancelToken, ColdWindow, Completion, Engine, EngineConfig, FimRequest, PrefillCounts,
    PrefillItem,
};

const DOC: &str = "file:///work/jump.py";
const SUFFIX: &str = "\n\nif __name__ == \"__main__\":\n    main()\n";

/// About 50 tokens per function of Python.
fn source(funcs: usize) -> String {
    let mut s = String::from("\"\"\"Helpers.\"\"\"\n\nimport os\n\n");
    for i in 0..funcs {
        s.push_str(&format!(
            "def step_{i}(values, limit={i}):\n    \"\"\"Return the values below {i}.\"\"\"\n    out = []\n    for v in values:\n        if v < limit:\n            out.append(v * {i})\n    return out\n\n\n"
        ));
    }
    s
}

/// The text up to the start of function `i`.
fn up_to(text: &str, i: usize) -> &str {
    let at = text
        .find(&format!("def step_{i}("))
        .expect("the function exists");
    &text[..at]
}

fn engine() -> Engine {
    let mut config = EngineConfig::new(common::small_model());
    config.threads = 2;
    config.context_size = 4096;
    config.doc_state_disk_bytes = 0;
    Engine::start(config).expect("the 0.5B model loads")
}

fn run(engine: &Engine, prefix: &str) -> Completion {
    run_with(engine, prefix, None)
}

fn run_with(engine: &Engine, prefix: &str, cold_window: Option<ColdWindow>) -> Completion {
    let req = FimRequest {
        prefix: prefix.to_owned(),
        suffix: SUFFIX.into(),
        max_tokens: Some(2),
        document: Some(DOC.into()),
        cold_window,
        ..FimRequest::default()
    };
    engine
        .complete(req, CancelToken::new())
        .expect("completion")
}

fn item(anchor: &str, prefix: &str) -> PrefillItem {
    PrefillItem {
        anchor: anchor.into(),
        request: FimRequest {
            prefix: prefix.to_owned(),
            max_tokens: Some(2),
            document: Some(DOC.into()),
            ..FimRequest::default()
        },
    }
}

/// Waits until `done` items are held.
fn wait_done(engine: &Engine, done: u64) -> PrefillCounts {
    let t0 = Instant::now();
    loop {
        let c = engine.prefill_counts();
        if c.done >= done {
            return c;
        }
        assert!(t0.elapsed() < Duration::from_secs(120), "{c:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
#[ignore = "real model: make test-model"]
fn a_jump_into_a_prefilled_start_evaluates_only_the_suffix() {
    let _serial = common::serial();
    let text = source(14);
    let e = engine();
    // The user is near the top of the document.
    let top = run(&e, up_to(&text, 2));
    assert!(top.stats.prompt_tokens > 100, "{:?}", top.stats);

    // While they read, the engine evaluates the document's start down to function 12.
    let start = up_to(&text, 12);
    e.prefill(DOC.into(), vec![item("0", start)]);
    let counts = wait_done(&e, 1);
    // The part the sequence already held (up to function 2) was not evaluated again.
    let start_tokens = e.count_tokens(start) + 1;
    assert!(
        (counts.evaluated_tokens as usize) < start_tokens - top.stats.prompt_tokens / 2,
        "{counts:?} for {start_tokens} tokens"
    );

    // A jump to function 9: the prefix comes from the prefilled start; only the suffix and
    // the markers (and a token or two at the cursor) are evaluated.
    let jump = run(&e, up_to(&text, 9));
    let suffix_tokens = e.count_tokens(SUFFIX) + 3;
    assert!(
        jump.stats.evaluated_tokens <= suffix_tokens + 4,
        "{:?}, suffix {suffix_tokens} tokens",
        jump.stats
    );
    assert!(
        jump.stats.reused_tokens + suffix_tokens + 4 >= jump.stats.prompt_tokens,
        "{:?}",
        jump.stats
    );

    // Back at the top: the document's own last state is restored, not re-evaluated.
    let back = run(&e, up_to(&text, 2));
    assert!(back.stats.evaluated_tokens <= 2, "{:?}", back.stats);
}

#[test]
#[ignore = "real model: make test-model"]
fn a_request_stops_the_prefill_which_resumes_without_losing_work() {
    let _serial = common::serial();
    let text = source(30);
    let e = engine();
    run(&e, "import sys\n");
    let start = up_to(&text, 29);
    let start_tokens = e.count_tokens(start) + 1;
    assert!(start_tokens > 1000, "{start_tokens}");
    e.prefill(DOC.into(), vec![item("0", start)]);
    // The prefill starts after the idle pause and takes seconds: a request arrives meanwhile.
    std::thread::sleep(Duration::from_millis(1500));
    let asked = run(&e, up_to(&text, 1));
    assert!(asked.stats.prompt_tokens > 0);
    let counts = wait_done(&e, 1);
    assert!(counts.preempted >= 1, "{counts:?}");
    // Resumed from the part evaluated before the request, not from scratch.
    assert!(
        (counts.evaluated_tokens as usize) <= start_tokens + 40,
        "{counts:?} for {start_tokens} tokens"
    );
}

#[test]
#[ignore = "real model: make test-model"]
fn an_empty_plan_cancels_its_documents_prefill_only() {
    let _serial = common::serial();
    let text = source(20);
    let e = engine();
    e.prefill(DOC.into(), vec![item("0", up_to(&text, 19))]);
    e.prefill(DOC.into(), Vec::new());
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(e.prefill_counts(), PrefillCounts::default());
    // Closing another document leaves this one's plan alone.
    e.prefill(DOC.into(), vec![item("0", up_to(&text, 4))]);
    e.prefill("file:///work/other.py".into(), Vec::new());
    assert_eq!(wait_done(&e, 1).done, 1);
}

#[test]
#[ignore = "real model: make test-model"]
fn a_cold_place_asks_with_the_small_window_until_its_start_is_held() {
    let _serial = common::serial();
    let text = source(30);
    let e = engine();
    let cold = Some(ColdWindow {
        prefix_tokens: 200,
        suffix_tokens: 16,
        target_ms: 0,
    });
    let place = up_to(&text, 20);
    let first = run_with(&e, place, cold);
    assert!(first.stats.cold, "{:?}", first.stats);
    // The small window: about 200 tokens of prefix (counted line by line when blocks of lines
    // are dropped, so a little over at times), 16 of suffix, the markers.
    assert!(
        first.stats.prompt_tokens <= 200 + 16 + 32,
        "{:?}",
        first.stats
    );
    assert!(first.stats.evaluated_tokens <= first.stats.prompt_tokens);
    // Typing there: still cold (nothing holds the whole window's start), and the small
    // window's start is kept, so a keystroke evaluates the typed token and the small suffix.
    let typed = format!("{place}x");
    let second = run_with(&e, &typed, cold);
    assert!(second.stats.cold, "{:?}", second.stats);
    assert!(
        second.stats.evaluated_tokens <= 16 + 8,
        "{:?}",
        second.stats
    );
    assert!(second.stats.reused_tokens >= 180, "{:?}", second.stats);
    // Once the whole start is prefilled, the request asks with the whole window and
    // evaluates only what the start does not hold.
    e.prefill(DOC.into(), vec![item("0", up_to(&text, 25))]);
    wait_done(&e, 1);
    let warm = run_with(&e, &typed, cold);
    assert!(!warm.stats.cold, "{:?}", warm.stats);
    assert!(warm.stats.prompt_tokens > 900, "{:?}", warm.stats);
    let suffix_tokens = e.count_tokens(SUFFIX) + 3;
    assert!(
        warm.stats.evaluated_tokens <= suffix_tokens + 8,
        "{:?}, suffix {suffix_tokens} tokens",
        warm.stats
    );
    // Without a cold window (an explicit request), the whole window at once.
    let asked = run_with(&e, up_to(&text, 10), None);
    assert!(
        !asked.stats.cold && asked.stats.prompt_tokens > 400,
        "{:?}",
        asked.stats
    );
}

#[test]
#[ignore = "real model: make test-model"]
fn a_cold_window_is_sized_to_its_time_target_and_a_place_keeps_its_size_after_a_restart() {
    let _serial = common::serial();
    let text = source(30);
    let tmp = tempfile::tempdir().unwrap();
    let start = || {
        let mut config = EngineConfig::new(common::small_model());
        config.threads = 2;
        config.context_size = 4096;
        config.doc_state_dir = Some(tmp.path().to_owned());
        Engine::start(config).expect("the 0.5B model loads")
    };
    let whole = ColdWindow {
        prefix_tokens: 400,
        suffix_tokens: 48,
        target_ms: 0,
    };
    // A target no machine meets: the smallest window, once the rate is measured.
    let timed = ColdWindow {
        target_ms: 1,
        ..whole
    };
    let e = start();
    // No rate measured yet: the configured sizes.
    let first = run_with(&e, up_to(&text, 20), Some(timed));
    assert!(first.stats.cold, "{:?}", first.stats);
    assert!(first.stats.prompt_tokens > 300, "{:?}", first.stats);
    // Its prompt was evaluated in chunks of 128 tokens, which measured the rate: a jump now
    // asks with the smallest window.
    let place = up_to(&text, 8);
    let jump = run_with(&e, place, Some(timed));
    assert!(jump.stats.cold, "{:?}", jump.stats);
    assert!(
        jump.stats.prompt_tokens <= ColdWindow::MIN_TOKENS + 32,
        "{:?}",
        jump.stats
    );
    let (tx, rx) = std::sync::mpsc::channel();
    e.persist(move |ok| {
        let _ = tx.send(ok);
    });
    assert_eq!(rx.recv_timeout(Duration::from_secs(30)), Ok(true));
    drop(e);

    // After a restart, with sizes that the place's cached prompt was not cut to, the place
    // keeps the size its saved state was cut to: a keystroke there evaluates a few tokens,
    // not a new window.
    let e = start();
    let typed = format!("{place}x");
    let back = run_with(&e, &typed, Some(whole));
    assert!(back.stats.cold, "{:?}", back.stats);
    assert!(
        back.stats.prompt_tokens <= ColdWindow::MIN_TOKENS + 32,
        "{:?}",
        back.stats
    );
    assert!(
        back.stats.evaluated_tokens <= 40,
        "the saved small window was reused: {:?}",
        back.stats
    );
}
