//! Inline completion and its `textDocument/completion` fallback: snapshot → window
//! ([`crate::window`]) → shaping plan → cache → engine → shaping → LSP answer.
//!
//! Every request is answered exactly once: with the suggestion, with an empty result (model not
//! ready, automatic trigger at an unhelpful place, superseded by a newer request for the same
//! document, stopped by an edit) or with an error (document not open, line out of range). The
//! generation of a superseded or cancelled request stops through its `CancelToken`. This module
//! does not decide how text is cut (see [`crate::shaping`]) or how prompts look (the engine).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ghostline_inference::{
    BackendHandle, EngineError, FimRequest, PrefillItem, StatValue, Stats, StopReason,
};
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
use crate::util::{blocking_until, invalid_params};
use crate::window::{window, Window, Windows};
use crate::workspace::{self, Location};

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

    /// How long the model run may go on, in milliseconds (0: no limit). An explicit request's
    /// run ends with its budget. An as-you-type request is answered within its budget (at
    /// the run's first finished line, or with the lines finished when the budget ends) and its
    /// run goes on for an explicit request's budget more, so the rest of the suggestion is
    /// there when the user types through it or the editor asks again (also after a cold
    /// place's prompt took most of the budget: 4–5 s on the 1.5B). That needs a backend that
    /// reports the text while it runs (`streams`); with one that answers at the end (remote
    /// servers) the run ends with the request's budget, as an explicit one does.
    fn run_budget_ms(&self, streams: bool) -> u64 {
        match (
            self.kind,
            self.budget_ms(),
            self.config.invoked_time_budget_ms,
        ) {
            (Kind::Invoked, b, _) => b,
            (Kind::Automatic, b, _) if !streams => b,
            (Kind::Automatic, 0, _) | (Kind::Automatic, _, 0) => 0,
            (Kind::Automatic, a, b) => a + b,
        }
    }

    /// When an as-you-type request answers with what its run has finished so far (`None`:
    /// it waits for the run's end, which its budget bounds when the backend does not stream).
    fn answer_by(&self, streams: bool) -> Option<Instant> {
        let budget = self.budget_ms();
        (streams && self.kind == Kind::Automatic && budget > 0)
            .then(|| self.arrived + Duration::from_millis(budget))
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
    fn spec(
        &self,
        uri: &Uri,
        context: Vec<ghostline_inference::ContextBlock>,
        streams: bool,
    ) -> Spec {
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
            budget_ms: self.run_budget_ms(streams),
            arrived: self.arrived,
            cold_window: self.config.cold_window(),
        };
        let mut request = pipeline::prepare(&place, context, settings).request;
        if self.config.cold_window_invoked {
            request.cold_window = self.config.cold_window();
        }
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
    let streams = engine.streams_progress();
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
                let spec = req.spec(uri, context, streams);
                let prefill = req.prefill(&spec.request);
                match start_generation(session, engine.clone(), uri, spec, prefill) {
                    Some(g) => g,
                    // Closed while the context was built: nothing runs for it.
                    None => return ("closed", None),
                }
            }
        };
        let waiter = Waiter::new(generation.clone());
        // What the user typed since the generation started.
        let typed = &win.prefix[generation.prefix.len()..];
        let waited = wait(req, &generation, typed, streams, &mut superseded).await;
        waiter.finish();
        let outcome = match waited {
            Waited::Superseded => return ("superseded", None),
            Waited::Early(text) => return ("first line", Some(text)),
            Waited::Budget(text) => return ("budget", Some(text)),
            // The model wrote something else than the user typed: run it for this request.
            Waited::Diverged => continue,
            Waited::Done(o) => o,
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

/// How waiting for a generation ended.
enum Waited {
    /// A newer request for the document came.
    Superseded,
    /// The run ended.
    Done(Outcome),
    /// An as-you-type request: the run, still going, has finished a line to offer (after
    /// what the user typed).
    Early(String),
    /// An as-you-type request's budget ended first, with lines finished by then.
    Budget(String),
    /// The run, still going, wrote something else than what the user typed since it started.
    Diverged,
}

/// Waits for `generation` on behalf of `req`, whose prefix extends the generation's by
/// `typed`. An explicit request waits for the run's end. An as-you-type request answers as
/// soon as the run has finished a line after `typed` (see [`pipeline::partial`]), or with
/// what it has finished when the request's budget ends; the run goes on either way. When the
/// budget ends with nothing finished yet (a cold place's prompt is still being evaluated), the
/// request goes on waiting for the first line or the run's end (the run's own deadline bounds
/// it): answered empty, it would leave the user without a suggestion until the editor asks
/// again (VS Code asks only on the next edit or move), and a re-ask finds the same run.
async fn wait(
    req: &Request,
    generation: &Generation,
    typed: &str,
    streams: bool,
    superseded: &mut oneshot::Receiver<()>,
) -> Waited {
    let mut answer_by = req.answer_by(streams);
    let mut partial = generation.partial();
    let mut streaming = answer_by.is_some();
    let offer = |text: &str| {
        pipeline::partial(
            &generation.prefix,
            &generation.suffix,
            req.lang,
            req.mode,
            text,
        )
        .and_then(|s| s.strip_prefix(typed).map(str::to_owned))
        .filter(|rest| !rest.trim().is_empty())
    };
    loop {
        if streaming {
            let text = partial.borrow_and_update().clone();
            if let Some(rest) = offer(&text) {
                return Waited::Early(rest);
            }
            if diverged(&text, typed) {
                return Waited::Diverged;
            }
        }
        let deadline = answer_by.unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
        tokio::select! {
            biased;
            _ = &mut *superseded => return Waited::Superseded,
            o = generation.outcome() => return Waited::Done(o),
            _ = tokio::time::sleep_until(deadline.into()), if answer_by.is_some() => {
                let text = partial.borrow().clone();
                match offer(&text) {
                    Some(rest) => return Waited::Budget(rest),
                    None => answer_by = None,
                }
            }
            changed = partial.changed(), if streaming => {
                // The run no longer reports: its outcome comes next.
                streaming = changed.is_ok();
            }
        }
    }
}

/// Whether a run's text so far contradicts what the user typed since it started: neither is
/// a start of the other. Compared as bytes: the shorter one's length may fall inside a
/// character of the other.
fn diverged(text: &str, typed: &str) -> bool {
    let n = text.len().min(typed.len());
    text.as_bytes()[..n] != typed.as_bytes()[..n]
}

/// A model run's figures on the request's span (those it declares: the token counts, see
/// [`crate::trace`]).
fn record_stats(span: &tracing::Span, st: &Stats) {
    if st.prompt_tokens == 0 {
        return;
    }
    for (name, value) in st.fields() {
        match value {
            StatValue::Count(n) => span.record(name, n),
            StatValue::Ms(ms) => span.record(name, ms),
            StatValue::Flag(b) => span.record(name, b),
        };
    }
}

/// A model run's figures for `ghostline.debugLastCompletion`: [`Stats::fields`] with
/// camelCase names (`promptTokens`, `firstTokenMs`, ...).
fn stats_json(st: &Stats) -> serde_json::Map<String, serde_json::Value> {
    st.fields()
        .into_iter()
        .map(|(name, value)| {
            let mut key = String::new();
            for (i, part) in name.split('_').enumerate() {
                let mut chars = part.chars();
                match chars.next() {
                    Some(c) if i > 0 => key.extend(c.to_uppercase().chain(chars)),
                    _ => key.push_str(part),
                }
            }
            let value = match value {
                StatValue::Count(n) => serde_json::json!(n),
                StatValue::Ms(ms) => serde_json::json!(ms),
                StatValue::Flag(b) => serde_json::json!(b),
            };
            (key, value)
        })
        .collect()
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
    if !workspace::wants_context(&req.config, &req.loc) {
        return Some(Vec::new());
    }
    // The cursor and the first character the prompt's prefix holds.
    let cursor = req.end;
    let from = cursor.saturating_sub(
        req.win
            .prefix
            .chars()
            .count()
            .saturating_sub(req.head.chars().count()),
    );
    let (workspace, loc, engine, rope, config) = (
        session.workspace().clone(),
        req.loc.clone(),
        engine.clone(),
        req.rope.clone(),
        req.config.clone(),
    );
    let build = blocking_until(req.context_deadline(), move |stop| {
        let count = |s: &str| engine.count_tokens(s);
        workspace.completion_context(&loc, &rope, cursor, from, &config, &count, stop)
    });
    // Superseded: the build is dropped, and stops.
    tokio::select! {
        biased;
        _ = superseded => None,
        built = build => Some(built.unwrap_or_default()),
    }
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
    mut spec: Spec,
    prefill: Vec<PrefillItem>,
) -> Option<Arc<Generation>> {
    let (generation, publisher) =
        Generation::new(session.next_id(), &spec.request, spec.cursor_char);
    spec.request.progress = Some(publisher.progress());
    if !session.set_generation(uri, generation.clone()) {
        return None;
    }
    // A run that went on after answering, in a document the user has left, stops.
    session.cancel_unwatched(uri);
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
                let mut last = stats_json(&c.stats);
                last.insert("stop".into(), format!("{:?}", c.stop).into());
                last.insert("prefillStarts".into(), starts.into());
                last.insert("raw".into(), c.text.clone().into());
                session.set_last_generation(last.into());
                tracing::info!(generation = g.id, stop = ?c.stop, "generation finished {}", c.stats);
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
                if e == EngineError::Cancelled {
                    tracing::info!(generation = g.id, "generation cancelled");
                }
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

    #[test]
    fn typed_text_diverges_from_a_run_only_where_they_differ() {
        assert!(!diverged("", "abc"));
        assert!(!diverged("ab", "abc"));
        assert!(!diverged("abcdef", "abc"));
        assert!(diverged("abd", "abc"));
        // A length that falls inside a character of the other text.
        assert!(diverged("é", "e"));
        assert!(!diverged("xé", "x"));
        assert!(diverged("x\u{e9}", "x\u{e8}"));
        assert!(!diverged("naïve", "naï"));
    }

    #[test]
    fn the_debug_command_names_every_figure_in_camel_case() {
        let st = Stats {
            shifted_tokens: 3,
            first_token_ms: 1.5,
            cold: true,
            ..Stats::for_prompt(7)
        };
        let json = serde_json::Value::from(stats_json(&st));
        assert_eq!(json["promptTokens"], 7);
        assert_eq!(json["shiftedTokens"], 3);
        assert_eq!(json["firstTokenMs"], 1.5);
        assert_eq!(json["cold"], true);
        assert_eq!(json.as_object().unwrap().len(), st.fields().len());
    }
}
