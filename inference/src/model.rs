//! Loading a GGUF model (memory-mapped) and reading what the engine needs from it: vocabulary,
//! special tokens, FIM format, chat template, metadata.
//!
//! Failures are typed and name the path: a missing file, a file that is not GGUF, and a file
//! llama.cpp refuses (with llama.cpp's own reason, taken from its log). Nothing here panics on
//! a bad file. This module does not evaluate anything; the engine does.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::token::LlamaToken;

use crate::fim::{self, FimFormat};
use crate::{llama_log, EngineConfig, LoadError};

/// What the rest of the program may know about the loaded model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInfo {
    /// The GGUF file.
    pub path: PathBuf,
    /// `general.name`, else the file name.
    pub name: String,
    /// `general.architecture`.
    pub architecture: String,
    /// Parameter count.
    pub n_params: u64,
    /// Size of the weights in bytes.
    pub size_bytes: u64,
    /// Context length the model was trained with.
    pub n_ctx_train: u32,
    /// The FIM format in use, if the model (or the configuration) has one.
    pub fim: Option<FimFormat>,
    /// Whether the model ships a chat template.
    pub has_chat_template: bool,
}

/// The process-wide llama.cpp backend (it may be initialised only once per process).
pub(crate) fn backend() -> &'static LlamaBackend {
    static BACKEND: OnceLock<LlamaBackend> = OnceLock::new();
    BACKEND.get_or_init(|| {
        llama_log::install();
        LlamaBackend::init().expect("llama.cpp backend initialises once per process")
    })
}

/// Checks the file before llama.cpp sees it, so common mistakes get a precise message.
fn check_file(path: &Path) -> Result<(), LoadError> {
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => LoadError::NotFound {
            path: path.to_owned(),
        },
        _ => LoadError::Io {
            path: path.to_owned(),
            source: e,
        },
    })?;
    if !meta.is_file() {
        return Err(LoadError::NotRegularFile {
            path: path.to_owned(),
            kind: file_kind(&meta),
        });
    }
    let mut magic = [0u8; 4];
    let mut file = open_nonblocking(path).map_err(|e| LoadError::Io {
        path: path.to_owned(),
        source: e,
    })?;
    // The path may have been replaced between the two looks: check what was opened.
    match file.metadata() {
        Ok(m) if !m.is_file() => {
            return Err(LoadError::NotRegularFile {
                path: path.to_owned(),
                kind: file_kind(&m),
            })
        }
        _ => {}
    }
    let n = read_up_to(&mut file, &mut magic).map_err(|e| LoadError::Io {
        path: path.to_owned(),
        source: e,
    })?;
    if n < 4 {
        return Err(LoadError::NotGguf {
            path: path.to_owned(),
            reason: format!("the file is only {} bytes long", meta.len()),
        });
    }
    if &magic != b"GGUF" {
        return Err(LoadError::NotGguf {
            path: path.to_owned(),
            reason: format!(
                "it starts with {:?} instead of the magic \"GGUF\"",
                String::from_utf8_lossy(&magic)
            ),
        });
    }
    Ok(())
}

/// What a path that is not a regular file is, in words.
fn file_kind(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    if t.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_fifo() {
            return "a named pipe (FIFO)";
        }
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    "something other than a file"
}

/// Opens for reading without ever blocking on a FIFO that has no writer.
fn open_nonblocking(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(0o4000); // O_NONBLOCK
    }
    #[cfg(all(unix, not(target_os = "linux")))]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(0x0004); // O_NONBLOCK on the BSDs and macOS
    }
    options.open(path)
}

