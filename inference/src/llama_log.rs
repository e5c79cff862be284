//! Routes llama.cpp's and ggml's log output into `tracing` (target `llama_cpp`), never to
//! stdout or stderr, and keeps the most recent error lines so that a failed load can say why.
//!
//! llama.cpp reports most load failures only through its log (the API returns a null pointer),
//! so [`recent_errors`] is how [`crate::LoadError::Llama`] gets its reason.

use std::collections::VecDeque;
use std::ffi::{c_char, c_void, CStr};
use std::sync::{Mutex, Once};

use llama_cpp_sys_2 as sys;

static INSTALL: Once = Once::new();
static RECENT_ERRORS: Mutex<VecDeque<String>> = Mutex::new(VecDeque::new());
/// Text of a line that arrives in pieces (no trailing newline yet), with its level.
static PARTIAL: Mutex<(sys::ggml_log_level, String)> = Mutex::new((0, String::new()));
const KEEP_ERRORS: usize = 8;

/// Installs the log callback for llama.cpp and ggml; idempotent.
pub fn install() {
    INSTALL.call_once(|| unsafe {
        sys::llama_log_set(Some(callback), std::ptr::null_mut());
        sys::ggml_log_set(Some(callback), std::ptr::null_mut());
    });
}

/// Forgets the error lines seen so far (call before an operation whose errors you want).
pub fn clear_errors() {
    if let Ok(mut errors) = RECENT_ERRORS.lock() {
        errors.clear();
    }
}

/// Error and warning lines logged since the last [`clear_errors`], oldest first, joined.
pub fn recent_errors() -> Option<String> {
    let errors = RECENT_ERRORS.lock().ok()?;
    if errors.is_empty() {
        return None;
    }
    Some(errors.iter().cloned().collect::<Vec<_>>().join("; "))
}

unsafe extern "C" fn callback(level: sys::ggml_log_level, text: *const c_char, _: *mut c_void) {
    if text.is_null() {
        return;
    }
    let text = unsafe { CStr::from_ptr(text) }.to_string_lossy();
    // Never unwind into C.
    let _ = std::panic::catch_unwind(|| handle(level, &text));
}

fn handle(level: sys::ggml_log_level, text: &str) {
    let Ok(mut partial) = PARTIAL.lock() else {
        return;
    };
    if level != sys::GGML_LOG_LEVEL_CONT {
        if !partial.1.is_empty() {
            let (l, line) = std::mem::take(&mut *partial);
            emit(l, &line);
        }
        partial.0 = level;
    }
    partial.1.push_str(text);
    if partial.1.ends_with('\n') {
        let (l, line) = std::mem::take(&mut *partial);
        emit(l, &line);
    }
}

fn emit(level: sys::ggml_log_level, line: &str) {
    let line = line.trim_end();
    if line.is_empty() {
        return;
    }
    match level {
        sys::GGML_LOG_LEVEL_ERROR | sys::GGML_LOG_LEVEL_WARN => {
            if level == sys::GGML_LOG_LEVEL_ERROR {
                tracing::error!(target: "llama_cpp", "{line}");
            } else {
                tracing::warn!(target: "llama_cpp", "{line}");
            }
            if let Ok(mut errors) = RECENT_ERRORS.lock() {
                if errors.len() == KEEP_ERRORS {
                    errors.pop_front();
                }
                errors.push_back(line.to_owned());
            }
        }
        sys::GGML_LOG_LEVEL_INFO => tracing::debug!(target: "llama_cpp", "{line}"),
        _ => tracing::trace!(target: "llama_cpp", "{line}"),
    }
}
