//! `bench-engine`: what a keystroke costs the engine, measured on the real models.
//!
//! For prompts of about 256, 1k and 2k tokens (a real Python source file, cursor mid-line,
//! about 100 tokens of suffix) it prints, per model:
//! - cold ms to first token;
//! - ms to first token after a one-character edit at the end of the prefix, with the suffix
//!   shifted in the cache (default) and with exact prefix reuse only, and tokens evaluated;
//! - prompt-evaluation speed of the pipeline (cold) against a bare llama.cpp batch decode of
//!   the same tokens in the same process;
//! - peak resident memory of the engine at a 4096-token context.
//!
//! Each model runs in a child process so that its peak memory is its own. Figures are ratios
//! measured in one run: absolute times on a shared machine are noisy.
//!
//! `bench-engine --shift-quality` measures what shifting costs in quality: HumanEval
//! single-line infilling (../shared/bench), raw engine output cut at the first line, each task
//! completed cold and after a one-keystroke warm-up (suffix reused by shifting).

use std::io::Write as _;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ghostline_inference::{CancelToken, Engine, EngineConfig, FimRequest};
use ghostline_tests::humaneval;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;

const USAGE: &str = "\
bench-engine: engine latency and memory on the real models

USAGE:
    bench-engine [--models 1.5b,0.5b] [--sizes 256,1024,2048] [--threads N] [--source FILE.py]
    bench-engine --shift-quality [--model 1.5b|0.5b|PATH] [--stride N] [--limit N] [--threads N]
                 [--in-line] [--refresh N]

--shift-quality: the warm state is the keystroke before Enter (a line break edit); with
--in-line, the user has typed half of the hole's first line and the warm state is one character
less (an edit inside a line). --refresh N sets the tokens re-evaluated after the edit (default:
the engine's, 32 either way).

Models are looked up in the model cache (`make model`, `make model MODEL=0.5b`).";

struct Args {
    models: Vec<String>,
    sizes: Vec<usize>,
    threads: usize,
    source: Option<PathBuf>,
    child: Option<PathBuf>,
    shift_quality: bool,
    stride: usize,
    limit: usize,
    in_line: bool,
    refresh: Option<usize>,
}

fn parse_args() -> Args {
    let mut a = Args {
        models: vec!["1.5b".into(), "0.5b".into()],
        sizes: vec![256, 1024, 2048],
        threads: 2,
        source: None,
        child: None,
        shift_quality: false,
        stride: 10,
        limit: usize::MAX,
        in_line: false,
        refresh: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| die(&format!("{arg} needs a value")))
        };
        match arg.as_str() {
            "--models" | "--model" => a.models = value().split(',').map(str::to_owned).collect(),
            "--sizes" => {
                a.sizes = value()
                    .split(',')
                    .map(|s| s.parse().unwrap_or_else(|_| die("bad --sizes")))
                    .collect()
            }
            "--threads" => a.threads = value().parse().unwrap_or_else(|_| die("bad --threads")),
            "--source" => a.source = Some(value().into()),
            "--child" => a.child = Some(value().into()),
            "--shift-quality" => a.shift_quality = true,
            "--in-line" => a.in_line = true,
            "--refresh" => {
                a.refresh = Some(value().parse().unwrap_or_else(|_| die("bad --refresh")))
            }
            "--stride" => a.stride = value().parse().unwrap_or_else(|_| die("bad --stride")),
            "--limit" => a.limit = value().parse().unwrap_or_else(|_| die("bad --limit")),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => die(&format!("unknown argument {other}\n\n{USAGE}")),
        }
    }
    a
}

fn die(msg: &str) -> ! {
    eprintln!("bench-engine: {msg}");
    std::process::exit(2);
}

fn model_path(name: &str) -> PathBuf {
    let dir = ghostline_inference::model_cache_dir();
    match name {
        "1.5b" | "1.5B" => dir.join(ghostline_inference::DEFAULT_MODEL_FILE),
        "0.5b" | "0.5B" => dir.join(ghostline_inference::SMALL_MODEL_FILE),
        path => PathBuf::from(path),
    }
}

fn main() {
    let args = parse_args();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("GHOSTLINE_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    if args.shift_quality {
        shift_quality(&args);
    } else if let Some(model) = &args.child {
        child(&args, model);
    } else {
        parent(&args);
    }
}

