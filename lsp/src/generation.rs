//! One model run for a document, shared by the requests that can use it.
//!
//! A generation runs as its own task: it submits a FIM request to the engine, shapes the
//! result, stores it in the cache and publishes it. Requests wait for it; they do not own it.
//! While the user types, every keystroke brings a `didChange` and a new request, and a model
//! run takes longer than a keystroke. So a generation is kept, not cancelled, while the edits
//! are insertions at its cursor (typing forward) and the new request's prefix extends its
//! prefix with the same suffix: the new request *adopts* it and answers with what remains of
//! the suggestion after the typed text. Any other edit, a request elsewhere, or
//! `$/cancelRequest` of its last waiting request cancels it through its [`CancelToken`].
//!
//! This module does not decide what is asked (see [`crate::complete`]) or how text is cut
//! ([`crate::shaping`]).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use ghostline_inference::{BackendHandle, CancelToken, EngineError, FimRequest, Stats, StopReason};
use tokio::sync::watch;
use tower_lsp_server::ls_types::Uri;

use crate::pipeline;
use crate::protocol::State;
use crate::server::{lock, Inner};
use crate::shaping::{Lang, Mode};

/// What a generation produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The shaped suggestion (`None`: nothing useful), or why there is none.
    pub result: Result<Option<String>, EngineError>,
    /// Token counts and timings of the run.
    pub stats: Stats,
}

/// A model run for one document.
pub struct Generation {
    /// Identifies it.
    pub id: u64,
    /// The prefix it completes.
    pub prefix: String,
    /// The suffix it completes.
    pub suffix: String,
    /// Stops it.
    pub cancel: CancelToken,
    /// Where typing continues it: the character offset of the cursor in the document, advanced
    /// by insertions there.
    pub expected_char: AtomicUsize,
    /// Requests waiting for it.
    pub waiters: AtomicUsize,
    done: AtomicBool,
    result: watch::Receiver<Option<Outcome>>,
}

impl Generation {
    /// Whether it has finished (or been cancelled and answered).
    pub fn is_done(&self) -> bool {
        self.done.load(Ordering::Acquire)
    }

    /// Whether a request for `prefix`/`suffix` can use its result.
    pub fn extends_to(&self, prefix: &str, suffix: &str) -> bool {
        !self.is_done()
            && !self.cancel.is_cancelled()
            && self.suffix == suffix
            && prefix.starts_with(&self.prefix)
    }

    /// Waits for the outcome.
    pub async fn outcome(&self) -> Outcome {
        let mut rx = self.result.clone();
        loop {
            if let Some(o) = rx.borrow_and_update().clone() {
                return o;
            }
            if rx.changed().await.is_err() {
                return Outcome {
                    result: Err(EngineError::Stopped),
                    stats: Stats::default(),
                };
            }
        }
    }

    /// A document edit: insertions at the expected cursor keep it, anything else cancels it.
    /// `at` is the character offset of an insertion (before applying it), `None` for any
    /// other kind of change.
    pub fn on_edit(&self, at: Option<usize>, inserted_chars: usize) -> bool {
        match at {
            Some(at) if at == self.expected_char.load(Ordering::Acquire) => {
                self.expected_char
                    .fetch_add(inserted_chars, Ordering::AcqRel);
                true
            }
            _ => {
                self.cancel.cancel();
                false
            }
        }
    }
}

/// What a generation needs besides the engine request.
pub struct Spec {
    /// The FIM request (its prefix and suffix are the generation's).
    pub request: FimRequest,
    /// Language, for shaping.
    pub lang: Lang,
    /// Line or block.
    pub mode: Mode,
    /// Cursor offset (chars) in the document.
    pub cursor_char: usize,
}

