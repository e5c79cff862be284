//! `bench-team`: N simulated editors typing at once against one shared model server, through
//! ghostline, against the same replay with the in-process engine.
//!
//! For each N (default 1, 2, 4, 8) and each backend:
//!
//! - **`llama-server`** (and `openai` when asked for): ONE llama.cpp `llama-server` started with
//!   `--parallel N`, a context of N slots of `--slot-ctx` tokens, `--metrics` and the machine's
//!   threads; N `ghostline` processes (one per editor) with `backend: "llama-server"` (or
//!   `"openai"`) pointed at it.
//! - **`local`**: N `ghostline` processes, each with its own in-process model (threads: the
//!   machine's cores divided among them, at least 1; `--local-threads` overrides it).
//!
//! Editor i types a different real file (Python standard-library modules: `shlex`, `fractions`,
//! `calendar`, `base64`, `fnmatch`, `bisect`, `csv`, `colorsys`, cycling for N > 8): the document
//! is the file up to the first function definition after `--prefix-chars`, where the editor
//! types the first `--keys` characters of that function, and after a blank line
//! `--suffix-chars` of the file from the next definition on (the typed function's body is left
//! out, so the model has to write it rather than copy it from below the cursor).
//! Every editor opens its document, warms up with one invoked completion (all at once), then
//! all type at the same moment: `didChange` and an automatic `textDocument/inlineCompletion`
//! per keystroke. With `--wait` (the default) each editor types its next character only after
//! the answer to the previous keystroke arrived and at least `--interval-ms` after the previous
//! character (a closed loop: at most N requests in flight, so every keystroke's latency is
//! measured); with `--no-wait` it types at a fixed pace and superseded requests are counted.
//!
//! Printed per backend and N: p50/p95 latency of the keystrokes answered with a suggestion,
//! answered share, superseded/empty/errors, the wall time of the replay, generated and
//! evaluated prompt tokens over the replay (summed from each ghostline's `generation finished`
//! log lines) and per second of wall time, and for llama-server its own figures from
//! `/metrics` (deltas over the replay: prompt and generated tokens, cached prompt tokens, its
//! per-slot prompt and generation rates, busy slots per decode).
//!
//! On a 2-core machine use the 0.5B model and a short replay; a GPU box changes the absolute
//! numbers completely — the run measures how the pipeline scales with the number of editors
//! sharing the same hardware, one batching server against N separate engines.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ghostline_tests::stats::{log_field, percentile};
use ghostline_tests::{editor_capabilities, file_uri, peer, Server, Spawn};
use serde_json::{json, Value};

const USAGE: &str = "\
bench-team: N editors typing different files at once, through ghostline, against one shared
llama-server (--parallel N) and against N in-process engines

USAGE:
    bench-team [--model 0.5b|1.5b|PATH] [--editors 1,2,4,8] [--backends llama-server,local]
               [--keys N] [--interval-ms MS] [--no-wait] [--prefix-chars N] [--suffix-chars N]
               [--slot-ctx TOKENS] [--threads N] [--local-threads N] [--peer LLAMA_SERVER]
               [--files F1,F2,...]

--backends: any of llama-server, openai (ghostline's openai backend against llama-server's
/v1) and local (default: llama-server,local).
--model defaults to 0.5b. --keys (default 20) characters per editor, one every --interval-ms
(default 80) after the answer to the previous keystroke arrived; --no-wait types at a fixed
pace without waiting for answers.
--slot-ctx: context tokens per llama-server slot and ghostline's contextSize (default 2048).
--threads: llama-server's threads (default: all cores, at most 8); --local-threads: each
in-process engine's threads (default: the cores divided by N, at least 1).
--peer: the llama-server binary (default: $GHOSTLINE_PEER_BIN, else
~/.cache/ghostline/peer/llama-server, which scripts/build-llama-server.sh builds).
--files: the files the editors type (default: Python standard-library modules).

Runs the ghostline binary of target/debug (or $GHOSTLINE_BIN).";

