//! Inline completion and its `textDocument/completion` fallback: snapshot → window → shaping
//! plan → cache → engine → shaping → LSP answer.
//!
//! Every request is answered exactly once: with the suggestion, with an empty result (model not
//! ready, automatic trigger at an unhelpful place, superseded by a newer request for the same
//! document, stopped by an edit) or with an error (document not open, line out of range). The
//! generation of a superseded or cancelled request stops through its `CancelToken`. This module
//! does not decide how text is cut (see [`crate::shaping`]) or how prompts look (the engine).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ghostline_context::Stop;
use ghostline_inference::{BackendHandle, EngineError, FimRequest, PrefillItem, Stats, StopReason};
use ropey::Rope;
use tokio::sync::oneshot;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

use crate::config::{Config, Trigger};
use crate::generation::{Generation, Outcome, Spec, Waiter};
use crate::pipeline;
use crate::position;
use crate::prefill;
use crate::protocol::State;
use crate::shaping::{self, Cursor, Lang, Mode};
use crate::state::{InFlight, Session, Snapshot};
use crate::util::{invalid_params, StopOnDrop};
use crate::workspace::Location;

/// The prefix starts at a line that is a multiple of this at most, so that it stays put while
/// typing (smaller windows use a smaller step, see [`Windows::line_step`]).
const PREFIX_LINE_STEP: usize = 64;
/// Characters of a line longer than the window are cut in steps of this at most.
const PREFIX_CHAR_STEP: usize = 4096;

/// How much text around the cursor a request sends (settings `window.prefixChars` and
/// `window.suffixChars`).
///
/// Every token of the window is evaluated when a document is opened (nothing cached for it),
/// and a jump re-evaluates the suffix plus whatever part of the prefix is new, so the sizes
/// trade quality for the time to the first suggestion; the defaults were chosen by
/// measurement on two cores (README, "Responsiveness").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    /// Characters of prefix sent at most.
    pub prefix_chars: usize,
    /// Characters of suffix sent at most (cut at a line break).
    pub suffix_chars: usize,
}

impl Windows {
    /// The windows of `config`.
    pub fn of(config: &Config) -> Windows {
        Windows {
            prefix_chars: config.window_prefix_chars,
            suffix_chars: config.window_suffix_chars,
        }
    }

    /// Lines between two possible prefix starts (anchors): a power of two, about half the
    /// window's lines (at ~32 characters a line) and at most [`PREFIX_LINE_STEP`]. The prefix
    /// starts at the anchor nearest to where the window would start, so it is about the window
    /// long (half a step of lines more or less), it stays put while typing, and all the cursors
    /// of a band of `line_step` lines share it: a start evaluated ahead of the cursor (see
    /// [`crate::prefill`]) serves every line of its band. It depends on the setting only,
    /// never on the text.
    pub(crate) fn line_step(self) -> usize {
        let lines = (self.prefix_chars / 32).max(1);
        (1usize << lines.ilog2()).min(PREFIX_LINE_STEP)
    }

    /// Characters an enormous line is cut in steps of (a power of two, at most a quarter of
    /// the window).
    fn char_step(self) -> usize {
        let quarter = (self.prefix_chars / 4).max(1);
        (1usize << quarter.ilog2()).min(PREFIX_CHAR_STEP)
    }
}

impl Default for Windows {
    fn default() -> Self {
        Windows::of(&Config::default())
    }
}

/// Where (chars) the prefix of a cursor at `start` (at most the document's length) begins.
pub(crate) fn prefix_start(rope: &Rope, start: usize, sizes: Windows) -> usize {
    let prefix_chars = sizes.prefix_chars;
    if start <= prefix_chars {
        return 0;
    }
    let cursor_line = rope.char_to_line(start);
    let step = sizes.line_step();
    // The first line that starts inside the window, rounded to the nearest anchor.
    let cut = start - prefix_chars;
    let mut first = rope.char_to_line(cut);
    if rope.line_to_char(first) < cut {
        first += 1;
    }
    let line = anchor_line(first, step);
    let from = rope.line_to_char(line.min(cursor_line));
    if start - from > prefix_chars * 2 {
        // One enormous line: cut by characters, in steps.
        let step = sizes.char_step();
        (start - prefix_chars).div_ceil(step) * step
    } else {
        from
    }
}

