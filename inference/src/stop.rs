//! Stop rules applied while generating, so that no time is spent on text that is thrown away.
//!
//! A [`StopChecker`] looks at the text generated so far and says where it must end: at a stop
//! string (or a FIM marker written as text), or where the completion starts to reproduce the
//! text after the cursor. End-of-generation tokens and the token cap are the engine's business;
//! shaping the result to a line or a block is the language server's (it may hand in a
//! [`Settled`] check that says when its shaping has ended the block).

use crate::Settled;

/// Why generation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopReason {
    /// The model emitted an end-of-generation or FIM special token.
    EndOfText,
    /// A stop string (or a marker written as text) appeared.
    StopString,
    /// The completion started to reproduce the text after the cursor.
    SuffixReached,
    /// The request's token cap was reached.
    MaxTokens,
    /// The request's deadline passed; the text so far is returned.
    Deadline,
    /// The context window is full.
    ContextFull,
    /// The caller's shaping ended the suggestion at a finished line: what follows would be
    /// cut anyway (see [`crate::FimRequest::settled`]).
    ScopeEnded,
}

/// Ends a completion that continues the cursor line at its first line break, unless the line
/// it finishes ends with a block opener (the body follows) or the completion put nothing on it
/// (the cursor line was complete and the model goes on with new lines).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LineEnd {
    /// The cursor line, left of the cursor.
    pub cursor_line: String,
    /// Characters that open a block at the end of a line (`:` in Python, `{`, `(`, `[`).
    pub openers: Vec<char>,
    /// What starts a line comment in the language (`#`, `//`); empty for none.
    pub line_comment: String,
}

impl LineEnd {
    /// Whether generation stops at the line break that ends `first_line` (generated text).
    fn stops_after(&self, first_line: &str) -> bool {
        if first_line.trim().is_empty() {
            return false;
        }
        let full = format!("{}{}", self.cursor_line, first_line);
        let code = strip_line_comment(full.trim_end(), &self.line_comment);
        !code
            .trim_end()
            .chars()
            .next_back()
            .is_some_and(|c| self.openers.contains(&c))
    }
}

/// `line` without a trailing line comment starting with `marker` (outside quotes, roughly).
fn strip_line_comment<'a>(line: &'a str, marker: &str) -> &'a str {
    if marker.is_empty() {
        return line;
    }
    let mut quote = None;
    for (i, ch) in line.char_indices() {
        match (quote, ch) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(ch),
            (None, _) if line[i..].starts_with(marker) => return &line[..i],
            _ => {}
        }
    }
    line
}

/// Decides, from the text generated so far, whether and where generation stops.
#[derive(Debug, Clone)]
pub struct StopChecker {
    stop_strings: Vec<String>,
    line_end: Option<LineEnd>,
    /// Rest of the cursor line (right of the cursor), trimmed; empty when blank.
    rest_trimmed: String,
    /// The line a generated line (after the first) must not be: the rest of the cursor line
    /// when it is not blank (it still follows the completion), else the first non-blank line
    /// after the cursor line.
    next_line: Option<String>,
    /// The non-blank line after `next_line`: a repeat of `next_line` followed by another
    /// line is the suffix only when that line is this one (a hole may hold a `break` or an
    /// `i += 1` like the one after it).
    line_after: Option<String>,
    /// The caller's check that its suggestion can no longer change ([`crate::Settled`]),
    /// consulted when no other rule ends the text.
    settled: Option<Settled>,
}

impl StopChecker {
    /// `suffix` is the document text after the cursor. `stop_strings` end the completion where
    /// they first appear (they are not part of it).
    pub fn new(stop_strings: Vec<String>, suffix: &str) -> Self {
        let mut lines = suffix.split('\n');
        let rest = lines.next().unwrap_or("");
        let mut non_blank = lines.filter(|l| !l.trim().is_empty());
        let next_line = if rest.trim().is_empty() {
            non_blank.next()
        } else {
            Some(rest)
        };
        StopChecker {
            stop_strings: stop_strings.into_iter().filter(|s| !s.is_empty()).collect(),
            line_end: None,
            rest_trimmed: rest.trim().to_owned(),
            next_line: next_line.map(|l| l.trim_end().to_owned()),
            line_after: non_blank.next().map(|l| l.trim_end().to_owned()),
            settled: None,
        }
    }

