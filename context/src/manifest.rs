//! The few facts this crate needs from a `Cargo.toml`: the package name, the library's name
//! and path, and whether it declares a `[workspace]`.
//!
//! A line-based reader, not a TOML parser: it understands `[section]` headers and
//! `key = "string"` lines, which is how Cargo manifests spell these keys in practice. Anything
//! else (inline tables, multi-line strings) is skipped, never an error.

/// What a `Cargo.toml` says about its package.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Manifest {
    /// `[package] name`.
    pub(crate) package: Option<String>,
    /// `[lib] name`.
    pub(crate) lib_name: Option<String>,
    /// `[lib] path`, relative to the manifest's folder.
    pub(crate) lib_path: Option<String>,
    /// Whether the manifest has a `[workspace]` table.
    pub(crate) workspace: bool,
    /// `[workspace] members`: folders relative to the manifest, maybe ending in `/*`.
    pub(crate) members: Vec<String>,
}

impl Manifest {
    /// Reads a manifest's text.
    pub(crate) fn parse(text: &str) -> Manifest {
        let mut manifest = Manifest::default();
        let mut section = String::new();
        // Inside a `members = [ .. ]` array that spans lines.
        let mut in_members = false;
        for line in text.lines() {
            let line = line.trim();
            if in_members {
                let (items, closed) = match line.find(']') {
                    Some(end) => (&line[..end], true),
                    None => (line, false),
                };
                manifest.members.extend(strings(items));
                in_members = !closed;
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            if line.starts_with('[') {
                let end = line.find(']').unwrap_or(line.len());
                section = line[..end].trim_start_matches('[').trim().to_string();
                if line.starts_with("[[") {
                    section.insert_str(0, "[]");
                }
                if section == "workspace" {
                    manifest.workspace = true;
                }
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            if section == "workspace" && key.trim() == "members" {
                let value = value.trim().trim_start_matches('[');
                let (items, closed) = match value.find(']') {
                    Some(end) => (&value[..end], true),
                    None => (value, false),
                };
                manifest.members.extend(strings(items));
                in_members = !closed;
                continue;
            }
            let Some(value) = string_value(value) else {
                continue;
            };
            match (section.as_str(), key.trim()) {
                ("package", "name") => manifest.package = Some(value),
                ("lib", "name") => manifest.lib_name = Some(value),
                ("lib", "path") => manifest.lib_path = Some(value),
                _ => {}
            }
        }
        manifest
    }

    /// The name other crates use for this package's library (`my-crate` → `my_crate`).
    pub(crate) fn crate_name(&self) -> Option<String> {
        let name = self.lib_name.as_ref().or(self.package.as_ref())?;
        Some(name.replace('-', "_"))
    }
}

/// The quoted strings in a fragment of a TOML array (`"a", "b/*", # comment`).
fn strings(items: &str) -> Vec<String> {
    let items = items.split('#').next().unwrap_or("");
    items.split(',').filter_map(string_value).collect()
}

/// The contents of a one-line TOML string (`"..."` or `'...'`), without escapes.
fn string_value(value: &str) -> Option<String> {
    let value = value.trim();
    let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let rest = &value[1..];
    let end = rest.find(quote)?;
    Some(rest[..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_package_lib_and_workspace() {
        let m = Manifest::parse(
            r#"
# comment
[workspace]
members = [
    "a", # first
    "crates/*",
]
exclude = ["x"]

[package]
name = "my-crate" # trailing
version = "0.1.0"

[package.metadata.x]
name = "not-this"

[lib]
path = 'src/my_lib.rs'

[[bin]]
name = "tool"
"#,
        );
        assert_eq!(m.package.as_deref(), Some("my-crate"));
        assert_eq!(m.crate_name().as_deref(), Some("my_crate"));
        assert_eq!(m.lib_path.as_deref(), Some("src/my_lib.rs"));
        assert!(m.workspace);
        assert_eq!(m.members, ["a", "crates/*"]);
        assert_eq!(
            Manifest::parse("[workspace]\nmembers = [\"x\", 'y']").members,
            ["x", "y"]
        );
        assert_eq!(
            Manifest::parse("[lib]\nname = \"x\"")
                .crate_name()
                .as_deref(),
            Some("x")
        );
        assert_eq!(Manifest::parse("name = ").crate_name(), None);
    }
}
