//! Streamed answers: server-sent events (`data: {json}` lines, OpenAI's ending with
//! `data: [DONE]`) read one event at a time, and the pieces of text in them.
//!
//! Reading stops as soon as the caller says so; the response (and with it the connection) is
//! dropped on return. It does not apply stop rules or answer requests (see `lib.rs`).

use std::io::{BufRead, BufReader};

use ghostline_inference::{EngineError, StopReason};
use serde_json::Value;

use crate::RemoteKind;

/// What to do after an event.
pub(crate) enum Flow {
    Continue,
    Stop(Result<StopReason, EngineError>),
}

/// How reading ended.
pub(crate) enum Outcome {
    /// The caller stopped it.
    Stopped(Result<StopReason, EngineError>),
    /// The stream ended (`[DONE]` or end of body) without a finish reason.
    Ended,
    /// The request's time limit fired while reading.
    Timeout,
    /// The stream broke or carried an error.
    Error(String),
}

/// Reads events from `resp` until `on_event` stops or the stream ends.
pub(crate) fn read_events(
    resp: ureq::http::Response<ureq::Body>,
    mut on_event: impl FnMut(&Value) -> Flow,
) -> Outcome {
    let mut reader = BufReader::new(resp.into_body().into_reader());
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return Outcome::Ended,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => return Outcome::Timeout,
            Err(e) => {
                // ureq reports its own timeouts inside an io::Error.
                let text = e.to_string();
                if text.contains("timeout") || text.contains("timed out") {
                    return Outcome::Timeout;
                }
                return Outcome::Error(text);
            }
        }
        let l = line.trim_end_matches(['\n', '\r']);
        if let Some(err) = l.strip_prefix("error:") {
            return Outcome::Error(error_text(err.trim()));
        }
        let Some(data) = l.strip_prefix("data:") else {
            continue; // blank separators, comments, `event:` lines
        };
        let data = data.trim();
        if data == "[DONE]" {
            // Read on to the end of the body (normally right here), so that the connection
            // is reused.
            continue;
        }
        let Ok(value) = serde_json::from_str::<Value>(data) else {
            return Outcome::Error(format!(
                "unexpected event {:?}",
                data.chars().take(80).collect::<String>()
            ));
        };
        if let Some(err) = value.get("error") {
            return Outcome::Error(error_text(&err.to_string()));
        }
        if let Flow::Stop(r) = on_event(&value) {
            return Outcome::Stopped(r);
        }
    }
}

fn error_text(raw: &str) -> String {
    let v: Option<Value> = serde_json::from_str(raw).ok();
    let msg = v
        .as_ref()
        .and_then(|v| {
            v.get("message")
                .or_else(|| v.pointer("/error/message"))
                .and_then(Value::as_str)
        })
        .unwrap_or(raw);
    msg.chars().take(200).collect()
}

/// Server-side timings (llama-server's final event, OpenAI `usage`).
pub(crate) struct Timings {
    pub prompt_n: Option<usize>,
    pub prompt_ms: Option<f64>,
    pub prompt_total: Option<usize>,
}

/// One event's text and, when it is the last, why generation ended.
pub(crate) struct Piece {
    pub text: String,
    pub finished: Option<StopReason>,
    pub timings: Option<Timings>,
}

fn finish_reason(r: Option<&str>) -> Option<StopReason> {
    match r? {
        "length" => Some(StopReason::MaxTokens),
        "stop" | "eos" | "word" => Some(StopReason::EndOfText),
        "limit" => Some(StopReason::MaxTokens),
        _ => Some(StopReason::EndOfText),
    }
}

/// The text of a FIM event: llama-server's `{"content", "stop", "timings"}` or OpenAI's
/// `{"choices": [{"text", "finish_reason"}]}`.
pub(crate) fn fim_piece(kind: RemoteKind, v: &Value) -> Piece {
    match kind {
        RemoteKind::LlamaServer => {
            let stop = v.get("stop").and_then(Value::as_bool).unwrap_or(false);
            let timings = v.get("timings").map(|t| Timings {
                prompt_n: t
                    .get("prompt_n")
                    .and_then(Value::as_u64)
                    .map(|n| n as usize),
                prompt_ms: t.get("prompt_ms").and_then(Value::as_f64),
                prompt_total: v
                    .get("tokens_evaluated")
                    .and_then(Value::as_u64)
                    .map(|n| n as usize),
            });
            let finished = stop.then(|| {
                if v.get("stop_type").and_then(Value::as_str) == Some("limit")
                    || v.get("stopped_limit").and_then(Value::as_bool) == Some(true)
                {
                    StopReason::MaxTokens
                } else {
                    StopReason::EndOfText
                }
            });
            Piece {
                text: v
                    .get("content")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                finished,
                timings,
            }
        }
        RemoteKind::OpenAi => {
            let choice = v.pointer("/choices/0");
            Piece {
                text: choice
                    .and_then(|c| c.get("text"))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
                finished: finish_reason(
                    choice
                        .and_then(|c| c.get("finish_reason"))
                        .and_then(Value::as_str),
                ),
                timings: usage(v),
            }
        }
    }
}

fn usage(v: &Value) -> Option<Timings> {
    let n = v.pointer("/usage/prompt_tokens").and_then(Value::as_u64)? as usize;
    Some(Timings {
        prompt_n: None,
        prompt_ms: None,
        prompt_total: Some(n),
    })
}

/// The text of a chat event: `{"choices": [{"delta": {"content"}, "finish_reason"}]}`.
pub(crate) fn chat_piece(v: &Value) -> Piece {
    let choice = v.pointer("/choices/0");
    Piece {
        text: choice
            .and_then(|c| c.pointer("/delta/content"))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned(),
        finished: finish_reason(
            choice
                .and_then(|c| c.get("finish_reason"))
                .and_then(Value::as_str),
        ),
        timings: None,
    }
}
