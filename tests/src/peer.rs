//! The peer of `bench-typing`: llama.cpp's own `llama-server`, driven the way llama.vscode
//! drives it — `POST /infill` with `cache_prompt`, the server started with `--cache-reuse 256`,
//! the last 256 lines before the cursor line as `input_prefix`, the current line up to the
//! cursor as `prompt`, the rest of the line and the next 64 lines as `input_suffix`, and
//! llama.vscode's sampling and time limits. A request that a newer keystroke supersedes is
//! aborted by closing its connection, which llama-server notices and stops (more favourable to
//! the peer than letting requests queue behind each other).
//!
//! Plain HTTP/1.1 over `std::net`: nothing here leaves 127.0.0.1. The binary is built outside
//! the repository by `scripts/build-llama-server.sh`; this module never builds or fetches it.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Where `scripts/build-llama-server.sh` puts the binary.
pub fn default_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("GHOSTLINE_PEER_BIN") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    home.join(".cache/ghostline/peer/llama-server")
}

/// A running llama-server on a free local port.
pub struct Peer {
    child: Child,
    port: u16,
    pub log: PathBuf,
}

/// One answered or aborted `/infill` request.
#[derive(Debug)]
pub struct Outcome {
    pub index: usize,
    /// The parsed response body, or `None` when the request was aborted or failed.
    pub body: Option<Value>,
    pub at: Instant,
}

impl Peer {
    /// Starts `bin` on `model` with llama.vscode's recommended server flags and waits until it
    /// reports healthy.
    pub fn start(bin: &Path, model: &Path, threads: usize, ctx: u32) -> Result<Peer, String> {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free port: {e}"))?
            .port();
        let log = std::env::temp_dir().join("bench-typing-llama-server.log");
        let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let child = Command::new(bin)
            .args(["-m", &model.to_string_lossy()])
            .args(["-t", &threads.to_string(), "-tb", &threads.to_string()])
            .args(["-c", &ctx.to_string(), "-np", "1"])
            .args(["-b", "1024", "-ub", "1024", "--cache-reuse", "256"])
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let mut peer = Peer { child, port, log };
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            if let Ok(Some(status)) = peer.child.try_wait() {
                return Err(format!(
                    "llama-server exited ({status}); see {}",
                    peer.log.display()
                ));
            }
            if let Ok((200, _)) = peer.get("/health") {
                return Ok(peer);
            }
            if Instant::now() > deadline {
                return Err("llama-server did not become healthy in 300 s".into());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn get(&self, path: &str) -> Result<(u16, String), String> {
        http_get(self.port, path, None, None)
    }

    /// Sends one `/infill` request on its own thread; the outcome arrives on `done`. The
    /// returned stream handle aborts the request when shut down.
    pub fn infill(
        &self,
        index: usize,
        body: &Value,
        done: mpsc::Sender<Outcome>,
    ) -> Option<TcpStream> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        let handle = s.try_clone().ok()?;
        let body = body.to_string();
        std::thread::spawn(move || {
            let sent = write!(
                s,
                "POST /infill HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let body = sent
                .ok()
                .and_then(|_| read_response(&mut s).ok())
                .filter(|(status, _)| *status == 200)
                .and_then(|(_, text)| serde_json::from_str(&text).ok());
            let _ = done.send(Outcome {
                index,
                body,
                at: Instant::now(),
            });
        });
        Some(handle)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Aborts an in-flight request.
pub fn abort(stream: &TcpStream) {
    let _ = stream.shutdown(Shutdown::Both);
}

/// `GET path` from a server on a loopback `port` (with `Authorization: Bearer` when a key is
/// given, and a read timeout when one is given): the status and the body (dechunked).
pub fn http_get(
    port: u16,
    path: &str,
    bearer: Option<&str>,
    read_timeout: Option<Duration>,
) -> Result<(u16, String), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(read_timeout)
        .map_err(|e| e.to_string())?;
    let auth = bearer.map_or(String::new(), |k| format!("Authorization: Bearer {k}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}Connection: close\r\n\r\n"
    )
    .map_err(|e| e.to_string())?;
    read_response(&mut s)
}

fn read_response(s: &mut TcpStream) -> Result<(u16, String), String> {
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| "truncated HTTP response".to_string())?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| "bad HTTP status line".to_string())?;
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Ok((status, body))
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// The `/infill` body llama.vscode sends for a cursor at byte `cursor` of `text`: its default
/// windows (256 lines before, 64 after), sampling (`top_k` 40, `top_p` 0.99, the infill
/// sampler), 128 tokens at most, 500 ms prompt and prediction limits, and the current line's
/// indentation as `n_indent`.
pub fn infill_body(text: &str, cursor: usize) -> Value {
    let line_start = text[..cursor].rfind('\n').map_or(0, |i| i + 1);
    let before_lines: Vec<&str> = text[..line_start].lines().collect();
    let from = before_lines.len().saturating_sub(256);
    let mut input_prefix = before_lines[from..].join("\n");
    if !input_prefix.is_empty() {
        input_prefix.push('\n');
    }
    let prompt = &text[line_start..cursor];
    let after: Vec<&str> = text[cursor..].split('\n').take(65).collect();
    let input_suffix = after.join("\n");
    let n_indent = prompt.len() - prompt.trim_start().len();
    json!({
        "input_prefix": input_prefix,
        "input_suffix": input_suffix,
        "input_extra": [],
        "prompt": prompt,
        "n_predict": 128,
        "top_k": 40,
        "top_p": 0.99,
        "stream": false,
        "samplers": ["top_k", "top_p", "infill"],
        "cache_prompt": true,
        "t_max_prompt_ms": 500,
        "t_max_predict_ms": 500,
        "n_indent": n_indent,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_windows_follow_llama_vscode() {
        let text = "a\nb\n    cd\ne\n";
        let cursor = text.find("d").unwrap();
        let b = infill_body(text, cursor);
        assert_eq!(b["input_prefix"], "a\nb\n");
        assert_eq!(b["prompt"], "    c");
        assert_eq!(b["input_suffix"], "d\ne\n");
        assert_eq!(b["n_indent"], 4);
    }

    #[test]
    fn chunked_bodies_are_joined() {
        assert_eq!(dechunk("3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"), "abcde");
    }
}
