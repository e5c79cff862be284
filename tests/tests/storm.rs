//! The storm: a seeded, bounded burst of more than 10,000 client messages against the real
//! binary over stdio, with the fake backend (no model file, 1 ms per fake token).
//!
//! It mixes incremental edits (multi-byte characters, emoji, CRLF line breaks), automatic and
//! invoked inline completions at valid and invalid positions, `$/cancelRequest`, code actions,
//! explanations, open/close of several documents and configuration changes, and asserts what an
//! editor relies on: every request answered exactly once, no response with an id the client
//! never sent, the server's documents equal to the client's model at every sync point, the
//! process alive, RSS growth after warm-up under 50 MB, and a clean `shutdown`/`exit` (code 0).
//! It prints its figures (messages, requests, answers, time, RSS).
//!
//! It deliberately does not judge the suggestions themselves (the fake writes them), send
//! malformed frames (see `bad_inputs.rs`) or load a real model. The PRNG is a few lines of
//! SplitMix64 so the run is the same on every machine for a given seed (`GHOSTLINE_STORM_SEED`).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use ghostline_tests::rng::Rng;
use ghostline_tests::{editor_capabilities, file_uri, Server, Spawn};
use serde_json::{json, Value};

/// Client messages sent at least (notifications, requests and cancellations).
const MESSAGES: usize = 10_500;
/// Requests in flight at most; the client waits for the oldest above it, as an editor's
/// request queue would. It also keeps the pipes from filling while the server is busy.
const MAX_OUTSTANDING: usize = 24;
/// A sync point (all answered, documents compared) every this many messages.
const SYNC_EVERY: usize = 700;
/// The storm must end within this (it takes a few seconds on two shared cores).
const TIME_LIMIT: Duration = Duration::from_secs(100);
/// How long one request may take to be answered during the storm.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);
/// RSS growth allowed after warm-up.
const RSS_GROWTH_LIMIT_KIB: u64 = 50 * 1024;

/// Line starts of `text` as LSP sees them: lines end at `\r\n`, `\n` or a lone `\r`.
fn line_starts(text: &str) -> Vec<usize> {
    let b = text.as_bytes();
    let mut starts = vec![0];
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\r' if b.get(i + 1) == Some(&b'\n') => {
                starts.push(i + 2);
                i += 2;
            }
            b'\r' | b'\n' => {
                starts.push(i + 1);
                i += 1;
            }
            _ => i += 1,
        }
    }
    starts
}

/// The content of line `line` (without its line break), as a byte range.
fn line_range(text: &str, starts: &[usize], line: usize) -> (usize, usize) {
    let start = starts[line];
    let mut end = starts.get(line + 1).copied().unwrap_or(text.len());
    let b = text.as_bytes();
    while end > start && (b[end - 1] == b'\n' || b[end - 1] == b'\r') {
        end -= 1;
    }
    (start, end)
}

/// A valid position (line, UTF-16 column at a character boundary) and its byte offset.
fn random_position(rng: &mut Rng, text: &str) -> (u32, u32, usize) {
    let starts = line_starts(text);
    let line = rng.below(starts.len());
    let (start, end) = line_range(text, &starts, line);
    let bounds: Vec<(u32, usize)> = {
        let mut v = vec![(0u32, start)];
        let mut col = 0u32;
        for (i, c) in text[start..end].char_indices() {
            col += c.len_utf16() as u32;
            v.push((col, start + i + c.len_utf8()));
        }
        v
    };
    let (col, offset) = *rng.pick(&bounds);
    (line as u32, col, offset)
}

const SNIPPETS: &[&str] = &[
    "x",
    "é",
    "😀",
    "👩‍💻",
    "日本語",
    "e\u{301}",
    " ",
    "\n",
    "\r\n",
    "    ",
    "def g(a, b):\r\n    return a + b\r\n",
    "if n < 2:\n        return n\n",
    "π = 3.14159  # ∑ 😀\n",
    "(",
    ")",
    "\"",
    "fn main() {\n    println!(\"ñ\");\n}\n",
    "print(\"🦀\")",
    "\t",
];

const PY: &str = "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n\n\nclass Café:\n    def ünïcode(self, s):\n        return s + \"😀\"\n";
const PY_CRLF: &str = "import os\r\n\r\ndef read(path):\r\n    with open(path) as f:\r\n        return f.read()\r\n\r\nprint(read(\"é.txt\"))\r\n";
const RS: &str = "fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n\nfn main() {\n    let s = \"日本語 🦀\";\n    println!(\"{} {}\", add(1, 2), s);\n}\n";

struct Doc {
    uri: String,
    language: &'static str,
    initial: &'static str,
    text: String,
    version: i32,
    open: bool,
}

