//! `ghostline complete FILE:LINE:COL`: one completion at a position of a file on disk, without
//! an editor. The completion goes to stdout; one line of statistics goes to stderr.
//!
//! Positions are 1-based, as in compiler messages; the column counts characters (not bytes,
//! not UTF-16 units). This command reads only the file it is given and the model.
//!
//! The request and the shaping are the editor's ([`ghostline_lsp::pipeline`]): the same window around
//! the cursor, line/block plan, line-end rule, token healing and repository context as an
//! Invoked inline completion at that place. The workspace is `--workspace DIR`, else the
//! nearest folder above the file that holds `.git`, else the file's folder; it is walked as the
//! server walks it after `initialized`, and the context is built by the same code
//! ([`Workspace::completion_context`]). `--settings JSON` takes the editor's settings object
//! (`repoContext.*`, `window.*`, `maxTokens`, ...), so the command answers what an editor with
//! those settings gets.
//!
//! `--backend llama-server|openai --endpoint URL` sends the model call to a model server, as
//! the editor settings `backend` and `remote.*` do (the API key from `GHOSTLINE_API_KEY` or
//! `--api-key-file`, never from the command line, where other users see it).

use anyhow::{bail, Context as _};
use std::sync::Arc;

use ghostline_inference::{BackendHandle, CancelToken, Engine, EngineConfig, FakeBackend};
use ghostline_remote::{RemoteBackend, RemoteConfig, RemoteKind};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ghostline_context::Stop;
use ghostline_lsp::config::{self, Config};
use ghostline_lsp::pipeline;
use ghostline_lsp::shaping::Lang;
use ghostline_lsp::window::{window, Windows};
use ghostline_lsp::workspace::{self, Workspace};

/// Arguments of `ghostline complete`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompleteArgs {
    /// Where to complete: FILE:LINE:COL, 1-based, column in characters.
    #[arg(value_name = "FILE:LINE:COL")]
    pub location: String,
    /// GGUF model to use (default: $GHOSTLINE_MODEL, else the cached default model).
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// CPU threads (default: all cores, at most 8).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Context window in tokens.
    #[arg(long, default_value_t = 4096)]
    pub context_size: u32,
    /// Most tokens to generate (default: the `maxTokens` setting, 128).
    #[arg(long)]
    pub max_tokens: Option<usize>,
    /// The workspace the repository context comes from (default: the nearest folder above
    /// the file holding `.git`, else the file's folder).
    #[arg(long, value_name = "DIR")]
    pub workspace: Option<PathBuf>,
    /// The editor's settings as a JSON object (the `ghostline` section), e.g.
    /// '{"repoContext": {"enabled": false}}': the window, the repository context and the token
    /// cap follow them as in an editor.
    #[arg(long, value_name = "JSON")]
    pub settings: Option<String>,
    /// FIM template or preset name overriding the model's own format.
    #[arg(long)]
    pub fim_template: Option<String>,
    /// Give up after this many milliseconds (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub time_budget_ms: u64,
    /// `local` (the in-process model), `llama-server` or `openai` (a model server at
    /// --endpoint), or `fake` (the deterministic test backend, as the server's
    /// `backend: "fake"` setting; needs no model). `llama` is the same as `local`.
    #[arg(long, default_value = "local", value_parser = ["local", "llama", "llama-server", "openai", "fake"])]
    pub backend: String,
    /// The model server's base URL (llama-server, openai), e.g. http://127.0.0.1:8080.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// The served model's name (openai; also picks the FIM format unless --fim-template).
    #[arg(long, value_name = "NAME")]
    pub remote_model: Option<String>,
    /// File holding the model server's API key (default: $GHOSTLINE_API_KEY).
    #[arg(long, value_name = "PATH")]
    pub api_key_file: Option<PathBuf>,
    /// PEM file with extra CA certificates for an https endpoint.
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,
    /// Connect timeout, and the longest wait for the model server's answer to start.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    pub remote_timeout_ms: u64,
}

/// A parsed `FILE:LINE:COL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

/// Parses `FILE:LINE:COL` (the file name may itself contain colons).
pub fn parse_location(s: &str) -> anyhow::Result<Location> {
    let mut parts = s.rsplitn(3, ':');
    let (Some(col), Some(line), Some(file)) = (parts.next(), parts.next(), parts.next()) else {
        bail!("expected FILE:LINE:COL (1-based), got {s:?}");
    };
    let line: usize = line
        .parse()
        .with_context(|| format!("line {line:?} in {s:?} is not a number"))?;
    let column: usize = col
        .parse()
        .with_context(|| format!("column {col:?} in {s:?} is not a number"))?;
    if line == 0 || column == 0 || file.is_empty() {
        bail!("expected FILE:LINE:COL with 1-based line and column, got {s:?}");
    }
    Ok(Location {
        file: PathBuf::from(file),
        line,
        column,
    })
}