/// The anchor (a multiple of `step`) nearest to `first`, the first line inside the window.
pub(crate) fn anchor_line(first: usize, step: usize) -> usize {
    (first + step / 2) / step * step
}

/// The text sent to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Text before the cursor, from a stable start.
    pub prefix: String,
    /// Text after the cursor, up to a line break.
    pub suffix: String,
}

/// The prefix (chars `..start`, then `head`) and suffix (chars `end..`) around a cursor, at most
/// `sizes` long (the suffix is cut at its last line break inside the window; the prefix starts
/// at the nearest anchor line, see [`Windows::line_step`], so it may be up to half a step of
/// lines shorter or longer).
pub fn window(rope: &Rope, start: usize, end: usize, head: &str, sizes: Windows) -> Window {
    let suffix_chars = sizes.suffix_chars;
    let len = rope.len_chars();
    let start = start.min(len);
    let end = end.clamp(start, len);
    let from = prefix_start(rope, start, sizes);
    let mut prefix = rope.slice(from..start).to_string();
    prefix.push_str(head);
    let mut to = (end + suffix_chars).min(len);
    if to < len {
        let slice = rope.slice(end..to);
        if let Some(nl) = (0..slice.len_chars())
            .rev()
            .find(|&i| slice.char(i) == '\n')
        {
            to = end + nl + 1;
        }
    }
    Window {
        prefix,
        suffix: rope.slice(end..to).to_string(),
    }
}

/// A suggestion ready to be sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// Text to insert.
    pub text: String,
    /// Range it replaces (the cursor, or the selected completion item's range).
    pub range: Range,
    /// The document's language id.
    pub language_id: String,
}

/// Forgets a request when its handler ends or is dropped (`$/cancelRequest` drops the
/// handler's future).
struct FlightGuard {
    session: Arc<Session>,
    uri: Uri,
    id: u64,
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        self.session.unregister_inflight(&self.uri, self.id);
    }
}

/// Which kind of request asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The user asked (invoked inline completion, completion request).
    Invoked,
    /// As-you-type.
    Automatic,
}

/// A completion request resolved against its snapshot: where it asks, what the model sees.
struct Request {
    kind: Kind,
    rope: Rope,
    config: Arc<Config>,
    loc: Location,
    lang: Lang,
    win: Window,
    /// Line or block, from the shaping plan.
    mode: Mode,
    /// Cursor (chars) after the selected item's range.
    end: usize,
    /// The selected completion item's text, prepended to the answer.
    head: String,
    /// What the answer replaces.
    range: Range,
    crlf: bool,
    language_id: String,
    /// When the request arrived: its time budget counts from here.
    arrived: Instant,
}

impl Request {
    fn new(
        session: &Session,
        uri: &Uri,
        snap: Snapshot,
        pos: Position,
        kind: Kind,
        selected: Option<&SelectedCompletionInfo>,
        arrived: Instant,
    ) -> Result<Request> {
        let (rope, enc) = (snap.rope, snap.encoding);
        let cursor =
            position::to_char(&rope, pos, enc).map_err(|e| invalid_params(e.to_string()))?;
        let (start, end, head) = match selected {
            Some(s) => {
                let r = position::to_char_range(&rope, s.range, enc);
                (r.start.min(cursor), r.end.max(cursor), s.text.clone())
            }
            None => (cursor, cursor, String::new()),
        };
        let loc = session.workspace().locate(uri);
        let lang = Lang::detect(&snap.language_id, &loc.rel);
        let win = window(&rope, start, end, &head, Windows::of(&snap.config));
        let plan = shaping::plan(
            &Cursor::new(&win.prefix, &win.suffix, lang),
            snap.config.max_tokens,
            kind == Kind::Invoked,
        );
        let range = Range::new(
            position::to_position(&rope, start, enc),
            position::to_position(&rope, end, enc),
        );
        Ok(Request {
            kind,
            rope,
            config: snap.config,
            loc,
            lang,
            win,
            mode: plan.mode,
            end,
            head,
            range,
            crlf: snap.crlf,
            language_id: snap.language_id,
            arrived,
        })
    }

    /// The time budget in milliseconds (0: none).
    fn budget_ms(&self) -> u64 {
        match self.kind {
            Kind::Invoked => self.config.invoked_time_budget_ms,
            Kind::Automatic => self.config.time_budget_ms,
        }
    }

