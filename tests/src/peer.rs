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

/// A loopback port nobody listens on now.
pub fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// How to start a llama-server: the model, the port, the key, and the flags of the caller's
/// set-up (threads, context, slots, cache reuse, metrics).
#[derive(Debug, Clone)]
pub struct Launch {
    /// The llama-server binary.
    pub bin: PathBuf,
    /// The GGUF model.
    pub model: PathBuf,
    /// Flags besides the model, the address and the key.
    pub args: Vec<String>,
    /// The port (`None`: a free one).
    pub port: Option<u16>,
    /// The API key it requires (`--api-key`); `None`: none.
    pub api_key: Option<String>,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
    /// How long it may take to report healthy.
    pub healthy_within: Duration,
}

/// A running llama-server on a loopback port; killed when dropped.
pub struct LlamaServer {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its log file.
    pub log: PathBuf,
    api_key: Option<String>,
}

impl LlamaServer {
    /// Starts `launch.bin` and waits until `/health` answers 200. The error names the binary,
    /// or carries the server's log when it exited or never became healthy.
    pub fn start(launch: Launch) -> Result<LlamaServer, String> {
        let port = match launch.port {
            Some(p) => p,
            None => free_port()?,
        };
        let log_file = std::fs::File::create(&launch.log)
            .map_err(|e| format!("{}: {e}", launch.log.display()))?;
        let mut cmd = Command::new(&launch.bin);
        cmd.args(["-m", &launch.model.to_string_lossy()])
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(&launch.args);
        if let Some(key) = &launch.api_key {
            cmd.args(["--api-key", key]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", launch.bin.display()))?;
        let mut server = LlamaServer {
            child,
            port,
            log: launch.log,
            api_key: launch.api_key,
        };
        let deadline = Instant::now() + launch.healthy_within;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "llama-server exited ({status}); {}:\n{}",
                    server.log.display(),
                    std::fs::read_to_string(&server.log).unwrap_or_default()
                ));
            }
            if let Some((200, _)) = server.get("/health", Duration::from_secs(10)) {
                return Ok(server);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "llama-server not healthy in {:?}; see {}",
                    launch.healthy_within,
                    server.log.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Its base URL.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `GET path` (with the key, when it has one): the status and the body.
    pub fn get(&self, path: &str, read_timeout: Duration) -> Option<(u16, String)> {
        http_get(self.port, path, self.api_key.as_deref(), Some(read_timeout)).ok()
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The peer: a llama-server started with llama.vscode's recommended flags.
pub struct Peer {
    server: LlamaServer,
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
        let t = threads.to_string();
        let args = [
            "-t",
            &t,
            "-tb",
            &t,
            "-c",
            &ctx.to_string(),
            "-np",
            "1",
            "-b",
            "1024",
            "-ub",
            "1024",
            "--cache-reuse",
            "256",
        ];
        let server = LlamaServer::start(Launch {
            bin: bin.to_owned(),
            model: model.to_owned(),
            args: args.iter().map(|a| a.to_string()).collect(),
            port: None,
            api_key: None,
            log: std::env::temp_dir().join("bench-typing-llama-server.log"),
            healthy_within: Duration::from_secs(300),
        })?;
        Ok(Peer { server })
    }

    /// The server's log file.
    pub fn log(&self) -> &Path {
        &self.server.log
    }

    /// Sends one `/infill` request on its own thread; the outcome arrives on `done`. The
    /// returned stream handle aborts the request when shut down.
    pub fn infill(
        &self,
        index: usize,
        body: &Value,
        done: mpsc::Sender<Outcome>,
    ) -> Option<TcpStream> {
        let mut s = TcpStream::connect(("127.0.0.1", self.server.port)).ok()?;
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
