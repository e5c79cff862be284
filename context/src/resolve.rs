//! Import resolution: turns a file's [`RawImport`]s into [`Edge`]s to other files of the
//! workspace, following Python's and Rust's module rules.
//!
//! Python: `import a.b` / `from a.b import c` are looked up in the file's source roots — the
//! folder above its top-level package, each workspace root and its `src/` — as `a/b.py` or
//! `a/b/__init__.py`; namespace packages (folders without `__init__.py`) resolve to their
//! submodules; relative imports start from the file's package. Rust: `mod foo;` (with
//! `#[path]`), `use crate::/self::/super::`, paths through local modules, and the libraries
//! of the same Cargo workspace by crate name.
//!
//! Every candidate goes through [`Probe::file`], which only answers for indexable files inside
//! the roots; whatever does not resolve (standard library, third-party code) is dropped. This
//! module never reads a file itself.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::confine::{normalize, Roots};
use crate::imports::{Binding, RawImport};
use crate::manifest::Manifest;
use crate::Language;

/// What resolution needs from the workspace.
pub(crate) trait Probe {
    /// The roots.
    fn roots(&self) -> &Roots;
    /// The canonical path of the indexable file at `candidate` (absolute, maybe with `..`),
    /// if it exists inside the roots; `None` otherwise.
    fn file(&self, candidate: &Path) -> Option<PathBuf>;
    /// The manifest `dir/Cargo.toml`, if `dir` (canonical) has one inside the roots.
    fn manifest(&self, dir: &Path) -> Option<Arc<Manifest>>;
    /// Every known manifest in `dir` or below it: `(folder, manifest)`, sorted by folder.
    fn manifests_under(&self, dir: &Path) -> Vec<(PathBuf, Arc<Manifest>)>;
    /// The folders directly in `dir` (for `members = ["crates/*"]`), sorted.
    fn subdirs(&self, dir: &Path) -> Vec<PathBuf>;
}

/// A resolved import: the file, and what the importing file binds from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Edge {
    /// Canonical path of the imported file.
    pub(crate) target: PathBuf,
    /// Names imported from the file (`from m import a as b`, `use m::A`).
    pub(crate) names: Vec<Binding>,
    /// Local names bound to the file's module as a whole (`import m`, `mod m;`, `use a::m`).
    pub(crate) modules: Vec<String>,
    /// Whether everything is imported (`from m import *`, `use m::*`).
    pub(crate) glob: bool,
}

impl Edge {
    /// Every local name this import binds.
    pub(crate) fn locals(&self) -> impl Iterator<Item = &str> {
        self.names
            .iter()
            .map(Binding::local)
            .chain(self.modules.iter().map(String::as_str))
    }
}

/// Collects edges by target, merging what several imports bring from one file.
#[derive(Default)]
struct Edges {
    from: PathBuf,
    edges: BTreeMap<PathBuf, Edge>,
}

impl Edges {
    fn entry(&mut self, target: PathBuf) -> Option<&mut Edge> {
        if target == self.from {
            return None;
        }
        Some(self.edges.entry(target.clone()).or_insert_with(|| Edge {
            target,
            names: Vec::new(),
            modules: Vec::new(),
            glob: false,
        }))
    }

    fn name(&mut self, target: PathBuf, binding: Binding) {
        if let Some(edge) = self.entry(target) {
            if !edge.names.contains(&binding) {
                edge.names.push(binding);
            }
        }
    }

    fn module(&mut self, target: PathBuf, local: &str) {
        if let Some(edge) = self.entry(target) {
            if !edge.modules.iter().any(|m| m == local) {
                edge.modules.push(local.to_string());
            }
        }
    }

    fn glob(&mut self, target: PathBuf) {
        if let Some(edge) = self.entry(target) {
            edge.glob = true;
        }
    }

    fn finish(self) -> Vec<Edge> {
        let mut edges: Vec<Edge> = self.edges.into_values().collect();
        for edge in &mut edges {
            edge.names.sort();
            edge.modules.sort();
        }
        edges
    }
}