    /// When the repository context must be ready: half the budget from the arrival, so the
    /// model keeps the other half (`None`: no budget). Past it the request goes on without
    /// context rather than late.
    fn context_deadline(&self) -> Option<Instant> {
        let budget = self.budget_ms();
        (budget > 0).then(|| self.arrived + Duration::from_millis(budget / 2))
    }

    /// Whether an automatic request at this place is not worth a model run.
    fn skip(&self) -> bool {
        self.kind == Kind::Automatic
            && (self.config.trigger == Trigger::Manual
                || shaping::skip_automatic(&Cursor::new(
                    &self.win.prefix,
                    &self.win.suffix,
                    self.lang,
                )))
    }

    /// The answer for a shaped suggestion (`None` when it is empty).
    fn answer(&self, text: &str) -> Option<Answer> {
        if text.is_empty() {
            return None;
        }
        let mut text = format!("{}{text}", self.head);
        if self.crlf {
            text = text.replace('\n', "\r\n");
        }
        Some(Answer {
            text,
            range: self.range,
            language_id: self.language_id.clone(),
        })
    }

    /// The generation to start for this request, with its repository context.
    fn spec(&self, uri: &Uri, context: Vec<ghostline_inference::ContextBlock>) -> Spec {
        let place = pipeline::Place {
            prefix: &self.win.prefix,
            suffix: &self.win.suffix,
            lang: self.lang,
            path: Some(self.loc.rel.clone()),
            repo_name: self.loc.repo.clone(),
        };
        let settings = pipeline::Settings {
            max_tokens: self.config.max_tokens,
            invoked: self.kind == Kind::Invoked,
            budget_ms: self.budget_ms(),
            arrived: self.arrived,
            cold_window: self.config.cold_window(),
        };
        let mut request = pipeline::prepare(&place, context, settings).request;
        // The engine keeps a KV state per document.
        request.document = Some(uri.as_str().to_owned());
        Spec {
            request,
            lang: self.lang,
            mode: self.mode,
            cursor_char: self.end,
        }
    }
}

impl Request {
    /// The starts of this document's prompt to evaluate ahead of the cursor once the request
    /// is answered (see [`crate::prefill`]).
    fn prefill(&self, request: &FimRequest) -> Vec<PrefillItem> {
        let sizes = Windows::of(&self.config);
        let max = if self.config.prefill_enabled {
            self.config.prefill_max_starts
        } else {
            0
        };
        let bands = prefill::plan(&self.rope, self.end, sizes, max);
        prefill::items(&self.rope, &bands, request)
    }
}

/// The suggestion at `pos` of `uri`, or `None`.
pub async fn suggest(
    session: &Arc<Session>,
    uri: &Uri,
    pos: Position,
    kind: Kind,
    selected: Option<&SelectedCompletionInfo>,
) -> Result<Option<Answer>> {
    let arrived = Instant::now();
    let span = tracing::Span::current();
    // Snapshot: nothing below sees later edits.
    let snap = session.snapshot(uri)?;
    let req = Request::new(session, uri, snap, pos, kind, selected, arrived)?;
    // This request replaces the document's previous one, which answers empty at once.
    let id = session.next_id();
    let (superseded_tx, superseded) = oneshot::channel();
    let flight = InFlight {
        id,
        superseded: superseded_tx,
    };
    if !session.register_inflight(uri, flight) {
        span.record("outcome", "closed");
        return Ok(None);
    }
    let _flight = FlightGuard {
        session: session.clone(),
        uri: uri.clone(),
        id,
    };
    if req.skip() {
        span.record("outcome", "skipped");
        return Ok(None);
    }
    if let Some(hit) = session.cached(&req.win.prefix, &req.win.suffix) {
        span.record("outcome", "cached");
        return Ok(req.answer(hit.text()));
    }
    let Some(engine) = session.engine().ready() else {
        span.record("outcome", "not ready");
        return Ok(None);
    };
    if engine.info().fim.is_none() {
        span.record("outcome", "no fim");
        return Ok(None);
    }
    let (outcome, text) = run(session, uri, &req, &engine, superseded).await;
    span.record("outcome", outcome);
    Ok(text.as_deref().and_then(|t| req.answer(t)))
}

