//! "Explain this function": the code action that offers it, and the `ghostline.explainFunction`
//! command that writes the explanation with the model's chat template, streaming it through
//! `$/progress` and `ghostline/explainProgress`, returning the Markdown and showing it with
//! `window/showMessage` for clients that ignore command results.
//!
//! The engine serves completions first while an explanation runs. This module does not find
//! functions itself (see [`crate::functions`]) and does not know the chat template.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ghostline_inference::{
    BackendHandle, CancelToken, ChatOutput, ChatRequest, ContextBlock, EngineError,
};
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tower_lsp_server::jsonrpc::{Error, Result};
use tower_lsp_server::ls_types::*;

use crate::config::Config;
use crate::functions;
use crate::position;
use crate::progress::WorkProgress;
use crate::protocol::{
    self, ExplainArgs, ExplainProgressNotification, ExplainProgressParams, State,
};
use crate::shaping::Lang;
use crate::state::Session;
use crate::util::{blocking_until, invalid_params, request_failed};
use crate::workspace::Location;

/// Most characters of source put in the prompt.
const MAX_SOURCE_CHARS: usize = 6_000;
/// Token budget of imported definitions in the prompt.
const DEFINITIONS_BUDGET_TOKENS: usize = 768;
/// How long finding those definitions may take before the explanation starts without them.
const DEFINITIONS_TIME: Duration = Duration::from_secs(2);

/// What is explained.
struct Target {
    name: Option<String>,
    code: String,
    start_line: usize,
    language_id: String,
    loc: Location,
    text: String,
}

/// Finds the function (or the selection) for `position`/`range` in `uri`.
fn target(
    session: &Session,
    uri: &Uri,
    position: Option<Position>,
    range: Option<Range>,
) -> Result<Option<Target>> {
    let snap = session.snapshot(uri)?;
    let (rope, language_id, enc) = (snap.rope, snap.language_id, snap.encoding);
    let chars = match (range, position) {
        (Some(r), _) => {
            position::to_char(&rope, r.start, enc).map_err(|e| invalid_params(e.to_string()))?;
            position::to_char_range(&rope, r, enc)
        }
        (None, Some(p)) => {
            let c = position::to_char(&rope, p, enc).map_err(|e| invalid_params(e.to_string()))?;
            c..c
        }
        (None, None) => return Err(invalid_params("expected a position or a range")),
    };
    let loc = session.workspace().locate(uri);
    let lang = Lang::detect(&language_id, &loc.rel);
    let text = rope.to_string();
    let start = rope.char_to_byte(chars.start);
    let end = rope.char_to_byte(chars.end);
    let found =
        functions::enclosing_function(&loc.rel, &text, start, lang).filter(|f| f.range.end >= end);
    let (name, byte_range) = match found {
        Some(f) => (f.name, f.range),
        None if end > start => (None, start..end),
        None => return Ok(None),
    };
    let start_line = rope.char_to_line(rope.byte_to_char(byte_range.start));
    Ok(Some(Target {
        name,
        code: text[byte_range.clone()].to_owned(),
        start_line,
        language_id,
        loc,
        text,
    }))
}

/// `textDocument/codeAction`: "Explain this function" when the cursor or selection is in one
/// (other languages: when there is a selection).
pub fn code_action(
    session: &Session,
    params: CodeActionParams,
) -> Result<Option<CodeActionResponse>> {
    let kind = protocol::code_action_kind();
    if let Some(only) = &params.context.only {
        let wanted = only.iter().any(|k| {
            let k = k.as_str();
            kind.as_str() == k || kind.as_str().starts_with(&format!("{k}."))
        });
        if !wanted {
            return Ok(None);
        }
    }
    let uri = params.text_document.uri;
    let r = params.range;
    let empty = r.start == r.end;
    let Some(t) = target(session, &uri, Some(r.start), (!empty).then_some(r))? else {
        return Ok(None);
    };
    let title = match &t.name {
        Some(name) => format!("Explain this function ({name})"),
        None => "Explain the selected code".to_owned(),
    };
    let args = ExplainArgs {
        uri,
        position: empty.then_some(r.start),
        range: (!empty).then_some(r),
    };
    let command = Command {
        title: title.clone(),
        command: protocol::EXPLAIN_COMMAND.into(),
        arguments: Some(vec![serde_json::to_value(args).unwrap_or(Value::Null)]),
    };
    Ok(Some(vec![CodeActionOrCommand::CodeAction(CodeAction {
        title,
        kind: Some(kind),
        command: Some(command),
        ..Default::default()
    })]))
}

