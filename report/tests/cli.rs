//! The command line: `--from` builds a page; a broken bundle is named with
//! its field and gives exit status 2, without a panic.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use static_call_bundle::BENCH_VERSION;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_static-call-report"));
    c.env_remove("RUST_BACKTRACE");
    c
}

fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("report-cli")
        .join(name);
    // Start empty: a page an earlier run left here must not pass for one
    // this run wrote (or fail "no page written").
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Writes a broken copy of the fixture and runs `--from` on it.
fn broken(name: &str, text: &str) -> (PathBuf, Output) {
    let dir = scratch(name);
    let p = dir.join("bench.json");
    std::fs::write(&p, text).unwrap();
    let o = bin()
        .arg("--from")
        .arg(&p)
        .arg("--out")
        .arg(dir.join("index.html"))
        .output()
        .unwrap();
    (p, o)
}

fn fixture_text() -> String {
    std::fs::read_to_string(common::fixture("machine-a/bench.json")).unwrap()
}

fn assert_clean_error(o: &Output, p: &Path, field: &str, also: &str) {
    let e = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains(&p.display().to_string()), "names the file: {e}");
    assert!(
        e.contains(&format!("field `{field}`")),
        "names the field `{field}`: {e}"
    );
    assert!(e.contains(also), "says {also:?}: {e}");
    assert!(!e.contains("panicked") && !e.contains("backtrace"), "{e}");
    assert!(!p.with_file_name("index.html").exists(), "no page written");
}

#[test]
fn truncated_json() {
    let t = fixture_text();
    let (p, o) = broken("truncated", &t[..t.len() / 2]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains(&p.display().to_string()) && e.contains("field `"),
        "{e}"
    );
    assert!(e.contains("EOF"), "{e}");
}

#[test]
fn wrong_enum_value() {
    let t = fixture_text().replacen("\"metric\": \"wall_time\"", "\"metric\": \"wall_clock\"", 1);
    let (p, o) = broken("enum", &t);
    assert_clean_error(&o, &p, "figures[0].metric", "wall_clock");
}

#[test]
fn foreign_json() {
    let t = std::fs::read_to_string(common::fixture("machine-a/conformance.json")).unwrap();
    let (p, o) = broken("foreign", &t);
    assert_clean_error(&o, &p, "schema", "not a static-call benchmark bundle");
}

#[test]
fn newer_version() {
    let t = fixture_text().replacen(
        &format!("\"version\": {BENCH_VERSION}"),
        &format!("\"version\": {}", BENCH_VERSION + 1),
        1,
    );
    let (p, o) = broken("newer", &t);
    assert_clean_error(&o, &p, "version", "newer than this reader");
}

#[test]
fn missing_file() {
    let dir = scratch("missing");
    let p = dir.join("nothing-here.json");
    let o = bin().arg("--from").arg(&p).output().unwrap();
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains(&p.display().to_string()) && e.contains("cannot read"),
        "{e}"
    );
}

#[test]
fn broken_conformance_matrix() {
    let dir = scratch("conformance");
    let c = dir.join("conformance.json");
    std::fs::write(&c, r#"{"wall_seconds": 1.0, "profile": "release"}"#).unwrap();
    let o = bin()
        .arg("--from")
        .arg(common::fixture("machine-b/bench.json"))
        .arg("--conformance")
        .arg(&c)
        .arg("--out")
        .arg(dir.join("index.html"))
        .output()
        .unwrap();
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(
        e.contains(&c.display().to_string()) && e.contains("spectre_v2"),
        "{e}"
    );
}

#[test]
fn more_matrices_than_bundles_is_a_usage_error() {
    let o = bin()
        .arg("--from")
        .arg(common::fixture("machine-a/bench.json"))
        .arg("--conformance")
        .arg(common::fixture("machine-a/conformance.json"))
        .arg(common::fixture("machine-a/conformance.json"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn from_two_bundles_writes_the_page() {
    let dir = scratch("from");
    let out = dir.join("index.html");
    let _ = std::fs::remove_file(&out);
    let o = bin()
        .arg("--from")
        .arg(common::fixture("machine-a/bench.json"))
        .arg(common::fixture("machine-b/bench.json"))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout).trim(),
        out.display().to_string()
    );
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.contains("fixture: epyc-2 (VM)") && html.contains("fixture: xeon-16 (synthetic)"));
    // machine-a has its conformance.json beside it, machine-b has none.
    assert!(html.contains("104 pass"), "matrix beside machine-a read");
    assert!(html.contains("no conformance matrix in this bundle"));
}

#[test]
fn quick_conflicts_with_from() {
    let o = bin()
        .arg("--quick")
        .arg("--from")
        .arg(common::fixture("machine-a/bench.json"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
}
