//! Inline completion and its `textDocument/completion` fallback: snapshot → window → shaping
//! plan → cache → engine → shaping → LSP answer.
//!
//! Every request is answered exactly once: with the suggestion, with an empty result (model not
//! ready, automatic trigger at an unhelpful place, superseded by a newer request for the same
//! document, stopped by an edit) or with an error (document not open, line out of range). The
//! generation of a superseded or cancelled request stops through its `CancelToken`. This module
//! does not decide how text is cut (see [`crate::shaping`]) or how prompts look (the engine).

use std::sync::Arc;

use ghostline_inference::EngineError;
use ropey::Rope;
use tokio::sync::oneshot;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;

use crate::config::Trigger;
use crate::generation::{self, Waiter};
use crate::pipeline;
use crate::position::{self, Encoding};
use crate::server::{invalid_params, lock, InFlight, Inner};
use crate::shaping::{self, Cursor, Lang};

/// Characters of prefix sent at most.
const PREFIX_CHARS: usize = 24_000;
/// Characters of suffix sent at most (cut at a line break).
const SUFFIX_CHARS: usize = 4_000;
/// The prefix starts at a line that is a multiple of this, so that it stays put while typing.
const PREFIX_LINE_STEP: usize = 64;

/// The text sent to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    /// Text before the cursor, from a stable start.
    pub prefix: String,
    /// Text after the cursor, up to a line break.
    pub suffix: String,
}

