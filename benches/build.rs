//! Records the toolchain, profile, flags and the build the benchmarks were
//! made from (a bundle made on a machine without cargo or git still names
//! them), and exports the conformance adapter's keys dynamically so that
//! the test shared object can bind to them.
//!
//! The build is `<commit>` for a clean checkout, or
//! `<commit>-dirty.<fingerprint>` when tracked files differ from the commit
//! or untracked (not ignored) files exist: the fingerprint hashes `git diff
//! HEAD` and the untracked files' names and contents, so two dirty builds
//! of different changes differ. `STATIC_CALL_COMMIT` passes the build in
//! where there is no git (a device, a tarball); it wins over git.
//!
//! The script reruns when the commit moves (HEAD, the branch's ref, the
//! packed refs, the index) and when any source of the workspace changes
//! (cargo scans the directories named below), so the recorded build is
//! never the one before.
//!
//! It also builds the peer library, `libsc_peer.so` (`peer/sc_peer.c`,
//! one function, `x + 1`), with the machine's C compiler (`$CC`, else
//! `cc`) into `OUT_DIR`, and links the crate's targets against it with an
//! rpath to that directory: the benchmarks call it through the PLT and the
//! GOT (the peers `plt-call` and `got-call`). Without a C compiler the
//! build stops and says so.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

fn run(cmd: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn raw(cmd: &str, args: &[&str]) -> Option<Vec<u8>> {
    let out = Command::new(cmd).args(args).output().ok()?;
    out.status.success().then_some(out.stdout)
}

/// The build string from git, and the files whose change moves it.
fn from_git(root: &Path) -> Option<(String, Vec<PathBuf>)> {
    let r = root.to_str()?;
    let commit = run("git", &["-C", r, "rev-parse", "--short=12", "HEAD"])?;
    let mut watch = Vec::new();
    for (flag, files) in [
        ("--git-dir", &["HEAD", "index"][..]),
        ("--git-common-dir", &["packed-refs"][..]),
    ] {
        if let Some(d) = run("git", &["-C", r, "rev-parse", flag]) {
            let d = root.join(d);
            watch.extend(files.iter().map(|f| d.join(f)));
        }
    }
    if let Some(head_ref) = run("git", &["-C", r, "symbolic-ref", "-q", "HEAD"])
        && let Some(common) = run("git", &["-C", r, "rev-parse", "--git-common-dir"])
    {
        watch.push(root.join(common).join(head_ref));
    }
    let diff = raw("git", &["-C", r, "diff", "HEAD", "--binary"]).unwrap_or_default();
    let untracked = run(
        "git",
        &["-C", r, "ls-files", "--others", "--exclude-standard"],
    )
    .unwrap_or_default();
    if diff.is_empty() && untracked.is_empty() {
        return Some((commit, watch));
    }
    let mut h = DefaultHasher::new();
    diff.hash(&mut h);
    for f in untracked.lines() {
        f.hash(&mut h);
        std::fs::read(root.join(f)).unwrap_or_default().hash(&mut h);
    }
    Some((format!("{commit}-dirty.{:08x}", h.finish() as u32), watch))
}

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = run(&rustc, &["--version"]).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=STATIC_CALL_BUILD_RUSTC={version}");
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let root = manifest.parent().expect("in the workspace").to_owned();
    println!("cargo:rerun-if-env-changed=STATIC_CALL_COMMIT");
    let build = match std::env::var("STATIC_CALL_COMMIT") {
        Ok(c) if !c.trim().is_empty() => format!("{} (STATIC_CALL_COMMIT)", c.trim()),
        _ => match from_git(&root) {
            Some((b, watch)) => {
                for w in watch.iter().filter(|w| w.exists()) {
                    println!("cargo:rerun-if-changed={}", w.display());
                }
                b
            }
            None => "unknown (no git and no STATIC_CALL_COMMIT)".into(),
        },
    };
    println!("cargo:rustc-env=STATIC_CALL_BUILD_COMMIT={build}");
    // Every source of the workspace (a change there makes the build dirty).
    for d in [
        "Cargo.toml",
        "Cargo.lock",
        "impls",
        "implementations",
        "decode",
        "benches/src",
        "benches/benches",
        "benches/tests",
        "benches/examples",
        "benches/Cargo.toml",
        "bundle",
        "conformance",
        "sctool",
        "report/src",
        "README.md",
        "docs",
        "results",
        "ci",
    ] {
        let p = root.join(d);
        if p.exists() {
            println!("cargo:rerun-if-changed={}", p.display());
        }
    }
    let profile = std::env::var("PROFILE").unwrap_or_default();
    let opt = std::env::var("OPT_LEVEL").unwrap_or_default();
    let debug_assertions = std::env::var("CARGO_CFG_DEBUG_ASSERTIONS").is_ok();
    println!(
        "cargo:rustc-env=STATIC_CALL_BUILD_PROFILE={profile} (opt-level {opt}, debug assertions {})",
        if debug_assertions { "on" } else { "off" }
    );
    let flags = std::env::var("CARGO_ENCODED_RUSTFLAGS")
        .map(|f| f.replace('\x1f', " "))
        .unwrap_or_default();
    println!(
        "cargo:rustc-env=STATIC_CALL_BUILD_RUSTFLAGS={}",
        if flags.is_empty() { "(none)" } else { &flags }
    );
    println!("cargo:rustc-link-arg-benches=-Wl,--export-dynamic-symbol=static_call_key_*");
    peer_library(&manifest);
    println!("cargo:rerun-if-changed=build.rs");
}

/// Builds `libsc_peer.so` from `peer/sc_peer.c` into `OUT_DIR` and links
/// the crate against it, with an rpath so that its binaries find it.
fn peer_library(manifest: &Path) {
    let src = manifest.join("peer").join("sc_peer.c");
    println!("cargo:rerun-if-changed={}", src.display());
    println!("cargo:rerun-if-env-changed=CC");
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets it"));
    let so = out.join("libsc_peer.so");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    // No CET landing pad (`endbr64`): the suite's own targets have none,
    // so the peer's body is the same two instructions as theirs.
    let status = Command::new(&cc)
        .args(["-O2", "-fPIC", "-shared", "-fcf-protection=none"])
        .arg("-Wl,-soname,libsc_peer.so")
        .arg("-o")
        .arg(&so)
        .arg(&src)
        .status();
    let failure = match status {
        Ok(s) if s.success() => None,
        Ok(s) => Some(format!(
            "building the peer library {} from {} with `{cc}` failed ({s})",
            so.display(),
            src.display()
        )),
        Err(e) => Some(format!(
            "building the peer library from {}: cannot run the C compiler `{cc}` ({e}); install gcc or set CC",
            src.display()
        )),
    };
    if let Some(why) = failure {
        eprintln!("static-call-bench build script: {why}");
        std::process::exit(1);
    }
    println!("cargo:rustc-link-search=native={}", out.display());
    println!("cargo:rustc-link-lib=dylib=sc_peer");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", out.display());
}
