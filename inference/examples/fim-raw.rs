//! `fim-raw`: the bare model, for `bench-infill --raw` (which drives it as a child process, so
//! the benchmark crate never links the engine).
//!
//! `fim-raw --model PATH [--threads N]` loads the model, then reads one JSON object per line on
//! stdin, `{"prefix": …, "suffix": …}`, and answers each with one line on stdout:
//! `{"text": …, "generatedTokens": N, "stop": "EndOfText"|"MaxTokens"|…}`, or `{"error": …}`.
//! The request is what the README's "raw" columns measure: a PSM prompt of the text before and
//! after the cursor (no repository context), generation to the model's own end-of-text with a
//! 128-token cap, the text as generated (no stop strings, no shaping).

use std::io::{BufRead, Write};
use std::path::PathBuf;

use ghostline_inference::{CancelToken, Engine, EngineConfig, FimOrder, FimRequest};
use serde_json::{json, Value};

fn die(msg: &str) -> ! {
    eprintln!("fim-raw: {msg}");
    std::process::exit(2);
}

fn main() {
    let (mut model, mut threads) = (None::<PathBuf>, None::<usize>);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| die(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--model" => model = Some(value().into()),
            "--threads" => threads = Some(value().parse().unwrap_or_else(|_| die("bad --threads"))),
            other => die(&format!(
                "unknown argument {other} (usage: fim-raw --model PATH [--threads N])"
            )),
        }
    }
    let model = model.unwrap_or_else(ghostline_inference::default_model_path);
    let mut config = EngineConfig::new(&model);
    if let Some(t) = threads {
        config.threads = t.max(1);
    }
    let engine =
        Engine::start(config).unwrap_or_else(|e| die(&format!("{}: {e}", model.display())));
    let stdout = std::io::stdout();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let answer = match serde_json::from_str::<Value>(&line) {
            Ok(v) => {
                let req = FimRequest {
                    prefix: v["prefix"].as_str().unwrap_or_default().to_owned(),
                    suffix: v["suffix"].as_str().unwrap_or_default().to_owned(),
                    max_tokens: Some(128),
                    order: Some(FimOrder::Psm),
                    ..Default::default()
                };
                match engine.complete(req, CancelToken::default()) {
                    Ok(c) => json!({
                        "text": c.text,
                        "generatedTokens": c.stats.generated_tokens,
                        "stop": format!("{:?}", c.stop),
                    }),
                    Err(e) => json!({"error": e.to_string()}),
                }
            }
            Err(e) => json!({"error": format!("not JSON: {e}")}),
        };
        let mut out = stdout.lock();
        if writeln!(out, "{answer}").and_then(|_| out.flush()).is_err() {
            break;
        }
    }
}
