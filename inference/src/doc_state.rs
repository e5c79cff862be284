//! KV state per document, kept (issue 12, lever 1): when the engine moves its FIM sequence to
//! another document, the state of the one it leaves (llama.cpp's per-sequence state plus the
//! token list mirroring it) is saved, and a document seen before gets its saved state back,
//! so that the usual common-prefix sync evaluates only what changed since.
//!
//! Two bounded LRU tiers: memory (by bytes, [`EngineConfig::doc_state_memory_bytes`]) and
//! files in the cache directory (by bytes, [`EngineConfig::doc_state_disk_bytes`]), so a
//! document comes back warm after a restart too. A file is keyed by the model identity (path,
//! size, modification time, context size) and the document key; it is written atomically
//! (temporary file, then rename) on a background thread, and carries a header (magic, version,
//! model identity, document key, token count, payload length, checksum). A file that is
//! truncated, corrupt, foreign or from another model is deleted and ignored, never given to
//! llama.cpp.
//!
//! A restored state is only a starting point: it mirrors exactly what it holds, and the
//! engine's sync against the new prompt decides what is reused, so an edited file costs only
//! the changed part. This module does not decide what a prompt is, does not evaluate anything,
//! and does not know the LSP; the document key is an opaque string (the URI).

use std::collections::VecDeque;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::LlamaStateSeqFlags;

use crate::reuse::{reusable, shared_start};
use crate::EngineConfig;

/// File magic of a saved state.
const MAGIC: &[u8; 8] = b"GHOSTKV\0";
/// Bumped whenever the file layout changes; other versions are rejected (2: the cold
/// window's sizes).
const VERSION: u32 = 2;
/// File name extension of saved states.
const EXT: &str = "kv";
/// How long the engine waits idle before it saves the current document's state.
pub(crate) const IDLE_SAVE: Duration = Duration::from_secs(2);
/// Temporary files older than this are leftovers of a crash and are removed.
const STALE_TMP: Duration = Duration::from_secs(3600);

/// `$XDG_CACHE_HOME/ghostline/kv`, else `~/.cache/ghostline/kv`: the sibling of the model
/// cache.
pub fn kv_cache_dir() -> PathBuf {
    let models = crate::model_cache_dir();
    models
        .parent()
        .map(|p| p.join("kv"))
        .unwrap_or_else(|| PathBuf::from("kv"))
}

/// The sizes (prefix, suffix tokens) a cold window's prompt was cut to.
pub(crate) type ColdSizes = (usize, usize);

/// One document's saved sequence: the tokens it holds and llama.cpp's opaque state bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Saved {
    pub tokens: Vec<LlamaToken>,
    pub bytes: Vec<u8>,
    /// The sizes (prefix, suffix tokens) of the cold window the state's prompt was cut to,
    /// if it was one: a request that comes back asks with the same window (after a restart
    /// too), whatever the engine's measured rate would choose now.
    pub cold: Option<ColdSizes>,
}

impl Saved {
    fn size(&self) -> usize {
        self.bytes.len() + self.tokens.len() * 4
    }
}

/// The memory tier: most recently used last, bounded by bytes.
#[derive(Debug)]
pub(crate) struct MemStore {
    budget: usize,
    used: usize,
    entries: VecDeque<(String, Arc<Saved>)>,
}

impl MemStore {
    pub fn new(budget: usize) -> Self {
        MemStore {
            budget,
            used: 0,
            entries: VecDeque::new(),
        }
    }

    /// The entry for `key`, marked most recently used.
    pub fn get(&mut self, key: &str) -> Option<Arc<Saved>> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        let entry = self.entries.remove(i)?;
        let saved = entry.1.clone();
        self.entries.push_back(entry);
        Some(saved)
    }

    /// Stores `saved` under `key` (replacing an older entry), evicting the least recently used
    /// entries until the total fits the budget. An entry larger than the budget is not kept.
    pub fn put(&mut self, key: &str, saved: Arc<Saved>) {
        self.remove(key);
        let size = saved.size();
        if size > self.budget {
            return;
        }
        self.used += size;
        self.entries.push_back((key.to_owned(), saved));
        while self.used > self.budget {
            match self.entries.pop_front() {
                Some((_, old)) => self.used -= old.size(),
                None => break,
            }
        }
    }

    pub fn remove(&mut self, key: &str) {
        if let Some(i) = self.entries.iter().position(|(k, _)| k == key) {
            if let Some((_, old)) = self.entries.remove(i) {
                self.used -= old.size();
            }
        }
    }

    /// Bytes held.
    pub fn used(&self) -> usize {
        self.used
    }

    /// Keys, least recently used first.
    #[cfg(test)]
    pub fn keys(&self) -> Vec<&str> {
        self.entries.iter().map(|(k, _)| k.as_str()).collect()
    }
}