fn read_up_to(file: &mut File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Loads the model (memory-mapped, CPU) and works out its FIM format.
pub(crate) fn load(config: &EngineConfig) -> Result<(LlamaModel, ModelInfo), LoadError> {
    let path = config.model_path.as_path();
    check_file(path)?;
    let configured_fim = config
        .fim_template
        .as_deref()
        .filter(|t| !t.trim().is_empty())
        .map(FimFormat::from_template)
        .transpose()?;
    let backend = backend();
    llama_log::clear_errors();
    let params = LlamaModelParams::default().with_use_mmap(true);
    let model =
        LlamaModel::load_from_file(backend, path, &params).map_err(|e| LoadError::Llama {
            path: path.to_owned(),
            reason: llama_log::recent_errors().unwrap_or_else(|| e.to_string()),
        })?;
    let fim = configured_fim.or_else(|| detect_fim(&model));
    let meta = |key: &str| model.meta_val_str(key).ok().filter(|v| !v.is_empty());
    let info = ModelInfo {
        path: path.to_owned(),
        name: meta("general.name").unwrap_or_else(|| {
            path.file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default()
        }),
        architecture: meta("general.architecture").unwrap_or_default(),
        n_params: model.n_params(),
        size_bytes: model.size(),
        n_ctx_train: model.n_ctx_train(),
        has_chat_template: model.chat_template(None).is_ok(),
        fim,
    };
    tracing::info!(
        model = %info.name,
        arch = %info.architecture,
        fim = info.fim.as_ref().map(|f| f.name.as_str()).unwrap_or("none"),
        "model loaded"
    );
    Ok((model, info))
}

/// Whether `text` is exactly one special token of the model's vocabulary.
pub(crate) fn single_special_token(model: &LlamaModel, text: &str) -> Option<LlamaToken> {
    let tokens = model.vocab().tokenize(text.as_bytes(), false, true);
    match tokens.as_slice() {
        [t] if model
            .vocab()
            .text(*t)
            .is_some_and(|s| s.to_bytes() == text.as_bytes()) =>
        {
            Some(*t)
        }
        _ => None,
    }
}

fn detect_fim(model: &LlamaModel) -> Option<FimFormat> {
    let vocab = model.vocab();
    let text_of = |t: LlamaToken| -> Option<String> {
        (t.0 >= 0)
            .then(|| vocab.text(t))
            .flatten()
            .map(|s| s.to_string_lossy().into_owned())
    };
    let generic = match (
        text_of(vocab.fim_pre()),
        text_of(vocab.fim_suf()),
        text_of(vocab.fim_mid()),
    ) {
        (Some(p), Some(s), Some(m)) => Some((p, s, m)),
        _ => None,
    };
    fim::detect(&|t| single_special_token(model, t).is_some(), generic)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(path: &Path) -> String {
        match check_file(path) {
            Err(e @ LoadError::NotRegularFile { .. }) => e.to_string(),
            other => panic!("{}: {other:?}", path.display()),
        }
    }

    /// Issue 10 item 11: `/dev/zero` and a FIFO were reported as "a directory".
    #[test]
    fn paths_that_are_not_regular_files_are_named_for_what_they_are() {
        let msg = message(Path::new("/dev/zero"));
        assert!(
            msg.contains("/dev/zero")
                && msg.contains("not a regular file")
                && msg.contains("character device"),
            "{msg}"
        );
        assert!(!msg.contains("directory"), "{msg}");

        let dir = std::env::temp_dir().join(format!("ghostline-model-kind-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(message(&dir).contains("a directory"));

        let fifo = dir.join("model.gguf");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            // Opening a FIFO without a writer would block forever; this must answer at once.
            let (tx, rx) = std::sync::mpsc::channel();
            let f = fifo.clone();
            std::thread::spawn(move || {
                let _ = tx.send(check_file(&f).map_err(|e| e.to_string()));
            });
            let got = rx
                .recv_timeout(std::time::Duration::from_secs(10))
                .expect("checking a FIFO blocked");
            let msg = got.unwrap_err();
            assert!(
                msg.contains("not a regular file") && msg.contains("FIFO"),
                "{msg}"
            );
        }
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn opening_a_fifo_never_blocks() {
        let dir = std::env::temp_dir().join(format!("ghostline-fifo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("pipe");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let (tx, rx) = std::sync::mpsc::channel();
            let f = fifo.clone();
            std::thread::spawn(move || {
                let _ = tx.send(open_nonblocking(&f).is_ok());
            });
            assert!(rx.recv_timeout(std::time::Duration::from_secs(10)).is_ok());
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}
