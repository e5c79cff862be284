//! Finding the function around a cursor, for "Explain this function": a thin adapter over
//! `ghostline_context::enclosing_function_for`, which owns the finder (tree-sitter where a
//! grammar exists, textual fallbacks otherwise; bounded and linear). This module only maps the
//! document's language to `ghostline-lang`'s; it does not build prompts.

use ghostline_lang::Language;

use crate::shaping::Lang;

/// A function found in a document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Function {
    /// Its name, when one could be read.
    pub name: Option<String>,
    /// Its byte range in the text.
    pub range: std::ops::Range<usize>,
}

/// The function around byte `offset` of `text` (path is workspace-relative or absolute; its
/// extension names the language when it agrees with `lang`, the shaping family).
pub fn enclosing_function(path: &str, text: &str, offset: usize, lang: Lang) -> Option<Function> {
    let by_path = Language::from_path(path);
    let language = match lang {
        Lang::Python => Language::Python,
        Lang::Rust => Language::Rust,
        Lang::CLike => by_path
            .filter(|l| !matches!(l, Language::Python | Language::Rust))
            .unwrap_or(Language::C),
        Lang::Other => by_path?,
    };
    ghostline_context::enclosing_function_for(language, text, offset).map(|f| Function {
        name: f.name,
        range: f.range,
    })
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
    fn python_rust_and_c() {
        let src = "import os\n\n@cache\ndef fib(n):\n    return $0n\n\nx = 1\n";
        let (name, body) = find(Lang::Python, src).unwrap();
        assert_eq!(name.as_deref(), Some("fib"));
        assert_eq!(body, "@cache\ndef fib(n):\n    return n");
        let src = "use x;\n\nfn add(a: u32) -> u32 {\n    if a > 1 { a$0 } else { 0 }\n}\n";
        assert_eq!(find(Lang::Rust, src).unwrap().0.as_deref(), Some("add"));
        let c = "#include <x.h>\nint main(void) {\n    for (;;) { $0 }\n}\n";
        let (name, body) = find(Lang::CLike, c).unwrap();
        assert_eq!(name.as_deref(), Some("main"));
        assert!(body.starts_with("int main(void) {"), "{body}");
        assert_eq!(find(Lang::Other, "fn f() {$0}"), None);
    }
}