/// A path segment that may be joined onto a folder: no separators, no `.`/`..`.
fn segment_ok(segment: &str) -> bool {
    !segment.is_empty() && segment != "." && segment != ".." && !segment.contains(['/', '\\', '\0'])
}

/// Resolves the imports of `file` (canonical path).
pub(crate) fn resolve(
    probe: &dyn Probe,
    lang: Language,
    file: &Path,
    imports: &[RawImport],
) -> Vec<Edge> {
    let mut edges = Edges {
        from: file.to_path_buf(),
        edges: BTreeMap::new(),
    };
    match lang {
        Language::Python => python(probe, file, imports, &mut edges),
        Language::Rust => rust(probe, file, imports, &mut edges),
    }
    edges.finish()
}

// ---------------------------------------------------------------------------------------------
// Python

/// `base/a/b.py` or `base/a/b/__init__.py`; `base/__init__.py` for an empty module path.
fn py_module(probe: &dyn Probe, base: &Path, module: &[String]) -> Option<PathBuf> {
    if !module.iter().all(|s| segment_ok(s)) {
        return None;
    }
    let mut path = base.to_path_buf();
    path.extend(module);
    if !module.is_empty() {
        let mut file = path.clone().into_os_string();
        file.push(".py");
        if let Some(found) = probe.file(Path::new(&file)) {
            return Some(found);
        }
    }
    probe.file(&path.join("__init__.py"))
}

/// Where absolute imports of a file in `dir` are looked up, in order: the folder above the
/// file's top-level package (the file's own folder when it is not in a package), then each
/// root and its `src/`.
fn py_search_roots(probe: &dyn Probe, dir: &Path) -> Vec<PathBuf> {
    let roots = probe.roots();
    let mut top = dir.to_path_buf();
    while !roots.paths().contains(&top) && probe.file(&top.join("__init__.py")).is_some() {
        match top.parent() {
            Some(parent) if roots.root_of(parent).is_some() => top = parent.to_path_buf(),
            _ => break,
        }
    }
    let mut out = vec![top];
    for root in roots.paths().iter() {
        for candidate in [root.clone(), root.join("src")] {
            if !out.contains(&candidate) {
                out.push(candidate);
            }
        }
    }
    out
}

/// Where an absolute module path may live: `(folder, rest of the path)` for each source root,
/// plus the root itself when the root is a package named like the path's first segment (a
/// workspace opened at `mypkg/`, where `import mypkg.x` means `./x.py`).
fn py_absolute<'m>(
    probe: &dyn Probe,
    search: &[PathBuf],
    module: &'m [String],
) -> Vec<(PathBuf, &'m [String])> {
    let mut out: Vec<(PathBuf, &[String])> =
        search.iter().map(|base| (base.clone(), module)).collect();
    if let Some(first) = module.first() {
        for root in probe.roots().paths().iter() {
            let named = root.file_name().is_some_and(|name| name == first.as_str());
            if named && probe.file(&root.join("__init__.py")).is_some() {
                out.push((root.clone(), &module[1..]));
            }
        }
    }
    out
}

fn python(probe: &dyn Probe, file: &Path, imports: &[RawImport], edges: &mut Edges) {
    let Some(dir) = file.parent() else { return };
    let mut search: Option<Vec<PathBuf>> = None;
    for import in imports {
        match import {
            RawImport::PyModule { module, alias } => {
                let search = search.get_or_insert_with(|| py_search_roots(probe, dir));
                let local = alias.as_deref().unwrap_or(&module[0]);
                let found = py_absolute(probe, search, module)
                    .into_iter()
                    .find_map(|(base, rest)| py_module(probe, &base, rest));
                if let Some(target) = found {
                    edges.module(target, local);
                }
            }
            RawImport::PyFrom {
                level,
                module,
                names,
                glob,
            } => {
                let bases = if *level > 0 {
                    let mut base = Some(dir);
                    for _ in 1..*level {
                        base = base.and_then(Path::parent);
                    }
                    match base {
                        Some(base) => vec![(base.to_path_buf(), module.as_slice())],
                        None => continue,
                    }
                } else {
                    let search = search.get_or_insert_with(|| py_search_roots(probe, dir));
                    py_absolute(probe, search, module)
                };
                for (base, rest) in &bases {
                    if py_from(probe, base, rest, names, *glob, edges) {
                        break;
                    }
                }
            }
            RawImport::RustMod { .. } | RawImport::RustUse { .. } => {}
        }
    }
}