/// Byte offset of a 1-based line and character column in `text`, or a clear error.
pub fn byte_offset(text: &str, line: usize, column: usize) -> anyhow::Result<usize> {
    let mut start = 0;
    for _ in 1..line {
        match text[start..].find('\n') {
            Some(nl) => start += nl + 1,
            None => bail!(
                "line {line} is past the end of the file ({} lines)",
                text.split('\n').count()
            ),
        }
    }
    let line_text = text[start..].split('\n').next().unwrap_or("");
    let line_text = line_text.strip_suffix('\r').unwrap_or(line_text);
    let chars = line_text.chars().count();
    if column > chars + 1 {
        bail!("column {column} is past the end of line {line} ({chars} characters)");
    }
    let within: usize = line_text.chars().take(column - 1).map(char::len_utf8).sum();
    Ok(start + within)
}

/// The workspace of `file` (absolute): the nearest folder above it holding `.git`, else its
/// own folder.
pub fn workspace_root(file: &Path) -> PathBuf {
    let dir = file.parent().unwrap_or(Path::new("/"));
    dir.ancestors()
        .find(|d| d.join(".git").exists())
        .unwrap_or(dir)
        .to_path_buf()
}

/// The server's settings from `--settings` and `--max-tokens`; an invalid value is an error.
fn settings(args: &CompleteArgs) -> anyhow::Result<Config> {
    let mut config = Config::default();
    if let Some(json) = &args.settings {
        let value: serde_json::Value =
            serde_json::from_str(json).context("--settings is not JSON")?;
        if !value.is_object() {
            bail!("--settings: expected a JSON object, got {value}");
        }
        let update = config.apply(config::section(&value));
        if !update.invalid.is_empty() {
            bail!("{}", update.invalid.join("\n"));
        }
        for key in update.unknown {
            eprintln!("ghostline: unknown setting {key} (ignored)");
        }
    }
    if let Some(n) = args.max_tokens {
        config.max_tokens = n;
    }
    Ok(config)
}