#[derive(Default)]
struct Figures {
    messages: usize,
    requests: usize,
    notifications: usize,
    cancels: usize,
    edits: usize,
    completions: usize,
    code_actions: usize,
    explanations: usize,
    opens: usize,
    closes: usize,
    config_changes: usize,
    syncs: usize,
    by_method: BTreeMap<&'static str, usize>,
}

struct Storm {
    s: Server,
    rng: Rng,
    docs: Vec<Doc>,
    outstanding: VecDeque<i64>,
    sent: HashMap<i64, &'static str>,
    f: Figures,
}

impl Storm {
    fn request(&mut self, method: &'static str, params: Value) -> i64 {
        while self.outstanding.len() >= MAX_OUTSTANDING {
            let oldest = self.outstanding.pop_front().unwrap();
            self.s.response(oldest, ANSWER_TIMEOUT);
        }
        let id = self.s.send_request(method, params);
        self.outstanding.push_back(id);
        self.sent.insert(id, method);
        self.f.messages += 1;
        self.f.requests += 1;
        *self.f.by_method.entry(method).or_default() += 1;
        id
    }

    fn notify(&mut self, method: &'static str, params: Value) {
        self.s.notify(method, params);
        self.f.messages += 1;
        self.f.notifications += 1;
        *self.f.by_method.entry(method).or_default() += 1;
    }

    fn open_doc(&mut self, i: usize) {
        let d = &mut self.docs[i];
        d.text = d.initial.to_owned();
        d.version = 1;
        d.open = true;
        let params = json!({"textDocument": {"uri": d.uri, "languageId": d.language, "version": 1, "text": d.text}});
        self.notify("textDocument/didOpen", params);
        self.f.opens += 1;
    }

    fn close_doc(&mut self, i: usize) {
        self.docs[i].open = false;
        let params = json!({"textDocument": {"uri": self.docs[i].uri}});
        self.notify("textDocument/didClose", params);
        self.f.closes += 1;
    }

    fn open_docs(&self) -> Vec<usize> {
        (0..self.docs.len())
            .filter(|&i| self.docs[i].open)
            .collect()
    }

    /// One incremental edit (sometimes two in one notification) of an open document.
    fn edit(&mut self, i: usize) {
        let n = if self.rng.chance(15) { 2 } else { 1 };
        let mut changes = Vec::new();
        for _ in 0..n {
            let text = &self.docs[i].text;
            let (l1, c1, o1) = random_position(&mut self.rng, text);
            let (l2, c2, o2) = if self.rng.chance(50) {
                (l1, c1, o1)
            } else {
                random_position(&mut self.rng, text)
            };
            let ((l1, c1, o1), (l2, c2, o2)) = if o1 <= o2 {
                ((l1, c1, o1), (l2, c2, o2))
            } else {
                ((l2, c2, o2), (l1, c1, o1))
            };
            // Keep documents small: deletions win when they grow.
            let insert = if text.len() > 6000 || self.rng.chance(20) {
                ""
            } else {
                *self.rng.pick(SNIPPETS)
            };
            // Deleting big ranges would shrink documents to nothing: cap them.
            let (l2, c2, o2) = if o2 - o1 > 200 {
                (l1, c1, o1)
            } else {
                (l2, c2, o2)
            };
            self.docs[i].text.replace_range(o1..o2, insert);
            changes.push(json!({
                "range": {"start": {"line": l1, "character": c1}, "end": {"line": l2, "character": c2}},
                "text": insert,
            }));
        }
        self.docs[i].version += 1;
        let params = json!({
            "textDocument": {"uri": self.docs[i].uri, "version": self.docs[i].version},
            "contentChanges": changes,
        });
        self.notify("textDocument/didChange", params);
        self.f.edits += 1;
    }

    /// A position for a request: mostly valid, sometimes past the end of a line, inside a
    /// surrogate pair, or on a line that does not exist.
    fn request_position(&mut self, i: usize) -> (u32, u32) {
        let text = self.docs[i].text.clone();
        let (line, col, _) = random_position(&mut self.rng, &text);
        match self.rng.below(10) {
            0 => (line, col + 1 + self.rng.below(500) as u32),
            1 => (
                line_starts(&text).len() as u32 + self.rng.below(3) as u32,
                0,
            ),
            2 => (u32::MAX - self.rng.below(2) as u32, u32::MAX),
            3 => (line, col.saturating_add(1)),
            _ => (line, col),
        }
    }

    fn completion(&mut self, i: usize) {
        let (line, character) = self.request_position(i);
        let invoked = self.rng.chance(30);
        let params = json!({
            "textDocument": {"uri": self.docs[i].uri},
            "position": {"line": line, "character": character},
            "context": {"triggerKind": if invoked { 1 } else { 2 }},
        });
        self.request("textDocument/inlineCompletion", params);
        self.f.completions += 1;
    }

