//! `bench-session`: replays an editing session the way a user moves through code, and prints
//! the time to the first suggestion for each kind of move — open a file, jump within it, return
//! to a file seen before, restart the editor, type — for ghostline and, in the same run with the
//! same model and threads, for llama.cpp's `llama-server` driven as llama.vscode drives it.
//!
//! The session: three real files from different projects (by default a Python standard-library
//! module, a Rust file of a crate in the cargo registry and a module of pip). In each file the
//! cursor goes to a new line inside a function body (the client inserts a line break and the
//! next line's indentation, as pressing Enter does) and the client asks for a suggestion the way
//! an editor does: an automatic request, and again 500 ms after each empty answer, until one
//! brings text (at most `--cap-s` seconds). Per file: open, one or two jumps, a few typed lines
//! (each keystroke waits for its answer), then the session returns to an earlier file, with the
//! cursor where it was left there (as an editor restores it when switching back to a tab);
//! once, near the end, the server is restarted and the files reopened, the cursor again where
//! it was; then a jump to a new place of a file and a return to another. The inserted text is
//! removed after each place, so every place sees the original file. Moves: 3 opens, 6 jumps,
//! 3 returns, 1 restart.
//!
//! The peer gets the same moves: llama.vscode's `/infill` bodies (`ghostline_tests::peer`), one
//! warm-up request (`n_predict` 0) when a file is opened or switched to, as llama.vscode sends
//! on those events (counted in the time to the first suggestion: it is part of the wait), and
//! the same polling. Repository context is off in both (the peer gets no
//! extra chunks). Each ghostline run starts with an empty cache directory of its own (saved KV
//! states of earlier runs do not count; the restart finds what the run saved). Ratios matter more than absolute times on a shared machine; run nothing else
//! meanwhile.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ghostline_tests::args::Args;
use ghostline_tests::peer::{self, Peer};
use ghostline_tests::stats::log_field;
use ghostline_tests::{editor_capabilities, file_uri, Server, Spawn, TIMEOUT};
use serde_json::{json, Value};

const USAGE: &str = "\
bench-session: time to first suggestion when opening, jumping, returning, restarting, typing

USAGE:
    bench-session [--model 1.5b|0.5b|PATH] [--files A,B,C] [--threads N] [--keys N]
                  [--cap-s S] [--runs ghostline,peer] [--peer LLAMA_SERVER]
                  [--settings JSON] [--think-s S]

--files replaces the three default files (Python stdlib heapq.py, ropey's rope.rs, a pip
module). --keys is the number of keystrokes typed per file (default 30). --cap-s is the longest
wait for one suggestion (default 90). --settings adds server settings (JSON object) to the
ghostline runs, e.g. to compare windows. --think-s is how long the user reads before each move
(open, jump, return, restart; default 0: moves follow each other at once), the idle time a
server may use to prepare (ghostline evaluates ahead of the cursor then). The peer runs when its binary exists
(scripts/build-llama-server.sh).";

/// One move of the session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Open,
    Jump,
    Return,
    Restart,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Open => "open",
            Kind::Jump => "jump",
            Kind::Return => "return",
            Kind::Restart => "restart",
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Step {
    /// Go to place `place` of file `file` and wait for a suggestion.
    Visit {
        file: usize,
        place: usize,
        kind: Kind,
    },
    /// Type at the last place of `file`.
    Type { file: usize },
    /// Restart the server (the editor restarts; its open files are reopened).
    Restart,
}

/// `Step::Visit::place` meaning "where the cursor was left in that file" (an editor restores it
/// when the user switches back to a tab or reopens the workspace).
const LEFT: usize = usize::MAX;