const DEFAULT_FILES: [&str; 8] = [
    "shlex.py",
    "fractions.py",
    "calendar.py",
    "base64.py",
    "fnmatch.py",
    "bisect.py",
    "csv.py",
    "colorsys.py",
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Backend {
    LlamaServer,
    OpenAi,
    Local,
}

impl Backend {
    fn name(self) -> &'static str {
        match self {
            Backend::LlamaServer => "llama-server",
            Backend::OpenAi => "openai",
            Backend::Local => "local",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Backend::LlamaServer => {
                "ghostline backend llama-server (/infill) -> one llama-server --parallel N"
            }
            Backend::OpenAi => {
                "ghostline backend openai (/v1/completions) -> one llama-server --parallel N"
            }
            Backend::Local => "ghostline backend local: N processes, each with its own model",
        }
    }
}

struct Args {
    model: PathBuf,
    editors: Vec<usize>,
    backends: Vec<Backend>,
    keys: usize,
    interval: Duration,
    wait: bool,
    prefix_chars: usize,
    suffix_chars: usize,
    slot_ctx: usize,
    threads: usize,
    local_threads: Option<usize>,
    peer: PathBuf,
    files: Vec<PathBuf>,
}

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
}

fn python_lib() -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    for dir in ["/usr/lib", "/usr/local/lib"] {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("python3") && e.path().join("shlex.py").exists() {
                    dirs.push(e.path());
                }
            }
        }
    }
    dirs.sort();
    dirs.pop()
}

fn parse_args() -> Args {
    let mut a = ghostline_tests::args::Args::parse(USAGE);
    let model =
        ghostline_tests::args::model_path(&a.text("--model").unwrap_or_else(|| "0.5b".into()));
    let backends = a
        .list::<String>("--backends")
        .unwrap_or_else(|| vec!["llama-server".into(), "local".into()])
        .iter()
        .map(|b| match b.as_str() {
            "llama-server" => Backend::LlamaServer,
            "openai" => Backend::OpenAi,
            "local" => Backend::Local,
            other => a.die(&format!(
                "unknown backend {other} (llama-server, openai, local)"
            )),
        })
        .collect();
    let files = a.list::<PathBuf>("--files");
    let args = Args {
        model,
        editors: a.list("--editors").unwrap_or_else(|| vec![1, 2, 4, 8]),
        backends,
        keys: a.get("--keys", 20),
        interval: Duration::from_millis(a.get("--interval-ms", 80)),
        wait: !a.flag("--no-wait"),
        prefix_chars: a.get("--prefix-chars", 1500),
        suffix_chars: a.get("--suffix-chars", 1000),
        slot_ctx: a.get("--slot-ctx", 2048),
        threads: a.get("--threads", cores().min(8)),
        local_threads: a.value("--local-threads"),
        peer: a.value("--peer").unwrap_or_else(peer::default_binary),
        files: Vec::new(),
    };
    let files = files.unwrap_or_else(|| {
        let lib =
            python_lib().unwrap_or_else(|| a.die("no Python standard library found; pass --files"));
        DEFAULT_FILES.iter().map(|f| lib.join(f)).collect()
    });
    if args.editors.is_empty() || args.editors.contains(&0) {
        a.die("--editors: give positive counts");
    }
    if files.is_empty() {
        a.die("--files: give at least one file");
    }
    a.finish();
    Args { files, ..args }
}

/// One editor's document: the file up to the typing point, what is typed, what follows.
struct Doc {
    name: String,
    before: String,
    typed: String,
    after: String,
}

fn utf16_len(s: &str) -> u32 {
    s.encode_utf16().count() as u32
}