/// The chat messages for a target.
fn messages(t: &Target, definitions: &[ContextBlock]) -> Vec<(String, String)> {
    let mut code = t.code.clone();
    if code.len() > MAX_SOURCE_CHARS {
        let mut cut = MAX_SOURCE_CHARS;
        while !code.is_char_boundary(cut) {
            cut -= 1;
        }
        code.truncate(cut);
        code.push_str("\n… (truncated)");
    }
    let what = match &t.name {
        Some(name) => format!("the function `{name}`"),
        None => "this code".to_owned(),
    };
    let mut user = format!(
        "Explain {what} from `{}` (line {}). Say what it does, its inputs and its result, and \
         anything non-obvious (edge cases, errors, complexity). Be concise: one short paragraph, \
         then a few bullet points.\n\n```{}\n{}\n```\n",
        t.loc.rel,
        t.start_line + 1,
        t.language_id,
        code.trim_end()
    );
    if !definitions.is_empty() {
        user.push_str("\nDefinitions it uses from other files of the repository:\n");
        for d in definitions {
            user.push_str(&format!(
                "\n`{}`:\n```\n{}\n```\n",
                d.path,
                d.text.trim_end()
            ));
        }
    }
    vec![
        (
            "system".to_owned(),
            "You are ghostline, a senior engineer who explains code clearly and briefly. Answer in Markdown.".to_owned(),
        ),
        ("user".to_owned(), user),
    ]
}

struct CancelOnDrop(CancelToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Sends `ghostline/status` idle when an explanation is dropped (cancelled) before it ends.
struct IdleOnDrop(Option<Arc<Session>>);

impl IdleOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for IdleOnDrop {
    fn drop(&mut self) {
        if let Some(session) = self.0.take() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(async move { session.status(State::Idle, None, None).await });
            }
        }
    }
}

/// The command's arguments.
fn parse_args(args: &[Value]) -> Result<ExplainArgs> {
    let arg = args
        .first()
        .cloned()
        .ok_or_else(|| invalid_params("expected [{uri, position}] or [{uri, range}]"))?;
    serde_json::from_value(arg).map_err(|e| {
        invalid_params(format!(
            "expected [{{uri, position}}] or [{{uri, range}}]: {e}"
        ))
    })
}

/// The target of `args`, found on a blocking thread (proportional to the document).
async fn find_target(session: &Arc<Session>, args: &ExplainArgs) -> Result<Target> {
    let found = {
        let (session, uri, position, range) =
            (session.clone(), args.uri.clone(), args.position, args.range);
        tokio::task::spawn_blocking(move || target(&session, &uri, position, range))
            .await
            .map_err(|e| request_failed(format!("ghostline: explain failed: {e}")))?
    };
    found?.ok_or_else(|| {
        invalid_params(
            "no function at the cursor; put the cursor inside a function or select the code to explain",
        )
    })
}

/// Definitions from other files that the target uses, found on a blocking thread; given up
/// after [`DEFINITIONS_TIME`] or when the request ends (cancelled), so the explanation starts
/// without them rather than late.
async fn definitions(session: &Session, engine: &BackendHandle, t: &Target) -> Vec<ContextBlock> {
    let (workspace, engine) = (session.workspace().clone(), engine.clone());
    let (loc, text, code) = (t.loc.clone(), t.text.clone(), t.code.clone());
    blocking_until(Some(Instant::now() + DEFINITIONS_TIME), move |stop| {
        workspace.definitions_for(
            &loc,
            &text,
            &code,
            DEFINITIONS_BUDGET_TOKENS,
            &|s| engine.count_tokens(s),
            stop,
        )
    })
    .await
    .unwrap_or_default()
}

/// Where the explanation streams to while it is written.
struct Stream<'a> {
    session: &'a Session,
    progress: WorkProgress,
    token: Option<Value>,
    uri: &'a Uri,
    header: String,
}

impl Stream<'_> {
    /// Sends the text so far (or the final text, when `done`).
    async fn send(&self, text: String, done: bool) {
        if !done {
            self.progress.report(Some(text.clone()), None).await;
        }
        self.session
            .client()
            .send_notification::<ExplainProgressNotification>(ExplainProgressParams {
                token: self.token.clone(),
                uri: self.uri.clone(),
                text,
                done,
            })
            .await;
    }

    /// Streams the pieces until the reply comes; returns the reply and the text streamed.
    async fn run(
        &self,
        mut pieces: mpsc::UnboundedReceiver<String>,
        mut reply: oneshot::Receiver<std::result::Result<ChatOutput, EngineError>>,
    ) -> (std::result::Result<ChatOutput, EngineError>, String) {
        let mut text = String::new();
        let mut streaming = true;
        let result = loop {
            tokio::select! {
                piece = pieces.recv(), if streaming => {
                    let Some(piece) = piece else {
                        streaming = false;
                        continue;
                    };
                    text.push_str(&piece);
                    while let Ok(more) = pieces.try_recv() {
                        text.push_str(&more);
                    }
                    self.send(format!("{}{text}", self.header), false).await;
                }
                r = &mut reply => break r.ok(),
            }
        };
        (result.unwrap_or(Err(EngineError::Stopped)), text)
    }
}

