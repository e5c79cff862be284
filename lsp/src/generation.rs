//! One model run for a document, shared by the requests that can use it.
//!
//! A generation runs as its own task (started by [`crate::complete`]): it submits a FIM request
//! to the engine, shapes the result, stores it in the cache and publishes it through its
//! [`Publisher`]. Requests wait for it; they do not own it.
//! While the user types, every keystroke brings a `didChange` and a new request, and a model
//! run takes longer than a keystroke. So a generation is kept, not cancelled, while the edits
//! are insertions at its cursor (typing forward) and the new request's prefix extends its
//! prefix with the same suffix: the new request *adopts* it and answers with what remains of
//! the suggestion after the typed text. Any other edit, a request elsewhere, or
//! `$/cancelRequest` of its last waiting request cancels it through its [`CancelToken`].
//!
//! This module holds the type only: it does not decide what is asked or run anything (see
//! [`crate::complete`]) and does not cut text ([`crate::shaping`]).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use ghostline_inference::{CancelToken, EngineError, FimRequest, Progress, Stats};
use tokio::sync::watch;

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
    /// The model's text so far, while it runs (see [`Publisher::progress`]).
    partial: watch::Receiver<String>,
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

    /// The model's text so far (unshaped), updated while it runs.
    pub fn partial(&self) -> watch::Receiver<String> {
        self.partial.clone()
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

/// Publishes a generation's outcome to the requests waiting for it.
pub struct Publisher {
    generation: Arc<Generation>,
    tx: watch::Sender<Option<Outcome>>,
    partial: Arc<watch::Sender<String>>,
}

impl Publisher {
    /// The generation it publishes for.
    pub fn generation(&self) -> &Arc<Generation> {
        &self.generation
    }

    /// What the backend tells the model's text so far, for [`Generation::partial`].
    pub fn progress(&self) -> Progress {
        let tx = self.partial.clone();
        Progress::new(move |text| {
            tx.send_if_modified(|t| {
                if t == text {
                    return false;
                }
                text.clone_into(t);
                true
            });
        })
    }

    /// Marks the generation done and hands `outcome` to every waiting request.
    pub fn publish(self, outcome: Outcome) {
        self.generation.done.store(true, Ordering::Release);
        let _ = self.tx.send(Some(outcome));
    }
}

impl Generation {
    /// A generation `id` for `request`, whose cursor is at char `cursor_char` of the
    /// document, and the publisher of its outcome. Running it is the caller's business.
    pub fn new(id: u64, request: &FimRequest, cursor_char: usize) -> (Arc<Generation>, Publisher) {
        let (tx, rx) = watch::channel(None);
        let (partial_tx, partial) = watch::channel(String::new());
        let generation = Arc::new(Generation {
            id,
            prefix: request.prefix.clone(),
            suffix: request.suffix.clone(),
            cancel: CancelToken::new(),
            expected_char: AtomicUsize::new(cursor_char),
            waiters: AtomicUsize::new(0),
            done: AtomicBool::new(false),
            result: rx,
            partial,
        });
        let publisher = Publisher {
            generation: generation.clone(),
            tx,
            partial: Arc::new(partial_tx),
        };
        (generation, publisher)
    }
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
            partial: watch::channel(String::new()).1,
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
