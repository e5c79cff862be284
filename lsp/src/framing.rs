//! The transport in front of tower-lsp-server: reads `Content-Length` frames from the client,
//! answers the frames that are not JSON-RPC messages (`-32700` parse error, `-32600` invalid
//! request), skips them and keeps reading; forwards only valid frames to tower-lsp-server
//! through an in-memory pipe; and writes every outgoing message (tower-lsp-server's and its
//! own error answers) as a whole frame through one writer task, so frames never interleave.
//!
//! It also sees the lifecycle messages go by (`shutdown`, `exit`, end of input) so that
//! [`crate::serve`] can end with a bounded wait and the exit code LSP asks for. It does not
//! interpret any other message.

use serde_json::{json, Value};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Largest message body accepted; larger frames are answered with an error and skipped.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;
/// Longest header line accepted.
const MAX_HEADER_LINE: usize = 8 << 10;

/// JSON-RPC parse error.
pub const PARSE_ERROR: i64 = -32700;
/// JSON-RPC invalid request.
pub const INVALID_REQUEST: i64 = -32600;

/// One frame read from the input.
#[derive(Debug, PartialEq)]
pub enum Frame {
    /// A frame with a well-formed header and a body of the length it announced.
    Body(Vec<u8>),
    /// A frame that cannot be read as a message (bad header, bad or excessive length); the
    /// reader has skipped what it could. The string says why.
    Bad(String),
}

/// Reads `Content-Length` frames, resynchronising after a bad one.
pub struct FrameReader<R> {
    input: R,
    max_body: usize,
    /// After a bad header, lines are skipped silently until one holds a `Content-Length`.
    resync: bool,
}

fn content_length_at(line: &[u8]) -> Option<usize> {
    let lower = line.to_ascii_lowercase();
    lower
        .windows(b"content-length:".len())
        .position(|w| w == b"content-length:")
}

impl<R: AsyncBufRead + Unpin> FrameReader<R> {
    /// Reads frames from `input`, bodies up to `max_body` bytes.
    pub fn new(input: R, max_body: usize) -> Self {
        FrameReader {
            input,
            max_body,
            resync: false,
        }
    }

    /// Reads one line (up to `MAX_HEADER_LINE` bytes; a longer one is cut, the rest read as
    /// further lines). `None` at end of input.
    async fn line(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let mut line = Vec::new();
        let n = (&mut self.input)
            .take(MAX_HEADER_LINE as u64)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 {
            return Ok(None);
        }
        while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
            line.pop();
        }
        Ok(Some(line))
    }

    /// The next frame; `Ok(None)` at end of input.
    pub async fn next(&mut self) -> std::io::Result<Option<Frame>> {
        let mut length: Option<Result<usize, String>> = None;
        let mut saw_header = false;
        loop {
            let Some(mut line) = self.line().await? else {
                return Ok(None);
            };
            if self.resync {
                // Skip junk (the body of a frame whose length was unreadable) up to a header.
                match content_length_at(&line) {
                    Some(at) => {
                        line.drain(..at);
                        self.resync = false;
                    }
                    None => continue,
                }
            }
            if line.is_empty() {
                if !saw_header {
                    continue; // Stray blank lines between frames.
                }
                break;
            }
            saw_header = true;
            if let Some(at) = content_length_at(&line) {
                // Also finds a header glued to junk: `garbage}Content-Length: 5`.
                length = Some(parse_length(&line[at + b"content-length:".len()..]));
            } else if !line.contains(&b':') {
                length = Some(Err(format!(
                    "bad header line {:?}",
                    String::from_utf8_lossy(&line[..line.len().min(80)])
                )));
            }
        }
        match length {
            None => {
                self.resync = true;
                Ok(Some(Frame::Bad("a header without Content-Length".into())))
            }
            Some(Err(why)) => {
                self.resync = true;
                Ok(Some(Frame::Bad(why)))
            }
            Some(Ok(n)) if n > self.max_body => {
                let skipped = tokio::io::copy(
                    &mut (&mut self.input).take(n as u64),
                    &mut tokio::io::sink(),
                )
                .await?;
                Ok(Some(Frame::Bad(format!(
                    "message of {n} bytes is over the limit of {} bytes ({skipped} skipped)",
                    self.max_body
                ))))
            }
            Some(Ok(n)) => {
                let mut body = vec![0; n];
                match self.input.read_exact(&mut body).await {
                    Ok(_) => Ok(Some(Frame::Body(body))),
                    Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
                    Err(e) => Err(e),
                }
            }
        }
    }
}

fn parse_length(value: &[u8]) -> Result<usize, String> {
    let text = String::from_utf8_lossy(value);
    text.trim()
        .parse::<usize>()
        .map_err(|_| format!("bad Content-Length {:?}", text.trim()))
}