/// Runs the model for `req`, or adopts the document's running generation when `req`
/// continues it; returns the outcome's name and the suggestion (before the head is added).
async fn run(
    session: &Arc<Session>,
    uri: &Uri,
    req: &Request,
    engine: &BackendHandle,
    mut superseded: oneshot::Receiver<()>,
) -> (&'static str, Option<String>) {
    let span = tracing::Span::current();
    let win = &req.win;
    for attempt in 0..2 {
        let running = session
            .generation(uri)
            .filter(|g| attempt == 0 && g.extends_to(&win.prefix, &win.suffix));
        let adopted = running.is_some();
        let generation = match running {
            Some(g) => g,
            None => {
                let Some(context) = repo_context(session, engine, req, &mut superseded).await
                else {
                    return ("superseded", None);
                };
                let spec = req.spec(uri, context);
                let prefill = req.prefill(&spec.request);
                match start_generation(session, engine.clone(), uri, spec, prefill) {
                    Some(g) => g,
                    // Closed while the context was built: nothing runs for it.
                    None => return ("closed", None),
                }
            }
        };
        let waiter = Waiter::new(generation.clone());
        let outcome = tokio::select! {
            biased;
            _ = &mut superseded => None,
            o = generation.outcome() => Some(o),
        };
        waiter.finish();
        let Some(outcome) = outcome else {
            return ("superseded", None);
        };
        record_stats(&span, &outcome.stats);
        let text = match outcome.result {
            Ok(text) => text,
            Err(EngineError::Cancelled) => return ("cancelled", None),
            Err(EngineError::Stopped) => return ("engine stopped", None),
            // A remote server that is down fails every request fast during its backoff; the
            // backend logs the first failure and the status bar shows it, so not per keystroke.
            Err(EngineError::Remote(e)) => {
                tracing::debug!("completion failed: {e}");
                return ("failed", None);
            }
            Err(e) => {
                tracing::warn!("completion failed: {e}");
                return ("failed", None);
            }
        };
        // What the user typed since the generation started.
        let typed = &win.prefix[generation.prefix.len()..];
        if typed.is_empty() {
            let name = match (&text, adopted) {
                (Some(_), false) => "suggested",
                (Some(_), true) => "adopted",
                (None, _) => "empty",
            };
            return (name, text);
        }
        if let Some(rest) = text.as_deref().and_then(|t| t.strip_prefix(typed)) {
            if !rest.trim().is_empty() {
                return ("adopted", Some(rest.to_owned()));
            }
        }
        // The user typed something else: run the model for this request.
    }
    ("empty", None)
}

/// Token counts of a model run on the request's span.
fn record_stats(span: &tracing::Span, st: &Stats) {
    if st.prompt_tokens > 0 {
        span.record("prompt_tokens", st.prompt_tokens);
        span.record("reused_tokens", st.reused_tokens);
        span.record("shifted_tokens", st.shifted_tokens);
        span.record("evaluated_tokens", st.evaluated_tokens);
        span.record("generated_tokens", st.generated_tokens);
    }
}

/// The repository context for `req`, built on a blocking thread. It gives up (and the request
/// goes on without context) at [`Request::context_deadline`]; `None` when the request was
/// superseded meanwhile, and the build stops then, as it does when the handler is dropped
/// (`$/cancelRequest`).
async fn repo_context(
    session: &Arc<Session>,
    engine: &ghostline_inference::BackendHandle,
    req: &Request,
    superseded: &mut oneshot::Receiver<()>,
) -> Option<Vec<ghostline_inference::ContextBlock>> {
    let config = &req.config;
    if !config.repo_context_enabled
        || config.repo_context_budget_tokens == 0
        || req.loc.abs.is_none()
    {
        return Some(Vec::new());
    }
    // The cursor and the first character the prompt's prefix holds (chars; the context works
    // in bytes of the same text).
    let cursor = req.end;
    let from = cursor.saturating_sub(
        req.win
            .prefix
            .chars()
            .count()
            .saturating_sub(req.head.chars().count()),
    );
    let by_use = config.repo_context_by_use;
    let (workspace, loc, engine, rope) = (
        session.workspace().clone(),
        req.loc.clone(),
        engine.clone(),
        req.rope.clone(),
    );
    let guard = StopOnDrop::new();
    let flag = guard.flag();
    let deadline = req.context_deadline();
    let build = tokio::task::spawn_blocking(move || {
        let mut stop = Stop::flag(&flag);
        if let Some(d) = deadline {
            stop = stop.until(d);
        }
        let text = rope.to_string();
        let count = |s: &str| engine.count_tokens(s);
        if by_use {
            let focus = ghostline_context::Focus {
                cursor: rope.char_to_byte(cursor.min(rope.len_chars())),
                window_start: rope.char_to_byte(from.min(rope.len_chars())),
            };
            workspace.context_at(&loc, &text, focus, &count, stop)
        } else {
            workspace.context_for(&loc, &text, &count, stop)
        }
    });
    let context = tokio::select! {
        biased;
        _ = superseded => None,
        built = build => Some(built.unwrap_or_default()),
    };
    drop(guard);
    context
}

