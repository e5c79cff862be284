//! Shaping a completion: what to ask the model for at a cursor, and how to cut what it wrote
//! so that the suggestion fits the place where it will be inserted.
//!
//! - [`skip_automatic`]: positions where an automatic suggestion is unlikely to help (in the
//!   middle of an identifier, before more than a few characters that are not closing brackets).
//! - [`plan`]: a single line when there is text right of the cursor, a block when the cursor
//!   line is blank or ends with a block opener, whole lines ending with a line break when the
//!   cursor is at column 0 before text (lines inserted above it), and at the end of any other
//!   line the rest of
//!   that line — followed by the lines after it only when the finished line opens a block or
//!   the model judged the line complete and went on with new lines (the engine's `LineEnd`
//!   rule stops everything else at the line break, so typing stays fast).
//! - [`shape`]: cuts a block where the code after the cursor can follow it (Python: its
//!   indentation and the next line's, an `else:` only after the block it continues) or where
//!   its brackets close something opened before the cursor that the suffix closes; trims what
//!   duplicates the text right of the cursor or the next lines; drops blank suggestions,
//!   suggestions that are only closing brackets, and repeats of the line above; caps the
//!   number of lines.
//!
//! Pure functions on strings: no rope, no LSP types, no model.

use ghostline_lang::{Blocks, Language};

/// Most lines a suggestion may have (a backstop: the scope rules and the token cap end blocks
/// long before it in practice).
pub const MAX_LINES: usize = 60;
/// Token cap of a block asked for explicitly (Invoked): large enough for a real function body.
pub const INVOKED_BLOCK_MAX_TOKENS: usize = 256;
/// Token cap of a single-line suggestion.
pub const LINE_MAX_TOKENS: usize = 48;

/// How shaping scans a language: its family of blocks, strings and comments. The facts
/// (which ids and extensions name a language, its line comment, its block openers) are
/// `ghostline-lang`'s; the family only picks the scanning rules below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Blocks by indentation, `#` comments, `'` and `"` strings.
    Python,
    /// Braces, `//` comments, `'` for characters and lifetimes.
    Rust,
    /// Braces, `//` comments, `'` and `"` strings (C, C++, Java, JavaScript, Go, …).
    CLike,
    /// Anything else: brackets and `"` strings only.
    Other,
}

impl Lang {
    /// The family of a language (`None`, a language without facts: [`Lang::Other`]).
    pub fn of(language: Option<Language>) -> Lang {
        match language {
            Some(Language::Python) => Lang::Python,
            Some(Language::Rust) => Lang::Rust,
            Some(l) if l.blocks() == Blocks::Braces => Lang::CLike,
            _ => Lang::Other,
        }
    }

    /// From the client's language id, else from the file extension.
    pub fn detect(language_id: &str, path: &str) -> Lang {
        Lang::of(Language::detect(language_id, path))
    }

    /// A language of the family whose facts stand for the whole family (its members agree on
    /// the facts shaping reads; a test checks it).
    fn facts(self) -> Option<Language> {
        match self {
            Lang::Python => Some(Language::Python),
            Lang::Rust => Some(Language::Rust),
            Lang::CLike => Some(Language::C),
            Lang::Other => None,
        }
    }

    /// What starts a line comment (empty when unknown).
    pub fn line_comment(self) -> &'static str {
        self.facts().map_or("", Language::line_comment)
    }

    /// Characters that, ending a line, open a block (brackets when the language is unknown).
    fn block_openers(self) -> &'static [char] {
        self.facts()
            .map_or(&['{', '(', '['], Language::block_openers)
    }
}

/// What surrounds the cursor.
#[derive(Debug, Clone, Copy)]
pub struct Cursor<'a> {
    /// The cursor line, left of the cursor.
    pub before: &'a str,
    /// The cursor line, right of the cursor (without the line break).
    pub after: &'a str,
    /// The nearest non-blank line above the cursor line.
    pub above: Option<&'a str>,
    /// Column 0 before a non-blank line: the suggestion is whole lines to insert above it.
    pub inserts_lines: bool,
    /// The nearest non-blank line below the cursor line (the cursor line itself when the
    /// suggestion inserts lines above it).
    pub below: Option<&'a str>,
    /// The non-blank line after `below`.
    pub below_next: Option<&'a str>,
    /// The document's language.
    pub lang: Lang,
    /// Python: the indentation of the nearest `def`/`class` line above the cursor line whose
    /// body the cursor may be in (less indented than the code after the cursor; the outermost
    /// one when that code is at column 0 or there is none); `None` elsewhere.
    pub enclosing_def: Option<usize>,
    /// Python: that definition is a function (`def`), whose body may hold nested definitions.
    pub in_function: bool,
    /// Python: how many brackets opened before the cursor nothing after it closes (a dict
    /// literal whose `}` is the hole); 0 elsewhere. A suggestion of closing brackets only is
    /// kept when it supplies these.
    pub missing_closers: usize,
}

impl<'a> Cursor<'a> {
    /// The cursor between `prefix` and `suffix` (any line breaks: `\n` or `\r\n`).
    pub fn new(prefix: &'a str, suffix: &'a str, lang: Lang) -> Self {
        let (rest, before) = match prefix.rfind('\n') {
            Some(i) => (&prefix[..i], &prefix[i + 1..]),
            None => ("", prefix),
        };
        let (after, below) = match suffix.find('\n') {
            Some(i) => (&suffix[..i], &suffix[i + 1..]),
            None => (suffix, ""),
        };
        let after = after.strip_suffix('\r').unwrap_or(after);
        // Column 0 before a non-blank line: the suggestion is whole lines inserted above it,
        // and the code after them starts with the cursor line.
        let inserts_lines = before.is_empty() && !after.trim().is_empty();
        let below = if inserts_lines { suffix } else { below };
        let mut below_lines = below
            .split('\n')
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.trim().is_empty());
        let (below_line, below_next) = (below_lines.next(), below_lines.next());
        let below_indent = below_line.map_or(0, indent);
        // Python, column 0 with no indented code after it: after a blank line, or after a
        // statement that ends a body (editors dedent after `return`), the user is at module
        // level (a new function, a `__main__` block), not inside the definition above.
        let at_module_level = lang == Lang::Python && before.is_empty() && below_indent == 0 && {
            let last = rest.rsplit('\n').next().unwrap_or("").trim();
            // A definition whose body is only a header or a docstring is not finished.
            let code_above = rest
                .rsplit('\n')
                .map(str::trim)
                .find(|l| !l.is_empty())
                .unwrap_or("");
            let unfinished = code_above.ends_with(':')
                || code_above.ends_with("\"\"\"")
                || code_above.ends_with("'''");
            (last.is_empty() && !unfinished)
                || ["return", "pass", "raise", "break", "continue"]
                    .iter()
                    .any(|k| last == *k || last.starts_with(&format!("{k} ")))
        };
        let enclosing = if lang == Lang::Python && !at_module_level {
            // Code at column 0 or nothing after the cursor: the hole may leave nested
            // definitions, down to the body of the outermost one.
            enclosing_definition(
                rest,
                below_indent,
                below_line.is_none() || below_indent == 0,
            )
        } else {
            None
        };
        let missing_closers = if lang == Lang::Python {
            missing_closers(prefix, suffix, lang)
        } else {
            0
        };
        Cursor {
            enclosing_def: enclosing.map(|(d, _)| d),
            in_function: enclosing.is_some_and(|(_, function)| function),
            missing_closers,
            before,
            after,
            inserts_lines,
            above: rest
                .rsplit('\n')
                .map(|l| l.trim_end_matches('\r'))
                .find(|l| !l.trim().is_empty()),
            below: below_line,
            below_next,
            lang,
        }
    }
}

