//! The session's state: open documents with their per-document state, settings, the negotiated
//! encoding and client capabilities, the engine slot, the suggestion cache and the workspace.
//!
//! Fields are private; handlers take a [`Snapshot`] of what a request needs before their first
//! `.await`, so notifications that arrive meanwhile cannot interleave with it. Documents and
//! their per-document state (the waiting completion, the running generation, whether it is too
//! large to keep, see [`MAX_DOCUMENT_BYTES`]) share one entry of a [`DashMap`]: readers on
//! worker threads do not contend on one lock, and closing a document removes everything about
//! it at once. Nothing can be registered for a document that is not open, so work that finishes
//! after `didClose` cannot bring its state back. Guards are held for a few statements, never
//! across an `.await`, and never two at once.
//!
//! This module holds and guards state; it does not run requests, load models or walk the
//! workspace (see [`crate::complete`], [`crate::loader`], [`crate::workspace`]).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use dashmap::DashMap;
use ropey::Rope;
use serde_json::Value;
use tokio::sync::oneshot;
use tower_lsp_server::jsonrpc::Result;
use tower_lsp_server::ls_types::*;
use tower_lsp_server::Client;

use crate::cache::{CompletionCache, Hit};
use crate::config::{Config, Update};
use crate::document::Document;
use crate::generation::Generation;
use crate::position::{self, Encoding};
use crate::progress::WorkProgress;
use crate::protocol::{ClientCaps, State, StatusNotification, StatusParams};
use crate::slot::EngineSlot;
use crate::util::{invalid_params, lock};
use crate::workspace::Workspace;

/// Documents larger than this are tracked as "too large": their text is not kept, incremental
/// edits to them are ignored, and they get no completions or code actions until a full-text
/// change under the cap brings them back.
pub const MAX_DOCUMENT_BYTES: usize = 16 << 20;

/// Options from the command line.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--model`: the model when the settings name none.
    pub model: Option<PathBuf>,
}

/// A completion request waiting for its answer; a newer request (or an edit) makes it answer
/// empty at once. The model run it waits for is a [`Generation`], cancelled separately.
pub struct InFlight {
    /// Identifies the request.
    pub id: u64,
    /// Tells the request to answer with an empty result now.
    pub superseded: oneshot::Sender<()>,
}

impl InFlight {
    fn stop(self) {
        let _ = self.superseded.send(());
    }
}

/// One open document and the state that lives and dies with it.
struct OpenDoc {
    doc: Document,
    /// The completion request waiting for an answer.
    flight: Option<InFlight>,
    /// The running model run.
    generation: Option<Arc<Generation>>,
    /// `Some(bytes)`: the client's text is over [`MAX_DOCUMENT_BYTES`] and `doc` holds none of
    /// it (see [`Session::open_text`]).
    too_large: Option<usize>,
}

/// What a request needs of the session, taken at once.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The document's text.
    pub rope: Rope,
    /// The client's version number.
    pub version: i32,
    /// The client's language id.
    pub language_id: String,
    /// Whether the document uses `\r\n` line breaks.
    pub crlf: bool,
    /// The negotiated position encoding.
    pub encoding: Encoding,
    /// The settings.
    pub config: Arc<Config>,
    /// `Some(bytes)`: the document is over [`MAX_DOCUMENT_BYTES`] and `rope` is empty.
    pub too_large: Option<usize>,
}

/// Counts of the session's state (`ghostline.debugState`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    /// Open documents.
    pub documents: usize,
    /// Completion requests waiting.
    pub flights: usize,
    /// Model runs registered for documents.
    pub generations: usize,
}

/// The server's state, shared with background tasks.
pub struct Session {
    client: Client,
    options: Options,
    docs: DashMap<Uri, OpenDoc>,
    config: Mutex<Arc<Config>>,
    encoding: Mutex<Encoding>,
    caps: Mutex<ClientCaps>,
    engine: EngineSlot,
    cache: Mutex<CompletionCache>,
    workspace: Arc<Workspace>,
    /// Messages from `initializationOptions`, shown after `initialized`.
    pending_messages: Mutex<Vec<(MessageType, String)>>,
    seq: AtomicU64,
    /// `initialized` arrived (a repeat is ignored: it would load the model and walk again).
    initialized: AtomicBool,
    /// Statistics of the last finished model run (`ghostline.debugLastCompletion`).
    last_generation: Mutex<Option<Value>>,
}

