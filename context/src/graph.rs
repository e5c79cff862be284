//! The import graph around one file and its dependency order.
//!
//! [`build`] follows resolved imports breadth-first from the current file (direct imports at
//! depth 1, their imports at depth 2, ...) up to a depth and a file count; [`order`] sorts the
//! files so that each comes after the files it imports, breaking cycles the way DeepSeek-Coder
//! prepares repository data: repeatedly take the file with the fewest imports not yet taken,
//! ties broken by path. The current file is never a node (it is the FIM part of the prompt).
//! This module neither reads files nor resolves imports; it gets edges from a callback.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::resolve::Edge;

/// A file of the graph.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) path: PathBuf,
    /// 1 for the current file's own imports, 2 for theirs, ...
    pub(crate) depth: usize,
    /// Indices of the nodes this file imports.
    pub(crate) deps: Vec<usize>,
}

/// Follows imports from `current`, whose resolved imports are `direct`. `edges_of` gives the
/// resolved imports of any other file (`None` if it cannot be read).
pub(crate) fn build(
    current: &Path,
    direct: &[Edge],
    max_depth: usize,
    max_files: usize,
    edges_of: &mut dyn FnMut(&Path) -> Option<Arc<Vec<Edge>>>,
) -> Vec<Node> {
    // Hash maps while searching, one sort at the end: paths compare slowly component by
    // component, and wide imports (`from pkg import *` everywhere) reach thousands of them.
    let mut depth_of: HashMap<PathBuf, usize> = HashMap::new();
    let mut targets: HashMap<PathBuf, Vec<PathBuf>> = HashMap::new();
    let mut level: Vec<PathBuf> = direct
        .iter()
        .map(|e| e.target.clone())
        .filter(|t| t != current)
        .collect();
    let mut depth = 1;
    while depth <= max_depth && !level.is_empty() {
        sort_paths(&mut level);
        level.dedup();
        let mut added = Vec::new();
        for path in level {
            if depth_of.len() >= max_files {
                break;
            }
            if !depth_of.contains_key(&path) {
                depth_of.insert(path.clone(), depth);
                added.push(path);
            }
        }
        let mut next = HashSet::new();
        for path in added {
            let Some(edges) = edges_of(&path) else {
                continue;
            };
            let deps: Vec<PathBuf> = edges.iter().map(|e| e.target.clone()).collect();
            for dep in &deps {
                if dep != current && !depth_of.contains_key(dep) {
                    next.insert(dep.clone());
                }
            }
            targets.insert(path, deps);
        }
        level = next.into_iter().collect();
        depth += 1;
    }
    let mut paths: Vec<PathBuf> = depth_of.keys().cloned().collect();
    sort_paths(&mut paths);
    let index: HashMap<&Path, usize> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| (p.as_path(), i))
        .collect();
    paths
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let mut deps: Vec<usize> = targets
                .get(path)
                .into_iter()
                .flatten()
                .filter_map(|t| index.get(t.as_path()).copied())
                .filter(|&d| d != i)
                .collect();
            deps.sort_unstable();
            deps.dedup();
            Node {
                path: path.clone(),
                depth: depth_of[path],
                deps,
            }
        })
        .collect()
}

/// Sorts by the bytes of the path (one deterministic order, cheaper than by components).
pub(crate) fn sort_paths(paths: &mut [PathBuf]) {
    paths.sort_unstable_by(|a, b| {
        a.as_os_str()
            .as_encoded_bytes()
            .cmp(b.as_os_str().as_encoded_bytes())
    });
}

/// Node indices in dependency order (see the module comment). `nodes` must be sorted by path
/// bytes, as [`build`] returns them.
pub(crate) fn order(nodes: &[Node]) -> Vec<usize> {
    let n = nodes.len();
    let mut pending: Vec<usize> = nodes.iter().map(|node| node.deps.len()).collect();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, node) in nodes.iter().enumerate() {
        for &dep in &node.deps {
            dependents[dep].push(i);
        }
    }
    let mut taken = vec![false; n];
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        // Nodes are sorted by path, so the first minimum is the tie-break by path.
        let Some(next) = (0..n).filter(|&i| !taken[i]).min_by_key(|&i| pending[i]) else {
            break;
        };
        taken[next] = true;
        out.push(next);
        for &dependent in &dependents[next] {
            pending[dependent] = pending[dependent].saturating_sub(1);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nodes(deps: &[(&str, &[usize])]) -> Vec<Node> {
        deps.iter()
            .map(|(p, d)| Node {
                path: PathBuf::from(p),
                depth: 1,
                deps: d.to_vec(),
            })
            .collect()
    }

    fn names(nodes: &[Node]) -> Vec<String> {
        order(nodes)
            .into_iter()
            .map(|i| nodes[i].path.display().to_string())
            .collect()
    }

    #[test]
    fn chain_diamond_cycle() {
        // a -> b -> c
        assert_eq!(
            names(&nodes(&[("a", &[1]), ("b", &[2]), ("c", &[])])),
            ["c", "b", "a"]
        );
        // a -> b, a -> c, b -> d, c -> d
        assert_eq!(
            names(&nodes(&[
                ("a", &[1, 2]),
                ("b", &[3]),
                ("c", &[3]),
                ("d", &[])
            ])),
            ["d", "b", "c", "a"]
        );
        // a -> b -> c -> a, d -> a: all have one pending import, `a` wins the tie; then `c`
        // and `d` have none left, `c` first by path, which frees `b`.
        assert_eq!(
            names(&nodes(&[
                ("a", &[1]),
                ("b", &[2]),
                ("c", &[0]),
                ("d", &[0])
            ])),
            ["a", "c", "b", "d"]
        );
    }
}