/// `workspace/executeCommand` `ghostline.explainFunction`.
pub async fn execute(
    session: &Arc<Session>,
    args: &[Value],
    token: Option<ProgressToken>,
) -> Result<Value> {
    let args = parse_args(args)?;
    if session.too_large(&args.uri) {
        return Err(request_failed(
            "ghostline: the document is too large to explain",
        ));
    }
    let t = find_target(session, &args).await?;
    let Some(engine) = session.engine().ready() else {
        return Err(request_failed(format!(
            "ghostline: {}",
            session.engine().describe()
        )));
    };
    let config = session.config();
    let definitions = definitions(session, &engine, &t).await;
    let title = format!(
        "ghostline: explaining {}",
        t.name.as_deref().unwrap_or("the selection")
    );
    let stream = Stream {
        session,
        progress: session.progress(token.clone(), &title, None).await,
        token: token.as_ref().and_then(|t| serde_json::to_value(t).ok()),
        uri: &args.uri,
        header: header(&t),
    };

    let (pieces, reply, _cancel_on_drop) = submit(&engine, &t, &definitions, &config);
    session
        .status(State::Generating, Some(title.clone()), None)
        .await;
    let idle_on_drop = IdleOnDrop(Some(session.clone()));
    let (result, text) = stream.run(pieces, reply).await;
    // After a fatal error the status stays at the loader's error until the restart.
    let fatal = matches!(&result, Err(e) if e.is_fatal());
    if let Err(e) = &result {
        session.engine_failed(&engine, e);
    }
    let (outcome, final_text) = answer(result, &stream.header, &text);
    stream.progress.end(Some("done".into())).await;
    stream.send(final_text, true).await;
    if !fatal {
        session.status(State::Idle, None, None).await;
    }
    idle_on_drop.disarm();
    let markdown = outcome?;
    session
        .client()
        .show_message(MessageType::INFO, &markdown)
        .await;
    Ok(Value::String(markdown))
}

/// The heading of an explanation: the function's name, else the selection's place.
fn header(t: &Target) -> String {
    match &t.name {
        Some(name) => format!("### `{name}`\n\n"),
        None => format!("### `{}`, line {}\n\n", t.loc.rel, t.start_line + 1),
    }
}

/// Submits the chat that explains `t`: its pieces as they come, the engine's answer, and a
/// guard that cancels the run when the request ends before it.
fn submit(
    engine: &BackendHandle,
    t: &Target,
    definitions: &[ContextBlock],
    config: &Config,
) -> (
    mpsc::UnboundedReceiver<String>,
    oneshot::Receiver<std::result::Result<ChatOutput, EngineError>>,
    CancelOnDrop,
) {
    let cancel = CancelToken::new();
    let cancel_on_drop = CancelOnDrop(cancel.clone());
    let (piece_tx, pieces) = mpsc::unbounded_channel::<String>();
    let (reply_tx, reply) = oneshot::channel();
    engine.submit_chat(
        ChatRequest {
            messages: messages(t, definitions),
            max_tokens: config.explain_max_tokens,
            deadline: Some(Instant::now() + Duration::from_millis(config.explain_time_budget_ms)),
        },
        cancel,
        Box::new(move |piece: &str| {
            let _ = piece_tx.send(piece.to_owned());
        }),
        Box::new(move |r| {
            let _ = reply_tx.send(r);
        }),
    );
    (pieces, reply, cancel_on_drop)
}

/// The answer to the command (the Markdown, or the error) and the last text streamed to the
/// client (the answer, or what had come before the error).
fn answer(
    result: std::result::Result<ChatOutput, EngineError>,
    header: &str,
    text: &str,
) -> (Result<String>, String) {
    let outcome = match result {
        Ok(out) => Ok(format!("{header}{}", out.text.trim())),
        Err(EngineError::Cancelled) => Err(Error::request_cancelled()),
        Err(e) => Err(request_failed(format!(
            "ghostline: the explanation failed: {e}"
        ))),
    };
    let final_text = match &outcome {
        Ok(markdown) => markdown.clone(),
        Err(_) => format!("{header}{text}"),
    };
    (outcome, final_text)
}
