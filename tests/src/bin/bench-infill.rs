//! `bench-infill`: HumanEval infilling through the real server, the way a user meets it.
//!
//! For each task of `../shared/bench/humaneval-infilling/<set>.jsonl.gz`, the editor state is
//! written to a file of a temporary workspace — `prompt + "\n" + suffix` with the cursor on the
//! empty line for whole-line holes, `prompt + suffix` with the cursor between them for random
//! spans — opened in `ghostline` over stdio, completed with an Invoked
//! `textDocument/inlineCompletion`, and the returned edit (range and text) is applied. The edited
//! document plus the task's test code then runs under `python3 -I` in a fresh temporary
//! directory with a time limit (it is model-written code: never run in the repository).
//!
//! `--raw` measures the bare model on the same tasks instead: the same document and cursor, a
//! PSM prompt of the text before and after the cursor (no repository context), generation to
//! the model's own end-of-text with a 128-token cap, and the text inserted at the cursor as it
//! was generated (no stop strings, no shaping). The two figures side by side show what the
//! server's shaping adds or costs per set.
//!
//! Prints pass@1, latency p50/p95, mean generated tokens and the share of completions that hit
//! the token cap; writes one JSON line per task with `--out`. Nothing here reads a canonical
//! solution except to write it next to the completion in that file for inspection.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ghostline_tests::humaneval::{self, Task};
use ghostline_tests::stats::percentile;
use ghostline_tests::utf16_offset as offset;
use ghostline_tests::{editor_capabilities, file_uri, Server, Spawn};
use serde_json::{json, Value};

const USAGE: &str = "\
bench-infill: HumanEval infilling pass@1 through the ghostline server

USAGE:
    bench-infill [--set single-line|random-span-light|multi-line] [--stride N] [--limit N]
                 [--only ID,...]
                 [--raw]
                 [--model 1.5b|0.5b|PATH] [--repo-context on|off] [--out FILE.jsonl]
                 [--threads N] [--quiet] [--summary FILE.json] [--check-floor FILE.json]
                 [--settings JSON]

--settings adds server settings (a JSON object), e.g. '{\"window\":{\"suffixChars\":500}}'.
--raw runs the bare model (PSM, end-of-text or 128 tokens, no shaping) instead of the server.
--summary writes the figures as JSON (scripts/bench-table.py turns them into the README table).
--check-floor fails (exit 1) when pass@1 is more than `tolerance` points (default 5) below the
`pass_at_1` recorded in FILE for this set, model and stride (what CI runs).";

struct Args {
    set: String,
    stride: usize,
    limit: usize,
    model: String,
    repo_context: bool,
    out: Option<PathBuf>,
    threads: usize,
    quiet: bool,
    summary: Option<PathBuf>,
    floor: Option<PathBuf>,
    raw: bool,
    settings: Option<Value>,
    /// Only the selected tasks whose id contains one of these.
    only: Vec<String>,
}

fn die(msg: &str) -> ! {
    eprintln!("bench-infill: {msg}");
    std::process::exit(2);
}

fn parse_args() -> Args {
    let mut a = ghostline_tests::args::Args::parse(USAGE);
    let settings = a.text("--settings").map(|text| {
        let v: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| a.die(&format!("--settings: {e}")));
        if !v.is_object() {
            a.die("--settings: expected a JSON object");
        }
        v
    });
    let args = Args {
        set: a.text("--set").unwrap_or_else(|| "single-line".into()),
        stride: a.get("--stride", 1),
        limit: a.get("--limit", usize::MAX),
        only: a.list("--only").unwrap_or_default(),
        model: a.text("--model").unwrap_or_else(|| "1.5b".into()),
        repo_context: a.text("--repo-context").is_none_or(|v| v != "off"),
        out: a.value("--out"),
        threads: a.get("--threads", 2),
        quiet: a.flag("--quiet"),
        summary: a.value("--summary"),
        floor: a.value("--check-floor"),
        raw: a.flag("--raw"),
        settings,
    };
    a.finish();
    args
}