    fn code_action(&mut self, i: usize) {
        let (l1, c1) = self.request_position(i);
        let (l2, c2) = if self.rng.chance(60) {
            (l1, c1)
        } else {
            self.request_position(i)
        };
        let params = json!({
            "textDocument": {"uri": self.docs[i].uri},
            "range": {"start": {"line": l1, "character": c1}, "end": {"line": l2, "character": c2}},
            "context": {"diagnostics": []},
        });
        self.request("textDocument/codeAction", params);
        self.f.code_actions += 1;
    }

    fn explanation(&mut self, i: usize) {
        let (line, character) = self.request_position(i);
        // A client-given token, so that the server needs no `window/workDoneProgress/create`.
        let token = format!("storm-{}", self.f.explanations);
        let params = json!({
            "command": "ghostline.explainFunction",
            "arguments": [{"uri": self.docs[i].uri, "position": {"line": line, "character": character}}],
            "workDoneToken": token,
        });
        self.request("workspace/executeCommand", params);
        self.f.explanations += 1;
    }

    fn cancel(&mut self) {
        let Some(&id) = self.outstanding.back() else {
            return;
        };
        let id = if self.rng.chance(10) {
            // An id that was never sent, or one long answered.
            if self.rng.chance(50) {
                1_000_000 + self.rng.below(1000) as i64
            } else {
                1
            }
        } else {
            id
        };
        self.notify("$/cancelRequest", json!({"id": id}));
        self.f.cancels += 1;
    }

    fn config_change(&mut self) {
        let settings = match self.rng.below(5) {
            0 => json!({"ghostline": {"maxTokens": 8 + self.rng.below(120)}}),
            1 => {
                json!({"ghostline": {"trigger": if self.rng.chance(80) { "automatic" } else { "manual" }}})
            }
            2 => json!({"ghostline": {"timeBudgetMs": 200 + self.rng.below(2000)}}),
            3 => json!({"ghostline": {"repoContext": {"enabled": self.rng.chance(50)}}}),
            // An engine setting: the fake backend reloads.
            _ => json!({"ghostline": {"backend": "fake", "fake": {"delayMs": self.rng.below(2)}}}),
        };
        self.notify(
            "workspace/didChangeConfiguration",
            json!({"settings": settings}),
        );
        self.f.config_changes += 1;
    }

    /// Waits for every request in flight, then compares every open document with the model.
    fn sync(&mut self) {
        while let Some(id) = self.outstanding.pop_front() {
            self.s.response(id, ANSWER_TIMEOUT);
        }
        for i in self.open_docs() {
            let uri = self.docs[i].uri.clone();
            let id = self.s.send_request(
                "workspace/executeCommand",
                json!({"command": "ghostline.debugDocument", "arguments": [uri]}),
            );
            self.sent.insert(id, "debugDocument");
            self.f.messages += 1;
            self.f.requests += 1;
            let r = self.s.response(id, ANSWER_TIMEOUT).ok();
            assert_eq!(
                r["text"].as_str(),
                Some(self.docs[i].text.as_str()),
                "the server's {uri} differs from the client's after {} messages",
                self.f.messages
            );
            assert_eq!(r["version"], json!(self.docs[i].version));
        }
        self.f.syncs += 1;
    }

    fn step(&mut self) {
        let open = self.open_docs();
        if open.is_empty() {
            let i = self.rng.below(self.docs.len());
            self.open_doc(i);
            return;
        }
        let i = *self.rng.pick(&open);
        match self.rng.below(100) {
            0..=54 => self.edit(i),
            55..=74 => self.completion(i),
            75..=81 => self.cancel(),
            82..=88 => self.code_action(i),
            89..=90 => self.explanation(i),
            91..=93 => {
                let closed: Vec<usize> = (0..self.docs.len())
                    .filter(|&j| !self.docs[j].open)
                    .collect();
                if closed.is_empty() || (open.len() > 2 && self.rng.chance(50)) {
                    self.close_doc(i);
                } else {
                    let j = *self.rng.pick(&closed);
                    self.open_doc(j);
                }
            }
            94..=95 => self.config_change(),
            // A request for a document that is not open: an error, answered once.
            _ => {
                let params = json!({
                    "textDocument": {"uri": file_uri("/tmp/ghostline-storm/never-opened.py")},
                    "position": {"line": 0, "character": 0},
                    "context": {"triggerKind": 1},
                });
                self.request("textDocument/inlineCompletion", params);
            }
        }
    }
}

