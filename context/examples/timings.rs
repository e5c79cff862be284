//! Times the context crate on inputs that used to be slow: repository context for a file over
//! the index size limit (asked again and again, as completions do), and the enclosing-function
//! finders on huge or pathological text. Prints figures; asserts nothing (the tests do).
//!
//! `cargo run --release -p ghostline-context --example timings`

use std::path::Path;
use std::time::Instant;

use ghostline_context::{ContextConfig, Index};

fn time<T>(label: &str, runs: usize, mut f: impl FnMut() -> T) {
    let mut times = Vec::new();
    for _ in 0..runs {
        let started = Instant::now();
        std::hint::black_box(f());
        times.push(started.elapsed().as_secs_f64() * 1e3);
    }
    let first = times[0];
    let rest = if times.len() > 1 {
        times[1..].iter().sum::<f64>() / (times.len() - 1) as f64
    } else {
        first
    };
    println!("{label:<58} first {first:>9.2} ms   later (mean) {rest:>9.2} ms");
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(root.join("util.py"), "def helper():\n    return 1\n").unwrap();
    let mut big = String::from("from util import helper\n\n");
    while big.len() < 4 << 20 {
        let n = big.len();
        big.push_str(&format!(
            "def f{n}(x):\n    y = helper() + x * {n}\n    return y\n\n"
        ));
    }
    let path = root.join("big.py");
    std::fs::write(&path, &big).unwrap();
    let index = Index::new(vec![root.to_path_buf()], ContextConfig::default());
    index.index_all(&mut |_, _| {});
    let count = |s: &str| s.len() / 4 + 1;
    time("context_for, 4 MB file over the 1 MB limit (x5)", 5, || {
        index.context_for(&path, &big, &count)
    });

    let braces = "){".repeat(20 << 10);
    let offset = braces.len();
    time("enclosing function, C-like, 40 KB of `){`", 1, || {
        ghostline_context::enclosing_function_for(
            ghostline_context::lang::Language::C,
            &braces,
            offset,
        )
    });
    let mid = big.len() / 2;
    time(
        "enclosing function, Python tree-sitter, 4 MB file",
        1,
        || ghostline_context::enclosing_function(Path::new("big.py"), &big, mid),
    );
}