/// Runs `ghostline complete`.
pub fn complete(args: CompleteArgs) -> anyhow::Result<()> {
    let loc = parse_location(&args.location)?;
    let settings = settings(&args)?;
    let bytes =
        std::fs::read(&loc.file).with_context(|| format!("cannot read {}", loc.file.display()))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| anyhow::anyhow!("{} is not UTF-8 text", loc.file.display()))?;
    let offset = byte_offset(&text, loc.line, loc.column)
        .with_context(|| format!("bad position in {}", loc.file.display()))?;

    let model = args
        .model
        .clone()
        .unwrap_or_else(ghostline_inference::default_model_path);
    let mut config = EngineConfig::new(&model);
    if let Some(t) = args.threads {
        config.threads = t.max(1);
    }
    config.context_size = args.context_size;
    config.max_tokens = settings.max_tokens;
    config.fim_template = args.fim_template.clone();
    let remote_kind = match args.backend.as_str() {
        "llama-server" => Some(RemoteKind::LlamaServer),
        "openai" => Some(RemoteKind::OpenAi),
        _ => None,
    };
    let backend: BackendHandle = if args.backend == "fake" {
        Arc::new(FakeBackend::new().with_context_size(args.context_size as usize))
    } else if let Some(kind) = remote_kind {
        let Some(endpoint) = args.endpoint.clone() else {
            bail!(
                "--backend {} needs --endpoint URL (the model server's base URL, e.g. http://127.0.0.1:8080)",
                args.backend
            );
        };
        let mut r = RemoteConfig::new(kind, endpoint);
        r.model = args.remote_model.clone();
        r.api_key_file = args.api_key_file.clone();
        r.ca_file = args.ca_file.clone();
        r.timeout = Duration::from_millis(args.remote_timeout_ms.max(1));
        r.fim_template = args.fim_template.clone();
        r.context_size = args.context_size as usize;
        r.max_tokens = settings.max_tokens;
        let remote = RemoteBackend::new(r)?;
        // Fail with the server's own answer (down, wrong key) rather than an empty completion.
        remote.check().map_err(|e| anyhow::anyhow!(e))?;
        Arc::new(remote)
    } else {
        Arc::new(Engine::start(config).map_err(|e| {
            let hint = if matches!(e, ghostline_inference::LoadError::NotFound { .. }) {
                "\n(fetch the default model with `make model`, or pass --model PATH)"
            } else {
                ""
            };
            anyhow::anyhow!("{e}{hint}")
        })?)
    };

    let rope = ropey::Rope::from_str(&text);
    let cursor = rope.byte_to_char(offset);
    let win = window(&rope, cursor, cursor, "", Windows::of(&settings));
    // The workspace, as an editor opened at its root has it: walked, the file open.
    let abs = std::fs::canonicalize(&loc.file)
        .with_context(|| format!("cannot resolve {}", loc.file.display()))?;
    let root = match &args.workspace {
        Some(dir) => std::fs::canonicalize(dir)
            .with_context(|| format!("cannot resolve --workspace {}", dir.display()))?,
        None => workspace_root(&abs),
    };
    let ws = Workspace::with_roots(vec![root], &settings);
    let place_loc = ws.locate_path(&abs);
    if workspace::wants_context(&settings, &place_loc) {
        ws.walk_now();
        ws.open_now(&abs, &text);
    }
    let lang = Lang::detect("", &place_loc.rel);
    // The time budget counts from here: the model is loaded, the workspace walked.
    let arrived = std::time::Instant::now();
    let mut stop = Stop::default();
    if args.time_budget_ms > 0 {
        // As in the server: the context gets half the budget, the model the rest.
        stop = stop.until(arrived + Duration::from_millis(args.time_budget_ms / 2));
    }
    let window_start = cursor.saturating_sub(win.prefix.chars().count());
    let context = ws.completion_context(
        &place_loc,
        &rope,
        cursor,
        window_start,
        &settings,
        &|s| backend.count_tokens(s),
        stop,
    );
    let place = pipeline::Place {
        prefix: &win.prefix,
        suffix: &win.suffix,
        lang,
        path: Some(place_loc.rel.clone()),
        repo_name: place_loc.repo.clone(),
    };
    let request = pipeline::Settings {
        max_tokens: settings.max_tokens,
        invoked: true,
        budget_ms: args.time_budget_ms,
        arrived,
        cold_window: None,
    };
    let prepared = pipeline::prepare(&place, context, request);
    let c =
        ghostline_inference::complete_blocking(&*backend, prepared.request, CancelToken::new())?;
    let shaped = pipeline::finish(
        &win.prefix,
        &win.suffix,
        lang,
        prepared.mode,
        &c.text,
        c.stop,
    );
    tracing::debug!(raw = ?c.text, shaped = ?shaped, mode = ?prepared.mode, "generation");
    println!("{}", shaped.unwrap_or_default());
    eprintln!("{} stop={:?}", c.stats, c.stop);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_like_compiler_messages() {
        let l = parse_location("src/a:b.py:3:7").unwrap();
        assert_eq!(
            l,
            Location {
                file: "src/a:b.py".into(),
                line: 3,
                column: 7
            }
        );
        assert!(parse_location("a.py:0:1").is_err());
        assert!(parse_location("a.py:x:1").is_err());
        assert!(parse_location("a.py").is_err());
    }

    #[test]
    fn remote_backends_need_an_endpoint() {
        let dir = std::env::temp_dir().join(format!("ghostline-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a.py");
        std::fs::write(&file, "x = 1\n").unwrap();
        #[derive(clap::Parser)]
        struct Cmd {
            #[command(flatten)]
            args: CompleteArgs,
        }
        use clap::Parser as _;
        let loc = format!("{}:1:1", file.display());
        let cmd = Cmd::try_parse_from(["complete", &loc, "--backend", "openai"]).unwrap();
        let err = complete(cmd.args).unwrap_err().to_string();
        assert!(err.contains("--endpoint"), "{err}");
        // A server that is not there: a clear error, quickly.
        let cmd = Cmd::try_parse_from([
            "complete",
            &loc,
            "--backend",
            "llama-server",
            "--endpoint",
            "http://127.0.0.1:9",
            "--remote-timeout-ms",
            "500",
        ])
        .unwrap();
        let err = complete(cmd.args).unwrap_err().to_string();
        assert!(
            err.contains("127.0.0.1:9") && err.contains("unavailable"),
            "{err}"
        );
        assert!(Cmd::try_parse_from(["complete", &loc, "--backend", "vllm"]).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn columns_count_characters() {
        let text = "héllo\n🦀x\n";
        assert_eq!(byte_offset(text, 1, 3).unwrap(), 3);
        assert_eq!(byte_offset(text, 2, 2).unwrap(), 7 + 4);
        assert_eq!(byte_offset(text, 3, 1).unwrap(), text.len());
        assert!(byte_offset(text, 2, 4).is_err());
        assert!(byte_offset(text, 5, 1).is_err());
    }
}
