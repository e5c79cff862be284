//! Benchmark driver (prints figures; not a timed test): the repository-context build time of
//! `bench-crossfile`'s cases in whatever profile it is built with — issue 14 asks for the p95 in
//! the release build, which the benchmark itself (a debug server) cannot show.
//!
//! ```sh
//! target/debug/bench-crossfile --cases 180 --dry-run --out /tmp/cases.jsonl
//! cargo run --release -p ghostline-lsp --example context-timing -- /tmp/cases.jsonl [--model PATH]
//! ```
//!
//! For each project, for each selection (`files`, then `uses`), a fresh index of the project's
//! root is walked (as a new server's is) and every case's context is built once, in the
//! benchmark's order, with the same settings (budget 1,024 tokens, the rest default) and the
//! model's own tokenizer counting tokens (the model is loaded; nothing is evaluated). The first
//! build of a file parses what it reaches, later ones hit the parse cache, as in the server. One
//! approximation: the use-driven selection's window start (which decides the current file's
//! cut-off definitions) is taken as the first line starting within 3,000 bytes before the
//! cursor, where the server starts the prefix at an anchor line.
//!
//! The engine remembers token counts (by line-start segments for BPE tokenizers) across builds,
//! as the server's does; `ESTIMATE=1` counts bytes / 4 instead. Besides wall-clock times it
//! prints the building thread's CPU times (Linux), which a busy machine disturbs less.

use std::path::PathBuf;
use std::time::Instant;

use ghostline_context::{ContextConfig, Focus, Index};
use ghostline_inference::{default_model_path, Engine, EngineConfig};
use serde_json::Value;

struct Case {
    project: String,
    root: PathBuf,
    file: PathBuf,
    cursor: usize,
    doc: String,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let mut cases_file = None;
    let mut model = default_model_path();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--model" => model = PathBuf::from(args.next().expect("--model PATH")),
            _ => cases_file = Some(PathBuf::from(a)),
        }
    }
    let Some(cases_file) = cases_file else {
        eprintln!("usage: context-timing CASES.jsonl [--model PATH]");
        std::process::exit(2);
    };
    let text = std::fs::read_to_string(&cases_file).expect("read the cases");
    let cases: Vec<Case> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("a JSON line");
            Case {
                project: v["project"].as_str().unwrap_or("").to_owned(),
                root: PathBuf::from(v["root"].as_str().expect("root")),
                file: PathBuf::from(v["file"].as_str().expect("file")),
                cursor: v["cursor"].as_u64().expect("cursor") as usize,
                doc: v["doc"].as_str().expect("doc").to_owned(),
            }
        })
        .collect();
    let mut config = EngineConfig::new(&model);
    config.threads = 2;
    config.context_size = 512;
    let engine = Engine::start(config).expect("load the model");
    let estimate = std::env::var_os("ESTIMATE").is_some();
    let count = |s: &str| {
        if estimate {
            s.len() / 4 + 1
        } else {
            engine.count_tokens(s)
        }
    };
    println!(
        "{} cases, tokenizer of {} (counts by segment: {}), {} build",
        cases.len(),
        model.display(),
        engine.counts_by_segment(),
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );

    let mut projects: Vec<&str> = Vec::new();
    for c in &cases {
        if !projects.contains(&c.project.as_str()) {
            projects.push(&c.project);
        }
    }
    for selection in ["files", "uses"] {
        let mut all = Vec::new();
        let mut blocks = 0usize;
        let mut cpu = Vec::new();
        for project in &projects {
            let mine: Vec<&Case> = cases.iter().filter(|c| c.project == *project).collect();
            let index = Index::new(vec![mine[0].root.clone()], ContextConfig::default());
            index.index_all(&mut |_, _| {});
            for c in mine {
                let started = Instant::now();
                let cpu_start = thread_cpu_ms();
                let built = if selection == "files" {
                    index.context_for(&c.file, &c.doc, &count)
                } else {
                    let from = c.cursor.saturating_sub(3000);
                    let window_start = c.doc[..c.cursor]
                        .char_indices()
                        .filter(|&(i, ch)| i >= from && ch == '\n')
                        .map(|(i, _)| i + 1)
                        .next()
                        .unwrap_or(0);
                    let focus = Focus {
                        cursor: c.cursor,
                        window_start,
                    };
                    index.context_at(&c.file, &c.doc, focus, &count)
                };
                all.push(started.elapsed().as_secs_f64() * 1e3);
                cpu.push(thread_cpu_ms() - cpu_start);
                blocks += built.len();
            }
        }
        all.sort_by(f64::total_cmp);
        cpu.sort_by(f64::total_cmp);
        println!(
            "context by {selection:<5} {} builds, {:.1} blocks each: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms (CPU p50 {:.2} ms, p95 {:.2} ms)",
            all.len(),
            blocks as f64 / all.len().max(1) as f64,
            percentile(&all, 0.5),
            percentile(&all, 0.95),
            percentile(&all, 0.99),
            all.last().copied().unwrap_or(f64::NAN),
            percentile(&cpu, 0.5),
            percentile(&cpu, 0.95),
        );
    }
}

/// The calling thread's CPU time in milliseconds (`CLOCK_THREAD_CPUTIME_ID`; Linux, NaN
/// elsewhere).
fn thread_cpu_ms() -> f64 {
    #[cfg(target_os = "linux")]
    {
        #[repr(C)]
        struct Timespec {
            sec: i64,
            nsec: i64,
        }
        extern "C" {
            fn clock_gettime(clock: i32, out: *mut Timespec) -> i32;
        }
        const CLOCK_THREAD_CPUTIME_ID: i32 = 3;
        let mut t = Timespec { sec: 0, nsec: 0 };
        // SAFETY: `t` is a valid `struct timespec` (64-bit Linux) for the call to fill.
        if unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut t) } == 0 {
            return t.sec as f64 * 1e3 + t.nsec as f64 / 1e6;
        }
    }
    f64::NAN
}