/// Cuts `path`: typing starts at the first function definition at or after `prefix_chars`
/// (as in `bench-typing`); `keys` characters of it are typed; after a blank line the file goes
/// on at the next definition after that function, up to `suffix_chars` (whole lines).
fn prepare(path: &Path, args: &Args) -> Doc {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| {
            eprintln!("bench-team: cannot read {}: {e}", path.display());
            std::process::exit(2)
        })
        .replace("\r\n", "\n");
    let from = args.prefix_chars.min(text.len());
    let from = (from..=text.len())
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(text.len());
    let line_after = text[from..].find('\n').map(|i| from + i + 1).unwrap_or(0);
    let cut = ["\ndef ", "\n    def ", "\nfn ", "\n    fn ", "\npub fn "]
        .iter()
        .filter_map(|pat| text[from..].find(pat).map(|i| from + i + 1))
        .min()
        .unwrap_or(line_after);
    let typed: String = text[cut..].chars().take(args.keys).collect();
    // The function being typed is not in the document (its body would give it away): the text
    // after the cursor starts at the next definition.
    let end = cut + typed.len();
    let next_def = ["\ndef ", "\n    def ", "\nclass ", "\n@", "\n    @"]
        .iter()
        .filter_map(|pat| text[end..].find(pat).map(|i| end + i + 1))
        .min()
        .unwrap_or(text.len());
    let mut rest = &text[next_def..];
    if rest.len() > args.suffix_chars {
        let mut at = args.suffix_chars;
        while !rest.is_char_boundary(at) {
            at += 1;
        }
        let at = rest[..at].rfind('\n').map_or(at, |i| i + 1);
        rest = &rest[..at];
    }
    Doc {
        name: path.file_name().map_or_else(
            || path.display().to_string(),
            |f| f.to_string_lossy().into_owned(),
        ),
        before: text[..cut].to_owned(),
        typed,
        after: format!("\n\n{rest}"),
    }
}

/// llama-server with `--parallel n` and `--metrics` on a free loopback port.
struct LlamaServer(peer::LlamaServer);

impl LlamaServer {
    fn start(args: &Args, n: usize) -> LlamaServer {
        if !args.peer.is_file() {
            eprintln!(
                "bench-team: no llama-server at {} (scripts/build-llama-server.sh builds it), or pass --backends local",
                args.peer.display()
            );
            std::process::exit(1);
        }
        let t = args.threads.to_string();
        let flags = [
            "--parallel",
            &n.to_string(),
            "-c",
            &(args.slot_ctx * n).to_string(),
            "-t",
            &t,
            "-tb",
            &t,
            "--cache-reuse",
            "256",
            "--metrics",
        ];
        let launch = peer::Launch {
            bin: args.peer.clone(),
            model: args.model.clone(),
            args: flags.iter().map(|a| a.to_string()).collect(),
            port: None,
            api_key: None,
            log: std::env::temp_dir().join(format!("bench-team-llama-server-{n}.log")),
            healthy_within: Duration::from_secs(300),
        };
        LlamaServer(peer::LlamaServer::start(launch).unwrap_or_else(|e| panic!("{e}")))
    }

    fn endpoint(&self) -> String {
        self.0.endpoint()
    }

    fn get(&self, path: &str) -> Option<(u16, String)> {
        self.0.get(path, Duration::from_secs(30))
    }

    /// The counters and gauges of `/metrics` (`llamacpp:NAME VALUE` lines). Reading them
    /// resets the server's rate gauges, which average over the time between two reads.
    fn metrics(&self) -> Metrics {
        let Some((200, body)) = self.get("/metrics") else {
            eprintln!("bench-team: llama-server /metrics did not answer");
            return Metrics::default();
        };
        let mut m = Metrics::default();
        for line in body.lines() {
            let Some(rest) = line.strip_prefix("llamacpp:") else {
                continue;
            };
            let mut parts = rest.split_whitespace();
            let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
                continue;
            };
            let Ok(v) = value.parse::<f64>() else {
                continue;
            };
            match name {
                "prompt_tokens_total" => m.prompt_tokens = v,
                "prompt_tokens_cached_total" => m.cached_tokens = v,
                "prompt_seconds_total" => m.prompt_seconds = v,
                "tokens_predicted_total" => m.predicted = v,
                "tokens_predicted_seconds_total" => m.predicted_seconds = v,
                "n_decode_total" => m.decodes = v,
                "prompt_tokens_seconds" => m.prompt_rate = v,
                "predicted_tokens_seconds" => m.predicted_rate = v,
                "n_busy_slots_per_decode" => m.busy_per_decode = v,
                _ => {}
            }
        }
        m
    }
}