impl Session {
    /// A session talking to `client`.
    pub fn new(client: Client, options: Options) -> Self {
        Session {
            client,
            options,
            docs: DashMap::new(),
            config: Mutex::new(Arc::new(Config::default())),
            encoding: Mutex::new(Encoding::default()),
            caps: Mutex::new(ClientCaps::default()),
            engine: EngineSlot::new(),
            cache: Mutex::new(CompletionCache::new()),
            workspace: Arc::new(Workspace::default()),
            pending_messages: Mutex::new(Vec::new()),
            seq: AtomicU64::new(0),
            initialized: AtomicBool::new(false),
            last_generation: Mutex::new(None),
        }
    }

    // --- The session as a whole -------------------------------------------------------------

    /// Talks to the client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Command-line options.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The model.
    pub fn engine(&self) -> &EngineSlot {
        &self.engine
    }

    /// Workspace folders and the repository index.
    pub fn workspace(&self) -> &Arc<Workspace> {
        &self.workspace
    }

    /// Current settings.
    pub fn config(&self) -> Arc<Config> {
        lock(&self.config).clone()
    }

    /// Applies a settings object to the current settings (see [`Config::apply`]).
    pub fn update_config(&self, settings: &Value) -> Update {
        let mut guard = lock(&self.config);
        let mut next = (**guard).clone();
        let update = next.apply(settings);
        *guard = Arc::new(next);
        update
    }

    /// Replaces the settings (from `initializationOptions`).
    pub fn set_config(&self, config: Config) {
        *lock(&self.config) = Arc::new(config);
    }

    /// Negotiated position encoding.
    pub fn encoding(&self) -> Encoding {
        *lock(&self.encoding)
    }

    /// What the client can do.
    pub fn caps(&self) -> ClientCaps {
        *lock(&self.caps)
    }

    /// Stores what `initialize` negotiated.
    pub fn set_client(&self, encoding: Encoding, caps: ClientCaps) {
        *lock(&self.encoding) = encoding;
        *lock(&self.caps) = caps;
    }

    /// Records that `initialized` arrived; false when it had already (a repeat to ignore).
    pub fn first_initialized(&self) -> bool {
        !self.initialized.swap(true, Ordering::SeqCst)
    }

