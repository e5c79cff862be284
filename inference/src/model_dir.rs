//! Where models live: the one definition of the model folder and the models' file names.
//!
//! `scripts/fetch-model.sh` stores models here; the engine, `ghostline complete` and the
//! server's default model read it from here. This file depends on nothing but `std` so that
//! the test and benchmark crate (`tests/`, which drives the binary and does not link the
//! engine) compiles the same file (`#[path]` in `tests/src/lib.rs`) instead of a copy.

use std::path::PathBuf;

/// The file name of the default model (Qwen2.5-Coder 1.5B, Q4_K_M) inside the model folder.
pub const DEFAULT_MODEL_FILE: &str = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf";

/// The file name of the small model (Qwen2.5-Coder 0.5B, Q4_K_M) inside the model folder.
pub const SMALL_MODEL_FILE: &str = "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf";

/// Where the default model lives: `$GHOSTLINE_MODEL` if set, else
/// `$XDG_CACHE_HOME/ghostline/models/…`, else `~/.cache/ghostline/models/…`.
pub fn default_model_path() -> PathBuf {
    if let Some(p) = std::env::var_os("GHOSTLINE_MODEL").filter(|p| !p.is_empty()) {
        return PathBuf::from(p);
    }
    model_cache_dir().join(DEFAULT_MODEL_FILE)
}

/// `$XDG_CACHE_HOME/ghostline/models`, else `~/.cache/ghostline/models`.
pub fn model_cache_dir() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from(".cache"));
    cache.join("ghostline").join("models")
}
