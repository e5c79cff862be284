//! Sampling and token healing: the greedy choice over logits, the constrained choice that makes
//! a healed completion reproduce the text taken out of the prompt, and the assembly of token
//! pieces into UTF-8 text.
//!
//! Pure over logits and token texts: no model, no context, so it is unit-tested with made-up
//! vocabularies. It does not decide when to stop (see [`crate::stop`] and the engine).

/// Index of the largest logit (the first one on a tie).
pub(crate) fn greedy(logits: &[f32]) -> usize {
    let mut best = 0usize;
    let mut best_logit = f32::NEG_INFINITY;
    for (i, &l) in logits.iter().enumerate() {
        if l > best_logit {
            best_logit = l;
            best = i;
        }
    }
    best
}

/// Index of the largest logit among the tokens `allowed` accepts (asked only for a token more
/// likely than the best accepted so far); plain [`greedy`] when it accepts none.
pub(crate) fn greedy_where(logits: &[f32], allowed: impl Fn(usize) -> bool) -> usize {
    let mut best = None;
    let mut best_logit = f32::NEG_INFINITY;
    for (i, &l) in logits.iter().enumerate() {
        if l > best_logit && allowed(i) {
            best_logit = l;
            best = Some(i);
        }
    }
    best.unwrap_or_else(|| greedy(logits))
}

/// The most likely token whose text agrees with `need` (starts with it, or is a start of it),
/// so that generation reproduces the healed text before going on; plain [`greedy`] when no
/// token agrees. `pieces[i]` is the text of token `i` (empty for special tokens).
pub(crate) fn greedy_with_prefix(logits: &[f32], pieces: &[Vec<u8>], need: &[u8]) -> usize {
    let mut best = None;
    let mut best_logit = f32::NEG_INFINITY;
    for (i, &l) in logits.iter().enumerate() {
        if l <= best_logit {
            continue;
        }
        let Some(p) = pieces.get(i) else { continue };
        if !p.is_empty() && (p.starts_with(need) || need.starts_with(p)) {
            best_logit = l;
            best = Some(i);
        }
    }
    best.unwrap_or_else(|| greedy(logits))
}

/// The text to heal for a prefix whose last token has text `last_piece`: that text, when the
/// prefix really ends with it and it holds no line break (healing across lines would rewrite
/// the indentation); else nothing.
pub(crate) fn healable_tail(prefix: &str, last_piece: &[u8]) -> String {
    match std::str::from_utf8(last_piece) {
        Ok(p) if !p.is_empty() && prefix.ends_with(p) && !p.contains('\n') => p.to_owned(),
        _ => String::new(),
    }
}

/// What of the healed text a generated piece covers: the rest still to reproduce.
pub(crate) fn consume_heal(need: &mut Vec<u8>, piece: &[u8]) {
    let covered = piece.len().min(need.len());
    need.drain(..covered);
}

/// Joins token pieces into text, holding back an incomplete UTF-8 sequence until the token
/// that completes it, and replacing invalid bytes.
#[derive(Debug, Default)]
pub(crate) struct Utf8Assembler {
    pending: Vec<u8>,
}

impl Utf8Assembler {
    /// Appends `piece` to `text`, as far as it is valid UTF-8.
    pub(crate) fn push(&mut self, piece: &[u8], text: &mut String) {
        self.pending.extend_from_slice(piece);
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    text.push_str(s);
                    self.pending.clear();
                    return;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    text.push_str(std::str::from_utf8(&self.pending[..valid]).unwrap_or_default());
                    match e.error_len() {
                        // Incomplete sequence at the end: wait for the next token.
                        None => {
                            self.pending.drain(..valid);
                            return;
                        }
                        Some(bad) => {
                            text.push(char::REPLACEMENT_CHARACTER);
                            self.pending.drain(..valid + bad);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greedy_where_skips_what_is_not_allowed() {
        let logits = [0.5, 3.0, 2.0, 2.5];
        assert_eq!(greedy_where(&logits, |_| true), 1);
        assert_eq!(greedy_where(&logits, |i| i != 1), 3);
        assert_eq!(greedy_where(&logits, |_| false), 1);
    }

    fn pieces(v: &[&str]) -> Vec<Vec<u8>> {
        v.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn greedy_takes_the_first_largest_logit() {
        assert_eq!(greedy(&[0.1, 3.0, 3.0, -1.0]), 1);
        assert_eq!(greedy(&[]), 0);
    }

    #[test]
    fn healing_prefers_the_best_token_that_agrees_with_the_healed_text() {
        let p = pieces(&["", "foo", "fo", "bar", "f", "foobar"]);
        // "bar" is likeliest but disagrees with "fo"; "foobar" starts with "fo".
        let logits = [9.0, 1.0, 2.0, 8.0, 0.5, 3.0];
        assert_eq!(greedy_with_prefix(&logits, &p, b"fo"), 5);
        // Nothing agrees: plain greedy.
        assert_eq!(greedy_with_prefix(&logits, &p, b"zz"), 0);
        // A special token (empty piece) never counts as agreeing.
        assert_eq!(
            greedy_with_prefix(&[5.0, 1.0], &pieces(&["", "f"]), b"f"),
            1
        );
    }

    #[test]
    fn only_a_tail_the_prefix_ends_with_and_within_the_line_is_healed() {
        assert_eq!(healable_tail("x = fibo", b"fibo"), "fibo");
        assert_eq!(healable_tail("x = fibo", b"bar"), "");
        assert_eq!(healable_tail("x\n    ", b"\n    "), "");
        assert_eq!(healable_tail("x", &[0xff]), "");
        let mut need = b"fibo".to_vec();
        consume_heal(&mut need, b"fi");
        assert_eq!(need, b"bo");
        consume_heal(&mut need, b"bonacci");
        assert!(need.is_empty());
    }

    #[test]
    fn split_utf8_sequences_wait_for_their_last_byte() {
        let mut a = Utf8Assembler::default();
        let mut text = String::new();
        let e = "é".as_bytes();
        a.push(b"caf", &mut text);
        a.push(&e[..1], &mut text);
        assert_eq!(text, "caf");
        a.push(&e[1..], &mut text);
        assert_eq!(text, "café");
        a.push(&[0xff, b'!'], &mut text);
        assert_eq!(text, "café\u{fffd}!");
    }
}
