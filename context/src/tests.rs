//! Data-driven tests: a fixture string holds several files, each after a `//- /path` line
//! (`//- /path -> /target` makes a symlink), with `$0` marking the cursor in the current file.
//! Paths under `/outside/` are written next to the workspace root, not inside it. Results are
//! compared with expect-test snapshots (`UPDATE_EXPECT=1 cargo test` rewrites them).

mod context;
mod fixture;
mod function;
mod imports;
mod index;
mod outline;
mod properties;
mod recent;
mod robustness;
mod uses;
