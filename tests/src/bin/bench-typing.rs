//! `bench-typing`: replays typing of a real source file into the language server, character by
//! character at a fixed interval (80 ms), sending `didChange` and an automatic
//! `textDocument/inlineCompletion` after each keystroke as an editor does, without waiting for
//! answers. Prints, for KV-cache reuse on and off (each in a fresh server, same keystrokes):
//! p50/p95 latency of answered requests, the share superseded by the next keystroke, cache
//! hits, and prompt vs. evaluated tokens and time to first token per model run (from the
//! server's log).
//!
//! In the same run, the same keystrokes are replayed against llama.cpp's own `llama-server`
//! (`/infill`, the llama.vscode path; see `ghostline_tests::peer`) when its binary is present
//! (`scripts/build-llama-server.sh` builds it outside the repository), and the ratios of the
//! latencies are printed.
//!
//! The file defaults to a Python standard-library module found on the machine; typing starts at
//! the first function definition after `--prefix-chars` characters. Ratios matter more than absolute times on
//! a shared machine.
//!
//! With `--context ROOT` the file is typed in place inside the workspace folder ROOT with
//! repository context on (after opening and editing the `--recent` files, which the recent-
//! files source then holds), and the replay also prints the prompt-start stability (issue 14,
//! item 2): of the model runs that built a repository context, the share whose blocks are
//! byte-identical to the previous run's (the digest the server logs at debug level for each
//! request's blocks). `--model fake` runs the server's deterministic fake backend (no model;
//! every keystroke that is not answered from the cache builds a context).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ghostline_tests::peer::{self, Peer};
use ghostline_tests::stats::{log_field, percentile};
use ghostline_tests::{editor_capabilities, file_uri, Server, Spawn};
use serde_json::{json, Value};

const USAGE: &str = "\
bench-typing: keystroke latency of the language server on a replayed typing session

USAGE:
    bench-typing [--model 1.5b|0.5b|PATH] [--file FILE] [--keys N] [--interval-ms MS]
                 [--prefix-chars N] [--threads N] [--runs on,off,peer] [--peer LLAMA_SERVER]
                 [--line-pause-ms MS] [--refresh N] [--wait]
                 [--context ROOT [--recent FILE,...] [--selection files|uses]]

--runs picks the replays: ghostline with KV reuse on, off, and the llama-server peer (default:
all three; the peer only when its binary exists).
--peer is the llama-server binary (default: $GHOSTLINE_PEER_BIN, else
~/.cache/ghostline/peer/llama-server, which scripts/build-llama-server.sh builds).
--line-pause-ms adds a pause before the first character of each line (0: steady typing).
--wait types each character only after the answer to the previous keystroke arrived (and at
least the interval after the previous character): every keystroke gets its own answer, so the
latency of each is measured (llama.vscode's figure of merit); without it keystrokes never wait
and superseded requests are counted.
--refresh sets the server's engine.reuseRefreshTokens (tokens re-evaluated at the start of a
shifted suffix; the server's default when absent).
--context types FILE (which must be under ROOT) in place, with ROOT as the workspace folder and
repository context on, and prints the share of context builds whose blocks are byte-identical
to the previous build's. --recent opens these files of ROOT and edits each once (in memory:
nothing is written) before typing; --selection sets repoContext.selection.
--model fake uses the server's fake backend (no model file).

Runs the ghostline binary of target/debug (or $GHOSTLINE_BIN).";

struct Args {
    model: PathBuf,
    file: PathBuf,
    keys: usize,
    interval: Duration,
    prefix_chars: usize,
    threads: Option<usize>,
    refresh: Option<usize>,
    wait: bool,
    runs: Vec<Run>,
    peer: PathBuf,
    line_pause: Duration,
    context: Option<PathBuf>,
    recent: Vec<PathBuf>,
    selection: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Run {
    ReuseOn,
    ReuseOff,
    Peer,
}

impl Run {
    fn name(self) -> &'static str {
        match self {
            Run::ReuseOn => "reuse on",
            Run::ReuseOff => "reuse off",
            Run::Peer => "llama-server",
        }
    }
}

fn default_file() -> PathBuf {
    let mut candidates: Vec<PathBuf> = Vec::new();
    for dir in ["/usr/lib", "/usr/local/lib"] {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if name.starts_with("python3") {
                    candidates.push(e.path().join("textwrap.py"));
                    candidates.push(e.path().join("heapq.py"));
                }
            }
        }
    }
    candidates.sort();
    candidates
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            eprintln!("no Python standard library found; pass --file");
            std::process::exit(2)
        })
}