/// `textDocument/inlineCompletion`.
pub async fn inline_completion(
    session: &Arc<Session>,
    params: InlineCompletionParams,
) -> Result<InlineCompletionList> {
    let tdp = params.text_document_position;
    let kind = if params.context.trigger_kind == InlineCompletionTriggerKind::AUTOMATIC {
        Kind::Automatic
    } else {
        Kind::Invoked
    };
    let answer = suggest(
        session,
        &tdp.text_document.uri,
        tdp.position,
        kind,
        params.context.selected_completion_info.as_ref(),
    )
    .await?;
    Ok(InlineCompletionList {
        items: answer
            .into_iter()
            .map(|a| InlineCompletionItem {
                insert_text: a.text,
                filter_text: None,
                range: Some(a.range),
                command: None,
                insert_text_format: Some(InsertTextFormat::PLAIN_TEXT),
            })
            .collect(),
    })
}

/// `textDocument/completion`: the same suggestion as one completion item.
pub async fn completion(
    session: &Arc<Session>,
    params: CompletionParams,
) -> Result<Option<CompletionResponse>> {
    let tdp = params.text_document_position;
    if session.caps().inline_completion {
        // The client shows the same suggestion as ghost text.
        return Ok(Some(CompletionResponse::List(CompletionList {
            is_incomplete: true,
            items: Vec::new(),
        })));
    }
    let kind = match params.context.map(|c| c.trigger_kind) {
        Some(CompletionTriggerKind::INVOKED) | None => Kind::Invoked,
        Some(_) => Kind::Automatic,
    };
    let answer = suggest(session, &tdp.text_document.uri, tdp.position, kind, None).await?;
    let items = answer.into_iter().map(completion_item).collect();
    Ok(Some(CompletionResponse::List(CompletionList {
        is_incomplete: true,
        items,
    })))
}

fn completion_item(a: Answer) -> CompletionItem {
    let first = a
        .text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("")
        .to_owned();
    let label: String = if first.chars().count() > 80 {
        first.chars().take(79).chain(['…']).collect()
    } else {
        first
    };
    CompletionItem {
        label,
        kind: Some(CompletionItemKind::TEXT),
        detail: Some("ghostline".into()),
        documentation: Some(Documentation::MarkupContent(MarkupContent {
            kind: MarkupKind::Markdown,
            value: format!(
                "```{}\n{}\n```",
                a.language_id,
                a.text.replace("\r\n", "\n")
            ),
        })),
        preselect: Some(true),
        sort_text: Some("0".into()),
        insert_text_format: Some(InsertTextFormat::PLAIN_TEXT),
        text_edit: Some(CompletionTextEdit::Edit(TextEdit {
            range: a.range,
            new_text: a.text,
        })),
        ..Default::default()
    }
}