/// Python: the indentation of the definition above the cursor whose body the cursor may be in
/// (`rest`: the text above the cursor line), and whether it is a function. Walking up, a
/// definition encloses the cursor when every code line between them is indented deeper than
/// it, and it is less indented than the code after the cursor (`below_indent`, 0: any);
/// the nearest one, or the `outermost`.
fn enclosing_definition(rest: &str, below_indent: usize, outermost: bool) -> Option<(usize, bool)> {
    let mut least = usize::MAX;
    let mut found = None;
    for l in rest.rsplit('\n').filter(|l| !l.trim().is_empty()) {
        let d = indent(l);
        let t = l.trim_start();
        let function = t.starts_with("def ") || t.starts_with("async def ");
        if (function || t.starts_with("class "))
            && d < least
            && (d < below_indent || below_indent == 0)
        {
            found = Some((d, function));
            if !outermost {
                break;
            }
        }
        least = least.min(d);
        if least == 0 {
            break;
        }
    }
    found
}

/// What kind of suggestion to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Finish the cursor line only.
    Line,
    /// One block of lines, starting at the cursor.
    Block,
    /// The rest of the cursor line, then possibly the block it opens or the statements after
    /// it (see [`plan`]).
    Continue,
}

/// Parameters of the model request for a cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// Line or block.
    pub mode: Mode,
    /// Stop strings for the engine.
    pub stop: Vec<String>,
    /// Token cap.
    pub max_tokens: usize,
    /// Stop at the end of the cursor line unless it opens a block or was complete (the
    /// engine's `LineEnd` rule, with these openers).
    pub line_end_openers: Option<Vec<char>>,
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn is_closer(c: char) -> bool {
    matches!(c, ')' | ']' | '}')
}

/// Characters that may follow the cursor without stopping an automatic suggestion.
fn is_trailing_punctuation(c: char) -> bool {
    is_closer(c) || matches!(c, '"' | '\'' | '`' | ';' | ':' | ',' | '>') || c.is_whitespace()
}

/// Whether an automatic (as-you-type) request at this cursor should get no suggestion.
pub fn skip_automatic(c: &Cursor<'_>) -> bool {
    let prev = c.before.chars().next_back();
    let next = c.after.chars().next();
    if prev.is_some_and(is_ident) && next.is_some_and(is_ident) {
        return true;
    }
    c.after
        .chars()
        .filter(|&ch| !is_trailing_punctuation(ch))
        .count()
        > 3
}

/// Line or block, stop strings and token cap for a cursor. An `invoked` (explicit) block or
/// line continuation runs until the model ends the middle, the suffix is reached or shaping's
/// scope rules end it, with at least [`INVOKED_BLOCK_MAX_TOKENS`] tokens; an automatic one also
/// stops at a blank line (`"\n\n"`), a continuation at the end of the cursor line unless that
/// line opens a block or was complete (the engine's `LineEnd` rule), and it keeps
/// `max_tokens`, so typing stays fast.
pub fn plan(c: &Cursor<'_>, max_tokens: usize, invoked: bool) -> Plan {
    let (block_stop, block_max): (Vec<String>, usize) = if invoked {
        (Vec::new(), max_tokens.max(INVOKED_BLOCK_MAX_TOKENS))
    } else {
        (vec!["\n\n".into()], max_tokens)
    };
    if !c.after.trim().is_empty() && !c.inserts_lines {
        return Plan {
            mode: Mode::Line,
            stop: vec!["\n".into()],
            max_tokens: max_tokens.min(LINE_MAX_TOKENS),
            line_end_openers: None,
        };
    }
    let before = c.before.trim_end();
    let opens = before
        .chars()
        .next_back()
        .is_some_and(|ch| c.lang.block_openers().contains(&ch));
    if before.is_empty() || opens {
        Plan {
            mode: Mode::Block,
            stop: block_stop,
            max_tokens: block_max,
            line_end_openers: None,
        }
    } else {
        Plan {
            mode: Mode::Continue,
            stop: block_stop,
            max_tokens: block_max,
            // Explicit requests go on to the model's own end of the middle: a hole that ends
            // the cursor line often goes on for more lines.
            line_end_openers: (!invoked).then(|| c.lang.block_openers().to_vec()),
        }
    }
}

/// Scans code for brackets, skipping strings and comments, carrying state across lines.
#[derive(Clone)]
struct Brackets {
    lang: Lang,
    depth: i32,
    quote: Option<char>,
    escape: bool,
}

impl Brackets {
    fn new(lang: Lang) -> Self {
        Brackets {
            lang,
            depth: 0,
            quote: None,
            escape: false,
        }
    }

    /// Feeds one line like [`Brackets::feed_line`], except that up to `allowance` closing
    /// brackets that take the depth below zero are taken as closing something opened before
    /// (the depth stays at zero and the line goes on). Returns how many were, and the byte
    /// offset of a further one, if any (the scan stops there).
    fn feed_line_closing(&mut self, line: &str, allowance: usize) -> (usize, Option<usize>) {
        let (mut rest, mut closed) = (line, 0);
        while let Some(at) = self.feed_line(rest) {
            if closed == allowance {
                return (closed, Some(line.len() - rest.len() + at));
            }
            closed += 1;
            self.depth = 0;
            rest = &rest[at + 1..];
        }
        (closed, None)
    }

    /// Feeds one line (without its break); returns the byte offset of a closing bracket that
    /// takes the depth below zero, if any.
    fn feed_line(&mut self, line: &str) -> Option<usize> {
        let bytes = line.as_bytes();
        for (i, ch) in line.char_indices() {
            if let Some(q) = self.quote {
                if self.escape {
                    self.escape = false;
                } else if ch == '\\' {
                    self.escape = true;
                } else if ch == q {
                    self.quote = None;
                }
                continue;
            }
            match ch {
                '#' if self.lang == Lang::Python => break,
                '/' if self.lang != Lang::Python
                    && self.lang != Lang::Other
                    && bytes.get(i + 1) == Some(&b'/') =>
                {
                    break
                }
                '"' => self.quote = Some('"'),
                '\'' if matches!(self.lang, Lang::Python | Lang::CLike) => self.quote = Some('\''),
                '\'' if self.lang == Lang::Rust => {
                    // A character literal ('x', '\n'); otherwise a lifetime.
                    let rest = &line[i + 1..];
                    let mut cs = rest.chars();
                    match (cs.next(), cs.next()) {
                        (Some('\\'), _) => self.quote = Some('\''),
                        (Some(_), Some('\'')) => self.quote = Some('\''),
                        _ => {}
                    }
                }
                '(' | '[' | '{' => self.depth += 1,
                ')' | ']' | '}' => {
                    self.depth -= 1;
                    if self.depth < 0 {
                        return Some(i);
                    }
                }
                _ => {}
            }
        }
        // Unterminated ' or " strings end with the line (triple quotes excepted, roughly).
        if self.quote == Some('\'') && self.lang != Lang::Python {
            self.quote = None;
        }
        self.escape = false;
        None
    }
}

fn indent(line: &str) -> usize {
    line.chars()
        .take_while(|c| c.is_whitespace())
        .map(|c| if c == '\t' { 4 } else { 1 })
        .sum()
}

/// How many brackets opened in `prefix` (and not closed there) are not closed by a closing
/// bracket of `suffix` that has no opener in the suffix itself (strings and comments skipped).
fn missing_closers(prefix: &str, suffix: &str, lang: Lang) -> usize {
    let (open, _) = unmatched_brackets(prefix, lang);
    let (_, closes) = unmatched_brackets(suffix, lang);
    open.saturating_sub(closes)
}

/// Brackets of `text` left open at its end, and closing brackets with no opener in it.
fn unmatched_brackets(text: &str, lang: Lang) -> (usize, usize) {
    let mut brackets = Brackets::new(lang);
    let mut unopened = 0;
    for line in text.split('\n') {
        unopened += brackets.feed_line_closing(line, usize::MAX).0;
    }
    (brackets.depth.max(0) as usize, unopened)
}

/// Net count of opening minus closing brackets.
fn balance(s: &str) -> i32 {
    s.chars()
        .map(|c| match c {
            '(' | '[' | '{' => 1,
            ')' | ']' | '}' => -1,
            _ => 0,
        })
        .sum()
}

