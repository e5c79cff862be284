//! `bench-crossfile`: cross-file line completion through the real server, with repository
//! context and without it.
//!
//! Cases come from real projects on the machine: packages of the Python standard library
//! (`/usr/lib/python3.*/email`, …) and multi-file crates under `~/.cargo/registry/src`. A case
//! is a line of a file F that uses a name F imports from another file G of the same project
//! (`from .utils import quote`, `use crate::iter::Chunks`). The cursor goes to a seeded
//! pseudo-random point before that name; the reference is the rest of the line. The editor's
//! document is F with the rest of that line deleted (the lines after it stay, as the suffix).
//!
//! Imports are found and resolved here with a small lexical reader of import lines (this crate
//! does not depend on `ghostline-context`); it only picks cases. What the model sees comes from
//! the server, which builds the repository context itself with `ghostline-context`.
//!
//! Each project gets one server per setting (repository context off, then on), with the
//! project as its workspace folder; cases of one file run in line order so that they share the
//! prompt's start in the KV cache. Cases are placed only where the whole prompt (context
//! budget, prefix, a quarter of the window for the suffix) fits in `contextSize`, because the
//! engine drops context blocks before it trims the prefix.
//!
//! All cases run without context first; those completed exactly are dropped; the kept cases
//! run with context. Prints exact match (first line applied at the cursor, trailing
//! whitespace trimmed) and edit similarity (1 − Levenshtein / longer length) on the kept cases
//! with and without context, latency p50/p95, and from the server's log (`ghostline_context`
//! at debug level) the context-building time p50/p95 and the indexing time of each project.
//! `--out` writes one JSON line per case and setting.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ghostline_tests::rng::Rng;
use ghostline_tests::utf16_offset as offset;
use ghostline_tests::{editor_capabilities, file_uri, Server, Spawn};
use serde_json::{json, Value};

const USAGE: &str = "\
bench-crossfile: cross-file line completion with and without repository context

USAGE:
    bench-crossfile [--model 1.5b|0.5b|PATH] [--cases N] [--seed N] [--budget-tokens N]
                    [--context-size N] [--per-file N] [--threads N]
                    [--projects P1,P2,...] [--out FILE.jsonl] [--all] [--dry-run]
                    [--no-context] [--settings JSON]

--projects takes folders, Python standard-library package names (email, asyncio, ...),
crate names under ~/.cargo/registry/src (ropey, serde_json, ...) or packages fetched by
scripts/fetch-bench-projects.sh (rich, requests, click, toml_edit, similar). --all runs the two context
selections on every case (default: on the cases not completed exactly without context).
--no-context runs only the pass without repository context, on every case (e.g. to compare
windows). --settings adds server settings (a JSON object) to every server.
--dry-run lists the cases and runs no model (with --out it writes them, documents included, as
JSON lines for lsp/examples/context-timing.rs).";

/// Python standard-library packages, crates already in `~/.cargo/registry` (this workspace's
/// dependencies), and packages that `scripts/fetch-bench-projects.sh` fetches from the package
/// registries (`rich`, `requests`, `click`, `toml_edit`, `similar`): ten projects, six
/// authors' styles at least.
const DEFAULT_PROJECTS: &[&str] = &[
    "email",
    "asyncio",
    "rich",
    "requests",
    "click",
    "ropey",
    "serde_json",
    "regex-automata",
    "toml_edit",
    "similar",
];

/// Single-line completions generate at most this many tokens (the server's `LINE_MAX_TOKENS`).
const LINE_MAX_TOKENS: usize = 48;

struct Args {
    model: String,
    cases: usize,
    seed: u64,
    budget_tokens: usize,
    context_size: usize,
    per_file: usize,
    threads: usize,
    projects: Vec<String>,
    out: Option<PathBuf>,
    all: bool,
    dry_run: bool,
    no_context: bool,
    settings: Option<serde_json::Map<String, Value>>,
}

fn die(msg: &str) -> ! {
    eprintln!("bench-crossfile: {msg}");
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut a = ghostline_tests::args::Args::parse(USAGE);
    let args = Args {
        model: a.text("--model").unwrap_or_else(|| "1.5b".into()),
        cases: a.get("--cases", 40),
        seed: a.get("--seed", 1),
        budget_tokens: a.get("--budget-tokens", 1024),
        context_size: a.get("--context-size", 3072),
        per_file: a.get("--per-file", 5usize).max(1),
        threads: a.get("--threads", 2),
        projects: a
            .list("--projects")
            .unwrap_or_else(|| DEFAULT_PROJECTS.iter().map(|s| s.to_string()).collect()),
        out: a.value("--out"),
        all: a.flag("--all"),
        dry_run: a.flag("--dry-run"),
        no_context: a.flag("--no-context"),
        settings: a
            .text("--settings")
            .map(|t| match serde_json::from_str(&t) {
                Ok(Value::Object(m)) => m,
                _ => die("--settings: expected a JSON object"),
            }),
    };
    a.finish();
    args
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Python,
    Rust,
}

