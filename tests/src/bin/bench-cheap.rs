//! bench-cheap: how long cheap requests take while heavy work runs elsewhere (issue 10: "a
//! cheap request is answered within 100 ms p99 while heavy work runs elsewhere").
//!
//! It drives the real server over stdio with the fake backend (no model): the workspace is a
//! large folder (default `/usr/lib/python3.11`, walked at start-up), a 5 MB Python document in
//! it importing a dozen standard modules gets a steady stream of heavy requests (code actions:
//! function finding over the whole document; invoked completions: a context build over the
//! workspace's imports), at most `--heavy` outstanding at any time. Meanwhile it sends cheap
//! requests one after another and times each from send to answer: a cached completion (the same
//! invoked request on a small document, answered from the suggestion cache) and a code action
//! on that small document, alternating. It prints p50/p95/p99/max of the cheap requests, in all
//! and by kind.
//!
//! It does not judge suggestions, and does not load a model.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ghostline_tests::args::Args;
use ghostline_tests::rng::Rng;
use ghostline_tests::stats::percentile;
use ghostline_tests::{editor_capabilities, file_uri, Server, Spawn, TIMEOUT};
use serde_json::json;

const USAGE: &str =
    "usage: bench-cheap [--requests N] [--workspace DIR] [--heavy-mb MB] [--heavy N] [--seed N]
  --requests N     cheap requests to time (default 1000)
  --workspace DIR  the workspace folder, walked at start-up (default /usr/lib/python3.11)
  --heavy-mb MB    size of the heavy document (default 5)
  --heavy N        heavy requests outstanding at any time (default 2)
  --seed N         seed of the heavy requests' positions (default 1)";

/// The heavy document: imports of the standard library, then functions and assignments.
fn heavy_text(bytes: usize) -> String {
    let mut s = String::from(
        "import os\nimport json\nimport asyncio\nimport email.message\nimport http.client\n\
         import logging\nimport unittest\nimport argparse\nimport collections\nimport typing\n\
         import xml.dom.minidom\nimport multiprocessing\n\n",
    );
    let mut i = 0;
    while s.len() < bytes {
        s.push_str(&format!(
            "def handler_{i}(request, data):\n    value = json.dumps(data)\n    logging.info(value)\n    return os.path.join(request, value)\n\n"
        ));
        i += 1;
    }
    s
}

fn code_action(s: &mut Server, uri: &str, line: u32, character: u32) -> i64 {
    s.send_request(
        "textDocument/codeAction",
        json!({"textDocument": {"uri": uri},
               "range": {"start": {"line": line, "character": character}, "end": {"line": line, "character": character}},
               "context": {"diagnostics": []}}),
    )
}

fn summary(name: &str, ms: &mut [f64]) {
    ms.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{name:<18} n={:<5} p50={:>7.2} ms  p95={:>7.2} ms  p99={:>7.2} ms  max={:>7.2} ms",
        ms.len(),
        percentile(ms, 0.5),
        percentile(ms, 0.95),
        percentile(ms, 0.99),
        ms.last().copied().unwrap_or(f64::NAN)
    );
}

fn main() {
    let mut args = Args::parse(USAGE);
    let requests: usize = args.get("--requests", 1000);
    let workspace: PathBuf = args.get("--workspace", PathBuf::from("/usr/lib/python3.11"));
    let heavy_mb: usize = args.get("--heavy-mb", 5);
    let heavy_max: usize = args.get("--heavy", 2);
    let seed: u64 = args.get("--seed", 1);
    if !workspace.is_dir() {
        args.die(&format!("{} is not a folder", workspace.display()));
    }
    args.finish();

    let spawn = Spawn {
        args: vec!["--log-level".into(), "warn".into()],
        ..Spawn::default()
    };
    let mut s = Server::spawn(spawn.settings(json!({})));
    let started = Instant::now();
    s.initialize_in(
        &[workspace.as_path()],
        editor_capabilities(),
        json!({"backend": "fake"}),
    );
    s.wait_status(0, "ready", Duration::from_secs(60));

    let heavy_uri = file_uri(&workspace.join("ghostline_bench_heavy.py").to_string_lossy());
    let heavy = heavy_text(heavy_mb << 20);
    let heavy_lines = heavy.lines().count() as u32;
    s.open(&heavy_uri, "python", &heavy);
    let small_uri = file_uri(&workspace.join("ghostline_bench_small.py").to_string_lossy());
    s.open(
        &small_uri,
        "python",
        "import os\n\ndef join(a, b):\n    return os.path.join(a, b)\n\n",
    );
    // The small document's completion, once, so that the same request is answered from the
    // suggestion cache afterwards.
    let warm = s.send_inline(&small_uri, 5, 0, true);
    s.response(warm, TIMEOUT);

    let mut rng = Rng(seed);
    let mut outstanding: Vec<i64> = Vec::new();
    let mut heavy_sent = 0usize;
    let mut cached_ms = Vec::with_capacity(requests);
    let mut action_ms = Vec::with_capacity(requests);
    let warmup = 20;
    let bench_start = Instant::now();
    for i in 0..requests + warmup {
        outstanding.retain(|&id| s.response_count(id) == 0);
        while outstanding.len() < heavy_max {
            let line = 12 + rng.below(heavy_lines.saturating_sub(14).max(1) as usize) as u32;
            let id = if heavy_sent.is_multiple_of(2) {
                code_action(&mut s, &heavy_uri, line, 4)
            } else {
                s.send_inline(&heavy_uri, line, 4, true)
            };
            heavy_sent += 1;
            outstanding.push(id);
        }
        let t = Instant::now();
        let id = if i % 2 == 0 {
            s.send_inline(&small_uri, 5, 0, true)
        } else {
            code_action(&mut s, &small_uri, 3, 4)
        };
        let r = s.response(id, TIMEOUT);
        let ms = t.elapsed().as_secs_f64() * 1e3;
        if let Some(e) = r.error {
            eprintln!("cheap request failed: {e}");
        }
        if i >= warmup {
            if i % 2 == 0 {
                cached_ms.push(ms);
            } else {
                action_ms.push(ms);
            }
        }
    }
    let elapsed = bench_start.elapsed();
    let heavy_answered = heavy_sent
        - outstanding
            .iter()
            .filter(|&&id| s.response_count(id) == 0)
            .count();
    println!(
        "bench-cheap: {} cheap requests in {:.1} s while {} heavy requests ran ({} answered; a {} MB document, workspace {}; server up {:.1} s)",
        cached_ms.len() + action_ms.len(),
        elapsed.as_secs_f64(),
        heavy_sent,
        heavy_answered,
        heavy_mb,
        workspace.display(),
        started.elapsed().as_secs_f64()
    );
    let mut all: Vec<f64> = cached_ms.iter().chain(&action_ms).copied().collect();
    summary("all cheap", &mut all);
    summary("cached completion", &mut cached_ms);
    summary("small code action", &mut action_ms);
    let code = s.shutdown().code();
    if code != Some(0) {
        eprintln!("server exit code {code:?}");
        std::process::exit(1);
    }
}