/// `from <base>/<module> import names`: each name is a submodule or a name of the module.
/// Returns whether anything resolved under `base`.
fn py_from(
    probe: &dyn Probe,
    base: &Path,
    module: &[String],
    names: &[Binding],
    glob: bool,
    edges: &mut Edges,
) -> bool {
    if !module.iter().all(|s| segment_ok(s)) {
        return false;
    }
    let target = py_module(probe, base, module);
    let mut package = base.to_path_buf();
    package.extend(module);
    let mut found = target.is_some();
    for binding in names {
        if let Some(submodule) = py_module(probe, &package, std::slice::from_ref(&binding.name)) {
            edges.module(submodule, binding.local());
            found = true;
        } else if let Some(target) = &target {
            edges.name(target.clone(), binding.clone());
        }
    }
    if let (true, Some(target)) = (glob, &target) {
        edges.glob(target.clone());
    }
    found
}

// ---------------------------------------------------------------------------------------------
// Rust

/// A crate as far as module files go: the folder where the root module's submodules live, and
/// the root file (unknown for shared files of `tests/` and similar).
#[derive(Debug, Clone)]
struct Crate {
    base: PathBuf,
    root: Option<PathBuf>,
}

/// Where a Rust file sits: its crate, its module path and whether it is a `mod.rs`-like file
/// (whose submodules live next to it rather than in a folder named after it).
struct RustFile {
    krate: Crate,
    module: Vec<String>,
    mod_rs: bool,
    package: Option<(PathBuf, Arc<Manifest>)>,
}

/// The library crate of the package in `dir`.
fn lib_crate(probe: &dyn Probe, dir: &Path, manifest: &Manifest) -> Option<Crate> {
    let root = match &manifest.lib_path {
        Some(path) => probe.file(&dir.join(path))?,
        None => probe.file(&dir.join("src/lib.rs"))?,
    };
    Some(Crate {
        base: root.parent()?.to_path_buf(),
        root: Some(root),
    })
}

