//! Records the toolchain and commit the benchmarks were built from (a
//! bundle made on a machine without cargo or git still names them), and
//! exports the conformance adapter's keys dynamically so that the test
//! shared object can bind to them.

use std::process::Command;

fn run(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = run(&rustc, &["--version"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=STATIC_CALL_BUILD_RUSTC={version}");
    let commit =
        run("git", &["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=STATIC_CALL_BUILD_COMMIT={commit}");
    println!("cargo:rustc-link-arg-benches=-Wl,--export-dynamic-symbol=static_call_key_*");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../.git/HEAD");
}