/// Why a saved file was not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Reject {
    #[error("file is truncated")]
    Truncated,
    #[error("not a ghostline KV state file")]
    BadMagic,
    #[error("unsupported version {0}")]
    Version(u32),
    #[error("saved for another model or context size")]
    OtherModel,
    #[error("saved for another document")]
    OtherDocument,
    #[error("{0} tokens do not fit the context")]
    TooManyTokens(usize),
    #[error("length does not match its header")]
    Length,
    #[error("checksum mismatch")]
    Checksum,
}

/// A fast 64-bit checksum (not cryptographic): it detects truncation, bit rot and partial
/// writes, which is all a cache needs.
pub(crate) fn checksum(parts: &[&[u8]]) -> u64 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut total = 0u64;
    for part in parts {
        total += part.len() as u64;
        let mut chunks = part.chunks_exact(8);
        for c in &mut chunks {
            let w = u64::from_le_bytes(c.try_into().unwrap_or([0; 8]));
            h = (h ^ w).wrapping_mul(K).rotate_left(29);
        }
        for &b in chunks.remainder() {
            h = (h ^ u64::from(b)).wrapping_mul(K).rotate_left(29);
        }
        // Part boundaries count, so ("ab", "c") and ("a", "bc") differ.
        h = (h ^ total).wrapping_mul(K);
    }
    h ^ (h >> 32)
}

fn tokens_bytes(tokens: &[LlamaToken]) -> Vec<u8> {
    tokens.iter().flat_map(|t| t.0.to_le_bytes()).collect()
}

