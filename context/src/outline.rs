//! Outlines and definitions: runs `grammars/<lang>/outline.scm` over a syntax tree and renders
//! what a caller needs to use a file — signatures, type definitions, constants, docstrings and
//! doc comments — with function bodies replaced by `...` (Python) or `{ ... }` (Rust). Also
//! lists the top-level definitions with their byte ranges, and finds the function around an
//! offset.
//!
//! The query says which nodes play which role; this module only walks the tree. It never
//! rewrites kept text (indentation and comments inside kept items are the file's own).

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::ops::Range;

use tree_sitter::{Node, QueryCursor, StreamingIterator, Tree};

use crate::language::{Language, QueryKind};

/// Items kept whole are cut after this many bytes.
const MAX_ITEM_BYTES: usize = 2048;

/// Containers nested deeper than this are not outlined (pathological input).
const MAX_DEPTH: usize = 32;

/// A top-level definition of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Def {
    /// The names it introduces (for an `impl`, the implementing type).
    pub(crate) names: Vec<String>,
    /// Its bytes in the file, with the doc comments, attributes and decorators that lead it.
    pub(crate) range: Range<usize>,
    /// Its outline: a range of [`Details::outline`].
    pub(crate) outline: Range<usize>,
}

/// The outline of a file and its top-level definitions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Details {
    pub(crate) outline: String,
    pub(crate) defs: Vec<Def>,
}

impl Details {
    /// The outline of one definition.
    pub(crate) fn def_outline(&self, def: &Def) -> &str {
        self.outline.get(def.outline.clone()).unwrap_or("")
    }

    /// Every name the file defines at the top level.
    pub(crate) fn defines(&self, name: &str) -> bool {
        self.defs.iter().any(|d| d.names.iter().any(|n| n == name))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    // Lower is stronger when a node gets several roles.
    Exclude,
    Item,
    Function,
    Container,
    Decorated,
    Leading,
    Doc,
}

/// Node roles from the outline query, keyed by node id.
struct Roles<'t> {
    roles: HashMap<usize, Role>,
    bodies: HashMap<usize, Node<'t>>,
    names: HashMap<usize, String>,
}

fn text<'s>(node: Node, src: &'s str) -> &'s str {
    src.get(node.byte_range()).unwrap_or("")
}

impl<'t> Roles<'t> {
    fn new() -> Roles<'t> {
        Roles {
            roles: HashMap::new(),
            bodies: HashMap::new(),
            names: HashMap::new(),
        }
    }

    /// Adds the roles from the outline query's matches that start at `node` or, with
    /// `max_start_depth` `None`, anywhere below it.
    fn add(
        &mut self,
        lang: Language,
        node: Node<'t>,
        src: &str,
        max_start_depth: Option<u32>,
        cursor: &mut QueryCursor,
    ) {
        let Some(query) = lang.query(QueryKind::Outline) else {
            return;
        };
        let capture_names = query.capture_names();
        cursor.set_max_start_depth(max_start_depth);
        let mut matches = cursor.matches(query, node, src.as_bytes());
        while let Some(m) = matches.next() {
            let mut primary = None;
            let mut body = None;
            let mut name = None;
            for capture in m.captures {
                let role = match capture_names[capture.index as usize] {
                    "item" => Role::Item,
                    "function" => Role::Function,
                    "container" => Role::Container,
                    "decorated" => Role::Decorated,
                    "leading" => Role::Leading,
                    "exclude" => Role::Exclude,
                    "doc" => Role::Doc,
                    "function.body" | "container.body" => {
                        body = Some(capture.node);
                        continue;
                    }
                    "name" => {
                        name = Some(capture.node);
                        continue;
                    }
                    _ => continue,
                };
                primary = Some((capture.node, role));
            }
            let Some((node, role)) = primary else {
                continue;
            };
            let slot = self.roles.entry(node.id()).or_insert(role);
            *slot = (*slot).min(role);
            if let Some(body) = body {
                self.bodies.insert(node.id(), body);
            }
            if let Some(name) = name {
                self.names.insert(node.id(), def_name(text(name, src)));
            }
        }
    }
}

/// `Foo<T>` → `Foo`, `crate::a::Foo` → `Foo`, `r#type` → `type`.
fn def_name(name: &str) -> String {
    let base = name.split('<').next().unwrap_or(name);
    let base = base.rsplit("::").next().unwrap_or(base).trim();
    base.strip_prefix("r#").unwrap_or(base).to_string()
}

/// The start of the line that contains `pos`.
fn line_start(src: &str, pos: usize) -> usize {
    src.get(..pos)
        .and_then(|s| s.rfind('\n'))
        .map_or(0, |i| i + 1)
}

/// The indentation of the line that contains `pos`.
fn indent(src: &str, pos: usize) -> &str {
    let start = line_start(src, pos);
    let line = src.get(start..).unwrap_or("");
    let end = line
        .find(|c: char| c != ' ' && c != '\t')
        .unwrap_or(line.len());
    &line[..end]
}

