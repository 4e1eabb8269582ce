//! The fresh-run form, with a stand-in for cargo and for the callgrind
//! runner (no benchmark runs here): the stages run in order with their
//! progress lines, a failing conformance cell still gives a page and a
//! non-zero exit, and a missing runner is installed.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A scratch directory with a fake `cargo` (logging its arguments and
/// leaving the fixture bundles where the real commands would) and a fake
/// `gungraun-runner` printing `runner_version`.
fn setup(name: &str, runner_version: &str, conformance_exit: u8) -> (PathBuf, PathBuf) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("report-fresh")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let a = common::fixture("machine-a");
    let cargo = format!(
        r#"#!/bin/sh
echo "$*" >> "{log}"
echo "QUICK=$STATIC_CALL_BENCH_QUICK" >> "{log}"
mkdir -p "$CARGO_TARGET_DIR/results"
case "$1" in
  bench) cp "{a}/bench.json" "$CARGO_TARGET_DIR/results/bench.json" ;;
  test) cp "{a}/conformance.json" "$CARGO_TARGET_DIR/results/conformance.json"; exit {conformance_exit} ;;
  install) echo installed ;;
esac
exit 0
"#,
        log = dir.join("cargo.log").display(),
        a = a.display(),
    );
    let runner = format!("#!/bin/sh\necho 'gungraun-runner {runner_version}'\n");
    for (n, text) in [("cargo", cargo), ("gungraun-runner", runner)] {
        let p = bin.join(n);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    (dir, bin)
}

fn run(dir: &Path, bin: &Path, args: &[&str]) -> Output {
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new(env!("CARGO_BIN_EXE_static-call-report"))
        .args(args)
        .env("CARGO", bin.join("cargo"))
        .env("PATH", path)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .env_remove("STATIC_CALL_BENCH_QUICK")
        .output()
        .unwrap()
}

#[test]
fn quick_run_with_a_failing_cell() {
    let (dir, bin) = setup("quick", "0.20.0", 1);
    let o = run(&dir, &bin, &["--quick"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        o.status.code(),
        Some(1),
        "a failing cell makes the run fail: {err}"
    );
    for line in [
        "[1/4] callgrind runner (gungraun-runner 0.20.0) ... found gungraun-runner 0.20.0, done in ",
        "[2/4] benchmarks (quick) ... done in ",
        "[3/4] conformance matrix (release) ... failed (see the page's conformance matrix), in ",
        "[4/4] page ... done in ",
    ] {
        assert!(err.contains(line), "{line:?} in:\n{err}");
    }
    let page = dir.join("target/report/index.html");
    assert!(
        page.exists(),
        "the page is written even though a cell failed"
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("index.html"));
    let log = std::fs::read_to_string(dir.join("cargo.log")).unwrap();
    assert_eq!(
        log,
        "bench -p static-call-bench\nQUICK=1\n\
         test --release -p static-call-conformance --test conformance\nQUICK=\n"
    );
    let html = std::fs::read_to_string(page).unwrap();
    assert!(html.contains("104 pass"));
}

#[test]
fn full_run_installs_a_missing_runner() {
    let (dir, bin) = setup("full", "0.19.1", 0);
    let o = run(
        &dir,
        &bin,
        &["--out", dir.join("page.html").to_str().unwrap()],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("[2/4] benchmarks (full) ... done in "),
        "{err}"
    );
    let log = std::fs::read_to_string(dir.join("cargo.log")).unwrap();
    assert!(
        log.starts_with("install gungraun-runner --version =0.20.0 --locked\n"),
        "{log}"
    );
    assert!(
        log.contains("bench -p static-call-bench\nQUICK=\n"),
        "{log}"
    );
    assert!(dir.join("page.html").exists());
}

#[test]
fn no_bundle_from_the_benchmarks_is_an_error() {
    let (dir, bin) = setup("nobundle", "0.20.0", 0);
    // A cargo that runs nothing.
    let p = bin.join("cargo");
    std::fs::write(&p, "#!/bin/sh\nexit 101\n").unwrap();
    let o = run(&dir, &bin, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("the benchmarks left no new") && err.contains("bench.json"),
        "{err}"
    );
    assert!(!dir.join("target/report/index.html").exists());
}

/// `--baseline` on the main command: read before anything runs (an
/// unreadable one stops the run with exit 2 and runs nothing); after the
/// run, the page has the comparison and a regression past its threshold
/// exits 3.
#[test]
fn main_command_with_a_baseline() {
    let (dir, bin) = setup("baseline", "0.20.0", 0);
    let missing = dir.join("no-such-bundle.json");
    let o = run(&dir, &bin, &["--baseline", missing.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("no-such-bundle.json: cannot read"), "{err}");
    assert!(!dir.join("cargo.log").exists(), "nothing ran");

    // A baseline in which inline-patch's call was 20% faster: the run's
    // (the fixture's) is then a regression.
    let mut b = static_call_bundle::read_bench(&common::fixture("machine-a/bench.json")).unwrap();
    let f = b
        .figures
        .iter_mut()
        .find(|f| {
            f.scenario == "call/hot-1arg"
                && f.subject == "inline-patch"
                && f.metric == static_call_bundle::Metric::WallTime
        })
        .unwrap();
    f.value /= 1.2;
    for x in &mut f.raw {
        *x /= 1.2;
    }
    let base = dir.join("faster.json");
    std::fs::write(&base, b.to_json()).unwrap();
    let o = run(
        &dir,
        &bin,
        &[
            "--quick",
            "--baseline",
            base.to_str().unwrap(),
            "--fail-on-regression",
            "wall=5%,instructions=0",
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(err.contains("[4/4] page ... done in "), "{err}");
    assert!(
        err.contains("regressed past its threshold: call/hot-1arg · inline-patch · wall time"),
        "{err}"
    );
    let html = std::fs::read_to_string(dir.join("target/report/index.html")).unwrap();
    assert!(html.contains(r#"<section id="changes">"#));
    assert!(dir.join("target/report/index-changes.txt").exists());
}
