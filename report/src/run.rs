//! The stages of a fresh run: the callgrind runner, the benchmarks, the
//! conformance matrix ([`measure`]). Running only: nothing here reads a
//! bundle or renders, and no rendering module depends on this one; the
//! binary wires the two.

use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
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

/// What the measuring stages left.
#[derive(Debug)]
pub struct Measured {
    /// The benchmark bundle, written by this run.
    pub bench: PathBuf,
    /// The conformance matrix this run wrote, or why there is none.
    pub conformance: Result<PathBuf, String>,
    /// Whether a stage failed (the bundle was still written).
    pub failed: bool,
}

/// Why the measuring stages gave no bundle to render.
#[derive(Debug)]
pub enum RunError {
    /// Cargo could not be started for this stage.
    Start(&'static str, io::Error),
    /// The benchmarks left no new bundle at this path.
    NoBundle(PathBuf),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Start(what, e) => write!(f, "cannot run {what}: {e}"),
            RunError::NoBundle(p) => write!(
                f,
                "the benchmarks left no new {}: no page written",
                p.display()
            ),
        }
    }
}

impl std::error::Error for RunError {}

/// Stages 1 to 3 of `total`: installs the callgrind runner when missing,
/// runs `cargo bench -p static-call-bench` (quick when asked), then the
/// conformance matrix; each stage prints its progress lines.
///
/// # Errors
/// Cargo could not be started, or the benchmarks wrote no new bundle.
pub fn measure(
    root: &Path,
    results: &Path,
    quick: bool,
    total: usize,
) -> Result<Measured, RunError> {
    let mut failed = false;

    let st = Stage::start(
        1,
        total,
        &format!("callgrind runner (gungraun-runner {GUNGRAUN_VERSION})"),
    );
    match runner_version() {
        Some(v) if is_wanted_version(&v) => st.end(&format!("found {v}, done")),
        found => {
            eprintln!(
                "{}; installing it",
                found.map_or("gungraun-runner not found".to_owned(), |v| format!(
                    "found {v}, want {GUNGRAUN_VERSION}"
                ))
            );
            match install_runner() {
                Ok(s) if s.success() => st.end("installed, done"),
                Ok(s) => st.end(&format!(
                    "install failed ({s}); instruction counts may be missing,"
                )),
                Err(e) => st.end(&format!(
                    "cannot run cargo install ({e}); instruction counts may be missing,"
                )),
            }
        }
    }

    let mode = if quick { "quick" } else { "full" };
    let st = Stage::start(2, total, &format!("benchmarks ({mode})"));
    let since = SystemTime::now();
    let envs: &[(&str, &str)] = if quick {
        &[("STATIC_CALL_BENCH_QUICK", "1")]
    } else {
        &[]
    };
    let bench = results.join("bench.json");
    let status = cargo_in(root, &["bench", "-p", "static-call-bench"], envs)
        .map_err(|e| RunError::Start("cargo bench", e))?;
    if !status.success() {
        failed = true;
    }
    if !written_since(&bench, since) {
        st.end(&format!("failed ({status})"));
        return Err(RunError::NoBundle(bench));
    }
    st.end(if status.success() {
        "done"
    } else {
        "failed, bundle written,"
    });

    let st = Stage::start(3, total, "conformance matrix (release)");
    let since = SystemTime::now();
    let conf = results.join("conformance.json");
    let status = cargo_in(
        root,
        &[
            "test",
            "--release",
            "-p",
            "static-call-conformance",
            "--test",
            "conformance",
        ],
        &[],
    )
    .map_err(|e| RunError::Start("cargo test", e))?;
    let conformance = if written_since(&conf, since) {
        Ok(conf)
    } else {
        Err(format!(
            "the conformance run left no matrix (cargo test: {status})"
        ))
    };
    if status.success() {
        st.end("done");
    } else {
        failed = true;
        st.end("failed (see the page's conformance matrix),");
    }
    Ok(Measured {
        bench,
        conformance,
        failed,
    })
}