/// Starts a generation for `uri` on its own task and registers it as the document's current
/// one (cancelling the previous one); `None` when the document was closed meanwhile. A fatal
/// engine error is reported to the loader, which restarts the engine.
fn start_generation(
    session: &Arc<Session>,
    engine: BackendHandle,
    uri: &Uri,
    spec: Spec,
    prefill: Vec<PrefillItem>,
) -> Option<Arc<Generation>> {
    let (generation, publisher) =
        Generation::new(session.next_id(), &spec.request, spec.cursor_char);
    if !session.set_generation(uri, generation.clone()) {
        return None;
    }
    let (session, uri, g) = (session.clone(), uri.clone(), generation.clone());
    tokio::spawn(async move {
        let (reply_tx, reply) = tokio::sync::oneshot::channel();
        engine.submit_fim(
            spec.request,
            g.cancel.clone(),
            Box::new(move |r| {
                let _ = reply_tx.send(r);
            }),
        );
        // While the model server is down its error stays in the status bar.
        if !session.engine().remote_down() {
            session.status(State::Generating, None, None).await;
        }
        let outcome = match reply.await {
            Ok(Ok(c)) => {
                let shaped =
                    pipeline::finish(&g.prefix, &g.suffix, spec.lang, spec.mode, &c.text, c.stop);
                // Answered: while the user reads it, the engine may evaluate ahead.
                let starts: Vec<String> = prefill.iter().map(|i| i.anchor.clone()).collect();
                engine.prefill(uri.as_str().to_owned(), prefill);
                let st = c.stats;
                session.set_last_generation(serde_json::json!({
                    "promptTokens": st.prompt_tokens,
                    "reusedTokens": st.reused_tokens,
                    "shiftedTokens": st.shifted_tokens,
                    "evaluatedTokens": st.evaluated_tokens,
                    "generatedTokens": st.generated_tokens,
                    "firstTokenMs": st.first_token_ms,
                    "totalMs": st.total_ms,
                    "stop": format!("{:?}", c.stop),
                    "cold": st.cold,
                    "prefillStarts": starts,
                }));
                tracing::info!(
                    generation = g.id,
                    prompt_tokens = st.prompt_tokens,
                    reused_tokens = st.reused_tokens,
                    shifted_tokens = st.shifted_tokens,
                    evaluated_tokens = st.evaluated_tokens,
                    generated_tokens = st.generated_tokens,
                    prompt_ms = format_args!("{:.0}", st.prompt_ms),
                    first_token_ms = format_args!("{:.0}", st.first_token_ms),
                    total_ms = format_args!("{:.0}", st.total_ms),
                    stop = ?c.stop,
                    cold = st.cold,
                    "generation finished"
                );
                tracing::debug!(raw = ?c.text, shaped = ?shaped, mode = ?spec.mode, "generation {}", g.id);
                if c.stop != StopReason::Deadline {
                    session.remember(&g.prefix, &g.suffix, shaped.as_deref().unwrap_or(""));
                }
                Outcome {
                    result: Ok(shaped),
                    stats: c.stats,
                }
            }
            Ok(Err(e)) => {
                session.engine_failed(&engine, &e);
                Outcome {
                    result: Err(e),
                    stats: Stats::default(),
                }
            }
            Err(_) => Outcome {
                result: Err(EngineError::Stopped),
                stats: Stats::default(),
            },
        };
        // After a fatal error the status stays at the loader's error until the restart.
        let fatal = matches!(&outcome.result, Err(e) if e.is_fatal());
        publisher.publish(outcome);
        if session.clear_generation(&uri, g.id) && !fatal && !session.engine().remote_down() {
            session.status(State::Idle, None, None).await;
        }
    });
    Some(generation)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The windows before they became settings.
    const OLD: Windows = Windows {
        prefix_chars: 24_000,
        suffix_chars: 4_000,
    };

    #[test]
    fn small_documents_are_sent_whole() {
        let rope = Rope::from_str("def f():\n    return 1\n\nprint(f())\n");
        let w = window(&rope, 13, 13, "", Windows::default());
        assert_eq!(w.prefix, "def f():\n    ");
        assert_eq!(w.suffix, "return 1\n\nprint(f())\n");
        let w = window(&rope, 13, 15, "ret", Windows::default());
        assert_eq!(w.prefix, "def f():\n    ret");
        assert_eq!(w.suffix, "turn 1\n\nprint(f())\n");
    }

    fn numbered(lines: usize) -> Rope {
        // 19 characters a line.
        let text: String = (0..lines)
            .map(|i| format!("line_{i:05} = {i:05}\n"))
            .collect();
        Rope::from_str(&text)
    }

    #[test]
    fn large_documents_start_at_a_stable_line_and_cut_the_suffix_at_a_line() {
        let rope = numbered(3000);
        let cursor = rope.line_to_char(2000) + 4;
        let w = window(&rope, cursor, cursor, "", OLD);
        let half = PREFIX_LINE_STEP / 2 * 19;
        assert!(
            w.prefix.len() <= OLD.prefix_chars + half,
            "{}",
            w.prefix.len()
        );
        let first_line: usize = w.prefix[5..10].parse().unwrap();
        assert_eq!(first_line % PREFIX_LINE_STEP, 0);
        // One more character typed: the same start.
        let w2 = window(&rope, cursor + 1, cursor + 1, "", OLD);
        assert_eq!(&w2.prefix[..20], &w.prefix[..20]);
        assert!(w.suffix.len() <= OLD.suffix_chars && w.suffix.ends_with('\n'));
    }

    #[test]
    fn one_enormous_line() {
        let text = "x".repeat(100_000);
        let rope = Rope::from_str(&text);
        let w = window(&rope, 90_000, 90_000, "", OLD);
        assert!(w.prefix.len() <= OLD.prefix_chars && w.prefix.len() > OLD.prefix_chars - 4096);
        assert_eq!(w.suffix.len(), OLD.suffix_chars);
        let small = Windows {
            prefix_chars: 1000,
            suffix_chars: 300,
        };
        let w = window(&rope, 90_000, 90_000, "", small);
        assert!(
            w.prefix.len() <= 1000 && w.prefix.len() > 750,
            "{}",
            w.prefix.len()
        );
        // No line break inside the suffix window: cut by characters.
        assert_eq!(w.suffix.len(), 300);
    }

    #[test]
    fn the_windows_follow_the_settings() {
        let rope = numbered(3000);
        let cursor = rope.line_to_char(2000);
        for (prefix_chars, suffix_chars) in [(3000, 1000), (500, 100), (24_000, 4000), (64, 0)] {
            let sizes = Windows {
                prefix_chars,
                suffix_chars,
            };
            let w = window(&rope, cursor, cursor, "", sizes);
            // The window, give or take half a step of lines (the nearest anchor), and a step
            // is at most half the window.
            let half = (sizes.line_step() / 2 + 1) * 19;
            assert!(
                w.prefix.len() <= prefix_chars + half,
                "{sizes:?}: {}",
                w.prefix.len()
            );
            assert!(
                w.prefix.len() + half >= prefix_chars,
                "{sizes:?}: {}",
                w.prefix.len()
            );
            assert!(sizes.line_step() * 19 <= prefix_chars / 2 + 19, "{sizes:?}");
            // The suffix: whole lines, at most the window, at most one line short of it.
            assert!(w.suffix.len() <= suffix_chars, "{sizes:?}");
            assert!(w.suffix.len() + 19 > suffix_chars, "{sizes:?}");
            assert!(w.suffix.is_empty() || w.suffix.ends_with('\n'));
        }
        // The old constants give the old windows.
        assert_eq!(OLD.line_step(), PREFIX_LINE_STEP);
        assert_eq!(OLD.char_step(), PREFIX_CHAR_STEP);
        assert_eq!(
            Windows::of(&Config::default()),
            Windows {
                prefix_chars: crate::config::DEFAULT_PREFIX_CHARS,
                suffix_chars: crate::config::DEFAULT_SUFFIX_CHARS,
            }
        );
    }

    #[test]
    fn a_small_window_keeps_its_start_while_typing() {
        // Typing forward within a rounding step keeps the prefix start, so the KV cache of the
        // document's prompt is reused keystroke after keystroke.
        let sizes = Windows::default();
        let step = sizes.line_step();
        assert!(step > 1 && step.is_power_of_two(), "{step}");
        let rope = numbered(3000);
        let at = rope.line_to_char(1000);
        let first = window(&rope, at, at, "", sizes);
        let mut starts = std::collections::BTreeSet::new();
        for typed in 0..(step * 19) {
            let w = window(&rope, at + typed, at + typed, "", sizes);
            starts.insert(w.prefix[..19].to_owned());
        }
        // Typing a step of lines moves the start at most once.
        assert!(starts.len() <= 2, "{starts:?}");
        // Typing a line break (the document grows by a line) does not move it either.
        let mut text = rope.to_string();
        text.insert(at + 4, '\n');
        let grown = Rope::from_str(&text);
        let w = window(&grown, at + 5, at + 5, "", sizes);
        assert_eq!(w.prefix[..19], first.prefix[..19]);
    }
}