    /// Adds the caller's [`Settled`] check: when no other rule ends the text and it says the
    /// suggestion is settled, the whole text is kept and generation ends
    /// ([`StopReason::ScopeEnded`]).
    pub fn with_settled(mut self, settled: Option<Settled>) -> Self {
        self.settled = settled;
        self
    }

    /// Adds the end-of-line rule of [`LineEnd`].
    pub fn with_line_end(mut self, line_end: Option<LineEnd>) -> Self {
        self.line_end = line_end;
        self
    }

    /// Whether the text generated after a repeat of `next_line` goes on as the suffix does:
    /// its next complete non-blank line is `line_after` (or there is none to compare with),
    /// or — where the suffix leaves `next_line`'s block — a line at `line_after`'s smaller
    /// indentation (the suffix's structure again, e.g. `print(area(5, 7))` for
    /// `print(area(2, 3))`). Until that line is complete the answer is no; the end of
    /// generation is shaping's call.
    fn repeats_on(&self, after: &str) -> bool {
        let Some(expected) = &self.line_after else {
            return true;
        };
        let mut complete = after.split_inclusive('\n').filter(|l| l.ends_with('\n'));
        let Some(line) = complete.find(|l| !l.trim().is_empty()) else {
            return false;
        };
        let line = line.trim_end();
        let indent = |l: &str| l.len() - l.trim_start().len();
        let leaves = self
            .next_line
            .as_deref()
            .is_some_and(|n| indent(expected) < indent(n));
        line == expected || (leaves && indent(line) == indent(expected))
    }

