//! HumanEval infilling tasks (`../shared/bench/humaneval-infilling/`) for the benchmark
//! drivers: loading a set, and running a candidate program the way the benchmark's README
//! says — in a fresh temporary directory, isolated (`python3 -I`), with a time limit.
//!
//! The programs are model-written code: they never run inside the repository.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

/// One task.
#[derive(Debug, Clone)]
pub struct Task {
    /// e.g. `SingleLineInfilling/HumanEval/0/L0`.
    pub id: String,
    /// The function the test calls.
    pub entry_point: String,
    /// Text before the hole.
    pub prompt: String,
    /// Text after the hole.
    pub suffix: String,
    /// Defines `check(candidate)`.
    pub test: String,
    /// The hidden text (only ever written next to results, for inspection).
    pub canonical: String,
}

/// `../shared/bench/humaneval-infilling/<set>.jsonl.gz`, relative to the repository.
pub fn set_path(set: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/bench/humaneval-infilling")
        .join(format!("{set}.jsonl.gz"))
}

/// The tasks of a set (`single-line`, `random-span-light`); empty when the file is missing.
pub fn load(set: &str) -> Vec<Task> {
    let Ok(out) = Command::new("gzip").arg("-dc").arg(set_path(set)).output() else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            Task {
                id: s("task_id"),
                entry_point: s("entry_point"),
                prompt: s("prompt"),
                suffix: s("suffix"),
                test: s("test"),
                canonical: s("canonical_solution"),
            }
        })
        .collect()
}

impl Task {
    /// The program that decides the task: `code`, the test code, and the call of `check`.
    pub fn program(&self, code: &str) -> String {
        format!("{code}\n{}\ncheck({})\n", self.test, self.entry_point)
    }
}

/// Whether `program` exits 0 within 10 s under `python3 -I` in a fresh temporary directory.
pub fn passes(program: &str) -> bool {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("ghostline-humaneval-{}-{n}", std::process::id()));
    if std::fs::create_dir_all(&dir).is_err() {
        return false;
    }
    let file = dir.join("candidate.py");
    let ok = std::fs::write(&file, program).is_ok()
        && Command::new("timeout")
            .args(["10", "python3", "-I"])
            .arg(&file)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
    std::fs::remove_dir_all(&dir).ok();
    ok
}
