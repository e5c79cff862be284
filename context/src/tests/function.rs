//! The enclosing-function finder by language: the textual fallbacks for languages without a
//! grammar, and its bounds (linear on pathological braces, a window on huge texts and lines).

use crate::lang::Language;
use crate::{enclosing_function_for, WINDOW_BYTES};

/// `$0` marks the offset; the name and the function's text, trimmed at the end.
fn find(lang: Language, fixture: &str) -> Option<(Option<String>, String)> {
    let offset = fixture.find("$0").unwrap();
    let text = fixture.replacen("$0", "", 1);
    enclosing_function_for(lang, &text, offset)
        .map(|f| (f.name, text[f.range].trim_end().to_string()))
}

#[test]
fn brace_languages_without_a_grammar() {
    let c = "#include <x.h>\n\n// adds\nint add(int a, int b) {\n    if (a) { return $0b; }\n    return a;\n}\nint z;\n";
    let (name, body) = find(Language::C, c).unwrap();
    assert_eq!(name.as_deref(), Some("add"));
    assert_eq!(
        body,
        "int add(int a, int b) {\n    if (a) { return b; }\n    return a;\n}"
    );
    let js = "const x = 1;\nfunction greet(who) {\n  return `hi ${who}$0`;\n}\n";
    assert_eq!(
        find(Language::JavaScript, js).unwrap().0.as_deref(),
        Some("greet")
    );
    let go = "package m\n\nfunc (s *S) Len() int {\n\treturn len(s.$0xs)\n}\n";
    assert_eq!(find(Language::Go, go).unwrap().0.as_deref(), Some("Len"));
    let java = "class A {\n  void run() const {\n    while (true) { $0 }\n  }\n}\n";
    assert_eq!(
        find(Language::Java, java).unwrap().0.as_deref(),
        Some("run")
    );
    // Control flow is not a function; a struct body is not one either.
    assert_eq!(find(Language::C, "if (x) {\n  $0\n}\n"), None);
    assert_eq!(find(Language::C, "struct S {$0 int a; };"), None);
    // Unbalanced: the function runs to the end of the text.
    let (_, body) = find(Language::C, "void f() {\n  g($0);\n").unwrap();
    assert_eq!(body, "void f() {\n  g();");
}

#[test]
fn grammar_languages_use_tree_sitter() {
    let py = "import os\n\n@cache\ndef fib(n):\n    if n < 2:\n        return $0n\n    return fib(n - 1)\n\nx = 1\n";
    let (name, body) = find(Language::Python, py).unwrap();
    assert_eq!(name.as_deref(), Some("fib"));
    assert_eq!(
        body,
        "@cache\ndef fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1)"
    );
    assert_eq!(
        find(Language::Python, "x = 1$0\ndef f():\n    pass\n"),
        None
    );
    let rs = "use x;\n\nfn add(a: u32) -> u32 {\n    if a > 1 { a$0 } else { 0 }\n}\n";
    assert_eq!(find(Language::Rust, rs).unwrap().0.as_deref(), Some("add"));
    assert_eq!(find(Language::Rust, "struct S {$0 a: u32 }"), None);
}

#[test]
fn pathological_braces_are_linear() {
    // 40 KB of `){` took seconds (every brace re-read the whole text before it); 4 MB must
    // now come back at once, with no function found.
    for size in [40 << 10, 4 << 20] {
        let text = "){".repeat(size / 2);
        assert_eq!(enclosing_function_for(Language::C, &text, text.len()), None);
        assert_eq!(
            enclosing_function_for(Language::C, &text, text.len() / 2),
            None
        );
    }
    let deep = format!("void f() {}{}", "{".repeat(1 << 20), "}".repeat(1 << 20));
    let found = enclosing_function_for(Language::C, &deep, deep.len() / 2);
    assert!(found.is_none_or(|f| f.range.end <= deep.len()));
}

#[test]
fn huge_texts_and_long_lines_are_windowed() {
    // 20 MB of Python: the function around the middle, found from a window.
    let mut text = String::new();
    let mut i = 0;
    while text.len() < 20 << 20 {
        text.push_str(&format!("def f{i}(x):\n    return x + {i}\n\n"));
        i += 1;
    }
    let mid = text.len() / 2;
    let span = enclosing_function_for(
        Language::Python,
        &text,
        mid + text[mid..].find("return").unwrap(),
    )
    .unwrap();
    assert!(span.name.as_deref().is_some_and(|n| n.starts_with('f')));
    assert!(span.range.len() < 64);
    // A line of a megabyte of multi-byte characters, the offset anywhere in it.
    let line = format!("fn f() {{ let s = \"{}\"; }}\n", "é😀".repeat(200_000));
    for lang in [Language::Rust, Language::C, Language::Python] {
        for offset in [
            0,
            12,
            line.len() / 2,
            line.len() / 2 + 1,
            line.len() - 3,
            line.len(),
        ] {
            if let Some(f) = enclosing_function_for(lang, &line, offset) {
                assert!(line.is_char_boundary(f.range.start) && line.is_char_boundary(f.range.end));
                assert!(f.range.end <= line.len());
                assert!(f.range.len() <= 2 * WINDOW_BYTES + 8);
            }
        }
    }
    assert_eq!(
        enclosing_function_for(Language::Rust, "fn f() {}", 10_000),
        None
    );
}