fn parse_args() -> Args {
    let mut a = ghostline_tests::args::Args::parse(USAGE);
    let file = a.value::<PathBuf>("--file");
    let runs = a
        .list::<String>("--runs")
        .or_else(|| a.list("--only"))
        .map(|runs| {
            runs.iter()
                .map(|r| match r.as_str() {
                    "on" => Run::ReuseOn,
                    "off" => Run::ReuseOff,
                    "peer" => Run::Peer,
                    other => a.die(&format!("unknown run {other} (on, off, peer)")),
                })
                .collect::<Vec<_>>()
        });
    let mut args = Args {
        model: a.model(),
        file: PathBuf::new(),
        keys: a.get("--keys", 300),
        interval: Duration::from_millis(a.get("--interval-ms", 80)),
        prefix_chars: a.get("--prefix-chars", 4000),
        threads: a.value("--threads"),
        refresh: a.value("--refresh"),
        wait: a.flag("--wait"),
        runs: Vec::new(),
        peer: a.value("--peer").unwrap_or_else(peer::default_binary),
        line_pause: Duration::from_millis(a.get("--line-pause-ms", 0)),
        context: a.value("--context"),
        recent: a.list("--recent").unwrap_or_default(),
        selection: a.value("--selection"),
    };
    a.finish();
    args.file = file.unwrap_or_else(default_file);
    args.runs = runs.unwrap_or_else(|| {
        let mut all = vec![Run::ReuseOn, Run::ReuseOff];
        if args.peer.exists() {
            all.push(Run::Peer);
        } else {
            eprintln!(
                "no llama-server at {} (scripts/build-llama-server.sh builds it): the peer replay is skipped",
                args.peer.display()
            );
        }
        all
    });
    args
}

/// Figures of one replay.
#[derive(Debug, Default)]
struct Report {
    requests: usize,
    answered: Vec<f64>,
    superseded: usize,
    empty: usize,
    errors: usize,
    cached: usize,
    model_runs: usize,
    first_token_ms: Vec<f64>,
    total_ms: Vec<f64>,
    deadline_stops: usize,
    prompt_tokens: usize,
    reused_tokens: usize,
    evaluated_tokens: usize,
    generated_tokens: usize,
    /// Requests that built a repository context (`--context`).
    contexts: usize,
    /// Of those after the first, the ones whose blocks equal the previous build's.
    contexts_same: usize,
}

/// Paces a replay: one keystroke per interval, plus the pause before each line's first
/// non-blank character.
struct Pacer {
    next: Instant,
    interval: Duration,
    line_pause: Duration,
    line_so_far: String,
}

impl Pacer {
    fn new(args: &Args) -> Self {
        Pacer {
            next: Instant::now(),
            interval: args.interval,
            line_pause: args.line_pause,
            line_so_far: String::new(),
        }
    }

    /// The answer to the last keystroke arrived: the next one follows an interval from now.
    fn resume(&mut self) {
        self.next = self.next.max(Instant::now());
    }

    /// Sleeps until keystroke `k` (typing `ch`) is due.
    fn wait(&mut self, k: usize, ch: char) {
        if !ch.is_whitespace() && self.line_so_far.trim().is_empty() && k > 0 {
            self.next += self.line_pause;
        }
        if let Some(wait) = self.next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        self.next += self.interval;
        if ch == '\n' {
            self.line_so_far.clear();
        } else {
            self.line_so_far.push(ch);
        }
    }
}

fn utf16_len(s: &str) -> u32 {
    s.encode_utf16().count() as u32
}

/// The server's settings for a replay: the model (or the fake backend), repository context
/// as `--context` says.
fn replay_options(args: &Args) -> Value {
    let mut options = json!({
        "model": args.model,
        "repoContext": {"enabled": args.context.is_some()},
        "engine": {},
        // Only the warm-up request is invoked: let it fill the cache whatever the machine's load.
        "invokedTimeBudgetMs": 600000,
    });
    if let Some(t) = args.threads {
        options["threads"] = json!(t);
    }
    if let Some(n) = args.refresh {
        options["engine"]["reuseRefreshTokens"] = json!(n);
    }
    if args.model == Path::new("fake") {
        options["backend"] = json!("fake");
    }
    if let Some(selection) = &args.selection {
        options["repoContext"]["selection"] = json!(selection);
    }
    options
}