/// The file image of `saved` for `model_id` and `key`.
pub(crate) fn encode(model_id: &str, key: &str, saved: &Saved) -> Vec<u8> {
    let toks = tokens_bytes(&saved.tokens);
    let mut out =
        Vec::with_capacity(64 + model_id.len() + key.len() + toks.len() + saved.bytes.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(model_id.len() as u32).to_le_bytes());
    out.extend_from_slice(model_id.as_bytes());
    out.extend_from_slice(&(key.len() as u32).to_le_bytes());
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(&(saved.tokens.len() as u32).to_le_bytes());
    let (cold_prefix, cold_suffix) = saved.cold.unwrap_or((0, 0));
    out.extend_from_slice(&(cold_prefix as u32).to_le_bytes());
    out.extend_from_slice(&(cold_suffix as u32).to_le_bytes());
    out.extend_from_slice(&(saved.bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(&checksum(&[&toks, &saved.bytes]).to_le_bytes());
    out.extend_from_slice(&toks);
    out.extend_from_slice(&saved.bytes);
    out
}

/// Reads a file image back, checking everything the header promises.
pub(crate) fn decode(
    data: &[u8],
    model_id: &str,
    key: &str,
    max_tokens: usize,
) -> Result<Saved, Reject> {
    let mut r = Reader { data, at: 0 };
    if r.take(8)? != MAGIC {
        return Err(Reject::BadMagic);
    }
    let version = r.u32()?;
    if version != VERSION {
        return Err(Reject::Version(version));
    }
    let n = r.u32()? as usize;
    if r.take(n)? != model_id.as_bytes() {
        return Err(Reject::OtherModel);
    }
    let n = r.u32()? as usize;
    if r.take(n)? != key.as_bytes() {
        return Err(Reject::OtherDocument);
    }
    let n_tokens = r.u32()? as usize;
    if n_tokens > max_tokens {
        return Err(Reject::TooManyTokens(n_tokens));
    }
    let cold = match (r.u32()? as usize, r.u32()? as usize) {
        (0, 0) => None,
        sizes => Some(sizes),
    };
    let payload_len = r.u64()?;
    let sum = r.u64()?;
    let rest = data.len() - r.at;
    if (rest as u64) != n_tokens as u64 * 4 + payload_len {
        return Err(Reject::Length);
    }
    let toks = r.take(n_tokens * 4)?;
    let payload = r.take(payload_len as usize)?;
    if checksum(&[toks, payload]) != sum {
        return Err(Reject::Checksum);
    }
    let tokens = toks
        .chunks_exact(4)
        .map(|c| LlamaToken::new(i32::from_le_bytes([c[0], c[1], c[2], c[3]])))
        .collect();
    Ok(Saved {
        tokens,
        bytes: payload.to_vec(),
        cold,
    })
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Reject> {
        let end = self.at.checked_add(n).ok_or(Reject::Truncated)?;
        let s = self.data.get(self.at..end).ok_or(Reject::Truncated)?;
        self.at = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, Reject> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64, Reject> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

/// The disk tier: one file per (model, document), least recently used (by modification time)
/// removed first when the directory holds more than the budget.
#[derive(Debug)]
pub(crate) struct DiskStore {
    dir: PathBuf,
    budget: u64,
    model_id: String,
    max_tokens: usize,
}

impl DiskStore {
    pub fn new(dir: PathBuf, budget: u64, model_id: String, max_tokens: usize) -> Self {
        DiskStore {
            dir,
            budget,
            model_id,
            max_tokens,
        }
    }

    /// The file that holds `key`'s state for this model.
    pub fn path_for(&self, key: &str) -> PathBuf {
        let name = checksum(&[self.model_id.as_bytes(), b"\0", key.as_bytes()]);
        self.dir.join(format!("{name:016x}.{EXT}"))
    }

    /// The file that holds the engine's measured prompt rate for this model (text).
    fn rate_path(&self) -> PathBuf {
        let name = checksum(&[self.model_id.as_bytes(), b"\0rate"]);
        self.dir.join(format!("{name:016x}.rate"))
    }

    /// The prompt rate saved for this model, if a sane one is.
    pub fn read_rate(&self) -> Option<f64> {
        let text = std::fs::read_to_string(self.rate_path()).ok()?;
        text.trim()
            .parse::<f64>()
            .ok()
            .filter(|r| r.is_finite() && *r > 0.0 && *r < 1e7)
    }

    /// Saves the prompt rate (atomically).
    pub fn write_rate(&self, rate: f64) -> std::io::Result<()> {
        self.write_atomic(&self.rate_path(), format!("{rate:.1}\n").as_bytes())
    }

    /// Writes atomically: a reader sees the old file, the new one, or none, never a part.
    pub fn write(&self, key: &str, saved: &Saved) -> std::io::Result<()> {
        let image = encode(&self.model_id, key, saved);
        self.write_atomic(&self.path_for(key), &image)?;
        self.evict();
        Ok(())
    }

    fn write_atomic(&self, path: &std::path::Path, image: &[u8]) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let tmp = self
            .dir
            .join(format!(".tmp-{}-{nanos}", std::process::id()));
        let result = (|| {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(image)?;
            f.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// The saved state of `key`, if a valid one exists; an invalid file is deleted.
    pub fn read(&self, key: &str) -> Option<Saved> {
        let path = self.path_for(key);
        let data = std::fs::read(&path).ok()?;
        match decode(&data, &self.model_id, key, self.max_tokens) {
            Ok(saved) => {
                // Mark it recently used.
                if let Ok(f) = std::fs::File::options().append(true).open(&path) {
                    let _ = f.set_modified(SystemTime::now());
                }
                Some(saved)
            }
            Err(why) => {
                tracing::warn!(path = %path.display(), %why, "ignoring a saved KV state");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Removes the least recently used files until the directory fits the budget, and
    /// leftovers of interrupted writes.
    pub fn evict(&self) {
        let Ok(dir) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let now = SystemTime::now();
        let mut files = Vec::new();
        for entry in dir.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with(".tmp-") {
                if now.duration_since(modified).unwrap_or_default() > STALE_TMP {
                    let _ = std::fs::remove_file(&path);
                }
                continue;
            }
            if path.extension().is_some_and(|e| e == EXT) && meta.is_file() {
                files.push((modified, meta.len(), path));
            }
        }
        files.sort();
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        for (_, len, path) in files {
            if total <= self.budget {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                total -= len;
            }
        }
    }

    #[cfg(test)]
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

/// A message to the disk writer.
enum WriterMsg {
    /// Save one document's state.
    State(String, Arc<Saved>),
    /// Answer once every write queued before this one is done.
    Flush(mpsc::Sender<()>),
}

/// Writes to the disk tier on its own thread, so saving never delays a request.
struct DiskWriter {
    tx: Option<mpsc::Sender<WriterMsg>>,
    thread: Option<JoinHandle<()>>,
}

impl DiskWriter {
    fn start(store: Arc<DiskStore>) -> Option<Self> {
        let (tx, rx) = mpsc::channel::<WriterMsg>();
        let thread = std::thread::Builder::new()
            .name("ghostline-kv-writer".into())
            .spawn(move || {
                for msg in rx {
                    match msg {
                        WriterMsg::State(key, saved) => {
                            if let Err(e) = store.write(&key, &saved) {
                                tracing::warn!(error = %e, "could not save a KV state to disk");
                            }
                        }
                        WriterMsg::Flush(done) => {
                            let _ = done.send(());
                        }
                    }
                }
            })
            .ok()?;
        Some(DiskWriter {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    fn send(&self, key: &str, saved: Arc<Saved>) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(WriterMsg::State(key.to_owned(), saved));
        }
    }

    /// Waits (at most `timeout`) until the writes queued so far are on disk.
    fn flush(&self, timeout: Duration) -> bool {
        let Some(tx) = &self.tx else {
            return true;
        };
        let (done_tx, done) = mpsc::channel();
        tx.send(WriterMsg::Flush(done_tx)).is_ok() && done.recv_timeout(timeout).is_ok()
    }
}

impl Drop for DiskWriter {
    /// Finishes the queued writes.
    fn drop(&mut self) {
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What [`DocStates::prepare`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Switch {
    /// The sequence keeps what it holds (the request names no document, or nothing saved
    /// shares a longer start with the prompt; a shared start is still reused).
    Kept,
    /// A saved state was put in the sequence.
    Restored {
        tokens: usize,
        from_disk: bool,
        /// It was a prefilled start, not the document's own last state.
        prefilled: bool,
    },
}

/// Separates a document's key from the name of one of its prefilled starts. Not a character
/// URIs contain.
const ANCHOR_SEP: char = '\u{1}';

/// The key of the prefilled start `anchor` of `doc`.
pub(crate) fn anchor_key(doc: &str, anchor: &str) -> String {
    format!("{doc}{ANCHOR_SEP}{anchor}")
}

/// Whether `key` names a prefilled start (kept in memory only: it is cheap to redo and
/// stale after the next edit).
fn is_anchor(key: &str) -> bool {
    key.contains(ANCHOR_SEP)
}

/// The document a key belongs to.
fn doc_of(key: &str) -> &str {
    key.split(ANCHOR_SEP).next().unwrap_or(key)
}

/// Restoring a state costs a copy of its bytes (milliseconds); it is only worth it when it
/// saves evaluating more than this many tokens.
const MIN_GAIN: usize = 8;

/// The candidate to restore: the index of the one that spares the most tokens of the prompt
/// (see [`crate::reuse::reusable`]: the shared start and a shiftable suffix), when it beats
/// what the sequence holds (`live` tokens spared) by more than [`MIN_GAIN`]. Ties go to the
/// earlier candidate. A prefilled start shares more of the prefix after an edit than the
/// document's last state, but holds no suffix: counting only the shared start restored it,
/// and the whole suffix was evaluated again.
pub(crate) fn best_candidate(live: usize, shared: &[usize]) -> Option<usize> {
    let (i, &best) = shared
        .iter()
        .enumerate()
        .max_by(|(i, a), (j, b)| a.cmp(b).then(j.cmp(i)))?;
    (best > live + MIN_GAIN).then_some(i)
}

/// The engine's per-document states. All calls come from the engine thread.
pub(crate) struct DocStates {
    /// The document whose state the FIM sequence holds.
    current: Option<String>,
    mem: MemStore,
    disk: Option<Arc<DiskStore>>,
    writer: Option<DiskWriter>,
    /// Token list last saved for `current` (skip saving an unchanged state again).
    saved_tokens: Option<Vec<LlamaToken>>,
    /// The cold window sizes of the prompt the sequence holds (see [`Saved::cold`]).
    cold: Option<ColdSizes>,
}

/// The identity of a model file and context: a saved state is only valid for the same weights
/// and the same cache shape.
pub(crate) fn model_identity(config: &EngineConfig, n_ctx: usize) -> String {
    let path = std::fs::canonicalize(&config.model_path).unwrap_or(config.model_path.clone());
    let meta = std::fs::metadata(&path).ok();
    let size = meta.as_ref().map(|m| m.len()).unwrap_or(0);
    let mtime = meta
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{}|{size}|{mtime}|ctx{n_ctx}|llama-cpp-2 0.1.160",
        path.display()
    )
}

impl DocStates {
    pub fn new(config: &EngineConfig, n_ctx: usize) -> Self {
        let disk = (config.doc_state_disk_bytes > 0).then(|| {
            let dir = config.doc_state_dir.clone().unwrap_or_else(kv_cache_dir);
            Arc::new(DiskStore::new(
                dir,
                config.doc_state_disk_bytes,
                model_identity(config, n_ctx),
                n_ctx,
            ))
        });
        let writer = disk.clone().and_then(DiskWriter::start);
        DocStates {
            current: None,
            mem: MemStore::new(config.doc_state_memory_bytes),
            disk,
            writer,
            saved_tokens: None,
            cold: None,
        }
    }

    /// Makes sequence `seq` (mirrored by `tokens`) the working state of `key` (a document, or
    /// a prefilled start of one, see [`anchor_key`]) for `prompt`, so that the engine's sync
    /// evaluates as little as possible: of the states saved for the key's document (its own
    /// last state, in memory or on disk, and its prefilled starts) the one that shares the
    /// longest start with `prompt` is restored when it shares more than the sequence holds
    /// (by more than [`MIN_GAIN`] tokens). What the sequence held is saved first when it
    /// belonged to another key or is replaced.
    pub fn prepare(
        &mut self,
        ctx: &mut LlamaContext,
        seq: i32,
        tokens: &mut Vec<LlamaToken>,
        key: &str,
        prompt: &[LlamaToken],
    ) -> Switch {
        let doc = doc_of(key);
        let leaving = self.current.as_deref() != Some(key);
        if leaving {
            self.save_current(ctx, seq, tokens);
            self.cold = None;
        }
        let mut candidates: Vec<(String, Arc<Saved>, bool)> = self
            .mem
            .entries
            .iter()
            .filter(|(k, _)| doc_of(k) == doc)
            .map(|(k, v)| (k.clone(), v.clone(), false))
            .collect();
        let own_in_memory = candidates.iter().any(|(k, _, _)| k == doc);
        if !own_in_memory && self.current.as_deref() != Some(doc) && leaving {
            if let Some(saved) = self.load_from_disk(doc) {
                candidates.push((doc.to_owned(), saved, true));
            }
        }
        let shared: Vec<usize> = candidates
            .iter()
            .map(|(_, s, _)| reusable(&s.tokens, prompt))
            .collect();
        let live = reusable(tokens, prompt);
        let chosen = best_candidate(live, &shared).map(|i| candidates.swap_remove(i));
        let Some((from, saved, from_disk)) = chosen else {
            if leaving {
                self.current = Some(key.to_owned());
                self.saved_tokens = None;
            }
            return Switch::Kept;
        };
        if !leaving {
            // The sequence's state is replaced: keep it (the chosen state is held in `saved`
            // even when this overwrites its entry).
            self.save_current(ctx, seq, tokens);
        }
        let unchanged_entry = leaving && from == key;
        self.current = Some(key.to_owned());
        self.saved_tokens = None;
        let _ = self.mem.get(&from);
        let _ = ctx.kv_cache_seq_rm(seq, None, None);
        tokens.clear();
        // SAFETY: the bytes were produced by `state_seq_get_data_ext` of a context of this
        // model with this context size: in memory by this very context, on disk checked by the
        // header's model identity (path, size, mtime, context size) and checksum. llama.cpp
        // validates the layout again and reports a mismatch by returning 0.
        let ok =
            unsafe { ctx.state_seq_set_data_ext(&saved.bytes, seq, LlamaStateSeqFlags::empty()) };
        if !ok {
            tracing::warn!(
                key = from,
                "could not restore a saved KV state; evaluating afresh"
            );
            let _ = ctx.kv_cache_seq_rm(seq, None, None);
            self.mem.remove(&from);
            return Switch::Kept;
        }
        tokens.extend_from_slice(&saved.tokens);
        self.cold = saved.cold;
        if unchanged_entry {
            self.saved_tokens = Some(saved.tokens.clone());
        }
        let prefilled = is_anchor(&from);
        tracing::info!(
            key,
            from,
            tokens = tokens.len(),
            from_disk,
            prefilled,
            "restored a saved KV state"
        );
        Switch::Restored {
            tokens: tokens.len(),
            from_disk,
            prefilled,
        }
    }

    /// The longest start of `prompt` that a request for `doc` would find cached: in what the
    /// sequence holds (`live`) or in a saved state of the document (its own, also from disk,
    /// and its prefilled starts). Nothing is restored. The start only: it decides whether a
    /// cold place needs the small window, and a shiftable run would count the small window's
    /// own text found again inside the whole one.
    pub fn best_shared(&mut self, doc: &str, live: &[LlamaToken], prompt: &[LlamaToken]) -> usize {
        if self.current.as_deref() != Some(doc) {
            self.load_if_absent(doc);
        }
        self.mem
            .entries
            .iter()
            .filter(|(k, _)| doc_of(k) == doc)
            .map(|(_, s)| shared_start(&s.tokens, prompt))
            .chain([shared_start(live, prompt)])
            .max()
            .unwrap_or(0)
    }

    /// The cold window sizes `doc`'s prompt was last cut to: of the state the sequence holds
    /// when it is `doc`'s, else of `doc`'s saved state (read from disk if needed); `None`
    /// when that prompt was not a cold window's.
    pub fn cold_size(&mut self, doc: &str) -> Option<ColdSizes> {
        if self.current.as_deref() == Some(doc) {
            return self.cold;
        }
        self.load_if_absent(doc);
        self.mem
            .entries
            .iter()
            .find(|(k, _)| k == doc)
            .and_then(|(_, s)| s.cold)
    }

    /// The engine's prompt rate saved by an earlier run with this model (`None` without a
    /// disk tier or a saved rate).
    pub fn saved_rate(&self) -> Option<f64> {
        self.disk.as_ref()?.read_rate()
    }

    /// Saves the engine's prompt rate for later runs (nothing without a disk tier).
    pub fn save_rate(&self, rate: f64) {
        if let Some(disk) = &self.disk {
            if let Err(e) = disk.write_rate(rate) {
                tracing::debug!("could not save the prompt rate: {e}");
            }
        }
    }

    /// Records that the sequence now holds a prompt cut to the cold window `sizes` (`None`:
    /// a whole window's), saved with the state.
    pub fn set_cold(&mut self, sizes: Option<ColdSizes>) {
        self.cold = sizes;
    }

    /// Reads `doc`'s own state from the disk tier into memory unless memory holds one.
    fn load_if_absent(&mut self, doc: &str) {
        if !self.mem.entries.iter().any(|(k, _)| k == doc) {
            self.load_from_disk(doc);
        }
    }

    /// `doc`'s own state from the disk tier, now also in memory (`None` when there is no
    /// valid one on disk).
    fn load_from_disk(&mut self, doc: &str) -> Option<Arc<Saved>> {
        let saved = Arc::new(self.disk.as_ref()?.read(doc)?);
        self.mem.put(doc, saved.clone());
        Some(saved)
    }

    /// Whether the prefilled start `key` is held in memory with all of `tokens`.
    pub fn holds(&self, key: &str, tokens: &[LlamaToken]) -> bool {
        self.mem
            .entries
            .iter()
            .any(|(k, v)| k == key && v.tokens.starts_with(tokens))
    }

    /// Waits (at most `timeout`) until the states saved so far are on disk; whether they are.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.writer.as_ref().is_none_or(|w| w.flush(timeout))
    }

    /// Saves the current document's state (memory and disk) if it changed since it was last
    /// saved. The engine calls it when it leaves a document, when it is idle and when the
    /// server shuts down ([`crate::Engine::persist`]).
    pub fn save_current(&mut self, ctx: &LlamaContext, seq: i32, tokens: &[LlamaToken]) {
        let Some(key) = self.current.clone() else {
            return;
        };
        if tokens.is_empty() || self.saved_tokens.as_deref() == Some(tokens) {
            return;
        }
        let Some(bytes) = capture(ctx, seq) else {
            return;
        };
        let saved = Arc::new(Saved {
            tokens: tokens.to_vec(),
            bytes,
            cold: self.cold,
        });
        self.mem.put(&key, saved.clone());
        if let Some(w) = self.writer.as_ref().filter(|_| !is_anchor(&key)) {
            w.send(&key, saved);
        }
        self.saved_tokens = Some(tokens.to_vec());
        tracing::debug!(
            doc = key,
            tokens = tokens.len(),
            mem = self.mem.used(),
            "saved a document's KV state"
        );
    }
}

/// Copies sequence `seq`'s state out of the context.
fn capture(ctx: &LlamaContext, seq: i32) -> Option<Vec<u8>> {
    let flags = LlamaStateSeqFlags::empty();
    let size = ctx.state_seq_get_size_ext(seq, flags);
    if size == 0 {
        return None;
    }
    let mut buf = vec![0u8; size];
    // SAFETY: `buf` holds `size` bytes, the size llama.cpp reported for this sequence just now
    // on this thread, with no evaluation in between.
    let n = unsafe { ctx.state_seq_get_data_ext(buf.as_mut_ptr(), seq, flags) };
    (n == size).then_some(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn saved(n: usize, fill: u8) -> Arc<Saved> {
        Arc::new(Saved {
            tokens: (0..n as i32).map(LlamaToken::new).collect(),
            bytes: vec![fill; 100],
            cold: (fill % 2 == 1).then_some((n, 8)),
        })
    }

    #[test]
    fn the_state_sharing_the_longest_start_wins_when_it_beats_the_sequence() {
        // Nothing saved, or nothing better than what the sequence holds.
        assert_eq!(best_candidate(100, &[]), None);
        assert_eq!(best_candidate(100, &[50, 100, 108]), None);
        // More than MIN_GAIN tokens better: the longest; ties go to the first.
        assert_eq!(best_candidate(100, &[50, 300, 109]), Some(1));
        assert_eq!(best_candidate(0, &[40, 40]), Some(0));
        let t = |v: &[i32]| v.iter().map(|&x| LlamaToken::new(x)).collect::<Vec<_>>();
        assert_eq!(shared_start(&t(&[1, 2, 3]), &t(&[1, 2, 4])), 2);
        assert_eq!(shared_start(&t(&[]), &t(&[1])), 0);
    }

    #[test]
    fn prefilled_starts_are_named_under_their_document() {
        let key = anchor_key("file:///a.py", "64");
        assert!(is_anchor(&key) && !is_anchor("file:///a.py"));
        assert_eq!(doc_of(&key), "file:///a.py");
        assert_eq!(doc_of("file:///a.py"), "file:///a.py");
    }

    #[test]
    fn memory_evicts_least_recently_used_by_bytes() {
        // Each entry: 100 payload bytes + 4 per token.
        let mut m = MemStore::new(330);
        m.put("a", saved(0, 1));
        m.put("b", saved(0, 2));
        m.put("c", saved(0, 3));
        assert_eq!(m.keys(), ["a", "b", "c"]);
        assert!(m.get("a").is_some()); // a is now the most recent
        m.put("d", saved(0, 4));
        assert_eq!(m.keys(), ["c", "a", "d"]);
        assert_eq!(m.used(), 300);
        // Replacing an entry does not count it twice.
        m.put("c", saved(5, 9));
        assert_eq!(m.keys(), ["a", "d", "c"]);
        assert_eq!(m.used(), 320);
        // An entry bigger than the budget is not kept (and evicts nothing).
        m.put("huge", saved(100, 0));
        assert_eq!(m.keys(), ["a", "d", "c"]);
        assert!(m.get("huge").is_none());
    }

    #[test]
    fn header_round_trips_and_rejects_foreign_or_damaged_images() {
        let s = saved(7, 42);
        let image = encode("model-1", "file:///a.py", &s);
        assert_eq!(decode(&image, "model-1", "file:///a.py", 4096).unwrap(), *s);
        assert_eq!(
            decode(&image, "model-2", "file:///a.py", 4096),
            Err(Reject::OtherModel)
        );
        assert_eq!(
            decode(&image, "model-1", "file:///b.py", 4096),
            Err(Reject::OtherDocument)
        );
        assert_eq!(
            decode(&image, "model-1", "file:///a.py", 5),
            Err(Reject::TooManyTokens(7))
        );
        // Truncated anywhere: header or payload.
        for cut in [0, 5, 20, image.len() - 1] {
            assert!(
                decode(&image[..cut], "model-1", "file:///a.py", 4096).is_err(),
                "cut at {cut}"
            );
        }
        // One flipped bit in the payload or in the tokens.
        for at in [image.len() - 1, image.len() - 100 - 1] {
            let mut bad = image.clone();
            bad[at] ^= 0x10;
            assert_eq!(
                decode(&bad, "model-1", "file:///a.py", 4096),
                Err(Reject::Checksum)
            );
        }
        let mut bad = image.clone();
        bad[0] = b'X';
        assert_eq!(
            decode(&bad, "model-1", "file:///a.py", 4096),
            Err(Reject::BadMagic)
        );
        let mut bad = image.clone();
        bad[8] = 99;
        assert_eq!(
            decode(&bad, "model-1", "file:///a.py", 4096),
            Err(Reject::Version(99))
        );
        let mut long = image.clone();
        long.push(0);
        assert_eq!(
            decode(&long, "model-1", "file:///a.py", 4096),
            Err(Reject::Length)
        );
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    #[test]
    fn disk_round_trips_and_deletes_a_corrupt_or_truncated_file() {
        let tmp = tempfile::tempdir().unwrap();
        let store = DiskStore::new(tmp.path().join("kv"), 1 << 20, "m".into(), 4096);
        assert_eq!(store.read("doc"), None);
        store.write("doc", &saved(3, 7)).unwrap();
        // Only the final file is there: no temporary file is left behind.
        assert_eq!(files(store.dir()).len(), 1);
        assert!(files(store.dir())[0].ends_with(".kv"));
        assert_eq!(store.read("doc"), Some((*saved(3, 7)).clone()));

        // Truncated (a partial write by something else): rejected and deleted.
        let path = store.path_for("doc");
        let data = std::fs::read(&path).unwrap();
        std::fs::write(&path, &data[..data.len() / 2]).unwrap();
        assert_eq!(store.read("doc"), None);
        assert!(!path.exists());

        // Corrupt payload.
        store.write("doc", &saved(3, 7)).unwrap();
        let mut data = std::fs::read(&path).unwrap();
        let last = data.len() - 1;
        data[last] ^= 1;
        std::fs::write(&path, &data).unwrap();
        assert_eq!(store.read("doc"), None);
        assert!(!path.exists());

        // A file of another model at this document's path (e.g. a name collision).
        let other = DiskStore::new(tmp.path().join("kv"), 1 << 20, "other".into(), 4096);
        other.write("doc", &saved(3, 7)).unwrap();
        std::fs::rename(other.path_for("doc"), &path).unwrap();
        assert_eq!(store.read("doc"), None);
        assert!(!path.exists());
    }

    #[test]
    fn the_cold_window_sizes_and_the_prompt_rate_survive_a_restart() {
        let tmp = tempfile::tempdir().unwrap();
        let store = DiskStore::new(tmp.path().join("kv"), 1 << 20, "m".into(), 4096);
        store.write("cold", &saved(3, 7)).unwrap();
        store.write("whole", &saved(3, 8)).unwrap();
        assert_eq!(store.read("cold").unwrap().cold, Some((3, 8)));
        assert_eq!(store.read("whole").unwrap().cold, None);
        assert_eq!(store.read_rate(), None);
        store.write_rate(104.26).unwrap();
        assert_eq!(store.read_rate(), Some(104.3));
        // Per model; nonsense is ignored.
        let other = DiskStore::new(tmp.path().join("kv"), 1 << 20, "other".into(), 4096);
        assert_eq!(other.read_rate(), None);
        std::fs::write(store.rate_path(), "fast\n").unwrap();
        assert_eq!(store.read_rate(), None);
        std::fs::write(store.rate_path(), "-3\n").unwrap();
        assert_eq!(store.read_rate(), None);
    }

    #[test]
    fn a_flush_waits_for_the_queued_writes() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Arc::new(DiskStore::new(
            tmp.path().join("kv"),
            1 << 30,
            "m".into(),
            1 << 20,
        ));
        let writer = DiskWriter::start(store.clone()).unwrap();
        // Large enough that the writes are still queued when the flush is sent.
        for i in 0..8 {
            writer.send(&format!("doc{i}"), saved(200_000, i as u8));
        }
        assert!(writer.flush(Duration::from_secs(60)));
        for i in 0..8 {
            let key = format!("doc{i}");
            assert_eq!(
                store.read(&key).map(|s| s.tokens.len()),
                Some(200_000),
                "{key}"
            );
        }
    }

    #[test]
    fn disk_evicts_least_recently_used_files_by_bytes() {
        let tmp = tempfile::tempdir().unwrap();
        let one = encode("m", "a", &saved(0, 1)).len() as u64;
        let store = DiskStore::new(tmp.path().to_owned(), one * 2 + one / 2, "m".into(), 4096);
        let t0 = SystemTime::now() - Duration::from_secs(100);
        store.write("a", &saved(0, 1)).unwrap();
        store.write("b", &saved(0, 2)).unwrap();
        // Deterministic ages: a older than b, then a read makes a the most recent.
        let age = |k: &str, secs: u64| {
            let f = std::fs::File::options()
                .append(true)
                .open(store.path_for(k))
                .unwrap();
            f.set_modified(t0 + Duration::from_secs(secs)).unwrap();
        };
        age("a", 1);
        age("b", 2);
        assert!(store.read("a").is_some()); // touches a
        store.write("c", &saved(0, 3)).unwrap();
        assert!(store.path_for("a").exists());
        assert!(
            !store.path_for("b").exists(),
            "b was the least recently used"
        );
        assert!(store.path_for("c").exists());
    }

    #[test]
    fn stale_temporary_files_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let store = DiskStore::new(tmp.path().to_owned(), 1 << 20, "m".into(), 4096);
        let stale = tmp.path().join(".tmp-1-1");
        let fresh = tmp.path().join(".tmp-1-2");
        std::fs::write(&stale, b"partial").unwrap();
        std::fs::write(&fresh, b"partial").unwrap();
        let f = std::fs::File::options().append(true).open(&stale).unwrap();
        f.set_modified(SystemTime::now() - STALE_TMP * 2).unwrap();
        store.evict();
        assert!(!stale.exists());
        assert!(fresh.exists(), "a write in progress is left alone");
        // A temporary file is never read as a state.
        assert_eq!(store.read("doc"), None);
    }
}