fn rust_file(probe: &dyn Probe, file: &Path) -> Option<RustFile> {
    let dir = file.parent()?;
    let roots = probe.roots();
    let mut package = None;
    let mut current = Some(dir);
    while let Some(candidate) = current {
        if roots.root_of(candidate).is_none() {
            break;
        }
        if let Some(manifest) = probe.manifest(candidate) {
            if manifest.package.is_some() {
                package = Some((candidate.to_path_buf(), manifest));
                break;
            }
        }
        current = candidate.parent();
    }
    let single = |package| RustFile {
        krate: Crate {
            base: dir.to_path_buf(),
            root: Some(file.to_path_buf()),
        },
        module: Vec::new(),
        mod_rs: true,
        package,
    };
    let Some((pkg_dir, manifest)) = package else {
        return Some(single(None));
    };
    let rel: Vec<String> = file
        .strip_prefix(&pkg_dir)
        .ok()?
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let parts: Vec<&str> = rel.iter().map(String::as_str).collect();
    let (base, rest): (PathBuf, &[&str]) = match parts.as_slice() {
        ["src", "bin", rest @ ..] => (pkg_dir.join("src/bin"), rest),
        ["src", rest @ ..] => {
            let lib = lib_crate(probe, &pkg_dir, &manifest)
                .filter(|lib| lib.base == pkg_dir.join("src"))
                .map(|lib| lib.root)
                .unwrap_or_else(|| probe.file(&pkg_dir.join("src/main.rs")));
            let krate = Crate {
                base: pkg_dir.join("src"),
                root: lib,
            };
            let (module, mod_rs) = module_path(rest);
            let is_root = krate.root.as_deref() == Some(file);
            return Some(RustFile {
                krate,
                module: if is_root { Vec::new() } else { module },
                mod_rs: mod_rs || is_root,
                package: Some((pkg_dir, manifest)),
            });
        }
        [dir @ ("tests" | "examples" | "benches"), rest @ ..] => (pkg_dir.join(dir), rest),
        _ => return Some(single(Some((pkg_dir, manifest)))),
    };
    // Folders of separate crate roots: `tests/x.rs`, `src/bin/x/main.rs`, and files they share.
    let package = Some((pkg_dir, manifest));
    match rest {
        [_] => Some(RustFile {
            krate: Crate {
                base,
                root: Some(file.to_path_buf()),
            },
            module: Vec::new(),
            mod_rs: true,
            package,
        }),
        [sub, "main.rs"] => Some(RustFile {
            krate: Crate {
                base: base.join(sub),
                root: Some(file.to_path_buf()),
            },
            module: Vec::new(),
            mod_rs: true,
            package,
        }),
        _ => {
            let (module, mod_rs) = module_path(rest);
            Some(RustFile {
                krate: Crate { base, root: None },
                module,
                mod_rs,
                package,
            })
        }
    }
}

/// `["a", "b.rs"]` → `(["a", "b"], false)`; `["a", "mod.rs"]` → `(["a"], true)`;
/// `["lib.rs"]` → `([], true)`.
fn module_path(rest: &[&str]) -> (Vec<String>, bool) {
    let mut module: Vec<String> = rest.iter().map(|s| s.to_string()).collect();
    let Some(last) = module.pop() else {
        return (Vec::new(), true);
    };
    let stem = last.strip_suffix(".rs").unwrap_or(&last).to_string();
    if stem == "mod" || (module.is_empty() && (stem == "lib" || stem == "main")) {
        return (module, true);
    }
    module.push(stem);
    (module, false)
}

/// The file of module `module` of `krate`: `a/b.rs` or `a/b/mod.rs`, the root for `[]`.
fn rust_module(probe: &dyn Probe, krate: &Crate, module: &[String]) -> Option<PathBuf> {
    if module.is_empty() {
        return krate.root.clone();
    }
    if !module.iter().all(|s| segment_ok(s)) {
        return None;
    }
    let mut path = krate.base.clone();
    path.extend(module);
    let mut file = path.clone().into_os_string();
    file.push(".rs");
    probe
        .file(Path::new(&file))
        .or_else(|| probe.file(&path.join("mod.rs")))
}

/// The library named `name` (`foo_bar` for package `foo-bar`): this package's own library, or
/// another package of the same Cargo workspace (its `members`, or every package under the
/// workspace folder when it lists none).
fn crate_named(probe: &dyn Probe, here: &RustFile, name: &str) -> Option<Crate> {
    let (pkg_dir, manifest) = here.package.as_ref()?;
    if manifest.crate_name().as_deref() == Some(name) {
        return lib_crate(probe, pkg_dir, manifest);
    }
    let roots = probe.roots();
    let mut workspace = None;
    let mut current = Some(pkg_dir.as_path());
    while let Some(dir) = current {
        if roots.root_of(dir).is_none() {
            break;
        }
        if let Some(manifest) = probe.manifest(dir).filter(|m| m.workspace) {
            workspace = Some((dir, manifest));
            break;
        }
        current = dir.parent();
    }
    let (workspace, ws_manifest) = workspace?;
    let mut members: Vec<PathBuf> = vec![workspace.to_path_buf()];
    if ws_manifest.members.is_empty() {
        members.extend(
            probe
                .manifests_under(workspace)
                .into_iter()
                .map(|(dir, _)| dir),
        );
    }
    for member in &ws_manifest.members {
        if let Some(prefix) = member.strip_suffix("/*") {
            members.extend(probe.subdirs(&normalize(&workspace.join(prefix))));
        } else if !member.contains(['*', '?', '[']) {
            members.push(normalize(&workspace.join(member)));
        }
    }
    members.sort();
    members.dedup();
    members.into_iter().find_map(|dir| {
        let manifest = probe.manifest(&dir)?;
        if manifest.crate_name().as_deref() == Some(name) {
            lib_crate(probe, &dir, &manifest)
        } else {
            None
        }
    })
}