/// A ready server with the typed document open (and, with `--context`, the workspace
/// indexed and the `--recent` files opened and edited); the document's URI.
fn start(args: &Args, before: &str, after: &str, reuse: bool) -> (Server, String) {
    let mut options = replay_options(args);
    if !reuse {
        // Without reuse every run evaluates the whole prompt: give it the time to finish so
        // that its cost can be compared.
        options["timeBudgetMs"] = json!(600000);
    }
    options["engine"]["reuse"] = json!(reuse);
    let Some(root) = &args.context else {
        let mut server = Server::spawn(Spawn::default());
        server.initialize(editor_capabilities(), options);
        server.wait_status(0, "ready", Duration::from_secs(300));
        let uri = file_uri("/tmp/ghostline-bench/typing.py");
        server.open(&uri, "python", &format!("{before}{after}"));
        return (server, uri);
    };
    let mut server = Server::spawn(Spawn {
        args: vec![
            "--log-level".into(),
            "info,ghostline_lsp::workspace=debug".into(),
        ],
        ..Spawn::default()
    });
    server.initialize_in(&[root.as_path()], editor_capabilities(), options);
    server.wait_status(0, "ready", Duration::from_secs(300));
    if !server.wait_stderr(Duration::from_secs(300), |l| {
        l.contains("workspace indexed")
    }) {
        eprintln!("warning: the workspace walk did not finish in 300 s");
    }
    for (i, path) in args.recent.iter().enumerate() {
        open_and_edit(&server, path, i);
    }
    let uri = file_uri(&args.file.to_string_lossy());
    server.open(&uri, "python", &format!("{before}{after}"));
    (server, uri)
}

/// Opens `path` and inserts a comment line into its first function body (in the server's
/// copy only).
fn open_and_edit(server: &Server, path: &Path, n: usize) {
    let text = std::fs::read_to_string(path).expect("read a --recent file");
    let uri = file_uri(&path.to_string_lossy());
    server.open(&uri, "python", &text);
    let lines: Vec<&str> = text.lines().collect();
    let body = lines
        .iter()
        .position(|l| l.trim_start().starts_with("def "))
        .map_or(0, |i| i + 1);
    let indent: String = lines
        .get(body)
        .map_or("", |l| &l[..l.len() - l.trim_start().len()])
        .to_owned();
    let line = format!("{indent}# edited by bench-typing ({n})\n");
    server.notify(
        "textDocument/didChange",
        json!({
            "textDocument": {"uri": uri, "version": 2},
            "contentChanges": [{"range": {"start": {"line": body, "character": 0}, "end": {"line": body, "character": 0}}, "text": line}],
        }),
    );
}

/// Of the context builds logged in `log`, how many, and how many after the first had the
/// same digest as the one before.
fn context_stability(log: &str) -> (usize, usize) {
    let digests: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("repository context"))
        .filter_map(|l| l.split(" digest=").nth(1))
        .map(|d| d.split_whitespace().next().unwrap_or(""))
        .collect();
    let same = digests.windows(2).filter(|w| w[0] == w[1]).count();
    (digests.len(), same)
}

