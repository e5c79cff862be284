//! KV-cache bookkeeping of the engine thread: which tokens each sequence holds, making a
//! sequence hold a new prompt while evaluating as little as possible (the common token prefix
//! is kept; an unchanged run further on is shifted to its new position), and evaluation in
//! chunks that check cancellation and the deadline between them.
//!
//! `Seq::tokens` always mirrors the cache exactly. This module does not sample, render prompts
//! or queue requests.

use std::time::Instant;

use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::DecodeError;

use super::{Worker, SEQ_CHAT, SEQ_FIM, SEQ_PARK};
use crate::{CancelToken, EngineError, Stats};

/// Tokens of one KV sequence, mirroring exactly what is in the cache at positions 0…len.
#[derive(Default)]
pub(super) struct Seq {
    pub(super) tokens: Vec<LlamaToken>,
}

/// Why evaluation stopped early.
pub(super) enum Interrupt {
    Cancelled,
    Deadline,
    Failed(EngineError),
}

impl From<Interrupt> for EngineError {
    fn from(i: Interrupt) -> Self {
        match i {
            Interrupt::Cancelled => EngineError::Cancelled,
            Interrupt::Deadline => EngineError::Cancelled,
            Interrupt::Failed(e) => e,
        }
    }
}

/// Tokens of an interrupted edit's evaluation still evaluated so that the shifted run after
/// it is kept (see [`Worker::sync`]): about half a second on two cores for the 1.5B, against
/// evaluating the whole suffix again on the next keystroke.
const SALVAGE_GAP_TOKENS: usize = 64;

