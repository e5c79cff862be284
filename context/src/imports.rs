//! Import statements as data: runs `grammars/<lang>/imports.scm` over a syntax tree and turns
//! each match into a [`RawImport`] — module paths and the names they bring, not yet resolved to
//! files (that is `resolve`'s job) — and lists the identifiers a file uses outside its imports.
//!
//! Works on trees with syntax errors (tree-sitter recovers, and whatever import nodes survive are
//! read). Does not touch the file system.

use std::collections::HashSet;
use std::ops::Range;

use tree_sitter::{Node, QueryCursor, StreamingIterator, Tree};

use crate::language::{Language, QueryKind};

/// Deepest `use` tree nesting and most leaves per `use` declaration that are read; anything
/// beyond is ignored (pathological input must not blow the stack or the heap).
const MAX_USE_DEPTH: usize = 32;
const MAX_USE_LEAVES: usize = 1024;

/// A name an import brings into scope: `name` in the imported module, `alias` locally.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Binding {
    pub(crate) name: String,
    pub(crate) alias: Option<String>,
}

impl Binding {
    pub(crate) fn new(name: &str, alias: Option<&str>) -> Binding {
        Binding {
            name: name.to_string(),
            alias: alias.filter(|a| *a != name).map(str::to_string),
        }
    }

    /// The name under which the importing file sees it.
    pub(crate) fn local(&self) -> &str {
        self.alias.as_deref().unwrap_or(&self.name)
    }
}

/// One import, as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RawImport {
    /// `import a.b` (binds `a`) or `import a.b as c` (binds `c`).
    PyModule {
        module: Vec<String>,
        alias: Option<String>,
    },
    /// `from <level dots><module> import names` or `... import *`.
    PyFrom {
        level: usize,
        module: Vec<String>,
        names: Vec<Binding>,
        glob: bool,
    },
    /// `mod name;`, with its `#[path = ".."]` and the inline modules around it.
    RustMod {
        name: String,
        path_attr: Option<String>,
        inline: Vec<String>,
    },
    /// One leaf of a `use` tree: `a::b::C [as D]` or `a::b::*`, inside inline modules `inline`.
    RustUse {
        path: Vec<String>,
        alias: Option<String>,
        glob: bool,
        inline: Vec<String>,
    },
}

/// The imports of a file and the byte ranges of the statements they come from.
#[derive(Debug, Default)]
pub(crate) struct Imports {
    pub(crate) imports: Vec<RawImport>,
    pub(crate) statements: Vec<Range<usize>>,
}

/// Reads every import of `tree` (the parse of `src`). When the tree has syntax errors, import
/// lines that error recovery swallowed are parsed again on their own.
pub(crate) fn extract(lang: Language, tree: &Tree, src: &str) -> Imports {
    let mut out = Imports::default();
    run_query(lang, tree, src, &mut out);
    if tree.root_node().has_error() {
        recover(lang, src, &mut out);
    }
    out
}