/// Text from `from` to `to` and whether it spans a line break.
fn spans_lines(src: &str, from: usize, to: usize) -> bool {
    src.get(from..to).is_some_and(|s| s.contains('\n'))
}

/// Walks the outline. The query runs rooted at each node the walk visits (patterns starting
/// there only), so function bodies and expressions are never searched.
struct Outliner<'t, 's> {
    lang: Language,
    src: &'s str,
    roles: RefCell<Roles<'t>>,
    queried: RefCell<HashSet<usize>>,
    cursor: RefCell<QueryCursor>,
}

impl<'t> Outliner<'t, '_> {
    fn new<'s>(lang: Language, src: &'s str) -> Outliner<'t, 's> {
        Outliner {
            lang,
            src,
            roles: RefCell::new(Roles::new()),
            queried: RefCell::new(HashSet::new()),
            cursor: RefCell::new(QueryCursor::new()),
        }
    }

    /// Runs the patterns that start at `node`, once.
    fn query(&self, node: Node<'t>) {
        if self.queried.borrow_mut().insert(node.id()) {
            let mut cursor = self.cursor.borrow_mut();
            self.roles
                .borrow_mut()
                .add(self.lang, node, self.src, Some(0), &mut cursor);
        }
    }

    fn role(&self, node: Node<'t>) -> Option<Role> {
        self.query(node);
        self.roles.borrow().roles.get(&node.id()).copied()
    }

    fn body(&self, node: Node<'t>) -> Option<Node<'t>> {
        self.query(node);
        self.roles.borrow().bodies.get(&node.id()).copied()
    }

    /// Outlines the children of `parent`; at the top level, also records definitions.
    fn block(
        &self,
        parent: Node<'t>,
        depth: usize,
        out: &mut String,
        mut defs: Option<&mut Vec<Def>>,
    ) {
        self.query(parent);
        let mut pending: Vec<Node> = Vec::new();
        let mut excluded = false;
        let mut last_multiline = false;
        let mut cursor = parent.walk();
        for child in parent.named_children(&mut cursor) {
            let role = match self.role(child) {
                Some(Role::Leading) => {
                    pending.push(child);
                    continue;
                }
                Some(Role::Exclude) => {
                    excluded = true;
                    continue;
                }
                Some(Role::Doc) | None => {
                    pending.clear();
                    excluded = false;
                    continue;
                }
                Some(role) => role,
            };
            if std::mem::take(&mut excluded) {
                pending.clear();
                continue;
            }
            let start = pending
                .first()
                .map_or(child.start_byte(), |p| p.start_byte());
            let mut item = String::new();
            for lead in pending.drain(..) {
                self.whole(lead, &mut item);
            }
            self.item(child, role, depth, &mut item);
            if item.is_empty() {
                continue;
            }
            let multiline = item.trim_end().contains('\n');
            if depth == 0 && !out.is_empty() && (multiline || last_multiline) {
                out.push('\n');
            }
            last_multiline = multiline;
            let outline = out.len()..out.len() + item.len();
            out.push_str(&item);
            if let Some(defs) = defs.as_deref_mut() {
                let names = self.names(child);
                if !names.is_empty() {
                    defs.push(Def {
                        names,
                        range: start..child.end_byte(),
                        outline,
                    });
                }
            }
        }
    }

    /// The names a top-level node defines.
    fn names(&self, node: Node<'t>) -> Vec<String> {
        if let Some(name) = self.roles.borrow().names.get(&node.id()) {
            return vec![name.clone()];
        }
        if let Some(def) = node.child_by_field_name("definition") {
            return self.names(def);
        }
        // Python assignments: `X = ..`, `X: int = ..`, `A, B = ..`.
        let mut names = Vec::new();
        if node.kind() == "expression_statement" {
            if let Some(left) = node
                .named_child(0)
                .and_then(|a| a.child_by_field_name("left"))
            {
                if left.kind() == "identifier" {
                    names.push(text(left, self.src).to_string());
                } else {
                    let mut cursor = left.walk();
                    for target in left.named_children(&mut cursor) {
                        if target.kind() == "identifier" {
                            names.push(text(target, self.src).to_string());
                        }
                    }
                }
            }
        }
        names
    }

    fn item(&self, node: Node<'t>, role: Role, depth: usize, out: &mut String) {
        match role {
            Role::Item => self.whole(node, out),
            Role::Function => self.function(node, out),
            Role::Container => self.container(node, depth, out),
            Role::Decorated => {
                let Some(def) = node.child_by_field_name("definition") else {
                    return self.whole(node, out);
                };
                let (from, to) = (
                    line_start(self.src, node.start_byte()),
                    line_start(self.src, def.start_byte()),
                );
                out.push_str(self.src.get(from..to).unwrap_or(""));
                match self.role(def) {
                    Some(role @ (Role::Function | Role::Container)) => {
                        self.item(def, role, depth, out)
                    }
                    _ => self.whole(def, out),
                }
            }
            Role::Leading | Role::Doc | Role::Exclude => self.whole(node, out),
        }
    }

    /// A node as written, on its own line(s) with its indentation; cut after
    /// [`MAX_ITEM_BYTES`] at a line end, with a `...` line for the rest (a table of a
    /// thousand constants says no more than its first lines).
    fn whole(&self, node: Node, out: &mut String) {
        let indentation = indent(self.src, node.start_byte());
        out.push_str(indentation);
        // Line comments end with their newline.
        let kept = text(node, self.src).trim_end_matches(['\n', '\r']);
        if kept.len() <= MAX_ITEM_BYTES {
            out.push_str(kept);
        } else {
            let mut cut = MAX_ITEM_BYTES;
            while !kept.is_char_boundary(cut) {
                cut -= 1;
            }
            let head = &kept[..cut];
            out.push_str(head.rfind('\n').map_or(head, |end| &head[..end]));
            out.push('\n');
            out.push_str(indentation);
            out.push_str("    ...");
        }
        out.push('\n');
    }

    /// The text of `node` up to `body`, without trailing whitespace, with its indentation.
    fn header(&self, node: Node, body: Node, out: &mut String) {
        out.push_str(indent(self.src, node.start_byte()));
        let header = self
            .src
            .get(node.start_byte()..body.start_byte())
            .unwrap_or("");
        out.push_str(header.trim_end());
    }

    fn function(&self, node: Node<'t>, out: &mut String) {
        let Some(body) = self.body(node) else {
            return self.whole(node, out);
        };
        self.header(node, body, out);
        match self.lang {
            Language::Rust => out.push_str(" { ... }\n"),
            Language::Python => {
                if !spans_lines(self.src, node.start_byte(), body.start_byte()) {
                    out.push_str(" ...\n");
                    return;
                }
                out.push('\n');
                let mut cursor = body.walk();
                if let Some(first) = body
                    .named_children(&mut cursor)
                    .find(|c| c.kind() != "comment")
                {
                    if self.role(first) == Some(Role::Doc) {
                        self.whole(first, out);
                    }
                }
                out.push_str(indent(self.src, body.start_byte()));
                out.push_str("...\n");
            }
        }
    }

    fn container(&self, node: Node<'t>, depth: usize, out: &mut String) {
        let Some(body) = self.body(node) else {
            return self.whole(node, out);
        };
        self.header(node, body, out);
        match self.lang {
            Language::Rust => {
                out.push_str(" {\n");
                if depth < MAX_DEPTH {
                    self.block(body, depth + 1, out, None);
                }
                out.push_str(indent(self.src, node.start_byte()));
                out.push_str("}\n");
            }
            Language::Python => {
                if !spans_lines(self.src, node.start_byte(), body.start_byte()) {
                    out.push_str(" ...\n");
                    return;
                }
                out.push('\n');
                let before = out.len();
                if depth < MAX_DEPTH {
                    self.block(body, depth + 1, out, None);
                }
                if out.len() == before {
                    out.push_str(indent(self.src, body.start_byte()));
                    out.push_str("...\n");
                }
            }
        }
    }
}

