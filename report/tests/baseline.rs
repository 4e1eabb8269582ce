//! Regressions against a baseline bundle: a slowed or longer figure is
//! regressed (exit 3 past its threshold), a bundle against itself is
//! unchanged everywhere (exit 0), a call cost inside the A/A noise floor
//! or inside its threshold is not a regression, a baseline of another
//! machine is refused (exit 2), and the page's section is sorted by
//! change. The changed bundles are copies of the fixture edited with
//! serde here; no committed bundle is touched.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use static_call_bundle::{BenchBundle, Metric, Mode, read_bench};
use static_call_report::baseline::{self, Comparison, Thresholds, Verdict};
use static_call_report::{Input, render_with_baseline};

fn fixture_a() -> BenchBundle {
    read_bench(&common::fixture("machine-a/bench.json")).expect("fixture reads")
}

fn input(b: BenchBundle, source: &str) -> Input {
    Input::new(b, source)
}

fn scratch(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("report-baseline")
        .join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn write(dir: &Path, name: &str, b: &BenchBundle) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, b.to_json()).unwrap();
    p
}

fn bin(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_static-call-report"))
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Multiplies a wall-time figure (its raw values and its median) by `k`.
fn scale(b: &mut BenchBundle, scenario: &str, subject: &str, sites: Option<u64>, k: f64) {
    let f = b
        .figures
        .iter_mut()
        .find(|f| {
            f.scenario == scenario
                && f.subject == subject
                && f.sites == sites
                && f.metric == Metric::WallTime
                && !f.raw.is_empty()
        })
        .unwrap_or_else(|| panic!("{scenario} {subject} {sites:?} has samples"));
    f.value *= k;
    for x in &mut f.raw {
        *x *= k;
    }
}

/// Adds `d` to an instruction count.
fn add_instructions(b: &mut BenchBundle, scenario: &str, subject: &str, d: f64) {
    let f = b
        .figures
        .iter_mut()
        .find(|f| {
            f.scenario == scenario && f.subject == subject && f.metric == Metric::Instructions
        })
        .unwrap();
    f.value += d;
}

fn row<'a>(
    c: &'a Comparison,
    scenario: &str,
    subject: &str,
    metric: Metric,
) -> &'a baseline::Change {
    c.rows
        .iter()
        .find(|r| {
            r.key.scenario == scenario
                && r.key.subject == subject
                && r.key.metric == metric
                && r.key.sites.is_none()
        })
        .unwrap_or_else(|| panic!("{scenario} {subject} {metric:?} compared"))
}

fn thresholds(s: &str) -> Thresholds {
    s.parse().unwrap()
}