/// The prefix (chars `..start`, then `head`) and suffix (chars `end..`) around a cursor.
pub fn window(rope: &Rope, start: usize, end: usize, head: &str) -> Window {
    let len = rope.len_chars();
    let start = start.min(len);
    let end = end.clamp(start, len);
    let from = if start <= PREFIX_CHARS {
        0
    } else {
        let cursor_line = rope.char_to_line(start);
        let line = rope
            .char_to_line(start - PREFIX_CHARS)
            .div_ceil(PREFIX_LINE_STEP)
            * PREFIX_LINE_STEP;
        let from = rope.line_to_char(line.min(cursor_line));
        if start - from > PREFIX_CHARS * 2 {
            // One enormous line: cut by characters, in steps.
            let step = 4096;
            (start - PREFIX_CHARS).div_ceil(step) * step
        } else {
            from
        }
    };
    let mut prefix = rope.slice(from..start).to_string();
    prefix.push_str(head);
    let mut to = (end + SUFFIX_CHARS).min(len);
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
    inner: Arc<Inner>,
    uri: Uri,
    id: u64,
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        self.inner.unregister_inflight(&self.uri, self.id);
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

/// The suggestion at `pos` of `uri`, or `None`.
pub async fn suggest(
    inner: &Arc<Inner>,
    uri: &Uri,
    pos: Position,
    kind: Kind,
    selected: Option<&SelectedCompletionInfo>,
) -> Result<Option<Answer>> {
    let span = tracing::Span::current();
    let enc = inner.encoding();
    let config = inner.config();
    // Snapshot: nothing below sees later edits.
    let (rope, language_id, crlf) = {
        let docs = lock(&inner.docs);
        let doc = docs
            .get(uri)
            .ok_or_else(|| invalid_params(format!("document not open: {}", uri.as_str())))?;
        (doc.rope.clone(), doc.language_id.clone(), doc.uses_crlf())
    };
    let cursor = position::to_char(&rope, pos, enc).map_err(|e| invalid_params(e.to_string()))?;
    let (start, end, head) = match selected {
        Some(s) => {
            let r = position::to_char_range(&rope, s.range, enc);
            (r.start.min(cursor), r.end.max(cursor), s.text.clone())
        }
        None => (cursor, cursor, String::new()),
    };
    // This request replaces the document's previous one, which answers empty at once.
    let id = inner.next_id();
    let (superseded_tx, mut superseded) = oneshot::channel();
    inner.register_inflight(
        uri,
        InFlight {
            id,
            superseded: superseded_tx,
        },
    );
    let _flight = FlightGuard {
        inner: inner.clone(),
        uri: uri.clone(),
        id,
    };

    let loc = inner.workspace.locate(uri);
    let lang = Lang::detect(&language_id, &loc.rel);
    let win = window(&rope, start, end, &head);
    let cur = Cursor::new(&win.prefix, &win.suffix, lang);
    if kind == Kind::Automatic
        && (config.trigger == Trigger::Manual || shaping::skip_automatic(&cur))
    {
        span.record("outcome", "skipped");
        return Ok(None);
    }
    let plan = shaping::plan(&cur, config.max_tokens, kind == Kind::Invoked);
    let range = Range::new(
        position::to_position(&rope, start, enc),
        position::to_position(&rope, end, enc),
    );
    let finish = |text: &str| -> Option<Answer> {
        if text.is_empty() {
            return None;
        }
        let mut text = format!("{head}{text}");
        if crlf {
            text = text.replace('\n', "\r\n");
        }
        Some(Answer {
            text,
            range,
            language_id: language_id.clone(),
        })
    };

    let hit = lock(&inner.cache).get(&win.prefix, &win.suffix);
    if let Some(hit) = hit {
        span.record("outcome", "cached");
        return Ok(finish(hit.text()));
    }
    let Some(engine) = inner.engine.ready() else {
        span.record("outcome", "not ready");
        return Ok(None);
    };
    if engine.info().fim.is_none() {
        span.record("outcome", "no fim");
        return Ok(None);
    }

    let budget = match kind {
        Kind::Invoked => config.invoked_time_budget_ms,
        Kind::Automatic => config.time_budget_ms,
    };
    let mut adopted = true;
    for attempt in 0..2 {
        // Adopt the document's running generation when this request continues it.
        let running = lock(&inner.generations)
            .get(uri)
            .filter(|g| attempt == 0 && g.extends_to(&win.prefix, &win.suffix))
            .cloned();
        let generation = match running {
            Some(g) => g,
            None => {
                adopted = false;
                let context = repo_context(inner, &engine, &loc, &rope, &config).await;
                let place = pipeline::Place {
                    prefix: &win.prefix,
                    suffix: &win.suffix,
                    lang,
                    path: Some(loc.rel.clone()),
                    repo_name: loc.repo.clone(),
                };
                let settings = pipeline::Settings {
                    max_tokens: config.max_tokens,
                    invoked: kind == Kind::Invoked,
                    budget_ms: budget,
                };
                let mut request = pipeline::prepare(&place, context, settings).request;
                // The engine keeps a KV state per document.
                request.document = Some(uri.as_str().to_owned());
                let spec = generation::Spec {
                    request,
                    lang,
                    mode: plan.mode,
                    cursor_char: end,
                };
                generation::start(inner, engine.clone(), uri, spec)
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
            span.record("outcome", "superseded");
            return Ok(None);
        };
        let st = outcome.stats;
        if st.prompt_tokens > 0 {
            span.record("prompt_tokens", st.prompt_tokens);
            span.record("reused_tokens", st.reused_tokens);
            span.record("shifted_tokens", st.shifted_tokens);
            span.record("evaluated_tokens", st.evaluated_tokens);
            span.record("generated_tokens", st.generated_tokens);
        }
        let text = match outcome.result {
            Ok(text) => text,
            Err(EngineError::Cancelled) => {
                span.record("outcome", "cancelled");
                return Ok(None);
            }
            Err(EngineError::Stopped) => {
                span.record("outcome", "engine stopped");
                return Ok(None);
            }
            Err(e) => {
                tracing::warn!("completion failed: {e}");
                span.record("outcome", "failed");
                return Ok(None);
            }
        };
        // What the user typed since the generation started.
        let typed = &win.prefix[generation.prefix.len()..];
        if typed.is_empty() {
            span.record(
                "outcome",
                match (&text, adopted) {
                    (Some(_), false) => "suggested",
                    (Some(_), true) => "adopted",
                    (None, _) => "empty",
                },
            );
            return Ok(text.as_deref().and_then(finish));
        }
        if let Some(rest) = text.as_deref().and_then(|t| t.strip_prefix(typed)) {
            if !rest.trim().is_empty() {
                span.record("outcome", "adopted");
                return Ok(finish(rest));
            }
        }
        // The user typed something else: run the model for this request.
    }
    span.record("outcome", "empty");
    Ok(None)
}

async fn repo_context(
    inner: &Arc<Inner>,
    engine: &ghostline_inference::BackendHandle,
    loc: &crate::workspace::Location,
    rope: &Rope,
    config: &crate::config::Config,
) -> Vec<ghostline_inference::ContextBlock> {
    if !config.repo_context_enabled || config.repo_context_budget_tokens == 0 || loc.abs.is_none() {
        return Vec::new();
    }
    let (inner, loc, engine, rope) = (inner.clone(), loc.clone(), engine.clone(), rope.clone());
    tokio::task::spawn_blocking(move || {
        let text = rope.to_string();
        inner
            .workspace
            .context_for(&loc, &text, &|s| engine.count_tokens(s))
    })
    .await
    .unwrap_or_default()
}

/// `textDocument/inlineCompletion`.
pub async fn inline_completion(
    inner: &Arc<Inner>,
    params: InlineCompletionParams,
) -> Result<InlineCompletionList> {
    let tdp = params.text_document_position;
    let kind = if params.context.trigger_kind == InlineCompletionTriggerKind::AUTOMATIC {
        Kind::Automatic
    } else {
        Kind::Invoked
    };
    let answer = suggest(
        inner,
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
    inner: &Arc<Inner>,
    params: CompletionParams,
) -> Result<Option<CompletionResponse>> {
    let tdp = params.text_document_position;
    if lock(&inner.caps).inline_completion {
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
    let answer = suggest(inner, &tdp.text_document.uri, tdp.position, kind, None).await?;
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

/// The encoding-aware conversion used in tests of this module.
#[allow(dead_code)]
fn to_lsp(rope: &Rope, offset: usize, enc: Encoding) -> Position {
    position::to_position(rope, offset, enc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_documents_are_sent_whole() {
        let rope = Rope::from_str("def f():\n    return 1\n\nprint(f())\n");
        let w = window(&rope, 13, 13, "");
        assert_eq!(w.prefix, "def f():\n    ");
        assert_eq!(w.suffix, "return 1\n\nprint(f())\n");
        let w = window(&rope, 13, 15, "ret");
        assert_eq!(w.prefix, "def f():\n    ret");
        assert_eq!(w.suffix, "turn 1\n\nprint(f())\n");
    }

    #[test]
    fn large_documents_start_at_a_stable_line_and_cut_the_suffix_at_a_line() {
        let text: String = (0..3000).map(|i| format!("line_{i:05} = {i}\n")).collect();
        let rope = Rope::from_str(&text);
        let cursor = rope.line_to_char(2000) + 4;
        let w = window(&rope, cursor, cursor, "");
        assert!(w.prefix.len() <= PREFIX_CHARS, "{}", w.prefix.len());
        let first_line: usize = w.prefix[5..10].parse().unwrap();
        assert_eq!(first_line % PREFIX_LINE_STEP, 0);
        // One more character typed: the same start.
        let w2 = window(&rope, cursor + 1, cursor + 1, "");
        assert_eq!(&w2.prefix[..20], &w.prefix[..20]);
        assert!(w.suffix.len() <= SUFFIX_CHARS && w.suffix.ends_with('\n'));
    }

    #[test]
    fn one_enormous_line() {
        let text = "x".repeat(100_000);
        let rope = Rope::from_str(&text);
        let w = window(&rope, 90_000, 90_000, "");
        assert!(w.prefix.len() <= PREFIX_CHARS && w.prefix.len() > PREFIX_CHARS - 4096);
        assert_eq!(w.suffix.len(), SUFFIX_CHARS);
    }
}
