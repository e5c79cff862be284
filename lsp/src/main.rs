//! `ghostline`: the language server (`ghostline` or `ghostline serve`) and a one-shot
//! completion command (`ghostline complete FILE:LINE:COL`).
//!
//! Only protocol messages go to stdout; logs go to stderr or `--log-file`.

mod cli;

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// A language server that completes code with a local model.
#[derive(Debug, Parser)]
#[command(name = "ghostline", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
    #[command(flatten)]
    common: Common,
}

#[derive(Debug, Clone, Default, Args)]
struct ServeArgs {
    /// GGUF model (default: $GHOSTLINE_MODEL, else the cached default model). The client's
    /// `model` setting overrides it.
    #[arg(long, value_name = "PATH")]
    model: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
struct Common {
    /// Write logs to this file instead of stderr.
    #[arg(long, value_name = "PATH", global = true)]
    log_file: Option<PathBuf>,
    /// Log level or filter (error, warn, info, debug, trace; or a tracing filter such as
    /// `ghostline_lsp=debug`). Default: $GHOSTLINE_LOG, else info.
    #[arg(long, value_name = "LEVEL", global = true)]
    log_level: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the language server on stdin/stdout (the default).
    Serve(ServeArgs),
    /// Complete at a position of a file and print the completion.
    Complete(Box<cli::CompleteArgs>),
}

fn init_logging(common: &Common, default_level: &str) -> anyhow::Result<()> {
    let filter = common
        .log_level
        .clone()
        .or_else(|| std::env::var("GHOSTLINE_LOG").ok())
        .unwrap_or_else(|| default_level.into());
    let filter = EnvFilter::try_new(&filter)
        .map_err(|e| anyhow::anyhow!("invalid log level {filter:?}: {e}"))?;
    // The HTTP client logs raw request bytes at trace level, `Authorization` header included:
    // it is capped at `warn` whatever level is asked, so the API key never reaches a log.
    let filter = filter
        .add_directive("ureq=warn".parse()?)
        .add_directive("ureq_proto=warn".parse()?);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false);
    match &common.log_file {
        Some(path) => {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| anyhow::anyhow!("cannot open log file {}: {e}", path.display()))?;
            builder.with_writer(std::sync::Mutex::new(file)).init();
        }
        // Never blocks the server when the client does not read stderr.
        None => builder
            .with_writer(ghostline_lsp::logwriter::NonBlocking::new(std::io::stderr()))
            .init(),
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // `complete` prints one statistics line on stderr; only errors join it unless asked.
    let default_level = match cli.command {
        Some(Command::Complete(_)) => "error",
        _ => "info",
    };
    init_logging(&cli.common, default_level)?;
    match cli.command {
        Some(Command::Complete(args)) => {
            let done = cli::complete(*args);
            // Give the log thread a moment to write what is queued.
            std::thread::sleep(std::time::Duration::from_millis(20));
            done
        }
        command => {
            let model = match command {
                Some(Command::Serve(args)) => args.model.or(cli.serve.model),
                _ => cli.serve.model,
            };
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()?;
            let exit = runtime.block_on(ghostline_lsp::serve(
                ghostline_lsp::Options { model },
                tokio::io::stdin(),
                tokio::io::stdout(),
            ));
            // Background work (a model load, an index walk) may still run on blocking threads:
            // the process ends now rather than waiting for them. Give the log thread a moment.
            std::thread::sleep(std::time::Duration::from_millis(20));
            std::process::exit(exit.code);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_is_the_default_and_takes_the_model_either_way() {
        let cli = Cli::try_parse_from(["ghostline", "--model", "/m.gguf", "--log-level", "debug"])
            .unwrap();
        assert!(cli.command.is_none());
        assert_eq!(
            cli.serve.model.as_deref(),
            Some(std::path::Path::new("/m.gguf"))
        );
        let cli = Cli::try_parse_from([
            "ghostline",
            "serve",
            "--model",
            "/n.gguf",
            "--log-file",
            "/tmp/x.log",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Serve(ServeArgs { model: Some(_) }))
        ));
        assert!(cli.common.log_file.is_some());
        assert!(Cli::try_parse_from(["ghostline", "complete", "a.py:1:1"]).is_ok());
    }
}
