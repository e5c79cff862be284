//! The enclosing-function finder for "Explain this function": the innermost function around a
//! byte offset, with its name and byte range. Tree-sitter (`outline.scm`'s `@function`
//! captures) for the languages with a grammar (Python, Rust); textual fallbacks for the rest,
//! chosen by the language's facts from `ghostline-lang`: indentation for indent-block
//! languages, brace matching for brace languages.
//!
//! Bounded and linear: only a window of [`WINDOW_BYTES`] on each side of the offset (cut at
//! line starts) is ever looked at, so a 20 MB file or a 1 MB line costs what a 256 KB window does;
//! the brace finder walks back once and reads each header once. A function longer than the
//! window is cut at its edge (its range ends where the window does, or it is not found).
//! Never reads files, never panics on any text or offset.

use std::ops::Range;

use ghostline_lang::{Blocks, Language as Lang};

use crate::language::Language;
use crate::{outline, FunctionSpan};

/// Bytes looked at on each side of the offset.
pub const WINDOW_BYTES: usize = 128 << 10;

/// The innermost function of `text` (in language `lang`) that contains byte `offset`.
pub fn enclosing_function_for(lang: Lang, text: &str, offset: usize) -> Option<FunctionSpan> {
    if offset > text.len() {
        return None;
    }
    let offset = floor_char_boundary(text, offset);
    let window = window(text, offset);
    let part = &text[window.clone()];
    let local = offset - window.start;
    let found = match Language::from_lang(lang) {
        Some(parsed) => {
            let tree = parsed.parse(part)?;
            outline::enclosing_function(parsed, &tree, part, local)
                .map(|(name, range)| (Some(name), range))
        }
        None => match lang.blocks() {
            Blocks::Indent => indent_function(part, local, lang),
            Blocks::Braces => brace_function(part, local, lang),
            Blocks::Unknown => None,
        },
    }?;
    let (name, range) = found;
    let range = range.start + window.start..range.end + window.start;
    debug_assert!(text.is_char_boundary(range.start) && text.is_char_boundary(range.end));
    Some(FunctionSpan { name, range })
}

/// `WINDOW_BYTES` on each side of `offset`, widened to line boundaries when a line break is
/// near, always on char boundaries.
fn window(text: &str, offset: usize) -> Range<usize> {
    if text.len() <= 2 * WINDOW_BYTES {
        return 0..text.len();
    }
    let mut start = floor_char_boundary(text, offset.saturating_sub(WINDOW_BYTES));
    if start > 0 {
        // From the next line start, unless the line is longer than the window.
        if let Some(nl) = text[start..offset].find('\n') {
            start += nl + 1;
        }
    }
    let mut end = floor_char_boundary(text, (offset + WINDOW_BYTES).min(text.len()));
    if end < text.len() {
        if let Some(nl) = text[offset..end].rfind('\n') {
            end = offset + nl + 1;
        }
    }
    start..end
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

/// The identifier after `keyword` in `line`, past a receiver in parentheses (Go's
/// `func (s *S) Len()`).
fn name_after(line: &str, keyword: &str) -> Option<String> {
    let at = line.find(keyword)? + keyword.len();
    let mut rest = line[at..].trim_start();
    if rest.starts_with('(') {
        rest = rest
            .split_once(')')
            .map_or("", |(_, after)| after)
            .trim_start();
    }
    let name: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// Indentation blocks: the innermost definition line at or above the cursor whose body (the
/// following lines indented deeper) contains the cursor line, with decorators above it.
fn indent_function(
    text: &str,
    offset: usize,
    lang: Lang,
) -> Option<(Option<String>, Range<usize>)> {
    let keywords = lang.function_keywords();
    let starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let lines: Vec<&str> = starts
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let e = starts.get(i + 1).copied().unwrap_or(text.len());
            text[s..e].trim_end_matches(['\n', '\r'])
        })
        .collect();
    let cursor_line = starts.partition_point(|&s| s <= offset).saturating_sub(1);
    let mut min_indent = usize::MAX;
    for l in (0..=cursor_line).rev() {
        let line = lines[l];
        if line.trim().is_empty() {
            continue;
        }
        let ind = indent(line);
        let stripped = line.trim_start();
        let is_def = keywords.iter().any(|k| stripped.starts_with(k));
        // Only definitions less indented than everything seen so far can enclose the cursor,
        // so bodies are scanned once per indentation level at most.
        if is_def && (l == cursor_line || ind < min_indent) {
            let mut end_line = l;
            for (k, next) in lines.iter().enumerate().skip(l + 1) {
                if next.trim().is_empty() {
                    continue;
                }
                if indent(next) <= ind {
                    break;
                }
                end_line = k;
            }
            if end_line < cursor_line && l != cursor_line {
                min_indent = min_indent.min(ind);
                continue;
            }
            let mut start_line = l;
            while start_line > 0 && lines[start_line - 1].trim_start().starts_with('@') {
                start_line -= 1;
            }
            let end = starts.get(end_line + 1).copied().unwrap_or(text.len());
            let name = keywords
                .iter()
                .find_map(|k| name_after(line, k.trim_start()));
            return Some((name, starts[start_line]..end));
        }
        min_indent = min_indent.min(ind);
        if min_indent == 0 && l != cursor_line {
            break;
        }
    }
    None
}