#[test]
fn a_regression_is_detected_and_exits_3() {
    let dir = scratch("regressed");
    let mut cur = fixture_a();
    scale(&mut cur, "call/hot-1arg", "inline-patch", None, 1.2);
    add_instructions(&mut cur, "call/hot-1arg", "trampoline", 1.0);
    let p = write(&dir, "current.json", &cur);
    let out = dir.join("index.html");
    let o = bin(&[
        "--from".as_ref(),
        p.as_os_str(),
        "--baseline".as_ref(),
        common::fixture("machine-a/bench.json").as_os_str(),
        "--fail-on-regression".as_ref(),
        "wall=5%,instructions=0".as_ref(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{e}");
    for want in [
        "regressed past its threshold: call/hot-1arg · inline-patch · wall time per call (timer)",
        "regressed past its threshold: call/hot-1arg · trampoline · instructions per call (callgrind): 7 instructions -> 8 instructions",
        "error: 2 figures regressed past their threshold (wall 5%, instructions 0%)",
        "2 regressed, 0 improved",
    ] {
        assert!(e.contains(want), "{want:?} in:\n{e}");
    }
    assert!(!e.contains("panicked"), "{e}");
    // The page and the text summary are still written.
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.contains(r#"<section id="changes">"#));
    assert!(html.contains("regressed past threshold"));
    let text = std::fs::read_to_string(dir.join("index-changes.txt")).unwrap();
    assert!(text.contains("2 regressed"), "{text}");

    // Without thresholds the same comparison is report-only: exit 0, the
    // regressions still named.
    let o = bin(&[
        "--from".as_ref(),
        p.as_os_str(),
        "--baseline".as_ref(),
        common::fixture("machine-a/bench.json").as_os_str(),
        "--out".as_ref(),
        out.as_os_str(),
    ]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{e}");
    assert!(e.contains("regressed: call/hot-1arg · inline-patch"), "{e}");
}

#[test]
fn a_bundle_against_itself_is_unchanged_everywhere() {
    let a = common::fixture("machine-a/bench.json");
    let dir = scratch("itself");
    let o = bin(&[
        "--from".as_ref(),
        a.as_os_str(),
        "--baseline".as_ref(),
        a.as_os_str(),
        "--fail-on-regression".as_ref(),
        "wall=0%,instructions=0,registry-bytes=0".as_ref(),
        "--out".as_ref(),
        dir.join("index.html").as_os_str(),
    ]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{e}");
    assert!(e.contains(" 0 regressed, 0 improved, "), "{e}");

    let c = baseline::compare(
        &input(fixture_a(), "a"),
        &input(fixture_a(), "a"),
        &thresholds("wall=0%,instructions=0"),
    )
    .unwrap();
    assert_eq!(
        c.rows.len(),
        fixture_a().figures.len(),
        "every figure paired"
    );
    assert!(c.only_current.is_empty() && c.only_baseline.is_empty());
    assert!(c.differences.is_empty(), "{:?}", c.differences);
    let mut judged = 0;
    for r in &c.rows {
        match &r.verdict {
            Verdict::Unchanged => judged += 1,
            Verdict::NotJudged(why) => assert!(!why.is_empty()),
            v => panic!("{} against itself: {v:?}", r.key.describe()),
        }
        if let Some((lo, hi)) = r.judged_on {
            assert!(lo <= 1.0 && 1.0 <= hi, "{}: [{lo}, {hi}]", r.key.describe());
        }
        assert_eq!(r.ratio, Some(1.0), "{}", r.key.describe());
    }
    assert!(judged > 150, "{judged} judged");
}

/// A call cost 2% slower whose un-widened interval lies wholly above 1 is
/// still unchanged when the A/A noise floor is 3%; with no floor it is a
/// regression.
#[test]
fn the_noise_floor_widens_call_costs() {
    let set_floor = |b: &mut BenchBundle, low: f64, high: f64| {
        let aa = b
            .figures
            .iter_mut()
            .find(|f| {
                f.scenario == "call/hot-1arg"
                    && f.subject == "direct-aa"
                    && f.metric == Metric::WallTime
            })
            .unwrap();
        let r = aa.ratio.as_mut().unwrap();
        (r.interval.low, r.interval.high) = (low, high);
    };
    let verdict = |floor: (f64, f64)| {
        let mut cur = fixture_a();
        scale(&mut cur, "call/hot-1arg", "inline-patch", None, 1.02);
        set_floor(&mut cur, floor.0, floor.1);
        let c = baseline::compare(
            &input(cur, "cur"),
            &input(fixture_a(), "base"),
            &Thresholds::none(),
        )
        .unwrap();
        row(&c, "call/hot-1arg", "inline-patch", Metric::WallTime).clone()
    };
    let wide = verdict((0.97, 1.01));
    let (lo, _) = wide.interval.unwrap();
    assert!(
        lo > 1.0,
        "the bootstrap interval alone is above 1: {wide:?}"
    );
    let w = wide.floor.as_ref().unwrap().width;
    assert!(
        (w - 0.03).abs() < 1e-12,
        "the floor is the A/A interval's reach: {w}"
    );
    assert_eq!(wide.verdict, Verdict::Unchanged, "{wide:?}");
    let tight = verdict((1.0, 1.0));
    assert_eq!(tight.verdict, Verdict::Regressed, "{tight:?}");
    // Not a call cost: an update is not widened.
    let mut cur = fixture_a();
    scale(&mut cur, "update/idle", "inline-patch", Some(1), 1.5);
    let c = baseline::compare(
        &input(cur, "cur"),
        &input(fixture_a(), "base"),
        &Thresholds::none(),
    )
    .unwrap();
    let r = c
        .rows
        .iter()
        .find(|r| {
            r.key.scenario == "update/idle"
                && r.key.subject == "inline-patch"
                && r.key.sites == Some(1)
                && r.key.metric == Metric::WallTime
        })
        .unwrap();
    assert!(
        r.floor.is_none() && r.verdict == Verdict::Regressed,
        "{r:?}"
    );
}

/// A change inside the metric's threshold is not a regression; past it,
/// it is; an exact count fails on any increase at `instructions=0`.
#[test]
fn thresholds_decide_the_exit() {
    let mut cur = fixture_a();
    scale(&mut cur, "call/hot-1arg", "inline-patch", None, 1.2);
    add_instructions(&mut cur, "call/hot-1arg", "inline-patch", 0.5);
    let cmp = |t: &str| {
        baseline::compare(
            &input(cur.clone(), "cur"),
            &input(fixture_a(), "base"),
            &thresholds(t),
        )
        .unwrap()
    };
    let c = cmp("wall=50%,instructions=100%");
    let w = row(&c, "call/hot-1arg", "inline-patch", Metric::WallTime);
    assert_eq!(w.verdict, Verdict::Unchanged, "{w:?}");
    assert!(w.remark.contains("within the 50% threshold"), "{w:?}");
    assert_eq!(c.failures().count(), 0);
    let c = cmp("wall=5%,instructions=0");
    assert_eq!(
        row(&c, "call/hot-1arg", "inline-patch", Metric::WallTime).verdict,
        Verdict::Regressed
    );
    let i = row(&c, "call/hot-1arg", "inline-patch", Metric::Instructions);
    assert_eq!(i.verdict, Verdict::Regressed, "{i:?}");
    assert_eq!(c.failures().count(), 2);
    // A metric without a threshold is judged (against 1) but never fails.
    let c = cmp("instructions=100%");
    let w = row(&c, "call/hot-1arg", "inline-patch", Metric::WallTime);
    assert!(w.verdict == Verdict::Regressed && !w.fails(), "{w:?}");
    assert_eq!(c.failures().count(), 0);
}

#[test]
fn a_baseline_of_another_machine_is_refused() {
    let dir = scratch("foreign");
    let a = common::fixture("machine-a/bench.json");
    let b = common::fixture("machine-b/bench.json");
    let o = bin(&[
        "--from".as_ref(),
        a.as_os_str(),
        "--baseline".as_ref(),
        b.as_os_str(),
        "--out".as_ref(),
        dir.join("index.html").as_os_str(),
    ]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    for want in [
        "error: the baseline tests/fixtures/machine-b/bench.json (Intel Xeon",
        "is of another machine than tests/fixtures/machine-a/bench.json (AMD EPYC",
        "AMD EPYC 7B13 64-Core Processor, 2 CPUs",
        "logical CPUs: 2 here, 16 in the baseline",
    ] {
        assert!(e.contains(want), "{want:?} in:\n{e}");
    }
    assert!(!e.contains("panicked"), "{e}");
    // The same model name and CPU count, another CPU stepping.
    let mut other = fixture_a();
    other
        .machine
        .details
        .as_mut()
        .unwrap()
        .cpu_family_model_stepping = "family 25, model 1, stepping 2".into();
    let err = baseline::compare(
        &input(fixture_a(), "a.json"),
        &input(other, "other.json"),
        &Thresholds::none(),
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("CPU family/model/stepping: family 25, model 1, stepping 1 here, family 25, model 1, stepping 2 in the baseline")
            && msg.contains("a.json")
            && msg.contains("other.json"),
        "{msg}"
    );
    // Another mode and commit are allowed, and shown.
    let mut quick = fixture_a();
    quick.run.mode = Mode::Quick;
    quick.machine.commit = "0123abc".into();
    let c = baseline::compare(
        &input(quick, "q.json"),
        &input(fixture_a(), "a.json"),
        &Thresholds::none(),
    )
    .unwrap();
    let fields: Vec<&str> = c.differences.iter().map(|d| d.field).collect();
    assert_eq!(fields, ["mode", "commit"]);
    let html = render_with_baseline(&[input(fixture_a(), "q.json")], &c);
    assert!(html.contains(r#"id="baseline-differences""#));
    assert!(html.contains("<code>quick</code> here, <code>full</code> in the baseline"));
}

/// The section is at the top of the page, its table sorted by change:
/// regressions largest first, then improvements largest first; figures
/// in one bundle only are listed.
#[test]
fn the_section_is_sorted_by_change() {
    let mut cur = fixture_a();
    scale(&mut cur, "call/hot-1arg", "trampoline", None, 1.2);
    scale(&mut cur, "call/hot-6arg", "indirect", None, 1.6);
    scale(&mut cur, "update/idle", "trampoline", Some(1), 0.9);
    scale(&mut cur, "update/idle", "indirect", Some(1), 0.5);
    add_instructions(&mut cur, "call/hot-1arg", "indirect", 3.0);
    let gone = cur.figures.remove(0);
    let c = baseline::compare(
        &input(cur, "cur.json"),
        &input(fixture_a(), "base.json"),
        &Thresholds::none(),
    )
    .unwrap();
    assert_eq!(c.only_baseline.len(), 1);
    assert_eq!(c.only_baseline[0], baseline::Key::of(&gone));
    let html = render_with_baseline(&common::fixture_inputs()[..1], &c);
    let at = |needle: &str| {
        html.find(needle)
            .unwrap_or_else(|| panic!("{needle} on the page"))
    };
    assert!(at(r#"<section id="changes">"#) < at(r#"<section id="summary">"#));
    assert!(html.contains("Changes against <code>base.json</code>"));
    assert!(html.contains(r##"<a href="#changes">Changes</a>"##));
    assert!(
        html.contains(
            r#"<details id="changes-only-baseline"><summary>1 only in baseline</summary>"#
        )
    );
    // The main table's rows, in page order: verdict and ratio.
    let start = at(r#"<table class="changes" id="changes-table">"#);
    let table = &html[start..start + html[start..].find("</table>").unwrap()];
    let rows: Vec<(String, f64)> = table
        .split("<tr class=\"")
        .skip(1)
        .map(|tr| {
            let class = tr[..tr.find('"').unwrap()].to_owned();
            let cells: Vec<&str> = tr.split(r#"<td class="num">"#).skip(1).collect();
            let ratio = cells[2][..cells[2].find('×').unwrap()].parse().unwrap();
            (class, ratio)
        })
        .collect();
    let got: Vec<(&str, f64)> = rows.iter().map(|(c, r)| (c.as_str(), *r)).collect();
    assert_eq!(
        got,
        [
            ("regressed", 1.6),
            ("regressed", 1.3),
            ("regressed", 1.2),
            ("improved", 0.5),
            ("improved", 0.9),
        ],
        "{table}"
    );
    // The whole list: verdict groups in order, the largest change first.
    for w in c.rows.windows(2) {
        let (x, y) = (&w[0], &w[1]);
        assert!(
            x.verdict.rank() < y.verdict.rank()
                || (x.verdict.rank() == y.verdict.rank() && x.magnitude() >= y.magnitude()),
            "{} before {}",
            x.key.describe(),
            y.key.describe()
        );
    }
}

#[test]
fn bad_thresholds_are_usage_errors() {
    let a = common::fixture("machine-a/bench.json");
    let dir = scratch("usage");
    let out = dir.join("index.html");
    let run = |extra: &[&str]| {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "--from".as_ref(),
            a.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ];
        args.extend(extra.iter().map(|s| std::ffi::OsStr::new(*s)));
        bin(&args)
    };
    let o = run(&[
        "--baseline",
        a.to_str().unwrap(),
        "--fail-on-regression",
        "walls=5%",
    ]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("`walls=5%`: unknown metric `walls`"), "{e}");
    let o = run(&[
        "--baseline",
        a.to_str().unwrap(),
        "--fail-on-regression",
        "wall=5",
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("not a percentage"), "{}", stderr(&o));
    let o = run(&["--fail-on-regression", "wall=5%"]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("--fail-on-regression needs a baseline"), "{e}");
    assert!(!out.exists(), "no page for a usage error");
}

/// `--baseline-among` takes the bundle of the same machine and mode; of
/// the same machine in another mode, it compares report-only; of none,
/// it says so and exits 0.
#[test]
fn the_baseline_is_picked_by_machine_and_mode() {
    let dir = scratch("among");
    let mut cur = fixture_a();
    scale(&mut cur, "call/hot-1arg", "inline-patch", None, 1.5);
    cur.run.mode = Mode::Quick;
    let p = write(&dir, "current.json", &cur);
    let mut same = fixture_a();
    same.run.mode = Mode::Quick;
    let same_p = write(&dir, "same-mode.json", &same);
    let full = common::fixture("machine-a/bench.json");
    let foreign = common::fixture("machine-b/bench.json");
    let out = dir.join("index.html");
    let run = |cands: &[&Path]| {
        let mut args: Vec<&std::ffi::OsStr> = vec![
            "--from".as_ref(),
            p.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
            "--fail-on-regression".as_ref(),
            "wall=5%".as_ref(),
            "--baseline-among".as_ref(),
        ];
        args.extend(cands.iter().map(|c| c.as_os_str()));
        bin(&args)
    };
    let o = run(&[&foreign, &full, &same_p]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{e}");
    assert!(
        e.contains("same-mode.json (the same machine and mode among 3 bundles)"),
        "{e}"
    );
    let o = run(&[&foreign, &full]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "report-only: {e}");
    assert!(e.contains("report-only, no threshold applies"), "{e}");
    assert!(e.contains("regressed: call/hot-1arg · inline-patch"), "{e}");
    let o = run(&[&foreign]);
    let e = stderr(&o);
    assert_eq!(o.status.code(), Some(0), "{e}");
    assert!(
        e.contains("none of the 1 bundles comes from this machine"),
        "{e}"
    );
}