/// Lines that may start an import, parsed alone: a syntax error elsewhere (an unclosed
/// bracket above) must not hide the imports below it.
fn recover(lang: Language, src: &str, out: &mut Imports) {
    const MAX_CHUNK_LINES: usize = 64;
    let lines: Vec<(usize, &str)> = src
        .split_inclusive('\n')
        .scan(0, |offset, line| {
            let start = *offset;
            *offset += line.len();
            Some((start, line))
        })
        .collect();
    let mut i = 0;
    while i < lines.len() {
        let (line_start, line) = lines[i];
        let trimmed = line.trim_start();
        let start = line_start + (line.len() - trimmed.len());
        i += 1;
        let opens = match lang {
            Language::Python => trimmed.starts_with("import ") || trimmed.starts_with("from "),
            Language::Rust => {
                let item = trimmed.strip_prefix("pub").map_or(trimmed, |rest| {
                    let rest = rest.trim_start();
                    match rest.strip_prefix('(') {
                        Some(inner) => inner.split_once(')').map_or(rest, |(_, after)| after),
                        None => rest,
                    }
                });
                let item = item.trim_start();
                item.starts_with("use ") || item.starts_with("mod ")
            }
        };
        if !opens
            || out
                .statements
                .iter()
                .any(|r| r.start <= start && start < r.end)
        {
            continue;
        }
        // The statement's extent: Python until brackets balance and no `\` continues the line;
        // Rust until the first `;`.
        let mut end;
        let mut depth: i64 = 0;
        let mut j = i - 1;
        loop {
            let (_, text) = lines[j];
            let text = if j == i - 1 { trimmed } else { text };
            let done = match lang {
                Language::Python => {
                    depth += text.matches('(').count() as i64 - text.matches(')').count() as i64;
                    depth <= 0 && !text.trim_end().ends_with('\\')
                }
                Language::Rust => text.contains(';'),
            };
            end = lines[j].0 + lines[j].1.len();
            if done || j + 1 >= lines.len() || j + 1 - (i - 1) >= MAX_CHUNK_LINES {
                if !done && lang == Language::Rust {
                    end = start; // no `;`: not a statement
                }
                break;
            }
            j += 1;
        }
        let Some(piece) = src.get(start..end).filter(|p| !p.is_empty()) else {
            continue;
        };
        let Some(tree) = lang.parse(piece) else {
            continue;
        };
        let mut found = Imports::default();
        run_query(lang, &tree, piece, &mut found);
        out.imports.extend(found.imports);
        out.statements.extend(
            found
                .statements
                .into_iter()
                .map(|r| r.start + start..r.end + start),
        );
        i = i.max(j + 1);
    }
}

/// Runs the query on each statement that may be an import. The tree is searched only through
/// statement containers (see [`Language::import_search`]), never through expressions, which
/// are most of a tree; the query decides what the candidates import.
fn run_query(lang: Language, tree: &Tree, src: &str, out: &mut Imports) {
    let Some(query) = lang.query(QueryKind::Imports) else {
        return;
    };
    let (containers, candidates) = lang.import_search();
    let names = query.capture_names();
    let mut cursor = QueryCursor::new();
    let mut walk = tree.walk();
    let mut stack = vec![tree.root_node()];
    while let Some(node) = stack.pop() {
        let kind = node.kind();
        let container = containers.contains(&kind);
        // An inline `mod m { .. }` is searched as a container, not matched as a whole.
        if candidates.contains(&kind) && !(container && node.child_by_field_name("body").is_some())
        {
            let mut matches = cursor.matches(query, node, src.as_bytes());
            while let Some(m) = matches.next() {
                let capture = |wanted: &str| {
                    m.captures
                        .iter()
                        .find(|c| names[c.index as usize] == wanted)
                        .map(|c| c.node)
                };
                match lang {
                    Language::Python => python_match(&capture, src, out),
                    Language::Rust => rust_match(&capture, src, out),
                }
            }
        }
        if container {
            let start = stack.len();
            stack.extend(node.named_children(&mut walk));
            stack[start..].reverse();
        }
    }
}

fn text<'s>(node: Node, src: &'s str) -> &'s str {
    src.get(node.byte_range()).unwrap_or("")
}

/// The statement a capture belongs to: the nearest ancestor (or itself) of one of `kinds`.
fn statement<'t>(node: Node<'t>, kinds: &[&str]) -> Node<'t> {
    let mut current = node;
    loop {
        if kinds.contains(&current.kind()) {
            return current;
        }
        match current.parent() {
            Some(parent) => current = parent,
            None => return node,
        }
    }
}

/// `a.b.c` → `["a", "b", "c"]`, from the identifiers of a `dotted_name`.
fn dotted(node: Node, src: &str) -> Vec<String> {
    let mut cursor = node.walk();
    node.named_children(&mut cursor)
        .filter(|child| child.kind() == "identifier")
        .map(|child| text(child, src).to_string())
        .collect()
}

