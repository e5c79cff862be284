//! Finding the function around a cursor, for "Explain this function".
//!
//! Python and Rust use the repository-context crate's tree-sitter parser
//! ([`ghostline_context`]) when it knows the file; otherwise (and for other languages) a textual
//! fallback finds the nearest enclosing definition by indentation (Python) or brace matching
//! (brace languages). This module does not build prompts.

use crate::shaping::Lang;

/// A function found in a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    /// Its name, when one could be read.
    pub name: Option<String>,
    /// Its byte range in the text.
    pub range: std::ops::Range<usize>,
}

/// The function around byte `offset` of `text` (path is workspace-relative or absolute).
pub fn enclosing_function(path: &str, text: &str, offset: usize, lang: Lang) -> Option<Function> {
    let offset = floor_char_boundary(text, offset.min(text.len()));
    // Tree-sitter for the languages the context crate parses (the path picks the grammar; a
    // document without a telling extension gets one from its language id).
    let parse_as = match lang {
        Lang::Python => Some("x.py"),
        Lang::Rust => Some("x.rs"),
        _ => None,
    };
    let parse_path = std::path::Path::new(path);
    let parse_path = if ghostline_context::language_for_path(parse_path).is_some() {
        Some(parse_path)
    } else {
        parse_as.map(std::path::Path::new)
    };
    if let Some(p) = parse_path {
        if let Some(f) = ghostline_context::enclosing_function(p, text, offset) {
            return Some(Function {
                name: Some(f.name),
                range: f.range,
            });
        }
        if matches!(lang, Lang::Python | Lang::Rust) {
            return None;
        }
    }
    match lang {
        Lang::Python => python_function(text, offset),
        Lang::Rust | Lang::CLike => brace_function(text, offset, lang),
        Lang::Other => None,
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while i > 0 && !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Byte offsets of line starts.
fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start().len()
}

fn name_after(line: &str, keyword: &str) -> Option<String> {
    let at = line.find(keyword)? + keyword.len();
    let name: String = line[at..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

fn python_function(text: &str, offset: usize) -> Option<Function> {
    let starts = line_starts(text);
    let line_of = |off: usize| starts.partition_point(|&s| s <= off) - 1;
    let lines: Vec<&str> = starts
        .iter()
        .enumerate()
        .map(|(i, &s)| {
            let e = starts.get(i + 1).copied().unwrap_or(text.len());
            text[s..e].trim_end_matches(['\n', '\r'])
        })
        .collect();
    let cursor_line = line_of(offset);
    // The innermost `def` at or above the cursor whose body contains the cursor line.
    let mut min_indent = usize::MAX;
    for l in (0..=cursor_line).rev() {
        let line = lines[l];
        if line.trim().is_empty() {
            continue;
        }
        let ind = indent(line);
        let stripped = line.trim_start();
        let is_def = stripped.starts_with("def ") || stripped.starts_with("async def ");
        if is_def && (l == cursor_line || ind < min_indent) {
            // The body: following lines more indented than the def (or blank).
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
                // The cursor is below the function's end.
                min_indent = min_indent.min(ind);
                continue;
            }
            // Include decorators directly above.
            let mut start_line = l;
            while start_line > 0 && lines[start_line - 1].trim_start().starts_with('@') {
                start_line -= 1;
            }
            let end = starts.get(end_line + 1).copied().unwrap_or(text.len());
            return Some(Function {
                name: name_after(line, "def "),
                range: starts[start_line]..end,
            });
        }
        min_indent = min_indent.min(ind);
        if min_indent == 0 && l != cursor_line {
            break;
        }
    }
    None
}

fn brace_function(text: &str, offset: usize, lang: Lang) -> Option<Function> {
    let keywords: &[&str] = match lang {
        Lang::Rust => &["fn "],
        _ => &["function ", "func ", "def ", "fun "],
    };
    // Walk back over `{` that enclose the offset; the first whose header looks like a function
    // wins (the header is the text between the previous `;`/`}`/`{` and the brace).
    let bytes = text.as_bytes();
    let mut depth = 0i32;
    let mut i = offset;
    while i > 0 {
        i -= 1;
        match bytes[i] {
            b'}' => depth += 1,
            b'{' if depth > 0 => depth -= 1,
            b'{' => {
                let header_start = text[..i].rfind([';', '}', '{']).map(|p| p + 1).unwrap_or(0);
                let header = &text[header_start..i];
                let c_name = if lang == Lang::CLike {
                    c_function_name(&text[..i])
                } else {
                    None
                };
                let is_fn = keywords.iter().any(|k| header.contains(k)) || c_name.is_some();
                if is_fn {
                    let end = matching_brace(text, i)?;
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
                    let name =
                        c_name.or_else(|| keywords.iter().find_map(|k| name_after(header, k)));
                    return Some(Function {
                        name,
                        range: start..end,
                    });
                }
            }
            _ => {}
        }
    }
    None
}

/// `name(…)` right before a brace, when `name` is not a control-flow keyword.
fn c_function_name(before_brace: &str) -> Option<String> {
    let h = before_brace.trim_end();
    let h = h.strip_suffix("const").map(str::trim_end).unwrap_or(h);
    if !h.ends_with(')') {
        return None;
    }
    let mut depth = 0i32;
    let mut open = None;
    for (i, b) in h.bytes().enumerate().rev() {
        match b {
            b')' => depth += 1,
            b'(' => {
                depth -= 1;
                if depth == 0 {
                    open = Some(i);
                    break;
                }
            }
            _ => {}
        }
    }
    let before = h[..open?].trim_end();
    let name: String = before
        .chars()
        .rev()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let keywords = [
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
        && !keywords.contains(&name.as_str())
        && !name.chars().next().is_some_and(|c| c.is_ascii_digit()))
    .then_some(name)
}

fn matching_brace(text: &str, open: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (k, b) in text.as_bytes()[open..].iter().enumerate() {
        match b {
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(open + k + 1);
                }
            }
            _ => {}
        }
    }
    Some(text.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn find(lang: Lang, fixture: &str) -> Option<(Option<String>, String)> {
        let offset = fixture.find("$0").unwrap();
        let text = fixture.replace("$0", "");
        enclosing_function("f", &text, offset, lang)
            .map(|f| (f.name, text[f.range].trim_end().to_string()))
    }

    #[test]
    fn python() {
        let src = "import os\n\n@cache\ndef fib(n):\n    if n < 2:\n        return $0n\n    return fib(n - 1)\n\nx = 1\n";
        let (name, body) = find(Lang::Python, src).unwrap();
        assert_eq!(name.as_deref(), Some("fib"));
        assert_eq!(
            body,
            "@cache\ndef fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1)"
        );
        assert_eq!(find(Lang::Python, "x = 1$0\ndef f():\n    pass\n"), None);
        assert_eq!(find(Lang::Python, "def f():\n    pass\nx = $01\n"), None);
        let nested =
            "class A:\n    def m(self):\n        $0return 1\n    def n(self):\n        pass\n";
        assert_eq!(
            find(Lang::Python, nested).unwrap().1,
            "def m(self):\n        return 1"
        );
        let on_def = "def $0g():\n    return 2\n";
        assert_eq!(find(Lang::Python, on_def).unwrap().0.as_deref(), Some("g"));
    }

    #[test]
    fn rust_and_c() {
        let src = "use x;\n\nfn add(a: u32) -> u32 {\n    if a > 1 { a$0 } else { 0 }\n}\n";
        let (name, body) = find(Lang::Rust, src).unwrap();
        assert_eq!(name.as_deref(), Some("add"));
        assert!(body.starts_with("fn add") && body.ends_with('}'));
        let c = "#include <x.h>\nint main(void) {\n    for (;;) { $0 }\n}\n";
        let (name, body) = find(Lang::CLike, c).unwrap();
        assert_eq!(name.as_deref(), Some("main"));
        assert!(body.starts_with("int main(void) {"), "{body}");
        assert_eq!(find(Lang::Rust, "struct S {$0 a: u32 }"), None);
    }
}
