//! The README's host program, run: the program under "Modules" that loads
//! the README's plugin, verbatim (crate `conformance/readme-host`, whose
//! build script takes both texts from the README and the plugin crate and
//! switches only their `use` to the implementation under test, through
//! the one list's re-export), built in
//! the suite's own profile, linked with the README's
//! `--export-dynamic-symbol=my_add`, and run in a fresh directory where the
//! README's path `plugin/target/release/libplugin.so` names the plugin. The
//! program's own `assert_eq!`s are the check: it exits 0 only when the
//! plugin's call returned 3 before the update and 4 after it, and the
//! plugin closed.

use std::time::Duration;

use super::cdylib::build_cdylib_env;
use crate::Adapter;
use crate::runner::{Outcome, ScenarioResult};

/// Builds and runs the README's host program over `A`.
pub(crate) fn readme_host<A: Adapter>() -> ScenarioResult {
    if !A::LISTED {
        return Ok(Outcome::Skip(format!(
            "needs a copy built from the workspace's implementations list, and {} is not on it",
            A::NAME
        )));
    }
    // The suite's own profile: the debug matrix runs the debug build, the
    // release matrix the release one (CI runs both).
    let release = !cfg!(debug_assertions);
    let profile = if release { "release" } else { "debug" };
    let so = build_cdylib_env(
        "static-call-readme-host",
        "libstatic_call_readme_host.so",
        release,
        "STATIC_CALL_README_IMPL",
        A::SYMBOL_PREFIX,
    )?;
    let host = so.with_file_name("readme-host");
    let dir = std::env::temp_dir().join(format!(
        "static-call-readme-host-{}-{}",
        A::NAME,
        std::process::id()
    ));
    let plugin_dir = dir.join("plugin/target/release");
    std::fs::create_dir_all(&plugin_dir).map_err(|e| format!("{}: {e}", plugin_dir.display()))?;
    let plugin = plugin_dir.join("libplugin.so");
    std::fs::copy(&so, &plugin)
        .map_err(|e| format!("copy {} to {}: {e}", so.display(), plugin.display()))?;
    let r = run(&host, &dir);
    // The directory goes whatever happened.
    let _ = std::fs::remove_dir_all(&dir);
    let out = r?;
    if !out.status.success() {
        return Err(format!(
            "the README's program ({profile}, over {}) failed: {}\nstdout: {}\nstderr: {}",
            A::NAME,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(Outcome::Pass(format!(
        "the README's program ({profile}) loaded plugin/target/release/libplugin.so, saw 3 then 4 across the update, closed it and exited 0"
    )))
}

/// Runs `host` in `dir` with a deadline.
fn run(host: &std::path::Path, dir: &std::path::Path) -> Result<std::process::Output, String> {
    let mut child = std::process::Command::new(host)
        .current_dir(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("running {}: {e}", host.display()))?;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("{} did not finish in 60 s", host.display()));
            }
            Err(e) => return Err(format!("waiting for {}: {e}", host.display())),
        }
    }
    child
        .wait_with_output()
        .map_err(|e| format!("reading {}'s output: {e}", host.display()))
}
