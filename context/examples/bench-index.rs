//! Benchmark driver (prints figures; not a timed test): indexes a real project and builds the
//! repository context of every one of its files.
//!
//! `cargo run --release -p ghostline-context --example bench-index -- PATH [--budget N]
//! [--depth N] [--max-files N] [--index-only]`
//!
//! Prints the indexing time and rate, a second (unchanged) walk, and `context_for` latency
//! p50/p95/p99/max over every indexed file, twice: cold (files are parsed when a context first
//! reaches them) and warm (every parse cached), with a byte-based token counter (`len / 4 + 1`)
//! standing in for the model's tokenizer. It does not measure completion quality (that needs
//! the server and a model).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ghostline_context::{ContextConfig, Index};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut root = None;
    let mut index_only = false;
    let mut config = ContextConfig::default();
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> usize {
            args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
                eprintln!("{name} needs a number");
                std::process::exit(2)
            })
        };
        match arg.as_str() {
            "--budget" => config.budget_tokens = number("--budget"),
            "--depth" => config.max_depth = number("--depth"),
            "--max-files" => config.max_files = number("--max-files"),
            "--index-only" => index_only = true,
            _ => root = Some(PathBuf::from(arg)),
        }
    }
    let Some(root) = root else {
        eprintln!(
            "usage: bench-index PATH [--budget N] [--depth N] [--max-files N] [--index-only]"
        );
        std::process::exit(2);
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("project      {}", root.display());
    println!("config       {config:?}");
    println!("threads      {threads}");

    let index = Index::new(vec![root], config);
    let start = Instant::now();
    let cpu_start = cpu_seconds();
    let stats = index.index_all(&mut |_, _| {});
    let first = start.elapsed();
    let cpu = cpu_seconds() - cpu_start;
    println!(
        "index        {} files in {:.2} s = {:.0} files/s; {:.2} CPU s = {:.0} files per CPU-second",
        stats.files,
        first.as_secs_f64(),
        stats.files as f64 / first.as_secs_f64(),
        cpu,
        stats.files as f64 / cpu.max(1e-9),
    );
    println!("             {stats:?}");
    let start = Instant::now();
    let again = index.index_all(&mut |_, _| {});
    let second = start.elapsed();
    println!(
        "re-index     {} files, {} unchanged, in {:.2} s ({:.1}x faster)",
        again.files,
        again.unchanged,
        second.as_secs_f64(),
        first.as_secs_f64() / second.as_secs_f64()
    );
    println!(
        "memory       {} resident, {} peak",
        memory("VmRSS"),
        memory("VmHWM")
    );
    if index_only {
        return;
    }

    let count = |s: &str| s.len() / 4 + 1;
    let files = index.files();
    // The first pass parses files as contexts reach them (the walk does not parse); the
    // second finds every parse cached.
    for pass in ["cold", "warm"] {
        let mut times: Vec<Duration> = Vec::with_capacity(files.len());
        let (mut with_context, mut blocks, mut bytes) = (0usize, 0usize, 0usize);
        let start = Instant::now();
        let cpu_start = cpu_seconds();
        for file in &files {
            let Ok(text) = std::fs::read_to_string(file) else {
                continue;
            };
            let t = Instant::now();
            let context = index.context_for(file, &text, &count);
            times.push(t.elapsed());
            with_context += usize::from(!context.is_empty());
            blocks += context.len();
            bytes += context.iter().map(|b| b.text.len()).sum::<usize>();
        }
        let total = start.elapsed();
        let cpu = cpu_seconds() - cpu_start;
        times.sort();
        let pct = |p: f64| -> f64 {
            let i = ((times.len() as f64 * p).ceil() as usize).clamp(1, times.len().max(1)) - 1;
            times.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
        };
        println!(
            "context_for  {pass}: {} files in {:.2} s ({:.2} CPU s): p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            times.len(),
            total.as_secs_f64(),
            cpu,
            pct(0.50),
            pct(0.95),
            pct(0.99),
            pct(1.0)
        );
        println!(
            "             {} of them got context, {:.1} blocks and {:.0} bytes on average when they did",
            with_context,
            blocks as f64 / with_context.max(1) as f64,
            bytes as f64 / with_context.max(1) as f64
        );
    }
}

/// CPU time of this process so far (user + system, Linux; 0 elsewhere). On a shared machine
/// this is steadier than wall time.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command name (which may contain spaces) start at state, field 3.
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15, i.e. 11 and 12 after the state; clock ticks are
    // 100 per second on Linux.
    (ticks(11) + ticks(12)) / 100.0
}

/// A memory figure of this process from `/proc/self/status` (Linux), for orientation.
fn memory(field: &str) -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_else(|| "unknown".to_string())
}