/// The outline and top-level definitions of `tree` (the parse of `src`).
pub(crate) fn details(lang: Language, tree: &Tree, src: &str) -> Details {
    let outliner = Outliner::new(lang, src);
    let mut details = Details::default();
    outliner.block(
        tree.root_node(),
        0,
        &mut details.outline,
        Some(&mut details.defs),
    );
    details
}

/// The innermost function or method around `offset`: its name and byte range (with Python
/// decorators).
pub(crate) fn enclosing_function(
    lang: Language,
    tree: &Tree,
    src: &str,
    offset: usize,
) -> Option<(String, Range<usize>)> {
    if offset > src.len() {
        return None;
    }
    let mut roles = Roles::new();
    roles.add(lang, tree.root_node(), src, None, &mut QueryCursor::new());
    let mut best: Option<Node> = None;
    let mut cursor = tree.walk();
    // Walk down from the root along the nodes that contain `offset`.
    let mut node = tree.root_node();
    loop {
        if roles.roles.get(&node.id()) == Some(&Role::Function) {
            best = Some(node);
        }
        let child = node.children(&mut cursor).find(|c| {
            c.start_byte() <= offset && offset <= c.end_byte() && c.end_byte() > c.start_byte()
        });
        match child {
            Some(child) => node = child,
            None => break,
        }
    }
    let function = best?;
    let name = function
        .child_by_field_name("name")
        .map(|n| text(n, src).to_string())?;
    let outer = match function.parent() {
        Some(parent) if parent.kind() == "decorated_definition" => parent,
        _ => function,
    };
    Some((name, outer.byte_range()))
}