fn replay(args: &Args, before: &str, typed: &str, after: &str, reuse: bool) -> Report {
    let (mut server, uri) = start(args, before, after, reuse);
    // Warm up like an editor that just opened the file: one request at the start position.
    let (mut line, mut col) = (
        before.matches('\n').count() as u32,
        utf16_len(before.rsplit('\n').next().unwrap_or("")),
    );
    let warm = server.send_inline(&uri, line, col, true);
    let _ = server.response(warm, Duration::from_secs(900));
    let log_start = server.stderr().len();

    let mut sent: Vec<(i64, Instant)> = Vec::new();
    let mut pacer = Pacer::new(args);
    for (k, ch) in typed.chars().enumerate() {
        pacer.wait(k, ch);
        let version = k as i32 + 2;
        let mut buf = [0u16; 2];
        server.notify(
            "textDocument/didChange",
            json!({
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [{"range": {"start": {"line": line, "character": col}, "end": {"line": line, "character": col}}, "text": ch.to_string()}],
            }),
        );
        if ch == '\n' {
            line += 1;
            col = 0;
        } else {
            col += ch.encode_utf16(&mut buf).len() as u32;
        }
        let id = server.send_inline(&uri, line, col, false);
        sent.push((id, Instant::now()));
        if args.wait {
            let _ = server.response(id, Duration::from_secs(60));
            pacer.resume();
        }
    }
    // Let the last requests finish.
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && sent.iter().any(|(id, _)| server.response_count(*id) == 0) {
        std::thread::sleep(Duration::from_millis(50));
    }
    // Let the model run that typing left going finish (without reuse it evaluates the whole
    // prompt, which takes long), so that its cost is measured.
    let finished = |s: &Server| {
        s.stderr()[log_start..]
            .matches("generation finished")
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(240);
    while finished(&server) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(300));

    let responses = server.responses();
    let mut report = Report {
        requests: sent.len(),
        ..Report::default()
    };
    for (i, (id, at)) in sent.iter().enumerate() {
        let Some(r) = responses.iter().find(|r| r.id == json!(id)) else {
            report.errors += 1;
            continue;
        };
        if r.error.is_some() {
            report.errors += 1;
            continue;
        }
        let items = r.result["items"].as_array().map_or(0, Vec::len);
        let next_sent = sent.get(i + 1).map(|(_, t)| *t);
        if items > 0 {
            report
                .answered
                .push(r.at.duration_since(*at).as_secs_f64() * 1000.0);
        } else if next_sent.is_some_and(|n| r.at >= n) {
            report.superseded += 1;
        } else {
            report.empty += 1;
        }
    }
    report.answered.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let log = server.stderr();
    let log_path = std::env::temp_dir().join(format!(
        "bench-typing-reuse-{}.log",
        if reuse { "on" } else { "off" }
    ));
    if std::fs::write(&log_path, &log).is_ok() {
        eprintln!("server log: {}", log_path.display());
    }
    // The warm-up request built the first context: the typing compares with it.
    (report.contexts, report.contexts_same) = context_stability(&log);
    for l in log[log_start..].lines() {
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
        report.reused_tokens += log_field(l, "reused_tokens").unwrap_or(0)
            + log_field(l, "shifted_tokens").unwrap_or(0);
        report.evaluated_tokens += log_field(l, "evaluated_tokens").unwrap_or(0);
        report.generated_tokens += log_field(l, "generated_tokens").unwrap_or(0);
        if log_field(l, "generated_tokens").unwrap_or(0) > 0 {
            report
                .first_token_ms
                .push(log_field(l, "first_token_ms").unwrap_or(0) as f64);
        }
        if l.contains("stop=Deadline") {
            report.deadline_stops += 1;
        } else {
            report
                .total_ms
                .push(log_field(l, "total_ms").unwrap_or(0) as f64);
        }
    }
    report
        .first_token_ms
        .sort_by(|a, b| a.partial_cmp(b).unwrap());
    report.total_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let _ = server.shutdown();
    report
}