/// What a body is.
#[derive(Debug, PartialEq)]
pub enum Checked {
    /// A request or notification: its method, and whether it has an id.
    Call {
        /// `method`.
        method: String,
        /// Whether it is a request.
        has_id: bool,
    },
    /// A response to a request of the server.
    Response,
    /// Not a message: the error to answer (code, message, id).
    Invalid(i64, String, Value),
}

/// Classifies a frame body as a JSON-RPC message, or says which error it is owed.
pub fn check(body: &[u8]) -> Checked {
    let Ok(text) = std::str::from_utf8(body) else {
        return Checked::Invalid(PARSE_ERROR, "the body is not UTF-8".into(), Value::Null);
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return Checked::Invalid(
                PARSE_ERROR,
                format!("the body is not JSON: {e}"),
                Value::Null,
            )
        }
    };
    let Value::Object(map) = &value else {
        return Checked::Invalid(
            INVALID_REQUEST,
            "a message must be a JSON object".into(),
            Value::Null,
        );
    };
    let id = match map.get("id") {
        None => None,
        Some(v @ (Value::Number(_) | Value::String(_))) => Some(v.clone()),
        Some(Value::Null) => Some(Value::Null),
        Some(_) => {
            return Checked::Invalid(
                INVALID_REQUEST,
                "id must be a number or a string".into(),
                Value::Null,
            )
        }
    };
    let invalid = |why: &str| {
        Checked::Invalid(
            INVALID_REQUEST,
            why.to_owned(),
            id.clone().unwrap_or(Value::Null),
        )
    };
    if map.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return invalid("jsonrpc must be \"2.0\"");
    }
    match map.get("method") {
        Some(Value::String(method)) => {
            if map
                .get("params")
                .is_some_and(|p| !matches!(p, Value::Object(_) | Value::Array(_) | Value::Null))
            {
                return invalid("params must be an object or an array");
            }
            if id.as_ref().is_some_and(Value::is_null) {
                return invalid("a request id must not be null");
            }
            if serde_json::from_value::<tower_lsp_server::jsonrpc::Request>(value.clone()).is_err()
            {
                return invalid("not a JSON-RPC request");
            }
            Checked::Call {
                method: method.clone(),
                has_id: id.is_some(),
            }
        }
        Some(_) => invalid("method must be a string"),
        None => {
            let ok = id.is_some()
                && (map.contains_key("result") != map.contains_key("error"))
                && serde_json::from_value::<tower_lsp_server::jsonrpc::Response>(value.clone())
                    .is_ok();
            if ok {
                Checked::Response
            } else {
                invalid("neither a request, a notification nor a response")
            }
        }
    }
}

/// A frame with header around `body`.
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

/// The error answer for a frame, as a whole frame.
pub fn error_frame(code: i64, message: &str, id: Value) -> Vec<u8> {
    let body = json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}});
    frame(body.to_string().as_bytes())
}

/// Writes whole frames from `frames` to `output` until every sender is gone.
pub async fn write_frames<W: AsyncWrite + Unpin>(
    mut frames: mpsc::Receiver<Vec<u8>>,
    mut output: W,
) {
    while let Some(f) = frames.recv().await {
        if output.write_all(&f).await.is_err() || output.flush().await.is_err() {
            tracing::warn!("the client's output closed");
            // Keep draining so that senders never block on a dead client.
            while frames.recv().await.is_some() {}
            return;
        }
    }
}

/// Copies tower-lsp-server's output, frame by frame, to the writer task.
pub async fn copy_frames<R: AsyncBufRead + Unpin>(input: R, out: mpsc::Sender<Vec<u8>>) {
    let mut reader = FrameReader::new(input, usize::MAX);
    while let Ok(Some(f)) = reader.next().await {
        match f {
            Frame::Body(body) => {
                if out.send(frame(&body)).await.is_err() {
                    return;
                }
            }
            Frame::Bad(why) => tracing::error!("tower-lsp-server wrote a bad frame: {why}"),
        }
    }
}

/// How the input ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ended {
    /// With an `exit` notification (else the input closed or failed).
    pub exit: bool,
    /// A `shutdown` request came before.
    pub shutdown: bool,
}

impl Ended {
    /// The process exit code LSP asks for: 0 after `shutdown`, else 1.
    pub fn code(self) -> i32 {
        if self.shutdown {
            0
        } else {
            1
        }
    }
}