impl Worker<'_> {
    pub(super) fn seq_mut(&mut self, id: i32) -> &mut Seq {
        if id == SEQ_CHAT {
            &mut self.chat
        } else {
            &mut self.fim
        }
    }

    /// Makes sequence `id` hold `prompt`, evaluating as little as possible, and returns the
    /// batch index of the last prompt token's logits.
    ///
    /// The common token prefix is kept. For the FIM sequence, a later run of cached tokens that
    /// reappears further on in the prompt (the unchanged suffix after a keystroke in the
    /// prefix) is moved to its new position instead of being evaluated again: it is parked in
    /// sequence 1, the new tokens before it are evaluated in sequence 0 (so they never attend
    /// to it), then it is shifted and handed back.
    pub(super) fn sync(
        &mut self,
        id: i32,
        prompt: &[LlamaToken],
        cancel: &CancelToken,
        deadline: Option<Instant>,
        stats: &mut Stats,
        on_late: &mut dyn FnMut(&Stats),
    ) -> Result<i32, Interrupt> {
        let reuse = self.config.reuse;
        let try_shift = reuse && self.config.reuse_shift && self.can_shift && id == SEQ_FIM;
        let min_shift = self.config.reuse_min_tokens.max(1);
        let cached = if id == SEQ_CHAT {
            &self.chat.tokens
        } else {
            &self.fim.tokens
        };
        let mut n_past = if reuse {
            common_prefix(cached, prompt)
        } else {
            0
        };
        // The last prompt token is always evaluated: its logits give the first token.
        n_past = n_past.min(prompt.len().saturating_sub(1));
        // Refresh by edit (issue 12, lever 4): the first tokens of a shifted run are evaluated
        // again, as many as the edit needs. An edit that adds or removes a line break moves the
        // text after the cursor to another line, and the run's KV entries still say what the
        // model expected there: `reuse_refresh_tokens`. An edit inside a line (a typed or
        // deleted character) leaves the lines in place: `reuse_refresh_tokens_in_line`.
        // The run is the longest one (see `reuse::find_shift`), located once; the edit before it
        // decides the refresh, and the run must outlast it.
        let shift = if try_shift {
            let in_line = self.config.reuse_refresh_tokens_in_line;
            let full = self.config.reuse_refresh_tokens;
            find_shift(cached, prompt, n_past, min_shift + in_line.min(full)).and_then(|sh| {
                let refresh = if self.edit_breaks_lines(cached, prompt, n_past, sh) {
                    full
                } else {
                    in_line
                };
                (sh.len >= min_shift + refresh).then(|| Shift {
                    cache_start: sh.cache_start + refresh,
                    prompt_start: sh.prompt_start + refresh,
                    len: sh.len - refresh,
                })
            })
        } else {
            None
        };
        stats.reused_tokens = n_past;
        tracing::debug!(
            n_past,
            cached = cached.len(),
            prompt = prompt.len(),
            ?shift,
            "kv sync"
        );

        if let Some(sh) = shift {
            // Park the run in its own sequence before the tail of this one is removed.
            let _ = self.ctx.kv_cache_seq_rm(SEQ_PARK, None, None);
            let _ = self.ctx.kv_cache_seq_cp(
                id,
                SEQ_PARK,
                Some(sh.cache_start as u32),
                Some((sh.cache_start + sh.len) as u32),
            );
        }
        self.kv_rm(id, n_past);
        self.seq_mut(id).tokens.truncate(n_past);
        if let Some(sh) = shift {
            let delta = sh.prompt_start as i64 - sh.cache_start as i64;
            let _ = self.ctx.kv_cache_seq_add(
                SEQ_PARK,
                Some(sh.cache_start as u32),
                Some((sh.cache_start + sh.len) as u32),
                delta as i32,
            );
            let gap = &prompt[n_past..sh.prompt_start];
            let result = self.eval(id, gap, false, cancel, deadline, stats, on_late);
            if let Err(e) = result {
                // Interrupted (cancelled by a newer request, or late with a job waiting): the
                // rest of a short gap is evaluated anyway, so that the parked run comes back
                // and the cache keeps the text after the cursor for the next request, which
                // most likely wants it (the user typed on). Otherwise the run is dropped.
                let done = self.seq_mut(id).tokens.len().saturating_sub(n_past);
                let left = &gap[done.min(gap.len())..];
                let salvaged = !matches!(e, Interrupt::Failed(_))
                    && left.len() <= SALVAGE_GAP_TOKENS
                    && self
                        .eval_chunks(
                            id,
                            left,
                            false,
                            usize::MAX,
                            &mut Stats::default(),
                            &mut |_, _| Ok(()),
                        )
                        .is_ok();
                if salvaged {
                    self.unpark(id, &prompt[sh.prompt_start..sh.prompt_start + sh.len]);
                } else {
                    let _ = self.ctx.kv_cache_seq_rm(SEQ_PARK, None, None);
                }
                return Err(e);
            }
            self.unpark(id, &prompt[sh.prompt_start..sh.prompt_start + sh.len]);
            stats.shifted_tokens = sh.len;
            n_past = sh.prompt_start + sh.len;
        }
        let rest = &prompt[n_past..];
        let idx = self.eval(id, rest, true, cancel, deadline, stats, on_late)?;
        Ok(idx)
    }

    /// Hands the parked run (`run`, already shifted to follow the sequence's end) back to
    /// sequence `id`.
    fn unpark(&mut self, id: i32, run: &[LlamaToken]) {
        let _ = self.ctx.kv_cache_seq_cp(SEQ_PARK, id, None, None);
        let _ = self.ctx.kv_cache_seq_rm(SEQ_PARK, None, None);
        self.seq_mut(id).tokens.extend_from_slice(run);
    }

    /// Whether the edit between the common prefix and a shifted run (what the cache held there
    /// against what the prompt holds) adds or removes a line break.
    fn edit_breaks_lines(
        &self,
        cached: &[LlamaToken],
        prompt: &[LlamaToken],
        n_past: usize,
        sh: Shift,
    ) -> bool {
        edit_has_line_break(
            &self.pieces,
            &cached[n_past.min(sh.cache_start)..sh.cache_start],
            &prompt[n_past.min(sh.prompt_start)..sh.prompt_start],
        )
    }

    pub(super) fn kv_rm(&mut self, id: i32, from: usize) {
        if self
            .ctx
            .kv_cache_seq_rm(id, Some(from as u32), None)
            .is_err()
        {
            // Partial removal is refused only by recurrent models: start over.
            let _ = self.ctx.kv_cache_seq_rm(id, None, None);
            self.seq_mut(id).tokens.clear();
        }
    }

    /// Evaluates `tokens` at the end of sequence `id` in chunks, checking for cancellation
    /// between chunks. Returns the batch index of the last token (logits requested only for it
    /// when `want_logits`). When the deadline passes, `on_late` is called once (the request is
    /// answered then) and evaluation goes on only while no other job waits.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn eval(
        &mut self,
        id: i32,
        tokens: &[LlamaToken],
        want_logits: bool,
        cancel: &CancelToken,
        deadline: Option<Instant>,
        stats: &mut Stats,
        on_late: &mut dyn FnMut(&Stats),
    ) -> Result<i32, Interrupt> {
        let chunk_len = self.batch_capacity();
        let mut late = false;
        let result = self.eval_chunks(id, tokens, want_logits, chunk_len, stats, &mut |w, st| {
            if cancel.is_cancelled() {
                return Err(Interrupt::Cancelled);
            }
            if !late && deadline.is_some_and(|d| Instant::now() >= d) {
                late = true;
                on_late(st);
            }
            if late && w.job_waiting() {
                return Err(Interrupt::Deadline);
            }
            Ok(())
        });
        match result {
            // The answer is late, but the prompt is now in the cache: the next keystroke's
            // request finds it there instead of starting over.
            Ok(_) if late => Err(Interrupt::Deadline),
            other => other,
        }
    }

    /// Evaluates `tokens` at the end of sequence `id` in chunks of `chunk_len`; `gate` runs
    /// before each chunk and ends evaluation early by returning an error (what was evaluated
    /// stays in the cache and in the mirror). Returns the batch index of the last token.
    pub(super) fn eval_chunks(
        &mut self,
        id: i32,
        tokens: &[LlamaToken],
        want_logits: bool,
        chunk_len: usize,
        stats: &mut Stats,
        gate: &mut dyn FnMut(&mut Self, &Stats) -> Result<(), Interrupt>,
    ) -> Result<i32, Interrupt> {
        let chunk_len = chunk_len.clamp(1, self.batch_capacity());
        let mut last = 0;
        let n = tokens.len();
        for (c, chunk) in tokens.chunks(chunk_len).enumerate() {
            gate(self, stats)?;
            let start = self.seq_mut(id).tokens.len();
            self.batch.clear();
            for (i, &t) in chunk.iter().enumerate() {
                let is_last = c * chunk_len + i + 1 == n;
                self.batch
                    .add(t, (start + i) as i32, &[id], want_logits && is_last)
                    .map_err(|e| Interrupt::Failed(EngineError::Decode(e.to_string())))?;
            }
            let started = std::time::Instant::now();
            self.decode_batch()?;
            self.note_rate(chunk.len(), started.elapsed().as_secs_f64());
            self.seq_mut(id).tokens.extend_from_slice(chunk);
            stats.evaluated_tokens += chunk.len();
            last = chunk.len() as i32 - 1;
        }
        Ok(last)
    }

    /// Tokens one batch holds.
    fn batch_capacity(&self) -> usize {
        self.config.batch_size.clamp(1, 512) as usize
    }

    pub(super) fn decode_one(&mut self, id: i32, token: LlamaToken) -> Result<i32, Interrupt> {
        let pos = self.seq_mut(id).tokens.len() as i32;
        self.batch.clear();
        self.batch
            .add(token, pos, &[id], true)
            .map_err(|e| Interrupt::Failed(EngineError::Decode(e.to_string())))?;
        self.decode_batch()?;
        self.seq_mut(id).tokens.push(token);
        Ok(0)
    }

    /// llama.cpp's decode of the batch, or the failure the test hook asks for.
    fn decode_or_fault(&mut self) -> Result<(), DecodeError> {
        if std::mem::take(&mut self.fail_decode) {
            return Err(DecodeError::Unknown(-3));
        }
        self.ctx.decode(&mut self.batch)
    }

    /// Decodes the batch; when the cache is full, a paused chat gives up its room first.
    ///
    /// A failure of llama.cpp's decode is fatal ([`EngineError::Crashed`]): the cache may now
    /// hold part of the batch, so every sequence is forgotten here, and the server reports the
    /// failure and restarts the engine with backoff rather than serving from a state it cannot
    /// trust.
    pub(super) fn decode_batch(&mut self) -> Result<(), Interrupt> {
        let result = match self.decode_or_fault() {
            Ok(()) => Ok(()),
            Err(DecodeError::NoKvCacheSlot) if !self.chat.tokens.is_empty() => {
                tracing::debug!("KV cache full: evicting the paused chat");
                let _ = self.ctx.kv_cache_seq_rm(SEQ_CHAT, None, None);
                self.chat.tokens.clear();
                self.ctx.decode(&mut self.batch)
            }
            Err(e) => Err(e),
        };
        result.map_err(|e| {
            tracing::error!("llama.cpp decode failed: {e}; the KV cache is reset");
            self.ctx.clear_kv_cache();
            self.fim.tokens.clear();
            self.chat.tokens.clear();
            Interrupt::Failed(EngineError::Crashed(format!(
                "llama.cpp decode failed: {e}"
            )))
        })
    }
}

