//! The engine's slot: its lifecycle state (starting, loading, ready, failed), the generation
//! number that tells a superseded load from the current one, and the bookkeeping the loader
//! supervises loads and restarts with (one load at a time, the latest wins, failures counted
//! for the backoff).
//!
//! It only holds state; loading, restarting and reporting live in [`crate::loader`].

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use ghostline_inference::BackendHandle;

use crate::util::lock;

/// The engine's lifecycle.
pub enum EngineState {
    /// Not loaded yet (before `initialized`).
    Starting,
    /// Loading.
    Loading,
    /// Loaded.
    Ready(BackendHandle),
    /// Could not be loaded; the message says why.
    Failed(String),
}

/// The engine and a generation number that tells a superseded load from the current one.
pub struct EngineSlot {
    pub(crate) state: Mutex<EngineState>,
    pub(crate) generation: AtomicU64,
    /// Held by the load that runs: one load at a time.
    pub(crate) load_lock: tokio::sync::Mutex<()>,
    /// The latest load asked for; a queued load that is no longer the latest is dropped.
    pub(crate) wanted: AtomicU64,
    /// Loads running now (logged; never more than one).
    pub(crate) active_loads: AtomicUsize,
    /// Consecutive engine failures and when the last one happened (restart backoff).
    pub(crate) failures: Mutex<(u32, Option<Instant>)>,
    /// The loaded backend's model server is down or refuses us (remote backends): the status
    /// stays `error` until it answers again.
    remote_down: AtomicBool,
}

impl EngineSlot {
    pub(crate) fn new() -> Self {
        EngineSlot {
            state: Mutex::new(EngineState::Starting),
            generation: AtomicU64::new(0),
            load_lock: tokio::sync::Mutex::new(()),
            wanted: AtomicU64::new(0),
            active_loads: AtomicUsize::new(0),
            failures: Mutex::new((0, None)),
            remote_down: AtomicBool::new(false),
        }
    }

    /// Whether the loaded backend's model server is down or refuses us: the status bar shows
    /// that error, and per-request `generating`/`idle` statuses would hide it.
    pub fn remote_down(&self) -> bool {
        self.remote_down.load(Ordering::SeqCst)
    }

    /// Records whether the loaded backend's model server is down.
    pub(crate) fn set_remote_down(&self, down: bool) {
        self.remote_down.store(down, Ordering::SeqCst);
    }

    /// The engine when it is loaded.
    pub fn ready(&self) -> Option<BackendHandle> {
        match &*lock(&self.state) {
            EngineState::Ready(e) => Some(e.clone()),
            _ => None,
        }
    }

    /// A short description of the state, for messages.
    pub fn describe(&self) -> String {
        match &*lock(&self.state) {
            EngineState::Starting => "the model has not started loading yet".into(),
            EngineState::Loading => "the model is still loading".into(),
            EngineState::Ready(e) => format!("{} is loaded", e.info().name),
            EngineState::Failed(m) => format!("the model could not be loaded: {m}"),
        }
    }

    /// How many engine failures in a row led to restarts (0: the engine never failed, or a
    /// failure is long past).
    pub fn failures(&self) -> u32 {
        lock(&self.failures).0
    }

    /// Starts a new load: drops the current engine (requests that hold it finish first).
    pub(crate) fn begin(&self) -> u64 {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.remote_down.store(false, Ordering::SeqCst);
        let old = std::mem::replace(&mut *lock(&self.state), EngineState::Loading);
        drop(old);
        generation
    }

    /// Stores the result of load `generation` unless a newer load started; returns whether it
    /// was stored.
    pub(crate) fn finish(&self, generation: u64, state: EngineState) -> bool {
        let mut guard = lock(&self.state);
        if self.generation.load(Ordering::SeqCst) != generation {
            return false;
        }
        *guard = state;
        true
    }
}
