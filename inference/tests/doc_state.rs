//! Per-document KV states against a real model (issue 12, lever 1): coming back to a document
//! evaluates only what changed, within one engine and across a restart (the disk tier), and a
//! damaged file on disk is ignored. Assertions are on token bookkeeping, never on generated
//! text. These load the 0.5B model (`make model`).

#[allow(dead_code)]
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use ghostline_inference::{CancelToken, Completion, Engine, EngineConfig, FimRequest};

const DOC_A: &str = "file:///work/a.py";
const DOC_B: &str = "file:///work/b.py";

/// About 600 tokens of Python, different per seed.
fn source(name: &str, funcs: usize) -> String {
    let mut s = format!("\"\"\"Helpers of the {name} module.\"\"\"\n\nimport os\nimport sys\n\n");
    for i in 0..funcs {
        s.push_str(&format!(
            "def {name}_step_{i}(values, limit={i}):\n    \"\"\"Return the values of {name} below {i}.\"\"\"\n    out = []\n    for v in values:\n        if v < limit:\n            out.append(v * {i})\n    return out\n\n\n"
        ));
    }
    s
}

fn request(doc: Option<&str>, prefix: &str) -> FimRequest {
    FimRequest {
        prefix: prefix.to_owned(),
        suffix: "\n\nif __name__ == \"__main__\":\n    main()\n".into(),
        max_tokens: Some(2),
        document: doc.map(str::to_owned),
        ..FimRequest::default()
    }
}

fn engine(dir: &Path, disk: bool) -> Engine {
    let mut config = EngineConfig::new(common::small_model());
    config.threads = 2;
    config.context_size = 2048;
    config.doc_state_dir = Some(dir.to_owned());
    if !disk {
        config.doc_state_disk_bytes = 0;
    }
    Engine::start(config).expect("the 0.5B model loads")
}

fn run(engine: &Engine, doc: Option<&str>, prefix: &str) -> Completion {
    engine
        .complete(request(doc, prefix), CancelToken::new())
        .expect("completion")
}

fn kv_files(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "kv"))
                .collect()
        })
        .unwrap_or_default()
}