/// The document and cursor (line, UTF-16 character) a user would have.
fn editor_state(task: &Task, whole_lines: bool) -> (String, u32, u32) {
    let text = if whole_lines {
        format!("{}\n{}", task.prompt, task.suffix)
    } else {
        format!("{}{}", task.prompt, task.suffix)
    };
    let line = task.prompt.matches('\n').count() as u32;
    let last = task.prompt.rsplit('\n').next().unwrap_or("");
    let character = last.encode_utf16().count() as u32;
    (text, line, character)
}

fn apply(text: &str, item: &Value, cursor: (u32, u32)) -> String {
    let insert = item["insertText"]
        .as_str()
        .or_else(|| item["insertText"]["value"].as_str())
        .unwrap_or_default();
    let (start, end) = match item.get("range") {
        Some(r) if !r.is_null() => (
            offset(
                text,
                r["start"]["line"].as_u64().unwrap_or(0),
                r["start"]["character"].as_u64().unwrap_or(0),
            ),
            offset(
                text,
                r["end"]["line"].as_u64().unwrap_or(0),
                r["end"]["character"].as_u64().unwrap_or(0),
            ),
        ),
        _ => {
            let o = offset(text, cursor.0 as u64, cursor.1 as u64);
            (o, o)
        }
    };
    format!("{}{}{}", &text[..start], insert, &text[end.max(start)..])
}

/// Who completes: the server over stdio, or the bare model (`fim-raw`, an example of the
/// inference crate, as a child process speaking JSON lines).
enum Runner {
    Server(Server),
    Raw(Raw),
}

/// The bare model: `inference/examples/fim-raw.rs`.
struct Raw {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl Raw {
    fn start(model: &std::path::Path, threads: usize) -> Raw {
        use std::process::{Command, Stdio};
        let bin = ghostline_tests::target_debug()
            .join("examples")
            .join("fim-raw");
        if !bin.exists() {
            die(&format!(
                "{} does not exist: run `cargo build --workspace --all-targets` first",
                bin.display()
            ));
        }
        let mut child = Command::new(&bin)
            .arg("--model")
            .arg(model)
            .args(["--threads", &threads.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| die(&format!("cannot start {}: {e}", bin.display())));
        let stdin = child.stdin.take().expect("stdin");
        let stdout = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        Raw {
            child,
            stdin,
            stdout,
        }
    }

    /// The bare model's answer for the cursor between `prefix` and `suffix`.
    fn complete(&mut self, prefix: &str, suffix: &str) -> Value {
        use std::io::BufRead as _;
        let request = json!({"prefix": prefix, "suffix": suffix});
        if writeln!(self.stdin, "{request}")
            .and_then(|_| self.stdin.flush())
            .is_err()
        {
            let status = self.child.wait().ok();
            die(&format!("fim-raw ended ({status:?})"));
        }
        let mut line = String::new();
        match self.stdout.read_line(&mut line) {
            Ok(n) if n > 0 => serde_json::from_str(&line)
                .unwrap_or_else(|e| die(&format!("fim-raw answered {line:?}: {e}"))),
            _ => {
                let status = self.child.wait().ok();
                die(&format!("fim-raw ended ({status:?})"))
            }
        }
    }
}

fn start_server(workspace: &std::path::Path, settings: Value) -> Server {
    let mut server = Server::spawn(Spawn::default().settings(settings.clone()));
    let from = server.message_count();
    let root = file_uri(&workspace.to_string_lossy());
    server
        .request(
            "initialize",
            json!({
                "processId": std::process::id(),
                "clientInfo": {"name": "bench-infill"},
                "rootUri": root,
                "workspaceFolders": [{"uri": root, "name": "bench"}],
                "capabilities": editor_capabilities(),
                "initializationOptions": settings,
            }),
        )
        .ok();
    server.notify("initialized", json!({}));
    server.wait_status(from, "ready", Duration::from_secs(300));
    server
}

impl Runner {
    /// The completion items for the cursor and the statistics of the run.
    fn complete(
        &mut self,
        workspace: &std::path::Path,
        i: usize,
        text: &str,
        line: u32,
        character: u32,
    ) -> (Vec<Value>, Value) {
        match self {
            Runner::Server(server) => {
                let path = workspace.join(format!("task_{i}.py"));
                std::fs::write(&path, text).ok();
                let uri = file_uri(&path.to_string_lossy());
                server.open(&uri, "python", text);
                let items = server.inline(&uri, line, character, true);
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
                std::fs::remove_file(&path).ok();
                (items, stats)
            }
            Runner::Raw(raw) => {
                let at = offset(text, line as u64, character as u64);
                let answer = raw.complete(&text[..at], &text[at..]);
                match answer["text"].as_str() {
                    Some(t) => (
                        vec![json!({"insertText": t})],
                        json!({"generatedTokens": answer["generatedTokens"], "stop": answer["stop"]}),
                    ),
                    None => {
                        eprintln!("bench-infill: task {i}: {}", answer["error"]);
                        (Vec::new(), Value::Null)
                    }
                }
            }
        }
    }
}

/// The checkout's commit (with `-dirty` when it has uncommitted changes), so that a result says
/// what it measured; empty outside a git checkout.
fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let Some(head) = git(&["rev-parse", "--short", "HEAD"]) else {
        return String::new();
    };
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{head}-dirty")
    } else {
        head
    }
}