/// The same keystrokes against llama-server's `/infill`: one request per keystroke, the one
/// still in flight aborted by the next keystroke (see `ghostline_tests::peer`).
fn replay_peer(args: &Args, before: &str, typed: &str, after: &str) -> Report {
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get().min(8))
            .unwrap_or(2)
    });
    let server = Peer::start(&args.peer, &args.model, threads, 4096).unwrap_or_else(|e| {
        eprintln!("bench-typing: {e}");
        std::process::exit(1)
    });
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let mut doc = format!("{before}{after}");
    let mut cursor = before.len();
    // Warm up like an editor that just opened the file.
    if let Some(_warm) = server.infill(
        usize::MAX,
        &peer::infill_body(&doc, cursor),
        done_tx.clone(),
    ) {
        let _ = done_rx.recv_timeout(Duration::from_secs(900));
    }
    let mut sent: Vec<Instant> = Vec::new();
    let mut in_flight: Option<(usize, std::net::TcpStream)> = None;
    let mut outcomes: Vec<Option<peer::Outcome>> = Vec::new();
    let mut pacer = Pacer::new(args);
    let mut aborted = vec![false; typed.chars().count()];
    for (k, ch) in typed.chars().enumerate() {
        pacer.wait(k, ch);
        while let Ok(o) = done_rx.try_recv() {
            let i = o.index;
            outcomes[i] = Some(o);
        }
        if let Some((i, stream)) = in_flight.take() {
            if outcomes[i].is_none() {
                aborted[i] = true;
                peer::abort(&stream);
            }
        }
        doc.insert(cursor, ch);
        cursor += ch.len_utf8();
        outcomes.push(None);
        sent.push(Instant::now());
        in_flight = server
            .infill(k, &peer::infill_body(&doc, cursor), done_tx.clone())
            .map(|s| (k, s));
        if args.wait {
            if let Ok(o) = done_rx.recv_timeout(Duration::from_secs(60)) {
                let i = o.index;
                outcomes[i] = Some(o);
            }
            pacer.resume();
        }
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while outcomes.iter().any(Option::is_none) && Instant::now() < deadline {
        if let Ok(o) = done_rx.recv_timeout(Duration::from_millis(100)) {
            let i = o.index;
            outcomes[i] = Some(o);
        }
    }
    let mut report = Report {
        requests: sent.len(),
        ..Report::default()
    };
    for (i, at) in sent.iter().enumerate() {
        let Some(o) = &outcomes[i] else {
            report.errors += 1;
            continue;
        };
        let Some(body) = &o.body else {
            if aborted[i] {
                report.superseded += 1;
            } else {
                report.errors += 1;
            }
            continue;
        };
        let t = &body["timings"];
        let n = |v: &Value| v.as_u64().unwrap_or(0) as usize;
        report.model_runs += 1;
        report.evaluated_tokens += n(&t["prompt_n"]);
        report.reused_tokens += n(&t["cache_n"]);
        report.prompt_tokens += n(&t["prompt_n"]) + n(&t["cache_n"]);
        report.generated_tokens += n(&t["predicted_n"]);
        if let Some(ms) = t["prompt_ms"].as_f64() {
            report.first_token_ms.push(ms);
        }
        if let (Some(p), Some(g)) = (t["prompt_ms"].as_f64(), t["predicted_ms"].as_f64()) {
            report.total_ms.push(p + g);
        }
        let content = body["content"].as_str().unwrap_or("");
        if content.trim().is_empty() {
            report.empty += 1;
        } else {
            report
                .answered
                .push(o.at.duration_since(*at).as_secs_f64() * 1000.0);
        }
    }
    report.answered.sort_by(|a, b| a.partial_cmp(b).unwrap());
    report
        .first_token_ms
        .sort_by(|a, b| a.partial_cmp(b).unwrap());
    report.total_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    eprintln!("llama-server log: {}", server.log().display());
    report
}

