//! Shared helpers for the engine's integration tests: model paths and engine construction.

use std::path::PathBuf;

use ghostline_inference::{Engine, EngineConfig};

/// The default model (Qwen2.5-Coder-1.5B-Instruct Q4_K_M), as `make model` stores it.
pub fn default_model() -> PathBuf {
    ghostline_inference::default_model_path()
}

/// The faster, weaker 0.5B model, for tests that only need the mechanics. Falls back to the
/// default model when it has not been fetched.
pub fn small_model() -> PathBuf {
    let p = default_model().with_file_name(ghostline_inference::SMALL_MODEL_FILE);
    if p.exists() {
        p
    } else {
        default_model()
    }
}

/// Serialises the tests of a binary that run a model: two engines evaluating at once on two
/// cores would make the timing assertions (cancellation, deadlines) meaningless.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn engine(path: PathBuf) -> Engine {
    let mut config = EngineConfig::new(&path);
    config.threads = 2;
    config.context_size = 4096;
    Engine::start(config).unwrap_or_else(|e| panic!("cannot load {}: {e}", path.display()))
}