/// Python source to cut prompts from: the standard library's argparse by default.
fn source_text(args: &Args) -> String {
    let path = args.source.clone().unwrap_or_else(|| {
        let out = Command::new("python3")
            .args(["-c", "import argparse; print(argparse.__file__)"])
            .output()
            .unwrap_or_else(|e| die(&format!("python3 is needed to find argparse.py: {e}")));
        PathBuf::from(String::from_utf8_lossy(&out.stdout).trim())
    });
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| die(&format!("cannot read {}: {e}", path.display())))
}

fn parent(args: &Args) {
    let exe = std::env::current_exe().expect("own path");
    println!(
        "bench-engine: {} threads, prompts of {:?} tokens (~100 of them suffix), one-character edit at the end of the prefix",
        args.threads, args.sizes
    );
    for name in &args.models {
        let path = model_path(name);
        if !path.exists() {
            println!(
                "\n{name}: {} is missing (make model MODEL={name}); skipped",
                path.display()
            );
            continue;
        }
        println!("\nmodel {name}: {}", path.display());
        let mut cmd = Command::new(&exe);
        cmd.arg("--child")
            .arg(&path)
            .arg("--sizes")
            .arg(
                args.sizes
                    .iter()
                    .map(|s| s.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .arg("--threads")
            .arg(args.threads.to_string());
        if let Some(src) = &args.source {
            cmd.arg("--source").arg(src);
        }
        let status = cmd.status().expect("run child");
        if !status.success() {
            println!("  (child failed: {status})");
        }
    }
}

struct Case {
    prefix: String,
    suffix: String,
    typed: String,
}

/// Cuts a prefix of about `target - 100` tokens (ending mid-line) and ~100 tokens of suffix.
fn make_case(engine: &Engine, text: &str, target: usize, salt: usize) -> Case {
    let header = format!("# benchmark prompt {salt}: {target} tokens\n");
    let want_prefix = target.saturating_sub(100 + 3 + engine.count_tokens(&header));
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let (mut lo, mut hi) = (0usize, chars.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if engine.count_tokens(&text[..chars[mid].0]) < want_prefix {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    // Put the cursor after the next few characters of the line: mid-line, mid-word.
    let mut cut = chars.get(lo).map(|c| c.0).unwrap_or(text.len());
    while cut < text.len() && text[cut..].starts_with(char::is_whitespace) {
        cut += text[cut..].chars().next().map(char::len_utf8).unwrap_or(1);
    }
    let prefix = format!("{header}{}", &text[..cut]);
    let rest = &text[cut..];
    let typed: String = rest
        .chars()
        .next()
        .map(String::from)
        .unwrap_or_else(|| "x".into());
    let after = &rest[typed.len()..];
    let mut suffix_end = 0;
    for line in after.split_inclusive('\n') {
        suffix_end += line.len();
        if engine.count_tokens(&after[..suffix_end]) >= 100 {
            break;
        }
    }
    Case {
        prefix,
        suffix: after[..suffix_end].to_owned(),
        typed,
    }
}

fn request(prefix: &str, suffix: &str) -> FimRequest {
    FimRequest {
        prefix: prefix.to_owned(),
        suffix: suffix.to_owned(),
        max_tokens: Some(1),
        ..FimRequest::default()
    }
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

struct Row {
    prompt: usize,
    cold_ms: f64,
    cold_eval_tps: f64,
    shift_ms: f64,
    shift_eval: usize,
    exact_ms: f64,
    exact_eval: usize,
}

fn child(args: &Args, model: &Path) {
    let text = source_text(args);
    let mut config = EngineConfig::new(model);
    config.threads = args.threads;
    config.context_size = 4096;

    // Peak memory first, with nothing else loaded: the engine alone at a 4096-token context
    // after evaluating the largest prompt.
    let engine = Engine::start(config.clone()).unwrap_or_else(|e| die(&e.to_string()));
    let cases: Vec<Case> = args
        .sizes
        .iter()
        .enumerate()
        .map(|(i, &s)| make_case(&engine, &text, s, i))
        .collect();
    let rss = match cases.last() {
        Some(case) => {
            engine
                .complete(request(&case.prefix, &case.suffix), CancelToken::new())
                .unwrap();
            peak_rss_mb()
        }
        None => f64::NAN,
    };
    drop(engine);

    // Then the timings, interleaved per prompt size so that a change in machine load hits all
    // three alike: the engine with shifting, the engine with exact prefix reuse only, and a
    // bare llama.cpp decode (batches of 512) of the same tokens.
    let shifting = Engine::start(config.clone()).unwrap_or_else(|e| die(&e.to_string()));
    let mut exact_config = config.clone();
    exact_config.reuse_shift = false;
    let exact = Engine::start(exact_config).unwrap_or_else(|e| die(&e.to_string()));
    let format = exact.info().fim.clone().expect("FIM model");
    let backend = ghostline_inference::llama_backend();
    let bare_model = LlamaModel::load_from_file(backend, model, &LlamaModelParams::default())
        .unwrap_or_else(|e| die(&e.to_string()));

    let mut rows = Vec::new();
    for case in &cases {
        let edited = format!("{}{}", case.prefix, case.typed);
        let cold = shifting
            .complete(request(&case.prefix, &case.suffix), CancelToken::new())
            .unwrap();
        let shift = shifting
            .complete(request(&edited, &case.suffix), CancelToken::new())
            .unwrap();
        let bare = bare_decode(&bare_model, &format, case, args.threads);
        exact
            .complete(request(&case.prefix, &case.suffix), CancelToken::new())
            .unwrap();
        let e = exact
            .complete(request(&edited, &case.suffix), CancelToken::new())
            .unwrap();
        rows.push((
            Row {
                prompt: cold.stats.prompt_tokens,
                cold_ms: cold.stats.first_token_ms,
                cold_eval_tps: cold.stats.evaluated_tokens as f64 / (cold.stats.prompt_ms / 1000.0),
                shift_ms: shift.stats.first_token_ms,
                shift_eval: shift.stats.evaluated_tokens,
                exact_ms: e.stats.first_token_ms,
                exact_eval: e.stats.evaluated_tokens,
            },
            bare,
        ));
    }

    println!(
        "  {:>6} | {:>9} | {:>21} | {:>21} | {:>9} | {:>9} | {:>11}",
        "prompt",
        "cold ms",
        "edit ms, shift (eval)",
        "edit ms, exact (eval)",
        "cold/edit",
        "pipe t/s",
        "vs bare t/s"
    );
    for (row, bare) in &rows {
        println!(
            "  {:>6} | {:>9.0} | {:>13.0} ({:>5}) | {:>13.0} ({:>5}) | {:>8.1}x | {:>9.1} | {:>5.1} {:>4.2}x",
            row.prompt,
            row.cold_ms,
            row.shift_ms,
            row.shift_eval,
            row.exact_ms,
            row.exact_eval,
            row.cold_ms / row.shift_ms,
            row.cold_eval_tps,
            bare,
            row.cold_eval_tps / bare
        );
    }
    println!("  peak resident memory, engine alone at a 4096-token context: {rss:.0} MB");
    std::io::stdout().flush().ok();
}

/// Tokens per second of a bare llama.cpp decode of the case's prompt, in batches of 512.
fn bare_decode(
    model: &LlamaModel,
    format: &ghostline_inference::FimFormat,
    case: &Case,
    threads: usize,
) -> f64 {
    let backend = ghostline_inference::llama_backend();
    let prompt = format.render(
        &ghostline_inference::fim::FimInput {
            path: None,
            prefix: &case.prefix,
            suffix: &case.suffix,
            context: &[],
            repo_name: None,
        },
        None,
    );
    let tokens = model.vocab().tokenize(prompt.as_bytes(), true, true);
    let params = LlamaContextParams::default()
        .with_n_ctx(NonZeroU32::new(4096))
        .with_n_batch(512)
        .with_n_ubatch(512)
        .with_n_threads(threads as i32)
        .with_n_threads_batch(threads as i32);
    let mut ctx = model.new_context(backend, params).expect("context");
    let mut batch = LlamaBatch::new(512, 1);
    let t0 = Instant::now();
    for (c, chunk) in tokens.chunks(512).enumerate() {
        batch.clear();
        for (i, &t) in chunk.iter().enumerate() {
            let pos = c * 512 + i;
            batch
                .add(t, pos as i32, &[0], pos + 1 == tokens.len())
                .expect("batch");
        }
        ctx.decode(&mut batch).expect("decode");
    }
    tokens.len() as f64 / t0.elapsed().as_secs_f64()
}

// ---------------------------------------------------------------------------------------------
// Quality cost of shifting, on HumanEval single-line infilling.

fn first_line(text: &str) -> String {
    match text.find('\n') {
        Some(i) => text[..=i].to_owned(),
        None => format!("{text}\n"),
    }
}

fn shift_quality(args: &Args) {
    let tasks = humaneval::load("single-line");
    if tasks.is_empty() {
        die(&format!(
            "no tasks in {}",
            humaneval::set_path("single-line").display()
        ));
    }
    let name = args
        .models
        .first()
        .cloned()
        .unwrap_or_else(|| "1.5b".into());
    let model = model_path(&name);
    let mut config = EngineConfig::new(&model);
    config.threads = args.threads;
    config.reuse = false;
    let cold = Engine::start(config.clone()).unwrap_or_else(|e| die(&e.to_string()));
    config.reuse = true;
    config.reuse_shift = true;
    if let Some(n) = args.refresh {
        config.reuse_refresh_tokens = n;
        config.reuse_refresh_tokens_in_line = n;
    }
    let warm_refresh = (
        config.reuse_refresh_tokens,
        config.reuse_refresh_tokens_in_line,
    );
    let warm = Engine::start(config).unwrap_or_else(|e| die(&e.to_string()));

    let selected: Vec<&humaneval::Task> = tasks
        .iter()
        .step_by(args.stride.max(1))
        .take(args.limit)
        .collect();
    println!(
        "shift quality: {} of {} single-line tasks (every {}th), model {name}, raw engine output cut at the first line, edit {}, {} refresh tokens",
        selected.len(),
        tasks.len(),
        args.stride,
        if args.in_line { "inside the line (half the line typed, one more character)" } else { "a line break (Enter)" },
        if args.in_line { warm_refresh.1 } else { warm_refresh.0 },
    );
    let (mut pass_cold, mut pass_shift, mut same, mut shifted) = (0, 0, 0, 0usize);
    let started = Instant::now();
    for (i, t) in selected.iter().enumerate() {
        // The editor's state (bench-infill's): the hole is an empty line, so the text after
        // the cursor starts with that line's break.
        let suffix = format!("\n{}", t.suffix);
        let req = |prefix: &str| FimRequest {
            prefix: prefix.to_owned(),
            suffix: suffix.clone(),
            max_tokens: Some(64),
            stop: vec!["\n".into()],
            stop_at_suffix: true,
            line_end: None,
            deadline: Some(Instant::now() + Duration::from_secs(60)),
            ..FimRequest::default()
        };
        // The cursor: at the hole, or (--in-line) after half of its first line's text.
        let typed = if args.in_line {
            let line = t.canonical.lines().next().unwrap_or("");
            let indent = line.len() - line.trim_start().len();
            let content: Vec<char> = line[indent..].chars().collect();
            let half = content.len().div_ceil(2).max(1).min(content.len());
            format!(
                "{}{}",
                &line[..indent],
                content[..half].iter().collect::<String>()
            )
        } else {
            String::new()
        };
        let prompt = format!("{}{typed}", t.prompt);
        let c = cold.complete(req(&prompt), CancelToken::new()).unwrap();
        // The keystroke before: Enter not yet pressed (the prefix without its last line
        // break), or the last typed character not yet typed; the text after the cursor is the
        // same.
        let before: String = {
            let mut p = prompt.clone();
            p.pop();
            p
        };
        warm.complete(req(&before), CancelToken::new()).unwrap();
        let w = warm.complete(req(&prompt), CancelToken::new()).unwrap();
        shifted += w.stats.shifted_tokens;
        let program = |mid: &str| t.program(&format!("{prompt}{}{}", first_line(mid), t.suffix));
        let pc = humaneval::passes(&program(&c.text));
        let pw = humaneval::passes(&program(&w.text));
        pass_cold += pc as usize;
        pass_shift += pw as usize;
        same += (first_line(&c.text) == first_line(&w.text)) as usize;
        if pc != pw {
            eprintln!(
                "  {}: exact {pc}, shifted {pw}: {:?} vs {:?}",
                t.id, c.text, w.text
            );
        }
        if (i + 1) % 10 == 0 {
            eprintln!(
                "  {}/{} done, {:.0} s",
                i + 1,
                selected.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    let n = selected.len() as f64;
    println!(
        "pass@1 exact re-evaluation: {:.1}%  |  suffix shifted after a keystroke: {:.1}%  |  identical first lines: {:.1}%  |  mean shifted tokens {:.0}",
        100.0 * pass_cold as f64 / n,
        100.0 * pass_shift as f64 / n,
        100.0 * same as f64 / n,
        shifted as f64 / n
    );
}