fn main() {
    let args = parse_args();
    let text = std::fs::read_to_string(&args.file).expect("read the file");
    let text = text.replace("\r\n", "\n");
    // Start typing at the first function definition at or after `prefix_chars` (code, not a
    // docstring or comment block), else at the first line after it.
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
    // Type whole lines (at least `keys` characters); the rest of the file follows on the
    // line below the cursor, as when writing new code above existing code.
    let mut typed: String = text[cut..].chars().take(args.keys).collect();
    if let Some(nl) = text[cut + typed.len()..].find('\n') {
        typed = text[cut..cut + typed.len() + nl].to_owned();
    }
    let end = (cut + typed.len() + 1).min(text.len());
    let before = &text[..cut];
    let after = format!("\n{}", &text[end..]);
    let after = after.as_str();
    println!(
        "bench-typing: {} keystrokes of {} (from byte {cut}) at {} ms{}, {} ms pause per line, model {}",
        typed.chars().count(),
        args.file.display(),
        args.interval.as_millis(),
        if args.wait { " after each answer" } else { "" },
        args.line_pause.as_millis(),
        args.model.file_name().unwrap_or_default().to_string_lossy()
    );

    let runs: Vec<(Run, Report)> = args
        .runs
        .iter()
        .map(|&run| {
            eprintln!("replaying: {} …", run.name());
            let report = match run {
                Run::ReuseOn => replay(&args, before, &typed, after, true),
                Run::ReuseOff => replay(&args, before, &typed, after, false),
                Run::Peer => replay_peer(&args, before, &typed, after),
            };
            (run, report)
        })
        .collect();

    let row = |name: &str, f: &dyn Fn(&Report) -> String| {
        let cells: Vec<String> = runs.iter().map(|(_, r)| format!("{:>14}", f(r))).collect();
        println!("{name:<34}{}", cells.join(""));
    };
    let header: Vec<String> = runs
        .iter()
        .map(|(run, _)| format!("{:>14}", run.name()))
        .collect();
    println!("{:<34}{}", "", header.join(""));
    row("requests", &|r| r.requests.to_string());
    row("answered with a suggestion", &|r| {
        format!(
            "{} ({:.0}%)",
            r.answered.len(),
            100.0 * r.answered.len() as f64 / r.requests.max(1) as f64
        )
    });
    row("  of which from the cache", &|r| r.cached.to_string());
    row("superseded by the next keystroke", &|r| {
        format!(
            "{:.0}%",
            100.0 * r.superseded as f64 / r.requests.max(1) as f64
        )
    });
    row("empty (nothing to suggest)", &|r| r.empty.to_string());
    row("errors / unanswered", &|r| r.errors.to_string());
    row("p50 latency, answered (ms)", &|r| {
        format!("{:.0}", percentile(&r.answered, 0.5))
    });
    row("p95 latency, answered (ms)", &|r| {
        format!("{:.0}", percentile(&r.answered, 0.95))
    });
    row("model runs", &|r| r.model_runs.to_string());
    row("  stopped by the time budget", &|r| {
        r.deadline_stops.to_string()
    });
    row("p50 first token, model run (ms)", &|r| {
        format!("{:.0}", percentile(&r.first_token_ms, 0.5))
    });
    row("p50 whole model run, finished (ms)", &|r| {
        format!("{:.0}", percentile(&r.total_ms, 0.5))
    });
    row("prompt tokens / run", &|r| {
        format!("{:.0}", r.prompt_tokens as f64 / r.model_runs.max(1) as f64)
    });
    row("reused tokens / run", &|r| {
        format!("{:.0}", r.reused_tokens as f64 / r.model_runs.max(1) as f64)
    });
    row("evaluated tokens / run", &|r| {
        format!(
            "{:.1}",
            r.evaluated_tokens as f64 / r.model_runs.max(1) as f64
        )
    });
    row("generated tokens / run", &|r| {
        format!(
            "{:.1}",
            r.generated_tokens as f64 / r.model_runs.max(1) as f64
        )
    });
    if args.context.is_some() {
        row("model runs that built a context", &|r| {
            r.contexts.to_string()
        });
        row("  blocks identical to the previous", &|r| {
            format!(
                "{} ({:.1}%)",
                r.contexts_same,
                100.0 * r.contexts_same as f64 / r.contexts.saturating_sub(1).max(1) as f64
            )
        });
    }
    let get = |want: Run| runs.iter().find(|(r, _)| *r == want).map(|(_, r)| r);
    if let (Some(on), Some(off)) = (get(Run::ReuseOn), get(Run::ReuseOff)) {
        let (a, b) = (
            percentile(&on.first_token_ms, 0.5),
            percentile(&off.first_token_ms, 0.5),
        );
        println!(
            "p50 first token of a model run, reuse off / on: {:.1}x",
            b / a
        );
        println!("(reuse off runs with a 10-minute time budget so that its model runs finish)");
    }
    if let (Some(on), Some(peer)) = (get(Run::ReuseOn), get(Run::Peer)) {
        for (name, p) in [("p50", 0.5), ("p95", 0.95)] {
            let (a, b) = (percentile(&on.answered, p), percentile(&peer.answered, p));
            println!(
                "{name} answered latency, ghostline / llama-server: {a:.0} / {b:.0} ms = {:.3}",
                a / b
            );
        }
        println!(
            "p50 first token of a model run, ghostline / llama-server: {:.2}",
            percentile(&on.first_token_ms, 0.5) / percentile(&peer.first_token_ms, 0.5)
        );
        println!(
            "(llama-server: /infill as llama.vscode sends it, --cache-reuse 256, same model and threads; \
             its first-token and whole-run rows are its own prompt_ms and prompt_ms + predicted_ms)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::context_stability;

    #[test]
    fn context_stability_counts_builds_equal_to_the_one_before() {
        let log = "\
DEBUG ghostline_lsp::workspace: repository context blocks=1 paths=a.py digest=00aa
INFO generation finished prompt_tokens=10
DEBUG ghostline_lsp::workspace: repository context blocks=1 paths=a.py digest=00aa
DEBUG ghostline_lsp::workspace: repository context blocks=2 paths=a.py,b.py digest=00bb
DEBUG ghostline_lsp::workspace: repository context blocks=1 paths=a.py digest=00aa
DEBUG ghostline_lsp::workspace: repository context blocks=1 paths=a.py digest=00aa
";
        assert_eq!(context_stability(log), (5, 2));
        assert_eq!(context_stability(""), (0, 0));
    }
}
