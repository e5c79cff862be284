//! The server in-process: [`ghostline_lsp::serve`] on in-memory pipes (the binary passes
//! stdin and stdout), with the fake backend, through a whole session: `initialize`,
//! `initialized`, `didOpen`, an invoked inline completion, `shutdown`, `exit` — and `serve`
//! returns exit code 0.
//!
//! The client here is minimal: Content-Length frames both ways, server-to-client requests
//! answered (`workspace/configuration` with the settings, anything else with `null`),
//! notifications kept. The end-to-end tests of the binary are in `tests/tests/`.

use std::time::Duration;

use ghostline_lsp::{serve, Options};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, DuplexStream};

/// Everything the session may take.
const TIMEOUT: Duration = Duration::from_secs(60);

struct Client {
    to_server: DuplexStream,
    from_server: BufReader<DuplexStream>,
    settings: Value,
    /// Notifications from the server, in order.
    notifications: Vec<Value>,
    next_id: i64,
}

impl Client {
    async fn send(&mut self, msg: Value) {
        let body = msg.to_string();
        let frame = format!("Content-Length: {}\r\n\r\n{body}", body.len());
        self.to_server.write_all(frame.as_bytes()).await.unwrap();
        self.to_server.flush().await.unwrap();
    }

    /// The next message from the server (`None`: the stream ended).
    async fn read(&mut self) -> Option<Value> {
        let mut length = None;
        loop {
            let mut line = String::new();
            if self.from_server.read_line(&mut line).await.unwrap() == 0 {
                return None;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = Some(value.trim().parse::<usize>().unwrap());
                }
            }
        }
        let mut body = vec![0; length.expect("a Content-Length header")];
        self.from_server.read_exact(&mut body).await.unwrap();
        Some(serde_json::from_slice(&body).unwrap())
    }

    /// Handles one message that is not the awaited one: answers requests, keeps notifications.
    async fn handle(&mut self, msg: Value) {
        match (msg.get("id"), msg.get("method").and_then(Value::as_str)) {
            (Some(id), Some(method)) => {
                let result = if method == "workspace/configuration" {
                    let n = msg["params"]["items"].as_array().map_or(1, Vec::len);
                    Value::Array(vec![self.settings.clone(); n])
                } else {
                    Value::Null
                };
                self.send(json!({"jsonrpc": "2.0", "id": id, "result": result}))
                    .await;
            }
            (None, Some(_)) => self.notifications.push(msg),
            _ => panic!("a response nobody waits for: {msg}"),
        }
    }

    /// Sends a request and returns its response (`result` or `error`).
    async fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        loop {
            let msg = self.read().await.expect("the server answers");
            if msg.get("id") == Some(&json!(id)) && msg.get("method").is_none() {
                return msg;
            }
            self.handle(msg).await;
        }
    }

    async fn notify(&mut self, method: &str, params: Value) {
        self.send(json!({"jsonrpc": "2.0", "method": method, "params": params}))
            .await;
    }

    /// Waits for a `ghostline/status` notification with `state`.
    async fn wait_status(&mut self, state: &str) {
        let seen = |n: &Vec<Value>| {
            n.iter()
                .any(|m| m["method"] == "ghostline/status" && m["params"]["state"] == state)
        };
        while !seen(&self.notifications) {
            let msg = self.read().await.expect("the server goes on");
            self.handle(msg).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_a_whole_session_in_process_with_the_fake_backend() {
    let (to_server, server_in) = tokio::io::duplex(1 << 16);
    let (server_out, from_server) = tokio::io::duplex(1 << 16);
    let server = tokio::spawn(serve(Options::default(), server_in, server_out));
    let settings = json!({"backend": "fake", "repoContext": {"enabled": false}});
    let mut client = Client {
        to_server,
        from_server: BufReader::new(from_server),
        settings: settings.clone(),
        notifications: Vec::new(),
        next_id: 0,
    };
    let session = async {
        let init = client
            .request(
                "initialize",
                json!({
                    "processId": null,
                    "rootUri": null,
                    "capabilities": {
                        "workspace": {"configuration": true},
                        "textDocument": {"inlineCompletion": {}},
                    },
                    "initializationOptions": settings,
                }),
            )
            .await;
        assert!(
            init["result"]["capabilities"]["inlineCompletionProvider"].is_object()
                || init["result"]["capabilities"]["inlineCompletionProvider"] == true,
            "{init}"
        );
        client.notify("initialized", json!({})).await;
        client.wait_status("ready").await;

        let uri = "file:///in-process/total.py";
        let text = "def total(xs):\n    s = 0\n    \n    return s\n";
        client
            .notify(
                "textDocument/didOpen",
                json!({"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}}),
            )
            .await;
        let answer = client
            .request(
                "textDocument/inlineCompletion",
                json!({
                    "textDocument": {"uri": uri},
                    "position": {"line": 2, "character": 4},
                    "context": {"triggerKind": 1},
                }),
            )
            .await;
        let items = answer["result"]["items"].as_array().cloned();
        let first = items.as_ref().and_then(|i| i.first()).cloned();
        let insert = first
            .as_ref()
            .and_then(|i| i["insertText"].as_str())
            .unwrap_or("");
        // The fake's answer on a blank line of a body: an assignment.
        assert!(insert.starts_with("value_"), "{answer}");

        let shutdown = client.request("shutdown", Value::Null).await;
        assert!(shutdown.get("error").is_none(), "{shutdown}");
        client.notify("exit", Value::Null).await;
    };
    tokio::time::timeout(TIMEOUT, session)
        .await
        .expect("the session ends in time");
    let exit = tokio::time::timeout(TIMEOUT, server)
        .await
        .expect("serve returns after exit")
        .unwrap();
    assert_eq!(exit.code, 0);
    // Nothing more on the wire: the output ends with the server.
    let rest = tokio::time::timeout(Duration::from_secs(5), client.read()).await;
    assert!(matches!(rest, Ok(None)), "{rest:?}");
}