fn main() {
    let args = parse_args();
    // Read before the run: the checkout may change while it goes on.
    let measured_commit = commit();
    let tasks = humaneval::load(&args.set);
    if tasks.is_empty() {
        die(&format!(
            "no tasks in {}",
            humaneval::set_path(&args.set).display()
        ));
    }
    let whole_lines = !args.set.starts_with("random-span");
    let selected: Vec<&Task> = tasks
        .iter()
        .step_by(args.stride.max(1))
        .filter(|t| args.only.is_empty() || args.only.iter().any(|o| t.id.contains(o.as_str())))
        .take(args.limit)
        .collect();

    let workspace =
        std::env::temp_dir().join(format!("ghostline-infill-ws-{}", std::process::id()));
    std::fs::create_dir_all(&workspace).expect("temporary workspace");
    let model = ghostline_tests::args::model_path(&args.model);
    let mut settings = json!({
        "model": model,
        "threads": args.threads,
        "repoContext": {"enabled": args.repo_context},
        // Quality is measured without a time limit; latency is reported separately.
        "invokedTimeBudgetMs": 600000,
    });
    if let (Some(s), Some(Value::Object(extra))) = (settings.as_object_mut(), &args.settings) {
        s.extend(extra.clone());
    }
    let mut runner = if args.raw {
        Runner::Raw(Raw::start(&model, args.threads))
    } else {
        Runner::Server(start_server(&workspace, settings))
    };

    let mut out = args.out.as_ref().map(|p| {
        std::fs::File::create(p).unwrap_or_else(|e| die(&format!("{}: {e}", p.display())))
    });
    if let Some(extra) = &args.settings {
        println!("bench-infill: extra server settings {extra}");
    }
    println!(
        "bench-infill: {} {} tasks (every {}th of {}), model {}, repository context {}",
        selected.len(),
        args.set,
        args.stride,
        tasks.len(),
        model.display(),
        if args.repo_context { "on" } else { "off" }
    );
    let started = Instant::now();
    let (mut passed, mut latencies, mut generated, mut capped, mut with_stats) =
        (0usize, Vec::new(), 0usize, 0usize, 0usize);
    for (i, task) in selected.iter().enumerate() {
        let (text, line, character) = editor_state(task, whole_lines);
        let t0 = Instant::now();
        let (items, stats) = runner.complete(&workspace, i, &text, line, character);
        let ms = t0.elapsed().as_secs_f64() * 1000.0;

        let edited = match items.first() {
            Some(item) => apply(&text, item, (line, character)),
            None => text.clone(),
        };
        let completion = items
            .first()
            .and_then(|i| i["insertText"].as_str())
            .unwrap_or("")
            .to_owned();
        let ok = humaneval::passes(&task.program(&edited));
        passed += ok as usize;
        latencies.push(ms);
        if let Some(g) = stats["generatedTokens"].as_u64() {
            with_stats += 1;
            generated += g as usize;
            capped += (stats["stop"] == "MaxTokens") as usize;
        }
        if let Some(f) = out.as_mut() {
            let at = offset(&text, line as u64, character as u64);
            let line = json!({
                "task_id": task.id, "completion": completion, "passed": ok, "ms": ms.round(),
                "stats": stats, "canonical": task.canonical,
                // Enough to re-score another shaping of the same text offline.
                "prefix": &text[..at], "suffix": &text[at..], "entry_point": task.entry_point,
                "test": task.test,
            });
            writeln!(f, "{line}").ok();
        }
        if !args.quiet && (i + 1) % 10 == 0 {
            eprintln!(
                "  {}/{}: pass@1 {:.1}%, {:.0} s",
                i + 1,
                selected.len(),
                100.0 * passed as f64 / (i + 1) as f64,
                started.elapsed().as_secs_f64()
            );
        }
    }
    latencies.sort_by(f64::total_cmp);
    let n = selected.len() as f64;
    println!(
        "pass@1 {:.1}% ({passed}/{})  latency p50 {:.0} ms p95 {:.0} ms  mean generated tokens {:.1}  hit token cap {:.1}%  ({:.0} s)",
        100.0 * passed as f64 / n,
        selected.len(),
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95),
        generated as f64 / with_stats.max(1) as f64,
        100.0 * capped as f64 / with_stats.max(1) as f64,
        started.elapsed().as_secs_f64()
    );
    std::fs::remove_dir_all(&workspace).ok();
    if let Runner::Server(server) = runner {
        let _ = server.shutdown();
    }

    let pass_at_1 = 100.0 * passed as f64 / n;
    let model_name = model
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(path) = &args.summary {
        let summary = json!({
            "set": args.set, "stride": args.stride, "tasks": selected.len(), "model": model_name,
            "repo_context": args.repo_context && !args.raw, "raw": args.raw, "pass_at_1": (pass_at_1 * 10.0).round() / 10.0,
            "p50_ms": percentile(&latencies, 0.5).round(), "p95_ms": percentile(&latencies, 0.95).round(),
            "mean_generated_tokens": generated as f64 / with_stats.max(1) as f64,
            "hit_token_cap": capped as f64 / with_stats.max(1) as f64,
            "threads": args.threads, "commit": measured_commit,
        });
        std::fs::write(path, format!("{summary:#}\n"))
            .unwrap_or_else(|e| die(&format!("{}: {e}", path.display())));
    }
    if let Some(path) = &args.floor {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| die(&format!("{}: {e}", path.display())));
        let floors: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| die(&format!("{}: {e}", path.display())));
        let recorded = floors.as_array().and_then(|a| {
            a.iter().find(|f| {
                f["raw"].as_bool().unwrap_or(false) == args.raw
                    && f["set"] == args.set.as_str()
                    && f["model"] == model_name.as_str()
                    && f["stride"] == args.stride
            })
        });
        // Greedy output can flip at a near-tie on another CPU: a small set allows more slack.
        let tolerance = recorded
            .and_then(|f| f["tolerance"].as_f64())
            .unwrap_or(5.0);
        match recorded.and_then(|f| f["pass_at_1"].as_f64()) {
            Some(floor) if pass_at_1 + tolerance < floor => {
                println!("FAIL: pass@1 {pass_at_1:.1}% is more than {tolerance} points below the recorded {floor:.1}%");
                std::process::exit(1);
            }
            Some(floor) => println!(
                "quality floor ok: {pass_at_1:.1}% against the recorded {floor:.1}% (-{tolerance} allowed)"
            ),
            None => die(&format!(
                "{} records no pass@1 for {} / {model_name} / stride {}",
                path.display(),
                args.set,
                args.stride
            )),
        }
    }
}
