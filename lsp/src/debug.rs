//! The debug commands (`ghostline.debugDocument`, `ghostline.debugLastCompletion`,
//! `ghostline.debugState`): read-only views of the session for tests and benchmarks.
//!
//! Their names and result shapes are documented in [`crate::protocol`].

use serde_json::Value;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::Uri;

use crate::state::Session;
use crate::util::invalid_params;

/// `ghostline.debugDocument`: the document as the server holds it; argument `uri` or `{uri}`.
pub fn document(session: &Session, args: &[Value]) -> Result<Option<Value>> {
    let uri = args
        .first()
        .and_then(|a| a.as_str().or_else(|| a.get("uri").and_then(Value::as_str)))
        .ok_or_else(|| invalid_params("expected [uri] or [{uri}]"))?;
    let uri: Uri = uri
        .parse()
        .map_err(|_| invalid_params(format!("not a URI: {uri}")))?;
    let snap = session.snapshot(&uri)?;
    Ok(Some(serde_json::json!({
        "uri": uri.as_str(),
        "version": snap.version,
        "languageId": snap.language_id,
        "text": snap.rope.to_string(),
        "tooLarge": snap.too_large,
    })))
}

/// `ghostline.debugLastCompletion`: the last finished model run, or `null` before the first.
pub fn last_completion(session: &Session) -> Result<Option<Value>> {
    Ok(session.last_generation())
}

/// `ghostline.debugState`: the session's counts; `[{"files": true}]` adds the index's files.
pub fn state(session: &Session, args: &[Value]) -> Result<Option<Value>> {
    let c = session.counts();
    let w = session.workspace().walk_counts();
    let path = |p: &std::path::Path| p.to_string_lossy().into_owned();
    let mut state = serde_json::json!({
        "documents": c.documents,
        "flights": c.flights,
        "generations": c.generations,
        "indexWalks": w.started,
        "indexWalkRunning": w.running,
        "indexWalksByRoot": w.by_root.iter().map(|(r, n)| (path(r), Value::from(*n))).collect::<serde_json::Map<_, _>>(),
        "indexRoots": w.roots.iter().map(|r| path(r)).collect::<Vec<_>>(),
        "indexFileCount": w.files,
    });
    // `[{"files": true}]`: the files the index knows too.
    if args.first().is_some_and(|a| a["files"] == true) {
        let files: Vec<String> = session
            .workspace()
            .index_files()
            .iter()
            .map(|p| path(p))
            .collect();
        state["indexFiles"] = files.into();
    }
    Ok(Some(state))
}