/// llama-server's `/metrics`.
#[derive(Debug, Default, Clone, Copy)]
struct Metrics {
    prompt_tokens: f64,
    cached_tokens: f64,
    prompt_seconds: f64,
    predicted: f64,
    predicted_seconds: f64,
    decodes: f64,
    /// Gauges: averages since the previous read.
    prompt_rate: f64,
    predicted_rate: f64,
    /// Cumulative average since the server started.
    busy_per_decode: f64,
}

/// What llama-server did during the replay (differences of two reads of `/metrics`).
#[derive(Debug, Default, Clone, Copy)]
struct ServerFigures {
    prompt_tokens: f64,
    cached_tokens: f64,
    prompt_seconds: f64,
    predicted: f64,
    predicted_seconds: f64,
    prompt_rate: f64,
    predicted_rate: f64,
    busy_per_decode: f64,
}

impl ServerFigures {
    fn between(a: Metrics, b: Metrics) -> ServerFigures {
        let decodes = b.decodes - a.decodes;
        let busy = b.busy_per_decode * b.decodes - a.busy_per_decode * a.decodes;
        ServerFigures {
            prompt_tokens: b.prompt_tokens - a.prompt_tokens,
            cached_tokens: b.cached_tokens - a.cached_tokens,
            prompt_seconds: b.prompt_seconds - a.prompt_seconds,
            predicted: b.predicted - a.predicted,
            predicted_seconds: b.predicted_seconds - a.predicted_seconds,
            prompt_rate: b.prompt_rate,
            predicted_rate: b.predicted_rate,
            busy_per_decode: if decodes > 0.0 { busy / decodes } else { 0.0 },
        }
    }
}

/// Figures of one replay (all editors of one backend and N).
#[derive(Debug, Default)]
struct Report {
    editors: usize,
    requests: usize,
    answered: Vec<f64>,
    superseded: usize,
    empty: usize,
    errors: usize,
    cached: usize,
    model_runs: usize,
    deadline_stops: usize,
    generated_tokens: usize,
    evaluated_tokens: usize,
    prompt_tokens: usize,
    /// Open + first invoked completion, slowest editor (ms).
    warm_ms: f64,
    /// From the first keystroke to the last answer (s).
    wall_s: f64,
    server: Option<ServerFigures>,
}

/// One editor: its ghostline process and its document.
struct Editor {
    server: Server,
    uri: String,
    line: u32,
    col: u32,
    /// (request id, when the keystroke was sent).
    sent: Vec<(i64, Instant)>,
    log_start: usize,
}

fn settings(args: &Args, backend: Backend, endpoint: Option<&str>, n: usize) -> Value {
    let mut s = json!({
        "repoContext": {"enabled": false},
        "contextSize": args.slot_ctx,
        // Only the warm-up request is invoked: let it fill the cache whatever the load.
        "invokedTimeBudgetMs": 600000,
    });
    match backend {
        Backend::Local => {
            s["model"] = json!(args.model);
            s["threads"] = json!(args.local_threads.unwrap_or((cores() / n).max(1)));
        }
        Backend::LlamaServer | Backend::OpenAi => {
            s["backend"] = json!(backend.name());
            s["remote"] = json!({"endpoint": endpoint, "timeoutMs": 30000});
        }
    }
    s
}