#[test]
fn storm_of_ten_thousand_messages() {
    let seed = std::env::var("GHOSTLINE_STORM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_0F57_0A4D_u64);
    let t0 = Instant::now();
    let mut s = Server::spawn(Spawn::default().settings(json!({})));
    s.initialize(
        editor_capabilities(),
        json!({"backend": "fake", "fake": {"delayMs": 1}, "repoContext": {"enabled": false}}),
    );
    s.wait_status(0, "ready", Duration::from_secs(30));

    let docs = [
        ("/tmp/ghostline-storm/a.py", "python", PY),
        ("/tmp/ghostline-storm/crlf.py", "python", PY_CRLF),
        ("/tmp/ghostline-storm/main.rs", "rust", RS),
        (
            "/tmp/ghostline-storm/notes.txt",
            "plaintext",
            "héllo 😀\nwörld\r\n",
        ),
        ("/tmp/ghostline-storm/b.py", "python", PY),
    ]
    .into_iter()
    .map(|(path, language, initial)| Doc {
        uri: file_uri(path),
        language,
        initial,
        text: String::new(),
        version: 0,
        open: false,
    })
    .collect();
    let mut storm = Storm {
        s,
        rng: Rng(seed),
        docs,
        outstanding: VecDeque::new(),
        sent: HashMap::new(),
        f: Figures::default(),
    };
    for i in 0..3 {
        storm.open_doc(i);
    }

    let mut rss_warm = None;
    let mut last_sync = 0;
    while storm.f.messages < MESSAGES {
        storm.step();
        if storm.f.messages - last_sync >= SYNC_EVERY {
            last_sync = storm.f.messages;
            storm.sync();
            assert!(storm.s.is_alive(), "the server died");
            if rss_warm.is_none() {
                // Warm-up: the first sync point.
                rss_warm = storm.s.rss_kib();
            }
        }
        assert!(
            t0.elapsed() < TIME_LIMIT,
            "the storm took over {TIME_LIMIT:?} ({} messages sent)",
            storm.f.messages
        );
    }
    storm.sync();
    let rss_end = storm.s.rss_kib();
    let storm_time = t0.elapsed();

    // Every request answered exactly once; no response to an id the client never sent.
    std::thread::sleep(Duration::from_millis(300));
    let responses = storm.s.responses();
    let mut counts: HashMap<i64, usize> = HashMap::new();
    for r in &responses {
        let id = r
            .id
            .as_i64()
            .unwrap_or_else(|| panic!("a response with an id the client never sent: {:?}", r.id));
        *counts.entry(id).or_default() += 1;
    }
    let initialize_id = 1;
    for id in counts.keys() {
        assert!(
            *id == initialize_id || storm.sent.contains_key(id),
            "a response to id {id}, which the client never sent"
        );
    }
    for (id, method) in &storm.sent {
        assert_eq!(
            counts.get(id).copied().unwrap_or(0),
            1,
            "request {id} ({method}) was not answered exactly once"
        );
    }
    let errors = responses.iter().filter(|r| r.error.is_some()).count();
    let cancelled = responses
        .iter()
        .filter(|r| r.error_code() == Some(-32800))
        .count();
    assert!(
        storm.s.protocol_errors().is_empty(),
        "protocol violations on stdout: {:?}",
        storm.s.protocol_errors()
    );
    assert!(storm.s.is_alive(), "the server died");

    let (warm, end) = (
        rss_warm.expect("RSS readable"),
        rss_end.expect("RSS readable"),
    );
    let f = &storm.f;
    eprintln!(
        "storm (seed {seed:#x}): {} messages ({} requests, {} notifications: {} edits, {} \
         completions, {} cancellations, {} code actions, {} explanations, {} opens, {} closes, \
         {} configuration changes, {} sync points) in {:.1} s; {} responses ({} errors, {} \
         cancelled), every request answered exactly once; RSS after warm-up {} KiB, at the end \
         {} KiB ({:+} KiB)",
        f.messages,
        f.requests,
        f.notifications,
        f.edits,
        f.completions,
        f.cancels,
        f.code_actions,
        f.explanations,
        f.opens,
        f.closes,
        f.config_changes,
        f.syncs,
        storm_time.as_secs_f64(),
        responses.len(),
        errors,
        cancelled,
        warm,
        end,
        end as i64 - warm as i64,
    );
    eprintln!("storm messages by method: {:?}", f.by_method);
    assert!(f.messages >= 10_000);
    assert!(
        end.saturating_sub(warm) < RSS_GROWTH_LIMIT_KIB,
        "RSS grew by {} KiB after warm-up",
        end - warm
    );

    let status = storm.s.shutdown();
    assert_eq!(status.code(), Some(0), "exit code after shutdown and exit");
}