    /// A fresh request number.
    pub fn next_id(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Sends `ghostline/status`.
    pub async fn status(&self, state: State, message: Option<String>, percentage: Option<u32>) {
        self.client
            .send_notification::<StatusNotification>(StatusParams {
                state,
                message,
                percentage,
            })
            .await;
    }

    /// Begins work-done progress (see [`WorkProgress::begin`]).
    pub async fn progress(
        &self,
        given: Option<ProgressToken>,
        title: &str,
        message: Option<String>,
    ) -> WorkProgress {
        let can_create = self.caps().work_done_progress;
        WorkProgress::begin(&self.client, can_create, given, title, message).await
    }

    /// Queues a message to show after `initialized`.
    pub fn queue_message(&self, typ: MessageType, message: String) {
        lock(&self.pending_messages).push((typ, message));
    }

    /// Takes the queued messages.
    pub fn take_messages(&self) -> Vec<(MessageType, String)> {
        std::mem::take(&mut *lock(&self.pending_messages))
    }

    /// The cache's answer for a prefix and suffix.
    pub fn cached(&self, prefix: &str, suffix: &str) -> Option<Hit> {
        lock(&self.cache).get(prefix, suffix)
    }

    /// Remembers a suggestion.
    pub fn remember(&self, prefix: &str, suffix: &str, text: &str) {
        lock(&self.cache).insert(prefix, suffix, text);
    }

    /// Forgets every suggestion (settings or model changed).
    pub fn clear_cache(&self) {
        lock(&self.cache).clear();
    }

    /// Statistics of the last finished model run.
    pub fn last_generation(&self) -> Option<Value> {
        lock(&self.last_generation).clone()
    }

    /// Records the statistics of a finished model run.
    pub fn set_last_generation(&self, stats: Value) {
        *lock(&self.last_generation) = Some(stats);
    }

    // --- Documents ----------------------------------------------------------------------------

    /// `didOpen`: stores the document (replacing one with the same URI and its state).
    pub fn open(&self, uri: Uri, doc: Document) {
        let old = self.docs.insert(
            uri,
            OpenDoc {
                doc,
                flight: None,
                generation: None,
                too_large: None,
            },
        );
        if let Some(old) = old {
            stop(old);
        }
    }

    /// `didOpen` with the client's text: a text over [`MAX_DOCUMENT_BYTES`] is not kept (the
    /// document is tracked as too large, and the user is told once). Returns whether the
    /// document's text is held.
    pub fn open_text(
        self: &Arc<Self>,
        uri: Uri,
        text: &str,
        version: i32,
        language_id: &str,
    ) -> bool {
        if text.len() <= MAX_DOCUMENT_BYTES {
            self.open(uri, Document::new(text, version, language_id));
            return true;
        }
        let old = self.docs.insert(
            uri.clone(),
            OpenDoc {
                doc: Document::new("", version, language_id),
                flight: None,
                generation: None,
                too_large: Some(text.len()),
            },
        );
        if let Some(old) = old {
            stop(old);
        }
        self.tell_too_large(&uri, text.len());
        false
    }

    /// Tells the user (one `window/showMessage` and one log line) that `uri` is too large; sent
    /// when a document becomes too large, never per edit or request.
    fn tell_too_large(self: &Arc<Self>, uri: &Uri, bytes: usize) {
        let msg = format!(
            "ghostline: {} is {} MiB, over the {} MiB limit: no completions or code actions for it",
            uri.as_str(),
            bytes >> 20,
            MAX_DOCUMENT_BYTES >> 20
        );
        tracing::warn!(
            uri = uri.as_str(),
            bytes,
            "document over the size limit: its text is not kept"
        );
        if tokio::runtime::Handle::try_current().is_ok() {
            let session = self.clone();
            tokio::spawn(
                async move { session.client.show_message(MessageType::WARNING, msg).await },
            );
        }
    }

    /// `didChange`: applies the changes. Typing at the cursor of the running generation keeps it
    /// (a later request adopts it); any other edit cancels it. The request waiting for the
    /// previous version answers empty now. Returns false when the document is not open.
    ///
    /// A document over [`MAX_DOCUMENT_BYTES`] ignores incremental edits (it holds no text to
    /// apply them to); a full-text change under the cap brings it back, and an edit that takes
    /// it over the cap drops its text (see [`Session::open_text`]).
    pub fn change(
        self: &Arc<Self>,
        uri: &Uri,
        version: i32,
        changes: &[TextDocumentContentChangeEvent],
    ) -> bool {
        let enc = self.encoding();
        let mut became_too_large = None;
        let flight = {
            let Some(mut entry) = self.docs.get_mut(uri) else {
                return false;
            };
            let open = &mut *entry;
            if open.too_large.is_some() || changes_size(&open.doc, changes) > MAX_DOCUMENT_BYTES {
                let was = open.too_large;
                apply_capped(open, version, changes, enc);
                if was.is_none() {
                    became_too_large = open.too_large;
                }
                if open.too_large.is_some() {
                    if let Some(g) = open.generation.take() {
                        g.cancel.cancel();
                    }
                } else {
                    tracing::info!(uri = uri.as_str(), "document back under the size limit");
                }
                let flight = open.flight.take();
                drop(entry);
                if let Some(f) = flight {
                    f.stop();
                }
                if let Some(bytes) = became_too_large {
                    self.tell_too_large(uri, bytes);
                }
                return true;
            }
            if let Some(g) = &open.generation {
                let insertion = match changes {
                    [c] => c.range.filter(|r| r.start == r.end).map(|r| {
                        (
                            position::to_char_clamped(&open.doc.rope, r.start, enc),
                            c.text.chars().count(),
                        )
                    }),
                    _ => None,
                };
                if !g.on_edit(insertion.map(|i| i.0), insertion.map_or(0, |i| i.1)) {
                    tracing::debug!("edit away from the cursor: generation {} cancelled", g.id);
                }
            }
            open.doc.apply(version, changes, enc);
            open.flight.take()
        };
        if let Some(f) = flight {
            f.stop();
        }
        true
    }

    /// `didClose`: forgets the document and everything about it; its waiting request answers
    /// empty and its generation stops.
    pub fn close(&self, uri: &Uri) {
        if let Some((_, old)) = self.docs.remove(uri) {
            stop(old);
        }
    }

    /// What a request on `uri` needs, or `InvalidParams` when it is not open.
    pub fn snapshot(&self, uri: &Uri) -> Result<Snapshot> {
        let encoding = self.encoding();
        let config = self.config();
        let entry = self
            .docs
            .get(uri)
            .ok_or_else(|| invalid_params(format!("document not open: {}", uri.as_str())))?;
        Ok(Snapshot {
            rope: entry.doc.rope.clone(),
            version: entry.doc.version,
            language_id: entry.doc.language_id.clone(),
            crlf: entry.doc.uses_crlf(),
            encoding,
            config,
            too_large: entry.too_large,
        })
    }

    /// The text of `uri` now, when it is open (and not too large to keep).
    pub fn text(&self, uri: &Uri) -> Option<String> {
        let entry = self.docs.get(uri)?;
        if entry.too_large.is_some() {
            return None;
        }
        let rope = entry.doc.rope.clone();
        drop(entry);
        Some(rope.to_string())
    }

    /// Whether `uri` is tracked as over [`MAX_DOCUMENT_BYTES`]: its text is not kept and it
    /// gets no completions or code actions (the user was told when it became so).
    pub fn too_large(&self, uri: &Uri) -> bool {
        self.docs.get(uri).is_some_and(|e| e.too_large.is_some())
    }

    // --- Per-document requests and runs -------------------------------------------------------

    /// Registers the completion waiting for `uri`, stopping the one it supersedes. Returns false
    /// (and stops `flight`) when the document is no longer open.
    pub fn register_inflight(&self, uri: &Uri, flight: InFlight) -> bool {
        let old = match self.docs.get_mut(uri) {
            Some(mut entry) => entry.flight.replace(flight),
            None => {
                flight.stop();
                return false;
            }
        };
        if let Some(old) = old {
            tracing::debug!(uri = uri.as_str(), "superseding completion {}", old.id);
            old.stop();
        }
        true
    }

    /// Forgets completion `id` of `uri` (it finished or was dropped).
    pub fn unregister_inflight(&self, uri: &Uri, id: u64) {
        if let Some(mut entry) = self.docs.get_mut(uri) {
            if entry.flight.as_ref().is_some_and(|f| f.id == id) {
                entry.flight = None;
            }
        }
    }

    /// The running generation of `uri`.
    pub fn generation(&self, uri: &Uri) -> Option<Arc<Generation>> {
        self.docs.get(uri)?.generation.clone()
    }

    /// Makes `generation` the running one of `uri`, cancelling the previous one. Returns false
    /// (and cancels `generation`) when the document is no longer open: nothing is registered
    /// for a closed document.
    pub fn set_generation(&self, uri: &Uri, generation: Arc<Generation>) -> bool {
        let old = match self.docs.get_mut(uri) {
            Some(mut entry) => entry.generation.replace(generation),
            None => {
                generation.cancel.cancel();
                return false;
            }
        };
        if let Some(old) = old {
            old.cancel.cancel();
        }
        true
    }

    /// Cancels the generations of documents other than `uri` that no request waits for
    /// (runs that went on after answering, see [`crate::complete`]).
    pub fn cancel_unwatched(&self, uri: &Uri) {
        for entry in self.docs.iter() {
            if entry.key() == uri {
                continue;
            }
            if let Some(g) = &entry.generation {
                if g.waiters.load(std::sync::atomic::Ordering::Acquire) == 0 {
                    g.cancel.cancel();
                }
            }
        }
    }

    /// Forgets generation `id` of `uri` when it is still the document's; returns whether no
    /// generation runs for any document now.
    pub fn clear_generation(&self, uri: &Uri, id: u64) -> bool {
        if let Some(mut entry) = self.docs.get_mut(uri) {
            if entry.generation.as_ref().is_some_and(|g| g.id == id) {
                entry.generation = None;
            }
        }
        self.docs.iter().all(|e| e.generation.is_none())
    }

    /// `shutdown`: every waiting request answers empty and every generation stops.
    pub fn stop_all(&self) {
        for mut entry in self.docs.iter_mut() {
            if let Some(f) = entry.flight.take() {
                f.stop();
            }
            if let Some(g) = entry.generation.take() {
                g.cancel.cancel();
            }
        }
    }

    /// Counts of documents, waiting requests and registered generations.
    pub fn counts(&self) -> Counts {
        let mut c = Counts {
            documents: 0,
            flights: 0,
            generations: 0,
        };
        for e in self.docs.iter() {
            c.documents += 1;
            c.flights += usize::from(e.flight.is_some());
            c.generations += usize::from(e.generation.is_some());
        }
        c
    }
}

/// An upper bound of the document's size in bytes once `changes` are applied (cheap: no edit
/// is applied to find out).
fn changes_size(doc: &Document, changes: &[TextDocumentContentChangeEvent]) -> usize {
    let mut size = doc.rope.len_bytes();
    for c in changes {
        size = match c.range {
            None => c.text.len(),
            Some(_) => size + c.text.len(),
        };
    }
    size
}

/// Applies `changes` to a document that is, or may become, too large, one at a time: an
/// incremental edit to a too-large document is ignored, a full text over the cap drops the
/// text, one under it brings the document back, and an edit that takes it over the cap drops
/// its text.
fn apply_capped(
    open: &mut OpenDoc,
    version: i32,
    changes: &[TextDocumentContentChangeEvent],
    enc: Encoding,
) {
    for c in changes {
        match (c.range, open.too_large) {
            (None, _) if c.text.len() > MAX_DOCUMENT_BYTES => {
                open.doc.rope = Rope::new();
                open.too_large = Some(c.text.len());
            }
            (None, _) => {
                open.doc.apply(version, std::slice::from_ref(c), enc);
                open.too_large = None;
            }
            (Some(_), Some(_)) => {}
            (Some(_), None) => {
                open.doc.apply(version, std::slice::from_ref(c), enc);
                let bytes = open.doc.rope.len_bytes();
                if bytes > MAX_DOCUMENT_BYTES {
                    open.doc.rope = Rope::new();
                    open.too_large = Some(bytes);
                }
            }
        }
    }
    open.doc.version = version;
}

/// Stops what a closed (or replaced) document had running.
fn stop(old: OpenDoc) {
    if let Some(f) = old.flight {
        f.stop();
    }
    if let Some(g) = old.generation {
        g.cancel.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generation::Generation;
    use ghostline_inference::FimRequest;
    use tower_lsp_server::jsonrpc::Result;
    use tower_lsp_server::ls_types::{InitializeParams, InitializeResult};
    use tower_lsp_server::{LanguageServer, LspService};

    /// Just enough of a server to get a client handle for a session.
    struct Stub(Arc<Session>);

    impl LanguageServer for Stub {
        async fn initialize(&self, _: InitializeParams) -> Result<InitializeResult> {
            Ok(InitializeResult::default())
        }

        async fn shutdown(&self) -> Result<()> {
            Ok(())
        }
    }

    fn with_session(f: impl FnOnce(&Arc<Session>)) {
        let (service, _socket) =
            LspService::new(|client| Stub(Arc::new(Session::new(client, Options::default()))));
        f(&service.inner().0);
    }

    fn generation(id: u64) -> Arc<Generation> {
        let request = FimRequest {
            prefix: "def f(".into(),
            suffix: "):\n".into(),
            ..FimRequest::default()
        };
        Generation::new(id, &request, 6).0
    }

    #[test]
    fn nothing_is_registered_for_a_document_that_is_not_open() {
        with_session(|s| {
            let uri: Uri = "file:///tmp/a.py".parse().unwrap();
            let (tx, mut rx) = oneshot::channel();
            assert!(!s.register_inflight(
                &uri,
                InFlight {
                    id: 1,
                    superseded: tx
                }
            ));
            assert!(rx.try_recv().is_ok(), "the request is told to answer empty");
            let g = generation(2);
            assert!(!s.set_generation(&uri, g.clone()));
            assert!(g.cancel.is_cancelled(), "the run does not start");
            assert_eq!(
                s.counts(),
                Counts {
                    documents: 0,
                    flights: 0,
                    generations: 0
                }
            );
        });
    }

    #[test]
    fn closing_a_document_forgets_and_stops_everything_about_it() {
        with_session(|s| {
            let uri: Uri = "file:///tmp/b.py".parse().unwrap();
            s.open(uri.clone(), Document::new("x = 1\n", 1, "python"));
            let (tx, mut rx) = oneshot::channel();
            assert!(s.register_inflight(
                &uri,
                InFlight {
                    id: 1,
                    superseded: tx
                }
            ));
            let g = generation(2);
            assert!(s.set_generation(&uri, g.clone()));
            assert_eq!(
                s.counts(),
                Counts {
                    documents: 1,
                    flights: 1,
                    generations: 1
                }
            );
            assert!(s.snapshot(&uri).is_ok());
            s.close(&uri);
            assert!(rx.try_recv().is_ok());
            assert!(g.cancel.is_cancelled());
            assert!(s.snapshot(&uri).is_err());
            assert_eq!(s.counts().documents, 0);
            // A run that finishes afterwards finds nothing to clear and brings nothing back.
            assert!(s.clear_generation(&uri, 2));
            s.unregister_inflight(&uri, 1);
            assert_eq!(s.counts().documents, 0);
        });
    }

    #[test]
    fn a_document_over_the_cap_keeps_no_text_until_a_full_text_under_it() {
        with_session(|s| {
            let uri: Uri = "file:///tmp/huge.py".parse().unwrap();
            let huge = "x = 1\n".repeat(MAX_DOCUMENT_BYTES / 6 + 1);
            let full = |text: &str| TextDocumentContentChangeEvent {
                range: None,
                range_length: None,
                text: text.into(),
            };
            let typed = TextDocumentContentChangeEvent {
                range: Some(Range::new(Position::new(0, 0), Position::new(0, 0))),
                range_length: None,
                text: "y".into(),
            };
            assert!(!s.open_text(uri.clone(), &huge, 1, "python"));
            assert!(s.too_large(&uri));
            assert_eq!(s.text(&uri), None);
            assert_eq!(s.snapshot(&uri).unwrap().too_large, Some(huge.len()));
            // Incremental edits are ignored; the version follows.
            assert!(s.change(&uri, 2, std::slice::from_ref(&typed)));
            let snap = s.snapshot(&uri).unwrap();
            assert_eq!((snap.rope.len_bytes(), snap.version), (0, 2));
            // A full text under the cap brings it back, edits apply again.
            assert!(s.change(&uri, 3, &[full("a = 1\n"), typed.clone()]));
            assert!(!s.too_large(&uri));
            assert_eq!(s.text(&uri).as_deref(), Some("ya = 1\n"));
            // An edit that takes it over the cap drops the text.
            let big_edit = TextDocumentContentChangeEvent {
                text: huge.clone(),
                ..typed.clone()
            };
            assert!(s.change(&uri, 4, &[big_edit]));
            assert!(s.too_large(&uri));
            assert_eq!(s.text(&uri), None);
        });
    }

    #[test]
    fn an_edit_at_the_cursor_keeps_the_generation_and_stops_the_waiting_request() {
        with_session(|s| {
            let uri: Uri = "file:///tmp/c.py".parse().unwrap();
            s.open(uri.clone(), Document::new("def f(\n", 1, "python"));
            let g = generation(3);
            assert!(s.set_generation(&uri, g.clone()));
            let (tx, mut rx) = oneshot::channel();
            assert!(s.register_inflight(
                &uri,
                InFlight {
                    id: 4,
                    superseded: tx
                }
            ));
            let typed = TextDocumentContentChangeEvent {
                range: Some(Range::new(Position::new(0, 6), Position::new(0, 6))),
                range_length: None,
                text: "x".into(),
            };
            assert!(s.change(&uri, 2, &[typed]));
            assert!(
                rx.try_recv().is_ok(),
                "the request for the old version answers"
            );
            assert!(!g.cancel.is_cancelled(), "typing forward keeps the run");
            assert_eq!(s.text(&uri).as_deref(), Some("def f(x\n"));
            assert!(!s.change(&"file:///tmp/none.py".parse().unwrap(), 1, &[]));
        });
    }
}
