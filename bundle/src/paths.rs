//! Where the workspace's outputs go: the one rule every crate of the
//! suite follows (benchmarks, conformance matrix, report).

use std::path::{Path, PathBuf};

/// The workspace root (the parent of this crate's folder).
pub fn workspace_root() -> PathBuf {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.parent().unwrap_or(here).to_path_buf()
}

/// The cargo target directory: `CARGO_TARGET_DIR` when set (a relative
/// one is read against the workspace root, where the README's commands
/// run: test and bench binaries run in their own package's folder, so
/// their current directory would give another place), else `target`
/// at the workspace root.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        Some(t) => {
            let t = PathBuf::from(t);
            if t.is_absolute() {
                t
            } else {
                workspace_root().join(t)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// `<target>/results`: the bundles and the conformance matrix.
pub fn results_dir() -> PathBuf {
    target_dir().join("results")
}