fn session() -> Vec<Step> {
    use Kind::{Jump, Open, Return};
    use Step::{Type, Visit};
    let visit = |file, place, kind| Visit { file, place, kind };
    vec![
        visit(0, 0, Open),
        visit(0, 1, Jump),
        visit(0, 2, Jump),
        Type { file: 0 },
        visit(1, 0, Open),
        visit(1, 1, Jump),
        visit(1, 2, Jump),
        Type { file: 1 },
        // Back to the first file, where its cursor was.
        visit(0, LEFT, Return),
        visit(2, 0, Open),
        visit(2, 1, Jump),
        Type { file: 2 },
        visit(1, LEFT, Return),
        // The editor restarts and reopens its files; the cursor is where it was.
        Step::Restart,
        visit(1, LEFT, Kind::Restart),
        // A new place in a file not visited since the restart, then a file switched back to.
        visit(0, 0, Jump),
        visit(2, LEFT, Return),
    ]
}

/// A file of the session and its places (byte offsets of line ends inside function bodies).
struct File {
    path: PathBuf,
    language: &'static str,
    text: String,
    places: Vec<usize>,
}

impl File {
    fn load(path: &Path) -> File {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let language = if path.extension().is_some_and(|e| e == "rs") {
            "rust"
        } else {
            "python"
        };
        let places = [0.3, 0.55, 0.8]
            .iter()
            .map(|f| {
                body_line_end(&text, *f)
                    .unwrap_or_else(|| panic!("no function body line in {}", path.display()))
            })
            .collect();
        File {
            path: path.to_owned(),
            language,
            text,
            places,
        }
    }

    fn uri(&self) -> String {
        file_uri(&self.path.to_string_lossy())
    }
}

fn indent(line: &str) -> &str {
    &line[..line.len() - line.trim_start().len()]
}

/// The end of the first line at or after `fraction` of the file that is inside a function body
/// and followed by a line of the same indentation (so a new line there continues the body).
fn body_line_end(text: &str, fraction: f64) -> Option<usize> {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut offsets = Vec::with_capacity(lines.len());
    let mut at = 0;
    for l in &lines {
        offsets.push(at);
        at += l.len() + 1;
    }
    let start = (lines.len() as f64 * fraction) as usize;
    (start..lines.len().saturating_sub(1)).find_map(|i| {
        let (l, next) = (lines[i], lines[i + 1]);
        let ind = indent(l);
        let in_function = lines[i.saturating_sub(60)..i].iter().rev().any(|p| {
            let t = p.trim_start();
            indent(p).len() < ind.len()
                && (t.starts_with("def ") || t.contains("fn ") && t.trim_end().ends_with('{'))
        });
        let plain = |s: &str| {
            let t = s.trim();
            !t.is_empty()
                && !t.starts_with('#')
                && !t.starts_with("//")
                && !t.starts_with('"')
                && !t.starts_with('\'')
                && !t.ends_with(':')
                && !t.ends_with('{')
                && !t.ends_with(',')
                && !t.ends_with('\\')
        };
        let in_docstring = || {
            let before = &text[..offsets[i]];
            (before.matches("\"\"\"").count() + before.matches("\'\'\'").count()) % 2 == 1
        };
        (!ind.is_empty()
            && indent(next) == ind
            && plain(l)
            && plain(next)
            && in_function
            && !in_docstring())
        .then(|| offsets[i] + l.len())
    })
}

/// LSP position (line, UTF-16 column) of byte `offset`.
fn position(text: &str, offset: usize) -> (u32, u32) {
    let before = &text[..offset];
    let line = before.matches('\n').count() as u32;
    let col = before
        .rsplit('\n')
        .next()
        .unwrap_or("")
        .encode_utf16()
        .count() as u32;
    (line, col)
}

/// What a client of either server can do.
trait Driver {
    fn open(&mut self, file: &File, text: &str);
    fn focus(&mut self, file: &File, text: &str, cursor: usize);
    /// Replaces `range` of the document (its text before the edit is `before`).
    fn edit(&mut self, file: &File, before: &str, range: (usize, usize), new: &str);
    /// One automatic request; whether it brought text.
    fn suggest(&mut self, file: &File, text: &str, cursor: usize) -> bool;
    fn restart(&mut self);
    /// The requests that follow are keystrokes (`true`) or a move's (`false`).
    fn typing(&mut self, _on: bool) {}
}