impl Lang {
    fn of(path: &Path) -> Option<Lang> {
        match path.extension()?.to_str()? {
            "py" => Some(Lang::Python),
            "rs" => Some(Lang::Rust),
            _ => None,
        }
    }

    fn id(self) -> &'static str {
        match self {
            Lang::Python => "python",
            Lang::Rust => "rust",
        }
    }
}

/// A project: a folder opened as the workspace.
struct Project {
    name: String,
    root: PathBuf,
}

/// `/usr/lib/python3.X/<name>`, `~/.cargo/registry/src/*/<name>-<version>` or
/// `~/.cache/ghostline/bench-projects/<name>-<version>` (fetched by
/// `scripts/fetch-bench-projects.sh`; the newest version), or the path itself.
fn find_project(spec: &str) -> Option<Project> {
    let as_path = PathBuf::from(spec);
    if as_path.is_dir() {
        let root = as_path.canonicalize().ok()?;
        let name = root.file_name()?.to_string_lossy().into_owned();
        return Some(Project { name, root });
    }
    let mut candidates = Vec::new();
    if let Ok(entries) = std::fs::read_dir("/usr/lib") {
        for e in entries.flatten() {
            let n = e.file_name().to_string_lossy().into_owned();
            if n.starts_with("python3.") {
                candidates.push(e.path().join(spec));
            }
        }
    }
    candidates.sort();
    if let Some(dir) = candidates.into_iter().rev().find(|p| p.is_dir()) {
        return Some(Project {
            name: format!("python/{spec}"),
            root: dir,
        });
    }
    let is_version = |n: &str| {
        n.strip_prefix(spec)
            .and_then(|r| r.strip_prefix('-'))
            .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
    };
    let mut found = Vec::new();
    let fetched = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|c| c.join("ghostline/bench-projects"));
    for e in fetched
        .iter()
        .flat_map(std::fs::read_dir)
        .flatten()
        .flatten()
    {
        if is_version(&e.file_name().to_string_lossy()) && e.path().is_dir() {
            found.push(e.path());
        }
    }
    let cargo = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    if found.is_empty() {
        let registries = cargo
            .iter()
            .flat_map(|c| std::fs::read_dir(c.join("registry/src")));
        for registry in registries.flatten().flatten() {
            for e in std::fs::read_dir(registry.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if is_version(&e.file_name().to_string_lossy()) && e.path().join("src").is_dir() {
                    found.push(e.path());
                }
            }
        }
    }
    found.sort();
    let root = found.pop()?;
    let name = root.file_name()?.to_string_lossy().into_owned();
    Some(Project { name, root })
}

/// Source files under `dir`, sorted (hidden folders skipped; no symlinks followed).
fn source_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(kind) = e.file_type() else { continue };
        if name.starts_with('.') || kind.is_symlink() {
            continue;
        }
        if kind.is_dir() {
            source_files(&e.path(), out);
        } else if Lang::of(&e.path()).is_some() {
            out.push(e.path());
        }
    }
}

/// A name F imports and the file of the project it comes from.
#[derive(Debug, Clone)]
struct Imported {
    local: String,
    from: PathBuf,
}

/// Import statements joined into single strings (Python parentheses and backslashes, Rust
/// until `;`), with the range of line indices each spans.
fn statements(text: &str, lang: Lang) -> Vec<(std::ops::Range<usize>, String)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let t = lines[i].trim_start();
        let starts = match lang {
            Lang::Python => t.starts_with("from ") || t.starts_with("import "),
            Lang::Rust => {
                let t = t
                    .strip_prefix("pub(crate) ")
                    .or_else(|| t.strip_prefix("pub "))
                    .unwrap_or(t);
                t.starts_with("use ")
            }
        };
        if !starts {
            i += 1;
            continue;
        }
        let first = i;
        let mut joined = String::new();
        loop {
            let line = lines[i].split('#').next().unwrap_or("");
            let line = if lang == Lang::Rust {
                lines[i].split("//").next().unwrap_or("")
            } else {
                line
            };
            joined.push_str(line.trim().trim_end_matches('\\'));
            joined.push(' ');
            i += 1;
            let done = match lang {
                Lang::Python => {
                    joined.matches('(').count() <= joined.matches(')').count()
                        && !lines[i - 1].trim_end().ends_with('\\')
                }
                Lang::Rust => joined.contains(';'),
            };
            if done || i >= lines.len() || i - first > 40 {
                break;
            }
        }
        out.push((first..i, joined));
    }
    out
}

/// `base/a/b.py` or `base/a/b/__init__.py`.
fn python_module(base: &Path, module: &[&str]) -> Option<PathBuf> {
    let mut p = base.to_path_buf();
    for m in module {
        p.push(m);
    }
    let file = p.with_extension("py");
    if !module.is_empty() && file.is_file() {
        return Some(file);
    }
    let init = p.join("__init__.py");
    init.is_file().then_some(init)
}