fn python_match<'t>(capture: &dyn Fn(&str) -> Option<Node<'t>>, src: &str, out: &mut Imports) {
    const STATEMENTS: &[&str] = &["import_statement", "import_from_statement"];
    if let Some(module) = capture("module") {
        let module_path = dotted(module, src);
        if module_path.is_empty() {
            return;
        }
        let alias = capture("alias").map(|a| text(a, src).to_string());
        out.statements
            .push(statement(module, STATEMENTS).byte_range());
        out.imports.push(RawImport::PyModule {
            module: module_path,
            alias,
        });
    } else if let Some(from) = capture("from") {
        let stmt = statement(from, STATEMENTS);
        let (level, module) = if from.kind() == "relative_import" {
            let mut level = 0;
            let mut module = Vec::new();
            let mut cursor = from.walk();
            for child in from.named_children(&mut cursor) {
                match child.kind() {
                    "import_prefix" => level += text(child, src).matches('.').count(),
                    "dotted_name" => module = dotted(child, src),
                    _ => {}
                }
            }
            (level, module)
        } else {
            (0, dotted(from, src))
        };
        let mut names = Vec::new();
        let mut cursor = stmt.walk();
        for name in stmt.children_by_field_name("name", &mut cursor) {
            let binding = match name.kind() {
                "dotted_name" => dotted(name, src).first().map(|n| Binding::new(n, None)),
                "aliased_import" => {
                    let original = name.child_by_field_name("name").map(|n| dotted(n, src));
                    let alias = name.child_by_field_name("alias").map(|a| text(a, src));
                    original.and_then(|o| o.first().map(|n| Binding::new(n, alias)))
                }
                _ => None,
            };
            names.extend(binding);
        }
        let mut cursor = stmt.walk();
        let glob = stmt
            .named_children(&mut cursor)
            .any(|c| c.kind() == "wildcard_import");
        if level == 0 && module.is_empty() {
            return;
        }
        out.statements.push(stmt.byte_range());
        out.imports.push(RawImport::PyFrom {
            level,
            module,
            names,
            glob,
        });
    }
}

/// The names of the inline `mod x { .. }` blocks around `node`, outermost first.
fn inline_modules(node: Node, src: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut current = node.parent();
    while let Some(parent) = current {
        if parent.kind() == "mod_item" && parent.child_by_field_name("body").is_some() {
            if let Some(name) = parent.child_by_field_name("name") {
                names.push(ident(text(name, src)));
            }
        }
        current = parent.parent();
    }
    names.reverse();
    names
}

/// A Rust identifier without its raw prefix (`r#type` → `type`).
fn ident(s: &str) -> String {
    s.strip_prefix("r#").unwrap_or(s).to_string()
}

/// The value of a `#[path = "..."]` attribute among the attributes right before `item`.
fn path_attribute(item: Node, src: &str) -> Option<String> {
    let mut sibling = item.prev_named_sibling();
    while let Some(node) = sibling {
        match node.kind() {
            "attribute_item" => {
                let attr = node.named_child(0)?;
                let is_path = attr.named_child(0).is_some_and(|n| text(n, src) == "path");
                if let (true, Some(value)) = (is_path, attr.child_by_field_name("value")) {
                    if value.kind() == "string_literal" {
                        let mut cursor = value.walk();
                        let content: String = value
                            .named_children(&mut cursor)
                            .map(|c| text(c, src))
                            .collect();
                        return Some(content);
                    }
                    return None;
                }
            }
            "line_comment" | "block_comment" => {}
            _ => return None,
        }
        sibling = node.prev_named_sibling();
    }
    None
}

fn rust_match<'t>(capture: &dyn Fn(&str) -> Option<Node<'t>>, src: &str, out: &mut Imports) {
    if let (Some(item), Some(name)) = (capture("mod"), capture("mod.name")) {
        out.statements.push(item.byte_range());
        out.imports.push(RawImport::RustMod {
            name: ident(text(name, src)),
            path_attr: path_attribute(item, src),
            inline: inline_modules(item, src),
        });
    } else if let Some(tree) = capture("use") {
        let Some(decl) = tree.parent() else { return };
        let inline = inline_modules(decl, src);
        let mut leaves = Vec::new();
        flatten_use(tree, src, &[], 0, &mut leaves);
        out.statements.push(decl.byte_range());
        for (mut path, alias, glob) in leaves {
            // `a::b::{self}` imports the module `a::b` itself.
            if !glob && path.len() > 1 && path.last().is_some_and(|s| s == "self") {
                path.pop();
            }
            if path.is_empty() {
                continue;
            }
            out.imports.push(RawImport::RustUse {
                path,
                alias,
                glob,
                inline: inline.clone(),
            });
        }
    }
}

