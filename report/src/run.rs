//! The stages of a fresh run: the callgrind runner, the benchmarks, the
//! conformance matrix.

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant, SystemTime};

pub use static_call_bundle::GUNGRAUN_VERSION;

pub use static_call_bundle::paths::{target_dir, workspace_root};

/// The cargo that runs us, or `cargo`.
pub fn cargo() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// A stage's progress lines: one when it starts, one when it ends.
#[derive(Debug)]
pub struct Stage {
    head: String,
    start: Instant,
}

impl Stage {
    /// Prints `[n/total] name ...` and starts the clock.
    pub fn start(n: usize, total: usize, name: &str) -> Stage {
        let head = format!("[{n}/{total}] {name} ...");
        eprintln!("{head}");
        Stage {
            head,
            start: Instant::now(),
        }
    }

    /// Prints `[n/total] name ... <outcome> in 12.3 s`.
    pub fn end(self, outcome: &str) {
        eprintln!(
            "{} {outcome} in {:.1} s",
            self.head,
            self.start.elapsed().as_secs_f64()
        );
    }
}

/// What `gungraun-runner --version` prints, if it runs.
pub fn runner_version() -> Option<String> {
    let out = Command::new("gungraun-runner")
        .arg("--version")
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

pub use static_call_bundle::is_wanted_gungraun as is_wanted_version;

/// `cargo install gungraun-runner --version =<GUNGRAUN_VERSION> --locked`.
///
/// # Errors
/// Cargo could not be started.
pub fn install_runner() -> io::Result<ExitStatus> {
    Command::new(cargo())
        .args(["install", "gungraun-runner", "--version"])
        .arg(format!("={GUNGRAUN_VERSION}"))
        .arg("--locked")
        .status()
}

/// Runs cargo at the workspace root with these arguments and extra
/// environment; its output passes through.
///
/// # Errors
/// Cargo could not be started.
pub fn cargo_in(root: &Path, args: &[&str], envs: &[(&str, &str)]) -> io::Result<ExitStatus> {
    let mut c = Command::new(cargo());
    c.current_dir(root).args(args);
    // The same place for the children, whatever their current directory.
    if std::env::var_os("CARGO_TARGET_DIR").is_some() {
        c.env("CARGO_TARGET_DIR", target_dir());
    }
    for (k, v) in envs {
        c.env(k, v);
    }
    c.status()
}

/// Whether `path` was written at or after `since` (with a little slack
/// for coarse file-system clocks).
pub fn written_since(path: &Path, since: SystemTime) -> bool {
    let slack = since.checked_sub(Duration::from_secs(2)).unwrap_or(since);
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t >= slack)
}