fn python_imports(project: &Project, file: &Path, text: &str) -> Vec<Imported> {
    let package = project
        .root
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = file.parent().unwrap_or(&project.root);
    let mut out = Vec::new();
    for (_, stmt) in statements(text, Lang::Python) {
        let Some(rest) = stmt.trim().strip_prefix("from ") else {
            continue;
        };
        let Some((module, names)) = rest.split_once(" import ") else {
            continue;
        };
        let module = module.trim();
        let dots = module.chars().take_while(|&c| c == '.').count();
        let path: Vec<&str> = module[dots..]
            .split('.')
            .filter(|s| !s.is_empty())
            .collect();
        let base = if dots > 0 {
            let mut b = dir.to_path_buf();
            for _ in 1..dots {
                b = b.parent().map(Path::to_path_buf).unwrap_or(b);
            }
            b
        } else if path.first() == Some(&package.as_str()) {
            project.root.clone()
        } else {
            continue;
        };
        let path: &[&str] = if dots == 0 { &path[1..] } else { &path };
        let names = names.replace(['(', ')'], " ");
        for name in names.split(',') {
            let mut words = name.split_whitespace();
            let Some(original) = words.next() else {
                continue;
            };
            if original == "*" {
                continue;
            }
            let local = match (words.next(), words.next()) {
                (Some("as"), Some(alias)) => alias,
                _ => original,
            };
            let mut sub = path.to_vec();
            sub.push(original);
            // `from . import utils` brings a module; otherwise a name of the module.
            let target = python_module(&base, &sub)
                .filter(|p| p.file_name().is_some_and(|n| n != "__init__.py"))
                .or_else(|| python_module(&base, path));
            if let Some(from) = target.filter(|t| t != file) {
                out.push(Imported {
                    local: local.to_string(),
                    from,
                });
            }
        }
    }
    out
}

/// The module path of a crate file: `src/lib.rs` → `[]`, `src/a/b.rs` and `src/a/b/mod.rs` →
/// `[a, b]`.
fn rust_module_of(src: &Path, file: &Path) -> Option<Vec<String>> {
    let rel = file.strip_prefix(src).ok()?;
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let last = parts.pop()?;
    match last.as_str() {
        "lib.rs" | "main.rs" if parts.is_empty() => {}
        "mod.rs" => {}
        other => parts.push(other.strip_suffix(".rs")?.to_string()),
    }
    Some(parts)
}

/// The file of a module path, if it is a file of its own.
fn rust_file(src: &Path, module: &[String]) -> Option<PathBuf> {
    if module.is_empty() {
        return [src.join("lib.rs"), src.join("main.rs")]
            .into_iter()
            .find(|p| p.is_file());
    }
    let mut p = src.to_path_buf();
    for m in module {
        p.push(m);
    }
    let file = p.with_extension("rs");
    if file.is_file() {
        return Some(file);
    }
    let m = p.join("mod.rs");
    m.is_file().then_some(m)
}

/// Leaves of a `use` tree: `a::{b, c::{d as e}}` → `[a::b], [a::c::d as e]`.
fn use_leaves(tree: &str, prefix: &[String], out: &mut Vec<(Vec<String>, Option<String>)>) {
    let tree = tree.trim();
    if let Some(open) = tree.find('{') {
        let head: Vec<String> = tree[..open]
            .split("::")
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let mut base = prefix.to_vec();
        base.extend(head);
        let inner = tree[open + 1..].trim_end().trim_end_matches('}');
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    use_leaves(&inner[start..i], &base, out);
                    start = i + 1;
                }
                _ => {}
            }
        }
        use_leaves(&inner[start..], &base, out);
        return;
    }
    if tree.is_empty() {
        return;
    }
    let (path, alias) = match tree.split_once(" as ") {
        Some((p, a)) => (p, Some(a.trim().to_string())),
        None => (tree, None),
    };
    let mut full = prefix.to_vec();
    full.extend(path.split("::").map(|s| s.trim().to_string()));
    out.push((full, alias));
}

fn rust_imports(project: &Project, file: &Path, text: &str) -> Vec<Imported> {
    let src = project.root.join("src");
    let Some(current) = rust_module_of(&src, file) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (lines, stmt) in statements(text, Lang::Rust) {
        // Only top-level `use`: one inside an inline module (`mod tests { use super::*; }`)
        // or a function would need scopes this reader does not track.
        let Some(start) = stmt.find("use ") else {
            continue;
        };
        if text
            .lines()
            .nth(lines.start)
            .is_some_and(|l| l.starts_with(char::is_whitespace))
        {
            continue;
        }
        let tree = stmt[start + 4..].split(';').next().unwrap_or("");
        let mut leaves = Vec::new();
        use_leaves(tree, &[], &mut leaves);
        for (path, alias) in leaves {
            let mut module: Vec<String> = match path.first().map(String::as_str) {
                Some("crate") => Vec::new(),
                Some("self") => current.clone(),
                Some("super") => current[..current.len().saturating_sub(1)].to_vec(),
                _ => continue,
            };
            let mut rest = &path[1..];
            while rest.first().is_some_and(|s| s == "super") {
                module.pop();
                rest = &rest[1..];
            }
            let Some(last) = rest.last() else { continue };
            if last == "*" || last == "self" {
                continue;
            }
            module.extend(rest.iter().cloned());
            // The longest prefix of the path that is a file: the name comes from there.
            let from = (0..=module.len())
                .rev()
                .find_map(|n| rust_file(&src, &module[..n]));
            if let Some(from) = from.filter(|f| f != file) {
                out.push(Imported {
                    local: alias.unwrap_or_else(|| last.clone()),
                    from,
                });
            }
        }
    }
    out
}