/// The segments of a simple path (`a`, `crate`, `a::b::c`); `None` for anything else
/// (generic arguments, bracketed types, macros' metavariables).
fn rust_path(node: Node, src: &str, depth: usize) -> Option<Vec<String>> {
    if depth > MAX_USE_DEPTH {
        return None;
    }
    match node.kind() {
        "identifier" | "crate" | "self" | "super" => Some(vec![ident(text(node, src))]),
        "scoped_identifier" => {
            let mut segments = match node.child_by_field_name("path") {
                Some(path) => rust_path(path, src, depth + 1)?,
                None => Vec::new(),
            };
            segments.push(ident(text(node.child_by_field_name("name")?, src)));
            Some(segments)
        }
        _ => None,
    }
}

type UseLeaf = (Vec<String>, Option<String>, bool);

/// Flattens a use tree into `(path, alias, glob)` leaves, prefixing `prefix`.
fn flatten_use(node: Node, src: &str, prefix: &[String], depth: usize, out: &mut Vec<UseLeaf>) {
    if depth > MAX_USE_DEPTH || out.len() >= MAX_USE_LEAVES {
        return;
    }
    let join = |rest: Vec<String>| prefix.iter().cloned().chain(rest).collect::<Vec<_>>();
    match node.kind() {
        "identifier" | "crate" | "self" | "super" | "scoped_identifier" => {
            if let Some(path) = rust_path(node, src, depth) {
                out.push((join(path), None, false));
            }
        }
        "use_as_clause" => {
            let path = node
                .child_by_field_name("path")
                .and_then(|p| rust_path(p, src, depth));
            let alias = node
                .child_by_field_name("alias")
                .map(|a| ident(text(a, src)));
            if let Some(path) = path {
                out.push((join(path), alias.filter(|a| a != "_"), false));
            }
        }
        "use_wildcard" => {
            let mut cursor = node.walk();
            let path = match node.named_children(&mut cursor).next() {
                Some(path) => rust_path(path, src, depth),
                None => Some(Vec::new()),
            };
            if let Some(path) = path {
                out.push((join(path), None, true));
            }
        }
        "use_list" => {
            let mut cursor = node.walk();
            for child in node.named_children(&mut cursor) {
                flatten_use(child, src, prefix, depth + 1, out);
            }
        }
        "scoped_use_list" => {
            let path = match node.child_by_field_name("path") {
                Some(path) => rust_path(path, src, depth),
                None => Some(Vec::new()),
            };
            if let (Some(path), Some(list)) = (path, node.child_by_field_name("list")) {
                flatten_use(list, src, &join(path), depth + 1, out);
            }
        }
        _ => {}
    }
}

/// The identifier-like words of `text` outside the byte ranges `skip` (the import
/// statements).
pub(crate) fn words_outside<'t>(text: &'t str, skip: &[Range<usize>]) -> HashSet<&'t str> {
    let mut skip: Vec<&Range<usize>> = skip.iter().collect();
    skip.sort_by_key(|r| r.start);
    let mut out = HashSet::new();
    let mut from = 0;
    for range in skip {
        if range.start > from {
            out.extend(words(text.get(from..range.start).unwrap_or("")));
        }
        from = from.max(range.end);
    }
    out.extend(words(text.get(from..).unwrap_or("")));
    out
}

/// The identifier-like words of `text` (for snippets that need not parse).
pub(crate) fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty() && !w.starts_with(|c: char| c.is_ascii_digit()))
}
