//! HumanEval infilling tasks (`../shared/bench/humaneval-infilling/`) for the benchmark
//! drivers: loading a set (the two shipped ones, and `multi-line`, which is built here from the
//! full programs: seeded whole-line holes of 2–[`MULTI_LINE_MAX`] lines cut from the body of
//! each problem's entry-point function), and running a candidate program the way the benchmark's README
//! says — in a fresh temporary directory, isolated (`python3 -I`), with a time limit.
//!
//! The programs are model-written code: they never run inside the repository.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

use crate::rng::Rng;

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

/// Longest hole of the `multi-line` set, in lines.
pub const MULTI_LINE_MAX: usize = 30;
/// Seed of the `multi-line` set (fixed: the set is the same on every machine and run).
pub const MULTI_LINE_SEED: u64 = 0x6768_6f73_746c_696e;

/// The tasks of a set (`single-line`, `random-span-light`, `multi-line`); empty when the file
/// is missing.
pub fn load(set: &str) -> Vec<Task> {
    if set == "multi-line" {
        return multi_line(&load("random-span-light"), MULTI_LINE_SEED);
    }
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

/// The body of `def entry_point(` in `program` as a range of line indices: the lines after its
/// docstring (when it has one) down to the next line at column 0.
fn body_lines(lines: &[&str], entry_point: &str) -> Option<std::ops::Range<usize>> {
    let def = format!("def {entry_point}(");
    let start = lines.iter().position(|l| l.starts_with(&def))?;
    let mut i = start + 1;
    // The signature may span lines: the body starts after the line that ends with `:`.
    while i < lines.len() && !lines[i - 1].trim_end().ends_with(':') {
        i += 1;
    }
    let first = lines.get(i)?.trim_start();
    if let Some(q) = ["\"\"\"", "'''"].into_iter().find(|q| first.starts_with(q)) {
        // Skip the docstring.
        let closes_here = first[3..].contains(q);
        if !closes_here {
            i += 1;
            while i < lines.len() && !lines[i].contains(q) {
                i += 1;
            }
        }
        i += 1;
    }
    let end = (i..lines.len())
        .find(|&k| !lines[k].trim().is_empty() && !lines[k].starts_with([' ', '\t']))
        .unwrap_or(lines.len());
    (i < end).then_some(i..end)
}

/// The `multi-line` set: for each full program (`prompt + canonical + suffix` of a task), one
/// hole of 2–[`MULTI_LINE_MAX`] consecutive whole lines of the entry point's body that starts
/// and ends on a non-blank line, chosen with `seed`. Bodies with fewer than two non-blank lines
/// give no task. The prompt ends with the line break before the hole; the suffix starts with
/// the first line after it (as in `single-line`).
pub fn multi_line(sources: &[Task], seed: u64) -> Vec<Task> {
    let mut rng = Rng(seed);
    let mut out = Vec::new();
    for t in sources {
        let program = format!("{}{}{}", t.prompt, t.canonical, t.suffix);
        let lines: Vec<&str> = program.split_inclusive('\n').collect();
        let Some(body) = body_lines(&lines, &t.entry_point) else {
            continue;
        };
        let code: Vec<usize> = body.filter(|&k| !lines[k].trim().is_empty()).collect();
        if code.len() < 2 {
            continue;
        }
        // First and last hidden line, both non-blank, 2..=MAX lines apart (inclusive).
        let pairs: Vec<(usize, usize)> = (0..code.len())
            .flat_map(|a| (a + 1..code.len()).map(move |b| (a, b)))
            .map(|(a, b)| (code[a], code[b]))
            .filter(|(a, b)| b - a < MULTI_LINE_MAX)
            .collect();
        if pairs.is_empty() {
            continue;
        }
        let (a, b) = pairs[rng.range(0, pairs.len() - 1)];
        let problem = t.id.split('/').nth(2).unwrap_or("");
        out.push(Task {
            id: format!("MultiLineInfilling/HumanEval/{problem}/L{a}_L{b}"),
            entry_point: t.entry_point.clone(),
            prompt: lines[..a].concat(),
            suffix: lines[b + 1..].concat(),
            test: t.test.clone(),
            canonical: lines[a..=b].concat(),
        });
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_line_holes_are_whole_body_lines() {
        let src = Task {
            id: "X/HumanEval/7/1".into(),
            entry_point: "f".into(),
            prompt: "def g():\n    return 1\n\n\ndef f(x):\n    \"\"\" Doc.\n    >>> f(1)\n    \"\"\"\n    a = x".into(),
            canonical: " + 1\n\n    for i in range(3):\n        a += i\n".into(),
            suffix: "    return a\n\n\nprint(f(1))\n".into(),
            test: String::new(),
        };
        for seed in 0..50 {
            let tasks = multi_line(std::slice::from_ref(&src), seed);
            assert_eq!(tasks.len(), 1);
            let t = &tasks[0];
            assert_eq!(
                format!("{}{}{}", t.prompt, t.canonical, t.suffix),
                format!("{}{}{}", src.prompt, src.canonical, src.suffix)
            );
            assert!(
                t.prompt.ends_with('\n') && t.prompt.contains(">>> f(1)\n    \"\"\"\n"),
                "{:?}",
                t.prompt
            );
            assert!(t.canonical.lines().count() >= 2);
            assert!(!t.canonical.lines().next().unwrap().trim().is_empty());
            assert!(!t.canonical.lines().last().unwrap().trim().is_empty());
            assert!(!t.canonical.contains("print") && !t.canonical.contains("Doc"));
        }
        // Same seed, same set.
        assert_eq!(
            multi_line(std::slice::from_ref(&src), 3)[0].id,
            multi_line(std::slice::from_ref(&src), 3)[0].id
        );
    }
}