use crate::reuse::{find_shift, shared_start as common_prefix, Shift};

/// Whether the edit that turned the tokens `old` into `new` (text by `pieces`, indexed by
/// token id) adds or removes a line break. Only the text that differs counts: the tokens around
/// an edit are often retokenized (`"\n    "` becomes `"\n   "` + `" re"`), so a line break
/// they share is not the edit's. An unknown token counts as one (the cautious answer: refresh).
fn edit_has_line_break(pieces: &[Vec<u8>], old: &[LlamaToken], new: &[LlamaToken]) -> bool {
    let text = |tokens: &[LlamaToken]| -> Option<Vec<u8>> {
        let mut out = Vec::new();
        for t in tokens {
            out.extend_from_slice(usize::try_from(t.0).ok().and_then(|i| pieces.get(i))?);
        }
        Some(out)
    };
    let (Some(a), Some(b)) = (text(old), text(new)) else {
        return true;
    };
    let pre = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let (a, b) = (&a[pre..], &b[pre..]);
    let suf = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    a[..a.len() - suf].contains(&b'\n') || b[..b.len() - suf].contains(&b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_line_break_in_the_changed_text_asks_for_the_full_refresh() {
        let pieces: Vec<Vec<u8>> = ["x", "\n", "\n    ", "\n   ", " re", "re", "    "]
            .iter()
            .map(|p| p.as_bytes().to_vec())
            .collect();
        let t = |ids: &[i32]| ids.iter().map(|&i| LlamaToken::new(i)).collect::<Vec<_>>();
        // Nothing, or characters typed inside a line.
        assert!(!edit_has_line_break(&pieces, &t(&[]), &t(&[])));
        assert!(!edit_has_line_break(&pieces, &t(&[]), &t(&[0, 0])));
        assert!(!edit_has_line_break(&pieces, &t(&[0]), &t(&[])));
        // The first character on an indented line: the boundary is retokenized, the line
        // break is shared.
        assert!(!edit_has_line_break(&pieces, &t(&[2]), &t(&[3, 4])));
        assert!(!edit_has_line_break(&pieces, &t(&[1, 6]), &t(&[2, 5])));
        // Enter pressed, or a line joined.
        assert!(edit_has_line_break(&pieces, &t(&[0]), &t(&[0, 1])));
        assert!(edit_has_line_break(&pieces, &t(&[5]), &t(&[5, 2])));
        assert!(edit_has_line_break(&pieces, &t(&[0, 2, 0]), &t(&[0, 0])));
        // Unknown tokens: refresh.
        assert!(edit_has_line_break(&pieces, &t(&[9]), &t(&[0])));
        assert!(edit_has_line_break(&pieces, &t(&[0]), &t(&[-1])));
    }
}