/// Removes the end of a single-line `text` that repeats the start of the text right of the
/// cursor, when that leaves the line's brackets better balanced.
fn trim_rest_overlap(c: &Cursor<'_>, text: &str) -> String {
    let rest = c.after.trim();
    if rest.is_empty() {
        return text.to_owned();
    }
    let full_balance = |t: &str| balance(c.before) + balance(t) + balance(c.after);
    for (k, _) in rest
        .char_indices()
        .skip(1)
        .chain(std::iter::once((rest.len(), ' ')))
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
    {
        let overlap = &rest[..k];
        if let Some(stripped) = text.strip_suffix(overlap) {
            let has_brackets = overlap.chars().any(|ch| "()[]{}".contains(ch));
            if !has_brackets || full_balance(stripped).abs() < full_balance(text).abs() {
                return stripped.trim_end().to_owned();
            }
        }
    }
    text.to_owned()
}

/// The complete lines of `text` (up to and including its last line break): what is safe to
/// offer from a generation that was cut off in the middle of a line.
pub fn finished_lines(text: &str) -> &str {
    text.rfind('\n').map_or("", |i| &text[..=i])
}

/// Cuts the model's raw output to a suggestion for `mode`; `None` when nothing useful is left.
pub fn shape(c: &Cursor<'_>, mode: Mode, raw: &str) -> Option<String> {
    let raw = raw.replace("\r\n", "\n");
    let text = match mode {
        Mode::Line => {
            let line = raw.split('\n').next().unwrap_or("");
            let line = if c.after.trim().is_empty() {
                line.trim_end()
            } else {
                line
            };
            trim_rest_overlap(c, line)
        }
        Mode::Block => shape_block(c, &raw),
        Mode::Continue if raw.trim_end().contains('\n') => shape_block(c, &raw),
        Mode::Continue => trim_rest_overlap(c, raw.split('\n').next().unwrap_or("").trim_end()),
    };
    let text = if c.inserts_lines && mode == Mode::Block {
        whole_lines(text, &raw)
    } else {
        text
    };
    let trimmed = text.trim();
    let closers = trimmed.chars().filter(|&ch| is_closer(ch)).count();
    // Closing brackets only: kept when they close what nothing after the cursor closes.
    let needed = closers > 0 && closers <= c.missing_closers;
    if trimmed.is_empty()
        || (!needed
            && trimmed
                .chars()
                .all(|ch| is_closer(ch) || matches!(ch, ';' | ',') || ch.is_whitespace()))
    {
        return None;
    }
    // The first line as it will read in the document.
    let first_line = text
        .split('\n')
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    let first_full = if text.starts_with(first_line) {
        format!("{}{}", c.before, first_line)
    } else {
        first_line.to_owned()
    };
    if let Some(above) = c.above {
        if first_full.trim() == above.trim() {
            return None;
        }
    }
    Some(text)
}

/// Whether the suggestion [`shape`] makes from `raw`, a run's text so far, can no longer
/// change however the run goes on: a block that a rule has ended at a finished line, by what
/// that line and the ones before it hold (a line below the scope's floor, a new definition
/// after a blank line, a bracket that closes what was opened before the cursor, a clause the
/// suffix's own clause cannot follow, the line cap). The run can stop there: the text after
/// that line is cut whatever it is. A line that repeats the suffix's next line looks at the
/// line after it, so it never settles a block here (the engine's suffix rule ends those runs).
pub fn settled(c: &Cursor<'_>, mode: Mode, raw: &str) -> bool {
    let raw = raw.replace("\r\n", "\n");
    let block = match mode {
        Mode::Line => false,
        Mode::Block => true,
        Mode::Continue => raw.trim_end().contains('\n'),
    };
    if !block {
        return false;
    }
    let last = raw.split('\n').count() - 1;
    shape_block_ended(c, &raw).1.is_some_and(|i| i < last)
}

/// Lines to insert above the cursor line: each ends with the model's own line break, so a
/// last line the model did not finish (no break after it in `raw`) is not offered.
fn whole_lines(text: String, raw: &str) -> String {
    let kept = text.split('\n').count();
    if raw.split('\n').count() > kept {
        text + "\n"
    } else {
        text.rfind('\n')
            .map_or_else(String::new, |i| text[..=i].to_owned())
    }
}

/// Whether a Python line starts a new definition (after a blank line it ends a block).
fn starts_definition(line: &str) -> bool {
    let t = line.trim_start();
    ["def ", "async def ", "class ", "@", "if __name__"]
        .iter()
        .any(|p| t.starts_with(p))
}

/// Whether a Python line opens a block (ends with `:` outside a comment).
fn opens_python_block(line: &str) -> bool {
    strip_python_comment(line).trim_end().ends_with(':')
}

/// `line` without a trailing `#` comment (a `#` inside a string is kept).
fn strip_python_comment(line: &str) -> &str {
    let mut quote: Option<char> = None;
    let mut escape = false;
    for (i, ch) in line.char_indices() {
        if let Some(q) = quote {
            if escape {
                escape = false;
            } else if ch == '\\' {
                escape = true;
            } else if ch == q {
                quote = None;
            }
            continue;
        }
        match ch {
            '"' | '\'' => quote = Some(ch),
            '#' => return &line[..i],
            _ => {}
        }
    }
    line
}

/// Whether a Python line continues the compound statement above it (`else:`, `elif x:`,
/// `except E:`, `finally:`): it cannot start a body, nor follow a simple statement at its
/// own level.
fn continues_compound(line: &str) -> bool {
    let t = line.trim_start();
    ["else", "elif", "except", "finally"].iter().any(|k| {
        t.strip_prefix(k)
            .is_some_and(|rest| rest.starts_with([':', ' ', '(']))
    })
}

/// Whether a generated Python `line` closes the compound statement that the code after the
/// cursor, whose first line is `next`, continues with a clause of its own at the same level:
/// an `else:` there before the suffix's `elif`/`else:`/`except` (or a `finally:` before any
/// clause) is a syntax error, so the hole ends before it (inside the last branch).
fn closes_the_suffix_chain(line: &str, next: Option<&str>) -> bool {
    let Some(next) = next.filter(|n| continues_compound(n)) else {
        return false;
    };
    let is = |l: &str, k: &str| {
        l.trim_start()
            .strip_prefix(k)
            .is_some_and(|r| r.trim_start().starts_with(':'))
    };
    indent(line) == indent(next)
        && (is(line, "finally") || (is(line, "else") && !is(next, "finally")))
}

/// Whether the Python code after the cursor, whose first line is `next` (`None`: nothing
/// follows), can follow `last`, the last line of a suggestion: after a line that opens a block
/// the next line must be deeper (and not an `else:` or `except:`); after any other line it
/// may not be, and an `else:` or `except:` must be less indented (it closes the block `last`
/// is in).
fn python_joins(last: &str, next: Option<&str>) -> bool {
    let level = next.map_or(0, indent);
    let clause = next.is_some_and(continues_compound);
    if opens_python_block(last) {
        level > indent(last) && !clause
    } else if clause {
        level < indent(last)
    } else {
        level <= indent(last)
    }
}

/// Where a generated `line` runs into the code after the cursor when that code goes on with a
/// continuation line, `next` (trimmed: it closes brackets it does not open, like the
/// `100, 1000]` of a list the hole opens): the byte offset in `line` where a repeat of `next`
/// starts, when `line` ends with it and the part before it leaves open what `next` closes.
/// `brackets` is the state before `line`.
fn runs_into_continuation(line: &str, next: &str, brackets: &Brackets) -> Option<usize> {
    let closes = -balance(next);
    let at = line.trim_end().strip_suffix(next)?.len();
    if closes <= 0 || line[..at].trim().is_empty() {
        return None;
    }
    let mut kept = brackets.clone();
    let opened = kept.feed_line(&line[..at]).is_none() && kept.depth > 0;
    (opened && kept.depth <= closes).then_some(at)
}