    /// Where the completion must end, given all `text` generated so far: `Some((len, why))`
    /// keeps `text[..len]`. `None` means go on.
    pub fn check(&self, text: &str) -> Option<(usize, StopReason)> {
        let mut best: Option<(usize, StopReason)> = None;
        let mut consider = |cut: usize, why: StopReason| {
            if best.is_none_or(|(b, _)| cut < b) {
                best = Some((cut, why));
            }
        };
        for stop in &self.stop_strings {
            if let Some(i) = text.find(stop.as_str()) {
                consider(i, StopReason::StopString);
            }
        }
        if let (Some(rule), Some(nl)) = (&self.line_end, text.find('\n')) {
            if rule.stops_after(&text[..nl]) {
                consider(nl, StopReason::StopString);
            }
        }
        // Complete lines (followed by '\n') of the generated text.
        let mut start = 0;
        let mut first = true;
        while let Some(nl) = text[start..].find('\n') {
            let line = text[start..start + nl].trim_end();
            if first && !self.rest_trimmed.is_empty() {
                // The first line continues the cursor line: it must not end with the text
                // that is already right of the cursor.
                if line.ends_with(self.rest_trimmed.as_str()) {
                    consider(
                        line.len() - self.rest_trimmed.len(),
                        StopReason::SuffixReached,
                    );
                }
            } else if self.next_line.as_deref() == Some(line)
                && !line.is_empty()
                && self.repeats_on(&text[start + nl + 1..])
            {
                consider(start, StopReason::SuffixReached);
            }
            first = false;
            start += nl + 1;
        }
        best.or_else(|| {
            self.settled
                .as_ref()
                .is_some_and(|s| s.check(text))
                .then_some((text.len(), StopReason::ScopeEnded))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callers_settled_check_ends_the_whole_text_only_when_no_rule_cuts_it() {
        let settled = Settled::new(|text: &str| text.contains("\ndef "));
        let c = StopChecker::new(vec!["\n\n".into()], "").with_settled(Some(settled));
        assert_eq!(c.check("    return 1\n"), None);
        assert_eq!(
            c.check("    return 1\ndef g"),
            Some((18, StopReason::ScopeEnded)),
            "the whole text is kept"
        );
        // A stop string inside the text cuts it first.
        assert_eq!(
            c.check("    return 1\n\ndef g"),
            Some((12, StopReason::StopString))
        );
        assert_eq!(
            StopChecker::new(vec![], "").check("    return 1\ndef g"),
            None
        );
    }

    #[test]
    fn stop_strings_cut_at_the_first_occurrence() {
        let c = StopChecker::new(vec!["\n\n".into(), "<|file_sep|>".into()], "");
        assert_eq!(c.check("a = 1"), None);
        assert_eq!(c.check("a = 1\n\nb"), Some((5, StopReason::StopString)));
        assert_eq!(c.check("a<|file_sep|>x"), Some((1, StopReason::StopString)));
    }

    #[test]
    fn a_line_equal_to_the_next_line_of_the_suffix_ends_the_completion() {
        let suffix = "\n    return result\n";
        let c = StopChecker::new(vec![], suffix);
        assert_eq!(c.check("    result = 1\n    return res"), None);
        assert_eq!(
            c.check("    result = 1\n    return result\n"),
            Some((15, StopReason::SuffixReached))
        );
    }

    #[test]
    fn the_first_line_must_not_end_with_the_rest_of_the_cursor_line() {
        let c = StopChecker::new(vec![], "):\n    pass\n");
        assert_eq!(c.check("a, b"), None);
        assert_eq!(c.check("a, b):\n"), Some((4, StopReason::SuffixReached)));
    }

    #[test]
    fn whole_lines_before_a_non_blank_cursor_line_end_where_it_is_repeated() {
        // Cursor at the start of "    return result": new lines go before it.
        let c = StopChecker::new(vec![], "    return result\n\nprint(area(2, 3))\n");
        assert_eq!(
            c.check("    result = w * h\n    return result\n\nprint(area(2, 3))\n"),
            Some((19, StopReason::SuffixReached))
        );
    }

    #[test]
    fn a_continued_line_ends_at_its_line_break_unless_it_opens_a_block_or_was_complete() {
        let rule = |line: &str| {
            StopChecker::new(vec![], "").with_line_end(Some(LineEnd {
                cursor_line: line.into(),
                openers: vec![':', '(', '[', '{'],
                line_comment: "#".into(),
            }))
        };
        // Finishing the line: stop at its end.
        assert_eq!(
            rule("    x = f(").check("a, b)\n    y = 2\n"),
            Some((5, StopReason::StopString))
        );
        // The finished line opens a block (even with a comment after the opener): go on.
        assert_eq!(
            rule("    for i in r").check("ange(n):\n        s += i\n"),
            None
        );
        assert_eq!(rule("    if x").check(":  # done\n        y()\n"), None);
        // The cursor line was complete: the model starts new lines.
        assert_eq!(rule("    return []").check("\n    arr.sort()\n"), None);
    }

    #[test]
    fn a_repeat_of_the_next_line_is_the_suffix_only_when_the_line_after_follows_too() {
        let suffix = "\n                break\n        return state\n";
        let c = StopChecker::new(vec![], suffix);
        let hole = "            if bad:\n                state = 1\n                break\n";
        // Undecided until the line after the repeat is complete.
        assert_eq!(c.check(hole), None);
        // The hole goes on differently: a `break` of its own.
        assert_eq!(c.check(&format!("{hole}            if ok:\n")), None);
        // The suffix's structure again at the level it goes on at: reproduced too.
        assert_eq!(
            c.check(&format!("{hole}        return other\n")),
            Some((
                hole.len() - "                break\n".len(),
                StopReason::SuffixReached
            ))
        );
        // The suffix's next two lines: reproduced.
        assert_eq!(
            c.check(&format!("{hole}        return state\n")),
            Some((
                hole.len() - "                break\n".len(),
                StopReason::SuffixReached
            ))
        );
    }

    #[test]
    fn blank_lines_and_different_indentation_are_not_the_suffix() {
        let c = StopChecker::new(vec![], "\n\nfoo()\n");
        assert_eq!(c.check("\n    foo()\n"), None);
        assert_eq!(
            c.check("x = 1\nfoo()\n"),
            Some((6, StopReason::SuffixReached))
        );
    }
}