struct Ghostline {
    server: Option<Server>,
    settings: Value,
    /// The run's own cache directory (`XDG_CACHE_HOME` of its servers): saved KV states of
    /// earlier runs must not make a file "never seen" warm, and the restart in the middle must
    /// find what this run saved.
    cache_home: PathBuf,
    versions: std::collections::HashMap<String, i32>,
    /// Logs of the servers stopped by restarts.
    old_logs: String,
    /// Whether requests are keystrokes now, and the ids of the current server's keystroke
    /// requests.
    typing: bool,
    keystroke_ids: std::collections::HashSet<i64>,
    /// Inline completion requests by outcome, keystrokes and moves apart (from the logs).
    outcomes: [std::collections::BTreeMap<String, usize>; 2],
}

impl Ghostline {
    fn start(settings: &Value) -> Ghostline {
        let cache_home =
            std::env::temp_dir().join(format!("ghostline-session-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&cache_home);
        std::fs::create_dir_all(&cache_home).expect("cache directory of the run");
        let mut g = Ghostline {
            server: None,
            settings: settings.clone(),
            cache_home,
            versions: Default::default(),
            old_logs: String::new(),
            typing: false,
            keystroke_ids: Default::default(),
            outcomes: Default::default(),
        };
        g.spawn();
        g
    }

    fn spawn(&mut self) {
        let mut spawn = Spawn::default();
        spawn.env.push((
            "XDG_CACHE_HOME".into(),
            self.cache_home.to_string_lossy().into_owned(),
        ));
        let mut server = Server::spawn(spawn);
        server.initialize(editor_capabilities(), self.settings.clone());
        server.wait_status(0, "ready", Duration::from_secs(300));
        self.server = Some(server);
        self.versions.clear();
    }

    fn server(&mut self) -> &mut Server {
        self.server.as_mut().expect("server")
    }

    /// Counts the outcomes of the inline completion requests in `log` (the log of the server
    /// being stopped), keystrokes apart.
    fn harvest(&mut self, log: &str) {
        for l in log
            .lines()
            .filter(|l| l.contains("method=textDocument/inlineCompletion") && l.contains(" done "))
        {
            let Some(outcome) = l
                .split("outcome=\"")
                .nth(1)
                .and_then(|o| o.split('"').next())
            else {
                continue;
            };
            let id = log_field(l, "id").map(|id| id as i64);
            let typing = id.is_some_and(|id| self.keystroke_ids.contains(&id));
            *self.outcomes[usize::from(typing)]
                .entry(outcome.to_owned())
                .or_default() += 1;
        }
        self.keystroke_ids.clear();
    }
}

impl Driver for Ghostline {
    fn open(&mut self, file: &File, text: &str) {
        self.versions.insert(file.uri(), 1);
        self.server().open(&file.uri(), file.language, text);
    }

    fn focus(&mut self, _file: &File, _text: &str, _cursor: usize) {}

    fn edit(&mut self, file: &File, before: &str, range: (usize, usize), new: &str) {
        let uri = file.uri();
        let version = {
            let v = self.versions.entry(uri.clone()).or_insert(1);
            *v += 1;
            *v
        };
        let (l1, c1) = position(before, range.0);
        let (l2, c2) = position(before, range.1);
        self.server().notify(
            "textDocument/didChange",
            json!({
                "textDocument": {"uri": uri, "version": version},
                "contentChanges": [{"range": {"start": {"line": l1, "character": c1}, "end": {"line": l2, "character": c2}}, "text": new}],
            }),
        );
    }

    fn suggest(&mut self, file: &File, text: &str, cursor: usize) -> bool {
        let (line, col) = position(text, cursor);
        let id = self.server().send_inline(&file.uri(), line, col, false);
        if self.typing {
            self.keystroke_ids.insert(id);
        }
        let result = self.server().response(id, TIMEOUT).ok();
        result["items"].as_array().is_some_and(|a| !a.is_empty())
    }

    fn restart(&mut self) {
        if let Some(s) = self.server.take() {
            let log = s.stderr();
            self.harvest(&log);
            self.old_logs.push_str(&log);
            let _ = s.shutdown();
        }
        self.spawn();
    }

    fn typing(&mut self, on: bool) {
        self.typing = on;
    }
}

struct PeerDriver {
    peer: Peer,
}

impl PeerDriver {
    fn request(&self, body: &Value) -> Option<Value> {
        let (tx, rx) = mpsc::channel();
        self.peer.infill(0, body, tx)?;
        rx.recv_timeout(Duration::from_secs(300)).ok()?.body
    }
}

impl Driver for PeerDriver {
    fn open(&mut self, _file: &File, _text: &str) {}

    fn focus(&mut self, _file: &File, text: &str, cursor: usize) {
        // llama.vscode warms the server's cache when a file is opened or switched to.
        let mut body = peer::infill_body(text, cursor);
        body["n_predict"] = json!(0);
        let _ = self.request(&body);
    }

    fn edit(&mut self, _file: &File, _before: &str, _range: (usize, usize), _new: &str) {}

    fn suggest(&mut self, _file: &File, text: &str, cursor: usize) -> bool {
        self.request(&peer::infill_body(text, cursor))
            .and_then(|b| b["content"].as_str().map(|c| !c.trim().is_empty()))
            .unwrap_or(false)
    }

    fn restart(&mut self) {
        // The peer is a separate server the editor does not restart; its cache survives.
    }
}

/// Figures of one run.
#[derive(Default)]
struct Report {
    /// Per kind: time to the first suggestion in ms, `None` when none came within the cap.
    moves: Vec<(Kind, Option<f64>)>,
    /// Per keystroke: latency in ms and whether the answer brought text.
    keys: Vec<(f64, bool)>,
    /// Model runs that ended, and those stopped by their time limit (ghostline's log).
    model_runs: usize,
    budget_stops: usize,
    /// Model runs cancelled by a later edit or move (ghostline's log).
    cancelled_runs: usize,
    /// Inline completion requests by outcome (ghostline's log): moves', keystrokes'.
    outcomes: [std::collections::BTreeMap<String, usize>; 2],
    /// Prompt starts evaluated ahead of the cursor, and requests that started from one.
    prefills: usize,
    prefilled_starts: usize,
    /// Model runs that asked with the small window of a cold place.
    cold_runs: usize,
}

/// Asks until a suggestion comes: again 500 ms after each empty answer was asked for. The time
/// counts from `start` (the user's move, before the client's warm-up request).
fn first_suggestion(
    d: &mut dyn Driver,
    file: &File,
    text: &str,
    cursor: usize,
    start: Instant,
    cap: Duration,
) -> Option<f64> {
    loop {
        let asked = Instant::now();
        if d.suggest(file, text, cursor) {
            return Some(start.elapsed().as_secs_f64() * 1000.0);
        }
        if start.elapsed() > cap {
            return None;
        }
        std::thread::sleep(Duration::from_millis(500).saturating_sub(asked.elapsed()));
    }
}

/// How the session is replayed.
#[derive(Debug, Clone, Copy)]
struct Pace {
    /// Keystrokes typed per file.
    keys: usize,
    /// The longest wait for one suggestion.
    cap: Duration,
    /// The pause before each move (the user reads).
    think: Duration,
}

fn run(d: &mut dyn Driver, files: &[File], pace: Pace, label: &str) -> Report {
    let Pace { keys, cap, think } = pace;
    let mut report = Report::default();
    let mut opened = vec![false; files.len()];
    let mut last_place = vec![0; files.len()];
    for step in session() {
        match step {
            Step::Restart => {
                eprintln!("{label}: restart");
                d.restart();
                for (f, file) in files.iter().enumerate() {
                    if opened[f] {
                        d.open(file, &file.text);
                    }
                }
            }
            Step::Visit {
                file: f,
                place,
                kind,
            } => {
                std::thread::sleep(think);
                let file = &files[f];
                if !opened[f] {
                    d.open(file, &file.text);
                    opened[f] = true;
                }
                let place = if place == LEFT { last_place[f] } else { place };
                last_place[f] = place;
                // Enter at the end of the place's line: a new line with the next one's indent.
                let at = file.places[place];
                let next_line = file.text[at + 1..].split('\n').next().unwrap_or("");
                let insert = format!("\n{}", indent(next_line));
                let mut text = file.text.clone();
                text.insert_str(at, &insert);
                let cursor = at + insert.len();
                // The move starts the clock: a client's warm-up on opening or switching to a
                // file is part of the wait (llama.vscode sends none on a jump within a file).
                let start = Instant::now();
                if kind != Kind::Jump {
                    d.focus(file, &file.text, at);
                }
                d.edit(file, &file.text, (at, at), &insert);
                let t = first_suggestion(d, file, &text, cursor, start, cap);
                eprintln!(
                    "{label}: {} {}:{} -> {}",
                    kind.name(),
                    file.path.file_name().unwrap().to_string_lossy(),
                    position(&text, cursor).0 + 1,
                    t.map_or("none".into(), |t| format!("{t:.0} ms"))
                );
                report.moves.push((kind, t));
                d.edit(file, &text, (at, cursor), "");
            }
            Step::Type { file: f } => {
                d.typing(true);
                let file = &files[f];
                let at = file.places[last_place[f]];
                // Retype the lines after the place as a new copy of them, keystroke by keystroke
                // (a line break brings the next line's indentation, as editors auto-indent).
                let source = &file.text[at..];
                let mut text = file.text.clone();
                let mut cursor = at;
                let mut typed = 0;
                let mut chars = source.char_indices().peekable();
                while typed < keys {
                    let Some((i, ch)) = chars.next() else { break };
                    let piece = if ch == '\n' {
                        let rest = &source[i + 1..];
                        let ind = indent(rest.split('\n').next().unwrap_or(""));
                        while chars.peek().is_some_and(|&(j, _)| j < i + 1 + ind.len()) {
                            chars.next();
                        }
                        format!("\n{ind}")
                    } else {
                        ch.to_string()
                    };
                    let before = text.clone();
                    text.insert_str(cursor, &piece);
                    d.edit(file, &before, (cursor, cursor), &piece);
                    cursor += piece.len();
                    let t0 = Instant::now();
                    let got = d.suggest(file, &text, cursor);
                    report.keys.push((t0.elapsed().as_secs_f64() * 1000.0, got));
                    typed += 1;
                    std::thread::sleep(Duration::from_millis(80));
                }
                d.edit(file, &text, (at, cursor), "");
                d.typing(false);
            }
        }
    }
    report
}

fn percentile(values: &[f64], p: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    Some(v[i])
}

fn secs(v: Option<f64>) -> String {
    v.map_or("—".into(), |ms| format!("{:.1} s", ms / 1000.0))
}

fn summary(report: &Report, kind: Kind) -> (Vec<f64>, usize, usize) {
    let all: Vec<&Option<f64>> = report
        .moves
        .iter()
        .filter(|(k, _)| *k == kind)
        .map(|(_, t)| t)
        .collect();
    let got: Vec<f64> = all.iter().filter_map(|t| **t).collect();
    let n = all.len();
    (got, n, n - all.iter().filter(|t| t.is_some()).count())
}

fn default_files() -> Vec<PathBuf> {
    let mut found = Vec::new();
    let glob = |dir: &str, prefix: &str, tail: &str| -> Option<PathBuf> {
        let mut c: Vec<PathBuf> = std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with(prefix))
            .map(|e| e.path().join(tail))
            .filter(|p| p.exists())
            .collect();
        c.sort();
        c.pop()
    };
    if let Some(p) = glob("/usr/lib", "python3", "heapq.py") {
        found.push(p);
    }
    let home = std::env::var("HOME").unwrap_or_default();
    for reg in std::fs::read_dir(format!("{home}/.cargo/registry/src"))
        .into_iter()
        .flatten()
        .flatten()
    {
        if let Some(p) = glob(&reg.path().to_string_lossy(), "ropey-", "src/rope.rs") {
            found.push(p);
            break;
        }
    }
    let pip = std::process::Command::new("python3")
        .args(["-c", "import pip, os; print(os.path.dirname(pip.__file__))"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned());
    if let Some(dir) = pip.filter(|d| !d.is_empty()) {
        let p = Path::new(&dir).join("_internal/req/req_install.py");
        if p.exists() {
            found.push(p);
        }
    }
    found
}

fn main() {
    let mut a = Args::parse(USAGE);
    let model = a.model();
    let files: Vec<PathBuf> = a.list("--files").unwrap_or_else(default_files);
    let threads: usize = a.get("--threads", 2);
    let keys: usize = a.get("--keys", 30);
    let cap = Duration::from_secs(a.get("--cap-s", 90));
    let think = Duration::from_secs_f64(a.get("--think-s", 0.0f64).max(0.0));
    let runs: Vec<String> = a
        .list("--runs")
        .unwrap_or_else(|| vec!["ghostline".into(), "peer".into()]);
    let peer_bin: PathBuf = a.value("--peer").unwrap_or_else(peer::default_binary);
    let extra: Value = a
        .text("--settings")
        .map(|s| serde_json::from_str(&s).unwrap_or_else(|e| a.die(&format!("--settings: {e}"))))
        .unwrap_or(json!({}));
    a.finish();
    if files.len() < 3 {
        eprintln!("bench-session: need three files (found {files:?}); pass --files A,B,C");
        std::process::exit(2);
    }
    let files: Vec<File> = files.iter().take(3).map(|p| File::load(p)).collect();
    for f in &files {
        eprintln!(
            "file {} ({} lines), places at lines {:?}",
            f.path.display(),
            f.text.lines().count(),
            f.places
                .iter()
                .map(|&p| position(&f.text, p).0 + 1)
                .collect::<Vec<_>>()
        );
    }

    let mut reports: Vec<(&str, Report)> = Vec::new();
    if runs.iter().any(|r| r == "ghostline") {
        let mut settings = json!({
            "model": model,
            "threads": threads,
            "repoContext": {"enabled": false},
        });
        if let (Some(s), Some(e)) = (settings.as_object_mut(), extra.as_object()) {
            s.extend(e.clone());
        }
        let mut g = Ghostline::start(&settings);
        let pace = Pace { keys, cap, think };
        let mut report = run(&mut g, &files, pace, "ghostline");
        if let Some(server) = g.server.take() {
            let last = server.stderr();
            g.harvest(&last);
            report.outcomes = std::mem::take(&mut g.outcomes);
            let log = format!("{}{last}", g.old_logs);
            let log_path = std::env::temp_dir().join("bench-session-ghostline.log");
            if std::fs::write(&log_path, &log).is_ok() {
                eprintln!("server log: {}", log_path.display());
            }
            for l in log.lines().filter(|l| l.contains("generation finished")) {
                report.model_runs += 1;
                report.budget_stops += usize::from(l.contains("stop=Deadline"));
                report.cold_runs += usize::from(l.contains("cold=true"));
            }
            report.cancelled_runs = log
                .lines()
                .filter(|l| l.contains("generation cancelled"))
                .count();
            report.prefills = log.lines().filter(|l| l.contains("prefill done")).count();
            report.prefilled_starts = log
                .lines()
                .filter(|l| l.contains("restored a saved KV state") && l.contains("prefilled=true"))
                .count();
            let _ = server.shutdown();
        }
        let _ = std::fs::remove_dir_all(&g.cache_home);
        reports.push(("ghostline", report));
    }
    if runs.iter().any(|r| r == "peer") {
        if peer_bin.exists() {
            match Peer::start(&peer_bin, &model, threads, 4096) {
                Ok(p) => {
                    let mut d = PeerDriver { peer: p };
                    let pace = Pace { keys, cap, think };
                    reports.push(("llama-server", run(&mut d, &files, pace, "peer")));
                }
                Err(e) => eprintln!("peer not run: {e}"),
            }
        } else {
            eprintln!(
                "peer not run: {} is missing (scripts/build-llama-server.sh)",
                peer_bin.display()
            );
        }
    }

    println!(
        "\nmodel {}, {threads} threads, {} keystrokes per file, cap {} s, {:.0} s reading before each move",
        model.file_name().unwrap_or_default().to_string_lossy(),
        keys,
        cap.as_secs(),
        think.as_secs_f64()
    );
    println!("| move | server | n | no suggestion | p50 | p95 | max |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for kind in [Kind::Open, Kind::Jump, Kind::Return, Kind::Restart] {
        for (name, r) in &reports {
            let (got, n, none) = summary(r, kind);
            println!(
                "| {} | {name} | {n} | {none} | {} | {} | {} |",
                kind.name(),
                secs(percentile(&got, 0.5)),
                secs(percentile(&got, 0.95)),
                secs(percentile(&got, 1.0)),
            );
        }
    }
    for (name, r) in &reports {
        let lat: Vec<f64> = r.keys.iter().map(|k| k.0).collect();
        let without = r.keys.iter().filter(|k| !k.1).count();
        println!(
            "| keystroke | {name} | {} | {} ({:.0}%) | {:.0} ms | {:.0} ms | {:.0} ms |",
            r.keys.len(),
            without,
            100.0 * without as f64 / r.keys.len().max(1) as f64,
            percentile(&lat, 0.5).unwrap_or(0.0),
            percentile(&lat, 0.95).unwrap_or(0.0),
            percentile(&lat, 1.0).unwrap_or(0.0),
        );
    }
    for (name, r) in &reports {
        if r.model_runs > 0 {
            println!(
                "{name}: {} model runs ended, {} stopped by their time limit ({:.0}%); {} more cancelled by a later edit or move",
                r.model_runs,
                r.budget_stops,
                100.0 * r.budget_stops as f64 / r.model_runs as f64,
                r.cancelled_runs
            );
            for (which, outcomes) in ["moves", "keystrokes"].iter().zip(&r.outcomes) {
                let list: Vec<String> = outcomes.iter().map(|(o, n)| format!("{o} {n}")).collect();
                println!("{name}: {which}' requests by outcome: {}", list.join(", "));
                // Requests that waited for a model run: answered at its end, at its first
                // finished line, or at the as-you-type budget with what it had finished (an
                // old server: a run stopped by the budget answers "suggested" or "empty").
                let waited: usize = ["suggested", "adopted", "empty", "first line", "budget"]
                    .iter()
                    .map(|o| outcomes.get(*o).copied().unwrap_or(0))
                    .sum();
                let at_budget = outcomes.get("budget").copied().unwrap_or(0);
                println!(
                    "{name}: {which}: {waited} requests waited for a model run, {at_budget} answered at the time budget ({:.0}%)",
                    100.0 * at_budget as f64 / waited.max(1) as f64
                );
            }
            println!(
                "{name}: {} prompt starts evaluated ahead of the cursor, {} requests started from one, {} model runs with the cold window",
                r.prefills, r.prefilled_starts, r.cold_runs
            );
        }
    }
    if let [(_, g), (_, p)] = reports.as_slice() {
        for kind in [Kind::Open, Kind::Jump, Kind::Return, Kind::Restart] {
            let (a, b) = (summary(g, kind).0, summary(p, kind).0);
            if let (Some(x), Some(y)) = (percentile(&a, 0.5), percentile(&b, 0.5)) {
                println!(
                    "{}: ghostline / llama-server p50 = {:.2}x",
                    kind.name(),
                    x / y
                );
            }
        }
    }
}