fn rust(probe: &dyn Probe, file: &Path, imports: &[RawImport], edges: &mut Edges) {
    let Some(here) = rust_file(probe, file) else {
        return;
    };
    let Some(dir) = file.parent() else { return };
    for import in imports {
        match import {
            RawImport::RustMod {
                name,
                path_attr,
                inline,
            } => {
                let target = match path_attr {
                    Some(path) => {
                        let mut base = dir.to_path_buf();
                        if !inline.is_empty() {
                            if !here.mod_rs {
                                match file.file_stem() {
                                    Some(stem) => base.push(stem),
                                    None => continue,
                                }
                            }
                            base.extend(inline);
                        }
                        probe.file(&base.join(path))
                    }
                    None => {
                        let mut module = here.module.clone();
                        module.extend(inline.iter().cloned());
                        module.push(name.clone());
                        rust_module(probe, &here.krate, &module)
                    }
                };
                if let Some(target) = target {
                    edges.module(target, name);
                }
            }
            RawImport::RustUse {
                path,
                alias,
                glob,
                inline,
            } => {
                rust_use(probe, &here, path, alias.as_deref(), *glob, inline, edges);
            }
            RawImport::PyModule { .. } | RawImport::PyFrom { .. } => {}
        }
    }
}

fn rust_use(
    probe: &dyn Probe,
    here: &RustFile,
    path: &[String],
    alias: Option<&str>,
    glob: bool,
    inline: &[String],
    edges: &mut Edges,
) {
    let Some(first) = path.first() else { return };
    let mut current: Vec<String> = here.module.iter().chain(inline).cloned().collect();
    let (krate, start, rest): (Crate, Vec<String>, &[String]) = match first.as_str() {
        "crate" => (here.krate.clone(), Vec::new(), &path[1..]),
        "self" => (here.krate.clone(), current, &path[1..]),
        "super" => {
            let supers = path.iter().take_while(|s| *s == "super").count();
            if supers > current.len() {
                return;
            }
            current.truncate(current.len() - supers);
            (here.krate.clone(), current, &path[supers..])
        }
        "std" | "core" | "alloc" => return,
        _ => {
            let mut local = current.clone();
            local.push(first.clone());
            if rust_module(probe, &here.krate, &local).is_some() {
                (here.krate.clone(), current, path)
            } else if !current.is_empty()
                && rust_module(probe, &here.krate, std::slice::from_ref(first)).is_some()
            {
                (here.krate.clone(), Vec::new(), path)
            } else if let Some(other) = crate_named(probe, here, first) {
                (other, Vec::new(), &path[1..])
            } else {
                return;
            }
        }
    };
    let mut module = start;
    let Some(mut target) = rust_module(probe, &krate, &module) else {
        return;
    };
    let mut consumed = 0;
    for segment in rest {
        module.push(segment.clone());
        match rust_module(probe, &krate, &module) {
            Some(file) => {
                target = file;
                consumed += 1;
            }
            None => break,
        }
    }
    if consumed == rest.len() {
        if glob {
            edges.glob(target);
        } else if let Some(local) = alias.or(rest.last().map(String::as_str)) {
            edges.module(target, local);
        }
    } else {
        let name = &rest[consumed];
        let local = alias.or(path.last().map(String::as_str));
        edges.name(target, Binding::new(name, if glob { None } else { local }));
    }
}