/// Starts a generation for `uri` and registers it as the document's current one (cancelling
/// the previous one).
pub fn start(inner: &Arc<Inner>, engine: BackendHandle, uri: &Uri, spec: Spec) -> Arc<Generation> {
    let (tx, rx) = watch::channel(None);
    let cancel = CancelToken::new();
    let generation = Arc::new(Generation {
        id: inner.next_id(),
        prefix: spec.request.prefix.clone(),
        suffix: spec.request.suffix.clone(),
        cancel: cancel.clone(),
        expected_char: AtomicUsize::new(spec.cursor_char),
        waiters: AtomicUsize::new(0),
        done: AtomicBool::new(false),
        result: rx,
    });
    if let Some(old) = lock(&inner.generations).insert(uri.clone(), generation.clone()) {
        old.cancel.cancel();
    }
    let (inner, uri, g) = (inner.clone(), uri.clone(), generation.clone());
    tokio::spawn(async move {
        let (reply_tx, reply) = tokio::sync::oneshot::channel();
        engine.submit_fim(
            spec.request,
            cancel,
            Box::new(move |r| {
                let _ = reply_tx.send(r);
            }),
        );
        // While the model server is down its error stays in the status bar.
        if !inner.engine.remote_down() {
            inner.status(State::Generating, None, None).await;
        }
        let outcome = match reply.await {
            Ok(Ok(c)) => {
                let shaped =
                    pipeline::finish(&g.prefix, &g.suffix, spec.lang, spec.mode, &c.text, c.stop);
                let st = c.stats;
                *lock(&inner.last_generation) = Some(serde_json::json!({
                    "promptTokens": st.prompt_tokens,
                    "reusedTokens": st.reused_tokens,
                    "shiftedTokens": st.shifted_tokens,
                    "evaluatedTokens": st.evaluated_tokens,
                    "generatedTokens": st.generated_tokens,
                    "firstTokenMs": st.first_token_ms,
                    "totalMs": st.total_ms,
                    "stop": format!("{:?}", c.stop),
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
                    "generation finished"
                );
                tracing::debug!(raw = ?c.text, shaped = ?shaped, mode = ?spec.mode, "generation {}", g.id);
                if c.stop != StopReason::Deadline {
                    lock(&inner.cache).insert(
                        &g.prefix,
                        &g.suffix,
                        shaped.as_deref().unwrap_or(""),
                    );
                }
                Outcome {
                    result: Ok(shaped),
                    stats: c.stats,
                }
            }
            Ok(Err(e)) => Outcome {
                result: Err(e),
                stats: Stats::default(),
            },
            Err(_) => Outcome {
                result: Err(EngineError::Stopped),
                stats: Stats::default(),
            },
        };
        g.done.store(true, Ordering::Release);
        let _ = tx.send(Some(outcome));
        let idle = {
            let mut gens = lock(&inner.generations);
            if gens.get(&uri).is_some_and(|cur| cur.id == g.id) {
                gens.remove(&uri);
            }
            gens.is_empty()
        };
        if idle && !inner.engine.remote_down() {
            inner.status(State::Idle, None, None).await;
        }
    });
    generation
}

/// Counts a request as waiting for a generation; if the request's future is dropped
/// (`$/cancelRequest`) while it is the last one waiting, the generation is cancelled.
pub struct Waiter {
    generation: Arc<Generation>,
    finished: bool,
}

impl Waiter {
    /// Registers a waiting request.
    pub fn new(generation: Arc<Generation>) -> Self {
        generation.waiters.fetch_add(1, Ordering::AcqRel);
        Waiter {
            generation,
            finished: false,
        }
    }

    /// The request ends normally (answered or superseded): the generation goes on.
    pub fn finish(mut self) {
        self.finished = true;
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        let left = self.generation.waiters.fetch_sub(1, Ordering::AcqRel) - 1;
        if !self.finished && left == 0 {
            self.generation.cancel.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn generation(
        prefix: &str,
        suffix: &str,
        cursor: usize,
    ) -> (Generation, watch::Sender<Option<Outcome>>) {
        let (tx, rx) = watch::channel(None);
        let g = Generation {
            id: 1,
            prefix: prefix.into(),
            suffix: suffix.into(),
            cancel: CancelToken::new(),
            expected_char: AtomicUsize::new(cursor),
            waiters: AtomicUsize::new(0),
            done: AtomicBool::new(false),
            result: rx,
        };
        (g, tx)
    }

    #[test]
    fn typing_at_the_cursor_keeps_it_other_edits_cancel_it() {
        let (g, _tx) = generation("def f(", "):\n", 6);
        assert!(g.on_edit(Some(6), 1));
        assert!(g.on_edit(Some(7), 2));
        assert_eq!(g.expected_char.load(Ordering::Acquire), 9);
        assert!(g.extends_to("def f(abc", "):\n"));
        assert!(!g.extends_to("def g(", "):\n"));
        assert!(!g.extends_to("def f(abc", ")\n"));
        assert!(!g.on_edit(Some(3), 1));
        assert!(g.cancel.is_cancelled());
        assert!(!g.extends_to("def f(abc", "):\n"));
        let (g, _tx) = generation("x", "", 1);
        assert!(
            !g.on_edit(None, 0),
            "a deletion or a multi-change edit cancels"
        );
    }

    #[test]
    fn the_last_waiter_dropped_without_finishing_cancels() {
        let (g, _tx) = generation("a", "b", 1);
        let g = Arc::new(g);
        let first = Waiter::new(g.clone());
        let second = Waiter::new(g.clone());
        first.finish();
        assert!(!g.cancel.is_cancelled());
        drop(second);
        assert!(g.cancel.is_cancelled());
    }

    #[tokio::test]
    async fn waiters_get_the_published_outcome() {
        let (g, tx) = generation("a", "b", 1);
        tx.send(Some(Outcome {
            result: Ok(Some("xyz".into())),
            stats: Stats::default(),
        }))
        .unwrap();
        assert_eq!(g.outcome().await.result, Ok(Some("xyz".into())));
        drop(tx);
        let (g, tx) = generation("a", "b", 1);
        drop(tx);
        assert_eq!(g.outcome().await.result, Err(EngineError::Stopped));
    }
}
