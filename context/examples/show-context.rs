//! Prints the repository context of one file, as a completion would get it (a byte-based
//! token counter, `len / 4 + 1`, stands in for the model's tokenizer): which files, whole or
//! as outlines, and their sizes; `--text` prints the blocks too. For looking into what a
//! completion saw.
//!
//! `cargo run --release -p ghostline-context --example show-context -- ROOT FILE [--budget N]
//! [--text]`

use std::path::PathBuf;

use ghostline_context::{ContextConfig, Index};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut paths = Vec::new();
    let mut text = false;
    let mut config = ContextConfig::default();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--budget" => {
                config.budget_tokens =
                    args.next().and_then(|v| v.parse().ok()).unwrap_or_else(|| {
                        eprintln!("--budget needs a number");
                        std::process::exit(2)
                    })
            }
            "--text" => text = true,
            _ => paths.push(PathBuf::from(arg)),
        }
    }
    let [root, file] = paths.as_slice() else {
        eprintln!("usage: show-context ROOT FILE [--budget N] [--text]");
        std::process::exit(2);
    };
    let index = Index::new(vec![root.clone()], config);
    index.index_all(&mut |_, _| {});
    let source = std::fs::read_to_string(file).unwrap_or_else(|e| {
        eprintln!("{}: {e}", file.display());
        std::process::exit(2)
    });
    let blocks = index.context_for(file, &source, &|s| s.len() / 4 + 1);
    for block in &blocks {
        println!(
            "{:<50} {:>6} bytes {:>5} lines",
            block.path,
            block.text.len(),
            block.text.lines().count()
        );
        if text {
            println!("{}", block.text);
        }
    }
}