/// Waits until request `id` was answered (or `timeout` passed).
fn wait_answer(server: &Server, id: i64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while server.response_count(id) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Types `doc.typed` into `e`, one keystroke per interval (after the previous answer with
/// `wait`), from `start` on.
fn type_doc(e: &mut Editor, doc: &Doc, args: &Args, start: Instant) {
    let mut next = start;
    for (k, ch) in doc.typed.chars().enumerate() {
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
        next += args.interval;
        let version = k as i32 + 2;
        e.server.notify(
            "textDocument/didChange",
            json!({
                "textDocument": {"uri": e.uri, "version": version},
                "contentChanges": [{"range": {"start": {"line": e.line, "character": e.col}, "end": {"line": e.line, "character": e.col}}, "text": ch.to_string()}],
            }),
        );
        if ch == '\n' {
            e.line += 1;
            e.col = 0;
        } else {
            e.col += ch.len_utf16() as u32;
        }
        let id = e.server.send_inline(&e.uri, e.line, e.col, false);
        e.sent.push((id, Instant::now()));
        if args.wait {
            wait_answer(&e.server, id, Duration::from_secs(120));
            next = next.max(Instant::now());
        }
    }
}

fn replay(args: &Args, backend: Backend, n: usize, docs: &[Doc]) -> Report {
    let server = (backend != Backend::Local).then(|| LlamaServer::start(args, n));
    let endpoint = server.as_ref().map(|s| s.endpoint());
    let options = settings(args, backend, endpoint.as_deref(), n);
    let mut editors: Vec<Editor> = (0..n)
        .map(|i| {
            let doc = &docs[i % docs.len()];
            let mut server = Server::spawn(Spawn::default().settings(options.clone()));
            server.initialize(editor_capabilities(), options.clone());
            let path = format!("/tmp/ghostline-bench-team/{i}/{}", doc.name);
            Editor {
                server,
                uri: file_uri(&path),
                line: doc.before.matches('\n').count() as u32,
                col: utf16_len(doc.before.rsplit('\n').next().unwrap_or("")),
                sent: Vec::new(),
                log_start: 0,
            }
        })
        .collect();
    for e in &editors {
        e.server.wait_status(0, "ready", Duration::from_secs(600));
    }
    // Open and warm up, all editors at once: one invoked completion at the typing position.
    let warm_start = Instant::now();
    let warm: Vec<i64> = editors
        .iter_mut()
        .enumerate()
        .map(|(i, e)| {
            let doc = &docs[i % docs.len()];
            e.server
                .open(&e.uri, "python", &format!("{}{}", doc.before, doc.after));
            e.server.send_inline(&e.uri, e.line, e.col, true)
        })
        .collect();
    let mut warm_ms: f64 = 0.0;
    for (e, id) in editors.iter().zip(&warm) {
        let r = e.server.response(*id, Duration::from_secs(900));
        warm_ms = warm_ms.max(r.at.duration_since(warm_start).as_secs_f64() * 1000.0);
    }
    // Let the warm-ups' log lines arrive, then start counting.
    std::thread::sleep(Duration::from_millis(300));
    for e in editors.iter_mut() {
        e.log_start = e.server.stderr().len();
    }
    let before = server.as_ref().map(LlamaServer::metrics);

    let start = Instant::now() + Duration::from_millis(100);
    std::thread::scope(|scope| {
        for (i, e) in editors.iter_mut().enumerate() {
            let doc = &docs[i % docs.len()];
            scope.spawn(move || type_doc(e, doc, args, start));
        }
    });
    // The last answers.
    for e in &editors {
        for (id, _) in &e.sent {
            wait_answer(&e.server, *id, Duration::from_secs(60));
        }
    }
    let after = server.as_ref().map(LlamaServer::metrics);
    std::thread::sleep(Duration::from_millis(300));

    let mut report = Report {
        editors: n,
        warm_ms,
        server: before.zip(after).map(|(a, b)| ServerFigures::between(a, b)),
        ..Report::default()
    };
    let mut last = start;
    for (i, e) in editors.iter().enumerate() {
        let responses = e.server.responses();
        report.requests += e.sent.len();
        for (k, (id, at)) in e.sent.iter().enumerate() {
            let Some(r) = responses.iter().find(|r| r.id == json!(id)) else {
                report.errors += 1;
                continue;
            };
            last = last.max(r.at);
            if r.error.is_some() {
                report.errors += 1;
                continue;
            }
            let items = r.result["items"].as_array().map_or(0, Vec::len);
            let next_sent = e.sent.get(k + 1).map(|(_, t)| *t);
            if items > 0 {
                report
                    .answered
                    .push(r.at.duration_since(*at).as_secs_f64() * 1000.0);
            } else if next_sent.is_some_and(|t| r.at >= t) {
                report.superseded += 1;
            } else {
                report.empty += 1;
            }
        }
        let log = e.server.stderr();
        let log_path =
            std::env::temp_dir().join(format!("bench-team-{}-{n}-{i}.log", backend.name()));
        let _ = std::fs::write(&log_path, &log);
        for l in log[e.log_start..].lines() {
            if l.contains("method=textDocument/inlineCompletion")
                && l.contains(" done ")
                && l.contains("outcome=\"cached\"")
            {
                report.cached += 1;
            }
            if !l.contains("generation finished") {
                continue;
            }
            report.model_runs += 1;
            report.prompt_tokens += log_field(l, "prompt_tokens").unwrap_or(0);
            report.evaluated_tokens += log_field(l, "evaluated_tokens").unwrap_or(0);
            report.generated_tokens += log_field(l, "generated_tokens").unwrap_or(0);
            if l.contains("stop=Deadline") {
                report.deadline_stops += 1;
            }
        }
    }
    report.wall_s = last.duration_since(start).as_secs_f64();
    report.answered.sort_by(|a, b| a.partial_cmp(b).unwrap());
    for e in editors {
        let _ = e.server.shutdown();
    }
    if let Some(s) = &server {
        eprintln!("llama-server log: {}", s.0.log.display());
    }
    report
}

fn print_table(backend: Backend, reports: &[Report]) {
    println!();
    println!("{}", backend.describe());
    let header: Vec<String> = reports
        .iter()
        .map(|r| format!("{:>12}", format!("N={}", r.editors)))
        .collect();
    println!("{:<44}{}", "editors", header.join(""));
    let row = |name: &str, f: &dyn Fn(&Report) -> String| {
        let cells: Vec<String> = reports.iter().map(|r| format!("{:>12}", f(r))).collect();
        println!("{name:<44}{}", cells.join(""));
    };
    let per_s = |x: f64, s: f64| {
        if s > 0.0 {
            format!("{:.1}", x / s)
        } else {
            "-".into()
        }
    };
    row("keystrokes, all editors", &|r| r.requests.to_string());
    row("answered with a suggestion", &|r| {
        format!(
            "{:.0}%",
            100.0 * r.answered.len() as f64 / r.requests.max(1) as f64
        )
    });
    row("  of which from the cache", &|r| r.cached.to_string());
    row("superseded by the next keystroke", &|r| {
        r.superseded.to_string()
    });
    row("empty (nothing to suggest)", &|r| r.empty.to_string());
    row("errors / unanswered", &|r| r.errors.to_string());
    row("p50 latency per keystroke, answered (ms)", &|r| {
        format!("{:.0}", percentile(&r.answered, 0.5))
    });
    row("p95 latency per keystroke, answered (ms)", &|r| {
        format!("{:.0}", percentile(&r.answered, 0.95))
    });
    row("warm-up: open + first suggestion, slowest (s)", &|r| {
        format!("{:.1}", r.warm_ms / 1000.0)
    });
    row("replay wall time (s)", &|r| format!("{:.1}", r.wall_s));
    row("model runs", &|r| r.model_runs.to_string());
    row("  stopped by the time budget", &|r| {
        r.deadline_stops.to_string()
    });
    row("generated tokens (ghostline logs)", &|r| {
        r.generated_tokens.to_string()
    });
    row("evaluated prompt tokens (ghostline logs)", &|r| {
        r.evaluated_tokens.to_string()
    });
    row("generated tok/s, all editors, wall", &|r| {
        per_s(r.generated_tokens as f64, r.wall_s)
    });
    row("evaluated prompt tok/s, all editors, wall", &|r| {
        per_s(r.evaluated_tokens as f64, r.wall_s)
    });
    if reports.iter().any(|r| r.server.is_some()) {
        let srow = |name: &str, f: &dyn Fn(&ServerFigures, f64) -> String| {
            row(name, &|r| {
                r.server.as_ref().map_or("-".into(), |s| f(s, r.wall_s))
            });
        };
        srow("server: prompt tokens evaluated", &|s, _| {
            format!("{:.0}", s.prompt_tokens)
        });
        srow("server: prompt tokens from its cache", &|s, _| {
            format!("{:.0}", s.cached_tokens)
        });
        srow("server: generated tokens", &|s, _| {
            format!("{:.0}", s.predicted)
        });
        srow("server: prompt tok/s (its /metrics rate)", &|s, _| {
            format!("{:.1}", s.prompt_rate)
        });
        srow("server: generation tok/s (its /metrics rate)", &|s, _| {
            format!("{:.1}", s.predicted_rate)
        });
        srow("server: busy time, prompt + generation (s)", &|s, _| {
            format!("{:.1}", s.prompt_seconds + s.predicted_seconds)
        });
        srow("server: prompt tok/s, wall", &|s, wall| {
            per_s(s.prompt_tokens, wall)
        });
        srow("server: generated tok/s, wall", &|s, wall| {
            per_s(s.predicted, wall)
        });
        srow("server: busy slots per decode", &|s, _| {
            format!("{:.2}", s.busy_per_decode)
        });
    }
}

fn main() {
    let args = parse_args();
    let docs: Vec<Doc> = args.files.iter().map(|f| prepare(f, &args)).collect();
    let most = *args.editors.iter().max().unwrap_or(&1);
    println!(
        "bench-team: model {}, {} keystrokes per editor every {} ms{}, editors {:?}, \
         llama-server {} threads, {} context tokens per slot, {} cores",
        args.model.file_name().unwrap_or_default().to_string_lossy(),
        args.keys,
        args.interval.as_millis(),
        if args.wait {
            " after the previous answer"
        } else {
            " (not waiting for answers)"
        },
        args.editors,
        args.threads,
        args.slot_ctx,
        cores(),
    );
    for (i, d) in docs.iter().take(most).enumerate() {
        println!(
            "  editor {i}: {} ({} bytes before the cursor, {} after), types {:?}",
            d.name,
            d.before.len(),
            d.after.len(),
            d.typed
        );
    }
    println!(
        "All editors share this machine's {} cores: the absolute numbers are those of a small \
         CPU box; a GPU server changes them completely. The run measures how the pipeline \
         scales with the number of editors (one batching server vs. N separate engines).",
        cores()
    );
    let t0 = Instant::now();
    let mut all: Vec<(Backend, Vec<Report>)> = Vec::new();
    for &backend in &args.backends {
        let mut reports = Vec::new();
        for &n in &args.editors {
            eprintln!(
                "[{:>4.0} s] replaying: {} with {n} editor(s) …",
                t0.elapsed().as_secs_f64(),
                backend.name()
            );
            reports.push(replay(&args, backend, n, &docs));
        }
        all.push((backend, reports));
    }
    for (backend, reports) in &all {
        print_table(*backend, reports);
    }
    let local = all.iter().find(|(b, _)| *b == Backend::Local);
    for (backend, reports) in all.iter().filter(|(b, _)| *b != Backend::Local) {
        let Some((_, local)) = local else { break };
        println!();
        println!("{} / local, per N:", backend.name());
        for r in reports {
            let Some(l) = local.iter().find(|l| l.editors == r.editors) else {
                continue;
            };
            println!(
                "  N={}: p50 {:.0} / {:.0} ms, p95 {:.0} / {:.0} ms, answered {:.0}% / {:.0}%, generated tok/s (wall) {:.1} / {:.1}",
                r.editors,
                percentile(&r.answered, 0.5),
                percentile(&l.answered, 0.5),
                percentile(&r.answered, 0.95),
                percentile(&l.answered, 0.95),
                100.0 * r.answered.len() as f64 / r.requests.max(1) as f64,
                100.0 * l.answered.len() as f64 / l.requests.max(1) as f64,
                r.generated_tokens as f64 / r.wall_s.max(1e-9),
                l.generated_tokens as f64 / l.wall_s.max(1e-9),
            );
        }
    }
    println!();
    println!("total time {:.0} s", t0.elapsed().as_secs_f64());
}
