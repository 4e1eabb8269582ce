//! The callgrind bench's reader of gungraun's `summary.json`, on a summary
//! gungraun-runner 0.20.0 wrote (`fixtures/gungraun-summary.json`: the
//! callgrind bench's `calls/call.call_0` of a quick `call/hot-1arg` run,
//! the second of two, so it holds this run's `new` and the baseline's
//! `old`), and on that summary spoiled one field at a time.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

#[path = "../benches/callgrind/summary.rs"]
#[allow(dead_code)]
mod summary;

use summary::{SummaryError, instructions, parse_ir};

const FIXTURE: &str = include_str!("fixtures/gungraun-summary.json");

/// The `Ir` total of the fixture's run, as the `totals:` line of the
/// `callgrind.call.call_0.out` of the same benchmark run said
/// (`events: Ir`, `totals: 7192`).
const FIXTURE_IR: u64 = 7192;

fn file() -> &'static Path {
    Path::new("fixtures/gungraun-summary.json")
}

fn spoiled(edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let mut v: serde_json::Value = serde_json::from_str(FIXTURE).expect("the fixture is JSON");
    edit(&mut v);
    v.to_string()
}

fn ir_metrics(v: &mut serde_json::Value) -> &mut serde_json::Map<String, serde_json::Value> {
    v["profiles"]
        .as_array_mut()
        .expect("profiles")
        .iter_mut()
        .find(|p| p["tool"] == "Callgrind")
        .expect("a Callgrind profile")["data"]["total"]["metrics"]
        .as_object_mut()
        .expect("metrics")
}

#[test]
fn reads_ir_of_a_real_summary() {
    assert_eq!(parse_ir(file(), FIXTURE), Ok(FIXTURE_IR));
}

#[test]
fn refuses_another_schema_version() {
    let text = spoiled(|v| v["version"] = "6".into());
    let err = parse_ir(file(), &text).expect_err("schema 6");
    eprintln!("{err}");
    assert!(matches!(&err, SummaryError::Version { found, .. } if found == "6"));
    assert!(err.to_string().contains("gungraun-summary.json"), "{err}");
    assert!(err.to_string().contains("`version`"), "{err}");
}

#[test]
fn names_a_missing_ir() {
    let text = spoiled(|v| {
        let m = ir_metrics(v);
        let ir = m.remove("Ir").expect("Ir");
        m.insert("Irr".into(), ir);
    });
    let err = parse_ir(file(), &text).expect_err("no Ir");
    eprintln!("{err}");
    assert!(
        matches!(&err, SummaryError::Field { field, .. } if field.ends_with("metrics.Ir")),
        "{err:?}"
    );
}

#[test]
fn refuses_a_baseline_only_value() {
    let text = spoiled(|v| {
        let m = ir_metrics(v);
        let values = &mut m.get_mut("Ir").expect("Ir")["values"];
        let new = values["new"].take();
        *values = serde_json::json!({ "old": new });
    });
    let err = parse_ir(file(), &text).expect_err("only old");
    eprintln!("{err}");
    assert!(
        matches!(&err, SummaryError::Field { field, .. } if field.ends_with("Ir.values.new")),
        "{err:?}"
    );
}

#[test]
fn refuses_a_non_integer_count() {
    let text = spoiled(|v| ir_metrics(v).get_mut("Ir").expect("Ir")["values"]["new"] = 1.5.into());
    let err = parse_ir(file(), &text).expect_err("a float");
    eprintln!("{err}");
    assert!(matches!(err, SummaryError::Field { .. }), "{err:?}");
}

#[test]
fn names_a_missing_structure_field() {
    let text = spoiled(|v| {
        v["profiles"].as_array_mut().expect("profiles")[0]
            .as_object_mut()
            .expect("a profile")
            .remove("data");
    });
    let err = parse_ir(file(), &text).expect_err("no data");
    eprintln!("{err}");
    assert!(
        matches!(&err, SummaryError::Malformed { error, .. } if error.contains("`data`")),
        "{err:?}"
    );
    let err = parse_ir(file(), "{\"version\": \"7\", \"profiles\": [").expect_err("cut short");
    assert!(matches!(err, SummaryError::Malformed { .. }), "{err:?}");
}

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gungraun-summary-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir
}

#[test]
fn reads_only_a_summary_this_run_wrote() {
    let dir = scratch("mtime");
    let start = SystemTime::now() - Duration::from_secs(1);
    // None yet: missing, named.
    let err = instructions(&dir, start).expect_err("no summary");
    assert!(matches!(err, SummaryError::Missing { .. }), "{err:?}");
    // Written now: read.
    let f = dir.join(summary::FILE);
    std::fs::write(&f, FIXTURE).expect("write");
    assert_eq!(instructions(&dir, start), Ok(FIXTURE_IR));
    // An older file (another run's): refused, not read.
    std::fs::File::options()
        .write(true)
        .open(&f)
        .and_then(|h| h.set_modified(start - Duration::from_secs(3600)))
        .expect("set mtime");
    let err = instructions(&dir, start).expect_err("an old file");
    eprintln!("{err}");
    assert!(
        matches!(&err, SummaryError::Stale { file } if *file == f),
        "{err:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
