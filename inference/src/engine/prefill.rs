//! Prefill ahead of the cursor (issue 12, lever 2): while the engine is idle, it evaluates the
//! starts of a document's prompt that the server planned ([`PrefillItem`]s, most useful
//! first) and keeps each as a saved state of the document (memory only), so that a request
//! whose prompt starts the same way (a jump to a line that start covers) restores it and
//! evaluates only the rest.
//!
//! Idle means: no job queued and none served for [`PREFILL_IDLE`]. A prefill runs in chunks of
//! [`PREFILL_CHUNK`] tokens and stops between two as soon as a job arrives (what it evaluated
//! so far is saved and resumed later), so a request waits at most one small chunk. The plan
//! belongs to one document; a new plan replaces it. This module decides neither which starts
//! are worth it (the server does) nor what is reused for a request (`doc_state` does).

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use llama_cpp_2::token::LlamaToken;

use super::kv::Interrupt;
use super::{Worker, SEQ_FIM};
use crate::doc_state::anchor_key;
use crate::fim::{FimInput, Segment};
use crate::{EngineError, FimRequest, PrefillCounts, PrefillItem, Stats};

/// How long the engine must have been idle before it prefills: longer than the pause between
/// two keystrokes, so typing never competes with it.
pub(super) const PREFILL_IDLE: Duration = Duration::from_millis(800);

/// Tokens evaluated per step of a prefill: a request that arrives meanwhile waits for at most
/// this many (about 0.2–0.4 s for the 1.5B on two cores).
pub(super) const PREFILL_CHUNK: usize = 32;

/// The plan of one document.
pub(super) struct Plan {
    pub(super) doc: String,
    pub(super) items: VecDeque<PrefillItem>,
}

/// Counters shared with the [`crate::Engine`] handle.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    done: AtomicU64,
    evaluated: AtomicU64,
    preempted: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> PrefillCounts {
        PrefillCounts {
            done: self.done.load(Ordering::Relaxed),
            evaluated_tokens: self.evaluated.load(Ordering::Relaxed),
            preempted: self.preempted.load(Ordering::Relaxed),
        }
    }
}

/// How one prefill step ended.
enum Step {
    /// The whole start is held.
    Done,
    /// A job arrived; the rest is evaluated later.
    Preempted,
}

impl Worker<'_> {
    /// Replaces the plan; an empty one cancels the plan of its document (and leaves another
    /// document's alone).
    pub(super) fn set_plan(&mut self, doc: String, items: Vec<PrefillItem>) {
        if items.is_empty() {
            if self.plan.as_ref().is_some_and(|p| p.doc == doc) {
                self.plan = None;
            }
            return;
        }
        self.plan = Some(Plan {
            doc,
            items: items.into(),
        });
    }

    /// Whether there is prefill work.
    pub(super) fn has_plan(&self) -> bool {
        self.plan.as_ref().is_some_and(|p| !p.items.is_empty())
    }

    /// Works on the first item of the plan until it is held or a job arrives.
    pub(super) fn prefill_step(&mut self) {
        let Some(plan) = self.plan.as_mut() else {
            return;
        };
        let Some(item) = plan.items.pop_front() else {
            self.plan = None;
            return;
        };
        let key = anchor_key(&plan.doc, &item.anchor);
        let outcome = catch_unwind(AssertUnwindSafe(|| self.prefill(&key, &item)));
        match outcome {
            Ok(Ok(Step::Done)) => {
                self.prefills.done.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Ok(Step::Preempted)) => {
                self.prefills.preempted.fetch_add(1, Ordering::Relaxed);
                if let Some(plan) = self.plan.as_mut() {
                    plan.items.push_front(item);
                }
            }
            Ok(Err(e)) => tracing::debug!(key, error = %e, "prefill dropped"),
            Err(p) => {
                let _ = self.recover(&*p);
            }
        }
    }

    fn prefill(&mut self, key: &str, item: &PrefillItem) -> Result<Step, EngineError> {
        let tokens = self.prefill_tokens(item)?;
        if tokens.is_empty() || self.docs.holds(key, &tokens) {
            return Ok(Step::Done);
        }
        self.docs
            .prepare(&mut self.ctx, SEQ_FIM, &mut self.fim.tokens, key, &tokens);
        let n_past = crate::reuse::shared_start(&self.fim.tokens, &tokens);
        self.kv_rm(SEQ_FIM, n_past);
        self.fim.tokens.truncate(n_past);
        let mut stats = Stats::default();
        let result = self.eval_chunks(
            SEQ_FIM,
            &tokens[n_past..],
            false,
            PREFILL_CHUNK,
            &mut stats,
            &mut |w, _| {
                if w.job_waiting() {
                    Err(Interrupt::Deadline)
                } else {
                    Ok(())
                }
            },
        );
        self.prefills
            .evaluated
            .fetch_add(stats.evaluated_tokens as u64, Ordering::Relaxed);
        // What was evaluated is kept, finished or not (a preempted start resumes from it).
        self.docs.save_current(&self.ctx, SEQ_FIM, &self.fim.tokens);
        tracing::debug!(
            key,
            tokens = tokens.len(),
            reused = n_past,
            evaluated = stats.evaluated_tokens,
            "prefill step"
        );
        match result {
            Ok(_) => {
                tracing::info!(key, tokens = tokens.len(), "prefill done");
                Ok(Step::Done)
            }
            Err(Interrupt::Deadline) => Ok(Step::Preempted),
            Err(e) => Err(e.into()),
        }
    }

    /// The tokens a request with `item`'s prefix shares at most: its prompt up to the end of
    /// the prefix (the format's text after it — the suffix and middle markers — is left out).
    fn prefill_tokens(&self, item: &PrefillItem) -> Result<Vec<LlamaToken>, EngineError> {
        let cleared;
        let req = if item.request.suffix.is_empty() {
            &item.request
        } else {
            cleared = FimRequest {
                suffix: String::new(),
                ..item.request.clone()
            };
            &cleared
        };
        let max_tokens = req.max_tokens.unwrap_or(self.config.max_tokens);
        let mut tokens = self.fim_prompt(req, max_tokens)?;
        let format = self.info.fim.as_ref().ok_or_else(|| EngineError::NoFim {
            model: self.info.name.clone(),
        })?;
        let probe = format.segments(
            &FimInput {
                path: req.path.as_deref(),
                prefix: "x",
                suffix: &req.suffix,
                context: &[],
                repo_name: None,
            },
            req.order,
        );
        let tail = match probe.last() {
            Some(Segment::Format(text)) => self
                .model
                .vocab()
                .tokenize(text.as_bytes(), false, true)
                .len(),
            _ => 0,
        };
        tokens.truncate(tokens.len().saturating_sub(tail));
        Ok(tokens)
    }
}
