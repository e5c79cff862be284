//! Command-line arguments of the benchmark drivers: one small parser for all of them.
//!
//! A driver takes what it knows (`--name VALUE`, `--name=VALUE` or a bare `--flag`) and calls
//! [`Args::finish`], which rejects anything left over. `-h`/`--help` prints the driver's usage.
//! Errors name the driver, print the usage and exit with status 2. The model names `1.5b` and
//! `0.5b` resolve to the cached models ([`Args::model`]). This module does not know any
//! driver's options.

use std::path::PathBuf;
use std::str::FromStr;

/// The arguments not yet taken by the driver.
pub struct Args {
    program: String,
    usage: &'static str,
    rest: Vec<String>,
}

impl Args {
    /// The process's arguments; prints `usage` and exits on `-h`/`--help`.
    pub fn parse(usage: &'static str) -> Args {
        let mut all = std::env::args();
        let program = all
            .next()
            .map(|p| {
                std::path::Path::new(&p)
                    .file_name()
                    .map_or(p.clone(), |f| f.to_string_lossy().into_owned())
            })
            .unwrap_or_else(|| "bench".into());
        Self::from_vec(program, usage, all.collect())
    }

    /// Arguments from a list (tests).
    pub fn from_vec(program: impl Into<String>, usage: &'static str, rest: Vec<String>) -> Args {
        let args = Args {
            program: program.into(),
            usage,
            rest,
        };
        if args.rest.iter().any(|a| a == "-h" || a == "--help") {
            println!("{usage}");
            std::process::exit(0);
        }
        args
    }

    /// Ends the program with `message` and the usage (exit status 2).
    pub fn die(&self, message: &str) -> ! {
        eprintln!("{}: {message}\n\n{}", self.program, self.usage);
        std::process::exit(2)
    }

    /// Whether the bare flag `name` was given (taken, however often).
    pub fn flag(&mut self, name: &str) -> bool {
        let before = self.rest.len();
        self.rest.retain(|a| a != name);
        self.rest.len() != before
    }

    /// The value of `name` as text (the last one when given twice).
    pub fn text(&mut self, name: &str) -> Option<String> {
        let mut found = None;
        let mut i = 0;
        while i < self.rest.len() {
            if self.rest[i] == name {
                if i + 1 >= self.rest.len() {
                    self.die(&format!("{name} needs a value"));
                }
                found = Some(self.rest.remove(i + 1));
                self.rest.remove(i);
            } else if let Some(v) = self.rest[i]
                .strip_prefix(name)
                .and_then(|r| r.strip_prefix('='))
            {
                found = Some(v.to_owned());
                self.rest.remove(i);
            } else {
                i += 1;
            }
        }
        found
    }

    /// The value of `name` parsed as `T`.
    pub fn value<T: FromStr>(&mut self, name: &str) -> Option<T> {
        let v = self.text(name)?;
        Some(
            v.parse()
                .unwrap_or_else(|_| self.die(&format!("{name}: cannot read {v:?}"))),
        )
    }

    /// The value of `name` parsed as `T`, else `default`.
    pub fn get<T: FromStr>(&mut self, name: &str, default: T) -> T {
        self.value(name).unwrap_or(default)
    }

    /// A comma-separated list (empty items dropped).
    pub fn list<T: FromStr>(&mut self, name: &str) -> Option<Vec<T>> {
        let v = self.text(name)?;
        Some(
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse()
                        .unwrap_or_else(|_| self.die(&format!("{name}: cannot read {s:?}")))
                })
                .collect(),
        )
    }

    /// `--model`: `1.5b` (the default), `0.5b` or a path to a GGUF file.
    pub fn model(&mut self) -> PathBuf {
        let name = self.text("--model").unwrap_or_else(|| "1.5b".into());
        model_path(&name)
    }

    /// Rejects whatever was not taken.
    pub fn finish(self) {
        if let Some(a) = self.rest.first() {
            self.die(&format!("unknown argument {a}"));
        }
    }
}

/// `1.5b`, `0.5b` (the cached models) or a path.
pub fn model_path(name: &str) -> PathBuf {
    match name {
        "1.5b" | "1.5B" => crate::default_model(),
        "0.5b" | "0.5B" => crate::small_model(),
        path => PathBuf::from(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Args {
        Args::from_vec("t", "usage", list.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn takes_values_flags_and_lists_in_any_order() {
        let mut a = args(&["--wait", "--keys", "12", "--runs=on,off", "--seed=3"]);
        assert!(a.flag("--wait"));
        assert!(!a.flag("--quiet"));
        assert_eq!(a.value::<usize>("--keys"), Some(12));
        assert_eq!(a.list::<String>("--runs").unwrap(), ["on", "off"]);
        assert_eq!(a.get("--seed", 1u64), 3);
        assert_eq!(a.get("--stride", 10usize), 10);
        assert!(a.rest.is_empty());
        a.finish();
    }

    #[test]
    fn model_names_resolve_to_paths() {
        assert_eq!(model_path("/x/m.gguf"), PathBuf::from("/x/m.gguf"));
        assert!(model_path("0.5b").to_string_lossy().ends_with(".gguf"));
    }
}