/// Brace blocks: walks back from the offset over the `{` that enclose it; the first whose
/// header (the text since the previous `;`, `{` or `}`) looks like a function wins. Each
/// header is read once (headers do not overlap), so the walk is linear in the text.
fn brace_function(text: &str, offset: usize, lang: Lang) -> Option<(Option<String>, Range<usize>)> {
    let keywords = lang.function_keywords();
    let c_style = keywords.is_empty() || lang != Lang::Rust;
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = offset;
    while i > 0 {
        i -= 1;
        match bytes[i] {
            b'}' => depth += 1,
            b'{' if depth > 0 => depth -= 1,
            b'{' => {
                let header_start = bytes[..i]
                    .iter()
                    .rposition(|b| matches!(b, b';' | b'}' | b'{'))
                    .map_or(0, |p| p + 1);
                let header = &text[header_start..i];
                let c_name = if c_style {
                    c_function_name(header)
                } else {
                    None
                };
                let keyword_name = keywords
                    .iter()
                    .find_map(|k| header.contains(k).then(|| name_after(header, k)));
                if c_name.is_some() || keyword_name.is_some() {
                    let end = matching_brace(bytes, i);
                    // Skip preprocessor lines, comments and blank lines that lead the header.
                    let mut start = header_start;
                    for line in header.split_inclusive('\n') {
                        let t = line.trim();
                        if t.is_empty() || t.starts_with('#') || t.starts_with("//") {
                            start += line.len();
                        } else {
                            start += line.len() - line.trim_start().len();
                            break;
                        }
                    }
                    let name = c_name.or(keyword_name.flatten());
                    return Some((name, start.min(i)..end));
                }
                // Continue outward from the header's start: nothing in it can be a brace.
                i = header_start;
            }
            _ => {}
        }
    }
    None
}

/// `name(…)` ending a header, when `name` is not a control-flow keyword. Looks only inside
/// the header.
fn c_function_name(header: &str) -> Option<String> {
    let h = header.trim_end();
    let h = h.strip_suffix("const").map(str::trim_end).unwrap_or(h);
    if !h.ends_with(')') {
        return None;
    }
    let mut depth = 0usize;
    let mut open = None;
    for (i, b) in h.bytes().enumerate().rev() {
        match b {
            b')' => depth += 1,
            b'(' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    open = Some(i);
                    break;
                }
            }
            _ => {}
        }
    }
    let before = h[..open?].trim_end();
    let start = before
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_alphanumeric() || *c == '_')
        .last()
        .map_or(before.len(), |(i, _)| i);
    let name = &before[start..];
    const NOT_FUNCTIONS: [&str; 12] = [
        "if",
        "for",
        "while",
        "switch",
        "catch",
        "return",
        "sizeof",
        "with",
        "foreach",
        "using",
        "lock",
        "synchronized",
    ];
    (!name.is_empty()
        && !NOT_FUNCTIONS.contains(&name)
        && !name.starts_with(|c: char| c.is_ascii_digit()))
    .then(|| name.to_string())
}

/// The end of the block opened at `open` (after its `}`), or the end of the text.
fn matching_brace(bytes: &[u8], open: usize) -> usize {
    let mut depth = 0usize;
    for (k, b) in bytes[open..].iter().enumerate() {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return open + k + 1;
                }
            }
            _ => {}
        }
    }
    bytes.len()
}