/// One completion case.
#[derive(Debug, Clone)]
struct Case {
    project: usize,
    file: PathBuf,
    rel: String,
    lang: Lang,
    /// 0-based line and byte column of the cursor.
    line: usize,
    col: usize,
    name: String,
    from: String,
    reference: String,
    /// The document the editor has: the file with the rest of the line deleted.
    doc: String,
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Whether byte `at` of `line` is inside a string literal (quotes counted from the start of
/// the line; `'` only in Python, where Rust has lifetimes).
fn in_string(line: &str, at: usize, lang: Lang) -> bool {
    let mut open: Option<char> = None;
    let mut escaped = false;
    for c in line[..at].chars() {
        match open {
            Some(q) if escaped => {
                escaped = false;
                let _ = q;
            }
            Some(_) if c == '\\' => escaped = true,
            Some(q) if c == q => open = None,
            Some(_) => {}
            None if c == '"' || (c == '\'' && lang == Lang::Python) => open = Some(c),
            None => {}
        }
    }
    open.is_some()
}

/// The first occurrence of `name` as a whole word in `line`, not after a `.` and not in a
/// string.
fn find_word(line: &str, name: &str, lang: Lang) -> Option<usize> {
    let mut from = 0;
    while let Some(i) = line[from..].find(name).map(|i| i + from) {
        let before = line[..i].chars().next_back();
        let after = line[i + name.len()..].chars().next();
        if !before.is_some_and(|c| is_ident(c) || c == '.')
            && !after.is_some_and(is_ident)
            && !in_string(line, i, lang)
        {
            return Some(i);
        }
        from = i + name.len();
    }
    None
}

/// Candidate (line, name, file) triples of one file, and the cases built from some of them.
fn cases_of_file(
    project: &Project,
    index: usize,
    file: &Path,
    max_prefix_bytes: usize,
    rng: &mut Rng,
    take: usize,
) -> Vec<Case> {
    let Some(lang) = Lang::of(file) else {
        return Vec::new();
    };
    let Ok(text) = std::fs::read_to_string(file) else {
        return Vec::new();
    };
    if text.len() > 400_000 || text.contains('\r') {
        return Vec::new();
    }
    let imported = match lang {
        Lang::Python => python_imports(project, file, &text),
        Lang::Rust => rust_imports(project, file, &text),
    };
    if imported.is_empty() {
        return Vec::new();
    }
    let import_lines: Vec<usize> = statements(&text, lang)
        .iter()
        .flat_map(|(lines, _)| lines.clone())
        .collect();
    let mut candidates = Vec::new();
    let mut in_string = false;
    let mut offset = 0;
    for (n, line) in text.split('\n').enumerate() {
        let line_start = offset;
        offset += line.len() + 1;
        if lang == Lang::Python {
            let quotes = line.matches("\"\"\"").count() + line.matches("'''").count();
            let was = in_string;
            if quotes % 2 == 1 {
                in_string = !in_string;
            }
            if was || quotes > 0 {
                continue;
            }
        }
        let t = line.trim_start();
        if lang == Lang::Rust && t.starts_with("#[cfg(test)]") {
            break; // test modules import with their own scopes
        }
        let skip = t.is_empty()
            || t.starts_with('#')
            || t.starts_with("//")
            || t.starts_with("/*")
            || t.starts_with('*')
            || t.starts_with("use ")
            || t.starts_with("pub use ")
            || t.starts_with("import ")
            || t.starts_with("from ")
            || line.len() > 110
            || import_lines.contains(&n)
            || line_start > max_prefix_bytes;
        if skip {
            continue;
        }
        let indent = line.len() - t.len();
        // The first imported name on the line.
        let found = imported
            .iter()
            .filter_map(|imp| find_word(line, &imp.local, lang).map(|at| (at, imp)))
            .min_by_key(|(at, _)| *at);
        if let Some((at, imp)) = found {
            let rest = line[at..].trim_end();
            if rest.len() >= 4 && line_start + at <= max_prefix_bytes {
                candidates.push((n, line_start, indent, at, imp.clone()));
            }
        }
    }
    rng.shuffle(&mut candidates);
    candidates.truncate(take);
    candidates.sort_by_key(|c| c.0);
    let rel = file
        .strip_prefix(&project.root)
        .unwrap_or(file)
        .to_string_lossy()
        .into_owned();
    candidates
        .into_iter()
        .map(|(n, line_start, indent, at, imp)| {
            let line = &text[line_start..];
            let line = line.split('\n').next().unwrap_or("");
            // A character boundary between the indentation and the name, both included.
            let points: Vec<usize> = (indent..=at)
                .filter(|&i| line.is_char_boundary(i))
                .collect();
            let col = points[rng.below(points.len())];
            let reference = line[col..].trim_end().to_string();
            let mut doc = String::with_capacity(text.len());
            doc.push_str(&text[..line_start + col]);
            doc.push_str(&text[line_start + line.len()..]);
            Case {
                project: index,
                file: file.to_path_buf(),
                rel: rel.clone(),
                lang,
                line: n,
                col,
                name: imp.local.clone(),
                from: imp
                    .from
                    .strip_prefix(&project.root)
                    .unwrap_or(&imp.from)
                    .to_string_lossy()
                    .into_owned(),
                reference,
                doc,
            }
        })
        .collect()
}

/// Cases of one project: files in seeded order, up to `per_file` from each, `quota` in all.
fn project_cases(
    project: &Project,
    index: usize,
    quota: usize,
    per_file: usize,
    max_prefix_bytes: usize,
    rng: &mut Rng,
) -> Vec<Case> {
    let mut files = Vec::new();
    source_files(&project.root, &mut files);
    files.retain(|f| {
        !f.components()
            .any(|c| matches!(c.as_os_str().to_str(), Some("tests" | "test" | "benches")))
    });
    rng.shuffle(&mut files);
    // Files with `per_file` cases first: each file costs one cold prompt evaluation, its
    // further cases only what changed.
    let mut out = Vec::new();
    let mut short = Vec::new();
    for file in files {
        if out.len() >= quota {
            break;
        }
        let take = per_file.min(quota - out.len());
        let found = cases_of_file(project, index, &file, max_prefix_bytes, rng, take);
        if found.len() == take {
            out.extend(found);
        } else if !found.is_empty() {
            short.push(found);
        }
    }
    short.sort_by_key(|f| std::cmp::Reverse(f.len()));
    for found in short {
        if out.len() >= quota {
            break;
        }
        let take = found.len().min(quota - out.len());
        out.extend(found.into_iter().take(take));
    }
    out
}

/// What one case got under one setting.
#[derive(Debug, Clone, Default)]
struct Outcome {
    completion: String,
    line: String,
    exact: bool,
    similarity: f64,
    ms: f64,
    prompt_tokens: u64,
    evaluated_tokens: u64,
}

fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != cb))
                .min(row[j] + 1)
                .min(row[j + 1] + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

fn similarity(a: &str, b: &str) -> f64 {
    let longest = a.chars().count().max(b.chars().count());
    if longest == 0 {
        return 1.0;
    }
    1.0 - levenshtein(a, b) as f64 / longest as f64
}

/// The cursor's line after applying the first item (its range, else at the cursor), cut at the
/// first newline of the inserted text.
fn completed_line(case: &Case, item: Option<&Value>) -> (String, String) {
    let line_start = case
        .doc
        .split('\n')
        .take(case.line)
        .map(|l| l.len() + 1)
        .sum::<usize>();
    let at = line_start + case.col;
    let Some(item) = item else {
        return (String::new(), case.doc[line_start..at].to_string());
    };
    let insert = item["insertText"]
        .as_str()
        .or_else(|| item["insertText"]["value"].as_str())
        .unwrap_or_default()
        .to_string();
    // The item replaces its range (it may start before the cursor); what lay after the cursor
    // on this line was deleted, so nothing of the line follows the insertion.
    let start = match item.get("range") {
        Some(r) if !r.is_null() => offset(
            &case.doc,
            r["start"]["line"].as_u64().unwrap_or(0),
            r["start"]["character"].as_u64().unwrap_or(0),
        ),
        _ => at,
    };
    let start = start.clamp(line_start, at);
    let edited = format!("{}{}", &case.doc[line_start..start], insert);
    let line = edited.split('\n').next().unwrap_or("").to_string();
    (insert, line)
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// What the server's log said during one run.
#[derive(Default)]
struct LogFigures {
    context_ms: Vec<f64>,
    indexed_files: Option<u64>,
    indexed_ms: Option<f64>,
}

fn number_after(line: &str, key: &str) -> Option<f64> {
    let rest = &line[line.find(key)? + key.len()..];
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

fn log_figures(log: &str) -> LogFigures {
    let mut f = LogFigures::default();
    for line in log.lines() {
        if line.contains("context built") {
            f.context_ms.extend(number_after(line, "context_ms="));
        }
        if line.contains(" indexed") && line.contains("elapsed_ms=") {
            f.indexed_ms = number_after(line, "elapsed_ms=");
            f.indexed_files = number_after(line, "files: ").map(|n| n as u64);
        }
    }
    f
}

/// Runs `cases` (all of one project) in one server; returns their outcomes and the log.
fn run_project(
    args: &Args,
    model: &Path,
    project: &Project,
    cases: &[&Case],
    selection: Option<&str>,
    progress: &mut dyn FnMut(&Case, &Outcome),
) -> (Vec<Outcome>, LogFigures) {
    let context = selection.is_some();
    let mut settings = json!({
        "model": model,
        "threads": args.threads,
        "contextSize": args.context_size,
        "repoContext": {
            "enabled": context,
            "budgetTokens": args.budget_tokens,
            "selection": selection.unwrap_or("uses"),
        },
        // Quality is measured without a time limit; latency is reported separately.
        "invokedTimeBudgetMs": 600000,
    });
    if let (Some(s), Some(extra)) = (settings.as_object_mut(), &args.settings) {
        s.extend(extra.clone());
    }
    let spawn = Spawn {
        env: vec![(
            "GHOSTLINE_LOG".to_string(),
            "info,ghostline_context=debug".to_string(),
        )],
        ..Spawn::default()
    }
    .settings(settings.clone());
    let mut server = Server::spawn(spawn);
    server.initialize_in(&[&project.root], editor_capabilities(), settings);
    server.wait_status(0, "ready", Duration::from_secs(300));
    if context {
        // Completions do not wait for the index; the benchmark does, so that every case sees
        // the whole project.
        server.wait_stderr(Duration::from_secs(300), |s| {
            s.lines()
                .any(|l| l.contains(" indexed") && l.contains("elapsed_ms="))
        });
    }
    let mut outcomes = Vec::new();
    for case in cases {
        let uri = file_uri(&case.file.to_string_lossy());
        server.open(&uri, case.lang.id(), &case.doc);
        let character = case.doc.split('\n').nth(case.line).unwrap_or("")[..case.col]
            .encode_utf16()
            .count() as u32;
        let t0 = Instant::now();
        let id = server.send_inline(&uri, case.line as u32, character, true);
        let response = server.response(id, Duration::from_secs(900));
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        let items = response.result["items"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let stats = server
            .request(
                "workspace/executeCommand",
                json!({"command": "ghostline.debugLastCompletion", "arguments": [uri]}),
            )
            .result;
        server.notify(
            "textDocument/didClose",
            json!({"textDocument": {"uri": uri}}),
        );
        let (completion, line) = completed_line(case, items.first());
        let original = case.doc.split('\n').nth(case.line).unwrap_or("");
        let got = line.get(original.len()..).unwrap_or("").trim_end();
        let outcome = Outcome {
            exact: got == case.reference,
            similarity: similarity(got, &case.reference),
            completion,
            line: line.clone(),
            ms,
            prompt_tokens: stats["promptTokens"].as_u64().unwrap_or(0),
            evaluated_tokens: stats["evaluatedTokens"].as_u64().unwrap_or(0),
        };
        progress(case, &outcome);
        outcomes.push(outcome);
    }
    // The log arrives on its own pipe, a little after the responses.
    std::thread::sleep(Duration::from_millis(300));
    let log = server.stderr();
    let _ = server.shutdown();
    (outcomes, log_figures(&log))
}

struct Summary {
    n: usize,
    exact: f64,
    similarity: f64,
    p50: f64,
    p95: f64,
    prompt: f64,
}

fn summarize(outcomes: &[&Outcome]) -> Summary {
    let n = outcomes.len().max(1) as f64;
    let ms: Vec<f64> = outcomes.iter().map(|o| o.ms).collect();
    Summary {
        n: outcomes.len(),
        exact: 100.0 * outcomes.iter().filter(|o| o.exact).count() as f64 / n,
        similarity: 100.0 * outcomes.iter().map(|o| o.similarity).sum::<f64>() / n,
        p50: percentile(&ms, 0.5),
        p95: percentile(&ms, 0.95),
        prompt: outcomes.iter().map(|o| o.prompt_tokens as f64).sum::<f64>() / n,
    }
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// Half the width of the 95% confidence interval of the mean (normal approximation).
fn half_width(values: &[f64]) -> f64 {
    let n = values.len() as f64;
    if n < 2.0 {
        return f64::NAN;
    }
    let m = mean(values);
    let var = values.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1.0);
    1.96 * (var / n).sqrt()
}

/// The 95% Wilson score interval of a proportion, in percent.
fn wilson(successes: usize, n: usize) -> (f64, f64) {
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    let (z, n_f) = (1.96f64, n as f64);
    let p = successes as f64 / n_f;
    let denom = 1.0 + z * z / n_f;
    let centre = (p + z * z / (2.0 * n_f)) / denom;
    let half = z * (p * (1.0 - p) / n_f + z * z / (4.0 * n_f * n_f)).sqrt() / denom;
    (
        100.0 * (centre - half).max(0.0),
        100.0 * (centre + half).min(1.0),
    )
}

fn main() {
    let args = parse_args();
    let model = ghostline_tests::args::model_path(&args.model);
    if !model.is_file() {
        die(&format!("model {} is missing", model.display()));
    }
    let projects: Vec<Project> = args
        .projects
        .iter()
        .filter_map(|p| {
            let found = find_project(p);
            if found.is_none() {
                eprintln!(
                    "bench-crossfile: project {p} not found, skipped (scripts/fetch-bench-projects.sh fetches the registry packages)"
                );
            }
            found
        })
        .collect();
    if projects.is_empty() {
        die("no project found");
    }
    // Where the whole prompt fits the window (see the module comment): room minus the context
    // budget, a quarter of the room for the suffix and the format's own tokens; 3 bytes per
    // token is conservative for code.
    let room = args.context_size.saturating_sub(LINE_MAX_TOKENS + 1);
    let prefix_tokens = room.saturating_sub(args.budget_tokens + room / 4 + 64);
    let max_prefix_bytes = prefix_tokens * 3;
    let mut rng = Rng(args.seed);
    let mut cases: Vec<Case> = Vec::new();
    for (i, p) in projects.iter().enumerate() {
        // What the projects before left over goes to the ones after.
        let quota = (args.cases - cases.len()).div_ceil(projects.len() - i);
        cases.extend(project_cases(
            p,
            i,
            quota,
            args.per_file,
            max_prefix_bytes,
            &mut rng,
        ));
    }
    cases.truncate(args.cases);
    // One file's cases together, in line order: they share the prompt's start.
    cases.sort_by(|a, b| (a.project, &a.file, a.line).cmp(&(b.project, &b.file, b.line)));
    println!(
        "bench-crossfile: {} cases from {} projects (seed {}), model {}, contextSize {}, budgetTokens {}, prefix at most {} bytes",
        cases.len(),
        projects.len(),
        args.seed,
        model.display(),
        args.context_size,
        args.budget_tokens,
        max_prefix_bytes
    );
    for (i, p) in projects.iter().enumerate() {
        let n = cases.iter().filter(|c| c.project == i).count();
        let files: std::collections::BTreeSet<&Path> = cases
            .iter()
            .filter(|c| c.project == i)
            .map(|c| c.file.as_path())
            .collect();
        println!(
            "  {:<28} {:>3} cases in {:>2} files  {}",
            p.name,
            n,
            files.len(),
            p.root.display()
        );
    }
    if args.dry_run {
        // With --out: the cases as the editor has them (project root, file, document, cursor
        // byte), for `lsp/examples/context-timing.rs` (context building in the release build).
        if let Some(p) = &args.out {
            let mut f =
                std::fs::File::create(p).unwrap_or_else(|e| die(&format!("{}: {e}", p.display())));
            for c in &cases {
                let cursor = c
                    .doc
                    .split_inclusive('\n')
                    .take(c.line)
                    .map(str::len)
                    .sum::<usize>()
                    + c.col;
                let line = json!({
                    "project": projects[c.project].name, "root": projects[c.project].root,
                    "file": c.file, "rel": c.rel, "line": c.line + 1, "col": c.col,
                    "cursor": cursor, "doc": c.doc,
                });
                writeln!(f, "{line}").ok();
            }
        }
        for c in &cases {
            println!(
                "{}:{}:{}  {} (from {})  {:?}",
                c.rel,
                c.line + 1,
                c.col,
                c.name,
                c.from,
                c.reference
            );
        }
        return;
    }
    let mut out = args.out.as_ref().map(|p| {
        std::fs::File::create(p).unwrap_or_else(|e| die(&format!("{}: {e}", p.display())))
    });
    let started = Instant::now();
    let mut write = |case: &Case, setting: &str, o: &Outcome| {
        eprintln!(
            "  [{:>5.0} s] {setting:<3} {}:{}:{} {:>6.0} ms {:>5} prompt tokens  {}  {:?} -> {:?}",
            started.elapsed().as_secs_f64(),
            case.rel,
            case.line + 1,
            case.col,
            o.ms,
            o.prompt_tokens,
            if o.exact { "exact" } else { "     " },
            case.reference,
            o.line
                .get(case.doc.split('\n').nth(case.line).unwrap_or("").len()..)
                .unwrap_or("")
        );
        if let Some(f) = out.as_mut() {
            let line = json!({
                "project": projects[case.project].name, "file": case.rel, "line": case.line + 1,
                "col": case.col, "name": case.name, "from": case.from, "context": setting,
                "reference": case.reference, "completion": o.completion, "completed_line": o.line,
                "exact": o.exact, "similarity": o.similarity, "ms": o.ms.round(),
                "prompt_tokens": o.prompt_tokens, "evaluated_tokens": o.evaluated_tokens,
            });
            writeln!(f, "{line}").ok();
        }
    };

    // Without context: every case.
    let mut without: BTreeMap<usize, Outcome> = BTreeMap::new();
    for (p, project) in projects.iter().enumerate() {
        let idx: Vec<usize> = (0..cases.len())
            .filter(|&i| cases[i].project == p)
            .collect();
        if idx.is_empty() {
            continue;
        }
        let these: Vec<&Case> = idx.iter().map(|&i| &cases[i]).collect();
        let (outcomes, _) = run_project(&args, &model, project, &these, None, &mut |c, o| {
            write(c, "off", o)
        });
        for (i, o) in idx.into_iter().zip(outcomes) {
            without.insert(i, o);
        }
    }
    if args.no_context {
        let exact = without.values().filter(|o| o.exact).count();
        let similarity: f64 =
            without.values().map(|o| o.similarity).sum::<f64>() / without.len().max(1) as f64;
        println!(
            "without context: exact match {:.1}% ({exact}/{}), edit similarity {:.3}",
            100.0 * exact as f64 / without.len().max(1) as f64,
            without.len(),
            similarity
        );
        return;
    }
    let kept: Vec<usize> = (0..cases.len())
        .filter(|i| without.get(i).is_some_and(|o| !o.exact))
        .collect();
    let run_on: Vec<usize> = if args.all {
        (0..cases.len()).collect()
    } else {
        kept.clone()
    };

    // With context, the older selection ("files": whole files or outlines by relevance) and
    // the use-driven one ("uses"), one project at a time, the same cases.
    let mut with: BTreeMap<(&str, usize), Outcome> = BTreeMap::new();
    let mut context_ms: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    let mut indexing: Vec<(String, u64, f64)> = Vec::new();
    for (p, project) in projects.iter().enumerate() {
        let idx: Vec<usize> = run_on
            .iter()
            .copied()
            .filter(|&i| cases[i].project == p)
            .collect();
        if idx.is_empty() {
            continue;
        }
        let these: Vec<&Case> = idx.iter().map(|&i| &cases[i]).collect();
        for selection in ["files", "uses"] {
            let (outcomes, log) = run_project(
                &args,
                &model,
                project,
                &these,
                Some(selection),
                &mut |c, o| write(c, selection, o),
            );
            context_ms
                .entry(selection)
                .or_default()
                .extend(log.context_ms);
            if let (Some(files), Some(ms)) = (log.indexed_files, log.indexed_ms) {
                if selection == "uses" {
                    indexing.push((project.name.clone(), files, ms));
                }
            }
            for (&i, o) in idx.iter().zip(outcomes) {
                with.insert((selection, i), o);
            }
        }
    }

    let pick = |set: &[usize], selection: Option<&'static str>| -> Vec<&Outcome> {
        set.iter()
            .filter_map(|&i| match selection {
                None => without.get(&i),
                Some(s) => with.get(&(s, i)),
            })
            .collect()
    };
    let all: Vec<usize> = (0..cases.len()).collect();
    println!();
    println!(
        "cases built {}, completed exactly without context {}, kept {}",
        cases.len(),
        cases.len() - kept.len(),
        kept.len()
    );
    println!();
    println!(
        "| run | cases | exact match (95% CI) | edit similarity (95% CI) | p50 ms | p95 ms | mean prompt tokens |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    let mut rows: Vec<(&str, Vec<&Outcome>)> = vec![
        ("without context, all cases", pick(&all, None)),
        ("without context, kept cases", pick(&kept, None)),
        (
            "context by files (old), kept cases",
            pick(&kept, Some("files")),
        ),
        (
            "**context by uses (new), kept cases**",
            pick(&kept, Some("uses")),
        ),
    ];
    if args.all {
        rows.push((
            "context by files (old), all cases",
            pick(&all, Some("files")),
        ));
        rows.push(("context by uses (new), all cases", pick(&all, Some("uses"))));
    }
    for (label, o) in &rows {
        let s = summarize(o);
        let (lo, hi) = wilson(o.iter().filter(|x| x.exact).count(), o.len());
        let sims: Vec<f64> = o.iter().map(|x| 100.0 * x.similarity).collect();
        println!(
            "| {label} | {} | {:.1}% ({:.1}–{:.1}) | {:.1}% (± {:.1}) | {:.0} | {:.0} | {:.0} |",
            s.n,
            s.exact,
            lo,
            hi,
            s.similarity,
            half_width(&sims),
            s.p50,
            s.p95,
            s.prompt
        );
    }
    println!();
    let mut sets = vec![("kept", &kept)];
    if args.all {
        sets.push(("all", &all));
    }
    for (name, set) in sets {
        for (a, b) in [
            (None, Some("files")),
            (None, Some("uses")),
            (Some("files"), Some("uses")),
        ] {
            let pairs: Vec<(&Outcome, &Outcome)> = set
                .iter()
                .filter_map(|&i| {
                    let x = match a {
                        None => without.get(&i),
                        Some(s) => with.get(&(s, i)),
                    }?;
                    Some((x, with.get(&(b?, i))?))
                })
                .collect();
            let exact: Vec<f64> = pairs
                .iter()
                .map(|(x, y)| 100.0 * (f64::from(u8::from(y.exact)) - f64::from(u8::from(x.exact))))
                .collect();
            let sim: Vec<f64> = pairs
                .iter()
                .map(|(x, y)| 100.0 * (y.similarity - x.similarity))
                .collect();
            println!(
                "{name} cases ({}): {} vs {}: exact match {:+.1} points (± {:.1}), edit similarity {:+.1} points (± {:.1})",
                pairs.len(),
                b.unwrap_or("none"),
                a.unwrap_or("no context"),
                mean(&exact),
                half_width(&exact),
                mean(&sim),
                half_width(&sim)
            );
        }
    }
    for (selection, ms) in &context_ms {
        println!(
            "context building by {selection} (server log, {} builds): p50 {:.2} ms, p95 {:.2} ms, max {:.2} ms",
            ms.len(),
            percentile(ms, 0.5),
            percentile(ms, 0.95),
            percentile(ms, 1.0)
        );
    }
    if let Some((name, files, ms)) = indexing.iter().max_by_key(|(_, files, _)| *files) {
        println!("indexing, largest project ({name}): {files} files in {ms:.0} ms (server log)");
    }
    println!("total {:.0} s", started.elapsed().as_secs_f64());
}