/// Whether the generated `rest` after a repeat of the suffix's next line goes on as the suffix
/// does (its next non-blank line is the one after, or there is none): then the repeat is the
/// suffix; otherwise it is a line of the hole like the one after it (a `break`, an `i += 1`).
fn repeats_on(c: &Cursor<'_>, rest: &[&str]) -> bool {
    let next = rest
        .iter()
        .map(|l| l.trim_end())
        .find(|l| !l.trim().is_empty());
    match (next, c.below_next) {
        (Some(generated), Some(expected)) => generated == expected.trim_end(),
        _ => true,
    }
}

fn shape_block(c: &Cursor<'_>, raw: &str) -> String {
    shape_block_ended(c, raw).0
}

/// [`shape_block`], and whether the block ended at a line of `raw` by a rule that looks at
/// nothing after that line (so any text generated after it would be cut the same way).
fn shape_block_ended(c: &Cursor<'_>, raw: &str) -> (String, Option<usize>) {
    let lines: Vec<&str> = raw.split('\n').collect();
    let mut brackets = Brackets::new(c.lang);
    let opener_before = c
        .before
        .trim_end()
        .chars()
        .next_back()
        .is_some_and(|ch| c.lang.block_openers().contains(&ch));
    // Python: lines less indented than `min_indent` end the block. Lines less indented than
    // `soft_indent` (the code after the cursor) are kept only when the block later goes back
    // to a point where that code can follow it (the hole may end with the opener of the block
    // the suffix's first line is in, or close inner blocks and go on at the suffix's level).
    let def_floor = c.enclosing_def.map(|d| d + 1);
    let (min_indent, soft_indent): (usize, usize) = if c.before.trim().is_empty() {
        // A blank cursor line: never out of the enclosing definition, and down to the code
        // after the cursor.
        let hard = def_floor.unwrap_or(0);
        (hard, c.below.map_or(0, indent).max(hard))
    } else {
        let first = format!("{}{}", c.before, lines[0]);
        let soft = if opener_before || opens_python_block(&first) {
            // The finished line opens a block: its body is indented deeper.
            indent(c.before) + 1
        } else {
            // The cursor line is finished: statements may follow at its level, or at the
            // level of the code after the cursor (leaving the cursor line's block).
            indent(c.before).min(c.below.map_or(usize::MAX, indent))
        };
        // Inside a definition, the code may go on at outer levels of it (the join rule
        // below decides how far); elsewhere the soft level is the limit.
        (def_floor.map_or(soft, |d| d.min(soft)), soft)
    };
    let below = c.below.map(str::trim).filter(|l| !l.is_empty());
    // The next line of the document as it stands (with its indentation): a generated line
    // equal to it reproduces the suffix.
    let below_line = c.below.map(str::trim_end).filter(|l| !l.trim().is_empty());
    let below_closes = below.and_then(|l| l.chars().next()).is_some_and(is_closer);
    // The level of the first written line: after a blank line, code below it ends the block
    // in brace languages (Python: the scope floor decides).
    let mut level: Option<usize> = None;
    let mut out: Vec<String> = Vec::new();
    let mut after_blank = false;
    // Python: the number of lines of `out` after which the suffix can follow, the last such
    // count seen, and where the first line below `soft_indent` was (the old cut).
    let mut joinable: Option<usize> = None;
    let mut first_below_soft: Option<usize> = None;
    let mut missing = c.missing_closers;
    let mut ended: Option<usize> = None;
    for (i, line) in lines.iter().enumerate() {
        let line = line.trim_end();
        if out.len() >= MAX_LINES {
            ended = Some(i);
            break;
        }
        // Python, blank cursor line: a first line outside the enclosing definition (the model
        // went on with module-level code instead of filling the body) gives nothing.
        if i == 0
            && c.lang == Lang::Python
            && c.before.trim().is_empty()
            && !line.trim().is_empty()
            && indent(&format!("{}{}", c.before, line)) < min_indent
        {
            ended = Some(i);
            break;
        }
        if i > 0 {
            if line.trim().is_empty() {
                // Kept only if the code goes on inside the scope (trailing blanks are dropped).
                after_blank = out.iter().any(|l| !l.trim().is_empty());
                out.push(String::new());
                continue;
            }
            // The completion reached the text that follows the cursor (a closing bracket of
            // its own block does not count).
            if brackets.depth == 0 && below_line == Some(line) && repeats_on(c, &lines[i + 1..]) {
                break;
            }
            let starts_with_closer = line.trim_start().chars().next().is_some_and(is_closer);
            if brackets.depth == 0 && !starts_with_closer {
                if c.lang == Lang::Python {
                    if indent(line) < min_indent {
                        ended = Some(i);
                        break;
                    }
                    if indent(line) < soft_indent && first_below_soft.is_none() {
                        first_below_soft = Some(out.len());
                    }
                    // A definition after a blank line starts new code, unless it is nested
                    // in the function body the hole fills.
                    if after_blank && starts_definition(line) && !c.in_function {
                        ended = Some(i);
                        break;
                    }
                } else if after_blank && level.is_some_and(|l| indent(line) < l) {
                    ended = Some(i);
                    break;
                }
            }
        }
        if !line.trim().is_empty() {
            after_blank = false;
            if level.is_none() {
                let full = if i == 0 {
                    format!("{}{}", c.before, line)
                } else {
                    line.to_owned()
                };
                level = Some(indent(&full));
            }
        }
        // Python: an `else:` at the level of the suffix's own `else:` would leave that one
        // without its `if` (the generated branch goes on in the suffix's place).
        if c.lang == Lang::Python
            && brackets.depth == 0
            && i > 0
            && closes_the_suffix_chain(line, c.below)
        {
            ended = Some(i);
            break;
        }
        if let Some(at) = below.and_then(|next| runs_into_continuation(line, next, &brackets)) {
            // The rest of the line is already in the document, on the suffix's next line.
            out.push(line[..at].trim_end().to_owned());
            joinable = Some(out.len());
            ended = Some(i);
            break;
        }
        // Python: a bracket opened before the cursor that nothing after it closes may be
        // closed by the hole, which then goes on.
        let (closed, over) = brackets.feed_line_closing(line, missing);
        missing -= closed;
        match over {
            None => {
                out.push(line.to_owned());
                if c.lang == Lang::Python && brackets.depth == 0 && !line.trim().is_empty() {
                    let full = if i == 0 {
                        format!("{}{}", c.before, line)
                    } else {
                        line.to_owned()
                    };
                    if python_joins(&full, c.below) {
                        joinable = Some(out.len());
                    }
                }
            }
            Some(at) => {
                // A bracket closes something opened before the cursor: the block ends here. The
                // bracket itself is kept only when the document does not close it already.
                let end = if below_closes { at } else { at + 1 };
                let kept = line[..end].trim_end();
                if !kept.trim().is_empty() || (i == 0 && !kept.is_empty()) {
                    out.push(kept.to_owned());
                }
                // The end of what was opened before the cursor: the suffix follows.
                joinable = Some(out.len());
                ended = Some(i);
                break;
            }
        }
    }
    if c.lang == Lang::Python {
        // Lines below the suffix's level are kept only up to the last point the suffix can
        // follow; without such a point, the block ends where it first went below that level.
        let last_code = out
            .iter()
            .rposition(|l| !l.trim().is_empty())
            .map(|k| k + 1);
        if last_code.is_some_and(|n| joinable != Some(n)) {
            match (joinable, first_below_soft) {
                (Some(n), _) => out.truncate(n),
                (None, Some(n)) => out.truncate(n),
                (None, None) => {}
            }
        }
    }
    while out.last().is_some_and(|l| l.trim().is_empty()) {
        out.pop();
    }
    (out.join("\n"), ended)
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::{expect, Expect};

    /// Each case: language, fixture with `$0` for the cursor, the model's raw output. The
    /// snapshot shows the decision (skip for automatic triggers, mode) and the shaped result.
    fn check(cases: &[(Lang, &str, &str)], expect: Expect) {
        let mut out = String::new();
        for (lang, fixture, raw) in cases {
            let (prefix, suffix) = fixture.split_once("$0").expect("fixture has $0");
            let cursor = Cursor::new(prefix, suffix, *lang);
            let plan = plan(&cursor, 128, false);
            let shaped = shape(&cursor, plan.mode, raw);
            settles_as_it_ends(&cursor, plan.mode, raw);
            out.push_str(&format!(
                "{:?} {:?}{} max={} stop={:?}\n  raw:    {:?}\n  shaped: {:?}\n",
                lang,
                fixture.lines().find(|l| l.contains("$0")).unwrap_or(""),
                if skip_automatic(&cursor) {
                    " [skip automatic]"
                } else {
                    ""
                },
                plan.max_tokens,
                plan.stop,
                raw,
                shaped,
            ));
        }
        expect.assert_eq(&out);
    }

    #[test]
    fn python_blocks() {
        check(
            &[
                (
                    Lang::Python,
                    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n    if n < 2:\n        return n\n    $0",
                    "return fibonacci(n - 1) + fibonacci(n - 2)\n\n\ndef main():\n    print(fibonacci(10))\n",
                ),
                (
                    Lang::Python,
                    "def f(xs):\n    total = 0\n    $0\n    return total\n",
                    "for x in xs:\n        total += x\n    return total\n",
                ),
                (
                    Lang::Python,
                    "class A:\n    def f(self):\n        $0\n\nx = 1\n",
                    "return 1\n\n    def g(self):\n        return 2",
                ),
                (Lang::Python, "def f(self):\n    $0", "pass\nx = 1"),
                (Lang::Python, "def area(r):$0\n", "\n    return 3.14 * r * r\n\nprint(area(2))"),
                (Lang::Python, "xs = [$0\n", "\n    1,\n    2,\n]\n"),
                (Lang::Python, "x = 1\n$0", "x = 1\ny = 2"),
                (Lang::Python, "if x:\n    a()\n$0", "   \n\n"),
                (Lang::Python, "for i in range(3):\n    $0", "s = '# not a comment ('\n    t = i  # (\n    u = 2"),
                (
                    Lang::Python,
                    "def g():\n    $0",
                    "a = 1\n    b = 2\n    c = 3\n    d = 4\n    e = 5\n    f = 6\n    g = 7\n    h = 8\n    i = 9\n    j = 10\n    k = 11\n    l = 12\n    m = 13\n    n = 14",
                ),
            ],
            expect![[r#"
                Python "    $0" max=128 stop=["\n\n"]
                  raw:    "return fibonacci(n - 1) + fibonacci(n - 2)\n\n\ndef main():\n    print(fibonacci(10))\n"
                  shaped: Some("return fibonacci(n - 1) + fibonacci(n - 2)")
                Python "    $0" max=128 stop=["\n\n"]
                  raw:    "for x in xs:\n        total += x\n    return total\n"
                  shaped: Some("for x in xs:\n        total += x")
                Python "        $0" max=128 stop=["\n\n"]
                  raw:    "return 1\n\n    def g(self):\n        return 2"
                  shaped: Some("return 1")
                Python "    $0" max=128 stop=["\n\n"]
                  raw:    "pass\nx = 1"
                  shaped: Some("pass")
                Python "def area(r):$0" max=128 stop=["\n\n"]
                  raw:    "\n    return 3.14 * r * r\n\nprint(area(2))"
                  shaped: Some("\n    return 3.14 * r * r")
                Python "xs = [$0" max=128 stop=["\n\n"]
                  raw:    "\n    1,\n    2,\n]\n"
                  shaped: Some("\n    1,\n    2,\n]")
                Python "$0" max=128 stop=["\n\n"]
                  raw:    "x = 1\ny = 2"
                  shaped: None
                Python "$0" max=128 stop=["\n\n"]
                  raw:    "   \n\n"
                  shaped: None
                Python "    $0" max=128 stop=["\n\n"]
                  raw:    "s = '# not a comment ('\n    t = i  # (\n    u = 2"
                  shaped: Some("s = '# not a comment ('\n    t = i  # (\n    u = 2")
                Python "    $0" max=128 stop=["\n\n"]
                  raw:    "a = 1\n    b = 2\n    c = 3\n    d = 4\n    e = 5\n    f = 6\n    g = 7\n    h = 8\n    i = 9\n    j = 10\n    k = 11\n    l = 12\n    m = 13\n    n = 14"
                  shaped: Some("a = 1\n    b = 2\n    c = 3\n    d = 4\n    e = 5\n    f = 6\n    g = 7\n    h = 8\n    i = 9\n    j = 10\n    k = 11\n    l = 12\n    m = 13\n    n = 14")
            "#]],
        );
    }

    #[test]
    fn brace_blocks() {
        check(
            &[
                (
                    Lang::Rust,
                    "fn f(x: u32) -> u32 {\n    $0\n}\n",
                    "let y = x * 2;\n    y + 1\n}\n\nfn g() {}",
                ),
                (
                    Lang::Rust,
                    "fn f(x: u32) -> u32 {$0",
                    "\n    x + 1\n}\n\nfn g() {}",
                ),
                (Lang::Rust, "fn f() {\n    $0\n}\n", "}"),
                (
                    Lang::Rust,
                    "fn f<'a>(s: &'a str) {\n    $0\n}\n",
                    "let c = '}';\n    let t: &'a str = s; // }\n    println!(\"{}\", t);\n}",
                ),
                (
                    Lang::CLike,
                    "int main() {\n    $0\n    return 0;\n}\n",
                    "printf(\"hi\\n\");\n    return 0;\n}",
                ),
                (
                    Lang::CLike,
                    "if (x) {\n    $0\n}\n",
                    "if (y) {\n        z();\n    }\n    w();\n}",
                ),
            ],
            expect![[r#"
                Rust "    $0" max=128 stop=["\n\n"]
                  raw:    "let y = x * 2;\n    y + 1\n}\n\nfn g() {}"
                  shaped: Some("let y = x * 2;\n    y + 1")
                Rust "fn f(x: u32) -> u32 {$0" max=128 stop=["\n\n"]
                  raw:    "\n    x + 1\n}\n\nfn g() {}"
                  shaped: Some("\n    x + 1\n}")
                Rust "    $0" max=128 stop=["\n\n"]
                  raw:    "}"
                  shaped: None
                Rust "    $0" max=128 stop=["\n\n"]
                  raw:    "let c = '}';\n    let t: &'a str = s; // }\n    println!(\"{}\", t);\n}"
                  shaped: Some("let c = '}';\n    let t: &'a str = s; // }\n    println!(\"{}\", t);")
                CLike "    $0" max=128 stop=["\n\n"]
                  raw:    "printf(\"hi\\n\");\n    return 0;\n}"
                  shaped: Some("printf(\"hi\\n\");")
                CLike "    $0" max=128 stop=["\n\n"]
                  raw:    "if (y) {\n        z();\n    }\n    w();\n}"
                  shaped: Some("if (y) {\n        z();\n    }\n    w();")
            "#]],
        );
    }

    #[test]
    fn single_lines() {
        check(
            &[
                (Lang::Python, "print($0)\n", "fibonacci(10))\nprint(2)"),
                (Lang::Python, "print($0)\n", "foo()"),
                (Lang::Python, "def add($0):\n    return a + b\n", "a, b):\n"),
                (Lang::Python, "def add($0):\n    return a + b\n", "a, b)"),
                (Lang::Python, "x = $0\n", "compute(1, 2)  \n"),
                (Lang::Python, "    return fib$0\n", "onacci(n - 1)\n"),
                (Lang::Python, "value = some_fu$0nction(1)\n", "x"),
                (Lang::Python, "x = $0 + other + more\n", "1"),
                (Lang::Rust, "let v = vec![$0];\n", "1, 2, 3];"),
                (Lang::Rust, "let v = foo($0);\n", ")"),
                (Lang::Python, "total = 0\ntotal = $0\n", "0"),
                (Lang::Python, "s = \"caf$0\"\n", "é 😀\""),
            ],
            expect![[r#"
                Python "print($0)" max=48 stop=["\n"]
                  raw:    "fibonacci(10))\nprint(2)"
                  shaped: Some("fibonacci(10)")
                Python "print($0)" max=48 stop=["\n"]
                  raw:    "foo()"
                  shaped: Some("foo()")
                Python "def add($0):" max=48 stop=["\n"]
                  raw:    "a, b):\n"
                  shaped: Some("a, b")
                Python "def add($0):" max=48 stop=["\n"]
                  raw:    "a, b)"
                  shaped: Some("a, b")
                Python "x = $0" max=128 stop=["\n\n"]
                  raw:    "compute(1, 2)  \n"
                  shaped: Some("compute(1, 2)")
                Python "    return fib$0" max=128 stop=["\n\n"]
                  raw:    "onacci(n - 1)\n"
                  shaped: Some("onacci(n - 1)")
                Python "value = some_fu$0nction(1)" [skip automatic] max=48 stop=["\n"]
                  raw:    "x"
                  shaped: Some("x")
                Python "x = $0 + other + more" [skip automatic] max=48 stop=["\n"]
                  raw:    "1"
                  shaped: Some("1")
                Rust "let v = vec![$0];" max=48 stop=["\n"]
                  raw:    "1, 2, 3];"
                  shaped: Some("1, 2, 3")
                Rust "let v = foo($0);" max=48 stop=["\n"]
                  raw:    ")"
                  shaped: None
                Python "total = $0" max=128 stop=["\n\n"]
                  raw:    "0"
                  shaped: None
                Python "s = \"caf$0\"" max=48 stop=["\n"]
                  raw:    "é 😀\""
                  shaped: Some("é 😀")
            "#]],
        );
    }

    #[test]
    fn lines_that_continue() {
        check(
            &[
                // A complete line: the model went on with the statements after it.
                (
                    Lang::Python,
                    "def f(arr, k):\n    if k == 0:\n        return []$0\n    return ans\n",
                    "\n    arr.sort()\n    ans = arr[-k:]",
                ),
                // ... but not past the end of its scope.
                (
                    Lang::Python,
                    "def f(xs):\n    for x in xs:\n        print(x)$0\n",
                    "\n        y = x\nprint(1)",
                ),
                // The finished line opens a block: its body follows, one level deeper.
                (
                    Lang::Python,
                    "def f(n):\n    for i in r$0\n    return 0\n",
                    "ange(n):\n        if n % i == 0:\n            return i\n    return 0",
                ),
                // The engine stopped at the line break: the rest of the line only.
                (Lang::Python, "def f(n):\n    x = f($0\n", "n - 1)"),
            ],
            expect![[r#"
                Python "        return []$0" max=128 stop=["\n\n"]
                  raw:    "\n    arr.sort()\n    ans = arr[-k:]"
                  shaped: Some("\n    arr.sort()\n    ans = arr[-k:]")
                Python "        print(x)$0" max=128 stop=["\n\n"]
                  raw:    "\n        y = x\nprint(1)"
                  shaped: Some("\n        y = x")
                Python "    for i in r$0" max=128 stop=["\n\n"]
                  raw:    "ange(n):\n        if n % i == 0:\n            return i\n    return 0"
                  shaped: Some("ange(n):\n        if n % i == 0:\n            return i")
                Python "    x = f($0" max=128 stop=["\n\n"]
                  raw:    "n - 1)"
                  shaped: Some("n - 1)")
            "#]],
        );
    }

    /// A block written at a blank line, as an explicit request shapes it.
    fn block(prefix: &str, suffix: &str, raw: &str) -> Option<String> {
        let cursor = Cursor::new(prefix, suffix, Lang::Python);
        let plan = plan(&cursor, 128, true);
        assert_eq!(plan.mode, Mode::Block);
        assert!(
            plan.stop.is_empty(),
            "an explicit block does not stop at a blank line"
        );
        assert!(plan.max_tokens >= INVOKED_BLOCK_MAX_TOKENS);
        settles_as_it_ends(&cursor, plan.mode, raw);
        shape(&cursor, plan.mode, raw)
    }

    /// Wherever a run of `raw` would have been stopped as settled, the suggestion is the one
    /// the whole of `raw` makes (every fixture of these tests checks it at every cut).
    fn settles_as_it_ends(c: &Cursor<'_>, mode: Mode, raw: &str) {
        let whole = shape(c, mode, raw);
        for (at, _) in raw.char_indices().skip(1) {
            let so_far = &raw[..at];
            if settled(c, mode, so_far) {
                assert_eq!(
                    shape(c, mode, so_far),
                    whole,
                    "settled at byte {at} of {raw:?}"
                );
            }
        }
    }

    #[test]
    fn a_hole_may_close_inner_blocks_down_to_the_code_after_it() {
        // `total += 1` then `return total` one level out, then the next function.
        let prefix = "def count(xs):\n    total = 0\n    for x in xs:\n        if x:\n";
        assert_eq!(
            block(
                prefix,
                "\n\n\ndef other():\n    pass\n",
                "            total += 1\n    return total\n\n\ndef other():\n    pass\n"
            )
            .as_deref(),
            Some("            total += 1\n    return total")
        );
        // An `elif` chain continues at the level of the code after the hole.
        let prefix = "def f(s):\n    for c in s:\n        if c == '(':\n            depth += 1\n";
        assert_eq!(
            block(prefix, "\n        else:\n            pass\n", "            cur.append(c)\n        elif c == ')':\n            depth -= 1\n        else:\n            pass\n").as_deref(),
            Some("            cur.append(c)\n        elif c == ')':\n            depth -= 1")
        );
        // ... but not below it.
        let prefix = "def f(y):\n    for x in y:\n";
        assert_eq!(
            block(
                prefix,
                "\n        z()\n    return 1\n",
                "        a()\n    b()\n"
            )
            .as_deref(),
            Some("        a()")
        );
    }

    #[test]
    fn a_hole_may_end_with_the_opener_of_the_block_the_suffix_is_in() {
        // The suffix's first line is the body of a loop the hole opens: lines above its level
        // are kept because the hole goes back down to it.
        let prefix = "def f(xs, t):\n    \"\"\"Doc.\"\"\"\n";
        let suffix = "\n                if abs(a - b) < t:\n                    return True\n    return False\n";
        assert_eq!(
            block(
                prefix,
                suffix,
                "    for i, a in enumerate(xs):\n        for j, b in enumerate(xs):\n            if i != j:\n"
            )
            .as_deref(),
            Some("    for i, a in enumerate(xs):\n        for j, b in enumerate(xs):\n            if i != j:")
        );
        // A hole that ends at an outer level whose next line is deeper: cut back to the last
        // point the suffix can follow.
        let prefix = "def f(k):\n    if k < 2:\n";
        let suffix =
            "\n            if k % i == 0:\n                return False\n    return True\n";
        assert_eq!(
            block(
                prefix,
                suffix,
                "        return False\n    for i in range(2, k):\n    x = 1\n"
            )
            .as_deref(),
            Some("        return False\n    for i in range(2, k):")
        );
        // Never out of the enclosing definition, whatever the suffix.
        assert_eq!(
            block(
                "def f():\n",
                "\n        y()\n",
                "    for x in z:\nprint(1)\n"
            )
            .as_deref(),
            Some("    for x in z:")
        );
        // Statements at an outer level: cut back to the last line the suffix's first line
        // can follow (here inside a block the hole opened at the outer level).
        assert_eq!(
            block(
                "def f(y):\n    for x in y:\n",
                "\n        z()\n    return 1\n",
                "        a()\n    b()\n    if c:\n        d()\n    e()\n"
            )
            .as_deref(),
            Some("        a()\n    b()\n    if c:\n        d()")
        );
    }

    #[test]
    fn a_line_like_the_next_one_at_another_level_is_not_the_suffix() {
        // `return False` inside the hole, one level deeper than the suffix's `return False`.
        let prefix = "def f(n):\n    for i in range(2, n):\n";
        assert_eq!(
            block(
                prefix,
                "\n    return False\n",
                "        if n % i == 0:\n            return False\n    return True\n    return False\n"
            )
            .as_deref(),
            Some("        if n % i == 0:\n            return False\n    return True")
        );
    }

    #[test]
    fn an_invoked_continuation_runs_past_the_cursor_line() {
        // A random span that finishes the cursor line and goes on for two more lines.
        let prefix = "def f(xs):\n    total = su";
        let suffix = "\n    return total\n";
        let cursor = Cursor::new(prefix, suffix, Lang::Python);
        let p = plan(&cursor, 128, true);
        assert_eq!(p.mode, Mode::Continue);
        assert_eq!(p.line_end_openers, None, "no line-end rule when asked");
        assert!(p.stop.is_empty());
        assert!(plan(&cursor, 128, false).line_end_openers.is_some());
        assert_eq!(
            shape(
                &cursor,
                p.mode,
                "m(xs)\n    if total < 0:\n        total = 0\n"
            )
            .as_deref(),
            Some("m(xs)\n    if total < 0:\n        total = 0")
        );
        // Inside a loop the continuation may close the loop and go on at the function's level
        // when the suffix can follow it ...
        let prefix = "def f(xs):\n    for x in xs:\n        y = x +";
        let suffix = "\n    return y\n";
        let cursor = Cursor::new(prefix, suffix, Lang::Python);
        assert_eq!(
            shape(
                &cursor,
                Mode::Continue,
                " 1\n        print(y)\n    y += 1\n"
            )
            .as_deref(),
            Some(" 1\n        print(y)\n    y += 1")
        );
        // ... but never out of the function.
        assert_eq!(
            shape(&cursor, Mode::Continue, " 1\n    y += 1\nprint(f([]))\n").as_deref(),
            Some(" 1\n    y += 1")
        );
        // The finished line opens a block: its body, then the code after it at the cursor's
        // level, down to where the suffix can follow.
        let prefix = "def f(n):\n    for i in r";
        let suffix = "\n    return 0\n";
        let cursor = Cursor::new(prefix, suffix, Lang::Python);
        assert_eq!(
            shape(
                &cursor,
                Mode::Continue,
                "ange(n):\n        if n % i == 0:\n            return i\n    n += 1\n"
            )
            .as_deref(),
            Some("ange(n):\n        if n % i == 0:\n            return i\n    n += 1")
        );
    }

    #[test]
    fn a_closing_bracket_nothing_after_the_cursor_closes_is_kept() {
        let prefix = "def f(x):\n    table = {\n        'one': 1,\n        'two': 2\n";
        // HumanEval/19: the hole is the dict's closing brace.
        assert_eq!(
            block(prefix, "\n    return table[x]\n", "    }").as_deref(),
            Some("    }")
        );
        // The suffix closes it already: a closing brace is a repeat.
        assert_eq!(
            block(prefix, "\n    }\n    return table[x]\n", "    }"),
            None
        );
    }

    #[test]
    fn a_body_that_is_only_a_docstring_is_not_finished() {
        let prefix = "def f(n):\n    \"\"\"Doc.\"\"\"\n\n";
        assert_eq!(
            block(prefix, "\n", "if __name__ == \"__main__\":\n    f(1)\n"),
            None
        );
    }

    #[test]
    fn column_zero_after_a_finished_body_or_a_blank_line_is_module_level() {
        // The user finished a function: a new top-level statement is what they want.
        for prefix in [
            "def f(n):\n    return n\n",
            "def f(n):\n    x = n\n\n",
            "def f(n):\n    x = n\n\n\n",
        ] {
            assert_eq!(
                block(prefix, "\n", "def g(m):\n    return m\n").as_deref(),
                Some("def g(m):\n    return m"),
                "{prefix:?}"
            );
        }
    }

    #[test]
    fn a_first_line_outside_the_enclosing_definition_gives_nothing() {
        // The body is missing and the model wrote module-level code instead.
        let prefix = "def f(n):\n    \"\"\"Doc.\"\"\"\n";
        assert_eq!(
            block(
                prefix,
                "\n",
                "if __name__ == \"__main__\":\n    print(f(0))\n"
            ),
            None
        );
        assert_eq!(
            block(prefix, "\n", "    return n\n").as_deref(),
            Some("    return n")
        );
    }

    #[test]
    fn blank_lines_inside_a_block_are_kept_when_the_code_goes_on() {
        let prefix = "def f(xs):\n    \"\"\"Doc.\"\"\"\n";
        assert_eq!(
            block(
                prefix,
                "\n    return ys\n",
                "    ys = []\n\n    for x in xs:\n        ys.append(x)\n    return ys\n"
            )
            .as_deref(),
            Some("    ys = []\n\n    for x in xs:\n        ys.append(x)")
        );
        // A new definition after a blank line ends the block; trailing blank lines go.
        assert_eq!(
            block("def f():\n", "\n", "    return 1\n\n\ndef g():\n    pass\n").as_deref(),
            Some("    return 1")
        );
        // A dictionary literal longer than the old 12-line cap.
        let raw: String = std::iter::once("    d = {\n".to_owned())
            .chain((0..20).map(|i| format!("        {i}: {i},\n")))
            .chain(std::iter::once("    }\n    return d\n".to_owned()))
            .collect();
        let shaped = block("def f():\n", "\n", &raw).unwrap_or_default();
        assert_eq!(shaped.lines().count(), 23);
    }

    #[test]
    fn a_line_that_runs_into_the_continuation_line_after_the_hole_ends_there() {
        // The hole opens a list whose last items are on the next line: the model wrote them
        // on its own line, then went on past the list.
        let prefix = "def to_roman(number):\n    \"\"\"Roman numerals.\"\"\"\n";
        let suffix = "\n           100, 400, 500, 900, 1000]\n    sym = ['I', 'IV', 'V']\n";
        assert_eq!(
            block(
                prefix,
                suffix,
                "    num = [1, 4, 5, 9, 10, 40, 50, 90, 100, 400, 500, 900, 1000]\n    sym = ['I']\n"
            )
            .as_deref(),
            Some("    num = [1, 4, 5, 9, 10, 40, 50, 90,")
        );
        // Brace languages alike.
        let cursor = Cursor::new(
            "int main() {\n",
            "\n        7, 11};\n    return 0;\n}\n",
            Lang::CLike,
        );
        assert_eq!(
            shape(
                &cursor,
                Mode::Block,
                "    int p[] = {2, 3, 5, 7, 11};\n    return p[0];\n"
            )
            .as_deref(),
            Some("    int p[] = {2, 3, 5,")
        );
        // A line that closes its own brackets before the repeat is not cut there.
        let suffix = "\n    )\n    return x\n";
        assert_eq!(
            block("def f():\n    x = g(\n", suffix, "        a, b)\n").as_deref(),
            Some("        a, b")
        );
    }

    #[test]
    fn an_else_after_the_hole_needs_the_block_it_continues() {
        // The hole is the body of an `if` the suffix's `else:` continues: a statement at the
        // `else:`'s own level would end the `if` before it.
        let prefix = "def f(xs):\n    total = 0\n    for x in xs:\n        if x > 0:\n";
        let suffix = "\n        else:\n            total -= x\n    return total\n";
        assert_eq!(
            block(
                prefix,
                suffix,
                "            total += x\n        count += 1\n"
            )
            .as_deref(),
            Some("            total += x")
        );
        // Nor can an `else:` be the first line of a body the hole opens.
        let suffix = "\n        else:\n            pass\n    return 0\n";
        assert_eq!(
            block(
                "def f(xs):\n",
                suffix,
                "    for x in xs:\n        if x:\n            print(x)\n    for y in xs:\n"
            )
            .as_deref(),
            Some("    for x in xs:\n        if x:\n            print(x)")
        );
        // The hole fills an `elif` branch that the suffix's `else:` follows: a generated
        // `else:` at that level would leave the suffix's `else:` without its `if`.
        let prefix = "def f(v):\n    if v > 0:\n        r = 1\n    elif v < 0:\n";
        let suffix = "\n    else:\n        r = 0\n    return r\n";
        assert_eq!(
            block(
                prefix,
                suffix,
                "        if v < -9:\n            r = -2\n        else:\n            r = -1\n    else:\n        r = 5\n"
            )
            .as_deref(),
            Some("        if v < -9:\n            r = -2\n        else:\n            r = -1")
        );
        // Before the suffix's `finally:` a `try` may still have its `else:`.
        assert!(!closes_the_suffix_chain("    else:", Some("    finally:")));
        assert!(closes_the_suffix_chain(
            "    finally:",
            Some("    except E:")
        ));
        assert!(!closes_the_suffix_chain("        else:", Some("    else:")));
        assert!(continues_compound("    except ValueError:"));
        assert!(continues_compound("elif(x):"));
        assert!(!continues_compound("    elsewhere = 1"));
    }

    #[test]
    fn a_hole_that_closes_a_bracket_nothing_after_it_closes_goes_on() {
        // The hole ends a dict literal and goes on with the code the suffix is in.
        let prefix = "def by_name(arr):\n    dic = {\n        1: \"One\",\n        2: \"Two\",\n";
        let suffix = "\n            out.append(dic[x])\n        except KeyError:\n            pass\n    return out\n";
        let raw = "        3: \"Three\",\n    }\n    out = []\n    for x in arr:\n        try:\n";
        assert_eq!(block(prefix, suffix, raw).as_deref(), Some(raw.trim_end()));
        // The cursor line's `(` is closed by the hole, whose line then opens the loop's body.
        let prefix = "def count(s, sub):\n    times = 0\n    for i in range(";
        let suffix = "\n\n    return times\n";
        let cursor = Cursor::new(prefix, suffix, Lang::Python);
        let p = plan(&cursor, 128, true);
        let raw = "len(s) - len(sub) + 1):\n        if s[i:i + len(sub)] == sub:\n            times += 1\n";
        assert_eq!(shape(&cursor, p.mode, raw).as_deref(), Some(raw.trim_end()));
        // Brackets inside strings and comments are not missing closers.
        assert_eq!(
            missing_closers("x = [  # (\n    '(', \"[\",\n", "\n", Lang::Python),
            1
        );
        assert_eq!(missing_closers("f(a,\n", "\n  b)\n", Lang::Python), 0);
    }

    #[test]
    fn a_function_body_may_hold_a_nested_definition_after_a_blank_line() {
        let prefix = "def prime_fib(n):\n    \"\"\"Doc.\"\"\"\n";
        let raw = "    import math\n\n    def is_prime(p):\n        return p > 1\n    return is_prime(n)\n";
        assert_eq!(block(prefix, "\n", raw).as_deref(), Some(raw.trim_end()));
        // In a class body a definition after a blank line is the next method.
        let prefix = "class A:\n    x = 1\n";
        assert_eq!(
            block(
                prefix,
                "\n",
                "    y = 2\n\n    def f(self):\n        pass\n"
            )
            .as_deref(),
            Some("    y = 2")
        );
    }

    #[test]
    fn nothing_or_module_code_after_a_nested_function_lets_the_hole_leave_it() {
        // The hole ends the nested function and finishes the outer one.
        let prefix = "def xor_all(a, b):\n    def xor(i, j):\n        if i == j:\n";
        let raw = "            return '0'\n        else:\n            return '1'\n    return ''.join(xor(x, y) for x, y in zip(a, b))\n";
        assert_eq!(block(prefix, "\n", raw).as_deref(), Some(raw.trim_end()));
        assert_eq!(
            block(prefix, "\n\nprint(1)\n", raw).as_deref(),
            Some(raw.trim_end())
        );
        // ... but not the outer one.
        let raw = "            return '0'\n    return 1\nprint(xor_all(1, 2))\n";
        assert_eq!(
            block(prefix, "\n", raw).as_deref(),
            Some("            return '0'\n    return 1")
        );
    }

    #[test]
    fn a_line_like_the_next_one_is_the_suffix_only_when_the_suffix_goes_on_after_it() {
        let prefix = "def check(d):\n    state = None\n    for key in d:\n";
        let suffix = "\n                break\n        return state == 'upper'\n";
        // The hole's own `break`, then more of the loop.
        let raw = "            if not isinstance(key, str):\n                state = 'mixed'\n                break\n            if key.isupper():\n                state = 'upper'\n            else:\n";
        assert_eq!(block(prefix, suffix, raw).as_deref(), Some(raw.trim_end()));
        // The suffix reproduced: its two lines.
        let raw = "            if key.islower():\n                break\n        return state == 'upper'\n";
        assert_eq!(
            block(prefix, suffix, raw).as_deref(),
            Some("            if key.islower():")
        );
        // The repeat is the end of the generation.
        let raw = "            if key.islower():\n                break\n";
        assert_eq!(
            block(prefix, suffix, raw).as_deref(),
            Some("            if key.islower():")
        );
    }

    #[test]
    fn at_column_0_before_a_line_the_suggestion_is_whole_lines_above_it() {
        let prefix = "def fib(n):\n    \"\"\"Doc.\"\"\"\n";
        let suffix = "    return fib(n - 1) + fib(n - 2)\n\nprint(fib(3))\n";
        let cursor = Cursor::new(prefix, suffix, Lang::Python);
        let p = plan(&cursor, 128, true);
        assert_eq!(p.mode, Mode::Block);
        let raw = "    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n";
        assert_eq!(
            shape(&cursor, p.mode, raw).as_deref(),
            Some("    if n < 2:\n        return n\n")
        );
        // The model's first line is the cursor line: nothing to insert.
        assert_eq!(shape(&cursor, p.mode, ""), None);
        // A line the model did not finish is not offered.
        assert_eq!(
            shape(&cursor, p.mode, "    if n < 2:\n        return n").as_deref(),
            Some("    if n < 2:\n")
        );
        // Not at column 0: the rest of the line is a single line's business.
        let cursor = Cursor::new("x = ", "f(1)\n", Lang::Python);
        assert_eq!(plan(&cursor, 128, true).mode, Mode::Line);
        assert!(!cursor.inserts_lines);
    }

    #[test]
    fn automatic_blocks_stay_short() {
        let cursor = Cursor::new("def f():\n    ", "\n", Lang::Python);
        let p = plan(&cursor, 128, false);
        assert_eq!(p.stop, vec!["\n\n".to_owned()]);
        assert_eq!(p.max_tokens, 128);
    }

    #[test]
    fn crlf_documents() {
        let cursor = Cursor::new("def f():\r\n    x = 1\r\n    ", "\r\n", Lang::Python);
        assert_eq!(cursor.above, Some("    x = 1"));
        assert_eq!(cursor.after, "");
        assert_eq!(
            shape(&cursor, Mode::Block, "y = 2\r\n    return x\r\n").as_deref(),
            Some("y = 2\n    return x")
        );
    }

    #[test]
    fn language_detection() {
        assert_eq!(Lang::detect("python", "a.txt"), Lang::Python);
        assert_eq!(Lang::detect("", "src/main.rs"), Lang::Rust);
        assert_eq!(Lang::detect("typescript", ""), Lang::CLike);
        assert_eq!(Lang::detect("markdown", "README.md"), Lang::Other);
    }

    #[test]
    fn a_family_agrees_with_the_facts_of_each_member() {
        for language in Language::ALL {
            let lang = Lang::of(Some(language));
            assert_ne!(lang, Lang::Other, "{language:?}");
            assert_eq!(lang.line_comment(), language.line_comment(), "{language:?}");
            assert_eq!(
                lang.block_openers(),
                language.block_openers(),
                "{language:?}"
            );
        }
    }

    #[test]
    fn a_cut_off_generation_keeps_only_finished_lines() {
        assert_eq!(finished_lines("return a +"), "");
        assert_eq!(finished_lines("x = 1\n    y = x +"), "x = 1\n");
        assert_eq!(finished_lines("x = 1\n"), "x = 1\n");
    }
}