/// Waits for the background writer (and the stopping engine's last save).
fn wait_for_files(dir: &Path, n: usize) {
    let t0 = Instant::now();
    while kv_files(dir).len() < n {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "expected {n} saved states in {}, found {}",
            dir.display(),
            kv_files(dir).len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
#[ignore = "real model: make test-model"]
fn returning_to_a_document_evaluates_only_what_changed() {
    let _serial = common::serial();
    let tmp = tempfile::tempdir().unwrap();
    let a = source("alpha", 8);
    let b = source("beta", 8);

    // Without document keys: A, B, A evaluates A again from where B diverges.
    let plain = engine(tmp.path(), false);
    run(&plain, None, &a);
    run(&plain, None, &b);
    let cold = run(&plain, None, &a);
    assert!(
        cold.stats.evaluated_tokens > cold.stats.prompt_tokens / 2,
        "{:?}",
        cold.stats
    );
    drop(plain);

    let e = engine(tmp.path(), false);
    let first = run(&e, Some(DOC_A), &a);
    assert!(first.stats.prompt_tokens > 400, "{:?}", first.stats);
    run(&e, Some(DOC_B), &b);
    let back = run(&e, Some(DOC_A), &a);
    // Only the last prompt token (whose logits start generation) is evaluated again.
    assert_eq!(back.stats.prompt_tokens, first.stats.prompt_tokens);
    assert!(back.stats.evaluated_tokens <= 2, "{:?}", back.stats);
    assert!(
        back.stats.reused_tokens + 2 >= back.stats.prompt_tokens,
        "{:?}",
        back.stats
    );

    // B was saved when the engine left it, including an edit near its end: only the edited
    // tail costs anything.
    let edited_b = format!("{b}def added():\n    return 1\n");
    let b2 = run(&e, Some(DOC_B), &edited_b);
    assert!(
        b2.stats.reused_tokens + 80 >= b2.stats.prompt_tokens,
        "{:?}",
        b2.stats
    );
    assert!(b2.stats.evaluated_tokens < 80, "{:?}", b2.stats);
    // Nothing is written to disk when the disk tier is off.
    assert!(kv_files(tmp.path()).is_empty());
}

#[test]
#[ignore = "real model: make test-model"]
fn a_document_is_warm_again_after_a_restart() {
    let _serial = common::serial();
    let tmp = tempfile::tempdir().unwrap();
    let a = source("alpha", 8);
    let b = source("beta", 8);
    let e = engine(tmp.path(), true);
    let first = run(&e, Some(DOC_A), &a);
    run(&e, Some(DOC_B), &b);
    // A was saved when the engine moved to B; B is saved when the engine stops.
    drop(e);
    wait_for_files(tmp.path(), 2);

    let e = engine(tmp.path(), true);
    let back = run(&e, Some(DOC_A), &a);
    assert_eq!(back.stats.prompt_tokens, first.stats.prompt_tokens);
    assert!(back.stats.evaluated_tokens <= 2, "{:?}", back.stats);
    let b_back = run(&e, Some(DOC_B), &b);
    assert!(b_back.stats.evaluated_tokens <= 2, "{:?}", b_back.stats);
}

#[test]
#[ignore = "real model: make test-model"]
fn a_corrupt_saved_state_is_ignored_and_deleted() {
    let _serial = common::serial();
    let tmp = tempfile::tempdir().unwrap();
    let a = source("alpha", 8);
    let b = source("beta", 8);
    let e = engine(tmp.path(), true);
    run(&e, Some(DOC_A), &a);
    run(&e, Some(DOC_B), &b);
    drop(e);
    wait_for_files(tmp.path(), 2);
    // Damage every saved state: one flipped byte in the payload, and one file cut short.
    let files = kv_files(tmp.path());
    let mut flipped = std::fs::read(&files[0]).unwrap();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    std::fs::write(&files[0], &flipped).unwrap();
    let full = std::fs::read(&files[1]).unwrap();
    let cut = full[..full.len() - 10].to_vec();
    std::fs::write(&files[1], &cut).unwrap();

    let e = engine(tmp.path(), true);
    let c = run(&e, Some(DOC_A), &a);
    // Evaluated from scratch: nothing was restored.
    assert_eq!(c.stats.reused_tokens, 0, "{:?}", c.stats);
    assert_eq!(c.stats.evaluated_tokens, c.stats.prompt_tokens);
    let c = run(&e, Some(DOC_B), &b);
    assert!(
        c.stats.evaluated_tokens + 20 >= c.stats.prompt_tokens,
        "{:?}",
        c.stats
    );
    drop(e);
    // Both damaged files were deleted when they were read; what is there now was saved anew.
    for f in &files {
        if let Ok(now) = std::fs::read(f) {
            assert!(
                now != flipped && now != cut,
                "a damaged file is still there"
            );
        }
    }
}

/// A real file split at a line in its middle: up to 8,000 characters before, 4,000 after (about
/// what the server sends).
fn real_file(path: &str) -> Option<(String, String)> {
    let text = std::fs::read_to_string(path).ok()?;
    let mid = text[..text.len() / 2].rfind('\n')? + 1;
    let start = text[..mid.saturating_sub(8000)]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let start = if mid <= 8000 { 0 } else { start };
    let end = text[..(mid + 4000).min(text.len())]
        .rfind('\n')
        .unwrap_or(text.len());
    Some((text[start..mid].to_owned(), text[mid..end].to_owned()))
}

/// Prints the cost of coming back to a file with and without per-document states (for the
/// report; asserts only that the store helps). `--nocapture` shows the figures.
#[test]
#[ignore = "real model: make test-model"]
fn measure_return_to_a_real_file() {
    let _serial = common::serial();
    let (Some(a), Some(b)) = (
        real_file("/usr/lib/python3.11/heapq.py"),
        real_file("/usr/lib/python3.11/textwrap.py"),
    ) else {
        eprintln!("python 3.11 sources not found; skipped");
        return;
    };
    let model = std::env::var_os("GHOSTLINE_MEASURE_MODEL")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(common::small_model);
    let tmp = tempfile::tempdir().unwrap();
    let req = |doc: Option<&str>, (p, s): &(String, String)| FimRequest {
        prefix: p.clone(),
        suffix: s.clone(),
        max_tokens: Some(1),
        document: doc.map(str::to_owned),
        ..FimRequest::default()
    };
    let mut figures = Vec::new();
    for (label, keyed, restart) in [
        ("without store", false, false),
        ("with store", true, false),
        ("with store, after restart", true, true),
    ] {
        let start = || {
            let mut config = EngineConfig::new(&model);
            config.threads = 2;
            config.doc_state_dir = Some(tmp.path().to_owned());
            Engine::start(config).expect("model loads")
        };
        let mut e = start();
        let doc_a = keyed.then_some("file:///heapq.py");
        let doc_b = keyed.then_some("file:///textwrap.py");
        e.complete(req(doc_a, &a), CancelToken::new()).unwrap();
        e.complete(req(doc_b, &b), CancelToken::new()).unwrap();
        if restart {
            drop(e);
            wait_for_files(tmp.path(), 2);
            e = start();
        }
        let t0 = Instant::now();
        let back = e.complete(req(doc_a, &a), CancelToken::new()).unwrap();
        let ms = t0.elapsed().as_millis();
        eprintln!(
            "{}: return to heapq.py: prompt {} tokens, evaluated {}, reused {}, {} ms to the answer",
            label, back.stats.prompt_tokens, back.stats.evaluated_tokens, back.stats.reused_tokens, ms
        );
        figures.push(back.stats.evaluated_tokens);
    }
    assert!(
        figures[1] < figures[0] / 10 && figures[2] < figures[0] / 10,
        "{figures:?}"
    );
}