/// Reads the client's frames: valid ones go to `service` (tower-lsp-server's input), invalid
/// ones are answered on `errors`. Returns at `exit` or at the end of the input.
pub async fn pump<R, W>(input: R, mut service: W, errors: mpsc::Sender<Vec<u8>>) -> Ended
where
    R: AsyncBufRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut reader = FrameReader::new(input, MAX_MESSAGE_BYTES);
    let mut ended = Ended {
        exit: false,
        shutdown: false,
    };
    loop {
        let f = match reader.next().await {
            Ok(Some(f)) => f,
            Ok(None) => {
                tracing::info!("the client closed the input");
                return ended;
            }
            Err(e) => {
                tracing::error!("cannot read the input: {e}");
                return ended;
            }
        };
        let body = match f {
            Frame::Body(body) => body,
            Frame::Bad(why) => {
                tracing::warn!("bad frame skipped: {why}");
                let _ = errors
                    .send(error_frame(PARSE_ERROR, &why, Value::Null))
                    .await;
                continue;
            }
        };
        match check(&body) {
            Checked::Invalid(code, why, id) => {
                tracing::warn!("bad message skipped ({code}): {why}");
                let _ = errors.send(error_frame(code, &why, id)).await;
            }
            checked => {
                if service.write_all(&frame(&body)).await.is_err() {
                    tracing::info!("the service stopped reading");
                    return ended;
                }
                if let Checked::Call { method, has_id } = checked {
                    match (method.as_str(), has_id) {
                        ("shutdown", true) => ended.shutdown = true,
                        ("exit", false) => {
                            ended.exit = true;
                            return ended;
                        }
                        _ => {}
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frames(input: &[u8]) -> Vec<Frame> {
        let mut r = FrameReader::new(input, 1000);
        let mut out = Vec::new();
        while let Some(f) = r.next().await.unwrap() {
            out.push(f);
        }
        out
    }

    fn body(s: &str) -> Frame {
        Frame::Body(s.as_bytes().to_vec())
    }

    #[tokio::test]
    async fn reads_frames_and_resynchronises_after_bad_ones() {
        let input = b"Content-Length: 2\r\n\r\n{}Content-Length: x\r\n\r\n{\"a\":1}Content-Length: 3\r\n\r\n[1]\
            Content-Length: 5000\r\n\r\n"
            .iter()
            .copied()
            .chain(std::iter::repeat_n(b'z', 5000))
            .chain(*b"Content-Type: x\r\ncontent-length: 1\r\n\r\n1")
            .collect::<Vec<u8>>();
        let got = frames(&input).await;
        assert_eq!(got.len(), 5, "{got:?}");
        assert_eq!(got[0], body("{}"));
        assert!(matches!(&got[1], Frame::Bad(w) if w.contains("Content-Length")));
        assert_eq!(got[2], body("[1]"));
        assert!(matches!(&got[3], Frame::Bad(w) if w.contains("over the limit")));
        assert_eq!(got[4], body("1"));
    }

    #[tokio::test]
    async fn a_header_block_without_length_is_bad_and_the_end_of_input_ends() {
        let got =
            frames(b"Foo: bar\r\n\r\nContent-Length: 2\r\n\r\n{}Content-Length: 9\r\n\r\n{").await;
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(matches!(&got[0], Frame::Bad(_)));
        assert_eq!(got[1], body("{}"));
    }

    #[test]
    fn classifies_bodies() {
        assert!(matches!(
            check(b"\xff\xfe"),
            Checked::Invalid(PARSE_ERROR, _, Value::Null)
        ));
        assert!(matches!(
            check(b"{not json"),
            Checked::Invalid(PARSE_ERROR, _, _)
        ));
        assert!(matches!(
            check(b"[]"),
            Checked::Invalid(INVALID_REQUEST, _, Value::Null)
        ));
        assert!(matches!(
            check(b"42"),
            Checked::Invalid(INVALID_REQUEST, _, _)
        ));
        assert_eq!(
            check(br#"{"jsonrpc":"2.0","id":7,"foo":1}"#),
            Checked::Invalid(
                INVALID_REQUEST,
                "neither a request, a notification nor a response".into(),
                json!(7)
            )
        );
        assert!(matches!(
            check(br#"{"jsonrpc":"1.0","id":"a","method":"x"}"#),
            Checked::Invalid(INVALID_REQUEST, _, Value::String(_))
        ));
        assert!(matches!(
            check(br#"{"jsonrpc":"2.0","id":1,"method":5}"#),
            Checked::Invalid(INVALID_REQUEST, _, _)
        ));
        assert!(matches!(
            check(br#"{"jsonrpc":"2.0","id":{},"method":"x"}"#),
            Checked::Invalid(INVALID_REQUEST, _, Value::Null)
        ));
        assert_eq!(
            check(br#"{"jsonrpc":"2.0","id":1,"method":"shutdown"}"#),
            Checked::Call {
                method: "shutdown".into(),
                has_id: true
            }
        );
        assert_eq!(
            check(br#"{"jsonrpc":"2.0","method":"exit"}"#),
            Checked::Call {
                method: "exit".into(),
                has_id: false
            }
        );
        assert_eq!(
            check(br#"{"jsonrpc":"2.0","id":3,"result":null}"#),
            Checked::Response
        );
    }
}
